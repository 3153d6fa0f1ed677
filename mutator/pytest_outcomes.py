"""Run pytest and write every test's outcome to a JSON file, read from pytest's own reports.

    python -m mutator.pytest_outcomes OUT.json [pytest args...]

OUT.json maps node id -> "passed" | "failed" | "skipped", plus a one-line reason for failures.
"""

import json
import sys

import pytest


class OutcomeRecorder:
    def __init__(self):
        self.outcomes: dict[str, str] = {}
        self.reasons: dict[str, str] = {}

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.outcomes[report.nodeid] = "failed"
            self.reasons.setdefault(report.nodeid, _one_line(report))
        elif report.skipped and report.when == "setup":
            self.outcomes[report.nodeid] = "skipped"
        elif report.when == "call":
            self.outcomes.setdefault(report.nodeid, "passed")

    def pytest_collectreport(self, report):
        if report.failed:  # a test file that does not even import fails as a whole
            self.outcomes[report.nodeid] = "failed"
            self.reasons[report.nodeid] = _one_line(report)


def _one_line(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text.strip().splitlines()[0][:200] if text.strip() else "failed"


def main(argv: list[str]) -> int:
    out, pytest_args = argv[0], argv[1:]
    recorder = OutcomeRecorder()
    code = pytest.main(pytest_args, plugins=[recorder])
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"outcomes": recorder.outcomes, "reasons": recorder.reasons, "exit_code": int(code)}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
