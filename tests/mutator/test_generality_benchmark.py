"""The generality benchmark's matching rule and totals, on a tiny in-memory example (no download)."""

import importlib.util
import tomllib
from pathlib import Path
from types import SimpleNamespace

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("generality_benchmark", BENCHMARKS / "generality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = load_benchmark()


def mutant(bug_class, file, start, end=None, variant="v"):
    return SimpleNamespace(
        bug_class=bug_class,
        file=file,
        start_line=start,
        end_line=end or start,
        variant=variant,
        qualname="f",
        operator="op",
        original="",
    )


SITES = [
    gen.Site("rotary-exponent", "model.py", "rope", 10, 10),  # hit
    gen.Site("rotary-exponent", "model.py", "rope", 20, 20),  # missed
    gen.Site("gqa-predicate", "attn.py", "Attention.forward", 5, 7),  # hit by a span overlapping its end
    gen.Site("attention-mask", "attn.py", "Attention.forward", 30, 30),  # only a wrong-class mutant touches it
]
MUTANTS = [
    mutant("rotary-exponent", "model.py", 10),  # hit
    mutant("rotary-exponent", "model.py", 10, variant="other"),  # a second hit of the same site
    mutant("rotary-exponent", "attn.py", 10),  # right line, wrong file: a false positive
    mutant("gqa-predicate", "attn.py", 7, 9),  # overlaps [5, 7]: hit
    mutant("gqa-predicate", "attn.py", 29, 31),  # overlaps the attention-mask site: wrong class
]


def test_hits_misses_and_false_positives():
    results = gen.match(SITES, MUTANTS, classes=["rotary-exponent", "gqa-predicate", "attention-mask", "sft-mask"])
    assert list(results) == ["rotary-exponent", "gqa-predicate", "attention-mask", "sft-mask"]

    rotary = results["rotary-exponent"]
    assert [s.line for s in rotary.found] == [10]
    assert [s.line for s in rotary.missed] == [20]
    assert (rotary.mutants, rotary.hits) == (3, 2)
    assert [(mu.file, others) for mu, others in rotary.false_positives] == [("attn.py", [])]

    gqa = results["gqa-predicate"]
    assert [s.line for s in gqa.found] == [5] and not gqa.missed
    assert (gqa.mutants, gqa.hits) == (2, 1)
    assert [(mu.start_line, others) for mu, others in gqa.false_positives] == [(29, ["attention-mask"])]

    mask = results["attention-mask"]
    assert not mask.found and [s.line for s in mask.missed] == [30] and mask.mutants == 0

    assert results["sft-mask"].labelled == [] and results["sft-mask"].mutants == 0


def test_totals():
    summary = gen.totals({"tiny": gen.match(SITES, MUTANTS)})
    overall = summary["overall"]
    assert (overall["labelled"], overall["found"], overall["mutants"], overall["hits"]) == (4, 2, 5, 3)
    assert overall["recall"] == 0.5 and overall["precision"] == 0.6
    assert summary["per_class"]["rotary-exponent"]["recall"] == 0.5
    assert summary["per_class"]["attention-mask"]["precision"] is None  # no mutants: undefined, not 0
    assert summary["never_found"] == [{"codebase": "tiny", "class": "attention-mask", "labelled": 1}]


def test_sites_file_is_well_formed():
    codebases = gen.load_codebases(BENCHMARKS / "generality_sites.toml")
    assert len(codebases) >= 6
    raw = tomllib.loads((BENCHMARKS / "generality_sites.toml").read_text(encoding="utf-8"))
    assert len(raw["codebases"]) == len(codebases)
    for codebase in codebases:
        assert codebase.sites and codebase.archive in ("sdist", "wheel") and "==" in codebase.requirement
        assert not {s.bug_class for s in codebase.sites} & set(codebase.absent), codebase.name


def test_cached_archive_picks_the_pinned_release(tmp_path):
    for name in ("litgpt-0.5.12.tar.gz", "litgpt-0.5.13.tar.gz", "litgpt-0.5.13-py3-none-any.whl"):
        (tmp_path / name).write_text("")
    assert gen.cached_archive(tmp_path, "litgpt==0.5.13", "sdist").name == "litgpt-0.5.13.tar.gz"
    assert gen.cached_archive(tmp_path, "litgpt==0.5.13", "wheel").name == "litgpt-0.5.13-py3-none-any.whl"
    assert gen.cached_archive(tmp_path, "litgpt==0.5.1", "sdist") is None
    assert gen.cached_archive(tmp_path / "absent", "litgpt==0.5.13", "sdist") is None


def test_a_codebase_can_give_pip_download_its_own_arguments_and_environment(tmp_path, monkeypatch):
    sites = tmp_path / "sites.toml"
    sites.write_text(
        'levels = ["3"]\n[[codebases]]\nname = "fa"\nrequirement = "flash-attn==2.8.3"\narchive = "sdist"\n'
        'root = "flash_attn-2.8.3/flash_attn"\npip_args = ["--no-build-isolation"]\n'
        'pip_env = { FLASH_ATTENTION_SKIP_CUDA_BUILD = "TRUE" }\n'
    )
    (codebase,) = gen.load_codebases(sites)
    calls = []

    def fake_pip(command, env, **kwargs):  # what pip would leave: the sdist in the download directory
        calls.append((command, env))
        Path(command[command.index("-d") + 1], "flash_attn-2.8.3.tar.gz").write_bytes(b"")
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    monkeypatch.setattr(gen.subprocess, "run", fake_pip)
    assert gen.download(codebase, tmp_path / "cache", verbose=False).name == "flash_attn-2.8.3.tar.gz"
    ((command, env),) = calls
    assert "--no-build-isolation" in command and env["FLASH_ATTENTION_SKIP_CUDA_BUILD"] == "TRUE"
