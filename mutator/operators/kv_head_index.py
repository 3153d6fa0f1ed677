"""kv-head-index: grouped-query attention maps query heads to the wrong key/value heads by index.

Where key/value heads are shared by gathering them with an index (`kv_head_of = arange(n_head) // group`,
then `k[:, kv_head_of]`), query head h must read key/value head h // group: `[h0, h0, h1, h1]`. The slips:
- tiled: `arange(n_head) % n_kv_head`, `[h0, h1, h0, h1]` (axlearn #842, onnx #7274);
- reversed: the groups in the opposite order, `[h1, h1, h0, h0]`;
- the index applied to the sequence axis instead of the heads (prime-rl #2681: a repeat on the wrong dim).
All keep shapes whenever the sequence is at least as long as the head count; with n_kv_head 1 or n_head
the map is trivial and they vanish, so only a grouped model (1 < n_kv_head < n_head) compared with a
reference sees them.

Sites, by meaning: a floor division of an `arange` over a head count by a group size, and the subscripts,
`index_select` and `take` calls that apply the name it is bound to. `repeat_interleave` and `repeat_kv`
sharing are head-sharing's sites, not these.
"""

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, parens
from mutator.operators.head_sharing import HEAD_COUNT
from mutator.operators.meaning import bindings, body_of, mentions

ARANGE = m.Call(func=m.Name("arange") | m.Attribute(attr=m.Name("arange")))
HEAD_MAP = m.BinaryOperation(operator=m.FloorDivide(), left=ARANGE)
TAKE = m.Call(func=m.Attribute(attr=m.Name("index_select") | m.Name("take") | m.Name("take_along_axis")))


def _head_map(expr) -> bool:
    """`arange(n_head) // group`: the key/value head each query head reads."""
    if not m.matches(expr, HEAD_MAP) or not expr.left.args:
        return False
    return mentions(expr.left.args[0].value, HEAD_COUNT)


def _maps(body) -> set[str]:
    """Names bound in `body` to a query-head -> kv-head index map."""
    return {
        name
        for name, values in bindings(body).items()
        if any(isinstance(v, cst.BinaryOperation) and _head_map(v) for v in values)
    }


def _axis_plus_one(value: cst.BaseExpression) -> cst.BaseExpression | None:
    if isinstance(value, cst.Integer):
        return cst.Integer(str(int(value.value) + 1))
    return None


class KvHeadIndex(Operator):
    name = "kv-head-index"
    variants = ("tiled", "reversed", "sequence-dim")

    def sites(self, node, scope):
        if isinstance(node, cst.BinaryOperation) and _head_map(node):
            heads = node.left.args[0].value
            grouped_heads = parens(heads) if isinstance(heads, cst.BinaryOperation) else heads
            group = parens(node.right) if isinstance(node.right, cst.BinaryOperation) else node.right
            kv_heads = parens(binop(grouped_heads, cst.FloorDivide(), group))
            yield Site("tiled", {node: binop(node.left, cst.Modulo(), kv_heads)})
            flipped = cst.Call(
                func=cst.Attribute(value=node.left, attr=cst.Name("flip")), args=[cst.Arg(cst.Integer("0"))]
            )
            yield Site("reversed", {node.left: flipped})
        elif isinstance(node, cst.Subscript) and len(node.slice) >= 2:
            maps = _maps(body_of(node, scope))
            index = node.slice[1].slice
            if maps and m.matches(index, m.Index(value=m.Name())) and index.value.value in maps:
                full = cst.SubscriptElement(
                    slice=cst.Slice(lower=None, upper=None), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                )
                yield Site("sequence-dim", {node: node.with_changes(slice=[node.slice[0], full, *node.slice[1:]])})
        elif m.matches(node, TAKE):
            maps = _maps(body_of(node, scope))
            index = next((a for a in node.args if isinstance(a.value, cst.Name) and a.value.value in maps), None)
            axis = next(
                (
                    a
                    for a in node.args
                    if a is not index and a.keyword is not None and a.keyword.value in ("dim", "axis")
                ),
                None,
            )
            if axis is None:
                axis = next((a for a in node.args if a is not index and isinstance(a.value, cst.Integer)), None)
            if index is not None and axis is not None and _axis_plus_one(axis.value) is not None:
                yield Site("sequence-dim", {axis.value: _axis_plus_one(axis.value)})

    def examples(self):
        gather = (
            "def attend(q, k, n_head, group_size):\n"
            "    kv_head_of = torch.arange(n_head) // group_size\n"
            "    k = k[:, kv_head_of]\n"
            "    return q @ k\n"
        )
        return (
            Example("tiled", gather, gather.replace("// group_size", "% (n_head // group_size)")),
            Example("reversed", gather, gather.replace("torch.arange(n_head) //", "torch.arange(n_head).flip(0) //")),
            Example("sequence-dim", gather, gather.replace("k[:, kv_head_of]", "k[:, :, kv_head_of]")),
            Example(
                "sequence-dim",
                "idx = torch.arange(num_heads) // n_rep\nkeys = keys.index_select(1, idx)\n",
                "idx = torch.arange(num_heads) // n_rep\nkeys = keys.index_select(2, idx)\n",
            ),
            # positions grouped into blocks are not heads
            Example("*", "block_of = torch.arange(seq_len) // block_size\nx = x[:, block_of]\n", None),
        )
