"""What a mutant's result depends on: the tests that can see it, and the fingerprint of the code they run.

    select_tests(mutant, base, coverage)    the covering tests, fastest first
    Fingerprints(...)(mutant, device, tests) a hash that changes only when the result could

A fingerprint is taken at function granularity, on normalised code (the AST, so comments and formatting
do not count). Code is cut into *units*: each function or method that is not nested in another function
(nested ones belong to their enclosing unit), and each module's *module-level code*, which is the
module with every unit replaced by a stub of its name. A result depends on:

- the mutant itself, by meaning: its operator and variant, and the units it changes, before and after
  (not its id, which hashes the whole file text and so moves with a comment);
- the units its selected tests execute (per-test line coverage from the baseline), and the module-level
  code of every target module imported (a constant or a class attribute is read from there);
- its tests: the normalised code of their modules, every other file of the suite (conftest, ini, data),
  and the user's pytest arguments.

A change to a function no selected test executes leaves the result standing; so does a comment.
Reverting a change brings back the earlier fingerprint, and the store keeps results by fingerprint.

`remap_coverage` carries a baseline's line coverage over to a file whose AST did not change but whose
lines moved (a comment added above): the baseline is reused, its line numbers follow the code.
"""

import ast
import difflib
import hashlib
from functools import lru_cache
from pathlib import Path

from mutator.mutants import Mutant

MODULE = "<module>"  # the unit name of module-level code


# --- choosing tests -------------------------------------------------------------------------------


def find_def(tree: ast.Module, qualname: str) -> ast.AST | None:
    """The def or class node at a qualname ("A.f.<locals>.g"); None if absent or defined twice."""
    node = tree
    for part in qualname.replace("<locals>.", "").split("."):
        found = [child for child in _direct_defs(node) if child.name == part]
        if len(found) != 1:
            return None
        node = found[0]
    return node


def _direct_defs(node: ast.AST) -> list[ast.AST]:
    """Defs whose nearest enclosing def or class is `node` (those inside if/try/with blocks included)."""
    defs, todo = [], list(ast.iter_child_nodes(node))
    while todo:
        child = todo.pop()
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs.append(child)
        else:
            todo += ast.iter_child_nodes(child)
    return defs


def _statement_lines(source: str, start: int, end: int) -> set[int]:
    """The first lines of the statements a line range touches.

    coverage.py records a multi-line statement at the lines it executes, not necessarily the one a
    mutant changed (say, the third line of a call); a compound statement counts only by its header.
    """
    return {first for first, last in _statement_spans(source) if first <= end and last >= start}


@lru_cache(maxsize=64)
def _statement_spans(source: str) -> list[tuple[int, int]]:
    """(first line, last line) of every statement in the source, a compound one's header only: made once
    per file for all of its mutants."""
    spans = []
    for node in ast.walk(_parsed(source)):
        if isinstance(node, ast.stmt):
            body = getattr(node, "body", None)
            spans.append((node.lineno, body[0].lineno - 1 if isinstance(body, list) and body else node.end_lineno))
    return spans


@lru_cache(maxsize=64)
def _parsed(source: str) -> ast.Module:
    """Mutants of one file share its original text: parse it once (callers must not modify the tree)."""
    return ast.parse(source)


def select_tests(mutant: Mutant, base: dict, coverage: dict[str, dict[str, set[int]]]) -> list[str]:
    """The tests that can see this mutant, fastest first; [] when none executes its code."""
    tree = _parsed(mutant.original)
    lines = set(range(mutant.start_line, mutant.end_line + 1))
    lines |= _statement_lines(mutant.original, mutant.start_line, mutant.end_line)
    tests = base["tests"]

    def covering(wanted: set[int]) -> set[str]:
        return {t for t in tests if wanted & coverage.get(t, {}).get(mutant.file, set())}

    if not mutant.qualname:
        # Module-level code runs when the module is imported, so every test that imports the module
        # depends on it. We approximate "imports the module" by every test of the suite, if the
        # lines ran at all (import time included).
        ran = any(lines & files.get(mutant.file, set()) for files in coverage.values())
        return sorted(tests, key=lambda t: tests[t]["duration"]) if ran else []
    selected = covering(lines)
    node = find_def(tree, mutant.qualname)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        if lines & set(range(first, node.body[0].lineno)):
            # The header (decorators, signature, defaults) runs once at import; every call uses it,
            # and every call executes the body.
            selected |= covering(set(range(node.body[0].lineno, node.end_lineno + 1)))
    return sorted(selected, key=lambda t: (tests[t]["duration"], t))


# --- normalised code, unit by unit ----------------------------------------------------------------


class Units:
    """One module's units: name -> digest of its normalised code, and which unit each line is in."""

    def __init__(self, source: str):
        tree = ast.parse(source)
        self.digests: dict[str, str] = {}
        self.spans: list[tuple[int, int, str]] = []  # (first line, last line, unit name)
        self._collect(tree, "")
        # module-level code: the module with every unit's def cut down to a stub of its name, so a
        # changed body does not count here, but a def added, removed or renamed does
        self.digests[MODULE] = _digest(ast.dump(_Stubber().visit(ast.parse(source))))

    def _collect(self, node: ast.AST, prefix: str):
        for child in _direct_defs(node):
            name = prefix + child.name
            if isinstance(child, ast.ClassDef):
                self._collect(child, name + ".")
                continue
            first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
            # two defs of one name (an `if` that picks one): both count under that name
            self.digests[name] = _digest(self.digests.get(name, "") + ast.dump(child))
            self.spans.append((first, child.end_lineno, name))

    def unit_of(self, line: int) -> str:
        for first, last, name in self.spans:
            if first <= line <= last:
                return name
        return MODULE


class _Stubber(ast.NodeTransformer):
    def visit_FunctionDef(self, node):
        return ast.FunctionDef(node.name, ast.arguments([], [], None, [], [], None, []), [ast.Pass()], [], None)

    visit_AsyncFunctionDef = visit_FunctionDef


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=256)
def units(source: str) -> Units:
    return Units(source)


def normalised_digest(path: Path) -> str:
    """A file's content as it matters to Python: the AST of a .py file that parses, else its bytes."""
    data = path.read_bytes()
    return _python_digest(data) if path.suffix == ".py" else hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=256)
def _python_digest(data: bytes) -> str:
    """The digest of a Python file's AST (of its bytes if it does not parse); a run asks for each file
    more than once (the baseline's fingerprint, then each mutant's)."""
    try:
        return _digest(ast.dump(ast.parse(data)))
    except (SyntaxError, ValueError):
        return hashlib.sha256(data).hexdigest()


def mutant_key(mutant: Mutant) -> str:
    """The mutant by meaning: what it plants, and the units it changes before and after."""
    parts = [mutant.operator, mutant.variant, mutant.file, mutant.qualname]
    try:
        before, after = units(mutant.original), Units(mutant.mutated)
    except (SyntaxError, ValueError):  # never run, so never reused: any key that is its own will do
        return _digest("\n".join([*parts, mutant.original, mutant.mutated]))
    for name in sorted(set(before.digests) | set(after.digests)):
        old, new = before.digests.get(name, "-"), after.digests.get(name, "-")
        if old != new:
            parts.append(f"{name}:{old}:{new}")
    return _digest("\n".join(parts))


class Fingerprints:
    """A mutant's fingerprint on a device with its selected tests (see the module docstring)."""

    def __init__(
        self, target_root: Path, tests: list[Path], pytest_args: list[str], base: dict, coverage: dict, keys=None
    ):
        """keys: mutant id -> mutant_key, known from earlier runs (the id hashes both texts, so a key
        never goes stale); the keys computed here are added to it."""
        from mutator import baseline as baseline_mod  # the suite's files: how the baseline finds them

        self.target_root = target_root
        self.base = base
        self.coverage = coverage
        test_modules = {Path(test["file"]) for test in base["tests"].values()}
        shared = [f for f in baseline_mod.suite_files(tests) if f not in test_modules]
        self.suite_common = baseline_mod.digest_sources(shared, baseline_mod.suite_root(tests))
        self.pytest_args = "\0".join(pytest_args)
        self.keys = {} if keys is None else keys
        self._file_digests: dict[Path, str] = {}
        self._sources: dict[str, Units | None] = {}
        imported = sorted(coverage.get("", {}))  # the target modules imported at collection
        self.imported = [f"{file}:{self._units(file).digests[MODULE]}" for file in imported if self._units(file)]

    def _digest(self, path: Path) -> str:
        if path not in self._file_digests:
            self._file_digests[path] = normalised_digest(path) if path.is_file() else "<absent>"
        return self._file_digests[path]

    def _units(self, file: str) -> Units | None:
        if file not in self._sources:
            try:
                self._sources[file] = units((self.target_root / file).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
                self._sources[file] = None
        return self._sources[file]

    def executed(self, tests: list[str]) -> list[str]:
        """`file:unit:digest` of every unit (module-level code included) the tests execute."""
        lines: dict[str, set[int]] = {}
        for test in tests:
            for file, file_lines in self.coverage.get(test, {}).items():
                lines.setdefault(file, set()).update(file_lines)
        found = set()
        for file, file_lines in lines.items():
            file_units = self._units(file)
            if file_units is None:  # not Python we can read: the whole file counts
                found.add(f"{file}:*:{self._digest(self.target_root / file)}")
                continue
            for name in {file_units.unit_of(line) for line in file_lines} | {MODULE}:
                found.add(f"{file}:{name}:{file_units.digests[name]}")
        return sorted(found)

    def __call__(self, mutant: Mutant, device: str, tests: list[str]) -> str:
        test_files = sorted({Path(self.base["tests"][t]["file"]) for t in tests})
        if mutant.id not in self.keys:
            self.keys[mutant.id] = mutant_key(mutant)
        # the tests as a set: their order follows the baseline's durations, which move from one
        # measurement to the next, and changes only which killing test is named first
        parts = [self.keys[mutant.id], device, self.suite_common, self.pytest_args, *sorted(tests)]
        parts += [f"{path}:{self._digest(path)}" for path in test_files]
        parts += self.imported + self.executed(tests)
        return _digest("\n".join(parts))


# --- line numbers that moved ----------------------------------------------------------------------


def line_map(old: str, new: str) -> dict[int, int]:
    """Old line -> new line for two texts of the same AST: lines that are unchanged text keep their
    match; every node's first and last line follows the node (a statement reflowed over more lines)."""
    mapping: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(a=old.splitlines(), b=new.splitlines(), autojunk=False)
    for block in matcher.get_matching_blocks():
        for i in range(block.size):
            mapping[block.a + i + 1] = block.b + i + 1
    by_node: dict[int, int] = {}  # exact, since the trees are equal: it wins over a text match
    for old_node, new_node in zip(ast.walk(ast.parse(old)), ast.walk(ast.parse(new)), strict=False):
        for attr in ("lineno", "end_lineno"):
            a, b = getattr(old_node, attr, None), getattr(new_node, attr, None)
            if a is not None and b is not None:
                by_node.setdefault(a, b)
    mapping.update(by_node)
    return mapping


def remap_coverage(coverage: dict[str, dict[str, set[int]]], old_sources: dict[str, str], target_root: Path):
    """Coverage measured on `old_sources` (file -> text), moved to the lines of the files as they are now."""
    maps = {}
    for file, old in old_sources.items():
        try:
            new = (target_root / file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if new != old:
            maps[file] = line_map(old, new)
    if not maps:
        return coverage
    return {
        test: {
            file: ({maps[file][line] for line in lines if line in maps[file]} if file in maps else lines)
            for file, lines in files.items()
        }
        for test, files in coverage.items()
    }


# --- what changed since a git revision (`mutator run --since REV`) --------------------------------


def changed_since(target_root: Path, rev: str, paths: list[Path]) -> dict[Path, set[int] | None]:
    """Files under `paths` changed between `rev` and the working tree of the target's git repository:
    absolute path -> the changed lines of the file as it is now (None: all of it, an untracked file).

    A pure deletion counts as a change of the lines on either side of it."""
    import subprocess

    from mutator.errors import UserError

    def git(*args: str) -> str:
        try:
            proc = subprocess.run(["git", "-C", str(target_root), *args], capture_output=True, text=True)
        except FileNotFoundError:
            raise UserError("--since needs git, which is not installed") from None
        if proc.returncode != 0:
            raise _GitError(" ".join(proc.stderr.split())[:200])
        return proc.stdout

    try:
        top = Path(git("rev-parse", "--show-toplevel").strip())
    except _GitError:
        raise UserError(f"--since: the target {target_root} is not in a git repository") from None
    try:
        git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except _GitError:
        raise UserError(f"--since: unknown git revision {rev!r} in {top}") from None
    changed: dict[Path, set[int] | None] = {}
    spec = [str(path) for path in paths if path.resolve().is_relative_to(top)]
    current = None
    for line in git("diff", "--unified=0", "--no-color", "--no-ext-diff", rev, "--", *spec).splitlines():
        if line.startswith("+++ "):
            name = line[4:]
            current = None if name == "/dev/null" else (top / name[2:]).resolve()
            if current is not None:
                changed.setdefault(current, set())
        elif line.startswith("@@ ") and current is not None and changed[current] is not None:
            new = line.split()[2]  # "+start,count"
            start, _, count = new[1:].partition(",")
            start, count = int(start), int(count or 1)
            changed[current] |= set(range(start, start + count)) if count else {start, start + 1}
    for name in git("ls-files", "--others", "--exclude-standard", "--full-name", "--", *spec).splitlines():
        changed[(top / name).resolve()] = None
    return changed


class _GitError(Exception):
    pass


def touched(mutant: Mutant, changed: dict[Path, set[int] | None], target_root: Path) -> bool:
    """Whether a change since the revision touches the mutant's lines."""
    path = (target_root / mutant.file).resolve()
    if path not in changed:
        return False
    lines = changed[path]
    return lines is None or bool(lines & set(range(mutant.start_line, mutant.end_line + 1)))
