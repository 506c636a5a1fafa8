"""Linear and logistic regression by gradient descent on the active backend.

Same functions and results as :mod:`fastnet.reference.linear`; the descent
loop is the backend's ``linear_gd`` kernel (no Python per iteration).
"""
import numpy as np

from fastnet import _backend
from fastnet.reference.linear import (linear_cost, linear_gradient, linear_predict, logistic_cost,
                                      logistic_gradient, logistic_predict, check_xy,
                                      check_theta_vec, check_gd_args, finish)

__all__ = ["linear_cost", "linear_gradient", "linear_predict", "linear_regression",
           "logistic_cost", "logistic_gradient", "logistic_predict", "logistic_regression"]


def _fit(X, y, lr, tol, max_iter, theta, logistic):
    X_, y_ = check_xy(X, y, binary=logistic)
    lr, tol, max_iter = check_gd_args(lr, tol, max_iter)
    theta = check_theta_vec(theta, X_.shape[1], X_.dtype)
    start = float(np.max(np.abs(theta))) if theta.size else 0.0
    history = np.empty(max_iter, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # divergence: raised by finish()
        n = _backend.kernels().linear_gd(X_, y_, theta, lr, tol, max_iter, logistic, history)
    return finish(theta, history, int(n), lr, tol, start)


def linear_regression(X, y, lr=0.01, tol=1e-9, max_iter=100_000, theta=None):
    """Fit linear regression by batch gradient descent (see :func:`fastnet.reference.linear_regression`)."""
    return _fit(X, y, lr, tol, max_iter, theta, False)


def logistic_regression(X, y, lr=0.1, tol=1e-9, max_iter=100_000, theta=None):
    """Fit logistic regression by batch gradient descent (see :func:`fastnet.reference.logistic_regression`)."""
    return _fit(X, y, lr, tol, max_iter, theta, True)
