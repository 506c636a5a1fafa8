"""Helpers shared by the ``bench_*.py`` files (imported as ``from _helpers import ...``).

Kept out of ``conftest.py`` so that no module named ``conftest`` is imported
by name (``tests/conftest.py`` has that name too).
"""
import importlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    env = os.environ.get("FASTNET_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


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
