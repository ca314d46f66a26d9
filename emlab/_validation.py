"""Input checks, and the error messages users see.

Every check runs before any work and names the argument and what is wrong.
"""

import numbers
import sys

import numpy as np

from .exceptions import NotFittedError


def check_array(X, name="X", *, min_samples=1, n_features=None, allow_nan=False, nan_hint="",
                estimator=None, keep_float32=False):
    """Return X as a C-contiguous 2-d float64 array, or raise a ValueError that names it.

    With ``keep_float32`` a float32 (or float16) X comes back as float32, not
    copied when it is already C-contiguous float32: for callers whose kernels
    read float32 rows (in float32 arithmetic, or widening each tile to float64
    as they load it), so that fitting float32 data takes no float64 copy of it.

    An object array is converted when every element is a real number; sparse
    input (``scipy.sparse``) is refused with a message that says how to densify it.

    With ``allow_nan`` NaN marks a missing value (infinities are still
    refused, and so is a row with no observed value); ``nan_hint`` is appended
    to the error about NaN otherwise.
    """
    if X is None:
        raise ValueError(f"{name} is None; expected an array of shape (n_samples, n_features).")
    if _is_sparse(X):
        raise ValueError(
            f"{name} is a sparse {type(X).__name__}, and sparse input is not supported: the "
            f"models need dense data. Convert it with {name}.toarray() (which needs "
            f"n_samples * n_features * 8 bytes)."
        )
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to a numeric array: {exc}") from None
    if arr.dtype == object:
        arr = _numeric_from_object(arr, name)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be numeric; got an array of dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real: Complex data not supported (got dtype {arr.dtype}).")
    check_shape(arr.shape, name, min_samples=min_samples, n_features=n_features,
                estimator=estimator)
    n, d = arr.shape
    dtype = np.float32 if keep_float32 and input_dtype(arr) == np.float32 else np.float64
    arr = np.ascontiguousarray(arr, dtype=dtype)
    # checked in slices, so the check costs no memory in proportion to X
    step = max(1, 2**20 // d)
    if not all(np.isfinite(arr[i:i + step]).all() for i in range(0, n, step)):
        nan = np.isnan(arr)
        inf = np.isinf(arr)
        if allow_nan and not inf.any():
            empty = np.flatnonzero(nan.all(axis=1))
            if empty.size:
                raise ValueError(f"{name} has {empty.size} row(s) with no observed value, e.g. row "
                                 f"{empty[0]}; drop them.")
            return _read_only(arr)
        bad = (nan | inf) if not allow_nan else inf
        rows = np.flatnonzero(bad.any(axis=1))
        where = ", ".join(str(r) for r in rows[:5]) + (", ..." if rows.size > 5 else "")
        what = (f"{int(inf.sum())} infinite value(s)" if allow_nan
                else f"{int(nan.sum())} NaN and {int(inf.sum())} infinite value(s)")
        hint = nan_hint if (nan.any() and not allow_nan) else ""
        raise ValueError(f"{name} contains {what}, in row(s) {where}; remove or impute them first{hint}.")
    return _read_only(arr)


def _read_only(arr):
    """A read-only view of ``arr``.

    The kernels never write to X. Handing them X read-only whatever the caller's flags gives
    Numba one specialisation per kernel, so a read-only input (a memmap, a frozen array)
    does not compile every kernel a second time; and nothing downstream can change the
    user's array by mistake.
    """
    view = arr.view()
    view.flags.writeable = False
    return view


def _is_sparse(X):
    """Whether X is a scipy.sparse matrix or array (without importing SciPy for it)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


class NonNumericError(ValueError, TypeError):
    """An object array holds something other than real numbers.

    A ValueError, as all of emlab's input errors, and a TypeError, as NumPy's
    (and so scikit-learn's) error for such an array.
    """


def _numeric_from_object(arr, name):
    """An object array whose every element is a real number, as float64; else a NonNumericError."""
    for index, value in np.ndenumerate(arr):
        if not isinstance(value, numbers.Real):
            where = ", ".join(str(i) for i in index)
            raise NonNumericError(
                f"{name} must be numeric: each element of an object-dtype argument must be a real "
                f"number, not a string or other object; {name}[{where}] is a "
                f"{type(value).__name__} ({value!r:.40}), not a number."
            )
    return arr.astype(np.float64)


def input_dtype(X):
    """The floating dtype fitted attributes take for input X: float32 or float64.

    float32 and float16 arrays give float32 (the mixtures' EM steps then run in
    float32 arithmetic), everything else float64, as in scikit-learn.
    """
    dtype = getattr(X, "dtype", None)
    try:
        dtype = np.dtype(dtype) if dtype is not None else None
    except TypeError:  # a pandas extension dtype and the like
        return np.dtype(np.float64)
    if dtype is not None and np.issubdtype(dtype, np.floating) and dtype.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def check_shape(shape, name="X", *, min_samples=1, n_features=None, estimator=None):
    """The checks of X's shape that need no values (also for a Dask array): 2-d, sizes."""
    if len(shape) != 2:
        hint = (" Reshape your data with X.reshape(-1, 1) if it has a single feature, or "
                "X.reshape(1, -1) if it is a single sample." if len(shape) == 1 else "")
        raise ValueError(
            f"{name} must be 2-d of shape (n_samples, n_features); got {len(shape)}-d "
            f"with shape {tuple(shape)}.{hint}"
        )
    n, d = shape
    if d == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={tuple(shape)}) while a minimum of 1 is "
                         f"required.")
    if n < min_samples:
        raise ValueError(f"{name} has {n} sample(s); at least {min_samples} are required.")
    if n_features is not None and d != n_features:
        raise ValueError(
            f"{name} has {d} features, but {estimator or 'the model'} is expecting {n_features} "
            f"features as input: it was fitted with {n_features}."
        )


def check_int(value, name, *, low=None, high=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer; got {value!r}.")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}; got {value}.")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}; got {value}.")
    return int(value)


def check_scalar(value, name, *, low=0.0):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number; got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or value < low:
        raise ValueError(f"{name} must be a finite number >= {low}; got {value}.")
    return value


def check_option(value, name, options):
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}.")
    return value


def check_random_state(random_state):
    """Turn ``None``, an int, a SeedSequence or a Generator into a ``numpy.random.Generator``.

    A Generator is used as it is (so consecutive fits sharing one draw
    consecutive numbers); a legacy RandomState seeds a new Generator.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**32 - 1, dtype=np.int64))
    valid_int = isinstance(random_state, numbers.Integral) and not isinstance(random_state, (bool, np.bool_))
    if valid_int and random_state < 0:
        raise ValueError(f"random_state must be a non-negative int; got {random_state}.")
    if random_state is None or valid_int or isinstance(random_state, np.random.SeedSequence):
        return np.random.default_rng(random_state)
    raise ValueError(
        f"random_state must be None, an int, a numpy.random.Generator or RandomState; "
        f"got {random_state!r}."
    )


def check_weights(weights, n_components, name="weights_init"):
    """Weights on the simplex, as float64, renormalised.

    They must sum to 1 within the precision of their own dtype: 1e-8 for
    float64 (and lists), ``n_components`` times the machine epsilon for a
    float32 (or float16) array, whose rounding alone puts the sum off 1 by that much.
    """
    given = np.asarray(weights)
    atol = 1e-8
    if np.issubdtype(given.dtype, np.floating) and given.dtype.itemsize < 8:
        atol = max(atol, max(n_components, 1) * float(np.finfo(given.dtype).eps))
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_components,):
        raise ValueError(f"{name} must have shape ({n_components},); got {w.shape}.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and non-negative; got {w}.")
    if not np.isclose(w.sum(), 1.0, rtol=0, atol=atol):
        raise ValueError(f"{name} must sum to 1; they sum to {w.sum():.12g}.")
    return w / w.sum()


def check_means(means, n_components, n_features, name="means_init"):
    m = np.asarray(means, dtype=np.float64)
    if m.shape != (n_components, n_features):
        raise ValueError(f"{name} must have shape ({n_components}, {n_features}); got {m.shape}.")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return np.ascontiguousarray(m)


def check_sample_weight(sample_weight, n_samples):
    """None, or a C-contiguous float64 vector of ``n_samples`` finite non-negative weights."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.dtype == object or not (np.issubdtype(w.dtype, np.number) or w.dtype == bool):
        raise ValueError(f"sample_weight must be numeric; got dtype {w.dtype}.")
    w = np.ascontiguousarray(w, dtype=np.float64)
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), one weight per row of X; got {w.shape}.")
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinite values.")
    if np.any(w < 0):
        raise ValueError(f"sample_weight must be non-negative; {int((w < 0).sum())} weight(s) are negative.")
    if not np.any(w > 0):
        raise ValueError("sample_weight is zero everywhere; at least one row must have a positive weight.")
    return w


_SKLEARN_NOT_FITTED = {}


def _not_fitted_error():
    """emlab's NotFittedError; also scikit-learn's, when scikit-learn is loaded.

    So ``except sklearn.exceptions.NotFittedError`` catches it, without emlab
    importing scikit-learn: code that names scikit-learn's class has imported it.
    """
    sk = sys.modules.get("sklearn.exceptions")
    base = getattr(sk, "NotFittedError", None)
    if not isinstance(base, type) or not issubclass(base, Exception):
        return NotFittedError
    if base not in _SKLEARN_NOT_FITTED:
        _SKLEARN_NOT_FITTED[base] = type("NotFittedError", (NotFittedError, base),
                                         {"__module__": NotFittedError.__module__,
                                          "__doc__": NotFittedError.__doc__,
                                          # pickled (to a process without scikit-learn) as emlab's
                                          "__reduce__": lambda self: (NotFittedError, self.args)})
    return _SKLEARN_NOT_FITTED[base]


def check_is_fitted(estimator, attribute):
    if not hasattr(estimator, attribute):
        raise _not_fitted_error()(
            f"This {type(estimator).__name__} is not fitted yet; call fit(X) before using it."
        )


def check_labels(y, n_samples, n_components, name="y"):
    """None, or an int64 vector of ``n_samples`` labels in ``-1 .. n_components - 1``."""
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ValueError(f"{name} must be a vector of {n_samples} labels (-1 for unknown rows); got "
                         f"shape {y.shape}.")
    if y.dtype.kind == "f" and (not np.all(np.isfinite(y)) or np.any(y != np.floor(y))):
        raise ValueError(f"{name} must hold integer labels (-1 for unknown rows).")
    if y.dtype.kind not in "iuf" and y.dtype != bool:
        raise ValueError(f"{name} must hold integer labels; got dtype {y.dtype}.")
    y = y.astype(np.int64)
    bad = (y < -1) | (y >= n_components)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] = {y[i]} is not a component: labels are -1 (unknown) or "
                         f"0..{n_components - 1}.")
    return y


#: Gaussian models and k-means square differences of X's values: beyond these magnitudes the
#: squares (and variances, and their inverses) overflow or underflow float64
SCALE_MAX = 1e150
SCALE_MIN = 1e-150


def check_scale(X, name="X"):
    """A ValueError when X's magnitude breaks the float64 arithmetic of squared distances.

    For the Gaussian models and k-means: values above ``SCALE_MAX`` make squared
    distances overflow to inf, values all below ``SCALE_MIN`` (and not all zero)
    make them underflow to 0. Both are refused with what to do, rather than
    failing deep inside (an overflow, a LinAlgError, "too few distinct rows").
    """
    # max |x| = max(|min x|, |max x|): two reductions, which allocate nothing (an
    # np.abs of the data, even in chunks of 2**20 values, was 8 MiB of a fit's growth)
    top = max(abs(float(X.max())), abs(float(X.min()))) if X.size else 0.0
    if top > SCALE_MAX:
        raise ValueError(
            f"{name} has values of magnitude up to {top:.3g}: at this scale squared distances "
            f"and variances overflow float64 (whose largest number is 1.8e308). The scale of "
            f"{name} is the problem: divide it by a constant (e.g. {name} / {top:.3g}, or "
            f"standardise each feature), fit, and scale the fitted means back by that constant "
            f"and the covariances by its square."
        )
    if 0.0 < top < SCALE_MIN:
        raise ValueError(
            f"{name} has values of magnitude at most {top:.3g}: at this scale squared distances "
            f"underflow to 0 in float64 (whose smallest normal number is 2.2e-308), so distinct "
            f"rows look equal. The scale of {name} is the problem: multiply it by a constant "
            f"(e.g. {name} / {top:.3g}, or standardise each feature), fit, and scale the "
            f"fitted means back by that constant and the covariances by its square."
        )
