"""over-allocation: the cache growth rule allocates more than the correct rule (or skips its rounding).

A cache that must grow takes what is needed plus one chunk of headroom, rounded up to whole chunks.
Doubling that (the seed's "grows 2x more than needed") or dropping the rounding still returns correct
keys and values; only the capacity tells, and only once the cache has grown past its first allocation.
Sites are found by structure, not by names: the growth branch `if t1 > <cache>.size(..):` (or
`.shape[..]`, or a capacity) with its `needed + headroom` assignment, and the round-up idioms
`(x + C - 1) // C * C` and `(x + K) & ~K`.
"""

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, drop_statement, parens

CAPACITY = m.Name(m.MatchRegex(r"(?i).*(capacity|size).*"))
SIZE = (
    m.Call(func=m.Attribute(attr=m.Name("size")))  # cache.size(4)
    | m.Subscript(value=m.Attribute(attr=m.Name("shape")))  # cache.shape[2]
    | m.Call(func=m.Name("len"))
    | CAPACITY
    | m.Attribute(attr=CAPACITY)  # self.capacity
    | m.Call(func=m.Attribute(attr=CAPACITY))  # self.capacity()
)
GROWS = m.If(test=m.Comparison(comparisons=[m.ComparisonTarget(operator=m.GreaterThan(), comparator=SIZE)]))
# capacity = t1 + CHUNK: the first sum assigned in the growth branch is what is needed plus headroom
HEADROOM = m.SimpleStatementLine(
    body=[m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.BinaryOperation(operator=m.Add()))]
)


def _saved(name):
    return m.SaveMatchedNode(m.DoNotCare(), name)


# (x + C - 1) // C * C
CEIL_TO_MULTIPLE = m.BinaryOperation(
    operator=m.Multiply(),
    left=m.BinaryOperation(
        operator=m.FloorDivide(),
        left=m.BinaryOperation(
            operator=m.Subtract(),
            left=m.BinaryOperation(operator=m.Add(), left=_saved("x"), right=_saved("c")),
            right=m.Integer("1"),
        ),
        right=_saved("c2"),
    ),
    right=_saved("c3"),
)
# (x + K) & ~K, with K = C - 1 and C a power of two
MASK_TO_MULTIPLE = m.BinaryOperation(
    operator=m.BitAnd(),
    left=m.BinaryOperation(operator=m.Add(), left=_saved("x"), right=_saved("c")),
    right=m.UnaryOperation(operator=m.BitInvert(), expression=_saved("c2")),
)


def rounded_operand(node: cst.CSTNode) -> cst.BaseExpression | None:
    """x when node rounds x up to a multiple (the same constant in every place), else None."""
    for pattern in (CEIL_TO_MULTIPLE, MASK_TO_MULTIPLE):
        found = m.extract(node, pattern)
        if found and all(found["c"].deep_equals(found[k]) for k in ("c2", "c3") if k in found):
            return found["x"]
    return None


def _without_rounding(node, x, scope):
    """Drop `x = round_up(x)` as a whole; elsewhere put the unrounded x in place of the expression."""
    assign = scope.parent(node)
    line = scope.parent(assign) if assign is not None else None
    block = scope.parent(line) if line is not None else None
    if (
        m.matches(assign, m.Assign(targets=[m.AssignTarget(target=m.Name())]))
        and assign.targets[0].target.deep_equals(x)
        and m.matches(line, m.SimpleStatementLine(body=[m.Assign()]))
        and isinstance(block, cst.IndentedBlock)
    ):
        return {line: drop_statement(block, line)}
    return {node: x}


class OverAllocation(Operator):
    name = "over-allocation"
    variants = ("needed-doubled", "capacity-doubled", "rounding-dropped")

    def sites(self, node, scope):
        if m.matches(node, GROWS) and isinstance(node.body, cst.IndentedBlock):
            headroom = next((s for s in node.body.body if m.matches(s, HEADROOM)), None)
            if headroom is not None:
                total = headroom.body[0].value  # needed + headroom
                yield Site("needed-doubled", {total.left: binop(cst.Integer("2"), cst.Multiply(), total.left)})
                yield Site("capacity-doubled", {total: binop(parens(total), cst.Multiply(), 2)})
        x = rounded_operand(node)
        if x is not None:
            yield Site("rounding-dropped", _without_rounding(node, x, scope))

    def examples(self):
        grow = (
            "def insert_kv(self, k):\n"
            "    t1 = self.pos + k.size(2)\n"
            "    if t1 > self.kv_cache.size(4):\n"
            "        t_needed = t1 + 1024  # what we need plus a buffer\n"
            "        t_needed = (t_needed + 1023) & ~1023\n"
            "        self.grow(t_needed)\n"
        )
        return (
            Example("needed-doubled", grow, grow.replace("= t1 + 1024", "= 2 * t1 + 1024")),
            Example("capacity-doubled", grow, grow.replace("= t1 + 1024", "= (t1 + 1024) * 2")),
            Example("rounding-dropped", grow, grow.replace("        t_needed = (t_needed + 1023) & ~1023\n", "")),
            Example(
                "rounding-dropped",
                "n = (t + CHUNK - 1) // CHUNK * CHUNK\n",
                "n = t\n",
            ),
            # rounding to a different multiple than it adds is not the round-up idiom
            Example("rounding-dropped", "n = (t + 1023) & ~511\n", None),
            # a sum outside a growth branch is not a growth rule
            Example("capacity-doubled", "t_needed = t1 + 1024\n", None),
        )
