"""GMMHMM: the HMM with Gaussian-mixture emissions (emlab.gmmhmm), against scipy, emlab's
GaussianHMM and hmmlearn 0.3.3's GMMHMM."""

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from emlab import GaussianHMM, mixture
from emlab.gmmhmm import GMMHMM, GMMEmission

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
RTOL = 1e-6
K, M, D = 3, 2, 2
LENGTHS = [120, 90, 150]


def quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def random_covars(rng, covariance_type, k=K, m=M, d=D):
    a = rng.normal(size=(k, m, d, d))
    full = a @ np.swapaxes(a, -1, -2) / d + 0.5 * np.eye(d)
    return {"full": full, "tied": full[:, 0],
            "diag": np.einsum("kmii->kmi", full),
            "spherical": np.einsum("kmii->km", full) / d}[covariance_type]


def start_params(covariance_type, seed=1):
    rng = np.random.default_rng(seed)
    return dict(startprob_=rng.dirichlet(np.ones(K)),
                transmat_=rng.dirichlet(3 * np.ones(K), size=K),
                weights_=rng.dirichlet(2 * np.ones(M), size=K),
                means_=2.0 * rng.normal(size=(K, M, D)),
                covars_=random_covars(rng, covariance_type))


def data(seed=0):
    """Three sequences from a 3-state, 2-component model, d = 2."""
    truth = GMMHMM(K, M, covariance_type="full", init_params="")
    rng = np.random.default_rng(seed)
    truth.startprob_ = np.full(K, 1.0 / K)
    truth.transmat_ = 0.8 * np.eye(K) + 0.2 / K
    truth.weights_ = np.array([[0.5, 0.5], [0.3, 0.7], [0.6, 0.4]])
    truth.means_ = 3.0 * rng.normal(size=(K, M, D))
    truth.covars_ = random_covars(rng, "full")
    X, _ = truth.sample(sum(LENGTHS), random_state=seed)
    return X, LENGTHS


def set_params(model, params):
    for name, value in params.items():
        setattr(model, name, np.array(value, copy=True))
    return model


def component_covariance(covars, covariance_type, k, m, d=D):
    c = covars
    return {"full": lambda: c[k, m], "tied": lambda: c[k],
            "diag": lambda: np.diag(c[k, m]),
            "spherical": lambda: c[k, m] * np.eye(d)}[covariance_type]()


# --------------------------------------------------------------------------- log-emissions


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_emission_equals_scipy_by_explicit_loops(covariance_type):
    X, _ = data()
    X = X[:60]
    p = start_params(covariance_type)
    model = set_params(GMMHMM(K, M, covariance_type=covariance_type), p)
    ours = model._log_emission(X, model._emission_from_attributes())
    expected = np.empty((X.shape[0], K))
    for t in range(X.shape[0]):
        for k in range(K):
            terms = [np.log(p["weights_"][k, m]) + multivariate_normal.logpdf(
                X[t], p["means_"][k, m], component_covariance(p["covars_"], covariance_type, k, m))
                for m in range(M)]
            expected[t, k] = logsumexp(terms)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


def test_a_zero_weight_drops_its_component():
    X, _ = data()
    p = start_params("diag")
    p["weights_"][1] = [1.0, 0.0]
    model = set_params(GMMHMM(K, M, covariance_type="diag"), p)
    ours = model._log_emission(X, model._emission_from_attributes())
    single = multivariate_normal.logpdf(X, p["means_"][1, 0], np.diag(p["covars_"][1, 0]))
    np.testing.assert_allclose(ours[:, 1], single, rtol=1e-12)


# --------------------------------------------------------------------------- fused kernels
#
# emlab._kernels.gmmhmm: the per-state log-sum-exp and the components' statistics in one
# pass over X, against explicit scipy loops and against the NumPy path they replaced (all
# K * M log-densities, then a log-sum-exp and an (n, K * M) responsibility array).


def old_component_posteriors(X, emission, gamma):
    """The replaced NumPy path: per-state log-emission (n, K) and the (n, K * M)
    responsibilities ``gamma_tk p(m | x_t, k)``."""
    k, m, _ = emission.means.shape
    lp = emission.component_log_prob(X).reshape(-1, k, m)
    with np.errstate(under="ignore", divide="ignore", invalid="ignore"):
        lse = logsumexp(lp, axis=2)
        finite = np.isfinite(lse)
        post = np.exp(lp - np.where(finite, lse, 0.0)[:, :, None])
        post = np.where(finite[:, :, None], post, 0.0)
    return lse, (gamma[:, :, None] * post).reshape(-1, k * m)


def old_statistics(X, gamma, emission):
    _, resp = old_component_posteriors(X, emission, gamma)
    return mixture.sufficient_statistics(X, resp, emission.flat_means, emission.kernel_type)


def random_emission(rng, covariance_type, k, m, d, zero_weights=True):
    weights = rng.dirichlet(np.ones(m), size=k)
    if zero_weights and m > 1:  # log w = -inf: a component that drops out
        weights[1, 0] = 0.0
        weights[1] /= weights[1].sum()
    means = 2.0 * rng.normal(size=(k, m, d))
    return GMMEmission(weights, means, random_covars(rng, covariance_type, k, m, d),
                       covariance_type)


def emission_rows(rng, n, d):
    """n rows, the last one far from every component."""
    X = 2.0 * rng.normal(size=(n, d))
    X[-1] = 40.0
    return X


def explicit_log_emission(X, emission):
    k, m, d = emission.means.shape
    out = np.empty((X.shape[0], k))
    for j in range(k):
        terms = np.empty((X.shape[0], m))
        for c in range(m):
            cov = component_covariance(emission.covars, emission.covariance_type, j, c, d)
            with np.errstate(divide="ignore"):
                terms[:, c] = np.log(emission.weights[j, c]) + np.atleast_1d(
                    multivariate_normal.logpdf(X, emission.means[j, c], cov))
        for t in range(X.shape[0]):
            out[t, j] = logsumexp(terms[t])
    return out


KERNEL_SHAPES = [(d, m) for d in (1, 2, 5, 9) for m in (1, 3)]


@pytest.mark.parametrize("d, m", KERNEL_SHAPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fused_log_emission_equals_explicit_loops(covariance_type, d, m):
    rng = np.random.default_rng(10 * d + m)
    emission = random_emission(rng, covariance_type, 3, m, d)
    X = emission_rows(rng, 301, d)  # more than two tiles, a partial last one
    ours = emission.log_emission(X)
    expected = explicit_log_emission(X, emission)
    assert np.all(np.isfinite(ours))
    assert ours[-1].max() < -100  # the far row: every term far below 0, none underflowing
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)
    # one sample
    np.testing.assert_allclose(emission.log_emission(X[:1]), expected[:1], rtol=1e-12)


@pytest.mark.parametrize("d, m", KERNEL_SHAPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fused_statistics_equal_the_responsibility_path(covariance_type, d, m):
    rng = np.random.default_rng(10 * d + m + 1)
    k = 3
    emission = random_emission(rng, covariance_type, k, m, d)
    X = emission_rows(rng, 301, d)
    gamma = rng.dirichlet(np.ones(k), size=X.shape[0])
    gamma[5] = [1.0, 0.0, 0.0]  # a state of posterior 0
    nk, means, second = emission.statistics(X, gamma)
    nk0, means0, second0 = old_statistics(X, gamma, emission)
    np.testing.assert_allclose(nk, nk0, rtol=1e-10, atol=1e-10 * X.shape[0])
    np.testing.assert_allclose(means, means0, rtol=1e-10, atol=1e-10 * np.abs(means0).max())
    np.testing.assert_allclose(second, second0, rtol=1e-10, atol=1e-10 * np.abs(second0).max())
    np.testing.assert_allclose(nk.reshape(k, m).sum(axis=1), gamma.sum(axis=0), rtol=1e-12)
    if m > 1:  # the zero-weight component gets nothing
        assert nk[m] == 0.0 and np.all(second[m] == 0.0)
    # the log-emission, too, equals the old path's
    np.testing.assert_allclose(emission.log_emission(X),
                               old_component_posteriors(X, emission, gamma)[0],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_fused_kernels_give_a_state_no_component_can_produce_minus_inf(kind):
    from emlab._config import CHUNK_ROWS, n_blocks
    from emlab._kernels import gmmhmm as kernels

    rng = np.random.default_rng(3)
    k, m, d, n = 3, 2, 3, 200
    X = rng.normal(size=(n, d))
    means = rng.normal(size=(k * m, d))
    factors = (np.broadcast_to(np.eye(d), (k * m, d, d)) if kind == "full"
               else np.ones((k * m, d))).copy()
    log_weights = np.log(np.full(k * m, 1.0 / m))
    log_weights[2:4] = -np.inf  # state 1: every term -inf (the wrapper never lets this in)
    out = np.empty((n, k))
    getattr(kernels, f"log_emission_{kind}")(X, means, factors, log_weights, CHUNK_ROWS, out)
    assert not np.any(np.isnan(out))
    assert np.all(out[:, 1] == -np.inf) and np.all(np.isfinite(out[:, [0, 2]]))
    gamma = rng.dirichlet(np.ones(k), size=n)
    nk, sums = np.empty(k * m), np.empty((k * m, d))
    second = np.empty((k * m, d, d) if kind == "full" else (k * m, d))
    getattr(kernels, f"emission_statistics_{kind}")(X, gamma, means, factors, log_weights,
                                                    n_blocks(n, 1), nk, sums, second)
    for a in (nk, sums, second):
        assert np.all(np.isfinite(a))
    assert np.all(nk[2:4] == 0.0) and np.all(sums[2:4] == 0.0) and np.all(second[2:4] == 0.0)
    np.testing.assert_allclose(nk[[0, 1, 4, 5]].sum(), gamma[:, [0, 2]].sum(), rtol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_fused_statistics_do_not_depend_on_the_thread_count(covariance_type):
    import numba

    from emlab._config import n_blocks
    from emlab._kernels import gmmhmm as kernels

    rng = np.random.default_rng(4)
    k, m, d, n = 3, 2, 3, 5000
    emission = random_emission(rng, covariance_type, k, m, d)
    X = emission_rows(rng, n, d)
    gamma = rng.dirichlet(np.ones(k), size=n)
    kernel = getattr(kernels, f"emission_statistics_{covariance_type}")
    blocks = n_blocks(n, 1)
    assert blocks > 2
    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            nk, sums = np.empty(k * m), np.empty((k * m, d))
            second = np.empty((k * m, d, d) if covariance_type == "full" else (k * m, d))
            kernel(X, gamma, emission.flat_means, emission.kernel_factors(),
                   emission.log_weights, blocks, nk, sums, second)
            results.append((nk, sums, second))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(results[0], results[-1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_equals_the_responsibility_path(covariance_type, monkeypatch):
    """Ten Baum-Welch iterations with the fused kernels equal those with the NumPy path."""
    X, lengths = data()
    p = start_params(covariance_type)
    kwargs = dict(covariance_type=covariance_type, max_iter=10, tol=0.0, init_params="",
                  on_decrease="raise")
    fused = set_params(GMMHMM(K, M, **kwargs), p)
    quiet(fused.fit, X, lengths)

    def log_emission(self, X, emission):
        return old_component_posteriors(X, emission, np.zeros((X.shape[0], K)))[0]

    def statistics(self, X, gamma, emission):
        nk, means, second = old_statistics(X, gamma, emission)
        return mixture.GaussianStatistics(0.0, X.shape[0], nk=nk, means=means, second=second)

    monkeypatch.setattr(GMMHMM, "_log_emission", log_emission)
    monkeypatch.setattr(GMMHMM, "_emission_statistics", statistics)
    slow = set_params(GMMHMM(K, M, **kwargs), p)
    quiet(slow.fit, X, lengths)
    for name in ("startprob_", "transmat_", "weights_", "means_", "covars_", "lower_bounds_"):
        np.testing.assert_allclose(getattr(fused, name), getattr(slow, name), rtol=1e-10,
                                   atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------- n_mix = 1


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_component_equals_gaussian_hmm(covariance_type):
    # GMMHMM's 'tied' is one covariance per state shared by its components (hmmlearn's
    # meaning), so with n_mix=1 it is GaussianHMM's 'full'
    X, lengths = data()
    p = start_params(covariance_type if covariance_type != "tied" else "full")
    gauss_type = "full" if covariance_type == "tied" else covariance_type
    gauss = GaussianHMM(K, gauss_type, max_iter=10, tol=0.0, init_params="")
    gauss.startprob_, gauss.transmat_ = p["startprob_"], p["transmat_"]
    gauss.means_ = p["means_"][:, 0]
    cov = p["covars_"][:, 0]
    gauss.covariances_ = cov
    ours = GMMHMM(K, 1, covariance_type=covariance_type, max_iter=10, tol=0.0, init_params="")
    ours.startprob_, ours.transmat_ = p["startprob_"], p["transmat_"]
    ours.weights_, ours.means_ = np.ones((K, 1)), p["means_"][:, :1]
    ours.covars_ = cov[:, None] if covariance_type != "tied" else cov
    quiet(gauss.fit, X, lengths)
    quiet(ours.fit, X, lengths)
    tol = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.lower_bounds_, gauss.lower_bounds_, **tol)
    np.testing.assert_allclose(ours.startprob_, gauss.startprob_, **tol)
    np.testing.assert_allclose(ours.transmat_, gauss.transmat_, **tol)
    np.testing.assert_allclose(ours.means_[:, 0], gauss.means_, **tol)
    theirs = gauss.covariances_
    np.testing.assert_allclose(ours.covars_ if covariance_type == "tied" else ours.covars_[:, 0],
                               theirs, **tol)
    assert ours.n_iter_ == gauss.n_iter_ == 10


# --------------------------------------------------------------------------- hmmlearn


def hmmlearn_model(hmm, covariance_type, params, prior, recentred=False):
    """hmmlearn's GMMHMM, or (``recentred``) one whose covariance M-step takes the scatter
    about the new means rather than the previous ones (see the notes of emlab's GMMHMM)."""

    class Recentred(hmm.GMMHMM):
        def _do_mstep(self, stats):
            if "m" in self.params and "c" in self.params:
                n = stats["post_mix_sum"]
                lam, mus = self.means_weight, self.means_prior
                sums = stats["m_n"] - lam[:, :, None] * mus
                xbar = sums / n[:, :, None]
                new = stats["m_n"] / (n + lam)[:, :, None]
                old, fresh = xbar - self.means_, xbar - new
                ct = self.covariance_type
                if ct == "full":
                    outer = lambda v: v[..., :, None] * v[..., None, :]  # noqa: E731
                    shift = n[:, :, None, None] * (outer(fresh) - outer(old))
                elif ct == "tied":
                    outer = lambda v: v[..., :, None] * v[..., None, :]  # noqa: E731
                    shift = (n[:, :, None, None] * (outer(fresh) - outer(old))).sum(axis=1)
                elif ct == "diag":
                    shift = n[:, :, None] * (fresh**2 - old**2)
                else:
                    shift = n * ((fresh**2).sum(-1) - (old**2).sum(-1))
                stats["c_n"] = stats["c_n"] + shift
            super()._do_mstep(stats)

    cls = Recentred if recentred else hmm.GMMHMM
    return cls(K, M, covariance_type=covariance_type, n_iter=10, tol=-np.inf, init_params="",
               params=params, **prior)


def hmmlearn_prior(covariance_type, prior):
    """hmmlearn's arguments for emlab's ``prior``: its 'spherical' default is not flat."""
    prior = dict(prior)
    if covariance_type == "spherical" and prior.get("covars_prior") is None:
        prior["covars_prior"] = -(D + 2) / 2.0  # emlab's flat default; hmmlearn's is -(M+2)/2
    return prior


INFORMATIVE = {
    "full": dict(weights_prior=2.0, means_prior=0.3, means_weight=1.5,
                 covars_prior=0.4 * np.eye(D), covars_weight=3.0),
    "tied": dict(weights_prior=2.0, means_prior=0.3, means_weight=1.5,
                 covars_prior=0.4 * np.eye(D), covars_weight=3.0),
    "diag": dict(weights_prior=2.0, means_prior=0.3, means_weight=1.5,
                 covars_prior=0.5, covars_weight=0.7),
    "spherical": dict(weights_prior=2.0, means_prior=0.3, means_weight=1.5,
                      covars_prior=0.5, covars_weight=0.7),
}


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_score_posteriors_and_viterbi_equal_hmmlearn(covariance_type):
    hmm = pytest.importorskip("hmmlearn.hmm")
    X, lengths = data()
    p = start_params(covariance_type)
    ours = set_params(GMMHMM(K, M, covariance_type=covariance_type), p)
    peer = set_params(hmm.GMMHMM(K, M, covariance_type=covariance_type), p)
    assert ours.score(X, lengths) == pytest.approx(peer.score(X, lengths), rel=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X, lengths), peer.predict_proba(X, lengths),
                               rtol=1e-8, atol=1e-10)
    lp_ours, path_ours = ours.decode(X, lengths)
    lp_peer, path_peer = peer.decode(X, lengths)
    assert lp_ours == pytest.approx(lp_peer, rel=1e-10)
    np.testing.assert_array_equal(path_ours, path_peer)


def compare_fits(ours, peer, X, lengths):
    for name in ("startprob_", "transmat_", "weights_", "means_", "covars_"):
        a, b = np.asarray(getattr(ours, name)), np.asarray(getattr(peer, name))
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * np.max(np.abs(b)), err_msg=name)
    assert ours.score(X, lengths) == pytest.approx(peer.score(X, lengths), rel=RTOL)
    assert len(ours.monitor_.history) == len(peer.monitor_.history) == 10


@pytest.mark.parametrize("prior", ["flat", "informative"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_ten_iterations_with_fixed_means_equal_hmmlearn(covariance_type, prior):
    # with the means fixed ('m' not in params) hmmlearn's covariance M-step is the exact one
    hmm = pytest.importorskip("hmmlearn.hmm")
    X, lengths = data()
    p = start_params(covariance_type)
    prior = {} if prior == "flat" else INFORMATIVE[covariance_type]
    peer = hmmlearn_model(hmm, covariance_type, "stcw", hmmlearn_prior(covariance_type, prior))
    ours = GMMHMM(K, M, covariance_type=covariance_type, n_iter=10, tol=0.0, init_params="",
                  params="stcw", reg_covar=0.0, on_decrease="raise", **prior)
    for model in (peer, ours):
        set_params(model, p)
        quiet(model.fit, X, lengths)
    compare_fits(ours, peer, X, lengths)
    if not prior:  # flat: the objective is the log-likelihood, hmmlearn's history
        np.testing.assert_allclose(np.asarray(ours.monitor_.history), peer.monitor_.history,
                                   rtol=1e-9)


@pytest.mark.parametrize("prior", ["flat", "informative"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_ten_iterations_equal_hmmlearn_with_its_scatter_recentred(covariance_type, prior):
    """params='stmcw': hmmlearn 0.3.3 accumulates the covariance statistics about the
    *previous* means (``X - self.means_`` in its E-step) and never corrects them, so its
    covariance update is not the maximiser of Q (it is larger by ``N (xbar - mu_old)(xbar -
    mu_old)^T`` over the denominator) and its GMMHMM with n_mix=1 is not its GaussianHMM.
    emlab takes the scatter about the new means. Unmodified hmmlearn therefore differs after
    one iteration (checked below); hmmlearn with only that correction added to its
    statistics agrees with emlab to 1e-6 after ten iterations, priors included."""
    hmm = pytest.importorskip("hmmlearn.hmm")
    X, lengths = data()
    p = start_params(covariance_type)
    prior = {} if prior == "flat" else INFORMATIVE[covariance_type]
    hprior = hmmlearn_prior(covariance_type, prior)
    peer = hmmlearn_model(hmm, covariance_type, "stmcw", hprior, recentred=True)
    ours = GMMHMM(K, M, covariance_type=covariance_type, n_iter=10, tol=0.0, init_params="",
                  params="stmcw", reg_covar=0.0, on_decrease="raise", **prior)
    for model in (peer, ours):
        set_params(model, p)
        quiet(model.fit, X, lengths)
    compare_fits(ours, peer, X, lengths)
    if not prior:
        np.testing.assert_allclose(np.asarray(ours.monitor_.history), peer.monitor_.history,
                                   rtol=1e-9)
    # unmodified hmmlearn: same weights and means after one iteration, larger covariances
    plain = hmmlearn_model(hmm, covariance_type, "stmcw", hprior)
    one = GMMHMM(K, M, covariance_type=covariance_type, n_iter=1, tol=0.0, init_params="",
                 params="stmcw", reg_covar=0.0, **prior)
    plain.n_iter = 1
    for model in (plain, one):
        set_params(model, p)
        quiet(model.fit, X, lengths)
    np.testing.assert_allclose(one.weights_, plain.weights_, rtol=1e-9)
    np.testing.assert_allclose(one.means_, plain.means_, rtol=1e-9)
    assert not np.allclose(one.covars_, plain.covars_, rtol=1e-6)


# --------------------------------------------------------------------------- EM properties


@pytest.mark.parametrize("prior", ["flat", "informative"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_the_objective_never_falls(covariance_type, prior):
    X, lengths = data(seed=3)
    prior = {} if prior == "flat" else INFORMATIVE[covariance_type]
    model = GMMHMM(K, M, covariance_type=covariance_type, max_iter=40, tol=0.0,
                   random_state=0, on_decrease="raise", **prior)
    quiet(model.fit, X, lengths)
    assert np.all(np.diff(model.lower_bounds_) >= -1e-12 * np.abs(model.lower_bounds_[1:]))
    if not prior:
        # the last entry is the objective before the last M-step, which cannot lower it
        assert model.score(X, lengths) >= model.lower_bounds_[-1] * X.shape[0] - 1e-9
    assert np.allclose(model.weights_.sum(axis=1), 1.0)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_dask_fit_equals_in_memory_fit(covariance_type):
    da = pytest.importorskip("dask.array")
    X, lengths = data()
    p = start_params(covariance_type)
    del p["covars_"]  # 'c' initialised: from the data's covariance, found chunk by chunk
    kwargs = dict(covariance_type=covariance_type, max_iter=8, tol=0.0, init_params="stc",
                  on_decrease="raise")
    memory = set_params(GMMHMM(K, M, **kwargs), p)
    chunked = set_params(GMMHMM(K, M, **kwargs), p)
    quiet(memory.fit, X, lengths)
    quiet(chunked.fit, da.from_array(X, chunks=100), lengths)
    for name in ("startprob_", "transmat_", "weights_", "means_", "covars_", "lower_bounds_"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(memory, name), rtol=1e-10,
                                   atol=1e-12, err_msg=name)
    # and a list of sequences, fitted without concatenating them
    listed = set_params(GMMHMM(K, M, **kwargs), p)
    bounds = np.cumsum([0] + lengths)
    quiet(listed.fit, [X[a:b] for a, b in zip(bounds[:-1], bounds[1:])])
    np.testing.assert_allclose(listed.means_, memory.means_, rtol=1e-10)


def test_default_fit_finds_the_components():
    X, lengths = data()
    model = quiet(GMMHMM(K, M, covariance_type="full", random_state=0).fit, X, lengths)
    assert model.converged_
    # the fitted model explains the data better than a one-component-per-state model
    single = quiet(GaussianHMM(K, "full", random_state=0).fit, X, lengths)
    assert model.score(X, lengths) > single.score(X, lengths)
    Y, states = model.sample(50, random_state=1)
    assert Y.shape == (50, D) and states.shape == (50,)


def test_hmmlearn_positional_arguments_and_aliases():
    model = GMMHMM(4, 3, 1e-3, 2.0, 3.0, 1.5, 0.1, 0.2, 0.3, 0.4, "map", "full", 7, n_iter=5)
    assert (model.n_components, model.n_mix, model.min_covar, model.startprob_prior,
            model.transmat_prior, model.weights_prior, model.means_prior, model.means_weight,
            model.covars_prior, model.covars_weight, model.algorithm, model.covariance_type,
            model.random_state, model.max_iter) == (4, 3, 1e-3, 2.0, 3.0, 1.5, 0.1, 0.2, 0.3,
                                                    0.4, "map", "full", 7, 5)
    assert model.get_params()["n_mix"] == 3
    with pytest.raises(ValueError, match="n_mix"):
        GMMHMM(2, 0).fit(np.zeros((10, 1)))
    with pytest.raises(ValueError, match="params"):
        GMMHMM(2, params="stmcx").fit(np.zeros((10, 1)))


def test_bad_attributes_are_named():
    X, lengths = data()
    p = start_params("diag")
    model = set_params(GMMHMM(K, M, covariance_type="diag"), p)
    model.weights_ = np.ones((K, M))
    with pytest.raises(ValueError, match="weights_"):
        model.score(X, lengths)
    model = set_params(GMMHMM(K, M, covariance_type="diag"), p)
    model.covars_ = np.ones((K, M))
    with pytest.raises(ValueError, match="covars_"):
        model.score(X, lengths)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_a_degenerate_covariance_is_named_by_state_and_component(covariance_type):
    from emlab.exceptions import DegenerateCovarianceError

    X, lengths = data()
    p = start_params(covariance_type)
    c = p["covars_"]
    if covariance_type == "tied":
        c[2] = 0.0
        where = "state 2"
    else:
        c[2, 1] = 0.0
        where = "state 2, mixture component 1"
    model = set_params(GMMHMM(K, M, covariance_type=covariance_type), p)
    with pytest.raises(DegenerateCovarianceError, match=where):
        model.score(X, lengths)


def test_initial_means_of_a_cluster_smaller_than_n_mix_are_drawn():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (40, 2)), [[50.0, 50.0]]])  # one row alone
    model = GMMHMM(2, 3)
    means = model._kmeans_means(X, np.cov(X.T), rng)
    assert means.shape == (2, 3, 2) and np.all(np.isfinite(means))


def test_clone_and_repr():
    sklearn_base = pytest.importorskip("sklearn.base")
    model = GMMHMM(3, 2, covariance_type="full", reg_covar=1e-4, n_iter=7)
    twin = sklearn_base.clone(model)
    assert twin.get_params() == model.get_params()
    assert "n_mix=2" in repr(model)
