"""The course's training loops on the active backend.

Same arguments, semantics and :class:`History` as
:mod:`fastnet.reference.training` (given the same ``rng`` they draw the same
shuffles); each epoch is one call of the backend's ``train_epoch`` kernel on
the flat parameter vector, so no Python runs per sample or per batch.

:class:`EpochTrainer` is the engine: it runs epochs on a flat parameter
vector (:mod:`fastnet._params`) and is shared by :func:`train` and the
scikit-learn-style estimators of :mod:`fastnet.estimators` (which add early
stopping, ``partial_fit`` and a progress bar through its ``callback``).
"""
import time

import numpy as np

from fastnet import _backend
from fastnet._backend import LOSS_CODES, OPTIMIZER_CODES, PENALTY_CODES
from fastnet.network import NetworkSpec
from fastnet._args import TrainingArgs, OPTIMIZERS, labels_from_outputs, make_loops, write_back
from fastnet._history import History, DivergenceError, check_finite_cost

__all__ = ["History", "DivergenceError", "EpochTrainer", "train", "gradient_descent",
           "train_online", "train_minibatch", "train_momentum", "train_rmsprop", "OPTIMIZERS"]


class EpochTrainer:
    r"""Epochs of (mini-)batch training on a flat parameter vector, one kernel call each.

    The engine under :func:`train` and the estimators.  Its arguments are
    trusted (validated by the caller): ``params`` is the flat layout of
    :mod:`fastnet._params` (updated in place), ``X`` and ``Y`` passed to
    :meth:`epoch` are C-contiguous arrays of ``params``' dtype with
    ``Y`` of shape ``(m, sizes[-1])``.

    One epoch draws the sample order (a permutation from ``rng`` when
    ``shuffle`` and the batches are smaller than the data, else the natural
    order), measures the penalty at the start of the epoch, and calls the
    active backend's ``train_epoch`` kernel once.  Its cost is the mean data
    loss over the epoch plus that penalty, as in
    :func:`fastnet.reference.train`.

    Parameters
    ----------
    params : ndarray (P,)
        Flat parameters, updated in place.
    sizes, kinds : int64 arrays
        Layer widths and activation codes.
    loss : {'cross_entropy', 'quadratic', 'log_loss'}
    optimizer : {'gd', 'sgd', 'momentum', 'rmsprop'}
    lr, momentum, rho, eps : float
    batch_size : int or None
        None (and ``optimizer='gd'``) means full batches.
    penalty : {None, 'l1', 'l2'}
    lam : float
    shuffle : bool
    rng : numpy.random.Generator
    state : ndarray (2 P,), optional
        The optimiser's state (velocity, running mean square, Adam's moments),
        kept across calls (``partial_fit``); zeros when not given.
    t : int
        Optimiser steps already taken with ``state`` (Adam's bias correction);
        :meth:`epoch` advances it by the number of batches.
    """

    def __init__(self, params, sizes, kinds, *, loss, optimizer="gd", lr=0.1, batch_size=None,
                 momentum=0.9, rho=0.9, eps=1e-8, penalty=None, lam=0.0, shuffle=True, rng=None,
                 state=None, t=0):
        self.params = params
        self.sizes = np.ascontiguousarray(sizes, dtype=np.int64)
        self.kinds = np.ascontiguousarray(kinds, dtype=np.int64)
        self.loss_code = LOSS_CODES[loss]
        self.optimizer = optimizer
        self.opt_code = OPTIMIZER_CODES[optimizer]
        self.lr, self.momentum, self.rho, self.eps = lr, momentum, rho, eps
        self.batch_size = None if optimizer == "gd" else batch_size
        self.pen_code = PENALTY_CODES[penalty]
        self.lam = float(lam)
        self.shuffle = bool(shuffle)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.state = np.zeros(2 * params.shape[0], params.dtype) if state is None else state
        self.t = int(t)
        self._backup = np.empty_like(params)
        self._arange = np.empty(0, dtype=np.int64)

    def _order(self, m, batch_size):
        if self.shuffle and batch_size < m:
            return self.rng.permutation(m).astype(np.int64)
        if self._arange.shape[0] != m:
            self._arange = np.arange(m, dtype=np.int64)
        return self._arange

    def epoch(self, X, Y, epoch=1):
        """Run one epoch on ``(X, Y)``; return its cost.

        Raises
        ------
        DivergenceError
            The cost is not finite; ``params`` are restored to their values
            at the start of this epoch.
        """
        K = _backend.kernels()
        m = X.shape[0]
        bs = m if self.batch_size is None else min(int(self.batch_size), m)
        order = self._order(m, bs)
        params = self.params
        start_penalty = (K.penalty_value(self.pen_code, self.lam, params, self.sizes)
                         if self.pen_code else 0.0)
        np.copyto(self._backup, params)
        # a diverging run overflows: that is detected below as a non-finite cost (and raised
        # as DivergenceError), not warned about
        with np.errstate(over="ignore", invalid="ignore"):
            total = K.train_epoch(params, self.sizes, self.kinds, self.loss_code, X, Y, order,
                                  bs, self.opt_code, self.lr, self.momentum, self.rho,
                                  self.eps, self.pen_code, self.lam, self.state, self.t)
        if not np.isfinite(params).all():
            total = np.nan  # weights that overflowed diverged, even if the cost looked finite
        J = total / m + start_penalty
        if not np.isfinite(J):
            np.copyto(params, self._backup)
            check_finite_cost(J, epoch, self.lr)
        self.t += -(-m // bs)   # one optimiser step per batch
        return float(J)

    def run(self, X, Y, epochs, *, tol=None, n_iter_no_change=1, callback=None, first_epoch=1):
        """Run up to ``epochs`` epochs.

        Stops early when ``tol`` is given and the cost changed by less than
        ``tol`` (:math:`|J_t - J_{t-1}| < tol`) for ``n_iter_no_change``
        consecutive epochs (1: the course's rule), or when
        ``callback(epoch, J)`` returns True.

        Returns
        -------
        epochs_run : int
        converged : bool
            Stopped on ``tol``.
        """
        prev = None
        calm = 0
        n = 0
        for epoch in range(first_epoch, first_epoch + epochs):
            J = self.epoch(X, Y, epoch)
            n += 1
            if callback is not None and callback(epoch, J):
                return n, False
            if tol is not None and prev is not None:
                calm = calm + 1 if abs(J - prev) < tol else 0
                if calm >= n_iter_no_change:
                    return n, True
            prev = J
        return n, False


def train(model, X, y, *, optimizer="gd", lr=0.1, epochs=100, batch_size=None, momentum=0.9,
          rho=0.9, eps=1e-8, lam=0.0, penalty=None, loss="cross_entropy", tol=None, shuffle=True,
          rng=None, X_test=None, y_test=None, verbose=0):
    """Train ``model`` in place on the active backend.

    Parameters and result as :func:`fastnet.reference.train`.
    """
    a = TrainingArgs(model, X, y, optimizer, lr, epochs, batch_size, momentum, rho, eps, lam,
              penalty, loss, tol, shuffle, rng, X_test, y_test)
    spec = NetworkSpec(a.thetas, a.acts, a.dtype)
    trainer = EpochTrainer(spec.params, spec.sizes, spec.kinds, loss=a.loss,
                           optimizer=a.optimizer, lr=a.lr, batch_size=a.batch_size,
                           momentum=a.momentum, rho=a.rho, eps=a.eps, penalty=a.penalty,
                           lam=a.lam, shuffle=a.shuffle, rng=a.rng)
    hist = History(J=[], seconds=[])
    if a.X_test is not None:
        hist["train_acc"], hist["test_acc"] = [], []
    clock = [time.perf_counter()]

    def record(epoch, J):
        hist["J"].append(J)
        if a.X_test is not None:
            hist["train_acc"].append(100.0 * float(np.mean(labels_from_outputs(spec.output(a.X)) == a.labels)))
            hist["test_acc"].append(100.0 * float(np.mean(labels_from_outputs(spec.output(a.X_test)) == a.y_test)))
        now = time.perf_counter()
        hist["seconds"].append(now - clock[0])
        clock[0] = now
        if verbose and epoch % verbose == 0:
            print(f"epoch {epoch}: J = {J:.6f}")
        return False

    try:
        _, converged = trainer.run(a.X, a.Y, a.epochs, tol=a.tol, callback=record)
    except DivergenceError:
        write_back(model, spec.thetas())  # the weights of the last epoch whose cost was finite
        raise
    write_back(model, spec.thetas())
    hist["epochs"] = len(hist["J"])
    hist["converged"] = converged
    return hist


gradient_descent, train_online, train_minibatch, train_momentum, train_rmsprop = make_loops(train)
