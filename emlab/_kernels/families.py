"""Log-densities and weighted sums of the non-Gaussian component families (emlab.families).

Each log-density kernel fills ``out`` (n, K) with ``log p(x_i | component k)``;
rows run in parallel over a fixed partition of ``chunk_rows``-row chunks. The
statistics kernels sum over rows into one accumulator per block of chunks and
add the blocks in block order, so results do not depend on the thread count.
Discrete data come in as float64 holding integers (counts, 0/1), validated by
the caller; symbols of categorical features as int64.
"""

import math

import numpy as np
from numba import njit, prange

from .._config import CACHE, ERROR_MODEL, FASTMATH, PARALLEL
from .mixture import block_rows, sum_blocks


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def log_bernoulli(X, log_p, log_q, chunk_rows, out):
    """``out[i, k] = sum_j x_ij log p_kj + (1 - x_ij) log(1 - p_kj)`` for 0/1 data.

    ``log_p`` and ``log_q`` (K, d) are ``log p`` and ``log(1 - p)``; either may be
    ``-inf`` (p = 0 or 1), and only the one the datum selects is read, so a
    probability of 0 or 1 gives ``-inf`` or 0, never NaN.
    """
    n, d = X.shape
    n_components = log_p.shape[0]
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for c in prange(n_chunks):
        for i in range(c * chunk_rows, min(n, (c + 1) * chunk_rows)):
            for k in range(n_components):
                s = 0.0
                for j in range(d):
                    s += log_p[k, j] if X[i, j] > 0.5 else log_q[k, j]
                out[i, k] = s


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def log_poisson(X, log_rate, rate_sum, chunk_rows, out):
    """``out[i, k] = sum_j x_ij log lambda_kj - lambda_kj - log(x_ij!)`` for counts.

    ``rate_sum[k] = sum_j lambda_kj``. A zero count adds nothing from
    ``log lambda`` (so a zero rate and a zero count give 0, not NaN).
    """
    n, d = X.shape
    n_components = log_rate.shape[0]
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for c in prange(n_chunks):
        for i in range(c * chunk_rows, min(n, (c + 1) * chunk_rows)):
            log_fact = 0.0
            for j in range(d):
                log_fact += math.lgamma(X[i, j] + 1.0)
            for k in range(n_components):
                s = 0.0
                for j in range(d):
                    x = X[i, j]
                    s += x * log_rate[k, j] if x > 0.0 else 0.0
                out[i, k] = s - rate_sum[k] - log_fact


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def log_exponential(X, rate, log_rate_sum, chunk_rows, out):
    """``out[i, k] = sum_j log lambda_kj - lambda_kj x_ij`` for x >= 0; ``log_rate_sum[k]``
    is ``sum_j log lambda_kj``."""
    n, d = X.shape
    n_components = rate.shape[0]
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for c in prange(n_chunks):
        for i in range(c * chunk_rows, min(n, (c + 1) * chunk_rows)):
            for k in range(n_components):
                s = 0.0
                for j in range(d):
                    s += rate[k, j] * X[i, j]
                out[i, k] = log_rate_sum[k] - s


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def log_categorical(S, log_p, chunk_rows, out):
    """``out[i, k] = sum_j log p_k[j, S_ij]``: ``S`` (n, d) int64 symbols, ``log_p`` (K, d, C)."""
    n, d = S.shape
    n_components = log_p.shape[0]
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for c in prange(n_chunks):
        for i in range(c * chunk_rows, min(n, (c + 1) * chunk_rows)):
            for k in range(n_components):
                s = 0.0
                for j in range(d):
                    s += log_p[k, j, S[i, j]]
                out[i, k] = s


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def weighted_sums(X, resp, n_blocks, chunk_rows, out):
    """``out[k, j] = sum_i resp[i, k] X[i, j]``, reproducible whatever the thread count."""
    n, d = X.shape
    n_components = resp.shape[1]
    acc = np.zeros((n_blocks, n_components, d))
    for b in prange(n_blocks):
        start, stop = block_rows(b, n_blocks, n, chunk_rows)
        for i in range(start, stop):
            for k in range(n_components):
                r = resp[i, k]
                if r != 0.0:
                    for j in range(d):
                        acc[b, k, j] += r * X[i, j]
    sum_blocks(acc, out)


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def categorical_counts(S, resp, n_blocks, chunk_rows, out):
    """``out[k, j, c] = sum_i resp[i, k] [S_ij = c]``: expected symbol counts per component."""
    n, d = S.shape
    n_components = resp.shape[1]
    n_symbols = out.shape[2]
    acc = np.zeros((n_blocks, n_components, d, n_symbols))
    for b in prange(n_blocks):
        start, stop = block_rows(b, n_blocks, n, chunk_rows)
        for i in range(start, stop):
            for k in range(n_components):
                r = resp[i, k]
                if r != 0.0:
                    for j in range(d):
                        acc[b, k, j, S[i, j]] += r
    sum_blocks(acc, out)


def weighted_diag_moments_numpy(X, resp, centers, sums, sqsums):
    """``weighted_diag_moments`` in NumPy, for work below PARALLEL_MIN_WORK (n K d).

    A first diagonal fit on small data (Iris) takes its first M-step from
    k-means' responsibilities here, so it compiles no kernel for it (1.9 s of
    compiling, measured), as ``mixture._weighted_scatter_numpy`` does for full
    covariances. ``einsum`` without ``optimize`` runs its own loops, not BLAS.
    """
    for k in range(resp.shape[1]):
        diff = X - centers[k]  # float64: centers are float64
        weighted = diff * resp[:, k, None]
        sums[k] = weighted.sum(axis=0)
        sqsums[k] = np.einsum("nj,nj->j", weighted, diff)


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def weighted_diag_moments(X, resp, centers, n_blocks, chunk_rows, sums, sqsums):
    """``sums[k, j] = sum_i r_ik (x_ij - c_kj)`` and ``sqsums[k, j] = sum_i r_ik (x_ij - c_kj)^2``.

    The diagonal models' statistics about ``centers`` (see
    ``mixture.weighted_scatter``); X may be float32 (widened as read).
    """
    n, d = X.shape
    n_components = resp.shape[1]
    acc_s = np.zeros((n_blocks, n_components, d))
    acc_q = np.zeros((n_blocks, n_components, d))
    for b in prange(n_blocks):
        start, stop = block_rows(b, n_blocks, n, chunk_rows)
        for i in range(start, stop):
            for k in range(n_components):
                r = resp[i, k]
                if r != 0.0:
                    for j in range(d):
                        dv = X[i, j] - centers[k, j]
                        rd = r * dv
                        acc_s[b, k, j] += rd
                        acc_q[b, k, j] += rd * dv
    sum_blocks(acc_s, sums)
    sum_blocks(acc_q, sqsums)


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def grouped_log_normalize(sub, n_mix, chunk_rows, log_norm, post):
    """Log-sum-exp over consecutive groups of ``n_mix`` columns, and the shares within them.

    ``sub`` (n, K * n_mix); ``log_norm[i, k] = log sum_m exp(sub[i, k * n_mix + m])``
    (``-inf`` for a group of ``-inf``); ``post`` (n, K * n_mix), if it has
    rows, ``exp(sub - log_norm)`` within each group (uniform for a group of ``-inf``).
    """
    n = sub.shape[0]
    n_groups = log_norm.shape[1]
    want_post = post.shape[0] > 0
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for c in prange(n_chunks):
        for i in range(c * chunk_rows, min(n, (c + 1) * chunk_rows)):
            for k in range(n_groups):
                base = k * n_mix
                top = -np.inf
                for m in range(n_mix):
                    top = max(top, sub[i, base + m])
                if top == -np.inf:
                    log_norm[i, k] = -np.inf
                    if want_post:
                        for m in range(n_mix):
                            post[i, base + m] = 1.0 / n_mix
                    continue
                s = 0.0
                for m in range(n_mix):
                    s += math.exp(sub[i, base + m] - top)
                lse = top + math.log(s)
                log_norm[i, k] = lse
                if want_post:
                    for m in range(n_mix):
                        post[i, base + m] = math.exp(sub[i, base + m] - lse)
