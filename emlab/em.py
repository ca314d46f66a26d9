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


class EMModel(Protocol):
    """What :func:`~emlab.fit_em` needs from a latent-variable model.

    ``init_params(X, rng)`` returns starting parameters (any object).
    ``e_step(X, params)`` returns ``(objective, expectations)``: the mean
    log-likelihood of X under ``params`` and whatever the M-step needs
    (responsibilities, sufficient statistics, ...).
    ``m_step(X, expectations, params)`` returns the next parameters.

    Optionally, after ``m_step`` the model may set an attribute
    ``m_step_slack`` (a float >= 0, per sample): how far that M-step may fall
    short of maximising Q. Exact EM has slack 0; a regularised M-step (such as
    a Gaussian mixture's ``reg_covar``) has a computable one. By the identity
    ``l(t') - l(t) = Q(t'|t) - Q(t|t) + KL >= -slack``, the objective may then
    fall by up to the slack, and the guard allows exactly that much.
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


def run_em(model, X, params, *, max_iter=100, tol=1e-3, on_decrease="warn", decrease_rtol=1e-10,
           verbose=0):
    """Iterate E- and M-steps from ``params`` until the objective changes by less than ``tol``.

    Parameters
    ----------
    model : EMModel
    X : array-like
        Passed unchanged to the model's steps.
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

    Returns
    -------
    EMResult
    """
    max_iter, tol = check_em_options(max_iter, tol, on_decrease)
    started = time.perf_counter()
    lower_bounds = []
    decreases = []
    prev = -np.inf
    slack = 0.0
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        objective, expectations = model.e_step(X, params)
        objective = float(objective)
        if np.isnan(objective):
            raise FloatingPointError(
                f"the EM objective is NaN at iteration {n_iter}; the model's E-step "
                f"produced an invalid log-likelihood."
            )
        change = objective - prev
        fell = change < -(decrease_rtol * max(1.0, abs(objective)) + slack)
        if fell:
            decreases.append((n_iter, -change))
            msg = (
                f"EM objective decreased at iteration {n_iter}: {prev:.17g} -> {objective:.17g} "
                f"(by {-change:.3g}), which exact EM cannot do."
            )
            if on_decrease == "raise":
                raise LikelihoodDecreaseError(msg)
            if on_decrease == "warn" and len(decreases) == 1:
                msg += " Later decreases in this run are not reported again."
                warnings.warn(msg, LikelihoodDecreaseWarning, stacklevel=3)
        params = model.m_step(X, expectations, params)
        slack = float(getattr(model, "m_step_slack", 0.0))
        lower_bounds.append(objective)
        if verbose >= 2:
            shown = "" if n_iter == 1 else f"{change:+.3e}"
            print(f"  iteration {n_iter:4d}  objective {objective:+.10f}  change {shown:>11s}  "
                  f"{time.perf_counter() - started:8.2f} s", flush=True)
        # A decrease beyond round-off is reported above and never read as convergence.
        if not fell and abs(change) < tol:
            converged = True
            break
        prev = objective
    if verbose >= 1:
        state = "converged" if converged else "did not converge"
        print(f"EM {state} after {n_iter} iteration(s): objective {lower_bounds[-1]:+.10f}, "
              f"{time.perf_counter() - started:.2f} s", flush=True)
    return EMResult(params, np.asarray(lower_bounds), converged, n_iter, decreases)


def fit_em(model, X, *, n_init=1, max_iter=100, tol=1e-3, random_state=None,
           on_decrease="warn", decrease_rtol=1e-10, init=None, verbose=0):
    """Fit ``model`` by EM from ``n_init`` starts and keep the best.

    Parameters
    ----------
    model : EMModel
    X : array-like
    n_init : int, default=1
        Number of starts; the run with the highest final objective is kept.
    max_iter, tol, on_decrease, decrease_rtol, verbose
        As in :func:`~emlab.run_em`.
    random_state : None, int or numpy.random.Generator
        Seeds ``model.init_params``.
    init : object, optional
        Starting parameters for the first run instead of ``model.init_params``.

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
    check_em_options(max_iter, tol, on_decrease)
    rng = check_random_state(random_state)
    best = None
    for i in range(n_init):
        if verbose and n_init > 1:
            print(f"start {i + 1} of {n_init}", flush=True)
        params = init if (init is not None and i == 0) else model.init_params(X, rng)
        result = run_em(model, X, params, max_iter=max_iter, tol=tol, on_decrease=on_decrease,
                        decrease_rtol=decrease_rtol, verbose=verbose)
        if best is None or result.lower_bounds[-1] > best.lower_bounds[-1]:
            best = result
    if not best.converged:
        last = np.diff(best.lower_bounds[-2:])
        change = f"{last[0]:.3g}" if last.size else "n/a"
        warnings.warn(
            f"EM did not converge in max_iter={max_iter} iterations (last change "
            f"{change}, tol={tol}); raise max_iter or tol, or check the data's scaling.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return best
