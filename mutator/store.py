"""The session store: one SQLite file that a run writes as it goes and that resumes or re-reports it.

Everything a run learns is committed the moment it is known (WAL journal, one transaction per
result), so a run stopped by Ctrl-C or `kill -9` loses at most the mutants that were in flight, and
the same command run again finds the rest. Results are keyed by (mutant, device) and carry a
fingerprint of the code that produced them (the mutant's id already hashes its own file; the
fingerprint hashes the selected tests and every file they depend on), so a re-run re-tests exactly
the mutants whose fingerprint moved.

Tables:
  runs      one row per `mutator run`: its parameters (JSON), start and end time
  mutants   the mutants of the latest run, in generation order (Mutant.to_dict as JSON)
  baselines per device: the fingerprint of the target and suite it was measured on, and its data
  coverage  per device, test and target file: the lines that test executed ("" = import time)
  results   per mutant and device: the Result, its fingerprint, and the selected tests' own time
  timings   named wall-clock figures of each run (baseline, worker start-up, mutants, total)
"""

import json
import sqlite3
import time
from pathlib import Path

from mutator.errors import UserError
from mutator.mutants import Mutant
from mutator.outcomes import Result

DB_NAME = "session.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    params TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS mutants (
    id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS baselines (
    device TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS coverage (
    device TEXT NOT NULL,
    test TEXT NOT NULL,
    file TEXT NOT NULL,
    lines TEXT NOT NULL,
    PRIMARY KEY (device, test, file)
);
CREATE TABLE IF NOT EXISTS results (
    mutant_id TEXT NOT NULL,
    device TEXT NOT NULL,
    outcome TEXT NOT NULL,
    killing_test TEXT,
    reason TEXT NOT NULL,
    tests_run INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    tests_s REAL NOT NULL,
    fingerprint TEXT NOT NULL,
    run_id INTEGER,
    PRIMARY KEY (mutant_id, device)
);
CREATE TABLE IF NOT EXISTS timings (
    run_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""


class Store:
    """The session database under a directory (default `.mutator/` in the current directory)."""

    def __init__(self, directory: str | Path, create: bool = True):
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        if not create and not self.path.exists():
            raise UserError(f"no session store at {self.path}: run `mutator run` first")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # autocommit mode: every statement outside an explicit `with self.db` block commits at once
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process kill
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise UserError(f"cannot open the session store {self.path}: {error}") from None

    def close(self):
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _transaction(self):
        """A `with` block that commits on success and rolls back on an exception."""
        self.db.execute("BEGIN")
        return _Commit(self.db)

    # --- runs -----------------------------------------------------------------------------------

    def begin_run(self, params: dict) -> int:
        cursor = self.db.execute("INSERT INTO runs (params, started) VALUES (?, ?)", (json.dumps(params), time.time()))
        return cursor.lastrowid

    def finish_run(self, run_id: int, timings: dict[str, float]):
        with self._transaction():
            for name, seconds in timings.items():
                self.db.execute(
                    "INSERT OR REPLACE INTO timings (run_id, name, seconds) VALUES (?, ?, ?)",
                    (run_id, name, float(seconds)),
                )
            self.db.execute("UPDATE runs SET finished = ? WHERE id = ?", (time.time(), run_id))

    def last_run(self) -> tuple[int, dict] | None:
        """(id, params) of the latest run, finished or not."""
        row = self.db.execute("SELECT id, params FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def timings(self, run_id: int) -> dict[str, float]:
        rows = self.db.execute("SELECT name, seconds FROM timings WHERE run_id = ?", (run_id,))
        return dict(rows.fetchall())

    # --- mutants --------------------------------------------------------------------------------

    def set_mutants(self, mutants: list[Mutant]):
        """Make `mutants` the session's mutant set (results of others stay, as a cache)."""
        with self._transaction():
            self.db.execute("DELETE FROM mutants")
            self.db.executemany(
                "INSERT OR REPLACE INTO mutants (id, position, data) VALUES (?, ?, ?)",
                [(m.id, i, json.dumps(m.to_dict())) for i, m in enumerate(mutants)],
            )

    def mutants(self) -> list[Mutant]:
        rows = self.db.execute("SELECT data FROM mutants ORDER BY position").fetchall()
        return [Mutant.from_dict(json.loads(data)) for (data,) in rows]

    # --- baselines ------------------------------------------------------------------------------

    def save_baseline(self, device: str, fingerprint: str, data: dict, coverage: dict[str, dict[str, list]]):
        """data: JSON-able facts about the run (tests, durations, rootdir); coverage: test -> file -> lines."""
        with self._transaction():
            self.db.execute("DELETE FROM coverage WHERE device = ?", (device,))
            self.db.executemany(
                "INSERT INTO coverage (device, test, file, lines) VALUES (?, ?, ?, ?)",
                [
                    (device, test, file, json.dumps(sorted(lines)))
                    for test, files in coverage.items()
                    for file, lines in files.items()
                ],
            )
            self.db.execute(
                "INSERT OR REPLACE INTO baselines (device, fingerprint, data) VALUES (?, ?, ?)",
                (device, fingerprint, json.dumps(data)),
            )

    def baseline(self, device: str, fingerprint: str | None = None):
        """(data, coverage) of the device's baseline; None if absent or measured on other code."""
        row = self.db.execute("SELECT fingerprint, data FROM baselines WHERE device = ?", (device,)).fetchone()
        if row is None or (fingerprint is not None and row[0] != fingerprint):
            return None
        coverage: dict[str, dict[str, set[int]]] = {}
        for test, file, lines in self.db.execute("SELECT test, file, lines FROM coverage WHERE device = ?", (device,)):
            coverage.setdefault(test, {})[file] = set(json.loads(lines))
        return json.loads(row[1]), coverage

    # --- results --------------------------------------------------------------------------------

    def save_result(self, result: Result, fingerprint: str, tests_s: float = 0.0, run_id: int | None = None):
        """Commit one result at once: this is what makes a killed run resumable."""
        self.db.execute(
            "INSERT OR REPLACE INTO results (mutant_id, device, outcome, killing_test, reason, tests_run,"
            " duration_s, tests_s, fingerprint, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                result.mutant_id,
                result.device,
                result.outcome,
                result.killing_test,
                result.reason,
                result.tests_run,
                result.duration_s,
                tests_s,
                fingerprint,
                run_id,
            ),
        )

    def stored_results(self, device: str) -> dict[str, tuple[Result, str, float]]:
        """mutant id -> (result, fingerprint, tests_s) for every result stored for the device."""
        rows = self.db.execute(
            "SELECT mutant_id, outcome, killing_test, reason, tests_run, duration_s, fingerprint, tests_s"
            " FROM results WHERE device = ?",
            (device,),
        )
        return {
            mid: (Result(mid, device, outcome, test, reason, n, dur), fp, tests_s)
            for mid, outcome, test, reason, n, dur, fp, tests_s in rows
        }

    def results(self, devices: list[str] | None = None) -> list[Result]:
        """Results of the session's current mutants, in mutant order, then device order."""
        query = (
            "SELECT r.mutant_id, r.device, r.outcome, r.killing_test, r.reason, r.tests_run, r.duration_s"
            " FROM results r JOIN mutants m ON m.id = r.mutant_id ORDER BY m.position, r.device"
        )
        results = [Result(*row) for row in self.db.execute(query)]
        return [r for r in results if devices is None or r.device in devices]


class _Commit:
    def __init__(self, db):
        self.db = db

    def __enter__(self):
        return self.db

    def __exit__(self, exc_type, *rest):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
