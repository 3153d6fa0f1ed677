"""The JSON report in Stryker's mutation-testing-report-schema (version 2), which the HTML report renders.

One report holds the whole kill matrix: each (mutant, device) pair is one Stryker mutant whose id is
`<mutant id>@<device>`. The device is in the id even on a CPU-only run, so that ids correlate across
runs with and without CUDA.

Status mapping, chosen so that the score Stryker's tools compute equals `mutation_score`:
- killed -> Killed, survived -> Survived, no_coverage -> NoCoverage, timeout -> Timeout.
- crashed -> Killed. Stryker's RuntimeError means "the run broke, not the tests' doing" and is left
  out of the score; our crash (a signal, the memory limit) happens while the tests exercise the
  mutant, and `outcomes` counts it as detected. statusReason keeps the word "crashed".
- error -> CompileError: the mutated module did not import; excluded from the score in both.
- no result for a device (an interrupted run) -> Pending, which Stryker also leaves out.
"""

import json
from pathlib import Path

from mutator import __version__
from mutator.mutants import Mutant
from mutator.outcomes import CRASHED, ERROR, KILLED, NO_COVERAGE, SURVIVED, TIMEOUT, Result
from mutator.reports.matrix import devices_of

STATUS = {
    KILLED: "Killed",
    SURVIVED: "Survived",
    NO_COVERAGE: "NoCoverage",
    TIMEOUT: "Timeout",
    CRASHED: "Killed",
    ERROR: "CompileError",
}
THRESHOLDS = {"high": 80, "low": 60}


def changed_span(mutant: Mutant) -> tuple[dict, str]:
    """The Stryker location of the original lines the mutant replaces, and the lines it puts there.

    Whole lines, widened from the mutant's own start/end lines to every line that differs, so that
    putting the replacement over the location always gives exactly the mutated file. Stryker's end
    is exclusive: one past the last character; lines that are deleted take a newline along, so that
    no empty line is left behind.
    """
    old = mutant.original.splitlines(keepends=True)
    new = mutant.mutated.splitlines(keepends=True)
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    first = max(1, min(mutant.start_line, prefix + 1))
    last = min(len(old), max(mutant.end_line, len(old) - suffix, first))
    region = new[first - 1 : len(new) - (len(old) - last)]

    def line_end(line: int) -> dict:
        return {"line": line, "column": len(old[line - 1].rstrip("\r\n")) + 1}

    start, end = {"line": first, "column": 1}, line_end(last)
    if not region and last < len(old):  # deleted lines take their newline with them
        end = {"line": last + 1, "column": 1}
    elif not region and first > 1:  # ... or, at the end of the file, the newline before them
        start = line_end(first - 1)
    return {"start": start, "end": end}, "".join(region).removesuffix("\n")


def _mutant_entry(mutant: Mutant, device: str, result: Result | None) -> dict:
    location, replacement = changed_span(mutant)
    entry = {
        "id": f"{mutant.id}@{device}",
        "mutatorName": f"{mutant.operator}: {mutant.variant}",
        "description": f"{mutant.bug_class} in {mutant.qualname or 'module scope'}, on {device}"
        + (" (the level's canonical bug)" if mutant.canonical else ""),
        "replacement": replacement,
        "location": location,
        "status": STATUS[result.outcome] if result else "Pending",
    }
    if result is None:
        return entry
    entry["statusReason"] = f"{result.outcome}: {result.reason}" if result.reason else result.outcome
    entry["duration"] = round(result.duration_s * 1000.0, 3)
    entry["testsCompleted"] = result.tests_run
    if result.killing_test:
        entry["killedBy"] = [result.killing_test]
        entry["coveredBy"] = [result.killing_test]  # the one covering test we know of; the runner bails there
    elif result.outcome == NO_COVERAGE:
        entry["coveredBy"] = []
    return entry


def _test_files(results: list[Result]) -> dict:
    """The killing tests, grouped by file, so the report's test view can name them."""
    files: dict[str, dict] = {}
    for node_id in sorted({r.killing_test for r in results if r.killing_test}):
        path, _, name = node_id.partition("::")
        files.setdefault(path, {"tests": []})["tests"].append({"id": node_id, "name": name or path})
    return files


def build_report(mutants: list[Mutant], results: list[Result], target_root) -> dict:
    devices = devices_of(results) or ["cpu"]
    cell = {(r.mutant_id, r.device): r for r in results}
    files: dict[str, dict] = {}
    for mutant in sorted(mutants, key=lambda m: (m.file, m.start_line, m.id)):
        entry = files.setdefault(mutant.file, {"language": "python", "source": mutant.original, "mutants": []})
        for device in devices:
            entry["mutants"].append(_mutant_entry(mutant, device, cell.get((mutant.id, device))))
    ids = {m.id for m in mutants}
    return {
        "schemaVersion": "2",
        "thresholds": THRESHOLDS,
        "projectRoot": str(Path(target_root).resolve()),
        "files": files,
        "testFiles": _test_files([r for r in results if r.mutant_id in ids]),
        "framework": {"name": "mutator", "version": __version__},
        "config": {"devices": devices},
    }


def write_json(path, mutants: list[Mutant], results: list[Result], target_root) -> None:
    report = build_report(mutants, results, target_root)
    Path(path).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
