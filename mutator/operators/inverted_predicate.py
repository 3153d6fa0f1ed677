"""inverted-predicate: a boolean flag, keyword argument, branch condition or boolean mask computed by a
comparison is inverted (`!=` <-> `==`, `<` <-> `>=`, `is` <-> `is not`, `in` <-> `not in`).

The seed: `enable_gqa = self.n_head != self.n_kv_head` written with `==`, which only shows when
1 < n_kv_head < n_head. The same slip in attention's mask branches (`if Tq == Tk:`, `elif Tq == 1:`)
picks the wrong mask for prefill or decode. In fine-tuning, `targets[mask == 0] = -1` written with `!=`
(or `masked_fill(mask == 0, -1)`, `torch.where(mask == 1, ...)` inverted) trains on the prompt and ignores
the answers. Comparisons are everywhere, so a site must be about the loss mask: the comparison or the
flag it sets names a mask, an ignore index or the assistant's role (`mask == 0`, `labels != ignore_index`,
`masked = role != "assistant"`), or the statement around it puts an ignore value (-1, -100,
`ignore_index`) into the targets (`targets[predicted == 0] = -1`, `masked_fill(keep == 0, -100)`).

Only the operator is flipped, so each site plants one mutant: `mask == 0` -> `mask == 1` would be the
same inversion on a 0/1 mask, and `mask != 1` no inversion at all.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import INVERSE, Example, Operator, Site, comparisons, drop_statement, rewritten
from mutator.operators.meaning import LOSS_MASK, MASKS, enclosing, identifiers

SINGLE = m.Comparison(comparisons=[m.ComparisonTarget()])  # a op b (not a chain like a < b < c)
FLAG = m.Assign(value=SINGLE) | m.AnnAssign(value=SINGLE)  # masked = role != "assistant"
# a branch decides about the loss mask only where it says ignore or masked; `if labels is not None:` does not
BRANCH_WORDS = re.compile(r"(?i)ignore_(index|id)|loss_mask|train_on_input|masked")
FLAG_WORDS = re.compile(r"(?i)loss_mask|train_on_input|^masked$|assistant")
PROMPT_FLAG = re.compile(r"(?i)mask_prompt|mask_input|train_on_(prompt|input)")
# [True] * n, [message.masked] * n: a special token's or a message's mask flag written out
LITERAL_OR_FLAG = m.Name("True") | m.Name("False") | m.Attribute(attr=m.Name("masked"))
IGNORE_VALUE = m.UnaryOperation(operator=m.Minus(), expression=m.Integer("1") | m.Integer("100"))
KEYWORD = m.Arg(keyword=m.Name(), value=SINGLE)  # f(..., enable_gqa=a != b)
BRANCH = m.If(test=SINGLE)  # if Tq == Tk:  /  elif Tq == 1:
# labels[: len(prompt)] = ignore_index, targets[mask == 0] = -1: the ignore value written over labels
IGNORES_TARGETS = m.SimpleStatementLine(
    body=[m.Assign(targets=[m.AssignTarget(target=m.Subscript(value=m.Name(m.MatchRegex(r"(?i).*(label|target).*"))))])]
)
INDEX = m.SubscriptElement(slice=m.Index(value=SINGLE))  # targets[mask == 0] = -1
ARGUMENT = m.Arg(keyword=None, star="", value=SINGLE)  # masked_fill(mask == 0, -1), where(mask == 1, ...)
COMPLEMENT = m.Arg(keyword=None, star="", value=m.UnaryOperation(operator=m.BitInvert()))  # masked_fill_(~keep, -100)
# a keyword that switches who is trained (`masked=True`, `train_on_input=False`); `ignore_errors=True` does not
SWITCH_WORDS = re.compile(r"(?i)mask|train_on|assistant")


def _words(node: cst.CSTNode) -> set[str]:
    """Identifiers and the text of short strings (`message["role"] != "assistant"`)."""
    strings = {str(s.evaluated_value) for s in m.findall(node, m.SimpleString()) if len(s.value) < 40}
    return identifiers(node) | strings


def _about_masks(node: cst.CSTNode | None, words: re.Pattern = MASKS) -> bool:
    return node is not None and any(words.search(word) for word in _words(node))


def _ignores(node: cst.CSTNode | None) -> bool:
    """The statement or call puts an ignore value: -1, -100, or a name that says ignore."""
    if isinstance(node, cst.Call):  # masked_fill(cond, -100), where(cond, labels, ignore_index); not dim=-1
        values = [arg.value for arg in node.args if arg.keyword is None or arg.keyword.value in ("value", "fill_value")]
    elif isinstance(node, cst.SimpleStatementLine) and m.matches(node.body[0], m.Assign()):
        values = [node.body[0].value]  # targets[cond] = -1
    else:
        return False
    return any(m.matches(v, IGNORE_VALUE) or "ignore" in " ".join(_words(v)).lower() for v in values)


def _names_ignore(comparison: cst.Comparison) -> bool:
    """One side of the comparison is the ignore index: `labels != ignore_index`, `targets != -100`."""
    sides = [comparison.left, comparison.comparisons[0].comparator]
    return any(m.matches(side, IGNORE_VALUE) or "ignore" in " ".join(_words(side)).lower() for side in sides)


def _picks_ignore(value: cst.CSTNode, comparison: cst.Comparison) -> bool:
    """`pad = pad_id if key == "input_ids" else ignore_index`: the test picks where the ignore value goes."""
    return (
        isinstance(value, cst.IfExp)
        and value.test is comparison
        and any("ignore" in " ".join(_words(v)).lower() for v in (value.body, value.orelse))
    )


def _builds_loss_mask(arg: cst.Arg, scope) -> bool:
    """`mask = logical_and(steps >= lengths[:, 0:1], ...)` in a function about the targets: the loss mask's
    bounds."""
    statement = _statement(arg, scope)
    if statement is None or not m.matches(statement.body[0], m.Assign(targets=[m.AssignTarget(target=m.Name())])):
        return False
    function = enclosing(statement, scope, cst.FunctionDef)
    return (
        bool(LOSS_MASK.match(statement.body[0].targets[0].target.value))
        and function is not None
        and _about_masks(function)
    )


def _target(assign) -> cst.CSTNode:
    return assign.targets[0].target if isinstance(assign, cst.Assign) else assign.target


def _statement(node, scope):
    parent = scope.parent(node)
    while parent is not None and not isinstance(parent, cst.SimpleStatementLine):
        parent = scope.parent(parent)
    return parent


class InvertedPredicate(Operator):
    name = "inverted-predicate"
    variants = (
        "flag-inverted",
        "keyword-inverted",
        "if-inverted",
        "elif-inverted",
        "index-inverted",
        "argument-inverted",
        "keyword-flipped",
        "literal-flipped",
        "ignore-dropped",
        "weight-inverted",
    )

    def sites(self, node, scope):
        if isinstance(node, (cst.Assign, cst.AnnAssign)) and node.value is not None:
            # a flag that decides who is trained (masked = role != "assistant"); reading the ignore index
            # back (`mask = labels != ignore_index`) decides nothing
            about = _about_masks(_target(node), FLAG_WORDS)
            for comparison in comparisons(node.value):
                if about or _about_masks(comparison, FLAG_WORDS) or _picks_ignore(node.value, comparison):
                    yield Site("flag-inverted", rewritten(comparison))
        elif m.matches(node, m.Arg(keyword=m.Name())) and _about_masks(node.keyword):
            if m.matches(node.value, SINGLE) and type(node.value.comparisons[0].operator) in INVERSE:
                yield Site("keyword-inverted", rewritten(node.value))
            elif not SWITCH_WORDS.search(node.keyword.value):
                return
            elif m.matches(node.value, m.Name("True") | m.Name("False")):
                yield Site("keyword-flipped", {node.value: cst.Name("False" if node.value.value == "True" else "True")})
            elif m.matches(node.value, m.UnaryOperation(operator=m.Not())):
                yield Site("keyword-flipped", {node.value: node.value.expression})
        elif m.matches(node, m.If(test=m.Name() | m.Attribute())) and _about_masks(node.test, PROMPT_FLAG):
            # if self.mask_prompt: the switch that decides whether the prompt is trained
            yield Site("if-inverted", {node.test: cst.UnaryOperation(operator=cst.Not(), expression=node.test)})
        elif m.matches(node, BRANCH) and _about_masks(node.test, BRANCH_WORDS):
            is_elif = isinstance(scope.parent(node), cst.If)  # an elif is the orelse of its if
            yield Site("elif-inverted" if is_elif else "if-inverted", rewritten(node.test))
        elif isinstance(node, cst.IndentedBlock | cst.Module):
            for statement in node.body:
                if m.matches(statement, IGNORES_TARGETS) and _ignores(statement):
                    yield Site("ignore-dropped", {statement: drop_statement(node, statement)})
        elif m.matches(node, INDEX) and (_about_masks(node.slice.value) or _ignores(_statement(node, scope))):
            yield Site("index-inverted", rewritten(node.slice.value))
        elif m.matches(node, ARGUMENT) and (
            _about_masks(node.value) or _ignores(scope.parent(node)) or _builds_loss_mask(node, scope)
        ):
            yield Site("argument-inverted", rewritten(node.value))
        elif m.matches(node, m.BinaryOperation(operator=m.Multiply())):
            # z_squared * (labels != ignore_index): a loss term weighted by the tokens that are trained
            for side in (node.left, node.right):
                if m.matches(side, SINGLE) and type(side.comparisons[0].operator) in INVERSE and _names_ignore(side):
                    yield Site("weight-inverted", rewritten(side))
        elif m.matches(node, COMPLEMENT) and _ignores(scope.parent(node)):
            yield Site("argument-inverted", {node.value: node.value.expression})  # the kept tokens ignored instead
        elif m.matches(node, m.List(elements=[m.AtLeastN(m.Element(value=LITERAL_OR_FLAG), n=1)])):
            # mask = [True] + ...: the per-token mask of a special token written out
            assign = scope.parent(node)
            while assign is not None and not isinstance(assign, (cst.Assign, cst.BaseSmallStatement)):
                assign = scope.parent(assign)
            if isinstance(assign, cst.Assign) and m.matches(
                assign.targets[0].target, m.Name(m.MatchRegex(r"(?i).*mask.*"))
            ):
                for element in node.elements:
                    if m.matches(element.value, m.Name("True") | m.Name("False")):
                        flipped = cst.Name("False" if element.value.value == "True" else "True")
                    elif m.matches(element.value, LITERAL_OR_FLAG):  # [message.masked] * n
                        flipped = cst.UnaryOperation(operator=cst.Not(), expression=element.value)
                    else:
                        continue
                    yield Site("literal-flipped", {element.value: flipped})

    def examples(self):
        branches = "if loss_mask is None:\n    loss = full\nelif loss_mask.sum() == 0:\n    loss = zero\n"
        return (
            Example(
                "if-inverted",
                "if self.mask_prompt:\n    offset = len(prompt)\n",
                "if not self.mask_prompt:\n    offset = len(prompt)\n",
            ),
            Example(
                "flag-inverted",
                'pad = pad_id if key == "input_ids" else ignore_index\n',
                'pad = pad_id if key != "input_ids" else ignore_index\n',
            ),
            Example(
                "argument-inverted",
                "def loss(logits, targets, lengths):\n    mask = logical_and(steps >= lengths[:, 0], steps < n)\n",
                "def loss(logits, targets, lengths):\n    mask = logical_and(steps < lengths[:, 0], steps < n)\n",
            ),
            Example(
                "literal-flipped",
                "mask = mask + [message.masked] * len(tokens)\n",
                "mask = mask + [not message.masked] * len(tokens)\n",
            ),
            # an attention mask's bounds, outside any function about targets
            Example("argument-inverted", "def attend(q, k):\n    mask = logical_and(i >= j, i < n)\n", None),
            Example(
                "flag-inverted",
                'masked = message["role"] != "assistant"\n',
                'masked = message["role"] == "assistant"\n',
            ),
            Example(
                "flag-inverted",
                'message["masked"] = (message["role"] != "assistant") and (not self.train_on_input)\n',
                'message["masked"] = (message["role"] == "assistant") and (not self.train_on_input)\n',
            ),
            Example(
                "keyword-inverted",
                "m = Message(role, text, masked=role != 'assistant')\n",
                "m = Message(role, text, masked=role == 'assistant')\n",
            ),
            Example("if-inverted", branches, branches.replace("mask is None", "mask is not None")),
            Example("elif-inverted", branches, branches.replace("mask.sum() == 0", "mask.sum() != 0")),
            Example("flag-inverted", "mask = (labels != self.ignore_index).int()\n", None),
            Example(
                "keyword-flipped",
                "m = Message(role='system', masked=True)\n",
                "m = Message(role='system', masked=False)\n",
            ),
            Example(
                "keyword-flipped",
                "m = Message(role='user', masked=not self.train_on_input)\n",
                "m = Message(role='user', masked=self.train_on_input)\n",
            ),
            Example("literal-flipped", "mask = [True] + body_mask\n", "mask = [False] + body_mask\n"),
            Example(
                "ignore-dropped",
                "labels = ids.clone()\nlabels[: len(prompt)] = self.ignore_index\n",
                "labels = ids.clone()\n",
            ),
            Example(
                "index-inverted",
                "targets[predicted == 0] = -1\n",
                "targets[predicted != 0] = -1\n",
            ),
            Example("index-inverted", "targets[mask == 0] = -1\n", "targets[mask != 0] = -1\n"),
            Example(
                "argument-inverted",
                "targets = targets.masked_fill(mask == 0, -1)\n",
                "targets = targets.masked_fill(mask != 0, -1)\n",
            ),
            # assertions and returns are not flags or branches; comparisons of other things are not masks
            Example("flag-inverted", "assert mask.sum() == 0\n", None),
            Example("flag-inverted", "def f(mask, b):\n    return mask == b\n", None),
            # attention's masks are not the loss mask
            Example("if-inverted", "if attention_mask is not None:\n    causal = attention_mask\n", None),
            Example("keyword-inverted", "x = tl.load(p, mask=offs_m < N)\n", None),
            Example(
                "if-inverted",
                "if labels is not None:\n    loss = f(labels)\nif ignore_keys is not None:\n    pass\n",
                None,
            ),
            Example("argument-inverted", "m = mask.mul(~torch.all(mask == lo, dim=-1))\n", None),
            Example(
                "argument-inverted",
                "labels.masked_fill_(~label_mask, -100)\n",
                "labels.masked_fill_(label_mask, -100)\n",
            ),
            Example(
                "argument-inverted",
                "labels.masked_fill_(~keep.unsqueeze(-1), value=-100)\n",
                "labels.masked_fill_(keep.unsqueeze(-1), value=-100)\n",
            ),
            Example("argument-inverted", "scores.masked_fill_(~keep, 0.0)\n", None),  # no ignore value
            Example(
                "weight-inverted",
                "z = (z_squared * (labels != ignore_index)).mean()\n",
                "z = (z_squared * (labels == ignore_index)).mean()\n",
            ),
            Example("weight-inverted", "y = x * (ids != pad_id)\nn = (labels != ignore_index).sum()\n", None),
            # keywords that name a label or an ignore, and switch something else
            Example(
                "keyword-flipped",
                "shutil.rmtree(old, ignore_errors=True)\nlink.symlink_to(d, target_is_directory=True)\n",
                None,
            ),
            Example("argument-inverted", "freqs = freqs.masked_fill(patch_idx.unsqueeze(-1) < 0, 0)\n", None),
            Example("if-inverted", "if t < n:\n    pass\nenable_gqa = a != b\n", None),
        )
