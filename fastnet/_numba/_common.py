"""Scalar helpers and flags shared by the numba kernels.

* :data:`FASTMATH` is the one fastmath flag set allowed in fastnet's kernels:
  reassociation and contraction (so reductions vectorise and multiply-adds
  fuse) but never ``nnan``/``ninf``, so NaN and inf checks keep working.
* Constants are derived from the argument's type (``type(z)(1)``) so float32
  arithmetic stays float32.
"""
import numpy as np
from numba import njit

#: fastmath flags for the kernels that use it (no nnan, no ninf).
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

#: Smallest argument given to ``log`` in the cross-entropy losses (as fastnet.reference).
LOG_CLIP = 1e-15


@njit(cache=True)
def sigmoid(z):
    r"""Overflow-free logistic :math:`\sigma(z) = 1/(1+e^{-z})` in the type of ``z``.

    As :class:`fastnet.reference.activations.Sigmoid`: ``exp`` only of
    :math:`-|z|`, then :math:`1/(1+e)` for :math:`z\ge0`, :math:`e/(1+e)` otherwise.
    """
    one = type(z)(1)
    e = np.exp(-np.abs(z))
    if z >= 0:
        return one / (one + e)
    return e / (one + e)


@njit(cache=True)
def act(kind, z):
    """Activation ``kind`` (0 linear, 1 sigmoid, 2 relu, 3 tanh) of the scalar ``z``."""
    if kind == 1:
        return sigmoid(z)
    if kind == 2:
        return z if z > 0 else type(z)(0)
    if kind == 3:
        return np.tanh(z)
    return z


@njit(cache=True)
def dact(kind, z):
    """Derivative of activation ``kind`` at the pre-activation ``z``."""
    one = type(z)(1)
    if kind == 1:
        s = sigmoid(z)
        return s * (one - s)
    if kind == 2:
        return one if z > 0 else type(z)(0)
    if kind == 3:
        t = np.tanh(z)
        return one - t * t
    return one


@njit(cache=True)
def dact_from_a(kind, a):
    r"""Derivative of activation ``kind`` from its *output* :math:`a=f(z)`.

    :math:`\sigma' = a(1-a)`, :math:`\tanh' = 1-a^2`, ReLU :math:`[a>0]` (as
    :math:`a>0 \iff z>0`), linear 1: the same numbers as :func:`dact` at
    ``z`` without recomputing ``exp``/``tanh``.
    """
    one = type(a)(1)
    if kind == 1:
        return a * (one - a)
    if kind == 2:
        return one if a > 0 else type(a)(0)
    if kind == 3:
        return one - a * a
    return one
