"""ignore-index: a fine-tuning loss trains the targets it should ignore, or ignores the ones it should train.

A loss learns which targets count in three places, and each can be off while the loss still falls:
- the ignore index it is given, `cross_entropy(..., ignore_index=-100)`, which must be the value the collator
  wrote into the labels (-100 is PyTorch's and Hugging Face's, -1 nanochat's and Megatron's);
- the test that keeps the valid targets, `mask = labels != ignore_index`, `(target != -100).sum()`, whose
  result weighs or counts the per-token losses;
- the mask a per-token loss is multiplied by, `loss = loss * target_mask`.

Variants:
- ignore-index-swapped: a literal ignore index, as a keyword or a parameter's default, becomes the other
  convention (-100 <-> -1): the labels are then out of range for the loss, or a real token is ignored.
- valid-inverted: `labels != ignore_index` -> `==` (and back), where the test's value reaches a loss: the
  statement names a loss, the function does (`def fused_loss_fn`), or a name bound to the test is used
  beside one (`losses.masked_fill(~valid, 0.0)`). A test read only by a metric or a check is no loss mask.
- mask-dropped: `loss * mask` -> `loss`, every target trained. Attention's masks are left alone.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, rewritten
from mutator.operators.meaning import LOSS, body_of, enclosing, identifiers

IGNORE_NAME = re.compile(r"(?i)^ignore_(index|idx|id)$")
IGNORE_LITERAL = m.UnaryOperation(operator=m.Minus(), expression=m.Integer("100") | m.Integer("1"))
OTHER = {"100": "1", "1": "100"}
# the ignore value on one side of a test: -100, -1, ignore_index, self.ignore_index, IGNORE_INDEX
IGNORE = (
    IGNORE_LITERAL | m.Name(m.MatchRegex(r"(?i).*ignore.*")) | m.Attribute(attr=m.Name(m.MatchRegex(r"(?i).*ignore.*")))
)
THE_LABELS = re.compile(r"(?i)label|target")
VALID_TEST = m.Comparison(comparisons=[m.ComparisonTarget(operator=m.NotEqual() | m.Equal(), comparator=IGNORE)])
A_MASK = re.compile(r"(?i)mask")
ATTENTION = re.compile(r"(?i)att(e)?n|causal|pad")
LOSS_FUNCTION = re.compile(r"(?i)loss|cross_entropy")


def _swapped(literal: cst.UnaryOperation) -> cst.UnaryOperation:
    return literal.with_changes(expression=cst.Integer(OTHER[literal.expression.value]))


def _statement(node: cst.CSTNode, scope) -> cst.CSTNode | None:
    parent = scope.parent(node)
    while parent is not None and not isinstance(parent, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
        parent = scope.parent(parent)
    return parent


def _names_loss(node: cst.CSTNode) -> bool:
    return any(LOSS.search(name) for name in identifiers(node))


def _reaches_a_loss(test: cst.Comparison, scope) -> bool:
    """The valid-target test weighs or counts losses: in a loss function, in a statement that names a loss,
    or bound to a name (`valid = labels != -100`, `valid &= ...`) that a statement naming a loss reads."""
    if enclosing(test, scope, (cst.Lambda, cst.ListComp, cst.GeneratorExp)) is not None:
        return False  # one label at a time: a filter's test, not a mask
    statement = _statement(test, scope)
    if not isinstance(statement, cst.SimpleStatementLine) or isinstance(statement.body[0], cst.Assert):
        return False  # a branch or an assert checks the labels; it weighs no loss
    function = enclosing(test, scope, cst.FunctionDef)
    if (function is not None and LOSS_FUNCTION.search(function.name.value)) or _names_loss(statement):
        return True
    small = statement.body[0]
    target = small.targets[0].target if isinstance(small, cst.Assign) else getattr(small, "target", None)
    if not isinstance(target, cst.Name):
        return False
    readers = m.findall(body_of(test, scope), m.SimpleStatementLine())
    return any(target.value in identifiers(s) and _names_loss(s) for s in readers if s is not statement)


def _labels_side(test: cst.Comparison) -> bool:
    return any(THE_LABELS.search(name) for name in identifiers(test.left))


def _loss_and_mask(product: cst.BinaryOperation) -> cst.BaseExpression | None:
    """The loss side of `loss * mask` (either order), where the other side is a mask that is not attention's
    (`loss_mask` names a mask, not a loss)."""

    def losses(node):
        return {name for name in identifiers(node) if LOSS.search(name) and not A_MASK.search(name)}

    for loss, mask in ((product.left, product.right), (product.right, product.left)):
        masks = {name for name in identifiers(mask) if A_MASK.search(name)}
        if losses(loss) and not losses(mask) and masks and not any(ATTENTION.search(n) for n in masks):
            return loss
    return None


class IgnoreIndex(Operator):
    name = "ignore-index"
    variants = ("ignore-index-swapped", "valid-inverted", "mask-dropped")

    def sites(self, node, scope):
        if m.matches(node, m.Arg(keyword=m.Name(m.MatchRegex(IGNORE_NAME)), value=IGNORE_LITERAL)):
            yield Site("ignore-index-swapped", {node.value: _swapped(node.value)})
        elif m.matches(node, m.Param(name=m.Name(m.MatchRegex(IGNORE_NAME)), default=IGNORE_LITERAL)):
            yield Site("ignore-index-swapped", {node.default: _swapped(node.default)})
        elif m.matches(node, VALID_TEST) and _labels_side(node) and _reaches_a_loss(node, scope):
            yield Site("valid-inverted", rewritten(node))
        elif m.matches(node, m.BinaryOperation(operator=m.Multiply())):
            loss = _loss_and_mask(node)
            if loss is not None:
                kept = loss.with_changes(lpar=[*node.lpar, *loss.lpar], rpar=[*loss.rpar, *node.rpar])
                yield Site("mask-dropped", {node: kept})

    def examples(self):
        return (
            Example(
                "ignore-index-swapped",
                "loss = F.cross_entropy(logits, labels, ignore_index=-100)\n",
                "loss = F.cross_entropy(logits, labels, ignore_index=-1)\n",
            ),
            Example(
                "ignore-index-swapped",
                "def cross_entropy(logits, target, ignore_index: int = -1):\n    pass\n",
                "def cross_entropy(logits, target, ignore_index: int = -100):\n    pass\n",
            ),
            Example("ignore-index-swapped", "head = pick(tokens, index=-1)\n", None),  # no ignore index
            Example(
                "valid-inverted",
                "def fused_loss_fn(logits, labels, ignore_index):\n    mask = labels != ignore_index\n",
                "def fused_loss_fn(logits, labels, ignore_index):\n    mask = labels == ignore_index\n",
            ),
            Example(
                "valid-inverted",
                "def forward(self, loss, target):\n    return loss.sum() / (target != self.ignore_index).sum()\n",
                "def forward(self, loss, target):\n    return loss.sum() / (target == self.ignore_index).sum()\n",
            ),
            Example(
                "valid-inverted",
                "def f(losses, labels):\n    valid = labels[:, 1:] != -100\n    return losses.masked_fill(~valid, 0)\n",
                "def f(losses, labels):\n    valid = labels[:, 1:] == -100\n    return losses.masked_fill(~valid, 0)\n",
            ),
            Example(  # a metric over the valid targets weighs no loss
                "valid-inverted",
                "def accuracy(preds, labels):\n    valid = labels != -100\n    return (preds == labels)[valid].sum()\n",
                None,
            ),
            Example(  # a filter that keeps the examples with a target
                "valid-inverted",
                "def keep_for_loss(data):\n    return data.filter(lambda r: any(label != -100 for label in r))\n",
                None,
            ),
            Example(  # a check of the labels
                "valid-inverted",
                "def compute_loss(labels):\n    if (labels != -100).sum() == 0:\n        raise ValueError('empty')\n",
                None,
            ),
            Example(
                "mask-dropped",
                "def f(loss, target_mask):\n    loss = loss * target_mask\n",
                "def f(loss, target_mask):\n    loss = loss\n",
            ),
            Example(
                "mask-dropped",
                "def f(per_token_loss, loss_mask):\n    return (per_token_loss * loss_mask).sum()\n",
                "def f(per_token_loss, loss_mask):\n    return (per_token_loss).sum()\n",
            ),
            Example("mask-dropped", "def f(scores, attn_mask):\n    return scores * attn_mask\n", None),
            Example("mask-dropped", "def f(loss, padding_mask):\n    return loss * padding_mask\n", None),
        )
