"""Difficulty as narration: how much of the package's own commentary a workspace keeps.

Comments and docstrings beside a planted line tend to state its correct form, which turns a bug hunt
into reading. `easy` keeps them; `hard` removes every comment and docstring of the package, in every
file alike, so that neither a narrating comment nor a missing one points at a planted site.

Lines that held only narration are removed, not left blank, so that a run of blank lines does not show
where a docstring was; `line_map` moves a mutant's lines to where they end up, so that the coverage that
selects its tests still applies.
"""

import ast
import io
import tokenize

DIFFICULTIES = ("easy", "hard")


def strip_narration(source: str) -> str:
    """`source` without comments and docstrings."""
    return "".join(line for line in _stripped_lines(source) if line is not None)


def line_map(source: str) -> list[int]:
    """Line number (1-based) in `source` -> its line number once stripped, at index number - 1; a removed
    line maps to the next line kept."""
    lines = _stripped_lines(source)
    kept = 0
    numbers = []
    for line in lines:
        numbers.append(kept + 1)
        kept += line is not None
    return numbers


def _stripped_lines(source: str) -> list[str | None]:
    """The lines of `source` with narration taken out; None for a line that held nothing else."""
    lines: list[str | None] = source.splitlines(keepends=True)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            line = lines[row - 1]
            ending = line[len(line.rstrip("\r\n")) :]
            lines[row - 1] = line[:col].rstrip() + ending if line[:col].strip() else None
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        first = node.body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
            continue
        if not isinstance(first.value.value, str):
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


def narration(source: str) -> list[str]:
    """Every comment and docstring of `source`, as text: what the leak test reads."""
    found = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if (text := ast.get_docstring(node, clean=False)) is not None:
                found.append(text)
    return found
