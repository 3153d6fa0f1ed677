"""ignore-index: a fine-tuning loss trains the targets it should ignore, or ignores the ones it should train.

A loss learns which targets count in two places, and each can be off while the loss still falls:
- the ignore index it is given, `cross_entropy(..., ignore_index=-100)`, which must be the value the collator
  wrote into the labels (-100 is PyTorch's and Hugging Face's, -1 nanochat's and Megatron's);
- the test that keeps the valid targets, `valid = labels != ignore_index`, where its value picks or weighs
  the per-token losses (`losses.masked_fill(~valid, 0)`, `loss[valid]`, `loss * valid`).

Variants:
- ignore-index-swapped: a literal ignore index, as a keyword or a parameter's default, becomes the other
  convention (-100 <-> -1): the labels are then out of range for the loss, or a real token is ignored.
- valid-inverted: `labels != ignore_index` -> `==` (and back). A test that only counts the targets (a
  normaliser, `loss.sum() / valid.sum()`), a metric's, a filter's or a branch's is left alone: which
  targets count is not decided there.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, rewritten
from mutator.operators.meaning import LOSS, body_of, identifiers

IGNORE_NAME = re.compile(r"(?i)^ignore_(index|idx|id)$")
IGNORE_LITERAL = m.UnaryOperation(operator=m.Minus(), expression=m.Integer("100") | m.Integer("1"))
OTHER = {"100": "1", "1": "100"}
# the ignore value on one side of a test: -100, -1, ignore_index, self.ignore_index, IGNORE_INDEX
IGNORE = (
    IGNORE_LITERAL | m.Name(m.MatchRegex(r"(?i).*ignore.*")) | m.Attribute(attr=m.Name(m.MatchRegex(r"(?i).*ignore.*")))
)
THE_LABELS = re.compile(r"(?i)label|target")
VALID_TEST = m.Comparison(comparisons=[m.ComparisonTarget(operator=m.NotEqual() | m.Equal(), comparator=IGNORE)])


def _swapped(literal: cst.UnaryOperation) -> cst.UnaryOperation:
    return literal.with_changes(expression=cst.Integer(OTHER[literal.expression.value]))


def _statement(node: cst.CSTNode, scope) -> cst.CSTNode | None:
    parent = scope.parent(node)
    while parent is not None and not isinstance(parent, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
        parent = scope.parent(parent)
    return parent


def _names_loss(node: cst.CSTNode) -> bool:
    return any(LOSS.search(name) for name in identifiers(node))


def _weighs_a_loss(node: cst.CSTNode, scope, depth: int = 4) -> bool:
    """`node` (a valid-target test, or a name bound to one) picks or weighs per-token losses: it multiplies
    a loss (`loss * valid`), indexes one (`loss[valid]`), or goes into a call beside one
    (`losses.masked_fill(~valid, 0)`, `masked_mean(losses, valid)`), through `~`, `.float()` and the like.
    Counting it (`loss.sum() / valid.sum()`) only scales the loss: which targets count is decided where the
    loss skips the ignore index."""
    child, parent = node, scope.parent(node)
    for _ in range(depth):
        if parent is None:
            return False
        if isinstance(parent, cst.BinaryOperation):
            other = parent.right if child is parent.left else parent.left
            return isinstance(parent.operator, cst.Multiply) and _names_loss(other)  # not a loss / count
        if isinstance(parent, cst.SubscriptElement):
            subscript = scope.parent(parent)
            return isinstance(subscript, cst.Subscript) and _names_loss(subscript.value)
        if isinstance(parent, cst.Arg):
            call = scope.parent(parent)
            others = [a for a in call.args if a is not parent] + [call.func]
            return any(_names_loss(o) for o in others)
        if isinstance(parent, cst.Attribute) and parent.attr.value in ("sum", "mean", "count_nonzero", "item"):
            return False
        child, parent = parent, scope.parent(parent)
    return False


def _reaches_a_loss(test: cst.Comparison, scope) -> bool:
    """The valid-target test picks or weighs losses, itself or through the name it is bound to (`valid =
    labels != -100`, `valid &= ...`) in the function."""
    if _weighs_a_loss(test, scope):
        return True
    statement = _statement(test, scope)
    if not isinstance(statement, cst.SimpleStatementLine):
        return False  # a branch checks the labels; it weighs no loss
    small = statement.body[0]
    target = small.targets[0].target if isinstance(small, cst.Assign) else getattr(small, "target", None)
    if not isinstance(target, cst.Name):
        return False
    uses = m.findall(body_of(test, scope), m.Name(target.value))
    return any(_weighs_a_loss(use, scope) for use in uses if use is not target)


def _labels_side(test: cst.Comparison) -> bool:
    return any(THE_LABELS.search(name) for name in identifiers(test.left))


class IgnoreIndex(Operator):
    name = "ignore-index"
    variants = ("ignore-index-swapped", "valid-inverted")

    def sites(self, node, scope):
        if m.matches(node, m.Arg(keyword=m.Name(m.MatchRegex(IGNORE_NAME)), value=IGNORE_LITERAL)):
            yield Site("ignore-index-swapped", {node.value: _swapped(node.value)})
        elif m.matches(node, m.Param(name=m.Name(m.MatchRegex(IGNORE_NAME)), default=IGNORE_LITERAL)):
            yield Site("ignore-index-swapped", {node.default: _swapped(node.default)})
        elif m.matches(node, VALID_TEST) and _labels_side(node) and _reaches_a_loss(node, scope):
            yield Site("valid-inverted", rewritten(node))

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
                "def f(loss, target):\n    keep = (target != self.ignore).float()\n    return (loss * keep).sum()\n",
                "def f(loss, target):\n    keep = (target == self.ignore).float()\n    return (loss * keep).sum()\n",
            ),
            Example(
                "valid-inverted",
                "def f(cont_loss, target):\n    return cont_loss[target != IGNORE_INDEX].mean()\n",
                "def f(cont_loss, target):\n    return cont_loss[target == IGNORE_INDEX].mean()\n",
            ),
            Example(  # a normaliser counts the targets; the loss itself skips the ignored ones
                "valid-inverted",
                "def forward(self, loss, target):\n    return loss.sum() / (target != self.ignore_index).sum()\n",
                None,
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
            Example(  # logits or predictions masked for a metric, not a loss
                "valid-inverted",
                "def f(logits, labels):\n    valid = labels != -100\n    return logits * valid.unsqueeze(-1)\n",
                None,
            ),
            Example(
                "valid-inverted",
                "def f(preds, labels):\n    valid = labels != -100\n    return torch.where(valid, preds, -1)\n",
                None,
            ),
            Example(  # the count of valid targets, a loss divided by it: a normaliser
                "valid-inverted",
                "def f(loss, labels):\n    n = (labels != -100).sum()\n    return loss.sum() / n\n",
                None,
            ),
            Example(  # the count of valid targets, scaled: still a normaliser
                "valid-inverted",
                "def f(loss_weight, labels):\n    valid = labels != -100\n    return loss_weight * valid.sum()\n",
                None,
            ),
            Example(  # a check of the labels
                "valid-inverted",
                "def compute_loss(labels):\n    if (labels != -100).sum() == 0:\n        raise ValueError('empty')\n",
                None,
            ),
        )
