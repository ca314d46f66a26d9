"""Data sets the book and the demo use: Iris, Wine and the optical digits (bundled), and the
two classic samples.

The bundled tables live in ``emlab/data`` (see its README.md for their sources and
licences), one CSV each: a header ``n_samples,n_features,target_name_0,...``, then
one row per sample with the class index (0-based) in the last column.
"""

import gzip
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from ._validation import check_int, check_random_state

TWO_SAMPLE_MEANS = np.array([[5.0, 1.0], [1.0, 4.0]])


@dataclass
class Dataset:
    """A data set with its true labels.

    Attributes
    ----------
    data : ndarray of shape (n_samples, n_features)
    target : ndarray of shape (n_samples,)
        The true component / class of each row.
    feature_names, target_names : list of str
    description : str
    params : dict
        The generating parameters, for synthetic data (``weights``, ``means``,
        ``covariances``); empty otherwise.
    """

    data: np.ndarray
    target: np.ndarray
    feature_names: list
    target_names: list
    description: str = ""
    params: dict = field(default_factory=dict)

    def __iter__(self):  # X, y = dataset
        return iter((self.data, self.target))


def load_iris(return_X_y=False):
    """Fisher's Iris data: 150 flowers, 4 measurements (cm), 3 species of 50.

    Bundled inside the package (the UCI table, as scikit-learn ships it, with
    the two corrected rows of Fisher's paper); no file or download needed.

    Returns
    -------
    Dataset, or ``(X, y)`` if ``return_X_y``.
    """
    text = resources.files("emlab").joinpath("data/iris.csv").read_text()
    lines = text.strip().splitlines()
    header = lines[0].split(",")
    target_names = header[2:5]
    table = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    X = np.ascontiguousarray(table[:, :4])
    y = table[:, 4].astype(np.int64)
    if return_X_y:
        return X, y
    return Dataset(
        X, y,
        ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
        target_names,
        "Fisher's (1936) Iris data: 50 flowers of each of three species.",
    )


def _read_table(filename):
    """A bundled table: (X float64 C-contiguous, y int64, target names from the header)."""
    raw = resources.files("emlab").joinpath("data", filename).read_bytes()
    if filename.endswith(".gz"):
        raw = gzip.decompress(raw)
    lines = raw.decode("ascii").strip().splitlines()
    header = lines[0].split(",")
    n_samples, n_features = int(header[0]), int(header[1])
    table = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    if table.shape != (n_samples, n_features + 1):  # a damaged installation, not a user error
        raise RuntimeError(f"emlab/data/{filename} holds a {table.shape} table; its header says "
                           f"({n_samples}, {n_features + 1}). Reinstall emlab.")
    X = np.ascontiguousarray(table[:, :n_features])
    y = table[:, n_features].astype(np.int64)
    return X, y, header[2:]


WINE_FEATURES = [
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
    "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
    "od280/od315_of_diluted_wines", "proline",
]


def load_wine(return_X_y=False):
    """The UCI Wine data: 178 wines, 13 chemical measurements, 3 cultivars (59/71/48).

    Bundled inside the package (the UCI table, as scikit-learn ships it); no
    file or download needed. The features have very different scales
    (proline is in the hundreds, hue about 1): standardise them for models
    with one step size or one prior for all features.

    Source: UCI Machine Learning Repository, Wine (Forina et al., 1991),
    https://doi.org/10.24432/C5PC7J, licensed CC BY 4.0.

    Parameters
    ----------
    return_X_y : bool, default=False

    Returns
    -------
    Dataset, or ``(X, y)`` if ``return_X_y``.
        ``data`` of shape (178, 13), float64; ``target`` in {0, 1, 2}, int64.

    Examples
    --------
    >>> X, y = load_wine(return_X_y=True)
    >>> X.shape, np.bincount(y).tolist()
    ((178, 13), [59, 71, 48])
    """
    X, y, target_names = _read_table("wine.csv")
    if return_X_y:
        return X, y
    return Dataset(
        X, y, list(WINE_FEATURES), target_names,
        "Wine (UCI Machine Learning Repository; Forina et al. 1991): chemical analysis of 178 "
        "wines from three cultivars in one region of Italy, 13 constituents each. "
        "https://doi.org/10.24432/C5PC7J, licensed CC BY 4.0.",
    )


def load_digits(return_X_y=False):
    """The UCI optical-recognition handwritten digits: 1,797 images of 8 x 8 pixels, 10 classes.

    Each pixel counts the "on" pixels of a 4 x 4 block of the 32 x 32 bitmap,
    so values are integers 0-16 (stored as float64); feature ``pixel_r_c`` is
    row r, column c of the 8 x 8 image (``X[i].reshape(8, 8)`` is the image).
    This is the UCI test set (``optdigits.tes``) as distributed with
    scikit-learn, bundled inside the package; no download needed.

    Source: UCI Machine Learning Repository, Optical Recognition of Handwritten
    Digits (Alpaydin & Kaynak, 1998), https://doi.org/10.24432/C50P49, licensed
    CC BY 4.0.

    Parameters
    ----------
    return_X_y : bool, default=False

    Returns
    -------
    Dataset, or ``(X, y)`` if ``return_X_y``.
        ``data`` of shape (1797, 64), float64 with values 0-16; ``target`` the
        digit 0-9, int64; ``target_names`` the digits as strings.

    See Also
    --------
    load_binary_digits : the same images with each pixel made 0 or 1.

    Examples
    --------
    >>> X, y = load_digits(return_X_y=True)
    >>> X.shape, int(X.min()), int(X.max()), len(np.unique(y))
    ((1797, 64), 0, 16, 10)
    """
    X, y, target_names = _read_table("digits.csv.gz")
    if return_X_y:
        return X, y
    return Dataset(
        X, y, [f"pixel_{r}_{c}" for r in range(8) for c in range(8)], target_names,
        "Optical Recognition of Handwritten Digits (UCI Machine Learning Repository; Alpaydin & "
        "Kaynak 1998): 8 x 8 images of handwritten digits, each pixel the count (0-16) of on "
        "pixels in a 4 x 4 block of a 32 x 32 bitmap. The UCI test set (optdigits.tes, 1,797 "
        "images) as distributed with scikit-learn. https://doi.org/10.24432/C50P49, licensed "
        "CC BY 4.0.",
    )


def load_binary_digits(threshold=8, return_X_y=False):
    """The optical digits of :func:`load_digits` with binary pixels: 1 where ``pixel >= threshold``.

    Data for Bernoulli mixtures.

    Parameters
    ----------
    threshold : int, default=8
        Pixels (0-16) at or above it become 1, the others 0; between 0 (all
        ones) and 17 (all zeros).
    return_X_y : bool, default=False

    Returns
    -------
    Dataset, or ``(X, y)`` if ``return_X_y``.
        ``data`` of shape (1797, 64), float64 of 0.0 and 1.0.

    Examples
    --------
    >>> X, y = load_binary_digits(return_X_y=True)
    >>> sorted(np.unique(X).tolist())
    [0.0, 1.0]
    """
    threshold = check_int(threshold, "threshold", low=0, high=17)
    ds = load_digits()
    X = np.ascontiguousarray((ds.data >= threshold).astype(np.float64))
    if return_X_y:
        return X, ds.target
    return Dataset(
        X, ds.target, ds.feature_names, ds.target_names,
        f"{ds.description} Binarised: pixel >= {threshold} -> 1, else 0.",
    )


def _two_gaussians(n, weights, covariances, rng, name):
    weights = np.asarray(weights)
    labels = rng.choice(2, size=n, p=weights)
    X = np.empty((n, 2))
    for k in range(2):
        rows = labels == k
        X[rows] = rng.multivariate_normal(TWO_SAMPLE_MEANS[k], covariances[k], size=int(rows.sum()))
    return Dataset(
        X, labels, ["x1", "x2"], ["component at (5, 1)", "component at (1, 4)"], name,
        {"weights": weights, "means": TWO_SAMPLE_MEANS.copy(), "covariances": np.asarray(covariances)},
    )


def two_samples(n=500, random_state=None):
    """The two classic synthetic samples that compare k-means with EM.

    Each has ``n`` points from a mixture of two bivariate Gaussians with means
    (5, 1) and (1, 4), and the component of each point is drawn from the weights:

    * sample 1: weights 1/2, 1/2; covariance 0.5 I for both components;
    * sample 2: weights 0.95, 0.05; covariance diag(1.5, 0.1) for the heavy
      component at (5, 1) and 0.8 I for the light one at (1, 4).

    On sample 1 k-means and EM agree; on sample 2 k-means, which splits the
    plane by the perpendicular bisector of the centres, cuts off part of the
    wide heavy component, while EM models its shape.

    Parameters
    ----------
    n : int, default=500
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    (Dataset, Dataset)
        Sample 1 and sample 2; ``target`` is the true component (0 at (5, 1),
        1 at (1, 4)).
    """
    n = check_int(n, "n", low=2)
    rng = check_random_state(random_state)
    s1 = _two_gaussians(n, [0.5, 0.5], [0.5 * np.eye(2), 0.5 * np.eye(2)], rng,
                        "Sample 1: equal weights, covariance 0.5 I.")
    s2 = _two_gaussians(n, [0.95, 0.05], [np.diag([1.5, 0.1]), 0.8 * np.eye(2)], rng,
                        "Sample 2: weights 0.95/0.05, covariances diag(1.5, 0.1) and 0.8 I.")
    return s1, s2
