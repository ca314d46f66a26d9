"""MultinomialHMM against scipy.stats and hmmlearn (dev cross-check) from the same start."""

import logging
import warnings

import numpy as np
import pytest
from scipy.stats import multinomial

from emlab import CategoricalHMM, MultinomialHMM

K, M, TRIALS = 3, 4, 12


def truth():
    model = MultinomialHMM(K, n_trials=TRIALS, init_params="")
    model.startprob_ = np.array([0.5, 0.3, 0.2])
    model.transmat_ = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    model.emissionprob_ = np.array([[0.6, 0.2, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1],
                                    [0.1, 0.1, 0.2, 0.6]])
    return model


def data(n=600):
    X, states = truth().sample(n, random_state=3)
    return X, [200, 400]


def started(**kwargs):
    rng = np.random.default_rng(5)
    model = MultinomialHMM(K, n_trials=TRIALS, init_params="", **kwargs)
    model.startprob_ = np.full(K, 1 / K)
    model.transmat_ = np.full((K, K), 1 / K)
    e = rng.random((K, M))
    model.emissionprob_ = e / e.sum(axis=1, keepdims=True)
    return model


def test_log_emission_is_scipy_multinomial():
    X, _ = data(50)
    model = truth()
    got = model._log_emission(X.astype(float), model.emissionprob_)
    want = np.column_stack([multinomial.logpmf(X, n=TRIALS, p=p) for p in model.emissionprob_])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_one_trial_is_a_categorical_hmm():
    X, lengths = data()
    symbols = np.argmax(np.eye(M)[np.random.default_rng(0).integers(0, M, 300)], axis=1)
    counts = np.eye(M)[symbols]
    a = started(max_iter=10, tol=0.0)
    a.n_trials = 1
    b = CategoricalHMM(K, init_params="", max_iter=10, tol=0.0)
    b.startprob_, b.transmat_, b.emissionprob_ = a.startprob_, a.transmat_, a.emissionprob_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.fit(counts)
        b.fit(symbols.reshape(-1, 1))
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(a.emissionprob_, b.emissionprob_, rtol=1e-10)


def test_against_hmmlearn_from_the_same_start():
    hmm = pytest.importorskip("hmmlearn.hmm")
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    X, lengths = data()
    ours = started(max_iter=10, tol=0.0, on_decrease="raise")
    peer = hmm.MultinomialHMM(K, n_trials=TRIALS, n_iter=10, tol=-np.inf, init_params="",
                              implementation="scaling")
    peer.startprob_, peer.transmat_ = ours.startprob_.copy(), ours.transmat_.copy()
    peer.emissionprob_ = ours.emissionprob_.copy()
    # before fitting: score, posteriors and Viterbi paths
    assert ours.score(X, lengths) == pytest.approx(peer.score(X, lengths), rel=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X, lengths), peer.predict_proba(X, lengths),
                               atol=1e-10)
    logprob, path = ours.decode(X, lengths)
    peer_logprob, peer_path = peer.decode(X, lengths)
    assert logprob == pytest.approx(peer_logprob, rel=1e-10)
    np.testing.assert_array_equal(path, peer_path)
    # ten EM iterations
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, lengths)
    peer.fit(X, lengths)
    for name in ("startprob_", "transmat_", "emissionprob_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(peer, name), rtol=1e-8, atol=1e-12,
                                   err_msg=name)
    assert ours.score(X, lengths) == pytest.approx(peer.score(X, lengths), rel=1e-10)
    assert np.all(np.diff(ours.lower_bounds_) >= -1e-12)


def test_dask_fit_equals_in_memory():
    da = pytest.importorskip("dask.array")
    X, lengths = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = started(max_iter=8, tol=0.0).fit(X, lengths)
        b = started(max_iter=8, tol=0.0).fit(da.from_array(X, chunks=150), lengths)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(b.emissionprob_, a.emissionprob_, rtol=1e-10)


def test_bad_counts_are_named():
    X, lengths = data(50)
    with pytest.raises(ValueError, match="row 0 adds up to"):
        MultinomialHMM(K, n_trials=TRIALS + 1).fit(X)
    bad = X.copy()
    bad[4, 1] = -1
    with pytest.raises(ValueError, match="non-negative counts; row 4"):
        MultinomialHMM(K).fit(bad)
    with pytest.raises(ValueError, match="one number of trials"):
        MultinomialHMM(K).fit(X).sample(5)
