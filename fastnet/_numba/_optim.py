r"""The optimiser steps and weight penalties of the numba backend: one definition of each.

:func:`step_range` holds the update rule of each optimiser (as
:func:`fastnet.reference.kernels.optimizer_step`), applied to a range of the
flat vector from a summed gradient with the penalty's gradient folded into
the same loop (one pass over ``params``, ``grad`` and ``state``);
:func:`step_network` runs it over every layer with the bias rows
unpenalised.  The contract's ``optimizer_step`` and every training epoch use
these; :func:`penalty_value` and :func:`penalty_grad` are the contract's.
The optimiser is tested outside the loops (one loop per optimiser), so each
loop vectorises.
"""
import numpy as np
from numba import njit

from fastnet._numba._common import JIT, JIT_FAST, L1, L2, MOMENTUM, RMSPROP, ADAM, NESTEROV


@njit(**JIT)
def adam_lr(lr, beta1, beta2, t):
    r"""Adam's corrected step :math:`\eta\sqrt{1-\beta_2^{t+1}}/(1-\beta_1^{t+1})` (float64)."""
    k = np.float64(t) + 1.0
    return lr * np.sqrt(1.0 - beta2 ** k) / (1.0 - beta1 ** k)


@njit(**JIT_FAST)
def step_range(optimizer, p, G, s1, s2, lo, hi, scale, l2, l1, lr, mu, rho, eps, lr_t, reset):
    r"""``p[lo:hi]`` (and the state ``s1``, ``s2``) after one step of ``optimizer`` from the
    gradient :math:`g = \mathrm{scale}\cdot G + \lambda_2 w + \lambda_1 \mathrm{sign}(w)`.

    * SGD: :math:`w \leftarrow w - \eta g`
    * MOMENTUM: :math:`v \leftarrow \mu v - \eta g,\; w \leftarrow w + v`
    * NESTEROV: :math:`v \leftarrow \mu v - \eta g,\; w \leftarrow w + \mu v - \eta g`
    * RMSPROP: :math:`s \leftarrow \rho s + (1-\rho) g^2,\;
      w \leftarrow w - \eta g / (\sqrt{s} + \epsilon)`
    * ADAM (:math:`\beta_1=\mu, \beta_2=\rho`): :math:`m \leftarrow \beta_1 m + (1-\beta_1) g,\;
      v \leftarrow \beta_2 v + (1-\beta_2) g^2,\; w \leftarrow w - \eta_t m / (\sqrt{v} + \epsilon)`

    as :func:`fastnet.reference.kernels.optimizer_step`; every scalar is of the
    dtype of ``p``.  ``reset`` zeroes ``G[lo:hi]`` after (for gradients
    accumulated in place).  One loop per optimiser, the state read and written
    only by those that have one; the loops are indexed from 0 on views (so
    they vectorise).
    """
    one = p.dtype.type(1)
    zero = p.dtype.type(0)
    p = p[lo:hi]
    G = G[lo:hi]
    s1 = s1[lo:hi]
    s2 = s2[lo:hi]
    n = hi - lo
    if optimizer == MOMENTUM or optimizer == NESTEROV:
        nesterov = optimizer == NESTEROV
        for i in range(n):
            g = G[i] * scale + l2 * p[i] + l1 * np.sign(p[i])
            v = s1[i] * mu
            v -= lr * g
            s1[i] = v
            p[i] += (mu * v - lr * g) if nesterov else v
    elif optimizer == RMSPROP:
        for i in range(n):
            g = G[i] * scale + l2 * p[i] + l1 * np.sign(p[i])
            s = s1[i] * rho
            s += (one - rho) * g * g
            s1[i] = s
            p[i] -= lr * g / (np.sqrt(s) + eps)
    elif optimizer == ADAM:
        for i in range(n):
            g = G[i] * scale + l2 * p[i] + l1 * np.sign(p[i])
            m = s1[i] * mu
            m += (one - mu) * g
            v = s2[i] * rho
            v += (one - rho) * g * g
            s1[i] = m
            s2[i] = v
            p[i] -= lr_t * m / (np.sqrt(v) + eps)
    else:
        for i in range(n):
            p[i] -= lr * (G[i] * scale + l2 * p[i] + l1 * np.sign(p[i]))
    if reset:
        for i in range(n):
            G[i] = zero


@njit(**JIT)
def step_network(params, G, state, sizes, offs, B, optimizer, lr, mu, rho, eps, penalty, lam,
                 t, reset):
    r"""One step of every layer from the gradient ``G`` summed over ``B`` samples.

    :math:`g = G/B` plus the penalty's gradient on the weight rows (never on
    the bias rows), then the optimiser's rule; ``t`` is the number of steps
    taken before (Adam's bias correction).  ``state`` holds ``2 * len(params)``
    entries (the contract's layout).
    """
    T = params.dtype.type
    P = params.shape[0]
    s1 = state[:P]
    s2 = state[P:]
    scale = T(1) / T(B)
    lamt = T(lam)
    zero = T(0)
    l2 = lamt if penalty == L2 else zero
    l1 = lamt if penalty == L1 else zero
    lr_t = T(adam_lr(lr, mu, rho, t)) if optimizer == ADAM else T(lr)
    lrT, muT, rhoT, epsT = T(lr), T(mu), T(rho), T(eps)
    for l in range(sizes.shape[0] - 1):
        o = offs[l]
        wo = o + sizes[l + 1]
        step_range(optimizer, params, G, s1, s2, o, wo, scale, zero, zero, lrT, muT, rhoT, epsT,
                   lr_t, reset)
        step_range(optimizer, params, G, s1, s2, wo, offs[l + 1], scale, l2, l1, lrT, muT, rhoT,
                   epsT, lr_t, reset)


@njit(**JIT)
def optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps, t):
    """The contract's ``optimizer_step`` on the flat vectors (no penalty, ``g = grad``)."""
    T = params.dtype.type
    P = params.shape[0]
    lr_t = T(adam_lr(lr, mu, rho, t)) if optimizer == ADAM else T(lr)
    zero = T(0)
    step_range(optimizer, params, grad, state[:P], state[P:], 0, P, T(1), zero, zero, T(lr),
               T(mu), T(rho), T(eps), lr_t, False)


@njit(**JIT)
def penalty_value(penalty, lam, params, sizes, offs):
    r"""The penalty of the weight rows (float64).

    L2: :math:`\frac{\lambda}{2}\sum w^2`, L1: :math:`\lambda\sum|w|` (bias rows excluded).
    """
    total = 0.0
    for l in range(sizes.shape[0] - 1):
        s = 0.0
        w = params[offs[l] + sizes[l + 1]:offs[l + 1]]
        for p in range(w.shape[0]):
            wp = np.float64(w[p])
            s += wp * wp if penalty == L2 else abs(wp)
        total += lam / 2 * s if penalty == L2 else lam * s
    return total


@njit(**JIT)
def penalty_grad(penalty, lam, params, sizes, offs, grad):
    """``grad +=`` the penalty's gradient on the weight rows (bias rows get nothing)."""
    lamt = params.dtype.type(lam)
    for l in range(sizes.shape[0] - 1):
        lo = offs[l] + sizes[l + 1]
        w = params[lo:offs[l + 1]]
        g = grad[lo:offs[l + 1]]
        if penalty == L2:
            for p in range(w.shape[0]):
                g[p] += lamt * w[p]
        else:
            for p in range(w.shape[0]):
                g[p] += lamt * np.sign(w[p])
