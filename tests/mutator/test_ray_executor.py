"""The Ray executor on a local Ray cluster (`ray start --head`, 2 CPUs, once for the module): the same
verdicts as the local executor on the toy target and on level 3, an actor killed in the middle of a run,
a driver killed with -9 then resumed; and, without a cluster, what it asks of one (resources, GPU
mapping, where the code is on a node) and its user errors. Skipped when Ray is not installed."""

import importlib.util
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("ray")

from mutator import baseline, catalog, ray_executor, runner  # noqa: E402
from mutator.cli import main  # noqa: E402
from mutator.errors import UserError  # noqa: E402
from mutator.ray_executor import MutantActor, RayExecutor  # noqa: E402

TOY = Path(__file__).resolve().parent / "fixtures" / "toy"
OPTIONS = dict(devices="cpu", workers=2, timeout_constant=1.0, memory_limit_mb=256)
CLUSTER_START_S = 180.0  # a loaded 2-core machine


def _load_planted():
    spec = importlib.util.spec_from_file_location("toy_planted_ray", TOY / "planted.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PLANTED


PLANTED = _load_planted()
MUTANTS = [mutant for _, _, mutant in PLANTED.values()]


def verdicts(results) -> dict[tuple, tuple]:
    return {(r.mutant_id, r.device): (r.outcome, r.killing_test) for r in results}


def stored_verdicts(store: Path) -> dict[tuple, tuple]:
    """The last run's results as the store holds them, and how many rows each (mutant, device) has."""
    with sqlite3.connect(store / "session.sqlite") as db:
        run_id = db.execute("SELECT MAX(id) FROM runs").fetchone()[0]
        rows = db.execute(
            "SELECT mutant_id, device, outcome, killing_test FROM run_results WHERE run_id = ?", (run_id,)
        ).fetchall()
    return {(mutant, device): (outcome, test) for mutant, device, outcome, test in rows}


def result_rows(store: Path) -> int:
    with sqlite3.connect(store / "session.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]


def without_results(source: Path, destination: Path) -> Path:
    """A copy of a store that keeps its baseline (so both executors select the same tests), no result."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("scratch", "logs"))
    with sqlite3.connect(destination / "session.sqlite") as db:
        db.execute("DELETE FROM results")
        db.execute("DELETE FROM reusable")
    return destination


# --- the cluster ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """`ray start --head` on this machine with 2 CPUs; its address. Token authentication off, on both
    ends: a cluster only this test module uses."""
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit in 107 characters
    log = open(Path(temp_dir) / "start.log", "w+")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        beside_python = Path(sys.executable).with_name("ray")  # the environment's own, as in a virtualenv
        ray_cli = str(beside_python) if beside_python.exists() else shutil.which("ray")
        head = subprocess.Popen(
            [ray_cli, "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--num-gpus=0"]
            + ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + CLUSTER_START_S
            while "Ray runtime started" not in Path(log.name).read_text():
                assert head.poll() is None, Path(log.name).read_text()[-2000:]
                assert time.monotonic() < deadline, "ray start did not finish"
                time.sleep(0.2)
            yield f"127.0.0.1:{port}"
        finally:
            head.send_signal(signal.SIGTERM)  # `ray start --block` then stops every process it started
            try:
                head.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(head.pid, signal.SIGKILL)
                head.wait()
            log.close()
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def toy_local(tmp_path_factory):
    """The toy's planted mutants on the local executor: the verdicts to match, and the store of its baseline."""
    store = tmp_path_factory.mktemp("toy-local")
    return runner.run(MUTANTS, target=TOY, tests=TOY / "tests", store_dir=store, **OPTIONS), store


# --- on the cluster -------------------------------------------------------------------------------


def test_toy_verdicts_equal_the_local_executors_though_an_actor_is_killed_mid_run(toy_local, cluster, tmp_path):
    local, local_store = toy_local
    store = without_results(local_store, tmp_path / "store")
    executor = RayExecutor(address=cluster)  # the code shipped as the job's working_dir
    killed = []

    def kill_a_busy_actor(mutant, result):
        execution = executor.execution
        if killed or execution is None:  # once; and not for the results that need no run
            return
        busy = [slot.pid for slot, task, _ in execution.in_flight.values() if task is not None and slot.pid]
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            killed.append(busy[0])

    toy = dict(target=TOY, tests=TOY / "tests", store_dir=store, **OPTIONS)
    ray_run = runner.run(MUTANTS, executor=executor, on_result=kill_a_busy_actor, **toy)
    assert killed, "no actor was busy when a result came in"
    assert ray_run.timings["actor_deaths"] >= 1
    assert verdicts(ray_run.results) == verdicts(local.results)
    assert stored_verdicts(store) == verdicts(local.results)  # one row each: nothing lost, nothing twice
    assert result_rows(store) == len(MUTANTS)
    assert ray_run.timings["executed"] == local.timings["executed"]


def test_a_driver_killed_with_minus_9_resumes_with_the_same_command(toy_local, cluster, tmp_path):
    local, local_store = toy_local
    store = without_results(local_store, tmp_path / "store")
    # the code at the same path on the nodes (a shared filesystem): nothing shipped but mutator
    command = textwrap.dedent(
        f"""
        import importlib.util
        from mutator import runner
        from mutator.ray_executor import RayExecutor
        spec = importlib.util.spec_from_file_location("toy_planted", {str(TOY / "planted.py")!r})
        planted = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(planted)
        mutants = [m for _, _, m in planted.PLANTED.values()]
        executor = RayExecutor(address={cluster!r}, code_path={str(TOY)!r})
        runner.run(mutants, target={str(TOY)!r}, tests={str(TOY / "tests")!r}, store_dir={str(store)!r},
                   executor=executor, **{OPTIONS!r})
        """
    )
    driver = subprocess.Popen([sys.executable, "-c", command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    landed = 0
    while landed < 6 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        landed = result_rows(store)
    assert driver.poll() is None, "the run ended before it could be killed"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    landed = result_rows(store)
    assert 0 < landed < len(MUTANTS)

    resumed = runner.run(
        MUTANTS, target=TOY, tests=TOY / "tests", store_dir=store, executor=RayExecutor(address=cluster), **OPTIONS
    )
    assert resumed.timings["executed"] <= len(MUTANTS) - landed + 2  # (+ the two that never run)
    assert verdicts(resumed.results) == verdicts(local.results)
    assert result_rows(store) == len(MUTANTS)
    assert not list((store / "scratch").iterdir())  # the killed driver's scratch went with the resumed run


def snapshot_of_this_checkout(destination: Path) -> Path:
    """nanochat, its suite and the project's pytest settings, copied: both runs see the same code even
    while the checkout is being edited."""
    repo = catalog.default_target()
    ignored = shutil.ignore_patterns("__pycache__")
    shutil.copytree(repo / "nanochat", destination / "nanochat", ignore=ignored)
    shutil.copytree(repo / "tests" / "nanochat", destination / "tests" / "nanochat", ignore=ignored)
    shutil.copy(repo / "tests" / "conftest.py", destination / "tests" / "conftest.py")
    shutil.copy(repo / "pyproject.toml", destination / "pyproject.toml")
    return destination


def test_level_3_from_the_command_line_gives_the_local_executors_outcomes(cluster, tmp_path):
    target = snapshot_of_this_checkout(tmp_path / "checkout")
    common = ["run", "--level", "3", "--target", str(target), "--device", "cpu", "--workers", "2"]
    local = CliRunner().invoke(main, [*common, "--store", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    store = without_results(tmp_path / "local", tmp_path / "ray")
    on_ray = CliRunner().invoke(main, [*common, "--store", str(store), "--executor", "ray", "--ray-address", cluster])
    assert on_ray.exit_code == 0, on_ray.output
    expected = stored_verdicts(tmp_path / "local")
    assert len(expected) == len(catalog.generate_mutants("3", target))
    assert stored_verdicts(store) == expected

    def summary(output: str) -> str:  # "31 mutants run, 1 reused or needing no run"
        return next(line for line in output.splitlines() if " mutants run, " in line).split(";")[0]

    assert summary(on_ray.output) == summary(local.output)


# --- without a cluster ----------------------------------------------------------------------------


def test_an_actor_asks_for_one_core_or_one_gpu_and_their_number_follows_the_cluster():
    assert ray_executor.actor_options("cpu") == {"num_cpus": 1}
    assert ray_executor.actor_options("cuda") == {"num_gpus": 1, "num_cpus": 0}
    cluster_resources = {"CPU": 16.0, "GPU": 4.0}
    assert ray_executor.actor_counts({"cpu": 40, "cuda": 40}, cluster_resources) == {"cpu": 16, "cuda": 4}
    assert ray_executor.actor_counts({"cpu": 3, "cuda": 2}, cluster_resources) == {"cpu": 3, "cuda": 2}
    assert ray_executor.actor_counts({"cpu": 40}, cluster_resources, cpu_actors=6) == {"cpu": 6}
    with pytest.raises(UserError, match="no GPU"):
        ray_executor.actor_counts({"cuda": 5}, {"CPU": 8.0})


def test_a_cuda_worker_sees_the_gpus_ray_gave_its_actor():
    assert ray_executor.cuda_visible([3]) == "3"
    assert ray_executor.cuda_visible(["0", "2"]) == "0,2"


def test_driver_paths_move_to_the_nodes_copy_of_the_code(tmp_path):
    root = tmp_path / "project"
    assert ray_executor.shipped_root([root / "src", root / "tests", root]) == root
    with pytest.raises(UserError, match="share no directory"):
        ray_executor.shipped_root([Path("/a/src"), Path("/b/tests")])
    node = Path("/node/pkg")
    assert ray_executor.relocate(str(root / "tests" / "t.py"), root, node) == "/node/pkg/tests/t.py"
    assert ray_executor.relocate(str(root), root, node) == "/node/pkg"
    assert ray_executor.relocate(f"--rootdir={root}", root, node) == "--rootdir=/node/pkg"
    assert ray_executor.relocate(f"--rootdir={root}-b", root, node) == f"--rootdir={root}-b"
    assert ray_executor.relocate(str(tmp_path / "project-b"), root, node) == str(tmp_path / "project-b")
    assert ray_executor.relocate("-q", root, node) == "-q"


def test_an_actor_runs_the_worker_on_the_nodes_copy_of_the_target(tmp_path):
    """The actor's own logic, without Ray: the driver's paths point at the toy, the node's copy is elsewhere."""
    node_copy = tmp_path / "node" / "toy"
    shutil.copytree(TOY, node_copy, ignore=shutil.ignore_patterns("__pycache__"))
    config = {
        "mode": "fork",
        "args": [*baseline.suite_args([TOY / "tests"], [], "cpu"), f"--rootdir={TOY}"],
        "device": "cpu",
        "known_collect_errors": [],
        "target_root": str(TOY),
        "basetemp": "unused",
        "memory_limit_mb": 256,
    }
    (tmp_path / "scratch").mkdir()
    actor = MutantActor(str(TOY), str(node_copy), str(tmp_path / "scratch"), str(tmp_path / "no-logs"))
    try:
        hello = actor.start(config)
        assert hello.get("ready", 0) > 0, hello
        _, test, mutant = PLANTED["killed"]
        reply = actor.run({"mutant": mutant.to_dict(), "tests": [test], "timeout": 30.0}, 60.0)
        assert (reply["outcome"], reply["killing_test"]) == ("killed", test)
        assert f"--rootdir={node_copy}" in actor.config["args"]  # the copy collected, not the toy
        assert actor.env["PYTHONPATH"].startswith(str(node_copy))
    finally:
        actor.stop()
    assert not any((tmp_path / "scratch").iterdir())  # its scratch went with it


@pytest.mark.cuda
def test_cuda_mutants_on_gpu_actors_give_the_local_executors_verdicts(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    import ray

    chosen = [PLANTED[name][2] for name in ("torch", "torch-survivor", "inference-mode", "killed")]
    options = dict(OPTIONS, devices="cuda")
    local = runner.run(chosen, target=TOY, tests=TOY / "tests", store_dir=tmp_path / "local", **options)
    store = without_results(tmp_path / "local", tmp_path / "ray")
    ray.init(num_cpus=2)  # this machine as the cluster, its GPUs included; the code at the same paths
    try:
        on_ray = runner.run(chosen, target=TOY, tests=TOY / "tests", store_dir=store, executor=RayExecutor(), **options)
    finally:
        ray.shutdown()
    assert verdicts(on_ray.results) == verdicts(local.results)


def test_ray_options_without_the_ray_executor_or_without_ray_are_one_line_errors(monkeypatch, tmp_path):
    result = CliRunner().invoke(main, ["run", "--level", "3", "--store", str(tmp_path / "s"), "--ray-address", "x:1"])
    assert result.exit_code == 2
    assert "need --executor ray" in result.output
    unused = f"127.0.0.1:{_free_port()}"
    args = ["run", "--level", "3", "--store", str(tmp_path / "s"), "--executor", "ray", "--ray-address", unused]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert f"cannot reach the Ray cluster at {unused}" in result.output
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    result = CliRunner().invoke(main, ["run", "--level", "3", "--store", str(tmp_path / "s"), "--executor", "ray"])
    assert result.exit_code == 2
    assert "pip install 'mutator[ray]'" in result.output
    assert "Traceback" not in result.output
