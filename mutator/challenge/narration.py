"""Difficulty as narration: how much of the package's own commentary a workspace keeps.

Comments and docstrings beside a planted line tend to state its correct form, which turns a bug hunt
into reading. A piece of narration is one docstring, one inline comment, or one block of consecutive
full-line comments. At every difficulty, the narration that describes a site is removed, for every site
of every class of the level alike, so that neither a narrating comment nor a missing one points at the
planted one. Narration describes a site (see Sites) when it sits in the function or class holding it, or
names a word of the site's clean lines: a variable, an attribute, a string or a number other than 0 or 1.
On top of that:

- `easy` keeps the rest;
- `medium` also removes, everywhere, the narration that states formulas, values or invariants (see
  states_specifics); plain prose about what a component is for stays;
- `hard` removes every comment and docstring of the package.

Lines that held only narration are removed, not left blank, so that a run of blank lines does not show
where a docstring was; `line_map` moves a mutant's lines to where they end up, so that the coverage that
selects its tests still applies.
"""

import ast
import io
import keyword
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field

DIFFICULTIES = ("easy", "medium", "hard")

# Names so common in this code that narration using them says nothing about a particular site.
GENERIC_NAMES = frozenset(
    "self cls torch F nn device dtype x y B T D k v q i t len list dict range min max int float str bool"
    " tuple zip enumerate isinstance super append extend size view to".split()
)

# What makes narration state a formula, a value or an invariant rather than describe a purpose: digits,
# arithmetic or comparison signs, code (names with _ or ., calls, indexing, backticks), and the words of
# rules and arithmetic. A hyphen inside a word ("zero-filled") is prose; one between spaces is a minus.
SPECIFIC_SIGNS = re.compile(r"[0-9=<>+*/^%`\[\]{}|]|\s-\s|\w\(|\w[_.]\w")
SPECIFIC_WORDS = re.compile(
    r"\b(must|always|never|only|exactly|every|each|all|same|equals?|once|after|before|until|first|last"
    r"|next|previous|plus|minus|times|twice|double|half|divided|multiplied|rounded|sum|product|power"
    r"|square|root|mean|average|ratio|shifted|aligned|offset|between|whole|per|fewer|more|less|larger"
    r"|smaller|above|below|least|most|up|down|ignored?|inclusive|exclusive|none|zero|one|two)\b",
    re.I,
)


def states_specifics(text: str) -> bool:
    """True when narration states a formula, a value or an invariant (what `medium` removes)."""
    return bool(SPECIFIC_SIGNS.search(text) or SPECIFIC_WORDS.search(text))


@dataclass(frozen=True)
class Narration:
    text: str
    first: int  # 1-based line numbers, inclusive
    last: int
    scope: str  # qualname of the innermost function or class it belongs to ("" at module level)
    code: str = ""  # a comment's line of code: the one it ends, or the one below a block of comments


@dataclass
class Sites:
    """Where a level's sites are: file -> the qualnames holding one; file -> the words of their clean lines."""

    scopes: dict[str, set[str]] = field(default_factory=dict)
    words: dict[str, set[str]] = field(default_factory=dict)

    def add(self, file: str, qualname: str, words: set[str]) -> None:
        self.scopes.setdefault(file, set()).add(_plain(qualname))
        self.words.setdefault(file, set()).update(words)

    def all_words(self) -> set[str]:
        return {word for words in self.words.values() for word in words}

    def describes(self, file: str, piece: Narration) -> bool:
        """True when `piece`, narration of `file`, sits beside a site or names a word of any site."""
        if any(_encloses(scope, piece.scope) for scope in self.scopes.get(file, ())):
            return True
        return any(_names(piece.text, word) or _names(piece.code, word) for word in self.all_words())


def site_words(clean_lines: list[str]) -> set[str]:
    """The words of a site's clean lines that narration may not use: names, strings, numbers but 0 and 1."""
    words = set()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO("".join(clean_lines)).readline))
    except (tokenize.TokenError, IndentationError):  # a fragment of a longer statement: words so far
        tokens = []
    for token in tokens:
        if token.type == tokenize.NAME and not keyword.iskeyword(token.string) and token.string not in GENERIC_NAMES:
            words.add(token.string)
        elif token.type == tokenize.STRING:
            value = _string_value(token.string)
            if value is not None and len(value.strip()) >= 3:  # a letter or two would match common words
                words.add(value)
        elif token.type == tokenize.NUMBER and token.string not in ("0", "1", "0.0", "1.0"):
            words.add(token.string)
    return words


def _string_value(literal: str) -> str | None:
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError):  # an f-string: its text depends on the values put in
        return None
    return value if isinstance(value, str) else None


def sites_of(mutants) -> Sites:
    """The sites of these mutants (every site and variant of a level's classes, for a workspace)."""
    from mutator.challenge.compose import changed_ranges  # compose imports nothing of this module

    sites = Sites()
    for mutant in mutants:
        before = mutant.original.splitlines(keepends=True)
        for i1, i2, _ in changed_ranges(mutant):
            # an insertion changes no clean line: the lines around it are its site
            lines = before[i1:i2] if i2 > i1 else before[max(i1 - 1, 0) : i1 + 1]
            sites.add(mutant.file, mutant.qualname or "", site_words(lines))
    return sites


def treat(source: str, file: str, difficulty: str, sites: Sites) -> str:
    """`source` as a workspace of this difficulty shows it."""
    return "".join(line for line in _treated_lines(source, _dropper(file, difficulty, sites)) if line is not None)


def line_map(source: str, file: str, difficulty: str, sites: Sites) -> list[int]:
    """Line number (1-based) in `source` -> its line number once treated, at index number - 1; a removed
    line maps to the next line kept."""
    kept, numbers = 0, []
    for line in _treated_lines(source, _dropper(file, difficulty, sites)):
        numbers.append(kept + 1)
        kept += line is not None
    return numbers


def strip_narration(source: str) -> str:
    """`source` without comments and docstrings."""
    return "".join(line for line in _treated_lines(source, lambda piece: True) if line is not None)


def _dropper(file: str, difficulty: str, sites: Sites) -> Callable[[Narration], bool]:
    if difficulty == "hard":
        return lambda piece: True
    if difficulty == "medium":
        return lambda piece: states_specifics(piece.text) or sites.describes(file, piece)
    return lambda piece: sites.describes(file, piece)


def narration(source: str) -> list[Narration]:
    """Every piece of narration of `source`: docstrings, inline comments, blocks of full-line comments."""
    tree = ast.parse(source)
    scopes = _scopes(tree)
    lines = source.splitlines()
    pieces, block = [], []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        row, col = token.start
        full_line = not lines[row - 1][:col].strip()
        if block and not (full_line and block[-1].start[0] == row - 1 and block[-1].start[1] == col):
            pieces.append(_comment_piece(block, scopes, lines))
            block = []
        if full_line:
            block.append(token)
        else:
            pieces.append(_comment_piece([token], scopes, lines))
    if block:
        pieces.append(_comment_piece(block, scopes, lines))
    for node, qualname in _definitions(tree):
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            pieces.append(Narration(first.value.value, first.lineno, first.end_lineno, qualname))
    return sorted(pieces, key=lambda piece: piece.first)


def _comment_piece(tokens, scopes, lines) -> Narration:
    text = "\n".join(token.string.lstrip("#").strip() for token in tokens)
    first, last = tokens[0].start[0], tokens[-1].start[0]
    code = lines[first - 1][: tokens[0].start[1]]
    if not code.strip():  # a block of comments introduces the code below it
        below = (line for line in lines[last:] if line.strip() and not line.lstrip().startswith("#"))
        code = next(below, "")
    return Narration(text, first, last, scopes.get(first, ""), code)


def _definitions(tree):
    """(node, qualname) of the module and of every function and class in it."""
    found = [(tree, "")]

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = f"{prefix}.{child.name}" if prefix else child.name
                found.append((child, qualname))
                visit(child, qualname)
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _scopes(tree) -> dict[int, str]:
    """Line number -> qualname of the innermost function or class spanning it (module lines are absent).

    A comment directly above a definition belongs to it (it introduces it), not to the enclosing scope.
    """
    scopes = {}
    for node, qualname in sorted(_definitions(tree)[1:], key=lambda pair: pair[0].lineno):  # outer first
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        for row in range(start - 1, node.end_lineno + 1):
            scopes[row] = qualname
    return scopes


def _plain(qualname: str) -> str:
    return qualname.replace(".<locals>", "")


def _encloses(site_scope: str, scope: str) -> bool:
    """True when narration of `scope` is beside a site in `site_scope`: the same function, one inside
    it, or a class that holds it."""
    if not scope:
        return False
    return site_scope == scope or site_scope.startswith(scope + ".") or scope.startswith(site_scope + ".")


def _names(text: str, word: str) -> bool:
    return re.search(r"(?<![\w|<])" + re.escape(word) + r"(?![\w|>])", text) is not None


def _treated_lines(source: str, drop: Callable[[Narration], bool]) -> list[str | None]:
    """The lines of `source` with the dropped narration taken out; None for a line that held nothing else."""
    lines: list[str | None] = source.splitlines(keepends=True)
    dropped = [piece for piece in narration(source) if drop(piece)]
    comment_rows = {row for piece in dropped for row in range(piece.first, piece.last + 1)}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and token.start[0] in comment_rows:
            row, col = token.start
            line = lines[row - 1]
            ending = line[len(line.rstrip("\r\n")) :]
            lines[row - 1] = line[:col].rstrip() + ending if line[:col].strip() else None
    docstrings = {piece.first for piece in dropped}
    for node, _ in _definitions(ast.parse(source)):
        first = node.body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
            continue
        if not isinstance(first.value.value, str) or first.lineno not in docstrings:
            continue
        start, end = first.lineno - 1, first.end_lineno - 1
        indent = lines[start][: first.col_offset]
        if indent.strip() or lines[end][first.end_col_offset :].strip():
            continue  # shares a line with other code: rare, and not worth rewriting that line
        # a body that was only a docstring still needs a statement
        lines[start] = indent + "pass\n" if len(node.body) == 1 else None
        for row in range(start + 1, end + 1):
            lines[row] = None
    return lines


def leaks(files: dict[str, str], planted, difficulty: str) -> list[str]:
    """The narration of a workspace's package that gives a planted site away, or that its difficulty
    removes: empty when the workspace is clean. `planted` are the mutants planted into `files`."""
    sites = sites_of(planted)
    found = []
    for path, source in sorted(files.items()):
        for piece in narration(source):
            where = f"{path}:{piece.first} {piece.text.splitlines()[0][:60]!r}"
            if sites.describes(path, piece):
                found.append(f"{where} describes a planted site")
            elif difficulty == "hard" or (difficulty == "medium" and states_specifics(piece.text)):
                found.append(f"{where} is narration that {difficulty} removes")
    return found
