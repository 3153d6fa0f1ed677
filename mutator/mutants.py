"""A mutant: one planted bug, as data. Operators make them; the store, runner and reports read them.

A mutant carries the whole source of the one file it changes, before and after, so that applying it
needs nothing but the target directory, and its id is a hash of what it changes (stable across runs
and machines for the same code).
"""

import ast
import difflib
import hashlib
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from mutator.errors import UserError

# Never copied into a mutated tree: caches and VCS data that tests do not need.
COPY_IGNORED = ("__pycache__", "*.pyc", ".git", ".mutator", ".pytest_cache", ".ruff_cache", ".tox", ".venv")


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


def summary(mutant: Mutant) -> dict:
    """The mutant without its file contents: what `mutator list --json` prints."""
    return {key: value for key, value in mutant.to_dict().items() if key not in ("original", "mutated")}


def write_mutated_copy(mutant: Mutant, target: Path, out: Path) -> Path:
    """Copy the tree at `target` to `out` (new or empty) with the mutant applied; returns the mutated file.

    The target itself is never modified.
    """
    target, out = Path(target).resolve(), Path(out).resolve()
    check_output_dir(out, target)
    source = target / mutant.file
    if not source.is_file() or source.read_text(encoding="utf-8") != mutant.original:
        raise UserError(f"{source} is not the file mutant {mutant.id} was made from")
    shutil.copytree(target, out, symlinks=True, ignore=shutil.ignore_patterns(*COPY_IGNORED), dirs_exist_ok=True)
    mutated = out / mutant.file
    mutated.write_text(mutant.mutated, encoding="utf-8")
    return mutated


def check_output_dir(out: Path, target: Path):
    """A mutated copy goes to a new or empty directory outside the target."""
    out, target = Path(out).resolve(), Path(target).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"output directory exists and is not empty: {out}")
    if out.is_relative_to(target):
        raise UserError(f"output directory must be outside the target: {out}")


def function_source(source: str, qualname: str) -> str | None:
    """The source text of the function or method `qualname` in `source` (the outermost one for a nested
    name such as `A.f.<locals>.g`), or None if there is none."""
    node = ast.parse(source)
    for name in qualname.split(".<locals>.")[0].split("."):
        node = next((n for n in getattr(node, "body", []) if getattr(n, "name", None) == name), None)
        if node is None:
            return None
    return ast.get_source_segment(source, node)
