"""inverted-predicate: a boolean flag, keyword argument, branch condition or boolean mask computed by a
comparison is inverted (`!=` <-> `==`, `<` <-> `>=`, `is` <-> `is not`, `in` <-> `not in`).

The seed: `enable_gqa = self.n_head != self.n_kv_head` written with `==`, which only shows when
1 < n_kv_head < n_head. The same slip in attention's mask branches (`if Tq == Tk:`, `elif Tq == 1:`)
picks the wrong mask for prefill or decode. In fine-tuning, `targets[mask == 0] = -1` written with `!=`
(or `masked_fill(mask == 0, -1)`, `torch.where(mask == 1, ...)` inverted) trains on the prompt and ignores
the answers. Comparisons are everywhere, so the catalogue scopes this operator to the functions where
such a slip is the bug class it names.

Only the operator is flipped, so each site plants one mutant: `mask == 0` -> `mask == 1` would be the
same inversion on a 0/1 mask, and `mask != 1` no inversion at all.
"""

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site

INVERSE = {
    cst.Equal: cst.NotEqual,
    cst.NotEqual: cst.Equal,
    cst.LessThan: cst.GreaterThanEqual,
    cst.GreaterThanEqual: cst.LessThan,
    cst.GreaterThan: cst.LessThanEqual,
    cst.LessThanEqual: cst.GreaterThan,
    cst.Is: cst.IsNot,
    cst.IsNot: cst.Is,
    cst.In: cst.NotIn,
    cst.NotIn: cst.In,
}

SINGLE = m.Comparison(comparisons=[m.ComparisonTarget()])  # a op b (not a chain like a < b < c)
FLAG = m.Assign(value=SINGLE) | m.AnnAssign(value=SINGLE)  # enable_gqa = a != b
KEYWORD = m.Arg(keyword=m.Name(), value=SINGLE)  # f(..., enable_gqa=a != b)
BRANCH = m.If(test=SINGLE)  # if Tq == Tk:  /  elif Tq == 1:
INDEX = m.SubscriptElement(slice=m.Index(value=SINGLE))  # targets[mask == 0] = -1
ARGUMENT = m.Arg(keyword=None, star="", value=SINGLE)  # masked_fill(mask == 0, -1), where(mask == 1, ...)


def _inverted(comparison: cst.Comparison) -> dict:
    operator = comparison.comparisons[0].operator
    inverse = INVERSE[type(operator)](
        whitespace_before=operator.whitespace_before, whitespace_after=operator.whitespace_after
    )
    return {operator: inverse}


class InvertedPredicate(Operator):
    name = "inverted-predicate"
    variants = (
        "flag-inverted",
        "keyword-inverted",
        "if-inverted",
        "elif-inverted",
        "index-inverted",
        "argument-inverted",
    )

    def sites(self, node, scope):
        if m.matches(node, FLAG):
            yield Site("flag-inverted", _inverted(node.value))
        elif m.matches(node, KEYWORD):
            yield Site("keyword-inverted", _inverted(node.value))
        elif m.matches(node, BRANCH):
            is_elif = isinstance(scope.parent(node), cst.If)  # an elif is the orelse of its if
            yield Site("elif-inverted" if is_elif else "if-inverted", _inverted(node.test))
        elif m.matches(node, INDEX):
            yield Site("index-inverted", _inverted(node.slice.value))
        elif m.matches(node, ARGUMENT):
            yield Site("argument-inverted", _inverted(node.value))

    def examples(self):
        branches = "if Tq == Tk:\n    mask = None\nelif Tq == 1:\n    mask = ones\n"
        return (
            Example(
                "flag-inverted",
                "enable_gqa = self.n_head != self.n_kv_head\n",
                "enable_gqa = self.n_head == self.n_kv_head\n",
            ),
            Example(
                "keyword-inverted",
                "y = sdpa(q, k, v, enable_gqa=q.size(1) != k.size(1))\n",
                "y = sdpa(q, k, v, enable_gqa=q.size(1) == k.size(1))\n",
            ),
            Example("if-inverted", branches, branches.replace("Tq == Tk", "Tq != Tk")),
            Example("elif-inverted", branches, branches.replace("Tq == 1", "Tq != 1")),
            Example("flag-inverted", "causal = mask is None\n", "causal = mask is not None\n"),
            Example("if-inverted", "if t < n:\n    pass\n", "if t >= n:\n    pass\n"),
            Example("index-inverted", "targets[mask == 0] = -1\n", "targets[mask != 0] = -1\n"),
            Example(
                "argument-inverted",
                "targets = targets.masked_fill(mask == 0, -1)\n",
                "targets = targets.masked_fill(mask != 0, -1)\n",
            ),
            # assertions and returns are not flags or branches
            Example("flag-inverted", "assert n_head % n_kv_head == 0\n", None),
            Example("flag-inverted", "def f(a, b):\n    return a == b\n", None),
        )
