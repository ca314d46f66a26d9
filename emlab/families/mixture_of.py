"""A finite mixture of a family, itself a family: mixture emissions for any HMM family."""

import numpy as np

from .. import _config
from .._kernels.families import grouped_log_normalize
from ..em import SufficientStatistics
from ._base import Family

TINY = 10 * np.finfo(np.float64).eps


class NestedStatistics(SufficientStatistics):
    """Statistics of a family mixture: ``nk`` (K,) the components' totals, ``mix`` (K, M) the
    sub-components' totals, and ``inner`` the inner family's statistics of the K * M
    sub-components (any :class:`~emlab.em.SufficientStatistics`, which adds and scales
    by its own rules)."""

    __slots__ = ()


class Mixture(Family):
    """Each component a mixture of ``n_mix`` members of ``family``.

    ``p(x | k) = sum_m w_km f(x | theta_km)``. As an HMM emission this is
    hmmlearn's ``GMMHMM`` for any family (``HMM(Mixture(Gaussian('diag'), 3), K)``
    is a GMMHMM with diagonal covariances). EM treats the sub-component as a
    second latent variable: the E-step splits each component's responsibility
    ``r_ik`` over its sub-components in proportion to ``w_km f(x_i | theta_km)``,
    and the inner family's M-step runs on the K * M sub-components.

    Parameters
    ----------
    family : Family
        The inner family.
    n_mix : int, default=2
        Sub-components per component.

    The fitted ``mix_weights_`` (n_components, n_mix), letter ``'g'``; the
    inner family's attributes hold the K * n_mix sub-components, sub-component
    m of component k in row ``k * n_mix + m`` (so ``means_`` is
    (K * n_mix, n_features) for a Gaussian inner family).

    The start splits each component's rows into ``n_mix`` groups by their
    position along the component's first principal axis (weighted
    quantiles), so the sub-components start apart.
    """

    def __init__(self, family=None, n_mix=2):
        self.family = family
        self.n_mix = n_mix

    def _args(self):
        return {"family": self.family, "n_mix": self.n_mix}

    def _inner(self):
        if not isinstance(self.family, Family) or isinstance(self.family, Mixture):
            raise ValueError(f"Mixture needs an emlab.families.Family (not a Mixture) to mix; got "
                             f"{self.family!r}.")
        m = self.n_mix
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"n_mix must be an int >= 1; got {m!r}.")
        return self.family, int(m)

    @property
    def letters(self):
        """``'g'`` (the sub-component weights) and the inner family's letters."""
        return "g" + self._inner()[0].letters

    @property
    def attributes(self):
        """The inner family's attributes and ``mix_weights_``."""
        return dict(self._inner()[0].attributes, mix_weights="mix_weights_")

    @property
    def letter_params(self):
        """Which parameters each letter learns."""
        return dict(self._inner()[0].letter_params, g=("mix_weights",))

    @property
    def start_smoothing(self):
        """The inner family's."""
        return self._inner()[0].start_smoothing

    # -- data

    def check_X(self, X, name="X", n_features=None, params=None):
        return self._inner()[0].check_X(X, name, n_features, self._inner_params(params))

    def start_features(self, X):
        return self._inner()[0].start_features(X)

    @staticmethod
    def _inner_params(params):
        if params is None:
            return None
        return {name: value for name, value in params.items() if name != "mix_weights"}

    # -- E-step pieces

    def _sub_log_prob(self, X, params):
        """``log w_km + log f(x_i | theta_km)``, shape (n, K * M)."""
        inner, m = self._inner()
        lp = inner.log_prob(X, self._inner_params(params))
        with np.errstate(divide="ignore"):
            lp += np.log(params["mix_weights"]).ravel()[None, :]
        return lp

    def _normalised(self, X, params, shares):
        """Per component, the log-sum-exp over its sub-components (n, K) and, with
        ``shares``, each sub-component's share (n, K * M)."""
        _, m = self._inner()
        sub = self._sub_log_prob(X, params)
        n, km = sub.shape
        log_norm = np.empty((n, km // m))
        post = np.empty((n, km) if shares else (0, km))
        with _config.threads_for(sub.size * 16):
            grouped_log_normalize(sub, m, _config.CHUNK_ROWS, log_norm, post)
        return log_norm, post

    def log_prob(self, X, params):
        return self._normalised(X, params, False)[0]

    def statistics(self, X, resp, params):
        inner, m = self._inner()
        n, k = resp.shape
        if params is None:
            split = self._start_split(X, resp)
        else:
            split = self._normalised(X, params, True)[1].reshape(n, k, m)
        sub_resp = (resp[:, :, None] * split).reshape(n, k * m)
        stats = inner.statistics(X, sub_resp, self._inner_params(params))
        mix = inner.totals(stats).reshape(k, m)
        return NestedStatistics(0.0, 0.0, nk=resp.sum(axis=0), mix=mix, inner=stats)

    def _start_split(self, X, resp):
        """Each row's share of each sub-component at the start: weighted quantiles of the
        rows of each component along its first principal axis (a few power iterations)."""
        inner, m = self._inner()
        features = np.asarray(self.start_features(X), dtype=np.float64)
        n, k = resp.shape
        eps = inner.start_smoothing
        split = np.full((n, k, m), eps / m)
        for j in range(k):
            r = resp[:, j]
            total = r.sum()
            if total <= 0 or m == 1:
                split[:, j, :] = 1.0 / m
                continue
            centred = features - (r @ features) / total
            v = np.ones(features.shape[1]) / np.sqrt(features.shape[1])
            for _ in range(20):
                w = centred.T @ (r * (centred @ v))
                norm = np.linalg.norm(w)
                if norm == 0:
                    break
                v = w / norm
            order = np.argsort(centred @ v, kind="stable")
            cum = np.cumsum(r[order]) / total
            group = np.minimum((cum * m - 1e-12).astype(np.int64).clip(0), m - 1)
            split[order, j, group] += 1.0 - eps
        return split

    def totals(self, stats):
        return stats.nk

    # -- M-step

    def m_step(self, stats, params, learn):
        inner, m = self._inner()
        k = stats.nk.shape[0]
        start = params is None
        inner_learn = inner.letters if start else "".join(c for c in learn if c in inner.letters)
        new, deficit = inner.m_step(stats.inner, self._inner_params(params), inner_learn)
        new = dict(new)
        if start or "g" in learn:
            mix = np.maximum(stats.mix, 0.0)
            rows = mix.sum(axis=1, keepdims=True)
            previous = np.full((k, m), 1.0 / m) if start else params["mix_weights"]
            new["mix_weights"] = np.where(rows > TINY, mix / np.where(rows > TINY, rows, 1.0),
                                          previous)
        else:
            new["mix_weights"] = params["mix_weights"]
        return new, deficit

    def log_prior(self, params):
        return self._inner()[0].log_prior(self._inner_params(params))

    # -- parameters

    def check_params(self, params, n_components, n_features):
        inner, m = self._inner()
        weights = np.asarray(params["mix_weights"], dtype=np.float64)
        if (weights.shape != (n_components, m) or np.any(weights < 0)
                or not np.allclose(weights.sum(axis=1), 1.0, atol=1e-8)):
            raise ValueError(f"mix_weights_ must have shape ({n_components}, {m}) with rows of "
                             f"non-negative numbers summing to 1.")
        out = dict(inner.check_params(self._inner_params(params), n_components * m, n_features))
        out["mix_weights"] = weights
        return out

    def n_parameters(self, params):
        inner, m = self._inner()
        k = params["mix_weights"].shape[0]
        return k * (m - 1) + inner.n_parameters(self._inner_params(params))

    def sample(self, params, k, n, rng):
        inner, m = self._inner()
        counts = rng.multinomial(n, params["mix_weights"][k])
        parts = [inner.sample(self._inner_params(params), k * m + j, c, rng)
                 for j, c in enumerate(counts) if c > 0]
        out = np.vstack(parts)
        return out[rng.permutation(n)]
