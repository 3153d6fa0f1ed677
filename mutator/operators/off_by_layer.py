"""off-by-layer: the guard that advances a counter after the last layer fires at another layer.

Every layer writes its keys and values at the same positions of the cache, so the position may move on
only once the last layer has written: `if layer_idx == n_layers - 1: pos = t1`. Advancing after the
first layer shifts every later layer one chunk ahead, yet the final position is still right, so a check
of `get_pos()` alone cannot see it. Sites: an `if X == N - 1:` (either side) whose body advances state.
"""

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site

LAST = m.BinaryOperation(operator=m.Subtract(), right=m.Integer("1"))  # N - 1
IS_LAST = m.Comparison(comparisons=[m.ComparisonTarget(operator=m.Equal())])
# what "advances a counter" looks like: pos += T, self.pos = t1, cache.advance(T)
ADVANCES = m.AugAssign() | m.Assign(targets=[m.AssignTarget(target=m.Attribute())]) | m.Call(func=m.Attribute())


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


class OffByLayer(Operator):
    name = "off-by-layer"
    variants = ("first-layer", "second-to-last", "past-last", "every-layer")

    def sites(self, node, scope):
        if not m.matches(node, m.If(test=IS_LAST)) or not m.findall(node.body, ADVANCES):
            return
        left, right = node.test.left, node.test.comparisons[0].comparator
        last = right if m.matches(right, LAST) else left if m.matches(left, LAST) else None
        if last is None:
            return
        yield Site("first-layer", {last: cst.Integer("0")})
        yield Site("second-to-last", {last.right: cst.Integer("2")})
        yield Site("past-last", {last: last.left})  # the classic off-by-one: never fires
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
            # the last layer compared, but nothing advanced: not a counter guard
            Example("first-layer", "if i == len(layers) - 1:\n    break\n", None),
            # a counter advanced, but not guarded by the last layer
            Example("first-layer", "if i == n - 2:\n    self.pos += 1\n", None),
        )
