"""The course's training loops on the active backend.

Same arguments, semantics and :class:`History` as
:mod:`fastnet.reference.training` (given the same ``rng`` they draw the same
shuffles); each epoch is one call of the backend's ``train_epoch`` kernel on
the flat parameter vector, so no Python runs per sample or per batch.
"""
import time

import numpy as np

from fastnet import _backend
from fastnet._backend import LOSS_CODES, OPTIMIZER_CODES, PENALTY_CODES
from fastnet.network import NetworkSpec
from fastnet.reference.training import (History, DivergenceError, OPTIMIZERS, _Args, make_loops,
                                        check_finite_cost, write_back)

__all__ = ["History", "DivergenceError", "train", "gradient_descent", "train_online",
           "train_minibatch", "train_momentum", "train_rmsprop", "OPTIMIZERS"]


def _labels_of(out):
    if out.shape[1] == 1:
        return (out[:, 0] >= 0.5).astype(np.int64)
    return np.argmax(out, axis=1)


def train(model, X, y, *, optimizer="gd", lr=0.1, epochs=100, batch_size=None, momentum=0.9,
          rho=0.9, eps=1e-8, lam=0.0, penalty=None, loss="cross_entropy", tol=None, shuffle=True,
          rng=None, X_test=None, y_test=None, verbose=0):
    """Train ``model`` in place on the active backend.

    Parameters and result as :func:`fastnet.reference.train`.
    """
    a = _Args(model, X, y, optimizer, lr, epochs, batch_size, momentum, rho, eps, lam,
              penalty, loss, tol, shuffle, rng, X_test, y_test)
    K = _backend.kernels()
    spec = NetworkSpec(a.thetas, a.acts, a.dtype)
    params, sizes, kinds = spec.params, spec.sizes, spec.kinds
    state = np.zeros_like(params)
    backup = params.copy()
    m = a.X.shape[0]
    opt, pen, lcode = OPTIMIZER_CODES[a.optimizer], PENALTY_CODES[a.penalty], LOSS_CODES[a.loss]
    hist = History(J=[], seconds=[])
    if a.X_test is not None:
        hist["train_acc"], hist["test_acc"] = [], []
    converged = False
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        order = a.order(m)
        start_penalty = K.penalty_value(pen, a.lam, params, sizes) if pen else 0.0
        # a diverging run overflows: detected below as a non-finite cost, not warned about
        with np.errstate(over="ignore", invalid="ignore"):
            total = K.train_epoch(params, sizes, kinds, lcode, a.X, a.Y, order, a.batch_size,
                                  opt, a.lr, a.momentum, a.rho, a.eps, pen, a.lam, state)
        if not np.isfinite(params).all():
            total = np.nan  # weights that overflowed diverged, even if the cost looked finite
        J = total / m + start_penalty
        try:
            check_finite_cost(J, epoch, a.lr)
        except DivergenceError:
            write_back(model, _unpack(backup, sizes))
            raise
        backup[...] = params
        hist["J"].append(float(J))
        if a.X_test is not None:
            hist["train_acc"].append(100.0 * float(np.mean(_labels_of(spec.output(a.X)) == a.labels)))
            hist["test_acc"].append(100.0 * float(np.mean(_labels_of(spec.output(a.X_test)) == a.y_test)))
        hist["seconds"].append(time.perf_counter() - t0)
        if verbose and epoch % verbose == 0:
            print(f"epoch {epoch}: J = {J:.6f}")
        if a.tol is not None and epoch > 1 and abs(hist["J"][-1] - hist["J"][-2]) < a.tol:
            converged = True
            break
    write_back(model, spec.thetas())
    hist["epochs"] = len(hist["J"])
    hist["converged"] = converged
    return hist


def _unpack(params, sizes):
    from fastnet._params import unpack
    return unpack(params, sizes)


gradient_descent, train_online, train_minibatch, train_momentum, train_rmsprop = make_loops(train)
