"""shared-state: per-request or per-row state that is shared instead of fresh, so earlier work ghosts in.

A generation keeps state per request and per sample: the tokens so far, a queue of forced tokens, a
tool call being collected. When that state is not fresh, one request or row sees another's (LocalAI
#6747: a cache not reset between requests, earlier turns "ghost" into new ones). The slips:
- copy-dropped: state kept without its copy (`self.tokens = list(tokens)` -> `self.tokens = tokens`), so
  appending to it changes the caller's list and every row that got the same one;
- rows-shared: one object for every row (`[State() for _ in range(n)]` -> `[State()] * n`);
- clear-dropped: the statement that empties collected state before reuse (`row.expr_tokens = []`, a
  `.clear()`) dropped outside `__init__`, so the previous call's items are still there.
One request with one row never sees any of them.

Sites, by meaning: a copy (`list(x)`, `dict(x)`, `x.copy()`, `copy.copy(x)`, `copy.deepcopy(x)`, `x[:]`)
kept on an attribute or made per row in a comprehension; a comprehension `[E for _ in range(n)]` whose
element is a new mutable object (a list, dict or set, a copy, an instance of a class); an attribute set
to an empty container or cleared, in a method other than `__init__` (reset-like methods are missing-reset's),
where the same attribute is appended to or extended elsewhere in the module.
"""

import libcst as cst
import libcst.matchers as m

from mutator.operators.base import Example, Operator, Site, drop_statement
from mutator.operators.meaning import code, enclosing
from mutator.operators.missing_reset import RESET_LIKE

COPY_CALL = m.Call(func=m.Name("list") | m.Name("dict") | m.Name("set"), args=[m.Arg(keyword=None)])
COPY_METHOD = m.Call(func=m.Attribute(attr=m.Name("copy")), args=[])
COPY_MODULE = m.Call(func=m.Attribute(value=m.Name("copy"), attr=m.Name("copy") | m.Name("deepcopy")), args=[m.Arg()])
FULL_SLICE = m.Subscript(slice=[m.SubscriptElement(slice=m.Slice(lower=None, upper=None, step=None))])
COPY = COPY_CALL | COPY_METHOD | COPY_MODULE | FULL_SLICE
EMPTY = (
    m.List(elements=[]) | m.Dict(elements=[]) | m.Call(func=m.Name("deque") | m.Name("list") | m.Name("dict"), args=[])
)
PER_ROW = m.ListComp(for_in=m.CompFor(target=m.Name(), iter=m.Call(func=m.Name("range")), ifs=[], inner_for_in=None))
GROWS = m.Call(func=m.Attribute(attr=m.Name("append") | m.Name("extend") | m.Name("appendleft")))


def _copied(expr) -> cst.BaseExpression | None:
    """What a copy copies (`list(tokens)` -> tokens), or None when expr is not a copy."""
    if not m.matches(expr, COPY):
        return None
    if isinstance(expr, cst.Subscript):
        return expr.value
    if m.matches(expr, COPY_METHOD):
        return expr.func.value
    return expr.args[0].value


def _fresh(element) -> bool:
    """A new mutable object: a container literal or product, a copy, or an instance of a class."""
    if m.matches(element, m.List() | m.Dict() | m.Set() | m.BinaryOperation(left=m.List(), operator=m.Multiply())):
        return True
    if _copied(element) is not None:
        return True
    return m.matches(element, m.Call(func=m.Name(m.MatchRegex(r"[A-Z]\w*[a-z]\w*"))))


def _grown_attributes(module) -> set[str]:
    return {code(call.func.value) for call in m.findall(module, GROWS) if isinstance(call.func.value, cst.Attribute)}


class SharedState(Operator):
    name = "shared-state"
    variants = ("copy-dropped", "rows-shared", "clear-dropped")

    def sites(self, node, scope):
        if m.matches(node, m.Assign(targets=[m.AssignTarget(target=m.Attribute())])):
            original = _copied(node.value)
            if original is not None and isinstance(original, cst.Name):
                yield Site("copy-dropped", {node.value: original})
            elif m.matches(node.value, EMPTY):
                yield from self._clears(node, node.targets[0].target, scope)
        elif m.matches(
            node, m.Expr(value=m.Call(func=m.Attribute(attr=m.Name("clear"), value=m.Attribute()), args=[]))
        ):
            yield from self._clears(node, node.value.func.value, scope)
        elif m.matches(node, PER_ROW):
            loop_var = node.for_in.target.value
            if loop_var in {n.value for n in m.findall(node.elt, m.Name())} or not _fresh(node.elt):
                return
            original = _copied(node.elt)
            if original is not None and isinstance(original, cst.Name):
                yield Site("copy-dropped", {node.elt: original})
            count = node.for_in.iter.args[-1].value if node.for_in.iter.args else None
            if count is not None and len(node.for_in.iter.args) == 1:
                shared = cst.BinaryOperation(
                    left=cst.List([cst.Element(node.elt)]), operator=cst.Multiply(), right=count
                )
                yield Site("rows-shared", {node: shared})

    def _clears(self, node, attribute, scope):
        function = enclosing(node, scope, cst.FunctionDef)
        if function is None or function.name.value == "__init__" or RESET_LIKE.search(function.name.value):
            return
        module = enclosing(node, scope, cst.Module)
        if module is None or code(attribute) not in _grown_attributes(module):
            return
        line = scope.parent(node)
        block = scope.parent(line)
        if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1 and block is not None:
            yield Site("clear-dropped", {line: drop_statement(block, line)})

    def examples(self):
        state = "class Row:\n    def __init__(self, tokens):\n        self.tokens = list(tokens)\n"
        tool = (
            "def step(row, token):\n"
            "    if token == start:\n"
            "        row.expr = []\n"
            "        row.active = True\n"
            "    elif row.active:\n"
            "        row.expr.append(token)\n"
        )
        return (
            Example("copy-dropped", state, state.replace("list(tokens)", "tokens")),
            Example("rows-shared", "rows = [Row(tokens) for _ in range(n)]\n", "rows = [Row(tokens)] * n\n"),
            Example("copy-dropped", "out = [list(prompt) for _ in range(n)]\n", "out = [prompt for _ in range(n)]\n"),
            Example("clear-dropped", tool, tool.replace("        row.expr = []\n", "")),
            # a row per index is not shared state; a fresh list in __init__ is where state starts
            Example(
                "*",
                "grid = [[i] * n for i in range(n)]\nclass A:\n    def __init__(self):\n        self.x = []\n",
                None,
            ),
        )
