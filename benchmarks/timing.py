"""Seconds per iteration, by differencing two iteration counts, and the trajectory check.

A fit of ``m`` iterations costs ``setup + m * per_iteration + final``, where
``setup`` is validation and initialisation and ``final`` the last E-step that
labels the data. Timing a fit of ``m1`` and one of ``m2`` iterations (``tol=0``,
so neither stops early) and taking ``(t(m2) - t(m1)) / (m2 - m1)`` cancels
both. Each repeat times every library once at each count, libraries
interleaved (and their order alternated), so that a busy spell of a shared
machine falls on both; the median over the repeats is reported.
"""

import gc
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class PerIteration:
    """Timing of one library on one case.

    Attributes
    ----------
    median : float
        Median seconds per iteration over the repeats (NaN if none could be taken).
    best : float
        The smallest positive one: on a busy machine, the closest to an undisturbed
        run (a sample is negative when the fit of ``m1`` iterations was the disturbed one).
    samples : list of float
        Seconds per iteration of each repeat.
    fit_seconds : dict
        ``{m: [seconds of each fit of m iterations]}``.
    n_iter : dict
        ``{m: iterations actually run}`` (from the first repeat).
    fit : benchmarks.peers.Fit
        The outcome of the first fit of ``m2`` iterations (its trajectory is compared).
    """

    median: float = float("nan")
    best: float = float("nan")
    samples: list = field(default_factory=list)
    fit_seconds: dict = field(default_factory=dict)
    n_iter: dict = field(default_factory=dict)
    fit: object = None


def timed_fit(library, case, X, start, max_iter):
    """``(seconds, Fit)`` of one fit, after a garbage collection."""
    gc.collect()
    begin = time.perf_counter()
    outcome = library.fit(case, X, start, max_iter)
    return time.perf_counter() - begin, outcome


def per_iteration(libraries, case, X, start, iterations, repeats):
    """Seconds per iteration of every library, by differencing two iteration counts.

    Parameters
    ----------
    libraries : list of adapters (see :mod:`benchmarks.peers`)
    case : benchmarks.cases.Case
    X : ndarray of shape (n_samples, n_features)
    start : benchmarks.data.Start
    iterations : (int, int)
        The two counts ``m1 < m2``.
    repeats : int

    Returns
    -------
    dict
        ``{library name: PerIteration}``. When a library stopped before
        ``max_iter`` (k-means stops once no label changes) the difference is
        divided by the iterations it actually ran; if those are equal the
        sample is NaN.
    """
    m1, m2 = iterations
    results = {lib.name: PerIteration(fit_seconds={m1: [], m2: []}) for lib in libraries}
    for repeat in range(repeats):
        order = libraries if repeat % 2 == 0 else libraries[::-1]
        for library in order:
            t1, fit1 = timed_fit(library, case, X, start, m1)
            t2, fit2 = timed_fit(library, case, X, start, m2)
            record_pair(results[library.name], (m1, m2), (t1, fit1), (t2, fit2))
    return summarise_samples(results)


def record_pair(result, iterations, first, second):
    """Add one repeat's two timed fits, ``(seconds, Fit)`` each, to a :class:`PerIteration`."""
    (m1, m2), (t1, fit1), (t2, fit2) = iterations, first, second
    result.fit_seconds[m1].append(t1)
    result.fit_seconds[m2].append(t2)
    if result.fit is None:
        result.fit = fit2
        result.n_iter = {m1: fit1.n_iter, m2: fit2.n_iter}
    ran = fit2.n_iter - fit1.n_iter
    result.samples.append((t2 - t1) / ran if ran > 0 else float("nan"))


def summarise_samples(results):
    """Fill each :class:`PerIteration`'s median and best (smallest positive) sample."""
    for result in results.values():
        finite = [s for s in result.samples if np.isfinite(s)]
        result.median = float(np.median(finite)) if finite else float("nan")
        positive = [s for s in finite if s > 0]
        result.best = float(np.min(positive)) if positive else float("nan")
    return results


def trajectory_rel_diff(reference, other):
    """Largest relative difference between two trajectories of the same length.

    ``max_t |a_t - b_t| / max(1, |b_t|)``: relative for objectives away from
    zero, absolute near it. Infinite when the lengths differ (one library ran
    a different number of iterations, which is itself a mismatch).
    """
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(other, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        return float("inf")
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def parameters_rel_diff(reference, other):
    """Largest relative difference between two fits' parameters (the ``bgmm`` check).

    For each array (``weights_``, ``means_``, ``covariances_``),
    ``max |a - b| / max |b|``: relative to the array's largest entry, so that
    an entry near zero (a mean coordinate, a negligible weight) does not blow
    it up; the largest over the arrays. Infinite when either is missing or the
    arrays or their shapes differ.

    Used for the variational mixture, whose two bounds cannot be compared:
    scikit-learn's ``lower_bound_`` drops terms it treats as constant and is a
    total over the samples, emlab's is the exact ELBO per sample.
    """
    if not reference or not other or set(reference) != set(other):
        return float("inf")
    worst = 0.0
    for name, a in reference.items():
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(other[name], dtype=np.float64)
        if a.shape != b.shape or a.size == 0:
            return float("inf")
        scale = np.max(np.abs(b))
        diff = np.max(np.abs(a - b))
        worst = max(worst, float(diff / scale) if scale > 0 else float(diff))
    return worst if np.isfinite(worst) else float("inf")
