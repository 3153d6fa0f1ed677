"""The `mutator` command line. Each command parses its options and hands over to one module."""

import click

from mutator import __version__
from mutator.errors import UserError

NOT_YET = "not implemented yet"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mutator")
def main():
    """Mutation testing for transformer code.

    Plants whole LLM bug classes (rotary exponent, KV-cache position, GQA predicate, cache reset and
    growth, tool token order) into nanochat-shaped code and measures which ones a test suite kills.
    """


@main.command()
def levels():
    """List the bug-class levels in the catalogue (mutant counts are for the bundled nanochat)."""
    from rich.table import Table

    from mutator import catalog

    table = Table("level", "title", "bug classes", "mutants")
    for level in catalog.levels():
        try:
            count = str(len(catalog.generate_mutants(level, catalog.default_target())))
        except UserError:  # no bundled code to count on: the catalogue is still worth listing
            count = "-"
        table.add_row(level.name, level.title, ", ".join(c.name for c in level.classes), count)
    _table_console().print(table)


TARGET_HELP = "Root of the code to mutate (default: the bundled nanochat)."


def _table_console():
    """A console for tables: rows are not wrapped when the output goes to a file or a pipe."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200)


def _mutants(level, target):
    from mutator import catalog

    return catalog.generate_mutants(level, target or catalog.default_target())


def _find_mutant(mutant_id, target):
    """The mutant with this id (or unique id prefix) among every level's mutants of the target."""
    from mutator import catalog

    matches = [m for m in _mutants(catalog.ALL, target) if m.id.startswith(mutant_id.lower())]
    if len({m.id for m in matches}) > 1:
        raise UserError(f"mutant id '{mutant_id}' is ambiguous: {', '.join(sorted({m.id for m in matches}))}")
    if not matches or not mutant_id:
        raise UserError(f"no mutant with id '{mutant_id}' in {target or catalog.default_target()} (see `mutator list`)")
    return matches[0]


@main.command(name="list")
@click.option("--level", required=True, help="Catalogue level, e.g. 3 (or all).")
@click.option("--target", type=click.Path(), help=TARGET_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_mutants(level, target, as_json):
    """List every mutant a level plants into the target."""
    import json

    from rich.table import Table

    from mutator.mutants import summary

    mutants = _mutants(level, target)
    if as_json:
        click.echo(json.dumps([summary(m) for m in mutants], indent=1))
        return
    table = Table("id", "class", "variant", "location", "", title=f"level {level}: {len(mutants)} mutants")
    for m in mutants:
        table.add_row(m.id, m.bug_class, m.variant, m.location, "canonical" if m.canonical else "")
    _table_console().print(table)


@main.command()
@click.argument("mutant_id")
@click.option("--target", type=click.Path(), help=TARGET_HELP)
def show(mutant_id, target):
    """Print one mutant's diff."""
    mutant = _find_mutant(mutant_id, target)
    canonical = " (the seed's canonical bug)" if mutant.canonical else ""
    click.echo(f"# {mutant.id}: {mutant.bug_class} / {mutant.operator} / {mutant.variant}{canonical}")
    click.echo(f"# {mutant.location}, lines {mutant.start_line}-{mutant.end_line}")
    click.echo(mutant.diff, nl=False)


@main.command()
@click.argument("mutant_id")
@click.option("--target", type=click.Path(), help=TARGET_HELP)
@click.option("--out", type=click.Path(), required=True, help="Directory to write the mutated copy to (new or empty).")
def apply(mutant_id, target, out):
    """Write a mutated copy of the target (never modifies it in place)."""
    from mutator import catalog
    from mutator.mutants import check_output_dir, write_mutated_copy

    check_output_dir(out, target or catalog.default_target())  # before the slower search for the mutant
    mutant = _find_mutant(mutant_id, target)
    written = write_mutated_copy(mutant, target or catalog.default_target(), out)
    click.echo(f"{mutant.id} ({mutant.bug_class} / {mutant.variant}) -> {written}")


@main.command()
def run():
    """Run the test suite against every mutant of a level and report the kill matrix."""
    raise click.ClickException(NOT_YET)


@main.command()
def report():
    """Re-render the reports of the last run from the session store."""
    raise click.ClickException(NOT_YET)


@main.command()
@click.option("--level", required=True, help="Catalogue level, e.g. 3.")
@click.option("--seed", type=int, default=None, help="Seed of the draw: the same seed gives the same workspace.")
@click.option("--out", type=click.Path(file_okay=False), help="Directory to write the workspace to (new or empty).")
@click.option("--bugs", type=click.IntRange(min=1), default=None, help="Plant this many bug classes (default: all).")
@click.option("--key", "key_path", type=click.Path(dir_okay=False), help="Where to keep the answer key.")
@click.option("--target", type=click.Path(exists=True, file_okay=False), help="Root of the clean code.")
@click.option("--count", "count_only", is_flag=True, help="Only print how many distinct draws the level has.")
@click.option("-v", "--verbose", is_flag=True, help="Say which draws were rejected and why.")
def challenge(level, seed, out, bugs, key_path, target, count_only, verbose):
    """Write a fresh, validated bug-hunt workspace; its answer key is kept elsewhere.

    The key goes to .mutator/keys/ by default, never inside the workspace. Grade with `mutator check`.
    """
    from rich.console import Console

    from mutator import challenge as challenges

    console = Console(stderr=True)
    if count_only:
        click.echo(challenges.count(level, bugs, target=target))
        return
    if seed is None or out is None:
        raise UserError("--seed and --out are required (or use --count)")
    log = console.print if verbose else (lambda message: None)
    with console.status(f"drawing and validating level {level}, seed {seed}"):
        key = challenges.create(level, seed, out, bugs=bugs, key_path=key_path, target=target, log=log)
    console.print(f"wrote [bold]{out}[/] (open {out}/challenge.ipynb); answer key: {key}")


@main.command()
@click.argument("workspace", type=click.Path(exists=True, file_okay=False))
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False), help="The workspace's answer key.")
def check(workspace, key_path):
    """Grade a bug-hunt workspace against its answer key (exit 0 only when solved)."""
    from rich.console import Console
    from rich.table import Table

    from mutator import challenge as challenges

    console = Console()
    with console.status("running the visible and hidden tests"):
        grade = challenges.check(workspace, key_path)
    table = Table("bug class", "status", "still failing")
    for bug_class, failing in grade.fixed.items():
        status = "[red]not fixed[/]" if failing else "[green]fixed[/]"
        detail = f"{failing[0]}: {grade.reasons.get(failing[0], '')}" if failing else ""
        table.add_row(bug_class, status, detail)
    console.print(table)
    for test in grade.collateral:
        console.print(f"[red]broken[/] {test}: {grade.reasons.get(test, '')} (passed before your changes)")
    console.print("[green]solved[/]" if grade.solved else "[red]not solved yet[/]")
    raise SystemExit(0 if grade.solved else 1)


if __name__ == "__main__":
    main()
