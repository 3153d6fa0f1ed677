"""over-allocation: the cache growth rule allocates more than the correct rule (or skips its rounding).

A cache that must grow takes what is needed plus one chunk of headroom, rounded up to whole chunks.
Doubling that (the seed's "grows 2x more than needed") or dropping the rounding still returns correct
keys and values; only the capacity tells, and only once the cache has grown past its first allocation.
Sites are found by structure: the growth branch `if t1 > <cache>.size(..):` (or `.shape[..]`, or a
capacity) with its `needed + headroom` assignment, and the round-up idioms `(x + C - 1) // C * C`,
`C * ((x + C - 1) // C)`, `-(-x // C) * C`, `math.ceil(x / C) * C` and `(x + K) & ~K`, also split over two
statements (`n_steps = (C + x - 1) // C`, later `n_steps * C`), or spelled `(x + (C - 1)) // C`,
`torch.div(x + (C - 1), C, rounding_mode="floor")` or `cdiv(x, C)`; and a rotating cache's step capped by the
room left (`if offset >= self.keys.shape[2]: new_size = min(self.step, self.max_size - offset)`), doubled.
Rounding is everywhere (hidden sizes,
vocabularies), so it counts only where a cache grows: in a class that keeps cache state (or a growing buffer) on
`self`, or in a function whose name says it allocates or grows a cache.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, drop_statement, parens
from mutator.operators.meaning import bindings, body_of, class_attributes, enclosing
from mutator.operators.missing_reset import keeps_cache

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
# the growth step capped by the room left: new_size = min(self.step, self.max_size - used)
CAPPED = m.SimpleStatementLine(
    body=[
        m.Assign(
            targets=[m.AssignTarget(target=m.Name())],
            value=m.Call(
                func=m.Name("min"),
                args=[m.Arg(keyword=None), m.Arg(keyword=None)],
            ),
        )
    ]
)
OUTGROWN = m.Comparison(
    comparisons=[m.ComparisonTarget(operator=m.GreaterThan() | m.GreaterThanEqual(), comparator=SIZE)]
)


def _outgrows(test: cst.BaseExpression) -> bool:
    """The test (or a part of an `or` / `and`) asks whether what is used reaches the cache's size."""
    return bool(m.findall(test, OUTGROWN))


def _step_and_room(call: cst.Call):
    """(step, room) of min(step, limit - used), either order, else None."""
    a, b = (arg.value for arg in call.args)
    difference = m.BinaryOperation(operator=m.Subtract())
    if m.matches(b, difference) and not m.matches(a, difference):
        return a, b
    if m.matches(a, difference) and not m.matches(b, difference):
        return b, a
    return None


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


# ceil(x / C) as x + (C - 1), floored: (x + (C - 1)) // C, torch.div(x + (C - 1), C, rounding_mode="floor")
PLUS_C_MINUS_ONE = m.BinaryOperation(
    operator=m.Add(),
    left=_saved("a"),
    right=m.BinaryOperation(operator=m.Subtract(), left=_saved("b"), right=m.Integer("1")),
)
FLOORED = m.Call(
    func=m.Attribute(attr=m.Name("div")) | m.Name("div"),
    args=[
        m.Arg(value=_saved("n"), keyword=None),
        m.Arg(value=_saved("c"), keyword=None),
        m.Arg(keyword=m.Name("rounding_mode"), value=m.SimpleString(m.MatchRegex("^.floor.$"))),
    ],
) | m.Call(
    func=m.Attribute(attr=m.Name("floor_divide")) | m.Name("floor_divide"),
    args=[m.Arg(value=_saved("n")), m.Arg(value=_saved("c"))],
)
# a ceil division by name: triton.cdiv(x, C), ceil_div(x, C), div_ceil(x, C)
NAMED_CEIL = re.compile(r"(?i)^(cdiv|ceil_?div|div_?ceil|ceildiv|div_round_up)$")
NAMED = m.Call(
    func=m.Attribute(attr=m.Name(m.MatchRegex(NAMED_CEIL.pattern))) | m.Name(m.MatchRegex(NAMED_CEIL.pattern)),
    args=[m.Arg(value=_saved("x"), keyword=None), m.Arg(value=_saved("c"), keyword=None)],
)


def _unwrapped(node):
    """node without its parentheses' meaning: `(x + C - 1)` and `x + C - 1` are the same sum."""
    return (
        node.with_changes(lpar=[], rpar=[])
        if isinstance(node, cst.BaseExpression) and getattr(node, "lpar", None)
        else node
    )


def _numerator(numerator, c):
    """x when numerator is x + C - 1 (either order) or x + (C - 1), else None."""
    found = m.extract(
        numerator,
        m.BinaryOperation(
            operator=m.Subtract(),
            left=m.BinaryOperation(operator=m.Add(), left=_saved("a"), right=_saved("b")),
            right=m.Integer("1"),
        ),
    ) or m.extract(numerator, PLUS_C_MINUS_ONE)
    if not found:
        return None
    a, b = found["a"], found["b"]
    c = _unwrapped(c)
    if _unwrapped(b).deep_equals(c):
        return a
    if _unwrapped(a).deep_equals(c):
        return b
    return None


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
    if m.matches(node, m.BinaryOperation(operator=m.FloorDivide())):
        x = _numerator(node.left, node.right)
        return (x, node.right) if x is not None else None
    found = m.extract(node, FLOORED)
    if found:
        x = _numerator(found["n"], found["c"])
        return (x, found["c"]) if x is not None else None
    found = m.extract(node, NAMED)
    if found:
        return found["x"], found["c"]
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
    if cls is not None and (keeps_cache(cls) or any(BUFFER.search(name) for name in class_attributes(cls))):
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
        if (
            isinstance(node, cst.If)
            and not m.matches(node, GROWS)
            and _outgrows(node.test)
            and isinstance(node.body, cst.IndentedBlock)
        ):
            capped = next((s for s in node.body.body if m.matches(s, CAPPED)), None)
            found = _step_and_room(capped.body[0].value) if capped is not None else None
            if found is not None:  # the cache grows by a step, at most to its maximum
                step, _room = found
                simple = isinstance(step, (cst.Name, cst.Attribute, cst.Integer))
                yield Site(
                    "capacity-doubled",
                    {step: binop(cst.Integer("2"), cst.Multiply(), step if simple else parens(step))},
                )
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
        rotating = (
            "class RotatingKVCache:\n    def update(self, keys):\n        prev = self.offset\n"
            "        if self.keys is None or prev >= self.keys.shape[2]:\n"
            "            new_size = min(self.step, self.max_size - prev)\n            self.keys = grow(new_size)\n"
        )
        paged = "class PagedCache:\n    def blocks_for(self, n):\n        self.kv_cache = None\n"
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
            # the block count of a paged cache, spelled as a floored division of x + (C - 1)
            Example(
                "steps-floored",
                paged
                + '        blocks = torch.div(n + (self.block_size - 1), self.block_size, rounding_mode="floor")\n',
                paged + "        blocks = (n) // self.block_size\n",
            ),
            Example(
                "steps-doubled",
                paged + "        blocks = (n + (self.block_size - 1)) // self.block_size\n",
                paged + "        blocks = 2 * ((n + (self.block_size - 1)) // self.block_size)\n",
            ),
            Example(
                "steps-doubled",
                paged + "        blocks = cdiv(n, self.block_size)\n",
                paged + "        blocks = 2 * (cdiv(n, self.block_size))\n",
            ),
            # a layer that counts key/value heads and calls a cache update keeps no cache state of its own:
            # splitting its heads over ranks is no cache growth
            Example(
                "steps-*",
                "class ParallelAttention:\n    def __init__(self, num_heads_kv):\n"
                "        self.num_heads_kv = num_heads_kv\n"
                "        local = math.ceil(self.num_heads / self.world_size)\n"
                "    def forward(self, kv):\n        return self._update_kv_cache(kv)\n"
                "    def _update_kv_cache(self, kv):\n        return kv\n",
                None,
            ),
            # a floored division of x + (D - 1) by another C is no round-up
            Example("steps-*", paged + "        blocks = (n + (self.page - 1)) // self.block_size\n", None),
            # a rotating cache grows by a step until it reaches its maximum size
            Example("capacity-doubled", rotating, rotating.replace("min(self.step,", "min(2 * self.step,")),
            # a min of two sizes that are not a step and the room left is no growth rule
            Example("capacity-doubled", rotating.replace("self.max_size - prev", "self.max_size"), None),
            # rounding a hidden size is not cache growth
            Example("rounding-dropped", "def ffn(h, m):\n    return m * ((h + m - 1) // m)\n", None),
            # rounding to a different multiple than it adds is not the round-up idiom
            Example("rounding-dropped", "n = (t + 1023) & ~511\n", None),
            # a sum outside a growth branch is not a growth rule
            Example("capacity-doubled", "t_needed = t1 + 1024\n", None),
        )
