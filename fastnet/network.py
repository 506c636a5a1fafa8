"""The course's network functions on the active backend.

Same names, arguments and results as :mod:`fastnet.reference.network`; the
work is done by the active backend's kernels on the flat parameter layout of
:mod:`fastnet._params` (packed once per call).
"""
import numpy as np

from fastnet import _backend
from fastnet._backend import LOSS_CODES, PENALTY_CODES
from fastnet._layerwise import USER_KIND, has_user_activation, network_kernels
from fastnet._params import pack, unpack, sizes_of
from fastnet._validation import (check_input_width, check_model, check_theta,
                                 resolve_activation)
from fastnet._args import (predict_args, prep_X, check_backprop_args, labels_from_outputs,
                           cast_weights, check_outputs)
from fastnet.reference.network import init_weights, one_hot, accuracy

__all__ = ["init_weights", "one_hot", "forward", "feedforward", "predict", "accuracy",
           "backprop", "backprop_vectorized", "NetworkSpec", "penalty_terms"]


class NetworkSpec:
    """A model list packed for the kernels: flat ``params``, ``sizes``, ``kinds``.

    A layer with a user-defined activation has the kind
    :data:`fastnet._layerwise.USER_KIND`; :meth:`kernels` then gives the kernel
    table that runs it (:func:`fastnet._layerwise.network_kernels`).
    """

    __slots__ = ("params", "sizes", "kinds", "acts", "user")

    def __init__(self, thetas, acts, dtype):
        self.params = pack(cast_weights(thetas, dtype), dtype)
        self.sizes = sizes_of(thetas)
        self.kinds = np.array([USER_KIND if a.code is None else a.code for a in acts],
                              dtype=np.int64)
        self.acts = list(acts)
        self.user = has_user_activation(acts)

    def kernels(self):
        """The active backend's kernels for this network (user activations included)."""
        return network_kernels(self.acts) if self.user else _backend.kernels()

    @classmethod
    def from_model(cls, model, dtype):
        thetas, acts = check_model(model)
        return cls(thetas, acts, dtype)

    def thetas(self):
        return unpack(self.params, self.sizes)

    def output(self, X, checked=True):
        """The network's outputs for ``X``; ``FloatingPointError`` if a value overflowed."""
        out = np.empty((X.shape[0], int(self.sizes[-1])), dtype=X.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            self.kernels().forward_network(self.params, self.sizes, self.kinds, X, out)
        return check_outputs(out) if checked else out


def forward(Theta, X, active):
    r"""One layer of forward propagation: :math:`f([1, X]\,\Theta^T)`.

    See :func:`fastnet.reference.forward`; computed without concatenating a
    column of ones.
    """
    act = resolve_activation(active, "active")
    theta = check_theta(Theta, "Theta")
    X_, single = prep_X(X)
    check_input_width(X_, [theta], "X", "Theta")
    out = NetworkSpec([theta], [act], X_.dtype).output(X_)
    return out[0] if single else out


def feedforward(model, X):
    """Output of the whole network for inputs ``X``."""
    thetas, acts = check_model(model)
    X_, single = prep_X(X)
    check_input_width(X_, thetas)
    out = NetworkSpec(thetas, acts, X_.dtype).output(X_)
    return out[0] if single else out


def predict(model, X, *more):
    """Class labels: ``predict(model, X)`` or ``predict(Theta1, Theta2, X)`` (the MNIST slide's).

    See :func:`fastnet.reference.predict`.
    """
    model, X = predict_args(model, X, more)
    lab = labels_from_outputs(feedforward(model, X))
    return int(lab) if np.ndim(lab) == 0 else lab



def penalty_terms(K, code, lam, params, sizes, grad=None):
    r"""The penalty of the weights (bias rows excluded), and its gradient added to ``grad``.

    The one place the API asks for it: :math:`\frac{\lambda}{2}\sum w^2`
    (L2) or :math:`\lambda\sum|w|` (L1), by the kernels ``K``'s
    ``penalty_value`` / ``penalty_grad``; 0 without a penalty.
    """
    if not code or not lam:
        return 0.0
    if grad is not None:
        K.penalty_grad(code, lam, params, sizes, grad)
    return K.penalty_value(code, lam, params, sizes)


def _backprop(kernel_name, model, X, y, lam, penalty, loss):
    thetas, acts, X_, Y, lam, pen, L = check_backprop_args(model, X, y, lam, penalty, loss)
    spec = NetworkSpec(thetas, acts, X_.dtype)
    K = spec.kernels()
    grad = np.empty_like(spec.params)
    m = X_.shape[0]
    total = getattr(K, kernel_name)(spec.params, spec.sizes, spec.kinds, LOSS_CODES[L.name],
                                    X_, Y, grad)
    grad /= grad.dtype.type(m)
    J = total / m + penalty_terms(K, PENALTY_CODES[pen], lam, spec.params, spec.sizes, grad)
    return [float(J), unpack(grad, spec.sizes)]


def backprop(model, X, y, lam=0.0, penalty=None, loss="cross_entropy"):
    """Cost and gradients with the course's per-sample semantics, on the active backend.

    See :func:`fastnet.reference.backprop` for the parameters and the math.

    Returns
    -------
    [J, grads]
    """
    return _backprop("backprop_samples", model, X, y, lam, penalty, loss)


def backprop_vectorized(model, X, y, lam=0.0, penalty=None, loss="cross_entropy"):
    """:func:`backprop` computed with matrix products (same result to rounding)."""
    return _backprop("backprop_batch", model, X, y, lam, penalty, loss)
