"""Metrics, targets, the printed tables and the JSON file."""

import json
import math
from pathlib import Path

import numpy as np

from .cases import Target

#: Import plus first small fit, warm Numba cache, in seconds (the issue's cold-start target).
COLD_START_TARGET = Target("cold_start_warm_s", "<=", 2.0)
#: Issue 16, item 4: the first fit after install (an empty Numba cache, Iris, default settings)
#: in at most 10 s, and ``import emlab`` within 1 s.
FIRST_FIT_TARGETS = (Target("first_fit_empty_cache_s", "<=", 10.0),
                     Target("import_s", "<=", 1.0))

PASS, FAIL, NOT_MEASURED = "PASS", "FAIL", "n/a"


def case_metrics(libraries, reference, peer, gemm_gflops):
    """The ratios a case's targets are stated in.

    Parameters
    ----------
    libraries : dict
        ``{name: library result}`` as stored in the JSON (``seconds_per_iter``,
        ``gflops``, ``memory`` ...).
    reference, peer : str
        Names of emlab and of the peer (``peer`` may be missing from ``libraries``).
    gemm_gflops : float
        The GEMM rate with the same threads.

    Returns
    -------
    dict
        ``speedup`` (peer seconds / emlab seconds per iteration),
        ``gemm_fraction`` (emlab's useful GFLOP/s over the GEMM rate) and
        ``memory_ratio`` (emlab's memory growth over the peer's); None where
        not measured.
    """
    ours = libraries.get(reference, {})
    theirs = libraries.get(peer, {})
    return {
        "speedup": _ratio(theirs.get("seconds_per_iter"), ours.get("seconds_per_iter")),
        "gemm_fraction": _ratio(ours.get("gflops"), gemm_gflops),
        "memory_ratio": _ratio(_growth(ours), _growth(theirs)),
    }


def memory_tk_multiple(library_result, case):
    """Memory growth in units of one float64 array of ``n_samples x n_components``
    (``8 N K`` bytes: for an HMM, T x K; for a mixture, the responsibilities);
    None if not measured."""
    growth = _growth(library_result)
    if growth is None:
        return None
    return growth * 2**20 / (8.0 * case.n_samples * case.n_components)


def _growth(library_result):
    memory = library_result.get("memory") or {}
    return memory.get("growth_mib")


def _ratio(numerator, denominator):
    if numerator is None or denominator is None:
        return None
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator <= 0:
        return None
    return numerator / denominator


def evaluate(targets, values):
    """One row per target: its text, the measured value and PASS / FAIL / n/a.

    Parameters
    ----------
    targets : iterable of benchmarks.cases.Target
    values : dict
        ``{metric: value or None}``.

    Returns
    -------
    list of dict
    """
    rows = []
    for target in targets:
        value = values.get(target.metric)
        met = target.met_by(value)
        verdict = NOT_MEASURED if met is None else (PASS if met else FAIL)
        rows.append({"target": target.describe(), "metric": target.metric, "op": target.op,
                     "threshold": target.threshold, "value": value, "verdict": verdict})
    return rows


def summarise(results):
    """Counts of PASS, FAIL and n/a over every target in ``results``."""
    rows = [row for case in results["cases"] for row in case.get("targets", [])]
    rows += results.get("cold_start_targets", [])
    return {verdict: sum(row["verdict"] == verdict for row in rows)
            for verdict in (PASS, FAIL, NOT_MEASURED)}


# --------------------------------------------------------------------------- text


def _fmt(value, spec=".3g", suffix=""):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:{spec}}{suffix}"


def _table(header, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def peer_rows(case):
    """``(peer, speed-up, memory ratio, trajectory difference)`` for every peer of a case.

    One row for a case with one peer (the scikit-learn cases); one per peer
    for the HMM cases (hmmlearn 'log' and 'scaling'). Reads the JSON of older
    runs too (no ``peers`` key).
    """
    peers = case.get("peers") or [case["peer"]]
    rows = []
    for peer in peers:
        primary = peer == case["peer"]
        speedup = (case.get("speedups") or {}).get(peer, case.get("speedup") if primary else None)
        ratio = (case.get("memory_ratios") or {}).get(
            peer, case.get("memory_ratio") if primary else None)
        diff = (case.get("trajectory_rel_diffs") or {}).get(
            peer, case.get("trajectory_rel_diff") if primary else None)
        rows.append((peer, speedup, ratio, diff))
    return rows


def measurements_table(results):
    """The per-case numbers: one row per case and peer (the HMM cases have two peers).

    ``mem/8NK`` is emlab's memory growth in units of one float64 N x K array
    (T x K for an HMM), the unit of the HMM memory target.
    """
    header = ["case", "peer", "emlab s/it", "peer s/it", "speed-up", "emlab GF/s", "peer GF/s",
              "emlab/GEMM", "emlab MiB", "peer MiB", "mem ratio", "mem/8NK", "traj diff"]
    rows = []
    for case in results["cases"]:
        if case["status"] != "ok":
            rows.append([case["name"], case["status"]] + [""] * (len(header) - 2))
            continue
        ours = case["libraries"].get("emlab", {})
        skipped = case.get("skipped_peers") or {}
        for i, (peer, speedup, ratio, diff) in enumerate(peer_rows(case)):
            theirs = case["libraries"].get(peer, {})
            if peer in skipped:
                peer_seconds = skipped[peer]["status"]
            elif theirs.get("whole_fit"):
                peer_seconds = "whole fit"  # see whole_fit_lines
            else:
                peer_seconds = _fmt(theirs.get("seconds_per_iter"), ".4g")
            rows.append([
                case["name"] if i == 0 else "",
                peer,
                _fmt(ours.get("seconds_per_iter"), ".4g"),
                peer_seconds,
                _fmt(speedup, ".3g", "x"),
                _fmt(ours.get("gflops"), ".3g"),
                _fmt(theirs.get("gflops"), ".3g"),
                _fmt(case["gemm_fraction"], ".1%"),
                _fmt(_growth(ours), ".1f"),
                _fmt(_growth(theirs), ".1f"),
                _fmt(ratio, ".1%"),
                _fmt(case.get("memory_tk_multiple"), ".2f"),
                _fmt(diff, ".1e"),
            ])
    return _table(header, rows)


def limits_table(results):
    """One row per Gaussian-mixture case: the three lower bounds on one iteration
    (:func:`benchmarks.machine.iteration_limit`), the limit and which bound it is, and each
    library's fraction of it (limit / its seconds per iteration; mlpack's from its own-start
    differenced time, marked ``*``)."""
    cases = [c for c in results["cases"] if c.get("limit") and c["status"] == "ok"]
    if not cases:
        return None
    names = []
    for case in cases:
        names += [n for n in case.get("limit_fractions", {}) if n not in names]
    header = ["case", "bytes ms", "exp ms", "flops ms", "limit ms", "bound"] + \
        [f"{n}{'*' if n == 'mlpack' else ''}" for n in names]
    rows = []
    for case in cases:
        limit, fractions = case["limit"], case.get("limit_fractions", {})
        rows.append([case["name"]] + [_fmt(limit[k] * 1e3, ".3g") for k in
                                      ("bytes_s", "exp_s", "flops_s", "limit_s")]
                    + [limit["bound"]] + [_fmt(fractions.get(n), ".1%") for n in names])
    return _table(header, rows)


def whole_fit_lines(results):
    """What the whole-fit peers (mlpack) measured, in words: their numbers are not
    per-iteration times from the shared start."""
    lines = []
    for case in results["cases"]:
        ours = case.get("libraries", {}).get("emlab", {})
        for name, lib in case.get("libraries", {}).items():
            if not lib.get("whole_fit"):
                continue
            fits = ", ".join(f"{m} it. {_fmt(s, '.3g')} s"
                             for m, s in (lib.get("whole_fit_seconds") or {}).items())
            ratio = (case.get("own_start_ratios") or {}).get(name)
            lines.append(
                f"  {case['name']}: {name} {lib.get('version')}: whole fits from its own "
                f"k-means start ({fits}; median of {len(lib.get('samples', []))}); their "
                f"difference per iteration {_fmt(lib.get('own_start_seconds_per_iter'), '.3g')} s "
                f"= {_fmt(ratio, '.3g')} x emlab's "
                f"{_fmt(ours.get('seconds_per_iter'), '.3g')} s/it from the shared start "
                f"(not the same iterates; not checked)")
    return lines


def versions_line(results):
    """The versions of every library timed (from the workers that timed them)."""
    found = {}
    for case in results["cases"]:
        for name, lib in case.get("libraries", {}).items():
            if lib.get("version"):
                found.setdefault(name, lib["version"])
    return ", ".join(f"{name} {version}" for name, version in found.items())


def targets_table(results):
    """One row per (case, target) with the measured value and PASS / FAIL / n/a."""
    header = ["case", "target", "value", "verdict"]
    rows = []
    for case in results["cases"]:
        if case["status"] != "ok":
            rows.append([case["name"], "-", case.get("message", "")[:60], case["status"]])
        for row in case.get("targets", []):
            rows.append([case["name"], row["target"], _fmt(row["value"], ".3g"), row["verdict"]])
    for row in results.get("cold_start_targets", []):
        rows.append(["cold start", row["target"], _fmt(row["value"], ".3g"), row["verdict"]])
    return _table(header, rows)


def cold_start_lines(results):
    """One line per library and cache state."""
    lines = []
    cold = results.get("cold_start") or {}
    width = max([8] + [len(name) for name in cold])
    for name, runs in cold.items():
        for state, run in runs.items():
            if "error" in run:
                lines.append(f"  {name:{width}s} {state:12s} error: {run['error']}")
                continue
            lines.append(f"  {name:{width}s} {state:12s} import {run['import_s']:.2f} s + first fit "
                         f"{run['fit_s']:.2f} s = {run['total_s']:.2f} s "
                         f"(whole process {run['process_s']:.2f} s)")
    return lines


def case_notes(results):
    """Lines about anything that qualifies a case's numbers: early stops and warnings."""
    notes = []
    for case in results["cases"]:
        m2 = str(case.get("iterations", [0, 0])[1])
        for name, lib in case.get("libraries", {}).items():
            ran = lib.get("n_iter", {}).get(m2)
            if ran is not None and ran != int(m2):
                notes.append(f"note: {case['name']}: {name} stopped after {ran} of {m2} "
                             f"iterations (seconds per iteration use the iterations run)")
            if lib.get("warnings"):
                notes.append(f"note: {case['name']}: {name} warned {', '.join(lib['warnings'])}")
            error = (lib.get("memory") or {}).get("error")
            if error:
                notes.append(f"note: {case['name']}: {name} memory not measured: {error}")
        for name, skipped in (case.get("skipped_peers") or {}).items():
            notes.append(f"note: {case['name']}: {name} {skipped['status']}: "
                         f"{skipped['message']}")
        checks = case.get("trajectory_checks") or {}
        for name, check in checks.items():
            if check == "final":
                notes.append(f"note: {case['name']}: {name} is checked on its final "
                             f"log-likelihood after the same iterations (it reports no "
                             f"trajectory)")
    return notes


def format_report(results):
    """The text printed at the end of a run."""
    gemm = results["gemm"]
    threads = results["settings"]["threads"]
    lines = [
        f"emlab benchmarks on {results['machine']['cpu_model']} with {threads} threads "
        f"(numba layer {results['machine']['numba']['threading_layer']}); "
        f"GEMM {gemm['threads'][str(threads)]['gflops']:.1f} GFLOP/s "
        f"({gemm['threads']['1']['gflops']:.1f} on 1 thread), memory bandwidth "
        f"{results['bandwidth']['gb_per_s']:.1f} GB/s"
        + (f", exp {results['exp']['per_s'] / 1e9:.2f} G/s" if results.get("exp") else ""),
        f"seconds per iteration: median of {results['settings']['repeats']} repeats of "
        f"(t(m2) - t(m1)) / (m2 - m1), (m1, m2) = {tuple(results['settings']['iterations'])}",
        "",
        measurements_table(results),
    ]
    lines += case_notes(results) + [""]
    limits = limits_table(results)
    if limits:
        lines += ["fraction of the machine's limit: limit = max(8 N d bytes / bandwidth, N K exp "
                  "/ exp rate, iteration flops / GEMM rate) per iteration; fraction = limit / "
                  "seconds per iteration (* mlpack: its own-start differenced time)"]
        rates = results.get("limit_rates")
        if rates:
            lines.append(f"rates: GEMM {rates['gflops']:.1f} GFLOP/s (best of 1 and "
                         f"{threads} threads), bandwidth {rates['gb_per_s']:.1f} GB/s, "
                         f"exp {rates['exp_per_s'] / 1e9:.2f} G/s")
        lines += [limits, ""]
    whole = whole_fit_lines(results)
    if whole:
        lines += ["whole-fit peers (their own start; not per-iteration from the shared start)"]
        lines += whole + [""]
    versions = versions_line(results)
    if versions:
        lines += [f"versions: {versions}", ""]
    cold = cold_start_lines(results)
    if cold:
        lines += ["cold start (fresh interpreter: import + first fit on Iris)"] + cold + [""]
    lines += [targets_table(results), ""]
    counts = summarise(results)
    lines.append(f"targets: {counts[PASS]} PASS, {counts[FAIL]} FAIL, "
                 f"{counts[NOT_MEASURED]} not measured")
    return "\n".join(lines)


# --------------------------------------------------------------------------- JSON


def jsonable(value):
    """``value`` in JSON's types: NumPy scalars and arrays become Python ones, NaN and inf None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_json(results, path):
    """Write ``results`` to ``path`` (strict JSON, parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(results), indent=1, allow_nan=False) + "\n")
    return path
