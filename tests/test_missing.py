"""GaussianMixture(missing='marginalize'): EM with missing values against a row-by-row
reference, against complete-data EM when nothing is missing, and on recoverable data."""

import warnings

import numba
import numpy as np
import pytest
from scipy.stats import multivariate_normal

import reference
from emlab import ConvergenceWarning, GaussianMixture, LikelihoodDecreaseWarning, MixtureParams
from emlab import _missing, mixture
from test_mixture import starting_values

TYPES = ["full", "tied", "diag", "spherical"]


def holes(rng, X, fraction):
    """Knock out a fraction of the entries at random, never a whole row."""
    X = X.copy()
    mask = rng.uniform(size=X.shape) < fraction
    mask[mask.all(axis=1), 0] = False
    X[mask] = np.nan
    return X


@pytest.mark.parametrize("covariance_type", TYPES)
def test_em_steps_match_the_row_by_row_reference(covariance_type, random_spd):
    rng = np.random.default_rng(0)
    X = holes(rng, rng.standard_normal((60, 3)) * [1.0, 2.0, 0.5] + rng.integers(0, 3, (60, 1)), 0.25)
    weights = np.array([0.3, 0.7])
    means = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    start, covariances = starting_values(covariance_type, weights, means, random_spd(2, 3))
    gm = GaussianMixture(2, covariance_type=covariance_type, missing="marginalize", max_iter=3, tol=0, **start)
    with pytest.warns(ConvergenceWarning):
        gm.fit(X)
    w, m, c = weights, means, covariances
    bounds = []
    for _ in range(3):
        ll, w, m, c = reference.em_step_missing(X, w, m, c, 1e-6, covariance_type)
        bounds.append(ll)
    np.testing.assert_allclose(gm.lower_bounds_, bounds, rtol=1e-11)
    np.testing.assert_allclose(gm.weights_, w, rtol=1e-9)
    np.testing.assert_allclose(gm.means_, m, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(MixtureParams.from_model(gm).full_covariances(), c, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_without_holes_the_missing_path_equals_the_fused_pass(covariance_type):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((500, 4)) + 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        params = MixtureParams.from_model(
            GaussianMixture(3, covariance_type=covariance_type, random_state=0, max_iter=2, tol=0).fit(X))
    ll, nk, sums, raw = _kernel_statistics(X, params, None, _missing.patterns(X))
    want = mixture.fused_statistics(X, params)
    got = (ll,) + mixture._centred(params.model, nk, sums, raw, params.means)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-9)


def test_marginalize_without_nan_is_the_ordinary_fit():
    X = np.random.default_rng(2).standard_normal((300, 2))
    a = GaussianMixture(2, random_state=0).fit(X)
    b = GaussianMixture(2, random_state=0, missing="marginalize").fit(X)
    np.testing.assert_array_equal(a.lower_bounds_, b.lower_bounds_)


def test_missing_values_are_recovered_from_and_scored():
    rng = np.random.default_rng(3)
    truth = np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 0.0]])
    labels = rng.integers(2, size=2000)
    X = truth[labels] + rng.standard_normal((2000, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1.0]])
    Xh = holes(rng, X, 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LikelihoodDecreaseWarning)
        gm = GaussianMixture(2, missing="marginalize", random_state=0, tol=1e-8, max_iter=500).fit(Xh)
    order = np.argsort(gm.means_[:, 0])
    np.testing.assert_allclose(gm.means_[order], truth, atol=0.15)
    assert np.all(np.diff(gm.lower_bounds_) >= -1e-12)
    # the density of a row with holes is the marginal of its observed coordinates
    i = int(np.flatnonzero(np.isnan(Xh).any(axis=1))[0])
    o = ~np.isnan(Xh[i])
    want = np.log(sum(w * multivariate_normal(m[o], c[np.ix_(o, o)]).pdf(Xh[i, o])
                      for w, m, c in zip(gm.weights_, gm.means_, gm.covariances_)))
    assert np.isclose(gm.score_samples(Xh[i:i + 1])[0], want, rtol=1e-12)
    proba = gm.predict_proba(Xh)
    assert np.allclose(proba.sum(axis=1), 1.0) and np.array_equal(gm.predict(Xh), proba.argmax(axis=1))


def test_nan_without_the_option_is_a_clear_error():
    X = np.random.default_rng(4).standard_normal((20, 3))
    X[[2, 5], 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains 2 NaN .* row\(s\) 2, 5.*missing='marginalize'"):
        GaussianMixture(2).fit(X)
    X[7] = np.nan
    with pytest.raises(ValueError, match="1 row\\(s\\) with no observed value, e.g. row 7"):
        GaussianMixture(2, missing="marginalize").fit(X)
    Y = np.random.default_rng(5).standard_normal((20, 3))
    Y[:, 2] = np.nan
    with pytest.raises(ValueError, match="1 column\\(s\\) with no observed value, e.g. column 2"):
        GaussianMixture(2, missing="marginalize").fit(Y)
    with pytest.raises(ValueError, match="missing must be one of"):
        GaussianMixture(2, missing="impute").fit(X)


def test_has_nan_sees_a_single_nan_and_nothing_else():
    X = np.random.default_rng(6).standard_normal((1000, 5)) * 1e300  # sums overflow to +-inf
    assert not _missing.has_nan(np.random.default_rng(6).standard_normal((1000, 5)))
    X[500, 3] = np.nan
    assert _missing.has_nan(X)


@pytest.mark.parametrize("d", [1, 3, 8, 9, 17])  # one byte of bits, a second byte, three
def test_patterns_group_rows_by_their_missing_features(d):
    rng = np.random.default_rng(d)
    X = rng.standard_normal((2000, d))
    X[rng.random(X.shape) < 0.15] = np.nan
    got = _missing.patterns(X)
    want = reference.nan_patterns(X)
    assert len(got) == len(want)
    for (mask, rows), (mask_ref, rows_ref) in zip(got, want):
        np.testing.assert_array_equal(mask, mask_ref)
        np.testing.assert_array_equal(rows, rows_ref)
    assert sum(rows.size for _, rows in got) == X.shape[0]


def _params(rng, covariance_type, k, d):
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(size=(k, d))
    if covariance_type in ("full", "tied"):
        a = rng.normal(size=(k if covariance_type == "full" else 1, d, d))
        covariances = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(d)
        covariances = covariances[0] if covariance_type == "tied" else covariances
    else:
        covariances = rng.uniform(0.5, 2.0, (k, d) if covariance_type == "diag" else k)
    return MixtureParams(weights, means, covariances, covariance_type=covariance_type)


def _kernel_statistics(X, params, weights, groups):
    if _missing.is_diagonal(params):
        return _missing.diagonal_statistics(X, params, weights)
    return _missing.full_statistics(X, params, weights, groups)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n", [300, 90_000])  # the serial twin, and the parallel kernel
@pytest.mark.parametrize("covariance_type", TYPES)
def test_kernels_equal_the_pattern_by_pattern_statistics(covariance_type, n, weighted):
    """The kernels (diagonal: NaN read in place; full, tied: per-pattern factors and
    regressions, the rows in one pass) against ``reference.missing_statistics``, which works a
    pattern at a time in NumPy (for diagonal models its regressions are 0 and its conditional
    variances the marginal ones)."""
    rng = np.random.default_rng(n + weighted)
    k, d = 4, 3
    params = _params(rng, covariance_type, k, d)
    X = holes(rng, rng.normal(size=(n, d)) * 1.5 + rng.integers(0, 3, (n, 1)), 0.3)
    X[:5] = np.nan  # whole rows missing: their log-density is log sum_k w_k = 0
    weights = rng.uniform(0, 2, n) * (rng.uniform(size=n) > 0.1) if weighted else None
    groups = _missing.patterns(X)
    got = _kernel_statistics(X, params, weights, groups)
    want = reference.missing_statistics(X, params, weights, groups, _missing.is_diagonal(params))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    for a, b in zip(got[1:], want[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * n)


def test_patterns_beyond_one_call_go_to_further_calls(monkeypatch):
    rng = np.random.default_rng(3)
    params = _params(rng, "full", 3, 5)
    X = holes(rng, rng.normal(size=(3000, 5)), 0.3)
    groups = _missing.patterns(X)
    whole = _missing.full_statistics(X, params, None, groups)
    log_prob = _missing.marginal_log_prob(X, params, groups)
    monkeypatch.setattr(_missing, "PATTERN_BYTES", 1)  # one pattern a call
    assert len(list(_missing._pattern_batches(params, groups))) == len(groups) > 10
    for a, b in zip(_missing.full_statistics(X, params, None, groups), whole):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-12)
    np.testing.assert_array_equal(_missing.marginal_log_prob(X, params, groups), log_prob)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_log_densities_with_holes_are_scipys(covariance_type):
    rng = np.random.default_rng(7)
    k, d = 3, 4
    params = _params(rng, covariance_type, k, d)
    X = holes(rng, rng.normal(size=(200, d)), 0.4)
    got = _missing.marginal_log_prob(X, params)
    covariances = params.full_covariances()
    for i, row in enumerate(X):
        seen = ~np.isnan(row)
        for c in range(k):
            want = np.log(params.weights[c]) + multivariate_normal.logpdf(
                row[seen], params.means[c, seen], covariances[c][np.ix_(seen, seen)])
            np.testing.assert_allclose(got[i, c], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_fit_with_holes_is_bitwise_the_same_on_one_thread(covariance_type):
    rng = np.random.default_rng(8)
    X = holes(rng, rng.normal(size=(120_000, 4)) + rng.integers(0, 3, (120_000, 1)) * 2, 0.2)
    fit = lambda: GaussianMixture(3, covariance_type=covariance_type, missing="marginalize",  # noqa: E731
                                  random_state=0, max_iter=5, tol=0)
    before = numba.get_num_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            numba.set_num_threads(1)
            a = fit().fit(X)
        finally:
            numba.set_num_threads(before)
        b = fit().fit(X)
    for name in ["weights_", "means_", "covariances_", "lower_bounds_"]:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.score_samples(X), b.score_samples(X))
