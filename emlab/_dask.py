"""Dask arrays as :class:`~emlab.em.ChunkedData`: EM whose E-step runs on the workers.

Every E-step is one task per chunk of rows, ``statistics(X_chunk, params)``,
and a fixed binary tree of additions; only the parameters (O(K d^2)) travel
to the workers and only the statistics (O(K d^2) per chunk) travel back. X is
never gathered. Dask is imported only when a Dask array is passed, so it
stays an optional dependency (``pip install emlab[dask]``).

The tasks go to the active ``distributed.Client`` if there is one, otherwise
to Dask's default scheduler (threads, in this process).
"""

import numpy as np

from ._validation import check_shape
from .em import ChunkedData

__all__ = ["DaskData", "is_dask_array", "map_rows"]


def is_dask_array(X):
    """Whether X is a ``dask.array.Array``, without importing Dask when it is not loaded."""
    cls = type(X)
    return cls.__module__.startswith("dask.") and cls.__name__ == "Array"


def _block_check(block, allow_nan):
    """(rows, NaN count, inf count, first bad row or -1) of one block; never raises."""
    block = np.asarray(block)
    if block.ndim != 2:
        return block.shape[0] if block.ndim else 0, 0, 0, -1
    finite = np.isfinite(block)
    if finite.all():
        return block.shape[0], 0, 0, -1
    nan = int(np.isnan(block).sum())
    inf = int(np.isinf(block).sum())
    bad = np.isinf(block) if allow_nan else ~finite
    rows = np.flatnonzero(bad.any(axis=1))
    empty = np.flatnonzero(np.isnan(block).all(axis=1)) if allow_nan else np.empty(0, np.int64)
    first = int(rows[0]) if rows.size else (int(empty[0]) if empty.size else -1)
    return block.shape[0], nan, inf, first


def _weight_check(block):
    """(negative or non-finite count, first bad index or -1, sum) of a block of sample weights."""
    block = np.asarray(block, dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(block) & (block >= 0)))
    return int(bad.size), int(bad[0]) if bad.size else -1, float(block[np.isfinite(block)].sum())


def _as_float64(block):
    return np.ascontiguousarray(block, dtype=np.float64)


def _chunk_statistics(payload, block, extras):
    """The task run on a worker: the statistics of one chunk under every parameter set."""
    fn, params_list = payload
    block = _as_float64(block)  # the kernels need C order (no copy when it is already)
    return [fn(block, params, **extras) for params in params_list]


def _add_lists(a, b):
    return [x + y for x, y in zip(a, b)]


class DaskData(ChunkedData):
    """A Dask array of rows (and optional per-row arrays) that EM reduces chunk by chunk.

    Construction checks the data before any EM work, in one pass over the
    chunks: chunks split along columns are merged (each task needs whole
    rows), unknown chunk sizes (NaN, after boolean indexing for instance) are
    computed, and a NaN or infinite value raises the same ValueError as in
    memory, naming the chunk and the row. X is then persisted (on the
    workers, with a ``distributed.Client``), so that the EM iterations read
    it from memory instead of recomputing it.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
    per_row : dict of str to array-like or dask.array.Array, optional
        Arrays of length n_samples (``sample_weight``, partial ``labels``)
        handed to each chunk's ``statistics`` as keyword arguments, cut as
        X's rows. Those named in ``weight_keys`` are checked as weights
        (finite, non-negative, not all zero); the others are checked by the
        chunk's ``statistics``.
    row_chunks : tuple of int, optional
        The row chunks to use (HMMs cut them at sequence boundaries).
    per_chunk : list of dict, optional
        Keyword arguments for each chunk's ``statistics`` (``lengths``).
    allow_nan : bool, default=False
        NaN marks a missing value (``missing='marginalize'``).
    min_samples : int, default=1
    nan_hint : str, optional
        Appended to the error about NaN, as in :func:`~emlab._validation.check_array`.
    """

    def __init__(self, X, *, per_row=None, row_chunks=None, per_chunk=None, allow_nan=False,
                 min_samples=1, n_features=None, nan_hint="", name="X",
                 weight_keys=("sample_weight",)):
        import dask
        import dask.array as da

        check_shape(X.shape, name)  # a 1-d array, before its chunk sizes are computed
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.iscomplexobj(
                np.empty(0, X.dtype)):
            raise ValueError(f"{name} must be real and numeric; got a Dask array of dtype {X.dtype}.")
        if any(np.isnan(c) for c in X.chunks[0]):
            X = X.compute_chunk_sizes()  # one pass: the row count of every chunk
        check_shape(X.shape, name, min_samples=min_samples, n_features=n_features)
        n, d = X.shape
        rechunk = {1: -1} if len(X.chunks[1]) > 1 else {}
        if row_chunks is not None and tuple(row_chunks) != X.chunks[0]:
            rechunk[0] = tuple(row_chunks)
        elif row_chunks is None and 0 in X.chunks[0] and n > 0:
            rechunk[0] = tuple(c for c in X.chunks[0] if c > 0)  # a filter can empty a chunk
        if rechunk:
            X = X.rechunk(rechunk)
        if X.dtype != np.float64:  # once, before persisting (float64 chunks are used as they are)
            X = X.map_blocks(_as_float64, dtype=np.float64)
        self.per_row_names = []
        arrays = {}
        for key, value in (per_row or {}).items():
            if value is None:
                continue
            arr = value if hasattr(value, "dask") else da.from_array(np.asarray(value))
            if arr.ndim != 1 or arr.shape[0] != n:
                raise ValueError(f"{key} must have shape ({n},); got {arr.shape}.")
            arrays[key] = arr.rechunk((X.chunks[0],)).astype(np.float64)
        X, *persisted = dask.persist(X, *arrays.values())
        self.X = X
        self.per_row = dict(zip(arrays, persisted))
        self.n_samples, self.n_features = n, d
        self.n_chunks = len(X.chunks[0])
        self.offsets = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
        self.per_chunk = per_chunk if per_chunk is not None else [{} for _ in range(self.n_chunks)]
        if len(self.per_chunk) != self.n_chunks:
            raise ValueError("per_chunk must have one entry per chunk.")
        self._blocks = list(X.to_delayed().ravel())
        self._row_blocks = {key: list(arr.to_delayed().ravel()) for key, arr in self.per_row.items()}
        self._check(allow_nan, nan_hint, name, weight_keys)

    def _check(self, allow_nan, nan_hint, name, weight_keys):
        import dask

        checks = [dask.delayed(_block_check)(b, allow_nan) for b in self._blocks]
        weights = {key: [dask.delayed(_weight_check)(b) for b in blocks]
                   for key, blocks in self._row_blocks.items() if key in weight_keys}
        checks, weights = dask.compute(checks, weights)
        for c, (rows, nan, inf, first) in enumerate(checks):
            if first < 0:
                continue
            start = self.offsets[c]
            where = (f"in chunk {c} (rows {start} to {start + rows - 1}), first at row "
                     f"{start + first}")
            if allow_nan and not inf:
                raise ValueError(f"{name} has a row with no observed value in chunk {c}, row "
                                 f"{start + first}; drop it.")
            what = (f"{inf} infinite value(s)" if allow_nan
                    else f"{nan} NaN and {inf} infinite value(s)")
            hint = nan_hint if (nan and not allow_nan) else ""
            raise ValueError(f"{name} contains {what} {where}; remove or impute them first{hint}.")
        for key, results in weights.items():
            for c, (bad, first, _) in enumerate(results):
                if bad:
                    raise ValueError(f"{key} must be finite and non-negative; chunk {c} has {bad} "
                                     f"bad value(s), first at row {self.offsets[c] + first}.")
            if sum(r[2] for r in results) <= 0:
                raise ValueError(f"{key} sums to zero: at least one sample must have a positive "
                                 f"weight.")

    def map_reduce(self, fn, params_list):
        import dask

        # one key for the function and the parameters: sent once to each worker, not per task
        payload = dask.delayed((fn, list(params_list)), traverse=False)
        holders = self._holders()
        parts = []
        for c, block in enumerate(self._blocks):
            extras = dict(self.per_chunk[c])
            for key, blocks in self._row_blocks.items():
                extras[key] = blocks[c]
            # run where the chunk is: otherwise the scheduler may move a chunk (megabytes) to an
            # idle worker to save milliseconds. A loose restriction: if that worker is lost, the
            # chunk is recomputed elsewhere and the task follows it.
            where = holders.get(block.key)
            with dask.annotate(**({"workers": where, "allow_other_workers": True} if where else {})):
                parts.append(dask.delayed(_chunk_statistics)(payload, block, extras))
        while len(parts) > 1:  # a fixed binary tree: the sum does not depend on scheduling
            parts = [dask.delayed(_add_lists)(parts[i], parts[i + 1])
                     if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
        return dask.compute(parts[0])[0]

    def _holders(self):
        """``{chunk key: [worker addresses]}`` on a distributed cluster, else ``{}``."""
        try:
            from distributed import default_client
            client = default_client()
        except (ImportError, ValueError):  # no distributed, or no client: local scheduling
            return {}
        return {key: list(where) for key, where in client.who_has(self.X).items() if where}

    def sample_rows(self, size, rng):
        size = min(int(size), self.n_samples)
        rows = np.sort(rng.choice(self.n_samples, size, replace=False))
        return np.asarray(self.X[rows].compute())


def map_rows(method, X, dtype, n_columns=None):
    """``method`` (predict, score_samples, ...) applied chunk by chunk to a Dask array: lazy.

    Chunks split along columns are merged first; the result has X's row chunks,
    and ``n_columns`` columns when given (one value per row otherwise).
    """
    if X.ndim != 2:
        raise ValueError(f"X must be 2-d of shape (n_samples, n_features); got {X.ndim}-d.")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    if n_columns is None:
        return X.map_blocks(method, drop_axis=1, dtype=dtype)
    return X.map_blocks(method, chunks=(X.chunks[0], (n_columns,)), dtype=dtype)
