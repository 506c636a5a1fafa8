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
the flat parameter vector (no Python per sample or per batch), with the
course's optimisers (``'gd'`` full batch, ``'sgd'`` with any ``batch_size``
including 1 for online learning, ``'momentum'``, ``'rmsprop'``) and L1/L2
penalties.

Float32 data are trained and predicted in float32; anything else in
float64.  Class labels may be of any type (strings too): they are encoded
as ``0..K-1`` internally and ``classes_`` maps them back.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import numbers
import sys
import time
import warnings

import numpy as np

from fastnet import _backend
from fastnet._backend import ACTIVATION_CODES, LOSS_CODES
from fastnet._params import layer_views, n_params, unpack
from fastnet._progress import Progress
from fastnet._validation import check_rng
from fastnet.training import EpochTrainer, History

__all__ = ["LinearRegression", "LogisticRegression", "Perceptron", "MLPClassifier",
           "MLPRegressor", "InvalidParameterError", "NotFittedError", "ConvergenceWarning"]

_HIDDEN_ACTIVATIONS = ("sigmoid", "relu", "tanh", "linear")
_ALIASES = {"logistic": "sigmoid", "identity": "linear", "relu": "relu", "tanh": "tanh"}
_OPTIMIZERS = ("gd", "sgd", "momentum", "rmsprop")
_DEFAULT_BATCH = 32


# --------------------------------------------------------------------------- errors, warnings
class InvalidParameterError(ValueError, TypeError):
    """A hyper-parameter has a wrong type or value (scikit-learn's wording)."""


class _NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (raised when scikit-learn is not installed)."""


_NotFittedError.__name__ = _NotFittedError.__qualname__ = "NotFittedError"


class _ConvergenceWarning(UserWarning):
    """Training stopped at ``max_epochs`` before its cost settled."""


_ConvergenceWarning.__name__ = _ConvergenceWarning.__qualname__ = "ConvergenceWarning"


class _DataConversionWarning(UserWarning):
    """The input was converted (for example a column vector of labels raveled)."""


_DataConversionWarning.__name__ = _DataConversionWarning.__qualname__ = "DataConversionWarning"


def _not_fitted_class():
    """scikit-learn's NotFittedError when scikit-learn is installed, else fastnet's."""
    if importlib.util.find_spec("sklearn") is not None:
        try:
            return importlib.import_module("sklearn.exceptions").NotFittedError
        except Exception:  # a broken scikit-learn install
            pass
    return _NotFittedError


def _warning_class(name, fallback):
    """scikit-learn's warning class when scikit-learn is already imported (importing it
    just to warn would cost a second), else fastnet's class of the same name."""
    if "sklearn" in sys.modules:
        try:
            return getattr(importlib.import_module("sklearn.exceptions"), name)
        except Exception:
            pass
    return fallback


def __getattr__(name):
    if name == "NotFittedError":
        return _not_fitted_class()
    if name == "ConvergenceWarning":
        return _warning_class("ConvergenceWarning", _ConvergenceWarning)
    if name == "DataConversionWarning":
        return _warning_class("DataConversionWarning", _DataConversionWarning)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------- parameter checks
def _param_error(est, name, expected, value):
    return InvalidParameterError(
        f"The {name!r} parameter of {type(est).__name__} must be {expected}. "
        f"Got {value!r} instead.")


def _p_real(est, name, lo=None, hi=None, lo_open=False, hi_open=False, allow_none=False):
    value = getattr(est, name)
    if value is None and allow_none:
        return None
    left = "(" if lo_open else "["
    right = ")" if hi_open or hi is None else "]"
    rng = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
    expected = f"a float in the range {rng}" + (" or None" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _param_error(est, name, expected, value)
    v = float(value)
    if not np.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo)) or \
            (hi is not None and (v >= hi if hi_open else v > hi)):
        raise _param_error(est, name, expected, value)
    return v


def _p_int(est, name, lo=1, allow_none=False):
    value = getattr(est, name)
    if value is None and allow_none:
        return None
    expected = f"an int in the range [{lo}, inf)" + (" or None" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise _param_error(est, name, expected, value)
    return int(value)


def _p_choice(est, name, choices, allow_none=False):
    value = getattr(est, name)
    if value is None and allow_none:
        return None
    key = value.strip().lower() if isinstance(value, str) else None
    key = _ALIASES.get(key, key)
    if key not in choices:
        shown = "{" + ", ".join(repr(c) for c in choices) + "}"
        expected = f"a str among {shown}" + (" or None" if allow_none else "")
        raise _param_error(est, name, expected, value)
    return key


def _p_bool(est, name):
    value = getattr(est, name)
    if not isinstance(value, (bool, np.bool_, numbers.Integral)) or value not in (0, 1):
        raise _param_error(est, name, "a bool", value)
    return bool(value)


def _p_random_state(est):
    value = est.random_state
    if value is None or isinstance(value, (np.random.Generator, np.random.RandomState)) or (
            isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and 0 <= value < 2**32):
        return check_rng(value)
    raise _param_error(est, "random_state",
                       "an int in the range [0, 4294967295], a numpy Generator or RandomState, "
                       "or None", value)


# ----------------------------------------------------------------------------- data checks
def _is_sparse(X):
    mod = type(X).__module__ or ""
    return mod.startswith("scipy.sparse") or hasattr(X, "tocsr") and hasattr(X, "nnz")


def _feature_names(X):
    cols = getattr(X, "columns", None)
    if cols is None or not hasattr(X, "iloc"):
        return None
    names = np.asarray(list(cols), dtype=object)
    if names.size and all(isinstance(c, str) for c in names):
        return names
    return None


def _nonfinite_message(arr, name):
    if np.isnan(arr).any():
        return f"Input {name} contains NaN."
    return f"Input {name} contains infinity or a value too large for dtype({arr.dtype.name!r})."


def _as_numeric(arr, name):
    """``arr`` as a real float-able array: complex refused, objects and strings converted."""
    kind = arr.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}; expected "
                         f"real numbers")
    if kind in "OUSV":
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            if any(isinstance(v, complex) for v in arr.ravel()[:100]):
                raise ValueError(f"Complex data not supported in {name}") from None
            raise type(exc)(f"{name} must hold numbers: {exc}") from None
    if kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    return arr


def _r2(y, pred):
    """Coefficient of determination averaged over outputs (scikit-learn's r2_score)."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    pred = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    ss_res = ((y - pred) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    ok = ss_tot != 0
    scores = np.ones(y.shape[1])
    scores[ok] = 1 - ss_res[ok] / ss_tot[ok]
    scores[~ok & (ss_res != 0)] = 0.0
    return float(scores.mean())


def _auto_lr(X, loss, output, optimizer, batch_size, momentum, penalty, lam):
    r"""A safe learning rate :math:`1/L` for a model without a hidden layer.

    :math:`L` bounds the curvature of the cost: the largest eigenvalue of
    :math:`\tilde X^T\tilde X/m` (:math:`\tilde X = [1, X]`, by power
    iteration) for full batches, :math:`\max_i (1 + \lVert x_i\rVert^2)` for
    smaller batches, times 1 (quadratic), 1/4 (sigmoid with cross-entropy) or
    1/2 (softmax with log-loss), plus :math:`\lambda` for an L2 penalty.  With
    momentum :math:`\mu` the step is scaled by :math:`1 - \mu`; RMSprop,
    which normalises its steps, gets 0.01.
    """
    if optimizer == "rmsprop":
        return 0.01
    Xd = np.asarray(X, dtype=np.float64)
    m = Xd.shape[0]
    if batch_size is None or batch_size >= m:
        v = np.ones(Xd.shape[1] + 1) / np.sqrt(Xd.shape[1] + 1)
        L = 0.0
        for _ in range(50):
            u = Xd @ v[1:] + v[0]
            w = np.concatenate(([u.sum()], Xd.T @ u)) / m
            L_new = float(np.linalg.norm(w))
            if L_new == 0:
                break
            v = w / L_new
            if abs(L_new - L) <= 1e-3 * L_new:
                L = L_new
                break
            L = L_new
    else:
        L = float(1.0 + np.max(np.einsum("ij,ij->i", Xd, Xd)))
    if loss == "cross_entropy" and output == "sigmoid":
        L *= 0.25
    elif loss == "log_loss":
        L *= 0.5
    elif output != "linear":
        L *= 1.0  # quadratic loss through a squashing output: f' <= 1 for sigmoid and tanh
    if penalty == "l2":
        L += lam
    lr = 1.0 / max(L, 1e-12)
    if optimizer == "momentum":
        lr *= 1.0 - momentum
    return lr


# ------------------------------------------------------------------------------- base class
class _Estimator:
    """scikit-learn's estimator protocol without scikit-learn.

    ``get_params`` / ``set_params`` read the constructor's signature; the
    constructor only stores its arguments (validation happens in ``fit``).
    """

    _estimator_type = None

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep=True):
        """The constructor's parameters and their values (nested ones as ``a__b`` when ``deep``)."""
        out = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def set_params(self, **params):
        """Set parameters (``est.set_params(lr=0.01)``); returns the estimator."""
        valid = self._get_param_names()
        nested = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {self}. Valid "
                                 f"parameters are: {valid!r}.")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub in nested.items():
            getattr(self, name).set_params(**sub)
        return self

    def __repr__(self):
        sig = inspect.signature(type(self).__init__)
        shown = []
        for name, p in sig.parameters.items():
            if name == "self" or not hasattr(self, name):
                continue
            value = getattr(self, name)
            default = p.default
            same = value is default
            if not same:
                try:
                    same = bool(value == default) and type(value) is type(default)
                except Exception:
                    same = False
            if not same:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __sklearn_is_fitted__(self):
        return hasattr(self, "n_features_in_")

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise _not_fitted_class()(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                f"appropriate arguments before using this estimator.")

    def __sklearn_tags__(self):  # only ever called by scikit-learn, so it may import it
        from sklearn.utils import (ClassifierTags, InputTags, RegressorTags, Tags, TargetTags)
        clf = self._estimator_type == "classifier"
        return Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=True, multi_output=not clf, single_output=True),
            classifier_tags=ClassifierTags(multi_class=True, multi_label=False) if clf else None,
            regressor_tags=None if clf else RegressorTags(),
            input_tags=InputTags(two_d_array=True, sparse=False, allow_nan=False),
        )

    def save(self, path, metadata=None):
        """Save the fitted estimator to ``path`` (.npz, no pickle); read it back with :func:`fastnet.load`.

        Parameters
        ----------
        path : str or os.PathLike
        metadata : dict, optional
            JSON-serialisable information stored alongside
            (see :func:`fastnet.io.read_metadata`).
        """
        from fastnet.io import save
        save(self, path, metadata=metadata)

    # ---- input validation shared by every estimator
    def _validate_X(self, X, *, reset):
        name = type(self).__name__
        if X is None:
            raise ValueError(f"{name} expected a 2-D array X of shape (n_samples, n_features), "
                             f"got None")
        if _is_sparse(X):
            raise TypeError(f"{name} does not accept sparse input: convert X to a dense array "
                            f"first (X.toarray())")
        names = _feature_names(X)
        try:
            arr = np.asarray(X)
        except Exception as exc:
            raise ValueError(f"X could not be converted to an array: {exc}") from None
        arr = _as_numeric(arr, "X")
        if arr.ndim == 1:
            raise ValueError(
                f"Expected 2D array, got 1D array instead: X has shape {arr.shape}. Reshape your "
                f"data either using array.reshape(-1, 1) if your data has a single feature or "
                f"array.reshape(1, -1) if it contains a single sample.")
        if arr.ndim != 2:
            raise ValueError(f"Expected 2D array, got {arr.ndim}D array instead: X must have "
                             f"shape (n_samples, n_features), got {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum "
                             f"of 1 is required by {name}.")
        if arr.shape[1] == 0:
            raise ValueError(f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum "
                             f"of 1 is required by {name}.")
        if reset:
            dtype = np.dtype(np.float32) if arr.dtype == np.float32 else np.dtype(np.float64)
        else:
            dtype = self._dtype()
            if arr.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {arr.shape[1]} features, but {name} is expecting "
                                 f"{self.n_features_in_} features as input.")
            fitted = getattr(self, "feature_names_in_", None)
            if names is not None and fitted is not None and list(names) != list(fitted):
                raise ValueError("The feature names should match those that were passed during "
                                 f"fit: expected {list(fitted)}, got {list(names)}")
        arr = np.ascontiguousarray(arr, dtype=dtype)
        if not arr.flags.writeable:  # read-only memory maps: some compiled kernels need writable buffers
            arr = arr.copy()
        if not np.isfinite(arr).all():
            raise ValueError(_nonfinite_message(arr, "X"))
        return arr, names

    def _set_input_attributes(self, X, names):
        self.n_features_in_ = int(X.shape[1])
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_


class _ClassifierMixin:
    """Label encoding, ``score`` as accuracy, for every classifier."""

    _estimator_type = "classifier"

    def _labels(self, y, n_samples):
        """Check ``y`` as class labels; returns a 1-D array."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             f"is None")
        arr = np.asarray(y)
        if arr.ndim == 2 and arr.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please "
                          "change the shape of y to (n_samples,), for example using ravel().",
                          _warning_class("DataConversionWarning", _DataConversionWarning),
                          stacklevel=4)
            arr = arr.ravel()
        if arr.ndim != 1:
            raise ValueError(f"y should be a 1d array of class labels, got an array of shape "
                             f"{arr.shape} (multi-label and multi-output targets are not "
                             f"supported)")
        if arr.shape[0] != n_samples:
            raise ValueError(f"y has {arr.shape[0]} labels but X has {n_samples} samples; "
                             f"expected one label per row of X")
        kind = arr.dtype.kind
        if kind == "c":
            raise ValueError("Complex data not supported: y has complex labels")
        if kind == "f":
            if not np.isfinite(arr).all():
                raise ValueError(_nonfinite_message(arr, "y"))
            if not np.all(arr == np.round(arr)):
                raise ValueError("Unknown label type: continuous. A classifier needs class "
                                 "labels (integers, strings, booleans), not continuous values; "
                                 "use a regressor for continuous targets")
        if kind == "O":
            vals = arr.tolist()
            if any(isinstance(v, float) and (not np.isfinite(v) or v != round(v)) for v in vals):
                raise ValueError("Unknown label type: continuous (or NaN) values in an object "
                                 "array of labels")
            if len({str in type(v).__mro__ for v in vals}) > 1:
                raise ValueError("Unknown label type: mixed strings and numbers in y; expected "
                                 "labels of one type")
        return arr

    def _encode(self, y, n_samples, *, reset, classes=None):
        """Integer codes 0..K-1 of the labels ``y``; sets ``classes_`` when ``reset``."""
        arr = self._labels(y, n_samples)
        if reset:
            if classes is not None:
                cls = np.unique(np.asarray(classes))
                missing = np.setdiff1d(np.unique(arr), cls)
                if missing.size:
                    raise ValueError(f"y has labels {missing.tolist()} that are not in classes="
                                     f"{cls.tolist()}")
            else:
                cls = np.unique(arr)
            if cls.shape[0] < 2:
                raise ValueError(f"{type(self).__name__} can't train when only one class is "
                                 f"present: y holds only the label {cls.tolist()}; expected at "
                                 f"least 2 classes")
            self._new_classes = cls
        else:
            cls = self.classes_
        codes = np.searchsorted(cls, arr)
        codes = np.clip(codes, 0, cls.shape[0] - 1)
        bad = cls[codes] != arr
        if np.any(bad):
            raise ValueError(f"y has labels {np.unique(arr[bad]).tolist()} that were not seen in "
                             f"the first fit (classes_ = {cls.tolist()})")
        return codes.astype(np.int64)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against ``y`` (a fraction in [0, 1], as scikit-learn)."""
        pred = self.predict(X)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.shape[0] != pred.shape[0]:
            raise ValueError(f"y has {y.shape[0]} labels but X has {pred.shape[0]} samples")
        hits = (pred == y).astype(np.float64)
        if sample_weight is not None:
            return float(np.average(hits, weights=np.asarray(sample_weight, dtype=np.float64)))
        return float(hits.mean())


class _RegressorMixin:
    _estimator_type = "regressor"

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination :math:`R^2` of ``predict(X)`` (as scikit-learn)."""
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by fastnet's regressors' score")
        pred = self.predict(X)
        y = np.asarray(y, dtype=np.float64)
        if y.shape[0] != pred.shape[0]:
            raise ValueError(f"y has {y.shape[0]} targets but X has {pred.shape[0]} samples")
        return _r2(y, pred)


# ------------------------------------------------------------------------ network estimators
class _Network(_Estimator):
    """The machinery of every estimator that is a course network (trained by EpochTrainer)."""

    _hidden_default = ()
    _output_choices = ("linear", "sigmoid", "relu", "tanh")
    _loss_choices = ("quadratic", "cross_entropy")
    _init_zero = False  # linear models start from zeros, as the course does
    _lr_auto = False    # linear models accept lr='auto'

    # ---- hyper-parameters
    def _config(self):
        c = {}
        hidden = getattr(self, "hidden_layer_sizes", self._hidden_default)
        if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
            hidden = (hidden,)
        try:
            hidden = tuple(hidden)
        except TypeError:
            raise _param_error(self, "hidden_layer_sizes",
                               "a tuple of positive ints (one per hidden layer)", hidden) from None
        if any(isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1
               for h in hidden):
            raise _param_error(self, "hidden_layer_sizes",
                               "a tuple of positive ints (one per hidden layer)", hidden)
        c["hidden"] = tuple(int(h) for h in hidden)
        acts = getattr(self, "activation", "sigmoid")
        if isinstance(acts, str):
            acts = [acts] * len(c["hidden"])
        else:
            try:
                acts = list(acts)
            except TypeError:
                acts = [acts]
            if len(acts) != len(c["hidden"]):
                raise _param_error(self, "activation",
                                   f"a str or a list of {len(c['hidden'])} strs (one per hidden "
                                   f"layer) among {set(_HIDDEN_ACTIVATIONS)}", self.activation)
        names = []
        for a in acts:
            key = _ALIASES.get(a.strip().lower(), a.strip().lower()) if isinstance(a, str) else None
            if key not in _HIDDEN_ACTIVATIONS:
                shown = "{" + ", ".join(repr(x) for x in _HIDDEN_ACTIVATIONS) + "}"
                raise _param_error(self, "activation",
                                   f"a str among {shown} (or a list of them, one per hidden "
                                   f"layer)", self.activation)
            names.append(key)
        c["activations"] = names
        c["output"] = self._output_activation()
        c["loss"] = self._loss_name(c["output"])
        c["optimizer"] = _p_choice(self, "optimizer", _OPTIMIZERS)
        if self._lr_auto and isinstance(self.lr, str) and self.lr == "auto":
            c["lr"] = "auto"
        else:
            try:
                c["lr"] = _p_real(self, "lr", lo=0, lo_open=True)
            except InvalidParameterError:
                if not self._lr_auto:
                    raise
                raise _param_error(self, "lr", "'auto' or a float in the range (0, inf)",
                                   self.lr) from None
        c["batch_size"] = _p_int(self, "batch_size", lo=1, allow_none=True)
        c["momentum"] = _p_real(self, "momentum", lo=0, hi=1, hi_open=True)
        c["rho"] = _p_real(self, "rho", lo=0, hi=1, hi_open=True)
        c["eps"] = _p_real(self, "eps", lo=0, lo_open=True)
        pen = _p_choice(self, "penalty", ("l1", "l2", "none"), allow_none=True)
        c["penalty"] = None if pen == "none" else pen
        c["lam"] = _p_real(self, "lam", lo=0)
        c["max_epochs"] = _p_int(self, "max_epochs", lo=1)
        c["tol"] = _p_real(self, "tol", lo=0)
        c["n_iter_no_change"] = _p_int(self, "n_iter_no_change", lo=1)
        c["early_stopping"] = _p_bool(self, "early_stopping")
        c["validation_fraction"] = _p_real(self, "validation_fraction", lo=0, hi=1,
                                           lo_open=True, hi_open=True)
        c["shuffle"] = _p_bool(self, "shuffle")
        c["verbose"] = _p_int(self, "verbose", lo=0)
        c["track_accuracy"] = _p_bool(self, "track_accuracy") \
            if hasattr(self, "track_accuracy") else False
        c["rng"] = _p_random_state(self)
        return c

    def _output_activation(self):
        return _p_choice(self, "output_activation", self._output_choices)

    def _loss_name(self, output):
        loss = getattr(self, "loss", None)
        if loss is None:
            return {"softmax": "log_loss", "sigmoid": "cross_entropy"}.get(output, "quadratic")
        key = _p_choice(self, "loss", self._loss_choices)
        if output == "softmax" and key != "log_loss":
            raise _param_error(self, "loss", "'log_loss' (or None) with "
                               "output_activation='softmax'", loss)
        if key == "log_loss" and output != "softmax":
            raise _param_error(self, "loss", "'cross_entropy', 'quadratic' or None with "
                               f"output_activation={output!r} ('log_loss' needs 'softmax')", loss)
        return key

    # ---- targets (overridden by the classifier / regressor halves)
    def _targets(self, y, X, *, reset, classes, output, dtype):
        raise NotImplementedError

    def _n_outputs(self, output):
        raise NotImplementedError

    # ---- fitted structure
    def _dtype(self):
        return self.params_.dtype

    def _kinds(self):
        return np.array([ACTIVATION_CODES[a] for a in self.activations_], dtype=np.int64)

    def _sizes(self):
        return np.asarray(self.layer_sizes_, dtype=np.int64)

    def _forward(self, X, params=None, logits=False):
        kinds = self._kinds()
        if logits:
            kinds = kinds.copy()
            kinds[-1] = ACTIVATION_CODES["linear"]
        sizes = self._sizes()
        out = np.empty((X.shape[0], int(sizes[-1])), dtype=X.dtype)
        _backend.kernels().forward_network(self.params_ if params is None else params, sizes,
                                           kinds, X, out)
        return out

    def _init_params(self, sizes, acts, rng, dtype):
        params = np.zeros(n_params(sizes), dtype=dtype)
        if self._init_zero:
            return params
        for W, act in zip(layer_views(params, sizes), acts):
            fan_in, fan_out = W.shape[0] - 1, W.shape[1]
            # Glorot's uniform initialisation (scikit-learn's, with its factor 2 for sigmoids)
            bound = np.sqrt((2.0 if act == "sigmoid" else 6.0) / (fan_in + fan_out))
            W[...] = (rng.random(W.shape) * 2 - 1) * bound
        return params

    # ---- public API
    def fit(self, X, y):
        """Train from scratch on ``X`` (n_samples, n_features) and ``y``.

        Trains for up to ``max_epochs`` epochs; stops earlier when the cost
        changed by less than ``tol`` for ``n_iter_no_change`` consecutive
        epochs, or (``early_stopping=True``) when the score on the held-out
        ``validation_fraction`` did not improve by more than ``tol`` for
        ``n_iter_no_change`` epochs, in which case the best weights are kept.

        Returns
        -------
        self
        """
        return self._fit(X, y, partial=False, classes=None)

    def _partial_fit(self, X, y, classes=None):
        return self._fit(X, y, partial=True, classes=classes)

    def _fit(self, X, y, *, partial, classes):
        c = self._config()
        first = not partial or not self.__sklearn_is_fitted__()
        if partial and not first and classes is not None and \
                self._estimator_type == "classifier":
            given = np.unique(np.asarray(classes))
            if not np.array_equal(given, self.classes_):
                raise ValueError(f"classes={given.tolist()} differs from classes_="
                                 f"{self.classes_.tolist()} of the first call to partial_fit")
        Xv, names = self._validate_X(X, reset=first)
        dtype = Xv.dtype
        Y, labels = self._targets(y, Xv, reset=first, classes=classes, output=c["output"],
                                  dtype=dtype)
        rng = c["rng"] if first else self._rng
        if first:
            n_out = Y.shape[1]
            sizes = np.array([Xv.shape[1], *c["hidden"], n_out], dtype=np.int64)
            acts = c["activations"] + [c["output"]]
            params = self._init_params(sizes, acts, rng, dtype)
            state = np.zeros(2 * params.shape[0], dtype=params.dtype)
            steps = 0
        else:
            sizes, acts = self._sizes(), list(self.activations_)
            if acts[:-1] != c["activations"] or acts[-1] != c["output"] or \
                    tuple(sizes[1:-1]) != c["hidden"]:
                raise ValueError("partial_fit cannot change hidden_layer_sizes or the "
                                 "activations after the first call; call fit to start over")
            params = self.params_.copy()
            fresh = self._opt_state.shape != (2 * params.shape[0],)
            state = np.zeros(2 * params.shape[0], dtype=params.dtype) if fresh \
                else self._opt_state
            steps = 0 if fresh else self._opt_t
        kinds = np.array([ACTIVATION_CODES[a] for a in acts], dtype=np.int64)
        optimizer = c["optimizer"]
        batch_size = c["batch_size"]
        if batch_size is None and optimizer != "gd":
            batch_size = _DEFAULT_BATCH

        # validation split (fit with early stopping only)
        X_tr, Y_tr, lab_tr = Xv, Y, labels
        X_val = Y_val = lab_val = None
        if c["early_stopping"] and not partial:
            tr, val = self._split(Xv.shape[0], labels, c["validation_fraction"], rng)
            X_tr, Y_tr = np.ascontiguousarray(Xv[tr]), np.ascontiguousarray(Y[tr])
            X_val, Y_val = np.ascontiguousarray(Xv[val]), np.ascontiguousarray(Y[val])
            if labels is not None:
                lab_tr, lab_val = labels[tr], labels[val]

        lr = c["lr"]
        if lr == "auto":
            lr = _auto_lr(X_tr, c["loss"], c["output"], optimizer, batch_size, c["momentum"],
                          c["penalty"], c["lam"])
        trainer = EpochTrainer(params, sizes, kinds, loss=c["loss"], optimizer=optimizer,
                               lr=lr, batch_size=batch_size, momentum=c["momentum"],
                               rho=c["rho"], eps=c["eps"], penalty=c["penalty"], lam=c["lam"],
                               shuffle=c["shuffle"], rng=rng, state=state, t=steps)
        hist = History(J=[], seconds=[]) if first else self.history_
        track = c["track_accuracy"] and labels is not None
        if first:
            if track:
                hist["train_acc"] = []
            if X_val is not None:
                hist["val_J"] = []
                if labels is not None:
                    hist["val_acc"] = []
        lcode = LOSS_CODES[c["loss"]]
        K = _backend.kernels()
        epochs = 1 if partial else c["max_epochs"]
        clock = [time.perf_counter()]
        best = {"score": -np.inf, "params": None, "epoch": 0, "calm": 0}
        m = X_tr.shape[0]

        def labels_of(out):
            return (out[:, 0] >= 0.5).astype(np.int64) if out.shape[1] == 1 \
                else np.argmax(out, axis=1)

        with Progress(total=epochs, verbose=c["verbose"], desc=type(self).__name__) as bar:
            def on_epoch(epoch, J):
                hist["J"].append(J)
                acc = None
                stop = False
                if track:
                    out = np.empty((m, int(sizes[-1])), dtype=dtype)
                    K.forward_network(params, sizes, kinds, X_tr, out)
                    acc = 100.0 * float(np.mean(labels_of(out) == lab_tr))
                    hist["train_acc"].append(acc)
                if X_val is not None:
                    out = np.empty((X_val.shape[0], int(sizes[-1])), dtype=dtype)
                    K.forward_network(params, sizes, kinds, X_val, out)
                    vJ = K.loss(lcode, out, Y_val) / X_val.shape[0]
                    hist["val_J"].append(float(vJ))
                    if lab_val is not None:
                        acc = 100.0 * float(np.mean(labels_of(out) == lab_val))
                        hist["val_acc"].append(acc)
                        score = acc / 100.0
                    else:
                        score = -float(vJ)
                    if score > best["score"] + c["tol"]:
                        best.update(score=score, params=params.copy(), epoch=epoch, calm=0)
                    else:
                        best["calm"] += 1
                        stop = best["calm"] >= c["n_iter_no_change"]
                now = time.perf_counter()
                hist["seconds"].append(now - clock[0])
                clock[0] = now
                bar.update(loss=J, acc=acc, samples=m)
                return stop

            first_epoch = len(hist["J"]) + 1
            n, converged = trainer.run(
                X_tr, Y_tr, epochs, tol=None if (X_val is not None or partial) else c["tol"],
                n_iter_no_change=c["n_iter_no_change"], callback=on_epoch,
                first_epoch=first_epoch)

        stopped_early = X_val is not None and n < epochs
        if X_val is not None and best["params"] is not None:
            params[...] = best["params"]
        if not partial and not converged and not stopped_early:
            warnings.warn(
                f"{type(self).__name__}: max_epochs={epochs} reached before the cost settled "
                f"(|dJ| < tol={c['tol']:g} for {c['n_iter_no_change']} epoch(s)); increase "
                f"max_epochs, or tol, or adjust lr",
                _warning_class("ConvergenceWarning", _ConvergenceWarning), stacklevel=3)

        # commit the fitted state only now (a failed fit leaves no half-fitted estimator)
        if first:
            self._set_input_attributes(Xv, names)
            self.layer_sizes_ = [int(s) for s in sizes]
            self.activations_ = acts
            self.loss_function_ = c["loss"]
            self.n_outputs_ = int(sizes[-1])
            self._y_2d = getattr(self, "_new_y_2d", False)
            if self._estimator_type == "classifier":
                self.classes_ = self._new_classes
            self.n_iter_ = 0
            self.t_ = 0
        self.params_ = params
        self.lr_ = float(lr)
        self._opt_state = trainer.state
        self._opt_t = trainer.t
        self._rng = rng
        self.n_iter_ += n
        self.t_ += n * m
        hist["epochs"] = len(hist["J"])
        hist["converged"] = bool(converged)
        hist["stopped_early"] = bool(stopped_early)
        if X_val is not None:
            hist["best_epoch"] = best["epoch"]
            self.best_validation_score_ = best["score"]
        self.history_ = hist
        self.loss_ = hist["J"][-1]
        self.__dict__.pop("_new_classes", None)
        self.__dict__.pop("_new_y_2d", None)
        return self

    @staticmethod
    def _split(m, labels, fraction, rng):
        """Training and validation indices; stratified by class for classifiers."""
        if labels is None:
            n_val = int(round(fraction * m))
            if n_val < 1 or n_val > m - 1:
                raise ValueError(f"validation_fraction={fraction} of {m} samples leaves "
                                 f"{n_val} for validation; expected at least one sample in the "
                                 f"validation and in the training part")
            perm = rng.permutation(m)
            return np.sort(perm[n_val:]), np.sort(perm[:n_val])
        val = []
        for k in np.unique(labels):
            idx = np.flatnonzero(labels == k)
            take = min(int(round(fraction * idx.shape[0])), idx.shape[0] - 1)
            if take > 0:
                val.append(rng.permutation(idx)[:take])
        if not val:
            raise ValueError(f"validation_fraction={fraction} of {m} samples leaves no "
                             f"validation sample; use more data or a larger validation_fraction "
                             f"(or early_stopping=False)")
        val = np.sort(np.concatenate(val))
        mask = np.ones(m, dtype=bool)
        mask[val] = False
        return np.flatnonzero(mask), val

    # ---- derived views of the fitted weights
    @property
    def coefs_(self):
        """Weight matrices ``(n_in, n_out)`` of each layer (scikit-learn's layout; views)."""
        self._require_fitted_attribute("coefs_")
        return [W[1:] for W in layer_views(self.params_, self._sizes())]

    @property
    def intercepts_(self):
        """Bias vectors ``(n_out,)`` of each layer (views)."""
        self._require_fitted_attribute("intercepts_")
        return [W[0] for W in layer_views(self.params_, self._sizes())]

    @property
    def thetas_(self):
        """The course's weight matrices ``Theta_l`` of shape ``(L_out, L_in + 1)`` (copies)."""
        self._require_fitted_attribute("thetas_")
        return unpack(self.params_, self._sizes())

    @property
    def model_(self):
        """The course's model list ``[Theta1, Sigmoid, Theta2, Sigmoid, ...]`` of the fitted
        network, for :func:`fastnet.predict`, :func:`fastnet.backprop`, :func:`fastnet.save`."""
        self._require_fitted_attribute("model_")
        from fastnet.activations import ACTIVATIONS
        out = []
        for theta, act in zip(self.thetas_, self.activations_):
            out += [theta, ACTIVATIONS[act]]
        return out

    def _require_fitted_attribute(self, name):
        if "params_" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} before fit")

    # ---- save/load support (fastnet.io)
    def _fitted_state(self):
        meta = {"layer_sizes": self.layer_sizes_, "activations": self.activations_,
                "loss_function": self.loss_function_, "n_features_in": self.n_features_in_,
                "n_outputs": self.n_outputs_, "n_iter": self.n_iter_, "t": self.t_,
                "opt_steps": int(getattr(self, "_opt_t", 0)),
                "y_2d": bool(getattr(self, "_y_2d", False)),
                "history": {k: v for k, v in self.history_.items()}}
        arrays = {"params": self.params_, "opt_state": self._opt_state}
        return meta, arrays

    def _restore_state(self, meta, arrays):
        self.params_ = np.ascontiguousarray(arrays["params"])
        self._opt_state = np.ascontiguousarray(arrays.get(
            "opt_state", np.zeros(2 * self.params_.shape[0], self.params_.dtype)))
        self._opt_t = int(meta.get("opt_steps", 0))
        self.layer_sizes_ = [int(s) for s in meta["layer_sizes"]]
        self.activations_ = list(meta["activations"])
        self.loss_function_ = meta["loss_function"]
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_outputs_ = int(meta["n_outputs"])
        self.n_iter_ = int(meta["n_iter"])
        self.t_ = int(meta.get("t", 0))
        self._y_2d = bool(meta.get("y_2d", False))
        self.history_ = History(meta.get("history", {}))
        self.loss_ = self.history_["J"][-1] if self.history_.get("J") else float("nan")
        self._rng = check_rng(None)


class _NetworkClassifier(_ClassifierMixin, _Network):
    _output_choices = ("sigmoid", "softmax")
    _loss_choices = ("cross_entropy", "log_loss", "quadratic")

    def _targets(self, y, X, *, reset, classes, output, dtype):
        codes = self._encode(y, X.shape[0], reset=reset, classes=classes)
        K = (self._new_classes if reset else self.classes_).shape[0]
        n_out = 1 if (K == 2 and output == "sigmoid") else K
        if not reset and n_out != self.n_outputs_:
            raise ValueError("partial_fit cannot change output_activation after the first call")
        if n_out == 1:
            Y = codes.astype(dtype).reshape(-1, 1)
        else:
            Y = np.zeros((codes.shape[0], n_out), dtype=dtype)
            Y[np.arange(codes.shape[0]), codes] = 1
        return Y, codes

    def partial_fit(self, X, y, classes=None):
        """One epoch on ``(X, y)``, continuing from the current weights.

        Parameters
        ----------
        classes : array-like, required on the first call
            Every label that will ever appear (as scikit-learn asks).
        """
        if not self.__sklearn_is_fitted__() and classes is None:
            raise ValueError(f"classes must be passed on the first call to "
                             f"{type(self).__name__}.partial_fit (every label that can occur)")
        return self._partial_fit(X, y, classes=classes)

    def _proba(self, X):
        self._check_fitted()
        Xv, _ = self._validate_X(X, reset=False)
        out = self._forward(Xv)
        if out.shape[1] == 1:
            p = out[:, 0]
            return np.column_stack((1 - p, p)).astype(out.dtype, copy=False)
        if self.activations_[-1] == "softmax":
            return out
        total = out.sum(axis=1, keepdims=True)
        K = out.shape[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            proba = np.where(total > 0, out / np.where(total > 0, total, 1), out.dtype.type(1 / K))
        return proba.astype(out.dtype, copy=False)

    def predict_proba(self, X):
        """Class probabilities, shape ``(n_samples, n_classes)``, columns in ``classes_`` order.

        A single sigmoid output gives ``[1 - a, a]``; several sigmoid
        outputs (the course's network) are normalised to sum to one; a
        softmax output is returned as it is.
        """
        return self._proba(X)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self._proba(X))

    def predict(self, X):
        """Predicted class labels (from ``classes_``): the most probable class."""
        self._check_fitted()
        Xv, _ = self._validate_X(X, reset=False)
        out = self._forward(Xv)
        if out.shape[1] == 1:
            idx = (out[:, 0] >= 0.5).astype(np.int64)
        else:
            idx = np.argmax(out, axis=1)
        return self.classes_[idx]

    def _fitted_state(self):
        meta, arrays = super()._fitted_state()
        arrays["classes"] = self.classes_
        return meta, arrays

    def _restore_state(self, meta, arrays):
        super()._restore_state(meta, arrays)
        self.classes_ = arrays["classes"]


class _NetworkRegressor(_RegressorMixin, _Network):
    _output_choices = ("linear", "sigmoid", "relu", "tanh")
    _loss_choices = ("quadratic", "cross_entropy")

    def _targets(self, y, X, *, reset, classes, output, dtype):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             f"is None")
        try:
            arr = np.asarray(y)
        except Exception as exc:
            raise ValueError(f"y could not be converted to an array: {exc}") from None
        arr = _as_numeric(arr, "y")
        if arr.ndim not in (1, 2):
            raise ValueError(f"y should be a 1d array (or 2-D for several outputs), got shape "
                             f"{arr.shape}")
        if arr.shape[0] != X.shape[0]:
            raise ValueError(f"y has {arr.shape[0]} targets but X has {X.shape[0]} samples; "
                             f"expected one target per row of X")
        Y = np.ascontiguousarray(arr.reshape(arr.shape[0], -1), dtype=dtype)
        if Y.shape[1] == 0:
            raise ValueError("y has no target column")
        if not np.isfinite(Y).all():
            raise ValueError(_nonfinite_message(Y, "y"))
        if reset:
            self._new_y_2d = arr.ndim == 2
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, but {type(self).__name__} was "
                             f"fitted with {self.n_outputs_}")
        return Y, None

    def partial_fit(self, X, y):
        """One epoch on ``(X, y)``, continuing from the current weights."""
        return self._partial_fit(X, y)

    def predict(self, X):
        """Predicted targets: ``(n_samples,)``, or ``(n_samples, n_outputs)`` when fitted on 2-D y."""
        self._check_fitted()
        Xv, _ = self._validate_X(X, reset=False)
        out = self._forward(Xv)
        return out if self._y_2d else out[:, 0] if out.shape[1] == 1 else out


_COMMON_DOC = r"""
    optimizer : {'gd', 'sgd', 'momentum', 'rmsprop'}, default=%(optimizer)r
        ``'gd'``: full-batch gradient descent; ``'sgd'``: (mini-)batches of
        ``batch_size`` (1 is the course's online learning); ``'momentum'``:
        :math:`v \leftarrow \mu v - \eta\nabla J,\ w \leftarrow w + v`;
        ``'rmsprop'``: :math:`s \leftarrow \rho s + (1-\rho)(\nabla J)^2,\
        w \leftarrow w - \eta\nabla J/(\sqrt{s}+\epsilon)`.
    lr : float > 0%(lr_auto)s, default=%(lr)r
        Learning rate :math:`\eta`.%(lr_auto_doc)s
    batch_size : int >= 1 or None, default=None
        Samples per update; None means the whole data for ``'gd'`` and 32
        for the other optimisers.
    momentum : float in [0, 1), default=0.9
        :math:`\mu` of ``'momentum'``.
    rho, eps : float, default=0.9, 1e-8
        RMSprop's decay and :math:`\epsilon`.
    penalty : {None, 'l2', 'l1'}, default=None
        ``'l2'`` adds :math:`\frac{\lambda}{2}\sum w^2`, ``'l1'`` adds
        :math:`\lambda\sum|w|` to the cost (biases are never penalised).
    lam : float >= 0, default=%(lam)r
        :math:`\lambda`, the penalty's strength (used when ``penalty`` is set).
    max_epochs : int >= 1, default=%(max_epochs)r
        Most passes over the data.
    tol : float >= 0, default=%(tol)r
        Training stops when the cost changes by less than ``tol`` for
        ``n_iter_no_change`` consecutive epochs (with ``early_stopping``:
        when the validation score does not improve by more than ``tol``).
    n_iter_no_change : int >= 1, default=%(n_iter_no_change)r
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for
        classifiers), monitor the validation score (accuracy for
        classifiers, minus the loss for regressors) and keep the best
        weights.
    validation_fraction : float in (0, 1), default=0.1
    shuffle : bool, default=True
        Shuffle the samples each epoch (mini-batch and online learning).
    random_state : int, numpy Generator or None, default=None
        Seeds the initial weights, the validation split and the shuffles.
    verbose : int >= 0, default=1
        1: a progress bar (epoch, loss, accuracy, samples/s) when training
        lasts more than about two seconds; 2: from the start; 0: silent.
"""

_ATTRS_DOC = r"""
    Attributes
    ----------
    params_ : ndarray
        All weights in fastnet's flat layout (see :mod:`fastnet._params`).
    coefs_, intercepts_ : lists of ndarray
        Per-layer weights ``(n_in, n_out)`` and biases (views of ``params_``).
    thetas_, model_ :
        The course's ``Theta`` matrices and model list ``[Theta1, Sigmoid, ...]``.
    layer_sizes_ : list of int
    activations_ : list of str
        Activation of each layer, output last.
    loss_function_ : str
    n_features_in_, n_outputs_, n_iter_ : int
    history_ : fastnet.History
        ``'J'`` (cost per epoch), ``'train_acc'`` (classifiers, percent),
        ``'val_J'`` and ``'val_acc'`` (with early stopping), ``'seconds'``.
    loss_ : float
        The last epoch's cost.
"""


_LR_AUTO_DOC = r"""  ``'auto'``: :math:`1/L` with :math:`L` a bound on
        the cost's curvature (the largest eigenvalue of :math:`\tilde X^T\tilde X/m`
        for full batches), which converges whatever the scale of the
        features; the value used is ``lr_``."""


def _doc(cls, summary, params_doc, defaults, extra_attrs=""):
    auto = defaults.get("lr") == "auto"
    defaults = dict(defaults, lr_auto=" or 'auto'" if auto else "",
                    lr_auto_doc=_LR_AUTO_DOC if auto else "")
    cls.__doc__ = summary + "\n    Parameters\n    ----------\n" + params_doc + \
        (_COMMON_DOC.lstrip("\n") % defaults) + _ATTRS_DOC + extra_attrs
    return cls


class LinearRegression(_NetworkRegressor):
    _init_zero = True
    _lr_auto = True

    def __init__(self, *, optimizer="gd", lr="auto", batch_size=None, momentum=0.9, rho=0.9,
                 eps=1e-8, penalty=None, lam=1e-4, max_epochs=1000, tol=1e-6,
                 n_iter_no_change=1, early_stopping=False, validation_fraction=0.1,
                 shuffle=True, random_state=None, verbose=1):
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.momentum = momentum
        self.rho = rho
        self.eps = eps
        self.penalty = penalty
        self.lam = lam
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose

    def _output_activation(self):
        return "linear"

    def _loss_name(self, output):
        return "quadratic"

    @property
    def coef_(self):
        """Weights ``(n_features,)``, or ``(n_outputs, n_features)`` for 2-D targets."""
        self._require_fitted_attribute("coef_")
        W = layer_views(self.params_, self._sizes())[0]
        return W[1:, 0].copy() if not self._y_2d else W[1:].T.copy()

    @property
    def intercept_(self):
        """The bias (a float), or ``(n_outputs,)`` for 2-D targets."""
        self._require_fitted_attribute("intercept_")
        W = layer_views(self.params_, self._sizes())[0]
        return float(W[0, 0]) if not self._y_2d else W[0].copy()


_doc(LinearRegression, r"""Linear regression trained by gradient descent (the course's).

    :math:`h_\theta(x) = \theta_0 + \theta^T x`, cost
    :math:`J = \frac{1}{2m}\sum_i (h_\theta(x^{(i)}) - y^{(i)})^2` (plus the
    penalty), minimised by the chosen optimiser from zero weights.  ``y`` may
    have several columns (one linear model per output).  Gradient descent
    needs features of comparable scale: standardise them first
    (:class:`fastnet.Standardizer`); a learning rate that is too large stops
    with :class:`fastnet.DivergenceError`.
""", "", dict(optimizer="gd", lr="auto", lam=1e-4, max_epochs=1000, tol=1e-6, n_iter_no_change=1),
     r"""    coef_, intercept_ :
        The weights and bias, as scikit-learn's ``LinearRegression``.
""")


class LogisticRegression(_NetworkClassifier):
    _init_zero = True
    _lr_auto = True

    def __init__(self, *, output_activation="sigmoid", optimizer="gd", lr="auto", batch_size=None,
                 momentum=0.9, rho=0.9, eps=1e-8, penalty=None, lam=1e-4, max_epochs=1000,
                 tol=1e-6, n_iter_no_change=1, early_stopping=False, validation_fraction=0.1,
                 shuffle=True, random_state=None, verbose=1, track_accuracy=True):
        self.output_activation = output_activation
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.momentum = momentum
        self.rho = rho
        self.eps = eps
        self.penalty = penalty
        self.lam = lam
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.track_accuracy = track_accuracy

    def decision_function(self, X):
        r"""The logits :math:`\theta_0 + \theta^T x`: ``(n_samples,)`` for two classes (for a
        two-unit softmax, :math:`z_1 - z_0`), else ``(n_samples, n_classes)``."""
        self._check_fitted()
        Xv, _ = self._validate_X(X, reset=False)
        z = self._forward(Xv, logits=True)
        if z.shape[1] == 1:
            return z[:, 0]
        if z.shape[1] == 2:
            return z[:, 1] - z[:, 0]
        return z

    @property
    def coef_(self):
        """Weights ``(1, n_features)`` for two classes (sigmoid), else ``(n_classes, n_features)``."""
        self._require_fitted_attribute("coef_")
        return layer_views(self.params_, self._sizes())[0][1:].T.copy()

    @property
    def intercept_(self):
        """Biases ``(1,)`` or ``(n_classes,)``."""
        self._require_fitted_attribute("intercept_")
        return layer_views(self.params_, self._sizes())[0][0].copy()


_doc(LogisticRegression, r"""Logistic regression trained by gradient descent (the course's).

    Two classes: :math:`h_\theta(x) = \sigma(\theta_0 + \theta^T x)` with the
    cross-entropy :math:`J = -\frac{1}{m}\sum y\log h + (1-y)\log(1-h)`.
    More classes: one sigmoid output per class trained together with the
    cross-entropy summed over outputs (the course's network without a hidden
    layer), or ``output_activation='softmax'`` with the log-loss
    (multinomial logistic regression).  Starts from zero weights.
""", r"""    output_activation : {'sigmoid', 'softmax'}, default='sigmoid'
        Output units: sigmoid with the cross-entropy, or softmax with the log-loss.
    track_accuracy : bool, default=True
        Record the training accuracy of each epoch in ``history_['train_acc']``
        (one forward pass over the training data per epoch).
""", dict(optimizer="gd", lr="auto", lam=1e-4, max_epochs=1000, tol=1e-6, n_iter_no_change=1),
     r"""    classes_ : ndarray
        The class labels, sorted.
    coef_, intercept_ :
        As scikit-learn's ``LogisticRegression``.
""")


class MLPClassifier(_NetworkClassifier):
    def __init__(self, hidden_layer_sizes=(100,), *, activation="sigmoid",
                 output_activation="sigmoid", loss=None, optimizer="sgd", lr=0.1,
                 batch_size=None, momentum=0.9, rho=0.9, eps=1e-8, penalty=None, lam=1e-4,
                 max_epochs=200, tol=1e-4, n_iter_no_change=10, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, random_state=None, verbose=1,
                 track_accuracy=True):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.momentum = momentum
        self.rho = rho
        self.eps = eps
        self.penalty = penalty
        self.lam = lam
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.track_accuracy = track_accuracy


_HIDDEN_DOC = r"""    hidden_layer_sizes : tuple of int, default=(100,)
        Units of each hidden layer (``()``: no hidden layer).
    activation : str or list of str, default='sigmoid'
        Hidden activation, ``'sigmoid'``, ``'relu'``, ``'tanh'`` or
        ``'linear'`` (scikit-learn's ``'logistic'`` and ``'identity'`` are
        accepted), or a list with one per hidden layer.
"""

_doc(MLPClassifier, r"""A multi-layer perceptron classifier: the course's network.

    ``[Theta1, Sigmoid, Theta2, Sigmoid]`` for ``hidden_layer_sizes=(n,)``:
    forward propagation :math:`a^{(l+1)} = f(\Theta^{(l)} [1; a^{(l)}])`,
    backpropagation of the cross-entropy summed over the outputs, trained by
    the chosen optimiser.  Two classes use one sigmoid output; K classes
    use K outputs (one-hot targets).  Weights start uniform in
    :math:`\pm\sqrt{6/(n_{in}+n_{out})}` (:math:`\sqrt{2/\ldots}` before a
    sigmoid), as scikit-learn's.
""", _HIDDEN_DOC + r"""    output_activation : {'sigmoid', 'softmax'}, default='sigmoid'
    loss : {None, 'cross_entropy', 'log_loss', 'quadratic'}, default=None
        None: cross-entropy for sigmoid outputs, log-loss for softmax.
    track_accuracy : bool, default=True
        Record the training accuracy of each epoch in ``history_['train_acc']``
        (one forward pass over the training data per epoch).
""", dict(optimizer="sgd", lr=0.1, lam=1e-4, max_epochs=200, tol=1e-4, n_iter_no_change=10),
     r"""    classes_ : ndarray
        The class labels, sorted.
""")


class MLPRegressor(_NetworkRegressor):
    def __init__(self, hidden_layer_sizes=(100,), *, activation="sigmoid",
                 output_activation="linear", loss=None, optimizer="sgd", lr=0.01,
                 batch_size=None, momentum=0.9, rho=0.9, eps=1e-8, penalty=None, lam=1e-4,
                 max_epochs=200, tol=1e-4, n_iter_no_change=10, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, random_state=None, verbose=1):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.momentum = momentum
        self.rho = rho
        self.eps = eps
        self.penalty = penalty
        self.lam = lam
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose


_doc(MLPRegressor, r"""A multi-layer perceptron regressor: hidden layers and a linear output.

    The quadratic cost :math:`\frac{1}{2m}\sum_i \lVert a^{(i)} - y^{(i)}\rVert^2`
    by default; ``y`` may have several columns.  Scale the targets (and
    features) to order one for gradient descent.
""", _HIDDEN_DOC + r"""    output_activation : {'linear', 'sigmoid', 'relu', 'tanh'}, default='linear'
    loss : {None, 'quadratic', 'cross_entropy'}, default=None
        None: quadratic (cross-entropy needs targets in [0, 1] and a sigmoid output).
""", dict(optimizer="sgd", lr=0.01, lam=1e-4, max_epochs=200, tol=1e-4, n_iter_no_change=10))


# --------------------------------------------------------------------------------- perceptron
class Perceptron(_ClassifierMixin, _Estimator):
    r"""The course's perceptron: :math:`\hat y = [w_0 + w^T x \ge 0]`, trained by the perceptron rule.

    Sample by sample, :math:`w \leftarrow w + \eta\,(y - \hat y)\,[1, x]`, for
    up to ``max_epochs`` passes; training stops after a pass without a
    mistake.  Each pass over all epochs runs inside the backend's
    ``perceptron_train`` kernel.  More than two classes are handled one
    versus the rest (one perceptron per class, the class with the largest
    activation wins).

    Parameters
    ----------
    lr : float > 0, default=1.0
        Learning rate :math:`\eta`.
    max_epochs : int >= 1, default=100
    shuffle : bool, default=False
        Shuffle the samples before each epoch (the course does not).
    random_state : int, numpy Generator or None, default=None
        Seeds the shuffles.

    Attributes
    ----------
    coef_ : ndarray (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray (1,) or (n_classes,)
    weights_ : ndarray (n_features + 1,)
        The course's weight vector (bias first), two classes only.
    classes_ : ndarray
    n_iter_ : int
        Epochs run (the most over the one-versus-rest perceptrons).
    history_ : fastnet.History
        ``'errors'``: mistakes made during each epoch (summed over the
        perceptrons).
    """

    def __init__(self, *, lr=1.0, max_epochs=100, shuffle=False, random_state=None):
        self.lr = lr
        self.max_epochs = max_epochs
        self.shuffle = shuffle
        self.random_state = random_state

    def _config(self):
        return {"lr": _p_real(self, "lr", lo=0, lo_open=True),
                "max_epochs": _p_int(self, "max_epochs", lo=1),
                "shuffle": _p_bool(self, "shuffle"),
                "rng": _p_random_state(self)}

    def _dtype(self):
        return self.W_.dtype

    def fit(self, X, y):
        """Train from zero weights; returns self."""
        return self._fit(X, y, partial=False, classes=None)

    def partial_fit(self, X, y, classes=None):
        """One epoch of the perceptron rule on ``(X, y)`` (``classes`` required on the first call)."""
        if not self.__sklearn_is_fitted__() and classes is None:
            raise ValueError("classes must be passed on the first call to "
                             "Perceptron.partial_fit (every label that can occur)")
        if self.__sklearn_is_fitted__() and classes is not None:
            given = np.unique(np.asarray(classes))
            if not np.array_equal(given, self.classes_):
                raise ValueError(f"classes={given.tolist()} differs from classes_="
                                 f"{self.classes_.tolist()} of the first call to partial_fit")
        return self._fit(X, y, partial=True, classes=classes)

    def _fit(self, X, y, *, partial, classes):
        c = self._config()
        first = not partial or not self.__sklearn_is_fitted__()
        Xv, names = self._validate_X(X, reset=first)
        codes = self._encode(y, Xv.shape[0], reset=first, classes=classes)
        cls = self._new_classes if first else self.classes_
        n_units = 1 if cls.shape[0] == 2 else cls.shape[0]
        rng = c["rng"] if first else self._rng
        W = np.zeros((n_units, Xv.shape[1] + 1), dtype=Xv.dtype) if first else self.W_.copy()
        K = _backend.kernels()
        epochs = 1 if partial else c["max_epochs"]
        m = Xv.shape[0]
        errors_total = np.zeros(epochs, dtype=np.int64)
        runs = 0
        for k in range(n_units):
            target = (codes == (1 if n_units == 1 else k)).astype(Xv.dtype)
            w = np.ascontiguousarray(W[k])
            if c["shuffle"]:
                ran = 0
                one = np.zeros(1, dtype=np.int64)
                for e in range(epochs):
                    perm = rng.permutation(m)
                    K.perceptron_train(np.ascontiguousarray(Xv[perm]), target[perm], w, 1,
                                       c["lr"], one)
                    errors_total[e] += one[0]
                    ran += 1
                    if one[0] == 0:
                        break
            else:
                errs = np.zeros(epochs, dtype=np.int64)
                ran = int(K.perceptron_train(Xv, target, w, epochs, c["lr"], errs))
                errors_total[:ran] += errs[:ran]
            W[k] = w
            runs = max(runs, ran)
        if first:
            self._set_input_attributes(Xv, names)
            self.classes_ = cls
            self.n_iter_ = 0
            self.history_ = History(errors=[])
        self.W_ = W
        self._rng = rng
        self.__dict__.pop("_new_classes", None)
        self.n_iter_ += runs
        self.history_["errors"].extend(int(e) for e in errors_total[:runs])
        self.history_["epochs"] = len(self.history_["errors"])
        self.history_["converged"] = bool(runs and errors_total[runs - 1] == 0)
        return self

    @property
    def coef_(self):
        if "W_" not in self.__dict__:
            raise AttributeError("Perceptron has no attribute 'coef_' before fit")
        return self.W_[:, 1:].copy()

    @property
    def intercept_(self):
        if "W_" not in self.__dict__:
            raise AttributeError("Perceptron has no attribute 'intercept_' before fit")
        return self.W_[:, 0].copy()

    @property
    def weights_(self):
        """The course's weight vector ``[w0, w1, ..., wn]`` (two classes only)."""
        if "W_" not in self.__dict__:
            raise AttributeError("Perceptron has no attribute 'weights_' before fit")
        if self.W_.shape[0] != 1:
            raise AttributeError("weights_ exists for two classes only; use coef_ and "
                                 "intercept_ for one-versus-rest perceptrons")
        return self.W_[0].copy()

    def decision_function(self, X):
        r"""The activations :math:`w_0 + w^T x`: ``(n_samples,)`` for two classes, else per class."""
        self._check_fitted()
        Xv, _ = self._validate_X(X, reset=False)
        z = Xv @ self.W_[:, 1:].T + self.W_[:, 0]
        return z[:, 0] if z.shape[1] == 1 else z

    def predict(self, X):
        """Class labels: the neuron fires (:math:`\\ge 0`) for ``classes_[1]``; one versus the rest
        picks the largest activation."""
        z = self.decision_function(X)
        idx = (z >= 0).astype(np.int64) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]

    def _fitted_state(self):
        meta = {"n_features_in": self.n_features_in_, "n_iter": self.n_iter_,
                "history": dict(self.history_)}
        return meta, {"W": self.W_, "classes": self.classes_}

    def _restore_state(self, meta, arrays):
        self.W_ = np.ascontiguousarray(arrays["W"])
        self.classes_ = arrays["classes"]
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_iter_ = int(meta["n_iter"])
        self.history_ = History(meta.get("history", {}))
        self._rng = check_rng(None)


ESTIMATORS = {cls.__name__: cls for cls in (LinearRegression, LogisticRegression, Perceptron,
                                             MLPClassifier, MLPRegressor)}
