"""The level catalogue: bug classes grouped into levels, as data, and the mutants a level plants.

Each level is one TOML file in `mutations/` at the repository root (an installed mutator carries a copy
as data files, see pyproject.toml). A bug class names its operators; its operators recognise their sites
by what the code computes, so by default a class applies to every Python file of the target. Optional
globs narrow it: a class's own `files` / `functions` in the catalogue, and the user's `--include` /
`--exclude` (or `include` / `exclude` in a `[tool.mutator]` table of the target's pyproject.toml).
`generate_mutants` walks a target tree, runs each class's operators where they apply, and returns the
mutants in a deterministic order with equivalent duplicates collapsed; a place planted by two classes
stays with the first class of the level only.
"""

import ast
import functools
import importlib.util
import os
import re
import sysconfig
import tomllib
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path

import libcst as cst

from mutator.errors import UserError
from mutator.mutants import Mutant
from mutator.operators import OPERATORS

CATALOG_DIRS = (
    Path(__file__).parents[1] / "mutations",  # a source checkout (and an editable install)
    Path(sysconfig.get_path("data")) / "share" / "mutator" / "mutations",  # an installed wheel's data files
)
ALL = "all"

# Directories never walked for code to mutate: caches, VCS, virtual environments, build outputs.
SKIPPED_DIRS = ("__pycache__", "build", "dist", "node_modules", "site-packages", "*.egg-info", ".*")

LEVEL_KEYS = {"name": True, "title": True, "description": False}  # key -> required
CLASS_KEYS = {
    "name": True,
    "title": True,
    "operators": True,
    "files": False,
    "functions": False,
    "variants": False,
    "symptom": True,
    "hint": True,
    "canonical": False,
    "reports": False,
}
CANONICAL_KEYS = {"operator": True, "variant": True, "function": False, "site": True}


@dataclass(frozen=True)
class Canonical:
    """The seed's own bug among a class's mutants, recognised by its site: the operator and variant
    that plant it, and the code the planted lines held (so another project's `mask == 0` inverted by the
    same variant is not "the seed's bug")."""

    operator: str
    variant: str
    site: str  # text the original lines of the mutant contain, e.g. "enable_gqa ="
    function: str = "*"  # qualname glob, where the same variant is planted in several functions

    def matches(self, mutant: Mutant) -> bool:
        if (mutant.operator, mutant.variant) != (self.operator, self.variant):
            return False
        planted = "\n".join(mutant.original.splitlines()[mutant.start_line - 1 : mutant.end_line])
        return fnmatchcase(mutant.qualname, self.function) and self.site in planted


@dataclass(frozen=True)
class BugClass:
    name: str
    title: str
    operators: tuple[str, ...]
    files: tuple[str, ...] = ("*",)  # globs on the posix path relative to the target
    functions: tuple[str, ...] = ("*",)  # globs on the enclosing qualname ("" at module level)
    variants: tuple[str, ...] = ("*",)  # globs on variant names: an operator shared by classes plants its part
    symptom: str = ""
    hint: str = ""
    canonical: Canonical | None = None
    reports: tuple[str, ...] = ()  # the public bug reports the class models ("project #number")

    def applies_to_file(self, path: str) -> bool:
        return any(_path_matches(path, pattern) for pattern in self.files)

    def applies_to_function(self, qualname: str) -> bool:
        return any(fnmatchcase(qualname, pattern) for pattern in self.functions)

    def plants_variant(self, variant: str) -> bool:
        return any(fnmatchcase(variant, pattern) for pattern in self.variants)


@dataclass(frozen=True)
class Level:
    name: str
    title: str
    description: str
    classes: tuple[BugClass, ...]
    path: Path


# --- the catalogue ---


def catalog_dir() -> Path:
    for directory in CATALOG_DIRS:
        if directory.is_dir():
            return directory
    raise UserError(f"no level catalogue found (looked in {', '.join(str(d) for d in CATALOG_DIRS)})")


def levels() -> list[Level]:
    """Every level in the catalogue, ordered by name (numerically where names are numbers)."""
    found = [read_level(path) for path in sorted(catalog_dir().glob("level*.toml"))]
    by_name = {}
    for level in found:
        if level.name in by_name:
            raise UserError(f"{level.path}: level.name: '{level.name}' is also the name in {by_name[level.name].path}")
        by_name[level.name] = level
    return sorted(found, key=lambda level: (not level.name.isdigit(), level.name.zfill(8)))


def load_level(name: str) -> Level:
    """The level called `name` (what --level takes, e.g. "3")."""
    known = levels()
    for level in known:
        if level.name == str(name):
            return level
    names = ", ".join([level.name for level in known] + [ALL])
    raise UserError(f"unknown level '{name}' (known: {names})")


def select_levels(name: str) -> list[Level]:
    """`--level`: one level by name, or every level for "all"."""
    return levels() if str(name) == ALL else [load_level(name)]


def operator_names() -> list[str]:
    return sorted(OPERATORS)


def default_target() -> Path:
    """The bundled code: the directory that holds the importable `nanochat` package."""
    spec = importlib.util.find_spec("nanochat")  # locates it without importing it (and torch)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("no bundled nanochat package found: pass --target DIR")
    return Path(next(iter(spec.submodule_search_locations))).resolve().parent


# --- generating mutants ---

# Never mutated: a suite's own files. Tests are what measures the mutants, not code to plant bugs in.
TEST_FILES = ("**/test_*.py", "**/*_test.py", "**/conftest.py", "**/tests/*", "**/test/*")


@dataclass(frozen=True)
class Scope:
    """Which files of a target get mutants: `include` globs (empty: every file), minus `exclude` globs.

    Globs are on the posix path relative to the target; "*" crosses "/".
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def accepts(self, path: str) -> bool:
        if any(_path_matches(path, pattern) for pattern in TEST_FILES + self.exclude):
            return False
        return not self.include or any(_path_matches(path, pattern) for pattern in self.include)


def target_scope(target: Path | str, include=(), exclude=()) -> Scope:
    """The scope the user asked for: `--include` / `--exclude` where given, else the `include` /
    `exclude` lists of a `[tool.mutator]` table in the target's pyproject.toml, else everything."""
    config = {}
    pyproject = Path(target) / "pyproject.toml"
    if pyproject.is_file():
        try:
            config = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("mutator", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise UserError(f"{pyproject}: cannot read: {_one_line(error)}") from None
    check = _Checker(pyproject)
    check.keys(config, "tool.mutator", {"include": False, "exclude": False})
    chosen = {}
    for key, given in (("include", include), ("exclude", exclude)):
        patterns = list(given) or (check.strings(config, f"tool.mutator.{key}", key) if key in config else [])
        for i, pattern in enumerate(patterns):
            check.pattern(pattern, f"--{key} / tool.mutator.{key}[{i}]", is_path=True)
        chosen[key] = tuple(patterns)
    return Scope(**chosen)


def generate_mutants(level: Level | str, target_dir: Path | str, scope: Scope | None = None) -> list[Mutant]:
    """Every mutant `level` (a Level, a level name, or "all") plants into the tree at `target_dir`.

    `scope` picks the files (default: the target's own `target_scope`). Sorted by file, line, class and
    variant; of mutants with the same normalised AST only the first is kept (a canonical one wins), one
    equivalent to the original file is dropped, and a place that two classes plant stays with the one
    listed first (a site belongs to one bug class).
    """
    chosen = [level] if isinstance(level, Level) else select_levels(level)
    target = Path(target_dir)
    if not target.is_dir():
        raise UserError(f"target directory not found: {target}")
    scope = scope if scope is not None else target_scope(target)
    files = [path for path in python_files(target) if scope.accepts(path)]
    sources: dict[str, str] = {}
    mutants = []
    for bug_class in (c for lvl in chosen for c in lvl.classes):
        for path in (p for p in files if bug_class.applies_to_file(p)):
            if path not in sources:
                sources[path] = _read_source(target, path)
            mutants += _plant(bug_class, path, sources[path], target)
    mutants = _one_class_per_place(mutants, [c.name for lvl in chosen for c in lvl.classes])
    mutants.sort(key=lambda mu: (mu.file, mu.start_line, mu.bug_class, mu.variant, mu.end_line, mu.id))
    return _collapse_equivalent(mutants, sources)


def classes_without_sites(level: Level | str, mutants: list[Mutant]) -> list[str]:
    """The classes of `level` that planted nothing: the CLI says so, since a silent 0 looks like success."""
    chosen = [level] if isinstance(level, Level) else select_levels(level)
    planted = {mu.bug_class for mu in mutants}
    return [c.name for lvl in chosen for c in lvl.classes if c.name not in planted]


def _one_class_per_place(mutants: list[Mutant], class_order: list[str]) -> list[Mutant]:
    owner = {}  # place -> the first class (in catalogue order) that plants there
    for mu in sorted(mutants, key=lambda mu: class_order.index(mu.bug_class)):
        owner.setdefault(_place(mu), mu.bug_class)
    return [mu for mu in mutants if owner[_place(mu)] == mu.bug_class]


def _place(mutant: Mutant) -> tuple[str, int, int]:
    """The characters of the original a mutant changes: (file, first, past-last), after the longest
    common prefix and suffix. Two arguments of one call are two places; one node edited twice is one."""
    original, mutated = mutant.original, mutant.mutated
    prefix = len(os.path.commonprefix([original, mutated]))
    suffix = len(os.path.commonprefix([original[prefix:][::-1], mutated[prefix:][::-1]]))
    return mutant.file, prefix, len(original) - suffix


def python_files(target: Path) -> list[str]:
    """The .py files under target as sorted posix paths relative to it, skipping SKIPPED_DIRS."""
    roots = [target]
    if target.name in ("site-packages", "dist-packages"):
        # An installed mutator's bundled target is site-packages itself: only nanochat is ours there.
        roots = [target / "nanochat"]
    found = []
    for root in roots:
        for directory, subdirs, names in os.walk(root):
            subdirs[:] = [d for d in subdirs if not any(fnmatchcase(d, skip) for skip in SKIPPED_DIRS)]
            found += [Path(directory, name).relative_to(target).as_posix() for name in names if name.endswith(".py")]
    return sorted(found)


def _read_source(target: Path, path: str) -> str:
    try:
        source = (target / path).read_text(encoding="utf-8")
        ast.parse(source, filename=path)
    except (UnicodeDecodeError, SyntaxError, ValueError) as error:
        raise UserError(f"{target / path}: does not parse: {_one_line(error)}") from None
    return source


def _plant(bug_class: BugClass, path: str, source: str, target: Path) -> list[Mutant]:
    planted = []
    everywhere = bug_class.functions == ("*",)
    for operator in bug_class.operators:
        try:
            mutations = _mutations(OPERATORS[operator], source, path)
        except cst.ParserSyntaxError as error:  # valid Python that LibCST cannot read
            raise UserError(f"{target / path}: does not parse: {_one_line(error)}") from None
        for mu in mutations:
            if not bug_class.plants_variant(mu.variant):
                continue
            if not (everywhere or bug_class.applies_to_function(mu.qualname)):
                continue
            mutant = Mutant(
                bug_class=bug_class.name,
                operator=mu.operator,
                variant=mu.variant,
                file=path,
                qualname=mu.qualname,
                start_line=mu.start_line,
                end_line=mu.end_line,
                original=source,
                mutated=mu.code,
            )
            seed = bug_class.canonical is not None and bug_class.canonical.matches(mutant)
            planted.append(replace(mutant, canonical=seed))
    return planted


@functools.lru_cache(maxsize=256)
def _mutations(operator, source: str, path: str) -> tuple:
    """An operator's mutations of one file. Classes and levels share operators, and a process that lists,
    shows and runs (a session, the tests) asks for the same file again: each is computed once."""
    return tuple(operator.mutations(source, path))


def _collapse_equivalent(mutants: list[Mutant], sources: dict[str, str]) -> list[Mutant]:
    seen = {(path, _normalised(source)) for path, source in sources.items()}  # the originals themselves
    kept = set()  # positions in `mutants`
    for i in sorted(range(len(mutants)), key=lambda i: not mutants[i].canonical):  # stable: canonical first
        key = (mutants[i].file, _normalised(mutants[i].mutated))
        if key not in seen:
            seen.add(key)
            kept.add(i)
    return [mu for i, mu in enumerate(mutants) if i in kept]


def _normalised(source: str) -> str:
    return ast.dump(ast.parse(source))


def _path_matches(path: str, pattern: str) -> bool:
    # "*" crosses "/" (fnmatch); "**/x" also matches "x" at the root.
    return fnmatchcase(path, pattern) or (pattern.startswith("**/") and fnmatchcase(path, pattern[3:]))


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


# --- reading and checking a level file ---


def read_level(path: Path) -> Level:
    """Load and validate one level file; every problem is a UserError naming the file and field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UserError(f"{path}: cannot read: {_one_line(error)}") from None
    check = _Checker(path)
    check.keys(data, "", {"level": True, "classes": True})
    level = check.table(data, "level")
    check.keys(level, "level", LEVEL_KEYS)
    classes = data["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, dict) for c in classes):
        check.fail("classes", "must be a non-empty array of tables ([[classes]])")
    parsed = [_read_class(check, raw, f"classes[{i}]") for i, raw in enumerate(classes)]
    names = [c.name for c in parsed]
    for i, name in enumerate(names):
        if name in names[:i]:
            check.fail(f"classes[{i}].name", f"'{name}' names two classes")
    return Level(
        name=check.text(level, "level.name", "name"),
        title=check.text(level, "level.title", "title"),
        description=check.text(level, "level.description", "description", default=""),
        classes=tuple(parsed),
        path=path,
    )


def _read_class(check: "_Checker", raw: dict, where: str) -> BugClass:
    check.keys(raw, where, CLASS_KEYS)
    name = check.text(raw, f"{where}.name", "name")
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name):
        check.fail(f"{where}.name", f"'{name}' must be lower-case words joined by '-'")
    operators = check.strings(raw, f"{where}.operators", "operators")
    for i, operator in enumerate(operators):
        if operator not in OPERATORS:
            check.fail(
                f"{where}.operators[{i}]", f"unknown operator '{operator}' (known: {', '.join(sorted(OPERATORS))})"
            )
    files = check.strings(raw, f"{where}.files", "files") if "files" in raw else ["*"]
    functions = check.strings(raw, f"{where}.functions", "functions") if "functions" in raw else ["*"]
    for i, pattern in enumerate(files):
        check.pattern(pattern, f"{where}.files[{i}]", is_path=True)
    for i, pattern in enumerate(functions):
        check.pattern(pattern, f"{where}.functions[{i}]", is_path=False)
    variants = check.strings(raw, f"{where}.variants", "variants") if "variants" in raw else ["*"]

    canonical = _read_canonical(check, raw, where, operators) if "canonical" in raw else None
    reports = check.strings(raw, f"{where}.reports", "reports") if "reports" in raw else []
    return BugClass(
        name=name,
        title=check.text(raw, f"{where}.title", "title"),
        operators=tuple(operators),
        files=tuple(files),
        functions=tuple(functions),
        variants=tuple(variants),
        symptom=check.text(raw, f"{where}.symptom", "symptom"),
        hint=check.text(raw, f"{where}.hint", "hint"),
        canonical=canonical,
        reports=tuple(reports),
    )


def _read_canonical(check: "_Checker", raw: dict, where: str, operators: list[str]) -> Canonical:
    spec = check.table(raw, "canonical", where)
    check.keys(spec, f"{where}.canonical", CANONICAL_KEYS)
    canonical = Canonical(
        operator=check.text(spec, f"{where}.canonical.operator", "operator"),
        variant=check.text(spec, f"{where}.canonical.variant", "variant"),
        site=check.text(spec, f"{where}.canonical.site", "site"),
        function=check.text(spec, f"{where}.canonical.function", "function", default="*"),
    )
    if canonical.operator not in operators:
        check.fail(f"{where}.canonical.operator", f"'{canonical.operator}' is not one of this class's operators")
    known = OPERATORS[canonical.operator].variants
    if not any(fnmatchcase(canonical.variant, v) for v in known):
        check.fail(
            f"{where}.canonical.variant",
            f"'{canonical.variant}' is not a variant of {canonical.operator} ({', '.join(known)})",
        )
    check.pattern(canonical.function, f"{where}.canonical.function", is_path=False)
    return canonical


class _Checker:
    """Type and shape checks that fail with `<file>: <field>: <problem>`."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, field: str, problem: str):
        raise UserError(f"{self.path}: {field}: {problem}")

    def keys(self, table: dict, where: str, allowed: dict[str, bool]):
        prefix = f"{where}." if where else ""
        for key in table:
            if key not in allowed:
                self.fail(f"{prefix}{key}", f"unknown key (expected one of: {', '.join(allowed)})")
        for key, required in allowed.items():
            if required and key not in table:
                self.fail(f"{prefix}{key}", "missing")

    def table(self, parent: dict, key: str, where: str = "") -> dict:
        value = parent[key]
        if not isinstance(value, dict):
            self.fail(f"{where}.{key}" if where else key, "must be a table")
        return value

    def text(self, table: dict, field: str, key: str, default: str | None = None) -> str:
        if key not in table and default is not None:
            return default
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(field, "must be a non-empty string")
        return value

    def strings(self, table: dict, field: str, key: str) -> list[str]:
        value = table[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.fail(field, "must be a non-empty list of non-empty strings")
        return value

    def pattern(self, pattern: str, field: str, is_path: bool):
        if pattern.count("[") != pattern.count("]") or re.search(r"\[[^\]]*\[", pattern):
            self.fail(field, f"bad pattern '{pattern}': unbalanced '['")
        if is_path and (pattern.startswith("/") or "\\" in pattern or ".." in pattern.split("/")):
            self.fail(field, f"bad pattern '{pattern}': must be a relative posix path glob")
        if not is_path and "/" in pattern:
            self.fail(field, f"bad pattern '{pattern}': a qualname glob has no '/'")
