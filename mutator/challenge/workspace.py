"""Writing a challenge workspace (code, tests, README, notebook) and scanning it for leaked answers.

A workspace holds the buggy code, the level's visible acceptance tests, a README and a notebook of
probes. It holds nothing that marks a bug: no comment, name or file that says where the bugs are, no
clean copy of a changed function, no git history, no answer key.
"""

import json
import re
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import nbformat

from mutator.challenge.narration import strip_narration
from mutator.challenge.symptoms import FEW_CHECKS, FEW_CHECKS_MINUTES, HIDDEN_ONLY_MINUTES, MINUTES
from mutator.mutants import Mutant, function_source

CONFTEST = '''"""Makes `import nanochat` load this workspace's copy, even where another nanochat is installed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
'''

# At the workspace root, so that `pytest` from any of its directories finds it, takes the root as rootdir
# and loads the root conftest: run from tests/ without it, an installed (clean) nanochat is imported.
PYTEST_INI = """[pytest]
testpaths = tests
pythonpath = .
"""

# What the workspace imports (nanochat, its tests) and what runs its notebook.
REQUIREMENTS = ("torch", "tiktoken", "rustbpe", "pytest", "nbclient", "ipykernel")


def requirements() -> str:
    """The workspace's requirements, pinned to the versions the workspace was validated with."""
    lines = []
    for name in REQUIREMENTS:
        try:  # a local build tag (2.13.0+cpu) names a wheel index, not a version pip can find anywhere
            lines.append(f"{name}=={metadata.version(name).split('+')[0]}")
        except metadata.PackageNotFoundError:
            lines.append(name)
    return "\n".join(lines) + "\n"


# Words that point at a planted change. Prose (README, notebook text) may talk about bugs in general;
# code and code cells may not mention them at all.
PROSE_WORDS = ("mutant", "mutants")
CODE_WORDS = (*PROSE_WORDS, "bug", "bugs", "buggy", "mutation", "mutated", "mutator")


def template(name: str) -> str:
    return resources.files("mutator.challenge").joinpath("templates", name).read_text(encoding="utf-8")


def probe_cells(level: str, difficulty: str = "easy") -> dict[str, str]:
    """Cell name -> code, from the level's percent-format probe template ("# %% name" starts a cell).

    Above `easy` a probe prints what a user would observe, not its diagnosis (the template's prints of
    internals are guarded by DIAGNOSE), and the cells carry no comments, which state what is expected.
    """
    parts = re.split(r"^# %% (\S+)\n", template(f"level{level}_probes.py"), flags=re.M)
    cells = {name: code.strip() + "\n" for name, code in zip(parts[1::2], parts[2::2], strict=True)}
    cells["setup"] = cells["setup"].replace("DIAGNOSE = True", f"DIAGNOSE = {difficulty == 'easy'}", 1)
    if difficulty != "easy":
        cells = {name: strip_narration(code) for name, code in cells.items()}
    return cells


PROBE_TESTS = """\"\"\"The notebook's probes as tests: each runs after the setup cell; every verdict must be OK.\"\"\"

import contextlib
import io
import json

import pytest

CELLS = json.loads({cells!r})


@pytest.mark.parametrize("name", [name for name in CELLS if name != "setup"])
def test_probe(name):
    namespace, printed = {{}}, io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(CELLS["setup"], "setup", "exec"), namespace)
        exec(compile(CELLS[name], name, "exec"), namespace)
    problems = [line for line in printed.getvalue().splitlines() if line.startswith("PROBLEM ")]
    assert not problems, " | ".join(problems)
"""


def probe_tests(level: str, difficulty: str) -> str:
    """A pytest module that runs the workspace's probes: how validation and `check` observe them."""
    return PROBE_TESTS.format(cells=json.dumps(probe_cells(level, difficulty)))


@dataclass
class Estimate:
    """The time a workspace should take: minutes per bug, from how validation saw it (see symptoms)."""

    minutes: list[int]

    @property
    def total(self) -> int:
        return sum(self.minutes)

    def how(self) -> str:
        rates = ", ".join(f"{MINUTES[kind]} for a bug that {kind}" for kind in ("crashes", "raises"))
        rates += f", {MINUTES['silent']} for a silent one"
        kinds = "silent (wrong values), raises (an error in some checks), or crashes (an error in every check)"
        return (
            f"the sum over the bugs of minutes set by how each bug showed up in the visible tests and probes"
            f" when this workspace was validated: {kinds}. {rates.capitalize()};"
            f" {FEW_CHECKS_MINUTES} more when at most {FEW_CHECKS} checks see it, {HIDDEN_ONLY_MINUTES} more when"
            f" only the further checks do. Here: {' + '.join(map(str, self.minutes))}."
        )


def _reports(reports) -> str:
    return "\n".join(f"- {text}" for _, text in reports)


def readme(level, reports, estimate: Estimate) -> str:
    """The workspace's README; `reports` are (mutant, symptom text) of the planted bugs."""
    return f"""# Level {level.name}: {level.title}

**Set up** (Python 3.11 or later), in this directory:
`python -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt`.
**Run the notebook:** open `challenge.ipynb` in Jupyter, or run it top to bottom with
`jupyter execute --inplace challenge.ipynb` and read the outputs. **Run the tests:** `pytest`.

**Objective.** This copy of nanochat has {len(reports)} planted bug(s). Find and fix them.
The code runs and produces plausible output; only careful checks reveal what is wrong.

**What users reported:**

{_reports(reports)}

**How to work.** Open `challenge.ipynb`: each probe measures one property of the model, engine or
tokenizer and prints `OK` or `PROBLEM`. Read the code the failing probes point at, fix it, and run the
probes again.

**Acceptance criteria.**
- `pytest tests/` passes.
- Every probe in `challenge.ipynb` prints `OK`.
- Further checks you cannot see are run by `mutator check <this directory>`: they pass too, and nothing
  that worked before breaks.

**Time estimate:** about {estimate.total} minutes: {estimate.how()}
"""


def notebook(level, reports, estimate: Estimate, difficulty: str) -> nbformat.NotebookNode:
    cells = probe_cells(level.name, difficulty)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell(readme(level, reports, estimate)))
    nb.cells.append(nbformat.v4.new_markdown_cell("## Setup\n\nA tiny model and tokenizer, built from this workspace."))
    nb.cells.append(nbformat.v4.new_code_cell(cells["setup"]))
    for cls in level.classes:  # every class of the level is probed, planted or not
        hint = f"\n\n*Hint:* {cls.hint}" if difficulty == "easy" else ""
        nb.cells.append(nbformat.v4.new_markdown_cell(f"## Probe: {cls.title}{hint}"))
        nb.cells.append(nbformat.v4.new_code_cell(cells[cls.name]))
    nb.cells.append(
        nbformat.v4.new_markdown_cell("## Done?\n\nWhen every probe prints `OK`, run `pytest tests/` in a terminal.")
    )
    for number, cell in enumerate(nb.cells):  # nbformat draws random ids; the same seed must give the same bytes
        cell.id = f"cell-{number}"
    return nb


def write_workspace(out: Path, level, code: dict[str, str], reports, estimate: Estimate, difficulty: str) -> None:
    """Write the workspace files under `out` (which must not exist or be empty)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        **code,
        "conftest.py": CONFTEST,
        "pytest.ini": PYTEST_INI,
        "requirements.txt": requirements(),
        f"tests/test_level{level.name}.py": template(f"test_level{level.name}.py"),
        "README.md": readme(level, reports, estimate),
    }
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    nbformat.write(notebook(level, reports, estimate, difficulty), out / "challenge.ipynb")


def find_leaks(out: Path, mutants: list[Mutant], operator_names: list[str]) -> list[str]:
    """Everything in the workspace that would give an answer away; empty when it is clean."""
    leaks = []
    if (out / ".git").exists():
        leaks.append(".git: version history")
    clean_functions = [
        (m, f) for m in mutants if m.qualname and (f := function_source(m.original, m.qualname)) is not None
    ]

    def words(*names):
        return re.compile(r"\b(" + "|".join(map(re.escape, (*names, *operator_names))) + r")\b", re.I)

    code_words, prose_words = words(*CODE_WORDS), words(*PROSE_WORDS)
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        relative = path.relative_to(out).as_posix()
        if path.suffix not in (".py", ".md", ".ipynb") and relative not in ("pytest.ini", "requirements.txt"):
            leaks.append(f"{relative}: unexpected file")
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            cells = nbformat.reads(text, as_version=4).cells
            parts = [(c.source, code_words if c.cell_type == "code" else prose_words) for c in cells]
        else:
            parts = [(text, code_words if path.suffix == ".py" else prose_words)]
        for part, pattern in parts:
            leaks.extend(f"{relative}: says {match.group(0)!r}" for match in pattern.finditer(part))
        for mutant in mutants:
            if text == mutant.original:
                leaks.append(f"{relative}: a clean copy of {mutant.file}")
        for mutant, function in clean_functions:
            if function in text:
                leaks.append(f"{relative}: a clean copy of {mutant.qualname}")
    return leaks
