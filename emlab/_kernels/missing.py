"""The E-step of a diagonal Gaussian mixture with missing values (NaN), in one pass over X.

With a diagonal covariance the features are independent within a component,
so marginalising the missing ones out of ``N(x | mu_k, diag(v_k))`` leaves
the product over the observed ones, and the missing ones' conditional
distribution given the observed is their own marginal, ``N(mu_kj, v_kj)``:
no pattern of missing features needs a factorisation of its own, and a row's
NaNs are read where they are. For each row and component,

    log w_k + log p(x_o | k) = log w_k - 1/2 sum_{j observed} (log 2 pi + log v_kj
                                                                + (x_j - mu_kj)^2 / v_kj),

and the expected statistics about the current means add, for a missing
feature, a difference of 0 (its expectation is mu_kj) and a second moment of
``v_kj`` (its conditional variance). ``emlab._missing.expected_statistics``
does the same for any covariance, one pattern of missing features at a time
(a Cholesky factor and solves for each pattern and component).
"""

import math

import numpy as np
from numba import njit, prange

from .._config import CACHE, CHUNK_ROWS, ERROR_MODEL, FASTMATH, PARALLEL, serial_twin
from .gaussian import aligned_tile, load_tile_4x4, padded4
from .mixture import _tile_responsibilities, _tile_row_max, block_rows, sum_blocks

LOG_2PI = math.log(2.0 * math.pi)
TILE = 256  # rows per tile


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _coefficients(means, variances):
    """Each component's precisions ``1 / v_kj`` and offsets ``-(log 2 pi + log v_kj) / 2``."""
    n_components, d = means.shape
    precisions = np.empty((n_components, d))
    offsets = np.empty((n_components, d))
    for k in range(n_components):
        for j in range(d):
            precisions[k, j] = 1.0 / variances[k, j]
            offsets[k, j] = -0.5 * (LOG_2PI + math.log(variances[k, j]))
    return precisions, offsets


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _tile_log_prob(xt, rows, d, mu, precision, offset, log_weight, out):
    """``out[r] = log w + sum over the observed j of (offset_j - precision_j (x_jr - mu_j)^2 / 2)``
    for one component, the tile ``xt`` transposed (features x rows, NaN where missing).

    Selects, not branches, pick the observed values: which ones are missing is
    not predictable, and the loops over rows vectorise."""
    for r in range(rows):
        out[r] = log_weight
    for j in range(d):
        m, p, c = mu[j], 0.5 * precision[j], offset[j]
        for r in range(rows):
            x = xt[j, r]
            e = x - m
            t = c - p * e * e
            out[r] += t if x == x else 0.0


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _block_missing_step(X, start, stop, means, variances, precisions, offsets, log_weights,
                        sample_weight, acc_n, acc_s, acc_q):
    """``diag_missing_step``'s work on rows [start, stop), a tile of rows at a time; returns
    their log-likelihood. A function of its own so that the parallel kernel and its serial
    twin run the same compiled code."""
    n_components, d = means.shape
    xt = aligned_tile(padded4(d), TILE, np.float64, True)
    lp = aligned_tile(n_components, TILE, np.float64, False)
    top = aligned_tile(1, TILE, np.float64, False)[0]
    s = aligned_tile(1, TILE, np.float64, False)[0]
    total = 0.0
    for t0 in range(start, stop, TILE):
        rows = min(TILE, stop - t0)
        load_tile_4x4(X, t0, rows, xt, None)
        for k in range(n_components):
            _tile_log_prob(xt, rows, d, means[k], precisions[k], offsets[k], log_weights[k],
                           lp[k])
        _tile_row_max(lp, rows, n_components, top)
        part = _tile_responsibilities(lp, rows, n_components, top, s, sample_weight, t0, acc_n)
        if part == -np.inf:  # some row no component can produce
            return -np.inf
        total += part
        for k in range(n_components):
            for j in range(d):
                m, v = means[k, j], variances[k, j]
                s1 = s2 = 0.0
                for r in range(rows):
                    x = xt[j, r]
                    w = lp[k, r]
                    e = x - m
                    a = w * e
                    s1 += a if x == x else 0.0  # a missing value's expected difference is 0
                    s2 += a * e if x == x else w * v  # and its expected square v
                acc_s[k, j] += s1
                acc_q[k, j] += s2
    return total


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def diag_missing_step(X, means, variances, log_weights, sample_weight, n_blocks, loglik, nk,
                      sums, second):
    """The E-step's statistics of a diagonal mixture on X with NaN for missing values.

    Parameters
    ----------
    X : (n, d) float64, NaN where a value is missing (a row wholly missing
        has ``log p = log sum_k w_k = 0`` and responsibilities ``w_k``).
    means : (K, d) float64, the current means; the statistics are about them.
    variances : (K, d) float64, positive (spherical models repeat theirs).
    log_weights : (K,) float64, ``-inf`` allowed.
    sample_weight : (n,) float64, or empty for none.
    n_blocks : int, the fixed partition (``emlab._config.n_blocks``).
    loglik : (1,) out, the total (weighted) observed-data log-likelihood;
        ``-inf`` if some row no component can produce.
    nk : (K,) out, the (weighted) responsibilities' totals.
    sums : (K, d) out, ``sum_i r_ik E[x_ij - mu_kj | x_io]``.
    second : (K, d) out, ``sum_i r_ik E[(x_ij - mu_kj)^2 | x_io]``.

    The same numbers as ``emlab._missing.expected_statistics(..., diagonal=True)``
    up to rounding. Tiles of rows transposed as in the fused kernels
    (``emlab._kernels.mixture``), whose exponentials and responsibilities they
    share; each block's sums are added in block order, so the results do not
    depend on the number of threads.
    """
    n, d = X.shape
    n_components = means.shape[0]
    precisions, offsets = _coefficients(means, variances)
    acc_ll = np.zeros(n_blocks)
    acc_n = np.zeros((n_blocks, n_components))
    acc_s = np.zeros((n_blocks, n_components, d))
    acc_q = np.zeros((n_blocks, n_components, d))
    for b in prange(n_blocks):
        start, stop = block_rows(b, n_blocks, n, CHUNK_ROWS)
        acc_ll[b] = _block_missing_step(X, start, stop, means, variances, precisions, offsets,
                                        log_weights, sample_weight, acc_n[b], acc_s[b], acc_q[b])
    sum_blocks(acc_ll, loglik)
    sum_blocks(acc_n, nk)
    sum_blocks(acc_s, sums)
    sum_blocks(acc_q, second)


diag_missing_step_serial = serial_twin(diag_missing_step)  # for small work (see _config)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _block_log_prob(X, start, stop, means, precisions, offsets, log_weights, out):
    """``diag_missing_log_prob``'s work on rows [start, stop)."""
    n_components, d = means.shape
    xt = aligned_tile(padded4(d), TILE, np.float64, True)
    lp = aligned_tile(1, TILE, np.float64, False)[0]
    for t0 in range(start, stop, TILE):
        rows = min(TILE, stop - t0)
        load_tile_4x4(X, t0, rows, xt, None)
        for k in range(n_components):
            _tile_log_prob(xt, rows, d, means[k], precisions[k], offsets[k], log_weights[k], lp)
            for r in range(rows):
                out[t0 + r, k] = lp[r]


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def diag_missing_log_prob(X, means, variances, log_weights, n_blocks, out):
    """``out[i, k] = log w_k + log p(x_i,o | k)`` for a diagonal mixture, NaN marking the
    missing values of X (``diag_missing_step``'s log-densities)."""
    precisions, offsets = _coefficients(means, variances)
    for b in prange(n_blocks):
        start, stop = block_rows(b, n_blocks, X.shape[0], CHUNK_ROWS)
        _block_log_prob(X, start, stop, means, precisions, offsets, log_weights, out)


diag_missing_log_prob_serial = serial_twin(diag_missing_log_prob)
