"""Level 4 on the bundled nanochat: every class planted in several variants, each with the public
reports it models, and none of its places taken by a class of levels 1-3 under --level all."""

import re

import pytest

from mutator import catalog


@pytest.fixture(scope="module")
def level4_mutants():
    return catalog.generate_mutants("4", catalog.default_target())


def test_level4_has_ten_classes_with_reports():
    level = catalog.load_level("4")
    assert len(level.classes) >= 10
    for bug_class in level.classes:
        assert bug_class.reports, f"{bug_class.name} names no public report"
        assert all(re.fullmatch(r"[\w./-]+ #\d+", report) for report in bug_class.reports), bug_class.reports


def test_every_level4_class_plants_three_variants_in_nanochat(level4_mutants):
    level = catalog.load_level("4")
    variants = {c.name: {m.variant for m in level4_mutants if m.bug_class == c.name} for c in level.classes}
    assert all(len(names) >= 3 for names in variants.values()), variants


def test_level_all_includes_level4_and_keeps_its_places(level4_mutants):
    everything = catalog.generate_mutants("all", catalog.default_target())
    assert {lvl.name for lvl in catalog.select_levels("all")} >= {"1", "2", "3", "4"}
    assert {m.id for m in level4_mutants} <= {m.id for m in everything}
