r"""The recurrent kernels (plain RNN and LSTM, BPTT), compiled with Numba.

Same names, signatures and in-place conventions as :mod:`fastnet.reference.rnn`
(read its docstrings for the meaning of every argument).  Each kernel of
:data:`KERNELS` is a thin Python wrapper that checks its arguments once
(:mod:`fastnet._rnn_checks`) and calls one ``@njit`` function: an epoch of
:func:`rnn_seq_epoch` or :func:`rnn_lm_epoch` (every batch's gather,
forward pass, BPTT, clipping and optimiser step) is one compiled call, with
its buffers allocated once.

How a layer runs
----------------
* The input projection :math:`XW + b` is one BLAS GEMM over the whole
  sequence and batch (:func:`_pmm`); for the language model's one-hot input
  it is a row gather :math:`W_{x_t} + b`.
* Each step adds :math:`h_{t-1}U` for the rows still running
  (:func:`fastnet._numba._rnn_math.gemm_nt`, register-tiled dot products
  against the transposed :math:`U`, transposed once per batch) and applies
  the gate nonlinearities and the cell update in one pass over the row
  (vectorised float32 ``sigmoid``/``tanh``).
* BPTT runs backwards over the saved gates, writing :math:`\delta z` over
  them; :math:`\delta h_{t-1} = \delta z_t U^T` is one product per step, and
  the weight gradients are one GEMM each over all the steps after the loop.

Threads: the rows of a batch are independent through the whole recurrence,
forward and BPTT, so with a batch of at least 2 x :data:`MIN_BLOCK_ROWS` rows
the steps of each layer run as one block of rows per thread
(:func:`_forward_parts`, :func:`_backward_parts`, ``prange``; threads from
``FASTNET_NUM_THREADS``, default the CPUs this process may use), with no
synchronisation from step to step, as the Cython backend does.  BLAS then runs
on one thread inside each of them (:func:`fastnet._numba._blas.single_thread`:
OpenBLAS's own workers spin after each call and would fight the blocks for the
cores), and the large GEMMs (the input projections, the weight gradients, the
output layer) are cut into one block of rows or columns per thread
(:func:`_pmm`).  A block's numbers never depend on which thread ran it, so the
whole epoch gives the same bits, run after run, for a given thread count.  (Across
thread counts they agree to rounding: the cuts of the large GEMMs move, and with
unsorted lengths a row may leave or join a two-row tile of the recurrent product.)
With one thread, a small batch, or a BLAS whose threads cannot be set,
everything runs as one block and BLAS threads the large GEMMs itself.
"""
import contextlib

import numpy as np
from numba import njit, prange

from fastnet._codes import Cell, Act, Optimizer
from fastnet._numba import _blas
from fastnet._numba._common import LOG_CLIP
from fastnet._numba._gemm import gemm_address, gemm_rm, NOTRANS, TRANS
from fastnet._numba._rnn_math import JIT, sigmoid, tanh, exp_nonpos, gemm_nt
from fastnet._numba._threading import parallel_ok
from fastnet import _rnn_checks as chk, _threads

__all__ = ["KERNELS", "rnn_forward", "rnn_backward", "clip_grad_norm", "rnn_seq_epoch",
           "rnn_lm_epoch"]

_LSTM = int(Cell.LSTM)
_LINEAR, _SIGMOID, _RELU, _TANH = int(Act.LINEAR), int(Act.SIGMOID), int(Act.RELU), int(Act.TANH)
_SGD, _MOMENTUM, _RMSPROP, _ADAM, _NESTEROV = (int(Optimizer.SGD), int(Optimizer.MOMENTUM),
                                               int(Optimizer.RMSPROP), int(Optimizer.ADAM),
                                               int(Optimizer.NESTEROV))


# ------------------------------------------------------------------- the cells, one row
@njit(**JIT)
def _lstm_row(z, c_prev, c_out, h_out, H):
    """Gates ``[i, f, o, g]`` of one row from its pre-activations (in place), then c and h."""
    for u in range(H):
        i = sigmoid(z[u])
        f = sigmoid(z[H + u])
        o = sigmoid(z[2 * H + u])
        g = tanh(z[3 * H + u])
        c = f * c_prev[u] + i * g
        z[u] = i
        z[H + u] = f
        z[2 * H + u] = o
        z[3 * H + u] = g
        c_out[u] = c
        h_out[u] = o * tanh(c)


@njit(**JIT)
def _rnn_row(act, z, h_out, H):
    """:math:`h = f(z)` of one row."""
    if act == _TANH:
        for u in range(H):
            h_out[u] = tanh(z[u])
    elif act == _SIGMOID:
        for u in range(H):
            h_out[u] = sigmoid(z[u])
    elif act == _RELU:
        zero = z.dtype.type(0)
        for u in range(H):
            h_out[u] = z[u] if z[u] > zero else zero
    else:
        for u in range(H):
            h_out[u] = z[u]


@njit(**JIT)
def _lstm_row_back(gs, c_prev, c_cur, dh, dc, H):
    """One row of the LSTM's backward step: :math:`\\delta z` over the gates, :math:`\\delta c`."""
    one = gs.dtype.type(1)
    for u in range(H):
        i = gs[u]
        f = gs[H + u]
        o = gs[2 * H + u]
        g = gs[3 * H + u]
        tc = tanh(c_cur[u])
        d_h = dh[u]
        d_c = dc[u] + d_h * o * (one - tc * tc)
        gs[u] = d_c * g * i * (one - i)
        gs[H + u] = d_c * c_prev[u] * f * (one - f)
        gs[2 * H + u] = d_h * tc * o * (one - o)
        gs[3 * H + u] = d_c * i * (one - g * g)
        dc[u] = d_c * f


@njit(**JIT)
def _rnn_row_back(act, z, h, dh, H):
    """:math:`\\delta z = \\delta h \\odot f'(z)` of one row, over ``z`` (``f'`` from ``h``)."""
    one = z.dtype.type(1)
    zero = z.dtype.type(0)
    if act == _TANH:
        for u in range(H):
            z[u] = dh[u] * (one - h[u] * h[u])
    elif act == _SIGMOID:
        for u in range(H):
            z[u] = dh[u] * (h[u] * (one - h[u]))
    elif act == _RELU:
        for u in range(H):
            z[u] = dh[u] if z[u] > zero else zero
    else:
        for u in range(H):
            z[u] = dh[u]


# --------------------------------------------------------------------- one layer, steps
@njit(**JIT)
def _copy(dst, src):
    """``dst[:] = src`` for 1-D arrays of one size, as a loop (a slice assignment compiles
    numpy's broadcasting checks and their error messages: seconds per kernel)."""
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@njit(**JIT)
def _zero(a):
    """``a[:] = 0`` for a 1-D array, as a loop."""
    z = a.dtype.type(0)
    for i in range(a.shape[0]):
        a[i] = z


@njit(**JIT)
def _forward_steps(cell, act, UT, HS, CS, GS, lengths, T, r0, r1):
    """The recurrence of rows ``r0 <= b < r1`` over steps ``0..T-1``; ``GS[:T]`` holds the
    input projections.  Each step's product covers the rows still running up to the last
    one (all of them before the first end, in a part sorted by decreasing length)."""
    H = HS.shape[2]
    lstm = cell == _LSTM
    n = r1
    for t in range(T):
        while n > r0 and lengths[n - 1] <= t:
            n -= 1
        if n > r0:
            gemm_nt(HS[t][r0:n], UT, GS[t][r0:n], n - r0, True)
        for b in range(r0, r1):
            if b < n and lengths[b] > t:
                if lstm:
                    _lstm_row(GS[t, b], CS[t, b], CS[t + 1, b], HS[t + 1, b], H)
                else:
                    _rnn_row(act, GS[t, b], HS[t + 1, b], H)
            else:
                _copy(HS[t + 1, b], HS[t, b])
                if lstm:
                    _copy(CS[t + 1, b], CS[t, b])


@njit(**JIT)
def _backward_steps(cell, act, U, HS, CS, GS, dY, has_dy, dh, dc, lengths, T, tmp, r0, r1):
    r"""BPTT of rows ``r0 <= b < r1`` over steps ``T-1..0``: ``GS[:T]`` becomes
    :math:`\delta z`, ``dh``/``dc`` the gradients of the initial state.  ``tmp`` is a
    ``(B, H)`` buffer (rows ``r0:r1`` used)."""
    H = HS.shape[2]
    lstm = cell == _LSTM
    for t in range(T - 1, -1, -1):
        n = r1
        while n > r0 and lengths[n - 1] <= t:
            n -= 1
        for b in range(r0, r1):
            if b < n and lengths[b] > t:
                if has_dy:
                    for u in range(H):
                        dh[b, u] += dY[t, b, u]
                if lstm:
                    _lstm_row_back(GS[t, b], CS[t, b], CS[t + 1, b], dh[b], dc[b], H)
                else:
                    _rnn_row_back(act, GS[t, b], HS[t + 1, b], dh[b], H)
            else:
                _zero(GS[t, b])
        if n > r0:
            gemm_nt(GS[t][r0:n], U, tmp[r0:n], n - r0, False)
            for b in range(r0, n):
                if lengths[b] > t:
                    _copy(dh[b], tmp[b])


# ------------------------------------------------------------------------ threads
#: rows of a batch per thread at least: a batch of fewer than twice this runs as one block
#: (as the Cython backend's ``_MIN_BLOCK_ROWS``)
MIN_BLOCK_ROWS = 8
#: a product is cut across the threads only above this many multiply-adds
MIN_GEMM_WORK = 1e6


def _parts(B):
    """Blocks of rows (one per thread) for a batch of ``B`` rows; see the module's
    docstring, "Threads"."""
    # parallel_ok() first, always: the epoch kernels hold parallel functions, and compiling
    # or loading them starts Numba's threads, which must happen through it (its docstring)
    ok = parallel_ok()
    nt = _threads.default_threads()
    if not ok or nt <= 1 or B < 2 * MIN_BLOCK_ROWS or _blas.CONTROL is None:
        return 1
    return min(nt, B // MIN_BLOCK_ROWS)


@njit(**JIT)
def _cut(c, C, n, align):
    """Start of block ``c`` of ``C`` over ``range(n)``, a multiple of ``align`` (the Cython
    backend's ``_cut``, ``src_cython/_rnn_blocks.pxi``)."""
    if c >= C:
        return n
    r = ((c * n) // C + align - 1) // align * align
    return min(r, n)


@njit(parallel=True, **JIT)
def _forward_parts(cell, act, UT, HS, CS, GS, lengths, T, B, nparts):
    """:func:`_forward_steps` of all ``B`` rows, in ``nparts`` blocks of rows on threads."""
    if nparts <= 1:
        _forward_steps(cell, act, UT, HS, CS, GS, lengths, T, 0, B)
        return
    for p in prange(nparts):
        _forward_steps(cell, act, UT, HS, CS, GS, lengths, T, _cut(p, nparts, B, 4),
                       _cut(p + 1, nparts, B, 4))


@njit(parallel=True, **JIT)
def _backward_parts(cell, act, U, HS, CS, GS, dY, has_dy, dh, dc, lengths, T, B, tmp, nparts):
    """:func:`_backward_steps` of all ``B`` rows, in ``nparts`` blocks of rows on threads."""
    if nparts <= 1:
        _backward_steps(cell, act, U, HS, CS, GS, dY, has_dy, dh, dc, lengths, T, tmp, 0, B)
        return
    for p in prange(nparts):
        _backward_steps(cell, act, U, HS, CS, GS, dY, has_dy, dh, dc, lengths, T, tmp,
                        _cut(p, nparts, B, 4), _cut(p + 1, nparts, B, 4))


@njit(parallel=True, **JIT)
def _pmm(fn, ta, tb, A, B, C, nparts):
    """``C = op(A) @ op(B)`` (``A``, ``B``, ``C`` C-contiguous 2-D, ``op(A)`` = ``A.T`` when
    ``ta`` is :data:`TRANS`; ``fn`` from :func:`gemm_address`): the larger of ``C``'s
    dimensions cut into ``nparts`` blocks on threads, each one single-threaded BLAS call;
    one call (threaded by BLAS itself) for one part or a small product."""
    M, N = C.shape
    K = A.shape[0] if ta == TRANS else A.shape[1]
    if M == 0 or N == 0:
        return
    if K == 0:  # an empty sum
        for i in range(M):
            for j in range(N):
                C[i, j] = 0
        return
    lda, ldb = max(1, A.shape[1]), max(1, B.shape[1])
    if nparts <= 1 or np.float64(M) * N * K < MIN_GEMM_WORK:
        gemm_rm(fn, ta, tb, M, N, K, 1.0, A, 0, lda, B, 0, ldb, 0.0, C, 0, N)
        return
    by_rows = M >= N
    for p in prange(nparts):
        if by_rows:
            lo = _cut(p, nparts, M, 8)
            hi = _cut(p + 1, nparts, M, 8)
            gemm_rm(fn, ta, tb, hi - lo, N, K, 1.0, A, lo if ta == TRANS else lo * lda, lda,
                    B, 0, ldb, 0.0, C, lo * N, N)
        else:
            lo = _cut(p, nparts, N, 16)
            hi = _cut(p + 1, nparts, N, 16)
            gemm_rm(fn, ta, tb, M, hi - lo, K, 1.0, A, 0, lda, B, lo * ldb if tb == TRANS
                    else lo, ldb, 0.0, C, lo, N)


@njit(**JIT)
def _bias_rows(Z, bias):
    for r in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            Z[r, j] += bias[j]


@njit(**JIT)
def _project_dense(X2, W, bias, Z2, fn, nparts):
    """``Z2 = X2 @ W + bias`` (one GEMM, :func:`_pmm`)."""
    _pmm(fn, NOTRANS, NOTRANS, X2, W, Z2, nparts)
    _bias_rows(Z2, bias)


@njit(**JIT)
def _project_tokens(tok, T, B, W, bias, Z2):
    """``Z2[t B + b] = W[tok[b, t]] + bias``: the one-hot input as a row gather."""
    G = Z2.shape[1]
    for t in range(T):
        for b in range(B):
            row = tok[b, t]
            r = t * B + b
            for j in range(G):
                Z2[r, j] = W[row, j] + bias[j]


@njit(**JIT)
def _bias_grad(Z2, gb, acc):
    """``gb = Z2.sum(axis=0)``, summed in float64 (``acc`` a float64 buffer)."""
    G = Z2.shape[1]
    _zero(acc[:G])
    for r in range(Z2.shape[0]):
        for j in range(G):
            acc[j] += Z2[r, j]
    for j in range(G):
        gb[j] = acc[j]


@njit(**JIT)
def _recurrent_grads(HS, GS, T, B, H, gb, gU, acc, fn, nparts):
    """Bias and recurrent-weight gradients after BPTT: one GEMM over all the steps."""
    G2 = GS[:T].reshape((T * B, GS.shape[2]))
    _bias_grad(G2, gb, acc)
    _pmm(fn, TRANS, NOTRANS, HS[:T].reshape((T * B, H)), G2, gU, nparts)


@njit(**JIT)
def _transpose(U, UT):
    for k in range(U.shape[0]):
        for j in range(U.shape[1]):
            UT[j, k] = U[k, j]


@njit(**JIT)
def _forward_impl(cell, act, params, X, lengths, HS, CS, GS, fn, nparts):
    T, B, D = X.shape
    H = HS.shape[2]
    G = GS.shape[2]
    P = params.reshape((1 + D + H, G))
    UT = np.empty((G, H), params.dtype)
    _transpose(P[1 + D:], UT)
    _project_dense(X.reshape((T * B, D)), P[1:1 + D], P[0], GS.reshape((T * B, G)), fn, nparts)
    _forward_parts(cell, act, UT, HS, CS, GS, lengths, T, B, nparts)


@njit(**JIT)
def _backward_impl(cell, act, params, X, lengths, HS, CS, GS, dY, has_dy, dh, dc, grad, dX,
                   need_dx, fn, nparts):
    T, B, D = X.shape
    H = HS.shape[2]
    G = GS.shape[2]
    P = params.reshape((1 + D + H, G))
    Gr = grad.reshape((1 + D + H, G))
    tmp = np.empty((B, H), params.dtype)
    acc = np.empty(G, np.float64)
    _backward_parts(cell, act, P[1 + D:], HS, CS, GS, dY, has_dy, dh, dc, lengths, T, B, tmp,
                    nparts)
    _recurrent_grads(HS, GS, T, B, H, Gr[0], Gr[1 + D:], acc, fn, nparts)
    G2 = GS.reshape((T * B, G))
    _pmm(fn, TRANS, NOTRANS, X.reshape((T * B, D)), G2, Gr[1:1 + D], nparts)
    if need_dx:
        _pmm(fn, NOTRANS, TRANS, G2, P[1:1 + D], dX.reshape((T * B, D)), nparts)


# ------------------------------------------------------------------- clipping, optimiser
@njit(**JIT)
def _clip(grad, max_norm):
    s = 0.0
    for i in range(grad.shape[0]):
        v = np.float64(grad[i])
        s += v * v
    norm = np.sqrt(s)
    if np.isfinite(norm) and norm > max_norm:
        f = grad.dtype.type(max_norm / norm)
        for i in range(grad.shape[0]):
            grad[i] *= f
    return norm


@njit(**JIT)
def _adam_lr(lr, beta1, beta2, t):
    k = np.float64(t) + 1.0
    return lr * np.sqrt(1.0 - beta2 ** k) / (1.0 - beta1 ** k)


@njit(**JIT)
def _opt_step(optimizer, p, g, state, lr, mu, rho, eps, t):
    """The optimiser contract's step (:func:`fastnet.reference.kernels.optimizer_step`)."""
    n = p.shape[0]
    dt = p.dtype.type
    lr_, mu_, rho_, eps_ = dt(lr), dt(mu), dt(rho), dt(eps)
    one = dt(1)
    if optimizer == _SGD:
        for i in range(n):
            p[i] -= lr_ * g[i]
    elif optimizer == _MOMENTUM or optimizer == _NESTEROV:
        nest = optimizer == _NESTEROV
        for i in range(n):
            v = state[i] * mu_ - lr_ * g[i]
            state[i] = v
            p[i] += (mu_ * v - lr_ * g[i]) if nest else v
    elif optimizer == _RMSPROP:
        for i in range(n):
            s = state[i] * rho_ + (one - rho_) * g[i] * g[i]
            state[i] = s
            p[i] -= lr_ * g[i] / (np.sqrt(s) + eps_)
    else:
        lr_t = dt(_adam_lr(lr, mu, rho, t))
        for i in range(n):
            m1 = state[i] * mu_ + (one - mu_) * g[i]
            m2 = state[n + i] * rho_ + (one - rho_) * g[i] * g[i]
            state[i] = m1
            state[n + i] = m2
            p[i] -= lr_t * m1 / (np.sqrt(m2) + eps_)


# -------------------------------------------------------------------------- the output
@njit(**JIT)
def _softmax_loss(Z, live, y_of, scale):
    """The rows ``r`` of logits with ``live[r] > 0`` become :math:`(p - e_y) \\cdot` ``scale``
    (the others 0); returns their summed :math:`-\\log p_y` (float64, clipped).  ``y_of[r]``
    is row ``r``'s target."""
    K = Z.shape[1]
    total = 0.0
    for r in range(Z.shape[0]):
        if live[r] <= 0:
            _zero(Z[r])
            continue
        mx = Z[r, 0]
        for j in range(1, K):
            mx = max(mx, Z[r, j])
        s = Z.dtype.type(0)
        for j in range(K):
            e = exp_nonpos(Z[r, j] - mx)
            Z[r, j] = e
            s += e
        for j in range(K):
            Z[r, j] = Z[r, j] / s
        y = y_of[r]
        total -= np.log(max(np.float64(Z[r, y]), LOG_CLIP))
        Z[r, y] -= 1
        for j in range(K):
            Z[r, j] *= scale
    return total


@njit(**JIT)
def _offsets(cell, sizes):
    L = sizes.shape[0] - 2
    offs = np.zeros(L + 2, np.int64)
    for l in range(L):
        H = sizes[l + 1]
        G = 4 * H if cell == _LSTM else H
        offs[l + 1] = offs[l] + (1 + sizes[l] + H) * G
    offs[L + 1] = offs[L] + (sizes[L] + 1) * sizes[L + 1]
    return offs


@njit(**JIT)
def _layer(buf, l, shape0, B, width):
    """Layer ``l``'s buffer of ``buf`` (a list of flat arrays) as ``(shape0, B, width)``."""
    return buf[l][:shape0 * B * width].reshape((shape0, B, width))


@njit(**JIT)
def _alloc(cell, sizes, T, B, params):
    """The buffers of an epoch, once per call, as lists of flat arrays (one per layer):
    ``HS`` (T+1, B, H_l), ``CS`` (the LSTM's), ``GS`` (T, B, G_l), ``DX`` (T, B, H_{l-1}) for
    l >= 1, ``UT`` (G_l, H_l), ``DH``/``DC`` (B, H_l); read through :func:`_layer`."""
    dt = params.dtype
    L = sizes.shape[0] - 2
    lstm = cell == _LSTM
    g = 4 if lstm else 1
    HS = [np.zeros((T + 1) * B * sizes[l + 1], dt) for l in range(L)]
    CS = [np.zeros((T + 1) * B * sizes[l + 1] if lstm else 1, dt) for l in range(L)]
    GS = [np.zeros(T * B * g * sizes[l + 1], dt) for l in range(L)]
    DX = [np.zeros(T * B * sizes[l] if l > 0 else 1, dt) for l in range(L)]
    UT = [np.zeros(g * sizes[l + 1] * sizes[l + 1], dt) for l in range(L)]
    DH = [np.zeros(B * sizes[l + 1], dt) for l in range(L)]
    DC = [np.zeros(B * sizes[l + 1], dt) for l in range(L)]
    return HS, CS, GS, DX, UT, DH, DC


@njit(**JIT)
def _net_forward(cell, act, params, sizes, offs, T, B, lengths, HS, CS, GS, UT, fn, nparts):
    """Forward through every layer, the first one's projection already in ``GS[0]``."""
    L = sizes.shape[0] - 2
    for l in range(L):
        D, H = sizes[l], sizes[l + 1]
        G = 4 * H if cell == _LSTM else H
        P = params[offs[l]:offs[l + 1]].reshape((1 + D + H, G))
        hs = _layer(HS, l, T + 1, B, H)
        gs = _layer(GS, l, T, B, G)
        if l > 0:
            Hd = sizes[l]
            _project_dense(_layer(HS, l - 1, T + 1, B, Hd)[1:].reshape((T * B, Hd)),
                           P[1:1 + D], P[0], gs.reshape((T * B, G)), fn, nparts)
        ut = UT[l][:G * H].reshape((G, H))
        _forward_parts(cell, act, ut, hs, _layer(CS, l, T + 1, B, H) if cell == _LSTM
                       else hs, gs, lengths, T, B, nparts)


@njit(**JIT)
def _net_backward(cell, act, params, grad, sizes, offs, T, B, lengths, HS, CS, GS, DX,
                  DH, DC, dY_top, has_dy, tmp, acc, tok, X2, fn, nparts):
    """BPTT through every layer, top down; ``DH[L-1]`` holds the top state's gradient.  The
    first layer's input gradient comes from ``tok`` (one-hot) or ``X2`` (dense)."""
    L = sizes.shape[0] - 2
    for l in range(L - 1, -1, -1):
        D, H = sizes[l], sizes[l + 1]
        G = 4 * H if cell == _LSTM else H
        P = params[offs[l]:offs[l + 1]].reshape((1 + D + H, G))
        Gr = grad[offs[l]:offs[l + 1]].reshape((1 + D + H, G))
        hs = _layer(HS, l, T + 1, B, H)
        gs = _layer(GS, l, T, B, G)
        dh = DH[l][:B * H].reshape((B, H))
        dc = DC[l][:B * H].reshape((B, H))
        if l < L - 1:
            _zero(dh.reshape(B * H))
        _zero(dc.reshape(B * H))
        if l == L - 1:
            dy = dY_top
            hd = has_dy
        else:
            dy = _layer(DX, l + 1, T, B, H)
            hd = True
        _backward_parts(cell, act, P[1 + D:], hs, _layer(CS, l, T + 1, B, H) if cell == _LSTM
                        else hs, gs, dy, hd, dh, dc, lengths, T, B,
                        tmp[:B * H].reshape((B, H)), nparts)
        _recurrent_grads(hs, gs, T, B, H, Gr[0], Gr[1 + D:], acc, fn, nparts)
        G2 = gs.reshape((T * B, G))
        if l > 0:
            Hd = sizes[l]
            _pmm(fn, TRANS, NOTRANS, _layer(HS, l - 1, T + 1, B, Hd)[1:].reshape((T * B, Hd)),
                 G2, Gr[1:1 + D], nparts)
            _pmm(fn, NOTRANS, TRANS, G2, P[1:1 + D], _layer(DX, l, T, B, Hd).reshape((T * B, Hd)),
                 nparts)
        elif tok.shape[0] > 0:  # one-hot input: scatter the rows
            gW = Gr[1:1 + D]
            _zero(gW.reshape(D * G))
            for t in range(T):
                for b in range(B):
                    row = tok[b, t]
                    r = t * B + b
                    for j in range(G):
                        gW[row, j] += G2[r, j]
        else:
            _pmm(fn, TRANS, NOTRANS, X2, G2, Gr[1:1 + D], nparts)


@njit(**JIT)
def _transpose_all(cell, params, sizes, offs, UT):
    for l in range(sizes.shape[0] - 2):
        D, H = sizes[l], sizes[l + 1]
        G = 4 * H if cell == _LSTM else H
        P = params[offs[l]:offs[l + 1]].reshape((1 + D + H, G))
        _transpose(P[1 + D:], UT[l][:G * H].reshape((G, H)))


# ------------------------------------------------------------------------ epoch kernels
@njit(**JIT)
def _seq_epoch_impl(cell, act, params, sizes, X, lengths, y, order, batch_size, optimizer, lr,
                    mu, rho, eps, clip, state, t, fn, nparts):
    n, T, D = X.shape
    L = sizes.shape[0] - 2
    K = sizes[L + 1]
    Htop = sizes[L]
    dt = params.dtype
    offs = _offsets(cell, sizes)
    m = order.shape[0]
    B = min(batch_size, m)
    HS, CS, GS, DX, UT, DH, DC = _alloc(cell, sizes, T, B, params)
    Gmax = 4 * sizes[1:L + 1].max() if cell == _LSTM else sizes[1:L + 1].max()
    tmp = np.empty(B * sizes[1:L + 1].max(), dt)
    acc = np.empty(max(Gmax, K), np.float64)
    Xb = np.zeros((T, B, D), dt)
    lb = np.zeros(B, np.int64)
    idx = np.empty(B, np.int64)
    yb = np.zeros(B, np.int64)
    Z = np.empty((B, K), dt)
    grad = np.zeros_like(params)
    empty = np.empty((0, 0, 0), dt)
    no_tok = np.empty((0, 0), np.int64)
    total = 0.0
    k = 0
    for start in range(0, m, batch_size):
        Bk = min(batch_size, m - start)
        # the batch by decreasing length (stable insertion sort); padding rows have length 0
        for i in range(Bk):
            s = order[start + i]
            j = i
            while j > 0 and lengths[idx[j - 1]] < lengths[s]:
                idx[j] = idx[j - 1]
                j -= 1
            idx[j] = s
        # the rows past the samples are padding of length 0
        _zero(lb)
        _zero(yb)
        _zero(Xb.reshape(T * B * D))
        Te = 0
        for i in range(Bk):
            s = idx[i]
            b = i
            lb[b] = lengths[s]
            yb[b] = y[s]
            Te = max(Te, lb[b])
            for tt in range(T):
                _copy(Xb[tt, b], X[s, tt])
        _transpose_all(cell, params, sizes, offs, UT)
        for l in range(L):
            _zero(HS[l][:B * sizes[l + 1]])
            if cell == _LSTM:
                _zero(CS[l][:B * sizes[l + 1]])
        G0 = 4 * sizes[1] if cell == _LSTM else sizes[1]
        P0 = params[offs[0]:offs[1]].reshape((1 + D + sizes[1], G0))
        X2 = Xb[:Te].reshape((Te * B, D))
        _project_dense(X2, P0[1:1 + D], P0[0], _layer(GS, 0, Te, B, G0).reshape((Te * B, G0)),
                       fn, nparts)
        _net_forward(cell, act, params, sizes, offs, Te, B, lb, HS, CS, GS, UT, fn, nparts)
        # the softmax on each sequence's last state
        hT = _layer(HS, L - 1, Te + 1, B, Htop)[Te]
        Ph = params[offs[L]:offs[L + 1]].reshape((Htop + 1, K))
        Gh = grad[offs[L]:offs[L + 1]].reshape((Htop + 1, K))
        np.dot(hT, Ph[1:], Z)
        _bias_rows(Z, Ph[0])
        total += _softmax_loss(Z, lb, yb, dt.type(1) / dt.type(Bk))
        _bias_grad(Z, Gh[0], acc)
        np.dot(hT.T, Z, Gh[1:])
        np.dot(Z, Ph[1:].T, DH[L - 1][:B * Htop].reshape((B, Htop)))
        _net_backward(cell, act, params, grad, sizes, offs, Te, B, lb, HS, CS, GS, DX,
                      DH, DC, empty, False, tmp, acc, no_tok, X2, fn, nparts)
        _clip(grad, clip)
        _opt_step(optimizer, params, grad, state, lr, mu, rho, eps, t + k)
        k += 1
    return total


@njit(**JIT)
def _lm_epoch_impl(cell, act, params, sizes, tokens, seq_len, hs, cs, optimizer, lr, mu, rho,
                   eps, clip, state, t, fn, nparts):
    B, N1 = tokens.shape
    N = N1 - 1
    L = sizes.shape[0] - 2
    V = sizes[L + 1]
    Htop = sizes[L]
    dt = params.dtype
    offs = _offsets(cell, sizes)
    T = min(seq_len, N)
    HS, CS, GS, DX, UT, DH, DC = _alloc(cell, sizes, T, B, params)
    Gmax = 4 * sizes[1:L + 1].max() if cell == _LSTM else sizes[1:L + 1].max()
    tmp = np.empty(B * sizes[1:L + 1].max(), dt)
    acc = np.empty(max(Gmax, V), np.float64)
    lb = np.full(B, T, np.int64)
    live = np.ones(T * B, np.int64)
    Z = np.empty((T * B, V), dt)
    ys = np.empty(T * B, np.int64)
    dY = np.empty((T, B, Htop), dt)
    grad = np.zeros_like(params)
    no_x = np.empty((0, 0), dt)
    total = 0.0
    k = 0
    for start in range(0, N, seq_len):
        S = min(seq_len, N - start)
        tok = tokens[:, start:start + S]
        so = 0
        for l in range(L):  # the carried state
            H = sizes[l + 1]
            _copy(HS[l][:B * H], hs[so:so + B * H])
            if cell == _LSTM:
                _copy(CS[l][:B * H], cs[so:so + B * H])
            so += B * H
        for r in range(B):
            lb[r] = S
        _transpose_all(cell, params, sizes, offs, UT)
        G0 = 4 * sizes[1] if cell == _LSTM else sizes[1]
        P0 = params[offs[0]:offs[1]].reshape((1 + V + sizes[1], G0))
        _project_tokens(tok, S, B, P0[1:1 + V], P0[0], _layer(GS, 0, S, B, G0).reshape((S * B, G0)))
        _net_forward(cell, act, params, sizes, offs, S, B, lb, HS, CS, GS, UT, fn, nparts)
        # the softmax at every step
        Ht = _layer(HS, L - 1, S + 1, B, Htop)[1:].reshape((S * B, Htop))
        Ph = params[offs[L]:offs[L + 1]].reshape((Htop + 1, V))
        Gh = grad[offs[L]:offs[L + 1]].reshape((Htop + 1, V))
        Zs = Z[:S * B]
        _pmm(fn, NOTRANS, NOTRANS, Ht, Ph[1:], Zs, nparts)
        _bias_rows(Zs, Ph[0])
        for tt in range(S):
            for r in range(B):
                ys[tt * B + r] = tokens[r, start + tt + 1]
        total += _softmax_loss(Zs, live, ys, dt.type(1) / dt.type(S * B))
        _bias_grad(Zs, Gh[0], acc)
        _pmm(fn, TRANS, NOTRANS, Ht, Zs, Gh[1:], nparts)
        dYs = dY[:S]
        _pmm(fn, NOTRANS, TRANS, Zs, Ph[1:], dYs.reshape((S * B, Htop)), nparts)
        so = 0
        for l in range(L):  # the state after the chunk, carried to the next one
            H = sizes[l + 1]
            _copy(hs[so:so + B * H], HS[l][S * B * H:(S + 1) * B * H])
            if cell == _LSTM:
                _copy(cs[so:so + B * H], CS[l][S * B * H:(S + 1) * B * H])
            so += B * H
        _zero(DH[L - 1][:B * Htop])
        _net_backward(cell, act, params, grad, sizes, offs, S, B, lb, HS, CS, GS, DX,
                      DH, DC, dYs, True, tmp, acc, tok, no_x, fn, nparts)
        _clip(grad, clip)
        _opt_step(optimizer, params, grad, state, lr, mu, rho, eps, t + k)
        k += 1
    return total


# ------------------------------------------------------------------- checked wrappers
@contextlib.contextmanager
def _blocks(B, dtype):
    """``(fn, nparts)`` for a kernel call on a batch of ``B`` rows: the BLAS function's
    address and the blocks of rows (:func:`_parts`), with BLAS on one thread inside when
    there are several (see the module's docstring, "Threads")."""
    nparts = _parts(B)
    with _blas.single_thread() if nparts > 1 else contextlib.nullcontext():
        yield gemm_address(dtype), nparts


def rnn_forward(cell, act, params, X, lengths, HS, CS, GS):
    """See :func:`fastnet.reference.rnn.rnn_forward`."""
    cell, act, T, B, D, H, G = chk.layer_call("rnn_forward", cell, act, params, X, lengths, HS,
                                              CS, GS)
    with _blocks(B, params.dtype) as (fn, nparts):
        _forward_impl(cell, act, params, X, lengths, HS, CS if cell == _LSTM else HS, GS, fn,
                      nparts)


def rnn_backward(cell, act, params, X, lengths, HS, CS, GS, dY, dh, dc, grad, dX):
    """See :func:`fastnet.reference.rnn.rnn_backward`."""
    cell, act, T, B, D, H, G, has_dy, need_dx = chk.backward_call(
        "rnn_backward", cell, act, params, X, lengths, HS, CS, GS, dY, dh, dc, grad, dX)
    lstm = cell == _LSTM
    with _blocks(B, params.dtype) as (fn, nparts):
        _backward_impl(cell, act, params, X, lengths, HS, CS if lstm else HS, GS,
                       dY if has_dy else HS[1:], has_dy, dh, dc if lstm else dh, grad,
                       dX if need_dx else X, need_dx, fn, nparts)


def clip_grad_norm(grad, max_norm):
    """See :func:`fastnet.reference.rnn.clip_grad_norm`."""
    max_norm = chk.clip_call("clip_grad_norm", grad, max_norm)
    return float(_clip(grad, max_norm))


def rnn_seq_epoch(cell, act, params, sizes, X, lengths, y, order, batch_size, optimizer, lr, mu,
                  rho, eps, clip, state, t):
    """See :func:`fastnet.reference.rnn.rnn_seq_epoch`."""
    cell, act, batch_size, optimizer, lr, mu, rho, eps, clip, t = chk.seq_epoch_call(
        "rnn_seq_epoch", cell, act, params, sizes, X, lengths, y, order, batch_size, optimizer,
        lr, mu, rho, eps, clip, state, t)
    with _blocks(min(batch_size, order.shape[0]), params.dtype) as (fn, nparts):
        return float(_seq_epoch_impl(cell, act, params, sizes, X, lengths, y, order,
                                     batch_size, optimizer, lr, mu, rho, eps, clip, state, t,
                                     fn, nparts))


def rnn_lm_epoch(cell, act, params, sizes, tokens, seq_len, hs, cs, optimizer, lr, mu, rho, eps,
                 clip, state, t):
    """See :func:`fastnet.reference.rnn.rnn_lm_epoch`."""
    cell, act, seq_len, optimizer, lr, mu, rho, eps, clip, t = chk.lm_epoch_call(
        "rnn_lm_epoch", cell, act, params, sizes, tokens, seq_len, hs, cs, optimizer, lr, mu,
        rho, eps, clip, state, t)
    with _blocks(tokens.shape[0], params.dtype) as (fn, nparts):
        return float(_lm_epoch_impl(cell, act, params, sizes, tokens, seq_len, hs,
                                    cs if cell == _LSTM else hs, optimizer, lr, mu, rho, eps,
                                    clip, state, t, fn, nparts))


KERNELS = {"rnn_forward": rnn_forward, "rnn_backward": rnn_backward,
           "clip_grad_norm": clip_grad_norm, "rnn_seq_epoch": rnn_seq_epoch,
           "rnn_lm_epoch": rnn_lm_epoch}
