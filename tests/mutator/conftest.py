"""Shared checks for the framework's tests (fixtures: test modules do not import each other)."""

import difflib
import io
import tokenize
from collections import Counter

import pytest


def comments(source: str) -> Counter:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return Counter(t.string for t in tokens if t.type == tokenize.COMMENT)


def assert_well_formed(original: str, mutation):
    """Compiles, differs from the original only within its line span, adds no comment."""
    compile(mutation.code, "<mutant>", "exec")
    assert mutation.code != original
    before, after = original.splitlines(), mutation.code.splitlines()
    start, end = mutation.start_line, mutation.end_line
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
        if tag == "insert":  # between original lines i1 and i1 + 1
            assert start - 1 <= i1 <= end, f"{mutation.variant}: inserted after line {i1}, span {start}-{end}"
        elif tag != "equal":  # original lines i1 + 1 .. i2 replaced or deleted
            assert start <= i1 + 1 and i2 <= end, f"{mutation.variant}: lines {i1 + 1}-{i2} changed, span {start}-{end}"
    assert not comments(mutation.code) - comments(original), "a comment was added"


@pytest.fixture(name="assert_well_formed")
def assert_well_formed_fixture():
    return assert_well_formed
