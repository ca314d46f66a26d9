"""Where the benchmarks write their results.

``benchmarks/results/`` holds the committed runs, which the README and the book's chapter "How
fast, and why" quote and check figure by figure. A run writes there only when ``--out`` names
a file there. By default every entry point (``python -m benchmarks``, ``benchmarks.busy``,
``benchmarks.precision``, ``benchmarks.scale``, ``benchmarks.families``,
``benchmarks.experts``) writes to ``benchmarks/results/local/``, which git ignores: ``make
bench`` on any machine then leaves the committed runs as they were, and ``make book`` and
``make test``, which execute that chapter, still pass after it. (Before, ``make bench`` wrote
over ``latest.json``, ``busy.json``, ``precision.json`` and ``scale.json``, and the chapter's
checks of the committed figures failed on the next build.)
"""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
LOCAL = RESULTS / "local"


def local_result(name):
    """``benchmarks/results/local/<name>``: the default output of a run (read at call time, so
    a test can point ``LOCAL`` elsewhere)."""
    return LOCAL / name
