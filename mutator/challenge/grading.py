"""Running a challenge's tests, the validation rules for a draw, and which key belongs to a workspace.

Validation plants bugs into the known clean code, so it uses the runner's fast path (Grader). Grading
an attempt runs arbitrary edited code, so `run_tests` materialises it in a temporary directory and
runs pytest there in a fresh interpreter.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mutator import baseline
from mutator.challenge.compose import plant
from mutator.errors import UserError
from mutator.mutants import Mutant
from mutator.runner import STARTUP_TIMEOUT_S
from mutator.selection import select_tests
from mutator.worker import WorkerProcess

RUN_TIMEOUT_S = 900


@dataclass
class Outcomes:
    """Node id -> "passed" | "failed" | "skipped", with one-line reasons for failures."""

    outcomes: dict[str, str]
    reasons: dict[str, str] = field(default_factory=dict)

    def failed(self, among=None) -> set[str]:
        return {t for t, o in self.outcomes.items() if o == "failed" and (among is None or t in among)}

    def passed(self) -> set[str]:
        return {t for t, o in self.outcomes.items() if o == "passed"}


def read_tree(root: Path, package: str) -> dict[str, str]:
    """Relative path -> text of every Python file of `package` under root."""
    files = [p for p in sorted((root / package).rglob("*.py")) if "__pycache__" not in p.parts]
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in files}


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def run_tests(files: dict[str, str], test_paths: list[str]) -> Outcomes:  # test_paths may be node ids
    """Run pytest on `test_paths` in a fresh directory holding exactly `files` (code and tests)."""
    with tempfile.TemporaryDirectory(prefix="mutator-grade-") as tmp:
        root = Path(tmp)
        write_tree(root, files)
        out = root / "outcomes.json"
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg"}
        command = [sys.executable, "-m", "mutator.pytest_outcomes", str(out), "-q", "-p", "no:cacheprovider"]
        try:
            done = subprocess.run(
                command + test_paths, cwd=root, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            return Outcomes({"<run>": "failed"}, {"<run>": f"timed out after {RUN_TIMEOUT_S} s"})
        if not out.exists():
            tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
            return Outcomes({"<run>": "failed"}, {"<run>": f"pytest did not finish: {tail[0]}"})
        data = json.loads(out.read_text(encoding="utf-8"))
        return Outcomes(data["outcomes"], data["reasons"])


def workspace_fingerprint(workspace: Path, level: str) -> str:
    """What identifies a workspace across the solver's edits: where it was written and its level.

    Its code is what the solver changes, so it cannot be part of it; the key records the workspace's
    path and level when the workspace is written, which is all a grade needs to tell keys apart.
    """
    return hashlib.sha256(f"{Path(workspace).resolve()}\0{level}".encode()).hexdigest()[:16]


def check_key_matches(workspace: Path, key_path: Path) -> None:
    """Refuse (UserError) a key written for another workspace: its grade would be meaningless."""
    try:
        key = json.loads(Path(key_path).read_text(encoding="utf-8"))
        written_for, level = key["workspace"], str(key["level"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"cannot read the key {key_path}: {error}") from None
    here = [p.stem.removeprefix("test_level") for p in sorted(Path(workspace).glob("tests/test_level*.py"))]
    levels = here or [level]  # a workspace whose level file was removed is judged by its path alone
    if level not in levels or workspace_fingerprint(workspace, level) != workspace_fingerprint(written_for, level):
        raise UserError(
            f"the key {key_path} was written for the level-{level} workspace {written_for}, not for"
            f" {Path(workspace).resolve()} (level {', '.join(levels)}): pass its own key, or --force"
        )


class Grader:
    """The clean code and every test, measured once and collected once, for fast validation runs.

    The runner's machinery does the work: a baseline with per-test coverage (so a run selects only the
    tests that execute the planted lines), and a forked worker that swaps bugs into live functions and
    runs every selected test. Tests a bug's lines never reach pass by construction.
    """

    def __init__(self, files: dict[str, str], workdir: Path):
        self.root = workdir / "tree"
        write_tree(self.root, files)
        data = baseline.measure(
            self.root, [self.root / "tests"], "cpu", ["nanochat"], shards=os.cpu_count() or 1, workdir=workdir
        )
        coverage = data.pop("coverage")
        self.coverage = {test: {f: set(lines) for f, lines in files.items()} for test, files in coverage.items()}
        self.base = data
        config = {
            "mode": "fork",
            "args": [*baseline.suite_args([self.root / "tests"], [], "cpu"), "--rootdir", data["rootdir"]],
            "device": "cpu",
            "target_root": str(self.root),
            "basetemp": str(workdir / "pytest"),
            "memory_limit_mb": None,
        }
        env = baseline.subprocess_env(self.root)
        self.worker = WorkerProcess(config, env, str(self.root), workdir / "worker.log")
        hello = self.worker.receive(STARTUP_TIMEOUT_S)
        if not hello or "ready" not in hello:
            self.close()
            raise RuntimeError(f"the grading worker did not start: {(hello or {}).get('fatal', 'no answer')}")

    @property
    def tests(self) -> list[str]:
        return list(self.base["tests"])

    def clean(self) -> Outcomes:
        return Outcomes(dict.fromkeys(self.tests, "passed"))

    def run(self, mutants: list[Mutant]) -> Outcomes:
        """Outcomes of every test with these bugs planted together."""
        swaps = _swaps(mutants)
        selected = sorted({t for m in mutants for t in select_tests(m, self.base, self.coverage)})
        outcomes = dict.fromkeys(self.tests, "passed")
        if not selected:
            return Outcomes(outcomes)
        timeout = 3 * sum(self.base["tests"][t]["duration"] for t in selected) + 30
        task = {"mutant": swaps[0], "swaps": swaps, "tests": selected, "timeout": timeout, "keep_going": True}
        self.worker.send(task)
        reply = self.worker.receive(timeout + 30)
        if reply is None or "failed" not in reply:
            why = "no answer" if reply is None else f"{reply['outcome']}: {reply.get('reason', '')}"
            return Outcomes({**outcomes, "<run>": "failed"}, {"<run>": why})
        outcomes.update(dict.fromkeys(reply["failed"], "failed"))
        return Outcomes(outcomes, reply["reasons"])

    def detects(self, mutants: list[Mutant], tests: set[str]) -> bool:
        """Whether any of `tests` fails with these bugs planted together: run fastest first, stopping at
        the first failure (a run that times out or gets no answer detects nothing)."""
        ordered = sorted(tests, key=lambda t: (self.base["tests"][t]["duration"], t))
        timeout = 3 * sum(self.base["tests"][t]["duration"] for t in ordered) + 30
        swaps = _swaps(mutants)
        self.worker.send({"mutant": swaps[0], "swaps": swaps, "tests": ordered, "timeout": timeout})
        reply = self.worker.receive(timeout + 30)
        return reply is not None and reply.get("killing_test") is not None

    def close(self):
        self.worker.stop()


def _swaps(mutants: list[Mutant]) -> list[dict]:
    """The functions to swap in for these bugs together: each changed function once, with its file planted."""
    files = plant(mutants)
    functions = dict.fromkeys((m.file, m.qualname.split(".<locals>.")[0]) for m in mutants)
    return [{"file": f, "qualname": q, "mutated": files[f]} for f, q in functions]


@dataclass
class Draw:
    """The validation record of one candidate draw."""

    mutants: list[Mutant]
    solo: dict[str, Outcomes] = field(default_factory=dict)  # mutant id -> outcomes with that bug alone
    together: Outcomes | None = None
    problem: str = ""  # why the draw was rejected; empty when valid


def validate(draw: Draw, grader: Grader, visible: set[str], probes=frozenset(), judge=None) -> Draw:
    """Apply SWE-smith-style rules to a draw; fills draw.problem when one fails.

    - each bug alone fails at least one visible and one hidden test (probes are neither), leaves some
      tests passing, and passes `judge(mutant, outcomes)`, which returns what is wrong with it or "";
    - all bugs together fail;
    - no bug masks another: with any one bug fixed, every other bug is still detected by a test
      that detects it alone.
    """
    for mutant in draw.mutants:
        if mutant.id not in draw.solo:
            draw.solo[mutant.id] = grader.run([mutant])
        outcomes = draw.solo[mutant.id]
        failed = outcomes.failed()
        if "<run>" in failed:
            draw.problem = f"{mutant.bug_class} ({mutant.variant}) did not run: {outcomes.reasons['<run>']}"
        elif not failed & visible:
            draw.problem = f"{mutant.bug_class} ({mutant.variant}) fails no visible test"
        elif not failed - visible - probes:
            draw.problem = f"{mutant.bug_class} ({mutant.variant}) fails no hidden test"
        elif not outcomes.passed():
            draw.problem = f"{mutant.bug_class} ({mutant.variant}) breaks every test"
        elif judge is not None:
            draw.problem = judge(mutant, outcomes)
        if draw.problem:
            return draw

    draw.together = grader.run(draw.mutants)
    if not draw.together.failed():
        draw.problem = "all bugs together fail no test"
        return draw
    for fixed in draw.mutants if len(draw.mutants) > 1 else []:
        rest = [m for m in draw.mutants if m is not fixed]
        for mutant in rest:  # one run each, which stops at the first of its tests to fail
            if not grader.detects(rest, draw.solo[mutant.id].failed()):
                draw.problem = f"{fixed.bug_class} masks {mutant.bug_class}: fixing it hides the other"
                return draw
    return draw
