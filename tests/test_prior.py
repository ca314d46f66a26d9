"""The conjugate prior: MAP M-steps against brute-force maximisation, the log-prior against
scipy.stats, the degenerate cases it cures, and its vanishing as the data grow."""

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import invgamma, invwishart, multivariate_normal

from emlab import (
    ConvergenceWarning,
    DegenerateCovarianceError,
    EmptyComponentWarning,
    GaussianMixture,
    MixtureParams,
)
from emlab import mixture as mixture_module

TYPES = ["full", "tied", "diag", "spherical"]


def unpack(theta, covariance_type, k, d):
    """Means and covariances from an unconstrained vector (Cholesky / log parametrisation)."""
    means = theta[: k * d].reshape(k, d)
    rest = theta[k * d:]
    if covariance_type in ("full", "tied"):
        m = 1 if covariance_type == "tied" else k
        tri = np.tril_indices(d)
        covs = []
        for j in range(m):
            lower = np.zeros((d, d))
            lower[tri] = rest[j * len(tri[0]):(j + 1) * len(tri[0])]
            lower[np.diag_indices(d)] = np.exp(np.diag(lower))
            covs.append(lower @ lower.T)
        cov = covs[0] if covariance_type == "tied" else np.array(covs)
    elif covariance_type == "diag":
        cov = np.exp(rest.reshape(k, d))
    else:
        cov = np.exp(rest)
    return means, cov


@pytest.mark.parametrize("covariance_type", TYPES)
def test_map_m_step_maximises_the_penalised_q(covariance_type):
    rng = np.random.default_rng(0)
    k, d, n = 2, 2, 9
    X = rng.standard_normal((n, d)) * [1.0, 0.3] + rng.integers(0, 2, (n, 1)) * 2
    resp = rng.dirichlet(np.ones(k), size=n)
    prior = mixture_module.resolve_prior("conjugate", X, None, k, covariance_type)
    step = mixture_module.m_step(X, resp, 0.0, covariance_type=covariance_type, prior=prior)

    def penalised_q(params):
        log_joint = mixture_module.weighted_log_prob(X, params)
        return float(np.sum(resp * log_joint)) + mixture_module.log_prior(params, prior)

    def negative(theta):
        means, cov = unpack(theta, covariance_type, k, d)
        try:
            return -penalised_q(MixtureParams(step.params.weights, means, cov, covariance_type=covariance_type))
        except (ArithmeticError, np.linalg.LinAlgError):
            return np.inf

    n_cov = {"full": k * 3, "tied": 3, "diag": k * d, "spherical": k}[covariance_type]
    start = np.r_[X[:k].ravel(), np.zeros(n_cov)]
    best = minimize(negative, start, method="BFGS", options={"gtol": 1e-10, "maxiter": 20000})
    means, cov = unpack(best.x, covariance_type, k, d)
    assert penalised_q(step.params) >= -best.fun - 1e-9  # the closed form is at least as good
    np.testing.assert_allclose(step.params.means, means, atol=1e-5)
    np.testing.assert_allclose(step.params.covariances, cov, atol=1e-5)


def test_log_prior_matches_scipy():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 3))
    for covariance_type in TYPES:
        prior = mixture_module.resolve_prior({"shrinkage": 0.3, "dof": 6.0}, X, None, 2, covariance_type)
        full_cov = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 0.5]])
        cov = {"full": np.array([full_cov, 0.5 * full_cov]), "tied": full_cov,
               "diag": np.array([[1.0, 2.0, 0.5], [0.3, 0.4, 0.6]]), "spherical": np.array([0.7, 1.3])}[covariance_type]
        params = MixtureParams([0.4, 0.6], rng.standard_normal((2, 3)), cov, covariance_type=covariance_type)
        full = params.full_covariances()
        want = sum(multivariate_normal(prior["mean"], full[j] / 0.3).logpdf(params.means[j]) for j in range(2))
        scale, dof = prior["scale"], prior["dof"]
        if covariance_type == "full":
            want += sum(invwishart(dof, scale).logpdf(c) for c in cov)
        elif covariance_type == "tied":
            want += invwishart(dof, scale).logpdf(cov)
        else:
            want += np.sum(invgamma(dof / 2, scale=np.asarray(scale) / 2).logpdf(cov))
        assert np.isclose(mixture_module.log_prior(params, prior), want, rtol=1e-10), covariance_type


def degenerate_cases():
    rng = np.random.default_rng(2)
    blob = rng.standard_normal((40, 3))
    return {
        # a component on one repeated point
        "duplicated points": (np.vstack([blob, np.tile([6.0, 6.0, 6.0], (8, 1))]), 2),
        # a feature constant within one cluster
        "constant feature": (np.vstack([blob, np.c_[rng.normal(8, 1, 20), rng.normal(0, 1, 20), np.full(20, 3.0)]]), 2),
        # more components than distinct points
        "K > distinct points": (np.repeat(rng.standard_normal((3, 3)), 4, axis=0), 4),
        # d close to n
        "d close to n": (rng.standard_normal((12, 10)), 2),
    }


@pytest.mark.parametrize("case", list(degenerate_cases()))
@pytest.mark.parametrize("covariance_type", TYPES)
def test_the_prior_cures_degenerate_fits(case, covariance_type):
    X, k = degenerate_cases()[case]
    gm = GaussianMixture(k, covariance_type=covariance_type, prior="conjugate", reg_covar=0.0,
                         random_state=0, init_params="random", tol=1e-8, max_iter=300, on_decrease="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", EmptyComponentWarning)  # K > distinct points empties some
        gm.fit(X)
    full = MixtureParams.from_model(gm).full_covariances()
    assert np.all(np.isfinite(gm.lower_bounds_)) and np.all(np.isfinite(full))
    assert np.all(np.linalg.eigvalsh(full) > 0)
    assert np.all(np.isfinite(gm.predict_proba(X)))


@pytest.mark.parametrize("case", ["duplicated points", "constant feature", "d close to n"])
def test_without_prior_or_ridge_the_collapse_is_named(case):
    X, k = degenerate_cases()[case]
    with pytest.raises(DegenerateCovarianceError, match=r"component \d+ is not positive definite.*reg_covar"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for seed in range(20):  # some starts avoid the collapse; most do not
                GaussianMixture(k, reg_covar=0.0, random_state=seed, init_params="random",
                                tol=1e-10, max_iter=500).fit(X)


def test_the_prior_fades_as_the_data_grow():
    rng = np.random.default_rng(3)
    gaps = []
    for n in (200, 20_000):
        labels = rng.integers(2, size=n)
        X = np.array([[0.0, 0.0], [4.0, 1.0]])[labels] + rng.standard_normal((n, 2)) * [1.0, 0.5]
        ml = GaussianMixture(2, random_state=0, tol=1e-10, max_iter=1000).fit(X)
        start = dict(weights_init=ml.weights_, means_init=ml.means_, precisions_init=ml.precisions_)
        mp = GaussianMixture(2, prior="conjugate", tol=1e-10, max_iter=1000, **start).fit(X)
        gaps.append(np.abs(mp.covariances_ - ml.covariances_).max())
    assert gaps[1] < gaps[0] / 30  # about 1/n: 100 times more data, about 100 times closer


@pytest.mark.parametrize("prior, message", [
    ("jeffreys", "prior must be one of"),
    ({"shrinkage": 0.0}, "shrinkage'] must be positive"),
    ({"dof": 0.5}, r"dof'] must exceed n_features - 1 = 3"),
    ({"mean": [0.0, 1.0]}, r"mean'] must be 4 finite numbers"),
    ({"scale": -np.eye(4)}, "must be positive"),
    ({"scale": np.eye(3)}, r"scale'] must have shape \(4, 4\)"),
    ({"sigma": 1.0}, "unknown prior key"),
])
def test_bad_priors_are_named(prior, message):
    X = np.random.default_rng(0).standard_normal((30, 4))
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2, prior=prior).fit(X)


def test_a_prior_is_saved_and_loaded(tmp_path):
    X = np.random.default_rng(4).standard_normal((60, 2))
    gm = GaussianMixture(2, prior={"shrinkage": 0.5, "mean": [0.0, 1.0]}, random_state=0).fit(X)
    gm.save(tmp_path / "m.npz")
    back = GaussianMixture.load(tmp_path / "m.npz")
    assert back.prior == {"shrinkage": 0.5, "mean": [0.0, 1.0]}
    back.fit(X)  # the loaded settings refit to the same model
    np.testing.assert_allclose(back.means_, gm.means_, rtol=1e-12)
