"""Gaussian mixtures fitted by EM (full covariance matrices)."""

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg import solve_triangular

from . import _config
from ._base import ParamsMixin
from ._kernels.gaussian import log_gaussian_full
from ._kernels.mixture import log_normalize, weighted_scatter
from ._validation import (
    check_array,
    check_int,
    check_is_fitted,
    check_means,
    check_option,
    check_precisions_full,
    check_random_state,
    check_scalar,
    check_weights,
)
from .em import check_em_options, fit_em
from .exceptions import (
    DegenerateCovarianceError,
    DegenerateCovarianceWarning,
    EmptyComponentWarning,
)
from .kmeans import KMeans, kmeans_plusplus

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


# --------------------------------------------------------------------------- parameters


def precision_cholesky(covariances):
    """Upper-triangular ``U_k`` with ``inv(covariances[k]) = U_k @ U_k.T``, for each k.

    Raises :class:`~emlab.exceptions.DegenerateCovarianceError` naming the first
    component whose covariance is not (numerically) positive definite.
    """
    covariances = np.asarray(covariances, dtype=np.float64)
    n_components, d, _ = covariances.shape
    out = np.empty_like(covariances)
    eye = np.eye(d)
    for k in range(n_components):
        try:
            lower = np.linalg.cholesky(covariances[k])
        except np.linalg.LinAlgError:
            lower = None
        if lower is None or not np.all(np.isfinite(lower)) or np.any(np.diag(lower) <= 0):
            raise DegenerateCovarianceError(
                f"the covariance of component {k} is not positive definite: the component "
                f"has collapsed onto fewer than n_features + 1 = {d + 1} distinct points, or a "
                f"feature is constant within it. Increase reg_covar, or reduce n_components."
            )
        out[k] = solve_triangular(lower, eye, lower=True).T
    return out


@dataclass(frozen=True)
class MixtureParams:
    """Parameters of a full-covariance Gaussian mixture.

    Parameters
    ----------
    weights : ndarray of shape (n_components,)
    means : ndarray of shape (n_components, n_features)
    covariances : ndarray of shape (n_components, n_features, n_features)
    precisions_cholesky : ndarray of shape (n_components, n_features, n_features), optional
        Computed from ``covariances`` when not given.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray = None

    def __post_init__(self):
        object.__setattr__(self, "weights", np.asarray(self.weights, dtype=np.float64))
        object.__setattr__(self, "means", np.ascontiguousarray(self.means, dtype=np.float64))
        object.__setattr__(self, "covariances", np.asarray(self.covariances, dtype=np.float64))
        if self.precisions_cholesky is None:
            object.__setattr__(self, "precisions_cholesky", precision_cholesky(self.covariances))

    @classmethod
    def from_model(cls, model):
        """The parameters of a fitted :class:`GaussianMixture`."""
        check_is_fitted(model, "weights_")
        return cls(model.weights_, model.means_, model.covariances_, model.precisions_cholesky_)

    @property
    def n_components(self):
        return self.weights.shape[0]


def as_params(params):
    """Accept a :class:`MixtureParams` or a fitted :class:`GaussianMixture`."""
    if isinstance(params, MixtureParams):
        return params
    return MixtureParams.from_model(params)


# --------------------------------------------------------------------------- E-step pieces


def log_gaussian(X, means, precisions_cholesky):
    """``out[i, k] = log N(X[i] | means[k], inv(P_k))`` with ``P_k = U_k U_k^T``, shape (n, K)."""
    prec_chol_t = np.ascontiguousarray(np.swapaxes(precisions_cholesky, 1, 2))
    n, d = X.shape
    out = np.empty((n, means.shape[0]))
    with _config.threads_for(n * means.shape[0] * d * d):
        log_gaussian_full(X, np.ascontiguousarray(means), prec_chol_t, _config.CHUNK_ROWS, out)
    return out


def weighted_log_prob(X, params):
    """``log w_k + log N(x_i | mu_k, Sigma_k)``, shape (n, K). A zero weight gives ``-inf``."""
    with np.errstate(divide="ignore"):
        log_w = np.log(params.weights)
    return log_gaussian(X, params.means, params.precisions_cholesky) + log_w


def log_prob_resp(X, params):
    """Per-sample log-likelihood ``log p(x_i)`` (n,) and responsibilities (n, K)."""
    log_prob = weighted_log_prob(X, params)
    log_norm = np.empty(X.shape[0])
    resp = np.empty_like(log_prob)
    with _config.threads_for(log_prob.size * 16):
        log_normalize(log_prob, _config.CHUNK_ROWS, log_norm, resp)
    return log_norm, resp


# --------------------------------------------------------------------------- M-step


def sufficient_statistics(X, resp, centers):
    """``nk``, the weighted means and the centred weighted scatter matrices, in one pass.

    Returns ``nk`` (K,), ``means`` (K, d) and ``scatter`` (K, d, d) with
    ``scatter[k] = sum_i resp[i, k] (x_i - means[k])(x_i - means[k])^T``.
    ``centers`` (K, d) is the shift the kernel accumulates about; the closer it
    is to the new means, the smaller the correction (the current means are a
    good choice).
    """
    n, d = X.shape
    k = resp.shape[1]
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    nk = np.empty(k)
    sums = np.empty((k, d))
    scatter = np.empty((k, d, d))
    n_blocks = _config.n_blocks(n, k * (1 + d + d * d))
    with _config.threads_for(n * k * d * d):
        weighted_scatter(X, np.ascontiguousarray(resp), centers, n_blocks, _config.CHUNK_ROWS,
                         nk, sums, scatter)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = sums / nk[:, None]
        scatter -= nk[:, None, None] * shift[:, :, None] * shift[:, None, :]
    return nk, centers + shift, scatter


class MStep(NamedTuple):
    """What :func:`m_step` returns.

    params : MixtureParams
    empty : ndarray of int
        Components with no responsibility, frozen with weight 0.
    ridge_deficit : float
        How far ``Q(params | previous)`` falls short of its maximum because of
        ``reg_covar`` (a total over samples; 0 when ``reg_covar=0``).
    """

    params: MixtureParams
    empty: np.ndarray
    ridge_deficit: float


def ridge_deficit(nk, scatter_eigenvalues, reg_covar):
    """``max Q - Q`` caused by adding ``reg_covar`` to the maximising covariances.

    For a component with ``N_k`` and eigenvalues ``lambda_j`` of its maximising
    covariance ``S_k / N_k``, the covariance ``S_k / N_k + eps I`` has

        Q deficit = N_k / 2 * sum_j [log(1 + eps / lambda_j) - eps / (lambda_j + eps)] >= 0,

    infinite if some ``lambda_j <= 0`` (Q is then unbounded above).
    """
    if reg_covar == 0.0:
        return 0.0
    lam = scatter_eigenvalues
    with np.errstate(divide="ignore"):
        terms = np.where(lam > 0, np.log1p(reg_covar / np.where(lam > 0, lam, 1.0))
                         - reg_covar / (lam + reg_covar), np.inf)
    return float(np.sum(0.5 * nk * terms.sum(axis=1)))


def m_step(X, resp, reg_covar, previous=None):
    """The closed-form M-step: weights, means and covariances from responsibilities.

    ``w_k = N_k / N``, ``mu_k = sum_i r_ik x_i / N_k`` and
    ``Sigma_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T / N_k + reg_covar I``.

    A component whose total responsibility ``N_k`` is zero (to round-off) keeps
    the mean and covariance of ``previous`` with weight 0: any mean and
    covariance maximise Q for it, and a weight of zero means it takes no part in
    the model from then on.

    Returns
    -------
    MStep
    """
    n, d = X.shape
    k = resp.shape[1]
    centers = previous.means if previous is not None else np.broadcast_to(X.mean(axis=0), (k, d))
    nk, means, scatter = sufficient_statistics(X, resp, centers)
    empty = np.flatnonzero(nk <= 10 * np.finfo(np.float64).eps * n)
    if empty.size and previous is None:
        raise ValueError(
            f"the initialisation left component(s) {empty.tolist()} without data; "
            f"choose another init_params or random_state."
        )
    live = np.setdiff1d(np.arange(k), empty)
    covariances = np.empty_like(scatter)
    covariances[live] = scatter[live] / nk[live, None, None]
    deficit = 0.0
    if reg_covar > 0 and live.size:
        deficit = ridge_deficit(nk[live], np.linalg.eigvalsh(covariances[live]), reg_covar)
    covariances[live[:, None], np.arange(d), np.arange(d)] += reg_covar
    weights = nk / nk.sum()
    if empty.size:
        weights[empty] = 0.0
        weights /= weights.sum()
        means[empty] = previous.means[empty]
        covariances[empty] = previous.covariances[empty]
    return MStep(MixtureParams(weights, means, covariances), empty, deficit)


# --------------------------------------------------------------------------- the EM model


class _FullMixtureEM:
    """The :class:`~emlab.em.EMModel` of a full-covariance Gaussian mixture."""

    def __init__(self, n_components, reg_covar, init_params, weights_init, means_init,
                 precisions_init):
        self.n_components = n_components
        self.reg_covar = reg_covar
        self.init_params_name = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.empty_events = []
        self.iteration = 0

    def _initial_resp(self, X, rng):
        n, k = X.shape[0], self.n_components
        name = self.init_params_name
        if name == "random":
            resp = rng.uniform(size=(n, k))
            return resp / resp.sum(axis=1, keepdims=True)
        if name == "kmeans":
            labels = KMeans(n_clusters=k, n_init=1, random_state=rng).fit(X).labels_
        else:
            if name == "k-means++":
                seeds = kmeans_plusplus(X, k, rng)[0]
            else:  # random_from_data: k distinct rows
                distinct = np.unique(X, axis=0)
                if distinct.shape[0] < k:
                    raise ValueError(
                        f"X has {distinct.shape[0]} distinct rows, fewer than n_components={k}."
                    )
                seeds = distinct[rng.choice(distinct.shape[0], k, replace=False)]
            # Each sample goes to its nearest seed (one Lloyd assignment).
            d2 = np.column_stack([((X - s) ** 2).sum(axis=1) for s in seeds])
            labels = d2.argmin(axis=1)
        resp = np.zeros((n, k))
        resp[np.arange(n), labels] = 1.0
        return resp

    def init_params(self, X, rng):
        self.iteration = 0
        user = (self.weights_init, self.means_init, self.precisions_init)
        if any(p is None for p in user):
            params = m_step(X, self._initial_resp(X, rng), self.reg_covar).params
            weights, means, covariances = params.weights, params.means, params.covariances
        if self.weights_init is not None:
            weights = self.weights_init
        if self.means_init is not None:
            means = self.means_init
        if self.precisions_init is not None:
            covariances = np.linalg.inv(self.precisions_init)
            covariances = 0.5 * (covariances + np.swapaxes(covariances, 1, 2))
        return MixtureParams(weights, means, covariances)

    def e_step(self, X, params):
        self.iteration += 1
        log_norm, resp = log_prob_resp(X, params)
        if not np.all(np.isfinite(log_norm)):
            i = int(np.flatnonzero(~np.isfinite(log_norm))[0])
            raise FloatingPointError(
                f"sample {i} has zero density under every component at iteration "
                f"{self.iteration}; the data's scale may be extreme (standardise X)."
            )
        return float(np.mean(log_norm)), resp

    def m_step(self, X, resp, params):
        step = m_step(X, resp, self.reg_covar, previous=params)
        fresh = [int(k) for k in step.empty if params.weights[k] > 0]
        if fresh:
            self.empty_events.append((self.iteration, fresh))
        # The driver allows the next objective to fall by this much (see EMModel).
        self.m_step_slack = step.ridge_deficit / X.shape[0]
        return step.params


# --------------------------------------------------------------------------- estimator


class GaussianMixture(ParamsMixin):
    """Gaussian mixture with full covariance matrices, fitted by EM.

    Parameters follow :class:`sklearn.mixture.GaussianMixture`.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {'full'}, default='full'
        Only full covariances are implemented so far.
    tol : float, default=1e-3
        EM stops when the mean log-likelihood per sample changes by less than tol.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance, keeping them positive definite.
    max_iter : int, default=100
    n_init : int, default=1
        Number of initialisations; the one with the highest final mean
        log-likelihood is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How responsibilities are initialised: hard labels from one k-means run;
        hard labels from the nearest of k-means++ seeds; uniform random
        responsibilities; hard labels from the nearest of distinct random rows.
        'random' puts every component near the overall mean, where EM's first
        steps are tiny: with the default ``tol`` it can stop there, so use a
        smaller ``tol`` with it.
        (scikit-learn gives the two seeding methods a single sample per component,
        whose covariance is then only ``reg_covar * I``; assigning every sample to
        its nearest seed gives a usable start and one that ``reg_covar=0`` survives.)
    weights_init : array-like of shape (n_components,), optional
    means_init : array-like of shape (n_components, n_features), optional
    precisions_init : array-like of shape (n_components, n_features, n_features), optional
        User-provided starting values; they replace what ``init_params`` gives.
    random_state : None, int or numpy.random.Generator
    on_decrease : {'warn', 'raise', 'ignore'}, default='warn'
        What to do if the log-likelihood decreases between two iterations by
        more than round-off, which exact EM cannot do: a
        :class:`~emlab.exceptions.LikelihoodDecreaseWarning` naming the iteration,
        a :class:`~emlab.exceptions.LikelihoodDecreaseError`, or nothing.
        With ``reg_covar > 0`` the M-step does not quite maximise Q, and the
        likelihood may fall, by at most the Q deficit that the ridge causes;
        each M-step computes that deficit exactly and the check allows it
        (scikit-learn's EM falls by the same amounts, unchecked). Only a fall
        beyond it is reported.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray of shape (n_components, n_features, n_features)
    precisions_ : ndarray of shape (n_components, n_features, n_features)
    precisions_cholesky_ : ndarray of shape (n_components, n_features, n_features)
        Upper-triangular ``U_k`` with ``precisions_[k] = U_k @ U_k.T`` (scikit-learn's convention).
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The last entry of ``lower_bounds_``.
    lower_bounds_ : ndarray of shape (n_iter_,)
        Mean log-likelihood per sample at each iteration of the best run:
        entry t is that of the parameters after t M-steps (entry 0: the start).
    n_features_in_ : int

    Notes
    -----
    The responsibilities are computed in log space with a max-shifted
    log-sum-exp; covariances are kept as precision Cholesky factors, so a
    log-determinant is a sum of log-diagonals; scatter matrices are accumulated
    about the current means. A component that receives no responsibility keeps
    its last mean and covariance with weight 0 and an
    :class:`~emlab.exceptions.EmptyComponentWarning` names it. The book chapter
    "Why EM climbs" proves that the log-likelihood cannot decrease, and the fit
    checks that at every iteration.

    Examples
    --------
    >>> from emlab import GaussianMixture
    >>> from emlab.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> gm = GaussianMixture(n_components=3, random_state=0).fit(X)
    >>> gm.means_.shape
    (3, 4)
    >>> bool(abs(gm.predict_proba(X).sum(axis=1) - 1).max() < 1e-12)
    True
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, on_decrease="warn"):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.on_decrease = on_decrease

    def _make_model(self, X):
        n, d = X.shape
        k = check_int(self.n_components, "n_components", low=1)
        if k > n:
            raise ValueError(f"n_components={k} must be <= n_samples={n}.")
        if self.covariance_type != "full":
            check_option(self.covariance_type, "covariance_type", ("full",))
        check_em_options(self.max_iter, self.tol, self.on_decrease)
        check_int(self.n_init, "n_init", low=1)
        reg = check_scalar(self.reg_covar, "reg_covar", low=0.0)
        check_option(self.init_params, "init_params", INIT_PARAMS)
        w = None if self.weights_init is None else check_weights(self.weights_init, k)
        m = None if self.means_init is None else check_means(self.means_init, k, d)
        p = None if self.precisions_init is None else check_precisions_full(self.precisions_init, k, d)
        return _FullMixtureEM(k, reg, self.init_params, w, m, p)

    def fit(self, X, y=None):
        """Estimate the parameters by EM. ``y`` is ignored. Returns self."""
        self.fit_predict(X)
        return self

    def fit_predict(self, X, y=None):
        """Fit, then label X with the fitted model (the same as ``fit(X).predict(X)``)."""
        X = check_array(X, min_samples=2)
        model = self._make_model(X)
        result = fit_em(model, X, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                        random_state=check_random_state(self.random_state),
                        on_decrease=self.on_decrease)
        for iteration, comps in model.empty_events:
            warnings.warn(
                f"component(s) {comps} received no responsibility at iteration {iteration}; "
                f"their weight is now 0 and their mean and covariance are frozen. "
                f"Consider fewer components.", EmptyComponentWarning, stacklevel=2,
            )
        params = result.params
        self._warn_if_held_up_by_ridge(params)
        self.weights_ = params.weights
        self.means_ = params.means
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = params.precisions_cholesky @ np.swapaxes(params.precisions_cholesky, 1, 2)
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bounds_ = result.lower_bounds
        self.lower_bound_ = float(result.lower_bounds[-1])
        self.n_features_in_ = X.shape[1]
        return log_prob_resp(X, params)[1].argmax(axis=1)

    def _warn_if_held_up_by_ridge(self, params):
        """Name the components whose covariance is nonsingular only thanks to ``reg_covar``.

        That is, in some direction the ridge makes up at least a third of the
        variance (the variance before the ridge is below ``2 * reg_covar``).
        """
        if self.reg_covar <= 0:
            return
        smallest = np.linalg.eigvalsh(params.covariances)[:, 0] - self.reg_covar
        held = [k for k in range(params.n_components)
                if params.weights[k] > 0 and smallest[k] < 2 * self.reg_covar]
        if held:
            details = ", ".join(f"{k} (weight {params.weights[k]:.3g}, smallest variance "
                                f"{max(smallest[k], 0.0):.3g} before the ridge)" for k in held)
            warnings.warn(
                f"the covariance of component(s) {details} is kept positive definite by "
                f"reg_covar={self.reg_covar:g}, which makes up at least a third of its variance in "
                f"some direction: the component has (nearly) collapsed onto fewer "
                f"points than dimensions or onto a constant feature, where the likelihood is "
                f"unbounded. Increase reg_covar, reduce n_components, or use more restarts.",
                DegenerateCovarianceWarning, stacklevel=3,
            )

    def _check_X(self, X):
        check_is_fitted(self, "weights_")
        return check_array(X, n_features=self.n_features_in_)

    def score_samples(self, X):
        """Log-likelihood ``log p(x_i)`` of each row, shape (n_samples,)."""
        return log_prob_resp(self._check_X(X), MixtureParams.from_model(self))[0]

    def score(self, X, y=None):
        """Mean log-likelihood per sample of X."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X):
        """Responsibilities ``p(z_i = k | x_i)``, shape (n_samples, n_components)."""
        return log_prob_resp(self._check_X(X), MixtureParams.from_model(self))[1]

    def predict(self, X):
        """The most probable component of each row, shape (n_samples,)."""
        return self.predict_proba(X).argmax(axis=1)
