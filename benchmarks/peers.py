"""One adapter per library: how to fit a case from a given start, and what came out.

An adapter has a ``name``, a ``models`` tuple (the case models it can fit), a
``numba_cache`` flag (whether its cold start depends on Numba's cache), and
three methods:

``version()``
    The library's version string.
``fit(case, X, start, max_iter)``
    Fit with ``tol=0`` (no early stop) from ``start`` and return a :class:`Fit`.
``cold_start_code()``
    Two pieces of Python source for :mod:`benchmarks.coldstart`: one that
    imports the library and loads Iris (into ``X``), and one that fits a
    small model to it; None to skip.

To add a peer (hmmlearn, say): write a class like :class:`ScikitLearn`, add it
to :data:`LIBRARIES`, and give the cases it takes part in ``peer='hmmlearn'``.
"""

import warnings
from dataclasses import dataclass

import numpy as np

#: The regularisation both libraries use (each one's default).
REG_COVAR = 1e-6


@dataclass(frozen=True)
class Fit:
    """What one fit produced.

    Attributes
    ----------
    n_iter : int
        Iterations actually run (``n_iter_``).
    trajectory : ndarray
        For EM, the mean log-likelihood per sample at each iteration
        (``lower_bounds_``); for k-means, the final inertia (one entry).
    warnings : tuple of str
        Names of the warning classes raised, other than the ignored
        convergence warnings.
    """

    n_iter: int
    trajectory: np.ndarray
    warnings: tuple = ()


def fit_quietly(estimator, X, ignore):
    """``estimator.fit(X)`` with the ``ignore`` warning classes silenced and the others recorded.

    Returns
    -------
    estimator, tuple of str
        The fitted estimator and the sorted names of the other warnings raised.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for category in ignore:
            warnings.simplefilter("ignore", category)
        estimator.fit(X)
    return estimator, tuple(sorted({w.category.__name__ for w in caught}))


def _outcome(estimator, model, names):
    if model == "kmeans":
        trajectory = np.array([estimator.inertia_])
    else:
        trajectory = np.asarray(estimator.lower_bounds_, dtype=np.float64)
    return Fit(int(estimator.n_iter_), trajectory, names)


class Emlab:
    """emlab's :class:`~emlab.GaussianMixture` and :class:`~emlab.KMeans`."""

    name = "emlab"
    models = ("gmm", "kmeans")
    numba_cache = True  # cold start is also measured with an empty Numba cache

    def version(self):
        import emlab

        return emlab.__version__

    def fit(self, case, X, start, max_iter):
        """Fit ``case`` on X from ``start`` for exactly ``max_iter`` iterations (``tol=0``).

        Raises
        ------
        ValueError
            What emlab raises for an unsupported option (e.g. a covariance type).
        """
        import emlab

        if case.model == "kmeans":
            estimator = emlab.KMeans(n_clusters=case.n_components, init=start.means, n_init=1,
                                     max_iter=max_iter, tol=0.0)
        else:
            estimator = emlab.GaussianMixture(
                n_components=case.n_components, covariance_type=case.covariance_type,
                tol=0.0, reg_covar=REG_COVAR, max_iter=max_iter, weights_init=start.weights,
                means_init=start.means, precisions_init=start.precisions,
            )
        estimator, names = fit_quietly(estimator, X, (emlab.ConvergenceWarning,))
        return _outcome(estimator, case.model, names)

    def cold_start_code(self):
        return (
            "import emlab\n"
            "from emlab.datasets import load_iris\n"
            "X = load_iris(return_X_y=True)[0]\n",
            "emlab.GaussianMixture(n_components=3, random_state=0).fit(X)\n",
        )


class ScikitLearn:
    """scikit-learn's GaussianMixture and KMeans (``algorithm='lloyd'``)."""

    name = "sklearn"
    models = ("gmm", "kmeans")
    numba_cache = False

    def version(self):
        import sklearn

        return sklearn.__version__

    def fit(self, case, X, start, max_iter):
        """Fit ``case`` on X from ``start`` for exactly ``max_iter`` iterations (``tol=0``).

        scikit-learn always initialises from ``init_params`` before applying
        the given start; ``'random_from_data'`` makes that discarded
        initialisation as cheap as it can be (the default, ``'kmeans'``,
        would run k-means on all of X first).
        """
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture

        if case.model == "kmeans":
            estimator = KMeans(n_clusters=case.n_components, init=start.means, n_init=1,
                               max_iter=max_iter, tol=0.0, algorithm="lloyd")
        else:
            estimator = GaussianMixture(
                n_components=case.n_components, covariance_type=case.covariance_type,
                tol=0.0, reg_covar=REG_COVAR, max_iter=max_iter, weights_init=start.weights,
                means_init=start.means, precisions_init=start.precisions,
                init_params="random_from_data", random_state=0,
            )
        estimator, names = fit_quietly(estimator, X, (ConvergenceWarning,))
        return _outcome(estimator, case.model, names)

    def cold_start_code(self):
        return (
            "from sklearn.mixture import GaussianMixture\n"
            "from sklearn.datasets import load_iris\n"
            "X = load_iris(return_X_y=True)[0]\n",
            "GaussianMixture(n_components=3, random_state=0).fit(X)\n",
        )


#: Every library the benchmarks know, by name.
LIBRARIES = {library.name: library for library in (Emlab(), ScikitLearn())}


def get_library(name):
    """The adapter registered under ``name``."""
    try:
        return LIBRARIES[name]
    except KeyError:
        raise ValueError(f"unknown library {name!r}; known: {sorted(LIBRARIES)}") from None
