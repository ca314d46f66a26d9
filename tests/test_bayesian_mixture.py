"""emlab.bayesian_mixture: the exact ELBO, its monotonicity, and scikit-learn as a dev cross-check."""

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp

from emlab._covariance import MODELS
from emlab.bayesian_mixture import (
    BayesianGaussianMixture,
    VariationalParams,
    _VariationalEM,
    kl_normal_wishart,
    kl_weights,
)
from emlab.datasets import load_iris
from emlab.exceptions import NotFittedError

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_", "mean_precision_",
              "degrees_of_freedom_")


def blobs(rng, n=240, d=3, k=4, scale=1.0):
    centres = 3.0 * rng.standard_normal((k, d))
    labels = rng.integers(k, size=n)
    spread = 0.4 + rng.uniform(size=(k, 1, d))
    return scale * (centres[labels] + rng.standard_normal((n, d)) * spread[labels, 0]), labels


def random_resp(rng, n, k):
    resp = rng.uniform(size=(n, k)) ** 3
    return resp / resp.sum(axis=1, keepdims=True)


def emlab_fit(X, resp, n_iter, **kwargs):
    bgm = BayesianGaussianMixture(n_components=resp.shape[1], max_iter=n_iter, tol=0.0,
                                  on_decrease="raise", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # did not converge (tol=0)
        return bgm._fit(X, None, resp)


def sklearn_trajectory(X, resp, checkpoints, **kwargs):
    """scikit-learn's variational iterates from ``resp``, saved after each checkpoint."""
    from sklearn.mixture import BayesianGaussianMixture as SkBGMM

    sk = SkBGMM(n_components=resp.shape[1], **kwargs)
    sk._check_parameters(X)
    sk._initialize(X, resp)
    saved = {}
    for t in range(1, max(checkpoints) + 1):
        _, log_resp = sk._e_step(X)
        sk._m_step(X, log_resp)
        if t in checkpoints:
            sk._set_parameters(sk._get_parameters())
            saved[t] = {name: np.copy(getattr(sk, name)) for name in ATTRIBUTES}
            wc = sk.weight_concentration_
            saved[t]["weight_concentration_"] = (tuple(np.copy(w) for w in wc)
                                                 if isinstance(wc, tuple) else np.copy(wc))
    return sk, saved


def assert_relative(actual, expected, rtol, name):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, name
    err = np.max(np.abs(actual - expected) / np.maximum(np.abs(expected), 1e-300))
    assert err <= rtol, f"{name}: relative error {err:.3g}"


# --------------------------------------------------------------------------- scikit-learn


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_iterates_match_sklearn(rng, covariance_type, prior_type):
    pytest.importorskip("sklearn")
    X, _ = blobs(rng)
    resp = random_resp(rng, X.shape[0], 4)
    kwargs = dict(covariance_type=covariance_type, weight_concentration_prior_type=prior_type)
    sk, saved = sklearn_trajectory(X, resp, (1, 5, 20), **kwargs)
    for n_iter, expected in saved.items():
        bgm = emlab_fit(X, resp, n_iter, **kwargs)
        assert bgm.n_iter_ == n_iter
        for name in ATTRIBUTES:
            assert_relative(getattr(bgm, name), expected[name], 1e-8, f"{name} after {n_iter}")
        wc, wc_sk = bgm.weight_concentration_, expected["weight_concentration_"]
        if prior_type == "dirichlet_process":
            for a, b in zip(wc, wc_sk):
                assert_relative(a, b, 1e-8, "weight_concentration_")
        else:
            assert_relative(wc, wc_sk, 1e-8, "weight_concentration_")
    # the resolved priors are scikit-learn's defaults
    np.testing.assert_allclose(bgm.mean_prior_, sk.mean_prior_, rtol=1e-12)
    np.testing.assert_allclose(bgm.covariance_prior_, sk.covariance_prior_, rtol=1e-12)
    assert bgm.degrees_of_freedom_prior_ == sk.degrees_of_freedom_prior_
    assert bgm.mean_precision_prior_ == sk.mean_precision_prior_
    assert bgm.weight_concentration_prior_ == sk.weight_concentration_prior_
    # so do the rows' expected log-densities
    np.testing.assert_allclose(bgm.score_samples(X), sk.score_samples(X), rtol=1e-8)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_elbo_differs_from_sklearn_bound_by_a_constant(rng, covariance_type, prior_type):
    """sklearn's bound drops constants: at its iterates (q(z) of the previous E-step, q(params)
    updated from it), the exact ELBO of the docstring minus sklearn's bound must not move.

    That checks the closed-form KL terms against scikit-learn's independent simplification.
    """
    pytest.importorskip("sklearn")
    from sklearn.mixture import BayesianGaussianMixture as SkBGMM

    X, _ = blobs(rng, n=150, d=2, k=3)
    k = 3
    sk = SkBGMM(n_components=k, covariance_type=covariance_type,
                weight_concentration_prior_type=prior_type, reg_covar=0.0)
    sk._check_parameters(X)
    sk._initialize(X, random_resp(rng, X.shape[0], k))
    prior = {"weight_concentration": sk.weight_concentration_prior_,
             "mean_precision": sk.mean_precision_prior_, "mean": sk.mean_prior_,
             "dof": sk.degrees_of_freedom_prior_, "covariance": sk.covariance_prior_}
    model = _VariationalEM(k, covariance_type, prior_type, 0.0, prior, "kmeans")
    shifts = []
    for _ in range(8):
        log_prob_norm, log_resp = sk._e_step(X)
        sk._m_step(X, log_resp)
        params = VariationalParams(sk.weight_concentration_, sk.mean_precision_, sk.means_,
                                   sk.degrees_of_freedom_, sk.covariances_, sk.precisions_cholesky_)
        rho = (MODELS[covariance_type].log_gaussian(X, sk.means_, sk.precisions_cholesky_)
               + model.log_constants(params))
        resp = np.exp(log_resp)
        elbo = np.sum(resp * (rho - log_resp)) - model.kl_prior(params)
        shifts.append(elbo - sk._compute_lower_bound(log_resp, log_prob_norm))
        # and the fused E-step's objective is the ELBO at the optimal q(z)
        objective, _ = model.e_step(X, params)
        expected = (np.sum(logsumexp(rho, axis=1)) - model.kl_prior(params)) / X.shape[0]
        assert objective == pytest.approx(expected, rel=1e-12)
    shifts = np.array(shifts)
    assert np.ptp(shifts) <= 1e-9 * np.max(np.abs(shifts)), shifts


def test_predictions_agree_with_sklearn_on_iris():
    pytest.importorskip("sklearn")
    X, y = load_iris(return_X_y=True)
    resp = np.eye(3)[y] * 0.9 + 0.1 / 3  # a start near the species
    kwargs = dict(covariance_type="full", weight_concentration_prior_type="dirichlet_process")
    sk, _ = sklearn_trajectory(X, resp, (100,), **kwargs)
    bgm = emlab_fit(X, resp, 100, **kwargs)
    np.testing.assert_array_equal(bgm.predict(X), sk.predict(X))
    np.testing.assert_allclose(bgm.predict_proba(X), sk.predict_proba(X), rtol=1e-6, atol=1e-10)
    assert bgm.score(X) == pytest.approx(sk.score(X), rel=1e-8)


# --------------------------------------------------------------------------- the ELBO


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_elbo_never_decreases(covariance_type, prior_type):
    """on_decrease='raise' checks every iteration; reg_covar large against tiny variances too."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        scale = (1.0, 1e-2, 10.0, 1.0)[seed]
        X, _ = blobs(rng, n=160, d=3, k=4, scale=scale)
        bgm = BayesianGaussianMixture(
            n_components=6, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
            reg_covar=(1e-6, 1e-3, 1e-6, 0.0)[seed], tol=1e-10, max_iter=60, on_decrease="raise",
            init_params=("kmeans", "random", "k-means++", "random_from_data")[seed],
            weight_concentration_prior=(None, 1e-3, 10.0, None)[seed], random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bgm.fit(X)
        bounds = bgm.lower_bounds_
        assert np.all(np.isfinite(bounds)) and bounds.size == bgm.n_iter_
        if bgm.reg_covar == 0:  # exact coordinate ascent: no slack at all
            assert np.all(np.diff(bounds) >= -1e-10 * np.abs(bounds[1:])), bounds


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_slack_is_the_elbo_shortfall_of_the_regularised_update(rng, covariance_type):
    """ELBO(q(z), q_exact) - ELBO(q(z), q_used) = KL(q_used || q_exact): the slack the guard allows."""
    X, _ = blobs(rng, n=120, d=3, k=3, scale=0.05)
    k, n = 3, X.shape[0]
    prior_type = "dirichlet_process"
    bgm = BayesianGaussianMixture(n_components=k, covariance_type=covariance_type)
    prior = bgm._resolve_prior(X, None)
    model = _VariationalEM(k, covariance_type, prior_type, 1e-2, prior, "kmeans")
    params = model.params_from_resp(X, random_resp(rng, n, k))
    _, (nk, xbar, second, weight) = model.e_step(X, params)
    rho = (MODELS[covariance_type].log_gaussian(X, params.means, params.precisions_cholesky)
           + model.log_constants(params))
    log_resp = rho - logsumexp(rho, axis=1, keepdims=True)

    def elbo(p):
        rho = MODELS[covariance_type].log_gaussian(X, p.means, p.precisions_cholesky) + model.log_constants(p)
        return np.sum(np.exp(log_resp) * (rho - log_resp)) - model.kl_prior(p)

    used = model.m_step(X, (nk, xbar, second, weight), params)
    conc, beta, means, dof, cov = model.update(nk, xbar, second, 0.0, 0.0)
    exact = VariationalParams(conc, beta, means, dof, cov, MODELS[covariance_type].precision_cholesky(cov))
    shortfall = elbo(exact) - elbo(used)
    assert shortfall > 0, shortfall
    assert model.m_step_slack * weight == pytest.approx(shortfall, rel=1e-9)


def test_kl_terms_vanish_at_equality_and_are_positive(rng, random_spd):
    k, d = 3, 4
    beta, dof = rng.uniform(1, 5, k), d + rng.uniform(0, 5, k)
    means, scale = rng.standard_normal((k, d)), random_spd(k, d)
    assert kl_normal_wishart(beta, means, dof, scale, beta, means, dof, scale) == pytest.approx(
        0.0, abs=1e-10)
    assert kl_normal_wishart(beta, means, dof, scale, 1.0, means[0], d + 1.0, scale[0]) > 0
    alpha = rng.uniform(0.5, 3, k)
    assert kl_weights(alpha, alpha, "dirichlet_distribution") == pytest.approx(0.0, abs=1e-12)
    assert kl_weights(alpha, np.full(k, 0.1), "dirichlet_distribution") > 0
    pair = (alpha, alpha[::-1].copy())
    assert kl_weights(pair, pair, "dirichlet_process") == pytest.approx(0.0, abs=1e-12)
    assert kl_weights(pair, (np.ones(k), np.full(k, 0.5)), "dirichlet_process") > 0


# --------------------------------------------------------------------------- API


def test_api(rng):
    X, _ = blobs(rng, n=200, d=2, k=3)
    bgm = BayesianGaussianMixture(n_components=5, random_state=0, max_iter=300)
    labels = bgm.fit_predict(X)
    np.testing.assert_array_equal(labels, bgm.predict(X))
    proba = bgm.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert bgm.weights_.shape == (5,) and bgm.weights_.sum() == pytest.approx(1.0)
    assert bgm.n_features_in_ == 2 and bgm.converged_
    assert bgm.lower_bound_ == bgm.lower_bounds_[-1]
    np.testing.assert_allclose(bgm.precisions_, np.linalg.inv(bgm.covariances_), rtol=1e-8)
    assert np.all(np.linalg.eigvalsh(bgm.covariances_) > 0)
    samples, comps = bgm.sample(50)
    assert samples.shape == (50, 2) and comps.shape == (50,)
    assert bgm.score(X) == pytest.approx(bgm.score_samples(X).mean())
    # same seed, same fit; get_params round-trips
    again = BayesianGaussianMixture(**bgm.get_params()).fit(X)
    np.testing.assert_array_equal(again.means_, bgm.means_)
    # warm start continues from the fitted posterior
    warm = BayesianGaussianMixture(n_components=5, random_state=0, max_iter=300, warm_start=True)
    warm.fit(X)
    first = warm.n_iter_
    warm.fit(X)
    assert warm.n_iter_ < first
    # n_init keeps the best final ELBO
    best = BayesianGaussianMixture(n_components=5, n_init=3, init_params="random", random_state=1,
                                   max_iter=300, tol=1e-6).fit(X)
    assert np.isfinite(best.lower_bound_)


def test_integer_sample_weights_repeat_rows(rng):
    X, _ = blobs(rng, n=60, d=2, k=2)
    w = rng.integers(0, 3, size=60).astype(float)
    Xr = np.repeat(X, w.astype(int), axis=0)
    kwargs = dict(n_components=3, covariance_type="full", max_iter=30, tol=0.0, random_state=0)
    a = BayesianGaussianMixture(**kwargs)
    b = BayesianGaussianMixture(**kwargs)
    resp = random_resp(rng, 60, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a._fit(X, w, resp * w[:, None])
        b._fit(Xr, None, np.repeat(resp, w.astype(int), axis=0))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-9)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-9)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-10)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_components=0), "n_components"),
    (dict(covariance_type="round"), "covariance_type"),
    (dict(weight_concentration_prior_type="dirichlet"), "weight_concentration_prior_type"),
    (dict(weight_concentration_prior=0.0), "weight_concentration_prior"),
    (dict(mean_precision_prior=-1.0), "mean_precision_prior"),
    (dict(degrees_of_freedom_prior=1.0), "degrees_of_freedom_prior"),
    (dict(mean_prior=[0.0]), "mean_prior"),
    (dict(covariance_prior=np.eye(3)), "covariance_prior"),
    (dict(covariance_prior=-np.eye(2)), "covariance_prior"),
    (dict(covariance_type="diag", covariance_prior=[1.0, -1.0]), "covariance_prior"),
    (dict(covariance_type="spherical", covariance_prior=0.0), "covariance_prior"),
    (dict(init_params="median"), "init_params"),
    (dict(reg_covar=-1.0), "reg_covar"),
    (dict(tol=-1.0), "tol"),
    (dict(max_iter=0), "max_iter"),
    (dict(on_decrease="shout"), "on_decrease"),
    (dict(n_components=500), "n_components"),
])
def test_errors_name_the_argument(rng, kwargs, match):
    X = rng.standard_normal((50, 2))
    with pytest.raises(ValueError, match=match):
        BayesianGaussianMixture(**kwargs).fit(X)


def test_unfitted_and_dask_are_refused(rng):
    X = rng.standard_normal((20, 2))
    with pytest.raises(NotFittedError):
        BayesianGaussianMixture().predict(X)
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match="Dask"):
        BayesianGaussianMixture().fit(da.from_array(X, chunks=10))
