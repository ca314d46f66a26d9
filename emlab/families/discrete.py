"""Bernoulli, Poisson, exponential and categorical families: conjugate, closed-form M-steps.

Each M-step is the maximiser of Q plus the log of the family's conjugate prior
(MAP); at the default prior (flat: Beta(1, 1), Gamma(1, 0), Dirichlet(1)) it is
maximum likelihood. A component with no responsibility keeps its parameters
(the mixture gives it weight 0). The log-priors omit their normalising
constants, which do not depend on the parameters.
"""

import numpy as np

from .. import _config
from .._kernels.families import (
    categorical_counts,
    log_bernoulli,
    log_categorical,
    log_exponential,
    log_poisson,
)
from .._validation import check_array, check_scalar
from ..em import SufficientStatistics
from ..exceptions import DegenerateComponentError
from ._base import Family, check_prior_pair, sums_statistics

TINY = 10 * np.finfo(np.float64).eps


def _log(x):
    with np.errstate(divide="ignore"):
        return np.log(x)


def _xlogy(x, y):
    """``x log y`` with ``0 log 0 = 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(y))


def _kernel_out(X, k):
    return np.empty((X.shape[0], k))


def _live(nk, total):
    return nk > TINY * max(total, 1.0)


def _first_bad(mask):
    i, j = np.argwhere(mask)[0]
    return int(i), int(j)


class Bernoulli(Family):
    """Multivariate binary data: each feature an independent Bernoulli variable per component.

    Parameters
    ----------
    prior : (float, float), default=(1.0, 1.0)
        ``(a, b)`` of a Beta prior on every probability; the M-step is
        ``p_kj = (s_kj + a - 1) / (N_k + a + b - 2)`` with ``s_kj`` the
        expected count of ones. (1, 1) is maximum likelihood; (2, 2)
        keeps every probability off 0 and 1.

    The fitted probabilities are ``probabilities_`` (n_components, n_features);
    parameter letter ``'p'``. X must hold only 0 and 1 (booleans allowed).
    """

    start_smoothing = 0.1
    letters = "p"
    attributes = {"probabilities": "probabilities_"}
    letter_params = {"p": ("probabilities",)}

    def __init__(self, prior=(1.0, 1.0)):
        self.prior = prior

    def _args(self):
        return {"prior": self.prior}

    def _ab(self):
        return check_prior_pair(self.prior, "Bernoulli prior", 0.0, 0.0)

    def check_X(self, X, name="X", n_features=None, params=None):
        X = check_array(X, name, n_features=n_features)
        bad = (X != 0) & (X != 1)
        if bad.any():
            i, j = _first_bad(bad)
            raise ValueError(f"{name} must be binary for a Bernoulli family (0 or 1); {name}[{i}, "
                             f"{j}] = {X[i, j]:.6g}.")
        return X

    def log_prob(self, X, params):
        p = params["probabilities"]
        out = _kernel_out(X, p.shape[0])
        with _config.threads_for(out.size * X.shape[1]):
            log_bernoulli(X, _log(p), _log(1.0 - p), _config.CHUNK_ROWS, out)
        return out

    def statistics(self, X, resp, params):
        return sums_statistics(X, resp)

    def m_step(self, stats, params, learn):
        if "p" not in learn:
            return params, 0.0
        a, b = self._ab()
        nk, ones = stats.nk, stats.sums
        live = _live(nk, nk.sum()) if (a + b - 2) <= 0 else np.ones(nk.shape, bool)
        new = np.zeros_like(ones) if params is None else params["probabilities"].copy()
        new[live] = (ones[live] + a - 1.0) / (nk[live, None] + a + b - 2.0)
        return {"probabilities": np.clip(new, 0.0, 1.0)}, 0.0

    def log_prior(self, params):
        a, b = self._ab()
        p = params["probabilities"]
        return float(np.sum(_xlogy(a - 1.0, p) + _xlogy(b - 1.0, 1.0 - p)))

    def check_params(self, params, n_components, n_features):
        p = np.asarray(params["probabilities"], dtype=np.float64)
        if p.shape != (n_components, n_features) or not np.all((p >= 0) & (p <= 1)):
            raise ValueError(f"probabilities_ must have shape ({n_components}, {n_features}) with "
                             f"values in [0, 1]; got shape {p.shape}.")
        return {"probabilities": p}

    def n_parameters(self, params):
        return int(next(iter(params.values())).size)

    def sample(self, params, k, n, rng):
        p = params["probabilities"][k]
        return (rng.random((n, p.shape[0])) < p).astype(np.float64)


class Poisson(Family):
    """Counts: each feature an independent Poisson variable per component.

    Parameters
    ----------
    prior : (float, float), default=(1.0, 0.0)
        ``(a, b)``, shape and rate of a Gamma prior on every rate; the
        M-step is ``lambda_kj = (s_kj + a - 1) / (N_k + b)``. (1, 0) is
        maximum likelihood.

    Fitted rates ``rates_`` (n_components, n_features), letter ``'r'``. X
    must hold non-negative integers.
    """

    start_smoothing = 0.1
    letters = "r"
    attributes = {"rates": "rates_"}
    letter_params = {"r": ("rates",)}

    def __init__(self, prior=(1.0, 0.0)):
        self.prior = prior

    def _args(self):
        return {"prior": self.prior}

    def check_X(self, X, name="X", n_features=None, params=None):
        X = check_array(X, name, n_features=n_features)
        bad = (X < 0) | (X != np.floor(X))
        if bad.any():
            i, j = _first_bad(bad)
            raise ValueError(f"{name} must hold counts (non-negative integers) for a Poisson "
                             f"family; {name}[{i}, {j}] = {X[i, j]:.6g}.")
        return X

    def log_prob(self, X, params):
        rates = params["rates"]
        out = _kernel_out(X, rates.shape[0])
        with _config.threads_for(out.size * X.shape[1]):
            log_poisson(X, _log(rates), rates.sum(axis=1), _config.CHUNK_ROWS, out)
        return out

    def statistics(self, X, resp, params):
        return sums_statistics(X, resp)

    def m_step(self, stats, params, learn):
        if "r" not in learn:
            return params, 0.0
        a, b = check_prior_pair(self.prior, "Poisson prior", 0.0, 0.0)
        nk, sums = stats.nk, stats.sums
        live = _live(nk, nk.sum()) if b <= 0 else np.ones(nk.shape, bool)
        new = np.zeros_like(sums) if params is None else params["rates"].copy()
        new[live] = np.maximum(sums[live] + a - 1.0, 0.0) / (nk[live, None] + b)
        return {"rates": new}, 0.0

    def log_prior(self, params):
        a, b = check_prior_pair(self.prior, "Poisson prior", 0.0, 0.0)
        lam = params["rates"]
        return float(np.sum(_xlogy(a - 1.0, lam) - b * lam))

    def check_params(self, params, n_components, n_features):
        r = np.asarray(params["rates"], dtype=np.float64)
        if r.shape != (n_components, n_features) or not np.all(np.isfinite(r) & (r >= 0)):
            raise ValueError(f"rates_ must have shape ({n_components}, {n_features}) with finite "
                             f"non-negative values; got shape {r.shape}.")
        return {"rates": r}

    def n_parameters(self, params):
        return int(next(iter(params.values())).size)

    def sample(self, params, k, n, rng):
        return rng.poisson(params["rates"][k], size=(n, params["rates"].shape[1])).astype(float)


class Exponential(Family):
    """Positive data: each feature an independent exponential variable per component.

    Parameters
    ----------
    prior : (float, float), default=(1.0, 0.0)
        ``(a, b)``, shape and rate of a Gamma prior on every rate; the
        M-step is ``lambda_kj = (N_k + a - 1) / (s_kj + b)``, ``s_kj`` the
        responsibility-weighted sum of feature j. (1, 0) is maximum
        likelihood, which is unbounded when a component collapses onto zeros:
        that is a :class:`~emlab.exceptions.DegenerateComponentError`; a
        prior with ``b > 0`` prevents it.

    Fitted rates ``rates_`` (n_components, n_features), letter ``'r'``. X
    must be non-negative.
    """

    letters = "r"
    attributes = {"rates": "rates_"}
    letter_params = {"r": ("rates",)}

    def __init__(self, prior=(1.0, 0.0)):
        self.prior = prior

    def _args(self):
        return {"prior": self.prior}

    def check_X(self, X, name="X", n_features=None, params=None):
        X = check_array(X, name, n_features=n_features)
        bad = X < 0
        if bad.any():
            i, j = _first_bad(bad)
            raise ValueError(f"{name} must be non-negative for an exponential family; {name}[{i}, "
                             f"{j}] = {X[i, j]:.6g}.")
        return X

    def log_prob(self, X, params):
        rates = params["rates"]
        out = _kernel_out(X, rates.shape[0])
        with _config.threads_for(out.size * X.shape[1]):
            log_exponential(X, rates, _log(rates).sum(axis=1), _config.CHUNK_ROWS, out)
        return out

    def statistics(self, X, resp, params):
        return sums_statistics(X, resp)

    def m_step(self, stats, params, learn):
        if "r" not in learn:
            return params, 0.0
        a, b = check_prior_pair(self.prior, "Exponential prior", 0.0, 0.0)
        nk, sums = stats.nk, stats.sums
        live = _live(nk, nk.sum())
        new = np.ones_like(sums) if params is None else params["rates"].copy()
        denom = sums[live] + b
        numer = np.broadcast_to((nk[live] + a - 1.0)[:, None], denom.shape)
        if np.any(denom <= TINY * np.maximum(numer, 1.0)):
            k = int(np.flatnonzero(live)[np.argwhere(denom <= TINY * np.maximum(numer, 1.0))[0, 0]])
            raise DegenerateComponentError(
                f"component {k} of the exponential mixture collapsed onto zeros: its rate is "
                f"infinite and the likelihood unbounded. Give a prior with b > 0 "
                f"(Exponential(prior=(1.0, b))), or fewer components.")
        new[live] = np.maximum(numer, 0.0) / denom
        return {"rates": new}, 0.0

    def log_prior(self, params):
        a, b = check_prior_pair(self.prior, "Exponential prior", 0.0, 0.0)
        lam = params["rates"]
        return float(np.sum(_xlogy(a - 1.0, lam) - b * lam))

    def check_params(self, params, n_components, n_features):
        r = np.asarray(params["rates"], dtype=np.float64)
        if r.shape != (n_components, n_features) or not np.all(np.isfinite(r) & (r > 0)):
            raise ValueError(f"rates_ must have shape ({n_components}, {n_features}) with finite "
                             f"positive values; got shape {r.shape}.")
        return {"rates": r}

    def n_parameters(self, params):
        return int(next(iter(params.values())).size)

    def sample(self, params, k, n, rng):
        return rng.exponential(1.0 / params["rates"][k], size=(n, params["rates"].shape[1]))


class Categorical(Family):
    """Several categorical features, independent given the component.

    Parameters
    ----------
    n_categories : int or sequence of int, optional
        Categories of each feature (symbols ``0 .. n_categories - 1``); one
        int for all features. Default: the largest symbol of each feature in
        the training data, plus one.
    prior : float, default=1.0
        The concentration ``alpha`` of a symmetric Dirichlet prior on every
        probability vector: ``p_kjc = (s_kjc + alpha - 1) / (N_k + C_j (alpha - 1))``.
        1 is maximum likelihood.

    Fitted ``probabilities_`` (n_components, n_features, max categories):
    ``probabilities_[k, j, c]``, zero beyond a feature's categories; letter ``'p'``.
    X holds integer symbols.
    """

    start_smoothing = 0.1
    letters = "p"
    attributes = {"probabilities": "probabilities_"}
    letter_params = {"p": ("probabilities",)}

    def __init__(self, n_categories=None, prior=1.0):
        self.n_categories = n_categories
        self.prior = prior

    def _args(self):
        return {"n_categories": self.n_categories, "prior": self.prior}

    def _categories(self, d):
        if self.n_categories is None:
            return None
        c = np.atleast_1d(np.asarray(self.n_categories))
        if c.ndim != 1 or c.size not in (1, d) or not np.all(c == np.floor(c)) or np.any(c < 1):
            raise ValueError(f"n_categories must be a positive int or {d} positive ints; got "
                             f"{self.n_categories!r}.")
        return np.broadcast_to(c.astype(np.int64), (d,)).copy()

    def check_X(self, X, name="X", n_features=None, params=None):
        X = check_array(X, name, n_features=n_features)
        d = X.shape[1]
        bad = (X < 0) | (X != np.floor(X))
        if bad.any():
            i, j = _first_bad(bad)
            raise ValueError(f"{name} must hold categorical symbols (integers 0, 1, ...) for a "
                             f"Categorical family; {name}[{i}, {j}] = {X[i, j]:.6g}.")
        limit = (params["n_categories"] if params is not None else self._categories(d))
        if limit is not None:
            over = X >= limit[None, :]
            if over.any():
                i, j = _first_bad(over)
                raise ValueError(f"{name}[{i}, {j}] = {int(X[i, j])} is outside the range of "
                                 f"feature {j}, whose symbols are 0..{int(limit[j]) - 1} "
                                 f"(n_categories).")
        elif X.max(initial=0) > 2**20:
            raise ValueError(f"{name} holds a symbol of {X.max():.6g}; symbols must be 0, 1, ... up "
                             f"to the number of categories (at most 2**20 here): re-code them.")
        return X.astype(np.int64)

    def _sizes(self, S, params):
        if params is not None:
            return params["n_categories"]
        sizes = self._categories(S.shape[1])
        return sizes if sizes is not None else S.max(axis=0) + 1

    def log_prob(self, S, params):
        p = params["probabilities"]
        out = _kernel_out(S, p.shape[0])
        with _config.threads_for(out.size * S.shape[1]):
            log_categorical(S, _log(p), _config.CHUNK_ROWS, out)
        return out

    def statistics(self, S, resp, params):
        n, d = S.shape
        k = resp.shape[1]
        sizes = self._sizes(S, params)
        counts = np.empty((k, d, int(sizes.max())))
        with _config.threads_for(n * k * d):
            categorical_counts(S, np.ascontiguousarray(resp), _config.n_blocks(n, counts[0].size),
                               _config.CHUNK_ROWS, counts)
        return SufficientStatistics(0.0, 0.0, nk=resp.sum(axis=0), counts=counts)

    def m_step(self, stats, params, learn):
        if "p" not in learn:
            return params, 0.0
        alpha = check_scalar(self.prior, "Categorical prior", low=0.0)
        nk, counts = stats.nk, stats.counts
        k, d, c = counts.shape
        sizes = params["n_categories"] if params is not None else self._sizes_from_counts(counts)
        valid = np.arange(c)[None, :] < sizes[:, None]  # (d, c)
        live = _live(nk, nk.sum()) if alpha <= 1 else np.ones(k, bool)
        new = (np.zeros_like(counts) if params is None else params["probabilities"].copy())
        numer = np.where(valid, np.maximum(counts[live] + alpha - 1.0, 0.0), 0.0)
        new[live] = numer / numer.sum(axis=2, keepdims=True)
        return {"probabilities": new, "n_categories": sizes}, 0.0

    def _sizes_from_counts(self, counts):
        sizes = self._categories(counts.shape[1])
        if sizes is not None:
            return sizes
        seen = counts.sum(axis=0) > 0  # (d, c)
        return np.array([np.flatnonzero(row).max() + 1 if row.any() else 1 for row in seen])

    def log_prior(self, params):
        alpha = check_scalar(self.prior, "Categorical prior", low=0.0)
        p = params["probabilities"]
        valid = np.arange(p.shape[2])[None, None, :] < params["n_categories"][None, :, None]
        return float(np.sum(np.where(valid, _xlogy(alpha - 1.0, np.where(valid, p, 1.0)), 0.0)))

    def check_params(self, params, n_components, n_features):
        p = np.asarray(params["probabilities"], dtype=np.float64)
        if p.ndim != 3 or p.shape[:2] != (n_components, n_features) or np.any(p < 0) or \
                not np.allclose(p.sum(axis=2), 1.0, atol=1e-8):
            raise ValueError(f"probabilities_ must have shape ({n_components}, {n_features}, "
                             f"n_categories) with rows summing to 1.")
        sizes = params.get("n_categories")
        if sizes is None:
            sizes = np.full(n_features, p.shape[2], dtype=np.int64)
        return {"probabilities": p, "n_categories": np.asarray(sizes, dtype=np.int64)}

    def start_features(self, S):
        """One-hot codes, so k-means seeds on symbols' agreement."""
        n, d = S.shape
        width = int(S.max()) + 1
        onehot = np.zeros((n, d * width))
        onehot[np.arange(n)[:, None], np.arange(d)[None, :] * width + S] = 1.0
        return onehot

    def n_parameters(self, params):
        return params["probabilities"].shape[0] * int(np.sum(params["n_categories"] - 1))

    def sample(self, params, k, n, rng):
        p = params["probabilities"][k]
        return np.column_stack([rng.choice(p.shape[1], size=n, p=p[j]) for j in range(p.shape[0])])
