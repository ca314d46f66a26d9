"""Fail when a page of the built book has content cut off at the column's right edge.

Each HTML page of ``book/_build/html`` is opened in headless Chromium (Debian's ``chromium``
package; ``.ci/run`` installs it) at two window widths, after MathJax has typeset the
equations, and a script in the page reports:

* an element whose content is wider than its box while the box hides what overflows
  (``overflow-x: hidden`` or ``clip``): the reader cannot see the rest;
* an element that runs past the right edge of the article column with no box on the way that
  scrolls sideways (``overflow-x: auto`` or ``scroll``): it is cut by the page or overlaps
  the margin;
* anything drawn past the right edge of the window.

A box that scrolls is not a failure: that is how long display equations are shown. Overhangs
of up to SLACK_PX pixels (the italic correction of a formula's last glyph) are not counted.

Usage: ``python .ci/book_layout.py [book/_build/html]``. Exit status 1 lists every clipped
element, page by page; exit status 0 with a message when no Chromium is installed.
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTHS = (1280, 900)
SLACK_PX = 4
REPORT_ID = "emlab-layout-report"

# Runs in the page once MathJax (if the page has it) has typeset everything.
PROBE = r"""
<script>
(function () {
  function describe(el) {
    var s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    if (el.className && typeof el.className === "string") {
      s += "." + el.className.trim().split(/\s+/).slice(0, 3).join(".");
    }
    var text = (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 80);
    return s + (text ? " \u00ab" + text + "\u00bb" : "");
  }
  function scrollsSideways(el, stop) {
    for (var a = el.parentElement; a && a !== stop; a = a.parentElement) {
      var o = getComputedStyle(a).overflowX;
      if (o === "auto" || o === "scroll") return true;
    }
    return false;
  }
  // where an element's drawing ends on the right: its box, or past it where its content
  // overflows and is drawn (overflow visible; text in a <pre> has no box of its own)
  function extentRight(el) {
    var r = el.getBoundingClientRect();
    if (getComputedStyle(el).overflowX === "visible" && el.scrollWidth > el.clientWidth + 1) {
      return Math.max(r.right, r.left + el.clientLeft + el.scrollWidth);
    }
    return r.right;
  }
  function hiddenByAncestor(el) {
    for (var a = el; a; a = a.parentElement) {
      var cs = getComputedStyle(a);
      if (cs.display === "none" || cs.visibility === "hidden") return true;
    }
    return false;
  }
  function probe() {
    var problems = [];
    var article = document.querySelector("article.bd-article") || document.body;
    var right = article.getBoundingClientRect().right;
    var all = article.querySelectorAll("*");
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      if (el.getClientRects().length === 0 || hiddenByAncestor(el) ||
          el.closest("mjx-assistive-mml")) continue;
      var cs = getComputedStyle(el);
      if ((cs.overflowX === "hidden" || cs.overflowX === "clip") &&
          el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) {
        // what the reader would see: the boxes of the visible descendants
        var box = el.getBoundingClientRect(), reach = box.right, culprit = null;
        var inner = el.querySelectorAll("*");
        for (var j = 0; j < inner.length; j++) {
          if (inner[j].closest("mjx-assistive-mml")) continue;  // for screen readers, not drawn
          var ir = inner[j].getBoundingClientRect();
          if (ir.width > 0 && ir.height > 0 && extentRight(inner[j]) > reach - 0.5) {
            reach = Math.max(reach, extentRight(inner[j]));
            // name the innermost element that reaches that far (a formula, not its paragraph)
            if (!inner[j].tagName.toLowerCase().startsWith("mjx-")) culprit = inner[j];
          }
        }
        if (reach > box.right + __SLACK__) {
          problems.push("cut inside its box (" + Math.round(reach - box.right) + " px hidden): " +
                        describe(el) + (culprit ? ", by " + describe(culprit) : ""));
        }
        continue;
      }
      var r = el.getBoundingClientRect(), end = extentRight(el);
      if (r.width > 0 && end > right + __SLACK__ && !scrollsSideways(el, document.body)) {
        problems.push("runs " + Math.round(end - right) + " px past the column: " + describe(el));
      }
    }
    // anything drawn past the window's right edge, in or out of the article
    var every = document.body.querySelectorAll("*"), past = 0, first = [];
    for (var k = 0; k < every.length; k++) {
      var e = every[k];
      if (e.children.length || e.closest("mjx-assistive-mml") || hiddenByAncestor(e)) continue;
      var er = e.getBoundingClientRect();
      if (er.width > 0 && extentRight(e) > window.innerWidth + __SLACK__ && !scrollsSideways(e, null)) {
        past += 1;
        if (first.length < 3) first.push(describe(e));
      }
    }
    if (past) {
      problems.push(past + " element(s) drawn past the window's right edge (" +
                    window.innerWidth + " px): " + first.join("; "));
    }
    var out = document.createElement("pre");
    out.id = "__REPORT_ID__";
    out.style.display = "none";
    out.textContent = JSON.stringify({done: true, problems: problems});
    document.body.appendChild(out);
  }
  window.addEventListener("load", function () {
    var ready = (window.MathJax && MathJax.startup && MathJax.startup.promise) ||
                Promise.resolve();
    ready.then(function () { setTimeout(probe, 50); });
  });
})();
</script>
""".replace("__REPORT_ID__", REPORT_ID).replace("__SLACK__", str(SLACK_PX))


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def check_page(browser, page, width):
    """Problems found on ``page`` (a copy with the probe injected) at ``width`` pixels."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=15000",
             f"--window-size={width},900", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=180,
        )
    match = re.search(rf'<pre id="{REPORT_ID}"[^>]*>(.*?)</pre>', done.stdout, re.S)
    if not match:
        return [f"the layout probe did not report (chromium exit {done.returncode}): "
                f"{done.stderr.strip()[-300:]}"]
    text = (match.group(1).replace("&lt;", "<").replace("&gt;", ">")
            .replace("&quot;", '"').replace("&amp;", "&"))
    return json.loads(text)["problems"]


def main(argv):
    html = Path(argv[1] if len(argv) > 1 else "book/_build/html").resolve()
    if not (html / "index.html").exists():
        print(f"book layout: no built book in {html}; run `make book` first", file=sys.stderr)
        return 2
    browser = find_chromium()
    if browser is None:
        print("book layout: SKIPPED, no Chromium here (Debian/Ubuntu: apt-get install chromium)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "html"
        shutil.copytree(html, copy)
        pages = sorted(p for p in copy.glob("*.html")
                       if p.name not in ("genindex.html", "search.html", "py-modindex.html"))
        for page in pages:
            text = page.read_text(encoding="utf-8")
            page.write_text(text.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
        failures = 0
        for page in pages:
            for width in WIDTHS:
                problems = check_page(browser, page, width)
                status = "ok" if not problems else f"{len(problems)} clipped"
                print(f"book layout: {page.name} at {width} px: {status}")
                for problem in problems[:20]:
                    print(f"    {problem}")
                failures += bool(problems)
    if failures:
        print(f"book layout: FAILED, clipped content on {failures} page views")
        return 1
    print(f"book layout: every page fits ({len(pages)} pages, widths {WIDTHS})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
