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

A method is also a cache reset when its class keeps cache state and its name says it resets or releases
state (`reset_attention_state`, `release_memory_blocks`; not `reset_parameters`, which re-initialises
weights). Outside such methods, three more places forget cache state: a call that hands a reset on to a
cache (`inference_params.reset(n, b)` where inference_params came from a cache, `self.reset_state()` in a
class that keeps cache state) together with the statements emptying cache state right beside it; the
position of a cache object set back to 0 (`cache.params.seqlen_offset = 0`); and the branch that
invalidates an outgrown cache (`if n > cache.max_seqlen or (device, dtype) != (cache.device, cache.dtype):`),
whose body empties the old cache's state (`cache.mempool = None`) and records what the new one holds
(`cache.max_seqlen = n`).
"""

import re

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, drop_statement
from mutator.operators.meaning import body_of, class_attributes, code, enclosing, mentions, reaches

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

# a method that gives cache memory back: `release_memory_blocks`, `free_slots`, `evict`
RELEASE_LIKE = re.compile(r"(?i)^_*(release|free|evict|invalidate)(_|$)|_(release|free|evict|invalidate)$")
# `reset_parameters` / `reset_weights` re-initialise weights: a reset of parameters, not of state
PARAMETERS = re.compile(r"(?i)param|weight|init")
# a count or a size of the model (`num_heads_kv`, `n_kv`) names a dimension, not state
COUNT = re.compile(r"(?i)^_*(num|n)_|_(dim|heads?|groups?)$")
# a flag says whether a cache is used (`can_cache_kv`, `use_cache`, `input_not_include_cache`): no state either
FLAG = re.compile(r"(?i)^_*(can|is|has|use|uses|should|enable|disable|needs?|allow|no|not)_|_(not|include|includes)_")
# what holds a cache: `kv_cache`, `past_key_values`, flash-attn's and Megatron's `inference_params` /
# `inference_context` (the per-generation state that keeps the keys and values)
HOLDER = re.compile(r"(?i)cache|(^|_)kv(_|$)|past_key_values|^inference_(params|context|state)$")
OWNER = re.compile(r"(?i)^self$|cache|(^|_)kv(_|$)|past_key_values|^inference_(params|context|state)$")
# where state is first set up, not reset: `__init__`, `allocate_all_tensors`, `setup_caches`
INITIALISERS = re.compile(r"(?i)^__(post_)?init__$|alloc|setup|^_*(build|create|init)")
LAYERS = re.compile(r"(?i)kv|key|value|layer|attn|block|model")
EMPTY = (
    m.Name("None")
    | m.Name("False")
    | m.Integer()
    | m.UnaryOperation(operator=m.Minus(), expression=m.Integer())
    | m.Dict(elements=[])
    | m.List(elements=[])
    | m.Tuple(elements=[])
    | m.Call(func=m.Name("dict") | m.Name("list") | m.Name("set"), args=[])
)
EMPTIES = (  # what a reset does to state: self.count = 0, cache.pool = None, self.block_ids.fill_(-1)
    m.Assign(targets=[m.AtLeastN(m.AssignTarget(target=STATE), n=1)], value=EMPTY)
    | m.Call(func=m.Attribute(attr=m.Name(m.MatchRegex(r"^(zero_|fill_|clear)$"))))
)


# outside a reset method, a call that resets a cache before it is used again (`params.reset(n, b)`); a clear after
# use (`model.clear_kv_cache()` at the end of a generation) frees memory that no output depends on
RESET_NAME = re.compile(r"(?i)^_*reset(_|$)|_reset$")
# what moves a cache without filling it: `cache.to(device=d, dtype=t)`, `cache.cuda()`
PLACEMENT = r"^(to|cuda|cpu|half|float|bfloat16)$"


def keeps_cache(cls: cst.ClassDef | None) -> bool:
    """The class keeps cache state on self: an attribute named for keys, values, a cache or a position
    (its methods and its counts, `num_heads_kv`, are not state)."""
    if cls is None:
        return False
    methods = {f.name.value for f in cls.body.body if isinstance(f, cst.FunctionDef)}
    return any(
        CACHE_STATE.search(name) and name not in methods and not COUNT.search(name) and not FLAG.search(name)
        for name in class_attributes(cls)
    )


def _is_holder(expr: cst.CSTNode, body: cst.CSTNode) -> bool:
    """expr is a cache, or was computed from one (`params = model._decoding_cache.params`)."""
    return reaches(expr, body, lambda n: isinstance(n, cst.Name) and bool(HOLDER.search(n.value)), depth=2)


def _hands_on_reset(statement: cst.CSTNode, method: cst.FunctionDef, cls, body, before=()) -> bool:
    """statement calls a reset of cache state on another object, or on self in a class that keeps it."""
    if not m.matches(statement, m.SimpleStatementLine(body=[m.Expr(value=RESET_CALL)])):
        return False
    func = statement.body[0].value.func
    if PARAMETERS.search(func.attr.value) or not RESET_NAME.search(func.attr.value):
        return False
    if INITIALISERS.search(method.name.value):
        return False
    if m.matches(func.value, m.Name("self")):
        return keeps_cache(cls)
    if _fresh(func.value, before):
        return False
    return _is_holder(func.value, body) or bool(CACHE.search(func.attr.value) and mentions(func.value, LAYERS))


def _fresh(receiver: cst.CSTNode, before: list) -> bool:
    """The receiver was built just before the reset, in the same block (`cache = BufferCache(...)`, at most
    moved, `cache.to(device)`, then `cache.reset()`): a new cache has nothing to forget, and dropping its
    reset changes nothing. A reset after the cache was used, or in a loop over batches, forgets what the
    last use left."""
    if not isinstance(receiver, cst.Name):
        return False
    built = m.Call(func=m.Name(m.MatchRegex(r"_*[A-Z]\w*")) | m.Attribute(attr=m.Name(m.MatchRegex(r"_*[A-Z]\w*"))))
    same = m.Name(receiver.value)
    binds = m.Assign(targets=[m.AssignTarget(target=same)], value=built) | m.AnnAssign(target=same, value=built)
    moved = m.Expr(value=m.Call(func=m.Attribute(value=same, attr=m.Name(m.MatchRegex(PLACEMENT)))))
    for statement in reversed(before):
        if m.matches(statement, m.SimpleStatementLine(body=[binds])):
            return True
        if m.findall(statement, same) and not m.matches(statement, m.SimpleStatementLine(body=[moved])):
            return False  # used (or built some other way) before its reset
    return False


def _hands_on_release(statement: cst.CSTNode) -> bool:
    """statement calls a release, free or reset (`self.allocator.release_blocks(ids)`, `meta.free_slots(i)`)."""
    return m.matches(
        statement,
        m.SimpleStatementLine(
            body=[
                m.Expr(
                    value=m.Call(
                        func=m.Attribute(
                            attr=m.Name(m.MatchIfTrue(lambda n: bool(RELEASE_LIKE.search(n) or RESET_LIKE.search(n))))
                        )
                    )
                )
            ]
        ),
    )


def _empties(statement: cst.CSTNode) -> bool:
    return m.matches(statement, m.SimpleStatementLine(body=[m.Assign() | m.Expr()])) and m.matches(
        statement.body[0], EMPTIES | m.Expr(value=EMPTIES)
    )


def _compared(test: cst.BaseExpression, body) -> list[cst.Attribute]:
    """The attributes of a cache that an outgrowing test compares against: `n > cache.max_seqlen`,
    `(device, dtype) != (cache.device, cache.dtype)`."""
    found = []
    for comparison in m.findall(test, m.Comparison()):
        operands = [comparison.left, *(t.comparator for t in comparison.comparisons)]
        if not any(
            isinstance(t.operator, (cst.GreaterThan, cst.LessThan, cst.NotEqual)) for t in comparison.comparisons
        ):
            continue
        for operand in operands:
            items = [e.value for e in operand.elements] if isinstance(operand, cst.Tuple) else [operand]
            found += [
                item
                for item in items
                if isinstance(item, cst.Attribute)
                and not m.matches(item.value, m.Name("self"))
                and _is_holder(item.value, body)
            ]
    return found


def _targets(assign: cst.Assign) -> list[cst.BaseExpression]:
    found = []
    for target in assign.targets:
        t = target.target
        found += [e.value for e in t.elements] if isinstance(t, cst.Tuple) else [t]
    return found


def _label(small: cst.BaseSmallStatement) -> str:
    """What the statement restores, for the variant name: `self.kv_cache = None` -> "kv_cache"."""
    if isinstance(small, cst.For):
        return "loop"
    if isinstance(small, cst.Assign):
        target = small.targets[0].target
        if isinstance(target, cst.Tuple):  # cache.max_seqlen, cache.device = ...: named for the first
            target = target.elements[0].value
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
        cls = enclosing(method, scope, cst.ClassDef)
        name = method.name.value
        if RESET_LIKE.search(name) or RELEASE_LIKE.search(name):
            yield from self._in_reset(node, method, cls)
            return
        body = body_of(node, scope)
        dropped = set()
        for i, statement in enumerate(node.body):
            hands_on = _hands_on_reset(statement, method, cls, body, node.body[:i]) or (
                m.matches(statement, DELEGATES)
                and mentions(statement, CACHE)
                and RESET_NAME.search(statement.body.body[0].body[0].value.func.attr.value)
                and not PARAMETERS.search(code(statement))
            )
            if not hands_on:
                continue
            # the reset call, and the run of statements emptying state right beside it (an inline reset)
            run = [statement]
            for step in (-1, 1):
                j = i + step
                while 0 <= j < len(node.body) and _empties(node.body[j]) and mentions(node.body[j], OWNER):
                    run.append(node.body[j])
                    j += step
            for s in run:
                if s not in dropped:
                    dropped.add(s)
                    yield Site(
                        f"drop-{_label(s.body[0]) if isinstance(s, cst.SimpleStatementLine) else 'loop'}",
                        {s: drop_statement(node, s)},
                    )
        if INITIALISERS.search(name):
            return
        for statement in node.body:  # a cache object's position set back to 0
            if statement in dropped or not m.matches(
                statement,
                m.SimpleStatementLine(
                    body=[m.Assign(targets=[m.AssignTarget(target=m.Attribute())], value=m.Integer("0"))]
                ),
            ):
                continue
            target = statement.body[0].targets[0].target
            if (
                CACHE_STATE.search(target.attr.value)
                and not m.matches(target.value, m.Name("self"))
                and _is_holder(target.value, body)
            ):
                dropped.add(statement)
                yield Site(f"drop-{_label(statement.body[0])}", {statement: drop_statement(node, statement)})
        branch = scope.parent(node)
        if isinstance(branch, cst.If) and branch.body is node:  # the branch that invalidates an outgrown cache
            compared = _compared(branch.test, body)
            if not compared:
                return
            bases = {code(a.value) for a in compared}
            keys = {code(a) for a in compared}
            for statement in node.body:
                if statement in dropped or not m.matches(statement, m.SimpleStatementLine(body=[m.Assign()])):
                    continue
                assign = statement.body[0]
                targets = _targets(assign)
                records = all(isinstance(t, cst.Attribute) and code(t) in keys for t in targets)
                empties = m.matches(assign, EMPTIES) and all(
                    isinstance(t, cst.Attribute) and code(t.value) in bases for t in targets
                )
                if records or empties:
                    yield Site(f"drop-{_label(assign)}", {statement: drop_statement(node, statement)})

    def _in_reset(self, node, method, cls):
        """The statements of a reset-like (or release-like) method that restore cache state."""
        # the method restores cache state of its own: `reset_parameters` of a layer that also keeps a buffer
        # cache on self re-initialises weights, and is no KV-cache reset; a method that resets or releases
        # state in a class that keeps cache state is a cache reset whatever state it names
        restored = {a.attr.value for a in m.findall(method.body, m.Attribute(value=m.Name("self")))}
        holds_cache = any(CACHE_STATE.search(name) for name in restored) or (
            keeps_cache(cls) and not PARAMETERS.search(method.name.value)
        )
        if not holds_cache and not RESET_LIKE.search(method.name.value):
            return
        releases = not RESET_LIKE.search(method.name.value)
        for statement in node.body:
            if releases and not (_empties(statement) or _hands_on_release(statement)):
                continue  # a release gives memory back and empties what pointed at it; the rest is bookkeeping
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
        context = "class Context:\n    def __init__(self):\n        self.kv_cache = None\n"
        release = (
            context + "    def release_blocks(self, ids):\n        self.allocator.release_blocks(ids)\n"
            "        self.block_table[ids] = -1\n        self.request_count -= len(ids)\n"
        )
        decode = (
            "def decode(model, max_length, batch_size):\n    params = model._decoding_cache.params\n"
            "    params.reset(max_length, batch_size)\n    return run(params)\n"
        )
        step = (
            context + "    def update(self, active):\n        self.count = active\n        if active == 0:\n"
            "            self.kv_block_ids.fill_(-1)\n            self.active_token_count = 0\n"
            "            self.reset_state()\n            return\n"
        )
        capture = "def update_graph_cache(cache):\n    cache.run = capture(cache)\n    cache.params.seqlen_offset = 0\n"
        outgrown = (
            "def update_graph_cache(cache, seqlen, device):\n"
            "    if seqlen > cache.max_seqlen or device != cache.device:\n"
            "        cache.pool = None\n        cache.max_seqlen, cache.device = seqlen, device\n"
            "        cache.graphs = capture(seqlen)\n"
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
            # a reset of any state in a class that keeps a cache resets the cache's bookkeeping
            Example(
                "drop-loop",
                context + "    def reset_attention_state(self):\n        for meta in self.metadata.values():\n"
                "            meta.reset()\n        self.active_metadata = None\n",
                context + "    def reset_attention_state(self):\n        self.active_metadata = None\n",
            ),
            # a count of key/value heads is no cache state: resetting statistics there is no cache reset
            Example(
                "drop-*",
                "class Attention:\n    def __init__(self):\n        self.num_heads_kv = 8\n"
                "    def reset_stats(self):\n        self.calls = 0\n",
                None,
            ),
            # a release gives blocks back and empties what pointed at them ...
            Example(
                "drop-allocator.release_blocks",
                release,
                release.replace("        self.allocator.release_blocks(ids)\n", ""),
            ),
            Example("drop-block_table?ids?", release, release.replace("        self.block_table[ids] = -1\n", "")),
            # ... its bookkeeping is not a reset
            Example("drop-request_count", release, None),
            # a reset handed on to a cache that came from elsewhere, outside any reset method
            Example("drop-params.reset", decode, decode.replace("    params.reset(max_length, batch_size)\n", "")),
            # a cache built just before has nothing to forget
            Example(
                "drop-*",
                "def generate(model):\n    cache = BufferCache(model.n_layers)\n    cache.to(model.device)\n"
                "    cache.reset()\n    return run(cache)\n",
                None,
            ),
            # ... but a cache built earlier and reset for every batch, or after a use, forgets what it held
            Example(
                "drop-cache.reset",
                "def generate(model):\n    cache = BufferCache(model.n_layers)\n    warm_up(model, cache)\n"
                "    cache.reset()\n    return run(cache)\n",
                "def generate(model):\n    cache = BufferCache(model.n_layers)\n    warm_up(model, cache)\n"
                "    return run(cache)\n",
            ),
            Example(
                "drop-cache.reset",
                "def evaluate(model, batches):\n    cache = BufferCache(model.n_layers)\n    for batch in batches:\n"
                "        cache.reset()\n        run(cache, batch)\n",
                "def evaluate(model, batches):\n    cache = BufferCache(model.n_layers)\n    for batch in batches:\n"
                "        run(cache, batch)\n",
            ),
            # an optimizer's reset, or a memoised function's, is not a cache's
            Example("drop-*", "def train(opt):\n    opt.reset()\n    step()\n", None),
            # a clear after use frees memory that no output depends on
            Example(
                "drop-*",
                "def sample(model):\n    out = generate(model)\n    model.clear_kv_cache()\n    return out\n",
                None,
            ),
            Example(
                "drop-loop",
                "def generate(model):\n    for layer in model.layers:\n"
                "        layer.attn.reset_cache()\n    return run(model)\n",
                "def generate(model):\n    return run(model)\n",
            ),
            Example("drop-*", "class Rope:\n    def __init__(self):\n        self.forward.cache_clear()\n", None),
            # the counters emptied beside a reset call are the same reset, written out
            Example("drop-active_token_count", step, step.replace("            self.active_token_count = 0\n", "")),
            Example("drop-reset_state", step, step.replace("            self.reset_state()\n", "")),
            # what is set up in an initialiser is no reset
            Example("drop-*", context + "    def allocate_tensors(self):\n        self.reset_state()\n", None),
            # a cache object's position set back to 0
            Example(
                "drop-cache.params.seqlen_offset", capture, capture.replace("    cache.params.seqlen_offset = 0\n", "")
            ),
            Example("drop-*", "def run(model):\n    model.step_offset = 0\n", None),
            # the branch that drops an outgrown cache: what it forgets, and what it records
            Example("drop-cache.pool", outgrown, outgrown.replace("        cache.pool = None\n", "")),
            Example(
                "drop-cache.max_seqlen",
                outgrown,
                outgrown.replace("        cache.max_seqlen, cache.device = seqlen, device\n", ""),
            ),
            Example("drop-cache.graphs", outgrown, None),  # the new graphs are no reset
            # a cache that grows in place keeps its keys: that branch forgets nothing
            Example(
                "drop-*",
                "class KVCache:\n    def insert(self, k):\n        if t1 > self.kv_cache.size(4):\n"
                "            self.kv_cache = grown(self.kv_cache)\n",
                None,
            ),
        )
