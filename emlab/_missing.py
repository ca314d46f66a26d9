"""EM with missing values: marginal densities in the E-step, conditional expectations in the M-step.

Ghahramani and Jordan (1994), "Supervised learning from incomplete data via an
EM approach". For a row whose coordinates ``o`` are observed and ``m`` missing,
and component k with mean mu and covariance S:

* the E-step uses the marginal density of the observed part,
  ``log N(x_o | mu_o, S_oo)``, for the responsibilities and the likelihood;
* the M-step uses the expected complete-data statistics: the missing part is
  replaced by its conditional mean ``mu_m + S_mo S_oo^-1 (x_o - mu_o)``, and the
  conditional covariance ``S_mm - S_mo S_oo^-1 S_om`` is added to the scatter
  matrix's missing block.

Rows are grouped by their pattern of missing coordinates, so each pattern's
factorisations are done once per component and iteration, in NumPy. Diagonal
and spherical models need none (the missing part's conditional distribution
is its marginal): their E-step is one kernel pass that reads each row's NaNs
in place (:func:`diagonal_statistics`). Complete data never reach this module.
"""

import numpy as np
from scipy.linalg import cho_solve
from scipy.special import logsumexp

from . import _config
from ._covariance import NO_WEIGHTS
from ._kernels.missing import (
    diag_missing_log_prob,
    diag_missing_log_prob_serial,
    diag_missing_step,
    diag_missing_step_serial,
)

LOG_2PI = np.log(2.0 * np.pi)


def has_nan(X):
    """Whether X holds a NaN, without an n x d temporary (a pairwise sum is NaN if any entry is).

    The sum of finite values can only overflow to +-inf, and NaN only if it
    overflows both ways; then the caller takes the missing-value path, which
    is slower but still exact for complete data.
    """
    return bool(np.isnan(np.add.reduce(X, axis=None)))


def patterns(X):
    """``[(observed mask, row indices), ...]``, one entry per pattern of NaNs in X.

    The patterns come in ``np.unique(np.isnan(X), axis=0)``'s order, each
    row's mask packed into bits first (``np.packbits``: the first feature the
    highest bit, so the packed bytes order as the boolean rows do) and the
    packed rows sorted as byte strings; the rows of each pattern in increasing
    order. Measured on a million rows, 10% of values missing, this project's
    Intel machine: 0.92 -> 0.10 s at d = 3, 2.1 -> 0.13 s at d = 8 (the record
    sort of ``np.unique(..., axis=0)`` before), and one grouping pass instead
    of one scan of all rows per pattern.
    """
    missing = np.isnan(X)
    d = missing.shape[1]
    packed = np.ascontiguousarray(np.packbits(missing, axis=1))
    strings = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    codes, inverse = np.unique(strings, return_inverse=True)
    inverse = inverse.reshape(-1)
    masks = np.unpackbits(codes.view(np.uint8).reshape(-1, packed.shape[1]), axis=1,
                          count=d).astype(bool)
    order = np.argsort(inverse, kind="stable")  # rows grouped by pattern, each group ascending
    bounds = np.cumsum(np.bincount(inverse, minlength=masks.shape[0]))[:-1]
    return [(~mask, rows) for mask, rows in zip(masks, np.split(order, bounds))]


def _conditionals(cov, obs):
    """Cholesky of S_oo, and (B, C): the regression S_mo S_oo^-1 and the conditional covariance."""
    factor = (np.linalg.cholesky(cov[np.ix_(obs, obs)]), True)  # a clean lower triangle
    miss = ~obs
    if not miss.any():
        return factor, None, None
    s_om = cov[np.ix_(obs, miss)]
    regression = cho_solve(factor, s_om).T  # (|m|, |o|)
    conditional = cov[np.ix_(miss, miss)] - regression @ s_om
    return factor, regression, conditional


def _diagonal_arguments(X, params):
    """X (float64, C order), the means, the variances as (K, d) and the log-weights, for the
    diagonal kernels (``emlab._kernels.missing``)."""
    k, d = params.means.shape
    variances = np.broadcast_to(np.asarray(params.covariances, dtype=np.float64).reshape(k, -1),
                                (k, d))
    with np.errstate(divide="ignore"):
        log_w = np.log(params.weights)
    return (np.ascontiguousarray(X, dtype=np.float64),
            np.ascontiguousarray(params.means, dtype=np.float64),
            np.ascontiguousarray(variances), np.ascontiguousarray(log_w, dtype=np.float64))


def is_diagonal(params):
    """Whether the model's covariances are diagonal ('diag', 'spherical'): its E-step with
    missing values then needs no pattern of them (``emlab._kernels.missing``)."""
    return params.covariance_type in ("diag", "spherical")


def diagonal_statistics(X, params, sample_weight=None):
    """``expected_statistics(X, params, sample_weight, groups, diagonal=True)`` for a
    diagonal or spherical model, in one kernel pass over X that reads each row's NaNs
    where they are: no patterns, no factorisations (``emlab._kernels.missing``).
    Measured at N = 1e6, d = 8, K = 2, 10% of values missing (232 patterns), this
    project's Intel machine, 2 threads: a fit's iteration took 0.66-0.71 s by
    patterns; this pass takes 13-15 ms."""
    X, means, variances, log_w = _diagonal_arguments(X, params)
    n, d = X.shape
    k = means.shape[0]
    loglik, nk = np.empty(1), np.empty(k)
    sums, second = np.empty((k, d)), np.empty((k, d))
    weights = NO_WEIGHTS if sample_weight is None else np.ascontiguousarray(sample_weight,
                                                                            dtype=np.float64)
    work = n * k * d
    kernel = _config.parallel_or_serial(diag_missing_step, diag_missing_step_serial, work)
    with _config.threads_for(work):
        kernel(X, means, variances, log_w, weights, _config.n_blocks(n, k * (2 * d + 1)),
               loglik, nk, sums, second)
    return float(loglik[0]), nk, sums, second


def marginal_log_prob(X, params, groups=None, conditionals=None):
    """``log w_k + log N(x_o | mu_k,o, S_k,oo)`` for every row (its observed part), shape (n, K).

    If ``conditionals`` is a dict, it receives ``{(pattern, k): (regression,
    conditional covariance)}`` from the same factorisations, for the M-step.
    Diagonal models without ``conditionals`` take one kernel pass
    (``emlab._kernels.missing``) instead.
    """
    if conditionals is None and is_diagonal(params):
        X, means, variances, log_w = _diagonal_arguments(X, params)
        out = np.empty((X.shape[0], means.shape[0]))
        work = X.shape[0] * means.shape[0] * X.shape[1]
        kernel = _config.parallel_or_serial(diag_missing_log_prob, diag_missing_log_prob_serial,
                                             work)
        with _config.threads_for(work):
            kernel(X, means, variances, log_w, _config.n_blocks(X.shape[0], 1), out)
        return out
    full = params.full_covariances()
    with np.errstate(divide="ignore"):
        log_w = np.log(params.weights)
    out = np.empty((X.shape[0], params.n_components))
    for p, (obs, rows) in enumerate(groups if groups is not None else patterns(X)):
        x_o = X[np.ix_(rows, obs)]
        for k in range(params.n_components):
            (chol, _), regression, conditional = _conditionals(full[k], obs)
            if conditionals is not None:
                conditionals[p, k] = (regression, conditional)
            z = np.linalg.solve(chol, (x_o - params.means[k, obs]).T)  # chol is lower triangular
            log_det = 2.0 * np.sum(np.log(np.diag(chol)))
            out[rows, k] = log_w[k] - 0.5 * (obs.sum() * LOG_2PI + log_det + np.sum(z * z, axis=0))
    return out


def expected_statistics(X, params, sample_weight, groups, diagonal):
    """The E-step with missing values.

    Returns ``(loglik, nk, sums, second)``: the total observed-data
    log-likelihood, and the expected counts, sums and second moments about the
    current means (full (K, d, d) matrices, or their diagonals (K, d) when
    ``diagonal``), each row weighted by ``sample_weight`` (None: 1). Each
    pattern's covariance block is factorised once per component.
    """
    k_count, d = params.means.shape
    centers = params.means
    nk = np.zeros(k_count)
    sums = np.zeros((k_count, d))
    second = np.zeros((k_count, d, d))
    conditionals = {}
    log_prob = marginal_log_prob(X, params, groups, conditionals)
    log_norm = logsumexp(log_prob, axis=1)
    resp = np.exp(log_prob - log_norm[:, None])
    if sample_weight is not None:
        resp *= sample_weight[:, None]
        loglik = float(np.sum(sample_weight * log_norm))
    else:
        loglik = float(np.sum(log_norm))
    for p, (obs, rows) in enumerate(groups):
        miss = ~obs
        x = X[rows]
        for k in range(k_count):
            r = resp[rows, k]
            filled = x.copy()
            regression, conditional = conditionals[p, k]
            if regression is not None:
                filled[:, miss] = params.means[k, miss] + (x[:, obs] - params.means[k, obs]) @ regression.T
            diff = filled - centers[k]
            nk[k] += r.sum()
            sums[k] += r @ diff
            second[k] += (r[:, None] * diff).T @ diff
            if conditional is not None:
                second[k][np.ix_(miss, miss)] += r.sum() * conditional
    if diagonal:
        second = np.diagonal(second, axis1=1, axis2=2).copy()
    return loglik, nk, sums, second
