"""Peak memory of a fit above the data, measured in a fresh worker process.

Each (case, library) runs in its own new interpreter
(``python -m benchmarks.memory SPEC``), which

1. sets the same thread counts as the timing run,
2. regenerates the case's data and start (the same bytes: the checksum is reported),
3. warms the library up with a fit of two iterations on the whole data (Numba
   loads or compiles its kernels, threads start, modules are imported), so none
   of that is counted. A warm-up on the first rows is not enough: emlab runs
   small data through serial twins of its parallel kernels, so the measured fit
   would load the parallel ones (about 3 MiB of code, measured on
   ``hmm-gaussian-full-T1e5-d3-K4``: 12.8 MiB of growth after a warm-up on 2000
   rows, 9.8 MiB after one on the whole data),
4. resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), reads the
   current RSS (psutil) as the baseline,
5. fits the whole data and reads the peak RSS (``VmHWM``; see :func:`peak_rss`).

``growth = peak - baseline`` is what the fit needed on top of the data and of
everything the process already held.

Why not a forked child of the benchmark process: Numba's parallel kernels run
on GNU OpenMP here (``threading_layer() == 'omp'``), which cannot survive a
fork once it has started threads (Numba aborts the child with "fork() called
from a process already using GNU OpenMP, this is unsafe", and scikit-learn's
OpenMP k-means hangs in it). A fresh process has no such state.

The worker runs with ``MALLOC_MMAP_THRESHOLD_`` fixed at 128 KiB, so that every
array larger than that is its own mapping, returned to the system when freed:
the RSS then follows the arrays alive at each moment, rather than what
glibc's allocator keeps after an earlier (e.g. warm-up) fit.
"""

import dataclasses
import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from .cases import Case
from .data import checksum, make_data, make_start
from .machine import limited_threads
from .peers import get_library

MIB = 2**20


def measure(case, library_name, max_iter, n_threads, timeout=1800):
    """Peak memory growth of one fit, from a fresh worker process.

    Parameters
    ----------
    case : benchmarks.cases.Case
    library_name : str
    max_iter : int
        Iterations of the measured fit.
    n_threads : int
    timeout : float
        Seconds before the worker is abandoned.

    Returns
    -------
    dict
        The worker's report (``growth_mib``, ``baseline_mib``, ``peak_mib``,
        ``peak_reset``, ``checksum``), or ``{'error': message}``.
    """
    spec = {"case": _case_fields(case), "library": library_name, "max_iter": max_iter,
            "threads": n_threads}
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(128 * 1024))
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run([sys.executable, "-m", "benchmarks.memory", json.dumps(spec)],
                              cwd=root, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"memory worker timed out after {timeout} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"memory worker failed (exit {done.returncode}): " + " | ".join(tail)}
    return json.loads(lines[-1])


def _case_fields(case):
    fields = dataclasses.asdict(case)
    fields.pop("targets")
    return fields


def current_rss():
    """Resident set size of this process in bytes (psutil)."""
    import psutil

    return psutil.Process().memory_info().rss


def peak_rss():
    """Peak resident set size of this process in bytes.

    ``VmHWM`` from ``/proc/self/status``, the mark that :func:`reset_peak_rss`
    resets. ``getrusage``'s ``ru_maxrss`` is only the fallback: across
    ``exec`` Linux carries into it the RSS of the process that started the
    worker (here, the whole benchmark run), and no reset clears that.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0). True if it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def run_worker(spec):
    """Measure one fit as described in the module docstring; returns the report dict."""
    fields = dict(spec["case"])
    fields["extra_peers"] = tuple(fields.get("extra_peers", ()))
    case = Case(**fields)
    library = get_library(spec["library"])
    with limited_threads(spec["threads"]):
        X = make_data(case)
        start = make_start(case, X)
        try:
            library.fit(case, X, start, 2)
        except ValueError as exc:
            return {"unsupported": str(exc)}
        gc.collect()
        was_reset = reset_peak_rss()
        baseline = current_rss()
        library.fit(case, X, start, spec["max_iter"])
        peak = peak_rss()
    return {"library": library.name, "baseline_mib": baseline / MIB, "peak_mib": peak / MIB,
            "growth_mib": max(0.0, (peak - baseline) / MIB), "peak_reset": was_reset,
            "data_mib": X.nbytes / MIB, "checksum": checksum(X)}


def main(argv=None):
    """Entry point of the worker: one JSON spec in, one JSON line out."""
    argv = sys.argv[1:] if argv is None else argv
    print(json.dumps(run_worker(json.loads(argv[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
