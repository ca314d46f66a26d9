"""Variational Bayesian Gaussian mixtures (scikit-learn's ``BayesianGaussianMixture``) on the fused kernels.

The model, its priors and its parametrisation are scikit-learn's; each
coordinate-ascent iteration is one fused pass over X (the same Numba kernels
as :class:`~emlab.GaussianMixture`), and the objective that emlab's EM driver
checks at every iteration is the exact evidence lower bound (ELBO).
"""

import math
from typing import NamedTuple

import numpy as np
from scipy.special import betaln, digamma, gammaln

from . import _config
from ._base import ParamsMixin
from ._covariance import MODELS
from ._dask import is_dask_array
from ._kernels.mixture import log_normalize
from ._validation import (
    check_array,
    check_int,
    check_is_fitted,
    check_labels,
    check_option,
    check_random_state,
    check_sample_weight,
    check_scalar,
    check_scale,
)
from .em import check_em_options, decrease_rtol_for, fit_em
from .exceptions import DegenerateCovarianceError
from .mixture import (
    COVARIANCE_TYPES,
    INIT_PARAMS,
    MixtureParams,
    _centred,
    _MixtureEM,
    labelled_statistics,
    sufficient_statistics,
)

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
#: scikit-learn adds this to every ``N_k`` (``10 * eps``), so an empty component divides by it.
NK_FLOOR = 10 * np.finfo(np.float64).eps


class VariationalParams(NamedTuple):
    """The variational posterior q(pi) q(mu, Lambda), as scikit-learn stores it.

    ``weight_concentration`` is a (K,) vector (Dirichlet) or a pair of (K,)
    vectors (the Beta distributions of the stick-breaking fractions);
    ``mean_precision`` (beta_k), ``means`` (m_k), ``degrees_of_freedom``
    (nu_k; a float for 'tied'), ``covariances`` ``= W_k^{-1} / nu_k`` (the
    inverse of E[Lambda_k]), shaped by the covariance type, and their
    ``precisions_cholesky``.
    """

    weight_concentration: object
    mean_precision: np.ndarray
    means: np.ndarray
    degrees_of_freedom: object
    covariances: np.ndarray
    precisions_cholesky: np.ndarray


# --------------------------------------------------------------------------- closed forms


def _multi_digamma(a, d):
    """``sum_{i=0}^{d-1} digamma(a - i / 2)`` elementwise."""
    return np.sum(digamma(np.asarray(a)[..., None] - 0.5 * np.arange(d)), axis=-1)


def _multi_gammaln(a, d):
    """log of the multivariate gamma function Gamma_d(a), elementwise."""
    return 0.25 * d * (d - 1) * math.log(math.pi) + np.sum(
        gammaln(np.asarray(a)[..., None] - 0.5 * np.arange(d)), axis=-1)


def expected_log_weights(concentration, prior_type):
    """``E[log pi_k]`` under the Dirichlet, or the stick-breaking Betas."""
    if prior_type == "dirichlet_process":
        a, b = concentration
        digamma_sum = digamma(a + b)
        return digamma(a) - digamma_sum + np.hstack((0.0, np.cumsum(digamma(b) - digamma_sum)[:-1]))
    return digamma(concentration) - digamma(np.sum(concentration))


def kl_weights(concentration, other, prior_type):
    """KL(q(pi) || p(pi)): Dirichlet, or the sum over the sticks of Beta KLs."""
    if prior_type == "dirichlet_process":
        (a, b), (a0, b0) = concentration, other
        return float(np.sum(betaln(a0, b0) - betaln(a, b) + (a - a0) * digamma(a)
                            + (b - b0) * digamma(b) + (a0 - a + b0 - b) * digamma(a + b)))
    alpha, alpha0 = concentration, other
    total = alpha.sum()
    return float(gammaln(total) - gammaln(alpha).sum() - gammaln(alpha0.sum()) + gammaln(alpha0).sum()
                 + np.sum((alpha - alpha0) * (digamma(alpha) - digamma(total))))


def kl_normal_wishart(beta, means, dof, scale, beta0, means0, dof0, scale0):
    """``sum_k KL(NW(m_k, beta_k, W_k, nu_k) || NW(m0_k, beta0_k, W0_k, nu0_k))``.

    ``NW(m, beta, W, nu)`` is ``N(mu | m, (beta Lambda)^-1) Wishart(Lambda | W, nu)``;
    ``scale`` holds the inverse scale matrices ``W_k^{-1}`` (K, d, d), ``beta``
    and ``dof`` are (K,); the second set broadcasts against the first. With
    ``psi_d(a) = sum_i digamma(a - i/2)`` and ``log Gamma_d`` the multivariate gamma,

        KL_W = -nu0/2 log|W0^-1 W| + nu/2 (tr(W0^-1 W) - d) + log Gamma_d(nu0/2)
               - log Gamma_d(nu/2) + (nu - nu0)/2 psi_d(nu/2),
        E_q KL_N = d/2 (beta0/beta - 1 + log(beta/beta0)) + beta0 nu/2 (m - m0)^T W (m - m0).
    """
    d = means.shape[1]
    chol = np.linalg.cholesky(scale)
    chol0 = np.broadcast_to(np.linalg.cholesky(scale0), chol.shape)
    logdet = 2.0 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    logdet0 = 2.0 * np.sum(np.log(np.diagonal(chol0, axis1=-2, axis2=-1)), axis=-1)
    trace = np.sum(np.linalg.solve(chol, chol0) ** 2, axis=(-2, -1))  # tr(W0^-1 W)
    diff = np.broadcast_to(means - means0, means.shape)
    quad = np.sum(np.linalg.solve(chol, diff[..., None])[..., 0] ** 2, axis=-1)
    dof0 = np.broadcast_to(dof0, dof.shape)
    beta0 = np.broadcast_to(beta0, beta.shape)
    kl_wishart = (0.5 * dof0 * (logdet - logdet0) + 0.5 * dof * (trace - d)
                  + _multi_gammaln(0.5 * dof0, d) - _multi_gammaln(0.5 * dof, d)
                  + 0.5 * (dof - dof0) * _multi_digamma(0.5 * dof, d))
    kl_mean = 0.5 * d * (beta0 / beta - 1.0 + np.log(beta / beta0)) + 0.5 * beta0 * dof * quad
    return float(np.sum(kl_wishart + kl_mean))


def _full_scales(scale, covariance_type, k, d):
    """Inverse Wishart scales ``W_k^{-1}`` as (K, d, d) matrices, from their model's shape."""
    scale = np.asarray(scale, dtype=np.float64)
    if covariance_type == "full":
        return scale
    if covariance_type == "tied":
        return np.broadcast_to(scale, (k, d, d))
    if covariance_type == "diag":
        return scale[:, :, None] * np.eye(d)
    return np.broadcast_to(scale, (k,))[:, None, None] * np.eye(d)


# --------------------------------------------------------------------------- the EM model


class _VariationalEM:
    """The :class:`~emlab.em.EMModel` of variational inference for a Bayesian Gaussian mixture.

    ``e_step`` is one fused pass over X returning the ELBO per sample and the
    centred statistics; ``m_step`` the variational updates of q(pi) and
    q(mu, Lambda), and, as ``m_step_slack``, how far they fall short of the
    exact coordinate-ascent step (``reg_covar`` and the ``10 eps`` floor on
    ``N_k``), so the driver allows the ELBO to fall by exactly that much.
    """

    def __init__(self, n_components, covariance_type, prior_type, reg_covar, prior, init_params,
                 sample_weight=None, labels=None):
        self.k = n_components
        self.covariance_type = covariance_type
        self.prior_type = prior_type
        self.reg_covar = reg_covar
        self.prior = prior  # weight_concentration, mean_precision, mean, dof, covariance
        self.sample_weight = sample_weight
        self.model = MODELS[covariance_type]
        self.labels = labels  # partial labels (-1: unknown), or None
        self._start = _MixtureEM(n_components, covariance_type, reg_covar, init_params, None, None,
                                 None, sample_weight, labels=labels)
        self.m_step_slack = 0.0
        self.iteration = 0

    # -- q(params) as (weights, beta, m, nu (K,), W^-1 (K, d, d)), for the KL terms

    def _prior_natural(self, d):
        k, p = self.k, self.prior
        gamma = p["weight_concentration"]
        conc = ((np.ones(k), np.full(k, gamma)) if self.prior_type == "dirichlet_process"
                else np.full(k, gamma))
        scale0 = p["covariance"]
        if self.covariance_type == "diag":
            scale0 = np.diag(scale0)
        elif self.covariance_type == "spherical":
            scale0 = scale0 * np.eye(d)
        return (conc, np.float64(p["mean_precision"]), p["mean"], np.float64(p["dof"]), scale0)

    def _natural(self, params):
        k, d = params.means.shape
        dof = np.broadcast_to(np.asarray(params.degrees_of_freedom, dtype=np.float64), (k,))
        cov = _full_scales(params.covariances, self.covariance_type, k, d)
        return (params.weight_concentration, params.mean_precision, params.means, dof,
                dof[:, None, None] * cov)

    def kl(self, params, other):
        """KL(q || other) for two parameter sets in the form of :meth:`_natural`."""
        conc, beta, means, dof, scale = params
        conc0, beta0, means0, dof0, scale0 = other
        return (kl_weights(conc, conc0, self.prior_type)
                + kl_normal_wishart(beta, means, dof, scale, beta0, means0, dof0, scale0))

    def kl_prior(self, params):
        """KL(q(pi, mu, Lambda) || p(pi, mu, Lambda))."""
        return self.kl(self._natural(params), self._prior_natural(params.means.shape[1]))

    # -- the variational updates

    def update(self, nk, xbar, second, floor, reg):
        """q(pi), q(mu, Lambda) from the centred statistics (scikit-learn's formulas).

        ``floor`` is added to ``N_k`` and ``reg`` times ``N_k`` to the scatter's
        diagonal: (NK_FLOOR, reg_covar) as scikit-learn; (0, 0) the exact step.
        """
        p, k = self.prior, self.k
        d = xbar.shape[1]
        nk = nk + floor
        if self.prior_type == "dirichlet_process":
            conc = (1.0 + nk, p["weight_concentration"] + np.hstack((np.cumsum(nk[::-1])[-2::-1], 0.0)))
        else:
            conc = p["weight_concentration"] + nk
        beta0, mean0, dof0, scale0 = p["mean_precision"], p["mean"], p["dof"], p["covariance"]
        beta = beta0 + nk
        means = (beta0 * mean0 + nk[:, None] * xbar) / beta[:, None]
        diff = xbar - mean0
        coef = nk * beta0 / beta
        kind = self.covariance_type
        if kind == "full":
            dof = dof0 + nk
            scale = (scale0 + second + (reg * nk)[:, None, None] * np.eye(d)
                     + coef[:, None, None] * diff[:, :, None] * diff[:, None, :])
            cov = scale / dof[:, None, None]
        elif kind == "tied":
            dof = dof0 + nk.sum() / k
            scale = scale0 + (second.sum(axis=0) + reg * nk.sum() * np.eye(d)
                              + (coef[:, None] * diff).T @ diff) / k
            cov = scale / dof
        elif kind == "diag":
            dof = dof0 + nk
            scale = scale0 + second + (reg * nk)[:, None] + coef[:, None] * diff**2
            cov = scale / dof[:, None]
        else:
            dof = dof0 + nk
            scale = scale0 + second.mean(axis=1) + reg * nk + coef * np.mean(diff**2, axis=1)
            cov = scale / dof
        return conc, beta, means, dof, cov

    def params_from_statistics(self, nk, xbar, second):
        conc, beta, means, dof, cov = self.update(nk, xbar, second, NK_FLOOR, self.reg_covar)
        try:
            pc = self.model.precision_cholesky(cov)
        except DegenerateCovarianceError as exc:
            raise DegenerateCovarianceError(f"{exc} (iteration {self.iteration})") from None
        params = VariationalParams(conc, beta, means, dof, cov, pc)
        exact = self.update(nk, xbar, second, 0.0, 0.0)
        k, d = xbar.shape
        exact_dof = np.broadcast_to(np.asarray(exact[3], dtype=np.float64), (k,))
        exact_nat = exact[:3] + (exact_dof, exact_dof[:, None, None]
                                 * _full_scales(exact[4], self.covariance_type, k, d))
        self.m_step_deficit = max(self.kl(self._natural(params), exact_nat), 0.0)
        return params

    def params_from_resp(self, X, resp):
        """The first variational update, from responsibilities (scikit-learn's ``_initialize``)."""
        k = resp.shape[1]
        centers = np.broadcast_to(X.mean(axis=0, dtype=np.float64), (k, X.shape[1]))
        nk, xbar, second = sufficient_statistics(X, resp, centers, self.covariance_type)
        return self.params_from_statistics(nk, xbar, second)

    # -- the EMModel protocol

    def init_params(self, X, rng):
        self.iteration = 0
        return self.params_from_resp(X, self._start._initial_resp(X, rng))

    def log_constants(self, params):
        """The per-component constant of the expected log-density (see the estimator's Notes)."""
        k, d = params.means.shape
        dof = np.broadcast_to(np.asarray(params.degrees_of_freedom, dtype=np.float64), (k,))
        return (expected_log_weights(params.weight_concentration, self.prior_type)
                + 0.5 * (_multi_digamma(0.5 * dof, d) + d * math.log(2.0) - d * np.log(dof)
                         - d / params.mean_precision))

    def e_step(self, X, params):
        self.iteration += 1
        if self.labels is not None:  # q(z_i) a point mass at a labelled row's component
            k = params.means.shape[0]
            as_mixture = MixtureParams(np.full(k, 1.0 / k), params.means, params.covariances,
                                       params.precisions_cholesky, self.covariance_type)
            stats = labelled_statistics(X, as_mixture, self.sample_weight, self.labels,
                                        self.log_constants(params))
            loglik, nk, xbar, second = stats.objective, stats.nk, stats.means, stats.second
        else:
            loglik, nk, sums, second = self.model.fused_step(
                X, params.means, params.precisions_cholesky, self.log_constants(params),
                self.sample_weight)
        if not np.isfinite(loglik):
            raise FloatingPointError(
                f"a sample has zero expected density under every component at iteration "
                f"{self.iteration}; the data's scale may be extreme (standardise X).")
        if self.labels is None:
            nk, xbar, second = _centred(self.model, nk, sums, second, params.means)
        weight = X.shape[0] if self.sample_weight is None else float(np.sum(self.sample_weight))
        elbo = (loglik - self.kl_prior(params)) / weight
        return elbo, (nk, xbar, second, weight)

    def m_step(self, X, stats, params):
        nk, xbar, second, weight = stats
        params = self.params_from_statistics(nk, xbar, second)
        self.m_step_slack = self.m_step_deficit / weight
        return params


# --------------------------------------------------------------------------- estimator


def _weights_from_concentration(concentration, prior_type):
    if prior_type == "dirichlet_process":
        a, b = concentration
        total = a + b
        weights = a / total * np.hstack((1.0, np.cumprod(b / total)[:-1]))
        return weights / np.sum(weights)
    return concentration / np.sum(concentration)


def _positive_or_none(value, name):
    if value is None:
        return None
    value = check_scalar(value, name, low=0.0)
    if value <= 0:
        raise ValueError(f"{name} must be > 0; got {value}.")
    return value


class BayesianGaussianMixture(ParamsMixin):
    """Variational Bayesian Gaussian mixture, as :class:`sklearn.mixture.BayesianGaussianMixture`.

    The same model, priors, parameters, defaults and fitted attributes as
    scikit-learn's (1.9), fitted by the same coordinate-ascent updates; each
    iteration is one fused pass over X (Numba, parallel over fixed blocks of
    rows) that never stores an n_samples x n_components array, and the exact
    ELBO is checked at every iteration by emlab's EM driver.

    Parameters
    ----------
    n_components : int, default=1
        The (maximum) number of components; the posterior may leave some of
        them with negligible weight.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
        Iterations stop when the ELBO **per sample** changes by less than tol
        (scikit-learn compares its total lower bound, so it stops later on
        large data).
    reg_covar : float, default=1e-6
        Added, times N_k, to the diagonal of each component's scatter matrix
        (scikit-learn's regularisation).
    max_iter : int, default=100
    n_init : int, default=1
        Number of initialisations; the one with the highest final ELBO is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        The starting responsibilities, as for :class:`~emlab.GaussianMixture`.
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}, \
default='dirichlet_process'
        A truncated stick-breaking (Dirichlet process) prior on the weights,
        or a symmetric Dirichlet.
    weight_concentration_prior : float > 0, optional
        gamma: the Dirichlet parameter, or the second Beta parameter of every
        stick. Default ``1 / n_components``.
    mean_precision_prior : float > 0, optional
        beta_0, the prior precision scale of the means. Default 1.
    mean_prior : array-like of shape (n_features,), optional
        m_0, the prior mean of the means. Default the (weighted) mean of X.
    degrees_of_freedom_prior : float > n_features - 1, optional
        nu_0 of the Wishart prior. Default n_features.
    covariance_prior : float or array-like, optional
        W_0^{-1}, the inverse scale of the Wishart prior: (d, d) symmetric
        positive definite for 'full' and 'tied', (d,) positive for 'diag', a
        positive float for 'spherical'. Default the empirical covariance of X
        (with ``ddof=1``; its diagonal, or the mean variance).
    random_state : None, int or numpy.random.Generator
        Seeds the initialisation and :meth:`sample`.
    warm_start : bool, default=False
        If True and the model is fitted, ``fit`` starts from the fitted
        posterior (one run).
    verbose : int, default=0
        0: silent; 1: a line per run; 2: a line per iteration.
    verbose_interval : int, default=1
        With ``verbose=2``, iteration lines for the first iteration and every
        ``verbose_interval``-th (scikit-learn's default is 10).
    on_decrease : {'warn', 'raise', 'ignore'}, default='warn'
        What to do if the ELBO decreases between two iterations by more than
        round-off plus the exactly computed shortfall of the previous update
        (see Notes), which coordinate ascent cannot do. Round-off is 1e-10 of
        the ELBO for float64 X and 1e-6 for float32 X (float32 arithmetic).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        The weights implied by the posterior means of the Dirichlet or Betas.
    means_ : ndarray of shape (n_components, n_features)
        m_k, the posterior means of the component means.
    covariances_, precisions_, precisions_cholesky_ : ndarray
        ``covariances_ = W_k^{-1} / nu_k``, the inverse of E[Lambda_k], shaped
        as in scikit-learn by ``covariance_type``; its inverse and the
        (upper-triangular, or ``1 / sigma``) Cholesky factor of its inverse.
    weight_concentration_ : ndarray of shape (n_components,) or tuple of two
        The Dirichlet parameters, or the two parameter vectors of the Betas.
    mean_precision_ : ndarray of shape (n_components,)
        beta_k.
    degrees_of_freedom_ : ndarray of shape (n_components,), or float for 'tied'
        nu_k.
    weight_concentration_prior_, mean_precision_prior_, mean_prior_, \
degrees_of_freedom_prior_, covariance_prior_
        The priors used, defaults resolved.
    converged_ : bool
    n_iter_ : int
    lower_bounds_ : ndarray, one entry per iteration
        The ELBO per sample of the posterior reached after t updates (entry 0:
        the initial one), as ``GaussianMixture.lower_bounds_``. Unlike
        scikit-learn's lower bound, which drops the terms it treats as
        constant, is a total over samples, and is evaluated with the previous
        iteration's responsibilities, this is the exact bound
        ``log p(X) >= ELBO`` divided by the number of samples (or the total
        sample weight).
    lower_bound_ : float
        The last entry of ``lower_bounds_``.
    n_features_in_ : int

    See Also
    --------
    emlab.GaussianMixture : maximum likelihood (or MAP) by EM.

    Notes
    -----
    **The E-step.** With ``q(pi) q(mu, Lambda)`` fixed, the optimal ``q(z_i = k)``
    is proportional to ``exp(rho_ik)``, where::

        rho_ik = E[log pi_k] + E[log N(x_i | mu_k, Lambda_k)]
               = log N(x_i | m_k, P_k^{-1}) + c_k,
        c_k = E[log pi_k] + 1/2 (psi_d(nu_k / 2) + d log 2 - d log nu_k - d / beta_k),

    with ``P_k = nu_k W_k = covariances_k^{-1}`` and ``psi_d(a) = sum_{i<d}
    digamma(a - i/2)``: a Gaussian log-density plus a per-component constant.
    One fused pass (``fused_step`` of the covariance model, with ``c_k`` in
    the place of the log-weights) gives ``sum_i log sum_k exp(rho_ik)`` and the
    responsibility-weighted counts ``N_k``, means ``xbar_k`` and centred
    scatters ``S_k``, from which the M-step updates q(pi) and q(mu, Lambda)
    by scikit-learn's formulas.

    **The ELBO.** For any ``q(z)``, ``ELBO = sum_i sum_k q_ik (rho_ik - log
    q_ik) - KL(q(pi, mu, Lambda) || p(pi, mu, Lambda))``. Maximised over
    ``q(z)`` (at ``q_ik`` proportional to ``exp(rho_ik)``) the first sum is
    ``sum_i log sum_k exp(rho_ik)``, so the ELBO of a posterior ``q(params)`` is::

        ELBO = sum_i log sum_k exp(rho_ik) - KL(q(pi) || p(pi))
               - sum_k KL(q(mu_k, Lambda_k) || p(mu_k, Lambda_k)),

    with the KLs in closed form: a Dirichlet, or a Beta per stick (Beta(1,
    gamma) prior; the truncated stick-breaking leaves the mass beyond the
    K-th stick unused), and Normal-Wishart terms (see
    ``kl_normal_wishart``). Coordinate ascent (the E-step, then the
    M-step) cannot decrease it. scikit-learn's covariance types are
    restrictions of the Wishart family: 'diag' and 'spherical' keep ``W_k``
    diagonal or a multiple of the identity (a Wishart whose expectation is
    diagonal, as scikit-learn's E-step and bound use), and 'tied' gives every
    component its own Lambda_k with one shared ``q(Lambda)`` (hence
    scikit-learn's ``nu = nu_0 + N / K`` and its K Wishart normalisers); in
    each case the M-step is the exact maximiser within the family.
    ``reg_covar`` (and scikit-learn's ``10 eps`` added to ``N_k``) move the
    update off that maximiser, by ``KL(q_used || q_exact)`` in the ELBO; each
    M-step computes that and the driver allows the next ELBO to fall by that
    much, and no more.

    ``fit`` on a Dask array is not supported (a ValueError says so).
    ``score_samples``, ``predict`` and ``predict_proba`` use ``rho_ik`` (as
    scikit-learn does), not the plug-in density of ``weights_``, ``means_``
    and ``covariances_``.

    References
    ----------
    Bishop (2006), "Pattern recognition and machine learning", section 10.2;
    Blei and Jordan (2006), "Variational inference for Dirichlet process
    mixtures", Bayesian Analysis 1(1).

    Examples
    --------
    >>> from emlab.bayesian_mixture import BayesianGaussianMixture
    >>> from emlab.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> bgm = BayesianGaussianMixture(n_components=5, random_state=0, max_iter=500).fit(X)
    >>> bgm.means_.shape
    (5, 4)
    >>> bool(abs(bgm.weights_.sum() - 1) < 1e-12)
    True
    """

    _estimator_type = "density_estimator"

    def __init__(self, *, n_components=1, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans",
                 weight_concentration_prior_type="dirichlet_process",
                 weight_concentration_prior=None, mean_precision_prior=None, mean_prior=None,
                 degrees_of_freedom_prior=None, covariance_prior=None, random_state=None,
                 warm_start=False, verbose=0, on_decrease="warn", verbose_interval=1):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.on_decrease = on_decrease
        self.verbose_interval = verbose_interval

    # ----------------------------------------------------------------------- checks

    def _check_settings(self):
        check_int(self.verbose, "verbose", low=0)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ValueError(f"warm_start must be True or False; got {self.warm_start!r}.")
        k = check_int(self.n_components, "n_components", low=1)
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_option(self.weight_concentration_prior_type, "weight_concentration_prior_type",
                     PRIOR_TYPES)
        check_em_options(self.max_iter, self.tol, self.on_decrease)
        check_int(self.n_init, "n_init", low=1)
        check_scalar(self.reg_covar, "reg_covar", low=0.0)
        check_option(self.init_params, "init_params", INIT_PARAMS)
        _positive_or_none(self.weight_concentration_prior, "weight_concentration_prior")
        _positive_or_none(self.mean_precision_prior, "mean_precision_prior")
        _positive_or_none(self.degrees_of_freedom_prior, "degrees_of_freedom_prior")
        return k

    def _resolve_prior(self, X, sample_weight):
        """The priors with their defaults (scikit-learn's), checked; sets the ``*_prior_`` attributes."""
        n, d = X.shape
        k = self.n_components
        w = sample_weight
        gamma = _positive_or_none(self.weight_concentration_prior, "weight_concentration_prior")
        beta0 = _positive_or_none(self.mean_precision_prior, "mean_precision_prior")
        dof0 = _positive_or_none(self.degrees_of_freedom_prior, "degrees_of_freedom_prior")
        if dof0 is not None and dof0 <= d - 1:
            raise ValueError(f"degrees_of_freedom_prior must be > n_features - 1 = {d - 1}; "
                             f"got {dof0}.")
        if self.mean_prior is None:
            mean0 = X.mean(axis=0, dtype=np.float64) if w is None else np.average(X, axis=0, weights=w)
        else:
            mean0 = np.asarray(self.mean_prior, dtype=np.float64)
            if mean0.shape != (d,) or not np.all(np.isfinite(mean0)):
                raise ValueError(f"mean_prior must be {d} finite numbers (one per feature); got "
                                 f"shape {mean0.shape}.")
        kind = self.covariance_type
        if self.covariance_prior is None:
            if w is None:
                cov = np.atleast_2d(np.cov(X.T))
            else:  # a row of weight m counts as m copies of it
                total = float(np.sum(w))
                if total <= 1.0:
                    raise ValueError("the sample weights sum to <= 1, so the default "
                                     "covariance_prior (the covariance of X) is undefined; "
                                     "pass covariance_prior.")
                centred = X - mean0
                cov = (centred.T * w) @ centred / (total - 1.0)
            scale0 = {"full": cov, "tied": cov, "diag": np.diag(cov).copy(),
                      "spherical": float(np.mean(np.diag(cov)))}[kind]
            positive = (np.linalg.eigvalsh(scale0)[0] > 0 if kind in ("full", "tied")
                        else np.all(np.asarray(scale0) > 0))
            if not positive:
                raise ValueError("the covariance of X (the default covariance_prior) is not positive "
                                 "definite: a feature is constant, or n_samples <= n_features. "
                                 "Pass covariance_prior.")
        elif kind == "spherical":
            scale0 = _positive_or_none(self.covariance_prior, "covariance_prior")
        else:
            scale0 = np.asarray(self.covariance_prior, dtype=np.float64)
            shape = (d, d) if kind in ("full", "tied") else (d,)
            if scale0.shape != shape or not np.all(np.isfinite(scale0)):
                raise ValueError(f"covariance_prior must have shape {shape} for covariance_type="
                                 f"{kind!r}, with finite values; got shape {scale0.shape}.")
            if kind == "diag":
                if np.any(scale0 <= 0):
                    raise ValueError("covariance_prior must be positive for covariance_type='diag'.")
            else:
                if not np.allclose(scale0, scale0.T, rtol=1e-10, atol=0):
                    raise ValueError("covariance_prior must be symmetric.")
                if np.linalg.eigvalsh(scale0)[0] <= 0:
                    raise ValueError("covariance_prior must be positive definite.")
        self.weight_concentration_prior_ = 1.0 / k if gamma is None else gamma
        self.mean_precision_prior_ = 1.0 if beta0 is None else beta0
        self.mean_prior_ = mean0
        self.degrees_of_freedom_prior_ = float(d) if dof0 is None else dof0
        self.covariance_prior_ = scale0
        return {"weight_concentration": self.weight_concentration_prior_,
                "mean_precision": self.mean_precision_prior_, "mean": mean0,
                "dof": self.degrees_of_freedom_prior_, "covariance": scale0}

    def _check_fit_X(self, X, sample_weight):
        self._check_settings()
        if is_dask_array(X) or is_dask_array(sample_weight):
            raise ValueError("BayesianGaussianMixture.fit does not take Dask arrays; use "
                             "emlab.GaussianMixture, or gather X into memory.")
        X = check_array(X, min_samples=2, keep_float32=True)
        check_scale(X)
        if X.shape[0] < self.n_components:
            raise ValueError(f"n_components={self.n_components} must be <= n_samples="
                             f"{X.shape[0]}.")
        return X, check_sample_weight(sample_weight, X.shape[0])

    def _check_X(self, X):
        check_is_fitted(self, "weights_")
        if is_dask_array(X):
            raise ValueError("BayesianGaussianMixture does not take Dask arrays.")
        return check_array(X, estimator=type(self).__name__, n_features=self.n_features_in_,
                           keep_float32=True)

    # ----------------------------------------------------------------------- fitting

    def fit(self, X, y=None, sample_weight=None, *, labels=None):
        """Fit the variational posterior by coordinate ascent. ``y`` is ignored. Returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            A row of weight ``m`` counts as ``m`` copies of it (scikit-learn
            has no sample weights).
        labels : array-like of shape (n_samples,), optional
            Partial labels (-1: unknown), as :meth:`emlab.GaussianMixture.fit`:
            a labelled row's ``q(z_i)`` is a point mass at its component, and
            the ELBO (still exact, and still guarded) counts it so.
        """
        X, sample_weight = self._check_fit_X(X, sample_weight)
        self._fit(X, sample_weight, labels=check_labels(labels, X.shape[0],
                                                        self._check_settings(), "labels"))
        return self

    def fit_predict(self, X, y=None, sample_weight=None, *, labels=None):
        """Fit, then label X (the same as ``fit(X).predict(X)``)."""
        X, sample_weight = self._check_fit_X(X, sample_weight)
        self._fit(X, sample_weight, labels=check_labels(labels, X.shape[0],
                                                        self._check_settings(), "labels"))
        return self._log_prob_resp(X)[1].argmax(axis=1)

    def _fit(self, X, sample_weight=None, resp=None, labels=None):
        """Fit; ``resp`` (private, for cross-checks) gives the starting responsibilities."""
        k = self._check_settings()
        warm = self.warm_start and hasattr(self, "weights_")
        if warm and (self.n_features_in_ != X.shape[1] or self.covariance_type != self._fitted[0]
                     or self.weight_concentration_prior_type != self._fitted[1]):
            raise ValueError("warm_start needs X with the fitted number of features, the fitted "
                             "covariance_type and weight_concentration_prior_type; set "
                             "warm_start=False to start afresh.")
        prior = self._resolve_prior(X, sample_weight)
        model = _VariationalEM(k, self.covariance_type, self.weight_concentration_prior_type,
                               check_scalar(self.reg_covar, "reg_covar"), prior, self.init_params,
                               sample_weight, labels)
        init = None
        if warm:
            init = self._params()
        elif resp is not None:
            resp = np.asarray(resp, dtype=np.float64)
            if resp.shape != (X.shape[0], k):
                raise ValueError(f"resp must have shape {(X.shape[0], k)}; got {resp.shape}.")
            init = model.params_from_resp(X, resp)
        result = fit_em(model, X, n_init=1 if init is not None else self.n_init,
                        max_iter=self.max_iter, tol=self.tol, init=init,
                        random_state=check_random_state(self.random_state),
                        on_decrease=self.on_decrease, decrease_rtol=decrease_rtol_for(X),
                        verbose=self.verbose, verbose_interval=self.verbose_interval)
        self._set_fitted(result.params, X.shape[1], X.dtype)
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bounds_ = result.lower_bounds
        self.lower_bound_ = float(result.lower_bounds[-1])
        return self

    def _set_fitted(self, params, n_features, dtype=np.float64):
        """The fitted attributes; those in data units (means, covariances, precisions) and the
        weights in ``dtype``, float32 for float32 X as in scikit-learn (computed in float64)."""
        self.weight_concentration_ = params.weight_concentration
        self.mean_precision_ = params.mean_precision
        self.means_ = params.means.astype(dtype, copy=False)
        self.degrees_of_freedom_ = params.degrees_of_freedom
        self.covariances_ = params.covariances.astype(dtype, copy=False)
        self.precisions_cholesky_ = params.precisions_cholesky.astype(dtype, copy=False)
        self.precisions_ = MODELS[self.covariance_type].precisions(
            params.precisions_cholesky).astype(dtype, copy=False)
        self.weights_ = _weights_from_concentration(
            params.weight_concentration, self.weight_concentration_prior_type).astype(dtype,
                                                                                      copy=False)
        self.n_features_in_ = n_features
        self._fitted = (self.covariance_type, self.weight_concentration_prior_type)

    def _params(self):
        f64 = np.float64
        return VariationalParams(self.weight_concentration_, self.mean_precision_,
                                 self.means_.astype(f64), self.degrees_of_freedom_,
                                 self.covariances_.astype(f64),
                                 self.precisions_cholesky_.astype(f64))

    # ----------------------------------------------------------------------- prediction

    def _log_prob_resp(self, X):
        """``log sum_k exp(rho_ik)`` (n,) and the responsibilities (n, K)."""
        covariance_type, prior_type = self._fitted
        model = MODELS[covariance_type]
        params = self._params()
        constants = _VariationalEM(self.means_.shape[0], covariance_type, prior_type, 0.0, None,
                                   "kmeans").log_constants(params)
        rho = model.log_gaussian(X, params.means, params.precisions_cholesky) + constants
        log_norm = np.empty(X.shape[0])
        resp = np.empty_like(rho)
        with _config.threads_for(rho.size * 16):
            log_normalize(rho, _config.CHUNK_ROWS, log_norm, resp)
        return log_norm, resp

    def score_samples(self, X):
        """``log sum_k exp(rho_ik)`` of each row (scikit-learn's ``score_samples``), shape (n_samples,)."""
        return self._log_prob_resp(self._check_X(X))[0]

    def score(self, X, y=None):
        """Mean of :meth:`score_samples` over the rows of X."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X):
        """Responsibilities ``q(z_i = k)``, shape (n_samples, n_components)."""
        return self._log_prob_resp(self._check_X(X))[1]

    def predict(self, X):
        """The component of highest responsibility of each row, shape (n_samples,)."""
        return self._log_prob_resp(self._check_X(X))[1].argmax(axis=1)

    def sample(self, n_samples=1):
        """Draw samples from the mixture of ``weights_``, ``means_`` and ``covariances_``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Grouped by component, as in scikit-learn.
        y : ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "weights_")
        n_samples = check_int(n_samples, "n_samples", low=1)
        rng = check_random_state(self.random_state)
        params = MixtureParams(self.weights_, self.means_, self.covariances_,
                               self.precisions_cholesky_, self._fitted[0])
        counts = rng.multinomial(n_samples, params.weights)
        chol = np.linalg.cholesky(params.full_covariances())
        d = params.means.shape[1]
        X = np.vstack([params.means[k] + rng.standard_normal((c, d)) @ chol[k].T
                       for k, c in enumerate(counts)])
        return X, np.repeat(np.arange(params.n_components), counts)
