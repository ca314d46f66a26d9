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

An adapter may also have ``supports(case)`` (None, or why it cannot fit the
case: reported as ``unsupported`` for that peer, the case goes on),
``available()`` (None, or why the library cannot be used: it is installed on
first use, :func:`ensure_installed`), ``set_threads(n)`` (its own thread
setting, called in its worker process), ``check`` (``'trajectory'``: the
whole trajectory is compared with emlab's; ``'final'``: only the final
log-likelihood after the same number of iterations; ``'none'``), and
``iterations`` / ``repeats`` overriding the run's (mlpack, whose whole fits are
slow).

To add a peer: write a class like :class:`ScikitLearn`, add it to
:data:`LIBRARIES`, and give the cases it takes part in ``peer='<name>'`` (or
list it in their ``extra_peers``). hmmlearn is registered twice, once per
implementation of its forward-backward (:class:`Hmmlearn`).
"""

import contextlib
import functools
import importlib
import logging
import subprocess
import sys
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


#: What the Gaussian-mixture HMMs learn (both libraries): everything but the means. hmmlearn
#: 0.3.3 accumulates its covariance statistics about the previous iteration's means, so with
#: 'm' and 'c' both learned its iterates differ from the maximiser's (emlab's) from the first
#: M-step on; with the means fixed both compute the same iterates (see emlab's ``GMMHMM``).
GMM_HMM_PARAMS = "stcw"

#: The variational HMM's attributes set on both libraries (hmmlearn's names).
VHMM_ATTRIBUTES = ("startprob_prior_", "transmat_prior_", "emissionprob_prior_",
                   "startprob_posterior_", "transmat_posterior_", "emissionprob_posterior_")
#: The variational Gaussian HMM's attributes set on both libraries (hmmlearn's names).
VGAUSSIAN_ATTRIBUTES = ("startprob_prior_", "transmat_prior_", "means_prior_", "beta_prior_",
                        "dof_prior_", "scale_prior_", "startprob_posterior_",
                        "transmat_posterior_", "means_posterior_", "beta_posterior_",
                        "dof_posterior_", "scale_posterior_")
#: The HMMs fitted by variational Bayes: their start is priors and posteriors.
VARIATIONAL_MODELS = ("hmm-vcategorical", "hmm-vgaussian")


def vhmm_start(case, start):
    """Priors and starting posteriors of a ``'hmm-vcategorical'`` case, from its start
    (of a ``'hmm-vgaussian'`` one: :func:`vgaussian_start`).

    Priors: hmmlearn's defaults, made explicit (``1/K`` for the start and
    transition rows, ``1/M`` for the emission rows). Posteriors: the prior
    plus the counts a uniform spread of the data over the states would give
    with the start's probabilities (``S`` starts, ``(T - S) / K`` transitions
    and ``T / K`` emissions per state), so near the start's means.

    Returns
    -------
    dict
        ``{attribute: ndarray}`` for :data:`VHMM_ATTRIBUTES`.
    """
    if case.model == "hmm-vgaussian":
        return vgaussian_start(case, start)
    k, m = case.n_components, case.n_features
    priors = {"startprob_prior_": np.full(k, 1.0 / k),
              "transmat_prior_": np.full((k, k), 1.0 / k),
              "emissionprob_prior_": np.full((k, m), 1.0 / m)}
    n, s = case.n_samples, case.n_sequences
    posteriors = {
        "startprob_posterior_": priors["startprob_prior_"] + s * start.startprob,
        "transmat_posterior_": priors["transmat_prior_"] + (n - s) / k * start.transmat,
        "emissionprob_posterior_": priors["emissionprob_prior_"] + n / k * start.emissionprob,
    }
    return {**priors, **posteriors}


def vgaussian_start(case, start):
    """Priors and starting posteriors of a ``'hmm-vgaussian'`` case, from its start.

    Priors: hmmlearn's defaults made explicit (``1/K`` for the start and
    transition rows, ``beta_prior_ = 1``, ``dof_prior_ = d``, ``scale_prior_``
    ``1e-3`` times the identity in the covariance type's shape), except
    ``means_prior_ = 0`` where hmmlearn's is the data's mean (the start knows
    no data; the generated means scatter about 0). Posteriors: the prior plus
    the counts a uniform spread of the data over the states would give (as
    :func:`vhmm_start`: ``S`` starts, ``(T - S) / K`` transitions and ``T / K``
    rows per state, ``T`` for the one 'tied' scale), the start's means as the
    posterior means, and the start's covariances times the posterior degrees of
    freedom as the scales (their posterior mean is then the start's covariances,
    as in hmmlearn's initialisation).

    Returns
    -------
    dict
        ``{attribute: ndarray}`` for :data:`VGAUSSIAN_ATTRIBUTES` (floats for the 'tied'
        degrees of freedom, as hmmlearn requires).
    """
    k, d, ct = case.n_components, case.n_features, case.covariance_type
    n, s = case.n_samples, case.n_sequences
    if ct == "tied":
        dof_prior, scale_prior = float(d), 1e-3 * np.eye(d)  # hmmlearn wants numbers here
        dof = dof_prior + n
        scale = np.asarray(start.covariances) * dof
    else:
        dof_prior = np.full(k, float(d))
        scale_prior = {"full": np.broadcast_to(1e-3 * np.eye(d), (k, d, d)).copy(),
                       "diag": np.full((k, d), 1e-3), "spherical": np.full(k, 1e-3)}[ct]
        dof = dof_prior + n / k
        cov = np.asarray(start.covariances)
        scale = cov * dof.reshape((k,) + (1,) * (cov.ndim - 1))
    return {
        "startprob_prior_": np.full(k, 1.0 / k),
        "transmat_prior_": np.full((k, k), 1.0 / k),
        "means_prior_": np.zeros((k, d)),
        "beta_prior_": np.ones(k),
        "dof_prior_": dof_prior,
        "scale_prior_": scale_prior,
        "startprob_posterior_": 1.0 / k + s * start.startprob,
        "transmat_posterior_": 1.0 / k + (n - s) / k * start.transmat,
        "means_posterior_": np.array(start.means, dtype=np.float64),
        "beta_posterior_": 1.0 + np.full(k, n / k),
        "dof_posterior_": dof,
        "scale_posterior_": scale,
    }


def set_hmm_start(estimator, case, start, covariances_name):
    """Set the start of an HMM case as attributes of ``estimator`` (either library's).

    ``covariances_name``: ``'covars_'`` (hmmlearn, emlab's ``GMMHMM``) or
    ``'covariances_'`` (emlab's ``GaussianHMM``); for the variational Gaussian
    HMM, ``'covars_'`` (hmmlearn, which reads ``covars_`` before its first
    M-step: it is set to the posterior mean of the covariances) or None
    (emlab, which derives it from the posteriors). Every attribute is a copy.
    """
    if case.model in VARIATIONAL_MODELS:
        attributes = vhmm_start(case, start)
        for name, value in attributes.items():
            setattr(estimator, name, value.copy() if isinstance(value, np.ndarray) else value)
        if case.model == "hmm-vgaussian" and covariances_name is not None:
            scale, dof = attributes["scale_posterior_"], attributes["dof_posterior_"]
            setattr(estimator, covariances_name,
                    scale / np.reshape(dof, np.shape(dof) + (1,) * (scale.ndim - np.ndim(dof))))
        return estimator
    if case.model in ("hmm-categorical", "hmm-multinomial"):
        estimator.emissionprob_ = start.emissionprob.copy()
    else:
        if case.model == "hmm-gmm":
            estimator.weights_ = start.weights.copy()
        estimator.means_ = start.means.copy()
        setattr(estimator, covariances_name, start.covariances.copy())
    estimator.startprob_ = start.startprob.copy()
    estimator.transmat_ = start.transmat.copy()
    return estimator


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
    ``start.resp`` (all of them when X is the case's whole data)."""
    return start.resp[:X.shape[0]]


class Emlab:
    """emlab's :class:`~emlab.GaussianMixture`, :class:`~emlab.BayesianGaussianMixture`,
    :class:`~emlab.KMeans`, ``GaussianHMM``, ``CategoricalHMM``, ``GMMHMM``,
    ``MultinomialHMM``, ``VariationalCategoricalHMM`` and ``VariationalGaussianHMM``."""

    name = "emlab"
    models = ("gmm", "bgmm", "kmeans", "hmm-gaussian", "hmm-categorical", "hmm-gmm",
              "hmm-multinomial", "hmm-vcategorical", "hmm-vgaussian")
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
        """Baum-Welch from ``start`` (``init_params=''``), every parameter learned
        (``GMMHMM``: all but the means, :data:`GMM_HMM_PARAMS`; the variational
        models: their posteriors, from :func:`vhmm_start` and :func:`vgaussian_start`).

        ``reg_covar=0``: hmmlearn, given ``covars_prior=0`` (``GMMHMM``: its
        flat defaults), adds nothing to the covariances either, so both
        compute the same iterates. Dirichlet priors of 1 (no pseudo-counts) on
        both sides, except the variational model's (:func:`vhmm_start`, the
        same on both).
        """
        import emlab

        k = case.n_components
        common = dict(max_iter=max_iter, tol=0.0, init_params="", random_state=0)
        covariances_name = "covariances_"
        if case.model == "hmm-categorical":
            estimator = emlab.CategoricalHMM(n_components=k, n_features=case.n_features, **common)
        elif case.model == "hmm-vcategorical":
            estimator = emlab.VariationalCategoricalHMM(n_components=k,
                                                        n_features=case.n_features, **common)
        elif case.model == "hmm-vgaussian":
            estimator = emlab.VariationalGaussianHMM(n_components=k,
                                                     covariance_type=case.covariance_type,
                                                     **common)
            covariances_name = None
        elif case.model == "hmm-multinomial":  # flat emission prior: hmmlearn's has none
            estimator = emlab.MultinomialHMM(n_components=k, n_trials=case.n_trials,
                                             emissionprob_prior=1.0, **common)
        elif case.model == "hmm-gmm":  # flat priors (hmmlearn's defaults, see Hmmlearn.fit)
            estimator = emlab.GMMHMM(n_components=k, n_mix=case.n_mix,
                                     covariance_type=case.covariance_type, reg_covar=0.0,
                                     params=GMM_HMM_PARAMS, **common)
            covariances_name = "covars_"
        else:
            estimator = emlab.GaussianHMM(n_components=k, covariance_type=case.covariance_type,
                                          reg_covar=0.0, **common)
        set_hmm_start(estimator, case, start, covariances_name)
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


#: The start of the notice hmmlearn's ``MultinomialHMM`` logs on every construction (not recorded).
MULTINOMIAL_NOTICE = "MultinomialHMM has undergone major changes"


class _RecordWarnings(logging.Handler):
    """Collects the messages hmmlearn logs at level WARNING (it does not use ``warnings``)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


class Hmmlearn:
    """hmmlearn's ``GaussianHMM``, ``CategoricalHMM``, ``GMMHMM``, ``MultinomialHMM``,
    ``VariationalCategoricalHMM`` and ``VariationalGaussianHMM`` with one implementation of
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

    models = ("hmm-gaussian", "hmm-categorical", "hmm-gmm", "hmm-multinomial",
              "hmm-vcategorical", "hmm-vgaussian")
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
        from threadpoolctl import threadpool_limits

        handler = _RecordWarnings()
        logger = logging.getLogger("hmmlearn")
        logger.addHandler(handler)
        try:
            estimator = self._estimator(case, start, max_iter)
            with threadpool_limits(limits=self.blas_threads, user_api="blas"):
                estimator, names = fit_quietly(estimator, X, (),
                                               lengths=sequence_lengths(case, X.shape[0]))
        finally:
            logger.removeHandler(handler)
        logged = {"hmmlearn: " + " ".join(m.split()[:4]) for m in handler.messages
                  if not m.startswith(MULTINOMIAL_NOTICE)}
        trajectory = np.asarray(estimator.monitor_.history, dtype=np.float64)
        return Fit(int(estimator.monitor_.iter), trajectory, tuple(sorted(set(names) | logged)))

    def _estimator(self, case, start, max_iter):
        """hmmlearn's model of ``case``, its start set (``init_params=''``).

        Every model runs its maximum-likelihood M-step (the variational one
        its own update): ``GaussianHMM`` with ``covars_prior=0``,
        ``means_weight=0``; ``GMMHMM`` with its defaults, which are flat
        (``weights_prior=1``, ``means_weight=0``, and for 'full', 'tied' and
        'diag' covariance priors that cancel), except 'spherical', whose
        default ``covars_prior`` is flat only when ``n_mix = d``: it gets
        ``-(d + 2) / 2``, emlab's flat value; ``params='stcw'``
        (:data:`GMM_HMM_PARAMS`). ``MultinomialHMM`` has no emission prior;
        emlab's gets ``emissionprob_prior=1``. The variational models get
        :func:`vhmm_start`'s (:func:`vgaussian_start`'s) priors and posteriors
        on both sides, every parameter learned.
        """
        from hmmlearn import hmm, vhmm

        k = case.n_components
        common = dict(n_iter=max_iter, tol=-np.inf, init_params="", random_state=0,
                      implementation=self.implementation)
        covariances_name = "covars_"
        if case.model == "hmm-categorical":
            estimator = hmm.CategoricalHMM(n_components=k, n_features=case.n_features,
                                           params="ste", **common)
        elif case.model == "hmm-vcategorical":
            estimator = vhmm.VariationalCategoricalHMM(n_components=k,
                                                       n_features=case.n_features,
                                                       params="ste", **common)
        elif case.model == "hmm-vgaussian":
            estimator = vhmm.VariationalGaussianHMM(n_components=k,
                                                    covariance_type=case.covariance_type,
                                                    params="stmc", **common)
        elif case.model == "hmm-multinomial":
            estimator = hmm.MultinomialHMM(n_components=k, n_trials=case.n_trials,
                                           params="ste", **common)
        elif case.model == "hmm-gmm":
            prior = {}
            if case.covariance_type == "spherical":
                prior["covars_prior"] = -(case.n_features + 2) / 2.0
            estimator = hmm.GMMHMM(n_components=k, n_mix=case.n_mix,
                                   covariance_type=case.covariance_type, min_covar=1e-6,
                                   params=GMM_HMM_PARAMS, **prior, **common)
        else:
            estimator = hmm.GaussianHMM(n_components=k, covariance_type=case.covariance_type,
                                        min_covar=1e-6, covars_prior=0.0, covars_weight=1,
                                        means_prior=0.0, means_weight=0.0, params="stmc",
                                        **common)
        return set_hmm_start(estimator, case, start, covariances_name)

    def cold_start_code(self):
        if self.implementation != "log":  # one cold start for the library is enough
            return None
        return (
            "from hmmlearn.hmm import GaussianHMM\n"
            "from sklearn.datasets import load_iris\n"
            "X = load_iris(return_X_y=True)[0]\n",
            "GaussianHMM(n_components=3, random_state=0).fit(X)\n",
        )


#: The exact versions installed when a peer below is missing (one place to change them).
ONEDAL_PIN = "scikit-learn-intelex==2026.2.0"  # brings daal4py (oneDAL's Python API)
MLPACK_PIN = "mlpack==4.8.0"
#: Seconds a ``pip install`` of a missing peer may take before the peer is skipped.
INSTALL_TIMEOUT = 900

_INSTALL_FAILURES = {}


def ensure_installed(module, pin, install=True):
    """Import ``module``, installing ``pin`` into the running interpreter if it is missing.

    ``python -m pip install --quiet <pin>`` (:data:`INSTALL_TIMEOUT`), once per
    process; ``install=False`` only tries the import.

    Returns
    -------
    None if ``module`` can be imported, else the reason it cannot (for the report).
    """
    try:
        importlib.import_module(module)
        return None
    except ImportError as exc:
        reason = f"cannot import {module} ({exc})"
    if not install:
        return reason + "; not installing (install=False)"
    if pin in _INSTALL_FAILURES:
        return _INSTALL_FAILURES[pin]
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", pin],
                              capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        done, failure = None, f"{type(exc).__name__}: {exc}"
    if done is not None and done.returncode != 0:
        tail = [line for line in (done.stderr or done.stdout).strip().splitlines()
                if "is ignored" not in line][-2:]
        failure = f"pip exit {done.returncode}: " + " | ".join(tail)
    elif done is not None:
        importlib.invalidate_caches()
        try:
            importlib.import_module(module)
            return None
        except ImportError as exc:
            failure = f"installed but cannot import: {exc}"
    _INSTALL_FAILURES[pin] = f"{reason}; `pip install {pin}` failed: {failure}"
    return _INSTALL_FAILURES[pin]


def _distribution_version(name):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


class _InstalledGmmPeer:
    """What oneDAL's and mlpack's adapters share: installed on demand (their ``pin``), and
    Gaussian mixtures with full or diagonal covariances only (``routine`` names theirs)."""

    def available(self, install=True):
        return ensure_installed(self.module, self.pin, install)

    def supports(self, case):
        if case.model != "gmm" or case.covariance_type not in ("full", "diag"):
            return (f"{self.routine} has full and diagonal covariances only, "
                    f"not {case.covariance_type!r}")
        return None


class OneDAL(_InstalledGmmPeer):
    """oneDAL's EM for Gaussian mixtures through daal4py (``daal4py.em_gmm``), full and
    diagonal covariances.

    ``em_gmm(nComponents=K, maxIterations=m, accuracyThreshold=0)`` (and
    ``covarianceStorage='diagonal'``) ``.compute(X, weights, means, covariances)``
    starts exactly from the shared start: weights (1, K), means (K, d) and a
    list of K covariances, (d, d) each ((1, d) for diagonal ones: the inverse
    of the start's precisions). Its result has ``goalFunction`` (the total
    log-likelihood at the last E-step, that of the parameters after ``m - 1``
    M-steps, as emlab's ``lower_bounds_[m - 1] * N``) and ``nIterations``, not
    the trajectory: the check (``check = 'final'``) compares that one value
    with emlab's after the same iterations. oneDAL adds nothing to the
    covariances unless one is ill-conditioned (its ``regularizationFactor``),
    emlab and scikit-learn add ``reg_covar = 1e-6``: the two differ by about
    1e-8 relative after a few iterations (measured 2.5e-9 full, 2.8e-8 diagonal
    at N = 2e4), well under the check's 1e-6.

    Threads: ``daal4py.daalinit(n)`` in its worker process (TBB).
    """

    name = "onedal"
    models = ("gmm",)
    numba_cache = False
    check = "final"
    module, pin = "daal4py", ONEDAL_PIN
    routine = "oneDAL's em_gmm"


    def set_threads(self, n_threads):
        import daal4py

        daal4py.daalinit(n_threads)

    def version(self):
        import daal4py

        found = _distribution_version("daal4py") or _distribution_version("scikit-learn-intelex")
        build = str(daal4py._get__version__()).strip("()").replace('"', "").replace("'", "")
        return f"{found} (daal4py build {build})"

    def fit(self, case, X, start, max_iter):
        import daal4py

        reason = self.supports(case)
        if reason is not None:
            raise ValueError(reason)
        k = case.n_components
        options = dict(nComponents=k, maxIterations=max_iter, accuracyThreshold=0.0)
        if case.covariance_type == "diag":
            options["covarianceStorage"] = "diagonal"
            covariances = [np.ascontiguousarray(1.0 / p)[None, :] for p in start.precisions]
        else:
            covariances = [np.ascontiguousarray(np.linalg.inv(p)) for p in start.precisions]
        result = daal4py.em_gmm(**options).compute(
            X, np.ascontiguousarray(start.weights)[None, :], np.ascontiguousarray(start.means),
            covariances)
        n_iter = int(np.asarray(result.nIterations).ravel()[0])
        goal = float(np.asarray(result.goalFunction).ravel()[0])
        return Fit(n_iter, np.array([goal / X.shape[0]]))

    def cold_start_code(self):
        return None


class Mlpack(_InstalledGmmPeer):
    """mlpack's ``gmm_train`` (Python bindings), full and diagonal covariances.

    **Whole fits from its own start.** ``gmm_train`` cannot start from given
    parameters (with an ``input_model`` it still re-initialises by k-means), so
    it runs its own k-means start (``seed=1``, at most
    :attr:`kmeans_max_iterations` Lloyd iterations) and then ``max_iterations``
    EM iterations (``tolerance=0``: it stops only at that count;
    ``no_force_positive``, ``trials=1``). Its numbers are the seconds of those
    whole fits (``whole_fit_seconds``), and, as the seeded start is the same in
    both fits, their difference per iteration (``own_start_seconds_per_iter``),
    not a per-iteration time from the shared start; nothing is checked against
    emlab (``check = 'none'``: different start, different iterates, and its
    model exposes no log-likelihood). Its ``n_iter`` is the count asked for
    (mlpack does not report it).

    Its EM is slow (about 0.6 s per iteration at N = 1e5, d = 8, K = 8, full,
    2 threads, here), so it runs its own :attr:`iterations` (1, 3) and
    :attr:`repeats` (1). Threads: ``OMP_NUM_THREADS`` in its worker process.
    """

    name = "mlpack"
    models = ("gmm",)
    numba_cache = False
    check = "none"
    whole_fit = True
    iterations = (1, 3)
    repeats = 1
    kmeans_max_iterations = 10
    module, pin = "mlpack", MLPACK_PIN
    routine = "mlpack's gmm_train"


    def version(self):
        import mlpack

        return getattr(mlpack, "__version__", None) or _distribution_version("mlpack")

    def fit(self, case, X, start, max_iter):
        import mlpack

        reason = self.supports(case)
        if reason is not None:
            raise ValueError(reason)
        mlpack.gmm_train(gaussians=case.n_components, input_=X, max_iterations=max_iter,
                         tolerance=0.0, trials=1, seed=1, no_force_positive=True,
                         kmeans_max_iterations=self.kmeans_max_iterations,
                         diagonal_covariance=case.covariance_type == "diag")
        return Fit(max_iter, np.array([]))

    def cold_start_code(self):
        return None


#: Every library the benchmarks know, by name.
LIBRARIES = {library.name: library for library in (Emlab(), ScikitLearn(), Hmmlearn("log"),
                                                   Hmmlearn("scaling"), OneDAL(), Mlpack())}

#: The peers compared on their final log-likelihood, or not at all (see their ``check``).
CHECKS = ("trajectory", "final", "none")


def check_of(library):
    """How a library's fit is checked against emlab's: one of :data:`CHECKS`."""
    return getattr(library, "check", "trajectory")


def get_library(name):
    """The adapter registered under ``name``."""
    try:
        return LIBRARIES[name]
    except KeyError:
        raise ValueError(f"unknown library {name!r}; known: {sorted(LIBRARIES)}") from None
