"""Input the user got wrong stops a run at once, in one line, before any slow work (mutant generation,
baseline): report paths, the store directory, the target, and a store another run is writing."""

import pytest
from click.testing import CliRunner

from mutator.cli import main
from mutator.mutants import Mutant
from mutator.store import Store


@pytest.fixture
def no_slow_work(monkeypatch):
    """Mutant generation and the run itself fail the test if they are reached."""

    def reached(*args, **kwargs):
        raise AssertionError("slow work started before the input was checked")

    monkeypatch.setattr("mutator.catalog.generate_mutants", reached)
    monkeypatch.setattr("mutator.runner.run", reached)


def one_line_error(result, *words):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("option", ["--json", "--html", "--junit"])
def test_a_report_path_in_a_missing_directory_fails_at_once(no_slow_work, tmp_path, option):
    path = str(tmp_path / "nonexistent" / "dir" / "r.out")
    result = CliRunner().invoke(main, ["run", "--level", "3", "--store", str(tmp_path / "s"), option, path])
    one_line_error(result, option, str(tmp_path / "nonexistent" / "dir"))


def test_the_literal_example_from_the_issue(no_slow_work, tmp_path):
    result = CliRunner().invoke(
        main, ["run", "--level", "3", "--store", str(tmp_path), "--json", "/nonexistent/dir/r.json"]
    )
    one_line_error(result, "--json", "/nonexistent/dir")


def usage_error(result, *words):
    """click's own checks of a path's kind: its usage message, exit 2, the error on its last line."""
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    last = result.output.strip().splitlines()[-1]
    assert all(word in last for word in words), last


def test_a_report_path_that_is_a_directory_fails_at_once(no_slow_work, tmp_path):
    result = CliRunner().invoke(main, ["run", "--level", "3", "--store", str(tmp_path / "s"), "--html", str(tmp_path)])
    usage_error(result, "--html", "is a directory")


def test_a_store_that_is_a_file_fails_at_once(no_slow_work, tmp_path):
    (tmp_path / "store").write_text("not a directory")
    result = CliRunner().invoke(main, ["run", "--level", "3", "--store", str(tmp_path / "store")])
    usage_error(result, "--store", "is a file")


def test_a_missing_target_fails_at_once(no_slow_work, tmp_path):
    result = CliRunner().invoke(
        main, ["run", "--level", "3", "--store", str(tmp_path), "--target", str(tmp_path / "no")]
    )
    one_line_error(result, "target directory not found")


def test_report_checks_its_paths_before_reading_the_store(tmp_path):
    result = CliRunner().invoke(main, ["report", "--store", str(tmp_path), "--junit", str(tmp_path / "a" / "j.xml")])
    one_line_error(result, "--junit")


def test_a_second_run_on_a_store_in_use_stops_naming_the_first(tmp_path, monkeypatch):
    mutant = Mutant("cls", "op", "v", "toypkg/core.py", "add", 1, 1, "x = 1\n", "x = 2\n")
    monkeypatch.setattr("mutator.cli._mutants", lambda *args: [mutant])
    monkeypatch.setattr("mutator.baseline.measure", lambda *a, **k: pytest.fail("the baseline started"))
    with Store(tmp_path / "store") as first:
        first.lock()
        result = CliRunner().invoke(
            main, ["run", "--level", "3", "--store", str(tmp_path / "store"), "--device", "cpu"]
        )
    one_line_error(result, "in use by pid", "another --store")
