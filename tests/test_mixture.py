"""emlab.GaussianMixture: EM steps against textbook formulas, invariants, errors, peers."""

import re
import warnings

import numba
import numpy as np
import pytest

import reference
from emlab import (
    ConvergenceWarning,
    DegenerateCovarianceError,
    DegenerateCovarianceWarning,
    EmptyComponentWarning,
    GaussianMixture,
    LikelihoodDecreaseError,
    LikelihoodDecreaseWarning,
    MixtureParams,
    NotFittedError,
)
from emlab import mixture as mixture_module
from emlab.datasets import load_iris, two_samples


def three_blobs(rng, n=300, d=2):
    means = np.array([[0.0] * d, [6.0] + [0.0] * (d - 1), [0.0, 6.0] + [0.0] * (d - 2)])
    labels = rng.integers(3, size=n)
    return means[labels] + rng.standard_normal((n, d)), labels, means


def init_kwargs(weights, means, covariances):
    return dict(weights_init=weights, means_init=means, precisions_init=np.linalg.inv(covariances))


def starting_values(covariance_type, weights, means, full_covariances):
    """precisions_init in the shape of ``covariance_type``, from full covariances."""
    from emlab._covariance import MODELS

    model = MODELS[covariance_type]
    k, d = means.shape
    if covariance_type == "tied":
        cov = full_covariances.mean(axis=0)
    elif covariance_type == "diag":
        cov = np.array([np.diag(c) for c in full_covariances])
    elif covariance_type == "spherical":
        cov = np.array([np.trace(c) / d for c in full_covariances])
    else:
        cov = full_covariances
    full = model.as_full(cov, k, d)
    return dict(weights_init=weights, means_init=means, precisions_init=model.precisions(model.precision_cholesky(cov))), full


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("d, k", [(1, 2), (2, 3), (4, 3)])
def test_em_steps_match_the_textbook_formulas(d, k, covariance_type, rng, random_spd):
    X = rng.standard_normal((120, d)) * 2 + rng.integers(0, 3, size=(120, 1))
    weights = rng.dirichlet(np.ones(k))
    means = X[rng.choice(120, k, replace=False)]
    start, covariances = starting_values(covariance_type, weights, means, random_spd(k, d))
    n_steps = 4
    gm = GaussianMixture(k, covariance_type=covariance_type, max_iter=n_steps, tol=0, **start)
    with pytest.warns(ConvergenceWarning):
        gm.fit(X)
    lower_bounds = []
    w, m, c = weights, means, covariances
    for _ in range(n_steps):
        ll, w, m, c = reference.em_step(X, w, m, c, reg_covar=1e-6, covariance_type=covariance_type)
        lower_bounds.append(ll)
    np.testing.assert_allclose(gm.lower_bounds_, lower_bounds, rtol=1e-12)
    np.testing.assert_allclose(gm.weights_, w, rtol=1e-10)
    np.testing.assert_allclose(gm.means_, m, rtol=1e-10, atol=1e-12)
    full = MixtureParams.from_model(gm).full_covariances()
    np.testing.assert_allclose(full, c, rtol=1e-10, atol=1e-12)
    assert gm.n_iter_ == n_steps and not gm.converged_


def test_fitted_model_invariants(rng):
    X, _, _ = three_blobs(rng)
    gm = GaussianMixture(3, random_state=0, tol=1e-8, max_iter=500).fit(X)
    assert gm.converged_
    assert np.isclose(gm.weights_.sum(), 1.0) and np.all(gm.weights_ > 0)
    assert np.allclose(gm.covariances_, np.swapaxes(gm.covariances_, 1, 2))
    assert np.all(np.linalg.eigvalsh(gm.covariances_) > 0)
    np.testing.assert_allclose(gm.precisions_ @ gm.covariances_, np.broadcast_to(np.eye(2), (3, 2, 2)), atol=1e-10)
    assert np.all(np.triu(gm.precisions_cholesky_) == gm.precisions_cholesky_)
    assert np.all(np.diff(gm.lower_bounds_) >= -1e-12)
    assert gm.lower_bound_ == gm.lower_bounds_[-1] and len(gm.lower_bounds_) == gm.n_iter_
    proba = gm.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-13)
    # the density against scipy.stats
    dens = np.exp(reference.log_gaussian(X, gm.means_, gm.covariances_)) @ gm.weights_
    np.testing.assert_allclose(gm.score_samples(X), np.log(dens), rtol=1e-12)
    assert np.isclose(gm.score(X), np.log(dens).mean(), rtol=1e-12)
    assert np.array_equal(gm.predict(X), proba.argmax(axis=1))


def test_recovers_well_separated_components(rng):
    X, labels, means = three_blobs(rng, n=1500)
    for init in ["kmeans", "k-means++", "random", "random_from_data"]:
        # 'random' starts every component at the overall mean, where the first steps are
        # tiny: the default tol=1e-3 stops it there (as in scikit-learn), so ask for less.
        gm = GaussianMixture(3, init_params=init, n_init=3, random_state=1, tol=1e-6, max_iter=500).fit(X)
        order = [int(np.argmin(((gm.means_ - mu) ** 2).sum(axis=1))) for mu in means]
        assert sorted(order) == [0, 1, 2], init
        np.testing.assert_allclose(gm.means_[order], means, atol=0.15, err_msg=init)
        np.testing.assert_allclose(gm.covariances_[order], np.broadcast_to(np.eye(2), (3, 2, 2)), atol=0.2, err_msg=init)


def test_fit_predict_equals_fit_then_predict_with_restarts(rng):
    X, _, _ = three_blobs(rng)
    a = GaussianMixture(3, n_init=4, random_state=7, init_params="random").fit_predict(X)
    b = GaussianMixture(3, n_init=4, random_state=7, init_params="random").fit(X).predict(X)
    assert np.array_equal(a, b)


def test_restarts_keep_the_best_run():
    X = load_iris(return_X_y=True)[0]
    # Three single runs drawing their starts from one generator draw the same
    # starts as one fit with n_init=3.
    shared = np.random.default_rng(0)
    runs = [GaussianMixture(3, init_params="random", random_state=shared, tol=1e-6, max_iter=500).fit(X)
            for _ in range(3)]
    best = GaussianMixture(3, init_params="random", n_init=3, random_state=0, tol=1e-6, max_iter=500)
    best.fit(X)
    bounds = [r.lower_bound_ for r in runs]
    assert len(set(bounds)) == 3  # three different local optima, so the choice matters
    assert best.lower_bound_ == max(bounds)
    np.testing.assert_array_equal(best.means_, runs[int(np.argmax(bounds))].means_)


def test_random_from_data_restarts_draw_as_single_runs_and_sort_rows_once(monkeypatch):
    """The distinct rows random_from_data draws from are found once per fit (a sort of all
    of X), and n_init starts still draw what single runs from one generator draw."""
    X = load_iris(return_X_y=True)[0]
    shared = np.random.default_rng(3)
    runs = [GaussianMixture(3, init_params="random_from_data", random_state=shared, tol=1e-6,
                            max_iter=500).fit(X) for _ in range(4)]
    calls = []
    real = mixture_module.distinct_rows
    monkeypatch.setattr(mixture_module, "distinct_rows", lambda Y: calls.append(Y.shape) or real(Y))
    best = GaussianMixture(3, init_params="random_from_data", n_init=4, random_state=3,
                           tol=1e-6, max_iter=500).fit(X)
    assert calls == [X.shape]
    bounds = [r.lower_bound_ for r in runs]
    assert len(set(bounds)) > 1  # different local optima, so the choice matters
    assert best.lower_bound_ == max(bounds)
    np.testing.assert_array_equal(best.means_, runs[int(np.argmax(bounds))].means_)


def test_a_collapse_held_up_by_reg_covar_is_named_and_its_fall_allowed():
    """On Iris, one random start drives a component of ~5 flowers towards a 3-d subspace.

    Its covariance reaches the reg_covar floor, where the ridge costs Q more than a step
    gains: the likelihood falls, by 2.8e-6 per sample at iteration 68 (scikit-learn's EM,
    from the same start, falls by the same amount). That fall is within the ridge's Q
    deficit, so it is not a failure of EM; the collapse itself is reported by name.
    """
    X = load_iris(return_X_y=True)[0]
    model = mixture_module._MixtureEM(3, "full", 1e-6, "random", None, None, None)
    shared = np.random.default_rng(3)
    start = [model.init_params(X, shared) for _ in range(5)][-1]  # the 5th random start of seed 3
    gm = GaussianMixture(3, tol=1e-6, max_iter=500, **init_kwargs(start.weights, start.means, start.covariances))
    with pytest.warns(DegenerateCovarianceWarning, match=r"covariance of component 0 \(weight 0.0318, smallest variance 1.2e-06 "
                      r"before the ridge\) is kept positive definite by reg_covar=1e-06, "):
        gm.fit(X)
    falls = -np.diff(gm.lower_bounds_)
    assert falls.max() > 1e-6  # the fall is real and far beyond round-off ...
    with warnings.catch_warnings():
        warnings.simplefilter("error", LikelihoodDecreaseWarning)  # ... and explained by the ridge
        warnings.simplefilter("ignore", DegenerateCovarianceWarning)
        gm.fit(X)
    gm.set_params(reg_covar=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm.fit(X)  # a floor well above the collapse: no warning at all ...
    assert np.diff(gm.lower_bounds_).min() < -1e-6  # ... though the ridge still costs some falls


def test_ridge_deficit_is_the_q_lost_to_reg_covar(rng):
    from emlab import theory

    X, _, _ = three_blobs(rng, n=200, d=3)
    start = theory.random_params(X, 3, 0)
    resp = theory.responsibilities(X, start)
    for reg in [1e-3, 0.5]:
        exact = mixture_module.m_step(X, resp, 0.0, previous=start)
        ridged = mixture_module.m_step(X, resp, reg, previous=start)
        lost = theory.q_function(X, exact.params, start) - theory.q_function(X, ridged.params, start)
        assert exact.ridge_deficit == 0.0
        assert np.isclose(ridged.ridge_deficit, lost, rtol=1e-8), reg


def test_ridge_deficit_by_its_formula_and_infinite_for_a_singular_maximiser():
    import math

    from emlab._covariance import ridge_deficit

    counts, lam, eps = [3.0, 5.0], [[0.5, 2.0], [1e-3, 4.0]], 1e-2
    by_hand = sum(0.5 * c * sum(math.log1p(eps / v) - eps / (v + eps) for v in row)
                  for c, row in zip(counts, lam))
    assert math.isclose(ridge_deficit(counts, lam, eps), by_hand, rel_tol=1e-13)
    assert ridge_deficit(counts, lam, 0.0) == 0.0
    for bad in (0.0, -1e-9, np.nan):  # Q is unbounded above, or the maximiser is undefined
        assert ridge_deficit(counts, [[0.5, 2.0], [bad, 4.0]], eps) == np.inf


def test_same_seed_same_result_whatever_the_thread_count(rng):
    X, _, _ = three_blobs(rng, n=3000)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = GaussianMixture(3, random_state=11).fit(X)
    finally:
        numba.set_num_threads(before)
    b = GaussianMixture(3, random_state=11).fit(X)
    for name in ["weights_", "means_", "covariances_", "lower_bounds_"]:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_a_component_that_loses_its_data_is_frozen_with_weight_zero(rng):
    X, _, means = three_blobs(rng)
    far = np.vstack([means[:2], [[1e4, 1e4]]])
    covariances = np.broadcast_to(np.eye(2), (3, 2, 2)).copy()
    with pytest.warns(EmptyComponentWarning, match=r"component\(s\) \[2\] received no responsibility at iteration 1"):
        gm = GaussianMixture(3, **init_kwargs(np.ones(3) / 3, far, covariances)).fit(X)
    assert gm.weights_[2] == 0.0
    np.testing.assert_array_equal(gm.means_[2], [1e4, 1e4])
    assert np.all(np.isfinite(gm.covariances_)) and np.all(np.isfinite(gm.predict_proba(X)))
    assert np.all(gm.predict(X) != 2)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_steps_with_an_empty_component_match_the_textbook_on_the_live_ones(covariance_type, rng,
                                                                           random_spd):
    """A component far from every row gets no responsibility at step 1 and weight 0 after it:
    steps 2 and 3 then run with a zero weight (log 0 = -inf), a zero N_k and a live subset,
    the paths the usual iteration skips. The live components must follow the textbook steps
    of a two-component mixture, and the empty one keep its mean and covariance."""
    X, _, means = three_blobs(rng, n=240, d=3)
    means = np.vstack([means[:2], [[1e4] * 3]])
    weights = np.array([0.3, 0.3, 0.4])
    start, covariances = starting_values(covariance_type, weights, means, random_spd(3, 3))
    gm = GaussianMixture(3, covariance_type=covariance_type, max_iter=3, tol=0, **start)
    with pytest.warns(EmptyComponentWarning, match=r"component\(s\) \[2\]"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    lower_bounds = []
    w, m, c = weights[:2], means[:2], covariances[:2]
    for _ in range(3):  # the third component's density is 0 at every row (1e4 away): left out
        ll, w, m, c = reference.em_step(X, w, m, c, reg_covar=1e-6, covariance_type=covariance_type)
        lower_bounds.append(ll)
    np.testing.assert_allclose(gm.lower_bounds_, lower_bounds, rtol=1e-12)
    assert gm.weights_[2] == 0.0
    np.testing.assert_allclose(gm.weights_[:2], w, rtol=1e-12)
    np.testing.assert_allclose(gm.means_[:2], m, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(gm.means_[2], means[2])
    full = MixtureParams.from_model(gm).full_covariances()
    np.testing.assert_allclose(full[:2], c, rtol=1e-10, atol=1e-14)
    if covariance_type != "tied":  # the tied covariance is shared: nothing of its own to keep
        np.testing.assert_allclose(full[2], covariances[2], rtol=1e-12, atol=1e-14)


def test_collapse_onto_one_point_is_named_without_regularisation(rng):
    X = np.vstack([rng.standard_normal((50, 2)), np.tile([[8.0, 8.0]], (10, 1))])
    means = np.array([[0.0, 0.0], [8.0, 8.0]])
    start = init_kwargs(np.array([0.8, 0.2]), means, np.array([np.eye(2), np.eye(2)]))
    with pytest.raises(DegenerateCovarianceError, match="component 1 .*reg_covar"):
        GaussianMixture(2, reg_covar=0.0, **start).fit(X)
    with pytest.warns(DegenerateCovarianceWarning, match=r"covariance of component 1 \(weight 0.167, smallest variance 0 "):
        gm = GaussianMixture(2, **start).fit(X)  # the default reg_covar keeps it finite
    assert np.all(np.isfinite(gm.covariances_))
    assert np.allclose(gm.covariances_[1], 1e-6 * np.eye(2))


def test_stacked_precision_factors_are_the_per_matrix_ones(rng, random_spd):
    from emlab._covariance import _cholesky_precision, cholesky_precisions

    covs = random_spd(5, 4)
    stacked = cholesky_precisions(covs, "component {}".format)
    for cov, factor in zip(covs, stacked):
        # the same LAPACK routine per matrix: the same bits as one call each
        assert np.array_equal(factor, _cholesky_precision(cov, "x"))
        assert np.allclose(factor, np.triu(factor))  # upper triangular, U U^T = inv(cov)
        np.testing.assert_allclose(factor @ factor.T @ cov, np.eye(4), atol=1e-10)
    assert stacked.flags.c_contiguous
    bad = covs.copy()
    bad[3] = np.outer([1.0, 2.0, 0.0, 1.0], [1.0, 2.0, 0.0, 1.0])  # rank one
    with pytest.raises(DegenerateCovarianceError, match="covariance of component 3 is not"):
        cholesky_precisions(bad, "component {}".format)
    bad[3, 0, 0] = np.nan
    with pytest.raises(DegenerateCovarianceError, match="covariance of component 3 is not"):
        cholesky_precisions(bad, "component {}".format)


def test_a_decrease_is_reported_with_its_iteration(rng, monkeypatch):
    X, _, _ = three_blobs(rng)
    true_m_step = mixture_module.params_from_statistics
    calls = {"n": 0}

    def sabotaged(*args):
        step = true_m_step(*args)
        calls["n"] += 1
        if calls["n"] == 4:  # the 3rd EM iteration's M-step (the 1st call initialises)
            params = step.params
            step = step._replace(params=MixtureParams(params.weights, params.means + 3.0, params.covariances))
        return step

    monkeypatch.setattr(mixture_module, "params_from_statistics", sabotaged)
    with pytest.raises(LikelihoodDecreaseError, match="iteration 4"):
        GaussianMixture(3, random_state=0, on_decrease="raise", tol=0, max_iter=10).fit(X)
    calls["n"] = 0
    with pytest.warns(LikelihoodDecreaseWarning, match="decreased at iteration 4"):
        with pytest.warns(ConvergenceWarning):
            GaussianMixture(3, random_state=0, tol=0, max_iter=10).fit(X)


@pytest.mark.parametrize(
    "kwargs, X, message",
    [
        ({}, np.array([[1.0, np.nan], [2.0, 3.0], [0.0, 1.0]]), r"1 NaN .* row\(s\) 0"),
        ({}, np.array([1.0, 2.0, 3.0]), "2-d"),
        ({}, np.array([[1.0, 2.0]]), "at least 2"),
        ({"n_components": 4}, np.eye(3), "n_components=4 must be <= n_samples=3"),
        ({"n_components": 0}, np.eye(3), "n_components must be >= 1"),
        ({"init_params": "kmeans++"}, np.eye(3), "init_params must be one of"),
        ({"reg_covar": -1.0}, np.eye(3), "reg_covar"),
        ({"tol": np.nan}, np.eye(3), "tol"),
        ({"max_iter": -1}, np.eye(3), "max_iter must be >= 0"),
        ({"covariance_type": "diagonal"}, np.eye(3), "covariance_type must be one of"),
        ({"on_decrease": "shout"}, np.eye(3), "on_decrease"),
        ({"n_components": 2, "weights_init": [0.5, 0.6]}, np.eye(3), "weights_init must sum to 1"),
        ({"n_components": 2, "means_init": np.zeros((2, 2))}, np.eye(3), r"means_init must have shape \(2, 3\)"),
        ({"n_components": 1, "precisions_init": -np.eye(3)[None]}, np.eye(3), "not positive definite"),
        ({}, np.array([["a", "b"], ["c", "d"]]), "numeric"),
    ],
)
def test_bad_input_is_named_before_any_work(kwargs, X, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**kwargs).fit(X)


def test_using_the_model_before_or_beside_its_fit(rng):
    with pytest.raises(NotFittedError, match="not fitted"):
        GaussianMixture().predict(np.eye(2))
    gm = GaussianMixture(2, random_state=0).fit(rng.standard_normal((20, 3)))
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3 features as input"):
        gm.score_samples(np.zeros((4, 2)))


def test_params_round_trip():
    gm = GaussianMixture(3, tol=1e-4)
    assert gm.get_params()["tol"] == 1e-4 and gm.get_params()["n_components"] == 3
    gm.set_params(n_components=2)
    assert gm.n_components == 2
    with pytest.raises(ValueError, match="invalid parameter"):
        gm.set_params(n_clusters=2)
    assert repr(gm) == "GaussianMixture(n_components=2, tol=0.0001)"


# ------------------------------------------------------------------ scikit-learn (dev only)


def sklearn_trajectory_matches(X, k, seed, covariance_type="full"):
    sk = pytest.importorskip("sklearn.mixture")
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    weights = rng.dirichlet(np.full(k, 5.0))
    means = X[rng.choice(len(X), k, replace=False)]
    full = np.array([np.cov(X, rowvar=False) + 0.1 * np.eye(d)] * k)
    start, _ = starting_values(covariance_type, weights, means, full)
    kwargs = dict(covariance_type=covariance_type, tol=0, max_iter=80, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = GaussianMixture(k, **kwargs).fit(X)
        theirs = sk.GaussianMixture(k, **kwargs).fit(X)
    theirs_lb = np.asarray(theirs.lower_bounds_)
    assert len(ours.lower_bounds_) == len(theirs_lb) == 80
    rel = np.abs(ours.lower_bounds_ - theirs_lb) / np.abs(theirs_lb)
    assert rel.max() < 1e-8, rel.max()
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.precisions_cholesky_, theirs.precisions_cholesky_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-6)
    return rel.max()


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trajectory_matches_sklearn_on_iris(seed, covariance_type):
    sklearn_trajectory_matches(load_iris(return_X_y=True)[0], 3, seed, covariance_type)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_trajectory_matches_sklearn_on_five_dimensions(covariance_type):
    rng = np.random.default_rng(5)
    centres = rng.normal(scale=3.0, size=(3, 5))
    labels = rng.choice(3, size=2000, p=[0.5, 0.3, 0.2])
    mixing = rng.standard_normal((3, 5, 5)) * 0.5 + np.eye(5)
    X = centres[labels] + np.einsum("nij,nj->ni", mixing[labels], rng.standard_normal((2000, 5)))
    sklearn_trajectory_matches(X, 3, 0, covariance_type)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_fused_pass_equals_responsibilities_then_statistics(covariance_type, rng):
    from emlab import theory

    X = rng.standard_normal((1000, 3)) * [1.0, 5.0, 0.2] + 100.0
    params = theory.random_params(X, 4, 0)
    full = params.full_covariances()
    start, _ = starting_values(covariance_type, params.weights, params.means, full)
    p = GaussianMixture(4, covariance_type=covariance_type, max_iter=1, **start)._make_model(X).init_params(X, rng)
    loglik, nk, means, second = mixture_module.fused_statistics(X, p)
    log_norm, resp = mixture_module.log_prob_resp(X, p)
    ref_nk, ref_means, ref_second = mixture_module.sufficient_statistics(X, resp, p.means, covariance_type)
    assert np.isclose(loglik, log_norm.sum(), rtol=1e-13)
    np.testing.assert_allclose(nk, ref_nk, rtol=1e-11)
    np.testing.assert_allclose(means, ref_means, rtol=1e-12)
    np.testing.assert_allclose(second, ref_second, rtol=1e-9, atol=1e-9 * np.abs(ref_second).max())


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_every_covariance_type_fits_and_scores(covariance_type, rng):
    X, _, means = three_blobs(rng, n=900, d=3)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0, tol=1e-8, max_iter=500).fit(X)
    assert gm.converged_ and np.all(np.diff(gm.lower_bounds_) >= -1e-12)
    shapes = {"full": (3, 3, 3), "tied": (3, 3), "diag": (3, 3), "spherical": (3,)}
    assert gm.covariances_.shape == gm.precisions_.shape == gm.precisions_cholesky_.shape == shapes[covariance_type]
    full = MixtureParams.from_model(gm).full_covariances()
    dens = np.exp(reference.log_gaussian(X, gm.means_, full)) @ gm.weights_
    np.testing.assert_allclose(gm.score_samples(X), np.log(dens), rtol=1e-12)
    order = [int(np.argmin(((gm.means_ - mu) ** 2).sum(axis=1))) for mu in means]
    np.testing.assert_allclose(gm.means_[order], means, atol=0.2)


def test_em_beats_kmeans_on_the_unbalanced_sample():
    _, s2 = two_samples(n=500, random_state=0)
    from emlab import KMeans

    km = KMeans(2, n_init=10, random_state=0).fit(s2.data)
    gm = GaussianMixture(2, n_init=5, random_state=0).fit(s2.data)
    km_errors = reference.best_permutation_errors(s2.target, km.labels_, 2)
    gm_errors = reference.best_permutation_errors(s2.target, gm.predict(s2.data), 2)
    assert gm_errors < km_errors / 3, (gm_errors, km_errors)
