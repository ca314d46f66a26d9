"""Mixture-of-experts kernels: softmax, gradient and Hessian of a weighted multinomial logit.

Every kernel here serves one block of a mixture of experts' M-step: the gating
network (soft targets ``h_ij``, row weights ``s_i``) or one multinomial-logit
expert (one-hot targets, row weights ``s_i h_ij``). The block's objective is

    Q(theta) = sum_i w_i sum_c t_ic log softmax_c(theta [x_i, 1])

with ``theta`` of shape (C, p), p = d + 1, the last column the intercepts, and
the targets of every row summing to 1. The kernels return Q and fill its
gradient and its **negative** Hessian (positive semi-definite):

    grad[c]            = sum_i w_i (t_ic - p_ic) [x_i, 1]
    -H[(c, a), (c', b)] = sum_i w_i p_ic (delta_cc' - p_ic') x_ia x_ib

in the full (C p)-parameterisation; the caller adds the penalty and removes the
one null direction (see :mod:`emlab.experts`). Each kernel is one pass over
the rows: ``prange`` over a fixed partition of whole chunks of rows into
blocks (``_config.n_blocks``), one accumulator per block, the blocks summed in
block order, so results do not depend on the thread count. Within a block the
rows are walked in tiles copied transposed (features x rows, zero-padded to a
multiple of 4 features, the intercept's constant 1 as feature d), so that the
inner loops run across rows and vectorise; every (c, c') block of the Hessian is
a weighted scatter of the tile, taken in 4 x 4 register blocks by
``mixture._tile_scatter_lower``. Only the blocks of the first C - 1 classes
are accumulated: every block row of the Hessian sums to zero over the classes
(``sum_c' p_c (delta_cc' - p_c') = 0``), which gives the last class's blocks.

The truncated Newton (conjugate-gradient) step never forms the Hessian:
:func:`softmax_gradient_terms` returns Q, the gradient, the Hessian's diagonal
(the preconditioner) and the probabilities in one pass, and each
:func:`softmax_hessian_vector` is one more pass, ``-H v`` from the stored
probabilities, 2 C (d + 1) multiply-adds per row where the Hessian costs
about C^2 (d + 1)^2 / 4. Both use the same fixed partition and block-ordered
sums, and run their per-tile products in 4 x 4 register blocks
(``_tile_rows_times``: coefficients times rows, along the features;
``_tile_times_transposed``: weighted sums along the rows), the classes padded
with zero rows to a multiple of 4. The logits of every kernel's tile
(``_tile_softmax``) come from ``_tile_rows_times`` too.
"""

import math

import numpy as np
from numba import njit, prange

from .._config import CACHE, CHUNK_ROWS, ERROR_MODEL, FASTMATH, PARALLEL
from .elementary import exp_nonpos
from .gaussian import padded4
from .mixture import _add_block_4x4, _tile_scatter_lower, block_rows

CHUNK = CHUNK_ROWS
TILE_ROWS = 64  # rows per tile; divides CHUNK_ROWS, so a tile never straddles two blocks


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _padded_classes(coef, cp):
    """coef with zero rows appended up to ``cp`` rows (a multiple of 4)."""
    out = np.zeros((cp, coef.shape[1]))
    for c in range(coef.shape[0]):  # a loop: see gaussian.padded_rows
        for j in range(coef.shape[1]):
            out[c, j] = coef[c, j]
    return out


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _tile_rows_times(X, t0, rows, vp, u):
    """``u[c, r] = vp[c, :d] . X[t0 + r] + vp[c, d]`` for every c < vp.shape[0] (a multiple of 4).

    Blocks of 4 classes x 4 rows keep their 16 sums in registers while the
    inner loop runs along the features (contiguous in X and vp): eight loads for
    sixteen multiply-adds. Rows past ``rows`` (up to the next multiple of 4)
    repeat the last row; their columns of ``u`` are to be ignored.
    """
    d = X.shape[1]
    last = t0 + rows - 1
    for c in range(0, vp.shape[0], 4):
        for r in range(0, rows, 4):
            i0 = t0 + r
            i1 = min(i0 + 1, last)
            i2 = min(i0 + 2, last)
            i3 = min(i0 + 3, last)
            s00 = s01 = s02 = s03 = 0.0
            s10 = s11 = s12 = s13 = 0.0
            s20 = s21 = s22 = s23 = 0.0
            s30 = s31 = s32 = s33 = 0.0
            for a in range(d):
                x0, x1, x2, x3 = X[i0, a], X[i1, a], X[i2, a], X[i3, a]
                v0, v1, v2, v3 = vp[c, a], vp[c + 1, a], vp[c + 2, a], vp[c + 3, a]
                s00 += v0 * x0
                s01 += v0 * x1
                s02 += v0 * x2
                s03 += v0 * x3
                s10 += v1 * x0
                s11 += v1 * x1
                s12 += v1 * x2
                s13 += v1 * x3
                s20 += v2 * x0
                s21 += v2 * x1
                s22 += v2 * x2
                s23 += v2 * x3
                s30 += v3 * x0
                s31 += v3 * x1
                s32 += v3 * x2
                s33 += v3 * x3
            b0, b1, b2, b3 = vp[c, d], vp[c + 1, d], vp[c + 2, d], vp[c + 3, d]
            u[c, r], u[c, r + 1], u[c, r + 2], u[c, r + 3] = s00 + b0, s01 + b0, s02 + b0, s03 + b0
            u[c + 1, r], u[c + 1, r + 1], u[c + 1, r + 2], u[c + 1, r + 3] = (
                s10 + b1, s11 + b1, s12 + b1, s13 + b1)
            u[c + 2, r], u[c + 2, r + 1], u[c + 2, r + 2], u[c + 2, r + 3] = (
                s20 + b2, s21 + b2, s22 + b2, s23 + b2)
            u[c + 3, r], u[c + 3, r + 1], u[c + 3, r + 2], u[c + 3, r + 3] = (
                s30 + b3, s31 + b3, s32 + b3, s33 + b3)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _tile_times_transposed(rd, dt, rows, out):
    """``out[j, m] += sum_r rd[j, r] dt[m, r]`` for all j, m (both multiples of 4), in 4 x 4 blocks.

    As ``mixture._tile_scatter_lower`` but over every block, for a rectangular
    ``out``: the reductions run along the rows of the tile (contiguous), eight
    loads for sixteen multiply-adds.
    """
    for j in range(0, out.shape[0], 4):
        for m in range(0, out.shape[1], 4):
            _add_block_4x4(rd, j, dt, rows, j, m, out)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _tile_softmax(X, coefp, targets, weights, t0, rows, xt, pr, top):
    """Load a tile (transposed, with the constant 1 as row d) and its class probabilities.

    ``coefp`` is coef with its classes padded by zero rows to a multiple of 4
    (``pr`` has as many rows). Fills ``xt[:d + 1, :rows]`` and
    ``pr[c, r] = p(c | x_{t0 + r})`` for the C = ``targets.shape[1]`` classes
    (the pad rows of ``pr`` are scratch); returns the tile's weighted
    ``sum_r w_r sum_c t_rc log p_rc``.
    """
    d = X.shape[1]
    n_classes = targets.shape[1]
    for r in range(rows):
        for a in range(d):
            xt[a, r] = X[t0 + r, a]
        xt[d, r] = 1.0
    _tile_rows_times(X, t0, rows, coefp, pr)
    for r in range(rows):
        top[r] = pr[0, r]
    for c in range(1, n_classes):
        for r in range(rows):
            top[r] = max(top[r], pr[c, r])
    ll = 0.0
    for r in range(rows):
        lse = top[r]
        q = 0.0
        for c in range(n_classes):
            t = targets[t0 + r, c]
            if t != 0.0:
                q += t * (pr[c, r] - lse)
        s = 0.0
        for c in range(n_classes):
            e = exp_nonpos(pr[c, r] - lse)
            pr[c, r] = e
            s += e
        # normalised by the sum (not as exp(eta - lse)), so the probabilities sum to 1 to
        # round-off even when eta is huge, and diag(p) - p p^T stays positive semi-definite
        inv = 1.0 / s
        for c in range(n_classes):
            pr[c, r] *= inv
        w = weights[t0 + r]
        if w != 0.0:
            ll += w * (q - math.log(s))  # the targets sum to 1
    return ll


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def softmax_newton_terms(X, coef, targets, weights, n_blocks, grad, hess):
    """Q, its gradient and its negative Hessian, over all classes at once (one pass).

    Parameters
    ----------
    X : (n, d) float64.
    coef : (C, d + 1) float64, the last column the intercepts.
    targets : (n, C) float64, each row summing to 1 (one-hot labels or soft targets).
    weights : (n,) float64 >= 0, the row weights.
    n_blocks : int, the fixed partition of the rows (``_config.n_blocks``).
    grad : (C, d + 1) float64, filled with the gradient of Q.
    hess : (C (d + 1), C (d + 1)) float64, filled with minus the Hessian of Q
        (symmetric positive semi-definite), indexed ``c * (d + 1) + a``.

    Returns
    -------
    Q : float
    """
    n, d = X.shape
    n_classes = coef.shape[0]
    p = d + 1
    pp = padded4(p)
    cp = padded4(n_classes)
    coefp = _padded_classes(coef, cp)
    last = n_classes - 1  # the last class's blocks follow from the others' (see below)
    n_pairs = last * (last + 1) // 2
    acc_ll = np.zeros(n_blocks)
    acc_g = np.zeros((n_blocks, n_classes, p))
    acc_h = np.empty((n_blocks, n_pairs, pp, pp))  # zeroed by its block's thread
    for b in prange(n_blocks):
        acc_h[b] = 0.0
        xt = np.zeros((pp, TILE_ROWS))  # pad rows stay 0
        rd = np.zeros((pp, TILE_ROWS))
        pr = np.empty((cp, TILE_ROWS))
        top = np.empty(TILE_ROWS)
        cw = np.empty(TILE_ROWS)
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        ll = 0.0
        for t0 in range(start, stop, TILE_ROWS):
            rows = min(TILE_ROWS, stop - t0)
            ll += _tile_softmax(X, coefp, targets, weights, t0, rows, xt, pr, top)
            for c in range(n_classes):
                for r in range(rows):
                    cw[r] = weights[t0 + r] * (targets[t0 + r, c] - pr[c, r])
                for a in range(p):
                    s = 0.0
                    for r in range(rows):
                        s += cw[r] * xt[a, r]
                    acc_g[b, c, a] += s
            k = 0
            for c in range(last):
                for c2 in range(c + 1):
                    if c2 == c:
                        for r in range(rows):
                            cw[r] = weights[t0 + r] * pr[c, r] * (1.0 - pr[c, r])
                    else:
                        for r in range(rows):
                            cw[r] = -weights[t0 + r] * pr[c, r] * pr[c2, r]
                    for a in range(p):
                        for r in range(rows):
                            rd[a, r] = cw[r] * xt[a, r]
                    _tile_scatter_lower(rd, xt, rows, acc_h[b, k])
                    k += 1
        acc_ll[b] = ll
    total = 0.0
    for b in range(n_blocks):
        total += acc_ll[b]
    grad[:] = 0.0
    for b in range(n_blocks):
        grad += acc_g[b]
    for k in prange(n_pairs):
        # pair k = (c, c2), c2 <= c, in the order of the loops above
        c = 0
        while (c + 1) * (c + 2) // 2 <= k:
            c += 1
        c2 = k - c * (c + 1) // 2
        for a in range(p):
            for a2 in range(a + 1):
                v = 0.0
                for b in range(n_blocks):
                    v += acc_h[b, k, a, a2]
                hess[c * p + a, c2 * p + a2] = v
                hess[c * p + a2, c2 * p + a] = v
                hess[c2 * p + a2, c * p + a] = v
                hess[c2 * p + a, c * p + a2] = v
    # sum_c' p_c (delta_cc' - p_c') = 0: each block row of the Hessian sums to zero, so
    # the last class's blocks are minus the sums of the others (C - 1 classes' pairs
    # accumulated instead of C's: (C - 1) / (C + 1) of the work).
    lp = last * p
    for c in prange(last):
        for a in range(p):
            for a2 in range(p):
                v = 0.0
                for c2 in range(last):
                    v -= hess[c * p + a, c2 * p + a2]
                hess[c * p + a, lp + a2] = v
                hess[lp + a2, c * p + a] = v
    for a in range(p):
        for a2 in range(p):
            v = 0.0
            for c in range(last):
                v -= hess[c * p + a, lp + a2]
            hess[lp + a, lp + a2] = v
    return total


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def softmax_class_terms(X, coef, targets, weights, cls, n_blocks, grad, hess):
    """Q, and the gradient and negative Hessian in the weights of class ``cls`` alone.

    For conditional maximisation one class at a time (ECM): the others held
    fixed, Q is concave in ``coef[cls]`` with negative Hessian
    ``sum_i w_i p_ic (1 - p_ic) x_i x_i^T``. Arguments as
    :func:`softmax_newton_terms`; ``grad`` is (d + 1,), ``hess`` (d + 1, d + 1).
    """
    n, d = X.shape
    n_classes = coef.shape[0]
    p = d + 1
    pp = padded4(p)
    cp = padded4(n_classes)
    coefp = _padded_classes(coef, cp)
    acc_ll = np.zeros(n_blocks)
    acc_g = np.zeros((n_blocks, p))
    acc_h = np.empty((n_blocks, pp, pp))
    for b in prange(n_blocks):
        acc_h[b] = 0.0
        xt = np.zeros((pp, TILE_ROWS))
        rd = np.zeros((pp, TILE_ROWS))
        pr = np.empty((cp, TILE_ROWS))
        top = np.empty(TILE_ROWS)
        cw = np.empty(TILE_ROWS)
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        ll = 0.0
        for t0 in range(start, stop, TILE_ROWS):
            rows = min(TILE_ROWS, stop - t0)
            ll += _tile_softmax(X, coefp, targets, weights, t0, rows, xt, pr, top)
            for r in range(rows):
                cw[r] = weights[t0 + r] * (targets[t0 + r, cls] - pr[cls, r])
            for a in range(p):
                s = 0.0
                for r in range(rows):
                    s += cw[r] * xt[a, r]
                acc_g[b, a] += s
            for r in range(rows):
                cw[r] = weights[t0 + r] * pr[cls, r] * (1.0 - pr[cls, r])
            for a in range(p):
                for r in range(rows):
                    rd[a, r] = cw[r] * xt[a, r]
            _tile_scatter_lower(rd, xt, rows, acc_h[b])
        acc_ll[b] = ll
    total = 0.0
    for b in range(n_blocks):
        total += acc_ll[b]
    grad[:] = 0.0
    for b in range(n_blocks):
        grad += acc_g[b]
    for a in range(p):
        for a2 in range(a + 1):
            v = 0.0
            for b in range(n_blocks):
                v += acc_h[b, a, a2]
            hess[a, a2] = v
            hess[a2, a] = v
    return total


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def softmax_objective(X, coef, targets, weights, n_blocks):
    """Q alone (for step-halving): ``sum_i w_i sum_c t_ic log softmax_c(coef [x_i, 1])``."""
    n, d = X.shape
    n_classes = coef.shape[0]
    pp = padded4(d + 1)
    cp = padded4(n_classes)
    coefp = _padded_classes(coef, cp)
    acc_ll = np.zeros(n_blocks)
    for b in prange(n_blocks):
        xt = np.zeros((pp, TILE_ROWS))
        pr = np.empty((cp, TILE_ROWS))
        top = np.empty(TILE_ROWS)
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        ll = 0.0
        for t0 in range(start, stop, TILE_ROWS):
            rows = min(TILE_ROWS, stop - t0)
            ll += _tile_softmax(X, coefp, targets, weights, t0, rows, xt, pr, top)
        acc_ll[b] = ll
    total = 0.0
    for b in range(n_blocks):
        total += acc_ll[b]
    return total


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def log_softmax_rows(eta, chunk_rows):
    """In place: ``eta[i, c] -> eta[i, c] - log sum_c' exp(eta[i, c'])``, max-shifted."""
    n, n_classes = eta.shape
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for ch in prange(n_chunks):
        stop = min(n, (ch + 1) * chunk_rows)
        for i in range(ch * chunk_rows, stop):
            top = eta[i, 0]
            for c in range(1, n_classes):
                top = max(top, eta[i, c])
            s = 0.0
            for c in range(n_classes):
                s += exp_nonpos(eta[i, c] - top)
            lse = top + math.log(s)
            for c in range(n_classes):
                eta[i, c] -= lse


# ----------------------------------------------------------------------------- truncated Newton


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def softmax_gradient_terms(X, coef, targets, weights, n_blocks, grad, diag, proba):
    """Q, its gradient, the diagonal of its negative Hessian and the probabilities (one pass).

    What a truncated Newton (conjugate-gradient) step needs before its
    Hessian-vector products: O(n C p) work, where :func:`softmax_newton_terms`
    does O(n C^2 p^2).

    Parameters
    ----------
    X, coef, targets, weights, n_blocks, grad : as :func:`softmax_newton_terms`.
    diag : (C, d + 1) float64, filled with the diagonal of minus the Hessian,
        ``diag[c, a] = sum_i w_i p_ic (1 - p_ic) x_ia^2`` (x_id = 1).
    proba : (C, n) float64, filled with ``p(c | x_i)`` (classes by rows, so
        that :func:`softmax_hessian_vector` reads each class's tile contiguously).

    Returns
    -------
    Q : float
    """
    n, d = X.shape
    n_classes = coef.shape[0]
    p = d + 1
    pp = padded4(p)
    cp = padded4(n_classes)
    coefp = _padded_classes(coef, cp)
    acc_ll = np.zeros(n_blocks)
    acc_g = np.zeros((n_blocks, cp, pp))
    acc_d = np.zeros((n_blocks, cp, pp))
    for b in prange(n_blocks):
        xt = np.zeros((pp, TILE_ROWS))  # pad rows stay 0
        x2 = np.zeros((pp, TILE_ROWS))
        pr = np.empty((cp, TILE_ROWS))
        top = np.empty(TILE_ROWS)
        cw = np.zeros((cp, TILE_ROWS))  # pad classes stay 0
        cv = np.zeros((cp, TILE_ROWS))
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        ll = 0.0
        for t0 in range(start, stop, TILE_ROWS):
            rows = min(TILE_ROWS, stop - t0)
            ll += _tile_softmax(X, coefp, targets, weights, t0, rows, xt, pr, top)
            for a in range(p):
                for r in range(rows):
                    x2[a, r] = xt[a, r] * xt[a, r]
            for c in range(n_classes):
                for r in range(rows):
                    w = weights[t0 + r]
                    pc = pr[c, r]
                    cw[c, r] = w * (targets[t0 + r, c] - pc)
                    cv[c, r] = w * pc * (1.0 - pc)
                    proba[c, t0 + r] = pc
            _tile_times_transposed(cw, xt, rows, acc_g[b])
            _tile_times_transposed(cv, x2, rows, acc_d[b])
        acc_ll[b] = ll
    total = 0.0
    for b in range(n_blocks):
        total += acc_ll[b]
    grad[:] = 0.0
    diag[:] = 0.0
    for b in range(n_blocks):
        grad += acc_g[b, :n_classes, :p]
        diag += acc_d[b, :n_classes, :p]
    return total


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def softmax_hessian_vector(X, proba, weights, v, n_blocks, out):
    """``out = -H v``: minus the Hessian of Q times v, without forming the Hessian (one pass).

    Row i contributes ``w_i (diag(p_i) - p_i p_i^T) (v [x_i, 1]) [x_i, 1]^T``:
    with ``u_c = v_c^T [x_i, 1]`` and ``s = sum_c p_ic u_c``, class c gets
    ``w_i p_ic (u_c - s) [x_i, 1]``; 2 C (d + 1) multiply-adds per row, as two
    small matrix products per tile (``_tile_rows_times``, then
    ``_tile_times_transposed``), the classes padded to a multiple of 4.

    Parameters
    ----------
    X : (n, d) float64.
    proba : (C, n) float64, the probabilities from :func:`softmax_gradient_terms`.
    weights : (n,) float64 >= 0.
    v : (C, d + 1) float64, the direction (full parameterisation, intercepts last).
    n_blocks : int, the fixed partition of the rows.
    out : (C, d + 1) float64, filled with ``-H v``.
    """
    n, d = X.shape
    n_classes = v.shape[0]
    p = d + 1
    pp = padded4(p)
    cp = padded4(n_classes)
    vp = _padded_classes(v, cp)
    acc = np.zeros((n_blocks, cp, pp))
    for b in prange(n_blocks):
        xt = np.zeros((pp, TILE_ROWS))  # pad rows stay 0
        u = np.zeros((cp, TILE_ROWS))  # pad classes stay 0 after the weighting below
        s = np.empty(TILE_ROWS)
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        for t0 in range(start, stop, TILE_ROWS):
            rows = min(TILE_ROWS, stop - t0)
            for r in range(rows):
                for a in range(d):
                    xt[a, r] = X[t0 + r, a]
                xt[d, r] = 1.0
            _tile_rows_times(X, t0, rows, vp, u)
            for r in range(rows):
                s[r] = 0.0
            for c in range(n_classes):
                for r in range(rows):
                    s[r] += proba[c, t0 + r] * u[c, r]
            for c in range(n_classes):
                for r in range(rows):
                    u[c, r] = weights[t0 + r] * proba[c, t0 + r] * (u[c, r] - s[r])
            for c in range(n_classes, cp):
                for r in range(rows):
                    u[c, r] = 0.0
            _tile_times_transposed(u, xt, rows, acc[b])
    out[:] = 0.0
    for b in range(n_blocks):
        out += acc[b, :n_classes, :p]
