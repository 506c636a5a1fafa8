r"""Elementwise numba kernels: activations, their derivatives, losses and output error terms.

The building blocks of both network paths (:mod:`fastnet._numba._dense`,
:mod:`fastnet._numba._sparse`) and the implementations of the contract's
``activation``, ``activation_grad`` and ``loss``.  One loop per activation
(the code is tested outside the loop), so each loop vectorises; ``exp`` and
``tanh`` are the vectorisable ones of :mod:`fastnet._numba._vmath`.

* :func:`bias_act_rows` -- the forward epilogue of a layer:
  :math:`A = f(Z + b)` row by row, in place (softmax over each row);
* :func:`mul_dact` -- the hidden error term's epilogue :math:`D \mathrel{*}= f'(A)`,
  the derivative taken from the activation's output (:func:`~fastnet._numba._common.dact_from_a`);
* :func:`loss_delta_rows` -- each row's loss (float64) and output error term:
  :math:`a - y` for sigmoid + cross-entropy and softmax + log-loss, otherwise
  :math:`\ell'(a) f'(z)` with the derivative of the clipped loss.
"""
import numpy as np
from numba import njit

from fastnet._numba import _vmath
from fastnet._numba._common import (JIT, JIT_FAST, LOG_CLIP, SIGMOID, RELU, TANH, SOFTMAX,
                                    CROSS_ENTROPY, QUADRATIC, LOG_LOSS, act, dact, dact_from_a,
                                    copy_into)


# ------------------------------------------------------------------ activations
@njit(**JIT)
def softmax_inplace(z):
    """``z[...] = softmax(z)`` of one row (max subtracted first)."""
    n = z.shape[0]
    mx = z[0]
    for k in range(1, n):
        if z[k] > mx:
            mx = z[k]
    s = z.dtype.type(0)
    for k in range(n):
        e = _vmath.exp(z[k] - mx)
        z[k] = e
        s += e
    inv = z.dtype.type(1) / s
    for k in range(n):
        z[k] = z[k] * inv


@njit(**JIT)
def bias_act_row(kind, z, b):
    """``z[k] = f(z[k] + b[k])`` for one row, in place."""
    n = z.shape[0]
    if kind == SIGMOID:
        for k in range(n):
            z[k] = _vmath.sigmoid(z[k] + b[k])
    elif kind == TANH:
        for k in range(n):
            z[k] = _vmath.tanh(z[k] + b[k])
    elif kind == RELU:
        zero = z.dtype.type(0)
        for k in range(n):
            v = z[k] + b[k]
            z[k] = v if v > zero else zero
    else:
        for k in range(n):
            z[k] = z[k] + b[k]
        if kind == SOFTMAX:
            softmax_inplace(z)


@njit(**JIT)
def bias_act_rows(kind, Z, b):
    """:math:`Z \\leftarrow f(Z + b)` for every row of the 2-D ``Z``."""
    for r in range(Z.shape[0]):
        bias_act_row(kind, Z[r], b)


@njit(**JIT)
def act_inplace(kind, z):
    """``z[...] = f(z)`` in place for a 1-D ``z`` (softmax over the whole vector)."""
    n = z.shape[0]
    if kind == SIGMOID:
        for k in range(n):
            z[k] = _vmath.sigmoid(z[k])
    elif kind == TANH:
        for k in range(n):
            z[k] = _vmath.tanh(z[k])
    elif kind == RELU:
        zero = z.dtype.type(0)
        for k in range(n):
            z[k] = z[k] if z[k] > zero else zero
    elif kind == SOFTMAX:
        softmax_inplace(z)


@njit(**JIT)
def mul_dact(kind, d, a):
    """``d[k] *= f'(a[k])`` over two 1-D arrays (flattened matrices of one shape)."""
    n = d.shape[0]
    one = d.dtype.type(1)
    zero = d.dtype.type(0)
    if kind == SIGMOID:
        for k in range(n):
            d[k] = d[k] * (a[k] * (one - a[k]))
    elif kind == TANH:
        for k in range(n):
            d[k] = d[k] * (one - a[k] * a[k])
    elif kind == RELU:
        for k in range(n):
            d[k] = d[k] if a[k] > zero else zero


@njit(**JIT)
def activation_flat(kind, z, out):
    """``out = f(z)`` elementwise, 1-D (not softmax)."""
    n = z.shape[0]
    if kind == SIGMOID:
        for k in range(n):
            out[k] = _vmath.sigmoid(z[k])
    elif kind == TANH:
        for k in range(n):
            out[k] = _vmath.tanh(z[k])
    else:
        for k in range(n):
            out[k] = act(kind, z[k])


@njit(**JIT)
def activation_grad_flat(kind, z, out):
    """``out = f'(z)`` elementwise, 1-D."""
    for k in range(z.shape[0]):
        out[k] = dact(kind, z[k])


@njit(**JIT)
def softmax_rows(Z, out):
    """``out[r] = softmax(Z[r])`` for every row."""
    for r in range(Z.shape[0]):
        o = out[r]
        copy_into(o, Z[r])
        softmax_inplace(o)


# ------------------------------------------------------------------------ losses
@njit(**JIT)
def loss_row(loss_kind, a, y):
    """The loss of one sample (float64), logs clipped at LOG_CLIP.

    For 0/1 targets the clipped probabilities are multiplied and one log is
    taken (rescaled before it could underflow): the same sum as the course's
    per-output logs, up to rounding.
    """
    n = a.shape[0]
    total = 0.0
    if loss_kind == QUADRATIC:
        for k in range(n):
            d = np.float64(a[k]) - np.float64(y[k])
            total += 0.5 * d * d
        return total
    prod = 1.0
    for k in range(n):
        ak = np.float64(a[k])
        yk = np.float64(y[k])
        pa = LOG_CLIP if ak < LOG_CLIP else ak          # NaN stays NaN
        if loss_kind == CROSS_ENTROPY:
            qa = 1.0 - ak
            pq = LOG_CLIP if qa < LOG_CLIP else qa
            if yk == 0.0:
                prod *= pq
            elif yk == 1.0:
                prod *= pa
            else:
                total += -yk * np.log(pa) - (1.0 - yk) * np.log(pq)
        else:
            if yk == 1.0:
                prod *= pa
            elif yk != 0.0:
                total += -yk * np.log(pa)
        if prod < 1e-250:
            total -= np.log(prod)
            prod = 1.0
    return total - np.log(prod)


@njit(**JIT)
def loss_sum(loss_kind, A, Y):
    """Summed loss of every row (float64)."""
    total = 0.0
    for r in range(A.shape[0]):
        total += loss_row(loss_kind, A[r], Y[r])
    return total


@njit(**JIT)
def loss_delta(kind, loss_kind, a, y, delta):
    """Loss of one sample (float64) and its output error term into ``delta[:len(a)]``."""
    n = a.shape[0]
    total = loss_row(loss_kind, a, y)
    if (kind == SIGMOID and loss_kind == CROSS_ENTROPY) or (kind == SOFTMAX
                                                            and loss_kind == LOG_LOSS):
        for k in range(n):
            delta[k] = a[k] - y[k]
        return total
    one = a.dtype.type(1)
    zero = a.dtype.type(0)
    clip = a.dtype.type(LOG_CLIP)
    for k in range(n):
        ak = a[k]
        yk = y[k]
        if loss_kind == QUADRATIC:
            g = ak - yk
        else:
            g = -yk / ak if ak > clip else zero
            if loss_kind == CROSS_ENTROPY:
                qa = one - ak
                g += (one - yk) / qa if qa > clip else zero
        delta[k] = g * dact_from_a(kind, ak)
    return total


@njit(**JIT)
def loss_delta_rows(kind, loss_kind, A, Y, D):
    """Summed loss (float64) of the rows of ``A`` against ``Y``; their error terms into ``D``."""
    total = 0.0
    for r in range(A.shape[0]):
        total += loss_delta(kind, loss_kind, A[r], Y[r], D[r])
    return total


@njit(**JIT_FAST)
def col_sums_into(D, g):
    """``g[k] = sum_r D[r, k]`` (the bias gradient of a batch), rows in order."""
    n = g.shape[0]
    for k in range(n):
        g[k] = D.dtype.type(0)
    for r in range(D.shape[0]):
        d = D[r]
        for k in range(n):
            g[k] += d[k]
