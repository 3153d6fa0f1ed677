"""mask-polarity: a fine-tuning mask trains the prompt and ignores the completion.

Collators build the loss mask of a prompt-completion pair as two runs of constants: `[0] * len(prompt_ids) +
[1] * len(completion_ids)`, or `torch.cat((torch.zeros_like(prompt_mask), completion_mask), dim=1)`. With the
constants swapped every shape still fits and the loss still falls: the model learns to echo prompts.

Sites: a `+` of two list repetitions of the constants 0 and 1 (or False and True), one of each, and a
`cat` whose first item is `zeros_like` / `ones_like` of something, where the value is a mask (it is
assigned to, or passed in, a name that says mask, label or completion). Segment ids (`token_type_ids =
[0] * len(a) + [1] * len(b)`) are no loss mask and are left alone.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site
from mutator.operators.meaning import identifiers

BIT = m.Integer("0") | m.Integer("1") | m.Name("False") | m.Name("True")
RUN = m.BinaryOperation(operator=m.Multiply(), left=m.List(elements=[m.Element(value=BIT)]))
TWO_RUNS = m.BinaryOperation(operator=m.Add(), left=RUN, right=RUN)
FILLED_LIKE = m.Call(func=m.Attribute(attr=m.Name("zeros_like") | m.Name("ones_like")))
JOINED = m.Call(
    func=m.Attribute(attr=m.Name(m.MatchRegex(r"^(cat|concat|concatenate)$"))),
    args=[
        m.Arg(
            value=m.List(elements=[m.Element(value=FILLED_LIKE), m.Element()])
            | m.Tuple(elements=[m.Element(value=FILLED_LIKE), m.Element()])
        ),
        m.ZeroOrMore(),
    ],
)
A_MASK = re.compile(r"(?i)mask|label|completion")
# ... but not attention's padding mask (`attention_mask = [0] * pad + [1] * n`, left padding)
PADDING = re.compile(r"(?i)attention|attn|pad")
FLIPPED = {"0": "1", "1": "0", "False": "True", "True": "False"}


def _bit(run: cst.BinaryOperation) -> cst.BaseExpression:
    return run.left.elements[0].value


def _flipped(bit: cst.BaseExpression) -> cst.BaseExpression:
    text = bit.value
    return cst.Integer(FLIPPED[text]) if isinstance(bit, cst.Integer) else cst.Name(FLIPPED[text])


def _names_a_mask(node: cst.CSTNode, scope) -> bool:
    """The value is a mask: what it is assigned to (`completion_mask = ...`, `tool_mask[i] += ...`) or
    the item of a comprehension that is (`chosen_mask = [[0] * p + [1] * c for ...]`) says so."""
    parent = scope.parent(node)
    while isinstance(parent, (cst.ListComp, cst.GeneratorExp, cst.Element, cst.List, cst.Arg, cst.Call)):
        parent = scope.parent(parent)
    if isinstance(parent, cst.Assign):
        targets = [t.target for t in parent.targets]
    elif isinstance(parent, (cst.AugAssign, cst.AnnAssign)):
        targets = [parent.target]
    else:
        return False
    names = {name for target in targets for name in identifiers(target)}
    return any(A_MASK.search(name) for name in names) and not any(PADDING.search(name) for name in names)


class MaskPolarity(Operator):
    name = "mask-polarity"
    variants = ("runs-swapped", "prompt-part-flipped")

    def sites(self, node, scope):
        if m.matches(node, TWO_RUNS) and _names_a_mask(node, scope):
            # the prompt's run ignored (0), the completion's trained (1); a padding run first is no prompt
            first, second = _bit(node.left), _bit(node.right)
            padded = any(PADDING.search(name) for name in identifiers(node.left.right))
            if first.value in ("0", "False") and FLIPPED[first.value] == second.value and not padded:
                yield Site("runs-swapped", {first: _flipped(first), second: _flipped(second)})
        elif m.matches(node, JOINED) and _names_a_mask(node, scope):
            filled = node.args[0].value.elements[0].value
            other = "ones_like" if filled.func.attr.value == "zeros_like" else "zeros_like"
            yield Site("prompt-part-flipped", {filled.func.attr: cst.Name(other)})

    def examples(self):
        pair = "completion_mask = [0] * len(prompt_ids) + [1] * len(answer_ids)\n"
        cat = "completion_mask = torch.cat((torch.zeros_like(prompt_mask), completion_mask), dim=1)\n"
        return (
            Example("runs-swapped", pair, "completion_mask = [1] * len(prompt_ids) + [0] * len(answer_ids)\n"),
            Example(
                "runs-swapped",
                "chosen_mask = [[0] * len(p) + [1] * len(c) for p, c in pairs]\n",
                "chosen_mask = [[1] * len(p) + [0] * len(c) for p, c in pairs]\n",
            ),
            Example(
                "runs-swapped",
                "tool_mask[i] += [False] * n_tool + [True] * n_after\n",
                "tool_mask[i] += [True] * n_tool + [False] * n_after\n",
            ),
            Example(
                "prompt-part-flipped",
                cat,
                "completion_mask = torch.cat((torch.ones_like(prompt_mask), completion_mask), dim=1)\n",
            ),
            # segment ids, a padding of ones, and runs of one constant are no prompt/completion mask
            Example("*", "token_type_ids = [0] * len(a) + [1] * len(b)\n", None),
            Example("*", "attention = [1] * n + [1] * pad\nmask = [0] * n + [0] * pad\n", None),
            Example("*", "attention_mask = [0] * n_pad + [1] * n\nmask = [0] * pad_len + [1] * n\n", None),
            Example("*", "attention_mask = [0] * (max_len - len(ids)) + [1] * len(ids)\n", None),  # left padding
            Example("*", "loss_mask = [1] * n + [0] * pad\n", None),  # ones first: padding after the text
            Example("*", "ids = torch.cat((torch.zeros_like(x), x), dim=1)\n", None),
        )
