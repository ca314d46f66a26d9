"""Inputs whose scale or values break float64 arithmetic: named errors and warnings, never a
TypeError, a LinAlgError or an allocation from deep inside."""

import warnings

import numpy as np
import pytest

from emlab import (
    BayesianGaussianMixture,
    CategoricalHMM,
    GaussianHMM,
    GaussianMixture,
    KMeans,
    MixtureModel,
    PoissonHMM,
    UnderflowWarning,
)
from emlab.datasets import load_iris
from emlab.families import Gaussian, StudentT

X_IRIS = load_iris(return_X_y=True)[0]

ESTIMATORS = {
    "gmm": lambda: GaussianMixture(3, random_state=0),
    "gmm-random": lambda: GaussianMixture(3, init_params="random", random_state=0),
    "kmeans": lambda: KMeans(3, random_state=0),
    "bgmm": lambda: BayesianGaussianMixture(n_components=3, random_state=0),
    "gaussian-hmm": lambda: GaussianHMM(3, random_state=0),
    "mixture-model": lambda: MixtureModel(Gaussian(), 3, random_state=0),
    "student-t": lambda: MixtureModel(StudentT(), 3, random_state=0),
}


@pytest.mark.parametrize("factor", [1e300, 1e160, 1e-300, 1e-160, -1e160, -1e-160])  # < 0: |min x|
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_data_at_extreme_scales_are_refused_naming_the_scale(name, factor):
    with pytest.raises(ValueError, match="The scale of X is the problem"):
        ESTIMATORS[name]().fit(X_IRIS * factor)


def test_online_kmeans_refuses_extreme_scales_too():
    with pytest.raises(ValueError, match="The scale of X is the problem"):
        KMeans(3, random_state=0).partial_fit(X_IRIS * 1e200)


@pytest.mark.parametrize("factor", [1e100, 1e-100])
def test_large_but_safe_scales_are_fitted_as_the_scaled_problem(factor):
    a = GaussianMixture(3, random_state=0, reg_covar=0.0).fit(X_IRIS)
    b = GaussianMixture(3, random_state=0, reg_covar=0.0).fit(X_IRIS * factor)
    np.testing.assert_allclose(b.means_ / factor, a.means_, rtol=1e-8)
    np.testing.assert_allclose(b.covariances_ / factor**2, a.covariances_, rtol=1e-6)


def test_scores_that_underflow_warn_naming_the_rows():
    model = GaussianMixture(3, random_state=0).fit(X_IRIS)
    far = X_IRIS[:4].copy()
    far[1:3] *= 1e200
    with pytest.warns(UnderflowWarning, match=r"2 of 4 row\(s\) .*rows 1, 2"):
        scores = model.score_samples(far)
    assert np.isneginf(scores[1:3]).all() and np.isfinite(scores[[0, 3]]).all()
    with pytest.warns(UnderflowWarning, match="rows 1, 2"):
        model.predict(far)
    with pytest.warns(UnderflowWarning, match="rows 1, 2"):
        model.predict_proba(far)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.score_samples(X_IRIS)  # nothing to say about ordinary rows


def test_categorical_hmm_symbols_are_bounded_by_what_the_data_need():
    S = np.random.default_rng(0).integers(3, size=(200, 1)).astype(float)
    for bad in (S * 1e300, S + 1e8):
        with pytest.raises(ValueError, match="Re-code the symbols") as info:
            CategoricalHMM(2, random_state=0).fit(bad)
        assert len(str(info.value)) < 400  # the offending value printed once, briefly
    # a user who says how many symbols there are gets them (and a named error beyond them)
    model = CategoricalHMM(2, n_features=5000, random_state=0, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(S)
    assert model.emissionprob_.shape == (2, 5000)


def test_counts_beyond_exact_integers_are_refused_naming_the_scale():
    C = np.random.default_rng(0).poisson(3.0, size=(100, 2)).astype(float)
    with pytest.raises(ValueError, match="scale of the counts is the problem"):
        PoissonHMM(2, random_state=0).fit(C * 1e300)
