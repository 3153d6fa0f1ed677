"""What happened to one mutant on one device: the contract between the runner, the store and reports.

Scores follow Stryker's definitions:
- mutation score = (killed + timeout) / valid, where valid excludes error (the mutant did not even
  import or compile: not a test's achievement, not a test's failure);
- test strength (PIT) = (killed + timeout) / covered, where covered also excludes no_coverage.
"""

from dataclasses import asdict, dataclass

KILLED = "killed"
SURVIVED = "survived"
NO_COVERAGE = "no_coverage"
TIMEOUT = "timeout"
CRASHED = "crashed"  # killed by a signal or by the memory limit: counts as detected
ERROR = "error"  # the mutated module failed to compile or import

OUTCOMES = (KILLED, SURVIVED, NO_COVERAGE, TIMEOUT, CRASHED, ERROR)
DETECTED = (KILLED, TIMEOUT, CRASHED)


@dataclass(frozen=True)
class Result:
    mutant_id: str
    device: str  # "cpu" or "cuda"
    outcome: str  # one of OUTCOMES
    killing_test: str | None = None  # pytest node id of the first failing test
    reason: str = ""  # one line: the assertion or exception that killed it, or why it timed out
    tests_run: int = 0
    duration_s: float = 0.0  # wall time spent on this mutant

    def to_dict(self) -> dict:
        return asdict(self)


def mutation_score(results: list[Result]) -> float | None:
    """Stryker's score in percent over valid mutants, None when there are none."""
    valid = [r for r in results if r.outcome != ERROR]
    return 100.0 * sum(r.outcome in DETECTED for r in valid) / len(valid) if valid else None


def test_strength(results: list[Result]) -> float | None:
    """PIT's test strength in percent: detected over mutants some test covers."""
    covered = [r for r in results if r.outcome not in (ERROR, NO_COVERAGE)]
    return 100.0 * sum(r.outcome in DETECTED for r in covered) / len(covered) if covered else None
