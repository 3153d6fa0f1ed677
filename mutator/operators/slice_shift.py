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

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop
from mutator.operators.meaning import ANY_MASK, SHIFTED, enclosing, identifiers, mentions

K = m.Integer(m.MatchIfTrue(lambda text: int(text, 0) >= 1))
FROM_K = m.Slice(lower=K, upper=None, step=None)  # x[k:]
TO_MINUS_K = m.Slice(lower=None, upper=m.UnaryOperation(operator=m.Minus(), expression=K), step=None)  # x[:-k]
TO_N_MINUS_K = m.Slice(lower=None, upper=m.BinaryOperation(operator=m.Subtract(), right=K), step=None)  # x[:n - k]
PLUS_ONE = m.BinaryOperation(operator=m.Add(), right=m.Integer("1"))
PREDICTIONS = re.compile(r"(?i)logit|pred")
FROM_ZERO = m.Slice(lower=m.Integer("0"), upper=~m.Integer() & ~m.UnaryOperation(), step=None)  # x[0 : n]
WINDOW = m.Slice(lower=m.Integer("1") | PLUS_ONE, upper=PLUS_ONE, step=None)  # x[1 : n + 1], x[a + 1 : b + 1]


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


SFT = "def masked(targets, mask):\n    m = {}\n"  # the examples' function about targets


class SliceShift(Operator):
    """Made once per meaning: `words` that a site must name, `unless` words that give it to another class,
    and `context` words the enclosing function must mention (a mask slice is the loss mask's only in a
    function about targets or labels)."""

    # mirrored-start: x[k:] -> x[:-k]; mirrored-end: x[:-k] -> x[k:]; unshifted: x[1 : n + 1] -> x[0 : n]
    variants = ("mirrored-start", "mirrored-end", "cut-one-more", "cut-one-less", "unshifted")

    def __init__(self, name="slice-shift", words=SHIFTED, unless=ANY_MASK, context: re.Pattern | None = None):
        self.name, self.words, self.unless, self.context = name, words, unless, context

    def sites(self, node, scope):
        if not isinstance(node, cst.Slice):
            return
        names = _about(node, scope)
        if not any(self.words.search(n) for n in names) or (self.unless and any(self.unless.search(n) for n in names)):
            return
        if self.context is not None and not mentions(enclosing(node, scope, cst.FunctionDef) or node, self.context):
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
        )
