"""The generic EM driver: the loop, convergence, the monotonicity guard, restarts.

Every estimator in emlab runs its EM through :func:`~emlab.fit_em`, and so can a
user's own latent-variable model: anything with the three methods of
:class:`~emlab.em.EMModel` (see the example in :func:`~emlab.fit_em`).

The driver never looks inside the parameters; it only needs the objective that
the E-step reports (a log-likelihood, or a log-posterior for MAP-EM, per sample),
which by Dempster, Laird and Rubin's theorem cannot decrease from one iteration
to the next. The guard checks that at **every** iteration.
"""

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ._validation import check_int, check_option, check_random_state, check_scalar
from .exceptions import (
    ConvergenceWarning,
    LikelihoodDecreaseError,
    LikelihoodDecreaseWarning,
)

ON_DECREASE = ("warn", "raise", "ignore")


class SufficientStatistics:
    """Sufficient statistics of a chunk of data: the unit of work of chunked EM.

    EM's E-step is a sum over samples: the objective and the expected
    sufficient statistics of a data set are the sums of those of its chunks.
    A model's ``statistics(X_chunk, params)`` returns one of these objects; the
    driver adds them up over the chunks (on a Dask cluster, on the workers) and
    hands the total to ``params_from_statistics``. Online EM mixes them:
    ``(1 - g) * s + g * s_batch`` (see ``partial_fit``).

    Parameters
    ----------
    objective : float
        The chunk's total objective: the (weighted) sum over its samples of
        ``log p(x_i | params)``.
    weight : float
        The chunk's total weight: its number of samples, or the sum of its
        sample weights.
    **arrays : ndarray
        The statistics themselves; ``+`` adds them elementwise, ``c * s``
        scales them (and ``objective`` and ``weight``) by ``c``.

    Notes
    -----
    A subclass whose statistics do not add elementwise (centred second moments,
    which add with a correction for the difference of the means) overrides
    the methods ``_add_arrays(other)`` and ``_scale_arrays(factor)``, which
    return the new dict of arrays.

    Examples
    --------
    >>> import numpy as np
    >>> a = SufficientStatistics(-3.0, 2.0, counts=np.array([1.5, 0.5]))
    >>> b = SufficientStatistics(-1.0, 1.0, counts=np.array([0.0, 1.0]))
    >>> total = a + b
    >>> total.objective, total.weight, total.counts.tolist()
    (-4.0, 3.0, [1.5, 1.5])
    >>> (0.5 * total).counts.tolist()
    [0.75, 0.75]
    """

    __slots__ = ("objective", "weight", "arrays")

    def __init__(self, objective, weight, **arrays):
        self.objective = float(objective)
        self.weight = float(weight)
        self.arrays = arrays

    def __getattr__(self, name):
        try:
            return object.__getattribute__(self, "arrays")[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no statistic {name!r}; it holds "
                                 f"{sorted(self.arrays)}.") from None

    def _new(self, objective, weight, arrays):
        out = object.__new__(type(self))
        out.objective, out.weight, out.arrays = float(objective), float(weight), arrays
        return out

    def _add_arrays(self, other):
        return {name: value + other.arrays[name] for name, value in self.arrays.items()}

    def _scale_arrays(self, factor):
        return {name: factor * value for name, value in self.arrays.items()}

    def __add__(self, other):
        if isinstance(other, (int, float)) and other == 0:  # so that sum() works
            return self
        if not isinstance(other, SufficientStatistics) or set(other.arrays) != set(self.arrays):
            return NotImplemented
        return self._new(self.objective + other.objective, self.weight + other.weight,
                         self._add_arrays(other))

    __radd__ = __add__

    def __mul__(self, factor):
        factor = float(factor)
        if not np.isfinite(factor) or factor < 0:
            raise ValueError(f"statistics can only be scaled by a finite factor >= 0; got {factor}.")
        return self._new(factor * self.objective, factor * self.weight, self._scale_arrays(factor))

    __rmul__ = __mul__

    def __repr__(self):
        shapes = ", ".join(f"{name}{np.shape(value)}" for name, value in self.arrays.items())
        return (f"{type(self).__name__}(objective={self.objective:.6g}, weight={self.weight:.6g}, "
                f"{shapes})")


class ChunkedData:
    """Data in chunks that the driver never gathers: what ``fit`` makes of a Dask array.

    Subclasses implement :meth:`map_reduce`. ``n_samples`` and ``n_features``
    are known without a pass over the data.
    """

    n_samples: int
    n_features: int
    n_chunks: int

    def map_reduce(self, fn, params_list):
        """``[sum over chunks of fn(chunk, params) for params in params_list]``, in one pass.

        ``fn(X_chunk, params, **extras)`` returns a :class:`SufficientStatistics`;
        ``extras`` are the chunk's slices of per-row arrays (``sample_weight``)
        or per-chunk values (``lengths`` of the sequences in it). The sums are
        taken in a fixed order, so results do not depend on scheduling.
        """
        raise NotImplementedError

    def sample_rows(self, size, rng):
        """``min(size, n_samples)`` rows drawn uniformly without replacement (ndarray)."""
        raise NotImplementedError


def tree_sum(items):
    """Pairwise sum in a fixed order: ((a + b) + (c + d)) + ..."""
    items = list(items)
    if not items:
        raise ValueError("nothing to sum.")
    while len(items) > 1:
        items = [items[i] + items[i + 1] if i + 1 < len(items) else items[i]
                 for i in range(0, len(items), 2)]
    return items[0]


class ChunkList(ChunkedData):
    """In-memory chunks (a list of arrays, and optional per-chunk extras), summed in order.

    Mostly a reference for the Dask route: the same protocol, no cluster.
    """

    def __init__(self, chunks, extras=None):
        self.chunks = [np.ascontiguousarray(c, dtype=np.float64) for c in chunks]
        self.extras = extras if extras is not None else [{} for _ in self.chunks]
        self.n_chunks = len(self.chunks)
        self.n_samples = sum(c.shape[0] for c in self.chunks)
        self.n_features = self.chunks[0].shape[1]

    def map_reduce(self, fn, params_list):
        return [tree_sum(fn(c, p, **e) for c, e in zip(self.chunks, self.extras))
                for p in params_list]

    def sample_rows(self, size, rng):
        size = min(size, self.n_samples)
        rows = np.sort(rng.choice(self.n_samples, size, replace=False))
        return np.concatenate(self.chunks)[rows]


class EMModel(Protocol):
    """What :func:`~emlab.fit_em` needs from a latent-variable model.

    ``init_params(X, rng)`` returns starting parameters (any object).
    ``e_step(X, params)`` returns ``(objective, expectations)``: the mean
    log-likelihood of X under ``params`` and whatever the M-step needs
    (responsibilities, sufficient statistics, ...).
    ``m_step(X, expectations, params)`` returns the next parameters.

    **The sufficient-statistics protocol.** Instead of (or beside) ``e_step``
    and ``m_step``, a model may implement

    * ``statistics(X_chunk, params)``, returning a
      :class:`SufficientStatistics`: the chunk's total log-likelihood
      (``objective``), its number of samples or total weight (``weight``) and
      its expected sufficient statistics, which add over chunks;
    * ``params_from_statistics(stats, params)``: the M-step from the sum;
    * optionally ``log_prior(params)`` (MAP-EM; added to the summed
      objective before dividing by the weight) or ``objective(stats,
      params)`` (the objective per sample, replacing that rule).

    The driver then computes each E-step as the sum of the chunks'
    statistics, which is exactly the E-step of the whole data: on a
    :class:`ChunkedData` (a Dask array's chunks, on the workers), or in one
    piece for an array. Such a model is distributed (``fit`` with a Dask
    array) and online (stepwise EM mixes the statistics) with no more code.
    ``statistics`` may run in another process: keep large arrays out of the
    model object. ``init_params`` then receives the :class:`ChunkedData`
    (its ``sample_rows`` and ``map_reduce`` never gather X).

    Optionally, after ``m_step`` (or ``params_from_statistics``) the model may
    set an attribute ``m_step_slack`` (a float >= 0, per sample): how far that
    M-step may fall short of maximising Q. Exact EM has slack 0; a
    regularised M-step (such as a Gaussian mixture's ``reg_covar``) has a
    computable one. By the identity ``l(t') - l(t) = Q(t'|t) - Q(t|t) + KL >=
    -slack``, the objective may then fall by up to the slack, and the guard
    allows exactly that much.
    """

    def init_params(self, X, rng): ...

    def e_step(self, X, params): ...

    def m_step(self, X, expectations, params): ...


@dataclass
class EMResult:
    """The outcome of one EM run.

    Attributes
    ----------
    params : object
        Parameters after the last M-step.
    lower_bounds : ndarray of shape (n_iter,)
        ``lower_bounds[t]`` is the objective of the parameters reached after
        ``t`` M-steps (``lower_bounds[0]``: the starting parameters), as
        scikit-learn's ``lower_bounds_``.
    converged : bool
        Whether the last change was below ``tol``.
    n_iter : int
        Number of E/M iterations run.
    decreases : list of (int, float)
        Iterations (1-based) at which the objective fell by more than round-off,
        and by how much.
    """

    params: Any
    lower_bounds: np.ndarray
    converged: bool
    n_iter: int
    decreases: list = field(default_factory=list)


def check_em_options(max_iter, tol, on_decrease):
    max_iter = check_int(max_iter, "max_iter", low=1)
    tol = check_scalar(tol, "tol", low=0.0)
    check_option(on_decrease, "on_decrease", ON_DECREASE)
    return max_iter, tol


class _Run:
    """One EM run, advanced one E-step at a time by whoever computes the E-steps.

    The loop is driven from outside, so that several runs (restarts) can share
    one pass over chunked data per iteration; :func:`run_em` drives one run.
    """

    def __init__(self, model, params, *, max_iter, tol, on_decrease, decrease_rtol, verbose,
                 prev=None, verbose_interval=1):
        self.model = model
        self.params = params
        self.max_iter, self.tol = max_iter, tol
        self.on_decrease, self.decrease_rtol, self.verbose = on_decrease, decrease_rtol, verbose
        self.verbose_interval = verbose_interval
        self.started = time.perf_counter()
        self.lower_bounds = []
        self.decreases = []
        # A run that continues an earlier one (a warm start) takes its convergence test on
        # from that run's last objective; its first step is not guarded (see run_em).
        self.continued = prev is not None and bool(np.isfinite(prev))
        self.prev = float(prev) if self.continued else -np.inf
        self.slack = 0.0
        self.converged = False
        self.n_iter = 0
        self.done = False

    def advance(self, objective, expectations, data):
        """Take the E-step's output for ``self.params``, check it, and run the M-step."""
        self.n_iter += 1
        n_iter = self.n_iter
        objective = float(objective)
        if np.isnan(objective):
            raise FloatingPointError(
                f"the EM objective is NaN at iteration {n_iter}; the model's E-step "
                f"produced an invalid log-likelihood."
            )
        change = objective - self.prev
        fell = change < -(self.decrease_rtol * max(1.0, abs(objective)) + self.slack)
        if n_iter == 1 and self.continued:
            fell = False  # the data may have changed since the earlier run: not an EM step
        if fell:
            self.decreases.append((n_iter, -change))
            msg = (
                f"EM objective decreased at iteration {n_iter}: {self.prev:.17g} -> "
                f"{objective:.17g} (by {-change:.3g}), which exact EM cannot do."
            )
            if self.on_decrease == "raise":
                raise LikelihoodDecreaseError(msg)
            if self.on_decrease == "warn" and len(self.decreases) == 1:
                msg += " Later decreases in this run are not reported again."
                warnings.warn(msg, LikelihoodDecreaseWarning, stacklevel=4)
        self.params = _m_step(self.model, data, expectations, self.params)
        self.slack = float(getattr(self.model, "m_step_slack", 0.0))
        self.lower_bounds.append(objective)
        if self.verbose >= 2 and (n_iter == 1 or n_iter % self.verbose_interval == 0):
            shown = "" if np.isinf(self.prev) else f"{change:+.3e}"
            print(f"  iteration {n_iter:4d}  objective {objective:+.10f}  change {shown:>11s}  "
                  f"{time.perf_counter() - self.started:8.2f} s", flush=True)
        # A decrease beyond round-off is reported above and never read as convergence.
        if not fell and abs(change) < self.tol:
            self.converged = True
        self.prev = objective
        self.done = self.converged or n_iter >= self.max_iter

    def result(self):
        if self.verbose >= 1:
            state = "converged" if self.converged else "did not converge"
            print(f"EM {state} after {self.n_iter} iteration(s): objective "
                  f"{self.lower_bounds[-1]:+.10f}, {time.perf_counter() - self.started:.2f} s",
                  flush=True)
        return EMResult(self.params, np.asarray(self.lower_bounds), self.converged, self.n_iter,
                        self.decreases)


def uses_statistics(model):
    """Whether ``model`` follows the sufficient-statistics protocol (see :class:`EMModel`)."""
    return hasattr(model, "statistics") and hasattr(model, "params_from_statistics")


def _objective(model, stats, params):
    """The objective per sample from summed statistics: (total + log-prior) / total weight."""
    if hasattr(model, "objective"):
        return model.objective(stats, params)
    log_prior = model.log_prior(params) if hasattr(model, "log_prior") else 0.0
    if stats.weight <= 0:
        raise ValueError("the data carry no weight: every sample_weight is zero.")
    return (stats.objective + log_prior) / stats.weight


def _e_steps(model, data, params_list):
    """E-steps of several parameter sets: one pass over chunked data for all of them."""
    if isinstance(data, ChunkedData):
        stats_list = data.map_reduce(model.statistics, params_list)
        return [(_objective(model, s, p), s) for s, p in zip(stats_list, params_list)]
    if hasattr(model, "e_step"):
        return [model.e_step(data, p) for p in params_list]
    out = []
    for p in params_list:
        stats = model.statistics(data, p)
        out.append((_objective(model, stats, p), stats))
    return out


def _as_chunked(model, X):
    """A Dask array becomes checked :class:`ChunkedData` (for a model with the protocol)."""
    from ._dask import DaskData, is_dask_array

    if not is_dask_array(X):
        return X
    if not uses_statistics(model):
        raise ValueError("X is a Dask array, which needs a model with the sufficient-statistics "
                         "protocol (statistics and params_from_statistics; see EMModel).")
    return DaskData(X)


def _m_step(model, data, expectations, params):
    if isinstance(expectations, SufficientStatistics) and uses_statistics(model):
        return model.params_from_statistics(expectations, params)
    return model.m_step(data, expectations, params)


FLOAT32_DECREASE_RTOL = 1e-6  # float32 kernels: log-densities carry float32's rounding (6e-8)


def decrease_rtol_for(X, default=1e-10):
    """The round-off a fall of the objective may be put down to, for data ``X``.

    The fused mixture kernels fit float32 X in float32 arithmetic, so their
    objective carries float32's rounding: measured, falls of 4e-9 of the
    objective near convergence. They get :data:`FLOAT32_DECREASE_RTOL`;
    float64 data gets ``default``.
    """
    dtype = getattr(X, "dtype", None)
    return FLOAT32_DECREASE_RTOL if dtype == np.float32 else default


def run_em(model, X, params, *, max_iter=100, tol=1e-3, on_decrease="warn", decrease_rtol=1e-10,
           verbose=0, prev=None, verbose_interval=1):
    """Iterate E- and M-steps from ``params`` until the objective changes by less than ``tol``.

    Parameters
    ----------
    model : EMModel
    X : array-like or ChunkedData
        Passed unchanged to the model's steps; a :class:`ChunkedData` (data in
        chunks, on a Dask cluster for instance) is summed chunk by chunk
        through the model's ``statistics``.
    params : object
        Starting parameters.
    max_iter : int, default=100
    tol : float, default=1e-3
        Convergence threshold on the absolute change of the objective (per
        sample) between two iterations.
    on_decrease : {'warn', 'raise', 'ignore'}, default='warn'
        What to do when the objective falls by more than
        ``decrease_rtol * max(1, |objective|)`` plus the previous M-step's
        ``m_step_slack`` (see :class:`~emlab.em.EMModel`): issue a
        :class:`~emlab.exceptions.LikelihoodDecreaseWarning`, raise a
        :class:`~emlab.exceptions.LikelihoodDecreaseError`, or only record it in
        ``EMResult.decreases``. A decrease is never taken as convergence.
    decrease_rtol : float, default=1e-10
        Relative size of a fall still attributed to round-off.
    verbose : int, default=0
        0: silent; 1: one line at the end of the run; 2: also one line per
        iteration (objective, change, elapsed seconds). Lines are printed, so
        they read the same in a terminal and in a notebook.
    prev : float, optional
        The last objective of an earlier run that this one continues (a warm
        start from its ``params``: its ``EMResult.lower_bounds[-1]``). The
        first iteration's change is then measured from it, so a run of a few
        iterations at a time can converge across runs, as scikit-learn's
        ``warm_start``. That first change is only a convergence test: the
        data may differ from the earlier run's, so it is not checked for a
        decrease (later ones are). Default: a fresh run, whose first
        iteration never converges.
    verbose_interval : int, default=1
        With ``verbose >= 2``, the iteration lines are printed for the first
        iteration and every ``verbose_interval``-th (scikit-learn's parameter;
        its default is 10).

    Returns
    -------
    EMResult
    """
    max_iter, tol = check_em_options(max_iter, tol, on_decrease)
    X = _as_chunked(model, X)
    run = _Run(model, params, max_iter=max_iter, tol=tol, on_decrease=on_decrease,
               decrease_rtol=decrease_rtol, verbose=verbose, prev=prev,
               verbose_interval=check_int(verbose_interval, "verbose_interval", low=1))
    while not run.done:
        objective, expectations = _e_steps(model, X, [run.params])[0]
        run.advance(objective, expectations, X)
    return run.result()


def fit_em(model, X, *, n_init=1, max_iter=100, tol=1e-3, random_state=None,
           on_decrease="warn", decrease_rtol=1e-10, init=None, verbose=0, prev=None,
           verbose_interval=1):
    """Fit ``model`` by EM from ``n_init`` starts and keep the best.

    Parameters
    ----------
    model : EMModel
    X : array-like, dask.array.Array or ChunkedData
        Chunked data (a Dask array is checked and persisted, then summed chunk
        by chunk on its workers) need a model with the statistics protocol
        (see :class:`EMModel`); their ``n_init`` runs then advance in
        lockstep, sharing one pass over the chunks per iteration.
    n_init : int, default=1
        Number of starts; the run with the highest final objective is kept.
    max_iter, tol, on_decrease, decrease_rtol, verbose, verbose_interval
        As in :func:`~emlab.run_em`.
    random_state : None, int or numpy.random.Generator
        Seeds ``model.init_params``.
    init : object, optional
        Starting parameters for the first run instead of ``model.init_params``.
    prev : float, optional
        For the run from ``init``: the last objective of the earlier run it
        continues, as in :func:`~emlab.run_em`.

    Returns
    -------
    EMResult
        The best run. A :class:`~emlab.exceptions.ConvergenceWarning` is issued
        if it did not converge.

    Examples
    --------
    A mixture of two biased coins, each sample being the number of heads in 10
    tosses of one coin picked at random:

    >>> import numpy as np
    >>> from scipy.stats import binom
    >>> class Coins:
    ...     def init_params(self, X, rng):
    ...         return np.array([0.5, 0.5]), rng.uniform(0.2, 0.8, size=2)
    ...     def e_step(self, X, params):
    ...         w, p = params
    ...         joint = w * binom.pmf(X[:, None], 10, p)
    ...         lik = joint.sum(axis=1)
    ...         return np.log(lik).mean(), joint / lik[:, None]
    ...     def m_step(self, X, resp, params):
    ...         nk = resp.sum(axis=0)
    ...         return nk / len(X), (resp * X[:, None]).sum(axis=0) / (10 * nk)
    >>> X = np.array([5, 9, 8, 4, 7])
    >>> result = fit_em(Coins(), X, random_state=0, tol=1e-10, max_iter=1000)
    >>> bool(np.all(np.diff(result.lower_bounds) >= -1e-12))
    True
    """
    n_init = check_int(n_init, "n_init", low=1)
    check_int(verbose, "verbose", low=0)
    max_iter, tol = check_em_options(max_iter, tol, on_decrease)
    rng = check_random_state(random_state)
    X = _as_chunked(model, X)
    options = dict(max_iter=max_iter, tol=tol, on_decrease=on_decrease,
                   decrease_rtol=decrease_rtol, verbose=verbose,
                   verbose_interval=check_int(verbose_interval, "verbose_interval", low=1))
    if isinstance(X, ChunkedData) and n_init > 1:
        # restarts in lockstep: one pass over the chunks per iteration serves all of them
        runs = [_Run(model, init, prev=prev, **options) if (init is not None and i == 0)
                else _Run(model, model.init_params(X, rng), **options) for i in range(n_init)]
        while not all(run.done for run in runs):
            active = [run for run in runs if not run.done]
            stats_list = X.map_reduce(model.statistics, [run.params for run in active])
            for run, stats in zip(active, stats_list):
                if hasattr(model, "iteration"):  # the model's messages name this run's iteration
                    model.iteration = run.n_iter
                run.advance(_objective(model, stats, run.params), stats, X)
        results = [run.result() for run in runs]
    else:
        results = []
        for i in range(n_init):
            if verbose and n_init > 1:
                print(f"start {i + 1} of {n_init}", flush=True)
            if init is not None and i == 0:
                results.append(run_em(model, X, init, prev=prev, **options))
            else:
                results.append(run_em(model, X, model.init_params(X, rng), **options))
    best = None
    for result in results:
        if best is None or result.lower_bounds[-1] > best.lower_bounds[-1]:
            best = result
    if not best.converged:
        last = np.diff(best.lower_bounds[-2:])
        if not last.size and init is not None and best is results[0] and prev is not None:
            last = best.lower_bounds[-1:] - prev  # one iteration, continuing an earlier run
        change = f"{last[0]:.3g}" if last.size and np.isfinite(last[0]) else "n/a"
        warnings.warn(
            f"EM did not converge in max_iter={max_iter} iterations (last change "
            f"{change}, tol={tol}); raise max_iter or tol, or check the data's scaling.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return best
