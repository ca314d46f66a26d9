"""Numba kernels. Functions here take C-contiguous float64 arrays and ints, fill
``out`` arrays that the caller allocated, and do no validation."""
