"""Mixtures of any component family (:mod:`emlab.families`), fitted by EM.

The E-step is written once for every family: per block of rows, the family's
log-densities plus the log-weights, a log-sum-exp (the kernel of
:func:`~emlab.mixture.log_prob_resp`), and the family's sufficient statistics
under the responsibilities. Nothing of size n_samples x n_components outlives a
block. The statistics add over blocks and over chunks (the protocol of
:class:`~emlab.em.SufficientStatistics`), so every family is fitted in memory,
on a Dask array, and online with no code of its own.

Partial labels: ``fit(X, y)`` with ``y[i] = -1`` for an unlabelled row and a
component index otherwise. A labelled row's responsibilities are fixed to its
component, and the objective is ``sum_unlabelled log p(x_i) + sum_labelled
log(w_{y_i} p(x_i | y_i))``, whose EM is still monotone.
"""

import warnings
from dataclasses import dataclass

import numpy as np

from . import _config
from ._base import ParamsMixin
from ._dask import DaskData, is_dask_array, map_rows
from ._kernels.mixture import log_normalize
from ._validation import (
    check_int,
    check_is_fitted,
    check_labels,
    check_option,
    check_random_state,
    check_sample_weight,
    check_scalar,
)
from .em import ChunkedData, EMResult, check_em_options, fit_em
from .exceptions import EmptyComponentWarning, ModelFileError
from .families import Family
from .kmeans import KMeans, distinct_rows, kmeans_plusplus
from .mixture import (
    _log_weights,
    _nearest,
    align_to_labels,
    blockwise_statistics,
    mask_labelled,
    open_saved_npz,
)

INITS = ("kmeans", "k-means++", "random", "random_from_data")


@dataclass(frozen=True)
class FamilyMixtureParams:
    """Mixing weights (K,) and the family's parameters (a dict of arrays)."""

    weights: np.ndarray
    components: dict


def block_statistics(family, X, params, sample_weight=None, labels=None):
    """The family mixture's statistics of X (one chunk) under ``params``
    (:func:`emlab.mixture.blockwise_statistics` with the family's log-density and
    statistics)."""
    log_w = _log_weights(params.weights)
    return blockwise_statistics(
        X.shape[0], lambda rows: family.log_prob(X[rows], params.components) + log_w,
        lambda rows, resp: family.statistics(X[rows], resp, params.components),
        sample_weight, labels)


class _FamilyMixtureEM:
    """The :class:`~emlab.em.EMModel` of a :class:`MixtureModel` (statistics protocol)."""

    def __init__(self, family, n_components, n_features, init, learn, init_letters, given,
                 sample_weight, labels, checked):
        self.family = family
        self.n_components = n_components
        self.n_features = n_features
        self.init = init
        self.learn = learn
        self.init_letters = init_letters
        self.given = given  # user-set starting values of the parameters not drawn: name -> array
        self.sample_weight = sample_weight
        self.labels = labels
        self.checked = checked  # the in-memory X, already checked by the family
        self.m_step_slack = 0.0
        self.empty_events = []
        self.iteration = 0
        self._distinct = None  # (X, its distinct start features) for random_from_data

    # -- the start

    def _initial_resp(self, X, rng):
        n, k = X.shape[0], self.n_components
        if self.init == "random":
            resp = rng.uniform(size=(n, k))
            resp /= resp.sum(axis=1, keepdims=True)
        else:
            features = self.family.start_features(X)
            if self.init == "kmeans":
                labels = KMeans(n_clusters=k, n_init=1, random_state=rng).fit(features).labels_
            else:
                if self.init == "k-means++":
                    seeds = kmeans_plusplus(features, k, rng)[0]
                else:
                    if self._distinct is None or self._distinct[0] is not X:
                        self._distinct = (X, distinct_rows(features))  # once for all starts
                    distinct = self._distinct[1]
                    if distinct.shape[0] < k:
                        raise ValueError(f"X has {distinct.shape[0]} distinct rows, fewer than "
                                         f"n_components={k}.")
                    seeds = distinct[rng.choice(distinct.shape[0], k, replace=False)]
                labels = _nearest(features, seeds)
            labels = align_to_labels(labels, self.labels, k)
            eps = self.family.start_smoothing
            resp = np.full((n, k), eps / k)
            resp[np.arange(n), labels] += 1.0 - eps
        if self.labels is not None:
            known = np.flatnonzero(self.labels >= 0)
            resp[known] = 0.0
            resp[known, self.labels[known]] = 1.0
        if self.sample_weight is not None:
            resp *= self.sample_weight[:, None]
        return resp

    def init_params(self, X, rng):
        self.iteration = 0
        comps, weights = {}, None
        if self.init_letters:
            if isinstance(X, ChunkedData):
                raise ValueError("MixtureModel.fit on a Dask array starts from given parameters: "
                                 "set them as attributes (weights_, ...) and pass init_params='', "
                                 "or warm-start from a fit on a sample in memory.")
            resp = self._initial_resp(X, rng)
            stats = self.family.statistics(X, resp, None)
            comps, _ = self.family.m_step(stats, None, self.family.letters)
            totals = self.family.totals(stats)
            weights = totals / totals.sum()
        return self.complete(comps, weights)

    def complete(self, comps, weights):
        """The start: drawn values overridden by the user's, checked."""
        comps = dict(comps)
        for name, value in self.given.items():
            if name == "weights":
                weights = value
            else:
                comps[name] = value
        k = self.n_components
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (k,) or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
            raise ValueError(f"weights_ must be {k} non-negative numbers summing to 1; got "
                             f"{weights!r}.")
        checked = self.family.check_params(comps, k, self.n_features)
        for name, value in comps.items():  # bookkeeping the check does not cover
            checked.setdefault(name, value)
        return FamilyMixtureParams(weights / weights.sum(), checked)

    # -- the statistics protocol

    def statistics(self, X, params, sample_weight=None, labels=None):
        if X is self.checked:
            sample_weight, labels = self.sample_weight, self.labels
        else:  # a chunk of a Dask array: the family's checks run on the worker
            X = self.family.check_X(X, n_features=self.n_features, params=params.components)
            if labels is not None:
                labels = check_labels(labels, X.shape[0], self.n_components)
        return block_statistics(self.family, X, params, sample_weight, labels)

    def log_prior(self, params):
        return self.family.log_prior(params.components)

    def params_from_statistics(self, stats, params):
        comps, deficit = self.family.m_step(stats, params.components, self.learn)
        for name, value in params.components.items():  # bookkeeping the M-step does not touch
            comps.setdefault(name, value)
        weights = params.weights
        totals = self.family.totals(stats)
        if "w" in self.learn:
            weights = np.maximum(totals, 0.0) / np.maximum(totals, 0.0).sum()
        empty = np.flatnonzero(totals <= 10 * np.finfo(float).eps * max(stats.weight, 1.0))
        if empty.size:
            self.empty_events.append((self.iteration + 1, empty.tolist()))
        self.iteration += 1
        self.m_step_slack = deficit / max(stats.weight, 1e-300)
        return FamilyMixtureParams(weights, comps)


class MixtureModel(ParamsMixin):
    """A finite mixture of any component family, fitted by EM.

    Parameters
    ----------
    family : emlab.families.Family
        The component family: ``Gaussian(covariance_type)``, ``StudentT``,
        ``Bernoulli``, ``Categorical``, ``Poisson``, ``Exponential``, or your own.
    n_components : int, default=1
    tol : float, default=1e-3
        Convergence threshold on the change of the objective per sample.
    max_iter : int, default=100
    n_init : int, default=1
        Starts; the best objective is kept.
    init : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How the initial responsibilities are drawn (k-means on the family's
        ``start_features``: the data, or one-hot codes for categorical data).
    params : str, default='w' + the family's letters
        Parameters EM updates: ``'w'`` the weights and the family's letters
        (``'m'`` means and ``'c'`` covariances for Gaussian and Student-t,
        ``'d'`` the t's degrees of freedom, ``'p'`` probabilities, ``'r'``
        rates). A parameter left out keeps its starting value: fix means by
        setting ``means_`` and leaving ``'m'`` out of both strings.
    init_params : str, default='w' + the family's letters
        Parameters the start draws; the others must be set as attributes
        (``weights_``, ``means_``, ...) before ``fit`` (as in hmmlearn).
    random_state : None, int or numpy.random.Generator
    on_decrease : {'warn', 'raise', 'ignore'}, default='warn'
        What the monotonicity guard does if the objective falls.
    verbose : int, default=0
    warm_start : bool, default=False
        Start ``fit`` from the fitted parameters.
    learning_decay, learning_offset : float, default=0.7, 10.0
        The step sizes ``g_t = (t + learning_offset)^(-learning_decay)`` of
        :meth:`emlab.MixtureModel.partial_fit` (stepwise EM), as in :class:`emlab.GaussianMixture`.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    <family attributes> : ``means_``, ``covariances_``, ``precisions_cholesky_``
        (Gaussian, Student-t), ``dofs_`` (Student-t), ``probabilities_``
        (Bernoulli, Categorical), ``rates_`` (Poisson, Exponential).
    lower_bounds_ : ndarray
        The objective per sample after each iteration (log-likelihood, or
        log-posterior with a family prior; with partial labels the labelled
        rows count their complete-data term).
    lower_bound_ : float
        The last of them.
    converged_ : bool
    n_iter_ : int
    n_features_in_ : int

    See Also
    --------
    emlab.GaussianMixture : the Gaussian family's fused fast path (equal to
        ``MixtureModel(Gaussian(...))`` from the same start).
    """

    _estimator_type = "density_estimator"

    def __init__(self, family=None, n_components=1, *, tol=1e-3, max_iter=100, n_init=1,
                 init="kmeans", params=None, init_params=None, random_state=None,
                 on_decrease="warn", verbose=0, warm_start=False, learning_decay=0.7,
                 learning_offset=10.0):
        self.family = family
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init = init
        self.params = params
        self.init_params = init_params
        self.random_state = random_state
        self.on_decrease = on_decrease
        self.verbose = verbose
        self.warm_start = warm_start
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # ----------------------------------------------------------------------- settings

    def _family(self):
        if not isinstance(self.family, Family):
            raise ValueError(f"family must be an emlab.families.Family (Gaussian(), Bernoulli(), "
                             f"...); got {self.family!r}.")
        return self.family

    def _letters(self, value, name, family):
        allowed = "w" + family.letters
        value = allowed if value is None else value
        if not isinstance(value, str) or any(c not in allowed for c in value):
            raise ValueError(f"{name} must be a string of the letters {allowed!r} (for "
                             f"{type(family).__name__}); got {value!r}.")
        return value

    def _check_settings(self):
        family = self._family()
        k = check_int(self.n_components, "n_components", low=1)
        check_em_options(self.max_iter, self.tol, self.on_decrease)
        check_int(self.n_init, "n_init", low=1)
        check_option(self.init, "init", INITS)
        learn = self._letters(self.params, "params", family)
        init_letters = self._letters(self.init_params, "init_params", family)
        return family, k, learn, init_letters

    def _given(self, family, init_letters):
        """User-set attributes for the parameters that ``init_params`` leaves out."""
        values = {}
        for letter in "w" + family.letters:
            if letter in init_letters:
                continue
            names = ("weights",) if letter == "w" else family.letter_params[letter]
            for name in names:
                attr = "weights_" if name == "weights" else family.attributes[name]
                if hasattr(self, attr):
                    values[name] = getattr(self, attr)
                elif name != "precisions_cholesky":  # computed from the covariances
                    raise ValueError(f"init_params={init_letters!r} leaves {letter!r} out, so "
                                     f"{attr} must be set before fit.")
        return values

    # ----------------------------------------------------------------------- fitting

    def fit(self, X, y=None, sample_weight=None):
        """Fit the mixture by EM. Returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a Dask array
            Data the family accepts (binary for Bernoulli, counts for
            Poisson, symbols for Categorical, ...).
        y : array-like of shape (n_samples,), optional
            Partial labels: -1 for an unlabelled row, a component index for a
            labelled one (semi-supervised EM).
        sample_weight : array-like of shape (n_samples,), optional
            A row of weight m counts as m copies of it.
        """
        family, k, learn, init_letters = self._check_settings()
        if is_dask_array(X):
            per_row = {"sample_weight": sample_weight}
            if y is not None:
                per_row["labels"] = y
            data = DaskData(X, per_row=per_row, min_samples=1)
            n, d = data.n_samples, data.n_features
            X_in, weights, labels = data, None, None
        else:
            X_in = family.check_X(X)
            n, d = X_in.shape
            weights = check_sample_weight(sample_weight, n)
            labels = check_labels(y, n, k)
        if k > n:
            raise ValueError(f"n_components={k} must be <= n_samples={n}.")
        family = family.prepare(X_in, weights, k)
        warm = self.warm_start and hasattr(self, "weights_")
        given = {} if warm else self._given(family, init_letters)
        model = _FamilyMixtureEM(family, k, d, self.init, learn, init_letters, given, weights,
                                 labels, X_in)
        init = None
        if warm:
            current = self._current()
            init = model.complete(current.components, current.weights)
        result = fit_em(model, X_in, n_init=1 if (warm or not init_letters) else self.n_init,
                        max_iter=self.max_iter, tol=self.tol,
                        random_state=check_random_state(self.random_state),
                        on_decrease=self.on_decrease, verbose=self.verbose, init=init)
        for iteration, comps in model.empty_events[:1]:
            warnings.warn(f"component(s) {comps} received no responsibility at iteration "
                          f"{iteration}; their weight is 0 and their parameters are frozen. "
                          f"Consider fewer components.", EmptyComponentWarning, stacklevel=2)
        self._set_fitted(result, family, d)
        return self

    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of online (stepwise) EM on a batch of rows. Returns self.

        As :meth:`emlab.GaussianMixture.partial_fit` (Cappé and Moulines,
        2009), for any family: the running average of the per-sample
        statistics moves towards the batch's, ``s <- s + g_t (s_batch - s)``,
        and the family's M-step runs on it. The first call starts from the
        fitted parameters if any, else from its batch (``init``). ``y`` holds
        partial labels, as in :meth:`fit`. The monotonicity guard does not
        apply (each step climbs a noisy estimate of Q); ``lower_bounds_``
        records each batch's objective per sample under the parameters it was
        given.
        """
        decay = check_scalar(self.learning_decay, "learning_decay", low=0.0)
        if not 0.5 < decay <= 1.0:
            raise ValueError(f"learning_decay must be in (0.5, 1] (Robbins-Monro); got {decay}.")
        offset = check_scalar(self.learning_offset, "learning_offset", low=0.0)
        family, k, learn, init_letters = self._check_settings()
        online = getattr(self, "_online", None)
        first = online is None
        X_in = family.check_X(X, n_features=None if first else self.n_features_in_,
                              params=None if first else self._current().components)
        n, d = X_in.shape
        weights = check_sample_weight(sample_weight, n)
        labels = check_labels(y, n, k)
        model = _FamilyMixtureEM(family, k, d, self.init, learn, init_letters, {}, weights,
                                 labels, X_in)
        if first:
            family = model.family = family.prepare(X_in, weights, k)
            if hasattr(self, "weights_"):
                current = self._current()
                params = model.complete(current.components, current.weights)
            else:
                if k > n:
                    raise ValueError(f"n_components={k} must be <= the first batch's "
                                     f"n_samples={n}.")
                model.given = self._given(family, init_letters)
                params = model.init_params(X_in, check_random_state(self.random_state))
            self.lower_bounds_ = np.empty(0)
            self.n_steps_ = 0
        else:
            params, running = online
            family = model.family = self._active_family()
        batch = model.statistics(X_in, params)
        objective = (batch.objective + family.log_prior(params.components)) / batch.weight
        per_sample = (1.0 / batch.weight) * batch
        if first:
            running = per_sample
        else:
            g = (self.n_steps_ + offset) ** (-decay)
            running = (1.0 - g) * running + g * per_sample
        params = model.params_from_statistics(batch.weight * running, params)
        self.n_steps_ += 1
        result = EMResult(params, np.append(self.lower_bounds_, objective), False, self.n_steps_)
        self._set_fitted(result, family, d)
        self._online = (params, running)
        return self

    # ----------------------------------------------------------------------- persistence

    _FORMAT = "emlab.MixtureModel/1"
    _SETTINGS = ("n_components", "tol", "max_iter", "n_init", "init", "params", "init_params",
                 "on_decrease", "verbose", "warm_start", "learning_decay", "learning_offset")

    def save(self, path):
        """Write the fitted model to a ``.npz`` file: arrays and JSON text, no pickle.

        The family is stored by name and arguments (the families of
        :mod:`emlab.families`, nested ones included); :meth:`load` never runs
        code from the file.
        """
        import json

        check_is_fitted(self, "weights_")
        current = self._current()
        seed = self.random_state
        header = {"format": self._FORMAT, "family": family_to_json(self._active_family()),
                  "settings": {name: getattr(self, name) for name in self._SETTINGS},
                  "random_state": int(seed) if isinstance(seed, (int, np.integer)) else None,
                  "fitted": {"converged_": bool(self.converged_), "n_iter_": int(self.n_iter_),
                             "n_features_in_": int(self.n_features_in_)}}
        arrays = {f"param_{name}": np.asarray(value) for name, value in current.components.items()}
        np.savez(path, header=np.array(json.dumps(header)), weights_=current.weights,
                 lower_bounds_=np.asarray(self.lower_bounds_, dtype=np.float64), **arrays)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save` (``allow_pickle=False``), checking what it reads;
        a damaged or foreign file raises :class:`~emlab.exceptions.ModelFileError`."""
        import json

        def bad(what):
            return ModelFileError(f"{path} is not a usable saved emlab MixtureModel: {what}")

        data = open_saved_npz(path, bad)
        with data:
            try:
                header = json.loads(str(data["header"]))
                arrays = {name: np.array(data[name]) for name in data.files if name != "header"}
            except (KeyError, ValueError) as exc:
                raise bad(f"its header or arrays cannot be read ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != cls._FORMAT:
            raise bad(f"it holds format {header.get('format') if isinstance(header, dict) else header!r}, "
                      f"not {cls._FORMAT!r}")
        try:
            family = family_from_json(header["family"])
            settings = dict(header["settings"])
            unknown = sorted(set(settings) - set(cls._SETTINGS))
            if unknown:
                raise ValueError(f"unknown setting(s) {unknown}")
            model = cls(family, random_state=header.get("random_state"), **settings)
            model._check_settings()
            fitted = header["fitted"]
            components = {name[len("param_"):]: value for name, value in arrays.items()
                          if name.startswith("param_")}
            for name, value in list(components.items()) + [("weights_", arrays["weights_"])]:
                if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                    raise ValueError(f"{name} holds NaN or infinite values")
            bounds = arrays["lower_bounds_"]
            if bounds.ndim != 1 or not np.all(np.isfinite(bounds)):
                raise ValueError("lower_bounds_ must be a finite vector")
            model.weights_ = arrays["weights_"]
            model.n_features_in_ = int(fitted["n_features_in_"])
            model._hidden = {}
            for name, value in components.items():
                if name in family.attributes:
                    setattr(model, family.attributes[name], value)
                else:
                    model._hidden[name] = value
            model._fitted_family = family
            current = model._current()  # checks shapes, weights and the family's constraints
            if current.weights.shape != (check_int(model.n_components, "n_components"),):
                raise ValueError(f"weights_ has shape {current.weights.shape}, but n_components is "
                                 f"{model.n_components}")
            model.lower_bounds_ = bounds
            model.lower_bound_ = float(bounds[-1]) if bounds.size else -np.inf
            model.converged_ = bool(fitted["converged_"])
            model.n_iter_ = int(fitted["n_iter_"])
        except (KeyError, TypeError, ValueError, IndexError, ArithmeticError) as exc:
            raise bad(str(exc)) from None
        return model

    def _active_family(self):
        return getattr(self, "_fitted_family", None) or self._family()

    def _current(self):
        """The parameters in the attributes (fitted, or set by the user), checked."""
        check_is_fitted(self, "weights_")
        family = self._active_family()
        values = {name: getattr(self, attr) for name, attr in family.attributes.items()
                  if hasattr(self, attr)}
        values.update(getattr(self, "_hidden", {}))
        weights = np.asarray(self.weights_, dtype=np.float64)
        d = getattr(self, "n_features_in_", None)
        if d is None:
            d = np.shape(next(iter(values.values())))[1]
        checked = family.check_params(values, weights.shape[0], d)
        for name, value in values.items():
            checked.setdefault(name, value)
        return FamilyMixtureParams(weights, checked)

    def _set_fitted(self, result, family, d):
        params = result.params
        self.weights_ = params.weights
        self._hidden = {}
        for name, value in params.components.items():
            if name in family.attributes:
                setattr(self, family.attributes[name], value)
            else:
                self._hidden[name] = value  # bookkeeping such as the categories per feature
        self.lower_bounds_ = result.lower_bounds
        self.lower_bound_ = float(result.lower_bounds[-1])
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.n_features_in_ = d
        self._fitted_family = family

    # ----------------------------------------------------------------------- inference

    def _check_X(self, X):
        check_is_fitted(self, "weights_")
        params = self._current()
        d = getattr(self, "n_features_in_", None)
        return self._active_family().check_X(X, n_features=d, params=params.components), params

    def _log_prob_resp(self, X, y=None):
        X, params = self._check_X(X)
        log_prob = self._active_family().log_prob(X, params.components) + _log_weights(params.weights)
        if y is not None:
            mask_labelled(log_prob, check_labels(y, X.shape[0], params.weights.shape[0]))
        log_norm = np.empty(X.shape[0])
        resp = np.empty_like(log_prob)
        with _config.threads_for(log_prob.size * 16):
            log_normalize(log_prob, _config.CHUNK_ROWS, log_norm, resp)
        return log_norm, resp

    def score_samples(self, X):
        """``log p(x_i)`` of every row, shape (n_samples,)."""
        if is_dask_array(X):
            return map_rows(self.score_samples, X, np.float64)
        return self._log_prob_resp(X)[0]

    def score(self, X, y=None):
        """Mean log-likelihood per row."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X):
        """Posterior probabilities of the components, shape (n_samples, n_components)."""
        if is_dask_array(X):
            return map_rows(self.predict_proba, X, np.float64, self.weights_.shape[0])
        return self._log_prob_resp(X)[1]

    def predict(self, X):
        """The most probable component of every row."""
        if is_dask_array(X):
            return map_rows(self.predict, X, np.int64)
        return self._log_prob_resp(X)[1].argmax(axis=1)

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then predict; labelled rows keep their labels."""
        self.fit(X, y, sample_weight)
        resp = self._log_prob_resp(X, y)[1]
        return resp.argmax(axis=1)

    def _n_parameters(self):
        check_is_fitted(self, "weights_")
        params = self._current()
        return params.weights.shape[0] - 1 + self._active_family().n_parameters(params.components)

    def bic(self, X):
        """``-2 log L + p log n`` (lower is better)."""
        scores = self.score_samples(X)
        return -2.0 * float(np.sum(scores)) + self._n_parameters() * np.log(scores.shape[0])

    def aic(self, X):
        """``-2 log L + 2 p`` (lower is better)."""
        return -2.0 * float(np.sum(self.score_samples(X))) + 2.0 * self._n_parameters()

    def sample(self, n_samples=1):
        """Draw samples; returns ``(X, y)``, grouped by component."""
        check_is_fitted(self, "weights_")
        n_samples = check_int(n_samples, "n_samples", low=1)
        rng = check_random_state(self.random_state)
        params = self._current()
        counts = rng.multinomial(n_samples, params.weights)
        parts = [self._active_family().sample(params.components, k, c, rng)
                 for k, c in enumerate(counts) if c > 0]
        y = np.repeat(np.arange(params.weights.shape[0]), counts)
        return np.vstack(parts), y


# --------------------------------------------------------------------------- families as JSON


def family_to_json(family):
    """A family of :mod:`emlab.families` as JSON: its class name and arguments."""
    from . import families

    name = type(family).__name__
    if getattr(families, name, None) is not type(family):
        raise ValueError(f"save stores the families of emlab.families by name; "
                         f"{name} is not one of them (pickle the model yourself).")
    args = {}
    for key, value in family._args().items():
        if isinstance(value, families.Family):
            value = family_to_json(value)
        elif isinstance(value, (tuple, np.ndarray)):
            value = list(np.asarray(value).tolist())
        args[key] = value
    return {"family": name, "args": args}


def family_from_json(spec):
    """The family :func:`family_to_json` wrote, rebuilt from the classes of :mod:`emlab.families`."""
    from . import families

    if not isinstance(spec, dict) or not isinstance(spec.get("family"), str):
        raise ValueError(f"the family must be {{'family': name, 'args': {{...}}}}; got {spec!r}")
    cls = getattr(families, spec["family"], None)
    if not (isinstance(cls, type) and issubclass(cls, families.Family)) or cls is families.Family:
        raise ValueError(f"unknown family {spec['family']!r}")
    args = {}
    for key, value in dict(spec.get("args", {})).items():
        if isinstance(value, dict) and "family" in value:
            value = family_from_json(value)
        elif isinstance(value, list):
            value = tuple(value)
        args[key] = value
    return cls(**args)
