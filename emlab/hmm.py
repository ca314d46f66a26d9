"""Hidden Markov models fitted by Baum-Welch, which is EM run through :func:`~emlab.fit_em`.

The three estimators share one base, :class:`BaseHMM`, whose Baum-Welch loop is
the generic EM driver with its monotonicity guard. The base never branches on
the emission model: each subclass supplies the log-emissions, the emission
statistics and M-step, its initialisation, sampling, parameter count and input
checks.

* E-step: the emission log-probabilities (n, K), then one forward-backward pass
  over all sequences (:func:`emlab._kernels.hmm.forward_backward`, scaled
  probabilities with a log-space fallback, parallel over sequences) giving the
  log-likelihood, the state posteriors ``gamma`` and the expected transition
  counts summed over time; from ``gamma``, the emission model's sufficient
  statistics. All of it is a :class:`HMMStatistics`, which adds over chunks
  of whole sequences: that is how a Dask array or a list of sequences is
  fitted without being gathered (the sufficient-statistics protocol of
  :mod:`emlab.em`).
* M-step: ``startprob`` and every row of ``transmat`` are the maximisers of
  ``sum_j (count_j + prior_j - 1) log p_j`` on their support (Lagrange
  multipliers; the book's chapter "Baum-Welch is EM"); the emission parameters
  are a weighted maximum-likelihood fit with weights ``gamma``: for Gaussian
  emissions exactly the M-step of a Gaussian mixture
  (``emlab.mixture.params_from_statistics``).

The objective EM monitors is the log-likelihood plus the log-density of the
Dirichlet (and, for :class:`PoissonHMM`, gamma) priors without their
normalising constants, per observation: with priors of 1 (the defaults) it is
the log-likelihood, as hmmlearn's ``monitor_.history`` (which is the total).

hmmlearn compatibility: code written for hmmlearn 0.3.3's ``GaussianHMM``,
``CategoricalHMM`` and ``PoissonHMM`` runs unchanged. Its positional argument
order, ``n_iter`` (stored as ``max_iter``), ``implementation``, ``verbose=True``,
``min_covar``, the Gaussian priors ``means_prior, means_weight, covars_prior,
covars_weight`` (hmmlearn's MAP M-step, with the prior in the objective),
``covars_`` (full matrices), ``get_stationary_distribution()`` and
``monitor_`` are accepted. From the same start and with the same priors
(``reg_covar=0``) the fits equal hmmlearn's to round-off. Differences by
design, documented where they arise: the defaults (``max_iter=100``,
``tol=1e-3`` per observation rather than 1e-2 on the total,
``covars_prior=0`` with ``reg_covar=1e-6`` rather than ``covars_prior=1e-2``),
the monotonicity guard and named errors, ``monitor_.converged`` (not True
merely because ``n_iter`` ran out), the history including the log-prior, the
verbose lines (stdout), and the initialisation (k-means and uniform
``startprob_`` / ``transmat_``; hmmlearn draws them from a Dirichlet).
"""

import functools
import inspect
import numbers
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, xlogy

from . import _compile, _config, mixture
from ._base import ParamsMixin
from ._covariance import MODELS
from ._dask import DaskData, is_dask_array
from ._kernels.hmm import (SPLIT_MIN_ROWS, categorical_emission_counts, categorical_log_emission,
                           emission_tables, forward_backward, forward_backward_serial,
                           sample_states, scratch_size, viterbi)
from ._validation import (
    check_array,
    check_int,
    check_labels,
    check_option,
    check_random_state,
    check_scalar,
    check_scale,
)
from .em import ChunkedData, SufficientStatistics, check_em_options, fit_em, tree_sum
from .exceptions import DegenerateCovarianceError, NotFittedError
from .families import Poisson
from .families._base import sums_statistics
from .kmeans import KMeans, kmeans_plusplus, lloyd_chunked

ALGORITHMS = ("viterbi", "map")
COVARIANCE_TYPES = tuple(MODELS)
#: hmmlearn's ``implementation`` values; both run emlab's one forward-backward (see BaseHMM)
IMPLEMENTATIONS = ("log", "scaling")
#: the default of ``max_iter``: ``n_iter`` (hmmlearn's name) may replace it
DEFAULT_MAX_ITER = 100


class ConvergenceMonitor:
    """What ``fit`` leaves in ``monitor_``: hmmlearn's ``ConvergenceMonitor``'s fields.

    Attributes
    ----------
    history : collections.deque
        The objective of every iteration as a **total** (``lower_bounds_ *
        n_samples``): the log-likelihood of the parameters before each M-step,
        plus the log-prior when a prior is not flat. hmmlearn 0.3.3 keeps every
        iteration too (an unbounded deque) but without the log-prior.
    iter : int
        Iterations run (``n_iter_``).
    converged : bool
        Whether the change of the objective fell below ``tol`` (``converged_``).
        hmmlearn also reports True when ``n_iter`` iterations ran out; emlab does
        not: a run stopped by the iteration limit did not converge.
    tol : float
        The estimator's ``tol``: on the objective **per observation** (hmmlearn's
        is on the total).
    n_iter : int
        The iteration limit used (``max_iter``, or ``n_iter`` if given).
    verbose : bool
        Whether per-iteration lines were printed.

    It is built by fit from the run's record; unlike hmmlearn's, replacing it
    before fit does not change how fit decides convergence.
    """

    def __init__(self, tol, n_iter, verbose, history=(), iter=0, converged=False):
        self.tol = tol
        self.n_iter = n_iter
        self.verbose = verbose
        self.history = deque(float(v) for v in history)
        self.iter = int(iter)
        self._converged = bool(converged)

    @property
    def converged(self):
        return self._converged

    def __repr__(self):
        return (f"ConvergenceMonitor(tol={self.tol!r}, n_iter={self.n_iter!r}, "
                f"verbose={self.verbose!r}, iter={self.iter}, converged={self.converged}, "
                f"history={list(self.history)!r})")


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class HMMParams:
    """Parameters of a hidden Markov model.

    ``emission`` is whatever the emission model uses (a
    :class:`~emlab.MixtureParams` for Gaussian emissions, an array otherwise);
    the Baum-Welch loop never looks inside it.
    """

    startprob: np.ndarray
    transmat: np.ndarray
    emission: object


@dataclass(frozen=True)
class Sequences:
    """Observations of many sequences: X (n, d) and ``bounds`` (n_seq + 1,) row offsets."""

    X: np.ndarray
    bounds: np.ndarray

    @property
    def n_sequences(self):
        return self.bounds.shape[0] - 1


def check_lengths(lengths, n_samples):
    """Row offsets (n_seq + 1,) from ``lengths``, or a ValueError naming ``lengths``."""
    if lengths is None:
        return np.array([0, n_samples], dtype=np.int64)
    arr = np.asarray(lengths)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"lengths must be a 1-d sequence of positive integers; got shape {arr.shape}.")
    if not (np.issubdtype(arr.dtype, np.integer)
            or (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr))
                and np.all(arr == np.round(arr)))):
        raise ValueError(f"lengths must hold integers; got {arr!r}.")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero(arr <= 0)
    if bad.size:
        raise ValueError(f"lengths must be positive: lengths[{bad[0]}] = {arr[bad[0]]}; every "
                         f"sequence needs at least one row.")
    total = int(arr.sum())
    if total != n_samples:
        raise ValueError(f"lengths sum to {total}, but X has {n_samples} rows; they must be equal.")
    return np.concatenate([[0], np.cumsum(arr)]).astype(np.int64)


def check_probabilities(p, name, shape):
    """A float64 array of ``shape`` whose last axis is a probability vector, or a ValueError."""
    try:
        arr = np.array(p, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of probabilities; got {p!r}.") from None
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}.")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must hold finite non-negative probabilities.")
    sums = arr.sum(axis=-1)
    off = np.flatnonzero(np.abs(np.atleast_1d(sums) - 1.0) > 1e-8)
    if off.size:
        if arr.ndim == 1:
            raise ValueError(f"{name} must sum to 1; it sums to {float(sums):.12g}.")
        raise ValueError(f"every row of {name} must sum to 1; row {off[0]} sums to "
                         f"{np.atleast_1d(sums)[off[0]]:.12g}.")
    return arr / arr.sum(axis=-1, keepdims=True)


def check_prior(prior, name, shape):
    """Dirichlet concentrations >= 1 broadcast to ``shape``, or a ValueError naming ``name``."""
    arr = np.asarray(prior, dtype=np.float64) if not isinstance(prior, (bool, np.bool_)) else None
    if arr is None or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite numbers >= 1; got {prior!r}.")
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(f"{name} must be a scalar or broadcast to shape {shape}; got shape "
                         f"{np.shape(prior)}.") from None
    if np.any(arr < 1):
        raise ValueError(
            f"{name} must be >= 1 (a Dirichlet concentration below 1 has no maximum a "
            f"posteriori estimate: its density is unbounded at the boundary); got {prior!r}."
        )
    return arr


def check_letters(value, name, allowed):
    if not isinstance(value, str) or any(c not in allowed for c in value):
        raise ValueError(f"{name} must be a string of the letters {allowed!r}; got {value!r}.")
    return value


def dirichlet_map(counts, prior, previous):
    """The M-step of a probability vector (or of each row of a matrix).

    Maximises ``sum_j (counts_j + prior_j - 1) log p_j`` over the support of
    ``previous`` (its zeros stay zero): ``p_j`` proportional to ``counts_j +
    prior_j - 1`` there. A row whose weights are all zero (a state that
    received no posterior mass, with no pseudo-counts) keeps ``previous``:
    every probability vector maximises its term.
    """
    if previous.min() > 0:  # full support (the usual case): no masks
        weights = np.maximum(counts + prior - 1.0, 0.0)
        total = weights.sum(axis=-1, keepdims=True)
        if total.min() > 0:
            return weights / total
    weights = np.where(previous > 0, np.maximum(counts + prior - 1.0, 0.0), 0.0)
    total = weights.sum(axis=-1, keepdims=True)
    safe = np.where(total > 0, total, 1.0)
    return np.where(total > 0, weights / safe, previous)


def log_dirichlet(p, prior):
    """``sum_j (prior_j - 1) log p_j`` over the support of ``p`` (the log-density up to a constant)."""
    if np.min(prior) == np.max(prior) == 1.0:  # a flat prior (the default): every term is 0
        return 0.0
    with np.errstate(divide="ignore"):
        return float(np.sum(np.where(p > 0, (prior - 1.0) * np.log(np.where(p > 0, p, 1.0)), 0.0)))


class Workspace:
    """Arrays :func:`posteriors` reuses from one Baum-Welch iteration to the next.

    A fresh (n, K) array costs page faults on first touch (tens of milliseconds
    per iteration at n = 1e6); reusing them keeps an iteration's memory traffic
    to the data themselves.
    """

    def __init__(self):
        self.gamma = None
        self.scratch = None
        self.scratch_states = 0
        self.codes = {}

    def posterior_array(self, n, k):
        """``gamma`` (n, K), a view of an array kept for the next call (batches of sequences
        of different sizes share it)."""
        if self.gamma is None or self.gamma.shape[1] != k or self.gamma.shape[0] < n:
            self.gamma = np.empty((n, k))
        return self.gamma[:n]

    def scratch_array(self, n, k):
        """The kernel's scratch for n rows of K states, kept likewise; zero when new (a
        new K gets a new one). A categorical HMM's fit, which reads per-symbol tables
        instead (``emission_tables``), never allocates it."""
        size = scratch_size(n, k)
        if self.scratch is None or self.scratch_states != k or self.scratch.shape[0] < size:
            self.scratch = np.zeros(size)
            self.scratch_states = k
        return self.scratch[:size]

    def symbols(self, X):
        """The symbols of X (n, 1) as uint32, converted once and kept: Baum-Welch reads the
        same rows at every iteration (the entry holds X, so its memory, whose address is
        the key, is not reused while the workspace lives)."""
        key = (X.__array_interface__["data"][0], X.shape[0], X.strides[0])
        entry = self.codes.get(key)
        if entry is None:
            entry = self.codes[key] = (X, X[:, 0].astype(np.uint32))
        return entry[1]


#: Rows of the batches of whole sequences the Baum-Welch E-step walks many sequences in: the
#: (rows, K) arrays of the E-step (log-emissions, posteriors, scratch) are those of one batch,
#: not of all the data (a batch holds more rows only when one sequence is longer).
SEQUENCE_BATCH_ROWS = 2**16


def sequence_batches(bounds, batch_rows=SEQUENCE_BATCH_ROWS):
    """``(first, last)`` sequence ranges of consecutive whole sequences, about ``batch_rows``
    rows each: the sequences that start in the same window of ``batch_rows`` rows."""
    n_seq = bounds.shape[0] - 1
    if bounds[-1] <= batch_rows:
        return [(0, n_seq)]
    window = bounds[:-1] // batch_rows
    cuts = np.concatenate([[0], np.flatnonzero(np.diff(window)) + 1, [n_seq]])
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))


def posteriors(log_emission, bounds, startprob, transmat, workspace=None, symbols=None,
               tables=None, counts=None):
    """Forward-backward over all sequences.

    Returns ``(logprob, gamma, xi_sum)``: the log-likelihood of each sequence
    (n_seq,), the state posteriors (n, K) and the expected transition counts
    summed over time and sequences (K, K). With a :class:`Workspace`, ``gamma``
    is its array, overwritten by the next call. ``symbols`` (n,) uint32 and
    ``tables`` (``emission_tables``): a categorical HMM's emissions, read
    through each step's symbol, and ``log_emission`` may then have no rows (see
    ``forward_backward``); ``counts`` (K, M), if given with them, is filled with the
    posterior mass of each state on each symbol (counted by the same call).
    """
    n, k = int(bounds[-1]), log_emission.shape[1]
    workspace = workspace or Workspace()
    gamma = workspace.posterior_array(n, k)
    if tables is None:
        scratch, symbols, counts = workspace.scratch_array(n, k), None, None
    else:
        scratch = tables
    xi_sum = np.empty((k, k))
    logprob = np.empty(bounds.shape[0] - 1)
    work = n * k * k
    kernel = _config.parallel_or_serial(forward_backward, forward_backward_serial, work)
    if symbols is None:
        extra = ()
    else:  # always an array (no rows: nothing counted), so a fit compiles one specialisation
        m = scratch.shape[0] // (max(k, 4) + 1)
        extra = (np.empty((0, m)) if counts is None else counts,
                 _config.n_blocks(n, k * m))
    args = (np.ascontiguousarray(log_emission), bounds,
            np.ascontiguousarray(startprob, dtype=np.float64),
            np.ascontiguousarray(transmat, dtype=np.float64), scratch, gamma, xi_sum, logprob,
            SPLIT_MIN_ROWS, symbols, *extra)
    if kernel is forward_backward_serial:
        kernel(*args)  # no threads to set
    else:
        with _config.threads_for(work):
            kernel(*args)
    return logprob, gamma, xi_sum


def viterbi_paths(log_emission, bounds, startprob, transmat):
    """The most probable state path of every sequence and the sum of their log joint probabilities."""
    n, k = log_emission.shape
    states = np.empty(n, dtype=np.int64)
    logprob = np.empty(bounds.shape[0] - 1)
    with np.errstate(divide="ignore"):
        log_start = np.log(startprob)
        log_trans = np.ascontiguousarray(np.log(transmat))
    with _config.threads_for(n * k * k):
        viterbi(np.ascontiguousarray(log_emission), bounds, log_start, log_trans, states, logprob)
    return float(logprob.sum()), states


# --------------------------------------------------------------------------- sufficient statistics


#: Rows of the blocks that checks and log-emissions walk X in (about 2 MiB of float64 each), so
#: that no temporary the size of X is ever made (X may be a memory map larger than RAM).
BLOCK_ELEMENTS = 2**18
#: A list of in-memory sequences is cut into chunks of whole sequences of about this many rows.
LIST_CHUNK_ROWS = 2**16


def _row_blocks(n, width):
    """Slices of consecutive rows, about :data:`BLOCK_ELEMENTS` values of ``width`` columns each."""
    step = max(1, BLOCK_ELEMENTS // max(1, width))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


class HMMStatistics(SufficientStatistics):
    """Baum-Welch's sufficient statistics of a chunk of whole sequences.

    ``objective`` is the chunk's total log-likelihood and ``weight`` its number
    of rows; the arrays are ``start`` (K,), the posteriors of the first state
    of every sequence summed; ``xi_sum`` (K, K), the expected transition
    counts; ``emission``, the emission model's own :class:`SufficientStatistics`
    (which adds as it needs to: a Gaussian's by the pairwise update); and
    ``zero`` (2,), ``[chunk, sequence]`` of the first sequence of zero
    probability (``[-1, -1]`` if none; the chunk is -1 when not known), which
    two chunks' statistics merge by keeping the first.
    """

    __slots__ = ()

    def _add_arrays(self, other):
        out = {name: value + other.arrays[name] for name, value in self.arrays.items()
               if name != "zero"}
        out["zero"] = self.zero if self.zero[1] >= 0 else other.zero
        return out

    def _scale_arrays(self, factor):
        out = {name: factor * value for name, value in self.arrays.items() if name != "zero"}
        out["zero"] = self.zero
        return out


class _ScanStatistics(SufficientStatistics):
    """One pass over the data before EM: column extremes, bad values, moments.

    ``min`` and ``max`` (d,) merge by minimum and maximum; ``nonint`` and
    ``negative`` are ``[count, chunk, row in the chunk]`` of the values that
    are not integers or are negative (counts add, the first place is kept);
    ``moments`` is the :class:`~emlab.mixture.GaussianStatistics` of one
    component holding every row (mean and centred scatter, full or diagonal).
    Each entry is there only if asked for.
    """

    __slots__ = ()

    def _add_arrays(self, other):
        out = {}
        for name, value in self.arrays.items():
            theirs = other.arrays[name]
            if name == "min":
                out[name] = np.minimum(value, theirs)
            elif name == "max":
                out[name] = np.maximum(value, theirs)
            elif name in ("nonint", "negative"):
                place = value[1:] if value[0] > 0 else theirs[1:]
                out[name] = np.concatenate([[value[0] + theirs[0]], place])
            else:
                out[name] = value + theirs
        return out

    def _scale_arrays(self, factor):
        return {name: factor * value if name == "moments" else value
                for name, value in self.arrays.items()}


def _moments(X, full):
    """Mean and centred scatter (d, d), or its diagonal, of the rows of X, block by block."""
    n, d = X.shape
    mean = np.asarray(X.mean(axis=0), dtype=np.float64)
    second = np.zeros((d, d)) if full else np.zeros(d)
    for rows in _row_blocks(n, d):
        centred = X[rows] - mean
        if full:
            second += centred.T @ centred
        else:
            second += np.einsum("ij,ij->j", centred, centred)
    return mixture.GaussianStatistics(0.0, n, nk=np.array([float(n)]), means=mean[None, :],
                                      second=second[None])


def _scan(X, request, lengths=None, chunk=None, first_sequence=0):
    """The :class:`_ScanStatistics` of a chunk; ``request`` is ``(integers, moments)``.

    ``integers``: the extremes and the non-integer and negative values (their
    place named by ``chunk``); ``moments``: None, 'full' or 'diag'. The other
    keywords are the chunk's extras, which a scan does not need.
    """
    integers, moments = request
    n, d = X.shape
    arrays = {}
    if integers:
        arrays["min"] = np.asarray(X.min(axis=0), dtype=np.float64)
        arrays["max"] = np.asarray(X.max(axis=0), dtype=np.float64)
        where = -1 if chunk is None else int(chunk)
        nonint, negative = [0, where, -1], [0, where, -1]
        for rows in _row_blocks(n, d):
            block = X[rows]
            for record, bad in ((nonint, block != np.round(block)), (negative, block < 0)):
                count = int(np.count_nonzero(bad))
                if count and record[0] == 0:
                    record[2] = rows.start + int(np.flatnonzero(bad.any(axis=1))[0])
                record[0] += count
        arrays["nonint"], arrays["negative"] = np.array(nonint), np.array(negative)
    if moments is not None:
        arrays["moments"] = _moments(X, moments == "full")
    return _ScanStatistics(0.0, n, **arrays)


# --------------------------------------------------------------------------- chunked data


def _is_sequence_list(X):
    """Whether X is a list of sequences (2-d or Dask arrays) rather than one array-like."""
    return (isinstance(X, (list, tuple)) and len(X) > 0
            and any(is_dask_array(a) or getattr(a, "ndim", None) == 2 for a in X))


def _group_sequences(lengths, target):
    """``[(first, last), ...]``: consecutive whole sequences in chunks of at most ``target`` rows.

    A sequence longer than ``target`` is a chunk of its own.
    """
    groups, first, rows = [], 0, 0
    for i, length in enumerate(lengths):
        if rows and rows + length > target:
            groups.append((first, i))
            first, rows = i, 0
        rows += int(length)
    groups.append((first, len(lengths)))
    return groups


def _chunk_extras(bounds, groups):
    """Each chunk's keyword arguments for ``statistics``: its sequences' lengths and its place."""
    return [{"lengths": np.diff(bounds[first:last + 1]), "chunk": c, "first_sequence": first}
            for c, (first, last) in enumerate(groups)]


class _SequenceList(ChunkedData):
    """In-memory sequences given as a list of arrays, as chunks of whole sequences.

    Consecutive sequences are grouped into chunks of about
    :data:`LIST_CHUNK_ROWS` rows (a longer one alone); a chunk of several
    sequences is concatenated only while its statistics are computed, so the
    sequences are never concatenated all at once. Chunks are summed in order,
    in this process.
    """

    def __init__(self, sequences, target_rows=None):
        target_rows = LIST_CHUNK_ROWS if target_rows is None else target_rows
        self.sequences = sequences
        lengths = np.array([s.shape[0] for s in sequences], dtype=np.int64)
        self.bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.groups = _group_sequences(lengths, target_rows)
        self.per_chunk = _chunk_extras(self.bounds, self.groups)
        self.offsets = self.bounds[[first for first, _ in self.groups] + [len(sequences)]]
        self.n_chunks = len(self.groups)
        self.n_samples = int(self.bounds[-1])
        self.n_features = sequences[0].shape[1]

    def chunk(self, c):
        first, last = self.groups[c]
        if last - first == 1:
            return self.sequences[first]
        return np.concatenate(self.sequences[first:last])

    def map_reduce(self, fn, params_list):
        parts = []
        for c in range(self.n_chunks):
            block = self.chunk(c)
            parts.append([fn(block, params, **self.per_chunk[c]) for params in params_list])
        return [tree_sum(part[i] for part in parts) for i in range(len(params_list))]

    def sample_rows(self, size, rng):
        size = min(int(size), self.n_samples)
        rows = np.sort(rng.choice(self.n_samples, size, replace=False))
        which = np.searchsorted(self.bounds, rows, side="right") - 1
        return np.array([self.sequences[q][r - self.bounds[q]] for q, r in zip(which, rows)])


def _rows_only(fn, X, params, **extras):
    return fn(X, params)


class _RowsOnly(ChunkedData):
    """Chunked data seen as plain rows: the chunks' extras (``lengths``) are not passed on.

    For functions of the rows alone, such as k-means' :func:`~emlab.kmeans.lloyd_statistics`.
    """

    def __init__(self, data):
        self.data = data
        self.n_samples, self.n_features = data.n_samples, data.n_features
        self.n_chunks = data.n_chunks

    def map_reduce(self, fn, params_list):
        return self.data.map_reduce(functools.partial(_rows_only, fn), params_list)

    def sample_rows(self, size, rng):
        return self.data.sample_rows(size, rng)


def _data_shape(X):
    """(n_samples, n_features) of an array or of chunked data."""
    return (X.n_samples, X.n_features) if isinstance(X, ChunkedData) else X.shape


# --------------------------------------------------------------------------- the EM model


class _BaumWelch:
    """The :class:`~emlab.em.EMModel` of an HMM: Baum-Welch as EM, on sufficient statistics.

    :meth:`statistics` runs the E-step on a chunk of whole sequences and
    returns :class:`HMMStatistics`, which add over chunks;
    :meth:`params_from_statistics` is the M-step. On chunked data (a Dask
    array cut at sequence boundaries, a list of sequences) the driver sums the
    statistics of the chunks; in memory :meth:`e_step` computes them for all
    sequences at once, its posteriors in a :class:`Workspace` that every
    E-step overwrites, so no second (n, K) array is ever alive. The workspace
    is not pickled: the model travels to Dask workers without it.
    """

    def __init__(self, hmm, summary=None, labels=None):
        self.hmm = hmm
        self.summary = summary  # what the initialisation needs from the data (moments)
        self.labels = labels  # known states (-1: unknown) of the rows in memory, or None
        k = hmm.n_components
        self.startprob_prior = check_prior(hmm.startprob_prior, "startprob_prior", (k,))
        self.transmat_prior = check_prior(hmm.transmat_prior, "transmat_prior", (k, k))
        self.learn = hmm.params
        self.starts = 0
        self.iteration = 0
        self.m_step_slack = 0.0
        self.workspace = Workspace()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["workspace"] = None  # (n, K) arrays: never shipped to a worker
        state["summary"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.workspace = Workspace()

    def init_params(self, data, rng):
        restart = self.starts
        self.starts += 1
        self.iteration = 0
        X = data if isinstance(data, ChunkedData) else data.X
        return self.hmm._initial_params(X, rng, restart, self.summary)

    def log_prior(self, params):
        return (log_dirichlet(params.startprob, self.startprob_prior)
                + log_dirichlet(params.transmat, self.transmat_prior)
                + self.hmm._log_emission_prior(params.emission))

    # ------------------------------------------------------------------- E-step

    def _statistics(self, X, bounds, params, workspace, chunk=None, first_sequence=0,
                    labels=None):
        # Where the emission model gives per-symbol tables (categorical), the forward-backward
        # reads each step's emissions through its symbol and no (n, K) array of them is formed:
        # the rare step redone in log space takes the log of the table's entries
        k = params.startprob.shape[0]
        tables = None if labels is not None else self.hmm._emission_tables(params.emission)
        counts = None
        if tables is not None:
            log_emission = np.empty((0, k))
            counts = self.hmm._emission_counts(params.emission)
        else:
            log_emission = self.hmm._log_emission(X, params.emission)
            if labels is not None:  # a known state rules the others out at its step
                mixture.mask_labelled(log_emission, labels)
        logprob, gamma, xi_sum = posteriors(log_emission, bounds, params.startprob,
                                            params.transmat, workspace,
                                            None if tables is None else workspace.symbols(X),
                                            tables, counts)
        del log_emission
        if counts is None:
            emission = self.hmm._emission_statistics(X, gamma, params.emission)
        else:  # counted by the forward-backward
            emission = self.hmm._emission_statistics_from_counts(X, counts)
        bad = np.flatnonzero(~np.isfinite(logprob))
        zero = (np.array([-1 if chunk is None else int(chunk), int(first_sequence) + int(bad[0])])
                if bad.size else np.array([-1, -1]))
        return HMMStatistics(float(logprob.sum()), X.shape[0],
                             start=gamma[bounds[:-1]].sum(axis=0), xi_sum=xi_sum,
                             emission=emission, zero=zero)

    def statistics(self, X, params, lengths=None, chunk=None, first_sequence=0):
        """The :class:`HMMStatistics` of a chunk X of whole sequences (the statistics protocol).

        ``lengths`` are the lengths of the chunk's sequences (None: one
        sequence); ``chunk`` and ``first_sequence`` (the index of its first
        sequence in the data) only name a sequence of zero probability.
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        bounds = check_lengths(lengths, X.shape[0])
        return self._statistics(X, bounds, params, Workspace(), chunk, first_sequence)

    def objective(self, stats, params):
        """The objective per observation (log-likelihood plus log-prior), with a named error."""
        self.iteration += 1
        if not np.isfinite(stats.objective):
            chunk, seq = (int(v) for v in stats.zero)
            where = f"sequence {seq}" + (f" (in chunk {chunk})" if chunk >= 0 else "")
            raise FloatingPointError(
                f"{where} has zero probability under the model at Baum-Welch iteration "
                f"{self.iteration}: no state path can produce it (a zero in startprob_, "
                f"transmat_ or the emission probabilities rules every path out)."
            )
        return (stats.objective + self.log_prior(params)) / stats.weight

    def e_step(self, data, params):
        X, bounds, labels = data.X, data.bounds, self.labels
        stats = None
        for first, last in sequence_batches(bounds, SEQUENCE_BATCH_ROWS):  # one batch's memory
            rows = slice(int(bounds[first]), int(bounds[last]))
            part = self._statistics(X[rows], bounds[first:last + 1] - bounds[first], params,
                                    self.workspace, first_sequence=first,
                                    labels=None if labels is None else labels[rows])
            stats = part if stats is None else stats + part
        return self.objective(stats, params), stats

    # ------------------------------------------------------------------- M-step

    def params_from_statistics(self, stats, params):
        startprob, transmat = params.startprob, params.transmat
        if "s" in self.learn:
            startprob = dirichlet_map(stats.start, self.startprob_prior, startprob)
        if "t" in self.learn:
            transmat = dirichlet_map(stats.xi_sum, self.transmat_prior, transmat)
        try:
            emission, deficit = self.hmm._emission_from_statistics(stats.emission, params.emission)
        except DegenerateCovarianceError as exc:
            raise DegenerateCovarianceError(f"{exc} (Baum-Welch iteration {self.iteration})") from None
        # the driver allows the next objective to fall by this much (see EMModel)
        self.m_step_slack = deficit / stats.weight
        return HMMParams(startprob, transmat, emission)

    def m_step(self, data, stats, params):
        return self.params_from_statistics(stats, params)


# --------------------------------------------------------------------------- the base estimator


class BaseHMM(ParamsMixin):
    """What every HMM here shares: Baum-Welch through the EM driver, scoring, decoding, sampling.

    Subclasses define the emission model through ``_emission_letters``,
    ``_emission_attributes``, ``_value_kind``, ``_check_X``, ``_check_values``,
    ``_check_features``, ``_moments_needed``, ``_init_emission``,
    ``_emission_from_attributes``, ``_set_emission``, ``_log_emission``,
    ``_emission_statistics``, ``_emission_from_statistics``,
    ``_log_emission_prior``, ``_n_emission_parameters`` and
    ``_sample_emission``. Nothing here depends on which model it is.
    """

    _estimator_type = "density_estimator"
    _emission_letters = ""
    _emission_attributes = ()
    #: ``(what the values must be, what they must not be)`` for integer data, else None
    _value_kind = None

    # ----------------------------------------------------------------------- checks

    def _check_settings(self):
        k = check_int(self.n_components, "n_components", low=1)
        check_em_options(self.max_iter, self.tol, self.on_decrease)
        check_int(self.n_init, "n_init", low=1)
        self._verbosity()
        check_option(self.algorithm, "algorithm", ALGORITHMS)
        if self.implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"implementation must be 'log' or 'scaling' (hmmlearn's choices; emlab runs the "
                f"same scaled forward-backward with a log-space fallback for both); got "
                f"{self.implementation!r}."
            )
        allowed = "st" + self._emission_letters
        check_letters(self.params, "params", allowed)
        check_letters(self.init_params, "init_params", allowed)
        return k

    def _verbosity(self):
        """``verbose`` as emlab's level: hmmlearn's True (a line per iteration) is 2, False 0."""
        if isinstance(self.verbose, (bool, np.bool_)):
            return 2 if self.verbose else 0
        return check_int(self.verbose, "verbose", low=0)

    def _take_aliases(self, aliases):
        """Apply hmmlearn's ``n_iter`` (the only alias ``__init__`` takes by keyword).

        ``n_iter`` is stored as ``max_iter`` (so get_params, set_params and clone
        see one parameter); given with a different ``max_iter`` it is a ValueError.
        """
        aliases = dict(aliases)
        n_iter = aliases.pop("n_iter", None)
        if aliases:
            raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                            f"{next(iter(aliases))!r}")
        if n_iter is None:
            return
        if self.max_iter != DEFAULT_MAX_ITER and self.max_iter != n_iter:
            raise ValueError(
                f"n_iter={n_iter!r} and max_iter={self.max_iter!r} disagree: n_iter is hmmlearn's "
                f"name for max_iter; give one of them."
            )
        self.max_iter = n_iter

    @property
    def n_iter(self):
        """hmmlearn's name of ``max_iter``: reading or assigning it reads or sets ``max_iter``."""
        return self.max_iter

    @n_iter.setter
    def n_iter(self, value):
        self.max_iter = value

    def set_params(self, **params):
        """scikit-learn's ``set_params``; hmmlearn's ``n_iter`` sets ``max_iter``."""
        if "n_iter" in params:
            n_iter = params.pop("n_iter")
            if "max_iter" in params and params["max_iter"] != n_iter:
                raise ValueError(
                    f"n_iter={n_iter!r} and max_iter={params['max_iter']!r} disagree: n_iter is "
                    f"hmmlearn's name for max_iter; give one of them."
                )
            params["max_iter"] = n_iter
        return super().set_params(**params)

    def __repr__(self):
        # ParamsMixin's, over the named parameters only (``**aliases`` is not one)
        changed = []
        for name, p in inspect.signature(type(self).__init__).parameters.items():
            if name == "self" or p.kind == p.VAR_KEYWORD:
                continue
            value = getattr(self, name)
            try:
                same = value is p.default or bool(value == p.default)
            except Exception:  # arrays and the like
                same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def get_stationary_distribution(self):
        """The stationary distribution of ``transmat_``: ``pi P = pi``, ``sum(pi) = 1``.

        The left eigenvector of ``transmat_`` for the eigenvalue closest to 1
        (hmmlearn takes the largest eigenvalue, which for a stochastic matrix
        is 1), normalised to sum to 1. For a reducible chain (several closed
        classes) the stationary distribution is not unique and this is one of
        them, as in hmmlearn.
        """
        transmat = self._check_transmat()
        values, vectors = np.linalg.eig(transmat.T)
        vector = np.real(vectors[:, int(np.argmin(np.abs(values - 1.0)))])
        return vector / vector.sum()

    def _check_features(self, n_features):
        """A ValueError if the emission model cannot take ``n_features`` columns."""

    def _check_values(self, X, name):
        """A ValueError naming ``name`` if the emission model cannot take the values of X."""

    def _moments_needed(self):
        """'full' or 'diag' if the initialisation needs the data's mean and (co)variances."""
        return None

    #: Whether ``_emission_tables`` gives tables (the forward-backward a fit compiles)
    _symbol_tables = False

    def _emission_tables(self, emission):
        """Per-symbol tables the forward-backward reads each step's emissions from
        (``emission_tables``), where the emission model has them (categorical); else None."""
        return None

    def _emission_counts(self, emission):
        """With tables: a (K, M) array the forward-backward fills with the posterior mass
        of each state on each symbol, turned into the emission statistics by
        ``_emission_statistics_from_counts``; None leaves them to ``_emission_statistics``."""
        return None

    def _check_startprob(self):
        k = self.n_components
        if not hasattr(self, "startprob_"):
            raise NotFittedError(f"startprob_ is not set: fit the {type(self).__name__}, or set "
                                 f"startprob_ before using it.")
        return check_probabilities(self.startprob_, "startprob_", (k,))

    def _check_transmat(self):
        k = self.n_components
        if not hasattr(self, "transmat_"):
            raise NotFittedError(f"transmat_ is not set: fit the {type(self).__name__}, or set "
                                 f"transmat_ before using it.")
        return check_probabilities(self.transmat_, "transmat_", (k, k))

    def _given(self, name, letter):
        """The attribute the user set before fit in place of initialising ``letter``."""
        if not hasattr(self, name):
            raise ValueError(f"{name} is not set: set it before fit, or keep {letter!r} in "
                             f"init_params (init_params={self.init_params!r}).")
        return getattr(self, name)

    @staticmethod
    def _fit_labels_checked(data, labels, k):
        """Known states checked against the fitting data (in memory only), or None."""
        if labels is None:
            return None
        if isinstance(data, ChunkedData):
            raise ValueError("labels (known states) need X in memory as one array with "
                             "lengths, not a Dask array or a list of sequences.")
        return check_labels(labels, data.X.shape[0], k, "labels")

    def _current_params(self):
        """The model's parameters from its attributes (fitted or set by the user), checked."""
        check_int(self.n_components, "n_components", low=1)
        missing = [a for a in ("startprob_", "transmat_") + self._emission_attributes
                   if not hasattr(self, a)]
        if missing:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet ({', '.join(missing)} not set); "
                f"call fit(X) first, or set the parameters."
            )
        return HMMParams(self._check_startprob(), self._check_transmat(),
                         self._emission_from_attributes())

    def _sequences(self, X, lengths, fitting=False):
        """In-memory X (a list of arrays concatenated) and its sequences, checked."""
        if is_dask_array(X) or (_is_sequence_list(X) and any(is_dask_array(a) for a in X)):
            raise ValueError(
                f"X is a Dask array (or a list holding some): {type(self).__name__}.fit takes one "
                f"chunk by chunk, but score, score_samples, predict, predict_proba, decode, bic "
                f"and aic work on data in memory. Pass X.compute() (or the part of X that fits "
                f"in memory) with the lengths of its sequences."
            )
        if _is_sequence_list(X):
            if lengths is not None:
                raise ValueError("lengths must be None when X is a list of sequences: each array "
                                 "in X is one sequence.")
            pieces = self._check_pieces(X)
            X, lengths = np.concatenate(pieces), [p.shape[0] for p in pieces]
        X = self._check_X(X, fitting)
        return Sequences(X, check_lengths(lengths, X.shape[0]))

    def _check_pieces(self, X):
        """The arrays of a list of sequences, each checked and named ``X[i]``."""
        pieces, d = [], None
        for i, piece in enumerate(X):
            if getattr(piece, "ndim", 2) != 2:
                raise ValueError(f"X[{i}] must be 2-d of shape (n_rows, n_features): each array in "
                                 f"the list X is one sequence; got shape {np.shape(piece)}.")
            piece = check_array(piece, name=f"X[{i}]")
            if d is None:
                d = piece.shape[1]
                self._check_features(d)
            elif piece.shape[1] != d:
                raise ValueError(f"every sequence in X must have the same number of features: "
                                 f"X[0] has {d}, X[{i}] has {piece.shape[1]}.")
            self._check_values(piece, f"X[{i}]")
            pieces.append(piece)
        return pieces

    # ----------------------------------------------------------------------- chunked data

    def _fit_data(self, X, lengths):
        """What fit runs EM on: :class:`Sequences` in memory, or chunked data.

        A Dask array (with ``lengths``) or a list of arrays holding a Dask
        array becomes a :class:`~emlab._dask.DaskData` cut at sequence
        boundaries; a list of in-memory arrays a :class:`_SequenceList`.
        """
        if _is_sequence_list(X):
            if lengths is not None:
                raise ValueError(f"lengths must be None when X is a list of sequences (each array "
                                 f"in X is one sequence); got lengths={lengths!r}.")
            if any(is_dask_array(a) for a in X):
                return self._dask_list(X)
            return _SequenceList(self._check_pieces(X))
        if is_dask_array(X):
            return self._dask_data(X, lengths)
        return self._sequences(X, lengths, fitting=True)

    @staticmethod
    def _known_rows(X, name):
        if X.ndim != 2:
            hint = " Reshape 1-d data with X.reshape(-1, 1)." if X.ndim == 1 else ""
            raise ValueError(f"{name} must be 2-d of shape (n_samples, n_features); got {X.ndim}-d "
                             f"with shape {X.shape}.{hint}")
        if any(np.isnan(c) for c in X.chunks[0]):
            X = X.compute_chunk_sizes()  # one pass: the row count of every chunk
        return X

    def _dask_data(self, X, lengths, target=None):
        """A Dask array as :class:`~emlab._dask.DaskData` whose chunks are whole sequences.

        Consecutive sequences are grouped into chunks of at most ``target``
        rows (default the largest row chunk of X); a longer sequence is a
        chunk of its own.
        """
        X = self._known_rows(X, "X")
        self._check_features(X.shape[1])
        bounds = check_lengths(lengths, X.shape[0])
        if target is None:
            target = max(X.chunks[0]) if X.chunks[0] else 1
        groups = _group_sequences(np.diff(bounds), max(1, int(target)))
        row_chunks = tuple(int(bounds[last] - bounds[first]) for first, last in groups)
        return DaskData(X, row_chunks=row_chunks, per_chunk=_chunk_extras(bounds, groups), name="X")

    def _dask_list(self, X):
        """A list of sequences, some of them Dask arrays, as one Dask array cut at their ends."""
        import dask.array as da

        pieces, target, d = [], 0, None
        for i, piece in enumerate(X):
            if is_dask_array(piece):
                piece = self._known_rows(piece, f"X[{i}]")
                target = max([target, *piece.chunks[0]])
            else:
                piece = np.asarray(piece)
                if piece.ndim != 2:
                    raise ValueError(f"X[{i}] must be 2-d of shape (n_rows, n_features): each "
                                     f"array in the list X is one sequence; got shape "
                                     f"{piece.shape}.")
                piece = da.from_array(piece, chunks=piece.shape)
            if piece.shape[0] == 0:
                raise ValueError(f"X[{i}] has 0 rows; every sequence needs at least one.")
            if d is None:
                d = piece.shape[1]
            elif piece.shape[1] != d:
                raise ValueError(f"every sequence in X must have the same number of features: "
                                 f"X[0] has {d}, X[{i}] has {piece.shape[1]}.")
            pieces.append(piece)
        lengths = [p.shape[0] for p in pieces]
        return self._dask_data(da.concatenate(pieces, axis=0), lengths, target)

    def _summary(self, data):
        """One pass over the data for what the checks and the initialisation need, or None.

        In memory the values were checked with X, so only the moments are
        computed (when ``init_params`` needs them); chunked data also get their
        values checked (integers, signs, the number of symbols) in that pass.
        """
        chunked = isinstance(data, ChunkedData)
        request = (chunked and self._value_kind is not None, self._moments_needed())
        if request == (False, None):
            return None
        if not chunked:
            return _scan(data.X, request)
        stats = data.map_reduce(_scan, [request])[0]
        self._check_scan(stats, data)
        return stats

    def _check_scan(self, stats, data):
        """The ValueError of chunked data whose values the model cannot take, naming the chunk."""
        if self._value_kind is None:
            return
        for key, words in zip(("nonint", "negative"), self._value_kind):
            count, chunk, row = (int(v) for v in stats.arrays[key])
            if count:
                start, stop = int(data.offsets[chunk]), int(data.offsets[chunk + 1]) - 1
                raise ValueError(f"X must hold {words}: {count} value(s) are not, the first in "
                                 f"chunk {chunk} (rows {start} to {stop}), at row {start + row}.")

    # ----------------------------------------------------------------------- initialisation

    def _initial_params(self, X, rng, restart, summary=None):
        """Starting parameters: for each letter in ``init_params`` a fresh value, otherwise the
        attribute the user set. ``restart`` > 0 draws startprob and transmat from a flat
        Dirichlet instead of the uniform start. X is an array or chunked data, ``summary``
        what :meth:`_summary` found in it."""
        k = self.n_components
        if "s" in self.init_params:
            startprob = np.full(k, 1.0 / k) if restart == 0 else rng.dirichlet(np.ones(k))
        else:
            self._given("startprob_", "s")
            startprob = self._check_startprob()
        if "t" in self.init_params:
            transmat = (np.full((k, k), 1.0 / k) if restart == 0
                        else rng.dirichlet(np.ones(k), size=k))
        else:
            self._given("transmat_", "t")
            transmat = self._check_transmat()
        return HMMParams(startprob, transmat, self._init_emission(X, rng, summary))

    # ----------------------------------------------------------------------- fitting

    def fit(self, X, lengths=None, *, labels=None):
        """Estimate the parameters by Baum-Welch (EM) from ``n_init`` starts. Returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dask.array.Array, or list of arrays
            All sequences, one after the other (a C-contiguous float64 array,
            a read-only memory map included, is read in place, never copied).
            A Dask array is fitted chunk by chunk without being gathered: its
            rows are cut into chunks of whole sequences (consecutive sequences
            grouped up to about its largest chunk; a longer sequence is a
            chunk of its own, so without ``lengths`` one task holds all of X),
            and each E-step runs one task per chunk, on the workers of the
            active ``distributed.Client`` if any. A list of arrays (NumPy or
            Dask, each of shape (n_rows_i, n_features)) holds one sequence per
            array and is fitted the same way, without concatenating it.
        lengths : array-like of int, optional
            The length of each sequence (summing to n_samples); default one
            sequence. Must be None when X is a list of sequences.
        labels : array-like of shape (n_samples,), optional
            Known states (semi-supervised Baum-Welch): -1 for a step whose
            state is unknown, a state index for one whose state is known. At
            a known step every other state's emission probability is taken
            as 0, so the posteriors there are fixed to the known state and
            the objective is ``log p(X, known states)``, which EM still
            cannot lower. X in memory only.
        """
        k = self._check_settings()
        data = self._fit_data(X, lengths)
        n, d = _data_shape(data if isinstance(data, ChunkedData) else data.X)
        if k > n:
            raise ValueError(f"n_components={k} must be <= n_samples={n}.")
        labels = self._fit_labels_checked(data, labels, k)
        self._fit_labels = labels  # for initialisations that can align their states to them
        if not isinstance(data, ChunkedData) and n <= SEQUENCE_BATCH_ROWS:
            # one batch, so forward-backward's work is n K^2: it compiles on the other core
            # while the start and the emission kernels compile here (an empty cache only)
            _compile.warm_up_hmm(n * k * k, self._symbol_tables)
        model = _BaumWelch(self, self._summary(data), labels)
        verbose = self._verbosity()
        result = fit_em(model, data, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                        random_state=check_random_state(self.random_state),
                        on_decrease=self.on_decrease, verbose=verbose)
        params = result.params
        self.startprob_ = params.startprob
        self.transmat_ = params.transmat
        self._set_emission(params.emission)
        self.lower_bounds_ = result.lower_bounds
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.n_features_in_ = d
        self.monitor_ = ConvergenceMonitor(self.tol, self.max_iter, verbose >= 2,
                                           history=np.asarray(result.lower_bounds) * n,
                                           iter=result.n_iter, converged=result.converged)
        del self._fit_labels
        return self

    def fit_predict(self, X, lengths=None):
        """Fit, then decode X with the fitted model (``fit(X, lengths).predict(X, lengths)``).

        Decoding works on data in memory, so X must be a NumPy array or a list
        of them: a Dask array raises a ValueError before anything is fitted.
        """
        if is_dask_array(X) or (_is_sequence_list(X) and any(is_dask_array(a) for a in X)):
            self._sequences(X, lengths)  # the ValueError about Dask arrays, before any fitting
        return self.fit(X, lengths).predict(X, lengths)

    # ----------------------------------------------------------------------- inference

    def _posteriors(self, X, lengths):
        params = self._current_params()
        data = self._sequences(X, lengths)
        log_emission = self._log_emission(data.X, params.emission)
        logprob, gamma, _ = posteriors(log_emission, data.bounds, params.startprob, params.transmat)
        return float(logprob.sum()), gamma

    def score_samples(self, X, lengths=None):
        """Log-likelihood of X and the state posteriors.

        Returns
        -------
        logprob : float
            ``log p(X)``, summed over the sequences.
        posteriors : ndarray of shape (n_samples, n_components)
            ``p(z_t = k | x of its sequence)``; each row sums to 1.
        """
        return self._posteriors(X, lengths)

    def score(self, X, lengths=None):
        """Total log-likelihood ``log p(X)`` over the sequences (hmmlearn's convention, not a mean)."""
        return self._posteriors(X, lengths)[0]

    def predict_proba(self, X, lengths=None):
        """State posteriors ``p(z_t = k | x)``, shape (n_samples, n_components)."""
        return self._posteriors(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm=None):
        """The most likely states.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int, optional
        algorithm : {'viterbi', 'map'}, optional
            Default ``self.algorithm``. 'viterbi': the most probable path
            (log space); 'map': the most probable state at each step
            (the argmax of the posteriors; the path may be impossible).

        Returns
        -------
        logprob : float
            'viterbi': ``log p(X, path)`` summed over sequences. 'map': the sum
            over steps of the log posterior of the chosen state (hmmlearn
            returns the sum of the posteriors themselves).
        states : ndarray of shape (n_samples,)
        """
        algorithm = self.algorithm if algorithm is None else algorithm
        check_option(algorithm, "algorithm", ALGORITHMS)
        if algorithm == "map":
            _, gamma = self._posteriors(X, lengths)
            states = gamma.argmax(axis=1)
            with np.errstate(divide="ignore"):
                return float(np.log(gamma[np.arange(gamma.shape[0]), states]).sum()), states
        params = self._current_params()
        data = self._sequences(X, lengths)
        log_emission = self._log_emission(data.X, params.emission)
        return viterbi_paths(log_emission, data.bounds, params.startprob, params.transmat)

    def predict(self, X, lengths=None):
        """The most likely states (by ``self.algorithm``), shape (n_samples,)."""
        return self.decode(X, lengths)[1]

    # ----------------------------------------------------------------------- sampling

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Draw one sequence from the model.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : None, int or numpy.random.Generator
            Default ``self.random_state``.
        currstate : int, optional
            The state of the first sample (default drawn from ``startprob_``).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        states : ndarray of shape (n_samples,)
        """
        params = self._current_params()
        n_samples = check_int(n_samples, "n_samples", low=1)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        k = self.n_components
        if currstate is None:
            first = params.startprob
        else:
            first = np.zeros(k)
            first[check_int(currstate, "currstate", low=0, high=k - 1)] = 1.0
        cum_start = np.cumsum(first)
        cum_start /= cum_start[-1]
        cum_trans = np.cumsum(params.transmat, axis=1)
        cum_trans /= cum_trans[:, -1:]
        states = np.empty(n_samples, dtype=np.int64)
        sample_states(cum_start, np.ascontiguousarray(cum_trans), rng.random(n_samples), states)
        return self._sample_emission(params.emission, states, rng), states

    # ----------------------------------------------------------------------- model selection

    def _n_parameters(self):
        """Free parameters that ``fit`` learns (the letters in ``params``), as hmmlearn."""
        k = self.n_components
        n = 0
        if "s" in self.params:
            n += k - 1
        if "t" in self.params:
            n += k * (k - 1)
        return n + self._n_emission_parameters()

    def bic(self, X, lengths=None):
        """Bayesian information criterion ``-2 log p(X) + p log n``: lower is better."""
        data = self._sequences(X, lengths)
        logprob = self._posteriors(data.X, np.diff(data.bounds))[0]
        return -2.0 * logprob + self._n_parameters() * np.log(data.X.shape[0])

    def aic(self, X, lengths=None):
        """Akaike information criterion ``-2 log p(X) + 2 p``: lower is better."""
        return -2.0 * self.score(X, lengths) + 2.0 * self._n_parameters()


_COMMON_DOC = """
    startprob_prior, transmat_prior : float or array-like, default=1.0
        Dirichlet concentrations (>= 1) of the starting probabilities and of
        each row of the transition matrix: ``prior - 1`` pseudo-counts are
        added to the expected counts (hmmlearn's convention). With priors above
        1 fit maximises the posterior and ``lower_bounds_`` records the
        log-posterior (without the prior's normalising constant).
    algorithm : {'viterbi', 'map'}, default='viterbi'
        The decoder of :meth:`predict` and :meth:`decode`.
    max_iter : int, default=100
        Baum-Welch iterations at most. hmmlearn's name ``n_iter`` is accepted as
        a keyword and stored as ``max_iter`` (so ``get_params`` and ``clone``
        see one parameter); ``set_params(n_iter=...)`` and ``model.n_iter = ...``
        set ``max_iter`` too. ``n_iter`` with a different non-default ``max_iter`` is a
        ValueError. emlab's
        default is 100 (hmmlearn's 10).
    tol : float, default=1e-3
        Convergence threshold on the change of the objective **per
        observation** (total log-likelihood / n_samples), as
        :class:`~emlab.GaussianMixture`; hmmlearn's is on the total.
    n_init : int, default=1
        Number of starts; the one with the highest final objective is kept.
        The first starts from uniform ``startprob_`` and ``transmat_``, later
        ones from random (flat Dirichlet) ones, when those are in ``init_params``.
    random_state : None, int or numpy.random.Generator
        Seeds the initialisation and :meth:`sample`.
    on_decrease : {'warn', 'raise', 'ignore'}, default='warn'
        What to do if the objective falls between two iterations by more than
        round-off (and, for Gaussian emissions, more than ``reg_covar`` can
        explain), which exact EM cannot do.
    verbose : int or bool, default=0
        0: silent; 1: a line per run; 2: also a line per iteration, on stdout.
        hmmlearn's ``verbose=True`` (a line per iteration, on stderr) is 2 and
        ``False`` is 0.
    implementation : {'log', 'scaling'}, default='log'
        hmmlearn's choice of forward-backward, accepted for compatibility:
        whichever is chosen, emlab runs its one forward-backward, on scaled
        probabilities with a log-space fallback for a step whose scale would
        underflow (as accurate as hmmlearn's 'log', as fast as its
        'scaling'). Anything else is a ValueError at fit.
"""

_COMMON_ATTRIBUTES = """
    startprob_ : ndarray of shape (n_components,)
    transmat_ : ndarray of shape (n_components, n_components)
    lower_bounds_ : ndarray, one entry per iteration
        The objective per observation (log-likelihood, plus the log-prior if
        any, divided by n_samples) of the parameters after t M-steps (entry 0:
        the start). ``lower_bounds_ * n_samples`` is hmmlearn's
        ``monitor_.history``.
    converged_ : bool
    n_iter_ : int
    n_features_in_ : int
    monitor_ : ConvergenceMonitor
        hmmlearn's ``monitor_``, built by fit: ``history`` (``lower_bounds_ *
        n_samples``, every iteration), ``iter``, ``converged`` (the tolerance
        was met; hmmlearn also says True when ``n_iter`` ran out), ``tol``,
        ``n_iter``, ``verbose``.
"""

_COMMON_NOTES = """
    A zero in the starting ``startprob_`` or ``transmat_`` (set by the user,
    with 's' or 't' left out of ``init_params``) stays zero: Baum-Welch
    cannot create probability where there was none, and the M-step keeps
    every Dirichlet parameter on its support. So a left-right model, or any
    sparsity pattern of allowed transitions, is fitted by starting from a
    transition matrix with zeros where transitions are forbidden. A state that
    receives no posterior mass keeps its previous transition row and emission
    parameters (any value maximises the M-step's objective for it), so no row
    ever becomes NaN or all zero.

    The E-step is one forward-backward pass on scaled probabilities (Numba,
    in parallel over sequences; a step whose scale would underflow is redone in
    log space), which keeps only O(n_samples * n_components) memory: the
    expected transition counts are summed as they are computed. Results do not
    depend on the number of threads. The book's chapter "Baum-Welch is EM"
    derives the updates and checks that the likelihood never falls.

    Chunked EM: a Dask array (with ``lengths``) or a list of sequences is
    fitted chunk by chunk, each chunk holding whole sequences; every E-step is
    one forward-backward pass per chunk (one Dask task each) returning only
    the sufficient statistics (start and transition counts, the emission
    model's statistics, the log-likelihood), summed in a fixed order, and the
    M-step is the in-memory one. X is never gathered, and the fit equals the
    in-memory fit to round-off. The initialisation reads the data in passes
    too. Scoring, prediction and decoding work on data in memory.
"""


def _doc(text):
    return (text.replace("%(common)s", _COMMON_DOC).replace("%(attributes)s", _COMMON_ATTRIBUTES)
            .replace("%(notes)s", _COMMON_NOTES))


# --------------------------------------------------------------------------- Gaussian emissions


class GaussianHMM(BaseHMM):
    __doc__ = _doc("""Hidden Markov model with Gaussian emissions.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='diag'
        The second positional argument, as in hmmlearn (``GaussianHMM(3, "full")``).
        As in :class:`~emlab.GaussianMixture`: a covariance matrix per state,
        one shared by all, a diagonal per state, or one variance per state.
    min_covar : float, optional
        hmmlearn's ``min_covar``, implemented as hmmlearn 0.3.3 does: it is
        added to the diagonal of the **initial** covariance (``init_params``
        with 'c') and nowhere else; hmmlearn's M-step applies no floor, despite
        its docstring. Default None: ``reg_covar`` takes that place.
    startprob_prior, transmat_prior
        As below (third and fourth positional arguments, as hmmlearn's).
    means_prior, means_weight : float or array-like, default=0.0
        hmmlearn's normal prior on each mean, ``N(means_prior, Sigma_k /
        means_weight)``: ``means_prior`` broadcasts to (n_components,
        n_features), ``means_weight`` (>= 0) to (n_components,).
    covars_prior : float or array-like, default=0.0
        The scale of hmmlearn's inverse-Wishart ('full', 'tied') or
        inverse-gamma ('diag', 'spherical') prior on the covariances, added
        as hmmlearn adds it: a scalar goes to **every entry** of a 'full' or
        'tied' matrix (pass ``c * np.eye(d)`` for a diagonal scale); it
        broadcasts to (K, d, d) 'full', (d, d) 'tied', (K, d) 'diag' and
        'spherical'. emlab's default is 0 (a flat prior, with ``reg_covar`` as
        the guard against singular covariances); hmmlearn's is 1e-2.
    covars_weight : float, default=1.0
        The prior's extra counts: ``max(covars_weight - d, 0)`` ('full',
        'tied') or ``max(covars_weight - 1, 0)`` ('diag', 'spherical') are
        added to the denominator of the covariance update, as in hmmlearn.

        With any of these four not at emlab's defaults, the M-step is
        hmmlearn's MAP M-step (``GaussianHMM._do_mstep``: means ``(w m0 +
        sum_t gamma_tk x_t) / (w + N_k)``, covariances ``(psi + S_k + w (mu_k -
        m0)(mu_k - m0)^T) / (N_k + c0)``), which jointly maximises Q plus the
        prior's log-density; that log-density (without constants) is part of
        the objective in ``lower_bounds_``, so the monotonicity check stays
        valid. ``reg_covar`` is still added afterwards (set it to 0 to get
        hmmlearn's numbers).
    algorithm, random_state
        As below (tenth and eleventh positional arguments, as hmmlearn's;
        the rest are keyword-only).
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance. The M-step then falls short
        of maximising Q by an amount it computes exactly, and the monotonicity
        check allows that much. hmmlearn instead adds ``covars_prior=1e-2``
        (a prior) by default.
    %(common)s
    params : str, default='stmc'
        The parameters fit updates: 's' ``startprob_``, 't' ``transmat_``, 'm' ``means_``,
        'c' ``covariances_``. The others stay exactly as they start.
    init_params : str, default='stmc'
        The parameters fit initialises: uniform ``startprob_`` and ``transmat_``,
        k-means (:class:`~emlab.KMeans`) centres for ``means_`` and the data's
        covariance plus ``reg_covar`` (``min_covar`` if given) for every state's
        ``covariances_``. A letter left out means the attribute set before fit
        is the start.

    Attributes
    ----------
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (K, d, d) 'full', (d, d) 'tied', (K, d) 'diag', (K,) 'spherical'.
    covars_ : ndarray of shape (n_components, n_features, n_features)
        hmmlearn's name: the covariances as full matrices whatever
        ``covariance_type`` (hmmlearn's getter; its 0.3.3 returns a wrongly
        shaped array for a fitted 'spherical' model, emlab does not). Setting
        it takes ``covariances_``'s shape, checked as hmmlearn checks it.
    precisions_cholesky_ : ndarray, shaped as ``covariances_``
        As scikit-learn's ``GaussianMixture``.
    %(attributes)s

    Notes
    -----
    The emission M-step is a Gaussian mixture's M-step
    (``emlab.mixture.params_from_statistics``) with the state posteriors as
    responsibilities: weighted means and centred scatter matrices. On a Dask
    array or a list of sequences the k-means start (``init_params`` with 'm')
    seeds k-means++ on a uniform sample of rows and runs Lloyd's algorithm
    over all the chunks, as :class:`~emlab.GaussianMixture` does; the
    covariances start from the data's, found in one pass.
    %(notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from emlab import GaussianHMM
    >>> truth = GaussianHMM(2, covariance_type="full", init_params="")
    >>> truth.startprob_ = np.array([0.5, 0.5])
    >>> truth.transmat_ = np.array([[0.95, 0.05], [0.1, 0.9]])
    >>> truth.means_ = np.array([[0.0, 0.0], [3.0, 3.0]])
    >>> truth.covariances_ = np.array([np.eye(2), np.eye(2)])
    >>> X, states = truth.sample(2000, random_state=0)
    >>> model = GaussianHMM(2, covariance_type="full", random_state=0).fit(X)
    >>> bool(np.all(np.diff(model.lower_bounds_) >= -1e-10))
    True
    """)

    _emission_letters = "mc"
    _emission_attributes = ("means_", "covariances_")

    def __init__(self, n_components=1, covariance_type="diag", min_covar=None,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0.0, means_weight=0.0,
                 covars_prior=0.0, covars_weight=1.0, algorithm="viterbi", random_state=None, *,
                 reg_covar=1e-6, max_iter=DEFAULT_MAX_ITER, tol=1e-3, verbose=0, params="stmc",
                 init_params="stmc", implementation="log", n_init=1, on_decrease="warn",
                 **aliases):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
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

    def _check_settings(self):
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_scalar(self.reg_covar, "reg_covar", low=0.0)
        if self.min_covar is not None:
            check_scalar(self.min_covar, "min_covar", low=0.0)
        check_scalar(self.covars_weight, "covars_weight", low=0.0)
        for name in ("means_prior", "means_weight", "covars_prior"):
            value = getattr(self, name)
            arr = (np.asarray(value, dtype=np.float64)
                   if not isinstance(value, (bool, np.bool_, str)) else np.array(np.nan))
            if arr.dtype == object or not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite numbers; got {value!r}.")
            if name == "means_weight" and np.any(arr < 0):
                raise ValueError(f"means_weight must be >= 0; got {value!r}.")
        return super()._check_settings()

    # ----------------------------------------------------------------------- hmmlearn's covars_

    @property
    def covars_(self):
        """hmmlearn's view of the covariances: always full matrices, (n_components, d, d).

        As hmmlearn's getter, whatever ``covariance_type``; a copy, so change it
        through assignment. The setter takes the shape of ``covariance_type``
        ((K,) 'spherical', (K, d) 'diag', (K, d, d) 'full', (d, d) 'tied'),
        as hmmlearn's, and stores it in ``covariances_``.
        """
        if "covariances_" not in self.__dict__:
            raise AttributeError(f"covars_ is not set: fit the {type(self).__name__}, or set "
                                 f"covars_ (or covariances_) first.")
        cov = np.asarray(self.covariances_, dtype=np.float64)
        k = self.n_components
        if self.covariance_type == "spherical":
            d = np.shape(self.means_)[1] if hasattr(self, "means_") else 1
        else:
            d = cov.shape[-1]
        return np.array(MODELS[self.covariance_type].as_full(cov, k, d), dtype=np.float64,
                        copy=True)

    @covars_.setter
    def covars_(self, covars):
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        cov = np.array(covars, dtype=np.float64, copy=True)
        k, ct = self.n_components, self.covariance_type
        ndim = {"spherical": 1, "diag": 2, "full": 3, "tied": 2}[ct]
        if cov.ndim != ndim or (ct != "tied" and cov.shape[0] != k) or (
                ct in ("full", "tied") and cov.shape[-1] != cov.shape[-2]):
            expected = {"spherical": "(n_components,)", "diag": "(n_components, n_features)",
                        "full": "(n_components, n_features, n_features)",
                        "tied": "(n_features, n_features)"}[ct]
            raise ValueError(f"covars_ must have shape {expected} for covariance_type={ct!r} "
                             f"(n_components={k}); got {cov.shape}.")
        if not np.all(np.isfinite(cov)):
            raise ValueError("covars_ contains NaN or infinite values.")
        if ct in ("spherical", "diag"):
            if np.any(cov <= 0):
                raise ValueError(f"{ct!r} covars_ must be positive.")
        else:
            for c in cov.reshape((-1,) + cov.shape[-2:]):
                if not np.allclose(c, c.T) or np.linalg.eigvalsh(c)[0] <= 0:
                    raise ValueError(f"{ct!r} covars_ must be symmetric, positive-definite.")
        self.covariances_ = cov

    # ----------------------------------------------------------------------- hmmlearn's prior

    def _has_prior(self):
        """Whether hmmlearn's normal / inverse-gamma / inverse-Wishart prior is not flat."""
        weight, covars = self.means_weight, self.covars_prior
        if isinstance(weight, (int, float)) and isinstance(covars, (int, float)):  # scalars
            return weight != 0 or covars != 0 or float(self.covars_weight) != 1.0
        return bool(np.any(np.asarray(weight) != 0) or np.any(np.asarray(covars) != 0)
                    or float(self.covars_weight) != 1.0)

    def _gaussian_prior(self, k, d):
        """``(m0 (K, d), w (K,), psi, c0)``: the prior's mean, mean weight, scale and extra counts.

        ``psi`` is shaped per state as hmmlearn's M-step adds it: (K, d, d)
        'full', (d, d) 'tied', (K, d) 'diag' and 'spherical'. ``c0`` is
        ``max(covars_weight - d, 0)`` ('full', 'tied') or ``max(covars_weight
        - 1, 0)`` ('diag', 'spherical').
        """
        ct = self.covariance_type

        def shaped(value, name, shape):
            try:
                return np.broadcast_to(np.asarray(value, dtype=np.float64), shape)
            except ValueError:
                raise ValueError(f"{name} must be a scalar or broadcast to shape {shape}; got "
                                 f"shape {np.shape(value)}.") from None

        m0 = shaped(self.means_prior, "means_prior", (k, d))
        w = shaped(self.means_weight, "means_weight", (k,))
        psi = shaped(self.covars_prior, "covars_prior",
                     {"full": (k, d, d), "tied": (d, d)}.get(ct, (k, d)))
        if ct in ("diag", "spherical") and np.any(psi < 0):
            raise ValueError(f"covars_prior must be >= 0 for covariance_type={ct!r}.")
        c0 = max(float(self.covars_weight) - (d if ct in ("full", "tied") else 1), 0.0)
        return m0, w, psi, c0

    def _check_X(self, X, fitting):
        n_features = None if fitting else self._n_features()
        X = check_array(X, estimator=type(self).__name__, n_features=n_features)
        if fitting:
            check_scale(X)
        return X

    def _moments_needed(self):
        return "full" if "c" in self.init_params else None

    def _n_features(self):
        return np.shape(self.means_)[1] if hasattr(self, "means_") else None

    def _emission(self, means, covariances):
        k = self.n_components
        means = np.asarray(means, dtype=np.float64)
        if means.ndim != 2 or means.shape[0] != k:
            raise ValueError(f"means_ must have shape (n_components={k}, n_features); got "
                             f"{means.shape}.")
        if not np.all(np.isfinite(means)):
            raise ValueError("means_ contains NaN or infinite values.")
        cov = np.asarray(covariances, dtype=np.float64)
        shape = MODELS[self.covariance_type].shape(k, means.shape[1])
        if cov.shape != shape:
            raise ValueError(f"covariances_ must have shape {shape} for covariance_type="
                             f"{self.covariance_type!r}; got {cov.shape}.")
        if not np.all(np.isfinite(cov)):
            raise ValueError("covariances_ contains NaN or infinite values.")
        return mixture.MixtureParams(np.full(k, 1.0 / k), means, cov,
                                     covariance_type=self.covariance_type)

    def _emission_from_attributes(self):
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        return self._emission(self.means_, self.covariances_)

    def _init_emission(self, X, rng, summary=None):
        k, (n, d) = self.n_components, _data_shape(X)
        if "m" in self.init_params and isinstance(X, ChunkedData):
            # as GaussianMixture on a Dask array: k-means++ on a sample, then Lloyd on every chunk
            size = max(mixture.INIT_SAMPLE_MIN, mixture.INIT_SAMPLE_ROWS * k)
            centers = kmeans_plusplus(X.sample_rows(size, rng), k, rng)[0]
            means = lloyd_chunked(_RowsOnly(X), centers, max_iter=300, tol=1e-4)[0]
        elif "m" in self.init_params:
            km = KMeans(n_clusters=k, n_init=1, random_state=rng).fit(X)
            # with known states, number the clusters as the states they hold most of
            mapping = mixture.label_permutation(km.labels_, getattr(self, "_fit_labels", None), k)
            means = np.empty_like(km.cluster_centers_)
            means[mapping] = km.cluster_centers_
        else:
            means = self._given("means_", "m")
        if "c" in self.init_params:
            # the data's covariance (unbiased, as numpy.cov) from the summary's moments
            cv = summary.moments.second[0] / (n - 1) if n > 1 else np.zeros((d, d))
            floor = self.reg_covar if self.min_covar is None else self.min_covar
            cv = cv + floor * np.eye(d)
            cov = {"full": np.broadcast_to(cv, (k, d, d)).copy(), "tied": cv,
                   "diag": np.tile(np.diag(cv), (k, 1)),
                   "spherical": np.full(k, np.mean(np.diag(cv)))}[self.covariance_type]
        else:
            cov = self._given("covariances_", "c")
        emission = self._emission(means, cov)
        if emission.means.shape[1] != d:
            raise ValueError(f"means_ has {emission.means.shape[1]} features, but X has {d}.")
        return emission

    def _set_emission(self, emission):
        self.means_ = emission.means
        self.covariances_ = emission.covariances
        self.precisions_cholesky_ = emission.precisions_cholesky

    def _log_emission(self, X, emission):
        return emission.model.log_gaussian(X, emission.means, emission.precisions_cholesky)

    def _emission_statistics(self, X, gamma, emission):
        """The centred :class:`~emlab.mixture.GaussianStatistics` of X weighted by ``gamma``.

        Accumulated about the current means (as a Gaussian mixture's M-step);
        chunks' statistics add by the pairwise update.
        """
        if "m" not in self.params and "c" not in self.params:
            return SufficientStatistics(0.0, X.shape[0])
        nk, means, second = mixture.sufficient_statistics(X, gamma, emission.means,
                                                          self.covariance_type)
        return mixture.GaussianStatistics(0.0, X.shape[0], nk=nk, means=means, second=second)

    def _emission_from_statistics(self, stats, emission):
        """The emission M-step: a Gaussian mixture's, for the letters in ``params``.

        Returns the new emission parameters and the Q deficit ``reg_covar`` causes.
        """
        learn_m, learn_c = "m" in self.params, "c" in self.params
        if not (learn_m or learn_c):
            return emission, 0.0
        if self._has_prior():
            return self._map_emission(stats, emission)
        ct = self.covariance_type
        nk, means, second = stats.nk, stats.means, stats.second
        if learn_m and learn_c:
            step = mixture.params_from_statistics(nk, means, second, self.reg_covar, ct, emission)
            return step.params, step.ridge_deficit
        if learn_m:  # covariances fixed: the weighted means maximise Q
            empty = nk <= 10 * np.finfo(np.float64).eps * max(nk.sum(), 1.0)
            means = np.where(empty[:, None], emission.means, means)
            return mixture.MixtureParams(emission.weights, means, emission.covariances,
                                         emission.precisions_cholesky, ct), 0.0
        # means fixed: second moments about them, not about the weighted means
        model = MODELS[ct]
        second = model.add_outer(second, means - emission.means, nk)
        step = mixture.params_from_statistics(nk, emission.means, second, self.reg_covar, ct,
                                              emission)
        return mixture.MixtureParams(emission.weights, emission.means, step.params.covariances,
                                     step.params.precisions_cholesky, ct), step.ridge_deficit

    def _map_emission(self, stats, emission):
        """hmmlearn's MAP M-step (its ``GaussianHMM._do_mstep``), plus ``reg_covar``.

        Means ``(w m0 + sum_t gamma_tk x_t) / (w + N_k)``; covariances ``(psi +
        S_k + w (mu_k - m0)(mu_k - m0)^T) / (N_k + c0)`` with ``S_k`` the
        scatter about the new means (summed over states, with ``psi`` once, for
        'tied'; per feature, then averaged over features, for 'diag' and
        'spherical'). These jointly maximise Q plus :meth:`_log_emission_prior`,
        so EM stays monotone in the objective. A state without posterior mass
        and without prior counts keeps its parameters (hmmlearn divides by
        ``max(N_k + c0, 1e-5)`` for 'diag' and 'spherical', and by zero otherwise).
        Returns the parameters and the Q deficit of ``reg_covar``.
        """
        ct, model = self.covariance_type, MODELS[self.covariance_type]
        learn_m, learn_c = "m" in self.params, "c" in self.params
        nk, xbar, second = stats.nk, stats.means, stats.second
        k, d = xbar.shape
        m0, w, psi, c0 = self._gaussian_prior(k, d)
        tiny = 10 * np.finfo(np.float64).eps * max(nk.sum(), 1.0)
        means = emission.means
        if learn_m:
            den = nk + w
            fresh = den > tiny
            safe = np.where(fresh, den, 1.0)[:, None]
            means = np.where(fresh[:, None], (w[:, None] * m0 + nk[:, None] * xbar) / safe, means)
        if not learn_c:
            return mixture.MixtureParams(emission.weights, means, emission.covariances,
                                         emission.precisions_cholesky, ct), 0.0
        scatter = model.add_outer(second, xbar - means, nk)  # about the new means
        scatter = model.add_outer(scatter, means - m0, w)  # the mean prior's share
        if ct == "tied":
            counts, second = nk + c0 / k, scatter + psi / k  # summed over states by the model
            live = np.arange(k)
            if counts.sum() <= tiny:
                return mixture.MixtureParams(emission.weights, means, emission.covariances,
                                             emission.precisions_cholesky, ct), 0.0
        else:
            counts, second = nk + c0, scatter + psi
            live = np.flatnonzero(counts > tiny)
        covariances, deficit = model.covariances(counts, second, self.reg_covar, live,
                                                 emission.covariances)
        out = mixture.MixtureParams(emission.weights, means, covariances, covariance_type=ct)
        return out, deficit

    def _log_emission_prior(self, emission):
        """The log-density (no constants) of hmmlearn's prior, whose MAP is :meth:`_map_emission`.

        Per state, ``-w/2 (mu - m0)^T Sigma^-1 (mu - m0) - c0/2 log|Sigma| -
        1/2 tr(psi Sigma^-1)`` ('tied': the last two terms once; 'diag' per
        feature; 'spherical' with ``d c0`` and the sum of ``psi`` over
        features): a normal prior on each mean with covariance ``Sigma / w``
        (without its ``log|Sigma|`` term, as hmmlearn's update implies) and an
        inverse-Wishart (inverse-gamma) on the covariances. 0 without a prior.
        """
        if not self._has_prior():
            return 0.0
        ct = self.covariance_type
        k, d = emission.means.shape
        m0, w, psi, c0 = self._gaussian_prior(k, d)
        diff = emission.means - m0
        cov, pc = np.asarray(emission.covariances), np.asarray(emission.precisions_cholesky)
        if ct in ("diag", "spherical"):
            var = cov if ct == "diag" else np.broadcast_to(cov[:, None], (k, d))
            return float(np.sum(-0.5 * w[:, None] * diff**2 / var - 0.5 * c0 * np.log(var)
                                - 0.5 * psi / var))
        pcs = pc if ct == "full" else np.broadcast_to(pc, (k, d, d))
        psis = psi if ct == "full" else psi[None]
        total = 0.0
        for j in range(k):
            total -= 0.5 * w[j] * float(np.sum((diff[j] @ pcs[j]) ** 2))
        for j in range(k if ct == "full" else 1):
            log_det = -2.0 * float(np.sum(np.log(np.diag(pcs[j]))))
            total -= 0.5 * c0 * log_det + 0.5 * float(np.sum((psis[j] @ pcs[j]) * pcs[j]))
        return total

    def _n_emission_parameters(self):
        k, d = np.shape(self.means_)
        n = k * d if "m" in self.params else 0
        return n + (MODELS[self.covariance_type].n_parameters(k, d) if "c" in self.params else 0)

    def _sample_emission(self, emission, states, rng):
        k, d = emission.means.shape
        chol = np.linalg.cholesky(emission.full_covariances())
        X = np.empty((states.shape[0], d))
        for j in range(k):
            rows = np.flatnonzero(states == j)
            X[rows] = emission.means[j] + rng.standard_normal((rows.size, d)) @ chol[j].T
        return X


# --------------------------------------------------------------------------- categorical emissions


#: counts above this are not exact integers in float64
MAX_EXACT_COUNT = float(2**53)
#: symbols counted from the data may be at most this many per row (or MIN_SYMBOL_LIMIT)
SYMBOLS_PER_ROW = 10
MIN_SYMBOL_LIMIT = 2**16


def _check_integers(X, name, what):
    """X (float64) must hold integers; a ValueError naming ``name`` otherwise (block by block)."""
    for rows in _row_blocks(X.shape[0], X.shape[1]):
        block = X[rows]
        bad = np.flatnonzero((block != np.round(block)).any(axis=1))
        if bad.size:
            row = rows.start + int(bad[0])
            raise ValueError(f"{name} must hold {what}; row {row} has {X[row].tolist()}.")


class CategoricalHMM(BaseHMM):
    __doc__ = _doc("""Hidden Markov model with categorical emissions (symbols 0, ..., n_features - 1).

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states. ``n_components``, ``startprob_prior`` and
        ``transmat_prior`` may be given by position, as in hmmlearn; the rest
        are keyword-only.
    n_features : int, optional
        Number of symbols. Default: from ``emissionprob_`` if set before fit,
        else the largest symbol in X plus one.
    emissionprob_prior : float or array-like, default=1.0
        Dirichlet concentration (>= 1) of each state's emission probabilities.
    %(common)s
    params : str, default='ste'
        The parameters fit updates: 's' ``startprob_``, 't' ``transmat_``, 'e' ``emissionprob_``.
    init_params : str, default='ste'
        The parameters fit initialises (uniform ``startprob_`` and ``transmat_``,
        random ``emissionprob_``, as hmmlearn). A letter left out means the
        attribute set before fit is the start.

    Attributes
    ----------
    emissionprob_ : ndarray of shape (n_components, n_features)
        ``emissionprob_[k, s] = p(x_t = s | z_t = k)``. Its zeros stay zero in fit.
    n_features_ : int
        Number of symbols.
    %(attributes)s

    Notes
    -----
    X has shape (n_samples, 1) and holds integer symbols (hmmlearn's
    ``CategoricalHMM``).
    %(notes)s

    Examples
    --------
    Wikipedia's Viterbi example (states Healthy, Fever; observations normal,
    cold, dizzy):

    >>> import numpy as np
    >>> from emlab import CategoricalHMM
    >>> model = CategoricalHMM(2)
    >>> model.startprob_ = np.array([0.6, 0.4])
    >>> model.transmat_ = np.array([[0.7, 0.3], [0.4, 0.6]])
    >>> model.emissionprob_ = np.array([[0.5, 0.4, 0.1], [0.1, 0.3, 0.6]])
    >>> logprob, states = model.decode(np.array([[0], [1], [2]]))
    >>> states.tolist(), round(float(np.exp(logprob)), 5)
    ([0, 0, 1], 0.01512)
    """)

    _emission_letters = "e"
    _emission_attributes = ("emissionprob_",)
    _value_kind = ("integer symbols", "symbols >= 0")

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0, *,
                 emissionprob_prior=1.0, n_features=None, algorithm="viterbi", random_state=None,
                 max_iter=DEFAULT_MAX_ITER, tol=1e-3, verbose=0, params="ste", init_params="ste",
                 implementation="log", n_init=1, on_decrease="warn", **aliases):
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features
        self.algorithm = algorithm
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.on_decrease = on_decrease
        self._take_aliases(aliases)

    def _symbols(self, largest=None):
        """The number of symbols: n_features, else emissionprob_'s, else the largest symbol + 1.

        ``largest`` is the largest symbol in the data when fitting, None otherwise.
        """
        if self.n_features is not None:
            return check_int(self.n_features, "n_features", low=1)
        if hasattr(self, "emissionprob_") and ("e" not in self.init_params or largest is None):
            return int(np.shape(self.emissionprob_)[-1])
        if largest is None:
            raise NotFittedError("n_features is unknown: set n_features or emissionprob_, or fit.")
        return int(largest) + 1

    def _check_features(self, n_features):
        if n_features != 1:
            raise ValueError(f"X must have shape (n_samples, 1): one integer symbol per row; got "
                             f"{n_features} columns.")

    def _check_values(self, X, name):
        _check_integers(X, name, "integer symbols")
        if X.min() < 0:
            raise ValueError(f"{name} must hold symbols >= 0; row {int(np.argmin(X[:, 0]))} has "
                             f"{X.min():g}.")

    def _check_symbol_count(self, largest, n_rows):
        """Symbols counted from the data (no ``n_features``) are bounded by what the data need."""
        if self.n_features is not None or (hasattr(self, "emissionprob_")
                                           and "e" not in self.init_params):
            return
        limit = max(SYMBOLS_PER_ROW * n_rows, MIN_SYMBOL_LIMIT)
        if largest + 1 > limit:
            raise ValueError(
                f"X holds symbol {largest:.6g} in {n_rows} rows: the number of symbols "
                f"(n_features) would be the largest symbol + 1, mostly unused symbols, whose "
                f"emission probabilities take K x n_features floats. Re-code the symbols as 0, 1, "
                f"... (np.unique(X, return_inverse=True)[1]), or set n_features."
            )

    def _check_X(self, X, fitting):
        X = check_array(X)
        self._check_features(X.shape[1])
        self._check_values(X, "X")
        largest = X.max()
        if fitting:
            self._check_symbol_count(largest, X.shape[0])
        m = self._symbols(largest if fitting else None)
        if largest >= m:
            raise ValueError(f"X holds symbol {largest:g} (row {int(np.argmax(X[:, 0]))}), out of "
                             f"range for n_features={m} symbols (0 to {m - 1}).")
        if fitting:
            self._fit_symbols = m
        return X

    def _check_scan(self, stats, data):
        super()._check_scan(stats, data)
        largest = float(stats.max[0])
        self._check_symbol_count(largest, data.n_samples)
        m = self._symbols(largest)
        if largest >= m:
            raise ValueError(f"X holds symbol {largest:g}, out of range for n_features={m} symbols "
                             f"(0 to {m - 1}).")
        self._fit_symbols = m

    def _emission_from_attributes(self):
        k = self.n_components
        m = np.shape(self.emissionprob_)[-1] if np.ndim(self.emissionprob_) == 2 else None
        if self.n_features is not None:
            m = check_int(self.n_features, "n_features", low=1)
        return check_probabilities(self.emissionprob_, "emissionprob_", (k, m))

    def _init_emission(self, X, rng, summary=None):
        k, m = self.n_components, self._fit_symbols
        if "e" in self.init_params:
            e = rng.random((k, m))
            return e / e.sum(axis=1, keepdims=True)
        return check_probabilities(self._given("emissionprob_", "e"), "emissionprob_", (k, m))

    def _set_emission(self, emission):
        self.emissionprob_ = emission
        self.n_features_ = emission.shape[1]

    def _log_emission(self, X, emission):
        with np.errstate(divide="ignore"):
            log_e = np.ascontiguousarray(np.log(emission.T))  # (M, K)
        out = np.empty((X.shape[0], emission.shape[0]))
        with _config.threads_for(out.size):
            categorical_log_emission(X, log_e, _config.CHUNK_ROWS, out)
        return out

    _symbol_tables = True

    def _emission_tables(self, emission):
        """The forward-backward reads each step's scaled emissions from per-symbol tables
        through the step's symbol: no exponentials, no (n, K) array (``emission_tables``;
        None where a symbol's probabilities span more than exp(708), and the pre-pass from
        the log-emissions then finds that loss itself)."""
        return emission_tables(emission)

    def _prior(self, emission):
        return check_prior(self.emissionprob_prior, "emissionprob_prior", emission.shape)

    def _emission_statistics(self, X, gamma, emission):
        """``counts`` (K, M): the posterior mass of each state on each symbol."""
        if "e" not in self.params:
            return SufficientStatistics(0.0, X.shape[0])
        k, m = emission.shape
        counts = np.empty((k, m))
        with _config.threads_for(gamma.size):
            categorical_emission_counts(X, np.ascontiguousarray(gamma),
                                        _config.n_blocks(X.shape[0], k * m), _config.CHUNK_ROWS,
                                        counts)
        return self._emission_statistics_from_counts(X, counts)

    def _emission_counts(self, emission):
        """The forward-backward counts the symbols itself, as it makes gamma (see its
        ``counts``); nothing to count where the emissions are not learnt."""
        return np.empty(emission.shape) if "e" in self.params else None

    def _emission_statistics_from_counts(self, X, counts):
        return SufficientStatistics(0.0, X.shape[0], counts=counts)

    def _emission_from_statistics(self, stats, emission):
        if "e" not in self.params:
            return emission, 0.0
        return dirichlet_map(stats.counts, self._prior(emission), emission), 0.0

    def _log_emission_prior(self, emission):
        return log_dirichlet(emission, self._prior(emission))

    def _n_emission_parameters(self):
        k, m = np.shape(self.emissionprob_)
        return k * (m - 1) if "e" in self.params else 0

    def _sample_emission(self, emission, states, rng):
        cum = np.cumsum(emission, axis=1)
        cum /= cum[:, -1:]
        u = rng.random(states.shape[0])
        rows = cum[states]
        return (rows <= u[:, None]).sum(axis=1).reshape(-1, 1).astype(np.int64)


def _check_counts(X, name):
    """X (float64) must hold non-negative integer counts; a ValueError naming ``name`` otherwise."""
    _check_integers(X, name, "integer counts")
    if X.min() < 0:
        row = int(np.flatnonzero((X < 0).any(axis=1))[0])
        raise ValueError(f"{name} must hold non-negative counts; row {row} has {X[row].tolist()}.")
    largest = X.max()
    if largest > MAX_EXACT_COUNT:
        row = int(np.flatnonzero((X > MAX_EXACT_COUNT).any(axis=1))[0])
        raise ValueError(
            f"{name} holds a count of {largest:.6g} (row {row}), above 2**53 = {MAX_EXACT_COUNT:.4g}: "
            f"float64 cannot tell such counts apart, and their log-likelihood terms overflow. "
            f"The scale of the counts is the problem: count in larger units, or model "
            f"log-counts with a Gaussian HMM."
        )


def _check_count_array(model, X, fitting, attribute):
    """X checked as counts; after fit, with as many features as ``attribute`` has columns."""
    n_features = None
    if not fitting and hasattr(model, attribute):
        n_features = np.shape(getattr(model, attribute))[-1]
    X = check_array(X, estimator=type(model).__name__, n_features=n_features)
    _check_counts(X, "X")
    return X


# --------------------------------------------------------------------------- multinomial emissions


class MultinomialHMM(BaseHMM):
    __doc__ = _doc("""Hidden Markov model with multinomial emissions (counts of symbols per row).

    Each row of X holds the counts of ``n_features`` symbols in ``n_trials``
    draws from the current state's ``emissionprob_`` (hmmlearn 0.3's
    ``MultinomialHMM``, which follows the standard multinomial; a
    :class:`CategoricalHMM` is the case of one trial, coded by the symbol).

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    n_trials : None, int or array-like of int, default=None
        The number of draws of each row: one number for all rows, or one per
        row. None: each row's total, whatever it is. When given, every row
        must add up to it (checked for data in memory). :meth:`sample` needs
        one number.
    emissionprob_prior : float or array-like, default=1.0
        Dirichlet concentration (>= 1) of each state's emission
        probabilities (1: none, as hmmlearn).
    %(common)s
    params : str, default='ste'
        The parameters fit updates: 's' ``startprob_``, 't' ``transmat_``, 'e' ``emissionprob_``.
    init_params : str, default='ste'
        The parameters fit initialises (uniform ``startprob_`` and
        ``transmat_``, random ``emissionprob_``, as hmmlearn).

    Attributes
    ----------
    emissionprob_ : ndarray of shape (n_components, n_features)
        The probability of each symbol in each state. Its zeros stay zero in fit.
    %(attributes)s

    Notes
    -----
    The log-emission of a row is
    ``log n! - sum_s log x_s! + sum_s x_s log p_ks``; the M-step is
    ``p_ks`` proportional to ``sum_t gamma_tk x_ts`` (plus ``prior - 1``).
    %(notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from emlab import MultinomialHMM
    >>> truth = MultinomialHMM(2, n_trials=20, init_params="")
    >>> truth.startprob_ = np.array([0.5, 0.5])
    >>> truth.transmat_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> truth.emissionprob_ = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    >>> X, states = truth.sample(500, random_state=0)
    >>> model = MultinomialHMM(2, n_trials=20, random_state=0).fit(X)
    >>> sorted(np.round(model.emissionprob_[:, 0], 1).tolist())
    [0.1, 0.7]
    """)

    _emission_letters = "e"
    _emission_attributes = ("emissionprob_",)
    _value_kind = ("integer counts", "non-negative counts")

    def __init__(self, n_components=1, n_trials=None, startprob_prior=1.0, transmat_prior=1.0,
                 algorithm="viterbi", random_state=None, *, emissionprob_prior=1.0,
                 max_iter=DEFAULT_MAX_ITER, tol=1e-3, verbose=0, params="ste", init_params="ste",
                 implementation="log", n_init=1, on_decrease="warn", **aliases):
        self.n_components = n_components
        self.n_trials = n_trials
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.emissionprob_prior = emissionprob_prior
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.on_decrease = on_decrease
        self._take_aliases(aliases)

    def _check_X(self, X, fitting):
        X = _check_count_array(self, X, fitting, "emissionprob_")
        if self.n_trials is not None:
            trials = np.asarray(self.n_trials)
            if trials.ndim not in (0, 1) or (trials.ndim == 1 and trials.shape != (X.shape[0],)):
                raise ValueError(f"n_trials must be one number or one per row of X ({X.shape[0]}); "
                                 f"got shape {trials.shape}.")
            bad = np.flatnonzero(X.sum(axis=1) != trials)
            if bad.size:
                want = trials if trials.ndim == 0 else trials[bad[0]]
                raise ValueError(f"every row of X must add up to n_trials; row {bad[0]} adds up to "
                                 f"{X[bad[0]].sum():g}, not {want}.")
        return X

    def _check_values(self, X, name):
        _check_counts(X, name)

    def _emission_from_attributes(self):
        k = self.n_components
        m = np.shape(self.emissionprob_)[-1] if np.ndim(self.emissionprob_) == 2 else None
        return check_probabilities(self.emissionprob_, "emissionprob_", (k, m))

    def _init_emission(self, X, rng, summary=None):
        k, m = self.n_components, _data_shape(X)[1]
        if "e" in self.init_params:
            e = rng.random((k, m))
            return e / e.sum(axis=1, keepdims=True)
        return check_probabilities(self._given("emissionprob_", "e"), "emissionprob_", (k, m))

    def _set_emission(self, emission):
        self.emissionprob_ = emission

    def _log_emission(self, X, emission):
        k = emission.shape[0]
        out = np.empty((X.shape[0], k))
        for rows in _row_blocks(X.shape[0], 2 * X.shape[1]):  # temporaries of a block only
            block = X[rows]
            const = gammaln(block.sum(axis=1) + 1.0) - gammaln(block + 1.0).sum(axis=1)
            for j in range(k):
                out[rows, j] = const + xlogy(block, emission[j]).sum(axis=1)
        return out

    def _prior(self, emission):
        return check_prior(self.emissionprob_prior, "emissionprob_prior", emission.shape)

    def _emission_statistics(self, X, gamma, emission):
        """``counts`` (K, M) = gamma^T X: the expected count of each symbol in each state."""
        if "e" not in self.params:
            return SufficientStatistics(0.0, X.shape[0])
        return SufficientStatistics(0.0, X.shape[0], counts=gamma.T @ X)

    def _emission_from_statistics(self, stats, emission):
        if "e" not in self.params:
            return emission, 0.0
        return dirichlet_map(stats.counts, self._prior(emission), emission), 0.0

    def _log_emission_prior(self, emission):
        return log_dirichlet(emission, self._prior(emission))

    def _n_emission_parameters(self):
        k, m = np.shape(self.emissionprob_)
        return k * (m - 1) if "e" in self.params else 0

    def _sample_emission(self, emission, states, rng):
        trials = np.unique(np.asarray(self.n_trials if self.n_trials is not None else np.nan))
        if trials.size != 1 or not np.isfinite(trials[0]):
            raise ValueError("sample needs one number of trials: set n_trials to an integer.")
        n = int(trials[0])
        return np.array([rng.multinomial(n, emission[s]) for s in states], dtype=np.int64)


# --------------------------------------------------------------------------- Poisson emissions


class PoissonHMM(BaseHMM):
    __doc__ = _doc("""Hidden Markov model with independent Poisson emissions (counts).

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states. The arguments up to ``random_state`` may be
        given by position in hmmlearn's order (``n_components,
        startprob_prior, transmat_prior, lambdas_prior, lambdas_weight,
        algorithm, random_state``); the rest are keyword-only.
    lambdas_prior, lambdas_weight : float or array-like, default=0.0
        A gamma prior on each rate, ``lambda^lambdas_prior exp(-lambdas_weight
        lambda)`` (hmmlearn's parametrisation): the M-step is
        ``(lambdas_prior + sum_t gamma_tk x_t) / (lambdas_weight + sum_t gamma_tk)``,
        its exact maximiser. hmmlearn 0.3.3 weighs the data mean of state k
        by the posterior mass of **all** states instead of ``sum_t
        gamma_tk``, so with a non-zero prior the two differ (by design).
    %(common)s
    params : str, default='stl'
        The parameters fit updates: 's' ``startprob_``, 't' ``transmat_``, 'l' ``lambdas_``.
    init_params : str, default='stl'
        The parameters fit initialises (uniform ``startprob_`` and ``transmat_``;
        ``lambdas_`` drawn from a gamma distribution with the data's mean and
        variance, as hmmlearn). A letter left out means the attribute set
        before fit is the start.

    Attributes
    ----------
    lambdas_ : ndarray of shape (n_components, n_features)
        The Poisson rate of each feature in each state.
    %(attributes)s

    Notes
    -----
    X holds non-negative integer counts, shape (n_samples, n_features).
    %(notes)s

    Examples
    --------
    >>> import numpy as np
    >>> from emlab import PoissonHMM
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.poisson(2, (200, 1)), rng.poisson(20, (200, 1))])
    >>> model = PoissonHMM(2, random_state=0).fit(X)
    >>> sorted(np.round(model.lambdas_[:, 0]).tolist())
    [2.0, 20.0]
    """)

    _emission_letters = "l"
    _emission_attributes = ("lambdas_",)
    _value_kind = ("integer counts", "non-negative counts")

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0,
                 lambdas_prior=0.0, lambdas_weight=0.0, algorithm="viterbi", random_state=None,
                 *, max_iter=DEFAULT_MAX_ITER, tol=1e-3, verbose=0, params="stl",
                 init_params="stl", implementation="log", n_init=1, on_decrease="warn",
                 **aliases):
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight
        self.algorithm = algorithm
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.on_decrease = on_decrease
        self._take_aliases(aliases)

    def _check_X(self, X, fitting):
        return _check_count_array(self, X, fitting, "lambdas_")

    def _check_values(self, X, name):
        _check_counts(X, name)

    def _moments_needed(self):
        return "diag" if "l" in self.init_params else None

    def _rate_prior(self, shape):
        out = []
        for name in ("lambdas_prior", "lambdas_weight"):
            value = getattr(self, name)
            arr = np.asarray(value, dtype=np.float64) if not isinstance(value, (bool, np.bool_)) \
                else np.array(np.nan)
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"{name} must be finite and >= 0; got {value!r}.")
            try:
                out.append(np.broadcast_to(arr, shape))
            except ValueError:
                raise ValueError(f"{name} must broadcast to shape {shape}.") from None
        return out

    def _check_lambdas(self, lambdas, d=None):
        k = self.n_components
        lam = np.array(lambdas, dtype=np.float64)
        if lam.ndim != 2 or lam.shape[0] != k or (d is not None and lam.shape[1] != d):
            raise ValueError(f"lambdas_ must have shape (n_components={k}, n_features"
                             f"{'' if d is None else '=' + str(d)}); got {lam.shape}.")
        if not np.all(np.isfinite(lam)) or np.any(lam < 0):
            raise ValueError("lambdas_ must hold finite non-negative rates.")
        return lam

    def _emission_from_attributes(self):
        return self._check_lambdas(self.lambdas_)

    def _init_emission(self, X, rng, summary=None):
        k, (n, d) = self.n_components, _data_shape(X)
        if "l" not in self.init_params:
            return self._check_lambdas(self._given("lambdas_", "l"), d)
        mean = summary.moments.means[0]
        var = summary.moments.second[0] / n
        lam = np.empty((k, d))
        for j in range(d):
            if mean[j] > 0 and var[j] > 0:
                lam[:, j] = rng.gamma(shape=mean[j] ** 2 / var[j], scale=var[j] / mean[j], size=k)
            else:
                lam[:, j] = mean[j]
        return lam

    def _set_emission(self, emission):
        self.lambdas_ = emission

    def _log_emission(self, X, emission):
        # the Poisson family's Numba kernel (emlab.families.Poisson): one pass, no temporaries
        return Poisson().log_prob(np.ascontiguousarray(X, dtype=np.float64), {"rates": emission})

    def _emission_statistics(self, X, gamma, emission):
        """``nk`` (K,), the posterior mass of each state, and ``sums`` (K, d) = gamma^T X."""
        if "l" not in self.params:
            return SufficientStatistics(0.0, X.shape[0])
        stats = sums_statistics(np.ascontiguousarray(X, dtype=np.float64), gamma)
        return SufficientStatistics(0.0, X.shape[0], **stats.arrays)

    def _emission_from_statistics(self, stats, emission):
        if "l" not in self.params:
            return emission, 0.0
        a, b = self._rate_prior(emission.shape)
        num = a + stats.sums
        den = b + stats.nk[:, None]
        safe = np.where(den > 0, den, 1.0)
        return np.where(den > 0, num / safe, emission), 0.0

    def _log_emission_prior(self, emission):
        a, b = self._rate_prior(emission.shape)
        return float(np.sum(xlogy(a, emission) - b * emission))

    def _n_emission_parameters(self):
        return int(np.size(self.lambdas_)) if "l" in self.params else 0

    def _sample_emission(self, emission, states, rng):
        return rng.poisson(emission[states])


__all__ = ["GaussianHMM", "CategoricalHMM", "MultinomialHMM", "PoissonHMM", "BaseHMM", "HMMParams",
           "ConvergenceMonitor"]
