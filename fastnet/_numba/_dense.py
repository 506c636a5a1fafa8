r"""The dense path of the numba network kernels: whole batches through BLAS.

A batch of ``b`` samples goes through each layer as one matrix product,
``np.dot(A, W, out)`` inside ``@njit`` (Numba calls the ``sgemm``/``dgemm``
of scipy's BLAS), on views of the flat parameter vector (the layout of
:mod:`fastnet._params`: ``W_l[1:]`` is ``(n_l, n_{l+1})`` in C order, so
transposed products use ``.T`` views, never copies):

.. math::

    Z_l = A_{l-1} W_l[1:], \qquad A_l = f(Z_l + W_l[0])
    \qquad\text{(one GEMM, then the fused bias + activation epilogue)}

    G_l[1:] = A_{l-1}^T D_l, \quad G_l[0] = \textstyle\sum_r D_l[r], \qquad
    D_{l-1} = (D_l W_l[1:]^T) \odot f'(A_{l-1})

with the derivative taken from the activation's output and the output error
term fused with the loss (:func:`~fastnet._numba._elementwise.loss_delta_rows`).
Work buffers are allocated once per kernel call, for at most :data:`CHUNK`
rows: larger batches (the full batch, ``forward_network`` on a whole data
set) are done in chunks whose gradients are summed, so memory stays bounded
and a chunk's rows of X are still in cache when its backward pass reads
them.  A batch whose rows are one contiguous run of X (in any order: a
gradient is a sum) is used in place, others are gathered into a buffer once
per batch.  The optimiser step is one fused loop over the flat vector
(:func:`fastnet._numba._optim.step_network`).

Everything here but :func:`train_epoch_blocks` runs on the calling thread,
BLAS included (the wrappers set it to one thread, :mod:`fastnet._numba._blas`);
the wrappers run large batches as blocks of rows on several threads, each
block with its own buffers (:func:`buffers`) and gradient: from Python for
batches of a few milliseconds or more, and for smaller ones in
:func:`train_epoch_blocks`, one compiled call per epoch whose blocks run on
Numba's threads.

Padding the 50-unit layer's weights to 56 or 64 columns (OpenBLAS's
kernels work on multiples of 8 or 16) was measured: it speeds the forward
product ``X W`` by 10 to 20 % but not the gradient ``X^T D``, under 10 %
of an epoch, so the dense path multiplies the layers as they are.
"""
import numpy as np
from numba import njit, prange

from fastnet._numba._common import JIT, L1, L2, ADAM, SGD, SOFTMAX, copy_into, fill, offsets
from fastnet._numba._elementwise import (bias_act_rows, loss_delta_rows,
                                         mul_dact, col_sums_into)
from fastnet._numba._gemm import gemm_rm, NOTRANS, TRANS
from fastnet._numba._optim import adam_lr, step_network, step_range

#: Rows per chunk of the work buffers: batches above this are done in chunks.  A chunk's
#: rows of X are read by its forward product and again by its weight gradient: 512 rows of
#: MNIST (1.6 MB) are still in cache for the second read, where 2,048 (6.4 MB) were not
#: (the same choice as the Cython backend's ``_DENSE_ROWS``, measured there).
CHUNK = 512


@njit(**JIT)
def _weights(params, sizes, offs, l):
    """``W_l[1:]`` as a ``(n_l, n_{l+1})`` view (C order)."""
    n = sizes[l + 1]
    return params[offs[l] + n:offs[l + 1]].reshape((sizes[l], n))


@njit(**JIT)
def _view(buf, b, n):
    """The first ``b * n`` entries of the flat ``buf`` as a ``(b, n)`` C-order matrix."""
    return buf[:b * n].reshape((b, n))


@njit(**JIT)
def workspace(sizes, rows, dtype_like):
    """Buffers for batches of up to ``rows`` samples.

    Returns ``acts`` (every layer's activations, layer ``l`` at
    ``aoff[l]``), ``aoff`` and two error-term buffers of the widest layer.
    """
    L = sizes.shape[0] - 1
    aoff = np.zeros(L + 1, np.int64)
    widest = 1
    for l in range(L):
        aoff[l + 1] = aoff[l] + rows * sizes[l + 1]
        widest = max(widest, sizes[l + 1])
    acts = np.empty(aoff[L], dtype_like.dtype)
    d0 = np.empty(rows * widest, dtype_like.dtype)
    d1 = np.empty(rows * widest, dtype_like.dtype)
    return acts, aoff, d0, d1


@njit(**JIT)
def forward_block(params, sizes, offs, kinds, Xb, acts, aoff, out):
    """Forward the rows of ``Xb``: layer ``l``'s activations into ``acts`` (the last into ``out``
    when ``out`` has rows, else into ``acts`` too)."""
    L = kinds.shape[0]
    b = Xb.shape[0]
    inp = Xb
    for l in range(L):
        n = sizes[l + 1]
        o = offs[l]
        if l == L - 1 and out.shape[0] == b:
            Z = out
        else:
            Z = _view(acts[aoff[l]:], b, n)
        np.dot(inp, _weights(params, sizes, offs, l), Z)
        bias_act_rows(kinds[l], Z, params[o:o + n])
        inp = Z


@njit(**JIT)
def backward_block(params, sizes, offs, kinds, loss_kind, Xb, Yb, acts, aoff, d0, d1, G):
    """``G =`` the summed gradient of the rows of ``Xb`` just forwarded; returns their loss."""
    L = kinds.shape[0]
    b = Xb.shape[0]
    nL = sizes[L]
    D = _view(d0, b, nL)
    spare = d1
    other = d0
    total = loss_delta_rows(kinds[L - 1], loss_kind, _view(acts[aoff[L - 1]:], b, nL), Yb, D)
    for l in range(L - 1, -1, -1):
        n = sizes[l + 1]
        nin = sizes[l]
        o = offs[l]
        col_sums_into(D, G[o:o + n])
        Gw = G[o + n:offs[l + 1]].reshape((nin, n))
        if l == 0:
            np.dot(Xb.T, D, Gw)
        else:
            Ap = _view(acts[aoff[l - 1]:], b, nin)
            np.dot(Ap.T, D, Gw)
            Dp = _view(spare, b, nin)
            np.dot(D, _weights(params, sizes, offs, l).T, Dp)
            mul_dact(kinds[l - 1], spare[:b * nin], acts[aoff[l - 1]:aoff[l - 1] + b * nin])
            spare, other = other, spare
            D = Dp
    return total


@njit(**JIT)
def _add_into(G, Gc):
    for p in range(G.shape[0]):
        G[p] += Gc[p]


@njit(**JIT)
def forward_rows(params, sizes, kinds, X, out, lo, hi):
    """``out[lo:hi] =`` the network's output for rows ``lo:hi`` of X (in chunks)."""
    offs = offsets(sizes)
    rows = max(1, min(hi - lo, CHUNK))
    acts, aoff, d0, d1 = workspace(sizes, rows, params)
    for s in range(lo, hi, CHUNK):
        e = min(s + CHUNK, hi)
        forward_block(params, sizes, offs, kinds, X[s:e], acts, aoff, out[s:e])


@njit(**JIT)
def _run_start(idx, mark):
    """First row of X if the batch ``idx`` is one contiguous run of rows in any order, else -1.

    ``mark`` (a bool per row of X, all False) is used and reset for batches
    that are not in increasing order.
    """
    b = idx.shape[0]
    lo = idx[0]
    hi = idx[0]
    inc = True
    for j in range(b):
        v = idx[j]
        if v != idx[0] + j:
            inc = False
        lo = min(lo, v)
        hi = max(hi, v)
    if inc:
        return lo
    if hi - lo + 1 != b or b < 64:
        return -1
    ok = True
    for j in range(b):
        if mark[idx[j]]:
            ok = False
        mark[idx[j]] = True
    for j in range(b):
        mark[idx[j]] = False
    return lo if ok else -1


@njit(**JIT)
def _gather(X, idx, Xg):
    for j in range(idx.shape[0]):
        copy_into(Xg[j], X[idx[j]])


@njit(**JIT)
def batch_gradient(params, sizes, offs, kinds, loss_kind, X, Y, idx, G, Gc, acts, aoff, d0, d1,
                   Xg, Yg, mark):
    """``G =`` the summed gradient of the samples ``idx`` (chunks of at most :data:`CHUNK`
    rows, summed through ``Gc``); returns their summed loss.

    A chunk whose rows are one contiguous run of X (in any order) is used in
    place, others are gathered into ``Xg``/``Yg``.
    """
    b = idx.shape[0]
    none = X[:0]
    total = 0.0
    for cs in range(0, b, CHUNK):
        ce = min(cs + CHUNK, b)
        run = _run_start(idx[cs:ce], mark)
        if run >= 0:
            Xb = X[run:run + ce - cs]
            Yb = Y[run:run + ce - cs]
        else:
            Xb = Xg[:ce - cs]
            Yb = Yg[:ce - cs]
            _gather(X, idx[cs:ce], Xb)
            _gather(Y, idx[cs:ce], Yb)
        forward_block(params, sizes, offs, kinds, Xb, acts, aoff, none)
        if cs == 0:
            total += backward_block(params, sizes, offs, kinds, loss_kind, Xb, Yb, acts, aoff, d0,
                                    d1, G)
        else:
            total += backward_block(params, sizes, offs, kinds, loss_kind, Xb, Yb, acts, aoff, d0,
                                    d1, Gc)
            _add_into(G, Gc)
    return total


@njit(**JIT)
def buffers(params, sizes, X, Y, B):
    """The work buffers of batches of up to ``B`` samples (the last arguments of
    :func:`batch_gradient`, in order)."""
    rows = max(1, min(B, CHUNK))
    acts, aoff, d0, d1 = workspace(sizes, rows, params)
    Gc = np.empty_like(params) if B > CHUNK else params[:0]
    Xg = np.empty((rows, X.shape[1]), X.dtype)
    Yg = np.empty((rows, Y.shape[1]), Y.dtype)
    mark = np.zeros(X.shape[0], np.bool_)
    return Gc, acts, aoff, d0, d1, Xg, Yg, mark


@njit(**JIT)
def sum_rows_into(Gs):
    """``Gs[0] += Gs[1] + Gs[2] + ...`` in row order."""
    g = Gs[0]
    for b in range(1, Gs.shape[0]):
        h = Gs[b]
        for p in range(g.shape[0]):
            g[p] += h[p]


@njit(**JIT)
def gradient(params, sizes, kinds, loss_kind, X, Y, idx, G):
    """``G =`` the summed gradient of the samples ``idx``; returns their summed loss."""
    offs = offsets(sizes)
    if idx.shape[0] == 0:
        fill(G, 0)
        return 0.0
    Gc, acts, aoff, d0, d1, Xg, Yg, mark = buffers(params, sizes, X, Y, idx.shape[0])
    return batch_gradient(params, sizes, offs, kinds, loss_kind, X, Y, idx, G, Gc, acts, aoff, d0,
                          d1, Xg, Yg, mark)


@njit(**JIT)
def train_epoch(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer, lr, mu, rho,
                eps, penalty, lam, state, t):
    """One epoch of (mini-)batch training on the dense path; returns the summed loss."""
    offs = offsets(sizes)
    m = order.shape[0]
    B = min(batch_size, m)
    Gc, acts, aoff, d0, d1, Xg, Yg, mark = buffers(params, sizes, X, Y, B)
    G = np.empty_like(params)
    total = 0.0
    step = 0
    for start in range(0, m, B):
        stop = min(start + B, m)
        total += batch_gradient(params, sizes, offs, kinds, loss_kind, X, Y, order[start:stop], G,
                                Gc, acts, aoff, d0, d1, Xg, Yg, mark)
        step_network(params, G, state, sizes, offs, stop - start, optimizer, lr, mu, rho, eps,
                     penalty, lam, t + step, False)
        step += 1
    return total


@njit(parallel=True, **JIT)
def train_epoch_blocks(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer, lr,
                       mu, rho, eps, penalty, lam, state, t, nb):
    """:func:`train_epoch` with each batch cut into ``nb`` blocks of rows run on Numba's
    threads (``prange``: one compiled call per epoch, no Python per batch).

    Each block has its own work buffers and gradient; the gradients are summed in block
    order (:func:`sum_rows_into`) before the batch's step, so the numbers depend on ``nb``
    and never on which thread ran which block.
    """
    offs = offsets(sizes)
    m = order.shape[0]
    B = min(batch_size, m)
    rows = max(1, -(-B // nb))
    crow = min(rows, CHUNK)
    acts, aoff, d0, d1 = workspace(sizes, crow, params)
    A = np.empty((nb, acts.shape[0]), params.dtype)
    D0 = np.empty((nb, d0.shape[0]), params.dtype)
    D1 = np.empty((nb, d1.shape[0]), params.dtype)
    Gs = np.empty((nb, params.shape[0]), params.dtype)
    Gcs = np.empty((nb, params.shape[0] if rows > CHUNK else 0), params.dtype)
    Xgs = np.empty((nb, crow, X.shape[1]), X.dtype)
    Ygs = np.empty((nb, crow, Y.shape[1]), Y.dtype)
    marks = np.zeros((nb, X.shape[0]), np.bool_)
    losses = np.zeros(nb)
    total = 0.0
    for step in range(-(-m // B)):
        start = step * B
        n = min(B, m - start)
        for b in prange(nb):
            lo = start + (n * b) // nb
            hi = start + (n * (b + 1)) // nb
            if hi > lo:
                losses[b] = batch_gradient(params, sizes, offs, kinds, loss_kind, X, Y,
                                           order[lo:hi], Gs[b], Gcs[b], A[b], aoff, D0[b], D1[b],
                                           Xgs[b], Ygs[b], marks[b])
            else:
                fill(Gs[b], 0)
                losses[b] = 0.0
        for b in range(nb):
            total += losses[b]
        sum_rows_into(Gs)
        step_network(params, Gs[0], state, sizes, offs, n, optimizer, lr, mu, rho, eps, penalty,
                     lam, t + step, False)
    return total


# ------------------------------------------------------------ small batches cut in parts
#: rows of a part at least: a layer's products are cut in parts only along a dimension of at
#: least 2 * PART_MIN (else the layer runs whole, on one thread)
PART_MIN = 16


@njit(**JIT)
def part_at(n, s, parts):
    """Where part ``s`` of ``parts`` of ``0 .. n`` starts, on a multiple of 16 entries when
    ``n`` allows (the same cut as the Cython backend's)."""
    if s >= parts:
        return n
    q = (n * s) // parts
    q = (q + 8) // 16 * 16
    return min(q, n)


@njit(**JIT)
def _forward_part(fn, params, sizes, offs, kinds, l, A, a0, lda, b, Z, Zp, s, parts):
    """Part ``s`` of layer ``l``'s forward product.  Whole (``parts == 1``):
    ``Z (b x n) = f(A[a0:] W_l[1:] + W_l[0])`` (softmax left to the caller).  Cut: rows
    ``r0 .. r1`` of ``W_l[1:]`` (those the part's backward products read and change),
    ``Zp[s] = A[:, r0:r1] W_l[1 + r0 : 1 + r1]``, partial sums that
    :func:`_sum_bias_act` adds up."""
    nin, n = sizes[l], sizes[l + 1]
    o = offs[l]
    if parts == 1:
        gemm_rm(fn, NOTRANS, NOTRANS, b, n, nin, 1.0, A, a0, lda, params, o + n, n, 0.0, Z, 0, n)
        if kinds[l] != SOFTMAX:
            bias_act_rows(kinds[l], _view(Z, b, n), params[o:o + n])
        return
    r0, r1 = part_at(nin, s, parts), part_at(nin, s + 1, parts)
    z0 = s * b * n
    if r1 <= r0:                # an empty part (16-row cuts): adds nothing
        Zp[z0:z0 + b * n] = 0
        return
    gemm_rm(fn, NOTRANS, NOTRANS, b, n, r1 - r0, 1.0, A, a0 + r0, lda, params, o + n + r0 * n, n,
            0.0, Zp, z0, n)


@njit(**JIT)
def _sum_bias_act(kind, Z, Zp, parts, bias, b, n):
    """``Z = f(Zp[0] + Zp[1] + ... + bias)``, the parts added in order."""
    m = b * n
    for i in range(m):
        Z[i] = Zp[i]
    for s in range(1, parts):
        for i in range(m):
            Z[i] += Zp[s * m + i]
    bias_act_rows(kind, _view(Z, b, n), bias)


@njit(**JIT)
def _backward_part(fn, params, sizes, offs, kinds, l, A, a0, lda, b, D, G, Dlow, Alow, s,
                   parts, fused, alpha, beta):
    """Rows ``r0 .. r1`` (part ``s``) of ``W_l[1:]``: for ``l > 0``, the error terms below
    ``Dlow[:, r0:r1] = (D W_l[1 + r0 : 1 + r1]^T) * f'(Alow[:, r0:r1])``; then their
    gradient ``G_l[1 + r0 : 1 + r1] = A[:, r0:r1]^T D``, or with ``fused`` the plain SGD
    step in its place, ``W_l[1 + r0 : 1 + r1] = beta W + alpha A[:, r0:r1]^T D`` (after the
    error terms below have read the old weights)."""
    nin, n = sizes[l], sizes[l + 1]
    r0, r1 = part_at(nin, s, parts), part_at(nin, s + 1, parts)
    if r1 <= r0:
        return
    o = offs[l]
    if l > 0:
        gemm_rm(fn, NOTRANS, TRANS, b, r1 - r0, n, 1.0, D, 0, n, params, o + n + r0 * n, n, 0.0,
                Dlow, r0, nin)
        for r in range(b):
            mul_dact(kinds[l - 1], Dlow[r * nin + r0:r * nin + r1],
                     Alow[r * nin + r0:r * nin + r1])
    if fused:
        gemm_rm(fn, TRANS, NOTRANS, r1 - r0, n, b, alpha, A, a0 + r0, lda, D, 0, n, beta, params,
                o + n + r0 * n, n)
    else:
        gemm_rm(fn, TRANS, NOTRANS, r1 - r0, n, b, 1.0, A, a0 + r0, lda, D, 0, n, 0.0, G,
                o + n + r0 * n, n)


@njit(**JIT)
def _layer_parts(parts, b, nin, n, cut, min_gemm):
    """The parts a layer's product (``b x nin`` by ``nin x n``) is cut into along ``cut``."""
    if parts <= 1 or cut < 2 * PART_MIN or b * nin * n < parts * min_gemm:
        return 1
    return parts


@njit(parallel=True, **JIT)
def train_epoch_parts(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer, lr,
                      mu, rho, eps, penalty, lam, state, t, parts, fn, min_gemm):
    r""":func:`train_epoch` for small batches: each batch one block whose products are cut in
    ``parts`` parts on Numba's threads (``prange``), all of them by rows of :math:`W_l`: the
    forward ones into partial sums of :math:`Z_l` added up in part order
    (:func:`_sum_bias_act`), the backward ones each its rows of :math:`G_l` and its columns
    of :math:`D_{l-1}`.  So part ``s`` (always thread ``s``) reads and changes the same rows
    of each weight matrix in every product and in the step, which stay in its core's
    cache, and no gradient buffers are added up.  Then the step, its weight rows in parts
    too -- or, for plain SGD without L1, the step fused into the weight-gradient products
    (:func:`_backward_part`).  ``fn``: :func:`fastnet._numba._gemm.gemm_address`; a layer
    whose product has under ``min_gemm`` multiply-adds a part runs whole.  The numbers depend
    on ``parts`` only, never on which thread ran which part.
    """
    offs = offsets(sizes)
    L = kinds.shape[0]
    m = order.shape[0]
    B = min(batch_size, m)
    acts, aoff, d0, d1 = workspace(sizes, B, params)
    Zp = np.empty(max(parts, 1) * d0.shape[0], params.dtype)   # the forward partial sums
    Xg = np.empty((B, X.shape[1]), X.dtype)
    Yg = np.empty((B, Y.shape[1]), Y.dtype)
    mark = np.zeros(X.shape[0], np.bool_)
    Xflat = X.reshape(X.size)        # the operands of gemm_rm: flat, with offsets
    Xgflat = Xg.reshape(Xg.size)
    G = np.empty_like(params)
    P = params.shape[0]
    s1 = state[:P]
    s2 = state[P:]
    T = params.dtype.type
    zero = T(0)
    l2 = T(lam) if penalty == L2 else zero
    l1 = T(lam) if penalty == L1 else zero
    lrT, muT, rhoT, epsT = T(lr), T(mu), T(rho), T(eps)
    # plain SGD without L1: the step fused into the weight-gradient products (_backward_part),
    # W = decay W - (lr / b) A^T D with decay = 1 - lr lam for L2; no pass over the parameters
    fused = optimizer == SGD and penalty != L1
    decay = T(1) - lrT * l2
    n0 = X.shape[1]
    total = 0.0
    for step in range(-(-m // B)):
        start = step * B
        b = min(B, m - start)
        idx = order[start:start + b]
        run = _run_start(idx, mark)
        if run >= 0:
            X0, x0, Yb = Xflat, run * n0, Y[run:run + b]
        else:
            _gather(X, idx, Xg[:b])
            _gather(Y, idx, Yg[:b])
            X0, x0, Yb = Xgflat, 0, Yg[:b]
        # forward
        for l in range(L):
            nin, n = sizes[l], sizes[l + 1]
            Z = acts[aoff[l]:]
            k = _layer_parts(parts, b, nin, n, nin, min_gemm)
            Ain, a0, lda = (X0, x0, n0) if l == 0 else (acts, aoff[l - 1], nin)
            if k > 1:   # (a prange of one part would still be handed to the threads)
                for s in prange(k):
                    _forward_part(fn, params, sizes, offs, kinds, l, Ain, a0, lda, b, Z, Zp, s,
                                  k)
                _sum_bias_act(kinds[l], Z, Zp, k, params[offs[l]:offs[l] + n], b, n)
            else:
                _forward_part(fn, params, sizes, offs, kinds, l, Ain, a0, lda, b, Z, Zp, 0, 1)
                if kinds[l] == SOFTMAX:
                    bias_act_rows(SOFTMAX, _view(Z, b, n), params[offs[l]:offs[l] + n])
        # backward
        nL = sizes[L]
        D, spare = d0, d1
        total += loss_delta_rows(kinds[L - 1], loss_kind, _view(acts[aoff[L - 1]:], b, nL), Yb,
                                 _view(D, b, nL))
        scale = T(1) / T(b)
        lr_t = T(adam_lr(lr, mu, rho, t + step)) if optimizer == ADAM else lrT
        alpha = -lrT * scale if fused else T(1)
        for l in range(L - 1, -1, -1):
            nin, n = sizes[l], sizes[l + 1]
            o = offs[l]
            col_sums_into(_view(D, b, n), G[o:o + n])
            if fused:    # the biases, not read below this layer
                step_range(optimizer, params, G, s1, s2, o, o + n, scale, zero, zero, lrT, muT,
                           rhoT, epsT, lr_t, False)
            k = _layer_parts(parts, b, nin, n, nin, min_gemm)
            Ain, a0, lda = (X0, x0, n0) if l == 0 else (acts, aoff[l - 1], nin)
            Alow = acts[aoff[l - 1]:] if l > 0 else acts
            if k > 1:
                for s in prange(k):
                    _backward_part(fn, params, sizes, offs, kinds, l, Ain, a0, lda, b, D, G,
                                   spare, Alow, s, k, fused, alpha, decay)
            else:
                _backward_part(fn, params, sizes, offs, kinds, l, Ain, a0, lda, b, D, G, spare,
                               Alow, 0, 1, fused, alpha, decay)
            D, spare = spare, D
        if not fused:
            # the step: bias rows whole, weight rows in parts
            for l in range(L):
                o, wo, hi = offs[l], offs[l] + sizes[l + 1], offs[l + 1]
                step_range(optimizer, params, G, s1, s2, o, wo, scale, zero, zero, lrT, muT, rhoT,
                           epsT, lr_t, False)
                nin, n = sizes[l], sizes[l + 1]
                k = _layer_parts(parts, b, nin, n, nin, min_gemm)
                if k > 1:       # the rows of the backward part on the same thread
                    for s in prange(k):
                        step_range(optimizer, params, G, s1, s2, wo + part_at(nin, s, k) * n,
                                   wo + part_at(nin, s + 1, k) * n, scale, l2, l1, lrT, muT,
                                   rhoT, epsT, lr_t, False)
                else:
                    step_range(optimizer, params, G, s1, s2, wo, hi, scale, l2, l1, lrT, muT, rhoT,
                               epsT, lr_t, False)
    return total
