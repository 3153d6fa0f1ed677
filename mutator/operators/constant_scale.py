"""constant-scale: a length derived from a fraction, or a divisor, is off by a constant factor.

A schedule derives its phase lengths from fractions of the run: `warmup_iters = round(warmup_ratio *
num_iterations)`. Scaled by 100 the warmup outlasts the run and the learning rate never reaches its base
value; by 10 or a tenth, training still works but is slower or unstable at the start. The same slip in a
divisor (`(step + 1) / warmup_iters`, `loss / grad_accum_steps`) stretches the ramp, or rescales the
gradient, by that factor.

Sites: `round(a * b)` (also `int`, `math.ceil`, `math.floor`), named after the variable it is assigned
to; and `a / n` with a name or attribute `n` as divisor, named after the divisor. Literals are left
alone: `x / 2` or `eps=1e-8` are not a length or a count.
"""

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, parens

ROUNDING = m.Name("round") | m.Name("int") | m.Attribute(attr=m.Name("ceil") | m.Name("floor"))
LENGTH = m.Call(func=ROUNDING, args=[m.Arg(keyword=None, value=m.BinaryOperation(operator=m.Multiply()))])
RATIO = m.BinaryOperation(operator=m.Divide(), right=m.Name() | m.Attribute())
SCALES = (("x100", cst.Multiply(), 100), ("x10", cst.Multiply(), 10), ("div10", cst.Divide(), 10))


def _label(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node).removeprefix("self.")


class ConstantScale(Operator):
    name = "constant-scale"
    variants = ("*-x100", "*-x10", "*-div10")

    def sites(self, node, scope):
        if m.matches(node, LENGTH):
            product = node.args[0].value
            assign = scope.parent(node)
            named = m.matches(assign, m.Assign(targets=[m.AssignTarget(target=m.Name() | m.Attribute())]))
            label = _label(assign.targets[0].target) if named else "length"
            for suffix, operator, factor in SCALES:
                yield Site(f"{label}-{suffix}", {product: binop(product, operator, factor)})
        elif m.matches(node, RATIO):
            divisor = node.right
            for suffix, operator, factor in SCALES:
                yield Site(f"{_label(divisor)}-divisor-{suffix}", {divisor: parens(binop(divisor, operator, factor))})

    def examples(self):
        warmup = "warmup_iters = round(warmup_ratio * num_iterations)\n"
        ramp = "def lr(step):\n    if step < warmup_iters:\n        return (step + 1) / warmup_iters\n"
        return (
            Example("warmup_iters-x100", warmup, "warmup_iters = round(warmup_ratio * num_iterations * 100)\n"),
            Example("warmup_iters-x10", warmup, "warmup_iters = round(warmup_ratio * num_iterations * 10)\n"),
            Example("warmup_iters-div10", warmup, "warmup_iters = round(warmup_ratio * num_iterations / 10)\n"),
            Example("warmup_iters-divisor-x100", ramp, ramp.replace("/ warmup_iters", "/ (warmup_iters * 100)")),
            Example(
                "grad_accum_steps-divisor-div10",
                "loss = loss / grad_accum_steps\n",
                "loss = loss / (grad_accum_steps / 10)\n",
            ),
            Example("length-x10", "n = math.ceil(frac * total) + 1\n", "n = math.ceil(frac * total * 10) + 1\n"),
            Example("warmup-x100", "self.warmup = int(0.05 * steps)\n", "self.warmup = int(0.05 * steps * 100)\n"),
            # literals and rounding of a single value are neither a fraction of a length nor a count
            Example("*-x100", "half = x / 2\nn = round(value)\nscale = head_dim ** -0.5\n", None),
        )
