"""The book's layout check (.ci/book_layout.py, run by CI after the book build) finds content
cut off at the right edge, and passes what scrolls or wraps. Needs Chromium: skipped without."""

import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "book_layout", Path(__file__).resolve().parents[1] / ".ci" / "book_layout.py")
book_layout = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(book_layout)

LONG = "x" * 400
PAGE = """<!DOCTYPE html><html><head><style>
body {{ margin: 0; }}
article.bd-article {{ width: 500px; margin-left: 100px; }}
</style></head><body><article class="bd-article">
<p>Some text that fits.</p>
{content}
</article>{probe}</body></html>"""

CASES = {
    "fits": ("<pre style='white-space: pre-wrap; overflow-wrap: anywhere'>" + LONG + "</pre>", None),
    "scrolls": ("<div style='overflow-x: auto'><pre>" + LONG + "</pre></div>", None),
    "cut in its box": ("<div style='overflow: hidden'><pre>" + LONG + "</pre></div>",
                       "cut inside its box"),
    "past the column": ("<pre>" + LONG[:90] + "</pre>", "past the column"),
    "past the window": ("<pre>" + LONG + "</pre>", "past the window's right edge"),
}


@pytest.fixture(scope="module")
def browser():
    path = book_layout.find_chromium()
    if path is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium package)")
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_layout_probe(tmp_path, browser, case):
    content, expected = CASES[case]
    page = tmp_path / "page.html"
    page.write_text(PAGE.format(content=content, probe=book_layout.PROBE), encoding="utf-8")
    problems = book_layout.check_page(browser, page, 1000)
    if expected is None:
        assert problems == [], problems
    else:
        assert any(expected in p for p in problems), problems
