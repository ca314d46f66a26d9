"""float32 data fitted in float32: no float64 copy of X, float32 arithmetic, float64 sums.

float32 X is fitted by the fused E/M kernels in float32 (issue 16, item 3): each
tile, the log-densities, exponentials and a tile's sums are float32, and the sums
over tiles, blocks and the M-step are float64. So a fit of float32 X tracks the
fit of ``X.astype(np.float64)`` to float32's precision, not to round-off; the
tolerances below are stated against float32's unit round-off (6e-8). The
fitted attributes are float32, as scikit-learn's, and prediction (which widens
each tile to float64) gives the same numbers for float32 X as for its float64
copy.
"""

import tracemalloc

import numba
import numpy as np
import pytest

from emlab import BayesianGaussianMixture, GaussianMixture, KMeans
from emlab._covariance import MODELS
from emlab._kernels import mixture as mixture_kernels


@pytest.fixture(scope="module")
def X32():
    rng = np.random.default_rng(7)
    parts = [rng.normal(0.0, 1.0, size=(700, 5)), rng.normal(4.0, 0.5, size=(500, 5)),
             rng.normal(-3.0, 2.0, size=(800, 5))]
    return np.concatenate(parts).astype(np.float32)


def close(a, b, rtol=1e-12):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


def close_scaled(a, b, rtol):
    """|a - b| <= rtol * max|b|, entrywise: the error of a float32 computation measured
    against the size of what it computes (cancellation makes small entries' relative
    error meaningless)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.max(np.abs(b))), 1e-300)
    assert np.max(np.abs(a - b)) <= rtol * scale, (np.max(np.abs(a - b)) / scale, rtol)


def _parameters(covariance_type, k, d, rng):
    """float64 means, precision factors and log weights (one weight zero when k > 2)."""
    means = rng.normal(size=(k, d)) * 1.5
    if covariance_type == "full":
        a = rng.normal(size=(k, d, d))
        cov = a @ np.swapaxes(a, 1, 2) / d + 0.5 * np.eye(d)
    elif covariance_type == "tied":
        a = rng.normal(size=(d, d))
        cov = a @ a.T / d + 0.5 * np.eye(d)
    elif covariance_type == "diag":
        cov = rng.uniform(0.3, 3.0, size=(k, d))
    else:
        cov = rng.uniform(0.3, 3.0, size=k)
    log_weights = np.log(rng.dirichlet(np.ones(k)))
    if k > 2:
        log_weights[1] = -np.inf
    return means, MODELS[covariance_type].precision_cholesky(cov), log_weights


# the full kernels' three tile shapes (d <= 2, d <= 4, 4 x 4 blocks with the one-pass d <= 8),
# serial (small work) and parallel, and the diagonal kernel
FUSED_CASES = [("full", 300, 1, 3), ("full", 5000, 2, 3), ("full", 700, 3, 4),
               ("full", 40_000, 4, 3), ("full", 900, 6, 2), ("full", 20_000, 8, 3),
               ("full", 3000, 11, 2), ("tied", 2000, 5, 3), ("diag", 300, 1, 2),
               ("diag", 30_000, 8, 4), ("spherical", 2000, 3, 3)]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("covariance_type, n, d, k", FUSED_CASES)
def test_float32_fused_step_tracks_float64(covariance_type, n, d, k, weighted):
    # the same numbers (X is float32-exact) through the float32 and the float64 kernels: the
    # float64 kernels are checked against slow references in test_kernels.py
    rng = np.random.default_rng(d * 100 + k)
    X32 = (rng.normal(size=(n, d)) * 2.0).astype(np.float32)
    means, pc, log_weights = _parameters(covariance_type, k, d, rng)
    w = rng.uniform(0.0, 3.0, n) if weighted else None
    model = MODELS[covariance_type]
    ll32, nk32, sums32, second32 = model.fused_step(X32, means, pc, log_weights, w)
    ll64, nk64, sums64, second64 = model.fused_step(X32.astype(np.float64), means, pc,
                                                    log_weights, w)
    assert ll32 == pytest.approx(ll64, rel=1e-6)
    close_scaled(nk32, nk64, 2e-6)
    close_scaled(sums32, sums64, 2e-6)
    close_scaled(second32, second64, 2e-6)
    if k > 2:
        assert nk32[1] == 0.0  # a component of weight zero gets nothing, exactly


def test_float32_statistics_are_about_the_float64_means():
    # X far from the origin: means rounded to float32 move by up to 3e-5 (a unit at 300), and
    # the statistics about the rounded centres are moved back to the float64 means exactly
    rng = np.random.default_rng(5)
    n, d, k = 20_000, 6, 3
    X32 = (300.0 + rng.normal(size=(n, d))).astype(np.float32)
    means = 300.0 + rng.normal(size=(k, d)) * 0.3 + 1.234567e-5
    assert np.max(np.abs(means.astype(np.float32) - means)) > 5e-6
    for covariance_type in ("full", "diag"):
        _, pc, log_weights = _parameters(covariance_type, k, d, rng)
        model = MODELS[covariance_type]
        got = model.fused_step(X32, means, pc, log_weights)
        want = model.fused_step(X32.astype(np.float64), means, pc, log_weights)
        # the sums about the means are of the size of sqrt(n); a shift of 3e-5 left in them
        # would add nk * 3e-5 (about 0.2), over 1e-3 of their size
        for a, b in zip(got[1:], want[1:]):
            close_scaled(a, b, 2e-5)


@pytest.mark.parametrize("covariance_type, n, d, k", [("full", 60_000, 2, 3), ("full", 30_000, 3, 3),
                                                      ("full", 20_000, 8, 4),
                                                      ("diag", 60_000, 8, 4)])
def test_float32_fused_step_does_not_depend_on_thread_count(covariance_type, n, d, k):
    rng = np.random.default_rng(11)
    X32 = rng.normal(size=(n, d)).astype(np.float32)
    means, pc, log_weights = _parameters(covariance_type, k, d, rng)
    model = MODELS[covariance_type]
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, before):
            numba.set_num_threads(threads)
            results.append(model.fused_step(X32, means, pc, log_weights))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(*results):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("d", [1, 3, 8])
def test_float32_serial_twins_equal_their_parallel_kernels(d):
    rng = np.random.default_rng(d)
    n, k = 900, 3
    X32 = rng.normal(size=(n, d)).astype(np.float32)
    means, pc, log_weights = _parameters("full", k, d, rng)
    chol = np.ascontiguousarray(np.swapaxes(pc, 1, 2)).astype(np.float32)
    out = []
    for kernel in (mixture_kernels.full_step_kernel(d, 10**9), mixture_kernels.full_step_kernel(d, 0)):
        o = (np.empty(1), np.empty(k), np.empty((k, d)), np.empty((k, d, d)))
        kernel(X32, means.astype(np.float32), chol, log_weights, np.empty(0), 5, *o)
        out.append(o)
    assert mixture_kernels.full_step_kernel(d, 10**9) is not mixture_kernels.full_step_kernel(d, 0)
    for a, b in zip(*out):
        assert np.array_equal(a, b)


def test_exp_nonpos32_matches_numpy():
    from numba import njit

    from emlab._kernels.elementary import EXP_UNDERFLOW32, exp_nonpos32

    @njit
    def apply(x, out):
        for i in range(x.size):
            out[i] = exp_nonpos32(x[i])

    x = np.concatenate([-np.random.default_rng(0).uniform(0.0, 87.0, 200_000),
                        [0.0, -0.0, -1e-30, -0.5 * np.log(2.0), -87.0]]).astype(np.float32)
    out = np.empty_like(x)
    apply(x, out)
    want = np.exp(x.astype(np.float64))
    assert out.dtype == np.float32
    rel = np.abs(out - want) / want
    assert rel.max() < 3.5e-7  # 6 units of float32's rounding
    assert rel[x > -1].max() < 1.5e-7
    assert out[x == 0].tolist() == [1.0, 1.0]
    edge = np.array([-87.01, -100.0, -np.inf, np.float32(EXP_UNDERFLOW32)], dtype=np.float32)
    out = np.empty_like(edge)
    apply(edge, out)
    assert out[:3].tolist() == [0.0, 0.0, 0.0] and out[3] > 0.0


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_gaussian_mixture_float32_fit_tracks_the_float64_fit(X32, covariance_type, init_params):
    # 25 iterations each (tol=0), from the same start: the float32 fit stays within float32's
    # precision of the float64 fit of the same numbers
    X64 = X32.astype(np.float64)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=X32.shape[0])
    kwargs = dict(covariance_type=covariance_type, init_params=init_params, random_state=0,
                  max_iter=25, tol=0.0)
    ours = GaussianMixture(3, **kwargs).fit(X32, sample_weight=weights)
    ref = GaussianMixture(3, **kwargs).fit(X64, sample_weight=weights)
    close(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-6)
    assert ours.n_iter_ == ref.n_iter_ == 25
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        value = getattr(ours, name)
        assert value.dtype == np.float32, name
        close_scaled(value, getattr(ref, name), 1e-5)
    # prediction from the same (float32) attributes: float32 rows widen exactly
    close(ours.score_samples(X32), ours.score_samples(X64))
    close(ours.predict_proba(X32), ours.predict_proba(X64))
    np.testing.assert_array_equal(ours.predict(X32), ours.predict(X64))
    close(ours.bic(X32), ours.bic(X64))


def test_gaussian_mixture_partial_fit_and_warm_start_float32(X32):
    X64 = X32.astype(np.float64)
    ours, ref = GaussianMixture(3, random_state=0), GaussianMixture(3, random_state=0)
    for rows in np.array_split(np.arange(X32.shape[0]), 4):
        ours.partial_fit(X32[rows])
        ref.partial_fit(X64[rows])
    assert ours.means_.dtype == np.float32
    close_scaled(ours.means_, ref.means_, 1e-5)
    warm = GaussianMixture(3, random_state=0, warm_start=True, max_iter=2).fit(X32)
    warm.fit(X32)
    assert warm.means_.dtype == np.float32 and np.isfinite(warm.lower_bound_)


def test_float16_input_is_fitted_as_float32(X32):
    X16 = X32.astype(np.float16)
    ours = GaussianMixture(2, random_state=0, max_iter=10, tol=0.0).fit(X16)
    ref = GaussianMixture(2, random_state=0, max_iter=10, tol=0.0).fit(X16.astype(np.float32))
    assert ours.means_.dtype == np.float32
    close(ours.lower_bounds_, ref.lower_bounds_)  # float16 is widened to float32 exactly


def test_kmeans_float32_equals_float64(X32):
    X64 = X32.astype(np.float64)
    for init in ("k-means++", "random"):
        ours = KMeans(3, init=init, n_init=2, random_state=0).fit(X32)
        ref = KMeans(3, init=init, n_init=2, random_state=0).fit(X64)
        assert ours.cluster_centers_.dtype == np.float32
        close(ours.cluster_centers_, ref.cluster_centers_.astype(np.float32), rtol=1e-6)
        close(ours.inertia_, ref.inertia_)
        np.testing.assert_array_equal(ours.labels_, ref.labels_)
        distances = ours.transform(X32)
        assert distances.dtype == np.float32 and ours.transform(X64).dtype == np.float64
        close(distances, ours.transform(X64).astype(np.float32), rtol=1e-6)
        np.testing.assert_array_equal(ours.predict(X32), ours.predict(X64))
    online = KMeans(3, random_state=0).partial_fit(X32[:1000]).partial_fit(X32[1000:])
    assert online.cluster_centers_.dtype == np.float32


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_bayesian_mixture_float32_tracks_float64(X32, covariance_type):
    kwargs = dict(n_components=4, covariance_type=covariance_type, random_state=0, max_iter=30,
                  tol=0.0)
    ours = BayesianGaussianMixture(**kwargs).fit(X32)
    ref = BayesianGaussianMixture(**kwargs).fit(X32.astype(np.float64))
    close(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-6)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        assert getattr(ours, name).dtype == np.float32, name
        close_scaled(getattr(ours, name), getattr(ref, name), 1e-5)
    close(ours.score_samples(X32), ours.score_samples(X32.astype(np.float64)))


def _peak_bytes(fit):
    tracemalloc.start()
    try:
        fit()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("make", [
    lambda: GaussianMixture(3, covariance_type="full", random_state=0, max_iter=3),
    lambda: GaussianMixture(3, covariance_type="diag", init_params="k-means++", random_state=0,
                            max_iter=3),
    lambda: KMeans(3, random_state=0, max_iter=5),
], ids=["gmm-full-kmeans-init", "gmm-diag", "kmeans"])
def test_float32_fit_takes_no_float64_copy(make):
    """A float64 copy of X would alone take twice X's bytes; the fit peaks below X's."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200_000, 16)).astype(np.float32)
    X[:100_000] += 5.0
    make().fit(X[:2000])  # compile outside the measurement
    peak = _peak_bytes(lambda: make().fit(X))
    assert peak < X.nbytes, (peak, X.nbytes)
