"""swapped-token-order: two emissions of a paired special token (`<|x_start|>` ... `<|x_end|>`) swapped.

The engine forces `<|output_start|>` result `<|output_end|>` after a calculator call, and the tokenizer
renders `<|user_start|>` ... `<|user_end|>` and the like. Swapping the pair keeps every token count and
mask, so only a check of the exact order sees it. Sites are found by structure: two calls in the same
block (`emit(special("<|user_start|>"), 0)`, `queue.append(output_start)`, `ids += [x_start]`) or two
elements of one list literal (`[start, *ids, end]`) whose token argument names or strings end in
`_start` / `_end` with the same stem. Only the token arguments move; masks and everything else stay.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site

# user_start, OUTPUT_END, out_start_id, "<|python_start|>", "assistant_end"
TOKEN_NAME = re.compile(r"^(?:<\|)?(?P<stem>\w+?)_(?P<side>start|end)(?:_(?:id|token|tok))?(?:\|>)?$", re.I)

EMITS = m.SimpleStatementLine(body=[m.Expr(value=m.Call()) | m.AugAssign(value=m.List() | m.Tuple())])


def token_of(expr: cst.CSTNode) -> tuple[str, str] | None:
    """(stem, "start"|"end") when expr names a paired token, else None.

    A name or attribute is judged by its name, a string by its text, and a call or subscript with a
    single argument (`special("<|user_start|>")`, `ids["user_start"]`) by that argument.
    """
    if isinstance(expr, cst.Name):
        text = expr.value
    elif isinstance(expr, cst.Attribute):
        text = expr.attr.value
    elif isinstance(expr, cst.SimpleString):
        text = str(expr.evaluated_value)
    elif isinstance(expr, cst.Call) and len(expr.args) == 1:
        return token_of(expr.args[0].value)
    elif m.matches(expr, m.Subscript(slice=[m.SubscriptElement(slice=m.Index())])):
        return token_of(expr.slice[0].slice.value)
    else:
        return None
    found = TOKEN_NAME.match(text)
    return (found["stem"].lower(), found["side"].lower()) if found else None


def emitted_token(statement: cst.CSTNode) -> cst.BaseExpression | None:
    """The one token-valued argument of a call statement (or element of `ids += [tok]`), else None."""
    if not m.matches(statement, EMITS):
        return None
    small = statement.body[0]
    values = (
        [a.value for a in small.value.args] if isinstance(small, cst.Expr) else [e.value for e in small.value.elements]
    )
    tokens = [v for v in values if token_of(v) is not None]
    return tokens[0] if len(tokens) == 1 else None


def _pairs(items, need_content):
    """(start, end) token nodes: each start with the next emission of its stem, when that is its end."""
    for i, start in enumerate(items):
        if start is None or token_of(start)[1] != "start":
            continue
        stem = token_of(start)[0]
        for j in range(i + 1, len(items)):
            if items[j] is not None and token_of(items[j])[0] == stem:
                if token_of(items[j])[1] == "end" and (j > i + 1 or not need_content):
                    yield start, items[j]
                break


class SwappedTokenOrder(Operator):
    name = "swapped-token-order"
    variants = ("*-swapped",)

    def sites(self, node, scope):
        if isinstance(node, (cst.Module, cst.IndentedBlock)):
            pairs = _pairs([emitted_token(s) for s in node.body], need_content=False)
        elif isinstance(node, cst.List):
            # A list of nothing but tokens is a vocabulary, not an emission: a pair must wrap content.
            values = [e.value for e in node.elements]
            pairs = _pairs([v if token_of(v) else None for v in values], need_content=True)
        else:
            return
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
            # a vocabulary lists the tokens, it does not emit them
            Example("user-swapped", 'SPECIAL = ["<|user_start|>", "<|user_end|>"]\n', None),
            # different stems are not a pair
            Example("user-swapped", "ids.append(user_start)\nids.append(assistant_end)\n", None),
        )
