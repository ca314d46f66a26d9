"""One benchmark run: reference rates, every case side by side, cold start, targets."""

import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import coldstart, memory
from .data import checksum, make_data, make_start
from .machine import gemm_rate, limited_threads, machine_info, memory_bandwidth
from .peers import get_library
from .report import (COLD_START_TARGET, case_metrics, evaluate, jsonable, memory_tk_multiple,
                     summarise)
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
        log(f"GEMM {results['gemm']['threads'][settings.threads]['gflops']:.1f} GFLOP/s, "
            f"bandwidth {results['bandwidth']['gb_per_s']:.1f} GB/s")
        gemm_gflops = results["gemm"]["threads"][settings.threads]["gflops"]
        results["cases"] = [run_case(case, settings, gemm_gflops) for case in settings.cases]
        results["machine"] = machine_info()
    if settings.cold_start:
        results["cold_start"] = _cold_starts(settings)
        warm = results["cold_start"].get(REFERENCE, {}).get("warm", {})
        results["cold_start_targets"] = evaluate([COLD_START_TARGET],
                                                 {"cold_start_warm_s": warm.get("total_s")})
    results["seconds"] = time.perf_counter() - started
    results = jsonable(results)
    results["summary"] = summarise(results)
    return results


def _settings_record(settings):
    return {"repeats": settings.repeats, "iterations": list(settings.iterations),
            "threads": settings.threads, "memory": settings.memory, "peer": settings.peer,
            "cold_start": settings.cold_start, "gemm_size": settings.gemm_size,
            "quick": settings.quick, "cases": [c.name for c in settings.cases]}


def _load():
    """1-, 5- and 15-minute load averages: how busy the (possibly shared) machine was."""
    return list(os.getloadavg())


def _gemm(settings):
    rates = {n: gemm_rate(settings.gemm_size, n) for n in sorted({1, settings.threads})}
    return {"size": settings.gemm_size, "threads": rates}


def _libraries(case, settings):
    peers = [name for name in case.peers if name != REFERENCE] if settings.peer else []
    names = [REFERENCE] + peers
    libraries = [get_library(name) for name in names]
    return [lib for lib in libraries if case.model in lib.models]


def run_case(case, settings, gemm_gflops):
    """Time, check and measure one case; its JSON record."""
    record = {"name": case.name, "model": case.model, "covariance_type": case.covariance_type,
              "n_samples": case.n_samples, "n_features": case.n_features,
              "n_components": case.n_components, "peer": case.peer,
              "peers": list(case.peers), "n_sequences": case.n_sequences,
              "sequence_length": case.sequence_length,
              "separation": case.separation, "seed": case.seed,
              "useful_flops": case.useful_flops,
              "arithmetic_intensity": case.arithmetic_intensity,
              "data_mib": case.data_bytes / 2**20, "iterations": list(settings.iterations),
              "status": "ok", "libraries": {}}
    log(f"{case.name}: data")
    began = time.perf_counter()
    record["load_average_start"] = _load()
    X = make_data(case)
    start = make_start(case, X)
    record["checksum"] = checksum(X)
    libraries = _libraries(case, settings)
    failure = _warm_up(libraries, case, X, start)
    if failure is not None:
        record.update(failure)
        record["targets"] = evaluate(case.targets, {})  # all 'n/a'
        log(f"{case.name}: {failure['status']}: {failure['message']}")
        return record
    log(f"{case.name}: timing {[lib.name for lib in libraries]}")
    timings = per_iteration(libraries, case, X, start, settings.iterations, settings.repeats)
    del X
    for library in libraries:
        record["libraries"][library.name] = _library_record(
            timings[library.name], case, settings, library)
    _add_checks_and_targets(record, case, timings, gemm_gflops)
    record["load_average_end"] = _load()
    record["seconds"] = time.perf_counter() - began
    return record


def _warm_up(libraries, case, X, start):
    """One short fit per library (loads kernels, pages the data in). None, or a failure record.

    emlab raising ValueError marks the case 'unsupported' (e.g. a covariance
    type not implemented yet); anything else raised is an 'error'.
    """
    for library in libraries:
        try:
            library.fit(case, X, start, 1)
        except ValueError as exc:
            status = "unsupported" if library.name == REFERENCE else "error"
            return {"status": status, "message": f"{library.name}: {exc}"}
        except Exception as exc:  # a benchmark run should report, not stop
            return {"status": "error", "message": f"{library.name}: {type(exc).__name__}: {exc}"}
    return None


def _library_record(timing, case, settings, library):
    seconds = timing.median
    result = {"seconds_per_iter": seconds, "best_seconds_per_iter": timing.best,
              "samples": timing.samples,
              "fit_seconds": {str(m): s for m, s in timing.fit_seconds.items()},
              "n_iter": {str(m): n for m, n in timing.n_iter.items()},
              "gflops": case.useful_flops / seconds / 1e9 if seconds > 0 else None,
              "warnings": list(timing.fit.warnings), "version": library.version(),
              "trajectory": timing.fit.trajectory}
    if timing.fit.parameters is not None:  # bgmm: the fitted parameters the check compares
        result["parameters"] = timing.fit.parameters
    if getattr(library, "blas_threads", None) is not None:  # a peer with its own BLAS setting
        result["blas_threads"] = library.blas_threads
    if settings.memory:
        log(f"{case.name}: memory of {library.name}")
        result["memory"] = memory.measure(case, library.name, settings.iterations[0],
                                          settings.threads)
    return result


def _add_checks_and_targets(record, case, timings, gemm_gflops):
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
    """
    m1, m2 = record["iterations"]
    record["stopped_early"] = {name: t.n_iter.get(m2) != m2 for name, t in timings.items()}
    ours = timings[REFERENCE].fit
    diffs, lengths = {}, {}
    for name in case.peers:
        peer = timings.get(name)
        if peer is not None and name != REFERENCE:
            if ours.parameters is not None or peer.fit.parameters is not None:
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
    if len(case.peers) > 1:
        record["speedups"], record["memory_ratios"] = {}, {}
        for name in case.peers:
            metrics = case_metrics(record["libraries"], REFERENCE, name, gemm_gflops)
            record["speedups"][name] = values[f"speedup[{name}]"] = metrics["speedup"]
            record["memory_ratios"][name] = values[f"memory_ratio[{name}]"] = \
                metrics["memory_ratio"]
    record["memory_tk_multiple"] = values["memory_tk_multiple"] = memory_tk_multiple(
        record["libraries"].get(REFERENCE, {}), case)
    record["targets"] = evaluate(case.targets, values)


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
