"""The HTML report: one self-contained file, Stryker's report app with our JSON report inlined.

The app is the standalone `mutation-testing-elements` bundle (pinned, fetched by `npm` at first use
and cached outside the repository, see `npm.py`). Both the bundle and the report go inside <script>
elements, so the file opens from disk with no network and no server.
"""

import json
import re
from pathlib import Path

from mutator.mutants import Mutant
from mutator.outcomes import Result
from mutator.reports import npm
from mutator.reports.stryker import build_report

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mutator report</title>
<!-- {bundle_name} {bundle_version} (Apache-2.0), inlined so this file works offline -->
<script>{bundle}</script>
</head>
<body>
<mutation-test-report-app title-postfix="mutator"></mutation-test-report-app>
<script type="application/json" id="mutator-report">{report}</script>
<script>
  const app = document.querySelector("mutation-test-report-app");
  app.report = JSON.parse(document.getElementById("mutator-report").textContent);
  const paint = () => {{ document.body.style.backgroundColor = app.themeBackgroundColor; }};
  app.addEventListener("theme-changed", paint);
  paint();
</script>
</body>
</html>
"""

SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)


def _inline_js(code: str) -> str:
    """`</script` would end the element early; `<\\/` means the same inside any JS string or regex."""
    return SCRIPT_END.sub(r"<\\/\1", code)


def _inline_json(data: dict) -> str:
    """JSON with <, > and & as \\u escapes: valid JSON that can never close or open a tag."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_html(path, mutants: list[Mutant], results: list[Result], target_root) -> None:
    bundle = npm.fetch(npm.ELEMENTS).read_text(encoding="utf-8")
    page = PAGE.format(
        bundle_name=npm.ELEMENTS.package,
        bundle_version=npm.ELEMENTS.version,
        bundle=_inline_js(bundle),
        report=_inline_json(build_report(mutants, results, target_root)),
    )
    Path(path).write_text(page, encoding="utf-8")
