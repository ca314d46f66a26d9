"""emlab.GaussianHMM, CategoricalHMM, PoissonHMM: Baum-Welch against references and hmmlearn,
invariants, fixed parameters, errors."""

import warnings

import numba
import numpy as np
import pytest

import reference
from emlab import (
    CategoricalHMM,
    ConvergenceWarning,
    GaussianHMM,
    NotFittedError,
    PoissonHMM,
)
from emlab._covariance import MODELS

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def quiet_fit(model, X, lengths=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, lengths)


def gaussian_truth(k=3, d=2, covariance_type="full", seed=0, spread=4.0):
    rng = np.random.default_rng(seed)
    model = GaussianHMM(k, covariance_type=covariance_type, init_params="")
    model.startprob_ = rng.dirichlet(np.ones(k))
    transmat = np.full((k, k), 0.1 / (k - 1)) if k > 1 else np.ones((1, 1))
    np.fill_diagonal(transmat, 0.9 if k > 1 else 1.0)
    model.transmat_ = transmat
    model.means_ = rng.normal(scale=spread, size=(k, d))
    a = rng.normal(size=(k, d, d))
    full = a @ np.swapaxes(a, 1, 2) / d + 0.5 * np.eye(d)
    model.covariances_ = {"full": full, "tied": full.mean(axis=0),
                          "diag": np.array([np.diag(c) for c in full]),
                          "spherical": np.array([np.trace(c) / d for c in full])}[covariance_type]
    return model


def start_from(model, source):
    model.startprob_ = source.startprob_.copy()
    model.transmat_ = source.transmat_.copy()
    for name in ("means_", "covariances_", "emissionprob_", "lambdas_"):
        if hasattr(source, name):
            setattr(model, name, np.array(getattr(source, name), copy=True))
    return model


# --------------------------------------------------------------------------- a published example


def wikipedia_model():
    """Wikipedia, "Viterbi algorithm": states Healthy (0), Fever (1); observations normal (0),
    cold (1), dizzy (2)."""
    model = CategoricalHMM(2)
    model.startprob_ = np.array([0.6, 0.4])
    model.transmat_ = np.array([[0.7, 0.3], [0.4, 0.6]])
    model.emissionprob_ = np.array([[0.5, 0.4, 0.1], [0.1, 0.3, 0.6]])
    return model


def test_the_dirichlet_m_step_and_log_prior_by_hand():
    import math

    from emlab.hmm import dirichlet_map, log_dirichlet

    counts = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 4.0]])
    previous = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.25, 0.25, 0.5]])
    flat = np.ones((3, 3))
    got = dirichlet_map(counts, flat, previous)
    # row 0: a structural zero stays 0; row 1: no mass, no pseudo-counts: previous kept
    np.testing.assert_array_equal(got, [[0.75, 0.25, 0.0], [0.2, 0.3, 0.5], [0.25, 0.25, 0.5]])
    prior = np.full((3, 3), 2.0)  # one pseudo-count per entry of the support
    got = dirichlet_map(counts, prior, previous)
    np.testing.assert_allclose(got, [[4 / 6, 2 / 6, 0.0], [1 / 3, 1 / 3, 1 / 3],
                                     [3 / 11, 3 / 11, 5 / 11]], rtol=1e-15)
    full = np.array([[0.1, 0.9], [0.6, 0.4]])  # full support, every row with mass
    np.testing.assert_allclose(dirichlet_map(np.array([[1.0, 3.0], [5.0, 0.0]]), np.ones((2, 2)),
                                             full), [[0.25, 0.75], [1.0, 0.0]], rtol=1e-15)
    assert log_dirichlet(previous, flat) == 0.0
    by_hand = sum((2.0 - 1.0) * math.log(p) for p in previous.ravel() if p > 0)
    assert math.isclose(log_dirichlet(previous, prior), by_hand, rel_tol=1e-14)


def test_the_wikipedia_viterbi_example():
    model = wikipedia_model()
    X = np.array([[0], [1], [2]])
    logprob, states = model.decode(X)
    np.testing.assert_array_equal(states, [0, 0, 1])  # Healthy, Healthy, Fever
    assert np.exp(logprob) == pytest.approx(0.01512, rel=1e-12)  # the published probability
    # p(normal, cold, dizzy) summed over the 8 paths by hand: 0.03628
    assert np.exp(model.score(X)) == pytest.approx(0.03628, rel=1e-12)
    ref = reference.hmm_enumerate(np.log(model.emissionprob_.T[X[:, 0]]), model.startprob_,
                                  model.transmat_)
    np.testing.assert_allclose(model.predict_proba(X), ref[1], rtol=0, atol=1e-14)


# --------------------------------------------------------------------------- hmmlearn trajectories


def multi_sequence_gaussian(rng, d=2):
    lengths = [70, 45, 90]
    X = rng.normal(size=(sum(lengths), d)) + 2.5 * rng.integers(0, 3, size=(sum(lengths), 1))
    return X, lengths


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_trajectory_equals_hmmlearn(covariance_type, rng):
    hmm = pytest.importorskip("hmmlearn.hmm")
    X, lengths = multi_sequence_gaussian(rng)
    truth = gaussian_truth(3, 2, covariance_type, seed=1, spread=2.0)
    peer = hmm.GaussianHMM(3, covariance_type=covariance_type, n_iter=12, tol=-np.inf,
                           init_params="", covars_prior=0.0)
    peer.startprob_, peer.transmat_ = truth.startprob_, truth.transmat_
    peer.means_, peer.covars_ = truth.means_, truth.covariances_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer.fit(X, lengths)
    ours = start_from(GaussianHMM(3, covariance_type=covariance_type, reg_covar=0.0, max_iter=12,
                                  tol=0.0, init_params=""), truth)
    quiet_fit(ours, X, lengths)
    history = np.array(peer.monitor_.history)
    assert history.size == ours.lower_bounds_.size == 12
    np.testing.assert_allclose(ours.lower_bounds_ * X.shape[0], history, rtol=1e-8)
    np.testing.assert_allclose(ours.transmat_, peer.transmat_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.means_, peer.means_, rtol=1e-7, atol=1e-10)


def test_categorical_trajectory_equals_hmmlearn(rng):
    hmm = pytest.importorskip("hmmlearn.hmm")
    k, m, lengths = 3, 5, [60, 80, 35]
    X = rng.integers(0, m, size=(sum(lengths), 1))
    startprob, transmat = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k), size=k)
    emissionprob = rng.dirichlet(np.ones(m), size=k)
    peer = hmm.CategoricalHMM(k, n_features=m, n_iter=15, tol=-np.inf, init_params="")
    peer.startprob_, peer.transmat_, peer.emissionprob_ = startprob, transmat, emissionprob
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer.fit(X, lengths)
    ours = CategoricalHMM(k, n_features=m, max_iter=15, tol=0.0, init_params="")
    ours.startprob_, ours.transmat_, ours.emissionprob_ = startprob, transmat, emissionprob
    quiet_fit(ours, X, lengths)
    np.testing.assert_allclose(ours.lower_bounds_ * X.shape[0], peer.monitor_.history, rtol=1e-8)
    np.testing.assert_allclose(ours.emissionprob_, peer.emissionprob_, rtol=1e-7, atol=1e-12)


def test_poisson_trajectory_equals_hmmlearn(rng):
    hmm = pytest.importorskip("hmmlearn.hmm")
    k, lengths = 3, [50, 90, 40]
    n = sum(lengths)
    X = rng.poisson(rng.choice([1.0, 6.0, 15.0], size=(n, 1)), size=(n, 2))
    startprob, transmat = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k), size=k)
    lambdas = rng.uniform(1, 12, size=(k, 2))
    peer = hmm.PoissonHMM(k, n_iter=15, tol=-np.inf, init_params="")
    peer.startprob_, peer.transmat_, peer.lambdas_ = startprob, transmat, lambdas
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer.fit(X, lengths)
    ours = PoissonHMM(k, max_iter=15, tol=0.0, init_params="")
    ours.startprob_, ours.transmat_, ours.lambdas_ = startprob, transmat, lambdas
    quiet_fit(ours, X, lengths)
    np.testing.assert_allclose(ours.lower_bounds_ * n, peer.monitor_.history, rtol=1e-8)
    np.testing.assert_allclose(ours.lambdas_, peer.lambdas_, rtol=1e-7)


# --------------------------------------------------------------------------- one M-step by hand


def test_one_baum_welch_step_by_hand(rng):
    """startprob, transmat, means and covariances after one step, from the plain-loop reference's
    posteriors and the textbook formulas."""
    truth = gaussian_truth(3, 2, "full", seed=4, spread=2.0)
    X, _ = truth.sample(120, random_state=1)
    lengths = [50, 70]
    model = start_from(GaussianHMM(3, covariance_type="full", reg_covar=0.0, max_iter=1,
                                   init_params=""), truth)
    quiet_fit(model, X, lengths)
    log_emission = reference.log_gaussian(X, truth.means_, truth.covariances_)
    start_counts, xi, gammas, total = np.zeros(3), np.zeros((3, 3)), [], 0.0
    for rows in (slice(0, 50), slice(50, 120)):
        logprob, gamma, xi_q = reference.hmm_forward_backward(log_emission[rows], truth.startprob_,
                                                              truth.transmat_)
        start_counts += gamma[0]
        xi += xi_q
        gammas.append(gamma)
        total += logprob
    gamma = np.vstack(gammas)
    assert model.lower_bounds_[0] * 120 == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(model.startprob_, start_counts / 2, rtol=1e-10)
    np.testing.assert_allclose(model.transmat_, xi / xi.sum(axis=1, keepdims=True), rtol=1e-10)
    nk, means, scatter = reference.weighted_stats(X, gamma)
    np.testing.assert_allclose(model.means_, means, rtol=1e-10)
    np.testing.assert_allclose(model.covariances_, scatter / nk[:, None, None], rtol=1e-9)


# --------------------------------------------------------------------------- monotonicity


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_objective_never_falls(covariance_type):
    truth = gaussian_truth(3, 2, covariance_type, seed=2, spread=2.5)
    X, _ = truth.sample(600, random_state=3)
    model = GaussianHMM(3, covariance_type=covariance_type, max_iter=60, tol=1e-10,
                        random_state=0, on_decrease="raise")
    quiet_fit(model, X, [200, 400])
    lb = model.lower_bounds_
    assert lb.size > 5
    assert np.all(np.diff(lb) >= -1e-10 * np.abs(lb[1:]))


def test_priors_make_the_objective_the_log_posterior(rng):
    model = CategoricalHMM(2, startprob_prior=2.0, transmat_prior=3.0, emissionprob_prior=1.5,
                           max_iter=30, tol=1e-12, init_params="", on_decrease="raise")
    source = wikipedia_model()
    start_from(model, source)
    X = rng.integers(0, 3, size=(300, 1))
    quiet_fit(model, X, [100, 200])
    log_prior = ((2.0 - 1) * np.log(source.startprob_).sum()
                 + (3.0 - 1) * np.log(source.transmat_).sum()
                 + (1.5 - 1) * np.log(source.emissionprob_).sum())
    assert model.lower_bounds_[0] * 300 == pytest.approx(source.score(X, [100, 200]) + log_prior,
                                                         rel=1e-12)
    assert np.all(np.diff(model.lower_bounds_) >= -1e-12)
    # the MAP M-step: pseudo-counts prior - 1 added to the expected counts
    gamma = source.predict_proba(X, [100, 200])
    one = start_from(CategoricalHMM(2, startprob_prior=2.0, max_iter=1, init_params="",
                                    params="s"), source)
    quiet_fit(one, X, [100, 200])
    counts = gamma[0] + gamma[100] + 1.0
    np.testing.assert_allclose(one.startprob_, counts / counts.sum(), rtol=1e-12)


def test_reg_covar_decrease_is_covered_by_the_slack():
    """A state on a nearly constant feature: the ridge dominates its variance."""
    rng = np.random.default_rng(7)
    X = np.column_stack([rng.normal(size=400), np.r_[rng.normal(size=200), 1e-4 * rng.normal(size=200)]])
    model = GaussianHMM(2, covariance_type="diag", reg_covar=1e-3, max_iter=50, tol=1e-12,
                        random_state=0, on_decrease="raise")
    quiet_fit(model, X)
    assert np.isfinite(model.lower_bounds_).all()


# --------------------------------------------------------------------------- invariants


def test_a_state_without_posterior_mass_keeps_valid_rows():
    truth = gaussian_truth(2, 1, "diag", seed=5)
    X, _ = truth.sample(300, random_state=0)
    model = GaussianHMM(3, covariance_type="diag", init_params="", max_iter=5)
    model.startprob_ = np.array([0.5, 0.25, 0.25])
    model.transmat_ = np.full((3, 3), 1.0 / 3)
    model.means_ = np.vstack([truth.means_, [[1e4]]])  # state 2 explains nothing
    model.covariances_ = np.ones((3, 1))
    quiet_fit(model, X)
    assert np.all(np.isfinite(model.transmat_)) and np.all(np.isfinite(model.means_))
    np.testing.assert_allclose(model.transmat_.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.transmat_[2], np.full(3, 1.0 / 3))  # kept
    assert model.means_[2, 0] == 1e4 and model.covariances_[2, 0] == 1.0
    assert model.startprob_[2] == 0.0
    np.testing.assert_allclose(model.predict_proba(X)[:, 2], 0.0, atol=1e-300)


def test_left_right_zeros_stay_zero():
    k = 3
    transmat = np.array([[0.8, 0.2, 0.0], [0.0, 0.7, 0.3], [0.0, 0.0, 1.0]])
    truth = gaussian_truth(k, 1, "diag", seed=6)
    truth.startprob_ = np.array([1.0, 0.0, 0.0])
    truth.transmat_ = transmat
    X = np.vstack([truth.sample(40, random_state=s)[0] for s in range(5)])
    # pseudo-counts everywhere (prior 2): the zeros stay zero all the same
    model = GaussianHMM(k, covariance_type="diag", init_params="mc", max_iter=20, random_state=0,
                        startprob_prior=2.0, transmat_prior=2.0, on_decrease="raise")
    model.startprob_ = truth.startprob_.copy()
    model.transmat_ = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    quiet_fit(model, X, [40] * 5)
    assert np.all(model.transmat_[transmat == 0] == 0.0)
    assert np.all(model.startprob_[1:] == 0.0)
    np.testing.assert_allclose(model.transmat_.sum(axis=1), 1.0)


@pytest.mark.parametrize("params", ["mc", "st", "stm", "stc", "s"])
def test_parameters_left_out_of_params_stay_as_given(params):
    truth = gaussian_truth(2, 2, "full", seed=8)
    X, _ = truth.sample(300, random_state=2)
    start = gaussian_truth(2, 2, "full", seed=9)
    model = start_from(GaussianHMM(2, covariance_type="full", params=params, init_params="",
                                   max_iter=10, on_decrease="raise"), start)
    quiet_fit(model, X)
    for letter, name in [("s", "startprob_"), ("t", "transmat_"), ("m", "means_"),
                         ("c", "covariances_")]:
        same = np.array_equal(getattr(model, name), getattr(start, name))
        assert same == (letter not in params), name


def test_covariances_about_fixed_means(rng):
    """params='stc': the covariance M-step uses the fixed means, not the weighted means."""
    truth = gaussian_truth(2, 2, "full", seed=10, spread=2.0)
    X, _ = truth.sample(200, random_state=4)
    start = gaussian_truth(2, 2, "full", seed=11, spread=2.0)
    model = start_from(GaussianHMM(2, covariance_type="full", params="c", init_params="",
                                   reg_covar=0.0, max_iter=1), start)
    quiet_fit(model, X)
    _, gamma, _ = reference.hmm_forward_backward(
        reference.log_gaussian(X, start.means_, start.covariances_), start.startprob_,
        start.transmat_)
    for j in range(2):
        diff = X - start.means_[j]
        expected = (gamma[:, j, None] * diff).T @ diff / gamma[:, j].sum()
        np.testing.assert_allclose(model.covariances_[j], expected, rtol=1e-10)


def test_same_seed_same_result_whatever_the_thread_count():
    truth = gaussian_truth(4, 3, "full", seed=12)
    X = np.vstack([truth.sample(1000, random_state=s)[0] for s in range(70)])  # parallel path
    lengths = [1000] * 70
    before = numba.get_num_threads()
    fits = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            fits.append(quiet_fit(GaussianHMM(4, covariance_type="full", max_iter=3,
                                              random_state=0), X, lengths))
    finally:
        numba.set_num_threads(before)
    one, many = fits
    np.testing.assert_array_equal(one.lower_bounds_, many.lower_bounds_)
    np.testing.assert_array_equal(one.transmat_, many.transmat_)
    np.testing.assert_array_equal(one.covariances_, many.covariances_)


def test_n_init_keeps_the_best_start():
    truth = gaussian_truth(3, 2, "diag", seed=13, spread=1.5)
    X, _ = truth.sample(400, random_state=5)
    single = quiet_fit(GaussianHMM(3, max_iter=30, random_state=0), X)
    several = quiet_fit(GaussianHMM(3, max_iter=30, n_init=4, random_state=0), X)
    assert several.lower_bounds_[-1] >= single.lower_bounds_[-1]


# --------------------------------------------------------------------------- sampling and recovery


def test_sample_shapes_and_recovery_of_the_truth():
    truth = gaussian_truth(2, 2, "full", seed=14, spread=3.0)
    truth.transmat_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    X, states = truth.sample(20000, random_state=0)
    assert X.shape == (20000, 2) and states.shape == (20000,)
    assert set(np.unique(states)) == {0, 1}
    model = GaussianHMM(2, covariance_type="full", random_state=0, tol=1e-6).fit(X)
    order = np.argsort(model.means_[:, 0])
    truth_order = np.argsort(truth.means_[:, 0])
    np.testing.assert_allclose(model.means_[order], truth.means_[truth_order], atol=0.05)
    np.testing.assert_allclose(model.transmat_[np.ix_(order, order)],
                               truth.transmat_[np.ix_(truth_order, truth_order)], atol=0.02)
    agree = np.mean(model.predict(X) == np.argsort(order)[truth_order][states])
    assert agree > 0.95
    X1, s1 = truth.sample(5, random_state=1, currstate=1)
    assert s1[0] == 1 and X1.shape == (5, 2)


def test_categorical_and_poisson_recover_the_truth():
    cat = wikipedia_model()
    cat.transmat_ = np.array([[0.95, 0.05], [0.1, 0.9]])
    cat.emissionprob_ = np.array([[0.8, 0.15, 0.05], [0.05, 0.15, 0.8]])
    X, _ = cat.sample(10000, random_state=0)
    assert X.shape == (10000, 1) and X.dtype.kind == "i"
    fitted = CategoricalHMM(2, random_state=0, tol=1e-7, max_iter=500).fit(X)
    assert np.all(np.diff(fitted.lower_bounds_) >= -1e-12 * np.abs(fitted.lower_bounds_[1:]))
    order = np.argsort(fitted.emissionprob_[:, 0])[::-1]
    np.testing.assert_allclose(fitted.emissionprob_[order], cat.emissionprob_, atol=0.03)
    pois = PoissonHMM(2, init_params="")
    pois.startprob_ = np.array([0.5, 0.5])
    pois.transmat_ = np.array([[0.9, 0.1], [0.1, 0.9]])
    pois.lambdas_ = np.array([[1.0, 8.0], [10.0, 2.0]])
    X, states = pois.sample(8000, random_state=0)
    assert X.shape == (8000, 2) and states.shape == (8000,)
    fitted = PoissonHMM(2, random_state=0, tol=1e-7, max_iter=500).fit(X)
    assert np.all(np.diff(fitted.lower_bounds_) >= -1e-12 * np.abs(fitted.lower_bounds_[1:]))
    order = np.argsort(fitted.lambdas_[:, 0])
    np.testing.assert_allclose(fitted.lambdas_[order], pois.lambdas_, rtol=0.06)


# --------------------------------------------------------------------------- inference API


def test_predict_decode_score_consistency(rng):
    truth = gaussian_truth(3, 2, "diag", seed=15)
    X, _ = truth.sample(300, random_state=6)
    lengths = [100, 150, 50]
    logprob, post = truth.score_samples(X, lengths)
    assert truth.score(X, lengths) == logprob
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-14)
    np.testing.assert_array_equal(truth.predict_proba(X, lengths), post)
    vit_logprob, vit = truth.decode(X, lengths)
    np.testing.assert_array_equal(truth.predict(X, lengths), vit)
    assert vit_logprob <= logprob
    _, map_states = truth.decode(X, lengths, algorithm="map")
    np.testing.assert_array_equal(map_states, post.argmax(axis=1))
    # scores of the sequences add up; the Viterbi path's joint probability by hand
    parts = [truth.score(X[a:b]) for a, b in [(0, 100), (100, 250), (250, 300)]]
    assert logprob == pytest.approx(sum(parts), rel=1e-13)
    log_emission = reference.log_gaussian(X, truth.means_, MODELS["diag"].as_full(truth.covariances_, 3, 2))
    joint = 0.0
    for a, b in [(0, 100), (100, 250), (250, 300)]:
        path = vit[a:b]
        joint += (np.log(truth.startprob_[path[0]]) + np.log(truth.transmat_[path[:-1], path[1:]]).sum()
                  + log_emission[np.arange(a, b), path].sum())
    assert vit_logprob == pytest.approx(joint, rel=1e-12)
    n_params = 2 + 6 + 6 + 6
    assert truth.bic(X, lengths) == pytest.approx(-2 * logprob + n_params * np.log(300))
    assert truth.aic(X, lengths) == pytest.approx(-2 * logprob + 2 * n_params)


def test_get_params_set_params_and_clone():
    sklearn_base = pytest.importorskip("sklearn.base")
    model = GaussianHMM(3, covariance_type="full", transmat_prior=2.0, random_state=4)
    params = model.get_params()
    assert params["n_components"] == 3 and params["transmat_prior"] == 2.0
    copy = sklearn_base.clone(model)
    assert copy.get_params() == params and copy is not model
    model.set_params(max_iter=5)
    assert model.max_iter == 5
    model.set_params(n_iter=6)  # hmmlearn's name, stored as max_iter
    assert model.max_iter == 6 and "n_iter" not in model.get_params()
    with pytest.raises(ValueError, match="invalid parameter 'n_iters'"):
        model.set_params(n_iters=5)
    assert "covariance_type='full'" in repr(model)
    for cls in (CategoricalHMM, PoissonHMM):
        assert sklearn_base.clone(cls(2, random_state=1)).get_params() == cls(2, random_state=1).get_params()


# --------------------------------------------------------------------------- bad input


def fitted_gaussian():
    truth = gaussian_truth(2, 2, "diag", seed=16)
    X, _ = truth.sample(100, random_state=0)
    return quiet_fit(GaussianHMM(2, max_iter=3, random_state=0), X), X


@pytest.mark.parametrize("lengths, message", [
    ([50, 40], "lengths sum to 90, but X has 100 rows"),
    ([50, 0, 50], r"lengths must be positive: lengths\[1\] = 0"),
    ([120, -20], r"lengths must be positive: lengths\[1\] = -20"),
    ([[50, 50]], "lengths must be a 1-d sequence"),
    ([50.5, 49.5], "lengths must hold integers"),
])
def test_bad_lengths(lengths, message):
    model, X = fitted_gaussian()
    with pytest.raises(ValueError, match=message):
        GaussianHMM(2).fit(X, lengths)
    with pytest.raises(ValueError, match=message):
        model.score(X, lengths)


def test_bad_probabilities_set_by_the_user():
    model, X = fitted_gaussian()
    model.transmat_ = np.array([[0.5, 0.4], [0.3, 0.7]])
    with pytest.raises(ValueError, match="every row of transmat_ must sum to 1; row 0 sums to 0.9"):
        model.predict(X)
    fresh = GaussianHMM(2, init_params="mc")
    fresh.startprob_ = np.array([0.7, 0.7])
    fresh.transmat_ = np.eye(2)
    with pytest.raises(ValueError, match="startprob_ must sum to 1; it sums to 1.4"):
        fresh.fit(X)
    fresh.startprob_ = np.array([1.2, -0.2])
    with pytest.raises(ValueError, match="startprob_ must hold finite non-negative"):
        fresh.fit(X)
    with pytest.raises(ValueError, match="transmat_ is not set: set it before fit, or keep 't'"):
        GaussianHMM(2, init_params="smc").fit(X)
    with pytest.raises(ValueError, match="covariances_ is not set"):
        GaussianHMM(2, init_params="stm").fit(X)
    with pytest.raises(ValueError, match="transmat_prior must be >= 1"):
        GaussianHMM(2, transmat_prior=0.5).fit(X)


def test_bad_X():
    model, X = fitted_gaussian()
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 NaN .* row\(s\) 3"):
        GaussianHMM(2).fit(bad)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianHMM is expecting 2 features as input"):
        model.predict(np.ones((5, 3)))
    with pytest.raises(ValueError, match="n_components=5 must be <= n_samples=3"):
        GaussianHMM(5).fit(X[:3])
    with pytest.raises(NotFittedError):
        GaussianHMM(2).predict(X)
    with pytest.raises(ValueError, match="params must be a string of the letters 'stmc'"):
        GaussianHMM(2, params="stx").fit(X)
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        GaussianHMM(2, covariance_type="banana").fit(X)


def test_bad_categorical_symbols():
    model = wikipedia_model()
    with pytest.raises(ValueError, match=r"X holds symbol 3 \(row 1\), out of range for n_features=3"):
        model.predict(np.array([[0], [3], [1]]))
    with pytest.raises(ValueError, match="X must hold integer symbols; row 1 has"):
        model.predict(np.array([[0], [1.5], [1]]))
    with pytest.raises(ValueError, match="X must hold symbols >= 0"):
        model.predict(np.array([[0], [-1], [1]]))
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 1\)"):
        model.predict(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="out of range for n_features=2"):
        CategoricalHMM(2, n_features=2).fit(np.array([[0], [1], [2], [1]]))


def test_bad_poisson_counts():
    with pytest.raises(ValueError, match="X must hold non-negative counts; row 1 has"):
        PoissonHMM(2).fit(np.array([[1, 2], [-1, 0], [3, 3]]))
    with pytest.raises(ValueError, match="X must hold integer counts"):
        PoissonHMM(2).fit(np.array([[1.0, 2.0], [0.5, 0.0], [3.0, 3.0]]))


def test_zero_probability_data_is_reported():
    model = CategoricalHMM(2, init_params="st")
    model.emissionprob_ = np.array([[1.0, 0.0], [1.0, 0.0]])  # symbol 1 impossible
    with pytest.raises(FloatingPointError, match="sequence 1 has zero probability"):
        model.fit(np.array([[0], [0], [0], [1]]), [2, 2])


def test_sequence_batches_hold_whole_sequences():
    from emlab.hmm import sequence_batches

    lengths = np.array([5, 3, 40, 2, 2, 9, 1])  # the 40-row sequence spans several windows
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    batches = sequence_batches(bounds, 8)
    assert batches[0][0] == 0 and batches[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(batches, batches[1:]))  # consecutive, no gaps
    assert all(first < last for first, last in batches)
    assert sequence_batches(bounds, 1000) == [(0, len(lengths))]


@pytest.mark.parametrize("labelled", [False, True])
def test_baum_welch_in_batches_of_sequences_equals_one_pass(monkeypatch, labelled):
    # the E-step walks many sequences in batches (its memory is one batch's); the fit is the
    # fit of one pass over all the sequences, to round-off
    import emlab.hmm as hmm_module

    rng = np.random.default_rng(3)
    lengths = rng.integers(20, 80, size=40)
    X = np.concatenate([rng.normal(rng.integers(0, 3), 1.0, size=(n, 2)) for n in lengths])
    labels = None
    if labelled:
        labels = np.full(len(X), -1)
        labels[::17] = rng.integers(0, 3, size=labels[::17].size)
    fits = []
    for batch_rows in (10**9, 150):
        monkeypatch.setattr(hmm_module, "SEQUENCE_BATCH_ROWS", batch_rows)
        model = GaussianHMM(3, "full", random_state=0, n_iter=15, tol=0)
        fits.append(model.fit(X, lengths, labels=labels))
    one, batched = fits
    assert len(hmm_module.sequence_batches(np.concatenate([[0], np.cumsum(lengths)]), 150)) > 5
    np.testing.assert_allclose(batched.lower_bounds_, one.lower_bounds_, rtol=1e-12, atol=0)
    np.testing.assert_allclose(batched.means_, one.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(batched.transmat_, one.transmat_, rtol=1e-9, atol=1e-12)
