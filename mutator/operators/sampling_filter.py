"""sampling-filter: next-token sampling truncates the distribution wrongly, or tempers it wrongly.

The imp engine's scorecard (kekzl/imp #1304) found that its suite caught none of three injected sampling
faults. The shapes:
- top-k: the `top_k > 0` guard dropped, so `top_k=0` ("no truncation") crashes in `topk(logits, 0)`, or the
  clamp `min(top_k, vocab)` dropped, so a k larger than the vocabulary crashes;
- top-p (nucleus): probabilities sorted ascending (the least likely tokens kept), the token that crosses
  top_p not kept (`cumsum - p` written `cumsum`: with top_p below the top probability nothing is left),
  or the nucleus comparison inverted (the tail kept instead);
- temperature: not applied, multiplied instead of divided, or applied after the softmax (where it is
  normalised away).
Greedy decoding (temperature 0) never reaches any of them.

Sites, by meaning: an `if` guard `k is not None and k > 0` on a top-k-like name; `min(k, ...)` passed to a
`topk` call; in a function that names top_p: a `sort(..., descending=...)`, a `cumsum(...) - x`, and a
comparison against top_p; a division of logits by a temperature (`logits / temperature`, inline in a
softmax or not, and `logits /= temperature`).
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, rewritable, rewritten
from mutator.operators.meaning import enclosing, identifiers, mentions

TOP_K = re.compile(r"(?i)^(top_?k|k)$")
TOP_P = re.compile(r"(?i)top_?p|nucleus")
TEMPERATURE = re.compile(r"(?i)^(temp|temperature|temperatures|tau)$")
LOGITS = re.compile(r"(?i)logit|scores")
SOFTMAX = m.Call(func=m.Name("softmax") | m.Attribute(attr=m.Name("softmax")))
CUMSUM = m.Call(func=m.Attribute(attr=m.Name("cumsum")))


def _names_top_p(node, scope) -> bool:
    function = enclosing(node, scope, cst.FunctionDef)
    return function is not None and any(TOP_P.search(n) for n in identifiers(function))


def _is_temperature(expr) -> bool:
    return (
        isinstance(expr, cst.Name)
        and bool(TEMPERATURE.match(expr.value))
        or (isinstance(expr, cst.Attribute) and bool(TEMPERATURE.match(expr.attr.value)))
    )


def _swapped(operator, new_type):
    return new_type(whitespace_before=operator.whitespace_before, whitespace_after=operator.whitespace_after)


class SamplingFilter(Operator):
    name = "sampling-filter"
    variants = (
        "top-k-zero-unguarded",
        "top-k-unclamped",
        "top-p-ascending",
        "top-p-crossing-dropped",
        "top-p-inverted",
        "temperature-dropped",
        "temperature-inverted",
        "temperature-after-softmax",
    )

    def sites(self, node, scope):
        if isinstance(node, cst.If) and isinstance(node.test, cst.BooleanOperation):
            yield from self._guard(node.test)
        elif m.matches(node, m.Call(func=m.Attribute(attr=m.Name("topk")) | m.Name("topk"))):
            for arg in node.args:
                if m.matches(arg.value, m.Call(func=m.Name("min"))) and any(
                    isinstance(a.value, cst.Name) and TOP_K.match(a.value.value) for a in arg.value.args
                ):
                    k = next(
                        a.value for a in arg.value.args if isinstance(a.value, cst.Name) and TOP_K.match(a.value.value)
                    )
                    yield Site("top-k-unclamped", {arg.value: k})
        elif m.matches(node, m.Call(func=m.Attribute(attr=m.Name("sort")) | m.Name("sort"))) and _names_top_p(
            node, scope
        ):
            for arg in node.args:
                if m.matches(arg, m.Arg(keyword=m.Name("descending"), value=m.Name("True") | m.Name("False"))):
                    opposite = cst.Name("False" if arg.value.value == "True" else "True")
                    yield Site("top-p-ascending", {arg.value: opposite})
        elif m.matches(node, m.BinaryOperation(operator=m.Subtract(), left=CUMSUM)) and _names_top_p(node, scope):
            yield Site("top-p-crossing-dropped", {node: node.left.with_changes(lpar=node.lpar, rpar=node.rpar)})
        elif rewritable(node) and mentions(node, TOP_P) and _names_top_p(node, scope):
            yield Site("top-p-inverted", rewritten(node))
        elif m.matches(node, m.BinaryOperation(operator=m.Divide())) and _is_temperature(node.right):
            if mentions(node.left, LOGITS):
                yield Site("temperature-dropped", {node: node.left.with_changes(lpar=node.lpar, rpar=node.rpar)})
                yield Site("temperature-inverted", {node.operator: _swapped(node.operator, cst.Multiply)})
                parent = scope.parent(scope.parent(node))  # BinaryOperation -> Arg -> softmax call
                if m.matches(parent, SOFTMAX) and parent.args and parent.args[0].value is node:
                    inner = parent.with_changes(args=[parent.args[0].with_changes(value=node.left), *parent.args[1:]])
                    after = cst.BinaryOperation(left=inner, operator=cst.Divide(), right=node.right)
                    yield Site("temperature-after-softmax", {parent: after})
        elif m.matches(node, m.AugAssign(operator=m.DivideAssign())) and _is_temperature(node.value):
            if mentions(node.target, LOGITS):
                yield Site("temperature-inverted", {node.operator: cst.MultiplyAssign()})

    def _guard(self, test):
        """`top_k is not None and top_k > 0` -> `top_k is not None`."""
        if not isinstance(test.operator, cst.And):
            return
        right = test.right
        if (
            m.matches(
                right,
                m.Comparison(comparisons=[m.ComparisonTarget(operator=m.GreaterThan(), comparator=m.Integer("0"))]),
            )
            and isinstance(right.left, cst.Name)
            and TOP_K.match(right.left.value)
            and right.left.value in {n.value for n in m.findall(test.left, m.Name())}
        ):
            yield Site("top-k-zero-unguarded", {test: test.left})

    def examples(self):
        topk = (
            "if top_k is not None and top_k > 0:\n    logits, idx = torch.topk(logits, min(top_k, logits.size(-1)))\n"
        )
        temp = "probs = F.softmax(logits / temperature, dim=-1)\n"
        nucleus = (
            "def sample(probs, top_p):\n"
            "    p, order = torch.sort(probs, descending=True)\n"
            "    before = p.cumsum(dim=-1) - p\n"
            "    return p.masked_fill(before >= top_p, 0.0)\n"
        )
        return (
            Example("top-k-zero-unguarded", topk, topk.replace(" and top_k > 0", "")),
            Example("top-k-unclamped", topk, topk.replace("min(top_k, logits.size(-1))", "top_k")),
            Example("top-p-ascending", nucleus, nucleus.replace("descending=True", "descending=False")),
            Example("top-p-crossing-dropped", nucleus, nucleus.replace("p.cumsum(dim=-1) - p", "p.cumsum(dim=-1)")),
            Example("top-p-inverted", nucleus, nucleus.replace("before >= top_p", "before < top_p")),
            Example("temperature-dropped", temp, "probs = F.softmax(logits, dim=-1)\n"),
            Example("temperature-inverted", temp, temp.replace("/ temperature", "* temperature")),
            Example("temperature-after-softmax", temp, "probs = F.softmax(logits, dim=-1) / temperature\n"),
            Example("temperature-inverted", "logits /= temperature\n", "logits *= temperature\n"),
            # a division by something else, and a sort outside sampling
            Example("*", "x = scores / scale\ndef f(v):\n    return torch.sort(v, descending=True)\n", None),
        )
