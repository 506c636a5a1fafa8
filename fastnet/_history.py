"""What a training run returns, and how it fails: shared by the API and the reference.

* :class:`History`: the per-epoch record every training loop returns;
* :class:`DivergenceError`: raised when training diverges;
* :func:`check_finite_cost`: the one place that raises it for a non-finite cost.
"""
import numpy as np

__all__ = ["History", "DivergenceError", "check_finite_cost"]


class DivergenceError(ValueError):
    """Training stopped because the cost became NaN or infinite."""


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


def check_finite_cost(J, epoch, lr):
    if not np.isfinite(J):
        raise DivergenceError(
            f"training diverged at epoch {epoch}: the cost became {J}; try a smaller learning "
            f"rate than lr={lr:g} (or scale the inputs)")
