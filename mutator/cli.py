"""The `mutator` command line. Each command parses its options and hands over to one module."""

import time

STARTED = time.perf_counter()  # the command's own wall time starts here, before its imports

import click  # noqa: E402

from mutator import __version__  # noqa: E402
from mutator.errors import UserError  # noqa: E402


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


def _scope_options(command):
    """--include / --exclude: the user's narrowing of which target files get mutants."""
    for option in reversed(
        [
            click.option("--include", multiple=True, metavar="GLOB", help="Mutate only files matching this glob."),
            click.option("--exclude", multiple=True, metavar="GLOB", help="Never mutate files matching this glob."),
        ]
    ):
        command = option(command)
    return command


def _mutants(level, target, include=(), exclude=()):
    """The level's mutants in the scope the user chose; classes that found no site are named on stderr
    (a level that plants nothing, silently, reads as a suite that kills everything)."""
    from mutator import catalog

    target = target or catalog.default_target()
    mutants = catalog.generate_mutants(level, target, catalog.target_scope(target, include, exclude))
    for lvl in [level] if isinstance(level, catalog.Level) else catalog.select_levels(level):
        for name in catalog.classes_without_sites(lvl, mutants):
            click.echo(f"level {lvl.name}: no site of class {name} in {target}", err=True)
    return mutants


def _cached_mutants(level, target, include, exclude, store_dir):
    """(the target's top-level packages in scope, a function that returns `_mutants`): the function takes
    them from the store's cache for every file whose bytes (and the generator: catalogue, operators) did
    not change since they were cached, so a re-run does no LibCST work there. Checks (the level, the
    scope) are made at once; the function can run later, while the baseline does."""
    import hashlib
    from pathlib import Path, PurePosixPath

    from mutator import catalog

    target = Path(target or catalog.default_target())
    levels = catalog.select_levels(level)  # an unknown level is an error before anything else
    if not Path(target).is_dir():
        raise UserError(f"target directory not found: {target}")
    scope = catalog.target_scope(target, include, exclude)
    files = [f for f in catalog.python_files(target) if scope.accepts(f)]

    def generate():
        from mutator.store import Store

        generator = hashlib.sha256(str(level).encode())  # and the code and data that make mutants:
        code = Path(catalog.__file__).parent
        for path in [*sorted(catalog.catalog_dir().glob("*.toml")), code / "catalog.py", code / "mutants.py"]:
            generator.update(path.name.encode() + b"\0" + path.read_bytes())
        for path in sorted((code / "operators").glob("*.py")):
            generator.update(path.name.encode() + b"\0" + path.read_bytes())
        mutants = []
        with Store(store_dir) as store:
            for file in files:
                data = (target / file).read_bytes()
                key = hashlib.sha256(f"{generator.hexdigest()}\0{file}\0".encode() + data).hexdigest()
                cached = store.cached_mutants(key)
                if cached is None:  # a glob that matches this one file only, brackets and stars escaped
                    only = catalog.Scope(include=("".join(f"[{c}]" if c in "*?[]" else c for c in file),))
                    cached = catalog.generate_mutants(level, target, only)
                    store.cache_mutants(key, cached)
                mutants += cached
        for lvl in levels:
            for name in catalog.classes_without_sites(lvl, mutants):
                click.echo(f"level {lvl.name}: no site of class {name} in {target}", err=True)
        return mutants

    return sorted({PurePosixPath(f).parts[0] for f in files}), generate


def _find_mutant(mutant_id, target, include=(), exclude=()):
    """The mutant with this id (or unique id prefix) among every level's mutants of the target."""
    from mutator import catalog

    target = target or catalog.default_target()
    scope = catalog.target_scope(target, include, exclude)
    everything = catalog.generate_mutants(catalog.ALL, target, scope)
    matches = [m for m in everything if m.id.startswith(mutant_id.lower())]
    if len({m.id for m in matches}) > 1:
        raise UserError(f"mutant id '{mutant_id}' is ambiguous: {', '.join(sorted({m.id for m in matches}))}")
    if not matches or not mutant_id:
        raise UserError(f"no mutant with id '{mutant_id}' in {target or catalog.default_target()} (see `mutator list`)")
    return matches[0]


@main.command(name="list")
@click.option("--level", required=True, help="Catalogue level, e.g. 3 (or all).")
@click.option("--target", type=click.Path(), help=TARGET_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_scope_options
def list_mutants(level, target, as_json, include, exclude):
    """List every mutant a level plants into the target."""
    import json

    from rich.table import Table

    from mutator.mutants import summary

    mutants = _mutants(level, target, include, exclude)
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
@_scope_options
def show(mutant_id, target, include, exclude):
    """Print one mutant's diff."""
    mutant = _find_mutant(mutant_id, target, include, exclude)
    canonical = " (the seed's canonical bug)" if mutant.canonical else ""
    click.echo(f"# {mutant.id}: {mutant.bug_class} / {mutant.operator} / {mutant.variant}{canonical}")
    click.echo(f"# {mutant.location}, lines {mutant.start_line}-{mutant.end_line}")
    click.echo(mutant.diff, nl=False)


@main.command()
@click.argument("mutant_id")
@click.option("--target", type=click.Path(), help=TARGET_HELP)
@click.option("--out", type=click.Path(), required=True, help="Directory to write the mutated copy to (new or empty).")
@_scope_options
def apply(mutant_id, target, out, include, exclude):
    """Write a mutated copy of the target (never modifies it in place)."""
    from mutator import catalog
    from mutator.mutants import check_output_dir, write_mutated_copy

    check_output_dir(out, target or catalog.default_target())  # before the slower search for the mutant
    mutant = _find_mutant(mutant_id, target, include, exclude)
    written = write_mutated_copy(mutant, target or catalog.default_target(), out)
    click.echo(f"{mutant.id} ({mutant.bug_class} / {mutant.variant}) -> {written}")


TIMEOUT_HELP = "A mutant times out after FACTOR x the baseline time of its tests + CONSTANT seconds."
MEMORY_HELP = "MB of address space a mutant's tests may add on CPU before they crash (0: no limit)."
ISO_HELP = "CPU: fork a child per mutant, or swap it in and out inside the worker (as on CUDA)."


def _report_options(command):
    for option in reversed(
        [
            click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write a Stryker JSON report."),
            click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Write a Stryker HTML report."),
            click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Write a JUnit XML report."),
            click.option(
                "--store",
                "store_dir",
                type=click.Path(file_okay=False),
                default=".mutator",
                show_default=True,
                help="Directory of the session store (resume, re-report).",
            ),
        ]
    ):
        command = option(command)
    return command


def _preflight(target=None, store_dir=None, **reports):
    """Check, before any slow work, what a run needs from the file system: the target exists, the store
    directory can be created or written, every report path can be written. Each failure is one line."""
    import os
    from pathlib import Path

    if target is not None and not Path(target).is_dir():
        raise UserError(f"target directory not found: {target}")
    if store_dir is not None:
        store = Path(store_dir)
        if store.exists() and not store.is_dir():
            raise UserError(f"--store {store_dir} is a file, not a directory")
        existing = next(p for p in [store, *store.absolute().parents] if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"--store {store_dir}: cannot write in {existing}")
    for option, path in reports.items():
        if not path:
            continue
        report, flag = Path(path), f"--{option.removesuffix('_path')}"
        parent = report.absolute().parent
        if report.is_dir():
            raise UserError(f"{flag} {path} is a directory, not a file")
        if not parent.is_dir():
            raise UserError(f"{flag} {path}: the directory {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK) or (report.exists() and not os.access(report, os.W_OK)):
            raise UserError(f"{flag} {path}: cannot write there")


def _write_reports(console, mutants, results, devices, target, json_path, html_path, junit_path):
    from mutator import reports

    reports.print_summary(console, mutants, results, devices)
    for path, write in ((json_path, reports.write_json), (html_path, reports.write_html)):
        if path:
            write(path, mutants, results, target)
            console.print(f"wrote {path}")
    if junit_path:
        reports.write_junit(junit_path, mutants, results)
        console.print(f"wrote {junit_path}")


EXECUTOR_HELP = "Where the mutants run: worker processes here, or Ray actors on a cluster (pip install 'mutator[ray]')."
RAY_CODE_HELP = (
    "Where the Ray nodes find the directory holding the target and its tests (a shared filesystem);"
    " default: shipped to them with the job."
)
SINCE_HELP = (
    "Pull-request mode: run only the mutants on lines changed since this git revision (and those whose"
    " tests changed); the others keep an earlier result or are not run."
)
PROGRESS_EVERY_S = 5.0  # without a terminal: a progress line this often, and every PROGRESS_EVERY_N results
PROGRESS_EVERY_N = 10


class _PlainProgress:
    """The progress bar's interface, as plain lines on stderr: one per phase, then one every few seconds
    (a thread, so a long baseline or mutant still shows a line) or every few results."""

    def __init__(self, console):
        import threading

        self.console = console
        self.description, self.total, self.done, self.shown = "starting", None, 0, 0
        self.started = time.perf_counter()
        self.stop = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True)

    def add_task(self, description, total=None):
        self.description, self.total = description, total
        return 0

    def update(self, task, description=None, advance=0, total=None):
        self.total = total if total is not None else self.total
        self.done += advance
        phase = description is not None and not advance and description != self.description
        self.description = description if description is not None else self.description
        if phase or (advance and (self.done - self.shown >= PROGRESS_EVERY_N or self.done == self.total)):
            self._line()

    def _line(self):
        self.shown = self.done
        of = f"/{self.total}" if self.total else ""
        elapsed = time.perf_counter() - self.started
        self.console.print(f"mutator: {self.done}{of} done, {self.description} ({elapsed:.0f} s)", highlight=False)

    def _tick(self):
        while not self.stop.wait(PROGRESS_EVERY_S):
            self._line()

    def __enter__(self):
        self.ticker.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()


TESTS_HELP = "A path of the pytest suite; repeat for several (default: TARGET/tests/nanochat or TARGET/tests)."
PYTEST_ARGS_HELP = "Arguments for every pytest run (-k, -m, -p, --deselect, the suite's options), shell-quoted."


@main.command()
@click.option("--level", required=True, help="Catalogue level, e.g. 3 (or all).")
@click.option("--target", type=click.Path(file_okay=False), help=TARGET_HELP)
@click.option("--tests", multiple=True, type=click.Path(), help=TESTS_HELP)
@click.option("--pytest-args", "pytest_args", default="", metavar="ARGS", help=PYTEST_ARGS_HELP + " Or: -- ARGS.")
@_scope_options
@click.option("--device", "devices", help="Comma list from cpu,cuda (default: cpu, plus cuda when torch sees one).")
@click.option("--workers", type=click.IntRange(min=1), help="Parallel CPU workers (default: the core count).")
@_report_options
@click.option("--fail-under", type=click.FloatRange(0, 100), help="Exit 1 when the mutation score (%) is below this.")
@click.option("--timeout-factor", type=click.FloatRange(min=0), default=3.0, show_default=True, help=TIMEOUT_HELP)
@click.option("--timeout-constant", type=click.FloatRange(min=0), default=5.0, show_default=True, help="See above.")
@click.option("--memory-limit", type=click.IntRange(min=0), default=4096, show_default=True, help=MEMORY_HELP)
@click.option("--isolation", type=click.Choice(["fork", "inprocess"]), default="fork", show_default=True, help=ISO_HELP)
@click.option("--since", metavar="REV", help=SINCE_HELP)
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True, help=EXECUTOR_HELP)
@click.option("--ray-address", metavar="ADDR", help="The Ray cluster (default: one `ray start` made here, else new).")
@click.option("--ray-code-path", metavar="PATH", help=RAY_CODE_HELP)
@click.option("-v", "--verbose", is_flag=True, help="Print each result as it is known.")
@click.argument("extra_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- PYTEST_ARGS]")
def run(
    level,
    target,
    tests,
    pytest_args,
    include,
    exclude,
    devices,
    workers,
    json_path,
    html_path,
    junit_path,
    store_dir,
    fail_under,
    timeout_factor,
    timeout_constant,
    memory_limit,
    isolation,
    since,
    executor,
    ray_address,
    ray_code_path,
    verbose,
    extra_args,
):
    """Run the test suite against every mutant of a level and report the kill matrix.

    Results go to the session store as they are known: run the same command again after an
    interruption and it resumes; after a change it re-tests only the mutants the change can affect.
    Arguments after `--` go to every pytest run, after those of --pytest-args.
    """
    import shlex
    from collections import Counter

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mutator import catalog, runner
    from mutator.outcomes import mutation_score

    console = _table_console()
    target = target or catalog.default_target()
    _preflight(target, store_dir, json_path=json_path, html_path=html_path, junit_path=junit_path)
    try:
        passed = [*shlex.split(pytest_args), *extra_args]
    except ValueError as error:
        raise UserError(f"--pytest-args: {error}") from None
    cluster = None  # the local executor
    if executor == "ray":
        from mutator.ray_executor import RayExecutor

        cluster = RayExecutor(address=ray_address, code_path=ray_code_path, cpu_actors=workers)
    elif ray_address or ray_code_path:
        raise UserError("--ray-address and --ray-code-path need --executor ray")
    packages, generate = _cached_mutants(level, target, include, exclude, store_dir)
    counts = Counter()
    stderr = Console(stderr=True)
    if stderr.is_terminal:
        columns = TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        progress = Progress(*columns, console=stderr, transient=True)
    else:  # a CI log: rich would print nothing until the end, so plain lines as it goes
        progress = _PlainProgress(stderr)
    bar = progress.add_task("starting", total=None)

    def on_status(message):
        progress.update(bar, description=message)

    def on_warning(line):
        progress.console.print(line, markup=False, highlight=False)

    def on_result(mutant, result):
        counts[result.outcome] += 1
        tally = ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in sorted(counts.items()))
        progress.update(bar, advance=1, description=tally)
        if verbose:
            killer = f" by {result.killing_test}" if result.killing_test else ""
            line = f"{mutant.id} {result.device} {result.outcome}{killer} ({result.duration_s:.2f} s)"
            progress.console.print(f"{line} {mutant.location} {result.reason}", markup=False, highlight=False)

    def generated():  # while the baseline runs
        made = generate()
        progress.update(bar, total=len(made) * len(device_list))
        return made

    try:
        with progress:
            device_list = runner.resolve_devices(devices)
            outcome = runner.run(
                generated,
                packages=packages,
                target=target,
                tests=list(tests),
                pytest_args=passed,
                devices=device_list,
                workers=workers,
                store_dir=store_dir,
                timeout_factor=timeout_factor,
                timeout_constant=timeout_constant,
                memory_limit_mb=memory_limit or None,
                isolation=isolation,
                since=since,
                params={"level": str(level)},
                on_result=on_result,
                on_status=on_status,
                on_warning=on_warning,
                executor=cluster,
            )
    except KeyboardInterrupt:
        console.print(f"interrupted: the results so far are in {store_dir}; the same command resumes the run")
        raise SystemExit(130) from None
    _write_reports(console, outcome.mutants, outcome.results, outcome.devices, target, json_path, html_path, junit_path)
    timings = outcome.timings
    executed, not_run = timings["executed"], timings.get("not_run", 0)
    skipped = f", {not_run:.0f} not run (unchanged since {since})" if since else ""
    console.print(
        f"{executed:.0f} mutants run, {len(outcome.results) - executed:.0f} reused or needing"
        f" no run{skipped}; in {time.perf_counter() - STARTED:.1f} s, of which mutants"
        f" {timings.get('mutants_s', 0.0):.1f} s (store: {store_dir})",
        highlight=False,
    )
    if fail_under is not None:
        score = mutation_score(outcome.results)
        if score is None or score < fail_under:
            shown = "no valid mutants" if score is None else f"{score:.1f}%"
            console.print(f"[red]mutation score {shown} is below --fail-under {fail_under:g}[/]")
            raise SystemExit(1)


@main.command()
@_report_options
def report(json_path, html_path, junit_path, store_dir):
    """Re-render the reports of the last run from the session store."""
    from mutator.store import Store

    _preflight(json_path=json_path, html_path=html_path, junit_path=junit_path)
    with Store(store_dir, create=False) as store:
        last = store.last_run()
        if last is None:
            raise UserError(f"the session store {store_dir} holds no run yet")
        run_id, params = last
        mutants = store.mutants(run_id)
        results = store.results(run_id, params["devices"])
    _write_reports(
        _table_console(), mutants, results, params["devices"], params["target"], json_path, html_path, junit_path
    )


@main.command()
@click.option("--level", required=True, help="Catalogue level, e.g. 3.")
@click.option("--seed", type=int, default=None, help="Seed of the draw: the same seed gives the same workspace.")
@click.option("--out", type=click.Path(file_okay=False), help="Directory to write the workspace to (new or empty).")
@click.option("--bugs", type=click.IntRange(min=1), default=None, help="Plant this many bug classes (default: all).")
@click.option("--key", "key_path", type=click.Path(dir_okay=False), help="Where to keep the answer key.")
@click.option("--target", type=click.Path(exists=True, file_okay=False), help="Root of the clean code.")
@click.option("--count", "count_only", is_flag=True, help="Only print how many distinct draws the level has.")
@click.option(
    "--difficulty",
    type=click.Choice(["easy", "medium", "hard"]),
    default="hard",
    show_default=True,
    help="What the code's comments give away and how bugs show up: easy keeps the comments that describe"
    " no site, medium keeps only plain prose and draws no bug that crashes in every check, hard removes every"
    " comment and docstring and draws silent bugs.",
)
@click.option("-v", "--verbose", is_flag=True, help="Say which draws were rejected and why.")
def challenge(level, seed, out, bugs, key_path, target, count_only, difficulty, verbose):
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
        key = challenges.create(
            level, seed, out, bugs=bugs, key_path=key_path, target=target, log=log, difficulty=difficulty
        )
    console.print(f"wrote [bold]{out}[/] (open {out}/challenge.ipynb); answer key: {key}")


@main.command()
@click.argument("workspace", type=click.Path(exists=True, file_okay=False))
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False), help="The workspace's answer key.")
@click.option("--force", is_flag=True, help="Grade against a --key that was written for another workspace.")
def check(workspace, key_path, force):
    """Grade a bug-hunt workspace against its answer key (exit 0 only when solved).

    A --key written for another workspace (another path, another level) is refused unless --force.
    """
    from rich.console import Console
    from rich.table import Table

    from mutator import challenge as challenges
    from mutator.challenge import grading

    if key_path and not force:
        grading.check_key_matches(workspace, key_path)
    console = Console()
    with console.status("running the visible and hidden tests"):
        grade = challenges.check(workspace, key_path)
    table = Table("bug class", "status", "still failing")
    for bug_class, failing in grade.fixed.items():
        status = "[red]not fixed[/]" if failing else "[green]fixed[/]"
        detail = f"{failing[0]}: {grade.bug_reasons[bug_class].get(failing[0], '')}" if failing else ""
        table.add_row(bug_class, status, detail)
    console.print(table)
    for test in grade.collateral:
        console.print(f"[red]broken[/] {test}: {grade.reasons.get(test, '')} (passed before your changes)")
    console.print("[green]solved[/]" if grade.solved else "[red]not solved yet[/]")
    raise SystemExit(0 if grade.solved else 1)


@main.command(name="mutmut")
@click.option("--target", type=click.Path(exists=True, file_okay=False), help=TARGET_HELP)
@click.option("--tests", type=click.Path(exists=True), help="The pytest suite (default: TARGET/tests/nanochat).")
@click.option("--max-children", type=click.IntRange(min=1), help="mutmut's parallel children (default: core count).")
@click.option("--level", default="3", show_default=True, help="The level whose mutants mutmut is asked to produce.")
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False),
    default=".mutator",
    show_default=True,
    help="Session store holding our latest run, shown beside mutmut's.",
)
@click.option("--keep", is_flag=True, help="Keep mutmut's scratch copy (its mutants/ and log) afterwards.")
@_scope_options
def mutmut_cmd(target, tests, max_children, level, store_dir, keep, include, exclude):
    """Run mutmut on the same target and suite, beside our score and our level's mutants.

    mutmut runs through its command line in a scratch copy; its generic score is shown beside ours
    (from the session store), with how many of our mutants its operators can produce at all.
    """
    import os
    import shutil
    from pathlib import Path

    from rich.console import Console

    from mutator import catalog, mutmut_compare, runner

    target = Path(target).resolve() if target else catalog.default_target()
    tests = tests or runner.default_tests(target)
    console = _table_console()
    status = Console(stderr=True)
    ours = _mutants(level, target, include, exclude)  # first: a bad level should not cost a whole mutmut run
    with status.status("starting mutmut") as spinner:
        run = mutmut_compare.run_mutmut(target, tests, max_children, on_status=spinner.update)
        try:
            reach = mutmut_compare.compare(run, ours, max_children or os.cpu_count() or 2, on_status=spinner.update)
        except BaseException:
            status.print(f"mutmut's run is kept in {run.scratch}", highlight=False)
            raise
    mutmut_compare.print_comparison(console, run, reach, mutmut_compare.ours_from_store(store_dir), level)
    if keep:
        console.print(f"mutmut's scratch copy (log, mutants/): {run.scratch}", highlight=False)
    else:
        shutil.rmtree(run.scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
