"""The worker's pieces that need no pytest session: hot swap and restore, the in-memory fallback import,
and how a failure becomes a one-line reason or a crash."""

import importlib
import sys
import textwrap
from types import SimpleNamespace

import pytest

from mutator.mutants import Mutant
from mutator.worker import (
    MutantFinder,
    MutantImportError,
    SwapError,
    out_of_memory,
    preload,
    report_reason,
    swap_in,
)

SOURCE = textwrap.dedent(
    """\
    import functools


    def traced(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper


    @traced
    def double(x):
        return 2 * x


    def scale(x, factor=2, *, offset=0):
        return x * factor + offset


    def outer(x):
        def inner(y):
            return y + 1

        return inner(x)


    def counter():
        count = 0

        def bump():
            nonlocal count
            count += 1
            return count

        return bump


    class Base:
        def value(self):
            return 1


    class Child(Base):
        def value(self):
            return super().value() + 1

        @staticmethod
        def static():
            return "static"
    """
)


@pytest.fixture
def live(tmp_path, monkeypatch):
    """A freshly imported module `swapme` in a throwaway target root."""
    (tmp_path / "swapme.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("swapme", None)
    module = importlib.import_module("swapme")
    yield module
    sys.modules.pop("swapme", None)


def mutant(qualname: str, old: str, new: str) -> dict:
    assert SOURCE.count(old) == 1
    line = SOURCE[: SOURCE.index(old)].count("\n") + 1
    return Mutant("t", "op", "v", "swapme.py", qualname, line, line, SOURCE, SOURCE.replace(old, new)).to_dict()


def test_swap_reaches_through_a_functools_wraps_decorator_and_restores(live, tmp_path):
    held = live.double  # a reference taken before the swap (as a test module's import would)
    restore = swap_in(mutant("double", "2 * x", "3 * x"), str(tmp_path))
    assert held(5) == 15
    restore()
    assert held(5) == 10


def test_swap_carries_mutated_defaults_and_keyword_defaults(live, tmp_path):
    restore = swap_in(mutant("scale", "factor=2, *, offset=0", "factor=3, *, offset=1"), str(tmp_path))
    assert live.scale(2) == 7
    restore()
    assert live.scale(2) == 4


def test_nested_function_is_swapped_through_its_outermost_function(live, tmp_path):
    restore = swap_in(mutant("outer.<locals>.inner", "y + 1", "y + 2"), str(tmp_path))
    assert live.outer(1) == 3
    restore()
    assert live.outer(1) == 2


def test_methods_keep_their_class_cell_and_static_methods_swap(live, tmp_path):
    restore = swap_in(mutant("Child.value", "super().value() + 1", "super().value() + 5"), str(tmp_path))
    assert live.Child().value() == 6  # super() still finds the live class
    restore()
    restore = swap_in(mutant("Child.static", 'return "static"', 'return "moved"'), str(tmp_path))
    assert live.Child.static() == "moved"
    restore()


def test_a_changed_inner_closure_swaps_with_its_outer_function(live, tmp_path):
    restore = swap_in(mutant("counter.<locals>.bump", "count += 1", "count += 2"), str(tmp_path))
    assert live.counter()() == 2
    restore()


def test_a_change_in_the_functions_own_free_variables_cannot_be_swapped(live, tmp_path):
    # the method loses its __class__ cell (no more super()): the live closure no longer fits the code
    with pytest.raises(SwapError, match="free variables"):
        swap_in(mutant("Child.value", "super().value() + 1", "1 + 1"), str(tmp_path))


def test_broken_mutants_are_import_errors(live, tmp_path):
    with pytest.raises(MutantImportError, match="does not compile"):
        swap_in(mutant("double", "2 * x", "2 *"), str(tmp_path))
    with pytest.raises(MutantImportError, match="ZeroDivisionError"):
        swap_in(mutant("", "import functools", "import functools\n1 / 0"), str(tmp_path))


def test_a_module_imported_from_elsewhere_is_not_swapped(live, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(SwapError, match="imported from"):
        swap_in(mutant("double", "2 * x", "3 * x"), str(other))


def test_the_fallback_imports_the_mutated_module_from_memory(tmp_path, monkeypatch):
    (tmp_path / "swapme.py").write_text(SOURCE)
    finder = MutantFinder(mutant("", "return 2 * x", "return 4 * x"), str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("swapme", None)
    try:
        module = importlib.import_module("swapme")
        assert module.double(1) == 4
        assert module.__file__ == str(tmp_path / "swapme.py")
    finally:
        sys.modules.pop("swapme", None)
    assert (tmp_path / "swapme.py").read_text() == SOURCE


def test_memory_failures_are_told_apart_from_other_errors():
    assert out_of_memory(MemoryError())
    assert out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"))
    assert not out_of_memory(RuntimeError("shape mismatch"))
    assert not out_of_memory(AssertionError("out of memory"))


def test_reason_is_the_crash_line_and_names_the_phase():
    crash = SimpleNamespace(message="AssertionError: assert 3 == 2\n +  where 3 = f()")
    call = SimpleNamespace(longrepr=SimpleNamespace(reprcrash=crash), when="call", outcome="failed")
    assert report_reason(call) == "AssertionError: assert 3 == 2"
    setup = SimpleNamespace(longrepr="Traceback...\nE   KeyError: 'x'\n", when="setup", outcome="failed")
    assert report_reason(setup) == "setup: KeyError: 'x'"


def test_preload_imports_what_it_can_and_leaves_what_the_tests_made_at_run_time(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    preload(["colorsys", "made_by_a_test_at_run_time"])  # the second one cannot be found: no error
    assert "colorsys" in sys.modules
    assert "made_by_a_test_at_run_time" not in sys.modules


def test_a_cloned_worker_closes_its_channel_once_whoever_stops_and_kills_it(tmp_path):
    # stop() then kill() (a lane, then the run's clean-up): the second must not close the numbers again,
    # which by then may belong to another open file (a directory rmtree is walking, the store)
    import os

    from mutator.worker import ClonedWorker

    task_read, task_write = os.pipe()
    reply_read, reply_write = os.pipe()
    clone = ClonedWorker(task_write, reply_read, tmp_path / "log")
    os.close(reply_write)  # the clone has exited: its reply pipe reads end-of-file
    clone.stop(grace_s=1)
    reused = [os.open(os.devnull, os.O_RDONLY) for _ in range(2)]  # the lowest free numbers: the clone's
    assert set(reused) & {task_write, reply_read}
    clone.kill()
    for fd in reused:
        os.fstat(fd)  # still open
        os.close(fd)
    os.close(task_read)
