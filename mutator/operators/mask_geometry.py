"""mask-geometry: an attention mask aligned at the wrong corner, or a sliding window one key off.

When queries are the last Tq of Tk positions (a chunk after a cached prefix), the causal mask must be
aligned bottom-right: query i sees keys up to Tk - Tq + i. Aligned top-left it hides the prefix (onnx
#8068, executorch #21749: `is_causal` with Tq != Tk):
- diagonal-dropped: `ones(Tq, Tk).tril(diagonal=Tk - Tq)` written `tril()`;
- is-causal-instead: the explicit prefix mask replaced by `is_causal=True`, which SDPA aligns top-left;
- offset-dropped: the queries' positions counted from 0 (`arange(Tk - Tq, Tk)` -> `arange(Tq)`).
A sliding window of w keys must let each query see itself and its w - 1 predecessors (transformers
#39408, mlx-lm #390: one key too many or too few):
- window-plus-one / window-minus-one: the window bound in a mask comparison moved by one;
- distance-reversed: the query-key distance taken the other way round (`k - q` for `q - k`), so the window
  opens onto the future.
A full causal forward (Tq == Tk) hides the first three, a sequence no longer than the window the last three.

Sites, by meaning: tril/triu calls with a non-literal diagonal; attention calls (`*attention*`, sdpa) whose
`attn_mask=` is such a triangle; an `arange(a - b, a)`; comparisons against a window size (`window`,
`sliding_window`, `window_size`), and the subtraction they compare, inline or bound to a name.
Level 3's mask-branch moves the diagonals and comparison operators themselves by one; these sites are
the operands it leaves alone.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, parens
from mutator.operators.meaning import bindings, body_of, code, mentions

WINDOW = re.compile(r"(?i)window")
TRIANGLES = m.Name("tril") | m.Name("triu") | m.Name("tril_") | m.Name("triu_")
TRIANGLE = m.Call(func=TRIANGLES | m.Attribute(attr=TRIANGLES))
ATTENTION = m.Call(
    func=m.Name(m.MatchRegex(r"(?i).*(attention|sdpa).*"))
    | m.Attribute(attr=m.Name(m.MatchRegex(r"(?i).*(attention|sdpa).*")))
)
LITERAL = m.Integer() | m.UnaryOperation(expression=m.Integer())
ARANGE = m.Call(func=m.Name("arange") | m.Attribute(attr=m.Name("arange")))
ORDER = m.LessThan() | m.LessThanEqual() | m.GreaterThan() | m.GreaterThanEqual()


def _without(call: cst.Call, arg: cst.Arg) -> cst.Call:
    args = [a for a in call.args if a is not arg]
    if args:
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return call.with_changes(args=args)


def _diagonal_arg(call: cst.Call) -> cst.Arg | None:
    """The diagonal of tril/triu when it is an offset (not a literal): keyword, or positional after the tensor."""
    method_form = not m.matches(call.func, m.Name() | m.Attribute(value=m.Name("torch")))
    keyword = next((a for a in call.args if m.matches(a, m.Arg(keyword=m.Name("diagonal")))), None)
    positional = [a for a in call.args if a.keyword is None]
    wanted = 0 if method_form else 1
    arg = keyword or (positional[wanted] if len(positional) > wanted else None)
    return None if arg is None or m.matches(arg.value, LITERAL) else arg


def _is_offset_triangle(expr) -> bool:
    return any(_diagonal_arg(call) is not None for call in m.findall(expr, TRIANGLE))


def _subtraction(side, body) -> cst.BinaryOperation | None:
    """The `a - b` a window comparison measures: the side itself, or the one value a name is bound to."""
    if m.matches(side, m.BinaryOperation(operator=m.Subtract())):
        return side
    if isinstance(side, cst.Name):
        values = bindings(body).get(side.value, ())
        if len(values) == 1 and m.matches(values[0], m.BinaryOperation(operator=m.Subtract())):
            return values[0]
    return None


class MaskGeometry(Operator):
    name = "mask-geometry"
    variants = (
        "diagonal-dropped",
        "is-causal-instead",
        "offset-dropped",
        "window-plus-one",
        "window-minus-one",
        "distance-reversed",
    )

    def sites(self, node, scope):
        if m.matches(node, TRIANGLE):
            arg = _diagonal_arg(node)
            if arg is not None:
                yield Site("diagonal-dropped", {node: _without(node, arg)})
        elif m.matches(node, ATTENTION):
            mask = next(
                (a for a in node.args if m.matches(a, m.Arg(keyword=m.Name("attn_mask") | m.Name("mask")))), None
            )
            if mask is None:
                return
            body = body_of(node, scope)
            built = (
                [mask.value] if not isinstance(mask.value, cst.Name) else list(bindings(body).get(mask.value.value, ()))
            )
            if built and all(_is_offset_triangle(value) for value in built):
                causal = mask.with_changes(keyword=cst.Name("is_causal"), value=cst.Name("True"))
                yield Site("is-causal-instead", {mask: causal})
        elif m.matches(node, ARANGE) and len(node.args) >= 2 and all(a.keyword is None for a in node.args[:2]):
            start, end = node.args[0].value, node.args[1].value
            if m.matches(start, m.BinaryOperation(operator=m.Subtract())) and code(start.left) == code(end):
                args = [node.args[1].with_changes(value=start.right.with_changes(lpar=[], rpar=[])), *node.args[2:]]
                yield Site("offset-dropped", {node: node.with_changes(args=args)})
        elif m.matches(node, m.Comparison(comparisons=[m.ComparisonTarget(operator=ORDER)])):
            yield from self._window(node, scope)

    def _window(self, comparison, scope):
        left, right = comparison.left, comparison.comparisons[0].comparator
        for bound, other in ((right, left), (left, right)):
            if not mentions(bound, WINDOW) or mentions(other, WINDOW):
                continue
            grouped = parens(bound) if isinstance(bound, cst.BinaryOperation) else bound
            yield Site("window-plus-one", {bound: binop(grouped, cst.Add(), 1)})
            yield Site("window-minus-one", {bound: binop(grouped, cst.Subtract(), 1)})
            distance = _subtraction(other, body_of(comparison, scope))
            if distance is not None:
                yield Site("distance-reversed", {distance.left: distance.right, distance.right: distance.left})
            return

    def examples(self):
        chunk = (
            "prefix = Tk - Tq\n"
            "allowed = torch.ones(Tq, Tk, dtype=torch.bool).tril(diagonal=prefix)\n"
            "y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)\n"
        )
        window = (
            "def window_mask(Tq, Tk, window):\n"
            "    q_pos = torch.arange(Tk - Tq, Tk)[:, None]\n"
            "    distance = q_pos - torch.arange(Tk)[None, :]\n"
            "    return (distance >= 0) & (distance < window)\n"
        )
        return (
            Example("diagonal-dropped", chunk, chunk.replace(".tril(diagonal=prefix)", ".tril()")),
            Example("is-causal-instead", chunk, chunk.replace("attn_mask=allowed", "is_causal=True")),
            Example("offset-dropped", window, window.replace("arange(Tk - Tq, Tk)", "arange(Tq)")),
            Example("window-plus-one", window, window.replace("< window)", "< window + 1)")),
            Example("window-minus-one", window, window.replace("< window)", "< window - 1)")),
            Example(
                "distance-reversed",
                window,
                window.replace("q_pos - torch.arange(Tk)[None, :]", "torch.arange(Tk)[None, :] - q_pos"),
            ),
            # a plain causal triangle has no offset to lose; comparisons of other things are not windows
            Example("*", "mask = torch.ones(T, T).tril()\ny = sdpa(q, k, v, attn_mask=mask)\nok = t < n\n", None),
        )
