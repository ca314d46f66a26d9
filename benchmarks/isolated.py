"""Each library timed in its own process.

Two libraries' parallel runtimes in one process disturb each other (Numba's
GNU OpenMP pool, scikit-learn's OpenMP, oneDAL's TBB, mlpack's OpenMP: idle
pools spinning, thread counts read once at load), so every library of a case
gets its own worker, a fresh interpreter started with
``multiprocessing.get_context('spawn')``, which

1. runs with the run's thread count: ``OMP_NUM_THREADS`` in its environment
   (read when an OpenMP runtime loads), :func:`benchmarks.machine.limited_threads`
   (Numba, BLAS, OpenMP through threadpoolctl) and the library's own
   ``set_threads`` (oneDAL's ``daalinit``);
2. regenerates the case's data and start from the case alone
   (:func:`benchmarks.data.make_data`, :func:`~benchmarks.data.make_start`),
   the same bytes in every worker (each reports the checksum), so no
   10^6 x d array crosses a pipe;
3. answers requests from the benchmark process: "fit ``m`` iterations", timed
   in the worker (``perf_counter`` around the library's ``fit``, after a
   garbage collection, as :func:`benchmarks.timing.timed_fit`), returning the
   seconds and the :class:`~benchmarks.peers.Fit`.

The workers of a case live together, and :func:`per_iteration` asks them in
turn, as :func:`benchmarks.timing.per_iteration` interleaves the libraries in
one process (order reversed every other repeat), so that a busy spell of a
shared machine falls on all of them. A worker waiting for its next request
holds no running thread of the others.
"""

import contextlib
import gc
import multiprocessing
import os
import time


from .timing import PerIteration, record_pair, summarise_samples

#: Seconds to wait for a worker to start and generate its data, and for one fit.
START_TIMEOUT = 900
FIT_TIMEOUT = 3600


class WorkerError(RuntimeError):
    """A worker failed; ``kind`` is ``'ValueError'`` (unsupported option) or anything else."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


@contextlib.contextmanager
def _environment(**values):
    """``os.environ`` with ``values`` set, for the spawn (the child copies it), then restored."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update({key: str(value) for key, value in values.items()})
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Worker:
    """One library's worker process for one case (use as a context manager).

    Attributes after :meth:`start`
    -------------------------------
    info : dict
        What the worker reported when ready: ``pid``, ``checksum`` of its data,
        ``version`` of the library, ``numba_threads``, ``setup_seconds``.
    """

    def __init__(self, library_name, case, threads):
        self.library_name, self.case, self.threads = library_name, case, threads
        self.process = self.conn = None
        self.info = {}

    def start(self):
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(
            target=serve, args=(child, self.library_name, self.case, self.threads),
            name=f"bench-{self.library_name}", daemon=True)
        with _environment(OMP_NUM_THREADS=self.threads):
            self.process.start()
        child.close()
        self.conn = parent
        self.info = self._receive(START_TIMEOUT)
        return self

    def _receive(self, timeout):
        if not self.conn.poll(timeout):
            raise WorkerError("TimeoutError", f"{self.library_name} worker: no answer in "
                                              f"{timeout} s")
        try:
            status, *payload = self.conn.recv()
        except EOFError:
            self.process.join(5)
            raise WorkerError("WorkerDied", f"{self.library_name} worker exited "
                                            f"(code {self.process.exitcode})") from None
        if status == "error":
            raise WorkerError(*payload)
        return payload[0]

    def fit(self, max_iter):
        """``(seconds, Fit)`` of one fit of ``max_iter`` iterations, timed in the worker."""
        self.conn.send(("fit", max_iter))
        return self._receive(FIT_TIMEOUT)

    def close(self):
        if self.process is None:
            return
        try:
            if self.process.is_alive():
                self.conn.send(("stop", None))
            self.process.join(30)
        except (OSError, EOFError, BrokenPipeError):
            pass
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def serve(conn, library_name, case, threads):
    """The worker's loop (runs in the spawned process)."""
    began = time.perf_counter()
    try:
        from .data import checksum, make_data, make_start
        from .machine import limited_threads
        from .peers import get_library

        library = get_library(library_name)
        with limited_threads(threads):
            if hasattr(library, "set_threads"):
                library.set_threads(threads)
            X = make_data(case)
            start = make_start(case, X)
            import numba

            conn.send(("ok", {"pid": os.getpid(), "checksum": checksum(X),
                              "version": library.version(),
                              "numba_threads": numba.get_num_threads(),
                              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                              "setup_seconds": time.perf_counter() - began}))
            while True:
                command, argument = conn.recv()
                if command == "stop":
                    break
                try:
                    gc.collect()
                    tic = time.perf_counter()
                    fit = library.fit(case, X, start, argument)
                    conn.send(("ok", (time.perf_counter() - tic, fit)))
                except Exception as exc:  # reported; the worker keeps serving
                    conn.send(("error", type(exc).__name__, f"{library_name}: {exc}"))
    except Exception as exc:
        with contextlib.suppress(OSError, BrokenPipeError):
            conn.send(("error", type(exc).__name__, f"{library_name}: {type(exc).__name__}: "
                                                    f"{exc}"))
    finally:
        conn.close()


def per_iteration(workers, iterations, repeats):
    """Seconds per iteration of each worker's library, by differencing two iteration counts.

    Parameters
    ----------
    workers : dict
        ``{library name: Worker}`` (started and warmed up), in the order of the run.
    iterations : dict
        ``{library name: (m1, m2)}``.
    repeats : dict
        ``{library name: repeats}``; a library with fewer repeats sits out the later ones.

    Returns
    -------
    dict
        ``{library name: benchmarks.timing.PerIteration}``, computed as
        :func:`benchmarks.timing.per_iteration` does.
    """
    names = list(workers)
    results = {name: PerIteration(fit_seconds={m: [] for m in iterations[name]})
               for name in names}
    for repeat in range(max(repeats.values())):
        order = names if repeat % 2 == 0 else names[::-1]
        for name in order:
            if repeat >= repeats[name]:
                continue
            m1, m2 = iterations[name]
            first = workers[name].fit(m1)
            second = workers[name].fit(m2)
            record_pair(results[name], (m1, m2), first, second)
    return summarise_samples(results)
