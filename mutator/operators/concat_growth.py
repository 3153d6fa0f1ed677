"""concat-growth: a KV cache that grows by concatenation grows twice as fast, or never.

Most caches outside preallocated engines grow by joining the new keys or values onto the stored ones:
`k = torch.cat([past_key_value[0], k], dim=-2)`, `self.key_cache[i] = torch.cat([self.key_cache[i], key_states],
dim=-2)`, `keys = mx.concatenate([self.keys, keys], axis=2)`. The slips keep every shape the next step needs:
- grown-twice: the new entries appended twice (`cat([past, k, k])`), so the cache grows by two per token;
- past-dropped: the stored part dropped, so the cache holds only the newest entries and never grows.

Sites, by meaning: a `cat` / `concat` / `concatenate` call whose sequence holds two items, the stored state first
(it names a past, a cache or a previous value, `ck` / `cv`, or it is kept on `self` under a key or value name)
and the new keys or values second (a key or value name that is not stored). Token ids growing
(`torch.cat([ids, next_id])`), rotary halves and memory tokens are not keys or values, and are left alone.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site
from mutator.operators.meaning import identifiers

JOINS = m.Call(
    func=m.Attribute(attr=m.Name(m.MatchRegex(r"^(cat|concat|concatenate)$")))
    | m.Name(m.MatchRegex(r"^(cat|concat|concatenate)$")),
    args=[
        m.Arg(value=m.List(elements=[m.Element(), m.Element()]) | m.Tuple(elements=[m.Element(), m.Element()])),
        m.ZeroOrMore(),
    ],
)
# what keys and values are called: `k`, `xk`, `key_states`, `value_layer`, `keys`, `kv`
KEY_OR_VALUE = re.compile(r"(?i)(^|_)(x?[kv]|keys?|values?|kv)($|_)")
# what stored state is called: the past, a cache, a previous step's, and x-transformers' cached `ck` / `cv`
STORED = re.compile(r"(?i)past|cache|prev|stored|^c[kv]$")


def _stored(expr: cst.BaseExpression) -> bool:
    """The keys or values a cache already holds: `past_key_value[0]`, `key_cache[:, :, start:]`, `self.keys`."""
    names = identifiers(expr)
    if any(STORED.search(name) for name in names):
        return True
    kept = m.findall(expr, m.Attribute(value=m.Name("self")))
    return any(KEY_OR_VALUE.search(attribute.attr.value) for attribute in kept)


def _new(expr: cst.BaseExpression) -> bool:
    """Keys or values just computed: a plain name or attribute named for them, not for stored state."""
    if not isinstance(expr, (cst.Name, cst.Attribute)):
        return False
    name = expr.value if isinstance(expr, cst.Name) else expr.attr.value
    return bool(KEY_OR_VALUE.search(name)) and not _stored(expr)


class ConcatGrowth(Operator):
    name = "concat-growth"
    variants = ("grown-twice", "past-dropped")

    def sites(self, node, scope):
        if not m.matches(node, JOINS):
            return
        sequence = node.args[0].value
        stored, new = (element.value for element in sequence.elements)
        if not (_stored(stored) and _new(new)):
            return
        twice = sequence.with_changes(
            elements=[
                sequence.elements[0],
                sequence.elements[1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
                cst.Element(value=new.deep_clone()),
            ]
        )
        yield Site("grown-twice", {sequence: twice})
        yield Site("past-dropped", {node: new.deep_clone()})

    def examples(self):
        hf = "self.key_cache[layer_idx] = torch.cat([self.key_cache[layer_idx], key_states], dim=-2)\n"
        past = "k = torch.cat([past_key_value[0], k], dim=-2)\n"
        mlx = "keys = mx.concatenate([self.keys, keys], axis=2)\n"
        return (
            Example(
                "grown-twice",
                hf,
                "self.key_cache[layer_idx] = torch.cat([self.key_cache[layer_idx], key_states, key_states], dim=-2)\n",
            ),
            Example("past-dropped", hf, "self.key_cache[layer_idx] = key_states\n"),
            Example("grown-twice", past, "k = torch.cat([past_key_value[0], k, k], dim=-2)\n"),
            Example("past-dropped", past, "k = k\n"),
            Example("grown-twice", mlx, "keys = mx.concatenate([self.keys, keys, keys], axis=2)\n"),
            # a sliding window's cache: the stored part trimmed, then the new keys after it
            Example(
                "grown-twice",
                "out = torch.cat((key_cache[:, :, start:, :], keys), dim=2)\n",
                "out = torch.cat((key_cache[:, :, start:, :], keys, keys), dim=2)\n",
            ),
            # x-transformers keeps its cached keys as `ck`
            Example("past-dropped", "k = cat((ck, k), dim=-2)\n", "k = k\n"),
            # token ids grow by concatenation too; they are no keys or values
            Example("grown-twice", "ids = torch.cat([ids, next_id], dim=1)\n", None),
            # rotary halves, memory tokens and the new keys first are no cache growing
            Example("grown-twice", "out = torch.cat([rotated_1, rotated_2], dim=-1)\n", None),
            Example("grown-twice", "x = torch.cat([mem, x], dim=1)\n", None),
            Example("grown-twice", "k = torch.cat([k, past_k], dim=-2)\n", None),
            Example("grown-twice", "qkv = torch.cat([q, k, v], dim=-1)\n", None),
        )
