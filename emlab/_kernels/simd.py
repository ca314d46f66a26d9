"""Explicit SIMD vectors inside Numba kernels.

LLVM vectorises a loop across its iterations, so a loop that runs across a
tile's rows keeps one vector per running value and must add each one's lanes
together at the end (a horizontal sum). Register-blocked kernels that want many
vectors live at once across a whole loop (sixteen accumulators that a loop over
rows updates from broadcast coefficients, as in a matrix product's micro-kernel)
cannot be written that way: written out as scalars, LLVM's straight-line
vectoriser turned 128 running sums into gathers and stack spills (measured: 8.7
GFLOP/s against 45 for the row-vectorised form).

This module gives Numba a vector type, ``Vector(dtype, width)``, lowered to an
LLVM vector (``<8 x double>`` with AVX-512), and a handful of intrinsics that
load, store and combine such vectors. A kernel holds its accumulators in
ordinary local variables of that type; LLVM keeps them in registers.

``WIDTH_BYTES`` is the widest vector the CPU's FMA units take (64 with
AVX-512, 32 with AVX, else 16), read from the features Numba compiles for
(16 when ``NUMBA_CPU_NAME`` is set without ``NUMBA_CPU_FEATURES``),
so ``lanes(a)`` (``WIDTH_BYTES`` over ``a``'s item size) is 8 float64 or 16
float32 lanes on an AVX-512 machine. Numba's cache keys kernels by the CPU
features too, so a cached kernel never meets another width.

Every load and store here reads or writes ``lanes`` consecutive elements of
a C-contiguous array, from ``[i, j]`` (2-D) or ``[i]`` (1-D): the caller
guarantees that they lie inside the array (no bounds check; tiles are padded
for it).
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model


def _width_bytes():
    """64, 32 or 16: the vector width of the CPU Numba compiles for (see the module notes)."""
    from numba.core import config

    features = config.CPU_FEATURES
    if features is None and config.CPU_NAME is not None:
        return 16  # a CPU named without features (e.g. "generic", for a portable cache)
    if features is None:
        try:
            import llvmlite.binding as llvm

            features = llvm.get_host_cpu_features().flatten()
        except Exception:  # no feature list on this platform
            return 16
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    if "avx512f" in enabled:
        return 64
    if "avx" in enabled:
        return 32
    return 16


WIDTH_BYTES = _width_bytes()


class Vector(types.Type):
    """``width`` lanes of ``dtype`` (a Numba float type), held as one LLVM vector."""

    def __init__(self, dtype, width):
        self.dtype = dtype
        self.width = width
        super().__init__(name=f"Vector({dtype}x{width})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.width))


def _vector_of(array_type):
    itemsize = np.dtype(str(array_type.dtype)).itemsize
    return Vector(array_type.dtype, WIDTH_BYTES // itemsize)


def lanes(a):
    """The number of lanes of a vector of ``a``'s element type (in kernels only)."""
    raise NotImplementedError("lanes is called inside Numba kernels only")


@overload(lanes)
def _lanes(a):
    width = _vector_of(a).width
    return lambda a: width


def _pointer(context, builder, signature, args, vector):
    """An LLVM pointer to ``vector`` at ``array[indices]``, the array and its ``ndim``
    indices the call's first arguments (no bounds check)."""
    array_type = signature.args[0]
    array = context.make_array(array_type)(context, builder, args[0])
    indices = [context.cast(builder, args[1 + n], signature.args[1 + n], types.intp)
               for n in range(array_type.ndim)]
    item = cgutils.get_item_pointer(context, builder, array_type, array, indices,
                                    wraparound=False)
    return builder.bitcast(item, context.get_value_type(vector).as_pointer())


def _align(array_type):
    return np.dtype(str(array_type.dtype)).itemsize


@intrinsic
def vzero(typingctx, a):
    """A vector of zeros of ``a``'s element type."""
    vector = _vector_of(a)

    def codegen(context, builder, signature, args):
        return ir.Constant(context.get_value_type(vector), None)

    return vector(a), codegen


@intrinsic
def vsplat(typingctx, a, x):
    """A vector of ``a``'s element type with every lane ``x`` (cast to that type)."""
    vector = _vector_of(a)

    def codegen(context, builder, signature, args):
        return _as_vector(context, builder, args[1], signature.args[1], vector)

    return vector(a, x), codegen


def _is_c_array(a, ndim):
    return isinstance(a, types.Array) and a.ndim == ndim and a.layout == "C"


def _load_codegen(context, builder, signature, args):
    ptr = _pointer(context, builder, signature, args, signature.return_type)
    return builder.load(ptr, align=_align(signature.args[0]))


@intrinsic
def vload(typingctx, a, i, j):
    """``a[i, j:j + lanes]`` as a vector (``a`` 2-D and C-contiguous)."""
    if not _is_c_array(a, 2):
        return None
    return _vector_of(a)(a, i, j), _load_codegen


@intrinsic
def vstore1(typingctx, a, i, v):
    """``a[i:i + lanes] = v`` for a 1-D contiguous ``a``."""
    if not _is_c_array(a, 1) or v != _vector_of(a):
        return None
    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature, args, signature.args[2])
        builder.store(args[2], ptr, align=_align(signature.args[0]))
        return context.get_dummy_value()

    return types.void(a, i, v), codegen


def _fmuladd(builder, x, y, z):
    vtype = x.type
    element = "f64" if isinstance(vtype.element, ir.DoubleType) else "f32"
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vtype, [vtype] * 3),
                                        f"llvm.fmuladd.v{vtype.count}{element}")
    return builder.call(fn, [x, y, z])


def _as_vector(context, builder, value, value_type, vector):
    """``value`` as a vector: itself, or a scalar broadcast to every lane."""
    if isinstance(value_type, Vector):
        return value
    scalar = context.cast(builder, value, value_type, vector.dtype)
    vtype = context.get_value_type(vector)
    first = builder.insert_element(ir.Constant(vtype, ir.Undefined), scalar,
                                   ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), vector.width), [0] * vector.width)
    return builder.shuffle_vector(first, ir.Constant(vtype, ir.Undefined), mask)


@intrinsic
def vfma(typingctx, acc, x, y):
    """``acc + x * y`` lane by lane (``x`` or ``y`` may be a scalar, broadcast), fused
    into one multiply-add where the CPU has it (LLVM's ``fmuladd``)."""
    if not isinstance(acc, Vector):
        return None
    for operand in (x, y):
        if not (operand == acc or isinstance(operand, types.Float)):
            return None

    def codegen(context, builder, signature, args):
        vector = signature.args[0]
        xv = _as_vector(context, builder, args[1], signature.args[1], vector)
        yv = _as_vector(context, builder, args[2], signature.args[2], vector)
        return _fmuladd(builder, xv, yv, args[0])

    return acc(acc, x, y), codegen


def _lane_binary(x, y, operation):
    """Typing and code of ``x (op) y`` lane by lane for a vector and a vector of the same
    type or a float (broadcast); ``operation`` names the IR builder's method."""
    vector = x if isinstance(x, Vector) else y
    if not isinstance(vector, Vector):
        return None
    for operand in (x, y):
        if not (operand == vector or isinstance(operand, types.Float)):
            return None

    def codegen(context, builder, signature, args):
        xv = _as_vector(context, builder, args[0], signature.args[0], vector)
        yv = _as_vector(context, builder, args[1], signature.args[1], vector)
        return getattr(builder, operation)(xv, yv)

    return vector(x, y), codegen


@intrinsic
def vsub(typingctx, x, y):
    """``x - y`` lane by lane (either may be a scalar, broadcast)."""
    return _lane_binary(x, y, "fsub")


@intrinsic
def vadd_row4(typingctx, a, i, b, j):
    """``a[i, :4] += b[j, :4]`` as one four-lane load, add and store, whatever the CPU's
    vector width (``a`` and ``b`` 2-D, C-contiguous, of one float type, with at least
    four columns). Written as scalars, LLVM kept four loads, adds and stores: a row
    added into a table row chosen by a symbol took 1.9 ns against 0.63 ns (one
    core, the rows in L1)."""
    if not (_is_c_array(a, 2) and _is_c_array(b, 2) and a.dtype == b.dtype):
        return None
    quad = Vector(a.dtype, 4)

    def codegen(context, builder, signature, args):
        zero = context.get_constant(types.intp, 0)
        target = _pointer(context, builder, types.void(a, i, types.intp), [args[0], args[1], zero],
                          quad)
        source = _pointer(context, builder, types.void(b, j, types.intp), [args[2], args[3], zero],
                          quad)
        total = builder.fadd(builder.load(target, align=_align(a)),
                             builder.load(source, align=_align(b)))
        builder.store(total, target, align=_align(a))
        return context.get_dummy_value()

    return types.void(a, i, b, j), codegen


@intrinsic
def vtranspose_block(typingctx, X, i0, j0, xt, r0, shift):
    """``xt[j0 + c, r0 + w] = X[i0 + w, j0 + c] - shift[j0 + c]`` for ``w, c < lanes``: one
    square block of a tile copied transposed through registers (``shift`` None: no
    shift).

    ``lanes`` rows of X are loaded as vectors, transposed in ``log2(lanes)`` rounds
    of two-vector shuffles (round k exchanges bit k of the row and lane numbers:
    ``lanes / 2`` pairs, two shuffles a pair), and stored as ``lanes`` feature rows
    of the tile: with AVX-512 and float64, 8 loads, 24 shuffles and 8 stores for 64
    elements. X and ``xt`` are C-contiguous, of one float type.
    """
    return _transpose_block(X, i0, j0, xt, r0, shift, False)


@intrinsic
def vtranspose_half_block(typingctx, X, i0, j0, xt, r0, shift):
    """:func:`vtranspose_block` for a block of ``lanes / 2`` rows and features, in vectors
    of half the width: for tiles with fewer features than lanes (float32 at d = 8 with
    AVX-512 has 16 lanes), which would otherwise be copied as scalars."""
    return _transpose_block(X, i0, j0, xt, r0, shift, True)


def _transpose_block(X, i0, j0, xt, r0, shift, half):
    if not (_is_c_array(X, 2) and _is_c_array(xt, 2) and X.dtype == xt.dtype):
        return None
    shifted = not isinstance(shift, types.NoneType)
    if shifted and not (_is_c_array(shift, 1) and shift.dtype == X.dtype):
        return None
    width = _vector_of(X).width // (2 if half else 1)
    vector = Vector(X.dtype, width)

    def codegen(context, builder, signature, args):
        x_type, _, _, t_type, _, s_type = signature.args
        x_array = context.make_array(x_type)(context, builder, args[0])
        t_array = context.make_array(t_type)(context, builder, args[3])
        i0v, j0v, r0v = (context.cast(builder, args[n], signature.args[n], types.intp)
                         for n in (1, 2, 4))
        pointer = context.get_value_type(vector).as_pointer()
        align = _align(x_type)

        def at(array_type, array, indices):
            item = cgutils.get_item_pointer(context, builder, array_type, array, indices,
                                            wraparound=False)
            return builder.bitcast(item, pointer)

        def plus(value, n):
            return builder.add(value, ir.Constant(value.type, n))

        if shifted:
            s_array = context.make_array(s_type)(context, builder, args[5])
            offset = builder.load(at(s_type, s_array, [j0v]), align=align)
        rows = []
        for w in range(width):
            v = builder.load(at(x_type, x_array, [plus(i0v, w), j0v]), align=align)
            rows.append(builder.fsub(v, offset) if shifted else v)
        mask_type = ir.VectorType(ir.IntType(32), width)
        k = 1
        while k < width:
            low = ir.Constant(mask_type, [j if not j & k else width + (j ^ k) for j in range(width)])
            high = ir.Constant(mask_type, [j ^ k if not j & k else width + j for j in range(width)])
            swapped = list(rows)
            for i in range(width):
                if not i & k:
                    swapped[i] = builder.shuffle_vector(rows[i], rows[i | k], low)
                    swapped[i | k] = builder.shuffle_vector(rows[i], rows[i | k], high)
            rows = swapped
            k *= 2
        for c in range(width):
            builder.store(rows[c], at(t_type, t_array, [plus(j0v, c), r0v]), align=align)
        return context.get_dummy_value()

    return types.void(X, i0, j0, xt, r0, shift), codegen


# ----------------------------------------------------------------------------- four lanes
#
# A hidden Markov model of K <= 4 states holds each step's forward or backward
# variables in one four-lane vector, ``QUAD``, whatever the CPU's width. The
# recursions of the split forward-backward (``hmm.forward4``, ``hmm.backward_split4``)
# written as scalars kept about 60 values live (the 16 transition probabilities,
# 16 running transition counts, the products of a step) and compiled to scalar
# code with stack spills; with these, a step is about a dozen vector operations.

QUAD = Vector(types.float64, 4)


def _quad_at(context, builder, array_type, array, row):
    """An LLVM pointer to ``QUAD`` at ``array[row, 0]`` (2-D, C-contiguous, no bounds check)."""
    zero = context.get_constant(types.intp, 0)
    return _pointer(context, builder, types.void(array_type, types.intp, types.intp),
                    [array, context.cast(builder, row[0], row[1], types.intp), zero], QUAD)


@intrinsic
def qload(typingctx, a, i):
    """``a[i, :4]`` as a four-lane vector (``a`` 2-D, C-contiguous float64, at least four
    columns)."""
    if not (_is_c_array(a, 2) and a.dtype == types.float64):
        return None

    def codegen(context, builder, signature, args):
        ptr = _quad_at(context, builder, signature.args[0], args[0], (args[1], signature.args[1]))
        return builder.load(ptr, align=8)

    return QUAD(a, i), codegen


@intrinsic
def qstore(typingctx, a, i, v):
    """``a[i, :4] = v`` (``a`` as for :func:`qload`)."""
    if not (_is_c_array(a, 2) and a.dtype == types.float64 and v == QUAD):
        return None

    def codegen(context, builder, signature, args):
        ptr = _quad_at(context, builder, signature.args[0], args[0], (args[1], signature.args[1]))
        builder.store(args[2], ptr, align=8)
        return context.get_dummy_value()

    return types.void(a, i, v), codegen


@intrinsic
def qpack(typingctx, x0, x1, x2, x3):
    """The four-lane vector ``(x0, x1, x2, x3)`` (each cast to float64)."""
    operands = (x0, x1, x2, x3)
    if not all(isinstance(x, (types.Float, types.Integer)) for x in operands):
        return None

    def codegen(context, builder, signature, args):
        v = ir.Constant(context.get_value_type(QUAD), ir.Undefined)
        for n, (value, value_type) in enumerate(zip(args, signature.args)):
            scalar = context.cast(builder, value, value_type, types.float64)
            v = builder.insert_element(v, scalar, ir.Constant(ir.IntType(32), n))
        return v

    return QUAD(*operands), codegen


@intrinsic
def qlanes(typingctx, v):
    """The four lanes of ``v`` as a tuple of floats."""
    if v != QUAD:
        return None
    result = types.UniTuple(types.float64, 4)

    def codegen(context, builder, signature, args):
        values = [builder.extract_element(args[0], ir.Constant(ir.IntType(32), n))
                  for n in range(4)]
        return context.make_tuple(builder, result, values)

    return result(v), codegen


@intrinsic
def qsplats(typingctx, v):
    """Four vectors, the n-th with every lane ``v``'s lane n (a broadcast each)."""
    if v != QUAD:
        return None
    result = types.UniTuple(QUAD, 4)

    def codegen(context, builder, signature, args):
        undefined = ir.Constant(context.get_value_type(QUAD), ir.Undefined)
        vectors = [builder.shuffle_vector(args[0], undefined,
                                          ir.Constant(ir.VectorType(ir.IntType(32), 4), [n] * 4))
                   for n in range(4)]
        return context.make_tuple(builder, result, vectors)

    return result(v), codegen


def _quad_binary(x, y, operation):
    """:func:`_lane_binary` where one operand is a ``QUAD``."""
    return _lane_binary(x, y, operation) if QUAD in (x, y) else None


@intrinsic
def qmul(typingctx, x, y):
    """``x * y`` lane by lane (either may be a float, broadcast)."""
    return _quad_binary(x, y, "fmul")


@intrinsic
def qadd(typingctx, x, y):
    """``x + y`` lane by lane (either may be a float, broadcast)."""
    return _quad_binary(x, y, "fadd")


@intrinsic
def qdiv(typingctx, x, y):
    """``x / y`` lane by lane (either may be a float, broadcast)."""
    return _quad_binary(x, y, "fdiv")


def _lane_sums(builder, v):
    """Every lane ``(v0 + v1) + (v2 + v3)``: two shuffles and two vector adds (lanes 1 to 3
    add the same pairs in another order, which gives the same sum)."""
    mask = ir.VectorType(ir.IntType(32), 4)
    undefined = ir.Constant(v.type, ir.Undefined)
    pairs = builder.fadd(v, builder.shuffle_vector(v, undefined, ir.Constant(mask, [1, 0, 3, 2])))
    return builder.fadd(pairs, builder.shuffle_vector(pairs, undefined,
                                                      ir.Constant(mask, [2, 3, 0, 1])))


@intrinsic
def qsum(typingctx, v):
    """``(v0 + v1) + (v2 + v3)``, the sum of the lanes in that order."""
    if v != QUAD:
        return None

    def codegen(context, builder, signature, args):
        return builder.extract_element(_lane_sums(builder, args[0]),
                                       ir.Constant(ir.IntType(32), 0))

    return types.float64(v), codegen


@intrinsic
def qsums(typingctx, v):
    """:func:`qsum` in every lane (no broadcast of the scalar needed to scale by it)."""
    if v != QUAD:
        return None

    def codegen(context, builder, signature, args):
        return _lane_sums(builder, args[0])

    return QUAD(v), codegen


@intrinsic
def qfirst(typingctx, v):
    """Lane 0 of ``v`` (free: the scalar register is the vector's low lane)."""
    if v != QUAD:
        return None

    def codegen(context, builder, signature, args):
        return builder.extract_element(args[0], ir.Constant(ir.IntType(32), 0))

    return types.float64(v), codegen


def _any_lane(builder, flags):
    """True where some lane of the ``<4 x i1>`` ``flags`` is set."""
    bits = builder.bitcast(flags, ir.IntType(4))
    return builder.icmp_unsigned("!=", bits, ir.Constant(ir.IntType(4), 0))


@intrinsic
def qany_between(typingctx, v, low, high):
    """Whether some lane of ``v`` lies strictly between ``low`` and ``high``."""
    if v != QUAD or not all(isinstance(x, types.Float) for x in (low, high)):
        return None

    def codegen(context, builder, signature, args):
        lo = _as_vector(context, builder, args[1], signature.args[1], QUAD)
        hi = _as_vector(context, builder, args[2], signature.args[2], QUAD)
        flags = builder.and_(builder.fcmp_ordered(">", args[0], lo),
                             builder.fcmp_ordered("<", args[0], hi))
        return _any_lane(builder, flags)

    return types.boolean(v, low, high), codegen


@intrinsic
def qany_flushed(typingctx, w, b, v, low):
    """Whether some lane has ``w < low`` although ``b > 0`` and ``v > 0`` (a product
    ``w = b v`` of two positive numbers that fell below ``low``)."""
    if not (w == b == v == QUAD and isinstance(low, types.Float)):
        return None

    def codegen(context, builder, signature, args):
        lo = _as_vector(context, builder, args[3], signature.args[3], QUAD)
        zero = ir.Constant(context.get_value_type(QUAD), None)
        flags = builder.and_(builder.fcmp_ordered("<", args[0], lo),
                             builder.and_(builder.fcmp_ordered(">", args[1], zero),
                                          builder.fcmp_ordered(">", args[2], zero)))
        return _any_lane(builder, flags)

    return types.boolean(w, b, v, low), codegen


@intrinsic
def qflush(typingctx, v, low):
    """``v`` with every lane not ``>= low`` (NaN included) set to 0."""
    if v != QUAD or not isinstance(low, types.Float):
        return None

    def codegen(context, builder, signature, args):
        lo = _as_vector(context, builder, args[1], signature.args[1], QUAD)
        keep = builder.fcmp_ordered(">=", args[0], lo)
        return builder.select(keep, args[0], ir.Constant(context.get_value_type(QUAD), None))

    return QUAD(v, low), codegen


@intrinsic
def qwhere_positive(typingctx, m, v):
    """``v``'s lanes where ``m``'s lane is above 0, else 0 (NaN in ``m``: 0)."""
    if not (m == QUAD and (v == QUAD or isinstance(v, types.Float))):
        return None

    def codegen(context, builder, signature, args):
        zero = ir.Constant(context.get_value_type(QUAD), None)
        values = _as_vector(context, builder, args[1], signature.args[1], QUAD)
        return builder.select(builder.fcmp_ordered(">", args[0], zero), values, zero)

    return QUAD(m, v), codegen
