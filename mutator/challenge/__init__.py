"""Bug-hunt challenges: fresh, validated workspaces with the answer key kept outside them.

`create` draws one mutant per bug class (or `bugs` of them) with a seeded RNG, among the variants the
difficulty allows (see symptoms), in the code as the difficulty shows it (see narration). It validates
the draw against the visible tests, the notebook's probes and the hidden tests (see grading.validate),
checks that each bug behaves as its symptom says, writes the workspace and scans it for leaks, then
writes the key elsewhere, with each bug's measured difficulty. `check` grades an attempt with the key's
tests.
"""

import dataclasses
import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mutator import catalog
from mutator.challenge.compose import (
    compatible,
    count_combinations,
    draws,
    plant,
    planted_hunks,
    revert_present,
    unplant,
)
from mutator.challenge.grading import Draw, Grader, Outcomes, read_tree, run_tests, validate
from mutator.challenge.narration import DIFFICULTIES, Sites, line_map, sites_of, treat
from mutator.challenge.narration import leaks as narration_leaks
from mutator.challenge.symptoms import Behaviour, eligible, mismatch, observe, symptom_of
from mutator.challenge.workspace import CONFTEST, Estimate, find_leaks, probe_tests, template, write_workspace
from mutator.errors import UserError

MAX_DRAWS = 50  # candidates tried before giving up on a seed
TEST_PATHS = ["tests"]
LEVELS = ("1", "2", "3")  # the levels with visible tests, probes and symptoms written for them
PROBE_TESTS_PATH = "tests/test_probes.py"


@dataclass
class Suite:
    code: dict[str, str]  # the clean package, relative path -> text
    hidden: dict[str, str]  # hidden tests, relative path -> text
    visible: dict[str, str]  # the visible acceptance tests, relative path -> text
    probes: dict[str, str]  # the notebook's probes as tests (see workspace.probe_tests)

    @property
    def tests(self) -> dict[str, str]:
        # pytest.ini pins the rootdir, so node ids read "tests/..." wherever the tree is run from
        return {"pytest.ini": "[pytest]\n", "conftest.py": CONFTEST, **self.hidden, **self.visible, **self.probes}

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path, text in sorted({**self.code, **self.tests}.items()):
            digest.update(f"{path}\0{text}\0".encode())
        return digest.hexdigest()[:16]


def load_suite(level_name: str, target: Path, difficulty: str = "easy") -> Suite:
    hidden_dir = target / "tests" / "nanochat"
    if not hidden_dir.is_dir() or not (target / "tests" / "conftest.py").is_file():
        raise UserError(f"no hidden test suite at {hidden_dir} (a challenge needs the repository's tests)")
    hidden = read_tree(target, "tests/nanochat")
    hidden["tests/conftest.py"] = (target / "tests" / "conftest.py").read_text(encoding="utf-8")
    visible = {f"tests/test_level{level_name}.py": template(f"test_level{level_name}.py")}
    probes = {PROBE_TESTS_PATH: probe_tests(level_name, difficulty)}
    return Suite(code=read_tree(target, "nanochat"), hidden=hidden, visible=visible, probes=probes)


def narrated(code: dict[str, str], difficulty: str, sites: Sites) -> dict[str, str]:
    """The package's files as a workspace of this difficulty shows them (see narration)."""
    return {path: treat(text, path, difficulty, sites) for path, text in code.items()}


def level_mutants(level, target: Path, difficulty: str, mutants=None):
    """(mutants, sites): the level's mutants, planted into the code as this difficulty shows it, and
    the sites of all of them, whose narration no difficulty keeps.

    Each mutant's lines move to where they are once treated; one that only changed narration changes
    nothing any more and is dropped. `mutants`, when given, are the level's, as generate_mutants made them.
    """
    mutants = catalog.generate_mutants(level, target) if mutants is None else mutants
    sites = sites_of(mutants)
    originals, kept = {}, []
    for mutant in mutants:
        if mutant.original not in originals:
            treated = treat(mutant.original, mutant.file, difficulty, sites)
            originals[mutant.original] = treated, line_map(mutant.original, mutant.file, difficulty, sites)
        (original, numbers), mutated = originals[mutant.original], treat(mutant.mutated, mutant.file, difficulty, sites)
        if mutated != original:
            lines = {"start_line": numbers[mutant.start_line - 1], "end_line": numbers[mutant.end_line - 1]}
            kept.append(dataclasses.replace(mutant, original=original, mutated=mutated, **lines))
    return kept, sites


def default_key_path(level_name: str, seed: int) -> Path:
    return Path(".mutator") / "keys" / f"level{level_name}-seed{seed}.json"


def _challenge_level(level_name: str):
    level = catalog.load_level(level_name)
    if level.name not in LEVELS:
        raise UserError(f"level {level.name} has no challenge; challenges exist for levels {', '.join(LEVELS)}")
    return level


def count(level_name: str, bugs: int | None = None, target: Path | None = None) -> int:
    level = _challenge_level(level_name)
    target = target or catalog.default_target()
    mutants = catalog.generate_mutants(level_name, target)
    names = [c.name for c in level.classes]
    return count_combinations(mutants, names, bugs or len(names))


class Validation:
    """What validating a level at a difficulty measures once, whatever the seed: the suite as the
    difficulty shows it, its mutants, the Grader (a baseline and a collected worker) and each mutant's
    run alone, with the behaviour judged from it.

    A mutant's solo run depends on the mutant and the suite, not on the draw it is part of, so runs are
    kept by mutant id (which hashes the mutant's file) under this suite's fingerprint. `create` makes
    one for a single workspace; a sweep over seeds shares one per level and difficulty.
    """

    def __init__(self, level_name: str, difficulty: str, target: Path | None = None, log=lambda message: None):
        if difficulty not in DIFFICULTIES:
            raise UserError(f"--difficulty must be one of {', '.join(DIFFICULTIES)}")
        self.level, self.difficulty = _challenge_level(level_name), difficulty
        self.target = Path(target or catalog.default_target())
        self.suite = load_suite(self.level.name, self.target, difficulty)
        self.mutants, self.sites = level_mutants(self.level, self.target, difficulty)
        self.names = drawable_classes(self.level, self.mutants, difficulty)
        self.suite.code = narrated(self.suite.code, difficulty, self.sites)
        self.fingerprint = self.suite.fingerprint()
        self.solo: dict[str, Outcomes] = {}  # mutant id -> its outcomes alone
        self.behaviours: dict[str, Behaviour] = {}  # mutant id -> what those outcomes show of it
        self._log = log

    @cached_property
    def grader(self) -> Grader:
        """Made on first use (a baseline of every test: the expensive part), so input errors come first."""
        self._log("measuring the clean code against every test")
        self._workdir = tempfile.TemporaryDirectory(prefix="mutator-challenge-")
        try:
            return Grader({**self.suite.code, **self.suite.tests}, Path(self._workdir.name))
        except BaseException:
            self._workdir.cleanup()
            raise

    @cached_property
    def visible(self) -> set[str]:
        return {t for t in self.grader.tests if _is_visible(t, self.suite)}

    @cached_property
    def probes(self) -> set[str]:
        return {t for t in self.grader.tests if _is_probe(t, self.suite)}

    def judge(self, mutant, outcomes) -> str:
        """Why this bug may not be planted at this difficulty (see symptoms); empty when it may."""
        behaviour = self.behaviours[mutant.id] = observe(outcomes, self.visible, self.probes)
        if self.difficulty != "easy" and behaviour.kind == "crashes":
            return f"{mutant.bug_class} ({mutant.variant}) crashes in every check: easy at most"
        return mismatch(mutant, behaviour)

    def close(self):
        if "grader" in self.__dict__:
            self.grader.close()
            self._workdir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def create(
    level_name,
    seed,
    out: Path,
    bugs=None,
    key_path=None,
    target=None,
    log=lambda message: None,
    difficulty="hard",
    validation: Validation | None = None,
) -> Path:
    """Write a validated workspace to `out` and its key to `key_path`; returns the key's path.

    `validation`, when given, is that of this level and difficulty, shared with other seeds' workspaces.
    """
    if difficulty not in DIFFICULTIES:
        raise UserError(f"--difficulty must be one of {', '.join(DIFFICULTIES)}")
    level = _challenge_level(level_name)
    out, key_path = Path(out), Path(key_path or default_key_path(level.name, seed))
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not empty")
    if key_path.resolve().is_relative_to(out.resolve()):
        raise UserError("the key must be kept outside the workspace")
    if bugs is not None and not 1 <= bugs <= len(level.classes):
        raise UserError(f"--bugs must be between 1 and {len(level.classes)} for level {level.name}")
    if validation is None:
        with Validation(level.name, difficulty, target, log) as own:
            return create(level.name, seed, out, bugs, key_path, log=log, difficulty=difficulty, validation=own)
    if (validation.level.name, validation.difficulty) != (level.name, difficulty) or (
        target is not None and Path(target).resolve() != validation.target.resolve()
    ):
        raise ValueError("the validation given is of another level, difficulty or target")

    suite, names = validation.suite, validation.names
    bugs = bugs or len(names)
    if bugs > len(names):
        raise UserError(
            f"at --difficulty {difficulty}, {len(names)} classes of level {level.name} have bugs to draw"
            f" ({', '.join(names)}): the others only crash, which is easy at most"
        )
    candidate, draw = _first_valid_draw(validation, seed, bugs, log)
    behaviours = validation.behaviours

    planted = {**suite.code, **plant(candidate)}
    reports = [(m, symptom_of(m).text) for m in candidate]
    estimate = Estimate([behaviours[m.id].minutes for m in candidate])
    write_workspace(out, level, planted, reports, estimate, difficulty)
    leaks = find_leaks(out, candidate, catalog.operator_names()) + narration_leaks(planted, candidate, difficulty)
    if leaks:  # a leak is our defect, not the user's: fail loudly
        raise RuntimeError("the workspace would leak its answers: " + "; ".join(leaks[:5]))

    hunks = planted_hunks(candidate)
    key = {
        "level": level.name,
        "seed": seed,
        "difficulty": difficulty,
        "workspace": str(out.resolve()),
        "bugs": [
            {
                "bug_class": m.bug_class,
                "mutant_id": m.id,
                "operator": m.operator,
                "variant": m.variant,
                "file": m.file,
                "qualname": m.qualname,
                "diff": m.diff,
                "hunks": hunks[m.id],
                "killing_tests": sorted(draw.solo[m.id].failed()),
                "symptom": symptom_of(m).text,
                "measured": behaviours[m.id].measures(),
            }
            for m in candidate
        ],
        "minutes": estimate.total,
        "buggy_outcomes": draw.together.outcomes,
        "visible_tests": sorted(t for t in draw.together.outcomes if _is_visible(t, suite)),
        "probe_tests": sorted(t for t in draw.together.outcomes if _is_probe(t, suite)),
        "tests": suite.tests,
    }
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_text(json.dumps(key, indent=1, sort_keys=True), encoding="utf-8")
    return key_path


def _first_valid_draw(validation: Validation, seed, bugs, log):
    """The seed's first draw that validates and whose bugs behave as their symptoms say (see
    Validation.judge), with its validation record."""
    eligible_mutants = eligible(validation.mutants, validation.difficulty)
    for attempt, candidate in enumerate(draws(eligible_mutants, validation.names, seed, bugs)):
        if attempt == MAX_DRAWS:
            raise UserError(f"no valid draw in {MAX_DRAWS} tries for seed {seed}")
        label = ", ".join(f"{m.bug_class}/{m.variant}" for m in candidate)
        if not compatible(candidate):
            log(f"rejected draw {attempt + 1} ({label}): two bugs change the same lines")
            continue
        draw = Draw(candidate, solo=validation.solo)
        validate(draw, validation.grader, validation.visible, validation.probes, validation.judge)
        if draw.problem:
            log(f"rejected draw {attempt + 1} ({label}): {draw.problem}")
            continue
        log(f"accepted draw {attempt + 1} ({label})")
        return candidate, draw
    raise AssertionError("draws() is endless")


def drawable_classes(level, mutants, difficulty: str) -> list[str]:
    """The level's classes that have a variant this difficulty may draw (see symptoms.eligible)."""
    drawn = {m.bug_class for m in eligible(mutants, difficulty)}
    return [c.name for c in level.classes if c.name in drawn]


def _is_probe(node_id: str, suite: Suite) -> bool:
    return node_id.split("::")[0] in suite.probes


def _is_visible(node_id: str, suite: Suite) -> bool:
    return node_id.split("::")[0] in suite.visible


def find_key(workspace: Path) -> Path:
    """The newest key under .mutator/keys/ that was written for this workspace."""
    keys = sorted(Path(".mutator", "keys").glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in keys:
        if json.loads(path.read_text(encoding="utf-8")).get("workspace") == str(workspace.resolve()):
            return path
    raise UserError(f"no key for {workspace} under .mutator/keys/; pass --key FILE")


@dataclass
class Grade:
    fixed: dict[str, list[str]]  # bug class -> its tests still failing in isolation (empty when fixed)
    collateral: list[str]  # tests that passed on the buggy code and fail now
    failing: list[str]  # every test failing now
    reasons: dict[str, str]  # test -> why it fails now
    bug_reasons: dict[str, dict[str, str]]  # bug class -> test -> why it fails with that bug isolated

    @property
    def solved(self) -> bool:
        return not self.failing


def check(workspace: Path, key_path: Path | None = None) -> Grade:
    """Grade an attempt: every test as it stands, and each bug on its own.

    Tests often fail for several bugs at once, so a bug is judged in isolation: the other bugs' planted
    lines that are still in the attempt are put back to clean, and the bug's own killing tests run on
    that tree. Failing ones mean it is still there.
    """
    workspace = Path(workspace)
    if not (workspace / "nanochat").is_dir():
        raise UserError(f"{workspace} is not a challenge workspace (no nanochat/ in it)")
    key_path = Path(key_path) if key_path else find_key(workspace)
    try:
        key = json.loads(key_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read the key {key_path}: {error}") from error
    code, tests = read_tree(workspace, "nanochat"), key["tests"]
    overall = run_tests({**code, **tests}, TEST_PATHS)
    # A bug none of whose tests fail is fixed; the others are run in isolation to be sure.
    suspects = [bug for bug in key["bugs"] if overall.failed(set(bug["killing_tests"]))]
    jobs = []
    for bug in suspects:
        others = [hunk for other in key["bugs"] if other is not bug for hunk in other["hunks"]]
        jobs.append(({**revert_present(code, others), **tests}, bug["killing_tests"]))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(lambda job: run_tests(*job), jobs))
    isolated = {bug["bug_class"]: outcomes for bug, outcomes in zip(suspects, results, strict=True)}
    fixed = {bug["bug_class"]: [] for bug in key["bugs"]}
    fixed.update({bug_class: sorted(outcomes.failed()) for bug_class, outcomes in isolated.items()})
    passed_before = {t for t, o in key["buggy_outcomes"].items() if o == "passed"}
    bug_reasons = {bug_class: outcomes.reasons for bug_class, outcomes in isolated.items()}
    return Grade(fixed, sorted(overall.failed(passed_before)), sorted(overall.failed()), overall.reasons, bug_reasons)


def revert(workspace: Path, key_path: Path, bug_classes=None) -> None:
    """Undo planted bugs in a workspace from its key (all of them, or those of `bug_classes`)."""
    key = json.loads(Path(key_path).read_text(encoding="utf-8"))
    chosen = [b for b in key["bugs"] if bug_classes is None or b["bug_class"] in bug_classes]
    hunks = [hunk for bug in chosen for hunk in bug["hunks"]]
    paths = {hunk["file"] for hunk in hunks}
    files = {path: (Path(workspace) / path).read_text(encoding="utf-8") for path in paths}
    for path, text in unplant(files, hunks).items():
        (Path(workspace) / path).write_text(text, encoding="utf-8")
