"""fastnet: the "deep learning from scratch" course code, compiled.

``import fastnet`` is a drop-in replacement for the course's functions
(``forward``, ``predict``, ``backprop``, ``init_weights``, ``one_hot``,
``accuracy``, ``Sigmoid``, ...), dispatched to the fastest available backend
(``numba``, ``cython`` or the numpy ``reference``).  Choose one with
:func:`use_backend` or the ``FASTNET_BACKEND`` environment variable.

Importing fastnet compiles nothing and imports neither Numba nor the
extension modules: a backend is loaded on first use.
"""
from fastnet._version import __version__
from fastnet._backend import (available_backends, get_backend, use_backend,
                              BackendUnavailableError)
from fastnet.activations import Linear, Sigmoid, ReLu, TanH, Softmax
from fastnet.reference.losses import CrossEntropy, Quadratic, LogLoss, L1, L2
from fastnet.network import (init_weights, one_hot, forward, feedforward, predict, accuracy,
                             backprop, backprop_vectorized)
from fastnet.training import (History, DivergenceError, train, gradient_descent, train_online,
                              train_minibatch, train_momentum, train_rmsprop)
from fastnet.linear import (linear_regression, logistic_regression, linear_cost, linear_gradient,
                            logistic_cost, logistic_gradient, logistic_predict, linear_predict)
from fastnet import perceptron
from fastnet.preprocessing import (Rescaler, Standardizer, Normalizer, rescale, standardize,
                                   normalize)
from fastnet.model_selection import train_test_split, KFold, StratifiedKFold, cross_val_score
from fastnet.datasets import load_mnist

# Heavier or optional parts load on first access (PEP 562).
_LAZY = {
    "reference": ("fastnet.reference", None),
    "datasets": ("fastnet.datasets", None),
    "Word2Vec": ("fastnet.word2vec", "Word2Vec"),
    "KeyedVectors": ("fastnet.word2vec", "KeyedVectors"),
    "LinearRegression": ("fastnet.estimators", "LinearRegression"),
    "LogisticRegression": ("fastnet.estimators", "LogisticRegression"),
    "Perceptron": ("fastnet.estimators", "Perceptron"),
    "MLPClassifier": ("fastnet.estimators", "MLPClassifier"),
    "MLPRegressor": ("fastnet.estimators", "MLPRegressor"),
    "CNNClassifier": ("fastnet.estimators", "CNNClassifier"),
    "Autoencoder": ("fastnet.estimators", "Autoencoder"),
    "RNNClassifier": ("fastnet.estimators", "RNNClassifier"),
    "CharLM": ("fastnet.estimators", "CharLM"),
    "load": ("fastnet.io", "load"),
    "save": ("fastnet.io", "save"),
    "plot": ("fastnet.plot", None),
    "use_path": ("fastnet._paths", "use_path"),
    "show_config": ("fastnet._config", "show_config"),
    "Sequential": ("fastnet.sequential", "Sequential"),
    "layers": ("fastnet.layers", None),
}


def __getattr__(name):
    if name in ("ConvergenceWarning", "DataConversionWarning", "NotFittedError"):
        # made on first use: scikit-learn's subclass when scikit-learn is installed
        from fastnet import estimators
        return getattr(estimators, name)
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'fastnet' has no attribute {name!r}") from None
    import importlib
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | {"ConvergenceWarning", "NotFittedError"})


__all__ = [
    "__version__", "available_backends", "get_backend", "use_backend", "BackendUnavailableError",
    "Linear", "Sigmoid", "ReLu", "TanH", "Softmax",
    "CrossEntropy", "Quadratic", "LogLoss", "L1", "L2",
    "init_weights", "one_hot", "forward", "feedforward", "predict", "accuracy", "backprop",
    "backprop_vectorized",
    "History", "DivergenceError", "train", "gradient_descent", "train_online", "train_minibatch",
    "train_momentum", "train_rmsprop",
    "linear_regression", "logistic_regression", "linear_cost", "linear_gradient", "logistic_cost",
    "logistic_gradient", "logistic_predict", "linear_predict", "perceptron",
    "Rescaler", "Standardizer", "Normalizer", "rescale", "standardize", "normalize",
    "train_test_split", "KFold", "StratifiedKFold", "cross_val_score", "load_mnist",
    "ConvergenceWarning", "NotFittedError",
]
