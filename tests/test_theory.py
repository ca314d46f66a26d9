"""emlab.theory against explicit double sums, and the identity behind EM's monotonicity."""

import numpy as np
import pytest
from scipy.special import logsumexp

import reference
from emlab import GaussianMixture, MixtureParams, theory
from emlab.datasets import load_iris

X = load_iris(return_X_y=True)[0]


def explicit(X, params):
    """log w_k + log N(x_i | mu_k, Sigma_k) from scipy.stats, and the posteriors."""
    log_joint = reference.log_gaussian(X, params.means, params.covariances) + np.log(params.weights)
    log_post = log_joint - logsumexp(log_joint, axis=1, keepdims=True)
    return log_joint, log_post


@pytest.mark.parametrize("seed", range(5))
def test_quantities_equal_their_definitions(seed):
    a = theory.random_params(X, 3, seed)
    b = theory.random_params(X, 3, seed + 100)
    joint_a, post_a = explicit(X, a)
    joint_b, post_b = explicit(X, b)
    r_a = np.exp(post_a)
    assert np.isclose(theory.log_likelihood(X, a), logsumexp(joint_a, axis=1).sum(), rtol=1e-12)
    np.testing.assert_allclose(theory.responsibilities(X, a), r_a, rtol=1e-10, atol=1e-300)
    assert np.isclose(theory.q_function(X, b, a), np.sum(r_a * joint_b), rtol=1e-12)
    assert np.isclose(theory.entropy(X, a), -np.sum(r_a * post_a), rtol=1e-10, atol=1e-12)
    assert np.isclose(theory.kl_posteriors(X, a, b), np.sum(r_a * (post_a - post_b)), rtol=1e-10)


@pytest.mark.parametrize("seed", range(20))
def test_likelihood_gain_is_q_gain_plus_kl(seed):
    old = theory.random_params(X, 3, seed, scale=0.5)
    new = theory.random_params(X, 3, 1000 + seed, scale=2.0)
    gain = theory.log_likelihood(X, new) - theory.log_likelihood(X, old)
    q_gain = theory.q_function(X, new, old) - theory.q_function(X, old, old)
    kl = theory.kl_posteriors(X, old, new)
    assert kl >= 0
    assert abs(gain - (q_gain + kl)) <= 1e-10 * max(1.0, abs(gain))
    # and the lower bound Q + H touches the likelihood at theta_old
    assert np.isclose(theory.q_function(X, old, old) + theory.entropy(X, old),
                      theory.log_likelihood(X, old), rtol=1e-12)


def test_a_fitted_model_is_accepted_and_em_raises_q():
    gm = GaussianMixture(3, random_state=0).fit(X)
    p = MixtureParams.from_model(gm)
    assert theory.log_likelihood(X, gm) == theory.log_likelihood(X, p)
    assert np.isclose(theory.log_likelihood(X, gm), gm.score(X) * len(X), rtol=1e-13)
    assert theory.kl_posteriors(X, gm, gm) == 0.0


def test_zero_weight_terms_follow_0_log_0():
    p = theory.random_params(X, 3, 0)
    dead = MixtureParams(np.array([0.6, 0.4, 0.0]), p.means, p.covariances)
    assert np.isfinite(theory.q_function(X, dead, dead))
    assert np.isfinite(theory.entropy(X, dead))
    assert theory.kl_posteriors(X, p, dead) == np.inf  # the new posterior forbids a label the old allows
