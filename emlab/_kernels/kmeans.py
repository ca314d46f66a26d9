"""k-means kernels: nearest-centre assignment fused with the centroid sums."""

import numpy as np
from numba import njit, prange

from .._config import CACHE, CHUNK_ROWS, ERROR_MODEL, FASTMATH, PARALLEL, serial_twin
from .gaussian import aligned_tile, load_tile_4x4, padded4, prefetch_tile_part
from .mixture import block_rows, sum_blocks

CHUNK = CHUNK_ROWS  # the fixed row partition (see mixture.weighted_scatter)
TILE = 64  # rows per tile, laid out features x rows so the distance loop vectorises


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def assign_accumulate(X, centers, n_blocks, labels, min_dist, counts, sums, n_changed):
    """Assign each row to its nearest centre and sum the rows of each cluster.

    Parameters
    ----------
    X : (n, d) float64
    centers : (K, d) float64
    n_blocks : int, the fixed partition (see ``mixture.weighted_scatter``).
    labels : (n,) int64, on entry the previous labels (any values on the first
        call); on exit the index of the nearest centre (ties go to the lowest index).
    min_dist : (n,) float64, filled with the squared distance to that centre.
    counts : (K,) float64, filled with the number of rows per cluster.
    sums : (K, d) float64, filled with the sum of the rows of each cluster.
    n_changed : (1,) int64, filled with the number of rows whose label changed.

    Distances are computed as ``sum_j (x_j - c_j)^2``, never through the
    expansion ``|x|^2 - 2 x.c + |c|^2``, which cancels catastrophically for
    points far from the origin.
    """
    n, d = X.shape
    n_clusters = centers.shape[0]
    acc_n = np.zeros((n_blocks, n_clusters))
    acc_s = np.zeros((n_blocks, n_clusters, d))
    acc_changed = np.zeros(n_blocks, dtype=np.int64)
    dp = padded4(d)  # zero pad features: (0 - 0)^2 adds nothing
    cp = np.zeros((n_clusters, dp))
    for k in range(n_clusters):  # a loop: a slice assignment compiles Numba's shape-error message
        for j in range(d):
            cp[k, j] = centers[k, j]
    for b in prange(n_blocks):
        xt = aligned_tile(dp, TILE, np.float64, True)
        dist = aligned_tile(1, TILE, np.float64, False)[0]
        best = aligned_tile(1, TILE, np.float64, False)[0]
        best_k = aligned_tile(1, TILE, np.int64, False)[0]
        start, stop = block_rows(b, n_blocks, n, CHUNK)
        for t0 in range(start, stop, TILE):
            rows = min(TILE, stop - t0)
            load_tile_4x4(X, t0, rows, xt, None)
            next_rows = min(TILE, stop - t0 - rows)
            for r in range(rows):
                best[r] = np.inf
                best_k[r] = 0
            for k in range(n_clusters):
                prefetch_tile_part(X, t0 + rows, next_rows, k, n_clusters)
                # four features per pass: one load and store of dist per four squares
                for j in range(0, dp, 4):
                    c0, c1, c2, c3 = cp[k, j], cp[k, j + 1], cp[k, j + 2], cp[k, j + 3]
                    if j == 0:
                        for r in range(rows):
                            e0, e1 = xt[j, r] - c0, xt[j + 1, r] - c1
                            e2, e3 = xt[j + 2, r] - c2, xt[j + 3, r] - c3
                            dist[r] = e0 * e0 + e1 * e1 + e2 * e2 + e3 * e3
                    else:
                        for r in range(rows):
                            e0, e1 = xt[j, r] - c0, xt[j + 1, r] - c1
                            e2, e3 = xt[j + 2, r] - c2, xt[j + 3, r] - c3
                            dist[r] += e0 * e0 + e1 * e1 + e2 * e2 + e3 * e3
                for r in range(rows):
                    closer = dist[r] < best[r]
                    best[r] = dist[r] if closer else best[r]
                    best_k[r] = k if closer else best_k[r]
            changed = 0
            for r in range(rows):
                i = t0 + r
                k = best_k[r]
                changed += labels[i] != k
                labels[i] = k
                min_dist[i] = best[r]
                acc_n[b, k] += 1.0
                for j in range(d):
                    acc_s[b, k, j] += X[i, j]
            acc_changed[b] += changed
    sum_blocks(acc_n, counts)
    sum_blocks(acc_s, sums)
    sum_blocks(acc_changed, n_changed)


assign_accumulate_serial = serial_twin(assign_accumulate)  # for small work (see _config)
