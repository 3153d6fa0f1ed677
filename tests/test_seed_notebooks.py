"""The two seed notebooks run unchanged, cell by cell, against nanochat.

They fix the public API nanochat must offer. They are kept as text exports: markdown, then a line
`In [None]:` that opens a code cell, which runs until the next `## ` heading, the next `In [None]:`,
or the end of the file. The notebooks live beside the repository, in ../shared/seeds.
"""

import contextlib
import io
import sys
from pathlib import Path

import pytest
import torch

SEEDS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"
BUG_HUNT = "000_6991c4db5da27619.txt"  # "Nanochat Bug Hunt: Architecture & Performance"
LEVEL3 = "002_09559480ed3328c6.txt"  # "Level 3: Architecture & Performance" (acceptance)
SEED = 0  # see tests/test_level3.py: with it the acceptance notebook's generation runs its 30 tokens


def code_cells(text):
    cells, current = [], None
    for line in text.splitlines():
        if line.startswith("In [None]:"):
            if current is not None:
                cells.append("\n".join(current))
            current = []
        elif line.startswith("## "):
            if current is not None:
                cells.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    if current is not None:
        cells.append("\n".join(current))
    return cells


def test_code_cells_parser():
    text = "# Title\nintro\nIn [None]:\na = 1\n\n## Heading\ntext\nIn [None]:\nb = 2\nIn [None]:\n# comment\nc = 3\n"
    assert code_cells(text) == ["a = 1\n", "b = 2", "# comment\nc = 3"]


def run_notebook(name, expected_cells, tmp_path, monkeypatch):
    """Exec every code cell of the notebook in one namespace; returns what each cell printed."""
    path = SEEDS_DIR / name
    if not path.exists():
        pytest.skip(f"seed notebook not found: {path} (the repository's sibling folder shared/seeds)")
    cells = code_cells(path.read_text(encoding="utf-8"))
    assert len(cells) == expected_cells, f"{name}: parsed {len(cells)} code cells, expected {expected_cells}"

    import matplotlib

    matplotlib.use("Agg")  # plt.show() draws nothing
    import matplotlib.pyplot as plt

    # The notebooks write .cache_* folders in the current directory, put it on sys.path and set
    # NANOCHAT_BASE_DIR: all of that is undone after the test.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("NANOCHAT_BASE_DIR", str(tmp_path / "unused"))
    torch.manual_seed(SEED)
    namespace = {"__name__": "__main__"}
    printed = []
    try:
        for number, cell in enumerate(cells, start=1):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(cell, f"{name}:cell{number}", "exec"), namespace)
            printed.append(out.getvalue())
    finally:
        plt.close("all")
    return printed


def test_bug_hunt_notebook_runs(tmp_path, monkeypatch):
    printed = run_notebook(BUG_HUNT, 10, tmp_path, monkeypatch)
    # its probes print their findings; some print a "bug detected" line on clean code by design
    # (the MQA cell compares two constant expressions), so only running to the end is asserted
    assert "Congratulations" in printed[-1]


def test_level3_notebook_passes(tmp_path, monkeypatch):
    printed = run_notebook(LEVEL3, 7, tmp_path, monkeypatch)
    everything = "".join(printed)
    failures = [line for line in everything.splitlines() if "❌" in line or "✗" in line]
    assert failures == [], failures
    for number in (1, 2, 3, 5):
        assert f"✓ Test {number} passed" in everything
    if torch.cuda.is_available():
        assert "✓ Test 4 passed" in everything
    else:
        assert "⊘ Test 4 skipped (requires CUDA)" in everything
