"""hmmlearn compatibility of emlab's GaussianHMM, CategoricalHMM and PoissonHMM.

An hmmlearn-style script runs unchanged on both libraries, and from the same
start ten Baum-Welch iterations of emlab and hmmlearn 0.3.3 agree to 1e-6
relative (parameters and score), hmmlearn's priors included.
"""

import types
import warnings

import numpy as np
import pytest

from emlab import CategoricalHMM, ConvergenceWarning, GaussianHMM, PoissonHMM

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
RTOL = 1e-6


def quiet(fit, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(*args)


def gaussian_data(seed=0, d=2):
    rng = np.random.default_rng(seed)
    lengths = [70, 45, 90]
    X = rng.normal(size=(sum(lengths), d)) + 2.5 * rng.integers(0, 3, size=(sum(lengths), 1))
    return X, lengths


# --------------------------------------------------------------------- one script, two libraries


def hmmlearn_script(lib, X, lengths, symbols, counts):
    """Code written for hmmlearn: positional arguments, n_iter, implementation, verbose=True."""
    out = {}
    model = lib.GaussianHMM(3, "full", n_iter=20, tol=1e-4, implementation="scaling",
                            verbose=True, random_state=0)
    model.fit(X, lengths)
    out["gaussian"] = (model.covars_, model.get_stationary_distribution(), model.transmat_,
                       model.monitor_, model.score(X, lengths))
    cat = lib.CategoricalHMM(2, 1.0, 1.0, n_iter=15, implementation="log", random_state=0)
    cat.fit(symbols)
    out["categorical"] = (cat.get_stationary_distribution(), cat.transmat_, cat.monitor_)
    poi = lib.PoissonHMM(2, 1.0, 1.0, 0.0, 0.0, "viterbi", 0, n_iter=15)
    poi.fit(counts)
    out["poisson"] = (poi.get_stationary_distribution(), poi.transmat_, poi.monitor_)
    return out


def check_script_results(out, d):
    covars, stationary, transmat, monitor, score = out["gaussian"]
    assert covars.shape == (3, d, d)
    np.testing.assert_allclose(covars, np.swapaxes(covars, 1, 2))
    np.testing.assert_allclose(stationary @ transmat, stationary, atol=1e-10)
    assert stationary.sum() == pytest.approx(1.0)
    assert 2 <= len(monitor.history) == monitor.iter <= 20
    assert monitor.history[-1] == pytest.approx(score, rel=1e-2)  # the last E-step's
    assert isinstance(bool(monitor.converged), bool)
    for name in ("categorical", "poisson"):
        stationary, transmat, monitor = out[name]
        np.testing.assert_allclose(stationary @ transmat, stationary, atol=1e-10)
        assert len(monitor.history) == monitor.iter >= 1
        assert np.all(np.diff(np.asarray(monitor.history)) >= -1e-8)


def test_an_hmmlearn_script_runs_unchanged(capsys):
    X, lengths = gaussian_data()
    rng = np.random.default_rng(1)
    symbols = rng.integers(0, 3, size=(200, 1))
    counts = rng.poisson(rng.choice([2.0, 12.0], size=(200, 1)), size=(200, 2))
    emlab = types.SimpleNamespace(GaussianHMM=GaussianHMM, CategoricalHMM=CategoricalHMM,
                                  PoissonHMM=PoissonHMM)
    ours = quiet(hmmlearn_script, emlab, X, lengths, symbols, counts)
    printed = capsys.readouterr().out
    check_script_results(ours, 2)
    # verbose=True is a line per iteration (on stdout; hmmlearn writes to stderr)
    assert printed.count("  iteration ") == ours["gaussian"][3].iter
    hmm = pytest.importorskip("hmmlearn.hmm")
    check_script_results(quiet(hmmlearn_script, hmm, X, lengths, symbols, counts), 2)


# --------------------------------------------------------------------------- the new arguments


@pytest.mark.parametrize("cls", [GaussianHMM, CategoricalHMM, PoissonHMM])
def test_n_iter_is_max_iter(cls):
    model = cls(2, n_iter=7)
    assert model.max_iter == 7 and "n_iter" not in model.get_params()
    assert cls(2, n_iter=7, max_iter=7).max_iter == 7
    with pytest.raises(ValueError, match="n_iter=7 and max_iter=9 disagree"):
        cls(2, n_iter=7, max_iter=9)
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_iters'"):
        cls(2, n_iters=7)
    assert "max_iter=7" in repr(model)
    # hmmlearn code also sets it afterwards, by set_params or by assignment
    assert model.set_params(n_iter=11) is model and model.max_iter == 11 == model.n_iter
    model.n_iter = 3
    assert model.max_iter == 3 and model.get_params()["max_iter"] == 3
    with pytest.raises(ValueError, match="n_iter=4 and max_iter=5 disagree"):
        model.set_params(n_iter=4, max_iter=5)
    with pytest.raises(ValueError, match="invalid parameter 'n_iters'"):
        model.set_params(n_iters=4)


def test_assigned_n_iter_limits_the_fit(rng):
    X = rng.normal(size=(300, 2))
    model = GaussianHMM(3, random_state=0, tol=0.0)
    model.n_iter = 4
    with pytest.warns(ConvergenceWarning, match="max_iter=4"):
        model.fit(X)
    assert model.n_iter_ == 4 == model.monitor_.n_iter


def test_positional_arguments_follow_hmmlearn():
    model = GaussianHMM(3, "full", 1e-2, 2.0, 3.0, 0.5, 0.1, 0.2, 4.0, "map", 5)
    assert (model.covariance_type, model.min_covar, model.startprob_prior, model.transmat_prior,
            model.means_prior, model.means_weight, model.covars_prior, model.covars_weight,
            model.algorithm, model.random_state) == ("full", 1e-2, 2.0, 3.0, 0.5, 0.1, 0.2, 4.0,
                                                     "map", 5)
    cat = CategoricalHMM(2, 2.0, 3.0)
    assert (cat.startprob_prior, cat.transmat_prior) == (2.0, 3.0)
    poi = PoissonHMM(2, 2.0, 3.0, 1.0, 0.5, "map", 1)
    assert (poi.startprob_prior, poi.transmat_prior, poi.lambdas_prior, poi.lambdas_weight,
            poi.algorithm, poi.random_state) == (2.0, 3.0, 1.0, 0.5, "map", 1)


def test_get_params_and_clone_keep_the_new_arguments():
    sklearn_base = pytest.importorskip("sklearn.base")
    model = GaussianHMM(2, "tied", min_covar=0.1, covars_prior=0.5, implementation="scaling",
                        verbose=True, n_iter=4)
    params = model.get_params()
    assert params["min_covar"] == 0.1 and params["implementation"] == "scaling"
    assert params["verbose"] is True and params["max_iter"] == 4
    assert sklearn_base.clone(model).get_params() == params


@pytest.mark.parametrize("implementation", ["log", "scaling"])
def test_implementation_changes_nothing(implementation):
    X, lengths = gaussian_data()
    base = quiet(GaussianHMM(2, random_state=0, max_iter=5).fit, X, lengths)
    other = quiet(GaussianHMM(2, random_state=0, max_iter=5, implementation=implementation).fit,
                  X, lengths)
    np.testing.assert_array_equal(base.means_, other.means_)


@pytest.mark.parametrize("cls", [GaussianHMM, CategoricalHMM, PoissonHMM])
def test_bad_implementation_and_verbose_are_named(cls):
    X = np.arange(20).reshape(-1, 1) % 3
    with pytest.raises(ValueError, match="implementation must be 'log' or 'scaling'"):
        cls(2, implementation="fast").fit(X)
    with pytest.raises(ValueError, match="verbose"):
        cls(2, verbose=-1).fit(X)


def test_verbose_false_is_silent(capsys):
    X, lengths = gaussian_data()
    quiet(GaussianHMM(2, max_iter=3, verbose=False, random_state=0).fit, X, lengths)
    assert capsys.readouterr().out == ""


def test_bad_gaussian_prior_settings_are_named():
    X, _ = gaussian_data()
    for kwargs, match in [(dict(min_covar=-1.0), "min_covar"),
                          (dict(means_weight=-1.0), "means_weight"),
                          (dict(covars_prior=np.nan), "covars_prior"),
                          (dict(covars_weight=-2.0), "covars_weight"),
                          (dict(means_prior=[1.0, 2.0, 3.0], means_weight=1.0), "means_prior")]:
        with pytest.raises(ValueError, match=match):
            GaussianHMM(2, **kwargs).fit(X)


# --------------------------------------------------------------------------- covars_, stationary


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_covars_is_full_as_hmmlearn(covariance_type):
    k, d = 3, 2
    model = GaussianHMM(k, covariance_type)
    model.means_ = np.zeros((k, d))
    full = np.array([[[2.0, 0.5], [0.5, 1.0]], [[1.0, 0.0], [0.0, 3.0]], [[4.0, 1.0], [1.0, 2.0]]])
    given = {"full": full, "tied": full[0], "diag": np.array([np.diag(c) for c in full]),
             "spherical": np.array([1.0, 2.0, 3.0])}[covariance_type]
    model.covars_ = given
    np.testing.assert_array_equal(model.covariances_, given)
    expected = {"full": full, "tied": np.tile(full[0], (k, 1, 1)),
                "diag": np.array([np.diag(np.diag(c)) for c in full]),
                "spherical": np.array([1.0, 2.0, 3.0])[:, None, None] * np.eye(d)}[covariance_type]
    np.testing.assert_array_equal(model.covars_, expected)
    with pytest.raises(ValueError, match="covars_ must have shape"):
        model.covars_ = np.ones((k + 1, d, d, 1))
    hmm = pytest.importorskip("hmmlearn.hmm")
    peer = hmm.GaussianHMM(k, covariance_type)
    peer.n_features = d
    peer.covars_ = given
    np.testing.assert_array_equal(model.covars_, peer.covars_)


def test_covars_setter_rejects_what_hmmlearn_rejects():
    model = GaussianHMM(2, "diag")
    with pytest.raises(ValueError, match="must be positive"):
        model.covars_ = np.array([[1.0, -1.0], [1.0, 1.0]])
    model = GaussianHMM(2, "full")
    with pytest.raises(ValueError, match="positive-definite"):
        model.covars_ = np.array([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])
    assert not hasattr(GaussianHMM(2), "covars_")


def test_stationary_distribution_solves_pi_p_equals_pi():
    rng = np.random.default_rng(3)
    model = CategoricalHMM(4)
    model.transmat_ = rng.dirichlet(np.ones(4), size=4)
    pi = model.get_stationary_distribution()
    # a linear solve: pi (P - I) = 0 with sum(pi) = 1
    a = np.vstack([model.transmat_.T - np.eye(4), np.ones(4)])
    solved = np.linalg.lstsq(a, np.r_[np.zeros(4), 1.0], rcond=None)[0]
    np.testing.assert_allclose(pi, solved, rtol=1e-10)
    power = np.full(4, 0.25) @ np.linalg.matrix_power(model.transmat_, 200)
    np.testing.assert_allclose(pi, power, rtol=1e-10)
    hmm = pytest.importorskip("hmmlearn.hmm")
    peer = hmm.CategoricalHMM(4)
    peer.transmat_ = model.transmat_
    np.testing.assert_allclose(pi, peer.get_stationary_distribution(), rtol=1e-10)


def test_monitor_after_fit():
    X, lengths = gaussian_data()
    model = GaussianHMM(2, random_state=0, tol=1e-6, max_iter=200).fit(X, lengths)
    monitor = model.monitor_
    np.testing.assert_allclose(np.asarray(monitor.history), model.lower_bounds_ * X.shape[0])
    assert monitor.iter == model.n_iter_ == len(monitor.history)
    assert monitor.converged is model.converged_ is True
    assert (monitor.tol, monitor.n_iter, monitor.verbose) == (1e-6, 200, False)
    assert monitor.history[-1] == pytest.approx(model.score(X, lengths), rel=1e-6)
    with pytest.warns(ConvergenceWarning):
        stopped = GaussianHMM(2, random_state=0, n_iter=2, tol=0.0).fit(X, lengths)
    assert stopped.monitor_.iter == 2 and not stopped.monitor_.converged  # hmmlearn says True


# --------------------------------------------------------------------------- hmmlearn trajectories


def agree(ours, peer, names, X, lengths):
    for name in names:
        a, b = np.asarray(getattr(ours, name)), np.asarray(getattr(peer, name))
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * np.max(np.abs(b)),
                                   err_msg=name)
    assert ours.score(X, lengths) == pytest.approx(peer.score(X, lengths), rel=RTOL)


PRIORS = [
    # hmmlearn's defaults: covars_prior=1e-2, covars_weight=1 (emlab's default prior is flat)
    dict(covars_prior=1e-2),
    dict(means_prior=0.5, means_weight=2.0, covars_prior=0.3, covars_weight=4.0),
]


@pytest.mark.parametrize("prior", PRIORS, ids=["hmmlearn-defaults", "informative"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_ten_iterations_equal_hmmlearn(covariance_type, prior):
    hmm = pytest.importorskip("hmmlearn.hmm")
    X, lengths = gaussian_data()
    rng = np.random.default_rng(5)
    k, d = 3, 2
    start, trans = rng.dirichlet(np.ones(k)), rng.dirichlet(3 * np.ones(k), size=k)
    means = 2.0 * rng.normal(size=(k, d))
    a = rng.normal(size=(k, d, d))
    full = a @ np.swapaxes(a, 1, 2) / d + np.eye(d)
    cov = {"full": full, "tied": full[0], "diag": np.array([np.diag(c) for c in full]),
           "spherical": np.array([np.trace(c) / d for c in full])}[covariance_type]
    hmm_prior = {key: v for key, v in prior.items() if key != "covars_prior" or v != 1e-2}
    peer = hmm.GaussianHMM(k, covariance_type, n_iter=10, tol=-np.inf, init_params="",
                           params="stmc", **hmm_prior)
    # reg_covar=0: hmmlearn adds nothing to the M-step's covariances (its min_covar only
    # enters the initial covariance, which init_params="" skips)
    ours = GaussianHMM(k, covariance_type, n_iter=10, tol=0.0, init_params="", params="stmc",
                       reg_covar=0.0, on_decrease="raise", **prior)
    for model in (peer, ours):
        model.startprob_, model.transmat_, model.means_, model.covars_ = start, trans, means, cov
        quiet(model.fit, X, lengths)
    agree(ours, peer, ["startprob_", "transmat_", "means_"], X, lengths)
    # hmmlearn 0.3.3 stores fitted 'spherical' variances as (K, d), so compare those
    theirs = peer._covars_[:, 0] if covariance_type == "spherical" else peer._covars_
    np.testing.assert_allclose(ours.covariances_, theirs, rtol=RTOL)
    assert len(ours.monitor_.history) == len(peer.monitor_.history) == 10
    # the objective is the log-likelihood plus the prior's log-density, and it never fell
    assert np.all(np.diff(np.asarray(ours.monitor_.history)) >= 0)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_min_covar_enters_the_initial_covariance_as_in_hmmlearn(covariance_type):
    hmm = pytest.importorskip("hmmlearn.hmm")
    X, lengths = gaussian_data()
    rng = np.random.default_rng(6)
    k = 3
    start, trans = rng.dirichlet(np.ones(k)), rng.dirichlet(3 * np.ones(k), size=k)
    means = X[rng.choice(X.shape[0], k, replace=False)]
    peer = hmm.GaussianHMM(k, covariance_type, min_covar=0.5, n_iter=10, tol=-np.inf,
                           init_params="c")
    ours = GaussianHMM(k, covariance_type, min_covar=0.5, n_iter=10, tol=0.0, init_params="c",
                       covars_prior=1e-2, reg_covar=0.0)
    for model in (peer, ours):
        model.startprob_, model.transmat_, model.means_ = start, trans, means
        quiet(model.fit, X, lengths)
    agree(ours, peer, ["transmat_", "means_", "covars_"], X, lengths)


def test_categorical_ten_iterations_equal_hmmlearn():
    hmm = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(7)
    k, m, lengths = 3, 4, [60, 80, 35]
    X = rng.integers(0, m, size=(sum(lengths), 1))
    start, trans = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k), size=k)
    emission = rng.dirichlet(np.ones(m), size=k)
    peer = hmm.CategoricalHMM(k, 2.0, 1.5, emissionprob_prior=1.2, n_features=m, n_iter=10,
                              tol=-np.inf, init_params="")
    ours = CategoricalHMM(k, 2.0, 1.5, emissionprob_prior=1.2, n_features=m, n_iter=10,
                          tol=0.0, init_params="", on_decrease="raise")
    for model in (peer, ours):
        model.startprob_, model.transmat_, model.emissionprob_ = start, trans, emission
        quiet(model.fit, X, lengths)
    agree(ours, peer, ["startprob_", "transmat_", "emissionprob_"], X, lengths)


def test_poisson_ten_iterations_equal_hmmlearn():
    hmm = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(8)
    k, lengths = 3, [50, 90, 40]
    n = sum(lengths)
    X = rng.poisson(rng.choice([1.0, 6.0, 15.0], size=(n, 1)), size=(n, 2))
    start, trans = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k), size=k)
    lambdas = rng.uniform(1, 12, size=(k, 2))
    peer = hmm.PoissonHMM(k, n_iter=10, tol=-np.inf, init_params="")
    ours = PoissonHMM(k, n_iter=10, tol=0.0, init_params="", on_decrease="raise")
    for model in (peer, ours):
        model.startprob_, model.transmat_, model.lambdas_ = start, trans, lambdas
        quiet(model.fit, X, lengths)
    agree(ours, peer, ["startprob_", "transmat_", "lambdas_"], X, lengths)
    np.testing.assert_allclose(np.asarray(ours.monitor_.history), peer.monitor_.history,
                               rtol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_the_objective_holds_the_prior_and_never_falls(covariance_type):
    X, lengths = gaussian_data()
    prior = dict(means_prior=0.5, means_weight=2.0, covars_prior=0.3, covars_weight=4.0)
    start = quiet(GaussianHMM(3, covariance_type, max_iter=2, random_state=0).fit, X, lengths)
    one = GaussianHMM(3, covariance_type, max_iter=1, init_params="", **prior)
    one.startprob_, one.transmat_ = start.startprob_, start.transmat_
    one.means_, one.covariances_ = start.means_, start.covariances_
    expected = start.score(X, lengths) + one._log_emission_prior(one._current_params().emission)
    quiet(one.fit, X, lengths)
    assert one.monitor_.history[0] == pytest.approx(expected, rel=1e-12)
    # covariances learned with the means fixed ('c' without 'm'): still monotone (hmmlearn
    # 0.3.3 skips the statistics its update needs there, and its likelihood falls)
    for params in ("stc", "stmc"):
        model = GaussianHMM(3, covariance_type, max_iter=15, tol=0.0, init_params="",
                            params=params, on_decrease="raise", **prior)
        model.startprob_, model.transmat_ = start.startprob_, start.transmat_
        model.means_, model.covariances_ = start.means_, start.covariances_
        quiet(model.fit, X, lengths)
        assert np.all(np.diff(model.lower_bounds_) >= -1e-12)
