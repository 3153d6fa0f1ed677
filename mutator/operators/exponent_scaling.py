"""exponent-scaling: the rotary frequency table gets its exponent's denominator, or its base, rescaled.

Rotary embeddings use `inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2) / head_dim))`. Writing
the denominator as `head_dim * 2` (or `head_dim / 2`), or using a base ten times too large or too small,
stretches or squeezes every wavelength. The model still runs and attention is still a function of
relative position, so only a check of the frequencies themselves sees it.

A site is recognised by what it computes, wherever it lives: a power (`**`, `pow`, `torch.pow`,
`np.power`, `mx.power`) whose exponent is built from a step-2 `arange` or `range` (the even channel
indices), inline or through names bound to it in the same function or module (loop variables included).
Powers of anything else (`head_dim ** -0.5`, `x ** 2 / n`) are not frequency tables. The ratio's
denominator is rescaled where it is written (`/` or `divide(...)`); when the ratio was computed first
(`freq_range = idx / denom`, then `power(base, -freq_range)`), the exponent is halved or doubled where the
power is taken, the same slip on the line that makes the table.
"""

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, parens
from mutator.operators.meaning import bindings, body_of, descendants, identifiers, reaches

POWER = m.BinaryOperation(operator=m.Power())  # base ** exponent
POW_CALL = m.Call(  # pow(base, e), torch.pow(base, e), np.power(base, e), mx.power(base, e)
    func=m.Name("pow") | m.Attribute(attr=m.Name("pow") | m.Name("power")),
    args=[m.Arg(keyword=None), m.Arg(keyword=None)],
)
TWO = m.Integer("2") | m.Float("2.0")
# arange(0, dim, 2), arange(0, dim, step=2), arange(start=0, end=dim, step=2)
ARANGE = m.Name("arange") | m.Attribute(attr=m.Name("arange")) | m.Name("range")
STEP_TWO_ARANGE = m.Call(
    func=ARANGE, args=[m.ZeroOrMore(), m.Arg(value=TWO, keyword=m.Name("step")), m.ZeroOrMore()]
) | m.Call(func=ARANGE, args=[m.Arg(keyword=None), m.Arg(keyword=None), m.Arg(keyword=None, value=TWO), m.ZeroOrMore()])


def _is_arange_step_two(node) -> bool:
    return m.matches(node, STEP_TWO_ARANGE)


DIVIDE_CALL = m.Call(  # ops.divide(channels, dim), np.true_divide(channels, dim)
    func=m.Name("divide") | m.Attribute(attr=m.Name("divide") | m.Name("true_divide")),
    args=[m.Arg(keyword=None), m.Arg(keyword=None)],
)


def _inline_denominator(expr: cst.BaseExpression) -> cst.BaseExpression | None:
    """The divisor of a ratio in `expr` (`channels / dim` -> `dim`; `-(channels / dim)`, `divide(c, dim)`)."""
    for node in descendants(expr):
        if m.matches(node, m.BinaryOperation(operator=m.Divide())):
            return node.right
        if m.matches(node, DIVIDE_CALL):
            return node.args[1].value
    return None


def _denominator(exponent: cst.BaseExpression, body: cst.CSTNode, depth: int = 2) -> cst.BaseExpression | None:
    """The divisor of the exponent's ratio, inline or where a name in it was computed (`freq_range = idx /
    denom`, then `power(base, -freq_range)`), when that value is built from the even channel indices."""
    inline = _inline_denominator(exponent)
    if inline is not None or depth == 0:
        return inline
    assigned = bindings(body)
    for name in identifiers(exponent):
        for value in assigned.get(name, ()):
            if value is not exponent and reaches(value, body, _is_arange_step_two):
                found = _denominator(value, body, depth - 1)
                if found is not None:
                    return found
    return None


def _scaled(expr, operator, factor):
    return parens(binop(expr, operator, factor))


class ExponentScaling(Operator):
    name = "exponent-scaling"
    variants = ("denominator-x2", "denominator-half", "base-x10", "base-div10")

    def sites(self, node, scope):
        if m.matches(node, POWER):
            base, exponent = node.left, node.right
        elif m.matches(node, POW_CALL):
            base, exponent = node.args[0].value, node.args[1].value
        else:
            return
        body = body_of(node, scope)
        if not reaches(exponent, body, _is_arange_step_two):
            return
        denominator = _inline_denominator(exponent)
        if denominator is not None:
            yield Site("denominator-x2", {denominator: _scaled(denominator, cst.Multiply(), 2)})
            yield Site("denominator-half", {denominator: _scaled(denominator, cst.Divide(), 2)})
        elif _denominator(exponent, body) is not None:
            # power(base, -freq_range) with freq_range = idx / denom: the same slip written where the power
            # is taken (a ratio over twice its denominator is half the exponent)
            grouped = exponent if isinstance(exponent, (cst.Name, cst.Attribute)) else parens(exponent)
            yield Site("denominator-x2", {exponent: _scaled(grouped, cst.Divide(), 2)})
            yield Site("denominator-half", {exponent: _scaled(grouped, cst.Multiply(), 2)})
        yield Site("base-x10", {base: _scaled(base, cst.Multiply(), 10)})
        yield Site("base-div10", {base: _scaled(base, cst.Divide(), 10)})

    def examples(self):
        rotary = "channel_range = torch.arange(0, head_dim, 2)\ninv_freq = 1.0 / (base ** (channel_range / head_dim))\n"
        llama = "freqs = 1.0 / torch.pow(theta, torch.arange(0, dim, 2)[: dim // 2].float() / dim)\n"
        mlx = "freqs = base ** (mx.arange(0, dims, step=2) / dims)\n"
        keras = "idx = ops.arange(0, d, 2)\nfreq_range = idx / denom\ninv = ops.power(base, -freq_range)\n"
        keras_divide = "freq_range = ops.divide(ops.arange(0, d, 2), dim)\ninv = 1.0 / (base ** freq_range)\n"
        return (
            Example("denominator-x2", rotary, rotary.replace("/ head_dim)", "/ (head_dim * 2))")),
            Example("denominator-half", rotary, rotary.replace("/ head_dim)", "/ (head_dim / 2))")),
            Example("base-x10", rotary, rotary.replace("(base **", "((base * 10) **")),
            Example("base-div10", rotary, rotary.replace("(base **", "((base / 10) **")),
            Example("denominator-x2", llama, llama.replace("/ dim)", "/ (dim * 2))")),
            Example("base-x10", mlx, "freqs = (base * 10) ** (mx.arange(0, dims, step=2) / dims)\n"),
            # a power whose exponent does not come from the even channel indices is not a frequency table
            Example("denominator-x2", "scale = head_dim ** -0.5\n", None),
            Example("base-x10", "y = x ** (t / n)\nz = x ** (torch.arange(0, n) / n)\n", None),
            # the ratio computed first, then raised: its denominator doubled or halved where it is raised
            Example(
                "denominator-x2", keras, keras.replace("power(base, -freq_range)", "power(base, ((-freq_range) / 2))")
            ),
            Example("denominator-half", keras_divide, keras_divide.replace("** freq_range", "** (freq_range * 2)")),
            # a power of a ratio that is not of the channel indices (NTK's dim / (dim - 2)) is no table
            Example(
                "denominator-x2", "e = ops.cast(d, 'f') / ops.cast(d - 2, 'f')\ninv = inv / ops.power(s, e)\n", None
            ),
        )
