r"""Linear and logistic regression by batch gradient descent, and the perceptron rule.

:func:`gd_pass` makes one pass over (a block of rows of) X per iteration: four rows at a time,
their predictions :math:`h_s = x_s\cdot\theta_{1:} + \theta_0` (four dot
products sharing each load of :math:`\theta`), their residuals
:math:`r_s = h_s - y_s` (through the sigmoid for logistic regression) and
the gradient update :math:`g \mathrel{+}= \sum_s r_s x_s` (one load and
store of :math:`g` per four rows) while the four rows are still in L1.  The
numpy reference reads X twice per iteration (``X @ theta`` then
``X.T @ r``).  The cost is accumulated in float64 from the dtype's values,
as the reference's.  :func:`linear_gd` runs the iterations serially; for
large X the wrapper (:func:`fastnet._numba.network.linear_gd`) runs each
iteration's pass on blocks of rows on threads and :func:`gd_step` on their
summed gradient.
"""
import numpy as np
from numba import njit, prange

from fastnet._numba import _vmath
from fastnet._numba._common import JIT, JIT_FAST, LOG_CLIP


@njit(**JIT)
def _cost(logistic, h, y):
    """One sample's term of the cost (float64): squared residual or clipped cross-entropy."""
    if not logistic:
        r = np.float64(h) - np.float64(y)
        return r * r
    yi = np.float64(y)
    hi = np.float64(h)
    ph = LOG_CLIP if hi < LOG_CLIP else hi
    qh = 1.0 - hi
    pq = LOG_CLIP if qh < LOG_CLIP else qh
    if yi == 1.0:
        return -np.log(ph)
    if yi == 0.0:
        return -np.log(pq)
    return -yi * np.log(ph) - (1.0 - yi) * np.log(pq)


@njit(**JIT_FAST)
def gd_pass(X, y, theta, g, logistic, lo, hi):
    """``g =`` :math:`\\sum_i r_i x_i` over rows ``lo:hi``; returns ``(sum r_i, cost sum)``
    at the current theta (the cost sum in float64)."""
    n = X.shape[1]
    T = theta.dtype.type
    w = theta[1:]
    b = theta[0]
    for j in range(n):
        g[j] = T(0)
    rsum = T(0)
    J = 0.0
    i = lo
    while i + 4 <= hi:
        x0, x1, x2, x3 = X[i], X[i + 1], X[i + 2], X[i + 3]
        h0 = T(0)
        h1 = T(0)
        h2 = T(0)
        h3 = T(0)
        for j in range(n):
            wj = w[j]
            h0 += x0[j] * wj
            h1 += x1[j] * wj
            h2 += x2[j] * wj
            h3 += x3[j] * wj
        h0 += b
        h1 += b
        h2 += b
        h3 += b
        if logistic:
            h0 = _vmath.sigmoid(h0)
            h1 = _vmath.sigmoid(h1)
            h2 = _vmath.sigmoid(h2)
            h3 = _vmath.sigmoid(h3)
        J += (_cost(logistic, h0, y[i]) + _cost(logistic, h1, y[i + 1])) + \
            (_cost(logistic, h2, y[i + 2]) + _cost(logistic, h3, y[i + 3]))
        r0 = h0 - y[i]
        r1 = h1 - y[i + 1]
        r2 = h2 - y[i + 2]
        r3 = h3 - y[i + 3]
        rsum += (r0 + r1) + (r2 + r3)
        for j in range(n):
            g[j] += (r0 * x0[j] + r1 * x1[j]) + (r2 * x2[j] + r3 * x3[j])
        i += 4
    while i < hi:
        xi = X[i]
        h = T(0)
        for j in range(n):
            h += xi[j] * w[j]
        h += b
        if logistic:
            h = _vmath.sigmoid(h)
        J += _cost(logistic, h, y[i])
        r = h - y[i]
        rsum += r
        for j in range(n):
            g[j] += r * xi[j]
        i += 1
    return rsum, J


@njit(**JIT)
def gd_step(theta, g, rsum, J, m, lr, tol, logistic, history, it):
    """Record iteration ``it``'s cost and step theta from the summed ``g`` and ``rsum``.

    Returns True when gradient descent stops here (cost not finite: no step;
    or the cost changed by less than ``tol``), as the reference.
    """
    T = theta.dtype.type
    lrt = T(lr)
    mt = T(m)
    J = J / m if logistic else 0.5 * J / m
    history[it] = J
    if not np.isfinite(J):
        return True
    theta[0] -= lrt * (rsum / mt)
    for j in range(g.shape[0]):
        theta[1 + j] -= lrt * (g[j] / mt)
    return it >= 1 and abs(history[it] - history[it - 1]) < tol


@njit(**JIT)
def linear_gd(X, y, theta, lr, tol, max_iter, logistic, history):
    """The contract's ``linear_gd`` (see :func:`fastnet.reference.kernels.linear_gd`), serial."""
    m, n = X.shape
    g = np.zeros(n, theta.dtype)
    for it in range(max_iter):
        rsum, J = gd_pass(X, y, theta, g, logistic, 0, m)
        if gd_step(theta, g, rsum, J, m, lr, tol, logistic, history, it):
            return it + 1
    return max_iter


@njit(**JIT)
def sum_rows(G, out):
    """``out = G[0] + G[1] + ...`` in row order."""
    for j in range(out.shape[0]):
        out[j] = G[0, j]
    for b in range(1, G.shape[0]):
        for j in range(out.shape[0]):
            out[j] += G[b, j]


@njit(**JIT_FAST)
def _row_dot(x, w):
    s = x.dtype.type(0)
    for j in range(x.shape[0]):
        s += x[j] * w[j]
    return s


@njit(**JIT)
def perceptron_train(X, y, w, epochs, lr, errors):
    """The contract's ``perceptron_train`` (sample by sample, in place)."""
    m, n = X.shape
    T = w.dtype.type
    lrt = T(lr)
    one = T(1)
    zero = T(0)
    for e in range(epochs):
        n_err = 0
        for i in range(m):
            xi = X[i]
            s = w[0] + _row_dot(xi, w[1:])
            pred = one if s >= zero else zero
            upd = lrt * (y[i] - pred)
            if upd != zero:
                for j in range(n):
                    w[1 + j] += upd * xi[j]
                w[0] += upd
                n_err += 1
        errors[e] = n_err
        if n_err == 0:
            return e + 1
    return epochs


@njit(parallel=True, **JIT)
def linear_gd_blocks(X, y, theta, lr, tol, max_iter, logistic, history, nb):
    """:func:`linear_gd` with each iteration's pass over X cut into ``nb`` blocks of rows on
    Numba's threads (``prange``; the caller sets ``numba.set_parallel_chunksize(1)`` so that
    they are handed out one block at a time and a thread slowed by another process does fewer;
    set inside, the kernel could not be cached), each summing into its own row of a buffer,
    added in block order before the step.  The numbers depend on ``nb`` only.  One compiled
    call for all the iterations: no Python between them."""
    m, n = X.shape
    G = np.zeros((nb, n), theta.dtype)
    g = np.zeros(n, theta.dtype)
    rs = np.zeros(nb, theta.dtype)
    Js = np.zeros(nb)
    it = 0
    while it < max_iter:
        for b in prange(nb):
            rs[b], Js[b] = gd_pass(X, y, theta, G[b], logistic, (m * b) // nb,
                                   (m * (b + 1)) // nb)
        sum_rows(G, g)
        rsum = theta.dtype.type(0)
        J = 0.0
        for b in range(nb):
            rsum += rs[b]
            J += Js[b]
        it += 1
        if gd_step(theta, g, rsum, J, m, lr, tol, logistic, history, it - 1):
            break
    return it
