"""The scikit-learn contract of fastnet's estimators, without scikit-learn.

* errors and warnings (:class:`InvalidParameterError`, scikit-learn's
  ``NotFittedError`` / ``ConvergenceWarning`` when it is installed);
* hyper-parameter checks with scikit-learn's wording (``_p_real``,
  ``_p_int``, ``_p_choice``, ``_p_bool``, ``_p_random_state``);
* input checks (``X`` and labels) shared by every estimator;
* :class:`_Estimator` (``get_params``/``set_params``, ``repr``, fitted
  checks, tags, ``save``) and the classifier / regressor mixins (label
  encoding, ``score``).
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import warnings

import numpy as np

from fastnet._validation import (InvalidParameterError, check_bool, check_choice, check_int,
                                 check_rng, check_random_state, check_scalar,
                                 parameter_error)

__all__ = ["InvalidParameterError"]  # the rest is private to fastnet.estimators

_HIDDEN_ACTIVATIONS = ("sigmoid", "relu", "tanh", "linear")
_ALIASES = {"logistic": "sigmoid", "identity": "linear", "relu": "relu", "tanh": "tanh"}
_DEFAULT_BATCH = 32


# --------------------------------------------------------------------------- errors, warnings
class _NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (raised when scikit-learn is not installed)."""


_NotFittedError.__name__ = _NotFittedError.__qualname__ = "NotFittedError"


def _not_fitted_class():
    """scikit-learn's NotFittedError when scikit-learn is installed, else fastnet's."""
    exc = _sklearn_exceptions()
    return exc.NotFittedError if exc is not None else _NotFittedError


def _sklearn_exceptions():
    """``sklearn.exceptions`` when scikit-learn is installed (imported on first need), else None."""
    if "sklearn.exceptions" not in sys.modules and importlib.util.find_spec("sklearn") is None:
        return None
    try:
        return importlib.import_module("sklearn.exceptions")
    except Exception:  # noqa: BLE001 - a broken scikit-learn install: fastnet's own classes
        return None


_WARNING_DOCS = {
    "ConvergenceWarning": "Training stopped at max_iter before its cost settled.",
    "DataConversionWarning": "The input was converted (for example a column vector of labels "
                             "raveled).",
}
_WARNINGS = {}


def warning_class(name):
    """fastnet's ``ConvergenceWarning`` / ``DataConversionWarning``: one class per process.

    When scikit-learn is installed the class is a subclass of scikit-learn's
    warning of the same name, so that scikit-learn's filters (``warnings.
    filterwarnings('ignore', category=sklearn.exceptions.ConvergenceWarning)``)
    catch fastnet's warnings too, whether scikit-learn was imported before or
    after fastnet.  It is made on first use (scikit-learn is imported then,
    never at ``import fastnet``).
    """
    cls = _WARNINGS.get(name)
    if cls is None:
        exc = _sklearn_exceptions()
        base = getattr(exc, name, None) if exc is not None else None
        cls = type(name, (base if base is not None else UserWarning,),
                   {"__doc__": _WARNING_DOCS[name], "__module__": "fastnet"})
        _WARNINGS[name] = cls
    return cls


# ----------------------------------------------------------------------- parameter checks
# The checks are fastnet._validation's (one set of validators); ``owner`` gives them
# scikit-learn's wording.  Each reads the attribute ``name`` of the estimator.
def _param_error(est, name, expected, value):
    return parameter_error(type(est).__name__, name, expected, value)


def _p_real(est, name, lo=None, hi=None, lo_open=False, hi_open=False, allow_none=False):
    return check_scalar(getattr(est, name), name, lo=lo, hi=hi, lo_open=lo_open,
                        hi_open=hi_open, allow_none=allow_none, owner=type(est).__name__)


def _p_int(est, name, lo=1, allow_none=False):
    return check_int(getattr(est, name), name, lo=lo, allow_none=allow_none,
                     owner=type(est).__name__)


def _p_choice(est, name, choices, allow_none=False):
    return check_choice(getattr(est, name), name, choices, aliases=_ALIASES,
                        allow_none=allow_none, owner=type(est).__name__)


def _p_bool(est, name):
    return check_bool(getattr(est, name), name, owner=type(est).__name__)


def _p_random_state(est):
    """The estimator's random source: scikit-learn's (``check_random_state``) for the
    estimators that replay scikit-learn's draws (``_sklearn_draws``), else a Generator."""
    check = check_random_state if getattr(est, "_sklearn_draws", False) else check_rng
    return check(est.random_state, "random_state", owner=type(est).__name__)


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



# ------------------------------------------------------------------------------- base class
def store_params(est, values):
    """Set each constructor parameter of ``est`` from ``values`` (the constructor's ``locals()``).

    The constructors only store their arguments (scikit-learn's rule); this
    is that one line for all of them.
    """
    for name in type(est)._get_param_names():
        setattr(est, name, values[name])


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
    def _fit_dtype(self, arr):
        """The dtype a fit trains in: float32 input stays float32, anything else float64
        (scikit-learn's rule); estimators with a ``dtype`` parameter override it."""
        return np.dtype(np.float32) if arr.dtype == np.float32 else np.dtype(np.float64)

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
            dtype = self._fit_dtype(arr)
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


def _label_kind(arr):
    """``'string'`` or ``'numeric'`` (numbers and booleans compare with each other)."""
    arr = np.asarray(arr)
    if arr.dtype.kind in "US":
        return "string"
    if arr.dtype.kind == "O" and arr.size and all(isinstance(v, str) for v in arr.ravel()[:100]):
        return "string"
    return "numeric"


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
                          warning_class("DataConversionWarning"),
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
        if _label_kind(y) != _label_kind(self.classes_):
            raise ValueError(
                f"Labels in y and the predictions should be of the same type: y holds "
                f"{_label_kind(y)} labels, but {type(self).__name__} was fitted on "
                f"{_label_kind(self.classes_)} labels ({self.classes_[:5].tolist()}...); pass "
                f"the labels as they were given to fit")
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
