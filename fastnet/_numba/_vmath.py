r"""Vectorisable ``exp``, ``expm1``, sigmoid and tanh for the numba kernels.

Numba calls libm's ``exp``/``tanh`` one element at a time (it has no vector
math library unless Intel's SVML is installed), so a loop of them cannot be
vectorised: at full batch the tanh epilogue of the 784-256-128-10 network
(3 million values per epoch) would cost as much as a GEMM.  The functions
here are plain arithmetic that LLVM's loop vectoriser turns into AVX2/AVX-512
code inside the callers' loops:

* range reduction :math:`x = n\ln 2 + r`, :math:`|r|\le\ln 2/2`, with
  :math:`\ln 2` split in a high part (exact products) and a low part;
* :math:`e^r - 1 = r + r^2 P(r)`: Cephes' minimax polynomial (float32, 6
  terms) or Taylor's series to :math:`r^{13}` (float64, error below
  :math:`2\cdot 10^{-16}`);
* the scale :math:`2^n` built from its exponent bits (:func:`bits_to_float`),
  in two halves so that results down to the subnormals are right.

Accuracy (``tests/test_numba_backend.py`` checks it against numpy on a dense
grid): ``exp`` and ``expm1`` within 2 ulp in float32 and 4e-16 relative in
float64; sigmoid and tanh within a few ulp.  ``NaN`` gives ``NaN``;
``\pm\infty`` give the limits.

These functions are compiled without fastmath flags (the callers' flags do
not apply to inlined instructions): reassociation could merge the two parts
of :math:`\ln 2` and lose the range reduction's precision.

Numba's on-disk cache does not see edits to this module from the kernels
that inline it: delete ``fastnet/_numba/__pycache__`` after editing it.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

__all__ = ["bits_to_float", "exp", "expm1", "sigmoid", "tanh"]


@intrinsic
def bits_to_float(typingctx, bits):
    """The float whose bit pattern is the integer ``bits`` (int32 -> float32, int64 -> float64)."""
    if bits == types.int32:
        ret, lty = types.float32, ir.FloatType()
    elif bits == types.int64:
        ret, lty = types.float64, ir.DoubleType()
    else:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], lty)

    return ret(bits), codegen


# ln 2 = LN2_HI + LN2_LO: LN2_HI has its low bits zero so n * LN2_HI is exact
_LN2_HI32, _LN2_LO32 = 0.693359375, -2.12194440e-4
_LN2_HI64, _LN2_LO64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_LOG2E = 1.4426950408889634


#: options of the overloads below.  Their fastmath flags are set here, not inherited from the
#: first kernel that compiles them (whose version the disk cache then gives every later
#: caller): with ``reassoc`` inherited, the two-step range reduction
#: ``(x - n ln2_hi) - n ln2_lo`` was folded into one product and exp lost accuracy (4.1 ulps
#: in float32 instead of 0.95, measured when a fastmath kernel compiled them first).  FMA
#: contraction keeps it exact.
_OVERLOAD_OPTIONS = {"cache": True, "error_model": "numpy", "fastmath": {"contract"}}


def _scale_parts(x):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


@overload(_scale_parts, jit_options=_OVERLOAD_OPTIONS)
def _scale_parts_impl(x):
    r"""``(r, s1, s2)`` with :math:`x = r + n\ln 2`, :math:`s_1 s_2 = 2^n` (both normal)."""
    if x == types.float32:
        def impl(x):
            T = np.float32
            n = np.floor(x * T(_LOG2E) + T(0.5))
            r = (x - n * T(_LN2_HI32)) - n * T(_LN2_LO32)
            ni = np.int32(n)
            h = ni >> 1
            s1 = bits_to_float(np.int32((h + 127) << 23))
            s2 = bits_to_float(np.int32((ni - h + 127) << 23))
            return r, s1, s2
        return impl
    if x == types.float64:
        def impl(x):
            n = np.floor(x * _LOG2E + 0.5)
            r = (x - n * _LN2_HI64) - n * _LN2_LO64
            ni = np.int64(n)
            h = ni >> 1
            s1 = bits_to_float(np.int64((h + 1023) << 52))
            s2 = bits_to_float(np.int64((ni - h + 1023) << 52))
            return r, s1, s2
        return impl
    return None


def _expm1_reduced(r):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


@overload(_expm1_reduced, jit_options=_OVERLOAD_OPTIONS)
def _expm1_reduced_impl(r):
    r""":math:`e^r - 1` for :math:`|r| \le \ln 2 / 2`."""
    if r == types.float32:
        def impl(r):
            T = np.float32
            p = T(1.9875691500e-4)
            p = p * r + T(1.3981999507e-3)
            p = p * r + T(8.3334519073e-3)
            p = p * r + T(4.1665795894e-2)
            p = p * r + T(1.6666665459e-1)
            p = p * r + T(5.0000001201e-1)
            return r + r * r * p
        return impl
    if r == types.float64:
        def impl(r):
            p = 1.0 / 6227020800.0          # 1/13!
            p = p * r + 1.0 / 479001600.0   # 1/12!
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
            return r + r * r * p
        return impl
    return None


def _limits(x):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


@overload(_limits, jit_options=_OVERLOAD_OPTIONS)
def _limits_impl(x):
    """``(lo, hi)``: exp is 0 below ``lo`` and overflows above ``hi`` in the type of ``x``."""
    if x == types.float32:
        return lambda x: (np.float32(-104.0), np.float32(88.72284))
    if x == types.float64:
        return lambda x: (-746.0, 709.782712893384)
    return None


@njit(cache=True, nogil=True, error_model="numpy")
def exp(x):
    r""":math:`e^x` in the type of ``x`` (branch-free: vectorises in a loop)."""
    T = type(x)
    lo, hi = _limits(x)
    xc = x if x > lo else lo            # NaN -> lo (kept finite for the integer conversion)
    xc = xc if xc < hi else hi
    r, s1, s2 = _scale_parts(xc)
    e = ((_expm1_reduced(r) + T(1)) * s1) * s2
    e = e if x < hi else T(np.inf)
    e = e if x > lo else T(0)
    return e if x == x else x


@njit(cache=True, nogil=True, error_model="numpy")
def expm1(x):
    r""":math:`e^x - 1` without cancellation near 0, for ``x <= 0`` (what tanh needs)."""
    T = type(x)
    lo, hi = _limits(x)
    xc = x if x > lo else lo
    r, s1, s2 = _scale_parts(xc)
    s = s1 * s2
    e = s * _expm1_reduced(r) + (s - T(1))
    e = e if x > lo else T(-1)
    return e if x == x else x


@njit(cache=True, nogil=True, error_model="numpy")
def sigmoid(z):
    r""":math:`\sigma(z) = 1/(1+e^{-z})`, overflow-free: ``exp`` of :math:`-|z|` only."""
    T = type(z)
    e = exp(-np.abs(z))
    s = T(1) / (T(1) + e)
    return s if z >= T(0) else e * s


@njit(cache=True, nogil=True, error_model="numpy")
def tanh(z):
    r""":math:`\tanh z = -\operatorname{sign}(z)\,u/(2+u)` with :math:`u = e^{-2|z|}-1`."""
    T = type(z)
    u = expm1(T(-2) * np.abs(z))
    return np.copysign(u / (T(-2) - u), z)
