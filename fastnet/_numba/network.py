r"""The network and linear-model kernels of the contract, compiled with Numba.

Same names, signatures and in-place conventions as
:mod:`fastnet.reference.kernels` (read its docstrings for the meaning of
every argument).  Each kernel of :data:`KERNELS` is a thin Python wrapper
that checks the arrays it is given (ndarray, dtype, C-contiguity: a wrong
one is refused with a ``TypeError``/``ValueError`` naming it, never copied
silently, because most are written in place) and calls the ``@njit``
implementation once: no Python runs per sample or per batch.

How the per-sample kernels are fast
-----------------------------------
With the flat layout of :mod:`fastnet._params` each input unit's outgoing
weights are one contiguous row ``W[i+1]``, so a layer's pre-activation is

.. math:: z = W_0 + \sum_{i:\,x_i\neq 0} x_i\,W_{i+1}

and the gradient of one sample is the rank-1 update
:math:`G_{i+1} \mathrel{+}= x_i\,\delta` for the same rows only.  The
kernels gather each input's nonzero indices once per sample (branch-free)
and touch only those rows: MNIST's pixels are about 80 % exact zeros, so the
first layer does about a fifth of the dense work.  Skipping exact zeros
changes nothing but the order of the floating-point sums.

The row loops themselves are explicit-SIMD Numba intrinsics
(:mod:`fastnet._numba._simd`): one 64-byte vector register per 16 float32
(8 float64), accumulators kept in registers, no masked store.  When several
samples are summed (mini-batches, full batches, the course's ``backprop``)
they go four at a time ("panels"): the union of their nonzero inputs is
gathered once and each weight row is loaded once for the four samples, in
the forward pass (four register accumulators per vector) as in the gradient
(one load and one store of each row per four samples).  Online learning
(batch 1 with plain SGD) applies each sample's update straight to the
weights, rows of nonzero inputs only.

The derivative of each hidden activation is computed from its output
(:math:`\sigma' = a(1-a)`, :math:`\tanh' = 1-a^2`, ReLU :math:`[a>0]`), so
the pre-activations are never stored and ``exp``/``tanh`` run once per unit.

Threads
-------
:func:`backprop_samples`, :func:`forward_network` and the large-batch path
of :func:`train_epoch` split the samples into :data:`BLOCKS_PER_THREAD`
contiguous blocks per thread (``numba.get_num_threads()``, set by
``NUMBA_NUM_THREADS`` or ``numba.set_num_threads``); the threads (the
caller's and a pool of Python threads) take the blocks as they free up, each
block run by a serial, cached ``nogil`` kernel accumulating into the block's
own gradient buffer; the buffers are summed in block order.  The result is
therefore deterministic for a given thread count (it may differ from the
serial one in the last bits), and a thread that the OS suspends on a busy
machine holds the others up by one block only.  Problems below :data:`PARALLEL_MIN_WORK` run serially.
No kernel is ``parallel=True``: those cannot be cached and cost seconds of
compilation in every new process.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numba
from numba import njit

from fastnet._numba._common import (FASTMATH, LOG_CLIP, sigmoid, act, dact, dact_from_a)
from fastnet._numba._simd import (compact_nonzero, compact_union4, sparse_affine, sparse_affine4,
                                  rows_axpy, rows_axpy4, row_dots, row_dots4, sigmoid_into)

__all__ = ["KERNELS", "activation", "activation_grad", "loss", "penalty_value", "penalty_grad",
           "optimizer_step", "forward_network", "backprop_samples", "backprop_batch",
           "train_epoch", "linear_gd", "perceptron_train"]

_SIGMOID, _SOFTMAX = 1, 4
_CE, _QUAD, _LOGLOSS = 0, 1, 2

#: Below this many input values (samples x input width) the threaded kernels run serially.
PARALLEL_MIN_WORK = 200_000
#: Batches of fewer samples are trained serially even when large enough in values: the
#: threads are dispatched from Python once per batch (about 0.3 ms), which only pays
#: for large batches (the full batch in particular).
PARALLEL_MIN_BATCH = 2048


# ======================================================================= helpers
@njit(cache=True)
def _offsets(sizes):
    """Start of each layer's block in the flat parameter vector (length L + 1)."""
    L = sizes.shape[0] - 1
    offs = np.empty(L + 1, np.int64)
    offs[0] = 0
    for l in range(L):
        offs[l + 1] = offs[l] + (sizes[l] + 1) * sizes[l + 1]
    return offs


@njit(cache=True)
def _workspace(sizes, sample):
    """Per-call buffers of the per-sample kernels (allocated once per call, never per sample).

    Returns ``acts`` (every layer's activations, one after the other) with
    their starts ``aoffs``; ``nz`` (each layer's nonzero input indices) with
    their starts ``noffs`` and counts ``cnt``; three delta buffers of the
    widest layer.
    """
    L = sizes.shape[0] - 1
    aoffs = np.empty(L + 1, np.int64)
    noffs = np.empty(L + 1, np.int64)
    aoffs[0] = 0
    noffs[0] = 0
    widest = 1
    for l in range(L):
        aoffs[l + 1] = aoffs[l] + sizes[l + 1]
        noffs[l + 1] = noffs[l] + sizes[l]
        widest = max(widest, sizes[l + 1])
    acts = np.zeros(aoffs[L], sample.dtype)
    nz = np.zeros(noffs[L], np.uint32)
    cnt = np.zeros(L, np.int64)
    d0 = np.zeros(widest, sample.dtype)
    d1 = np.zeros(widest, sample.dtype)
    d2 = np.zeros(widest, sample.dtype)
    return acts, aoffs, nz, noffs, cnt, d0, d1, d2


@njit(cache=True)
def _activate(kind, z):
    """``z[...] = f(z)`` in place for activation code ``kind`` (softmax over the whole vector)."""
    n = z.shape[0]
    if kind == 1:
        sigmoid_into(z, z)
    elif kind == 2:
        zero = z.dtype.type(0)
        for k in range(n):
            if z[k] < zero:
                z[k] = zero
    elif kind == 3:
        for k in range(n):
            z[k] = np.tanh(z[k])
    elif kind == 4:
        mx = z[0]
        for k in range(1, n):
            if z[k] > mx:
                mx = z[k]
        s = z.dtype.type(0)
        for k in range(n):
            e = np.exp(z[k] - mx)
            z[k] = e
            s += e
        for k in range(n):
            z[k] = z[k] / s


@njit(cache=True)
def _forward_sample(params, sizes, offs, kinds, x, acts, aoffs, nz, noffs, cnt):
    """Forward one sample ``x``: every layer's activations into ``acts``, nonzero inputs into ``nz``."""
    L = kinds.shape[0]
    v = x
    for l in range(L):
        n = sizes[l + 1]
        nzl = nz[noffs[l]:noffs[l + 1]]
        c = compact_nonzero(v, nzl)
        cnt[l] = c
        z = acts[aoffs[l]:aoffs[l + 1]]
        sparse_affine(params, offs[l], n, v, nzl, c, z)
        _activate(kinds[l], z)
        v = z


@njit(cache=True)
def _loss_row(loss_kind, a, y):
    """The loss of one sample (float64), logs clipped at LOG_CLIP.

    For 0/1 targets the clipped probabilities are multiplied and one log is
    taken (rescaled before it could underflow): the same sum as the course's
    per-output logs, up to rounding.
    """
    n = a.shape[0]
    total = 0.0
    if loss_kind == _QUAD:
        for k in range(n):
            d = np.float64(a[k]) - np.float64(y[k])
            total += 0.5 * d * d
        return total
    prod = 1.0
    for k in range(n):
        ak = np.float64(a[k])
        yk = np.float64(y[k])
        pa = LOG_CLIP if ak < LOG_CLIP else ak          # NaN stays NaN
        if loss_kind == _CE:
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


@njit(cache=True)
def _loss_delta(kind, loss_kind, a, y, delta):
    """Loss of one sample (float64) and its output error term into ``delta[:len(a)]``.

    ``a - y`` for sigmoid + cross-entropy and softmax + log-loss, otherwise
    the derivative of the clipped loss times :math:`f'(z)` (from ``a``).
    """
    n = a.shape[0]
    total = _loss_row(loss_kind, a, y)
    if (kind == _SIGMOID and loss_kind == _CE) or (kind == _SOFTMAX and loss_kind == _LOGLOSS):
        for k in range(n):
            delta[k] = a[k] - y[k]
        return total
    one = a.dtype.type(1)
    zero = a.dtype.type(0)
    clip = a.dtype.type(LOG_CLIP)
    for k in range(n):
        ak = a[k]
        yk = y[k]
        if loss_kind == _QUAD:
            g = ak - yk
        else:
            g = -yk / ak if ak > clip else zero
            if loss_kind == _CE:
                qa = one - ak
                g += (one - yk) / qa if qa > clip else zero
        delta[k] = g * dact_from_a(kind, ak)
    return total


@njit(cache=True)
def _backprop_deltas(params, sizes, offs, kinds, acts, aoffs, l, dl, dp):
    r"""``dp[:n_l] = (W_l[1:] @ dl) * f'(a_{l-1})``: the error term of layer ``l - 1``."""
    nin = sizes[l]
    row_dots(params, offs[l], sizes[l + 1], nin, dl, dp)
    ap = acts[aoffs[l - 1]:aoffs[l]]
    kind = kinds[l - 1]
    for j in range(nin):
        dp[j] *= dact_from_a(kind, ap[j])


@njit(cache=True)
def _backward_acc(params, sizes, offs, kinds, x, acts, aoffs, nz, noffs, cnt, d0, d1, G):
    """``G +=`` the gradient of the sample just forwarded, whose output delta is in ``d0``."""
    L = kinds.shape[0]
    dl = d0
    dp = d1
    for l in range(L - 1, -1, -1):
        n = sizes[l + 1]
        o = offs[l]
        for k in range(n):
            G[o + k] += dl[k]
        v = x if l == 0 else acts[aoffs[l - 1]:aoffs[l]]
        rows_axpy(G, o, n, v, nz[noffs[l]:noffs[l + 1]], cnt[l], dl)
        if l > 0:
            _backprop_deltas(params, sizes, offs, kinds, acts, aoffs, l, dl, dp)
            dl, dp = dp, dl


@njit(cache=True)
def _backward_sgd(params, sizes, offs, kinds, x, acts, aoffs, nz, noffs, cnt, d0, d1, d2, lr):
    r"""Online SGD: ``params -= lr *`` the gradient of the sample just forwarded.

    Each layer's error term for the layer below is computed before its
    weights change, so this is exactly a batch of one.  ``d2`` is scratch
    for the scaled error term :math:`-\eta\delta`.
    """
    L = kinds.shape[0]
    dl = d0
    dp = d1
    for l in range(L - 1, -1, -1):
        n = sizes[l + 1]
        o = offs[l]
        if l > 0:
            _backprop_deltas(params, sizes, offs, kinds, acts, aoffs, l, dl, dp)
        for k in range(n):
            step = -(lr * dl[k])
            d2[k] = step
            params[o + k] += step
        v = x if l == 0 else acts[aoffs[l - 1]:aoffs[l]]
        rows_axpy(params, o, n, v, nz[noffs[l]:noffs[l + 1]], cnt[l], d2)
        dl, dp = dp, dl


@njit(cache=True)
def _panel_forward(params, sizes, offs, kinds, x0, x1, x2, x3, A, aoffs, nz, noffs, cnt):
    """Forward four samples at once: each layer over the union of their nonzero inputs.

    ``A`` is ``(4, units)``: row ``s`` holds sample ``s``'s activations of
    every layer (starts ``aoffs``).
    """
    L = kinds.shape[0]
    v0, v1, v2, v3 = x0, x1, x2, x3
    for l in range(L):
        nzl = nz[noffs[l]:noffs[l + 1]]
        c = compact_union4(v0, v1, v2, v3, nzl)
        cnt[l] = c
        lo = aoffs[l]
        hi = aoffs[l + 1]
        z0, z1, z2, z3 = A[0, lo:hi], A[1, lo:hi], A[2, lo:hi], A[3, lo:hi]
        sparse_affine4(params, offs[l], sizes[l + 1], v0, v1, v2, v3, nzl, c, z0, z1, z2, z3)
        _activate(kinds[l], z0)
        _activate(kinds[l], z1)
        _activate(kinds[l], z2)
        _activate(kinds[l], z3)
        v0, v1, v2, v3 = z0, z1, z2, z3


@njit(cache=True)
def _panel_backward(params, sizes, offs, kinds, x0, x1, x2, x3, A, aoffs, nz, noffs, cnt, D, G):
    """``G +=`` the gradients of the four samples of :func:`_panel_forward`.

    ``D`` is ``(2, 4, widest)``; ``D[0, s]`` holds sample ``s``'s output delta on entry.
    """
    L = kinds.shape[0]
    cur = 0
    for l in range(L - 1, -1, -1):
        n = sizes[l + 1]
        o = offs[l]
        d0, d1, d2, d3 = D[cur, 0], D[cur, 1], D[cur, 2], D[cur, 3]
        for k in range(n):
            G[o + k] += ((d0[k] + d1[k]) + (d2[k] + d3[k]))
        if l == 0:
            v0, v1, v2, v3 = x0, x1, x2, x3
        else:
            lo = aoffs[l - 1]
            hi = aoffs[l]
            v0, v1, v2, v3 = A[0, lo:hi], A[1, lo:hi], A[2, lo:hi], A[3, lo:hi]
        rows_axpy4(G, o, n, v0, v1, v2, v3, nz[noffs[l]:noffs[l + 1]], cnt[l], d0, d1, d2, d3)
        if l > 0:
            nxt = 1 - cur
            nin = sizes[l]
            p0, p1, p2, p3 = D[nxt, 0], D[nxt, 1], D[nxt, 2], D[nxt, 3]
            row_dots4(params, o, n, nin, d0, d1, d2, d3, p0, p1, p2, p3)
            kind = kinds[l - 1]
            for s in range(4):
                ap = A[s, aoffs[l - 1]:aoffs[l]]
                dp = D[nxt, s]
                for j in range(nin):
                    dp[j] *= dact_from_a(kind, ap[j])
            cur = nxt


@njit(cache=True)
def _accumulate_with(params, sizes, offs, kinds, loss_kind, X, Y, order, lo, hi, G, acts, aoffs,
                     nz, noffs, cnt, d0, d1, A, D):
    """:func:`_accumulate` with its work buffers given (allocated once per epoch)."""
    L = kinds.shape[0]
    nL = sizes[L]
    out = aoffs[L - 1]
    last = kinds[L - 1]
    total = 0.0
    s = lo
    while s + 4 <= hi:
        r0, r1, r2, r3 = order[s], order[s + 1], order[s + 2], order[s + 3]
        x0, x1, x2, x3 = X[r0], X[r1], X[r2], X[r3]
        _panel_forward(params, sizes, offs, kinds, x0, x1, x2, x3, A, aoffs, nz, noffs, cnt)
        total += _loss_delta(last, loss_kind, A[0, out:out + nL], Y[r0], D[0, 0])
        total += _loss_delta(last, loss_kind, A[1, out:out + nL], Y[r1], D[0, 1])
        total += _loss_delta(last, loss_kind, A[2, out:out + nL], Y[r2], D[0, 2])
        total += _loss_delta(last, loss_kind, A[3, out:out + nL], Y[r3], D[0, 3])
        _panel_backward(params, sizes, offs, kinds, x0, x1, x2, x3, A, aoffs, nz, noffs, cnt,
                        D, G)
        s += 4
    while s < hi:
        r = order[s]
        x = X[r]
        _forward_sample(params, sizes, offs, kinds, x, acts, aoffs, nz, noffs, cnt)
        total += _loss_delta(last, loss_kind, acts[out:out + nL], Y[r], d0)
        _backward_acc(params, sizes, offs, kinds, x, acts, aoffs, nz, noffs, cnt, d0, d1, G)
        s += 1
    return total


@njit(cache=True, nogil=True)
def _accumulate(params, sizes, kinds, loss_kind, X, Y, order, lo, hi, G):
    """``G +=`` the summed gradient of samples ``order[lo:hi]``; returns their summed loss.

    Samples go four at a time (:func:`_panel_forward`, :func:`_panel_backward`:
    each weight row is loaded once per four samples), the rest one by one.
    """
    offs = _offsets(sizes)
    acts, aoffs, nz, noffs, cnt, d0, d1, d2 = _workspace(sizes, params)
    A = np.zeros((4, acts.shape[0]), params.dtype)
    D = np.zeros((2, 4, d0.shape[0]), params.dtype)
    return _accumulate_with(params, sizes, offs, kinds, loss_kind, X, Y, order, lo, hi, G, acts,
                            aoffs, nz, noffs, cnt, d0, d1, A, D)


@njit(cache=True, nogil=True)
def _accumulate_zeroed(params, sizes, kinds, loss_kind, X, Y, order, lo, hi, G):
    """``G =`` the summed gradient of samples ``order[lo:hi]``; returns their summed loss."""
    G[:] = 0
    return _accumulate(params, sizes, kinds, loss_kind, X, Y, order, lo, hi, G)


# ================================================================ optimiser step
@njit(cache=True)
def _step_range(params, G, state, lo, hi, B, optimizer, lr, mu, rho, eps, penalty, lam):
    r"""One optimiser step on ``params[lo:hi]`` from the summed gradient ``G`` of ``B`` samples.

    :math:`g = G/B` (+ :math:`\lambda w` or :math:`\lambda\,\mathrm{sign}(w)`),
    then sgd / momentum / RMSprop exactly as :func:`fastnet.reference.kernels.optimizer_step`;
    ``G[lo:hi]`` is reset to zero for the next batch.  One branch-free
    (vectorisable) loop per case.
    """
    T = params.dtype.type
    Bt = T(B)
    lrt = T(lr)
    lamt = T(lam)
    zero = T(0)
    one = T(1)
    p = params[lo:hi]
    g = G[lo:hi]
    s = state[lo:hi]
    n = hi - lo
    if optimizer == 0 and penalty == 0:
        for i in range(n):
            gi = g[i] / Bt
            g[i] = zero
            p[i] -= lrt * gi
        return
    if penalty == 1:
        for i in range(n):
            g[i] = g[i] / Bt + lamt * p[i]
    elif penalty == 2:
        for i in range(n):
            g[i] = g[i] / Bt + lamt * np.sign(p[i])
    else:
        for i in range(n):
            g[i] = g[i] / Bt
    if optimizer == 0:
        for i in range(n):
            p[i] -= lrt * g[i]
    elif optimizer == 1:
        mut = T(mu)
        for i in range(n):
            v = s[i] * mut
            v -= lrt * g[i]
            s[i] = v
            p[i] += v
    else:
        rt = T(rho)
        et = T(eps)
        for i in range(n):
            gi = g[i]
            v = s[i] * rt
            v += (one - rt) * gi * gi
            s[i] = v
            p[i] -= lrt * gi / (np.sqrt(v) + et)
    for i in range(n):
        g[i] = zero


@njit(cache=True, nogil=True)
def _update(params, G, state, sizes, offs, B, optimizer, lr, mu, rho, eps, penalty, lam):
    """The batch's update of every layer (bias rows get no penalty)."""
    for l in range(sizes.shape[0] - 1):
        o = offs[l]
        n = sizes[l + 1]
        _step_range(params, G, state, o, o + n, B, optimizer, lr, mu, rho, eps, 0, lam)
        _step_range(params, G, state, o + n, offs[l + 1], B, optimizer, lr, mu, rho, eps,
                    penalty, lam)


# ====================================================================== kernels
# ---------------------------------------------------------------- elementwise
@njit(cache=True)
def _activation_flat(kind, z, out):
    if kind == 1:
        sigmoid_into(z, out)
        return
    for k in range(z.shape[0]):
        out[k] = act(kind, z[k])


@njit(cache=True)
def _activation_grad_flat(kind, z, out):
    for k in range(z.shape[0]):
        out[k] = dact(kind, z[k])


@njit(cache=True)
def _softmax_rows(Z, out):
    for r in range(Z.shape[0]):
        o = out[r]
        o[:] = Z[r]
        _activate(4, o)


@njit(cache=True)
def _loss_sum(loss_kind, A, Y):
    total = 0.0
    for r in range(A.shape[0]):
        total += _loss_row(loss_kind, A[r], Y[r])
    return total


# ------------------------------------------------------- penalty and optimiser
@njit(cache=True)
def _penalty_value(penalty_kind, lam, params, sizes):
    offs = _offsets(sizes)
    total = 0.0
    for l in range(sizes.shape[0] - 1):
        s = 0.0
        for p in range(offs[l] + sizes[l + 1], offs[l + 1]):
            w = np.float64(params[p])
            s += w * w if penalty_kind == 1 else abs(w)
        total += lam / 2 * s if penalty_kind == 1 else lam * s
    return total


@njit(cache=True)
def _penalty_grad(penalty_kind, lam, params, sizes, grad):
    offs = _offsets(sizes)
    lamt = params.dtype.type(lam)
    for l in range(sizes.shape[0] - 1):
        lo = offs[l] + sizes[l + 1]
        hi = offs[l + 1]
        if penalty_kind == 1:
            for p in range(lo, hi):
                grad[p] += lamt * params[p]
        else:
            for p in range(lo, hi):
                grad[p] += lamt * np.sign(params[p])


@njit(cache=True)
def _optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps):
    T = params.dtype.type
    lrt = T(lr)
    n = params.shape[0]
    if optimizer == 0:
        for p in range(n):
            params[p] -= lrt * grad[p]
    elif optimizer == 1:
        mut = T(mu)
        for p in range(n):
            s = state[p] * mut
            s -= lrt * grad[p]
            state[p] = s
            params[p] += s
    else:
        rt = T(rho)
        et = T(eps)
        one = T(1)
        for p in range(n):
            g = grad[p]
            s = state[p] * rt
            s += (one - rt) * g * g
            state[p] = s
            params[p] -= lrt * g / (np.sqrt(s) + et)


# --------------------------------------------------------------------- networks
@njit(cache=True, nogil=True)
def _forward_range(params, sizes, kinds, X, out, lo, hi):
    """``out[r] =`` the network's output for rows ``lo <= r < hi`` (four at a time)."""
    L = kinds.shape[0]
    offs = _offsets(sizes)
    acts, aoffs, nz, noffs, cnt, d0, d1, d2 = _workspace(sizes, params)
    A = np.zeros((4, acts.shape[0]), params.dtype)
    a = aoffs[L - 1]
    b = aoffs[L]
    r = lo
    while r + 4 <= hi:
        _panel_forward(params, sizes, offs, kinds, X[r], X[r + 1], X[r + 2], X[r + 3], A, aoffs,
                       nz, noffs, cnt)
        for s in range(4):
            out[r + s, :] = A[s, a:b]
        r += 4
    while r < hi:
        _forward_sample(params, sizes, offs, kinds, X[r], acts, aoffs, nz, noffs, cnt)
        out[r, :] = acts[a:b]
        r += 1


@njit(cache=True)
def _backprop_samples(params, sizes, kinds, loss_kind, X, Y, grad):
    grad[:] = 0
    order = np.arange(X.shape[0])
    return _accumulate(params, sizes, kinds, loss_kind, X, Y, order, 0, X.shape[0], grad)


@njit(cache=True, nogil=True)
def _sum_rows_into(Gt, out):
    """``out = Gt[0] + Gt[1] + ...`` in row order (deterministic)."""
    out[:] = Gt[0]
    for t in range(1, Gt.shape[0]):
        g = Gt[t]
        for p in range(out.shape[0]):
            out[p] += g[p]


@njit(cache=True)
def _backprop_batch(params, sizes, kinds, loss_kind, X, Y, grad):
    """Backprop with matrix products (BLAS through ``np.dot``): one GEMM per layer and direction."""
    L = kinds.shape[0]
    m = X.shape[0]
    offs = _offsets(sizes)
    aoff = np.zeros(L + 1, np.int64)
    for l in range(L):
        aoff[l + 1] = aoff[l] + m * sizes[l + 1]
    A = np.empty(aoff[L], X.dtype)
    inp = X
    for l in range(L):
        nin = sizes[l]
        n = sizes[l + 1]
        W = params[offs[l]:offs[l + 1]].reshape((nin + 1, n))
        Z = A[aoff[l]:aoff[l + 1]].reshape((m, n))
        np.dot(inp, W[1:], Z)
        b = W[0]
        for r in range(m):
            z = Z[r]
            for k in range(n):
                z[k] += b[k]
            _activate(kinds[l], z)
        inp = Z
    nL = sizes[L]
    out = A[aoff[L - 1]:aoff[L]].reshape((m, nL))
    D = np.empty((m, nL), X.dtype)
    total = 0.0
    for r in range(m):
        total += _loss_delta(kinds[L - 1], loss_kind, out[r], Y[r], D[r])
    for l in range(L - 1, -1, -1):
        nin = sizes[l]
        n = sizes[l + 1]
        W = params[offs[l]:offs[l + 1]].reshape((nin + 1, n))
        Gl = grad[offs[l]:offs[l + 1]].reshape((nin + 1, n))
        g0 = Gl[0]
        g0[:] = 0
        for r in range(m):
            d = D[r]
            for k in range(n):
                g0[k] += d[k]
        if l == 0:
            np.dot(X.T, D, Gl[1:])
        else:
            Ap = A[aoff[l - 1]:aoff[l]].reshape((m, nin))
            np.dot(Ap.T, D, Gl[1:])
            Dp = np.dot(D, W[1:].T)
            kind = kinds[l - 1]
            for r in range(m):
                dp = Dp[r]
                ap = Ap[r]
                for j in range(nin):
                    dp[j] *= dact_from_a(kind, ap[j])
            D = Dp
    return total


@njit(cache=True)
def _train_epoch(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer, lr, mu,
                 rho, eps, penalty, lam, state):
    """One epoch, serial: online SGD applies each sample's update at once, else batches."""
    L = kinds.shape[0]
    offs = _offsets(sizes)
    m = order.shape[0]
    total = 0.0
    if batch_size == 1 and optimizer == 0 and penalty == 0:
        acts, aoffs, nz, noffs, cnt, d0, d1, d2 = _workspace(sizes, params)
        lrt = params.dtype.type(lr)
        for s in range(m):
            r = order[s]
            x = X[r]
            _forward_sample(params, sizes, offs, kinds, x, acts, aoffs, nz, noffs, cnt)
            total += _loss_delta(kinds[L - 1], loss_kind, acts[aoffs[L - 1]:aoffs[L]], Y[r], d0)
            _backward_sgd(params, sizes, offs, kinds, x, acts, aoffs, nz, noffs, cnt, d0, d1, d2, lrt)
        return total
    G = np.zeros_like(params)
    acts, aoffs, nz, noffs, cnt, d0, d1, d2 = _workspace(sizes, params)
    A = np.zeros((4, acts.shape[0]), params.dtype)
    D = np.zeros((2, 4, d0.shape[0]), params.dtype)
    start = 0
    while start < m:
        stop = min(start + batch_size, m)
        total += _accumulate_with(params, sizes, offs, kinds, loss_kind, X, Y, order, start, stop,
                                  G, acts, aoffs, nz, noffs, cnt, d0, d1, A, D)
        _update(params, G, state, sizes, offs, stop - start, optimizer, lr, mu, rho, eps,
                penalty, lam)
        start = stop
    return total


# ---------------------------------------------------------------- linear models
@njit(cache=True, fastmath=FASTMATH)
def _row_dot(x, w):
    s = x.dtype.type(0)
    for j in range(x.shape[0]):
        s += x[j] * w[j]
    return s


@njit(cache=True)
def _linear_gd(X, y, theta, lr, tol, max_iter, logistic, history):
    m, n = X.shape
    T = theta.dtype.type
    lrt = T(lr)
    mt = T(m)
    zero = T(0)
    g = np.zeros(n, theta.dtype)
    for it in range(max_iter):
        w = theta[1:]
        b = theta[0]
        g[:] = zero
        rsum = zero
        J = 0.0
        for i in range(m):
            xi = X[i]
            h = _row_dot(xi, w) + b
            if logistic:
                h = sigmoid(h)
                yi = np.float64(y[i])
                hi = np.float64(h)
                ph = LOG_CLIP if hi < LOG_CLIP else hi
                qh = 1.0 - hi
                pq = LOG_CLIP if qh < LOG_CLIP else qh
                if yi == 1.0:
                    J -= np.log(ph)
                elif yi == 0.0:
                    J -= np.log(pq)
                else:
                    J += -yi * np.log(ph) - (1.0 - yi) * np.log(pq)
            r = h - y[i]
            if not logistic:
                rd = np.float64(r)
                J += rd * rd
            rsum += r
            for j in range(n):
                g[j] += xi[j] * r
        J = J / m if logistic else 0.5 * J / m
        history[it] = J
        if not np.isfinite(J):
            return it + 1
        theta[0] -= lrt * (rsum / mt)
        for j in range(n):
            theta[1 + j] -= lrt * (g[j] / mt)
        if it >= 1 and abs(history[it] - history[it - 1]) < tol:
            return it + 1
    return max_iter


@njit(cache=True)
def _perceptron_train(X, y, w, epochs, lr, errors):
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


# ====================================================================== wrappers
def _need(name, a, dtype=None, ndim=None):
    """Refuse what the compiled kernels cannot take as is (never copy: outputs are in place)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}; expected {np.dtype(dtype)} (the dtype of the "
                        f"other float arrays of this call)")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; pass np.ascontiguousarray({name})")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a


def _float_dtype(name, a):
    _need(name, a)
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
    return a.dtype


def _net_arrays(params, sizes, kinds):
    dt = _float_dtype("params", params)
    _need("params", params, ndim=1)
    _need("sizes", sizes, np.int64, 1)
    _need("kinds", kinds, np.int64, 1)
    return dt


def _threads():
    return numba.get_num_threads()


#: Blocks of samples per thread in the threaded kernels: threads take blocks as they
#: free up, so a thread that the OS suspends (a shared machine) delays the others by
#: one block, not by half the work.
BLOCKS_PER_THREAD = 4

_pool_lock = threading.Lock()
_pool = None


def _in_blocks(nthreads, m, job):
    """Run ``job(b, lo, hi)`` over the ``nthreads * BLOCKS_PER_THREAD`` contiguous blocks of
    ``range(m)`` on ``nthreads`` threads; return the results in block order.

    The calling thread works too; the others come from a shared pool of
    Python threads (the jobs are ``nogil`` kernels, so they run in
    parallel).  Which thread runs which block varies, but each block's
    result depends on the block only, so the caller's combination of the
    results in block order is deterministic for a given thread count.
    """
    global _pool
    nblocks = max(1, min(m, nthreads * BLOCKS_PER_THREAD))
    bounds = [b * m // nblocks for b in range(nblocks + 1)]
    results = [None] * nblocks
    counter = iter(range(nblocks))
    take = threading.Lock()

    def worker():
        while True:
            with take:
                b = next(counter, None)
            if b is None:
                return
            results[b] = job(b, bounds[b], bounds[b + 1])

    with _pool_lock:
        if _pool is None or _pool._max_workers < nthreads - 1:
            _pool = ThreadPoolExecutor(max(nthreads - 1, 1), thread_name_prefix="fastnet-numba")
        pool = _pool
    futures = [pool.submit(worker) for _ in range(min(nthreads, nblocks) - 1)]
    worker()
    for f in futures:
        f.result()
    return results


def _nblocks(nthreads, m):
    return max(1, min(m, nthreads * BLOCKS_PER_THREAD))


def _backprop_samples_threaded(params, sizes, kinds, loss_kind, X, Y, grad, nt):
    Gt = np.empty((_nblocks(nt, X.shape[0]), params.shape[0]), params.dtype)
    order = np.arange(X.shape[0], dtype=np.int64)
    losses = _in_blocks(nt, X.shape[0], lambda b, lo, hi: _accumulate_zeroed(
        params, sizes, kinds, loss_kind, X, Y, order, lo, hi, Gt[b]))
    _sum_rows_into(Gt, grad)
    return float(sum(losses))


def _train_epoch_threaded(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer,
                          lr, mu, rho, eps, penalty, lam, state, nt):
    """Large batches: each batch's samples split over ``nt`` threads, then one update."""
    offs = _offsets(sizes)
    G = np.zeros_like(params)
    m = order.shape[0]
    total = 0.0
    for start in range(0, m, batch_size):
        stop = min(start + batch_size, m)
        # a batch's gradient is a sum: visiting its rows in memory order changes only the
        # rounding, and streams X instead of jumping around it
        idx = np.sort(order[start:stop])
        Gt = np.empty((_nblocks(nt, stop - start), params.shape[0]), params.dtype)
        losses = _in_blocks(nt, stop - start, lambda b, lo, hi: _accumulate_zeroed(
            params, sizes, kinds, loss_kind, X, Y, idx, lo, hi, Gt[b]))
        _sum_rows_into(Gt, G)
        total += sum(losses)
        _update(params, G, state, sizes, offs, stop - start, optimizer, lr, mu, rho, eps,
                penalty, lam)
    return total


def activation(kind, Z, out):
    """``out[...] = f(Z)`` (see :func:`fastnet.reference.kernels.activation`)."""
    dt = _float_dtype("Z", Z)
    _need("out", out, dt)
    if out.shape != Z.shape:
        raise ValueError(f"out has shape {out.shape}; expected the shape of Z {Z.shape}")
    kind = int(kind)
    if kind == _SOFTMAX:
        if Z.ndim == 0:
            raise ValueError("softmax needs at least a 1-D Z")
        _softmax_rows(Z.reshape(-1, Z.shape[-1]), out.reshape(-1, Z.shape[-1]))
    else:
        _activation_flat(kind, Z.reshape(-1), out.reshape(-1))


def activation_grad(kind, Z, out):
    """``out[...] = f'(Z)`` (see :func:`fastnet.reference.kernels.activation_grad`)."""
    kind = int(kind)
    if kind == _SOFTMAX:
        raise ValueError("activation_grad: softmax has no elementwise derivative")
    dt = _float_dtype("Z", Z)
    _need("out", out, dt)
    if out.shape != Z.shape:
        raise ValueError(f"out has shape {out.shape}; expected the shape of Z {Z.shape}")
    _activation_grad_flat(kind, Z.reshape(-1), out.reshape(-1))


def loss(loss_kind, A, Y):
    """Summed loss, float64 (see :func:`fastnet.reference.kernels.loss`)."""
    dt = _float_dtype("A", A)
    _need("Y", Y, dt)
    if A.shape != Y.shape or A.ndim != 2:
        raise ValueError(f"A and Y must be 2-D of one shape, got {A.shape} and {Y.shape}")
    return float(_loss_sum(int(loss_kind), A, Y))


def penalty_value(penalty_kind, lam, params, sizes):
    """Penalty of the weights, float64 (see :func:`fastnet.reference.kernels.penalty_value`)."""
    if penalty_kind == 0 or lam == 0:
        return 0.0
    _float_dtype("params", params)
    _need("sizes", sizes, np.int64, 1)
    return float(_penalty_value(int(penalty_kind), float(lam), params, sizes))


def penalty_grad(penalty_kind, lam, params, sizes, grad):
    """``grad +=`` the penalty's gradient (see :func:`fastnet.reference.kernels.penalty_grad`)."""
    if penalty_kind == 0 or lam == 0:
        return
    dt = _float_dtype("params", params)
    _need("sizes", sizes, np.int64, 1)
    _need("grad", grad, dt)
    _penalty_grad(int(penalty_kind), float(lam), params, sizes, grad)


def _optimizer_code(optimizer):
    code = int(optimizer)
    if code not in (0, 1, 2):
        raise NotImplementedError(f"optimizer code {code} is not implemented by the numba backend "
                                  f"yet; use fastnet.use_backend('reference')")
    return code


def _state_half(state, n):
    """The first half of ``state`` (length ``2 * n``, the contract's layout)."""
    if state.shape[0] != 2 * n:
        raise ValueError(f"state has {state.shape[0]} entries; expected 2 * {n} (two per parameter)")
    return state[:n]


def optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps, t):
    """One optimiser update in place (see :func:`fastnet.reference.kernels.optimizer_step`)."""
    dt = _float_dtype("params", params)
    _need("grad", grad, dt)
    _need("state", state, dt)
    p = params.reshape(-1)
    _optimizer_step(_optimizer_code(optimizer), p, grad.reshape(-1),
                    _state_half(state.reshape(-1), p.shape[0]), float(lr), float(mu), float(rho),
                    float(eps))


def forward_network(params, sizes, kinds, X, out):
    """``out[...]`` = the network's output (see :func:`fastnet.reference.kernels.forward_network`)."""
    dt = _net_arrays(params, sizes, kinds)
    _need("X", X, dt, 2)
    _need("out", out, dt, 2)
    nt = _threads()
    if nt > 1 and X.size >= PARALLEL_MIN_WORK:
        _in_blocks(nt, X.shape[0],
                   lambda b, lo, hi: _forward_range(params, sizes, kinds, X, out, lo, hi))
    else:
        _forward_range(params, sizes, kinds, X, out, 0, X.shape[0])


def backprop_samples(params, sizes, kinds, loss_kind, X, Y, grad):
    """The course's per-sample backprop (see :func:`fastnet.reference.kernels.backprop_samples`)."""
    dt = _net_arrays(params, sizes, kinds)
    _need("X", X, dt, 2)
    _need("Y", Y, dt, 2)
    _need("grad", grad, dt, 1)
    nt = _threads()
    if nt > 1 and X.size >= PARALLEL_MIN_WORK:
        return _backprop_samples_threaded(params, sizes, kinds, int(loss_kind), X, Y, grad, nt)
    return float(_backprop_samples(params, sizes, kinds, int(loss_kind), X, Y, grad))


def backprop_batch(params, sizes, kinds, loss_kind, X, Y, grad):
    """Backprop with matrix products (see :func:`fastnet.reference.kernels.backprop_batch`)."""
    dt = _net_arrays(params, sizes, kinds)
    _need("X", X, dt, 2)
    _need("Y", Y, dt, 2)
    _need("grad", grad, dt, 1)
    return float(_backprop_batch(params, sizes, kinds, int(loss_kind), X, Y, grad))


def train_epoch(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer, lr, mu, rho,
                eps, penalty_kind, lam, state, t):
    """One epoch of (mini-)batch training (see :func:`fastnet.reference.kernels.train_epoch`)."""
    dt = _net_arrays(params, sizes, kinds)
    _need("X", X, dt, 2)
    _need("Y", Y, dt, 2)
    _need("order", order, np.int64, 1)
    _need("state", state, dt, 1)
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    penalty = int(penalty_kind) if lam else 0
    args = (params, sizes, kinds, int(loss_kind), X, Y, order, batch_size,
            _optimizer_code(optimizer), float(lr), float(mu), float(rho), float(eps), penalty,
            float(lam), _state_half(state, params.shape[0]))
    nt = _threads()
    B = min(batch_size, order.shape[0])
    if nt > 1 and B * X.shape[1] >= PARALLEL_MIN_WORK and (B >= PARALLEL_MIN_BATCH
                                                          or B == order.shape[0]):
        return float(_train_epoch_threaded(*args, nt))
    return float(_train_epoch(*args))


def linear_gd(X, y, theta, lr, tol, max_iter, logistic, history):
    """Batch gradient descent, linear or logistic (see :func:`fastnet.reference.kernels.linear_gd`)."""
    dt = _float_dtype("X", X)
    _need("X", X, ndim=2)
    _need("y", y, dt, 1)
    _need("theta", theta, dt, 1)
    _need("history", history, np.float64, 1)
    return int(_linear_gd(X, y, theta, float(lr), float(tol), int(max_iter), bool(logistic),
                          history))


def perceptron_train(X, y, w, epochs, lr, errors):
    """The perceptron rule (see :func:`fastnet.reference.kernels.perceptron_train`)."""
    dt = _float_dtype("X", X)
    _need("X", X, ndim=2)
    _need("y", y, dt, 1)
    _need("w", w, dt, 1)
    _need("errors", errors, np.int64, 1)
    return int(_perceptron_train(X, y, w, int(epochs), float(lr), errors))


KERNELS = {
    "activation": activation,
    "activation_grad": activation_grad,
    "loss": loss,
    "penalty_value": penalty_value,
    "penalty_grad": penalty_grad,
    "optimizer_step": optimizer_step,
    "forward_network": forward_network,
    "backprop_samples": backprop_samples,
    "backprop_batch": backprop_batch,
    "train_epoch": train_epoch,
    "linear_gd": linear_gd,
    "perceptron_train": perceptron_train,
}
