"""Level 3 on a real project's own suite: litgpt, its own tests, unmodified, on CPU and offline.

    python benchmarks/litgpt_suite.py              # prepare (once), then `mutator run --level 3`, then the matrix
    python benchmarks/litgpt_suite.py --check      # prepare, then only run the chosen tests with plain pytest
    python benchmarks/litgpt_suite.py --list       # prepare, then only `mutator list --level 3` on litgpt
    python benchmarks/litgpt_suite.py --prepare    # only download, unpack and install
    python benchmarks/litgpt_suite.py -- --workers 1 -v   # anything after `--` goes to `mutator run`

Everything lives in a cache outside the repository (MUTATOR_LITGPT_CACHE, default ~/.cache/mutator-litgpt);
no litgpt code is ever copied into this repository. Each step is skipped when its result is already there:

1. `pip download --no-deps --no-binary :all: litgpt==VERSION`: the sdist, which ships litgpt's tests/
   (but not its tests/conftest.py: tests that need that conftest's fixtures are left out, see SELECTION).
2. A virtual environment `<cache>/venv` with torch==2.13.0 (the local CPU build here), litgpt installed
   editable from the unpacked sdist with its `test` extra, the transformers release its `extra` pins (the
   chosen tests compare against Hugging Face's reference implementations), and mutator itself, editable.
3. `mutator run --level 3 --target <sdist> --tests <chosen files> --pytest-args "<selection>"`, with the
   Hugging Face hub switched to offline mode, and a per-class kill matrix printed from its JSON report.
"""

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tarfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LITGPT_VERSION = "0.5.13"  # the newest stable release on PyPI when this was written
TORCH = "torch==2.13.0"  # mutator's own pin
# litgpt's `extra` pins transformers>=4.51.3,<4.57; its tests import it at module level (test_rope,
# test_model, test_tokenizer, test_deepseek_moe, test_multihead_latent_attention compare against it).
TRANSFORMERS = "transformers>=4.51.3,<4.57"

# litgpt's own test modules, run as they ship. Each runs on CPU with no network; GPU-only tests skip
# themselves (litgpt's _RunIf(min_cuda_gpus=...) marks), the rest are left out below.
TESTS = [
    "tests/test_rope.py",  # build_rope_cache / apply_rope against HF's GPT-NeoX and Llama rotary code
    "tests/test_yarn.py",  # YaRN rope scaling against HF
    "tests/test_model.py",  # GPT against HF models (llama, gemma, qwen, phi, ...), KV cache, masks, GQA
    "tests/test_multihead_latent_attention.py",  # DeepSeek-style MLA, with and without KV cache
    "tests/test_deepseek_moe.py",  # DeepSeek MoE against HF
    "tests/test_generate_speculatively.py",  # speculative decoding over the KV cache
    "tests/test_chat.py",  # chat's streaming generate (only test_generate runs, see below)
    "tests/test_tokenizer.py",  # BOS/EOS handling and input validation (no hub tokenizers)
    "tests/test_prompts.py",  # prompt styles (the chat templates)
    "tests/test_config.py",  # config derivation (n_query_groups, rope_n_elem, ...)
]

# What is left out, as one -k expression (independent of the rootdir, unlike --deselect), and why:
EXCLUDED = {
    # needs the hub: AutoConfig.from_pretrained("stabilityai/stablelm-zephyr-3b", trust_remote_code=True)
    "test_against_original_stablelm_zephyr_3b": "downloads a config from the Hugging Face hub",
    # 11 s on 2 cores (a full-width gemma-3-1b embedding); the pythia-14m case checks the same thing
    "(test_rope_cache_length and gemma)": "slow (11 s); its pythia-14m twin stays",
    # snapshot_download of every model's tokenizer, with reruns_delay=120 on failure
    "test_tokenizer_against_hf": "downloads tokenizers from the hub (and reruns with a 120 s delay)",
    # need the `mock_tokenizer` / `fake_checkpoint_dir` fixtures of tests/conftest.py, which the sdist omits
    "test_default_prompt_style": "needs fixture mock_tokenizer (conftest.py is not in the sdist)",
    "test_sys_prompt": "needs fixture mock_tokenizer (conftest.py is not in the sdist); also _with_kwargs",
    "test_main": "needs fixture fake_checkpoint_dir (conftest.py is not in the sdist)",
    "test_merge_lora_if_needed": "needs fixture fake_checkpoint_dir (conftest.py is not in the sdist)",
    # run the `litgpt` console script in a subprocess: no mutant reaches it, and it is slow
    "test_cli": "runs the litgpt CLI in a subprocess (test_chat, test_generate_speculatively)",
    # auto_download_checkpoint("EleutherAI/pythia-14m")
    "test_decode": "downloads pythia-14m from the hub",
    "endtoend": "downloads pythia-14m from the hub (test_litgpt_chat_endtoend, test_litgpt_generate_endtoend)",
}
SELECTION = ["-k", " and ".join(f"not {name}" for name in EXCLUDED), "--color=no"]

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def log(message: str) -> None:
    print(f"[litgpt_suite] {message}", file=sys.stderr, flush=True)


def sh(args: list, **kwargs) -> subprocess.CompletedProcess:
    log("$ " + shlex.join(map(str, args)))
    return subprocess.run([str(a) for a in args], check=True, **kwargs)


def cache_dir() -> Path:
    return Path(os.environ.get("MUTATOR_LITGPT_CACHE", "~/.cache/mutator-litgpt")).expanduser().resolve()


def fetch_sdist(cache: Path) -> Path:
    """Download and unpack litgpt's sdist (once); return the unpacked project directory."""
    cache.mkdir(parents=True, exist_ok=True)
    project = cache / f"litgpt-{LITGPT_VERSION}"
    archive = cache / f"litgpt-{LITGPT_VERSION}.tar.gz"
    if (project / "pyproject.toml").is_file() and (project / "tests").is_dir():
        return project
    if not archive.is_file():
        sh(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"litgpt=={LITGPT_VERSION}",
                "-d",
                cache,
            ]
        )
    with tarfile.open(archive) as tar:
        extract = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(cache, **extract)
    if not (project / "tests").is_dir():
        raise SystemExit(f"{archive} did not unpack to {project} with a tests/ directory")
    return project


def venv_python(cache: Path) -> Path:
    return cache / "venv" / "bin" / "python"


def make_venv(cache: Path, project: Path) -> Path:
    """Create and fill <cache>/venv (once per install spec); return its bin directory."""
    python = venv_python(cache)
    if not python.exists():
        sh([sys.executable, "-m", "venv", cache / "venv"])
    # Reinstall when what is installed would change: the pins here, or mutator's own dependencies.
    spec = json.dumps(
        [
            TORCH,
            TRANSFORMERS,
            str(project),
            str(REPO),
            hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest(),
        ]
    )
    marker = cache / "venv" / ".litgpt-suite-installed"
    if marker.is_file() and marker.read_text() == spec:
        return python.parent
    pip = [python, "-m", "pip", "install"]
    started = time.perf_counter()
    sh([*pip, TORCH])  # first and alone, so that nothing below can pull another torch build
    sh([*pip, "-e", f"{project}[test]", TRANSFORMERS, TORCH])
    sh([*pip, "-e", REPO, TORCH])
    log(f"installed in {time.perf_counter() - started:.0f} s")
    marker.write_text(spec)
    return python.parent


def subprocess_env(bin_dir: Path) -> dict:
    env = {**os.environ, **OFFLINE}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)  # nothing from outside may shadow the venv's packages
    return env


def check(project: Path, bin_dir: Path) -> int:
    """The chosen tests under plain pytest: the pass count and time the mutation run starts from."""
    started = time.perf_counter()
    args = [bin_dir / "python", "-m", "pytest", *TESTS, *SELECTION, "-q", "-p", "no:cacheprovider", "-rfE"]
    code = subprocess.run([str(a) for a in args], cwd=project, env=subprocess_env(bin_dir)).returncode
    log(f"pytest exited {code} in {time.perf_counter() - started:.1f} s")
    return code


def mutator_help(bin_dir: Path, env: dict) -> str:
    done = subprocess.run([str(bin_dir / "mutator"), "run", "--help"], env=env, capture_output=True, text=True)
    return done.stdout


def run_mutator(cache: Path, project: Path, bin_dir: Path, extra: list[str]) -> int:
    env = subprocess_env(bin_dir)
    options = mutator_help(bin_dir, env)
    if "--pytest-args" not in options:
        raise SystemExit("this mutator's `run` has no --pytest-args (and so no way to pass the selection)")
    report = cache / "litgpt-level3.json"
    args = [bin_dir / "mutator", "run", "--level", "3", "--target", project]
    for test in TESTS:
        args += ["--tests", project / test]
    args += [f"--pytest-args={shlex.join(SELECTION)}", "--json", report, "--store", cache / "store", *extra]
    started = time.perf_counter()
    log("$ " + shlex.join(map(str, args)))
    code = subprocess.run([str(a) for a in args], cwd=cache, env=env).returncode
    log(f"mutator exited {code} in {time.perf_counter() - started:.1f} s")
    if report.is_file():
        print_matrix(json.loads(report.read_text()))
    return code


def print_matrix(report: dict) -> None:
    """Per bug class: mutants, outcomes and score; then every mutant the suite does not kill."""
    rows: dict[str, Counter] = defaultdict(Counter)
    missed = []
    for path, entry in sorted(report["files"].items()):
        source = entry["source"].splitlines()
        for mutant in entry["mutants"]:
            bug_class = mutant["description"].split(" in ", 1)[0]
            rows[bug_class][mutant["status"]] += 1
            if mutant["status"] in ("Survived", "NoCoverage"):
                line = mutant["location"]["start"]["line"]
                code = source[line - 1].strip() if line <= len(source) else ""
                missed.append((bug_class, mutant["status"], f"{path}:{line}", mutant["mutatorName"], code))
    statuses = ["Killed", "Timeout", "Survived", "NoCoverage", "CompileError", "Pending"]
    header = f"{'bug class':<18} {'mutants':>7} " + " ".join(f"{s:>12}" for s in statuses) + f" {'score':>7}"
    print("\nlitgpt's own suite against level 3\n" + header)
    total = Counter()
    for bug_class, counts in sorted(rows.items()):
        total.update(counts)
        print(_row(bug_class, counts, statuses))
    print(_row("all", total, statuses))
    if missed:
        print("\nnot killed:")
        for bug_class, status, where, name, code in missed:
            print(f"  {status:<10} {bug_class:<18} {where:<40} {name:<45} {code[:70]}")


def _row(name: str, counts: Counter, statuses: list[str]) -> str:
    valid = sum(counts[s] for s in ("Killed", "Timeout", "Survived", "NoCoverage"))
    detected = counts["Killed"] + counts["Timeout"]
    score = f"{100.0 * detected / valid:.1f}%" if valid else "-"
    cells = " ".join(f"{counts[s]:>12}" for s in statuses)
    return f"{name:<18} {sum(counts.values()):>7} {cells} {score:>7}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--prepare", action="store_true", help="only download, unpack and install")
    mode.add_argument("--check", action="store_true", help="only run the chosen tests with plain pytest")
    mode.add_argument("--list", action="store_true", help="only list the level-3 mutants planted in litgpt")
    mode.add_argument("--matrix", action="store_true", help="only print the matrix of the last run's JSON")
    parser.add_argument("extra", nargs="*", help="after `--`: more options for `mutator run`")
    options = parser.parse_args()
    cache = cache_dir()
    if options.matrix:
        print_matrix(json.loads((cache / "litgpt-level3.json").read_text()))
        return 0
    project = fetch_sdist(cache)
    bin_dir = make_venv(cache, project)
    if options.prepare:
        return 0
    if options.check:
        return check(project, bin_dir)
    if options.list:
        env = subprocess_env(bin_dir)
        return subprocess.run(
            [str(bin_dir / "mutator"), "list", "--level", "3", "--target", str(project)], cwd=cache, env=env
        ).returncode
    return run_mutator(cache, project, bin_dir, options.extra)


if __name__ == "__main__":
    sys.exit(main())
