"""A mutation run: baseline, test selection, execution on parallel workers, results into the store.

    report = runner.run(mutants, target=..., tests=..., devices=["cpu"], store_dir=".mutator")
    report.results, report.timings

Per device: measure (or reuse) the baseline; for each mutant select the tests that cover its lines,
fastest first, and reuse a stored result with the same fingerprint (both in mutator.selection); with
`since`, leave out mutants that no change since that git revision touches; run the rest on workers
(see mutator.worker) and commit each result as it arrives. Mutants that cannot be swapped into a live
function (module-level code, decorators, class bodies) run in a fresh process instead.

While a baseline is measured, the mutants are made and the CPU workers start: they import and collect
the suite, and import the modules the baseline's tests import as each test ends, so that they are
ready when the baseline is (a fork worker imports them once, instead of each forked child).

Every temporary directory of a run lives under its scratch directory, `<store>/scratch/<pid>/`: pytest's
`--basetemp` of the baseline and every worker, and `TMPDIR` of each of those processes, so what a suite
makes with `tempfile` goes there too, even when a worker is killed before its clean-up runs. The
scratch directory is removed at the end of the run; after a `kill -9`, by the next run on the store.

Every pytest process of a run gets the same suite, the user's pytest arguments and the same `--device`
rule (mutator.baseline.suite_args). Their logs go to `<store>/logs/run-<id>/`: removed after a run that
succeeds, kept after one that fails, whose error names the log to read.
"""

import ast
import os
import queue
import shutil
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from mutator import baseline as baseline_mod
from mutator.errors import UserError
from mutator.mutants import Mutant
from mutator.outcomes import CRASHED, ERROR, NO_COVERAGE, OUTCOMES, TIMEOUT, Result
from mutator.selection import (
    Fingerprints,
    changed_since,
    find_def,
    mutant_key,
    remap_coverage,
    select_tests,
    touched,
)
from mutator.store import Store
from mutator.worker import FALLBACK, ClonedWorker, WorkerDied, WorkerProcess

DEVICES = ("cpu", "cuda")
ISOLATIONS = ("fork", "inprocess")
STARTUP_TIMEOUT_S = 300.0  # a worker's interpreter, torch import and collection
WATCHDOG_SLACK_S = 30.0  # a fork-mode worker enforces the timeout itself; this guards the worker


@dataclass
class RunReport:
    mutants: list[Mutant]
    results: list[Result]  # mutant order, then device order
    devices: list[str]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    mutant: Mutant
    device: str
    tests: tuple[str, ...]  # node ids, fastest first
    timeout: float
    fresh_timeout: float  # the same in a fresh process, which first imports and collects
    fingerprint: str
    fallback: bool  # run in a fresh process instead of swapping into a live function
    rootdir: str  # the baseline's pytest rootdir: node ids are relative to it


# --- choosing devices, and how a mutant can run --------------------------------------------------


def resolve_devices(requested: str | list[str] | None) -> list[str]:
    """`--device cpu,cuda`; by default cpu, plus cuda when torch sees a GPU."""
    if requested is None:
        # no NVIDIA device node, no CUDA: said without importing torch (1 s of every CPU-only run)
        return ["cpu", "cuda"] if _nvidia_device_present() and _cuda_available() else ["cpu"]
    names = requested.split(",") if isinstance(requested, str) else list(requested)
    names = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    unknown = [name for name in names if name not in DEVICES]
    if unknown or not names:
        raise UserError(f"--device takes a comma list from {','.join(DEVICES)}, got {','.join(names) or '(none)'}")
    if "cuda" in names and not _cuda_available():
        raise UserError("--device cuda requested, but torch.cuda.is_available() is False on this machine")
    return names


def _nvidia_device_present() -> bool:
    """Whether this machine could have a CUDA device at all: a driver's device node, and a
    CUDA_VISIBLE_DEVICES that does not hide every GPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    nodes = any(Path("/dev").glob("nvidia[0-9]*")) or Path("/dev/dxg").exists()  # dxg: WSL2
    return nodes or Path("/proc/driver/nvidia/gpus").is_dir()


def _cuda_available() -> bool:
    import torch  # only asked when CUDA is in question (1 s); this process never runs a torch op

    return torch.cuda.is_available()


def swap_obstacle(mutant: Mutant) -> str | None:
    """Why the mutant cannot be hot-swapped into a live function, or None if it can.

    A swap replaces one function's code and defaults, so the mutated file must differ from the
    original only inside one function's signature and body: not at module level, not in a class
    body, not in a decorator (which wrapped the function once, at import).
    """
    if not mutant.qualname:
        return "module-level code"
    outermost = mutant.qualname.split(".<locals>.")[0]
    trees = [ast.parse(mutant.original), ast.parse(mutant.mutated)]
    for tree in trees:
        node = find_def(tree, outermost)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return f"{outermost} is not a single function definition"
        node.body, node.args, node.returns = [ast.Pass()], ast.arguments([], [], None, [], [], None, []), None
    if ast.dump(trees[0]) != ast.dump(trees[1]):
        return f"the change reaches outside the code of {outermost}"
    return None


def compile_error(mutant: Mutant) -> str | None:
    try:
        compile(mutant.mutated, mutant.file, "exec")
    except (SyntaxError, ValueError) as error:
        return f"does not compile: {type(error).__name__}: {error}"
    return None


# --- the run --------------------------------------------------------------------------------------


def run(
    mutants: list[Mutant] | Callable[[], list[Mutant]],
    *,
    target: str | Path,
    tests: str | Path | list[str | Path] | None = None,
    pytest_args: list[str] | None = None,
    devices: str | list[str] | None = None,
    workers: int | None = None,
    store_dir: str | Path = ".mutator",
    timeout_factor: float = 3.0,
    timeout_constant: float = 5.0,
    memory_limit_mb: int | None = None,
    isolation: str = "fork",
    since: str | None = None,
    packages: list[str] | None = None,
    params: dict | None = None,
    on_result=None,
    on_status=None,
    on_warning=None,
    executor=None,
) -> RunReport:
    """Run every mutant on every device; resume from and record into the store under `store_dir`.

    tests: one or more paths (default: `default_tests(target)`); pytest_args: passed to every pytest
    process of the run (`-k`, `-m`, `-p`, `--deselect`, the suite's own options).
    mutants: the list, or a function that makes it, called while the baselines run; then `packages`
    (the target's top-level packages or modules to measure coverage in) must be given.
    since: a git revision: run only the mutants on lines changed since then and those whose tests
    changed; the others keep an earlier result with the same fingerprint, or are not run (no result).
    on_result(mutant, result) is called for each result as it is known (reused ones included);
    on_status(message) for each phase; on_warning(line) once for each thing the user should know, such
    as a test module that fails to import. executor(session) makes what runs the mutants: the local
    executor by default, mutator.ray_executor.RayExecutor for a Ray cluster. Returns the results in mutant
    order and the run's timings.
    """
    started = time.perf_counter()
    target_root = Path(target).resolve()
    if not target_root.is_dir():
        raise UserError(f"target directory not found: {target}")
    given = [tests] if isinstance(tests, (str, Path)) else list(tests or [])
    tests_paths = [Path(path).resolve() for path in given] or [default_tests(target_root)]
    for path in tests_paths:
        if not path.exists():
            raise UserError(f"tests not found: {path}")
    if isolation not in ISOLATIONS:
        raise UserError(f"--isolation takes one of {', '.join(ISOLATIONS)}, got {isolation}")
    if callable(mutants) and not packages:
        mutants = mutants()  # the packages to measure come from the mutants
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise UserError("--workers must be at least 1")
    device_list = resolve_devices(devices)
    changes = changed_since(target_root, since, [target_root, *tests_paths]) if since else None

    store = Store(store_dir)
    try:
        store.lock()  # one writer: a second run on this store stops here, naming the first
    except UserError:
        store.close()
        raise
    run_params = {
        **(params or {}),
        "target": str(target_root),
        "tests": [str(path) for path in tests_paths],
        "pytest_args": list(pytest_args or []),
        "devices": device_list,
        "workers": workers,
        "timeout_factor": timeout_factor,
        "timeout_constant": timeout_constant,
        "memory_limit_mb": memory_limit_mb,
        "isolation": isolation,
        "since": since,
    }
    run_id = store.begin_run(run_params)
    session = _Session(
        store=store,
        run_id=run_id,
        target_root=target_root,
        tests_paths=tests_paths,
        pytest_args=list(pytest_args or []),
        packages=packages or sorted({Path(m.file).parts[0] for m in mutants}),
        workers=workers,
        isolation=isolation,
        timeout_factor=timeout_factor,
        timeout_constant=timeout_constant,
        memory_limit_mb=memory_limit_mb,
        scratch=_scratch(Path(store_dir).resolve()),
        logs=_logs(Path(store_dir), run_id),
        on_result=on_result or (lambda mutant, result: None),
        status=on_status or (lambda message: None),
        on_warning=on_warning or (lambda line: None),
        changes=changes,
    )
    timings = session.timings
    local = _Execution(session) if executor is None else None
    make_mutants = mutants if callable(mutants) else lambda: mutants
    early_workers = workers if callable(mutants) else min(workers, len(mutants))

    def meanwhile(measuring: list[str]) -> list[Mutant]:
        if local is not None and "cpu" in measuring:  # a fresh baseline: most mutants will run
            local.start_early("cpu", early_workers)  # killed unless the plan has mutants for them
        made = make_mutants()
        if measuring:  # else planning comes next, and needs this only for the mutants it has to run
            _prepare(session, made)
        return made

    try:
        baselines, mutants = _baselines(session, device_list, meanwhile)
        store.set_mutants(run_id, mutants)
        tasks = [task for d in device_list for task in _plan_device(session, mutants, d, *baselines[d])]
        if tasks:
            session.status(f"running {len(tasks)} mutants on {workers} workers")
            start = time.perf_counter()
            (local or executor(session)).run(tasks)
            timings["mutants_s"] = time.perf_counter() - start
        timings["wall_s"] = time.perf_counter() - started
        timings["executed"] = len(tasks)
        timings["not_run"] = session.not_run
        store.finish_run(session.run_id, timings)
        shutil.rmtree(session.logs, ignore_errors=True)  # nothing failed: nothing to read there
        return RunReport(mutants, store.results(run_id, device_list), device_list, timings)
    finally:
        if local is not None:
            local.discard_early()  # no mutant ran, or the baseline failed
        shutil.rmtree(session.scratch, ignore_errors=True)
        store.close()


def _logs(store_dir: Path, run_id: int, keep: int = 4) -> Path:
    """This run's log directory under the store. Only failed (or killed) runs leave theirs behind: the
    newest `keep` of those stay for reading, older ones go."""
    root = store_dir / "logs"
    old = sorted(root.glob("run-*"), key=lambda d: int(d.name[4:]) if d.name[4:].isdigit() else -1)
    for stale in old[: max(0, len(old) - keep)]:
        shutil.rmtree(stale, ignore_errors=True)
    logs = root / f"run-{run_id}"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    return logs


def _scratch(store_dir: Path) -> Path:
    """This run's directory for every temporary directory of the run, beside the store; removed at the end.

    The run holds the store's lock, so no other run is using the store: what is left under scratch/
    belongs to runs that were killed, and goes now, so none piles up.
    """
    root = store_dir / "scratch"
    for old in root.glob("*") if root.is_dir() else ():
        shutil.rmtree(old, ignore_errors=True)
    scratch = root / str(os.getpid())
    scratch.mkdir(parents=True)
    return scratch


def default_tests(target_root: Path) -> Path:
    """`<target>/tests/nanochat` if it exists, else `<target>/tests`."""
    nanochat_tests = target_root / "tests" / "nanochat"
    return nanochat_tests if nanochat_tests.is_dir() else target_root / "tests"


@dataclass
class _Session:
    """What one run's phases share."""

    store: Store
    run_id: int
    target_root: Path
    tests_paths: list[Path]
    pytest_args: list[str]
    packages: list[str]  # top-level packages (or modules) of the target that the mutants change
    workers: int
    isolation: str
    timeout_factor: float
    timeout_constant: float
    memory_limit_mb: int | None
    scratch: Path  # pytest temp dirs, removed at the end
    logs: Path  # the baseline's and workers' logs, kept if the run fails
    on_result: Callable[[Mutant, Result], None]
    status: Callable[[str], None]
    on_warning: Callable[[str], None]
    changes: dict[Path, set[int] | None] | None = None  # --since: what changed, else None
    not_run: int = 0  # --since: mutants left without a result
    timings: dict[str, float] = field(default_factory=dict)
    known_collect_errors: dict[str, list[str]] = field(default_factory=dict)  # device -> modules left out
    prepared: dict[str, tuple] = field(default_factory=dict)  # mutant id -> (compile error, swap obstacle)
    prepared_keys: dict[str, str] = field(default_factory=dict)  # mutant id -> selection.mutant_key
    preload: dict[str, list[str]] = field(default_factory=dict)  # device -> modules its tests imported
    warned: set[str] = field(default_factory=set)

    def warn(self, line: str):
        if line not in self.warned:  # once per run, whatever the number of devices
            self.warned.add(line)
            self.on_warning(line)


def _baselines(session: _Session, devices: list[str], meanwhile: Callable[[list[str]], object]):
    """Each device's baseline (reused from the store if the target, suite and arguments are unchanged by
    AST, else measured), and the result of `meanwhile(devices being measured)`, called while the suite
    runs: mutant generation, single-threaded, would otherwise leave a core idle before the baseline
    starts, and the workers start there too. What a baseline could not collect is reported, and left
    out of the workers' collection too; what its tests imported, the workers import before forking."""
    plans = {device: _baseline_plan(session, device) for device in devices}
    measured: dict[str, object] = {}

    def measure():
        for device, (_, _, job) in plans.items():
            if job is not None:
                try:
                    measured[device] = job()
                except BaseException as error:  # re-raised by the calling thread
                    measured[device] = error
                    return

    # The store's connection belongs to the calling thread: the thread only runs the subprocesses.
    thread = threading.Thread(target=measure, name="baseline", daemon=True)
    thread.start()
    produced = meanwhile([device for device, (_, _, job) in plans.items() if job is not None])
    thread.join()
    baselines = {}
    for device, (fingerprint, stored, _) in plans.items():
        if isinstance(measured.get(device), BaseException):
            raise measured[device]
        if stored is None:
            stored = _save_baseline(session, device, fingerprint, *measured[device])
        base, coverage = stored
        for module, line in base.get("collect_errors", {}).items():
            session.warn(f"{module}: {line}")
        if base.get("missing_packages"):
            session.warn(f"the suite needs packages that are not installed: {', '.join(base['missing_packages'])}")
        session.known_collect_errors[device] = sorted(base.get("collect_errors", {}))
        session.preload[device] = base.get("imported", [])
        baselines[device] = (base, coverage)
    return baselines, produced


def _baseline_plan(session: _Session, device: str):
    """(fingerprint, the stored baseline or None, None or the job that measures it)."""
    store = session.store
    fingerprint = baseline_mod.fingerprint(
        session.target_root, session.tests_paths, device, session.packages, session.pytest_args
    )
    stored = store.baseline(device, fingerprint)
    if stored is not None:
        session.status(f"baseline on {device}: unchanged, reused")
        base, coverage = stored
        # the same code by AST; where a comment or a reformat moved lines, the coverage follows them
        return fingerprint, (base, remap_coverage(coverage, base.get("sources", {}), session.target_root)), None
    session.status(f"baseline on {device}: running the suite on the clean target")
    previous = store.baseline(device)  # measured on other code, but its times still balance the shards
    weights = baseline_mod.module_weights(previous[0]) if previous else None
    sources = {}  # the text measured on: a later comment-only change remaps the coverage from it
    for path in baseline_mod.target_files(session.target_root, session.packages):
        try:
            sources[path.relative_to(session.target_root).as_posix()] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass

    def job():
        start = time.perf_counter()
        data = baseline_mod.measure(
            session.target_root,
            session.tests_paths,
            device,
            session.packages,
            pytest_args=session.pytest_args,
            workdir=session.scratch / f"baseline-{device}",
            log_dir=session.logs,
            shards=session.workers if device == "cpu" else 1,  # the baseline too runs on every core
            weights=weights,
            imports_dir=_imports_dir(session, device),
        )
        return data, sources, time.perf_counter() - start

    return fingerprint, None, job


def _imports_dir(session: _Session, device: str) -> Path:
    """Where the baseline's shards list the modules their tests import, for early workers to import too."""
    return session.scratch / f"imports-{device}"


def _save_baseline(session: _Session, device: str, fingerprint: str, data: dict, sources: dict, seconds: float):
    coverage = data.pop("coverage")
    data["sources"] = {file: text for file, text in sources.items() if any(file in f for f in coverage.values())}
    session.store.save_baseline(device, fingerprint, data, coverage)
    session.timings[f"baseline_{device}_s"] = seconds
    return session.store.baseline(device, fingerprint)


def _prepare(session: _Session, mutants: list[Mutant]):
    """What planning needs to know of each mutant alone, worked out while the baseline runs: after it,
    planning is all that stands between the baseline and the first mutant."""
    known_keys = session.store.mutant_keys()
    for mutant in mutants:
        broken = compile_error(mutant)
        session.prepared[mutant.id] = (broken, None if broken else swap_obstacle(mutant))
        if mutant.id not in known_keys:
            session.prepared_keys[mutant.id] = mutant_key(mutant)


def _plan_device(session: _Session, mutants: list[Mutant], device: str, base: dict, coverage: dict) -> list[Task]:
    """Selection and reuse for one device: record what needs no run, return the rest."""
    known_keys = session.store.mutant_keys()
    keys = {**session.prepared_keys, **known_keys}
    fingerprints = Fingerprints(session.target_root, session.tests_paths, session.pytest_args, base, coverage, keys)
    startup_s = max(1.0, base["startup_s"])  # a fresh process's imports and collection
    tasks = []
    for mutant in mutants:
        selected = select_tests(mutant, base, coverage)
        fingerprint = fingerprints(mutant, device, selected) if selected else ""
        # A result is only ever stored under a fingerprint once its mutant compiled and ran, so a
        # reusable one needs no compile check (which costs more than the look-up).
        old = session.store.reusable(fingerprint, mutant.id, device) if fingerprint else None
        if old is not None:  # measured before, maybe under another id (a comment moved the file's text)
            session.store.save_result(old[0], fingerprint, old[1], session.run_id)
            session.on_result(mutant, old[0])
            continue
        prepared = session.prepared.get(mutant.id)
        broken = prepared[0] if prepared else compile_error(mutant)
        if broken or not selected:
            result = Result(mutant.id, device, ERROR if broken else NO_COVERAGE, reason=broken or "")
            session.store.save_result(result, "", 0.0, session.run_id)
            session.on_result(mutant, result)
            continue
        if session.changes is not None and not _changed(session, mutant, selected, base):
            session.not_run += 1  # --since: not on a changed line, its tests unchanged, no earlier result
            continue
        fixtures = {f for t in selected for f in base["tests"][t]["fixtures"]}
        expected = sum(base["tests"][t]["duration"] for t in selected)
        expected += sum(base["fixtures"].get(f, 0.0) for f in fixtures)
        fallback = (prepared[1] if prepared else swap_obstacle(mutant)) is not None
        timeout = session.timeout_factor * expected + session.timeout_constant
        task = Task(mutant, device, tuple(selected), timeout, timeout + startup_s, fingerprint, False, base["rootdir"])
        tasks.append(replace(task, timeout=task.fresh_timeout, fallback=True) if fallback else task)
    if keys.keys() != known_keys.keys():
        session.store.save_mutant_keys({k: v for k, v in keys.items() if k not in known_keys})
    return tasks


def _changed(session: _Session, mutant: Mutant, selected: list[str], base: dict) -> bool:
    """--since: a change touches the mutant's lines, its tests' modules, or the suite's shared files."""
    if touched(mutant, session.changes, session.target_root):
        return True
    test_modules = {Path(test["file"]).resolve() for test in base["tests"].values()}
    mine = {Path(base["tests"][t]["file"]).resolve() for t in selected}
    suite = [path for path in session.changes if any(path.is_relative_to(p) for p in session.tests_paths)]
    return any(path in mine or (path not in test_modules and path.suffix != ".pyc") for path in suite)


class _Execution:
    """Lanes of workers (one thread each) pulling tasks; the calling thread records the results.

    Workers may be started early, while the baseline runs (`start_early`): each imports the suite and
    collects it meanwhile, and hears what the baseline found when its lane takes it. In fork mode the
    CPU workers are the clones of one zygote (mutator.worker), so the suite is imported and collected
    once, not once per worker; a worker that dies is replaced by a fresh process of its own.
    """

    def __init__(self, session: _Session):
        self.session = session
        self.env = baseline_mod.subprocess_env(session.target_root)
        tmp = session.scratch / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        self.env["TMPDIR"] = str(tmp)  # a suite's own temp dirs: a killed worker's stay under the scratch
        self.results: queue.Queue = queue.Queue()
        self.live: set[WorkerProcess] = set()  # for the calling thread to kill on Ctrl-C
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.overheads: list[float] = []  # swapped mutants: wall time minus the tests' own time
        self.counter = 0
        self.early: dict[str, list[WorkerProcess | ClonedWorker]] = {}  # device -> workers no lane took yet
        self.zygotes: dict[str, WorkerProcess] = {}  # device -> the zygote whose clones are in `early`

    def start_early(self, device: str, count: int, rootdir: str | None = None):
        """Start `count` workers for `device` now (in fork mode, one zygote of `count` clones); `run` hands
        them to its lanes. Without a rootdir (the baseline still runs), a worker finds the baseline's from
        the same arguments, checked when the baseline is in."""
        mode = self.session.isolation
        imports = str(_imports_dir(self.session, device))  # what the baseline's tests import, as they do
        if mode == "fork" and device == "cpu":
            config = self._config(device, mode, f"{device}-0", rootdir, self.session.tests_paths, early=True)
            self.zygotes[device] = self._spawn(dict(config, imports_from=imports), self.env, clones=count)
            self.early.setdefault(device, []).extend(self.zygotes[device].clones)
            return
        for index in range(count):
            config = self._config(device, mode, f"{device}-{index}", rootdir, self.session.tests_paths, early=True)
            self.early.setdefault(device, []).append(self._spawn(dict(config, imports_from=imports), self.env))

    def discard_early(self):
        """Kill the early workers no lane took."""
        with self.lock:
            left = [worker for workers in self.early.values() for worker in workers]
            left += self.zygotes.values()
            self.early.clear()
            self.zygotes.clear()
        for worker in left:
            self._kill(worker)

    def run(self, tasks: list[Task]):
        self.phase_start = time.perf_counter()  # a zygote's set-up, before the lanes, is start-up too
        queues: dict[str, queue.Queue] = {}
        # Longest expected first, so that no long mutant starts last on an otherwise idle machine.
        for task in sorted(tasks, key=lambda t: -t.timeout):
            queues.setdefault(task.device, queue.Queue()).put(task)
        lanes = []
        for device, tasks_q in queues.items():
            if device == "cuda":  # one worker per GPU; a CUDA context does not survive fork
                import torch

                count, mode = max(1, torch.cuda.device_count()), "inprocess"
            else:
                count, mode = min(self.session.workers, tasks_q.qsize()), self.session.isolation
                if mode == "fork" and device not in self.early:  # the baseline was reused: start them now
                    self.start_early(device, count, rootdir=tasks_q.queue[0].rootdir)
            with self.lock:
                spare = self.early.get(device, [])[count:]
                del self.early.get(device, [])[count:]
            for worker in spare:  # fewer mutants to run than workers started
                self._kill(worker)
            if device in self.zygotes:
                self._set_up_zygote(device, tasks_q.queue[0].rootdir, count)
            for index in range(count):
                name = f"{device}-{index}"
                lanes.append(threading.Thread(target=self._lane, args=(device, mode, index, tasks_q), name=name))
        for lane in lanes:
            lane.daemon = True  # a lane blocked on a worker must not keep an interrupted run alive
            lane.start()
        try:
            for _ in range(len(tasks)):
                kind, task, reply, wall = self.results.get()
                if kind == "fatal":
                    raise UserError(f"a {task} worker failed: {reply}")
                self._record(task, reply, wall)
        finally:
            self.stopping.set()
            with self.lock:
                for worker in list(self.live):
                    worker.kill()
        if self.overheads:
            self.session.timings["overhead_median_s"] = statistics.median(self.overheads)

    def _record(self, task: Task, reply: dict, wall: float):
        result = Result(
            mutant_id=task.mutant.id,
            device=task.device,
            outcome=reply["outcome"],
            killing_test=reply.get("killing_test"),
            reason=reply.get("reason", ""),
            tests_run=reply.get("tests_run", 0),
            duration_s=wall,
        )
        tests_s = reply.get("tests_s", 0.0)
        self.session.store.save_result(result, task.fingerprint, tests_s, self.session.run_id)
        if not task.fallback and result.outcome not in (TIMEOUT, CRASHED):
            self.overheads.append(wall - tests_s)
        self.session.on_result(task.mutant, result)

    # --- one lane: a thread that owns at most one worker at a time ---

    def _lane(self, device: str, mode: str, index: int, tasks_q: queue.Queue):
        worker = None
        try:
            while not self.stopping.is_set():
                try:
                    task = tasks_q.get_nowait()
                except queue.Empty:
                    return
                if not task.fallback and worker is None:
                    worker = self._start(device, mode, index, task.rootdir)
                    if worker is None:
                        return
                start = time.perf_counter()
                if task.fallback:
                    reply = self._run_fresh(task)
                else:
                    reply, worker = self._run_on(worker, task, mode)
                if reply["outcome"] == FALLBACK:
                    tasks_q.put(replace(task, fallback=True, timeout=task.fresh_timeout))
                    continue
                if reply["outcome"] not in OUTCOMES:
                    reply = {"outcome": CRASHED, "reason": f"unexpected reply {reply}"}
                self.results.put(("result", task, reply, time.perf_counter() - start))
        except Exception as error:  # a bug here must stop the run, not leave it waiting forever
            self.results.put(("fatal", device, f"{type(error).__name__}: {error}", 0.0))
        finally:
            if worker is not None:
                self._kill(worker, gracefully=not self.stopping.is_set())

    def _start(self, device: str, mode: str, index: int, rootdir: str) -> WorkerProcess | None:
        with self.lock:
            early = self.early.get(device, [])
            worker = early.pop(0) if early else None
        if worker is None:
            config = self._config(device, mode, f"{device}-{index}", rootdir, self.session.tests_paths)
            env = dict(self.env, CUDA_VISIBLE_DEVICES=_gpu(index)) if device == "cuda" else self.env
            worker = self._spawn(config, env)
        try:
            hello = worker.receive(STARTUP_TIMEOUT_S)
            if hello is not None and "started" in hello:
                hello = self._tell_early(worker, device, rootdir, hello)
        except WorkerDied as error:
            hello = {"fatal": str(error)}
        if hello is None or "ready" not in hello:
            self._kill(worker)
            self.results.put(("fatal", device, _start_failure(worker, hello), 0.0))
            return None
        # what the mutant phase waited for its first worker (an early one may have been ready all along)
        self.session.timings.setdefault("worker_start_s", time.perf_counter() - self.phase_start)
        return worker

    def _set_up_zygote(self, device: str, rootdir: str, count: int):
        """The zygote has collected the suite: check it, and have it import what the tests import and fork
        `count` clones (their lanes then hear "ready" from each)."""
        zygote = self.zygotes[device]
        try:
            hello = zygote.receive(STARTUP_TIMEOUT_S)
            if hello is not None and "started" in hello:
                hello = self._check_early(device, rootdir, hello) or hello
            if hello is not None and "started" in hello:
                zygote.send({"preload": self.session.preload.get(device, []), "clones": count})
                return
        except WorkerDied as error:
            hello = {"fatal": str(error)}
        raise UserError(f"a {device} worker failed: {_start_failure(zygote, hello)}")

    def _check_early(self, device: str, rootdir: str, hello: dict) -> dict | None:
        """What is wrong with an early worker's collection, as a {"fatal": why}; None if nothing."""
        if hello["rootdir"] != rootdir:
            return {"fatal": f"the worker's pytest rootdir is {hello['rootdir']}, the baseline's {rootdir}"}
        known = self.session.known_collect_errors.get(device, [])
        unknown = [line for module, line in hello["collect_errors"].items() if module not in known]
        if unknown:
            return {"fatal": "collection failed: " + "; ".join(unknown[:3])}
        return None

    def _tell_early(self, worker: WorkerProcess, device: str, rootdir: str, hello: dict) -> dict | None:
        """An early worker has collected the suite: check it against the baseline, send it the modules to
        import; its next message says it is ready."""
        problem = self._check_early(device, rootdir, hello)
        if problem is not None:
            return problem
        worker.send({"preload": self.session.preload.get(device, [])})
        return worker.receive(STARTUP_TIMEOUT_S)

    def _config(self, device: str, mode: str, name: str, rootdir: str | None, tests: list, **extra) -> dict:
        with self.lock:
            self.counter += 1
            basetemp = self.session.scratch / "tmp" / f"{name}-{self.counter}"
        args = baseline_mod.suite_args(tests, self.session.pytest_args, device)
        return {
            "mode": mode,
            # node ids are relative to the baseline's rootdir: pin it, whatever pytest would infer
            "args": [*args, f"--rootdir={rootdir}"] if rootdir else args,
            "device": device,
            "known_collect_errors": self.session.known_collect_errors.get(device, []),
            "preload": self.session.preload.get(device, []),
            "target_root": str(self.session.target_root),
            "basetemp": str(basetemp),
            "memory_limit_mb": self.session.memory_limit_mb if device == "cpu" else None,
            **extra,
        }

    def _spawn(self, config: dict, env: dict, clones: int = 0) -> WorkerProcess:
        log = self.session.logs / f"{Path(config['basetemp']).name}.log"
        worker = WorkerProcess(config, env, os.getcwd(), log, clones=clones)
        with self.lock:
            self.live.add(worker)
            self.live.update(worker.clones)
        return worker

    def _kill(self, worker: WorkerProcess, gracefully: bool = False):
        worker.stop() if gracefully else worker.kill()
        with self.lock:
            self.live.discard(worker)

    def _run_on(self, worker: WorkerProcess, task: Task, mode: str) -> tuple[dict, WorkerProcess | None]:
        """Run a task on a long-lived worker; a worker that hangs or dies is replaced (None)."""
        message = {"mutant": task.mutant.to_dict(), "tests": list(task.tests), "timeout": task.timeout}
        # A fork worker times its child out itself; an in-process worker is timed out from here.
        limit = task.timeout + WATCHDOG_SLACK_S if mode == "fork" else task.timeout
        try:
            worker.send(message)
            reply = worker.receive(limit)
        except WorkerDied as error:
            self._kill(worker)
            return {"outcome": CRASHED, "reason": f"worker {error}"}, None
        if reply is None:
            self._kill(worker)
            return {"outcome": TIMEOUT, "reason": f"no result after {limit:.1f} s"}, None
        return reply, worker

    def _run_fresh(self, task: Task) -> dict:
        """The fallback: a fresh pytest process that imports the mutated module from memory."""
        node_args = [f"{task.rootdir}/{nodeid}" for nodeid in task.tests]
        config = self._config(
            task.device, "oneshot", f"{task.device}-fresh", task.rootdir, node_args, mutant=task.mutant.to_dict()
        )
        env = dict(self.env, CUDA_VISIBLE_DEVICES=_gpu(0)) if task.device == "cuda" else self.env
        worker = self._spawn(config, env)
        try:
            worker.send({"tests": list(task.tests), "timeout": task.timeout})
            reply = worker.receive(task.timeout)
        except WorkerDied as error:
            reply = {"outcome": ERROR, "reason": f"the mutated code stopped pytest: {error}"}
        finally:
            self._kill(worker)
        if reply is None:
            reply = {"outcome": TIMEOUT, "reason": f"no result after {task.timeout:.1f} s"}
        return reply


def _start_failure(worker, hello: dict | None) -> str:
    """Why a worker did not become ready: its own word, or the silence, with its log's telling line."""
    why = (hello or {}).get("fatal", f"no answer in {STARTUP_TIMEOUT_S:.0f} s")
    cause = _log_cause(worker.log_path)
    why += f": {cause}" if cause and cause not in why else ""
    return f"{why} (log: {worker.log_path})"


def _log_cause(log: Path) -> str:
    """The line of a worker's log that most likely says why it stopped: pytest's "E" line of an exception,
    else its "error:" line (a usage error), else the last line."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    exceptions = [line[1:].strip() for line in lines if line.startswith("E ")]
    errors = [line for line in lines if "error:" in line.lower()]
    return (exceptions or errors or lines or [""])[-1][:240]


def _gpu(index: int) -> str:
    """The index-th GPU this process may use, as a CUDA_VISIBLE_DEVICES value for one worker."""
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return visible[index] if index < len(visible) else str(index)
