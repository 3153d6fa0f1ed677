"""dtype-swap: the integer dtype of token ids is replaced by another one.

Token ids have two kinds of dtype site, and the slip that matters differs between them:

- A conversion (`.to(dtype=torch.int64)`, `.to(torch.int32)`, `.long()`, `.int()`) decides what the
  consumer gets: `F.cross_entropy` wants int64 class indices and an embedding takes int32 or int64, so
  the width is swapped (int64 <-> int32) or the ids become float32.
- A constructor (`torch.tensor(ids, dtype=torch.int64)`, `torch.full(..., dtype=...)`) decides which
  values fit. Swapping it for int32 or float32 is usually harmless (ids stay exact below 2**24 and are
  converted again later), so it is narrowed to int16 instead, which wraps every id above 32767.

Only integer dtypes of token ids are touched, not those of positions, masks or lengths: the tensor
converted, the constructor's data, or the name the result is assigned to must name tokens (`tokens`,
`input_ids`, `targets`, `labels`, `prompt`, `idx`), or the result must feed an embedding. Aliases keep
their style (`torch.long` becomes `torch.int`, not `torch.int32`); numpy and mlx dtypes count too.
"""

import functools
import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site
from mutator.operators.meaning import NOT_TOKENS, TOKENS, bindings, body_of, identifiers, mentions

WIDTHS = {"int64": 64, "long": 64, "int32": 32, "uint32": 32, "int": 32, "int16": 16, "short": 16}
ALIASES = {"long", "int", "short"}
NAMES = {  # (width or "float", alias?) -> the dtype's name
    (64, False): "int64",
    (64, True): "long",
    (32, False): "int32",
    (32, True): "int",
    (16, False): "int16",
    (16, True): "short",
    ("float", False): "float32",
    ("float", True): "float",
}
OTHER_WIDTH = {64: 32, 32: 64, 16: 64}  # the width a conversion is swapped to

ARRAYS = m.Name("torch") | m.Name("mx") | m.Name("np") | m.Name("numpy")
# a dtype spelled as a string ("int32", as keras, numpy and jax take it); "int" and "long" alone are too vague
STRING_WIDTHS = {"int64", "int32", "uint32", "int16"}
DTYPE_STRING = m.SimpleString(m.MatchIfTrue(lambda text: text[1:-1] in STRING_WIDTHS and text[0] in "'\""))
INTEGER_DTYPE = m.Attribute(value=ARRAYS, attr=m.Name(m.MatchIfTrue(lambda name: name in WIDTHS))) | DTYPE_STRING
# dtype=getattr(np, self.token_encoding_type): a dtype looked up by name, its width unknown here
LOOKED_UP = m.Call(func=m.Name("getattr"), args=[m.Arg(value=ARRAYS), m.Arg()])
DTYPE_ARG = m.Arg(keyword=m.Name("dtype"), value=INTEGER_DTYPE)
POSITIONAL_DTYPE = m.Arg(keyword=None, value=INTEGER_DTYPE)
# the declared dtype of stored token ids: `token_encoding_type: str = "int64"`, `self.token_dtype = np.int32`
DECLARES_DTYPE = re.compile(r"(?i)(^|_)(d?type|encoding(_type)?)$")
CONVERSION = m.Call(func=m.Attribute(attr=m.Name("to") | m.Name("type") | m.Name("astype")))
EMBEDDING = re.compile(r"(?i)emb|wte")
APPENDED = m.Call(func=m.Attribute(attr=m.Name("cat") | m.Name("concatenate")))
METHOD = m.Call(func=m.Attribute(attr=m.Name("long") | m.Name("int")), args=[])  # ids.long(), ids.int()
# a typed constructor decides the dtype by its name: torch.LongTensor(ids)
TYPED = m.Call(func=m.Attribute(value=m.Name("torch"), attr=m.Name("LongTensor") | m.Name("IntTensor")))
# a dtype copied from another tensor: torch.full(shape, start_id, dtype=input_ids.dtype)
COPIED_DTYPE = m.Arg(keyword=m.Name("dtype"), value=m.Attribute(attr=m.Name("dtype")))
# what turns text into token ids: tokenizer(text), tok.encode(text), model.convert_tokens_to_ids(tokens)
ENCODER = re.compile(r"(?i)^(encode\w*|\w*tokeni[sz]e\w*|tokeni[sz]er|\w*to_ids?)$")
# what passes its data through: list(ids), enumerate(rows), np.asarray(ids)
PASS_THROUGH = {"list", "tuple", "enumerate", "zip", "reversed", "sorted", "iter"}
ARRAY_BUILDERS = {"tensor", "as_tensor", "array", "asarray", "from_numpy", "LongTensor", "IntTensor"}


def _about_tokens(call: cst.Call, scope) -> bool:
    """The call converts or builds token ids: by the data's name, the assigned name, or an embedding."""
    if isinstance(call.func, cst.Attribute) and not m.matches(call.func.value, ARRAYS):
        data = call.func.value  # ids.long(), ids.to(...)
    elif m.matches(call.func, m.Attribute(attr=m.Name(m.MatchRegex(r"(full|zeros|ones|empty)(_like)?")))):
        data = None  # torch.full(shape, ...): its first argument is a shape, the values are not named
    else:
        data = call.args[0].value if call.args and call.args[0].keyword is None else None  # torch.tensor(ids, ...)
    named = _data_words(data) if data is not None else set()
    if isinstance(data, cst.Name) and not any(TOKENS.search(w) for w in named):
        named |= _appended_to(data.value, body_of(call, scope))  # np.concatenate(parts), parts built by append
    for arg in call.args:  # torch.full(shape, start, dtype=input_ids.dtype): typed like the ids it is copied from
        if m.matches(arg, COPIED_DTYPE):
            named |= _data_words(arg.value.value)
    named |= _stored_under(call, scope)  # {"input_ids": torch.randint(...)}: the key the value is stored under
    parent = scope.parent(call)
    while parent is not None and not isinstance(parent, (cst.Assign, cst.Arg, cst.BaseSmallStatement)):
        parent = scope.parent(parent)
    if isinstance(parent, cst.Arg):  # self.emb(x.long()), Batch(inputs=mx.array([], dtype=mx.uint32))
        owner = scope.parent(parent)
        if isinstance(owner, cst.Call) and mentions(owner.func, EMBEDDING):
            return True
        if parent.keyword is not None:
            named.add(parent.keyword.value)
        while parent is not None and not isinstance(parent, (cst.Assign, cst.BaseSmallStatement)):
            parent = scope.parent(parent)
    targets = [t.target for t in parent.targets] if isinstance(parent, cst.Assign) else []
    for target in targets:
        named |= _data_words(target)
        if isinstance(target, cst.Name):  # a buffer that ids are appended to: so_far = cat((so_far, token))
            for value in bindings(body_of(call, scope)).get(target.value, ()):
                if value is not call and m.matches(value, APPENDED):
                    named |= identifiers(value) - {target.value}
    if not any(TOKENS.search(w) for w in named) and m.matches(call, METHOD | CONVERSION):
        # what a converted value is cut into: `text = from_numpy(text).long()`, then `tokens = text[:-1]`
        # (an empty buffer that is filled later is not converted: its dtype is only storage)
        for target in targets:
            if isinstance(target, cst.Name):
                named |= _views_of(target.value, body_of(call, scope))
    if any(NOT_TOKENS.search(w) for w in named):
        return False
    # ... or the data is what a tokenizer returned: torch.tensor(tokenizer.encode(text), dtype=torch.int64)
    return any(TOKENS.search(w) for w in named) or (data is not None and _encoded(data, body_of(call, scope)))


def _names_tokens(words: set[str]) -> bool:
    return any(TOKENS.search(w) for w in words) and not any(NOT_TOKENS.search(w) for w in words)


def _stored_under(node: cst.CSTNode, scope) -> set[str]:
    """The string key of the dict entry a value is stored in, through calls and branches, up to its
    statement: `{"input_ids": torch.randint(...) if first else None}`, `{"tokens": np.array([], ...)}`."""
    keys, child, parent = set(), node, scope.parent(node)
    while parent is not None and not isinstance(parent, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
        if isinstance(parent, cst.DictElement) and parent.value is child and isinstance(parent.key, cst.SimpleString):
            keys.add(str(parent.key.evaluated_value))
            break
        child, parent = parent, scope.parent(parent)
    return keys


@functools.lru_cache(maxsize=256)
def _self_bindings(body: cst.CSTNode) -> dict[str, list]:
    """Names and `self.` attributes -> what is assigned to them in `body`, and loop variables unpacked from
    what they iterate over (`for i, row in enumerate(encoded)`: row -> enumerate(encoded))."""
    found: dict[str, list] = {}
    for name, values in bindings(body).items():
        found.setdefault(name, []).extend(values)
    for assign in m.findall(body, m.Assign(targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self")))])):
        found.setdefault(assign.targets[0].target.attr.value, []).append(assign.value)
    for loop in m.findall(body, m.For(target=m.Tuple()) | m.CompFor(target=m.Tuple())):
        for element in loop.target.elements:
            if isinstance(element.value, cst.Name):
                found.setdefault(element.value.value, []).append(loop.iter)
    return found


def _encoded(expr: cst.BaseExpression, body: cst.CSTNode, depth: int = 3) -> bool:
    """The value is what a tokenizer returned, or is built from it: `tokenizer(text)["input_ids"]`,
    `[enc.encode_single_token(t) for t in specials]`, `prefix + indices` where `indices = enc.encode(text)`.
    Only the ids themselves, not something computed from them (`len(tok.encode(t))`)."""
    if isinstance(expr, cst.Call):
        func = expr.func.attr if isinstance(expr.func, cst.Attribute) else expr.func
        name = func.value if isinstance(func, cst.Name) else ""
        if ENCODER.match(name):
            return True
        if name in PASS_THROUGH or (name in ARRAY_BUILDERS and m.matches(expr.func, m.Attribute(value=ARRAYS))):
            return any(_encoded(a.value, body, depth) for a in expr.args if a.keyword is None)
        return False
    if isinstance(expr, cst.Subscript):
        return _encoded(expr.value, body, depth)
    if isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
        return _encoded(expr.elt, body, depth)
    if isinstance(expr, (cst.List, cst.Tuple)):
        return any(_encoded(e.value, body, depth) for e in expr.elements if isinstance(e, cst.Element))
    if m.matches(expr, m.BinaryOperation(operator=m.Add())):
        return _encoded(expr.left, body, depth) or _encoded(expr.right, body, depth)
    if depth > 0 and m.matches(expr, m.Name() | m.Attribute(value=m.Name("self"))):
        name = expr.value if isinstance(expr, cst.Name) else expr.attr.value
        values = _self_bindings(body).get(name, ())
        return any(_encoded(v, body, depth - 1) for v in values if v is not expr)
    return False


def _appended_to(name: str, body: cst.CSTNode) -> set[str]:
    """What a list is built from: the words of every `name.append(x)` / `name.extend(x)` in the function."""
    grows = m.Call(func=m.Attribute(value=m.Name(name), attr=m.Name("append") | m.Name("extend")), args=[m.Arg()])
    return set().union(set(), *(_data_words(call.args[0].value) for call in m.findall(body, grows)))


def _views_of(name: str, body: cst.CSTNode) -> set[str]:
    """The names bound to a slice or view of `name` alone (`tokens = text[:-1].contiguous()`,
    `labels = torch.roll(text, -1)`), not to something computed from it (`n = len(text)`)."""
    return {
        bound
        for bound, values in bindings(body).items()
        if bound != name and any(isinstance(v, (cst.Subscript, cst.Call)) and _data_words(v) == {name} for v in values)
    }


def _data_words(expr) -> set[str]:
    """What a value is called, not what indexes it: `train_data[:, 0:n].contiguous()` -> {"train_data"},
    `[s["token_counts"] for s in samples]` -> {"token_counts"}."""
    if isinstance(expr, cst.Subscript):
        keys = {
            str(e.slice.value.evaluated_value)
            for e in expr.slice
            if m.matches(e.slice, m.Index(value=m.SimpleString()))
        }
        return _data_words(expr.value) | keys
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        if m.matches(expr.func.value, ARRAYS):  # torch.from_numpy(ids), np.frombuffer(buf, ...): the data
            first = expr.args[0] if expr.args else None
            return _data_words(first.value) if first is not None and first.keyword is None else set()
        return _data_words(expr.func.value)  # ids.contiguous()
    if isinstance(expr, cst.Attribute):
        return {expr.attr.value}
    if isinstance(expr, cst.Name):
        return {expr.value}
    if isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
        return _data_words(expr.elt)
    if isinstance(expr, (cst.List, cst.Tuple)):
        return set().union(set(), *(_data_words(e.value) for e in expr.elements))
    if m.matches(expr, m.BinaryOperation(operator=m.Multiply(), left=m.List())):
        return _data_words(expr.left)  # [pad_token_id] * n: n is how many, not what
    return identifiers(expr)


def _variant(width) -> str:
    return f"to-{NAMES[(width, False)]}"


def _renamed(dtype: cst.BaseExpression, width) -> dict:
    """`torch.long` -> `torch.int` (an alias stays an alias), `"int64"` -> `"int32"` (the quotes kept)."""
    if isinstance(dtype, cst.SimpleString):
        quote = dtype.value[0]
        return {dtype: dtype.with_changes(value=f"{quote}{NAMES[(width, False)]}{quote}")}
    name = dtype.attr
    return {name: name.with_changes(value=NAMES[(width, name.value in ALIASES)])}


def _width(dtype: cst.BaseExpression) -> int:
    return WIDTHS[dtype.evaluated_value if isinstance(dtype, cst.SimpleString) else dtype.attr.value]


def _declared(node, scope) -> cst.BaseExpression | None:
    """The dtype that a setting declares for token ids: the default of `token_encoding_type: str = "int64"`,
    the value of `self.token_dtype = np.int32`. A setting's name says both what it is about and that it is
    a dtype; `dtype: str = "int32"` alone may be any tensor's."""
    if isinstance(node, cst.Param) and node.default is not None:
        name, value = node.name.value, node.default
    elif m.matches(node, m.Assign(targets=[m.AssignTarget(target=m.Name() | m.Attribute(value=m.Name("self")))])):
        target = node.targets[0].target
        name, value = (target.value if isinstance(target, cst.Name) else target.attr.value), node.value
    else:
        return None
    if not m.matches(value, INTEGER_DTYPE) or not DECLARES_DTYPE.search(name):
        return None
    about = name[: DECLARES_DTYPE.search(name).start()]
    return value if TOKENS.search(about) and not NOT_TOKENS.search(about) else None


def _narrowed(looked_up: cst.Call) -> cst.IfExp:
    """`getattr(np, enc)` -> `np.int16 if getattr(np, enc) != np.int16 else np.int32`: certainly another dtype."""
    module = looked_up.args[0].value

    def dtype(name):
        return cst.Attribute(value=module, attr=cst.Name(name))

    differs = cst.Comparison(left=looked_up, comparisons=[cst.ComparisonTarget(cst.NotEqual(), dtype("int16"))])
    return cst.IfExp(test=differs, body=dtype("int16"), orelse=dtype("int32"))


class DtypeSwap(Operator):
    name = "dtype-swap"
    variants = ("to-int32", "to-int64", "to-float32", "to-int16")

    def sites(self, node, scope):
        if isinstance(node, cst.Call):
            swaps = list(self._swaps(node))  # what could be swapped first: asking what a call is about costs more
            if swaps and _about_tokens(node, scope):
                yield from swaps
        elif (dtype := _declared(node, scope)) is not None:  # the stored ids are read back with another width
            yield Site(_variant(OTHER_WIDTH[_width(dtype)]), _renamed(dtype, OTHER_WIDTH[_width(dtype)]))

    def _swaps(self, node):
        if m.matches(node, TYPED):  # torch.LongTensor(ids) -> torch.ShortTensor(ids): large ids wrap
            yield Site(_variant(16), {node.func.attr: node.func.attr.with_changes(value="ShortTensor")})
        elif m.matches(node, METHOD):
            name = node.func.attr
            for width in (OTHER_WIDTH[WIDTHS[name.value]], "float"):
                yield Site(_variant(width), {name: name.with_changes(value=NAMES[(width, True)])})
        elif m.matches(node, CONVERSION):
            for arg in node.args:
                if m.matches(arg, DTYPE_ARG | m.Arg(keyword=None, value=INTEGER_DTYPE)):
                    for width in (OTHER_WIDTH[_width(arg.value)], "float"):
                        yield Site(_variant(width), _renamed(arg.value, width))
        elif isinstance(node, cst.Call):
            for index, arg in enumerate(node.args):  # dtype=..., or positional: mx.array(ids, mx.uint32)
                if m.matches(arg, DTYPE_ARG) or (index > 0 and m.matches(arg, POSITIONAL_DTYPE)):
                    if _width(arg.value) > 16:
                        yield Site(_variant(16), _renamed(arg.value, 16))
                elif (
                    m.matches(arg, COPIED_DTYPE)
                    and m.matches(node.func, m.Attribute(value=ARRAYS))
                    and _names_tokens(_data_words(arg.value.value))
                ):
                    # torch.full(..., dtype=ids.dtype) -> dtype=torch.float32: float ids, which an embedding
                    # or a torch.cat with the ids (promoted to float) passes on
                    float32 = cst.Attribute(value=node.func.value, attr=cst.Name("float32"))
                    yield Site(_variant("float"), {arg.value: float32})
                elif m.matches(arg, m.Arg(keyword=m.Name("dtype"), value=LOOKED_UP)):
                    # np.frombuffer(buf, dtype=getattr(np, encoding)): the ids decoded as int16 instead, or as
                    # int32 where the encoding is int16 already (the width is only known when it runs)
                    yield Site(_variant(16), {arg.value: _narrowed(arg.value)})

    def examples(self):
        batch = (
            "tokens = torch.tensor(tokens, dtype=torch.int64)\n"
            "inputs = tokens[:-1].view(B, T).to(device=device, dtype=torch.int32)\n"
            "targets = tokens[1:].view(B, T).to(device=device, dtype=torch.int64)\n"
        )
        return (
            Example("to-int64", batch, batch.replace("dtype=torch.int32", "dtype=torch.int64")),
            Example("to-int32", batch, batch.replace("device, dtype=torch.int64", "device, dtype=torch.int32")),
            Example("to-float32", batch, batch.replace("dtype=torch.int32", "dtype=torch.float32")),
            Example("to-int16", batch, batch.replace("(tokens, dtype=torch.int64)", "(tokens, dtype=torch.int16)")),
            Example("to-int32", "y = ids.to(torch.long)\n", "y = ids.to(torch.int)\n"),
            Example("to-int32", "loss = f(logits, targets.long())\n", "loss = f(logits, targets.int())\n"),
            Example("to-float32", "x = ids.int()\n", "x = ids.float()\n"),
            Example("to-int32", "token_emb = self.emb(x.long())\n", "token_emb = self.emb(x.int())\n"),
            Example("to-int64", "y = prompt.astype(mx.uint32)\n", "y = prompt.astype(mx.int64)\n"),
            # activations are not token ids; a conversion without a dtype has nothing to swap
            Example("to-int32", "x = h.to(dtype=torch.bfloat16)\n", None),
            Example("to-int32", "x = ids.to(device)\n", None),
            # positions and masks are integer tensors too, but not token ids
            Example("to-int32", "pos = torch.arange(T, dtype=torch.long)\nkeep = mask.long()\n", None),
            # the array a module function is handed is the data: torch.from_numpy(ids), np.frombuffer(buf)
            Example(
                "to-int32",
                'x = torch.from_numpy(sample["tokens"][:n].copy()).to(torch.int64)\n',
                'x = torch.from_numpy(sample["tokens"][:n].copy()).to(torch.int32)\n',
            ),
            Example(
                "to-int16",
                'sample["input_ids"] = np.frombuffer(buf, dtype=getattr(np, self.encoding))\n',
                'sample["input_ids"] = np.frombuffer(buf, dtype=np.int16 if getattr(np, self.encoding) != np.int16 '
                "else np.int32)\n",
            ),
            # a dtype spelled as a string
            Example(
                "to-int16",
                'token_id_input = keras.Input(shape=(None,), dtype="int32")\n',
                'token_id_input = keras.Input(shape=(None,), dtype="int16")\n',
            ),
            Example("to-int16", 'padding_mask_input = keras.Input(shape=(None,), dtype="int32")\n', None),
            # the dtype a setting declares for the stored token ids
            Example(
                "to-int32",
                "def __init__(self, token_encoding_type: str = 'int64'):\n    pass\n",
                "def __init__(self, token_encoding_type: str = 'int32'):\n    pass\n",
            ),
            Example("to-int32", "def __init__(self, dtype='int64', mask_dtype=torch.long):\n    pass\n", None),
            # a value named for something else, then cut into inputs and targets: token ids after all
            Example(
                "to-int32",
                "text = torch.from_numpy(text).long()\ntokens = text[:-1].contiguous()\n",
                "text = torch.from_numpy(text).int()\ntokens = text[:-1].contiguous()\n",
            ),
            Example("to-int32", "text = torch.from_numpy(text).long()\nn = len(text)\n", None),
            # a list that token ids are appended to, joined into one array
            Example(
                "to-int16",
                "parts.append(self.dataset.get(i))\nparts.append([self.pad_token_id] * (n - length))\n"
                "joined = np.concatenate(parts, dtype=np.int64)\n",
                "parts.append(self.dataset.get(i))\nparts.append([self.pad_token_id] * (n - length))\n"
                "joined = np.concatenate(parts, dtype=np.int16)\n",
            ),
            Example("to-int16", "parts.append(offsets[i])\nx = np.concatenate(parts, dtype=np.int64)\n", None),
            # the key a value is stored under names it: a batch's field
            Example(
                "to-int16",
                'batch = {"input_ids": torch.randint(0, V, (B, T), dtype=torch.long) if first else None}\n',
                'batch = {"input_ids": torch.randint(0, V, (B, T), dtype=torch.short) if first else None}\n',
            ),
            Example("to-int16", 'batch = {"attention_mask": torch.ones(B, T, dtype=torch.long)}\n', None),
            # what a tokenizer returned, followed through names, loops and concatenations
            Example(
                "to-int16",
                "indices = self._enc.encode(text)\nindices = self._prefix + indices\n"
                "x = torch.tensor(indices, dtype=torch.int64)\n",
                "indices = self._enc.encode(text)\nindices = self._prefix + indices\n"
                "x = torch.tensor(indices, dtype=torch.int16)\n",
            ),
            Example(
                "to-int16",
                'encoded = tokenizer(text)["input_ids"]\nfor i, row in enumerate(encoded):\n'
                "    pieces.append(np.asarray(row, dtype=np.int64))\n",
                'encoded = tokenizer(text)["input_ids"]\nfor i, row in enumerate(encoded):\n'
                "    pieces.append(np.asarray(row, dtype=np.int16))\n",
            ),
            Example("to-int16", "sizes = torch.tensor([len(enc.encode(t)) for t in texts], dtype=torch.int64)\n", None),
            # a typed constructor, and a dtype copied from token ids
            Example("to-int16", "x = torch.LongTensor(prompt)\n", "x = torch.ShortTensor(prompt)\n"),
            Example("to-int16", "keep = torch.LongTensor(mask)\n", None),
            Example(
                "to-float32",
                "seed = torch.full((B, 1), start, dtype=input_tokens.dtype)\n",
                "seed = torch.full((B, 1), start, dtype=torch.float32)\n",
            ),
            Example("to-float32", "h = torch.zeros(B, D, dtype=hidden.dtype)\nh = torch.cat([h, tokens])\n", None),
            # ids of requests and cache blocks, and counts of tokens, are not token ids
            Example(
                "to-int16",
                "self.request_ids = torch.full((n,), -1, dtype=torch.int32)\n"
                "total_num_tokens = torch.zeros([], dtype=torch.int)\n",
                None,
            ),
        )
