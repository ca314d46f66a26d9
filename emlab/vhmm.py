"""Variational Bayes hidden Markov model with categorical emissions (hmmlearn 0.3.3's).

:class:`VariationalCategoricalHMM` keeps a Dirichlet posterior ``q`` over the
starting probabilities, over every row of the transition matrix and over every
state's emission probabilities, and fits it by variational Bayes EM run through
:func:`~emlab.fit_em` (with its monotonicity guard):

* E-step: the state posteriors under the "subnormalised probabilities"
  ``exp(E_q[log p])`` (``exp(digamma(a_j) - digamma(sum a))``), from one
  forward-backward pass. emlab's kernel
  (:func:`emlab._kernels.hmm.forward_backward`) expects a stochastic
  ``transmat``, so each subnormalised row is renormalised exactly: with
  ``r_0 = sum_j pi~_j`` and ``r_i = sum_j A~_ij``, a path's weight
  ``pi~(z_1) prod_t A~(z_t, z_t+1) prod_t b~_t(z_t)`` equals
  ``r_0 pi(z_1) prod_t A(z_t, z_t+1) prod_t [b~_t(z_t) r_(z_t)]`` (the last
  row of a sequence without ``r``) with ``pi = pi~ / r_0`` and ``A = A~ / r``:
  ``log r_i`` goes into the log-emissions of every row but the last of its
  sequence and ``log r_0`` into each sequence's log-normaliser. The path
  weights, hence the posteriors and the normaliser, are unchanged.
* M-step: each posterior is the prior plus the expected counts.

The objective EM monitors is the evidence lower bound (free energy) of the
posterior used in the E-step, per observation: ``log Z~ - KL(q || prior)``
summed over the Dirichlet factors, where ``Z~`` is the forward normaliser under
the subnormalised probabilities. It is the exact ELBO (``q(Z)`` being optimal
given ``q(theta)``; no constant is left out) and it is what hmmlearn records in
``monitor_.history`` (as a total). Coordinate ascent on the free energy cannot
decrease it, and the driver checks that at every iteration.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln, logsumexp

from ._validation import check_int, check_option, check_random_state
from .em import ChunkedData, fit_em
from .exceptions import NotFittedError
from .hmm import (
    COVARIANCE_TYPES,
    DEFAULT_MAX_ITER,
    CategoricalHMM,
    GaussianHMM,
    ConvergenceMonitor,
    HMMParams,
    HMMStatistics,
    Sequences,
    Workspace,
    _data_shape,
    _RowsOnly,
    check_lengths,
    posteriors,
)
from .kmeans import KMeans, kmeans_plusplus, lloyd_chunked
from . import mixture
from .em import SufficientStatistics

__all__ = ["VariationalCategoricalHMM", "VariationalGaussianHMM", "kl_dirichlet"]


def kl_dirichlet(q, p):
    """``KL(Dir(q) || Dir(p))`` of each row (last axis) of ``q`` and ``p``; summed to a float.

    The formula of hmmlearn's ``_kl_divergence.kl_dirichlet``, applied row by row.
    """
    q = np.atleast_2d(np.asarray(q, dtype=np.float64))
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    qsum = q.sum(axis=-1)
    psum = p.sum(axis=-1)
    per_row = (gammaln(qsum) - gammaln(psum) - np.sum(gammaln(q) - gammaln(p), axis=-1)
               + np.sum((q - p) * (digamma(q) - digamma(qsum)[..., None]), axis=-1))
    return float(per_row.sum())


def log_subnormalised(concentration):
    """``E_q[log p] = digamma(a) - digamma(sum a)`` along the last axis (hmmlearn's subnorm)."""
    a = np.asarray(concentration, dtype=np.float64)
    return digamma(a) - digamma(a.sum(axis=-1, keepdims=True))


def check_concentration(value, name, shape):
    """Dirichlet concentrations > 0 broadcast to ``shape`` (float64), or a ValueError."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be finite numbers > 0; got {value!r}.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be finite numbers > 0; got {value!r}.") from None
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(f"{name} must be a scalar or broadcast to shape {shape}; got shape "
                         f"{arr.shape}.") from None
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must hold finite Dirichlet concentrations > 0; got {value!r}.")
    return np.array(arr, dtype=np.float64)


def _n_sequences(data):
    """The number of sequences of in-memory :class:`Sequences` or of chunked data."""
    if isinstance(data, Sequences):
        return data.n_sequences
    per_chunk = getattr(data, "per_chunk", None)
    if per_chunk and all("lengths" in extras for extras in per_chunk):
        return int(sum(len(extras["lengths"]) for extras in per_chunk))
    return 1


class _VariationalBaumWelch:
    """The :class:`~emlab.em.EMModel` of variational Bayes for a categorical HMM.

    Its parameters are an :class:`~emlab.hmm.HMMParams` of Dirichlet
    **concentrations** (the posteriors ``q``): ``startprob`` (K,),
    ``transmat`` (K, K), ``emission`` (K, M). The priors are fixed for the
    run. The statistics are :class:`~emlab.hmm.HMMStatistics` whose
    ``objective`` is the log-normaliser ``log Z~`` of the chunk's sequences
    under the subnormalised probabilities; :meth:`objective` subtracts the KL
    divergences of the posteriors from the priors.
    """

    def __init__(self, hmm, priors, n_sequences, labels=None):
        self.hmm = hmm
        self.labels = labels  # known states (-1: unknown) of the rows in memory, or None
        self.priors = priors  # HMMParams of the prior concentrations
        self.n_sequences = n_sequences
        self.learn = hmm.params
        self.starts = 0
        self.iteration = 0
        self.m_step_slack = 0.0
        self.workspace = Workspace()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["workspace"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.workspace = Workspace()

    def init_params(self, data, rng):
        restart = self.starts
        self.starts += 1
        self.iteration = 0
        n = _data_shape(data if isinstance(data, ChunkedData) else data.X)[0]
        return self.hmm._initial_posteriors(self.priors, n, self.n_sequences, rng, restart)

    # ------------------------------------------------------------------- E-step

    @staticmethod
    def _renormalised(params):
        """The stochastic startprob and transmat, their log row sums, and the log-emission table.

        ``log_emission_table`` is (M, K): ``E_q[log p(x = s | z = k)]``.
        """
        log_start = log_subnormalised(params.startprob)
        log_r0 = float(logsumexp(log_start))
        log_trans = log_subnormalised(params.transmat)
        log_r = logsumexp(log_trans, axis=1)
        startprob = np.exp(log_start - log_r0)
        transmat = np.exp(log_trans - log_r[:, None])
        table = np.ascontiguousarray(log_subnormalised(params.emission).T)
        return startprob, transmat, log_r0, log_r, table

    def _statistics(self, X, bounds, params, workspace, chunk=None, first_sequence=0,
                    labels=None):
        startprob, transmat, log_r0, log_r, table = self._renormalised(params)
        symbols = X[:, 0].astype(np.intp)
        log_emission = table[symbols] + log_r  # log r_i on every row ...
        last = bounds[1:] - 1
        log_emission[last] = table[symbols[last]]  # ... but the last of each sequence
        if labels is not None:  # q(z) restricted to the paths through the known states
            mixture.mask_labelled(log_emission, labels)
        logprob, gamma, xi_sum = posteriors(log_emission, bounds, startprob, transmat, workspace)
        del log_emission
        n_seq = bounds.shape[0] - 1
        bad = np.flatnonzero(~np.isfinite(logprob))
        zero = (np.array([-1 if chunk is None else int(chunk), int(first_sequence) + int(bad[0])])
                if bad.size else np.array([-1, -1]))
        return HMMStatistics(float(logprob.sum()) + n_seq * log_r0, X.shape[0],
                             start=gamma[bounds[:-1]].sum(axis=0), xi_sum=xi_sum,
                             emission=self.hmm._emission_statistics(X, gamma, params.emission),
                             zero=zero)

    def statistics(self, X, params, lengths=None, chunk=None, first_sequence=0):
        """The :class:`~emlab.hmm.HMMStatistics` of a chunk of whole sequences."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        bounds = check_lengths(lengths, X.shape[0])
        return self._statistics(X, bounds, params, Workspace(), chunk, first_sequence)

    def kl(self, params):
        """``KL(q || prior)`` summed over the Dirichlet factors (start, transitions, emissions)."""
        return (kl_dirichlet(params.startprob, self.priors.startprob)
                + kl_dirichlet(params.transmat, self.priors.transmat)
                + kl_dirichlet(params.emission, self.priors.emission))

    def lower_bound(self, stats, params):
        """The total ELBO: ``log Z~ - KL(q || prior)`` (hmmlearn's ``monitor_.history`` entry)."""
        return stats.objective - self.kl(params)

    def objective(self, stats, params):
        """The ELBO per observation, with a named error for a sequence of zero probability."""
        self.iteration += 1
        if not np.isfinite(stats.objective):
            chunk, seq = (int(v) for v in stats.zero)
            where = f"sequence {seq}" + (f" (in chunk {chunk})" if chunk >= 0 else "")
            raise FloatingPointError(
                f"{where} has zero probability under the subnormalised parameters at "
                f"variational iteration {self.iteration}: a Dirichlet concentration so small "
                f"that exp(E_q[log p]) underflows to 0 rules every path out."
            )
        return self.lower_bound(stats, params) / stats.weight

    def e_step(self, data, params):
        stats = self._statistics(data.X, data.bounds, params, self.workspace, labels=self.labels)
        return self.objective(stats, params), stats

    # ------------------------------------------------------------------- M-step

    def params_from_statistics(self, stats, params):
        startprob, transmat, emission = params.startprob, params.transmat, params.emission
        if "s" in self.learn:
            startprob = self.priors.startprob + stats.start
        if "t" in self.learn:
            transmat = self.priors.transmat + stats.xi_sum
        if "e" in self.learn:
            emission = self.priors.emission + stats.emission.counts
        return HMMParams(startprob, transmat, emission)

    def m_step(self, data, stats, params):
        return self.params_from_statistics(stats, params)


class VariationalCategoricalHMM(CategoricalHMM):
    """Hidden Markov model with categorical emissions, fitted by variational Bayes.

    hmmlearn 0.3.3's ``VariationalCategoricalHMM`` (Beal, 2003): Dirichlet
    priors and posteriors on ``startprob``, on each row of ``transmat`` and
    on each state's emission probabilities; fit maximises the evidence lower
    bound by coordinate ascent (variational Bayes EM) through
    :func:`~emlab.fit_em`, whose guard checks at every iteration that the
    bound did not fall. X has shape (n_samples, 1) and holds integer symbols
    0, ..., n_features - 1, as for :class:`~emlab.CategoricalHMM`.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    startprob_prior : float or array-like of shape (n_components,), optional
        Dirichlet concentration (> 0) of the prior on ``startprob``. Default
        ``1 / n_components``, as hmmlearn.
    transmat_prior : float or array-like of shape (n_components, n_components), optional
        Dirichlet concentration (> 0) of the prior on each row of
        ``transmat``. Default ``1 / n_components``.
    emissionprob_prior : float or array-like of shape (n_components, n_features), optional
        Dirichlet concentration (> 0) of the prior on each state's emission
        probabilities. Default ``1 / n_features``.
    n_features : int, optional
        Number of symbols. Default: from ``emissionprob_posterior_`` if it is
        the start ('e' not in ``init_params``), else the largest symbol in X
        plus one.
    algorithm : {'viterbi', 'map'}, default='viterbi'
        The decoder of :meth:`predict` and :meth:`decode`.
    random_state : None, int or numpy.random.Generator
        Seeds the initialisation and ``sample``.
    max_iter : int, default=100
        Iterations at most; hmmlearn's ``n_iter``, in its position (the eighth
        positional argument). ``n_iter=`` is also accepted as a keyword and
        stored as ``max_iter``, as in the other emlab HMMs.
    tol : float, default=1e-6
        Convergence threshold on the change of the ELBO **per observation**
        (hmmlearn's 1e-6 is on the total).
    verbose : int or bool, default=0
        As :class:`~emlab.CategoricalHMM`'s (``True`` is a line per iteration).
    params : str, default='ste'
        The posteriors fit updates: 's' start, 't' transitions, 'e' emissions.
    init_params : str, default='ste'
        The posteriors (and priors) fit initialises. A letter left out means
        the ``*_posterior_`` attribute set before fit is the start (a
        ValueError if it is not set), with the ``*_prior_`` attribute if set,
        else the constructor's prior.
    implementation : {'log', 'scaling'}, default='log'
        Accepted for compatibility; emlab runs one forward-backward either way.
    n_init : int, default=1
        Number of starts (keyword-only); the run with the highest final ELBO is kept.
    on_decrease : {'warn', 'raise', 'ignore'}, default='warn'
        What to do if the ELBO falls by more than round-off between two
        iterations, which coordinate ascent cannot do (keyword-only).

    Attributes
    ----------
    startprob_prior_, transmat_prior_, emissionprob_prior_ : ndarray
        The prior concentrations used by fit, shapes (K,), (K, K), (K, M).
    startprob_posterior_, transmat_posterior_, emissionprob_posterior_ : ndarray
        The posterior concentrations: prior plus expected counts.
    startprob_, transmat_, emissionprob_ : ndarray
        The posterior means (each posterior normalised to sum to 1), which
        :meth:`score`, :meth:`predict`, :meth:`decode`, :meth:`predict_proba`
        and ``sample`` use, as hmmlearn's.
    n_features_ : int
    lower_bounds_ : ndarray
        The ELBO per observation of the posterior before each M-step (entry 0:
        the start).
    monitor_ : ConvergenceMonitor
        ``history`` is ``lower_bounds_ * n_samples``: hmmlearn's history (the
        total ELBO, with every constant).
    converged_ : bool
    n_iter_ : int
    n_features_in_ : int

    Notes
    -----
    The initialisation follows hmmlearn's scheme with two differences: the
    random pseudo-counts are drawn by emlab's generator (so not hmmlearn's
    numbers), and the prior is added to them (the start is then of the form
    "prior + counts", as every later posterior, and no concentration is ever
    0, which would make ``exp(E_q[log p])`` vanish): ``startprob_posterior_ =
    prior + n_sequences * Dir(1/K)``, each row of ``transmat_posterior_ =
    prior + (n_samples / K) * Dir(1/K)``, each row of
    ``emissionprob_posterior_ = prior + (n_samples / K) * Dir(emission prior)``.

    :meth:`score` returns the log-likelihood of X under the posterior means,
    as hmmlearn's ``score`` (not the ELBO; that is ``monitor_.history``).
    Unlike hmmlearn, ``startprob_`` and ``transmat_`` are set after fit even
    when 's' or 't' is not in ``params``. A list of sequences or a Dask
    array is fitted chunk by chunk, as in the other emlab HMMs.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0], [0], [1], [1], [2], [2], [0], [0], [1], [2]] * 20)
    >>> model = VariationalCategoricalHMM(2, random_state=0, on_decrease="raise").fit(X)
    >>> bool(np.all(np.diff(model.lower_bounds_) >= -1e-12))
    True
    """

    _estimator_type = "density_estimator"

    def __init__(self, n_components=1, startprob_prior=None, transmat_prior=None,
                 emissionprob_prior=None, n_features=None, algorithm="viterbi",
                 random_state=None, max_iter=DEFAULT_MAX_ITER, tol=1e-6, verbose=0,
                 params="ste", init_params="ste", implementation="log", *, n_init=1,
                 on_decrease="warn", **aliases):
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features
        self.algorithm = algorithm
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.on_decrease = on_decrease
        self._take_aliases(aliases)

    # ----------------------------------------------------------------------- checks

    def _symbols(self, largest=None):
        """The number of symbols: n_features, else the starting posterior's (fitting) or
        ``emissionprob_``'s (scoring), else the largest symbol in the data + 1."""
        if self.n_features is not None:
            return check_int(self.n_features, "n_features", low=1)
        if largest is not None:
            if "e" not in self.init_params and hasattr(self, "emissionprob_posterior_"):
                return int(np.shape(self.emissionprob_posterior_)[-1])
            return int(largest) + 1
        if hasattr(self, "emissionprob_"):
            return int(np.shape(self.emissionprob_)[-1])
        raise NotFittedError("n_features is unknown: set n_features or emissionprob_, or fit.")

    def _priors(self, k, m):
        """The prior concentrations: the constructor's (default 1/K, 1/K, 1/M), or the
        ``*_prior_`` attributes of the parameters that are not initialised."""
        defaults = {"s": (self.startprob_prior, 1.0 / k, "startprob_prior", (k,)),
                    "t": (self.transmat_prior, 1.0 / k, "transmat_prior", (k, k)),
                    "e": (self.emissionprob_prior, 1.0 / m, "emissionprob_prior", (k, m))}
        out = {}
        for letter, (value, default, name, shape) in defaults.items():
            if letter not in self.init_params and hasattr(self, name + "_"):
                out[letter] = check_concentration(getattr(self, name + "_"), name + "_", shape)
            else:
                out[letter] = check_concentration(default if value is None else value, name,
                                                  shape)
        return HMMParams(out["s"], out["t"], out["e"])

    def _initial_posteriors(self, priors, n, n_sequences, rng, restart):
        """Starting posteriors: hmmlearn's random pseudo-counts plus the prior for each letter in
        ``init_params``, the ``*_posterior_`` attribute for the others."""
        k, m = priors.emission.shape
        shapes = {"s": ("startprob_posterior_", (k,)), "t": ("transmat_posterior_", (k, k)),
                  "e": ("emissionprob_posterior_", (k, m))}
        out = {}
        for letter, (name, shape) in shapes.items():
            if letter in self.init_params:
                if letter == "s":
                    draw = rng.dirichlet(np.full(k, 1.0 / k)) * n_sequences
                elif letter == "t":
                    draw = rng.dirichlet(np.full(k, 1.0 / k), size=k) * (n / k)
                else:
                    draw = np.array([rng.dirichlet(row) for row in priors.emission]) * (n / k)
                out[letter] = getattr(priors, {"s": "startprob", "t": "transmat",
                                               "e": "emission"}[letter]) + draw
            else:
                if not hasattr(self, name):
                    raise ValueError(f"{name} is not set: set it before fit, or keep {letter!r} "
                                     f"in init_params (init_params={self.init_params!r}).")
                value = np.asarray(getattr(self, name), dtype=np.float64)
                if value.shape != shape:
                    raise ValueError(f"{name} must have shape {shape}; got {value.shape}.")
                out[letter] = check_concentration(value, name, shape)
        return HMMParams(out["s"], out["t"], out["e"])

    # ----------------------------------------------------------------------- fitting

    def fit(self, X, lengths=None, *, labels=None):
        """Fit the Dirichlet posteriors by variational Bayes EM. Returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1), dask.array.Array, or list of arrays
            Integer symbols, all sequences one after the other (or one array
            per sequence), as :meth:`emlab.CategoricalHMM.fit`.
        lengths : array-like of int, optional
            The length of each sequence (summing to n_samples); default one
            sequence.
        labels : array-like of shape (n_samples,), optional
            Known states (-1: unknown), X in memory only: q(z) is restricted
            to the state paths through them (see :meth:`emlab.GaussianHMM.fit`).
        """
        k = self._check_settings()
        data = self._fit_data(X, lengths)
        n, d = _data_shape(data if isinstance(data, ChunkedData) else data.X)
        if k > n:
            raise ValueError(f"n_components={k} must be <= n_samples={n}.")
        self._summary(data)  # chunked data: checks the symbols and sets _fit_symbols
        m = self._fit_symbols
        priors = self._priors(k, m)
        labels = self._fit_labels_checked(data, labels, k)
        model = _VariationalBaumWelch(self, priors, _n_sequences(data), labels)
        verbose = self._verbosity()
        result = fit_em(model, data, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                        random_state=check_random_state(self.random_state),
                        on_decrease=self.on_decrease, verbose=verbose)
        post = result.params
        self.startprob_prior_ = priors.startprob
        self.transmat_prior_ = priors.transmat
        self.emissionprob_prior_ = priors.emission
        self.startprob_posterior_ = post.startprob
        self.transmat_posterior_ = post.transmat
        self.emissionprob_posterior_ = post.emission
        self.startprob_ = post.startprob / post.startprob.sum()
        self.transmat_ = post.transmat / post.transmat.sum(axis=1, keepdims=True)
        self._set_emission(post.emission / post.emission.sum(axis=1, keepdims=True))
        self.lower_bounds_ = result.lower_bounds
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.n_features_in_ = d
        self.monitor_ = ConvergenceMonitor(self.tol, self.max_iter, verbose >= 2,
                                           history=np.asarray(result.lower_bounds) * n,
                                           iter=result.n_iter, converged=result.converged)
        return self

    def _n_emission_parameters(self):
        k, m = np.shape(self.emissionprob_)
        return k * (m - 1) if "e" in self.params else 0


# =============================================================================== Gaussian emissions


@dataclass(frozen=True)
class GaussianPosterior:
    """Normal-Wishart parameters (hmmlearn's names, without the ``_prior_``/``_posterior_``).

    ``means`` (K, d), ``beta`` (K,), ``dof`` (K,) (a float for 'tied') and
    ``scale``: (K, d, d) 'full', (d, d) 'tied', (K, d) 'diag', (K,) 'spherical'.
    """

    means: np.ndarray
    beta: np.ndarray
    dof: object
    scale: np.ndarray


def _full_scale(scale, covariance_type, k, d):
    """hmmlearn's ``fill_covars``: the scale as (K, d, d) matrices."""
    scale = np.asarray(scale, dtype=np.float64)
    if covariance_type == "full":
        return scale
    if covariance_type == "diag":
        return np.array([np.diag(row) for row in scale])
    if covariance_type == "tied":
        return np.tile(scale, (k, 1, 1))
    return np.eye(d)[None, :, :] * np.ravel(scale)[:, None, None]


def _logdet(a):
    sign, value = np.linalg.slogdet(a)
    return np.where(sign > 0, value, np.nan)


def _wishart_e(dof, scale):
    return -_logdet(scale / 2) + digamma((dof - np.arange(scale.shape[0])) / 2).sum()


def _wishart_logz(dof, scale):
    d = scale.shape[0]
    return ((d * (d - 1) / 4) * np.log(np.pi) - dof / 2 * _logdet(scale / 2)
            + gammaln((dof - np.arange(d)) / 2).sum())


def kl_wishart(dof_q, scale_q, dof_p, scale_p):
    """``KL(Wishart(dof_q, scale_q) || Wishart(dof_p, scale_p))``, hmmlearn's formula."""
    d = scale_p.shape[0]
    return float((dof_q - dof_p) / 2 * _wishart_e(dof_q, scale_q) - d * dof_q / 2
                 + dof_q / 2 * np.trace(scale_p @ np.linalg.inv(scale_q))
                 + _wishart_logz(dof_p, scale_p) - _wishart_logz(dof_q, scale_q))


def kl_normal(mean_q, covar_q, mean_p, covar_p):
    """``KL(N(mean_q, covar_q) || N(mean_p, covar_p))``, hmmlearn's formula."""
    precision_p = np.linalg.inv(covar_p)
    diff = mean_q - mean_p
    return float(.5 * (_logdet(covar_p) - _logdet(covar_q) + np.trace(precision_p @ covar_q)
                       + diff @ precision_p @ diff - mean_q.shape[0]))


class _VariationalGaussianBaumWelch(_VariationalBaumWelch):
    """Variational Bayes EM of a Gaussian HMM: ``emission`` is a :class:`GaussianPosterior`.

    The emission statistics are hmmlearn's: ``post`` (K,), ``obs`` (K, d) and
    ``obs2`` (sum of gamma x x^T, (K, d, d), for 'full' and 'tied'; of gamma
    x**2, (K, d), for 'diag' and 'spherical'), all about zero, so chunks add.
    """

    def _log_emission(self, X, emission):
        """hmmlearn's ``_compute_subnorm_log_likelihood``: ``E_q[log N(x | mu_k, Lambda_k^-1)]``
        without ``-d/2 log(2 pi)`` (as hmmlearn)."""
        ct = self.hmm.covariance_type
        k, d = emission.means.shape
        dof = emission.dof
        term1 = digamma(.5 * (np.asarray(dof) - np.arange(0, d)[:, None])).sum(axis=0)
        scale = emission.scale
        if ct in ("diag", "spherical"):
            scale = _full_scale(scale, ct, k, d)
        W = np.linalg.inv(scale)
        term1 = (term1 + d * np.log(2) + _logdet(W)) / 2.
        term3 = d / emission.beta
        delta = X - emission.means[:, None]
        if ct == "tied":
            dots = np.einsum("cij,jk,cik,->ic", delta, W, delta, dof)
        else:
            dots = np.einsum("cij,cjk,cik,c->ic", delta, W, delta, dof)
        return term1 - .5 * (dots + term3)

    @staticmethod
    def _renormalised(params):
        """The stochastic startprob and transmat and their log row sums (no emission table)."""
        log_start = log_subnormalised(params.startprob)
        log_r0 = float(logsumexp(log_start))
        log_trans = log_subnormalised(params.transmat)
        log_r = logsumexp(log_trans, axis=1)
        return (np.exp(log_start - log_r0), np.exp(log_trans - log_r[:, None]), log_r0, log_r,
                None)

    def _statistics(self, X, bounds, params, workspace, chunk=None, first_sequence=0,
                    labels=None):
        startprob, transmat, log_r0, log_r, _ = self._renormalised(params)
        log_emission = self._log_emission(X, params.emission)
        last = bounds[1:] - 1
        log_emission += log_r
        log_emission[last] -= log_r
        if labels is not None:  # q(z) restricted to the paths through the known states
            mixture.mask_labelled(log_emission, labels)
        logprob, gamma, xi_sum = posteriors(log_emission, bounds, startprob, transmat, workspace)
        del log_emission
        n_seq = bounds.shape[0] - 1
        bad = np.flatnonzero(~np.isfinite(logprob))
        zero = (np.array([-1 if chunk is None else int(chunk), int(first_sequence) + int(bad[0])])
                if bad.size else np.array([-1, -1]))
        if self.hmm.covariance_type in ("full", "tied"):
            obs2 = np.einsum("ij,ik,il->jkl", gamma, X, X)
        else:
            obs2 = gamma.T @ X ** 2
        emission = SufficientStatistics(0.0, X.shape[0], post=gamma.sum(axis=0), obs=gamma.T @ X,
                                        obs2=obs2)
        return HMMStatistics(float(logprob.sum()) + n_seq * log_r0, X.shape[0],
                             start=gamma[bounds[:-1]].sum(axis=0), xi_sum=xi_sum,
                             emission=emission, zero=zero)

    def kl(self, params):
        """``KL(q || prior)``: the Dirichlet factors and hmmlearn's Normal and Wishart terms."""
        total = (kl_dirichlet(params.startprob, self.priors.startprob)
                 + kl_dirichlet(params.transmat, self.priors.transmat))
        ct = self.hmm.covariance_type
        q, p = params.emission, self.priors.emission
        k, d = q.means.shape
        scale_q = _full_scale(q.scale, ct, k, d)
        scale_p = _full_scale(p.scale, ct, k, d)
        W = np.linalg.inv(scale_q)
        dof = np.repeat(q.dof, k) if ct == "tied" else q.dof
        for i in range(k):
            precision = W[i] * dof[i]
            total += kl_normal(q.means[i], np.linalg.inv(q.beta[i] * precision),
                               p.means[i], np.linalg.inv(p.beta[i] * precision))
            if ct != "tied":
                total += kl_wishart(q.dof[i], scale_q[i], p.dof[i], scale_p[i])
        if ct == "tied":
            total += kl_wishart(q.dof, np.asarray(q.scale), p.dof, np.asarray(p.scale))
        return total

    def objective(self, stats, params):
        if not np.isfinite(stats.objective):
            chunk, seq = (int(v) for v in stats.zero)
            where = f"sequence {seq}" + (f" (in chunk {chunk})" if chunk >= 0 else "")
            raise FloatingPointError(
                f"{where} has no finite probability under the subnormalised parameters at "
                f"variational iteration {self.iteration + 1}: a scale posterior that is not "
                f"positive definite (hmmlearn's covariance update with 'c' but not 'm' in "
                f"params can produce one), or a Dirichlet concentration so small that "
                f"exp(E_q[log p]) underflows to 0.")
        value = super().objective(stats, params)
        if not np.isfinite(value):
            raise FloatingPointError(
                f"the lower bound is not finite at variational iteration {self.iteration}: a "
                f"scale posterior is not positive definite (or a dof posterior is too small).")
        return value

    def params_from_statistics(self, stats, params):
        startprob, transmat = params.startprob, params.transmat
        if "s" in self.learn:
            startprob = self.priors.startprob + stats.start
        if "t" in self.learn:
            transmat = self.priors.transmat + stats.xi_sum
        q, p = params.emission, self.priors.emission
        means, beta, dof, scale = q.means, q.beta, q.dof, q.scale
        es = stats.emission
        post, obs, obs2 = es.post, es.obs, es.obs2
        if "m" in self.learn:
            beta = p.beta + post
            means = np.einsum("i,ij->ij", p.beta, p.means) + obs
            means = means / beta[:, None]
        if "c" in self.learn:
            ct = self.hmm.covariance_type
            if ct == "full":
                dof = p.dof + post
                scale = (p.scale + obs2 + np.einsum("c,ci,cj->cij", p.beta, p.means, p.means)
                         - np.einsum("c,ci,cj->cij", beta, means, means))
            elif ct == "tied":
                dof = p.dof + post.sum()
                scale = (p.scale + obs2.sum(axis=0)
                         + np.einsum("c,ci,cj->ij", p.beta, p.means, p.means)
                         - np.einsum("c,ci,cj->ij", beta, means, means))
            elif ct == "diag":
                dof = p.dof + post
                scale = (p.scale + obs2 + np.einsum("c,ci,ci->ci", p.beta, p.means, p.means)
                         - np.einsum("c,ci,ci->ci", beta, means, means))
            else:
                dof = p.dof + post
                term2 = (obs2 + np.einsum("c,ci,ci->ci", p.beta, p.means, p.means)
                         - np.einsum("c,ci,ci->ci", beta, means, means))
                scale = p.scale + term2.mean(axis=1)
        return HMMParams(startprob, transmat, GaussianPosterior(means, beta, dof, scale))


_GAUSSIAN_NAMES = ("means", "beta", "dof", "scale")
_GAUSSIAN_LETTER = {"means": "m", "beta": "m", "dof": "c", "scale": "c"}


class VariationalGaussianHMM(GaussianHMM):
    """Hidden Markov model with Gaussian emissions, fitted by variational Bayes.

    hmmlearn 0.3.3's ``VariationalGaussianHMM``: Dirichlet priors and
    posteriors on ``startprob`` and on each row of ``transmat`` (as
    :class:`VariationalCategoricalHMM`), and a Normal-Wishart prior and
    posterior on each state's mean and precision: ``mu_k | Lambda_k ~ N(m_k,
    (beta_k Lambda_k)^-1)``, ``Lambda_k ~ Wishart(dof_k, scale_k^-1)``. For
    'diag' and 'spherical' the scale is a diagonal (or a multiple of the
    identity) inside the same Wishart formulas, and 'tied' shares one Wishart
    (a float ``dof``), all exactly as hmmlearn. Fit maximises the evidence
    lower bound by variational Bayes EM through :func:`~emlab.fit_em`, whose
    guard checks that it never falls.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {'full', 'diag', 'spherical', 'tied'}, default='full'
    startprob_prior, transmat_prior : float or array-like, optional
        Dirichlet concentrations; default ``1 / n_components``, as hmmlearn.
    means_prior : array-like of shape (n_components, n_features), optional
        Default: the data's mean for every state.
    beta_prior : array-like of shape (n_components,), optional
        Default 1.
    dof_prior : array-like of shape (n_components,) (a float for 'tied'), optional
        Default n_features.
    scale_prior : array-like, optional
        (K, d, d) 'full', (d, d) 'tied', (K, d) 'diag', (K,) 'spherical'; default
        ``1e-3`` times the identity (or ones).
    algorithm, random_state
        As :class:`~emlab.GaussianHMM`'s.
    max_iter : int, default=100
        hmmlearn's ``n_iter`` in its position; ``n_iter=`` is accepted as a keyword.
    tol : float, default=1e-6
        On the change of the ELBO **per observation**.
    verbose, params, init_params, implementation
        As hmmlearn's ('s', 't', 'm' for means and beta, 'c' for dof and scale).
    n_init : int, default=1
        Keyword-only: starts; the highest final ELBO is kept.
    on_decrease : {'warn', 'raise', 'ignore'}, default='warn'
        Keyword-only.

    Attributes
    ----------
    startprob_prior_, transmat_prior_, means_prior_, beta_prior_, dof_prior_, scale_prior_
    startprob_posterior_, transmat_posterior_, means_posterior_, beta_posterior_,
    dof_posterior_, scale_posterior_
    startprob_, transmat_, means_, covariances_ (``covars_`` as full matrices)
        The posterior means: ``means_posterior_`` and ``scale_posterior_ /
        dof_posterior_``, which :meth:`score`, :meth:`predict`, :meth:`decode`
        and ``sample`` use, as hmmlearn.
    lower_bounds_ : ndarray
        The ELBO per observation before each M-step; ``monitor_.history`` is
        the total (hmmlearn's, which leaves out ``-n d/2 log(2 pi)``).

    Notes
    -----
    The start (``init_params``) differs from hmmlearn's by its random numbers
    (emlab's k-means) and in that, to keep every concentration positive,
    ``beta_posterior_`` and ``dof_posterior_`` are the prior plus ``n /
    n_components`` (hmmlearn: the k-means cluster sizes, possibly 0);
    ``scale_posterior_`` is then the data's covariance (plus 1e-3 on the
    diagonal) times ``dof_posterior_``, as hmmlearn. In hmmlearn's update of
    the scale with 'c' but not 'm' in ``params`` the scale can stop being
    positive definite (hmmlearn then continues with NaN); emlab raises a
    FloatingPointError.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 4])
    >>> model = VariationalGaussianHMM(2, "full", random_state=0, on_decrease="raise").fit(X)
    >>> bool(np.all(np.diff(model.lower_bounds_) >= -1e-12))
    True
    """

    _estimator_type = "density_estimator"

    def __init__(self, n_components=1, covariance_type="full", startprob_prior=None,
                 transmat_prior=None, means_prior=None, beta_prior=None, dof_prior=None,
                 scale_prior=None, algorithm="viterbi", random_state=None,
                 max_iter=DEFAULT_MAX_ITER, tol=1e-6, verbose=0, params="stmc",
                 init_params="stmc", implementation="log", *, n_init=1, on_decrease="warn",
                 **aliases):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.beta_prior = beta_prior
        self.dof_prior = dof_prior
        self.scale_prior = scale_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.on_decrease = on_decrease
        self._take_aliases(aliases)

    def _check_settings(self):
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        return super(GaussianHMM, self)._check_settings()

    def _has_prior(self):
        return False

    def _moments_needed(self):
        return "full" if ("m" in self.init_params or "c" in self.init_params) else None

    # ----------------------------------------------------------------------- priors and start

    def _shapes(self, k, d):
        ct = self.covariance_type
        return {"means": (k, d), "beta": (k,), "dof": () if ct == "tied" else (k,),
                "scale": {"full": (k, d, d), "tied": (d, d), "diag": (k, d),
                          "spherical": (k,)}[ct]}

    def _check_gaussian(self, name, value, shape, positive):
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be finite numbers; got {value!r}.") from None
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape} for covariance_type="
                             f"{self.covariance_type!r}; got {arr.shape}.")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values.")
        matrix = name.startswith("scale") and self.covariance_type in ("full", "tied")
        if positive and not matrix and np.any(arr <= 0):
            raise ValueError(f"{name} must be > 0.")
        if matrix:
            for c in arr.reshape((-1, shape[-1], shape[-1])):
                if not np.allclose(c, c.T) or np.linalg.eigvalsh(c)[0] <= 0:
                    raise ValueError(f"{name} must be symmetric, positive-definite.")
        return float(arr) if shape == () else arr

    def _gaussian_priors(self, k, d, mean):
        shapes = self._shapes(k, d)
        ct = self.covariance_type
        defaults = {"means": None if mean is None else np.tile(mean, (k, 1)),
                    "beta": np.ones(k), "dof": float(d) if ct == "tied" else np.full(k, float(d)),
                    "scale": {"full": np.broadcast_to(np.eye(d) * 1e-3, (k, d, d)),
                              "tied": np.eye(d) * 1e-3, "diag": np.full((k, d), 1e-3),
                              "spherical": np.full(k, 1e-3)}[ct]}
        out = {}
        for name in _GAUSSIAN_NAMES:
            attr = name + "_prior_"
            if _GAUSSIAN_LETTER[name] not in self.init_params and hasattr(self, attr):
                value = getattr(self, attr)
            else:
                value = getattr(self, name + "_prior")
                if value is None:
                    value = defaults[name]
                if value is None:  # the data's mean is needed but was not computed
                    raise ValueError("means_prior is not set.")
                value = np.broadcast_to(np.asarray(value, dtype=np.float64), shapes[name]) \
                    if name in ("beta",) else value
            out[name] = self._check_gaussian(attr, value, shapes[name], name != "means")
        return GaussianPosterior(**out)

    def _initial_posteriors(self, priors, n, n_sequences, rng, restart):
        k = self.n_components
        start = {}
        for letter, name, prior, shape in (("s", "startprob_posterior_", priors.startprob, (k,)),
                                           ("t", "transmat_posterior_", priors.transmat, (k, k))):
            if letter in self.init_params:
                if letter == "s":
                    draw = rng.dirichlet(np.full(k, 1.0 / k)) * n_sequences
                else:
                    draw = rng.dirichlet(np.full(k, 1.0 / k), size=k) * (n / k)
                start[letter] = prior + draw
            else:
                if not hasattr(self, name):
                    raise ValueError(f"{name} is not set: set it before fit, or keep {letter!r} "
                                     f"in init_params (init_params={self.init_params!r}).")
                value = np.asarray(getattr(self, name), dtype=np.float64)
                if value.shape != shape:
                    raise ValueError(f"{name} must have shape {shape}; got {value.shape}.")
                start[letter] = check_concentration(value, name, shape)
        p = priors.emission
        d = p.means.shape[1]
        shapes = self._shapes(k, d)
        out = {}
        data = self._init_data
        for name in _GAUSSIAN_NAMES:
            attr = name + "_posterior_"
            letter = _GAUSSIAN_LETTER[name]
            if letter in self.init_params:
                continue
            if not hasattr(self, attr):
                raise ValueError(f"{attr} is not set: set it before fit, or keep {letter!r} in "
                                 f"init_params (init_params={self.init_params!r}).")
            out[name] = self._check_gaussian(attr, getattr(self, attr), shapes[name],
                                             name != "means")
        if "m" in self.init_params:
            if isinstance(data, ChunkedData):
                size = max(mixture.INIT_SAMPLE_MIN, mixture.INIT_SAMPLE_ROWS * k)
                centers = kmeans_plusplus(data.sample_rows(size, rng), k, rng)[0]
                out["means"] = lloyd_chunked(_RowsOnly(data), centers, max_iter=300,
                                             tol=1e-4)[0]
            else:
                km = KMeans(n_clusters=k, n_init=1, random_state=rng).fit(data.X)
                # with known states, number the clusters as the states they hold most of
                mapping = mixture.label_permutation(km.labels_,
                                                    getattr(self, "_fit_labels", None), k)
                out["means"] = np.empty_like(km.cluster_centers_)
                out["means"][mapping] = km.cluster_centers_
            out["beta"] = p.beta + n / k
        if "c" in self.init_params:
            dof = p.dof + (n if self.covariance_type == "tied" else n / k)
            cv = self._data_cov + 1e-3 * np.eye(d)
            ct = self.covariance_type
            if ct == "full":
                scale = np.broadcast_to(cv, (k, d, d)) * dof[:, None, None]
            elif ct == "tied":
                scale = cv * dof
            elif ct == "diag":
                scale = np.tile(np.diag(cv), (k, 1)) * dof[:, None]
            else:
                scale = np.full(k, np.mean(np.diag(cv))) * dof
            out["dof"], out["scale"] = dof, np.array(scale)
        return HMMParams(start["s"], start["t"], GaussianPosterior(**out))

    # ----------------------------------------------------------------------- fitting

    def fit(self, X, lengths=None, *, labels=None):
        """Fit the posteriors by variational Bayes EM. Returns self.

        X : array-like (n_samples, n_features), a dask array, or a list of arrays;
        lengths : the length of each sequence (default one sequence);
        labels : known states (-1: unknown), X in memory only, as :meth:`emlab.GaussianHMM.fit`.
        """
        k = self._check_settings()
        data = self._fit_data(X, lengths)
        n, d = _data_shape(data if isinstance(data, ChunkedData) else data.X)
        if k > n:
            raise ValueError(f"n_components={k} must be <= n_samples={n}.")
        summary = self._summary(data)
        mean = None
        if summary is not None:
            mean = np.asarray(summary.moments.means[0], dtype=np.float64)
            self._data_cov = (np.asarray(summary.moments.second[0]) / (n - 1) if n > 1
                              else np.zeros((d, d)))
        self._init_data = data
        ct = self.covariance_type
        dirichlet = VariationalCategoricalHMM._priors(
            _DirichletOnly(self, k), k, 1)
        priors = HMMParams(dirichlet.startprob, dirichlet.transmat,
                           self._gaussian_priors(k, d, mean))
        labels = self._fit_labels = self._fit_labels_checked(data, labels, k)
        model = _VariationalGaussianBaumWelch(self, priors, _n_sequences(data), labels)
        verbose = self._verbosity()
        try:
            result = fit_em(model, data, n_init=self.n_init, max_iter=self.max_iter,
                            tol=self.tol, random_state=check_random_state(self.random_state),
                            on_decrease=self.on_decrease, verbose=verbose)
        finally:
            self.__dict__.pop("_data_cov", None)
            self.__dict__.pop("_init_data", None)
            self.__dict__.pop("_fit_labels", None)
        post = result.params
        q, p = post.emission, priors.emission
        self.startprob_prior_ = priors.startprob
        self.transmat_prior_ = priors.transmat
        for name in _GAUSSIAN_NAMES:
            setattr(self, name + "_prior_", getattr(p, name))
            setattr(self, name + "_posterior_", getattr(q, name))
        self.startprob_posterior_ = post.startprob
        self.transmat_posterior_ = post.transmat
        self.startprob_ = post.startprob / post.startprob.sum()
        self.transmat_ = post.transmat / post.transmat.sum(axis=1, keepdims=True)
        dof = np.asarray(q.dof)
        cov = {"full": lambda: q.scale / dof[:, None, None], "tied": lambda: q.scale / dof,
               "diag": lambda: q.scale / dof[:, None], "spherical": lambda: q.scale / dof}[ct]()
        self._set_emission(self._emission(q.means, cov))
        self.lower_bounds_ = result.lower_bounds
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.n_features_in_ = d
        self.monitor_ = ConvergenceMonitor(self.tol, self.max_iter, verbose >= 2,
                                           history=np.asarray(result.lower_bounds) * n,
                                           iter=result.n_iter, converged=result.converged)
        return self

    def _n_emission_parameters(self):
        k, d = np.shape(self.means_)
        per = {"full": k + k * d * (d + 1) // 2, "tied": 1 + d * (d + 1) // 2,
               "diag": k + k * d, "spherical": 2 * k}[self.covariance_type]
        return (k * d + k if "m" in self.params else 0) + (per if "c" in self.params else 0)


class _DirichletOnly:
    """The Dirichlet-prior view of a :class:`VariationalGaussianHMM` for
    :meth:`VariationalCategoricalHMM._priors` (which also wants an emission prior)."""

    def __init__(self, hmm, k):
        self.startprob_prior = hmm.startprob_prior
        self.transmat_prior = hmm.transmat_prior
        self.emissionprob_prior = 1.0
        self.init_params = "e" + "".join(c for c in "st" if c in hmm.init_params)
        for name in ("startprob_prior_", "transmat_prior_"):
            if hasattr(hmm, name):
                setattr(self, name, getattr(hmm, name))
