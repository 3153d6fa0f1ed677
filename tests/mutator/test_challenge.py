"""Challenge workspaces: validated draws, no leaks, same seed same bytes, and grading with `check`.

Cheap checks run over 20 seeds for every level and difficulty, on draws made without validation (which
takes a minute or more a workspace): narration, variety, symptom texts. What needs validation runs on one
level-3 workspace; MUTATOR_CHALLENGE_SEEDS=N also validates N seeds of every level and difficulty, and
measures every variant against its symptom.
"""

import filecmp
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from mutator import catalog, challenge
from mutator.challenge.compose import changed_ranges, compatible, draws, family, plant
from mutator.challenge.grading import read_tree
from mutator.challenge.narration import DIFFICULTIES, narration, states_specifics
from mutator.challenge.symptoms import KINDS, MINUTES, eligible, mismatch, observe, raised, symptom_of
from mutator.challenge.workspace import Estimate, find_leaks, probe_cells, write_workspace
from mutator.cli import main

LEVEL = catalog.load_level("3")
CLASSES = [c.name for c in LEVEL.classes]
LEVELS = challenge.LEVELS
SEEDS = range(20)


@cache
def generated(level_name):
    return catalog.generate_mutants(level_name, catalog.default_target())


@cache
def treated(level_name, difficulty):
    """(mutants, sites, code) of a level as a workspace of this difficulty shows them."""
    level, target = catalog.load_level(level_name), catalog.default_target()
    mutants, sites = challenge.level_mutants(level, target, difficulty, generated(level_name))
    return mutants, sites, challenge.narrated(challenge.load_suite(level_name, target).code, difficulty, sites)


def first_draw(level_name, difficulty, seed, bugs=None):
    """The seed's first draw that validation would look at, at this difficulty."""
    level, mutants = catalog.load_level(level_name), treated(level_name, difficulty)[0]
    names = challenge.drawable_classes(level, mutants, difficulty)
    return next(d for d in draws(eligible(mutants, difficulty), names, seed, bugs or len(names)) if compatible(d))


@pytest.fixture(scope="module")
def mutants():
    return generated("3")


@pytest.fixture(scope="module")
def validation():
    """Level 3 at hard, measured once (a baseline of every test: the expensive part, under a minute)."""
    with challenge.Validation("3", "hard") as measured:
        yield measured


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, validation):
    """One validated level-3 workspace with all its bugs."""
    root = tmp_path_factory.mktemp("challenge")
    out, key = root / "workspace", root / "keys" / "key.json"
    challenge.create("3", seed=7, out=out, key_path=key, validation=validation)
    return out, key


def first_compatible_draw(mutants, seed):
    return next(d for d in draws(mutants, CLASSES, seed, len(CLASSES)) if compatible(d))


def write_unvalidated(out: Path, level_name, seed, difficulty="hard"):
    """A workspace of a seed's first draw, without validation: what the leak scans must pass."""
    level = catalog.load_level(level_name)
    draw = first_draw(level_name, difficulty, seed)
    code = treated(level_name, difficulty)[2]
    reports = [(m, symptom_of(m).text) for m in draw]
    estimate = Estimate([MINUTES[symptom_of(m).kind] for m in draw])
    write_workspace(out, level, {**code, **plant(draw)}, reports, estimate, difficulty)
    return draw


# Runs probe cells in order in one namespace, as a kernel would, and reports each cell's output; a cell
# that raises is recorded, not fatal, so one run shows every crashing probe.
RUN_CELLS = """
import contextlib, io, json, sys
cells, printed = json.load(open(sys.argv[1])), {}
namespace = {}
for name, code in cells.items():
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, name, "exec"), namespace)
    except BaseException as error:
        out.write(f"CRASHED {type(error).__name__}: {error}")
    printed[name] = out.getvalue()
print(json.dumps(printed))
"""


def run_probe_cells(workspace: Path, level_name: str, difficulty: str) -> dict[str, str]:
    """What each probe cell printed, run in the workspace (so on its own nanochat)."""
    cells = probe_cells(level_name, difficulty)
    (workspace / "cells.json").write_text(json.dumps(cells))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", RUN_CELLS, "cells.json"], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    return json.loads(done.stdout.splitlines()[-1])


# Each level's probes run on a buggy draw and on the clean code, at easy and at hard (medium runs the
# same probe code as hard, and test_a_validated_workspace_meets_every_rule runs it): ten seconds a run.
RUNS = (("easy", 0), ("easy", None), ("hard", 1), ("hard", None))
PROBE_RUNS = [(n, d, s) for n in LEVELS for d, s in RUNS]
# What a probe above easy must not print: the parameter that got another's rate, the text trained on.
DIAGNOSES = re.compile(r"transformer\.|lm_head|trained targets|wanted:")


@pytest.mark.parametrize("level_name, difficulty, seed", PROBE_RUNS)
def test_every_probe_prints_ok_or_problem_whatever_is_planted(tmp_path, level_name, difficulty, seed):
    """Each probe call prints one OK or PROBLEM line on buggy code (seeds) and on clean code (None)."""
    level = catalog.load_level(level_name)
    if seed is None:
        code = treated(level_name, difficulty)[2]
        write_workspace(tmp_path, level, code, [], Estimate([]), difficulty)
    else:
        write_unvalidated(tmp_path, level_name, seed, difficulty)
    printed = run_probe_cells(tmp_path, level_name, difficulty)
    assert "CRASHED" not in printed.pop("setup")
    for name, code in probe_cells(level_name, difficulty).items():
        if name == "setup":
            continue
        verdicts = [line for line in printed[name].splitlines() if line.startswith(("OK ", "PROBLEM "))]
        calls = len(re.findall(r"^probe\(", code, re.M))
        assert "CRASHED" not in printed[name] and calls and len(verdicts) == calls, (name, printed[name])
        if seed is None:
            assert all(v.startswith("OK") for v in verdicts), (name, printed[name])
        if difficulty != "easy":
            assert not DIAGNOSES.search(printed[name]), (name, printed[name])


def test_probes_above_easy_carry_no_comments_and_print_no_diagnosis():
    for level_name in LEVELS:
        easy, hard = probe_cells(level_name, "easy"), probe_cells(level_name, "hard")
        assert easy.keys() == hard.keys() and "DIAGNOSE = True" in easy["setup"]
        assert "DIAGNOSE = False" in hard["setup"] and probe_cells(level_name, "medium") == hard
        assert all(narration(code) == [] for code in hard.values())
        assert any(narration(code) for code in easy.values())


@pytest.mark.parametrize("level_name", LEVELS)
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_no_two_bugs_of_a_draw_share_an_operator_or_a_variant_family(level_name, difficulty):
    level, mutants = catalog.load_level(level_name), treated(level_name, difficulty)[0]
    names = challenge.drawable_classes(level, mutants, difficulty)
    mutants = eligible(mutants, difficulty)
    for seed, bugs in itertools.product(SEEDS, {2, len(names)}):
        for candidate in itertools.islice(draws(mutants, names, seed, bugs), 5):  # validation may take a later one
            operators, families = [m.operator for m in candidate], [family(m.variant) for m in candidate]
            assert len(set(operators)) == len(set(families)) == bugs, (seed, [m.variant for m in candidate])


def test_scalings_by_a_constant_are_one_family():
    assert family("warmup_iters-x100") == family("grad_accum_steps-divisor-x100") == family("base-div10")
    assert family("denominator-half") == family("denominator-x2") != family("update-dropped")


def test_the_level_has_over_a_hundred_distinct_draws():
    assert challenge.count("3") >= 100


def test_draws_depend_on_the_seed_alone(mutants):
    firsts = [[m.id for m in first_compatible_draw(mutants, seed)] for seed in range(10)]
    assert firsts == [[m.id for m in first_compatible_draw(mutants, seed)] for seed in range(10)]
    # Two seeds may share one draw by chance, but a seed that ignored the RNG would share many.
    assert len({tuple(ids) for ids in firsts}) >= 9, "ten seeds should give (nearly) ten different draws"


@pytest.mark.parametrize("seed", range(6))
def test_workspaces_hold_no_answers(tmp_path, seed):
    draw = write_unvalidated(tmp_path, "3", seed)
    assert find_leaks(tmp_path, draw, catalog.operator_names()) == []
    planted = {m.file for m in draw}
    for mutant in draw:  # the planted files really differ from the clean ones
        assert (tmp_path / mutant.file).read_text() != mutant.original
    assert planted and not (tmp_path / ".git").exists()


@pytest.mark.parametrize("level_name", LEVELS)
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_no_comment_or_docstring_narrates_a_planted_site(level_name, difficulty):
    """Over 20 seeds: no narration sits beside a planted site or names a word of its clean lines (the
    leak test), and none is left that the difficulty removes."""
    mutants, _, code = treated(level_name, difficulty)
    for seed in SEEDS:
        draw = first_draw(level_name, difficulty, seed)
        planted = {**code, **plant(draw)}
        assert challenge.narration_leaks(planted, draw, difficulty) == [], seed
        for mutant in draw:
            compile(planted[mutant.file], mutant.file, "exec")
    # no mutant is lost, and each one's lines moved with the code: coverage still selects its tests
    assert sorted(m.variant for m in mutants) == sorted(m.variant for m in generated(level_name))
    for mutant in mutants:
        assert all(mutant.start_line - 1 <= i1 and i2 <= mutant.end_line for i1, i2, _ in changed_ranges(mutant))


# The narration next to planted lines that gave the answers of two workspaces away (issue 11), by level.
TOLD_ANSWERS = {
    "2": ("is divided by", "mask[:, t + 1] decides it"),
    "3": ("base^(2i / head_dim)", "only after the last one", "rounded up to whole chunks"),
}


def test_the_narration_that_gave_answers_away_is_gone_at_every_difficulty():
    for (level_name, answers), difficulty in itertools.product(TOLD_ANSWERS.items(), DIFFICULTIES):
        code = treated(level_name, difficulty)[2]
        told = "\n".join(piece.text for source in code.values() for piece in narration(source))
        assert not [answer for answer in answers if answer in told], (level_name, difficulty)


def test_difficulties_keep_less_and_less_narration():
    for level_name in LEVELS:
        kept = {d: [p for text in treated(level_name, d)[2].values() for p in narration(text)] for d in DIFFICULTIES}
        assert len(kept["easy"]) > len(kept["medium"]) > len(kept["hard"]) == 0, level_name
        assert not any(states_specifics(piece.text) for piece in kept["medium"])
        assert any(states_specifics(piece.text) for piece in kept["easy"])


def test_medium_removes_formulas_values_and_invariants_and_keeps_prose():
    others = ("cos/sin precomputed for 10x sequence_len", "targets are int64",
              "Every layer inserts the same positions in turn", "`num_samples` rows")  # fmt: skip
    for told in (*itertools.chain(*TOLD_ANSWERS.values()), *others):
        assert states_specifics(told), told
    for prose in (
        "The calculator state machine: collect a python block, then queue its result as output.",
        "not saved in checkpoints: they are a pure function of the config",
        "Shared helpers: where nanochat keeps its files, and which device to run on.",
    ):
        assert not states_specifics(prose), prose


def test_every_variant_has_a_symptom_and_each_difficulty_draws_the_kinds_it_allows():
    for level_name in LEVELS:
        level = catalog.load_level(level_name)
        for mutant in generated(level_name):
            symptom = symptom_of(mutant)
            assert symptom is not None and symptom.kind in KINDS and symptom.text, (mutant.bug_class, mutant.variant)
        for difficulty in DIFFICULTIES:  # a class is left out only where its variants crash or go unseen
            drawn = {m.bug_class for m in eligible(generated(level_name), difficulty)}
            left_out = {c.name for c in level.classes} - drawn
            assert difficulty != "easy" or not left_out
            kinds = {symptom_of(m).kind for m in generated(level_name) if m.bug_class in left_out}
            assert kinds <= {"crashes", "hidden"}, (level_name, difficulty, left_out)
        silent = {m.bug_class for m in generated(level_name) if symptom_of(m).kind == "silent"}
        hard = eligible(generated(level_name), "hard")
        assert all(symptom_of(m).kind == "silent" for m in hard if m.bug_class in silent)
        assert all(symptom_of(m).kind != "crashes" for m in eligible(generated(level_name), "medium"))


def test_a_failure_that_raises_is_told_from_a_wrong_value():
    assert raised("RuntimeError: expected scalar type Long but found Int")
    assert raised("setup: torch.OutOfMemoryError: CUDA out of memory")
    assert raised("AssertionError: PROBLEM cache growth: raised IndexError: index 3 is out of bounds")
    assert not raised("AssertionError: PROBLEM cache growth")
    assert not raised("assert [2048, 2048] == [2048, 4096]")
    assert not raised("AssertionError: Tensor-likes are not close!")


def test_easy_workspaces_keep_the_narration_that_describes_no_site():
    code = challenge.load_suite("3", catalog.default_target()).code
    kept = treated("3", "easy")[2]
    for path, source in code.items():  # the code itself is untouched, only narration goes
        assert challenge.narrated({path: source}, "hard", treated("3", "easy")[1])[path] == (
            challenge.narrated({path: kept[path]}, "hard", treated("3", "easy")[1])[path]
        )
    assert any(narration(text) for text in kept.values())


def test_the_leak_scan_finds_markers_and_clean_copies(tmp_path):
    draw = write_unvalidated(tmp_path, "3", seed=0)
    target = tmp_path / draw[0].file
    target.write_text(target.read_text() + "\n# BUG: fixed below\n")
    (tmp_path / "nanochat" / "backup.py").write_text(draw[1].original)
    leaks = find_leaks(tmp_path, draw, catalog.operator_names())
    assert any("says 'BUG'" in leak for leak in leaks)
    assert any("backup.py: a clean copy" in leak for leak in leaks)


def test_the_narration_leak_test_finds_a_comment_beside_a_planted_line():
    draw = first_draw("3", "easy", seed=0)
    planted = {**treated("3", "easy")[2], **plant(draw)}
    lines = planted[draw[0].file].splitlines(keepends=True)
    line = draw[0].start_line - 1
    indent = lines[line][: len(lines[line]) - len(lines[line].lstrip())]
    lines.insert(line, f"{indent}# what this line is for\n")
    leaks = challenge.narration_leaks({**planted, draw[0].file: "".join(lines)}, draw, "easy")
    assert len(leaks) == 1 and "describes a planted site" in leaks[0]


def test_the_same_draw_writes_the_same_bytes(tmp_path):
    write_unvalidated(tmp_path / "a", "3", seed=3)
    write_unvalidated(tmp_path / "b", "3", seed=3)
    comparison = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    assert not comparison.diff_files and not comparison.left_only and not comparison.right_only
    notebook = nbformat.read(tmp_path / "a" / "challenge.ipynb", as_version=4)
    nbformat.validate(notebook)


def test_a_validated_workspace_checks_unsolved_then_solved(workspace, tmp_path):
    out, key_path = workspace
    key = json.loads(key_path.read_text())
    drawable = challenge.drawable_classes(LEVEL, treated("3", "hard")[0], "hard")  # those that do not only crash
    assert sorted(b["bug_class"] for b in key["bugs"]) == sorted(drawable)
    assert not key_path.resolve().is_relative_to(out.resolve())
    mutants = [m for m in challenge.level_mutants(LEVEL, catalog.default_target(), "hard")[0]
               if m.id in {b["mutant_id"] for b in key["bugs"]}]  # fmt: skip
    assert len(mutants) == len(key["bugs"]) and key["difficulty"] == "hard"
    assert find_leaks(out, mutants, catalog.operator_names()) == []
    readme = (out / "README.md").read_text()
    for bug in key["bugs"]:  # validated: each bug alone fails a visible and a hidden test
        visible, probes = set(bug["killing_tests"]) & set(key["visible_tests"]), set(key["probe_tests"])
        assert visible and set(bug["killing_tests"]) - visible - probes
        measured = bug["measured"]  # hard draws silent bugs, and the key says what was seen
        assert measured["kind"] == "silent" and measured["visible_tests_detecting"] == len(visible)
        assert measured["probes_detecting"] == len(set(bug["killing_tests"]) & probes)
        assert not measured["hidden_only"] and f"- {bug['symptom']}" in readme
    minutes = [bug["measured"]["minutes"] for bug in key["bugs"]]
    assert key["minutes"] == sum(minutes) and f"about {sum(minutes)} minutes" in readme
    assert " + ".join(map(str, minutes)) in readme and "silent" in readme.split("Time estimate")[1]

    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    fixed_class = key["bugs"][0]["bug_class"]
    challenge.revert(partial, key_path, bug_classes={fixed_class})
    grade = challenge.check(partial, key_path)
    assert not grade.solved
    assert grade.fixed[fixed_class] == []
    assert all(grade.fixed[c] for c in drawable if c != fixed_class), "the other bugs are still reported"

    solved = tmp_path / "solved"
    shutil.copytree(out, solved)
    challenge.revert(solved, key_path)
    assert challenge.check(solved, key_path).solved


def test_the_notebook_runs_top_to_bottom_and_points_at_the_bugs(workspace, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    out, _ = workspace
    notebook = nbformat.read(out / "challenge.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(out)}}).execute()
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert str(out / "nanochat") in printed, "the notebook must import the workspace's own nanochat"
    assert printed.count("PROBLEM") >= 4, printed  # every planted class shows up in some probe


def test_the_workspace_is_self_contained(workspace):
    out, _ = workspace
    pins = (out / "requirements.txt").read_text().split()
    assert {p.split("==")[0] for p in pins} >= {"torch", "tiktoken", "rustbpe", "pytest", "nbclient", "ipykernel"}
    assert all("==" in p for p in pins), pins
    head = "\n".join((out / "README.md").read_text().splitlines()[:8])
    assert "pip install -r requirements.txt" in head and "challenge.ipynb" in head
    assert (out / "pytest.ini").is_file()


def test_the_installed_clean_nanochat_cannot_make_an_unsolved_workspace_pass(workspace):
    out, _ = workspace
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # the premise: from tests/, a plain import finds the repository's clean, installed copy
    where = subprocess.run([sys.executable, "-c", "import nanochat; print(nanochat.__file__)"],
                           cwd=out / "tests", env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert not Path(where.stdout.strip()).is_relative_to(out.resolve())
    for cwd, args in ((out / "tests", []), (out / "tests", ["."]), (out, [])):
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                             cwd=cwd, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert run.returncode == 1, (cwd, args, run.stdout[-2000:])
        assert "failed" in run.stdout.splitlines()[-1]


def test_cli_counts_and_refuses_bad_input(tmp_path):
    runner = CliRunner()
    counted = runner.invoke(main, ["challenge", "--level", "3", "--count"])
    assert counted.exit_code == 0 and int(counted.output) >= 100
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    for args in (
        ["challenge", "--level", "3", "--seed", "1", "--out", str(tmp_path / "busy")],
        ["challenge", "--level", "9", "--seed", "1", "--out", str(tmp_path / "new")],
        ["challenge", "--level", "3", "--out", str(tmp_path / "new")],
        ["challenge", "--level", "3", "--seed", "1", "--out", str(tmp_path / "new"), "--difficulty", "extreme"],
        ["check", str(tmp_path / "busy")],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


def test_check_refuses_another_workspaces_key_unless_forced(tmp_path, monkeypatch):
    graded = []
    grade = challenge.Grade(fixed={}, collateral=[], failing=[], reasons={}, bug_reasons={})
    monkeypatch.setattr(challenge, "check", lambda workspace, key_path: graded.append(workspace) or grade)
    mine, other = tmp_path / "mine", tmp_path / "other"
    for workspace in (mine, other):
        (workspace / "nanochat").mkdir(parents=True)
        (workspace / "tests").mkdir()
        (workspace / "tests" / "test_level3.py").write_text("")
        key = {"level": "3", "seed": 1, "workspace": str(workspace.resolve()), "bugs": [], "tests": {}}
        (tmp_path / f"{workspace.name}.json").write_text(json.dumps(key))
    runner = CliRunner()

    refused = runner.invoke(main, ["check", str(mine), "--key", str(tmp_path / "other.json")])
    assert refused.exit_code == 2, refused.output
    assert len(refused.output.strip().splitlines()) == 1 and "Traceback" not in refused.output
    assert str(other.resolve()) in refused.output and "--force" in refused.output
    assert graded == []

    assert runner.invoke(main, ["check", str(mine), "--key", str(tmp_path / "mine.json")]).exit_code == 0
    forced = runner.invoke(main, ["check", str(mine), "--key", str(tmp_path / "other.json"), "--force"])
    assert forced.exit_code == 0, forced.output
    assert len(graded) == 2

    (tmp_path / "level4.json").write_text(json.dumps({"level": "4", "workspace": str(mine.resolve())}))
    wrong_level = runner.invoke(main, ["check", str(mine), "--key", str(tmp_path / "level4.json")])
    assert wrong_level.exit_code == 2 and "level-4" in wrong_level.output


def test_levels_without_a_challenge_are_refused(monkeypatch):
    monkeypatch.setattr(challenge, "LEVELS", ("1", "2"))
    result = CliRunner().invoke(main, ["challenge", "--level", "3", "--count"])
    assert result.exit_code == 2 and "level 3 has no challenge" in result.output, result.output


# Validated workspaces, every Done-when bullet of issue 11 checked on each: the level-3 workspace of the
# default run, and with MUTATOR_CHALLENGE_SEEDS=N, N seeds of every level and difficulty, whose seeds share
# one Validation per level and difficulty (N=20, 180 workspaces: about an hour on 2 loaded cores).
FULL_SEEDS = int(os.environ.get("MUTATOR_CHALLENGE_SEEDS", "0"))
VALIDATED = [(n, d, s) for n in LEVELS for d in DIFFICULTIES for s in range(FULL_SEEDS)]


def check_every_rule(out: Path, key_path: Path, level_name: str, difficulty: str, scratch: Path):
    key = json.loads(key_path.read_text())
    by_id = {m.id: m for m in treated(level_name, difficulty)[0]}
    drawn = [by_id[bug["mutant_id"]] for bug in key["bugs"]]
    code = {m.file: (out / m.file).read_text() for m in drawn}
    assert challenge.narration_leaks({**treated(level_name, difficulty)[2], **code}, drawn, difficulty) == []
    assert len({m.operator for m in drawn}) == len({family(m.variant) for m in drawn}) == len(drawn)
    for bug, mutant in zip(key["bugs"], drawn, strict=True):  # the symptom told is that of what was seen
        assert bug["symptom"] == symptom_of(mutant).text and bug["measured"]["kind"] == symptom_of(mutant).kind
        assert difficulty == "easy" or bug["measured"]["kind"] != "crashes"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # -x: one failing test is all this rule needs to see
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"], cwd=out / "tests",
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 1, run.stdout[-2000:]
    fixed = scratch / "fixed"
    shutil.copytree(out, fixed)
    challenge.revert(fixed, key_path)
    for tree in (out, fixed):
        printed = probes_printed(tree, level_name, difficulty)
        for name, cell in probe_cells(level_name, difficulty).items():
            verdicts = [line for line in printed[name].splitlines() if line.startswith(("OK ", "PROBLEM "))]
            assert "CRASHED" not in printed[name] and len(verdicts) == len(re.findall(r"^probe\(", cell, re.M))
            assert tree == out or all(v.startswith("OK") for v in verdicts), printed[name]


PRINTED: dict[str, dict[str, str]] = {}


def probes_printed(tree: Path, level_name: str, difficulty: str) -> dict[str, str]:
    """run_probe_cells, once per code: what a probe prints depends on its cells and on the tree's
    nanochat alone, so the fixed trees of one level and difficulty, all alike, share one run."""
    digest = hashlib.sha256(json.dumps([probe_cells(level_name, difficulty), read_tree(tree, "nanochat")]).encode())
    if digest.hexdigest() not in PRINTED:
        PRINTED[digest.hexdigest()] = run_probe_cells(tree, level_name, difficulty)
    return PRINTED[digest.hexdigest()]


def test_the_validated_workspace_meets_every_rule(workspace, tmp_path):
    out, key_path = workspace
    check_every_rule(out, key_path, "3", "hard", tmp_path)


@pytest.fixture(scope="module")
def measured():
    """The Validation of a level and difficulty, shared by its seeds: one is held at a time."""
    held: dict[tuple[str, str], challenge.Validation] = {}

    def of(level_name: str, difficulty: str) -> challenge.Validation:
        if (level_name, difficulty) not in held:
            for other in held.values():
                other.close()
            held.clear()
            held[level_name, difficulty] = challenge.Validation(level_name, difficulty)
        return held[level_name, difficulty]

    yield of
    for other in held.values():
        other.close()


@pytest.mark.parametrize("level_name, difficulty, seed", VALIDATED)
def test_validated_workspaces_meet_every_rule(tmp_path, measured, level_name, difficulty, seed):
    out, key_path = tmp_path / "workspace", tmp_path / "keys" / "key.json"
    validation = measured(level_name, difficulty)
    challenge.create(level_name, seed=seed, out=out, key_path=key_path, difficulty=difficulty, validation=validation)
    check_every_rule(out, key_path, level_name, difficulty, tmp_path)


@pytest.mark.parametrize("level_name", LEVELS if FULL_SEEDS else [])
def test_every_variant_behaves_as_its_symptom_says(level_name):
    """Each mutant of the level alone, against the visible tests and probes (minutes a level)."""
    with challenge.Validation(level_name, "easy") as validation:
        runs = [(m, validation.grader.run([m])) for m in validation.mutants]
        wrong = [mismatch(m, observe(outcomes, validation.visible, validation.probes)) for m, outcomes in runs]
    assert [problem for problem in wrong if problem] == []


def test_a_masking_check_stops_at_a_failing_test_and_sees_a_masked_one(workspace, validation):
    """Grader.detects, which the masking rule uses, agrees with each bug's runs alone."""
    key = json.loads(workspace[1].read_text())
    drawn = [m for m in validation.mutants if m.id in {bug["mutant_id"] for bug in key["bugs"]}]
    seen = {m.id: validation.solo[m.id].failed() for m in drawn}
    first, second = next((a, b) for a, b in itertools.permutations(drawn, 2) if seen[a.id] - seen[b.id])
    assert validation.grader.detects([first], seen[first.id])
    assert not validation.grader.detects([second], seen[first.id] - seen[second.id])
