"""The CI loop on a torch-free copy of the toy: `--since REV`, plain progress lines without a terminal,
the closing line's wall time, the store's cache of generated mutants, and no `import torch` in the CLI."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from mutator import catalog, cli, runner
from mutator.cli import main
from mutator.errors import UserError
from mutator.mutants import Mutant

TOY = Path(__file__).resolve().parent / "fixtures" / "toy"
OPTIONS = dict(devices="cpu", workers=1, timeout_constant=1.0, memory_limit_mb=256)
CORE = "toypkg/core.py"
PLANTS = [  # (variant, qualname, old, new)
    ("killed", "add", "return a + b", "return a - b"),
    ("survived", "is_even", "n % 2 == 0", "n % 4 == 0"),
    ("method", "Counter.bump", "self.count += by", "self.count -= by"),
    ("total", "total", "result += value", "result -= value"),
]


def plant(target: Path) -> list[Mutant]:
    original = (target / CORE).read_text()
    mutants = []
    for variant, qualname, old, new in PLANTS:
        start = original[: original.index(old)].count("\n") + 1
        mutated = original.replace(old, new, 1)
        mutants.append(Mutant("toy", "planted", variant, CORE, qualname, start, start, original, mutated))
    return mutants


def git(cwd: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def toy(tmp_path) -> Path:
    """The toy without its torch tests (fast baselines), in a git repository of its own."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    target = tmp_path / "toy"
    shutil.copytree(TOY, target, ignore=shutil.ignore_patterns("__pycache__", "test_tensors.py"))
    git(target, "init", "-q")
    git(target, "add", ".")
    git(target, "commit", "-q", "-m", "toy")
    return target


def test_since_runs_only_mutants_on_changed_lines_and_those_whose_tests_changed(toy, tmp_path):
    options = dict(OPTIONS, store_dir=tmp_path / "store")
    core = toy / CORE
    core.write_text(core.read_text().replace("        result += value\n", "        result += value  # each\n"))
    report = runner.run(plant(toy), target=toy, tests=toy / "tests", since="HEAD", **options)
    assert report.timings["executed"] == 1  # total's mutant: on a changed line
    assert report.timings["not_run"] == 3
    assert [r.mutant_id for r in report.results] == [plant(toy)[3].id]

    with open(toy / "tests" / "test_counter.py", "a") as tests:  # a changed test module: its mutants too
        tests.write("\n\ndef test_counter_bumps_twice():\n    assert core.Counter().bump(2) == 2\n")
    report = runner.run(plant(toy), target=toy, tests=toy / "tests", since="HEAD", **options)
    assert report.timings["executed"] == 1  # Counter.bump's; total's result is reused
    assert report.timings["not_run"] == 2
    assert {r.mutant_id for r in report.results} == {plant(toy)[2].id, plant(toy)[3].id}


def test_since_an_unknown_revision_or_a_target_outside_git_is_one_line(toy, tmp_path):
    with pytest.raises(UserError, match="unknown git revision 'nope'"):
        runner.run(plant(toy), target=toy, tests=toy / "tests", since="nope", store_dir=tmp_path / "s", **OPTIONS)
    loose = tmp_path / "loose"
    shutil.copytree(toy, loose, ignore=shutil.ignore_patterns(".git"))
    args = ["run", "--level", "3", "--target", str(loose), "--since", "HEAD", "--store", str(tmp_path / "s2")]
    result = CliRunner().invoke(main, [*args, "--device", "cpu"], env={"GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert result.exit_code == 2, result.output
    assert "not in a git repository" in result.output
    assert "Traceback" not in result.output


def _generation_counter(monkeypatch, target: Path) -> list[str]:
    """Replace LibCST generation by the planted mutants of the file asked for, and count the asks."""
    asked = []

    def generate(level, target_dir, scope):
        files = [f for f in catalog.python_files(Path(target_dir)) if scope.accepts(f)]
        asked.extend(files)
        return [m for m in plant(target) if m.file in files]

    monkeypatch.setattr(catalog, "generate_mutants", generate)
    return asked


def test_cli_without_a_terminal_prints_progress_lines_the_whole_wall_time_and_caches_mutants(
    toy, tmp_path, monkeypatch
):
    asked = _generation_counter(monkeypatch, toy)
    monkeypatch.setattr(cli, "PROGRESS_EVERY_N", 2)
    args = ["run", "--level", "3", "--target", str(toy), "--tests", str(toy / "tests"), "--device", "cpu"]
    args += ["--store", str(tmp_path / "store"), "--timeout-constant", "1", "--memory-limit", "256", "--workers", "1"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "mutator: 0 done, baseline on cpu: running the suite" in first.stderr  # mutants still being made
    assert "mutator: 2/4 done" in first.stderr and "mutator: 4/4 done" in first.stderr
    closing = first.stdout.strip().splitlines()[-1]
    assert closing.startswith("4 mutants run, 0 reused or needing no run; in ")
    whole, mutants = (float(closing.split(word)[1].split()[0]) for word in ("; in ", "of which mutants "))
    assert whole >= mutants > 0
    assert CORE in asked

    asked.clear()  # nothing changed: every file's mutants come from the store
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert asked == []
    assert "0 mutants run, 4 reused" in again.stdout

    (toy / "toypkg" / "tensors.py").write_text("# another file changed\n")
    asked.clear()
    CliRunner().invoke(main, args)
    assert asked == ["toypkg/tensors.py"]  # only the file that changed


def test_the_cli_process_does_not_import_torch_on_a_cpu_run(toy, tmp_path):
    if runner._nvidia_device_present():
        pytest.skip("this machine may have CUDA: asking about it imports torch")
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from mutator import catalog
        from mutator.cli import main
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_ci_loop import plant
        toy = Path({str(toy)!r})
        catalog.generate_mutants = lambda level, target, scope: [m for m in plant(toy) if scope.accepts(m.file)]
        try:
            main(["run", "--level", "3", "--target", str(toy), "--store", {str(tmp_path / "s")!r}, "--workers", "1"])
        except SystemExit as end:
            assert not end.code, end.code
        print("torch imported:", "torch" in sys.modules)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "torch imported: False" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_a_fingerprint_follows_the_functions_the_tests_execute_not_comments_nor_test_order(tmp_path):
    from mutator.selection import Fingerprints

    source = "X = 1\n\n\ndef f():\n    return X\n\n\ndef g():\n    return 2\n"
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(source)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_m.py").write_text("def test_f(): ...\ndef test_g(): ...\n")
    test = {"file": str(tmp_path / "tests" / "test_m.py"), "duration": 0.1, "fixtures": []}
    base = {"tests": {"t::f": test, "t::g": test}}
    coverage = {"": {"pkg/m.py": {1, 4, 8}}, "t::f": {"pkg/m.py": {5}}, "t::g": {"pkg/m.py": {9}}}
    mutant = Mutant("c", "o", "v", "pkg/m.py", "f", 5, 5, source, source.replace("return X", "return -X"))

    def fingerprint(tests):
        return Fingerprints(tmp_path, [tmp_path / "tests"], [], base, coverage)(mutant, "cpu", tests)

    both, only_f = fingerprint(["t::f", "t::g"]), fingerprint(["t::f"])
    assert fingerprint(["t::g", "t::f"]) == both  # durations reorder tests between baselines
    (tmp_path / "pkg" / "m.py").write_text("# moved\n" + source.replace("return 2", "return 2  # two"))
    assert (fingerprint(["t::f", "t::g"]), fingerprint(["t::f"])) == (both, only_f)
    (tmp_path / "pkg" / "m.py").write_text(source.replace("return 2", "return 3"))  # g, which test_g runs
    assert fingerprint(["t::f"]) == only_f
    assert fingerprint(["t::f", "t::g"]) != both
    (tmp_path / "pkg" / "m.py").write_text(source.replace("X = 1", "X = 2"))  # module-level code
    assert fingerprint(["t::f"]) != only_f


def test_mutants_are_made_while_the_baseline_runs(toy, tmp_path):
    import time

    store, seen = tmp_path / "store", []

    def make():  # waits for the baseline's first log: it must have started without the mutants
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(store.glob("logs/run-*/baseline-cpu.log")):
            time.sleep(0.02)
        seen.append(bool(list(store.glob("logs/run-*/baseline-cpu.log"))))
        return plant(toy)

    report = runner.run(make, packages=["toypkg"], target=toy, tests=toy / "tests", store_dir=store, **OPTIONS)
    assert seen == [True]
    assert report.timings["executed"] == 4
    assert len(report.results) == 4
