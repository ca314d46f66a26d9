"""The E-step of a Gaussian mixture with missing values (NaN), in one pass over the rows.

Diagonal and spherical covariances (``diag_missing_step``):

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
``v_kj`` (its conditional variance).

Full and tied covariances (``full_missing_step``): each pattern of missing
features needs, per component, the inverse Cholesky factor of its observed
block, the regression of the missing features on the observed ones and their
conditional covariance (``emlab._missing._pattern_batches`` computes them);
the rows come grouped by pattern and are taken in runs of one pattern, so a
run's loops go over its observed or missing features only and vectorise
across its rows. ``tests/reference.py``'s ``missing_statistics`` does the same
in NumPy, a pattern at a time.
"""

import math

import numpy as np
from numba import njit, prange

from .._config import CACHE, CHUNK_ROWS, ERROR_MODEL, FASTMATH, PARALLEL, serial_twin
from .elementary import exp_nonpos
from .gaussian import aligned_tile, load_tile_4x4, padded4
from .mixture import (_tile_responsibilities, _tile_row_max, block_rows, sum_blocks,
                      sum_scatter_blocks)

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
def _tile_log_probs(X, t0, rows, xt, means, precisions, offsets, log_weights, lp):
    """Rows [t0, t0 + rows) of X into the tile ``xt`` and every component's log-densities
    into ``lp[k]`` (``_tile_log_prob``)."""
    d = means.shape[1]
    load_tile_4x4(X, t0, rows, xt, None)
    for k in range(means.shape[0]):
        _tile_log_prob(xt, rows, d, means[k], precisions[k], offsets[k], log_weights[k], lp[k])


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
        _tile_log_probs(X, t0, rows, xt, means, precisions, offsets, log_weights, lp)
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

    The same numbers as ``tests/reference.py``'s ``missing_statistics(...,
    diagonal=True)`` up to rounding. Tiles of rows transposed as in the fused kernels
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
    lp = aligned_tile(n_components, TILE, np.float64, False)
    for t0 in range(start, stop, TILE):
        rows = min(TILE, stop - t0)
        _tile_log_probs(X, t0, rows, xt, means, precisions, offsets, log_weights, lp)
        for k in range(n_components):
            for r in range(rows):
                out[t0 + r, k] = lp[k, r]


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def diag_missing_log_prob(X, means, variances, log_weights, n_blocks, out):
    """``out[i, k] = log w_k + log p(x_i,o | k)`` for a diagonal mixture, NaN marking the
    missing values of X (``diag_missing_step``'s log-densities)."""
    precisions, offsets = _coefficients(means, variances)
    for b in prange(n_blocks):
        start, stop = block_rows(b, n_blocks, X.shape[0], CHUNK_ROWS)
        _block_log_prob(X, start, stop, means, precisions, offsets, log_weights, out)


diag_missing_log_prob_serial = serial_twin(diag_missing_log_prob)


# ----------------------------------------------------------------- full (and tied) covariances


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _run_end(patterns, q0, stop):
    """The end of the run of entries from q0 that share its pattern: at most TILE of them."""
    p, q1 = patterns[q0], q0 + 1
    while q1 < stop and q1 - q0 < TILE and patterns[q1] == p:
        q1 += 1
    return q1


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _run_differences(xt, rows, mu, observed, n_observed, et):
    """``et[j, r] = xt[j, r] - mu[j]`` for the observed features of a run of rows (one
    pattern), 0 for the missing ones."""
    et[:, :rows] = 0.0
    for i in range(n_observed):
        j = observed[i]
        m = mu[j]
        for r in range(rows):
            et[j, r] = xt[j, r] - m


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _run_log_prob(et, rows, factor, const, observed, n_observed, z, out):
    """``out[r] = const - |factor e_r|^2 / 2``, the factor lower triangular and nonzero only at
    the observed rows and columns; loops over the run's rows innermost, so they vectorise."""
    for r in range(rows):
        out[r] = 0.0
    for i in range(n_observed):
        a = observed[i]
        for r in range(rows):
            z[r] = 0.0
        for jj in range(i + 1):
            b = observed[jj]
            w = factor[a, b]
            for r in range(rows):
                z[r] += w * et[b, r]
        for r in range(rows):
            out[r] += z[r] * z[r]
    for r in range(rows):
        out[r] = const - 0.5 * out[r]


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _run_log_probs(X, rows, q0, count, p, means, factors, consts, observed, n_observed, xt, et,
                   z, lp):
    """The run of ``count`` entries of ``rows`` from q0, all of pattern p, gathered into the
    tile ``xt`` (features x rows), and every component's log-densities into ``lp[k]``."""
    n_components, d = means.shape
    for r in range(count):
        row = rows[q0 + r]
        for j in range(d):
            xt[j, r] = X[row, j]
    for k in range(n_components):
        _run_differences(xt, count, means[k], observed[p], n_observed[p], et)
        _run_log_prob(et, count, factors[p, k], consts[p, k], observed[p], n_observed[p], z,
                      lp[k])


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _block_missing_full(X, rows, patterns, start, stop, means, factors, consts, regressions,
                        conditionals, observed, n_observed, missing, n_missing, sample_weight,
                        acc_n, acc_s, acc_ss):
    """``full_missing_step``'s work on the entries [start, stop) of ``rows``, in runs of at
    most TILE rows of one pattern (``rows`` lists each pattern's rows together): each run is
    gathered into a tile transposed as in the fused kernels, and every pass over it runs
    across its rows. Returns the log-likelihood (``-inf`` if some row no component can
    produce)."""
    n_components, d = means.shape
    xt = aligned_tile(d, TILE, np.float64, False)
    et = aligned_tile(d, TILE, np.float64, False)
    lp = aligned_tile(n_components, TILE, np.float64, False)
    top = aligned_tile(1, TILE, np.float64, False)[0]
    s = aligned_tile(1, TILE, np.float64, False)[0]
    z = aligned_tile(1, TILE, np.float64, False)[0]
    weighted = sample_weight.size > 0
    wt = aligned_tile(1, TILE if weighted else 0, np.float64, False)[0]
    weights = wt if weighted else sample_weight  # the run's weights, gathered
    total = 0.0
    q0 = start
    while q0 < stop:
        q1 = _run_end(patterns, q0, stop)
        p, count = patterns[q0], q1 - q0
        _run_log_probs(X, rows, q0, count, p, means, factors, consts, observed, n_observed, xt,
                       et, z, lp)
        if weighted:
            for r in range(count):
                wt[r] = sample_weight[rows[q0 + r]]
        obs, n_obs = observed[p], n_observed[p]
        holes, n_holes = missing[p], n_missing[p]
        _tile_row_max(lp, count, n_components, top)
        part = _tile_responsibilities(lp, count, n_components, top, s, weights, 0, acc_n)
        if part == -np.inf:
            return -np.inf
        total += part
        for k in range(n_components):
            # the differences again (one subtraction a value, cheaper than K tiles of them)
            _run_differences(xt, count, means[k], obs, n_obs, et)
            reg = regressions[p, k]
            for i in range(n_holes):  # a missing value's conditional mean less the mean
                a = holes[i]
                for r in range(count):
                    z[r] = 0.0
                for jj in range(n_obs):
                    b = obs[jj]
                    w = reg[a, b]
                    for r in range(count):
                        z[r] += w * et[b, r]
                for r in range(count):
                    et[a, r] = z[r]
            resp = lp[k]
            for a in range(d):  # lower triangles of sum_r resp_r diff_r diff_r^T
                for r in range(count):
                    z[r] = resp[r] * et[a, r]
                s1 = 0.0
                for r in range(count):
                    s1 += z[r]
                acc_s[k, a] += s1
                for b in range(a + 1):
                    s2 = 0.0
                    for r in range(count):
                        s2 += z[r] * et[b, r]
                    acc_ss[k, a, b] += s2
            if n_holes:  # and the run's responsibility times the conditional covariance
                mass = 0.0
                for r in range(count):
                    mass += resp[r]
                cond = conditionals[p, k]
                for i in range(n_holes):
                    a = holes[i]
                    for jj in range(i + 1):
                        acc_ss[k, a, holes[jj]] += mass * cond[a, holes[jj]]
        q0 = q1
    return total


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def full_missing_step(X, rows, patterns, means, factors, consts, regressions, conditionals,
                      observed, n_observed, missing, n_missing, sample_weight, n_blocks, loglik,
                      nk, sums, second):
    """The E-step's statistics of a mixture with full covariances on the rows ``rows`` of X,
    NaN marking missing values, each row of pattern ``patterns[q]`` (P patterns).

    Parameters
    ----------
    X : (n, d) float64.
    rows, patterns : (m,) int64, the rows to take and each one's pattern.
    means : (K, d), the current means; the statistics are about them.
    factors : (P, K, d, d), the inverse Cholesky factor of the observed block of
        component k's covariance placed at the observed rows and columns, zero
        elsewhere (lower triangular): ``|factors e|^2`` is the Mahalanobis
        distance of the observed values.
    consts : (P, K), ``log w_k - (|o| log 2 pi + log det S_oo) / 2``.
    regressions : (P, K, d, d), ``S_mo S_oo^-1`` at the missing rows and observed
        columns, zero elsewhere.
    conditionals : (P, K, d, d), ``S_mm - S_mo S_oo^-1 S_om`` at the missing rows
        and columns, zero elsewhere.
    observed, n_observed, missing, n_missing : (P, d) and (P,) int64, each pattern's
        observed and missing features in increasing order (the first ``n_observed[p]``
        entries of ``observed[p]``, ...): the loops run over them only.
    sample_weight : (n,) or empty for none.
    n_blocks : int, the fixed partition of the m entries.
    loglik, nk, sums : out, as ``diag_missing_step``'s.
    second : (K, d, d) out, ``sum r (E[(x - mu)(x - mu)^T | x_o])``, both triangles.

    The numbers of ``tests/reference.py``'s ``missing_statistics`` up to rounding, in one
    pass over the rows; blocks summed in order, whatever the thread count.
    """
    m = rows.shape[0]
    n_components, d = means.shape
    acc_ll = np.zeros(n_blocks)
    acc_n = np.zeros((n_blocks, n_components))
    acc_s = np.zeros((n_blocks, n_components, d))
    acc_ss = np.zeros((n_blocks, n_components, d, d))
    for b in prange(n_blocks):
        start, stop = block_rows(b, n_blocks, m, CHUNK_ROWS)
        acc_ll[b] = _block_missing_full(X, rows, patterns, start, stop, means, factors, consts,
                                        regressions, conditionals, observed, n_observed,
                                        missing, n_missing, sample_weight, acc_n[b], acc_s[b],
                                        acc_ss[b])
    sum_blocks(acc_ll, loglik)
    sum_blocks(acc_n, nk)
    sum_blocks(acc_s, sums)
    sum_scatter_blocks(acc_ss, second)


full_missing_step_serial = serial_twin(full_missing_step)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _block_log_prob_full(X, rows, patterns, start, stop, means, factors, consts, observed,
                         n_observed, out):
    """``full_missing_log_prob``'s work on the entries [start, stop) of ``rows``."""
    n_components, d = means.shape
    xt = aligned_tile(d, TILE, np.float64, False)
    et = aligned_tile(d, TILE, np.float64, False)
    lp = aligned_tile(n_components, TILE, np.float64, False)
    z = aligned_tile(1, TILE, np.float64, False)[0]
    q0 = start
    while q0 < stop:
        q1 = _run_end(patterns, q0, stop)
        count = q1 - q0
        _run_log_probs(X, rows, q0, count, patterns[q0], means, factors, consts, observed,
                       n_observed, xt, et, z, lp)
        for r in range(count):
            for k in range(n_components):
                out[rows[q0 + r], k] = lp[k, r]
        q0 = q1


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def full_missing_log_prob(X, rows, patterns, means, factors, consts, observed, n_observed,
                          n_blocks, out):
    """``out[rows[q], k] = log w_k + log N(x_o | mu_k,o, S_k,oo)`` (``full_missing_step``'s
    arguments; the same log-densities, computed the same way)."""
    for b in prange(n_blocks):
        start, stop = block_rows(b, n_blocks, rows.shape[0], CHUNK_ROWS)
        _block_log_prob_full(X, rows, patterns, start, stop, means, factors, consts, observed,
                             n_observed, out)


full_missing_log_prob_serial = serial_twin(full_missing_log_prob)
