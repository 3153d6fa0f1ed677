"""The runner end to end on the toy target (tests/mutator/fixtures/toy) with hand-planted mutants: every
outcome classified without stopping the run, in both isolation modes; resume after `kill -9`; re-runs
that re-test only what a change can affect; a target left byte-identical."""

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mutator import runner, selection
from mutator.cli import main
from mutator.errors import UserError
from mutator.mutants import Mutant
from mutator.store import Store

TOY = Path(__file__).resolve().parent / "fixtures" / "toy"
OPTIONS = dict(devices="cpu", workers=2, timeout_constant=1.0, memory_limit_mb=256)


def _load_planted():
    spec = importlib.util.spec_from_file_location("toy_planted", TOY / "planted.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PLANTED


PLANTED = _load_planted()
MUTANTS = [mutant for _, _, mutant in PLANTED.values()]
# run on the in-process path too: no fallback ones (the fork run covers those), the hang and the crash
IN_PROCESS = ["killed", "survived", "hang", "segfault", "memory", "decorated", "default", "fixture", "torch"]


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root (names included: a new __pycache__ counts) and its content hash."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def outcomes(results) -> dict[str, tuple]:
    return {(r.mutant_id, r.device): (r.outcome, r.killing_test) for r in results}


def mismatches(results, names) -> dict:
    got = {r.mutant_id: r for r in results}
    wrong = {}
    for name in names:
        outcome, test, mutant = PLANTED[name]
        result = got[mutant.id]
        if result.outcome != outcome or (test is not None and result.killing_test != test):
            wrong[name] = (result.outcome, result.killing_test, result.reason)
    return wrong


def copy_store(source: Path, destination: Path, keep_results: bool = False) -> Path:
    """A store with the toy's baseline (saves re-measuring it); results dropped unless kept."""
    shutil.copytree(source, destination)
    if not keep_results:
        with sqlite3.connect(destination / "session.sqlite") as db:
            db.execute("DELETE FROM results")
            db.execute("DELETE FROM reusable")
    return destination


@pytest.fixture(scope="module")
def fork_run(tmp_path_factory):
    store = tmp_path_factory.mktemp("fork-store")
    before = tree_digest(TOY)
    report = runner.run(MUTANTS, target=TOY, tests=TOY / "tests", store_dir=store, **OPTIONS)
    return report, store, before


def test_every_planted_mutant_is_classified_in_one_forked_run(fork_run):
    report, _, _ = fork_run
    assert len(report.results) == len(MUTANTS)
    assert mismatches(report.results, PLANTED) == {}
    assert report.timings["executed"] == len(MUTANTS) - 2  # the syntax error and the uncovered one need no run


def test_reasons_say_why(fork_run):
    got = {r.mutant_id: r for r in fork_run[0].results}
    assert got[PLANTED["killed"][2].id].reason == "assert -1 == 5"
    assert got[PLANTED["segfault"][2].id].reason == "killed by SIGSEGV"
    assert "MemoryError" in got[PLANTED["memory"][2].id].reason
    assert "NameError" in got[PLANTED["import"][2].id].reason


def test_the_target_tree_is_byte_identical_after_a_run(fork_run):
    assert tree_digest(TOY) == fork_run[2]


def test_the_same_command_again_reuses_every_result(fork_run):
    report, store, _ = fork_run
    again = runner.run(MUTANTS, target=TOY, tests=TOY / "tests", store_dir=store, **OPTIONS)
    assert again.timings["executed"] == 0
    assert outcomes(again.results) == outcomes(report.results)


def test_in_process_isolation_swaps_restores_and_replaces_a_hung_or_crashed_worker(fork_run, tmp_path):
    store = copy_store(fork_run[1], tmp_path / "store")
    chosen = [PLANTED[name][2] for name in IN_PROCESS]
    report = runner.run(chosen, target=TOY, tests=TOY / "tests", store_dir=store, isolation="inprocess", **OPTIONS)
    assert mismatches(report.results, IN_PROCESS) == {}
    assert "baseline_cpu_s" not in report.timings  # reused from the copied store


def test_kill_9_mid_run_then_the_same_command_resumes_without_loss_or_duplicates(fork_run, tmp_path):
    store = copy_store(fork_run[1], tmp_path / "store")
    before = tree_digest(TOY)
    script = textwrap.dedent(
        f"""
        import importlib.util, sys
        from mutator import runner
        spec = importlib.util.spec_from_file_location("toy_planted", {str(TOY / "planted.py")!r})
        planted = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(planted)
        mutants = [m for _, _, m in planted.PLANTED.values()]
        runner.run(mutants, target={str(TOY)!r}, tests={str(TOY / "tests")!r}, store_dir={str(store)!r}, **{OPTIONS!r})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    landed = 0
    while landed < 8 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        with sqlite3.connect(store / "session.sqlite") as db:
            landed = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < landed < len(MUTANTS)
    assert tree_digest(TOY) == before

    resumed = runner.run(MUTANTS, target=TOY, tests=TOY / "tests", store_dir=store, **OPTIONS)
    assert resumed.timings["executed"] <= len(MUTANTS) - landed + 2  # (+ the two that never run)
    assert outcomes(resumed.results) == outcomes(fork_run[0].results)
    with sqlite3.connect(store / "session.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == len(MUTANTS)


def torch_free_copy(tmp_path: Path) -> Path:
    """A copy of the toy without its torch tests: its baselines start in a fraction of the time."""
    target = tmp_path / "toy"
    shutil.copytree(TOY, target, ignore=shutil.ignore_patterns("__pycache__", "test_tensors.py"))
    return target


def test_a_changed_test_file_retests_only_the_mutants_its_tests_cover(tmp_path):
    target = torch_free_copy(tmp_path)
    chosen = [PLANTED[name][2] for name in ("killed", "method")]
    options = dict(OPTIONS, workers=1, store_dir=tmp_path / "store")
    first = runner.run(chosen, target=target, tests=target / "tests", **options)
    assert first.timings["executed"] == 2
    with open(target / "tests" / "test_counter.py", "a") as tests_file:
        tests_file.write("\n\ndef test_counter_bumps_by_one():\n    assert core.Counter().bump() == 1\n")
    second = runner.run(chosen, target=target, tests=target / "tests", **options)
    assert "baseline_cpu_s" in second.timings  # the suite changed: measured again
    assert second.timings["executed"] == 1  # Counter.bump's; test_core.py, which covers add, did not change
    assert [r.outcome for r in second.results] == ["killed", "killed"]


def plant_in(target: Path, name: str, file: str, qualname: str, old: str, new: str) -> Mutant:
    """A mutant of the file as it is now in `target` (its id moves with every edit of the file)."""
    original = (target / file).read_text()
    start = original[: original.index(old)].count("\n") + 1
    mutated = original.replace(old, new, 1)
    return Mutant("toy", "planted", name, file, qualname, start, start + old.count("\n"), original, mutated)


def toy_mutants(target: Path) -> list[Mutant]:
    core = "toypkg/core.py"
    return [
        plant_in(target, "killed", core, "add", "return a + b", "return a - b"),
        plant_in(target, "survived", core, "is_even", "n % 2 == 0", "n % 4 == 0"),
        plant_in(target, "method", core, "Counter.bump", "self.count += by", "self.count -= by"),
        plant_in(target, "total", core, "total", "result += value", "result -= value"),
    ]


def test_comments_and_formatting_rerun_nothing_one_function_reruns_its_own_and_a_revert_reuses(tmp_path):
    target = torch_free_copy(tmp_path)
    options = dict(OPTIONS, workers=1, store_dir=tmp_path / "store")
    core = target / "toypkg" / "core.py"
    clean = core.read_text()
    first = runner.run(toy_mutants(target), target=target, tests=target / "tests", **options)
    assert first.timings["executed"] == 4
    verdicts = [r.outcome for r in first.results]

    # a comment above everything (every line moves, every mutant id changes) and a reformatted def
    core.write_text(
        "# a comment that moves every line\n" + clean.replace("def add(a, b):", "def add(a,\n        b):  # hi")
    )
    again = runner.run(toy_mutants(target), target=target, tests=target / "tests", **options)
    assert again.timings["executed"] == 0
    assert "baseline_cpu_s" not in again.timings  # the same AST: the baseline stands, its lines remapped
    assert [r.outcome for r in again.results] == verdicts
    # the remapped coverage still selects the right test for a mutant on the moved lines
    with Store(tmp_path / "store") as store:
        base, coverage = store.baseline("cpu")
    coverage = selection.remap_coverage(coverage, base["sources"], target)
    assert selection.select_tests(toy_mutants(target)[0], base, coverage) == ["tests/test_core.py::test_add"]

    # one function's body: its own mutant, and those whose tests execute it (none other here)
    core.write_text(clean.replace("result = 0", "result = 0 * 1"))
    total = runner.run(toy_mutants(target), target=target, tests=target / "tests", **options)
    assert total.timings["executed"] == 1  # the mutant of total; add, is_even and bump stand

    core.write_text(clean)  # reverted: every result is found again
    reverted = runner.run(toy_mutants(target), target=target, tests=target / "tests", **options)
    assert reverted.timings["executed"] == 0
    assert [r.outcome for r in reverted.results] == verdicts


def test_a_suite_that_fails_on_the_clean_target_stops_the_run_with_the_failing_tests(tmp_path):
    target = torch_free_copy(tmp_path)
    tests_file = target / "tests" / "test_core.py"
    tests_file.write_text(tests_file.read_text().replace("== 5", "== 6"))
    options = dict(OPTIONS, workers=1, store_dir=tmp_path / "store")
    with pytest.raises(UserError, match=r"fails on the clean target \(cpu\): tests/test_core.py::test_add"):
        runner.run([PLANTED["killed"][2]], target=target, tests=target / "tests", **options)


def test_a_requested_but_missing_device_is_a_user_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserError, match="cuda"):
        runner.resolve_devices("cpu,cuda")
    with pytest.raises(UserError, match="comma list"):
        runner.resolve_devices("tpu")


# --- selection and the swap/fallback decision, on the toy's baseline ---


def test_selection_follows_coverage_headers_shared_fixtures_and_import_time(fork_run):
    with Store(fork_run[1]) as store:
        base, coverage = store.baseline("cpu")
    assert selection.select_tests(PLANTED["killed"][2], base, coverage) == ["tests/test_core.py::test_add"]
    # a default argument lives on the def line, which runs at import: the tests calling the function
    assert selection.select_tests(PLANTED["default"][2], base, coverage) == ["tests/test_core.py::test_clamp"]
    # Counter.__init__ runs once, in a module fixture built inside the first test that asks for it
    assert "tests/test_counter.py::test_counter_starts_at_zero" in selection.select_tests(
        PLANTED["fixture"][2], base, coverage
    )
    assert selection.select_tests(PLANTED["uncovered"][2], base, coverage) == []
    assert len(selection.select_tests(PLANTED["module"][2], base, coverage)) == len(base["tests"])
    durations = [base["tests"][t]["duration"] for t in selection.select_tests(PLANTED["module"][2], base, coverage)]
    assert durations == sorted(durations)


def test_only_changes_inside_one_function_are_swapped():
    assert runner.swap_obstacle(PLANTED["killed"][2]) is None
    assert runner.swap_obstacle(PLANTED["default"][2]) is None
    assert runner.swap_obstacle(PLANTED["inference-mode"][2]) is None
    assert "module-level" in runner.swap_obstacle(PLANTED["module"][2])
    assert "outside" in runner.swap_obstacle(PLANTED["decorator"][2])
    source = (TOY / "toypkg" / "core.py").read_text()
    class_body = Mutant("t", "o", "v", "toypkg/core.py", "Counter", 44, 44, source, source + "\nCounter.x = 1\n")
    assert runner.swap_obstacle(class_body) is not None


# --- the command line ---


def test_cli_run_reports_and_fails_under_the_score_then_report_rerenders(fork_run, tmp_path, monkeypatch):
    from mutator import catalog

    store = copy_store(fork_run[1], tmp_path / "store", keep_results=True)
    # asked one file at a time (the store caches each file's mutants)
    monkeypatch.setattr(
        catalog, "generate_mutants", lambda level, target, scope: [m for m in MUTANTS if scope.accepts(m.file)]
    )
    args = ["run", "--level", "3", "--target", str(TOY), "--tests", str(TOY / "tests"), "--device", "cpu"]
    args += ["--store", str(store), "--timeout-constant", "1", "--memory-limit", "256", "--workers", "2"]
    result = CliRunner().invoke(main, [*args, "--json", str(tmp_path / "r.json"), "--fail-under", "95"])
    assert result.exit_code == 1, result.output
    assert "below --fail-under 95" in result.output
    assert json.loads((tmp_path / "r.json").read_text())["files"]
    result = CliRunner().invoke(main, [*args, "--fail-under", "50"])
    assert result.exit_code == 0, result.output

    result = CliRunner().invoke(main, ["report", "--store", str(store), "--junit", str(tmp_path / "r.xml")])
    assert result.exit_code == 0, result.output
    assert "mutation score" in result.output
    assert (tmp_path / "r.xml").exists()
    result = CliRunner().invoke(main, ["report", "--store", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no session store" in result.output


LEAKY_CONFTEST = """

import shutil as _shutil
import tempfile as _tempfile


def pytest_configure(config):
    # what tests/conftest.py does: a temp dir made at start, removed only if pytest ends cleanly
    config._leaky_dir = _tempfile.mkdtemp(prefix="nanochat-tests-")


def pytest_unconfigure(config):
    _shutil.rmtree(config._leaky_dir, ignore_errors=True)
"""


def test_no_temporary_directory_outside_the_scratch_survives_a_run_or_its_kill_9(tmp_path, monkeypatch):
    target = torch_free_copy(tmp_path)
    with open(target / "tests" / "conftest.py", "a") as conftest:
        conftest.write(LEAKY_CONFTEST)
    watched = tmp_path / "tmp"  # the machine's temp dir, as every process of the run sees it
    watched.mkdir()
    monkeypatch.setenv("TMPDIR", str(watched))
    monkeypatch.setattr("tempfile.tempdir", None)  # this process reads TMPDIR again
    store = tmp_path / "store"
    chosen = [PLANTED[name][2] for name in ("killed", "method", "hang")]
    options = dict(OPTIONS, workers=2, store_dir=str(store))
    runner.run(chosen, target=target, tests=target / "tests", **options)
    assert sorted(p.name for p in watched.iterdir()) == []
    assert list((store / "scratch").iterdir()) == []

    with sqlite3.connect(store / "session.sqlite") as db:  # so that the killed run has work to do
        db.execute("DELETE FROM results")
        db.execute("DELETE FROM reusable")
    db.close()
    script = textwrap.dedent(
        f"""
        import importlib.util
        from mutator import runner
        spec = importlib.util.spec_from_file_location("toy_planted", {str(TOY / "planted.py")!r})
        planted = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(planted)
        chosen = [planted.PLANTED[name][2] for name in ("killed", "method", "hang")]
        runner.run(chosen, target={str(target)!r}, tests={str(target / "tests")!r}, **{options!r})
        """
    )
    env = dict(os.environ, TMPDIR=str(watched))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline, landed = time.monotonic() + 120, 0
    while landed < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        with sqlite3.connect(store / "session.sqlite") as db:
            landed = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        db.close()
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # its workers die with it (PDEATHSIG)
    assert sorted(p.name for p in watched.iterdir()) == []
    left = store / "scratch" / str(proc.pid)
    assert any(p.name.startswith("nanochat-tests-") for p in left.rglob("*")), "the leak landed in the scratch"
    runner.run(chosen[:1], target=target, tests=target / "tests", **options)
    assert not left.exists()  # the next run on the store removed the killed run's scratch
    assert sorted(p.name for p in watched.iterdir()) == []


EVENTS_CONFTEST = """
import os
import sys
import time


def log(line):
    with open(os.environ["MUTATOR_TEST_EVENTS"], "a") as events:
        events.write(line + "\\n")


class Watcher:  # asked first for every module not yet imported: logs colorsys's import, finds nothing

    def __init__(self, role):
        self.role = role

    def find_spec(self, name, path=None, target=None):
        if name == "colorsys":
            log(f"{self.role} imports colorsys")


def pytest_configure(config):
    sys.meta_path.insert(0, Watcher("baseline" if config.getoption("--mutator-baseline-out") else "worker"))


def pytest_collection_finish(session):
    log("baseline collected" if session.config.getoption("--mutator-baseline-out") else "worker collected")
    if not session.config.getoption("--mutator-baseline-out"):  # a slow suite to collect, for the workers
        time.sleep(float(os.environ.get("MUTATOR_TEST_WORKER_COLLECT_S", "0")))
"""

EVENTS_TESTS = """
import os
import sys
import time

from conftest import log
from pkg.mod import double


def test_imports_a_module_as_it_runs():
    import colorsys  # noqa: F401 -- by a test, not at collection: workers import it before they fork


def test_the_baseline_waits_for_a_worker_to_import_it():
    deadline = time.monotonic() + 30  # a worker that is not started, or not told, before the baseline ends
    while "worker imports colorsys" not in open(os.environ["MUTATOR_TEST_EVENTS"]).read():
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    log("baseline test done")


def test_double():
    log(f"colorsys imported before the test: {'colorsys' in sys.modules}")
    assert double(2) == 4
"""


def events_target(tmp_path: Path, module: str) -> Path:
    """A target whose package `pkg.mod` is `module`, with a suite whose conftest logs its events."""
    target = tmp_path / "target"
    (target / "pkg").mkdir(parents=True)
    (target / "pkg" / "__init__.py").write_text("")
    (target / "pkg" / "mod.py").write_text(module)
    (target / "tests").mkdir()
    (target / "tests" / "conftest.py").write_text(EVENTS_CONFTEST)
    return target


def test_workers_start_while_the_baseline_runs_and_import_what_its_tests_imported(tmp_path, monkeypatch):
    target = events_target(tmp_path, "def double(x):\n    return 2 * x\n")
    (target / "tests" / "test_mod.py").write_text(EVENTS_TESTS)
    events = tmp_path / "events.log"
    monkeypatch.setenv("MUTATOR_TEST_EVENTS", str(events))
    options = dict(OPTIONS, workers=1, store_dir=tmp_path / "store")
    first = plant_in(target, "double", "pkg/mod.py", "double", "2 * x", "3 * x")
    report = runner.run([first], target=target, tests=target / "tests", **options)
    assert [r.outcome for r in report.results] == ["killed"]
    lines = events.read_text().splitlines()
    # started while the baseline runs, it imports what the baseline's tests import as they do
    assert lines.index("worker collected") < lines.index("worker imports colorsys") < lines.index("baseline test done")
    assert lines[-1] == "colorsys imported before the test: True"  # in the forked child, from the worker

    events.write_text("")  # the baseline is reused now: a worker started after it gets the same modules
    monkeypatch.setenv("MUTATOR_TEST_WORKER_COLLECT_S", "1.5")
    second = plant_in(target, "double", "pkg/mod.py", "double", "2 * x", "x")
    report = runner.run([second], target=target, tests=target / "tests", **options)
    assert "baseline_cpu_s" not in report.timings
    assert report.timings["worker_start_s"] >= 1.5  # the mutant phase waited for the collection: start-up
    assert [r.outcome for r in report.results] == ["killed"]
    lines = events.read_text().splitlines()
    assert lines == ["worker collected", "worker imports colorsys", "colorsys imported before the test: True"]


def test_the_suite_is_imported_and_collected_once_for_all_shards_and_once_for_all_workers(tmp_path, monkeypatch):
    # Two shards and two workers: the baseline's process forks its shards after collecting, and one
    # zygote forks the workers; each shard and each worker still runs in a process of its own. Each test
    # waits for the other module's to start (once), so each shard takes one module from the queue (a shard
    # takes the next module as its module's last test starts: each has a second test).
    target = events_target(tmp_path, "def double(x):\n    return 2 * x\n\n\ndef half(x):\n    return x / 2\n")
    for name, body in (("double", "double(2) == 4"), ("half", "half(4) == 2")):
        (target / "tests" / f"test_{name}.py").write_text(
            "import os\nimport time\nfrom pathlib import Path\nfrom conftest import log\n"
            f"from pkg.mod import {name}\n\n\n"
            f"def test_{name}():\n    log(f'test in {{os.getpid()}}')\n"
            f"    started = Path(os.environ['MUTATOR_TEST_EVENTS']).with_name('started')\n"
            f"    started.mkdir(exist_ok=True)\n    (started / '{name}').touch()\n"
            f"    deadline = time.monotonic() + 30\n"
            f"    while len(list(started.iterdir())) < 2 and time.monotonic() < deadline:\n"
            f"        time.sleep(0.05)\n"
            f"    assert {body}\n\n\ndef test_{name}_again():\n    log(f'test in {{os.getpid()}}')\n    assert {body}\n"
        )
    events = tmp_path / "events.log"
    monkeypatch.setenv("MUTATOR_TEST_EVENTS", str(events))
    mutants = [
        plant_in(target, "double", "pkg/mod.py", "double", "2 * x", "3 * x"),
        plant_in(target, "half", "pkg/mod.py", "half", "x / 2", "x / 3"),
    ]
    report = runner.run(mutants, target=target, tests=target / "tests", **dict(OPTIONS, store_dir=tmp_path / "store"))
    assert [r.outcome for r in report.results] == ["killed", "killed"]
    lines = events.read_text().splitlines()
    assert lines.count("baseline collected") == 1 and lines.count("worker collected") == 1
    testing = [line for line in lines if line.startswith("test in ")]
    assert len(set(testing)) == 4  # two shards and two mutants' children: four processes


SHARED_DIR_CONFTEST = """
import os
import shutil
import tempfile


def pytest_configure(config):  # a resource for the whole run, as tests/conftest.py makes one
    config._shared = tempfile.mkdtemp(prefix="shared-", dir=os.environ["MUTATOR_TEST_SHARED"])
    os.environ["SHARED_DIR"] = config._shared


def pytest_unconfigure(config):
    shutil.rmtree(config._shared)
"""


QUICK_SHARD = """
import os
import time

HERE = os.path.join(os.environ["MUTATOR_TEST_SHARED"], "..")


def test_quick_waits_for_the_slow_shard():  # so that the slow module is taken by the other shard
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(HERE, "slow.pid")) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_quick():
    with open(os.path.join(HERE, "quick.pid"), "w") as out:
        out.write(str(os.getpid()))
"""


SLOW_SHARD = """
import os
import time

HERE = os.path.join(os.environ["MUTATOR_TEST_SHARED"], "..")


def test_slow():  # waits for the quick shard's process to end (up to 60 s), then needs the directory
    with open(os.path.join(HERE, "slow.pid"), "w") as out:
        out.write(str(os.getpid()))
    pid_file = os.path.join(HERE, "quick.pid")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{open(pid_file).read()}/status") as status:
                if "State:\\tZ" in status.read():
                    break
        except (FileNotFoundError, ValueError):  # not written yet, or the process is gone
            if os.path.exists(pid_file):
                break
        time.sleep(0.05)
    assert os.path.isdir(os.environ["SHARED_DIR"])
"""


def test_forked_shards_leave_the_suites_configuration_to_the_process_that_made_it(tmp_path, monkeypatch):
    # The quick module's shard ends first; were it to unconfigure, the slow one would lose the directory.
    from mutator import baseline

    target = tmp_path / "target"
    (target / "pkg").mkdir(parents=True)
    (target / "pkg" / "__init__.py").write_text("def one():\n    return 1\n")
    (target / "tests").mkdir()
    (target / "tests" / "conftest.py").write_text(SHARED_DIR_CONFTEST)
    (target / "tests" / "test_quick.py").write_text(QUICK_SHARD)
    (target / "tests" / "test_slow.py").write_text(SLOW_SHARD)
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("MUTATOR_TEST_SHARED", str(shared))
    data = baseline.measure(target, [target / "tests"], "cpu", ["pkg"], shards=2, workdir=tmp_path / "work")
    # node ids are relative to the rootdir pytest infers, which an ini file above the temporary directory moves
    ran = sorted(test.rsplit("/", 1)[-1] for test in data["tests"])
    assert ran == [
        "test_quick.py::test_quick",
        "test_quick.py::test_quick_waits_for_the_slow_shard",
        "test_slow.py::test_slow",
    ]
    quick, slow = ((shared.parent / f"{name}.pid").read_text() for name in ("quick", "slow"))
    assert quick != slow  # the two modules ran in two shards, and the quick one ended first
    assert list(shared.iterdir()) == []  # removed once, by the process that made it


TMP_PATH_SHARD = """
import os
import time


def test_{name}(tmp_path):
    mine = tmp_path / "kept.txt"
    mine.write_text("{name}")
    (tmp_path.parent.parent / "{name}-started").touch()
    deadline = time.monotonic() + 30  # until the other shard's test has made its own tmp_path
    while not (tmp_path.parent.parent / "{other}-started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mine.read_text() == "{name}"


def test_{name}_last():  # a shard takes its next module as its module's last test starts
    pass
"""


def test_forked_shards_share_the_basetemp_without_emptying_it_under_each_other(tmp_path):
    # pytest empties a given --basetemp on its first use in a process; two shards that each did so would
    # remove what the other's tests had just made there
    from mutator import baseline

    target = tmp_path / "target"
    (target / "pkg").mkdir(parents=True)
    (target / "pkg" / "__init__.py").write_text("def one():\n    return 1\n")
    (target / "tests").mkdir()
    for name, other in (("a", "b"), ("b", "a")):
        (target / "tests" / f"test_{name}.py").write_text(TMP_PATH_SHARD.format(name=name, other=other))
    data = baseline.measure(target, [target / "tests"], "cpu", ["pkg"], shards=2, workdir=tmp_path / "work")
    ran = sorted(test.rsplit("::", 1)[-1] for test in data["tests"])
    assert ran == ["test_a", "test_a_last", "test_b", "test_b_last"]


def test_the_runner_process_does_not_import_pytest():
    # a re-run that reuses every result starts no pytest process, and should not pay for pytest's import
    code = "import sys, mutator.runner, mutator.baseline, mutator.worker; print('pytest' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
