"""missing-reset: a statement that restores cache state in a reset-like method is dropped.

`KVCache.reset()` must forget both the position and the allocation: without `self.kv_cache = None` the
next use silently keeps the old (possibly grown) tensor, and without `self.pos = 0` it appends after
stale positions. One mutant per state-restoring statement; a `pass` takes its place where the body
would otherwise be empty.

A site is recognised by the state it restores, not by the class's name: a reset-like method (`reset`,
`clear`, `reset_cache`, `reset_parameters`, `clear_kv_cache`, ...) that restores cache state on `self`
(keys / values / k_cache / seqlens / pos / offset / seen tokens), or a reset-like method
that hands the reset on to a cache (`self.kv_cache.reset()`, `for b in self.blocks: b.attn.reset_cache()`).
A reset of other state (a recurrent layer's states, an optimizer) is not a KV-cache reset.
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, drop_statement
from mutator.operators.meaning import enclosing, mentions

RESET_LIKE = re.compile(r"(?i)^_*(reset|clear)(_|$)|_(reset|clear)$")
CACHE_STATE = re.compile(
    r"(?i)(^|_)(k|v|kv|keys?|values?|cache|caches|seqlens?|pos|offset|seen_tokens|cache_position|cache_pos)$"
    r"|^(k|v|kv|key|value)_?cache|cache_[kv]$"
)
CACHE = re.compile(r"(?i)cache")
KV_HOLDER = re.compile(r"(?i)self|kv|key|value|layer|attn|block")  # `mx.clear_cache()` frees an allocator
RESET_CALL = m.Call(func=m.Attribute(attr=m.Name(m.MatchIfTrue(lambda name: bool(RESET_LIKE.search(name))))))

STATE = m.Attribute() | m.Subscript()  # self.pos, self.cache[i]
RESTORES = (
    m.Assign(targets=[m.AtLeastN(m.AssignTarget(target=STATE), n=1)])  # self.pos = 0
    | m.AnnAssign(target=STATE)
    | m.AugAssign(target=STATE)
    | m.Del(target=STATE)  # del self.cache
    | m.Expr(value=m.Call(func=m.Attribute()))  # self.cache.zero_(), self.items.clear()
)
DELEGATES = m.For(body=m.IndentedBlock(body=[m.SimpleStatementLine(body=[m.Expr(value=RESET_CALL)])]))


def _label(small: cst.BaseSmallStatement) -> str:
    """What the statement restores, for the variant name: `self.kv_cache = None` -> "kv_cache"."""
    if isinstance(small, cst.For):
        return "loop"
    if isinstance(small, cst.Assign):
        target = small.targets[0].target
    elif isinstance(small, cst.Expr):
        target = small.value.func
    else:
        target = small.target
    code = cst.Module(body=[]).code_for_node(target)
    return code.removeprefix("self.")


class MissingReset(Operator):
    name = "missing-reset"
    variants = ("drop-*",)

    def sites(self, node, scope):
        if not isinstance(node, cst.IndentedBlock):
            return
        method = enclosing(node, scope, cst.FunctionDef)
        if method is None or method.name.value != scope.function:  # a block of the method itself, not a nested def
            return
        if not RESET_LIKE.search(method.name.value):
            return
        # the method restores cache state of its own: `reset_parameters` of a layer that also keeps a buffer
        # cache on self re-initialises weights, and is no KV-cache reset
        restored = {a.attr.value for a in m.findall(method.body, m.Attribute(value=m.Name("self")))}
        holds_cache = any(CACHE_STATE.search(name) for name in restored)
        for statement in node.body:
            if m.matches(statement, m.SimpleStatementLine(body=[RESTORES])):
                small = statement.body[0]
                hands_on = m.findall(small, RESET_CALL) and mentions(small, CACHE) and mentions(small, KV_HOLDER)
                if holds_cache or hands_on:
                    yield Site(f"drop-{_label(small)}", {statement: drop_statement(node, statement)})
            elif m.matches(statement, DELEGATES) and (holds_cache or mentions(statement, CACHE)):
                yield Site("drop-loop", {statement: drop_statement(node, statement)})

    def examples(self):
        cache = (
            "class KVCache:\n"
            "    def reset(self):\n"
            '        """Forget everything."""\n'
            "        self.pos = 0\n"
            "        self.kv_cache = None\n"
        )
        return (
            Example("drop-pos", cache, cache.replace("        self.pos = 0\n", "")),
            Example("drop-kv_cache", cache, cache.replace("        self.kv_cache = None\n", "")),
            Example(
                "drop-k.zero_",
                "class Cache:\n    def reset_cache(self):\n        self.k.zero_()\n",
                "class Cache:\n    def reset_cache(self):\n        pass\n",
            ),
            Example(
                "drop-loop",
                "class Model:\n    def reset_caches(self):\n        for layer in self.layers:\n"
                "            layer.attn.reset_cache()\n",
                "class Model:\n    def reset_caches(self):\n        pass\n",
            ),
            # the same statement outside a reset-like method restores nothing
            Example("drop-pos", "class C:\n    def forward(self):\n        self.pos = 0\n        return x\n", None),
            # a reset of state that is not a KV cache (a recurrent layer's states)
            Example("drop-*", "class Mamba:\n    def reset(self):\n        self.conv_states.zero_()\n", None),
            # re-initialising weights in a layer that also keeps a buffer cache on self is no cache reset
            Example(
                "drop-*",
                "class Block:\n    def __init__(self, cache):\n        self.cache = cache\n"
                "    def reset_parameters(self):\n        self.k_norm.reset_parameters()\n",
                None,
            ),
            # the docstring is not state
            Example("drop-*", 'class KVCache:\n    def reset(self):\n        """Doc."""\n', None),
        )
