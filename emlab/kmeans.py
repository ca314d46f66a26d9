"""k-means (Lloyd's algorithm) with k-means++ seeding."""

import math
import warnings

import numpy as np

from . import _config
from ._base import ParamsMixin
from ._kernels.kmeans import assign_accumulate, assign_accumulate_serial
from ._validation import (
    check_array,
    check_int,
    check_is_fitted,
    check_option,
    check_random_state,
    check_scalar,
    check_scale,
    input_dtype,
)
from ._dask import DaskData, is_dask_array, map_rows
from .em import SufficientStatistics
from .exceptions import ConvergenceWarning


def distinct_rows(X):
    """X's distinct rows in lexicographic order, as ``np.unique(X, axis=0)`` returns them.

    ``np.unique(X, axis=0)`` sorts the rows as records, comparing them field by
    field: 0.6 s for a million rows of two features, 0.7-1.3 s at eight
    (measured, this project's Intel machine), paid by every random start
    (``init='random'``, ``init_params='random_from_data'``). Floating-point
    rows here are sorted as byte strings instead: each value is mapped to a
    64-bit key whose big-endian bytes order as the values do (the sign bit
    flipped for a positive value, every bit for a negative one; ``-0.0`` is
    first made ``+0.0``, which equals it), so one sort of fixed-width strings
    does what the record sort did, about 2-3x faster. The rows returned are
    X's own (the first of each run of equal ones, in X's dtype). Rows must not
    hold NaN (NaN equals no value, the keys would make equal NaN rows one);
    integer and other dtypes go to ``np.unique`` itself.
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.dtype.kind != "f" or X.dtype.itemsize > 8:
        return np.unique(X, axis=0)
    bits = (np.ascontiguousarray(X, dtype=np.float64) + 0.0).view(np.uint64)
    keys = np.where(bits >> np.uint64(63) == 1, ~bits, bits | np.uint64(1 << 63))
    strings = keys.astype(">u8").view(np.dtype((np.void, 8 * X.shape[1]))).ravel()
    first = np.unique(strings, return_index=True)[1]
    return X[first]


def _assign(X, centers, labels=None):
    """One Lloyd assignment pass over X.

    Returns the labels, squared distances, cluster counts and sums, and how
    many labels differ from ``labels`` (updated in place when given).
    """
    n, d = X.shape
    k = centers.shape[0]
    n_blocks = _config.n_blocks(n, k * (d + 1))
    if labels is None:
        labels = np.full(n, -1, dtype=np.int64)
    min_dist = np.empty(n)
    counts = np.empty(k)
    sums = np.empty((k, d))
    changed = np.empty(1, dtype=np.int64)
    kernel = _config.parallel_or_serial(assign_accumulate, assign_accumulate_serial, n * k * d)
    with _config.threads_for(n * k * d):
        kernel(X, np.ascontiguousarray(centers, dtype=np.float64), n_blocks, labels, min_dist,
               counts, sums, changed)
    return labels, min_dist, counts, sums, int(changed[0])


SLICE_FLOATS = 1 << 17  # 1 MiB of float64 per temporary


def _slice_rows(X):
    return max(1, SLICE_FLOATS // max(1, X.shape[1]))


def squared_distances(X, center):
    """``||x_i - center||^2`` for every row, a slice of rows at a time.

    Row by row the same arithmetic as ``((X - center) ** 2).sum(axis=1)``, but
    no temporary the size of X: a memory-mapped X is streamed, not copied.
    """
    n, step = X.shape[0], _slice_rows(X)
    out = np.empty(n)
    center = np.asarray(center, dtype=np.float64)
    for i in range(0, n, step):
        out[i:i + step] = ((_float64(X[i:i + step]) - center) ** 2).sum(axis=1)
    return out


def _float64(block):
    """A slice of X in float64 (float32 X is kept as it is and widened a slice at a time)."""
    return block if block.dtype == np.float64 else block.astype(np.float64)


def mean_variance(X):
    """The mean over features of the variance of each, a slice of rows at a time."""
    n, step = X.shape[0], _slice_rows(X)
    mean = X.mean(axis=0, dtype=np.float64)
    total = np.zeros(X.shape[1])
    for i in range(0, n, step):
        total += ((_float64(X[i:i + step]) - mean) ** 2).sum(axis=0)
    return float(np.mean(total / n))


def _too_few_distinct(n_clusters):
    return ValueError(
        f"X has fewer distinct rows than n_clusters={n_clusters}: some clusters would be "
        f"empty whatever the centres. Reduce n_clusters or remove duplicates."
    )


def kmeans_plusplus(X, n_clusters, rng, n_local_trials=None):
    """Choose ``n_clusters`` rows of X as seeds by greedy k-means++.

    Each new seed is drawn with probability proportional to the squared distance
    to the nearest seed so far (Arthur and Vassilvitskii, 2007); like
    scikit-learn, ``2 + floor(ln k)`` candidates are drawn and the one that
    lowers the potential most is kept.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
    indices : ndarray of shape (n_clusters,)
        Row indices of the seeds in X.
    """
    n, d = X.shape
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = rng.integers(n)
    closest = squared_distances(X, X[indices[0]])
    for c in range(1, n_clusters):
        cumulative = np.cumsum(closest)
        potential = cumulative[-1]
        if potential <= 0.0:
            raise _too_few_distinct(n_clusters)
        draws = rng.uniform(size=n_local_trials) * potential
        candidates = np.minimum(np.searchsorted(cumulative, draws, side="right"), n - 1)
        best_pot, best_closest, best_idx = np.inf, None, -1
        for idx in candidates:
            trial = np.minimum(closest, squared_distances(X, X[idx]))
            pot = trial.sum()
            if pot < best_pot:
                best_pot, best_closest, best_idx = pot, trial, idx
        indices[c] = best_idx
        closest = best_closest
    return X[indices].astype(np.float64), indices


def _relocate_empty(X, labels, min_dist, counts, sums, n_clusters):
    """Move the centre of every empty cluster onto the point farthest from its own centre.

    The moved points leave their old clusters' sums. This is what scikit-learn
    does, and unlike moving the centre to the origin it puts the centre where the
    data is worst explained. Returns the number of clusters relocated.
    """
    empty = np.flatnonzero(counts == 0)
    if empty.size == 0:
        return 0
    far = np.argsort(-min_dist, kind="stable")[: empty.size]
    if min_dist[far[-1]] <= 0.0:
        raise _too_few_distinct(n_clusters)
    for k, i in zip(empty, far):
        old = labels[i]
        counts[old] -= 1
        sums[old] -= X[i]
        counts[k] = 1
        sums[k] = X[i]
        labels[i] = k
        min_dist[i] = 0.0
    return empty.size


def lloyd(X, centers, max_iter, tol):
    """Run Lloyd's algorithm from ``centers``.

    Returns ``centers, labels, inertia, n_iter, converged``. Convergence: the
    labels stop changing, or the centres move by at most ``tol`` (sum of squared
    shifts, an absolute value).
    """
    n_clusters = centers.shape[0]
    labels = None
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        labels, min_dist, counts, sums, changed = _assign(X, centers, labels)
        if n_iter > 1 and changed == 0:
            converged = True
            break
        if _relocate_empty(X, labels, min_dist, counts, sums, n_clusters):
            labels = None  # relocation edited the labels: compare afresh next time
        new_centers = sums / counts[:, None]
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if shift <= tol:
            converged = True
            break
    labels, min_dist = _assign(X, centers)[:2]
    return centers, labels, float(min_dist.sum()), n_iter, converged


class LloydStatistics(SufficientStatistics):
    """What one Lloyd pass over a chunk yields: ``counts`` (K,) and ``sums`` (K, d) per cluster.

    ``objective`` is minus the (weighted) inertia. ``far_dist`` (K,) and
    ``far_rows`` (K, d) are the chunk's K rows farthest from their centres,
    where empty clusters are moved; two chunks' lists merge by keeping the K
    farthest (a maximum, not a sum), and scaling leaves them alone.
    """

    __slots__ = ()

    def _add_arrays(self, other):
        dist = np.concatenate([self.far_dist, other.far_dist])
        rows = np.concatenate([self.far_rows, other.far_rows])
        keep = np.argsort(-dist, kind="stable")[: self.far_dist.shape[0]]
        return {"counts": self.counts + other.counts, "sums": self.sums + other.sums,
                "far_dist": dist[keep], "far_rows": rows[keep]}

    def _scale_arrays(self, factor):
        return {"counts": factor * self.counts, "sums": factor * self.sums,
                "far_dist": self.far_dist, "far_rows": self.far_rows}


def lloyd_statistics(X, centers, sample_weight=None, labels=None):
    """The :class:`LloydStatistics` of a chunk X for ``centers`` (one assignment pass).

    ``labels`` (a mixture's partial labels, carried with the chunk) play no part."""
    k, d = centers.shape
    labels, min_dist, counts, sums, _ = _assign(X, centers)
    if sample_weight is not None:
        counts = np.bincount(labels, weights=sample_weight, minlength=k).astype(np.float64)
        sums = np.zeros((k, d))
        for j in range(k):
            rows = labels == j
            sums[j] = sample_weight[rows] @ X[rows]
        min_dist = np.where(sample_weight > 0, min_dist, -np.inf)  # a row of weight 0 never moves
        inertia = float(sample_weight @ np.where(sample_weight > 0, min_dist, 0.0))
        weight = float(sample_weight.sum())
    else:
        inertia, weight = float(min_dist.sum()), X.shape[0]
    far = np.argsort(-min_dist, kind="stable")[:k]
    far_dist = np.full(k, -np.inf)
    far_rows = np.zeros((k, d))
    far_dist[: far.size] = min_dist[far]
    far_rows[: far.size] = X[far]
    return LloydStatistics(-inertia, weight, counts=counts, sums=sums, far_dist=far_dist,
                           far_rows=far_rows)


def centers_from_statistics(stats, centers, n_clusters):
    """New centres: the means of the clusters; an empty one moves to a far row.

    The i-th empty cluster takes the i-th farthest row of ``stats`` (as
    :func:`_relocate_empty` does in memory, without removing that row from its
    old cluster's mean, which the next pass corrects). Returns
    ``(centers, n_relocated)``.
    """
    counts = stats.counts
    empty = np.flatnonzero(counts <= 0)
    new = np.array(centers, dtype=np.float64, copy=True)
    live = counts > 0
    new[live] = stats.sums[live] / counts[live, None]
    if empty.size:
        far = stats.far_dist[: empty.size]
        if far.size < empty.size or not np.all(far > 0):
            raise _too_few_distinct(n_clusters)
        new[empty] = stats.far_rows[: empty.size]
    return new, int(empty.size)


def lloyd_chunked(data, centers, max_iter, tol):
    """Lloyd's algorithm over chunked data (:class:`~emlab.em.ChunkedData`): one pass a step.

    The labels are never gathered, so convergence is the centres moving by at
    most ``tol`` (sum of squared shifts, absolute). Returns ``centers,
    inertia, n_iter, converged``, the inertia being that of the returned
    centres (one more pass).
    """
    n_clusters = centers.shape[0]
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        stats = data.map_reduce(lloyd_statistics, [centers])[0]
        new_centers, relocated = centers_from_statistics(stats, centers, n_clusters)
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if shift <= tol and not relocated:
            converged = True
            break
    inertia = -data.map_reduce(lloyd_statistics, [centers])[0].objective
    return centers, inertia, n_iter, converged


class KMeans(ParamsMixin):
    """k-means clustering by Lloyd's algorithm.

    Parameters
    ----------
    n_clusters : int, default=8
    init : {'k-means++', 'random'} or array-like of shape (n_clusters, n_features), default='k-means++'
        'k-means++': greedy k-means++ seeding; 'random': distinct rows of X drawn
        uniformly; an array: the starting centres.
    n_init : int or 'auto', default='auto'
        Number of seedings; the run with the lowest inertia is kept. 'auto' is 1
        for 'k-means++' and an array, 10 for 'random' (scikit-learn's rule).
    max_iter : int, default=300
    tol : float, default=1e-4
        Relative tolerance: the run stops when the centres move by at most
        ``tol`` times the mean feature variance of X (sum of squared shifts).
    random_state : None, int or numpy.random.Generator
    learning_decay, learning_offset : float, default=0.7, 10.0
        Step sizes of :meth:`partial_fit`, as in
        :class:`~emlab.GaussianMixture`.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,)
    inertia_ : float
        Sum of squared distances of the samples to their centres.
    n_iter_ : int
    converged_ : bool
    n_steps_ : int
        Set by :meth:`partial_fit`: the number of batches seen.

    Notes
    -----
    A cluster that goes empty during Lloyd's iterations gets, as its new centre,
    the sample farthest from its own centre (which then leaves its old cluster).
    If X has fewer distinct rows than ``n_clusters`` a ValueError says so.
    The book chapter "k-means versus EM" derives k-means as the zero-variance
    limit of EM for a Gaussian mixture.

    Examples
    --------
    >>> import numpy as np
    >>> from emlab import KMeans
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> sorted(np.bincount(km.labels_).tolist())
    [2, 2]
    """

    _estimator_type = "clusterer"
    _is_transformer = True

    def __init__(self, n_clusters=8, *, init="k-means++", n_init="auto", max_iter=300,
                 tol=1e-4, random_state=None, learning_decay=0.7, learning_offset=10.0):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    def _check_params(self, X, n_rows=None):
        n_clusters = check_int(self.n_clusters, "n_clusters", low=1)
        n_rows = X.shape[0] if n_rows is None else n_rows
        if n_clusters > n_rows:
            raise ValueError(
                f"n_clusters={n_clusters} must be <= n_samples={n_rows}."
            )
        max_iter = check_int(self.max_iter, "max_iter", low=1)
        tol = check_scalar(self.tol, "tol", low=0.0)
        init = self.init
        if isinstance(init, str):
            check_option(init, "init", ("k-means++", "random"))
        else:
            init = np.asarray(init, dtype=np.float64)
            if init.shape != (n_clusters, X.shape[1]):
                raise ValueError(
                    f"init must have shape ({n_clusters}, {X.shape[1]}); got {init.shape}."
                )
            if not np.all(np.isfinite(init)):
                raise ValueError("init contains NaN or infinite values.")
        if isinstance(self.n_init, str):
            check_option(self.n_init, "n_init", ("auto",))
            n_init = 10 if (isinstance(init, str) and init == "random") else 1
        else:
            n_init = check_int(self.n_init, "n_init", low=1)
        return n_clusters, init, n_init, max_iter, tol

    def _seed(self, X, n_clusters, init, rng, distinct=None):
        """Seeds for one start; ``distinct`` (X's :func:`distinct_rows`, found once for all
        the starts of a fit) is drawn from for ``init='random'``."""
        if not isinstance(init, str):
            return init.copy()
        if init == "k-means++":
            return kmeans_plusplus(X, n_clusters, rng)[0]
        if distinct is None:
            distinct = distinct_rows(X)
        if distinct.shape[0] < n_clusters:
            raise _too_few_distinct(n_clusters)
        return distinct[rng.choice(distinct.shape[0], n_clusters, replace=False)]

    def fit(self, X, y=None):
        """Cluster X. ``y`` is ignored.

        X may be a Dask array: each Lloyd step is then one task per chunk of
        rows (counts and sums per cluster come back, X is never gathered),
        the seeds come from a uniform sample of rows (at most
        ``max(10000, 1000 * n_clusters)``), convergence is on the centres'
        shift alone (the labels are not kept between steps), and ``labels_``
        is a lazy Dask array.
        """
        if is_dask_array(X):
            self._check_params(np.empty((0, X.shape[-1])), n_rows=np.inf)  # before any pass
            self._dtype = input_dtype(X)
            return self._fit_chunked(DaskData(X))
        X = check_array(X, keep_float32=True)
        check_scale(X)
        self._dtype = X.dtype  # of cluster_centers_; distances and sums are float64
        n_clusters, init, n_init, max_iter, tol = self._check_params(X)
        rng = check_random_state(self.random_state)
        abs_tol = tol * mean_variance(X)
        best = None
        distinct = distinct_rows(X) if isinstance(init, str) and init == "random" else None
        for _ in range(n_init):
            centers = self._seed(X, n_clusters, init, rng, distinct)
            run = lloyd(X, centers, max_iter, abs_tol)
            if best is None or run[2] < best[2]:
                best = run
        centers, labels, inertia, n_iter, converged = best
        self._set_fitted(centers, inertia, n_iter, converged, X.shape[1], max_iter)
        self.labels_ = labels
        return self

    def _set_fitted(self, centers, inertia, n_iter, converged, n_features, max_iter):
        if not converged:
            warnings.warn(
                f"k-means did not converge in max_iter={max_iter} iterations; "
                f"raise max_iter or tol.", ConvergenceWarning, stacklevel=3,
            )
        self.cluster_centers_ = centers.astype(getattr(self, "_dtype", np.float64), copy=False)
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.n_features_in_ = n_features

    def _fit_chunked(self, data):
        rng = check_random_state(self.random_state)
        k = check_int(self.n_clusters, "n_clusters", low=1)
        sample = data.sample_rows(max(10_000, 1000 * k), rng)
        n_clusters, init, n_init, max_iter, tol = self._check_params(sample, n_rows=data.n_samples)
        abs_tol = tol * mean_variance(sample)
        best = None
        distinct = distinct_rows(sample) if isinstance(init, str) and init == "random" else None
        for _ in range(n_init):
            run = lloyd_chunked(data, self._seed(sample, n_clusters, init, rng, distinct),
                                max_iter, abs_tol)
            if best is None or run[1] < best[1]:
                best = run
        centers, inertia, n_iter, converged = best
        self._set_fitted(centers, inertia, n_iter, converged, data.n_features, max_iter)
        self.labels_ = map_rows(self.predict, data.X, np.int64)
        return self

    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of online (mini-batch) k-means on a batch of rows. Returns self.

        The stepwise update of :meth:`emlab.GaussianMixture.partial_fit`
        applied to k-means' statistics: per-sample cluster counts and sums
        are averaged, ``s <- s + g_t (s_batch - s)`` with
        ``g_t = (t + learning_offset)^(-learning_decay)``, and the centres are
        ``sums / counts``. The first call seeds from its batch (``init``). A
        cluster empty in the first batch moves to a far row of it. The
        inertia need not fall from batch to batch; ``inertia_`` is the last
        batch's (under the centres it was given) and ``n_steps_`` counts the
        calls.
        """
        decay = check_scalar(self.learning_decay, "learning_decay", low=0.0)
        if not 0.5 < decay <= 1.0:
            raise ValueError(f"learning_decay must be in (0.5, 1]; got {decay}.")
        offset = check_scalar(self.learning_offset, "learning_offset", low=0.0)
        first = getattr(self, "_online", None) is None
        X = check_array(X, estimator=type(self).__name__,
                        n_features=None if first else self.n_features_in_, keep_float32=True)
        check_scale(X)
        if sample_weight is not None:
            from ._validation import check_sample_weight
            sample_weight = check_sample_weight(sample_weight, X.shape[0])
        if first:
            n_clusters, init, _, _, _ = self._check_params(X)
            if hasattr(self, "cluster_centers_") and self.cluster_centers_.shape[1] == X.shape[1]:
                centers = self.cluster_centers_.astype(np.float64)
            else:
                centers = self._seed(X, n_clusters, init, check_random_state(self.random_state))
            self.n_steps_ = 0
        else:
            centers, running = self._online
        batch = lloyd_statistics(X, centers, sample_weight)
        per_sample = (1.0 / batch.weight) * batch
        if first:
            running = per_sample
        else:
            g = (self.n_steps_ + offset) ** (-decay)
            running = (1.0 - g) * running + g * per_sample
        centers = centers_from_statistics(running, centers, centers.shape[0])[0]
        self.n_steps_ += 1
        self._dtype = X.dtype
        self.cluster_centers_ = centers.astype(X.dtype, copy=False)
        self.inertia_ = -batch.objective
        self.n_iter_ = self.n_steps_
        self.converged_ = False
        self.n_features_in_ = X.shape[1]
        self._online = (centers, running)
        return self

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_

    def fit_transform(self, X, y=None):
        """Fit, then the distances of X to the centres (``fit(X).transform(X)``)."""
        return self.fit(X).transform(X)

    def _check_X(self, X):
        check_is_fitted(self, "cluster_centers_")
        return check_array(X, estimator=type(self).__name__, n_features=self.n_features_in_,
                           keep_float32=True)

    def predict(self, X):
        """Index of the nearest centre for each row of X (lazily, chunk by chunk, for a Dask array)."""
        if is_dask_array(X):
            return map_rows(self.predict, X, np.int64)
        return _assign(self._check_X(X), self.cluster_centers_)[0]

    def transform(self, X):
        """Euclidean distances from each row of X to every centre, shape (n_samples, n_clusters)."""
        if is_dask_array(X):
            return map_rows(self.transform, X, np.float64, self.cluster_centers_.shape[0])
        X = self._check_X(X)
        distances = np.sqrt(np.column_stack([squared_distances(X, c) for c in self.cluster_centers_]))
        return distances.astype(X.dtype, copy=False)  # float32 for float32 X, as scikit-learn

    def score(self, X, y=None):
        """Minus the inertia of X under the fitted centres (higher is better)."""
        if is_dask_array(X):
            return -float(map_rows(self._min_distances, X, np.float64).sum())
        return -float(self._min_distances(X).sum())

    def _min_distances(self, X):
        return _assign(self._check_X(X), self.cluster_centers_)[1]
