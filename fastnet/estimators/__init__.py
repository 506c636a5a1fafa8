r"""scikit-learn-style estimators on fastnet's kernels.

:class:`LinearRegression`, :class:`LogisticRegression`, :class:`Perceptron`,
:class:`MLPClassifier` and :class:`MLPRegressor` follow scikit-learn's
estimator contract (``fit``, ``predict``, ``predict_proba`` /
``decision_function`` where they make sense, ``score``, ``partial_fit``,
``get_params`` / ``set_params``, fitted attributes ending in ``_``), so they
work in scikit-learn's ``Pipeline``, ``GridSearchCV`` and
``cross_val_score`` as well as in fastnet's own :func:`~fastnet.cross_val_score`.
scikit-learn itself stays optional: nothing here imports it at import time.

They are the course's networks underneath.  Linear and logistic
regression are networks without a hidden layer (a linear output with the
quadratic cost :math:`\frac{1}{2m}\sum (h - y)^2`, a sigmoid output with the
cross-entropy); the MLPs stack hidden layers of sigmoid, ReLU, tanh or
linear units.  Training is the :class:`~fastnet.training.EpochTrainer`
engine: one call of the active backend's ``train_epoch`` kernel per epoch on
the flat parameter vector (no Python per sample or per batch), or one
``train_epochs`` call for the whole fit when nothing has to run in Python
between two epochs (no progress bar, validation or accuracy tracking), with the
course's optimisers (``'gd'`` full batch, ``'sgd'`` with any ``batch_size``
including 1 for online learning, ``'momentum'``, ``'rmsprop'``) and L1/L2
penalties.

Float32 data are trained and predicted in float32; anything else in
float64.  Class labels may be of any type (strings too): they are encoded
as ``0..K-1`` internally and ``classes_`` maps them back.

The package: :mod:`._base` (the scikit-learn contract and the parameter
checks), :mod:`._network` (the machinery of the network estimators),
:mod:`._mlp`, :mod:`._linear`, :mod:`._perceptron`, and the recurrent networks
:mod:`._rnn` (:class:`RNNClassifier`) and :mod:`._charlm` (:class:`CharLM`).
"""
from fastnet.estimators._base import InvalidParameterError, _not_fitted_class, warning_class
from fastnet.estimators._linear import LinearRegression, LogisticRegression
from fastnet.estimators._mlp import MLPClassifier, MLPRegressor
from fastnet.estimators._perceptron import Perceptron
from fastnet.estimators._cnn import CNNClassifier
from fastnet.estimators._autoencoder import Autoencoder
from fastnet.estimators._rnn import RNNClassifier
from fastnet.estimators._charlm import CharLM

__all__ = ["LinearRegression", "LogisticRegression", "Perceptron", "MLPClassifier",
           "MLPRegressor", "CNNClassifier", "Autoencoder", "RNNClassifier", "CharLM",
           "InvalidParameterError", "NotFittedError", "ConvergenceWarning"]


def __getattr__(name):
    if name == "NotFittedError":
        return _not_fitted_class()
    if name == "ConvergenceWarning":
        return warning_class("ConvergenceWarning")
    if name == "DataConversionWarning":
        return warning_class("DataConversionWarning")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")



ESTIMATORS = {cls.__name__: cls for cls in (LinearRegression, LogisticRegression, Perceptron,
                                             MLPClassifier, MLPRegressor, CNNClassifier,
                                             Autoencoder, RNNClassifier, CharLM)}
