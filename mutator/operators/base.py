"""What every operator shares: walk a module, find sites, render one mutation per site and variant.

An operator only says *where* (`sites`: it looks at one node at a time, with LibCST matchers) and *what*
(each `Site` maps original nodes to their replacements, for one variant). This module does the rest: it
parses the source, tracks the enclosing qualified name, records the 1-based line span of the replaced
nodes, and renders the mutated file with `module.code` after replacing exactly those nodes, so every
other byte (formatting, comments) is kept. Operators never do I/O: source text in, mutations out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, ParentNodeProvider, PositionProvider

Replacement = cst.CSTNode | cst.RemovalSentinel | cst.FlattenSentinel


@dataclass(frozen=True)
class Site:
    """One way to mutate one place: original node -> replacement, for every node that changes."""

    variant: str
    edits: Mapping[cst.CSTNode, Replacement]


@dataclass(frozen=True)
class Mutation:
    """An operator's output: the catalogue turns it into a `Mutant` (adding bug class and file)."""

    operator: str
    variant: str
    qualname: str  # enclosing function or class, as Python's __qualname__ spells it; "" at module level
    start_line: int  # 1-based, inclusive, in the original source
    end_line: int
    code: str  # the whole mutated module


@dataclass(frozen=True)
class Example:
    """A before/after pair that documents an operator and doubles as its test.

    `after` is the expected mutated source for `variant`; None means the operator must plant nothing.
    """

    variant: str
    before: str
    after: str | None


class Scope(Protocol):
    """What an operator may ask about where a node is."""

    qualname: str  # of the innermost enclosing function or class
    function: str  # name of the innermost enclosing function, "" outside any

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None: ...


class Operator:
    """A bug class as a code transformation. Subclasses set `name` and `variants` and define `sites`."""

    name: ClassVar[str]
    # Variant names; a `*` stands for a part made per site (e.g. "drop-*" -> "drop-pos").
    variants: ClassVar[tuple[str, ...]]

    def sites(self, node: cst.CSTNode, scope: Scope) -> Iterator[Site]:
        """The sites at `node` (called once for every node of the module, in source order)."""
        raise NotImplementedError

    def examples(self) -> tuple[Example, ...]:
        return ()

    def mutations(self, source: str, path: str, where: Callable[[str], bool] | None = None) -> Iterator[Mutation]:
        """Every mutation of `source` (the file at relative `path`), one per site, in source order.

        `where(qualname)` limits the sites to the functions it accepts (the catalogue's scope).
        Raises libcst.ParserSyntaxError when the source does not parse. A rendering that would not
        compile or that changes nothing is not a mutation and is skipped.
        """
        analysis = _analyse(source)
        for node, scope in analysis.nodes:
            if where is not None and not where(scope.qualname):
                continue
            for site in self.sites(node, scope):
                code = analysis.module.visit(_Replace(site.edits, analysis.parents)).code
                if code == source or not _compiles(code, path):
                    continue
                spans = [analysis.positions[original] for original in site.edits]
                start, end = min(s.start.line for s in spans), max(s.end.line for s in spans)
                yield Mutation(self.name, site.variant, scope.qualname, start, end, code)


# --- small builders the operators share ---


def parens(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`expr` wrapped in one more pair of parentheses."""
    return expr.with_changes(lpar=[cst.LeftParen(), *expr.lpar], rpar=[*expr.rpar, cst.RightParen()])


def binop(left: cst.BaseExpression, operator: cst.BaseBinaryOp, right: cst.BaseExpression | int):
    """`left <op> right`, with the default single spaces around the operator."""
    right = cst.Integer(str(right)) if isinstance(right, int) else right
    return cst.BinaryOperation(left=left, operator=operator, right=right)


# A comparison's operator negated (`==` -> `!=`, `<` -> `>=`, `is` -> `is not`), or its boundary moved by
# one (`<` -> `<=`: one more or one fewer position, step or key on that side).
INVERSE = {
    cst.Equal: cst.NotEqual,
    cst.NotEqual: cst.Equal,
    cst.LessThan: cst.GreaterThanEqual,
    cst.GreaterThanEqual: cst.LessThan,
    cst.GreaterThan: cst.LessThanEqual,
    cst.LessThanEqual: cst.GreaterThan,
    cst.Is: cst.IsNot,
    cst.IsNot: cst.Is,
    cst.In: cst.NotIn,
    cst.NotIn: cst.In,
}
BOUNDARY = {
    cst.LessThan: cst.LessThanEqual,
    cst.LessThanEqual: cst.LessThan,
    cst.GreaterThan: cst.GreaterThanEqual,
    cst.GreaterThanEqual: cst.GreaterThan,
    cst.Equal: cst.NotEqual,
    cst.NotEqual: cst.Equal,
}


def rewritable(comparison: cst.CSTNode, table: dict = INVERSE) -> bool:
    """A single comparison (`a op b`, not a chain like `a < b < c`) whose operator `table` rewrites."""
    return (
        isinstance(comparison, cst.Comparison)
        and len(comparison.comparisons) == 1
        and type(comparison.comparisons[0].operator) in table
    )


def rewritten(comparison: cst.Comparison, table: dict = INVERSE) -> dict:
    """The edit that gives a single comparison the operator `table` maps its own to (spacing kept)."""
    operator = comparison.comparisons[0].operator
    new = table[type(operator)](
        whitespace_before=operator.whitespace_before, whitespace_after=operator.whitespace_after
    )
    return {operator: new}


def comparisons(expr: cst.CSTNode, table: dict = INVERSE) -> list[cst.Comparison]:
    """The single comparisons in an expression that `table` rewrites, in source order; a lambda's body is
    its own function and is left alone."""
    found = []

    class _Find(cst.CSTVisitor):
        def visit_Lambda(self, node):
            return False

        def visit_Comparison(self, node):
            if rewritable(node, table):
                found.append(node)

    expr.visit(_Find())
    return found


def drop_statement(block: cst.BaseSuite, statement: cst.BaseStatement) -> Replacement:
    """Delete `statement` from `block`, or make it `pass` where the block would otherwise be empty."""
    if isinstance(block, (cst.IndentedBlock, cst.Module)) and len(block.body) > 1:
        return cst.RemovalSentinel.REMOVE
    leading = statement.leading_lines if isinstance(statement, cst.SimpleStatementLine) else ()
    return cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=leading)


# --- the machinery ---


@dataclass(frozen=True)
class _Scope:
    qualname: str
    function: str
    parents: Mapping[cst.CSTNode, cst.CSTNode]

    def parent(self, node):
        return self.parents.get(node)


@dataclass(frozen=True)
class _Analysis:
    module: cst.Module
    positions: Mapping[cst.CSTNode, CodeRange]
    parents: Mapping[cst.CSTNode, cst.CSTNode]
    nodes: tuple[tuple[cst.CSTNode, _Scope], ...]  # every node in source order, with its scope


@functools.lru_cache(maxsize=16)
def _analyse(source: str) -> _Analysis:
    """Parse once and walk once per source: every operator over the same file shares the result
    (LibCST trees are immutable)."""
    wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)  # the parse is ours alone
    metadata = wrapper.resolve_many((PositionProvider, ParentNodeProvider))
    parents = metadata[ParentNodeProvider]
    collector = _Collector(parents)
    wrapper.module.visit(collector)
    return _Analysis(wrapper.module, metadata[PositionProvider], parents, tuple(collector.nodes))


def _compiles(code: str, path: str) -> bool:
    try:
        compile(code, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


class _Collector(cst.CSTVisitor):
    """Lists every node with its enclosing qualname (as Python's __qualname__ spells it)."""

    def __init__(self, parents):
        super().__init__()
        self.parents = parents
        self.defs: list[cst.FunctionDef | cst.ClassDef] = []  # enclosing definitions, outermost first
        self.nodes: list[tuple[cst.CSTNode, _Scope]] = []
        self.scope = _Scope("", "", parents)

    def _enter_scope(self):
        parts = []
        for i, definition in enumerate(self.defs):
            parts.append(definition.name.value)
            if isinstance(definition, cst.FunctionDef) and i < len(self.defs) - 1:
                parts.append("<locals>")
        functions = [d.name.value for d in self.defs if isinstance(d, cst.FunctionDef)]
        self.scope = _Scope(".".join(parts), functions[-1] if functions else "", self.parents)

    def on_visit(self, node):
        self.nodes.append((node, self.scope))
        # A def's own sites (decorators, defaults) belong to the enclosing scope; its body to itself.
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            self.defs.append(node)
            self._enter_scope()
        return True

    def on_leave(self, original_node):
        if isinstance(original_node, (cst.FunctionDef, cst.ClassDef)):
            self.defs.pop()
            self._enter_scope()


class _Replace(cst.CSTTransformer):
    """Replaces the given original nodes (by identity) and nothing else.

    It descends only along the paths to the edited nodes: rebuilding the whole tree for every
    mutant would cost more than finding all of them.
    """

    def __init__(self, edits: Mapping[cst.CSTNode, Replacement], parents: Mapping[cst.CSTNode, cst.CSTNode]):
        super().__init__()
        self.edits = edits
        self.on_path = set()
        for node in edits:
            while node in parents and parents[node] not in self.on_path:
                node = parents[node]
                self.on_path.add(node)

    def on_visit(self, node):
        return node in self.on_path

    def on_leave(self, original_node, updated_node):
        return self.edits.get(original_node, updated_node)
