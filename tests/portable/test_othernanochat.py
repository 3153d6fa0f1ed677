"""The portable oracles pass on a second nanochat of our own making.

tests/nanochat under -m "not project_extras" must judge only the public nanochat API (DESIGN.md). The
fixture othernanochat/ implements that API from scratch and takes the other reasonable choice wherever
the API leaves a detail open (see its package docstring). The suite runs in a fresh interpreter with the
fixture first on sys.path, and must pass on it, as a user's clean nanochat would.
"""

import os
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent / "othernanochat"
ORACLES = Path(__file__).parents[1] / "nanochat"
ROOT = Path(__file__).parents[2]

# An editable install of this project maps every nanochat.* name to the bundled package, so a module
# the fixture lacks (nanochat.tools) would be imported from there instead of failing. The child drops
# that finder: it sees only the fixture, as a user's environment without the bundled nanochat would.
RUN_PYTEST = """
import sys
import pytest
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.exit(pytest.main(sys.argv[1:]))
"""


def run_suite(tmp_path, *pytest_args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(FIXTURE), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-c", RUN_PYTEST, "-p", "no:cacheprovider", "--rootdir", str(ROOT)]
    command += ["-c", str(ROOT / "pyproject.toml"), *pytest_args]
    # run from an empty directory: the repository's own nanochat/ must not be importable from the cwd
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


PROBE = """
import importlib.util

import nanochat
import nanochat.engine


def test_the_child_imports_the_fixture():
    assert nanochat.IMPLEMENTATION == "othernanochat"
    assert importlib.util.find_spec("nanochat.tools") is None  # the bundled nanochat's module is out of reach
"""


def test_portable_oracles_pass_on_othernanochat(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    done = run_suite(tmp_path, str(probe), str(ORACLES), "-m", "not project_extras", "-q")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary


def test_project_extras_do_not_pass_on_othernanochat(tmp_path):
    # guards the fixture: it really differs from the bundled nanochat in the details the extras pin
    done = run_suite(tmp_path, str(ORACLES / "test_kv_cache.py"), "-m", "project_extras", "-q")
    assert done.returncode == 1, done.stdout[-3000:]
    assert "failed" in done.stdout.strip().splitlines()[-1]
