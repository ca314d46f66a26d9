import numpy as np

from emlab.datasets import load_iris, two_samples


def test_iris_is_fishers_table():
    ds = load_iris()
    assert ds.data.shape == (150, 4) and ds.data.flags.c_contiguous
    assert np.array_equal(np.bincount(ds.target), [50, 50, 50])
    assert ds.target_names == ["setosa", "versicolor", "virginica"]
    # published column means and the first flower
    np.testing.assert_allclose(ds.data.mean(axis=0), [5.843333, 3.057333, 3.758, 1.199333], atol=1e-6)
    np.testing.assert_array_equal(ds.data[0], [5.1, 3.5, 1.4, 0.2])
    X, y = load_iris(return_X_y=True)
    assert np.array_equal(X, ds.data) and np.array_equal(y, ds.target)


def test_two_samples_follow_their_definition():
    s1, s2 = two_samples(n=20000, random_state=0)
    for s in (s1, s2):
        assert s.data.shape == (20000, 2)
        for k, mean in enumerate([[5, 1], [1, 4]]):
            np.testing.assert_allclose(s.data[s.target == k].mean(axis=0), mean, atol=0.05)
    assert abs((s1.target == 0).mean() - 0.5) < 0.01
    assert abs((s2.target == 0).mean() - 0.95) < 0.005
    np.testing.assert_allclose(np.cov(s1.data[s1.target == 0].T), 0.5 * np.eye(2), atol=0.03)
    np.testing.assert_allclose(np.cov(s2.data[s2.target == 0].T), np.diag([1.5, 0.1]), atol=0.04)
    np.testing.assert_allclose(np.cov(s2.data[s2.target == 1].T), 0.8 * np.eye(2), atol=0.1)


def test_two_samples_are_reproducible():
    a1, a2 = two_samples(random_state=3)
    b1, b2 = two_samples(random_state=3)
    assert np.array_equal(a1.data, b1.data) and np.array_equal(a2.target, b2.target)
    assert len(a1.data) == 500
