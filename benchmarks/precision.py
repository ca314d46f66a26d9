"""float32 against float64 (issue 16, item 3): the same mixture fitted in both precisions.

float32 X is fitted in float32 arithmetic (tiles, log-densities, exponentials and each
tile's sums) with float64 sums across tiles and a float64 M-step. For each case the data
are made once (:func:`benchmarks.data.make_data`, float64) and cast to float32, and both
fits start from the case's parameters (:func:`benchmarks.data.make_start`). Reported:

- **speed**: seconds per EM iteration of each, the median of ``--repeats`` differenced
  pairs of fits (2 and 6 iterations), the two precisions interleaved (order reversed
  every other repeat); the ratio float64 / float32. Target: at least 1.6 at d >= 8.
- **error**: after ``--iterations`` iterations from the same start, the difference of the
  final log-likelihood per sample, of the weights, means and covariances (largest
  absolute difference over the largest absolute value), and the share of rows whose
  predicted component differs.
- **memory**: in a fresh process per precision (as :mod:`benchmarks.memory` measures it:
  a warm-up fit of the whole data, peak-RSS mark reset, then the measured fit), X's
  bytes and the fit's peak growth above them. Target: X in half the bytes, and a growth
  no larger than the float64 fit's (plus 1 MiB of measurement noise). The growth is
  mostly the per-block float64 accumulators (at most 8 MiB, ``_config.ACCUMULATOR_BYTES``),
  which stay float64 for accuracy, so the total's ratio is reported beside it: 0.5 where
  X dominates, more where the accumulators are a fair share of it.

Run: ``python -m benchmarks.precision`` (about 3 minutes; ``--quick`` for small sizes).
Results: ``benchmarks/results/precision.json``. The speed chapter of the book reads it.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone

import numpy as np

from . import paths
from .machine import machine_info
from .report import write_json

TARGET_SPEEDUP = 1.6  # float32 over float64 at d >= 8
GROWTH_SLACK = 2**20  # bytes: a float32 fit's growth may exceed float64's by this much
CASES = ("gmm-full-N1e6-d8-K8", "gmm-diag-N1e6-d8-K8", "gmm-full-N2e5-d32-K16",
         "gmm-full-N1e6-d2-K3")
QUICK_CASES = ("gmm-full-N2e4-d8-K4", "gmm-diag-N2e4-d8-K4", "gmm-full-N2e4-d2-K3")


def _case(name):
    from .cases import _case_from_name

    return _case_from_name(name)


def _data(case, dtype):
    from .data import make_data, make_start

    X = make_data(case)
    start = make_start(case, X)
    return np.ascontiguousarray(X, dtype=dtype), start


def _model(case, start, max_iter):
    import emlab

    return emlab.GaussianMixture(case.n_components, covariance_type=case.covariance_type,
                                 weights_init=start.weights, means_init=start.means,
                                 precisions_init=start.precisions, max_iter=max_iter, tol=0.0)


def _fit(case, start, X, max_iter):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 runs every iteration
        return _model(case, start, max_iter).fit(X)


def speed(case, start, Xs, repeats, iterations=(2, 6)):
    """Seconds per iteration for each precision: medians of differenced pairs, interleaved."""
    m1, m2 = iterations
    samples = {name: [] for name in Xs}
    for name, X in Xs.items():
        _fit(case, start, X, m1)  # kernels loaded, pages touched
    for rep in range(repeats):
        order = list(Xs) if rep % 2 == 0 else list(Xs)[::-1]
        for name in order:
            t0 = time.perf_counter()
            _fit(case, start, Xs[name], m1)
            t1 = time.perf_counter()
            _fit(case, start, Xs[name], m2)
            t2 = time.perf_counter()
            samples[name].append(((t2 - t1) - (t1 - t0)) / (m2 - m1))
    return {name: (float(np.median(s)), s) for name, s in samples.items()}


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def error(case, start, X64, X32, iterations):
    """How far the float32 fit lands from the float64 fit of the same numbers."""
    ref = _fit(case, start, X64, iterations)
    ours = _fit(case, start, X32, iterations)
    return {"iterations": iterations,
            "log_likelihood_float64": float(ref.lower_bound_),
            "log_likelihood_diff": float(ours.lower_bound_ - ref.lower_bound_),
            "weights_rel": _rel(ours.weights_, ref.weights_),
            "means_rel": _rel(ours.means_, ref.means_),
            "covariances_rel": _rel(ours.covariances_, ref.covariances_),
            "labels_differ": float(np.mean(ours.predict(X32) != ref.predict(X64))),
            "dtypes": [str(ours.means_.dtype), str(ref.means_.dtype)]}


def memory_worker(name, dtype, max_iter):
    """In a fresh process: X's bytes and the fit's peak RSS growth above them (JSON)."""
    import gc

    from .memory import current_rss, peak_rss, reset_peak_rss

    case = _case(name)
    X, start = _data(case, dtype)
    gc.collect()
    _fit(case, start, X, 2)  # the kernels this size of data runs (see benchmarks.memory)
    gc.collect()
    reset_peak_rss()
    baseline = current_rss()
    _fit(case, start, X, max_iter)
    growth = peak_rss() - baseline
    print(json.dumps({"data_bytes": int(X.nbytes), "growth_bytes": int(growth)}))


def memory(name, dtype, max_iter=3, timeout=1800):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(128 * 1024))
    out = subprocess.run([sys.executable, "-m", "benchmarks.precision", "--memory-worker", name,
                          dtype, str(max_iter)], env=env, capture_output=True, text=True,
                         timeout=timeout, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _numba_version():
    import numba

    return numba.__version__


def run(quick=False, repeats=3, iterations=20):
    import emlab

    names = QUICK_CASES if quick else CASES
    results = {"target_speedup": TARGET_SPEEDUP, "growth_slack_bytes": GROWTH_SLACK,
               "cpu_count": os.cpu_count(), "load_average_start": os.getloadavg()[0],
               "emlab_version": emlab.__version__, "numba_version": _numba_version(), "cases": {}}
    for name in names:
        case = _case(name)
        X64, start = _data(case, np.float64)
        X32 = X64.astype(np.float32)
        times = speed(case, start, {"float64": X64, "float32": X32}, repeats)
        ratio = times["float64"][0] / times["float32"][0]
        err = error(case, start, X64, X32, iterations)
        del X64, X32
        mem = {dtype: memory(name, dtype) for dtype in ("float64", "float32")}
        total = {k: v["data_bytes"] + v["growth_bytes"] for k, v in mem.items()}
        mem_ratio = total["float32"] / total["float64"]
        memory_ok = (2 * mem["float32"]["data_bytes"] == mem["float64"]["data_bytes"]
                     and mem["float32"]["growth_bytes"]
                     <= mem["float64"]["growth_bytes"] + GROWTH_SLACK)
        targeted = case.n_features >= 8
        entry = {
            "n_samples": case.n_samples, "n_features": case.n_features,
            "n_components": case.n_components, "covariance_type": case.covariance_type,
            "float64_s": times["float64"][0], "float32_s": times["float32"][0],
            "float64_samples": times["float64"][1], "float32_samples": times["float32"][1],
            "speedup": ratio, "error": err, "memory": mem, "memory_ratio": mem_ratio,
            "memory_ok": memory_ok, "targeted": targeted,
            "verdict": ("n/a (d < 8)" if not targeted else
                        "PASS" if ratio >= TARGET_SPEEDUP and memory_ok else "FAIL")}
        results["cases"][name] = entry
        print(f"{name:24s} float64 {times['float64'][0] * 1e3:8.2f} ms/it  float32 "
              f"{times['float32'][0] * 1e3:8.2f} ms/it  speedup {ratio:4.2f}x  memory "
              f"{total['float32'] / 2**20:6.1f} / {total['float64'] / 2**20:6.1f} MiB "
              f"({mem_ratio:4.2f}; growth {mem['float32']['growth_bytes'] / 2**20:.1f} / "
              f"{mem['float64']['growth_bytes'] / 2**20:.1f})  loglik diff {err['log_likelihood_diff']:+.1e}  means "
              f"{err['means_rel']:.1e}  labels {err['labels_differ']:.1e}  {entry['verdict']}",
              flush=True)
    results["load_average_end"] = os.getloadavg()[0]
    results["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results["machine"] = machine_info()  # after the kernels ran (Numba's threading layer)
    return results


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20,
                        help="EM iterations of the fits compared for the error")
    parser.add_argument("--out", default=None,
                        help="JSON file (default benchmarks/results/local/precision.json, quick: "
                             "none)")
    parser.add_argument("--memory-worker", nargs=3, metavar=("CASE", "DTYPE", "MAX_ITER"),
                        help=argparse.SUPPRESS)
    return parser


def output_path(args):
    """``--out``, else ``benchmarks/results/local/precision.json`` (None for ``--quick``)."""
    return args.out or (None if args.quick else paths.local_result("precision.json"))


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.memory_worker:
        name, dtype, max_iter = args.memory_worker
        memory_worker(name, dtype, int(max_iter))
        return 0
    results = run(args.quick, args.repeats, args.iterations)
    out = output_path(args)
    if out:
        write_json(results, out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
