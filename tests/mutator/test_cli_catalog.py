"""`mutator levels | list | show | apply`: output on the bundled nanochat, and exit code 2 with a
one-line message for every kind of bad input."""

import json

import pytest
from click.testing import CliRunner

from mutator import catalog
from mutator.cli import main

FIELDS = {"id", "bug_class", "operator", "variant", "file", "qualname", "start_line", "end_line", "canonical"}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def listed():
    result = invoke("list", "--level", "3", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_levels():
    result = invoke("levels")
    assert result.exit_code == 0, result.output
    assert "Architecture & Performance" in result.output and "rotary-exponent" in result.output


def test_list_json(listed):
    assert len(listed) >= 20
    assert all(set(row) == FIELDS for row in listed)
    assert sum(row["canonical"] for row in listed) == 5


def test_list_table(listed):
    result = invoke("list", "--level", "3")
    assert result.exit_code == 0, result.output
    assert all(row["id"] in result.output for row in listed)
    assert result.output.count("canonical") == 5


def test_show(listed):
    rotary = next(row for row in listed if row["canonical"] and row["bug_class"] == "rotary-exponent")
    result = invoke("show", rotary["id"][:6])  # a unique prefix will do
    assert result.exit_code == 0, result.output
    assert "rotary-exponent / exponent-scaling / denominator-x2" in result.output
    assert "+        inv_freq = 1.0 / (base ** (channel_range / (head_dim * 2)))" in result.output


def test_apply_writes_a_mutated_copy_and_leaves_the_target_alone(tmp_path, listed):
    target = tmp_path / "target"
    (target / "nanochat" / "__pycache__").mkdir(parents=True)
    (target / "nanochat" / "__pycache__" / "gpt.cpython-311.pyc").write_bytes(b"stale")
    (target / ".git").mkdir()
    (target / "tests").mkdir()
    (target / "tests" / "test_x.py").write_text("def test_x():\n    pass\n", encoding="utf-8")
    for name in ("gpt.py", "engine.py", "tokenizer.py"):
        text = (catalog.default_target() / "nanochat" / name).read_text(encoding="utf-8")
        (target / "nanochat" / name).write_text(text, encoding="utf-8")
    gqa = next(row for row in listed if row["canonical"] and row["bug_class"] == "gqa-predicate")
    before = (target / "nanochat" / "gpt.py").read_text(encoding="utf-8")

    out = tmp_path / "out"
    result = invoke("apply", gqa["id"], "--target", target, "--out", out)
    assert result.exit_code == 0, result.output
    assert (target / "nanochat" / "gpt.py").read_text(encoding="utf-8") == before
    mutated = (out / "nanochat" / "gpt.py").read_text(encoding="utf-8")
    assert "enable_gqa = self.n_head == self.n_kv_head" in mutated
    assert (out / "tests" / "test_x.py").is_file() and (out / "nanochat" / "engine.py").is_file()
    assert not (out / "nanochat" / "__pycache__").exists() and not (out / ".git").exists()


def _bad_target(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "gpt.py").write_text("def broken(:\n", encoding="utf-8")
    return tmp_path / "bad"


@pytest.mark.parametrize(
    "args, message",
    [
        (["list", "--level", "7"], "unknown level '7'"),
        (["list", "--level", "3", "--target", "{tmp}/missing"], "target directory not found"),
        (["list", "--level", "3", "--target", "{bad}"], "gpt.py: does not parse"),
        (["show", "ffffffffffff"], "no mutant with id 'ffffffffffff'"),
        (["show", "fff", "--target", "{tmp}/missing"], "target directory not found"),
        (["apply", "ffffffffffff", "--out", "{tmp}/out"], "no mutant with id"),
        (["apply", "{canonical}", "--out", "{tmp}/full"], "output directory exists and is not empty"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_code_2(tmp_path, listed, args, message):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x", encoding="utf-8")
    values = {"tmp": tmp_path, "bad": _bad_target(tmp_path), "canonical": listed[0]["id"]}
    result = invoke(*[arg.format(**values) for arg in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.strip().count("\n") == 0, result.output
    assert "Traceback" not in result.output
