"""JUnit XML for CI: a mutant is a test case that passes when the suite detects it.

One <testsuite> per device, one <testcase> per mutant. An undetected mutant (survived, no coverage)
is a <failure> carrying its diff, so the CI page shows the bug the suite missed; a mutant that did not
import is an <error>; a detected one passes and names its killing test in <system-out>. A mutant with
no result on a device (an interrupted run) is <skipped>.
"""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from mutator.mutants import Mutant
from mutator.outcomes import ERROR, NO_COVERAGE, SURVIVED, Result
from mutator.reports.matrix import devices_of, rows

FAILURE_MESSAGE = {
    SURVIVED: "survived: every test passed",
    NO_COVERAGE: "no coverage: no test runs this code",
}
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    """ElementTree escapes markup but not control characters, which XML 1.0 forbids outright."""
    return NOT_XML.sub("\ufffd", value)


def _testcase(mutant: Mutant, result: Result | None) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=mutant.bug_class,
        name=f"{mutant.id} {mutant.variant} {mutant.location}",
        file=mutant.file,
        line=str(mutant.start_line),
        time=f"{result.duration_s:.3f}" if result else "0",
    )
    if result is None:
        ET.SubElement(case, "skipped", message="not run")
    elif result.outcome in FAILURE_MESSAGE:
        failure = ET.SubElement(case, "failure", message=FAILURE_MESSAGE[result.outcome], type=result.outcome)
        failure.text = _text(mutant.diff)
    elif result.outcome == ERROR:
        error = ET.SubElement(case, "error", message=_text(result.reason or "mutant failed to import"), type=ERROR)
        error.text = _text(mutant.diff)
    else:
        out = f"{result.outcome} by {result.killing_test}" if result.killing_test else result.outcome
        ET.SubElement(case, "system-out").text = _text(f"{out}: {result.reason}" if result.reason else out)
    return case


def write_junit(path, mutants: list[Mutant], results: list[Result]) -> None:
    devices = devices_of(results) or ["cpu"]
    table = rows(mutants, results, devices)
    suites = ET.Element("testsuites", name="mutator")
    for device in devices:
        cases = [_testcase(row.mutant, row.cells[device]) for row in table]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"mutator.{device}",
            tests=str(len(cases)),
            failures=str(sum(c.find("failure") is not None for c in cases)),
            errors=str(sum(c.find("error") is not None for c in cases)),
            skipped=str(sum(c.find("skipped") is not None for c in cases)),
            time=f"{sum(float(c.get('time')) for c in cases):.3f}",
        )
        suite.extend(cases)
    for total in ("tests", "failures", "errors", "skipped"):
        suites.set(total, str(sum(int(s.get(total)) for s in suites)))
    ET.indent(suites)
    ET.ElementTree(suites).write(Path(path), encoding="utf-8", xml_declaration=True)
