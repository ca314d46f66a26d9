"""Code written for scikit-learn's GaussianMixture and KMeans runs unchanged on emlab's.

Each test here failed before the change it guards; the last two run scikit-learn's own
``check_estimator`` on both estimators (a few seconds), with the checks that emlab
deliberately fails listed with their reasons.
"""

import pickle
import warnings

import numpy as np
import pytest

from emlab import BayesianGaussianMixture, ConvergenceWarning, GaussianMixture, KMeans, NotFittedError
from emlab.datasets import load_iris

X_IRIS = load_iris(return_X_y=True)[0]


# --------------------------------------------------------------------------- warm start


def fit_quietly(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


def test_warm_start_fits_continue_the_convergence_test():
    # scikit-learn's user code: one EM step per fit, until converged_.
    gm = GaussianMixture(2, warm_start=True, max_iter=1, random_state=0)
    fits = 0
    while fits < 100:
        fit_quietly(gm, X_IRIS)
        fits += 1
        if gm.converged_:
            break
    assert gm.converged_, "100 warm-started fits of one iteration each never converged"
    assert fits > 1  # a fresh start cannot converge in one iteration
    # it converged exactly when one long run would have
    reference = GaussianMixture(2, random_state=0, max_iter=100).fit(X_IRIS)
    assert fits == reference.n_iter_
    np.testing.assert_allclose(gm.means_, reference.means_, rtol=1e-12)


def test_warm_start_convergence_warning_shows_the_change_across_fits():
    gm = fit_quietly(GaussianMixture(2, warm_start=True, max_iter=1, tol=0, random_state=0), X_IRIS)
    with pytest.warns(ConvergenceWarning, match=r"last change \d"):
        gm.fit(X_IRIS)


def test_warm_start_change_is_measured_from_the_previous_fit():
    gm = fit_quietly(GaussianMixture(3, warm_start=True, max_iter=2, tol=1e-4, random_state=0),
                     X_IRIS)
    prev = gm.lower_bound_
    fit_quietly(gm, X_IRIS)
    first_change = gm.lower_bounds_[0] - prev
    assert first_change >= -1e-10  # the same data: EM went on climbing
    if gm.converged_ and gm.n_iter_ == 1:
        assert abs(first_change) < 1e-4


def test_warm_start_on_new_data_is_not_a_likelihood_decrease():
    # The first step of a warm fit compares objectives of two data sets: only a convergence test.
    gm = fit_quietly(GaussianMixture(2, warm_start=True, max_iter=5, on_decrease="raise",
                                     random_state=0), X_IRIS)
    shifted = X_IRIS * 1.5 + 1.0  # a lower log-likelihood per sample
    fit_quietly(gm, shifted)
    assert gm.lower_bounds_[0] < gm.lower_bounds_[-1]


# --------------------------------------------------------------------------- float32 weights_init


def test_float32_weights_init_that_sums_to_one_in_float32_is_accepted():
    weights = np.full(3, 1 / 3, dtype=np.float32)  # sums to 1.0000000298 in float64
    gm = GaussianMixture(3, weights_init=weights, random_state=0).fit(X_IRIS)
    assert gm.weights_.sum() == pytest.approx(1.0, abs=1e-12)
    # the tolerance is that of the array's own dtype: float64 with the same error is refused
    with pytest.raises(ValueError, match="weights_init must sum to 1"):
        GaussianMixture(3, weights_init=weights.astype(np.float64)).fit(X_IRIS)
    with pytest.raises(ValueError, match="weights_init must sum to 1"):
        GaussianMixture(2, weights_init=np.array([0.5, 0.51], dtype=np.float32)).fit(X_IRIS)


# --------------------------------------------------------------------------- max_iter=0


def test_max_iter_zero_returns_the_start():
    start = dict(means_init=X_IRIS[[0, 60, 120]], weights_init=np.full(3, 1 / 3),
                 precisions_init=np.repeat(np.eye(4)[None], 3, axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # scikit-learn warns of nothing here
        gm = GaussianMixture(3, max_iter=0, **start).fit(X_IRIS)
    np.testing.assert_array_equal(gm.means_, X_IRIS[[0, 60, 120]])
    np.testing.assert_array_equal(gm.weights_, np.full(3, 1 / 3))
    np.testing.assert_allclose(gm.precisions_, start["precisions_init"], rtol=1e-15)
    assert gm.n_iter_ == 0 and gm.converged_ is False
    assert gm.lower_bounds_.size == 0 and gm.lower_bound_ == -np.inf  # scikit-learn's values
    # the start of a default fit is that of one EM run with the same seed
    zero = GaussianMixture(3, max_iter=0, random_state=0).fit(X_IRIS)
    one = GaussianMixture(3, max_iter=1, random_state=0, covariance_type="full")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one.fit(X_IRIS)
    np.testing.assert_array_equal(zero.predict(X_IRIS), zero.fit_predict(X_IRIS))
    assert one.lower_bounds_[0] == pytest.approx(zero.score(X_IRIS), rel=1e-12)
    # a warm start from it runs EM from the start
    zero.set_params(warm_start=True, max_iter=100).fit(X_IRIS)
    assert zero.n_iter_ > 1 and zero.lower_bounds_[0] == pytest.approx(one.lower_bounds_[0], rel=1e-12)


# --------------------------------------------------------------------------- float32


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_float32_input_gives_float32_attributes(covariance_type, tmp_path):
    # float32 X is fitted in float32 arithmetic (as scikit-learn does): the same 20 iterations
    # as the float64 fit of the same numbers, to float32's precision
    X32 = X_IRIS.astype(np.float32)
    kwargs = dict(covariance_type=covariance_type, random_state=0, max_iter=20, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(3, **kwargs).fit(X32)
        ref = GaussianMixture(3, **kwargs).fit(X32.astype(np.float64))
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(gm, name).dtype == np.float32, name
        assert getattr(ref, name).dtype == np.float64, name
        want = getattr(ref, name)
        np.testing.assert_allclose(getattr(gm, name), want, rtol=0, atol=1e-5 * np.abs(want).max())
    np.testing.assert_array_equal(gm.predict(X32), ref.predict(X32))
    gm.save(tmp_path / "model.npz")
    loaded = GaussianMixture.load(tmp_path / "model.npz")
    assert loaded.means_.dtype == np.float32
    np.testing.assert_array_equal(loaded.means_, gm.means_)


# --------------------------------------------------------------------------- object and sparse input


@pytest.mark.filterwarnings("ignore::emlab.DegenerateCovarianceWarning")  # 4 rows, 2 components
@pytest.mark.parametrize("make", [lambda: GaussianMixture(2, random_state=0),
                                  lambda: KMeans(2, random_state=0)], ids=["GaussianMixture", "KMeans"])
def test_numeric_object_arrays_are_converted(make):
    as_object = np.array(X_IRIS.tolist(), dtype=object)
    a, b = make().fit(as_object), make().fit(X_IRIS)
    np.testing.assert_array_equal(a.predict(as_object), b.predict(X_IRIS))
    mixed = np.array([[1, 2], [3, 4.5], [0, np.float32(1)], [np.int8(7), True]], dtype=object)
    np.testing.assert_array_equal(make().fit(mixed).predict(mixed),
                                  make().fit(mixed.astype(np.float64)).predict(mixed))


@pytest.mark.parametrize("make", [GaussianMixture, KMeans])
def test_object_arrays_of_other_things_are_named(make):
    X = np.array(X_IRIS.tolist(), dtype=object)
    X[3, 1] = {"foo": "bar"}
    with pytest.raises(ValueError, match=r"X\[3, 1\] is a dict") as info:
        make(2).fit(X)
    assert isinstance(info.value, TypeError)  # NumPy's kind of error for it, too
    X[3, 1] = "1.5"
    with pytest.raises(ValueError, match=r"X\[3, 1\] is a str"):
        make(2).fit(X)


@pytest.mark.parametrize("make", [GaussianMixture, KMeans])
@pytest.mark.parametrize("kind", ["csr_matrix", "csr_array", "coo_matrix"])
def test_sparse_input_is_refused_with_how_to_convert(make, kind):
    sparse = pytest.importorskip("scipy.sparse")
    X = getattr(sparse, kind)(X_IRIS)
    message = r"sparse input is not supported.*X\.toarray\(\)"
    with pytest.raises(ValueError, match=message):
        make(2).fit(X)
    fitted = make(2, random_state=0).fit(X_IRIS)
    with pytest.raises(ValueError, match=message):
        fitted.predict(X)


# --------------------------------------------------------------------------- smaller API points


def test_not_fitted_error_is_also_sklearns():
    exceptions = pytest.importorskip("sklearn.exceptions")
    for model in (GaussianMixture(), KMeans()):
        with pytest.raises(exceptions.NotFittedError) as info:
            model.predict(X_IRIS)
        assert isinstance(info.value, NotFittedError) and isinstance(info.value, ValueError)
        assert type(pickle.loads(pickle.dumps(info.value))) is NotFittedError


def test_kmeans_fit_transform_is_fit_then_transform():
    km = KMeans(3, random_state=0)
    np.testing.assert_array_equal(km.fit_transform(X_IRIS),
                                  KMeans(3, random_state=0).fit(X_IRIS).transform(X_IRIS))


def test_partial_fit_checks_the_number_of_features():
    gm = GaussianMixture(2, random_state=0).partial_fit(X_IRIS)
    with pytest.raises(ValueError, match="X has 1 features, but GaussianMixture is expecting 4 features as input"):
        gm.partial_fit(X_IRIS[:, :1])


def test_sklearn_error_messages_for_shapes_and_complex_data():
    with pytest.raises(ValueError, match="Reshape your data"):
        GaussianMixture().fit(X_IRIS[:, 0])
    with pytest.raises(ValueError, match=r"0 feature\(s\) \(shape=\(3, 0\)\) while a minimum of 1"):
        KMeans(1).fit(np.empty((3, 0)))
    with pytest.raises(ValueError, match="Complex data not supported"):
        KMeans(1).fit(X_IRIS + 1j)


# --------------------------------------------------------------------------- check_estimator

#: Checks that emlab fails on purpose, per estimator, with the reason.
EXPECTED_FAILED = {
    "GaussianMixture": {},
    "KMeans": {},
    "BayesianGaussianMixture": {
        "check_sample_weight_equivalence_on_dense_data": (
            "the check fits 15 rows of 30 features, whose covariance, the default "
            "covariance_prior, is singular; the Wishart prior's density, part of the ELBO that "
            "emlab checks at every iteration, needs it positive definite, so emlab refuses with "
            "a named error asking for covariance_prior (scikit-learn's BayesianGaussianMixture "
            "takes no sample_weight and skips the check)"
        ),
    },
}


@pytest.mark.parametrize("estimator", [GaussianMixture(), KMeans(), BayesianGaussianMixture()],
                         ids=lambda e: type(e).__name__)
def test_check_estimator(estimator):
    estimator_checks = pytest.importorskip("sklearn.utils.estimator_checks")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = estimator_checks.check_estimator(
            estimator, expected_failed_checks=EXPECTED_FAILED[type(estimator).__name__],
            on_fail=None, on_skip=None)
    failed = {r["check_name"]: repr(r["exception"])[:300] for r in results
              if r["status"] == "failed"}
    assert not failed, failed
    assert ({r["check_name"] for r in results if r["status"] == "xfail"}
            == set(EXPECTED_FAILED[type(estimator).__name__]))
    passed = [r["check_name"] for r in results if r["status"] == "passed"]
    assert len(passed) > 40


def test_wrong_number_of_features_names_the_estimator():
    # scikit-learn's wording (check_n_features_in_after_fitting), and emlab's "fitted with"
    km = KMeans(2, random_state=0).fit(X_IRIS)
    for method in (km.predict, km.transform, km.score):
        with pytest.raises(ValueError, match=r"X has 1 features, but KMeans is expecting 4 "
                                             r"features as input: it was fitted with 4"):
            method(X_IRIS[:, :1])


@pytest.mark.parametrize("cls", [GaussianMixture, BayesianGaussianMixture])
def test_verbose_interval(cls, capsys):
    cls(n_components=2, random_state=0, verbose=2, verbose_interval=3, tol=0.0,
        max_iter=10).fit(X_IRIS)
    lines = [line for line in capsys.readouterr().out.splitlines() if "iteration" in line
             and "objective" in line and not line.startswith("EM")]
    assert [int(line.split()[1]) for line in lines] == [1, 3, 6, 9]
    with pytest.raises(ValueError, match="verbose_interval must be >= 1"):
        cls(n_components=2, verbose_interval=0).fit(X_IRIS)
