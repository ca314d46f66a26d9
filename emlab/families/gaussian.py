"""Gaussian and multivariate Student-t families, over emlab's Gaussian kernels."""

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import digamma, gammaln

from .._covariance import MODELS
from .._validation import check_array, check_option, check_scalar, check_scale
from ..mixture import (
    PRIOR_KEYS,
    GaussianStatistics,
    MixtureParams,
    params_from_statistics,
    resolve_prior,
    sufficient_statistics,
)
from ..mixture import log_prior as mixture_log_prior
from ._base import Family

TINY = 10 * np.finfo(np.float64).eps


class Gaussian(Family):
    """Multivariate normal components, with emlab's four covariance models.

    Parameters
    ----------
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance (as in scikit-learn).
    prior : None, 'conjugate' or dict, default=None
        The conjugate normal-inverse-Wishart prior of
        :class:`emlab.GaussianMixture` (same keys and data-driven defaults,
        resolved from the data at ``fit``): the M-step is then the MAP one,
        and the objective the log-posterior. Needs both 'm' and 'c' learnt.

    Fitted ``means_`` and ``covariances_`` (shaped as in
    :class:`emlab.GaussianMixture`) and ``precisions_cholesky_``; letters
    ``'m'`` (means) and ``'c'`` (covariances). With the means held fixed the
    covariances are the scatter about those means, which maximises Q given them.
    """

    letters = "mc"
    attributes = {"means": "means_", "covariances": "covariances_",
                  "precisions_cholesky": "precisions_cholesky_"}
    letter_params = {"m": ("means",), "c": ("covariances", "precisions_cholesky")}

    def __init__(self, covariance_type="full", reg_covar=1e-6, prior=None):
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.prior = prior

    def _args(self):
        return {"covariance_type": self.covariance_type, "reg_covar": self.reg_covar,
                "prior": self.prior}

    def prepare(self, X, sample_weight, n_components):
        if self.prior is None:
            return self
        resolved = resolve_prior(self.prior, X, sample_weight, n_components,
                                 self._model.name)
        return type(self)(**dict(self._args(), prior={
            key: np.asarray(value).tolist() for key, value in resolved.items()}))

    def _resolved_prior(self):
        """The prior as arrays, or None; it must have been resolved (``prepare``)."""
        if self.prior is None:
            return None
        if not isinstance(self.prior, dict) or set(self.prior) != set(PRIOR_KEYS):
            raise ValueError("the Gaussian family's prior is resolved from the data at fit: "
                             "fit through MixtureModel or HMM (or give all of "
                             f"{list(PRIOR_KEYS)}).")
        return {key: (np.asarray(value, dtype=np.float64) if key in ("mean", "scale")
                      else float(value)) for key, value in self.prior.items()}

    def _as_mixture(self, params):
        k = params["means"].shape[0]
        return MixtureParams(np.full(k, 1.0 / k), params["means"], params["covariances"],
                             params["precisions_cholesky"], self._model.name)

    @property
    def _model(self):
        return MODELS[check_option(self.covariance_type, "covariance_type", tuple(MODELS))]

    def check_X(self, X, name="X", n_features=None, params=None):
        self._model  # the covariance type, checked before any work
        X = check_array(X, name, n_features=n_features)
        check_scale(X, name)
        return X

    def log_prob(self, X, params):
        return self._model.log_gaussian(X, params["means"], params["precisions_cholesky"])

    def statistics(self, X, resp, params):
        k = resp.shape[1]
        centers = (params["means"] if params is not None
                   else np.broadcast_to(X.mean(axis=0), (k, X.shape[1])))
        nk, means, second = sufficient_statistics(X, resp, centers, self.covariance_type)
        return GaussianStatistics(0.0, 0.0, nk=nk, means=means, second=second)

    def _covariances(self, counts, means_fixed, stats, params):
        """Covariances maximising Q given the means; returns (covariances, ridge deficit)."""
        model = self._model
        second = stats.second
        if means_fixed is not None:  # the scatter about the fixed means
            second = model.add_outer(second, stats.means - means_fixed, stats.nk)
        live = np.flatnonzero(counts > TINY * max(counts.sum(), 1.0))
        if live.size < counts.size and params is None:
            raise ValueError(f"the initialisation left component(s) "
                             f"{np.setdiff1d(np.arange(counts.size), live).tolist()} without data; "
                             f"choose another init or random_state.")
        previous = None if params is None else params["covariances"]
        return model.covariances(counts, second, check_scalar(self.reg_covar, "reg_covar"), live,
                                 previous)

    def m_step(self, stats, params, learn):
        learn_m, learn_c = "m" in learn, "c" in learn
        if params is None:
            learn_m = learn_c = True
        prior = self._resolved_prior()
        if prior is not None:  # the MAP M-step of GaussianMixture(prior=...)
            if not (learn_m and learn_c):
                raise ValueError("a prior needs both 'm' and 'c' learnt (the MAP M-step updates "
                                 "means and covariances together).")
            step = params_from_statistics(stats.nk, stats.means, stats.second,
                                          check_scalar(self.reg_covar, "reg_covar"),
                                          self._model.name,
                                          None if params is None else self._as_mixture(params),
                                          prior)
            new = dict(params) if params is not None else {}
            new.update(means=step.params.means, covariances=step.params.covariances,
                       precisions_cholesky=step.params.precisions_cholesky)
            return new, step.ridge_deficit
        nk = stats.nk
        live = nk > TINY * max(nk.sum(), 1.0)
        means = stats.means.copy() if params is None else params["means"].copy()
        if learn_m:
            means[live] = stats.means[live]
        deficit = 0.0
        new = dict(params) if params is not None else {}
        new["means"] = means
        if learn_c:
            cov, deficit = self._covariances(nk, None if learn_m else means, stats, params)
            new["covariances"] = cov
            new["precisions_cholesky"] = self._model.precision_cholesky(cov)
        return new, deficit

    def log_prior(self, params):
        prior = self._resolved_prior()
        return 0.0 if prior is None else mixture_log_prior(self._as_mixture(params), prior)

    def check_params(self, params, n_components, n_features):
        means = np.asarray(params["means"], dtype=np.float64)
        if means.shape != (n_components, n_features) or not np.all(np.isfinite(means)):
            raise ValueError(f"means_ must be finite with shape ({n_components}, {n_features}); "
                             f"got shape {means.shape}.")
        cov = np.asarray(params["covariances"], dtype=np.float64)
        shape = self._model.shape(n_components, n_features)
        if cov.shape != shape:
            raise ValueError(f"covariances_ must have shape {shape} for covariance_type="
                             f"{self.covariance_type!r}; got {cov.shape}.")
        return {"means": means, "covariances": cov,
                "precisions_cholesky": self._model.precision_cholesky(cov)}

    def n_parameters(self, params):
        k, d = params["means"].shape
        return k * d + self._model.n_parameters(k, d)

    def full_covariances(self, params):
        k, d = params["means"].shape
        return self._model.as_full(params["covariances"], k, d)

    def sample(self, params, k, n, rng):
        chol = np.linalg.cholesky(self.full_covariances(params)[k])
        return params["means"][k] + rng.standard_normal((n, chol.shape[0])) @ chol.T


class TStatistics(GaussianStatistics):
    """A Student-t component's statistics: the centred Gaussian statistics with weights
    ``r_ik u_ik`` (``nk``, ``means``, ``second``), plus ``counts = sum_i r_ik`` and
    ``dof_terms = sum_i r_ik (log u_ik - u_ik)``, which add plainly."""

    __slots__ = ()

    def _add_arrays(self, other):
        out = super()._add_arrays(other)
        out["counts"] = self.counts + other.counts
        out["dof_terms"] = self.dof_terms + other.dof_terms
        return out

    def _scale_arrays(self, factor):
        out = super()._scale_arrays(factor)
        out["counts"] = factor * self.counts
        out["dof_terms"] = factor * self.dof_terms
        return out


class StudentT(Gaussian):
    """Multivariate Student-t components: a Gaussian scale mixture, robust to outliers.

    ``t_nu(x | mu, Sigma)`` is the marginal of ``x | u ~ N(mu, Sigma / u)``,
    ``u ~ Gamma(nu / 2, nu / 2)``; EM treats ``u`` as a second latent variable
    (Peel and McLachlan 2000). The E-step weights each row by
    ``u_ik = (nu_k + d) / (nu_k + delta_ik^2)``, ``delta`` the Mahalanobis
    distance, so outlying rows pull the means and covariances less.

    Parameters
    ----------
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    dof : float, optional
        Fixed degrees of freedom for every component. Default: learnt per
        component (letter ``'d'``), by a conditional-maximisation step on Q:
        the root of ``log(nu/2) + 1 - psi(nu/2) + (1/N_k) sum_i r_ik (log u_ik
        - u_ik) + psi((nu' + d)/2) - log((nu' + d)/2) = 0`` (``nu'`` the
        current value), bracketed in [``DOF_MIN``, ``DOF_MAX``]. This is the
        ECM algorithm of Peel and McLachlan (their ECME variant instead
        maximises the observed likelihood over ``nu``, which needs another
        pass over the data): each CM step maximises Q over its block, so the
        likelihood cannot fall.
    reg_covar : float, default=1e-6

    Fitted ``means_``, ``covariances_`` (the scale matrices Sigma_k; the
    covariance of a t is ``nu / (nu - 2) Sigma`` for nu > 2),
    ``precisions_cholesky_``, ``dofs_``.
    """

    letters = "mcd"
    attributes = dict(Gaussian.attributes, dofs="dofs_")
    letter_params = dict(Gaussian.letter_params, d=("dofs",))
    DOF_MIN = 1e-2
    DOF_MAX = 1e4

    def __init__(self, covariance_type="full", dof=None, reg_covar=1e-6):
        super().__init__(covariance_type, reg_covar)
        self.dof = dof

    def _args(self):
        return {"covariance_type": self.covariance_type, "dof": self.dof,
                "reg_covar": self.reg_covar}

    def prepare(self, X, sample_weight, n_components):
        return self

    def log_prior(self, params):
        return 0.0

    def _start_dofs(self, k):
        if self.dof is not None:
            dof = check_scalar(self.dof, "dof", low=0.0)
            if dof <= 0:
                raise ValueError(f"dof must be positive (degrees of freedom); got {dof}.")
            return np.full(k, dof)
        return np.full(k, 10.0)

    def _mahalanobis(self, X, params):
        """``(log N(x_i | mu_k, Sigma_k), delta_ik^2, log det term_k)``."""
        model = self._model
        means, pc = params["means"], params["precisions_cholesky"]
        log_n = model.log_gaussian(X, means, pc)
        # the log-density at the mean: -d/2 log(2 pi) + log|U_k|
        peak = np.diagonal(model.log_gaussian(means, means, pc)).copy()
        delta2 = np.maximum(2.0 * (peak[None, :] - log_n), 0.0)
        return delta2, peak

    def log_prob(self, X, params):
        d = X.shape[1]
        nu = params["dofs"]
        delta2, peak = self._mahalanobis(X, params)
        log_det = peak + 0.5 * d * math.log(2.0 * math.pi)
        const = (gammaln(0.5 * (nu + d)) - gammaln(0.5 * nu) - 0.5 * d * np.log(nu * math.pi)
                 + log_det)
        return const[None, :] - 0.5 * (nu + d)[None, :] * np.log1p(delta2 / nu[None, :])

    def totals(self, stats):
        return stats.counts if "counts" in stats.arrays else stats.nk

    def statistics(self, X, resp, params):
        if params is None:  # the start: plain Gaussian statistics
            return Gaussian.statistics(self, X, resp, None)
        d = X.shape[1]
        nu = params["dofs"]
        delta2, _ = self._mahalanobis(X, params)
        u = (nu + d)[None, :] / (nu[None, :] + delta2)
        ru = resp * u
        nk, means, second = sufficient_statistics(X, ru, params["means"], self.covariance_type)
        return TStatistics(0.0, 0.0, nk=nk, means=means, second=second, counts=resp.sum(axis=0),
                           dof_terms=np.einsum("ik,ik->k", resp, np.log(u) - u))

    def m_step(self, stats, params, learn):
        if params is None:  # the start: Gaussian statistics of the initial responsibilities
            new, deficit = Gaussian.m_step(self, stats, None, "mc")
            new["dofs"] = self._start_dofs(stats.nk.shape[0])
            return new, deficit
        counts = stats.counts
        live = counts > TINY * max(counts.sum(), 1.0)
        means = params["means"].copy()
        if "m" in learn:
            means[live] = stats.means[live]
        new = dict(params, means=means)
        deficit = 0.0
        if "c" in learn:
            cov, deficit = self._covariances(counts, None if "m" in learn else means, stats, params)
            new["covariances"] = cov
            new["precisions_cholesky"] = self._model.precision_cholesky(cov)
        if "d" in learn and self.dof is None:
            new["dofs"] = self._update_dofs(stats, params["dofs"], live,
                                            stats.means.shape[1])
        return new, deficit

    def _update_dofs(self, stats, nu_old, live, d):
        nu = nu_old.copy()
        for k in np.flatnonzero(live):
            n_k = stats.counts[k]
            c = stats.dof_terms[k] / n_k + digamma(0.5 * (nu_old[k] + d)) - math.log(
                0.5 * (nu_old[k] + d))

            def score(v, c=c):
                return math.log(0.5 * v) + 1.0 - digamma(0.5 * v) + c

            lo, hi = self.DOF_MIN, self.DOF_MAX
            if score(hi) >= 0:
                nu[k] = hi
            elif score(lo) <= 0:
                nu[k] = lo
            else:
                nu[k] = brentq(score, lo, hi, xtol=1e-12, rtol=1e-12)
        return nu

    def check_params(self, params, n_components, n_features):
        out = super().check_params(params, n_components, n_features)
        dofs = np.asarray(params.get("dofs", self._start_dofs(n_components)), dtype=np.float64)
        if dofs.shape != (n_components,) or not np.all(np.isfinite(dofs) & (dofs > 0)):
            raise ValueError(f"dofs_ must be {n_components} positive numbers; got {dofs!r}.")
        out["dofs"] = dofs
        return out

    def n_parameters(self, params):
        extra = params["means"].shape[0] if self.dof is None else 0
        return super().n_parameters(params) + extra

    def sample(self, params, k, n, rng):
        z = super().sample(dict(params, means=np.zeros_like(params["means"])), k, n, rng)
        nu = params["dofs"][k]
        scale = np.sqrt(rng.chisquare(nu, size=n) / nu)
        return params["means"][k] + z / scale[:, None]
