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

import functools
import itertools
import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import INVERSE, Example, Operator, Site, comparisons, drop_statement, rewritten
from mutator.operators.meaning import LOSS_MASK, MASKS, bindings, body_of, enclosing, identifiers, owners

SINGLE = m.Comparison(comparisons=[m.ComparisonTarget()])  # a op b (not a chain like a < b < c)
FLAG = m.Assign(value=SINGLE) | m.AnnAssign(value=SINGLE)  # masked = role != "assistant"
# a branch decides about the loss mask only where it says ignore or masked; `if labels is not None:` does not
BRANCH_WORDS = re.compile(r"(?i)ignore_(index|id)|loss_mask|train_on_input|masked")
FLAG_WORDS = re.compile(r"(?i)loss_mask|train_on_input|^masked$|assistant")
PROMPT_FLAG = re.compile(r"(?i)mask_prompt|mask_input|train_on_(prompt|input)|(^|_)mask_loss$")
# [True] * n, [message.masked] * n: a special token's or a message's mask flag written out
LITERAL_OR_FLAG = m.Name("True") | m.Name("False") | m.Attribute(attr=m.Name("masked"))
# the ignore index as a literal (slice-shift reads it too: a slice compared with it counts, it shifts nothing)
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
# [IGNORE_INDEX] * len(prompt), [-100] * n: a run of ignored labels, over a part or over the padding
IGNORE_RUN = m.BinaryOperation(
    operator=m.Multiply(),
    left=m.List(
        elements=[
            m.Element(
                value=m.UnaryOperation(operator=m.Minus(), expression=m.Integer("100"))
                | m.Name(m.MatchRegex(r"(?i).*ignore.*"))
                | m.Attribute(attr=m.Name(m.MatchRegex(r"(?i).*ignore.*")))
            )
        ]
    ),
)
OF_LENGTH = m.Call(func=m.Name("len"), args=[m.Arg(keyword=None)])  # [IGNORE] * len(sequence)
# a zeroed loss mask: `loss_mask = torch.zeros_like(loss_mask)`, `loss_mask[idx] = 0.0`
NAMED_LOSS_MASK = re.compile(r"(?i)^(loss|label|target|sft)_masks?$")
ZERO = m.Integer("0") | m.Float(m.MatchRegex(r"0?\.0*")) | m.Name("False")
THE_LABELS = re.compile(r"(?i)label|target")
RESPONSE = re.compile(r"(?i)response|completion|answer|(^|_)target")
# a branch that only checks (raises, warns, or says whether an example is valid) decides no mask
CHECK = m.SimpleStatementLine(
    body=[m.Raise() | m.Return(value=m.Name("True") | m.Name("False")) | m.Return(value=None)]
)
# a branch on the side the tokenizer pads: `if self.tokenizer.padding_side == 'left':`
PADDING_SIDE = re.compile(r"(?i)side|^left$|^right$")


def _words(node: cst.CSTNode) -> set[str]:
    """Identifiers and the text of short strings (`message["role"] != "assistant"`)."""
    strings = {str(s.evaluated_value) for s in m.findall(node, m.SimpleString()) if len(s.value) < 40}
    return identifiers(node) | strings


def _about_masks(node: cst.CSTNode | None, words: re.Pattern = MASKS) -> bool:
    return node is not None and any(words.search(word) for word in _words(node))


def _ignores(node: cst.CSTNode | None) -> bool:
    """The statement or call puts an ignore value: -1, -100, or a name that says ignore."""
    if isinstance(node, cst.Call):  # masked_fill(cond, -100), where(cond, labels, ignore_index); not dim=-1
        values = [  # the values put, not the condition that says where (`ids == IGNORE_INDEX` is read)
            arg.value
            for arg in node.args
            if (arg.keyword is None or arg.keyword.value in ("value", "fill_value"))
            and not m.matches(arg.value, m.Comparison() | m.UnaryOperation(operator=m.BitInvert() | m.Not()))
        ]
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


def _writes_loss_side(call: cst.Call, scope) -> bool:
    """The call's result or receiver is the labels, the loss or a mask: `labels.masked_fill_(...)`,
    `mask = torch.where(...)`; not a gradient (`probs = tl.where(cols == label_idx, ...)`), decoder inputs, or
    a test (`if torch.all(targets == ignore_index):`)."""
    words = re.compile(r"(?i)label|target|loss|mask")
    if isinstance(call.func, cst.Attribute) and m.matches(call.func.value, ~m.Name("torch") & ~m.Name("tl")):
        receiver = call.func.value
        if any(words.search(w) for w in _words(receiver)):
            return True
    assign = scope.parent(call)
    return isinstance(assign, cst.Assign) and any(words.search(w) for w in identifiers(assign.targets[0].target))


def _last_position(target: cst.CSTNode) -> bool:
    """`labels[:, -1]`, `targets[..., -1]`: the last position, which a roll left without a next token (the
    shift's business, not the loss mask's)."""
    if not isinstance(target, cst.Subscript) or not target.slice:
        return False
    *before, last = target.slice
    full = m.SubscriptElement(slice=m.Slice(lower=None, upper=None, step=None) | m.Index(m.Ellipsis()))
    minus_one = m.SubscriptElement(slice=m.Index(m.UnaryOperation(operator=m.Minus(), expression=m.Integer("1"))))
    return m.matches(last, minus_one) and all(m.matches(e, full) for e in before)


def _runs_of_ignore(expr: cst.CSTNode, scope) -> bool:
    """`expr` holds a run of ignored labels, or a name bound to one in the function (`i_pad = [IGNORE] * n`)."""
    if m.findall(expr, IGNORE_RUN):
        return True
    assigned = bindings(body_of(expr, scope))
    return any(m.matches(value, IGNORE_RUN) for name in identifiers(expr) for value in assigned.get(name, ()))


def _only_checks(block: cst.BaseSuite) -> bool:
    body = block.body if isinstance(block, cst.IndentedBlock) else [block]
    return all(m.matches(statement, CHECK) for statement in body)


@functools.lru_cache(maxsize=64)
def _policies(module: cst.Module) -> dict[str, cst.Dict]:
    """Module-level tables of labelling policies: `_LOOKUP = {'all': _labels_all, 'none': _labels_none}`, the
    values functions of the module of which some return runs of ignored labels and some do not."""
    functions = {f.name.value: f for f in module.body if isinstance(f, cst.FunctionDef)}
    found = {}
    for statement in module.body:
        if not m.matches(statement, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(m.Name())])])):
            continue
        table = statement.body[0].value
        if not isinstance(table, cst.Dict):
            continue
        names = [
            e.value.value for e in table.elements if isinstance(e, cst.DictElement) and isinstance(e.value, cst.Name)
        ]
        if len(names) < 2 or len(names) != len(table.elements) or not all(n in functions for n in names):
            continue
        masking = {n for n in names if m.findall(functions[n], IGNORE_RUN)}
        if masking and len(masking) < len(set(names)):
            found[statement.body[0].targets[0].target.value] = table
    return found


def _target(assign) -> cst.CSTNode:
    return assign.targets[0].target if isinstance(assign, cst.Assign) else assign.target


def _statement(node, scope):
    parent = scope.parent(node)
    while parent is not None and not isinstance(parent, cst.SimpleStatementLine):
        parent = scope.parent(parent)
    return parent


POLICIES = (
    "def _all(seq):\n    return seq\n"
    "def _none(seq):\n    return [IGNORE_INDEX] * len(seq)\n"
    "LOOKUP = {'all': _all, 'none': _none}\n"
    "def stitch(turns, prompts, responses):\n"
    "    to_prompt = LOOKUP[prompts]\n"
    "    to_response = LOOKUP[responses]\n"
    "    labels = []\n"
    "    for context, target in turns:\n"
    "        labels += to_prompt(context)\n"
    "        labels += to_response(target)\n"
    "    return labels\n"
)  # the examples' labelling policies


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
        "padding-swapped",
        "policy-swapped",
        "boundary-dropped",
    )

    def sites(self, node, scope):
        if isinstance(node, (cst.Assign, cst.AnnAssign)) and node.value is not None:
            # a flag that decides who is trained (masked = role != "assistant"); reading the ignore index
            # back (`mask = labels != ignore_index`) decides nothing
            about = _about_masks(_target(node), FLAG_WORDS)
            for comparison in comparisons(node.value):
                if about or _about_masks(comparison, FLAG_WORDS) or _picks_ignore(node.value, comparison):
                    yield Site("flag-inverted", rewritten(comparison))
            if m.matches(node, m.Assign(targets=[m.AssignTarget(m.Name())], value=m.Subscript())):
                # response = full_conversation[len(prompt_with_history):]: the response starts where the prompt
                # ends; from 0 it holds the prompt too, which is then trained
                cut = node.value
                if (
                    RESPONSE.search(node.targets[0].target.value)
                    and len(cut.slice) == 1
                    and m.matches(cut.slice[0].slice, m.Slice(lower=OF_LENGTH, upper=None, step=None))
                ):
                    yield Site("boundary-dropped", {cut.slice[0].slice.lower: cst.Integer("0")})
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
        elif m.matches(node, BRANCH) and _about_masks(node.test, BRANCH_WORDS) and not _only_checks(node.body):
            is_elif = isinstance(scope.parent(node), cst.If)  # an elif is the orelse of its if
            yield Site("elif-inverted" if is_elif else "if-inverted", rewritten(node.test))
        elif isinstance(node, cst.If) and self._chooses_labels(node, scope):
            # if is_last_turn: return sequence / else: return [IGNORE] * len(sequence)
            test = node.test
            is_elif = isinstance(scope.parent(node), cst.If)
            if m.matches(test, SINGLE) and type(test.comparisons[0].operator) in INVERSE:
                yield Site("elif-inverted" if is_elif else "if-inverted", rewritten(test))
            elif not m.matches(test, m.UnaryOperation(operator=m.Not())):
                yield Site("elif-inverted" if is_elif else "if-inverted", {test: cst.UnaryOperation(cst.Not(), test)})
        elif isinstance(node, cst.IndentedBlock | cst.Module):
            yield from self._statements(node, scope)
        elif m.matches(node, INDEX) and self._indexes_loss_side(node, scope):
            yield Site("index-inverted", rewritten(node.slice.value))
        elif m.matches(node, ARGUMENT) and (
            (_about_masks(node.value) and _writes_loss_side(scope.parent(node), scope))
            or _ignores(scope.parent(node))
            or _builds_loss_mask(node, scope)
        ):
            yield Site("argument-inverted", rewritten(node.value))
        elif m.matches(node, IGNORE_RUN):
            # the ignored part trained instead: [IGNORE] * len(prompt) -> list(prompt); padding trained on 0
            count = node.right
            if m.matches(count, OF_LENGTH):
                yield Site("ignore-dropped", {node: cst.Call(cst.Name("list"), [cst.Arg(count.args[0].value)])})
            else:
                element = node.left.elements[0]
                yield Site("ignore-dropped", {element.value: cst.Integer("0")})
        elif m.matches(node, m.BinaryOperation(operator=m.Add())) and self._padded_labels(node, scope):
            # labels = i_pad + labels <-> labels + i_pad: the labels padded on the side the ids are not
            yield Site("padding-swapped", {node: node.with_changes(left=node.right, right=node.left)})
        elif isinstance(node, cst.Dict) and any(
            table is node for table in _policies(enclosing(node, scope, cst.Module)).values()
        ):
            yield from self._swapped_policies(node, enclosing(node, scope, cst.Module))
        elif isinstance(node, cst.FunctionDef):
            yield from self._looked_up_policies(node, scope)
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

    @staticmethod
    def _chooses_labels(branch: cst.If, scope) -> bool:
        """One side of the branch labels a part as ignored, the other does not, or the branch picks where the
        ignored padding goes (`if padding_side == 'left': labels = i_pad + labels`)."""
        if _only_checks(branch.body):
            return False
        body = _runs_of_ignore(branch.body, scope)
        orelse = branch.orelse is not None and _runs_of_ignore(branch.orelse, scope)
        if body and orelse:  # both pad with ignored labels: the branch picks the side
            return True
        if body or orelse:  # a part either trained or ignored: `return sequence` / `[IGNORE] * len(sequence)`
            ignored, other = (branch.body, branch.orelse) if body else (branch.orelse, branch.body)
            parts = {
                name
                for run in m.findall(ignored, IGNORE_RUN)
                if m.matches(run.right, OF_LENGTH)
                for name in identifiers(run.right.args[0].value)
            }
            return other is not None and bool(parts & identifiers(other))
        # if message["role"] == "assistant": prompt, response = ...: the turn whose response is trained
        if m.matches(branch.test, SINGLE) and "assistant" in _words(branch.test):
            bound = {n.value for t in m.findall(branch.body, m.AssignTarget()) for n in m.findall(t, m.Name())}
            return any(RESPONSE.search(n) for n in bound)
        return False

    @staticmethod
    def _padded_labels(node: cst.BinaryOperation, scope) -> bool:
        assign = scope.parent(node)
        if not m.matches(assign, m.Assign(targets=[m.AssignTarget(m.Name())])) or assign.value is not node:
            return False
        if not THE_LABELS.search(assign.targets[0].target.value):
            return False
        branch = next(iter(owners(node, scope, cst.If)), None)
        if branch is None or not any(PADDING_SIDE.search(w) for w in _words(branch.test)):
            return False  # only the padding side of the ids says which side the labels' padding must be on
        sides = (node.left, node.right)
        padded = [isinstance(s, cst.Name) and _runs_of_ignore(s, scope) for s in sides]
        labels = [isinstance(s, cst.Name) and bool(THE_LABELS.search(s.value)) for s in sides]
        return any(padded) and any(labels) and padded != labels

    def _statements(self, block, scope):
        for statement in block.body:
            if not m.matches(statement, m.SimpleStatementLine(body=[m.DoNotCare()])):
                continue
            small = statement.body[0]
            if (
                m.matches(statement, IGNORES_TARGETS)
                and _ignores(statement)
                and not _last_position(small.targets[0].target)
            ):
                yield Site("ignore-dropped", {statement: drop_statement(block, statement)})
            elif m.matches(small, m.Assign(targets=[m.AssignTarget(m.Name(m.MatchRegex(NAMED_LOSS_MASK)))])):
                # loss_mask = torch.zeros_like(loss_mask): a whole sample taken out of the loss
                name = small.targets[0].target.value
                zeros = m.Call(
                    func=m.Attribute(attr=m.Name("zeros_like")) | m.Name("zeros_like"),
                    args=[m.Arg(value=m.Name(name)), m.ZeroOrMore()],
                )
                if m.matches(small.value, zeros):
                    yield Site("ignore-dropped", {statement: drop_statement(block, statement)})

    @staticmethod
    def _indexes_loss_side(node: cst.SubscriptElement, scope) -> bool:
        """`targets[mask == 0] = -1`, `loss_mask[data == eod] = 0.0`, `logits[labels != ignore_index]`; not
        `labels[labels == pad_id] = 0`, which makes pad ids valid for an embedding and masks nothing."""
        statement = _statement(node, scope)
        subscript = scope.parent(node)
        if (
            statement is not None
            and m.matches(statement.body[0], m.Assign())
            and any(t.target is subscript for t in statement.body[0].targets)
        ):
            zeroes_mask = isinstance(subscript.value, cst.Name) and NAMED_LOSS_MASK.match(subscript.value.value)
            return _ignores(statement) or bool(zeroes_mask and m.matches(statement.body[0].value, ZERO))
        return _about_masks(node.slice.value) or _ignores(statement)

    @staticmethod
    def _swapped_policies(table: cst.Dict, module: cst.Module):
        """The first policy that ignores a part swapped with the first that does not ('none' <-> 'all')."""
        functions = {f.name.value: f for f in module.body if isinstance(f, cst.FunctionDef)}
        masking = [e for e in table.elements if m.findall(functions[e.value.value], IGNORE_RUN)]
        plain = [e for e in table.elements if e not in masking]
        first, second = masking[0].value, plain[0].value
        yield Site("policy-swapped", {first: second.deep_clone(), second: first.deep_clone()})

    @staticmethod
    def _looked_up_policies(function: cst.FunctionDef, scope):
        """`prompt_to_target = LOOKUP[target_prompts]`, `response_to_target = LOOKUP[target_responses]`: the
        prompt's policy and the response's swapped. And the labels built from them,
        `labels += prompt_to_target(context)` then `labels += response_to_target(target)`, each part labelled by
        the other's policy."""
        tables = _policies(enclosing(function, scope, cst.Module))
        if not tables:
            return
        lookup = m.Subscript(
            value=m.Name(m.MatchIfTrue(lambda n: n in tables)), slice=[m.SubscriptElement(m.Index(m.Name()))]
        )
        keys = [a.value.slice[0].slice.value for a in m.findall(function.body, m.Assign(value=lookup))]
        distinct = {k.value: k for k in keys}
        if len(distinct) >= 2:
            first, second = list(distinct.values())[:2]
            yield Site(
                "policy-swapped",
                {
                    k: (second if k.value == first.value else first).deep_clone()
                    for k in keys
                    if k.value in (first.value, second.value)
                },
            )
        chosen = {
            a.targets[0].target.value
            for a in m.findall(function.body, m.Assign(targets=[m.AssignTarget(m.Name())], value=lookup))
        }
        grows = m.SimpleStatementLine(
            body=[
                m.AugAssign(
                    target=m.Name(m.MatchRegex(r"(?i).*(label|target).*")),
                    operator=m.AddAssign(),
                    value=m.Call(func=m.Name(m.MatchIfTrue(lambda n: n in chosen))),
                )
            ]
        )
        for block in m.findall(function, m.IndentedBlock()):
            for first, second in itertools.pairwise(block.body):
                if m.matches(first, grows) and m.matches(second, grows):
                    a, b = first.body[0].value.func, second.body[0].value.func
                    if a.value != b.value and first.body[0].target.value == second.body[0].target.value:
                        yield Site("policy-swapped", {a: b.deep_clone(), b: a.deep_clone()})

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
            # a labelling policy: which part is a target and which a run of ignored labels
            Example(
                "if-inverted",
                "def last(sequence, is_last_turn):\n    if is_last_turn:\n        return sequence\n"
                "    else:\n        return [IGNORE_INDEX] * len(sequence)\n",
                "def last(sequence, is_last_turn):\n    if not is_last_turn:\n        return sequence\n"
                "    else:\n        return [IGNORE_INDEX] * len(sequence)\n",
            ),
            Example(
                "ignore-dropped",
                "def none(sequence):\n    return [IGNORE_INDEX] * len(sequence)\n",
                "def none(sequence):\n    return list(sequence)\n",
            ),
            Example("ignore-dropped", "pad = [-100] * (n - len(labels))\n", "pad = [0] * (n - len(labels))\n"),
            Example("ignore-dropped", "pos = [-1] * n\nids = [pad_id] * len(ids)\n", None),  # not ignored labels
            # the label padding on the side the tokenizer pads the ids
            Example(
                "padding-swapped",
                "i_pad = [IGNORE_INDEX] * (n - total)\nif side == 'left':\n    labels = i_pad + labels\n",
                "i_pad = [IGNORE_INDEX] * (n - total)\nif side == 'left':\n    labels = labels + i_pad\n",
            ),
            Example(
                "if-inverted",
                "i_pad = [IGNORE_INDEX] * (n - total)\nif side == 'left':\n    labels = i_pad + labels\n"
                "else:\n    labels = labels + i_pad\n",
                "i_pad = [IGNORE_INDEX] * (n - total)\nif side != 'left':\n    labels = i_pad + labels\n"
                "else:\n    labels = labels + i_pad\n",
            ),
            # padding applied or a sequence truncated: not a choice of what is trained
            Example(
                "if-inverted",
                "if len(target) < n:\n    target = target + [IGNORE_INDEX] * (n - len(target))\n"
                "else:\n    target = target[:n]\n",
                None,
            ),
            Example("padding-swapped", "ids = pad + ids\nlabels = labels + [eos]\n", None),
            # a check that an example still has targets decides nothing about the mask
            Example(
                "if-inverted",
                "if len([l for l in labels if l != IGNORE_INDEX]) == 0:\n    raise ValueError('no targets')\n",
                None,
            ),
            # a table of labelling policies, the policies looked up for prompt and response, and used
            Example(
                "policy-swapped",
                POLICIES,
                POLICIES.replace("'all': _all, 'none': _none", "'all': _none, 'none': _all"),
            ),
            Example(
                "policy-swapped",
                POLICIES,
                POLICIES.replace("LOOKUP[prompts]", "LOOKUP[$]")
                .replace("LOOKUP[responses]", "LOOKUP[prompts]")
                .replace("LOOKUP[$]", "LOOKUP[responses]"),
            ),
            Example(
                "policy-swapped",
                POLICIES,
                POLICIES.replace("labels += to_prompt(", "labels += $(")
                .replace("labels += to_response(", "labels += to_prompt(")
                .replace("labels += $(", "labels += to_response("),
            ),
            Example(
                "policy-swapped",
                "HANDLERS = {'a': _f, 'b': _g}\ndef _f(x):\n    return x\ndef _g(x):\n    return [x]\n",
                None,
            ),  # no policy ignores anything
            # where the response starts, and the assistant's turn that ends a prompt
            Example(
                "boundary-dropped",
                "response = full_conversation[len(prompt_with_history):]\n",
                "response = full_conversation[0:]\n",
            ),
            Example("boundary-dropped", "rest = text[len(prefix):]\n", None),
            Example(
                "if-inverted",
                "if message['role'] == 'assistant':\n    prompt, response = split(messages[: i + 1])\n",
                "if message['role'] != 'assistant':\n    prompt, response = split(messages[: i + 1])\n",
            ),
            Example("if-inverted", "if message['role'] == 'assistant':\n    tokens.append(eot)\n", None),
            # the loss mask zeroed for a padding sample or at the document ends; pads made valid ids are not
            Example(
                "ignore-dropped",
                "if idx is None:\n    loss_mask = torch.zeros_like(loss_mask)\n",
                "if idx is None:\n    pass\n",
            ),
            Example(
                "index-inverted",
                "loss_mask[data == eod_token] = 0.0\n",
                "loss_mask[data != eod_token] = 0.0\n",
            ),
            Example("if-inverted", "if eod_mask_loss:\n    m = 1\n", "if not eod_mask_loss:\n    m = 1\n"),
            Example("index-inverted", "labels[labels == self.pad_token_id] = 0\n", None),
            # ignore values read, not put: decoder inputs cleaned, a gradient's one-hot, a test of the loss
            Example(
                "argument-inverted",
                "batch['decoder_input_ids'].masked_fill_(batch['decoder_input_ids'] == IGNORE_INDEX, pad_id)\n"
                "probs = tl.where(cols == label_idx, probs - 1.0, probs)\n"
                "if torch.all(targets == loss_fn.ignore_index):\n    loss = losses.sum()\n",
                None,
            ),
            # after a roll, the last position is the shift's (target-shift), not the loss mask's
            Example("ignore-dropped", "targets = torch.roll(labels, -1)\ntargets[:, -1] = IGNORE_INDEX\n", None),
        )
