"""The machine: thread settings, a description for the JSON, and two reference rates.

The GEMM rate (float64 square matrix product) is the compute roof of the
roofline plot and the denominator of ``gemm_fraction``; the bandwidth (a
float64 matrix-vector product, which reads the matrix once) is its memory
roof. Both are measured in the same run as the cases, with the same threads.
"""

import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def limited_threads(n_threads):
    """Run the enclosed code with ``n_threads`` Numba, BLAS and OpenMP threads.

    Numba's count is capped at ``numba.config.NUMBA_NUM_THREADS`` (the number
    of cores unless set otherwise); the previous settings are restored on exit.
    """
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=n_threads):
            yield
    finally:
        numba.set_num_threads(before)


def median_seconds(function, repeats):
    """Median wall time of ``repeats`` calls of ``function()`` after one untimed call.

    Returns
    -------
    median : float
    samples : list of float
    """
    function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples)), samples


def gemm_rate(size, n_threads, repeats=3, seed=0):
    """GFLOP/s of ``A @ B`` for float64 (size, size) matrices with ``n_threads`` BLAS threads.

    Returns
    -------
    dict
        ``size``, ``threads``, ``gflops`` (from the median time) and ``seconds`` (all samples).
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    a = rng.standard_normal((size, size))
    b = rng.standard_normal((size, size))
    out = np.empty((size, size))
    with threadpool_limits(limits=n_threads, user_api="blas"):
        median, samples = median_seconds(lambda: np.matmul(a, b, out=out), repeats)
    return {"size": size, "threads": n_threads, "gflops": 2.0 * size**3 / median / 1e9,
            "seconds": samples}


def memory_bandwidth(megabytes, n_threads, repeats=5, seed=0):
    """GB/s of a float64 matrix-vector product over a ``megabytes``-sized matrix.

    ``A @ x`` reads A once and does 2 flops per element, far fewer than the
    machine can do per byte, so its time is the time to stream A from memory.

    Returns
    -------
    dict
        ``megabytes``, ``threads``, ``gb_per_s`` (from the median time) and ``seconds``.
    """
    from threadpoolctl import threadpool_limits

    n_cols = 1024
    n_rows = max(1, int(megabytes * 2**20 / 8 / n_cols))
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n_rows, n_cols))
    x = rng.standard_normal(n_cols)
    out = np.empty(n_rows)
    with threadpool_limits(limits=n_threads, user_api="blas"):
        median, samples = median_seconds(lambda: np.matmul(a, x, out=out), repeats)
    return {"megabytes": a.nbytes / 2**20, "threads": n_threads,
            "gb_per_s": a.nbytes / median / 1e9, "seconds": samples}


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what :mod:`platform` says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_revision(directory):
    """``(commit, dirty)`` of the git checkout containing ``directory``, or ``(None, None)``."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, text=True,
                                capture_output=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=directory, text=True, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return commit, bool(status.stdout.strip())


def machine_info():
    """A description of the machine and the software, for the JSON.

    Call it after a parallel Numba kernel has run, so that
    ``numba.threading_layer()`` can say which layer was chosen.
    """
    import numba
    import psutil
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    import emlab

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = None
    commit, dirty = git_revision(Path(emlab.__file__).resolve().parent)
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gib": psutil.virtual_memory().total / 2**30,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {"emlab": emlab.__version__, "numpy": np.__version__,
                     "scipy": scipy.__version__, "sklearn": sklearn.__version__,
                     "numba": numba.__version__},
        "emlab_git": {"commit": commit, "dirty": dirty},
        "numba": {"num_threads": numba.get_num_threads(), "threading_layer": layer,
                  "NUMBA_NUM_THREADS": numba.config.NUMBA_NUM_THREADS,
                  "cache_dir": os.environ.get("NUMBA_CACHE_DIR")},
        "threadpools": threadpool_info(),
        "load_average": os.getloadavg(),
    }
