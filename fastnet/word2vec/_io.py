"""Atomic writes and the no-pickle native format (npz arrays + JSON metadata)."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile

import numpy as np

FORMAT = "fastnet.word2vec"
FORMAT_VERSION = 1


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Write ``path`` through a temporary file in the same directory, renamed on success.

    A crash (or an exception in the ``with`` block) leaves any previous file
    at ``path`` untouched and no half-written file behind.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path!r}: directory {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_npz(path, meta, arrays):
    """``np.savez`` of ``arrays`` plus ``meta`` as a JSON string, atomically."""
    payload = dict(arrays)
    payload["__meta__"] = np.array(json.dumps(meta))
    with atomic_write(path) as fh:
        np.savez(fh, **payload)


def load_npz(path, expected_class):
    """Read a file written by :func:`save_npz`; returns ``(meta, arrays)``."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "__meta__" not in data.files:
                raise ValueError(f"{path!r} is not a fastnet word2vec file (no metadata)")
            meta = json.loads(str(data["__meta__"]))
            arrays = {k: data[k] for k in data.files if k != "__meta__"}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        if isinstance(exc, ValueError) and "fastnet" in str(exc):
            raise
        raise ValueError(f"{path!r} is not a readable fastnet word2vec file ({exc}); "
                         f"files in the word2vec C format are read with "
                         f"KeyedVectors.load_word2vec_format") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a fastnet word2vec file")
    if meta.get("class") != expected_class:
        raise ValueError(f"{path!r} holds a {meta.get('class')}, not a {expected_class}")
    return meta, arrays
