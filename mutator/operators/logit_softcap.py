"""logit-softcap: the tanh soft cap `cap * tanh(x / cap)` dropped, applied twice, or half applied.

Soft-capping bounds logits smoothly in (-cap, cap) while leaving small ones almost unchanged. The slips
(a softcap dropped or applied twice; kekzl/imp #1304 files them under numerics):
- cap-dropped: raw logits, unbounded;
- cap-twice: the capped logits capped again (bounded, but squashed);
- cap-unscaled-inside: `cap * tanh(x)`, which saturates for every |x| above 1;
- cap-unscaled-outside: `tanh(x / cap)`, bounded by 1 instead of cap.
Logits of a freshly initialised model are tiny, where tanh(x) is x: only logits large enough to reach the
cap, compared with the closed form, see these.

Sites, by meaning: `c * tanh(x / c)` (either order of the product, `torch.tanh`, `jnp.tanh`, `mx.tanh` or a
`.tanh()` method) with the same `c` twice, and its three-statement spelling `x = x / c`, `x = tanh(x)`,
`x = x * c` in one block. A tanh without the matching scale on both sides (GELU's) is not a cap.
"""

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, drop_statement, parens
from mutator.operators.meaning import code

TANH_CALL = m.Call(func=m.Name("tanh") | m.Attribute(attr=m.Name("tanh")))


def _tanh_argument(expr) -> cst.BaseExpression | None:
    """tanh(a) -> a, a.tanh() -> a."""
    if not m.matches(expr, TANH_CALL):
        return None
    if expr.args:
        return expr.args[0].value
    return expr.func.value if isinstance(expr.func, cst.Attribute) else None


def _replace_argument(tanh: cst.Call, new: cst.BaseExpression) -> cst.Call:
    if tanh.args:
        return tanh.with_changes(args=[tanh.args[0].with_changes(value=new), *tanh.args[1:]])
    return tanh.with_changes(
        func=tanh.func.with_changes(value=parens(new) if isinstance(new, cst.BinaryOperation) else new)
    )


class LogitSoftcap(Operator):
    name = "logit-softcap"
    variants = ("cap-dropped", "cap-twice", "cap-unscaled-inside", "cap-unscaled-outside")

    def sites(self, node, scope):
        if m.matches(node, m.BinaryOperation(operator=m.Multiply())):
            for cap, tanh in ((node.left, node.right), (node.right, node.left)):
                inner = _tanh_argument(tanh)
                if inner is None or not m.matches(inner, m.BinaryOperation(operator=m.Divide())):
                    continue
                if code(inner.right) != code(cap):
                    continue
                raw = inner.left
                yield Site("cap-dropped", {node: raw.with_changes(lpar=node.lpar, rpar=node.rpar)})
                again = _replace_argument(tanh, binop(parens(node), cst.Divide(), cap))
                twice = node.with_changes(left=again) if tanh is node.left else node.with_changes(right=again)
                yield Site("cap-twice", {node: twice})
                yield Site("cap-unscaled-inside", {inner: raw})
                yield Site("cap-unscaled-outside", {node: tanh.with_changes(lpar=node.lpar, rpar=node.rpar)})
                return
        elif isinstance(node, cst.IndentedBlock | cst.Module):
            yield from self._statements(node)

    def _statements(self, block):
        """`x = x / c`, `x = tanh(x)`, `x = x * c`: three statements in a row."""
        lines = list(block.body)
        for i in range(len(lines) - 2):
            parts = [self._assignment(line) for line in lines[i : i + 3]]
            if not all(parts):
                continue
            (x1, v1), (x2, v2), (x3, v3) = parts
            if not (x1 == x2 == x3):
                continue
            if not (m.matches(v1, m.BinaryOperation(operator=m.Divide())) and code(v1.left) == x1):
                continue
            if _tanh_argument(v2) is None or code(_tanh_argument(v2)) != x1:
                continue
            if not (m.matches(v3, m.BinaryOperation(operator=m.Multiply())) and code(v3.left) == x1):
                continue
            if code(v3.right) != code(v1.right):
                continue
            divide, tanh, multiply = lines[i : i + 3]
            yield Site(
                "cap-dropped",
                {
                    divide: cst.RemovalSentinel.REMOVE,
                    tanh: cst.RemovalSentinel.REMOVE,
                    multiply: drop_statement(block, multiply),
                },
            )
            yield Site("cap-twice", {multiply: cst.FlattenSentinel([multiply, divide, tanh, multiply.deep_clone()])})
            yield Site("cap-unscaled-inside", {divide: drop_statement(block, divide)})
            yield Site("cap-unscaled-outside", {multiply: drop_statement(block, multiply)})

    @staticmethod
    def _assignment(line):
        if not m.matches(
            line, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name() | m.Attribute())])])
        ):
            return None
        assign = line.body[0]
        return code(assign.targets[0].target), assign.value

    def examples(self):
        inline = "logits = softcap * torch.tanh(logits / softcap)\n"
        gemma = (
            "def final(logits, cap):\n"
            "    logits = logits / cap\n"
            "    logits = torch.tanh(logits)\n"
            "    logits = logits * cap\n"
            "    return logits\n"
        )
        return (
            Example("cap-dropped", inline, "logits = logits\n"),
            Example(
                "cap-twice",
                inline,
                "logits = softcap * torch.tanh((softcap * torch.tanh(logits / softcap)) / softcap)\n",
            ),
            Example("cap-unscaled-inside", inline, "logits = softcap * torch.tanh(logits)\n"),
            Example("cap-unscaled-outside", inline, "logits = torch.tanh(logits / softcap)\n"),
            Example("cap-unscaled-outside", gemma, gemma.replace("    logits = logits * cap\n", "")),
            # GELU's tanh has no cap on both sides
            Example("*", "y = 0.5 * x * (1 + torch.tanh(0.79788 * (x + 0.044715 * x ** 3)))\n", None),
        )
