"""Elementary functions that vectorise inside Numba loops.

Numba's ``math.exp`` in a loop is a scalar library call (about 4 ns here: the
LLVM that numba's wheels ship has no vector math library). ``exp_nonpos`` is
written so LLVM can vectorise it (0.65 ns instead of 4.4 ns here): range
reduction to ``|r| <= ln(2)/2``, ``1 + r + r^2 g(r)`` with ``g`` a degree-9
Chebyshev fit of ``(exp(r) - 1 - r) / r^2`` (error below 2e-17 relative, and
exactly 1 at 0), and the power of two built directly in the exponent bits.
Measured, one core, exponentials of a tile of log-densities: 0.77 ns with the
degree-13 Taylor polynomial and ``floor``, 0.68 with the degree-11 polynomial,
0.65 with both changes; the same errors.

The nearest integer n to ``x / ln 2`` comes from one multiply-add,
``t = x log2(e) + (1.5 * 2**52 + 1023)``, whose low mantissa bits then hold
``n + 1023``: shifted left by 52 they are the bits of ``2**n``, and ``t`` less
the constant is n as a float (no rounding instruction, no integer add, no
conversion from int: 17 vector operations an exponential where there were 19).
That subtraction is kept from LLVM's fast-math algebra, which would cancel it
against the add inside ``t`` (``_sub_exactly``); the results are bit for bit those
of the integer route (3e6 arguments, both precisions). One EM step, 2 threads,
N = 1e6 (best of 25, alternated runs): d = 2, K = 3 2.03-2.09 -> 1.97-2.01 ms;
diagonal d = 8, K = 8 10.4 -> 9.8 ms.

Measured against numpy's exp on a million arguments in each range: relative
error below 2.3e-16 for -1 < x <= 0, 4.5e-16 for -8 < x < -1 and ``5.4e-17 * |x|``
for -708 < x < -8. (The
``reassoc`` flag lets LLVM merge the two halves of the Cody-Waite reduction;
the loss is no larger than the error ``x`` itself carries when it is a
difference of log-densities of size ``|x|``.)

``exp_nonpos32`` is its float32 counterpart (Cephes' ``expf`` polynomial, degree
6 after the reduction), and ``exp_nonpos_of`` picks one by its argument's
type, so a kernel written once runs in either precision. ``like(a, x)`` casts a
constant to ``a``'s element type: a float literal in Numba is float64, and one
such constant in a float32 loop turns the whole loop into float64.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from .._config import CACHE, ERROR_MODEL, FASTMATH

LOG2E = 1.4426950408889634
LN2_HI = 0.6931471803691238  # ln 2 split in two so n * LN2_HI is exact for |n| < 2^21
LN2_LO = 1.9082149292705877e-10
EXP_UNDERFLOW = -708.0  # below this, exp(x) is subnormal or zero: returned as 0
# 1.5 * 2**52 + 1023: x + ROUND_SHIFT is an integer (the spacing of floats there is 1) whose
# low 12 bits are round(x) + 1023, the biased exponent of 2**round(x) for x in [-1022, 1023]
ROUND_SHIFT = 6755399441056767.0
# (exp(r) - 1 - r) / r^2 on |r| <= 0.3467: Chebyshev fit of degree 9 (mpmath.chebyfit, 40
# digits), highest power first. Its error, 1.1e-16, is below 1.8e-17 of exp(r) once
# multiplied by r^2.
_G = (2.510039286029158e-08, 2.762009802236401e-07, 2.7557268444512468e-06,
      2.4801521275818705e-05, 0.00019841269863063584, 0.0013888888917226677,
      0.00833333333333006, 0.0416666666666241, 0.16666666666666669, 0.5000000000000001)


@intrinsic
def _float64_bits_as_int64(typingctx, value):
    """Reinterpret the 64 bits of a float64 as an int64 (an LLVM bitcast)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _sub_exactly(typingctx, a, b):
    """``a - b`` for two float64 or two float32 values, carrying the fast-math flag
    ``arcp`` alone: numba gives its flags only to operations that have none, and
    without ``reassoc`` LLVM cannot rewrite ``(y + c) - c`` as ``y``. For the
    rounding trick in ``exp_nonpos``, whose point is the rounding that rewrite
    would remove."""
    if a != b or a not in (types.float64, types.float32):
        return None
    sig = a(a, b)

    def codegen(context, builder, signature, args):
        return builder.fsub(args[0], args[1], flags=("arcp",))

    return sig, codegen


@intrinsic
def _shifted_to_exponent(typingctx, t):
    """The float whose bits are those of ``t`` shifted left past the mantissa (52
    places for float64, 23 for float32): ``2**n`` when ``t``'s low bits hold
    n plus the exponent bias (``ROUND_SHIFT``, ``ROUND_SHIFT32``)."""
    if t not in (types.float64, types.float32):
        return None
    sig = t(t)
    width, places = (64, 52) if t == types.float64 else (32, 23)

    def codegen(context, builder, signature, args):
        integer = ir.IntType(width)
        bits = builder.bitcast(args[0], integer)
        bits = builder.shl(bits, ir.Constant(integer, places))
        return builder.bitcast(bits, args[0].type)

    return sig, codegen


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
    t = xc * LOG2E + ROUND_SHIFT
    n = _sub_exactly(t, ROUND_SHIFT)  # round(xc / ln 2), in [-1022, 0]
    r = (xc - n * LN2_HI) - n * LN2_LO
    g0, g1, g2, g3, g4, g5, g6, g7, g8, g9 = _G
    p = g0 * r + g1
    p = p * r + g2
    p = p * r + g3
    p = p * r + g4
    p = p * r + g5
    p = p * r + g6
    p = p * r + g7
    p = p * r + g8
    p = p * r + g9
    p = (p * r + 1.0) * r + 1.0
    return p * _shifted_to_exponent(t) if x >= EXP_UNDERFLOW else 0.0


# ----------------------------------------------------------------------------- float32

LOG2E32 = np.float32(LOG2E)
LN2_HI32 = np.float32(0.693359375)  # 355/512: n * LN2_HI32 exact for |n| < 2^14
LN2_LO32 = np.float32(-2.12194440e-4)
EXP_UNDERFLOW32 = np.float32(-87.0)  # exp(-87.34) is float32's smallest normal number
ROUND_SHIFT32 = np.float32(12583039.0)  # 1.5 * 2**23 + 127: as ROUND_SHIFT, for float32
_ONE32 = np.float32(1.0)
_ZERO32 = np.float32(0.0)
_P32 = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                      4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def exp_nonpos32(x):
    """float32 ``exp(x)`` for ``x <= 0`` (``-inf`` included); 0 below -87.

    Measured against numpy's float64 exp of the same float32 arguments, a
    million in [-87, 0]: relative error below 1.2e-7 for x > -1 and below
    3e-7 overall (float32 rounds to 6e-8); 0.2 ns per value in a loop here,
    against 0.65 ns for ``exp_nonpos``.
    """
    xc = max(x, EXP_UNDERFLOW32)
    t = xc * LOG2E32 + ROUND_SHIFT32
    n = _sub_exactly(t, ROUND_SHIFT32)  # round(xc / ln 2), in [-126, 0]
    r = (xc - n * LN2_HI32) - n * LN2_LO32
    p0, p1, p2, p3, p4, p5 = _P32
    p = ((((p0 * r + p1) * r + p2) * r + p3) * r + p4) * r + p5
    e = (p * (r * r) + r) + _ONE32
    return e * _shifted_to_exponent(t) if x >= EXP_UNDERFLOW32 else _ZERO32


def exp_nonpos_of(x):
    """``exp_nonpos`` or ``exp_nonpos32``, chosen by the type of ``x`` (in kernels only)."""
    raise NotImplementedError("exp_nonpos_of is called inside Numba kernels only")


@overload(exp_nonpos_of)
def _exp_nonpos_of(x):
    if x == types.float32:
        return lambda x: exp_nonpos32(x)
    return lambda x: exp_nonpos(x)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def exponent_and_mantissa(p):
    """``(e, m)`` with ``p = m 2**e``, ``1 <= m < 2``, for a positive normal float64 ``p``
    (read from its bits: no log taken)."""
    bits = _float64_bits_as_int64(p)
    exponent = (bits >> 52) - 1023
    mantissa = _int64_bits_as_float64((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)
    return exponent, mantissa


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def power_of_two(n):
    """``2.0**n`` for an integer ``-1022 <= n <= 1023``, built in the exponent bits (exact;
    no call, so a loop that uses it keeps its values in registers)."""
    return _int64_bits_as_float64((n + 1023) << 52)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _reciprocal64(x):
    """``1 / x`` for a float64 ``x`` in float32's normal range: float32's quotient and
    two Newton steps. LLVM leaves a loop of float64 divisions scalar here (0.31 ns a
    value, one core); this vectorises (0.22 ns). Measured on 1.1e6 values in [1, 1e7]:
    equal to ``1 / x`` in every case (the test asserts within an ulp)."""
    y = np.float64(np.float32(1.0) / np.float32(x))
    y = y + y * (1.0 - x * y)
    return y + y * (1.0 - x * y)


def reciprocal_of(x):
    """``1 / x`` in ``x``'s precision (in kernels only; float64 ``x`` in float32's
    normal range, see ``_reciprocal64``)."""
    raise NotImplementedError("reciprocal_of is called inside Numba kernels only")


@overload(reciprocal_of)
def _reciprocal_of(x):
    if x == types.float32:
        return lambda x: np.float32(1.0) / x
    return lambda x: _reciprocal64(x)


def like(a, x):
    """``x`` as a number of ``a``'s element type (in kernels only)."""
    raise NotImplementedError("like is called inside Numba kernels only")


@overload(like)
def _like(a, x):
    element = a.dtype

    def impl(a, x):
        return element(x)

    return impl
