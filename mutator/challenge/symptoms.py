"""What each planted variant does as a user sees it, checked against what validation observed.

A bug's behaviour is measured on its own: which visible tests and probes detect it, whether those
raise an exception (a crash) or report wrong values (silent), and whether a hidden oracle is all that
sees it. Each variant's entry in variant_symptoms declares its kind and says what goes wrong; validation
rejects a draw whose bug behaves otherwise, so that the README never describes another variant.

Kinds: `silent` (no detecting check raises), `raises` (some do), `crashes` (every one does), `hidden` (no
visible test or probe detects it, so validation never accepts it, and no difficulty draws it). Higher
difficulties prefer silent bugs: `hard` draws silent variants only (a class without one falls back to
variants that raise in some checks), `medium` never draws a variant that crashes everywhere.
"""

import fnmatch
import re
from dataclasses import dataclass
from functools import cache

from mutator.challenge.variant_symptoms import SYMPTOMS

KINDS = ("silent", "raises", "crashes", "hidden")
ALLOWED = {"easy": ("silent", "raises", "crashes"), "medium": ("silent", "raises"), "hard": ("silent",)}
FALLBACK = {"easy": ALLOWED["easy"], "medium": ALLOWED["medium"], "hard": ("silent", "raises")}

# A failure line that names an exception other than a failed assertion (pytest's reasons keep the
# phase in front when it was not the test itself); a probe reports the exception it caught as "raised".
EXCEPTION = re.compile(r"^(?:setup: |teardown: )?([\w.]*(?:Error|Exception|Interrupt)|StopIteration)\b")

# Minutes a solver needs for one bug, by how it shows up, and extra for one that few checks see.
MINUTES = {"crashes": 10, "raises": 20, "silent": 30, "hidden": 30}
FEW_CHECKS, FEW_CHECKS_MINUTES = 2, 10
HIDDEN_ONLY_MINUTES = 20


def raised(reason: str) -> bool:
    found = EXCEPTION.match(reason)
    return (found is not None and found.group(1).rsplit(".", 1)[-1] != "AssertionError") or ": raised " in reason


@dataclass
class Behaviour:
    """What validation saw of one bug alone: the detecting tests of each kind, and those that raised."""

    visible: set[str]
    probes: set[str]
    hidden: set[str]
    raised: set[str]  # among visible and probes

    @property
    def checks(self) -> set[str]:
        return self.visible | self.probes

    @property
    def kind(self) -> str:
        if not self.checks:
            return "hidden"
        if not self.raised:
            return "silent"
        return "crashes" if self.raised >= self.checks else "raises"

    @property
    def hidden_only(self) -> bool:
        return bool(self.hidden) and not self.checks

    @property
    def minutes(self) -> int:
        minutes = MINUTES[self.kind]
        if len(self.checks) <= FEW_CHECKS:
            minutes += FEW_CHECKS_MINUTES
        return minutes + (HIDDEN_ONLY_MINUTES if self.hidden_only else 0)

    def measures(self) -> dict:
        """What the key records as the bug's measured difficulty."""
        return {
            "kind": self.kind,
            "visible_tests_detecting": len(self.visible),
            "probes_detecting": len(self.probes),
            "hidden_tests_detecting": len(self.hidden),
            "hidden_only": self.hidden_only,
            "minutes": self.minutes,
        }


def observe(outcomes, visible: set[str], probes: set[str]) -> Behaviour:
    """The behaviour of one bug from its solo Outcomes (see grading)."""
    failed = outcomes.failed() - {"<run>"}
    checks = failed & (visible | probes)
    return Behaviour(
        visible=failed & visible,
        probes=failed & probes,
        hidden=failed - visible - probes,
        raised={t for t in checks if raised(outcomes.reasons.get(t, ""))},
    )


@dataclass(frozen=True)
class Symptom:
    bug_class: str
    variants: tuple[str, ...]  # globs on the variant
    functions: tuple[str, ...]  # globs on the qualname of the site; empty: any
    site: str  # text of a clean line the mutant changes; empty: any
    kind: str
    text: str

    def matches(self, mutant) -> bool:
        if mutant.bug_class != self.bug_class or not any(fnmatch.fnmatchcase(mutant.variant, v) for v in self.variants):
            return False
        if self.functions and not any(fnmatch.fnmatchcase(mutant.qualname or "", f) for f in self.functions):
            return False
        removed = [line for line in mutant.diff.splitlines() if line.startswith("-") and not line.startswith("---")]
        return not self.site or any(self.site in line for line in removed)


@cache
def table() -> tuple[Symptom, ...]:
    entries = []
    for entry in SYMPTOMS:
        assert entry["kind"] in KINDS, entry
        entries.append(
            Symptom(
                entry["class"],
                tuple(entry["variants"]),
                tuple(entry.get("functions", ())),
                entry.get("site", ""),
                entry["kind"],
                entry["text"],
            )
        )
    return tuple(entries)


def symptom_of(mutant) -> Symptom | None:
    """The first entry of the table that describes this mutant's variant at its site."""
    return next((symptom for symptom in table() if symptom.matches(mutant)), None)


def eligible(mutants, difficulty: str):
    """The mutants a draw at this difficulty may plant: of the kinds it allows, per class (see FALLBACK)."""
    described = [m for m in mutants if symptom_of(m) is not None]
    chosen = []
    for bug_class in dict.fromkeys(m.bug_class for m in described):
        group = [m for m in described if m.bug_class == bug_class]
        preferred = [m for m in group if symptom_of(m).kind in ALLOWED[difficulty]]
        chosen += preferred or [m for m in group if symptom_of(m).kind in FALLBACK[difficulty]]
    return chosen


def mismatch(mutant, behaviour: Behaviour) -> str:
    """Why the mutant's symptom text is not true of what was observed; empty when it is."""
    symptom = symptom_of(mutant)
    if symptom is None:
        return f"{mutant.bug_class} ({mutant.variant}) has no symptom text"
    if symptom.kind != behaviour.kind:
        return f"{mutant.bug_class} ({mutant.variant}) is described as {symptom.kind} but {behaviour.kind}"
    return ""
