"""rope-config: the rotary table is built without the configuration it was given.

A model configured with another rotary base (`rope_theta = 500000`) or with position scaling (linear
interpolation: positions divided by a factor) still runs when the table builder gets the defaults instead:
the base argument dropped where the builder is called (SpecForge #265: `rope_theta` never used), the
scaling argument dropped or the division by the factor lost inside the builder (transformers #32330: the
unscaled `inv_freq` returned), the factor multiplied instead of divided, or the rotary dimension halved on
its way in (vLLM #16904: `rotary_dim //= 2` applied to a shared object). Only a check of the tables of a
model built with non-default settings sees the first four.

Sites, by meaning:
- a call of a rotary-table builder (its name says rope / rotary / freqs / cos_sin / inv_freq): a keyword
  argument that carries the base or the scaling (`base=`, `theta=`, `rope_theta=`, `scaling=`,
  `scaling_factor=`, `condense_ratio=`, ...) from a variable, not a literal, is dropped; an argument that
  carries the rotary dimension (`head_dim`, `rotary_dim`, `n_elem`, `dim`) is halved;
- inside a rotary-table builder, a division or multiplication by the scaling factor (`positions / scaling`,
  `inv_freq / factor`, `seq_idx / condense_ratio`): the factor dropped, or applied the other way round.
Calls of anything else with a `scale_factor=` (interpolation, upsampling) are not rotary tables.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, parens
from mutator.operators.meaning import callee, enclosing, mentions

BUILDER = re.compile(r"(?i)rope|rotary|freqs|cos_sin|inv_freq")
SETTING = re.compile(
    r"(?i)^(base|theta|rope_theta|rope_base|rotary_base|scaling|scale|scaling_factor|factor|rope_scaling"
    r"|condense_ratio|rope_condense_ratio|position_scale)$"
)
FACTOR = re.compile(r"(?i)scal|factor|condense|interp")
DIM = re.compile(r"(?i)(^|_)(head_dim|rotary_dim|rot_dim|n_elem|dim|dims|head_size|rotary_ndims)$")
LITERAL = m.Integer() | m.Float() | m.UnaryOperation(expression=m.Integer() | m.Float()) | m.Name("None")


def _without(call: cst.Call, arg: cst.Arg) -> cst.Call:
    """The call with one argument removed (the comma of the new last argument dropped too)."""
    args = [a for a in call.args if a is not arg]
    if args:
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return call.with_changes(args=args)


def _in_builder(node, scope) -> bool:
    function = enclosing(node, scope, cst.FunctionDef)
    cls = enclosing(node, scope, cst.ClassDef)
    return any(d is not None and BUILDER.search(d.name.value) for d in (function, cls))


class RopeConfig(Operator):
    name = "rope-config"
    variants = ("drop-*", "dim-halved", "scaling-dropped", "scaling-inverted")

    def sites(self, node, scope):
        if isinstance(node, cst.Call) and BUILDER.search(callee(node)):
            for arg in node.args:
                keyword = arg.keyword.value if arg.keyword is not None else ""
                if SETTING.match(keyword) and not m.matches(arg.value, LITERAL):
                    yield Site(f"drop-{keyword}", {node: _without(node, arg)})
                elif any(DIM.search(name) for name in _names(arg.value)) and not mentions(arg.value, FACTOR):
                    grouped = parens(arg.value) if isinstance(arg.value, cst.BinaryOperation) else arg.value
                    yield Site("dim-halved", {arg.value: parens(binop(grouped, cst.FloorDivide(), 2))})
        elif m.matches(node, m.BinaryOperation(operator=m.Divide() | m.Multiply())) and _in_builder(node, scope):
            if mentions(node.right, FACTOR) and not mentions(node.left, FACTOR):
                yield Site("scaling-dropped", {node: node.left.with_changes(lpar=node.lpar, rpar=node.rpar)})
                other = cst.Multiply() if isinstance(node.operator, cst.Divide) else cst.Divide()
                keep = node.operator
                swapped = other.with_changes(
                    whitespace_before=keep.whitespace_before, whitespace_after=keep.whitespace_after
                )
                yield Site("scaling-inverted", {node.operator: swapped})

    def examples(self):
        call = "cos, sin = self._precompute_rotary_embeddings(seq_len, head_dim, base=config.rope_theta)\n"
        interp = (
            "def build_rope_cache(seq_len, n_elem, base=10000, condense_ratio=1):\n"
            "    seq_idx = torch.arange(seq_len) / condense_ratio\n"
            "    return seq_idx\n"
        )
        return (
            Example("drop-base", call, call.replace(", base=config.rope_theta", "")),
            Example("dim-halved", call, call.replace(", head_dim,", ", (head_dim // 2),")),
            Example("scaling-dropped", interp, interp.replace(" / condense_ratio", "")),
            Example("scaling-inverted", interp, interp.replace(" / condense_ratio", " * condense_ratio")),
            # a literal base is the default spelled out; interpolation's scale_factor is not a rotary table
            Example("drop-*", "freqs = precompute_freqs_cis(64, 4096, theta=10000.0)\n", None),
            Example("drop-*", "y = F.interpolate(x, scale_factor=self.scale)\n", None),
        )


def _names(expr) -> list[str]:
    return [n.value for n in m.findall(expr, m.Name())]
