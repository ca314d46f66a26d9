"""Mixture kernels: the E-step's log-sum-exp and the M-step's sufficient statistics."""

import math

import numpy as np
from numba import njit, prange

from .._config import CACHE, FASTMATH, PARALLEL


@njit(parallel=PARALLEL, fastmath=FASTMATH, cache=CACHE)
def log_normalize(log_prob, chunk_rows, log_norm, resp):
    """Per-row log-sum-exp and normalised probabilities, shifted by the row maximum.

    Parameters
    ----------
    log_prob : (n, K) float64, ``log w_k + log p(x_i | component k)``.
    chunk_rows : int, rows per parallel chunk.
    log_norm : (n,) float64, filled with ``log sum_k exp(log_prob[i, k])``.
    resp : (n, K) float64, filled with ``exp(log_prob[i, k] - log_norm[i])``.

    A row whose entries are all ``-inf`` (no component can have produced it) gets
    ``log_norm = -inf`` and uniform responsibilities, never NaN; the caller
    decides what a log-likelihood of ``-inf`` means.
    """
    n, n_components = log_prob.shape
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for c in prange(n_chunks):
        stop = min(n, (c + 1) * chunk_rows)
        for i in range(c * chunk_rows, stop):
            top = -np.inf
            for k in range(n_components):
                if log_prob[i, k] > top:
                    top = log_prob[i, k]
            if top == -np.inf:
                log_norm[i] = -np.inf
                for k in range(n_components):
                    resp[i, k] = 1.0 / n_components
                continue
            s = 0.0
            for k in range(n_components):
                e = math.exp(log_prob[i, k] - top)
                resp[i, k] = e
                s += e
            log_norm[i] = top + math.log(s)
            inv = 1.0 / s
            for k in range(n_components):
                resp[i, k] *= inv


@njit(parallel=PARALLEL, fastmath=FASTMATH, cache=CACHE)
def weighted_scatter(X, resp, centers, n_blocks, chunk_rows, nk, sums, scatter):
    """Weighted counts, sums and scatter matrices about ``centers``, in one pass over X.

    For every component k, with r_ik = resp[i, k] and c_k = centers[k]:

        nk[k]      = sum_i r_ik
        sums[k]    = sum_i r_ik (x_i - c_k)
        scatter[k] = sum_i r_ik (x_i - c_k)(x_i - c_k)^T

    Rows are split into ``n_blocks`` contiguous blocks of ``chunk_rows``-row
    chunks; each block accumulates into its own slot (run in parallel), and the
    slots are added up in block order afterwards, so the result does not depend
    on the number of threads. Choosing ``c_k`` near the weighted mean (the
    current means) keeps the centring exact to round-off: the caller recovers the
    mean as ``c_k + sums[k] / nk[k]`` and the scatter about it as
    ``scatter[k] - sums[k] sums[k]^T / nk[k]``, a small correction, rather than
    subtracting two large raw moments.
    """
    n, d = X.shape
    n_components = resp.shape[1]
    acc_n = np.zeros((n_blocks, n_components))
    acc_s = np.zeros((n_blocks, n_components, d))
    acc_ss = np.zeros((n_blocks, n_components, d, d))
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for b in prange(n_blocks):
        diff = np.empty(d)
        start = (b * n_chunks // n_blocks) * chunk_rows
        stop = min(n, ((b + 1) * n_chunks // n_blocks) * chunk_rows)
        for i in range(start, stop):
            for k in range(n_components):
                r = resp[i, k]
                if r == 0.0:
                    continue
                acc_n[b, k] += r
                for j in range(d):
                    diff[j] = X[i, j] - centers[k, j]
                    acc_s[b, k, j] += r * diff[j]
                for j in range(d):
                    rd = r * diff[j]
                    for m in range(j + 1):
                        acc_ss[b, k, j, m] += rd * diff[m]
    nk[:] = 0.0
    sums[:] = 0.0
    scatter[:] = 0.0
    for b in range(n_blocks):
        for k in range(n_components):
            nk[k] += acc_n[b, k]
            for j in range(d):
                sums[k, j] += acc_s[b, k, j]
                for m in range(j + 1):
                    scatter[k, j, m] += acc_ss[b, k, j, m]
    for k in range(n_components):
        for j in range(d):
            for m in range(j):
                scatter[k, m, j] = scatter[k, j, m]
