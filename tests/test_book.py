"""Execute every chapter of the book: a claim a chapter asserts is a test of emlab."""

import os
import re
from pathlib import Path

import jupytext
import nbclient
import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
CHAPTERS = sorted(p for p in BOOK.glob("*.md") if "```{code-cell}" in p.read_text())
HEADER = re.compile(r"\A---\njupytext:\n(.|\n)*?kernelspec:\n(.|\n)*?\n---\n")


def test_the_book_has_executable_chapters():
    assert any(p.name == "03-why-em-climbs.md" for p in CHAPTERS)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_the_jupytext_header(chapter):
    # Without it Jupyter Book 1 silently skips executing the chapter.
    assert HEADER.match(chapter.read_text()), f"{chapter.name} lacks the jupytext/kernelspec header"


def test_every_chapter_is_in_the_table_of_contents():
    toc = (BOOK / "_toc.yml").read_text()
    for page in BOOK.glob("*.md"):
        assert re.search(rf"\b{re.escape(page.stem)}\b", toc), f"{page.name} is not in _toc.yml"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_executes(chapter):
    os.environ.setdefault("MPLBACKEND", "Agg")
    notebook = jupytext.read(chapter)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(BOOK)}})
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    if "matplotlib" in chapter.read_text():
        images = [o for cell in notebook.cells if cell.cell_type == "code"
                  for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, f"{chapter.name} uses matplotlib but shows no figure"
