"""Figures the book and the CLI share. matplotlib is imported when a function is called."""

import numpy as np

# The seed program's convention: colour = assigned cluster, marker shape = true component.
COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]
MARKERS = ["o", "^", "s", "D", "v", "P", "X", "*", "<", ">"]


def covariance_ellipse(ax, mean, covariance, n_std=2.0, **kwargs):
    """Draw the ``n_std``-standard-deviation ellipse of a 2-d Gaussian on ``ax``."""
    from matplotlib.patches import Ellipse

    values, vectors = np.linalg.eigh(np.asarray(covariance)[:2, :2])
    angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
    width, height = 2 * n_std * np.sqrt(np.maximum(values[::-1], 0.0))
    style = {"fill": False, "lw": 1.5, "color": "black"} | kwargs
    ellipse = Ellipse(np.asarray(mean)[:2], width, height, angle=angle, **style)
    ax.add_patch(ellipse)
    return ellipse


def plot_clusters(ax, X, labels, true_labels=None, means=None, covariances=None, title=None,
                  features=(0, 1)):
    """Scatter two features of X: colour = ``labels``, marker = ``true_labels``.

    With ``means`` (and ``covariances``) the centres (and their 2-sigma ellipses)
    are drawn too.
    """
    X = np.asarray(X)
    i, j = features
    labels = np.asarray(labels)
    true_labels = np.zeros(len(X), dtype=int) if true_labels is None else np.asarray(true_labels)
    for t in np.unique(true_labels):
        for c in np.unique(labels):
            rows = (true_labels == t) & (labels == c)
            if rows.any():
                ax.scatter(X[rows, i], X[rows, j], s=12, alpha=0.75, color=COLOURS[c % len(COLOURS)],
                           marker=MARKERS[t % len(MARKERS)], linewidths=0)
    if means is not None:
        means = np.asarray(means)
        ax.scatter(means[:, i], means[:, j], marker="x", s=80, color="black", zorder=3)
        if covariances is not None:
            idx = np.ix_([i, j], [i, j])
            for m, c in zip(means, covariances):
                covariance_ellipse(ax, m[[i, j]], np.asarray(c)[idx])
    if title:
        ax.set_title(title)
    return ax


def plot_lower_bounds(ax, traces, labels=None):
    """Mean log-likelihood against iteration, one line per trace (e.g. ``lower_bounds_``)."""
    for n, trace in enumerate(traces):
        label = None if labels is None else labels[n]
        ax.plot(np.arange(len(trace)), trace, marker=".", lw=1, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean log-likelihood")
    if labels is not None:
        ax.legend()
    return ax
