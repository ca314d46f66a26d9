import itertools

import numpy as np
import pytest

import reference
from emlab.metrics import confusion_matrix, match_labels, misclassified


def test_confusion_matrix_counts_pairs():
    c = confusion_matrix([0, 0, 1, 2, 2, 2], [1, 1, 0, 2, 2, 0])
    assert c.tolist() == [[0, 2, 0], [1, 0, 0], [1, 0, 2]]


def test_matching_equals_brute_force(rng):
    for _ in range(50):
        k = int(rng.integers(2, 5))
        y = rng.integers(k, size=40)
        pred = rng.integers(k, size=40)
        assert misclassified(y, pred) == reference.best_permutation_errors(y, pred, k)


def test_relabelled_perfect_clustering_has_no_errors():
    y = np.array([0, 0, 1, 1, 2, 2])
    for perm in itertools.permutations(range(3)):
        pred = np.asarray(perm)[y]
        assert np.array_equal(match_labels(y, pred), y)


def test_bad_labels_are_named():
    with pytest.raises(ValueError, match="y_pred must hold non-negative integer"):
        confusion_matrix([0, 1], [0.5, 1.0])
    with pytest.raises(ValueError, match="differ in length"):
        confusion_matrix([0, 1], [0])
