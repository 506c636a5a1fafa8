r"""The course's training loops, in numpy.

Every loop updates the model's weight matrices in place and returns a
:class:`History`.  One epoch is: draw the order of the samples (shuffled
with ``rng`` except for full-batch gradient descent), cut it into batches of
``batch_size``, and for each batch compute the mean gradient with
:func:`~fastnet.reference.backprop`, add the penalty's gradient and update
each :math:`\Theta` with :func:`fastnet.reference.kernels.optimizer_step`
(the one definition of every optimiser), for example

* ``'gd'`` / ``'sgd'``: :math:`\Theta \leftarrow \Theta - \eta\,\nabla J`
* ``'momentum'``: :math:`v \leftarrow \mu v - \eta\,\nabla J,\ \Theta \leftarrow \Theta + v`
* ``'rmsprop'``: :math:`s \leftarrow \rho s + (1-\rho)(\nabla J)^2,\ \Theta \leftarrow \Theta - \eta\,\nabla J / (\sqrt{s} + \epsilon)`
* ``'adam'`` and ``'nesterov'``: as in :func:`~fastnet.reference.kernels.optimizer_step`.

The cost recorded for an epoch is the mean over samples of the loss each
sample had before its batch's update, plus the penalty of the weights at the
start of the epoch; for full-batch gradient descent this is exactly
:math:`J(\Theta_t)`.  Training stops early when ``tol`` is given and
:math:`|J_t - J_{t-1}| < tol`.  The epoch loop and the divergence rule are
:class:`fastnet._history.EpochRunner`'s, shared with the compiled backends:
a diverging run raises :class:`DivergenceError`.
"""
import numpy as np

from fastnet._args import TrainingArgs, OPTIMIZERS, make_loops, write_back, start_rows
from fastnet._codes import Optimizer, by_name
from fastnet._history import History, DivergenceError, EpochRunner, HistoryRecorder
from fastnet.reference.kernels import optimizer_step
from fastnet.reference.losses import LOSSES, PENALTIES

__all__ = ["History", "DivergenceError", "train", "gradient_descent", "train_online",
           "train_minibatch", "train_momentum", "train_rmsprop", "OPTIMIZERS"]


def train(model, X, y, *, optimizer="gd", lr=0.1, epochs=100, batch_size=None, momentum=0.9,
          rho=0.9, eps=1e-8, lam=0.0, penalty=None, loss="cross_entropy", tol=None, shuffle=True,
          rng=None, X_test=None, y_test=None, verbose=0, beta1=0.9, beta2=0.999):
    r"""Train ``model`` in place; the course's loops in one function.

    Parameters
    ----------
    model : list
        ``[Theta1, act1, ..., ThetaL, actL]``; the Thetas are updated in place.
    X : ndarray (m, n)
    y : ndarray (m,) of labels 0..K-1, or (m, K) targets
    optimizer : {'gd', 'sgd', 'momentum', 'rmsprop', 'adam', 'nesterov'}
        ``'gd'`` is full-batch gradient descent; ``'sgd'`` defaults to
        ``batch_size=1`` (the course's online learning); the others default
        to full batches.  The update rules are those of
        :func:`fastnet.reference.kernels.optimizer_step`.
    lr : float > 0
        Learning rate :math:`\eta`.
    epochs : int >= 1
        Maximum number of passes over the data.
    batch_size : int, optional
    momentum : float in [0, 1)
        :math:`\mu` for ``'momentum'`` and ``'nesterov'``.
    rho, eps : float
        RMSprop's decay :math:`\rho` in [0, 1) and :math:`\epsilon > 0` (also Adam's).
    lam : float >= 0
    penalty : {None, 'l2', 'l1'}
    loss : {'cross_entropy', 'quadratic', 'log_loss'}
    tol : float, optional
        Stop when the cost changes by less than ``tol`` between epochs.
    shuffle : bool
        Shuffle the samples each epoch (mini-batch and online learning).
    rng : None, int or numpy.random.Generator
        Seed for the shuffles.
    X_test, y_test : optional
        When given, the history records train and test accuracy per epoch.
    verbose : int
        Print a line every ``verbose`` epochs (0: silent).
    beta1, beta2 : float in [0, 1)
        Adam's decay rates of the first and second moments.

    Returns
    -------
    History

    Raises
    ------
    DivergenceError
        Training diverged (the rule of :mod:`fastnet._history`); ``model``
        holds the weights of the last epoch that passed the rule.
    """
    args = TrainingArgs(model, X, y, optimizer, lr, epochs, batch_size, momentum, rho, eps, lam,
                        penalty, loss, tol, shuffle, rng, X_test, y_test, beta1, beta2)
    return _train_reference(model, args, verbose)


class _ReferenceTrainer(EpochRunner):
    """The reference's epochs: the course's ``backprop`` per batch, then one optimiser step per Theta."""

    def __init__(self, a):
        self.a = a
        self.lr = a.lr
        self.thetas = [np.array(t, dtype=a.dtype) for t in a.thetas]  # copies, C order
        self.states = [np.zeros(2 * t.size, dtype=a.dtype) for t in self.thetas]
        self.code = by_name(Optimizer, a.optimizer)
        self.t = 0

    def model(self):
        return [x for pair in zip(self.thetas, self.a.acts) for x in pair]

    def _penalty(self):
        a = self.a
        if a.penalty is None or a.lam == 0:
            return 0.0
        return sum(PENALTIES[a.penalty].f(t, a.lam) for t in self.thetas)

    def start_cost(self):
        from fastnet.reference.network import _layer
        rows = start_rows(self.a.X.shape[0])
        out = self.a.X[rows]
        for theta, act in zip(self.thetas, self.a.acts):
            out = _layer(theta, out, act)
        with np.errstate(over="ignore", invalid="ignore"):
            return LOSSES[self.a.loss].f(out, self.a.Y[rows]) + self._penalty()

    def _epoch(self, epoch):
        from fastnet.reference.network import backprop
        a = self.a
        m = a.X.shape[0]
        order = a.order(m)
        start_penalty = self._penalty()
        total = 0.0
        for s in range(0, m, a.batch_size):
            idx = order[s:s + a.batch_size]
            if not all(np.isfinite(th).all() for th in self.thetas):
                return np.nan  # the loss of non-finite weights, as a kernel finds it
            Jb, grads = backprop(self.model(), a.X[idx], a.Y[idx], loss=a.loss)
            total += Jb * idx.shape[0]
            for theta, g, state in zip(self.thetas, grads, self.states):
                if a.penalty is not None and a.lam:
                    g = g + PENALTIES[a.penalty].df(theta, a.lam).astype(a.dtype)
                optimizer_step(self.code, theta.reshape(-1), np.ascontiguousarray(g).reshape(-1),
                               state, a.lr, a.mu, a.rho2, a.eps, self.t)
            self.t += 1
        return total / m + start_penalty

    def _arrays(self):
        return self.thetas + self.states

    def _weights(self):
        return self.thetas


def _train_reference(model, a, verbose):
    from fastnet.reference.network import predict
    trainer = _ReferenceTrainer(a)

    def accuracies():
        cur = trainer.model()
        return (100.0 * float(np.mean(predict(cur, a.X) == a.labels)),
                100.0 * float(np.mean(predict(cur, a.X_test) == a.y_test)))

    recorder = HistoryRecorder(accuracies if a.X_test is not None else None, verbose)
    try:
        _, converged = trainer.run_epochs(a.epochs, tol=a.tol, callbacks=[recorder])
    finally:  # also after a DivergenceError: the weights of the last epoch that passed the rule
        write_back(model, trainer.thetas)
    return recorder.finish(converged)


gradient_descent, train_online, train_minibatch, train_momentum, train_rmsprop = make_loops(train)
