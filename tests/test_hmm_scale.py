"""HMMs at scale: Baum-Welch on sufficient statistics, Dask arrays, lists of sequences, memory maps.

Every chunked fit is compared with the in-memory fit from the same start, and the chunked
statistics with the plain-loop forward-backward of ``tests/reference.py``.
"""

import tracemalloc
import warnings

import numpy as np
import pytest
from scipy.stats import poisson

import reference as ref
from daskguard import guarded_scheduler
from emlab import CategoricalHMM, ConvergenceWarning, GaussianHMM, PoissonHMM
from emlab import hmm as hmm_module
from emlab.em import ChunkList

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

RTOL = 1e-10
LENGTHS = [120, 45, 300, 80, 210, 95, 150]  # 1000 rows; chunks of 173 rows cut inside them
KINDS = ["gaussian-full", "gaussian-tied", "gaussian-diag", "gaussian-spherical", "categorical",
         "poisson"]
EMISSION = {GaussianHMM: ("means_", "covariances_"), CategoricalHMM: ("emissionprob_",),
            PoissonHMM: ("lambdas_",)}


def quiet(fit, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args)


def truth_of(kind):
    """A well-separated three-state truth of each kind."""
    transmat = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    if kind.startswith("gaussian"):
        model = GaussianHMM(3, covariance_type="full", init_params="")
        model.means_ = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
        model.covariances_ = np.array([np.eye(2), [[1.0, 0.3], [0.3, 0.5]], 0.7 * np.eye(2)])
    elif kind == "categorical":
        model = CategoricalHMM(3, init_params="")
        model.emissionprob_ = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1],
                                        [0.05, 0.05, 0.2, 0.7]])
    else:
        model = PoissonHMM(3, init_params="")
        model.lambdas_ = np.array([[1.0, 5.0], [6.0, 1.0], [12.0, 10.0]])
    model.startprob_ = np.array([0.5, 0.3, 0.2])
    model.transmat_ = transmat
    return model


def sequences(kind, lengths=LENGTHS, seed=0):
    truth = truth_of(kind)
    X = np.vstack([truth.sample(n, random_state=seed + s)[0] for s, n in enumerate(lengths)])
    return X.astype(np.float64)


def started(kind, **options):
    """An estimator of ``kind`` with explicit, deliberately poor starting parameters."""
    rng = np.random.default_rng(3)
    options = {"init_params": "", "tol": 0.0, "max_iter": 15, **options}
    if kind.startswith("gaussian"):
        ct = kind.split("-")[1]
        model = GaussianHMM(3, covariance_type=ct, **options)
        model.means_ = truth_of(kind).means_ + rng.normal(0.0, 0.7, (3, 2))
        model.covariances_ = {"full": np.array([2.0 * np.eye(2)] * 3), "tied": 2.0 * np.eye(2),
                              "diag": np.full((3, 2), 2.0), "spherical": np.full(3, 2.0)}[ct]
    elif kind == "categorical":
        model = CategoricalHMM(3, **options)
        model.emissionprob_ = rng.dirichlet(np.ones(4), size=3)
    else:
        model = PoissonHMM(3, **options)
        model.lambdas_ = truth_of(kind).lambdas_ * 0.6 + 1.0
    model.startprob_ = np.full(3, 1.0 / 3)
    model.transmat_ = rng.dirichlet(np.full(3, 5.0), size=3)
    return model


def assert_same_fit(want, got, rtol=RTOL):
    assert got.n_iter_ == want.n_iter_
    np.testing.assert_allclose(got.lower_bounds_, want.lower_bounds_, rtol=rtol, atol=0)
    for name in ("startprob_", "transmat_") + EMISSION[type(want)]:
        a, b = getattr(want, name), getattr(got, name)
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.abs(a).max(), err_msg=name)


# --------------------------------------------------------------------------- the statistics


def reference_statistics(model, X, lengths):
    """start, xi_sum, loglik, gamma and the emission statistics by plain loops and scipy."""
    if isinstance(model, GaussianHMM):
        from emlab._covariance import MODELS

        full = MODELS[model.covariance_type].as_full(model.covariances_, 3, X.shape[1])
        log_emission = ref.log_gaussian(X, model.means_, full)
    elif isinstance(model, CategoricalHMM):
        log_emission = np.log(model.emissionprob_.T[X[:, 0].astype(int)])
    else:
        log_emission = np.column_stack([poisson.logpmf(X, lam).sum(axis=1)
                                        for lam in model.lambdas_])
    start, xi, gammas, total = np.zeros(3), np.zeros((3, 3)), [], 0.0
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    for a, b in zip(bounds[:-1], bounds[1:]):
        logprob, gamma, xi_q = ref.hmm_forward_backward(log_emission[a:b], model.startprob_,
                                                        model.transmat_)
        start += gamma[0]
        xi += xi_q
        gammas.append(gamma)
        total += logprob
    return start, xi, total, np.vstack(gammas)


@pytest.mark.parametrize("kind", ["gaussian-full", "gaussian-diag", "categorical", "poisson"])
def test_chunk_statistics_add_up_to_the_whole_and_to_the_reference(kind):
    lengths = [40, 25, 60, 35]
    X = sequences(kind, lengths, seed=10)
    model = started(kind)
    em_model = hmm_module._BaumWelch(model)
    params = model._current_params()
    whole = em_model.statistics(X, params, lengths=lengths)
    cuts = [(0, 1), (1, 3), (3, 4)]  # chunks of whole sequences: 40, 25 + 60, 35 rows
    bounds = np.cumsum([0] + lengths)
    chunks = ChunkList([X[bounds[a]:bounds[b]] for a, b in cuts],
                       [{"lengths": lengths[a:b]} for a, b in cuts])
    total = chunks.map_reduce(em_model.statistics, [params])[0]
    start, xi, loglik, gamma = reference_statistics(model, X, lengths)
    for stats in (whole, total):
        assert stats.weight == X.shape[0]
        assert stats.objective == pytest.approx(loglik, rel=1e-12)
        np.testing.assert_allclose(stats.start, start, rtol=1e-10)
        np.testing.assert_allclose(stats.xi_sum, xi, rtol=1e-10)
        emission = stats.emission
        if kind.startswith("gaussian"):
            nk, means, scatter = ref.weighted_stats(X, gamma)
            np.testing.assert_allclose(emission.nk, nk, rtol=1e-10)
            np.testing.assert_allclose(emission.means, means, rtol=1e-10, atol=1e-12)
            want = scatter if emission.second.ndim == 3 else np.diagonal(scatter, axis1=1, axis2=2)
            np.testing.assert_allclose(emission.second, want, rtol=1e-9, atol=1e-10)
        elif kind == "categorical":
            counts = np.array([[gamma[X[:, 0] == s, j].sum() for s in range(4)] for j in range(3)])
            np.testing.assert_allclose(emission.counts, counts, rtol=1e-10)
        else:
            np.testing.assert_allclose(emission.nk, gamma.sum(axis=0), rtol=1e-10)
            np.testing.assert_allclose(emission.sums, gamma.T @ X, rtol=1e-10)
    # the M-step of the summed statistics is the in-memory one
    a = em_model.params_from_statistics(whole, params)
    b = em_model.params_from_statistics(total, params)
    np.testing.assert_allclose(b.transmat, a.transmat, rtol=RTOL)


# --------------------------------------------------------------------------- Dask arrays


@pytest.mark.parametrize("kind", KINDS)
def test_dask_fit_equals_in_memory_fit(kind):
    X = sequences(kind)
    want = quiet(started(kind).fit, X, LENGTHS)
    assert want.n_iter_ == 15
    got = quiet(started(kind).fit, da.from_array(X, chunks=173), LENGTHS)
    assert_same_fit(want, got)
    assert got.n_features_in_ == X.shape[1]


def test_dask_chunks_are_whole_sequences():
    X = sequences("gaussian-full")
    data = GaussianHMM(3)._fit_data(da.from_array(X, chunks=(173, 1)), LENGTHS)
    ends = set(np.cumsum(LENGTHS).tolist())
    sizes = data.X.chunks[0]
    assert len(data.X.chunks[1]) == 1  # split columns merged
    assert set(np.cumsum(sizes).tolist()) <= ends  # every chunk ends where a sequence ends
    assert sizes == (165, 300, 80, 210, 95, 150)  # 120 + 45 grouped; 300 and 210 alone
    assert [e["lengths"].tolist() for e in data.per_chunk] == [[120, 45], [300], [80], [210],
                                                               [95], [150]]


@pytest.mark.parametrize("kind", ["gaussian-diag", "categorical", "poisson"])
def test_list_of_sequences_equals_in_memory_fit(kind, monkeypatch):
    X = sequences(kind)
    bounds = np.cumsum([0] + LENGTHS)
    pieces = [X[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    want = quiet(started(kind).fit, X, LENGTHS)
    monkeypatch.setattr(hmm_module, "LIST_CHUNK_ROWS", 200)  # several chunks, some grouped
    data = started(kind)._fit_data(pieces, None)
    assert data.groups == [(0, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7)]
    assert data.n_samples == X.shape[0]
    assert_same_fit(want, quiet(started(kind).fit, pieces))
    # NumPy and Dask sequences mixed, the Dask ones chunked across their length
    mixed = [da.from_array(p, chunks=70) if i % 2 else p for i, p in enumerate(pieces)]
    fitted = quiet(started(kind).fit, mixed)
    assert_same_fit(want, fitted)
    # decoding a list of NumPy sequences is decoding them concatenated
    np.testing.assert_array_equal(fitted.predict(pieces), fitted.predict(X, LENGTHS))
    assert fitted.score(pieces) == pytest.approx(fitted.score(X, LENGTHS), rel=1e-13)


def test_list_of_sequences_errors():
    X = sequences("categorical")
    with pytest.raises(ValueError, match="lengths must be None when X is a list of sequences"):
        CategoricalHMM(3).fit([X[:10], X[10:]], [5, 5])
    with pytest.raises(ValueError, match="same number of features: X\\[0\\] has 1, X\\[1\\] has 2"):
        PoissonHMM(3).fit([X[:10], np.ones((5, 2))])
    with pytest.raises(ValueError, match="X\\[1\\] must be 2-d"):
        PoissonHMM(3).fit([X[:10], np.ones(5)])
    bad = X[:30].astype(np.float64)
    bad[7, 0] = 1.5
    with pytest.raises(ValueError, match="X\\[1\\] must hold integer symbols; row 7 has"):
        CategoricalHMM(3).fit([X[:10], bad])
    with pytest.raises(ValueError, match="X\\[0\\] has 0 rows"):
        PoissonHMM(3).fit([da.zeros((0, 1), chunks=1), X[:10]])


def test_dask_nan_and_bad_values_are_named_by_chunk():
    lengths = [50] * 20  # with chunks of 100 rows: two sequences a chunk
    X = sequences("gaussian-full", lengths)
    X[234, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 NaN .* in chunk 2 \(rows 200 to 299\), "
                                         r"first at row 234"):
        GaussianHMM(3).fit(da.from_array(X, chunks=100), lengths)
    symbols = sequences("categorical", lengths)
    symbols[150, 0] = 1.5
    with pytest.raises(ValueError, match=r"X must hold integer symbols: 1 value\(s\) are not, the "
                                         r"first in chunk 1 \(rows 100 to 199\), at row 150"):
        CategoricalHMM(3).fit(da.from_array(symbols, chunks=100), lengths)
    symbols[150, 0] = -1.0
    with pytest.raises(ValueError, match=r"X must hold symbols >= 0: 1 value\(s\) are not, the "
                                         r"first in chunk 1"):
        CategoricalHMM(3).fit(da.from_array(symbols, chunks=100), lengths)
    symbols[150, 0] = 7.0
    with pytest.raises(ValueError, match="X holds symbol 7, out of range for n_features=4"):
        CategoricalHMM(3, n_features=4).fit(da.from_array(symbols, chunks=100), lengths)
    counts = sequences("poisson", lengths)
    counts[420, 1] = -2.0
    with pytest.raises(ValueError, match=r"X must hold non-negative counts: 1 value\(s\) are not, "
                                         r"the first in chunk 4 \(rows 400 to 499\), at row 420"):
        PoissonHMM(3).fit(da.from_array(counts, chunks=100), lengths)
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 1\)"):
        CategoricalHMM(3).fit(da.from_array(np.zeros((10, 2)), chunks=5))
    with pytest.raises(ValueError, match="lengths sum to 999, but X has 1000 rows"):
        PoissonHMM(3).fit(da.from_array(counts, chunks=100), [50] * 19 + [49])


def test_zero_probability_sequence_is_named_with_its_chunk():
    lengths = [50] * 8
    X = np.tile([[0.0], [1.0]], (200, 1))
    X[5 * 50 + 7, 0] = 2.0  # symbol 2 is impossible: sequence 5, in chunk 2
    model = CategoricalHMM(2, init_params="st")
    model.emissionprob_ = np.array([[0.5, 0.5, 0.0], [0.4, 0.6, 0.0]])
    with pytest.raises(FloatingPointError, match=r"sequence 5 \(in chunk 2\) has zero probability"):
        model.fit(da.from_array(X, chunks=100), lengths)
    with pytest.raises(FloatingPointError, match="sequence 5 has zero probability"):
        model.fit(X, lengths)


def test_inference_on_a_dask_array_is_refused_clearly():
    X = sequences("gaussian-diag")
    model = quiet(started("gaussian-diag", max_iter=3).fit, X, LENGTHS)
    dX = da.from_array(X, chunks=173)
    for method in (model.score, model.score_samples, model.predict, model.predict_proba,
                   model.decode, model.bic, model.aic):
        with pytest.raises(ValueError, match="X is a Dask array .* work on data in memory"):
            method(dX, LENGTHS)
    with pytest.raises(ValueError, match="X is a Dask array"):
        model.predict([X[:100], dX[100:]])
    fresh = started("gaussian-diag")
    with pytest.raises(ValueError, match="X is a Dask array"):
        fresh.fit_predict(dX, LENGTHS)
    assert not hasattr(fresh, "lower_bounds_")  # refused before fitting


@pytest.mark.parametrize("kind", ["gaussian-full", "categorical", "poisson"])
def test_dask_initialisation_and_fit_never_gather_X(kind):
    lengths = [400] * 60
    X = sequences(kind, lengths, seed=20)
    dX = da.from_array(X, chunks=3000)
    options = dict(random_state=0, tol=1e-6, max_iter=300)
    if kind == "gaussian-full":
        options["covariance_type"] = "full"
    cls = type(truth_of(kind))
    with dask.config.set(scheduler=guarded_scheduler(X.shape[0] // 2)):
        got = quiet(cls(3, **options).fit, dX, lengths)
    want = quiet(cls(3, **options).fit, X, lengths)
    if kind == "gaussian-full":
        # k-means++ on a sample and Lloyd over the chunks: another start, the same optimum
        assert got.score(X, lengths) / X.shape[0] == pytest.approx(
            want.score(X, lengths) / X.shape[0], abs=1e-3)
        # the covariance start alone ('c', means given) is the in-memory one
        with dask.config.set(scheduler=guarded_scheduler(X.shape[0] // 2)):
            chunked = quiet(started(kind, init_params="c", max_iter=5).fit, dX, lengths)
        assert_same_fit(quiet(started(kind, init_params="c", max_iter=5).fit, X, lengths), chunked)
    else:
        # the same random start as in memory (symbols and moments from one pass)
        assert_same_fit(want, got)
    assert np.all(np.diff(got.lower_bounds_) >= -1e-10 * np.abs(got.lower_bounds_[1:]))


def test_restarts_in_lockstep_on_a_dask_array():
    X = sequences("poisson")
    options = dict(n_init=3, random_state=1, tol=0.0, max_iter=10)
    want = quiet(PoissonHMM(3, **options).fit, X, LENGTHS)
    got = quiet(PoissonHMM(3, **options).fit, da.from_array(X, chunks=173), LENGTHS)
    assert_same_fit(want, got)


# --------------------------------------------------------------------------- memory maps


@pytest.mark.parametrize("kind", ["gaussian-full", "categorical", "poisson"])
def test_read_only_memmap_is_read_in_place(kind, tmp_path):
    k = 2
    if kind == "categorical":
        n, d = 1_000_000, 1
        X = np.random.default_rng(1).integers(0, 4, size=(n, 1)).astype(np.float64)
    else:
        n, d = 150_000, 12
        rng = np.random.default_rng(1)
        X = (rng.poisson(3.0, size=(n, d)) if kind == "poisson" else rng.normal(size=(n, d)))
        X = X.astype(np.float64)
    path = tmp_path / "X.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    assert not mapped.flags.writeable and isinstance(mapped, np.memmap)

    def make():  # the default start: k-means, the data's moments, the number of symbols
        model = type(truth_of(kind))(k, random_state=0, max_iter=4, tol=0.0)
        if kind == "gaussian-full":
            model.set_params(covariance_type="full")
        return model

    lengths = [n // 4] * 4
    want = quiet(make().fit, X, lengths)
    quiet(make().fit, mapped[:2000], [1000, 1000])  # compile read-only kernels outside the trace
    tracemalloc.start()
    got = quiet(make().fit, mapped, lengths)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # the Baum-Welch working set: posteriors and log-emissions (n, K) and the forward-backward
    # scratch (n, max(K, 4) + 1); a copy of X would add X.nbytes on top
    working = 8 * n * (2 * k + max(k, 4) + 1)
    assert peak < working + X.nbytes / 2, (
        f"{peak / 2**20:.1f} MiB traced, working set {working / 2**20:.1f} MiB: X "
        f"({X.nbytes / 2**20:.1f} MiB) was copied")
    # read-only arrays run Numba's read-only specialisation of the kernels, compiled
    # separately: with the fast-math reassociation flag its code can round differently
    # (measured: 1 ulp in startprob_), so the fits agree to round-off, not bit for bit
    np.testing.assert_allclose(got.lower_bounds_, want.lower_bounds_, rtol=1e-12, atol=0)
    for name in ("startprob_", "transmat_") + EMISSION[type(want)]:
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-10,
                                   atol=1e-13)


# --------------------------------------------------------------------------- a local cluster


@pytest.fixture(scope="module")
def client():
    # no dashboard; the scheduler's HTTP server on a free port (not 8787, which may be taken)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", scheduler_kwargs={"dashboard": False},
                                       env={"NUMBA_NUM_THREADS": "1"})
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.mark.parametrize("kind", ["gaussian-full", "categorical", "poisson"])
def test_fit_on_a_local_cluster_equals_in_memory(client, kind):
    X = sequences(kind)
    want = quiet(started(kind).fit, X, LENGTHS)
    got = quiet(started(kind).fit, da.from_array(X, chunks=173), LENGTHS)
    assert_same_fit(want, got)
    if kind == "gaussian-full":  # the k-means start, on the workers
        dX = da.from_array(X, chunks=173)
        model = quiet(GaussianHMM(3, covariance_type="full", random_state=0, tol=1e-6).fit, dX,
                      LENGTHS)
        assert np.all(np.diff(model.lower_bounds_) >= -1e-10 * np.abs(model.lower_bounds_[1:]))
