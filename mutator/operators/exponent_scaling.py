"""exponent-scaling: a power whose exponent is a ratio gets its denominator, or its base, rescaled.

Rotary embeddings use `inv_freq = 1.0 / (base ** (channel_range / head_dim))`. Writing the exponent's
denominator as `head_dim * 2` (or `head_dim / 2`), or using a base ten times too large or too small,
stretches or squeezes every wavelength. The model still runs and attention is still a function of
relative position, so only a check of the frequencies themselves sees it.
"""

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, parens

RATIO = m.BinaryOperation(operator=m.Divide())
POWER = m.BinaryOperation(operator=m.Power(), right=RATIO)  # base ** (a / b)
POW_CALL = m.Call(  # pow(base, a / b), torch.pow(base, a / b)
    func=m.Name("pow") | m.Attribute(attr=m.Name("pow")),
    args=[m.Arg(keyword=None), m.Arg(keyword=None, value=RATIO)],
)


def _scaled(expr, operator, factor):
    return parens(binop(expr, operator, factor))


class ExponentScaling(Operator):
    name = "exponent-scaling"
    variants = ("denominator-x2", "denominator-half", "base-x10", "base-div10")

    def sites(self, node, scope):
        if m.matches(node, POWER):
            base, ratio = node.left, node.right
        elif m.matches(node, POW_CALL):
            base, ratio = node.args[0].value, node.args[1].value
        else:
            return
        denominator = ratio.right
        yield Site("denominator-x2", {denominator: _scaled(denominator, cst.Multiply(), 2)})
        yield Site("denominator-half", {denominator: _scaled(denominator, cst.Divide(), 2)})
        yield Site("base-x10", {base: _scaled(base, cst.Multiply(), 10)})
        yield Site("base-div10", {base: _scaled(base, cst.Divide(), 10)})

    def examples(self):
        rotary = "inv_freq = 1.0 / (base ** (channel_range / head_dim))\n"
        llama = "freqs = 1.0 / torch.pow(theta, torch.arange(0, dim, 2).float() / dim)\n"
        return (
            Example("denominator-x2", rotary, "inv_freq = 1.0 / (base ** (channel_range / (head_dim * 2)))\n"),
            Example("denominator-half", rotary, "inv_freq = 1.0 / (base ** (channel_range / (head_dim / 2)))\n"),
            Example("base-x10", rotary, "inv_freq = 1.0 / ((base * 10) ** (channel_range / head_dim))\n"),
            Example("base-div10", rotary, "inv_freq = 1.0 / ((base / 10) ** (channel_range / head_dim))\n"),
            Example(
                "denominator-x2", llama, "freqs = 1.0 / torch.pow(theta, torch.arange(0, dim, 2).float() / (dim * 2))\n"
            ),
            # a power whose exponent is not a ratio is not a frequency table
            Example("denominator-x2", "scale = head_dim ** -0.5\n", None),
            Example("base-x10", "y = x ** 2 / n\n", None),
        )
