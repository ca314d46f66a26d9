"""emlab: the EM algorithm, fast and checked.

Gaussian mixtures fitted by EM and k-means on Numba kernels, a generic EM
driver for your own latent-variable models, and the functions the book's proofs
are checked with (:mod:`emlab.theory`).
"""

from . import datasets, families, plotting, theory
from .bayesian_mixture import BayesianGaussianMixture
from .em import ChunkList, EMResult, SufficientStatistics, fit_em, run_em
from .exceptions import (
    ConvergenceWarning,
    DegenerateComponentError,
    DegenerateCovarianceError,
    DegenerateCovarianceWarning,
    EmptyComponentWarning,
    ForkedProcessError,
    LikelihoodDecreaseError,
    LikelihoodDecreaseWarning,
    ModelFileError,
    NotFittedError,
    SingularHessianError,
    UnderflowWarning,
)
from .family_hmm import HMM
from .gmmhmm import GMMHMM
from .experts import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from .hidden_mlp import BinaryHiddenMLPClassifier
from .hmm import CategoricalHMM, GaussianHMM, MultinomialHMM, PoissonHMM
from .kmeans import KMeans, kmeans_plusplus
from .mixture import GaussianMixture, MixtureParams
from .mixture_model import MixtureModel
from .selection import Selection, select
from .vhmm import VariationalCategoricalHMM, VariationalGaussianHMM

__version__ = "0.1.0"

__all__ = [
    "BayesianGaussianMixture",
    "BinaryHiddenMLPClassifier",
    "CategoricalHMM",
    "ChunkList",
    "ConvergenceWarning",
    "DegenerateComponentError",
    "DegenerateCovarianceError",
    "DegenerateCovarianceWarning",
    "EMResult",
    "EmptyComponentWarning",
    "ForkedProcessError",
    "GMMHMM",
    "HMM",
    "GaussianHMM",
    "GaussianMixture",
    "KMeans",
    "LikelihoodDecreaseError",
    "LikelihoodDecreaseWarning",
    "MixtureModel",
    "MixtureOfExpertsClassifier",
    "MixtureOfExpertsRegressor",
    "ModelFileError",
    "MultinomialHMM",
    "MixtureParams",
    "NotFittedError",
    "PoissonHMM",
    "Selection",
    "SingularHessianError",
    "SufficientStatistics",
    "UnderflowWarning",
    "VariationalCategoricalHMM",
    "VariationalGaussianHMM",
    "datasets",
    "families",
    "fit_em",
    "plotting",
    "kmeans_plusplus",
    "run_em",
    "select",
    "theory",
]
