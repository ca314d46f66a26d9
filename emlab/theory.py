"""The quantities that EM's theory is stated in, for a Gaussian mixture.

With responsibilities ``r_ik = p(z_i = k | x_i, theta)``:

* ``log_likelihood(X, theta) = sum_i log sum_k w_k N(x_i | mu_k, Sigma_k)``
* ``q_function(X, theta_new, theta_old) = sum_i sum_k r_ik(theta_old) [log w'_k + log N(x_i | mu'_k, Sigma'_k)]``
* ``entropy(X, theta) = - sum_i sum_k r_ik log r_ik``
* ``kl_posteriors(X, theta_a, theta_b) = sum_i KL(p(z_i | x_i, theta_a) || p(z_i | x_i, theta_b))``

so that, for any two parameter values (the identity of the chapter "Why EM climbs"),

    log_likelihood(X, t') - log_likelihood(X, t) = q_function(X, t', t) - q_function(X, t, t) + kl_posteriors(X, t, t').

``em_step`` performs one EM iteration. All sums are totals over the samples (not means). Every function takes a
:class:`~emlab.mixture.MixtureParams` or a fitted
:class:`~emlab.mixture.GaussianMixture`, and uses the same kernels as the
estimator's E-step.
"""

import numpy as np
from scipy.special import xlogy

from ._validation import check_array
from .mixture import MixtureParams, as_params, log_prob_resp, m_step, weighted_log_prob


def _prepare(X, params):
    params = as_params(params)
    X = check_array(X, n_features=params.means.shape[1])
    return X, params


def log_likelihood(X, params):
    """Total log-likelihood ``sum_i log p(x_i | theta)``."""
    X, params = _prepare(X, params)
    return float(np.sum(log_prob_resp(X, params)[0]))


def responsibilities(X, params):
    """``p(z_i = k | x_i, theta)``, shape (n_samples, n_components)."""
    X, params = _prepare(X, params)
    return log_prob_resp(X, params)[1]


def q_function(X, params_new, params_old):
    """``Q(theta_new | theta_old)``: the expected complete-data log-likelihood.

    The expectation is over the latent labels under ``p(z | x, theta_old)``.
    A term with zero responsibility contributes zero, even where the new
    weight is zero (``0 * log 0 = 0``).
    """
    X, params_old = _prepare(X, params_old)
    params_new = as_params(params_new)
    resp = log_prob_resp(X, params_old)[1]
    log_joint = weighted_log_prob(X, params_new)
    with np.errstate(invalid="ignore"):
        return float(np.sum(np.where(resp > 0, resp * log_joint, 0.0)))


def entropy(X, params):
    """Total entropy of the posterior over labels, ``- sum_i sum_k r_ik log r_ik``."""
    resp = responsibilities(X, params)
    return float(-np.sum(xlogy(resp, resp)))


def kl_posteriors(X, params_a, params_b):
    """``sum_i KL(p(z_i | x_i, theta_a) || p(z_i | x_i, theta_b))``, which is >= 0.

    Computed in log space from the two models' log-joints, so it stays accurate
    when responsibilities underflow.
    """
    X, params_a = _prepare(X, params_a)
    params_b = as_params(params_b)
    log_norm_a, resp_a = log_prob_resp(X, params_a)
    log_norm_b, _ = log_prob_resp(X, params_b)
    log_post_a = weighted_log_prob(X, params_a) - log_norm_a[:, None]
    log_post_b = weighted_log_prob(X, params_b) - log_norm_b[:, None]
    with np.errstate(invalid="ignore"):
        terms = np.where(resp_a > 0, resp_a * (log_post_a - log_post_b), 0.0)
    return float(np.sum(terms))


def em_step(X, params, reg_covar=0.0):
    """One EM iteration from ``params``: the E-step's responsibilities, then the M-step.

    The M-step is the closed-form maximiser of ``Q(. | params)`` (plus
    ``reg_covar`` on the covariance diagonals, 0 by default), computed by the
    same kernels as :class:`~emlab.mixture.GaussianMixture`. Returns the new
    :class:`~emlab.mixture.MixtureParams`.
    """
    X, params = _prepare(X, params)
    return m_step(X, log_prob_resp(X, params)[1], reg_covar, previous=params).params


def random_params(X, n_components, random_state=None, scale=1.0):
    """Random parameters of a mixture for X: means at random rows, covariances around X's.

    Useful for checking identities at parameter values EM would never visit.
    ``scale`` multiplies the spread of the random covariances around X's own.
    """
    X = check_array(X)
    rng = np.random.default_rng(random_state)
    n, d = X.shape
    weights = rng.dirichlet(np.ones(n_components))
    means = X[rng.choice(n, n_components, replace=False)] + 0.1 * rng.standard_normal((n_components, d)) * X.std(axis=0)
    base = np.cov(X, rowvar=False).reshape(d, d)
    covariances = np.empty((n_components, d, d))
    for k in range(n_components):
        a = rng.standard_normal((d, d)) * scale
        covariances[k] = 0.5 * base + 0.5 * (a @ a.T) * np.mean(np.diag(base)) / d + 1e-3 * np.eye(d)
    return MixtureParams(weights, means, covariances)
