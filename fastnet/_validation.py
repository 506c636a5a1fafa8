"""Input checks shared by every public function.

Every check raises ``TypeError`` (wrong kind of object or dtype) or
``ValueError`` (wrong shape, value or range) with a message that names the
argument and says what was expected, so that bad input never surfaces as a
numpy broadcasting error from deep inside a kernel.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "as_float_array",
    "check_labels",
    "check_targets",
    "check_distributions",
    "check_model",
    "resolve_activation",
    "UserActivation",
    "check_scalar",
    "check_int",
    "check_choice",
    "check_bool",
    "check_rng",
    "result_dtype",
    "InvalidParameterError",
    "parameter_error",
]

_FLOATS = (np.float32, np.float64)


def result_dtype(X) -> np.dtype:
    """The dtype fastnet computes in for data ``X``: float32 stays float32, anything else is float64."""
    dt = np.asarray(X).dtype if not hasattr(X, "dtype") else X.dtype
    return np.dtype(np.float32) if dt == np.float32 else np.dtype(np.float64)


def _describe_nonfinite(arr, name):
    bad = np.argwhere(~np.isfinite(arr))[0]
    where = ", ".join(str(int(i)) for i in bad)
    value = arr[tuple(bad)]
    return f"{name} contains {value} at index ({where}); expected only finite numbers (no NaN or inf)"


def as_float_array(X, name: str, *, ndim=2, dtype=None, allow_empty=False, finite=True,
                   contiguous=True, copy=False) -> np.ndarray:
    """Convert ``X`` to a float array and check it.

    Parameters
    ----------
    X : array_like
        The input.  Booleans and integers become float64, float32 stays
        float32 (unless ``dtype`` says otherwise); strings, objects and
        complex numbers are refused.
    name : str
        The argument's name, used in error messages.
    ndim : int or tuple of int
        Allowed numbers of dimensions.
    dtype : numpy dtype, optional
        Force this float dtype.
    allow_empty : bool
        Accept arrays with no elements.
    finite : bool
        Refuse NaN and inf.
    contiguous : bool
        Return a C-contiguous array (copying if needed).
    copy : bool
        Always return a copy.
    """
    if X is None:
        raise TypeError(f"{name} must be an array of numbers, got None")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    kind = arr.dtype.kind
    if kind not in "biuf":
        if kind == "c":
            raise TypeError(f"{name} must be real numbers, got complex dtype {arr.dtype}")
        if kind == "O":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be an array of numbers, got an object array "
                                f"(ragged rows or non-numeric entries?)") from None
        else:
            raise TypeError(f"{name} must be an array of numbers, got dtype {arr.dtype}")
    target = np.dtype(dtype) if dtype is not None else result_dtype(arr)
    if target not in _FLOATS:
        raise TypeError(f"{name}: dtype must be float32 or float64, got {target}")
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got an array of shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {arr.shape}); expected at least one sample "
                         f"and one feature")
    if copy or arr.dtype != target or (contiguous and not arr.flags.c_contiguous):
        arr = np.array(arr, dtype=target, order="C" if contiguous else "K", copy=True)
    if finite and arr.size and not np.isfinite(arr).all():
        raise ValueError(_describe_nonfinite(arr, name))
    return arr


def check_labels(y, name: str = "y", *, n_samples=None, n_classes=None) -> np.ndarray:
    """Check integer class labels 0..K-1 and return them as int64.

    Float labels are accepted when they are whole numbers (``3.0``).
    """
    if y is None:
        raise TypeError(f"{name} must be an array of integer labels, got None")
    arr = np.asarray(y)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integer labels, got shape {arr.shape}")
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} labels but X has {n_samples} rows; "
                         f"expected one label per row of X")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; expected at least one label")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(_describe_nonfinite(arr, name))
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer class labels 0..K-1, got non-integer "
                             f"values such as {arr[arr != np.round(arr)][0]}")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
    else:
        raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise ValueError(f"{name} has label {lo}; expected labels in 0..K-1")
    if n_classes is not None and hi >= n_classes:
        raise ValueError(f"{name} has label {hi} but the network has {n_classes} outputs; "
                         f"expected labels in 0..{n_classes - 1}")
    return np.ascontiguousarray(arr)


def check_targets(y, n_samples: int, n_outputs: int, dtype, name: str = "y") -> np.ndarray:
    """Targets for a network with ``n_outputs`` outputs, as a (n_samples, n_outputs) float array.

    ``y`` is either a 1-D array of integer labels (one-hot encoded here, as
    the course's ``backprop`` does) or a 2-D array of targets.
    """
    arr = np.asarray(y) if y is not None else None
    if arr is not None and arr.ndim == 2:
        Y = as_float_array(arr, name, ndim=2, dtype=dtype)
        if Y.shape != (n_samples, n_outputs):
            raise ValueError(f"{name} has shape {Y.shape}; expected ({n_samples}, {n_outputs}): "
                             f"one row per sample of X and one column per network output")
        return Y
    if n_outputs == 1 and arr is not None and arr.ndim == 1:
        # one output unit: y holds the target values themselves (0/1 for a binary classifier)
        Y = as_float_array(arr, name, ndim=1, dtype=dtype)
        if Y.shape[0] != n_samples:
            raise ValueError(f"{name} has {Y.shape[0]} values but X has {n_samples} rows; "
                             f"expected one target per row of X")
        return Y.reshape(-1, 1)
    labels = check_labels(y, name, n_samples=n_samples, n_classes=n_outputs)
    Y = np.zeros((n_samples, n_outputs), dtype=dtype)
    Y[np.arange(n_samples), labels] = 1
    return Y


def check_distributions(Y, name: str = "y") -> np.ndarray:
    """Check that each row of the targets ``Y`` is a probability distribution.

    A softmax output with the log-loss has the output error ``a - y`` only when
    each row of ``y`` is non-negative and sums to 1 (one-hot labels, or soft
    labels); for other targets that error is not the cost's gradient.
    """
    tol = 1e-6 if Y.dtype == np.float64 else 1e-4
    sums = Y.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero((np.abs(sums - 1) > tol) | np.any(Y < 0, axis=1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}: row {i} of the targets is not a probability distribution "
                         f"(sum {sums[i]:g}, min {Y[i].min():g}); a Softmax output with "
                         f"loss='log_loss' needs labels 0..K-1 or rows of non-negative targets "
                         f"summing to 1")
    return Y


class UserActivation:
    """A user-defined activation in the course's style: an object with ``f(z)`` and ``df(z)``.

    The course writes its activations as classes with two static methods,
    ``f`` (the function) and ``df`` (its derivative), both taking and returning
    arrays of pre-activations ``z``; any class or object of that shape (a
    softplus, say) may appear in a model list.  This wrapper calls the user's
    functions as they are and checks their results (an array of ``z``'s shape,
    in ``z``'s dtype), so that a wrong result is an error naming the class,
    never a silent broadcast.  ``name`` and ``code`` are None: no built-in kernel
    knows it (see :mod:`fastnet._layerwise` for how the backends run it).
    """

    name = None
    code = None

    def __init__(self, source):
        self.source = source
        self.label = getattr(source, "__name__", None) or type(source).__name__

    def _call(self, which, z):
        z = np.asarray(z)
        out = getattr(self.source, which)(z)
        try:
            arr = np.asarray(out, dtype=z.dtype if z.dtype.kind == "f" else np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{self.label}.{which}(z) must return an array of numbers, got "
                            f"{type(out).__name__}") from None
        if arr.shape != z.shape:
            arr = np.broadcast_to(arr, z.shape).copy() if arr.ndim == 0 else arr
        if arr.shape != z.shape:
            raise ValueError(f"{self.label}.{which}(z) returned shape {arr.shape} for z of shape "
                             f"{z.shape}; an activation's f and df work elementwise (same shape)")
        return arr

    def f(self, z):
        return self._call("f", z)

    def df(self, z):
        return self._call("df", z)

    def __eq__(self, other):
        return isinstance(other, UserActivation) and other.source is self.source

    def __hash__(self):
        return hash(id(self.source))

    def __repr__(self):
        return f"UserActivation({self.label})"


def _builtin_activations():
    from fastnet.reference.activations import ACTIVATIONS
    known = {cls: cls for cls in ACTIVATIONS.values()}
    try:
        from fastnet import activations as api
        known.update({cls: ACTIVATIONS[cls.name] for cls in api.ACTIVATIONS.values()})
    except ImportError:  # pragma: no cover - while fastnet.activations is being imported
        pass
    return ACTIVATIONS, known


def resolve_activation(obj, name: str = "activation"):
    """The activation ``obj`` stands for: a reference activation class, or a :class:`UserActivation`.

    ``obj`` may be one of fastnet's activation classes (from ``fastnet`` or
    ``fastnet.reference``, or an instance of one), a name such as
    ``'sigmoid'``, or any object with callable ``f`` and ``df`` (the course's
    ``class Sigmoid(Activation)`` with static methods, a softplus...), which
    is used as it is.
    """
    ACTIVATIONS, known = _builtin_activations()
    if isinstance(obj, str):
        key = obj.strip().lower()
        key = {"logistic": "sigmoid", "identity": "linear"}.get(key, key)
        if key in ACTIVATIONS:
            return ACTIVATIONS[key]
    elif isinstance(obj, UserActivation):
        return obj
    else:
        try:
            if obj in known:
                return known[obj]
            if type(obj) in known:
                return known[type(obj)]
        except TypeError:  # unhashable
            pass
        if callable(getattr(obj, "f", None)) and callable(getattr(obj, "df", None)):
            return UserActivation(obj)
        key = getattr(obj, "name", None)
        if isinstance(key, str) and key in ACTIVATIONS:
            return ACTIVATIONS[key]
    allowed = "Linear, Sigmoid, ReLu, TanH, Softmax (or their names 'linear', 'sigmoid', " \
              "'relu', 'tanh', 'softmax'), or an object with methods f(z) and df(z) (the " \
              "course's style)"
    raise TypeError(f"{name} must be one of fastnet's activations {allowed}, got {obj!r}")


def check_theta(theta, name: str = "Theta") -> np.ndarray:
    """Check one weight matrix of shape (L_out, L_in + 1) with the bias in column 0."""
    t = np.asarray(theta)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric weight matrix, got dtype {t.dtype}")
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 2:
        raise ValueError(f"{name} must be a 2-D weight matrix of shape (L_out, L_in + 1) "
                         f"with the bias in column 0, got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError(_describe_nonfinite(t, name))
    return t


def check_model(model, name: str = "model"):
    """Check a course-style model list ``[Theta1, act1, Theta2, act2, ...]``.

    Returns
    -------
    thetas : list of ndarray
        The weight matrices as given (not copied), each (L_out, L_in + 1).
    acts : list of activation classes (reference versions)
    """
    if not isinstance(model, (list, tuple)):
        raise TypeError(f"{name} must be a list [Theta1, activation1, Theta2, activation2, ...], "
                        f"got {type(model).__name__}")
    if len(model) == 0 or len(model) % 2:
        raise ValueError(f"{name} must alternate weight matrices and activations "
                         f"[Theta1, Sigmoid, Theta2, Sigmoid, ...]; got {len(model)} items")
    thetas, acts = [], []
    for i in range(0, len(model), 2):
        theta, act = model[i], model[i + 1]
        if isinstance(theta, str) or not hasattr(theta, "__len__") and not hasattr(theta, "shape"):
            raise TypeError(f"{name}[{i}] must be a weight matrix (array of shape "
                            f"(L_out, L_in + 1)), got {type(theta).__name__}; the model list must "
                            f"alternate weights and activations")
        if isinstance(act, np.ndarray):
            raise TypeError(f"{name}[{i + 1}] must be an activation (Sigmoid, ReLu, ...), got an "
                            f"array; the model list must alternate weights and activations")
        check_theta(theta, f"{name}[{i}]")
        thetas.append(theta)
        acts.append(resolve_activation(act, f"{name}[{i + 1}]"))
    for l in range(1, len(thetas)):
        prev, cur = np.shape(thetas[l - 1]), np.shape(thetas[l])
        if cur[1] != prev[0] + 1:
            raise ValueError(f"{name}[{2 * l}] has shape {cur}: its {cur[1]} columns must be the "
                             f"previous layer's {prev[0]} outputs + 1 bias column")
    for l, act in enumerate(acts[:-1]):
        if act.name == "softmax":
            raise ValueError(f"{name}[{2 * l + 1}]: Softmax is only allowed as the output "
                             f"activation (last layer)")
    return thetas, acts


def check_input_width(X, thetas, name: str = "X", model_name: str = "model"):
    """Check that X's columns match the first weight matrix (L_in + 1 columns)."""
    n_in = np.shape(thetas[0])[1] - 1
    if X.shape[-1] != n_in:
        raise ValueError(f"{name} has {X.shape[-1]} features but {model_name}[0] has shape "
                         f"{np.shape(thetas[0])}, which expects {n_in} features (+1 bias column)")


class InvalidParameterError(ValueError, TypeError):
    """A hyper-parameter has a wrong type or value (scikit-learn's wording, raised for estimators)."""


def _range_text(lo, hi, lo_open=False, hi_open=False, open_inf=True):
    left = "(" if lo_open else "["
    right = ")" if hi_open or (hi is None and open_inf) else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def parameter_error(owner, name, expected, value):
    """The estimators' error for a bad hyper-parameter, in scikit-learn's wording."""
    return InvalidParameterError(f"The {name!r} parameter of {owner} must be {expected}. "
                                 f"Got {value!r} instead.")


def check_scalar(x, name: str, *, lo=None, hi=None, lo_open=False, hi_open=False,
                 allow_none=False, owner=None):
    """Check a real hyper-parameter against a range and return it as float.

    With ``owner`` (an estimator's class name) a bad value raises
    :class:`InvalidParameterError` in scikit-learn's wording ("The 'lr'
    parameter of MLPClassifier must be a float in the range (0, inf). Got -1
    instead."); without it, ``TypeError`` for a non-number and
    ``ValueError`` for a value out of range.
    """
    if x is None and allow_none:
        return None
    rng = _range_text(lo, hi, lo_open, hi_open)
    is_real = not isinstance(x, bool) and isinstance(x, numbers.Real)
    v = float(x) if is_real else None
    in_range = is_real and np.isfinite(v) and not (
        (lo is not None and (v <= lo if lo_open else v < lo)) or
        (hi is not None and (v >= hi if hi_open else v > hi)))
    if in_range:
        return v
    if owner is not None:
        raise parameter_error(owner, name, f"a float in the range {rng}"
                              + (" or None" if allow_none else ""), x)
    if not is_real:
        raise TypeError(f"{name} must be a real number, got {x!r}")
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {x!r}")
    raise ValueError(f"{name} must be in {_range_text(lo, hi, lo_open, hi_open, False)}, "
                     f"got {x!r}")


def check_int(x, name: str, *, lo=None, hi=None, allow_none=False, owner=None):
    """Check an integer hyper-parameter against an inclusive range (``owner``: as :func:`check_scalar`)."""
    if x is None and allow_none:
        return None
    is_int = not isinstance(x, bool) and isinstance(x, numbers.Integral)
    if is_int and (lo is None or x >= lo) and (hi is None or x <= hi):
        return int(x)
    if owner is not None:
        raise parameter_error(owner, name, f"an int in the range {_range_text(lo, hi)}"
                              + (" or None" if allow_none else ""), x)
    if not is_int:
        raise TypeError(f"{name} must be an integer, got {x!r}")
    raise ValueError(f"{name} must be an integer in [{'-inf' if lo is None else lo}, "
                     f"{'inf' if hi is None else hi}], got {x!r}")


def check_choice(x, name: str, choices, *, aliases=None, allow_none=False, owner=None):
    """Check that ``x`` is one of ``choices`` (strings compared case-insensitively).

    ``aliases`` maps other accepted names to a choice (``{'logistic': 'sigmoid'}``);
    ``owner``: as :func:`check_scalar`.
    """
    if x is None and allow_none:
        return None
    key = x.strip().lower() if isinstance(x, str) else x
    if aliases:
        try:
            key = aliases.get(key, key)
        except TypeError:  # unhashable
            pass
    try:
        ok = key in choices
    except TypeError:
        ok = False
    if ok:
        return key
    if owner is not None:
        shown = "{" + ", ".join(repr(c) for c in choices) + "}"
        raise parameter_error(owner, name, f"a str among {shown}"
                              + (" or None" if allow_none else ""), x)
    shown = ", ".join(repr(c) for c in choices)
    raise ValueError(f"{name} must be one of {shown}, got {x!r}")


def check_bool(x, name: str, *, owner=None):
    """Check a boolean flag (``True``/``False``, or the integers 0 and 1)."""
    if isinstance(x, (bool, np.bool_, numbers.Integral)) and x in (0, 1):
        return bool(x)
    if owner is not None:
        raise parameter_error(owner, name, "a bool", x)
    raise TypeError(f"{name} must be True or False, got {x!r}")


def check_random_state(seed, name: str = "random_state", *, owner=None):
    """scikit-learn's ``check_random_state``, and a numpy Generator as it is.

    None is numpy's global ``RandomState`` (the one ``np.random.seed`` seeds), an int
    ``RandomState(seed)``, a ``RandomState`` or ``Generator`` itself: the draws of
    scikit-learn's estimators, for the estimators that mirror them.
    """
    if isinstance(seed, (np.random.Generator, np.random.RandomState)):
        return seed
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and 0 <= seed < 2**32:
        return np.random.RandomState(int(seed))
    if owner is not None:
        raise parameter_error(owner, name, "an int in the range [0, 4294967295], a numpy "
                              "Generator or RandomState, or None", seed)
    raise ValueError(f"{name} must be None, a seed in [0, 2**32), a RandomState or a "
                     f"Generator, got {seed!r}")


def check_rng(rng, name: str = "rng", *, owner=None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed, a Generator, a RandomState or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.RandomState):
        return np.random.default_rng(rng.randint(0, 2**31 - 1))
    is_int = isinstance(rng, numbers.Integral) and not isinstance(rng, bool)
    if rng is None or (is_int and 0 <= rng < 2**32 if owner is not None else is_int and rng >= 0):
        return np.random.default_rng(rng)
    if owner is not None:
        raise parameter_error(owner, name, "an int in the range [0, 4294967295], a numpy "
                              "Generator or RandomState, or None", rng)
    if is_int:
        raise ValueError(f"{name} must be a non-negative seed, got {rng}")
    raise TypeError(f"{name} must be None, an int seed or a numpy.random.Generator, got {rng!r}")
