r"""The course's losses and regularisation penalties, in numpy.

Losses take the network output ``a`` and the targets ``y`` (both
``(m, K)``, or 1-D for a single sample) and return the cost averaged over
the ``m`` samples and summed over the ``K`` outputs, as the course writes
it.  ``df(a, y)`` is the gradient of that cost with respect to ``a``.

Logs are clipped at :data:`LOG_CLIP` so that outputs of exactly 0 or 1 give
a finite cost; ``df`` is the exact derivative of the clipped cost (zero
where the clip is active).  Costs are computed in float64 whatever the
dtype of ``a``.

Penalties take one weight matrix ``Theta`` (bias in column 0, never
penalised) and the strength ``lam``.
"""
import numpy as np

from fastnet._codes import Loss, Penalty

__all__ = ["LOG_CLIP", "CrossEntropy", "Quadratic", "LogLoss", "L1", "L2",
           "LOSSES", "PENALTIES"]

#: Smallest argument given to ``log`` in the cross-entropy losses.
LOG_CLIP = 1e-15


def _pair(a, y):
    a = np.asarray(a, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if a.shape != y.shape:
        raise ValueError(f"a has shape {a.shape} but y has shape {y.shape}; expected equal shapes")
    m = a.shape[0] if a.ndim == 2 else 1
    return a, y, m


class CrossEntropy:
    r"""Binary cross-entropy summed over outputs, the course's cost:

    .. math:: J = \frac{1}{m}\sum_{i=1}^m \sum_{k=1}^K
              \left[-y_k^{(i)} \log a_k^{(i)} - (1 - y_k^{(i)}) \log(1 - a_k^{(i)})\right]
    """
    name, code = "cross_entropy", Loss.CROSS_ENTROPY

    @staticmethod
    def f(a, y):
        a, y, m = _pair(a, y)
        return float(np.sum(-y * np.log(np.maximum(a, LOG_CLIP))
                            - (1 - y) * np.log(np.maximum(1 - a, LOG_CLIP))) / m)

    @staticmethod
    def df(a, y):
        a, y, m = _pair(a, y)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(a > LOG_CLIP, -y / a, 0.0) + np.where(1 - a > LOG_CLIP, (1 - y) / (1 - a), 0.0)
        return g / m


class Quadratic:
    r"""Quadratic (squared error) cost :math:`J = \frac{1}{2m}\sum_i \lVert a^{(i)} - y^{(i)}\rVert^2`."""
    name, code = "quadratic", Loss.QUADRATIC

    @staticmethod
    def f(a, y):
        a, y, m = _pair(a, y)
        return float(0.5 * np.sum((a - y) ** 2) / m)

    @staticmethod
    def df(a, y):
        a, y, m = _pair(a, y)
        return (a - y) / m


class LogLoss:
    r"""Categorical log-loss (for a softmax output) :math:`J = -\frac{1}{m}\sum_i\sum_k y_k^{(i)}\log a_k^{(i)}`."""
    name, code = "log_loss", Loss.LOG_LOSS

    @staticmethod
    def f(a, y):
        a, y, m = _pair(a, y)
        return float(-np.sum(y * np.log(np.maximum(a, LOG_CLIP))) / m)

    @staticmethod
    def df(a, y):
        a, y, m = _pair(a, y)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > LOG_CLIP, -y / a, 0.0) / m


class L2:
    r"""Ridge penalty :math:`\frac{\lambda}{2}\sum_{j,k\ge1} \Theta_{jk}^2`, gradient :math:`\lambda\Theta` (bias column 0 excluded)."""
    name, code = "l2", Penalty.L2

    @staticmethod
    def f(theta, lam):
        w = np.asarray(theta, dtype=np.float64)[:, 1:]
        return float(lam / 2 * np.sum(w * w))

    @staticmethod
    def df(theta, lam):
        theta = np.asarray(theta)
        g = lam * theta
        g[:, 0] = 0
        return g


class L1:
    r"""Lasso penalty :math:`\lambda\sum_{j,k\ge1} |\Theta_{jk}|`, gradient :math:`\lambda\,\mathrm{sign}(\Theta)` (bias column 0 excluded)."""
    name, code = "l1", Penalty.L1

    @staticmethod
    def f(theta, lam):
        w = np.asarray(theta, dtype=np.float64)[:, 1:]
        return float(lam * np.sum(np.abs(w)))

    @staticmethod
    def df(theta, lam):
        theta = np.asarray(theta)
        g = lam * np.sign(theta)
        g[:, 0] = 0
        return g


LOSSES = {cls.name: cls for cls in (CrossEntropy, Quadratic, LogLoss)}
PENALTIES = {cls.name: cls for cls in (L2, L1)}
