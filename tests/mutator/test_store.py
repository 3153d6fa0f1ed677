"""The session store: what a run writes is there, once, for the next run and for `mutator report`."""

import sqlite3

import pytest

from mutator.errors import UserError
from mutator.mutants import Mutant
from mutator.outcomes import Result
from mutator.store import Store


def make(n: int) -> Mutant:
    return Mutant("cls", "op", f"v{n}", "pkg/m.py", "f", n, n, "x = 1\n", f"x = {n + 2}\n")


def test_mutants_keep_generation_order_and_are_replaced_as_a_set(tmp_path):
    with Store(tmp_path) as store:
        store.set_mutants([make(3), make(1), make(2)])
        assert [m.variant for m in store.mutants()] == ["v3", "v1", "v2"]
        store.set_mutants([make(2)])
        assert store.mutants() == [make(2)]


def test_a_result_is_stored_once_per_mutant_and_device_and_reported_for_current_mutants(tmp_path):
    a, b = make(1), make(2)
    with Store(tmp_path) as store:
        store.set_mutants([a, b])
        store.save_result(Result(a.id, "cpu", "survived"), "fp0")
        store.save_result(Result(a.id, "cpu", "killed", "t.py::test", "assert 1 == 2", 1, 0.5), "fp1", 0.4)
        store.save_result(Result(b.id, "cpu", "no_coverage"), "")
        store.save_result(Result(b.id, "cuda", "killed"), "fp2")
        assert store.results() == [
            Result(a.id, "cpu", "killed", "t.py::test", "assert 1 == 2", 1, 0.5),
            Result(b.id, "cpu", "no_coverage"),
            Result(b.id, "cuda", "killed"),
        ]
        assert store.results(["cuda"]) == [Result(b.id, "cuda", "killed")]
        assert store.stored_results("cpu")[a.id][1:] == ("fp1", 0.4)
        store.set_mutants([b])  # a result of a mutant no longer generated stays cached but is not reported
        assert [r.mutant_id for r in store.results()] == [b.id, b.id]
        assert a.id in store.stored_results("cpu")


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
