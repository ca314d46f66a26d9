"""BinaryHiddenMLPClassifier: kernels against brute-force enumeration, EM's invariants, the API."""

import warnings

import numpy as np
import pytest

from emlab import _config
from emlab._kernels.hidden_mlp import (
    config_log_softmax,
    exact_e_step,
    exact_predict_proba,
    hidden_newton,
    monte_carlo_e_step,
    monte_carlo_predict_proba,
    output_newton,
    solve_ridged,
)
from emlab.datasets import load_wine
from emlab.exceptions import ConvergenceWarning, LikelihoodDecreaseWarning, NotFittedError
from emlab.hidden_mlp import (
    BinaryHiddenMLPClassifier,
    HiddenMLPModel,
    config_bits,
    draw_configurations,
    newton_hidden,
    newton_output,
)
from tests.reference import hidden_mlp_enumerate, hidden_mlp_q_hidden, hidden_mlp_q_output


def random_problem(rng, n=9, d=3, H=3, C=3, scale=1.5):
    X = rng.standard_normal((n, d))
    A = scale * rng.standard_normal((H, d + 1))
    B = scale * rng.standard_normal((C, H + 1))
    y = rng.integers(C, size=n).astype(np.int64)
    w = rng.uniform(0.2, 2.0, size=n)
    return X, A, B, y, w


def kernel_e_step(X, A, B, y, w, n_blocks=None):
    n, H, C = X.shape[0], A.shape[0], B.shape[0]
    log_out = np.empty((2**H, C))
    config_log_softmax(B, log_out)
    loglik, marginals, counts = np.empty(n), np.empty((n, H)), np.empty((2**H, C))
    nb = _config.n_blocks(n, log_out.size) if n_blocks is None else n_blocks
    exact_e_step(X, A, y, w, log_out, nb, loglik, marginals, counts)
    return log_out, loglik, marginals, counts


def sample_network(rng, n, A, B):
    """Data drawn from the model: x ~ N(0, I), h | x from the sigmoid layer, y | h from the softmax."""
    d = A.shape[1] - 1
    X = rng.standard_normal((n, d))
    p_on = 1.0 / (1.0 + np.exp(-(X @ A[:, :d].T + A[:, d])))
    h = (rng.random(p_on.shape) < p_on).astype(float)
    z = h @ B[:, :-1].T + B[:, -1]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(B.shape[0], p=row) for row in p])
    return X, y


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def assert_monotone(lower_bounds):
    lb = np.asarray(lower_bounds)
    assert np.all(np.isfinite(lb))
    fall = -np.diff(lb)
    allowed = 1e-10 * np.maximum(1.0, np.abs(lb[1:]))
    assert np.all(fall <= allowed), (fall.max(), np.argmax(fall))


# ----------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("H", [1, 3, 5])
def test_exact_e_step_matches_enumeration(rng, H):
    X, A, B, y, w = random_problem(rng, n=11, H=H)
    w[3] = 0.0  # a zero weight: no counts, but its log-likelihood and posterior all the same
    ref = hidden_mlp_enumerate(X, A, B, y, w)
    for nb in (1, 2, _config.n_blocks(X.shape[0], 2**H * 3)):
        log_out, loglik, marginals, counts = kernel_e_step(X, A, B, y, w, nb)
        np.testing.assert_allclose(loglik, ref["loglik"], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(marginals, ref["marginals"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(counts, ref["counts"], rtol=1e-10, atol=1e-12)
    assert np.all((marginals >= 0) & (marginals <= 1))
    np.testing.assert_allclose(counts.sum(), w.sum(), rtol=1e-12)
    # the output table: log p(y = c | h = m), rows normalised
    np.testing.assert_allclose(np.exp(log_out).sum(axis=1), 1.0, rtol=1e-13)


def test_exact_e_step_on_extreme_logits(rng):
    # saturated units (|u| ~ 800) must give finite log-likelihoods, no NaN
    X, A, B, y, w = random_problem(rng, n=6, H=3, scale=300.0)
    ref = hidden_mlp_enumerate(X, A, B, y, w)
    _, loglik, marginals, counts = kernel_e_step(X, A, B, y, w)
    assert np.all(np.isfinite(loglik)) and np.all(np.isfinite(marginals))
    assert np.all(np.isfinite(counts)) and np.all(loglik <= 1e-12)
    np.testing.assert_allclose(loglik, ref["loglik"], rtol=1e-9)
    np.testing.assert_allclose(marginals, ref["marginals"], atol=1e-12)


def test_one_sample(rng):
    X, A, B, y, w = random_problem(rng, n=1, H=3)
    ref = hidden_mlp_enumerate(X, A, B, y, w)
    _, loglik, marginals, counts = kernel_e_step(X, A, B, y, w)
    np.testing.assert_allclose(loglik, ref["loglik"], rtol=1e-12)
    np.testing.assert_allclose(marginals, ref["marginals"], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("H", [1, 3, 5])
def test_predict_proba_matches_enumeration(rng, H):
    X, A, B, y, w = random_problem(rng, n=10, H=H)
    ref = hidden_mlp_enumerate(X, A, B, y, w)
    log_out = np.empty((2**H, 3))
    config_log_softmax(B, log_out)
    proba = np.empty((10, 3))
    exact_predict_proba(X, A, log_out, proba)
    np.testing.assert_allclose(proba, ref["proba"], rtol=1e-11, atol=1e-14)
    # log p(y_i | x_i) of the E-step is the log of the predicted probability of y_i
    np.testing.assert_allclose(np.log(proba[np.arange(10), y]), ref["loglik"], rtol=1e-10)
    # and through the estimator, from its fitted attributes
    net = BinaryHiddenMLPClassifier(H)
    net.hidden_coef_, net.hidden_intercept_ = A[:, :-1], A[:, -1]
    net.output_coef_, net.output_intercept_ = B[:, :-1], B[:, -1]
    net.n_features_in_, net.classes_ = 3, np.array([0, 1, 2])
    np.testing.assert_allclose(net.predict_proba(X), ref["proba"], rtol=1e-11, atol=1e-14)
    np.testing.assert_array_equal(net.predict(X), np.argmax(ref["proba"], axis=1))
    np.testing.assert_allclose(net.hidden_proba(X), 1 / (1 + np.exp(-(X @ A[:, :-1].T + A[:, -1]))),
                               rtol=1e-13)


def hidden_eval(X, A, T, w):
    H, p = A.shape
    value, grad, hess = np.empty(H), np.empty((H, p)), np.empty((H, p, p))
    hidden_newton(X, A, T, w, 2, value, grad, hess)
    return value, grad, hess


def output_eval(bits, counts, B):
    C, q = B.shape
    value, grad, hess = np.empty(1), np.empty((C, q)), np.empty((C, q, C, q))
    output_newton(bits, counts, B, 2, value, grad, hess)
    return value[0], grad, hess


def test_hidden_newton_derivatives_match_finite_differences(rng):
    X, A, B, y, w = random_problem(rng, n=13, d=3, H=3, scale=0.8)
    w[0] = 0.0
    T = rng.uniform(size=(13, 3))
    value, grad, hess = hidden_eval(X, A, T, w)
    np.testing.assert_allclose(value, hidden_mlp_q_hidden(X, A, T, w), rtol=1e-12)
    eps = 1e-5
    for k in range(3):
        for j in range(4):
            E = np.zeros_like(A)
            E[k, j] = eps
            vp, gp, _ = hidden_eval(X, A + E, T, w)
            vm, gm, _ = hidden_eval(X, A - E, T, w)
            assert abs((vp[k] - vm[k]) / (2 * eps) - grad[k, j]) < 1e-7 * max(1, abs(grad[k, j]))
            np.testing.assert_allclose((gp[k] - gm[k]) / (2 * eps), hess[k, :, j], rtol=1e-6,
                                       atol=1e-7)
            others = [u for u in range(3) if u != k]  # units do not interact
            np.testing.assert_allclose(vp[others], value[others], rtol=0, atol=0)
    assert np.all(np.linalg.eigvalsh(hess) <= 1e-12)  # concave
    np.testing.assert_array_equal(hess, np.swapaxes(hess, 1, 2))


@pytest.mark.parametrize("H", [1, 3])
def test_output_newton_derivatives_match_finite_differences(rng, H):
    C = 3
    bits = config_bits(H)
    counts = rng.uniform(size=(2**H, C))
    counts[0] = 0.0  # a configuration no one has: it must not count
    B = rng.standard_normal((C, H + 1))
    value, grad, hess = output_eval(bits, counts, B)
    np.testing.assert_allclose(value, hidden_mlp_q_output(bits, counts, B), rtol=1e-12)
    eps = 1e-5
    for c in range(C):
        for j in range(H + 1):
            E = np.zeros_like(B)
            E[c, j] = eps
            vp, gp, _ = output_eval(bits, counts, B + E)
            vm, gm, _ = output_eval(bits, counts, B - E)
            assert abs((vp - vm) / (2 * eps) - grad[c, j]) < 1e-7 * max(1, abs(grad[c, j]))
            np.testing.assert_allclose((gp - gm) / (2 * eps), hess[:, :, c, j], rtol=1e-6,
                                       atol=1e-7)
    flat = hess.reshape(C * (H + 1), C * (H + 1))
    np.testing.assert_allclose(flat, flat.T, rtol=0, atol=1e-12)
    assert np.linalg.eigvalsh(flat).max() <= 1e-10  # concave (flat along the softmax's shift)


def test_output_newton_over_configurations_is_the_regression_on_pseudo_rows(rng):
    # the count table is the regression with one row per (sample, configuration)
    X, A, B, y, w = random_problem(rng, n=7, H=3)
    ref = hidden_mlp_enumerate(X, A, B, y, w)
    bits = config_bits(3)
    rows = np.repeat(bits, 7, axis=0)  # configuration-major: row m * 7 + i
    pseudo = np.zeros((8 * 7, 3))
    pseudo[np.arange(56), np.tile(y, 8)] = (w[:, None] * ref["posterior"]).T.ravel()
    a = output_eval(bits, ref["counts"], B)
    b = output_eval(np.ascontiguousarray(rows), pseudo, B)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a[2], b[2], rtol=1e-10, atol=1e-12)


def test_newton_m_steps_never_lower_q(rng):
    X, A, B, y, w = random_problem(rng, n=40, H=3, scale=3.0)
    T = rng.uniform(size=(40, 3))
    before = hidden_mlp_q_hidden(X, A, T, w) - 0.5 * 1e-3 * np.sum(A[:, :-1] ** 2, axis=1)
    A2, value = newton_hidden(X, T, w, A, 1e-3)
    after = hidden_mlp_q_hidden(X, A2, T, w) - 0.5 * 1e-3 * np.sum(A2[:, :-1] ** 2, axis=1)
    assert np.all(after >= before) and after.sum() > before.sum()
    np.testing.assert_allclose(value, after.sum(), rtol=1e-12)
    counts = rng.uniform(size=(8, 3))
    bits = config_bits(3)
    q0 = hidden_mlp_q_output(bits, counts, B) - 0.5e-3 * np.sum(B[:, :-1] ** 2)
    B2, value = newton_output(bits, counts, B, 1e-3)
    q1 = hidden_mlp_q_output(bits, counts, B2) - 0.5e-3 * np.sum(B2[:, :-1] ** 2)
    assert q1 > q0
    np.testing.assert_allclose(value, q1, rtol=1e-12)


def test_solve_ridged_solves_spd_and_flat_systems(rng):
    a = rng.standard_normal((3, 6, 6))
    M = a @ np.swapaxes(a, 1, 2) + 0.1 * np.eye(6)
    b = rng.standard_normal((3, 6))
    out = np.empty((3, 6))
    solve_ridged(M, b, out)
    np.testing.assert_allclose(out, np.linalg.solve(M, b[..., None])[..., 0], rtol=1e-6, atol=1e-8)
    # rank-deficient (a softmax Hessian's flat direction) with b orthogonal to the null space
    v = rng.standard_normal((1, 5, 3))
    M = v @ np.swapaxes(v, 1, 2)  # rank 3
    b = M[0] @ rng.standard_normal(5)
    out = np.empty((1, 5))
    solve_ridged(M, b[None], out)
    np.testing.assert_allclose(M[0] @ out[0], b, rtol=1e-6, atol=1e-8)
    # an indefinite matrix: the ridge grows until it factorises; still an ascent direction
    M = np.diag([1.0, -1e-3, 2.0])[None]
    out = np.empty((1, 3))
    solve_ridged(M, np.ones((1, 3)), out)
    assert np.all(np.isfinite(out)) and out[0].sum() > 0


def test_monte_carlo_e_step_approximates_the_exact_posterior(rng):
    X, A, B, y, w = random_problem(rng, n=8, H=4, scale=1.0)
    ref = hidden_mlp_enumerate(X, A, B, y, w)
    S = 40000
    bits = draw_configurations(X, A, S, np.random.default_rng(5))
    loglik, marginals, weights = np.empty(8), np.empty((8, 4)), np.empty((8, S))
    monte_carlo_e_step(bits, B, y, loglik, marginals, weights)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(marginals, ref["marginals"], atol=0.02)
    np.testing.assert_allclose(loglik, ref["loglik"], atol=0.02)
    proba = np.empty((8, 3))
    monte_carlo_predict_proba(bits, B, proba)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(proba, ref["proba"], atol=0.02)
    # and the model's E-step: the same marginals, the objective close to the exact one
    exact = HiddenMLPModel(y, w, 3, 4, 1e-4, "exact")
    mc = HiddenMLPModel(y, w, 3, 4, 1e-4, "monte_carlo", n_draws=20000, seed=1)
    (o1, (m1, _, c1)), (o2, (m2, _, c2)) = exact.e_step(X, (A, B)), mc.e_step(X, (A, B))
    np.testing.assert_allclose(m2, m1, atol=0.03)
    assert abs(o1 - o2) < 0.03
    np.testing.assert_allclose(c2.sum(), w.sum(), rtol=1e-12)


# ----------------------------------------------------------------------------- EM


def test_objective_never_decreases_on_data_from_the_model(rng):
    A = np.array([[2.0, -1.0, 0.5, 0.0], [-1.5, 0.0, 2.0, 0.5], [0.0, 2.5, -2.0, -0.5]])
    B = np.array([[3.0, -2.0, 0.0, -0.5], [-2.0, 3.0, -1.0, 0.0], [0.0, 0.0, 3.0, -1.0]])
    X, y = sample_network(rng, 400, A, B)
    for seed in range(3):
        net = BinaryHiddenMLPClassifier(3, tol=1e-9, max_iter=300, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=Warning)  # not converging is fine here
            warnings.simplefilter("error", category=LikelihoodDecreaseWarning)
            net.fit(X, y)
        assert_monotone(net.lower_bounds_)
        assert net.lower_bounds_[-1] > net.lower_bounds_[0]
    # the true network's log-likelihood is reachable: EM gets at least close to it
    truth = BinaryHiddenMLPClassifier(3)
    truth.hidden_coef_, truth.hidden_intercept_ = A[:, :-1], A[:, -1]
    truth.output_coef_, truth.output_intercept_ = B[:, :-1], B[:, -1]
    truth.n_features_in_, truth.classes_ = 3, np.arange(3)
    true_ll = np.mean(np.log(truth.predict_proba(X)[np.arange(400), y]))
    fitted_ll = np.mean(np.log(net.predict_proba(X)[np.arange(400), y]))
    assert fitted_ll > true_ll - 0.05


@pytest.mark.parametrize("H", [2, 4, 8])
def test_objective_never_decreases_on_wine(wine, H):
    X, y = wine
    net = BinaryHiddenMLPClassifier(H, random_state=0, max_iter=100, tol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        net.fit(X, y)
    assert_monotone(net.lower_bounds_)
    assert net.score(X, y) > 0.95
    assert net.n_iter_ == len(net.lower_bounds_)
    assert net.e_step_ == "exact"


def test_fitted_attributes(wine):
    X, y = wine
    labels = np.array(["barolo", "grignolino", "barbera"])[y]
    net = BinaryHiddenMLPClassifier(3, random_state=0, max_iter=30, tol=1e-4).fit(X, labels)
    assert list(net.classes_) == sorted(set(labels))
    assert net.n_features_in_ == 13
    assert net.hidden_coef_.shape == (3, 13) and net.hidden_intercept_.shape == (3,)
    assert net.output_coef_.shape == (3, 3) and net.output_intercept_.shape == (3,)
    assert isinstance(net.converged_, bool) and 1 <= net.n_iter_ <= 30
    assert net.lower_bound_ == net.lower_bounds_[-1]
    proba = net.predict_proba(X)
    assert proba.shape == (178, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert set(net.predict(X)) <= set(labels)
    assert net.score(X, labels) == np.mean(net.predict(X) == labels)
    hp = net.hidden_proba(X)
    assert hp.shape == (178, 3) and np.all((hp >= 0) & (hp <= 1))
    # the objective is the penalised mean log-likelihood of the returned parameters' E-step
    ll = np.log(proba[np.arange(178), np.searchsorted(net.classes_, labels)])
    penalty = 0.5 * net.alpha * (np.sum(net.hidden_coef_ ** 2) + np.sum(net.output_coef_ ** 2))
    assert ll.mean() - penalty / 178 >= net.lower_bound_ - 1e-9


def test_same_fit_for_the_same_seed(wine):
    X, y = wine
    a = BinaryHiddenMLPClassifier(3, random_state=7, max_iter=20, tol=1e-4).fit(X, y)
    b = BinaryHiddenMLPClassifier(3, random_state=7, max_iter=20, tol=1e-4).fit(X, y)
    np.testing.assert_array_equal(a.hidden_coef_, b.hidden_coef_)
    np.testing.assert_array_equal(a.lower_bounds_, b.lower_bounds_)


def test_restarts_keep_the_best_run(wine):
    X, y = wine
    kw = dict(random_state=4, max_iter=40, tol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        one = BinaryHiddenMLPClassifier(3, **kw).fit(X, y)
        three = BinaryHiddenMLPClassifier(3, n_init=3, **kw).fit(X, y)
    # the first of the three starts is the single run's start
    assert three.lower_bound_ >= one.lower_bound_
    assert_monotone(three.lower_bounds_)


def test_verbose_prints_the_iterations(wine, capsys):
    X, y = wine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        BinaryHiddenMLPClassifier(2, random_state=0, max_iter=3, verbose=2).fit(X, y)
    out = capsys.readouterr().out
    assert "iteration    3" in out and "EM did not converge after 3" in out


def test_sample_weight_two_equals_duplicated_rows(rng):
    A = np.array([[2.0, -1.0, 0.5], [-1.5, 1.0, 0.5]])
    B = np.array([[2.0, -2.0, 0.0], [-2.0, 2.0, 0.0]])
    X, y = sample_network(rng, 60, A, B)
    w = np.ones(60)
    w[:20] = 2.0
    Xd = np.concatenate([X, X[:20]])
    yd = np.concatenate([y, y[:20]])
    kw = dict(random_state=3, max_iter=15, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        weighted = BinaryHiddenMLPClassifier(2, **kw).fit(X, y, sample_weight=w)
        duplicated = BinaryHiddenMLPClassifier(2, **kw).fit(Xd, yd)
    np.testing.assert_allclose(weighted.lower_bounds_, duplicated.lower_bounds_, rtol=1e-8)
    for name in ("hidden_coef_", "hidden_intercept_", "output_coef_", "output_intercept_"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(duplicated, name), rtol=1e-6,
                                   atol=1e-8)


def test_zero_weight_rows_are_ignored(rng):
    A = np.array([[2.0, -1.0, 0.5], [-1.5, 1.0, 0.5]])
    B = np.array([[2.0, -2.0, 0.0], [-2.0, 2.0, 0.0]])
    X, y = sample_network(rng, 50, A, B)
    w = np.ones(50)
    w[40:] = 0.0
    kw = dict(random_state=3, max_iter=10, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        a = BinaryHiddenMLPClassifier(2, **kw).fit(X, y, sample_weight=w)
        b = BinaryHiddenMLPClassifier(2, **kw).fit(X[:40], y[:40])
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(a.output_coef_, b.output_coef_, rtol=1e-7, atol=1e-9)


def test_monte_carlo_fit_runs_without_the_guard(wine):
    X, y = wine
    net = BinaryHiddenMLPClassifier(13, random_state=0, max_iter=8, n_samples=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        net.fit(X, y)  # a decrease would not raise: the guard is off for this E-step
    assert net.e_step_ == "monte_carlo"
    assert np.all(np.isfinite(net.lower_bounds_)) and net.lower_bounds_[-1] > net.lower_bounds_[0]
    proba = net.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(proba, net.predict_proba(X))  # seeded by random_state
    assert net.score(X, y) > 0.9


def test_monte_carlo_and_exact_fits_agree_for_small_h(wine):
    X, y = wine
    kw = dict(random_state=0, max_iter=5, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        exact = BinaryHiddenMLPClassifier(2, e_step="exact", **kw).fit(X, y)
        mc = BinaryHiddenMLPClassifier(2, e_step="monte_carlo", n_samples=4000, **kw).fit(X, y)
    np.testing.assert_allclose(mc.lower_bounds_[0], exact.lower_bounds_[0], atol=0.02)
    np.testing.assert_allclose(mc.lower_bounds_, exact.lower_bounds_, atol=0.05)


def test_accuracy_close_to_logistic_regression_on_wine(wine):
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = wine
    order = np.random.default_rng(0).permutation(178)
    train, test = order[:120], order[120:]
    lr = linear_model.LogisticRegression(max_iter=1000).fit(X[train], y[train])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        net = BinaryHiddenMLPClassifier(4, alpha=1.0, random_state=0, n_init=2,
                                        max_iter=100).fit(X[train], y[train])
    assert net.score(X[test], y[test]) >= lr.score(X[test], y[test]) - 0.07


def test_sklearn_clone_and_params():
    base = pytest.importorskip("sklearn.base")
    net = BinaryHiddenMLPClassifier(5, alpha=0.1, random_state=3)
    copy = base.clone(net)
    assert copy.get_params() == net.get_params()
    assert "n_hidden=5" in repr(net)
    assert base.is_classifier(net)


def test_scikit_learns_estimator_checks_pass():
    estimator_checks = pytest.importorskip("sklearn.utils.estimator_checks")
    with warnings.catch_warnings():
        # ConvergenceWarning, its skipped checks (no pandas), and "does not inherit BaseEstimator"
        warnings.simplefilter("ignore")
        results = estimator_checks.check_estimator(
            BinaryHiddenMLPClassifier(2, max_iter=20, random_state=0), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert not failed


def test_column_y_is_flattened_with_a_warning(wine):
    X, y = wine
    kw = dict(random_state=0, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        flat = BinaryHiddenMLPClassifier(2, **kw).fit(X, y)
        with pytest.warns(UserWarning, match="column-vector y"):
            column = BinaryHiddenMLPClassifier(2, **kw).fit(X, y[:, None])
    np.testing.assert_array_equal(flat.output_coef_, column.output_coef_)


# ----------------------------------------------------------------------------- bad input


GOOD_X = np.arange(12.0).reshape(6, 2)
GOOD_Y = np.array([0, 1, 0, 1, 0, 1])


@pytest.mark.parametrize("params, X, y, w, match", [
    (dict(n_hidden=0), GOOD_X, GOOD_Y, None, "n_hidden must be >= 1"),
    (dict(n_hidden=2.5), GOOD_X, GOOD_Y, None, "n_hidden must be an integer"),
    (dict(n_hidden=13, e_step="exact"), GOOD_X, GOOD_Y, None, "n_hidden <= 12"),
    (dict(e_step="gibbs"), GOOD_X, GOOD_Y, None, "e_step must be one of"),
    (dict(n_samples=0), GOOD_X, GOOD_Y, None, "n_samples must be >= 1"),
    (dict(alpha=-1.0), GOOD_X, GOOD_Y, None, "alpha must be a finite number >= 0"),
    (dict(max_iter=0), GOOD_X, GOOD_Y, None, "max_iter must be >= 1"),
    (dict(tol=-1.0), GOOD_X, GOOD_Y, None, "tol must be a finite number"),
    (dict(n_init=0), GOOD_X, GOOD_Y, None, "n_init must be >= 1"),
    (dict(random_state="x"), GOOD_X, GOOD_Y, None, "random_state must be"),
    (dict(), np.where(GOOD_X == 3, np.nan, GOOD_X), GOOD_Y, None, "X contains 1 NaN"),
    (dict(), GOOD_X[:, 0], GOOD_Y, None, "X must be 2-d"),
    (dict(), GOOD_X, GOOD_Y[:5], None, "X has 6 row.* but y has 5"),
    (dict(), GOOD_X, GOOD_Y.reshape(2, 3), None, "y must be 1-d"),
    (dict(), GOOD_X, np.zeros(6), None, "at least 2"),
    (dict(), GOOD_X, np.where(GOOD_Y == 1, np.nan, 0.0), None, "y contains NaN"),
    (dict(), GOOD_X, None, None, "the target y is None"),
    (dict(), GOOD_X, GOOD_Y + 0.5, None, "Unknown label type: continuous"),
    (dict(), GOOD_X, GOOD_Y, -np.ones(6), "sample_weight must be non-negative"),
    (dict(), GOOD_X, GOOD_Y, np.ones(5), "sample_weight must have shape"),
    (dict(), GOOD_X, GOOD_Y, np.zeros(6), "sample_weight is zero everywhere"),
])
def test_bad_input_is_named(params, X, y, w, match):
    with pytest.raises(ValueError, match=match):
        BinaryHiddenMLPClassifier(**params).fit(X, y, sample_weight=w)


def test_prediction_input_is_checked(wine):
    X, y = wine
    with pytest.raises(NotFittedError):
        BinaryHiddenMLPClassifier().predict(X)
    net = BinaryHiddenMLPClassifier(2, random_state=0, max_iter=5, tol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        net.fit(X, y)
    with pytest.raises(ValueError, match="expecting 13 features"):
        net.predict_proba(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        net.predict(np.full((2, 13), np.nan))
    with pytest.raises(ValueError, match="y must have shape"):
        net.score(X, y[:5])
