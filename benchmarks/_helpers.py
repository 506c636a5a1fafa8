"""Helpers shared by the ``bench_*.py`` files (imported as ``from _helpers import ...``).

Kept out of ``conftest.py`` so that no module named ``conftest`` is imported
by name (``tests/conftest.py`` has that name too).
"""
import importlib
import os
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    env = os.environ.get("FASTNET_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load_mnist_split():
    """The course's MNIST split (the ``mnist`` fixture's data), or None without the files:
    the first 8,000 t10k images to train, the last 2,000 to test, pixels in [0, 1]."""
    import numpy as np
    import fastnet
    root = data_root()
    img = root / "mnist" / "t10k-images-idx3-ubyte.gz"
    lab = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    if not (img.exists() and lab.exists()):
        return None
    X, y = fastnet.load_mnist(img, lab)
    X = X.astype(np.float64) / 255.0
    y = np.asarray(y, dtype=np.int64)
    X64, y_tr = np.ascontiguousarray(X[:8000]), y[:8000]
    Y64 = np.zeros((8000, 10))
    Y64[np.arange(8000), y_tr] = 1.0
    order = np.random.default_rng(0).permutation(8000).astype(np.int64)
    return {
        "X64": X64, "Y64": Y64, "y": y_tr,
        "X32": X64.astype(np.float32), "Y32": Y64.astype(np.float32),
        "X_test": X[8000:], "y_test": y[8000:],
        "order": order,
    }


# ------------------------------------------------------------------------ peers
_PEER_MODULES = {"torch": "torch", "jax": "jax", "sklearn": "sklearn", "gensim": "gensim"}
PEER_NOTES = {}


def peer(name):
    """Import peer ``name`` ('torch', 'jax', 'sklearn', 'gensim') or skip with a note."""
    try:
        module = importlib.import_module(_PEER_MODULES.get(name, name))
    except Exception as exc:  # ImportError, or a broken install
        PEER_NOTES[name] = f"{name} not available ({type(exc).__name__}: {exc})"
        pytest.skip(f"peer {name!r} is not installed: install the benchmark extras "
                    f"(pip install fastnet[bench]) to compare with it")
    if name == "torch":
        module.set_num_threads(2)
    return module


# -------------------------------------------------------------------- backends
def fastnet_backends(kernel):
    """The available fastnet backends implementing ``kernel`` (others are not listed)."""
    import fastnet
    from fastnet import _backend
    names = []
    for name in fastnet.available_backends():
        try:
            K = _backend.backend_kernels(name)
        except Exception:  # pragma: no cover - a broken backend is skipped, not fatal
            continue
        if not getattr(getattr(K, kernel), "missing", False):
            names.append(name)
    return names


# ----------------------------------------------------------------------- timing
def run(benchmark, fn, *, setup=None, rounds=5, warmup=1, **extra_info):
    """Time ``fn()`` with pytest-benchmark after ``warmup`` untimed rounds.

    ``setup()`` (untimed) runs before every round, warm-up included.
    ``extra_info`` (e.g. ``flops=``, ``method=``) is stored in the JSON for
    :mod:`benchmarks.report`.
    """
    benchmark.extra_info.update(extra_info)
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()

    def _setup():
        if setup is not None:
            setup()
        return (), {}

    return benchmark.pedantic(fn, setup=_setup, rounds=rounds, iterations=1, warmup_rounds=0)


def settled_epoch(fn, setup=None):
    """Seconds of ``fn()`` run right after an untimed run (each preceded by ``setup()``): the
    timed run finds the state the first one settled (a measured thread mode, the caches)."""
    for timed in (False, True):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
    return time.perf_counter() - t
