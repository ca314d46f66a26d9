"""Component families shared by :class:`emlab.MixtureModel` and :class:`emlab.HMM`.

A family is written once (log-density kernel, additive sufficient statistics,
M-step with its conjugate prior, sampling) and is then a mixture component and
an HMM emission, fitted in memory, over chunks (Dask) or online.
"""

from ._base import Family
from .discrete import Bernoulli, Categorical, Exponential, Poisson
from .gaussian import Gaussian, StudentT
from .mixture_of import Mixture

__all__ = ["Bernoulli", "Categorical", "Exponential", "Family", "Gaussian", "Mixture", "Poisson",
           "StudentT"]
