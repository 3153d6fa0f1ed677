"""The terminal report: kill matrix, scores per device, and the diffs a test author has to act on."""

from collections import Counter

from rich.console import Console
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from mutator.mutants import Mutant
from mutator.outcomes import (
    CRASHED,
    ERROR,
    KILLED,
    NO_COVERAGE,
    OUTCOMES,
    SURVIVED,
    TIMEOUT,
    Result,
    mutation_score,
    test_strength,
)
from mutator.reports.matrix import rows, short_test

STYLE = {
    SURVIVED: "bold red",
    NO_COVERAGE: "red",
    TIMEOUT: "yellow",
    CRASHED: "yellow",
    ERROR: "magenta",
    KILLED: "green",
}


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _cell(result: Result | None) -> Text:
    if result is None:
        return Text("not run", style="dim")
    text = Text(result.outcome.replace("_", " "), style=STYLE[result.outcome])
    if result.killing_test:
        text.append(" " + short_test(result.killing_test), style="dim")
    return text


def print_summary(console: Console, mutants: list[Mutant], results: list[Result], devices: list[str]) -> None:
    if not mutants:
        console.print("No mutants.")
        return
    table_rows = rows(mutants, results, devices)

    table = Table(title="Kill matrix", title_justify="left", show_lines=False)
    table.add_column("id", style="cyan", no_wrap=True)
    table.add_column("bug class")
    table.add_column("variant")
    table.add_column("location")
    for device in devices:
        table.add_column(device, overflow="fold")  # a killing test's node id is worth reading whole
    for row in table_rows:
        m = row.mutant
        variant = Text(m.variant)
        if m.canonical:
            variant.append(" (canonical)", style="dim")
        table.add_row(m.id, m.bug_class, variant, m.location, *(_cell(row.cells[d]) for d in devices))
    console.print(table)

    ids = {m.id for m in mutants}
    for device in devices:
        mine = [r for r in results if r.device == device and r.mutant_id in ids]
        counts = Counter(r.outcome for r in mine)
        tally = ", ".join(f"{counts[o]} {o.replace('_', ' ')}" for o in OUTCOMES if counts[o])
        console.print(
            f"[bold]{device}[/]: mutation score [bold]{_percent(mutation_score(mine))}[/], "
            f"test strength {_percent(test_strength(mine))} "
            f"({len(mine)} of {len(mutants)} mutants: {tally or 'none run'})"
        )

    # Survivors first (a test ran and missed it), then what no test even covers: both need a new test.
    for row in table_rows:
        for outcome in (SURVIVED, NO_COVERAGE):
            where = [d for d in devices if row.cells[d] is not None and row.cells[d].outcome == outcome]
            if where:
                what = f"{outcome.replace('_', ' ')} on {', '.join(where)}"
                title = f"{row.mutant.id} {what}: {row.mutant.location}"
                console.print(Rule(title, align="left", style=STYLE[outcome]))
                console.print(Syntax(row.mutant.diff, "diff", theme="ansi_dark", background_color="default"))
                break
