"""``emlab demo``: k-means against EM on the classic two samples or on Iris.

Usage::

    emlab demo --data sample [--seed N] [--n N] [--out FILE]
    emlab demo --data iris   [--seed N] [--out FILE]

Errors in the arguments or the data give a one-line message on stderr and a
non-zero exit status (2 for usage, 1 for anything else), never a traceback.
"""

import argparse
import sys
import warnings

import numpy as np

from . import __version__
from .datasets import load_iris, two_samples
from .kmeans import KMeans
from .metrics import confusion_matrix, match_labels, misclassified
from .mixture import GaussianMixture


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


class _UsageError(Exception):
    pass


def _parser():
    parser = _Parser(prog="emlab", description="The EM algorithm, fast and checked.")
    parser.add_argument("--version", action="version", version=f"emlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    demo = commands.add_parser(
        "demo", help="k-means versus EM on the two classic samples or on Iris",
        description="Fit k-means and a Gaussian mixture by EM and compare them with the truth.",
    )
    demo.add_argument("--data", required=True, choices=["sample", "iris"],
                      help="'sample': the two classic synthetic samples; 'iris': Fisher's Iris")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--n", type=int, default=500, help="points per synthetic sample (default 500)")
    demo.add_argument("--out", default=None,
                      help="figure file (default two_samples.png for --data sample; none for iris)")
    return parser


def _fit_both(X, k, seed):
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gm = GaussianMixture(n_components=k, n_init=5, tol=1e-6, max_iter=1000,
                             random_state=seed).fit(X)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return km, gm


def _save(fig, path):
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"figure written to {path}")


def demo_sample(seed, n, out):
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    from .plotting import plot_clusters

    samples = two_samples(n=n, random_state=seed)
    fig = Figure(figsize=(10, 9))
    axes = fig.subplots(2, 2, sharex=True, sharey=True)
    print(f"misclassified points (after matching cluster labels to components), seed {seed}:")
    print(f"{'':10s}{'k-means':>10s}{'EM':>10s}")
    for col, ds in enumerate(samples):
        X, y = ds.data, ds.target
        km, gm = _fit_both(X, 2, seed)
        gm_pred = gm.predict(X)
        errors = (misclassified(y, km.labels_), misclassified(y, gm_pred))
        print(f"sample {col + 1:<3d}{errors[0]:10d}{errors[1]:10d}   (n = {len(X)})")
        plot_clusters(axes[0, col], X, match_labels(y, km.labels_), y, means=km.cluster_centers_,
                      title=f"Sample {col + 1}: k-means ({errors[0]} misclassified)")
        plot_clusters(axes[1, col], X, match_labels(y, gm_pred), y, means=gm.means_,
                      covariances=gm.covariances_,
                      title=f"Sample {col + 1}: EM ({errors[1]} misclassified)")
    fig.suptitle("k-means (top) and EM (bottom): colour = assigned cluster, marker = true component")
    _save(fig, out or "two_samples.png")


def demo_iris(seed, out):
    ds = load_iris()
    X, y = ds.data, ds.target
    km, gm = _fit_both(X, 3, seed)
    names = ds.target_names
    for title, pred in [("k-means", km.labels_), ("EM (Gaussian mixture)", gm.predict(X))]:
        matched = match_labels(y, pred)
        table = confusion_matrix(y, matched)
        print(f"{title}: rows = species, columns = matched cluster, "
              f"{misclassified(y, pred)} of {len(y)} misclassified")
        print(f"{'':12s}" + "".join(f"{c:>8d}" for c in range(table.shape[1])))
        for name, row in zip(names, table):
            print(f"{name:12s}" + "".join(f"{v:8d}" for v in row))
        print()
    total = gm.score(X) * len(X)
    print(f"EM log-likelihood reached: {total:.4f} (mean per flower {gm.score(X):.6f}), "
          f"{gm.n_iter_} iterations, converged: {gm.converged_}")
    print(f"k-means inertia: {km.inertia_:.4f}")
    if out:
        from matplotlib.figure import Figure

        from .plotting import plot_clusters

        fig = Figure(figsize=(11, 4.5))
        axes = fig.subplots(1, 2, sharey=True)
        plot_clusters(axes[0], X, match_labels(y, km.labels_), y, features=(2, 3), title="k-means")
        plot_clusters(axes[1], X, match_labels(y, gm.predict(X)), y, features=(2, 3), title="EM")
        for ax in axes:
            ax.set_xlabel(ds.feature_names[2])
        axes[0].set_ylabel(ds.feature_names[3])
        _save(fig, out)


def main(argv=None):
    """Entry point of the ``emlab`` command; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        if args.command is None:
            raise _UsageError("emlab: error: a command is required, e.g. 'emlab demo --data sample'")
        if args.n < 2:
            raise _UsageError(f"emlab: error: --n must be at least 2; got {args.n}")
        if args.seed < 0:
            raise _UsageError(f"emlab: error: --seed must be non-negative; got {args.seed}")
        if args.data == "sample":
            demo_sample(args.seed, args.n, args.out)
        else:
            demo_iris(args.seed, args.out)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (ValueError, ArithmeticError, OSError) as exc:
        print(f"emlab: error: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    return 0
