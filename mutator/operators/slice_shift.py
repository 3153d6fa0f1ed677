"""slice-shift: a slice that cuts k tokens off one end cuts them off the other end, or one more or one fewer.

Next-token targets are the stream without its first token, inputs the stream without its last:
`inputs, targets = tokens[:-1], tokens[1:]`. Mirroring either slice (`tokens[1:]` -> `tokens[:-1]`)
makes targets equal inputs: the loss falls fast and the model learns to copy. Cutting one more or one
fewer (`tokens[2:]`, `tokens[:]`) shifts the targets by two or not at all, which a fixed-shape batch
turns into a shape error, and a loader that keeps its last token for the next batch
(`del buffer[: needed - 1]`) into tokens lost or predicted twice at every batch boundary.

Sites, in any dimension of a subscript, with a literal k >= 1 and no step: `x[k:]`, `x[:-k]`, and
`x[:n - k]` (which has no mirror); and a window shifted by one, `x[1 : n + 1]` or `x[a + 1 : b + 1]`, whose
shift can be lost (`x[0 : n]`, `x[a : b]`). Slices are everywhere, so a site must be about the sequence
being shifted: the sliced value, or the name it is assigned to, names tokens, targets, labels or logits
(`tokens[1:]`, `shift_labels = labels[..., 1:]`, `logits[:, :-1]`). The fine-tuning mask is the same slip
on a mask (`mask[:, 1:]`), a class of its own: the operator is made once per meaning (see OPERATORS).
"""

import itertools
import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, drop_statement
from mutator.operators.inverted_predicate import IGNORE_VALUE
from mutator.operators.meaning import ANY_MASK, SHIFTED, bindings, descendants, enclosing, identifiers, mentions

K = m.Integer(m.MatchIfTrue(lambda text: int(text, 0) >= 1))
FROM_K = m.Slice(lower=K, upper=None, step=None)  # x[k:]
TO_MINUS_K = m.Slice(lower=None, upper=m.UnaryOperation(operator=m.Minus(), expression=K), step=None)  # x[:-k]
TO_N_MINUS_K = m.Slice(lower=None, upper=m.BinaryOperation(operator=m.Subtract(), right=K), step=None)  # x[:n - k]
PLUS_ONE = m.BinaryOperation(operator=m.Add(), right=m.Integer("1"))
PREDICTIONS = re.compile(r"(?i)logit|pred")
FROM_ZERO = m.Slice(lower=m.Integer("0"), upper=~m.Integer() & ~m.UnaryOperation(), step=None)  # x[0 : n]
WINDOW = m.Slice(lower=m.Integer("1") | PLUS_ONE, upper=PLUS_ONE, step=None)  # x[1 : n + 1], x[a + 1 : b + 1]
MINUS_ONE = m.UnaryOperation(operator=m.Minus(), expression=m.Integer("1"))
# torch.roll(labels, shifts=-1), labels.roll(-1, 0): the stream rolled left by one, next tokens as targets
ROLL = m.Call(func=m.Attribute(attr=m.Name("roll")), args=[m.AtLeastN(m.Arg(), n=1)])
ARRAY_MODULES = m.Name("torch") | m.Name("np") | m.Name("numpy") | m.Name("mx") | m.Name("jnp")
# a switch that says the labels are shifted: `self.shift_labels = True`, `get_targets(y) if shift_labels else y`
SHIFT_FLAG = re.compile(r"(?i)^shift_(labels|targets|tokens)$")
# what text is cut with (a string is sliced for its characters, not shifted): `name.startswith("length>=")`
TEXT_METHODS = {"startswith", "endswith", "rsplit", "strip", "lower", "upper", "isdigit"}
# ... and what a tensor has too (`tokens.split(4)` cuts a batch into chunks): text only on a string
TENSOR_OR_TEXT_METHODS = {"split", "format"}
TEXT = m.SimpleString() | m.FormattedString() | m.ConcatenatedString()
# a slice compared with the ignore index, or counted, counts the tokens that are trained (another class)
COUNTS = re.compile(r"^(count_nonzero|sum|numel)$")
COMPARES = re.compile(r"^(eq|ne)$")
# what a count may see the slice through and still count the slice itself: `(labels[:, 1:] != -100).long().sum()`
CASTS = re.compile(r"^(eq|ne|float|long|int|bool|to|type|type_as)$")
IGNORED = re.compile(r"(?i)ignore")
# what a count is assigned to: `num_targets = labels[:, 1:] != -100` counts (a comparison that masks does not)
COUNTED = re.compile(r"(?i)(^|_)(n|num|count|total)(_|$)|count")
# what only the shape of a slice is taken for: `.view_as(labels[:, 1:])` (a mirrored slice has the same shape)
SHAPE_OF = {"view_as", "reshape_as", "expand_as"}
# the values whose neighbours are paired for another reason than a shift: boundaries and lengths
# (`offsets[1:] - offsets[:-1]`), times, positions
BOUNDARIES = re.compile(r"(?i)offset|len|cu_?seq|bound|indptr|cum|pos|time|step|start|end|edge|shape|size")
ARITHMETIC = (cst.Subtract, cst.Add, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power)
SHIFT_FUNCTION = re.compile(r"(?i)target|label|shift|next")


def _k(integer: cst.Integer) -> int:
    return int(integer.value, 0)


def _minus(k: int) -> cst.UnaryOperation:
    return cst.UnaryOperation(operator=cst.Minus(), expression=cst.Integer(str(k)))


def _about(node, scope) -> set[str]:
    """The names a slice is about: the value it cuts, and the names its result is assigned to (directly or
    through method calls, `x[1:].contiguous()`; not when it is only an argument of another call)."""
    parent = scope.parent(node)
    while parent is not None and not isinstance(parent, cst.Subscript):
        parent = scope.parent(parent)
    if parent is None:
        return set()
    if m.matches(parent.value, m.Attribute(attr=m.Name("shape")) | m.Call(func=m.Attribute(attr=m.Name("size")))):
        return set()  # x.shape[:-1] cuts dimensions, not a sequence
    names = identifiers(parent.value)
    result = parent
    while True:
        up = scope.parent(result)
        if (isinstance(up, cst.Attribute) and up.value is result) or (isinstance(up, cst.Call) and up.func is result):
            result = up  # x[1:].contiguous().long()
        else:
            break
    assign = scope.parent(result)
    if isinstance(assign, cst.Assign) and assign.value is result:
        targets = [t.target for t in assign.targets]
        if any(t.deep_equals(parent.value) for t in targets) and not mentions(parent.value, PREDICTIONS):
            return set()  # tokens = tokens[1:] trims a sequence in place (a BOS stripped), it shifts nothing;
            # predictions are cut in place only to line up with targets: logits = logits[:, :-1]
        names |= set().union(*(identifiers(t) for t in targets))
    return names


def _is_text(name: cst.BaseExpression, scope, node) -> bool:
    """The function calls a string method on `name`, or compares it with a string: it holds text. A method
    that tensors have too (`split`, `format`) says text only when `name` is a string: split by a string or
    by whitespace (`line.split(",")`, `line.split()`), or bound to a string literal."""
    function = enclosing(node, scope, cst.FunctionDef)
    if function is None or not isinstance(name, cst.Name):
        return False
    same = m.Name(name.value)
    text_call = m.Call(func=m.Attribute(value=same, attr=m.Name(m.MatchIfTrue(lambda a: a in TEXT_METHODS))))
    split_by_text = m.Call(
        func=m.Attribute(value=same, attr=m.Name("split")),
        args=m.MatchIfTrue(lambda args: not args or m.matches(args[0].value, TEXT)),
    )
    compared = m.Comparison(left=same, comparisons=[m.ComparisonTarget(comparator=m.SimpleString())])
    if m.findall(function, text_call | split_by_text | compared):
        return True
    ambiguous = m.Call(func=m.Attribute(value=same, attr=m.Name(m.MatchIfTrue(lambda a: a in TENSOR_OR_TEXT_METHODS))))
    return bool(m.findall(function, ambiguous)) and any(
        m.matches(value, TEXT) for value in bindings(function).get(name.value, ())
    )


def _not_a_shift(node: cst.Slice, scope) -> bool:
    """A slice that cuts but shifts nothing: of text, a truncation that makes room for a token appended after
    it (`target[: n - 1] + [eos]`), a count (`count_nonzero(eq(labels[..., 1:], ignore))`), or the cut that
    takes back a pad (`F.pad(labels, (0, 1))[..., :-1]` only realigns memory)."""
    subscript = scope.parent(node)
    while subscript is not None and not isinstance(subscript, cst.Subscript):
        subscript = scope.parent(subscript)
    if subscript is None:
        return False
    if _is_text(subscript.value, scope, node) or enclosing(node, scope, cst.Assert) is not None:
        return True  # text, or a check: an assert decides nothing about the targets, it only raises
    up = scope.parent(subscript)
    if m.matches(up, m.BinaryOperation(operator=m.Add())) and up.left is subscript and _cut_from_zero(node):
        return True  # truncated, then something appended: `target[: n - 1] + [eos]` (`ids[1:] + [eos]` shifts)
    # the slice itself is counted, or compared with the ignore value: nothing but comparisons and casts
    # between it and the count (`-(logp[:, :-1].gather(-1, t[:, 1:]) * mask).sum()` counts a product)
    if _shape_only(subscript, scope):
        return True
    # a comparison with the ignore value is a count of the trained tokens when it is counted or assigned to a
    # count; one that is kept as a mask (`valid = labels[:, 1:] != -100`) lines up with the shifted targets
    below, direct, compared = subscript, True, False
    while up is not None and not isinstance(up, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
        if isinstance(up, cst.Comparison) and _against_ignore(up.left, *(t.comparator for t in up.comparisons)):
            compared = True
        if isinstance(up, cst.Call):
            func = up.func.attr if isinstance(up.func, cst.Attribute) else up.func
            name = func.value if isinstance(func, cst.Name) else ""
            if COMPARES.match(name) and _against_ignore(*(a.value for a in up.args)):
                compared = True
            if COUNTS.match(name) and (direct or compared):
                return True
            direct = direct and bool(CASTS.match(name) or COUNTS.match(name))
        elif not isinstance(up, (cst.Comparison, cst.ComparisonTarget, cst.Arg, cst.Attribute)) or (
            isinstance(up, cst.Attribute) and up.value is not below
        ):
            direct = False
        below, up = up, scope.parent(up)
    if compared and not (
        isinstance(up, cst.Assign) and any(COUNTED.search(n) for t in up.targets for n in identifiers(t.target))
    ):
        return False  # a mask of the shifted targets
    if compared:
        return True
    if _returned_trim(node, subscript, scope):
        return True
    pad = m.Call(
        func=m.Name("pad") | m.Attribute(attr=m.Name("pad")),
        args=[m.Arg(), m.Arg(value=m.Tuple(elements=[m.Element(m.Integer()), m.Element(m.Integer())])), m.ZeroOrMore()],
    )
    if m.matches(subscript.value, pad):
        before, after = (int(e.value.value, 0) for e in subscript.value.args[1].value.elements)
        if m.matches(node, FROM_K):
            return _k(node.lower) == before
        if m.matches(node, TO_MINUS_K):
            return _k(node.upper.expression) == after
    return False


def _shape_only(subscript: cst.Subscript, scope) -> bool:
    """Only the slice's shape is used: `.view_as(labels[:, 1:])`, `tokens[1:].shape`, `x[:-1].size(0)`."""
    up = scope.parent(subscript)
    if isinstance(up, cst.Attribute) and up.value is subscript:
        return up.attr.value in ("shape", "size")
    if isinstance(up, cst.Arg):
        call = scope.parent(up)
        return m.matches(call, m.Call(func=m.Attribute(attr=m.Name(m.MatchIfTrue(lambda a: a in SHAPE_OF)))))
    return False


def _returned_trim(node: cst.Slice, subscript: cst.Subscript, scope) -> bool:
    """`return tokens[..., 1:]` in a function that cuts nothing else off the tokens and is not about targets:
    a sequence handed back without its first token (a BOS stripped), no pair of inputs and targets."""
    if not m.matches(node, FROM_K) or mentions(subscript.value, PREDICTIONS):
        return False
    up = scope.parent(subscript)
    while isinstance(up, (cst.Attribute, cst.Call)) and (
        getattr(up, "value", None) is subscript or getattr(up, "func", None) is subscript
    ):
        subscript, up = up, scope.parent(up)
    function = enclosing(node, scope, cst.FunctionDef)
    if not isinstance(up, cst.Return) or function is None or SHIFT_FUNCTION.search(function.name.value):
        return False
    return _pair_of(node, scope) is None


def _slice_at(node: cst.Slice, scope) -> tuple[cst.Subscript, int] | None:
    """The subscript a slice is an element of, and its position there."""
    element = scope.parent(node)
    subscript = scope.parent(element) if isinstance(element, cst.SubscriptElement) else None
    if not isinstance(subscript, cst.Subscript):
        return None
    return subscript, next(i for i, e in enumerate(subscript.slice) if e is element)


def _opposite(a: cst.BaseSlice, b: cst.BaseSlice) -> bool:
    """`x[k:]` and `x[:-k]`, either way round."""
    if m.matches(a, FROM_K) and m.matches(b, TO_MINUS_K):
        return _k(a.lower) == _k(b.upper.expression)
    if m.matches(a, TO_MINUS_K) and m.matches(b, FROM_K):
        return _k(a.upper.expression) == _k(b.lower)
    return False


def _pair_of(node: cst.Slice, scope) -> cst.Subscript | None:
    """The other side of a shift: in the same function, the same value cut at the other end by as much, in the
    same dimension (`seqs = self._seqs[:, :-1]` ... `targets = self._seqs[:, 1:]`,
    `mask[:, :-1] & mask[:, 1:]`). Neighbours combined by arithmetic, compared or zipped (`offsets[1:] -
    offsets[:-1]`, `v[:-1] <= v[1:]`, `zip(starts[:-1], starts[1:])`) are differences, orders and consecutive
    pairs, not inputs and targets."""
    at = _slice_at(node, scope)
    function = enclosing(node, scope, cst.FunctionDef)
    if at is None or function is None or not m.matches(node, FROM_K | TO_MINUS_K):
        return None
    subscript, index = at
    for other in m.findall(function, m.Subscript()):
        if (
            other is subscript
            or len(other.slice) != len(subscript.slice)
            or not other.value.deep_equals(subscript.value)
        ):
            continue
        if _opposite(node, other.slice[index].slice) and not _combined(subscript, other, scope):
            return other
    return None


def _combined(a: cst.CSTNode, b: cst.CSTNode, scope) -> bool:
    """`a` and `b` meet in arithmetic, a comparison (`v[:-1] <= v[1:]`: sorted) or a zip in the same statement."""
    up = scope.parent(a)
    while up is not None and not isinstance(up, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
        if b in descendants(up):
            arithmetic = isinstance(up, cst.BinaryOperation) and isinstance(up.operator, ARITHMETIC)
            return arithmetic or isinstance(up, cst.Comparison) or m.matches(up, m.Call(func=m.Name("zip")))
        up = scope.parent(up)
    return False


def _cut_from_zero(node: cst.Slice) -> bool:
    """`x[: n - 1]`, `x[0 : n]`, `x[:-1]`: a slice that keeps the start and cuts the end."""
    return node.upper is not None and (node.lower is None or m.matches(node.lower, m.Integer("0")))


def _against_ignore(*operands) -> bool:
    """One of the operands is the ignore index: `-100`, `IGNORE_INDEX`, `self.ignore_index`."""
    named = (cst.Name, cst.Attribute)
    return any(m.matches(o, IGNORE_VALUE) or (isinstance(o, named) and mentions(o, IGNORED)) for o in operands)


def _roll_shift(call: cst.Call) -> cst.Arg | None:
    """The `shifts` argument of `torch.roll(x, -1)` / `torch.roll(x, shifts=-1)` / `x.roll(-1, 0)`, when it
    rolls left by one."""
    positional = 1 if m.matches(call.func.value, ARRAY_MODULES) else 0
    for index, arg in enumerate(call.args):
        is_shift = arg.keyword.value == "shifts" if arg.keyword is not None else index == positional
        if is_shift:
            return arg if m.matches(arg.value, MINUS_ONE) else None
    return None


def _rolled_about(call: cst.Call, scope) -> set[str]:
    """The names a roll is about: the value rolled and the names its result is assigned to."""
    value = None if m.matches(call.func.value, ARRAY_MODULES) else call.func.value
    if value is None and call.args and call.args[0].keyword is None:
        value = call.args[0].value
    names = identifiers(value) if value is not None else set()
    assign = scope.parent(call)
    if isinstance(assign, cst.Assign) and assign.value is call:
        names |= set().union(*(identifiers(t.target) for t in assign.targets))
    return names


SFT = "def masked(targets, mask):\n    m = {}\n"  # the examples' function about targets


class SliceShift(Operator):
    """Made once per meaning: `words` that a site must name, `unless` words that give it to another class,
    and `context` words the enclosing function must mention (a mask slice is the loss mask's only in a
    function about targets or labels)."""

    # mirrored-start: x[k:] -> x[:-k]; mirrored-end: x[:-k] -> x[k:]; unshifted: x[1 : n + 1] -> x[0 : n]
    # (a roll: roll(x, -1) -> roll(x, 1) and roll(x, 0)); cut-one-less also keeps the token that a roll
    # wrapped around to the end as a target
    variants = ("mirrored-start", "mirrored-end", "cut-one-more", "cut-one-less", "unshifted")

    def __init__(self, name="slice-shift", words=SHIFTED, unless=ANY_MASK, context: re.Pattern | None = None):
        self.name, self.words, self.unless, self.context = name, words, unless, context

    def _means(self, names: set[str], node, scope) -> bool:
        if not any(self.words.search(n) for n in names) or (self.unless and any(self.unless.search(n) for n in names)):
            return False
        return self.context is None or mentions(enclosing(node, scope, cst.FunctionDef) or node, self.context)

    def sites(self, node, scope):
        if (
            m.matches(node, ROLL)
            and (shift := _roll_shift(node))
            and self._means(_rolled_about(node, scope), node, scope)
        ):
            yield Site("mirrored-start", {shift.value: cst.Integer("1")})  # the previous token as target
            yield Site("unshifted", {shift.value: cst.Integer("0")})
            return
        if isinstance(node, (cst.IndentedBlock, cst.Module)):
            yield from self._wraps(node, scope)
            return
        if self.name == "slice-shift":
            yield from self._flags(node, scope)
        if not isinstance(node, cst.Slice):
            return
        if not (self._means(_about(node, scope), node, scope) or self._paired(node, scope)) or _not_a_shift(
            node, scope
        ):
            return
        if m.matches(node, WINDOW):
            lower = cst.Integer("0") if isinstance(node.lower, cst.Integer) else node.lower.left
            yield Site("unshifted", {node.lower: lower, node.upper: node.upper.left})
        elif m.matches(node, FROM_K):
            k = _k(node.lower)
            yield Site("mirrored-start", {node: node.with_changes(lower=None, upper=_minus(k))})
            yield Site("cut-one-more", {node.lower: cst.Integer(str(k + 1))})
            less = {node: node.with_changes(lower=None)} if k == 1 else {node.lower: cst.Integer(str(k - 1))}
            yield Site("cut-one-less", less)
        elif m.matches(node, TO_MINUS_K):
            k = _k(node.upper.expression)
            yield Site("mirrored-end", {node: node.with_changes(lower=cst.Integer(str(k)), upper=None)})
            yield Site("cut-one-more", {node.upper: _minus(k + 1)})
            less = {node: node.with_changes(upper=None)} if k == 1 else {node.upper: _minus(k - 1)}
            yield Site("cut-one-less", less)
        elif m.matches(node, FROM_ZERO) and self._paired_window(node, scope):
            # inputs = data[:, 0 : n] beside targets = data[:, 1 : n + 1]: the inputs take the targets' window
            yield Site("mirrored-end", {node.lower: cst.Integer("1"), node.upper: binop(node.upper, cst.Add(), 1)})
        elif m.matches(node, TO_N_MINUS_K):
            difference = node.upper
            k = _k(difference.right)
            yield Site("cut-one-more", {difference.right: cst.Integer(str(k + 1))})
            less = difference.left if k == 1 else binop(difference.left, difference.operator, k - 1)
            yield Site("cut-one-less", {difference: less})

    def _wraps(self, block, scope):
        """`labels[:, -1] = ignore_index` right after `labels = torch.roll(..., -1)`: the first token wrapped
        around to the end is not a target; keeping it trains every sequence to end on its own start."""
        for previous, statement in itertools.pairwise(block.body):
            rolled = m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name())], value=ROLL)])
            if not m.matches(previous, rolled) or not m.matches(statement, m.SimpleStatementLine(body=[m.Assign()])):
                continue
            if _roll_shift(previous.body[0].value) is None:
                continue
            name = previous.body[0].targets[0].target.value
            target = statement.body[0].targets[0].target
            last = m.Subscript(
                value=m.Name(name),
                slice=[
                    m.ZeroOrMore(m.SubscriptElement(slice=m.Slice(lower=None, upper=None) | m.Index(m.Ellipsis()))),
                    m.SubscriptElement(slice=m.Index(value=MINUS_ONE)),
                ],
            )
            if m.matches(target, last) and self._means(_rolled_about(previous.body[0].value, scope), previous, scope):
                yield Site("cut-one-less", {statement: drop_statement(block, statement)})

    @staticmethod
    def _flags(node, scope):
        """The switch that asks for shifted labels, set on or tested."""
        if m.matches(node, m.Assign(targets=[m.AssignTarget(target=m.Name() | m.Attribute())], value=m.Name("True"))):
            target = node.targets[0].target
            if SHIFT_FLAG.match(target.value if isinstance(target, cst.Name) else target.attr.value):
                yield Site("unshifted", {node.value: cst.Name("False")})
        elif m.matches(node, m.IfExp(test=m.Name() | m.Attribute())):
            test = node.test
            if SHIFT_FLAG.match(test.value if isinstance(test, cst.Name) else test.attr.value):
                yield Site("unshifted", {node.test: cst.Name("False")})

    def _paired(self, node, scope) -> bool:
        """Target shift only: whatever its name, a value cut at one end and, in the same function, at the other
        end by as much is a sequence paired with itself shifted, unless it holds boundaries or lengths."""
        if self.name != "slice-shift" or not m.matches(node, FROM_K | TO_MINUS_K):
            return False
        at = _slice_at(node, scope)
        if at is None or any(BOUNDARIES.search(n) for n in identifiers(at[0].value)):
            return False
        assign = scope.parent(at[0])
        if isinstance(assign, cst.Assign) and any(t.target.deep_equals(at[0].value) for t in assign.targets):
            return False  # tokens = tokens[1:] ... tokens = tokens[:-1]: a BOS and an EOS stripped in place
        return _pair_of(node, scope) is not None

    @staticmethod
    def _paired_window(node: cst.Slice, scope) -> bool:
        """The function also slices `1 : n + 1` with the same n: this `0 : n` is the inputs' side of it."""
        function = enclosing(node, scope, cst.FunctionDef)
        if function is None:
            return False
        return any(
            other.upper.left.deep_equals(node.upper) for other in m.findall(function, WINDOW) if other is not node
        )

    def examples(self):
        if self.name != "slice-shift":
            return (
                Example("mirrored-start", SFT.format("mask[:, 1:]"), SFT.format("mask[:, :-1]")),
                Example("cut-one-more", SFT.format("mask[:, 1:]"), SFT.format("mask[:, 2:]")),
                Example("cut-one-less", SFT.format("mask[:, 1:]"), SFT.format("mask[:, :]")),
                Example("mirrored-end", SFT.format("loss_mask[..., :-1]"), SFT.format("loss_mask[..., 1:]")),
                Example("unshifted", SFT.format("mask[:, 1 : T + 1]"), SFT.format("mask[:, 0 : T]")),
                Example("mirrored-start", SFT.format("tokens[1:]"), None),  # tokens, not a mask
                # an attention mask, in a function that is not about the loss's targets
                Example("mirrored-start", "def attend(q, mask):\n    m = mask[:, 1:]\n", None),
            )
        batch = "inputs = tokens[:-1]\ntargets = tokens[1:]\n"
        return (
            Example(
                "mirrored-end",
                "def fit(data, n):\n    x = data[:, 0 : n].long()\n    y = data[:, 1 : (n + 1)].long()\n",
                "def fit(data, n):\n    x = data[:, 1 : n + 1].long()\n    y = data[:, 1 : (n + 1)].long()\n",
            ),
            Example("mirrored-end", "def head(data, n):\n    x = data[:, 0 : n]\n", None),  # no target window
            Example("mirrored-start", batch, "inputs = tokens[:-1]\ntargets = tokens[:-1]\n"),
            Example("mirrored-end", batch, "inputs = tokens[1:]\ntargets = tokens[1:]\n"),
            Example("cut-one-more", batch, "inputs = tokens[:-1]\ntargets = tokens[2:]\n"),
            Example("cut-one-less", batch, "inputs = tokens[:]\ntargets = tokens[1:]\n"),
            Example("mirrored-start", "targets = ids[:, 1:].clone()\n", "targets = ids[:, :-1].clone()\n"),
            Example("mirrored-end", "logits = logits[:, :-1]\n", "logits = logits[:, 1:]\n"),
            Example("mirrored-start", "tokens = tokens[1:]\n", None),  # a BOS stripped in place
            Example("cut-one-more", "del buffer[: needed - 1]\n", "del buffer[: needed - 2]\n"),
            Example("cut-one-less", "del buffer[: needed - 1]\n", "del buffer[: needed]\n"),
            Example("cut-one-less", "x = ids[2:]\n", "x = ids[1:]\n"),
            Example(
                "unshifted",
                "targets = train_data[:, 1 : (max_seq_length + 1)].long()\n",
                "targets = train_data[:, 0 : max_seq_length].long()\n",
            ),
            Example("unshifted", "t = tokens[:, prev + 1 : cur + 1]\n", "t = tokens[:, prev : cur]\n"),
            # slices of things that are not a shifted sequence: history, a mask, a path
            Example("mirrored-start", "history = messages[1:]\npredicted = mask[:, 1:]\n", None),
            # no literal offset, or a step: nothing to shift
            Example("cut-one-more", "batch = buffer[:needed]\n", None),
            Example("mirrored-*", "evens = ids[0::2]\nfirst = ids[0:]\n", None),
            # next-token targets made by rolling the stream left by one, the wrapped-around token ignored
            Example(
                "mirrored-start",
                "targets = torch.roll(labels, shifts=-1)\n",
                "targets = torch.roll(labels, shifts=1)\n",
            ),
            Example("unshifted", "ids = self.input_ids[:n].roll(-1, 0)\n", "ids = self.input_ids[:n].roll(0, 0)\n"),
            Example("*", "h = torch.roll(hidden, -1, dims=1)\ny = torch.roll(labels, 1, -1)\n", None),
            Example(
                "cut-one-less",
                "def get_targets(labels):\n    targets = torch.roll(labels, shifts=-1)\n"
                "    targets[:, -1] = IGNORE_INDEX\n    return targets\n",
                "def get_targets(labels):\n    targets = torch.roll(labels, shifts=-1)\n    return targets\n",
            ),
            Example("cut-one-less", "labels = ids.clone()\nlabels[:, -1] = IGNORE_INDEX\n", None),  # nothing rolled
            # the switch that asks for shifted labels
            Example("unshifted", "self.shift_labels = True\n", "self.shift_labels = False\n"),
            Example(
                "unshifted",
                "targets = get_targets(labels) if shift_labels else labels\n",
                "targets = get_targets(labels) if False else labels\n",
            ),
            Example("unshifted", "shift_labels = labels[..., 1:]\nself.use_cache = True\n", None),
            # cuts that shift nothing: text, room made for an appended token, a count, a pad taken back
            Example(
                "*",
                "def parse(target_prompts):\n    if target_prompts.startswith('length>='):\n"
                "        cutoff = target_prompts[8:]\n",
                None,
            ),
            Example("*", "target = target[: max_seq_len - 1] + [eos_id]\n", None),
            Example("mirrored-start", "labels = ids[1:] + [eos]\n", "labels = ids[:-1] + [eos]\n"),  # a shift
            Example("*", "n = torch.count_nonzero(torch.eq(batch['labels'][..., 1:], IGNORE))\n", None),
            Example("*", "n = labels[:, 1:].ne(-100).long().sum()\n", None),
            # a sum of what the shifted slices computed is no count of them
            Example(
                "mirrored-start",
                "loss = -(logprobs[:, :-1].gather(-1, tokens[:, 1:]) * mask).sum()\n",
                "loss = -(logprobs[:, :-1].gather(-1, tokens[:, :-1]) * mask).sum()\n",
            ),
            # split into chunks, a tensor is no text; split by a separator, a string is
            Example(
                "mirrored-start",
                "def chunks(tokens):\n    parts = tokens.split(4)\n    targets = tokens[1:]\n",
                "def chunks(tokens):\n    parts = tokens.split(4)\n    targets = tokens[:-1]\n",
            ),
            Example("*", "def parse(line):\n    fields = line.split(',')\n    tokens = line[1:]\n", None),
            Example("*", "labels = F.pad(labels, (0, 1))[..., :-1]\n", None),
            Example(
                "mirrored-start",
                "labels = F.pad(labels, (0, 1), value=-100)[..., 1:]\n",
                "labels = F.pad(labels, (0, 1), value=-100)[..., :-1]\n",
            ),
            # whatever its name, a value cut at one end and at the other in the same function is shifted
            Example(
                "mirrored-end",
                "def split(self):\n    seqs = self._seqs[:, :-1]\n    targets = self._seqs[:, 1:]\n",
                "def split(self):\n    seqs = self._seqs[:, 1:]\n    targets = self._seqs[:, 1:]\n",
            ),
            Example(
                "mirrored-end",
                "def loss(mask):\n    valid = mask[:, :-1] & mask[:, 1:]\n",
                "def loss(mask):\n    valid = mask[:, 1:] & mask[:, 1:]\n",
            ),
            Example("*", "def strip(tokens):\n    tokens = tokens[1:]\n    tokens = tokens[:-1]\n", None),
            # ... but neighbours subtracted, averaged or zipped are differences and consecutive pairs
            Example("*", "def check(mask):\n    assert ~(mask[:, :-1] & ~mask[:, 1:]).any()\n", None),
            Example("*", "def sizes(offsets):\n    n = offsets[1:] - offsets[:-1]\n", None),
            Example("*", "def mid(v):\n    c = (v[1:] + v[:-1]) / 2\n", None),
            Example("*", "def ordered(v):\n    return bool((v[:-1] <= v[1:]).all())\n", None),
            Example("*", "def pairs(ws):\n    for a, b in zip(ws[:-1], ws[1:]):\n        pass\n", None),
            # only the shape of the slice is taken
            Example("*", "losses = f(x).view_as(labels[:, 1:])\nn = targets[:, 1:].size(0)\n", None),
            # a sequence handed back without its first token, not paired with anything: a BOS stripped
            Example("*", "def strip_bos(tokens):\n    return tokens[..., 1:]\n", None),
            Example(
                "mirrored-start",
                "def get_targets(tokens):\n    return tokens[..., 1:]\n",
                "def get_targets(tokens):\n    return tokens[..., :-1]\n",
            ),
            # compared with the ignore value and kept as the mask of the shifted targets (not counted)
            Example(
                "mirrored-start",
                "valid_targets = labels[:, 1:] != -100\n",
                "valid_targets = labels[:, :-1] != -100\n",
            ),
            Example("*", "num_valid = labels[:, 1:] != -100\n", None),
            # the predicted distribution lines up with the tokens it predicts, as logits do
            Example(
                "mirrored-end",
                "accepted = u <= gather(probs[:, :-1], tokens_draft)\n",
                "accepted = u <= gather(probs[:, 1:], tokens_draft)\n",
            ),
        )
