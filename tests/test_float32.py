"""float32 data kept float32: no float64 copy of X, the same fit as of its float64 widening.

The kernels are specialised for float32 X and widen each tile as they load it,
so a fit of float32 X must equal the fit of ``X.astype(np.float64)`` (the same
numbers) to round-off, take no float64 copy of X, and return its attributes
in float32, as scikit-learn does.
"""

import tracemalloc

import numpy as np
import pytest

from emlab import BayesianGaussianMixture, GaussianMixture, KMeans


@pytest.fixture(scope="module")
def X32():
    rng = np.random.default_rng(7)
    parts = [rng.normal(0.0, 1.0, size=(700, 5)), rng.normal(4.0, 0.5, size=(500, 5)),
             rng.normal(-3.0, 2.0, size=(800, 5))]
    return np.concatenate(parts).astype(np.float32)


def close(a, b, rtol=1e-12):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_gaussian_mixture_float32_fit_equals_the_float64_fit(X32, covariance_type, init_params):
    X64 = X32.astype(np.float64)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=X32.shape[0])
    kwargs = dict(covariance_type=covariance_type, init_params=init_params, random_state=0,
                  max_iter=25, tol=1e-6)
    ours = GaussianMixture(3, **kwargs).fit(X32, sample_weight=weights)
    ref = GaussianMixture(3, **kwargs).fit(X64, sample_weight=weights)
    close(ours.lower_bounds_, ref.lower_bounds_)
    assert ours.n_iter_ == ref.n_iter_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        value = getattr(ours, name)
        assert value.dtype == np.float32, name
        close(value, getattr(ref, name).astype(np.float32), rtol=1e-6)
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
    close(ours.means_, ref.means_.astype(np.float32), rtol=1e-6)
    warm = GaussianMixture(3, random_state=0, warm_start=True, max_iter=2).fit(X32)
    warm.fit(X32)
    assert warm.means_.dtype == np.float32 and np.isfinite(warm.lower_bound_)


def test_float16_input_is_fitted_as_float32(X32):
    X16 = X32.astype(np.float16)
    ours = GaussianMixture(2, random_state=0, max_iter=10).fit(X16)
    ref = GaussianMixture(2, random_state=0, max_iter=10).fit(X16.astype(np.float64))
    assert ours.means_.dtype == np.float32
    close(ours.lower_bounds_, ref.lower_bounds_)


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
def test_bayesian_mixture_float32_equals_float64(X32, covariance_type):
    kwargs = dict(n_components=4, covariance_type=covariance_type, random_state=0, max_iter=30)
    ours = BayesianGaussianMixture(**kwargs).fit(X32)
    ref = BayesianGaussianMixture(**kwargs).fit(X32.astype(np.float64))
    close(ours.lower_bounds_, ref.lower_bounds_)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        assert getattr(ours, name).dtype == np.float32, name
        close(getattr(ours, name), getattr(ref, name).astype(np.float32), rtol=1e-6)
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
