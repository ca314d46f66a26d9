"""The data of a case and the starting parameters that every library gets.

Both are functions of the case alone (its sizes and seed), so the memory
worker, a separate process, regenerates bit-for-bit the same data; the
checksum recorded in the JSON shows it.
"""

import hashlib
from dataclasses import dataclass

import numpy as np

#: Rows generated at a time, so that generating X needs little memory beyond X.
BLOCK_ROWS = 65_536


def make_data(case):
    """Samples of a seeded Gaussian mixture, C-contiguous float64 of shape (N, d).

    The K components have Dirichlet(5) weights, means drawn so that two means
    are about ``case.separation`` standard deviations apart whatever d, and
    random covariances with eigenvalues between 0.5 and 2. The rows come in
    random component order.

    Parameters
    ----------
    case : benchmarks.cases.Case

    Returns
    -------
    X : ndarray of shape (case.n_samples, case.n_features)
    """
    rng = np.random.default_rng([case.seed, 1])
    n, d, k = case.n_samples, case.n_features, case.n_components
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(scale=case.separation / np.sqrt(2.0 * d), size=(k, d))
    factors = np.stack([_random_covariance_factor(rng, d) for _ in range(k)])
    X = np.empty((n, d))
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        labels = rng.choice(k, size=stop - start, p=weights)
        z = rng.standard_normal((stop - start, d))
        block = X[start:stop]
        for j in range(k):
            rows = labels == j
            block[rows] = z[rows] @ factors[j].T + means[j]
    return X


def _random_covariance_factor(rng, d):
    """``A`` with ``A @ A.T`` a random covariance whose eigenvalues lie in [0.5, 2]."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sqrt(rng.uniform(0.5, 2.0, size=d))


def checksum(X):
    """A short digest of X's bytes (to show two processes used the same data)."""
    return hashlib.blake2b(np.ascontiguousarray(X).data, digest_size=8).hexdigest()


@dataclass(frozen=True)
class Start:
    """Starting parameters, in scikit-learn's shapes.

    Attributes
    ----------
    weights : ndarray of shape (n_components,)
        Uniform.
    means : ndarray of shape (n_components, n_features)
        Distinct random rows of X; for k-means these are the initial centres.
    precisions : ndarray or None
        The inverse of the data's covariance, for every component, in the shape
        the covariance type needs: full (K, d, d), tied (d, d), diag (K, d),
        spherical (K,). None for k-means.
    """

    weights: np.ndarray
    means: np.ndarray
    precisions: np.ndarray = None


def make_start(case, X):
    """The :class:`Start` of a case, drawn once from X and the case's seed.

    Parameters
    ----------
    case : benchmarks.cases.Case
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    Start
    """
    rng = np.random.default_rng([case.seed, 2])
    k = case.n_components
    rows = rng.choice(X.shape[0], size=k, replace=False)
    means = np.ascontiguousarray(X[np.sort(rows)])
    weights = np.full(k, 1.0 / k)
    if case.model != "gmm":
        return Start(weights, means)
    return Start(weights, means, starting_precisions(X, case.covariance_type, k))


def starting_precisions(X, covariance_type, n_components):
    """The inverse of X's covariance in the form ``covariance_type`` takes.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    n_components : int

    Returns
    -------
    ndarray of shape (K, d, d), (d, d), (K, d) or (K,)
    """
    covariance = np.atleast_2d(np.cov(X, rowvar=False))
    k = n_components
    if covariance_type == "full":
        precision = np.linalg.inv(covariance)
        precision = 0.5 * (precision + precision.T)
        return np.ascontiguousarray(np.broadcast_to(precision, (k,) + precision.shape))
    if covariance_type == "tied":
        precision = np.linalg.inv(covariance)
        return 0.5 * (precision + precision.T)
    variances = np.diag(covariance)
    if covariance_type == "diag":
        return np.ascontiguousarray(np.broadcast_to(1.0 / variances, (k, variances.size)))
    if covariance_type == "spherical":
        return np.full(k, 1.0 / variances.mean())
    raise ValueError(f"unknown covariance_type {covariance_type!r}")
