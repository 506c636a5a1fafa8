r"""Layer programs (:class:`fastnet.Sequential`) compiled with Numba: forward, backprop, epochs.

Same names, signatures and in-place conventions as :mod:`fastnet.reference.conv`
(read its docstrings for the layer program and the meaning of every
argument).  A program is interpreted row by row by ``@njit`` code: dense rows
are one BLAS GEMM per batch, convolutions im2col + GEMM by blocks of images
(:mod:`fastnet._numba.conv`), pooling and flattening plain loops, each row's
bias and activation fused into its epilogue.  Every buffer a call needs is
allocated once, at its start.

Threads
-------
With one thread (``FASTNET_NUM_THREADS=1``, or batches with too little work:
:data:`THREAD_MIN_FLOPS`) an epoch is one compiled call.  Otherwise each
batch is cut into :func:`fastnet._threads.n_blocks` contiguous blocks of
images, run by the threads of :func:`fastnet._threads.run_blocks` (the
caller's and a pool's; each block's forward and backward pass is one
``nogil`` compiled call writing its own gradient buffer), and one compiled
call sums the blocks' gradients in block order and updates the weights: the
result is deterministic for a given number of threads.  Inside the kernels
BLAS runs single-threaded (:func:`fastnet._blas.single_threaded`), so the
threads never compete with BLAS's own.
"""
import threading

import numpy as np
from numba import njit

from fastnet import _kernel_checks as kc
from fastnet import _conv_checks as cc
from fastnet._blas import single_threaded
from fastnet._codes import Act, LayerKind, Prog, Optimizer, Penalty
from fastnet._threads import n_blocks, run_blocks
from fastnet import _conv_plan as plan
from fastnet._conv_plan import COLS_BYTES, threads_for
from fastnet._numba.conv import (_activate_rows, _bias_act, _times_dact, _loss_delta,
                                 _conv_forward, _conv_backward, _pool_forward, _pool_backward)

__all__ = ["KERNELS"]

_SOFTMAX = int(Act.SOFTMAX)
_DENSE, _CONV, _MAXPOOL, _AVGPOOL, _FLATTEN, _ACTIVATION, _TIED = (
    int(LayerKind.DENSE), int(LayerKind.CONV2D), int(LayerKind.MAXPOOL2D),
    int(LayerKind.AVGPOOL2D), int(LayerKind.FLATTEN), int(LayerKind.ACTIVATION),
    int(LayerKind.DENSE_TIED))
_SGD, _MOMENTUM, _RMSPROP, _ADAM, _NESTEROV = (int(Optimizer.SGD), int(Optimizer.MOMENTUM),
                                               int(Optimizer.RMSPROP), int(Optimizer.ADAM),
                                               int(Optimizer.NESTEROV))
_L2 = int(Penalty.L2)
(P_KIND, P_ACT, P_IH, P_IW, P_IC, P_OH, P_OW, P_OC, P_KH, P_KW, P_S, P_PH, P_PW, P_POFF, P_PLEN,
 P_TIED) = [int(f) for f in Prog if f != Prog.WIDTH]

_ws_lock = threading.Lock()  # hands the forward pass's workspaces to its threads


@njit(cache=True)
def _workspace(prog, m, n_in):
    """Offsets of every row's outputs in one buffer (m samples), the widest row, argmax slots."""
    L = prog.shape[0]
    aoff = np.zeros(L + 1, np.int64)
    widest = n_in
    pool = 0
    for l in range(L):
        n = prog[l, P_OH] * prog[l, P_OW] * prog[l, P_OC]
        aoff[l + 1] = aoff[l] + m * n
        widest = max(widest, n)
        if prog[l, P_KIND] == _MAXPOOL:
            pool = max(pool, n)
    return aoff, widest, pool


@njit(cache=True)
def _conv_sizes(prog, itemsize, m):
    """Images per im2col block of each conv row, and the largest block of patches (values)."""
    L = prog.shape[0]
    nbs = np.ones(L, np.int64)
    size = 1
    for l in range(L):
        if prog[l, P_KIND] == _CONV:
            npix = prog[l, P_OH] * prog[l, P_OW]
            K = prog[l, P_KH] * prog[l, P_KW] * prog[l, P_IC]
            nb = max(1, min(m, COLS_BYTES // max(1, npix * K * itemsize)))
            nbs[l] = nb
            size = max(size, nb * npix * K)
    return nbs, size


@njit(cache=True)
def _row_forward(params, prog, l, Ain, Aout, argmax, cols, nbs):
    """Row ``l``'s output ``Aout`` (m, n_out) from its input ``Ain`` (m, n_in)."""
    kind = prog[l, P_KIND]
    a = prog[l, P_ACT]
    H, W, C = prog[l, P_IH], prog[l, P_IW], prog[l, P_IC]
    Ho, Wo, F = prog[l, P_OH], prog[l, P_OW], prog[l, P_OC]
    poff = prog[l, P_POFF]
    m = Ain.shape[0]
    if kind == _DENSE:
        Wb = params[poff:poff + prog[l, P_PLEN]].reshape((H * W * C + 1, F))
        np.dot(Ain, Wb[1:], Aout)
        _bias_act(Aout, Wb[0], a)
    elif kind == _TIED:
        toff = prog[l, P_TIED]
        Wt = params[toff:toff + (F + 1) * C].reshape((F + 1, C))
        np.dot(Ain, Wt[1:].T, Aout)
        _bias_act(Aout, params[poff:poff + F], a)
    elif kind == _CONV:
        Wb = params[poff:poff + prog[l, P_PLEN]].reshape((-1, F))
        _conv_forward(Ain, Wb, H, W, C, prog[l, P_KH], prog[l, P_KW], prog[l, P_S],
                      prog[l, P_PH], prog[l, P_PW], Ho, Wo, F, a, Aout, cols, nbs[l])
    elif kind == _MAXPOOL or kind == _AVGPOOL:
        _pool_forward(kind, Ain, H, W, C, prog[l, P_KH], prog[l, P_KW], prog[l, P_S], Ho, Wo,
                      Aout, argmax)
        _activate_rows(a, Aout)
    elif kind == _FLATTEN:
        for n in range(m):
            x = Ain[n]
            o = Aout[n]
            for i in range(H * W):
                for c in range(C):
                    o[c * H * W + i] = x[i * C + c]
        _activate_rows(a, Aout)
    else:
        Aout[:, :] = Ain
        _activate_rows(a, Aout)


@njit(cache=True)
def _row_backward(params, prog, l, Ain, D, Dprev, need_input, G, argmax, cols, dcols, tmp, nbs):
    """Add row ``l``'s parameter gradient to ``G``; ``Dprev`` = dJ/d(input) when ``need_input``."""
    kind = prog[l, P_KIND]
    H, W, C = prog[l, P_IH], prog[l, P_IW], prog[l, P_IC]
    Ho, Wo, F = prog[l, P_OH], prog[l, P_OW], prog[l, P_OC]
    poff = prog[l, P_POFF]
    m = Ain.shape[0]
    if kind == _DENSE:
        nin = H * W * C
        Wb = params[poff:poff + prog[l, P_PLEN]].reshape((nin + 1, F))
        Gb = G[poff:poff + prog[l, P_PLEN]].reshape((nin + 1, F))
        t = tmp[:nin * F].reshape((nin, F))
        np.dot(Ain.T, D, t)
        Gw = Gb[1:]
        for k in range(nin):
            gk = Gw[k]
            tk = t[k]
            for f in range(F):
                gk[f] += tk[f]
        g0 = Gb[0]
        for r in range(m):
            dr = D[r]
            for f in range(F):
                g0[f] += dr[f]
        if need_input:
            np.dot(D, Wb[1:].T, Dprev)
    elif kind == _TIED:
        toff = prog[l, P_TIED]
        Wt = params[toff:toff + (F + 1) * C].reshape((F + 1, C))
        Gt = G[toff:toff + (F + 1) * C].reshape((F + 1, C))[1:]
        t = tmp[:F * C].reshape((F, C))
        np.dot(D.T, Ain, t)
        for k in range(F):
            gk = Gt[k]
            tk = t[k]
            for c in range(C):
                gk[c] += tk[c]
        g0 = G[poff:poff + F]
        for r in range(m):
            dr = D[r]
            for f in range(F):
                g0[f] += dr[f]
        if need_input:
            np.dot(D, Wt[1:], Dprev)
    elif kind == _CONV:
        Wb = params[poff:poff + prog[l, P_PLEN]].reshape((-1, F))
        Gb = G[poff:poff + prog[l, P_PLEN]].reshape((-1, F))
        K = Wb.shape[0] - 1
        _conv_backward(Ain, Wb, D, H, W, C, prog[l, P_KH], prog[l, P_KW], prog[l, P_S],
                       prog[l, P_PH], prog[l, P_PW], Ho, Wo, F, Gb, Dprev, need_input, cols,
                       dcols, tmp[:K * F].reshape((K, F)), nbs[l])
    elif need_input:
        if kind == _MAXPOOL or kind == _AVGPOOL:
            _pool_backward(kind, D, argmax, W, C, prog[l, P_KH], prog[l, P_KW], prog[l, P_S],
                           Ho, Wo, Dprev)
        elif kind == _FLATTEN:
            for n in range(m):
                d = D[n]
                o = Dprev[n]
                for i in range(H * W):
                    for c in range(C):
                        o[i * C + c] = d[c * H * W + i]
        else:
            Dprev[:, :] = D


@njit(cache=True)
def _forward_batch(params, prog, Xb, A, aoff, am, cols, nbs):
    """Every row's outputs for the batch ``Xb`` into the buffer ``A`` (offsets ``aoff``)."""
    m = Xb.shape[0]
    L = prog.shape[0]
    Ain = Xb
    for l in range(L):
        n = prog[l, P_OH] * prog[l, P_OW] * prog[l, P_OC]
        Aout = A[aoff[l]:aoff[l] + m * n].reshape((m, n))
        amx = am[l, :m * n].reshape((m, n)) if prog[l, P_KIND] == _MAXPOOL else am[0, :0].reshape((0, 0))
        _row_forward(params, prog, l, Ain, Aout, amx, cols, nbs)
        Ain = Aout


@njit(cache=True)
def _backprop_batch(params, prog, loss_kind, Xb, Yb, G, A, aoff, am, cols, dcols, tmp, D0, D1,
                    nbs):
    """Forward and backward over the batch; ``G`` += the summed gradient; returns the loss."""
    m = Xb.shape[0]
    L = prog.shape[0]
    _forward_batch(params, prog, Xb, A, aoff, am, cols, nbs)
    nL = prog[L - 1, P_OC]
    out = A[aoff[L - 1]:aoff[L - 1] + m * nL].reshape((m, nL))
    D = D0[:m * nL].reshape((m, nL))
    kind = prog[L - 1, P_ACT]
    total = 0.0
    for r in range(m):
        total += _loss_delta(kind, loss_kind, out[r], Yb[r], D[r])
    cur, nxt = D0, D1
    for l in range(L - 1, -1, -1):
        n = prog[l, P_OH] * prog[l, P_OW] * prog[l, P_OC]
        nin = prog[l, P_IH] * prog[l, P_IW] * prog[l, P_IC]
        D = cur[:m * n].reshape((m, n))
        Dp = nxt[:m * nin].reshape((m, nin))
        Ain = Xb if l == 0 else A[aoff[l - 1]:aoff[l - 1] + m * nin].reshape((m, nin))
        amx = am[l, :m * n].reshape((m, n)) if prog[l, P_KIND] == _MAXPOOL else am[0, :0].reshape((0, 0))
        _row_backward(params, prog, l, Ain, D, Dp, l > 0, G, amx, cols, dcols, tmp, nbs)
        if l > 0:
            _times_dact(prog[l - 1, P_ACT], nxt[:m * nin], A[aoff[l - 1]:aoff[l - 1] + m * nin])
        cur, nxt = nxt, cur
    return total


@njit(cache=True)
def _penalty_value(penalty, lam, params, prog):
    total = 0.0
    for l in range(prog.shape[0]):
        kind = prog[l, P_KIND]
        if kind != _DENSE and kind != _CONV:
            continue
        lo = prog[l, P_POFF] + prog[l, P_OC]
        hi = prog[l, P_POFF] + prog[l, P_PLEN]
        s = 0.0
        for i in range(lo, hi):
            w = np.float64(params[i])
            s += w * w if penalty == _L2 else abs(w)
        total += lam / 2 * s if penalty == _L2 else lam * s
    return total


@njit(cache=True)
def _penalty_grad(penalty, lam, params, prog, G):
    lamt = params.dtype.type(lam)
    for l in range(prog.shape[0]):
        kind = prog[l, P_KIND]
        if kind != _DENSE and kind != _CONV:
            continue
        lo = prog[l, P_POFF] + prog[l, P_OC]
        hi = prog[l, P_POFF] + prog[l, P_PLEN]
        for i in range(lo, hi):
            w = params[i]
            if penalty == _L2:
                G[i] += lamt * w
            elif w > 0:
                G[i] += lamt
            elif w < 0:
                G[i] -= lamt


@njit(cache=True)
def _optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps, lr_t):
    """One update, as :func:`fastnet.reference.kernels.optimizer_step` (Adam's step ``lr_t``)."""
    n = params.shape[0]
    lr_ = params.dtype.type(lr)
    mu_ = params.dtype.type(mu)
    rho_ = params.dtype.type(rho)
    eps_ = params.dtype.type(eps)
    one = params.dtype.type(1)
    if optimizer == _SGD:
        for i in range(n):
            params[i] -= lr_ * grad[i]
    elif optimizer == _MOMENTUM or optimizer == _NESTEROV:
        for i in range(n):
            v = state[i] * mu_
            v = v - lr_ * grad[i]
            state[i] = v
            if optimizer == _MOMENTUM:
                params[i] += v
            else:
                params[i] += mu_ * v - lr_ * grad[i]
    elif optimizer == _RMSPROP:
        for i in range(n):
            g = grad[i]
            s = state[i] * rho_
            s = s + (one - rho_) * g * g
            state[i] = s
            params[i] -= lr_ * g / (np.sqrt(s) + eps_)
    else:
        lt = params.dtype.type(lr_t)
        for i in range(n):
            g = grad[i]
            m1 = state[i] * mu_
            m1 = m1 + (one - mu_) * g
            state[i] = m1
            v = state[n + i] * rho_
            v = v + (one - rho_) * g * g
            state[n + i] = v
            params[i] -= lt * m1 / (np.sqrt(v) + eps_)


@njit(cache=True)
def _adam_lr(lr, beta1, beta2, t):
    k = float(t) + 1.0
    return lr * np.sqrt(1.0 - beta2 ** k) / (1.0 - beta1 ** k)


@njit(cache=True)
def _alloc(prog, m, params, n_out):
    """The workspace of a batch of ``m`` samples (a tuple, allocated once per kernel call)."""
    n_in = prog[0, P_IH] * prog[0, P_IW] * prog[0, P_IC]
    aoff, widest, pool = _workspace(prog, m, n_in)
    A = np.empty(aoff[-1], params.dtype)
    L = prog.shape[0]
    am = np.zeros((L, m * pool if pool else 0), np.int64)
    nbs, size = _conv_sizes(prog, params.itemsize, m)
    cols = np.empty(size, params.dtype)
    dcols = np.empty(size, params.dtype)
    # the largest weight matrix of any row (the gradient products land there first)
    big = 1
    for l in range(L):
        big = max(big, prog[l, P_PLEN], (prog[l, P_OC] + 1) * prog[l, P_IC])
    tmp = np.empty(big, params.dtype)
    D0 = np.empty(m * widest, params.dtype)
    D1 = np.empty(m * widest, params.dtype)
    Xb = np.empty((m, n_in), params.dtype)
    Yb = np.empty((m, n_out), params.dtype)
    off = np.zeros(L + 1, np.int64)
    return A, am, cols, dcols, tmp, D0, D1, nbs, Xb, Yb, off


@njit(cache=True)
def _offsets(prog, k, off):
    for l in range(prog.shape[0]):
        off[l + 1] = off[l] + k * prog[l, P_OH] * prog[l, P_OW] * prog[l, P_OC]


@njit(cache=True, nogil=True)
def _block_forward(params, prog, X, lo, hi, out, ws):
    """``out[lo:hi]`` = the program's outputs for ``X[lo:hi]`` (in pieces of the workspace's size)."""
    A, am, cols, dcols, tmp, D0, D1, nbs, Xb, Yb, off = ws
    L = prog.shape[0]
    nL = prog[L - 1, P_OC]
    cap = Xb.shape[0]
    for s0 in range(lo, hi, cap):
        s1 = min(hi, s0 + cap)
        k = s1 - s0
        for i in range(k):
            Xb[i] = X[s0 + i]
        _offsets(prog, k, off)
        _forward_batch(params, prog, Xb[:k], A, off, am, cols, nbs)
        out[s0:s1] = A[off[L - 1]:off[L - 1] + k * nL].reshape((k, nL))


@njit(cache=True, nogil=True)
def _block_grad(params, prog, loss_kind, X, Y, order, lo, hi, G, ws):
    """``G`` = the summed gradient over samples ``order[lo:hi]``; returns their summed loss."""
    A, am, cols, dcols, tmp, D0, D1, nbs, Xb, Yb, off = ws
    k = hi - lo
    for i in range(k):
        Xb[i] = X[order[lo + i]]
        Yb[i] = Y[order[lo + i]]
    _offsets(prog, k, off)
    G[:] = 0
    return _backprop_batch(params, prog, loss_kind, Xb[:k], Yb[:k], G, A, off, am, cols, dcols,
                           tmp, D0, D1, nbs)


@njit(cache=True, nogil=True)
def _sum_blocks(Gt, nb):
    """``Gt[0] += Gt[1] + ... + Gt[nb-1]``, in block order."""
    G = Gt[0]
    for b in range(1, nb):
        g = Gt[b]
        for i in range(G.shape[0]):
            G[i] += g[i]


@njit(cache=True, nogil=True)
def _step(params, prog, G, k, optimizer, lr, mu, rho, eps, penalty, lam, state, t):
    """The update of one batch of ``k`` samples from its summed gradient ``G`` (as the reference:
    mean, then the penalty's gradient, then the optimiser as step ``t``)."""
    inv = params.dtype.type(k)
    for i in range(G.shape[0]):
        G[i] /= inv
    if penalty != 0 and lam != 0:
        _penalty_grad(penalty, lam, params, prog, G)
    lr_t = _adam_lr(lr, mu, rho, t) if optimizer == _ADAM else lr
    _optimizer_step(optimizer, params, G, state, lr, mu, rho, eps, lr_t)


@njit(cache=True, nogil=True)
def _sum_step(params, prog, Gt, nb, k, optimizer, lr, mu, rho, eps, penalty, lam, state, t):
    _sum_blocks(Gt, nb)
    _step(params, prog, Gt[0], k, optimizer, lr, mu, rho, eps, penalty, lam, state, t)


@njit(cache=True, nogil=True)
def _train_epoch_serial(params, prog, loss_kind, X, Y, order, batch_size, optimizer, lr, mu, rho,
                        eps, penalty, lam, state, t):
    """A whole epoch in one call (one thread)."""
    m = order.shape[0]
    B = min(batch_size, m)
    ws = _alloc(prog, B, params, Y.shape[1])
    G = np.empty_like(params)
    total = 0.0
    b = 0
    for s0 in range(0, m, B):
        s1 = min(m, s0 + B)
        total += _block_grad(params, prog, loss_kind, X, Y, order, s0, s1, G, ws)
        _step(params, prog, G, s1 - s0, optimizer, lr, mu, rho, eps, penalty, lam, state, t + b)
        b += 1
    return total


# ====================================================================== wrappers
def sequential_forward(params, prog, X, out):
    """The program's outputs (see :func:`fastnet.reference.conv.sequential_forward`)."""
    k = "sequential_forward"
    p = cc.Program(k, params, prog)
    p.data(k, params, X, out=out)
    m = X.shape[0]
    cap = min(m, plan.FORWARD_CHUNK)
    nt = threads_for(prog, cap)
    if nt == 1:
        with single_threaded():
            _block_forward(params, prog, X, 0, m, out, _alloc(prog, cap, params, p.n_out))
        return
    nb = n_blocks(nt, -(-m // cap))
    spaces = [_alloc(prog, cap, params, p.n_out) for _ in range(min(nt, nb))]
    free = list(range(len(spaces)))

    def job(b, lo, hi):
        with _ws_lock:
            w = free.pop()
        try:
            with single_threaded():
                _block_forward(params, prog, X, lo * cap, min(m, hi * cap), out, spaces[w])
        finally:
            with _ws_lock:
                free.append(w)

    run_blocks(nt, -(-m // cap), job, nblocks=nb)


def sequential_backprop(params, prog, loss_kind, X, Y, grad):
    """Summed loss and gradient (see :func:`fastnet.reference.conv.sequential_backprop`)."""
    k = "sequential_backprop"
    p = cc.Program(k, params, prog)
    p.data(k, params, X, Y)
    kc.float_array(k, "grad", grad, ndim=1, dtype=params.dtype)
    kc.shape(k, "grad", grad, params.shape)
    kc.writable(k, "grad", grad)
    loss_kind = p.loss(k, loss_kind)
    m = X.shape[0]
    order = np.arange(m, dtype=np.int64)
    nt = threads_for(prog, m)
    if nt == 1:
        with single_threaded():
            return float(_block_grad(params, prog, loss_kind, X, Y, order, 0, m, grad,
                                     _alloc(prog, m, params, p.n_out)))
    nb = n_blocks(nt, m)
    cap = -(-m // nb) + 1
    Gt = np.empty((nb, params.shape[0]), params.dtype)
    spaces = [_alloc(prog, cap, params, p.n_out) for _ in range(nb)]

    def job(b, lo, hi):
        with single_threaded():
            return _block_grad(params, prog, loss_kind, X, Y, order, lo, hi, Gt[b], spaces[b])

    losses = run_blocks(nt, m, job, nblocks=nb)
    _sum_blocks(Gt, nb)
    grad[:] = Gt[0]
    return float(sum(losses))


def sequential_train_epoch(params, prog, loss_kind, X, Y, order, batch_size, optimizer, lr, mu,
                           rho, eps, penalty_kind, lam, state, t):
    """One training epoch (see :func:`fastnet.reference.conv.sequential_train_epoch`)."""
    (p, loss_kind, batch_size, optimizer, lr, mu, rho, eps, penalty_kind, lam,
     t) = cc.training("sequential_train_epoch", params, prog, loss_kind, X, Y, order, batch_size,
                      optimizer, lr, mu, rho, eps, penalty_kind, lam, state, t)
    m = order.shape[0]
    B = min(batch_size, m)
    nt = threads_for(prog, B)
    if nt == 1:
        with single_threaded():
            return float(_train_epoch_serial(params, prog, loss_kind, X, Y, order, B, optimizer,
                                             lr, mu, rho, eps, penalty_kind, lam, state, t))
    nb = n_blocks(nt, B)
    cap = -(-B // nb) + 1
    Gt = np.empty((nb, params.shape[0]), params.dtype)
    spaces = [_alloc(prog, cap, params, p.n_out) for _ in range(nb)]
    total = 0.0
    for b, s0 in enumerate(range(0, m, B)):
        k = min(B, m - s0)

        def job(i, lo, hi, s0=s0):
            with single_threaded():
                return _block_grad(params, prog, loss_kind, X, Y, order, s0 + lo, s0 + hi, Gt[i],
                                   spaces[i])

        nbk = min(nb, k)
        losses = run_blocks(nt, k, job, nblocks=nbk)
        total += sum(losses)
        _sum_step(params, prog, Gt, nbk, k, optimizer, lr, mu, rho, eps, penalty_kind, lam,
                  state, t + b)
    return float(total)


def sequential_penalty_value(penalty_kind, lam, params, prog):
    """The weights' penalty (see :func:`fastnet.reference.conv.sequential_penalty_value`)."""
    k = "sequential_penalty_value"
    pen = kc.code(k, "penalty_kind", penalty_kind, kc.PENALTIES)
    lam = kc.real(k, "lam", lam)
    if pen == Penalty.NONE or lam == 0:
        return 0.0
    cc.Program(k, params, prog)
    return float(_penalty_value(pen, lam, params, prog))


KERNELS = {
    "sequential_forward": sequential_forward,
    "sequential_backprop": sequential_backprop,
    "sequential_train_epoch": sequential_train_epoch,
    "sequential_penalty_value": sequential_penalty_value,
}
