"""Component families against independent references: scipy.stats for the densities,
numerical maximisation of Q for the M-steps, sums over chunks for the statistics."""

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import digamma, gammaln, logsumexp

from emlab.exceptions import DegenerateComponentError
from emlab.families import Bernoulli, Categorical, Exponential, Gaussian, Poisson, StudentT


def soft_resp(rng, n, k):
    r = rng.uniform(0.05, 1.0, size=(n, k))
    return r / r.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- data and parameters


def bernoulli_case(rng, n=60, d=5, k=3):
    X = (rng.random((n, d)) < 0.4).astype(float)
    p = rng.uniform(0.05, 0.95, size=(k, d))
    p[0, 0], p[1, 1] = 0.0, 1.0  # the edges: log 0 selected or not
    return X, {"probabilities": p}


def poisson_case(rng, n=60, d=4, k=3):
    X = rng.poisson(3.0, size=(n, d)).astype(float)
    rates = rng.uniform(0.5, 6.0, size=(k, d))
    return X, {"rates": rates}


def exponential_case(rng, n=60, d=3, k=2):
    X = rng.exponential(2.0, size=(n, d))
    return X, {"rates": rng.uniform(0.2, 3.0, size=(k, d))}


def categorical_case(rng, n=80, k=3, sizes=(3, 5, 2)):
    S = np.column_stack([rng.integers(c, size=n) for c in sizes]).astype(float)
    width = max(sizes)
    p = np.zeros((k, len(sizes), width))
    for j, c in enumerate(sizes):
        p[:, j, :c] = rng.dirichlet(np.ones(c), size=k)
    return S, {"probabilities": p, "n_categories": np.array(sizes)}


# --------------------------------------------------------------------------- log-densities


def test_bernoulli_log_prob_equals_scipy(rng):
    X, params = bernoulli_case(rng)
    ours = Bernoulli().log_prob(X, params)
    with np.errstate(divide="ignore"):
        ref = np.stack([stats.bernoulli.logpmf(X, p).sum(axis=1) for p in params["probabilities"]],
                       axis=1)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert not np.isnan(ours).any() and np.isneginf(ours).any()


def test_poisson_log_prob_equals_scipy(rng):
    X, params = poisson_case(rng)
    params["rates"][2, 0] = 0.0  # a zero rate: -inf for positive counts, 0 for zero counts
    X[:5, 0] = 0.0
    ours = Poisson().log_prob(X, params)
    with np.errstate(divide="ignore"):
        ref = np.stack([stats.poisson.logpmf(X, lam).sum(axis=1) for lam in params["rates"]],
                       axis=1)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_exponential_log_prob_equals_scipy(rng):
    X, params = exponential_case(rng)
    ours = Exponential().log_prob(X, params)
    ref = np.stack([stats.expon.logpdf(X, scale=1.0 / lam).sum(axis=1) for lam in params["rates"]],
                   axis=1)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_categorical_log_prob_equals_a_loop(rng):
    S, params = categorical_case(rng)
    fam = Categorical()
    ours = fam.log_prob(fam.check_X(S), params)
    p = params["probabilities"]
    ref = np.array([[sum(np.log(p[k, j, int(S[i, j])]) for j in range(S.shape[1]))
                     for k in range(p.shape[0])] for i in range(S.shape[0])])
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gaussian_and_t_log_prob_equal_scipy(rng, random_spd, covariance_type):
    k, d = 3, 4
    X = rng.normal(size=(40, d)) * 2
    means = rng.normal(size=(k, d))
    full = random_spd(k, d)
    cov = {"full": full, "tied": full[0], "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
           "spherical": full[:, 0, 0].copy()}[covariance_type]
    fam = Gaussian(covariance_type)
    params = fam.check_params({"means": means, "covariances": cov}, k, d)
    as_full = fam.full_covariances(params)
    ref = np.stack([stats.multivariate_normal(means[j], as_full[j]).logpdf(X) for j in range(k)],
                   axis=1)
    np.testing.assert_allclose(fam.log_prob(X, params), ref, rtol=1e-10)
    t = StudentT(covariance_type)
    tparams = t.check_params({"means": means, "covariances": cov, "dofs": [1.5, 4.0, 30.0]}, k, d)
    tref = np.stack([stats.multivariate_t(means[j], as_full[j], df=nu).logpdf(X)
                     for j, nu in enumerate([1.5, 4.0, 30.0])], axis=1)
    np.testing.assert_allclose(t.log_prob(X, tparams), tref, rtol=1e-10)


# --------------------------------------------------------------------------- M-steps: Q maximised


def q_value(family, X, resp, params):
    """Q (the responsibility-weighted complete-data log-likelihood) plus the log-prior."""
    return float(np.sum(resp * family.log_prob(X, params))) + family.log_prior(params)


def numerical_maximum(objective, x0):
    result = optimize.minimize(lambda v: -objective(v), x0, method="L-BFGS-B",
                               options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-10})
    return -result.fun, result.x


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


@pytest.mark.parametrize("prior", [(1.0, 1.0), (2.0, 3.0)])
def test_bernoulli_m_step_maximises_q(rng, prior):
    X, _ = bernoulli_case(rng, n=50, d=3, k=2)
    resp = soft_resp(rng, 50, 2)
    fam = Bernoulli(prior=prior)
    ours, slack = fam.m_step(fam.statistics(X, resp, None), None, "p")
    assert slack == 0.0
    best, v = numerical_maximum(
        lambda v: q_value(fam, X, resp, {"probabilities": sigmoid(v).reshape(2, 3)}),
        np.zeros(6))
    assert q_value(fam, X, resp, ours) >= best - 1e-9
    np.testing.assert_allclose(ours["probabilities"], sigmoid(v).reshape(2, 3), atol=1e-5)


@pytest.mark.parametrize("family_case", [(Poisson, poisson_case, (1.0, 0.0)),
                                         (Poisson, poisson_case, (2.5, 0.5)),
                                         (Exponential, exponential_case, (1.0, 0.0)),
                                         (Exponential, exponential_case, (3.0, 2.0))],
                         ids=["poisson", "poisson-prior", "exponential", "exponential-prior"])
def test_rate_m_steps_maximise_q(rng, family_case):
    cls, case, prior = family_case
    X, params = case(rng)
    k, d = params["rates"].shape
    resp = soft_resp(rng, X.shape[0], k)
    fam = cls(prior=prior)
    ours, _ = fam.m_step(fam.statistics(X, resp, None), None, "r")
    best, v = numerical_maximum(
        lambda v: q_value(fam, X, resp, {"rates": np.exp(v).reshape(k, d)}), np.zeros(k * d))
    assert q_value(fam, X, resp, ours) >= best - 1e-9
    np.testing.assert_allclose(ours["rates"], np.exp(v).reshape(k, d), rtol=1e-4)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_categorical_m_step_maximises_q(rng, alpha):
    S, params = categorical_case(rng, sizes=(3, 2))
    fam = Categorical(prior=alpha)
    S = fam.check_X(S)
    resp = soft_resp(rng, S.shape[0], 3)
    ours, _ = fam.m_step(fam.statistics(S, resp, None), None, "p")

    def unpack(v):
        logits = np.full((3, 2, 3), -np.inf)
        logits[:, 0, :3] = v[:9].reshape(3, 3)
        logits[:, 1, :2] = v[9:].reshape(3, 2)
        p = np.exp(logits - logsumexp(logits, axis=2, keepdims=True))
        return {"probabilities": p, "n_categories": np.array([3, 2])}

    best, v = numerical_maximum(lambda v: q_value(fam, S, resp, unpack(v)), np.zeros(15))
    assert q_value(fam, S, resp, ours) >= best - 1e-9
    np.testing.assert_allclose(ours["probabilities"], unpack(v)["probabilities"], atol=1e-5)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_gaussian_m_step_maximises_q(rng, covariance_type):
    X = rng.normal(size=(40, 2)) + np.array([1.0, -2.0])
    resp = soft_resp(rng, 40, 2)
    fam = Gaussian(covariance_type, reg_covar=0.0)
    ours, _ = fam.m_step(fam.statistics(X, resp, None), None, "mc")
    q_ours = q_value(fam, X, resp, ours)
    # random perturbations of the maximiser never do better
    for _ in range(20):
        means = ours["means"] + 0.05 * rng.normal(size=ours["means"].shape)
        cov = ours["covariances"] * (1 + 0.05 * rng.uniform(-1, 1, size=ours["covariances"].shape))
        if covariance_type in ("full", "tied"):
            cov = (cov + np.swapaxes(cov, -1, -2)) / 2
        params = fam.check_params({"means": means, "covariances": cov}, 2, 2)
        assert q_value(fam, X, resp, params) <= q_ours + 1e-10


def test_gaussian_m_step_with_fixed_means_takes_the_scatter_about_them(rng):
    X = rng.normal(size=(50, 3))
    resp = soft_resp(rng, 50, 2)
    fixed = np.array([[0.5, 0.0, -0.5], [1.0, 1.0, 1.0]])
    fam = Gaussian("full", reg_covar=0.0)
    start = fam.check_params({"means": fixed, "covariances": np.stack([np.eye(3)] * 2)}, 2, 3)
    ours, _ = fam.m_step(fam.statistics(X, resp, start), start, "c")
    np.testing.assert_array_equal(ours["means"], fixed)
    for j in range(2):
        diff = X - fixed[j]
        ref = (resp[:, j, None] * diff).T @ diff / resp[:, j].sum()
        np.testing.assert_allclose(ours["covariances"][j], ref, rtol=1e-12)


def test_student_t_dof_step_maximises_its_part_of_q(rng):
    d = 2
    X = stats.multivariate_t(np.zeros(d), np.eye(d), df=3.0).rvs(400, random_state=1)
    resp = np.ones((400, 1))
    fam = StudentT("full", reg_covar=0.0)
    params = fam.check_params({"means": np.zeros((1, d)), "covariances": np.eye(d)[None],
                               "dofs": [8.0]}, 1, d)
    s = fam.statistics(X, resp, params)
    new, _ = fam.m_step(s, params, "d")
    nu_old = 8.0
    delta2 = np.sum(X**2, axis=1)
    u = (nu_old + d) / (nu_old + delta2)
    e_log_u = np.log(u) + digamma((nu_old + d) / 2) - np.log((nu_old + d) / 2)

    def q_nu(nu):  # the nu-part of Q: E[log Gamma(u | nu/2, nu/2)] summed over rows
        return float(np.sum(nu / 2 * np.log(nu / 2) - gammaln(nu / 2)
                            + (nu / 2 - 1) * e_log_u - nu / 2 * u))

    best = optimize.minimize_scalar(lambda nu: -q_nu(nu), bounds=(0.1, 100), method="bounded",
                                    options={"xatol": 1e-10})
    assert new["dofs"][0] == pytest.approx(best.x, rel=1e-5)
    assert q_nu(new["dofs"][0]) >= -best.fun - 1e-9


# --------------------------------------------------------------------------- statistics add up


@pytest.mark.parametrize("make", [
    lambda rng: (Bernoulli(), *bernoulli_case(rng)),
    lambda rng: (Poisson(), *poisson_case(rng)),
    lambda rng: (Exponential(), *exponential_case(rng)),
    lambda rng: (Categorical(), *categorical_case(rng)),
], ids=["bernoulli", "poisson", "exponential", "categorical"])
def test_statistics_of_chunks_add_to_those_of_the_whole(rng, make):
    fam, X, params = make(rng)
    X = fam.check_X(X, params=params if "n_categories" in params else None)
    resp = soft_resp(rng, X.shape[0], next(iter(params.values())).shape[0])
    whole = fam.statistics(X, resp, params)
    parts = fam.statistics(X[:25], resp[:25], params) + fam.statistics(X[25:], resp[25:], params)
    for name, value in whole.arrays.items():
        np.testing.assert_allclose(parts.arrays[name], value, rtol=1e-12, atol=1e-12)


def test_student_t_statistics_of_chunks_add_up(rng):
    X = rng.standard_t(3, size=(60, 2))
    fam = StudentT("full")
    params = fam.check_params({"means": np.zeros((2, 2)), "covariances": np.stack([np.eye(2)] * 2),
                               "dofs": [3.0, 9.0]}, 2, 2)
    resp = soft_resp(rng, 60, 2)
    whole = fam.statistics(X, resp, params)
    parts = fam.statistics(X[:17], resp[:17], params) + fam.statistics(X[17:], resp[17:], params)
    for name in ("nk", "means", "second", "counts", "dof_terms"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-11,
                                   atol=1e-12)


# --------------------------------------------------------------------------- bad input, sampling


@pytest.mark.parametrize("fam, X, message", [
    (Bernoulli(), [[0, 1], [2, 0]], r"binary .*X\[1, 0\] = 2"),
    (Bernoulli(), [[0, 0.5]], r"binary"),
    (Poisson(), [[1, -1]], r"counts .*X\[0, 1\] = -1"),
    (Poisson(), [[1.5, 1]], r"counts"),
    (Exponential(), [[1.0, -0.1]], r"non-negative"),
    (Categorical(), [[0, 1.5]], r"symbols"),
    (Categorical(n_categories=3), [[0, 3]], r"X\[0, 1\] = 3 is outside the range of feature 1"),
    (Categorical(), [[0, 1e12]], r"re-code"),
], ids=["bernoulli-2", "bernoulli-half", "poisson-negative", "poisson-fraction",
        "exponential-negative", "categorical-fraction", "categorical-range", "categorical-huge"])
def test_bad_data_gets_a_named_error(fam, X, message):
    with pytest.raises(ValueError, match=message):
        fam.check_X(np.array(X, dtype=float))


def test_bad_priors_and_nan_are_named():
    with pytest.raises(ValueError, match="Bernoulli prior"):
        Bernoulli(prior=(0.0, 1.0)).m_step(None, None, "p")
    with pytest.raises(ValueError, match="NaN"):
        Poisson().check_X(np.array([[1.0, np.nan]]))


def test_an_exponential_component_on_zeros_is_a_named_error():
    stats_ = Exponential().statistics(np.zeros((5, 1)), np.ones((5, 1)), None)
    with pytest.raises(DegenerateComponentError, match="component 0 .* collapsed onto zeros"):
        Exponential().m_step(stats_, None, "r")
    rates, _ = Exponential(prior=(1.0, 1.0)).m_step(stats_, None, "r")  # a prior prevents it
    assert np.isfinite(rates["rates"]).all()


@pytest.mark.parametrize("fam, params", [
    (Bernoulli(), {"probabilities": np.array([[0.2, 0.9]])}),
    (Poisson(), {"rates": np.array([[0.5, 4.0]])}),
    (Exponential(), {"rates": np.array([[0.5, 4.0]])}),
])
def test_samples_have_the_parameters_moments(fam, params):
    rng = np.random.default_rng(3)
    draws = fam.sample(params, 0, 200_000, rng)
    expected = {"probabilities": lambda p: p, "rates": lambda r: r if isinstance(fam, Poisson)
                else 1.0 / r}
    name = next(iter(params))
    np.testing.assert_allclose(draws.mean(axis=0), expected[name](params[name][0]), rtol=0.02)


# --------------------------------------------------------------------------- a family's mixture


def test_mixture_family_log_prob_and_statistics(rng):
    from emlab.families import Mixture

    X, inner = poisson_case(rng, n=50, d=2, k=4)  # 2 components x 2 sub-components
    params = dict(inner, mix_weights=np.array([[0.3, 0.7], [1.0, 0.0]]))
    fam = Mixture(Poisson(), 2)
    with np.errstate(divide="ignore"):
        sub = stats.poisson.logpmf(X[:, None, :], inner["rates"][None, :, :]).sum(axis=2)
        ref = logsumexp(sub.reshape(50, 2, 2) + np.log(params["mix_weights"])[None], axis=2)
    np.testing.assert_allclose(fam.log_prob(X, params), ref, rtol=1e-12)
    resp = soft_resp(rng, 50, 2)
    whole = fam.statistics(X, resp, params)
    parts = fam.statistics(X[:20], resp[:20], params) + fam.statistics(X[20:], resp[20:], params)
    np.testing.assert_allclose(parts.mix, whole.mix, rtol=1e-12)
    np.testing.assert_allclose(parts.inner.sums, whole.inner.sums, rtol=1e-12)
    # the M-step: the sub-component weights are each component's shares
    new, _ = fam.m_step(whole, params, "gr")
    np.testing.assert_allclose(new["mix_weights"].sum(axis=1), 1.0)
    assert new["mix_weights"][1, 1] == 0.0  # a zero weight stays zero (its share is zero)
    with pytest.raises(ValueError, match="n_mix must be an int >= 1"):
        Mixture(Poisson(), 0).log_prob(X, params)
    with pytest.raises(ValueError, match="needs an emlab.families.Family"):
        Mixture(Mixture(Poisson()), 2).letters


def test_bad_family_settings_are_named_before_any_work():
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        Gaussian("round").check_X(X)
    with pytest.raises(ValueError, match="dof must be positive"):
        StudentT(dof=0.0)._start_dofs(2)
