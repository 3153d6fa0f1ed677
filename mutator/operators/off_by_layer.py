"""off-by-layer: the guard that advances a cache position once per forward pass fires at another layer.

Every layer writes its keys and values at the same positions, so the position may move on only once per
pass: after the last layer (`if layer_idx == n_layers - 1: self.pos = t1`) or, counting what the first
layer saw, at the first (`if layer_idx == 0: self._seen_tokens += k.shape[-2]`). Advancing at another
layer shifts the later layers one chunk ahead, yet the final position is still right, so a check of
`get_pos()` alone cannot see it.

A site: an `if` comparing a layer index (a comparison that mentions a layer, e.g. `layer_idx`,
`len(self.layers)`, `self.n_layers`; or `.size(0)` of a stacked per-layer cache) with the last layer
(`N - 1`) or the first (`0`), either side, whose body advances a counter (`+=`, `-=`, an attribute
assigned a computed value, or an `advance`/`update`/`step`-like call). Variants: the other end (for a
last-layer guard; a first-layer guard does not say how many layers there are), one layer off, every
layer, never.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site
from mutator.operators.meaning import mentions

LAYER = re.compile(r"(?i)layer")
LAST = m.BinaryOperation(operator=m.Subtract(), right=m.Integer("1"))  # N - 1
FIRST = m.Integer("0")
STACK_SIZE = m.Call(func=m.Attribute(attr=m.Name("size")), args=[m.Arg(value=m.Integer("0"))])  # cache.size(0)
EQUALS = m.Comparison(comparisons=[m.ComparisonTarget(operator=m.Equal())])
ADVANCE_CALL = m.Call(func=m.Attribute(attr=m.Name(m.MatchRegex(r"(?i).*(advance|increment|update_pos|step).*"))))
ADVANCES = (
    m.AugAssign(operator=m.AddAssign() | m.SubtractAssign())  # pos += T
    | m.Assign(targets=[m.AssignTarget(target=m.Attribute())], value=~(m.Integer() | m.Name("None")))  # self.pos = t1
    | ADVANCE_CALL  # cache.advance(T)
)


def _unguarded(guard: cst.If, is_elif: bool):
    """The guard's body in place of the guard (its comment lines kept), or None where that is not possible."""
    if guard.orelse is not None or is_elif:
        return None
    if isinstance(guard.body, cst.SimpleStatementSuite):  # if cond: stmt
        body = [cst.SimpleStatementLine(body=guard.body.body)]
    else:
        body = list(guard.body.body)
    body[0] = body[0].with_changes(leading_lines=[*guard.leading_lines, *body[0].leading_lines])
    return cst.FlattenSentinel(body)


def _is_layer_comparison(test: cst.Comparison) -> bool:
    return mentions(test, LAYER) or bool(m.findall(test, STACK_SIZE))


def layer_guard(node: cst.CSTNode) -> bool:
    """`if layer_idx == n_layers - 1:` and the like: an `if` on which layer this is."""
    return m.matches(node, m.If(test=EQUALS)) and _is_layer_comparison(node.test)


class OffByLayer(Operator):
    name = "off-by-layer"
    variants = ("first-layer", "second-to-last", "past-last", "every-layer", "second-layer", "never")

    def sites(self, node, scope):
        if not layer_guard(node):
            return
        if not m.findall(node.body, ADVANCES):
            return
        left, right = node.test.left, node.test.comparisons[0].comparator
        last = right if m.matches(right, LAST) else left if m.matches(left, LAST) else None
        first = right if m.matches(right, FIRST) else left if m.matches(left, FIRST) else None
        if last is not None:
            yield Site("first-layer", {last: cst.Integer("0")})
            yield Site("second-to-last", {last.right: cst.Integer("2")})
            yield Site("past-last", {last: last.left})  # the classic off-by-one: never fires
        elif first is not None:
            yield Site("second-layer", {first: cst.Integer("1")})
            yield Site("never", {first: cst.UnaryOperation(operator=cst.Minus(), expression=cst.Integer("1"))})
        else:
            return
        unguarded = _unguarded(node, is_elif=isinstance(scope.parent(node), cst.If))
        if unguarded is not None:
            yield Site("every-layer", {node: unguarded})

    def examples(self):
        cache = (
            "def insert_kv(self, layer_idx, k, v):\n"
            "    # move on after the last layer\n"
            "    if layer_idx == self.kv_cache.size(0) - 1:\n"
            "        self.pos = t1\n"
            "    return k, v\n"
        )
        seen = "def update(self, k, layer_idx):\n    if layer_idx == 0:\n        self._seen_tokens += k.shape[-2]\n"
        return (
            Example("first-layer", cache, cache.replace("self.kv_cache.size(0) - 1", "0")),
            Example("second-to-last", cache, cache.replace("size(0) - 1", "size(0) - 2")),
            Example("past-last", cache, cache.replace("self.kv_cache.size(0) - 1", "self.kv_cache.size(0)")),
            Example(
                "every-layer",
                cache,
                "def insert_kv(self, layer_idx, k, v):\n"
                "    # move on after the last layer\n"
                "    self.pos = t1\n"
                "    return k, v\n",
            ),
            Example(
                "first-layer",
                "if self.n_layers - 1 == self.layer_idx: cache.advance(T)\n",
                "if 0 == self.layer_idx: cache.advance(T)\n",
            ),
            Example("second-layer", seen, seen.replace("== 0", "== 1")),
            Example("never", seen, seen.replace("== 0", "== -1")),
            # the last layer compared, but nothing advanced: not a counter guard
            Example("first-layer", "if i == len(layers) - 1:\n    break\n", None),
            # a counter advanced, but not guarded by a layer
            Example("first-layer", "if step == n - 1:\n    self.pos += 1\n", None),
            Example("second-layer", "if i == 0:\n    self.count += 1\n", None),
        )
