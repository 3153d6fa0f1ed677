"""over-allocation: the cache growth rule allocates more than the correct rule (or skips its rounding).

A cache that must grow takes what is needed plus one chunk of headroom, rounded up to whole chunks.
Doubling that (the seed's "grows 2x more than needed") or dropping the rounding still returns correct
keys and values; only the capacity tells, and only once the cache has grown past its first allocation.
Sites are found by structure: the growth branch `if t1 > <cache>.size(..):` (or `.shape[..]`, or a
capacity) with its `needed + headroom` assignment, and the round-up idioms `(x + C - 1) // C * C`,
`C * ((x + C - 1) // C)`, `-(-x // C) * C`, `math.ceil(x / C) * C` and `(x + K) & ~K`, also split over two
statements (`n_steps = (C + x - 1) // C`, later `n_steps * C`). Rounding is everywhere (hidden sizes,
vocabularies), so it counts only where a cache grows: in a class that keeps cache state (or a growing buffer) on
`self`, or in a function whose name says it allocates or grows a cache.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, drop_statement, parens
from mutator.operators.meaning import bindings, body_of, class_attributes, enclosing
from mutator.operators.missing_reset import CACHE_STATE

GROWING_FUNCTION = re.compile(r"(?i)cache|grow|alloc|reserve")
BUFFER = re.compile(r"(?i)(^|_)buffer$")  # a token buffer that grows in steps, as a cache does

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


# (x + K) & ~K, with K = C - 1 and C a power of two
MASK_TO_MULTIPLE = m.BinaryOperation(
    operator=m.BitAnd(),
    left=m.BinaryOperation(operator=m.Add(), left=_saved("x"), right=_saved("c")),
    right=m.UnaryOperation(operator=m.BitInvert(), expression=_saved("c2")),
)


# ceil(x / C) written with integers: (x + C - 1) // C or (C + x - 1) // C
CEIL_DIV = m.BinaryOperation(
    operator=m.FloorDivide(),
    left=m.BinaryOperation(
        operator=m.Subtract(),
        left=m.BinaryOperation(operator=m.Add(), left=_saved("a"), right=_saved("b")),
        right=m.Integer("1"),
    ),
    right=_saved("c"),
)
NEGATED_FLOOR = m.UnaryOperation(  # -(-x // C)
    operator=m.Minus(),
    expression=m.BinaryOperation(
        operator=m.FloorDivide(),
        left=m.UnaryOperation(operator=m.Minus(), expression=_saved("x")),
        right=_saved("c"),
    ),
)
MATH_CEIL = m.Call(  # math.ceil(x / C)
    func=m.Attribute(attr=m.Name("ceil")) | m.Name("ceil"),
    args=[m.Arg(value=m.BinaryOperation(operator=m.Divide(), left=_saved("x"), right=_saved("c")))],
)


def ceil_division(node: cst.CSTNode) -> tuple[cst.BaseExpression, cst.BaseExpression] | None:
    """(x, C) when node computes ceil(x / C) in one of its integer spellings, else None."""
    found = m.extract(node, CEIL_DIV)
    if found:
        a, b, c = found["a"], found["b"], found["c"]
        if b.deep_equals(c):
            return a, c
        if a.deep_equals(c):
            return b, c
        return None
    for pattern in (NEGATED_FLOOR, MATH_CEIL):
        found = m.extract(node, pattern)
        if found:
            return found["x"], found["c"]
    return None


def rounded_operand(node: cst.CSTNode) -> cst.BaseExpression | None:
    """x when node rounds x up to a multiple (the same constant in every place), else None."""
    found = m.extract(node, MASK_TO_MULTIPLE)
    if found and found["c"].deep_equals(found["c2"]):
        return found["x"]
    if m.matches(node, m.BinaryOperation(operator=m.Multiply())):
        for ceil, multiple in ((node.left, node.right), (node.right, node.left)):
            division = ceil_division(ceil)
            if division is not None and division[1].deep_equals(multiple):
                return division[0]
    return None


def _whole_steps(node: cst.CSTNode, scope) -> cst.Name | None:
    """The step count of `n_steps * step` when n_steps is bound once, in the function, to ceil(x / step)."""
    if not m.matches(node, m.BinaryOperation(operator=m.Multiply())):
        return None
    for count, step in ((node.left, node.right), (node.right, node.left)):
        if isinstance(count, cst.Name):
            values = bindings(body_of(node, scope)).get(count.value, ())
            division = ceil_division(values[0]) if len(values) == 1 else None
            if division is not None and division[1].deep_equals(step):
                return count
    return None


def _is_rounded(node: cst.CSTNode | None) -> bool:
    return node is not None and rounded_operand(node) is not None


def grows_cache(node: cst.CSTNode, scope) -> bool:
    """node sits in a class that keeps cache state, or in a function named for allocating or growing."""
    cls = enclosing(node, scope, cst.ClassDef)
    if cls is not None and any(CACHE_STATE.search(name) or BUFFER.search(name) for name in class_attributes(cls)):
        return True
    function = enclosing(node, scope, cst.FunctionDef)
    return function is not None and bool(GROWING_FUNCTION.search(function.name.value))


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
    variants = ("needed-doubled", "capacity-doubled", "rounding-dropped", "steps-doubled", "steps-floored")

    def sites(self, node, scope):
        if not isinstance(node, (cst.If, cst.BinaryOperation, cst.UnaryOperation, cst.Call)):
            return
        if not grows_cache(node, scope):
            return
        if m.matches(node, GROWS) and isinstance(node.body, cst.IndentedBlock):
            headroom = next((s for s in node.body.body if m.matches(s, HEADROOM)), None)
            if headroom is not None:
                total = headroom.body[0].value  # needed + headroom
                yield Site("needed-doubled", {total.left: binop(cst.Integer("2"), cst.Multiply(), total.left)})
                yield Site("capacity-doubled", {total: binop(parens(total), cst.Multiply(), 2)})
        steps = _whole_steps(node, scope)
        if steps is not None:  # n_steps * step, with n_steps = ceil(needed / step) earlier in the function
            yield Site("capacity-doubled", {steps: binop(cst.Integer("2"), cst.Multiply(), steps)})
        x = rounded_operand(node)
        if x is not None:
            yield Site("rounding-dropped", _without_rounding(node, x, scope))
        elif ceil_division(node) is not None and not _is_rounded(scope.parent(node)):
            # the round-up split over two statements: the number of whole steps, multiplied later
            x, step = ceil_division(node)
            yield Site("steps-doubled", {node: binop(cst.Integer("2"), cst.Multiply(), parens(node))})
            yield Site("steps-floored", {node: binop(parens(x), cst.FloorDivide(), step)})

    def examples(self):
        grow = (
            "def insert_kv(self, k):\n"
            "    t1 = self.pos + k.size(2)\n"
            "    if t1 > self.kv_cache.size(4):\n"
            "        t_needed = t1 + 1024  # what we need plus a buffer\n"
            "        t_needed = (t_needed + 1023) & ~1023\n"
            "        self.kv_cache = self.grown(t_needed)\n"
        )
        grow = "class KVCache:\n" + "".join(f"    {line}\n" for line in grow.splitlines())
        return (
            Example("needed-doubled", grow, grow.replace("= t1 + 1024", "= 2 * t1 + 1024")),
            Example("capacity-doubled", grow, grow.replace("= t1 + 1024", "= (t1 + 1024) * 2")),
            Example("rounding-dropped", grow, grow.replace("            t_needed = (t_needed + 1023) & ~1023\n", "")),
            Example(
                "rounding-dropped",
                "def grow_cache(t):\n    n = (t + CHUNK - 1) // CHUNK * CHUNK\n",
                "def grow_cache(t):\n    n = t\n",
            ),
            Example(
                "steps-doubled",
                "class KVCache:\n    def update(self, keys):\n"
                "        n_steps = (self.step + keys.shape[2] - 1) // self.step\n"
                "        self.keys = zeros((n_steps * self.step,))\n",
                "class KVCache:\n    def update(self, keys):\n"
                "        n_steps = 2 * ((self.step + keys.shape[2] - 1) // self.step)\n"
                "        self.keys = zeros((n_steps * self.step,))\n",
            ),
            Example(
                "capacity-doubled",
                "class KVCache:\n    def update(self, keys):\n"
                "        n_steps = (self.step + keys.shape[2] - 1) // self.step\n"
                "        self.keys = zeros((n_steps * self.step,))\n",
                "class KVCache:\n    def update(self, keys):\n"
                "        n_steps = (self.step + keys.shape[2] - 1) // self.step\n"
                "        self.keys = zeros((2 * n_steps * self.step,))\n",
            ),
            Example(
                "steps-floored",
                "class KVCache:\n    def update(self, keys):\n"
                "        n_steps = (self.step + keys.shape[2] - 1) // self.step\n"
                "        self.keys = zeros((n_steps * self.step,))\n",
                "class KVCache:\n    def update(self, keys):\n"
                "        n_steps = (keys.shape[2]) // self.step\n"
                "        self.keys = zeros((n_steps * self.step,))\n",
            ),
            Example(
                "rounding-dropped",
                "class Tokens:\n    def extend(self, end):\n"
                "        n = ((end + self.step - 1) // self.step) * self.step\n        self._buffer = grow(n)\n",
                "class Tokens:\n    def extend(self, end):\n        n = end\n        self._buffer = grow(n)\n",
            ),
            # rounding a hidden size is not cache growth
            Example("rounding-dropped", "def ffn(h, m):\n    return m * ((h + m - 1) // m)\n", None),
            # rounding to a different multiple than it adds is not the round-up idiom
            Example("rounding-dropped", "n = (t + 1023) & ~511\n", None),
            # a sum outside a growth branch is not a growth rule
            Example("capacity-doubled", "t_needed = t1 + 1024\n", None),
        )
