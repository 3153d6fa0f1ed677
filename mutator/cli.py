"""The `mutator` command line. Each command parses its options and hands over to one module."""

import click

from mutator import __version__

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
    """List the bug-class levels in the catalogue."""
    raise click.ClickException(NOT_YET)


@main.command(name="list")
@click.option("--level", required=True, help="Catalogue level, e.g. 3.")
@click.option("--target", type=click.Path(), default=".", show_default=True, help="Root of the code to mutate.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_mutants(level, target, as_json):
    """List every mutant a level plants into the target."""
    raise click.ClickException(NOT_YET)


@main.command()
@click.argument("mutant_id")
def show(mutant_id):
    """Print one mutant's diff."""
    raise click.ClickException(NOT_YET)


@main.command()
@click.argument("mutant_id")
def apply(mutant_id):
    """Write a mutated copy of the target (never modifies it in place)."""
    raise click.ClickException(NOT_YET)


@main.command()
def run():
    """Run the test suite against every mutant of a level and report the kill matrix."""
    raise click.ClickException(NOT_YET)


@main.command()
def report():
    """Re-render the reports of the last run from the session store."""
    raise click.ClickException(NOT_YET)


@main.command()
def challenge():
    """Write a fresh, validated bug-hunt workspace; its answer key is kept elsewhere."""
    raise click.ClickException(NOT_YET)


@main.command()
def check():
    """Grade a bug-hunt workspace against its answer key."""
    raise click.ClickException(NOT_YET)


if __name__ == "__main__":
    main()
