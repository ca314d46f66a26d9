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
"""

import math

import numpy as np
from numba import njit, prange

from .._config import CACHE, CHUNK_ROWS, ERROR_MODEL, FASTMATH, PARALLEL
from .elementary import exp_nonpos
from .gaussian import padded4
from .mixture import _tile_scatter_lower, block_rows

CHUNK = CHUNK_ROWS
TILE_ROWS = 64  # rows per tile; divides CHUNK_ROWS, so a tile never straddles two blocks


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE, inline="always")
def _tile_softmax(X, coef, targets, weights, t0, rows, xt, pr, top):
    """Load a tile (transposed, with the constant 1 as row d) and its class probabilities.

    Fills ``xt[:d + 1, :rows]`` and ``pr[c, r] = p(c | x_{t0 + r})``; returns the
    tile's weighted ``sum_r w_r sum_c t_rc log p_rc``.
    """
    d = X.shape[1]
    n_classes = coef.shape[0]
    for r in range(rows):
        for a in range(d):
            xt[a, r] = X[t0 + r, a]
        xt[d, r] = 1.0
    for c in range(n_classes):
        b = coef[c, d]
        for r in range(rows):
            pr[c, r] = b
        for a in range(d):
            ca = coef[c, a]
            for r in range(rows):
                pr[c, r] += ca * xt[a, r]
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
    last = n_classes - 1  # the last class's blocks follow from the others' (see below)
    n_pairs = last * (last + 1) // 2
    acc_ll = np.zeros(n_blocks)
    acc_g = np.zeros((n_blocks, n_classes, p))
    acc_h = np.empty((n_blocks, n_pairs, pp, pp))  # zeroed by its block's thread
    for b in prange(n_blocks):
        acc_h[b] = 0.0
        xt = np.zeros((pp, TILE_ROWS))  # pad rows stay 0
        rd = np.zeros((pp, TILE_ROWS))
        pr = np.empty((n_classes, TILE_ROWS))
        top = np.empty(TILE_ROWS)
        cw = np.empty(TILE_ROWS)
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        ll = 0.0
        for t0 in range(start, stop, TILE_ROWS):
            rows = min(TILE_ROWS, stop - t0)
            ll += _tile_softmax(X, coef, targets, weights, t0, rows, xt, pr, top)
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
    acc_ll = np.zeros(n_blocks)
    acc_g = np.zeros((n_blocks, p))
    acc_h = np.empty((n_blocks, pp, pp))
    for b in prange(n_blocks):
        acc_h[b] = 0.0
        xt = np.zeros((pp, TILE_ROWS))
        rd = np.zeros((pp, TILE_ROWS))
        pr = np.empty((n_classes, TILE_ROWS))
        top = np.empty(TILE_ROWS)
        cw = np.empty(TILE_ROWS)
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        ll = 0.0
        for t0 in range(start, stop, TILE_ROWS):
            rows = min(TILE_ROWS, stop - t0)
            ll += _tile_softmax(X, coef, targets, weights, t0, rows, xt, pr, top)
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
    acc_ll = np.zeros(n_blocks)
    for b in prange(n_blocks):
        xt = np.zeros((pp, TILE_ROWS))
        pr = np.empty((n_classes, TILE_ROWS))
        top = np.empty(TILE_ROWS)
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        ll = 0.0
        for t0 in range(start, stop, TILE_ROWS):
            rows = min(TILE_ROWS, stop - t0)
            ll += _tile_softmax(X, coef, targets, weights, t0, rows, xt, pr, top)
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
