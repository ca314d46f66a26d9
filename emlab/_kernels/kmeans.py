"""k-means kernels: nearest-centre assignment fused with the centroid sums."""

import numpy as np
from numba import njit, prange

from .._config import CACHE, FASTMATH, PARALLEL


@njit(parallel=PARALLEL, fastmath=FASTMATH, cache=CACHE)
def assign_accumulate(X, centers, n_blocks, chunk_rows, labels, min_dist, counts, sums):
    """Assign each row to its nearest centre and sum the rows of each cluster.

    Parameters
    ----------
    X : (n, d) float64
    centers : (K, d) float64
    n_blocks, chunk_rows : ints, the fixed partition (see ``weighted_scatter``).
    labels : (n,) int64, filled with the index of the nearest centre (ties go to
        the lowest index).
    min_dist : (n,) float64, filled with the squared distance to that centre.
    counts : (K,) float64, filled with the number of rows per cluster.
    sums : (K, d) float64, filled with the sum of the rows of each cluster.

    Distances are computed as ``sum_j (x_j - c_j)^2``, never through the
    expansion ``|x|^2 - 2 x.c + |c|^2``, which cancels catastrophically for
    points far from the origin.
    """
    n, d = X.shape
    n_clusters = centers.shape[0]
    acc_n = np.zeros((n_blocks, n_clusters))
    acc_s = np.zeros((n_blocks, n_clusters, d))
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for b in prange(n_blocks):
        start = (b * n_chunks // n_blocks) * chunk_rows
        stop = min(n, ((b + 1) * n_chunks // n_blocks) * chunk_rows)
        for i in range(start, stop):
            best = np.inf
            best_k = 0
            for k in range(n_clusters):
                s = 0.0
                for j in range(d):
                    t = X[i, j] - centers[k, j]
                    s += t * t
                if s < best:
                    best = s
                    best_k = k
            labels[i] = best_k
            min_dist[i] = best
            acc_n[b, best_k] += 1.0
            for j in range(d):
                acc_s[b, best_k, j] += X[i, j]
    counts[:] = 0.0
    sums[:] = 0.0
    for b in range(n_blocks):
        for k in range(n_clusters):
            counts[k] += acc_n[b, k]
            for j in range(d):
                sums[k, j] += acc_s[b, k, j]
