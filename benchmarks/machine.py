"""The machine: thread settings, a description for the JSON, and three reference rates.

The GEMM rate (float64 square matrix product) is the compute roof of the
roofline plot and the denominator of ``gemm_fraction``; the bandwidth (a
float64 matrix-vector product, which reads the matrix once) is its memory
roof; the exponential rate (float64 ``exp`` over a cache-resident array, the
best of a parallel Numba kernel and NumPy's SIMD ``exp`` on one Python thread
per core) is the third. All three are measured in the same run as the cases,
with the same threads, and give each Gaussian-mixture case its lower bound on
the time of one iteration (:func:`iteration_limit`).
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


#: Elements of the cache-resident array the exponential rate is measured on (512 KiB).
EXP_ELEMENTS = 1 << 16


def _exp_kernel():
    """A parallel Numba kernel: ``out = exp(x)``, ``sweeps`` times over the array."""
    import numba

    @numba.njit(parallel=True, cache=False)
    def kernel(x, out, sweeps):
        n = x.shape[0]
        chunk = 4096
        blocks = (n + chunk - 1) // chunk
        for task in numba.prange(sweeps * blocks):
            b = task % blocks
            stop = min(n, (b + 1) * chunk)
            for i in range(b * chunk, stop):
                out[i] = np.exp(x[i])

    return kernel


def exp_rate(n_threads, sweeps=400, repeats=9, seed=0):
    """Exponentials per second (float64) with ``n_threads`` threads.

    Two ways, the better one is the reference: a Numba ``prange`` kernel over
    a cache-resident array of :data:`EXP_ELEMENTS` values in [-30, 0] (the
    range of ``log p - max log p`` in an E-step), and NumPy's ``np.exp``
    (SIMD, single-threaded, but releasing the GIL) on one Python thread per
    core, each on its own slice. Memory traffic is negligible (the array stays
    in cache), so this is the rate of the exponential itself. Each way is timed
    by its fastest of ``repeats`` runs, not the median: the NumPy threads take
    the GIL between calls, and on this 2-core machine the median of 5 moved
    between 1.55 and 3.03 G/s from one run to the next (2026-12-01), while a
    limit should not be set low by a slow run (a low rate makes every fraction
    of it look better).

    Returns
    -------
    dict
        ``threads``, ``per_s`` (the best), ``numba_per_s``, ``numpy_per_s``, ``method``.
    """
    from concurrent.futures import ThreadPoolExecutor

    import numba

    rng = np.random.default_rng(seed)
    x = rng.uniform(-30.0, 0.0, EXP_ELEMENTS)
    out = np.empty_like(x)
    kernel = _exp_kernel()
    before = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        kernel(x, out, 1)  # compile
        numba_s = min(median_seconds(lambda: kernel(x, out, sweeps), repeats)[1])
    finally:
        numba.set_num_threads(before)
    slices = [(x[i::n_threads].copy(), np.empty_like(x[i::n_threads])) for i in range(n_threads)]

    def sweep(pair):
        a, b = pair
        for _ in range(sweeps):
            np.exp(a, out=b)

    with ThreadPoolExecutor(n_threads) as pool:
        numpy_s = min(median_seconds(lambda: list(pool.map(sweep, slices)), repeats)[1])
    count = float(EXP_ELEMENTS) * sweeps
    rates = {"numba_per_s": count / numba_s, "numpy_per_s": count / numpy_s}
    best = max(rates, key=rates.get)
    return {"threads": n_threads, "per_s": rates[best], **rates,
            "method": f"best of a Numba prange kernel and np.exp on {n_threads} Python threads "
                      f"over {EXP_ELEMENTS} cache-resident float64 values ({best[:-6]} won)"}


def iteration_flops(covariance_type, n, d, k):
    """Flops (2 per multiply-add) one EM iteration of a Gaussian mixture cannot avoid.

    ``full``: ``N K d (d + 1)`` multiply-adds (the E-step's Mahalanobis distance
    through the precision's Cholesky factor, ``d (d + 1) / 2`` per (sample,
    component), and the M-step's weighted scatter, ``d (d + 1) / 2`` for its
    upper triangle), so ``2 N K d (d + 1)`` flops; the other covariance types
    use :func:`benchmarks.cases.useful_flops` (``diag`` ``8 N K d``).
    """
    if covariance_type == "full":
        return 2.0 * n * k * d * (d + 1)
    from .cases import useful_flops

    return float(useful_flops("gmm", covariance_type, n, d, k))


def iteration_limit(n, d, k, covariance_type, gb_per_s, exp_per_s, gflops):
    """A lower bound on the seconds of one EM iteration of a Gaussian mixture.

    The largest of three bounds, each from a rate measured by the benchmark:

    * ``bytes``: X must be read at least once per iteration, ``8 N d`` bytes,
      at the measured memory bandwidth;
    * ``exp``: the E-step takes ``N K`` exponentials (one per responsibility),
      at the measured exponential rate;
    * ``flops``: :func:`iteration_flops` at the measured GEMM rate.

    Returns
    -------
    dict
        ``bytes_s``, ``exp_s``, ``flops_s``, ``limit_s`` (the largest) and
        ``bound`` (``'bytes'``, ``'exp'`` or ``'flops'``: which one it is).
    """
    bounds = {
        "bytes": 8.0 * n * d / (gb_per_s * 1e9),
        "exp": float(n) * k / exp_per_s,
        "flops": iteration_flops(covariance_type, n, d, k) / (gflops * 1e9),
    }
    bound = max(bounds, key=bounds.get)
    return {"bytes_s": bounds["bytes"], "exp_s": bounds["exp"], "flops_s": bounds["flops"],
            "limit_s": bounds[bound], "bound": bound}


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
