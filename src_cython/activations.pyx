# cython: language_level=3
r"""Elementwise activations, their derivatives, softmax and the losses (Cython backend).

Each ``def`` checks its arguments (:mod:`fastnet._cython._checks`), then
runs a ``nogil`` loop over the ``cdef inline ... noexcept nogil`` helpers of
``_common.pxd``, specialised for float32 and float64.

Kernels (see :mod:`fastnet.reference.kernels` for the contract):

* ``activation(kind, Z, out)``: :math:`out = f(Z)`; softmax (4) row-wise on 2-D ``Z``;
* ``activation_grad(kind, Z, out)``: :math:`out = f'(Z)` for codes 0..3;
* ``loss(loss_kind, A, Y)``: :math:`\sum_{i,k}\ell(a_{ik}, y_{ik})` in float64.
"""
import numpy as np
cimport numpy as cnp

from _common cimport floating, act_f, act_df, loss_term, softmax_inplace

from fastnet._cython import _checks as chk

cnp.import_array()


cdef void _apply(int kind, bint grad, const floating[::1] z, floating[::1] out) noexcept nogil:
    cdef Py_ssize_t i, n = z.shape[0]
    if grad:
        for i in range(n):
            out[i] = act_df(kind, z[i])
    else:
        for i in range(n):
            out[i] = act_f(kind, z[i])


cdef void _softmax_rows(const floating[:, ::1] z, floating[:, ::1] out) noexcept nogil:
    cdef Py_ssize_t i, k, m = z.shape[0], n = z.shape[1]
    cdef floating[::1] row
    for i in range(m):
        row = out[i]
        for k in range(n):
            row[k] = z[i, k]
        softmax_inplace(row, 0, n)


cdef double _loss(int loss_kind, const floating[:, ::1] A, const floating[:, ::1] Y) noexcept nogil:
    cdef Py_ssize_t i, k
    cdef double total = 0
    for i in range(A.shape[0]):
        for k in range(A.shape[1]):
            total += loss_term(loss_kind, A[i, k], Y[i, k])
    return total


def _check_pair(kernel, Z, out):
    chk.float_array(kernel, "Z", Z)
    chk.float_array(kernel, "out", out, dtype=Z.dtype)
    chk.writable(kernel, "out", out)
    if Z.shape != out.shape:
        raise ValueError(f"{kernel}: out has shape {out.shape}, expected Z's shape {Z.shape}")


def _run(kernel, int kind, bint grad, Z, out):
    cdef const float[::1] z32
    cdef const double[::1] z64
    cdef float[::1] o32
    cdef double[::1] o64
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


def activation(kind, Z, out):
    """``out[...] = f(Z)`` for activation ``kind`` (0 linear, 1 sigmoid, 2 relu, 3 tanh,
    4 softmax over each row of a 2-D ``Z``).  ``out`` may be ``Z``."""
    kind = chk.code("activation", "kind", kind, chk.ACTIVATIONS)
    _check_pair("activation", Z, out)
    cdef const float[:, ::1] z32
    cdef const double[:, ::1] z64
    cdef float[:, ::1] o32
    cdef double[:, ::1] o64
    if kind == 4:
        if Z.ndim != 2:
            raise ValueError(f"activation: softmax (4) needs a 2-D Z (one row per sample), "
                             f"got shape {Z.shape}")
        if Z.dtype == np.float32:
            z32, o32 = Z, out
            with nogil:
                _softmax_rows(z32, o32)
        else:
            z64, o64 = Z, out
            with nogil:
                _softmax_rows(z64, o64)
        return
    _run("activation", kind, False, Z, out)


def activation_grad(kind, Z, out):
    """``out[...] = f'(Z)`` for activation ``kind`` (0 linear, 1 sigmoid, 2 relu, 3 tanh)."""
    kind = chk.code("activation_grad", "kind", kind, chk.ACTIVATIONS)
    if kind == 4:
        raise ValueError("activation_grad: softmax has no elementwise derivative")
    _check_pair("activation_grad", Z, out)
    _run("activation_grad", kind, True, Z, out)


def loss(loss_kind, A, Y):
    """Sum over all samples and outputs of the loss ``loss_kind`` (0 cross-entropy,
    1 quadratic, 2 log-loss), accumulated in float64; ``A`` and ``Y`` are (m, K)."""
    loss_kind = chk.code("loss", "loss_kind", loss_kind, chk.LOSSES)
    chk.float_array("loss", "A", A, ndim=2)
    chk.float_array("loss", "Y", Y, ndim=2, dtype=A.dtype)
    chk.shape("loss", "Y", Y, A.shape)
    cdef const float[:, ::1] a32, y32
    cdef const double[:, ::1] a64, y64
    cdef double total
    cdef int lk = loss_kind
    if A.dtype == np.float32:
        a32, y32 = A, Y
        with nogil:
            total = _loss(lk, a32, y32)
    else:
        a64, y64 = A, Y
        with nogil:
            total = _loss(lk, a64, y64)
    return total
