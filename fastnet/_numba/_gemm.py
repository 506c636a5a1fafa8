r"""A row-major GEMM on parts of matrices, called from ``@njit`` code.

Numba's ``np.dot`` takes whole contiguous matrices: a block of columns
``W[:, c0:c1]`` is copied first (an allocation per call).  The dense path's
small batches cut each layer's products in parts, one per thread
(:func:`fastnet._numba._dense.train_epoch_parts`), so they call scipy's BLAS
themselves (the ``sgemm``/``dgemm`` that ``np.dot`` and the Cython backend call,
from :mod:`scipy.linalg.cython_blas`) with leading dimensions:

.. math::

    C_{m \times n} = \alpha \, \mathrm{op}(A) \, \mathrm{op}(B) + \beta C

on row-major operands given as an array and an offset into its data, handed
to the column-major BLAS with the operands swapped
(:math:`C^T = \mathrm{op}(B)^T \mathrm{op}(A)^T`), as numpy does.

The BLAS function's address is an argument (:func:`gemm_address`), not a
constant compiled in, so the kernels stay in Numba's disk cache across
processes.  :func:`_fortran_gemm` is the one intrinsic: it puts the scalar
arguments on the stack and calls the address with pointers to them, as the
Fortran calling convention wants.
"""
import ctypes

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from fastnet._numba._common import JIT

__all__ = ["gemm_address", "gemm_rm", "NOTRANS", "TRANS"]

#: ``op`` codes of :func:`gemm_rm` (the BLAS's characters)
NOTRANS, TRANS = ord("N"), ord("T")

_addresses = {}


def gemm_address(dtype):
    """The address of scipy's ``sgemm`` (float32) or ``dgemm`` (float64)."""
    name = "sgemm" if np.dtype(dtype) == np.float32 else "dgemm"
    if name not in _addresses:
        from scipy.linalg import cython_blas
        capsule = cython_blas.__pyx_capi__[name]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        _addresses[name] = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    return _addresses[name]


@intrinsic
def _fortran_gemm(typingctx, fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """``?gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)`` at the address ``fn``:
    ``ta``/``tb`` uint8 characters, the sizes int32, ``a``/``b``/``c`` data addresses (uintp),
    ``alpha``/``beta`` of the matrices' float type."""
    if not (isinstance(alpha, types.Float) and alpha == beta):
        return None
    sig = types.void(fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        fnv, tav, tbv, mv, nv, kv, alv, av, ldav, bv, ldbv, bev, cv, ldcv = args
        ft = context.get_value_type(alpha)
        i8p, i32p, fp = ir.IntType(8).as_pointer(), ir.IntType(32).as_pointer(), ft.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i8p, i32p, i32p, i32p, fp, fp, i32p, fp,
                                               i32p, fp, fp, i32p])

        def slot(v):
            p = cgutils.alloca_once(builder, v.type)
            builder.store(v, p)
            return p

        call = [slot(tav), slot(tbv), slot(mv), slot(nv), slot(kv), slot(alv),
                builder.inttoptr(av, fp), slot(ldav), builder.inttoptr(bv, fp), slot(ldbv),
                slot(bev), builder.inttoptr(cv, fp), slot(ldcv)]
        builder.call(builder.inttoptr(fnv, fnty.as_pointer()), call)
        return context.get_dummy_value()

    return sig, codegen


@njit(**JIT)
def gemm_rm(fn, ta, tb, m, n, k, alpha, A, a0, lda, B, b0, ldb, beta, C, c0, ldc):
    """Row-major ``C[c0:] (m x n, row stride ldc) = alpha op(A[a0:]) op(B[b0:]) + beta C``:
    the operands are arrays (of one float type, any shape, C order) and offsets in entries
    into their data; ``ta``/``tb`` :data:`NOTRANS` or :data:`TRANS`; ``fn`` from
    :func:`gemm_address`.  Nothing is checked: the callers' shapes are."""
    if m <= 0 or n <= 0:
        return
    size = C.itemsize
    one = C.dtype.type(alpha)
    zero = C.dtype.type(beta)
    _fortran_gemm(np.uint64(fn), np.uint8(tb), np.uint8(ta), np.int32(n), np.int32(m),
                  np.int32(k), one, np.uint64(B.ctypes.data + b0 * size), np.int32(ldb),
                  np.uint64(A.ctypes.data + a0 * size), np.int32(lda), zero,
                  np.uint64(C.ctypes.data + c0 * size), np.int32(ldc))
