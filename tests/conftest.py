import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)


@pytest.fixture
def random_spd(rng):
    """A factory of k random symmetric positive-definite d x d matrices."""

    def make(k, d, scale=1.0):
        a = rng.standard_normal((k, d, d))
        return scale * (a @ np.swapaxes(a, 1, 2) / d + 0.5 * np.eye(d))

    return make
