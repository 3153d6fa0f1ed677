"""The CI loop's cost, as ratios to one plain run of the suite, measured in one run.

    python benchmarks/ci_loop.py [--level 3]

On a temporary copy of this checkout's nanochat/ and tests/ (never the checkout itself), one after the
other, each the whole `python -m mutator run` command as a CI job would run it (interpreter start,
mutant generation, baseline, workers, reports):

1. plain:         python -m pytest tests/nanochat -q -p no:randomly
2. fresh:         mutator run --level 3 on an empty store
3. no change:     the same command again
4. comment only:  comments added to nanochat/gpt.py (one above everything, so every line moves) and one
                  reformatted statement: it must re-run 0 mutants (and not re-measure the baseline)
5. one function:  one statement added to the function holding the most mutants: it must re-run only that
                  function's mutants and those whose selected tests execute it (computed here from the
                  store's coverage, and printed beside what ran)

The machine's load average is printed before and after: on a loaded machine every figure moves. So
each row also gives the CPU time the command and its processes used (user + system, of every process
waited for), which other work on the machine moves less than wall time.
"""

import argparse
import ast
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a command."""
    start, cpu = time.perf_counter(), children_cpu()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(command)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, children_cpu() - cpu


def last_run(store: Path) -> dict[str, float]:
    with sqlite3.connect(store / "session.sqlite") as db:
        (run_id,) = db.execute("SELECT MAX(id) FROM runs").fetchone()
        return dict(db.execute("SELECT name, seconds FROM timings WHERE run_id = ?", (run_id,)).fetchall())


def function_span(source: str, qualname: str) -> tuple[int, int, ast.AST]:
    node = ast.parse(source)
    for part in qualname.split(".<locals>.")[0].split("."):
        node = next(n for n in ast.walk(node) if getattr(n, "name", None) == part)
    return node.lineno, node.end_lineno, node


def expected_reruns(work: Path, store: Path, file: str, first: int, last: int) -> set[str]:
    """Mutants of the latest run in that function, or whose selected tests execute one of its lines."""
    sys.path.insert(0, str(REPO))
    from mutator import selection
    from mutator.store import Store

    with Store(store) as db:
        run_id, _ = db.last_run()
        mutants = db.mutants(run_id)
        base, coverage = db.baseline("cpu")
    span = set(range(first, last + 1))
    expected = set()
    for mutant in mutants:
        tests = selection.select_tests(mutant, base, coverage)
        mine = mutant.file == file and first <= mutant.start_line <= last
        if tests and (mine or any(span & coverage.get(t, {}).get(file, set()) for t in tests)):
            expected.add(mutant.id)
    return expected


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--level", default="3")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ci-loop-") as tmp:
        work = Path(tmp) / "repo"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "mutator")
        shutil.copytree(REPO / "nanochat", work / "nanochat", ignore=ignore)
        shutil.copytree(REPO / "tests", work / "tests", ignore=ignore)  # tests/mutator left out
        shutil.copy2(REPO / "pyproject.toml", work / "pyproject.toml")
        store = Path(tmp) / "store"
        mutator = [sys.executable, "-m", "mutator", "run", "--level", args.level, "--target", str(work)]
        mutator += ["--store", str(store), "--device", "cpu"]

        # warm the page cache (torch's files) so that the first measured command does not pay for it
        timed([sys.executable, "-c", "import torch"], work)
        rows = [("plain pytest tests/nanochat", timed([sys.executable, "-m", "pytest", "tests/nanochat", "-q",
                                                       "-p", "no:randomly"], work), None)]  # fmt: skip
        rows.append((f"fresh level-{args.level} run", timed(mutator, work), last_run(store)))
        rows.append(("no-change re-run", timed(mutator, work), last_run(store)))

        gpt = work / "nanochat" / "gpt.py"
        clean = gpt.read_text()
        lines = clean.splitlines(keepends=True)
        body = next(i for i, line in enumerate(lines) if line.startswith("    def "))
        lines.insert(body, "    # a comment inside a class, before a method\n")
        gpt.write_text("# a comment above everything: every line below moves\n" + "".join(lines) + "# the end\n")
        rows.append(("comment-only change", timed(mutator, work), last_run(store)))
        gpt.write_text(clean)
        timed(mutator, work)  # back to the clean code (reused: nothing re-runs)

        with sqlite3.connect(store / "session.sqlite") as db:
            (run_id,) = db.execute("SELECT MAX(id) FROM runs").fetchone()
            data = [json.loads(d) for (d,) in db.execute("SELECT data FROM run_mutants WHERE run_id = ?", (run_id,))]
        (file, qualname), count = Counter((m["file"], m["qualname"]) for m in data if m["qualname"]).most_common(1)[0]
        source = (work / file).read_text()
        first, last, node = function_span(source, qualname)
        at = node.body[0].lineno - 1  # a statement at the top of its body: the function's AST changes
        indent = " " * node.body[0].col_offset
        changed = source.splitlines(keepends=True)
        changed.insert(at, f"{indent}_unused = None\n")
        (work / file).write_text("".join(changed))
        rows.append((f"one-function change ({qualname})", timed(mutator, work), last_run(store)))
        expected = expected_reruns(work, store, file, first, last + 1)
    load_after = os.getloadavg()

    (plain, plain_cpu) = rows[0][1]
    print(
        f"{os.cpu_count()} cores; load average (1, 5, 15 min) before {load_before[0]:.2f} {load_before[1]:.2f} "
        f"{load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}"
    )
    print(f"{'':50} {'wall':>8} {'x plain':>8} {'CPU':>8} {'x plain':>8} {'mutants run':>12} {'baseline':>9}")
    for name, (wall, cpu), timings in rows:
        ran = "" if timings is None else f"{timings.get('executed', 0):.0f}"
        base = "" if timings is None else ("measured" if "baseline_cpu_s" in timings else "reused")
        print(
            f"{name:50} {wall:>6.1f} s {wall / plain:>7.2f}x {cpu:>6.1f} s {cpu / plain_cpu:>7.2f}x {ran:>12} {base:>9}"
        )
    for name, (wall, _), timings in rows[1:]:
        parts = {"baseline": "baseline_cpu_s", "worker start": "worker_start_s", "mutants": "mutants_s"}
        shown = ", ".join(f"{label} {timings[key]:.1f} s" for label, key in parts.items() if key in timings)
        print(f"  {name}: run {timings.get('wall_s', 0):.1f} s of {wall:.1f} s ({shown or 'nothing measured'})")
    print(
        f"one-function change: {count} mutants in {file}:{qualname}; expected to re-run (its own, and those "
        f"whose tests execute it): {len(expected)}; re-ran {rows[-1][2].get('executed', 0):.0f}"
    )


if __name__ == "__main__":
    main()
