"""The data of a case and the starting parameters that every library gets.

Both are functions of the case alone (its sizes and seed), so the memory
worker, a separate process, regenerates bit-for-bit the same data; the
checksum recorded in the JSON shows it. For the hidden-Markov-model cases the
sequence lengths are a function of the case too (:func:`sequence_lengths`).
"""

import hashlib
from dataclasses import dataclass

import numpy as np

#: Rows generated at a time, so that generating X needs little memory beyond X.
BLOCK_ROWS = 65_536


def make_data(case):
    """The data of a case: for a mixture or k-means, samples of a seeded Gaussian
    mixture, C-contiguous float64 of shape (N, d); for an HMM, :func:`make_hmm_data`.

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
    if case.is_hmm:
        return make_hmm_data(case)
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
        spherical (K,). None for k-means and the variational mixture.
    resp : ndarray of shape (n_samples, n_components) or None
        The variational mixture (``bgmm``) only: the starting responsibilities,
        one-hot rows of hard k-means labels (:func:`kmeans_labels` from
        ``means``), as scikit-learn's ``init_params='kmeans'`` makes them. A fit
        on the first rows of X takes the first rows of ``resp``.
    """

    weights: np.ndarray
    means: np.ndarray
    precisions: np.ndarray = None
    resp: np.ndarray = None


def make_start(case, X):
    """The :class:`Start` of a case (:class:`HMMStart` for an HMM), drawn once
    from X and the case's seed.

    Parameters
    ----------
    case : benchmarks.cases.Case
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    Start
    """
    if case.is_hmm:
        return make_hmm_start(case, X)
    rng = np.random.default_rng([case.seed, 2])
    k = case.n_components
    rows = rng.choice(X.shape[0], size=k, replace=False)
    means = np.ascontiguousarray(X[np.sort(rows)])
    weights = np.full(k, 1.0 / k)
    if case.model == "bgmm":
        labels = kmeans_labels(X, means)
        resp = np.zeros((X.shape[0], k))
        resp[np.arange(X.shape[0]), labels] = 1.0
        return Start(weights, means, resp=resp)
    if case.model != "gmm":
        return Start(weights, means)
    return Start(weights, means, starting_precisions(X, case.covariance_type, k))


#: Lloyd iterations of :func:`kmeans_labels` (it stops earlier if no label changes).
KMEANS_ITERATIONS = 10


def kmeans_labels(X, centres, max_iter=KMEANS_ITERATIONS):
    """Hard labels of a few Lloyd iterations from ``centres``, in plain NumPy.

    The same in every process whatever the threads: distances are computed
    per component without BLAS (squared differences summed over the
    features), centres by ``np.bincount``; a component left empty keeps its
    centre. Neither benchmarked library runs this, so neither's k-means is
    part of the start.

    Returns
    -------
    ndarray of int64, shape (n_samples,)
    """
    centres = np.array(centres, dtype=np.float64)
    k = centres.shape[0]
    labels = None
    for _ in range(max_iter):
        new = np.empty(X.shape[0], dtype=np.int64)
        for begin in range(0, X.shape[0], BLOCK_ROWS):
            block = X[begin:begin + BLOCK_ROWS]
            distances = np.stack([np.sum((block - c) ** 2, axis=1) for c in centres], axis=1)
            new[begin:begin + BLOCK_ROWS] = np.argmin(distances, axis=1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        for j in range(X.shape[1]):
            sums = np.bincount(labels, weights=X[:, j], minlength=k)
            centres[:, j] = np.where(counts > 0, sums / np.maximum(counts, 1), centres[:, j])
    return labels


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


# --------------------------------------------------------------------------- HMM

#: Range of the true HMM's probabilities of staying in a state (sticky chains:
#: mean run lengths of 10 to 50 steps).
STAY = (0.90, 0.98)

#: Diagonal of the starting transition matrix both libraries get (the rest of
#: each row is spread evenly over the other states).
START_STAY = 0.8


@dataclass(frozen=True)
class TrueHMM:
    """The HMM a case's data are drawn from.

    Attributes
    ----------
    startprob : ndarray of shape (K,)
        Dirichlet(5).
    transmat : ndarray of shape (K, K)
        Diagonal uniform in :data:`STAY`; the rest of a row Dirichlet(1) times
        what the diagonal leaves.
    means : ndarray of shape (K, d) or None
        Gaussian emissions: drawn as the mixture's means, about
        ``case.separation`` standard deviations apart.
    factors : ndarray of shape (K, d, d) or None
        ``factors[k] @ factors[k].T`` is state k's covariance (eigenvalues in [0.5, 2]).
    emissionprob : ndarray of shape (K, M) or None
        Categorical and multinomial emissions: rows Dirichlet(0.5), so each
        state favours a few symbols.
    weights : ndarray of shape (K, n_mix) or None
        Gaussian-mixture emissions (``'hmm-gmm'``): each state's mixture
        weights, Dirichlet(5); ``means`` is then (K, n_mix, d) and
        ``factors`` (K, n_mix, d, d), the K * n_mix components drawn as the
        mixtures' (about ``case.separation`` standard deviations apart).
    """

    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray = None
    factors: np.ndarray = None
    emissionprob: np.ndarray = None
    weights: np.ndarray = None


def true_hmm(case):
    """The seeded :class:`TrueHMM` of an HMM case."""
    rng = np.random.default_rng([case.seed, 3])
    k, d = case.n_components, case.n_features
    startprob = rng.dirichlet(np.full(k, 5.0))
    stay = rng.uniform(*STAY, size=k)
    transmat = np.empty((k, k))
    for i in range(k):
        others = rng.dirichlet(np.ones(k - 1)) * (1.0 - stay[i]) if k > 1 else np.empty(0)
        transmat[i] = np.insert(others, i, stay[i])
    if case.model in ("hmm-categorical", "hmm-vcategorical", "hmm-multinomial"):
        return TrueHMM(startprob, transmat, emissionprob=rng.dirichlet(np.full(d, 0.5), size=k))
    if case.model == "hmm-gmm":
        m = case.n_mix
        weights = rng.dirichlet(np.full(m, 5.0), size=k)
        means = rng.normal(scale=case.separation / np.sqrt(2.0 * d), size=(k * m, d))
        factors = np.stack([_random_covariance_factor(rng, d) for _ in range(k * m)])
        return TrueHMM(startprob, transmat, means=means.reshape(k, m, d),
                       factors=factors.reshape(k, m, d, d), weights=weights)
    means = rng.normal(scale=case.separation / np.sqrt(2.0 * d), size=(k, d))
    factors = np.stack([_random_covariance_factor(rng, d) for _ in range(k)])
    return TrueHMM(startprob, transmat, means=means, factors=factors)


def sequence_lengths(case, n_rows=None):
    """Lengths of the sequences in the first ``n_rows`` rows of an HMM case's data.

    The data are ``case.n_sequences`` sequences of ``case.sequence_length``
    steps, one after the other; a prefix (the memory worker's warm-up) ends
    with a shorter piece of a sequence.

    Returns
    -------
    ndarray of int64, summing to ``n_rows`` (default ``case.n_samples``)
    """
    n_rows = case.n_samples if n_rows is None else n_rows
    length = case.sequence_length
    full, rest = divmod(n_rows, length)
    return np.array([length] * full + ([rest] if rest else []), dtype=np.int64)


def sample_states(rng, startprob, transmat, lengths):
    """State paths of a Markov chain, one per sequence, concatenated.

    Drawn a run at a time: a state is held for a geometric number of steps
    (success probability ``1 - transmat[s, s]``), then the next state is drawn
    from the rest of the row renormalised; this is the same chain as drawing
    step by step, and with sticky chains about 20 times fewer draws.

    Returns
    -------
    ndarray of int64, shape (sum(lengths),)
    """
    k = startprob.size
    leave = 1.0 - np.diag(transmat)
    jumps = transmat.copy()
    np.fill_diagonal(jumps, 0.0)
    jump_cdf = np.cumsum(jumps / np.maximum(leave, 1e-300)[:, None], axis=1)
    start_cdf = np.cumsum(startprob)
    states = np.empty(int(np.sum(lengths)), dtype=np.int64)
    offset = 0
    for length in lengths:
        t, s = 0, min(int(np.searchsorted(start_cdf, rng.random(), side="right")), k - 1)
        while t < length:
            run = int(rng.geometric(leave[s])) if leave[s] > 0 else length - t
            states[offset + t:offset + min(length, t + run)] = s
            t += run
            s = min(int(np.searchsorted(jump_cdf[s], rng.random(), side="right")), k - 1)
        offset += length
    return states


def make_hmm_data(case):
    """Observations of the case's :class:`TrueHMM`, its sequences one after the other.

    Returns
    -------
    X : ndarray
        Gaussian emissions: float64 of shape (n_samples, d), C-contiguous.
        Categorical (and variational categorical): int64 symbols of shape (n_samples, 1).
        Multinomial: int64 counts of shape (n_samples, M), each row summing to
        ``case.n_trials``. Gaussian mixture: float64 (n_samples, d), each step's
        mixture component drawn from its state's weights.
    """
    hmm = true_hmm(case)
    rng = np.random.default_rng([case.seed, 1])
    states = sample_states(rng, hmm.startprob, hmm.transmat, sequence_lengths(case))
    n = states.size
    if case.model == "hmm-multinomial":
        X = np.zeros((n, case.n_features), dtype=np.int64)
        for j in range(case.n_components):
            rows = states == j
            X[rows] = rng.multinomial(case.n_trials, hmm.emissionprob[j], size=int(rows.sum()))
        return X
    if case.model == "hmm-gmm":
        m = case.n_mix
        cdf = np.cumsum(hmm.weights, axis=1)
        u = rng.random(n)
        components = states * m
        for j in range(case.n_components):
            rows = states == j
            components[rows] += np.minimum(np.searchsorted(cdf[j], u[rows], side="right"), m - 1)
        means = hmm.means.reshape(-1, case.n_features)
        factors = hmm.factors.reshape(-1, case.n_features, case.n_features)
        X = np.empty((n, case.n_features))
        for start in range(0, n, BLOCK_ROWS):
            stop = min(n, start + BLOCK_ROWS)
            z = rng.standard_normal((stop - start, case.n_features))
            block, labels = X[start:stop], components[start:stop]
            for c in range(means.shape[0]):
                rows = labels == c
                block[rows] = z[rows] @ factors[c].T + means[c]
        return X
    if case.model in ("hmm-categorical", "hmm-vcategorical"):
        X = np.empty((n, 1), dtype=np.int64)
        u = rng.random(n)
        cdf = np.cumsum(hmm.emissionprob, axis=1)
        for j in range(case.n_components):
            rows = states == j
            X[rows, 0] = np.minimum(np.searchsorted(cdf[j], u[rows], side="right"),
                                    case.n_features - 1)
        return X
    X = np.empty((n, case.n_features))
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        z = rng.standard_normal((stop - start, case.n_features))
        block, labels = X[start:stop], states[start:stop]
        for j in range(case.n_components):
            rows = labels == j
            block[rows] = z[rows] @ hmm.factors[j].T + hmm.means[j]
    return X


@dataclass(frozen=True)
class HMMStart:
    """Starting parameters of an HMM, in hmmlearn's shapes (emlab takes the same).

    Attributes
    ----------
    startprob : ndarray of shape (K,)
        Uniform.
    transmat : ndarray of shape (K, K)
        :data:`START_STAY` on the diagonal, the rest spread evenly.
    means : ndarray of shape (K, d) or None
        Gaussian: K distinct random rows of X.
    covariances : ndarray or None
        Gaussian: X's covariance for every state, in the covariance type's
        shape: full (K, d, d), tied (d, d), diag (K, d), spherical (K,).
    emissionprob : ndarray of shape (K, M) or None
        Categorical, multinomial and variational categorical: rows
        Dirichlet(5), near uniform but not symmetric.
    weights : ndarray of shape (K, n_mix) or None
        Gaussian mixture (``'hmm-gmm'``): uniform; ``means`` are then K * n_mix
        distinct random rows of X, shape (K, n_mix, d), and ``covariances``
        X's covariance for every component in hmmlearn's ``GMMHMM`` shapes:
        full (K, n_mix, d, d), tied (K, d, d), diag (K, n_mix, d),
        spherical (K, n_mix).
    """

    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray = None
    covariances: np.ndarray = None
    emissionprob: np.ndarray = None
    weights: np.ndarray = None


def make_hmm_start(case, X):
    """The :class:`HMMStart` of an HMM case, drawn once from X and the case's seed."""
    rng = np.random.default_rng([case.seed, 2])
    k = case.n_components
    startprob = np.full(k, 1.0 / k)
    transmat = np.full((k, k), (1.0 - START_STAY) / max(k - 1, 1))
    np.fill_diagonal(transmat, START_STAY if k > 1 else 1.0)
    if case.model in ("hmm-categorical", "hmm-vcategorical", "hmm-multinomial"):
        return HMMStart(startprob, transmat,
                        emissionprob=rng.dirichlet(np.full(case.n_features, 5.0), size=k))
    if case.model == "hmm-gmm":
        return _gmm_hmm_start(case, X, rng, startprob, transmat)
    rows = rng.choice(X.shape[0], size=k, replace=False)
    means = np.ascontiguousarray(X[np.sort(rows)])
    covariance = np.atleast_2d(np.cov(X, rowvar=False))
    kind = case.covariance_type
    if kind == "full":
        covariances = np.ascontiguousarray(np.broadcast_to(covariance, (k,) + covariance.shape))
    elif kind == "tied":
        covariances = covariance
    elif kind == "diag":
        covariances = np.ascontiguousarray(np.broadcast_to(np.diag(covariance), (k, X.shape[1])))
    elif kind == "spherical":
        covariances = np.full(k, np.diag(covariance).mean())
    else:
        raise ValueError(f"unknown covariance_type {kind!r}")
    return HMMStart(startprob, transmat, means=means, covariances=covariances)


def _gmm_hmm_start(case, X, rng, startprob, transmat):
    """The :class:`HMMStart` of a Gaussian-mixture HMM case (see its ``weights``)."""
    k, m, d = case.n_components, case.n_mix, X.shape[1]
    rows = rng.choice(X.shape[0], size=k * m, replace=False)
    means = np.ascontiguousarray(X[np.sort(rows)]).reshape(k, m, d)
    covariance = np.atleast_2d(np.cov(X, rowvar=False))
    kind = case.covariance_type
    if kind == "full":
        covariances = np.broadcast_to(covariance, (k, m, d, d))
    elif kind == "tied":
        covariances = np.broadcast_to(covariance, (k, d, d))
    elif kind == "diag":
        covariances = np.broadcast_to(np.diag(covariance), (k, m, d))
    elif kind == "spherical":
        covariances = np.full((k, m), np.diag(covariance).mean())
    else:
        raise ValueError(f"unknown covariance_type {kind!r}")
    return HMMStart(startprob, transmat, means=means,
                    covariances=np.ascontiguousarray(covariances), weights=np.full((k, m), 1.0 / m))
