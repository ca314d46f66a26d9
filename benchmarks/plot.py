"""The figure of a benchmark run: speed-ups against targets, and a roofline.

:func:`make_figure` takes the results as written to JSON, so the book chapter
"How fast, and why" can draw it from ``benchmarks/results/latest.json``
without running anything.
"""

import math

import numpy as np


def make_figure(results):
    """A two-panel figure of a benchmark run.

    Left: the speed-up over the peer per case (bars, log scale; one bar per
    peer for the HMM cases, against hmmlearn 'log' and 'scaling'), with each
    target as a red tick and parity as a dashed line. Right: a roofline,
    achieved useful GFLOP/s against arithmetic intensity (useful flops per byte
    of X read once per iteration), emlab filled and the peer hollow, under the
    compute roof (the GEMM rate measured in the run) and the memory roof
    (bandwidth times intensity). The HMM cases are left out of the roofline:
    a forward-backward pass is a chain of T dependent K x K matrix-vector
    products (K = 4 here), whose time is set by the latency of each step, not
    by the flop rate or the bandwidth the roofs stand for; their useful GFLOP/s
    are in the JSON.

    Parameters
    ----------
    results : dict
        As returned by :func:`benchmarks.runner.run` or read from its JSON.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    cases = [c for c in results["cases"] if c["status"] == "ok"]
    bars = sum(len(_bars(c)) for c in cases)
    fig = Figure(figsize=(15, 0.45 * max(bars, 6) + 1.5), layout="constrained")
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.15]})
    speedup_panel(left, cases)
    roofline_panel(right, cases, results)
    threads = results["settings"]["threads"]
    fig.suptitle(f"emlab vs peers, {threads} threads, {results['machine']['cpu_model']}")
    return fig


def _bars(case):
    """``(label, speed-up, target or None, verdict or None)`` for each peer of a case."""
    peers = case.get("peers") or [case["peer"]]
    out = []
    for peer in peers:
        primary = peer == case["peer"]
        metric = "speedup" if primary else f"speedup[{peer}]"
        value = (case.get("speedups") or {}).get(peer, case.get("speedup") if primary else None)
        row = next((r for r in case.get("targets", []) if r["metric"] == metric), None)
        label = case["name"] if len(peers) == 1 else f"{case['name']} vs {peer}"
        out.append((label, value, row["threshold"] if row else None,
                    row["verdict"] if row else None))
    return out


def speedup_panel(ax, cases):
    """Horizontal bars of peer seconds / emlab seconds per iteration, with the targets."""
    bars = [bar for case in cases for bar in _bars(case)]
    names = [bar[0] for bar in bars]
    # a speed-up can only be drawn on the log axis if positive (a tiny case's differenced
    # times can come out negative on a busy machine)
    values = [bar[1] if bar[1] is not None and bar[1] > 0 else np.nan for bar in bars]
    targets = [bar[2] for bar in bars]
    y = np.arange(len(bars))
    colours = ["tab:green" if bar[3] == "PASS" else "tab:red" if bar[3] == "FAIL" else "tab:gray"
               for bar in bars]
    ax.barh(y, values, color=colours, alpha=0.8)
    for i, target in enumerate(targets):
        if target is not None:
            ax.plot([target, target], [i - 0.4, i + 0.4], color="darkred", lw=2.5)
        if np.isfinite(values[i]):
            ax.annotate(f"{values[i]:.2g}x", (values[i], i), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)
    ax.axvline(1.0, color="k", ls="--", lw=1)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    finite = [v for v in values if np.isfinite(v)] + [t for t in targets if t]
    if finite:
        ax.set_xscale("log")
        ax.set_xlim(min(0.5, min(finite) / 1.5), max(finite) * 2.5)
    ax.set_xlabel("speed-up per iteration over the peer (dark red: target)")
    ax.set_title("Speed-up (green: target met, red: missed, grey: no target)", fontsize=10)


def _is_hmm(case):
    return str(case.get("model", "")).startswith("hmm")


def roofline_panel(ax, cases, results):
    """Achieved useful GFLOP/s against arithmetic intensity, under the GEMM and bandwidth roofs.

    The HMM cases are not drawn (see :func:`make_figure`); a note says so.
    """
    left_out = [c["name"] for c in cases if _is_hmm(c)]
    cases = [c for c in cases if not _is_hmm(c)]
    threads = str(results["settings"]["threads"])
    peak = results["gemm"]["threads"][threads]["gflops"]
    bandwidth = results["bandwidth"]["gb_per_s"]
    intensities = [c["arithmetic_intensity"] for c in cases] or [1.0]
    lo, hi = min(intensities) / 4, max(intensities) * 4
    x = np.geomspace(lo, hi, 200)
    ax.plot(x, np.minimum(peak, bandwidth * x), color="k", lw=1.5,
            label=f"roof: GEMM {peak:.0f} GFLOP/s, {bandwidth:.0f} GB/s")
    ax.axhline(results["gemm"]["threads"]["1"]["gflops"], color="k", ls=":", lw=1,
               label="GEMM on 1 thread")
    colours = _case_colours(len(cases))
    for case, colour in zip(cases, colours):
        for name, result in case["libraries"].items():
            gflops = result.get("gflops")
            if gflops is None or not math.isfinite(gflops):
                continue
            ours = name == "emlab"
            ax.scatter(case["arithmetic_intensity"], gflops, s=60 if ours else 45,
                       marker="o" if ours else "s", color=colour if ours else "none",
                       edgecolors=colour, linewidths=1.5, zorder=3,
                       label=case["name"] if ours else None)
    ax.scatter([], [], marker="o", color="gray", label="emlab (filled)")
    ax.scatter([], [], marker="s", color="none", edgecolors="gray", label="peer (hollow)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity: useful flops per byte of X")
    ax.set_ylabel("useful GFLOP/s")
    ax.set_title("Roofline: where the time goes", fontsize=10)
    if not cases:
        ax.text(0.5, 0.5, "no case to place on the roofline", transform=ax.transAxes,
                ha="center", va="center", color="0.4")
    if left_out:
        ax.set_xlabel(f"arithmetic intensity: useful flops per byte of X\n(not shown: "
                      f"{len(left_out)} HMM case(s); a forward-backward pass is a chain of "
                      f"dependent K x K steps, latency-bound)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.grid(True, which="both", alpha=0.2)


def _case_colours(n):
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if n <= 10 else colormaps["tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def save_figure(results, path):
    """Draw :func:`make_figure` and save it to ``path`` (PNG at 120 dpi)."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_figure(results).savefig(path, dpi=120)
    return path
