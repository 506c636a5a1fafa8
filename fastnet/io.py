"""Saving and loading models: ``.npz`` files with metadata, no pickle, atomic writes.

:func:`save` writes a fitted estimator (:mod:`fastnet.estimators`; also
``model.save(path)``) or a course-style model list
``[Theta1, Sigmoid, Theta2, Sigmoid, ...]``; :func:`load` (also
``fastnet.load``) gives it back, predicting exactly what the saved one did
(weights are stored bit for bit, in their dtype).

The file is an ordinary numpy ``.npz`` archive: one array per weight
matrix (or the flat parameter vector of an estimator) and an entry
``__fastnet__`` holding JSON metadata: the format's name and version,
fastnet's version, the kind of object, layer sizes, activations, dtype, an
estimator's parameters and fitted state, and any user ``metadata``.  It is
written with ``allow_pickle=False`` and read the same way, so loading a
file never runs code.  Writing goes to a temporary file in the target's
directory, then ``os.replace`` puts it in place: an interrupted save never
leaves a half-written model behind.
"""
from __future__ import annotations

import json
import numbers
import os

import numpy as np

from fastnet._files import atomic_write, read_npz
from fastnet._version import __version__

__all__ = ["save", "load", "read_metadata", "FORMAT_VERSION"]

#: Version of the file layout written by this fastnet; files of a newer version are refused.
FORMAT_VERSION = 1
_FORMAT = "fastnet"
_META = "__fastnet__"


# ------------------------------------------------------------------------------ JSON helpers
def _jsonable(value, where):
    """``value`` as plain JSON types (tuples become lists, numpy scalars Python numbers)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value.tolist()
    raise TypeError(f"{where}: cannot save {value!r} ({type(value).__name__}) without pickle; "
                    f"expected numbers, strings, lists or dicts")


def _label_array(arr, name):
    """An array of labels storable without pickle (object arrays of str or int converted)."""
    arr = np.asarray(arr)
    if arr.dtype.kind != "O":
        return arr
    items = arr.tolist()
    if all(isinstance(v, str) for v in items):
        return np.array(items, dtype=str)
    if all(isinstance(v, (bool, np.bool_)) for v in items):
        return np.array(items, dtype=bool)
    if all(isinstance(v, numbers.Integral) for v in items):
        return np.array(items, dtype=np.int64)
    if all(isinstance(v, numbers.Real) for v in items):
        return np.array(items, dtype=np.float64)
    raise TypeError(f"{name} holds labels of mixed or unsupported types "
                    f"({sorted({type(v).__name__ for v in items})}); they cannot be saved "
                    f"without pickle: use labels of one type (all str or all int)")


# --------------------------------------------------------------------------- what to write
def _describe_model(model):
    from fastnet._validation import check_model
    thetas, acts = check_model(model)
    for l, a in enumerate(acts):
        if a.name is None:  # a user-defined activation: its code cannot be saved without pickle
            raise TypeError(f"model[{2 * l + 1}] is a user-defined activation "
                            f"({getattr(a, 'label', a)}); fastnet.save stores fastnet's built-in "
                            f"activations only (files hold no code): save the Thetas yourself")
    arrays = {}
    for l, theta in enumerate(thetas):
        t = np.asarray(theta)
        if t.dtype not in (np.float32, np.float64):
            t = t.astype(np.float64)
        arrays[f"theta_{l}"] = np.ascontiguousarray(t)
    sizes = [int(np.shape(thetas[0])[1] - 1)] + [int(np.shape(t)[0]) for t in thetas]
    meta = {"kind": "model", "layer_sizes": sizes, "activations": [a.name for a in acts],
            "dtype": arrays["theta_0"].dtype.name}
    return meta, arrays


def _describe_estimator(est):
    params = est.get_params(deep=False)
    saved = {}
    for key, value in params.items():
        if key == "random_state" and not (value is None or isinstance(value, numbers.Integral)):
            value = None  # a generator's state is not part of the model
        saved[key] = _jsonable(value, f"parameter {key!r} of {type(est).__name__}")
    meta = {"kind": "estimator", "class": type(est).__name__, "params": saved,
            "tuple_params": sorted(k for k, v in params.items() if isinstance(v, tuple)),
            "fitted": bool(est.__sklearn_is_fitted__())}
    arrays = {}
    if meta["fitted"]:
        state, state_arrays = est._fitted_state()
        meta["state"] = _jsonable(state, f"fitted state of {type(est).__name__}")
        for key, value in state_arrays.items():
            arrays[f"state.{key}"] = _label_array(value, f"{type(est).__name__}.{key}") \
                if key == "classes" else np.ascontiguousarray(value)
        names = getattr(est, "feature_names_in_", None)
        if names is not None:
            arrays["state.feature_names_in"] = _label_array(names, "feature_names_in_")
        if hasattr(est, "layer_sizes_"):
            meta["layer_sizes"] = list(est.layer_sizes_)
            meta["activations"] = list(est.activations_)
        dtype = est._dtype()
        meta["dtype"] = np.dtype(dtype).name
    return meta, arrays


def _describe(obj):
    from fastnet.estimators import ESTIMATORS
    from fastnet.sequential import Sequential
    if isinstance(obj, Sequential):
        return obj._save_state()
    if type(obj).__name__ in ESTIMATORS and isinstance(obj, ESTIMATORS[type(obj).__name__]):
        return _describe_estimator(obj)
    if isinstance(obj, (list, tuple)):
        return _describe_model(obj)
    raise TypeError(f"fastnet.save can save fastnet's estimators ({', '.join(ESTIMATORS)}) and "
                    f"course-style model lists [Theta1, Sigmoid, ...], got "
                    f"{type(obj).__name__}")


# ----------------------------------------------------------------------------------- save
def save(obj, path, *, metadata=None):
    """Save a fitted estimator or a model list to ``path`` (an ``.npz`` archive, no pickle).

    Parameters
    ----------
    obj : estimator or list
        One of fastnet's estimators (fitted or not), or a course-style model
        list ``[Theta1, Sigmoid, Theta2, Sigmoid, ...]``.
    path : str or os.PathLike
        Destination, written exactly as given (no extension is added).  The
        file is written to a temporary name in the same directory and then
        renamed over ``path``, so ``path`` is never left half-written.
    metadata : dict, optional
        JSON-serialisable information to store alongside
        (:func:`read_metadata` returns it under ``'metadata'``).

    Raises
    ------
    TypeError
        ``obj`` is not something fastnet saves, or holds values that cannot
        be stored without pickle.
    FileNotFoundError
        The directory of ``path`` does not exist.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    meta, arrays = _describe(obj)
    meta = {"format": _FORMAT, "format_version": FORMAT_VERSION, "fastnet_version": __version__,
            **meta}
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
        meta["metadata"] = _jsonable(metadata, "metadata")
    arrays[_META] = np.array(json.dumps(meta))
    _atomic_savez(path, arrays)


def _atomic_savez(path, arrays):
    with atomic_write(path) as fh:
        np.savez(fh, allow_pickle=False, **arrays)


# ----------------------------------------------------------------------------------- load
def _open(path):
    """The metadata and arrays of a fastnet file, with clear errors for anything else."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a directory, not a fastnet model file")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head.startswith(b"PK\x03\x04"):
        if not head:
            what = "an empty file"
        elif head.startswith(b"\x93NUMPY"):
            what = "a single .npy array"
        elif head.startswith(b"\x1f\x8b"):
            what = "a gzip file"
        else:
            what = "a file of another kind"
        raise ValueError(f"{path!r} is not a fastnet model file: it is {what}, expected an .npz "
                         f"archive written by fastnet.save or model.save")
    arrays = read_npz(path, "fastnet model file")
    if _META not in arrays:
        files = sorted(arrays)
        shown = ", ".join(files[:8]) + (", ..." if len(files) > 8 else "")
        raise ValueError(f"{path!r} is an .npz archive but not a fastnet model file: it "
                         f"has no {_META!r} entry (its arrays: {shown}); fastnet.load "
                         f"reads files written by fastnet.save or model.save")
    raw = arrays.pop(_META)
    try:
        if raw.ndim != 0 or raw.dtype.kind != "U":
            raise ValueError(f"a {raw.dtype} array of shape {raw.shape}, not a string")
        meta = json.loads(str(raw[()]))
    except ValueError as exc:
        raise ValueError(f"{path!r}: its {_META!r} metadata is not valid JSON "
                         f"({exc}); the file is damaged") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(f"{path!r} is not a fastnet model file (its metadata does not "
                         f"name the {_FORMAT!r} format)")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{path!r}: invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written by fastnet {meta.get('fastnet_version', '?')} in model "
            f"format version {version}; this fastnet ({__version__}) reads format "
            f"versions up to {FORMAT_VERSION}: upgrade fastnet to load it")
    return meta, arrays


def read_metadata(path) -> dict:
    """The JSON metadata of a fastnet file (format, versions, kind, layer sizes, ...).

    User metadata given to :func:`save` is under ``'metadata'``.
    """
    return _open(path)[0]


def load(path):
    """Load a model written by :func:`save` (or ``model.save``).

    Returns
    -------
    estimator or list
        The estimator, fitted as it was saved, or the model list
        ``[Theta1, Sigmoid, ...]`` with fastnet's activation classes.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not a fastnet model file (another kind of file, an
        ``.npz`` without fastnet's metadata, a damaged archive), or was
        written in a newer format version than this fastnet reads.
    """
    meta, arrays = _open(path)
    kind = meta.get("kind")
    if kind == "model":
        return _load_model(path, meta, arrays)
    if kind == "estimator":
        return _load_estimator(path, meta, arrays)
    if kind == "sequential":
        from fastnet.sequential import Sequential
        return Sequential._from_saved(meta, arrays)
    raise ValueError(f"{os.fspath(path)!r} holds a fastnet object of unknown kind {kind!r}; "
                     f"a newer fastnet may read it")


def _damaged(path, what):
    """The ValueError of a file fastnet.load refuses: it names the file and what is wrong."""
    return ValueError(f"{os.fspath(path)!r} is a damaged or inconsistent fastnet model file: "
                      f"{what}")


def _is_int(x, lo=0):
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= lo


def _float_array(path, name, arr, ndim, dtype=None):
    if arr is None:
        raise _damaged(path, f"{name} is missing")
    if arr.dtype not in (np.float32, np.float64) or arr.ndim != ndim:
        raise _damaged(path, f"{name} is a {arr.ndim}-D {arr.dtype} array, expected a {ndim}-D "
                             f"float32 or float64 array")
    if dtype is not None and arr.dtype != dtype:
        raise _damaged(path, f"{name} is {arr.dtype}, but the model's dtype is {dtype}")
    if not np.isfinite(arr).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise _damaged(path, f"{name} holds {arr[where]} at index {where}; weights must be "
                             f"finite")
    return arr


def _load_model(path, meta, arrays):
    """The model list of a ``kind: model`` file, after checking it is consistent: one finite
    float weight matrix per activation, chained shapes matching ``layer_sizes``."""
    from fastnet.activations import ACTIVATIONS
    from fastnet._validation import check_model
    acts = meta.get("activations")
    if not isinstance(acts, list) or not acts:
        raise _damaged(path, "the model has no layer (no list of activations)")
    expected = {f"theta_{l}" for l in range(len(acts))}
    if set(arrays) != expected:
        odd = sorted(set(arrays) ^ expected)
        raise _damaged(path, f"its arrays ({', '.join(sorted(arrays)) or 'none'}) do not match "
                             f"its {len(acts)} layers (unexpected or missing: {', '.join(odd)})")
    dtype = meta.get("dtype")
    model = []
    for l, name in enumerate(acts):
        if not isinstance(name, str) or name not in ACTIVATIONS:
            raise _damaged(path, f"layer {l} has the unknown activation {name!r} (known: "
                                 f"{', '.join(ACTIVATIONS)})")
        theta = _float_array(path, f"theta_{l}", arrays[f"theta_{l}"], 2,
                             arrays["theta_0"].dtype)
        model += [theta, ACTIVATIONS[name]]
    if dtype is not None and dtype != arrays["theta_0"].dtype.name:
        raise _damaged(path, f"its dtype is {dtype!r} but the weights are "
                             f"{arrays['theta_0'].dtype.name}")
    try:
        thetas, _ = check_model(model)
    except (TypeError, ValueError) as exc:
        raise _damaged(path, str(exc)) from None
    sizes = [int(thetas[0].shape[1] - 1)] + [int(t.shape[0]) for t in thetas]
    if "layer_sizes" in meta and meta["layer_sizes"] != sizes:
        raise _damaged(path, f"layer_sizes {meta['layer_sizes']!r} differ from the weights' "
                             f"{sizes}")
    return model


def _check_classes(path, classes, expected=None):
    if classes is None or classes.ndim != 1 or classes.shape[0] < 2 or classes.dtype.kind \
            not in "biufU":
        raise _damaged(path, "classes must be a 1-D array of at least 2 labels, got "
                             + ("nothing" if classes is None else
                                f"a {classes.dtype} array of shape {classes.shape}"))
    if not (classes[1:] > classes[:-1]).all():
        raise _damaged(path, "classes are not sorted and distinct")
    return int(classes.shape[0])


def _check_network_state(path, cls, meta, state, arrays):
    from fastnet._backend import ACTIVATION_CODES, LOSS_CODES
    from fastnet._params import n_params
    sizes = state.get("layer_sizes")
    if not isinstance(sizes, list) or len(sizes) < 2 or not all(_is_int(n, 1) for n in sizes):
        raise _damaged(path, f"layer_sizes {sizes!r} must be a list of at least 2 widths >= 1")
    acts = state.get("activations")
    if not isinstance(acts, list) or len(acts) != len(sizes) - 1 or \
            not all(isinstance(a, str) and a in ACTIVATION_CODES for a in acts):
        raise _damaged(path, f"activations {acts!r} must name one activation of "
                             f"{sorted(ACTIVATION_CODES)} per layer ({len(sizes) - 1})")
    if "softmax" in acts[:-1]:
        raise _damaged(path, "softmax is allowed as the last activation only")
    loss = state.get("loss_function")
    if not isinstance(loss, str) or loss not in LOSS_CODES:
        raise _damaged(path, f"unknown loss_function {state.get('loss_function')!r}")
    for key in ("n_iter", "t", "opt_steps"):
        if key in state and not _is_int(state[key]):
            raise _damaged(path, f"{key} {state[key]!r} is not a count")
    if "n_iter" not in state:
        raise _damaged(path, "n_iter is missing")
    if state.get("n_features_in") != sizes[0] or state.get("n_outputs") != sizes[-1]:
        raise _damaged(path, f"n_features_in {state.get('n_features_in')!r} / n_outputs "
                             f"{state.get('n_outputs')!r} differ from layer_sizes {sizes}")
    if meta.get("layer_sizes", sizes) != sizes or meta.get("activations", acts) != acts:
        raise _damaged(path, "the layer sizes or activations differ between the metadata and "
                             "the fitted state")
    params = _float_array(path, "params", arrays.get("params"), 1)
    P = n_params(sizes)
    if params.shape[0] != P:
        raise _damaged(path, f"params has {params.shape[0]} entries, but layer_sizes {sizes} "
                             f"need {P}")
    if "opt_state" in arrays:
        opt = _float_array(path, "opt_state", arrays["opt_state"], 1, params.dtype)
        if opt.shape[0] != 2 * P:
            raise _damaged(path, f"opt_state has {opt.shape[0]} entries, expected 2 x {P}")
    if getattr(cls, "_estimator_type", None) == "classifier":
        K = _check_classes(path, arrays.get("classes"))
        n_out = 1 if (K == 2 and acts[-1] == "sigmoid") else K
        if sizes[-1] != n_out:
            raise _damaged(path, f"it has {K} classes but {sizes[-1]} output units (expected "
                                 f"{n_out} with a {acts[-1]} output)")
    return params.dtype


def _check_flat_params(path, arrays):
    """The dtype of a flat ``params`` vector (and its optimiser state), after checking both
    are finite 1-D float arrays."""
    params = _float_array(path, "params", arrays["params"], 1)
    if "opt_state" in arrays:
        _float_array(path, "opt_state", arrays["opt_state"], 1, params.dtype)
    return params.dtype


def _check_perceptron_state(path, state, arrays):
    K = _check_classes(path, arrays.get("classes"))
    n_in = state.get("n_features_in")
    if not _is_int(n_in, 1) or not _is_int(state.get("n_iter")):
        raise _damaged(path, "n_features_in / n_iter are missing or not counts")
    W = _float_array(path, "W", arrays.get("W"), 2)
    units = 1 if K == 2 else K
    if W.shape != (units, n_in + 1):
        raise _damaged(path, f"W has shape {W.shape}, expected ({units}, {n_in + 1}) for {K} "
                             f"classes and {n_in} features")
    return W.dtype


#: History entries that training appends to (lists of numbers); the others are numbers
_HISTORY_LISTS = ("J", "seconds", "train_acc", "val_J", "val_acc", "errors", "bits", "test_acc",
                  "val_loss", "val_bits")


def _check_history(path, history, est):
    """The fitted ``history_``: lists where training appends, numbers elsewhere."""
    from fastnet.estimators import Perceptron

    def number(v):
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    ok = isinstance(history, dict)
    if ok:
        required = ["errors"] if isinstance(est, Perceptron) else ["J", "seconds"]
        if getattr(est, "_estimator_type", None) == "classifier" and \
                getattr(est, "track_accuracy", False) is True:
            required.append("train_acc")             # partial_fit appends to it
        ok = all(k in history for k in required) and all(
            (isinstance(v, list) and all(map(number, v))) if k in _HISTORY_LISTS or
            isinstance(v, list) else (v is None or isinstance(v, (bool, numbers.Real)))
            for k, v in history.items())
    if not ok:
        raise _damaged(path, "its training history is not the mapping training keeps (lists "
                             "of numbers for J, seconds, ...; numbers for the others)")


def _load_estimator(path, meta, arrays):
    """The estimator of a ``kind: estimator`` file, after checking its fitted state against its
    layout (sizes, counts, classes, finite weights) before anything reaches a kernel."""
    from fastnet.estimators import ESTIMATORS, Perceptron
    name = meta.get("class")
    if not isinstance(name, str) or name not in ESTIMATORS:
        raise ValueError(f"{os.fspath(path)!r} holds an estimator of unknown class {name!r}; "
                         f"this fastnet knows {', '.join(ESTIMATORS)}")
    cls = ESTIMATORS[name]
    params = meta.get("params", {})
    tuple_params = meta.get("tuple_params", [])
    if not isinstance(params, dict) or not isinstance(tuple_params, list):
        raise _damaged(path, "its parameters are not a mapping")
    params = dict(params)
    for key in tuple_params:  # JSON has lists only: give tuples back
        if isinstance(key, str) and isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    valid = set(cls._get_param_names())
    try:
        est = cls(**{k: v for k, v in params.items() if k in valid})
    except (TypeError, ValueError) as exc:
        raise _damaged(path, f"invalid parameters ({exc})") from None
    if meta.get("fitted"):
        state = meta.get("state")
        if not isinstance(state, dict):
            raise _damaged(path, "its fitted state is missing")
        state_arrays = {k[len("state."):]: v for k, v in arrays.items() if k.startswith("state.")}
        if cls is Perceptron:
            dtype = _check_perceptron_state(path, state, state_arrays)
        elif "params" in state_arrays and "layer_sizes" not in state:
            # a layer-program or recurrent estimator: its own _restore_state checks the layout
            dtype = _check_flat_params(path, state_arrays)
        else:
            dtype = _check_network_state(path, cls, meta, state, state_arrays)
        if meta.get("dtype", dtype.name) != dtype.name:
            raise _damaged(path, f"its dtype is {meta.get('dtype')!r} but the weights are "
                                 f"{dtype.name}")
        _check_history(path, state.get("history"), est)
        names = state_arrays.get("feature_names_in")
        if names is not None and (names.ndim != 1 or names.shape[0] != state["n_features_in"]):
            raise _damaged(path, f"feature_names_in has shape {names.shape}, expected "
                                 f"({state['n_features_in']},)")
        try:
            est._restore_state(state, state_arrays)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise _damaged(path, f"its fitted state cannot be restored ({type(exc).__name__}: "
                                 f"{exc})") from None
        if names is not None:
            est.feature_names_in_ = names.astype(object)
    return est
