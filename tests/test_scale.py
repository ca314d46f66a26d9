"""EM at scale: additive statistics, Dask (threads and a LocalCluster), online EM, memory maps.

Every chunked result is compared with the in-memory fit from the same start, and the
merged statistics with the slow references of ``tests/reference.py``.
"""

import os
import signal
import threading
import time
import tracemalloc
import warnings

import numpy as np
import pytest
from scipy.stats import binom

import reference as ref
from daskguard import guarded_scheduler
from emlab import GaussianMixture, KMeans, fit_em
from emlab.em import ChunkList, SufficientStatistics, tree_sum
from emlab.mixture import MixtureParams, chunk_statistics

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
RTOL = 1e-10


def mixture_data(rng, n=3000, d=3):
    centres = np.array([[0.0] * d, [4.0] + [0.0] * (d - 1), [0.0, 4.0] + [0.0] * (d - 2)])
    z = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    return centres[z] + rng.standard_normal((n, d)) * np.linspace(0.6, 1.2, d)


def a_start(X, covariance_type, rng):
    """A deliberately poor but valid start: EM has work to do from it."""
    fitted = GaussianMixture(3, covariance_type=covariance_type, random_state=0, max_iter=5,
                             tol=0.0).fit(X)
    return dict(weights_init=np.full(3, 1 / 3), means_init=fitted.means_ + rng.normal(0, 0.5, (3, X.shape[1])),
                precisions_init=fitted.precisions_)


def assert_same_fit(a, b, rtol=RTOL):
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol, atol=0)
    for name in ("weights_", "means_", "covariances_"):
        got, want = getattr(b, name), getattr(a, name)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max(), err_msg=name)


# --------------------------------------------------------------------------- the statistics


def test_sufficient_statistics_add_and_scale():
    a = SufficientStatistics(-2.0, 3.0, s=np.array([1.0, 2.0]))
    b = SufficientStatistics(-1.0, 1.0, s=np.array([0.5, 0.0]))
    total = sum([a, b])
    assert (total.objective, total.weight) == (-3.0, 4.0)
    np.testing.assert_array_equal(total.s, [1.5, 2.0])
    half = 0.5 * total
    assert (half.objective, half.weight) == (-1.5, 2.0)
    np.testing.assert_array_equal(half.s, [0.75, 1.0])
    with pytest.raises(ValueError, match="factor"):
        -1.0 * a
    with pytest.raises(AttributeError, match="no statistic 'nope'"):
        a.nope
    assert tree_sum([a, b, a]).weight == 7.0


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_chunk_statistics_merge_to_the_slow_reference(covariance_type, weighted, rng, random_spd):
    X = mixture_data(rng, n=90, d=3)
    w = rng.uniform(0.0, 2.0, X.shape[0]) if weighted else None
    cov = random_spd(3, 3)
    params = MixtureParams(np.array([0.5, 0.3, 0.2]), rng.normal(0, 2, (3, 3)), cov, covariance_type="full")
    params = MixtureParams(params.weights, params.means,
                           {"full": cov, "tied": cov[0], "diag": cov[:, 0, 0:3].copy() ** 2 + 0.5,
                            "spherical": np.array([0.7, 1.3, 2.0])}[covariance_type],
                           covariance_type=covariance_type)
    cuts = [0, 7, 8, 40, 90]  # uneven chunks, one of a single row
    parts = [chunk_statistics(X[a:b], params, None if w is None else w[a:b])
             for a, b in zip(cuts, cuts[1:])]
    merged = tree_sum(parts)
    # the reference: scipy densities, row-by-row normalisation, explicit loops
    log_prob = ref.log_gaussian(X, params.means, params.full_covariances()) + np.log(params.weights)
    log_norm, resp = ref.log_normalize(log_prob)
    if w is not None:
        resp = resp * w[:, None]
    nk, means, scatter = ref.weighted_stats(X, resp)
    np.testing.assert_allclose(merged.objective, np.sum(log_norm if w is None else w * log_norm),
                               rtol=1e-12)
    np.testing.assert_allclose(merged.weight, X.shape[0] if w is None else w.sum(), rtol=1e-12)
    np.testing.assert_allclose(merged.nk, nk, rtol=1e-12)
    np.testing.assert_allclose(merged.means, means, rtol=1e-10, atol=1e-12)
    want = scatter if merged.second.ndim == 3 else np.diagonal(scatter, axis1=1, axis2=2)
    np.testing.assert_allclose(merged.second, want, rtol=1e-10, atol=1e-10)


def test_scaled_statistics_mix_as_raw_moments(rng):
    """(1 - g) s + g t, with the pairwise update, is the convex mix of the raw moments."""
    X = mixture_data(rng, n=200, d=2)
    params = GaussianMixture(3, random_state=0).fit(X)
    params = MixtureParams.from_model(params)
    s, t = chunk_statistics(X[:120], params), chunk_statistics(X[120:], params)
    g = 0.3
    mix = (1 - g) * s + g * t

    def raw(stats):
        return stats.nk, stats.nk[:, None] * stats.means, stats.second + stats.nk[:, None, None] * (
            stats.means[:, :, None] * stats.means[:, None, :])

    for got, a, b in zip(raw(mix), raw(s), raw(t)):
        np.testing.assert_allclose(got, (1 - g) * a + g * b, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- a user's model


class CoinStatistics:
    """The two-coin mixture of the README on the statistics protocol."""

    TOSSES = 10

    def init_params(self, X, rng):
        return np.array([0.5, 0.5]), rng.uniform(0.2, 0.8, size=2)

    def statistics(self, X, params):
        w, p = params
        joint = w * binom.pmf(X[:, 0, None], self.TOSSES, p)
        lik = joint.sum(axis=1)
        resp = joint / lik[:, None]
        return SufficientStatistics(np.log(lik).sum(), X.shape[0], counts=resp.sum(axis=0),
                                    heads=resp.T @ X[:, 0])

    def params_from_statistics(self, stats, params):
        return stats.counts / stats.counts.sum(), stats.heads / (self.TOSSES * stats.counts)


def coin_data(rng, n=500):
    coin = rng.choice(2, size=n, p=[0.3, 0.7])
    return rng.binomial(10, np.array([0.2, 0.75])[coin]).reshape(-1, 1).astype(float)


def test_user_model_on_chunks_equals_in_memory(rng):
    X = coin_data(rng)
    whole = fit_em(CoinStatistics(), X, n_init=3, random_state=1, tol=1e-12, max_iter=500)
    chunks = ChunkList([X[:100], X[100:101], X[101:]])
    chunked = fit_em(CoinStatistics(), chunks, n_init=3, random_state=1, tol=1e-12, max_iter=500)
    assert whole.n_iter == chunked.n_iter
    np.testing.assert_allclose(chunked.lower_bounds, whole.lower_bounds, rtol=1e-12)
    for got, want in zip(chunked.params, whole.params):
        np.testing.assert_allclose(got, want, rtol=1e-10)
    assert np.all(np.diff(whole.lower_bounds) >= -1e-13)


def test_user_model_on_a_dask_array(rng):
    X = coin_data(rng)
    whole = fit_em(CoinStatistics(), X, random_state=2, tol=1e-12, max_iter=500)
    chunked = fit_em(CoinStatistics(), da.from_array(X, chunks=77), random_state=2,
                     tol=1e-12, max_iter=500)
    np.testing.assert_allclose(chunked.lower_bounds, whole.lower_bounds, rtol=1e-12)
    with pytest.raises(ValueError, match="sufficient-statistics protocol"):
        fit_em(__import__("test_em").Coins(), da.from_array(X, chunks=77))


# --------------------------------------------------------------------------- Dask, threads


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_dask_fit_equals_in_memory_fit(covariance_type, rng):
    X = mixture_data(rng)
    start = a_start(X, covariance_type, rng)
    options = dict(covariance_type=covariance_type, tol=1e-9, max_iter=300, **start)
    a = GaussianMixture(3, **options).fit(X)
    b = GaussianMixture(3, **options).fit(da.from_array(X, chunks=700))
    assert a.n_iter_ > 5
    assert_same_fit(a, b)


@pytest.mark.parametrize("setting", ["sample_weight", "prior", "missing"])
def test_dask_fit_equals_in_memory_fit_with_options(setting, rng):
    X = mixture_data(rng)
    start = a_start(X, "full", rng)
    options = dict(tol=1e-9, max_iter=300, **start)
    fit_kw, dask_kw = {}, {}
    if setting == "sample_weight":
        w = rng.uniform(0.0, 3.0, X.shape[0])
        w[:10] = 0.0
        fit_kw, dask_kw = {"sample_weight": w}, {"sample_weight": da.from_array(w, chunks=500)}
    elif setting == "prior":
        options["prior"] = "conjugate"
    else:
        X = X.copy()
        X[rng.random(X.shape) < 0.1] = np.nan
        X[np.isnan(X).all(axis=1), 0] = 0.0
        options["missing"] = "marginalize"
    a = GaussianMixture(3, **options).fit(X, **fit_kw)
    b = GaussianMixture(3, **options).fit(da.from_array(X, chunks=(600, 3)), **dask_kw)
    assert_same_fit(a, b)


def test_dask_chunks_split_by_columns_or_of_unknown_size(rng):
    X = mixture_data(rng)
    start = a_start(X, "diag", rng)
    options = dict(covariance_type="diag", tol=1e-9, **start)
    a = GaussianMixture(3, **options).fit(X)
    by_columns = da.from_array(X, chunks=(1000, 1))
    assert_same_fit(a, GaussianMixture(3, **options).fit(by_columns))
    dX = da.from_array(X, chunks=500)
    unknown = dX[dX[:, 0] > -np.inf]  # boolean indexing leaves the chunk sizes unknown (NaN)
    assert np.isnan(unknown.chunks[0][0])
    assert_same_fit(a, GaussianMixture(3, **options).fit(unknown))
    # a filter that empties whole chunks: those are dropped, the rest fit as in memory
    keep = np.ones(X.shape[0], dtype=bool)
    keep[500:1500] = False
    filtered = dX[da.from_array(keep, chunks=500)]
    assert 0 in filtered.compute_chunk_sizes().chunks[0]
    assert_same_fit(GaussianMixture(3, **options).fit(X[keep]),
                    GaussianMixture(3, **options).fit(filtered))


def test_dask_nan_is_named_by_chunk_and_row(rng):
    X = mixture_data(rng)
    X[1234, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 NaN .* in chunk 2 \(rows 1000 to 1499\), "
                                         r"first at row 1234.*missing='marginalize'"):
        GaussianMixture(3).fit(da.from_array(X, chunks=500))
    w = np.ones(X.shape[0])
    w[10] = -1.0
    with pytest.raises(ValueError, match=r"sample_weight must be finite and non-negative; chunk 0"):
        GaussianMixture(3).fit(da.from_array(np.nan_to_num(X), chunks=500),
                               sample_weight=da.from_array(w, chunks=500))
    with pytest.raises(ValueError, match="2-d"):
        GaussianMixture(3).fit(da.from_array(X[:, 0], chunks=500))


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_dask_initialisation_without_gathering(init_params, rng):
    X = mixture_data(rng, n=30_000)  # the seeds' sample is 10,000 rows: a third of X
    with dask.config.set(scheduler=guarded_scheduler(X.shape[0] // 2)):  # fails on a gather
        gm = GaussianMixture(3, init_params=init_params, random_state=0, n_init=2, tol=1e-6,
                             max_iter=500).fit(da.from_array(X, chunks=5000))
    ref_fit = GaussianMixture(3, random_state=0, n_init=2).fit(X)
    # the same optimum as in memory (the starts differ: seeds come from a sample)
    assert gm.score(X) == pytest.approx(ref_fit.score(X), abs=2e-3)
    assert np.all(np.diff(gm.lower_bounds_) >= -1e-10)
    labels = gm.predict(da.from_array(X, chunks=5000))
    np.testing.assert_array_equal(labels.compute(), gm.predict(X))


def test_dask_kmeans_matches_in_memory_lloyd(rng):
    X = mixture_data(rng, n=30_000)
    centers = X[[0, 1, 2]].copy()
    a = KMeans(3, init=centers, tol=0.0, max_iter=300).fit(X)
    with dask.config.set(scheduler=guarded_scheduler(X.shape[0] // 2)):
        b = KMeans(3, init=centers, tol=0.0, max_iter=300).fit(da.from_array(X, chunks=7000))
        KMeans(3, random_state=0).fit(da.from_array(X, chunks=7000))  # seeded from a sample
    np.testing.assert_allclose(b.cluster_centers_, a.cluster_centers_, rtol=1e-10)
    assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-10)
    np.testing.assert_array_equal(b.labels_.compute(), a.labels_)
    # the statistics against the slow reference
    stats = tree_sum(__import__("emlab").kmeans.lloyd_statistics(X[i:i + 7000], centers)
                     for i in range(0, 30_000, 7000))
    labels, dist = ref.kmeans_assign(X, centers)
    np.testing.assert_allclose(stats.counts, np.bincount(labels, minlength=3))
    assert -stats.objective == pytest.approx(dist.sum(), rel=1e-12)


# --------------------------------------------------------------------------- Dask, a cluster


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", env={"NUMBA_NUM_THREADS": "1"})
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_fit_on_a_local_cluster_equals_in_memory(client):
    rng = np.random.default_rng(5)
    X = mixture_data(rng, n=6000)
    start = a_start(X, "full", rng)
    a = GaussianMixture(3, tol=1e-9, **start).fit(X)
    dX = da.from_array(X, chunks=1000)
    b = GaussianMixture(3, tol=1e-9, **start).fit(dX)
    assert_same_fit(a, b)
    # three starts in lockstep, one pass a step: still the best of the three
    c = GaussianMixture(3, n_init=3, random_state=0, tol=1e-6).fit(dX)
    assert c.lower_bound_ >= b.lower_bound_ - 1e-3


def test_a_worker_lost_mid_fit_does_not_change_the_result(client):
    rng = np.random.default_rng(6)
    X = mixture_data(rng, n=60_000, d=4)
    start = a_start(X, "full", rng)
    options = dict(tol=0.0, max_iter=60, **start)
    want = GaussianMixture(3, **options).fit(X)
    pids = list(client.run(os.getpid).values())
    got = {}

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got["model"] = GaussianMixture(3, **options).fit(da.from_array(X, chunks=5000))

    thread = threading.Thread(target=fit)
    thread.start()
    time.sleep(1.5)
    assert thread.is_alive(), "the fit ended before a worker could be killed: make it longer"
    os.kill(pids[0], signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert_same_fit(want, got["model"])


# --------------------------------------------------------------------------- online EM


def stream(rng, n):
    means = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    z = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    return means[z] + rng.standard_normal((n, 2)) * np.array([1.0, 0.5])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_online_em_reaches_batch_em(covariance_type):
    rng = np.random.default_rng(11)
    held_out = stream(rng, 20_000)
    batch = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(stream(rng, 200_000))
    online = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    for _ in range(200):
        online.partial_fit(stream(rng, 1000))
        # every M-step gives valid parameters
        assert abs(online.weights_.sum() - 1) < 1e-12 and np.all(online.weights_ >= 0)
        full = MixtureParams.from_model(online).full_covariances()
        assert np.all(np.linalg.eigvalsh(full) > 0)
    assert online.n_steps_ == 200 and online.lower_bounds_.shape == (200,)
    gap = (batch.score(held_out) - online.score(held_out)) / abs(batch.score(held_out))
    assert gap < 0.005


def test_online_em_keeps_the_prior_and_checks_its_step_sizes():
    rng = np.random.default_rng(12)
    online = GaussianMixture(3, prior="conjugate", reg_covar=0.0, random_state=0)
    for _ in range(20):
        online.partial_fit(stream(rng, 200))
    assert np.all(np.linalg.eigvalsh(online.covariances_) > 0)
    with pytest.raises(ValueError, match=r"learning_decay must be in \(0.5, 1\]"):
        GaussianMixture(3, learning_decay=0.5).partial_fit(stream(rng, 100))
    # after fit, partial_fit continues from the fitted parameters
    gm = GaussianMixture(3, random_state=0).fit(stream(rng, 3000))
    before = gm.means_.copy()
    gm.partial_fit(stream(rng, 1000))
    assert np.abs(gm.means_ - before).max() < 0.5


def test_online_kmeans_reaches_lloyd():
    rng = np.random.default_rng(13)
    X = stream(rng, 30_000)
    full = KMeans(3, random_state=0).fit(X)
    online = KMeans(3, random_state=0)
    for i in range(200):
        online.partial_fit(X[rng.choice(X.shape[0], 500)])
    assert online.n_steps_ == 200
    assert -online.score(X) <= 1.005 * full.inertia_


# --------------------------------------------------------------------------- memory maps


@pytest.mark.parametrize("estimator", ["gmm-full", "gmm-diag", "kmeans"])
def test_read_only_memmap_is_read_in_place(estimator, tmp_path):
    rng = np.random.default_rng(14)
    X = mixture_data(rng, n=100_000, d=32)  # X is 32 vectors of n: a copy stands out
    path = tmp_path / "X.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    assert not mapped.flags.writeable

    def make():
        if estimator == "kmeans":
            return KMeans(3, random_state=0)  # k-means++ seeding included
        # an explicit start: the initialisation's own (n, K) arrays are not the point here
        return GaussianMixture(3, covariance_type=estimator[4:], max_iter=20, tol=0.0,
                               weights_init=np.full(3, 1 / 3), means_init=X[:3].copy(),
                               precisions_init=start[estimator[4:]])

    start = {"full": np.tile(np.eye(X.shape[1]), (3, 1, 1)), "diag": np.ones((3, X.shape[1]))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol=0: no convergence, on purpose
        want = make().fit(X)
        make().fit(mapped[:1000])  # compile outside the traced fit
        tracemalloc.start()
        got = make().fit(mapped)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < X.nbytes / 2, f"{peak / 2**20:.1f} MiB traced: X ({X.nbytes / 2**20:.1f} MiB) was copied"
    attr = "cluster_centers_" if estimator == "kmeans" else "means_"
    # read-only arrays run Numba's read-only specialisation of the kernels: equal to round-off
    np.testing.assert_allclose(getattr(got, attr), getattr(want, attr), rtol=1e-10, atol=1e-12)


def test_inference_on_dask_arrays_is_lazy_and_equal(rng):
    X = mixture_data(rng, n=3000)
    dX = da.from_array(X, chunks=(700, 2))  # columns split too
    gm = GaussianMixture(3, random_state=0).fit(X)
    lazy = gm.predict_proba(dX)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), gm.predict_proba(X), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gm.score_samples(dX).compute(), gm.score_samples(X), rtol=1e-12)
    np.testing.assert_array_equal(gm.predict(dX).compute(), gm.predict(X))
    for criterion in ("bic", "aic", "icl"):
        assert getattr(gm, criterion)(dX) == pytest.approx(getattr(gm, criterion)(X), rel=1e-12)
    km = KMeans(3, random_state=0).fit(X)
    np.testing.assert_allclose(km.transform(dX).compute(), km.transform(X), rtol=1e-12)
    assert km.score(dX) == pytest.approx(km.score(X), rel=1e-12)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 3\)"):
        gm.predict(dX[:, :2])
    with pytest.raises(ValueError, match="n_clusters must be >= 1"):
        KMeans(0).fit(dX)  # settings are checked before any pass over the chunks
