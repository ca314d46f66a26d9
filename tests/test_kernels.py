"""Each kernel against its slow reference in tests/reference.py."""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from scipy.linalg import solve_triangular
from scipy.stats import norm

import reference
from emlab import _config
from emlab._kernels.gaussian import log_gaussian_full
from emlab._kernels.kmeans import assign_accumulate
from emlab._kernels.mixture import log_normalize, weighted_scatter

SHAPES = [  # (n, d, K): one sample, one feature, one component, several chunks and blocks
    (1, 1, 1),
    (1, 3, 2),
    (7, 1, 3),
    (50, 2, 1),
    (_config.CHUNK_ROWS + 1, 3, 4),
    (3 * _config.CHUNK_ROWS + 17, 5, 3),
    (130, 8, 2),  # the 4 x 4 blocks with no pad feature, partial tiles
    (200, 11, 3),  # ... and with a pad feature
    (150, 33, 2),  # several bands of the register-blocked log-density, a partial group of rows
]


def prec_chol_t(covariances):
    """Transposed (lower) precision Cholesky factors, computed independently of emlab."""
    out = np.empty_like(covariances)
    for k, c in enumerate(covariances):
        lower = np.linalg.cholesky(c)
        out[k] = solve_triangular(lower, np.eye(len(c)), lower=True)
    return out


def run_log_gaussian(X, means, covariances):
    out = np.empty((X.shape[0], means.shape[0]))
    log_gaussian_full(X, means, prec_chol_t(covariances), _config.CHUNK_ROWS, out)
    return out


@pytest.mark.parametrize("n, d, k", SHAPES)
def test_log_gaussian_full_matches_scipy(n, d, k, rng, random_spd):
    X = rng.standard_normal((n, d)) * 3
    means = rng.standard_normal((k, d))
    covariances = random_spd(k, d)
    got = run_log_gaussian(X, means, covariances)
    np.testing.assert_allclose(got, reference.log_gaussian(X, means, covariances), rtol=1e-12, atol=1e-12)


def test_log_gaussian_tiny_variance_and_far_points(rng):
    """Tiny variances give huge densities near the mean and hugely negative ones far away."""
    X = np.array([[0.0, 0.0], [1e-5, -1e-5], [3.0, 4.0]])
    means = np.zeros((2, 2))
    covariances = np.array([1e-12 * np.eye(2), np.diag([1e-8, 1e4])])
    got = run_log_gaussian(X, means, covariances)
    # scipy.stats.multivariate_normal calls these matrices singular; for diagonal
    # covariances the density is a product of univariate ones.
    want = np.column_stack([
        norm.logpdf(X, means[k], np.sqrt(np.diag(covariances[k]))).sum(axis=1) for k in range(2)
    ])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.all(np.isfinite(got))


@pytest.mark.parametrize("n, d, k", SHAPES)
def test_log_normalize_matches_reference(n, d, k, rng):
    log_prob = rng.normal(scale=30, size=(n, k)) - 500
    log_norm, resp = np.empty(n), np.empty((n, k))
    log_normalize(log_prob, _config.CHUNK_ROWS, log_norm, resp)
    ref_norm, ref_resp = reference.log_normalize(log_prob)
    np.testing.assert_allclose(log_norm, ref_norm, rtol=1e-13)
    np.testing.assert_allclose(resp, ref_resp, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-13)


def test_log_normalize_underflow_and_minus_inf():
    """Probability space underflows at -800; log space does not. -inf entries are zero weights."""
    log_prob = np.array([
        [-800.0, -801.0, -np.inf],
        [-np.inf, -np.inf, -np.inf],  # no component can explain this row
        [0.0, -np.inf, 0.0],
        [-1e308, -1e308, 0.0],
    ])
    log_norm, resp = np.empty(4), np.empty((4, 3))
    log_normalize(log_prob, _config.CHUNK_ROWS, log_norm, resp)
    ref_norm, ref_resp = reference.log_normalize(log_prob)
    np.testing.assert_allclose(log_norm, ref_norm, rtol=1e-14)
    np.testing.assert_allclose(resp, ref_resp, rtol=1e-14)
    assert not np.isnan(resp).any()
    assert np.isclose(log_norm[0], -800 + np.log1p(np.exp(-1)))
    assert log_norm[1] == -np.inf and np.allclose(resp[1], 1 / 3)
    assert resp[2, 1] == 0.0 and resp[2, 0] == 0.5


def run_weighted_scatter(X, resp, centers, n_blocks=None, path="kernel"):
    """The scatter kernel itself (``path='kernel'``), or ``weighted_scatter``, which takes
    NumPy for work below PARALLEL_MIN_WORK (``path='dispatch'``)."""
    from emlab._config import PARALLEL_MIN_WORK
    from emlab._kernels.mixture import scatter_kernel

    n, d = X.shape
    k = resp.shape[1]
    if n_blocks is None:
        n_blocks = _config.n_blocks(n, k * (1 + d + d * d))
    nk, sums, scatter = np.empty(k), np.empty((k, d)), np.empty((k, d, d))
    run = scatter_kernel(d, PARALLEL_MIN_WORK) if path == "kernel" else weighted_scatter
    run(X, resp, centers, n_blocks, _config.CHUNK_ROWS, nk, sums, scatter)
    return nk, sums, scatter


@pytest.mark.parametrize("path", ["kernel", "dispatch"])
@pytest.mark.parametrize("n, d, k", SHAPES)
def test_weighted_scatter_matches_loops(n, d, k, path, rng):
    X = rng.standard_normal((n, d)) + 10.0
    resp = rng.dirichlet(np.ones(k), size=n)
    if k > 1:
        resp[:, 0] = 0.0  # a column of zero responsibility
        resp /= resp.sum(axis=1, keepdims=True)
    centers = rng.standard_normal((k, d)) + 10.0
    nk, sums, scatter = run_weighted_scatter(X, resp, centers, path=path)
    # What the kernel promises, written out about the centres:
    want_sums = np.array([(resp[:, j, None] * (X - centers[j])).sum(axis=0) for j in range(k)])
    want_scatter = np.array([
        sum(resp[i, j] * np.outer(X[i] - centers[j], X[i] - centers[j]) for i in range(n))
        for j in range(k)
    ])
    np.testing.assert_allclose(nk, resp.sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sums, want_sums, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(scatter, want_scatter, rtol=1e-10, atol=1e-10)
    assert np.array_equal(scatter, np.swapaxes(scatter, 1, 2))


def test_centred_statistics_survive_a_large_offset(rng):
    """Data at 1e8 with unit spread: the raw-moment formula loses every digit, ours keeps them."""
    from emlab.mixture import sufficient_statistics

    X = rng.standard_normal((2000, 2)) + 1e8
    resp = rng.dirichlet(np.ones(2), size=2000)
    nk, means, scatter = sufficient_statistics(X, resp, np.full((2, 2), 1e8))
    ref_nk, ref_means, ref_scatter = reference.weighted_stats(X, resp)
    np.testing.assert_allclose(means, ref_means, rtol=1e-14)
    np.testing.assert_allclose(scatter, ref_scatter, rtol=1e-9)
    raw = (resp[:, 0, None] * X).T @ X - nk[0] * np.outer(means[0], means[0])
    assert not np.allclose(raw, ref_scatter[0], rtol=1e-3)  # the formula we avoid


def test_reductions_do_not_depend_on_thread_count(rng):
    X = rng.standard_normal((5000, 3))
    resp = rng.dirichlet(np.ones(4), size=5000)
    centers = rng.standard_normal((4, 3))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run_weighted_scatter(X, resp, centers)
        numba.set_num_threads(before)
        many = run_weighted_scatter(X, resp, centers)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, many):
        assert np.array_equal(a, b)


def test_block_count_changes_only_round_off(rng):
    X = rng.standard_normal((3000, 2))
    resp = rng.dirichlet(np.ones(3), size=3000)
    centers = np.zeros((3, 2))
    for a, b in zip(run_weighted_scatter(X, resp, centers, 1), run_weighted_scatter(X, resp, centers, 7)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_n_blocks_respects_limits():
    assert _config.n_blocks(1, 10) == 1
    assert _config.n_blocks(10**7, 10) == _config.MAX_BLOCKS
    big = _config.ACCUMULATOR_BYTES // 8  # one block's worth of floats fills the budget
    assert _config.n_blocks(10**7, big) == 1


def run_assign(X, centers, labels=None):
    n, d = X.shape
    k = centers.shape[0]
    labels = np.full(n, -1, dtype=np.int64) if labels is None else labels
    dist, counts, sums, changed = np.empty(n), np.empty(k), np.empty((k, d)), np.empty(1, dtype=np.int64)
    assign_accumulate(X, centers, _config.n_blocks(n, k * (d + 1)), labels, dist, counts, sums, changed)
    return labels, dist, counts, sums, int(changed[0])


@pytest.mark.parametrize("n, d, k", SHAPES)
def test_assign_accumulate_matches_loops(n, d, k, rng):
    X = rng.standard_normal((n, d))
    centers = rng.standard_normal((k, d))
    labels, dist, counts, sums, changed = run_assign(X, centers)
    ref_labels, ref_dist = reference.kmeans_assign(X, centers)
    assert np.array_equal(labels, ref_labels) and changed == n
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(counts, np.bincount(ref_labels, minlength=k))
    want = np.array([X[ref_labels == j].sum(axis=0) for j in range(k)])
    np.testing.assert_allclose(sums, want, rtol=1e-12, atol=1e-12)
    # against the previous labels, only the rows that moved count as changed
    previous = ref_labels.copy()
    previous[::3] = (previous[::3] + 1) % k
    assert run_assign(X, centers, previous)[4] == (0 if k == 1 else len(range(0, n, 3)))


def test_assign_ties_go_to_the_lowest_index():
    X = np.array([[0.0, 0.0]])
    centers = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    labels, dist = run_assign(X, centers)[:2]
    assert labels[0] == 0 and dist[0] == 1.0


# ------------------------------------------------------------------ properties (hypothesis)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

finite_logs = st.floats(min_value=-1e5, max_value=1e3, allow_nan=False)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 6)), elements=finite_logs))
def test_log_normalize_properties(log_prob):
    n, k = log_prob.shape
    log_norm, resp = np.empty(n), np.empty((n, k))
    log_normalize(log_prob, _config.CHUNK_ROWS, log_norm, resp)
    ref_norm, ref_resp = reference.log_normalize(log_prob)
    assert np.all(resp >= 0) and np.allclose(resp.sum(axis=1), 1.0, rtol=1e-13)
    assert np.all(log_norm >= log_prob.max(axis=1))  # the sum is at least its largest term
    np.testing.assert_allclose(log_norm, ref_norm, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(resp, ref_resp, rtol=1e-11, atol=1e-300)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(1, 30), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_scatter_matrices_are_positive_semidefinite(n, d, k, seed):
    from emlab.mixture import sufficient_statistics

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.1, 100)
    resp = rng.dirichlet(np.ones(k), size=n)
    nk, means, scatter = sufficient_statistics(X, resp, rng.standard_normal((k, d)))
    ref_nk, ref_means, ref_scatter = reference.weighted_stats(X, resp)
    np.testing.assert_allclose(means, ref_means, rtol=1e-9, atol=1e-9 * np.abs(X).max())
    np.testing.assert_allclose(scatter, ref_scatter, rtol=1e-8, atol=1e-9 * (X**2).max())
    assert np.all(np.linalg.eigvalsh(scatter) >= -1e-9 * (X**2).max() * n)


# ------------------------------------------------------------------ fused E+M passes and exp


def test_exp_nonpos_matches_numpy():
    from numba import njit

    from emlab._kernels.elementary import exp_nonpos

    @njit
    def apply(x, out):
        for i in range(x.size):
            out[i] = exp_nonpos(x[i])

    rng = np.random.default_rng(0)
    x = np.concatenate([-rng.exponential(50, 100_000), -rng.uniform(0, 1, 10_000),
                        [0.0, -0.0, -1e-300, -707.9, -708.1, -800.0, -np.inf]])
    out = np.empty_like(x)
    apply(x, out)
    ref = np.exp(x)
    ok = x >= -708.0
    assert np.all(np.abs(out[ok] - ref[ok]) <= ref[ok] * (2.3e-16 + 3.5e-17 * np.abs(x[ok])))
    assert np.all(out[~ok] == 0.0)  # flushed: nothing below exp(-708) ~ 3e-308 survives
    assert out[-1] == 0.0 and out[-7] == 1.0


def test_reciprocal_and_log_product_match_numpy():
    """The E-step's row normalisation: ``reciprocal_of`` (float32 quotient and two Newton
    steps) within an ulp of ``1 / x``, and ``_log_product`` (exponents added, one log of
    the mantissas' product) against ``np.log(s).sum()`` for row sums as large as K = 1e6."""
    from numba import njit

    from emlab._kernels.elementary import reciprocal_of
    from emlab._kernels.mixture import _log_product

    @njit
    def reciprocals(x, out):
        for i in range(x.size):
            out[i] = reciprocal_of(x[i])

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(1.0, 8.0, 100_000), 10 ** rng.uniform(0, 7, 10_000),
                        [1.0, 2.0, 3.0, 1e7]])
    out = np.empty_like(x)
    reciprocals(x, out)
    np.testing.assert_allclose(out, 1.0 / x, rtol=2.3e-16, atol=0)
    out32 = np.empty(x.size, np.float32)
    reciprocals(x.astype(np.float32), out32)
    np.testing.assert_array_equal(out32, np.float32(1.0) / x.astype(np.float32))
    for rows in (1, 7, 8, 255, 256, 257, 512, 600):
        for top in (3.0, 1e6):
            s = rng.uniform(1.0, top, rows)
            ref = np.log(s).sum()
            assert abs(_log_product(s, rows) - ref) <= 1e-14 * max(1.0, abs(ref)), (rows, top)


FUSED_SHAPES = [(1, 1, 1), (300, 1, 3), (5, 3, 2), (63, 2, 3), (400, 2, 4), (65, 5, 4), (70, 8, 2), (130, 9, 3), (257, 6, 2), (90, 21, 3),
                (3 * _config.CHUNK_ROWS + 29, 7, 3)]


def reference_pass(X, log_weights, log_dens, centers, sample_weight=None):
    """log-likelihood and statistics about ``centers`` from the slow references."""
    log_norm, resp = reference.log_normalize(log_dens + log_weights)
    if sample_weight is not None:
        log_norm = log_norm * sample_weight
        resp = resp * sample_weight[:, None]
    k = resp.shape[1]
    nk = resp.sum(axis=0)
    sums = np.array([(resp[:, j, None] * (X - centers[j])).sum(axis=0) for j in range(k)])
    scatter = np.array([sum(resp[i, j] * np.outer(X[i] - centers[j], X[i] - centers[j]) for i in range(len(X)))
                        for j in range(k)])
    return log_norm.sum(), nk, sums, scatter


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", [7, 10, 17])
def test_em_step_full_with_several_tiles_in_one_block(d, dtype, rng, random_spd):
    # one block of 2,300 rows: several whole tiles (256 rows for d <= 8, 512 above, twice as
    # many in float32) and a partial one, each tile's log-density in whole groups of rows
    from emlab._kernels.mixture import em_step_full

    n, k = 2300, 3
    X = rng.standard_normal((n, d)) * 2 + 5.0
    means = rng.standard_normal((k, d)) + 5.0
    covariances = random_spd(k, d)
    log_weights = np.log(rng.dirichlet(np.ones(k)))
    ll, nk, sums, scatter = np.empty(1), np.empty(k), np.empty((k, d)), np.empty((k, d, d))
    Xc = X.astype(dtype)
    em_step_full(Xc, means.astype(dtype), prec_chol_t(covariances).astype(dtype), log_weights,
                 np.empty(0), 1, ll, nk, sums, scatter)
    X64 = Xc.astype(np.float64)
    m64 = means.astype(dtype).astype(np.float64)
    want = reference_pass(X64, log_weights, reference.log_gaussian(X64, m64, covariances), m64)
    tol = 1e-11 if dtype == np.float64 else 2e-4
    assert np.isclose(ll[0], want[0], rtol=tol)
    np.testing.assert_allclose(nk, want[1], rtol=tol, atol=tol * n)
    np.testing.assert_allclose(sums, want[2], rtol=tol, atol=tol * n)
    np.testing.assert_allclose(scatter, want[3], rtol=tol, atol=tol * n)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n, d, k", FUSED_SHAPES)
def test_em_step_full_matches_the_references(n, d, k, weighted, rng, random_spd):
    from emlab._kernels.mixture import em_step_full

    X = rng.standard_normal((n, d)) * 2
    means = rng.standard_normal((k, d))
    covariances = random_spd(k, d)
    log_weights = np.log(rng.dirichlet(np.ones(k)))
    if k > 2:
        log_weights[1] = -np.inf  # a component with weight 0
    w = rng.uniform(0, 3, n) * (rng.uniform(size=n) > 0.2) if weighted else None
    ll, nk, sums, scatter = np.empty(1), np.empty(k), np.empty((k, d)), np.empty((k, d, d))
    em_step_full(X, means, prec_chol_t(covariances), log_weights, np.empty(0) if w is None else w,
                 _config.n_blocks(n, k * (1 + d + d * d)), ll, nk, sums, scatter)
    want = reference_pass(X, log_weights, reference.log_gaussian(X, means, covariances), means, w)
    assert np.isclose(ll[0], want[0], rtol=1e-13)
    np.testing.assert_allclose(nk, want[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sums, want[2], rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(scatter, want[3], rtol=1e-11, atol=1e-11)
    if k > 2:
        assert nk[1] == 0.0


@pytest.mark.parametrize("spread", [0.5, 300.0])
@pytest.mark.parametrize("d", [1, 2, 5, 8, 11])
def test_em_step_full_scatter_far_from_the_origin(d, spread, rng, random_spd):
    # the 4 x 4 blocks kernel loads its tiles less the means' centre s, multiplies the
    # weighted differences by them and subtracts sums (mu - s)^T at the end; at d <= 8 the
    # log-density is L (x - s) - L (mu - s), as in the d <= 2 kernel (whose statistics
    # are about the means: differences of the shifted tile and mu - s). Exact in
    # arithmetic, with rounding of order eps |mu - s| / sigma, what X's own rounding
    # carries (1e-12 here); components 300 sigma apart put s far from every row
    from emlab._kernels.mixture import em_step_full

    n, k, offset = 3000, 3, 1e4
    means = offset + rng.standard_normal((k, d)) * spread
    X = rng.standard_normal((n, d)) + means[rng.integers(0, k, n)]
    covariances = random_spd(k, d)
    log_weights = np.log(np.full(k, 1.0 / k))
    ll, nk, sums, scatter = np.empty(1), np.empty(k), np.empty((k, d)), np.empty((k, d, d))
    em_step_full(X, means, prec_chol_t(covariances), log_weights, np.empty(0),
                 _config.n_blocks(n, k * (1 + d + d * d)), ll, nk, sums, scatter)
    want = reference_pass(X, log_weights, reference.log_gaussian(X, means, covariances), means,
                          None)
    assert np.isclose(ll[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(nk, want[1], rtol=1e-10)
    for j in range(k):
        scale = np.max(np.abs(want[3][j]))
        assert np.max(np.abs(scatter[j] - want[3][j])) <= 1e-10 * scale
    np.testing.assert_allclose(sums, want[2], rtol=1e-9, atol=1e-9 * np.max(np.abs(want[2])))
    assert np.array_equal(scatter, np.swapaxes(scatter, 1, 2))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n, d, k", FUSED_SHAPES)
def test_em_step_diag_matches_the_references(n, d, k, weighted, rng):
    from emlab._kernels.mixture import em_step_diag

    X = rng.standard_normal((n, d)) * 2
    means = rng.standard_normal((k, d))
    variances = rng.uniform(0.1, 3.0, (k, d))
    log_weights = np.log(rng.dirichlet(np.ones(k)))
    w = rng.uniform(0, 3, n) if weighted else None
    ll, nk, sums, sq = np.empty(1), np.empty(k), np.empty((k, d)), np.empty((k, d))
    em_step_diag(X, means, 1 / np.sqrt(variances), log_weights, np.empty(0) if w is None else w,
                 _config.n_blocks(n, k * (1 + 2 * d)), ll, nk, sums, sq)
    dens = np.column_stack([norm.logpdf(X, means[j], np.sqrt(variances[j])).sum(axis=1) for j in range(k)])
    want = reference_pass(X, log_weights, dens, means, w)
    assert np.isclose(ll[0], want[0], rtol=1e-13)
    np.testing.assert_allclose(nk, want[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sums, want[2], rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(sq, np.diagonal(want[3], axis1=1, axis2=2), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("spread", [0.5, 300.0])
@pytest.mark.parametrize("d", [1, 3, 8])
def test_em_step_diag_far_from_the_origin(d, spread, rng):
    # the diagonal kernel loads its tiles less the means' centre s and forms x a - (mu - s) a
    # (a = 1 / (sqrt(2) sigma)): rounding of order eps |mu - s| / sigma, what X's own
    # rounding carries (1e-12 here)
    from emlab._kernels.mixture import em_step_diag

    n, k, offset = 3000, 3, 1e4
    means = offset + rng.standard_normal((k, d)) * spread
    X = rng.standard_normal((n, d)) + means[rng.integers(0, k, n)]
    variances = rng.uniform(0.5, 2.0, (k, d))
    log_weights = np.log(np.full(k, 1.0 / k))
    ll, nk, sums, sq = np.empty(1), np.empty(k), np.empty((k, d)), np.empty((k, d))
    em_step_diag(X, means, 1 / np.sqrt(variances), log_weights, np.empty(0),
                 _config.n_blocks(n, k * (1 + 2 * d)), ll, nk, sums, sq)
    dens = np.column_stack([norm.logpdf(X, means[j], np.sqrt(variances[j])).sum(axis=1)
                            for j in range(k)])
    want = reference_pass(X, log_weights, dens, means, None)
    assert np.isclose(ll[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(nk, want[1], rtol=1e-10)
    want_sq = np.diagonal(want[3], axis1=1, axis2=2)
    np.testing.assert_allclose(sq, want_sq, rtol=1e-10, atol=1e-10 * np.max(want_sq))
    np.testing.assert_allclose(sums, want[2], rtol=1e-9, atol=1e-9 * np.max(np.abs(want[2])))


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_fused_pass_with_many_equal_components(kind, rng):
    # Every row's sum of exponentials is then exactly K, the largest it can be: the
    # products of those sums (one log per 256 rows) must neither overflow nor lose digits.
    from emlab._kernels.mixture import em_step_diag, em_step_full

    n, d, k = 3 * _config.CHUNK_ROWS + 29, 3, 300
    X = rng.standard_normal((n, d))
    means = np.zeros((k, d))
    log_weights = np.full(k, -np.log(k))
    out = (np.empty(1), np.empty(k), np.empty((k, d)), np.empty((k, d, d) if kind == "full" else (k, d)))
    if kind == "full":
        em_step_full(X, means, np.tile(np.eye(d), (k, 1, 1)), log_weights, np.empty(0),
                     _config.n_blocks(n, k * (1 + d + d * d)), *out)
    else:
        em_step_diag(X, means, np.ones((k, d)), log_weights, np.empty(0),
                     _config.n_blocks(n, k * (1 + 2 * d)), *out)
    want = norm.logpdf(X).sum()
    assert np.isclose(out[0][0], want, rtol=1e-13)
    np.testing.assert_allclose(out[1], n / k, rtol=1e-12)


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_pass_reports_a_row_no_component_can_produce(kind, weighted, rng):
    from emlab._kernels.mixture import em_step_diag, em_step_full

    n, d, k = 300, 2, 3
    X = rng.standard_normal((n, d))
    X[137] = 1e200  # its squared distance overflows: log density -inf under every component
    w = np.ones(n) if weighted else np.empty(0)
    means = rng.standard_normal((k, d))
    log_weights = np.full(k, -np.log(k))
    out = (np.empty(1), np.empty(k), np.empty((k, d)), np.empty((k, d, d) if kind == "full" else (k, d)))
    if kind == "full":
        em_step_full(X, means, np.tile(np.eye(d), (k, 1, 1)), log_weights, w, 2, *out)
    else:
        em_step_diag(X, means, np.ones((k, d)), log_weights, w, 2, *out)
    assert out[0][0] == -np.inf


def test_fused_pass_does_not_depend_on_thread_count(rng, random_spd):
    from emlab._kernels.mixture import em_step_full

    n, d, k = 20_000, 4, 3
    X = rng.standard_normal((n, d))
    args = (X, rng.standard_normal((k, d)), prec_chol_t(random_spd(k, d)), np.log(np.ones(k) / k),
            np.empty(0), _config.n_blocks(n, k * (1 + d + d * d)))
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, before):
            numba.set_num_threads(threads)
            out = (np.empty(1), np.empty(k), np.empty((k, d)), np.empty((k, d, d)))
            em_step_full(*args, *out)
            results.append(out)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_invert_lower_matches_scipy(rng, random_spd):
    from emlab._kernels.gaussian import invert_lower

    for d in (1, 2, 5, 17):
        lower = np.linalg.cholesky(random_spd(1, d)[0])
        out = np.full((d, d), np.nan)
        invert_lower(lower, out)
        np.testing.assert_allclose(out, solve_triangular(lower, np.eye(d), lower=True), rtol=1e-12, atol=1e-14)
        assert np.all(np.triu(out, 1) == 0.0)


@pytest.mark.parametrize("n, d, k", [(700, 1, 3), (700, 2, 3), (700, 3, 2), (700, 4, 3),
                                     (700, 6, 2), (700, 8, 3), (700, 11, 2)])
def test_serial_twins_equal_their_parallel_kernels(n, d, k, rng, random_spd):
    # small work runs a serial twin of each kernel (compiled without the parallel lowering,
    # _config.serial_twin): the same code over the same partition gives the same bits
    from emlab._kernels import kmeans as kmeans_kernels
    from emlab._kernels import mixture

    X = rng.standard_normal((n, d)) * 2
    X.flags.writeable = False
    means = rng.standard_normal((k, d))
    chol = prec_chol_t(random_spd(k, d))
    log_weights = np.log(rng.dirichlet(np.ones(k)))
    resp = rng.dirichlet(np.ones(k), size=n)
    # (parallel kernel, serial twin, inputs, fresh outputs): the outputs come last
    cases = [(mixture.full_step_kernel(d, 10**9), mixture.full_step_kernel(d, 0),
              (X, means, chol, log_weights, np.empty(0), 5),
              lambda: (np.empty(1), np.empty(k), np.empty((k, d)), np.empty((k, d, d)))),
             (mixture.diag_step_kernel(10**9), mixture.diag_step_kernel(0),
              (X, means, np.abs(chol[:, np.arange(d), np.arange(d)]), log_weights, np.empty(0), 5),
              lambda: (np.empty(1), np.empty(k), np.empty((k, d)), np.empty((k, d)))),
             (kmeans_kernels.assign_accumulate, kmeans_kernels.assign_accumulate_serial,
              (X, means, 5),
              lambda: (np.full(n, -1), np.empty(n), np.empty(k), np.empty((k, d)),
                       np.empty(1, dtype=np.int64)))]
    for parallel, serial, inputs, fresh in cases:
        assert parallel.targetoptions.get("parallel") and not serial.targetoptions.get("parallel")
        ours, twins = fresh(), fresh()
        parallel(*inputs, *ours)
        serial(*inputs, *twins)
        for a, b in zip(ours, twins):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_diagonal_moments_kernel_and_numpy_match_loops(dtype, rng):
    # the diagonal M-step's statistics: the kernel (large work) and NumPy (small work, no
    # kernel to compile in a first fit) against explicit loops, about centres far from 0
    from emlab._kernels.families import weighted_diag_moments, weighted_diag_moments_numpy

    n, d, k = 3 * _config.CHUNK_ROWS + 31, 3, 4
    X = (rng.standard_normal((n, d)) * 2 + 1e3).astype(dtype)
    resp = rng.dirichlet(np.ones(k), size=n)
    resp[:, 1] = 0.0  # an empty component
    centers = 1e3 + rng.standard_normal((k, d))
    want_s, want_q = np.zeros((k, d)), np.zeros((k, d))
    for i in range(n):
        for c in range(k):
            diff = X[i].astype(np.float64) - centers[c]
            want_s[c] += resp[i, c] * diff
            want_q[c] += resp[i, c] * diff * diff
    ours = (np.empty((k, d)), np.empty((k, d)))
    weighted_diag_moments(X, resp, centers, _config.n_blocks(n, 2 * k * d), _config.CHUNK_ROWS,
                          *ours)
    numpy = (np.empty((k, d)), np.empty((k, d)))
    weighted_diag_moments_numpy(X, resp, centers, *numpy)
    for got in (ours, numpy):
        np.testing.assert_allclose(got[0], want_s, rtol=1e-11, atol=1e-10)
        np.testing.assert_allclose(got[1], want_q, rtol=1e-11, atol=1e-10)
        assert np.all(got[0][1] == 0.0) and np.all(got[1][1] == 0.0)



@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_aligned_tiles_start_on_a_cache_line(dtype):
    # Numba placed arrays 32 bytes past a 64-byte boundary here; the kernels' tiles start on one,
    # and so does each row whose length is a multiple of 64 bytes (512-bit loads of a row then
    # never straddle two cache lines: a d = 32 step took 74 ms instead of 79-96 ms)
    from emlab._kernels.gaussian import aligned_tile

    cols = 128 // np.dtype(dtype).itemsize
    for rows in (1, 3, 8):
        zeros = aligned_tile(rows, cols, dtype, True)
        assert zeros.shape == (rows, cols) and zeros.dtype == dtype
        assert zeros.flags.c_contiguous and not zeros.any()
        assert all(zeros[i].ctypes.data % 64 == 0 for i in range(rows))
        assert aligned_tile(rows, cols, dtype, False).ctypes.data % 64 == 0


def test_prefetch_tile_part_issues_prefetches_and_touches_nothing():
    # the fused kernels prefetch the next tile's rows in shares while working on the
    # current one; a prefetch of rows past the end (the last tile's successor) must neither
    # fault nor change anything, the compiled code must hold the prefetch instruction, and
    # the shares must cover every cache line of the tile once
    from numba import njit

    from emlab._kernels.gaussian import prefetch_tile_part, share_of

    X = np.arange(40.0).reshape(10, 4)
    before = X.copy()
    for t0, rows in [(0, 10), (8, 2), (10, 0), (10, 5), (9, -3)]:
        for part in range(3):
            prefetch_tile_part(X, t0, rows, part, 3)
    assert np.array_equal(X, before)
    twin = njit(prefetch_tile_part.py_func)  # the cached kernel cannot be inspected
    twin(X, 0, 10, 0, 1)
    assert "prefetch" in twin.inspect_asm(twin.signatures[0])
    for count in [0, 1, 5, 64, 257, 2048]:
        for parts in [1, 2, 3, 6, 16, 300]:
            shares = [share_of(count, part, parts) for part in range(parts)]
            covered = [i for first, last in shares for i in range(first, last)]
            assert covered == list(range(count))
            sizes = [last - first for first, last in shares]
            assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_simd_vectors_match_numpy(dtype, rng):
    # the explicit vectors of emlab._kernels.simd (register-blocked kernels) against NumPy:
    # loads and stores of a row's lanes, multiply-adds with a broadcast scalar or a vector,
    # and subtraction with either side broadcast, in either precision
    from numba import njit

    from emlab._kernels import simd

    @njit
    def combine(a, b, out, scale):
        w = simd.lanes(a)
        x, y = simd.vload(a, 1, w), simd.vload(b, 0, 0)
        simd.vstore1(out, 1, simd.vfma(simd.vsplat(a, 0.5), scale, x))  # 0.5 + s x
        simd.vstore1(out, 1 + w, simd.vfma(x, x, y))  # x + x y
        simd.vstore1(out, 1 + 2 * w, simd.vsub(y, x))  # y - x
        simd.vstore1(out, 1 + 3 * w, simd.vsub(2.0, simd.vfma(simd.vzero(a), y, 1.0)))  # 2 - y
        return w

    lanes = simd.WIDTH_BYTES // np.dtype(dtype).itemsize
    a = rng.standard_normal((2, 2 * lanes)).astype(dtype)
    b = rng.standard_normal((1, lanes)).astype(dtype)
    out = np.full(4 * lanes + 2, np.nan, dtype)
    assert combine(a, b, out, dtype(1.5)) == lanes
    x, y = a[1, lanes:].astype(np.float64), b[0].astype(np.float64)
    rtol = 1e-15 if dtype == np.float64 else 1e-6
    got = out[1:-1].reshape(4, lanes)
    np.testing.assert_allclose(got[0], 0.5 + 1.5 * x, rtol=rtol)
    np.testing.assert_allclose(got[1], x + x * y, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(got[2], y - x, rtol=rtol, atol=4 * rtol)
    np.testing.assert_allclose(got[3], 2.0 - y, rtol=rtol, atol=4 * rtol)
    assert np.isnan(out[0]) and np.isnan(out[-1])  # nothing written outside the lanes


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_simd_four_lane_row_add(dtype, rng):
    # vadd_row4 (the split path's emission counts): a[i, :4] += b[j, :4] and nothing else,
    # with an unsigned row index (a symbol) as the kernels pass it
    from numba import njit

    from emlab._kernels import simd

    @njit
    def add(a, i, b, j):
        simd.vadd_row4(a, i, b, j)

    a = rng.standard_normal((3, 6)).astype(dtype)
    b = rng.standard_normal((4, 5)).astype(dtype)
    expected = a.copy()
    expected[2, :4] += b[3, :4]
    add(a, np.uint32(2), b, 3)
    np.testing.assert_array_equal(a, expected)


def test_simd_four_lane_vectors_against_numpy(rng):
    # the QUAD operations of the HMM recursions (K <= 4), lane by lane against NumPy: loads
    # and stores touch a row's first four entries only, broadcasts, sums in the order
    # (v0 + v1) + (v2 + v3), and the lane tests at their boundaries (NaN never passes)
    from numba import njit

    from emlab._kernels import simd

    @njit
    def ops(a, out, x, y):
        u, v = simd.qload(a, 1), simd.qpack(x[0], x[1], x[2], np.int64(3))
        s0, s1, s2, s3 = simd.qsplats(u)
        simd.qstore(out, 0, simd.qadd(simd.qmul(s1, v), 0.5))
        simd.qstore(out, 1, simd.qdiv(1.0, simd.qsums(u)))
        simd.qstore(out, 2, simd.vfma(simd.qmul(s3, 2.0), s0, s2))
        simd.qstore(out, 3, simd.qflush(u, y))
        return simd.qlanes(v), simd.qsum(u), simd.qfirst(u)

    @njit
    def tests(w, b, v, low, high):
        qw, qb, qv = simd.qpack(*w), simd.qpack(*b), simd.qpack(*v)
        return simd.qany_between(qv, low, high), simd.qany_flushed(qw, qb, qv, low)

    a = rng.standard_normal((3, 6))
    out = np.full((4, 5), np.nan)
    x = rng.standard_normal(3)
    lanes, total, first = ops(a, out, x, 0.1)
    u = a[1, :4]
    np.testing.assert_array_equal(lanes, [x[0], x[1], x[2], 3.0])
    assert total == (u[0] + u[1]) + (u[2] + u[3]) and first == u[0]
    np.testing.assert_array_equal(out[0, :4], u[1] * np.array(lanes) + 0.5)
    np.testing.assert_array_equal(out[1, :4], 1.0 / total)
    np.testing.assert_allclose(out[2, :4], 2.0 * u[3] + u[0] * u[2], rtol=1e-15)
    np.testing.assert_array_equal(out[3, :4], np.where(u >= 0.1, u, 0.0))
    assert np.isnan(out[:, 4]).all()  # nothing written past the four lanes
    nan = float("nan")
    assert tests((1.0,) * 4, (1.0,) * 4, (0.0, 2.0, 1e-300, nan), 0.0, 1e-290)[0]
    assert not tests((1.0,) * 4, (1.0,) * 4, (0.0, 2.0, 1e-290, nan), 0.0, 1e-290)[0]
    # a product below the bound from two positive factors, and not when a factor is 0
    assert tests((1.0, 1e-310, 1.0, 1.0), (1.0, 0.5, 1.0, 1.0), (1.0, 1e-200, 1.0, 1.0),
                 1e-300, 1.0)[1]
    assert not tests((1.0, 1e-310, 1.0, 1.0), (1.0, 0.0, 1.0, 1.0), (1.0, 1e-200, 1.0, 1.0),
                     1e-300, 1.0)[1]
    assert not tests((1.0, 0.0, 1.0, 1.0), (1.0, 0.5, 1.0, 1.0), (1.0, 0.0, 1.0, 1.0),
                     1e-300, 1.0)[1]
    out[3, :4] = np.nan
    ops(np.full((3, 4), np.nan), out, x, 0.1)
    np.testing.assert_array_equal(out[3, :4], 0.0)  # NaN lanes are flushed

    @njit
    def where_positive(m, v):
        return simd.qlanes(simd.qwhere_positive(simd.qpack(*m), simd.qpack(*v))), \
            simd.qlanes(simd.qwhere_positive(simd.qpack(*m), 1.0))

    kept, ones = where_positive((0.5, 0.0, -1.0, nan), (2.0, 3.0, 4.0, 5.0))
    assert kept == (2.0, 0.0, 0.0, 0.0) and ones == (1.0, 0.0, 0.0, 0.0)


def test_power_of_two_is_exact_over_the_normal_range():
    from numba import njit

    from emlab._kernels.elementary import power_of_two

    @njit
    def powers(ns):
        out = np.empty(ns.shape[0])
        for i in range(ns.shape[0]):
            out[i] = power_of_two(ns[i])
        return out

    ns = np.arange(-1022, 1024)
    np.testing.assert_array_equal(powers(ns), np.ldexp(1.0, ns))


@pytest.mark.parametrize("features, width", [
    ("+avx512f,+avx2,+avx,+fma,-prefer-256-bit", 64),
    ("-avx512f,+avx2,+avx,+fma", 32),
    ("-avx512f,-avx2,-avx,+sse2", 16),
])
def test_simd_width_follows_the_cpu_features_numba_compiles_for(features, width, monkeypatch):
    from numba.core import config

    from emlab._kernels import simd

    monkeypatch.setattr(config, "CPU_FEATURES", features)
    assert simd._width_bytes() == width


TILE_LOADS = [("load_tile_4x4", d) for d in (4, 6, 8, 11, 16, 21, 40)] + [
    (name, d) for name in ("load_tile_small", "load_tile") for d in (1, 2, 3, 4)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loader, d", TILE_LOADS)
def test_tiles_are_loaded_transposed_and_shifted(loader, d, dtype, rng):
    # against NumPy, with and without a shift, for a partial tile at an offset, a C-contiguous
    # X and a strided view (no vector blocks): load_tile_4x4 (register-transposed blocks of
    # lanes x lanes, or of lanes / 2 where d is under lanes, as float32 at d = 8 with AVX-512;
    # 4 x 4 blocks and single elements for what is left), load_tile_small (a branch per
    # d <= 4, what the kernels for d <= 4 call so that they compile no 4 x 4 copy) and
    # load_tile, which sends d <= 3 there
    from emlab._kernels import gaussian

    load = getattr(gaussian, loader)
    n, t0 = 90, 13
    base = (rng.standard_normal((n, 2 * d)) * 10).astype(dtype)
    shift = rng.standard_normal(d).astype(dtype)
    for X in (np.ascontiguousarray(base[:, :d]), base[:, ::2]):
        for rows in (64, 77, 3):
            for s in (None, shift):
                xt = np.full((d, 80), np.nan, dtype)
                load(X, t0, rows, xt, s)
                want = X[t0:t0 + rows] - (0 if s is None else s)
                assert np.array_equal(xt[:, :rows], want.T)
                assert np.isnan(xt[:, rows:]).all()  # nothing past the tile's rows


HASWELL_FEATURES = ("+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+f16c,+fma,+fxsr,+lzcnt,+mmx,"
                    "+movbe,+popcnt,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave")

def _fused_steps(cases, names):
    """``{name_ll, name_nk, name_sums, name_second}`` of one fused step for each case (3 blocks)."""
    from emlab._kernels.mixture import em_step_diag, em_step_full

    out = {}
    for name in names:
        X, means, factors, lw = (cases[name + key] for key in ("_X", "_means", "_factors", "_lw"))
        k, d = means.shape
        step = em_step_diag if name.startswith("diag") else em_step_full
        second = np.empty((k, d)) if name.startswith("diag") else np.empty((k, d, d))
        ll, nk, sums = np.empty(1), np.empty(k), np.empty((k, d))
        step(X, means, factors, lw, np.empty(0), 3, ll, nk, sums, second)
        out.update({name + "_ll": ll, name + "_nk": nk, name + "_sums": sums,
                    name + "_second": second})
    return out


_NARROW_CHECK = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
from emlab._kernels import gaussian, simd
from test_kernels import _fused_steps
assert simd.WIDTH_BYTES == 32 and gaussian.ROW_VECTORS == 2, (simd.WIDTH_BYTES, gaussian.ROW_VECTORS)
np.savez({result!r}, **_fused_steps(np.load({path!r}), {names!r}))
"""


def test_kernels_compiled_for_a_cpu_with_16_vector_registers(tmp_path, rng, random_spd):
    # The register-blocked kernels take two vectors of rows where the CPU has 16 vector
    # registers (AVX2) and four with AVX-512; this machine may have either. A subprocess
    # compiles them for an AVX2 CPU (Haswell's features, 4 float64 lanes, the 2-vector
    # kernels, 4 x 4 transposed blocks) and its steps must match this process's.
    cases = {}
    names = ("full13", "full33", "diag9")
    for name, d, diag in zip(names, (13, 33, 9), (False, False, True)):
        n, k = 700, 3
        X = rng.standard_normal((n, d)) * 2 + 3.0
        means = rng.standard_normal((k, d)) + 3.0
        factors = (rng.uniform(0.5, 2.0, (k, d)) if diag
                   else prec_chol_t(random_spd(k, d)))
        cases.update({name + "_X": X, name + "_means": means, name + "_factors": factors,
                      name + "_lw": np.log(rng.dirichlet(np.ones(k)))})
    path, result = str(tmp_path / "cases.npz"), str(tmp_path / "result.npz")
    np.savez(path, **cases)
    env = dict(os.environ, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES=HASWELL_FEATURES,
               NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    script = _NARROW_CHECK.format(tests=os.path.dirname(__file__), path=path, result=result,
                                  names=names)
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=600)
    theirs = np.load(result)
    for key, ours in _fused_steps(cases, names).items():
        np.testing.assert_allclose(theirs[key], ours, rtol=1e-11, atol=1e-10)


@pytest.mark.parametrize("d", [8, 11, 33])
def test_full_kernels_read_only_the_lower_triangle_of_the_factor(d, rng, random_spd):
    # the register-blocked log-density multiplies whole 4 x 4 blocks on the diagonal: what a
    # caller's factor holds above its diagonal must not count (the kernels zero it)
    from emlab._kernels.mixture import em_step_full

    n, k = 300, 3
    X = rng.standard_normal((n, d))
    means = rng.standard_normal((k, d))
    lower = prec_chol_t(random_spd(k, d))
    noisy = lower + np.triu(rng.standard_normal((k, d, d)), 1)
    log_weights = np.log(np.full(k, 1.0 / k))
    results = []
    for factor in (lower, noisy):
        dens = np.empty((n, k))
        log_gaussian_full(X, means, factor, _config.CHUNK_ROWS, dens)
        out = np.empty(1), np.empty(k), np.empty((k, d)), np.empty((k, d, d))
        em_step_full(X, means, factor, log_weights, np.empty(0), 2, *out)
        results.append((dens,) + out)
    for clean, dirty in zip(*results):
        np.testing.assert_array_equal(clean, dirty)
