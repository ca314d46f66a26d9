"""Gaussian-mixture emission kernels of the HMM with mixture emissions (``GMMHMM``).

State k's emission density is ``p(x | k) = sum_m w_km N(x | mu_km, Sigma_km)``, a
mixture of ``n_mix`` of the ``K * n_mix`` components, which are stored flat: component
``c = k * n_mix + m``. Two kernels per covariance family walk X in tiles of rows
copied transposed (features x rows, as :mod:`.mixture`'s fused EM steps), compute
the log-densities of all ``K * n_mix`` components on the tile and never keep
anything of size n x (K * n_mix):

* ``log_emission_full`` / ``log_emission_diag``: the per-state log-sum-exp,
  ``out[t, k] = log sum_m w_km N(x_t | mu_km, Sigma_km)``, shifted by the state's
  largest term (a state none of whose components can produce the row, every
  term ``-inf``, gets ``-inf``, never NaN);
* ``emission_statistics_full`` / ``emission_statistics_diag``: given the state
  posteriors ``gamma`` (n, K), the component responsibilities ``gamma_tk p(m |
  x_t, k)`` of each tile, and from them the weighted counts, sums and second
  moments of the components about their current means, accumulated per block
  of the fixed row partition and added up in block order (as
  :func:`.mixture.weighted_scatter`, so the result does not depend on the
  thread count). The caller centres them (:func:`emlab.mixture._centred`).

'tied' covariances are 'full' ones here (the caller repeats each state's factor
over its components); 'spherical' ones are 'diag' ones (the variance repeated
over the features). The tile constants come from :mod:`.gaussian` (``TILE``)
and :mod:`.mixture` (``TILE_DIAG``): as for :mod:`.mixture`, a change there
must be followed by touching this file, whose cached kernels numba would
otherwise keep.
"""

import math

import numpy as np
from numba import njit, prange

from .._config import CACHE, CHUNK_ROWS, ERROR_MODEL, FASTMATH, PARALLEL
from .elementary import exp_nonpos
from .gaussian import (
    LOG_2PI,
    SMALL_D,
    TILE,
    _tile_log_gaussian_full,
    _tile_log_gaussian_full8,
    _tile_log_gaussian_full_small,
    about_centre,
    centre_of,
    diag_coefficients,
    load_tile,
    load_tile_4x4,
    padded4,
    padded_lower,
    tile_log_density_diag,
)
from .mixture import (
    TILE_DIAG,
    _full_bias,
    _tile_add_statistics,
    block_rows,
    sum_blocks,
    sum_scatter_blocks,
)

CHUNK = CHUNK_ROWS  # the chunks of the fixed partition, as in mixture.py

# ----------------------------------------------------------------------------- tiles


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _tile_state_exp(lp, rows, c0, n_mix, top, s):
    """Components ``c0 .. c0 + n_mix - 1`` (one state): ``lp[c, r] -> exp(lp[c, r] - top[r])``.

    ``top[r]`` becomes the state's largest term of row r, or 0 where every term
    is ``-inf`` (then every exponential is 0); ``s[r]`` their sum (0 for such a
    row, at least 1 otherwise). Each pass runs across rows so that it vectorises.
    """
    for r in range(rows):
        top[r] = lp[c0, r]
    for c in range(c0 + 1, c0 + n_mix):
        for r in range(rows):
            top[r] = max(top[r], lp[c, r])
    for r in range(rows):
        top[r] = top[r] if top[r] > -np.inf else 0.0
        s[r] = 0.0
    for c in range(c0, c0 + n_mix):
        for r in range(rows):
            e = exp_nonpos(lp[c, r] - top[r])
            lp[c, r] = e
            s[r] += e


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _tile_state_log_sum(lp, rows, n_mix, top, s, out, t0):
    """out[t0 + r, k] = log sum_m exp(lp[k * n_mix + m, r]) for every state k (lp overwritten)."""
    for k in range(out.shape[1]):
        _tile_state_exp(lp, rows, k * n_mix, n_mix, top, s)
        for r in range(rows):
            out[t0 + r, k] = top[r] + math.log(s[r])  # log 0 = -inf: a row no component produces


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _tile_state_responsibilities(lp, rows, gamma, t0, n_mix, top, s, nk):
    """In place: ``lp[c, r] -> gamma[t0 + r, k] p(m | x_r, k)`` for ``c = k * n_mix + m``.

    A row none of state k's components can produce gets responsibilities 0.
    Each component's total over the tile is added to ``nk[c]``.
    """
    for k in range(gamma.shape[1]):
        c0 = k * n_mix
        _tile_state_exp(lp, rows, c0, n_mix, top, s)
        for r in range(rows):
            g = gamma[t0 + r, k]
            s[r] = g / s[r] if s[r] > 0.0 else 0.0
        for c in range(c0, c0 + n_mix):
            tot = 0.0
            for r in range(rows):
                v = lp[c, r] * s[r]
                lp[c, r] = v
                tot += v
            nk[c] += tot


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _biases_diag(prec_chol, log_weights, d):
    n_comp = prec_chol.shape[0]
    bias = np.empty(n_comp)
    for c in range(n_comp):
        log_det = 0.0
        for j in range(d):
            log_det += math.log(prec_chol[c, j])
        bias[c] = -0.5 * d * LOG_2PI + log_det + log_weights[c]
    return bias


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _tile_components_full(xt, rows, means, lmu, prec_chol_t, chol_p, bias, small, keep, dts, y,
                          lp):
    """lp[c, :rows] = log w_c + log N(x_r | mu_c, Sigma_c); with ``keep``, ``dts[c]`` keeps
    x_r - mu_c.

    ``xt`` and ``means`` are taken about the same point, and ``lmu[c]`` is ``L_c`` times
    ``means[c]`` (``about_centre``); ``xt`` and ``lmu`` are padded with zero features to
    ``chol_p``'s order. For d > SMALL_D the log-density needs no centred tile
    (``L x - L mu``), so one is written only when ``keep`` asks for it; ``dts`` is
    (C, dp, TILE) then, else (1, dp, TILE), scratch for the d <= SMALL_D log-density.
    """
    d = means.shape[1]
    for c in range(means.shape[0]):
        dt = dts[c % dts.shape[0]]
        if small or keep:
            for j in range(d):
                mu = means[c, j]
                for r in range(rows):
                    dt[j, r] = xt[j, r] - mu
        if small:
            _tile_log_gaussian_full_small(dt, rows, prec_chol_t[c], bias[c], y[0], y[1], lp[c])
        elif chol_p.shape[1] == 8:
            _tile_log_gaussian_full8(xt, rows, lmu[c], chol_p[c], bias[c], lp[c])
        else:
            _tile_log_gaussian_full(xt, rows, lmu[c], chol_p[c], bias[c], lp[c])


# ----------------------------------------------------------------------------- log-emissions


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def log_emission_full(X, means, prec_chol_t, log_weights, chunk_rows, out):
    """Per-state log-density of a mixture of full-covariance Gaussians, for every row of X.

    Parameters
    ----------
    X : (n, d) float64
    means : (K * M, d) float64, component ``k * M + m`` is state k's m-th.
    prec_chol_t : (K * M, d, d) float64, lower triangular: the transposed precision
        Cholesky factors (as :func:`.gaussian.log_gaussian_full`).
    log_weights : (K * M,) float64, ``log w_km`` (``-inf`` allowed).
    chunk_rows : int, rows per parallel chunk.
    out : (n, K) float64, filled with ``log sum_m w_km N(X[t] | mu_km, Sigma_km)``
        (``-inf`` where every term is ``-inf``).
    """
    n, d = X.shape
    n_comp = means.shape[0]
    n_mix = n_comp // out.shape[1]
    small = d <= SMALL_D
    dp = d + d % 2 if small else padded4(d)
    bias = _full_bias(prec_chol_t, log_weights, d, np.float64)
    chol_p = padded_lower(prec_chol_t, dp, np.float64)
    shift, means_s, _, lmu = about_centre(means, chol_p, np.float64)
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for ch in prange(n_chunks):
        xt = np.zeros((dp, TILE))  # zero pad features
        dts = np.zeros((1, dp, TILE))
        y = np.empty((4, TILE))
        lp = np.empty((n_comp, TILE))
        top = np.empty(TILE)
        s = np.empty(TILE)
        stop = min(n, (ch + 1) * chunk_rows)
        for t0 in range(ch * chunk_rows, stop, TILE):
            rows = min(TILE, stop - t0)
            load_tile(X, t0, rows, xt, shift)
            _tile_components_full(xt, rows, means_s, lmu, prec_chol_t, chol_p, bias,
                                  small, False, dts, y, lp)
            _tile_state_log_sum(lp, rows, n_mix, top, s, out, t0)


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def log_emission_diag(X, means, prec_chol, log_weights, chunk_rows, out):
    """As ``log_emission_full`` for diagonal covariances: ``prec_chol[c, j] = 1 / sigma_cj``.

    (A spherical model passes its one value repeated over the features.)
    """
    n, d = X.shape
    n_comp = means.shape[0]
    n_mix = n_comp // out.shape[1]
    dp = padded4(d)
    bias = _biases_diag(prec_chol, log_weights, d)
    shift = centre_of(means, np.float64)  # the tiles are loaded less it
    scale, offset = diag_coefficients(means, prec_chol, shift, dp, np.float64)
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for ch in prange(n_chunks):
        xt = np.zeros((dp, TILE_DIAG))
        lp = np.empty((n_comp, TILE_DIAG))
        top = np.empty(TILE_DIAG)
        s = np.empty(TILE_DIAG)
        stop = min(n, (ch + 1) * chunk_rows)
        for t0 in range(ch * chunk_rows, stop, TILE_DIAG):
            rows = min(TILE_DIAG, stop - t0)
            load_tile_4x4(X, t0, rows, xt, shift)
            for c in range(n_comp):
                tile_log_density_diag(xt, rows, scale[c], offset[c], bias[c], lp[c])
            _tile_state_log_sum(lp, rows, n_mix, top, s, out, t0)


# ----------------------------------------------------------------------------- statistics


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def emission_statistics_full(X, gamma, means, prec_chol_t, log_weights, n_blocks, nk, sums,
                             scatter):
    """The components' weighted statistics about their current means, in one pass over X.

    With ``r_tc = gamma[t, k] p(m | x_t, k)`` the responsibility of component
    ``c = k * M + m`` (0 where none of state k's components can produce x_t):

        nk[c]      = sum_t r_tc
        sums[c]    = sum_t r_tc (x_t - means[c])
        scatter[c] = sum_t r_tc (x_t - means[c])(x_t - means[c])^T

    as :func:`.mixture.weighted_scatter` of the (n, K * M) responsibilities,
    which are never formed. ``gamma`` (n, K); the other arguments as
    ``log_emission_full``; ``n_blocks`` the fixed partition (``_config.n_blocks``).
    """
    n, d = X.shape
    n_comp = means.shape[0]
    n_mix = n_comp // gamma.shape[1]
    small = d <= SMALL_D
    dp = d + d % 2 if small else padded4(d)
    bias = _full_bias(prec_chol_t, log_weights, d, np.float64)
    chol_p = padded_lower(prec_chol_t, dp, np.float64)
    shift, means_s, _, lmu = about_centre(means, chol_p, np.float64)
    acc_n = np.zeros((n_blocks, n_comp))
    acc_s = np.zeros((n_blocks, n_comp, d))
    acc_ss = np.empty((n_blocks, n_comp, dp, dp))  # zeroed by its block's thread
    for b in prange(n_blocks):
        acc_ss[b] = 0.0
        xt = np.zeros((dp, TILE))  # zero pad features
        dts = np.zeros((n_comp, dp, TILE))
        rd = np.zeros((dp, TILE))
        y = np.empty((4, TILE))
        lp = np.empty((n_comp, TILE))
        top = np.empty(TILE)
        s = np.empty(TILE)
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        for t0 in range(start, stop, TILE):
            rows = min(TILE, stop - t0)
            load_tile(X, t0, rows, xt, shift)
            _tile_components_full(xt, rows, means_s, lmu, prec_chol_t, chol_p, bias,
                                  small, True, dts, y, lp)
            _tile_state_responsibilities(lp, rows, gamma, t0, n_mix, top, s, acc_n[b])
            for c in range(n_comp):
                _tile_add_statistics(lp[c], dts[c], rows, small, rd, acc_s[b, c], acc_ss[b, c])
    sum_blocks(acc_n, nk)
    sum_blocks(acc_s, sums)
    sum_scatter_blocks(acc_ss, scatter)


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def emission_statistics_diag(X, gamma, means, prec_chol, log_weights, n_blocks, nk, sums,
                             sqsums):
    """As ``emission_statistics_full`` for diagonal covariances (``prec_chol`` as
    ``log_emission_diag``), with ``sqsums[c, j] = sum_t r_tc (x_tj - means[c, j])^2``
    instead of scatter matrices."""
    n, d = X.shape
    n_comp = means.shape[0]
    n_mix = n_comp // gamma.shape[1]
    dp = padded4(d)
    bias = _biases_diag(prec_chol, log_weights, d)
    shift = centre_of(means, np.float64)  # the tiles are loaded less it
    scale, offset = diag_coefficients(means, prec_chol, shift, dp, np.float64)
    acc_n = np.zeros((n_blocks, n_comp))
    acc_s = np.zeros((n_blocks, n_comp, d))
    acc_ss = np.zeros((n_blocks, n_comp, d))
    for b in prange(n_blocks):
        xt = np.zeros((dp, TILE_DIAG))
        lp = np.empty((n_comp, TILE_DIAG))
        top = np.empty(TILE_DIAG)
        s = np.empty(TILE_DIAG)
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        for t0 in range(start, stop, TILE_DIAG):
            rows = min(TILE_DIAG, stop - t0)
            load_tile_4x4(X, t0, rows, xt, shift)
            for c in range(n_comp):
                tile_log_density_diag(xt, rows, scale[c], offset[c], bias[c], lp[c])
            _tile_state_responsibilities(lp, rows, gamma, t0, n_mix, top, s, acc_n[b])
            for c in range(n_comp):
                for j in range(d):
                    mu = means[c, j] - shift[j]
                    s1 = 0.0
                    s2 = 0.0
                    for r in range(rows):
                        dv = xt[j, r] - mu
                        rdv = lp[c, r] * dv
                        s1 += rdv
                        s2 += rdv * dv
                    acc_s[b, c, j] += s1
                    acc_ss[b, c, j] += s2
    sum_blocks(acc_n, nk)
    sum_blocks(acc_s, sums)
    sum_blocks(acc_ss, sqsums)
