"""A worker: one long-lived pytest session that collects the suite once, then runs mutants on request.

The runner starts it as `python -P -m mutator.worker` and talks to it in JSON lines over its stdin and
stdout. At start the worker moves that channel to private descriptors and points fds 0 and 1 at
/dev/null, so nothing pytest or a test prints can corrupt it. The worker calls `pytest.main` with
`WorkerPlugin`, whose `pytest_runtestloop` replaces pytest's loop: instead of running every collected
item once, it answers tasks, running the selected, already collected items through pytest's own
`pytest_runtest_protocol` hook (so every plugin's wrappers still apply, e.g. `filterwarnings =
error`) and reading their reports from `pytest_runtest_logreport`.

  runner -> worker   first line: the config {mode, args, device, target_root, known_collect_errors,
                     preload, ...} (args from mutator.baseline.suite_args: the baseline's suite, arguments
                     and --device rule; preload: the modules the baseline's tests imported, see `preload`)
  worker -> runner   {"ready": n_items, "rootdir"} or {"fatal": why}
  runner -> worker   {"mutant": Mutant.to_dict(), "tests": [node ids], "timeout": s, "swap": bool}
  worker -> runner   {"outcome", "killing_test", "reason", "tests_run", "tests_s"}

A worker started while the baseline still runs (config "early": true) cannot know yet what the
baseline will find. It collects, then says {"started": n_items, "rootdir", "collect_errors": {module node
id: line}} and waits, importing meanwhile the modules the baseline's shards list as their tests import
them (config "imports_from": a directory of `<shard>.txt` files); the runner checks those errors against
the baseline's and answers {"preload": [modules]}; the worker imports what it still lacks and says
{"ready": n_items, "rootdir"}.

A worker may be started as the *zygote* of N workers (config "clone_fds": N pairs of descriptors, each
the worker's end of one more channel, which the runner passed on): it imports and collects once, and
on the setup message, {"preload": [...], "clones": n}, forks n clones, each of which says {"ready",
"rootdir", "pid"} on its own channel and serves it as a worker of its own. The zygote runs no task: it
waits for its channel to close, then for its clones, and only then ends its pytest session (so that
the suite's `pytest_unconfigure` cannot remove what a clone still uses). A clone ends with its channel,
without ending the session. On two cores, N workers that each import torch and collect the suite cost
as much CPU as half the baseline.

A task may also carry "swaps": [mutant dicts] to swap in several functions at once (a challenge's
bugs together), and "keep_going": true to run every selected test instead of stopping at the first
failure; the reply then lists every failing test in "failed" with one-line "reasons".

Three modes:
- fork (CPU): per mutant a child the worker forked ahead of time (the spare, waiting on its own pipe)
  takes the task, swaps the mutant in, runs the tests, writes its result to a pipe and `_exit`s.
  The worker itself never runs a test or a torch op, so each child starts from the same pristine
  state, and no OpenMP pool exists to be inherited half-dead across fork (which is what makes forking
  after torch work hang). The worker enforces the timeout.
- inprocess (CUDA, where a context does not survive fork; selectable on CPU): swap, run, restore
  the original code and defaults, tear all fixtures down. The runner enforces the timeout by killing
  the worker and starting another.
- oneshot (the fallback for what cannot be swapped: module-level code, class bodies, decorators):
  a fresh process whose import system serves the mutated file from memory, runs one task, exits.

Hot swap: compile the mutated file, execute it in a fresh namespace named like the real module, take
the function at the mutant's qualname (the outermost function for a nested one: its code object
carries the nested one), look through decorators with `inspect.unwrap`, and assign the new `__code__`,
`__defaults__` and `__kwdefaults__` to the live function. Every reference the tests already hold
(methods, wrappers, imported names) then runs the mutant. Nothing is ever written to disk.
"""

import builtins
import ctypes
import gc
import importlib
import importlib.abc
import importlib.machinery
import inspect
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pluggy

from mutator.outcomes import CRASHED, ERROR, KILLED, SURVIVED, TIMEOUT

FALLBACK = "fallback"  # not an outcome: the child asks the runner to rerun the mutant in a fresh process
REASON_CHARS = 240
# pytest's own hook marker (pytest.hookimpl is this object): the runner imports this module for its end of
# the channel, and a run that reuses every result should not pay 0.2 s to import pytest
hookimpl = pluggy.HookimplMarker("pytest")


class SwapError(Exception):
    """The mutant cannot be swapped into the live function; a fresh process must run it."""


class MutantImportError(Exception):
    """The mutated module does not compile or import: the mutant's outcome is `error`."""


# --- hot swap -------------------------------------------------------------------------------------


def module_name(file: str) -> str:
    parts = list(Path(file).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _function_at(namespace: dict, qualname: str) -> types.FunctionType:
    """The plain function at a dotted qualname, through classes and decorators."""
    obj = None
    scope = namespace
    for part in qualname.split("."):
        if part not in scope:
            raise SwapError(f"{qualname} not found")
        obj = scope[part]
        scope = vars(obj) if isinstance(obj, type) else {}
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    elif isinstance(obj, property):
        obj = obj.fget
    obj = inspect.unwrap(obj)
    if not isinstance(obj, types.FunctionType):
        raise SwapError(f"{qualname} is a {type(obj).__name__}, not a function")
    return obj


def swap_in(mutant: dict, target_root: str):
    """Swap the mutant into the live module; return a function that undoes it."""
    name = module_name(mutant["file"])
    try:
        live_module = sys.modules.get(name) or importlib.import_module(name)
    except Exception as error:
        raise SwapError(f"cannot import {name}: {error}") from None
    expected = (Path(target_root) / mutant["file"]).resolve()
    if Path(getattr(live_module, "__file__", "") or "").resolve() != expected:
        raise SwapError(f"{name} was imported from {live_module.__file__}, not {expected}")
    try:
        code = compile(mutant["mutated"], live_module.__file__, "exec")
    except (SyntaxError, ValueError) as error:
        raise MutantImportError(f"does not compile: {error}") from None
    namespace = {
        "__name__": name,
        "__file__": live_module.__file__,
        "__package__": live_module.__package__,
        "__spec__": live_module.__spec__,
        "__builtins__": builtins,
    }
    if hasattr(live_module, "__path__"):
        namespace["__path__"] = live_module.__path__
    try:
        exec(code, namespace)
    except Exception as error:
        raise MutantImportError(f"does not import: {type(error).__name__}: {error}") from None
    outermost = mutant["qualname"].split(".<locals>.")[0]
    live = _function_at(vars(live_module), outermost)
    new = _function_at(namespace, outermost)
    if live.__code__.co_freevars != new.__code__.co_freevars:
        raise SwapError(f"free variables of {outermost} differ")
    saved = live.__code__, live.__defaults__, live.__kwdefaults__
    live.__code__, live.__defaults__, live.__kwdefaults__ = new.__code__, new.__defaults__, new.__kwdefaults__

    def restore():
        live.__code__, live.__defaults__, live.__kwdefaults__ = saved

    return restore


class MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves one module's mutated source from memory, ahead of every other finder.

    The fallback's stand-in for a temporary copy of the target: nothing to copy or clean up, and
    no sys.path entry that pytest's own path insertions (rootdir, conftest dirs) could shadow.
    """

    def __init__(self, mutant: dict, target_root: str):
        self.name = module_name(mutant["file"])
        self.path = str(Path(target_root) / mutant["file"])
        self.source = mutant["mutated"]
        self.is_package = Path(self.path).name == "__init__.py"
        self.failure = ""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        spec = importlib.machinery.ModuleSpec(fullname, self, origin=self.path, is_package=self.is_package)
        spec.has_location = True
        if self.is_package:
            spec.submodule_search_locations = [str(Path(self.path).parent)]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        try:
            exec(compile(self.source, self.path, "exec"), module.__dict__)
        except Exception as error:
            self.failure = f"does not import: {type(error).__name__}: {error}"  # the outcome's reason
            raise


# --- process hygiene ------------------------------------------------------------------------------


def die_with_parent():
    """Ask Linux to SIGKILL this process when its parent dies (no orphan survives a `kill -9`)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the closed channel still ends a worker


def limit_memory(megabytes: int):
    """Cap the address space at what the process has now plus `megabytes` (now includes torch's maps)."""
    import resource

    try:
        with open("/proc/self/statm") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        current = 0
    limit = current + megabytes * 2**20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))


def preload(modules: list[str]):
    """Import the modules the baseline's tests imported as they ran, before any child is forked.

    A library may import much of itself on first use: the first torch optimizer a test builds imports
    torch._dynamo, some 800 modules and 2 s. Imported once here, every forked child inherits them instead
    of importing them again for each mutant. Only the standard library and installed packages are listed
    (mutator.baseline), never the target or the suite, and importing is all that runs: no test, no torch op.
    """
    for name in modules:
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:  # made at run time (e.g. by torch itself): the tests that need it make it again
                pass


def single_thread_torch():
    """One intra-op thread per worker: workers already fill the cores, and no pool is left to fork."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return (lines[0] if lines else "")[:REASON_CHARS]


def failure_line(report) -> str:
    """The one line that says why a test or a collection failed: pytest's crash line, e.g. the AssertionError."""
    crash = getattr(report.longrepr, "reprcrash", None)
    line = one_line(crash.message) if crash is not None else ""
    if not line:  # a string longrepr (collection, some plugins): its last "E" line is the exception
        lines = [entry.strip() for entry in str(report.longrepr).splitlines() if entry.strip()]
        errors = [entry[1:].strip() for entry in lines if entry.startswith("E ")]
        line = (errors or lines or [report.outcome])[-1][:REASON_CHARS]
    return line


def report_reason(report) -> str:
    """A test's failure line, with the phase (setup, teardown) where it was not the test itself."""
    line = failure_line(report)
    return line if report.when == "call" else f"{report.when}: {line}"


# --- the plugin -----------------------------------------------------------------------------------


class Channel:
    """JSON lines over two file descriptors."""

    def __init__(self, read_fd: int, write_fd: int):
        self.reader = os.fdopen(read_fd, "r", encoding="utf-8")
        self.write_fd = write_fd

    def send(self, message: dict):
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(self.write_fd, data) :]

    def receive(self) -> dict | None:
        line = self.reader.readline()
        return json.loads(line) if line else None

    def waiting(self, timeout: float) -> bool:
        """Whether a message is waiting (valid only while nothing is buffered: between whole messages
        that came one at a time, as the runner sends them)."""
        return bool(select.select([self.reader], [], [], timeout)[0])


class WorkerPlugin:
    def __init__(self, channel: Channel, config: dict):
        self.channel = channel
        self.config = config
        self.mode = config["mode"]
        self.items: dict = {}  # node id -> pytest.Item
        self.reports: list = []
        self.oom: set[str] = set()
        self.collect_errors: dict[str, str] = {}  # module node id -> "node id: its failure line"
        self.answered = False  # the test loop started, so every task gets its answer there
        self.exiting: list[int] = []  # forked children that answered and are exiting
        self.spare: tuple[int, int, int] | None = None  # (pid, task pipe, result pipe) of the next child
        self.clone = False  # forked by a zygote: serves a channel of its own, and does not end the session

    def pytest_collectreport(self, report):
        # a module the baseline could not import either is left out of the run (and reported there once)
        if report.failed and report.nodeid not in self.config.get("known_collect_errors", ()):
            self.collect_errors[report.nodeid] = f"{report.nodeid}: {failure_line(report)}"

    def pytest_runtest_logreport(self, report):
        self.reports.append(report)

    @hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if call.excinfo is not None and out_of_memory(call.excinfo.value):
            self.oom.add(item.nodeid)
        return report

    @hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        self.answered = True
        self.items = {item.nodeid: item for item in session.items}
        if self.mode == "oneshot":
            task = self.channel.receive()
            if self.collect_errors:  # the mutated module broke the import of the tests
                self.channel.send({"outcome": ERROR, "reason": one_line(next(iter(self.collect_errors.values())))})
            elif task is not None:
                self.prepare_inprocess()
                self.channel.send(self.run_tests(session, task["tests"]))
            return True
        rootdir = str(session.config.rootpath)
        if self.config.get("early"):  # the baseline still runs: it will say which collection errors are known
            self.channel.send({"started": len(self.items), "rootdir": rootdir, "collect_errors": self.collect_errors})
            setup = self.wait_for_setup(self.config.get("imports_from"))
            if setup is None:
                return True
            preload(setup["preload"])
            if "clones" in setup and not self.serve_as_zygote(setup["clones"]):
                return True  # the zygote, once its clones are done
        elif self.collect_errors:
            self.channel.send({"fatal": "collection failed: " + "; ".join(list(self.collect_errors.values())[:3])})
            return True
        preload(self.config.get("preload", []))
        if self.mode == "inprocess":
            self.prepare_inprocess()  # after the imports: a memory limit counts from what the worker holds
        self.channel.send({"ready": len(self.items), "rootdir": rootdir, "pid": os.getpid()})
        if self.mode == "fork":
            self.fork_spare(session)
        while (task := self.channel.receive()) is not None:
            if self.mode == "fork":
                self.channel.send(self.run_forked(session, task))
                self.fork_spare(session)  # while the runner records this result and sends the next task
            else:
                self.channel.send(self.run_inprocess(session, task))
        if self.spare is not None:
            os.close(self.spare[1])  # the spare reads end-of-file and exits
        if self.clone:
            os._exit(0)  # the session is the zygote's to end
        return True

    def serve_as_zygote(self, count: int) -> bool:
        """Fork `count` clones. In a clone, return True at once: it goes on to serve its own channel. In
        the zygote, return False once the runner closed its channel and every clone has exited."""
        gc.freeze()  # as for a spare child: the clones' collections must not copy what the zygote holds
        pairs = self.config.get("clone_fds", [])
        clones = []
        for index in range(min(count, len(pairs))):
            pid = os.fork()
            if pid == 0:
                os.setpgid(0, 0)  # its own group: the runner kills a clone that hangs with killpg
                die_with_parent()  # with the zygote, which dies with the runner
                for fd in {fd for k, pair in enumerate(pairs) if k != index for fd in pair}:
                    os.close(fd)
                self.channel.reader.close()  # the zygote's channel is the zygote's alone
                os.close(self.channel.write_fd)
                self.channel = Channel(*pairs[index])
                self.clone = True
                return True
            clones.append(pid)
        for fd in {fd for pair in pairs for fd in pair}:
            os.close(fd)  # the clones hold theirs; unused channels close for the runner too
        while self.channel.receive() is not None:  # nothing is asked of a zygote: wait for the end
            pass
        for pid in clones:
            os.waitpid(pid, 0)
        return False

    def wait_for_setup(self, imports_from: str | None) -> dict | None:
        """The runner's next message; until it comes, import what the baseline's shards list in imports_from."""
        read: dict[Path, int] = {}  # file -> bytes of it already imported
        while not self.channel.waiting(0.2):
            for path in sorted(Path(imports_from).glob("*.txt")) if imports_from else ():
                data = path.read_bytes()
                complete = data[: data.rfind(b"\n") + 1]  # a shard may be writing the last line now
                preload(complete[read.get(path, 0) :].decode().split())
                read[path] = len(complete)
        return self.channel.receive()

    def prepare_inprocess(self):
        if self.config.get("device", "cpu") == "cpu":
            single_thread_torch()
            if self.config.get("memory_limit_mb"):
                limit_memory(self.config["memory_limit_mb"])

    # --- running the selected tests ---

    def run_tests(self, session, nodeids: list[str], keep_going: bool = False) -> dict:
        """Run the tests in order until one fails (or all, keep_going); tear every fixture down afterwards."""
        missing = [nodeid for nodeid in nodeids if nodeid not in self.items]
        items = [self.items[nodeid] for nodeid in nodeids if nodeid in self.items]
        result = {"outcome": SURVIVED, "killing_test": None, "reason": "", "tests_run": 0, "tests_s": 0.0}
        failures: dict[str, str] = {}
        if missing:
            result["reason"] = f"{len(missing)} selected tests not collected here, e.g. {missing[0]}"
        try:
            for index, item in enumerate(items):
                self.reports.clear()
                item.ihook.pytest_runtest_protocol(item=item, nextitem=(items + [None])[index + 1])
                result["tests_run"] += 1
                result["tests_s"] += sum(report.duration for report in self.reports)
                failed = next((report for report in self.reports if report.failed), None)
                if failed is not None:
                    failures[item.nodeid] = report_reason(failed)
                    if result["killing_test"] is None:
                        outcome = CRASHED if item.nodeid in self.oom else KILLED
                        result.update(outcome=outcome, killing_test=item.nodeid, reason=failures[item.nodeid])
                    if not keep_going:
                        break
        finally:
            # stopped early: the fixtures the next (unrun) item would have shared must go too
            session._setupstate.teardown_exact(None)
        if keep_going:
            result.update(failed=list(failures), reasons=failures)
        return result

    def run_inprocess(self, session, task: dict) -> dict:
        restores = []
        try:
            if task.get("swap", True):
                for mutant in task.get("swaps", [task["mutant"]]):
                    restores.append(swap_in(mutant, self.config["target_root"]))
            return self.run_tests(session, task["tests"], keep_going=task.get("keep_going", False))
        except SwapError as error:
            return {"outcome": FALLBACK, "reason": str(error)}
        except MutantImportError as error:
            return {"outcome": ERROR, "reason": str(error)}
        finally:
            for restore in reversed(restores):
                restore()

    def fork_spare(self, session):
        """Fork the child for the next task ahead of time, so a mutant does not wait for a fork.

        The spare child prepares itself (process group, thread count, memory limit), then blocks until
        the worker hands it a task over its own pipe. The worker's state does not change between
        tasks, so a spare forked early is the same as one forked on demand.
        """
        # Without this, the child's first garbage collection walks (so writes to, so copies) every
        # object the worker holds: hundreds of milliseconds with torch loaded.
        gc.freeze()
        self.exiting = [pid for pid in self.exiting if os.waitpid(pid, os.WNOHANG) == (0, 0)]
        task_read, task_write = os.pipe()
        result_read, result_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(task_write)
            os.close(result_read)
            self._child(session, task_read, result_write)
        os.close(task_read)
        os.close(result_write)
        self.spare = (pid, task_write, result_read)

    def run_forked(self, session, task: dict) -> dict:
        if self.spare is None:
            self.fork_spare(session)
        pid, task_write, read_fd = self.spare
        self.spare = None
        try:
            data = (json.dumps(task) + "\n").encode()
            while data:
                data = data[os.write(task_write, data) :]
        except OSError:  # the spare died before its task (e.g. killed from outside): it reports below
            pass
        finally:
            os.close(task_write)
        try:
            line = _read_line(read_fd, time.monotonic() + task["timeout"])
        finally:
            os.close(read_fd)
        if line is None:  # the deadline passed: kill the child and whatever it started
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                    break
                except OSError:
                    continue
            os.waitpid(pid, 0)
            return {"outcome": TIMEOUT, "reason": f"no result after {task['timeout']:.1f} s"}
        if line:
            # The answer is in; the child's exit (unmapping a torch-sized address space) can finish
            # while the next mutant runs. Reap it later.
            self.exiting.append(pid)
            return json.loads(line)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            return {"outcome": CRASHED, "reason": f"killed by {signal.Signals(os.WTERMSIG(status)).name}"}
        return {"outcome": CRASHED, "reason": f"exited with status {os.waitstatus_to_exitcode(status)}"}

    def _child(self, session, task_fd: int, write_fd: int):
        try:
            os.setpgid(0, 0)  # its own group, so a timeout kills whatever the tests spawned too
            die_with_parent()
            single_thread_torch()
            if self.config.get("memory_limit_mb"):
                limit_memory(self.config["memory_limit_mb"])
            line = b""
            while not line.endswith(b"\n"):  # blocks until the worker hands over a task
                chunk = os.read(task_fd, 65536)
                if not chunk:  # the worker is done and closed the pipe: no task is coming
                    os._exit(0)
                line += chunk
            result = self.run_inprocess(session, json.loads(line))
        except BaseException as error:  # noqa: B036 -- the child must report, whatever happened
            outcome = CRASHED if out_of_memory(error) else ERROR
            result = {"outcome": outcome, "reason": one_line(f"{type(error).__name__}: {error}")}
        try:
            data = (json.dumps(result) + "\n").encode()
            while data:
                data = data[os.write(write_fd, data) :]
        finally:
            os._exit(0)


def _read_line(fd: int, deadline: float) -> bytes | None:
    """Read one line from fd; b"" if it closed first, None if the deadline passed first."""
    buffer = b""
    while not buffer.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return b""
        buffer += chunk
    return buffer


# --- the runner's end of the channel --------------------------------------------------------------


class WorkerDied(Exception):
    pass


class _RunnerEnd:
    """The runner's end of a worker's channel: JSON lines out, replies read with a deadline."""

    log_path: Path
    read_fd: int
    buffer = b""

    def _write(self, data: bytes):
        raise NotImplementedError

    def exit_reason(self) -> str:
        raise NotImplementedError

    def send(self, message: dict):
        try:
            self._write((json.dumps(message) + "\n").encode())
        except (BrokenPipeError, OSError):
            raise WorkerDied(self.exit_reason()) from None

    def receive(self, timeout: float | None) -> dict | None:
        """The next message, or None when `timeout` seconds pass first; WorkerDied if it exits."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            if not select.select([self.read_fd], [], [], remaining)[0]:
                return None
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                raise WorkerDied(self.exit_reason())
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)


class WorkerProcess(_RunnerEnd):
    """A worker as seen from the runner: start it, send tasks, read replies with a deadline, kill it.

    With `clones`, it is a zygote (see the module docstring): `self.clones` are the runner's ends of the
    channels of the workers it will fork.
    """

    def __init__(self, config: dict, env: dict, cwd: str, log_path: Path, clones: int = 0):
        self.log_path = log_path
        self.log = open(log_path, "ab")
        pipes = [(os.pipe(), os.pipe()) for _ in range(clones)]  # per clone: (tasks in, replies out)
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "mutator.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            cwd=cwd,
            start_new_session=True,  # Ctrl-C reaches the runner only; the runner stops the workers
            pass_fds=[fd for (task_read, _), (_, reply_write) in pipes for fd in (task_read, reply_write)],
        )
        self.read_fd = self.proc.stdout.fileno()
        self.clones = []
        for (task_read, task_write), (reply_read, reply_write) in pipes:
            os.close(task_read)
            os.close(reply_write)
            self.clones.append(ClonedWorker(task_write, reply_read, log_path))
        clone_fds = [[task_read, reply_write] for (task_read, _), (_, reply_write) in pipes]
        self.send({**config, "parent_pid": os.getpid(), **({"clone_fds": clone_fds} if clones else {})})

    def _write(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def exit_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"

    def stop(self, grace_s: float = 10.0):
        """End it cleanly (its pytest session finishes, so conftest clean-ups run); kill it if it hangs."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=grace_s)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.log):
            try:
                stream.close()
            except OSError:
                pass
        for clone in self.clones:
            if clone.pid is None:  # never forked: only its channel is left to close
                clone.kill()


class ClonedWorker(_RunnerEnd):
    """A worker forked by a zygote, as seen from the runner: its channel's two pipes, and its pid (from
    its "ready" message). It is not the runner's child: it ends when its channel closes, or by killpg."""

    def __init__(self, write_fd: int, read_fd: int, log_path: Path):
        self.write_fd, self.read_fd, self.log_path = write_fd, read_fd, log_path
        self.pid: int | None = None
        self.closing = threading.Lock()  # a lane and the runner's clean-up may both kill it

    def _write(self, data: bytes):
        while data:
            data = data[os.write(self.write_fd, data) :]

    def receive(self, timeout: float | None) -> dict | None:
        if self.read_fd < 0:
            raise WorkerDied(self.exit_reason())
        message = super().receive(timeout)
        if message is not None and "pid" in message:
            self.pid = message["pid"]
        return message

    def exit_reason(self) -> str:
        return "exited (a clone: its exit status is its zygote's to read)"

    def stop(self, grace_s: float = 10.0):
        """Close its channel and wait for it to go (its reply pipe then closes); kill it if it hangs."""
        self._close("write_fd")
        deadline = time.monotonic() + grace_s
        try:
            while (left := deadline - time.monotonic()) > 0 and select.select([self.read_fd], [], [], left)[0]:
                if not os.read(self.read_fd, 65536):
                    break
        except (OSError, ValueError):  # closed meanwhile by a kill from another thread
            pass
        self.kill()

    def kill(self):
        if self.pid is not None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
        self._close("write_fd")
        self._close("read_fd")

    def _close(self, name: str):
        """Close a descriptor once: closed twice, its number may by then belong to another open file."""
        with self.closing:
            fd = getattr(self, name)
            setattr(self, name, -1)
        if fd >= 0:
            os.close(fd)


# --- the worker process ---------------------------------------------------------------------------


def main():
    # Take the channel off fds 0 and 1 before anything can print: pytest, plugins and tests
    # write to fd 1, which from here on is /dev/null (stderr stays: it goes to the worker's log).
    channel = Channel(os.dup(0), os.dup(1))
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    config = channel.receive()
    die_with_parent()
    if config is None or os.getppid() != config["parent_pid"]:
        os._exit(1)  # the runner is already gone
    finder = None
    if config["mode"] == "oneshot":
        finder = MutantFinder(config["mutant"], config["target_root"])
        sys.meta_path.insert(0, finder)
    args = [*config["args"], "-q", f"--basetemp={config['basetemp']}"]  # one word: see mutator.baseline.measure
    plugin = WorkerPlugin(channel, config)
    import pytest

    code = pytest.main(args, plugins=[plugin])
    if not plugin.answered:  # pytest stopped before its test loop, e.g. the selected tests did not import
        why = (finder and finder.failure) or ([*plugin.collect_errors.values()] or [f"pytest exited with {code!r}"])[0]
        if config["mode"] == "oneshot":
            channel.send({"outcome": ERROR, "reason": one_line(why)})
        else:
            channel.send({"fatal": f"before running any test: {why}"})
    os._exit(0)  # skip interpreter teardown: nothing left to flush, and torch's is slow


if __name__ == "__main__":
    main()
