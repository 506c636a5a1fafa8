r"""The zero-skipping row path of the numba network kernels (summed gradients, forward).

Each sample's layers are sums of the weight rows of its inputs that are not
exactly zero, and its gradient a rank-1 update of the same rows only (see
:mod:`fastnet._numba._rows`): on raw MNIST pixels (about 80 % zeros) the
first layer does a fifth of the dense work.  Samples go four at a time
("panels"): the union of their non-zero inputs is gathered once and each
weight row is loaded once for the four, in the forward pass (four output
accumulators per row) as in the gradient (one load and one store of each
gradient row per four samples); the rest one by one.

:func:`accumulate` sums the gradient of a range of samples into ``G`` and
returns their loss; the wrappers run it on blocks of samples on threads
(``fastnet._threads.run_blocks``), each block into its own buffer.
Skipping exact zeros changes nothing but the order of the sums.
"""
import numpy as np
from numba import njit

from fastnet._numba._common import JIT, JIT_FAST, copy_into, fill, offsets
from fastnet._numba._elementwise import act_inplace, loss_delta, mul_dact
from fastnet._numba._optim import step_network
from fastnet._numba._rows import _row, compact_nonzero, compact_union4, rows_forward


# ----------------------------------------------------------- four samples a row
@njit(**JIT_FAST)
def rows_forward4(W, o, n, idx, c, v0, v1, v2, v3, z0, z1, z2, z3):
    r""":math:`z_s \mathrel{+}= \sum_t v_s[i_t] W_{i_t+1}` for four samples, rows ``idx[:c]``,
    two rows per pass."""
    t = 0
    while t + 2 <= c:
        i0, i1 = idx[t], idx[t + 1]
        a0, a1, a2, a3 = v0[i0], v1[i0], v2[i0], v3[i0]
        b0, b1, b2, b3 = v0[i1], v1[i1], v2[i1], v3[i1]
        q0 = _row(W, o, n, i0)
        q1 = _row(W, o, n, i1)
        for k in range(n):
            w0 = q0[k]
            w1 = q1[k]
            z0[k] += a0 * w0 + b0 * w1
            z1[k] += a1 * w0 + b1 * w1
            z2[k] += a2 * w0 + b2 * w1
            z3[k] += a3 * w0 + b3 * w1
        t += 2
    if t < c:
        i0 = idx[t]
        a0, a1, a2, a3 = v0[i0], v1[i0], v2[i0], v3[i0]
        q0 = _row(W, o, n, i0)
        for k in range(n):
            w0 = q0[k]
            z0[k] += a0 * w0
            z1[k] += a1 * w0
            z2[k] += a2 * w0
            z3[k] += a3 * w0


@njit(**JIT_FAST)
def rows_axpy(G, o, n, idx, c, v, d):
    r""":math:`G_{i+1} \mathrel{+}= v_i\, d` for the rows ``idx[:c]``."""
    for t in range(c):
        i0 = idx[t]
        v0 = v[i0]
        g0 = _row(G, o, n, i0)
        for k in range(n):
            g0[k] += v0 * d[k]


@njit(**JIT_FAST)
def rows_axpy4(G, o, n, idx, c, v0, v1, v2, v3, d0, d1, d2, d3):
    r""":math:`G_{i+1} \mathrel{+}= \sum_s v_s[i]\, d_s` for the rows ``idx[:c]``."""
    for t in range(c):
        i0 = idx[t]
        a0, a1, a2, a3 = v0[i0], v1[i0], v2[i0], v3[i0]
        g0 = _row(G, o, n, i0)
        for k in range(n):
            g0[k] += (a0 * d0[k] + a1 * d1[k]) + (a2 * d2[k] + a3 * d3[k])


@njit(**JIT_FAST)
def row_dots(W, o, n, nin, d, out):
    r""":math:`out_j = W_{j+1}\cdot d` for every row."""
    T = W.dtype.type
    for j in range(nin):
        w = _row(W, o, n, j)
        s = T(0)
        for k in range(n):
            s += w[k] * d[k]
        out[j] = s


@njit(**JIT_FAST)
def row_dots4(W, o, n, nin, d0, d1, d2, d3, p0, p1, p2, p3):
    r""":math:`p_s[j] = W_{j+1}\cdot d_s` for four error terms, every row."""
    T = W.dtype.type
    for j in range(nin):
        q = _row(W, o, n, j)
        s0 = T(0)
        s1 = T(0)
        s2 = T(0)
        s3 = T(0)
        for k in range(n):
            w = q[k]
            s0 += w * d0[k]
            s1 += w * d1[k]
            s2 += w * d2[k]
            s3 += w * d3[k]
        p0[j] = s0
        p1[j] = s1
        p2[j] = s2
        p3[j] = s3


# ------------------------------------------------------------------ one sample
@njit(**JIT_FAST)
def workspace(sizes, dtype_like):
    """Per-call buffers: ``acts`` (4 samples' activations of every layer, starts ``aoff``),
    ``nz`` (each layer's non-zero input list, starts ``noff``; counts ``cnt``) and the error
    terms ``D`` (2 x 4 x widest)."""
    L = sizes.shape[0] - 1
    aoff = np.zeros(L + 1, np.int64)
    noff = np.zeros(L + 1, np.int64)
    widest = 1
    for l in range(L):
        aoff[l + 1] = aoff[l] + sizes[l + 1]
        noff[l + 1] = noff[l] + sizes[l]
        widest = max(widest, sizes[l + 1], sizes[l])
    A = np.zeros((4, aoff[L]), dtype_like.dtype)
    nz = np.zeros(noff[L], np.int64)
    cnt = np.zeros(L, np.int64)
    D = np.zeros((2, 4, widest), dtype_like.dtype)
    return A, aoff, nz, noff, cnt, D


@njit(**JIT_FAST)
def forward_sample(params, sizes, offs, kinds, x, acts, aoff, nz, noff, cnt):
    """Forward one sample: layer ``l``'s activations into ``acts[aoff[l]:aoff[l+1]]``."""
    v = x
    for l in range(kinds.shape[0]):
        n = sizes[l + 1]
        o = offs[l]
        nzl = nz[noff[l]:noff[l + 1]]
        c = compact_nonzero(v, nzl)
        cnt[l] = c
        z = acts[aoff[l]:aoff[l + 1]]
        copy_into(z, params[o:o + n])
        rows_forward(params, o, n, nzl, c, v, z)
        act_inplace(kinds[l], z)
        v = z


@njit(**JIT_FAST)
def backward_sample(params, sizes, offs, kinds, x, acts, aoff, nz, noff, cnt, d, dp, G):
    """``G +=`` the gradient of the sample just forwarded, whose output error term is in ``d``."""
    for l in range(kinds.shape[0] - 1, -1, -1):
        n = sizes[l + 1]
        o = offs[l]
        gb = G[o:o + n]
        for k in range(n):
            gb[k] += d[k]
        v = x if l == 0 else acts[aoff[l - 1]:aoff[l]]
        rows_axpy(G, o, n, nz[noff[l]:noff[l + 1]], cnt[l], v, d)
        if l > 0:
            nin = sizes[l]
            row_dots(params, o, n, nin, d, dp)
            mul_dact(kinds[l - 1], dp[:nin], acts[aoff[l - 1]:aoff[l]])
            d, dp = dp, d


# ---------------------------------------------------------------- four samples
@njit(**JIT_FAST)
def forward_panel(params, sizes, offs, kinds, x0, x1, x2, x3, A, aoff, nz, noff, cnt):
    """Forward four samples at once, each layer over the union of their non-zero inputs
    (row ``s`` of ``A`` holds sample ``s``'s activations)."""
    v0, v1, v2, v3 = x0, x1, x2, x3
    for l in range(kinds.shape[0]):
        n = sizes[l + 1]
        o = offs[l]
        nzl = nz[noff[l]:noff[l + 1]]
        c = compact_union4(v0, v1, v2, v3, nzl)
        cnt[l] = c
        lo = aoff[l]
        hi = aoff[l + 1]
        z0, z1, z2, z3 = A[0, lo:hi], A[1, lo:hi], A[2, lo:hi], A[3, lo:hi]
        b = params[o:o + n]
        copy_into(z0, b)
        copy_into(z1, b)
        copy_into(z2, b)
        copy_into(z3, b)
        rows_forward4(params, o, n, nzl, c, v0, v1, v2, v3, z0, z1, z2, z3)
        act_inplace(kinds[l], z0)
        act_inplace(kinds[l], z1)
        act_inplace(kinds[l], z2)
        act_inplace(kinds[l], z3)
        v0, v1, v2, v3 = z0, z1, z2, z3


@njit(**JIT_FAST)
def backward_panel(params, sizes, offs, kinds, x0, x1, x2, x3, A, aoff, nz, noff, cnt, D, G):
    """``G +=`` the gradients of the four samples of :func:`forward_panel`; ``D[0, s]``
    holds sample ``s``'s output error term on entry."""
    cur = 0
    for l in range(kinds.shape[0] - 1, -1, -1):
        n = sizes[l + 1]
        o = offs[l]
        d0, d1, d2, d3 = D[cur, 0], D[cur, 1], D[cur, 2], D[cur, 3]
        gb = G[o:o + n]
        for k in range(n):
            gb[k] += (d0[k] + d1[k]) + (d2[k] + d3[k])
        if l == 0:
            v0, v1, v2, v3 = x0, x1, x2, x3
        else:
            lo = aoff[l - 1]
            hi = aoff[l]
            v0, v1, v2, v3 = A[0, lo:hi], A[1, lo:hi], A[2, lo:hi], A[3, lo:hi]
        rows_axpy4(G, o, n, nz[noff[l]:noff[l + 1]], cnt[l], v0, v1, v2, v3, d0, d1, d2, d3)
        if l > 0:
            nxt = 1 - cur
            nin = sizes[l]
            row_dots4(params, o, n, nin, d0, d1, d2, d3, D[nxt, 0], D[nxt, 1], D[nxt, 2],
                      D[nxt, 3])
            for s in range(4):
                mul_dact(kinds[l - 1], D[nxt, s, :nin], A[s, aoff[l - 1]:aoff[l]])
            cur = nxt


@njit(**JIT_FAST)
def accumulate_with(params, sizes, offs, kinds, loss_kind, X, Y, order, lo, hi, G, A, aoff, nz,
                    noff, cnt, D):
    """``G +=`` the summed gradient of samples ``order[lo:hi]``; returns their summed loss."""
    L = kinds.shape[0]
    nL = sizes[L]
    out = aoff[L - 1]
    last = kinds[L - 1]
    total = 0.0
    s = lo
    while s + 4 <= hi:
        r0, r1, r2, r3 = order[s], order[s + 1], order[s + 2], order[s + 3]
        x0, x1, x2, x3 = X[r0], X[r1], X[r2], X[r3]
        forward_panel(params, sizes, offs, kinds, x0, x1, x2, x3, A, aoff, nz, noff, cnt)
        total += loss_delta(last, loss_kind, A[0, out:out + nL], Y[r0], D[0, 0])
        total += loss_delta(last, loss_kind, A[1, out:out + nL], Y[r1], D[0, 1])
        total += loss_delta(last, loss_kind, A[2, out:out + nL], Y[r2], D[0, 2])
        total += loss_delta(last, loss_kind, A[3, out:out + nL], Y[r3], D[0, 3])
        backward_panel(params, sizes, offs, kinds, x0, x1, x2, x3, A, aoff, nz, noff, cnt, D, G)
        s += 4
    acts = A[0]
    while s < hi:
        r = order[s]
        x = X[r]
        forward_sample(params, sizes, offs, kinds, x, acts, aoff, nz, noff, cnt)
        total += loss_delta(last, loss_kind, acts[out:out + nL], Y[r], D[0, 0])
        backward_sample(params, sizes, offs, kinds, x, acts, aoff, nz, noff, cnt, D[0, 0],
                        D[1, 0], G)
        s += 1
    return total


@njit(**JIT_FAST)
def accumulate(params, sizes, kinds, loss_kind, X, Y, order, lo, hi, G, zero_first):
    """:func:`accumulate_with` with its buffers allocated here (``zero_first``: ``G = 0`` first)."""
    if zero_first:
        fill(G, 0)
    offs = offsets(sizes)
    A, aoff, nz, noff, cnt, D = workspace(sizes, params)
    return accumulate_with(params, sizes, offs, kinds, loss_kind, X, Y, order, lo, hi, G, A, aoff,
                           nz, noff, cnt, D)


@njit(**JIT_FAST)
def forward_rows(params, sizes, kinds, X, out, lo, hi):
    """``out[r] =`` the network's output for rows ``lo <= r < hi`` (four at a time)."""
    L = kinds.shape[0]
    offs = offsets(sizes)
    A, aoff, nz, noff, cnt, D = workspace(sizes, params)
    a = aoff[L - 1]
    b = aoff[L]
    r = lo
    while r + 4 <= hi:
        forward_panel(params, sizes, offs, kinds, X[r], X[r + 1], X[r + 2], X[r + 3], A, aoff,
                      nz, noff, cnt)
        for s in range(4):
            copy_into(out[r + s], A[s, a:b])
        r += 4
    acts = A[0]
    while r < hi:
        forward_sample(params, sizes, offs, kinds, X[r], acts, aoff, nz, noff, cnt)
        copy_into(out[r], acts[a:b])
        r += 1


@njit(**JIT_FAST)
def train_epoch(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer, lr, mu, rho,
                eps, penalty, lam, state, t):
    """One epoch of mini-batch training on the zero-skipping path (serial)."""
    offs = offsets(sizes)
    m = order.shape[0]
    G = np.zeros_like(params)
    A, aoff, nz, noff, cnt, D = workspace(sizes, params)
    total = 0.0
    step = 0
    for start in range(0, m, batch_size):
        stop = min(start + batch_size, m)
        total += accumulate_with(params, sizes, offs, kinds, loss_kind, X, Y, order, start, stop,
                                 G, A, aoff, nz, noff, cnt, D)
        step_network(params, G, state, sizes, offs, stop - start, optimizer, lr, mu, rho, eps,
                     penalty, lam, t + step, True)
        step += 1
    return total
