"""Command line: ``python -m benchmarks [--quick] [--cases NAME ...] ...``."""

import argparse
import sys
from pathlib import Path

from . import paths
from .cases import NAME_FORMS, default_cases, quick_cases, select_cases
from .report import format_report, write_json
from .runner import Settings, log, run

#: Sizes of the reference measurements and repeat counts: full run, then --quick.
FULL = {"repeats": 5, "iterations": (2, 8), "gemm_size": 3000, "bandwidth_mib": 256,
        "cold_start_repeats": 3}
QUICK = {"repeats": 3, "iterations": (2, 6), "gemm_size": 1200, "bandwidth_mib": 64,
         "cold_start_repeats": 1}


def build_parser():
    """The argument parser (its ``--help`` lists the known case names)."""
    known = ", ".join(c.name for c in default_cases())
    quick = ", ".join(c.name for c in quick_cases())
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run emlab and its peers (scikit-learn; oneDAL and mlpack for some "
                    "Gaussian-mixture cases; hmmlearn 'log' and 'scaling' for the HMM cases) "
                    "side by side (each library in its own process, same data, same start) "
                    "and report seconds per iteration, GFLOP/s against GEMM, the fraction of "
                    "the machine's measured limit, peak memory and cold start, with "
                    "PASS/FAIL per target.",
        epilog=f"Default grid: {known}. Quick grid: {quick}. Any name of the form "
               f"{', '.join(NAME_FORMS[:-1])} or {NAME_FORMS[-1]} "
               f"(counts like 1e6 or 250000) is accepted by --cases.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes for a smoke test (a few minutes); writes "
                             "results/local/quick.json and quick.png unless --out/--plot are "
                             "given")
    parser.add_argument("--cases", nargs="+", metavar="NAME",
                        help="run only these cases (default: the whole grid)")
    parser.add_argument("--repeats", type=int, help="timed repeats per case (median reported)")
    parser.add_argument("--iterations", type=int, nargs=2, metavar=("M1", "M2"),
                        help="the two iteration counts whose times are differenced")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for Numba, BLAS and OpenMP (default 2)")
    parser.add_argument("--gemm-size", type=int, help="order of the GEMM reference matrices")
    parser.add_argument("--out", type=Path,
                        help="JSON file to write (default benchmarks/results/local/latest.json; "
                             "the committed runs beside it are written only when named here)")
    parser.add_argument("--plot", type=Path,
                        help="PNG file to write (default the JSON's name with .png, in "
                             "benchmarks/results/local/ unless --out is given)")
    parser.add_argument("--no-memory", action="store_true", help="skip peak-memory workers")
    parser.add_argument("--no-peer", action="store_true", help="run emlab alone")
    parser.add_argument("--no-cold-start", action="store_true", help="skip cold-start runs")
    parser.add_argument("--same-process", action="store_true",
                        help="time every library in the benchmark's own process (default: "
                             "each library in its own spawned worker process)")
    parser.add_argument("--no-install", action="store_true",
                        help="do not pip-install a missing peer (oneDAL, mlpack); skip it")
    parser.add_argument("--scale", action=argparse.BooleanOptionalAction, default=None,
                        help="after the grid, run the scale-out benchmark (python -m "
                             "benchmarks.scale: emlab on a Dask cluster against emlab in one "
                             "process and Spark MLlib; its --quick sizes with --quick). On by "
                             "default; off when --cases is given, unless --scale is")
    parser.add_argument("--no-spark", action="store_true",
                        help="run the scale-out benchmark without Spark")
    return parser


def settings_from_args(args, argv):
    """The :class:`~benchmarks.runner.Settings` that parsed arguments ask for."""
    sizes = dict(QUICK if args.quick else FULL)
    for key in ("repeats", "iterations", "gemm_size"):
        if getattr(args, key) is not None:
            sizes[key] = tuple(args.iterations) if key == "iterations" else getattr(args, key)
    m1, m2 = sizes["iterations"]
    if not 1 <= m1 < m2:
        raise ValueError(f"--iterations needs 1 <= M1 < M2; got {m1} {m2}")
    if sizes["repeats"] < 1 or args.threads < 1:
        raise ValueError("--repeats and --threads must be at least 1")
    return Settings(cases=select_cases(args.cases, quick=args.quick), threads=args.threads,
                    memory=not args.no_memory, peer=not args.no_peer,
                    cold_start=not args.no_cold_start, quick=args.quick,
                    isolate=not args.same_process, install=not args.no_install,
                    command=["python", "-m", "benchmarks"] + list(argv), **sizes)


def main(argv=None):
    """Run the benchmarks, write the JSON and the plot, print the report; then the scale-out
    benchmark (:mod:`benchmarks.scale`) unless skipped. Returns 0, or 1 if that run broke."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args, argv)
    except ValueError as exc:
        parser.error(str(exc))
    out, plot_path = default_outputs(args)
    results = run(settings)
    write_json(results, out)
    log(f"wrote {out}")
    try:
        from .plot import save_figure

        save_figure(results, plot_path)
        log(f"wrote {plot_path}")
    except Exception as exc:  # the numbers matter more than the picture
        log(f"could not draw the plot: {type(exc).__name__}: {exc}")
    print(format_report(results), flush=True)
    run_scale = args.scale if args.scale is not None else not args.cases
    return _scale(args, out) if run_scale else 0


def default_outputs(args):
    """The JSON and PNG paths of a run: ``--out`` / ``--plot``, else ``latest`` (``quick``) in
    ``benchmarks/results/local/`` (see :mod:`benchmarks.paths`); with ``--out`` alone, the
    figure goes beside the JSON."""
    stem = "quick" if args.quick else "latest"
    out = args.out or paths.local_result(f"{stem}.json")
    plot = args.plot or (args.out.with_suffix(".png") if args.out else
                         paths.local_result(f"{stem}.png"))
    return out, plot


def _scale(args, grid_out):
    """The scale-out benchmark after the grid: 0, or 1 if its run broke (the grid is saved)."""
    from . import scale

    values = dict(scale.QUICK) if args.quick else {}
    settings = scale.ScaleSettings(**values, spark=not args.no_spark,
                                   command=["python", "-m", "benchmarks.scale"]
                                   + (["--quick"] if args.quick else [])
                                   + (["--no-spark"] if args.no_spark else []))
    if args.out:
        out = grid_out.with_name(f"{grid_out.stem}-scale.json")
    else:
        out = paths.local_result("quick-scale.json" if args.quick else "scale.json")
    log("scale-out benchmark (benchmarks.scale)")
    print(flush=True)
    try:
        scale.run_and_report(settings, out)
    except Exception as exc:  # the grid's results are written; say what broke and fail
        log(f"the scale-out benchmark failed: {type(exc).__name__}: {exc}")
        return 1
    return 0
