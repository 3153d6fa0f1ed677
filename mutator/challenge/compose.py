"""Drawing a challenge's bugs and planting several of them into one tree.

A draw is one mutant per chosen bug class, picked by a seeded RNG among every site and variant of that
class. Several mutants may change the same file as long as they touch different lines: each mutant is
reduced to its changed line ranges (difflib opcodes), and the ranges are applied bottom-up.

No two bugs of a draw share a pattern (same_pattern): finding one must not give the other away.
"""

import difflib
import itertools
import random
import re
from collections import defaultdict

from mutator.mutants import Mutant


def changed_ranges(mutant: Mutant) -> list[tuple[int, int, list[str]]]:
    """(first, last_exclusive, new_lines) ranges, 0-based over the original file's lines."""
    before = mutant.original.splitlines(keepends=True)
    after = mutant.mutated.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    return [(i1, i2, after[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def compatible(mutants: list[Mutant]) -> bool:
    """True when no two mutants change the same or adjacent lines of one file."""
    by_file = defaultdict(list)
    for mutant in mutants:
        by_file[mutant.file].extend((i1, i2) for i1, i2, _ in changed_ranges(mutant))
    for spans in by_file.values():
        spans.sort()
        if any(next_start <= end for (_, end), (next_start, _) in itertools.pairwise(spans)):
            return False
    return True


def plant(mutants: list[Mutant]) -> dict[str, str]:
    """Relative path -> source with every given mutant applied (the mutants must be compatible)."""
    assert compatible(mutants), "mutants overlap"
    edits = defaultdict(list)
    originals = {}
    for mutant in mutants:
        originals[mutant.file] = mutant.original
        edits[mutant.file].extend(changed_ranges(mutant))
    planted = {}
    for path, original in originals.items():
        lines = original.splitlines(keepends=True)
        for i1, i2, new_lines in sorted(edits[path], reverse=True):  # bottom-up keeps indices valid
            lines[i1:i2] = new_lines
        planted[path] = "".join(lines)
    return planted


def by_class(mutants: list[Mutant], classes: list[str]) -> dict[str, list[Mutant]]:
    grouped = {name: [] for name in classes}
    for mutant in mutants:
        if mutant.bug_class in grouped:
            grouped[mutant.bug_class].append(mutant)
    return grouped


def family(variant: str) -> str:
    """The kind of change a variant makes, without the site it names: its last word, where every scaling
    by a constant (x10, x100, div10, half) is one family."""
    last = variant.rsplit("-", 1)[-1]
    return "scale" if re.fullmatch(r"x\d+|div\d+|half", last) else last


def same_pattern(a: Mutant, b: Mutant) -> bool:
    # either is enough: two classes may plant a "* 100" through different operators
    return a.operator == b.operator or family(a.variant) == family(b.variant)


def varied(mutants: list[Mutant]) -> bool:
    return not any(same_pattern(a, b) for a, b in itertools.combinations(mutants, 2))


MAX_RETRIES = 1000  # draws in a row with no pattern-distinct pick before the classes are deemed exhausted


def draws(mutants: list[Mutant], classes: list[str], seed: int, bugs: int):
    """An endless, seed-determined stream of candidate draws: lists of one mutant per drawn class.

    The caller validates each candidate and takes the first that passes.
    """
    grouped = by_class(mutants, classes)
    available = sorted(name for name, group in grouped.items() if group)
    if bugs > len(available):
        raise ValueError(f"asked for {bugs} bugs but only {len(available)} classes have mutants")
    rng = random.Random(f"mutator-challenge:{seed}")
    retries = 0
    while True:
        chosen, picked = sorted(rng.sample(available, bugs)), []
        for name in chosen:  # each class picks among the mutants whose pattern no earlier pick has
            options = [m for m in grouped[name] if not any(same_pattern(m, p) for p in picked)]
            if not options:
                break
            picked.append(rng.choice(options))
        if len(picked) == bugs:
            retries = 0
            yield picked
            continue
        retries += 1
        if retries == MAX_RETRIES:
            raise ValueError(f"no {bugs} bugs of distinct patterns can be drawn from these classes")


def count_combinations(mutants: list[Mutant], classes: list[str], bugs: int) -> int:
    """How many different draws exist (before validation): one mutant from each of `bugs` classes, no two
    of one pattern."""
    groups = [group for group in by_class(mutants, classes).values() if group]
    subsets = itertools.combinations(groups, bugs)
    return sum(varied(list(pick)) for subset in subsets for pick in itertools.product(*subset))


def planted_hunks(mutants: list[Mutant]) -> dict[str, list[dict]]:
    """Mutant id -> its hunks as they sit in the planted files: where each starts, clean and planted text.

    Positions account for the other mutants planted above it in the same file, so a hunk can be
    reverted by position even when its planted text also appears elsewhere (a swap of two lines).
    """
    edits = defaultdict(list)
    for mutant in mutants:
        before = mutant.original.splitlines(keepends=True)
        for i1, i2, new_lines in changed_ranges(mutant):
            edits[mutant.file].append((i1, i2, new_lines, mutant.id, "".join(before[i1:i2])))
    hunks = defaultdict(list)
    for path, file_edits in edits.items():
        shift = 0
        for i1, i2, new_lines, mutant_id, clean in sorted(file_edits):
            hunks[mutant_id].append({"file": path, "line": i1 + shift, "clean": clean, "planted": "".join(new_lines)})
            shift += len(new_lines) - (i2 - i1)
    return dict(hunks)


def unplant(files: dict[str, str], hunks: list[dict]) -> dict[str, str]:
    """Revert hunks (from planted_hunks) in the given files; bottom-up so positions stay valid."""
    files = dict(files)
    for hunk in sorted(hunks, key=lambda h: (h["file"], h["line"]), reverse=True):
        lines = files[hunk["file"]].splitlines(keepends=True)
        planted = hunk["planted"].splitlines(keepends=True)
        start = hunk["line"]
        if lines[start : start + len(planted)] != planted:
            raise ValueError(f"{hunk['file']}:{start + 1} no longer holds the planted lines")
        lines[start : start + len(planted)] = hunk["clean"].splitlines(keepends=True)
        files[hunk["file"]] = "".join(lines)
    return files


def revert_present(files: dict[str, str], hunks: list[dict]) -> dict[str, str]:
    """Revert those hunks an edited tree still holds: at their position, else where their text is unique.

    Hunks that were edited away (fixed, or rewritten) are left alone.
    """
    files = dict(files)
    for hunk in sorted(hunks, key=lambda h: (h["file"], h["line"]), reverse=True):
        if hunk["file"] not in files:
            continue
        lines = files[hunk["file"]].splitlines(keepends=True)
        planted, clean = hunk["planted"].splitlines(keepends=True), hunk["clean"].splitlines(keepends=True)
        start = hunk["line"]
        if lines[start : start + len(planted)] != planted:
            starts = [i for i in range(len(lines)) if lines[i : i + len(planted)] == planted]
            if len(starts) != 1 or not planted:
                continue
            start = starts[0]
        lines[start : start + len(planted)] = clean
        files[hunk["file"]] = "".join(lines)
    return files
