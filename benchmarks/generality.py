"""How well mutator's operators find bug-class sites in real transformer code, in each project's own layout.

For every codebase in benchmarks/generality_sites.toml (a pinned PyPI release and the sites labelled by
reading it), this downloads the release with `pip download --no-deps` into a cache outside the repository
(reused on later runs), unpacks it, plants every level's mutants into it, and compares them with the labels:

- a mutant of class C in file F hits a site of class C in F when their line spans overlap;
- recall = labelled sites hit by at least one mutant / labelled sites;
- precision = mutants that hit a site of their own class / all mutants (any other mutant is a false
  positive, "wrong class: D" when it overlaps a site of another class D).

    python benchmarks/generality.py [--only litgpt] [--cache DIR] [--json out.json] [--verbose]

It prints, per codebase and class, the sites found and missed and the false positives (listed), then recall
and precision per class and overall. It exits 0 whatever the numbers (it is a measurement), 2 when a
download fails, 1 when the catalogue or the sites file cannot be read or a codebase cannot be mutated.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SITES_FILE = Path(__file__).with_name("generality_sites.toml")
ARCHIVES = (".tar.gz", ".tgz", ".zip", ".whl")
CODEBASE_KEYS = {"name", "requirement", "archive", "root", "files", "absent", "sites", "pip_args", "pip_env"}
SITE_KEYS = {"class", "file", "qualname", "line", "end_line", "code", "why"}


class DownloadError(Exception):
    pass


# --- the labels ---


@dataclass(frozen=True)
class Site:
    bug_class: str
    file: str
    qualname: str
    line: int
    end_line: int
    code: str = ""
    why: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" + (f"-{self.end_line}" if self.end_line != self.line else "")


@dataclass(frozen=True)
class Codebase:
    name: str
    requirement: str
    archive: str  # "sdist" or "wheel"
    root: str
    files: tuple[str, ...]
    absent: tuple[str, ...]
    sites: tuple[Site, ...]
    # for an sdist whose metadata pip cannot read by default (flash-attn's setup.py builds CUDA unless told)
    pip_args: tuple[str, ...] = ()
    pip_env: tuple[tuple[str, str], ...] = ()


def load_codebases(path: Path = SITES_FILE) -> list[Codebase]:
    """The codebases of the sites file; ValueError on anything malformed."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    codebases = []
    for i, raw in enumerate(data.get("codebases", [])):
        where = f"{path.name}: codebases[{i}]"
        unknown = set(raw) - CODEBASE_KEYS
        missing = {"name", "requirement", "archive", "root"} - set(raw)
        if unknown or missing:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        if raw["archive"] not in ("sdist", "wheel"):
            raise ValueError(f"{where}.archive: must be 'sdist' or 'wheel', not {raw['archive']!r}")
        sites = []
        for j, s in enumerate(raw.get("sites", [])):
            if set(s) - SITE_KEYS or {"class", "file", "line"} - set(s):
                raise ValueError(f"{where}.sites[{j}]: keys {sorted(s)} (allowed: {sorted(SITE_KEYS)})")
            end = s.get("end_line", s["line"])
            if end < s["line"]:
                raise ValueError(f"{where}.sites[{j}]: end_line {end} < line {s['line']}")
            sites.append(
                Site(s["class"], s["file"], s.get("qualname", ""), s["line"], end, s.get("code", ""), s.get("why", ""))
            )
        codebases.append(
            Codebase(
                raw["name"],
                raw["requirement"],
                raw["archive"],
                raw["root"],
                tuple(raw.get("files", ())),
                tuple(raw.get("absent", ())),
                tuple(sites),
                tuple(raw.get("pip_args", ())),
                tuple(raw.get("pip_env", {}).items()),
            )
        )
    names = [c.name for c in codebases]
    if len(set(names)) != len(names):
        raise ValueError(f"{path.name}: a codebase name is used twice: {names}")
    return codebases


# --- matching (pure: mutants are anything with bug_class, file, start_line, end_line) ---


def overlaps(mutant, site: Site) -> bool:
    return mutant.file == site.file and mutant.start_line <= site.end_line and site.line <= mutant.end_line


@dataclass
class ClassResult:
    labelled: list = field(default_factory=list)  # Sites
    found: list = field(default_factory=list)  # Sites hit by a mutant of their class
    missed: list = field(default_factory=list)  # Sites hit by none
    mutants: int = 0
    hits: int = 0  # mutants that hit a site of their own class
    false_positives: list = field(default_factory=list)  # (mutant, [other classes it overlaps])


def match(sites, mutants, classes=()) -> dict[str, ClassResult]:
    """Per class: which sites the mutants find, which they miss, and which mutants hit no site of their
    class. `classes` fixes the order of the result (others follow in order of appearance)."""
    results: dict[str, ClassResult] = {c: ClassResult() for c in classes}
    by_file = defaultdict(list)
    for site in sites:
        results.setdefault(site.bug_class, ClassResult()).labelled.append(site)
        by_file[site.file].append(site)
    hit = set()  # ids of found sites
    for mu in mutants:
        result = results.setdefault(mu.bug_class, ClassResult())
        result.mutants += 1
        touched = [s for s in by_file.get(mu.file, ()) if overlaps(mu, s)]
        own = [s for s in touched if s.bug_class == mu.bug_class]
        if own:
            result.hits += 1
            hit.update(id(s) for s in own)
        else:
            others = sorted({s.bug_class for s in touched})
            result.false_positives.append((mu, others))
    for result in results.values():
        result.found = [s for s in result.labelled if id(s) in hit]
        result.missed = [s for s in result.labelled if id(s) not in hit]
    return results


def ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def totals(per_codebase: dict[str, dict[str, ClassResult]]) -> dict:
    """Recall and precision per class and overall, and the (codebase, class) pairs never found."""
    per_class = {}
    for results in per_codebase.values():
        for name, r in results.items():
            t = per_class.setdefault(name, {"labelled": 0, "found": 0, "mutants": 0, "hits": 0})
            t["labelled"] += len(r.labelled)
            t["found"] += len(r.found)
            t["mutants"] += r.mutants
            t["hits"] += r.hits
    for t in per_class.values():
        t["recall"] = ratio(t["found"], t["labelled"])
        t["precision"] = ratio(t["hits"], t["mutants"])
        t["false_positives"] = t["mutants"] - t["hits"]
    overall = {k: sum(t[k] for t in per_class.values()) for k in ("labelled", "found", "mutants", "hits")}
    overall["recall"] = ratio(overall["found"], overall["labelled"])
    overall["precision"] = ratio(overall["hits"], overall["mutants"])
    overall["false_positives"] = overall["mutants"] - overall["hits"]
    never = [
        {"codebase": cb, "class": name, "labelled": len(r.labelled)}
        for cb, results in per_codebase.items()
        for name, r in results.items()
        if r.labelled and not r.found
    ]
    return {"overall": overall, "per_class": per_class, "never_found": never}


def label_problems(codebase: Codebase, classes, sources: dict[str, str]) -> list[str]:
    """Labels that no longer say what the code holds, and classes the sites file forgets."""
    problems = []
    for site in codebase.sites:
        text = sources.get(site.file)
        if text is None:
            problems.append(f"{site.where}: file not in scope or not found")
            continue
        lines = [line for line in text.splitlines()[site.line - 1 : site.end_line] if not line.strip().startswith("#")]
        span = "".join("".join(lines).split())
        if site.code and "".join(site.code.split())[:40] not in span:
            problems.append(f"{site.where}: label code {site.code[:50]!r} is not on that line")
    labelled = {s.bug_class for s in codebase.sites}
    for name in sorted(labelled & set(codebase.absent)):
        problems.append(f"class {name}: listed as absent but has sites")
    for name in classes:
        if name not in labelled and name not in codebase.absent:
            problems.append(f"class {name}: neither labelled nor listed as absent")
    for name in sorted(labelled - set(classes)):
        problems.append(f"class {name}: has sites but is in no level of the catalogue")
    return problems


# --- fetching ---


def _normal(text: str) -> str:
    return re.sub(r"[-_.]+", "_", text).lower()


def cached_archive(directory: Path, requirement: str, archive: str) -> Path | None:
    name, _, version = requirement.partition("==")
    prefix = f"{_normal(name.strip())}_{_normal(version.strip())}"
    for path in sorted(directory.glob("*")) if directory.is_dir() else ():
        is_wheel = path.name.endswith(".whl")
        if path.name.endswith(ARCHIVES) and is_wheel == (archive == "wheel"):
            if _normal(path.name).startswith(prefix + "_"):
                return path
    return None


def download(codebase: Codebase, cache: Path, verbose: bool) -> Path:
    """The archive of `codebase` under cache/<name>/, downloaded with pip if it is not there yet."""
    directory = cache / codebase.name
    found = cached_archive(directory, codebase.requirement, codebase.archive)
    if found:
        return found
    directory.mkdir(parents=True, exist_ok=True)
    kind = ["--no-binary", ":all:"] if codebase.archive == "sdist" else ["--only-binary", ":all:"]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, *codebase.pip_args]
    command += [codebase.requirement, "-d", str(directory)]
    if verbose:
        print("  $", " ".join(command), flush=True)
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **dict(codebase.pip_env)})
    if verbose:
        print(done.stdout + done.stderr, flush=True)
    found = cached_archive(directory, codebase.requirement, codebase.archive)
    if done.returncode != 0 or found is None:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"pip exited {done.returncode} and left no {codebase.archive}"
        raise DownloadError(f"cannot download {codebase.requirement} ({codebase.archive}): {reason}")
    return found


def unpack(archive: Path) -> Path:
    """The directory `archive` is unpacked in (next to it), unpacking it once."""
    name = archive.name
    for suffix in ARCHIVES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    destination = archive.parent / f"unpacked-{name}"
    if (destination / ".unpacked").is_file():
        return destination
    partial = archive.parent / f".partial-{name}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    if archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as tar:
            tar.extractall(partial, filter="data")
    else:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(partial)
    (partial / ".unpacked").write_text(archive.name + "\n")
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)
    return destination


# --- running ---


def labelled_levels(path: Path = SITES_FILE) -> list[str]:
    """The catalogue levels whose classes the sites file labels (its top-level `levels`)."""
    return [str(level) for level in tomllib.loads(path.read_text(encoding="utf-8"))["levels"]]


def class_order(levels: list[str]):
    from mutator import catalog

    return [c.name for name in levels for c in catalog.load_level(name).classes]


def measure(codebase: Codebase, root: Path, classes: list[str], levels: list[str]) -> dict:
    from mutator import catalog

    started = time.perf_counter()
    scope = catalog.Scope(include=tuple(codebase.files) or ())
    mutants = [mutant for level in levels for mutant in catalog.generate_mutants(level, root, scope)]
    seconds = time.perf_counter() - started
    files = [p for p in catalog.python_files(root) if scope.accepts(p)]
    sources = {p: (root / p).read_text(encoding="utf-8") for p in files}
    results = match(codebase.sites, mutants, classes)
    return {
        "results": results,
        "mutants": len(mutants),
        "files": len(files),
        "seconds": seconds,
        "no_sites": [c for level in levels for c in catalog.classes_without_sites(level, mutants)],
        "problems": label_problems(codebase, classes, sources),
    }


def source_line(mutant) -> str:
    lines = mutant.original.splitlines()
    return lines[mutant.start_line - 1].strip() if 0 < mutant.start_line <= len(lines) else ""


def table(rows: list[list[str]], right_from: int = 1) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i < right_from else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.append("  " + "  ".join(cells).rstrip())
        if n == 0:
            out.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(out)


CLASS_HEADER = ["class", "labelled", "found", "missed", "mutants", "false pos", "recall", "precision"]


def print_codebase(codebase: Codebase, measured: dict, verbose: bool):
    results = measured["results"]
    rows = [CLASS_HEADER]
    quiet = [name for name, r in results.items() if not r.labelled and not r.mutants]
    for name, r in results.items():
        if name in quiet:
            continue
        note = " (absent)" if name in codebase.absent and not r.labelled else ""
        rows.append(
            [
                name + note,
                str(len(r.labelled)),
                str(len(r.found)),
                str(len(r.missed)),
                str(r.mutants),
                str(len(r.false_positives)),
                pct(ratio(len(r.found), len(r.labelled))),
                pct(ratio(r.hits, r.mutants)),
            ]
        )
    print(table(rows))
    if quiet:
        print(f"  no site and no mutant: {', '.join(quiet)}")
    for name, r in results.items():
        if verbose and r.found:
            print(f"\n  {name}: found")
            for s in r.found:
                print(f"    {s.where}  {s.qualname or '<module>'}  {s.code}")
        if r.missed:
            print(f"\n  {name}: missed {len(r.missed)}")
            for s in r.missed:
                print(f"    {s.where}  {s.qualname or '<module>'}  {s.code}")
        if r.false_positives:
            print(f"\n  {name}: false positives {len(r.false_positives)}")
            for mu, others in r.false_positives:
                wrong = f"  [wrong class: {', '.join(others)}]" if others else ""
                span = f"{mu.start_line}" + (f"-{mu.end_line}" if mu.end_line != mu.start_line else "")
                print(f"    {mu.file}:{span}  {mu.qualname or '<module>'}  {mu.variant}{wrong}")
                print(f"        | {source_line(mu)}")
    if measured["problems"]:
        print(f"\n  label problems ({len(measured['problems'])}):")
        for problem in measured["problems"]:
            print(f"    {problem}")


def print_totals(summary: dict, per_codebase: dict, wall: float):
    print("\n" + "=" * 100)
    print("TOTALS")
    rows = [["class", "labelled", "found", "recall", "mutants", "false pos", "precision"]]
    for name, t in summary["per_class"].items():
        rows.append(
            [
                name,
                str(t["labelled"]),
                str(t["found"]),
                pct(t["recall"]),
                str(t["mutants"]),
                str(t["false_positives"]),
                pct(t["precision"]),
            ]
        )
    o = summary["overall"]
    rows.append(
        [
            "ALL",
            str(o["labelled"]),
            str(o["found"]),
            pct(o["recall"]),
            str(o["mutants"]),
            str(o["false_positives"]),
            pct(o["precision"]),
        ]
    )
    print(table(rows))
    print()
    rows = [["codebase", "files", "mutants", "recall", "precision", "generate s"]]
    for name, m in per_codebase.items():
        found = sum(len(r.found) for r in m["results"].values())
        labelled = sum(len(r.labelled) for r in m["results"].values())
        hits = sum(r.hits for r in m["results"].values())
        rows.append(
            [
                name,
                str(m["files"]),
                str(m["mutants"]),
                pct(ratio(found, labelled)),
                pct(ratio(hits, m["mutants"])),
                f"{m['seconds']:.1f}",
            ]
        )
    print(table(rows))
    if summary["never_found"]:
        print("\nclass present but never found:")
        for n in summary["never_found"]:
            print(f"  {n['codebase']}: {n['class']} ({n['labelled']} labelled sites, none found)")
    print(
        f"\nrecall {pct(o['recall'])} ({o['found']}/{o['labelled']} sites), precision {pct(o['precision'])} "
        f"({o['hits']}/{o['mutants']} mutants), {len(per_codebase)} codebases, wall {wall:.1f}s"
    )


def to_json(summary: dict, per_codebase: dict, codebases: dict, wall: float) -> dict:
    def site(s: Site) -> dict:
        return {
            "class": s.bug_class,
            "file": s.file,
            "qualname": s.qualname,
            "line": s.line,
            "end_line": s.end_line,
            "code": s.code,
        }

    out = {
        "wall_s": wall,
        "overall": summary["overall"],
        "per_class": summary["per_class"],
        "never_found": summary["never_found"],
        "codebases": [],
    }
    for name, m in per_codebase.items():
        cb = codebases[name]
        classes = {}
        for cls, r in m["results"].items():
            classes[cls] = {
                "labelled": len(r.labelled),
                "found": len(r.found),
                "mutants": r.mutants,
                "hits": r.hits,
                "recall": ratio(len(r.found), len(r.labelled)),
                "precision": ratio(r.hits, r.mutants),
                "absent": cls in cb.absent,
                "missed": [site(s) for s in r.missed],
                "false_positives": [
                    {
                        "file": mu.file,
                        "start_line": mu.start_line,
                        "end_line": mu.end_line,
                        "qualname": mu.qualname,
                        "operator": mu.operator,
                        "variant": mu.variant,
                        "wrong_class": others,
                        "source": source_line(mu),
                    }
                    for mu, others in r.false_positives
                ],
            }
        out["codebases"].append(
            {
                "name": name,
                "requirement": cb.requirement,
                "files": m["files"],
                "mutants": m["mutants"],
                "generate_s": m["seconds"],
                "classes": classes,
                "label_problems": m["problems"],
            }
        )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_cache = os.environ.get("MUTATOR_BENCH_CACHE") or "~/.cache/mutator-generality"
    parser.add_argument(
        "--cache",
        default=default_cache,
        help="where releases are downloaded and unpacked (default: $MUTATOR_BENCH_CACHE or "
        "~/.cache/mutator-generality)",
    )
    parser.add_argument("--only", action="append", metavar="NAME", help="run this codebase only (repeatable)")
    parser.add_argument("--sites", default=str(SITES_FILE), help="the labelled sites (default: %(default)s)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON here")
    parser.add_argument("--verbose", action="store_true", help="show pip's output and the sites found too")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:
        codebases = load_codebases(Path(args.sites))
        levels = labelled_levels(Path(args.sites))
    except (OSError, ValueError, KeyError, tomllib.TOMLDecodeError) as error:
        print(f"generality: {args.sites}: {error}", file=sys.stderr)
        return 1
    if args.only:
        unknown = sorted(set(args.only) - {c.name for c in codebases})
        if unknown:
            print(
                f"generality: unknown codebase {', '.join(unknown)} (known: {', '.join(c.name for c in codebases)})",
                file=sys.stderr,
            )
            return 1
        codebases = [c for c in codebases if c.name in args.only]
    from mutator.errors import UserError

    try:
        classes = class_order(levels)
    except UserError as error:
        print(f"generality: cannot read the catalogue: {error}", file=sys.stderr)
        return 1

    cache = Path(args.cache).expanduser()
    roots = {}
    for codebase in codebases:  # fetch everything first: a failed download stops before any measuring
        try:
            archive = download(codebase, cache, args.verbose)
            roots[codebase.name] = unpack(archive) / codebase.root
        except DownloadError as error:
            print(f"generality: {error}", file=sys.stderr)
            return 2
        except (OSError, tarfile.TarError, zipfile.BadZipFile) as error:
            print(f"generality: cannot unpack {codebase.requirement}: {error}", file=sys.stderr)
            return 2
        if not roots[codebase.name].is_dir():
            print(f"generality: {codebase.name}: root {codebase.root} not in the unpacked archive", file=sys.stderr)
            return 2

    per_codebase, failed = {}, []
    for codebase in codebases:
        root = roots[codebase.name]
        print(f"\n=== {codebase.name} ({codebase.requirement}, {codebase.archive})  {root}")
        try:
            measured = measure(codebase, root, classes, levels)
        except UserError as error:
            print(f"  cannot generate mutants: {error}")
            failed.append(codebase.name)
            continue
        per_codebase[codebase.name] = measured
        print(
            f"  {measured['files']} files, {measured['mutants']} mutants in {measured['seconds']:.1f}s, "
            f"{len(codebase.sites)} labelled sites"
        )
        print_codebase(codebase, measured, args.verbose)

    wall = time.perf_counter() - started
    summary = totals({name: m["results"] for name, m in per_codebase.items()})
    print_totals(summary, per_codebase, wall)
    if args.json:
        data = to_json(summary, per_codebase, {c.name: c for c in codebases}, wall)
        data["failed"] = failed
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if failed:
        print(f"generality: no mutants for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
