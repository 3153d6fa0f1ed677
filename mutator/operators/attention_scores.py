"""attention-scores: masked attention scores are not masked hard enough, or scores are scaled wrongly.

Two numbers decide what softmax makes of the scores:
- the mask value: masked positions must get -inf (or the dtype's minimum). A value that is not far below
  every real score leaves them weight (minGPT #75: -1e4, too weak once scores grow): `value-zero` (0.0),
  `value-weak` (-1.0, of the order of the scores), `value-positive` (+inf: softmax turns to NaN);
- the softmax scale 1 / sqrt(head_dim): reversed to sqrt(head_dim) (maxtext #1370), 1 / head_dim (Megatron-LM
  #848: the scale applied twice), or dropped (1.0). Each still gives a valid distribution, just a sharper
  or flatter one, so only a reference attention sees it.

Sites, by meaning:
- `masked_fill(mask, V)` / `masked_fill_` / `torch.where(mask, x, V)` with V a large negative constant
  (`float("-inf")`, `-math.inf`, `torch.finfo(dtype).min`, `-1e9`, ...), unless the tensor is a vocabulary
  distribution (logits, probabilities, top-k / top-p filters: sampling's masks, not attention's);
- a softmax scale: a power `d ** -0.5` or a `1 / sqrt(d)` of a head dimension (`head_dim`, `d_k`,
  `head_size`, `q.size(-1)`, `k.shape[-1]`), passed as `scale=` / `softmax_scale=` or assigned to a
  scale-like name (`scale`, `scaling`, `softmax_scale`, `norm_factor`), and `scores / sqrt(d)` on scores.
Initialisation scales (`n_embd ** -0.5` as a std or bound) are not softmax scales.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site
from mutator.operators.meaning import code, mentions

VOCABULARY = re.compile(r"(?i)logit|prob|top_?[kp]|vocab|token|sample")
HEAD_DIM = re.compile(r"(?i)^(head_dim|d_k|d_head|head_size|dim_head|kv_channels|hidden_size_per_head|qk_head_dim)$")
SCALE_NAME = re.compile(r"(?i)^(softmax_|sm_|attn_|attention_)?scal(e|ing)$|norm_factor")
SCORES = re.compile(r"(?i)score|att|^w$|weights|^q|query|xq")
NEG_HUGE = re.compile(r"^-(inf|1e\d+|1\.0e\d+|10+\.0*|math\.inf|float\(['\"]inf['\"]\)|torch\.inf|np\.inf)$")
SQRT = m.Call(func=m.Name("sqrt") | m.Attribute(attr=m.Name("sqrt")))
HALF = m.Float("0.5") | m.Float(".5")
MINUS_HALF = m.UnaryOperation(operator=m.Minus(), expression=HALF)


def _very_negative(value) -> bool:
    text = code(value).replace(" ", "")
    if text in ('float("-inf")', "float('-inf')") or NEG_HUGE.match(text):
        return True
    return m.matches(value, m.UnaryOperation(operator=m.Minus(), expression=m.Attribute(attr=m.Name("max")))) or bool(
        m.matches(value, m.Attribute(attr=m.Name("min"), value=m.Call(func=m.Attribute(attr=m.Name("finfo")))))
    )


def _head_dim(expr) -> bool:
    """A head dimension: a name that says so, or the last axis of q / k (`q.size(-1)`, `k.shape[-1]`)."""
    if any(HEAD_DIM.match(n.value) for n in m.findall(expr, m.Name())):
        return True
    last = m.UnaryOperation(operator=m.Minus(), expression=m.Integer("1"))
    size = m.Call(func=m.Attribute(attr=m.Name("size")), args=[m.Arg(value=last)])
    shape = m.Subscript(value=m.Attribute(attr=m.Name("shape")), slice=[m.SubscriptElement(slice=m.Index(value=last))])
    return bool(m.findall(expr, size | shape))


def _scale_parts(expr):
    """(what the scale is of, its form) for `d ** -0.5`, `1 / sqrt(d)`, `1 / d ** 0.5`; else None."""
    if m.matches(expr, m.BinaryOperation(operator=m.Power(), right=MINUS_HALF)):
        return expr.left, "power"
    if m.matches(expr, m.BinaryOperation(operator=m.Divide(), left=m.Integer("1") | m.Float("1.0"))):
        root = expr.right
        if m.matches(root, SQRT) and root.args:
            return root.args[0].value, "one-over"
        if m.matches(root, m.BinaryOperation(operator=m.Power(), right=HALF)):
            return root.left, "one-over"
    return None


def _rescaled(dim: cst.BaseExpression) -> dict[str, cst.BaseExpression]:
    text = code(dim)
    if isinstance(dim, cst.BinaryOperation):
        text = f"({text})"
    return {
        "scale-reversed": cst.parse_expression(f"{text} ** 0.5"),
        "scale-full-dim": cst.parse_expression(f"1.0 / {text}"),
        "scale-dropped": cst.parse_expression("1.0"),
    }


class AttentionScores(Operator):
    name = "attention-scores"
    variants = ("value-zero", "value-weak", "value-positive", "scale-reversed", "scale-full-dim", "scale-dropped")

    def sites(self, node, scope):
        if m.matches(node, m.Call(func=m.Attribute(attr=m.Name("masked_fill") | m.Name("masked_fill_")))):
            if len(node.args) >= 2 and not mentions(node.func.value, VOCABULARY):
                yield from self._mask_values(node.args[1].value)
        elif m.matches(node, m.Call(func=m.Attribute(attr=m.Name("where")))) and len(node.args) == 3:
            if not mentions(node, VOCABULARY):
                yield from self._mask_values(node.args[2].value)
        elif m.matches(node, m.Arg(keyword=m.Name(m.MatchRegex(r"(?i)(softmax_|sm_)?scale")))):
            yield from self._scales(node.value)
        elif m.matches(node, m.Assign(targets=[m.AssignTarget(target=m.Name() | m.Attribute())])):
            target = node.targets[0].target
            name = target.value if isinstance(target, cst.Name) else target.attr.value
            if SCALE_NAME.search(name):
                yield from self._scales(node.value)
        elif m.matches(node, m.BinaryOperation(operator=m.Divide(), right=SQRT)) and mentions(node.left, SCORES):
            if node.right.args and _head_dim(node.right.args[0].value):
                dim = node.right.args[0].value
                yield Site(
                    "scale-reversed",
                    {
                        node.operator: cst.Multiply(
                            whitespace_before=node.operator.whitespace_before,
                            whitespace_after=node.operator.whitespace_after,
                        )
                    },
                )
                yield Site("scale-full-dim", {node.right: dim})
                yield Site("scale-dropped", {node: node.left})

    def _mask_values(self, value):
        if not _very_negative(value):
            return
        yield Site("value-zero", {value: cst.Float("0.0")})
        yield Site("value-weak", {value: cst.parse_expression("-1.0")})
        yield Site("value-positive", {value: cst.parse_expression('float("inf")')})

    def _scales(self, value):
        parts = _scale_parts(value)
        if parts is None or not _head_dim(parts[0]):
            return
        for variant, replacement in _rescaled(parts[0]).items():
            yield Site(variant, {value: replacement})

    def examples(self):
        minigpt = "att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float('-inf'))\n"
        sdpa = "y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=q.size(-1) ** -0.5)\n"
        llama = "scores = torch.matmul(xq, keys.transpose(2, 3)) / math.sqrt(self.head_dim)\n"
        return (
            Example("value-zero", minigpt, minigpt.replace("float('-inf')", "0.0")),
            Example("value-weak", minigpt, minigpt.replace("float('-inf')", "-1.0")),
            Example("value-positive", minigpt, minigpt.replace("float('-inf')", 'float("inf")')),
            Example("scale-reversed", sdpa, sdpa.replace("q.size(-1) ** -0.5", "q.size(-1) ** 0.5")),
            Example("scale-full-dim", sdpa, sdpa.replace("q.size(-1) ** -0.5", "1.0 / q.size(-1)")),
            Example("scale-dropped", sdpa, sdpa.replace("q.size(-1) ** -0.5", "1.0")),
            Example("scale-reversed", llama, llama.replace(") / math", ") * math")),
            # sampling's -inf on logits, and an initialisation scale, are not attention's
            Example("*", "logits = logits.masked_fill(remove, float('-inf'))\nstd = n_embd ** -0.5\n", None),
        )
