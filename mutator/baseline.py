"""The baseline: one run of the suite on the clean target per device, with per-test line coverage.

It runs in a subprocess, `python -P -m pytest <tests> <user args> -p mutator.baseline`, with the
target root first on PYTHONPATH so that `import nanochat` resolves to the target (`-P` keeps the
current directory off sys.path, where another copy could shadow it; the run checks where each
target package really came from). Every pytest process of a run (baseline, workers, fresh runs) gets
the same command line from `suite_args`, and so the same `--device` rule (`pass_device`): the option
goes only to a suite that defines it. The plugin half of this module starts coverage.py before any
conftest is imported and switches its dynamic context around each test:

- context ""                 lines executed at import and collection: they belong to no test;
- context <node id>          lines a test executed in its own setup, call and teardown;
- context fixture:<key>      lines a session-, package-, module- or class-scoped fixture executed
                             while being set up. Such a fixture runs once, inside whichever test
                             asks first, but every test that uses it depends on those lines, so a
                             test's coverage is its own context plus those of the wider-scoped
                             fixtures it requests.

Split over N shards, the suite is imported and collected once: the process forks a child per shard
after collection, and each child, under coverage of its own, takes whole test modules from a queue
the shards share until none is left (the lines executed at import and collection come from the parent).
A shard does not pay for Python, torch and the suite's imports again, which on two cores is a third of
the baseline's work. A shard
ends its session (its fixtures, `pytest_sessionfinish`) but not the configuration it inherited: what
the suite's `pytest_configure` made, its `pytest_unconfigure` removes once, in the parent, after
every shard is done.

Only files of the target's mutated packages are measured. Durations come from the test reports.
The modules of the standard library and of installed packages that the tests import as they run (after
collection) are listed too: workers import them once before forking (mutator.worker.preload).
A test module that fails to import is left out (with `--continue-on-collection-errors`, the others
run) and reported once, with its exception's line and the packages it misses.
"""

import hashlib
import importlib.util
import json
import multiprocessing
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from mutator.errors import UserError
from mutator.worker import die_with_parent, failure_line, hookimpl, one_line

IMPORT_TIME = ""  # the coverage context (and pseudo-test) of import and collection
INI_FILES = ("pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg", "conftest.py")


# --- launching ------------------------------------------------------------------------------------


def subprocess_env(target_root: Path) -> dict[str, str]:
    """Environment of every pytest process a run starts: target first on the path, no writes into it."""
    env = dict(os.environ)
    mutator_home = str(Path(__file__).resolve().parent.parent)  # so `-m mutator.*` works uninstalled
    path = [str(target_root), mutator_home, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ inside the target (nor assertion-rewrite pycs)
    return env


def suite_args(tests: list[Path], pytest_args: list[str], device: str) -> list[str]:
    """The pytest arguments every process of a run shares: the suite, the user's own arguments, and the
    device (passed on by `pass_device`, in the process itself, once the suite's conftests are loaded)."""
    plugins = ["-p", "mutator.baseline", f"--mutator-device={device}", "-p", "no:cacheprovider"]
    return [*map(str, tests), *pytest_args, *plugins]


def measure(
    target_root: Path,
    tests: list[Path],
    device: str,
    packages: list[str],
    pytest_args: list[str] = (),
    shards: int = 1,
    weights: dict[str, float] | None = None,
    workdir: Path | None = None,
    log_dir: Path | None = None,
    imports_dir: Path | None = None,
) -> dict:
    """Run the suite once, split by test module over `shards` parallel processes; return the baseline.

    imports_dir: each shard appends there (`<shard>.txt`, a line each, as each test ends) the modules its
    tests imported, for workers started meanwhile to import as they wait (mutator.worker.preload).

    weights: seconds per test module from an earlier baseline, to balance the shards (else test counts).
    log_dir: where the output goes (`baseline-<device>.log`, the shards' included); errors name that file.
    See `_Recorder.finish` for the keys of the result.
    """
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="baseline-", dir=workdir) as tmp:
        logs = Path(log_dir or tmp)
        logs.mkdir(parents=True, exist_ok=True)
        Path(tmp, "weights.json").write_text(json.dumps(weights or {}))
        env = subprocess_env(target_root)
        env["TMPDIR"] = tmp  # the suite's own temp dirs go with this one
        if shards > 1:  # one thread per shard: the shards already fill the cores, as the workers will
            env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        # Own options as --name=value: pytest takes a separate value that names an existing path for a path
        # to test, and infers its rootdir from those; a worker, started before this baseline ends, must
        # infer the same one from the suite's arguments alone.
        cmd = [sys.executable, "-P", "-m", "pytest", *suite_args(tests, list(pytest_args), device), "-q"]
        cmd += [f"--mutator-baseline-out={tmp}", f"--mutator-shards={shards}"]
        cmd += [f"--mutator-weights={tmp}/weights.json", f"--basetemp={tmp}/t"]
        cmd += ["--continue-on-collection-errors"]  # a module that fails to import is reported, not fatal
        cmd += [f"--mutator-measure={target_root / pkg}" for pkg in packages]
        if imports_dir is not None:
            Path(imports_dir).mkdir(parents=True, exist_ok=True)
            cmd += [f"--mutator-imports-out={imports_dir}"]
        log_path = logs / f"baseline-{device}.log"
        with open(log_path, "wb") as log:
            code = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        codes_file = Path(tmp, "exit-codes.json")  # the shards' exit codes, as the forking process saw them
        codes = json.loads(codes_file.read_text()) if codes_file.exists() else [code] * shards
        parts = {shard: json.loads(Path(tmp, f"{shard}.json").read_text()) for shard in range(shards)
                 if Path(tmp, f"{shard}.json").exists()}  # fmt: skip
    failing = [test for part in parts.values() for test in part["failed"]]
    if failing:
        shown = "; ".join(failing[:8]) + (f"; and {len(failing) - 8} more" if len(failing) > 8 else "")
        raise UserError(f"the suite fails on the clean target ({device}): {shown} (log: {log_path})")
    for shard, code in enumerate(codes):
        # exit 1 with no failing test: only the collection errors that the merged baseline reports
        if shard not in parts or code not in (0, 1, 5):  # pytest's exit codes: ok, tests failed, none collected
            lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
            tail = " | ".join(line.strip() for line in lines[-3:])
            why = f"pytest exit {code}: {tail} (log: {log_path})"
            raise UserError(f"the suite could not run on the clean target ({device}): {why}")
    data = _merge(list(parts.values()))
    if not data["tests"]:
        broken = "".join(f"; {module}: {line}" for module, line in data["collect_errors"].items())
        raise UserError(f"no tests collected from {' '.join(map(str, tests))}{broken}")
    for pkg, file in data["modules"].items():
        if not Path(file).resolve().is_relative_to(target_root):
            raise UserError(f"the suite imported {pkg} from {file}, not from the target {target_root}")
    data.update(device=device)
    return data


def pass_device(parser, args: list[str], device: str):
    """`--device` is the option of a device-parametrized suite (tests/nanochat's conftest): pass it only
    to a suite that defines it (one that does not would stop with a usage error), unless the user's own
    arguments already hold one. Such a suite runs as it is on the CPU, and cannot be run on another device."""
    if any(arg == "--device" or arg.startswith("--device=") for arg in args):
        return
    _, unknown = parser.parse_known_and_unknown_args(["--device", device])
    if not unknown:
        args += ["--device", device]
    elif device != "cpu":
        import pytest  # in a pytest process: already imported

        raise pytest.UsageError(f"the suite has no --device option, so it cannot run on {device} (use --device cpu)")


def _merge(parts: list[dict]) -> dict:
    """One baseline from the shards' (their tests are disjoint; import-time lines are united)."""
    data = {"rootdir": parts[0]["rootdir"], "tests": {}, "fixtures": {}, "coverage": {}, "modules": {}}
    data["collect_errors"] = {}  # every shard collects every module: one entry per module, not per shard
    for part in parts:
        data["tests"].update(part["tests"])
        data["collect_errors"].update(part["collect_errors"])
        data["missing_packages"] = sorted(set(data.get("missing_packages", [])) | set(part["missing_packages"]))
        data["modules"].update(part["modules"])
        data["imported"] = list(dict.fromkeys([*data.get("imported", []), *part["imported"]]))  # import order
        for key, seconds in part["fixtures"].items():
            data["fixtures"][key] = max(seconds, data["fixtures"].get(key, 0.0))
        for test, files in part["coverage"].items():
            merged = data["coverage"].setdefault(test, {})
            for file, lines in files.items():
                merged[file] = sorted(set(merged.get(file, [])) | set(lines))
    # what a fresh process pays before its first test: interpreter, imports, collection
    data["startup_s"] = max(part["startup_s"] for part in parts)
    return data


def module_weights(data: dict) -> dict[str, float]:
    """Seconds per test module in a baseline: the shards' balance for the next one."""
    weights: dict[str, float] = {}
    for test in data["tests"].values():
        weights[test["file"]] = weights.get(test["file"], 0.0) + test["duration"]
    return weights


# --- fingerprints ---------------------------------------------------------------------------------


def digest_sources(paths, root: Path) -> str:
    """A hash of these files' names (relative to root) and normalised contents; missing files hash as
    absent. A .py file counts by its AST, so a comment or a reformat leaves the digest (and the baseline
    measured on it) standing. Its coverage moves with the lines
    (mutator.selection.remap_coverage)."""
    from mutator.selection import normalised_digest

    digest = hashlib.sha256()
    for path in sorted(set(map(Path, paths))):
        digest.update(os.path.relpath(path, root).encode() + b"\0")
        digest.update(normalised_digest(path).encode() if path.is_file() else b"<absent>")
        digest.update(b"\0")
    return digest.hexdigest()


def target_files(target_root: Path, packages: list[str]) -> list[Path]:
    files = []
    for pkg in packages:
        path = target_root / pkg
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return [f for f in files if "__pycache__" not in f.parts]


def suite_files(tests: list[Path]) -> list[Path]:
    """The suite's own files, plus conftest and ini files of their parent directories up to the rootdir."""
    files = []
    for path in tests:
        files += [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
        for parent in list(path.parents)[:10]:
            found = [parent / name for name in INI_FILES if (parent / name).is_file()]
            files += found
            if any(f.name != "conftest.py" for f in found):  # pytest's rootdir: the first ini file upwards
                break
    return sorted({f for f in files if "__pycache__" not in f.parts and not f.name.endswith(".pyc")})


def suite_root(tests: list[Path]) -> Path:
    """The directory the suite's file names are taken relative to in digests."""
    return Path(os.path.commonpath([path.parent for path in tests]))


def fingerprint(target_root: Path, tests: list[Path], device: str, packages: list[str], pytest_args=()) -> str:
    """What the baseline depends on: the target packages, the suite and the user's pytest arguments (a
    `-k` or `--deselect` changes which tests run), the device and the interpreter."""
    parts = [
        device,
        ",".join(packages),
        *map(str, tests),
        "\0".join(pytest_args),
        sys.version,
        digest_sources(target_files(target_root, packages), target_root),
        digest_sources(suite_files(tests), suite_root(tests)),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# --- the pytest plugin (loaded in the baseline subprocess with `-p mutator.baseline`) -------------


def pytest_addoption(parser):
    group = parser.getgroup("mutator baseline")
    group.addoption("--mutator-device", default="cpu", help="the device of the run: see pass_device")
    group.addoption("--mutator-baseline-out", default=None, help="DIR: write shard K's baseline JSON to DIR/K.json")
    group.addoption("--mutator-measure", action="append", default=[], help="a target file or package dir")
    group.addoption("--mutator-shards", default=1, type=int, help="after collection, fork N shards of the test modules")
    group.addoption("--mutator-weights", default=None, help="JSON file: seconds per test module")
    group.addoption("--mutator-imports-out", default=None, help="DIR: shard K lists its tests' imports in K.txt")


@hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """Start coverage before the first conftest (which may import the target) is imported; once the
    conftests are in, the parser knows the suite's own options, so `--device` can be passed or not."""
    options = early_config.known_args_namespace
    if options.mutator_baseline_out:
        die_with_parent()  # a run killed with -9 takes its baseline shards along
        recorder = _Recorder(Path(options.mutator_baseline_out), [Path(p) for p in options.mutator_measure])
        recorder.shards = options.mutator_shards
        if options.mutator_weights:
            recorder.weights = json.loads(Path(options.mutator_weights).read_text())
        if options.mutator_imports_out:
            recorder.imports_out = Path(options.mutator_imports_out)
        early_config.pluginmanager.register(recorder, "mutator-baseline-recorder")
        recorder.start()
    result = yield
    pass_device(parser, args, options.mutator_device)
    return result


def fixture_key(fixturedef) -> str:
    return f"{fixturedef.baseid}::{fixturedef.argname}"


class _Recorder:
    def __init__(self, out: Path, measured: list[Path]):
        self.out = out  # a directory: shard K writes K.json there
        self.measured = [p.resolve() for p in measured]
        self.cov = self._coverage()
        self.import_lines: dict[str, set[int]] = {}  # in a forked shard: the forking process's import-time lines
        self.current = IMPORT_TIME  # the test whose protocol is running
        self.fixture_stack: list[str] = []
        self.tests: dict[str, dict] = {}  # node id -> {file, duration, fixtures, outcome}
        self.fixture_s: dict[str, float] = {}
        self.collect_errors: dict[str, str] = {}  # module node id -> its exception's line
        self.collect_causes: dict[str, BaseException] = {}
        self.missing: set[str] = set()  # packages that unimportable modules need and are not installed
        self.shard, self.shards, self.weights = 0, 1, {}
        self.forked = False  # this process forked the shards, and so runs no test itself
        self.in_shard = False  # this process is a forked shard
        self.exitstatus = 0  # a forked shard's, to exit with before the suite's pytest_unconfigure
        self.seen_modules: set[str] = set()  # of sys.modules, those already looked at
        self.imported: list[str] = []  # installed modules the tests imported, in import order
        self.imports_out: Path | None = None  # a directory: shard K appends to K.txt
        self.libraries = [Path(sysconfig.get_path(key)).resolve() for key in ("stdlib", "platlib", "purelib")]
        self.started = time.perf_counter()
        self.first_test: float | None = None

    def _coverage(self):
        import coverage  # only the baseline process needs it

        include = [f"{p}{os.sep}*" if p.is_dir() else str(p) for p in self.measured]
        return coverage.Coverage(data_file=None, include=include, config_file=False, branch=False)

    def start(self):
        self.cov.start()

    def modules_by_weight(self, items) -> list[list]:
        """The items grouped by test module, heaviest module first (by its seconds in an earlier baseline,
        else by its number of tests), each group in collection order."""
        modules: dict[str, list] = {}
        for item in items:
            modules.setdefault(str(item.path), []).append(item)
        order = sorted(modules, key=lambda path: (-self.weights.get(path, len(modules[path])), path))
        return [modules[path] for path in order]

    @hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        """With shards, fork a child per shard once the suite is collected; each child, under a coverage
        of its own, takes whole test modules from a queue they share, heaviest first, until none is
        left, while this process waits for them. Taken as they go, the modules balance the shards by
        their real cost, which a fresh store cannot know beforehand."""
        if self.shards <= 1 or session.config.option.collectonly or not session.items:
            return None  # pytest's own loop, here
        modules = self.modules_by_weight(session.items)
        taken = multiprocessing.get_context("fork").Value("i", 0)  # the next module's index, shared
        # pytest empties a given --basetemp on its first use in a process: use it here, once, so that the
        # shards inherit it made and each cannot empty it under the other
        session.config._tmp_path_factory.getbasetemp()
        self.cov.stop()
        self.import_lines = self.lines_by_context().get(IMPORT_TIME, {})
        sys.stdout.flush()
        sys.stderr.flush()
        children = []
        for shard in range(self.shards):
            pid = os.fork()
            if pid == 0:
                die_with_parent()
                self.shard, self.in_shard = shard, True
                self.cov = self._coverage()
                self.cov.start()
                return self.run_taken_modules(session, modules, taken)
            children.append(pid)
        self.forked = True
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
        (self.out / "exit-codes.json").write_text(json.dumps(codes))
        return True

    @staticmethod
    def run_taken_modules(session, modules: list[list], taken) -> bool:
        """pytest's own test loop, over the modules this shard takes from the queue. The next item is
        known before an item runs (the next module is taken as its predecessor's last test starts), so
        pytest tears down only the fixtures the next item does not share."""

        def items():
            while True:
                with taken.get_lock():
                    index, taken.value = taken.value, taken.value + 1
                if index >= len(modules):
                    return
                yield from modules[index]

        queue = items()
        item = next(queue, None)
        ran = []
        while item is not None:
            nextitem = next(queue, None)
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            ran.append(item)
            if session.shouldfail:
                raise session.Failed(session.shouldfail)
            if session.shouldstop:
                raise session.Interrupted(session.shouldstop)
            item = nextitem
        session.items[:] = ran  # what this shard ran, for the hooks that read it at the session's end
        return True

    def pytest_collection_finish(self, session):
        self.seen_modules = set(sys.modules)  # what collection imported, every worker imports too

    def pytest_runtest_logfinish(self, nodeid, location):
        new = self.new_imports()
        if new and self.imports_out is not None:
            with open(self.imports_out / f"{self.shard}.txt", "a") as out:
                out.write("".join(f"{name}\n" for name in new))

    @hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        if self.first_test is None:
            self.first_test = time.perf_counter()
        fixtures = []
        for name in item.fixturenames:
            for fixturedef in item._fixtureinfo.name2fixturedefs.get(name, ()):
                if fixturedef.scope != "function":
                    fixtures.append(fixture_key(fixturedef))
        self.tests[item.nodeid] = {
            "file": str(item.path),
            "duration": 0.0,
            "fixtures": sorted(set(fixtures)),
            "outcome": "passed",
        }
        self.current = item.nodeid
        self.cov.switch_context(item.nodeid)
        try:
            return (yield)
        finally:
            self.current = IMPORT_TIME
            self.cov.switch_context(IMPORT_TIME)

    @hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        if fixturedef.scope == "function":
            return (yield)
        key = fixture_key(fixturedef)
        self.fixture_stack.append(key)
        self.cov.switch_context(f"fixture:{key}")
        start = time.perf_counter()
        try:
            return (yield)
        finally:
            elapsed = time.perf_counter() - start
            self.fixture_s[key] = self.fixture_s.get(key, 0.0) + elapsed
            self.fixture_stack.pop()
            self.cov.switch_context(f"fixture:{self.fixture_stack[-1]}" if self.fixture_stack else self.current)
            if self.current in self.tests and not self.fixture_stack:
                # the test's own time excludes the shared fixture, which is accounted for separately
                self.tests[self.current]["duration"] -= elapsed

    def pytest_runtest_logreport(self, report):
        test = self.tests.get(report.nodeid)
        if test is None:
            return
        test["duration"] += report.duration
        if report.failed:
            test["outcome"] = "failed"
        elif report.skipped and test["outcome"] == "passed":
            test["outcome"] = "skipped"

    def pytest_configure(self, config):
        self.rootpath = config.rootpath

    def pytest_exception_interact(self, node, call, report):
        """A collection error's exception (called just before its report): the cause pytest wrapped."""
        import pytest  # in a pytest process: already imported

        if isinstance(report, pytest.CollectReport) and call.excinfo is not None:
            error = call.excinfo.value
            wrapped = isinstance(error, pytest.Collector.CollectError) and error.__cause__ is not None
            self.collect_causes[report.nodeid] = error.__cause__ if wrapped else error

    def pytest_collectreport(self, report):
        if not report.failed:
            return
        cause = self.collect_causes.pop(report.nodeid, None)
        line = one_line(f"{type(cause).__name__}: {cause}") if cause is not None else failure_line(report)
        self.collect_errors[report.nodeid or "<collection>"] = line
        if isinstance(cause, ModuleNotFoundError) and cause.name:
            top = cause.name.split(".")[0]
            # not installed anywhere, and not a module of the suite itself that its import path misses
            near = [Path(report.fspath).parent, self.rootpath]
            if importlib.util.find_spec(top) is None and not any((d / top).exists() for d in near):
                if not any((d / f"{top}.py").exists() for d in near):
                    self.missing.add(top)

    def new_imports(self) -> list[str]:
        """Modules of the standard library and installed packages imported since the last call, in import
        order (none of the measured target's); they are added to `imported`."""
        targets = {path.stem if path.suffix == ".py" else path.name for path in self.measured}
        names = []
        for name, module in list(sys.modules.items()):
            if name in self.seen_modules:
                continue
            self.seen_modules.add(name)
            if name.split(".")[0] in targets or name == "__main__":
                continue
            origin = getattr(getattr(module, "__spec__", None), "origin", None) or ""
            path = Path(origin).resolve() if Path(origin).is_absolute() else None
            if origin in ("built-in", "frozen") or (path and any(path.is_relative_to(d) for d in self.libraries)):
                names.append(name)
        self.imported += names
        return names

    @hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if self.forked:
            return  # its shards wrote theirs
        self.cov.stop()
        (self.out / f"{self.shard}.json").write_text(json.dumps(self.finish(session)))
        self.exitstatus = int(exitstatus)

    @hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config):
        if self.in_shard:  # the configuration is its parent's to end
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(self.exitstatus)

    def lines_by_context(self) -> dict[str, dict[str, set[int]]]:
        """Coverage so far: context -> file relative to the target root -> lines."""
        roots = [path.parent for path in self.measured]  # each measured package sits in the target root
        data = self.cov.get_data()
        by_context: dict[str, dict[str, set[int]]] = {}
        for filename in data.measured_files():
            relative = next((os.path.relpath(filename, r) for r in roots if Path(filename).is_relative_to(r)), filename)
            for line, contexts in data.contexts_by_lineno(filename).items():
                for context in contexts:
                    by_context.setdefault(context, {}).setdefault(relative, set()).add(line)
        return by_context

    def finish(self, session) -> dict:
        """The baseline as JSON: tests (duration, fixtures, outcome, file), fixtures' set-up times,
        coverage (test -> file relative to the target root -> lines), where target packages came from."""
        by_context = self.lines_by_context()
        for file, lines in self.import_lines.items():  # measured before this shard was forked
            by_context.setdefault(IMPORT_TIME, {}).setdefault(file, set()).update(lines)
        coverage = {IMPORT_TIME: by_context.get(IMPORT_TIME, {})}
        for nodeid, test in self.tests.items():
            if test["outcome"] != "passed":
                continue
            lines: dict[str, set[int]] = {}
            for context in [nodeid, *(f"fixture:{key}" for key in test["fixtures"])]:
                for file, file_lines in by_context.get(context, {}).items():
                    lines.setdefault(file, set()).update(file_lines)
            coverage[nodeid] = lines
        modules = {}
        for path in self.measured:
            module = sys.modules.get(path.stem if path.suffix == ".py" else path.name)
            if module is not None and getattr(module, "__file__", None):
                modules[module.__name__] = module.__file__
        failed = [nodeid for nodeid, test in self.tests.items() if test["outcome"] == "failed"]
        return {
            "rootdir": str(session.config.rootpath),
            "tests": {k: v for k, v in self.tests.items() if v["outcome"] == "passed"},
            "fixtures": self.fixture_s,
            "coverage": {test: {f: sorted(lines) for f, lines in files.items()} for test, files in coverage.items()},
            "modules": modules,
            "imported": self.imported,
            "failed": failed,
            "collect_errors": self.collect_errors,
            "missing_packages": sorted(self.missing),
            "startup_s": (self.first_test or time.perf_counter()) - self.started,
        }
