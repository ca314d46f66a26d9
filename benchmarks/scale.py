"""Scale-out: emlab's EM on a Dask cluster, against emlab in one process and Spark MLlib.

``python -m benchmarks.scale`` (also run by ``python -m benchmarks`` unless
``--no-scale``) fits one Gaussian mixture, ``gmm-full-N16e6-d8-K8`` (16
million rows, 8 features, 8 components, full covariances: 1 GiB of float64),
three ways, from the same start:

``dask``
    :class:`emlab.GaussianMixture` given a ``dask.array`` whose chunks were
    generated on the workers of a ``distributed.LocalCluster`` (2 worker
    processes, 1 thread each, Numba on 1 thread each). Every E-step is one task
    per chunk; only the parameters go out and the statistics come back.
``inprocess``
    The same fit on the same data gathered into one NumPy array, in a separate
    process with 2 Numba threads (the cluster's two cores, in one process).
``spark``
    Spark MLlib's (RDD-based) ``GaussianMixture`` in ``local[2]`` mode, given
    the same start as an initial model; timed at a smaller N when N is large
    and scaled per row (see ``benchmarks/README.md``, "Scale-out").

Each is timed as the rest of the suite: two ``max_iter`` values, ``tol=0``,
differenced, median over the repeats. The JSON goes to
``benchmarks/results/scale.json``; ``benchmarks/README.md`` describes every
field. Top-level imports stay light (NumPy and the standard library): Spark's
Python workers import this module to generate their rows.
"""

import argparse
import gc
import hashlib
import json
import math
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np

from . import paths
from .cases import TRAJECTORY_RTOL, Case, Target, format_count
from .data import Start, _random_covariance_factor
from .timing import trajectory_rel_diff

ROOT = Path(__file__).resolve().parent.parent

#: The case: 1.6e7 rows of 8 features (1 GiB of float64), 8 components, full covariances.
N_SAMPLES = 16_000_000
N_FEATURES = 8
N_COMPONENTS = 8
COVARIANCE_TYPE = "full"
#: Rows per chunk (Dask) and per partition (Spark): 64 MiB of float64.
CHUNK_ROWS = 1_000_000
N_WORKERS = 2
SEED = 0
#: Distance between two component means of the true mixture, in standard deviations.
SEPARATION = 5.0

#: Spark is timed on at most this many rows (the first rows of the same data), and
#: its seconds per iteration are scaled to N per row (see :func:`scale_spark`).
SPARK_ROWS = 2_000_000
#: Rows of the tiny data set on which Spark's fixed cost per iteration is measured.
SPARK_TINY_ROWS = 2_000
#: The pyspark the benchmark installs when none is installed (Spark 4.0 runs on Java 17 and 21).
PYSPARK_VERSION = "4.0.1"
PYSPARK_INSTALL_TIMEOUT = 900

#: ``--quick``: a smoke test of the whole pipeline (a minute or two, Spark's start-up included).
QUICK = {"n_samples": 200_000, "chunk_rows": 50_000, "repeats": 3, "iterations": (2, 6),
         "spark_rows": 200_000, "spark_repeats": 2}

TARGETS = (
    Target("dask_over_inprocess", "<=", 1.5),
    Target("spark_over_dask", ">=", 10.0),
    Target("trajectory_rel_diff", "<=", TRAJECTORY_RTOL),
    Target("spark_reference_rel_diff", "<=", TRAJECTORY_RTOL),
)

BYTES_METHOD = (
    "pickled: pickle (protocol 5) sizes, taken in the client during the untimed warm-up fit, "
    "of what one E-step sends: params_to_workers = n_workers x the task payload "
    "(statistics function + parameters: one key, needed once on each worker), "
    "statistics_to_client = the reduced statistics, worker_to_worker_at_most = "
    "(n_chunks - 1) x one chunk's statistics (the tree of additions runs on the workers; "
    "additions on one worker move nothing). wire: bytes written by distributed's TCP comms "
    "(frames with their headers; counted by wrapping distributed.comm.tcp.TCP.write in every "
    "process), per process and connection name, differenced between fits of m2 and m1 "
    "iterations like the times (every message counts: graph, task and status messages, "
    "heartbeats); the client process also hosts the LocalCluster's scheduler, so its count "
    "is client->scheduler plus scheduler->workers and ->client."
)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DataSpec:
    """The rows of the case: chunk ``c`` is a function of (seed, c) alone."""

    n_samples: int
    chunk_rows: int = CHUNK_ROWS
    n_features: int = N_FEATURES
    n_components: int = N_COMPONENTS
    seed: int = SEED
    separation: float = SEPARATION

    @property
    def n_chunks(self):
        return -(-self.n_samples // self.chunk_rows)

    def rows_in_chunk(self, c):
        return min(self.chunk_rows, self.n_samples - c * self.chunk_rows)


def true_mixture(spec):
    """``(weights, means, factors)`` of the mixture the rows are drawn from.

    As :func:`benchmarks.data.make_data`: Dirichlet(5) weights, means about
    ``separation`` standard deviations apart, covariances ``factor @ factor.T``
    with eigenvalues in [0.5, 2].
    """
    rng = np.random.default_rng([spec.seed, 1])
    d, k = spec.n_features, spec.n_components
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(scale=spec.separation / np.sqrt(2.0 * d), size=(k, d))
    factors = np.stack([_random_covariance_factor(rng, d) for _ in range(k)])
    return weights, means, factors


def generate_chunk(spec, c, n_rows=None):
    """Chunk ``c`` of the data (C-contiguous float64), or its first ``n_rows`` rows.

    The same bytes in a Dask worker, in the in-process worker and in Spark's
    Python workers: the chunk is seeded by ``(seed, 2, c)`` and always drawn
    whole, so a prefix of the data is a prefix of its chunks.
    """
    rows = spec.rows_in_chunk(c)
    weights, means, factors = true_mixture(spec)
    rng = np.random.default_rng([spec.seed, 2, c])
    labels = rng.choice(spec.n_components, size=rows, p=weights)
    z = rng.standard_normal((rows, spec.n_features))
    out = np.empty((rows, spec.n_features))
    for j in range(spec.n_components):
        mask = labels == j
        out[mask] = z[mask] @ factors[j].T + means[j]
    return out if n_rows is None else np.ascontiguousarray(out[:n_rows])


def chunk_digest(block):
    """A short digest of one chunk's bytes."""
    return hashlib.blake2b(np.ascontiguousarray(block).data, digest_size=8).hexdigest()


def combined_digest(digests):
    """One digest for the whole data: of the chunks' digests, in order."""
    return hashlib.blake2b("".join(digests).encode(), digest_size=8).hexdigest()


def generate_array(spec, n_rows=None):
    """The first ``n_rows`` rows (default all) as one NumPy array, and the chunks' digests."""
    n_rows = spec.n_samples if n_rows is None else n_rows
    X = np.empty((n_rows, spec.n_features))
    digests = []
    for c in range(-(-n_rows // spec.chunk_rows)):
        lo = c * spec.chunk_rows
        block = generate_chunk(spec, c, min(spec.chunk_rows, n_rows - lo))
        X[lo:lo + block.shape[0]] = block
        digests.append(chunk_digest(block))
    return X, digests


def _chunk_moments(block):
    """(rows, mean, centred scatter) of one chunk."""
    mean = block.mean(axis=0)
    centred = block - mean
    return block.shape[0], mean, centred.T @ centred


def _merge_moments(a, b):
    """Chan et al.'s pairwise merge of two (rows, mean, scatter) triples."""
    na, ma, sa = a
    nb, mb, sb = b
    n = na + nb
    delta = mb - ma
    return n, ma + delta * (nb / n), sa + sb + np.outer(delta, delta) * (na * nb / n)


def start_params(spec, rows, covariance):
    """The :class:`~benchmarks.data.Start` of the case, as the suite draws it.

    Uniform weights, K distinct random rows as means (``rows``, drawn with
    :func:`start_rows`), and the inverse of the data's covariance for every
    component.
    """
    k = spec.n_components
    precision = np.linalg.inv(covariance)
    precision = 0.5 * (precision + precision.T)
    return Start(np.full(k, 1.0 / k), np.ascontiguousarray(rows),
                 np.ascontiguousarray(np.broadcast_to(precision, (k,) + precision.shape)))


def start_rows(spec):
    """Indices of the K rows the starting means are taken from (sorted)."""
    rng = np.random.default_rng([spec.seed, 3])
    return np.sort(rng.choice(spec.n_samples, size=spec.n_components, replace=False))


def scale_case(spec):
    """The suite's :class:`~benchmarks.cases.Case` for the data (for its name and the fits)."""
    return Case("gmm", spec.n_samples, spec.n_features, spec.n_components, COVARIANCE_TYPE,
                peer="spark", separation=spec.separation, seed=spec.seed)


def _start_record(start):
    return {"weights": start.weights.tolist(), "means": start.means.tolist(),
            "precisions": start.precisions.tolist()}


def _start_from_record(record):
    return Start(np.asarray(record["weights"]), np.asarray(record["means"]),
                 np.asarray(record["precisions"]))


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ScaleSettings:
    """What a scale run does; see ``python -m benchmarks.scale --help``."""

    n_samples: int = N_SAMPLES
    chunk_rows: int = CHUNK_ROWS
    n_workers: int = N_WORKERS
    repeats: int = 5
    iterations: tuple = (2, 8)
    spark: bool = True
    spark_rows: int = SPARK_ROWS
    spark_repeats: int = 3
    spark_iterations: tuple = (1, 3)
    spark_timeout: float = 3600.0
    install: bool = True
    seed: int = SEED
    command: list = field(default_factory=list)

    @property
    def spec(self):
        return DataSpec(self.n_samples, self.chunk_rows, seed=self.seed)


def log(message):
    """Progress goes to stderr, so that stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] scale: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- timing helpers


def per_iteration_summary(fit_seconds, n_iter, iterations):
    """Median and best seconds per iteration from ``{m: [seconds]}`` and ``{m: [n_iter]}``."""
    m1, m2 = iterations
    samples = []
    for t1, t2, n1, n2 in zip(fit_seconds[m1], fit_seconds[m2], n_iter[m1], n_iter[m2]):
        ran = n2 - n1
        samples.append((t2 - t1) / ran if ran > 0 else float("nan"))
    finite = [s for s in samples if np.isfinite(s)]
    positive = [s for s in finite if s > 0]
    return {"seconds_per_iter": float(np.median(finite)) if finite else float("nan"),
            "best_seconds_per_iter": float(min(positive)) if positive else float("nan"),
            "samples": samples,
            "fit_seconds": {str(m): list(v) for m, v in fit_seconds.items()},
            "n_iter": {str(m): list(v) for m, v in n_iter.items()}}


def _ratio(a, b):
    if a is None or b is None or not (np.isfinite(a) and np.isfinite(b)) or b <= 0:
        return None
    return float(a / b)


def _rss_mib(pid=None):
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def _peak_rss_mib():
    """VmHWM of this process (peak resident memory), MiB; None where /proc has none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- the in-process worker


def _inprocess_main(conn, spec_record, start_record, threads):
    """A separate process: the whole data in one array, emlab with ``threads`` Numba threads.

    Answers ``("fit", m)`` with ``(seconds, n_iter, trajectory)`` until ``("stop",)``.
    """
    try:
        from .machine import limited_threads
        from .peers import Emlab
        from .timing import timed_fit

        spec = DataSpec(**spec_record)
        start = _start_from_record(start_record)
        case = scale_case(spec)
        began = time.perf_counter()
        X, digests = generate_array(spec)
        generated = time.perf_counter() - began
        library = Emlab()
        with limited_threads(threads):
            import numba

            library.fit(case, X, start, 1)  # loads the kernels, pages X in
            conn.send(("ready", {"checksum": combined_digest(digests), "seconds": generated,
                                 "numba_threads": numba.get_num_threads(),
                                 "threading_layer": _threading_layer(),
                                 "pid": os.getpid()}))
            while True:
                message = conn.recv()
                if message[0] == "stop":
                    conn.send(("stopped", {"peak_rss_mib": _peak_rss_mib(),
                                           "rss_mib": _rss_mib()}))
                    return
                seconds, fit = timed_fit(library, case, X, start, message[1])
                conn.send(("fit", (seconds, fit.n_iter, fit.trajectory.tolist(),
                                   list(fit.warnings))))
    except BaseException:  # report, then let the parent decide
        conn.send(("error", traceback.format_exc()))


def _threading_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:
        return None


class InProcess:
    """The in-process emlab, in a spawned process (so its Numba and OpenMP are its own)."""

    def __init__(self, spec, start, threads):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_inprocess_main, args=(child, asdict(spec), _start_record(start), threads),
            daemon=True)
        self.process.start()
        child.close()
        self.info = None

    def _receive(self, expected):
        while not self.conn.poll(1.0):
            if not self.process.is_alive():
                raise RuntimeError(f"the in-process worker died (exit code "
                                   f"{self.process.exitcode}; out of memory?)")
        kind, payload = self.conn.recv()
        if kind == "error":
            raise RuntimeError(f"the in-process worker failed:\n{payload}")
        assert kind == expected, (kind, expected)
        return payload

    def ready(self):
        if self.info is None:
            self.info = self._receive("ready")
        return self.info

    def fit(self, max_iter):
        self.conn.send(("fit", max_iter))
        return self._receive("fit")

    def close(self):
        try:
            self.conn.send(("stop",))
            return self._receive("stopped")
        finally:
            self.process.join(timeout=30)
            if self.process.is_alive():
                self.process.terminate()


# --------------------------------------------------------------------------- the cluster


def _worker_info():
    """Run on each worker: its pid, Numba's threads and the thread variables it started with."""
    import numba

    return {"pid": os.getpid(), "numba_threads": numba.get_num_threads(),
            "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
            "threading_layer": _threading_layer()}


def _worker_memory():
    import psutil

    return psutil.Process().memory_info().rss / 2**20


@contextmanager
def local_cluster(n_workers):
    """A ``LocalCluster`` of ``n_workers`` spawned processes, 1 thread each, Numba on 1 thread.

    ``env`` is set in each worker process before it starts (the Nanny passes
    it), so ``NUMBA_NUM_THREADS=1`` caps Numba's pool at one thread; Dask's
    own ``pre-spawn-environ`` already sets OMP, MKL and OpenBLAS to 1.
    """
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", env={"NUMBA_NUM_THREADS": "1"}) as cluster, \
            Client(cluster) as client:
        yield client


def distributed_data(client, spec):
    """The data as a Dask array whose chunks are generated and kept on the workers.

    Chunk ``c`` is generated by a task pinned to worker ``c * n_workers //
    n_chunks`` (sorted addresses): each worker holds an equal run of
    consecutive chunks, each E-step task runs where its chunk is, and the
    fixed binary tree that adds the statistics stays on one worker until its
    last levels. The client holds only futures.

    Returns
    -------
    X : dask.array.Array
    futures : list of distributed.Future
    """
    import dask.array as da
    from distributed import wait

    addresses = sorted(client.scheduler_info()["workers"])
    futures = [client.submit(generate_chunk, spec, c, pure=True,
                             workers=[addresses[c * len(addresses) // spec.n_chunks]],
                             allow_other_workers=False)
               for c in range(spec.n_chunks)]
    wait(futures)
    X = da.concatenate([da.from_delayed(f, shape=(spec.rows_in_chunk(c), spec.n_features),
                                        dtype=np.float64) for c, f in enumerate(futures)])
    return X, futures


def start_on_workers(client, spec, futures):
    """The start (:func:`start_params`) from moments reduced on the workers and K gathered rows."""
    moments = client.gather(client.map(_chunk_moments, futures, pure=True))
    total = moments[0]
    for m in moments[1:]:
        total = _merge_moments(total, m)
    n, _, scatter = total
    rows = start_rows(spec)
    picked = []
    for r in rows:  # K rows, each taken from its chunk on the worker that holds it
        c, i = divmod(int(r), spec.chunk_rows)
        picked.append(client.submit(_take_row, futures[c], i, pure=True))
    means = np.stack(client.gather(picked))
    return start_params(spec, means, scatter / (n - 1))


def _take_row(block, i):
    return np.array(block[i])


#: The counter's name for comms that distributed leaves unnamed: those a process accepted
#: to answer requests (a worker's replies with data to another worker or to the client).
UNNAMED = "replies (accepted, unnamed)"


def install_write_counter():
    """Count the bytes distributed's TCP comms write in this process, by connection name.

    Wraps ``distributed.comm.tcp.TCP.write`` (which returns the bytes it
    queued: the frames and their headers) once per process; existing comms
    use it too. Returns the counter (a dict: comm name -> bytes).
    """
    from distributed.comm import tcp

    counter = getattr(tcp.TCP.write, "emlab_bytes", None)
    if counter is not None:
        return counter
    counter = {}
    original = tcp.TCP.write

    async def write(self, msg, serializers=None, on_error="message"):
        n = await original(self, msg, serializers=serializers, on_error=on_error)
        name = (getattr(self, "name", None) or UNNAMED).split(".")[0]
        counter[name] = counter.get(name, 0) + n
        return n

    write.emlab_bytes = counter
    tcp.TCP.write = write
    return counter


def written_bytes():
    """The counts of :func:`install_write_counter` so far (a copy)."""
    from distributed.comm import tcp

    return dict(getattr(tcp.TCP.write, "emlab_bytes", {}))


def _wire_snapshot(client):
    """``{'client_and_scheduler': {...}, worker address: {...}}``: bytes written so far."""
    snapshot = {"client_and_scheduler": written_bytes()}
    snapshot.update(client.run(written_bytes))
    return snapshot


def _wire_delta(before, after):
    return {proc: {name: after[proc].get(name, 0) - before.get(proc, {}).get(name, 0)
                   for name in after[proc]} for proc in after}


@contextmanager
def payload_probe(record):
    """Record, in the client, the pickled sizes of what one E-step sends and gets back."""
    from emlab import _dask

    original = _dask.DaskData.map_reduce

    def probe(self, fn, params_list):
        record["params_payload_bytes"] = len(pickle.dumps((fn, list(params_list)), protocol=5))
        out = original(self, fn, params_list)
        record["statistics_bytes"] = len(pickle.dumps(out, protocol=5))
        record["n_chunks"] = self.n_chunks
        return out

    _dask.DaskData.map_reduce = probe
    try:
        yield record
    finally:
        _dask.DaskData.map_reduce = original


# --------------------------------------------------------------------------- Dask and in-process


def run_dask_and_inprocess(settings, results):
    """Time emlab on the cluster and in one process, interleaved; fill ``results``.

    Returns the start (:class:`~benchmarks.data.Start`) both used, for Spark.
    """
    import dask
    import distributed

    from .peers import Emlab
    from .timing import timed_fit

    spec = settings.spec
    case = scale_case(spec)
    m1, m2 = settings.iterations
    library = Emlab()
    client_rss_start = _rss_mib()
    with local_cluster(settings.n_workers) as client:
        workers = client.run(_worker_info)
        results["workers"] = workers
        log(f"cluster up: {len(workers)} workers, Numba threads "
            f"{[w['numba_threads'] for w in workers.values()]}; generating {spec.n_chunks} "
            f"chunks of {format_count(spec.chunk_rows)} rows on the workers")
        began = time.perf_counter()
        X, futures = distributed_data(client, spec)
        digests = client.gather(client.map(chunk_digest, futures, pure=True))
        who = client.who_has(futures)
        per_worker = {}
        for holders in who.values():
            for address in holders:
                per_worker[address] = per_worker.get(address, 0) + 1
        start = start_on_workers(client, spec, futures)
        results["data"] = {
            "generated_on": "workers", "checksum": combined_digest(digests),
            "chunks_per_worker": per_worker, "seconds_to_generate": time.perf_counter() - began,
            "start": "uniform weights, K distinct random rows as means, the inverse of the "
                     "data's covariance (reduced on the workers) for every component"}
        log(f"data {combined_digest(digests)} ({time.perf_counter() - began:.1f} s); "
            f"starting the in-process worker")
        inprocess = InProcess(spec, start, settings.n_workers)
        try:
            probe = {}
            with payload_probe(probe):
                library.fit(case, X, start, 1)  # untimed: loads the kernels on the workers
            info = inprocess.ready()
            results["inprocess_worker"] = info
            results["data"]["inprocess_checksum"] = info["checksum"]
            results["data"]["same_data"] = info["checksum"] == results["data"]["checksum"]
            if not results["data"]["same_data"]:
                raise RuntimeError("the in-process worker generated other data than the workers")
            install_write_counter()
            client.run(install_write_counter)
            times = {"dask": {m1: [], m2: []}, "inprocess": {m1: [], m2: []}}
            iters = {"dask": {m1: [], m2: []}, "inprocess": {m1: [], m2: []}}
            io = {m1: [], m2: []}
            trajectories, fit_warnings = {}, {}
            for repeat in range(settings.repeats):
                order = ("dask", "inprocess") if repeat % 2 == 0 else ("inprocess", "dask")
                log(f"repeat {repeat + 1}/{settings.repeats}: {' then '.join(order)}")
                for name in order:
                    for m in (m1, m2):
                        if name == "dask":
                            before = _wire_snapshot(client)
                            seconds, fit = timed_fit(library, case, X, start, m)
                            io[m].append(_wire_delta(before, _wire_snapshot(client)))
                            n_iter, trajectory, warned = fit.n_iter, fit.trajectory, fit.warnings
                        else:
                            seconds, n_iter, trajectory, warned = inprocess.fit(m)
                        times[name][m].append(seconds)
                        iters[name][m].append(n_iter)
                        if m == m2 and name not in trajectories:
                            trajectories[name] = np.asarray(trajectory, dtype=np.float64)
                            fit_warnings[name] = list(warned)
            results["inprocess_worker"].update(inprocess.close())
        finally:
            if inprocess.process.is_alive():
                inprocess.process.terminate()
        results["memory_mib"] = {
            "client_rss_start": client_rss_start, "client_rss_end": _rss_mib(),
            "client_peak": _peak_rss_mib(),
            "workers_rss": client.run(_worker_memory),
            "inprocess_peak": results["inprocess_worker"].get("peak_rss_mib")}
        del X, futures
    versions = {"dask": dask.__version__, "distributed": distributed.__version__}
    for name in ("dask", "inprocess"):
        record = per_iteration_summary(times[name], iters[name], settings.iterations)
        record["trajectory"] = trajectories[name].tolist()
        record["warnings"] = fit_warnings[name]
        results["libraries"][name] = record
    results["libraries"]["dask"]["version"] = versions
    results["libraries"]["dask"]["setup"] = (f"{settings.n_workers} worker processes x 1 thread, "
                                             f"NUMBA_NUM_THREADS=1, client in this process")
    results["libraries"]["inprocess"]["setup"] = (
        f"one spawned process, {settings.n_workers} Numba threads, X as one NumPy array")
    results["trajectory_rel_diff"] = trajectory_rel_diff(trajectories["dask"],
                                                         trajectories["inprocess"])
    results["bytes_per_iteration"] = bytes_record(probe, io, iters["dask"], settings)
    return start


def bytes_record(probe, io, n_iter, settings):
    """The ``bytes_per_iteration`` record: pickled sizes, and OS write counters differenced."""
    m1, m2 = settings.iterations
    n_chunks = probe.get("n_chunks", settings.spec.n_chunks)
    stats = probe.get("statistics_bytes")
    payload = probe.get("params_payload_bytes")
    record = {"method": BYTES_METHOD,
              "params_payload_bytes": payload,
              "params_to_workers": None if payload is None else payload * settings.n_workers,
              "statistics_to_client": stats,
              "worker_to_worker_at_most": None if stats is None else stats * (n_chunks - 1),
              "data_bytes": 8 * settings.n_samples * N_FEATURES}
    samples = []
    for d1, d2, n1, n2 in zip(io[m1], io[m2], n_iter[m1], n_iter[m2]):
        if n2 > n1:
            samples.append({proc: {name: (d2[proc].get(name, 0) - d1.get(proc, {}).get(name, 0))
                                   / (n2 - n1) for name in d2[proc]} for proc in d2})
    if samples:
        procs = sorted(samples[0], key=lambda p: (p != "client_and_scheduler", p))
        by_name = {p: {name: float(np.median([s.get(p, {}).get(name, 0) for s in samples]))
                       for name in sorted(samples[0][p])} for p in procs}
        totals = {p: float(np.median([sum(s.get(p, {}).values()) for s in samples]))
                  for p in procs}
        record["wire"] = {"client_and_scheduler": totals["client_and_scheduler"],
                          "workers": [totals[p] for p in procs[1:]],
                          "total": float(sum(totals.values())), "by_connection": by_name}
    else:
        record["wire"] = None
    return record


# --------------------------------------------------------------------------- Spark


def java_version():
    """``java -version``'s first line, or None when there is no Java runtime."""
    java = shutil.which("java")
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        java = str(Path(home, "bin", "java"))
    if java is None:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (out.stderr or out.stdout).strip().splitlines()
    return lines[0] if out.returncode == 0 and lines else None


def installed_pyspark():
    """pyspark's version if it can be imported by this interpreter, else None."""
    out = subprocess.run([sys.executable, "-c", "import pyspark; print(pyspark.__version__)"],
                         capture_output=True, text=True, timeout=120)
    return out.stdout.strip() if out.returncode == 0 else None


def ensure_pyspark(install):
    """``(version, message)``: pyspark's version (installed now if missing and ``install``)."""
    version = installed_pyspark()
    if version is not None:
        return version, None
    if not install:
        return None, "pyspark is not installed (and --no-install was given)"
    log(f"pyspark is missing: pip install pyspark=={PYSPARK_VERSION} (a few minutes)")
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
               f"pyspark=={PYSPARK_VERSION}"]
    try:
        out = subprocess.run(command, capture_output=True, text=True,
                             timeout=PYSPARK_INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"pip install pyspark=={PYSPARK_VERSION} took over {PYSPARK_INSTALL_TIMEOUT} s"
    except OSError as exc:
        return None, f"could not run pip: {exc}"
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        return None, f"pip install pyspark=={PYSPARK_VERSION} failed: {' '.join(tail)}"
    version = installed_pyspark()
    return (version, None) if version else (None, "pyspark installed but cannot be imported")


def spark_driver_memory_gib(n_rows):
    """Heap for the driver (Spark's local mode runs everything in it), in GiB.

    A row of 8 doubles cached as an MLlib vector takes about 120 bytes; our
    cached RDD and MLlib's own cached copy (one per ``train`` call, dropped
    when the JVM collects it) need room in Spark's storage fraction (60% of
    the heap): 600 bytes a row, and 2 GiB more.
    """
    return int(max(2, math.ceil(n_rows * 600 / 2**30) + 2))


def run_spark(settings, start):
    """Time Spark MLlib in a child process; the ``spark`` record (never raises)."""
    spec = settings.spec
    n_rows = min(settings.spark_rows, spec.n_samples)
    record = {"status": "skipped", "n_samples_measured": n_rows,
              "iterations": list(settings.spark_iterations), "repeats": settings.spark_repeats}
    if not settings.spark:
        record["message"] = "not run (--no-spark)"
        return record
    java = java_version()
    record["java"] = java
    if java is None:
        record["message"] = "no Java runtime (java not on PATH nor in JAVA_HOME): Spark skipped"
        log(record["message"])
        return record
    version, message = ensure_pyspark(settings.install)
    record["version"] = version
    if version is None:
        record["message"] = f"{message}: Spark skipped"
        log(record["message"])
        return record
    with tempfile.TemporaryDirectory(prefix="emlab-scale-spark-") as tmp:
        spec_path, out_path, log_path = (Path(tmp, n) for n in ("spec.json", "out.json", "log"))
        spec_path.write_text(json.dumps({
            "data": asdict(spec), "n_rows": n_rows, "start": _start_record(start),
            "iterations": list(settings.spark_iterations), "repeats": settings.spark_repeats,
            "threads": settings.n_workers, "driver_memory_gib": spark_driver_memory_gib(n_rows),
            "tmp": tmp}))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get(
            "PYTHONPATH", "").split(os.pathsep) if p])
        env["PYSPARK_PYTHON"] = env["PYSPARK_DRIVER_PYTHON"] = sys.executable
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        log(f"Spark MLlib {version} ({java}), local[{settings.n_workers}], "
            f"{format_count(n_rows)} rows")
        try:
            with open(log_path, "w") as stream:
                out = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--spark-child",
                                      str(spec_path), str(out_path)], cwd=tmp, env=env,
                                     stdout=stream, stderr=subprocess.STDOUT,
                                     timeout=settings.spark_timeout)
            failed = out.returncode != 0 or not out_path.exists()
        except subprocess.TimeoutExpired:
            failed = f"took over {settings.spark_timeout:.0f} s"
        if failed:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
            record["status"] = "error"
            reason = failed if isinstance(failed, str) else f"exit status {out.returncode}"
            record["message"] = f"the Spark run failed ({reason}): " + "\n".join(tail)
            log(record["message"])
            return record
        record.update(json.loads(out_path.read_text()))
    record["status"] = "ok"
    record.update(scale_spark(record, spec.n_samples))
    return record


def scale_spark(record, n_samples):
    """Spark's seconds per iteration at N from its measurement at ``n_samples_measured``.

    ``fixed + (t(n) - fixed) * N / n``: ``fixed`` is the per-iteration time on
    a tiny data set (job launch, broadcast, tree aggregation, M-step), which
    does not grow with N; the rest is taken to grow linearly with the rows.
    """
    n = record["n_samples_measured"]
    measured = record["seconds_per_iter_measured"]
    fixed = record.get("fixed_seconds_per_iter")
    if n >= n_samples:
        return {"seconds_per_iter": measured, "scaling": "none: measured at N"}
    fixed = fixed if fixed is not None and np.isfinite(fixed) and 0 <= fixed < measured else 0.0
    return {"seconds_per_iter": fixed + (measured - fixed) * n_samples / n,
            "scaling": f"measured at N={n}, scaled per row to N={n_samples}: "
                       f"fixed + (measured - fixed) * N / n, fixed = {fixed:.3g} s "
                       f"(the per-iteration time on {SPARK_TINY_ROWS} rows)"}


def spark_ranges(n_rows, chunk_rows, threads):
    """Row ranges ``[a, b)`` of Spark's partitions: one per chunk, at least one per core."""
    parts = max(threads, -(-n_rows // chunk_rows))
    bounds = np.linspace(0, n_rows, parts + 1).round().astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _spark_partition(spec, ranges):
    """Spark's Python workers: rows ``[a, b)`` of the data, as MLlib vectors."""
    from pyspark.mllib.linalg import DenseVector

    for a, b in ranges:
        for c in range(a // spec.chunk_rows, -(-b // spec.chunk_rows)):
            lo = c * spec.chunk_rows
            block = generate_chunk(spec, c)[max(a, lo) - lo:b - lo]
            for row in block:
                yield DenseVector(row)


def spark_child(spec_path, out_path):
    """The Spark run (a child process): cache the rows in the JVM, time MLlib, check it."""
    job = json.loads(Path(spec_path).read_text())
    spec = DataSpec(**job["data"])
    n_rows, start = job["n_rows"], _start_from_record(job["start"])
    m1, m2 = job["iterations"]
    threads = job["threads"]
    from pyspark import StorageLevel
    from pyspark.mllib.common import _to_java_object_rdd
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(f"local[{threads}]").appName("emlab-scale")
             .config("spark.driver.memory", f"{job['driver_memory_gib']}g")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.ui.enabled", "false")
             .config("spark.local.dir", job["tmp"])
             .config("spark.sql.warehouse.dir", str(Path(job["tmp"], "warehouse")))
             .getOrCreate())
    sc = spark.sparkContext
    sc.setLogLevel("ERROR")
    out = {"java_runtime": sc._jvm.System.getProperty("java.version"),
           "master": sc.master, "driver_memory": sc.getConf().get("spark.driver.memory"),
           "api": "pyspark.mllib (RDD-based) GaussianMixture via PythonMLLibAPI."
                  "trainGaussianMixtureModel, convergenceTol=0, initialModel = the start",
           "start": "exact: the same weights, means and covariances (inverse of the "
                    "precisions) as initialModel; the seed is unused"}

    def cached_rows(rows):
        ranges = spark_ranges(rows, spec.chunk_rows, threads)
        python_rdd = sc.parallelize(ranges, len(ranges)).mapPartitions(
            partial(_spark_partition, spec))
        jrdd = _to_java_object_rdd(python_rdd).persist(
            sc._getJavaStorageLevel(StorageLevel.MEMORY_ONLY))
        assert jrdd.count() == rows
        return jrdd, len(ranges)

    def train(jrdd, max_iter):
        from pyspark.mllib.clustering import GaussianMixtureModel
        from pyspark.mllib.common import callMLlibFunc
        from pyspark.mllib.linalg import DenseMatrix, DenseVector

        covariances = np.linalg.inv(start.precisions)
        weights = [float(w) for w in start.weights]
        mus = [DenseVector(m) for m in start.means]
        sigmas = [DenseMatrix(spec.n_features, spec.n_features, c.ravel(order="F").tolist())
                  for c in covariances]
        # MLlib caches its own copy of the rows in every run and never unpersists it; a JVM
        # collection lets Spark's ContextCleaner drop the earlier, unreferenced copies.
        sc._jvm.System.gc()
        gc.collect()
        time.sleep(0.2)
        began = time.perf_counter()
        model = callMLlibFunc("trainGaussianMixtureModel", jrdd, spec.n_components, 0.0,
                              max_iter, None, weights, mus, sigmas)
        seconds = time.perf_counter() - began
        return seconds, GaussianMixtureModel(model)

    def timed(jrdd, repeats):
        train(jrdd, 1)  # warm-up: JIT, MLlib's own cache of the rows
        times, fits = {m1: [], m2: []}, {}
        for _ in range(repeats):
            for m in (m1, m2):
                seconds, model = train(jrdd, m)
                times[m].append(seconds)
                fits.setdefault(m, model)
        n_iter = {m: [m] * repeats for m in (m1, m2)}
        return per_iteration_summary(times, n_iter, (m1, m2)), fits

    began = time.perf_counter()
    jrdd, parts = cached_rows(n_rows)
    out["partitions"] = parts
    out["load_seconds"] = time.perf_counter() - began
    out["data_source"] = ("regenerated in Spark's Python workers by the same chunk generator "
                          "(the first n_samples_measured rows of the case's data), converted "
                          "to MLlib vectors and cached in the JVM before timing")
    summary, fits = timed(jrdd, job["repeats"])
    out["input_cache"] = _rdd_storage(sc, jrdd)
    out["measured"] = summary
    out["seconds_per_iter_measured"] = summary["seconds_per_iter"]
    model = fits[m2]
    final = {"weights": np.asarray(model.weights, dtype=np.float64),
             "means": np.stack([g.mu.toArray() for g in model.gaussians]),
             "covariances": np.stack([g.sigma.toArray() for g in model.gaussians])}
    jrdd.unpersist()
    tiny, _ = cached_rows(min(SPARK_TINY_ROWS, n_rows))
    tiny_summary, _ = timed(tiny, job["repeats"])
    out["fixed"] = tiny_summary
    out["fixed_seconds_per_iter"] = tiny_summary["seconds_per_iter"]
    spark.stop()
    out["check"] = check_spark(spec, n_rows, start, m2, final)
    Path(out_path).write_text(json.dumps(_jsonable(out)))


def _rdd_storage(sc, jrdd):
    """How much of a cached RDD is in memory (partitions cached of all, MiB)."""
    for info in sc._jsc.sc().getRDDStorageInfo():
        if info.id() == jrdd.id():
            return {"cached_partitions": info.numCachedPartitions(),
                    "partitions": info.numPartitions(), "memory_mib": info.memSize() / 2**20}
    return {"cached_partitions": 0, "partitions": jrdd.getNumPartitions(), "memory_mib": 0.0}


#: What MLlib adds to every weighted component density in its E-step (``MLUtils.EPSILON``,
#: the machine epsilon): ``p_k = EPSILON + w_k * pdf_k(x)``. An absolute floor, so Spark's
#: iterates are not exact EM where every density is small (as they all are from a broad start
#: at d = 8); :func:`spark_reference_em` does the same, to check Spark's start and iterations.
SPARK_EPSILON = float(np.finfo(np.float64).eps)


def spark_reference_em(X, start, n_iter, block_rows=262_144):
    """``n_iter`` EM iterations as MLlib computes them (densities, not logs, plus
    :data:`SPARK_EPSILON`), in NumPy; ``{'weights', 'means', 'covariances'}``."""
    from scipy.linalg import solve_triangular

    n, d = X.shape
    weights = np.asarray(start.weights, dtype=np.float64)
    means = np.asarray(start.means, dtype=np.float64)
    covariances = np.linalg.inv(start.precisions)
    k = weights.size
    for _ in range(n_iter):
        factors = np.linalg.cholesky(covariances)
        log_norm = -0.5 * d * np.log(2 * np.pi) - np.log(np.diagonal(factors, axis1=1,
                                                                          axis2=2)).sum(axis=1)
        nk, sums, scatter = np.zeros(k), np.zeros((k, d)), np.zeros((k, d, d))
        for lo in range(0, n, block_rows):
            x = X[lo:lo + block_rows]
            p = np.empty((x.shape[0], k))
            for j in range(k):
                z = solve_triangular(factors[j], (x - means[j]).T, lower=True)
                p[:, j] = weights[j] * np.exp(log_norm[j] - 0.5 * np.einsum("ij,ij->j", z, z))
            p += SPARK_EPSILON
            p /= p.sum(axis=1, keepdims=True)
            nk += p.sum(axis=0)
            sums += p.T @ x
            scatter += np.einsum("ik,ia,ib->kab", p, x, x, optimize=True)
        weights = nk / nk.sum()
        means = sums / nk[:, None]
        covariances = scatter / nk[:, None, None] - np.einsum("ka,kb->kab", means, means)
    return {"weights": weights, "means": means, "covariances": covariances}


def _params_rel_diff(theirs, ours):
    diffs = {name: float(np.max(np.abs(np.asarray(theirs[name]) - ours[name])
                                / np.maximum(1.0, np.abs(ours[name]))))
             for name in ("weights", "means", "covariances")}
    return max(diffs.values()), diffs


def check_spark(spec, n_rows, start, max_iter, final):
    """Spark's parameters after ``max_iter`` iterations against (1) the same iterations in
    NumPy with MLlib's epsilon (same start, same iterations: round-off apart) and (2) emlab's
    exact EM (``reg_covar=0``, as Spark has none): how far MLlib's epsilon takes it."""
    import emlab

    from .machine import limited_threads

    X, _ = generate_array(spec, n_rows)
    with limited_threads(2), warnings.catch_warnings():
        warnings.simplefilter("ignore", emlab.ConvergenceWarning)
        gm = emlab.GaussianMixture(spec.n_components, covariance_type=COVARIANCE_TYPE, tol=0.0,
                                   reg_covar=0.0, max_iter=max_iter, weights_init=start.weights,
                                   means_init=start.means, precisions_init=start.precisions)
        gm.fit(X)
        reference = spark_reference_em(X, start, max_iter)
    exact = {"weights": gm.weights_, "means": gm.means_, "covariances": gm.covariances_}
    vs_reference, by_reference = _params_rel_diff(final, reference)
    vs_emlab, by_emlab = _params_rel_diff(final, exact)
    return {"iterations": max_iter, "reference_rel_diff": vs_reference,
            "reference_by_parameter": by_reference, "emlab_rel_diff": vs_emlab,
            "emlab_by_parameter": by_emlab, "epsilon": SPARK_EPSILON,
            "how": "max |spark - other| / max(1, |other|) over the weights, means and "
                   "covariances after the same iterations from the same start; reference = "
                   "NumPy EM adding MLlib's epsilon to each weighted density (what MLlib "
                   "computes), emlab = exact EM (reg_covar=0)"}


def _jsonable(value):
    from .report import jsonable

    return jsonable(value)


# --------------------------------------------------------------------------- the run


def _versions(spark):
    import numba

    import emlab

    out = {"emlab": emlab.__version__, "numpy": np.__version__, "numba": numba.__version__,
           "python": platform.python_version()}
    try:
        import dask
        import distributed

        out.update(dask=dask.__version__, distributed=distributed.__version__)
    except ImportError:
        pass
    out["pyspark"] = spark.get("version")
    out["java"] = spark.get("java_runtime") or spark.get("java")
    return out


def run(settings):
    """Run the scale-out benchmark; its results, in JSON form (see ``benchmarks/README.md``)."""
    from .machine import cpu_model, git_revision
    from .report import evaluate, jsonable

    began = time.perf_counter()
    spec = settings.spec
    case = scale_case(spec)
    results = {
        "schema": 1, "benchmark": "scale",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": list(settings.command), "case": case.name, "n_samples": spec.n_samples,
        "n_features": spec.n_features, "n_components": spec.n_components,
        "covariance_type": COVARIANCE_TYPE, "seed": spec.seed, "separation": spec.separation,
        "data_mib": 8 * spec.n_samples * spec.n_features / 2**20,
        "chunk_rows": spec.chunk_rows, "n_chunks": spec.n_chunks,
        "n_workers": settings.n_workers, "threads_per_worker": 1,
        "inprocess_threads": settings.n_workers, "iterations": list(settings.iterations),
        "repeats": settings.repeats, "load_average_start": list(os.getloadavg()),
        "libraries": {}}
    start = run_dask_and_inprocess(settings, results)
    dask_s = results["libraries"]["dask"]["seconds_per_iter"]
    inproc_s = results["libraries"]["inprocess"]["seconds_per_iter"]
    log(f"dask {dask_s:.4g} s/it, in-process {inproc_s:.4g} s/it, trajectories differ by "
        f"{results['trajectory_rel_diff']:.2g}")
    spark = run_spark(settings, start)
    results["libraries"]["spark"] = spark
    spark_s = spark.get("seconds_per_iter")
    results["dask_over_inprocess"] = _ratio(dask_s, inproc_s)
    results["spark_over_dask"] = _ratio(spark_s, dask_s)
    results["spark_over_inprocess"] = _ratio(spark_s, inproc_s)
    results["spark_reference_rel_diff"] = spark.get("check", {}).get("reference_rel_diff")
    results["spark_emlab_rel_diff"] = spark.get("check", {}).get("emlab_rel_diff")
    values = {t.metric: results[t.metric] for t in TARGETS}
    results["targets"] = evaluate(TARGETS, values)
    results["summary"] = {v: sum(r["verdict"] == v for r in results["targets"])
                          for v in ("PASS", "FAIL", "n/a")}
    results["versions"] = _versions(spark)
    commit, dirty = git_revision(ROOT)
    results["machine"] = {"cpu_model": cpu_model(), "logical_cpus": os.cpu_count(),
                          "platform": platform.platform(), "emlab_git":
                          {"commit": commit, "dirty": dirty}}
    results["load_average_end"] = list(os.getloadavg())
    results["seconds"] = time.perf_counter() - began
    return jsonable(results)


# --------------------------------------------------------------------------- report


def _fmt(value, spec=".3g", suffix=""):
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _bytes(value):
    if value is None:
        return "-"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} B"


def format_report(results):
    """The printed report: one line per library, the bytes, the check and the targets."""
    libs = results["libraries"]
    lines = [f"Scale-out: {results['case']} ({results['data_mib']:.0f} MiB), "
             f"{results['n_chunks']} chunks of {format_count(results['chunk_rows'])} rows, "
             f"{results['n_workers']} workers x 1 thread; iterations {results['iterations']}, "
             f"{results['repeats']} repeats",
             "",
             f"{'library':<11} {'s/it':>9} {'best s/it':>10}  setup"]
    for name in ("dask", "inprocess"):
        lib = libs[name]
        lines.append(f"{name:<11} {_fmt(lib['seconds_per_iter'], '.4g'):>9} "
                     f"{_fmt(lib['best_seconds_per_iter'], '.4g'):>10}  {lib['setup']}")
    spark = libs["spark"]
    if spark.get("status") == "ok":
        measured = spark["measured"]
        lines.append(f"{'spark':<11} {_fmt(spark['seconds_per_iter'], '.4g'):>9} "
                     f"{'':>10}  {spark['master']}, MLlib {spark['version']}, "
                     f"Java {spark['java_runtime']}")
        lines.append(f"{'':<11} {'':>9} {'':>10}  measured {measured['seconds_per_iter']:.4g} "
                     f"s/it at N={format_count(spark['n_samples_measured'])} (best "
                     f"{_fmt(measured['best_seconds_per_iter'], '.4g')}); {spark['scaling']}")
        check = spark["check"]
        lines.append(f"{'':<11} {'':>9} {'':>10}  parameters after {check['iterations']} "
                     f"iterations: vs NumPy EM with MLlib's epsilon "
                     f"{check['reference_rel_diff']:.2g}, vs emlab's exact EM "
                     f"{check['emlab_rel_diff']:.2g}")
    else:
        lines.append(f"{'spark':<11} {spark.get('status', '-'):>9}  {spark.get('message', '')}")
    lines += ["",
              f"dask / in-process: {_fmt(results['dask_over_inprocess'], suffix='x')}   "
              f"spark / dask: {_fmt(results['spark_over_dask'], suffix='x')}   "
              f"trajectory rel diff (dask vs in-process): "
              f"{_fmt(results['trajectory_rel_diff'], '.2g')}"]
    b = results["bytes_per_iteration"]
    lines.append(f"bytes per iteration (pickled): parameters -> workers "
                 f"{_bytes(b['params_to_workers'])} ({results['n_workers']} x "
                 f"{_bytes(b['params_payload_bytes'])}), statistics -> client "
                 f"{_bytes(b['statistics_to_client'])}, worker -> worker at most "
                 f"{_bytes(b['worker_to_worker_at_most'])}; X is {_bytes(b['data_bytes'])}")
    if b.get("wire"):
        w = b["wire"]
        lines.append(f"bytes per iteration (written by distributed's comms): client+scheduler "
                     f"{_bytes(w['client_and_scheduler'])}, workers "
                     f"{', '.join(_bytes(v) for v in w['workers'])}")
    lines.append("")
    for row in results["targets"]:
        lines.append(f"{row['verdict']:<5} {row['target']:<36} {_fmt(row['value'], '.3g')}")
    s = results["summary"]
    lines.append(f"targets: {s['PASS']} PASS, {s['FAIL']} FAIL, {s['n/a']} n/a")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def _count(text):
    """``'1.6e7' -> 16000000``: counts as integers or in scientific notation."""
    value = float(text)
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole count: {text}")
    return int(value)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale",
        description="emlab's EM on a Dask LocalCluster (data generated on the workers) against "
                    "emlab in one process and Spark MLlib: seconds per iteration, bytes per "
                    "iteration, trajectory check. See benchmarks/README.md, 'Scale-out'.")
    parser.add_argument("--quick", action="store_true",
                        help="N=2e5 in chunks of 5e4, 3 repeats, iterations 2 6, Spark on all "
                             "2e5 rows with 2 repeats; writes results/quick-scale.json unless "
                             "--out is given (other options still apply)")
    parser.add_argument("--n", type=_count, default=None,
                        help=f"rows (default {N_SAMPLES:.2g}; e.g. 2e5 for a quick run)")
    parser.add_argument("--chunk-rows", type=_count, default=None,
                        help=f"rows per chunk and Spark partition (default {CHUNK_ROWS:.0e})")
    parser.add_argument("--workers", type=int, default=N_WORKERS,
                        help="Dask worker processes, 1 thread each; also the in-process "
                             "Numba threads and Spark's local[n] (default 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 5)")
    parser.add_argument("--iterations", type=int, nargs=2, default=None, metavar=("M1", "M2"),
                        help="the two iteration counts differenced (default 2 8)")
    parser.add_argument("--no-spark", action="store_true", help="skip Spark")
    parser.add_argument("--no-install", action="store_true",
                        help="do not pip-install pyspark when it is missing (Spark is skipped)")
    parser.add_argument("--spark-n", type=_count, default=None,
                        help=f"most rows Spark is timed on; the time is scaled per row to N "
                             f"(default {SPARK_ROWS:.0e})")
    parser.add_argument("--spark-repeats", type=int, default=None,
                        help="Spark's repeats (default 3)")
    parser.add_argument("--spark-iterations", type=int, nargs=2, default=None,
                        metavar=("M1", "M2"), help="Spark's two iteration counts (default 1 3)")
    parser.add_argument("--spark-timeout", type=float, default=3600.0,
                        help="seconds the Spark run may take, start-up included (default 3600)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file to write (default benchmarks/results/local/scale.json)")
    parser.add_argument("--spark-child", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    return parser


def settings_from_args(args, argv):
    """The :class:`ScaleSettings` of parsed arguments (ValueError when they do not fit)."""
    values = dict(QUICK) if args.quick else {}
    for option, key in (("n", "n_samples"), ("chunk_rows", "chunk_rows"), ("repeats", "repeats"),
                        ("iterations", "iterations"), ("spark_n", "spark_rows"),
                        ("spark_repeats", "spark_repeats"),
                        ("spark_iterations", "spark_iterations")):
        value = getattr(args, option)
        if value is not None:
            values[key] = tuple(value) if isinstance(value, list) else value
    settings = ScaleSettings(**values, n_workers=args.workers, spark=not args.no_spark,
                             spark_timeout=args.spark_timeout, install=not args.no_install,
                             command=["python", "-m", "benchmarks.scale"] + list(argv))
    check_settings(settings)
    return replace(settings, chunk_rows=min(settings.chunk_rows, settings.n_samples))


def check_settings(settings):
    """Raise ValueError for settings a run cannot use."""
    for name in ("iterations", "spark_iterations"):
        m1, m2 = getattr(settings, name)
        if not 1 <= m1 < m2:
            raise ValueError(f"--{name.replace('_', '-')} needs 1 <= M1 < M2; got {m1} {m2}")
    if min(settings.repeats, settings.spark_repeats, settings.n_workers) < 1:
        raise ValueError("--repeats, --spark-repeats and --workers must be at least 1")
    if settings.n_samples < 2 * N_COMPONENTS:
        raise ValueError(f"--n must be at least {2 * N_COMPONENTS}")


def run_and_report(settings, out):
    """Run, write the JSON to ``out``, print the report; returns the results."""
    from .report import write_json

    results = run(settings)
    write_json(results, out)
    log(f"wrote {out}")
    print(format_report(results), flush=True)
    return results


def output_path(args):
    """``--out``, else ``scale.json`` (``quick-scale.json``) in ``benchmarks/results/local/``."""
    return args.out or paths.local_result("quick-scale.json" if args.quick else "scale.json")


def main(argv=None):
    """``python -m benchmarks.scale``: returns 0 (targets may fail; the run did not)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.spark_child:
        spark_child(*args.spark_child)
        return 0
    try:
        settings = settings_from_args(args, argv)
    except ValueError as exc:
        parser.error(str(exc))
    run_and_report(settings, output_path(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
