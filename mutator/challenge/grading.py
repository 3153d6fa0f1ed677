"""Running a challenge's tests against a tree of code, and the validation rules for a draw.

Every run materialises the code and the tests in a temporary directory and runs pytest there in a
fresh interpreter, so that the workspace under test is exactly what is imported. Runs of one draw go
in parallel, one per core.
"""

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mutator.challenge.compose import plant
from mutator.errors import UserError
from mutator.mutants import Mutant

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


def run_tests(files: dict[str, str], test_paths: list[str]) -> Outcomes:
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


def run_many(jobs: list[tuple[dict[str, str], list[str]]]) -> list[Outcomes]:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(lambda job: run_tests(*job), jobs))


@dataclass
class Draw:
    """The validation record of one candidate draw."""

    mutants: list[Mutant]
    solo: dict[str, Outcomes] = field(default_factory=dict)  # mutant id -> outcomes with that bug alone
    together: Outcomes | None = None
    problem: str = ""  # why the draw was rejected; empty when valid


def validate(draw: Draw, code: dict[str, str], tests: dict[str, str], visible: set[str], test_paths: list[str]):
    """Apply SWE-smith-style rules to a draw; fills draw.problem when one fails.

    - each bug alone fails at least one visible and one hidden test, and leaves some tests passing;
    - all bugs together fail;
    - no bug masks another: with any one bug fixed, every other bug is still detected by a test
      that detects it alone.
    """

    def tree(mutants):
        return {**code, **plant(mutants), **tests}

    missing = [m for m in draw.mutants if m.id not in draw.solo]
    for mutant, outcomes in zip(missing, run_many([(tree([m]), test_paths) for m in missing]), strict=True):
        draw.solo[mutant.id] = outcomes
    for mutant in draw.mutants:
        outcomes = draw.solo[mutant.id]
        failed = outcomes.failed()
        if not failed & visible:
            draw.problem = f"{mutant.bug_class} ({mutant.variant}) fails no visible test"
        elif not failed - visible:
            draw.problem = f"{mutant.bug_class} ({mutant.variant}) fails no hidden test"
        elif not outcomes.passed():
            draw.problem = f"{mutant.bug_class} ({mutant.variant}) breaks every test"
        if draw.problem:
            return draw

    others = [[m for m in draw.mutants if m is not fixed] for fixed in draw.mutants] if len(draw.mutants) > 1 else []
    results = run_many([(tree(draw.mutants), test_paths)] + [(tree(rest), test_paths) for rest in others])
    draw.together = results[0]
    if not draw.together.failed():
        draw.problem = "all bugs together fail no test"
        return draw
    for fixed, rest, outcomes in zip(draw.mutants, others, results[1:], strict=True):
        for mutant in rest:
            if not outcomes.failed(draw.solo[mutant.id].failed()):
                draw.problem = f"{fixed.bug_class} masks {mutant.bug_class}: fixing it hides the other"
                return draw
    return draw


def check_clean(code: dict[str, str], tests: dict[str, str], test_paths: list[str]) -> Outcomes:
    """The clean code must pass every visible and hidden test, or no draw can be validated."""
    outcomes = run_tests({**code, **tests}, test_paths)
    if outcomes.failed():
        names = ", ".join(sorted(outcomes.failed())[:5])
        raise UserError(f"the clean code fails its own tests ({names}); fix those before drawing a challenge")
    return outcomes
