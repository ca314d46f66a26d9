"""Gaussian mixtures fitted by EM, with full, tied, diagonal or spherical covariances."""

import warnings
import zipfile
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import _compile, _config, _missing
from ._dask import DaskData, is_dask_array, map_rows
from ._base import ParamsMixin
from ._covariance import MODELS
from ._kernels.mixture import diag_step_kernel, full_step_kernel, log_normalize, scatter_kernel
from ._validation import (
    check_array,
    check_int,
    check_is_fitted,
    check_labels,
    check_means,
    check_option,
    check_random_state,
    check_sample_weight,
    check_scalar,
    check_scale,
    check_weights,
    input_dtype,
)
from .em import (ChunkedData, EMResult, SufficientStatistics, check_em_options, decrease_rtol_for,
                 fit_em)
from .exceptions import (
    DegenerateCovarianceError,
    DegenerateCovarianceWarning,
    EmptyComponentWarning,
    ModelFileError,
    UnderflowWarning,
)
from .kmeans import KMeans, distinct_rows, kmeans_plusplus, lloyd_chunked, squared_distances

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
#: Chunked data (Dask) seed on a uniform sample of this many rows per component ...
INIT_SAMPLE_ROWS = 1000
#: ... and at least this many.
INIT_SAMPLE_MIN = 10_000
MISSING = ("error", "marginalize")
EPS = float(np.finfo(np.float64).eps)
NONE_EMPTY = np.empty(0, dtype=np.intp)  # no empty component (read only, never written)
NONE_EMPTY.flags.writeable = False
COVARIANCE_TYPES = tuple(MODELS)


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class MixtureParams:
    """Parameters of a Gaussian mixture.

    Parameters
    ----------
    weights : ndarray of shape (n_components,)
    means : ndarray of shape (n_components, n_features)
    covariances : ndarray
        Shaped by ``covariance_type`` as in scikit-learn: (K, d, d) 'full',
        (d, d) 'tied', (K, d) 'diag', (K,) 'spherical'.
    precisions_cholesky : ndarray, optional
        Computed from ``covariances`` when not given; same shape.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray = None
    covariance_type: str = "full"

    def __post_init__(self):
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        set_ = object.__setattr__
        set_(self, "weights", np.asarray(self.weights, dtype=np.float64))
        set_(self, "means", np.ascontiguousarray(self.means, dtype=np.float64))
        set_(self, "covariances", np.asarray(self.covariances, dtype=np.float64))
        k = self.means.shape[0]
        if (self.weights.shape != (k,) or not np.isfinite(self.weights).all()
                or (self.weights < 0).any()):
            raise ValueError(f"weights must be {k} finite non-negative numbers; got {self.weights}.")
        shape = self.model.shape(*self.means.shape)
        if self.covariances.shape != shape:
            raise ValueError(
                f"{self.covariance_type} covariances must have shape {shape}; got {self.covariances.shape}."
            )
        if self.precisions_cholesky is None:
            set_(self, "precisions_cholesky", self.model.precision_cholesky(self.covariances))

    @property
    def model(self):
        return MODELS[self.covariance_type]

    @classmethod
    def from_model(cls, model):
        """The parameters of a fitted :class:`GaussianMixture`."""
        check_is_fitted(model, "weights_")
        return cls(model.weights_, model.means_, model.covariances_, model.precisions_cholesky_,
                   model.covariance_type)

    @property
    def n_components(self):
        return self.weights.shape[0]

    def full_covariances(self):
        """The covariances as (K, d, d) matrices, whatever the covariance type."""
        return self.model.as_full(self.covariances, *self.means.shape)


def as_params(params):
    """Accept a :class:`MixtureParams` or a fitted :class:`GaussianMixture`."""
    if isinstance(params, MixtureParams):
        return params
    return MixtureParams.from_model(params)


def _log_weights(weights):
    if weights.size and weights.min() > 0:  # no log(0) to silence (an errstate costs 1-2 us)
        return np.log(weights)
    with np.errstate(divide="ignore"):
        return np.log(weights)


# --------------------------------------------------------------------------- E-step pieces


def weighted_log_prob(X, params):
    """``log w_k + log N(x_i | mu_k, Sigma_k)``, shape (n, K). A zero weight gives ``-inf``."""
    log_dens = params.model.log_gaussian(X, params.means, params.precisions_cholesky)
    return log_dens + _log_weights(params.weights)


def log_prob_resp(X, params):
    """Per-sample log-likelihood ``log p(x_i)`` (n,) and responsibilities (n, K)."""
    log_prob = weighted_log_prob(X, params)
    log_norm = np.empty(X.shape[0])
    resp = np.empty_like(log_prob)
    with _config.threads_for(log_prob.size * 16):
        log_normalize(log_prob, _config.CHUNK_ROWS, log_norm, resp)
    return log_norm, resp


def warn_underflow(scores, stacklevel=3):
    """One warning naming the rows whose log-likelihood is -inf (their density underflowed)."""
    rows = np.flatnonzero(np.isneginf(scores))
    if rows.size:
        where = ", ".join(str(r) for r in rows[:5]) + (", ..." if rows.size > 5 else "")
        warnings.warn(
            f"{rows.size} of {scores.shape[0]} row(s) have log-likelihood -inf (rows {where}): "
            f"their density underflowed to 0 under every component, so predict labels them "
            f"arbitrarily. They lie far outside the fitted data, or X is not on the scale the "
            f"model was fitted on.", UnderflowWarning, stacklevel=stacklevel)


def open_saved_npz(path, bad):
    """A saved model's ``.npz`` archive, opened with ``allow_pickle=False``.

    ``bad(what)`` makes the error (a :class:`~emlab.exceptions.ModelFileError`
    naming the file) for a file that is not such an archive: pickled or text
    data, an empty or truncated file, a single ``.npy`` array. A missing file
    stays a FileNotFoundError.
    """
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError:  # numpy: "... contains pickled data" (random bytes, a pickle, text)
        raise bad("it is not a .npz archive of arrays (emlab never writes pickled data, "
                  "and does not read it)") from None
    except (EOFError, zipfile.BadZipFile, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise bad(f"it is empty, truncated or damaged ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise bad("it holds a single array (.npy), not the .npz archive save writes")
    return data


def label_permutation(assigned, labels, n_components):
    """The renumbering of a start's clusters that agrees most with partial labels.

    A k-means start numbers its clusters arbitrarily, and the labelled rows
    would contradict it. ``mapping[c]`` is the component cluster ``c``
    becomes: the one maximising the number of labelled rows whose cluster
    takes their label (an assignment problem on the contingency table). The
    identity without labels.
    """
    mapping = np.arange(n_components)
    if labels is None or not np.any(labels >= 0):
        return mapping
    from scipy.optimize import linear_sum_assignment

    known = labels >= 0
    table = np.zeros((n_components, n_components))
    np.add.at(table, (assigned[known], labels[known]), 1.0)
    rows, cols = linear_sum_assignment(-table)
    mapping[rows] = cols
    return mapping


def align_to_labels(assigned, labels, n_components):
    """Hard assignments renumbered by :func:`label_permutation`."""
    return label_permutation(assigned, labels, n_components)[assigned]


def mask_labelled(log_prob, labels):
    """Labelled rows keep only their component's entry (the others become -inf)."""
    known = np.flatnonzero(labels >= 0)
    if known.size:
        keep = log_prob[known, labels[known]].copy()
        log_prob[known] = -np.inf
        log_prob[known, labels[known]] = keep


# --------------------------------------------------------------------------- M-step


def sufficient_statistics(X, resp, centers, covariance_type="full"):
    """``nk``, the weighted means and the centred second moments, in one pass over X.

    The second moments are scatter matrices ``sum_i r_ik (x_i - m_k)(x_i - m_k)^T``
    (K, d, d) for 'full' and 'tied', and their diagonals (K, d) for 'diag' and
    'spherical', about the new means ``m_k``. ``centers`` (K, d) is the shift
    the accumulation is made about; the closer to the new means, the smaller
    the correction (the current means are a good choice).
    """
    model = MODELS[covariance_type]
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    nk, sums, second = model.raw_stats(X, resp, centers)
    return _centred(model, nk, sums, second, centers)


def _centred(model, nk, sums, second, centers):
    if nk.size and nk.min() > 0:
        shift = sums / nk[:, None]
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(nk[:, None] > 0, sums / nk[:, None], 0.0)
    return nk, centers + shift, model.centre(nk, shift, second)


PRIOR_KEYS = ("shrinkage", "mean", "dof", "scale")


def resolve_prior(prior, X, sample_weight, n_components, covariance_type):
    """The conjugate prior's hyperparameters, with data-driven defaults (as R's mclust).

    ``prior`` is None (maximum likelihood), ``'conjugate'`` (the defaults), or a
    dict overriding some of them:

    * ``shrinkage`` (kappa_p, default 0.01): the prior's weight on the mean, in samples;
    * ``mean`` (mu_p, default the mean of X): the prior mean of every component mean;
    * ``dof`` (nu_p, default d + 2): degrees of freedom of the covariance prior;
    * ``scale`` (default the covariance of X divided by K^(2/d); its diagonal for
      'diag', its mean variance for 'spherical'): the scale of the covariance prior.

    Means get ``N(mu_p, Sigma_k / kappa_p)``; covariances an inverse-Wishart
    ('full', 'tied'; one shared for 'tied') or inverse-gamma ('diag' per
    variance, 'spherical') prior. Fraley and Raftery (2007), "Bayesian
    regularization for normal mixture estimation and model-based clustering".
    """
    if prior is None:
        return None
    if isinstance(prior, str):
        check_option(prior, "prior", ("conjugate",))
        prior = {}
    if not isinstance(prior, dict):
        raise ValueError(f"prior must be None, 'conjugate' or a dict; got {prior!r}.")
    unknown = sorted(set(prior) - set(PRIOR_KEYS))
    if unknown:
        raise ValueError(f"unknown prior key(s) {unknown}; the keys are {list(PRIOR_KEYS)}.")
    model = MODELS[covariance_type]
    if isinstance(X, ChunkedData):  # the moments from one pass over the chunks
        n, d = X.n_samples, X.n_features
        start = ("full", 1, np.zeros((1, d)), None)
        stats = X.map_reduce(_start_statistics, [start])[0]
        data_mean, data_cov = stats.means[0], stats.second[0] / stats.nk[0]
    else:
        n, d = X.shape
        w = np.ones(n) if sample_weight is None else sample_weight
        data_mean = np.average(X, axis=0, weights=w)
        data_cov = (np.atleast_2d(np.cov(X, rowvar=False, aweights=w, bias=True)) if n > 1
                    else np.eye(d))
    out = {"shrinkage": check_scalar(prior.get("shrinkage", 0.01), "prior['shrinkage']", low=0.0),
           "dof": check_scalar(prior.get("dof", d + 2.0), "prior['dof']", low=0.0)}
    if out["shrinkage"] <= 0:
        raise ValueError("prior['shrinkage'] must be positive.")
    if out["dof"] <= d - 1:
        raise ValueError(f"prior['dof'] must exceed n_features - 1 = {d - 1}; got {out['dof']}.")
    mean = prior.get("mean", data_mean)
    out["mean"] = np.asarray(mean, dtype=np.float64)
    if out["mean"].shape != (d,) or not np.all(np.isfinite(out["mean"])):
        raise ValueError(f"prior['mean'] must be {d} finite numbers; got {mean!r}.")
    scale = prior.get("scale")
    if scale is None:
        scale = model.default_scale(data_cov, n_components, d)
        if np.min(np.linalg.eigvalsh(np.atleast_2d(data_cov))) <= 0:
            scale = scale + 1e-6 * max(np.trace(np.atleast_2d(data_cov)) / d, 1.0) * (
                np.eye(d) if np.ndim(scale) == 2 else 1.0)
    scale = np.asarray(scale, dtype=np.float64)
    expected = {"full": (d, d), "tied": (d, d), "diag": (d,), "spherical": ()}[covariance_type]
    if scale.shape != expected or not np.all(np.isfinite(scale)):
        raise ValueError(f"prior['scale'] must have shape {expected} for covariance_type="
                         f"{covariance_type!r}; got {scale.shape}.")
    positive = np.linalg.eigvalsh(scale).min() > 0 if scale.ndim == 2 else np.all(scale > 0)
    if not positive:
        raise ValueError("prior['scale'] must be positive (definite).")
    out["scale"] = scale
    return out


def log_prior(params, prior):
    """``sum_k log p(mu_k, Sigma_k)`` under the conjugate prior (0 without one).

    Every component carries its term, whatever its weight: the MAP M-step
    updates all of them.
    """
    if prior is None:
        return 0.0
    model = params.model
    kappa = prior["shrinkage"]
    live = np.ones(params.n_components, dtype=bool)
    # log N(mu_k | mu_p, Sigma_k / kappa) = log N(mu_p | mu_k, Sigma_k / kappa)
    mean_terms = model.log_gaussian(prior["mean"][None, :], params.means,
                                    params.precisions_cholesky * np.sqrt(kappa))[0]
    return float(np.sum(mean_terms[live])) + model.log_prior_covariances(
        params.covariances, params.precisions_cholesky, prior["scale"], prior["dof"], live)


class MStep(NamedTuple):
    """What an M-step returns.

    params : MixtureParams
    empty : ndarray of int
        Components with no responsibility, frozen with weight 0.
    ridge_deficit : float
        How far ``Q(params | previous)`` falls short of its maximum because of
        ``reg_covar`` (a total over samples; 0 when ``reg_covar=0``).
    """

    params: MixtureParams
    empty: np.ndarray
    ridge_deficit: float


def params_from_statistics(nk, means, second, reg_covar, covariance_type, previous=None,
                           prior=None):
    """The closed-form M-step from centred statistics.

    ``w_k = N_k / N``, ``mu_k`` the weighted means, and the covariances of the
    model (scatter / N_k for 'full'; pooled for 'tied'; per-feature variances for
    'diag'; their mean over features for 'spherical'), plus ``reg_covar`` on the
    diagonal.

    With a conjugate ``prior`` (see :func:`resolve_prior`) this is the MAP
    M-step: the maximiser of Q plus the log-prior, with means shrunk towards
    the prior mean, ``mu_k = (N_k xbar_k + kappa mu_p) / (N_k + kappa)``, and
    covariances ``(B_k + scale) / (N_k + dof + d + 2)`` for 'full' (the other
    models alike), where ``B_k`` adds ``kappa N_k / (N_k + kappa) (xbar_k -
    mu_p)(xbar_k - mu_p)^T`` to the scatter matrix.

    A component whose total responsibility ``N_k`` is zero (to round-off) keeps
    the mean and covariance of ``previous`` with weight 0: any mean and
    covariance maximise Q for it (the prior alone would move it to the prior
    mean), and a weight of zero means it takes no part in the model from then
    on.
    """
    model = MODELS[covariance_type]
    k = nk.shape[0]
    is_empty = nk <= 10 * EPS * max(nk.sum(), 1.0)
    empty = np.flatnonzero(is_empty) if is_empty.any() else NONE_EMPTY
    if empty.size and previous is None and prior is None:
        raise ValueError(
            f"the initialisation left component(s) {empty.tolist()} without data; "
            f"choose another init_params or random_state."
        )
    # With a prior every component has a MAP update (an empty one goes to the prior's
    # mode), so none is frozen and the penalised Q is maximised over all of them.
    live = np.arange(k) if prior is not None or not empty.size else np.flatnonzero(~is_empty)
    prev_cov = None if previous is None else previous.covariances
    counts = nk
    means = np.array(means, copy=True)
    if prior is not None:
        kappa, mu_p = prior["shrinkage"], prior["mean"]
        offset = means - mu_p
        second = model.add_outer(second, offset, kappa * nk / (nk + kappa))
        means = (nk[:, None] * means + kappa * mu_p) / (nk[:, None] + kappa)
        counts, second = model.prior_terms(nk, second, prior["scale"], prior["dof"], live)
    covariances, deficit = model.covariances(counts, second, reg_covar, live, prev_cov)
    weights = np.where(nk > 0, nk, 0.0) / nk.sum()
    if empty.size and prior is None:
        weights[empty] = 0.0
        weights /= weights.sum()
        means[empty] = previous.means[empty]
    return MStep(MixtureParams(weights, means, covariances, covariance_type=covariance_type),
                 empty, deficit)


def m_step(X, resp, reg_covar, previous=None, covariance_type=None, prior=None):
    """The M-step from responsibilities (one pass over X); returns :class:`MStep`.

    ``covariance_type`` defaults to that of ``previous``, else 'full'.
    """
    if covariance_type is None:
        covariance_type = previous.covariance_type if previous is not None else "full"
    k = resp.shape[1]
    centers = (previous.means if previous is not None
               else np.broadcast_to(X.mean(axis=0, dtype=np.float64), (k, X.shape[1])))
    nk, means, second = sufficient_statistics(X, resp, centers, covariance_type)
    return params_from_statistics(nk, means, second, reg_covar, covariance_type, previous, prior)


def raw_is_diagonal(params):
    """Whether the model's second moments are diagonals (K, d) rather than matrices."""
    return params.covariance_type in ("diag", "spherical")


def fused_statistics(X, params, sample_weight=None):
    """One pass over X: the total log-likelihood of ``params`` and the M-step's statistics.

    Returns ``(loglik, nk, means, second)`` as :func:`sufficient_statistics`
    would for the responsibilities of ``params`` (each row's multiplied by its
    ``sample_weight``), which are never stored.
    """
    model = params.model
    loglik, nk, sums, second = model.fused_step(X, params.means, params.precisions_cholesky,
                                                _log_weights(params.weights), sample_weight)
    return (loglik,) + _centred(model, nk, sums, second, params.means)


class GaussianStatistics(SufficientStatistics):
    """A Gaussian mixture's sufficient statistics, centred: ``nk``, ``means`` and ``second``.

    ``nk`` (K,) the total responsibility of each component, ``means`` (K, d)
    the weighted means, ``second`` the scatter about them: (K, d, d) matrices
    ('full', 'tied') or their diagonals (K, d) ('diag', 'spherical'). Two
    chunks' statistics add exactly with the correction for the difference of
    their means (Chan, Golub and LeVeque's pairwise update),

        ``S = S_a + S_b + n_a n_b / (n_a + n_b) (m_b - m_a)(m_b - m_a)^T``,

    so second moments are never formed about the origin (no cancellation), and
    chunks whose statistics were taken about different centres still add.
    """

    __slots__ = ()

    def _add_arrays(self, other):
        na, nb = self.nk, other.nk
        n = na + nb
        delta = other.means - self.means
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(n > 0, nb / n, 0.0)
            coef = np.where(n > 0, na * frac, 0.0)
        outer = (coef[:, None, None] * delta[:, :, None] * delta[:, None, :]
                 if self.second.ndim == 3 else coef[:, None] * delta**2)
        return {"nk": n, "means": self.means + frac[:, None] * delta,
                "second": self.second + other.second + outer}

    def _scale_arrays(self, factor):
        return {"nk": factor * self.nk, "means": self.means, "second": factor * self.second}


def chunk_statistics(X, params, sample_weight=None, groups=None, complete=False):
    """The :class:`GaussianStatistics` of X under ``params``, in one pass over X.

    Rows with NaN (missing values) take the marginal E-step of
    ``emlab._missing``; ``groups`` are their patterns when already known,
    and ``complete=True`` says that X has none (skipping the search).
    """
    missing = groups is not None or (not complete and _missing.has_nan(X))
    if not missing:
        loglik, nk, means, second = fused_statistics(X, params, sample_weight)
    elif _missing.is_diagonal(params):  # one pass over X, no patterns of missing values
        loglik, nk, sums, raw = _missing.diagonal_statistics(X, params, sample_weight)
        _, means, second = _centred(params.model, nk, sums, raw, params.means)
    else:  # full, tied: the factorisations per pattern of missing values, the rows in a kernel
        groups = _missing.patterns(X) if groups is None else groups
        loglik, nk, sums, raw = _missing.full_statistics(X, params, sample_weight, groups)
        _, means, second = _centred(params.model, nk, sums, raw, params.means)
    weight = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
    return GaussianStatistics(loglik, weight, nk=nk, means=means, second=second)


def blockwise_statistics(n, log_prob_of, statistics_of, sample_weight=None, labels=None):
    """The E-step of a mixture a block of rows at a time, for any component model.

    ``log_prob_of(rows)`` gives ``log w_k + log p(x_i | k)`` of a slice of rows
    (m, K); ``statistics_of(rows, resp)`` the :class:`~emlab.em.SufficientStatistics`
    of those rows under responsibilities ``resp`` (times the sample weights).
    Labelled rows (``labels[i] >= 0``) keep only their component. Returns the
    sum of the blocks' statistics with ``objective`` ``sum_i w_i log p(x_i)``
    (``log(w_y p(x | y))`` for a labelled row) and ``weight`` the total weight.
    Nothing of size n x K outlives a block of :data:`BLOCK_ROWS` rows.
    """
    total, stats = 0.0, None
    for start in range(0, n, BLOCK_ROWS):
        rows = slice(start, min(n, start + BLOCK_ROWS))
        log_prob = log_prob_of(rows)
        if labels is not None:
            mask_labelled(log_prob, labels[rows])
        log_norm = np.empty(log_prob.shape[0])
        resp = np.empty_like(log_prob)
        with _config.threads_for(log_prob.size * 16):
            log_normalize(log_prob, _config.CHUNK_ROWS, log_norm, resp)
        if sample_weight is not None:
            w = sample_weight[rows]
            total += float(w[w > 0] @ log_norm[w > 0])
            resp *= w[:, None]
        else:
            total += float(log_norm.sum())
        block = statistics_of(rows, resp)
        stats = block if stats is None else stats + block
    weight = n if sample_weight is None else float(np.sum(sample_weight))
    return stats._new(total, weight, stats.arrays)


#: rows per block of :func:`blockwise_statistics` (its n x K temporaries never exceed this)
BLOCK_ROWS = 65536


def labelled_statistics(X, params, sample_weight, labels, log_weights=None):
    """:func:`chunk_statistics` with partial labels: a labelled row's responsibilities are
    fixed to its component (``labels[i] >= 0``), the others' computed; a block of rows at a
    time (two passes over X: the log-densities, then the statistics). ``log_weights``
    replaces ``log params.weights`` (the variational mixture's constants)."""
    if log_weights is None:
        log_weights = _log_weights(params.weights)

    def log_prob_of(rows):
        return params.model.log_gaussian(X[rows], params.means,
                                         params.precisions_cholesky) + log_weights

    def statistics_of(rows, resp):
        nk, means, second = sufficient_statistics(X[rows], resp, params.means,
                                                  params.covariance_type)
        return GaussianStatistics(0.0, 0.0, nk=nk, means=means, second=second)

    return blockwise_statistics(X.shape[0], log_prob_of, statistics_of, sample_weight, labels)


def _start_statistics(X, start, sample_weight=None, labels=None):
    """Statistics of a starting assignment of the rows of a chunk, for initialisation.

    ``start`` is ``(covariance_type, n_components, centers, seed)``: every row
    goes to its nearest centre, or, with ``seed`` (and ``centers`` None), gets
    uniform random responsibilities from a generator seeded by ``seed`` and
    the bits of the chunk's first row, so that chunks draw differently
    (``init_params='random'``). Rows with missing
    values see the chunk's column means in their place. Partial ``labels``
    play no part in the start (the first E-step fixes the labelled rows).
    """
    covariance_type, k, centers, seed = start
    n = X.shape[0]
    if _missing.has_nan(X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column of the chunk
            X = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
        X = np.where(np.isnan(X), 0.0, X)
    if centers is None:
        entropy = [seed, n] + X[:1].astype(np.float64).ravel().view(np.uint64).tolist()
        resp = np.random.default_rng(entropy).uniform(size=(n, k))
        resp /= resp.sum(axis=1, keepdims=True)
        shift = np.broadcast_to(X.mean(axis=0, dtype=np.float64), (k, X.shape[1]))
    else:
        resp = np.zeros((n, k))
        resp[np.arange(n), _nearest(X, centers)] = 1.0
        shift = centers
    if sample_weight is not None:
        resp *= sample_weight[:, None]
    nk, means, second = sufficient_statistics(X, resp, shift, covariance_type)
    weight = n if sample_weight is None else float(np.sum(sample_weight))
    return GaussianStatistics(0.0, weight, nk=nk, means=means, second=second)


def _nearest(X, centers):
    """Index of the nearest centre of every row (squared Euclidean distance)."""
    d2 = np.column_stack([squared_distances(X, c) for c in centers])
    return d2.argmin(axis=1)


# --------------------------------------------------------------------------- the EM model


class _MixtureEM:
    """The :class:`~emlab.em.EMModel` of a Gaussian mixture.

    The E-step is one fused pass over X that returns the log-likelihood and the
    sufficient statistics; the responsibilities are never stored.
    """

    def __init__(self, n_components, covariance_type, reg_covar, init_params, weights_init,
                 means_init, precisions_init, sample_weight=None, prior=None, groups=None,
                 labels=None, learn="wmc"):
        self.n_components = n_components
        self.labels = labels  # partial labels (-1: unknown), or None
        self.learn = learn  # the parameters the M-step updates
        self.groups = groups  # patterns of missing values, or None for complete data
        self.sample_weight = sample_weight
        self.prior = prior
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.init_params_name = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.empty_events = []
        self.reported_empty = set()
        self.iteration = 0
        self.m_step_slack = 0.0
        self.complete = False  # True when X was checked to hold no NaN (missing='error')
        self._distinct = None  # (X, its distinct rows) for random_from_data's starts

    def _initial_resp(self, X, rng):
        """Initial responsibilities (times the sample weights)."""
        n, k = X.shape[0], self.n_components
        w = self.sample_weight
        name = self.init_params_name
        if name == "random":
            resp = rng.uniform(size=(n, k))
            resp /= resp.sum(axis=1, keepdims=True)
            resp = self._labelled_start(resp)
            return resp if w is None else resp * w[:, None]
        # seeds come from the rows that count (positive weight)
        seen = X if w is None else X[w > 0]
        if seen.shape[0] < k:
            raise ValueError(f"only {seen.shape[0]} rows have a positive sample_weight, fewer than "
                             f"n_components={k}.")
        if name == "kmeans":
            labels = KMeans(n_clusters=k, n_init=1, random_state=rng).fit(seen).predict(X)
        else:
            if name == "k-means++":
                seeds = kmeans_plusplus(seen, k, rng)[0]
            else:  # random_from_data: k distinct rows, found once for all the starts of a fit
                if self._distinct is None or self._distinct[0] is not X:
                    self._distinct = (X, distinct_rows(seen))
                distinct = self._distinct[1]
                if distinct.shape[0] < k:
                    raise ValueError(
                        f"X has {distinct.shape[0]} distinct rows, fewer than n_components={k}."
                    )
                seeds = distinct[rng.choice(distinct.shape[0], k, replace=False)]
            # Each sample goes to its nearest seed (one Lloyd assignment).
            labels = _nearest(X, seeds)
        labels = align_to_labels(labels, self.labels, k)
        resp = np.zeros((n, k))
        resp[np.arange(n), labels] = 1.0
        return self._labelled_start(resp) if w is None else self._labelled_start(resp) * w[:, None]

    def _labelled_start(self, resp):
        """Labelled rows start in their own component."""
        if self.labels is not None:
            known = np.flatnonzero(self.labels >= 0)
            resp[known] = 0.0
            resp[known, self.labels[known]] = 1.0
        return resp

    def init_params(self, X, rng):
        self.iteration = 0
        self.reported_empty = set()
        model = MODELS[self.covariance_type]
        user = (self.weights_init, self.means_init, self.precisions_init)
        if any(p is None for p in user):
            if isinstance(X, ChunkedData):
                stats = X.map_reduce(_start_statistics, [self._chunked_start(X, rng)])[0]
                params = self._from_start(stats)
            else:
                if self.groups is not None:  # start from the data with column means filled in
                    X = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
                params = m_step(X, self._initial_resp(X, rng), self.reg_covar,
                                covariance_type=self.covariance_type, prior=self.prior).params
            weights, means, covariances = params.weights, params.means, params.covariances
        if self.weights_init is not None:
            weights = self.weights_init
        if self.means_init is not None:
            means = self.means_init
        if self.precisions_init is not None:
            covariances = model.from_precisions(self.precisions_init)
        return MixtureParams(weights, means, covariances, covariance_type=self.covariance_type)

    def _from_start(self, stats):
        return params_from_statistics(stats.nk, stats.means, stats.second, self.reg_covar,
                                      self.covariance_type, prior=self.prior).params

    def _chunked_start(self, data, rng):
        """How chunked data start (see :func:`_start_statistics`), without gathering X.

        'random' draws responsibilities on the workers. The other methods seed
        on a uniform sample of rows (:data:`INIT_SAMPLE_ROWS` per component, at
        least :data:`INIT_SAMPLE_MIN`): k-means++ or distinct random rows, and
        for 'kmeans' Lloyd's algorithm then runs over all the chunks from the
        k-means++ seeds. Every row then goes to its nearest centre.
        """
        k = self.n_components
        if self.init_params_name == "random":
            return self.covariance_type, k, None, int(rng.integers(2**63 - 1))
        sample = data.sample_rows(max(INIT_SAMPLE_MIN, INIT_SAMPLE_ROWS * k), rng)
        if self.groups is not None or _missing.has_nan(sample):
            sample = np.where(np.isnan(sample), np.nanmean(sample, axis=0), sample)
            sample = np.where(np.isnan(sample), 0.0, sample)
        if self.init_params_name == "random_from_data":
            distinct = distinct_rows(sample)
            if distinct.shape[0] < k:
                raise ValueError(f"the sample of {sample.shape[0]} rows drawn from X to start "
                                 f"from has {distinct.shape[0]} distinct rows, fewer than "
                                 f"n_components={k}.")
            centers = distinct[rng.choice(distinct.shape[0], k, replace=False)]
        else:
            centers = kmeans_plusplus(sample, k, rng)[0]
            if self.init_params_name == "kmeans":
                centers = lloyd_chunked(data, centers, max_iter=300, tol=1e-4)[0]
        return self.covariance_type, k, centers, None

    # ------------------------------------------------------------------- the statistics protocol

    def statistics(self, X, params, sample_weight=None, labels=None):
        """The chunk's :class:`GaussianStatistics` (see :class:`~emlab.em.EMModel`)."""
        if labels is not None:
            return labelled_statistics(X, params, sample_weight,
                                       check_labels(labels, X.shape[0], self.n_components))
        return chunk_statistics(X, params, sample_weight, complete=self.complete)

    def log_prior(self, params):
        return log_prior(params, self.prior)

    def objective(self, stats, params):
        """The objective per sample (log-likelihood, or log-posterior), with named errors."""
        self.iteration += 1
        if not np.isfinite(stats.objective):
            raise FloatingPointError(
                f"a sample has zero density under every component at iteration "
                f"{self.iteration}; the data's scale may be extreme (standardise X)."
            )
        return (stats.objective + log_prior(params, self.prior)) / stats.weight

    def e_step(self, X, params):
        if self.labels is not None:
            stats = labelled_statistics(X, params, self.sample_weight, self.labels)
            return self.objective(stats, params), stats
        stats = chunk_statistics(X, params, self.sample_weight, self.groups,
                                 complete=self.groups is None)
        return self.objective(stats, params), stats

    def m_step(self, X, stats, params):
        return self.params_from_statistics(stats, params)

    def params_from_statistics(self, stats, params):
        means, second = stats.means, stats.second
        if "m" not in self.learn:  # the scatter about the fixed means maximises Q given them
            second = params.model.add_outer(second, means - params.means, stats.nk)
            means = params.means
        try:
            step = params_from_statistics(stats.nk, means, second, self.reg_covar,
                                          self.covariance_type, params, self.prior)
        except DegenerateCovarianceError as exc:
            raise DegenerateCovarianceError(f"{exc} (EM iteration {self.iteration})") from None
        if self.learn != "wmc":
            new = step.params
            step = MStep(MixtureParams(
                new.weights if "w" in self.learn else params.weights,
                new.means if "m" in self.learn else params.means,
                new.covariances if "c" in self.learn else params.covariances,
                None if "c" in self.learn else params.precisions_cholesky,
                self.covariance_type), step.empty, step.ridge_deficit if "c" in self.learn else 0.0)
        fresh = [int(k) for k in step.empty if k not in self.reported_empty]
        if fresh:
            self.reported_empty.update(fresh)
            self.empty_events.append((self.iteration, fresh))
        # The driver allows the next objective to fall by this much (see EMModel).
        self.m_step_slack = step.ridge_deficit / stats.weight
        return step.params


# --------------------------------------------------------------------------- estimator


class GaussianMixture(ParamsMixin):
    """Gaussian mixture fitted by EM.

    Parameters follow :class:`sklearn.mixture.GaussianMixture`.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        'full': a covariance matrix per component; 'tied': one shared by all;
        'diag': a diagonal matrix per component; 'spherical': a single
        variance per component.
    tol : float, default=1e-3
        EM stops when the mean log-likelihood per sample changes by less than tol.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance, keeping them positive definite.
    max_iter : int, default=100
        0 fits nothing: the fitted attributes are the starting parameters
        (of the first of ``n_init`` starts; ``n_iter_ = 0``, ``converged_ =
        False``, ``lower_bounds_`` empty and ``lower_bound_ = -inf``, and no
        ConvergenceWarning), as in scikit-learn, which is how one inspects a
        start.
    n_init : int, default=1
        Number of initialisations; the one with the highest final mean
        log-likelihood is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How responsibilities are initialised: hard labels from one k-means run;
        hard labels from the nearest of k-means++ seeds; uniform random
        responsibilities; hard labels from the nearest of distinct random rows.
        'random' puts every component near the overall mean, where EM's first
        steps are tiny: with the default ``tol`` it can stop there, or on a
        plateau halfway up (the book's chapter on starting points measures
        both), so use a smaller ``tol`` with it.
        (scikit-learn gives the two seeding methods a single sample per component,
        whose covariance is then only ``reg_covar * I``; assigning every sample to
        its nearest seed gives a usable start and one that ``reg_covar=0`` survives.)
    weights_init : array-like of shape (n_components,), optional
    means_init : array-like of shape (n_components, n_features), optional
    precisions_init : array-like, optional
        User-provided starting values; they replace what ``init_params`` gives.
        ``precisions_init`` is shaped by ``covariance_type`` as ``covariances_``.
    prior : None, 'conjugate' or dict, default=None
        None: maximum likelihood. 'conjugate': maximum a posteriori under a
        normal-inverse-Wishart prior with data-driven defaults (as R's
        mclust ``priorControl``), which keeps every covariance positive
        definite, a collapse onto a point or a constant feature included, and
        whose effect vanishes as the data grow. A dict overrides the defaults
        (keys 'shrinkage', 'mean', 'dof', 'scale'; see
        :func:`~emlab.mixture.resolve_prior`). With a prior, EM maximises the
        log-posterior, ``lower_bounds_`` records it per sample, and the
        monotonicity check applies to it.
    missing : {'error', 'marginalize'}, default='error'
        What a NaN in X means. 'error': a ValueError that counts them and says
        where. 'marginalize': a missing value (Ghahramani and Jordan, 1994): the
        E-step uses the marginal density of each row's observed coordinates, the
        M-step the conditional expectations of the missing ones given the
        observed (the initialisation sees column means in their place). This
        path is plain NumPy, grouped by pattern of missing values; complete data
        take the fused kernels. The setting also governs ``score_samples``,
        ``predict`` and ``predict_proba``: with 'error' they refuse NaN too.
    random_state : None, int or numpy.random.Generator
        Seeds the initialisation (and :meth:`sample`). The same seed gives
        bit-for-bit the same fit, whatever the number of threads.
    warm_start : bool, default=False
        If True and the model is already fitted, ``fit`` starts from the fitted
        parameters (one run; ``n_init`` and the ``*_init`` values are ignored),
        as in scikit-learn, and its convergence test goes on from the last
        fit's ``lower_bound_``: repeated fits with a small ``max_iter``
        converge as one long run would. The first change of such a fit is
        not checked for a decrease (the data may be new); the later ones are.
    verbose : int, default=0
        0: silent; 1: a line per run; 2: also a line per iteration (objective,
        change, elapsed time).
    verbose_interval : int, default=1
        With ``verbose=2``, the iteration lines are printed for the first
        iteration and every ``verbose_interval``-th (scikit-learn's default
        is 10; emlab prints every iteration unless told otherwise).
    on_decrease : {'warn', 'raise', 'ignore'}, default='warn'
        What to do if the log-likelihood decreases between two iterations by
        more than round-off, which exact EM cannot do: a
        :class:`~emlab.exceptions.LikelihoodDecreaseWarning` naming the iteration,
        a :class:`~emlab.exceptions.LikelihoodDecreaseError`, or nothing.
        With ``reg_covar > 0`` the M-step does not quite maximise Q, and the
        likelihood may fall, by at most the Q deficit that the ridge causes;
        each M-step computes that deficit exactly and the check allows it
        (scikit-learn's EM falls by the same amounts, unchecked). Only a fall
        beyond it is reported. Round-off is 1e-10 of the log-likelihood for
        float64 X and 1e-6 for float32 X (fitted in float32 arithmetic).
    learning_decay : float in (0.5, 1], default=0.7
        Online EM (:meth:`partial_fit`): the exponent of the step sizes
        ``g_t = (t + learning_offset)^(-learning_decay)`` (names as in
        scikit-learn's ``LatentDirichletAllocation``).
    learning_offset : float >= 0, default=10.0
        Online EM: damps the first steps, so early batches do not dominate.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        This and the other fitted arrays are float32 when X is float32 (as in
        scikit-learn), float64 otherwise. float32 X is not copied, and EM's
        steps run in float32 arithmetic (log-densities, exponentials and each
        tile's sums) with float64 sums across tiles and a float64 M-step: the
        fit follows that of ``X.astype(np.float64)`` to float32's precision,
        1.6-2x faster at d >= 8 (the chapter on speed). With
        ``missing='marginalize'`` X is converted to float64.
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (n_components, n_features, n_features) if 'full', (n_features, n_features)
        if 'tied', (n_components, n_features) if 'diag', (n_components,) if 'spherical'.
    precisions_ : ndarray, shaped as ``covariances_``
    precisions_cholesky_ : ndarray, shaped as ``covariances_``
        'full' and 'tied': upper-triangular ``U`` with ``precision = U @ U.T``
        (scikit-learn's convention); 'diag' and 'spherical': ``1 / sigma``.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The last entry of ``lower_bounds_``: the objective of the parameters
        *before* the last M-step (scikit-learn's convention), so it can differ
        from ``score(X)`` of the fitted model by up to ``tol``; with a prior it
        is the log-posterior, not the log-likelihood. Compute criteria with
        :meth:`bic`, :meth:`aic` or :meth:`icl`, not from it.
    lower_bounds_ : ndarray, one entry per iteration
        Mean log-likelihood per sample at each iteration of the best run:
        entry t is that of the parameters after t M-steps (entry 0: the start).
    n_features_in_ : int
    n_steps_ : int
        Set by :meth:`partial_fit`: the number of batches seen.

    Notes
    -----
    ``fit`` also takes a Dask array (and ``sample_weight`` as one): each
    E-step is then one task per chunk of rows, on the workers of the active
    ``distributed.Client``, and only the sufficient statistics
    (:class:`GaussianStatistics`, O(K d^2) numbers per chunk) come back; X is
    checked in one pass (a NaN is named by chunk and row), persisted, and
    never gathered. From the same start the iterates equal the in-memory
    fit's to round-off. The initialisation seeds k-means++ (or picks rows)
    on a uniform sample of at most ``max(10000, 1000 * n_components)`` rows
    and, for 'kmeans', runs Lloyd's algorithm over all the chunks; so it
    differs from the in-memory start. ``n_init`` restarts share one pass
    over the chunks per iteration. A read-only memory map
    (``np.load(path, mmap_mode="r")``) is read in place, without a copy.

    Each EM iteration is one fused pass over X (Numba, parallel over fixed
    blocks of rows, so results do not depend on the thread count): the
    log-densities, a max-shifted log-sum-exp and the responsibilities of a
    small tile of rows are computed and immediately added into the sufficient
    statistics; no n_samples x n_components array is stored during ``fit``.
    Covariances are kept as precision Cholesky factors, so a log-determinant
    is a sum of log-diagonals; second moments are accumulated about the
    current means. A component that receives no responsibility keeps
    its last mean and covariance with weight 0 and an
    :class:`~emlab.exceptions.EmptyComponentWarning` names it. The book chapter
    "Why EM climbs" proves that the log-likelihood cannot decrease, and the fit
    checks that at every iteration.

    Examples
    --------
    >>> from emlab import GaussianMixture
    >>> from emlab.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> gm = GaussianMixture(n_components=3, random_state=0).fit(X)
    >>> gm.means_.shape
    (3, 4)
    >>> bool(abs(gm.predict_proba(X).sum(axis=1) - 1).max() < 1e-12)
    True
    """

    _estimator_type = "density_estimator"

    def _allows_nan(self):
        return self.missing == "marginalize"

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, prior=None, missing="error",
                 random_state=None, warm_start=False, verbose=0, on_decrease="warn",
                 learning_decay=0.7, learning_offset=10.0, verbose_interval=1, params="wmc"):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.prior = prior
        self.missing = missing
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.on_decrease = on_decrease
        self.verbose_interval = verbose_interval
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.params = params

    def _check_settings(self):
        """The checks that need no data; returns n_components."""
        check_int(self.verbose, "verbose", low=0)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ValueError(f"warm_start must be True or False; got {self.warm_start!r}.")
        k = check_int(self.n_components, "n_components", low=1)
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        max_iter = check_int(self.max_iter, "max_iter", low=0)  # 0: the start (see _fit)
        check_em_options(max(max_iter, 1), self.tol, self.on_decrease)
        check_int(self.n_init, "n_init", low=1)
        check_scalar(self.reg_covar, "reg_covar", low=0.0)
        check_option(self.init_params, "init_params", INIT_PARAMS)
        check_option(self.missing, "missing", MISSING)
        self._learn()
        return k

    def _learn(self):
        """``params``, checked: the letters of the parameters EM updates."""
        learn = self.params
        if not isinstance(learn, str) or any(c not in "wmc" for c in learn):
            raise ValueError(f"params must be a string of the letters 'wmc' (weights, means, "
                             f"covariances: those EM updates); got {learn!r}.")
        if self.prior is not None and not {"m", "c"} <= set(learn):
            raise ValueError("a prior needs params with both 'm' and 'c' (the MAP M-step updates "
                             "means and covariances together); fix parameters with prior=None.")
        return "".join(c for c in "wmc" if c in learn)

    def _make_model(self, X, sample_weight=None, labels=None):
        k = self._check_settings()
        chunked = isinstance(X, ChunkedData)
        n, d = (X.n_samples, X.n_features) if chunked else X.shape
        if not chunked:  # chunked data carry their weights chunk by chunk
            sample_weight = check_sample_weight(sample_weight, n)
        if k > n:
            raise ValueError(f"n_components={k} must be <= n_samples={n}.")
        reg = check_scalar(self.reg_covar, "reg_covar", low=0.0)
        w = None if self.weights_init is None else check_weights(self.weights_init, k)
        m = None if self.means_init is None else check_means(self.means_init, k, d)
        p = None if self.precisions_init is None else self._check_precisions_init(k, d)
        groups = _missing.patterns(X) if not chunked and _missing.has_nan(X) else None
        Xc = X if groups is None else np.where(np.isnan(X), np.nanmean(X, axis=0), X)
        prior = resolve_prior(self.prior, Xc, sample_weight, k, self.covariance_type)
        if labels is not None:
            labels = check_labels(labels, n, k, "labels")
            if groups is not None:
                raise ValueError("labels cannot be combined with missing values (NaN in X).")
        model = _MixtureEM(k, self.covariance_type, reg, self.init_params, w, m, p, sample_weight,
                           prior, groups, labels, self._learn())
        model.complete = self.missing != "marginalize"  # X was checked: it holds no NaN
        return model

    def _check_precisions_init(self, k, d):
        model = MODELS[self.covariance_type]
        p = np.asarray(self.precisions_init, dtype=np.float64)
        shape = model.shape(k, d)
        if p.shape != shape:
            raise ValueError(
                f"precisions_init must have shape {shape} for covariance_type="
                f"{self.covariance_type!r}; got {p.shape}."
            )
        if not np.all(np.isfinite(p)):
            raise ValueError("precisions_init contains NaN or infinite values.")
        model.check_precisions(p, "precisions_init")
        return p

    def fit(self, X, y=None, sample_weight=None, *, labels=None):
        """Estimate the parameters by EM. ``y`` is ignored. Returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
            (scikit-learn pipelines pass class labels here, which an
            unsupervised fit must not use; partial labels come by name.)
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights (zero allowed, not all zero). A row of weight
            ``m`` counts as ``m`` copies of it: integer weights give the fit of
            the repeated rows, and scaling all weights changes nothing.
            ``lower_bounds_`` is then the weighted mean log-likelihood.
        labels : array-like of shape (n_samples,), optional
            Partial labels (semi-supervised EM): -1 for an unlabelled row, a
            component index for a labelled one, whose responsibilities are
            then fixed to that component. ``lower_bounds_`` counts a labelled
            row's ``log(w_y p(x | y))``. The E-step then takes two passes over
            X instead of the fused one. Not with missing values.
        """
        self._fit(*self._check_fit_X(X, sample_weight, labels))
        return self

    def fit_predict(self, X, y=None, sample_weight=None, *, labels=None):
        """Fit, then label X with the fitted model (the same as ``fit(X).predict(X)``)."""
        X, sample_weight, labels = self._check_fit_X(X, sample_weight, labels)
        self._fit(X, sample_weight, labels)
        return self._predict(X)

    _NAN_HINT = ("; or let GaussianMixture(missing='marginalize') fit with them (the E-step then "
                 "uses the marginal density of the observed coordinates)")

    def _check_fit_X(self, X, sample_weight=None, labels=None):
        """``(X, sample_weight, labels)`` checked; a Dask array becomes a checked
        :class:`DaskData` (carrying the weights and labels chunk by chunk)."""
        self._check_settings()
        self._dtype = input_dtype(X)  # of the fitted attributes (and of the EM steps' arithmetic)
        marginalize = self.missing == "marginalize"
        if is_dask_array(X):
            per_row = {"sample_weight": sample_weight}
            if labels is not None:
                per_row["labels"] = labels
            X = DaskData(X, per_row=per_row, allow_nan=marginalize, min_samples=2,
                         nan_hint=self._NAN_HINT)
            return X, None, None
        if is_dask_array(sample_weight):
            raise ValueError("sample_weight is a Dask array but X is not; pass both as Dask arrays "
                             "(chunked alike) or both in memory.")
        X = check_array(X, min_samples=2, allow_nan=marginalize, nan_hint=self._NAN_HINT,
                        keep_float32=not marginalize)
        if not marginalize:
            check_scale(X)
        if marginalize:
            blank = np.flatnonzero(np.isnan(X).all(axis=0))
            if blank.size:
                raise ValueError(f"X has {blank.size} column(s) with no observed value, e.g. column "
                                 f"{blank[0]}; nothing can be estimated for it: drop it.")
        return X, sample_weight, labels

    def _fit(self, X, sample_weight=None, labels=None):
        n, d = (X.n_samples, X.n_features) if isinstance(X, ChunkedData) else X.shape
        work = n * self.n_components * d * d
        dtype = getattr(X, "dtype", np.float64)  # float32 X runs float32 kernels
        if self.covariance_type in ("full", "tied"):
            kernels = tuple(k for k in (full_step_kernel(d, work), scatter_kernel(d, work))
                            if k is not None)  # no scatter kernel for small work: NumPy's
            _compile.warm_up_mixture(self.covariance_type, kernels, d, work, dtype)
        else:  # the diagonal kernels' work is n K d
            work = n * self.n_components * d
            _compile.warm_up_mixture(self.covariance_type, (diag_step_kernel(work),), d, work,
                                     dtype)
        model = self._make_model(X, sample_weight, labels)
        warm = None
        if self.warm_start and hasattr(self, "weights_"):
            n_features = X.n_features if isinstance(X, ChunkedData) else X.shape[1]
            if self.n_features_in_ != n_features or self.covariance_type != self._fitted_type:
                raise ValueError(
                    "warm_start needs X with the fitted number of features and the fitted "
                    "covariance_type; set warm_start=False to start afresh."
                )
            warm = MixtureParams.from_model(self)
        # A warm start takes the convergence test on from the last fit's objective (as
        # scikit-learn does), so max_iter=1 fits repeated converge.
        prev = self.lower_bound_ if warm is not None else None
        rng = check_random_state(self.random_state)
        if self.max_iter == 0:  # the start, as fit_em's first run would take it; no E-step
            start = warm if warm is not None else model.init_params(X, rng)
            result = EMResult(start, np.empty(0), False, 0)
        else:
            result = fit_em(model, X, n_init=1 if warm is not None else self.n_init,
                            max_iter=self.max_iter, tol=self.tol, init=warm, random_state=rng,
                            on_decrease=self.on_decrease, decrease_rtol=decrease_rtol_for(X),
                            verbose=self.verbose, prev=prev,
                        verbose_interval=self.verbose_interval)
        self._warn_empty(model)
        self._set_fitted(result.params, X)
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bounds_ = result.lower_bounds
        # max_iter=0 computes no objective: lower_bounds_ is empty and lower_bound_ -inf,
        # scikit-learn's values (one entry per iteration run)
        self.lower_bound_ = float(result.lower_bounds[-1]) if result.lower_bounds.size else -np.inf
        self.__dict__.pop("_online", None)  # a later partial_fit starts from these parameters

    def _warn_empty(self, model):
        for iteration, comps in model.empty_events:
            fate = ("their mean and covariance went to the prior's mode" if self.prior is not None
                    else "their mean and covariance are frozen")
            warnings.warn(
                f"component(s) {comps} received no responsibility at iteration {iteration}; "
                f"their weight is now 0 and {fate}. Consider fewer components.",
                EmptyComponentWarning, stacklevel=3,
            )
        model.empty_events.clear()

    def _set_fitted(self, params, X):
        self._warn_if_held_up_by_ridge(params)
        dtype = getattr(self, "_dtype", np.float64)  # float32 for float32 X, as scikit-learn
        self.weights_ = params.weights.astype(dtype, copy=False)
        self.means_ = params.means.astype(dtype, copy=False)
        self.covariances_ = params.covariances.astype(dtype, copy=False)
        self.precisions_cholesky_ = params.precisions_cholesky.astype(dtype, copy=False)
        self.precisions_ = params.model.precisions(params.precisions_cholesky).astype(dtype,
                                                                                      copy=False)
        self.n_features_in_ = X.n_features if isinstance(X, ChunkedData) else X.shape[1]
        self._fitted_type = params.covariance_type

    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of online (stepwise) EM on a batch of rows. Returns self.

        Stepwise EM (Cappé and Moulines, 2009) keeps a running average ``s``
        of the per-sample sufficient statistics and, for the t-th batch (t =
        1, 2, ...), moves it towards the batch's statistics under the current
        parameters,

            ``s <- s + g_t (s_batch - s)``,  ``g_t = (t + learning_offset)^(-learning_decay)``,

        then runs the ordinary M-step on ``s``. The first call initialises
        from its batch (with ``init_params``, or the ``*_init`` values), or
        from the fitted parameters if :meth:`fit` ran before, and sets ``s``
        to the batch's statistics. With ``learning_decay`` in (0.5, 1] the
        steps satisfy Robbins and Monro's conditions (their sum diverges,
        the sum of their squares does not) and the estimates converge to a
        stationary point of the expected log-likelihood.

        Every M-step is the ordinary one, so the parameters are always valid
        (weights on the simplex, covariances symmetric positive definite) and
        ``reg_covar`` and ``prior`` hold; the prior weighs as against one
        batch (the statistics are scaled to the batch's weight). **The
        monotonicity guard does not apply**: each step climbs a noisy
        estimate of Q from one batch, and the log-likelihood of the data seen
        so far can fall (the book's chapter "EM at scale" shows a run where it
        does). ``lower_bounds_`` records each batch's mean log-likelihood
        under the parameters it was given, and ``n_steps_`` counts the calls.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch (a Dask array works too: its statistics are reduced from
            its chunks).
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
        """
        decay = check_scalar(self.learning_decay, "learning_decay", low=0.0)
        if not 0.5 < decay <= 1.0:
            raise ValueError(f"learning_decay must be in (0.5, 1] (Robbins-Monro: the steps "
                             f"g_t = (t + learning_offset)^-learning_decay must have a divergent "
                             f"sum and a convergent sum of squares); got {decay}.")
        offset = check_scalar(self.learning_offset, "learning_offset", low=0.0)
        X, sample_weight, _ = self._check_fit_X(X, sample_weight)
        online = getattr(self, "_online", None)
        n_features = X.n_features if isinstance(X, ChunkedData) else X.shape[1]
        if online is not None and n_features != self.n_features_in_:
            raise ValueError(f"X has {n_features} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input: it was fitted with "
                             f"{self.n_features_in_}.")
        if online is None:
            model = self._make_model(X, sample_weight)
            if hasattr(self, "weights_"):
                if self.n_features_in_ != n_features or self.covariance_type != self._fitted_type:
                    raise ValueError("partial_fit after fit needs X with the fitted number of "
                                     "features and the fitted covariance_type.")
                params = MixtureParams.from_model(self)
            else:
                params = model.init_params(X, check_random_state(self.random_state))
            model.sample_weight, model.groups = None, None  # the first batch's; not kept
            self.lower_bounds_ = np.empty(0)
            self.n_steps_ = 0
        else:
            model, params, running = online
        batch = (X.map_reduce(model.statistics, [params])[0] if isinstance(X, ChunkedData)
                 else chunk_statistics(X, params, check_sample_weight(sample_weight, X.shape[0])))
        objective = model.objective(batch, params)
        per_sample = (1.0 / batch.weight) * batch
        if online is None:
            running = per_sample
        else:
            g = (self.n_steps_ + offset) ** (-decay)
            running = (1.0 - g) * running + g * per_sample
        params = model.params_from_statistics(batch.weight * running, params)
        self._warn_empty(model)
        self._set_fitted(params, X)
        self.n_steps_ += 1
        self.lower_bounds_ = np.append(self.lower_bounds_, objective)
        self.lower_bound_ = float(objective)
        self.n_iter_ = self.n_steps_
        self.converged_ = False
        self._online = (model, params, running)
        return self

    def _warn_if_held_up_by_ridge(self, params):
        """Name the components whose covariance is nonsingular only thanks to ``reg_covar``.

        That is, in some direction the ridge makes up at least a third of the
        variance (the variance before the ridge is below ``2 * reg_covar``).
        """
        if self.reg_covar <= 0:
            return
        model = params.model
        smallest = model.smallest_variance(params.covariances, self.reg_covar)
        weights = params.weights if smallest.size == params.n_components else np.ones(1)
        held = [k for k in range(smallest.size) if weights[k] > 0 and smallest[k] < 2 * self.reg_covar]
        if held:
            details = ", ".join(
                f"{model.held_up_label(k)} ("
                + (f"weight {params.weights[k]:.3g}, " if smallest.size == params.n_components else "")
                + f"smallest variance {max(smallest[k], 0.0):.3g} before the ridge)"
                for k in held
            )
            warnings.warn(
                f"the covariance of {details} is kept positive definite by "
                f"reg_covar={self.reg_covar:g}, which makes up at least a third of its variance in "
                f"some direction: it has (nearly) collapsed onto fewer points than dimensions or "
                f"onto a constant feature, where the likelihood is unbounded. Increase reg_covar, "
                f"reduce n_components, or use more restarts.",
                DegenerateCovarianceWarning, stacklevel=3,
            )

    def _check_X(self, X):
        check_is_fitted(self, "weights_")
        if is_dask_array(X):  # checked chunk by chunk where it is used, never gathered
            if X.ndim != 2 or X.shape[1] != self.n_features_in_:
                raise ValueError(f"X must have shape (n_samples, {self.n_features_in_}); got "
                                 f"{X.shape}.")
            return X
        marginalize = self.missing == "marginalize"
        return check_array(X, estimator=type(self).__name__, n_features=self.n_features_in_,
                           allow_nan=marginalize, nan_hint=self._NAN_HINT,
                           keep_float32=not marginalize)

    def _log_prob_resp(self, X):
        params = MixtureParams.from_model(self)
        if not _missing.has_nan(X):
            return log_prob_resp(X, params)
        log_prob = _missing.marginal_log_prob(X, params)
        log_norm = np.logaddexp.reduce(log_prob, axis=1)
        return log_norm, np.exp(log_prob - log_norm[:, None])

    def score_samples(self, X):
        """Log-likelihood ``log p(x_i)`` of each row, shape (n_samples,).

        A Dask array gives a lazy Dask array, computed chunk by chunk (as do
        :meth:`predict` and :meth:`predict_proba`).
        """
        if is_dask_array(X):
            return map_rows(self.score_samples, self._check_X(X), np.float64)
        scores = self._log_prob_resp(self._check_X(X))[0]
        warn_underflow(scores)
        return scores

    def score(self, X, y=None):
        """Mean log-likelihood per sample of X."""
        return float(np.mean(self.score_samples(X)))  # a Dask array's mean computes it

    def predict_proba(self, X):
        """Responsibilities ``p(z_i = k | x_i)``, shape (n_samples, n_components)."""
        if is_dask_array(X):
            return map_rows(self.predict_proba, self._check_X(X), np.float64, self.n_components)
        log_norm, resp = self._log_prob_resp(self._check_X(X))
        warn_underflow(log_norm)
        return resp

    def predict(self, X):
        """The most probable component of each row, shape (n_samples,)."""
        if is_dask_array(X):
            return map_rows(self.predict, self._check_X(X), np.int64)
        return self._predict(self._check_X(X))

    def _predict(self, X):
        if isinstance(X, ChunkedData):  # fit_predict on a Dask array
            return map_rows(self.predict, X.X, np.int64)
        if _missing.has_nan(X):
            return self._log_prob_resp(X)[1].argmax(axis=1)
        log_prob = weighted_log_prob(X, MixtureParams.from_model(self))
        warn_underflow(log_prob.max(axis=1), stacklevel=4)
        return log_prob.argmax(axis=1)

    # ----------------------------------------------------------------------- model selection

    def _n_parameters(self):
        """Free parameters: weights (K - 1), means (K d) and the covariances."""
        check_is_fitted(self, "weights_")
        k, d = self.means_.shape
        return (k - 1) + k * d + MODELS[self.covariance_type].n_parameters(k, d)

    def bic(self, X):
        """Bayesian information criterion, ``-2 log L + p log n``: lower is better.

        ``log L`` is the total log-likelihood of X and ``p`` the number of free
        parameters (scikit-learn's convention and sign).
        """
        X = self._check_X(X)
        return -2.0 * self._total_log_likelihood(X) + self._n_parameters() * np.log(X.shape[0])

    def aic(self, X):
        """Akaike information criterion, ``-2 log L + 2 p``: lower is better."""
        X = self._check_X(X)
        return -2.0 * self._total_log_likelihood(X) + 2.0 * self._n_parameters()

    def _total_log_likelihood(self, X):
        """``sum_i log p(x_i)``; a Dask array is reduced chunk by chunk."""
        return float(self.score_samples(X).sum())

    def icl(self, X):
        """Integrated completed likelihood (Biernacki, Celeux and Govaert, 2000): lower is better.

        ``BIC + 2 EN``, where ``EN = -sum_i sum_k r_ik log r_ik`` is the entropy of
        the responsibilities: ICL also penalises components that overlap, so it
        prefers well-separated clusters to the best density. This is the
        soft-entropy form (ICL-BIC); R's mclust uses the entropy of the hard
        most-probable labels instead, which is never larger.
        """
        X = self._check_X(X)
        if is_dask_array(X):
            entropy = float(map_rows(self._entropies, X, np.float64).sum())
        else:
            entropy = float(np.sum(self._entropies(X)))
        return self.bic(X) + 2.0 * entropy

    def _entropies(self, X):
        """``-sum_k r_ik log r_ik`` of each row."""
        resp = self.predict_proba(X)
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.sum(np.where(resp > 0, resp * np.log(resp), 0.0), axis=1)

    # ----------------------------------------------------------------------- sampling

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Grouped by component, as in scikit-learn.
        y : ndarray of shape (n_samples,)
            The component of each sample.
        """
        check_is_fitted(self, "weights_")
        n_samples = check_int(n_samples, "n_samples", low=1)
        rng = check_random_state(self.random_state)
        params = MixtureParams.from_model(self)
        counts = rng.multinomial(n_samples, params.weights)
        chol = np.linalg.cholesky(params.full_covariances())
        d = params.means.shape[1]
        X = np.vstack([params.means[k] + rng.standard_normal((c, d)) @ chol[k].T
                       for k, c in enumerate(counts)])
        y = np.repeat(np.arange(params.n_components), counts)
        return X, y

    # ----------------------------------------------------------------------- persistence

    _FORMAT = "emlab.GaussianMixture/1"
    _SCALAR_PARAMS = ("n_components", "covariance_type", "tol", "reg_covar", "max_iter", "n_init",
                      "init_params", "missing", "warm_start", "verbose", "on_decrease",
                      "learning_decay", "learning_offset", "verbose_interval", "params")

    def save(self, path):
        """Write the fitted model to a ``.npz`` file: arrays and JSON text, no pickle.

        Loading it (:meth:`load`) therefore never executes code. ``random_state``
        is kept when it is None or an int; a Generator is not saved.
        """
        import json

        check_is_fitted(self, "weights_")
        settings = {name: getattr(self, name) for name in self._SCALAR_PARAMS}
        prior = self.prior
        settings["prior"] = ({key: np.asarray(value).tolist() for key, value in prior.items()}
                             if isinstance(prior, dict) else prior)
        seed = self.random_state
        settings["random_state"] = int(seed) if isinstance(seed, (int, np.integer)) else None
        fitted = {"converged_": bool(self.converged_), "n_iter_": int(self.n_iter_),
                  "n_features_in_": int(self.n_features_in_)}
        arrays = {"weights_": self.weights_, "means_": self.means_, "covariances_": self.covariances_,
                  "precisions_cholesky_": self.precisions_cholesky_,
                  "lower_bounds_": self.lower_bounds_}
        for name in ("weights_init", "means_init", "precisions_init"):
            if getattr(self, name) is not None:
                arrays[name] = np.asarray(getattr(self, name), dtype=np.float64)
        header = json.dumps({"format": self._FORMAT, "settings": settings, "fitted": fitted})
        np.savez(path, header=np.array(header), **arrays)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`, checking everything it reads.

        The file is opened with ``allow_pickle=False`` (loading never runs
        code). A file that is not such a model (another format, truncated,
        empty, edited) raises :class:`~emlab.exceptions.ModelFileError`, a
        ValueError naming the file and what is wrong with it.
        """
        try:
            return cls._load(path)
        except ModelFileError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OSError, EOFError,
                zipfile.BadZipFile, np.linalg.LinAlgError, ArithmeticError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ModelFileError(f"{path} is not a usable saved emlab GaussianMixture: {exc}") \
                from None

    @classmethod
    def _load(cls, path):
        import json

        def bad(what):
            return ModelFileError(f"{path} is not a usable saved emlab GaussianMixture: {what}")

        data = open_saved_npz(path, bad)
        with data:
            if "header" not in data.files:
                raise bad("it has no header")
            try:
                header = json.loads(str(data["header"]))
            except ValueError as exc:
                raise bad(f"its header is not JSON ({exc})") from None
            if not isinstance(header, dict):
                raise bad(f"its header is a {type(header).__name__}, not an object")
            if header.get("format") != cls._FORMAT:
                raise bad(f"it holds format {header.get('format')!r}, not {cls._FORMAT!r}")
            try:
                arrays = {name: np.array(data[name]) for name in data.files if name != "header"}
            except ValueError as exc:  # numpy: "Object arrays cannot be loaded when allow_pickle=False"
                raise bad(f"it holds an object array, which a saved model never does ({exc})") \
                    from None
        settings, fitted = header.get("settings"), header.get("fitted")
        if not isinstance(settings, dict) or not isinstance(fitted, dict):
            raise bad("its header lacks the settings or the fitted values")
        known = set(cls._SCALAR_PARAMS) | {"prior", "random_state"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise bad(f"its header has unknown setting(s) {unknown}")
        inits = {name: arrays.pop(name) for name in ("weights_init", "means_init", "precisions_init")
                 if name in arrays}
        model = cls(**settings, **inits)
        try:
            k = model._check_settings()
        except ValueError as exc:
            raise bad(f"its settings are invalid ({exc})") from None
        names = ("weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bounds_")
        for name in names:
            if name not in arrays:
                raise bad(f"it lacks {name}")
            value = arrays[name]
            if not np.issubdtype(value.dtype, np.floating):
                raise bad(f"{name} has dtype {value.dtype}, not floating point")
            if not np.all(np.isfinite(value)):
                raise bad(f"{name} holds NaN or infinite values")
        extra = sorted(set(arrays) - set(names))
        if extra:
            raise bad(f"it holds unknown array(s) {extra}")
        means = arrays["means_"]
        if means.ndim != 2 or means.shape[0] != k:
            raise bad(f"means_ has shape {means.shape}, but the header says n_components={k}")
        if arrays["weights_"].shape != (k,):
            raise bad(f"weights_ has shape {arrays['weights_'].shape}, but the header says "
                      f"n_components={k}")
        try:
            n_iter = int(fitted["n_iter_"])
            n_features = int(fitted["n_features_in_"])
            converged = fitted["converged_"]
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"its fitted values are incomplete or not numbers ({exc!r})") from None
        if not isinstance(converged, bool) or n_iter < 0 or n_features != means.shape[1]:
            raise bad(f"its fitted values disagree with the arrays (n_iter_={n_iter}, "
                      f"n_features_in_={n_features}, means_ {means.shape})")
        bounds = arrays["lower_bounds_"]
        if bounds.ndim != 1 or bounds.size > n_iter + 1 or (n_iter > 0 and bounds.size == 0):
            raise bad(f"lower_bounds_ has shape {bounds.shape} for n_iter_={n_iter}")
        # rebuilding the parameters checks the covariances' shapes and positive definiteness
        try:
            params = MixtureParams(arrays["weights_"], means, arrays["covariances_"],
                                   covariance_type=settings["covariance_type"])
        except (ValueError, DegenerateCovarianceError) as exc:
            raise bad(str(exc)) from None
        dtype = input_dtype(means)  # float32 for a model fitted on float32 X
        rtol = 1e-8 if dtype == np.float64 else 1e-4
        pc = arrays["precisions_cholesky_"]
        if pc.shape != params.precisions_cholesky.shape or not np.allclose(
                params.precisions_cholesky, pc, rtol=rtol, atol=0):
            raise bad("precisions_cholesky_ does not match covariances_")
        try:
            check_weights(arrays["weights_"], params.n_components, "weights_")
        except ValueError as exc:
            raise bad(str(exc)) from None
        model._dtype = dtype
        model.weights_ = params.weights.astype(dtype, copy=False)
        model.means_ = params.means.astype(dtype, copy=False)
        model.covariances_ = params.covariances.astype(dtype, copy=False)
        model.precisions_cholesky_ = pc.astype(dtype, copy=False)
        model.precisions_ = params.model.precisions(params.precisions_cholesky).astype(dtype,
                                                                                      copy=False)
        model.lower_bounds_ = arrays["lower_bounds_"]
        model.lower_bound_ = float(model.lower_bounds_[-1]) if model.lower_bounds_.size else -np.inf
        model.converged_ = converged
        model.n_iter_ = n_iter
        model.n_features_in_ = n_features
        model._fitted_type = params.covariance_type
        return model
