r"""Many epochs in one call: the ``train_epochs`` kernel, for reading.

:func:`train_epochs` runs up to ``len(costs)`` epochs of :func:`train_epoch
<fastnet.reference.kernels.train_epoch>`, with everything the epoch loop of
:class:`fastnet._history.EpochRunner` does between two epochs, so that a
compiled backend can run a whole fit without returning to Python.  Epoch
:math:`e` (from 0):

1. **order**: ``rng.shuffle(order)``, in place, the last epoch's order shuffled (when
   ``rng`` is given; else ``order`` is used as it is), the same draws as the Python
   loop's; from ``0..m-1`` with a ``RandomState`` these are scikit-learn's orders;
2. **penalty** at the start of the epoch, :math:`R(w)` (0 without one);
3. **backup**: ``backup[:P] = params``, ``backup[P:] = state``;
4. **training**: ``total = train_epoch(..., t)``, then :math:`J_e = \text{total}/m + R(w)`,
   written to ``costs[e]``;
5. **divergence rule** (:class:`fastnet._history.DivergenceGuard`): the epoch has
   diverged when :math:`J_e` or a weight is not finite, or when
   :math:`J_e > 2\,\text{best}`, :math:`J_e > J_0` and :math:`\max|w| \ge`
   ``WEIGHT_LIMIT``.  Then ``params`` and ``state`` are put back from ``backup``,
   ``run[W_MAX]`` gets :math:`\max|w|` of the diverged weights and the call returns
   (``STATUS`` = DIVERGED); else :math:`\text{best} \leftarrow \min(\text{best}, J_e)` and the
   step count advances by the epoch's :math:`\lceil m / b\rceil` batches;
6. **stopping rule** (``run[STOP]``):

   * ``TOL``, the course's: :math:`c \leftarrow c + 1` when :math:`|J_e - J_{e-1}| <`
     ``tol`` (else 0), stop when :math:`c \ge` ``PATIENCE``;
   * ``PLATEAU``, scikit-learn's: :math:`c \leftarrow c + 1` when
     :math:`J_e > \text{best}' - ` ``tol`` (else 0), :math:`\text{best}' \leftarrow
     \min(\text{best}', J_e)`, stop when :math:`c >` ``PATIENCE``.

   :math:`J_{e-1}` (or :math:`\text{best}'`) is ``run[STOP_BEST]`` and :math:`c` is
   ``run[STOP_COUNT]``, so that a run continued by a later call goes on counting.

``times[e]`` gets the epoch's wall seconds, those of step 4's ``train_epoch``, and
those of steps 1 and 2 (the rest is the backup and the rules).  ``run[EPOCHS]`` is updated after every epoch, so that it is
right after an interruption (``KeyboardInterrupt``) too.
"""
import math
import time

import numpy as np

from fastnet._codes import Run, Status, Stop

__all__ = ["train_epochs", "epoch_loop", "EpochLoopKernels", "COST_GROWTH"]

#: The divergence rule's factor over the best cost (as :data:`fastnet._history.COST_GROWTH`).
COST_GROWTH = 2.0


def _max_abs(a):
    """:math:`\\max|w|` of ``a``, NaN when an entry is not finite."""
    if not a.size:
        return 0.0
    v = max(float(a.max()), -float(a.min()))
    return v if math.isfinite(v) else math.nan


def epoch_loop(train_epoch, penalty_value, params, sizes, kinds, loss_kind, X, Y, order,
               batch_size, optimizer, lr, mu, rho, eps, penalty_kind, lam, state, t, rng,
               backup, run, costs, times):
    """:func:`train_epochs` on the given ``train_epoch`` and ``penalty_value`` kernels (the
    loop of every backend whose epochs are not compiled together)."""
    m = X.shape[0]
    P = params.shape[0]
    nb = -(-m // int(batch_size))
    clock = time.perf_counter
    run[Run.STATUS] = Status.RAN
    run[Run.EPOCHS] = 0
    stop = int(run[Run.STOP])
    tol, patience = float(run[Run.TOL]), float(run[Run.PATIENCE])
    for e in range(costs.shape[0]):
        t0 = clock()
        if rng is not None:
            rng.shuffle(order)
        pen = penalty_value(penalty_kind, lam, params, sizes) if penalty_kind and lam else 0.0
        t1 = clock()
        backup[:P] = params
        backup[P:] = state
        tb = clock()
        total = train_epoch(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer,
                            lr, mu, rho, eps, penalty_kind, lam, state, t)
        t2 = clock()
        J = float(total) / m + float(pen)
        costs[e] = J
        # the divergence rule
        best = run[Run.BEST]
        grew = J > COST_GROWTH * best and J > run[Run.START_COST]
        w_max = None
        if not (math.isfinite(J) and not grew and np.isfinite(params).all()):
            w_max = _max_abs(params)
            if math.isfinite(J) and math.isfinite(w_max) and not (
                    grew and w_max >= run[Run.WEIGHT_LIMIT]):
                w_max = None  # finite, and not a runaway: passes
        times[e] = (clock() - t0, t2 - tb, t1 - t0)
        if w_max is not None:
            run[Run.W_MAX] = w_max
            params[...] = backup[:P]
            state[...] = backup[P:]
            run[Run.STATUS] = Status.DIVERGED
            run[Run.EPOCHS] = e + 1
            return e + 1
        run[Run.BEST] = min(best, J)
        t += nb
        run[Run.EPOCHS] = e + 1
        # the stopping rule
        if stop == Stop.TOL:
            prev = run[Run.STOP_BEST]
            if not math.isnan(prev):
                run[Run.STOP_COUNT] = run[Run.STOP_COUNT] + 1 if abs(J - prev) < tol else 0
            run[Run.STOP_BEST] = J
            if run[Run.STOP_COUNT] >= patience:
                run[Run.STATUS] = Status.CONVERGED
                return e + 1
        elif stop == Stop.PLATEAU:
            run[Run.STOP_COUNT] = (run[Run.STOP_COUNT] + 1 if J > run[Run.STOP_BEST] - tol
                                   else 0)
            run[Run.STOP_BEST] = min(run[Run.STOP_BEST], J)
            if run[Run.STOP_COUNT] > patience:
                run[Run.STATUS] = Status.CONVERGED
                return e + 1
    return costs.shape[0]


def train_epochs(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer, lr, mu,
                 rho, eps, penalty_kind, lam, state, t, rng, backup, run, costs, times):
    """Up to ``len(costs)`` epochs of :func:`~fastnet.reference.kernels.train_epoch`, with the
    epoch loop's shuffle, backup, divergence rule and stopping rule (see the module).

    Parameters
    ----------
    params, sizes, kinds, loss_kind, X, Y, batch_size, optimizer, lr, mu, rho, eps, \
penalty_kind, lam, state, t
        As :func:`~fastnet.reference.kernels.train_epoch` (``t``: the step count before the
        first epoch).
    order : int64 array (m,)
        The epochs' sample order, indices of rows of ``X``: shuffled in place each epoch
        when ``rng`` is given (and left as the last epoch's), else used as it is.
    rng : numpy.random.Generator, numpy.random.RandomState or None
        Shuffles the order each epoch (``rng.shuffle(order)``, the Python loop's draws).
    backup : array (3 P,) of params' dtype
        Work space: the state at the start of the epoch (``params`` then ``state``).
    run : float64 array (Run.WIDTH,)
        The rules' settings and memory, read and updated (:class:`fastnet._codes.Run`).
    costs : float64 array (E,)
        :math:`J_e` of each epoch run; ``E`` is the most epochs to run.
    times : float64 array (E, 3)
        Each epoch's wall seconds, its ``train_epoch``'s, and its order's and penalty's.

    Returns
    -------
    int
        The epochs run (the diverged one included; ``run[STATUS]`` says how the call ended).
    """
    from fastnet.reference import kernels
    return epoch_loop(kernels.train_epoch, kernels.penalty_value, params, sizes, kinds,
                      loss_kind, X, Y, order, batch_size, optimizer, lr, mu, rho, eps,
                      penalty_kind, lam, state, t, rng, backup, run, costs, times)


class EpochLoopKernels:
    """Mixin of a kernel table whose ``train_epochs`` is :func:`epoch_loop` around the table's
    own ``train_epoch`` and ``penalty_value`` (the tables for user activations)."""

    def train_epochs(self, params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer,
                     lr, mu, rho, eps, penalty_kind, lam, state, t, rng, backup, run, costs,
                     times):
        """Epochs of this table's ``train_epoch`` with the epoch loop's rules (see
        :func:`train_epochs`)."""
        return epoch_loop(self.train_epoch, self.penalty_value, params, sizes, kinds,
                          loss_kind, X, Y, order, batch_size, optimizer, lr, mu, rho, eps,
                          penalty_kind, lam, state, t, rng, backup, run, costs, times)

