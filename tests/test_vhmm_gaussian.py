"""emlab.vhmm.VariationalGaussianHMM: variational Bayes against hmmlearn 0.3.3.

From the same start (hmmlearn's priors and posteriors set on both, init_params="")
the posteriors, the posterior means and the lower-bound history agree with
hmmlearn's to 1e-8 relative for every covariance type; the ELBO never falls;
bad input raises the named errors of GaussianHMM.
"""

import warnings

import numpy as np
import pytest

from emlab.exceptions import ConvergenceWarning, NotFittedError
from emlab.vhmm import VariationalGaussianHMM

RTOL = 1e-8
COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
POSTERIORS = ("startprob_posterior_", "transmat_posterior_", "means_posterior_",
              "beta_posterior_", "dof_posterior_", "scale_posterior_")
MEANS = ("startprob_", "transmat_", "means_", "covars_")


def quiet_fit(model, X, lengths=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, lengths)


def gaussian_data(seed, d=2, k=3, lengths=(60, 35, 80, 1)):
    """Sticky state paths with unit-variance Gaussian emissions 3 apart (a length-1 sequence)."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in lengths:
        state = rng.integers(k)
        for _ in range(n):
            if rng.random() < 0.1:
                state = rng.integers(k)
            rows.append(rng.normal(size=d) + 3.0 * state)
    return np.array(rows), list(lengths)


def set_start(model, ct, k, d, seed=1):
    """Priors and posteriors (hmmlearn's attribute names), the same on both libraries."""
    rng = np.random.default_rng(seed)
    model.startprob_prior_ = np.full(k, 0.7)
    model.transmat_prior_ = rng.uniform(0.2, 2.0, (k, k))
    model.startprob_posterior_ = rng.uniform(0.5, 3.0, k)
    model.transmat_posterior_ = rng.uniform(1.0, 30.0, (k, k))
    model.means_prior_ = rng.normal(size=(k, d))
    model.beta_prior_ = rng.uniform(0.5, 2.0, k)
    model.means_posterior_ = 3 * rng.normal(size=(k, d))
    model.beta_posterior_ = rng.uniform(5.0, 30.0, k)
    if ct == "tied":
        a = rng.normal(size=(d, d))
        model.dof_prior_ = float(d + 1)
        model.dof_posterior_ = float(d + 50)
        model.scale_prior_ = 0.5 * np.eye(d) + 0.01 * a @ a.T
        model.scale_posterior_ = 50 * (np.eye(d) + 0.1 * a @ a.T)
    else:
        model.dof_prior_ = rng.uniform(d, d + 2, k)
        model.dof_posterior_ = rng.uniform(d + 10, d + 40, k)
        if ct == "full":
            a = rng.normal(size=(k, d, d))
            aat = a @ a.transpose(0, 2, 1)
            model.scale_prior_ = 0.5 * np.eye(d) + 0.01 * aat
            model.scale_posterior_ = 20 * (np.eye(d) + 0.1 * aat)
        elif ct == "diag":
            model.scale_prior_ = rng.uniform(0.2, 1.0, (k, d))
            model.scale_posterior_ = rng.uniform(10.0, 30.0, (k, d))
        else:
            model.scale_prior_ = rng.uniform(0.2, 1.0, k)
            model.scale_posterior_ = rng.uniform(10.0, 30.0, k)
    return model


def their_covars(model, ct):
    """hmmlearn reads covars_ before its first M-step: the starting posterior mean."""
    scale, dof = np.asarray(model.scale_posterior_), np.asarray(model.dof_posterior_)
    if ct == "full":
        return scale / dof[:, None, None]
    if ct == "diag":
        return scale / dof[:, None]
    return scale / dof


def assert_close(actual, desired, rtol=RTOL):
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=0)


@pytest.mark.parametrize("n_iter", [1, 10])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_trajectory_equals_hmmlearn(ct, n_iter):
    vhmm = pytest.importorskip("hmmlearn.vhmm")
    k, d = 3, 2
    X, lengths = gaussian_data(0, d, k)
    theirs = set_start(vhmm.VariationalGaussianHMM(k, ct, n_iter=n_iter, tol=-np.inf,
                                                   init_params=""), ct, k, d)
    theirs.covars_ = their_covars(theirs, ct)
    ours = set_start(VariationalGaussianHMM(k, ct, n_iter=n_iter, tol=0.0, init_params="",
                                            on_decrease="raise"), ct, k, d)
    theirs.fit(X, lengths)
    quiet_fit(ours, X, lengths)
    for name in POSTERIORS + MEANS:
        assert_close(getattr(ours, name), getattr(theirs, name))
    assert len(ours.monitor_.history) == len(theirs.monitor_.history) == n_iter
    assert_close(np.array(ours.monitor_.history), np.array(theirs.monitor_.history))
    assert_close(ours.lower_bounds_ * X.shape[0], np.array(theirs.monitor_.history))
    assert_close(ours.score(X, lengths), theirs.score(X, lengths))
    np.testing.assert_allclose(ours.predict_proba(X, lengths), theirs.predict_proba(X, lengths),
                               atol=1e-10)
    assert_close(ours.decode(X, lengths)[0], theirs.decode(X, lengths)[0])


@pytest.mark.parametrize("params", ["stm", "st", "mc"])
def test_parameter_subsets_equal_hmmlearn(params):
    vhmm = pytest.importorskip("hmmlearn.vhmm")
    k, d, ct = 3, 2, "full"
    X, lengths = gaussian_data(4, d, k)
    theirs = set_start(vhmm.VariationalGaussianHMM(k, ct, n_iter=5, tol=-np.inf, init_params="",
                                                   params=params), ct, k, d)
    theirs.covars_ = their_covars(theirs, ct)
    theirs.startprob_ = theirs.startprob_posterior_ / theirs.startprob_posterior_.sum()
    theirs.transmat_ = theirs.transmat_posterior_ / theirs.transmat_posterior_.sum(
        axis=1, keepdims=True)
    ours = set_start(VariationalGaussianHMM(k, ct, n_iter=5, tol=0.0, init_params="",
                                            params=params, on_decrease="raise"), ct, k, d)
    theirs.fit(X, lengths)
    quiet_fit(ours, X, lengths)
    for name in POSTERIORS:
        assert_close(getattr(ours, name), getattr(theirs, name))
    assert_close(np.array(ours.monitor_.history), np.array(theirs.monitor_.history))


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_elbo_never_decreases(ct, seed):
    X, lengths = gaussian_data(seed, 3, 3)
    model = VariationalGaussianHMM(3, ct, random_state=seed, n_iter=40, tol=0.0,
                                   on_decrease="raise")
    quiet_fit(model, X, lengths)  # raises on any fall beyond round-off
    assert model.n_iter_ == 40
    assert np.all(np.diff(model.lower_bounds_) >= -1e-10)
    assert np.all(np.isfinite(model.lower_bounds_))
    assert model.covars_.shape == (3, 3, 3)


def test_default_init_and_priors():
    X, lengths = gaussian_data(5, 2, 3)
    model = quiet_fit(VariationalGaussianHMM(3, "diag", random_state=0, n_iter=20), X, lengths)
    np.testing.assert_allclose(model.means_prior_, np.tile(X.mean(axis=0), (3, 1)))
    np.testing.assert_array_equal(model.beta_prior_, np.ones(3))
    np.testing.assert_array_equal(model.dof_prior_, np.full(3, 2.0))
    np.testing.assert_array_equal(model.scale_prior_, np.full((3, 2), 1e-3))
    # the three clusters are found: means near 0, 3 and 6
    assert np.allclose(np.sort(model.means_[:, 0]), [0.0, 3.0, 6.0], atol=0.5)
    assert model.predict(X, lengths).shape == (X.shape[0],)


def test_list_of_sequences_equals_concatenation():
    X, lengths = gaussian_data(2, 2, 3)
    seqs = np.split(X, np.cumsum(lengths)[:-1])
    a = set_start(VariationalGaussianHMM(3, "full", n_iter=5, init_params="", tol=0.0), "full",
                  3, 2)
    b = set_start(VariationalGaussianHMM(3, "full", n_iter=5, init_params="", tol=0.0), "full",
                  3, 2)
    quiet_fit(a, X, lengths)
    quiet_fit(b, seqs)
    for name in POSTERIORS:
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-10)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-10)


def test_hmmlearn_constructor_order_and_n_iter():
    model = VariationalGaussianHMM(2, "tied", 1.0, 2.0, 0.0, 3.0, 4.0, 5.0, "map", 7, 12, 1e-4)
    assert (model.covariance_type, model.startprob_prior, model.transmat_prior) == ("tied", 1.0,
                                                                                    2.0)
    assert (model.means_prior, model.beta_prior, model.dof_prior, model.scale_prior) == (
        0.0, 3.0, 4.0, 5.0)
    assert (model.algorithm, model.random_state, model.max_iter, model.tol) == ("map", 7, 12,
                                                                                1e-4)
    assert VariationalGaussianHMM(2, n_iter=9).max_iter == 9
    with pytest.raises(TypeError, match="n_iterations"):
        VariationalGaussianHMM(2, n_iterations=9)


def test_bad_input():
    X, lengths = gaussian_data(3, 2, 2, lengths=(40,))
    model = quiet_fit(VariationalGaussianHMM(2, random_state=0, n_iter=3), X)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 NaN .* row\(s\) 3"):
        VariationalGaussianHMM(2).fit(bad)
    with pytest.raises(ValueError, match="X has 3 features, but VariationalGaussianHMM is "
                                         "expecting 2 features as input"):
        model.predict(np.ones((5, 3)))
    with pytest.raises(ValueError, match="n_components=5 must be <= n_samples=3"):
        VariationalGaussianHMM(5).fit(X[:3])
    with pytest.raises(NotFittedError):
        VariationalGaussianHMM(2).predict(X)
    with pytest.raises(ValueError, match="params must be a string of the letters 'stmc'"):
        VariationalGaussianHMM(2, params="stx").fit(X)
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        VariationalGaussianHMM(2, covariance_type="banana").fit(X)
    with pytest.raises(ValueError, match="means_posterior_ is not set: set it before fit"):
        VariationalGaussianHMM(2, init_params="stc").fit(X)
    with pytest.raises(ValueError, match=r"scale_prior_ must have shape \(2, 2\)"):
        VariationalGaussianHMM(2, "diag", scale_prior=np.ones(3)).fit(X)
    with pytest.raises(ValueError, match="beta_prior_ must be > 0"):
        VariationalGaussianHMM(2, beta_prior=-1.0).fit(X)
    with pytest.raises(ValueError, match="scale_prior_ must be symmetric, positive-definite"):
        VariationalGaussianHMM(2, "tied", scale_prior=-np.eye(2)).fit(X)


def test_covariance_update_without_means_is_a_named_error():
    """hmmlearn's 'c'-only update subtracts beta m m^T of unchanged means: the scale can lose
    positive definiteness (hmmlearn then runs on with NaN); emlab raises a named error."""
    X, lengths = gaussian_data(4, 2, 3)
    model = set_start(VariationalGaussianHMM(3, "full", n_iter=5, tol=0.0, init_params="",
                                             params="stc"), "full", 3, 2)
    with pytest.raises(FloatingPointError, match="not positive definite"):
        quiet_fit(model, X, lengths)


def test_dask_array_equals_in_memory():
    da = pytest.importorskip("dask.array")
    X, _ = gaussian_data(6, 2, 3, lengths=(120,))
    a = set_start(VariationalGaussianHMM(3, "diag", n_iter=4, init_params="", tol=0.0), "diag",
                  3, 2)
    b = set_start(VariationalGaussianHMM(3, "diag", n_iter=4, init_params="", tol=0.0), "diag",
                  3, 2)
    quiet_fit(a, X)
    quiet_fit(b, da.from_array(X, chunks=(120, 2)))
    for name in POSTERIORS:
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-10)
