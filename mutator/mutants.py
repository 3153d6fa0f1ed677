"""A mutant: one planted bug, as data. Operators make them; the store, runner and reports read them.

A mutant carries the whole source of the one file it changes, before and after, so that applying it
needs nothing but the target directory, and its id is a hash of what it changes (stable across runs
and machines for the same code).
"""

import difflib
import hashlib
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Mutant:
    bug_class: str  # catalogue name of the bug class, e.g. "rotary-exponent"
    operator: str  # operator name, e.g. "exponent-scaling"
    variant: str  # e.g. "denominator-x2"
    file: str  # posix path relative to the target root, e.g. "nanochat/gpt.py"
    qualname: str  # enclosing function, e.g. "GPT._precompute_rotary_embeddings"; "" at module level
    start_line: int  # 1-based, inclusive, in the original file
    end_line: int
    original: str  # the whole file before
    mutated: str  # the whole file after
    canonical: bool = False  # the level's seed bug, reproduced exactly

    @property
    def id(self) -> str:
        digest = hashlib.sha256()
        for part in (self.operator, self.variant, self.file, self.qualname, self.original, self.mutated):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()[:12]

    @property
    def location(self) -> str:
        where = f"{self.file}:{self.start_line}"
        return f"{where} ({self.qualname})" if self.qualname else where

    @property
    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.original.splitlines(keepends=True),
                self.mutated.splitlines(keepends=True),
                fromfile=f"a/{self.file}",
                tofile=f"b/{self.file}",
            )
        )

    def to_dict(self) -> dict:
        return {"id": self.id, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "Mutant":
        fields = {k: v for k, v in data.items() if k != "id"}
        return cls(**fields)
