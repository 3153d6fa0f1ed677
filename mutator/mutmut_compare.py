"""mutmut beside mutator: a generic mutation tool's score on the same target and suite, and how many of
our level-3 mutants its operators can produce at all.

mutmut 3 is driven only through its command line, in a scratch copy of the target's `nanochat/` and
the suite: `mutmut run`, then `mutmut results --all true` for its verdicts and `mutmut show NAME` for
the diff of one mutant. Its files under `mutants/` are internal and change between releases, so they
are not read.

"Can produce" is decided by normalised AST: mutmut mutates one top-level function or method per
mutant, so one of ours is producible when some mutmut mutant of the same function has the same AST
(positions ignored) as that function in our mutated file.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import libcst as cst

from mutator.errors import UserError
from mutator.mutants import Mutant
from mutator.outcomes import CRASHED, ERROR, KILLED, NO_COVERAGE, SURVIVED, TIMEOUT, Result

# mutmut's status words (as `mutmut results` prints them) in our outcomes; None: not a verdict.
OUTCOME = {
    "killed": KILLED,
    "caught by type check": KILLED,
    "survived": SURVIVED,
    "no tests": NO_COVERAGE,
    "timeout": TIMEOUT,
    "segfault": CRASHED,
    "suspicious": ERROR,  # an exit code mutmut does not know: neither a kill nor a survivor
    "skipped": None,
    "not checked": None,
    "check was interrupted by user": None,
}
PROJECT_FILES = ("pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini")


@dataclass
class MutmutRun:
    version: str
    statuses: dict[str, str]  # mutant name, e.g. nanochat.gpt.xǁGPTǁforward__mutmut_3 -> status word
    wall_s: float
    scratch: Path
    shows: dict[str, str] = field(default_factory=dict)  # mutant name -> `mutmut show` output

    def results(self) -> list[Result]:
        """mutmut's verdicts as our Results, so our score definitions apply to them unchanged."""
        return [
            Result(name, "cpu", OUTCOME[status])
            for name, status in self.statuses.items()
            if OUTCOME.get(status) is not None
        ]

    def badge_score(self) -> float | None:
        """The score mutmut's own `badge` command prints: (killed + timeout) / (total - skipped)."""
        counted = [s for s in self.statuses.values() if s != "skipped"]
        hits = sum(s in ("killed", "timeout") for s in counted)
        return 100.0 * hits / len(counted) if counted else None


# --- the scratch copy ----------------------------------------------------------------------------------


def _project_root(path: Path) -> Path:
    """The nearest ancestor holding a project or pytest config file: where the suite's rootdir is."""
    for parent in path.parents:
        if any((parent / name).is_file() for name in PROJECT_FILES):
            return parent
    return path.parent


def _toml(value) -> str:
    """Enough TOML for a config table: strings, numbers, booleans, lists and tables of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def prepare(target: Path, tests: Path, scratch: Path) -> str:
    """Copy target/nanochat and the suite into scratch with a mutmut config; the suite's path there.

    The suite keeps its place relative to its project root, with the conftest.py files of the
    directories above it and that project's pytest options, so it collects exactly as it does at home.
    """
    package = target / "nanochat"
    if not package.is_dir():
        raise UserError(f"no nanochat/ package in {target}: mutmut needs the code to mutate")
    if not tests.exists():
        raise UserError(f"test suite not found: {tests}")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    shutil.copytree(package, scratch / "nanochat", ignore=ignore)

    root = _project_root(tests)
    suite = tests.relative_to(root)
    if suite.parts[0] == "nanochat":
        raise UserError(f"{tests}: a suite inside the nanochat package would be mutated with it")
    if tests.is_dir():
        shutil.copytree(tests, scratch / suite, ignore=ignore)
    else:
        (scratch / suite).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(tests, scratch / suite)
    for parent in tests.parents:
        if parent == root.parent:
            break
        if (parent / "conftest.py").is_file() and parent != tests:
            (scratch / parent.relative_to(root)).mkdir(parents=True, exist_ok=True)
            shutil.copy2(parent / "conftest.py", scratch / parent.relative_to(root) / "conftest.py")

    pytest_options = {}
    if (root / "pyproject.toml").is_file():
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        pytest_options = project.get("tool", {}).get("pytest", {}).get("ini_options", {})
    mutmut_options = {
        "source_paths": ["nanochat"],
        "pytest_add_cli_args_test_selection": [suite.as_posix()],
        "also_copy": [suite.parts[0]],  # the suite and every conftest.py above it
        # The fork server keeps mutmut's main process free of torch: forking a process whose OpenMP
        # pool has run hangs the children (see DESIGN.md), which mutmut would report as timeouts.
        "process_isolation": "forkserver",
        "use_git_change_detection": False,  # the scratch copy is no git repository
    }
    config = ["[tool.mutmut]", *(f"{k} = {_toml(v)}" for k, v in mutmut_options.items())]
    if pytest_options:
        config += ["", "[tool.pytest.ini_options]", *(f"{k} = {_toml(v)}" for k, v in pytest_options.items())]
    (scratch / "pyproject.toml").write_text("\n".join(config) + "\n", encoding="utf-8")
    return suite.as_posix()


# --- running mutmut ------------------------------------------------------------------------------------


def mutmut_command() -> str | None:
    """The `mutmut` beside this interpreter first (a venv used without activating it), else on PATH."""
    beside = Path(sys.executable).parent / "mutmut"  # not resolved: a venv's python is a symlink
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("mutmut")


def _mutmut() -> tuple[str, str]:
    """(path of the mutmut command, its version), or a UserError saying why it cannot run."""
    try:
        installed = version("mutmut")
    except PackageNotFoundError:
        raise UserError("mutmut is not installed: pip install 'mutmut>=3.3,<4' (in mutator's dev extras)") from None
    if not installed.startswith("3."):
        raise UserError(f"mutmut {installed} is installed; this comparison drives mutmut 3's command line")
    command = mutmut_command()
    if command is None:
        raise UserError(f"mutmut {installed} is installed but its `mutmut` command is not on PATH")
    return command, installed


def _environment() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # one thread per child: no oversubscription
    env.pop("PYTHONPATH", None)  # the tests must import the mutated nanochat, not one found elsewhere
    return env


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    return " | ".join(lines[-count:]) or "no output"


def run_mutmut(target, tests, max_children: int | None = None, on_status=lambda message: None) -> MutmutRun:
    command, installed = _mutmut()
    scratch = Path(tempfile.mkdtemp(prefix="mutator-mutmut-"))
    try:
        prepare(Path(target).resolve(), Path(tests).resolve(), scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    children = ["--max-children", str(max_children)] if max_children else []
    on_status(f"mutmut {installed}: run (generic operators over all of nanochat/)")
    started = time.perf_counter()
    done = subprocess.run([command, "run", *children], cwd=scratch, env=_environment(), capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    (scratch / "mutmut-run.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        raise UserError(
            f"mutmut run failed (exit {done.returncode}): {_last_lines(done.stdout + done.stderr)}"
            f" (log: {scratch / 'mutmut-run.log'})"
        )
    listed = _mutmut_cli(command, scratch, "results", "--all", "true")
    statuses = dict(re.findall(r"^\s*(\S+__mutmut_\d+): (.+?)\s*$", listed, re.MULTILINE))
    if not statuses:
        raise UserError(f"mutmut results listed no mutants: {_last_lines(listed)}")
    return MutmutRun(installed, statuses, wall_s, scratch)


def _mutmut_cli(command: str, scratch: Path, *args: str) -> str:
    done = subprocess.run([command, *args], cwd=scratch, env=_environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"mutmut {' '.join(args)} failed: {_last_lines(done.stdout + done.stderr)}")
    return done.stdout


# --- which of our mutants mutmut can produce ---------------------------------------------------------


def unit_of(mutmut_name: str) -> tuple[str, str]:
    """(file, qualname) of the function a mutmut mutant changes: nanochat.gpt.xǁGPTǁforward__mutmut_3
    -> ("nanochat/gpt.py", "GPT.forward"); nanochat.gpt.x_norm__mutmut_1 -> ("nanochat/gpt.py", "norm")."""
    mangled = mutmut_name.partition("__mutmut_")[0]
    module, _, function = mangled.rpartition(".")
    if function.startswith("xǁ"):
        _, cls, method = function.split("ǁ")
        qualname = f"{cls}.{method}"
    else:
        qualname = function.removeprefix("x_")
    return module.replace(".", "/") + ".py", qualname


def _find_unit(tree: ast.Module, qualname: str) -> ast.AST | None:
    """A top-level function, or a method of a top-level class: the units mutmut mutates."""
    head, _, rest = qualname.partition(".")
    for node in tree.body:
        if getattr(node, "name", None) != head:
            continue
        if not rest and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node
        if rest and isinstance(node, ast.ClassDef):
            method = rest.partition(".")[0]
            return next((n for n in node.body if getattr(n, "name", None) == method), None)
    return None


def _units(tree: ast.Module) -> dict[str, str]:
    """qualname -> AST dump of every unit, positions left out."""
    units = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            units[node.name] = ast.dump(node)
        elif isinstance(node, ast.ClassDef):
            for child in node.body:
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    units[f"{node.name}.{child.name}"] = ast.dump(child)
    return units


def our_changed_unit(mutant: Mutant) -> tuple[str, str] | None:
    """(qualname, AST dump) of the one unit our mutant changes; None when it changes module-level code
    or several units, which no single mutmut mutant can do."""
    before, after = _units(ast.parse(mutant.original)), _units(ast.parse(mutant.mutated))
    changed = [name for name in after if before.get(name) != after[name]]
    outside = [ast.dump(_strip_units(ast.parse(source))) for source in (mutant.original, mutant.mutated)]
    if len(changed) != 1 or set(before) != set(after) or outside[0] != outside[1]:
        return None
    return changed[0], after[changed[0]]


def _strip_units(tree: ast.Module) -> ast.Module:
    """The module with every unit's body emptied: what is left is module-level code."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.body, node.decorator_list = [ast.Pass()], []
    return tree


def original_unit_text(source: str, qualname: str) -> str | None:
    """The unit's text as mutmut prints it in `show`: libcst's code for the function alone, stripped."""
    module = cst.parse_module(source)
    head, _, rest = qualname.partition(".")
    for node in module.body:
        if isinstance(node, cst.FunctionDef) and not rest and node.name.value == head:
            return cst.Module(body=[node]).code.strip()
        if isinstance(node, cst.ClassDef) and rest and node.name.value == head:
            for method in node.body.body:
                if isinstance(method, cst.FunctionDef) and method.name.value == rest:
                    return cst.Module(body=[method]).code.strip()
    return None


def apply_show(original: str, shown: str) -> str | None:
    """The mutated unit: the hunks of `mutmut show`'s diff put over the original unit's text.

    Each hunk's old lines are looked up by content, nearest its stated line first, so a shifted start
    (leading comments counted differently) does not matter; None when a hunk does not fit.
    """
    lines = original.split("\n")
    hunks = re.split(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@.*$", shown, flags=re.MULTILINE)[1:]
    offset = 0
    for start, body in zip(hunks[::2], hunks[1::2], strict=True):
        old, new = [], []
        for line in body.strip("\n").split("\n"):
            if line.startswith((" ", "-")):
                old.append(line[1:])
            if line.startswith((" ", "+")):
                new.append(line[1:])
        fits = [i for i in range(len(lines) - len(old) + 1) if lines[i : i + len(old)] == old]
        if not fits:
            return None
        at = min(fits, key=lambda i: abs(i - (int(start) - 1 + offset)))
        lines[at : at + len(old)] = new
        offset += len(new) - len(old)
    return "\n".join(lines)


@dataclass
class Reach:
    mutant: Mutant
    unit: str | None  # the function it changes; None: module-level or several functions
    candidates: int  # mutmut mutants of that function
    match: str | None  # the mutmut mutant with the same AST, if any
    unreadable: int  # mutmut mutants of that function whose diff could not be reconstructed


def compare(run: MutmutRun, ours: list[Mutant], jobs: int = 2, on_status=lambda message: None) -> list[Reach]:
    command, _ = _mutmut()
    wanted = {mutant.id: our_changed_unit(mutant) for mutant in ours}
    units = {(m.file, changed[0]) for m in ours if (changed := wanted[m.id])}
    names = [name for name in run.statuses if unit_of(name) in units]
    on_status(f"mutmut show: {len(names)} mutmut mutants of the {len(units)} functions ours change")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        shows = pool.map(lambda name: _mutmut_cli(command, run.scratch, "show", name), names)
        run.shows.update(zip(names, shows, strict=True))

    reach = []
    for mutant in ours:
        changed = wanted[mutant.id]
        if changed is None:
            reach.append(Reach(mutant, None, 0, None, 0))
            continue
        qualname, dump = changed
        original = original_unit_text(mutant.original, qualname)
        candidates = [n for n in names if unit_of(n) == (mutant.file, qualname)]
        match, unreadable = None, 0
        for name in candidates:
            text = apply_show(original, run.shows[name]) if original else None
            try:
                node = _find_unit(ast.parse(text), qualname.rpartition(".")[2]) if text else None
            except SyntaxError:  # mutmut only makes valid code: a failed parse is a failed reconstruction
                node = None
            if node is None:
                unreadable += 1
            elif match is None and ast.dump(node) == dump:
                match = name
        reach.append(Reach(mutant, qualname, len(candidates), match, unreadable))
    return reach


# --- the report ------------------------------------------------------------------------------------


@dataclass
class Ours:
    level: str
    target: str
    results: list[Result]
    wall_s: float | None


def ours_from_store(store_dir) -> Ours | None:
    """Our latest run from the session store, if there is one."""
    from mutator.store import DB_NAME, Store

    if not (Path(store_dir) / DB_NAME).is_file():
        return None
    with Store(store_dir, create=False) as store:
        last = store.last_run()
        if last is None:
            return None
        run_id, params = last
        results = store.results(run_id, params.get("devices"))
        wall_s = store.timings(run_id).get("wall_s")
    return Ours(str(params.get("level", "?")), str(params.get("target", "?")), results, wall_s)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _column(results: list[Result], wall_s: float | None, extra: dict[str, str]) -> list[str]:
    from collections import Counter

    from mutator.outcomes import mutation_score, test_strength

    counts = Counter(r.outcome for r in results)
    ran = sum(counts[o] for o in (KILLED, SURVIVED, TIMEOUT, CRASHED))
    per_mutant = f"{wall_s / ran:.2f} s" if wall_s and ran else "n/a"
    return [
        str(len(results)),
        *(str(counts[o]) for o in (KILLED, SURVIVED, NO_COVERAGE, TIMEOUT, CRASHED, ERROR)),
        _percent(mutation_score(results)),
        _percent(test_strength(results)),
        extra.get("badge", ""),
        f"{wall_s:.1f} s" if wall_s else "n/a",
        per_mutant,
    ]


def print_comparison(console, run: MutmutRun, reach: list[Reach], ours: Ours | None, level: str) -> None:
    from rich.table import Table

    table = Table(title="mutmut beside mutator", title_justify="left")
    table.add_column("")
    table.add_column(f"mutmut {run.version} (generic operators, all of nanochat/)", justify="right")
    rows = [
        "mutants with a verdict",
        "killed",
        "survived",
        "no coverage",
        "timeout",
        "crashed",
        "error",
        "mutation score (Stryker)",
        "test strength (PIT)",
        "mutmut's badge score",
        "wall time",
        "wall time per mutant run",
    ]
    columns = [_column(run.results(), run.wall_s, {"badge": _percent(run.badge_score())})]
    if ours:
        for device in sorted({r.device for r in ours.results}):
            table.add_column(f"mutator level {ours.level} on {device}", justify="right")
            mine = [r for r in ours.results if r.device == device]
            columns.append(_column(mine, ours.wall_s, {}))
    for i, name in enumerate(rows):
        table.add_row(name, *(column[i] for column in columns))
    console.print(table)
    unjudged = len(run.statuses) - len(run.results())
    if unjudged:
        console.print(f"mutmut left {unjudged} mutants without a verdict (skipped or not checked).")
    if ours is None:
        console.print(f"No mutator run in the session store: `mutator run --level {level}` puts ours beside it.")
    else:
        console.print(f"mutator figures: the store's latest run (target {ours.target}).", highlight=False)

    produced = [r for r in reach if r.match]
    detail = Table(
        title=f"Can mutmut's operators produce our level-{level} mutants? "
        f"{len(produced)} of {len(reach)} (same normalised AST of the mutated function)",
        title_justify="left",
    )
    for column in ("id", "bug class", "variant", "function", "mutmut mutants of it", "same as ours"):
        detail.add_column(column)
    for r in reach:
        if r.unit is None:
            same = "none can be: ours changes module-level code or several functions"
        elif r.match:
            same = f"{r.match.rpartition('.')[2]} ({run.statuses[r.match]})"
        elif r.candidates == 0:
            same = "none: mutmut made no mutant of this function"
        else:
            same = "none"
        if r.unreadable:
            same += f" [{r.unreadable} diffs unreadable]"
        detail.add_row(r.mutant.id, r.mutant.bug_class, r.mutant.variant, r.unit or "-", str(r.candidates), same)
    console.print(detail)
