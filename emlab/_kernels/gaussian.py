"""Log-densities of multivariate Gaussians, parametrised by precision Cholesky factors.

For component k with mean ``mu_k`` and precision ``P_k = U_k U_k^T`` (``U_k`` upper
triangular, scikit-learn's ``precisions_cholesky_``), the log-density of a row ``x`` is

    log N(x | mu_k, P_k^-1) = -d/2 log(2 pi) + sum_j log U_k[j, j] - 1/2 ||(x - mu_k) U_k||^2

so the log-determinant is a sum of log-diagonals and no matrix is ever inverted.
The kernels take the transposed factor ``L_k = U_k^T`` (lower triangular) so that
the inner loop reads a row of L_k contiguously.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .._config import CACHE, ERROR_MODEL, FASTMATH, PARALLEL
from .elementary import like
from .simd import (WIDTH_BYTES, lanes, vfma, vload, vsplat, vstore1, vsub, vtranspose_block,
                   vtranspose_half_block, vzero)

LOG_2PI = math.log(2.0 * math.pi)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def log_det_cholesky(chol_t, out):
    """Fill ``out[k]`` with ``sum_j log chol_t[k, j, j]``."""
    n_components, n_features = chol_t.shape[0], chol_t.shape[1]
    for k in range(n_components):
        s = 0.0
        for j in range(n_features):
            s += math.log(chol_t[k, j, j])
        out[k] = s


# ----------------------------------------------------------------------------- tiles
#
# Kernels walk their rows in tiles of TILE rows, copied transposed (features x rows),
# so that the innermost loops run across rows and vectorise. A change of these
# constants (as of any kernel file) makes every kernel compile again once
# (``emlab/_compile.py`` stamps all their caches with one hash of the kernel files).

TILE = 128  # rows per tile (measured: full-covariance kernels 8-12% faster than with 64, and than 256)
SMALL_D = 4  # up to this many features, full-covariance tiles use 2 x 2 blocks
# vectors of tile rows per group in the register-blocked log-density: 4 with 32 vector registers
# (AVX-512), 2 with 16, where four times four running vectors would spill
ROW_VECTORS = 4 if WIDTH_BYTES == 64 else 2


def shift_of(shift, j, X):
    """``shift[j]``, or a zero of X's type where ``shift`` is None (in kernels only): the
    loads below subtract it, and LLVM drops the subtraction of a constant zero."""
    raise NotImplementedError("shift_of is called inside Numba kernels only")


@overload(shift_of)
def _shift_of(shift, j, X):
    if isinstance(shift, types.NoneType):
        element = X.dtype
        return lambda shift, j, X: element(0.0)
    return lambda shift, j, X: shift[j]


@intrinsic
def _prefetch_bytes(typingctx, X, i, offset):
    """Ask the CPU to bring the cache line ``offset`` bytes past ``X[i, 0]`` (``X[i]`` for a
    1-D X) into its L2 cache (LLVM's ``prefetch``: no fault, whatever the address)."""
    if not (isinstance(X, types.Array) and X.ndim in (1, 2)):
        return None
    sig = types.void(X, i, offset)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        row = cgutils.get_item_pointer(context, builder, array_type, array,
                                       [index, zero][:array_type.ndim], wraparound=False)
        i8 = ir.IntType(8)
        ptr = builder.gep(builder.bitcast(row, i8.as_pointer()),
                          [context.cast(builder, args[2], signature.args[2], types.intp)])
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32]),
            "llvm.prefetch.p0")
        # read, locality 2 (prefetcht1: L2 and beyond), data cache
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 2), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def prefetch_tile_part(X, t0, rows, part, parts):
    """Prefetch one of ``parts`` equal shares (``part`` from 0) of the cache lines of rows
    [t0, t0 + rows) of C-contiguous X into L2: called with the next tile's rows, one
    share before each component's work on the current tile, so that the next copy
    (``load_tile``) does not wait for memory.

    All the lines at once, before the tile's work, filled the core's few
    outstanding-miss slots and the prefetches waited for memory in turn. Spread
    over the 2K passes of the fused steps (one step, 2 threads, this Intel
    machine, best of 25 in alternated runs): N = 1e6 diagonal d = 8, K = 8
    11.1-11.5 -> 10.3 ms; full d = 8, K = 8 17.3-17.7 -> 15.7-16.4 ms; d = 2, K = 3
    2.05-2.17 -> 1.92-2.07 ms; N = 2e5, d = 32, K = 16 unchanged (58-62 ms). Two
    tiles ahead instead of one: diagonal 10.7-11.0 ms.
    """
    if rows <= 0:
        return
    first, last = share_of((rows * X.shape[1] * X.itemsize + 63) // 64, part, parts)
    for line in range(first, last):
        _prefetch_bytes(X, t0, line * 64)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def share_of(count, part, parts):
    """``(first, last)``: share ``part`` of ``parts`` of range(count), the shares in order,
    disjoint, covering it, their sizes differing by at most one."""
    return (count * part) // parts, (count * (part + 1)) // parts


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def load_tile(X, t0, rows, xt, shift):
    """xt[j, r] = X[t0 + r, j] - shift[j]: a tile of rows, transposed so loops over rows
    vectorise (``shift`` None: no shift).

    X's row stride is a run-time value to LLVM, so a loop over rows with a
    loop over features inside does not vectorise. For d <= 3 each feature is
    copied in a branch of its own, where the test ``d == 2`` tells LLVM the
    stride, and the copy vectorises; d > 3 goes through ``load_tile_4x4``.
    Measured, one core, N = 1e6, d = 2: 1.86 ms (the double loop), 0.66 ms
    (``load_tile_4x4``), 0.57 ms (this).
    """
    if X.shape[1] <= 3:
        load_tile_small(X, t0, rows, xt, shift)
    else:
        load_tile_4x4(X, t0, rows, xt, shift)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def load_tile_small(X, t0, rows, xt, shift):
    """``load_tile`` for d <= 4, a branch of its own for each d, without ``load_tile_4x4``.

    The kernels for d <= 4 (``mixture._block_step_tiny``, ``_block_step_small``)
    call it, so they do not compile the 4 x 4 blocks' copy and its vector
    transposes (2.1 s of compiling, measured; a first fit on Iris, d = 4,
    waited for it). At d = 4 the copy vectorises as those for d <= 3 do.
    """
    d = X.shape[1]
    u0 = np.uint64(t0)  # unsigned rows: no test of each index for a negative value
    if d == 1:
        s0 = shift_of(shift, 0, X)
        for r in range(rows):
            xt[0, r] = X[u0 + np.uint64(r), 0] - s0
    elif d == 2:
        s0, s1 = shift_of(shift, 0, X), shift_of(shift, 1, X)
        for r in range(rows):
            i = u0 + np.uint64(r)
            xt[0, r] = X[i, 0] - s0
            xt[1, r] = X[i, 1] - s1
    elif d == 3:
        s0, s1, s2 = shift_of(shift, 0, X), shift_of(shift, 1, X), shift_of(shift, 2, X)
        for r in range(rows):
            i = u0 + np.uint64(r)
            xt[0, r] = X[i, 0] - s0
            xt[1, r] = X[i, 1] - s1
            xt[2, r] = X[i, 2] - s2
    else:
        s0, s1, s2, s3 = (shift_of(shift, 0, X), shift_of(shift, 1, X), shift_of(shift, 2, X),
                          shift_of(shift, 3, X))
        for r in range(rows):
            i = u0 + np.uint64(r)
            xt[0, r] = X[i, 0] - s0
            xt[1, r] = X[i, 1] - s1
            xt[2, r] = X[i, 2] - s2
            xt[3, r] = X[i, 3] - s3


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def load_tile_4x4(X, t0, rows, xt, shift):
    """As ``load_tile``, copied in square blocks through registers.

    Blocks of ``lanes`` rows and features (8 x 8 with AVX-512 and float64) are
    transposed in vector registers (``transposed_blocks``), or blocks of ``lanes / 2``
    in half-width vectors where X has fewer features than lanes (float32 at d = 8
    with AVX-512, 16 lanes: copied as scalars before, the float32 tile copy took
    2.07 ms per 5e5 rows on one core against float64's 1.27, and 0.73 ms since; the
    diagonal step at N = 1e6, d = 8, K = 8 in float32 6.7-7.1 -> 5.2-5.5 ms, the full
    one 10.2-10.5 -> 8.3-8.9 ms; float64 d = 4 full 8.7-8.9 -> 8.0 ms, a kernel that has
    since copied its tiles with ``load_tile_small`` at the same speed); the features
    and rows left over go in 4 x 4 blocks of scalars (``_copy_4x4``), and the rows
    left after those one by one. LLVM vectorises ``load_tile``'s double loop with
    scatter stores, which took a fifth of the diagonal kernel's time at d = 8
    (measured with perf). Measured here (Intel, AVX-512), one core, tiles in cache,
    ns per element: the 4 x 4 blocks 0.34 at d = 8, 0.39 at d = 32.
    ``load_tile`` comes here for d > 3.
    """
    rv, dv = transposed_blocks(X, t0, rows, xt, shift)
    _copy_4x4(X, t0, 0, rv, dv, xt, shift)
    _copy_4x4(X, t0, rv, rows, 0, xt, shift)


def transposed_blocks(X, t0, rows, xt, shift):
    """Copy the tile's whole ``lanes x lanes`` blocks transposed (``simd.vtranspose_block``;
    ``lanes / 2`` blocks, ``simd.vtranspose_half_block``, where d < lanes) and return how
    many rows and features they covered, ``(rv, dv)``; ``(0, 0)`` for an X that is not
    C-contiguous (in kernels only)."""
    raise NotImplementedError("transposed_blocks is called inside Numba kernels only")


@overload(transposed_blocks)
def _transposed_blocks(X, t0, rows, xt, shift):
    if not (isinstance(X, types.Array) and X.layout == "C" and xt.layout == "C"
            and X.dtype == xt.dtype):
        return lambda X, t0, rows, xt, shift: (0, 0)

    def impl(X, t0, rows, xt, shift):
        w = lanes(xt)
        d = X.shape[1]
        if d < w and d >= w // 2 >= 4:  # half-width blocks (float32 at d = 8 with AVX-512)
            h = w // 2
            rv, dv = rows - rows % h, d - d % h
            for r in range(0, rv, h):
                for j in range(0, dv, h):
                    vtranspose_half_block(X, t0 + r, j, xt, r, shift)
            return rv, dv
        rv, dv = rows - rows % w, d - d % w
        for r in range(0, rv, w):
            for j in range(0, dv, w):
                vtranspose_block(X, t0 + r, j, xt, r, shift)
        return rv, dv

    return impl


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _copy_4x4(X, t0, r_from, r_to, j_from, xt, shift):
    """``xt[j, r] = X[t0 + r, j] - shift[j]`` for rows [r_from, r_to) and features
    [j_from, d): 4 x 4 blocks (four rows read in order, four feature rows written four
    at a time), then the features and rows left over one by one."""
    d = X.shape[1]
    r4 = r_from + (r_to - r_from) // 4 * 4
    d4 = j_from + (d - j_from) // 4 * 4
    for r in range(r_from, r4, 4):
        i = t0 + r
        for j in range(j_from, d4, 4):
            s0, s1 = shift_of(shift, j, X), shift_of(shift, j + 1, X)
            s2, s3 = shift_of(shift, j + 2, X), shift_of(shift, j + 3, X)
            a00, a01, a02, a03 = X[i, j] - s0, X[i, j + 1] - s1, X[i, j + 2] - s2, X[i, j + 3] - s3
            a10, a11 = X[i + 1, j] - s0, X[i + 1, j + 1] - s1
            a12, a13 = X[i + 1, j + 2] - s2, X[i + 1, j + 3] - s3
            a20, a21 = X[i + 2, j] - s0, X[i + 2, j + 1] - s1
            a22, a23 = X[i + 2, j + 2] - s2, X[i + 2, j + 3] - s3
            a30, a31 = X[i + 3, j] - s0, X[i + 3, j + 1] - s1
            a32, a33 = X[i + 3, j + 2] - s2, X[i + 3, j + 3] - s3
            xt[j, r], xt[j, r + 1], xt[j, r + 2], xt[j, r + 3] = a00, a10, a20, a30
            xt[j + 1, r], xt[j + 1, r + 1], xt[j + 1, r + 2], xt[j + 1, r + 3] = a01, a11, a21, a31
            xt[j + 2, r], xt[j + 2, r + 1], xt[j + 2, r + 2], xt[j + 2, r + 3] = a02, a12, a22, a32
            xt[j + 3, r], xt[j + 3, r + 1], xt[j + 3, r + 2], xt[j + 3, r + 3] = a03, a13, a23, a33
        for j in range(d4, d):
            sj = shift_of(shift, j, X)
            for rr in range(4):
                xt[j, r + rr] = X[i + rr, j] - sj
    for r in range(r4, r_to):
        for j in range(j_from, d):
            xt[j, r] = X[t0 + r, j] - shift_of(shift, j, X)


# Copies are written as loops, not slice assignments (``out[:, :d] = a``): Numba compiles a
# slice assignment from an array together with the formatting of its shape-mismatch message,
# about 3 s of a first fit's compiling for each kernel that has one (measured: k-means'
# kernel 6.0 -> 2.0 s, a first GaussianMixture fit on Iris 9.5-9.9 -> 7.3-7.5 s with
# sum_blocks written as loops too).


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def diag_coefficients(means, prec_chol, shift, dp, dtype):
    """``(a, b)`` with ``a[c, j] = prec_chol[c, j] / sqrt(2)`` and ``b[c, j] = a[c, j]
    (means[c, j] - shift[j])``, padded with zeros to ``dp`` features, formed in float64 and
    returned in ``dtype``: the coefficients of ``tile_log_density_diag``."""
    n_comp, d = means.shape
    a = np.zeros((n_comp, dp), dtype)
    b = np.zeros((n_comp, dp), dtype)
    root_half = math.sqrt(0.5)
    for c in range(n_comp):
        for j in range(d):
            p = float(prec_chol[c, j]) * root_half
            a[c, j] = p
            b[c, j] = p * (float(means[c, j]) - float(shift[j]))
    return a, b


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def tile_log_density_diag(xt, rows, a, b, bias, lp_k):
    """lp_k[r] = bias - sum_j (xt[j, r] a[j] - b[j])^2 for the diagonal kernels.

    With ``a`` and ``b`` from ``diag_coefficients`` and the tile loaded less
    the same shift, this is ``bias - 1/2 sum_j ((x_j - mu_j) / sigma_j)^2``: two
    multiply-adds a feature, no subtraction (rounding of order ``eps |x -
    shift| / sigma``, what x's own rounding carries). ``xt``, ``a`` and ``b`` are
    padded to a multiple of 4 features with zeros: a pad feature adds
    (0 * 0 - 0)^2.

    Register-blocked with explicit vectors (:mod:`.simd`): ``ROW_VECTORS`` vectors
    of rows keep their running sums in registers over all the features, and
    ``lp_k`` is written once (``_diag_rows4v``). Rows go in whole groups of
    ``ROW_VECTORS * lanes``: ``xt`` and ``lp_k`` must hold ``rows`` rounded up to
    that (tiles of 128 or 256 rows do); what is computed past ``rows`` is not used.
    Measured, the diagonal fused step at N = 1e6, d = 8, K = 8 (this Intel machine,
    2 threads; against ``(x - mu) p`` squared and a pass of its own for ``bias - q
    / 2``): best of 40, alternated, 11.23-11.35 -> 10.88-10.94 ms with two
    multiply-adds a feature, four features a pass; then, with the running sums in
    registers, the log-density of a 256-row tile in cache, one core, d = 8: 171 -> 154 ns
    a component, and the step (five alternated runs) 12.6-13.0 -> 12.3-13.1 ms.
    """
    group = ROW_VECTORS * lanes(xt)
    for r0 in range(0, rows, group):
        if ROW_VECTORS == 4:
            _diag_rows4v(xt, r0, a, b, bias, lp_k)
        else:
            _diag_rows2v(xt, r0, a, b, bias, lp_k)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _diag_rows4v(xt, r0, a, b, bias, lp_k):
    """``tile_log_density_diag`` on four vectors of rows from r0."""
    w = lanes(xt)
    r1, r2, r3 = r0 + w, r0 + 2 * w, r0 + 3 * w
    q0 = q1 = q2 = q3 = vzero(xt)
    for j in range(a.shape[0]):
        aj, mb = a[j], vsplat(xt, -b[j])
        y0, y1 = vfma(mb, aj, vload(xt, j, r0)), vfma(mb, aj, vload(xt, j, r1))
        y2, y3 = vfma(mb, aj, vload(xt, j, r2)), vfma(mb, aj, vload(xt, j, r3))
        q0, q1, q2, q3 = vfma(q0, y0, y0), vfma(q1, y1, y1), vfma(q2, y2, y2), vfma(q3, y3, y3)
    vstore1(lp_k, r0, vsub(bias, q0))
    vstore1(lp_k, r1, vsub(bias, q1))
    vstore1(lp_k, r2, vsub(bias, q2))
    vstore1(lp_k, r3, vsub(bias, q3))


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _diag_rows2v(xt, r0, a, b, bias, lp_k):
    """``tile_log_density_diag`` on two vectors of rows from r0 (CPUs with 16 vector registers)."""
    r1 = r0 + lanes(xt)
    q0 = q1 = vzero(xt)
    for j in range(a.shape[0]):
        aj, mb = a[j], vsplat(xt, -b[j])
        y0, y1 = vfma(mb, aj, vload(xt, j, r0)), vfma(mb, aj, vload(xt, j, r1))
        q0, q1 = vfma(q0, y0, y0), vfma(q1, y1, y1)
    vstore1(lp_k, r0, vsub(bias, q0))
    vstore1(lp_k, r1, vsub(bias, q1))


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def aligned_tile(rows, cols, dtype, zero):
    """A (rows, cols) array of ``dtype`` (zeros if ``zero``) whose first element lies on a
    64-byte boundary, as each row's does when ``cols`` times the item size is a multiple of
    64. Numba allocates arrays 32 bytes past a 64-byte boundary, so that every 512-bit load
    of a tile's rows would straddle two cache lines."""
    size = rows * cols
    itemsize = np.empty(0, dtype).itemsize
    buf = np.empty(size + 64 // itemsize, dtype)
    skip = np.int64((np.uint64(64) - buf.ctypes.data % np.uint64(64)) % np.uint64(64))
    out = buf[skip // itemsize:skip // itemsize + size].reshape((rows, cols))
    if zero:
        for i in range(rows):
            for j in range(cols):
                out[i, j] = 0
    return out


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def padded_rows(a, dp, dtype):
    """A copy of (C, d) ``a`` in ``dtype`` with zero columns up to ``dp``."""
    out = np.zeros((a.shape[0], dp), dtype)
    for c in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[c, j] = a[c, j]
    return out


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def padded_lower(a, dp, dtype):
    """The lower triangles of (C, d, d) ``a`` in ``dtype``, zero above the diagonal and in
    the pad rows and columns up to ``dp``: the register-blocked log-density multiplies
    whole 4 x 4 blocks on the diagonal, so what lies above it must be zero whatever the
    caller's factor holds there."""
    d = a.shape[1]
    out = np.zeros((a.shape[0], dp, dp), dtype)
    for c in range(a.shape[0]):
        for i in range(d):
            for j in range(i + 1):
                out[c, i, j] = a[c, i, j]
    return out


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def padded4(d):
    """``d`` rounded up to a multiple of 4: the feature count the 4 x 4 blocks work on."""
    return (d + 3) // 4 * 4


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _log_density_rows4v(xt, r0, lmu, chol_p, bias, lp_k):
    """``_tile_log_gaussian_full`` on rows r0 .. r0 + 4 lanes - 1 (four vectors of rows).

    For each band of four rows of L, sixteen vectors (four rows of L times four
    vectors of tile rows) start at ``-lmu`` and take ``L[j + i, m] xt[m, rows]`` for
    every column m up to the band's diagonal: four loads of the tile and four
    broadcast coefficients feed sixteen multiply-adds, and nothing is stored
    until the band's squares are added into four vectors of ``q``.
    """
    dp = chol_p.shape[0]
    w = lanes(xt)
    r1, r2, r3 = r0 + w, r0 + 2 * w, r0 + 3 * w
    q0 = q1 = q2 = q3 = vzero(xt)
    for j in range(0, dp, 4):
        s00 = s01 = s02 = s03 = vsplat(xt, -lmu[j])
        s10 = s11 = s12 = s13 = vsplat(xt, -lmu[j + 1])
        s20 = s21 = s22 = s23 = vsplat(xt, -lmu[j + 2])
        s30 = s31 = s32 = s33 = vsplat(xt, -lmu[j + 3])
        for m in range(j + 4):
            x0, x1, x2, x3 = vload(xt, m, r0), vload(xt, m, r1), vload(xt, m, r2), vload(xt, m, r3)
            a0, a1, a2, a3 = chol_p[j, m], chol_p[j + 1, m], chol_p[j + 2, m], chol_p[j + 3, m]
            s00, s01, s02, s03 = vfma(s00, a0, x0), vfma(s01, a0, x1), vfma(s02, a0, x2), vfma(s03, a0, x3)
            s10, s11, s12, s13 = vfma(s10, a1, x0), vfma(s11, a1, x1), vfma(s12, a1, x2), vfma(s13, a1, x3)
            s20, s21, s22, s23 = vfma(s20, a2, x0), vfma(s21, a2, x1), vfma(s22, a2, x2), vfma(s23, a2, x3)
            s30, s31, s32, s33 = vfma(s30, a3, x0), vfma(s31, a3, x1), vfma(s32, a3, x2), vfma(s33, a3, x3)
        q0 = vfma(vfma(vfma(vfma(q0, s00, s00), s10, s10), s20, s20), s30, s30)
        q1 = vfma(vfma(vfma(vfma(q1, s01, s01), s11, s11), s21, s21), s31, s31)
        q2 = vfma(vfma(vfma(vfma(q2, s02, s02), s12, s12), s22, s22), s32, s32)
        q3 = vfma(vfma(vfma(vfma(q3, s03, s03), s13, s13), s23, s23), s33, s33)
    b, minus_half = vsplat(xt, bias), like(xt, -0.5)
    vstore1(lp_k, r0, vfma(b, minus_half, q0))
    vstore1(lp_k, r1, vfma(b, minus_half, q1))
    vstore1(lp_k, r2, vfma(b, minus_half, q2))
    vstore1(lp_k, r3, vfma(b, minus_half, q3))


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _log_density_rows2v(xt, r0, lmu, chol_p, bias, lp_k):
    """As ``_log_density_rows4v`` with two vectors of rows (eight running vectors): for
    CPUs with 16 vector registers (AVX2), where sixteen would spill."""
    dp = chol_p.shape[0]
    w = lanes(xt)
    r1 = r0 + w
    q0 = q1 = vzero(xt)
    for j in range(0, dp, 4):
        s00 = s01 = vsplat(xt, -lmu[j])
        s10 = s11 = vsplat(xt, -lmu[j + 1])
        s20 = s21 = vsplat(xt, -lmu[j + 2])
        s30 = s31 = vsplat(xt, -lmu[j + 3])
        for m in range(j + 4):
            x0, x1 = vload(xt, m, r0), vload(xt, m, r1)
            a0, a1, a2, a3 = chol_p[j, m], chol_p[j + 1, m], chol_p[j + 2, m], chol_p[j + 3, m]
            s00, s01, s10, s11 = vfma(s00, a0, x0), vfma(s01, a0, x1), vfma(s10, a1, x0), vfma(s11, a1, x1)
            s20, s21, s30, s31 = vfma(s20, a2, x0), vfma(s21, a2, x1), vfma(s30, a3, x0), vfma(s31, a3, x1)
        q0 = vfma(vfma(vfma(vfma(q0, s00, s00), s10, s10), s20, s20), s30, s30)
        q1 = vfma(vfma(vfma(vfma(q1, s01, s01), s11, s11), s21, s21), s31, s31)
    b, minus_half = vsplat(xt, bias), like(xt, -0.5)
    vstore1(lp_k, r0, vfma(b, minus_half, q0))
    vstore1(lp_k, r1, vfma(b, minus_half, q1))


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _tile_log_gaussian_full(xt, rows, lmu, chol_p, bias, lp_k):
    """lp_k[r] = bias - 1/2 ||L xt[:, r] - lmu||^2 for the tile (L = chol_p, lower triangular;
    ``lmu`` = L mu, ``lower_times``).

    ``chol_p`` is padded to an order that is a multiple of 4 with zeros (above the
    diagonal too), and so are ``lmu`` and the pad rows of ``xt``. Forming ``L x -
    L mu`` takes no subtraction per component (its rounding: as
    ``_tile_log_gaussian_full8``, whose callers' shift of the tiles serves here
    too).

    Register-blocked with explicit vectors (:mod:`.simd`): each group of
    ``ROW_VECTORS`` vectors of rows keeps ``4 x ROW_VECTORS`` partial products in
    registers over a band of four rows of L (``_log_density_rows4v``), so that
    neither ``y = L x`` nor a horizontal sum is ever stored. Measured here (Intel,
    AVX-512, one core, tiles of 256 rows in cache): d = 32, K = 16 93 -> 55 us a
    tile (49 -> 83 GFLOP/s) against 4 x 4 blocks of L that stored four rows of
    ``y`` a pass; d = 64 50 -> 88 GFLOP/s.

    The loops run over whole groups of rows: ``xt`` and ``lp_k`` must hold ``rows``
    rounded up to a multiple of ``ROW_VECTORS * lanes`` columns (tiles of 128 or
    256 rows do); the values past ``rows`` are computed from whatever the tile
    holds there and are not used. Callers take ``_tile_log_gaussian_full8`` for an
    order of 8.
    """
    group = ROW_VECTORS * lanes(xt)
    for r0 in range(0, rows, group):
        if ROW_VECTORS == 4:
            _log_density_rows4v(xt, r0, lmu, chol_p, bias, lp_k)
        else:
            _log_density_rows2v(xt, r0, lmu, chol_p, bias, lp_k)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def centre_of(means, dtype):
    """The mean of the rows of ``means`` in ``dtype``: the shift that the full and diagonal
    kernels load their tiles with (``load_tile``), so that ``L x - L mu`` (and the diagonal
    ``x a - b``) are formed about a point inside the data's hull, not about the origin."""
    n_components, d = means.shape
    out = np.empty(d, dtype)
    for j in range(d):
        s = 0.0
        for c in range(n_components):
            s += means[c, j]
        out[j] = s / n_components
    return out


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def lower_times(chol_p, means_p, dtype):
    """``out[c] = chol_p[c] @ means_p[c]`` (lower triangular), in float64, returned in
    ``dtype``: the offsets of ``_tile_log_gaussian_full8``."""
    n_components, dp = means_p.shape
    out = np.empty((n_components, dp), dtype)
    for c in range(n_components):
        for j in range(dp):
            s = 0.0
            for m in range(j + 1):
                s += float(chol_p[c, j, m]) * float(means_p[c, m])
            out[c, j] = s
    return out


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def about_centre(means, chol_p, dtype):
    """The components about their centre (``centre_of``), which tiles are then loaded
    shifted by: ``(shift, means - shift, the same padded to chol_p's order, L (means -
    shift))``, in ``dtype``."""
    n_components, d = means.shape
    shift = centre_of(means, dtype)
    means_s = np.empty((n_components, d), dtype)
    for c in range(n_components):
        for j in range(d):
            means_s[c, j] = means[c, j] - shift[j]
    means_p = padded_rows(means_s, chol_p.shape[1], dtype)
    return shift, means_s, means_p, lower_times(chol_p, means_p, dtype)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE, inline="always")
def _y03(xt, r, la, ba):
    """Rows 0-3 of ``y = L x - b`` at tile row r, squared and summed (``la`` their 10
    coefficients, row by row; ``ba`` their offsets)."""
    l00, l10, l11, l20, l21, l22, l30, l31, l32, l33 = la
    b0, b1, b2, b3 = ba
    v0, v1, v2, v3 = xt[0, r], xt[1, r], xt[2, r], xt[3, r]
    y0 = l00 * v0 - b0
    y1 = (l10 * v0 - b1) + l11 * v1
    y2 = (l20 * v0 - b2) + (l21 * v1 + l22 * v2)
    y3 = ((l30 * v0 - b3) + l31 * v1) + (l32 * v2 + l33 * v3)
    return (y0 * y0 + y1 * y1) + (y2 * y2 + y3 * y3)


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE, inline="always")
def _y45(xt, r, la, ba):
    """As ``_y03`` for rows 4 and 5 (11 coefficients)."""
    l40, l41, l42, l43, l44, l50, l51, l52, l53, l54, l55 = la
    b4, b5 = ba
    v0, v1, v2, v3, v4, v5 = xt[0, r], xt[1, r], xt[2, r], xt[3, r], xt[4, r], xt[5, r]
    y4 = ((l40 * v0 - b4) + l41 * v1) + ((l42 * v2 + l43 * v3) + l44 * v4)
    y5 = ((l50 * v0 - b5) + (l51 * v1 + l52 * v2)) + ((l53 * v3 + l54 * v4) + l55 * v5)
    return y4 * y4 + y5 * y5


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE, inline="always")
def _y67(xt, r, la, ba):
    """As ``_y03`` for rows 6 and 7 (15 coefficients)."""
    l60, l61, l62, l63, l64, l65, l66, l70, l71, l72, l73, l74, l75, l76, l77 = la
    b6, b7 = ba
    v0, v1, v2, v3 = xt[0, r], xt[1, r], xt[2, r], xt[3, r]
    v4, v5, v6, v7 = xt[4, r], xt[5, r], xt[6, r], xt[7, r]
    y6 = (((l60 * v0 - b6) + l61 * v1) + (l62 * v2 + l63 * v3)) + ((l64 * v4 + l65 * v5)
                                                                   + l66 * v6)
    y7 = ((((l70 * v0 - b7) + (l71 * v1 + l72 * v2)) + (l73 * v3 + l74 * v4))
          + ((l75 * v5 + l76 * v6) + l77 * v7))
    return y6 * y6 + y7 * y7


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _tile_log_gaussian_full8(xt, rows, lmu, chol_p, bias, lp_k):
    """``lp_k[r] = bias - 1/2 ||L x_r - L mu||^2`` for 5 <= d <= 8 (``chol_p`` = L padded to
    8 x 8, ``lmu`` = L mu, ``xt`` the tile, its pad rows zero).

    Three passes over the tile, rows 0-3, 4-5 and 6-7 of ``y = L x - L mu``, each
    adding its squares into ``lp_k``: a pass's coefficients (at most 17) stay in
    registers. One pass with all 44 spilled them, and each use reloaded a 64-byte
    vector from the stack (measured, one core, this Intel machine: the log-density
    of N = 5e5, K = 8 took 7.7-8.2 ms in one pass, 5.9-6.3 ms in three). ``L x - L
    mu`` needs no subtraction per component; its rounding is of order ``eps |L|
    |x|``, the rounding of x itself, and the callers load the tile shifted by the
    means' centre (``about_centre``) so that ``|x|`` is a distance from inside the
    data.
    """
    c0, c1, c2, c3 = chol_p[0], chol_p[1], chol_p[2], chol_p[3]
    c4, c5, c6, c7 = chol_p[4], chol_p[5], chol_p[6], chol_p[7]
    la = (c0[0], c1[0], c1[1], c2[0], c2[1], c2[2], c3[0], c3[1], c3[2], c3[3])
    lb = (c4[0], c4[1], c4[2], c4[3], c4[4], c5[0], c5[1], c5[2], c5[3], c5[4], c5[5])
    lc = (c6[0], c6[1], c6[2], c6[3], c6[4], c6[5], c6[6],
          c7[0], c7[1], c7[2], c7[3], c7[4], c7[5], c7[6], c7[7])
    for r in range(rows):
        lp_k[r] = _y03(xt, r, la, (lmu[0], lmu[1], lmu[2], lmu[3]))
    for r in range(rows):
        lp_k[r] += _y45(xt, r, lb, (lmu[4], lmu[5]))
    half = like(lp_k, 0.5)
    for r in range(rows):
        lp_k[r] = bias - half * (lp_k[r] + _y67(xt, r, lc, (lmu[6], lmu[7])))


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def _tile_log_gaussian_full_small(dt, rows, chol_t, bias, y0, y1, lp_k):
    """As ``_tile_log_gaussian_full`` for d <= 4 (unpadded ``chol_t``), two rows of L at a time.

    At d = 2 the 4 x 4 blocks would do 16 multiply-adds per row for 3 useful ones
    (measured: 20% slower iterations at d = 2, K = 3).
    """
    d = chol_t.shape[0]
    for r in range(rows):
        lp_k[r] = 0.0
    for j in range(0, d, 2):
        j1 = j + 1
        for r in range(rows):
            y0[r] = 0.0
            y1[r] = 0.0
        for m in range(j + 1):
            c0 = chol_t[j, m]
            c1 = chol_t[j1, m] if j1 < d else like(chol_t, 0.0)
            for r in range(rows):
                v = dt[m, r]
                y0[r] += c0 * v
                y1[r] += c1 * v
        if j1 < d:
            c1 = chol_t[j1, j1]
            for r in range(rows):
                y1[r] += c1 * dt[j1, r]
        for r in range(rows):
            lp_k[r] += y0[r] * y0[r] + y1[r] * y1[r]
    half = like(lp_k, 0.5)
    for r in range(rows):
        lp_k[r] = bias - half * lp_k[r]


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def log_gaussian_full(X, means, prec_chol_t, chunk_rows, out):
    """Log-density of every row of X under every full-covariance component.

    Parameters
    ----------
    X : (n, d) float64
    means : (K, d) float64
    prec_chol_t : (K, d, d) float64, lower triangular: the transposed
        precision Cholesky factors, precision_k = prec_chol_t[k].T @ prec_chol_t[k].
    chunk_rows : int, rows per parallel chunk.
    out : (n, K) float64, filled with log N(X[i] | means[k], precision_k^-1).
    """
    n, d = X.shape
    n_components = means.shape[0]
    small = d <= SMALL_D
    dp = d + d % 2 if small else padded4(d)
    log_det = np.empty(n_components)
    log_det_cholesky(prec_chol_t, log_det)
    const = -0.5 * d * LOG_2PI
    chol_p = padded_lower(prec_chol_t, dp, np.float64)
    shift, means_s, means_p, lmu = about_centre(means, chol_p, np.float64)
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for c in prange(n_chunks):
        xt = np.zeros((dp, TILE))  # zero pad features
        dt = np.zeros((dp if small else 1, TILE))  # centred tile: d <= 4 only
        y = np.empty((4, TILE))
        lp = np.empty(TILE)
        stop = min(n, (c + 1) * chunk_rows)
        for t0 in range(c * chunk_rows, stop, TILE):
            rows = min(TILE, stop - t0)
            load_tile(X, t0, rows, xt, shift)
            for k in range(n_components):
                if small:
                    for j in range(d):
                        mu = means_s[k, j]
                        for r in range(rows):
                            dt[j, r] = xt[j, r] - mu
                    _tile_log_gaussian_full_small(dt, rows, prec_chol_t[k], const + log_det[k],
                                                  y[0], y[1], lp)
                elif dp == 8:
                    _tile_log_gaussian_full8(xt, rows, lmu[k], chol_p[k], const + log_det[k], lp)
                else:
                    _tile_log_gaussian_full(xt, rows, lmu[k], chol_p[k], const + log_det[k], lp)
                for r in range(rows):
                    out[t0 + r, k] = lp[r]


@njit(parallel=PARALLEL, fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def log_gaussian_diag(X, means, prec_chol, chunk_rows, out):
    """Log-density of every row of X under every diagonal-covariance component.

    ``prec_chol[k, j] = 1 / sigma_kj`` (a spherical model passes its one value
    repeated over the features); ``out`` (n, K) as in ``log_gaussian_full``.
    """
    n, d = X.shape
    n_components = means.shape[0]
    log_det = np.zeros(n_components)
    for k in range(n_components):
        for j in range(d):
            log_det[k] += math.log(prec_chol[k, j])
    const = -0.5 * d * LOG_2PI
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    for c in prange(n_chunks):
        stop = min(n, (c + 1) * chunk_rows)
        for i in range(c * chunk_rows, stop):
            for k in range(n_components):
                q = 0.0
                for j in range(d):
                    y = (X[i, j] - means[k, j]) * prec_chol[k, j]
                    q += y * y
                out[i, k] = const + log_det[k] - 0.5 * q


@njit(fastmath=FASTMATH, error_model=ERROR_MODEL, cache=CACHE)
def invert_lower(lower, out):
    """``out = inv(lower)`` for a lower-triangular matrix with a positive diagonal.

    Forward substitution, column by column. A d x d inverse needs d^3/6
    multiply-adds: too small for BLAS, whose threads would only compete with
    numba's (measured: 3-14x slower EM iterations with scipy's solver).
    """
    d = lower.shape[0]
    for c in range(d):
        for i in range(c):
            out[i, c] = 0.0
        out[c, c] = 1.0 / lower[c, c]
        for i in range(c + 1, d):
            s = 0.0
            for m in range(c, i):
                s += lower[i, m] * out[m, c]
            out[i, c] = -s / lower[i, i]
