"""dropped-statement: one step of a computation is left out; everything around it still runs.

Two kinds of step, each found by its shape:

- A value rescaled or shifted in place (`loss = loss / grad_accum_steps`, `x *= scale`). Gradient
  accumulation that skips the division sums the micro-batch gradients instead of averaging them: the
  optimizers barely notice (Adam and Muon are nearly scale-free), so only a gradient check sees it.
- A special token put in front of a sequence, the <|bos|> that marks where a document starts: the
  keyword that asks for it (`encode(texts, prepend="<|bos|>")`), the prefix of a concatenation
  (`before + ids + after`: at one site, or at every site of the function that adds the same prefix, as
  when the string and the batch path both lose it), or the statement that inserts it (`ids.insert(0, bos)`).
  A keyword counts when its value names a token (a "<|...|>" string, or a name such as `bos`,
  `bos_token`, `get_bos_token_id()`), so dropping a setting like `num_threads=` is never planted.

A dropped statement takes its own line with it, or becomes `pass` where the block would be empty.
"""

import re
from collections import defaultdict

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, drop_statement

ARITHMETIC = m.Add() | m.Subtract() | m.Multiply() | m.Divide() | m.FloorDivide()
IN_PLACE = m.AddAssign() | m.SubtractAssign() | m.MultiplyAssign() | m.DivideAssign() | m.FloorDivideAssign()
# x = x / n  (the same name on both sides is checked in _updates)
SELF_UPDATE = m.Assign(
    targets=[m.AssignTarget(target=m.SaveMatchedNode(m.Name(), "target"))],
    value=m.BinaryOperation(left=m.SaveMatchedNode(m.Name(), "source"), operator=ARITHMETIC),
)
AUGMENTED = m.AugAssign(target=m.Name() | m.Attribute(), operator=IN_PLACE)  # x /= n, self.x *= s
INSERT_FRONT = m.Expr(  # ids.insert(0, bos)
    value=m.Call(func=m.Attribute(attr=m.Name("insert")), args=[m.Arg(value=m.Integer("0")), m.Arg()])
)

# bos, BOS_ID, bos_token, self.bos_token_id, get_bos_token_id(), eos_token; "<|bos|>" as a string
TOKEN_NAME = re.compile(r"(?i)(^|_)(bos|eos|eot|sot)(_|$)|_token(_id)?$")
SPECIAL_STRING = re.compile(r"^<\|\w+\|>$")
NUMBER = m.Integer() | m.Float()
# before + ids: a name or list literal in front of something that is not a number
PREFIXED = m.BinaryOperation(operator=m.Add(), left=m.Name() | m.List(), right=~NUMBER)


def _names_token(expr: cst.CSTNode) -> bool:
    if isinstance(expr, cst.SimpleString):
        return bool(SPECIAL_STRING.match(str(expr.evaluated_value)))
    if isinstance(expr, cst.Call):
        return _names_token(expr.func)
    if isinstance(expr, cst.Attribute):
        return bool(TOKEN_NAME.search(expr.attr.value))
    return isinstance(expr, cst.Name) and bool(TOKEN_NAME.search(expr.value))


def _updates(small: cst.BaseSmallStatement) -> bool:
    """x = x <op> y, or x <op>= y."""
    if m.matches(small, AUGMENTED):
        return True
    found = m.extract(small, SELF_UPDATE)
    return bool(found) and found["target"].value == found["source"].value


def _without_keyword(call: cst.Call, arg: cst.Arg) -> dict:
    """Edits that delete `arg` from `call`; the argument before it takes over its comma (or lack of one)."""
    i = call.args.index(arg)
    edits = {arg: cst.RemovalSentinel.REMOVE}
    if i == len(call.args) - 1 and i > 0:
        edits[call.args[i - 1]] = call.args[i - 1].with_changes(comma=arg.comma)
    return edits


class DroppedStatement(Operator):
    name = "dropped-statement"
    variants = ("update-dropped", "insert-dropped", "keyword-dropped", "prefix-dropped", "prefix-dropped-everywhere")

    def sites(self, node, scope):
        if isinstance(node, cst.IndentedBlock):
            yield from self._statements(node)
            if isinstance(scope.parent(node), cst.FunctionDef):
                yield from self._shared_prefixes(node)
        elif isinstance(node, cst.Call):
            for arg in node.args:
                if m.matches(arg, m.Arg(keyword=m.Name())) and _names_token(arg.value):
                    yield Site("keyword-dropped", _without_keyword(node, arg))
        elif m.matches(node, PREFIXED):
            yield Site("prefix-dropped", {node: node.right})

    def _statements(self, block):
        for statement in block.body:
            if not m.matches(statement, m.SimpleStatementLine(body=[m.DoNotCare()])):
                continue
            small = statement.body[0]
            if _updates(small):
                yield Site("update-dropped", {statement: drop_statement(block, statement)})
            elif m.matches(small, INSERT_FRONT):
                yield Site("insert-dropped", {statement: drop_statement(block, statement)})

    def _shared_prefixes(self, body):
        """One site per prefix that a function adds in two or more places: all of them dropped at once."""
        by_prefix = defaultdict(list)
        for concatenation in m.findall(body, PREFIXED):
            by_prefix[cst.Module(body=[]).code_for_node(concatenation.left)].append(concatenation)
        for concatenations in by_prefix.values():
            if len(concatenations) > 1:
                yield Site("prefix-dropped-everywhere", {c: c.right for c in concatenations})

    def examples(self):
        accumulate = "for _ in range(steps):\n    loss = model(x, y)\n    loss = loss / steps\n    loss.backward()\n"
        encode = (
            "def encode(self, text, prepend=None):\n"
            "    before = [] if prepend is None else [self.special(prepend)]\n"
            "    if isinstance(text, str):\n"
            "        return before + self.enc.encode(text)\n"
            "    return [before + ids for ids in self.enc.encode_batch(text)]\n"
        )
        public = "if prepend is not None:\n    for row in ids:\n        row.insert(0, prepend_id)\n"
        return (
            Example("update-dropped", accumulate, accumulate.replace("    loss = loss / steps\n", "")),
            Example("update-dropped", "def f(x, s):\n    x *= s\n", "def f(x, s):\n    pass\n"),
            Example("insert-dropped", public, public.replace("row.insert(0, prepend_id)", "pass")),
            Example(
                "keyword-dropped",
                'rows = tokenizer.encode(texts, prepend="<|bos|>")\n',
                "rows = tokenizer.encode(texts)\n",
            ),
            Example(
                "keyword-dropped",
                "rows = tok.encode(docs, prepend=bos_token, num_threads=4)\n",
                "rows = tok.encode(docs, num_threads=4)\n",
            ),
            Example("prefix-dropped", encode, encode.replace("return before + self", "return self")),
            Example("prefix-dropped", encode, encode.replace("[before + ids for", "[ids for")),
            Example(
                "prefix-dropped-everywhere",
                encode,
                encode.replace("return before + self", "return self").replace("[before + ids for", "[ids for"),
            ),
            # a setting that names no token, a sum with a number, a new name computed from another
            Example("keyword-dropped", "rows = tok.encode(docs, num_threads=4)\n", None),
            Example("prefix-dropped", "t_needed = t1 + 1024\n", None),
            Example("update-dropped", "def f(x):\n    y = x / 2\n    return y\n", None),
        )
