"""Hidden Markov models fitted by Baum-Welch, which is EM run through :func:`~emlab.fit_em`.

The three estimators share one base, :class:`BaseHMM`, whose Baum-Welch loop is
the generic EM driver with its monotonicity guard. The base never branches on
the emission model: each subclass supplies the log-emissions, the emission
M-step, its initialisation, sampling, parameter count and input checks.

* E-step: the emission log-probabilities (n, K), then one forward-backward pass
  over all sequences (:func:`emlab._kernels.hmm.forward_backward`, scaled
  probabilities with a log-space fallback, parallel over sequences) giving the
  log-likelihood, the state posteriors ``gamma`` and the expected transition
  counts summed over time.
* M-step: ``startprob`` and every row of ``transmat`` are the maximisers of
  ``sum_j (count_j + prior_j - 1) log p_j`` on their support (Lagrange
  multipliers; the book's chapter "Baum-Welch is EM"); the emission parameters
  are a weighted maximum-likelihood fit with weights ``gamma``: for Gaussian
  emissions exactly the M-step of a Gaussian mixture
  (``emlab.mixture.m_step``).

The objective EM monitors is the log-likelihood plus the log-density of the
Dirichlet (and, for :class:`PoissonHMM`, gamma) priors without their
normalising constants, per observation: with priors of 1 (the defaults) it is
the log-likelihood, as hmmlearn's ``monitor_.history`` (which is the total).
"""

import numbers
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, xlogy

from . import _config, mixture
from ._base import ParamsMixin
from ._covariance import MODELS
from ._kernels.hmm import forward_backward, sample_states, scratch_size, viterbi
from ._validation import (
    check_array,
    check_int,
    check_option,
    check_random_state,
    check_scalar,
)
from .em import check_em_options, fit_em
from .exceptions import DegenerateCovarianceError, NotFittedError

ALGORITHMS = ("viterbi", "map")
COVARIANCE_TYPES = tuple(MODELS)


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class HMMParams:
    """Parameters of a hidden Markov model.

    ``emission`` is whatever the emission model uses (a
    :class:`~emlab.MixtureParams` for Gaussian emissions, an array otherwise);
    the Baum-Welch loop never looks inside it.
    """

    startprob: np.ndarray
    transmat: np.ndarray
    emission: object


@dataclass(frozen=True)
class Sequences:
    """Observations of many sequences: X (n, d) and ``bounds`` (n_seq + 1,) row offsets."""

    X: np.ndarray
    bounds: np.ndarray

    @property
    def n_sequences(self):
        return self.bounds.shape[0] - 1


def check_lengths(lengths, n_samples):
    """Row offsets (n_seq + 1,) from ``lengths``, or a ValueError naming ``lengths``."""
    if lengths is None:
        return np.array([0, n_samples], dtype=np.int64)
    arr = np.asarray(lengths)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"lengths must be a 1-d sequence of positive integers; got shape {arr.shape}.")
    if not (np.issubdtype(arr.dtype, np.integer)
            or (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr))
                and np.all(arr == np.round(arr)))):
        raise ValueError(f"lengths must hold integers; got {arr!r}.")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero(arr <= 0)
    if bad.size:
        raise ValueError(f"lengths must be positive: lengths[{bad[0]}] = {arr[bad[0]]}; every "
                         f"sequence needs at least one row.")
    total = int(arr.sum())
    if total != n_samples:
        raise ValueError(f"lengths sum to {total}, but X has {n_samples} rows; they must be equal.")
    return np.concatenate([[0], np.cumsum(arr)]).astype(np.int64)


def check_probabilities(p, name, shape):
    """A float64 array of ``shape`` whose last axis is a probability vector, or a ValueError."""
    try:
        arr = np.array(p, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of probabilities; got {p!r}.") from None
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}.")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must hold finite non-negative probabilities.")
    sums = arr.sum(axis=-1)
    off = np.flatnonzero(np.abs(np.atleast_1d(sums) - 1.0) > 1e-8)
    if off.size:
        if arr.ndim == 1:
            raise ValueError(f"{name} must sum to 1; it sums to {float(sums):.12g}.")
        raise ValueError(f"every row of {name} must sum to 1; row {off[0]} sums to "
                         f"{np.atleast_1d(sums)[off[0]]:.12g}.")
    return arr / arr.sum(axis=-1, keepdims=True)


def check_prior(prior, name, shape):
    """Dirichlet concentrations >= 1 broadcast to ``shape``, or a ValueError naming ``name``."""
    arr = np.asarray(prior, dtype=np.float64) if not isinstance(prior, (bool, np.bool_)) else None
    if arr is None or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite numbers >= 1; got {prior!r}.")
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(f"{name} must be a scalar or broadcast to shape {shape}; got shape "
                         f"{np.shape(prior)}.") from None
    if np.any(arr < 1):
        raise ValueError(
            f"{name} must be >= 1 (a Dirichlet concentration below 1 has no maximum a "
            f"posteriori estimate: its density is unbounded at the boundary); got {prior!r}."
        )
    return arr


def check_letters(value, name, allowed):
    if not isinstance(value, str) or any(c not in allowed for c in value):
        raise ValueError(f"{name} must be a string of the letters {allowed!r}; got {value!r}.")
    return value


def dirichlet_map(counts, prior, previous):
    """The M-step of a probability vector (or of each row of a matrix).

    Maximises ``sum_j (counts_j + prior_j - 1) log p_j`` over the support of
    ``previous`` (its zeros stay zero): ``p_j`` proportional to ``counts_j +
    prior_j - 1`` there. A row whose weights are all zero (a state that
    received no posterior mass, with no pseudo-counts) keeps ``previous``:
    every probability vector maximises its term.
    """
    weights = np.where(previous > 0, np.maximum(counts + prior - 1.0, 0.0), 0.0)
    total = weights.sum(axis=-1, keepdims=True)
    safe = np.where(total > 0, total, 1.0)
    return np.where(total > 0, weights / safe, previous)


def log_dirichlet(p, prior):
    """``sum_j (prior_j - 1) log p_j`` over the support of ``p`` (the log-density up to a constant)."""
    with np.errstate(divide="ignore"):
        return float(np.sum(np.where(p > 0, (prior - 1.0) * np.log(np.where(p > 0, p, 1.0)), 0.0)))


class Workspace:
    """Arrays :func:`posteriors` reuses from one Baum-Welch iteration to the next.

    A fresh (n, K) array costs page faults on first touch (tens of milliseconds
    per iteration at n = 1e6); reusing them keeps an iteration's memory traffic
    to the data themselves.
    """

    def __init__(self):
        self.gamma = None
        self.scratch = None

    def arrays(self, n, k):
        if self.gamma is None or self.gamma.shape != (n, k):
            self.gamma = np.empty((n, k))
            self.scratch = np.zeros(scratch_size(n, k))
        return self.gamma, self.scratch


def posteriors(log_emission, bounds, startprob, transmat, workspace=None):
    """Forward-backward over all sequences.

    Returns ``(logprob, gamma, xi_sum)``: the log-likelihood of each sequence
    (n_seq,), the state posteriors (n, K) and the expected transition counts
    summed over time and sequences (K, K). With a :class:`Workspace`, ``gamma``
    is its array, overwritten by the next call.
    """
    n, k = log_emission.shape
    gamma, scratch = (workspace or Workspace()).arrays(n, k)
    xi_sum = np.empty((k, k))
    logprob = np.empty(bounds.shape[0] - 1)
    with _config.threads_for(n * k * k):
        forward_backward(np.ascontiguousarray(log_emission), bounds,
                         np.ascontiguousarray(startprob, dtype=np.float64),
                         np.ascontiguousarray(transmat, dtype=np.float64), scratch, gamma, xi_sum,
                         logprob)
    return logprob, gamma, xi_sum


def viterbi_paths(log_emission, bounds, startprob, transmat):
    """The most probable state path of every sequence and the sum of their log joint probabilities."""
    n, k = log_emission.shape
    states = np.empty(n, dtype=np.int64)
    logprob = np.empty(bounds.shape[0] - 1)
    with np.errstate(divide="ignore"):
        log_start = np.log(startprob)
        log_trans = np.ascontiguousarray(np.log(transmat))
    with _config.threads_for(n * k * k):
        viterbi(np.ascontiguousarray(log_emission), bounds, log_start, log_trans, states, logprob)
    return float(logprob.sum()), states


# --------------------------------------------------------------------------- the EM model


class _BaumWelch:
    """The :class:`~emlab.em.EMModel` of an HMM: Baum-Welch as EM.

    ``X`` (what the driver passes along) is a :class:`Sequences`. The
    posteriors live in a :class:`Workspace` that every E-step overwrites (the
    M-step has used them by then), so no second (n, K) array is ever alive.
    """

    def __init__(self, hmm, data):
        self.hmm = hmm
        self.n_samples = data.X.shape[0]
        k = hmm.n_components
        self.startprob_prior = check_prior(hmm.startprob_prior, "startprob_prior", (k,))
        self.transmat_prior = check_prior(hmm.transmat_prior, "transmat_prior", (k, k))
        self.learn = hmm.params
        self.starts = 0
        self.iteration = 0
        self.m_step_slack = 0.0
        self.workspace = Workspace()

    def init_params(self, data, rng):
        restart = self.starts
        self.starts += 1
        self.iteration = 0
        return self.hmm._initial_params(data.X, rng, restart)

    def log_prior(self, params):
        return (log_dirichlet(params.startprob, self.startprob_prior)
                + log_dirichlet(params.transmat, self.transmat_prior)
                + self.hmm._log_emission_prior(params.emission))

    def e_step(self, data, params):
        self.iteration += 1
        log_emission = self.hmm._log_emission(data.X, params.emission)
        logprob, gamma, xi_sum = posteriors(log_emission, data.bounds, params.startprob,
                                            params.transmat, self.workspace)
        del log_emission
        total = float(logprob.sum())
        if not np.isfinite(total):
            bad = int(np.flatnonzero(~np.isfinite(logprob))[0])
            raise FloatingPointError(
                f"sequence {bad} has zero probability under the model at Baum-Welch iteration "
                f"{self.iteration}: no state path can produce it (a zero in startprob_, "
                f"transmat_ or the emission probabilities rules every path out)."
            )
        start_counts = gamma[data.bounds[:-1]].sum(axis=0)
        objective = (total + self.log_prior(params)) / self.n_samples
        return objective, {"gamma": gamma, "xi_sum": xi_sum, "start": start_counts}

    def m_step(self, data, stats, params):
        gamma = stats.pop("gamma")  # the workspace's array: the next E-step overwrites it
        startprob, transmat = params.startprob, params.transmat
        if "s" in self.learn:
            startprob = dirichlet_map(stats["start"], self.startprob_prior, startprob)
        if "t" in self.learn:
            transmat = dirichlet_map(stats["xi_sum"], self.transmat_prior, transmat)
        try:
            emission, deficit = self.hmm._emission_m_step(data.X, gamma, params.emission)
        except DegenerateCovarianceError as exc:
            raise DegenerateCovarianceError(f"{exc} (Baum-Welch iteration {self.iteration})") from None
        # the driver allows the next objective to fall by this much (see EMModel)
        self.m_step_slack = deficit / self.n_samples
        return HMMParams(startprob, transmat, emission)


# --------------------------------------------------------------------------- the base estimator


class BaseHMM(ParamsMixin):
    """What every HMM here shares: Baum-Welch through the EM driver, scoring, decoding, sampling.

    Subclasses define the emission model through ``_emission_letters``,
    ``_emission_attributes``, ``_check_X``, ``_init_emission``,
    ``_emission_from_attributes``, ``_set_emission``, ``_log_emission``,
    ``_emission_m_step``, ``_log_emission_prior``, ``_n_emission_parameters``
    and ``_sample_emission``. Nothing here depends on which model it is.
    """

    _estimator_type = "density_estimator"
    _emission_letters = ""
    _emission_attributes = ()

    # ----------------------------------------------------------------------- checks

    def _check_settings(self):
        k = check_int(self.n_components, "n_components", low=1)
        check_em_options(self.max_iter, self.tol, self.on_decrease)
        check_int(self.n_init, "n_init", low=1)
        check_int(self.verbose, "verbose", low=0)
        check_option(self.algorithm, "algorithm", ALGORITHMS)
        allowed = "st" + self._emission_letters
        check_letters(self.params, "params", allowed)
        check_letters(self.init_params, "init_params", allowed)
        return k

    def _check_startprob(self):
        k = self.n_components
        if not hasattr(self, "startprob_"):
            raise NotFittedError(f"startprob_ is not set: fit the {type(self).__name__}, or set "
                                 f"startprob_ before using it.")
        return check_probabilities(self.startprob_, "startprob_", (k,))

    def _check_transmat(self):
        k = self.n_components
        if not hasattr(self, "transmat_"):
            raise NotFittedError(f"transmat_ is not set: fit the {type(self).__name__}, or set "
                                 f"transmat_ before using it.")
        return check_probabilities(self.transmat_, "transmat_", (k, k))

    def _given(self, name, letter):
        """The attribute the user set before fit in place of initialising ``letter``."""
        if not hasattr(self, name):
            raise ValueError(f"{name} is not set: set it before fit, or keep {letter!r} in "
                             f"init_params (init_params={self.init_params!r}).")
        return getattr(self, name)

    def _current_params(self):
        """The model's parameters from its attributes (fitted or set by the user), checked."""
        check_int(self.n_components, "n_components", low=1)
        missing = [a for a in ("startprob_", "transmat_") + self._emission_attributes
                   if not hasattr(self, a)]
        if missing:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet ({', '.join(missing)} not set); "
                f"call fit(X) first, or set the parameters."
            )
        return HMMParams(self._check_startprob(), self._check_transmat(),
                         self._emission_from_attributes())

    def _sequences(self, X, lengths, fitting=False):
        X = self._check_X(X, fitting)
        return Sequences(X, check_lengths(lengths, X.shape[0]))

    # ----------------------------------------------------------------------- initialisation

    def _initial_params(self, X, rng, restart):
        """Starting parameters: for each letter in ``init_params`` a fresh value, otherwise the
        attribute the user set. ``restart`` > 0 draws startprob and transmat from a flat
        Dirichlet instead of the uniform start."""
        k = self.n_components
        if "s" in self.init_params:
            startprob = np.full(k, 1.0 / k) if restart == 0 else rng.dirichlet(np.ones(k))
        else:
            self._given("startprob_", "s")
            startprob = self._check_startprob()
        if "t" in self.init_params:
            transmat = (np.full((k, k), 1.0 / k) if restart == 0
                        else rng.dirichlet(np.ones(k), size=k))
        else:
            self._given("transmat_", "t")
            transmat = self._check_transmat()
        return HMMParams(startprob, transmat, self._init_emission(X, rng))

    # ----------------------------------------------------------------------- fitting

    def fit(self, X, lengths=None):
        """Estimate the parameters by Baum-Welch (EM) from ``n_init`` starts. Returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            All sequences, one after the other.
        lengths : array-like of int, optional
            The length of each sequence (summing to n_samples); default one sequence.
        """
        k = self._check_settings()
        data = self._sequences(X, lengths, fitting=True)
        n = data.X.shape[0]
        if k > n:
            raise ValueError(f"n_components={k} must be <= n_samples={n}.")
        model = _BaumWelch(self, data)
        result = fit_em(model, data, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                        random_state=check_random_state(self.random_state),
                        on_decrease=self.on_decrease, verbose=self.verbose)
        params = result.params
        self.startprob_ = params.startprob
        self.transmat_ = params.transmat
        self._set_emission(params.emission)
        self.lower_bounds_ = result.lower_bounds
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.n_features_in_ = data.X.shape[1]
        return self

    def fit_predict(self, X, lengths=None):
        """Fit, then decode X with the fitted model (``fit(X, lengths).predict(X, lengths)``)."""
        return self.fit(X, lengths).predict(X, lengths)

    # ----------------------------------------------------------------------- inference

    def _posteriors(self, X, lengths):
        params = self._current_params()
        data = self._sequences(X, lengths)
        log_emission = self._log_emission(data.X, params.emission)
        logprob, gamma, _ = posteriors(log_emission, data.bounds, params.startprob, params.transmat)
        return float(logprob.sum()), gamma

    def score_samples(self, X, lengths=None):
        """Log-likelihood of X and the state posteriors.

        Returns
        -------
        logprob : float
            ``log p(X)``, summed over the sequences.
        posteriors : ndarray of shape (n_samples, n_components)
            ``p(z_t = k | x of its sequence)``; each row sums to 1.
        """
        return self._posteriors(X, lengths)

    def score(self, X, lengths=None):
        """Total log-likelihood ``log p(X)`` over the sequences (hmmlearn's convention, not a mean)."""
        return self._posteriors(X, lengths)[0]

    def predict_proba(self, X, lengths=None):
        """State posteriors ``p(z_t = k | x)``, shape (n_samples, n_components)."""
        return self._posteriors(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm=None):
        """The most likely states.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int, optional
        algorithm : {'viterbi', 'map'}, optional
            Default ``self.algorithm``. 'viterbi': the most probable path
            (log space); 'map': the most probable state at each step
            (the argmax of the posteriors; the path may be impossible).

        Returns
        -------
        logprob : float
            'viterbi': ``log p(X, path)`` summed over sequences. 'map': the sum
            over steps of the log posterior of the chosen state (hmmlearn
            returns the sum of the posteriors themselves).
        states : ndarray of shape (n_samples,)
        """
        algorithm = self.algorithm if algorithm is None else algorithm
        check_option(algorithm, "algorithm", ALGORITHMS)
        if algorithm == "map":
            _, gamma = self._posteriors(X, lengths)
            states = gamma.argmax(axis=1)
            with np.errstate(divide="ignore"):
                return float(np.log(gamma[np.arange(gamma.shape[0]), states]).sum()), states
        params = self._current_params()
        data = self._sequences(X, lengths)
        log_emission = self._log_emission(data.X, params.emission)
        return viterbi_paths(log_emission, data.bounds, params.startprob, params.transmat)

    def predict(self, X, lengths=None):
        """The most likely states (by ``self.algorithm``), shape (n_samples,)."""
        return self.decode(X, lengths)[1]

    # ----------------------------------------------------------------------- sampling

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Draw one sequence from the model.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : None, int or numpy.random.Generator
            Default ``self.random_state``.
        currstate : int, optional
            The state of the first sample (default drawn from ``startprob_``).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        states : ndarray of shape (n_samples,)
        """
        params = self._current_params()
        n_samples = check_int(n_samples, "n_samples", low=1)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        k = self.n_components
        if currstate is None:
            first = params.startprob
        else:
            first = np.zeros(k)
            first[check_int(currstate, "currstate", low=0, high=k - 1)] = 1.0
        cum_start = np.cumsum(first)
        cum_start /= cum_start[-1]
        cum_trans = np.cumsum(params.transmat, axis=1)
        cum_trans /= cum_trans[:, -1:]
        states = np.empty(n_samples, dtype=np.int64)
        sample_states(cum_start, np.ascontiguousarray(cum_trans), rng.random(n_samples), states)
        return self._sample_emission(params.emission, states, rng), states

    # ----------------------------------------------------------------------- model selection

    def _n_parameters(self):
        """Free parameters that ``fit`` learns (the letters in ``params``), as hmmlearn."""
        k = self.n_components
        n = 0
        if "s" in self.params:
            n += k - 1
        if "t" in self.params:
            n += k * (k - 1)
        return n + self._n_emission_parameters()

    def bic(self, X, lengths=None):
        """Bayesian information criterion ``-2 log p(X) + p log n``: lower is better."""
        data_n = self._sequences(X, lengths).X.shape[0]
        return -2.0 * self.score(X, lengths) + self._n_parameters() * np.log(data_n)

    def aic(self, X, lengths=None):
        """Akaike information criterion ``-2 log p(X) + 2 p``: lower is better."""
        return -2.0 * self.score(X, lengths) + 2.0 * self._n_parameters()


_COMMON_DOC = """
    startprob_prior, transmat_prior : float or array-like, default=1.0
        Dirichlet concentrations (>= 1) of the starting probabilities and of
        each row of the transition matrix: ``prior - 1`` pseudo-counts are
        added to the expected counts (hmmlearn's convention). With priors above
        1 fit maximises the posterior and ``lower_bounds_`` records the
        log-posterior (without the prior's normalising constant).
    algorithm : {'viterbi', 'map'}, default='viterbi'
        The decoder of :meth:`predict` and :meth:`decode`.
    max_iter : int, default=100
        Baum-Welch iterations at most (hmmlearn's ``n_iter``).
    tol : float, default=1e-3
        Convergence threshold on the change of the objective **per
        observation** (total log-likelihood / n_samples), as
        :class:`~emlab.GaussianMixture`; hmmlearn's is on the total.
    n_init : int, default=1
        Number of starts; the one with the highest final objective is kept.
        The first starts from uniform ``startprob_`` and ``transmat_``, later
        ones from random (flat Dirichlet) ones, when those are in ``init_params``.
    random_state : None, int or numpy.random.Generator
        Seeds the initialisation and :meth:`sample`.
    on_decrease : {'warn', 'raise', 'ignore'}, default='warn'
        What to do if the objective falls between two iterations by more than
        round-off (and, for Gaussian emissions, more than ``reg_covar`` can
        explain), which exact EM cannot do.
    verbose : int, default=0
        0: silent; 1: a line per run; 2: also a line per iteration.
"""

_COMMON_ATTRIBUTES = """
    startprob_ : ndarray of shape (n_components,)
    transmat_ : ndarray of shape (n_components, n_components)
    lower_bounds_ : ndarray, one entry per iteration
        The objective per observation (log-likelihood, plus the log-prior if
        any, divided by n_samples) of the parameters after t M-steps (entry 0:
        the start). ``lower_bounds_ * n_samples`` is hmmlearn's
        ``monitor_.history``.
    converged_ : bool
    n_iter_ : int
    n_features_in_ : int
"""

_COMMON_NOTES = """
    A zero in the starting ``startprob_`` or ``transmat_`` (set by the user,
    with 's' or 't' left out of ``init_params``) stays zero: Baum-Welch
    cannot create probability where there was none, and the M-step keeps
    every Dirichlet parameter on its support. So a left-right model, or any
    sparsity pattern of allowed transitions, is fitted by starting from a
    transition matrix with zeros where transitions are forbidden. A state that
    receives no posterior mass keeps its previous transition row and emission
    parameters (any value maximises the M-step's objective for it), so no row
    ever becomes NaN or all zero.

    The E-step is one forward-backward pass on scaled probabilities (Numba,
    in parallel over sequences; a step whose scale would underflow is redone in
    log space), which keeps only O(n_samples * n_components) memory: the
    expected transition counts are summed as they are computed. Results do not
    depend on the number of threads. The book's chapter "Baum-Welch is EM"
    derives the updates and checks that the likelihood never falls.
"""


def _doc(text):
    return (text.replace("%(common)s", _COMMON_DOC).replace("%(attributes)s", _COMMON_ATTRIBUTES)
            .replace("%(notes)s", _COMMON_NOTES))


# --------------------------------------------------------------------------- Gaussian emissions


class GaussianHMM(BaseHMM):
    __doc__ = _doc("""Hidden Markov model with Gaussian emissions.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='diag'
        As in :class:`~emlab.GaussianMixture`: a covariance matrix per state,
        one shared by all, a diagonal per state, or one variance per state.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance. The M-step then falls short
        of maximising Q by an amount it computes exactly, and the monotonicity
        check allows that much. hmmlearn instead adds ``covars_prior=1e-2``
        (a prior) by default.
    %(common)s
    params : str, default='stmc'
        The parameters fit updates: 's' ``startprob_``, 't' ``transmat_``, 'm' ``means_``,
        'c' ``covariances_``. The others stay exactly as they start.
    init_params : str, default='stmc'
        The parameters fit initialises: uniform ``startprob_`` and ``transmat_``,
        k-means (:class:`~emlab.KMeans`) centres for ``means_`` and the data's
        covariance plus ``reg_covar`` for every state's ``covariances_``. A letter
        left out means the attribute set before fit is the start.

    Attributes
    ----------
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (K, d, d) 'full', (d, d) 'tied', (K, d) 'diag', (K,) 'spherical'.
    precisions_cholesky_ : ndarray, shaped as ``covariances_``
        As scikit-learn's ``GaussianMixture``.
    %(attributes)s

    Notes
    -----
    The emission M-step is a Gaussian mixture's M-step
    (``emlab.mixture.m_step``) with the state posteriors as
    responsibilities: weighted means and centred scatter matrices.
    %(notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from emlab import GaussianHMM
    >>> truth = GaussianHMM(2, covariance_type="full", init_params="")
    >>> truth.startprob_ = np.array([0.5, 0.5])
    >>> truth.transmat_ = np.array([[0.95, 0.05], [0.1, 0.9]])
    >>> truth.means_ = np.array([[0.0, 0.0], [3.0, 3.0]])
    >>> truth.covariances_ = np.array([np.eye(2), np.eye(2)])
    >>> X, states = truth.sample(2000, random_state=0)
    >>> model = GaussianHMM(2, covariance_type="full", random_state=0).fit(X)
    >>> bool(np.all(np.diff(model.lower_bounds_) >= -1e-10))
    True
    """)

    _emission_letters = "mc"
    _emission_attributes = ("means_", "covariances_")

    def __init__(self, n_components=1, *, covariance_type="diag", reg_covar=1e-6,
                 startprob_prior=1.0, transmat_prior=1.0, algorithm="viterbi", max_iter=100,
                 tol=1e-3, n_init=1, params="stmc", init_params="stmc", random_state=None,
                 on_decrease="warn", verbose=0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.algorithm = algorithm
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.params = params
        self.init_params = init_params
        self.random_state = random_state
        self.on_decrease = on_decrease
        self.verbose = verbose

    def _check_settings(self):
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_scalar(self.reg_covar, "reg_covar", low=0.0)
        return super()._check_settings()

    def _check_X(self, X, fitting):
        n_features = None if fitting else self._n_features()
        return check_array(X, n_features=n_features)

    def _n_features(self):
        return np.shape(self.means_)[1] if hasattr(self, "means_") else None

    def _emission(self, means, covariances):
        k = self.n_components
        means = np.asarray(means, dtype=np.float64)
        if means.ndim != 2 or means.shape[0] != k:
            raise ValueError(f"means_ must have shape (n_components={k}, n_features); got "
                             f"{means.shape}.")
        if not np.all(np.isfinite(means)):
            raise ValueError("means_ contains NaN or infinite values.")
        cov = np.asarray(covariances, dtype=np.float64)
        shape = MODELS[self.covariance_type].shape(k, means.shape[1])
        if cov.shape != shape:
            raise ValueError(f"covariances_ must have shape {shape} for covariance_type="
                             f"{self.covariance_type!r}; got {cov.shape}.")
        if not np.all(np.isfinite(cov)):
            raise ValueError("covariances_ contains NaN or infinite values.")
        return mixture.MixtureParams(np.full(k, 1.0 / k), means, cov,
                                     covariance_type=self.covariance_type)

    def _emission_from_attributes(self):
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        return self._emission(self.means_, self.covariances_)

    def _init_emission(self, X, rng):
        from .kmeans import KMeans

        k, (n, d) = self.n_components, X.shape
        if "m" in self.init_params:
            means = KMeans(n_clusters=k, n_init=1, random_state=rng).fit(X).cluster_centers_
        else:
            means = self._given("means_", "m")
        if "c" in self.init_params:
            cv = np.atleast_2d(np.cov(X, rowvar=False)) if n > 1 else np.zeros((d, d))
            cv = cv + self.reg_covar * np.eye(d)
            cov = {"full": np.broadcast_to(cv, (k, d, d)).copy(), "tied": cv,
                   "diag": np.tile(np.diag(cv), (k, 1)),
                   "spherical": np.full(k, np.mean(np.diag(cv)))}[self.covariance_type]
        else:
            cov = self._given("covariances_", "c")
        emission = self._emission(means, cov)
        if emission.means.shape[1] != d:
            raise ValueError(f"means_ has {emission.means.shape[1]} features, but X has {d}.")
        return emission

    def _set_emission(self, emission):
        self.means_ = emission.means
        self.covariances_ = emission.covariances
        self.precisions_cholesky_ = emission.precisions_cholesky

    def _log_emission(self, X, emission):
        return emission.model.log_gaussian(X, emission.means, emission.precisions_cholesky)

    def _emission_m_step(self, X, gamma, emission):
        learn_m, learn_c = "m" in self.params, "c" in self.params
        if not (learn_m or learn_c):
            return emission, 0.0
        ct = self.covariance_type
        if learn_m and learn_c:
            step = mixture.m_step(X, gamma, self.reg_covar, emission, ct)
            return step.params, step.ridge_deficit
        nk, means, second = mixture.sufficient_statistics(X, gamma, emission.means, ct)
        if learn_m:  # covariances fixed: the weighted means maximise Q
            empty = nk <= 10 * np.finfo(np.float64).eps * max(nk.sum(), 1.0)
            means = np.where(empty[:, None], emission.means, means)
            return mixture.MixtureParams(emission.weights, means, emission.covariances,
                                         emission.precisions_cholesky, ct), 0.0
        # means fixed: second moments about them, not about the weighted means
        model = MODELS[ct]
        second = model.add_outer(second, means - emission.means, nk)
        step = mixture.params_from_statistics(nk, emission.means, second, self.reg_covar, ct,
                                              emission)
        return mixture.MixtureParams(emission.weights, emission.means, step.params.covariances,
                                     step.params.precisions_cholesky, ct), step.ridge_deficit

    def _log_emission_prior(self, emission):
        return 0.0

    def _n_emission_parameters(self):
        k, d = np.shape(self.means_)
        n = k * d if "m" in self.params else 0
        return n + (MODELS[self.covariance_type].n_parameters(k, d) if "c" in self.params else 0)

    def _sample_emission(self, emission, states, rng):
        k, d = emission.means.shape
        chol = np.linalg.cholesky(emission.full_covariances())
        X = np.empty((states.shape[0], d))
        for j in range(k):
            rows = np.flatnonzero(states == j)
            X[rows] = emission.means[j] + rng.standard_normal((rows.size, d)) @ chol[j].T
        return X


# --------------------------------------------------------------------------- categorical emissions


def _check_integers(X, name, what):
    """X (float64) must hold integers; a ValueError naming ``name`` otherwise."""
    bad = np.flatnonzero((X != np.round(X)).any(axis=1))
    if bad.size:
        raise ValueError(f"{name} must hold {what}; row {bad[0]} has {X[bad[0]].tolist()}.")


class CategoricalHMM(BaseHMM):
    __doc__ = _doc("""Hidden Markov model with categorical emissions (symbols 0, ..., n_features - 1).

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    n_features : int, optional
        Number of symbols. Default: from ``emissionprob_`` if set before fit,
        else the largest symbol in X plus one.
    emissionprob_prior : float or array-like, default=1.0
        Dirichlet concentration (>= 1) of each state's emission probabilities.
    %(common)s
    params : str, default='ste'
        The parameters fit updates: 's' ``startprob_``, 't' ``transmat_``, 'e' ``emissionprob_``.
    init_params : str, default='ste'
        The parameters fit initialises (uniform ``startprob_`` and ``transmat_``,
        random ``emissionprob_``, as hmmlearn). A letter left out means the
        attribute set before fit is the start.

    Attributes
    ----------
    emissionprob_ : ndarray of shape (n_components, n_features)
        ``emissionprob_[k, s] = p(x_t = s | z_t = k)``. Its zeros stay zero in fit.
    n_features_ : int
        Number of symbols.
    %(attributes)s

    Notes
    -----
    X has shape (n_samples, 1) and holds integer symbols (hmmlearn's
    ``CategoricalHMM``).
    %(notes)s

    Examples
    --------
    Wikipedia's Viterbi example (states Healthy, Fever; observations normal,
    cold, dizzy):

    >>> import numpy as np
    >>> from emlab import CategoricalHMM
    >>> model = CategoricalHMM(2)
    >>> model.startprob_ = np.array([0.6, 0.4])
    >>> model.transmat_ = np.array([[0.7, 0.3], [0.4, 0.6]])
    >>> model.emissionprob_ = np.array([[0.5, 0.4, 0.1], [0.1, 0.3, 0.6]])
    >>> logprob, states = model.decode(np.array([[0], [1], [2]]))
    >>> states.tolist(), round(float(np.exp(logprob)), 5)
    ([0, 0, 1], 0.01512)
    """)

    _emission_letters = "e"
    _emission_attributes = ("emissionprob_",)

    def __init__(self, n_components=1, *, n_features=None, emissionprob_prior=1.0,
                 startprob_prior=1.0, transmat_prior=1.0, algorithm="viterbi", max_iter=100,
                 tol=1e-3, n_init=1, params="ste", init_params="ste", random_state=None,
                 on_decrease="warn", verbose=0):
        self.n_components = n_components
        self.n_features = n_features
        self.emissionprob_prior = emissionprob_prior
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.algorithm = algorithm
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.params = params
        self.init_params = init_params
        self.random_state = random_state
        self.on_decrease = on_decrease
        self.verbose = verbose

    def _symbols(self, X=None):
        """The number of symbols: n_features, else emissionprob_'s, else X's largest plus one."""
        if self.n_features is not None:
            return check_int(self.n_features, "n_features", low=1)
        if hasattr(self, "emissionprob_") and ("e" not in self.init_params or X is None):
            return int(np.shape(self.emissionprob_)[-1])
        if X is None:
            raise NotFittedError("n_features is unknown: set n_features or emissionprob_, or fit.")
        return int(X.max()) + 1

    def _check_X(self, X, fitting):
        X = check_array(X)
        if X.shape[1] != 1:
            raise ValueError(f"X must have shape (n_samples, 1): one integer symbol per row; got "
                             f"{X.shape[1]} columns.")
        _check_integers(X, "X", "integer symbols")
        if X.min() < 0:
            raise ValueError(f"X must hold symbols >= 0; row {int(np.argmin(X[:, 0]))} has "
                             f"{X.min():g}.")
        m = self._symbols(X if fitting else None)
        if X.max() >= m:
            raise ValueError(f"X holds symbol {X.max():g} (row {int(np.argmax(X[:, 0]))}), out of "
                             f"range for n_features={m} symbols (0 to {m - 1}).")
        if fitting:
            self._fit_symbols = m
        return X

    def _emission_from_attributes(self):
        k = self.n_components
        m = np.shape(self.emissionprob_)[-1] if np.ndim(self.emissionprob_) == 2 else None
        if self.n_features is not None:
            m = check_int(self.n_features, "n_features", low=1)
        return check_probabilities(self.emissionprob_, "emissionprob_", (k, m))

    def _init_emission(self, X, rng):
        k, m = self.n_components, self._fit_symbols
        if "e" in self.init_params:
            e = rng.random((k, m))
            return e / e.sum(axis=1, keepdims=True)
        return check_probabilities(self._given("emissionprob_", "e"), "emissionprob_", (k, m))

    def _set_emission(self, emission):
        self.emissionprob_ = emission
        self.n_features_ = emission.shape[1]

    def _log_emission(self, X, emission):
        with np.errstate(divide="ignore"):
            log_e = np.log(emission.T)  # (M, K)
        return np.ascontiguousarray(log_e[X[:, 0].astype(np.intp)])

    def _prior(self, emission):
        return check_prior(self.emissionprob_prior, "emissionprob_prior", emission.shape)

    def _emission_m_step(self, X, gamma, emission):
        if "e" not in self.params:
            return emission, 0.0
        symbols = X[:, 0].astype(np.intp)
        m = emission.shape[1]
        counts = np.array([np.bincount(symbols, weights=gamma[:, j], minlength=m)
                           for j in range(emission.shape[0])])
        return dirichlet_map(counts, self._prior(emission), emission), 0.0

    def _log_emission_prior(self, emission):
        return log_dirichlet(emission, self._prior(emission))

    def _n_emission_parameters(self):
        k, m = np.shape(self.emissionprob_)
        return k * (m - 1) if "e" in self.params else 0

    def _sample_emission(self, emission, states, rng):
        cum = np.cumsum(emission, axis=1)
        cum /= cum[:, -1:]
        u = rng.random(states.shape[0])
        rows = cum[states]
        return (rows <= u[:, None]).sum(axis=1).reshape(-1, 1).astype(np.int64)


# --------------------------------------------------------------------------- Poisson emissions


class PoissonHMM(BaseHMM):
    __doc__ = _doc("""Hidden Markov model with independent Poisson emissions (counts).

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    lambdas_prior, lambdas_weight : float or array-like, default=0.0
        A gamma prior on each rate, ``lambda^lambdas_prior exp(-lambdas_weight
        lambda)`` (hmmlearn's parametrisation): the M-step is
        ``(lambdas_prior + sum_t gamma_tk x_t) / (lambdas_weight + sum_t gamma_tk)``.
    %(common)s
    params : str, default='stl'
        The parameters fit updates: 's' ``startprob_``, 't' ``transmat_``, 'l' ``lambdas_``.
    init_params : str, default='stl'
        The parameters fit initialises (uniform ``startprob_`` and ``transmat_``;
        ``lambdas_`` drawn from a gamma distribution with the data's mean and
        variance, as hmmlearn). A letter left out means the attribute set
        before fit is the start.

    Attributes
    ----------
    lambdas_ : ndarray of shape (n_components, n_features)
        The Poisson rate of each feature in each state.
    %(attributes)s

    Notes
    -----
    X holds non-negative integer counts, shape (n_samples, n_features).
    %(notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from emlab import PoissonHMM
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.poisson(2, (200, 1)), rng.poisson(20, (200, 1))])
    >>> model = PoissonHMM(2, random_state=0).fit(X)
    >>> sorted(np.round(model.lambdas_[:, 0]).tolist())
    [2.0, 20.0]
    """)

    _emission_letters = "l"
    _emission_attributes = ("lambdas_",)

    def __init__(self, n_components=1, *, lambdas_prior=0.0, lambdas_weight=0.0,
                 startprob_prior=1.0, transmat_prior=1.0, algorithm="viterbi", max_iter=100,
                 tol=1e-3, n_init=1, params="stl", init_params="stl", random_state=None,
                 on_decrease="warn", verbose=0):
        self.n_components = n_components
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.algorithm = algorithm
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.params = params
        self.init_params = init_params
        self.random_state = random_state
        self.on_decrease = on_decrease
        self.verbose = verbose

    def _check_X(self, X, fitting):
        n_features = None
        if not fitting and hasattr(self, "lambdas_"):
            n_features = np.shape(self.lambdas_)[-1]
        X = check_array(X, n_features=n_features)
        _check_integers(X, "X", "integer counts")
        if X.min() < 0:
            row = int(np.flatnonzero((X < 0).any(axis=1))[0])
            raise ValueError(f"X must hold non-negative counts; row {row} has {X[row].tolist()}.")
        return X

    def _rate_prior(self, shape):
        out = []
        for name in ("lambdas_prior", "lambdas_weight"):
            value = getattr(self, name)
            arr = np.asarray(value, dtype=np.float64) if not isinstance(value, (bool, np.bool_)) \
                else np.array(np.nan)
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"{name} must be finite and >= 0; got {value!r}.")
            try:
                out.append(np.broadcast_to(arr, shape))
            except ValueError:
                raise ValueError(f"{name} must broadcast to shape {shape}.") from None
        return out

    def _check_lambdas(self, lambdas, d=None):
        k = self.n_components
        lam = np.array(lambdas, dtype=np.float64)
        if lam.ndim != 2 or lam.shape[0] != k or (d is not None and lam.shape[1] != d):
            raise ValueError(f"lambdas_ must have shape (n_components={k}, n_features"
                             f"{'' if d is None else '=' + str(d)}); got {lam.shape}.")
        if not np.all(np.isfinite(lam)) or np.any(lam < 0):
            raise ValueError("lambdas_ must hold finite non-negative rates.")
        return lam

    def _emission_from_attributes(self):
        return self._check_lambdas(self.lambdas_)

    def _init_emission(self, X, rng):
        k, d = self.n_components, X.shape[1]
        if "l" not in self.init_params:
            return self._check_lambdas(self._given("lambdas_", "l"), d)
        mean = X.mean(axis=0)
        var = X.var(axis=0)
        lam = np.empty((k, d))
        for j in range(d):
            if mean[j] > 0 and var[j] > 0:
                lam[:, j] = rng.gamma(shape=mean[j] ** 2 / var[j], scale=var[j] / mean[j], size=k)
            else:
                lam[:, j] = mean[j]
        return lam

    def _set_emission(self, emission):
        self.lambdas_ = emission

    def _log_emission(self, X, emission):
        const = gammaln(X + 1.0).sum(axis=1)
        out = np.empty((X.shape[0], emission.shape[0]))
        for j in range(emission.shape[0]):
            out[:, j] = xlogy(X, emission[j]).sum(axis=1) - emission[j].sum() - const
        return out

    def _emission_m_step(self, X, gamma, emission):
        if "l" not in self.params:
            return emission, 0.0
        a, b = self._rate_prior(emission.shape)
        num = a + gamma.T @ X
        den = b + gamma.sum(axis=0)[:, None]
        safe = np.where(den > 0, den, 1.0)
        return np.where(den > 0, num / safe, emission), 0.0

    def _log_emission_prior(self, emission):
        a, b = self._rate_prior(emission.shape)
        return float(np.sum(xlogy(a, emission) - b * emission))

    def _n_emission_parameters(self):
        return int(np.size(self.lambdas_)) if "l" in self.params else 0

    def _sample_emission(self, emission, states, rng):
        return rng.poisson(emission[states])


__all__ = ["GaussianHMM", "CategoricalHMM", "PoissonHMM", "BaseHMM", "HMMParams"]
