"""Hidden Markov model with Gaussian-mixture emissions (hmmlearn's ``GMMHMM``).

The emission density of state k is a mixture of ``n_mix`` Gaussians,
``p(x | k) = sum_m w_km N(x | mu_km, Sigma_km)``. Baum-Welch runs through
:class:`~emlab.hmm.BaseHMM` (the EM driver, its monotonicity guard, chunked and
Dask fits); this module supplies the emission model only:

* log-emissions: one fused kernel (:mod:`emlab._kernels.gmmhmm`) computes the
  log-densities of all ``K * n_mix`` components tile by tile and keeps only
  each state's log-sum-exp over its ``n_mix`` components (nothing of shape
  (n, K * n_mix) is formed);
* statistics: another kernel, in one pass over X, computes the
  responsibilities of the ``K * n_mix`` components (``gamma_tk`` times the
  within-state mixture posteriors) tile by tile and accumulates from them the
  centred Gaussian statistics of :func:`emlab.mixture.sufficient_statistics`
  (a :class:`~emlab.mixture.GaussianStatistics`, which chunks add by the
  pairwise update), again with no (n, K * n_mix) array;
* M-step: hmmlearn 0.3.3's MAP updates with its priors (``weights_prior``,
  ``means_prior``/``means_weight``, ``covars_prior``/``covars_weight``, in
  hmmlearn's ``GMMHMM`` parametrisation per covariance type), plus
  ``reg_covar`` on the diagonal; the priors' log-density is part of the
  objective, so the guard stays valid.
"""

from dataclasses import dataclass

import numpy as np

from . import _config, mixture
from ._covariance import MODELS, _check_positive_variances, cholesky_precisions, ridge_deficit
from ._kernels.gmmhmm import (
    emission_statistics_diag,
    emission_statistics_full,
    log_emission_diag,
    log_emission_full,
)
from ._validation import check_array, check_int, check_option, check_scalar
from .em import ChunkedData, SufficientStatistics
from .hmm import (
    COVARIANCE_TYPES,
    DEFAULT_MAX_ITER,
    BaseHMM,
    _data_shape,
    _doc,
    check_prior,
    check_probabilities,
    dirichlet_map,
    log_dirichlet,
)
from .kmeans import KMeans, distinct_rows


@dataclass(frozen=True)
class GMMEmission:
    """The emission parameters of a :class:`GMMHMM`.

    ``weights`` (K, M), ``means`` (K, M, d), ``covars`` in hmmlearn's shape:
    (K, M, d, d) 'full', (K, d, d) 'tied' (one matrix per state, shared by its
    mixture components), (K, M, d) 'diag', (K, M) 'spherical'.
    ``precisions_cholesky`` is that of the ``K * M`` components flattened, for
    the kernel model ``MODELS[kernel_type]`` ('full' for 'tied').
    """

    weights: np.ndarray
    means: np.ndarray
    covars: np.ndarray
    covariance_type: str
    precisions_cholesky: np.ndarray = None

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "weights", np.asarray(self.weights, dtype=np.float64))
        set_(self, "means", np.ascontiguousarray(self.means, dtype=np.float64))
        set_(self, "covars", np.asarray(self.covars, dtype=np.float64))
        if self.precisions_cholesky is None:
            set_(self, "precisions_cholesky", self._precisions_cholesky())

    def _precisions_cholesky(self):
        """The kernel's factors of the K * M components; a named error for a degenerate one."""
        k, m, d = self.means.shape
        ct = self.covariance_type

        def label(i):
            return f"state {i // m}, mixture component {i % m}"

        if ct == "tied":
            return np.repeat(cholesky_precisions(
                self.covars, "state {} (shared by its mixture components)".format), m, axis=0)
        if ct == "full":
            return cholesky_precisions(self.covars.reshape(k * m, d, d), label)
        if ct == "diag":
            variances = self.covars.reshape(k * m, d)
            _check_positive_variances(variances, label)
            return 1.0 / np.sqrt(variances)
        variances = self.covars.reshape(k * m)
        _check_positive_variances(variances[:, None], label)
        return 1.0 / np.sqrt(variances)

    @property
    def kernel_type(self):
        return "full" if self.covariance_type == "tied" else self.covariance_type

    @property
    def flat_means(self):
        k, m, d = self.means.shape
        return self.means.reshape(k * m, d)

    @property
    def log_weights(self):
        """``log w_km`` of the K * M components flattened (``-inf`` for a zero weight)."""
        with np.errstate(divide="ignore"):
            return np.log(self.weights).reshape(-1)

    def kernel_factors(self):
        """The kernels' precision factors of the K * M components: the transposed (lower)
        Cholesky factors (K * M, d, d) for 'full' and 'tied', ``1 / sigma`` (K * M, d) for
        'diag' and 'spherical' (its one value repeated over the features)."""
        k, m, d = self.means.shape
        pc = self.precisions_cholesky
        if self.kernel_type == "full":
            return np.ascontiguousarray(np.swapaxes(pc, -1, -2))
        if self.covariance_type == "spherical":
            return np.ascontiguousarray(np.broadcast_to(pc[:, None], (k * m, d)))
        return np.ascontiguousarray(pc)

    def _work(self, n):
        k, m, d = self.means.shape
        return n * k * m * (d * d if self.kernel_type == "full" else d)

    def component_log_prob(self, X):
        """``log w_km + log N(x | mu_km, Sigma_km)``, shape (n, K * M)."""
        out = MODELS[self.kernel_type].log_gaussian(X, self.flat_means, self.precisions_cholesky)
        out += self.log_weights
        return out

    def log_emission(self, X):
        """``log sum_m w_km N(x_t | mu_km, Sigma_km)``, shape (n, K), by one fused kernel."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        n = X.shape[0]
        out = np.empty((n, self.means.shape[0]))
        kernel = log_emission_full if self.kernel_type == "full" else log_emission_diag
        with _config.threads_for(self._work(n)):
            kernel(X, self.flat_means, self.kernel_factors(), self.log_weights,
                   _config.CHUNK_ROWS, out)
        return out

    def statistics(self, X, gamma):
        """``nk``, means and centred second moments of the K * M components, as
        :func:`emlab.mixture.sufficient_statistics` of the responsibilities ``gamma_tk
        p(m | x_t, k)`` about the current means, in one pass over X by a fused kernel
        (the responsibilities are never formed). ``gamma`` (n, K): the state posteriors.
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        gamma = np.ascontiguousarray(gamma, dtype=np.float64)
        n, d = X.shape
        c = self.means.shape[0] * self.means.shape[1]
        full = self.kernel_type == "full"
        second_shape = (c, d, d) if full else (c, d)
        nk, sums, second = np.empty(c), np.empty((c, d)), np.empty(second_shape)
        kernel = emission_statistics_full if full else emission_statistics_diag
        blocks = _config.n_blocks(n, c * (1 + d + int(np.prod(second_shape[1:]))))
        with _config.threads_for(self._work(n)):
            kernel(X, gamma, self.flat_means, self.kernel_factors(), self.log_weights, blocks,
                   nk, sums, second)
        return mixture._centred(MODELS[self.kernel_type], nk, sums, second, self.flat_means)

    def full_covariances(self):
        """(K, M, d, d) matrices, whatever the covariance type."""
        k, m, d = self.means.shape
        ct = self.covariance_type
        if ct == "full":
            return self.covars
        if ct == "tied":
            return np.broadcast_to(self.covars[:, None], (k, m, d, d)).copy()
        if ct == "diag":
            return self.covars[..., :, None] * np.eye(d)
        return self.covars[..., None, None] * np.eye(d)


def _shaped(value, name, shape):
    try:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), shape)
    except ValueError:
        raise ValueError(f"{name} must be a scalar or broadcast to shape {shape}; got shape "
                         f"{np.shape(value)}.") from None


def _flat_ridge_deficit(counts, exact, reg):
    """:func:`ridge_deficit` of independent variances: ``counts`` and ``exact`` of one shape."""
    counts, exact = np.ravel(counts), np.ravel(exact)
    return ridge_deficit(counts, exact[:, None], reg) if counts.size else 0.0


class GMMHMM(BaseHMM):
    __doc__ = _doc("""Hidden Markov model with Gaussian-mixture emissions (hmmlearn's ``GMMHMM``).

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states. The arguments up to ``random_state`` may be
        given by position in hmmlearn's order (``n_components, n_mix,
        min_covar, startprob_prior, transmat_prior, weights_prior,
        means_prior, means_weight, covars_prior, covars_weight, algorithm,
        covariance_type, random_state``); the rest are keyword-only.
    n_mix : int, default=1
        Number of Gaussian components of each state's emission density.
    min_covar : float, optional
        As hmmlearn 0.3.3 uses it: added to the diagonal of the data's
        covariance that starts every component's covariance (``init_params``
        with 'c'), nowhere else. Default None: ``reg_covar`` takes that place.
    weights_prior : float or array-like, default=1.0
        Dirichlet concentration (>= 1) of each state's mixture weights,
        broadcast to (n_components, n_mix).
    means_prior, means_weight : float or array-like, default=0.0
        The normal prior ``N(means_prior, Sigma_km / means_weight)`` of each
        component's mean; shapes (K, n_mix, d) and (K, n_mix).
    covars_prior, covars_weight : float, array-like or None, default=None
        hmmlearn's ``GMMHMM`` prior on the covariances, in its
        parametrisation. 'full': inverse-Wishart with scale ``covars_prior``
        (K, n_mix, d, d) and ``covars_weight`` (K, n_mix) degrees of freedom:
        ``Sigma = (psi^T + lambda (mu - m0)(mu - m0)^T + S) / (N + nu + d + 2)``.
        'tied' (one covariance per **state**, shared by its mixture
        components, as hmmlearn's GMMHMM): ``covars_prior`` (K, d, d),
        ``covars_weight`` (K,), denominator ``N_k + n_mix + nu + d + 1``.
        'diag': inverse-gamma with shape ``covars_prior`` (alpha) and scale
        ``covars_weight`` (beta), both (K, n_mix, d): ``sigma^2 = (lambda
        (mu - m0)^2 + 2 beta + S) / (N + 2 alpha + 3)``. 'spherical': alpha,
        beta of shape (K, n_mix): ``sigma^2 = (lambda |mu - m0|^2 + 2 beta +
        S) / (d N + d + 2 alpha + 2)``. None gives the flat prior for each
        type (maximum likelihood): 'full' psi=0, nu=-(d + 2); 'tied' psi=0,
        nu=-(n_mix + d + 1); 'diag' alpha=-1.5, beta=0; 'spherical'
        alpha=-(d + 2) / 2, beta=0. hmmlearn's defaults are the same except
        'spherical', where its alpha=-(n_mix + 2) / 2 is flat only when
        n_mix = d (by design: emlab's default prior is flat).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='diag'
        A covariance matrix per mixture component, one per state shared by
        its components ('tied', as hmmlearn's GMMHMM; not shared across
        states as in :class:`~emlab.GaussianHMM`), a diagonal per component,
        or one variance per component. ``algorithm`` and ``random_state``
        (described below) come before and after it by position.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance after the M-step; the Q
        deficit it causes is computed exactly and allowed by the guard (set
        it to 0 for hmmlearn's numbers).
    %(common)s
    params : str, default='stmcw'
        The parameters fit updates: 's' ``startprob_``, 't' ``transmat_``,
        'm' ``means_``, 'c' ``covars_``, 'w' ``weights_``.
    init_params : str, default='stmcw'
        The parameters fit initialises: uniform ``startprob_``, ``transmat_``
        and ``weights_``; ``means_`` as hmmlearn, by k-means into
        ``n_components`` clusters, then k-means into ``n_mix`` clusters within
        each (a cluster with fewer than ``n_mix`` rows: means drawn from a
        normal with the data's mean and covariance); ``covars_`` from the
        data's covariance plus ``reg_covar`` (``min_covar`` if given). On a
        Dask array or a list of sequences the k-means run on a uniform sample
        of rows (the covariance is the whole data's, in one pass). A letter
        left out means the attribute set before fit is the start.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components, n_mix)
    means_ : ndarray of shape (n_components, n_mix, n_features)
    covars_ : ndarray
        hmmlearn's shapes: (K, n_mix, d, d) 'full', (K, d, d) 'tied',
        (K, n_mix, d) 'diag', (K, n_mix) 'spherical'.
    %(attributes)s

    Notes
    -----
    The M-step is the exact maximiser of Q plus the log-prior: the scatter
    matrices are taken about the **new** means. hmmlearn 0.3.3 accumulates
    them about the means of the previous iteration (``X - self.means_`` in
    its E-step) and does not correct them, so when both 'm' and 'c' are
    fitted its covariances are larger than the maximiser's by ``N_km (xbar_km
    - mu_km_old)(...)^T / denominator``; with n_mix=1 it then also differs
    from its own ``GaussianHMM``. emlab's GMMHMM with n_mix=1 equals its
    :class:`~emlab.GaussianHMM`; with 'm' or 'c' left out of ``params`` (or at
    a fixed point) it equals hmmlearn's GMMHMM to round-off. The number of
    free parameters counts ``n_components * (n_mix - 1)`` weights (hmmlearn
    counts ``n_mix - 1``).
    %(notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from emlab.gmmhmm import GMMHMM
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-5, 1, (300, 1)), rng.normal(5, 1, (300, 1))])
    >>> model = GMMHMM(2, n_mix=2, random_state=0).fit(X)
    >>> bool(np.all(np.diff(model.lower_bounds_) >= -1e-10))
    True
    """)

    _emission_letters = "mcw"
    _emission_attributes = ("weights_", "means_", "covars_")

    def __init__(self, n_components=1, n_mix=1, min_covar=None, startprob_prior=1.0,
                 transmat_prior=1.0, weights_prior=1.0, means_prior=0.0, means_weight=0.0,
                 covars_prior=None, covars_weight=None, algorithm="viterbi",
                 covariance_type="diag", random_state=None, *, reg_covar=1e-6,
                 max_iter=DEFAULT_MAX_ITER, tol=1e-3, verbose=0, params="stmcw",
                 init_params="stmcw", implementation="log", n_init=1, on_decrease="warn",
                 **aliases):
        self.n_components = n_components
        self.n_mix = n_mix
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.weights_prior = weights_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.covariance_type = covariance_type
        self.random_state = random_state
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.on_decrease = on_decrease
        self._take_aliases(aliases)

    # ----------------------------------------------------------------------- checks

    def _check_settings(self):
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_int(self.n_mix, "n_mix", low=1)
        check_scalar(self.reg_covar, "reg_covar", low=0.0)
        if self.min_covar is not None:
            check_scalar(self.min_covar, "min_covar", low=0.0)
        for name in ("means_prior", "means_weight", "covars_prior", "covars_weight"):
            value = getattr(self, name)
            if value is None and name.startswith("covars"):
                continue
            arr = (np.asarray(value, dtype=np.float64)
                   if not isinstance(value, (bool, np.bool_, str)) else np.array(np.nan))
            if arr.dtype == object or not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite numbers; got {value!r}.")
            if name == "means_weight" and np.any(arr < 0):
                raise ValueError(f"means_weight must be >= 0; got {value!r}.")
        return super()._check_settings()

    def _check_X(self, X, fitting):
        n_features = None
        if not fitting and hasattr(self, "means_") and np.ndim(self.means_) == 3:
            n_features = np.shape(self.means_)[2]
        return check_array(X, estimator=type(self).__name__, n_features=n_features)

    def _moments_needed(self):
        return "full" if "c" in self.init_params else None

    # ----------------------------------------------------------------------- priors

    def _priors(self, k, m, d):
        """The priors broadcast to their shapes: a dict (see the class docstring)."""
        ct = self.covariance_type
        out = {
            "weights": check_prior(self.weights_prior, "weights_prior", (k, m)),
            "m0": _shaped(self.means_prior, "means_prior", (k, m, d)),
            "lam": _shaped(self.means_weight, "means_weight", (k, m)),
        }
        cp, cw = self.covars_prior, self.covars_weight
        if ct == "full":
            out["psi"] = _shaped(0.0 if cp is None else cp, "covars_prior", (k, m, d, d))
            out["nu"] = _shaped(-(d + 2.0) if cw is None else cw, "covars_weight", (k, m))
        elif ct == "tied":
            out["psi"] = _shaped(0.0 if cp is None else cp, "covars_prior", (k, d, d))
            out["nu"] = _shaped(-(m + d + 1.0) if cw is None else cw, "covars_weight", (k,))
        elif ct == "diag":
            out["alpha"] = _shaped(-1.5 if cp is None else cp, "covars_prior", (k, m, d))
            out["beta"] = _shaped(0.0 if cw is None else cw, "covars_weight", (k, m, d))
        else:
            out["alpha"] = _shaped(-(d + 2.0) / 2.0 if cp is None else cp, "covars_prior", (k, m))
            out["beta"] = _shaped(0.0 if cw is None else cw, "covars_weight", (k, m))
        if "beta" in out and np.any(out["beta"] < 0):
            raise ValueError(f"covars_weight (the inverse-gamma scale) must be >= 0 for "
                             f"covariance_type={ct!r}.")
        return out

    # ----------------------------------------------------------------------- parameters

    def _emission(self, weights, means, covars):
        k, m = self.n_components, check_int(self.n_mix, "n_mix", low=1)
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        means = np.asarray(means, dtype=np.float64)
        if means.ndim != 3 or means.shape[:2] != (k, m):
            raise ValueError(f"means_ must have shape (n_components={k}, n_mix={m}, n_features); "
                             f"got {means.shape}.")
        if not np.all(np.isfinite(means)):
            raise ValueError("means_ contains NaN or infinite values.")
        d = means.shape[2]
        weights = check_probabilities(weights, "weights_", (k, m))
        covars = np.asarray(covars, dtype=np.float64)
        shape = {"full": (k, m, d, d), "tied": (k, d, d), "diag": (k, m, d),
                 "spherical": (k, m)}[self.covariance_type]
        if covars.shape != shape:
            raise ValueError(f"covars_ must have shape {shape} for covariance_type="
                             f"{self.covariance_type!r}; got {covars.shape}.")
        if not np.all(np.isfinite(covars)):
            raise ValueError("covars_ contains NaN or infinite values.")
        return GMMEmission(weights, means, covars, self.covariance_type)

    def _emission_from_attributes(self):
        return self._emission(self.weights_, self.means_, self.covars_)

    def _kmeans_means(self, X, cv, rng):
        """hmmlearn's start: k-means into K clusters, then into n_mix within each."""
        k, m = self.n_components, self.n_mix
        labels = KMeans(n_clusters=k, n_init=1, random_state=rng).fit(X).labels_
        means = []
        for j in range(k):
            rows = X[labels == j]
            if rows.shape[0] >= m and distinct_rows(rows).shape[0] >= m:
                means.append(KMeans(n_clusters=m, n_init=1, random_state=rng)
                             .fit(rows).cluster_centers_)
            else:
                means.append(rng.multivariate_normal(X.mean(axis=0), cv, size=m))
        return np.stack(means)

    def _init_emission(self, X, rng, summary=None):
        k, m, (n, d) = self.n_components, self.n_mix, _data_shape(X)
        floor = self.reg_covar if self.min_covar is None else self.min_covar
        cv = None
        if summary is not None and summary.moments is not None:
            # the data's covariance (unbiased, as numpy.cov) from the summary's moments
            cv = (summary.moments.second[0] / (n - 1) if n > 1 else np.zeros((d, d)))
            cv = cv + floor * np.eye(d)
        if "m" in self.init_params:
            if isinstance(X, ChunkedData):
                size = max(mixture.INIT_SAMPLE_MIN, mixture.INIT_SAMPLE_ROWS * k * m)
                sample = X.sample_rows(size, rng)
            else:
                sample = X
            scv = cv if cv is not None else (
                np.atleast_2d(np.cov(sample.T)) if sample.shape[0] > 1 else np.zeros((d, d))
            ) + floor * np.eye(d)
            means = self._kmeans_means(sample, scv, rng)
        else:
            means = self._given("means_", "m")
        weights = np.full((k, m), 1.0 / m) if "w" in self.init_params \
            else self._given("weights_", "w")
        if "c" in self.init_params:
            covars = {"full": np.broadcast_to(cv, (k, m, d, d)).copy(),
                      "tied": np.broadcast_to(cv, (k, d, d)).copy(),
                      "diag": np.broadcast_to(np.diag(cv), (k, m, d)).copy(),
                      "spherical": np.full((k, m), np.mean(np.diag(cv)))}[self.covariance_type]
        else:
            covars = self._given("covars_", "c")
        emission = self._emission(weights, means, covars)
        if emission.means.shape[2] != d:
            raise ValueError(f"means_ has {emission.means.shape[2]} features, but X has {d}.")
        return emission

    def _set_emission(self, emission):
        self.weights_ = emission.weights
        self.means_ = emission.means
        self.covars_ = emission.covars

    # ----------------------------------------------------------------------- E-step

    def _log_emission(self, X, emission):
        return emission.log_emission(X)

    def _emission_statistics(self, X, gamma, emission):
        """The centred :class:`~emlab.mixture.GaussianStatistics` of the K * n_mix components.

        Responsibilities ``gamma_tk p(m | x_t, k)``, formed tile by tile inside
        the kernel (:meth:`GMMEmission.statistics`); 'tied' takes full scatter
        matrices per component (summed over each state's components in the
        M-step). Accumulated about the current means; chunks add by the
        pairwise update.
        """
        if not any(c in self.params for c in "mcw"):
            return SufficientStatistics(0.0, X.shape[0])
        nk, means, second = emission.statistics(X, gamma)
        return mixture.GaussianStatistics(0.0, X.shape[0], nk=nk, means=means, second=second)

    # ----------------------------------------------------------------------- M-step

    def _emission_from_statistics(self, stats, emission):
        """hmmlearn's MAP M-step with the scatter about the new means, plus ``reg_covar``.

        Returns the new emission parameters and the Q deficit of ``reg_covar``.
        """
        learn_w, learn_m, learn_c = ("w" in self.params, "m" in self.params, "c" in self.params)
        if not (learn_w or learn_m or learn_c):
            return emission, 0.0
        ct = self.covariance_type
        k, m, d = emission.means.shape
        pr = self._priors(k, m, d)
        nk, xbar, second = stats.nk, stats.means, stats.second
        tiny = 10 * np.finfo(np.float64).eps * max(nk.sum(), 1.0)
        weights = emission.weights
        if learn_w:
            weights = dirichlet_map(nk.reshape(k, m), pr["weights"], weights)
        old = emission.flat_means
        m0, lam = pr["m0"].reshape(k * m, d), pr["lam"].reshape(k * m)
        means = old
        if learn_m:
            den = nk + lam
            fresh = den > tiny
            safe = np.where(fresh, den, 1.0)[:, None]
            means = np.where(fresh[:, None], (lam[:, None] * m0 + nk[:, None] * xbar) / safe, old)
        covars, deficit = emission.covars, 0.0
        if learn_c:
            model = MODELS[emission.kernel_type]
            scatter = model.add_outer(second, xbar - means, nk)  # about the new means
            scatter = model.add_outer(scatter, means - m0, lam)  # the mean prior's share
            reg = float(self.reg_covar)
            if ct == "full":
                counts = nk + pr["nu"].reshape(-1) + d + 2.0
                total = scatter + np.swapaxes(pr["psi"], -1, -2).reshape(k * m, d, d)
                live = np.flatnonzero(counts > tiny)
                cov, deficit = model.covariances(counts, total, reg, live,
                                                 emission.covars.reshape(k * m, d, d))
                covars = cov.reshape(k, m, d, d)
            elif ct == "tied":
                counts = nk.reshape(k, m).sum(axis=1) + m + pr["nu"] + d + 1.0
                total = scatter.reshape(k, m, d, d).sum(axis=1) + np.swapaxes(pr["psi"], -1, -2)
                live = np.flatnonzero(counts > tiny)
                covars, deficit = model.covariances(counts, total, reg, live, emission.covars)
            elif ct == "diag":
                counts = nk[:, None] + 2.0 * pr["alpha"].reshape(k * m, d) + 3.0
                total = scatter + 2.0 * pr["beta"].reshape(k * m, d)
                live = counts > tiny
                exact = total / np.where(live, counts, 1.0)
                deficit = _flat_ridge_deficit(counts[live], exact[live], reg)
                covars = np.where(live, exact + reg,
                                  emission.covars.reshape(k * m, d)).reshape(k, m, d)
            else:
                counts = d * nk + d + 2.0 * pr["alpha"].reshape(-1) + 2.0
                total = scatter.sum(axis=1) + 2.0 * pr["beta"].reshape(-1)
                live = counts > tiny
                exact = total / np.where(live, counts, 1.0)
                deficit = _flat_ridge_deficit(counts[live], exact[live], reg)
                covars = np.where(live, exact + reg, emission.covars.reshape(-1)).reshape(k, m)
        return GMMEmission(weights, means.reshape(k, m, d), covars, ct), deficit

    def _log_emission_prior(self, emission):
        """The log-density (no constants) of the priors, whose MAP is the M-step.

        Weights: ``sum (alpha - 1) log w``. 'full', per component: ``-a/2
        log|Sigma| - 1/2 tr(Sigma^-1 (psi^T + lambda (mu - m0)(mu - m0)^T))``
        with ``a = nu + d + 2``; 'tied', per state, ``a = n_mix + nu + d + 1``
        and the mean terms of its components; 'diag', per feature, ``-(2
        alpha + 3)/2 log sigma^2 - (lambda (mu - m0)^2 + 2 beta) / (2
        sigma^2)``; 'spherical' ``-(d + 2 alpha + 2)/2 log sigma^2 - (lambda
        |mu - m0|^2 + 2 beta) / (2 sigma^2)``. 0 for the flat defaults.
        """
        ct = self.covariance_type
        k, m, d = emission.means.shape
        pr = self._priors(k, m, d)
        total = log_dirichlet(emission.weights, pr["weights"])
        diff = emission.means - pr["m0"]
        lam = pr["lam"]
        if ct == "diag":
            var = emission.covars
            a, b = pr["alpha"], pr["beta"]
            return total + float(np.sum(-0.5 * (2 * a + 3) * np.log(var)
                                        - (lam[:, :, None] * diff**2 + 2 * b) / (2 * var)))
        if ct == "spherical":
            var = emission.covars
            a, b = pr["alpha"], pr["beta"]
            return total + float(np.sum(-0.5 * (d + 2 * a + 2) * np.log(var)
                                        - (lam * np.sum(diff**2, axis=2) + 2 * b) / (2 * var)))
        pcs = emission.precisions_cholesky.reshape(k, m, d, d)  # 'tied': repeated per component
        for j in range(k):
            for c in range(m):
                total -= 0.5 * lam[j, c] * float(np.sum((diff[j, c] @ pcs[j, c]) ** 2))
        if ct == "full":
            psi_t, a = np.swapaxes(pr["psi"], -1, -2), pr["nu"] + d + 2.0
            for j in range(k):
                for c in range(m):
                    u = pcs[j, c]
                    log_det = -2.0 * float(np.sum(np.log(np.diag(u))))
                    total -= 0.5 * a[j, c] * log_det + 0.5 * float(np.sum((psi_t[j, c] @ u) * u))
        else:
            psi_t, a = np.swapaxes(pr["psi"], -1, -2), pr["nu"] + m + d + 1.0
            for j in range(k):
                u = pcs[j, 0]
                log_det = -2.0 * float(np.sum(np.log(np.diag(u))))
                total -= 0.5 * a[j] * log_det + 0.5 * float(np.sum((psi_t[j] @ u) * u))
        return total

    # ----------------------------------------------------------------------- the rest

    def _n_emission_parameters(self):
        k, m, d = np.shape(self.means_)
        n = 0
        if "m" in self.params:
            n += k * m * d
        if "c" in self.params:
            n += {"spherical": k * m, "diag": k * m * d, "full": k * m * d * (d + 1) // 2,
                  "tied": k * d * (d + 1) // 2}[self.covariance_type]
        if "w" in self.params:
            n += k * (m - 1)
        return n

    def _sample_emission(self, emission, states, rng):
        k, m, d = emission.means.shape
        cum = np.cumsum(emission.weights, axis=1)
        cum /= cum[:, -1:]
        u = rng.random(states.shape[0])
        comps = np.minimum((cum[states] <= u[:, None]).sum(axis=1), m - 1)
        chol = np.linalg.cholesky(emission.full_covariances())  # (K, M, d, d)
        z = rng.standard_normal((states.shape[0], d))
        X = np.empty((states.shape[0], d))
        for j in range(k):
            for c in range(m):
                rows = np.flatnonzero((states == j) & (comps == c))
                if rows.size:
                    X[rows] = emission.means[j, c] + z[rows] @ chol[j, c].T
        return X


__all__ = ["GMMHMM", "GMMEmission"]
