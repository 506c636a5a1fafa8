"""The course in readable numpy: the oracle every compiled backend is tested against.

Everything here has the same name and arguments as at the top level of
:mod:`fastnet`; the top level runs on the active (fastest) backend, this
package always runs in numpy.
"""
from fastnet.reference.activations import Linear, Sigmoid, ReLu, TanH, Softmax, ACTIVATIONS
from fastnet.reference.losses import CrossEntropy, Quadratic, LogLoss, L1, L2, LOSSES, PENALTIES
from fastnet.reference.network import (init_weights, one_hot, forward, feedforward, predict,
                                       accuracy, backprop, backprop_vectorized)
from fastnet.reference.training import (History, DivergenceError, train, gradient_descent,
                                        train_online, train_minibatch, train_momentum,
                                        train_rmsprop)
from fastnet.reference.linear import (linear_regression, logistic_regression, linear_cost,
                                      linear_gradient, logistic_cost, logistic_gradient,
                                      logistic_predict, linear_predict)
from fastnet.reference import perceptron
from fastnet.preprocessing import (Rescaler, Standardizer, Normalizer, rescale, standardize,
                                   normalize)
from fastnet.model_selection import train_test_split, KFold, cross_val_score
from fastnet.datasets import load_mnist

__all__ = [
    "Linear", "Sigmoid", "ReLu", "TanH", "Softmax", "ACTIVATIONS",
    "CrossEntropy", "Quadratic", "LogLoss", "L1", "L2", "LOSSES", "PENALTIES",
    "init_weights", "one_hot", "forward", "feedforward", "predict", "accuracy", "backprop",
    "backprop_vectorized",
    "History", "DivergenceError", "train", "gradient_descent", "train_online", "train_minibatch",
    "train_momentum", "train_rmsprop",
    "linear_regression", "logistic_regression", "linear_cost", "linear_gradient",
    "logistic_cost", "logistic_gradient", "logistic_predict", "linear_predict", "perceptron",
    "Rescaler", "Standardizer", "Normalizer", "rescale", "standardize", "normalize",
    "train_test_split", "KFold", "cross_val_score", "load_mnist",
]
