"""What every component family provides, and the pieces families share."""

import numpy as np

from .. import _config
from .._kernels.families import weighted_sums
from ..em import SufficientStatistics


class Family:
    """A family of component distributions, written once for mixtures and HMMs.

    A family knows its data (``check_X``), its log-density (``log_prob``), its
    expected sufficient statistics under responsibilities (``statistics``,
    which add over chunks of rows: the protocol of :class:`~emlab.em.SufficientStatistics`),
    the M-step from them (``m_step``, MAP under its conjugate prior),
    the prior's log-density (``log_prior``) and ``sample``. Parameters are a
    dict of arrays whose first axis is the component. ``letters`` are the
    family's parameter letters for ``params``/``init_params``, ``attributes``
    maps each parameter to the fitted attribute that shows it
    (``means`` -> ``means_``).

    :class:`emlab.MixtureModel` and :class:`emlab.HMM` use only these methods,
    so a new family (a subclass) is at once a mixture component and an HMM
    emission, distributed and online.
    """

    letters = ""
    #: the share of uniform responsibility mixed into a hard (k-means) start: a hard start
    #: gives discrete families probabilities or rates of exactly 0, a fixed point EM never leaves
    start_smoothing = 0.0
    attributes = {}
    #: which parameter each letter learns
    letter_params = {}

    def check_X(self, X, name="X", n_features=None):  # pragma: no cover - interface
        raise NotImplementedError

    def log_prob(self, X, params):  # pragma: no cover - interface
        raise NotImplementedError

    def statistics(self, X, resp, params):  # pragma: no cover - interface
        raise NotImplementedError

    def m_step(self, stats, params, learn):  # pragma: no cover - interface
        raise NotImplementedError

    def log_prior(self, params):
        return 0.0

    def totals(self, stats):
        """Each component's total responsibility in ``stats`` (what the mixture weights are)."""
        return stats.nk

    def prepare(self, X, sample_weight, n_components):
        """The family to fit X with: itself, or a copy whose data-driven settings (a
        default prior) are resolved from X (an array or chunked data)."""
        return self

    def start_features(self, X):
        """The rows k-means seeds on (for most families, X itself)."""
        return X

    def n_parameters(self, params):  # pragma: no cover - interface
        """Free parameters of all components (for BIC/AIC)."""
        raise NotImplementedError

    def sample(self, params, k, n, rng):  # pragma: no cover - interface
        raise NotImplementedError

    def check_params(self, params, n_components, n_features):
        """Validate user-set parameters (attributes set before ``fit``); return them."""
        return params

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._args().items())
        return f"{type(self).__name__}({args})"

    def _args(self):
        return {}

    def _key(self):
        """The arguments, sequences as tuples: equal families have equal keys."""
        def canonical(value):
            if isinstance(value, (list, tuple, np.ndarray)):
                return tuple(canonical(v) for v in np.asarray(value, dtype=object).tolist()) \
                    if not isinstance(value, np.ndarray) or value.ndim else value.item()
            return value
        return type(self).__name__, tuple((k, canonical(v)) for k, v in self._args().items())

    def __eq__(self, other):
        return isinstance(other, Family) and self._key() == other._key()

    def __hash__(self):
        return hash(repr(self._key()))


def sums_statistics(X, resp):
    """``nk = sum_i resp[i]`` and ``sums[k] = sum_i resp[i, k] x_i``, as plain additive statistics."""
    n, d = X.shape
    k = resp.shape[1]
    sums = np.empty((k, d))
    with _config.threads_for(n * k * d):
        weighted_sums(X, np.ascontiguousarray(resp), _config.n_blocks(n, k * d), _config.CHUNK_ROWS,
                      sums)
    return SufficientStatistics(0.0, 0.0, nk=resp.sum(axis=0), sums=sums)


def check_prior_pair(value, name, low_first=0.0, low_second=0.0):
    """A (shape, rate)-like pair of finite numbers above the given bounds."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of numbers; got {value!r}.") from None
    if not (np.isfinite(a) and np.isfinite(b) and a > low_first and b >= low_second):
        raise ValueError(f"{name} must be finite with first > {low_first} and second >= "
                         f"{low_second}; got {value!r}.")
    return a, b

