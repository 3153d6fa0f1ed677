"""Reports of a run: terminal kill matrix, Stryker JSON, Stryker HTML, JUnit XML.

They read only the mutants and results they are given (the runner loads them from the store).
"""

from mutator.reports.html import write_html
from mutator.reports.junit import write_junit
from mutator.reports.stryker import write_json
from mutator.reports.terminal import print_summary

__all__ = ["print_summary", "write_html", "write_json", "write_junit"]
