"""Helpers of the API tests (estimators, training loops, divergence)."""
import numpy as np
import pytest

from fastnet import _backend
from fastnet._codes import Optimizer, by_name


def optimizer_missing(name, backend=None):
    """Why the backend cannot run optimiser ``name`` yet (its NotImplementedError), or None."""
    K = _backend.backend_kernels(backend) if backend else _backend.kernels()
    p = np.zeros(2)
    try:
        K.optimizer_step(int(by_name(Optimizer, name)), p, np.ones(2), np.zeros(4), 0.1, 0.9,
                         0.999, 1e-8, 0)
    except NotImplementedError as exc:
        return str(exc)
    return None


def need_optimizer(name):
    """Skip when the active backend does not implement optimiser ``name`` yet (Adam and Nesterov
    arrive in the numba and cython kernels with their helpers' work)."""
    why = optimizer_missing(name)
    if why:
        pytest.skip(f"optimizer {name!r} not on backend {_backend.get_backend()!r} yet: {why}")
