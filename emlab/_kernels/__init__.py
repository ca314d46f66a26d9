"""Numba kernels. Functions here take C-contiguous float64 arrays and ints, fill
``out`` arrays that the caller allocated, and do no validation."""

from .. import _compile
from . import (elementary, experts, families, gaussian, gmmhmm, hidden_mlp, hmm, kmeans, missing,
               mixture)

for _module in (elementary, experts, families, gaussian, gmmhmm, hidden_mlp, hmm, kmeans, missing,
                mixture):
    _compile.run_from_cache(_module)
del _module
