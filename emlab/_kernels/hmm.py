"""Hidden Markov model kernels: forward-backward with expected transition counts, and Viterbi.

The forward-backward pass works on **scaled probabilities** (Rabiner, 1989), not
in log space, so its inner step is a few multiply-adds and no ``exp``/``log``:

* each row of log-emissions is shifted by its maximum ``m_t`` and exponentiated
  once, in a parallel pre-pass: ``b_t(j) = exp(log_emission[t, j] - m_t)`` in [0, 1];
* forward: ``alpha_t = (alpha_{t-1} A) * b_t``. Its sum ``c_t`` only falls; when
  it drops below RESCALE the vector is divided by it and ``log c_t`` is added to
  the log-likelihood, ``log p(x) = sum_t m_t + sum log c + log sum(alpha_T)``.
  Dividing only then keeps a division off the recursion's critical path. (For
  K <= 4, ``forward4`` multiplies by ``2**-e`` instead, ``e`` the binary
  exponent of ``c_t``, and adds ``e log 2``: exact, with no division or log.)
* backward: ``w = b_{t+1} * beta_{t+1}``, ``beta_t = A w`` and ``s_t = alpha_t .
  A w``. The posteriors ``gamma_t = alpha_t * beta_t / s_t`` and the expected
  transitions ``xi_t(i, j) = alpha_t(i) A_ij w_j / s_t`` are normalised at
  every step (so they sum to 1 whatever the round-off; nothing drifts over
  long sequences), and ``xi_t`` is added to a K x K sum at once: no (T, K, K)
  array exists. ``beta`` itself is divided by ``s_t`` only when ``s_t`` leaves
  [RESCALE_BACK, 2].

For K <= 4 states a step's variables are one four-lane vector (``simd.QUAD``),
and the expected transitions are summed as ``S = sum_t u_t w_{t+1}^T`` (``u_t =
alpha_t / s_t``), multiplied by A once at the end: the broadcasts of w's lanes
that make ``A w`` serve the sum too. Measured at T = 1e6, K = 4, M = 10 (one
sequence, the split path below): the forward-backward and counts from 12.2-14.3
to 9.6-10.4 ms, a categorical fit's iteration from 13.8-14.1 to 10.6 ms (medians).

**Underflow.** ``c_t`` (and ``s_t``, which equals ``c_{t+1}`` times a constant
in exact arithmetic) is a sum of products ``P(z_t = j | past) * b_t(j)``. When
the past puts all its mass on states whose emission is below about ``1e-250``
times the best one, the sum underflows (to 0 or a subnormal number) although
the likelihood is positive. Such a step is detected (``c_t < TINY``) and
redone in log space from the unshifted log-emissions, which the kernels read
again only for those steps. Forward variables below the smallest normal double
are set to 0 (their state is dropped for that step: its mass is below 1e-278
of the total), and backward variables of states with zero forward mass are set
to 0, which keeps every beta finite (``beta_t(i) <= 2 / alpha_t(i)``). As in
any scaled forward-backward, a state dropped this way cannot come back through
later evidence; the log-space recursions of the reference (and hmmlearn's
'log' mode) keep it, which matters only for models that forbid returning to a
state whose probability fell below 1e-278.

A sequence that no path can produce (every path has probability 0) gets
``logprob = -inf``, uniform posteriors and no transition counts; the caller
decides what that means.

Many sequences are given as one array and ``bounds`` (sequence q is rows
``bounds[q]:bounds[q + 1]``). They are processed in parallel over a fixed
partition of the sequences into blocks (:func:`n_seq_blocks`, which depends on
the number of sequences and states only); each block adds its transition counts
into its own slot, and the slots are summed in block order, so the results do
not depend on the number of threads. One long sequence of K <= 4 states runs
its forward and backward recursions at the same time instead, meeting in the
middle (section "one long sequence" below), and falls back to the serial
recursions described here wherever that could lose probability mass.
"""

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .._config import (ACCUMULATOR_BYTES, CACHE, CHUNK_ROWS, ERROR_MODEL, FASTMATH, MAX_BLOCKS,
                       PARALLEL, serial_twin)
from .elementary import (EXP_UNDERFLOW, LN2_HI, LN2_LO, exp_nonpos, exponent_and_mantissa,
                         power_of_two)
from .gaussian import _prefetch_bytes
from .mixture import block_rows, sum_blocks
from .simd import (qadd, qany_between, qany_flushed, qdiv, qfirst, qflush, qlanes, qload, qmul,
                   qpack, qsplats, qstore, qsum, qsums, qwhere_positive, vadd_row4, vfma)

CHUNK = CHUNK_ROWS
TINY = 1e-280  # a scale below this is redone in log space
RESCALE = 1e-30  # forward variables are divided by their sum when it falls below this
RESCALE_BACK = 1e-50  # backward variables are renormalised when alpha . beta falls below this
DBL_MIN = 2.2250738585072014e-308  # smallest normal double
EXP_CAP = 700.0  # exponents are capped here where a ratio could overflow


def _row(symbols, t):
    """The row of ``scaled`` and ``shift`` that holds step t's emissions: t itself where
    ``symbols`` is None, else (per-symbol tables, a categorical HMM) step t's symbol.
    Chosen when the kernel is compiled, so that the recursions of other HMMs do not
    test it at every step (in kernels only)."""
    raise NotImplementedError("_row is called inside Numba kernels only")


@overload(_row)
def _row_of(symbols, t):
    if isinstance(symbols, types.NoneType):
        return lambda symbols, t: t
    return lambda symbols, t: symbols[t]


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _shifted_log_emission(log_emission, scaled, shift, symbols, t, j):
    """``log_emission[t, j] - shift[t]``, the log of ``scaled[t, j]`` without its rounding.

    With no rows in ``log_emission`` (the caller gave per-symbol tables of
    ratios that are normal numbers or exact zeros: ``symbols``), the log of
    step t's entry of ``scaled`` itself, which then loses nothing.
    """
    if log_emission.shape[0] == 0:
        b = scaled[_row(symbols, t), j]
        return math.log(b) if b > 0.0 else -np.inf
    return log_emission[t, j] - shift[t]


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _log_forward_step(pred, log_emission, scaled, shift, symbols, t, alpha):
    """Forward step t in log space, from the predicted state distribution ``pred``.

    Fills ``alpha[t]`` (normalised) and returns ``log c_t`` relative to
    ``shift[t]``, or ``-inf`` if no state can produce row t.
    """
    n_states = pred.shape[0]
    top = -np.inf
    for j in range(n_states):
        v = -np.inf
        if pred[j] > 0.0:
            v = math.log(pred[j]) + _shifted_log_emission(log_emission, scaled, shift, symbols,
                                                          t, j)
        alpha[t, j] = v
        if v > top:
            top = v
    if top == -np.inf:
        return -np.inf
    s = 0.0
    for j in range(n_states):
        e = math.exp(alpha[t, j] - top)
        alpha[t, j] = e
        s += e
    inv = 1.0 / s
    for j in range(n_states):
        v = alpha[t, j] * inv
        alpha[t, j] = v if v >= DBL_MIN else 0.0
    return top + math.log(s)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def forward_one(scaled, shift, symbols, log_emission, start, stop, startprob, transmat, alpha):
    """Forward variables of rows [start, stop) into ``alpha``; returns log p(x).

    ``scaled[t, j] = exp(log_emission[t, j] - shift[t])`` (with ``symbols``, the
    rows of the step's symbol: see :func:`_row`); ``log_emission`` is read only
    for steps whose scale underflows. Each ``alpha[t]`` is
    proportional to ``p(z_t | x_1..t)`` with a sum in [RESCALE, 1] (it is divided
    by its sum only when that falls below RESCALE, which keeps the division
    off the recursion's critical path).
    """
    n_states = startprob.shape[0]
    pred = np.empty(n_states)
    loglik = 0.0
    for t in range(start, stop):
        r = _row(symbols, t)
        if t == start:
            for j in range(n_states):
                pred[j] = startprob[j]
        else:
            for j in range(n_states):
                pred[j] = 0.0
            for i in range(n_states):
                a = alpha[t - 1, i]
                for j in range(n_states):
                    pred[j] += a * transmat[i, j]
        c = 0.0
        for j in range(n_states):
            v = pred[j] * scaled[r, j]
            v = v if v >= DBL_MIN else 0.0
            alpha[t, j] = v
            c += v
        if c < RESCALE:
            if c >= TINY:
                inv = 1.0 / c
                for j in range(n_states):
                    v = alpha[t, j] * inv
                    alpha[t, j] = v if v >= DBL_MIN else 0.0
                loglik += math.log(c)
            else:
                log_c = _log_forward_step(pred, log_emission, scaled, shift, symbols, t, alpha)
                if log_c == -np.inf:
                    return -np.inf
                loglik += log_c
        loglik += shift[r]
    c = 0.0
    for j in range(n_states):
        c += alpha[stop - 1, j]
    return loglik + math.log(c)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _log_backward_weights(log_emission, scaled, shift, symbols, t, beta, alpha, transmat, w):
    """``w_j`` proportional to ``b_{t+1}(j) beta_j``, computed in log space.

    The constant is chosen so that ``sum_j P(z_{t+1} = j | past) w_j`` is 1
    (up to the scale of ``alpha[t]``) whatever the size of the emissions; used
    when the linear form underflows.
    """
    n_states = w.shape[0]
    top = -np.inf
    for j in range(n_states):
        pred = 0.0
        for i in range(n_states):
            pred += alpha[t, i] * transmat[i, j]
        r = -np.inf
        q = -np.inf
        if pred > 0.0 and beta[j] > 0.0:
            r = (_shifted_log_emission(log_emission, scaled, shift, symbols, t + 1, j)
                 + math.log(beta[j]))
            q = r + math.log(pred)
        w[j] = r if q > -np.inf else -np.inf  # -inf: no contribution
        if q > top:
            top = q
    for j in range(n_states):
        if top == -np.inf or w[j] == -np.inf:
            w[j] = 0.0
        else:
            w[j] = math.exp(min(w[j] - top, EXP_CAP))


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _beta_products(transmat, w, alpha, t, tmp, bt):
    """``tmp[i, j] = A_ij w_j``, ``bt = A w``; returns ``alpha_t . A w``."""
    n_states = w.shape[0]
    s = 0.0
    for i in range(n_states):
        acc = 0.0
        for j in range(n_states):
            v = transmat[i, j] * w[j]
            tmp[i, j] = v
            acc += v
        bt[i] = acc
        s += alpha[t, i] * acc
    return s


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def backward_one(scaled, shift, symbols, log_emission, start, stop, transmat, gamma, xi_sum):
    """Posteriors and expected transition counts of rows [start, stop).

    On entry ``gamma[start:stop]`` holds the forward variables (from
    :func:`forward_one`); on exit the state posteriors. ``xi_sum`` (K, K) is
    added ``sum_t xi_t``. The backward variables are kept so that
    ``s_t = alpha_t . beta_t`` lies in [RESCALE_BACK, 2]; posteriors and
    transition counts are divided by ``s_t``, so they sum to 1 at every step.
    """
    n_states = transmat.shape[0]
    beta = np.empty(n_states)
    w = np.empty(n_states)
    bt = np.empty(n_states)
    tmp = np.empty((n_states, n_states))
    last = stop - 1
    s = 0.0
    for i in range(n_states):
        beta[i] = 1.0 if gamma[last, i] > 0.0 else 0.0
        s += gamma[last, i]
    inv = 1.0 / s
    for i in range(n_states):
        gamma[last, i] *= inv
    for t in range(last - 1, start - 1, -1):
        r = _row(symbols, t + 1)
        for j in range(n_states):
            w[j] = scaled[r, j] * beta[j]
        s = _beta_products(transmat, w, gamma, t, tmp, bt)
        if not s >= TINY:
            _log_backward_weights(log_emission, scaled, shift, symbols, t, beta, gamma, transmat, w)
            s = _beta_products(transmat, w, gamma, t, tmp, bt)
            if not s > 0.0:  # cannot happen after a finite forward pass; never divide by 0
                s = 1.0
        inv = 1.0 / s
        for i in range(n_states):
            a = gamma[t, i]
            u = a * inv
            for j in range(n_states):
                xi_sum[i, j] += u * tmp[i, j]
            beta[i] = bt[i] if a > 0.0 else 0.0
            gamma[t, i] = u * bt[i]
        if s < RESCALE_BACK or s > 2.0:
            for i in range(n_states):
                beta[i] *= inv


# ----------------------------------------------------------------------------- K <= 4
#
# The same recursions for up to four states, with the states' values in named
# variables (registers) and the transition matrix padded to 4 x 4 with zeros.
# The generic loops above keep them in small arrays, whose loads and stores lie
# on the recursion's critical path: measured here on one core, 1e6 steps with
# K = 4, the forward pass takes 7 ms instead of 30 and the backward 12 instead
# of 32. Padded states have zero probability throughout.


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _pad4(a):
    out = np.zeros((4, 4))
    if a.ndim == 1:
        for j in range(a.shape[0]):
            out[0, j] = a[j]
    else:
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                out[i, j] = a[i, j]
    return out


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _row4(a, t, n_states):
    """``a[t, :K]`` padded with zeros to four values."""
    return (a[t, 0], a[t, 1] if n_states > 1 else 0.0, a[t, 2] if n_states > 2 else 0.0,
            a[t, 3] if n_states > 3 else 0.0)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _store4(a, t, n_states, v0, v1, v2, v3):
    """``a[t, :K] = (v0, v1, v2, v3)[:K]``."""
    a[t, 0] = v0
    if n_states > 1:
        a[t, 1] = v1
    if n_states > 2:
        a[t, 2] = v2
    if n_states > 3:
        a[t, 3] = v3


#: Rows ahead of the recursions' step that they prefetch (their arrays stream from memory).
PREFETCH_ROWS = 64


def _prefetch_row(a, t, rows):
    """Prefetch row ``t + rows`` of ``a`` (1-D or 2-D, C-contiguous); nothing for None (in
    kernels only)."""
    raise NotImplementedError("_prefetch_row is called inside Numba kernels only")


@overload(_prefetch_row)
def _prefetch_row_of(a, t, rows):
    if isinstance(a, types.NoneType):
        return lambda a, t, rows: None
    return lambda a, t, rows: _prefetch_bytes(a, t, rows * (a.size // a.shape[0]) * a.itemsize)


def _prefetch_step(symbols, scaled, shift, alpha, t, rows):
    """Prefetch row ``t + rows`` (``rows`` < 0: behind, for the backward recursions) of the
    arrays a recursion streams: ``alpha`` (the forward variables or gamma) and, without
    ``symbols``, each step's ``scaled`` emissions and ``shift`` (None: not read); with
    ``symbols`` those are per-symbol tables that stay in cache (in kernels only)."""
    raise NotImplementedError("_prefetch_step is called inside Numba kernels only")


@overload(_prefetch_step)
def _prefetch_step_of(symbols, scaled, shift, alpha, t, rows):
    if not isinstance(symbols, types.NoneType):
        return lambda symbols, scaled, shift, alpha, t, rows: _prefetch_row(alpha, t, rows)

    def prefetch(symbols, scaled, shift, alpha, t, rows):
        _prefetch_row(scaled, t, rows)
        _prefetch_row(shift, t, rows)
        _prefetch_row(alpha, t, rows)
    return prefetch


def _tally_rows(tally, symbols, gamma, start, stop):
    """:func:`_count_symbols` of rows [start, stop) into ``tally`` (M, K), a categorical
    HMM's emission counts as the split path produces gamma; nothing where ``symbols``
    or ``tally`` is None, chosen when the kernel is compiled (in kernels only)."""
    raise NotImplementedError("_tally_rows is called inside Numba kernels only")


@overload(_tally_rows)
def _tally_rows_of(tally, symbols, gamma, start, stop):
    if isinstance(symbols, types.NoneType) or isinstance(tally, types.NoneType):
        return lambda tally, symbols, gamma, start, stop: None
    def tally_rows(tally, symbols, gamma, start, stop):
        if gamma.shape[1] == 4:  # one four-lane add a row (scalar: 3x the time, in L1)
            for t in range(start, stop):
                vadd_row4(tally, symbols[t], gamma, t)
        else:
            _count_symbols(symbols, gamma, start, stop, tally)
    return tally_rows


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _load_row(a, t, n_states):
    """``a[t, :K]`` as a four-lane vector, zero beyond K."""
    if a.shape[1] == 4:
        return qload(a, t)
    return qpack(*_row4(a, t, n_states))


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _store_row(a, t, n_states, v):
    """``a[t, :K] = v[:K]`` for a four-lane vector ``v``."""
    if a.shape[1] == 4:
        qstore(a, t, v)
    else:
        v0, v1, v2, v3 = qlanes(v)
        _store4(a, t, n_states, v0, v1, v2, v3)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _columns4(A):
    """The four columns of a (4, 4) matrix as four-lane vectors."""
    return (qpack(A[0, 0], A[1, 0], A[2, 0], A[3, 0]), qpack(A[0, 1], A[1, 1], A[2, 1], A[3, 1]),
            qpack(A[0, 2], A[1, 2], A[2, 2], A[3, 2]), qpack(A[0, 3], A[1, 3], A[2, 3], A[3, 3]))


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _combine4(vectors, splats):
    """``(c_0 s_0 + c_1 s_1) + (c_2 s_2 + c_3 s_3)`` for four four-lane vectors ``c`` and the
    broadcasts ``s`` of a vector's lanes (:func:`~.simd.qsplats`): ``A w`` where ``c`` are
    A's columns (:func:`_columns4`) and ``s`` w's lanes, ``w^T A`` where ``c`` are A's rows."""
    c0, c1, c2, c3 = vectors
    s0, s1, s2, s3 = splats
    return qadd(vfma(qmul(c0, s0), c1, s1), vfma(qmul(c2, s2), c3, s3))


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _add_columns4(S, splats, u):
    """``S[j] + w_j u`` for the columns ``S`` (four four-lane vectors) of a running sum of
    outer products ``u w^T``, from ``splats``, the broadcasts of w's lanes (those of the
    step's ``A w``: no broadcast of its own)."""
    return (vfma(S[0], splats[0], u), vfma(S[1], splats[1], u), vfma(S[2], splats[2], u),
            vfma(S[3], splats[3], u))


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _add_transitions(xi, A, S):
    """``xi[i, j] += A_ij S_ij``: the expected transitions ``sum_t u_t(i) A_ij w_{t+1}(j)``
    from ``S = sum_t u_t w_{t+1}^T`` (given by its columns, :func:`_add_columns4`), A taken
    out of the sum; ``xi`` is (K, K) or (4, 4)."""
    for j in range(xi.shape[1]):
        column = qlanes(S[j])
        for i in range(xi.shape[0]):
            xi[i, j] += A[i, j] * column[i]


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _forward_emit(alpha, t, last, n_states, v, columns, S, xi):
    """Row t of :func:`forward4` from its forward variables ``v``: ``alpha[t] = v`` (``xi``
    None), or ``gamma_t`` and, below the last row, ``xi_t`` from ``v`` and the stored
    ``w_{t+1}`` (``S`` the running sum of :func:`_add_transitions`). Returns ``S`` and
    whether ``Z_t >= TINY``."""
    if xi is None:
        _store_row(alpha, t, n_states, v)
        return S, True
    if t < last:
        splats = qsplats(_load_row(alpha, t + 1, n_states))  # w_{t+1}
        g = qmul(v, _combine4(columns, splats))
    else:  # the last row: beta = 1
        g = v
        splats = qsplats(v)  # unused
    z = qsums(g)
    if not qfirst(z) >= TINY:
        return S, False
    inv = qdiv(1.0, z)
    _store_row(alpha, t, n_states, qmul(g, inv))
    if t < last:
        S = _add_columns4(S, splats, qmul(v, inv))
    return S, True


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def forward4(scaled, shift, symbols, log_emission, start, stop, startprob, transmat, alpha,
             prev=None, final=True, xi=None, tally=None):
    """:func:`forward_one` for K <= 4; ``scaled`` has 4 columns (zero beyond K).

    The split path (see "one long sequence") runs it over a part of the sequence:

    * ``prev`` (K,): the forward variables of row ``start - 1``, to resume from
      instead of ``startprob``; the returned log-likelihood then counts from there;
    * ``final`` (default): add ``log sum(alpha)`` of the last row, ending the sequence;
    * ``xi`` (4, 4): ``alpha[t + 1]`` holds ``w_{t+1}`` on entry, and row t gets
      ``gamma_t`` instead of ``alpha_t`` as soon as ``alpha_t`` is known (row
      ``stop - 1`` is the sequence's last); the expected transitions are added
      to ``xi``. Returns NaN if some ``Z_t`` is below TINY.
    * ``tally`` (M, K), with ``xi`` and ``symbols``: ``gamma_t`` is also added to
      the row of step t's symbol (:func:`_tally_rows`, every TALLY_ROWS rows).

    A step's variables are one four-lane vector. When their sum ``c`` falls below
    RESCALE they are multiplied by ``2**-e``, ``e`` the binary exponent of ``c``
    (exact, and no division or log on the way: ``e`` is added up and multiplied
    by ``log 2`` at the end), and a step whose sum is below TINY is redone in
    log space. Both are rare, and both leave the inner loop, which then holds
    no call: a call anywhere in it (a log, even on a path taken once in a
    hundred steps) made LLVM keep the running sums in memory, and the step
    took 40% longer (measured, T = 1e6, K = 4).
    """
    n_states = startprob.shape[0]
    A = _pad4(transmat)
    rows = (qload(A, 0), qload(A, 1), qload(A, 2), qload(A, 3))
    columns = _columns4(A)
    zero = qpack(0.0, 0.0, 0.0, 0.0)
    S = (zero, zero, zero, zero)  # sum_t u_t w_{t+1}^T (see _add_transitions)
    pred = np.zeros((1, n_states))
    if prev is None:
        a = zero
        first = _load_row(startprob.reshape((1, n_states)), 0, n_states)
    else:
        a = _load_row(prev.reshape((1, n_states)), 0, n_states)
        first = a  # unused: resumed from prev
    loglik = 0.0
    octaves = 0  # the exponents of the rescalings
    last = stop - 1
    for t0 in range(start, stop, TALLY_ROWS):  # blocks: see TALLY_ROWS
        t1 = min(stop, t0 + TALLY_ROWS)
        t = t0
        while t < t1:
            c = 1.0
            p = a
            v = a
            while t < t1:  # ordinary steps: no call in this loop (see above)
                _prefetch_step(symbols, scaled, shift, alpha, t, PREFETCH_ROWS)
                r = _row(symbols, t)
                if t == start and prev is None:
                    p = first
                else:  # alpha_{t-1} A, by rows: (a_0 A_0 + a_1 A_1) + (a_2 A_2 + a_3 A_3)
                    p = _combine4(rows, qsplats(a))
                v = qflush(qmul(p, qload(scaled, r)), DBL_MIN)
                c = qsum(v)
                if c < RESCALE:
                    break
                S, ok = _forward_emit(alpha, t, last, n_states, v, columns, S, xi)
                if not ok:
                    return np.nan
                a = v
                loglik += shift[r]
                t += 1
            if t == t1:
                break
            r = _row(symbols, t)  # step t's sum c fell below RESCALE
            if c >= TINY:
                e = exponent_and_mantissa(c)[0]
                v = qmul(v, power_of_two(-e))
                octaves += e
            else:
                _store_row(pred, 0, n_states, p)
                log_c = _log_forward_step(pred[0], log_emission, scaled, shift, symbols, t,
                                          alpha)
                if log_c == -np.inf:
                    return -np.inf
                loglik += log_c
                v = _load_row(alpha, t, n_states)
            S, ok = _forward_emit(alpha, t, last, n_states, v, columns, S, xi)
            if not ok:
                return np.nan
            a = v
            loglik += shift[r]
            t += 1
        if xi is not None:
            _tally_rows(tally, symbols, alpha, t0, t1)
    if xi is not None:
        _add_transitions(xi, A, S)
    loglik += octaves * LN2_LO + octaves * LN2_HI
    if final:
        loglik += math.log(qsum(a))
    return loglik


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _backward_emit(gamma, t, n_states, alpha, v, s, splats, S):
    """Row t of :func:`backward4`: ``gamma_t`` from the forward variables ``alpha``, ``v =
    A w_{t+1}`` and ``s = alpha . v`` (in every lane), the step's transitions added to
    ``S`` (:func:`_add_columns4`, ``splats`` w's broadcasts). Returns ``S`` and ``beta_t``,
    divided by ``s`` where ``s`` leaves [RESCALE_BACK, 2] (a branch, not a select: keeps
    the division off the recursion's path)."""
    inv = qdiv(1.0, s)
    u = qmul(alpha, inv)
    S = _add_columns4(S, splats, u)
    beta = qwhere_positive(alpha, v)  # a state of no forward mass keeps none backwards
    scale = qfirst(s)
    if scale < RESCALE_BACK or scale > 2.0:
        beta = qmul(beta, inv)
    _store_row(gamma, t, n_states, qmul(u, v))
    return S, beta


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def backward4(scaled, shift, symbols, log_emission, start, stop, transmat, gamma, xi_sum):
    """:func:`backward_one` for K <= 4; ``scaled`` has 4 columns (zero beyond K).

    A step's variables are one four-lane vector, the transitions summed as in
    the split path (:func:`_add_transitions`); a step whose ``s_t`` falls below
    TINY leaves the inner loop to be redone from the log-emissions, so that the
    loop holds no call (see :func:`forward4`).
    """
    n_states = transmat.shape[0]
    A = _pad4(transmat)
    columns = _columns4(A)
    zero = qpack(0.0, 0.0, 0.0, 0.0)
    S = (zero, zero, zero, zero)  # sum_t u_t w_{t+1}^T (see _add_transitions)
    beta_row = np.zeros((1, n_states))
    w_row = np.zeros((1, n_states))
    last = stop - 1
    g = _load_row(gamma, last, n_states)
    g = qmul(g, 1.0 / qsum(g))
    _store_row(gamma, last, n_states, g)
    beta = qwhere_positive(g, 1.0)
    t = last - 1
    while t >= start:
        alpha = zero
        v = zero
        s = zero
        splats = qsplats(zero)
        while t >= start:  # ordinary steps: no call in this loop
            _prefetch_step(symbols, scaled, None, gamma, t, -PREFETCH_ROWS)
            w = qmul(qload(scaled, _row(symbols, t + 1)), beta)
            alpha = _load_row(gamma, t, n_states)
            splats = qsplats(w)
            v = _combine4(columns, splats)
            s = qsums(qmul(alpha, v))
            if not qfirst(s) >= TINY:
                break
            S, beta = _backward_emit(gamma, t, n_states, alpha, v, s, splats, S)
            t -= 1
        if t < start:
            break
        # the linear form underflowed: the same step from the log-emissions
        _store_row(beta_row, 0, n_states, beta)
        _log_backward_weights(log_emission, scaled, shift, symbols, t, beta_row[0], gamma,
                              transmat, w_row[0])
        splats = qsplats(_load_row(w_row, 0, n_states))
        v = _combine4(columns, splats)
        s = qsums(qmul(alpha, v))
        if not qfirst(s) > 0.0:  # cannot happen after a finite forward pass; never divide by 0
            s = qpack(1.0, 1.0, 1.0, 1.0)
        S, beta = _backward_emit(gamma, t, n_states, alpha, v, s, splats, S)
        t -= 1
    _add_transitions(xi_sum, A, S)


# ----------------------------------------------------------------------------- one long sequence
#
# One sequence of K <= 4 states is cut at its middle h, and its forward and
# backward recursions run at the same time, on two threads, meeting in the middle:
#
# 1. forward over [0, h), storing alpha_t; backward over [h, T), storing
#    w_t = b_t * beta_t (in gamma's rows, which gamma_t overwrites later);
# 2. forward over [h, T), resumed from alpha_{h-1}: at row t, alpha_t and the
#    stored w_{t+1} give gamma_t and xi_t at once; backward over [0, h), resumed
#    from w_h: at row t, the stored alpha_t and w_{t+1} give gamma_t and xi_t.
#
# with, at every row,
#
#     gamma_t(i) = alpha_t(i) (A w_{t+1})_i / Z_t,
#     xi_t(i, j) = alpha_t(i) A_ij w_{t+1}(j) / Z_t,   Z_t = alpha_t . A w_{t+1},
#
# normalised per step, so the scales of alpha and beta cancel, and the backward
# recursion no longer uses the forward variables: beta_t = A w_{t+1} is rescaled
# by its own sum. A backward pass scaled on its own can lose what matters,
# though: a state whose backward variable is below the smallest normal double,
# relative to the others, may be the one the past makes likely. So every loss is
# detected (a backward variable or a product w flushed below DBL_MIN, an
# emission more than 708 below its row's maximum, a backward sum below TINY,
# a Z_t below TINY), and then the sequence is redone by the serial forward4 /
# backward4, whose backward scaling follows the forward variables. The results
# do not depend on the number of threads: each recursion is sequential, and the
# two halves' transition counts are added in a fixed order.

SPLIT_MIN_ROWS = 8192  # shorter single sequences: the serial pass (no parallel region)
#: The split path's recursions run in blocks of this many rows, and with symbols (a
#: categorical HMM) each block's gamma is added into the emission counts right after
#: it is made, while in L1 (:func:`_tally_rows`). Measured (T = 1e6, K = 4, M = 10,
#: one step of forward-backward and counts, old and new alternated in one process):
#: 14-20% less time than counting afterwards with 256 rows (1024 about the same), 2-11%
#: with 64; the same blocks added as scalars, 4-12%; one row at a time inside the
#: recursion, as four scalars, about as much time as the pass afterwards.
TALLY_ROWS = 256


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def backward_split4(scaled, symbols, start, stop, transmat, gamma, w_stop, combine, xi,
                    tally=None):
    """The backward half of a split pass over rows [start, stop) (see the section notes).

    Without ``combine`` (step 1; ``stop`` is the sequence's end): ``gamma[t] =
    w_t`` for t in [start, stop). With ``combine`` (step 2): starts from
    ``w_stop`` (4,), reads ``alpha_t`` from ``gamma[t]`` and overwrites it with
    ``gamma_t``; ``xi`` (4, 4) gets the expected transitions added, and ``tally``
    (M, K), with ``symbols``, ``gamma_t`` in the row of step t's symbol. Returns
    False, stopping at once, on a loss.
    """
    n_states = transmat.shape[0]
    A = _pad4(transmat)
    columns = _columns4(A)
    zero = qpack(0.0, 0.0, 0.0, 0.0)
    S = (zero, zero, zero, zero)  # sum_t u_t w_{t+1}^T (see _add_transitions)
    if combine:
        w = qpack(w_stop[0], w_stop[1], w_stop[2], w_stop[3])
        first = stop - 1
    else:  # beta = 1 on the last row
        w = qload(scaled, _row(symbols, stop - 1))
        _store_row(gamma, stop - 1, n_states, w)
        first = stop - 2
    for t1 in range(first + 1, start, -TALLY_ROWS):  # blocks: see TALLY_ROWS
        t0 = max(start, t1 - TALLY_ROWS)
        for t in range(t1 - 1, t0 - 1, -1):
            _prefetch_step(symbols, scaled, None, gamma, t, -PREFETCH_ROWS)
            splats = qsplats(w)
            v = _combine4(columns, splats)  # beta_t, before rescaling
            if combine:
                a = _load_row(gamma, t, n_states)
                g = qmul(a, v)
                z = qsums(g)
                if not qfirst(z) >= TINY:
                    return False
                inv = qdiv(1.0, z)
                _store_row(gamma, t, n_states, qmul(g, inv))
                S = _add_columns4(S, splats, qmul(a, inv))
                if t == start:
                    break
            lost = qany_between(v, 0.0, DBL_MIN)
            c = qsum(v)
            if c < RESCALE:
                if c < TINY:
                    return False
                v = qmul(v, 1.0 / c)
            b = qload(scaled, _row(symbols, t))
            w = qmul(b, v)
            if lost or qany_flushed(w, b, v, DBL_MIN):
                return False
            if not combine:
                _store_row(gamma, t, n_states, w)
        if combine:
            _tally_rows(tally, symbols, gamma, t0, t1)
    if combine:
        _add_transitions(xi, A, S)
    return True


# ----------------------------------------------------------------------------- many sequences


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _scale_tile(log_emission, t0, rows, tile, top, shift, scaled):
    """Rows [t0, t0 + rows): ``shift`` their maxima and ``scaled`` exp(row - max).

    Transposed into ``tile`` first, so the loops over rows vectorise. A row of
    ``-inf`` (no state can produce it) gets shift 0 and scaled 0. Returns how many
    finite log-emissions lie more than 708 below their row's maximum (scaled to 0).
    """
    n_states = log_emission.shape[1]
    ahead = tile.shape[1] * n_states * 8  # the next tile's rows, as this one's are read
    for r in range(rows):
        _prefetch_bytes(log_emission, t0 + r, ahead)
        for k in range(n_states):
            tile[k, r] = log_emission[t0 + r, k]
    for r in range(rows):
        top[r] = tile[0, r]
    for k in range(1, n_states):
        for r in range(rows):
            top[r] = max(top[r], tile[k, r])
    for r in range(rows):
        top[r] = top[r] if top[r] > -np.inf else 0.0
        shift[t0 + r] = top[r]
    lost = 0
    for k in range(n_states):
        for r in range(rows):
            x = tile[k, r] - top[r]
            lost += (x < EXP_UNDERFLOW) & (tile[k, r] > -np.inf)
            tile[k, r] = exp_nonpos(x)
    for r in range(rows):
        for k in range(n_states):
            scaled[t0 + r, k] = tile[k, r]
    return lost


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _sequences(scaled, shift, symbols, log_emission, bounds, first, last, startprob, transmat,
               gamma, xi_sum, logprob):
    """Forward-backward of sequences [first, last), one after the other."""
    n_states = startprob.shape[0]
    for q in range(first, last):
        start, stop = bounds[q], bounds[q + 1]
        if n_states <= 4:
            lp = forward4(scaled, shift, symbols, log_emission, start, stop, startprob, transmat,
                          gamma, None, np.bool_(True))  # the split path's first call's types
        else:
            lp = forward_one(scaled, shift, symbols, log_emission, start, stop, startprob, transmat,
                             gamma)
        logprob[q] = lp
        if lp == -np.inf:
            for t in range(start, stop):
                for k in range(n_states):
                    gamma[t, k] = 1.0 / n_states
            continue
        if n_states <= 4:
            backward4(scaled, shift, symbols, log_emission, start, stop, transmat, gamma, xi_sum)
        else:
            backward_one(scaled, shift, symbols, log_emission, start, stop, transmat, gamma,
                         xi_sum)


def scratch_size(n_samples, n_states):
    """Length of the ``scratch`` vector :func:`forward_backward` needs."""
    return n_samples * (max(n_states, 4) + 1)


def emission_tables(emissionprob):
    """The per-symbol tables :func:`forward_backward` reads with ``symbols``, or None.

    ``emissionprob`` (K, M): row k the probabilities of the M symbols under
    state k. Returns a vector of M (max(K, 4) + 1) entries: for each symbol m
    the row ``e_km / max_j e_jm`` (zero past K), then the M shifts ``log max_j
    e_jm``, which is what the pre-pass would compute for a step emitting m,
    without exponentials. None where some symbol no state emits, or some ratio
    lies below exp(EXP_UNDERFLOW) without being 0: the pre-pass from the
    log-emissions then finds what its scaling loses itself.
    """
    e = np.asarray(emissionprob, dtype=np.float64).T  # (M, K)
    n_symbols, n_states = e.shape
    width = max(n_states, 4)
    top = e.max(axis=1)
    if np.any(top <= 0.0):
        return None
    ratio = e / top[:, None]
    if np.any((ratio > 0.0) & (ratio < np.exp(EXP_UNDERFLOW))):
        return None
    tables = np.zeros(n_symbols * (width + 1))
    tables[:n_symbols * width].reshape((n_symbols, width))[:, :n_states] = ratio
    tables[n_symbols * width:] = np.log(top)
    return tables


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _count_symbols(symbols, gamma, start, stop, tally):
    """``tally[m, k] += gamma[t, k]`` for the steps t in [start, stop) emitting m =
    ``symbols[t]`` (any numeric type holding whole numbers in [0, M))."""
    n_states = gamma.shape[1]
    for t in range(start, stop):
        m = int(symbols[t])
        for k in range(n_states):
            tally[m, k] += gamma[t, k]


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _sum_tallies(tally, counts):
    """``counts[k, m] = tally[0, m, k] + tally[1, m, k] + ...``, in block order."""
    n_blocks, n_symbols, n_states = tally.shape
    for m in range(n_symbols):
        for k in range(n_states):
            s = 0.0
            for b in range(n_blocks):
                s += tally[b, m, k]
            counts[k, m] = s


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def n_seq_blocks(n_seq, n_states):
    """The fixed number of blocks the sequences are split into (depends on the shapes only)."""
    by_memory = max(1, ACCUMULATOR_BYTES // (8 * n_states * n_states))
    return max(1, min(MAX_BLOCKS, n_seq, by_memory))


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def forward_backward(log_emission, bounds, startprob, transmat, scratch, gamma, xi_sum, logprob,
                     split_min_rows=SPLIT_MIN_ROWS, symbols=None, counts=None, count_blocks=1):
    """The E-step of Baum-Welch for many sequences.

    Parameters
    ----------
    log_emission : (n, K) float64, ``log p(x_t | z_t = k)``; with ``symbols``, (0, K): the
        steps redone in log space then take the log of the scaled emissions.
    bounds : (n_seq + 1,) int64, sequence q is rows ``bounds[q]:bounds[q + 1]`` (non-empty).
    startprob : (K,) float64.
    transmat : (K, K) float64, rows summing to 1.
    scratch : (scratch_size(n, K),) float64, zero on the first call (the padding
        columns for K < 4 must stay zero); the caller may reuse it between calls, which
        saves the page faults of a fresh allocation (tens of milliseconds at n = 1e6).
        With ``symbols``, the per-symbol tables instead (``emission_tables``).
    gamma : (n, K) float64, filled with the state posteriors.
    xi_sum : (K, K) float64, filled with the expected transition counts summed over
        time and sequences.
    logprob : (n_seq,) float64, filled with each sequence's log-likelihood.
    split_min_rows : int, one sequence of K <= 4 states and at least this many rows
        runs its forward and backward recursions at the same time (see "one long
        sequence" above); tests lower it to reach that path with short sequences.
    symbols : None, or (n,) uint32: step t emits the symbol ``symbols[t]`` (in
        [0, M); unsigned, so that indexing by it needs no test for a negative
        index: a signed type made the backward recursion 15% slower), and
        ``scratch`` holds the emissions of each symbol as the pre-pass would
        hold each step's: M rows ``scaled`` (M, max(K, 4)) then ``shift`` (M,),
        with no emission lost (:func:`emission_tables`). There is no pre-pass
        then: the recursions read step t's row through its symbol (a
        categorical HMM's emissions cost a gather, and no (n, K) array of them
        exists).
    counts : None, or with ``symbols``, (K, M) float64 filled with the posterior mass of
        each state on each symbol, ``sum_t gamma[t, k] [symbols[t] = m]`` (what
        :func:`categorical_emission_counts` computes from gamma afterwards). The split
        path adds each block of TALLY_ROWS rows of gamma as soon as it is made, while
        the rows are in L1, and adds the two halves' sums in a fixed order; the
        other paths count in a last parallel region of this call, in
        ``count_blocks`` fixed blocks of CHUNK rows (bit for bit what
        categorical_emission_counts gives), while the threads are awake. Either way
        the counts do not depend on the number of threads. Measured at T = 1e6,
        K = 4, M = 10 (one sequence): the counting pass after the call took 2.0-2.6 ms
        of a 15-18 ms iteration, reading gamma back from memory; counted here, the
        iteration is about 17% shorter. No rows (0, M): nothing counted.
    count_blocks : int, the number of blocks of the last region (a function of the
        shapes only).

    Returns 1 where that path met a loss and the sequence was redone by the
    serial recursions, else 0 (for tests and benchmarks; the results are the same).
    """
    n, n_states = gamma.shape
    n_seq = bounds.shape[0] - 1
    width = max(n_states, 4)
    if symbols is None:
        n_rows = n
        n_symbols = 0
    else:
        n_rows = scratch.shape[0] // (width + 1)
        n_symbols = n_rows
    scaled = scratch[:n_rows * width].reshape((n_rows, width))
    shift = scratch[n_rows * width:n_rows * (width + 1)]
    redone = 0
    done = False  # the split path gave gamma, xi_sum and logprob
    counted = False  # ... and, with symbols, the counts
    n_parts = min(MAX_BLOCKS, (n + CHUNK - 1) // CHUNK)
    lost = np.zeros(n_parts, dtype=np.int64)
    if symbols is None:
        for b in prange(n_parts):  # one tile per block, not per chunk (allocation is costly)
            tile = np.empty((n_states, CHUNK))
            top = np.empty(CHUNK)
            first, stop = block_rows(b, n_parts, n, CHUNK)
            for t0 in range(first, stop, CHUNK):
                lost[b] += _scale_tile(log_emission, t0, min(stop, t0 + CHUNK) - t0, tile, top,
                                       shift, scaled)
    split = n_seq == 1 and n_states <= 4 and n >= max(split_min_rows, 2)
    if split and lost.sum() > 0:  # an emission lost to the scaling: the serial recursions
        redone = 1
    elif split:
        h = n // 2
        xi_halves = np.zeros((2, 4, 4))
        tallies = np.zeros((2, n_symbols, n_states))  # the counts of rows [h, n), then [0, h)
        status = np.empty(2)
        w_h = np.zeros(4)
        for task in prange(2):  # step 1: the two recursions towards the middle, one per thread
            if task == 0:
                status[0] = forward4(scaled, shift, symbols, log_emission, np.int64(0), h,
                                     startprob, transmat, gamma, None, np.bool_(False))
            else:
                status[1] = 1.0 if backward_split4(scaled, symbols, h, n, transmat, gamma, w_h,
                                                   np.bool_(False), xi_halves[1],
                                                   tallies[1]) else 0.0
        if status[0] > -np.inf and status[1] == 1.0:
            loglik = status[0]
            for j in range(n_states):  # a loop: see gaussian.padded_rows
                w_h[j] = gamma[h, j]
            alpha_prev = gamma[h - 1].copy()  # the backward half overwrites row h - 1
            for task in prange(2):  # step 2: on past the middle, gamma and xi as they come
                if task == 0:
                    status[0] = forward4(scaled, shift, symbols, log_emission, h, n, startprob,
                                         transmat, gamma, alpha_prev, np.bool_(True),
                                         xi_halves[0], tallies[0])
                else:
                    status[1] = 1.0 if backward_split4(scaled, symbols, np.int64(0), h, transmat,
                                                       gamma, w_h, np.bool_(True),
                                                       xi_halves[1], tallies[1]) else 0.0
            if status[0] == -np.inf:
                loglik = -np.inf
            elif status[0] == status[0] and status[1] == 1.0:  # not NaN: no loss
                logprob[0] = loglik + status[0]
                for i in range(n_states):  # rows [0, h), then [h, n); loops, as in sum_blocks
                    for j in range(n_states):
                        xi_sum[i, j] = xi_halves[1, i, j] + xi_halves[0, i, j]
                if symbols is not None and counts is not None:
                    for k in range(counts.shape[0]):  # none for no rows; rows [0, h) first
                        for m in range(n_symbols):
                            counts[k, m] = tallies[1, m, k] + tallies[0, m, k]
                    counted = True
                done = True
        else:
            loglik = status[0]
        if done:
            pass
        elif loglik == -np.inf:  # no path produces the sequence
            logprob[0] = -np.inf
            xi_sum[:] = 0.0
            for t in range(n):
                for k in range(n_states):
                    gamma[t, k] = 1.0 / n_states
            done = True
        else:
            redone = 1  # a loss: the serial recursions below, from the start
    if not done:
        n_blocks = n_seq_blocks(n_seq, n_states)
        acc = np.zeros((n_blocks, n_states, n_states))
        if n_blocks == 1:  # one sequence: no parallel region, whose idle threads would spin
            _sequences(scaled, shift, symbols, log_emission, bounds, np.int64(0), n_seq,
                       startprob, transmat, gamma, acc[0], logprob)
        else:
            for b in prange(n_blocks):
                _sequences(scaled, shift, symbols, log_emission, bounds, b * n_seq // n_blocks,
                           (b + 1) * n_seq // n_blocks, startprob, transmat, gamma, acc[b],
                           logprob)
        sum_blocks(acc, xi_sum)
    if symbols is not None and counts is not None:
        if counts.shape[0] > 0 and not counted:
            tally = np.zeros((count_blocks, counts.shape[1], n_states))
            for b in prange(count_blocks):
                start, stop = block_rows(b, count_blocks, n, CHUNK)
                _count_symbols(symbols, gamma, start, stop, tally[b])
            _sum_tallies(tally, counts)
    return redone


forward_backward_serial = serial_twin(forward_backward)  # for small work (see _config)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def viterbi_one(log_emission, start, stop, log_startprob, log_transmat, states):
    """The most probable path of rows [start, stop) into ``states``; returns its log-probability.

    Log space throughout (``-inf`` for impossible transitions and emissions).
    Ties go to the lowest state index: first for the last state, then for each
    predecessor on the way back. A sequence no path can produce gets ``-inf``.
    """
    n_states = log_startprob.shape[0]
    length = stop - start
    back = np.empty((length, n_states), dtype=np.int32)
    delta = np.empty(n_states)
    new = np.empty(n_states)
    for j in range(n_states):
        delta[j] = log_startprob[j] + log_emission[start, j]
    for s in range(1, length):
        t = start + s
        for j in range(n_states):
            best = delta[0] + log_transmat[0, j]
            arg = 0
            for i in range(1, n_states):
                v = delta[i] + log_transmat[i, j]
                if v > best:
                    best = v
                    arg = i
            back[s, j] = arg
            new[j] = best + log_emission[t, j]
        for j in range(n_states):
            delta[j] = new[j]
    best = delta[0]
    arg = 0
    for j in range(1, n_states):
        if delta[j] > best:
            best = delta[j]
            arg = j
    states[stop - 1] = arg
    for s in range(length - 1, 0, -1):
        arg = back[s, arg]
        states[start + s - 1] = arg
    return best


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def viterbi(log_emission, bounds, log_startprob, log_transmat, states, logprob):
    """Viterbi paths of many sequences (in parallel); ``states`` (n,), ``logprob`` (n_seq,)."""
    n_seq = bounds.shape[0] - 1
    for q in prange(n_seq):
        logprob[q] = viterbi_one(log_emission, bounds[q], bounds[q + 1], log_startprob,
                                 log_transmat, states)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def sample_states(cum_startprob, cum_transmat, uniforms, states):
    """A state path driven by ``uniforms`` (one per step, in [0, 1)).

    ``cum_*`` are cumulative probabilities whose last entry is exactly 1; a state
    is the first whose cumulative probability exceeds the uniform (so a state of
    probability 0 is never drawn).
    """
    n_states = cum_startprob.shape[0]
    state = 0
    for t in range(uniforms.shape[0]):
        u = uniforms[t]
        state_next = n_states - 1
        for j in range(n_states):
            c = cum_startprob[j] if t == 0 else cum_transmat[state, j]
            if c > u:
                state_next = j
                break
        state = state_next
        states[t] = state


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def categorical_log_emission(X, log_emissionprob_t, chunk_rows, out):
    """``out[i, k] = log_emissionprob_t[X[i, 0], k]``: the categorical HMM's log-emissions.

    ``X`` (n, 1) holds the symbols (any numeric dtype; the caller checked they are integers
    in range), ``log_emissionprob_t`` (M, K) is ``log(emissionprob_).T``. One pass, no copy
    of X as integers.
    """
    n = X.shape[0]
    n_states = log_emissionprob_t.shape[1]
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for c in prange(n_chunks):
        for i in range(c * chunk_rows, min(n, (c + 1) * chunk_rows)):
            row = log_emissionprob_t[int(X[i, 0])]
            for k in range(n_states):
                out[i, k] = row[k]


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def categorical_emission_counts(X, gamma, n_blocks, chunk_rows, counts):
    """``counts[k, m] = sum_i gamma[i, k] [X[i, 0] = m]``, in a fixed block order.

    Each block of rows adds into its own (M, K) slot and the slots are summed in
    block order, so the counts do not depend on the number of threads. (A fit
    that reads the emissions through the symbols has :func:`forward_backward`
    count them instead, as it makes gamma; see its ``counts``.)
    """
    n = X.shape[0]
    n_states, n_symbols = counts.shape
    tally = np.zeros((n_blocks, n_symbols, n_states))
    for b in prange(n_blocks):
        start, stop = block_rows(b, n_blocks, n, chunk_rows)
        _count_symbols(X[:, 0], gamma, start, stop, tally[b])
    _sum_tallies(tally, counts)
