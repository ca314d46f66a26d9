"""Numba settings, defined once for every kernel in :mod:`emlab._kernels`.

Every ``@njit`` in the package takes its flags from here; ``tests/test_config.py``
walks the kernels and checks that they do.

FASTMATH
    LLVM fast-math flags. ``nnan`` and ``ninf`` are left out on purpose: log-space
    EM relies on ``-inf`` (the log of a zero weight) behaving as IEEE says.
ERROR_MODEL
    ``"numpy"``: a float division by zero gives ``inf`` or ``nan`` as IEEE says
    instead of raising ``ZeroDivisionError``. Numba's default (``"python"``)
    puts a test and a branch before every division, which keeps LLVM from
    vectorising any loop that divides (measured here: ``s[r] = 1 / s[r]`` over
    a tile took 1.3 ns per row with it, 0.3 ns without). Every division in the
    kernels has a divisor that is positive by construction, or is guarded.
CACHE, PARALLEL
    ``cache=True`` together with ``parallel=True`` crashed old numba releases
    (numba #4807). With the pinned numba (0.68) both together were measured to
    work here: a new process loads a cached parallel kernel in about 0.2 s
    instead of compiling it for 5-9 s. We therefore use both.
CHUNK_ROWS
    Rows per chunk of the fixed row partition that ``prange`` runs over. The
    partition depends only on the number of rows, never on the number of
    threads, so every result is bit-for-bit the same whatever the thread count.
PARALLEL_MIN_WORK
    Below this much work (about n_samples * n_components * n_features**2) a
    kernel runs on the calling thread alone: waking the other threads costs
    more than it saves, and when the machine is busy a parallel region waits
    milliseconds for a descheduled thread (measured here: 3.5 ms instead of
    7 us for a 150-row Iris E-step). Results do not change: the partition is
    fixed. The kernels a first fit needs also have a serial twin
    (:func:`serial_twin`), compiled without Numba's parallel lowering, which
    small work calls instead: a first fit on small data compiles less.
MAX_BLOCKS, ACCUMULATOR_BYTES
    Reductions (sufficient statistics) keep one accumulator per block of
    consecutive chunks and add the blocks up in a fixed order. At most
    MAX_BLOCKS blocks, and never more than ACCUMULATOR_BYTES of accumulators.
GOMP_SPINCOUNT
    How long GNU OpenMP's idle threads spin before they sleep (libgomp's
    default: 300,000 spins; see :func:`set_spin_count`). emlab sets 20,000
    unless the user has set ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``.
Vector width
    On x86 CPUs with AVX-512, LLVM's tuning for many models (Intel's client and
    server cores among them) prefers 256-bit vectors, and the kernels then use
    half of the width the FMA units have. emlab lets it use 512-bit vectors
    (:func:`prefer_wide_vectors`) unless ``EMLAB_WIDE_VECTORS=0`` or the user
    chose Numba's CPU name or features.
"""

import math
import os
from contextlib import contextmanager

import numba

FASTMATH = {"nsz", "contract", "reassoc"}
ERROR_MODEL = "numpy"
CACHE = True
PARALLEL = True

CHUNK_ROWS = 256
PARALLEL_MIN_WORK = 1_000_000
MAX_BLOCKS = 64
ACCUMULATOR_BYTES = 8 * 2**20


GOMP_SPINCOUNT = "20000"


def prefer_wide_vectors(environ=os.environ):
    """Let LLVM vectorise the kernels with 512-bit vectors on CPUs that have them.

    Numba compiles for the host CPU with LLVM's tuning for it, and for many
    AVX-512 models that tuning (``prefer-256-bit``) keeps auto-vectorised loops
    at 256 bits, to spare older Intel cores a lower clock under 512-bit code.
    Measured on this project's 2-core machine (an Intel Xeon with AVX-512, which
    LLVM names "rocketlake"), one fused EM step with and without the preference:
    N = 1e6 full d = 2, K = 3: 3.04 -> 2.45 ms; d = 8, K = 8: 23.9 -> 19.7 ms;
    diagonal d = 8: 13.2 -> 12.9 ms; N = 2e5, d = 32, K = 16: 95.5 -> 78.9 ms.

    Numba reads its CPU features once, when it creates its code generator (at
    the first compile, or at ``import emlab``, whose overloads create it): this
    runs before that, and does nothing if it has already happened (another
    package compiled first), if ``EMLAB_WIDE_VECTORS`` is ``0``, if the user set
    ``NUMBA_CPU_NAME`` or ``NUMBA_CPU_FEATURES``, or if the CPU has no AVX-512.
    Processes emlab starts (the compile helper, warm-ups, Dask workers) import
    emlab and decide the same. Numba's cache keys a kernel by the CPU features,
    so kernels cached without the preference are compiled again once.
    Returns whether the preference was turned off.
    """
    from numba.core import config, registry

    if (environ.get("EMLAB_WIDE_VECTORS", "1") == "0" or config.CPU_NAME is not None
            or config.CPU_FEATURES is not None
            or "_toplevel_target_context" in vars(registry.cpu_target)):
        return False
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features()
    except Exception:  # no feature list on this platform: LLVM's own choice stands
        return False
    if not features.get("avx512f"):
        return False
    config.CPU_FEATURES = features.flatten() + ",-prefer-256-bit"
    return True


prefer_wide_vectors()


def set_spin_count(environ=os.environ):
    """Shorten GNU OpenMP's spin-wait, unless the user chose a wait policy (issue 16, item 6).

    A thread that reaches the end of a parallel region first spins (busy-waits)
    for its peers before it sleeps. Beside another CPU-bound job, a peer may be
    descheduled, and the spinning thread then takes CPU time that the late peer
    needs. Measured on 2 cores beside two busy processes (``benchmarks/busy.py``),
    a GaussianHMM iteration (one sequence of 1e6 steps) took 3.0-3.1x its idle
    time with libgomp's default (300,000 spins), 2.6x with 50,000, 2.0-2.1x with
    20,000 and 2.1x with 10,000; idle, 20,000 changed no case measured (mixtures,
    k-means, HMMs with one or 1,000 sequences) beyond the noise, while 10,000
    slowed CategoricalHMM and k-means by 5-9%. ``OMP_WAIT_POLICY=PASSIVE`` (no
    spinning) costs up to 3x idle.

    libgomp reads the variable once, when it is loaded, which Numba does at the
    first parallel kernel: ``import emlab`` sets it, in the environment of this
    process (and of the processes it starts). A libgomp another library loaded
    earlier keeps its own setting.
    """
    if "GOMP_SPINCOUNT" not in environ and "OMP_WAIT_POLICY" not in environ:
        environ["GOMP_SPINCOUNT"] = GOMP_SPINCOUNT


set_spin_count()


def n_blocks(n_rows, floats_per_block):
    """Number of reduction blocks for ``n_rows`` rows.

    Depends only on the problem's shape, so reductions are reproducible.
    """
    by_rows = max(1, math.ceil(n_rows / CHUNK_ROWS))
    by_memory = max(1, ACCUMULATOR_BYTES // (8 * max(1, floats_per_block)))
    return int(min(MAX_BLOCKS, by_rows, by_memory))


# GNU OpenMP (numba's "omp" threading layer, built on libgomp) cannot run in a process forked
# after its parent used it: the child is terminated ("fork() called from a process already
# using GNU OpenMP") and a multiprocessing pool waits for it forever. A child forked after
# the parent ran a kernel therefore gets a clear error at its first kernel call instead.
_FORKED_AFTER_GOMP = False


def _after_fork_in_child():
    global _FORKED_AFTER_GOMP
    try:
        layer = numba.threading_layer()  # a ValueError if the parent never ran a parallel kernel
    except ValueError:
        return
    if layer == "omp":
        from numba.np.ufunc import omppool

        _FORKED_AFTER_GOMP = getattr(omppool, "openmp_vendor", "GNU") == "GNU"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def check_not_forked():
    """Raise :class:`ForkedProcessError` in a child forked after the parent used GNU OpenMP."""
    if _FORKED_AFTER_GOMP:
        from .exceptions import ForkedProcessError

        raise ForkedProcessError(
            "emlab's Numba kernels run on GNU OpenMP, which cannot run in a process forked "
            "after its parent used it (the child would be killed and a process pool would "
            "wait for it forever). Start the workers with 'spawn' or 'forkserver' instead of "
            "'fork': multiprocessing.get_context('spawn').Pool(...), "
            "ProcessPoolExecutor(mp_context=multiprocessing.get_context('spawn')), or joblib's "
            "default 'loky' backend; or fork before the parent's first fit."
        )


@contextmanager
def threads_for(work):
    """Run the enclosed kernel calls on one thread when ``work`` is small."""
    check_not_forked()
    if work >= PARALLEL_MIN_WORK:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def serial_twin(kernel):
    """A copy of the parallel ``kernel`` compiled with ``parallel=False`` (``prange`` is then
    ``range``), named ``<name>_serial``; the kernel's module must bind it to that name.

    The same code over the same fixed partition, so the same results, but compiled
    without Numba's parallel lowering: measured here, em_step_full_small 9.8 -> 7.0 s
    and weighted_scatter_small 6.5 -> 4.3 s from an empty cache. Its own name gives it
    its own entries in Numba's cache, which keys a kernel by its name, not its flags.
    """
    import types

    from numba import njit

    f = kernel.py_func
    name = f.__name__ + "_serial"
    twin = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    twin.__qualname__ = f.__qualname__ + "_serial"
    twin.__doc__ = f"Serial twin of :func:`{f.__name__}` (see :func:`emlab._config.serial_twin`)."
    twin.__module__ = f.__module__
    return njit(parallel=False, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)(twin)


def parallel_or_serial(kernel, twin, work):
    """``kernel`` for ``work`` of at least PARALLEL_MIN_WORK, else its serial ``twin``."""
    return kernel if work >= PARALLEL_MIN_WORK else twin
