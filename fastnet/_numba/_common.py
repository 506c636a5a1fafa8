"""Flags, codes and scalar helpers shared by the network and linear-model numba kernels.

* :data:`FASTMATH` is the fastmath flag set of these kernels (word2vec has
  its own, with ``afn``): reassociation and contraction, so that reductions
  vectorise and multiply-adds fuse, but never ``nnan``/``ninf``, so NaN and
  inf checks keep working.
* :data:`JIT` are the options of every kernel: cached on disk, GIL released
  (so Python threads run them in parallel) and numpy's error model (a float
  division by zero gives inf instead of a Python check in every loop, which
  would stop it from vectorising).
* The integer codes are the enums of :mod:`fastnet._codes`, frozen here as
  module constants (Numba compiles them in as literals).
* Constants are derived from the argument's type (``type(z)(1)``) so float32
  arithmetic stays float32.
"""
import numpy as np
from numba import njit

from fastnet._codes import Act, Loss, Penalty, Optimizer
from fastnet._numba import _vmath

#: fastmath flags of the network and linear kernels (no nnan, no ninf).
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

#: options of every compiled kernel
JIT = {"cache": True, "nogil": True, "error_model": "numpy"}
#: ... and of those whose reductions must vectorise
JIT_FAST = dict(JIT, fastmath=FASTMATH)

#: Smallest argument given to ``log`` in the cross-entropy losses (as fastnet.reference).
LOG_CLIP = 1e-15

LINEAR, SIGMOID, RELU, TANH, SOFTMAX = (int(Act.LINEAR), int(Act.SIGMOID), int(Act.RELU),
                                        int(Act.TANH), int(Act.SOFTMAX))
CROSS_ENTROPY, QUADRATIC, LOG_LOSS = (int(Loss.CROSS_ENTROPY), int(Loss.QUADRATIC),
                                      int(Loss.LOG_LOSS))
NO_PENALTY, L2, L1 = int(Penalty.NONE), int(Penalty.L2), int(Penalty.L1)
SGD, MOMENTUM, RMSPROP, ADAM, NESTEROV = (int(Optimizer.SGD), int(Optimizer.MOMENTUM),
                                          int(Optimizer.RMSPROP), int(Optimizer.ADAM),
                                          int(Optimizer.NESTEROV))


@njit(**JIT)
def offsets(sizes):
    """Start of each layer's block in the flat parameter vector (length L + 1)."""
    L = sizes.shape[0] - 1
    offs = np.empty(L + 1, np.int64)
    offs[0] = 0
    for l in range(L):
        offs[l + 1] = offs[l] + (sizes[l] + 1) * sizes[l + 1]
    return offs


@njit(**JIT)
def copy_into(dst, src):
    """``dst[k] = src[k]`` for ``k < len(dst)`` (1-D; a plain loop compiles faster than
    Numba's slice assignment)."""
    for k in range(dst.shape[0]):
        dst[k] = src[k]


@njit(**JIT)
def fill(dst, value):
    """``dst[k] = value`` for every entry of the 1-D ``dst``."""
    v = dst.dtype.type(value)
    for k in range(dst.shape[0]):
        dst[k] = v


@njit(**JIT)
def act(kind, z):
    """Activation ``kind`` (linear, sigmoid, relu, tanh) of the scalar ``z``."""
    if kind == SIGMOID:
        return _vmath.sigmoid(z)
    if kind == RELU:
        return z if z > 0 else type(z)(0)
    if kind == TANH:
        return _vmath.tanh(z)
    return z


@njit(**JIT)
def dact(kind, z):
    """Derivative of activation ``kind`` at the pre-activation ``z``."""
    one = type(z)(1)
    if kind == SIGMOID:
        s = _vmath.sigmoid(z)
        return s * (one - s)
    if kind == RELU:
        return one if z > 0 else type(z)(0)
    if kind == TANH:
        t = _vmath.tanh(z)
        return one - t * t
    return one


@njit(**JIT)
def dact_from_a(kind, a):
    r"""Derivative of activation ``kind`` from its *output* :math:`a=f(z)`.

    :math:`\sigma' = a(1-a)`, :math:`\tanh' = 1-a^2`, ReLU :math:`[a>0]` (as
    :math:`a>0 \iff z>0`), linear 1: the same numbers as :func:`dact` at
    ``z`` without recomputing ``exp``/``tanh``.
    """
    one = type(a)(1)
    if kind == SIGMOID:
        return a * (one - a)
    if kind == RELU:
        return one if a > 0 else type(a)(0)
    if kind == TANH:
        return one - a * a
    return one
