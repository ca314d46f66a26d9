"""Data sets the book and the demo use: Iris (bundled) and the two classic samples."""

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
