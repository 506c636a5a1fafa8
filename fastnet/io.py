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
import zipfile

import numpy as np

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
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path!r}: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path!r}: it is a directory; give a file name "
                                f"such as {os.path.join(path, 'model.npz')!r}")
    base = os.path.basename(path)
    for attempt in range(100):
        tmp = os.path.join(directory, f".{base}.{os.getpid()}.{attempt}.tmp")
        try:  # created with the usual permissions (0666 & ~umask), unlike mkstemp's 0600
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - a hundred stale temporary files
        raise FileExistsError(f"cannot create a temporary file next to {path!r}")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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
    try:
        with np.load(path, allow_pickle=False) as z:
            files = list(z.files)
            if _META not in files:
                shown = ", ".join(files[:8]) + (", ..." if len(files) > 8 else "")
                raise ValueError(f"{path!r} is an .npz archive but not a fastnet model file: it "
                                 f"has no {_META!r} entry (its arrays: {shown}); fastnet.load "
                                 f"reads files written by fastnet.save or model.save")
            raw = z[_META]
            try:
                meta = json.loads(str(raw[()]))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path!r}: its {_META!r} metadata is not valid JSON "
                                 f"({exc}); the file is damaged") from None
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError(f"{path!r} is not a fastnet model file (its metadata does not "
                                 f"name the {_FORMAT!r} format)")
            version = meta.get("format_version")
            if not isinstance(version, int) or version < 1:
                raise ValueError(f"{path!r}: invalid format version {version!r}")
            if version > FORMAT_VERSION:
                raise ValueError(
                    f"{path!r} was written by fastnet {meta.get('fastnet_version', '?')} in model "
                    f"format version {version}; this fastnet ({__version__}) reads format "
                    f"versions up to {FORMAT_VERSION}: upgrade fastnet to load it")
            arrays = {k: z[k] for k in files if k != _META}
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path!r} is a damaged or truncated archive ({exc})") from None
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


def _load_model(path, meta, arrays):
    from fastnet.activations import ACTIVATIONS
    acts = meta.get("activations", [])
    model = []
    for l, name in enumerate(acts):
        key = f"theta_{l}"
        if key not in arrays or name not in ACTIVATIONS:
            raise ValueError(f"{os.fspath(path)!r}: layer {l} is missing or has an unknown "
                             f"activation {name!r}; the file is damaged")
        model += [arrays[key], ACTIVATIONS[name]]
    if not model:
        raise ValueError(f"{os.fspath(path)!r}: the model has no layer; the file is damaged")
    return model


def _load_estimator(path, meta, arrays):
    from fastnet.estimators import ESTIMATORS
    name = meta.get("class")
    if name not in ESTIMATORS:
        raise ValueError(f"{os.fspath(path)!r} holds an estimator of unknown class {name!r}; "
                         f"this fastnet knows {', '.join(ESTIMATORS)}")
    cls = ESTIMATORS[name]
    params = dict(meta.get("params", {}))
    for key in meta.get("tuple_params", []):  # JSON has lists only: give tuples back
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    valid = set(cls._get_param_names())
    est = cls(**{k: v for k, v in params.items() if k in valid})
    if meta.get("fitted"):
        state_arrays = {k[len("state."):]: v for k, v in arrays.items() if k.startswith("state.")}
        est._restore_state(meta.get("state", {}), state_arrays)
        if "feature_names_in" in state_arrays:
            est.feature_names_in_ = state_arrays["feature_names_in"].astype(object)
    return est
