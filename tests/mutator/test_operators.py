"""The operators on their own: examples round-trip, every spelling is found, negatives plant nothing,
and every mutation compiles and changes only its own lines."""

import re
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from mutator.operators import OPERATORS

SPELLINGS = Path(__file__).parent / "fixtures" / "spellings"


def _examples():
    for operator in OPERATORS.values():
        for i, example in enumerate(operator.examples()):
            yield pytest.param(operator, example, id=f"{operator.name}-{i}-{example.variant}")


def _spellings():
    for operator in OPERATORS.values():
        folder = SPELLINGS / operator.name.replace("-", "_")
        for path in sorted(folder.glob("*.py")):
            yield pytest.param(operator, path, id=f"{operator.name}-{path.stem}")


def expected_variants(operator, source: str) -> set[str]:
    """What a fixture's docstring promises: "Expected: all", "all but x", "nothing", or a list."""
    promise = re.search(r"Expected: ([^\n\"]+)", source)[1].strip()
    if promise == "nothing":
        return set()
    if promise.startswith("all"):
        excluded = {v.strip() for v in promise.removeprefix("all").removeprefix(" but").split(",") if v.strip()}
        return set(operator.variants) - excluded
    return {v.strip() for v in promise.split(",")}


@pytest.mark.parametrize("operator, example", list(_examples()))
def test_examples_round_trip(operator, example, assert_well_formed):
    mutations = [
        mu for mu in operator.mutations(example.before, "example.py") if fnmatchcase(mu.variant, example.variant)
    ]
    if example.after is None:
        assert mutations == []
    else:
        assert example.after in [mu.code for mu in mutations]
    for mu in mutations:
        assert_well_formed(example.before, mu)


def test_every_operator_documents_every_variant():
    for operator in OPERATORS.values():
        shown = {ex.variant for ex in operator.examples() if ex.after is not None}
        assert all(any(fnmatchcase(v, pattern) for v in shown) for pattern in operator.variants), operator.name
        assert any(ex.after is None for ex in operator.examples()), f"{operator.name} has no negative example"


@pytest.mark.parametrize("operator, path", list(_spellings()))
def test_spellings(operator, path, assert_well_formed):
    source = path.read_text(encoding="utf-8")
    mutations = list(operator.mutations(source, path.name))
    assert {mu.variant for mu in mutations} == expected_variants(operator, source)
    for mu in mutations:
        assert_well_formed(source, mu)


def test_every_operator_has_positive_and_negative_spellings():
    for operator in OPERATORS.values():
        promises = [
            expected_variants(operator, p.read_text(encoding="utf-8"))
            for p in (SPELLINGS / operator.name.replace("-", "_")).glob("*.py")
        ]
        assert sum(bool(p) for p in promises) >= 3, f"{operator.name}: fewer than 3 positive spellings"
        assert any(not p for p in promises), f"{operator.name}: no negative spelling"


def test_qualname_and_span():
    source = (
        "import torch\n"
        "\n"
        "class Engine:\n"
        "    @torch.inference_mode()\n"
        "    def generate(self):\n"
        "        def step(q):\n"
        "            q.append(out_start)\n"
        "            q.extend(ids)\n"
        "            q.append(out_end)\n"
    )
    (mutation,) = OPERATORS["swapped-token-order"].mutations(source, "engine.py")
    assert mutation.qualname == "Engine.generate.<locals>.step"  # Python's own __qualname__
    assert (mutation.start_line, mutation.end_line) == (7, 9)


def test_decorated_functions_are_mutated():
    source = "@torch.inference_mode()\ndef f(self):\n    enable_gqa = a != b\n    return sdpa(enable_gqa=enable_gqa)\n"
    (mutation,) = [mu for mu in OPERATORS["head-sharing"].mutations(source, "x.py") if mu.variant == "flag-inverted"]
    assert "enable_gqa = a == b" in mutation.code
    assert mutation.code.startswith("@torch.inference_mode()\n")


def test_comments_and_formatting_are_kept():
    source = (
        "class KVCache:\n"
        "  def reset(self):\n"
        "    # forget the position\n"
        "    self.pos   =   0  # odd spacing stays\n"
        "\n"
        "    self.kv_cache = None\n"
    )
    drop_cache = [mu for mu in OPERATORS["missing-reset"].mutations(source, "x.py") if mu.variant == "drop-kv_cache"]
    assert drop_cache[0].code == source.replace("\n    self.kv_cache = None\n", "")
