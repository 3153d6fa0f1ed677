"""The session store: one SQLite file that a run writes as it goes and that resumes or re-reports it.

Everything a run learns is committed the moment it is known (WAL journal, one transaction per
result), so a run stopped by Ctrl-C or `kill -9` loses at most the mutants that were in flight, and
the same command run again finds the rest. Results are keyed by (mutant, device) and carry a
fingerprint of what produced them (mutator.selection: the mutant by meaning, the normalised code of
the functions its tests execute, its tests), and are also kept by fingerprint alone, so a re-run
re-tests exactly the mutants whose fingerprint moved, whatever their ids.

One writer at a time: `lock()` takes an exclusive `flock` on `session.lock` beside the database for as
long as the store is open. A second `mutator run` on the same store does not wait: it stops at once
with a one-line error that names the holder (its pid, command and start time), so a CI job never
hangs behind a forgotten run and two runs never both do all the work. The kernel drops the lock when
its holder exits, `kill -9` included, so a stale lock file never blocks anyone. Readers (`mutator
report`) take no lock: WAL lets them read while a run writes.

Each run keeps its own mutant set and its own results (`run_mutants`, `run_results`), so a run and a
later `mutator report` show exactly what that run planted and measured, whatever other runs (another
level, another scope) did to the store since. `results` is the cache across runs that reuse reads.

A file that is not a store (a foreign SQLite database, or one whose pages are corrupted) is refused
with a one-line error that names it, before anything is written into it.

Tables:
  runs         one row per `mutator run`: its parameters (JSON), start and end time
  run_mutants  per run: its mutants, in generation order (Mutant.to_dict as JSON)
  run_results  per run, mutant and device: the Result that run reports (run or reused)
  baselines    per device: the fingerprint of the target and suite it was measured on, and its data
  coverage     per device, test and target file: the lines that test executed ("" = import time)
  results      per mutant and device, across runs: the latest Result, its fingerprint, the tests' time
  reusable     per fingerprint (which hashes the device, and the mutant by meaning, not by id): every
               result measured, so one survives a comment that moves every id, and a reverted change
               finds its earlier results again
  mutant_cache generated mutants per (level, file, file digest, generator digest): no LibCST work
               for a file that did not change
  mutant_keys  per mutant id: its key by meaning (mutator.selection.mutant_key), which takes a parse
  timings      named wall-clock figures of each run (baseline, worker start-up, mutants, total)
"""

import fcntl
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

from mutator.errors import UserError
from mutator.mutants import Mutant
from mutator.outcomes import Result

DB_NAME = "session.sqlite"
LOCK_NAME = "session.lock"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    params TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS run_mutants (
    run_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    mutant_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE TABLE IF NOT EXISTS run_results (
    run_id INTEGER NOT NULL,
    mutant_id TEXT NOT NULL,
    device TEXT NOT NULL,
    outcome TEXT NOT NULL,
    killing_test TEXT,
    reason TEXT NOT NULL,
    tests_run INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    PRIMARY KEY (run_id, mutant_id, device)
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
CREATE TABLE IF NOT EXISTS reusable (
    fingerprint TEXT PRIMARY KEY,
    outcome TEXT NOT NULL,
    killing_test TEXT,
    reason TEXT NOT NULL,
    tests_run INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    tests_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mutant_cache (
    key TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mutant_keys (
    mutant_id TEXT PRIMARY KEY,
    key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS timings (
    run_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""


# The tables a store may hold: ours, sqlite's own, and those of earlier versions of the store.
KNOWN_TABLES = {
    "runs", "run_mutants", "run_results", "baselines", "coverage", "results", "timings",
    "reusable", "mutant_cache", "mutant_keys", "sqlite_sequence", "mutants",
}  # fmt: skip


class Store:
    """The session database under a directory (default `.mutator/` in the current directory)."""

    def __init__(self, directory: str | Path, create: bool = True):
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self._lock_file = None
        if not create and not self.path.exists():
            raise UserError(f"no session store at {self.path}: run `mutator run` first")
        if self.directory.exists() and not self.directory.is_dir():
            raise UserError(f"the session store {self.directory} is a file, not a directory: pass another --store")
        existing = self.path.is_file() and self.path.stat().st_size > 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # autocommit mode: every statement outside an explicit `with self.db` block commits at once
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        except (OSError, sqlite3.Error) as error:
            raise UserError(f"cannot open the session store {self.path}: {error}") from None
        try:
            if existing:
                self._check_ours()
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process kill
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as error:
            self.db.close()
            raise self._unusable(str(error)) from None
        except UserError:
            self.db.close()
            raise

    def _check_ours(self):
        """Refuse a corrupted database, or one that is not a session store, before writing into it."""
        problems = [row[0] for row in self.db.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise self._unusable(f"corrupted: {problems[0]}")
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and ("runs" not in tables or tables - KNOWN_TABLES):
            foreign = ", ".join(sorted(tables - KNOWN_TABLES)[:3]) or "no runs table"
            raise self._unusable(f"a SQLite database of something else ({foreign})")

    def _unusable(self, why: str) -> UserError:
        return UserError(
            f"{self.path} is not a usable mutator session store ({why}): pass another --store, or delete {self.path}"
        )

    def close(self):
        self.db.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _transaction(self):
        """A `with` block that commits on success and rolls back on an exception."""
        self.db.execute("BEGIN")
        return _Commit(self.db)

    # --- one writer ---------------------------------------------------------------------------------

    def lock(self):
        """Become the store's one writer until `close`, or stop with a UserError naming the holder."""
        path = self.directory / LOCK_NAME
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 -- held open for the lock's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise UserError(
                f"the session store {self.directory} is in use by {holder}: wait for that run to end,"
                " or pass another --store"
            ) from None
        handle.seek(0)
        handle.truncate()
        command = " ".join(["mutator", *sys.argv[1:]])[:200]
        handle.write(f"pid {os.getpid()} ({command}, since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        handle.flush()
        self._lock_file = handle

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

    def set_mutants(self, run_id: int, mutants: list[Mutant]):
        """Record `mutants` as the run's mutant set, in generation order."""
        with self._transaction():
            self.db.execute("DELETE FROM run_mutants WHERE run_id = ?", (run_id,))
            self.db.executemany(
                "INSERT INTO run_mutants (run_id, position, mutant_id, data) VALUES (?, ?, ?, ?)",
                [(run_id, i, m.id, json.dumps(m.to_dict())) for i, m in enumerate(mutants)],
            )

    def mutants(self, run_id: int) -> list[Mutant]:
        rows = self.db.execute("SELECT data FROM run_mutants WHERE run_id = ? ORDER BY position", (run_id,))
        return [Mutant.from_dict(json.loads(data)) for (data,) in rows.fetchall()]

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
        """Commit one result at once, to the cache and to the run's own results: this is what makes a
        killed run resumable."""
        row = (
            result.mutant_id,
            result.device,
            result.outcome,
            result.killing_test,
            result.reason,
            result.tests_run,
            result.duration_s,
        )
        with self._transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO results (mutant_id, device, outcome, killing_test, reason, tests_run,"
                " duration_s, tests_s, fingerprint, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, tests_s, fingerprint, run_id),
            )
            if fingerprint:
                self.db.execute(
                    "INSERT OR REPLACE INTO reusable (fingerprint, outcome, killing_test, reason, tests_run,"
                    " duration_s, tests_s) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (fingerprint, *row[2:], tests_s),
                )
            if run_id is not None:
                self._run_result(run_id, row)

    def reusable(self, fingerprint: str, mutant_id: str, device: str) -> tuple[Result, float] | None:
        """The result measured under this fingerprint (by whichever mutant id), as this mutant's, and
        its tests' time; None if there is none."""
        row = self.db.execute(
            "SELECT outcome, killing_test, reason, tests_run, duration_s, tests_s FROM reusable WHERE fingerprint = ?",
            (fingerprint,),
        ).fetchone()
        return (Result(mutant_id, device, *row[:5]), row[5]) if row else None

    def reuse_result(self, run_id: int, result: Result):
        """A cached result counts for this run too: it is part of what the run reports."""
        row = (result.mutant_id, result.device, result.outcome, result.killing_test, result.reason)
        self._run_result(run_id, (*row, result.tests_run, result.duration_s))

    def _run_result(self, run_id: int, row: tuple):
        self.db.execute(
            "INSERT OR REPLACE INTO run_results (run_id, mutant_id, device, outcome, killing_test, reason,"
            " tests_run, duration_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, *row),
        )

    def stored_results(self, device: str) -> dict[str, tuple[Result, str, float]]:
        """mutant id -> (result, fingerprint, tests_s) for every result cached for the device."""
        rows = self.db.execute(
            "SELECT mutant_id, outcome, killing_test, reason, tests_run, duration_s, fingerprint, tests_s"
            " FROM results WHERE device = ?",
            (device,),
        )
        return {
            mid: (Result(mid, device, outcome, test, reason, n, dur), fp, tests_s)
            for mid, outcome, test, reason, n, dur, fp, tests_s in rows
        }

    # --- generated mutants ------------------------------------------------------------------------

    def cached_mutants(self, key: str) -> list[Mutant] | None:
        row = self.db.execute("SELECT data FROM mutant_cache WHERE key = ?", (key,)).fetchone()
        return [Mutant.from_dict(d) for d in json.loads(row[0])] if row else None

    def cache_mutants(self, key: str, mutants: list[Mutant]):
        data = json.dumps([m.to_dict() for m in mutants])
        self.db.execute("INSERT OR REPLACE INTO mutant_cache (key, data) VALUES (?, ?)", (key, data))

    def mutant_keys(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT mutant_id, key FROM mutant_keys").fetchall())

    def save_mutant_keys(self, keys: dict[str, str]):
        with self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO mutant_keys (mutant_id, key) VALUES (?, ?)", keys.items())

    def results(self, run_id: int, devices: list[str] | None = None) -> list[Result]:
        """The run's results, in its mutant order, then device order."""
        query = (
            "SELECT r.mutant_id, r.device, r.outcome, r.killing_test, r.reason, r.tests_run, r.duration_s"
            " FROM run_results r JOIN run_mutants m ON m.run_id = r.run_id AND m.mutant_id = r.mutant_id"
            " WHERE r.run_id = ? ORDER BY m.position, r.device"
        )
        results = [Result(*row) for row in self.db.execute(query, (run_id,))]
        return [r for r in results if devices is None or r.device in devices]


class _Commit:
    def __init__(self, db):
        self.db = db

    def __enter__(self):
        return self.db

    def __exit__(self, exc_type, *rest):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
