"""Kernels of the network with binary hidden units (:class:`~emlab.BinaryHiddenMLPClassifier`).

Parameters are two matrices whose last column is the intercept:

* ``A`` (H, d + 1): hidden unit k is on with probability ``sigmoid(A[k, :d] . x + A[k, d])``;
* ``B`` (C, H + 1): ``p(y = c | h) = softmax_c(B[:, :H] @ h + B[:, H])``.

A configuration of the H hidden units is the integer ``m`` whose bit k is ``h_k``
(``M = 2**H`` of them). The output's log-probabilities depend on the
configuration only, so they are tabulated once per E-step
(:func:`config_log_softmax`); the exact E-step (:func:`exact_e_step`) then
enumerates the configurations of each row in ``O(M)``, building
``log p(h | x)`` by doubling, and accumulates the expected counts
``N[m, c] = sum_i w_i p(h = m | x_i, y_i) [y_i = c]``: the output's M-step
(:func:`output_newton`) is a weighted softmax regression on the M
configurations with those counts, exactly the regression on one pseudo-row per
(sample, configuration) without the N x M rows.
"""

import math

import numpy as np
from numba import njit, prange

from .._config import CACHE, CHUNK_ROWS, ERROR_MODEL, FASTMATH, PARALLEL
from .mixture import block_rows, sum_blocks

CHUNK = CHUNK_ROWS


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def log_sigmoid(u):
    """``log(1 / (1 + exp(-u)))`` without overflow for any u."""
    if u >= 0:
        return -math.log1p(math.exp(-u))
    return u - math.log1p(math.exp(u))


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def sigmoid(u):
    if u >= 0:
        return 1.0 / (1.0 + math.exp(-u))
    e = math.exp(u)
    return e / (1.0 + e)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _hidden_logits(X, A, i, u):
    """u[k] = A[k, :d] . X[i] + A[k, d]."""
    d = X.shape[1]
    for k in range(A.shape[0]):
        s = A[k, d]
        for j in range(d):
            s += A[k, j] * X[i, j]
        u[k] = s


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _log_prior_configs(u, lp):
    """lp[m] = log p(h = m | x) = sum_k log sigmoid(+-u[k]), by doubling: O(2**H)."""
    lp[0] = 0.0
    for k in range(u.shape[0]):
        on = log_sigmoid(u[k])
        off = log_sigmoid(-u[k])
        size = 1 << k
        for m in range(size):
            lp[m + size] = lp[m] + on
            lp[m] += off


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _fold_marginals(r, n_hidden, out):
    """out[k] = sum of r[m] over the m with bit k set; r (2**H,) is overwritten. O(2**H).

    The top half of r is the configurations with the highest bit set; adding it
    onto the bottom half marginalises that bit out, leaving the same problem
    for H - 1 bits.
    """
    for k in range(n_hidden - 1, -1, -1):
        half = 1 << k
        s = 0.0
        for m in range(half):
            s += r[m + half]
            r[m] += r[m + half]
        out[k] = s


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def config_log_softmax(B, out):
    """out[m, c] = log p(y = c | h = m) = log softmax_c(B[:, :H] @ bits(m) + B[:, H]).

    Parameters
    ----------
    B : (C, H + 1) float64.
    out : (2**H, C) float64, filled.
    """
    n_classes, q = B.shape
    n_hidden = q - 1
    z = np.empty(n_classes)
    for m in range(out.shape[0]):
        top = -np.inf
        for c in range(n_classes):
            s = B[c, n_hidden]
            for k in range(n_hidden):
                if (m >> k) & 1:
                    s += B[c, k]
            z[c] = s
            top = max(top, s)
        total = 0.0
        for c in range(n_classes):
            total += math.exp(z[c] - top)
        lse = top + math.log(total)
        for c in range(n_classes):
            out[m, c] = z[c] - lse


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def exact_e_step(X, A, y, sample_weight, log_out, n_blocks, loglik, marginals, counts):
    """The exact E-step: all 2**H configurations of every row, in log space.

    Parameters
    ----------
    X : (n, d) float64; A : (H, d + 1) float64; y : (n,) int64 class indices.
    sample_weight : (n,) float64, weights of the rows in ``counts``.
    log_out : (2**H, C) float64, from :func:`config_log_softmax`.
    n_blocks : int, the fixed partition of the rows (as ``mixture.weighted_scatter``).
    loglik : (n,) float64, filled with ``log p(y_i | x_i)`` (unweighted).
    marginals : (n, H) float64, filled with ``E[h_k | x_i, y_i]``.
    counts : (2**H, C) float64, filled with ``sum_i w_i p(h = m | x_i, y_i) [y_i = c]``.
    """
    n = X.shape[0]
    n_hidden = A.shape[0]
    n_configs, n_classes = log_out.shape
    acc = np.empty((n_blocks, n_configs, n_classes))  # zeroed by its block's thread
    for b in prange(n_blocks):
        acc[b] = 0.0
        u = np.empty(n_hidden)
        lp = np.empty(n_configs)
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        for i in range(start, stop):
            _hidden_logits(X, A, i, u)
            _log_prior_configs(u, lp)
            c = y[i]
            top = -np.inf
            for m in range(n_configs):
                lp[m] += log_out[m, c]
                top = max(top, lp[m])
            total = 0.0
            for m in range(n_configs):
                lp[m] = math.exp(lp[m] - top)
                total += lp[m]
            loglik[i] = top + math.log(total)
            inv = 1.0 / total
            w = sample_weight[i]
            for m in range(n_configs):
                lp[m] *= inv
                acc[b, m, c] += w * lp[m]
            _fold_marginals(lp, n_hidden, marginals[i])
    sum_blocks(acc, counts)


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def exact_predict_proba(X, A, log_out, proba):
    """proba[i, c] = p(y = c | x_i) = sum_m p(h = m | x_i) p(y = c | h = m), in log space.

    Parameters
    ----------
    X : (n, d) float64; A : (H, d + 1) float64; log_out : (2**H, C) float64.
    proba : (n, C) float64, filled; each row sums to 1.
    """
    n = X.shape[0]
    n_hidden = A.shape[0]
    n_configs, n_classes = log_out.shape
    n_chunks = (n + CHUNK - 1) // CHUNK
    for ch in prange(n_chunks):
        u = np.empty(n_hidden)
        lp = np.empty(n_configs)
        lj = np.empty(n_classes)
        for i in range(ch * CHUNK, min(n, (ch + 1) * CHUNK)):
            _hidden_logits(X, A, i, u)
            _log_prior_configs(u, lp)
            top_all = -np.inf
            for c in range(n_classes):
                top = -np.inf
                for m in range(n_configs):
                    top = max(top, lp[m] + log_out[m, c])
                total = 0.0
                for m in range(n_configs):
                    total += math.exp(lp[m] + log_out[m, c] - top)
                lj[c] = top + math.log(total)
                top_all = max(top_all, lj[c])
            total = 0.0
            for c in range(n_classes):
                proba[i, c] = math.exp(lj[c] - top_all)
                total += proba[i, c]
            for c in range(n_classes):
                proba[i, c] /= total


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def hidden_newton(X, A, targets, sample_weight, n_blocks, value, grad, hess):
    """Each hidden unit's weighted logistic log-likelihood with soft targets, its gradient and Hessian.

    ``value[k] = sum_i w_i (t_ik log s_ik + (1 - t_ik) log(1 - s_ik))`` with
    ``s_ik = sigmoid(A[k] . [x_i, 1])``; ``grad[k]`` and ``hess[k]`` its
    derivatives in ``A[k]`` (no penalty: the caller adds it).

    Parameters
    ----------
    X : (n, d); A : (H, d + 1); targets : (n, H) in [0, 1]; sample_weight : (n,).
    n_blocks : int, the fixed row partition.
    value : (H,), grad : (H, d + 1), hess : (H, d + 1, d + 1): filled.
    """
    n, d = X.shape
    n_hidden, p = A.shape
    acc_v = np.empty((n_blocks, n_hidden))
    acc_g = np.empty((n_blocks, n_hidden, p))
    acc_h = np.empty((n_blocks, n_hidden, p, p))  # zeroed by its block's thread
    for b in prange(n_blocks):
        acc_h[b] = 0.0
        v_loc = np.zeros(n_hidden)  # this block's own (cache lines not shared with others)
        g_loc = np.zeros((n_hidden, p))
        u = np.empty(n_hidden)
        xt = np.empty(p)
        xt[d] = 1.0
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        for i in range(start, stop):
            w = sample_weight[i]
            if w == 0.0:
                continue
            for j in range(d):
                xt[j] = X[i, j]
            _hidden_logits(X, A, i, u)
            for k in range(n_hidden):
                t = targets[i, k]
                v_loc[k] += w * (t * log_sigmoid(u[k]) + (1.0 - t) * log_sigmoid(-u[k]))
                s = sigmoid(u[k])
                gk = w * (t - s)
                hk = w * s * (1.0 - s)
                for j in range(p):
                    g_loc[k, j] += gk * xt[j]
                    hj = hk * xt[j]
                    for l in range(j + 1):
                        acc_h[b, k, j, l] -= hj * xt[l]
        acc_v[b] = v_loc
        acc_g[b] = g_loc
    sum_blocks(acc_v, value)
    sum_blocks(acc_g, grad)
    sum_blocks(acc_h, hess)
    for k in range(n_hidden):
        for j in range(p):
            for l in range(j):
                hess[k, l, j] = hess[k, j, l]


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def output_newton(bits, counts, B, n_blocks, value, grad, hess):
    """The output's weighted softmax log-likelihood over configurations, its gradient and Hessian.

    ``value = sum_r sum_c counts[r, c] log softmax_c(B @ [bits[r], 1])``: one
    pseudo-row per configuration r (all 2**H of them for the exact E-step,
    the distinct sampled ones for the Monte Carlo E-step) with class counts
    ``counts[r]``. ``grad[c, j]`` and ``hess[c, j, c2, j2]`` are its derivatives
    in ``B[c, j]`` (no penalty: the caller adds it).

    Parameters
    ----------
    bits : (R, H) uint8 in {0, 1}; counts : (R, C) float64 >= 0; B : (C, H + 1).
    n_blocks : int, the fixed partition of the R rows. Rows with no count are skipped,
    and the Hessian's outer products touch only the units that are on.
    value : (1,), grad : (C, H + 1), hess : (C, H + 1, C, H + 1): filled.
    """
    n_rows, n_hidden = bits.shape
    n_classes, q = B.shape
    acc_v = np.empty((n_blocks, 1))
    acc_g = np.empty((n_blocks, n_classes, q))
    acc_h = np.empty((n_blocks, n_classes, q, n_classes, q))  # zeroed by its block's thread
    for b in prange(n_blocks):
        acc_h[b] = 0.0
        v_loc = 0.0  # this block's own (cache lines not shared with others)
        g_loc = np.zeros((n_classes, q))
        active = np.empty(q, dtype=np.int64)  # the j with [h, 1]_j = 1; the rest contribute 0
        logit = np.empty(n_classes)
        z = np.empty(n_classes)
        start, stop = block_rows(b, n_blocks, n_rows, CHUNK)
        for r in range(start, stop):
            total_count = 0.0
            for c in range(n_classes):
                total_count += counts[r, c]
            if total_count == 0.0:
                continue
            n_active = 0
            for k in range(n_hidden):
                if bits[r, k] != 0:
                    active[n_active] = k
                    n_active += 1
            active[n_active] = n_hidden
            n_active += 1
            top = -np.inf
            for c in range(n_classes):
                s = 0.0
                for a in range(n_active):
                    s += B[c, active[a]]
                logit[c] = s
                top = max(top, s)
            total = 0.0
            for c in range(n_classes):
                total += math.exp(logit[c] - top)
            lse = top + math.log(total)
            for c in range(n_classes):
                z[c] = math.exp(logit[c] - lse)  # p(y = c | h = bits[r])
                v_loc += counts[r, c] * (logit[c] - lse)
            for c in range(n_classes):
                gc = counts[r, c] - total_count * z[c]
                for a in range(n_active):
                    g_loc[c, active[a]] += gc
                for c2 in range(c + 1):
                    cov = total_count * ((z[c] if c == c2 else 0.0) - z[c] * z[c2])
                    for a in range(n_active):
                        j = active[a]
                        for a2 in range(n_active):
                            acc_h[b, c, j, c2, active[a2]] -= cov
        acc_v[b, 0] = v_loc
        acc_g[b] = g_loc
    sum_blocks(acc_v, value)
    sum_blocks(acc_g, grad)
    sum_blocks(acc_h, hess)
    for c in range(n_classes):
        for c2 in range(c):
            for j in range(q):
                for j2 in range(q):
                    hess[c2, j2, c, j] = hess[c, j, c2, j2]


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def monte_carlo_e_step(bits, B, y, loglik, marginals, weights):
    """The importance-sampled E-step from configurations drawn from ``p(h | x_i)``.

    With S draws ``h_is ~ p(h | x_i)``, the self-normalised importance weights
    of the posterior are ``weights[i, s] = p(y_i | h_is) / sum_s' p(y_i | h_is')``;
    ``loglik[i] = log(mean_s p(y_i | h_is))`` estimates ``log p(y_i | x_i)``
    (consistent, biased low for finite S), ``marginals[i, k] = sum_s
    weights[i, s] h_isk`` estimates ``E[h_k | x_i, y_i]``.

    Parameters
    ----------
    bits : (n, S, H) uint8, the draws; B : (C, H + 1); y : (n,) int64.
    loglik : (n,), marginals : (n, H), weights : (n, S): filled.
    """
    n, n_draws, n_hidden = bits.shape
    n_classes = B.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    for ch in prange(n_chunks):
        z = np.empty(n_classes)
        for i in range(ch * CHUNK, min(n, (ch + 1) * CHUNK)):
            c_obs = y[i]
            top_s = -np.inf
            for s in range(n_draws):
                top = -np.inf
                for c in range(n_classes):
                    v = B[c, n_hidden]
                    for k in range(n_hidden):
                        if bits[i, s, k]:
                            v += B[c, k]
                    z[c] = v
                    top = max(top, v)
                total = 0.0
                for c in range(n_classes):
                    total += math.exp(z[c] - top)
                weights[i, s] = z[c_obs] - top - math.log(total)  # log p(y_i | h_is)
                top_s = max(top_s, weights[i, s])
            total = 0.0
            for s in range(n_draws):
                weights[i, s] = math.exp(weights[i, s] - top_s)
                total += weights[i, s]
            loglik[i] = top_s + math.log(total / n_draws)
            for k in range(n_hidden):
                marginals[i, k] = 0.0
            for s in range(n_draws):
                weights[i, s] /= total
                for k in range(n_hidden):
                    if bits[i, s, k]:
                        marginals[i, k] += weights[i, s]


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def monte_carlo_predict_proba(bits, B, proba):
    """proba[i] = mean over draws s of softmax(B @ [bits[i, s], 1]): ``p(y | x_i)`` estimated.

    Parameters
    ----------
    bits : (n, S, H) uint8, draws from ``p(h | x_i)``; B : (C, H + 1).
    proba : (n, C), filled; each row sums to 1.
    """
    n, n_draws, n_hidden = bits.shape
    n_classes = B.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    for ch in prange(n_chunks):
        z = np.empty(n_classes)
        for i in range(ch * CHUNK, min(n, (ch + 1) * CHUNK)):
            for c in range(n_classes):
                proba[i, c] = 0.0
            for s in range(n_draws):
                top = -np.inf
                for c in range(n_classes):
                    v = B[c, n_hidden]
                    for k in range(n_hidden):
                        if bits[i, s, k]:
                            v += B[c, k]
                    z[c] = v
                    top = max(top, v)
                total = 0.0
                for c in range(n_classes):
                    z[c] = math.exp(z[c] - top)
                    total += z[c]
                for c in range(n_classes):
                    proba[i, c] += z[c] / total
            for c in range(n_classes):
                proba[i, c] /= n_draws


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def solve_ridged(M, rhs, out):
    """out[k] = (M[k] + r_k I)^{-1} rhs[k] by Cholesky, for symmetric positive semi-definite M[k].

    The ridge r_k starts at ``1e-10 * max(1, max_j |M[k, j, j]|)`` (for the
    softmax's flat directions) and grows a hundredfold while the
    factorisation fails. Done here rather than by LAPACK so that these small
    solves, one per Newton step, never wake (or wait for) a BLAS thread pool.

    Parameters
    ----------
    M : (K, P, P) float64; rhs : (K, P) float64; out : (K, P) float64, filled.
    """
    n_systems, p, _ = M.shape
    L = np.empty((p, p))
    for k in range(n_systems):
        scale = 1.0
        for j in range(p):
            scale = max(scale, abs(M[k, j, j]))
        ridge = 1e-10 * scale
        for _ in range(12):
            ok = True
            for j in range(p):
                s = M[k, j, j] + ridge
                for l in range(j):
                    s -= L[j, l] * L[j, l]
                if not s > 0.0:
                    ok = False
                    break
                L[j, j] = math.sqrt(s)
                inv = 1.0 / L[j, j]
                for i in range(j + 1, p):
                    t = M[k, i, j]
                    for l in range(j):
                        t -= L[i, l] * L[j, l]
                    L[i, j] = t * inv
            if ok:
                break
            ridge *= 100.0
        if not ok:  # not even a large ridge helps (NaN): no step
            for j in range(p):
                out[k, j] = 0.0
            continue
        for j in range(p):  # L z = rhs
            t = rhs[k, j]
            for l in range(j):
                t -= L[j, l] * out[k, l]
            out[k, j] = t / L[j, j]
        for j in range(p - 1, -1, -1):  # L^T x = z
            t = out[k, j]
            for l in range(j + 1, p):
                t -= L[l, j] * out[k, l]
            out[k, j] = t / L[j, j]
