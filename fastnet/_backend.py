"""The one dispatch point: kernel name -> implementation of the active backend.

Three backends implement the same kernel contract (same names, same
signatures, same in-place conventions):

``reference``
    numpy, written for reading (:mod:`fastnet.reference.kernels`); the oracle.
``numba``
    ``@njit`` kernels (:mod:`fastnet._numba.kernels`), compiled on first use
    (or loaded from Numba's on-disk cache).
``cython``
    extension modules built by ``setup.py`` from ``src_cython/``
    (:mod:`fastnet._cython.backend`).

Each backend module defines a dict ``KERNELS`` mapping kernel names to
callables; it is imported the first time the backend is used, never at
``import fastnet`` (so importing fastnet compiles nothing).

The active backend is chosen by :func:`use_backend`, else by the
``FASTNET_BACKEND`` environment variable, else it is the first available
one.  The choice of :func:`use_backend` is per thread and per context (a
:class:`contextvars.ContextVar`): a thread or an ``asyncio`` task that
chooses a backend does not change another one's.  A new thread starts with
the process-wide default.  Asking for a backend that is not available raises
:class:`BackendUnavailableError` saying why and how to get it: nothing falls
back silently.
"""
from __future__ import annotations

import contextvars
import importlib
import importlib.util
import os
import threading
from types import SimpleNamespace

from fastnet import _codes

__all__ = [
    "BACKENDS",
    "KERNEL_NAMES",
    "BackendUnavailableError",
    "available_backends",
    "get_backend",
    "use_backend",
    "kernels",
    "backend_kernels",
]

#: Every backend's name, in no particular order of preference.
BACKENDS = ("reference", "numba", "cython")

#: Preference when nothing is asked for.  The ahead-of-time compiled cython backend comes
#: first: its first use compiles nothing (numba's first use in a fresh environment compiled for
#: 9-14 s of CPU before a first fit), and on the benchmark matrix (BENCHMARKS.md) it was within
#: 1.25x of numba on 21 and 18 of 24 cells in two runs, and faster on about a third of them.  numba is the default where the
#: extension was not built, and one ``use_backend('numba')`` / ``FASTNET_BACKEND=numba`` away.
_DEFAULT_ORDER = ("cython", "numba", "reference")

_MODULES = {
    "reference": "fastnet.reference.kernels",
    "numba": "fastnet._numba.kernels",
    "cython": "fastnet._cython.backend",
}

#: The kernel contract of the networks and linear models.  See
#: :mod:`fastnet.reference.kernels` for the signature and meaning of each.
NETWORK_KERNELS = (
    # elementwise
    "activation",
    "activation_grad",
    "loss",
    # penalties and optimisers on the flat parameter vector
    "penalty_value",
    "penalty_grad",
    "optimizer_step",
    # networks
    "forward_network",
    "backprop_samples",
    "backprop_batch",
    "train_epoch",
    "train_epochs",
    # linear models
    "linear_gd",
    "perceptron_train",
)

#: The word2vec kernels (see :mod:`fastnet.reference.word2vec_kernels`).
WORD2VEC_KERNELS = ("w2v_sg_batch", "w2v_cbow_batch")

#: The convolution, pooling and layer-program kernels (see :mod:`fastnet.reference.conv`).
CONV_KERNELS = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weights",
                "pool2d_forward", "pool2d_backward", "sequential_forward", "sequential_backprop",
                "sequential_train_epoch", "sequential_penalty_value")

#: The recurrent kernels, RNN and LSTM (see :mod:`fastnet.reference.rnn`).
RNN_KERNELS = ("rnn_forward", "rnn_backward", "clip_grad_norm", "rnn_seq_epoch", "rnn_lm_epoch")

#: Every kernel a complete backend implements.
KERNEL_NAMES = NETWORK_KERNELS + WORD2VEC_KERNELS + CONV_KERNELS + RNN_KERNELS

# The codes of the kernels' choices, as name -> int dicts (the API's names; the enums of
# fastnet._codes are the one definition).
ACTIVATION_CODES = {n: int(c) for n, c in _codes.NAMES[_codes.Act].items()
                    if n in ("linear", "sigmoid", "relu", "tanh", "softmax")}
LOSS_CODES = {n: int(c) for n, c in _codes.NAMES[_codes.Loss].items()}
PENALTY_CODES = {n: int(c) for n, c in _codes.NAMES[_codes.Penalty].items()}
OPTIMIZER_CODES = {n: int(c) for n, c in _codes.NAMES[_codes.Optimizer].items()}


class BackendUnavailableError(ImportError):
    """The requested backend cannot be used on this installation."""


_HOW_TO_GET = {
    "numba": "install it with `pip install numba` (it is a dependency of fastnet: "
             "`pip install -e .` brings it)",
    "cython": "the compiled extension fastnet._cython is missing: build it with "
              "`pip install -e .` (or `python setup.py build_ext --inplace`) on a machine "
              "with a C compiler, Cython and numpy",
    "reference": "the reference backend ships with fastnet; this should not happen",
}

_lock = threading.RLock()
_loaded: dict = {}          # name -> SimpleNamespace of kernels
_default: str | None = None  # the process-wide default, resolved once (env var, else the first available)
#: The backend chosen by use_backend in this thread / context (None: the default).
_active = contextvars.ContextVar("fastnet_backend", default=None)


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package is missing
        return False


def _probe(name: str) -> str | None:
    """Why backend ``name`` is unavailable (a sentence), or None if it looks available.

    Looks for the modules without importing them, so that listing the
    backends compiles and imports nothing heavy.
    """
    if name == "reference":
        return None
    if name == "numba":
        if not _has_module("numba"):
            return "numba is not installed"
        if not _has_module("fastnet._numba.kernels"):
            return "fastnet._numba.kernels is missing from this installation"
        return None
    if name == "cython":
        from fastnet._cython import REQUIRED_MODULES  # tiny pure-Python module
        missing = [m for m in REQUIRED_MODULES if not _has_module("fastnet._cython." + m)]
        if missing:
            return "extension module(s) not built: " + ", ".join(
                "fastnet._cython." + m for m in missing)
        return None
    return f"unknown backend {name!r}"


def available_backends() -> list:
    """Names of the backends usable on this installation, in order of preference (the default first).

    Returns
    -------
    list of str
        A subset of ``('cython', 'numba', 'reference')``, in that order of preference.
    """
    return [name for name in _DEFAULT_ORDER if _probe(name) is None]


def _check_name(name) -> str:
    if not isinstance(name, str):
        raise TypeError(f"backend must be a str, one of {BACKENDS}, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: expected one of {', '.join(BACKENDS)}")
    return key


def _load(name: str) -> SimpleNamespace:
    """Import backend ``name`` once and return its kernels as a namespace."""
    with _lock:
        if name in _loaded:
            return _loaded[name]
        why = _probe(name)
        if why is not None:
            raise BackendUnavailableError(
                f"backend {name!r} is not available: {why}; {_HOW_TO_GET[name]}")
        try:
            module = importlib.import_module(_MODULES[name])
        except BackendUnavailableError:  # says why itself (e.g. FASTNET_SIMD's variant)
            raise
        except ImportError as exc:  # a broken install, not a missing one
            raise BackendUnavailableError(
                f"backend {name!r} failed to import ({exc}); {_HOW_TO_GET[name]}") from exc
        table = dict(module.KERNELS)
        unknown = set(table) - set(KERNEL_NAMES)
        if unknown:
            raise RuntimeError(f"backend {name!r} registers unknown kernels {sorted(unknown)}")
        ns = SimpleNamespace(**{k: table.get(k, _missing(name, k)) for k in KERNEL_NAMES})
        ns.__backend__ = name
        ns.__complete__ = set(table) == set(KERNEL_NAMES)
        _loaded[name] = ns
        return ns


def _missing(backend: str, kernel: str):
    def not_implemented(*args, **kwargs):
        raise NotImplementedError(
            f"kernel {kernel!r} is not implemented by the {backend!r} backend; "
            f"choose another one with fastnet.use_backend(...)")
    not_implemented.__name__ = kernel
    not_implemented.missing = True
    return not_implemented


def _resolve_default() -> str:
    env = os.environ.get("FASTNET_BACKEND", "").strip()
    if env:
        try:
            name = _check_name(env)
        except ValueError as exc:
            raise ValueError(f"FASTNET_BACKEND: {exc}") from None
        why = _probe(name)
        if why is not None:
            raise BackendUnavailableError(
                f"FASTNET_BACKEND={env!r} asks for backend {name!r}, which is not available: "
                f"{why}; {_HOW_TO_GET[name]}")
        return name
    # The first available backend (preference order) that implements the whole kernel contract.
    for name in available_backends():
        try:
            if _load(name).__complete__:
                return name
        except BackendUnavailableError as exc:
            if getattr(exc, "fatal", False):  # a setting asks for the impossible: say so
                raise
            continue
    return "reference"


def get_backend() -> str:
    """Name of the active backend (``'reference'``, ``'numba'`` or ``'cython'``).

    The backend chosen by :func:`use_backend` in this thread or context,
    else the process-wide default: ``FASTNET_BACKEND``, else the first
    available backend (resolved at the first call).
    """
    global _default
    name = _active.get()
    if name is not None:
        return name
    with _lock:
        if _default is None:
            _default = _resolve_default()
        return _default


class use_backend:
    """Choose the backend that fastnet's functions dispatch to, in this thread.

    Usable as a plain call (``fastnet.use_backend('numba')``, which lasts
    until the next call in the same thread or context) or as a context
    manager, which restores the previous choice on exit::

        with fastnet.use_backend("reference"):
            J, grads = fastnet.backprop(model, X, y)

    The choice is held in a :class:`contextvars.ContextVar`, so two threads
    may train with different backends at the same time; a new thread starts
    with the process-wide default (``FASTNET_BACKEND`` or the first
    available backend).

    Parameters
    ----------
    name : {'reference', 'numba', 'cython'}
        Backend to use.

    Raises
    ------
    ValueError
        ``name`` is not a backend's name.
    BackendUnavailableError
        The backend is not available here; the message says how to get it.
    """

    def __init__(self, name: str):
        key = _check_name(name)
        _load(key)  # fail now, not at the first kernel call
        self._token = _active.set(key)
        self.name = key

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            _active.reset(self._token)
        except ValueError:  # exited in another context than the one it was entered in
            _active.set(self._token.old_value if self._token.old_value is not contextvars.Token.MISSING
                        else None)
        return False

    def __repr__(self):
        return f"use_backend({self.name!r})"


def kernels() -> SimpleNamespace:
    """The active backend's kernels, as a namespace (``kernels().train_epoch(...)``)."""
    return _load(get_backend())


def backend_kernels(name: str) -> SimpleNamespace:
    """The kernels of backend ``name`` (for tests and benchmarks)."""
    return _load(_check_name(name))
