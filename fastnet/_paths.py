"""Which algorithm a network kernel runs: the dense GEMM path or the zero-skipping row path.

Every compiled backend has two ways to train and evaluate a network:

``'dense'``
    whole mini-batches handed to BLAS (``sgemm``/``dgemm``) with fused
    epilogues, and register-blocked matrix-vector loops for online learning;
``'sparse'``
    per-sample row kernels that skip the exact zeros of the input (the
    course's raw MNIST pixels are about 80 % zeros).

:func:`choose` picks one from the input's measured density (a sample of its
rows) and the layer shapes; ``FASTNET_PATH=dense|sparse|auto`` or
:func:`use_path` override it (per thread and context, like
:func:`fastnet.use_backend`).  Both paths compute the same numbers up to the
order of floating-point sums, which the tests check.
"""
import contextvars
import os

import numpy as np

__all__ = ["PATHS", "LARGE_BATCH", "use_path", "get_path", "sample_density", "work_fraction",
           "choose"]

PATHS = ("auto", "dense", "sparse")

_chosen = contextvars.ContextVar("fastnet_path", default=None)

#: Rows of X looked at to estimate its density (evenly spaced).
DENSITY_SAMPLE_ROWS = 256

#: The sparse path is used when the *work fraction* it keeps (:func:`work_fraction`: the
#: sampled density of X weighted by layer 0's share of the multiply-adds; the deeper layers
#: are dense work on either path) is at most this, per backend and batch size (``None``:
#: never), for float32 data.  Measured on raw MNIST (density 0.19; work fraction 0.20 for
#: 784-50-10 and 784-128-10, 0.31 for 784-256-128-10), each backend's ``train_epoch`` on each
#: path, 2 cores, AVX2, no AVX-512 (sparse/dense time; ``benchmarks/path_choice.py``):
#:
#: * cython: batch 1 0.90, 1.05, 1.87; batch 32 0.82 to 0.91, 0.65 to 0.75, 0.74 to 0.78;
#:   batch 128 0.91 to 1.47, 1.06 to 1.08, 0.84 to 0.89 (three runs, 2026-12-02: its dense
#:   online kernel and batch-128 GEMMs on both cores are the faster ones from a fraction of
#:   0.2 up, but at batch 32, where the sparse path's deeper layers are GEMMs over the block
#:   too, the panels win even the deep net's 0.31; the limits below 0.2 are an estimate,
#:   for sparser inputs than MNIST's);
#: * numba: batch 1 0.55, 0.38, 0.45 (its dense matrix-vector loop is the slower one);
#:   batch 32 0.99, 0.78, 0.77; batch 128 1.29, 0.97, 1.08.  Batch 32 again once the dense
#:   path cut small batches' products in parts on both cores (Zen 4, AVX-512, 2026-12-02):
#:   1.45, 0.92, 1.30, so its limit there went from 0.35 to 0.15 (cython's dense path got
#:   the same change and measured 1.11, 0.65, 0.74: its limit stays).
#: * both, once the parts of a small batch went by rows of the weights in every product
#:   (Intel Xeon, AVX-512, 2 cores, 2026-12-03): cython batch 32 1.56, 1.36, 1.64, batch 64
#:   1.39, 1.47, 1.31, batch 128 1.55, 1.63, 1.12; numba 1.55 to 2.06 at all three.  The
#:   dense path wins raw MNIST at every mini-batch size: cython's limit at 32 went from 0.35
#:   to 0.15 (as numba's).
#:
#: The full batch's GEMMs, split over both cores, are as fast as the panels at 0.2 in
#: float32; batches of :data:`LARGE_BATCH` and more go to BLAS (see below).
SPARSE_MAX_DENSITY = {
    "cython": {1: 0.15, 32: 0.15, 128: 0.10, "large": None, "full": None},
    "numba": {1: 0.35, 32: 0.15, 128: 0.15, "large": None, "full": None},
}
#: ... for float64 data: dgemm runs at half sgemm's speed, so the panels win the full batch
#: too (the course's ``backprop`` on raw MNIST: 1.1x to 1.25x).
SPARSE_MAX_DENSITY_F64 = {1: 0.35, 32: 0.25, 128: 0.25, "large": None, "full": 0.25}
#: Batches of at least this many samples (below the full batch) are "large": scikit-learn's
#: default of 200 is one.  There both cores' BLAS beat the row kernels on raw MNIST (measured
#: through MLPClassifier, AVX2, 2 cores, float32: 784-50-10 1.8x, 784-100-10 1.1x,
#: 784-256-128-10 1.7x; float64 1.2x to 1.6x).
LARGE_BATCH = 160


def _check(name):
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in PATHS:
        raise ValueError(f"path must be one of {', '.join(map(repr, PATHS))}, got {name!r}")
    return key


def get_path() -> str:
    """The path asked for in this thread/context: ``use_path``, else ``FASTNET_PATH``, else 'auto'."""
    name = _chosen.get()
    if name is not None:
        return name
    env = os.environ.get("FASTNET_PATH", "").strip()
    if env:
        try:
            return _check(env)
        except ValueError as exc:
            raise ValueError(f"FASTNET_PATH: {exc}") from None
    return "auto"


class use_path:
    """Force the network kernels' path (``'dense'``, ``'sparse'``) or let them choose (``'auto'``).

    A plain call lasts until the next one in this thread/context; as a context
    manager it restores the previous choice on exit.
    """

    def __init__(self, name):
        self.name = _check(name)
        self._token = _chosen.set(self.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            _chosen.reset(self._token)
        except ValueError:  # exited in another context
            _chosen.set(None)
        return False

    def __repr__(self):
        return f"use_path({self.name!r})"


def sample_density(X) -> float:
    """Fraction of non-zero entries in up to :data:`DENSITY_SAMPLE_ROWS` evenly spaced rows of X."""
    m = X.shape[0]
    if m == 0 or X.size == 0:
        return 1.0
    if m > DENSITY_SAMPLE_ROWS:
        rows = X[np.linspace(0, m - 1, DENSITY_SAMPLE_ROWS).astype(np.int64)]
    else:
        rows = X
    return float(np.count_nonzero(rows)) / rows.size


def work_fraction(density, sizes) -> float:
    r"""The share of the dense path's multiply-adds the sparse path does on input of
    ``density``: only layer 0's products skip zeros,
    :math:`(d F_0 + \sum_{l>0} F_l) / \sum_l F_l` with :math:`F_l = (n_l + 1) n_{l+1}`."""
    sizes = [int(s) for s in sizes]
    work = [(a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])]
    total = sum(work)
    if total <= 0:
        return 1.0
    return (density * work[0] + (total - work[0])) / total


def choose(X, sizes, batch_size, backend="numba") -> str:
    """``'dense'`` or ``'sparse'`` for training/evaluating a network of widths ``sizes`` on X.

    ``batch_size`` is the samples per update (1: online; ``>= len(X)``: full batch;
    ``len(X)`` for a forward pass or a summed gradient); ``backend`` the compiled backend
    that will run it (``'cython'`` or ``'numba'``: their kernels win in different places).
    The sparse path is chosen when the :func:`work_fraction` of X's sampled density is at
    most the backend's limit in :data:`SPARSE_MAX_DENSITY` (float32) or
    :data:`SPARSE_MAX_DENSITY_F64` for the batch size (below 80: the limit of 32; below
    :data:`LARGE_BATCH`: that of 128; else that of ``'large'``).
    """
    if backend not in SPARSE_MAX_DENSITY:
        raise ValueError(f"backend must be one of {', '.join(map(repr, SPARSE_MAX_DENSITY))}, "
                         f"got {backend!r}")
    asked = get_path()
    if asked != "auto":
        return asked
    m = X.shape[0]
    key = 1 if batch_size == 1 else ("full" if batch_size >= m else (
        32 if batch_size < 80 else (128 if batch_size < LARGE_BATCH else "large")))
    table = SPARSE_MAX_DENSITY_F64 if X.dtype == np.float64 else SPARSE_MAX_DENSITY[backend]
    limit = table.get(key)
    if limit is None:
        return "dense"
    return "sparse" if work_fraction(sample_density(X), sizes) <= limit else "dense"
