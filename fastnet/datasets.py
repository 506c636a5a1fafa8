"""Data: the MNIST IDX reader, the demo's digits and generated data sets.

Nothing here downloads anything.  The shared data directory is found through
the ``FASTNET_DATA`` environment variable (see :func:`data_dir`).
"""
import os
import struct

import numpy as np

from fastnet._files import read_bytes
from fastnet._validation import check_int, check_rng

__all__ = ["load_mnist", "data_dir", "make_digits", "load_demo_digits"]

_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049


def _read(path, name):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{name}: no such file {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{name}: {path!r} is a directory, not an IDX file")
    return read_bytes(path, f"{name}: the IDX file")   # damaged gzip: ValueError naming it


def load_mnist(images_path, labels_path, scale=False):
    """Read an MNIST pair of IDX files, gzipped or plain.

    Parameters
    ----------
    images_path : path
        ``*-images-idx3-ubyte[.gz]``: magic 2051, count, rows, cols, then uint8 pixels.
    labels_path : path
        ``*-labels-idx1-ubyte[.gz]``: magic 2049, count, then uint8 labels.
    scale : bool
        Return pixels as float32 divided by 255 instead of raw uint8.

    Returns
    -------
    X : ndarray (n, rows * cols)
        uint8 0-255 (or float32 in [0, 1] with ``scale=True``).
    y : ndarray (n,) int64
    """
    raw = _read(images_path, "images_path")
    # the magic number first: a small labels file given as images_path is "swapped", not "short"
    magic = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else None
    if magic is not None and magic != _IMAGES_MAGIC:
        raise ValueError(f"images_path: {images_path!r} has magic number {magic}, expected "
                         f"{_IMAGES_MAGIC} (an IDX images file); were the two paths swapped?")
    if len(raw) < 16:
        raise ValueError(f"images_path: {images_path!r} is too short for an IDX image header "
                         f"({len(raw)} bytes)")
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if len(raw) != 16 + n * rows * cols:
        raise ValueError(f"images_path: {images_path!r} holds {len(raw) - 16} pixel bytes, "
                         f"expected {n} x {rows} x {cols} = {n * rows * cols} (truncated file?)")
    X = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows * cols).copy()
    raw = _read(labels_path, "labels_path")
    if len(raw) < 8:
        raise ValueError(f"labels_path: {labels_path!r} is too short for an IDX label header")
    magic, n_lab = struct.unpack(">II", raw[:8])
    if magic != _LABELS_MAGIC:
        raise ValueError(f"labels_path: {labels_path!r} has magic number {magic}, expected "
                         f"{_LABELS_MAGIC} (an IDX labels file)")
    if len(raw) != 8 + n_lab:
        raise ValueError(f"labels_path: {labels_path!r} holds {len(raw) - 8} labels, its header "
                         f"says {n_lab} (truncated file?)")
    if n_lab != n:
        raise ValueError(f"images_path has {n} images but labels_path has {n_lab} labels")
    y = np.frombuffer(raw, dtype=np.uint8, offset=8).astype(np.int64)
    if scale:
        X = X.astype(np.float32) / np.float32(255)
    return X, y


def data_dir():
    """The shared data directory named by ``FASTNET_DATA``, or None when unset or missing."""
    path = os.environ.get("FASTNET_DATA")
    if path and os.path.isdir(path):
        return path
    return None


# 8x8 glyphs of the ten digits, drawn as seven-segment-like strokes.
_SEGMENTS = {  # segment -> list of (row, col) pixels on an 8x8 grid
    "a": [(1, c) for c in range(2, 6)],
    "b": [(r, 5) for r in range(1, 4)],
    "c": [(r, 5) for r in range(4, 7)],
    "d": [(6, c) for c in range(2, 6)],
    "e": [(r, 2) for r in range(4, 7)],
    "f": [(r, 2) for r in range(1, 4)],
    "g": [(3, c) for c in range(2, 6)] + [(4, c) for c in range(3, 5)],
}
_DIGIT_SEGMENTS = ["abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg",
                   "abcdfg"]


def make_digits(n_samples=2000, noise=0.25, rng=None):
    """Generated 8x8 digit images: seven-segment glyphs, randomly shifted, blurred and noisy.

    A learnable stand-in for real digits when nothing else is at hand.

    Returns
    -------
    X : ndarray (n_samples, 64) float64 in [0, 16] (the scale of scikit-learn's digits)
    y : ndarray (n_samples,) int64 labels 0-9
    """
    n_samples = check_int(n_samples, "n_samples", lo=1)
    gen = check_rng(rng)
    protos = np.zeros((10, 8, 8))
    for d, segs in enumerate(_DIGIT_SEGMENTS):
        for s in segs:
            for r, c in _SEGMENTS[s]:
                protos[d, r, c] = 1.0
    y = gen.integers(0, 10, size=n_samples)
    X = np.empty((n_samples, 8, 8))
    for i, d in enumerate(y):
        img = np.roll(protos[d], (gen.integers(-1, 2), gen.integers(-1, 2)), axis=(0, 1))
        img = 0.6 * img + 0.1 * (np.roll(img, 1, 0) + np.roll(img, -1, 0)
                                 + np.roll(img, 1, 1) + np.roll(img, -1, 1))
        img = img * gen.uniform(0.7, 1.0) + noise * gen.random((8, 8))
        X[i] = img
    X = np.clip(X, 0, None)
    X = 16 * X / X.max()
    return X.reshape(n_samples, 64), y.astype(np.int64)


def load_demo_digits(source="auto", rng=0):
    """Digits for the demo: ``(X_train, y_train, X_test, y_test, description)``, pixels in [0, 1].

    ``source='auto'`` takes scikit-learn's bundled 8x8 digits (1,797 real
    images) when scikit-learn is installed, else MNIST from ``FASTNET_DATA``
    (first 8,000 t10k images to train, last 2,000 to test), else generated
    digits.  ``'sklearn'``, ``'mnist'`` and ``'generated'`` force one.
    """
    if source not in ("auto", "sklearn", "mnist", "generated"):
        raise ValueError(f"source must be one of 'auto', 'sklearn', 'mnist', 'generated', "
                         f"got {source!r}")
    gen = check_rng(rng)
    if source in ("auto", "sklearn"):
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            if source == "sklearn":
                raise ImportError("source='sklearn' needs scikit-learn: pip install "
                                  "'fastnet[demo]'") from None
        else:
            d = load_digits()
            X, y = d.data / 16.0, d.target.astype(np.int64)
            idx = gen.permutation(len(y))
            cut = int(0.8 * len(y))
            tr, te = idx[:cut], idx[cut:]
            return (X[tr], y[tr], X[te], y[te],
                    f"scikit-learn's bundled 8x8 digits ({len(tr)} train / {len(te)} test)")
    if source in ("auto", "mnist"):
        root = data_dir()
        img = root and os.path.join(root, "mnist", "t10k-images-idx3-ubyte.gz")
        lab = root and os.path.join(root, "mnist", "t10k-labels-idx1-ubyte.gz")
        if img and os.path.exists(img) and os.path.exists(lab):
            X, y = load_mnist(img, lab, scale=True)
            X = X.astype(np.float64)
            return (X[:8000], y[:8000], X[8000:], y[8000:],
                    f"MNIST t10k from FASTNET_DATA={root} (8000 train / 2000 test)")
        if source == "mnist":
            raise FileNotFoundError("source='mnist' needs FASTNET_DATA pointing at a directory "
                                    "with mnist/t10k-images-idx3-ubyte.gz and "
                                    "mnist/t10k-labels-idx1-ubyte.gz")
    X, y = make_digits(2500, rng=gen)
    X = X / 16.0
    return (X[:2000], y[:2000], X[2000:], y[2000:],
            "digits generated by fastnet.datasets.make_digits (2000 train / 500 test; "
            "install scikit-learn for real digits)")
