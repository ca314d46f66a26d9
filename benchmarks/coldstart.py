"""Cold start: import plus the first small fit, in a fresh interpreter.

What a user waits for the first time a script calls the library. For emlab it
is dominated by Numba: with a warm cache the kernels are loaded from
``emlab/_kernels/__pycache__``; with an empty cache (``NUMBA_CACHE_DIR``
pointed at a new, empty directory) every kernel the fit touches is compiled.
The clock starts inside the new interpreter, before the first import, so
Python's own start-up is not counted (the process's total wall time is
recorded too).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

_TEMPLATE = """\
import json, time
_t0 = time.perf_counter()
{imports}
_t1 = time.perf_counter()
{first_fit}
_t2 = time.perf_counter()
print(json.dumps({{"import_s": _t1 - _t0, "fit_s": _t2 - _t1, "total_s": _t2 - _t0}}))
"""


def run_once(code, env=None, timeout=600):
    """Run ``code`` in a fresh interpreter; its timing report plus ``process_s``.

    Returns
    -------
    dict
        ``import_s``, ``fit_s``, ``total_s`` (measured inside) and
        ``process_s`` (the whole process, interpreter start-up included), or
        ``{'error': message}``.
    """
    begin = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    elapsed = time.perf_counter() - begin
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: " + " | ".join(tail)}
    report = json.loads(lines[-1])
    report["process_s"] = elapsed
    return report


def _median_report(reports):
    good = [r for r in reports if "error" not in r]
    if not good:
        return reports[-1]
    keys = ("import_s", "fit_s", "total_s", "process_s")
    summary = {key: float(np.median([r[key] for r in good])) for key in keys}
    summary["samples"] = [r["total_s"] for r in good]
    return summary


def cold_start(library, repeats=3, cold=True):
    """Cold-start times of one library.

    Parameters
    ----------
    library : adapter (see :mod:`benchmarks.peers`)
    repeats : int
        Runs with the warm cache (after one untimed run that fills it); the
        medians are reported.
    cold : bool
        Also run once with ``NUMBA_CACHE_DIR`` set to a new empty directory.

    Returns
    -------
    dict or None
        ``{'warm': {...}, 'empty_cache': {...}}`` (see :func:`run_once`), or
        None when the library has no cold-start code.
    """
    pieces = library.cold_start_code()
    if pieces is None:
        return None
    code = _TEMPLATE.format(imports=pieces[0], first_fit=pieces[1])
    run_once(code)  # fills the cache if it is empty or stale
    result = {"warm": _median_report([run_once(code) for _ in range(repeats)])}
    if cold:
        cache = tempfile.mkdtemp(prefix="emlab-bench-numba-cache-")
        try:
            result["empty_cache"] = run_once(code, env=dict(os.environ, NUMBA_CACHE_DIR=cache))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return result
