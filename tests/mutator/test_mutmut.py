"""`mutator mutmut`: the scratch copy, reading mutmut's diffs, and one real run on a toy target."""

import re
import sys
import textwrap
import tomllib

import pytest
from click.testing import CliRunner

from mutator.cli import main
from mutator.mutants import Mutant
from mutator.mutmut_compare import apply_show, mutmut_command, original_unit_text, our_changed_unit, prepare, unit_of

GPT = '''\
class CausalSelfAttention:
    def __init__(self, n_head, n_kv_head):
        self.n_head = n_head
        self.n_kv_head = n_kv_head

    def repeats_kv(self):
        """True when the key/value heads must be repeated for the query heads."""
        enable_gqa = self.n_head != self.n_kv_head
        return enable_gqa


def precompute_rotary(head_dim, base=10000.0):
    channel_range = [float(i) for i in range(0, head_dim, 2)]
    return [1.0 / (base ** (c / head_dim)) for c in channel_range]
'''

TESTS = """\
from nanochat.gpt import CausalSelfAttention, precompute_rotary


def test_gqa_flag():
    assert CausalSelfAttention(4, 2).repeats_kv()
    assert not CausalSelfAttention(4, 4).repeats_kv()


def test_rotary_frequencies():
    assert precompute_rotary(4) == [1.0, 0.01]
"""


@pytest.fixture
def toy(tmp_path):
    """A nanochat-shaped target with its suite under tests/ and a project file with pytest options."""
    (tmp_path / "nanochat").mkdir()
    (tmp_path / "nanochat" / "__init__.py").write_text("")
    (tmp_path / "nanochat" / "gpt.py").write_text(GPT)
    (tmp_path / "tests" / "toy").mkdir(parents=True)
    (tmp_path / "tests" / "conftest.py").write_text("# suite-wide fixtures\n")
    (tmp_path / "tests" / "toy" / "test_toy.py").write_text(TESTS)
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\nmarkers = ["slow: long"]\n')
    return tmp_path


def mutant(old, new, qualname="CausalSelfAttention.repeats_kv"):
    return Mutant("c", "o", "v", "nanochat/gpt.py", qualname, 1, 1, GPT, GPT.replace(old, new, 1))


def test_unit_of_reads_mutmut_names():
    assert unit_of("nanochat.gpt.xǁGPTǁforward__mutmut_3") == ("nanochat/gpt.py", "GPT.forward")
    assert unit_of("nanochat.engine.x_sample_next_token__mutmut_12") == ("nanochat/engine.py", "sample_next_token")


def test_our_changed_unit_is_the_one_function_we_change():
    qualname, _ = our_changed_unit(mutant("!=", "=="))
    assert qualname == "CausalSelfAttention.repeats_kv"
    # module-level code and changes to two functions are beyond any single mutmut mutant
    assert our_changed_unit(mutant("class Causal", "X = 1\n\n\nclass Causal", "")) is None
    both = mutant("!=", "==")
    both = Mutant(**{**both.__dict__, "mutated": both.mutated.replace("2)]", "3)]")})
    assert our_changed_unit(both) is None


def test_apply_show_rebuilds_the_mutated_function_from_mutmuts_diff():
    original = original_unit_text(GPT, "CausalSelfAttention.repeats_kv")
    assert original.startswith("def repeats_kv(self):")
    # what `mutmut show` prints for a mutant of this method (path header, then one hunk)
    shown = textwrap.dedent("""\
        # nanochat.gpt.xǁCausalSelfAttentionǁrepeats_kv__mutmut_2: killed
        --- nanochat/gpt.py
        +++ nanochat/gpt.py
        @@ -1,4 +1,4 @@
         def repeats_kv(self):
             \"\"\"True when the key/value heads must be repeated for the query heads.\"\"\"
        -    enable_gqa = self.n_head != self.n_kv_head
        +    enable_gqa = self.n_head == self.n_kv_head
             return enable_gqa""")
    rebuilt = apply_show(original, shown)
    assert rebuilt == original.replace("!=", "==")
    assert apply_show(original, shown.replace("enable_gqa = self", "flag = self")) is None  # does not fit


def test_prepare_copies_package_suite_conftests_and_pytest_options(toy, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("scratch")
    suite = prepare(toy, toy / "tests" / "toy", scratch)
    assert suite == "tests/toy"
    assert (scratch / "nanochat" / "gpt.py").read_text() == GPT
    assert (scratch / "tests" / "conftest.py").is_file()  # the conftest above the suite comes along
    assert (scratch / "tests" / "toy" / "test_toy.py").is_file()
    config = tomllib.loads((scratch / "pyproject.toml").read_text())
    assert config["tool"]["mutmut"]["source_paths"] == ["nanochat"]
    assert config["tool"]["mutmut"]["pytest_add_cli_args_test_selection"] == ["tests/toy"]
    assert config["tool"]["mutmut"]["process_isolation"] == "forkserver"
    assert config["tool"]["pytest"]["ini_options"]["markers"] == ["slow: long"]


def test_missing_package_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["mutmut", "--target", str(tmp_path), "--tests", str(tmp_path)])
    assert result.exit_code == 2
    assert "no nanochat/ package" in result.output


@pytest.mark.slow
@pytest.mark.skipif(mutmut_command() is None, reason="needs mutmut 3 (pip install -e '.[dev]')")
def test_mutmut_runs_on_a_toy_target_beside_our_level_3(toy):
    result = CliRunner().invoke(
        main,
        ["mutmut", "--target", str(toy), "--tests", str(toy / "tests" / "toy"), "--store", str(toy / "none")],
        terminal_width=250,
    )
    assert result.exit_code == 0, result.output
    assert "mutmut 3." in result.output
    # every mutmut mutant of this toy is killed by its two tests
    assert re.search(r"mutation score \(Stryker\)\s*│\s*100\.0%", result.output), result.output
    # of our five level-3 mutants (one GQA flag, four rotary exponents) mutmut produces only the flag
    assert "1 of 5" in result.output
    assert "repeats_kv__mutmut_" in result.output
    assert "No mutator run in the session store" in result.output


def test_mutmut_is_found_beside_the_interpreter_without_an_activated_venv(tmp_path, monkeypatch):
    """`venv/bin/mutator mutmut` with the venv not on PATH: the venv's own mutmut is the one to run."""
    from mutator import mutmut_compare

    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "mutmut").write_text("#!/bin/sh\n")
    (bin_dir / "mutmut").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(mutmut_compare, "version", lambda name: "3.3.1")
    assert mutmut_compare._mutmut() == (str(bin_dir / "mutmut"), "3.3.1")
