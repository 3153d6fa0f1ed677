"""The kill matrix every report shares: one row per mutant, one cell per device.

Rows put what needs a test author's attention first: survivors, then mutants no test covers, then
the ones that were detected or broken in some unusual way (timeout, crashed, error), then plain kills.
A mutant's place is set by its worst device: survived on CUDA but killed on CPU is still a survivor.
"""

from dataclasses import dataclass

from mutator.mutants import Mutant
from mutator.outcomes import CRASHED, ERROR, KILLED, NO_COVERAGE, SURVIVED, TIMEOUT, Result

RANK = {SURVIVED: 0, NO_COVERAGE: 1, TIMEOUT: 2, CRASHED: 2, ERROR: 2, KILLED: 3}
NOT_RUN = len(RANK)  # a mutant with no result on some device (an interrupted run) sorts last


@dataclass(frozen=True)
class Row:
    mutant: Mutant
    cells: dict[str, Result | None]  # device -> its result, None when it has none

    @property
    def rank(self) -> int:
        return min(RANK[r.outcome] if r else NOT_RUN for r in self.cells.values()) if self.cells else NOT_RUN

    def has(self, *outcomes: str) -> bool:
        return any(r is not None and r.outcome in outcomes for r in self.cells.values())


def devices_of(results: list[Result]) -> list[str]:
    """The devices that have results, CPU first, then the rest by name."""
    return sorted({r.device for r in results}, key=lambda d: (d != "cpu", d))


def rows(mutants: list[Mutant], results: list[Result], devices: list[str]) -> list[Row]:
    cell = {(r.mutant_id, r.device): r for r in results}
    table = [Row(m, {d: cell.get((m.id, d)) for d in devices}) for m in mutants]
    return sorted(table, key=lambda row: (row.rank, row.mutant.file, row.mutant.start_line, row.mutant.id))


def short_test(node_id: str | None) -> str:
    """A pytest node id without its directories: tests/nanochat/test_gpt.py::test_x -> test_gpt.py::test_x."""
    if not node_id:
        return ""
    path, sep, rest = node_id.partition("::")
    return path.rsplit("/", 1)[-1] + sep + rest
