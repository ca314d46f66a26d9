"""Elementary functions that vectorise inside Numba loops.

Numba's ``math.exp`` in a loop is a scalar library call (about 4 ns here: the
LLVM that numba's wheels ship has no vector math library). ``exp_nonpos`` is
written so LLVM can vectorise it (0.7 ns instead of 4.4 ns here): range
reduction to ``|r| <= ln(2)/2``, a degree-13 Taylor polynomial (truncation error
below 2e-16 relative), and the power of two built directly in the exponent bits.

Measured against numpy's exp on a million arguments in [-708, 0]: relative
error below 2.3e-16 for x > -1 and below ``3.5e-17 * |x|`` overall. (The
``reassoc`` flag lets LLVM merge the two halves of the Cody-Waite reduction;
the loss is no larger than the error ``x`` itself carries when it is a
difference of log-densities of size ``|x|``.)
"""

import math

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .._config import CACHE, ERROR_MODEL, FASTMATH

LOG2E = 1.4426950408889634
LN2_HI = 0.6931471803691238  # ln 2 split in two so n * LN2_HI is exact for |n| < 2^21
LN2_LO = 1.9082149292705877e-10
EXP_UNDERFLOW = -708.0  # below this, exp(x) is subnormal or zero: returned as 0


@intrinsic
def _int64_bits_as_float64(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (an LLVM bitcast)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def exp_nonpos(x):
    """``exp(x)`` for ``x <= 0`` (``-inf`` included); 0 below -708 (see the module notes)."""
    xc = max(x, EXP_UNDERFLOW)
    n = math.floor(xc * LOG2E + 0.5)
    r = (xc - n * LN2_HI) - n * LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    scale = _int64_bits_as_float64((int(n) + 1023) << 52)
    return p * scale if x >= EXP_UNDERFLOW else 0.0
