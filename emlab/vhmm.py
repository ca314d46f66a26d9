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

import numpy as np
from scipy.special import digamma, gammaln, logsumexp

from ._validation import check_int, check_random_state
from .em import ChunkedData, fit_em
from .exceptions import NotFittedError
from .hmm import (
    DEFAULT_MAX_ITER,
    CategoricalHMM,
    ConvergenceMonitor,
    HMMParams,
    HMMStatistics,
    Sequences,
    Workspace,
    _data_shape,
    check_lengths,
    posteriors,
)

__all__ = ["VariationalCategoricalHMM", "kl_dirichlet"]


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

    def __init__(self, hmm, priors, n_sequences):
        self.hmm = hmm
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

    def _statistics(self, X, bounds, params, workspace, chunk=None, first_sequence=0):
        startprob, transmat, log_r0, log_r, table = self._renormalised(params)
        symbols = X[:, 0].astype(np.intp)
        log_emission = table[symbols] + log_r  # log r_i on every row ...
        last = bounds[1:] - 1
        log_emission[last] = table[symbols[last]]  # ... but the last of each sequence
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
        stats = self._statistics(data.X, data.bounds, params, self.workspace)
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

    def fit(self, X, lengths=None):
        """Fit the Dirichlet posteriors by variational Bayes EM. Returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1), dask.array.Array, or list of arrays
            Integer symbols, all sequences one after the other (or one array
            per sequence), as :meth:`emlab.CategoricalHMM.fit`.
        lengths : array-like of int, optional
            The length of each sequence (summing to n_samples); default one
            sequence.
        """
        k = self._check_settings()
        data = self._fit_data(X, lengths)
        n, d = _data_shape(data if isinstance(data, ChunkedData) else data.X)
        if k > n:
            raise ValueError(f"n_components={k} must be <= n_samples={n}.")
        self._summary(data)  # chunked data: checks the symbols and sets _fit_symbols
        m = self._fit_symbols
        priors = self._priors(k, m)
        model = _VariationalBaumWelch(self, priors, _n_sequences(data))
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
