"""Per-mutant cost of running a test suite against mutants, three ways, measured side by side in one run.

    python benchmarks/run_overhead.py [--level 3] [--mutmut]

- mutator: `runner.run` with one worker (a long-lived pytest session; each mutant forks a child that
  swaps the mutant in and runs only the tests that cover it, fastest first, until one fails);
- naive: one fresh `python -m pytest` process per mutant, on a copy of the target with the mutated file
  written in, running the same selected tests with `-x` (what a subprocess-per-mutant tool pays);
- with --mutmut, mutmut 3 through its command line (`mutator mutmut`'s driver), one child at a time.
  Its mutants are its own generic ones (about 1,500 on nanochat: the run takes most of an hour on two
  cores), so only its per-mutant wall time compares.

Overhead is a mutant's wall time minus its tests' own run time (pytest's reported durations). Everything
runs one mutant at a time, so the numbers are per-mutant latencies, not parallel throughput.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from mutator import baseline, catalog, mutmut_compare, runner, selection
from mutator.store import Store


def measure_mutator(mutants, target: Path, tests: Path, workdir: Path):
    """(per-mutant walls, per-mutant overheads, selected tests per mutant id, timings)."""
    store_dir = workdir / "store"
    report = runner.run(mutants, target=target, tests=tests, devices=["cpu"], workers=1, store_dir=store_dir)
    with Store(store_dir) as store:
        stored = store.stored_results("cpu")
        base, coverage = store.baseline("cpu")
    walls = [stored[m.id][0].duration_s for m in mutants]
    overheads = [stored[m.id][0].duration_s - stored[m.id][2] for m in mutants]
    selected = {m.id: selection.select_tests(m, base, coverage) for m in mutants}
    return walls, overheads, selected, base["rootdir"], report.timings


def measure_naive(mutants, target: Path, selected: dict[str, list[str]], rootdir: str, workdir: Path):
    """One fresh pytest process per mutant, on a copy of the target with the mutant written in."""
    copy = workdir / "copy"
    ignored = shutil.ignore_patterns(".git", ".mutator", "__pycache__", ".venv", "*.egg-info")
    shutil.copytree(target, copy, ignore=ignored)
    relative_root = Path(rootdir).resolve().relative_to(target)
    env = baseline.subprocess_env(copy)
    walls, overheads = [], []
    for mutant in mutants:
        path = copy / mutant.file
        path.write_text(mutant.mutated, encoding="utf-8")
        report = workdir / "junit.xml"
        command = [sys.executable, "-P", "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
        start = time.perf_counter()
        subprocess.run(command + selected[mutant.id], cwd=copy / relative_root, env=env, capture_output=True)
        wall = time.perf_counter() - start
        path.write_text(mutant.original, encoding="utf-8")
        tests_s = sum(float(case.get("time", 0)) for case in ET.parse(report).iter("testcase"))
        walls.append(wall)
        overheads.append(wall - tests_s)
    return walls, overheads


def measure_mutmut(target: Path, tests: Path):
    run = mutmut_compare.run_mutmut(target, tests, max_children=1)
    checked = [s for s in run.statuses.values() if s not in ("skipped", "not checked")]
    shutil.rmtree(run.scratch, ignore_errors=True)
    return run.wall_s, len(checked)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--level", default="3")
    parser.add_argument("--mutmut", action="store_true", help="also run mutmut (most of an hour on 2 cores)")
    args = parser.parse_args()
    target = catalog.default_target()
    tests = runner.default_tests(target)
    mutants = catalog.generate_mutants(args.level, target)
    print(f"{len(mutants)} level-{args.level} mutants of {target.name}/, suite {tests.relative_to(target)}, "
          f"{os.cpu_count()} cores, one mutant at a time\n")

    with tempfile.TemporaryDirectory(prefix="run-overhead-") as tmp:
        work = Path(tmp)
        ours, our_overheads, selected, rootdir, timings = measure_mutator(mutants, target, tests, work / "mutator")
        (work / "naive").mkdir()
        naive, naive_overheads = measure_naive(mutants, target, selected, rootdir, work / "naive")
        mutmut = measure_mutmut(target, tests) if args.mutmut else None

    rows = [
        ("mutator (fork + swap)", len(ours), statistics.median(ours), statistics.median(our_overheads)),
        ("naive subprocess", len(naive), statistics.median(naive), statistics.median(naive_overheads)),
    ]
    if mutmut:
        wall_s, count = mutmut
        rows.append(("mutmut 3 (its own mutants)", count, wall_s / count, None))
    print(f"{'runner':28} {'mutants':>8} {'wall/mutant':>12} {'overhead':>10} {'wall vs mutator':>16}")
    for name, count, wall, overhead in rows:
        shown = "n/a" if overhead is None else f"{overhead * 1000:.0f} ms"
        print(f"{name:28} {count:>8} {wall * 1000:>9.0f} ms {shown:>10} {wall / rows[0][2]:>15.1f}x")
    print(f"\nmutator baseline (suite once, with per-test coverage): {timings.get('baseline_cpu_s', 0):.1f} s; "
          f"worker start: {timings.get('worker_start_s', 0):.1f} s")
    print("median overhead ratio naive/mutator: "
          f"{statistics.median(naive_overheads) / statistics.median(our_overheads):.1f}x")
    if mutmut:
        print("mutmut's figure is its whole run (stats pass included) over the mutants it checked.")


if __name__ == "__main__":
    main()
