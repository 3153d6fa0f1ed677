"""Level 4 on the bundled nanochat: every class planted in several variants under --level all (so none
loses its places to a class of levels 1-3), each with the public reports it models."""

import re

from mutator import catalog


def test_level4_has_ten_classes_with_reports():
    level = catalog.load_level("4")
    assert len(level.classes) >= 10
    for bug_class in level.classes:
        assert bug_class.reports, f"{bug_class.name} names no public report"
        assert all(re.fullmatch(r"[\w./-]+ #\d+", report) for report in bug_class.reports), bug_class.reports


def test_level_all_plants_every_level4_class_in_three_variants():
    assert [lvl.name for lvl in catalog.select_levels("all")][:4] == ["1", "2", "3", "4"]
    everything = catalog.generate_mutants("all", catalog.default_target())
    level = catalog.load_level("4")
    variants = {c.name: {m.variant for m in everything if m.bug_class == c.name} for c in level.classes}
    assert all(len(names) >= 3 for names in variants.values()), variants
