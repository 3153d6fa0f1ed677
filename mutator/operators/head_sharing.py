"""head-sharing: grouped-query attention shares each key/value head with the wrong query heads, or
with none.

With n_kv_head < n_head every key/value head serves a group of n_head / n_kv_head query heads. The
slips, all silent when n_kv_head is 1 or n_head (so a suite that tests only those never sees them):
- the flag or predicate that asks for sharing inverted: `enable_gqa = self.n_head != self.n_kv_head`
  written with `==` (the seed), `if n_rep == 1: return x` with `!=`, `if n_query_groups != n_head and ...`;
- the group size computed the other way round: `n_rep = n_kv_heads // n_heads`;
- the repetition itself: heads tiled (`[h0, h1, h0, h1]`) instead of repeated in place (`[h0, h0, h1, h1]`),
  repeated along the sequence instead of the heads, or skipped.

Sites are recognised by what they compare and repeat: head counts (`n_kv_head`, `num_key_value_heads`,
`n_query_groups`, `n_rep`, `q_per_kv`, ...; not `head_dim`), where a predicate must name the shared side
(kv / groups / n_rep: `num_output_heads > 1` shares nothing); an `enable_gqa=` argument; a
`repeat_interleave` by a head count; calls of a `repeat_kv`-like helper or einops' `repeat` with a head
count; and the `x[:, :, None].expand(..., n_kv, n_rep, ...)` idiom; numpy-style `ops.repeat(k, repeats=g,
axis=2)` (torch's repeat_interleave); a key/value tensor expanded to a head count; any predicate of a branch
that repeats key/value heads (`if kv.shape[3] != q.shape[2]:`, `if should_repeat_kv:`), but not a None
check, a rank check (`k.ndim == 3`) or a check that only raises; and a flag handed on under a key that
says the kv heads are repeated or GQA is enabled (`{"repeat_kv": ...}`; not a kernel's layout setting,
`pack_gqa`).
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import INVERSE, Example, Operator, Site, parens, rewritten
from mutator.operators.meaning import body_of, code, enclosing, mentions, only_complains, reaches

HEAD_COUNT = re.compile(
    r"(?i)^(?!.*(dim|size|lm_head|idx|index|mask|_ids?$)).*(heads?$|heads?_|n_rep|per_kv|query_groups|kv_groups"
    r"|key_value_groups|(^|_)kv_h$|(^|_)repeats$)"
)
KV_SHARED = re.compile(r"(?i)kv|key_value|query_groups|n_rep|per_kv|groups|repeats")  # the shared side
ONE = m.Integer("1")
SINGLE = m.Comparison(comparisons=[m.ComparisonTarget()])
HEAD_AXIS = m.Call(func=m.Attribute(attr=m.Name("size")), args=[m.Arg(value=m.Integer("1"))]) | m.Subscript(
    value=m.Attribute(attr=m.Name("shape")), slice=[m.SubscriptElement(slice=m.Index(value=m.Integer("1")))]
)
REPEAT_INTERLEAVE = m.Call(func=m.Attribute(attr=m.Name("repeat_interleave")))
# numpy's, keras.ops', mlx's and jax's repeat is torch's repeat_interleave: ops.repeat(k, repeats=g, axis=2)
ARRAY_REPEAT = m.Call(
    func=m.Attribute(value=m.Name(), attr=m.Name("repeat")),
    args=[m.Arg(keyword=None), m.ZeroOrMore(), m.Arg(keyword=m.Name("axis")), m.ZeroOrMore()],
)
# `if k.ndim == 3:` asks a tensor's rank or format (one head, unsplit), not whether heads are shared
RANK = re.compile(r"(?i)^(ndim|dim|dtype|device)$")
# a key or value tensor by its name (`key_unpad`, `value_states`, `kv`), for an expand that shares it
KV_NAMED = re.compile(r"(?i)(^|_)(k|v|kv|keys?|values?)(_|$)")
# repeat_kv(x, n_rep), einops' repeat(k, "b h n d -> b (h g) n d", g=groups): a helper that shares kv heads
REPEAT_HELPER = m.Call(
    func=m.Name(m.MatchRegex(r"(?i).*repeat.*")) | m.Attribute(attr=m.Name(m.MatchRegex(r"(?i)repeat_kv.*")))
)
KV_TENSOR = re.compile(r"(?i)^(k|v|kv|keys?|values?|(key|value)_states|x|hidden_states|t)$")
EINOPS_GROUP = re.compile(r"\((\w+) (\w+)\)")  # "(h g)" on the right of an einops pattern
EXPAND = m.Call(func=m.Attribute(attr=m.Name("expand"), value=m.Subscript()))
# k.unsqueeze(2).expand(b, n_kv, q_per_kv, t, d).flatten(1, 2): each kv head repeated in place
SHARED_BY_EXPAND = m.Call(
    func=m.Attribute(
        attr=m.Name("flatten"),
        value=m.Call(
            func=m.Attribute(
                attr=m.Name("expand"), value=m.Call(func=m.Attribute(attr=m.Name("unsqueeze")), args=[m.Arg()])
            )
        ),
    )
)
GQA_KEY = m.Subscript(
    slice=[m.SubscriptElement(slice=m.Index(value=m.SimpleString('"enable_gqa"') | m.SimpleString("'enable_gqa'")))]
)
GQA_LOOKUP = m.Call(
    func=m.Attribute(attr=m.Name("get")),
    args=[m.Arg(value=m.SimpleString('"enable_gqa"') | m.SimpleString("'enable_gqa'")), m.ZeroOrMore()],
)
OTHER_DIM = {"1": "2", "2": "1", "-3": "-2", "-2": "-3"}  # heads <-> sequence in (B, H, T, D) and (B, T, H, D)


def counts_heads(node: cst.CSTNode) -> bool:
    return mentions(node, HEAD_COUNT)


def compares_heads(comparison: cst.Comparison) -> bool:
    """`n_head != n_kv_head`, `n_rep == 1`, `q.size(1) != k.size(1)`: a single comparison of head counts."""
    if not m.matches(comparison, SINGLE) or type(comparison.comparisons[0].operator) not in INVERSE:
        return False
    left, right = comparison.left, comparison.comparisons[0].comparator
    if m.matches(left, HEAD_AXIS) and m.matches(right, HEAD_AXIS):
        return True
    if not mentions(comparison, KV_SHARED):  # `num_output_heads > 1` counts heads, but shares none
        return False
    return (
        counts_heads(left)
        and (counts_heads(right) or m.matches(right, ONE))
        or (counts_heads(right) and m.matches(left, ONE))
    )


def _gqa_flags(body: cst.CSTNode) -> set[str]:
    """Names passed as `enable_gqa=name`: the flag they hold is a GQA predicate whatever it compares."""
    return {arg.value.value for arg in m.findall(body, m.Arg(keyword=m.Name("enable_gqa"), value=m.Name()))}


def _tiled_expand(call: cst.Call) -> dict | None:
    """`x[:, :, None].expand(b, n_kv, n_rep, ...)` -> `x[:, None, :].expand(b, n_rep, n_kv, ...)`: the new
    axis before the kv heads instead of after, so the heads come out tiled instead of repeated in place."""
    elements = call.func.value.slice
    nones = [i for i, e in enumerate(elements) if m.matches(e, m.SubscriptElement(slice=m.Index(value=m.Name("None"))))]
    args = call.args
    reps = [i for i, a in enumerate(args) if a.keyword is None and mentions(a.value, re.compile(r"(?i)n_rep|groups"))]
    if len(nones) != 1 or len(reps) != 1 or nones[0] != reps[0] or reps[0] == 0:
        return None
    i = nones[0]
    if not counts_heads(args[i - 1].value):
        return None
    return {
        elements[i - 1].slice: elements[i].slice,
        elements[i].slice: elements[i - 1].slice,
        args[i - 1].value: args[i].value,
        args[i].value: args[i - 1].value,
    }


def _repeat_sites(call: cst.Call):
    """repeat_interleave by a head count: tiled instead (torch.cat of copies), on the sequence dim, skipped."""
    method_form = not m.matches(call.func, m.Attribute(value=m.Name("torch")))
    tensor = call.func.value if method_form else call.args[0].value
    args = list(call.args) if method_form else list(call.args[1:])
    repeats = next((a for a in args if a.keyword is None or a.keyword.value == "repeats"), None)
    dim = next((a for a in args if a.keyword is not None and a.keyword.value == "dim"), None)
    if dim is None and len([a for a in args if a.keyword is None]) == 2:
        dim = [a for a in args if a.keyword is None][1]
    if repeats is None or dim is None or not counts_heads(repeats.value):
        return
    cat = cst.parse_expression(f"torch.cat([x] * n, dim={cst.Module(body=[]).code_for_node(dim.value)})")
    tiled = cat.with_changes(
        args=[
            cat.args[0].with_changes(
                value=cat.args[0].value.with_changes(
                    left=cat.args[0].value.left.with_changes(elements=[cst.Element(tensor)]),
                    right=parens(repeats.value) if isinstance(repeats.value, cst.BinaryOperation) else repeats.value,
                )
            ),
            cat.args[1],
        ]
    )
    yield Site("repeat-tiled", {call: tiled})
    if m.matches(dim.value, m.Integer() | m.UnaryOperation(operator=m.Minus(), expression=m.Integer())):
        text = cst.Module(body=[]).code_for_node(dim.value)
        if text in OTHER_DIM:
            yield Site("repeat-sequence-dim", {dim.value: cst.parse_expression(OTHER_DIM[text])})
    yield Site("repeat-skipped", {call: tensor})


# a flag handed on under a key that says whether the kv heads are repeated or GQA is enabled (a kernel's
# layout setting, flash-attn's `pack_gqa`, only changes how the shared heads are packed: its speed)
GQA_WORD = r"""(?i)^['"]\w*(repeat_kv|(enable|use)_gqa)\w*['"]$"""


def _flag_negated(value):
    """The opposite of a flag's value: True/False swapped, `not x` -> `x`, a comparison inverted, else `not`."""
    if m.matches(value, m.Name("True") | m.Name("False")):
        yield Site("keyword-negated", {value: cst.Name("False" if value.value == "True" else "True")})
    elif m.matches(value, m.UnaryOperation(operator=m.Not())):
        yield Site("keyword-negated", {value: value.expression})
    elif m.matches(value, SINGLE) and type(value.comparisons[0].operator) in INVERSE:
        yield Site("keyword-inverted", rewritten(value))
    elif isinstance(value, (cst.Name, cst.Attribute, cst.Call)) and not m.matches(value, m.Name("None")):
        yield Site("keyword-negated", {value: cst.UnaryOperation(operator=cst.Not(), expression=value)})


def _imported(name: str, module: cst.Module | None) -> str:
    """The module a name stands for in `module` (`import tensorflow as tf`: "tensorflow"; `from keras import
    ops`: "keras.ops"), or the name itself when no import binds it."""
    for statement in m.findall(module, m.Import() | m.ImportFrom()) if module is not None else ():
        if isinstance(statement.names, cst.ImportStar):
            continue
        for alias in statement.names:
            full = code(alias.name)
            bound = code(alias.asname.name) if alias.asname is not None else full.split(".")[0]
            if bound != name:
                continue
            if isinstance(statement, cst.ImportFrom) and statement.module is not None:
                return f"{code(statement.module)}.{full}"
            return full if alias.asname is not None else bound
    return name


# the numpy-style array libraries whose `repeat` takes an `axis` (numpy, jax.numpy, mlx.core, keras.ops,
# tensorflow.experimental.numpy) join copies with `concatenate`; tensorflow's own namespace calls it `concat`
CONCAT = {"tensorflow": "concat", "tf": "concat"}


def _array_repeat_sites(call: cst.Call, scope):
    """ops.repeat(k, repeats=n_rep, axis=2) by a head count: tiled instead (the same library's concatenate
    of copies), on the sequence axis, or skipped."""
    positional = [a for a in call.args if a.keyword is None]
    tensor = positional[0].value
    repeats = next((a for a in call.args if m.matches(a, m.Arg(keyword=m.Name("repeats")))), None)
    repeats = repeats or (positional[1] if len(positional) > 1 else None)
    axis = next(a for a in call.args if m.matches(a, m.Arg(keyword=m.Name("axis"))))
    if repeats is None or not counts_heads(repeats.value) or not _named_kv(tensor):
        return
    library = code(call.func.value)
    join = CONCAT.get(_imported(library, enclosing(call, scope, cst.Module)), "concatenate")
    count = parens(repeats.value) if isinstance(repeats.value, cst.BinaryOperation) else repeats.value
    tiled = cst.parse_expression(f"{library}.{join}([{code(tensor)}] * {code(count)}, axis={code(axis.value)})")
    yield Site("repeat-tiled", {call: tiled})
    if code(axis.value) in OTHER_DIM:
        yield Site("repeat-sequence-dim", {axis.value: cst.parse_expression(OTHER_DIM[code(axis.value)])})
    yield Site("repeat-skipped", {call: tensor})


def _named_kv(expr) -> bool:
    return mentions(expr, KV_NAMED) or mentions(expr, KV_TENSOR)


def _expands_kv(call: cst.Call) -> bool:
    """`key_unpad.expand(n, n_heads, d)`: a key or value tensor (a single shared head) expanded to a head
    count."""
    return (
        m.matches(call, m.Call(func=m.Attribute(attr=m.Name("expand"), value=m.Name())))
        and _named_kv(call.func.value)
        and any(a.keyword is None and counts_heads(a.value) for a in call.args)
    )


def _shares_kv(block, scope) -> bool:
    """The block repeats or expands key/value heads (what a GQA branch does)."""
    for call in m.findall(block, m.Call()):
        if m.matches(call, REPEAT_INTERLEAVE | ARRAY_REPEAT) and any(counts_heads(a.value) for a in call.args):
            return True
        if _expands_kv(call) or (m.matches(call, EXPAND) and _tiled_expand(call)):
            return True
        if (
            m.matches(call, REPEAT_HELPER)
            and call.args
            and any(_shares(a.value) for a in call.args[1:])
            and _keys_or_values(call.args[0].value, scope)
        ):
            return True
    return False


def _shares(expr) -> bool:
    """A count of heads to share: a head count, a group size, or the query's head axis (`q.shape[1]`)."""
    return counts_heads(expr) or mentions(expr, KV_SHARED) or bool(m.findall(expr, HEAD_AXIS))


def _keys_or_values(expr, scope) -> bool:
    """The repeated tensor holds keys or values (`k`, `value_states`, or a loop over `(k, v)`)."""
    return reaches(
        expr, body_of(expr, scope), lambda node: isinstance(node, cst.Name) and bool(KV_TENSOR.match(node.value))
    )


def _helper_sites(call: cst.Call):
    """A kv-sharing helper call: skipped (the unshared tensor passed on), or, for an einops pattern that
    merges the heads with their copies, tiled (`(h g)` -> `(g h)`)."""
    tensor = call.args[0].value
    yield Site("repeat-skipped", {call: tensor})
    pattern = next((a.value for a in call.args[1:2] if isinstance(a.value, cst.SimpleString)), None)
    if pattern is not None and "->" in pattern.value:
        left, right = pattern.value.split("->", 1)
        repeats = {a.keyword.value for a in call.args if a.keyword is not None}
        found = EINOPS_GROUP.search(right)
        if found and repeats & {found[1], found[2]}:
            swapped = right[: found.start()] + f"({found[2]} {found[1]})" + right[found.end() :]
            yield Site("repeat-tiled", {pattern: pattern.with_changes(value=left + "->" + swapped)})


class HeadSharing(Operator):
    name = "head-sharing"
    variants = (
        "flag-inverted",
        "keyword-inverted",
        "keyword-negated",
        "if-inverted",
        "group-size-inverted",
        "repeat-tiled",
        "repeat-sequence-dim",
        "repeat-skipped",
    )

    def sites(self, node, scope):
        if not isinstance(
            node, (cst.Arg, cst.Assign, cst.AnnAssign, cst.If, cst.BinaryOperation, cst.Call, cst.DictElement)
        ):
            return  # what every branch below matches: most nodes are none of these
        if (
            m.matches(node, m.Arg(keyword=m.Name("enable_gqa"), value=SINGLE))
            and type(node.value.comparisons[0].operator) in INVERSE
        ):
            yield Site("keyword-inverted", rewritten(node.value))
        elif m.matches(node, m.Arg(keyword=m.Name("enable_gqa"), value=m.Name() | m.Attribute())):
            # whatever the flag holds, this one call gets the opposite (True/False flipped, a flag negated)
            value = node.value
            if m.matches(value, m.Name("True") | m.Name("False")):
                opposite = cst.Name("False" if value.value == "True" else "True")
            else:
                opposite = cst.UnaryOperation(operator=cst.Not(), expression=value)
            yield Site("keyword-negated", {value: opposite})
        elif m.matches(node, m.Assign(targets=[m.AssignTarget(target=m.Name() | m.Attribute())], value=SINGLE)) or (
            m.matches(node, m.AnnAssign(target=m.Name() | m.Attribute(), value=SINGLE))
        ):
            target = node.targets[0].target if isinstance(node, cst.Assign) else node.target
            named_flag = isinstance(target, cst.Name) and target.value in _gqa_flags(body_of(node, scope))
            if compares_heads(node.value) or (named_flag and type(node.value.comparisons[0].operator) in INVERSE):
                yield Site("flag-inverted", rewritten(node.value))
        elif m.matches(node, m.If(test=GQA_LOOKUP)):  # if kwargs.get("enable_gqa", False):
            yield Site("if-inverted", {node.test: cst.UnaryOperation(operator=cst.Not(), expression=node.test)})
        elif isinstance(node, cst.If):
            if only_complains(node):  # if self.kv_n_heads > self.n_heads: raise ValueError(...): validation
                return
            tests = (
                [node.test, *m.findall(node.test, SINGLE)]
                if isinstance(node.test, cst.BooleanOperation)
                else [node.test]
            )
            found = False
            for test in tests:
                if isinstance(test, cst.Comparison) and compares_heads(test):
                    found = True
                    yield Site("if-inverted", rewritten(test))
            if not found and not mentions(node.test, RANK) and _shares_kv(node.body, scope):
                # if kv.shape[3] != q.shape[2]: kv = repeat(kv, ...), if should_repeat_kv: k = k.expand(...):
                # whatever the predicate compares, it decides whether the key/value heads are shared
                test = node.test
                if m.matches(test, SINGLE) and type(test.comparisons[0].operator) in INVERSE:
                    if not m.matches(test.comparisons[0].comparator, m.Name("None")):
                        yield Site("if-inverted", rewritten(test))
                elif isinstance(test, (cst.Name, cst.Attribute)):
                    yield Site("if-inverted", {test: cst.UnaryOperation(operator=cst.Not(), expression=test)})
        elif m.matches(node, m.BinaryOperation(operator=m.FloorDivide() | m.Divide())):
            if counts_heads(node.left) and counts_heads(node.right) and mentions(node, KV_SHARED):
                yield Site("group-size-inverted", {node.left: node.right, node.right: node.left})
        elif m.matches(node, REPEAT_INTERLEAVE):
            yield from _repeat_sites(node)
        elif m.matches(node, ARRAY_REPEAT):
            yield from _array_repeat_sites(node, scope)
        elif (
            m.matches(node, REPEAT_HELPER)
            and node.args
            and any(_shares(a.value) for a in node.args[1:])
            and _keys_or_values(node.args[0].value, scope)
        ):
            yield from _helper_sites(node)
        elif m.matches(node, EXPAND):
            edits = _tiled_expand(node)
            if edits:
                yield Site("repeat-tiled", edits)
        elif m.matches(node, SHARED_BY_EXPAND) and _keys_or_values(node.func.value.func.value.func.value, scope):
            yield Site("repeat-skipped", {node: node.func.value.func.value.func.value})
        elif isinstance(node, cst.Call) and _expands_kv(node):
            # key_unpad = key_unpad.expand(nnz, n_heads, d): one shared head expanded to every query head
            yield Site("repeat-skipped", {node: node.func.value})
        elif m.matches(node, m.DictElement(key=m.SimpleString(m.MatchRegex(GQA_WORD)))):
            yield from _flag_negated(node.value)  # {'repeat_kv_heads': not has_native_gqa()}
        elif m.matches(
            node, m.Assign(targets=[m.AssignTarget(target=GQA_KEY)], value=m.Name("True") | m.Name("False"))
        ):
            # kwargs["enable_gqa"] = True: the flag handed on through a dict
            yield Site("keyword-negated", {node.value: cst.Name("False" if node.value.value == "True" else "True")})

    def examples(self):
        repeat_kv = (
            "def repeat_kv(x, n_rep):\n"
            "    bs, slen, n_kv_heads, head_dim = x.shape\n"
            "    if n_rep == 1:\n"
            "        return x\n"
            "    y = x[:, :, :, None, :].expand(bs, slen, n_kv_heads, n_rep, head_dim)\n"
            "    return y.reshape(bs, slen, -1, head_dim)\n"
        )
        return (
            Example(
                "flag-inverted",
                "enable_gqa = self.n_head != self.n_kv_head\n",
                "enable_gqa = self.n_head == self.n_kv_head\n",
            ),
            Example(
                "keyword-inverted",
                "y = sdpa(q, k, v, enable_gqa=q.size(1) != k.size(1))\n",
                "y = sdpa(q, k, v, enable_gqa=q.size(1) == k.size(1))\n",
            ),
            Example(
                "keyword-negated",
                "y = sdpa(q, k, v, enable_gqa=enable_gqa)\n",
                "y = sdpa(q, k, v, enable_gqa=not enable_gqa)\n",
            ),
            Example("if-inverted", repeat_kv, repeat_kv.replace("n_rep == 1", "n_rep != 1")),
            Example(
                "repeat-tiled",
                repeat_kv,
                repeat_kv.replace("x[:, :, :, None, :]", "x[:, :, None, :, :]").replace(
                    "n_kv_heads, n_rep, head_dim)", "n_rep, n_kv_heads, head_dim)"
                ),
            ),
            Example(
                "if-inverted",
                "if n_query_groups != n_head and input_pos is None:\n    k = k.expand(*q.shape)\n",
                "if n_query_groups == n_head and input_pos is None:\n    k = k.expand(*q.shape)\n",
            ),
            Example(
                "repeat-skipped",
                "k = k.unsqueeze(2).expand(shape).flatten(1, 2)\n",
                "k = k\n",
            ),
            Example(
                "keyword-negated",
                'kw["enable_gqa"] = True\nif kw.get("enable_gqa", False):\n    pass\n',
                'kw["enable_gqa"] = False\nif kw.get("enable_gqa", False):\n    pass\n',
            ),
            Example(
                "if-inverted",
                'if kw.get("enable_gqa", False):\n    pass\n',
                'if not kw.get("enable_gqa", False):\n    pass\n',
            ),
            # a mask or activations flattened after an expand are not keys or values
            Example("repeat-skipped", "m = mask.unsqueeze(1).expand(shape).flatten(0, 1)\n", None),
            Example(
                "group-size-inverted",
                "self.n_rep = self.n_heads // self.n_kv_heads\n",
                "self.n_rep = self.n_kv_heads // self.n_heads\n",
            ),
            Example(
                "repeat-tiled",
                "k = k.repeat_interleave(self.n_rep, dim=1)\n",
                "k = torch.cat([k] * self.n_rep, dim=1)\n",
            ),
            Example(
                "repeat-sequence-dim",
                "k = k.repeat_interleave(self.n_rep, dim=1)\n",
                "k = k.repeat_interleave(self.n_rep, dim=2)\n",
            ),
            Example("repeat-skipped", "k = torch.repeat_interleave(k, dim=2, repeats=n_rep)\n", "k = k\n"),
            Example("repeat-skipped", "keys = repeat_kv(keys, self.n_rep)\n", "keys = keys\n"),
            Example(
                "repeat-tiled",
                "k = repeat(k, 'b h n d -> b (h g) n d', g = groups)\n",
                "k = repeat(k, 'b h n d -> b (g h) n d', g = groups)\n",
            ),
            Example(
                "group-size-inverted",
                "off = off_h // (q_heads // kv_heads)\n",
                "off = off_h // (kv_heads // q_heads)\n",
            ),
            # comparisons of other things: optional arguments, head_dim, a mask
            Example("flag-inverted", "causal = mask is None\nif head_dim % 2 == 0:\n    pass\n", None),
            Example("if-inverted", "if n_kv_heads is None:\n    n_kv_heads = n_heads\n", None),
            Example("repeat-tiled", "x = x.repeat_interleave(2, dim=1)\n", None),
            Example("repeat-skipped", "k = repeat(k, 'b ... -> b h ...', h = q.shape[1])\n", "k = k\n"),
            Example("repeat-skipped", "w = repeat(scale, 'h -> (h e)', e = qk_dim // heads)\n", None),
            Example("flag-inverted", "many = num_output_heads > 1\npartial = rotate_num_heads < heads\n", None),
            # whatever a predicate compares, the branch that repeats the key/value heads makes it a GQA one
            Example(
                "if-inverted",
                'if kv.shape[3] != q.shape[2]:\n    kv = repeat(kv, "s h d -> s (h g) d", g=n // kv.shape[3])\n',
                'if kv.shape[3] == q.shape[2]:\n    kv = repeat(kv, "s h d -> s (h g) d", g=n // kv.shape[3])\n',
            ),
            Example(
                "if-inverted",
                "if should_repeat_kv:\n    k = k.expand(b, n_heads, d)\n",
                "if not should_repeat_kv:\n    k = k.expand(b, n_heads, d)\n",
            ),
            # an optional input's presence, a tensor's rank, and a check that only raises, share nothing
            Example(
                "if-inverted",
                "if kv_cache is not None:\n    k = repeat_kv(k, n_rep)\n"
                "if k.ndim == 3:\n    k = repeat(k, 'b ... -> b h ...', h=q.shape[1])\n"
                "if self.kv_n_heads > self.n_heads:\n    raise ValueError(self.kv_n_heads)\n",
                None,
            ),
            Example(
                "repeat-skipped",
                "key_unpad = key_unpad.expand(key_unpad.size(0), n_heads, key_unpad.size(-1))\n",
                "key_unpad = key_unpad\n",
            ),
            Example("repeat-skipped", "m = mask.expand(b, n_heads, t)\n", None),
            # numpy's and keras.ops' repeat is torch's repeat_interleave
            Example(
                "repeat-tiled",
                "key = ops.repeat(key, repeats=self.num_key_value_groups, axis=2)\n",
                "key = ops.concatenate([key] * self.num_key_value_groups, axis=2)\n",
            ),
            Example(
                "repeat-sequence-dim",
                "key = ops.repeat(key, repeats=self.num_key_value_groups, axis=2)\n",
                "key = ops.repeat(key, repeats=self.num_key_value_groups, axis=1)\n",
            ),
            Example(
                "repeat-skipped", "key = ops.repeat(key, repeats=self.num_key_value_groups, axis=2)\n", "key = key\n"
            ),
            Example("repeat-tiled", "x = np.repeat(x, 2, axis=1)\n", None),
            Example(
                "keyword-negated",
                "kwargs = {'repeat_kv_heads': not has_native_gqa()}\n",
                "kwargs = {'repeat_kv_heads': has_native_gqa()}\n",
            ),
            Example("keyword-inverted", 'kwargs = {"enable_gqa": n_kv < n}\n', 'kwargs = {"enable_gqa": n_kv >= n}\n'),
            # a kernel's layout setting packs the shared heads differently, it shares nothing else
            Example("keyword-negated", 'kwargs = {"pack_gqa": None}\nkwargs = {"pack_gqa": pack_gqa}\n', None),
            # tensorflow joins copies with `concat` (it has no `concatenate`); its numpy API with `concatenate`
            Example(
                "repeat-tiled",
                "import tensorflow as tf\nk = tf.repeat(k, repeats=self.n_rep, axis=2)\n",
                "import tensorflow as tf\nk = tf.concat([k] * self.n_rep, axis=2)\n",
            ),
            Example(
                "repeat-tiled",
                "import tensorflow.experimental.numpy as tnp\nk = tnp.repeat(k, repeats=self.n_rep, axis=2)\n",
                "import tensorflow.experimental.numpy as tnp\nk = tnp.concatenate([k] * self.n_rep, axis=2)\n",
            ),
        )
