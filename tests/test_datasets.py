import numpy as np
import pytest

from emlab.datasets import load_binary_digits, load_digits, load_iris, load_wine, two_samples


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


# ----------------------------------------------------------------------------- Wine and digits


def test_wine_is_the_uci_table():
    ds = load_wine()
    assert ds.data.shape == (178, 13) and ds.data.dtype == np.float64 and ds.data.flags.c_contiguous
    assert ds.target.dtype == np.int64
    assert np.bincount(ds.target).tolist() == [59, 71, 48]
    assert ds.target_names == ["class_0", "class_1", "class_2"]
    assert len(ds.feature_names) == 13 and ds.feature_names[0] == "alcohol"
    assert ds.feature_names[-1] == "proline"
    np.testing.assert_array_equal(
        ds.data[0], [14.23, 1.71, 2.43, 15.6, 127, 2.8, 3.06, 0.28, 2.29, 5.64, 1.04, 3.92, 1065])
    np.testing.assert_array_equal(
        ds.data[-1], [14.13, 4.1, 2.74, 24.5, 96, 2.05, 0.76, 0.56, 1.35, 9.2, 0.61, 1.6, 560])
    assert "10.24432/C5PC7J" in ds.description and "CC BY 4.0" in ds.description
    X, y = load_wine(return_X_y=True)
    assert np.array_equal(X, ds.data) and np.array_equal(y, ds.target)
    X2, y2 = ds  # a Dataset unpacks
    assert np.array_equal(X2, X) and np.array_equal(y2, y)


def test_digits_are_the_uci_test_set():
    ds = load_digits()
    assert ds.data.shape == (1797, 64) and ds.data.dtype == np.float64 and ds.data.flags.c_contiguous
    assert ds.target.dtype == np.int64
    counts = np.bincount(ds.target)
    assert counts.size == 10 and counts.sum() == 1797
    assert counts.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert ds.data.min() == 0 and ds.data.max() == 16
    assert np.array_equal(ds.data, np.round(ds.data))
    assert ds.target_names == [str(k) for k in range(10)]
    assert ds.feature_names[0] == "pixel_0_0" and ds.feature_names[63] == "pixel_7_7"
    first = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0,
             0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0,
             0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
    np.testing.assert_array_equal(ds.data[0], first)
    assert ds.target[0] == 0 and ds.target[1] == 1
    assert "10.24432/C50P49" in ds.description and "CC BY 4.0" in ds.description
    X, y = load_digits(return_X_y=True)
    assert np.array_equal(X, ds.data) and np.array_equal(y, ds.target)


@pytest.mark.parametrize("threshold", [0, 1, 8, 16, 17])
def test_binary_digits_threshold_the_pixels(threshold):
    X, y = load_digits(return_X_y=True)
    ds = load_binary_digits(threshold)
    assert ds.data.shape == (1797, 64) and ds.data.dtype == np.float64
    np.testing.assert_array_equal(ds.data, (X >= threshold).astype(float))
    assert np.array_equal(ds.target, y)
    Xb, yb = load_binary_digits(threshold=threshold, return_X_y=True)
    assert np.array_equal(Xb, ds.data) and np.array_equal(yb, y)
    if threshold == 0:
        assert ds.data.min() == 1
    if threshold == 17:
        assert ds.data.max() == 0


def test_binary_digits_default_threshold_is_8():
    X, _ = load_digits(return_X_y=True)
    np.testing.assert_array_equal(load_binary_digits().data, (X >= 8).astype(float))


@pytest.mark.parametrize("threshold", [-1, 18, 8.5, "8", None, True])
def test_binary_digits_refuse_a_bad_threshold(threshold):
    with pytest.raises(ValueError, match="threshold"):
        load_binary_digits(threshold)


def test_wine_and_digits_equal_scikit_learns():
    datasets = pytest.importorskip("sklearn.datasets")
    for ours, theirs in ((load_wine(), datasets.load_wine()), (load_digits(), datasets.load_digits())):
        np.testing.assert_array_equal(ours.data, theirs.data)
        np.testing.assert_array_equal(ours.target, theirs.target)
        assert ours.feature_names == list(theirs.feature_names)
        assert ours.target_names == [str(t) for t in theirs.target_names]
