"""The generic EM driver on a user's own model, checked against brute force."""

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import binom

from emlab import ConvergenceWarning, LikelihoodDecreaseError, LikelihoodDecreaseWarning, fit_em, run_em

TOSSES = 10


class Coins:
    """Two biased coins; each sample is the number of heads in 10 tosses of one of them."""

    def init_params(self, X, rng):
        return np.array([0.5, 0.5]), rng.uniform(0.2, 0.8, size=2)

    def e_step(self, X, params):
        w, p = params
        joint = w * binom.pmf(X[:, None], TOSSES, p)
        lik = joint.sum(axis=1)
        return np.log(lik).mean(), joint / lik[:, None]

    def m_step(self, X, resp, params):
        nk = resp.sum(axis=0)
        return nk / len(X), (resp * X[:, None]).sum(axis=0) / (TOSSES * nk)


def mean_log_lik(X, w1, p):
    return np.log(w1 * binom.pmf(X, TOSSES, p[0]) + (1 - w1) * binom.pmf(X, TOSSES, p[1])).mean()


def test_user_model_reaches_the_maximum_found_by_direct_optimisation():
    rng = np.random.default_rng(1)
    coin = rng.choice(2, size=400, p=[0.3, 0.7])
    X = rng.binomial(TOSSES, np.array([0.2, 0.75])[coin])
    result = fit_em(Coins(), X, n_init=3, random_state=0, tol=1e-12, max_iter=5000)
    assert result.converged
    assert np.all(np.diff(result.lower_bounds) >= -1e-13)
    w, p = result.params
    # an independent maximiser: Nelder-Mead on the likelihood itself
    best = minimize(lambda t: -mean_log_lik(X, t[0], t[1:]), x0=[0.4, 0.3, 0.6], method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
    assert result.lower_bounds[-1] >= -best.fun - 1e-9
    order = np.argsort(p)
    np.testing.assert_allclose(p[order], np.sort(best.x[1:]), atol=1e-4)
    # lower_bounds[t] is the objective of the parameters after t M-steps: the last M-step's
    # output scores at least as well
    assert mean_log_lik(X, w[0], p) >= result.lower_bounds[-1] - 1e-13


class Broken(Coins):
    """An M-step that is not an M-step: on its 2nd call it moves the biases by ``shift``."""

    def __init__(self, shift):
        self.shift = shift
        self.calls = 0

    def m_step(self, X, resp, params):
        self.calls += 1
        w, p = super().m_step(X, resp, params)
        return (w, p + self.shift) if self.calls == 2 else (w, p)


X_COINS = np.array([1, 2, 2, 9, 8, 9, 1, 9, 0, 10])
START = (np.array([0.5, 0.5]), np.array([0.1, 0.9]))


def test_the_guard_reports_the_iteration_of_a_decrease():
    with pytest.raises(LikelihoodDecreaseError, match="decreased at iteration 3"):
        run_em(Broken(0.05), X_COINS, START, max_iter=50, tol=0, on_decrease="raise")
    with pytest.warns(LikelihoodDecreaseWarning, match="iteration 3"):
        result = run_em(Broken(0.05), X_COINS, START, max_iter=50, tol=1e-9)
    assert [i for i, _ in result.decreases] == [3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = run_em(Broken(0.05), X_COINS, START, max_iter=50, tol=1e-9, on_decrease="ignore")
    assert quiet.decreases == result.decreases


def test_a_decrease_smaller_than_tol_is_not_convergence():
    # The sabotage lowers the objective by ~1e-9: below tol=1e-6, far above round-off.
    result = run_em(Broken(2e-5), X_COINS, START, max_iter=50, tol=1e-6, on_decrease="ignore")
    (iteration, fall), = result.decreases
    assert iteration == 3 and 1e-11 < fall < 1e-6
    assert result.n_iter > 3 and result.converged


def test_not_converging_is_reported():
    X = np.array([1, 2, 2, 9, 8, 9])
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        result = fit_em(Coins(), X, max_iter=2, tol=0, random_state=0)
    assert result.n_iter == 2 and len(result.lower_bounds) == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"max_iter": 0}, "max_iter must be >= 1"),
    ({"tol": -1.0}, "tol must be a finite number >= 0"),
    ({"on_decrease": "panic"}, "on_decrease must be one of"),
    ({"n_init": 0}, "n_init must be >= 1"),
    ({"random_state": "seed"}, "random_state must be"),
])
def test_driver_options_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_em(Coins(), np.array([1, 2, 3]), **kwargs)


def test_random_state_forms():
    from emlab._validation import check_random_state

    shared = np.random.default_rng(0)
    assert check_random_state(shared) is shared
    assert check_random_state(5).integers(1000) == np.random.default_rng(5).integers(1000)
    assert isinstance(check_random_state(np.random.RandomState(0)), np.random.Generator)
    for bad in [True, -1, 1.5, "seed"]:
        with pytest.raises(ValueError, match="random_state must be"):
            check_random_state(bad)
