"""The course's activation functions, in numpy.

Each activation is a class with static methods ``f(z)`` (the function) and
``df(z)`` (its derivative), as in the course::

    class Sigmoid:
        @staticmethod
        def f(z): return 1 / (1 + np.exp(-z))
        @staticmethod
        def df(z): return Sigmoid.f(z) * (1 - Sigmoid.f(z))

The versions here keep the course's names and math and fix its sloppy
corners: the sigmoid never overflows (``exp`` is only taken of non-positive
numbers, so ``f(+-1000)`` is exactly 1 and 0 with no warning), float32 input
stays float32, and integer input is promoted to float64.
"""
import numpy as np

from fastnet._codes import Act

__all__ = ["Linear", "Sigmoid", "ReLu", "TanH", "Softmax", "ACTIVATIONS"]


def _float_array(z):
    z = np.asarray(z)
    if z.dtype.kind != "f":
        z = z.astype(np.float64)
    return z


class Activation:
    """Base class: ``name`` is the activation's key, ``code`` its kernel code (:class:`fastnet._codes.Act`)."""
    name = None
    code = None

    def __repr__(self):  # pragma: no cover - classes are used, not instances
        return f"<activation {self.name}>"


class Linear(Activation):
    r"""Identity: :math:`f(z) = z`, :math:`f'(z) = 1`."""
    name, code = "linear", Act.LINEAR

    @staticmethod
    def f(z):
        return _float_array(z).copy()

    @staticmethod
    def df(z):
        return np.ones_like(_float_array(z))


class Sigmoid(Activation):
    r"""Logistic function :math:`\sigma(z) = 1 / (1 + e^{-z})`, :math:`\sigma'(z) = \sigma(z)(1 - \sigma(z))`.

    Computed as :math:`1/(1+e^{-|z|})` for :math:`z \ge 0` and
    :math:`e^{-|z|}/(1+e^{-|z|})` otherwise, so no ``exp`` overflows.
    """
    name, code = "sigmoid", Act.SIGMOID

    @staticmethod
    def f(z):
        z = _float_array(z)
        e = np.exp(-np.abs(z))
        one = z.dtype.type(1)
        return np.where(z >= 0, one / (one + e), e / (one + e))

    @staticmethod
    def df(z):
        s = Sigmoid.f(z)
        return s * (1 - s)


class ReLu(Activation):
    r"""Rectified linear unit :math:`f(z) = \max(0, z)`, :math:`f'(z) = [z > 0]`."""
    name, code = "relu", Act.RELU

    @staticmethod
    def f(z):
        z = _float_array(z)
        return np.maximum(z, z.dtype.type(0))

    @staticmethod
    def df(z):
        z = _float_array(z)
        return (z > 0).astype(z.dtype)


class TanH(Activation):
    r"""Hyperbolic tangent :math:`f(z) = \tanh z`, :math:`f'(z) = 1 - \tanh^2 z`."""
    name, code = "tanh", Act.TANH

    @staticmethod
    def f(z):
        return np.tanh(_float_array(z))

    @staticmethod
    def df(z):
        t = np.tanh(_float_array(z))
        return 1 - t * t


class Softmax(Activation):
    r"""Softmax over the last axis, :math:`f(z)_k = e^{z_k} / \sum_j e^{z_j}`.

    An output activation only, paired with the categorical log-loss: the
    gradient of ``log_loss(softmax(z), y)`` with respect to ``z`` is
    ``a - y``, so backprop never needs its Jacobian and ``df`` is not defined.
    """
    name, code = "softmax", Act.SOFTMAX

    @staticmethod
    def f(z):
        z = _float_array(z)
        e = np.exp(z - np.max(z, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)

    @staticmethod
    def df(z):
        raise TypeError("Softmax has no elementwise derivative: use it as the output layer "
                        "with loss='log_loss', whose gradient with respect to z is a - y")


#: name -> activation class
ACTIVATIONS = {cls.name: cls for cls in (Linear, Sigmoid, ReLu, TanH, Softmax)}
