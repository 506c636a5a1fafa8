r"""What a training run returns, how it fails, and the epoch loop: shared by the API and the reference.

* :class:`History`: the per-epoch record every training loop returns;
* :class:`DivergenceError`: raised when training diverges;
* :class:`DivergenceGuard`: the one divergence rule, for every model and loop;
* :class:`EpochRunner`: the one epoch loop (backups, divergence check and restore,
  ``tol`` stopping, callbacks), run by the compiled engine
  (:class:`fastnet.training.EpochTrainer`) and the reference's loop alike;
* :class:`HistoryRecorder`: the callback that fills a :class:`History`.

The divergence rule
-------------------
Training has diverged at epoch :math:`t` when

* its cost :math:`J_t` or any weight is not finite, or
* its cost grew by more than :data:`COST_GROWTH` over its best,
  :math:`J_t > 2\min_{s<t} J_s`, and is worse than before training,
  :math:`J_t > J_0`, while the weights blew up: the largest weight
  :math:`\max|w|` is at least :data:`WEIGHT_GROWTH` times its value before
  training (taken as at least 1).

The second case catches runaway training with a bounded output (sigmoid,
tanh): its cost never overflows, it only climbs while the weights grow by
orders of magnitude.  Either way training stops with :class:`DivergenceError`,
naming the epoch and suggesting a smaller learning rate, and the weights and
the optimiser's state are those of the last epoch that passed the rule (the
last finite one); when the first epoch fails, those before training.
"""
import math
import time

import numpy as np

__all__ = ["History", "DivergenceError", "DivergenceGuard", "EpochRunner", "HistoryRecorder",
           "check_finite_cost", "record_epochs", "COST_GROWTH", "WEIGHT_GROWTH", "START_SAMPLES",
           "max_abs"]

#: The divergence rule: a cost more than this factor over its best (and above the start)...
COST_GROWTH = 2.0
#: ...while the largest weight is this many times its starting size (at least 1).
WEIGHT_GROWTH = 10.0
#: The cost before training is measured on the first this-many samples (one cheap pass).
START_SAMPLES = 512


class DivergenceError(ValueError):
    """Training stopped because it diverged (see :class:`DivergenceGuard` for the rule).

    Attributes
    ----------
    epoch : int or None
        The epoch (or iteration) at which the rule fired.
    cost : float or None
        The cost at that epoch.
    """

    def __init__(self, message, *, epoch=None, cost=None):
        super().__init__(message)
        self.epoch = epoch
        self.cost = cost


class History(dict):
    """What a training loop recorded, one entry per epoch.

    Keys: ``'J'`` (cost), ``'train_acc'`` and ``'test_acc'`` (percent; present
    when test data were given), ``'seconds'`` (wall time of each epoch), and
    ``'epochs'`` (number of epochs run) and ``'converged'`` (stopped on ``tol``).
    """

    @property
    def J(self):
        return self["J"]

    def __repr__(self):
        n = self.get("epochs", len(self.get("J", [])))
        last = self["J"][-1] if self.get("J") else float("nan")
        return f"History(epochs={n}, J={last:.6g})"


def max_abs(arrays):
    """The largest :math:`|w|` over ``arrays`` (NaN when one of them is not finite).

    Two reductions per array and no temporary (``max`` and ``min`` propagate NaN).
    """
    top = 0.0
    for a in arrays:
        if a.size:
            v = max(float(a.max()), -float(a.min()))
            if not np.isfinite(v):
                return float("nan")
            top = max(top, v)
    return top


def _advice(lr, hint):
    return f"try a smaller learning rate than lr={lr:g}" + (f" ({hint})" if hint else "")


def check_finite_cost(J, epoch, lr, unit="epoch", hint="or scale the inputs"):
    """Raise :class:`DivergenceError` when the cost ``J`` is not finite."""
    if not np.isfinite(J):
        raise DivergenceError(f"training diverged at {unit} {epoch}: the cost became {J}; "
                              f"{_advice(lr, hint)}", epoch=epoch, cost=J)


class DivergenceGuard:
    """The divergence rule of one training run (see the module's docstring).

    Kept across ``partial_fit`` calls, so that a run made of many one-epoch
    calls is judged as one run.

    Parameters
    ----------
    start_cost : float
        :math:`J_0`, the cost before training.
    start_weight : float
        The largest :math:`|w|` before training.
    lr : float
        The learning rate (for the message).
    unit : str
        What one step of the run is called in messages (``'epoch'``, ``'iteration'``).
    hint : str
        Added to the advice (``'or scale the inputs'``).
    """

    def __init__(self, start_cost, start_weight, lr, *, unit="epoch",
                 hint="or scale the inputs"):
        self.start_cost = float(start_cost)
        self.best = float(start_cost) if np.isfinite(start_cost) else np.inf
        self.weight_limit = WEIGHT_GROWTH * max(1.0, float(start_weight))
        self.lr = lr
        self.unit = unit
        self.hint = hint

    def runaway(self, J, w_max):
        """Whether a finite cost ``J`` with largest weight ``w_max`` breaks the growth rule."""
        return (J > COST_GROWTH * self.best and J > self.start_cost
                and w_max >= self.weight_limit)

    def check_arrays(self, step, J, arrays):
        r""":meth:`check` with ``w_max`` the largest :math:`|w|` over ``arrays``, found only
        when the rule needs it (one BLAS dot product per array, :math:`\sum w^2`, tells that
        they are finite: twice as fast as a sum).

        Called inside ``np.errstate(over='ignore', invalid='ignore')`` (as the epoch loop
        does): a dot product that overflows is a case for the full check, not a warning."""
        cost_grew = J > COST_GROWTH * self.best and J > self.start_cost
        if math.isfinite(J) and not cost_grew:  # then only the weights' finiteness matters
            for a in arrays:
                total = float(np.vdot(a, a))
                if total - total != 0.0:  # inf or NaN somewhere (or a sum that overflowed)
                    break
            else:
                self.best = min(self.best, J)
                return
        self.check(step, J, max_abs(arrays))

    def check(self, step, J, w_max):
        """Raise :class:`DivergenceError` if step ``step`` (cost ``J``, largest weight ``w_max``) diverged."""
        if not np.isfinite(J) or not np.isfinite(w_max) or self.runaway(J, w_max):
            self.fail(step, J, w_max)
        self.best = min(self.best, J)

    def fail(self, step, J, w_max):
        """Raise the :class:`DivergenceError` of step ``step``, which broke the rule (cost
        ``J``, largest weight ``w_max``; as found by :meth:`check` or a ``train_epochs``
        kernel)."""
        if not np.isfinite(J) or not np.isfinite(w_max):
            what = f"the cost became {J}" if not np.isfinite(J) else \
                "the weights became infinite or NaN"
            raise DivergenceError(f"training diverged at {self.unit} {step}: {what}; "
                                  f"{_advice(self.lr, self.hint)}", epoch=step, cost=J)
        raise DivergenceError(
            f"training diverged at {self.unit} {step}: the cost grew to {J:.4g}, more than "
            f"{COST_GROWTH:g}x its best ({self.best:.4g}) and above its value before "
            f"training ({self.start_cost:.4g}), while the largest weight grew to "
            f"{w_max:.3g}; {_advice(self.lr, self.hint)}", epoch=step, cost=J)


class EpochRunner:
    """The epoch loop every network trainer shares.

    A subclass provides :meth:`_epoch` (one epoch, returning its cost),
    :meth:`_arrays` (every array an epoch changes in place: the weights and
    the optimiser's state), :meth:`_weights` (the weight arrays the rule
    checks), an int attribute ``t`` (the optimiser's step count) and
    :meth:`start_cost` (the cost before training).  :meth:`run_epochs` does
    the rest: it keeps the state at the start of each epoch and puts it back
    when the epoch diverges, so that a failed run leaves the weights of the
    last epoch that passed the rule, never non-finite ones.
    """

    guard = None
    lr = 0.0
    t = 0

    def _epoch(self, epoch):  # pragma: no cover - abstract
        raise NotImplementedError

    def _arrays(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _weights(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def start_cost(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def new_guard(self):
        """A :class:`DivergenceGuard` started from the current weights."""
        return DivergenceGuard(self.start_cost(), max_abs(self._weights()), self.lr)

    _backup = None

    def _snapshot(self):
        """Copy the state at the start of this epoch (one copy an epoch, into one buffer)."""
        arrays = self._arrays()
        if self._backup is None:
            self._backup = [np.empty_like(a) for a in arrays]
        for dst, src in zip(self._backup, arrays):
            np.copyto(dst, src)
        self._backup_t = self.t

    def _restore(self):
        for dst, src in zip(self._arrays(), self._backup):
            np.copyto(dst, src)
        self.t = self._backup_t

    def checked_epoch(self, epoch=1):
        """Run one epoch and apply the divergence rule; return its cost.

        Raises
        ------
        DivergenceError
            The state (weights, optimiser state, step count) is put back to
            the start of this epoch: the end of the last epoch that passed the
            rule.
        """
        # a diverging run overflows: that is caught by the rule, not warned about
        with np.errstate(over="ignore", invalid="ignore"):
            return self._guarded_epoch(epoch)

    def _guarded_epoch(self, epoch):
        # checked_epoch's work, inside the caller's np.errstate (checked_epoch's or run_epochs')
        if self.guard is None:
            self.guard = self.new_guard()
        self._snapshot()
        J = float(self._epoch(epoch))
        try:
            self.guard.check_arrays(epoch, J, self._weights())
        except DivergenceError:
            self._restore()
            raise
        return J

    def run_epochs(self, epochs, *, tol=None, n_iter_no_change=1, callbacks=(), first_epoch=1):
        """Run up to ``epochs`` epochs.

        Stops early when ``tol`` is given and the cost changed by less than
        ``tol`` (:math:`|J_t - J_{t-1}| < tol`) for ``n_iter_no_change``
        consecutive epochs (1: the course's rule), or when a callback
        ``cb(epoch, J)`` returns True (every callback is called each epoch,
        in order; one with a ``start()`` method has it called first).

        Returns
        -------
        epochs_run : int
        converged : bool
            Stopped on ``tol``.
        """
        if self.guard is None:
            self.guard = self.new_guard()
        for cb in callbacks:
            getattr(cb, "start", lambda: None)()
        # one errstate for the whole run, callbacks included: a diverging run overflows, and
        # that is the rule's case, not a warning (the callbacks are fastnet's own: history,
        # accuracy, validation, schedules)
        with np.errstate(over="ignore", invalid="ignore"):
            prev = None
            calm = 0
            n = 0
            for epoch in range(first_epoch, first_epoch + epochs):
                J = self._guarded_epoch(epoch)
                n += 1
                stop = False
                for cb in callbacks:  # every one is called, in order
                    stop = bool(cb(epoch, J)) or stop
                if stop:
                    return n, False
                if tol is not None and prev is not None:
                    calm = calm + 1 if abs(J - prev) < tol else 0
                    if calm >= n_iter_no_change:
                        return n, True
                prev = J
        return n, False

def record_epochs(history, costs, seconds):
    """Append the costs and wall seconds of epochs run by a ``train_epochs`` kernel to
    ``history['J']`` and ``history['seconds']``."""
    history["J"].extend(costs.tolist())
    history["seconds"].extend(seconds.tolist())


class HistoryRecorder:
    """The callback that records each epoch into a :class:`History`.

    ``accuracies()``, when given, returns ``(train_acc, test_acc)`` in
    percent for the current weights; ``verbose`` prints a line every
    ``verbose`` epochs.
    """

    def __init__(self, accuracies=None, verbose=0):
        self.history = History(J=[], seconds=[])
        self.accuracies = accuracies
        if accuracies is not None:
            self.history["train_acc"], self.history["test_acc"] = [], []
        self.verbose = verbose
        self._clock = time.perf_counter()

    def start(self):
        """Called by :meth:`EpochRunner.run_epochs` just before the first epoch."""
        self._clock = time.perf_counter()

    @property
    def fused(self):
        """Whether a compiled epoch loop may run the epochs and hand their costs to
        :meth:`record_epochs` afterwards (nothing to compute or print per epoch)."""
        return self.accuracies is None and not self.verbose

    def record_epochs(self, first_epoch, costs, seconds):
        """Record epochs ``first_epoch, first_epoch + 1, ...`` run by a compiled loop."""
        record_epochs(self.history, costs, seconds)

    def __call__(self, epoch, J):
        h = self.history
        h["J"].append(J)
        if self.accuracies is not None:
            train_acc, test_acc = self.accuracies()
            h["train_acc"].append(train_acc)
            h["test_acc"].append(test_acc)
        now = time.perf_counter()
        h["seconds"].append(now - self._clock)
        self._clock = now
        if self.verbose and epoch % self.verbose == 0:
            print(f"epoch {epoch}: J = {J:.6f}")
        return False

    def finish(self, converged):
        """The history, with ``'epochs'`` and ``'converged'`` filled in."""
        self.history["epochs"] = len(self.history["J"])
        self.history["converged"] = bool(converged)
        return self.history
