"""emlab.vhmm.VariationalCategoricalHMM: variational Bayes against hmmlearn 0.3.3 and by hand.

From the same start (hmmlearn's posteriors and priors set on both, init_params="")
the posteriors, their means and the lower-bound history (the total ELBO, which
hmmlearn records with every constant) agree with hmmlearn's to 1e-8 relative;
the ELBO never falls; bad input raises named errors.
"""

import itertools
import warnings

import numpy as np
import pytest
from scipy.special import digamma, logsumexp

from emlab import CategoricalHMM
from emlab.exceptions import ConvergenceWarning, NotFittedError
from emlab.vhmm import VariationalCategoricalHMM, kl_dirichlet

RTOL = 1e-8
ATTRIBUTES = ("startprob_posterior_", "transmat_posterior_", "emissionprob_posterior_")
MEANS = ("startprob_", "transmat_", "emissionprob_")


def quiet_fit(model, X, lengths=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, lengths)


def symbols(seed, k=3, m=4, lengths=(60, 35, 80, 1)):
    """Symbols drawn from an HMM (a length-1 sequence included: it has no transitions)."""
    truth = CategoricalHMM(k, init_params="")
    rng = np.random.default_rng(seed)
    truth.startprob_ = rng.dirichlet(np.ones(k))
    truth.transmat_ = rng.dirichlet(np.ones(k), size=k) + 2 * np.eye(k)
    truth.transmat_ /= truth.transmat_.sum(axis=1, keepdims=True)
    truth.emissionprob_ = rng.dirichlet(np.full(m, 0.5), size=k)
    pieces = [truth.sample(n, random_state=seed * 100 + i)[0] for i, n in enumerate(lengths)]
    X = np.concatenate(pieces)
    X[0, 0] = m - 1  # every symbol occurs
    return X, list(lengths)


def set_start(model, k, m, seed=1):
    """Priors and posteriors (hmmlearn's attribute names), the same on both libraries."""
    rng = np.random.default_rng(seed)
    model.startprob_prior_ = np.full(k, 0.7)
    model.transmat_prior_ = rng.uniform(0.2, 2.0, (k, k))
    model.emissionprob_prior_ = rng.uniform(0.2, 2.0, (k, m))
    model.startprob_posterior_ = rng.uniform(0.5, 3.0, k)
    model.transmat_posterior_ = rng.uniform(1.0, 30.0, (k, k))
    model.emissionprob_posterior_ = rng.uniform(1.0, 30.0, (k, m))
    return model


def both(k, m, n_iter, params="ste", implementation="log"):
    vhmm = pytest.importorskip("hmmlearn.vhmm")
    theirs = set_start(vhmm.VariationalCategoricalHMM(
        k, n_features=m, n_iter=n_iter, tol=-np.inf, init_params="", params=params,
        implementation=implementation), k, m)
    ours = set_start(VariationalCategoricalHMM(
        k, n_features=m, n_iter=n_iter, tol=0.0, init_params="", params=params,
        implementation=implementation, on_decrease="raise"), k, m)
    return theirs, ours


def assert_close(actual, desired, rtol=RTOL):
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=0)


def path_logprob(model, X, lengths, states):
    """``log p(X, states)`` under the posterior means, summed over the sequences."""
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    lp = 0.0
    for q in range(len(lengths)):
        for t in range(bounds[q], bounds[q + 1]):
            step = (model.startprob_[states[t]] if t == bounds[q]
                    else model.transmat_[states[t - 1], states[t]])
            lp += np.log(step) + np.log(model.emissionprob_[states[t], X[t, 0]])
    return lp


# --------------------------------------------------------------------------- hmmlearn trajectories


@pytest.mark.parametrize("n_iter", [1, 10])
@pytest.mark.parametrize("k", [3, 5])  # K <= 4 and K > 4 take different kernels
def test_trajectory_equals_hmmlearn(n_iter, k):
    m = 4
    X, lengths = symbols(k, k=k, m=m)
    theirs, ours = both(k, m, n_iter)
    theirs.fit(X, lengths)
    quiet_fit(ours, X, lengths)
    for name in ATTRIBUTES + MEANS:
        assert_close(getattr(ours, name), getattr(theirs, name))
    # the lower bound: hmmlearn's history is the total ELBO, constants included
    assert len(ours.monitor_.history) == len(theirs.monitor_.history) == n_iter
    assert_close(np.array(ours.monitor_.history), np.array(theirs.monitor_.history))
    assert_close(ours.lower_bounds_ * X.shape[0], np.array(theirs.monitor_.history))
    # score, posteriors and decoding use the posterior means, as hmmlearn's
    assert_close(ours.score(X, lengths), theirs.score(X, lengths))
    np.testing.assert_allclose(ours.predict_proba(X, lengths), theirs.predict_proba(X, lengths),
                               atol=1e-10)
    logprob, states = ours.decode(X, lengths)
    their_logprob, their_states = theirs.decode(X, lengths)
    assert_close(logprob, their_logprob)
    # paths of equal probability (tied to round-off) may differ; both are most probable
    assert_close(path_logprob(ours, X, lengths, states),
                 path_logprob(ours, X, lengths, their_states))
    assert_close(path_logprob(ours, X, lengths, states), logprob)
    np.testing.assert_array_equal(ours.predict(X, lengths), states)


@pytest.mark.parametrize("params", ["e", "st", "t"])
def test_parameter_subsets_equal_hmmlearn(params):
    k, m = 3, 4
    X, lengths = symbols(7, k=k, m=m)
    theirs, ours = both(k, m, 6, params=params, implementation="scaling")
    # hmmlearn 0.3.3 sets transmat_ only in the M-step of 't', and its fit reads it after
    # every iteration (AttributeError without 't'): give it the starting posterior means
    for name, mean in zip(ATTRIBUTES, MEANS):
        post = getattr(theirs, name)
        setattr(theirs, mean, post / post.sum(axis=-1, keepdims=True))
    theirs.fit(X, lengths)
    quiet_fit(ours, X, lengths)
    start = set_start(VariationalCategoricalHMM(k), k, m)
    for letter, name in zip("ste", ATTRIBUTES):
        assert_close(getattr(ours, name), getattr(theirs, name))
        if letter not in params:  # left as it started
            np.testing.assert_array_equal(getattr(ours, name), getattr(start, name))
    assert_close(np.array(ours.monitor_.history), np.array(theirs.monitor_.history))


# --------------------------------------------------------------------------- the bound itself


def test_lower_bound_by_enumerating_paths():
    """log Z~ over all K^T paths of the subnormalised probabilities, minus the KL divergences."""
    k, m = 2, 3
    X = np.array([[0], [2], [1], [1], [0], [2]])
    lengths = [4, 2]
    model = set_start(VariationalCategoricalHMM(k, n_features=m, init_params="", max_iter=1,
                                                tol=0.0), k, m, seed=3)
    log_start = digamma(model.startprob_posterior_) - digamma(model.startprob_posterior_.sum())
    log_trans = (digamma(model.transmat_posterior_)
                 - digamma(model.transmat_posterior_.sum(axis=1, keepdims=True)))
    log_emit = (digamma(model.emissionprob_posterior_)
                - digamma(model.emissionprob_posterior_.sum(axis=1, keepdims=True)))
    log_z = 0.0
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    for q in range(len(lengths)):
        x = X[bounds[q]:bounds[q + 1], 0]
        terms = []
        for path in itertools.product(range(k), repeat=x.size):
            lp = log_start[path[0]] + log_emit[path[0], x[0]]
            for t in range(1, x.size):
                lp += log_trans[path[t - 1], path[t]] + log_emit[path[t], x[t]]
            terms.append(lp)
        log_z += logsumexp(terms)
    elbo = log_z - (kl_dirichlet(model.startprob_posterior_, model.startprob_prior_)
                    + kl_dirichlet(model.transmat_posterior_, model.transmat_prior_)
                    + kl_dirichlet(model.emissionprob_posterior_, model.emissionprob_prior_))
    quiet_fit(model, X, lengths)
    assert_close(model.monitor_.history[0], elbo, rtol=1e-12)
    assert_close(model.lower_bounds_[0], elbo / X.shape[0], rtol=1e-12)


def test_kl_dirichlet_is_zero_at_the_prior_and_positive_elsewhere():
    p = np.array([[0.5, 2.0, 1.0], [3.0, 0.2, 1.0]])
    assert kl_dirichlet(p, p) == pytest.approx(0.0, abs=1e-12)
    assert kl_dirichlet(p + 1.0, p) > 0
    assert kl_dirichlet(p, p + 1.0) > 0


# --------------------------------------------------------------------------- monotonicity


@pytest.mark.parametrize("seed", range(6))
def test_elbo_never_decreases(seed):
    k = 2 + seed % 4  # 2 to 5 states
    X, lengths = symbols(seed, k=3, m=5, lengths=(150, 90, 1, 60))
    model = VariationalCategoricalHMM(k, random_state=seed, max_iter=150, tol=1e-10,
                                      on_decrease="raise")
    quiet_fit(model, X, lengths)  # raises LikelihoodDecreaseError on any fall
    assert np.all(np.diff(model.lower_bounds_) >= -1e-12 * np.abs(model.lower_bounds_[1:]))
    assert model.n_iter_ == len(model.lower_bounds_) == model.monitor_.iter
    for name, mean in zip(ATTRIBUTES, MEANS):
        post = getattr(model, name)
        assert np.all(post > 0)
        np.testing.assert_allclose(getattr(model, mean).sum(axis=-1), 1.0)


def test_small_priors_and_n_init_keep_the_elbo_monotone():
    X, lengths = symbols(11, k=3, m=6)
    model = VariationalCategoricalHMM(4, 0.05, 0.05, 0.05, random_state=2, max_iter=60,
                                      tol=1e-10, n_init=3, on_decrease="raise")
    quiet_fit(model, X, lengths)
    assert np.all(np.diff(model.lower_bounds_) >= -1e-12 * np.abs(model.lower_bounds_[1:]))
    assert np.all(model.startprob_prior_ == 0.05)


# --------------------------------------------------------------------------- API


def test_hmmlearn_constructor_order_and_n_iter():
    X, lengths = symbols(4)
    positional = VariationalCategoricalHMM(3, None, None, None, None, "viterbi", 0, 7)
    keyword = VariationalCategoricalHMM(3, random_state=0, n_iter=7)
    assert positional.max_iter == keyword.max_iter == 7
    assert "n_iter" not in keyword.get_params()
    quiet_fit(positional, X, lengths)
    quiet_fit(keyword, X, lengths)
    np.testing.assert_array_equal(positional.lower_bounds_, keyword.lower_bounds_)
    assert positional.n_iter_ == 7
    # hmmlearn's defaults: priors 1/K (start, transitions) and 1/M (emissions)
    np.testing.assert_allclose(positional.startprob_prior_, np.full(3, 1 / 3))
    np.testing.assert_allclose(positional.transmat_prior_, np.full((3, 3), 1 / 3))
    np.testing.assert_allclose(positional.emissionprob_prior_, np.full((3, 4), 1 / 4))
    with pytest.raises(ValueError, match="n_iter"):
        VariationalCategoricalHMM(3, max_iter=5, n_iter=7)
    with pytest.raises(TypeError, match="n_iterations"):
        VariationalCategoricalHMM(3, n_iterations=7)
    sklearn_base = pytest.importorskip("sklearn.base")
    clone = sklearn_base.clone(keyword)
    assert clone.get_params() == keyword.get_params()
    assert "max_iter=7" in repr(keyword)


def test_list_of_sequences_equals_concatenation():
    X, lengths = symbols(5)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    pieces = [X[bounds[q]:bounds[q + 1]] for q in range(len(lengths))]
    a = quiet_fit(VariationalCategoricalHMM(3, random_state=1, max_iter=8), X, lengths)
    b = quiet_fit(VariationalCategoricalHMM(3, random_state=1, max_iter=8), pieces)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-12)
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-10)


def test_inference_uses_the_posterior_means():
    X, lengths = symbols(6)
    model = quiet_fit(VariationalCategoricalHMM(3, random_state=0, max_iter=20), X, lengths)
    point = CategoricalHMM(3, init_params="")
    point.startprob_ = model.startprob_
    point.transmat_ = model.transmat_
    point.emissionprob_ = model.emissionprob_
    assert model.score(X, lengths) == pytest.approx(point.score(X, lengths), rel=1e-12)
    np.testing.assert_array_equal(model.predict(X, lengths), point.predict(X, lengths))
    np.testing.assert_allclose(model.predict_proba(X, lengths), point.predict_proba(X, lengths))
    sample, states = model.sample(30, random_state=0)
    assert sample.shape == (30, 1) and states.shape == (30,)
    assert model.n_features_ == 4 and model.n_features_in_ == 1


def test_user_priors_are_used_when_left_out_of_init_params():
    X, lengths = symbols(8)
    k, m = 3, 4
    model = set_start(VariationalCategoricalHMM(k, init_params="", max_iter=1), k, m)
    prior = model.emissionprob_prior_.copy()
    quiet_fit(model, X, lengths)
    np.testing.assert_array_equal(model.emissionprob_prior_, prior)
    np.testing.assert_allclose(model.emissionprob_posterior_.sum(), prior.sum() + X.shape[0])


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("X, match", [
    (np.array([[0.5], [1.0], [2.0]]), "integer symbols"),
    (np.array([[-1], [1], [2]]), "symbols >= 0"),
    (np.array([[0, 1], [1, 0], [2, 2]]), r"shape \(n_samples, 1\)"),
    (np.array([[np.nan], [1.0], [2.0]]), "NaN"),
    (np.array([0, 1, 2]), "2-d"),
])
def test_bad_symbols(X, match):
    with pytest.raises(ValueError, match=match):
        VariationalCategoricalHMM(2).fit(X)


@pytest.mark.parametrize("kwargs, match", [
    (dict(startprob_prior=-1.0), "startprob_prior"),
    (dict(transmat_prior=0.0), "transmat_prior"),
    (dict(emissionprob_prior=np.ones(5)), "emissionprob_prior"),
    (dict(emissionprob_prior=np.inf), "emissionprob_prior"),
    (dict(n_features=2), "out of range"),
    (dict(params="stx"), "params"),
    (dict(implementation="fast"), "implementation"),
    (dict(n_components=0), "n_components"),
    (dict(n_components=9), "n_samples"),
    (dict(init_params="st"), "emissionprob_posterior_ is not set"),
    (dict(lengths=[2, 2]), "lengths"),
])
def test_bad_settings(kwargs, match):
    kwargs = dict(kwargs)
    lengths = kwargs.pop("lengths", None)
    with pytest.raises(ValueError, match=match):
        VariationalCategoricalHMM(**{"n_components": 2, **kwargs}).fit(
            np.array([[0], [1], [2], [1], [0]]), lengths)


def test_bad_posteriors_set_by_the_user():
    X = np.array([[0], [1], [2], [1]])
    model = set_start(VariationalCategoricalHMM(2, n_features=3, init_params=""), 2, 3)
    model.transmat_posterior_ = np.zeros((2, 2))
    with pytest.raises(ValueError, match="transmat_posterior_"):
        model.fit(X)
    model = set_start(VariationalCategoricalHMM(2, n_features=3, init_params=""), 2, 3)
    model.emissionprob_posterior_ = np.ones((2, 4))
    with pytest.raises(ValueError, match="emissionprob_posterior_"):
        model.fit(X)


def test_unfitted_model_raises():
    with pytest.raises(NotFittedError):
        VariationalCategoricalHMM(2).score(np.array([[0], [1]]))
