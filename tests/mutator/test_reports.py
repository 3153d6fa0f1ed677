"""Reports from hand-made mutants and results: no runner, no store.

The fixture plants one mutant per outcome into a small file and gives each a result on CPU; the
survivor also has a CUDA result (killed there), so the matrix has two devices and a mixed row.
Stryker's schema and HTML bundle come from npm at first use (skipped without it); the HTML is
rendered in headless Chromium when it is installed.
"""

import io
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from mutator.errors import UserError
from mutator.mutants import Mutant
from mutator.outcomes import CRASHED, ERROR, KILLED, NO_COVERAGE, SURVIVED, TIMEOUT, Result
from mutator.reports import npm, print_summary, write_html, write_json, write_junit
from mutator.reports.html import _inline_js
from mutator.reports.matrix import rows, short_test
from mutator.reports.stryker import build_report, changed_span

SOURCE = """import torch


def rotary(dim, base=10000.0):
    inv_freq = 1.0 / base ** (torch.arange(0, dim, 2) / dim)
    return inv_freq


class Cache:
    def advance(self, layer, n):
        if layer == self.n_layers - 1:
            self.pos += n

    def reset(self):
        self.pos = 0
"""


def plant(bug_class, variant, old, new, qualname):
    start_line = SOURCE[: SOURCE.index(old)].count("\n") + 1
    return Mutant(
        bug_class=bug_class,
        operator=bug_class + "-op",
        variant=variant,
        file="nanochat/gpt.py",
        qualname=qualname,
        start_line=start_line,
        end_line=start_line + old.count("\n"),
        original=SOURCE,
        mutated=SOURCE.replace(old, new, 1),
    )


SURVIVOR = plant("rotary-exponent", "denominator-x2", "/ dim)", "/ (2 * dim))", "rotary")
KILLED_M = plant("kv-position", "first-layer", "self.n_layers - 1", "0", "Cache.advance")
UNCOVERED = plant("kv-reset", "skip-reset", "self.pos = 0", "pass", "Cache.reset")
TIMED_OUT = plant("rotary-base", "base-x10", "base=10000.0", "base=100000.0", "rotary")
CRASHING = plant(
    "kv-position", "advance-twice", "            self.pos += n\n", "            self.pos += n\n" * 2, "Cache.advance"
)
BROKEN = plant("rotary-pairing", "bad-syntax", "return inv_freq", "return inv_freq)", "rotary")
MUTANTS = [KILLED_M, TIMED_OUT, BROKEN, UNCOVERED, CRASHING, SURVIVOR]

TEST = "tests/nanochat/test_kv_cache.py::test_cached_decode_matches_full[{}]"
RESULTS = [
    Result(SURVIVOR.id, "cpu", SURVIVED, tests_run=3, duration_s=0.12),
    Result(SURVIVOR.id, "cuda", KILLED, killing_test=TEST.format("cuda"), reason="assert 0.3 < 1e-5", tests_run=1),
    Result(KILLED_M.id, "cpu", KILLED, killing_test=TEST.format("cpu"), reason="AssertionError", tests_run=2),
    Result(UNCOVERED.id, "cpu", NO_COVERAGE),
    Result(TIMED_OUT.id, "cpu", TIMEOUT, killing_test=TEST.format("cpu"), reason="over 2.5 s", duration_s=2.5),
    Result(CRASHING.id, "cpu", CRASHED, reason="killed by SIGSEGV", tests_run=1),
    Result(BROKEN.id, "cpu", ERROR, reason="SyntaxError: unmatched ')'"),
]


def schema():
    """Stryker's schema file, fetched with npm at first use; skip when that cannot happen here."""
    try:
        return json.loads(npm.fetch(npm.REPORT_SCHEMA).read_text())
    except UserError as error:
        pytest.skip(f"report schema unavailable: {error.message}")


# --- the matrix --------------------------------------------------------------------------------------


def test_rows_put_survivors_first_then_no_coverage_then_unusual_then_killed():
    order = [row.mutant for row in rows(MUTANTS, RESULTS, ["cpu", "cuda"])]
    assert order[0] == SURVIVOR  # survived on cpu outranks killed on cuda
    assert order[1] == UNCOVERED
    assert set(order[2:5]) == {TIMED_OUT, CRASHING, BROKEN}
    assert order[5] == KILLED_M


def test_short_test_drops_directories():
    assert short_test("tests/nanochat/test_gpt.py::test_x[cpu]") == "test_gpt.py::test_x[cpu]"
    assert short_test(None) == ""


def test_terminal_summary_shows_matrix_scores_and_survivor_diff():
    console = Console(file=io.StringIO(), width=220, record=True, color_system=None)
    print_summary(console, MUTANTS, RESULTS, ["cpu", "cuda"])
    text = console.export_text()
    lines = text.splitlines()
    matrix_lines = [next(i for i, line in enumerate(lines) if m.id in line) for m in (SURVIVOR, UNCOVERED, KILLED_M)]
    assert matrix_lines == sorted(matrix_lines)
    assert "test_kv_cache.py::test_cached_decode_matches_full[cpu]" in text
    # cpu: valid = 5 (error excluded), detected = killed + timeout + crashed = 3; covered = 4
    assert "cpu: mutation score 60.0%, test strength 75.0%" in text
    assert "1 killed, 1 survived, 1 no coverage, 1 timeout, 1 crashed, 1 error" in text
    assert "cuda: mutation score 100.0%" in text
    assert "+    inv_freq = 1.0 / base ** (torch.arange(0, dim, 2) / (2 * dim))" in text
    assert f"{SURVIVOR.id} survived on cpu" in text
    assert f"{UNCOVERED.id} no coverage on cpu" in text


# --- Stryker JSON --------------------------------------------------------------------------------------


def by_id(report):
    return {m["id"]: m for f in report["files"].values() for m in f["mutants"]}


def test_json_maps_statuses_and_puts_the_device_in_the_id():
    mutants = by_id(build_report(MUTANTS, RESULTS, "."))
    assert len(mutants) == 2 * len(MUTANTS)  # every mutant on both devices
    expected = {
        SURVIVOR: "Survived",
        KILLED_M: "Killed",
        UNCOVERED: "NoCoverage",
        TIMED_OUT: "Timeout",
        CRASHING: "Killed",
        BROKEN: "CompileError",
    }
    for mutant, status in expected.items():
        assert mutants[f"{mutant.id}@cpu"]["status"] == status
    assert mutants[f"{SURVIVOR.id}@cuda"]["status"] == "Killed"
    assert mutants[f"{KILLED_M.id}@cuda"]["status"] == "Pending"  # no cuda result for it
    killed = mutants[f"{KILLED_M.id}@cpu"]
    assert killed["killedBy"] == [TEST.format("cpu")]
    assert killed["mutatorName"] == "kv-position-op: first-layer"
    assert killed["statusReason"] == "killed: AssertionError"
    assert mutants[f"{CRASHING.id}@cpu"]["statusReason"] == "crashed: killed by SIGSEGV"
    assert mutants[f"{UNCOVERED.id}@cpu"]["coveredBy"] == []
    assert mutants[f"{TIMED_OUT.id}@cpu"]["duration"] == 2500.0


def apply_stryker(source, entry):
    """What a Stryker consumer shows: the replacement over [start, end), lines and columns 1-based."""
    lines = source.splitlines(keepends=True)

    def offset(position):
        return sum(len(line) for line in lines[: position["line"] - 1]) + position["column"] - 1

    location = entry["location"]
    return source[: offset(location["start"])] + entry["replacement"] + source[offset(location["end"]) :]


def test_json_replacement_over_its_location_gives_the_mutated_file():
    deleting_last = plant("kv-reset", "drop-pos", "        self.pos = 0\n", "", "Cache.reset")
    deleting_inner = plant("kv-position", "drop-if", "        if layer == self.n_layers - 1:\n", "", "Cache.advance")
    for mutant in [*MUTANTS, deleting_last, deleting_inner]:
        (entry,) = by_id(build_report([mutant], [], ".")).values()
        assert apply_stryker(SOURCE, entry) == mutant.mutated
    location, replacement = changed_span(SURVIVOR)
    assert location == {"start": {"line": 5, "column": 1}, "end": {"line": 5, "column": 61}}
    assert replacement == "    inv_freq = 1.0 / base ** (torch.arange(0, dim, 2) / (2 * dim))"


def test_json_file_is_valid_against_strykers_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    path = tmp_path / "mutation.json"
    write_json(path, MUTANTS, RESULTS, tmp_path)
    report = json.loads(path.read_text())
    jsonschema.validators.validator_for(schema()).check_schema(schema())
    jsonschema.validate(report, schema())
    assert report["schemaVersion"] == "2"
    assert report["files"]["nanochat/gpt.py"]["source"] == SOURCE
    assert report["files"]["nanochat/gpt.py"]["language"] == "python"
    assert report["testFiles"]["tests/nanochat/test_kv_cache.py"]["tests"][0]["id"] == TEST.format("cpu")


def test_json_schema_rejects_an_unknown_status():
    jsonschema = pytest.importorskip("jsonschema")
    report = build_report(MUTANTS, RESULTS, ".")
    report["files"]["nanochat/gpt.py"]["mutants"][0]["status"] = "Crashed"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, schema())


# --- JUnit XML --------------------------------------------------------------------------------------


def test_junit_has_a_suite_per_device_and_counts_failures(tmp_path):
    path = tmp_path / "mutation.xml"
    write_junit(path, MUTANTS, RESULTS)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["mutator.cpu", "mutator.cuda"]

    cpu = suites["mutator.cpu"]
    assert (cpu.get("tests"), cpu.get("failures"), cpu.get("errors"), cpu.get("skipped")) == ("6", "2", "1", "0")
    cases = cpu.findall("testcase")
    assert cases[0].get("name") == f"{SURVIVOR.id} denominator-x2 nanochat/gpt.py:5 (rotary)"
    assert cases[0].get("classname") == "rotary-exponent"
    assert "+    inv_freq" in cases[0].find("failure").text
    killed = next(c for c in cases if c.get("classname") == "kv-position" and KILLED_M.id in c.get("name"))
    assert killed.find("failure") is None
    assert TEST.format("cpu") in killed.find("system-out").text

    cuda = suites["mutator.cuda"]
    assert (cuda.get("tests"), cuda.get("failures"), cuda.get("skipped")) == ("6", "0", "5")
    assert root.get("tests") == "12"


# --- HTML --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle():
    """The pinned elements bundle, fetched with npm at first use; skip when that cannot happen here."""
    try:
        return npm.fetch(npm.ELEMENTS)
    except UserError as error:
        pytest.skip(f"mutation-testing-elements unavailable: {error.message}")


def embedded_report(page: str) -> dict:
    (text,) = re.findall(r'<script type="application/json" id="mutator-report">(.*?)</script>', page, re.S)
    return json.loads(text)


def test_missing_npm_and_empty_cache_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MUTATOR_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="npm is not installed"):
        write_html(tmp_path / "report.html", MUTANTS, RESULTS, tmp_path)


def test_inlining_cannot_close_the_script_element():
    assert _inline_js('x = "</script>"; y = /<\\/SCRIPT/') == 'x = "<\\/script>"; y = /<\\/SCRIPT/'


def test_page_inlines_bundle_and_report(tmp_path, bundle):
    # Source text that would end a <script> element if it were pasted in raw.
    nasty = SOURCE + '\nHTML = "</script><script>alert(1)</script>"\n'
    mutant = Mutant("tool-order", "swap", "v", "nanochat/engine.py", "", 1, 1, nasty, nasty.replace("import", "#mport"))
    path = tmp_path / "report.html"
    write_html(path, [*MUTANTS, mutant], RESULTS, tmp_path)
    page = path.read_text()
    assert bundle.read_text()[:200] in page
    assert "src=" not in page.split("<body>")[1]  # nothing loaded from outside the file
    assert page.count("</script>") == 3  # bundle, report, glue: the source's own tags are escaped
    report = embedded_report(page)
    assert report["files"]["nanochat/engine.py"]["source"] == nasty
    assert len(report["files"]["nanochat/gpt.py"]["mutants"]) == 2 * len(MUTANTS)


# Walks the app's shadow roots after it rendered and writes their visible text into the light DOM,
# which is all that --dump-dom prints.
PROBE = """<script>
setTimeout(() => {
  const parts = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) parts.push(node.textContent);
    if (node.shadowRoot) walk(node.shadowRoot);
    node.childNodes.forEach(walk);
  };
  walk(document.querySelector("mutation-test-report-app"));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = parts.join(" ").replace(/\\s+/g, " ");
  document.body.append(out);
}, 2000);
</script>
</body>"""


def render(page_path, tmp_path, fragment="") -> str:
    """Visible text of the page in headless Chromium, shadow DOM included."""
    probed = page_path.with_name("probed.html")
    probed.write_text(page_path.read_text().replace("</body>", PROBE))
    done = subprocess.run(
        [
            shutil.which("chromium"),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probed.as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page did not render: {done.stderr[-2000:]}"
    return found.group(1)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Chromium (apt-get install chromium)")
def test_chromium_renders_files_scores_and_mutants(tmp_path, bundle):
    path = tmp_path / "report.html"
    write_html(path, MUTANTS, RESULTS, tmp_path)

    overview = render(path, tmp_path)
    assert "gpt.py" in overview
    # Stryker's metrics row, both devices together: killed 3 (cpu killed + crashed, cuda killed), survived,
    # timeout, no coverage 1 each, 1 compile error, detected 4 of 6 valid mutants = 66.67%.
    assert "gpt.py 66.67 80.00 3 1 1 1 0 0 1 4 2 12" in overview

    source_view = render(path, tmp_path, "#mutant/gpt.py")
    assert "Survived ( 1 )" in source_view and "CompileError ( 1 )" in source_view
    assert "rotary-exponent-op: denominator-x2 Survived" in source_view
    assert "def advance ( self , layer , n )" in source_view
