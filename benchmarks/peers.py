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

To add a peer: write a class like :class:`ScikitLearn`, add it to
:data:`LIBRARIES`, and give the cases it takes part in ``peer='<name>'`` (or
list it in their ``extra_peers``). hmmlearn is registered twice, once per
implementation of its forward-backward (:class:`Hmmlearn`).
"""

import contextlib
import functools
import logging
import warnings
from dataclasses import dataclass

import numpy as np

from .data import sequence_lengths

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
        For a mixture, the mean log-likelihood per sample at each iteration
        (``lower_bounds_``); for an HMM, the total log-likelihood of all the
        sequences at each iteration (hmmlearn's ``monitor_.history``, emlab's
        ``lower_bounds_ * n_samples``); for k-means, the final inertia (one entry).
        For the variational mixture (``bgmm``), each library's own bound per
        iteration: emlab's exact ELBO per sample, scikit-learn's lower bound
        (a total, less the terms it treats as constant); recorded, not compared.
    warnings : tuple of str
        Names of the warning classes raised, other than the ignored
        convergence warnings.
    parameters : dict or None
        ``bgmm`` only: the fitted ``weights_``, ``means_`` and ``covariances_``,
        which the check compares instead of the trajectories
        (:func:`benchmarks.timing.parameters_rel_diff`).
    """

    n_iter: int
    trajectory: np.ndarray
    warnings: tuple = ()
    parameters: dict = None


#: The fitted attributes of a variational mixture that the check compares.
BGMM_PARAMETERS = ("weights_", "means_", "covariances_")


@contextlib.contextmanager
def recorded_warnings(ignore):
    """Within the block, the ``ignore`` warning classes are silenced and the others
    recorded; yields a list that receives the sorted names of their classes at the end."""
    names = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for category in ignore:
            warnings.simplefilter("ignore", category)
        yield names
    names.extend(sorted({w.category.__name__ for w in caught}))


def fit_quietly(estimator, X, ignore, **fit_args):
    """``estimator.fit(X, **fit_args)`` with the ``ignore`` warning classes silenced and
    the others recorded.

    Returns
    -------
    estimator, tuple of str
        The fitted estimator and the sorted names of the other warnings raised.
    """
    with recorded_warnings(ignore) as names:
        estimator.fit(X, **fit_args)
    return estimator, tuple(names)


def _outcome(estimator, model, names):
    if model == "kmeans":
        trajectory = np.array([estimator.inertia_])
    else:
        trajectory = np.asarray(estimator.lower_bounds_, dtype=np.float64)
    parameters = None
    if model == "bgmm":
        parameters = {name: np.array(getattr(estimator, name), dtype=np.float64)
                      for name in BGMM_PARAMETERS}
    return Fit(int(estimator.n_iter_), trajectory, names, parameters)


def start_resp(start, X):
    """The starting responsibilities of a ``bgmm`` fit on X: the first ``len(X)`` rows of
    ``start.resp`` (all of them, except in the memory worker's warm-up on the first rows)."""
    return start.resp[:X.shape[0]]


class Emlab:
    """emlab's :class:`~emlab.GaussianMixture`, :class:`~emlab.BayesianGaussianMixture`,
    :class:`~emlab.KMeans`, ``GaussianHMM`` and ``CategoricalHMM``."""

    name = "emlab"
    models = ("gmm", "bgmm", "kmeans", "hmm-gaussian", "hmm-categorical")
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

        if case.is_hmm:
            return self._fit_hmm(case, X, start, max_iter)
        if case.model == "bgmm":
            return self._fit_bgmm(case, X, start, max_iter)
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

    def _fit_bgmm(self, case, X, start, max_iter):
        """``BayesianGaussianMixture.fit`` from the start's responsibilities.

        emlab's public ``fit`` draws its own start (``init_params``); the
        private ``_fit(X, sample_weight, resp)`` starts from given
        responsibilities (as tests/test_bayesian_mixture.py cross-checks it
        against scikit-learn). ``fit``'s validation (``_check_fit_X``) runs
        first, so the whole of ``fit`` but its own initialisation is timed.
        """
        import emlab

        estimator = emlab.BayesianGaussianMixture(
            n_components=case.n_components, covariance_type=case.covariance_type, tol=0.0,
            reg_covar=REG_COVAR, max_iter=max_iter, random_state=0)
        with recorded_warnings((emlab.ConvergenceWarning,)) as names:
            X, sample_weight = estimator._check_fit_X(X, None)
            estimator._fit(X, sample_weight, start_resp(start, X))
        return _outcome(estimator, case.model, tuple(names))

    def _fit_hmm(self, case, X, start, max_iter):
        """Baum-Welch from ``start`` (``init_params=''``), every parameter learned.

        ``reg_covar=0``: hmmlearn, given ``covars_prior=0``, adds nothing to
        the covariances either, so both compute the same iterates. Dirichlet
        priors of 1 (no pseudo-counts) on both sides.
        """
        import emlab

        k = case.n_components
        if case.model == "hmm-categorical":
            estimator = emlab.CategoricalHMM(n_components=k, n_features=case.n_features,
                                             max_iter=max_iter, tol=0.0, init_params="",
                                             random_state=0)
            estimator.emissionprob_ = start.emissionprob.copy()
        else:
            estimator = emlab.GaussianHMM(n_components=k, covariance_type=case.covariance_type,
                                          reg_covar=0.0, max_iter=max_iter, tol=0.0,
                                          init_params="", random_state=0)
            estimator.means_ = start.means.copy()
            estimator.covariances_ = start.covariances.copy()
        estimator.startprob_ = start.startprob.copy()
        estimator.transmat_ = start.transmat.copy()
        lengths = sequence_lengths(case, X.shape[0])
        estimator, names = fit_quietly(estimator, X, (emlab.ConvergenceWarning,),
                                       lengths=lengths)
        trajectory = np.asarray(estimator.lower_bounds_, dtype=np.float64) * X.shape[0]
        return Fit(int(estimator.n_iter_), trajectory, names)

    def cold_start_code(self):
        return (
            "import emlab\n"
            "from emlab.datasets import load_iris\n"
            "X = load_iris(return_X_y=True)[0]\n",
            "emlab.GaussianMixture(n_components=3, random_state=0).fit(X)\n",
        )


@functools.lru_cache(maxsize=None)
def sklearn_bgmm_from_resp():
    """A subclass of scikit-learn's ``BayesianGaussianMixture`` whose ``fit`` starts
    from the responsibilities in its ``start_resp`` attribute.

    Only ``_initialize_parameters`` (which computes ``resp`` by ``init_params``,
    then calls ``_initialize(X, resp)``) is replaced, by
    ``_initialize(X, self.start_resp)``; the rest of ``fit`` (validation,
    ``_check_parameters``, the iterations with their lower bound, the final
    E-step) is scikit-learn's own.
    """
    from sklearn.mixture import BayesianGaussianMixture

    class BayesianGaussianMixtureFromResp(BayesianGaussianMixture):
        start_resp = None

        def _initialize_parameters(self, X, random_state, xp=None):
            self._initialize(X, self.start_resp)

    return BayesianGaussianMixtureFromResp


class ScikitLearn:
    """scikit-learn's GaussianMixture, BayesianGaussianMixture and KMeans
    (``algorithm='lloyd'``)."""

    name = "sklearn"
    models = ("gmm", "bgmm", "kmeans")
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
        elif case.model == "bgmm":  # from the start's responsibilities (see sklearn_bgmm_from_resp)
            estimator = sklearn_bgmm_from_resp()(
                n_components=case.n_components, covariance_type=case.covariance_type, tol=0.0,
                reg_covar=REG_COVAR, max_iter=max_iter, random_state=0)
            estimator.start_resp = start_resp(start, X)
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


class _RecordWarnings(logging.Handler):
    """Collects the messages hmmlearn logs at level WARNING (it does not use ``warnings``)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


class Hmmlearn:
    """hmmlearn's ``GaussianHMM`` and ``CategoricalHMM`` with one implementation of
    its forward-backward: ``'log'`` (its default, log-space recursions) or
    ``'scaling'`` (scaled probabilities). Registered once per implementation,
    as ``hmmlearn-log`` and ``hmmlearn-scaling``.

    The start is set as attributes with ``init_params=''``, so hmmlearn's own
    initialisation (k-means for the means) does not run; ``covars_prior=0``
    (no pseudo-count on the covariances; its default is 1e-2) and
    ``means_weight=0`` make its M-step the maximum-likelihood one, as emlab's
    with ``reg_covar=0``; ``min_covar`` is used only by its initialisation,
    which does not run. ``tol=-inf``: with ``tol=0`` hmmlearn would stop at
    the first decrease of the log-likelihood, even one of round-off size at a
    fixed point, and the two libraries would run different iteration counts;
    -inf never stops early (emlab's ``tol=0`` does not stop either: it stops
    when ``|change| < tol``).

    BLAS runs on :attr:`blas_threads` = 1 thread during hmmlearn's fits.
    hmmlearn has no parallel code of its own; its only multithreaded work is
    BLAS/LAPACK calls on (T x d) blocks with d = 3 (a triangular solve per
    state and sequence), which are slower on 2 threads than on 1 (measured
    here at 10^6 steps: 'scaling' 0.33-0.50 s per iteration on 1 thread,
    0.65-0.69 on 2; 'log' 0.98-1.05 against 1.36-1.46), and, with 1000 short
    sequences on a busy machine, up to ten times slower. The speed-ups are
    thus against hmmlearn in its faster setting.
    """

    models = ("hmm-gaussian", "hmm-categorical")
    numba_cache = False
    blas_threads = 1

    def __init__(self, implementation):
        self.implementation = implementation
        self.name = f"hmmlearn-{implementation}"

    def version(self):
        import hmmlearn

        return hmmlearn.__version__

    def fit(self, case, X, start, max_iter):
        """Fit ``case`` on X from ``start`` for exactly ``max_iter`` iterations.

        Warnings hmmlearn logs ("Model is not converging", empty transition
        rows) are recorded as ``'hmmlearn: <message start>'``.
        """
        from hmmlearn import hmm

        k = case.n_components
        common = dict(n_iter=max_iter, tol=-np.inf, init_params="", random_state=0,
                      implementation=self.implementation)
        if case.model == "hmm-categorical":
            estimator = hmm.CategoricalHMM(n_components=k, n_features=case.n_features,
                                           params="ste", **common)
            estimator.emissionprob_ = start.emissionprob.copy()
        else:
            estimator = hmm.GaussianHMM(n_components=k, covariance_type=case.covariance_type,
                                        min_covar=1e-6, covars_prior=0.0, covars_weight=1,
                                        means_prior=0.0, means_weight=0.0, params="stmc",
                                        **common)
            estimator.means_ = start.means.copy()
            estimator.covars_ = start.covariances.copy()
        estimator.startprob_ = start.startprob.copy()
        estimator.transmat_ = start.transmat.copy()
        from threadpoolctl import threadpool_limits

        handler = _RecordWarnings()
        logger = logging.getLogger("hmmlearn")
        logger.addHandler(handler)
        try:
            with threadpool_limits(limits=self.blas_threads, user_api="blas"):
                estimator, names = fit_quietly(estimator, X, (),
                                               lengths=sequence_lengths(case, X.shape[0]))
        finally:
            logger.removeHandler(handler)
        logged = {"hmmlearn: " + " ".join(m.split()[:4]) for m in handler.messages}
        trajectory = np.asarray(estimator.monitor_.history, dtype=np.float64)
        return Fit(int(estimator.monitor_.iter), trajectory, tuple(sorted(set(names) | logged)))

    def cold_start_code(self):
        if self.implementation != "log":  # one cold start for the library is enough
            return None
        return (
            "from hmmlearn.hmm import GaussianHMM\n"
            "from sklearn.datasets import load_iris\n"
            "X = load_iris(return_X_y=True)[0]\n",
            "GaussianHMM(n_components=3, random_state=0).fit(X)\n",
        )


#: Every library the benchmarks know, by name.
LIBRARIES = {library.name: library for library in (Emlab(), ScikitLearn(), Hmmlearn("log"),
                                                   Hmmlearn("scaling"))}


def get_library(name):
    """The adapter registered under ``name``."""
    try:
        return LIBRARIES[name]
    except KeyError:
        raise ValueError(f"unknown library {name!r}; known: {sorted(LIBRARIES)}") from None
