"""position-offset: tokens that continue a cached sequence get positions that ignore or overshoot the cache.

With a cache, new tokens start at the cache's length: their rotary rows (or position ids) are
`table[start : start + T]` with `start = cache.get_pos()`. The slips:
- start-ignored: the start taken as 0 whatever the cache holds (transformers #15751: position ids that
  ignore the past length);
- slice-from-zero: one table sliced from 0 (`cos[:, :T]`), so queries and keys are rotated for the wrong
  positions;
- start-advanced-by-length: the offset advanced by the new tokens' length once too often
  (tiny-llm #46: a decode offset advanced by the prompt length instead of by one).
A full forward without a cache never sees them (start is 0 there); cached decoding compared with the
full forward does.

Sites, by meaning:
- a start position read from a cache: `0 if cache is None else cache.get_pos()` (any conditional whose
  condition names a cache or the past and whose value asks it for a position, length or offset);
- a window `[s : s + n]` of a position table (`cos`, `sin`, `freqs`, `rope`, `pos_emb`, `wpe`,
  `position_ids`), and `arange(s, s + n)` as position ids or cache positions.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, parens
from mutator.operators.meaning import code, mentions

CACHE = re.compile(r"(?i)cache|past")
POSITION = re.compile(r"(?i)pos|len|seq|offset|seen|length|start")
TABLE = re.compile(r"(?i)cos|sin|freq|rope|rotary|pos_emb|wpe|position")
ARANGE = m.Call(func=m.Name("arange") | m.Attribute(attr=m.Name("arange")))


def _window(lower, upper) -> cst.BaseExpression | None:
    """`s` and `s + n` -> n (the window's length); None for anything else."""
    if lower is None or m.matches(lower, m.Integer()):
        return None
    if m.matches(upper, m.BinaryOperation(operator=m.Add())) and code(upper.left) == code(lower):
        return upper.right
    return None


def _advanced(start, length):
    grouped = parens(length) if isinstance(length, cst.BinaryOperation) else length
    return binop(start, cst.Add(), grouped)


class PositionOffset(Operator):
    name = "position-offset"
    variants = ("start-ignored", "slice-from-zero", "start-advanced-by-length")

    def sites(self, node, scope):
        if isinstance(node, cst.IfExp) and mentions(node.test, CACHE):
            for kept, other in ((node.body, node.orelse), (node.orelse, node.body)):
                if m.matches(kept, m.Integer("0")) and mentions(other, CACHE) and mentions(other, POSITION):
                    yield Site("start-ignored", {node: kept.with_changes(lpar=node.lpar, rpar=node.rpar)})
        elif isinstance(node, cst.Subscript) and mentions(node.value, TABLE):
            for element in node.slice:
                piece = element.slice
                if isinstance(piece, cst.Slice) and piece.step is None:
                    length = _window(piece.lower, piece.upper)
                    if length is not None:
                        yield Site("slice-from-zero", {piece: cst.Slice(lower=None, upper=length)})
                        yield Site(
                            "start-advanced-by-length",
                            {piece.lower: _advanced(piece.lower, length), piece.upper: _advanced(piece.upper, length)},
                        )
        elif m.matches(node, ARANGE) and len(node.args) >= 2 and all(a.keyword is None for a in node.args[:2]):
            lower, upper = node.args[0].value, node.args[1].value
            length = _window(lower, upper)
            if length is not None and mentions(lower, POSITION):
                args = [node.args[1].with_changes(value=length), *node.args[2:]]
                yield Site("slice-from-zero", {node: node.with_changes(args=args)})
                yield Site(
                    "start-advanced-by-length", {lower: _advanced(lower, length), upper: _advanced(upper, length)}
                )

    def examples(self):
        forward = (
            "start = 0 if kv_cache is None else kv_cache.get_pos()\n"
            "cos_sin = self.cos[:, start : start + T], self.sin[:, start : start + T]\n"
        )
        hf = "position_ids = torch.arange(past_length, past_length + seq_len, device=device)\n"
        return (
            Example("start-ignored", forward, forward.replace("0 if kv_cache is None else kv_cache.get_pos()", "0")),
            Example("slice-from-zero", forward, forward.replace("self.cos[:, start : start + T]", "self.cos[:, :T]")),
            Example(
                "start-advanced-by-length",
                forward,
                forward.replace("self.sin[:, start : start + T]", "self.sin[:, start + T : start + T + T]"),
            ),
            Example("slice-from-zero", hf, "position_ids = torch.arange(seq_len, device=device)\n"),
            # a window of tokens (not positions), and a default that does not come from a cache
            Example("*", "chunk = tokens[start : start + T]\nn = 0 if x is None else x.size(1)\n", None),
        )
