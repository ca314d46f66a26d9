"""emlab.KMeans against plain Lloyd loops and scikit-learn from the same seeds."""

import numpy as np
import pytest

import reference
from emlab import KMeans, kmeans, kmeans_plusplus
from emlab.datasets import load_iris


def blobs(rng, n=600):
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    labels = rng.integers(4, size=n)
    return centres[labels] + 0.6 * rng.standard_normal((n, 2)), labels


def test_lloyd_matches_plain_loops(rng):
    X, _ = blobs(rng)
    start = X[[0, 1, 2, 3]]
    km = KMeans(4, init=start, max_iter=3, tol=0)
    with pytest.warns(Warning):  # 3 iterations need not converge
        km.fit(X)
    np.testing.assert_allclose(km.cluster_centers_, reference.lloyd(X, start, 3), rtol=1e-12)
    labels, dist = reference.kmeans_assign(X, km.cluster_centers_)
    assert np.array_equal(km.labels_, labels)
    assert np.isclose(km.inertia_, dist.sum(), rtol=1e-12)


def test_converged_fit_is_a_fixed_point(rng):
    X, _ = blobs(rng)
    km = KMeans(4, random_state=0).fit(X)
    assert km.converged_
    means = np.array([X[km.labels_ == k].mean(axis=0) for k in range(4)])
    np.testing.assert_allclose(km.cluster_centers_, means, rtol=1e-12)
    assert np.array_equal(km.predict(X), km.labels_)
    assert np.isclose(km.score(X), -km.inertia_)
    np.testing.assert_allclose(km.transform(X)[np.arange(len(X)), km.labels_] ** 2,
                               reference.kmeans_assign(X, km.cluster_centers_)[1], rtol=1e-10)


def test_same_as_sklearn_from_the_same_start():
    sk = pytest.importorskip("sklearn.cluster")
    X = load_iris(return_X_y=True)[0]
    start = X[[0, 50, 100]]
    ours = KMeans(3, init=start, tol=0).fit(X)
    theirs = sk.KMeans(3, init=start, n_init=1, tol=0, algorithm="lloyd").fit(X)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-12)
    assert np.array_equal(ours.labels_, theirs.labels_)
    assert np.isclose(ours.inertia_, theirs.inertia_, rtol=1e-12)


def test_kmeans_plusplus_seeds_are_distinct_rows_spread_out(rng):
    X, labels = blobs(rng)
    hits = 0
    for seed in range(20):
        centres, idx = kmeans_plusplus(X, 4, np.random.default_rng(seed))
        assert np.array_equal(centres, X[idx])
        hits += len(set(labels[idx])) == 4
    assert hits >= 18  # D^2 weighting lands one seed in each blob almost always


def test_an_empty_cluster_moves_to_the_worst_explained_point():
    X = np.array([[1.0, 1.0], [1.2, 1.0], [1.0, 1.6], [10.0, 10.0]])
    start = np.array([[1.1, 1.1], [10.0, 10.0], [100.0, 100.0]])  # the third attracts nothing
    km = KMeans(3, init=start).fit(X)
    assert np.all(np.bincount(km.labels_, minlength=3) > 0)
    # (1, 1.6) was farthest from its centre, so it becomes a cluster of its own
    centres = sorted(map(tuple, km.cluster_centers_))
    assert centres == [(1.0, 1.6), (1.1, 1.0), (10.0, 10.0)]


def test_too_few_distinct_points_is_named():
    X = np.array([[1.0, 1.0]] * 5 + [[2.0, 2.0]] * 5)
    for init in ["k-means++", "random"]:
        with pytest.raises(ValueError, match="fewer distinct rows than n_clusters=3"):
            KMeans(3, init=init, random_state=0).fit(X)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_clusters": 20}, "n_clusters=20 must be <= n_samples=10"),
    ({"init": "kmeans"}, "init must be one of"),
    ({"init": np.zeros((2, 2))}, r"init must have shape \(8, 2\)"),
    ({"n_init": 0}, "n_init must be >= 1"),
    ({"n_init": "many"}, "n_init must be one of"),
    ({"tol": -1}, "tol"),
])
def test_bad_parameters_are_named(kwargs, message, rng):
    with pytest.raises(ValueError, match=message):
        KMeans(**kwargs).fit(rng.standard_normal((10, 2)))


def test_n_init_keeps_the_lowest_inertia():
    X = load_iris(return_X_y=True)[0]
    shared = np.random.default_rng(4)
    runs = [KMeans(5, init="random", n_init=1, random_state=shared).fit(X) for _ in range(6)]
    best = KMeans(5, init="random", n_init=6, random_state=4).fit(X)
    assert best.inertia_ == min(r.inertia_ for r in runs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("d", [1, 2, 5])
def test_distinct_rows_are_the_sorted_set_of_rows(dtype, d):
    # signed zeros (equal), infinities, subnormals, huge values, many repeats
    values = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 1e-310, -1e-310, 2.5, -2.5,
                       1e300, 3.0])
    with np.errstate(over="ignore"):
        X = np.random.default_rng(d).choice(values, size=(3000, d)).astype(dtype)
    got = kmeans.distinct_rows(X)
    assert got.dtype == X.dtype and got.shape[1] == d
    np.testing.assert_array_equal(got, np.array(reference.distinct_rows(X), dtype=dtype))
    np.testing.assert_array_equal(got, np.unique(X, axis=0))
    rows = {row.tobytes() for row in X}
    assert all(row.tobytes() in rows for row in got)  # X's own rows, not rebuilt values


def test_distinct_rows_of_integers_and_one_row():
    X = np.random.default_rng(0).integers(-3, 4, (500, 3))
    np.testing.assert_array_equal(kmeans.distinct_rows(X), reference.distinct_rows(X))
    np.testing.assert_array_equal(kmeans.distinct_rows(np.array([[2.0, -0.0]])), [[2.0, 0.0]])


def test_random_starts_find_the_distinct_rows_once(monkeypatch):
    """``init='random'`` with n_init starts sorts X's rows once, not once per start; the
    starts are still those of single runs from one generator."""
    X = load_iris(return_X_y=True)[0]
    shared = np.random.default_rng(4)
    runs = [KMeans(5, init="random", n_init=1, random_state=shared).fit(X) for _ in range(6)]
    calls = []
    real = kmeans.distinct_rows
    monkeypatch.setattr(kmeans, "distinct_rows", lambda Y: calls.append(Y.shape) or real(Y))
    best = KMeans(5, init="random", n_init=6, random_state=4).fit(X)
    assert calls == [X.shape]
    assert len({r.inertia_ for r in runs}) > 1  # the starts differ, so the choice matters
    best_run = min(runs, key=lambda r: r.inertia_)
    np.testing.assert_array_equal(best.cluster_centers_, best_run.cluster_centers_)
