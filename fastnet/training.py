"""The course's training loops on the active backend.

Same arguments, semantics and :class:`History` as
:mod:`fastnet.reference.training` (given the same ``rng`` they draw the same
shuffles); each epoch is one call of the backend's ``train_epoch`` kernel on
the flat parameter vector, so no Python runs per sample or per batch.  When
the callbacks need nothing between two epochs (a history without accuracies,
no progress bar, the course's ``tol`` or scikit-learn's plateau rule), the
whole run is one ``train_epochs`` call (:mod:`fastnet.reference.epochs`): the
cython backend runs the loop between the epochs compiled too, with the same
draws and results.

:class:`EpochTrainer` is the engine: it runs epochs on a flat parameter
vector (:mod:`fastnet._params`) and is shared by :func:`train` and the
scikit-learn-style estimators of :mod:`fastnet.estimators` (which add early
stopping, ``partial_fit`` and a progress bar through its ``callback``).
"""
import numpy as np

from fastnet import _backend
from fastnet._backend import LOSS_CODES, OPTIMIZER_CODES, PENALTY_CODES
from fastnet.network import NetworkSpec, penalty_terms
from fastnet._args import (TrainingArgs, OPTIMIZERS, labels_from_outputs, make_loops, write_back,
                           start_rows)
from fastnet._codes import Run, Status, Stop
from fastnet._history import History, DivergenceError, EpochRunner, HistoryRecorder

__all__ = ["History", "DivergenceError", "EpochTrainer", "EarlyStopping", "AccuracyTracker",
           "Plateau", "LossPlateau", "InvScaling", "train", "gradient_descent",
           "train_online", "train_minibatch", "train_momentum", "train_rmsprop", "OPTIMIZERS"]


class EpochTrainer(EpochRunner):
    r"""Epochs of (mini-)batch training on a flat parameter vector, one kernel call each.

    The engine under :func:`train` and the estimators.  Its arguments are
    trusted (validated by the caller): ``params`` is the flat layout of
    :mod:`fastnet._params` (updated in place), ``X`` and ``Y`` passed to
    :meth:`epoch` / :meth:`run` are C-contiguous arrays of ``params``' dtype
    with ``Y`` of shape ``(m, sizes[-1])``.

    One epoch draws the sample order (when ``shuffle`` and the batches are
    smaller than the data: ``rng.shuffle`` of the last epoch's order, from
    ``0..m-1`` at the start of each :meth:`run` or :meth:`epoch` call, as
    scikit-learn shuffles its ``sample_idx``; else the natural order),
    measures the penalty at the start of the epoch, and calls the active
    backend's ``train_epoch`` kernel once.  Its cost is the mean data
    loss over the epoch plus that penalty, as in
    :func:`fastnet.reference.train`.  The loop around the epochs, with its
    backup and the divergence rule, is :class:`fastnet._history.EpochRunner`'s
    (shared with the reference's loop).

    Parameters
    ----------
    params : ndarray (P,)
        Flat parameters, updated in place.
    sizes, kinds : int64 arrays
        Layer widths and activation codes.
    loss : {'cross_entropy', 'quadratic', 'log_loss'}
    optimizer : {'gd', 'sgd', 'momentum', 'rmsprop', 'adam', 'nesterov'}
    lr, momentum, rho, eps : float
        ``momentum`` and ``rho`` are the kernels' :math:`\mu` and
        :math:`\rho`: Adam's :math:`\beta_1` and :math:`\beta_2` for ``'adam'``.
    batch_size : int or None
        None (and ``optimizer='gd'``) means full batches.
    penalty : {None, 'l1', 'l2'}
    lam : float
    shuffle : bool
    rng : numpy.random.Generator or RandomState
        A ``RandomState`` that drew scikit-learn's initial weights gives
        scikit-learn's orders.
    state : ndarray (2 P,), optional
        The optimiser's state (velocity, running mean square, Adam's moments),
        kept across calls (``partial_fit``); zeros when not given.
    t : int
        Optimiser steps already taken with ``state`` (Adam's bias correction);
        each epoch advances it by the number of batches.
    guard : fastnet._history.DivergenceGuard, optional
        The divergence rule's memory of an earlier part of the same run
        (``partial_fit``); a new one is started from the current weights
        when not given.
    kernels : callable, optional
        Returns the kernel table to use (asked once per epoch); the active
        backend's by default (:meth:`fastnet.network.NetworkSpec.kernels` for
        a network with user activations).
    """

    def __init__(self, params, sizes, kinds, *, loss, optimizer="gd", lr=0.1, batch_size=None,
                 momentum=0.9, rho=0.9, eps=1e-8, penalty=None, lam=0.0, shuffle=True, rng=None,
                 state=None, t=0, guard=None, kernels=None):
        self.params = params
        self.kernels = kernels if kernels is not None else _backend.kernels
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
        self.guard = guard
        self.X = self.Y = None
        self._arange = np.empty(0, dtype=np.int64)
        self._perm = None

    def _running_order(self, m):
        """The order the epochs shuffle in place: ``0..m-1`` at the start of each
        :meth:`run` or :meth:`epoch` call, then each epoch's shuffle of the last (scikit-learn's
        sequence, its ``sample_idx``)."""
        if self._perm is None or self._perm.shape[0] != m:
            self._perm = np.arange(m, dtype=np.int64)
        return self._perm

    def _order(self, m, batch_size):
        if self.shuffle and batch_size < m:
            order = self._running_order(m)
            self.rng.shuffle(order)
            return order
        if self._arange.shape[0] != m:
            self._arange = np.arange(m, dtype=np.int64)
        return self._arange

    # ---- the hooks of EpochRunner
    def start_cost(self):
        rows = start_rows(self.X.shape[0])
        X, Y = self.X[rows], self.Y[rows]
        K = self.kernels()
        out = np.empty((X.shape[0], int(self.sizes[-1])), dtype=self.params.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            K.forward_network(self.params, self.sizes, self.kinds, X, out)
            return (K.loss(self.loss_code, out, Y) / X.shape[0]
                    + penalty_terms(K, self.pen_code, self.lam, self.params, self.sizes))

    def _epoch(self, epoch):
        K = self.kernels()
        X, Y = self.X, self.Y
        m = X.shape[0]
        bs = m if self.batch_size is None else min(int(self.batch_size), m)
        order = self._order(m, bs)
        start_penalty = penalty_terms(K, self.pen_code, self.lam, self.params, self.sizes)
        total = K.train_epoch(self.params, self.sizes, self.kinds, self.loss_code, X, Y, order,
                              bs, self.opt_code, self.lr, self.momentum, self.rho, self.eps,
                              self.pen_code, self.lam, self.state, self.t)
        self.t += -(-m // bs)   # one optimiser step per batch
        return total / m + start_penalty

    def _arrays(self):
        return (self.params, self.state)

    # ---- the compiled epoch loop
    def run_epochs(self, epochs, *, tol=None, n_iter_no_change=1, callbacks=(), first_epoch=1):
        """:meth:`fastnet._history.EpochRunner.run_epochs`, in one ``train_epochs`` kernel call
        when the callbacks need nothing between two epochs (see :meth:`_fused_plan`): the
        same epochs, draws, rules and results, without Python between the epochs."""
        plan = self._fused_plan(callbacks, tol)
        if plan is None or epochs < 1:
            return super().run_epochs(epochs, tol=tol, n_iter_no_change=n_iter_no_change,
                                      callbacks=callbacks, first_epoch=first_epoch)
        return self._run_fused(epochs, plan[0], plan[1], tol, n_iter_no_change, callbacks,
                               first_epoch)

    @staticmethod
    def _fused_plan(callbacks, tol):
        """``(recorders, plateau)`` when every callback is a recorder that can take the
        epochs afterwards (``fused`` and ``record_epochs``) or, last, a :class:`LossPlateau`
        without the adaptive schedule (not together with ``tol``); else None."""
        recorders, plateau = [], None
        for i, cb in enumerate(callbacks):
            if isinstance(cb, LossPlateau) and i == len(callbacks) - 1 and tol is None \
                    and not cb.plateau.adaptive:
                plateau = cb
            elif getattr(cb, "fused", False) and hasattr(cb, "record_epochs"):
                recorders.append(cb)
            else:
                return None
        return recorders, plateau

    def _run_fused(self, epochs, recorders, plateau, tol, n_iter_no_change, callbacks,
                   first_epoch):
        if self.guard is None:
            self.guard = self.new_guard()
        for cb in callbacks:
            getattr(cb, "start", lambda: None)()
        K = self.kernels()
        X, Y = self.X, self.Y
        m = X.shape[0]
        bs = m if self.batch_size is None else min(int(self.batch_size), m)
        shuffled = self.shuffle and bs < m
        order = self._running_order(m) if shuffled else self._order(m, bs)
        if self._fused_backup is None or self._fused_backup.shape[0] != 3 * self.params.shape[0] \
                or self._fused_backup.dtype != self.params.dtype:
            self._fused_backup = np.empty(3 * self.params.shape[0], self.params.dtype)
        backup = self._fused_backup
        g = self.guard
        run = np.zeros(int(Run.WIDTH))
        run[Run.START_COST], run[Run.BEST], run[Run.WEIGHT_LIMIT] = \
            g.start_cost, g.best, g.weight_limit
        if plateau is not None:
            p = plateau.plateau
            run[Run.STOP], run[Run.TOL], run[Run.PATIENCE] = Stop.PLATEAU, p.tol, p.patience
            run[Run.STOP_BEST], run[Run.STOP_COUNT] = p.best, p.count
        elif tol is not None:
            run[Run.STOP], run[Run.TOL], run[Run.PATIENCE] = Stop.TOL, tol, n_iter_no_change
            run[Run.STOP_BEST] = np.nan
        costs = np.empty(epochs)
        times = np.zeros((epochs, 3))
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                K.train_epochs(self.params, self.sizes, self.kinds, self.loss_code, X, Y, order,
                               bs, self.opt_code, self.lr, self.momentum, self.rho, self.eps,
                               self.pen_code, self.lam, self.state, self.t,
                               self.rng if shuffled else None, backup, run, costs, times)
        finally:  # also after an interruption: the epochs that ran are recorded
            n = int(run[Run.EPOCHS])
            diverged = int(run[Run.STATUS]) == Status.DIVERGED
            done = n - 1 if diverged else n
            self.t += done * -(-m // bs)
            g.best = float(run[Run.BEST])
            if plateau is not None:
                plateau.plateau.best = float(run[Run.STOP_BEST])
                plateau.plateau.count = int(run[Run.STOP_COUNT])
            for cb in recorders:
                cb.record_epochs(first_epoch, costs[:done], times[:done, 0])
        if diverged:
            g.fail(first_epoch + n - 1, float(costs[n - 1]), float(run[Run.W_MAX]))
        converged = int(run[Run.STATUS]) == Status.CONVERGED
        if plateau is not None:
            plateau.converged = converged
            return n, False  # as run_epochs: a callback stopped it
        return n, converged

    _fused_backup = None

    def _weights(self):
        return (self.params,)

    # ---- public
    def set_data(self, X, Y):
        """Train on ``(X, Y)`` from now on; the shuffled order starts again at ``0..m-1``."""
        self.X, self.Y = X, Y
        self._perm = None

    def epoch(self, X, Y, epoch=1):
        """Run one epoch on ``(X, Y)``; return its cost.

        Raises
        ------
        DivergenceError
            Training diverged (:class:`fastnet._history.DivergenceGuard`);
            ``params``, ``state`` and ``t`` are put back to their values at
            the start of the best epoch so far.
        """
        self.set_data(X, Y)
        return self.checked_epoch(epoch)

    def run(self, X, Y, epochs, *, tol=None, n_iter_no_change=1, callback=None, callbacks=(),
            first_epoch=1):
        """Run up to ``epochs`` epochs on ``(X, Y)`` (see :meth:`fastnet._history.EpochRunner.run`).

        ``callback(epoch, J)`` (or each of ``callbacks``) is called after each
        epoch; one that returns True stops training.

        Returns
        -------
        epochs_run : int
        converged : bool
            Stopped on ``tol``.
        """
        self.set_data(X, Y)
        cbs = list(callbacks) + ([callback] if callback is not None else [])
        return self.run_epochs(epochs, tol=tol, n_iter_no_change=n_iter_no_change,
                               callbacks=cbs, first_epoch=first_epoch)


def _outputs(trainer, X):
    out = np.empty((X.shape[0], int(trainer.sizes[-1])), dtype=trainer.params.dtype)
    trainer.kernels().forward_network(trainer.params, trainer.sizes, trainer.kinds, X, out)
    return out


class AccuracyTracker:
    """Callback of :class:`EpochTrainer`: the training accuracy (percent) after each epoch.

    One forward pass over ``X`` per epoch, appended to ``history[key]``.
    """

    def __init__(self, trainer, X, labels, history, key="train_acc"):
        self.trainer, self.X, self.labels = trainer, X, labels
        self.history, self.key = history, key
        history.setdefault(key, [])

    def __call__(self, epoch, J):
        pred = labels_from_outputs(_outputs(self.trainer, self.X))
        self.history[self.key].append(100.0 * float(np.mean(pred == self.labels)))
        return False


class Plateau:
    r"""scikit-learn's no-improvement rule, on a value to minimise.

    Each :meth:`update` with a value :math:`v` counts one more epoch
    without improvement when :math:`v > \text{best} - tol`, else restarts the
    count; the best value is kept.  Training stops when the count exceeds
    ``n_iter_no_change``, except that with the ``'adaptive'`` schedule the
    learning rate is first divided by 5 (and the count restarted) until it
    falls to :math:`10^{-6}`.
    """

    def __init__(self, tol, n_iter_no_change, trainer=None, adaptive=False):
        self.tol, self.patience = float(tol), int(n_iter_no_change)
        self.trainer, self.adaptive = trainer, adaptive
        self.best = np.inf
        self.count = 0

    def update(self, value):
        """Record ``value``; True when training should stop."""
        self.count = self.count + 1 if value > self.best - self.tol else 0
        self.best = min(self.best, value)
        if self.count <= self.patience:
            return False
        if self.adaptive and self.trainer is not None and self.trainer.lr > 1e-6:
            self.trainer.lr /= 5.0
            self.count = 0
            return False
        return True


class LossPlateau:
    """Callback of :class:`EpochTrainer`: stop when the cost stops improving (:class:`Plateau`).

    ``converged`` is True once it has stopped training.
    """

    def __init__(self, trainer, tol, n_iter_no_change, adaptive=False):
        self.plateau = Plateau(tol, n_iter_no_change, trainer, adaptive)
        self.converged = False

    @property
    def best_loss(self):
        return self.plateau.best

    def __call__(self, epoch, J):
        self.converged = self.plateau.update(J)
        return self.converged


class InvScaling:
    r"""Callback of :class:`EpochTrainer`: scikit-learn's ``'invscaling'`` learning rate.

    After each epoch :math:`\eta = \eta_0 / (t + 1)^{p}`, with :math:`t` the
    samples seen so far (``samples_per_epoch`` per epoch, from ``t0``).
    """

    def __init__(self, trainer, lr0, power_t, samples_per_epoch, t0=0):
        self.trainer, self.lr0, self.power_t = trainer, float(lr0), float(power_t)
        self.m, self.t = int(samples_per_epoch), int(t0)

    def __call__(self, epoch, J):
        self.t += self.m
        self.trainer.lr = self.lr0 / (self.t + 1) ** self.power_t
        return False


class EarlyStopping:
    """Callback of :class:`EpochTrainer`: stop when a held-out score stops improving.

    After each epoch the network is run on the validation data ``(X_val,
    Y_val)``; its score is the accuracy (a fraction) when ``labels`` are given
    (classifiers), else the coefficient of determination :math:`R^2`
    (regressors), as scikit-learn's.  Training stops by scikit-learn's rule
    (:class:`Plateau` on minus the score: ``n_iter_no_change`` epochs in a
    row without an improvement of more than ``tol``); :meth:`restore_best`
    then puts back the weights of the best epoch.  ``history['val_J']``,
    ``'val_score'`` (and ``'val_acc'``, percent) record each epoch.

    Attributes
    ----------
    best_score : float
    best_epoch : int
    """

    def __init__(self, trainer, X_val, Y_val, labels=None, *, tol=1e-4, n_iter_no_change=10,
                 history=None, adaptive=False):
        self.trainer, self.X, self.Y, self.labels = trainer, X_val, Y_val, labels
        self.plateau = Plateau(tol, n_iter_no_change, trainer, adaptive)
        self.history = history if history is not None else History()
        self.history.setdefault("val_J", [])
        self.history.setdefault("val_score", [])
        if labels is not None:
            self.history.setdefault("val_acc", [])
        self.best_score, self.best_epoch = -np.inf, 0
        self._best = None

    def _score(self, out):
        if self.labels is not None:
            return float(np.mean(labels_from_outputs(out) == self.labels))
        Y = self.Y.astype(np.float64)
        ss_res = ((Y - out) ** 2).sum(axis=0)
        ss_tot = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
        r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1),
                      np.where(ss_res > 0, 0.0, 1.0))
        return float(np.mean(r2))

    def __call__(self, epoch, J):
        t = self.trainer
        out = _outputs(t, self.X)
        self.history["val_J"].append(
            float(t.kernels().loss(t.loss_code, out, self.Y) / self.X.shape[0]))
        score = self._score(out)
        self.history["val_score"].append(score)
        if self.labels is not None:
            self.history["val_acc"].append(100.0 * score)
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            if self._best is None:
                self._best = np.empty_like(t.params)
            np.copyto(self._best, t.params)
        return self.plateau.update(-score)

    def restore_best(self):
        """Put the weights of the best epoch back into the trainer's parameters."""
        if self._best is not None:
            np.copyto(self.trainer.params, self._best)


def train(model, X, y, *, optimizer="gd", lr=0.1, epochs=100, batch_size=None, momentum=0.9,
          rho=0.9, eps=1e-8, lam=0.0, penalty=None, loss="cross_entropy", tol=None, shuffle=True,
          rng=None, X_test=None, y_test=None, verbose=0, beta1=0.9, beta2=0.999):
    """Train ``model`` in place on the active backend.

    Parameters and result as :func:`fastnet.reference.train`.
    """
    a = TrainingArgs(model, X, y, optimizer, lr, epochs, batch_size, momentum, rho, eps, lam,
                     penalty, loss, tol, shuffle, rng, X_test, y_test, beta1, beta2)
    spec = NetworkSpec(a.thetas, a.acts, a.dtype)
    trainer = EpochTrainer(spec.params, spec.sizes, spec.kinds, loss=a.loss,
                           optimizer=a.optimizer, lr=a.lr, batch_size=a.batch_size,
                           momentum=a.mu, rho=a.rho2, eps=a.eps, penalty=a.penalty,
                           lam=a.lam, shuffle=a.shuffle, rng=a.rng, kernels=spec.kernels)

    def accuracies():
        return (100.0 * float(np.mean(labels_from_outputs(spec.output(a.X)) == a.labels)),
                100.0 * float(np.mean(labels_from_outputs(spec.output(a.X_test)) == a.y_test)))

    recorder = HistoryRecorder(accuracies if a.X_test is not None else None, verbose)
    try:
        _, converged = trainer.run(a.X, a.Y, a.epochs, tol=a.tol, callbacks=[recorder])
    finally:  # also after a DivergenceError: the weights of the last epoch that passed the rule
        write_back(model, spec.thetas())
    return recorder.finish(converged)


gradient_descent, train_online, train_minibatch, train_momentum, train_rmsprop = make_loops(train)
