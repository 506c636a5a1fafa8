r"""The course's training loops, in numpy.

Every loop updates the model's weight matrices in place and returns a
:class:`History`.  One epoch is: draw the order of the samples (shuffled
with ``rng`` except for full-batch gradient descent), cut it into batches of
``batch_size``, and for each batch compute the mean gradient with
:func:`~fastnet.reference.backprop`, add the penalty's gradient and update:

* ``'gd'`` / ``'sgd'``: :math:`\Theta \leftarrow \Theta - \eta\,\nabla J`
* ``'momentum'``: :math:`v \leftarrow \mu v - \eta\,\nabla J,\ \Theta \leftarrow \Theta + v`
* ``'rmsprop'``: :math:`s \leftarrow \rho s + (1-\rho)(\nabla J)^2,\ \Theta \leftarrow \Theta - \eta\,\nabla J / (\sqrt{s} + \epsilon)`

The cost recorded for an epoch is the mean over samples of the loss each
sample had before its batch's update, plus the penalty of the weights at the
start of the epoch; for full-batch gradient descent this is exactly
:math:`J(\Theta_t)`.  Training stops early when ``tol`` is given and
:math:`|J_t - J_{t-1}| < tol`, and raises :class:`DivergenceError` when the
cost stops being finite.
"""
import time

import numpy as np

from fastnet._args import TrainingArgs, OPTIMIZERS, labels_from_outputs, make_loops, write_back
from fastnet._history import History, DivergenceError, check_finite_cost
from fastnet.reference.losses import PENALTIES

__all__ = ["History", "DivergenceError", "train", "gradient_descent", "train_online",
           "train_minibatch", "train_momentum", "train_rmsprop", "OPTIMIZERS"]


def _theta_penalty(thetas, lam, pen):
    if pen is None or lam == 0:
        return 0.0
    return sum(PENALTIES[pen].f(t, lam) for t in thetas)


def train(model, X, y, *, optimizer="gd", lr=0.1, epochs=100, batch_size=None, momentum=0.9,
          rho=0.9, eps=1e-8, lam=0.0, penalty=None, loss="cross_entropy", tol=None, shuffle=True,
          rng=None, X_test=None, y_test=None, verbose=0):
    r"""Train ``model`` in place; the course's loops in one function.

    Parameters
    ----------
    model : list
        ``[Theta1, act1, ..., ThetaL, actL]``; the Thetas are updated in place.
    X : ndarray (m, n)
    y : ndarray (m,) of labels 0..K-1, or (m, K) targets
    optimizer : {'gd', 'sgd', 'momentum', 'rmsprop'}
        ``'gd'`` is full-batch gradient descent; ``'sgd'`` defaults to
        ``batch_size=1`` (the course's online learning); the others default
        to full batches.
    lr : float > 0
        Learning rate :math:`\eta`.
    epochs : int >= 1
        Maximum number of passes over the data.
    batch_size : int, optional
    momentum : float in [0, 1)
        :math:`\mu` for ``'momentum'``.
    rho, eps : float
        RMSprop's decay :math:`\rho` in [0, 1) and :math:`\epsilon > 0`.
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

    Returns
    -------
    History
    """
    args = TrainingArgs(model, X, y, optimizer, lr, epochs, batch_size, momentum, rho, eps, lam,
                 penalty, loss, tol, shuffle, rng, X_test, y_test)
    return _train_reference(model, args, verbose)


def _train_reference(model, a, verbose):
    from fastnet.reference.network import backprop, predict
    thetas = [np.asarray(t, dtype=a.dtype).copy() for t in a.thetas]
    state = [np.zeros_like(t) for t in thetas]
    m = a.X.shape[0]
    t = a.dtype.type
    hist = History(J=[], seconds=[])
    if a.X_test is not None:
        hist["train_acc"], hist["test_acc"] = [], []
    converged = False
    backup = [th.copy() for th in thetas]
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        order = a.order(m)
        start_penalty = _theta_penalty(thetas, a.lam, a.penalty)
        total = 0.0
        # A diverging run overflows: that is detected below as a non-finite cost (and
        # raised as DivergenceError), not warned about.
        with np.errstate(over="ignore", invalid="ignore"):
            for s in range(0, m, a.batch_size):
                idx = order[s:s + a.batch_size]
                if not all(np.isfinite(th).all() for th in thetas):
                    total = np.nan  # the loss of non-finite weights, as a kernel finds it
                    break
                cur = [x for pair in zip(thetas, a.acts) for x in pair]
                Jb, grads = backprop(cur, a.X[idx], a.Y[idx], loss=a.loss)
                total += Jb * idx.shape[0]
                for l, theta in enumerate(thetas):
                    g = grads[l]
                    if a.penalty is not None and a.lam:
                        g = g + PENALTIES[a.penalty].df(theta, a.lam).astype(a.dtype)
                    if a.optimizer in ("gd", "sgd"):
                        theta -= t(a.lr) * g
                    elif a.optimizer == "momentum":
                        state[l] *= t(a.momentum)
                        state[l] -= t(a.lr) * g
                        theta += state[l]
                    else:
                        state[l] *= t(a.rho)
                        state[l] += (t(1) - t(a.rho)) * g * g
                        theta -= t(a.lr) * g / (np.sqrt(state[l]) + t(a.eps))
        if not all(np.isfinite(th).all() for th in thetas):
            total = np.nan  # weights that overflowed diverged, even if the cost looked finite
        J = total / m + start_penalty
        try:
            check_finite_cost(J, epoch, a.lr)
        except DivergenceError:
            write_back(model, backup)  # the weights of the last epoch whose cost was finite
            raise
        backup = [th.copy() for th in thetas]
        hist["J"].append(J)
        if a.X_test is not None:
            cur = [x for pair in zip(thetas, a.acts) for x in pair]
            hist["train_acc"].append(100.0 * np.mean(predict(cur, a.X) == a.labels))
            hist["test_acc"].append(100.0 * np.mean(predict(cur, a.X_test) == a.y_test))
        hist["seconds"].append(time.perf_counter() - t0)
        if verbose and epoch % verbose == 0:
            print(f"epoch {epoch}: J = {J:.6f}")
        if a.tol is not None and epoch > 1 and abs(hist["J"][-1] - hist["J"][-2]) < a.tol:
            converged = True
            break
    write_back(model, thetas)
    hist["epochs"] = len(hist["J"])
    hist["converged"] = converged
    return hist


gradient_descent, train_online, train_minibatch, train_momentum, train_rmsprop = make_loops(train)
