"""The no-pickle native format of word vectors and word2vec models (npz arrays + JSON metadata).

:func:`save_npz` writes atomically (:func:`fastnet._files.atomic_write`, the
user's umask); :func:`load_npz` reads with :func:`fastnet._files.read_npz`
and checks, before anything is built from it, that the file is one this
fastnet wrote and is consistent: the format and its version, the class, the
vocabulary (a list of distinct str), the arrays' shapes against it, finite
vectors, word counts and subsampling thresholds of the right type and length,
and (for a model) its parameters and counters.  Whatever is wrong raises a
``ValueError`` naming the file and the problem.
"""
from __future__ import annotations

import json
import numbers
import os

import numpy as np

from fastnet._files import atomic_write, read_npz

__all__ = ["FORMAT", "FORMAT_VERSION", "atomic_write", "save_npz", "load_npz"]

FORMAT = "fastnet.word2vec"
#: Version of the layout written; files of another version are refused.
FORMAT_VERSION = 1


def save_npz(path, meta, arrays):
    """``np.savez`` of ``arrays`` plus ``meta`` as a JSON string, atomically."""
    payload = dict(arrays)
    payload["__meta__"] = np.array(json.dumps(meta))
    with atomic_write(path) as fh:
        np.savez(fh, allow_pickle=False, **payload)


def _fail(path, what):
    raise ValueError(f"{path!r} is a damaged or unsupported fastnet word2vec file: {what}")


def _is_int(x, lo=None):
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and (lo is None or x >= lo)


def _is_real(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def load_npz(path, expected_class):
    """Read and check a file written by :func:`save_npz`; returns ``(meta, arrays)``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a fastnet word2vec file, another version or class, or
        inconsistent (see the module docstring); the message names the file.
    """
    path = os.fspath(path)
    arrays = read_npz(path, "fastnet word2vec file (files in the word2vec C format are read "
                            "with KeyedVectors.load_word2vec_format)")
    raw = arrays.pop("__meta__", None)
    if raw is None:
        raise ValueError(f"{path!r} is not a fastnet word2vec file (no metadata); files in the "
                         f"word2vec C format are read with KeyedVectors.load_word2vec_format")
    if raw.ndim != 0 or raw.dtype.kind != "U":
        _fail(path, f"its metadata is a {raw.dtype} array of shape {raw.shape}, not a string")
    try:
        meta = json.loads(str(raw[()]))
    except ValueError as exc:
        _fail(path, f"its metadata is not valid JSON ({exc})")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a fastnet word2vec file")
    version = meta.get("version")
    if not _is_int(version, 1):
        _fail(path, f"invalid format version {version!r}")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path!r} is in fastnet word2vec format version {version}; this "
                         f"fastnet reads version {FORMAT_VERSION}"
                         + (": upgrade fastnet to load it" if version > FORMAT_VERSION else ""))
    if meta.get("class") != expected_class:
        raise ValueError(f"{path!r} holds a {meta.get('class')}, not a {expected_class}")
    _check_vectors(path, meta, arrays)
    if expected_class == "Word2Vec":
        _check_model(path, meta, arrays)
    return meta, arrays


def _check_vectors(path, meta, arrays, prefix=""):
    keys = meta.get("index_to_key")
    d = meta.get("vector_size")
    if not _is_int(d, 1):
        _fail(path, f"vector_size {d!r} is not a positive integer")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        _fail(path, "index_to_key is not a list of str")
    if len(set(keys)) != len(keys):
        _fail(path, "index_to_key holds the same word twice")
    V = len(keys)
    vectors = arrays.get(prefix + "vectors")
    if vectors is None:
        _fail(path, "the vectors are missing")
    if vectors.dtype.kind != "f" or vectors.shape != (V, d):
        _fail(path, f"the vectors are a {vectors.dtype} array of shape {vectors.shape}, expected "
                    f"floats of shape ({V}, {d}) (the vocabulary x vector_size)")
    _finite(path, "vectors", vectors, keys)
    for name, arr in arrays.items():
        if not name.startswith(prefix + "expando_"):
            continue
        attr = name[len(prefix) + 8:]
        if arr.ndim != 1 or arr.shape[0] != V or arr.dtype.kind not in "biuf":
            _fail(path, f"per-word attribute {attr!r} is a {arr.dtype} array of shape "
                        f"{arr.shape}, expected numbers of shape ({V},)")
    counts = arrays.get(prefix + "expando_count")
    if counts is not None:
        if counts.dtype.kind not in "iu":
            _fail(path, f"the word counts are {counts.dtype}, not integers")
        if V and counts.min() < 0:
            i = int(np.argmin(counts))
            _fail(path, f"word {keys[i]!r} has the negative count {int(counts[i])}")
    sample_int = arrays.get(prefix + "expando_sample_int")
    if sample_int is not None and sample_int.dtype != np.uint32:
        _fail(path, f"the subsampling thresholds are {sample_int.dtype}, not uint32")


def _finite(path, name, arr, keys):
    if not np.isfinite(arr).all():
        row = int(np.argwhere(~np.isfinite(arr))[0][0])
        _fail(path, f"{name} holds NaN or inf (row {row}, word {keys[row]!r})")


_STATE_TYPES = {"corpus_count": "count", "corpus_total_words": "count", "train_count": "count",
                "epochs_trained": "count", "effective_min_count": "count",
                "total_train_time": "real", "running_training_loss": "real",
                "epoch_losses": "reals"}


def _check_model(path, meta, arrays):
    from fastnet.word2vec.model import _PARAMS
    keys = meta["index_to_key"]
    V, d = len(keys), meta["vector_size"]
    syn1neg = arrays.get("syn1neg")
    if syn1neg is None:
        _fail(path, "syn1neg is missing")
    if syn1neg.shape != (V, d) or syn1neg.dtype.kind != "f":
        _fail(path, f"syn1neg is a {syn1neg.dtype} array of shape {syn1neg.shape}, expected "
                    f"floats of shape ({V}, {d})")
    _finite(path, "syn1neg", syn1neg, keys)
    counts = arrays.get("expando_count")
    if counts is None:
        _fail(path, "the word counts are missing")
    params = meta.get("params")
    if not isinstance(params, dict):
        _fail(path, "its parameters are missing")
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        _fail(path, f"unknown parameter(s) {', '.join(map(repr, unknown))}")
    if params.get("vector_size") != d:
        _fail(path, f"vector_size {params.get('vector_size')!r} in the parameters differs from "
                    f"the vectors' {d}")
    state = meta.get("state", {})
    if not isinstance(state, dict):
        _fail(path, "its training state is not a mapping")
    for key, value in state.items():
        kind = _STATE_TYPES.get(key)
        ok = (kind == "count" and _is_int(value, 0)) or \
             (kind == "real" and _is_real(value)) or \
             (kind == "reals" and isinstance(value, list) and all(map(_is_real, value)))
        if not ok:
            _fail(path, f"training state {key!r} = {value!r} is "
                        + ("unknown" if kind is None else f"not a valid {kind}"))
    stats = meta.get("training_stats", [])
    if not isinstance(stats, list) or not all(isinstance(s, dict) for s in stats):
        _fail(path, "training_stats is not a list of mappings")
