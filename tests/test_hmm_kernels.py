"""HMM kernels against brute-force enumeration of all K^T state paths and a plain-loop
log-space forward-backward (tests/reference.py)."""

import numba
import numpy as np
import pytest

import reference
from emlab._kernels import hmm as kernels


def run_forward_backward(log_emission, lengths, startprob, transmat, scratch=None,
                         split_min_rows=kernels.SPLIT_MIN_ROWS, redone=None,
                         kernel=kernels.forward_backward):
    """The kernel's (logprob, gamma, xi_sum); ``redone`` (a list) gets its return value."""
    log_emission = np.ascontiguousarray(log_emission, dtype=np.float64)
    n, k = log_emission.shape
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    gamma = np.empty((n, k))
    xi = np.empty((k, k))
    logprob = np.empty(len(lengths))
    if scratch is None:
        scratch = np.zeros(kernels.scratch_size(n, k))
    code = kernel(log_emission, bounds, np.asarray(startprob, dtype=np.float64),
                  np.ascontiguousarray(transmat, dtype=np.float64), scratch, gamma, xi, logprob,
                  split_min_rows, None)
    if redone is not None:
        redone.append(code)
    return logprob, gamma, xi


SPLIT = 2  # split_min_rows that sends every single sequence of K <= 4 states to the split path
SERIAL = 2**62  # ... and that keeps them all on the serial path


def run_viterbi(log_emission, lengths, startprob, transmat):
    log_emission = np.ascontiguousarray(log_emission, dtype=np.float64)
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    states = np.empty(log_emission.shape[0], dtype=np.int64)
    logprob = np.empty(len(lengths))
    with np.errstate(divide="ignore"):
        kernels.viterbi(log_emission, bounds, np.log(startprob),
                        np.ascontiguousarray(np.log(transmat)), states, logprob)
    return logprob, states


def random_hmm(rng, k, zeros=False):
    startprob = rng.dirichlet(np.ones(k))
    transmat = rng.dirichlet(np.ones(k), size=k)
    if zeros and k > 1:
        transmat[np.arange(k), (np.arange(k) + 1) % k] = 0.0  # one forbidden move per row
        transmat /= transmat.sum(axis=1, keepdims=True)
        startprob[-1] = 0.0
        startprob /= startprob.sum()
    return startprob, transmat


def assert_matches_enumeration(log_emission, lengths, startprob, transmat, atol=1e-12,
                               split_min_rows=kernels.SPLIT_MIN_ROWS):
    logprob, gamma, xi = run_forward_backward(log_emission, lengths, startprob, transmat,
                                              split_min_rows=split_min_rows)
    vit_logprob, states = run_viterbi(log_emission, lengths, startprob, transmat)
    xi_total = np.zeros_like(xi)
    start = 0
    for q, length in enumerate(lengths):
        rows = slice(start, start + length)
        ref_logprob, ref_gamma, ref_xi, ref_path, ref_best = reference.hmm_enumerate(
            log_emission[rows], startprob, transmat)
        assert logprob[q] == pytest.approx(ref_logprob, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(gamma[rows], ref_gamma, rtol=0, atol=atol)
        np.testing.assert_allclose(gamma[rows].sum(axis=1), 1.0, rtol=0, atol=1e-14)
        xi_total += ref_xi
        np.testing.assert_array_equal(states[rows], ref_path)
        assert vit_logprob[q] == pytest.approx(ref_best, rel=1e-12, abs=1e-12)
        start += length
    np.testing.assert_allclose(xi, xi_total, rtol=0, atol=atol * max(1, len(lengths)))


# K <= 4 runs the register-resident recursions, K = 5 the generic loops
@pytest.mark.parametrize("split_min_rows", [SPLIT, SERIAL])
@pytest.mark.parametrize("k, length", [(1, 3), (2, 1), (2, 7), (3, 1), (3, 5), (4, 4), (5, 4)])
def test_one_sequence_matches_enumeration(k, length, split_min_rows, rng):
    log_emission = rng.normal(scale=3.0, size=(length, k))
    startprob, transmat = random_hmm(rng, k)
    assert_matches_enumeration(log_emission, [length], startprob, transmat,
                               split_min_rows=split_min_rows)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_many_sequences_of_different_lengths(k, rng):
    lengths = [1, 4, 2, 5, 3]
    log_emission = rng.normal(scale=2.0, size=(sum(lengths), k))
    startprob, transmat = random_hmm(rng, k)
    assert_matches_enumeration(log_emission, lengths, startprob, transmat)
    # a scratch vector reused from a call with other data gives the same results
    scratch = np.zeros(kernels.scratch_size(sum(lengths), k))
    run_forward_backward(-log_emission, lengths, startprob, transmat, scratch)
    again = run_forward_backward(log_emission, lengths, startprob, transmat, scratch)
    fresh = run_forward_backward(log_emission, lengths, startprob, transmat)
    for a, b in zip(again, fresh):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("k", [3, 4, 5])
def test_zeros_in_transmat_and_startprob_and_minus_inf_emissions(k, rng):
    lengths = [5, 4]
    log_emission = rng.normal(scale=2.0, size=(9, k))
    log_emission[rng.random((9, k)) < 0.25] = -np.inf  # symbols a state cannot emit
    log_emission[:, 0] = rng.normal(size=9)  # so staying in state 0 is always possible
    startprob, transmat = random_hmm(rng, k, zeros=True)
    assert np.isinf(log_emission).sum() > 0 and startprob[0] > 0 and transmat[0, 0] > 0
    assert_matches_enumeration(log_emission, lengths, startprob, transmat)
    gamma = run_forward_backward(log_emission, lengths, startprob, transmat)[1]
    assert np.all(gamma[np.isinf(log_emission)] == 0.0)
    if k <= 4:  # each sequence alone, through the split path
        for rows in (slice(0, 5), slice(5, 9)):
            redone = []
            assert_matches_enumeration(log_emission[rows], [rows.stop - rows.start], startprob,
                                       transmat, split_min_rows=SPLIT)
            gamma = run_forward_backward(log_emission[rows], [rows.stop - rows.start], startprob,
                                         transmat, split_min_rows=SPLIT, redone=redone)[1]
            assert redone == [0]
            assert np.all(gamma[np.isinf(log_emission[rows])] == 0.0)


def left_right_chain(k):
    """Start in state 0; from state i, stay or move to i + 1 (the last state stays)."""
    transmat = np.zeros((k, k))
    for i in range(k):
        transmat[i, i] = 0.5
        transmat[i, min(i + 1, k - 1)] += 0.5
    startprob = np.zeros(k)
    startprob[0] = 1.0
    return startprob, transmat


@pytest.mark.parametrize("k", [3, 5])
def test_underflowing_scale_is_redone_in_log_space(k):
    """All predicted mass on states whose emission is exp(-900) times the best one.

    Left-right chain from state 0; at t = 1 only states 0 and 1 are reachable, and
    the best emission belongs to the unreachable last state. The scaled forward
    sum ``sum_j P(z_1 = j | x_0) exp(log_emission[1, j] - max)`` is 0 in floating
    point, so a scaled forward-backward without a fallback returns log(0).
    """
    startprob, transmat = left_right_chain(k)
    log_emission = np.zeros((5, k))
    log_emission[1] = -2000.0
    log_emission[1, :2] = [-900.0, -905.0]
    log_emission[1, -1] = 0.0
    predicted = startprob @ transmat
    assert predicted @ np.exp(log_emission[1] - log_emission[1].max()) == 0.0  # it does underflow
    logprob, gamma, xi = run_forward_backward(log_emission, [5], startprob, transmat)
    ref_logprob, ref_gamma, ref_xi, _, _ = reference.hmm_enumerate(log_emission, startprob, transmat)
    assert np.isfinite(logprob[0])
    assert logprob[0] == pytest.approx(ref_logprob, rel=1e-13)
    np.testing.assert_allclose(gamma, ref_gamma, rtol=0, atol=1e-12)
    np.testing.assert_allclose(xi, ref_xi, rtol=0, atol=1e-12)
    # a long sequence with such a step in the middle, against the plain-loop reference
    rng = np.random.default_rng(3)
    long = rng.normal(size=(300, k))
    long[150] = log_emission[1]
    long[149] = [0.0] + [-2000.0] * (k - 1)  # certainly state 0 just before
    ref = reference.hmm_forward_backward(long, startprob, transmat)
    logprob, gamma, xi = run_forward_backward(long, [300], startprob, transmat)
    assert logprob[0] == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(gamma, ref[1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(xi, ref[2], rtol=1e-10, atol=1e-10)


def assert_split_matches_the_reference(log_emission, startprob, transmat, redone_expected):
    """One sequence forced through the split path: redone (1) or not (0) as expected, and the
    plain-loop reference's results either way."""
    ref = reference.hmm_forward_backward(log_emission, startprob, transmat)
    redone = []
    logprob, gamma, xi = run_forward_backward(log_emission, [len(log_emission)], startprob,
                                              transmat, split_min_rows=SPLIT, redone=redone)
    assert redone == [redone_expected]
    assert logprob[0] == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(gamma, ref[1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(xi, ref[2], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("k", [3, 4])
def test_split_path_redoes_a_sequence_whose_backward_pass_loses_mass(k):
    """The underflow above, through the split path: the emission exp(-900) below the row's
    best is a loss to the backward pass scaled on its own, so the sequence is redone by the
    serial recursions, and the results are the reference's."""
    startprob, transmat = left_right_chain(k)
    rng = np.random.default_rng(3)
    long = rng.normal(size=(300, k))
    long[150] = -2000.0
    long[150, :2] = [-900.0, -905.0]
    long[150, -1] = 0.0
    long[149] = [0.0] + [-2000.0] * (k - 1)
    assert_split_matches_the_reference(long, startprob, transmat, 1)
    # a switch between two near-absorbing states: the backward products underflow
    # (exp(-600) per step) and the sequence is redone; and a milder one is not
    for eps, gap, code in [(1e-200, 600.0, 1), (1e-20, 30.0, 0)]:
        emission2 = np.zeros((300, 2))
        emission2[:150, 1] = -gap
        emission2[150:, 0] = -gap
        assert_split_matches_the_reference(emission2, np.array([1.0, 0.0]),
                                           np.array([[1.0 - eps, eps], [eps, 1.0 - eps]]), code)
    # without the gap, the same chain goes through the split path to the same reference
    long[150] = rng.normal(size=k)
    long[149] = rng.normal(size=k)
    assert_split_matches_the_reference(long, startprob, transmat, 0)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_one_long_sequence_through_the_split_path(k, rng):
    """A single sequence above SPLIT_MIN_ROWS (the default): forward and backward at once,
    against the plain-loop reference; the same bits on one thread as on two."""
    n = kernels.SPLIT_MIN_ROWS + 811
    log_emission = rng.normal(scale=4.0, size=(n, k))
    startprob, transmat = random_hmm(rng, k)
    ref = reference.hmm_forward_backward(log_emission, startprob, transmat)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run_forward_backward(log_emission, [n], startprob, transmat)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        redone = []
        logprob, gamma, xi = run_forward_backward(log_emission, [n], startprob, transmat,
                                                  redone=redone)
    finally:
        numba.set_num_threads(before)
    assert redone == [0]
    assert logprob[0] == pytest.approx(ref[0], rel=1e-12)
    # the reference's rows carry its log-likelihood's round-off (|log p| ~ 1e5 here: rows
    # sum to 1 +- 1e-9); normalised, they agree with ours to 2e-12
    np.testing.assert_allclose(gamma, ref[1] / ref[1].sum(axis=1, keepdims=True), rtol=0,
                               atol=1e-11)
    np.testing.assert_allclose(gamma.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(xi, ref[2], rtol=5e-9)  # the reference's xi: +- 1e-9 likewise
    # the serial recursions agree far more closely (measured 4e-16, 4e-15 and 3e-15)
    serial = run_forward_backward(log_emission, [n], startprob, transmat, split_min_rows=SERIAL)
    assert logprob[0] == pytest.approx(serial[0][0], rel=1e-14)
    np.testing.assert_allclose(gamma, serial[1], rtol=0, atol=1e-14)
    np.testing.assert_allclose(xi, serial[2], rtol=0, atol=1e-13 * ref[2].max())
    for a, b in zip(one, (logprob, gamma, xi)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("k", [2, 4, 6])
def test_long_sequences_against_the_plain_loop_reference(k, rng):
    """Thousands of steps: the forward variables are rescaled many times on the way."""
    lengths = [1500, 700]
    log_emission = rng.normal(scale=4.0, size=(sum(lengths), k))
    startprob, transmat = random_hmm(rng, k)
    logprob, gamma, xi = run_forward_backward(log_emission, lengths, startprob, transmat)
    xi_ref = np.zeros((k, k))
    start = 0
    for q, length in enumerate(lengths):
        ref = reference.hmm_forward_backward(log_emission[start:start + length], startprob, transmat)
        assert logprob[q] == pytest.approx(ref[0], rel=1e-12)
        np.testing.assert_allclose(gamma[start:start + length], ref[1], rtol=0, atol=1e-10)
        xi_ref += ref[2]
        start += length
    np.testing.assert_allclose(xi, xi_ref, rtol=1e-10)


def test_an_impossible_sequence_gets_minus_inf_and_uniform_posteriors():
    startprob = np.array([1.0, 0.0])
    transmat = np.array([[1.0, 0.0], [0.0, 1.0]])
    log_emission = np.array([[0.0, 0.0], [-np.inf, 0.0], [0.0, 0.0]])  # state 0 cannot emit row 1
    logprob, gamma, xi = run_forward_backward(log_emission, [1, 2], startprob, transmat)
    assert logprob[0] == 0.0 and logprob[1] == -np.inf
    np.testing.assert_array_equal(gamma[1:], 0.5)
    np.testing.assert_array_equal(xi, 0.0)


def test_viterbi_ties_and_impossible_moves(rng):
    startprob = np.array([0.5, 0.5, 0.0])
    transmat = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # a cycle
    log_emission = np.zeros((6, 3))
    logprob, states = run_viterbi(log_emission, [6], startprob, transmat)
    # two tied paths, 0 1 2 0 1 2 and 1 2 0 1 2 0: the lowest final state wins
    np.testing.assert_array_equal(states, [1, 2, 0, 1, 2, 0])
    assert logprob[0] == pytest.approx(np.log(0.5))
    for k, length in [(2, 5), (3, 4)]:  # and without ties, the enumeration's best path
        log_emission = rng.normal(size=(length, k))
        startprob, transmat = random_hmm(rng, k, zeros=True)
        ref = reference.hmm_enumerate(log_emission, startprob, transmat)
        logprob, states = run_viterbi(log_emission, [length], startprob, transmat)
        np.testing.assert_array_equal(states, ref[3])
        assert logprob[0] == pytest.approx(ref[4], rel=1e-12)


def test_results_do_not_depend_on_the_thread_count(rng):
    k = 4
    lengths = rng.integers(50, 400, size=40)
    log_emission = rng.normal(scale=3.0, size=(lengths.sum(), k))
    startprob, transmat = random_hmm(rng, k)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run_forward_backward(log_emission, lengths, startprob, transmat)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = run_forward_backward(log_emission, lengths, startprob, transmat)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("path", ["split", "one", "many"])
def test_serial_twin_equals_the_parallel_kernel(path, rng):
    # small work runs forward_backward_serial, the same code compiled without the parallel
    # lowering (_config.serial_twin): the same bits on each path, the split one included
    k = 3
    lengths = {"split": [700], "one": [700], "many": rng.integers(20, 90, size=30)}[path]
    split_min_rows = SPLIT if path == "split" else SERIAL
    log_emission = rng.normal(scale=3.0, size=(int(np.sum(lengths)), k))
    startprob, transmat = random_hmm(rng, k)
    assert kernels.forward_backward.targetoptions.get("parallel")
    assert not kernels.forward_backward_serial.targetoptions.get("parallel")
    codes = []
    ours = run_forward_backward(log_emission, lengths, startprob, transmat,
                                split_min_rows=split_min_rows, redone=codes)
    twin = run_forward_backward(log_emission, lengths, startprob, transmat,
                                split_min_rows=split_min_rows, redone=codes,
                                kernel=kernels.forward_backward_serial)
    assert codes == [0, 0]
    for a, b in zip(ours, twin):
        np.testing.assert_array_equal(a, b)
    ref = reference.hmm_forward_backward(log_emission[:lengths[0]], startprob, transmat)
    assert twin[0][0] == pytest.approx(ref[0], rel=1e-12)


def test_sample_states_follows_the_cumulative_probabilities():
    cum_start = np.array([0.2, 0.2, 1.0])  # state 1 has probability 0
    cum_trans = np.array([[0.5, 1.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    uniforms = np.array([0.1, 0.7, 0.99, 0.2, 0.0])
    states = np.empty(5, dtype=np.int64)
    kernels.sample_states(cum_start, cum_trans, uniforms, states)
    # 0.1 -> state 0; from 0, 0.7 -> 1; from 1, 0.99 -> 2; from 2, 0.2 -> 0; from 0, 0.0 -> 0
    np.testing.assert_array_equal(states, [0, 1, 2, 0, 0])
    uniforms[0] = 0.2  # equal to the cumulative sum of states 0 and 1: state 2
    kernels.sample_states(cum_start, cum_trans, uniforms[:1], states[:1])
    assert states[0] == 2


# ------------------------------------------------------------------ properties (hypothesis)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(1, 5), st.lists(st.integers(1, 4), min_size=1, max_size=3),
       st.floats(0.1, 400.0), st.booleans(), st.integers(0, 2**32 - 1), st.booleans())
def test_forward_backward_properties(k, lengths, scale, sparse, seed, split):
    """Random shapes and scales up to emission gaps of several hundred nats (the log-space
    fallback), zeros in the parameters, against the enumeration of all paths; single
    sequences of K <= 4 states through the split path or the serial one."""
    rng = np.random.default_rng(seed)
    log_emission = rng.normal(scale=scale, size=(sum(lengths), k))
    startprob, transmat = random_hmm(rng, k, zeros=sparse)
    if k > 1:
        transmat[:, 0] = np.maximum(transmat[:, 0], 0.1)  # state 0 reachable from everywhere
        transmat /= transmat.sum(axis=1, keepdims=True)
        startprob = 0.5 * startprob + 0.5 * np.eye(k)[0]
    logprob, gamma, xi = run_forward_backward(log_emission, lengths, startprob, transmat,
                                              split_min_rows=SPLIT if split else SERIAL)
    vit_logprob, states = run_viterbi(log_emission, lengths, startprob, transmat)
    assert np.all(gamma >= 0) and np.allclose(gamma.sum(axis=1), 1.0, rtol=0, atol=1e-13)
    assert np.all(xi >= 0) and xi.sum() == pytest.approx(sum(lengths) - len(lengths), abs=1e-12)
    assert np.all(vit_logprob <= logprob + 1e-9 * np.abs(logprob))
    start, xi_ref = 0, np.zeros((k, k))
    for q, length in enumerate(lengths):
        rows = slice(start, start + length)
        ref = reference.hmm_enumerate(log_emission[rows], startprob, transmat)
        assert logprob[q] == pytest.approx(ref[0], rel=1e-12, abs=1e-10)
        np.testing.assert_allclose(gamma[rows], ref[1], rtol=0, atol=1e-11)
        assert vit_logprob[q] == pytest.approx(ref[4], rel=1e-12, abs=1e-10)
        xi_ref += ref[2]
        start += length
    np.testing.assert_allclose(xi, xi_ref, rtol=0, atol=1e-11)


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.int32])
def test_categorical_emission_kernels_against_plain_loops(dtype, rng):
    # the CategoricalHMM's log-emission gather and expected symbol counts, against explicit
    # Python loops, on a length that is not a multiple of the chunk, with a never-seen symbol
    n, k, m = 3001, 3, 6
    X = rng.integers(0, m - 1, size=(n, 1)).astype(dtype)  # symbol m - 1 never occurs
    emissionprob = rng.dirichlet(np.ones(m), size=k)
    emissionprob[1, 2] = 0.0  # log 0 = -inf must come through as it is
    with np.errstate(divide="ignore"):
        log_t = np.ascontiguousarray(np.log(emissionprob.T))
    out = np.empty((n, k))
    kernels.categorical_log_emission(X, log_t, 256, out)
    expected = np.array([[np.log(emissionprob[j, int(X[i, 0])]) if emissionprob[j, int(X[i, 0])] > 0
                          else -np.inf for j in range(k)] for i in range(n)])
    np.testing.assert_array_equal(out, expected)

    gamma = rng.dirichlet(np.ones(k), size=n)
    counts = np.empty((k, m))
    kernels.categorical_emission_counts(X, gamma, 7, 256, counts)
    loops = np.zeros((k, m))
    for i in range(n):
        loops[:, int(X[i, 0])] += gamma[i]
    np.testing.assert_allclose(counts, loops, rtol=1e-12, atol=0)
    assert np.all(counts[:, m - 1] == 0.0)


def test_categorical_counts_do_not_depend_on_the_thread_count(rng):
    X = rng.integers(0, 10, size=(200_000, 1)).astype(np.float64)
    gamma = rng.dirichlet(np.ones(4), size=len(X))
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            counts = np.empty((4, 10))
            kernels.categorical_emission_counts(X, gamma, 16, 256, counts)
            results.append(counts)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("split_min_rows", [SPLIT, SERIAL])
@pytest.mark.parametrize("k", [3, 4, 6])
def test_emission_tables_read_through_the_symbols_are_the_pre_pass(k, split_min_rows, rng):
    """A CategoricalHMM's per-symbol tables (``emission_tables``) hold what the pre-pass
    computes from the log-emissions for a step emitting each symbol (to round-off: np.exp
    against exp_nonpos), and forward_backward reading them through the symbols gives the
    results of the pre-pass, on the split path (K <= 4) and the serial one."""
    n, m = 20_000, 7
    X = rng.integers(0, m, size=(n, 1)).astype(np.float64)
    emissionprob = rng.dirichlet(np.ones(m), size=k)
    emissionprob[1, 2] = 0.0  # -inf in the log-emissions: scaled 0
    with np.errstate(divide="ignore"):
        log_emission = np.log(emissionprob.T)[X[:, 0].astype(int)]
    startprob, transmat = random_hmm(rng, k)
    tables = kernels.emission_tables(emissionprob)
    width = max(k, 4)
    assert tables.shape == (m * (width + 1),)
    own = np.zeros(kernels.scratch_size(n, k))  # the pre-pass, run by the reference call
    ref = run_forward_backward(log_emission, [n], startprob, transmat, scratch=own,
                               split_min_rows=split_min_rows)
    symbol = X[:, 0].astype(int)
    np.testing.assert_allclose(tables[:m * width].reshape(m, width)[symbol],
                               own[:n * width].reshape(n, width), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(tables[m * width:][symbol], own[n * width:])  # the row maxima
    assert np.all(tables[:m * width].reshape(m, width)[:, k:] == 0.0)
    gamma, xi, logprob = np.empty((n, k)), np.empty((k, k)), np.empty(1)
    kernels.forward_backward(np.empty((0, k)), np.array([0, n]), startprob, transmat, tables,
                             gamma, xi, logprob, split_min_rows, X[:, 0].astype(np.uint32))
    assert logprob[0] == pytest.approx(ref[0][0], rel=1e-14)
    np.testing.assert_allclose(gamma, ref[1], rtol=0, atol=1e-13)
    np.testing.assert_allclose(xi, ref[2], rtol=1e-13)
    # a symbol whose probabilities span more than exp(708): no tables, the pre-pass decides
    emissionprob[0, 3], emissionprob[1, 3] = 1e-320, 0.5
    assert kernels.emission_tables(emissionprob) is None
    emissionprob[:, 3] = 0.0  # a symbol no state emits: likewise
    assert kernels.emission_tables(emissionprob) is None


@pytest.mark.parametrize("split_min_rows", [SPLIT, SERIAL])
def test_prescaled_emissions_need_no_log_emissions_when_a_step_underflows(split_min_rows):
    """CategoricalHMM passes per-symbol tables and no log-emission rows; a step redone in
    log space then takes the log of the table's entries. Symbol 1's
    probabilities are exp(-700) and exp(-702) under the two states the chain can reach at
    t = 1 and 0.9 under the third, so the scaled forward sum underflows there (below TINY)."""
    k = 3
    startprob, transmat = left_right_chain(k)
    emissionprob = np.array([[1.0, np.exp(-700.0)], [1.0, np.exp(-702.0)], [0.1, 0.9]])
    X = np.array([[0.0], [1.0], [0.0], [0.0], [1.0]])
    with np.errstate(divide="ignore"):
        log_emission = np.log(emissionprob.T)[X[:, 0].astype(int)]
    n = X.shape[0]
    tables = kernels.emission_tables(emissionprob)
    assert tables is not None  # no ratio below exp(-708)
    scaled = tables[:2 * 4].reshape(2, 4)  # two symbols
    assert startprob @ transmat @ scaled[1, :k] < kernels.TINY  # the step does underflow
    gamma, xi, logprob = np.empty((n, k)), np.empty((k, k)), np.empty(1)
    kernels.forward_backward(np.empty((0, k)), np.array([0, n]), startprob, transmat, tables,
                             gamma, xi, logprob, split_min_rows, X[:, 0].astype(np.uint32))
    ref_logprob, ref_gamma, ref_xi, _, _ = reference.hmm_enumerate(log_emission, startprob,
                                                                   transmat)
    assert logprob[0] == pytest.approx(ref_logprob, rel=1e-13)
    np.testing.assert_allclose(gamma, ref_gamma, rtol=0, atol=1e-12)
    np.testing.assert_allclose(xi, ref_xi, rtol=0, atol=1e-12)
    # the same call asked for the emission counts: the split path met the loss and the
    # sequence was redone, so they come from the region after the recursions
    counts = np.full((k, 2), np.nan)
    redone = kernels.forward_backward(np.empty((0, k)), np.array([0, n]), startprob, transmat,
                                      tables, gamma, xi, logprob, split_min_rows,
                                      X[:, 0].astype(np.uint32), counts, 1)
    assert redone == (1 if split_min_rows == SPLIT else 0)
    expected = np.stack([ref_gamma[X[:, 0] == m].sum(axis=0) for m in range(2)], axis=1)
    np.testing.assert_allclose(counts, expected, rtol=0, atol=1e-12)


def symbol_counts_call(symbols, lengths, startprob, transmat, emissionprob, split_min_rows,
                       counts_rows=None, count_blocks=3):
    """forward_backward through per-symbol tables, asked for the emission counts:
    (counts, gamma, xi, logprob, redone)."""
    k, m = emissionprob.shape
    n = symbols.shape[0]
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    gamma, xi, logprob = np.empty((n, k)), np.empty((k, k)), np.empty(len(lengths))
    counts = np.full((k if counts_rows is None else counts_rows, m), np.nan)
    redone = kernels.forward_backward(np.empty((0, k)), bounds, startprob, transmat,
                                      kernels.emission_tables(emissionprob), gamma, xi, logprob,
                                      split_min_rows, symbols.astype(np.uint32), counts,
                                      count_blocks)
    return counts, gamma, xi, logprob, redone


@pytest.mark.parametrize("k, lengths, split_min_rows", [
    (4, [20_003], SPLIT),  # the split path: counted as gamma is made, both halves
    (3, [20_003], SPLIT),  # ... with fewer than four states (no four-lane rows)
    (4, [7], SPLIT),  # halves shorter than one block of TALLY_ROWS rows
    (4, [20_003], SERIAL),  # one sequence, serial recursions: the region after them
    (2, [300, 1, 4000, 257], SPLIT),  # many sequences: likewise
    (6, [5000], SPLIT),  # more than four states: never split
])
def test_forward_backward_counts_the_symbols_it_reads(k, lengths, split_min_rows, rng):
    """With ``counts``, forward_backward adds up gamma per state and symbol (what
    categorical_emission_counts does after it) in the same call: against a loop over
    its gamma, which the other tests check against enumeration and the pre-pass; and
    gamma, xi and the log-likelihood are those of the call that counts nothing."""
    m = 7
    symbols = rng.integers(0, m, size=sum(lengths))
    symbols[::11] = 2  # more of one symbol, as real data have
    startprob, transmat = random_hmm(rng, k)
    emissionprob = rng.dirichlet(np.ones(m), size=k)
    counts, gamma, xi, logprob, redone = symbol_counts_call(
        symbols, lengths, startprob, transmat, emissionprob, split_min_rows)
    assert redone == 0
    loops = np.zeros((k, m))
    for t, s in enumerate(symbols):
        loops[:, s] += gamma[t]
    np.testing.assert_allclose(counts, loops, rtol=1e-13, atol=0)
    assert counts.sum() == pytest.approx(len(symbols), rel=1e-13)
    quiet, gamma0, xi0, logprob0, _ = symbol_counts_call(
        symbols, lengths, startprob, transmat, emissionprob, split_min_rows, counts_rows=0)
    assert quiet.shape == (0, m)  # no rows: nothing counted
    np.testing.assert_array_equal(gamma, gamma0)
    np.testing.assert_array_equal(xi, xi0)
    np.testing.assert_array_equal(logprob, logprob0)


@pytest.mark.parametrize("lengths", [[200_001], [3000] * 60])
def test_forward_backward_counts_do_not_depend_on_the_thread_count(lengths, rng):
    """The counts of the split path (two halves added in a fixed order) and of the
    region after the serial recursions (fixed blocks) are the same bits on 1 and N threads."""
    k, m = 4, 10
    symbols = rng.integers(0, m, size=sum(lengths))
    startprob, transmat = random_hmm(rng, k)
    emissionprob = rng.dirichlet(np.ones(m), size=k)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            results.append(symbol_counts_call(symbols, lengths, startprob, transmat,
                                              emissionprob, kernels.SPLIT_MIN_ROWS,
                                              count_blocks=16)[0])
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])
