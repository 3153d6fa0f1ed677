"""The session store: what a run writes is there, once, for the next run and for `mutator report`."""

import os
import sqlite3
import subprocess
import sys

import pytest

from mutator.errors import UserError
from mutator.mutants import Mutant
from mutator.outcomes import Result
from mutator.store import Store


def make(n: int) -> Mutant:
    return Mutant("cls", "op", f"v{n}", "pkg/m.py", "f", n, n, "x = 1\n", f"x = {n + 2}\n")


def test_mutants_keep_generation_order_and_are_kept_per_run(tmp_path):
    with Store(tmp_path) as store:
        first, second = store.begin_run({}), store.begin_run({})
        store.set_mutants(first, [make(3), make(1), make(2)])
        store.set_mutants(second, [make(2)])
        assert [m.variant for m in store.mutants(first)] == ["v3", "v1", "v2"]
        assert store.mutants(second) == [make(2)]


def test_a_result_is_cached_once_per_mutant_and_device_and_reported_per_run(tmp_path):
    a, b = make(1), make(2)
    with Store(tmp_path) as store:
        run = store.begin_run({})
        store.set_mutants(run, [a, b])
        store.save_result(Result(a.id, "cpu", "survived"), "fp0", run_id=run)
        store.save_result(Result(a.id, "cpu", "killed", "t.py::test", "assert 1 == 2", 1, 0.5), "fp1", 0.4, run)
        store.save_result(Result(b.id, "cpu", "no_coverage"), "", run_id=run)
        store.save_result(Result(b.id, "cuda", "killed"), "fp2", run_id=run)
        assert store.results(run) == [
            Result(a.id, "cpu", "killed", "t.py::test", "assert 1 == 2", 1, 0.5),
            Result(b.id, "cpu", "no_coverage"),
            Result(b.id, "cuda", "killed"),
        ]
        assert store.results(run, ["cuda"]) == [Result(b.id, "cuda", "killed")]
        assert store.stored_results("cpu")[a.id][1:] == ("fp1", 0.4)
        later = store.begin_run({})
        store.set_mutants(later, [b])  # a result of a mutant no longer generated stays cached, unreported
        store.reuse_result(later, store.stored_results("cpu")[b.id][0])
        assert store.results(later) == [Result(b.id, "cpu", "no_coverage")]
        assert a.id in store.stored_results("cpu")
        assert len(store.results(run)) == 3  # the earlier run still reports what it ran


def test_two_runs_of_different_levels_each_report_their_own_mutants(tmp_path):
    """Interleaved as two runs on one store once were: the later run's set must not replace the other's."""
    level3, level1 = [make(1), make(2)], [make(5), make(6), make(7)]
    with Store(tmp_path) as store:
        r3, r1 = store.begin_run({"level": "3"}), store.begin_run({"level": "1"})
        store.set_mutants(r3, level3)
        store.set_mutants(r1, level1)
        for run, mutants in ((r3, level3), (r1, level1)):
            for m in mutants:
                store.save_result(Result(m.id, "cpu", "killed"), "fp", run_id=run)
        assert [r.mutant_id for r in store.results(r3)] == [m.id for m in level3]
        assert [r.mutant_id for r in store.results(r1)] == [m.id for m in level1]


def test_baseline_is_returned_only_for_its_fingerprint(tmp_path):
    coverage = {"": {"pkg/m.py": {1}}, "t.py::test": {"pkg/m.py": {2, 3}}}
    with Store(tmp_path) as store:
        store.save_baseline("cpu", "fp", {"tests": {"t.py::test": {"duration": 0.1}}}, coverage)
        assert store.baseline("cpu", "other") is None
        assert store.baseline("cuda", "fp") is None
        data, stored = store.baseline("cpu", "fp")
        assert data["tests"]["t.py::test"]["duration"] == 0.1
        assert stored == coverage
        assert store.baseline("cpu") is not None  # any fingerprint: used to balance the next baseline


def test_runs_record_parameters_and_timings(tmp_path):
    with Store(tmp_path) as store:
        assert store.last_run() is None
        first = store.begin_run({"level": "3"})
        second = store.begin_run({"level": "4", "devices": ["cpu"]})
        store.finish_run(second, {"wall_s": 1.5})
        assert store.last_run() == (second, {"level": "4", "devices": ["cpu"]})
        assert store.timings(second) == {"wall_s": 1.5}
        assert first < second


def test_every_result_is_durable_at_once_in_a_wal_journal(tmp_path):
    with Store(tmp_path) as store:
        store.save_result(Result("abc", "cpu", "killed"), "fp")
        # another connection (as after a kill -9) sees it without any close or explicit commit
        other = sqlite3.connect(store.path)
        assert other.execute("SELECT outcome FROM results").fetchall() == [("killed",)]
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        other.close()


def test_reporting_without_a_store_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no session store"):
        Store(tmp_path / "missing", create=False)


def test_a_second_writer_stops_at_once_naming_the_holder(tmp_path):
    with Store(tmp_path) as first:
        first.lock()
        with Store(tmp_path) as second, pytest.raises(UserError) as error:
            second.lock()
        message = error.value.format_message()
        assert f"pid {os.getpid()}" in message and str(tmp_path) in message and "another --store" in message
        assert "\n" not in message
    with Store(tmp_path) as third:  # closing the store released the lock
        third.lock()


def test_the_lock_goes_with_its_holder_after_kill_9(tmp_path):
    code = (
        f"from mutator.store import Store; s = Store({str(tmp_path)!r}); s.lock(); print('locked', flush=True); input()"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with Store(tmp_path) as store, pytest.raises(UserError, match=f"pid {holder.pid}"):
            store.lock()
    finally:
        holder.kill()
        holder.wait()
    with Store(tmp_path) as store:
        store.lock()


def _corrupt(path):
    """Keep the 100-byte header (still a valid SQLite file), overwrite every page after the first."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    data[page:] = bytes((i * 37 + 11) % 256 for i in range(len(data) - page))
    path.write_bytes(bytes(data))


def _foreign(path):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO photos (name) VALUES ('cat.jpg')")
    db.close()


@pytest.mark.parametrize("spoil", [_corrupt, _foreign], ids=["garbage-pages", "foreign-sqlite"])
def test_a_corrupted_or_foreign_store_is_a_one_line_error_naming_the_file(tmp_path, spoil):
    from click.testing import CliRunner

    from mutator.cli import main

    if spoil is _corrupt:
        with Store(tmp_path) as store:
            run = store.begin_run({"devices": ["cpu"]})
            store.set_mutants(run, [make(n) for n in range(300)])
        sqlite3.connect(tmp_path / "session.sqlite").execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
        _corrupt(tmp_path / "session.sqlite")
    else:
        spoil(tmp_path / "session.sqlite")
    before = (tmp_path / "session.sqlite").read_bytes()
    result = CliRunner().invoke(main, ["report", "--store", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert str(tmp_path / "session.sqlite") in lines[0]
    assert "another --store" in lines[0] and "delete" in lines[0]
    assert (tmp_path / "session.sqlite").read_bytes() == before  # nothing was written into it
