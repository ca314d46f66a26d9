"""Kernels are compiled in a helper process and always run from Numba's cache.

Why: a ``parallel=True`` kernel that a process compiles itself does not run
the same machine code as the same kernel loaded from the cache by a later
process. Numba compiles each ``prange`` body as its own library, optimises
it, and adds it to the process's JIT engine; it then links a copy of the body
into the kernel and optimises the whole kernel again, and that copy is what
the cache stores. The two copies are weak symbols of the same name, so the
process that compiled runs the first (optimised once) and every later process
runs the cached one (optimised twice in the kernel's context). With
reassociation allowed (:data:`emlab._config.FASTMATH`) the two round
differently: measured here, ``GaussianMixture(covariance_type="diag")``
means differed by 4e-16 and ``score_samples`` by 4e-15 between the first
process and the next.

So a process never compiles a cached kernel itself. On a cache miss the
kernel's signature goes to a helper process (started once, on the first miss), which compiles it and writes the cache;
the calling process then loads it from the cache like any later process.
Every process runs the same code and results are bitwise equal between the
run that compiled and the runs that did not (``tests/test_reproducible.py``).

**Warm-up.** With an empty cache, a first ``GaussianMixture.fit`` compiles its
kernels one after the other: k-means' (its start), the scatter matrices' (the
first M-step; NumPy's below ``PARALLEL_MIN_WORK``, with nothing to compile) and
the fused EM step's. :func:`warm_up_mixture` starts a second process that
compiles the last two for the fit's d, size and dtype while the calling process
compiles the first, so two cores work at once (``benchmarks/coldstart.py``
measures it). It runs once per process and only when nothing of those kernels
is cached.

If the helper cannot start or fails (no writable cache, a typing error in
the call), the kernel is compiled in process as Numba would do, so a wrong
argument still gets Numba's own error. ``EMLAB_COMPILE_IN_PROCESS=1``
switches the helper off.

**One stamp for all the kernels' sources.** Numba keeps a cached kernel while
the file that defines it is unchanged (its "source stamp", a hash of that
file), but a kernel also holds, compiled in, the functions, intrinsics and
constants of other files: ``simd.py``'s vectors, ``elementary.py``'s
exponential, ``gaussian.py``'s tiles, ``_config.py``'s block sizes. After an
edit or a ``git pull`` that changed only one of those (the Makefile installs
emlab editable, so the cache lives in the working tree) every cached kernel
would go on running the old code. So every emlab kernel's cache is stamped
with a hash of all of them together (:func:`sources_stamp`): any change to
any of them makes the next call recompile, once.
"""

import atexit
import functools
import hashlib
import importlib
import os
import pickle
import struct
import subprocess
import sys
import threading
from pathlib import Path

from numba.core import sigutils
from numba.core.caching import CacheImpl, NullCache, _SourceFileBackedLocatorMixin
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import CPUDispatcher

_KERNELS_DIR = Path(__file__).resolve().parent / "_kernels"
_CONFIG_FILE = Path(__file__).resolve().parent / "_config.py"


@functools.lru_cache(maxsize=None)
def sources_stamp():
    """A hash of every file whose code or constants the kernels compile in: the
    kernel modules and ``_config.py`` (computed once per process)."""
    digest = hashlib.sha256()
    for path in sorted(_KERNELS_DIR.glob("*.py")) + [_CONFIG_FILE]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.digest()


def _stamped(locator):
    """``locator`` (a Numba cache locator of a source file) for emlab's kernels only, with
    :func:`sources_stamp` as its stamp."""

    class Stamped(locator):
        @classmethod
        def from_function(cls, py_func, py_file):
            if Path(py_file).resolve().parent != _KERNELS_DIR:
                return None  # not an emlab kernel: Numba's own locators decide
            return super().from_function(py_func, py_file)

        def get_source_stamp(self):
            return sources_stamp()

    Stamped.__name__ = Stamped.__qualname__ = f"Emlab{locator.__name__}"
    return Stamped


def _stamp_kernel_caches():
    """Put :func:`_stamped` copies of Numba's source-file locators first in its list, so
    that every kernel defined after this (the ``_kernels`` modules) takes them."""
    if any(getattr(c, "_emlab", False) for c in CacheImpl._locator_classes):
        return
    mine = [_stamped(c) for c in CacheImpl._locator_classes
            if issubclass(c, _SourceFileBackedLocatorMixin)]
    for c in mine:
        c._emlab = True
    CacheImpl._locator_classes = mine + list(CacheImpl._locator_classes)


_stamp_kernel_caches()

_SERVER_ENV = "EMLAB_COMPILE_SERVER"
_IDLE_SECONDS = 120
_IN_PROCESS_ENV = "EMLAB_COMPILE_IN_PROCESS"

_lock = threading.RLock()
_server = None  # the helper process, started on the first cache miss
_server_failed = False


def _send(stream, obj):
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream):
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("the compile helper closed its pipe")
    (size,) = struct.unpack("<Q", head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the compile helper closed its pipe")
    return pickle.loads(data)


def _stop_server():
    global _server
    server, _server = _server, None
    if server is None:
        return
    try:
        server.stdin.close()
        server.wait(timeout=10)
    except Exception:  # pragma: no cover - the helper is gone either way
        server.kill()


def _forget_server_in_child():
    # a forked child must not talk on its parent's pipes, nor wait for its parent's children
    global _server
    _server = None
    _warming.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_server_in_child)
atexit.register(_stop_server)


def _start_server():
    env = dict(os.environ, **{_SERVER_ENV: "1"})
    return subprocess.Popen(
        [sys.executable, "-c", "from emlab._compile import _serve; _serve()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
    )


def _compile_in_helper(dispatcher, sig):
    """Ask the helper to compile ``dispatcher`` for ``sig``; True when it did."""
    global _server, _server_failed
    if _server_failed:
        return False
    func = dispatcher.py_func
    for attempt in range(2):  # a helper that just left on its idle timeout gets a successor
        try:
            if _server is None or _server.poll() is not None:
                _server = _start_server()
            _send(_server.stdin, (func.__module__, func.__name__, sig))
            ok, _message = _receive(_server.stdout)
            return ok
        except Exception:
            _stop_server()
    # no helper here: compile in this process from now on
    _server_failed = True
    return False


_warm_ups = {}  # key -> the background process that compiles its kernels
_warming = {}  # (module, name) of a kernel -> the warm-up process compiling it
_WARM_UP_WAIT_SECONDS = 120  # the longest a call waits for a warm-up compiling its kernel


def _stop_warm_ups():
    for process in _warm_ups.values():
        if process is not None and process.poll() is None:
            process.kill()  # Numba writes cache files whole (a rename), never half


atexit.register(_stop_warm_ups)


def warm_up_mixture(covariance_type, kernels, n_features=4, work=0, dtype="float64"):
    """Compile a Gaussian mixture's kernels in the background, once, if none is cached.

    ``kernels``: the dispatchers the warm-up would compile for ``n_features``
    and ``work`` (the kernels differ with the tile shape, and small work has
    serial twins); when any of them has something cached the cache is taken as
    warm and nothing starts. ``dtype``: X's, float64 or float32 (float32 X
    runs float32 specialisations of the kernels).
    """
    import numpy as np

    from ._config import PARALLEL_MIN_WORK

    mode = "parallel" if work >= PARALLEL_MIN_WORK else "serial"
    _start_warm_up(f"mixture-{covariance_type}-{int(n_features)}-{mode}-{np.dtype(dtype).name}",
                   kernels)


def warm_up_hmm(work, symbols=False):
    """Compile the HMMs' forward-backward in the background, once, if it is not cached.

    ``work``: n K^2 of the fit, which chooses the kernel or its serial twin;
    ``symbols``: the specialisation that reads per-symbol tables (a categorical
    HMM's), which is compiled apart from the one other HMMs call. A
    first HMM fit compiles its initialisation (k-means for Gaussian emissions)
    and its emission kernels first; forward-backward, the longest to compile
    (about 10 s here for the serial twin), is compiled meanwhile on the other
    core, and the fit waits for it when it gets there.
    """
    from ._config import PARALLEL_MIN_WORK
    from ._kernels.hmm import forward_backward, forward_backward_serial

    parallel = work >= PARALLEL_MIN_WORK
    key = "hmm-" + ("parallel" if parallel else "serial") + ("-symbols" if symbols else "")
    _start_warm_up(key, (forward_backward if parallel else forward_backward_serial,), wait=True)


def _start_warm_up(key, kernels, wait=False):
    """Start the process that runs ``_warm_up(key)``, unless one ran for ``key`` or any of
    ``kernels`` has something cached.

    ``wait``: a call of one of ``kernels`` that misses the cache waits for the warm-up
    to end (see ``_compile_from_cache``) instead of having the helper compile it again.
    The HMMs' warm-up compiles forward-backward alone, and a first GaussianHMM fit on
    Iris took 13.4-13.5 s without the wait, 11.4-11.6 s with it. The mixtures' warm-up
    does not wait: it also fits a small mixture, and waiting for all of it made a first
    Iris fit slower (7.3-7.8 -> 10.6-11.5 s) than letting the helper compile the EM
    step again from the callees the warm-up has cached by then.
    """
    if (key in _warm_ups or _server_failed or os.environ.get(_SERVER_ENV)
            or os.environ.get(_IN_PROCESS_ENV)):
        return
    _warm_ups[key] = None
    try:
        if any(len(k._cache._cache_file._load_index()) for k in kernels):
            return
        env = dict(os.environ, **{_SERVER_ENV: "1"})
        process = subprocess.Popen(
            [sys.executable, "-c", f"from emlab._compile import _warm_up; _warm_up({key!r})"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env,
        )
    except Exception:
        return  # no warm-up: the kernels compile when the fit calls them
    _warm_ups[key] = process
    if wait:
        for k in kernels:
            _warming[(k.py_func.__module__, k.py_func.__name__)] = process


def _wait_for_warm_up(dispatcher):
    """Wait (at most ``_WARM_UP_WAIT_SECONDS``) for a running warm-up that compiles
    ``dispatcher``; True if one ran to its end."""
    func = dispatcher.py_func
    process = _warming.get((func.__module__, func.__name__))
    if process is None or process.poll() is not None:
        return process is not None
    try:
        process.wait(timeout=_WARM_UP_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        return False
    return True


def _warm_up(key):
    """Compile what a fit of ``key`` needs, the last-needed kernel first."""
    import warnings

    import numpy as np

    if key.startswith("hmm-"):
        _warm_up_hmm(key.split("-")[1], key.endswith("-symbols"))
        return
    from ._covariance import MODELS
    from .mixture import GaussianMixture

    from ._config import PARALLEL_MIN_WORK

    _, covariance_type, n_features, mode, dtype = key.split("-")
    k, d = 2, int(n_features)
    per_row = k * d * (d if covariance_type in ("full", "tied") else 1)  # the kernels' work
    rows = 64 if mode == "serial" else PARALLEL_MIN_WORK // per_row + 1  # the kernels' choice
    X = np.random.default_rng(0).normal(size=(rows, d)).astype(dtype)
    model = MODELS[covariance_type]
    covariances = {"full": np.stack([np.eye(d)] * k), "tied": np.eye(d),
                   "diag": np.ones((k, d)), "spherical": np.ones(k)}[covariance_type]
    model.fused_step(X, X[:k].copy(), model.precision_cholesky(covariances),
                     np.log(np.full(k, 1.0 / k)))  # the EM step, needed last
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(k, covariance_type=covariance_type, init_params="random", max_iter=2,
                        random_state=0).fit(X)


def _warm_up_hmm(mode, symbols=False):
    """Run forward-backward as an HMM fit of ``mode`` ('serial' or 'parallel') would; with
    ``symbols``, as a categorical HMM's fit would (per-symbol tables)."""
    import numpy as np

    from ._config import PARALLEL_MIN_WORK
    from ._kernels.hmm import emission_tables
    from .hmm import posteriors

    k = 3
    n = 64 if mode == "serial" else PARALLEL_MIN_WORK // (k * k) + 1  # the kernels' choice
    rng = np.random.default_rng(0)
    bounds, startprob, transmat = (np.array([0, n], dtype=np.int64), np.full(k, 1.0 / k),
                                   np.full((k, k), 1.0 / k))
    if symbols:
        m = 2
        posteriors(np.empty((0, k)), bounds, startprob, transmat, None,
                   rng.integers(0, m, size=n).astype(np.uint32), emission_tables(
                       rng.dirichlet(np.ones(m), size=k)))
    else:
        posteriors(rng.normal(size=(n, k)), bounds, startprob, transmat)


def _in_cache(dispatcher, sig):
    cache = dispatcher._cache
    key = cache._index_key(sig, dispatcher.targetctx.codegen())
    return key in cache._cache_file._load_index()


def _compile_from_cache(dispatcher):
    compile_here = dispatcher.compile

    def compile(sig):
        with _lock, global_compiler_lock:
            try:
                args, _ = sigutils.normalize_signature(sig)
                if (tuple(args) not in dispatcher.overloads and not _in_cache(dispatcher, sig)
                        and not (_wait_for_warm_up(dispatcher) and _in_cache(dispatcher, sig))):
                    _compile_in_helper(dispatcher, sig)
            except Exception:
                pass  # Numba compiles it here, as it would without us
            return compile_here(sig)

    compile.__doc__ = compile_here.__doc__
    dispatcher.compile = compile
    dispatcher._emlab_compiled_from_cache = True


def run_from_cache(module):
    """Route every cached kernel defined in ``module`` through the helper process."""
    if os.environ.get(_SERVER_ENV) or os.environ.get(_IN_PROCESS_ENV):
        return
    for name, value in vars(module).items():
        if (isinstance(value, CPUDispatcher)
                and value.py_func.__module__ == module.__name__
                and value.py_func.__name__ == name
                and not isinstance(value._cache, NullCache)
                and not getattr(value, "_emlab_compiled_from_cache", False)):
            _compile_from_cache(value)


def _serve(idle_seconds=_IDLE_SECONDS):
    """The helper's loop: compile each kernel asked for (which saves it to the cache).

    It leaves after ``idle_seconds`` without a request, giving back the memory that
    compiling took; the next cache miss starts another.
    """
    import select

    stdin = sys.stdin.buffer
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # nothing but replies on the pipe, whatever a compile prints
    sys.stdout = sys.stderr
    while True:
        ready, _, _ = select.select([stdin], [], [], idle_seconds)
        if not ready:
            return
        try:
            module, name, sig = _receive(stdin)
        except EOFError:
            return
        try:
            getattr(importlib.import_module(module), name).compile(sig)
            reply = (True, "")
        except Exception as exc:  # the caller compiles in process and gets Numba's error
            reply = (False, f"{type(exc).__name__}: {exc}")
        _send(stdout, reply)
