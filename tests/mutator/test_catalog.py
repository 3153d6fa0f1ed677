"""The catalogue: level 3 on the bundled nanochat (the seed's five bugs among its mutants), the
loader's validation, and the properties every generated mutant must have."""

import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from mutator import catalog
from mutator.errors import UserError
from mutator.mutants import Mutant, function_source
from mutator.operators import Mutation

LEVEL3 = catalog.CATALOG_DIRS[0] / "level3.toml"
ROTARY = "import torch\n\n\ndef rope(base, d):\n    return 1.0 / (base ** (torch.arange(0, d, 2) / d))\n"

# The seed notebook's bugs: the function each one is in, what that function then says (in this order),
# and what it no longer says.
SEED_BUGS = {
    "rotary-exponent": (
        "GPT._precompute_rotary_embeddings",
        ["inv_freq = 1.0 / (base ** (channel_range / (head_dim * 2)))"],
        "(channel_range / head_dim)",
    ),
    "kv-position-layer": ("KVCache.insert_kv", ["if layer_idx == 0:", "self.pos = t1"], "- 1:"),
    "gqa-predicate": ("CausalSelfAttention.forward", ["enable_gqa = self.n_head == self.n_kv_head"], "!="),
    "kv-reset-growth": ("KVCache.reset", ["self.pos = 0"], "self.kv_cache = None"),
    "tool-token-order": (
        "Engine._advance_tool_state",
        ["forced_tokens.append(output_end)", "forced_tokens.extend(", "forced_tokens.append(output_start)"],
        None,
    ),
}


@pytest.fixture(scope="module")
def mutants():
    return catalog.generate_mutants("3", catalog.default_target())


def test_level3_plants_every_class_in_several_variants(mutants):
    assert len(mutants) >= 20
    level = catalog.load_level("3")
    variants = {c.name: {m.variant for m in mutants if m.bug_class == c.name} for c in level.classes}
    assert all(len(names) >= 2 for names in variants.values()), variants


def test_the_seed_bugs_are_the_canonical_mutants(mutants):
    canonical = {m.bug_class: m for m in mutants if m.canonical}
    assert Counter(m.bug_class for m in mutants if m.canonical) == Counter(list(SEED_BUGS))
    for bug_class, (qualname, in_order, gone) in SEED_BUGS.items():
        mutant = canonical[bug_class]
        assert mutant.qualname == qualname
        source = function_source(mutant.mutated, qualname)
        positions = [source.find(snippet) for snippet in in_order]
        assert -1 not in positions and positions == sorted(positions), source
        assert gone is None or gone not in source


def test_every_mutant_is_well_formed(mutants, assert_well_formed):
    fields = ("operator", "variant", "qualname", "start_line", "end_line")
    for mutant in mutants:
        assert_well_formed(mutant.original, Mutation(**{f: getattr(mutant, f) for f in fields}, code=mutant.mutated))


def test_ids_are_stable_and_order_deterministic(mutants):
    again = catalog.generate_mutants("3", catalog.default_target())
    assert [m.id for m in again] == [m.id for m in mutants]
    assert len({m.id for m in mutants}) == len(mutants)
    keys = [(m.file, m.start_line, m.bug_class, m.variant) for m in mutants]
    assert keys == sorted(keys)


def test_equivalent_duplicates_are_collapsed(tmp_path):
    level = catalog.load_level("3")
    rotary = next(c for c in level.classes if c.name == "rotary-exponent")
    twice = replace(level, classes=(rotary, replace(rotary, name="rotary-again")))
    (tmp_path / "gpt.py").write_text(ROTARY, encoding="utf-8")
    mutants = catalog.generate_mutants(twice, tmp_path)
    assert len(mutants) == 4  # the second class plants the same four mutants: they are collapsed
    assert len({m.bug_class for m in mutants}) == 1


def test_same_ast_is_one_mutant_and_the_original_is_none():
    original = "x = a != b\n"

    def mutant(variant, mutated, canonical=False):
        return Mutant("c", "op", variant, "f.py", "", 1, 1, original, mutated, canonical)

    kept = catalog._collapse_equivalent(
        [
            mutant("a", "x = a == b\n"),
            mutant("b", "x = (a == b)  # same tree\n", canonical=True),  # kept over "a": it is canonical
            mutant("c", "x = (a != b)\n"),  # the original's tree: not a mutant
            mutant("d", "x = b == a\n"),
        ],
        {"f.py": original},
    )
    assert [m.variant for m in kept] == ["b", "d"]


def _tree(root, relatives, text=None):
    for relative in relatives:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text or ROTARY, encoding="utf-8")


def test_every_python_file_is_a_target_but_tests_and_build_outputs(tmp_path):
    _tree(
        tmp_path, ("pkg/rope.py", "gpt.py", "build/lib/gpt.py", ".venv/gpt.py", "tests/test_gpt.py", "pkg/conftest.py")
    )
    files = {m.file for m in catalog.generate_mutants("3", tmp_path)}
    assert files == {"gpt.py", "pkg/rope.py"}


def test_include_and_exclude_narrow_the_files(tmp_path):
    _tree(tmp_path, ("model/rope.py", "model/extra.py", "scripts/train.py"))
    scope = catalog.target_scope(tmp_path, include=["model/*"], exclude=["*/extra.py"])
    assert {m.file for m in catalog.generate_mutants("3", tmp_path, scope)} == {"model/rope.py"}


def test_the_targets_pyproject_narrows_unless_the_command_line_does(tmp_path):
    _tree(tmp_path, ("model/rope.py", "scripts/train.py"))
    (tmp_path / "pyproject.toml").write_text('[tool.mutator]\ninclude = ["model/*"]\n', encoding="utf-8")
    assert {m.file for m in catalog.generate_mutants("3", tmp_path)} == {"model/rope.py"}
    scope = catalog.target_scope(tmp_path, include=["scripts/*"])
    assert {m.file for m in catalog.generate_mutants("3", tmp_path, scope)} == {"scripts/train.py"}


@pytest.mark.parametrize(
    "table, message",
    [
        ('[tool.mutator]\ninclde = ["x"]\n', r"tool\.mutator\.inclde: unknown key"),
        ("[tool.mutator]\ninclude = 3\n", "must be"),
    ],
)
def test_a_bad_tool_mutator_table_is_one_line(tmp_path, table, message):
    (tmp_path / "pyproject.toml").write_text(table, encoding="utf-8")
    with pytest.raises(UserError, match=message) as error:
        catalog.target_scope(tmp_path)
    assert "\n" not in str(error.value)


def test_classes_without_sites_are_named(tmp_path):
    _tree(tmp_path, ("rope.py",))
    mutants = catalog.generate_mutants("3", tmp_path)
    missing = catalog.classes_without_sites("3", mutants)
    assert "rotary-exponent" not in missing
    assert {"kv-position-layer", "gqa-predicate", "tool-token-order"} <= set(missing)


def test_a_place_belongs_to_one_class(mutants):
    places = {}
    for mutant in catalog.generate_mutants("all", catalog.default_target()):
        places.setdefault(catalog._place(mutant), set()).add(mutant.bug_class)
    assert all(len(classes) == 1 for classes in places.values()), places
    # and two classes may plant on one line, at different places of it (a GQA flag and a mask flag)
    gpt = (catalog.default_target() / "nanochat" / "gpt.py").read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(gpt, 1) if "is_causal=True, enable_gqa=" in text)
    on_that_line = {m.bug_class for m in mutants if m.file == "nanochat/gpt.py" and m.start_line == line}
    assert on_that_line == {"gqa-predicate", "attention-mask"}


def test_a_place_two_classes_plant_stays_with_the_first(tmp_path):
    level = catalog.load_level("3")
    rotary = next(c for c in level.classes if c.name == "rotary-exponent")
    twice = replace(level, classes=(rotary, replace(rotary, name="rotary-again", canonical=None)))
    (tmp_path / "rope.py").write_text(ROTARY, encoding="utf-8")
    assert {m.bug_class for m in catalog.generate_mutants(twice, tmp_path)} == {"rotary-exponent"}


def test_canonical_is_recognised_by_its_site_not_by_variant_alone(tmp_path):
    # the canonical variant of the GQA class at a flag that compares something else is not the seed's bug
    (tmp_path / "attn.py").write_text(
        "def f(self):\n    enable_gqa = self.n_head != self.n_kv_head\n    use_gqa = self.n_kv_heads < self.n_heads\n",
        encoding="utf-8",
    )
    found = [m for m in catalog.generate_mutants("3", tmp_path) if m.variant == "flag-inverted"]
    assert [(m.start_line, m.canonical) for m in found] == [(2, True), (3, False)]


def test_a_target_file_that_does_not_parse_is_a_user_error(tmp_path):
    (tmp_path / "gpt.py").write_text("def broken(:\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"gpt\.py: does not parse"):
        catalog.generate_mutants("3", tmp_path)


def test_missing_target_and_unknown_level(tmp_path):
    with pytest.raises(UserError, match="target directory not found"):
        catalog.generate_mutants("3", tmp_path / "nowhere")
    with pytest.raises(UserError, match=r"unknown level '9' \(known: 1, 2, 3, 4, all\)"):
        catalog.load_level("9")


def test_all_levels():
    assert [level.name for level in catalog.select_levels("all")] == [level.name for level in catalog.levels()]
    assert "3" in [level.name for level in catalog.levels()]


# --- the loader: every problem names the file and the field ---


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "level3.toml"
    text = LEVEL3.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


OPS = 'operators = ["exponent-scaling"]'


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('[level]\nname = "3"', '[level]\nname = "3"\ncolour = "red"', r"level\.colour: unknown key"),
        ('title = "Architecture & Performance"\n', "", r"level\.title: missing"),
        ('hint = "Work out', 'tip = "Work out', r"classes\[0\]\.tip: unknown key"),
        (
            'operators = ["exponent-scaling"]',
            'operators = ["exponent-scalin"]',
            r"classes\[0\]\.operators\[0\]: unknown operator",
        ),
        (OPS, OPS + '\nfiles = ["/abs/gpt.py"]', r"classes\[0\]\.files\[0\]: bad pattern"),
        (OPS, OPS + '\nfiles = ["**/[gpt.py"]', r"classes\[0\]\.files\[0\]: bad pattern"),
        (OPS, OPS + '\nfunctions = ["a/b"]', r"classes\[0\]\.functions\[0\]: bad pattern"),
        (OPS, OPS + "\nfunctions = []", r"classes\[0\]\.functions: must be a non-empty list"),
        ('site = "inv_freq', 'sight = "inv_freq', r"classes\[0\]\.canonical\.sight: unknown key"),
        (
            'variant = "denominator-x2"',
            'variant = "denominator-x3"',
            r"classes\[0\]\.canonical\.variant: .* not a variant",
        ),
        ('name = "kv-position-layer"', 'name = "rotary-exponent"', r"classes\[1\]\.name: 'rotary-exponent' names two"),
        ('name = "3"', "name = 3", r"level\.name: must be a non-empty string"),
        ("\n[level]\n", "\n[level\n", r"cannot read"),
    ],
)
def test_loader_rejects(tmp_path, old, new, message):
    path = _broken(tmp_path, old, new)
    with pytest.raises(UserError, match=message) as error:
        catalog.read_level(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_the_catalogue_is_found_and_loads():
    level = catalog.read_level(LEVEL3)
    assert [c.name for c in level.classes if c.canonical] == list(SEED_BUGS)
    assert all(c.title and c.symptom and c.hint for c in level.classes)


def test_an_unknown_top_level_key_is_rejected(tmp_path):
    path = tmp_path / "level9.toml"
    shutil.copy(LEVEL3, path)
    path.write_text("extra = 1\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(UserError, match=r"level9\.toml: extra: unknown key"):
        catalog.read_level(path)
