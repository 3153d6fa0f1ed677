"""dropped-statement: one step of a computation is left out; everything around it still runs.

Two kinds of step, each found by its shape and by what its values are called:

- The normalisation of gradient accumulation (`loss = loss / grad_accum_steps`, `loss /= n_accum`,
  `backward(loss / accumulation_iters)`, `grad / grad_accum_steps`): skipping it sums the micro-batch
  gradients instead of averaging them. The optimizers barely notice (Adam and Muon are nearly
  scale-free), so only a gradient check sees it. The divisor must name accumulation.
- The <|bos|> put in front of a sequence, which marks where a document starts: the keyword that asks for
  it (`encode(texts, prepend="<|bos|>")`, `bos=True`, `add_special_tokens=True`), the prefix of a
  concatenation (`[bos_id] + ids`, or `before + ids + after` where `before` holds the prepended token: at
  one site, or at every site of the function that adds the same prefix, as when the string and the batch
  path both lose it), or the statement that inserts it (`ids.insert(0, bos)`,
  `tokens.append(special_tokens["<|begin_of_text|>"])`). A setting like `num_threads=` is never planted.

A dropped statement takes its own line with it, or becomes `pass` where the block would be empty.
"""

import functools
import re
from collections import defaultdict

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, drop_statement
from mutator.operators.meaning import (
    ACCUM,
    BOS,
    bindings,
    body_of,
    divides_by_backward_loops_count,
    divides_by_callers_count,
    enclosing,
    identifiers,
    mentions,
    only_reported,
    owners,
    value_identifiers,
)

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

BOS_STRING = re.compile(r"^<\|(bos|begin_of_text|startoftext)\|>$")
NUMBER = m.Integer() | m.Float()
TEXT = m.SimpleString() | m.FormattedString() | m.ConcatenatedString()
# before + ids: a name or list literal in front of something that is not a number (nor a message's text)
PREFIXED = m.BinaryOperation(operator=m.Add(), left=m.Name() | m.List(), right=~NUMBER & ~TEXT)
# output + bos + ids: the BOS in the middle of a concatenation, in front of the second sequence of a pair
MIDDLE = m.BinaryOperation(operator=m.Add(), left=~NUMBER & ~TEXT, right=m.Name() | m.List())
# [0] * len(ids): a run of literal numbers (a mask of special tokens), not token ids
RUN = m.BinaryOperation(operator=m.Multiply(), left=m.List(elements=[m.ZeroOrMore(m.Element(value=NUMBER))]))
# torch.cat([bos, x]), tf.concat([start, x], axis=-1): the first of the pieces joined
JOINED = m.Call(
    func=m.Attribute(attr=m.Name("cat") | m.Name("concat") | m.Name("concatenate")),
    args=[
        m.Arg(
            value=m.List(elements=[m.Element(), m.AtLeastN(m.Element(), n=1)])
            | m.Tuple(elements=[m.Element(), m.AtLeastN(m.Element(), n=1)])
        ),
        m.ZeroOrMore(),
    ],
)
APPEND_FRONT = m.Expr(value=m.Call(func=m.Attribute(attr=m.Name("append")), args=[m.Arg()]))  # first token
# a keyword that asks for the BOS (`bos_token=` alone is the token itself, a switch only when set to True)
BOS_SWITCH = re.compile(r"^(add_)?bos$|^add_bos_token$|^add_special_tokens$|^add_(start|sos)(_token|_value)?$")
OFF = m.Name("False") | m.Name("None")
ADDS_BOS = re.compile(r"^(add|use)_(bos(_token)?|special_tokens|start(_token|_value)?|sos(_token)?)$")
# a condition on whether to put the BOS (a start token, a packer's start value) in front
BOS_FLAG = re.compile(r"^(add_|use_)?bos$|^(add|use)_(bos_token|start_token|start_value|sos(_token)?)$")
# a switch for a "start value" says nothing of tokens (a schedule has one too): it asks for the BOS only
# where the code around it has a start token (`start_value=tokenizer.start_token_id`, `start_token_id_tensor`)
START_VALUE = re.compile(r"^(add|use)_start(_value)?$")
DIVISION = m.BinaryOperation(operator=m.Divide())  # a loss is averaged; `n // accum` counts optimizer steps
# tokens = [self.bos_id]: a sequence that starts with the BOS alone (a vocabulary lists more than one)
STARTS_WITH_BOS = m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.List(elements=[m.Element()]))
ENCODES = re.compile(
    r"(?i)encode|(^|_)tokeni[sz]e($|_)|render|pack"
)  # a call that asks for a BOS (or a packer that puts it in front), not one that configures it


def _switches_bos_on(name: cst.CSTNode, value: cst.CSTNode | None) -> bool:
    """`add_bos=True`, `add_special_tokens = <a condition>`: a BOS switch given a value that can be on
    (`bos = ...` alone may hold the token itself, so it counts only when set to True)."""
    if not isinstance(name, cst.Name) or value is None or m.matches(value, OFF | NUMBER | m.SimpleString()):
        return False
    return bool(ADDS_BOS.match(name.value)) or (bool(BOS_SWITCH.match(name.value)) and m.matches(value, m.Name("True")))


@functools.lru_cache(maxsize=64)
def _module_knows_bos(module: cst.Module) -> bool:
    """Whether a BOS token appears anywhere in the module (or class): `add_special_tokens` adds a BOS only in a
    tokenizer that has one (a tokenizer with only an EOS appends, and prepends nothing)."""
    strings = m.findall(module, m.SimpleString(value=m.MatchIfTrue(lambda v: "bos" in v or "begin_of_text" in v)))
    return mentions(module, BOS) or any(_names_bos(string) for string in strings)


def _in_token_context(node: cst.CSTNode, scope) -> bool:
    """The class around `node` (or its module, outside any class) names a BOS or start token."""
    owner = enclosing(node, scope, cst.ClassDef) or enclosing(node, scope, cst.Module)
    return owner is not None and _module_knows_bos(owner)


def _bos_flag(test: cst.CSTNode, scope) -> bool:
    """The test names a switch for the BOS: `add_bos`, `add_start_token`, or `add_start_value` where the
    start value is a token."""
    names = [n for n in identifiers(test) if BOS_FLAG.search(n)]
    return any(not START_VALUE.match(n) for n in names) or (bool(names) and _in_token_context(test, scope))


def _keyword_switches_bos(arg: cst.Arg) -> bool:
    """`add_bos=...`, `add_start_value=self.add_start_token`, `bos_token=True`; not `bos_token=bos_token`."""
    name = arg.keyword.value
    return bool(BOS_SWITCH.match(name)) or (name == "bos_token" and m.matches(arg.value, m.Name("True")))


def _used(param: cst.Param, function: cst.FunctionDef) -> bool:
    """The function reads the parameter: stores it, forwards it or branches on it."""
    return any(name.value == param.name.value for name in m.findall(function.body, m.Name()))


def _holds_numbers(expr: cst.CSTNode, scope) -> bool:
    """`bos_token_id = [1] if self.add_bos_token else []`: a name bound only to literal numbers is a mask's
    flag for the BOS position, not the BOS token."""
    if not isinstance(expr, cst.Name):
        return False
    values = bindings(body_of(expr, scope)).get(expr.value, ())
    literal = m.List(elements=[m.ZeroOrMore(m.Element(value=NUMBER))])
    return bool(values) and all(m.matches(v, literal | m.IfExp(body=literal, orelse=literal)) for v in values)


def _is_bos(expr: cst.CSTNode, scope) -> bool:
    return _names_bos(expr, scope) and not _holds_numbers(expr, scope)


def _start_guard(node: cst.CSTNode, scope) -> set[str]:
    """The names tested by the branch that puts a start value in front, around `node`:
    `if add_start_value and self.start_value is not None:` -> {"add_start_value", "self", "start_value"}."""
    for branch in owners(node, scope, cst.If):
        if _bos_flag(branch.test, scope):
            return identifiers(branch.test) - {"self", "None"}
    return set()


def _is_start(expr: cst.CSTNode, scope, guard: set[str]) -> bool:
    """`expr` is the BOS, or the start value that the enclosing branch puts in front."""
    if _is_bos(expr, scope):
        return True
    names = {n.value for n in m.findall(expr, m.Name())} | {a.attr.value for a in m.findall(expr, m.Attribute())}
    return bool(guard & names) and not mentions(expr, BOS_FLAG)


def _prepends(block: cst.CSTNode, test: cst.BaseExpression, scope) -> bool:
    """The branch puts the BOS (or the start value its test names) in front of the tokens."""
    guard = identifiers(test) - {"self", "None"}
    pieces = [c.left for c in m.findall(block, PREFIXED)] + [
        c.args[0].value.elements[0].value for c in m.findall(block, JOINED)
    ]
    return any(_is_bos(p, scope) or bool(guard & identifiers(p)) for p in pieces)


def _a_bos_switch(name: str, node: cst.CSTNode, scope) -> bool:
    """`name` switches a BOS on: `add_bos`, `bos`, `add_special_tokens` in a module that knows a BOS, or
    `add_start_value` in a class (or module) that has a start token."""
    if START_VALUE.match(name):
        return _in_token_context(node, scope)
    if name != "add_special_tokens":
        return True
    return _module_knows_bos(enclosing(node, scope, cst.Module))


def _names_bos(expr: cst.CSTNode, scope=None, depth: int = 1) -> bool:
    """expr is (or holds) the BOS token: `bos_id`, `"<|bos|>"`, `special_tokens["<|begin_of_text|>"]`,
    or a name bound to such a value in the function (`before = [] if prepend is None else [...]`)."""
    for node in [expr, *m.findall(expr, m.SimpleString())]:
        if isinstance(node, cst.SimpleString) and BOS_STRING.match(str(node.evaluated_value)):
            return True
    if any(BOS.search(name) for name in value_identifiers(expr)):  # not `prepend=True` to a hook registry
        return True
    if scope is None or depth == 0:
        return False
    # one step of data flow, through a token list bound once: `before = [] if prepend is None else [bos]`
    # (a list that grows, `tokens = [bos]` then `tokens = tokens + body`, holds more than the BOS)
    assigned = bindings(body_of(expr, scope))
    return any(
        _names_bos(values[0], None, 0)
        for name in identifiers(expr)
        if len(values := assigned.get(name, ())) == 1 and isinstance(values[0], (cst.List, cst.IfExp))
    )


def _switch_name(target: cst.BaseExpression) -> cst.Name:
    return target.attr if isinstance(target, cst.Attribute) else target


def _updates(small: cst.BaseSmallStatement) -> bool:
    """x = x / n, or x /= n (also * and the like), with a divisor that names gradient accumulation."""
    if m.matches(small, AUGMENTED):
        return mentions(small.value, ACCUM)
    found = m.extract(small, SELF_UPDATE)
    return bool(found) and found["target"].value == found["source"].value and mentions(small.value.right, ACCUM)


def _normalises(small: cst.BaseSmallStatement, scope) -> bool:
    """loss = loss / n, where n is the caller's count of the whole accumulated batch (see meaning)."""
    found = m.extract(small, SELF_UPDATE)
    same = bool(found) and found["target"].value == found["source"].value
    return same and (
        divides_by_callers_count(small.value, scope) or divides_by_backward_loops_count(small.value, scope)
    )


def _is_update(statement, scope) -> bool:
    return isinstance(statement, (cst.Assign, cst.AugAssign)) and (_updates(statement) or _normalises(statement, scope))


def _without_keyword(call: cst.Call, arg: cst.Arg) -> dict:
    """Edits that delete `arg` from `call`; the argument before it takes over its comma (or lack of one)."""
    i = call.args.index(arg)
    edits = {arg: cst.RemovalSentinel.REMOVE}
    if i == len(call.args) - 1 and i > 0:
        edits[call.args[i - 1]] = call.args[i - 1].with_changes(comma=arg.comma)
    return edits


MICRO_BATCH = (
    "def train_micro_batch(self, micro_batch, batch_size_in_tokens):\n"
    '    ce_loss = self.model_forward(micro_batch, loss_reduction="sum")\n'
    "    ce_loss = ce_loss / batch_size_in_tokens\n"
    "    return ce_loss\n"
)


class DroppedStatement(Operator):
    name = "dropped-statement"
    variants = (
        "update-dropped",
        "divisor-dropped",
        "insert-dropped",
        "keyword-dropped",
        "bos-disabled",
        "prefix-dropped",
        "prefix-dropped-everywhere",
    )

    def sites(self, node, scope):
        if isinstance(node, (cst.IndentedBlock, cst.Module)):
            yield from self._statements(node, scope)
            if isinstance(scope.parent(node), cst.FunctionDef):
                yield from self._shared_prefixes(node, scope)
        elif isinstance(node, cst.Call):
            if m.matches(node, JOINED) and _is_start(
                node.args[0].value.elements[0].value, scope, _start_guard(node, scope)
            ):  # torch.cat([bos, x]) -> torch.cat([x])
                pieces = node.args[0].value
                yield Site("prefix-dropped", {pieces: pieces.with_changes(elements=pieces.elements[1:])})
            for arg in node.args:
                if not m.matches(arg, m.Arg(keyword=m.Name())):
                    continue
                if (
                    _keyword_switches_bos(arg)
                    and not m.matches(arg.value, OFF)
                    and _a_bos_switch(arg.keyword.value, node, scope)
                ):
                    yield Site("bos-disabled", {arg.value: cst.Name("False")})
                elif _names_bos(arg.value) and mentions(node.func, ENCODES):
                    yield Site("keyword-dropped", _without_keyword(node, arg))
        elif (
            isinstance(node, cst.Param)
            and _switches_bos_on(node.name, node.default)
            and _a_bos_switch(node.name.value, node, scope)
        ):
            # def encode(self, text, add_bos=True); def call(self, x, add_start_value=True) that forwards it
            function = enclosing(node, scope, cst.FunctionDef)
            if function is not None and (ENCODES.search(function.name.value) or _used(node, function)):
                yield Site("bos-disabled", {node.default: cst.Name("False")})
        elif (
            (
                m.matches(node, m.Assign(targets=[m.AssignTarget(target=m.Name())]))
                or (  # self.add_bos_token = add_bos_token: the switch the caller passed, kept for later
                    m.matches(node, m.Assign(targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self")))]))
                    and self._a_parameter(node.value, scope)
                )
            )
            and _switches_bos_on(_switch_name(node.targets[0].target), node.value)
            and _a_bos_switch(_switch_name(node.targets[0].target).value, node, scope)
        ):  # add_special_tokens = not prompt.startswith(bos_token); self.add_bos_token = add_bos_token
            yield Site("bos-disabled", {node.value: cst.Name("False")})
        elif isinstance(node, cst.If) and _bos_flag(node.test, scope) and _prepends(node.body, node.test, scope):
            # if bos or (bos is None and self.use_bos): tokens = [self.bos_id] + tokens
            yield Site("bos-disabled", {node.test: cst.Name("False")})
        elif m.matches(node, m.IfExp()) and _bos_flag(node.test, scope) and _is_bos(node.body, scope):
            # before = [self.bos_token_id] if self.add_bos_token else []
            yield Site("bos-disabled", {node.test: cst.Name("False")})
        elif (
            m.matches(node, PREFIXED)
            and not m.matches(node.right, RUN)
            and (_is_start(node.left, scope, _start_guard(node, scope)))
        ):
            yield Site("prefix-dropped", {node: node.right})
        elif m.matches(node, MIDDLE) and _is_bos(node.right, scope) and self._continued(node, scope):
            yield Site("prefix-dropped", {node: node.left})  # output + bos + ids -> output + ids

        elif m.matches(node, STARTS_WITH_BOS) and _names_bos(node.value.elements[0].value):
            yield Site("prefix-dropped", {node.value: node.value.with_changes(elements=[])})  # starts empty
        elif (
            m.matches(node, DIVISION)
            and (
                mentions(node.right, ACCUM)
                or divides_by_callers_count(node, scope)
                or divides_by_backward_loops_count(node, scope)
            )
            and not _is_update(scope.parent(node), scope)
            and not only_reported(node, scope)
        ):
            yield Site("divisor-dropped", {node: node.left})

    @staticmethod
    def _a_parameter(value, scope) -> bool:
        function = enclosing(value, scope, cst.FunctionDef)
        if function is None or not isinstance(value, cst.Name):
            return False
        return value.value in {p.name.value for p in (*function.params.params, *function.params.kwonly_params)}

    @staticmethod
    def _continued(node, scope) -> bool:
        """`node` is the left of a further `+`, whose right is not a mask's run of numbers: a BOS in the middle,
        with tokens after it (`ids + [bos]` at the end appends, it does not prepend)."""
        parent = scope.parent(node)
        return (
            m.matches(parent, m.BinaryOperation(operator=m.Add()))
            and parent.left is node
            and not m.matches(parent.right, RUN | NUMBER | TEXT)
        )

    def _statements(self, block, scope):
        for statement in block.body:
            if not m.matches(statement, m.SimpleStatementLine(body=[m.DoNotCare()])):
                continue
            small = statement.body[0]
            if _updates(small) or _normalises(small, scope):
                yield Site("update-dropped", {statement: drop_statement(block, statement)})
            elif m.matches(small, INSERT_FRONT) and _names_bos(small.value.args[1].value, scope):
                yield Site("insert-dropped", {statement: drop_statement(block, statement)})
            elif m.matches(small, APPEND_FRONT) and _names_bos(small.value.args[0].value):
                yield Site("insert-dropped", {statement: drop_statement(block, statement)})

    def _shared_prefixes(self, body, scope):
        """One site per prefix that a function adds in two or more places: all of them dropped at once."""
        by_prefix = defaultdict(dict)
        for concatenation in m.findall(body, PREFIXED):
            if _is_bos(concatenation.left, scope) and not m.matches(concatenation.right, RUN):
                by_prefix[cst.Module(body=[]).code_for_node(concatenation.left)][concatenation] = concatenation.right
        for concatenation in m.findall(body, MIDDLE):  # output + bos + ids
            if _is_bos(concatenation.right, scope) and self._continued(concatenation, scope):
                by_prefix[cst.Module(body=[]).code_for_node(concatenation.right)][concatenation] = concatenation.left
        for edits in by_prefix.values():
            if len(edits) > 1:
                yield Site("prefix-dropped-everywhere", edits)

    def examples(self):
        accumulate = (
            "for _ in range(grad_accum_steps):\n    loss = model(x, y)\n    loss = loss / grad_accum_steps\n"
            "    loss.backward()\n"
        )
        encode = (
            "def encode(self, text, prepend=None):\n"
            "    before = [] if prepend is None else [self.special(prepend)]\n"
            "    if isinstance(text, str):\n"
            "        return before + self.enc.encode(text)\n"
            "    return [before + ids for ids in self.enc.encode_batch(text)]\n"
        )
        public = "if prepend is not None:\n    for row in ids:\n        row.insert(0, prepend_id)\n"
        # a start value that is a token id (a packer's), and the branch that puts it in front
        start_token = "self.start_value = tokenizer.start_token_id\n"
        starts = "if add_start_value and self.start_value is not None:\n    x = [start_value + seq for seq in x]\n"
        forwards = (
            "def call(self, x, add_start_value=True):\n    return self._pack(x, add_start_value=add_start_value)\n"
        )
        return (
            Example("update-dropped", accumulate, accumulate.replace("    loss = loss / grad_accum_steps\n", "")),
            # the count of a loop that runs backward on each batch, whatever it is called
            Example(
                "update-dropped",
                "for b in range(n):\n    loss = f(b)\n    loss = loss / n\n    loss.backward()\n",
                "for b in range(n):\n    loss = f(b)\n    loss.backward()\n",
            ),
            Example(
                "update-dropped", "for b in range(n):\n    loss = f(b)\n    loss = loss / n\n    log(loss)\n", None
            ),
            Example(
                "update-dropped", "def f(loss, n_accum):\n    loss /= n_accum\n", "def f(loss, n_accum):\n    pass\n"
            ),
            Example(
                "divisor-dropped",
                "fabric.backward(loss / train.gradient_accumulation_iters(devices))\n",
                "fabric.backward(loss)\n",
            ),
            Example("divisor-dropped", 'metrics["loss"] = total_loss / num_microbatches\n', None),  # only logged
            Example(
                "bos-disabled",
                "tokens = self.tokenizer.encode(c, bos=True, eos=False)\n",
                "tokens = self.tokenizer.encode(c, bos=False, eos=False)\n",
            ),
            Example(
                "bos-disabled",
                "def encode(self, text, add_bos: bool = True):\n    pass\n",
                "def encode(self, text, add_bos: bool = False):\n    pass\n",
            ),
            Example(
                "bos-disabled",
                "add_special_tokens = not prompt.startswith(bos_token)\n",
                "add_special_tokens = False\n",
            ),
            Example(
                "bos-disabled",
                "if bos or self.use_bos:\n    tokens = [self.bos_id] + tokens\n",
                "if False:\n    tokens = [self.bos_id] + tokens\n",
            ),
            Example(
                "bos-disabled",
                "def encode(self, text, add_special_tokens: bool = True):\n"
                "    ids = self.sp.encode(text)\n    return [self.bos_id, *ids] if add_special_tokens else ids\n",
                "def encode(self, text, add_special_tokens: bool = False):\n"
                "    ids = self.sp.encode(text)\n    return [self.bos_id, *ids] if add_special_tokens else ids\n",
            ),
            # special tokens in a tokenizer that has no BOS (only an EOS is added)
            Example(
                "bos-disabled",
                "def encode(self, text, add_special_tokens: bool = True):\n"
                "    return self.encode_batch([text], add_special_tokens=add_special_tokens)[0]\n"
                "def add_special_tokens(self, ids):\n    return ids + [self.eos_token_id]\n",
                None,
            ),
            # a configuration default, and a branch that does not prepend the BOS
            Example("bos-disabled", "def __init__(self, add_bos=True):\n    pass\nif bos:\n    n += 1\n", None),
            Example(
                "insert-dropped",
                'tokens = []\ntokens.append(self.special_tokens["<|begin_of_text|>"])\ntokens.extend(body)\n',
                "tokens = []\ntokens.extend(body)\n",
            ),
            Example("prefix-dropped", "tokens = [self.bos_id] + tokens\n", "tokens = tokens\n"),
            Example("prefix-dropped", "tokens = [self.bos_id]\nmask = [True]\n", "tokens = []\nmask = [True]\n"),
            Example("insert-dropped", public, public.replace("row.insert(0, prepend_id)", "pass")),
            # a hook registered in front of the others: `prepend=` is the callee's parameter, not a BOS
            Example("insert-dropped", "handles.append(module.register_forward_pre_hook(hook, prepend=True))\n", None),
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
            Example(
                "update-dropped",
                MICRO_BATCH,
                MICRO_BATCH.replace("    ce_loss = ce_loss / batch_size_in_tokens\n", ""),
            ),
            # a summed loss divided by a count made here is a mean over this batch, not accumulation
            Example(
                "update-dropped",
                MICRO_BATCH.replace("(self, micro_batch, batch_size_in_tokens)", "(self, micro_batch)").replace(
                    "    ce_loss = ce_loss",
                    '    batch_size_in_tokens = micro_batch["input_ids"].numel()\n    ce_loss = ce_loss',
                ),
                None,
            ),
            # a rescaling that is not accumulation, a prefix that is not the BOS token
            Example("update-dropped", "def f(x, s):\n    x *= s\n    x = x / norm\n", None),
            Example("prefix-dropped", "ids = header + ids\n", None),
            Example(
                "prefix-dropped",
                "tokens = [x for x in bos_ids]\ntokens = tokens + body\ntokens = tokens + [eos]\n",
                None,
            ),
            Example("keyword-dropped", "tok = Tokenizer(path, bos_id=self.bos_id)\n", None),
            # a start-end packer: its start token, the switch that asks for it, and the branch that adds it
            Example(
                "keyword-dropped",
                "self.packer = StartEndPacker(start_value=tok.start_token_id, end_value=tok.end_token_id)\n",
                "self.packer = StartEndPacker(end_value=tok.end_token_id)\n",
            ),
            Example(
                "bos-disabled",
                "x = self.packer(x, add_start_value=self.add_start_token, add_end_value=False)\n",
                "x = self.packer(x, add_start_value=False, add_end_value=False)\n",
            ),
            Example("bos-disabled", "super().__init__(bos_token=bos_token, add_bos_token=False)\n", None),
            Example(
                "bos-disabled",
                start_token + forwards,
                start_token + forwards.replace("add_start_value=True", "add_start_value=False"),
            ),
            Example(
                "bos-disabled",
                "def __init__(self, add_bos_token=True):\n    self.add_bos_token = add_bos_token\n",
                "def __init__(self, add_bos_token=False):\n    self.add_bos_token = add_bos_token\n",
            ),
            Example(
                "bos-disabled",
                "def __init__(self, add_bos_token=True):\n    self.add_bos_token = add_bos_token\n",
                "def __init__(self, add_bos_token=True):\n    self.add_bos_token = False\n",
            ),
            Example(
                "bos-disabled",
                start_token + starts,
                start_token + starts.replace("add_start_value and self.start_value is not None", "False"),
            ),
            Example("prefix-dropped", start_token + starts, start_token + starts.replace("[start_value + seq", "[seq")),
            # the same code in a schedule: its start value is no token
            Example(
                "*",
                "class LinearSchedule:\n    def __call__(self, x, add_start_value=True):\n"
                + "".join("        " + line + "\n" for line in starts.splitlines())
                + "        return x\n",
                None,
            ),
            Example(
                "prefix-dropped",
                "x = tf.concat([start_token_id_tensor, x], axis=-1)\n",
                "x = tf.concat([x], axis=-1)\n",
            ),
            Example("prefix-dropped", "x = tf.concat([x, end_token_id_tensor], axis=-1)\n", None),
            # a schedule's start value is no token: only a branch that asks for a start token makes it one
            Example("prefix-dropped", "lr = start_value + (end_value - start_value) * t\n", None),
            # the BOS picked by a switch, and put in front of the second sequence of a pair
            Example(
                "bos-disabled",
                "bos = [self.bos_token_id] if self.add_bos_token else []\n",
                "bos = [self.bos_token_id] if False else []\n",
            ),
            Example("prefix-dropped", "out = out + bos_ids + ids_1 + eos_ids\n", "out = out + ids_1 + eos_ids\n"),
            Example("prefix-dropped", "out = ids + bos_ids\n", None),  # at the end: nothing is prepended
            # a mask of special tokens (1 at the BOS), and an error message about the BOS
            Example(
                "prefix-dropped*",
                "def mask(self, ids):\n    bos_token_id = [1] if self.add_bos_token else []\n"
                "    return bos_token_id + ([0] * len(ids)) + bos_token_id + ([0] * len(ids))\n",
                None,
            ),
            Example("prefix-dropped", "raise ValueError(bos_mismatch_str + ' set the flag to override.')\n", None),
            # a chat header added on request is not the BOS; a switch worked out, not passed in, is not stored
            Example(
                "prefix-dropped*",
                "def tokenize_message(self, m, add_start_tokens=True):\n"
                "    header = self._header(m) if add_start_tokens else []\n    return header + self._body(m)\n",
                None,
            ),
            Example("bos-disabled", "def __init__(self, d):\n    self.use_bos = self.check_bos(d)\n", None),
        )
