"""The course's perceptron on the active backend (see :mod:`fastnet.reference.perceptron`)."""
import numpy as np

from fastnet import _backend
from fastnet.reference.perceptron import predict, check_train_args, store_weights

__all__ = ["predict", "train"]


def train(weights, X, y, epochs=100, lr=1.0):
    """The perceptron rule as one compiled loop; same result as :func:`fastnet.reference.perceptron.train`."""
    X_, lab, w, epochs, lr = check_train_args(weights, X, y, epochs, lr)
    errors = np.zeros(epochs, dtype=np.int64)
    _backend.kernels().perceptron_train(X_, lab, w, epochs, lr, errors)
    return store_weights(weights, w)
