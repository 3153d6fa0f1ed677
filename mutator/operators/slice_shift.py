"""slice-shift: a slice that cuts k tokens off one end cuts them off the other end, or one more or one fewer.

Next-token targets are the stream without its first token, inputs the stream without its last:
`inputs, targets = tokens[:-1], tokens[1:]`. Mirroring either slice (`tokens[1:]` -> `tokens[:-1]`)
makes targets equal inputs: the loss falls fast and the model learns to copy. Cutting one more or one
fewer (`tokens[2:]`, `tokens[:]`) shifts the targets by two or not at all, which a fixed-shape batch
turns into a shape error, and a loader that keeps its last token for the next batch
(`del buffer[: needed - 1]`) into tokens lost or predicted twice at every batch boundary.

Sites, in any dimension of a subscript, with a literal k >= 1 and no step: `x[k:]`, `x[:-k]`, and
`x[:n - k]` (which has no mirror).
"""

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop

K = m.Integer(m.MatchIfTrue(lambda text: int(text, 0) >= 1))
FROM_K = m.Slice(lower=K, upper=None, step=None)  # x[k:]
TO_MINUS_K = m.Slice(lower=None, upper=m.UnaryOperation(operator=m.Minus(), expression=K), step=None)  # x[:-k]
TO_N_MINUS_K = m.Slice(lower=None, upper=m.BinaryOperation(operator=m.Subtract(), right=K), step=None)  # x[:n - k]


def _k(integer: cst.Integer) -> int:
    return int(integer.value, 0)


def _minus(k: int) -> cst.UnaryOperation:
    return cst.UnaryOperation(operator=cst.Minus(), expression=cst.Integer(str(k)))


class SliceShift(Operator):
    name = "slice-shift"
    # mirrored-start: x[k:] -> x[:-k]; mirrored-end: x[:-k] -> x[k:]
    variants = ("mirrored-start", "mirrored-end", "cut-one-more", "cut-one-less")

    def sites(self, node, scope):
        if m.matches(node, FROM_K):
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
        elif m.matches(node, TO_N_MINUS_K):
            difference = node.upper
            k = _k(difference.right)
            yield Site("cut-one-more", {difference.right: cst.Integer(str(k + 1))})
            less = difference.left if k == 1 else binop(difference.left, difference.operator, k - 1)
            yield Site("cut-one-less", {difference: less})

    def examples(self):
        batch = "inputs = tokens[:-1]\ntargets = tokens[1:]\n"
        return (
            Example("mirrored-start", batch, "inputs = tokens[:-1]\ntargets = tokens[:-1]\n"),
            Example("mirrored-end", batch, "inputs = tokens[1:]\ntargets = tokens[1:]\n"),
            Example("cut-one-more", batch, "inputs = tokens[:-1]\ntargets = tokens[2:]\n"),
            Example("cut-one-less", batch, "inputs = tokens[:]\ntargets = tokens[1:]\n"),
            Example("mirrored-start", "targets = ids[:, 1:].clone()\n", "targets = ids[:, :-1].clone()\n"),
            Example("cut-one-more", "del buffer[: needed - 1]\n", "del buffer[: needed - 2]\n"),
            Example("cut-one-less", "del buffer[: needed - 1]\n", "del buffer[: needed]\n"),
            Example("cut-one-less", "x = ids[2:]\n", "x = ids[1:]\n"),
            # no literal offset, or a step: nothing to shift
            Example("cut-one-more", "batch = buffer[:needed]\n", None),
            Example("mirrored-*", "evens = ids[0::2]\nfirst = ids[0:]\n", None),
        )
