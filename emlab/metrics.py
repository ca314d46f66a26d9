"""Comparing a clustering with true labels, up to a relabelling of the clusters."""

import numpy as np
from scipy.optimize import linear_sum_assignment


def _labels(y, name):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-d; got shape {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ValueError(f"{name} must hold non-negative integer labels.")
    return y


def confusion_matrix(y_true, y_pred):
    """Counts ``C[i, j]`` of samples with true label i and predicted label j."""
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.size} and {y_pred.size}.")
    shape = (int(y_true.max(initial=-1)) + 1, int(y_pred.max(initial=-1)) + 1)
    out = np.zeros(shape, dtype=np.int64)
    np.add.at(out, (y_true, y_pred), 1)
    return out


def match_labels(y_true, y_pred):
    """Relabel ``y_pred`` so that it agrees with ``y_true`` on as many samples as possible.

    Cluster numbers are arbitrary; the best one-to-one matching of clusters to
    classes is found exactly (Hungarian algorithm on the confusion matrix).
    Clusters left unmatched keep labels beyond the classes'.
    """
    c = confusion_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(-c)
    mapping = np.arange(c.shape[1]) + c.shape[0]  # unmatched clusters
    mapping[cols] = rows
    return mapping[np.asarray(y_pred)]


def misclassified(y_true, y_pred):
    """Number of samples whose cluster, after the best relabelling, is not their class."""
    return int(np.sum(match_labels(y_true, y_pred) != np.asarray(y_true)))
