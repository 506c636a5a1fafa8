# cython: language_level=3
"""Elementwise activations and their derivatives (Cython backend).

Each ``def`` checks its arguments, then runs a ``nogil`` loop over a
``cdef ... noexcept nogil`` helper.
"""
import numpy as np
cimport numpy as cnp
from libc.math cimport exp, tanh

from _common cimport floating, sigmoid_d, ACT_LINEAR, ACT_SIGMOID, ACT_RELU, ACT_TANH

cnp.import_array()


cdef inline floating _f(int kind, floating z) noexcept nogil:
    cdef floating t
    if kind == ACT_SIGMOID:
        return <floating>sigmoid_d(z)
    elif kind == ACT_RELU:
        return z if z > 0 else 0
    elif kind == ACT_TANH:
        return <floating>tanh(z)
    return z


cdef inline floating _df(int kind, floating z) noexcept nogil:
    cdef floating s
    if kind == ACT_SIGMOID:
        s = <floating>sigmoid_d(z)
        return s * (1 - s)
    elif kind == ACT_RELU:
        return 1 if z > 0 else 0
    elif kind == ACT_TANH:
        s = <floating>tanh(z)
        return 1 - s * s
    return 1


cdef void _apply(int kind, bint grad, const floating[::1] z, floating[::1] out) noexcept nogil:
    cdef Py_ssize_t i, n = z.shape[0]
    if grad:
        for i in range(n):
            out[i] = _df(kind, z[i])
    else:
        for i in range(n):
            out[i] = _f(kind, z[i])


def _check(Z, out):
    if not isinstance(Z, np.ndarray) or not isinstance(out, np.ndarray):
        raise TypeError("Z and out must be numpy arrays")
    if Z.dtype != out.dtype or Z.dtype not in (np.float32, np.float64):
        raise TypeError(f"Z and out must share a float32/float64 dtype, got {Z.dtype} and {out.dtype}")
    if Z.shape != out.shape:
        raise ValueError(f"out has shape {out.shape}, expected Z's shape {Z.shape}")
    if not (Z.flags.c_contiguous and out.flags.c_contiguous):
        raise ValueError("Z and out must be C-contiguous")


def _run(int kind, bint grad, Z, out):
    _check(Z, out)
    if kind not in (ACT_LINEAR, ACT_SIGMOID, ACT_RELU, ACT_TANH):
        raise ValueError(f"elementwise activation code must be 0..3, got {kind}")
    cdef float[::1] z32, o32
    cdef double[::1] z64, o64
    if Z.dtype == np.float32:
        z32 = Z.reshape(-1)
        o32 = out.reshape(-1)
        with nogil:
            _apply(kind, grad, z32, o32)
    else:
        z64 = Z.reshape(-1)
        o64 = out.reshape(-1)
        with nogil:
            _apply(kind, grad, z64, o64)


def activation(int kind, Z, out):
    """``out[...] = f(Z)`` for activation ``kind`` (0 linear, 1 sigmoid, 2 relu, 3 tanh)."""
    _run(kind, False, Z, out)


def activation_grad(int kind, Z, out):
    """``out[...] = f'(Z)`` for activation ``kind`` (0 linear, 1 sigmoid, 2 relu, 3 tanh)."""
    _run(kind, True, Z, out)
