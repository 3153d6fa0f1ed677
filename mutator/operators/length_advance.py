"""length-advance: a KV cache's filled length moves on by twice the new tokens, or not at all.

A cache that is written in place keeps a count of what it holds: `self.offset += keys.shape[2]` (mlx-lm),
`self._seq_len += input_seq_len` (fairseq2), `inference_params.seqlen_offset += sequences.shape[1]` (a
generation loop moving the cache on). The slips keep every shape the next step needs:
- advanced-twice: the count moves on by twice the new tokens, so the cache grows twice as fast, leaves
  holes, and runs out of room at half the length;
- advance-dropped: the count never moves, so every step overwrites the first slots and attends to a
  cache that never grows.

Sites, by meaning: `x += n`, `x = x + n` or `x.add_(n)`, where `x` is a filled length (offset, pos, seq_len, seqlen,
length, size, seen tokens) that a cache keeps: an attribute of a class that also keeps keys or values,
or of an object named for a cache (`inference_params`, `kv_cache`). An advance under a guard on the first
or last layer is the KV-position class's site (off-by-layer), a step that trims the cache's front
(`start_position += trim`) shrinks it, and a literal step of 0 moves nothing.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, binop, drop_statement, parens
from mutator.operators.meaning import class_attributes, enclosing, identifiers, owners
from mutator.operators.off_by_layer import layer_guard

FILLED = re.compile(
    r"(?i)(^|_)(offset|pos|position|seq_?lens?|seqlens?|len|length|size|seen_tokens|num_tokens|n_tokens|filled)$"
    r"|seqlen_offset|cache_seqlens|^_?idx$"
)
KEPT_KV = re.compile(r"(?i)(^|_)(k|v|keys?|values?|kv)(_|$)|^[kv]_?cache|cache_[kv]$|(key|value)_cache")
CACHE_OBJECT = re.compile(r"(?i)cache|inference_params")
SHRINKS = re.compile(r"(?i)trim|evict|discard|rollback|rewind|truncat")
ZERO = m.Integer("0")
IN_PLACE_ADD = m.Call(func=m.Attribute(value=m.Attribute(), attr=m.Name("add_")), args=[m.Arg(keyword=None)])


def _length_attribute(target: cst.BaseExpression) -> cst.Attribute | None:
    """`self.offset`, `cache.seqlen_offset`: the attribute a filled length is kept in."""
    if isinstance(target, cst.Attribute) and FILLED.search(target.attr.value):
        return target
    return None


def _kept_by_cache(attribute: cst.Attribute, node: cst.CSTNode, scope) -> bool:
    """The length belongs to a cache: `self.x` in a class that keeps keys or values, or `x` on an object
    named for a cache."""
    receiver = attribute.value
    if m.matches(receiver, m.Name("self")):
        cls = enclosing(node, scope, cst.ClassDef)
        return cls is not None and any(KEPT_KV.search(name) for name in class_attributes(cls))
    return any(CACHE_OBJECT.search(name) for name in identifiers(receiver))


def _advance(small: cst.BaseSmallStatement) -> tuple[cst.Attribute, cst.BaseExpression] | None:
    """`x += n`, `x = x + n` or `x.add_(n)` with a filled length `x` and a step `n` that is not 0: (x, n)."""
    if m.matches(small, m.AugAssign(operator=m.AddAssign())):
        target, step = small.target, small.value
    elif m.matches(
        small, m.Assign(targets=[m.AssignTarget()], value=m.BinaryOperation(operator=m.Add()))
    ) and small.value.left.deep_equals(small.targets[0].target):
        target, step = small.targets[0].target, small.value.right
    elif m.matches(small, m.Expr(value=IN_PLACE_ADD)):  # self.cache_pos.add_(seq_len), a tensor of positions
        target, step = small.value.func.value, small.value.args[0].value
    else:
        return None
    attribute = _length_attribute(target)
    return None if attribute is None or m.matches(step, ZERO) else (attribute, step)


class LengthAdvance(Operator):
    name = "length-advance"
    variants = ("advanced-twice", "advance-dropped")

    def sites(self, node, scope):
        if not isinstance(node, cst.SimpleStatementLine) or len(node.body) != 1:
            return
        advance = _advance(node.body[0])
        if advance is None:
            return
        attribute, step = advance
        if not _kept_by_cache(attribute, node, scope) or any(layer_guard(g) for g in owners(node, scope, cst.If)):
            return  # not a cache's length, or the KV-position class's site (off-by-layer)
        function = enclosing(node, scope, cst.FunctionDef)
        if any(SHRINKS.search(name) for name in identifiers(step)) or (
            function and SHRINKS.search(function.name.value)
        ):
            return  # start_position += trim: the cache gives up its oldest entries, it does not grow
        yield Site("advanced-twice", {step: binop(cst.Integer("2"), cst.Multiply(), parens(step))})
        yield Site("advance-dropped", {node: drop_statement(scope.parent(node), node)})

    def examples(self):
        mlx = (
            "class KVCache:\n    def update_and_fetch(self, keys, values):\n"
            "        self.keys[..., self.offset : self.offset + keys.shape[2], :] = keys\n"
            "        self.offset += keys.shape[2]\n        return self.keys\n"
        )
        loop = (
            "for t in range(n):\n    logits = step(x, inference_params)\n"
            "    inference_params.seqlen_offset += x.shape[1]\n"
        )
        return (
            Example("advanced-twice", mlx, mlx.replace("+= keys.shape[2]", "+= 2 * (keys.shape[2])")),
            Example("advance-dropped", mlx, mlx.replace("        self.offset += keys.shape[2]\n", "")),
            Example("advanced-twice", loop, loop.replace("+= x.shape[1]", "+= 2 * (x.shape[1])")),
            Example(
                "advanced-twice",
                "class State:\n    def append(self, k, v, n):\n        self._k = k\n"
                "        self._seq_len = self._seq_len + n\n",
                "class State:\n    def append(self, k, v, n):\n        self._k = k\n"
                "        self._seq_len = self._seq_len + 2 * (n)\n",
            ),
            Example(
                "advanced-twice",
                "class KVCache:\n    def update(self, k_val):\n        self.k_cache[:, :, self.cache_pos] = k_val\n"
                "        self.cache_pos.add_(k_val.shape[2])\n",
                "class KVCache:\n    def update(self, k_val):\n        self.k_cache[:, :, self.cache_pos] = k_val\n"
                "        self.cache_pos.add_(2 * (k_val.shape[2]))\n",
            ),
            Example(
                "advanced-twice",
                "class RotatingKVCache:\n    def _update(self, keys):\n        self.keys = keys\n"
                "        self._idx += S\n",
                "class RotatingKVCache:\n    def _update(self, keys):\n        self.keys = keys\n"
                "        self._idx += 2 * (S)\n",
            ),
            Example("*", "class Block:\n    def next(self):\n        self.k = 1\n        self.layer_idx += 1\n", None),
            # a counter of a class that keeps no keys or values, a generation loop's own count, a reset
            Example("*", "class Loader:\n    def next(self):\n        self.offset += self.batch_size\n", None),
            Example("*", "for t in range(n):\n    cur_len += 1\n    pos += 1\n", None),
            Example(
                "*", "class KVCache:\n    def reset(self):\n        self.k = None\n        self.offset += 0\n", None
            ),
            Example(
                "*",
                "class ChunkedKVCache:\n    def maybe_trim_front(self):\n        self.keys = self.keys[..., trim:, :]\n"
                "        self.start_position += trim\n",
                None,
            ),
            # under the last layer's guard it is the KV-position class's site
            Example(
                "*",
                "class Cache:\n    def insert(self, layer_idx, k):\n        self.k[layer_idx] = k\n"
                "        if layer_idx == self.n_layers - 1:\n            self.pos += k.size(2)\n",
                None,
            ),
        )
