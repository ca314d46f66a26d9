"""MixtureModel and HMM over the component families: monotone EM for every family, the
fused fast paths equal to the generic classes, partial labels and frozen parameters."""

import warnings

import numpy as np
import pytest

from emlab import (
    HMM,
    CategoricalHMM,
    GaussianHMM,
    GaussianMixture,
    MixtureModel,
    PoissonHMM,
)
from emlab.datasets import load_wine
from emlab.families import Bernoulli, Categorical, Exponential, Gaussian, Poisson, StudentT


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def truth_model(family, weights, **params):
    """A model with the given parameters set as attributes (as a user would)."""
    model = MixtureModel(family, len(weights), random_state=1)
    model.weights_ = np.asarray(weights, dtype=float)
    for name, value in params.items():
        setattr(model, name, np.asarray(value, dtype=float))
    return model


CASES = {
    "bernoulli": (Bernoulli(), dict(probabilities_=np.array([[0.9, 0.1, 0.8, 0.2, 0.7],
                                                             [0.1, 0.8, 0.3, 0.9, 0.2]]))),
    "poisson": (Poisson(), dict(rates_=np.array([[1.0, 6.0, 2.0], [8.0, 0.5, 3.0]]))),
    "exponential": (Exponential(), dict(rates_=np.array([[0.2, 3.0], [4.0, 0.5]]))),
    "gaussian": (Gaussian("diag"), dict(means_=np.array([[0.0, 0.0], [4.0, 4.0]]),
                                        covariances_=np.array([[1.0, 0.5], [0.7, 1.5]]))),
    "student-t": (StudentT("full"), dict(means_=np.array([[0.0, 0.0], [6.0, 6.0]]),
                                         covariances_=np.array([np.eye(2), 2 * np.eye(2)]),
                                         dofs_=np.array([[3.0, 8.0]]))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_family_climbs_and_recovers_its_truth(name):
    family, params = CASES[name]
    params = dict(params)
    if "dofs_" in params:
        params["dofs_"] = params["dofs_"][0]
    truth = truth_model(family, [0.4, 0.6], **{k: v for k, v in params.items()})
    X, z = truth.sample(4000)
    model = quiet(MixtureModel(family, 2, random_state=0, tol=1e-7, max_iter=500, n_init=3,
                               on_decrease="raise").fit, X)
    assert np.all(np.diff(model.lower_bounds_) >= -1e-10 * np.abs(model.lower_bounds_[1:]))
    order = np.argsort(model.weights_)
    np.testing.assert_allclose(model.weights_[order], [0.4, 0.6], atol=0.03)
    key = "means_" if "means_" in params else next(iter(params))
    np.testing.assert_allclose(getattr(model, key)[order], params[key], atol=0.25, rtol=0.1)
    # free parameters counted by hand: K - 1 weights plus the family's per component
    free = {"bernoulli": 1 + 2 * 5, "poisson": 1 + 2 * 3, "exponential": 1 + 2 * 2,
            "gaussian": 1 + 2 * (2 + 2), "student-t": 1 + 2 * (2 + 3 + 1)}[name]
    total = model.score_samples(X).sum()
    assert model.bic(X) == pytest.approx(-2 * total + free * np.log(X.shape[0]), rel=1e-12)
    assert model.aic(X) == pytest.approx(-2 * total + 2 * free, rel=1e-12)
    assert model.predict_proba(X[:5]).sum(axis=1) == pytest.approx(np.ones(5))


def test_categorical_mixture_climbs_and_recovers_its_truth():
    """A latent class model (identifiable: three features)."""
    rng = np.random.default_rng(2)
    n = 6000
    z = rng.integers(2, size=n)
    truth = [[[0.8, 0.1, 0.1], [0.7, 0.3, 0.0], [0.6, 0.2, 0.2]],
             [[0.1, 0.1, 0.8], [0.1, 0.9, 0.0], [0.1, 0.3, 0.6]]]
    sizes = (3, 2, 3)
    S = np.column_stack([
        np.where(z == 0, rng.choice(c, size=n, p=truth[0][j][:c]),
                 rng.choice(c, size=n, p=truth[1][j][:c])) for j, c in enumerate(sizes)])
    model = quiet(MixtureModel(Categorical(), 2, random_state=0, tol=1e-9, max_iter=2000,
                               on_decrease="raise").fit, S)
    assert np.all(np.diff(model.lower_bounds_) >= -1e-12)
    k0 = int(np.argmax(model.probabilities_[:, 0, 0]))
    np.testing.assert_allclose(model.probabilities_[k0], truth[0], atol=0.05)
    np.testing.assert_allclose(model.probabilities_[1 - k0], truth[1], atol=0.05)
    assert model._n_parameters() == 1 + 2 * (2 + 1 + 2)


# --------------------------------------------------------------------------- fast paths


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture_equals_the_generic_mixture(covariance_type):
    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(size=(300, 3)), rng.normal(3.0, 0.7, size=(200, 3))])
    w = rng.uniform(0.5, 2.0, size=500)
    fast = GaussianMixture(2, covariance_type=covariance_type, random_state=0, tol=1e-9,
                           max_iter=200).fit(X, sample_weight=w)
    generic = MixtureModel(Gaussian(covariance_type), 2, random_state=0, tol=1e-9,
                           max_iter=200).fit(X, sample_weight=w)
    np.testing.assert_allclose(generic.lower_bounds_, fast.lower_bounds_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(generic.means_, fast.means_, atol=1e-10)
    np.testing.assert_allclose(generic.covariances_, fast.covariances_, atol=1e-10)
    np.testing.assert_allclose(generic.score_samples(X), fast.score_samples(X), atol=1e-10)


def hmm_start(model, startprob, transmat, **emission):
    model.startprob_ = np.asarray(startprob, dtype=float)
    model.transmat_ = np.asarray(transmat, dtype=float)
    for name, value in emission.items():
        setattr(model, name, np.asarray(value, dtype=float))
    return model


START = dict(startprob=[0.6, 0.4], transmat=[[0.8, 0.2], [0.3, 0.7]])


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gaussian_hmm_equals_the_generic_hmm(covariance_type):
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(size=(200, 2)), rng.normal(2.5, 1.0, size=(200, 2))])
    means = np.array([[0.5, 0.0], [2.0, 2.0]])
    cov = {"full": np.stack([np.eye(2)] * 2), "tied": np.eye(2), "diag": np.ones((2, 2)),
           "spherical": np.ones(2)}[covariance_type]
    fast = hmm_start(GaussianHMM(2, covariance_type, init_params="", tol=1e-10, max_iter=20),
                     **START, means_=means, covars_=cov)
    if covariance_type == "full":
        fast.covars_ = cov
    generic = hmm_start(HMM(Gaussian(covariance_type), 2, init_params="", tol=1e-10,
                            max_iter=20), **START, means_=means, covariances_=cov)
    quiet(fast.fit, X, [150, 250])
    quiet(generic.fit, X, [150, 250])
    np.testing.assert_allclose(generic.lower_bounds_, fast.lower_bounds_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(generic.means_, fast.means_, atol=1e-10)
    np.testing.assert_allclose(generic.transmat_, fast.transmat_, atol=1e-10)
    np.testing.assert_array_equal(generic.predict(X, [150, 250]), fast.predict(X, [150, 250]))


def test_poisson_and_categorical_hmms_equal_the_generic_hmm():
    rng = np.random.default_rng(6)
    C = np.concatenate([rng.poisson([1.0, 5.0], size=(300, 2)),
                        rng.poisson([6.0, 0.5], size=(300, 2))]).astype(float)
    rates = np.array([[2.0, 3.0], [4.0, 1.0]])
    fast = hmm_start(PoissonHMM(2, init_params="", tol=1e-10, max_iter=30), **START,
                     lambdas_=rates)
    generic = hmm_start(HMM(Poisson(), 2, init_params="", tol=1e-10, max_iter=30), **START,
                        rates_=rates)
    quiet(fast.fit, C)
    quiet(generic.fit, C)
    np.testing.assert_allclose(generic.lower_bounds_, fast.lower_bounds_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(generic.rates_, fast.lambdas_, atol=1e-10)

    S = np.concatenate([rng.choice(4, size=300, p=[0.7, 0.1, 0.1, 0.1]),
                        rng.choice(4, size=300, p=[0.1, 0.1, 0.1, 0.7])])[:, None]
    emission = rng.dirichlet(np.ones(4), size=2)
    fast = hmm_start(CategoricalHMM(2, init_params="", tol=1e-10, max_iter=30), **START,
                     emissionprob_=emission)
    generic = hmm_start(HMM(Categorical(), 2, init_params="", tol=1e-10, max_iter=30), **START,
                        probabilities_=emission[:, None, :])
    quiet(fast.fit, S)
    quiet(generic.fit, S)
    np.testing.assert_allclose(generic.lower_bounds_, fast.lower_bounds_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(generic.probabilities_[:, 0, :], fast.emissionprob_, atol=1e-10)


def test_generic_hmm_fits_samples_and_holds_letters_fixed():
    rng = np.random.default_rng(7)
    X = np.concatenate([rng.exponential(0.5, size=(300, 1)), rng.exponential(4.0, size=(300, 1))])
    model = quiet(HMM(Exponential(), 2, random_state=0, on_decrease="raise").fit, X)
    assert np.all(np.diff(model.lower_bounds_) >= -1e-12)
    np.testing.assert_allclose(np.sort(model.rates_[:, 0]), [0.25, 2.0], rtol=0.25)
    Y, states = model.sample(50, random_state=1)
    assert Y.shape == (50, 1) and states.shape == (50,)
    fixed = hmm_start(HMM(Gaussian("diag"), 2, params="stm", init_params="stm", random_state=0),
                      **START, covariances_=np.full((2, 2), 0.5))
    G = np.concatenate([rng.normal(size=(200, 2)), rng.normal(3.0, size=(200, 2))])
    quiet(fixed.fit, G)
    np.testing.assert_array_equal(fixed.covariances_, np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="params must be a string of the letters"):
        HMM(Poisson(), 2, params="stq").fit(np.ones((10, 1)))
    with pytest.raises(ValueError, match="family must be an emlab.families.Family"):
        HMM("poisson", 2).fit(np.ones((10, 1)))


# --------------------------------------------------------------------------- partial labels


def wine_with_labels(fraction, seed):
    X, y = load_wine(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    rng = np.random.default_rng(seed)
    labels = np.full(y.shape, -1)
    for c in range(3):
        rows = np.flatnonzero(y == c)
        pick = rng.choice(rows, int(round(fraction * rows.size)), replace=False)
        labels[pick] = c
    return X, y, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wine_with_a_tenth_of_the_labels(seed):
    X, y, labels = wine_with_labels(0.1, seed)
    generic = quiet(MixtureModel(Gaussian("full", reg_covar=1e-3), 3, random_state=seed,
                                 on_decrease="raise").fit, X, labels)
    assert (generic.predict(X) == y).mean() >= 0.9
    assert np.all(np.diff(generic.lower_bounds_) >= -1e-12)
    fast = quiet(GaussianMixture(3, reg_covar=1e-3, random_state=seed).fit, X, labels=labels)
    np.testing.assert_allclose(generic.lower_bounds_, fast.lower_bounds_, atol=1e-10)
    # the labelled rows keep their labels
    known = labels >= 0
    assert np.array_equal(generic.fit_predict(X, labels)[known], labels[known])


def test_partial_labels_fix_the_posteriors_of_the_labelled_rows():
    from scipy.stats import poisson

    rng = np.random.default_rng(8)
    C = np.concatenate([rng.poisson(2.0, size=(100, 1)), rng.poisson(9.0, size=(100, 1))])
    labels = np.full(200, -1)
    labels[0], labels[150] = 1, 0  # labels may contradict the data: they still hold
    model = quiet(MixtureModel(Poisson(), 2, random_state=0, on_decrease="raise").fit, C, labels)
    assert np.all(np.diff(model.lower_bounds_) >= -1e-12)
    assert model.rates_[1, 0] < model.rates_[0, 0]  # component 1 took row 0's small counts
    # the objective: unlabelled rows log p(x), labelled rows log(w_y p(x | y)), per sample,
    # computed here by scipy for the fitted parameters (the first value of one more step)
    joint = np.log(model.weights_)[None, :] + poisson.logpmf(C, model.rates_[:, 0][None, :])
    per_row = np.logaddexp.reduce(joint, axis=1)
    known = labels >= 0
    per_row[known] = joint[known, labels[known]]
    again = MixtureModel(Poisson(), 2, init_params="", max_iter=1, tol=0.0)
    again.weights_, again.rates_ = model.weights_, model.rates_
    quiet(again.fit, C, labels)
    assert again.lower_bounds_[0] == pytest.approx(per_row.mean(), rel=1e-12)


@pytest.mark.parametrize("labels, message", [
    (np.full(5, 3), r"y\[0\] = 3 is not a component"),
    (np.full(4, -1), r"vector of 5 labels"),
    (np.array([0, 1, 0.5, -1, -1]), "integer labels"),
])
def test_bad_labels_are_named(labels, message):
    with pytest.raises(ValueError, match=message):
        MixtureModel(Poisson(), 2).fit(np.ones((5, 1)), labels)
    with pytest.raises(ValueError, match=message.replace("y\\", "labels\\")):
        GaussianMixture(2).fit(np.arange(10.0).reshape(5, 2), labels=labels)


# --------------------------------------------------------------------------- frozen parameters


def test_gaussian_mixture_holds_its_means_fixed():
    X, y = load_wine(return_X_y=True)
    X = (X[:, :4] - X[:, :4].mean(axis=0)) / X[:, :4].std(axis=0)
    means = np.stack([X[y == c].mean(axis=0) for c in range(3)]) + 0.1
    fast = GaussianMixture(3, means_init=means, params="wc", random_state=0, tol=1e-8,
                           on_decrease="raise").fit(X)
    np.testing.assert_array_equal(fast.means_, means)
    assert np.all(np.diff(fast.lower_bounds_) >= -1e-12)
    # the covariances are the weighted scatter about the fixed means (plus reg_covar)
    resp = fast.predict_proba(X)
    generic = MixtureModel(Gaussian("full"), 3, params="wc", init_params="wc", random_state=0,
                           tol=1e-8)
    generic.means_ = means
    generic.fit(X)
    np.testing.assert_allclose(generic.lower_bounds_, fast.lower_bounds_, atol=1e-10)
    one_more = GaussianMixture(3, params="wc", means_init=fast.means_, weights_init=fast.weights_,
                               precisions_init=fast.precisions_, max_iter=1, tol=0.0)
    quiet(one_more.fit, X)
    for k in range(3):
        diff = X - means[k]
        scatter = (resp[:, k, None] * diff).T @ diff / resp[:, k].sum() + 1e-6 * np.eye(4)
        np.testing.assert_allclose(one_more.covariances_[k], scatter, rtol=1e-8)
    frozen_w = GaussianMixture(3, params="mc", weights_init=[0.2, 0.3, 0.5], random_state=0).fit(X)
    np.testing.assert_allclose(frozen_w.weights_, [0.2, 0.3, 0.5])


def test_frozen_parameters_bad_settings_are_named():
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match="params must be a string of the letters 'wmc'"):
        GaussianMixture(2, params="wmz").fit(X)
    with pytest.raises(ValueError, match="a prior needs params with both 'm' and 'c'"):
        GaussianMixture(2, params="wc", prior="conjugate").fit(X)
    with pytest.raises(ValueError, match="leaves 'r' out, so rates_ must be set before fit"):
        MixtureModel(Poisson(), 2, init_params="w").fit(np.ones((5, 1)))
    with pytest.raises(ValueError, match="letters 'wp'"):
        MixtureModel(Bernoulli(), 2, params="wr").fit(np.ones((5, 1)))


def test_sample_weight_two_equals_duplicated_rows():
    rng = np.random.default_rng(9)
    X = (rng.random((80, 4)) < 0.3).astype(float)
    start = MixtureModel(Bernoulli(), 2, init_params="")
    start.weights_ = np.array([0.5, 0.5])
    start.probabilities_ = rng.uniform(0.2, 0.8, size=(2, 4))
    weights = np.ones(80)
    weights[:10] = 2.0
    one = MixtureModel(Bernoulli(), 2, init_params="", tol=1e-10)
    two = MixtureModel(Bernoulli(), 2, init_params="", tol=1e-10)
    for m in (one, two):
        m.weights_, m.probabilities_ = start.weights_, start.probabilities_
    quiet(one.fit, X, sample_weight=weights)
    quiet(two.fit, np.concatenate([X, X[:10]]))
    np.testing.assert_allclose(one.probabilities_, two.probabilities_, atol=1e-12)
    np.testing.assert_allclose(one.lower_bounds_, two.lower_bounds_, atol=1e-12)


def test_student_t_means_stay_put_under_outliers():
    rng = np.random.default_rng(10)
    z = rng.integers(2, size=2000)
    X = rng.normal(size=(2000, 2)) + np.array([[0.0, 0.0], [5.0, 5.0]])[z]
    X[:200] = rng.uniform(-20, 25, size=(200, 2))  # 10% outliers
    kwargs = dict(random_state=0, n_init=5, tol=1e-6, max_iter=1000)
    t = quiet(MixtureModel(StudentT(), 2, **kwargs).fit, X)
    g = quiet(MixtureModel(Gaussian(), 2, **kwargs).fit, X)
    truth = np.array([[0.0, 0.0], [5.0, 5.0]])

    def error(means):
        return min(np.abs(means - truth).max(), np.abs(means[::-1] - truth).max())

    assert error(t.means_) < 0.2 < error(g.means_)
    assert np.all(np.diff(t.lower_bounds_) >= -1e-10)


def test_bad_family_and_data_are_named():
    with pytest.raises(ValueError, match="family must be an emlab.families.Family"):
        MixtureModel(None, 2).fit(np.ones((5, 1)))
    with pytest.raises(ValueError, match=r"binary .*X\[0, 0\] = 3"):
        MixtureModel(Bernoulli(), 2).fit(np.full((5, 1), 3.0))
    with pytest.raises(ValueError, match="n_components=3 must be <= n_samples=2"):
        MixtureModel(Poisson(), 3).fit(np.ones((2, 1)))


# --------------------------------------------------------------------------- Dask


def test_a_family_mixture_fits_a_dask_array_on_a_local_cluster_as_in_memory():
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(11)
    C = np.concatenate([rng.poisson([1.0, 5.0], size=(3000, 2)),
                        rng.poisson([6.0, 0.5], size=(3000, 2))]).astype(float)
    labels = np.full(6000, -1)
    labels[:30], labels[3000:3030] = 0, 1
    weights = rng.uniform(0.5, 2.0, size=6000)

    def started():
        model = MixtureModel(Poisson(), 2, init_params="", tol=1e-10, max_iter=50)
        model.weights_ = np.array([0.5, 0.5])
        model.rates_ = np.array([[2.0, 3.0], [4.0, 1.0]])
        return model

    memory = quiet(started().fit, C, labels, sample_weight=weights)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", env={"NUMBA_NUM_THREADS": "1"})
    try:
        with distributed.Client(cluster):
            chunks = 1000
            chunked = quiet(started().fit, da.from_array(C, chunks=(chunks, 2)),
                            da.from_array(labels, chunks=chunks),
                            sample_weight=da.from_array(weights, chunks=chunks))
            fast = quiet(GaussianMixture(2, random_state=0, tol=1e-8).fit,
                         da.from_array(C, chunks=(chunks, 2)),
                         labels=da.from_array(labels, chunks=chunks))
    finally:
        cluster.close()
    np.testing.assert_allclose(chunked.lower_bounds_, memory.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(chunked.rates_, memory.rates_, rtol=1e-10)
    assert np.isfinite(fast.lower_bound_)
    with pytest.raises(ValueError, match="starts from given parameters"):
        MixtureModel(Poisson(), 2).fit(da.from_array(C, chunks=(chunks, 2)))


# --------------------------------------------------------------------------- HMM known states


def test_hmm_known_states_give_the_brute_force_objective():
    """log p(X, known states): the sum over the state paths that agree with the labels."""
    from itertools import product

    from scipy.stats import poisson

    C = np.array([[0.0], [3.0], [1.0], [7.0], [6.0], [2.0]])
    labels = np.array([-1, 1, -1, -1, 0, -1])
    start, trans = np.array([0.6, 0.4]), np.array([[0.7, 0.3], [0.2, 0.8]])
    rates = np.array([[1.0], [5.0]])
    total = 0.0
    for path in product(range(2), repeat=6):
        if any(lab >= 0 and lab != z for lab, z in zip(labels, path)):
            continue
        p = start[path[0]] * np.prod([trans[a, b] for a, b in zip(path[:-1], path[1:])])
        total += p * np.prod([poisson.pmf(C[t, 0], rates[z, 0]) for t, z in enumerate(path)])
    for model in (HMM(Poisson(), 2), PoissonHMM(2)):
        model.set_params(init_params="", max_iter=1, tol=0.0)
        rate_attr = "rates_" if isinstance(model, HMM) else "lambdas_"
        hmm_start(model, start, trans, **{rate_attr: rates})
        quiet(model.fit, C, labels=labels)
        assert model.lower_bounds_[0] * 6 == pytest.approx(np.log(total), rel=1e-12)


def test_hmm_known_states_recover_the_states_and_climb():
    rng = np.random.default_rng(12)
    truth = hmm_start(GaussianHMM(3, "diag"), [1 / 3] * 3,
                      [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]],
                      means_=[[0.0], [1.5], [3.0]], covars_=[[0.6], [0.6], [0.6]])
    X, states = truth.sample(1500, random_state=3)
    labels = np.full(1500, -1)
    known = rng.choice(1500, 75, replace=False)  # 5% of the steps
    labels[known] = states[known]
    for model in (GaussianHMM(3, "diag", random_state=0, on_decrease="raise"),
                  HMM(Gaussian("diag"), 3, random_state=0, on_decrease="raise")):
        quiet(model.fit, X, labels=labels)
        assert np.all(np.diff(model.lower_bounds_) >= -1e-12)
        assert (model.predict(X) == states).mean() > 0.8
    with pytest.raises(ValueError, match="X in memory as one array"):
        GaussianHMM(2).fit([X[:10], X[10:20]], labels=np.zeros(20))
    with pytest.raises(ValueError, match=r"labels\[0\] = 5 is not a component"):
        GaussianHMM(2).fit(X[:10], labels=np.full(10, 5))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_gmmhmm_equals_an_hmm_of_gaussian_mixtures(covariance_type):
    from emlab import GMMHMM
    from emlab.families import Mixture

    rng = np.random.default_rng(13)
    X = np.concatenate([rng.normal(size=(200, 2)), rng.normal(4, 1, size=(200, 2)),
                        rng.normal([0, 6], 1, size=(200, 2))])
    k, m, d = 2, 2, 2
    means = rng.normal(2.0, 2.0, size=(k, m, d))
    cov = {"full": np.broadcast_to(1.5 * np.eye(d), (k, m, d, d)),
           "diag": np.full((k, m, d), 1.5), "spherical": np.full((k, m), 1.5)}[covariance_type]
    fast = hmm_start(GMMHMM(k, m, covariance_type=covariance_type, init_params="", tol=1e-10,
                            max_iter=15), **START, weights_=np.full((k, m), 0.5), means_=means,
                     covars_=cov)
    generic = hmm_start(HMM(Mixture(Gaussian(covariance_type), m), k, init_params="",
                            tol=1e-10, max_iter=15), **START,
                        mix_weights_=np.full((k, m), 0.5), means_=means.reshape(k * m, d),
                        covariances_=np.reshape(cov, (k * m,) + np.shape(cov)[2:]))
    quiet(fast.fit, X)
    quiet(generic.fit, X)
    np.testing.assert_allclose(generic.lower_bounds_, fast.lower_bounds_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(generic.means_, fast.means_.reshape(k * m, d), atol=1e-9)
    np.testing.assert_allclose(generic.mix_weights_, fast.weights_, atol=1e-10)


def test_a_mixture_of_mixtures_climbs():
    from emlab.families import Mixture

    rng = np.random.default_rng(14)
    C = np.concatenate([rng.poisson(1, size=(300, 1)), rng.poisson(10, size=(300, 1)),
                        rng.poisson(30, size=(300, 1))]).astype(float)
    model = quiet(MixtureModel(Mixture(Poisson(), 2), 2, random_state=0,
                               on_decrease="raise").fit, C)
    assert np.all(np.diff(model.lower_bounds_) >= -1e-12)
    assert model._n_parameters() == 1 + 2 * 1 + 4
    assert sorted(np.round(model.rates_.ravel()).tolist())[:1] == [1.0]
    X, z = model.sample(20)
    assert X.shape == (20, 1) and z.shape == (20,)


# --------------------------------------------------------------------------- online, save and load


def test_online_em_approaches_the_batch_fit():
    rng = np.random.default_rng(15)
    z = rng.integers(2, size=40_000)
    C = rng.poisson(np.array([[1.0, 6.0], [7.0, 0.5]])[z]).astype(float)
    batch = quiet(MixtureModel(Poisson(), 2, random_state=0, tol=1e-8).fit, C)
    online = MixtureModel(Poisson(), 2, random_state=0)
    for rows in np.array_split(np.arange(40_000), 40):
        online.partial_fit(C[rows])
    order = np.argsort(online.rates_[:, 0])
    np.testing.assert_allclose(online.rates_[order], batch.rates_[np.argsort(batch.rates_[:, 0])],
                               rtol=0.02)
    assert online.n_steps_ == 40 and online.lower_bounds_.shape == (40,)
    with pytest.raises(ValueError, match="learning_decay must be in"):
        MixtureModel(Poisson(), 2, learning_decay=0.3).partial_fit(C[:100])


@pytest.mark.parametrize("family, data", [
    (Poisson(prior=(2.0, 0.5)), "counts"),
    (Categorical(n_categories=[3, 4]), "symbols"),
    (StudentT("diag"), "real"),
    ("mixture", "real"),
], ids=["poisson", "categorical", "student-t", "mixture-of-gaussians"])
def test_save_and_load_round_trip(tmp_path, family, data):
    from emlab import ModelFileError
    from emlab.families import Mixture

    if family == "mixture":
        family = Mixture(Gaussian("spherical"), 2)
    rng = np.random.default_rng(16)
    X = {"counts": rng.poisson(3.0, size=(200, 2)).astype(float),
         "symbols": np.column_stack([rng.integers(3, size=200), rng.integers(4, size=200)]),
         "real": rng.normal(size=(200, 2)) + rng.integers(2, size=(200, 1)) * 4}[data]
    model = quiet(MixtureModel(family, 2, random_state=0, max_iter=20).fit, X)
    path = tmp_path / "model.npz"
    model.save(path)
    back = MixtureModel.load(path)
    assert back.family == model.family and back.get_params().keys() == model.get_params().keys()
    np.testing.assert_array_equal(back.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(back.lower_bounds_, model.lower_bounds_)
    # damaged: NaN parameters, a foreign file
    data_ = dict(np.load(path, allow_pickle=False))
    data_["weights_"] = np.array([np.nan, 1.0])
    np.savez(tmp_path / "nan.npz", **data_)
    with pytest.raises(ModelFileError, match="nan.npz .*NaN"):
        MixtureModel.load(tmp_path / "nan.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ModelFileError, match="not a .npz archive"):
        MixtureModel.load(tmp_path / "text.npz")


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_the_gaussian_familys_conjugate_prior_is_gaussian_mixtures(covariance_type):
    rng = np.random.default_rng(17)
    X = np.concatenate([rng.normal(size=(300, 3)), rng.normal(3.0, 1.0, size=(200, 3))])
    fast = GaussianMixture(2, covariance_type=covariance_type, prior="conjugate", random_state=0,
                           tol=1e-9).fit(X)
    generic = MixtureModel(Gaussian(covariance_type, prior="conjugate"), 2, random_state=0,
                           tol=1e-9, on_decrease="raise").fit(X)
    np.testing.assert_allclose(generic.lower_bounds_, fast.lower_bounds_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(generic.covariances_, fast.covariances_, atol=1e-10)
    hmm = quiet(HMM(Gaussian(covariance_type, prior={"shrinkage": 0.1}), 2, random_state=0,
                    on_decrease="raise").fit, X)
    assert np.all(np.diff(hmm.lower_bounds_) >= -1e-12)
    with pytest.raises(ValueError, match="a prior needs both 'm' and 'c'"):
        quiet(MixtureModel(Gaussian(covariance_type, prior="conjugate"), 2, params="wc",
                           random_state=0).fit, X)


@pytest.mark.parametrize("variational", ["categorical", "gaussian"])
def test_variational_hmms_take_known_states(variational):
    from emlab import VariationalCategoricalHMM, VariationalGaussianHMM

    rng = np.random.default_rng(18)
    states = np.repeat([0, 1, 0, 1], 150)
    if variational == "categorical":
        X = np.where(states == 0, rng.choice(3, size=600, p=[0.8, 0.1, 0.1]),
                     rng.choice(3, size=600, p=[0.1, 0.1, 0.8]))[:, None]
        make = lambda: VariationalCategoricalHMM(2, random_state=0, on_decrease="raise")  # noqa: E731
    else:
        X = rng.normal(size=(600, 1)) + 3.0 * states[:, None]
        make = lambda: VariationalGaussianHMM(2, random_state=0, on_decrease="raise")  # noqa: E731
    labels = np.full(600, -1)
    labels[::20] = states[::20]
    model = quiet(make().fit, X, labels=labels)
    assert np.all(np.diff(model.lower_bounds_) >= -1e-10 * np.abs(model.lower_bounds_[1:]))
    assert (model.predict(X) == states).mean() > 0.9  # the labels fix which state is which
    # restricting q(z) to the paths through the known states cannot raise the bound
    unlabelled = quiet(make().fit, X)
    assert model.lower_bounds_[-1] <= unlabelled.lower_bounds_[-1] + 1e-9
    with pytest.raises(ValueError, match="X in memory as one array"):
        make().fit([X[:300], X[300:]], labels=labels)


def test_the_variational_mixture_takes_partial_labels():
    from emlab import BayesianGaussianMixture

    X, y, labels = wine_with_labels(0.1, 0)
    kwargs = dict(n_components=3, reg_covar=1e-3, random_state=0, max_iter=300,
                  on_decrease="raise")
    model = quiet(BayesianGaussianMixture(**kwargs).fit, X, labels=labels)
    assert (model.predict(X) == y).mean() >= 0.9
    assert np.all(np.diff(model.lower_bounds_) >= -1e-10 * np.abs(model.lower_bounds_[1:]))
    # no label known: the same fit as without labels
    none = quiet(BayesianGaussianMixture(**kwargs).fit, X, labels=np.full(y.shape, -1))
    plain = quiet(BayesianGaussianMixture(**kwargs).fit, X)
    np.testing.assert_allclose(none.lower_bounds_, plain.lower_bounds_, rtol=1e-10)
