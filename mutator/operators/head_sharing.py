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
count; and the `x[:, :, None].expand(..., n_kv, n_rep, ...)` idiom.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import INVERSE, Example, Operator, Site, parens, rewritten
from mutator.operators.meaning import body_of, mentions, reaches

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
        if not isinstance(node, (cst.Arg, cst.Assign, cst.AnnAssign, cst.If, cst.BinaryOperation, cst.Call)):
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
            tests = (
                [node.test, *m.findall(node.test, SINGLE)]
                if isinstance(node.test, cst.BooleanOperation)
                else [node.test]
            )
            for test in tests:
                if isinstance(test, cst.Comparison) and compares_heads(test):
                    yield Site("if-inverted", rewritten(test))
        elif m.matches(node, m.BinaryOperation(operator=m.FloorDivide() | m.Divide())):
            if counts_heads(node.left) and counts_heads(node.right) and mentions(node, KV_SHARED):
                yield Site("group-size-inverted", {node.left: node.right, node.right: node.left})
        elif m.matches(node, REPEAT_INTERLEAVE):
            yield from _repeat_sites(node)
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
        )
