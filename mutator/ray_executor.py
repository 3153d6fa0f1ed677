"""The Ray executor: `mutator run --executor ray`, the mutants of a run on Ray actors across a cluster.

Everything but the execution stays with the driver, as in a local run: the baseline, test selection,
reuse, and the one SQLite store, which records each result as it arrives (so resume, fingerprints and
reports do not change). In place of the local executor's lanes, the driver keeps Ray actors: one per core
of the cluster (`num_cpus=1`), or per GPU (`num_gpus=1`) for CUDA mutants. Each actor owns the same
mutator.worker process a local lane starts, on its node: the worker collects the suite once, then runs
mutants in forked children (CPU) or swapped in place (CUDA, where a context does not survive fork). Ray
places the actors; the driver hands each ready actor its next mutant and waits on them all (`ray.wait`).

Code on the nodes: by default, the directory that holds the target, its tests and the pytest rootdir goes
to every node as the job's runtime_env `working_dir` (what .gitignore names, the store and .git are left
out), and mutator itself as a `py_module`. With `code_path`, the nodes find that directory at that path
(a shared filesystem) and only mutator is shipped. Paths in a worker's config are moved from the driver's
directory to the node's.

Faults: timeouts are enforced on the node as in a local run (a fork worker times its child out; an
in-process worker that overruns is killed, and the next mutant starts a new one). An actor that dies (its
node lost, OOM-killed) is replaced by a new actor, and the mutant it was running goes back to the queue,
once: if the actor running it dies again, the mutant is classified `crashed`. A driver killed with -9
loses no recorded result: Ray ends the driver's actors (and with them their workers), and the same
command resumes from the store.
"""

import os
import shutil
import socket
import statistics
import tempfile
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import mutator
from mutator import baseline as baseline_mod
from mutator.errors import UserError
from mutator.outcomes import CRASHED, ERROR, OUTCOMES, TIMEOUT
from mutator.runner import STARTUP_TIMEOUT_S, WATCHDOG_SLACK_S, Task, _Execution, _log_cause
from mutator.worker import FALLBACK, WorkerDied, WorkerProcess, one_line

STOP_GRACE_S = 10.0  # for the actors' workers to end their pytest sessions cleanly at the end of a run
MAX_START_DEATHS = 3  # an actor slot whose actors die this often before they are ready stops the run


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray installed: pip install 'mutator[ray]'") from None
    return ray


# --- what the driver asks of the cluster (plain functions: tested without a cluster, or a GPU) ---------


def actor_options(device: str) -> dict:
    """The resources of one actor. A CPU worker's forked children run one at a time: one core. A CUDA
    worker gets one GPU and reserves no core, so CPU actors on every core cannot keep it from starting."""
    return {"num_gpus": 1, "num_cpus": 0} if device == "cuda" else {"num_cpus": 1}


def actor_counts(queued: dict[str, int], resources: dict, cpu_actors: int | None = None) -> dict[str, int]:
    """Actors per device: never more than the mutants queued for it; on CPU `cpu_actors` (default: the
    cluster's cores), on CUDA one per GPU of the cluster."""
    counts = {}
    for device, mutants in queued.items():
        if device == "cuda":
            available = int(resources.get("GPU", 0))
            if available < 1:
                raise UserError("--device cuda with --executor ray: the Ray cluster has no GPU")
        else:
            available = cpu_actors or int(resources.get("CPU", 0))
            if available < 1:
                raise UserError("the Ray cluster has no CPU to place an actor on")
        counts[device] = min(mutants, available)
    return counts


def cuda_visible(gpu_ids) -> str:
    """CUDA_VISIBLE_DEVICES for a worker: the GPUs Ray assigned to its actor (`ray.get_gpu_ids()`)."""
    return ",".join(str(gpu) for gpu in gpu_ids)


def shipped_root(paths: list[Path]) -> Path:
    """The one directory that holds the target, its tests and the pytest rootdir: what goes to the nodes."""
    root = Path(os.path.commonpath([str(path) for path in paths]))
    if root == Path(root.anchor):
        raise UserError(
            f"the target, its tests and the pytest rootdir share no directory but {root}:"
            " put them under one, or give --ray-code-path"
        )
    return root


def check_reachable(address: str, timeout_s: float = 10.0):
    """A HOST:PORT address must accept a connection (other forms, `auto` or `ray://...`, are Ray's to judge)."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or "/" in address:
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise UserError(f"cannot reach the Ray cluster at {address}: {error.strerror or error}") from None


def relocate(value: str, source: Path, destination: Path) -> str:
    """A driver path under `source` (alone, or an option's value: `--rootdir=PATH`), as the same path under
    `destination` on a node; anything else as is."""
    option, equals, path = value.partition("=") if value.startswith("-") else ("", "", value)
    source_text = str(source)
    if path == source_text or path.startswith(source_text + os.sep):
        return option + equals + str(destination) + path[len(source_text) :]
    return value


# --- the actor: a worker on a node ----------------------------------------------------------------


class MutantActor:
    """One worker process on a node, driven over Ray: starts mutator.worker there with the driver's
    config (its paths moved to the node's copy of the code), relays tasks to it, and starts a new one
    after one hangs or dies, as a local lane does."""

    def __init__(self, driver_root: str, node_root: str | None, driver_scratch: str, driver_logs: str):
        self.driver_root = Path(driver_root)
        self.node_root = Path(node_root or os.getcwd())  # the working_dir Ray unpacked, when shipped
        # On the driver's machine (or a shared filesystem) under the run's scratch, which the driver
        # removes, even after a kill -9 (the next run does); elsewhere in the node's temp directory.
        parent = driver_scratch if Path(driver_scratch).is_dir() else None
        self.scratch = Path(tempfile.mkdtemp(prefix="actor-", dir=parent))
        self.logs = Path(driver_logs) if Path(driver_logs).is_dir() else self.scratch
        self.config: dict | None = None
        self.env: dict | None = None
        self.worker: WorkerProcess | None = None
        self.spawned = 0

    def start(self, config: dict) -> dict:
        """Start the worker: {"ready": n, "pid", "node"} once it has collected the suite, or {"fatal": why}."""
        self.config = self._on_node(config)
        target_root = Path(self.config["target_root"])
        self.env = baseline_mod.subprocess_env(target_root)
        self.env["TMPDIR"] = str(self.scratch)
        if config["device"] == "cuda":
            import ray

            self.env["CUDA_VISIBLE_DEVICES"] = cuda_visible(ray.get_gpu_ids())
        return self._start_worker()

    def run(self, message: dict, limit: float) -> dict:
        """One mutant on the long-lived worker: its reply, or timeout / crashed when the worker hangs or dies."""
        if self.worker is None:  # the last one hung or died
            hello = self._start_worker()
            if "ready" not in hello:
                return hello
        try:
            self.worker.send(message)
            reply = self.worker.receive(limit)
        except WorkerDied as error:
            self._drop_worker()
            return {"outcome": CRASHED, "reason": f"worker {error}"}
        if reply is None:
            self._drop_worker()
            return {"outcome": TIMEOUT, "reason": f"no result after {limit:.1f} s"}
        return reply

    def run_fresh(self, config: dict, message: dict, timeout: float) -> dict:
        """The fallback for what cannot be swapped: a fresh pytest process that imports the mutated module."""
        worker = self._spawn(self._on_node(config))
        try:
            worker.send(message)
            reply = worker.receive(timeout)
        except WorkerDied as error:
            reply = {"outcome": ERROR, "reason": f"the mutated code stopped pytest: {error}"}
        finally:
            worker.kill()
        return reply or {"outcome": TIMEOUT, "reason": f"no result after {timeout:.1f} s"}

    def stop(self):
        """End the worker's pytest session cleanly (conftest clean-ups run), then remove the actor's scratch."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _start_worker(self) -> dict:
        self.worker = self._spawn(self.config)
        try:
            hello = self.worker.receive(STARTUP_TIMEOUT_S)
        except WorkerDied as error:
            hello = {"fatal": str(error)}
        if hello is None or "ready" not in hello:
            log = self.worker.log_path
            self._drop_worker()
            why = (hello or {}).get("fatal", f"no answer in {STARTUP_TIMEOUT_S:.0f} s")
            cause = _log_cause(log)
            why += f": {cause}" if cause and cause not in why else ""
            return {"fatal": f"{why} (log on {socket.gethostname()}: {log})"}
        return {**hello, "pid": os.getpid(), "node": socket.gethostname()}

    def _spawn(self, config: dict) -> WorkerProcess:
        self.spawned += 1
        name = f"{config['device']}-{config['mode']}-{os.getpid()}-{self.spawned}"
        config = dict(config, basetemp=str(self.scratch / name))
        return WorkerProcess(config, self.env, str(self.node_root), self.logs / f"{name}.log")

    def _drop_worker(self):
        if self.worker is not None:
            self.worker.kill()
            self.worker = None

    def _on_node(self, config: dict) -> dict:
        def moved(path: str) -> str:
            return relocate(path, self.driver_root, self.node_root)

        return dict(config, args=[moved(arg) for arg in config["args"]], target_root=moved(config["target_root"]))


# --- the driver -----------------------------------------------------------------------------------


class RayExecutor:
    """What `runner.run(executor=...)` calls with the run's session, in place of the local executor.

    address: the cluster (`ray.init`'s address; default: one started on this machine with `ray start`,
    else a new local one); code_path: where the nodes find the code (default: shipped with the job);
    cpu_actors: CPU actors (default: one per core of the cluster).
    """

    def __init__(self, address: str | None = None, code_path: str | None = None, cpu_actors: int | None = None):
        import_ray()  # now, before a baseline is measured, when Ray is missing
        if address:
            check_reachable(address)  # Ray itself retries an unreachable address for minutes
        self.address = address
        self.code_path = code_path
        self.cpu_actors = cpu_actors
        self.execution: RayExecution | None = None  # the last run's, for a caller to look into

    def __call__(self, session) -> "RayExecution":
        self.execution = RayExecution(session, self)
        return self.execution


@dataclass
class _Slot:
    """One actor place: its actor is replaced when it dies."""

    device: str
    mode: str
    config: dict  # the worker's config, as the driver sees it
    handle: object = None
    launched: float = 0.0
    ready: bool = False
    start_deaths: int = 0
    pid: int | None = None


class RayExecution(_Execution):
    """The local executor's bookkeeping (worker configs, recording results), with Ray actors for lanes."""

    def __init__(self, session, executor: RayExecutor):
        super().__init__(session)
        self.executor = executor
        self.slots: list[_Slot] = []
        self.in_flight: dict = {}  # object ref -> (slot, task or None for a start, when it was sent)
        self.retried: set[tuple[str, str]] = set()  # (mutant id, device) of mutants whose actor died once
        self.actor_deaths = 0
        self.began = 0.0

    def run(self, tasks: list[Task]):
        self.began = time.perf_counter()
        ray = import_ray()
        session = self.session
        roots = [session.target_root, *session.tests_paths, *{Path(task.rootdir) for task in tasks}]
        driver_root = shipped_root(roots)
        joined = self._join(ray, driver_root)
        # Shipped: the actor's working directory; else the path given, or (a Ray the caller started
        # with its own runtime_env) the same path as here.
        node_root = self.executor.code_path or (None if joined else str(driver_root))
        try:
            self._run(ray, tasks, str(driver_root), node_root)
        finally:
            for slot in self.slots:
                ray.kill(slot.handle)
            if joined:
                ray.shutdown()
        if self.overheads:
            session.timings["overhead_median_s"] = statistics.median(self.overheads)

    def _join(self, ray, root: Path) -> bool:
        """Join the cluster, with the code in the job's runtime_env; False when the caller already had."""
        if ray.is_initialized():
            return False
        runtime_env = {"py_modules": [str(Path(mutator.__file__).parent)], "excludes": ["__pycache__/", ".git/"]}
        if self.executor.code_path is None:
            runtime_env["working_dir"] = str(root)
            store = self.session.store.directory.resolve()
            if store.is_relative_to(root):  # its SQLite file is being written to
                runtime_env["excludes"].append(f"/{store.relative_to(root).as_posix()}/")
        where = self.executor.address or "this machine"
        self.session.status(f"ray: joining the cluster on {where}")
        try:
            ray.init(address=self.executor.address, runtime_env=runtime_env, log_to_driver=False, logging_level="ERROR")
        except ValueError as error:  # e.g. the code to ship is over Ray's size limit
            raise UserError(f"--executor ray: {one_line(str(error))} (or give --ray-code-path)") from None
        except (ConnectionError, RuntimeError, TimeoutError) as error:
            raise UserError(f"cannot join the Ray cluster on {where}: {one_line(str(error))}") from None
        return True

    def _run(self, ray, tasks: list[Task], driver_root: str, node_root: str | None):
        from ray.exceptions import NodeDiedError, OutOfMemoryError, RayActorError, WorkerCrashedError

        lost_kinds = (RayActorError, WorkerCrashedError, OutOfMemoryError, NodeDiedError)
        queues: dict[str, deque] = {}
        # Longest expected first, so that no long mutant starts last on an otherwise idle cluster.
        for task in sorted(tasks, key=lambda t: -t.timeout):
            queues.setdefault(task.device, deque()).append(task)
        counts = actor_counts({d: len(q) for d, q in queues.items()}, ray.cluster_resources(), self.executor.cpu_actors)
        actor_class = ray.remote(MutantActor)
        actor_args = (driver_root, node_root, str(self.session.scratch), str(self.session.logs))
        self.session.status(f"ray: starting {', '.join(f'{n} {d}' for d, n in counts.items())} actors")
        for device, count in counts.items():
            mode = "inprocess" if device == "cuda" else self.session.isolation
            rootdir = queues[device][0].rootdir
            for index in range(count):
                config = self._config(device, mode, f"{device}-{index}", rootdir, self.session.tests_paths)
                slot = _Slot(device, mode, config)
                self.slots.append(slot)
                self._launch(slot, actor_class, actor_args)
        recorded = 0
        while recorded < len(tasks):
            done, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=STARTUP_TIMEOUT_S)
            if not done:
                if all(task is None for _, task, _ in self.in_flight.values()):
                    wanted = " or ".join(sorted({"GPU" if s.device == "cuda" else "CPU" for s in self.slots}))
                    why = f"no Ray actor became ready in {STARTUP_TIMEOUT_S:.0f} s: has the cluster a free {wanted}?"
                    raise UserError(why)
                continue
            slot, task, sent = self.in_flight.pop(done[0])
            try:
                reply = ray.get(done[0])
            except lost_kinds as error:
                recorded += self._actor_lost(slot, task, error, sent, queues, actor_class, actor_args)
                continue
            if "fatal" in reply:
                raise UserError(f"a {slot.device} actor failed: {reply['fatal']}")
            if task is None:
                slot.ready, slot.pid, slot.start_deaths = True, reply["pid"], 0
                self.session.timings.setdefault("worker_start_s", time.perf_counter() - slot.launched)
                self.session.timings.setdefault("ray_ready_s", time.perf_counter() - self.began)  # join included
            elif reply["outcome"] == FALLBACK:
                queues[task.device].appendleft(replace(task, fallback=True, timeout=task.fresh_timeout))
            else:
                if reply["outcome"] not in OUTCOMES:
                    reply = {"outcome": CRASHED, "reason": f"unexpected reply {reply}"}
                self._record(task, reply, time.perf_counter() - sent)
                recorded += 1
            self._dispatch_idle(queues)
        self.session.timings["actor_deaths"] = self.actor_deaths
        stops = [slot.handle.stop.remote() for slot in self.slots if slot.ready]
        ray.wait(stops, num_returns=len(stops), timeout=STOP_GRACE_S)

    def _launch(self, slot: _Slot, actor_class, actor_args):
        slot.handle = actor_class.options(**actor_options(slot.device)).remote(*actor_args)
        slot.launched, slot.ready, slot.pid = time.perf_counter(), False, None
        self.in_flight[slot.handle.start.remote(slot.config)] = (slot, None, slot.launched)

    def _dispatch_idle(self, queues: dict[str, deque]):
        """Hand the next mutant of its device to every ready actor that has none."""
        busy = {id(slot) for slot, _, _ in self.in_flight.values()}
        for slot in self.slots:
            tasks_q = queues[slot.device]
            if slot.ready and id(slot) not in busy and tasks_q:
                task = tasks_q.popleft()
                message = {"mutant": task.mutant.to_dict(), "tests": list(task.tests), "timeout": task.timeout}
                if task.fallback:
                    config = self._config(
                        task.device,
                        "oneshot",
                        f"{task.device}-fresh",
                        task.rootdir,
                        [f"{task.rootdir}/{nodeid}" for nodeid in task.tests],
                        mutant=task.mutant.to_dict(),
                    )
                    ref = slot.handle.run_fresh.remote(config, message, task.timeout)
                else:
                    # a fork worker times its child out itself; an in-process one is timed out by the actor
                    limit = task.timeout + WATCHDOG_SLACK_S if slot.mode == "fork" else task.timeout
                    ref = slot.handle.run.remote(message, limit)
                self.in_flight[ref] = (slot, task, time.perf_counter())

    def _actor_lost(self, slot: _Slot, task: Task | None, error, sent: float, queues, actor_class, actor_args) -> int:
        """A new actor in the dead one's place; its mutant queued again once, then classified. Returns the
        number of results recorded (0 or 1)."""
        self.actor_deaths += 1
        why = one_line(str(error)) or type(error).__name__
        ray = import_ray()
        ray.kill(slot.handle)
        if task is None:
            slot.start_deaths += 1
            if slot.start_deaths >= MAX_START_DEATHS:
                raise UserError(f"Ray actors for {slot.device} die before they are ready: {why}")
        self._launch(slot, actor_class, actor_args)
        if task is None:
            return 0
        key = (task.mutant.id, task.device)
        if key not in self.retried:
            self.retried.add(key)
            queues[task.device].appendleft(task)  # the next free actor takes it: not the one that died
            self.session.status(f"ray: an actor died running {task.mutant.id}; it runs again on another")
            return 0
        reply = {"outcome": CRASHED, "reason": f"the actors running it died twice: {why}"}
        self._record(task, reply, time.perf_counter() - sent)
        return 1
