"""Choosing the number of components and the covariance model by an information criterion.

``select`` fits every combination and returns a table, like R's mclust
(``mclustBIC``), but with scikit-learn's sign convention: **lower is better**.
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_array, check_option
from .exceptions import DegenerateCovarianceError
from .mixture import COVARIANCE_TYPES, GaussianMixture

CRITERIA = ("bic", "aic", "icl")


@dataclass
class Selection:
    """The outcome of :func:`select`.

    Attributes
    ----------
    criterion : str
    n_components : ndarray of int
        The rows of ``table``.
    covariance_types : list of str
        The columns of ``table``.
    table : ndarray of shape (len(n_components), len(covariance_types))
        The criterion of each fit (lower is better); NaN where the fit failed.
    best_n_components, best_covariance_type
        The row and column of the smallest value.
    best_model_ : GaussianMixture
        The fitted model of that combination.
    failures : dict
        ``{(n_components, covariance_type): message}`` for the fits that failed
        (for example, a collapse without ``reg_covar``).
    warnings : dict
        ``{(n_components, covariance_type): [message, ...]}`` for the fits that
        warned, e.g. a component held up only by ``reg_covar``: such a fit can
        win on AIC while being degenerate, so look here before trusting it.
    """

    criterion: str
    n_components: np.ndarray
    covariance_types: list
    table: np.ndarray
    best_n_components: int
    best_covariance_type: str
    best_model_: GaussianMixture
    failures: dict = field(default_factory=dict)
    warnings: dict = field(default_factory=dict)

    def __str__(self):
        width = max(10, *(len(t) + 2 for t in self.covariance_types))
        lines = [f"{self.criterion.upper()} (lower is better)",
                 f"{'K':>4s}" + "".join(f"{t:>{width}s}" for t in self.covariance_types)]
        for k, row in zip(self.n_components, self.table):
            cells = []
            for t, v in zip(self.covariance_types, row):
                mark = "*" if (k == self.best_n_components and t == self.best_covariance_type) else " "
                cells.append(f"{'failed' if np.isnan(v) else f'{v:.2f}':>{width - 1}s}{mark}")
            lines.append(f"{k:4d}" + "".join(cells))
        lines.append(f"best: {self.best_n_components} components, {self.best_covariance_type!r} "
                     f"covariances (*)")
        best_warnings = self.warnings.get((self.best_n_components, self.best_covariance_type), [])
        lines.extend(f"  warning for the best fit: {text}" for text in best_warnings)
        return "\n".join(lines)

    def plot(self, ax=None):
        """The criterion against K, one line per covariance model, the best one circled."""
        if ax is None:
            import matplotlib.pyplot as plt

            ax = plt.gca()
        for j, kind in enumerate(self.covariance_types):
            ax.plot(self.n_components, self.table[:, j], marker="o", label=kind)
        j = self.covariance_types.index(self.best_covariance_type)
        i = int(np.flatnonzero(self.n_components == self.best_n_components)[0])
        ax.plot([self.best_n_components], [self.table[i, j]], "o", ms=14, mfc="none", mec="black")
        ax.set_xlabel("number of components K")
        ax.set_ylabel(f"{self.criterion.upper()} (lower is better)")
        ax.set_xticks(self.n_components)
        ax.legend(title="covariance")
        return ax


def select(X, n_components=range(1, 10), covariance_types=COVARIANCE_TYPES, criterion="bic",
           **kwargs):
    """Fit a Gaussian mixture for every K and covariance model; keep the best by ``criterion``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : iterable of int, default=range(1, 10)
        Values of K larger than the number of samples are skipped.
    covariance_types : iterable of {'full', 'tied', 'diag', 'spherical'}
    criterion : {'bic', 'aic', 'icl'}, default='bic'
        See :meth:`GaussianMixture.bic`, :meth:`~GaussianMixture.aic` and
        :meth:`~GaussianMixture.icl`. Lower is better for all three.
    **kwargs
        Passed to every :class:`GaussianMixture` (``n_init``, ``random_state``,
        ``reg_covar``, ``tol``, ...).

    Returns
    -------
    Selection

    Examples
    --------
    >>> from emlab import select
    >>> from emlab.datasets import two_samples
    >>> _, sample_2 = two_samples(n=500, random_state=0)
    >>> choice = select(sample_2.data, n_components=range(1, 5), covariance_types=["full"],
    ...                 random_state=0)
    >>> choice.best_n_components
    2
    """
    X = check_array(X, min_samples=2)
    check_option(criterion, "criterion", CRITERIA)
    ks = np.array(sorted({int(k) for k in n_components if 1 <= int(k) <= X.shape[0]}))
    kinds = list(covariance_types)
    if ks.size == 0:
        raise ValueError(f"n_components holds no value between 1 and n_samples={X.shape[0]}.")
    if not kinds:
        raise ValueError("covariance_types is empty.")
    for kind in kinds:
        check_option(kind, "covariance_types[...]", COVARIANCE_TYPES)
    table = np.full((ks.size, len(kinds)), np.nan)
    failures = {}
    raised = {}
    best, best_value = None, math.inf
    for i, k in enumerate(ks):
        for j, kind in enumerate(kinds):
            model = GaussianMixture(int(k), covariance_type=kind, **kwargs)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")  # recorded with the fit, not printed
                    model.fit(X)
            except (DegenerateCovarianceError, FloatingPointError, ValueError) as exc:
                failures[(int(k), kind)] = str(exc)
                continue
            if caught:
                raised[(int(k), kind)] = [f"{w.category.__name__}: {w.message}" for w in caught]
            table[i, j] = getattr(model, criterion)(X)
            if table[i, j] < best_value:
                best, best_value = (int(k), kind, model), table[i, j]
    if best is None:
        raise ValueError(f"every fit failed; the first failure: {next(iter(failures.values()))}")
    return Selection(criterion, ks, kinds, table, best[0], best[1], best[2], failures, raised)
