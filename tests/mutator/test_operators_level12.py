"""Levels 1 and 2 on the bundled nanochat: every class planted in several variants where the code has the
sites, each class's canonical bug is the one the level names, every mutant is well formed, and the
challenge assets probe every class without naming an answer.

The operators' own examples and spelling fixtures run in test_operators.py with the level-3 ones.
"""

import re

import pytest

from mutator import catalog
from mutator.challenge.workspace import CODE_WORDS, probe_cells, template
from mutator.mutants import function_source
from mutator.operators import Mutation

# class -> (function the canonical bug is in, what that function then says, what it no longer says)
CANONICAL = {
    "bos-missing": (
        "RustBPETokenizer.encode",
        ["return self.enc.encode_ordinary(text) + after", "[ids + after for ids in"],
        "before +",
    ),
    "token-dtype": ("make_batch", ["targets.view(B, T).to(device=device, dtype=torch.int32)"], None),
    "target-shift": ("make_batch", ["inputs = tokens[:-1]", "targets = tokens[:-1]"], "tokens[1:]"),
    "grad-accum-normalisation": ("accumulate_gradients", ["loss = model(inputs, targets)"], "/ grad_accum_steps"),
    "lr-warmup": ("get_lr_multiplier", ["warmup_iters = round(warmup_ratio * num_iterations * 100)"], None),
    "optimizer-groups": ("GPT.setup_optimizers", ["AdamW(matrix_params,", "Muon(adam_groups,"], None),
    "sft-mask": ("apply_loss_mask", ["targets[predicted != 0] = -1"], "predicted == 0"),
}


@pytest.fixture(scope="module")
def mutants():
    return {level: catalog.generate_mutants(level, catalog.default_target()) for level in ("1", "2")}


def test_the_levels_are_listed_in_order():
    assert [level.name for level in catalog.levels()] == ["1", "2", "3", "4"]
    assert [c.name for c in catalog.load_level("1").classes] == ["bos-missing", "token-dtype", "target-shift"]
    assert [c.name for c in catalog.load_level("2").classes] == [
        "grad-accum-normalisation",
        "lr-warmup",
        "optimizer-groups",
        "sft-mask",
    ]


@pytest.mark.parametrize("level", ["1", "2"])
def test_every_class_is_planted_in_several_variants(mutants, level):
    for bug_class in catalog.load_level(level).classes:
        variants = {m.variant for m in mutants[level] if m.bug_class == bug_class.name}
        assert len(variants) >= 3, (bug_class.name, variants)


@pytest.mark.parametrize("level", ["1", "2"])
def test_the_canonical_bugs(mutants, level):
    names = [c.name for c in catalog.load_level(level).classes]
    canonical = [m for m in mutants[level] if m.canonical]
    assert sorted(m.bug_class for m in canonical) == sorted(names)  # exactly one per class
    for mutant in canonical:
        qualname, in_order, gone = CANONICAL[mutant.bug_class]
        assert mutant.qualname == qualname
        source = function_source(mutant.mutated, qualname)
        positions = [source.find(snippet) for snippet in in_order]
        assert -1 not in positions and positions == sorted(positions), source
        assert gone is None or gone not in source


@pytest.mark.parametrize("level", ["1", "2"])
def test_every_mutant_is_well_formed_and_distinct(mutants, level, assert_well_formed):
    fields = ("operator", "variant", "qualname", "start_line", "end_line")
    for mutant in mutants[level]:
        assert_well_formed(mutant.original, Mutation(**{f: getattr(mutant, f) for f in fields}, code=mutant.mutated))
    assert len({m.id for m in mutants[level]}) == len(mutants[level])


@pytest.mark.parametrize("level", ["1", "2"])
def test_challenge_assets_probe_every_class_and_name_no_answer(level):
    cells = probe_cells(level)
    assert list(cells) == ["setup", *[c.name for c in catalog.load_level(level).classes]]
    setup = cells["setup"]
    assert setup.index("sys.path.insert(0, str(Path.cwd()))") < setup.index("nanochat")  # the workspace's copy
    for name, code in cells.items():
        compile(code, f"level{level}_probes.py:{name}", "exec")
    # the leak scan's words, checked here where a failure is cheap
    forbidden = re.compile(r"\b(" + "|".join(map(re.escape, (*CODE_WORDS, *catalog.operator_names()))) + r")\b", re.I)
    for name in (f"test_level{level}.py", f"level{level}_probes.py"):
        assert not forbidden.findall(template(name)), name
