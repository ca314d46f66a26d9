"""Mixtures of experts: kernels against finite differences and plain NumPy, EM's invariants."""

import warnings

import numba
import numpy as np
import pytest

import reference
from emlab import _config
from emlab._kernels.experts import (
    log_softmax_rows,
    softmax_class_terms,
    softmax_gradient_terms,
    softmax_hessian_vector,
    softmax_newton_terms,
    softmax_objective,
)
from emlab.exceptions import (
    ConvergenceWarning,
    DegenerateCovarianceWarning,
    LikelihoodDecreaseError,
    LikelihoodDecreaseWarning,
    NotFittedError,
)
from emlab.experts import (
    MixtureOfExpertsClassifier,
    MixtureOfExpertsRegressor,
    SingularHessianError,
    cm_logit,
    newton_logit,
)


def logit_problem(rng, n, d, n_classes, soft=True):
    X = rng.standard_normal((n, d))
    coef = rng.standard_normal((n_classes, d + 1))
    if soft:
        targets = rng.dirichlet(np.ones(n_classes), size=n)
    else:
        targets = np.eye(n_classes)[rng.integers(n_classes, size=n)]
    weights = rng.uniform(0, 2, size=n)
    weights[::7] = 0.0  # zero weights are allowed
    return X, coef, targets, weights


def kernel_terms(X, coef, targets, weights, n_blocks=3):
    grad = np.empty_like(coef)
    hess = np.empty((coef.size, coef.size))
    q = softmax_newton_terms(X, coef, targets, weights, n_blocks, grad, hess)
    return q, grad, hess


def cg_terms(X, coef, targets, weights, vs, n_blocks=3):
    """The CG path's kernels: Q, gradient, Hessian diagonal, probabilities, and -H v for each v."""
    grad = np.empty_like(coef)
    diag = np.empty_like(coef)
    proba = np.empty((coef.shape[0], X.shape[0]))
    q = softmax_gradient_terms(X, coef, targets, weights, n_blocks, grad, diag, proba)
    products = []
    for v in vs:
        out = np.empty_like(coef)
        softmax_hessian_vector(X, proba, weights, v, n_blocks, out)
        products.append(out)
    return q, grad, diag, proba, products


def experts_problem(sep=6.0, seed=5, n=300, n_classes=3):
    """Three regions of the plane, each with its own multinomial logit of 3 classes.

    With sep=6, seed=5, plain IRLS with learning_rate=1 overshoots (see the tests).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2)) * sep
    W = rng.standard_normal((3, n_classes, 2)) * 2
    region = np.argmax(X @ rng.standard_normal((2, 3)), axis=1)
    eta = np.einsum("nd,ncd->nc", X, W[region])
    y = np.argmax(eta + rng.gumbel(size=eta.shape), axis=1)
    return X, y


def random_init(rng, k, n_classes, d, regressor=False):
    gate_i = rng.standard_normal(k)
    init = {"gate_coef": 0.5 * rng.standard_normal((k, d)),
            "gate_intercept": gate_i - gate_i.mean()}
    if regressor:
        init.update(coef=rng.standard_normal((k, d)), intercept=rng.standard_normal(k),
                    sigma2=rng.uniform(0.5, 2.0, size=k))
    else:
        icpt = rng.standard_normal((k, n_classes))
        init.update(coef=rng.standard_normal((k, n_classes, d)),
                    intercept=icpt - icpt.mean(axis=1, keepdims=True))
    return init


def as_arrays(init):
    gate = np.column_stack([init["gate_coef"], init["gate_intercept"]])
    experts = np.concatenate([init["coef"], init["intercept"][..., None]], axis=-1)
    return gate, experts


# ----------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("n, d, n_classes", [(1, 1, 2), (50, 1, 2), (130, 3, 4), (300, 5, 3)])
def test_kernel_gradient_and_hessian_match_finite_differences(rng, n, d, n_classes):
    X, coef, targets, weights = logit_problem(rng, n, d, n_classes)
    if n == 1:
        weights[:] = 1.5
    q, grad, hess = kernel_terms(X, coef, targets, weights)
    assert q == pytest.approx(reference.logit_objective(X, coef, targets, weights), rel=1e-12)
    eps = 1e-5
    theta = coef.ravel()
    unit = np.eye(theta.size)

    def q_at(t):
        return reference.logit_objective(X, t.reshape(coef.shape), targets, weights)

    def grad_at(t):
        return kernel_terms(X, t.reshape(coef.shape), targets, weights)[1].ravel()

    fd_grad = np.array([(q_at(theta + eps * e) - q_at(theta - eps * e)) / (2 * eps) for e in unit])
    np.testing.assert_allclose(grad.ravel(), fd_grad, rtol=1e-6, atol=1e-7 * max(1, abs(q)))
    fd_hess = -np.array([(grad_at(theta + eps * e) - grad_at(theta - eps * e)) / (2 * eps)
                         for e in unit])
    np.testing.assert_allclose(hess, fd_hess, rtol=1e-5, atol=1e-7 * np.abs(hess).max())
    np.testing.assert_array_equal(hess, hess.T)
    # and the row-by-row NumPy reference, to round-off
    ref_grad, ref_hess = reference.logit_gradient_hessian(X, coef, targets, weights)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hess, ref_hess, rtol=1e-10, atol=1e-12)
    # positive semi-definite, with the common shift of the intercepts as a null direction
    e = np.zeros(coef.shape)
    e[:, -1] = 1.0
    assert np.abs(hess @ e.ravel()).max() < 1e-10 * np.abs(hess).max()
    assert np.linalg.eigvalsh(hess).min() > -1e-10 * np.abs(hess).max()


@pytest.mark.parametrize("n, d, n_classes, weight", [
    (1, 1, 2, 1.5), (1, 3, 5, 0.0), (50, 1, 2, None), (130, 3, 4, None), (300, 5, 3, None),
    (517, 8, 10, None), (700, 4, 7, "zero")])
def test_hessian_vector_kernel_matches_the_explicit_hessian(rng, n, d, n_classes, weight):
    X, coef, targets, weights = logit_problem(rng, n, d, n_classes)
    if weight == "zero":
        weights[: n // 2] = 0.0  # whole blocks of zero weight
    elif weight is not None:
        weights[:] = weight
    q, grad, hess = kernel_terms(X, coef, targets, weights)
    vs = [rng.standard_normal(coef.shape) for _ in range(3)] + [np.ones(coef.shape)]
    q2, grad2, diag, proba, products = cg_terms(X, coef, targets, weights, vs)
    assert q2 == q
    np.testing.assert_allclose(grad2, grad, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(grad).max()))
    scale = max(1.0, np.abs(hess).max())
    np.testing.assert_allclose(diag.ravel(), np.diag(hess), rtol=1e-12, atol=1e-13 * scale)
    np.testing.assert_allclose(proba.T, reference.softmax_rows(
        np.column_stack([X, np.ones(n)]) @ coef.T), rtol=1e-12, atol=1e-15)
    for v, hv in zip(vs, products):
        want = hess @ v.ravel()
        np.testing.assert_allclose(hv.ravel(), want, rtol=1e-10,
                                   atol=1e-12 * scale * np.abs(v).sum())
    if np.all(weights == 0):
        assert np.all(products[0] == 0) and np.all(diag == 0) and np.all(grad == 0)


def test_class_kernel_is_the_diagonal_block_and_objective_kernel_agrees(rng):
    X, coef, targets, weights = logit_problem(rng, 333, 4, 3)
    q, grad, hess = kernel_terms(X, coef, targets, weights)
    p = coef.shape[1]
    for c in range(3):
        g_c = np.empty(p)
        h_c = np.empty((p, p))
        q_c = softmax_class_terms(X, coef, targets, weights, c, 3, g_c, h_c)
        assert q_c == q
        np.testing.assert_allclose(g_c, grad[c], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(h_c, hess[c * p:(c + 1) * p, c * p:(c + 1) * p], rtol=1e-13,
                                   atol=1e-13)
    assert softmax_objective(X, coef, targets, weights, 3) == q


def test_kernels_do_not_depend_on_the_thread_count(rng):
    X, coef, targets, weights = logit_problem(rng, 3000, 6, 4)
    n_blocks = _config.n_blocks(3000, 1000)
    before = numba.get_num_threads()
    try:
        out = []
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            out.append(kernel_terms(X, coef, targets, weights, n_blocks))
    finally:
        numba.set_num_threads(before)
    (q1, g1, h1), (q2, g2, h2) = out
    assert q1 == q2
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(h1, h2)


def test_cg_kernels_do_not_depend_on_the_thread_count(rng):
    X, coef, targets, weights = logit_problem(rng, 5000, 9, 6)
    vs = [rng.standard_normal(coef.shape) for _ in range(2)]
    n_blocks = _config.n_blocks(5000, 200)
    before = numba.get_num_threads()
    try:
        out = []
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            out.append(cg_terms(X, coef, targets, weights, vs, n_blocks))
    finally:
        numba.set_num_threads(before)
    assert out[0][0] == out[1][0]
    for a, b in zip(out[0][1:4], out[1][1:4]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(out[0][4], out[1][4]):
        np.testing.assert_array_equal(a, b)


def test_saturated_probabilities_keep_the_hessian_semi_definite(rng):
    # huge coefficients (an overshooting step): the probabilities must still sum to 1
    X, coef, targets, weights = logit_problem(rng, 200, 2, 3)
    q, grad, hess = kernel_terms(X, 1e7 * coef, targets, weights)
    assert np.isfinite(q) and np.all(np.isfinite(hess))
    assert np.linalg.eigvalsh(hess).min() > -1e-12 * max(1.0, np.abs(hess).max())


def test_log_softmax_rows(rng):
    eta = rng.standard_normal((1000, 5)) * 30
    expected = np.log(reference.softmax_rows(eta))
    log_softmax_rows(eta, 256)
    np.testing.assert_allclose(eta, expected, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- the M-step blocks


@pytest.mark.parametrize("solver, opts", [("cholesky", {}),
                                          ("cg", dict(cg_tol=1e-13, max_cg_iter=1000))])
def test_newton_block_matches_reference_step(rng, solver, opts):
    X, coef, targets, weights = logit_problem(rng, 200, 3, 4, soft=False)
    coef[:, -1] -= coef[:, -1].mean()
    for lr in (1.0, 0.5):
        got = newton_logit(X, coef, targets, weights, 1e-2, learning_rate=lr, step_halving=False,
                           solver=solver, **opts)
        want = reference.logit_newton_step(X, coef, targets, weights, 1e-2, lr)
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("n, d, n_classes, alpha", [(400, 5, 4, 0.1), (1000, 12, 10, 1.0),
                                                    (300, 2, 2, 1e-3)])
def test_cg_step_equals_the_cholesky_step(rng, n, d, n_classes, alpha):
    # a well-conditioned block: CG run to a tight tolerance gives Cholesky's Newton step
    X, coef, targets, weights = logit_problem(rng, n, d, n_classes, soft=False)
    coef *= 0.3
    coef[:, -1] -= coef[:, -1].mean()
    chol = newton_logit(X, coef, targets, weights, alpha, step_halving=False, solver="cholesky")
    cg = newton_logit(X, coef, targets, weights, alpha, step_halving=False, solver="cg",
                      cg_tol=1e-13, max_cg_iter=1000)
    step = np.abs(chol - coef).max()
    np.testing.assert_allclose(cg, chol, rtol=0, atol=1e-8 * step)
    # the default (scikit-learn's forcing term) is a cruder step, but an ascent step
    q0 = reference.logit_objective(X, coef, targets, weights, alpha)
    rough = newton_logit(X, coef, targets, weights, alpha, learning_rate=0.5)
    assert reference.logit_objective(X, rough, targets, weights, alpha) > q0


def test_cg_block_never_lowers_q_and_reaches_the_maximum(rng):
    X, coef, targets, weights = logit_problem(rng, 300, 3, 4, soft=True)
    alpha = 0.05
    q = [reference.logit_objective(X, coef, targets, weights, alpha)]
    current = coef
    for _ in range(30):
        current = newton_logit(X, current, targets, weights, alpha, learning_rate=1.0)
        q.append(reference.logit_objective(X, current, targets, weights, alpha))
    assert np.all(np.diff(q) >= -1e-12 * abs(q[0]))
    np.testing.assert_allclose(current, reference.logit_newton_fit(X, targets, weights, alpha),
                               atol=1e-7)


def test_ecm_block_climbs_every_step_and_reaches_the_newton_maximum(rng):
    X, coef, targets, weights = logit_problem(rng, 300, 2, 3, soft=True)
    alpha = 0.1
    q = [reference.logit_objective(X, coef, targets, weights, alpha)]
    current = coef
    for _ in range(60):
        current = cm_logit(X, current, targets, weights, alpha, n_steps=1)
        q.append(reference.logit_objective(X, current, targets, weights, alpha))
    assert np.all(np.diff(q) >= -1e-12 * abs(q[0]))
    newton = reference.logit_newton_fit(X, targets, weights, alpha)
    np.testing.assert_allclose(current, newton, atol=1e-6)


# ----------------------------------------------------------------------------- EM


def test_one_irls_iteration_matches_the_numpy_reference(rng):
    X, y = experts_problem(sep=1.0, seed=3, n=150)
    k, n_classes, d = 3, 3, 2
    init = random_init(rng, k, n_classes, d)
    weights = rng.uniform(0.5, 2, size=len(y))
    for lr in (0.5, 1.0):
        moe = MixtureOfExpertsClassifier(k, learning_rate=lr, step_halving=False, alpha=0.01,
                                         max_iter=1, init=init, solver="cholesky")
        with pytest.warns(ConvergenceWarning):
            moe.fit(X, y, sample_weight=weights)
        gate, experts = as_arrays(init)
        objective, gate1, experts1, _ = reference.moe_em_step(
            X, np.eye(n_classes)[y], weights, gate, experts, 0.01, lr)
        assert moe.lower_bounds_[0] == pytest.approx(objective, rel=1e-12)
        np.testing.assert_allclose(moe.gate_coef_, gate1[:, :-1], rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(moe.gate_intercept_, gate1[:, -1], rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(moe.coef_, experts1[..., :-1], rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(moe.intercept_, experts1[..., -1], rtol=1e-8, atol=1e-9)


def test_one_regressor_iteration_matches_the_numpy_reference(rng):
    X = rng.uniform(-2, 2, size=(200, 2))
    y = np.abs(X[:, 0]) - X[:, 1] + 0.1 * rng.standard_normal(200)
    init = random_init(rng, 3, None, 2, regressor=True)
    moe = MixtureOfExpertsRegressor(3, learning_rate=0.5, step_halving=False, alpha=0.01,
                                    max_iter=1, init=init, solver="cholesky")
    with pytest.warns(ConvergenceWarning):
        moe.fit(X, y)
    gate, experts = as_arrays(init)
    objective, gate1, experts1, sigma2 = reference.moe_em_step(
        X, y, np.ones(200), gate, experts, 0.01, 0.5, sigma2=init["sigma2"])
    assert moe.lower_bounds_[0] == pytest.approx(objective, rel=1e-12)
    np.testing.assert_allclose(moe.gate_coef_, gate1[:, :-1], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(moe.coef_, experts1[:, :-1], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(moe.intercept_, experts1[:, -1], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(moe.sigma2_, sigma2, rtol=1e-8)


@pytest.mark.parametrize("settings", [dict(m_step="irls", learning_rate=0.5),
                                      dict(m_step="irls", learning_rate=1.0),
                                      dict(m_step="irls", learning_rate=0.5, solver="cholesky"),
                                      dict(m_step="irls", learning_rate=1.0, solver="cholesky"),
                                      dict(m_step="irls", learning_rate=0.5, n_inner=3),
                                      dict(m_step="ecm"), dict(m_step="ecm", n_inner=2)])
@pytest.mark.parametrize("sep, seed", [(6.0, 5), (1.0, 2)])
def test_objective_never_decreases(settings, sep, seed):
    # IRLS with step-halving (the default) and ECM are generalised EM: the guard raises
    # if the penalised log-likelihood falls at any iteration.
    X, y = experts_problem(sep=sep, seed=seed)
    moe = MixtureOfExpertsClassifier(3, random_state=seed, max_iter=60, on_decrease="raise",
                                     **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(X, y)
    lb = moe.lower_bounds_
    assert np.all(np.diff(lb) >= -1e-10 * np.abs(lb[1:]))
    assert lb[-1] > lb[0]


@pytest.mark.parametrize("sep, seed", [(1.0, 2), (1.0, 3)])
def test_cg_and_cholesky_fits_reach_the_same_objective(sep, seed):
    # From the same start the two solvers take different EM paths (CG's steps are
    # approximate), which on some problems end at different local maxima; on these
    # they reach the same one.
    X, y = experts_problem(sep=sep, seed=seed)
    fits = {}
    for solver in ("cg", "cholesky"):
        fits[solver] = MixtureOfExpertsClassifier(3, solver=solver, random_state=seed, tol=1e-12,
                                                  max_iter=1500, on_decrease="raise").fit(X, y)
        lb = fits[solver].lower_bounds_
        assert np.all(np.diff(lb) >= -1e-10 * np.abs(lb[1:]))
    assert fits["cg"].lower_bound_ == pytest.approx(fits["cholesky"].lower_bound_, rel=1e-6)


def test_undamped_irls_overshoots():
    # Ng and McLachlan's finding: plain IRLS with learning_rate=1 is not an EM step and
    # can lower the likelihood. On this problem it does (at iteration 19, by ~9e-4 per
    # sample); the guard reports it.
    X, y = experts_problem(sep=6.0, seed=5)
    moe = MixtureOfExpertsClassifier(3, learning_rate=1.0, step_halving=False, random_state=5,
                                     max_iter=100, solver="cholesky")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(LikelihoodDecreaseWarning, match="decreased at iteration"):
            moe.fit(X, y)
    drops = np.diff(moe.lower_bounds_)
    assert drops.min() < -1e-4
    with pytest.raises(LikelihoodDecreaseError):
        MixtureOfExpertsClassifier(3, learning_rate=1.0, step_halving=False, random_state=5,
                                   max_iter=100, on_decrease="raise", solver="cholesky").fit(X, y)


def test_damped_irls_without_step_halving_is_not_guaranteed_monotone():
    # why step_halving exists: on this problem even learning_rate=0.5 lowers the objective
    # once (iteration 77, by ~2e-5 per sample) without it, and never with it
    X, y = experts_problem(sep=6.0, seed=0)
    opts = dict(learning_rate=0.5, random_state=0, max_iter=100, on_decrease="ignore",
                solver="cholesky")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MixtureOfExpertsClassifier(3, step_halving=False, **opts).fit(X, y)
        halved = MixtureOfExpertsClassifier(3, **opts).fit(X, y)
    assert np.diff(plain.lower_bounds_).min() < -1e-6
    assert np.diff(halved.lower_bounds_).min() >= -1e-10 * np.abs(halved.lower_bounds_).max()


def test_regressor_recovers_the_pieces(rng):
    X = rng.uniform(-1, 1, size=(600, 1))
    pieces = np.array([[2.0, 1.0], [-1.0, 1.0]])  # slope, intercept; left, right of 0
    left = X[:, 0] < 0
    y = np.where(left, 2.0 * X[:, 0] + 1.0, -X[:, 0] + 1.0) + 0.05 * rng.standard_normal(600)
    for m_step in ("irls", "ecm"):
        moe = MixtureOfExpertsRegressor(2, m_step=m_step, random_state=0, max_iter=500,
                                        on_decrease="raise").fit(X, y)
        order = np.argsort(-moe.coef_[:, 0])  # the steeper piece first
        np.testing.assert_allclose(moe.coef_[order, 0], pieces[:, 0], atol=0.05)
        np.testing.assert_allclose(moe.intercept_[order], pieces[:, 1], atol=0.05)
        np.testing.assert_allclose(moe.sigma2_, 0.05 ** 2, rtol=0.3)
        gate = moe.gate_proba(np.array([[-0.5], [0.5]]))
        assert gate[0, order[0]] > 0.95 and gate[1, order[1]] > 0.95
        assert moe.score(X, y) > 0.99
        assert np.all(np.diff(moe.lower_bounds_) >= -1e-10 * np.abs(moe.lower_bounds_[1:]))


def test_one_expert_is_multinomial_logistic_regression(rng):
    X, y = experts_problem(sep=1.0, seed=1, n=250)
    weights = rng.uniform(0.2, 3.0, size=len(y))
    alpha = 0.05
    moe = MixtureOfExpertsClassifier(1, learning_rate=1.0, alpha=alpha, tol=1e-13,
                                     max_iter=50).fit(X, y, sample_weight=weights)
    want = reference.logit_newton_fit(X, np.eye(3)[y], weights, alpha)
    np.testing.assert_allclose(moe.coef_[0], want[:, :-1], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(moe.intercept_[0], want[:, -1], rtol=1e-7, atol=1e-9)
    obj = reference.logit_objective(X, want, np.eye(3)[y], weights, alpha) / weights.sum()
    assert moe.lower_bounds_[-1] == pytest.approx(obj, rel=1e-10)


def test_one_expert_equals_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = experts_problem(sep=1.0, seed=4, n=300)
    y = np.array(["a", "b", "c"])[y]
    weights = np.random.default_rng(0).uniform(0.5, 2.0, size=len(y))
    alpha = 0.1
    moe = MixtureOfExpertsClassifier(1, learning_rate=1.0, alpha=alpha, tol=1e-13,
                                     max_iter=50).fit(X, y, sample_weight=weights)
    sk = linear_model.LogisticRegression(C=1 / alpha, solver="lbfgs", tol=1e-12, max_iter=10000)
    sk.fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(moe.classes_, sk.classes_)
    np.testing.assert_allclose(moe.coef_[0], sk.coef_, atol=1e-5)
    np.testing.assert_allclose(moe.intercept_[0], sk.intercept_ - sk.intercept_.mean(), atol=1e-5)
    np.testing.assert_allclose(moe.predict_proba(X), sk.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_sample_weight_two_equals_duplicated_rows(rng, estimator):
    X, y = experts_problem(sep=2.0, seed=7, n=120)
    if estimator == "regressor":
        y = X[:, 0] * np.sign(X[:, 1]) + 0.3 * rng.standard_normal(len(y))
        init = random_init(rng, 2, None, 2, regressor=True)
        make = MixtureOfExpertsRegressor
    else:
        init = random_init(rng, 2, 3, 2)
        make = MixtureOfExpertsClassifier
    weights = np.where(np.arange(len(y)) % 3 == 0, 2.0, 1.0)
    twice = np.repeat(np.arange(len(y)), weights.astype(int))
    opts = dict(init=init, max_iter=15, alpha=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = make(2, **opts).fit(X, y, sample_weight=weights)
        b = make(2, **opts).fit(X[twice], y[twice])
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.gate_coef_, b.gate_coef_, rtol=1e-7, atol=1e-9)


def test_predictions_are_probabilities_with_arbitrary_labels():
    X, y = experts_problem(sep=2.0, seed=3, n=200)
    labels = np.array(["low", "mid", "high"])[y]
    moe = MixtureOfExpertsClassifier(3, m_step="ecm", random_state=0, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(X, labels)
    assert list(moe.classes_) == ["high", "low", "mid"]
    proba = moe.predict_proba(X)
    assert proba.shape == (200, 3) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(moe.gate_proba(X).sum(axis=1), 1.0, rtol=0, atol=1e-12)
    pred = moe.predict(X)
    assert set(pred) <= set(labels)
    assert moe.score(X, labels) == pytest.approx(np.mean(pred == labels))
    assert moe.score(X, labels) > 0.7
    w = np.arange(200.0)
    assert moe.score(X, labels, sample_weight=w) == pytest.approx(w @ (pred == labels) / w.sum())
    assert moe.coef_.shape == (3, 3, 2) and moe.intercept_.shape == (3, 3)
    assert moe.gate_coef_.shape == (3, 2) and moe.n_features_in_ == 2


def test_scores_match_scikit_learn_metrics(rng):
    metrics = pytest.importorskip("sklearn.metrics")
    X = rng.standard_normal((150, 2))
    y = X[:, 0] - 2 * X[:, 1] + rng.standard_normal(150)
    w = rng.uniform(0, 1, 150)
    reg = MixtureOfExpertsRegressor(2, random_state=0, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    assert reg.score(X, y) == pytest.approx(metrics.r2_score(y, reg.predict(X)), rel=1e-12)
    assert reg.score(X, y, w) == pytest.approx(metrics.r2_score(y, reg.predict(X),
                                                                sample_weight=w), rel=1e-12)


def test_n_init_keeps_the_best_run():
    X, y = experts_problem(sep=6.0, seed=0, n=200)
    opts = dict(init="random", max_iter=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        best = MixtureOfExpertsClassifier(3, n_init=4, random_state=11, **opts).fit(X, y)
        rng = np.random.default_rng(11)
        singles = [MixtureOfExpertsClassifier(3, random_state=rng, **opts).fit(X, y).lower_bound_
                   for _ in range(4)]
    assert best.lower_bound_ == pytest.approx(max(singles), rel=1e-12)


def test_variance_collapse_is_floored_and_named(rng):
    X = rng.uniform(-1, 1, size=(200, 1))
    y = np.where(X[:, 0] < 0, 3.0 * X[:, 0], -X[:, 0] + rng.standard_normal(200))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(DegenerateCovarianceWarning, match="collapsed"):
            moe = MixtureOfExpertsRegressor(2, random_state=0, max_iter=200, reg_variance=1e-6,
                                            on_decrease="raise").fit(X, y)
    assert moe.sigma2_.min() == pytest.approx(1e-6 * np.var(y), rel=1e-9)


def test_singular_hessian_is_named(rng):
    X = rng.standard_normal((50, 2)) * 1e160  # X^T X overflows
    y = rng.integers(2, size=50)
    with pytest.raises(SingularHessianError, match="non-finite"):
        MixtureOfExpertsClassifier(1, max_iter=3).fit(X, y)


def test_constant_feature_with_alpha_zero_still_fits(rng):
    X, y = experts_problem(sep=1.0, seed=2, n=150)
    X = np.column_stack([X, np.zeros(150)])
    moe = MixtureOfExpertsClassifier(1, alpha=0.0, learning_rate=1.0, max_iter=30).fit(X, y)
    assert np.all(moe.coef_[0][:, 2] == 0)


def test_params_are_stored_unchanged_and_clone():
    moe = MixtureOfExpertsClassifier(3, m_step="ecm", learning_rate=1, alpha=0)
    params = moe.get_params()
    assert params["n_experts"] == 3 and params["learning_rate"] == 1 and params["alpha"] == 0
    base = pytest.importorskip("sklearn.base")
    clone = base.clone(moe)
    assert clone.get_params() == params
    assert base.clone(MixtureOfExpertsRegressor(reg_variance=0.1)).reg_variance == 0.1


BAD_FIT = [
    (dict(), [[0.0, np.nan], [1.0, 2.0], [2.0, 1.0]], [0, 1, 0], None, "NaN"),
    (dict(), [[0.0], [1.0], [2.0]], [0, 1], None, "different numbers of samples"),
    (dict(), [[0.0], [1.0], [2.0]], [1, 1, 1], None, "at least 2"),
    (dict(), [[0.0], [1.0], [2.0]], [0, 1, 0], [1.0, -1.0, 1.0], "non-negative"),
    (dict(), [[0.0], [1.0], [2.0]], [[0], [1], [0]], None, "1-d"),
    (dict(), [[0.0], [1.0], [2.0]], [0.0, np.nan, 1.0], None, "NaN"),
    (dict(n_experts=0), [[0.0], [1.0], [2.0]], [0, 1, 0], None, "n_experts"),
    (dict(n_experts=4), [[0.0], [1.0], [2.0]], [0, 1, 0], None, "n_experts"),
    (dict(learning_rate=0.0), [[0.0], [1.0], [2.0]], [0, 1, 0], None, "learning_rate"),
    (dict(learning_rate=1.5), [[0.0], [1.0], [2.0]], [0, 1, 0], None, "learning_rate"),
    (dict(m_step="newton"), [[0.0], [1.0], [2.0]], [0, 1, 0], None, "m_step"),
    (dict(solver="lu"), [[0.0], [1.0], [2.0]], [0, 1, 0], None, "solver"),
    (dict(alpha=-1.0), [[0.0], [1.0], [2.0]], [0, 1, 0], None, "alpha"),
    (dict(n_inner=0), [[0.0], [1.0], [2.0]], [0, 1, 0], None, "n_inner"),
    (dict(init="pca"), [[0.0], [1.0], [2.0]], [0, 1, 0], None, "init"),
    (dict(step_halving="yes"), [[0.0], [1.0], [2.0]], [0, 1, 0], None, "step_halving"),
    (dict(on_decrease="shout"), [[0.0], [1.0], [2.0]], [0, 1, 0], None, "on_decrease"),
]


@pytest.mark.parametrize("settings, X, y, sample_weight, match", BAD_FIT)
def test_bad_input_is_named(settings, X, y, sample_weight, match):
    with pytest.raises(ValueError, match=match):
        MixtureOfExpertsClassifier(**settings).fit(np.array(X), np.array(y),
                                                   sample_weight=sample_weight)


@pytest.mark.parametrize("y, match", [([0.0, np.inf, 1.0], "infinite"),
                                      ([0.0, np.nan, 1.0], "NaN"),
                                      (["a", "b", "c"], "numeric")])
def test_bad_regression_targets_are_named(y, match):
    with pytest.raises(ValueError, match=match):
        MixtureOfExpertsRegressor().fit(np.array([[0.0], [1.0], [2.0]]), np.array(y))
    with pytest.raises(ValueError, match="reg_variance"):
        MixtureOfExpertsRegressor(reg_variance=-1).fit(np.array([[0.0], [1.0]]), [0.0, 1.0])


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_fit_does_not_depend_on_the_thread_count(solver, monkeypatch):
    X, y = experts_problem(sep=2.0, seed=1, n=12000)
    monkeypatch.setattr(_config, "PARALLEL_MIN_WORK", 0)  # every kernel call in parallel
    before = numba.get_num_threads()
    fits = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fits.append(MixtureOfExpertsClassifier(3, random_state=0, max_iter=5,
                                                       solver=solver).fit(X, y))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(fits[0].lower_bounds_, fits[1].lower_bounds_)
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)


def test_bad_init_dict_is_named(rng):
    X, y = experts_problem(sep=1.0, seed=0, n=60)
    init = random_init(rng, 2, 3, 2)
    init["gate_coef"] = init["gate_coef"][:, :1]
    with pytest.raises(ValueError, match="gate_coef"):
        MixtureOfExpertsClassifier(2, init=init).fit(X, y)
    with pytest.raises(ValueError, match="missing"):
        MixtureOfExpertsClassifier(2, init={"coef": 1}).fit(X, y)


def test_predicting_before_fit_or_with_wrong_features():
    moe = MixtureOfExpertsClassifier()
    with pytest.raises(NotFittedError):
        moe.predict(np.zeros((2, 2)))
    X, y = experts_problem(sep=1.0, seed=0, n=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.set_params(max_iter=3).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        moe.predict_proba(np.zeros((2, 3)))
