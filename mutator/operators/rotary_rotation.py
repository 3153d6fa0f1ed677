"""rotary-rotation: rotary embeddings rotate the wrong channel pairs, the wrong way, or the wrong tensors.

Rotary embeddings rotate pairs of channels of the queries and the keys by an angle per position. The
slips that keep every shape:
- pairing: the half-split convention (channel i with channel i + D/2) read as interleaved (2i with 2i + 1),
  or the halves swapped (transformers #25199, vLLM #747: a checkpoint trained with one convention run
  with the other); the rotation's signs swapped, so it turns the other way;
- coverage: the keys left unrotated (RoPE on queries but not on keys), the queries left unrotated, or the
  queries rotated twice. Attention then no longer depends on relative position only.
Both sides of the dot product go through the same function, so shift-invariance checks and
cached-vs-full checks can stay blind to pairing; a reference attention written from the spec is not.

Sites, by meaning:
- in a rotary function (its name says rot / rope / rotary, or it multiplies by both a cos and a sin): the
  split of a tensor into two halves, `x1, x2 = x[..., :h], x[..., h:]` or `x.chunk(2, dim=-1)`; the pair of
  sums `a * cos + b * sin` / `b * cos - a * sin` whose signs are swapped;
- a rotation of the queries and the keys: `q, k = rope(q, ...), rope(k, ...)`, or `q = rope(q, ...)` and
  `k = rope(k, ...)` as separate statements, where the call's name says rot / rope / rotary / pos_emb.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site
from mutator.operators.meaning import code, enclosing, identifiers, mentions

ROTARY_NAME = re.compile(r"(?i)(^|_)rot|rope|pos_emb|positional")
COS, SIN = re.compile(r"(?i)cos"), re.compile(r"(?i)sin")
QUERY = re.compile(r"(?i)^(q|xq|query|queries|query_states|q_\w+)$")
KEY = re.compile(r"(?i)^(k|xk|key|keys|key_states|k_\w+)$")
ELLIPSIS_SLICE = m.SubscriptElement(slice=m.Index(value=m.Ellipsis()))
CHUNK_TWO = m.Call(func=m.Attribute(attr=m.Name("chunk")), args=[m.Arg(value=m.Integer("2")), m.ZeroOrMore()])


def _rotary_function(node, scope) -> bool:
    function = enclosing(node, scope, cst.FunctionDef)
    if function is None:
        return False
    if ROTARY_NAME.search(function.name.value):
        return True
    names = identifiers(function.body)
    return any(COS.search(n) for n in names) and any(SIN.search(n) for n in names)


def _half(subscript) -> tuple[str, str, str] | None:
    """`x[..., :h]` -> ("x", "upper", "h"), `x[..., h:]` -> ("x", "lower", "h"): a cut of the last axis at h."""
    if not isinstance(subscript, cst.Subscript) or not subscript.slice:
        return None
    last = subscript.slice[-1].slice
    if not isinstance(last, cst.Slice) or last.step is not None:
        return None
    if last.lower is None and last.upper is not None:
        return code(subscript.value), "upper", code(last.upper)
    if last.upper is None and last.lower is not None:
        return code(subscript.value), "lower", code(last.lower)
    return None


def _every_other(subscript: cst.Subscript, start: int) -> cst.Subscript:
    step = cst.Slice(
        lower=cst.Integer(str(start)) if start else None, upper=None, step=cst.Integer("2"), second_colon=cst.Colon()
    )
    return subscript.with_changes(slice=[*subscript.slice[:-1], subscript.slice[-1].with_changes(slice=step)])


def _interleaved_of(tensor: cst.BaseExpression) -> tuple[cst.Subscript, cst.Subscript]:
    first = cst.parse_expression(f"{code(tensor)}[..., ::2]")
    second = cst.parse_expression(f"{code(tensor)}[..., 1::2]")
    return first, second


def _rotation_call(expr) -> cst.Call | None:
    if isinstance(expr, cst.Call) and expr.args and ROTARY_NAME.search(code(expr.func).rsplit(".", 1)[-1]):
        return expr
    return None


def _first_arg(call: cst.Call) -> str:
    value = call.args[0].value
    return value.value if isinstance(value, cst.Name) else ""


class RotaryRotation(Operator):
    name = "rotary-rotation"
    variants = (
        "interleaved",
        "halves-swapped",
        "sign-flipped",
        "keys-unrotated",
        "queries-unrotated",
        "queries-rotated-twice",
    )

    def sites(self, node, scope):
        if m.matches(node, m.Assign(targets=[m.AssignTarget(target=m.Tuple())], value=m.Tuple())):
            yield from self._pairs(node, scope)
        elif m.matches(node, m.Assign(targets=[m.AssignTarget(target=m.Tuple())], value=CHUNK_TWO)):
            if _rotary_function(node, scope) and len(node.targets[0].target.elements) == 2:
                tensor = node.value.func.value
                first, second = _interleaved_of(tensor)
                yield Site("interleaved", {node.value: cst.Tuple(elements=[cst.Element(first), cst.Element(second)])})
                swapped = cst.parse_expression(f"{code(node.value)}[::-1]")
                yield Site("halves-swapped", {node.value: swapped})
        elif m.matches(node, m.Assign(targets=[m.AssignTarget(target=m.Name())])):
            call = _rotation_call(node.value)
            target = node.targets[0].target.value
            if call is not None and _first_arg(call) == target:
                if KEY.match(target):
                    yield Site("keys-unrotated", {node.value: call.args[0].value})
                elif QUERY.match(target):
                    yield Site("queries-unrotated", {node.value: call.args[0].value})
                    yield Site("queries-rotated-twice", {call.args[0].value: call})
        elif isinstance(node, cst.IndentedBlock) and _rotary_function(node, scope):
            yield from self._signs(node)

    def _pairs(self, node, scope):
        targets, values = node.targets[0].target.elements, node.value.elements
        if len(targets) != 2 or len(values) != 2:
            return
        a, b = values[0].value, values[1].value
        calls = [_rotation_call(a), _rotation_call(b)]
        if all(calls):
            names = [_first_arg(call) for call in calls]
            if QUERY.match(names[0]) and KEY.match(names[1]):
                yield Site("keys-unrotated", {b: calls[1].args[0].value})
                yield Site("queries-unrotated", {a: calls[0].args[0].value})
                yield Site("queries-rotated-twice", {calls[0].args[0].value: calls[0]})
            return
        halves = _half(a), _half(b)
        if not all(halves) or not _rotary_function(node, scope):
            return
        (tensor_a, side_a, cut_a), (tensor_b, side_b, cut_b) = halves
        if tensor_a != tensor_b or cut_a != cut_b or {side_a, side_b} != {"lower", "upper"}:
            return
        first, second = _every_other(a, 0), _every_other(b, 1)
        yield Site("interleaved", {a: first, b: second})
        yield Site("halves-swapped", {a: b, b: a})

    def _signs(self, block):
        """`x1 * cos + x2 * sin` with `x2 * cos - x1 * sin` in one block: + and - swapped."""
        sums = [
            op
            for op in m.findall(block, m.BinaryOperation(operator=m.Add() | m.Subtract()))
            if (mentions(op.left, COS) and mentions(op.right, SIN))
            or (mentions(op.left, SIN) and mentions(op.right, COS))
        ]
        adds = [op for op in sums if isinstance(op.operator, cst.Add)]
        subtracts = [op for op in sums if isinstance(op.operator, cst.Subtract)]
        if len(adds) == 1 and len(subtracts) == 1:
            add, sub = adds[0].operator, subtracts[0].operator
            yield Site(
                "sign-flipped",
                {
                    add: cst.Subtract(whitespace_before=add.whitespace_before, whitespace_after=add.whitespace_after),
                    sub: cst.Add(whitespace_before=sub.whitespace_before, whitespace_after=sub.whitespace_after),
                },
            )

    def examples(self):
        rotate = (
            "def apply_rotary_emb(x, cos, sin):\n"
            "    x1, x2 = x[..., :d], x[..., d:]\n"
            "    y1 = x1 * cos + x2 * sin\n"
            "    y2 = x2 * cos - x1 * sin\n"
            "    return torch.cat([y1, y2], -1)\n"
        )
        both = "q, k = apply_rotary_emb(q, cos, sin), apply_rotary_emb(k, cos, sin)\n"
        return (
            Example("interleaved", rotate, rotate.replace("x[..., :d], x[..., d:]", "x[..., ::2], x[..., 1::2]")),
            Example("halves-swapped", rotate, rotate.replace("x[..., :d], x[..., d:]", "x[..., d:], x[..., :d]")),
            Example("sign-flipped", rotate, rotate.replace("cos + x2", "cos - x2").replace("cos - x1", "cos + x1")),
            Example("keys-unrotated", both, "q, k = apply_rotary_emb(q, cos, sin), k\n"),
            Example("queries-unrotated", both, "q, k = q, apply_rotary_emb(k, cos, sin)\n"),
            Example(
                "queries-rotated-twice",
                "q = apply_rope(q, freqs)\n",
                "q = apply_rope(apply_rope(q, freqs), freqs)\n",
            ),
            # a split of something that is not rotated, and a tuple of two unrelated calls
            Example("*", "def split(x):\n    a, b = x[..., :h], x[..., h:]\n    return a + b\n", None),
            Example("*", "q, k = norm(q), norm(k)\n", None),
        )
