"""The four covariance models of a Gaussian mixture: 'full', 'tied', 'diag', 'spherical'.

Everything that depends on the covariance model lives here, one class per
model with the same methods, so the estimator and the EM loop never branch on
the model's name. Shapes follow scikit-learn:

============  =====================  ==========================================
model         ``covariances``        ``precisions_cholesky``
============  =====================  ==========================================
'full'        (K, d, d)              (K, d, d), upper triangular U_k, P_k = U_k U_k^T
'tied'        (d, d)                 (d, d), shared by every component
'diag'        (K, d)                 (K, d), 1 / sigma_kj
'spherical'   (K,)                   (K,), 1 / sigma_k
============  =====================  ==========================================

Second-moment statistics are always centred: accumulated about the current
means and corrected about the new ones (see ``weighted_scatter``).
"""

import math

import numpy as np
from scipy.special import gammaln, multigammaln

from . import _config
from ._kernels.families import weighted_diag_moments, weighted_diag_moments_numpy
from ._kernels.gaussian import invert_lower, log_gaussian_diag, log_gaussian_full
from ._kernels.mixture import diag_step_kernel, em_step_full, weighted_scatter
from .exceptions import DegenerateCovarianceError

NO_WEIGHTS = np.empty(0)  # what the fused kernels take for "no sample weights"
COLLAPSE_HINT = "Increase reg_covar, or reduce n_components."


def ridge_deficit(counts, eigenvalues, reg_covar):
    """``max Q - Q`` caused by adding ``reg_covar`` to maximising covariances.

    For a covariance shared by a total responsibility ``c`` whose maximiser has
    eigenvalues ``lambda_j``, using ``lambda_j + eps`` instead costs

        c / 2 * sum_j [log(1 + eps / lambda_j) - eps / (lambda_j + eps)] >= 0

    of Q (infinite if some ``lambda_j <= 0``: Q is then unbounded above).
    ``counts`` has one entry per row of ``eigenvalues``.
    """
    if reg_covar == 0.0 or len(counts) == 0:
        return 0.0
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.size and lam.min() > 0:  # the usual case, once an iteration: without np.where's masks
        terms = np.log1p(reg_covar / lam) - reg_covar / (lam + reg_covar)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(lam > 0, np.log1p(reg_covar / np.where(lam > 0, lam, 1.0))
                             - reg_covar / (lam + reg_covar), np.inf)
    return float(np.sum(0.5 * np.asarray(counts) * terms.sum(axis=1)))


def _lower_cholesky(covs):
    """The lower Cholesky factors of a stack (..., d, d), or None where one is not a positive
    definite factor (LAPACK failed, a NaN, a non-positive diagonal)."""
    try:
        lower = np.linalg.cholesky(covs)
    except np.linalg.LinAlgError:
        return None
    if not np.isfinite(lower).all() or (np.diagonal(lower, axis1=-2, axis2=-1) <= 0).any():
        return None
    return lower


def cholesky_precisions(covs, label_of):
    """Upper-triangular U_k with inv(covs[k]) = U_k U_k^T for a stack (K, d, d), or a
    DegenerateCovarianceError naming ``label_of(k)`` for the first k that has none.

    One stacked LAPACK factorisation (numpy runs the same routine per matrix,
    so the factors are those of K separate calls) and the inverses by
    ``invert_lower``. Only where the stack fails are the matrices factorised one
    at a time, to find the one to name. This was the per-iteration M-step's
    largest Python cost at small N: one call instead of K.
    """
    covs = np.asarray(covs, dtype=np.float64)
    lower = _lower_cholesky(covs)
    if lower is None:
        bad = next((k for k, cov in enumerate(covs) if _lower_cholesky(cov) is None), 0)
        raise DegenerateCovarianceError(
            f"the covariance of {label_of(bad)} is not positive definite: it has collapsed onto "
            f"fewer than n_features + 1 = {covs.shape[-1] + 1} distinct points, or a feature is "
            f"constant within it. {COLLAPSE_HINT}"
        )
    inverse = np.empty_like(lower)
    for k in range(lower.shape[0]):
        invert_lower(lower[k], inverse[k])
    return np.ascontiguousarray(np.swapaxes(inverse, 1, 2))


def _cholesky_precision(cov, label):
    """:func:`cholesky_precisions` of one matrix (d, d), naming ``label``."""
    return cholesky_precisions(cov[None], lambda _: label)[0]


def _check_positive_variances(variances, label_of):
    variances = np.asarray(variances)
    if variances.size == 0 or variances.min() > 0:  # all positive (a NaN fails, found below)
        return
    bad = np.flatnonzero(~(variances > 0).all(axis=-1).reshape(-1))
    if bad.size:
        raise DegenerateCovarianceError(
            f"the variance of {label_of(int(bad[0]))} is not positive: it has collapsed onto a "
            f"single point, or a feature is constant within it. {COLLAPSE_HINT}"
        )


def _fused(kernel, X, means, factors, log_weights, sample_weight, second_shape):
    """One fused pass: ``(loglik, nk, sums, second)`` with ``sums`` and ``second`` about ``means``.

    The kernel works in X's precision: float32 X is fitted with float32 tiles
    (the means and factors rounded to float32, the log-densities, exponentials
    and each tile's sums in float32) and float64 accumulators across tiles.
    Its statistics are then about the rounded means ``c``, and are moved here
    to ``means`` exactly: with ``e = c - means``, ``sums + nk e`` and
    ``second + sums e^T + e sums^T + nk e e^T``.
    """
    n, d = X.shape
    k = means.shape[0]
    loglik = np.empty(1)
    nk = np.empty(k)
    sums = np.empty((k, d))
    second = np.empty(second_shape)
    per_component = math.prod(second_shape[1:])
    floats = k * (1 + d + per_component)
    centres = np.ascontiguousarray(means, dtype=X.dtype)
    args = (X, centres, np.ascontiguousarray(factors, dtype=X.dtype), log_weights,
            NO_WEIGHTS if sample_weight is None else sample_weight, _config.n_blocks(n, floats),
            loglik, nk, sums, second)
    work = n * k * max(d, per_component)
    if work < _config.PARALLEL_MIN_WORK:
        kernel(*args)  # the serial twin (full_step_kernel, diag_step_kernel): no threads to set
    else:
        with _config.threads_for(work):
            kernel(*args)
    if X.dtype != np.float64:
        e = centres - means
        if second.ndim == 3:
            second += (sums[:, :, None] * e[:, None, :] + e[:, :, None] * sums[:, None, :]
                       + nk[:, None, None] * e[:, :, None] * e[:, None, :])
        else:
            second += 2.0 * sums * e + nk[:, None] * e * e
        sums += nk[:, None] * e
    return loglik[0], nk, sums, second


class Full:
    """One full covariance matrix per component."""

    name = "full"

    def shape(self, k, d):
        return (k, d, d)

    def n_parameters(self, k, d):
        """Free parameters of the covariances."""
        return k * d * (d + 1) // 2

    def precision_cholesky(self, cov):
        return cholesky_precisions(cov, "component {}".format)

    def precisions(self, pc):
        return pc @ np.swapaxes(pc, -1, -2)

    def from_precisions(self, precisions):
        cov = np.linalg.inv(precisions)
        return 0.5 * (cov + np.swapaxes(cov, -1, -2))

    def check_precisions(self, p, name):
        if not np.allclose(p, np.swapaxes(p, -1, -2), rtol=1e-10, atol=1e-12 * np.abs(p).max()):
            raise ValueError(f"{name} must be symmetric.")
        eig = np.linalg.eigvalsh(p.reshape((-1,) + p.shape[-2:]))[:, 0]
        if np.any(eig <= 0):
            where = f"[{int(np.argmax(eig <= 0))}]" if p.ndim == 3 else ""
            raise ValueError(f"{name}{where} is not positive definite.")

    def _lower(self, pc, k):
        return np.ascontiguousarray(np.swapaxes(pc, -1, -2))

    def log_gaussian(self, X, means, pc):
        n, d = X.shape
        k = means.shape[0]
        out = np.empty((n, k))
        with _config.threads_for(n * k * d * d):
            log_gaussian_full(X, np.ascontiguousarray(means), self._lower(pc, k),
                              _config.CHUNK_ROWS, out)
        return out

    def fused_step(self, X, means, pc, log_weights, sample_weight=None):
        k, d = means.shape
        return _fused(em_step_full, X, means, self._lower(pc, k), log_weights, sample_weight,
                      (k, d, d))

    def raw_stats(self, X, resp, centers):
        n, d = X.shape
        k = resp.shape[1]
        nk, sums, scatter = np.empty(k), np.empty((k, d)), np.empty((k, d, d))
        with _config.threads_for(n * k * d * d):
            weighted_scatter(X, np.ascontiguousarray(resp), np.ascontiguousarray(centers),
                             _config.n_blocks(n, k * (1 + d + d * d)), _config.CHUNK_ROWS,
                             nk, sums, scatter)
        return nk, sums, scatter

    def centre(self, nk, shift, second):
        """Second moments about ``centers + shift`` from those about ``centers``."""
        return second - nk[:, None, None] * shift[:, :, None] * shift[:, None, :]

    # -- the conjugate prior (normal-inverse-Wishart; see mixture.resolve_prior) --

    def add_outer(self, second, vectors, coefs):
        """``second[k] + coefs[k] * v_k v_k^T``."""
        return second + coefs[:, None, None] * vectors[:, :, None] * vectors[:, None, :]

    def default_scale(self, data_cov, k, d):
        return data_cov / k ** (2.0 / d)

    def prior_terms(self, nk, second, scale, dof, live):
        """Counts and second moments whose ML covariances are the MAP covariances."""
        d = second.shape[-1]
        return nk + dof + d + 2, second + scale

    def log_prior_covariances(self, cov, pc, scale, dof, live):
        """Sum over the live components of log IW(Sigma_k | scale, dof)."""
        return sum(_log_inverse_wishart(pc[k], scale, dof) for k in np.flatnonzero(live))

    def covariances(self, nk, second, reg, live, previous):
        """Maximising covariances plus ``reg``; returns (covariances, ridge deficit)."""
        d = second.shape[-1]
        ridge = reg * np.eye(d)
        if live.size == nk.shape[0]:  # every component live (the usual case): no index copies
            exact = second / nk[:, None, None]
            return exact + ridge, ridge_deficit(nk, np.linalg.eigvalsh(exact), reg)
        cov = np.array(previous, dtype=np.float64, copy=True) if previous is not None \
            else np.zeros_like(second)
        exact = second[live] / nk[live, None, None]
        deficit = ridge_deficit(nk[live], np.linalg.eigvalsh(exact), reg) if live.size else 0.0
        cov[live] = exact + ridge
        return cov, deficit

    def smallest_variance(self, cov, reg):
        return np.linalg.eigvalsh(cov)[:, 0] - reg

    def held_up_label(self, k):
        return f"component {k}"

    def as_full(self, cov, k, d):
        return np.asarray(cov)


class Tied(Full):
    """One full covariance matrix shared by all components."""

    name = "tied"

    def shape(self, k, d):
        return (d, d)

    def n_parameters(self, k, d):
        return d * (d + 1) // 2

    def precision_cholesky(self, cov):
        return _cholesky_precision(cov, "the tied covariance")

    def _lower(self, pc, k):
        return np.ascontiguousarray(np.broadcast_to(pc.T, (k,) + pc.shape))

    def prior_terms(self, nk, second, scale, dof, live):
        # one inverse-Wishart for the shared covariance, one normal prior per mean: spread the
        # prior's scale and extra counts over the live components, whose sum the M-step takes
        d = second.shape[-1]
        m = max(live.size, 1)
        return nk + (m + dof + d + 1) / m, second + scale / m

    def log_prior_covariances(self, cov, pc, scale, dof, live):
        return _log_inverse_wishart(pc, scale, dof)

    def covariances(self, nk, second, reg, live, previous):
        d = second.shape[-1]
        total = nk[live].sum()
        exact = second[live].sum(axis=0) / total
        deficit = ridge_deficit([total], np.linalg.eigvalsh(exact)[None], reg)
        return exact + reg * np.eye(d), deficit

    def smallest_variance(self, cov, reg):
        return np.linalg.eigvalsh(cov)[:1] - reg

    def held_up_label(self, k):
        return "the tied covariance"

    def as_full(self, cov, k, d):
        return np.broadcast_to(cov, (k, d, d)).copy()


class Diag:
    """One diagonal covariance matrix per component (a variance per feature)."""

    name = "diag"

    def shape(self, k, d):
        return (k, d)

    def n_parameters(self, k, d):
        return k * d

    def precision_cholesky(self, cov):
        _check_positive_variances(cov, lambda k: f"component {k}")
        return 1.0 / np.sqrt(cov)

    def precisions(self, pc):
        return pc**2

    def from_precisions(self, precisions):
        return 1.0 / precisions

    def check_precisions(self, p, name):
        if np.any(p <= 0):
            raise ValueError(f"{name} must be positive.")

    def _factors(self, pc, k, d):
        return np.ascontiguousarray(pc, dtype=np.float64)

    def log_gaussian(self, X, means, pc):
        n, d = X.shape
        k = means.shape[0]
        out = np.empty((n, k))
        with _config.threads_for(n * k * d):
            log_gaussian_diag(X, np.ascontiguousarray(means), self._factors(pc, k, d),
                              _config.CHUNK_ROWS, out)
        return out

    def fused_step(self, X, means, pc, log_weights, sample_weight=None):
        k, d = means.shape
        return _fused(diag_step_kernel(X.shape[0] * k * d), X, means, self._factors(pc, k, d),
                      log_weights, sample_weight, (k, d))

    def raw_stats(self, X, resp, centers):
        k = resp.shape[1]
        nk = resp.sum(axis=0)
        n, d = X.shape
        sums, sq = np.empty((k, d)), np.empty((k, d))
        if n * k * d < _config.PARALLEL_MIN_WORK:  # NumPy: no kernel to compile for small work
            weighted_diag_moments_numpy(X, resp, np.asarray(centers, dtype=np.float64), sums, sq)
            return nk, sums, sq
        with _config.threads_for(n * k * d):
            weighted_diag_moments(X, np.ascontiguousarray(resp),
                                  np.ascontiguousarray(centers, dtype=np.float64),
                                  _config.n_blocks(n, 2 * k * d), _config.CHUNK_ROWS, sums, sq)
        return nk, sums, sq

    def centre(self, nk, shift, second):
        return second - nk[:, None] * shift**2

    def add_outer(self, second, vectors, coefs):
        return second + coefs[:, None] * vectors**2

    def default_scale(self, data_cov, k, d):
        return np.diag(data_cov) / k ** (2.0 / d)

    def prior_terms(self, nk, second, scale, dof, live):
        # an inverse-gamma(dof / 2, scale_j / 2) prior on each variance
        return nk + dof + 3, second + scale

    def log_prior_covariances(self, cov, pc, scale, dof, live):
        terms = _log_inverse_gamma(np.asarray(cov), dof / 2.0, np.asarray(scale) / 2.0)
        return float(np.sum(terms[live]))

    def covariances(self, nk, second, reg, live, previous):
        if live.size == nk.shape[0]:  # every component live: no index copies
            exact = second / nk[:, None]
            return exact + reg, ridge_deficit(nk, exact, reg)
        cov = np.array(previous, dtype=np.float64, copy=True) if previous is not None \
            else np.zeros_like(second)
        exact = second[live] / nk[live, None]
        deficit = ridge_deficit(nk[live], exact, reg)
        cov[live] = exact + reg
        return cov, deficit

    def smallest_variance(self, cov, reg):
        return np.min(cov, axis=1) - reg

    def held_up_label(self, k):
        return f"component {k}"

    def as_full(self, cov, k, d):
        return np.array([np.diag(c) for c in cov])


class Spherical(Diag):
    """One variance per component, the same for every feature."""

    name = "spherical"

    def shape(self, k, d):
        return (k,)

    def n_parameters(self, k, d):
        return k

    def precision_cholesky(self, cov):
        _check_positive_variances(np.asarray(cov)[:, None], lambda k: f"component {k}")
        return 1.0 / np.sqrt(cov)

    def _factors(self, pc, k, d):
        return np.ascontiguousarray(np.broadcast_to(np.asarray(pc, dtype=np.float64)[:, None], (k, d)))

    def default_scale(self, data_cov, k, d):
        return np.trace(data_cov) / d / k ** (2.0 / d)

    def prior_terms(self, nk, second, scale, dof, live):
        # an inverse-gamma(dof / 2, scale / 2) prior on each variance; the M-step divides the
        # summed second moments by d * counts
        d = second.shape[1]
        return nk + 1 + (dof + 2) / d, second + scale / d

    def covariances(self, nk, second, reg, live, previous):
        d = second.shape[1]
        cov = np.array(previous, dtype=np.float64, copy=True) if previous is not None \
            else np.zeros(second.shape[0])
        exact = second[live].sum(axis=1) / (d * nk[live])
        deficit = ridge_deficit(d * nk[live], exact[:, None], reg)
        cov[live] = exact + reg
        return cov, deficit

    def smallest_variance(self, cov, reg):
        return np.asarray(cov) - reg

    def as_full(self, cov, k, d):
        return np.asarray(cov)[:, None, None] * np.eye(d)


def _log_inverse_wishart(pc, scale, dof):
    """log IW(Sigma | scale, dof) from the precision Cholesky factor U of Sigma (inv(Sigma) = U U^T)."""
    d = scale.shape[0]
    log_det_sigma = -2.0 * np.sum(np.log(np.diag(pc)))
    trace = float(np.sum((scale @ pc) * pc))  # tr(scale U U^T)
    return (0.5 * dof * np.linalg.slogdet(scale)[1] - 0.5 * dof * d * np.log(2.0)
            - multigammaln(0.5 * dof, d) - 0.5 * (dof + d + 1) * log_det_sigma - 0.5 * trace)


def _log_inverse_gamma(x, shape, scale):
    """log density of the inverse-gamma distribution (shape alpha, scale beta) at x."""
    return shape * np.log(scale) - gammaln(shape) - (shape + 1) * np.log(x) - scale / x


MODELS = {m.name: m for m in (Full(), Tied(), Diag(), Spherical())}
