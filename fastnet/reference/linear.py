r"""Linear and logistic regression by batch gradient descent: the course in numpy.

The course adds a bias column :math:`x_0 = 1` to the data; here ``X`` is
given without it and ``theta[0]`` is the bias, so
:math:`h_\theta(x) = \theta_0 + \theta_1 x_1 + \dots + \theta_n x_n`.

Linear regression: :math:`J(\theta) = \frac{1}{2m}\sum_i (h_\theta(x^{(i)}) - y^{(i)})^2`,
:math:`\nabla J = \frac{1}{m} X_1^T (X_1\theta - y)`.

Logistic regression: :math:`h_\theta(x) = \sigma(\theta^T x_1)`,
:math:`J(\theta) = -\frac{1}{m}\sum_i y^{(i)}\log h + (1 - y^{(i)})\log(1 - h)`,
:math:`\nabla J = \frac{1}{m} X_1^T (h - y)`.

Gradient descent repeats :math:`\theta \leftarrow \theta - \eta\nabla J` until the
cost changes by less than ``tol`` (or ``max_iter`` iterations).
"""
import numpy as np

from fastnet._validation import as_float_array, check_scalar, check_int, check_labels
from fastnet.reference.activations import Sigmoid
from fastnet.reference.losses import LOG_CLIP
from fastnet._history import History, DivergenceError, DivergenceGuard, COST_GROWTH, max_abs

__all__ = ["linear_cost", "linear_gradient", "linear_predict", "linear_regression",
           "logistic_cost", "logistic_gradient", "logistic_predict", "logistic_regression"]


def check_xy(X, y, *, binary=False, dtype=None):
    """Validate data for a linear model: X (m, n) (1-D means one feature), y (m,)."""
    try:
        Xa = np.asarray(X) if X is not None else X
    except ValueError:
        raise ValueError("X must be a rectangular (m, n) array of numbers (rows of one length), "
                         "got a ragged sequence") from None
    if Xa is not None and Xa.ndim == 1:
        Xa = Xa.reshape(-1, 1)
    X_ = as_float_array(Xa, "X", ndim=2, dtype=dtype)
    if binary:
        lab = check_labels(y, "y", n_samples=X_.shape[0], n_classes=2)
        y_ = lab.astype(X_.dtype)
    else:
        y_ = as_float_array(y, "y", ndim=1, dtype=X_.dtype)
        if y_.shape[0] != X_.shape[0]:
            raise ValueError(f"y has {y_.shape[0]} values but X has {X_.shape[0]} rows; expected "
                             f"one target per row of X")
    return X_, y_


def check_theta_vec(theta, n_features, dtype, name="theta"):
    """Validate a parameter vector of length n_features + 1 (bias first); None gives zeros."""
    if theta is None:
        return np.zeros(n_features + 1, dtype=dtype)
    t = as_float_array(theta, name, ndim=1, dtype=dtype, copy=True)
    if t.shape[0] != n_features + 1:
        raise ValueError(f"{name} has {t.shape[0]} entries; expected {n_features + 1} "
                         f"(bias theta[0] + one weight per column of X)")
    return t


def _h(theta, X):
    return X @ theta[1:] + theta[0]


def linear_cost(theta, X, y):
    r""":math:`J(\theta) = \frac{1}{2m}\lVert X_1\theta - y\rVert^2`."""
    X_, y_ = check_xy(X, y)
    theta = check_theta_vec(theta, X_.shape[1], X_.dtype)
    r = (_h(theta, X_) - y_).astype(np.float64)
    return float(r @ r / (2 * X_.shape[0]))


def linear_gradient(theta, X, y):
    r""":math:`\nabla J = \frac{1}{m} X_1^T (X_1\theta - y)` (entry 0 is the bias's)."""
    X_, y_ = check_xy(X, y)
    theta = check_theta_vec(theta, X_.shape[1], X_.dtype)
    r = _h(theta, X_) - y_
    return np.concatenate(([r.sum()], X_.T @ r)) / X_.shape[0]


def linear_predict(theta, X):
    """:math:`X_1\\theta`."""
    X_ = as_float_array(np.asarray(X).reshape(-1, 1) if np.ndim(X) == 1 else X, "X", ndim=2)
    theta = check_theta_vec(theta, X_.shape[1], X_.dtype)
    return _h(theta, X_)


def logistic_cost(theta, X, y):
    r"""Cross-entropy :math:`-\frac{1}{m}\sum y\log h + (1-y)\log(1-h)` (logs clipped)."""
    X_, y_ = check_xy(X, y, binary=True)
    theta = check_theta_vec(theta, X_.shape[1], X_.dtype)
    h = Sigmoid.f(_h(theta, X_)).astype(np.float64)
    return float(np.mean(-y_ * np.log(np.maximum(h, LOG_CLIP))
                         - (1 - y_) * np.log(np.maximum(1 - h, LOG_CLIP))))


def logistic_gradient(theta, X, y):
    r""":math:`\nabla J = \frac{1}{m} X_1^T(\sigma(X_1\theta) - y)`."""
    X_, y_ = check_xy(X, y, binary=True)
    theta = check_theta_vec(theta, X_.shape[1], X_.dtype)
    r = Sigmoid.f(_h(theta, X_)) - y_
    return np.concatenate(([r.sum()], X_.T @ r)) / X_.shape[0]


def logistic_predict(theta, X, threshold=0.5):
    """Labels 0/1: 1 where :math:`\\sigma(X_1\\theta) \\ge` ``threshold``."""
    X_ = as_float_array(np.asarray(X).reshape(-1, 1) if np.ndim(X) == 1 else X, "X", ndim=2)
    theta = check_theta_vec(theta, X_.shape[1], X_.dtype)
    threshold = check_scalar(threshold, "threshold", lo=0, hi=1)
    return (Sigmoid.f(_h(theta, X_)) >= threshold).astype(np.int64)


def check_gd_args(lr, tol, max_iter):
    return (check_scalar(lr, "lr", lo=0, lo_open=True), check_scalar(tol, "tol", lo=0),
            check_int(max_iter, "max_iter", lo=1))


def finish(theta, history, n, lr, tol, start_weight=0.0):
    """History of a gradient-descent run, or DivergenceError when it diverged.

    The rule is :class:`fastnet._history.DivergenceGuard`'s, applied after the
    run (the descent loop runs inside one kernel call): a non-finite cost or
    weight, or a final cost above twice its best and above the start while the
    largest weight is ten times its start (``start_weight``, at least 1),
    reported at the iteration where the cost first climbed that high.
    ``theta`` is the trainer's copy: the user's starting vector is untouched.
    """
    J = history[:n]
    hint = "or standardise the features"
    if not np.all(np.isfinite(J)) or not np.isfinite(theta).all():
        bad = int(np.argmin(np.isfinite(J))) if not np.all(np.isfinite(J)) else n - 1
        what = f"the cost became {J[bad]}" if not np.isfinite(J[bad]) else \
            "the weights became infinite or NaN"
        raise DivergenceError(f"gradient descent diverged at iteration {bad + 1}: {what}; "
                              f"try a smaller learning rate than lr={lr:g} ({hint})",
                              epoch=bad + 1, cost=float(J[bad]))
    guard = DivergenceGuard(J[0], start_weight, lr, unit="iteration", hint=hint)
    guard.best = float(np.min(J))
    if n >= 2 and guard.runaway(float(J[-1]), max_abs([theta])):
        best_before = np.minimum.accumulate(J)
        climbed = (J[1:] > COST_GROWTH * best_before[:-1]) & (J[1:] > J[0])
        first = int(np.argmax(climbed)) + 1 if climbed.any() else n - 1
        guard.best = float(best_before[first - 1])
        try:
            guard.check(first + 1, float(J[first]), max_abs([theta]))
        except DivergenceError as exc:
            raise DivergenceError(f"gradient descent {str(exc)[len('training '):]}",
                                  epoch=exc.epoch, cost=exc.cost) from None
    hist = History(J=[float(v) for v in J])
    hist["epochs"] = n
    # stopped on tol (possibly on the very last allowed iteration)
    hist["converged"] = bool(n >= 2 and abs(J[n - 1] - J[n - 2]) < tol)
    return theta, hist


def _gd(X, y, theta, lr, tol, max_iter, logistic):
    """The course's loop, written out (the oracle of the ``linear_gd`` kernel)."""
    m = X.shape[0]
    t = theta.dtype.type
    history = np.empty(max_iter)
    for it in range(max_iter):
        h = _h(theta, X)
        if logistic:
            h = Sigmoid.f(h)
            h64 = h.astype(np.float64)
            J = float(np.sum(-y * np.log(np.maximum(h64, LOG_CLIP))
                             - (1 - y) * np.log(np.maximum(1 - h64, LOG_CLIP))) / m)
        else:
            r = (h - y).astype(np.float64)
            J = 0.5 * float(r @ r) / m
        history[it] = J
        if not np.isfinite(J):
            return it + 1, history
        r = h - y
        theta[0] -= t(lr) * (r.sum() / t(m))
        theta[1:] -= t(lr) * ((X.T @ r) / t(m))
        if it >= 1 and abs(history[it] - history[it - 1]) < tol:
            return it + 1, history
    return max_iter, history


def linear_regression(X, y, lr=0.01, tol=1e-9, max_iter=100_000, theta=None):
    """Fit linear regression by batch gradient descent.

    Parameters
    ----------
    X : array (m, n) or (m,)
        Features, without the bias column.
    y : array (m,)
    lr : float > 0
    tol : float >= 0
        Stop when the cost changes by less than ``tol``.
    max_iter : int >= 1
    theta : array (n + 1,), optional
        Starting point (zeros by default); not modified.

    Returns
    -------
    theta : ndarray (n + 1,)
        Bias first.
    history : History
        ``history['J']``: the cost at each iteration.
    """
    return _fit(X, y, lr, tol, max_iter, theta, False)


def logistic_regression(X, y, lr=0.1, tol=1e-9, max_iter=100_000, theta=None):
    """Fit logistic regression (labels 0/1) by batch gradient descent.

    Parameters and result as :func:`linear_regression`.
    """
    return _fit(X, y, lr, tol, max_iter, theta, True)


def _fit(X, y, lr, tol, max_iter, theta, logistic):
    X_, y_ = check_xy(X, y, binary=logistic)
    lr, tol, max_iter = check_gd_args(lr, tol, max_iter)
    theta = check_theta_vec(theta, X_.shape[1], X_.dtype)
    start = max_abs([theta])
    with np.errstate(over="ignore", invalid="ignore"):  # divergence: raised by finish()
        n, history = _gd(X_, y_, theta, lr, tol, max_iter, logistic)
    return finish(theta, history, n, lr, tol, start)
