"""swapped-token-order: the two markers of a pair (`<|x_start|>` ... `<|x_end|>`) emitted in swapped order.

The engine forces `<|output_start|>` result `<|output_end|>` after a calculator call, tokenizers render
`<|user_start|>` ... `<|user_end|>`, `<|start_header_id|>` role `<|end_header_id|>`, and prompt templates
write `f"{B_INST} {prompt} {E_INST}"` or `"<|im_start|>{role}\n{content}<|im_end|>"`. Swapping the pair
keeps every token count and mask, so only a check of the exact order sees it.

A marker is recognised by its spelling, in a name, an attribute or a string: a start/begin/open and an
end/close side around the same stem (`user_start`, `OUTPUT_END`, `start_header_id`, `begin_of_text`,
`B_INST` / `E_INST`), or a tag and its closing form (`[INST]` / `[/INST]`, `<<SYS>>` / `<</SYS>>`).
Sites: two emitting statements in a block (`emit(special("<|user_start|>"), 0)`, `ids.append(start)`,
`ids += [end]`); a list literal, a `+` chain or an f-string that puts content between the two; a string
template holding both around content; and a pair of markers assigned to two names at once
(`b_inst, e_inst = "[INST]", "[/INST]"`). Only the markers move; masks and everything else stay. A list of
nothing but markers is a vocabulary, and a docstring or an error message emits nothing.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site
from mutator.operators.meaning import callee, code

SIDES = {"start": "start", "begin": "start", "open": "start", "b": "start", "end": "end", "close": "end", "e": "end"}
WORDS = "start|begin|open|end|close"
SUFFIXED = re.compile(rf"^(?P<stem>\w+?)_(?P<side>{WORDS})(?:_(?:id|token|tok|idx))?$", re.I)  # user_start
PREFIXED = re.compile(rf"^(?P<side>{WORDS}|b|e)_(?P<stem>\w+)$", re.I)  # start_header_id, B_INST
# a message's header opens it, as its end closes it: `tokenized_header + tokenized_body + tokenized_end`
HEADER = re.compile(r"^(?P<stem>\w+?)_header(?:_(?:ids?|tokens?|toks?))?$", re.I)
# markers inside text: <|...|>, [INST] / [/INST], <<SYS>> / <</SYS>>, <start_of_turn> / </think>, and a tag
# opened with a value (`<function={name}>` ... `</function>`)
IN_TEXT = re.compile(r"<\|[^|<>\s]+\|>|\[/?[A-Z_]{2,}\]|<</?[A-Z_]{2,}>>|</?[A-Za-z_]+>|<[A-Za-z_]+(?==)")
VALUED_TAG = re.compile(r"^<(?P<name>[A-Za-z_]+)$")
# a turn opened by its role's tag and closed by a generic end of turn: <|user|> ... <|end|>
ROLE = re.compile(r"(?i)^(system|user|assistant|model|human|bot|tool|ipython)$")
END_OF_TURN = re.compile(r"(?i)^(end|eot|eot_id|endoftext|/s|eos)$")
EMITS = m.SimpleStatementLine(body=[m.Expr(value=m.Call()) | m.AugAssign(value=m.List() | m.Tuple())])
# a statement emits a marker by handing it to a sequence or a writer (`ids.append(start)`, `emit(tok)`); a
# call such as `run_event(Event.FIT_START)` or `validate(self.swa_start)` orders events, not tokens
SINK = re.compile(r"(?i)^(append|extend|insert|put|push|write|add)$|emit|token|encode|special")
# a regular expression's syntax (a group's `(?:`, `(?P<`, a lookahead, an escaped `|`): a pattern that parses a
# model's output, it emits nothing
PATTERN = re.compile(r"\(\?(?:[:=!]|P<|<[=!])|\\\|")
SILENT = (cst.Raise, cst.Assert)  # what sits in an error message is not emitted
SILENT_CALLS = re.compile(r"(?i)^(print|warn|warning|info|debug|error|exception|log|format_exc)$")


def marker(text: str) -> tuple[str, str] | None:
    """(stem, "start"|"end") when text is one marker, else None."""
    text = text.strip()
    for opener, closer in (("<|", "|>"), ("<<", ">>"), ("[", "]"), ("<", ">")):
        if text.startswith(opener) and text.endswith(closer) and len(text) > len(opener) + len(closer):
            text = text[len(opener) : -len(closer)]
            if ROLE.match(text):
                return "turn", "start"
            if END_OF_TURN.match(text):
                return "turn", "end"
            if opener != "<|" and not SUFFIXED.match(text) and not PREFIXED.match(text):
                closing = text.startswith("/")  # a tag: [INST] opens, [/INST] closes
                return (text.lstrip("/").lower(), "end" if closing else "start")
            break
    for pattern in (SUFFIXED, PREFIXED):
        found = pattern.match(text)
        if found:
            return found["stem"].lower(), SIDES[found["side"].lower()]
    found = HEADER.match(text)
    if found and found["stem"].lower() not in SIDES:  # `start_header_id` is the header's own start marker
        return found["stem"].lower(), "start"
    return None


def token_of(expr: cst.CSTNode) -> tuple[str, str] | None:
    """(stem, side) when expr names or spells a marker, else None.

    A name or attribute is judged by its name, a string by its text, and a call or subscript with a
    single argument (`special("<|user_start|>")`, `special_tokens["<|start_header_id|>"]`) by that argument.
    """
    if isinstance(expr, cst.Name):
        return marker(expr.value) if len(expr.value) > 2 else None  # `b` and `e` alone are not markers
    if isinstance(expr, cst.Attribute):
        return marker(expr.attr.value)
    if isinstance(expr, cst.SimpleString):
        return marker(str(expr.evaluated_value))
    if isinstance(expr, cst.Call) and len(expr.args) == 1:
        return token_of(expr.args[0].value)
    if isinstance(expr, cst.List) and len(expr.elements) == 1:  # [self.start_header_id] + ids + [...]
        return token_of(expr.elements[0].value)
    if m.matches(expr, m.Subscript(slice=[m.SubscriptElement(slice=m.Index())])):
        return token_of(expr.slice[0].slice.value)
    return None


def emitted_token(statement: cst.CSTNode) -> cst.BaseExpression | None:
    """The one token-valued argument of a call statement (or element of `ids += [tok]`), else None."""
    if not m.matches(statement, EMITS):
        return None
    small = statement.body[0]
    if isinstance(small, cst.Expr) and not SINK.search(callee(small.value)):
        return None
    values = (
        [a.value for a in small.value.args] if isinstance(small, cst.Expr) else [e.value for e in small.value.elements]
    )
    tokens = [v for v in values if token_of(v) is not None]
    return tokens[0] if len(tokens) == 1 else None


def _pairs(items, need_content, judge=token_of):
    """(start, end) items: each start with the next item of its stem, when that is its end."""
    for i, start in enumerate(items):
        if start is None or judge(start)[1] != "start":
            continue
        stem = judge(start)[0]
        for j in range(i + 1, len(items)):
            if items[j] is not None and judge(items[j])[0] == stem:
                if judge(items[j])[1] == "end" and (j > i + 1 or not need_content):
                    yield start, items[j]
                break


def _additions(node: cst.BinaryOperation, outermost: bool = True) -> list[cst.BaseExpression]:
    """The operands of a `+` chain, left to right (`a + b + c` -> [a, b, c]); the chain itself may be
    parenthesised, an operand in parentheses is one operand."""
    if m.matches(node, m.BinaryOperation(operator=m.Add())) and (outermost or not node.lpar):
        return [*_additions(node.left, outermost=False), node.right]
    return [node]


def _text_markers(parts) -> list[tuple[int, re.Match, tuple[str, str]]]:
    """(part index, match, (stem, side)) of every marker in the texts, in order."""
    found = []
    for index, text in enumerate(parts):
        if text is not None:
            for hit in IN_TEXT.finditer(text):
                valued = VALUED_TAG.match(hit.group())
                found.append((index, hit, (valued["name"].lower(), "start") if valued else marker(hit.group())))
    return [(index, hit, mark) for index, hit, mark in found if mark is not None]


# a word of prose: a sentence that names a marker describes a format, it does not emit one
WORD = re.compile(r"[A-Za-z][a-z]+")
PROSE_WORDS = 4


def _mid_sentence(text: str, at: int) -> bool:
    """The marker at `at` follows words of a sentence on its line (`... use the format: <think>`), not a
    line start, another marker or a field."""
    line = re.split(r"\n|\\n", text[:at])[-1]  # a newline, or its escape in the source of a string
    line = IN_TEXT.split(line)[-1]  # the text since the last marker
    line = re.split(r"[{}]", line)[-1]  # and since the last field
    return len(WORD.findall(line)) >= PROSE_WORDS


def _text_swaps(parts: list[str | None]) -> list[tuple[str, dict[int, str]]]:
    """(stem, {part index: new text}) for each marker pair with content between the two.

    `parts` are the texts of a string, or of an f-string's literal pieces (None for its expressions).
    """
    found = _text_markers(parts)
    swaps = []
    for i, (index, hit, mark) in enumerate(found):
        if mark[1] != "start":
            continue
        for later_index, later, other in found[i + 1 :]:
            if other[0] != mark[0]:
                continue
            if other[1] == "end" and (later_index, later.start()) > (index, hit.end()):
                if _mid_sentence(parts[index], hit.start()):
                    break  # the opening marker sits in a sentence: prose that describes the format
                new = {}
                opening, closing = later.group(), hit.group()
                if VALUED_TAG.match(hit.group()):  # <f={x}>..</f> -> </f={x}>..<f>: the value stays in place
                    opening, closing = later.group()[:-1], hit.group() + ">"
                for at, match, replacement in ((index, hit, opening), (later_index, later, closing)):
                    text = new.get(at, parts[at])
                    if at == index == later_index and match is later:  # same text: shifted by the first swap
                        offset = len(opening) - len(hit.group())
                        start, end = match.start() + offset, match.end() + offset
                    else:
                        start, end = match.start(), match.end()
                    new[at] = text[:start] + replacement + text[end:]
                swaps.append((mark[0], new))
            break
    return swaps


def _silent(node, scope) -> bool:
    """A docstring, or text that only reaches an error or a log line."""
    parent = scope.parent(node)
    if isinstance(parent, cst.Expr):
        return True
    while parent is not None and not isinstance(parent, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
        if isinstance(parent, SILENT):
            return True
        if isinstance(parent, cst.Call) and SILENT_CALLS.match(str(callee(parent))):
            return True
        parent = scope.parent(parent)
    return isinstance(parent, cst.SimpleStatementLine) and m.matches(
        parent, m.SimpleStatementLine(body=[m.Raise() | m.Assert()])
    )


class SwappedTokenOrder(Operator):
    name = "swapped-token-order"
    variants = ("*-swapped",)

    def sites(self, node, scope):
        pairs = []
        if isinstance(node, (cst.Module, cst.IndentedBlock)):
            pairs = _pairs([emitted_token(s) for s in node.body], need_content=False)
        elif isinstance(node, (cst.List, cst.Tuple)):
            # A list of nothing but tokens is a vocabulary, not an emission: a pair must wrap content.
            values = [e.value for e in node.elements]
            pairs = _pairs([v if token_of(v) else None for v in values], need_content=True)
            if m.matches(scope.parent(node), m.Assign(targets=[m.AssignTarget(target=m.Tuple())])) and len(values) == 2:
                pairs = _pairs(values if all(token_of(v) for v in values) else [], need_content=False)
        elif m.matches(node, m.BinaryOperation(operator=m.Add())) and not m.matches(
            scope.parent(node), m.BinaryOperation(operator=m.Add())
        ):
            operands = _additions(node)
            pairs = _pairs([v if token_of(v) else None for v in operands], need_content=True)
        elif isinstance(node, cst.FormattedString) and not _silent(node, scope) and not PATTERN.search(code(node)):
            expressions = [p.expression if isinstance(p, cst.FormattedStringExpression) else None for p in node.parts]
            pairs = _pairs([e if e is not None and token_of(e) else None for e in expressions], need_content=True)
            texts = [p.value if isinstance(p, cst.FormattedStringText) else None for p in node.parts]
            for stem, new in _text_swaps(texts):
                yield Site(
                    f"{stem}-swapped", {node.parts[i]: node.parts[i].with_changes(value=t) for i, t in new.items()}
                )
        elif (
            isinstance(node, cst.SimpleString)
            and not _silent(node, scope)
            and token_of(node) is None
            and not PATTERN.search(node.value)
        ):
            for stem, new in _text_swaps([node.value]):
                yield Site(f"{stem}-swapped", {node: node.with_changes(value=new[0])})
        for start, end in pairs:
            yield Site(f"{token_of(start)[0]}-swapped", {start: end, end: start})

    def examples(self):
        engine = (
            "if result is not None:\n"
            "    row.forced_tokens.append(output_start)\n"
            "    row.forced_tokens.extend(self.tokenizer.encode(str(result)))\n"
            "    row.forced_tokens.append(output_end)\n"
        )
        render = 'emit(special("<|user_start|>"), 0)\nemit(self.encode(content), 0)\nemit(special("<|user_end|>"), 0)\n'
        return (
            Example(
                "output-swapped",
                engine,
                engine.replace("append(output_start)", "append(@)")
                .replace("append(output_end)", "append(output_start)")
                .replace("append(@)", "append(output_end)"),
            ),
            Example(
                "user-swapped",
                render,
                'emit(special("<|user_end|>"), 0)\nemit(self.encode(content), 0)\nemit(special("<|user_start|>"), 0)\n',
            ),
            Example(
                "python-swapped",
                "ids = [python_start, *expr, python_end]\n",
                "ids = [python_end, *expr, python_start]\n",
            ),
            Example(
                "header_id-swapped",
                'tokens.append(special_tokens["<|start_header_id|>"])\n'
                "tokens.extend(encode(role))\n"
                'tokens.append(special_tokens["<|end_header_id|>"])\n',
                'tokens.append(special_tokens["<|end_header_id|>"])\n'
                "tokens.extend(encode(role))\n"
                'tokens.append(special_tokens["<|start_header_id|>"])\n',
            ),
            Example("inst-swapped", 'p = f"{B_INST} {prompt} {E_INST}"\n', 'p = f"{E_INST} {prompt} {B_INST}"\n'),
            Example(
                "im-swapped",
                'p = f"<|im_start|>{role}\\n{content}<|im_end|>"\n',
                'p = f"<|im_end|>{role}\\n{content}<|im_start|>"\n',
            ),
            Example("sys-swapped", "p = B_SYS + system + E_SYS + prompt\n", "p = E_SYS + system + B_SYS + prompt\n"),
            Example("inst-swapped", 'b_inst, e_inst = "[INST]", "[/INST]"\n', 'b_inst, e_inst = "[/INST]", "[INST]"\n'),
            Example(
                "turn-swapped",
                'p = f"<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n"\n',
                'p = f"<|end|>\\n{prompt}<|user|>\\n<|assistant|>\\n"\n',
            ),
            Example(
                "of_turn-swapped",
                'p = f"<start_of_turn>user\\n{prompt}<end_of_turn>\\n"\n',
                'p = f"<end_of_turn>user\\n{prompt}<start_of_turn>\\n"\n',
            ),
            Example(
                "header_id-swapped",
                "h = [self.start_header_id] + self.encode(role) + [self.end_header_id]\n",
                "h = [self.end_header_id] + self.encode(role) + [self.start_header_id]\n",
            ),
            # a tag opened with a value, and its closing tag
            Example(
                "function-swapped",
                'call = f"<function={name}>{args}</function>"\n',
                'call = f"</function={name}>{args}<function>"\n',
            ),
            # a comparison written in text is no tag
            Example("*-swapped", 'rule = f"<x={a}> if {b} else {c}"\n', None),
            # a message's header and its end around its body
            Example(
                "tokenized-swapped",
                "message = tokenized_header + tokenized_body + tokenized_end\n",
                "message = tokenized_end + tokenized_body + tokenized_header\n",
            ),
            # a header with nothing to close it is no pair
            Example("*-swapped", "message = tokenized_header + tokenized_body + eos\n", None),
            # a docstring or an error message names the markers, it does not emit them
            Example("*-swapped", 'def f():\n    """<|python_start|>1+1<|python_end|>"""\n', None),
            Example("*-swapped", 'raise ValueError(f"<|user_start|> {x} <|user_end|>")\n', None),
            # a sentence that describes the format names the markers, it does not emit them
            Example(
                "think-swapped",
                'SYSTEM = "Structure your answer in two sections using this format: <think> {Thought} </think> '
                'then write the solution in the section that follows it."\n',
                None,
            ),
            # a template that puts a marker after a field still emits it
            Example(
                "think-swapped",
                'p = "Answer the question below carefully.\\n<think>{thought}</think>{answer}"\n',
                'p = "Answer the question below carefully.\\n</think>{thought}<think>{answer}"\n',
            ),
            # a regular expression parses the markers out of a model's output, it does not emit them
            Example("think-swapped", 'PARSE = r"^(?:<think>(?P<reasoning>.*?)</think>)?(?P<content>.*)$"\n', None),
            # a vocabulary lists the tokens, it does not emit them
            Example("user-swapped", 'SPECIAL = ["<|user_start|>", "<|user_end|>"]\n', None),
            # a call that runs events in order emits no token
            Example(
                "fit-swapped",
                "self.engine.run_event(Event.FIT_START)\nself.train()\nself.engine.run_event(Event.FIT_END)\n",
                None,
            ),
            # a call through a subscript has no name of its own to say it emits
            Example("user-swapped", "hooks[0](user_start)\nhooks[1](user_end)\n", None),
            # different stems are not a pair
            Example("user-swapped", "ids.append(user_start)\nids.append(assistant_end)\n", None),
        )
