"""`mutator run` on a suite that is not nanochat's. tests/mutator/fixtures/foreign has a layout of its own
(tinylm/rope.py, tinylm/kv.py), its own conftest (a fixture, an option, a marker), no --device option,
and a test module that fails to import. The mutants are whatever level 3 plants there today."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mutator.cli import main
from mutator.store import Store

FOREIGN = Path(__file__).resolve().parent / "fixtures" / "foreign"
BROKEN = "tests/test_fused.py: ModuleNotFoundError: No module named 'fused_rope_kernels'"
MISSING = "the suite needs packages that are not installed: fused_rope_kernels"
FRESH_ONE = "tests/test_kv.py::test_a_reset_cache_behaves_like_a_fresh_one"


def mutator_run(store: Path, *extra, target: Path = FOREIGN):
    args = ["run", "--level", "3", "--target", target, "--tests", target / "tests", "--device", "cpu"]
    args += ["--store", store, "--workers", "2", "--timeout-constant", "2", *extra]
    return CliRunner().invoke(main, [str(arg) for arg in args])


def verdicts(store: Path) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(qualname, variant) -> (outcome, killing test) of the store's latest run."""
    with Store(store, create=False) as opened:
        run_id, _ = opened.last_run()
        mutants = {m.id: m for m in opened.mutants(run_id)}
        results = opened.results(run_id, ["cpu"])
    return {(mutants[r.mutant_id].qualname, mutants[r.mutant_id].variant): (r.outcome, r.killing_test) for r in results}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    store = tmp_path_factory.mktemp("foreign") / "store"
    result = mutator_run(store)
    assert result.exit_code == 0, result.output
    return result, store, verdicts(store)


def test_the_workers_run_a_suite_without_a_device_option(first_run):
    _, _, got = first_run
    assert got, "level 3 planted nothing in the fixture"
    assert {outcome for outcome, _ in got.values()} <= {"killed", "survived"}, got
    assert {qualname for qualname, _ in got} == {"precompute_freqs_cis", "KVCache.reset"}
    assert all(test == "tests/test_rope.py::test_angles_match_the_closed_form" for (q, _), (_, test) in got.items()
               if q == "precompute_freqs_cis")  # fmt: skip
    if ("KVCache.reset", "drop-offset") in got:
        assert got["KVCache.reset", "drop-offset"] == ("killed", FRESH_ONE)


def test_a_module_that_fails_to_import_is_reported_once_with_its_exception_and_missing_package(first_run):
    output = first_run[0].output
    assert output.count(BROKEN) == 1, output
    assert output.count(MISSING) == 1, output
    assert "collection error" not in output
    assert "level 3: no site of class tool-token-order in" in first_run[0].stderr


def test_a_successful_run_leaves_no_logs(first_run):
    assert not any((first_run[1] / "logs").rglob("*.log"))


def test_pytest_args_reach_the_baseline_and_every_worker_and_change_the_fingerprint(first_run, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(first_run[1], store)
    # the deselected test is the one that kills a forgotten offset reset; a loose tolerance, which only
    # the suite's own option sets, lets every rotary mutant through, if the workers get the option too
    result = mutator_run(store, "--pytest-args", f"--deselect {FRESH_ONE}", "--", "--rope-atol", "10")
    assert result.exit_code == 0, result.output
    got = verdicts(store)
    assert all(outcome == "survived" for (q, _), (outcome, _) in got.items() if q == "precompute_freqs_cis"), got
    if ("KVCache.reset", "drop-offset") in got:  # test_reset_drops_the_buffers still covers it, and misses it
        assert got["KVCache.reset", "drop-offset"] == ("survived", None)
    assert f"{len(got)} mutants run, 0 reused" in result.output  # nothing reused across an argument change
    assert result.output.count(BROKEN) == 1


def test_k_selects_the_tests_of_every_run(tmp_path):
    result = mutator_run(tmp_path / "store", "--pytest-args", "-k 'not closed_form'")
    assert result.exit_code == 0, result.output
    got = verdicts(tmp_path / "store")
    # only the norm check covers the table now, and a rotation of any angle keeps the norm
    assert all(outcome == "survived" for (q, _), (outcome, _) in got.items() if q == "precompute_freqs_cis"), got


def logged_path(output: str) -> Path:
    match = re.search(r"\(log: ([^)]+)\)", output)
    assert match, output
    return Path(match.group(1))


def test_a_failed_run_keeps_the_logs_it_names(tmp_path):
    target = tmp_path / "foreign"
    shutil.copytree(FOREIGN, target, ignore=shutil.ignore_patterns("__pycache__"))
    conftest = target / "tests" / "conftest.py"
    # a conftest that loads in the baseline but refuses a mutation worker, as a broken set-up would
    conftest.write_text(
        "import sys\n"
        "if getattr(sys.modules['__main__'].__spec__, 'name', '') == 'mutator.worker':\n"
        "    raise ImportError('this conftest refuses to load in a worker')\n" + conftest.read_text()
    )
    result = mutator_run(tmp_path / "store", target=target)
    assert result.exit_code == 2, result.output
    assert "worker failed" in result.output and "refuses to load in a worker" in result.output
    log = logged_path(result.output)
    assert log.is_relative_to(tmp_path / "store" / "logs") and log.is_file()
    assert "refuses to load in a worker" in log.read_text()

    test_rope = target / "tests" / "test_rope.py"
    test_rope.write_text(test_rope.read_text().replace("atol=rope_atol", "atol=-1.0"))
    result = mutator_run(tmp_path / "store", target=target)
    assert result.exit_code == 2, result.output
    assert "fails on the clean target (cpu): tests/test_rope.py::test_angles_match_the_closed_form" in result.output
    log = logged_path(result.output)
    assert log.is_file() and "test_angles_match_the_closed_form" in log.read_text()


# --- the --device rule, in a bare pytest process with the runner's plugin ---


def run_pytest(suite: Path, device: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", str(suite), "-p", "mutator.baseline", "--mutator-device", device]
    cmd += ["-p", "no:cacheprovider", "-q"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=suite, timeout=120)


def test_device_goes_to_a_suite_that_defines_it(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(
        "def pytest_addoption(parser):\n    parser.addoption('--device', default='unset')\n"
    )
    (tmp_path / "test_device.py").write_text(
        "def test_device(request):\n    assert request.config.getoption('--device') == 'cpu'\n"
    )
    done = run_pytest(tmp_path, "cpu")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_suite_without_a_device_option_runs_as_is_on_cpu_and_not_at_all_on_cuda(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    pass\n")
    assert run_pytest(tmp_path, "cpu").returncode == 0
    done = run_pytest(tmp_path, "cuda")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "the suite has no --device option, so it cannot run on cuda" in done.stderr


# --- the scope of the mutants: --include / --exclude ---


def invoke(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def test_include_and_exclude_narrow_every_command(tmp_path):
    everything = invoke("list", "--level", "3", "--target", FOREIGN, "--json")
    assert everything.exit_code == 0, everything.output
    files = {row["file"] for row in json.loads(everything.stdout)}
    assert files == {"tinylm/kv.py", "tinylm/rope.py"}

    result = invoke("list", "--level", "3", "--target", FOREIGN, "--json", "--exclude", "tinylm/kv.py")
    assert result.exit_code == 0, result.output
    assert {row["file"] for row in json.loads(result.stdout)} == {"tinylm/rope.py"}
    assert f"level 3: no site of class kv-reset-growth in {FOREIGN}" in result.stderr
    result = invoke("list", "--level", "3", "--target", FOREIGN, "--json", "--include", "tinylm/kv*")
    assert {row["file"] for row in json.loads(result.stdout)} == {"tinylm/kv.py"}

    kv_mutant = next(row["id"] for row in json.loads(everything.stdout) if row["file"] == "tinylm/kv.py")
    assert invoke("show", kv_mutant, "--target", FOREIGN).exit_code == 0
    for command in (["show", kv_mutant], ["apply", kv_mutant, "--out", tmp_path / "out"]):
        result = invoke(*command, "--target", FOREIGN, "--exclude", "tinylm/*")
        assert result.exit_code == 2 and f"no mutant with id '{kv_mutant}'" in result.output, result.output

    result = invoke("list", "--level", "3", "--target", FOREIGN, "--include", "/abs/*.py")
    assert result.exit_code == 2, result.output
    assert "must be a relative posix path glob" in result.output
    assert result.output.strip().count("\n") == 0 and "Traceback" not in result.output
