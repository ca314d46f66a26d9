"""One benchmark run: reference rates, every case side by side, cold start, targets."""

import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from . import coldstart, isolated, memory
from .data import checksum, make_data, make_start
from .machine import (exp_rate, gemm_rate, iteration_limit, limited_threads, machine_info,
                      memory_bandwidth)
from .peers import check_of, get_library
from .report import (COLD_START_TARGET, FIRST_FIT_TARGETS, case_metrics, evaluate, jsonable,
                     memory_tk_multiple, summarise)
from .timing import parameters_rel_diff, per_iteration, trajectory_rel_diff

REFERENCE = "emlab"


@dataclass(frozen=True)
class Settings:
    """What a run does; see ``python -m benchmarks --help``.

    Attributes
    ----------
    cases : list of benchmarks.cases.Case
    repeats : int
        Timed repeats per case (the median is reported).
    iterations : (int, int)
        The two iteration counts ``m1 < m2`` whose times are differenced.
    threads : int
        Numba, BLAS and OpenMP threads, for every library.
    memory, peer, cold_start : bool
        Whether to measure peak memory, to run the peers, and to time cold starts.
    isolate : bool
        Time each library in its own spawned worker process (:mod:`benchmarks.isolated`);
        False: all in the benchmark's process, as before.
    install : bool
        Whether a missing peer (oneDAL, mlpack) may be installed with pip (its pin in
        :mod:`benchmarks.peers`); otherwise it is skipped with a message.
    gemm_size : int
        Order of the square matrices of the GEMM reference.
    bandwidth_mib : int
        Size of the matrix streamed by the bandwidth reference.
    cold_start_repeats : int
    quick : bool
        Recorded only (the caller chose small cases and sizes).
    """

    cases: list
    repeats: int = 5
    iterations: tuple = (2, 8)
    threads: int = 2
    memory: bool = True
    peer: bool = True
    cold_start: bool = True
    gemm_size: int = 3000
    bandwidth_mib: int = 256
    cold_start_repeats: int = 3
    quick: bool = False
    isolate: bool = True
    install: bool = True
    command: list = field(default_factory=list)


def log(message):
    """Progress goes to stderr, so that stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(settings):
    """Run the benchmarks described by ``settings``.

    Returns
    -------
    dict
        The results, already in JSON form (see ``benchmarks/README.md``).
    """
    started = time.perf_counter()
    results = {"schema": 1, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "command": settings.command, "settings": _settings_record(settings)}
    with limited_threads(settings.threads):
        results["load_average_start"] = _load()
        results["gemm"] = _gemm(settings)
        results["bandwidth"] = memory_bandwidth(settings.bandwidth_mib, settings.threads)
        results["exp"] = exp_rate(settings.threads)
        log(f"GEMM {results['gemm']['threads'][settings.threads]['gflops']:.1f} GFLOP/s, "
            f"bandwidth {results['bandwidth']['gb_per_s']:.1f} GB/s, "
            f"exp {results['exp']['per_s'] / 1e9:.2f} G/s")
        gemm_gflops = results["gemm"]["threads"][settings.threads]["gflops"]
        # the limit takes the best GEMM rate measured with at most the run's threads: on a
        # shared machine the run's own count can come out slower than one thread
        best_gflops = max(rate["gflops"] for rate in results["gemm"]["threads"].values())
        rates = {"gflops": best_gflops, "gb_per_s": results["bandwidth"]["gb_per_s"],
                 "exp_per_s": results["exp"]["per_s"]}
        results["limit_rates"] = rates
        results["cases"] = [run_case(case, settings, gemm_gflops, rates)
                            for case in settings.cases]
        results["machine"] = machine_info()
    if settings.cold_start:
        results["cold_start"] = _cold_starts(settings)
        results["cold_start_targets"] = cold_start_targets(results["cold_start"])
    results["seconds"] = time.perf_counter() - started
    results = jsonable(results)
    results["summary"] = summarise(results)
    return results


def _settings_record(settings):
    return {"repeats": settings.repeats, "iterations": list(settings.iterations),
            "threads": settings.threads, "memory": settings.memory, "peer": settings.peer,
            "cold_start": settings.cold_start, "gemm_size": settings.gemm_size,
            "quick": settings.quick, "isolate": settings.isolate, "install": settings.install,
            "cases": [c.name for c in settings.cases]}


def _load():
    """1-, 5- and 15-minute load averages: how busy the (possibly shared) machine was."""
    return list(os.getloadavg())


def _gemm(settings):
    rates = {n: gemm_rate(settings.gemm_size, n) for n in sorted({1, settings.threads})}
    return {"size": settings.gemm_size, "threads": rates}


def _libraries(case, settings, skipped=None):
    """The adapters that time ``case``: emlab, then its peers that fit the model.

    A peer whose ``supports(case)`` gives a reason is left out as ``unsupported``,
    one whose ``available()`` does (not installed and not installable) as
    ``skipped``; both go into ``skipped`` (``{name: message}``) when given.
    """
    peers = [name for name in case.peers if name != REFERENCE] if settings.peer else []
    names = [REFERENCE] + peers
    libraries = [get_library(name) for name in names]
    kept = []
    for lib in libraries:
        if case.model not in lib.models:
            continue
        reason = lib.supports(case) if hasattr(lib, "supports") else None
        status = "unsupported"
        if reason is None and hasattr(lib, "available"):
            log(f"{case.name}: checking that {lib.name} is installed")
            reason, status = lib.available(settings.install), "skipped"
        if reason is not None:
            if skipped is not None:
                skipped[lib.name] = {"status": status, "message": reason}
            log(f"{case.name}: {lib.name} {status}: {reason}")
            continue
        kept.append(lib)
    return kept


def _iterations_and_repeats(libraries, settings):
    """Each library's ``(m1, m2)`` and repeats: the run's, unless the adapter sets its own."""
    iterations = {lib.name: tuple(getattr(lib, "iterations", None) or settings.iterations)
                  for lib in libraries}
    repeats = {lib.name: min(settings.repeats, getattr(lib, "repeats", None) or settings.repeats)
               for lib in libraries}
    return iterations, repeats


def run_case(case, settings, gemm_gflops, rates=None):
    """Time, check and measure one case; its JSON record.

    ``rates`` (``gflops``, ``gb_per_s``, ``exp_per_s``: the run's reference
    rates) give a Gaussian-mixture case its ``limit`` (the lower bound on one
    iteration, :func:`benchmarks.machine.iteration_limit`) and each library's
    ``limit_fractions``.
    """
    record = {"name": case.name, "model": case.model, "covariance_type": case.covariance_type,
              "n_samples": case.n_samples, "n_features": case.n_features,
              "n_components": case.n_components, "peer": case.peer,
              "peers": list(case.peers), "n_sequences": case.n_sequences,
              "sequence_length": case.sequence_length,
              "separation": case.separation, "seed": case.seed,
              "useful_flops": case.useful_flops,
              "arithmetic_intensity": case.arithmetic_intensity,
              "data_mib": case.data_bytes / 2**20, "iterations": list(settings.iterations),
              "isolated": settings.isolate, "status": "ok", "libraries": {}}
    began = time.perf_counter()
    record["load_average_start"] = _load()
    if rates is not None and case.model == "gmm":
        record["limit"] = iteration_limit(case.n_samples, case.n_features, case.n_components,
                                          case.covariance_type, rates["gb_per_s"],
                                          rates["exp_per_s"], rates["gflops"])
    skipped = {}
    libraries = _libraries(case, settings, skipped)
    if skipped:
        record["skipped_peers"] = skipped
    if settings.isolate:
        outcome = _time_isolated(case, settings, libraries, record)
    else:
        outcome = _time_in_process(case, settings, libraries, record)
    if outcome is None:  # the record says why
        record["targets"] = evaluate(case.targets, {})  # all 'n/a'
        log(f"{case.name}: {record['status']}: {record['message']}")
        return record
    libraries, timings, versions = outcome
    iterations, _ = _iterations_and_repeats(libraries, settings)
    for library in libraries:
        record["libraries"][library.name] = _library_record(
            timings[library.name], case, settings, library, versions[library.name],
            iterations[library.name])
    _add_limit_fractions(record)
    _add_checks_and_targets(record, case, timings, gemm_gflops, libraries)
    record["load_average_end"] = _load()
    record["seconds"] = time.perf_counter() - began
    return record


def _time_in_process(case, settings, libraries, record):
    """All libraries in this process (``isolate=False``): ``(libraries, timings, versions)``,
    or None with the failure in ``record``."""
    log(f"{case.name}: data")
    X = make_data(case)
    start = make_start(case, X)
    record["checksum"] = checksum(X)
    failure, libraries = _warm_up(libraries, case, X, start, record)
    if failure is not None:
        record.update(failure)
        return None
    log(f"{case.name}: timing {[lib.name for lib in libraries]} in this process")
    iterations, repeats = _iterations_and_repeats(libraries, settings)
    timings = {}
    for group in {iterations[lib.name] + (repeats[lib.name],) for lib in libraries}:
        members = [lib for lib in libraries
                   if iterations[lib.name] + (repeats[lib.name],) == group]
        timings.update(per_iteration(members, case, X, start, group[:2], group[2]))
    del X
    return libraries, timings, {lib.name: lib.version() for lib in libraries}


def _time_isolated(case, settings, libraries, record):
    """Each library in its own worker process (:mod:`benchmarks.isolated`):
    ``(libraries, timings, versions)``, or None with the failure in ``record``."""
    log(f"{case.name}: starting a worker per library {[lib.name for lib in libraries]}")
    workers = {}
    try:
        kept = []
        for library in libraries:
            worker = isolated.Worker(library.name, case, settings.threads)
            try:
                worker.start()
                worker.fit(1)  # warm-up: kernels loaded, data paged in
            except isolated.WorkerError as exc:
                worker.close()
                failure = _failure(library, case, exc.kind, str(exc))
                if failure is not None:
                    record.update(failure)
                    return None
                record.setdefault("skipped_peers", {})[library.name] = {
                    "status": "error", "message": str(exc)}
                log(f"{case.name}: {library.name} left out: {exc}")
                continue
            workers[library.name] = worker
            kept.append(library)
        record["workers"] = {name: w.info for name, w in workers.items()}
        sums = {name: w.info["checksum"] for name, w in workers.items()}
        record["checksum"] = sums.get(REFERENCE)
        if len(set(sums.values())) > 1:
            record.update(status="error", message=f"the workers' data differ: {sums}")
            return None
        log(f"{case.name}: timing {list(workers)}, each in its own process")
        iterations, repeats = _iterations_and_repeats(kept, settings)
        try:
            timings = isolated.per_iteration(workers, iterations, repeats)
        except isolated.WorkerError as exc:
            record.update(status="error", message=str(exc))
            return None
        return kept, timings, {name: w.info["version"] for name, w in workers.items()}
    finally:
        for worker in workers.values():
            worker.close()


def _failure(library, case, kind, message):
    """The case's failure record when ``library`` cannot fit it, or None when only that
    peer is to be left out (an extra peer; emlab and the case's ``peer`` fail the case).

    emlab raising ValueError marks the case 'unsupported' (e.g. a covariance
    type not implemented yet); anything else raised is an 'error'.
    """
    if library.name == REFERENCE:
        status = "unsupported" if kind == "ValueError" else "error"
    elif library.name == case.peer:
        status = "error"
    else:
        return None
    if kind != "ValueError" and not message.startswith(f"{library.name}: {kind}"):
        message = message.replace(f"{library.name}: ", f"{library.name}: {kind}: ", 1)
    return {"status": status, "message": message}


def _warm_up(libraries, case, X, start, record):
    """One short fit per library (loads kernels, pages the data in).

    Returns ``(failure record or None, the libraries kept)``: an extra peer
    that fails is left out (noted in ``record['skipped_peers']``).
    """
    kept = []
    for library in libraries:
        try:
            library.fit(case, X, start, 1)
        except Exception as exc:  # a benchmark run should report, not stop
            kind = type(exc).__name__
            failure = _failure(library, case, kind, f"{library.name}: {exc}")
            if failure is not None:
                return failure, kept
            record.setdefault("skipped_peers", {})[library.name] = {
                "status": "error", "message": f"{library.name}: {kind}: {exc}"}
            continue
        kept.append(library)
    return None, kept


def _library_record(timing, case, settings, library, version, iterations):
    """One library's JSON record. A whole-fit peer (mlpack: its own start, see
    :class:`benchmarks.peers.Mlpack`) has no ``seconds_per_iter``: its
    differenced time is ``own_start_seconds_per_iter`` and its fits' medians
    ``whole_fit_seconds``."""
    seconds = timing.median
    result = {"seconds_per_iter": seconds, "best_seconds_per_iter": timing.best,
              "samples": timing.samples,
              "fit_seconds": {str(m): s for m, s in timing.fit_seconds.items()},
              "n_iter": {str(m): n for m, n in timing.n_iter.items()},
              "gflops": case.useful_flops / seconds / 1e9 if seconds > 0 else None,
              "warnings": list(timing.fit.warnings), "version": version,
              "trajectory": timing.fit.trajectory, "check": check_of(library),
              "iterations": list(iterations)}
    if getattr(library, "whole_fit", False):
        result.update(seconds_per_iter=None, best_seconds_per_iter=None, gflops=None,
                      own_start_seconds_per_iter=seconds, whole_fit=True,
                      whole_fit_seconds={str(m): float(np.median(s))
                                         for m, s in timing.fit_seconds.items()})
    if timing.fit.parameters is not None:  # bgmm: the fitted parameters the check compares
        result["parameters"] = timing.fit.parameters
    if getattr(library, "blas_threads", None) is not None:  # a peer with its own BLAS setting
        result["blas_threads"] = library.blas_threads
    if settings.memory:
        log(f"{case.name}: memory of {library.name}")
        result["memory"] = memory.measure(case, library.name, settings.iterations[0],
                                          settings.threads)
    return result


def _add_limit_fractions(record):
    """``limit_fractions`` (the case's ``limit_s`` over each library's seconds per
    iteration; for a whole-fit peer, over its own-start differenced time) and
    ``limit_fraction`` (emlab's, the target's metric)."""
    limit = record.get("limit")
    if not limit:
        return
    fractions = {}
    for name, lib in record["libraries"].items():
        seconds = lib.get("seconds_per_iter")
        if seconds is None:
            seconds = lib.get("own_start_seconds_per_iter")
        fractions[name] = (limit["limit_s"] / seconds
                           if seconds is not None and np.isfinite(seconds) and seconds > 0
                           else None)
    record["limit_fractions"] = fractions
    record["limit_fraction"] = fractions.get(REFERENCE)


def _stopped_early(timing):
    """Whether the fit of the larger iteration count ran fewer iterations than asked."""
    m2 = max(timing.fit_seconds)
    return timing.n_iter.get(m2) != m2


def _final_rel_diff(ours, theirs):
    """The ``'final'`` check: emlab's objective after the peer's iteration count against the
    peer's final one, ``|a - b| / max(1, |b|)``; infinite if emlab has no such iteration."""
    if theirs.trajectory.size != 1 or not 1 <= theirs.n_iter <= ours.trajectory.size:
        return float("inf")
    a, b = float(ours.trajectory[theirs.n_iter - 1]), float(theirs.trajectory[0])
    return abs(a - b) / max(1.0, abs(b))


def _add_checks_and_targets(record, case, timings, gemm_gflops, libraries=()):
    """Trajectory differences, stopped-early flags, ratios and target verdicts.

    With several peers (the HMM cases), ``trajectory_rel_diff`` is the largest
    difference against any of them (each is in ``trajectory_rel_diffs``), and
    ``speedup`` / ``memory_ratio`` are against ``case.peer``, the ratios against
    every peer being in ``speedups`` / ``memory_ratios`` and, for the targets,
    in metrics named ``speedup[<peer>]`` / ``memory_ratio[<peer>]``.

    For the variational mixture (``bgmm``) the two libraries' bounds differ by
    constants, so ``trajectory_rel_diff`` compares the fitted parameters after
    ``m2`` iterations instead (:func:`benchmarks.timing.parameters_rel_diff`;
    infinite if the iteration counts differ) and ``trajectory_check`` says
    ``'parameters'`` (``'objective'`` for every other case).

    A peer whose adapter's ``check`` is ``'final'`` (oneDAL: it reports the
    final log-likelihood, not the trajectory) is compared on that one value
    with emlab's after the same number of iterations (:func:`_final_rel_diff`);
    one whose ``check`` is ``'none'`` (mlpack: its own start) is not compared
    (``trajectory_checks`` says which check each peer got). A whole-fit peer
    has no ``speedup``; ``own_start_ratios`` holds its own-start differenced
    seconds per iteration over emlab's, for information.
    """
    checks = {lib.name: check_of(lib) for lib in libraries}
    record["stopped_early"] = {name: _stopped_early(t) for name, t in timings.items()}
    ours = timings[REFERENCE].fit
    diffs, lengths = {}, {}
    for name in case.peers:
        peer = timings.get(name)
        check = checks.get(name, "trajectory")
        if peer is not None and name != REFERENCE and check != "none":
            if check == "final":
                diffs[name] = _final_rel_diff(ours, peer.fit)
            elif ours.parameters is not None or peer.fit.parameters is not None:
                diffs[name] = (parameters_rel_diff(ours.parameters, peer.fit.parameters)
                               if ours.n_iter == peer.fit.n_iter else float("inf"))
            else:
                diffs[name] = trajectory_rel_diff(ours.trajectory, peer.fit.trajectory)
            lengths[name] = [ours.trajectory.size, peer.fit.trajectory.size]
    record["trajectory_check"] = "parameters" if ours.parameters is not None else "objective"
    record["trajectory_rel_diff"] = max(diffs.values()) if diffs else None
    if case.peer in lengths:
        record["trajectory_lengths"] = lengths[case.peer]
    if len(case.peers) > 1:
        record["trajectory_rel_diffs"] = diffs
        record["trajectory_lengths_by_peer"] = lengths
    record.update(case_metrics(record["libraries"], REFERENCE, case.peer, gemm_gflops))
    values = {key: record[key] for key in
              ("speedup", "gemm_fraction", "memory_ratio", "trajectory_rel_diff")}
    values["limit_fraction"] = record.get("limit_fraction")
    record["trajectory_checks"] = {name: checks.get(name, "trajectory") for name in case.peers
                                   if name in timings}
    if len(case.peers) > 1:
        record["speedups"], record["memory_ratios"] = {}, {}
        for name in case.peers:
            metrics = case_metrics(record["libraries"], REFERENCE, name, gemm_gflops)
            record["speedups"][name] = values[f"speedup[{name}]"] = metrics["speedup"]
            record["memory_ratios"][name] = values[f"memory_ratio[{name}]"] = \
                metrics["memory_ratio"]
    own = {name: lib.get("own_start_seconds_per_iter") for name, lib in record["libraries"].items()
           if lib.get("whole_fit")}
    if own:
        ref = record["libraries"][REFERENCE].get("seconds_per_iter")
        record["own_start_ratios"] = {
            name: (s / ref if s is not None and ref is not None and ref > 0 and np.isfinite(s)
                   else None) for name, s in own.items()}
    record["memory_tk_multiple"] = values["memory_tk_multiple"] = memory_tk_multiple(
        record["libraries"].get(REFERENCE, {}), case)
    record["targets"] = evaluate(case.targets, values)


def cold_start_targets(cold_start):
    """The verdicts on emlab's cold start: import plus first fit with a warm cache (<= 2 s),
    and issue 16's first fit with an empty cache (<= 10 s) and import (<= 1 s) of that run."""
    ours = cold_start.get(REFERENCE, {})
    warm, empty = ours.get("warm", {}), ours.get("empty_cache", {})
    return evaluate([COLD_START_TARGET, *FIRST_FIT_TARGETS],
                    {"cold_start_warm_s": warm.get("total_s"),
                     "first_fit_empty_cache_s": empty.get("fit_s"),
                     "import_s": empty.get("import_s")})


def _cold_starts(settings):
    names = [REFERENCE] + ([p for p in sorted({p for c in settings.cases for p in c.peers})
                            if p != REFERENCE] if settings.peer else [])
    out = {}
    for name in names:
        library = get_library(name)
        log(f"cold start: {name}")
        result = coldstart.cold_start(library, repeats=settings.cold_start_repeats,
                                      cold=library.numba_cache)
        if result is not None:
            out[name] = result
    return out
