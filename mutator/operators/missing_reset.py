"""missing-reset: a statement that restores state in a reset-like method is dropped.

`KVCache.reset()` must forget both the position and the allocation: without `self.kv_cache = None` the
next use silently keeps the old (possibly grown) tensor, and without `self.pos = 0` it appends after
stale positions. One mutant per state-restoring statement; a `pass` takes its place where the body
would otherwise be empty.
"""

from fnmatch import fnmatchcase

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, drop_statement

RESET_LIKE = ("reset", "reset_*", "*_reset", "clear", "clear_*", "*_clear")

STATE = m.Attribute() | m.Subscript()  # self.pos, self.cache[i]
RESTORES = (
    m.Assign(targets=[m.AtLeastN(m.AssignTarget(target=STATE), n=1)])  # self.pos = 0
    | m.AnnAssign(target=STATE)
    | m.AugAssign(target=STATE)
    | m.Del(target=STATE)  # del self.cache
    | m.Expr(value=m.Call(func=m.Attribute()))  # self.cache.zero_(), self.items.clear()
)


def _label(small: cst.BaseSmallStatement) -> str:
    """What the statement restores, for the variant name: `self.kv_cache = None` -> "kv_cache"."""
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
        if not any(fnmatchcase(scope.function, pattern) for pattern in RESET_LIKE):
            return
        for statement in node.body:
            if m.matches(statement, m.SimpleStatementLine(body=[RESTORES])):
                yield Site(f"drop-{_label(statement.body[0])}", {statement: drop_statement(node, statement)})

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
                "drop-k.zero_", "def reset_cache(self):\n    self.k.zero_()\n", "def reset_cache(self):\n    pass\n"
            ),
            # the same statement outside a reset-like method restores nothing
            Example("drop-pos", "def forward(self):\n    self.pos = 0\n    return x\n", None),
            # the docstring is not state
            Example("drop-*", 'def reset(self):\n    """Doc."""\n', None),
        )
