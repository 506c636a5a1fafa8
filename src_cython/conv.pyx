# cython: language_level=3
r"""Convolution, pooling and layer-program kernels (:class:`fastnet.Sequential`), in Cython.

The kernels of :mod:`fastnet.reference.conv` (same names, signatures and
in-place conventions; read its docstrings for the layer program).  Each
``def`` wrapper checks its arguments once (:mod:`fastnet._conv_checks`), then
runs ``nogil`` loops of ``cdef`` helpers on raw pointers; every buffer a call
needs is allocated once, at its start.

How the work is done
--------------------
Images are channels-last, so the ``K = kh*kw*C`` inputs under an output
pixel's window are ``kh`` contiguous runs of ``kw*C`` values.  A convolution
unfolds a block of images into patches (*im2col*, one row per output pixel,
zeros outside the image; blocks of about ``COLS_BYTES`` so that they are
still in cache), then calls BLAS (``scipy.linalg.cython_blas``):

* forward: ``Z = cols @ W[1:]``, straight into the layer's output rows, then
  the fused epilogue ``f(Z + W[0])``;
* weights: ``G[1:] += cols.T @ dZ``, ``G[0] += sum(dZ)``;
* input: ``dcols = dZ @ W[1:].T``, folded back onto the image (*col2im*).

Dense rows are one GEMM per batch; pooling and flattening plain loops.

Threads (OpenMP ``prange``; serial when built without OpenMP): a batch is cut
into the contiguous blocks of images of :func:`fastnet._threads.n_blocks`
(the same cut as the numba backend), each block's forward and backward pass
writes its own gradient buffer, and the buffers are summed in block order
before the update: deterministic for a given number of threads.  Each thread
asks scipy's OpenBLAS for one thread of its own while it works (the address
of ``openblas_set_num_threads_local`` comes from :mod:`fastnet._blas`), so
BLAS's threads never compete with ours.
"""
import numpy as np
cimport cython
from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t
from libc.string cimport memset, memcpy
from libc.math cimport exp, expf, sqrt, sqrtf
cimport scipy.linalg.cython_blas as blas

from _common cimport (floating, f_fma, act_f, act_df_from_a, loss_term, loss_grad, fused_output,
                      FASTNET_HAVE_OPENMP, ACT_LINEAR, ACT_RELU, ACT_SOFTMAX,
                      LAYER_DENSE, LAYER_CONV2D, LAYER_MAXPOOL2D, LAYER_AVGPOOL2D,
                      LAYER_FLATTEN, LAYER_ACTIVATION, LAYER_DENSE_TIED,
                      PROG_KIND, PROG_ACT, PROG_IN_H, PROG_IN_W, PROG_IN_C, PROG_OUT_H,
                      PROG_OUT_W, PROG_OUT_C, PROG_KH, PROG_KW, PROG_STRIDE, PROG_PAD_H,
                      PROG_PAD_W, PROG_POFF, PROG_PLEN, PROG_TIED, PROG_WIDTH,
                      PEN_NONE, PEN_L2, OPT_SGD, OPT_MOMENTUM, OPT_RMSPROP, OPT_ADAM,
                      OPT_NESTEROV)

from fastnet import _kernel_checks as kc
from fastnet import _conv_checks as cc
from fastnet import _conv_plan as plan
from fastnet import _blas
from fastnet._threads import n_blocks

include "_conv_ops.pxi"


# ---------------------------------------------------------------- the program
cdef struct Work:
    # one block's workspace (pointers into its rows of the float and int buffers)
    int64_t cap           # samples it holds
    int64_t *aoff         # offset of each row's outputs in A (L + 1)
    int64_t *nbs          # images per im2col block of each row (L)
    int64_t *am           # argmax of the max-pooling rows (L x cap x pool)
    int64_t pool          # the widest max-pooling row
    # the float buffers (void *: a struct cannot hold fused types; cast at use)
    void *A
    void *cols
    void *dcols
    void *tmp
    void *D0
    void *D1
    void *Xb
    void *Yb


cdef void row_forward(const floating *params, const int64_t *prog, int64_t l,
                      const floating *Ain, floating *Aout, int64_t m, Work *w) noexcept nogil:
    cdef Row g = read_row(prog, l)
    cdef int64_t n, i, c, HW
    cdef const floating *Wb = params + g.poff
    if g.kind == LAYER_DENSE:
        gemm(False, False, <int>m, <int>g.F, <int>g.n_in, <floating>1, Ain, <int>g.n_in,
             Wb + g.F, <int>g.F, <floating>0, Aout, <int>g.F)
        bias_act(Aout, Wb, m, g.F, <int>g.act)
    elif g.kind == LAYER_DENSE_TIED:
        # Z = A @ Wt[1:].T with Wt the (F + 1, C) block of the tied Dense row
        gemm(False, True, <int>m, <int>g.F, <int>g.C, <floating>1, Ain, <int>g.C,
             params + g.tied + g.C, <int>g.C, <floating>0, Aout, <int>g.F)
        bias_act(Aout, Wb, m, g.F, <int>g.act)
    elif g.kind == LAYER_CONV2D:
        conv_forward(Ain, m, Wb, &g, Aout, (<floating *>w.cols), w.nbs[l])
    elif g.kind == LAYER_MAXPOOL2D or g.kind == LAYER_AVGPOOL2D:
        pool_forward(<int>g.kind, Ain, m, &g, Aout, w.am + l * w.cap * w.pool)
        activate(<int>g.act, Aout, m, g.n_out)
    elif g.kind == LAYER_FLATTEN:
        HW = g.H * g.W
        for n in range(m):
            for i in range(HW):
                for c in range(g.C):
                    Aout[n * g.n_out + c * HW + i] = Ain[n * g.n_in + i * g.C + c]
        activate(<int>g.act, Aout, m, g.n_out)
    else:
        memcpy(Aout, Ain, m * g.n_in * sizeof(floating))
        activate(<int>g.act, Aout, m, g.n_out)


cdef void row_backward(const floating *params, const int64_t *prog, int64_t l,
                       const floating *Ain, const floating *D, floating *Dp, bint need_input,
                       floating *G, int64_t m, Work *w) noexcept nogil:
    cdef Row g = read_row(prog, l)
    cdef int64_t n, i, c, r, f, HW
    cdef const floating *Wb = params + g.poff
    cdef floating *Gb = G + g.poff
    if g.kind == LAYER_DENSE:
        gemm(True, False, <int>g.n_in, <int>g.F, <int>m, <floating>1, Ain, <int>g.n_in, D,
             <int>g.F, <floating>1, Gb + g.F, <int>g.F)
        for r in range(m):
            for f in range(g.F):
                Gb[f] += D[r * g.F + f]
        if need_input:
            gemm(False, True, <int>m, <int>g.n_in, <int>g.F, <floating>1, D, <int>g.F,
                 Wb + g.F, <int>g.F, <floating>0, Dp, <int>g.n_in)
    elif g.kind == LAYER_DENSE_TIED:
        # G_tied[1:] (F, C) += D.T @ A
        gemm(True, False, <int>g.F, <int>g.C, <int>m, <floating>1, D, <int>g.F, Ain, <int>g.C,
             <floating>1, G + g.tied + g.C, <int>g.C)
        for r in range(m):
            for f in range(g.F):
                Gb[f] += D[r * g.F + f]
        if need_input:
            gemm(False, False, <int>m, <int>g.C, <int>g.F, <floating>1, D, <int>g.F,
                 params + g.tied + g.C, <int>g.C, <floating>0, Dp, <int>g.C)
    elif g.kind == LAYER_CONV2D:
        conv_backward(Ain, m, Wb, D, &g, Gb, Dp, need_input, (<floating *>w.cols), (<floating *>w.dcols), (<floating *>w.tmp), w.nbs[l])
    elif need_input:
        if g.kind == LAYER_MAXPOOL2D or g.kind == LAYER_AVGPOOL2D:
            pool_backward(<int>g.kind, D, w.am + l * w.cap * w.pool, m, &g, Dp)
        elif g.kind == LAYER_FLATTEN:
            HW = g.H * g.W
            for n in range(m):
                for i in range(HW):
                    for c in range(g.C):
                        Dp[n * g.n_in + i * g.C + c] = D[n * g.n_out + c * HW + i]
        else:
            memcpy(Dp, D, m * g.n_in * sizeof(floating))


cdef void set_offsets(const int64_t *prog, int64_t L, int64_t k, Work *w) noexcept nogil:
    cdef int64_t l
    w.aoff[0] = 0
    for l in range(L):
        w.aoff[l + 1] = w.aoff[l] + k * read_row(prog, l).n_out


cdef void forward_batch(const floating *params, const int64_t *prog, int64_t L,
                        const floating *Xb, int64_t m, Work *w) noexcept nogil:
    cdef int64_t l
    cdef const floating *Ain = Xb
    set_offsets(prog, L, m, w)
    for l in range(L):
        row_forward(params, prog, l, Ain, (<floating *>w.A) + w.aoff[l], m, w)
        Ain = (<floating *>w.A) + w.aoff[l]


cdef double backprop_batch(const floating *params, const int64_t *prog, int64_t L, int loss_kind,
                           const floating *Xb, const floating *Yb, int64_t m, floating *G,
                           Work *w) noexcept nogil:
    """Forward and backward over the batch (G += its summed gradient); returns the loss."""
    cdef int64_t l, r, i, nL, n_in
    cdef double total = 0
    cdef Row last = read_row(prog, L - 1)
    cdef Row g
    cdef floating *cur = (<floating *>w.D0)
    cdef floating *nxt = (<floating *>w.D1)
    cdef floating *swap
    cdef floating *A_in
    cdef int64_t prev_act
    forward_batch(params, prog, L, Xb, m, w)
    nL = last.F
    for r in range(m):
        total += loss_delta(<int>last.act, loss_kind, (<floating *>w.A) + w.aoff[L - 1] + r * nL, Yb + r * nL,
                            cur + r * nL, nL)
    for l in range(L - 1, -1, -1):
        g = read_row(prog, l)
        A_in = <floating *>Xb if l == 0 else (<floating *>w.A) + w.aoff[l - 1]
        row_backward(params, prog, l, A_in, cur, nxt, l > 0, G, m, w)
        if l > 0:
            n_in = g.n_in
            prev_act = read_row(prog, l - 1).act
            if prev_act != ACT_LINEAR:
                for i in range(m * n_in):
                    nxt[i] = nxt[i] * act_df_from_a(<int>prev_act, A_in[i])
        swap = cur
        cur = nxt
        nxt = swap
    return total


cdef double block_grad(const floating *params, const int64_t *prog, int64_t L, int loss_kind,
                       const floating *X, const floating *Y, const int64_t *order, int64_t lo,
                       int64_t hi, int64_t n_in, int64_t n_out, int64_t P, floating *G,
                       Work *w, size_t setter) noexcept nogil:
    """``G`` = the summed gradient of samples ``order[lo:hi]`` (BLAS single-threaded)."""
    cdef int64_t i, k = hi - lo
    cdef int prev = 0
    cdef double total
    if setter:
        prev = (<set_threads_t>setter)(1)
    for i in range(k):
        memcpy((<floating *>w.Xb) + i * n_in, X + order[lo + i] * n_in, n_in * sizeof(floating))
        memcpy((<floating *>w.Yb) + i * n_out, Y + order[lo + i] * n_out, n_out * sizeof(floating))
    memset(G, 0, P * sizeof(floating))
    total = backprop_batch(params, prog, L, loss_kind, (<floating *>w.Xb), (<floating *>w.Yb), k, G, w)
    if setter:
        (<set_threads_t>setter)(prev if prev > 0 else 0)
    return total


cdef void block_forward(const floating *params, const int64_t *prog, int64_t L,
                        const floating *X, int64_t lo, int64_t hi, int64_t n_in, int64_t n_out,
                        floating *out, Work *w, size_t setter) noexcept nogil:
    cdef int64_t s0, s1, k
    cdef int prev = 0
    if setter:
        prev = (<set_threads_t>setter)(1)
    s0 = lo
    while s0 < hi:
        s1 = s0 + w.cap if s0 + w.cap < hi else hi
        k = s1 - s0
        forward_batch(params, prog, L, X + s0 * n_in, k, w)
        memcpy(out + s0 * n_out, (<floating *>w.A) + w.aoff[L - 1], k * n_out * sizeof(floating))
        s0 = s1
    if setter:
        (<set_threads_t>setter)(prev if prev > 0 else 0)


# --------------------------------------------------------- penalty, optimiser
cdef void penalty_grad(int penalty, floating lam, const floating *params, const int64_t *prog,
                       int64_t L, floating *G) noexcept nogil:
    cdef int64_t l, i
    cdef Row g
    for l in range(L):
        g = read_row(prog, l)
        if g.kind != LAYER_DENSE and g.kind != LAYER_CONV2D:
            continue
        for i in range(g.poff + g.F, g.poff + g.plen):
            if penalty == PEN_L2:
                G[i] += lam * params[i]
            elif params[i] > 0:
                G[i] += lam
            elif params[i] < 0:
                G[i] -= lam


cdef double penalty_value_of(int penalty, double lam, const floating *params,
                             const int64_t *prog, int64_t L) noexcept nogil:
    cdef int64_t l, i
    cdef double total = 0, s, w
    cdef Row g
    for l in range(L):
        g = read_row(prog, l)
        if g.kind != LAYER_DENSE and g.kind != LAYER_CONV2D:
            continue
        s = 0
        for i in range(g.poff + g.F, g.poff + g.plen):
            w = params[i]
            s += w * w if penalty == PEN_L2 else (w if w >= 0 else -w)
        total += lam / 2 * s if penalty == PEN_L2 else lam * s
    return total


cdef void optimizer_step(int optimizer, floating *params, const floating *grad, floating *state,
                         int64_t n, floating lr, floating mu, floating rho, floating eps,
                         floating lr_t) noexcept nogil:
    """As :func:`fastnet.reference.kernels.optimizer_step` (same operations, same order)."""
    cdef int64_t i
    cdef floating g, v, s, m1, one = 1
    if optimizer == OPT_SGD:
        for i in range(n):
            params[i] -= lr * grad[i]
    elif optimizer == OPT_MOMENTUM or optimizer == OPT_NESTEROV:
        for i in range(n):
            v = state[i] * mu
            v = v - lr * grad[i]
            state[i] = v
            if optimizer == OPT_MOMENTUM:
                params[i] += v
            else:
                params[i] += mu * v - lr * grad[i]
    elif optimizer == OPT_RMSPROP:
        for i in range(n):
            g = grad[i]
            s = state[i] * rho
            s = s + (one - rho) * g * g
            state[i] = s
            if floating is float:
                params[i] -= lr * g / (sqrtf(s) + eps)
            else:
                params[i] -= lr * g / (sqrt(s) + eps)
    else:
        for i in range(n):
            g = grad[i]
            m1 = state[i] * mu
            m1 = m1 + (one - mu) * g
            state[i] = m1
            v = state[n + i] * rho
            v = v + (one - rho) * g * g
            state[n + i] = v
            if floating is float:
                params[i] -= lr_t * m1 / (sqrtf(v) + eps)
            else:
                params[i] -= lr_t * m1 / (sqrt(v) + eps)


cdef void step(floating *params, const int64_t *prog, int64_t L, floating *G, int64_t P,
               int64_t k, int optimizer, double lr, double mu, double rho, double eps,
               int penalty, double lam, floating *state, int64_t t) noexcept nogil:
    cdef int64_t i
    cdef floating inv = <floating>k
    cdef double kk, lr_t = lr
    for i in range(P):
        G[i] = G[i] / inv
    if penalty != PEN_NONE and lam != 0:
        penalty_grad(penalty, <floating>lam, params, prog, L, G)
    if optimizer == OPT_ADAM:
        kk = <double>t + 1.0
        lr_t = lr * sqrt(1.0 - rho ** kk) / (1.0 - mu ** kk)
    optimizer_step(optimizer, params, G, state, P, <floating>lr, <floating>mu, <floating>rho,
                   <floating>eps, <floating>lr_t)


# ------------------------------------------------------------- the workspaces
def _layout(prog, cap, itemsize):
    """Sizes of one block's float and int workspace for ``cap`` samples, and its offsets.

    (No negative index anywhere in this module: it is compiled with wraparound off.)
    """
    L = prog.shape[0]
    n_in = int(prog[0, PROG_IN_H] * prog[0, PROG_IN_W] * prog[0, PROG_IN_C])
    widths = [int(r[PROG_OUT_H] * r[PROG_OUT_W] * r[PROG_OUT_C]) for r in prog]
    pool = max([w for r, w in zip(prog, widths) if r[PROG_KIND] == LAYER_MAXPOOL2D] or [0])
    nbs, size, big = [], 1, 1
    for r in prog:
        if r[PROG_KIND] == LAYER_CONV2D:
            npix = int(r[PROG_OUT_H] * r[PROG_OUT_W])
            K = int(r[PROG_KH] * r[PROG_KW] * r[PROG_IN_C])
            nb = plan.conv_block_images(npix, K, itemsize, cap)
            size = max(size, nb * npix * K)
            nbs.append(nb)
        else:
            nbs.append(1)
        big = max(big, int(r[PROG_PLEN]), int((r[PROG_OUT_C] + 1) * r[PROG_IN_C]))
    widest = max([n_in] + widths)
    n_out = widths[L - 1]
    parts = [("A", cap * sum(widths)), ("cols", size), ("dcols", size), ("tmp", big),
             ("D0", cap * widest), ("D1", cap * widest), ("Xb", cap * n_in), ("Yb", cap * n_out)]
    offs, total = {}, 0
    for name, n in parts:
        offs[name] = total
        total += (n + 15) // 16 * 16
    ints = (L + 1) + L + L * cap * pool
    return total, ints, offs, nbs, pool


cdef void make_work(Work *w, floating *fbuf, int64_t *ibuf, const int64_t *lay, int64_t L,
                    int64_t cap, int64_t pool) noexcept nogil:
    # lay: offsets of A, cols, dcols, tmp, D0, D1, Xb, Yb in fbuf, then nbs (L)
    cdef int64_t l
    w.cap = cap
    w.pool = pool
    w.aoff = ibuf
    w.nbs = ibuf + L + 1
    w.am = ibuf + 2 * L + 1
    for l in range(L):
        w.nbs[l] = lay[8 + l]
    w.A = fbuf + lay[0]
    w.cols = fbuf + lay[1]
    w.dcols = fbuf + lay[2]
    w.tmp = fbuf + lay[3]
    w.D0 = fbuf + lay[4]
    w.D1 = fbuf + lay[5]
    w.Xb = fbuf + lay[6]
    w.Yb = fbuf + lay[7]


def _workspaces(prog, cap, nblocks, dtype):
    total, ints, offs, nbs, pool = _layout(prog, cap, np.dtype(dtype).itemsize)
    fbuf = np.zeros((nblocks, total), dtype)
    ibuf = np.zeros((nblocks, ints), np.int64)
    lay = np.array([offs[k] for k in ("A", "cols", "dcols", "tmp", "D0", "D1", "Xb", "Yb")]
                   + nbs, dtype=np.int64)
    return fbuf, ibuf, lay, pool


# ================================================================ entry points
def _max_threads(prog, batch):
    return plan.threads_for(prog, batch) if FASTNET_HAVE_OPENMP else 1


@cython.boundscheck(False)
def _epoch(floating[::1] params, const int64_t[:, ::1] prog, int loss_kind,
           const floating[:, ::1] X, const floating[:, ::1] Y, const int64_t[::1] order,
           int64_t B, int optimizer, double lr, double mu, double rho, double eps, int penalty,
           double lam, floating[::1] state, int64_t t, floating[:, ::1] fbuf,
           int64_t[:, ::1] ibuf, const int64_t[::1] lay, int64_t cap, int64_t pool, int nt,
           int nb, floating[:, ::1] Gt, double[::1] losses, size_t setter):
    cdef int64_t L = prog.shape[0], P = params.shape[0], m = order.shape[0]
    cdef int64_t n_in = X.shape[1], n_out = Y.shape[1], s0, k, b = 0, i
    cdef int nbk, blk
    cdef double total = 0
    cdef const int64_t *pp = &prog[0, 0]
    s0 = 0
    with nogil:
        while s0 < m:
            k = B if s0 + B <= m else m - s0
            nbk = nb if nb < k else <int>k
            if nt > 1 and nbk > 1:
                for blk in prange(nbk, num_threads=nt, schedule="dynamic", chunksize=1):
                    losses[blk] = _run_block(&params[0], pp, L, loss_kind, &X[0, 0], &Y[0, 0],
                                             &order[0], s0 + blk * k // nbk,
                                             s0 + (blk + 1) * k // nbk, n_in, n_out, P,
                                             &Gt[blk, 0], &fbuf[blk, 0], &ibuf[blk, 0],
                                             &lay[0], cap, pool, setter)
            else:
                for blk in range(nbk):
                    losses[blk] = _run_block(&params[0], pp, L, loss_kind, &X[0, 0], &Y[0, 0],
                                             &order[0], s0 + blk * k // nbk,
                                             s0 + (blk + 1) * k // nbk, n_in, n_out, P,
                                             &Gt[blk, 0], &fbuf[blk, 0], &ibuf[blk, 0],
                                             &lay[0], cap, pool, setter)
            for blk in range(nbk):
                total += losses[blk]
            for blk in range(1, nbk):
                for i in range(P):
                    Gt[0, i] += Gt[blk, i]
            step(&params[0], pp, L, &Gt[0, 0], P, k, optimizer, lr, mu, rho, eps, penalty, lam,
                 &state[0], t + b)
            b += 1
            s0 += k
    return total


cdef double _run_block(const floating *params, const int64_t *prog, int64_t L, int loss_kind,
                       const floating *X, const floating *Y, const int64_t *order, int64_t lo,
                       int64_t hi, int64_t n_in, int64_t n_out, int64_t P, floating *G,
                       floating *fbuf, int64_t *ibuf, const int64_t *lay, int64_t cap,
                       int64_t pool, size_t setter) noexcept nogil:
    cdef Work w
    make_work(&w, fbuf, ibuf, lay, L, cap, pool)
    return block_grad(params, prog, L, loss_kind, X, Y, order, lo, hi, n_in, n_out, P, G, &w,
                      setter)


@cython.boundscheck(False)
def _forward(const floating[::1] params, const int64_t[:, ::1] prog, const floating[:, ::1] X,
             floating[:, ::1] out, floating[:, ::1] fbuf, int64_t[:, ::1] ibuf,
             const int64_t[::1] lay, int64_t cap, int64_t pool, int nt, size_t setter):
    cdef int64_t L = prog.shape[0], m = X.shape[0], n_in = X.shape[1], n_out = out.shape[1]
    cdef int64_t nchunks = (m + cap - 1) // cap
    cdef int64_t c
    cdef int tid
    cdef const int64_t *pp = &prog[0, 0]
    with nogil:
        if nt > 1 and nchunks > 1:
            for c in prange(nchunks, num_threads=nt, schedule="dynamic", chunksize=1):
                tid = threadid()
                _forward_chunk(&params[0], pp, L, &X[0, 0], c * cap,
                               (c + 1) * cap if (c + 1) * cap < m else m, n_in, n_out,
                               &out[0, 0], &fbuf[tid, 0], &ibuf[tid, 0], &lay[0], cap, pool,
                               setter)
        else:
            _forward_chunk(&params[0], pp, L, &X[0, 0], 0, m, n_in, n_out, &out[0, 0],
                           &fbuf[0, 0], &ibuf[0, 0], &lay[0], cap, pool, setter)


cdef void _forward_chunk(const floating *params, const int64_t *prog, int64_t L,
                         const floating *X, int64_t lo, int64_t hi, int64_t n_in, int64_t n_out,
                         floating *out, floating *fbuf, int64_t *ibuf, const int64_t *lay,
                         int64_t cap, int64_t pool, size_t setter) noexcept nogil:
    cdef Work w
    make_work(&w, fbuf, ibuf, lay, L, cap, pool)
    block_forward(params, prog, L, X, lo, hi, n_in, n_out, out, &w, setter)


def _setter_address():
    return _blas.setter_address()


def sequential_forward(params, prog, X, out):
    """The program's outputs (see :func:`fastnet.reference.conv.sequential_forward`)."""
    k = "sequential_forward"
    p = cc.Program(k, params, prog)
    p.data(k, params, X, out=out)
    m = X.shape[0]
    cap = min(m, plan.FORWARD_CHUNK)
    nt = _max_threads(prog, cap)
    nchunks = -(-m // cap)
    fbuf, ibuf, lay, pool = _workspaces(prog, cap, nt if nt > 1 and nchunks > 1 else 1,
                                        params.dtype)
    _forward(params, prog, X, out, fbuf, ibuf, lay, cap, pool, nt, _setter_address())


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
    nt = _max_threads(prog, m)
    nb = n_blocks(nt, m) if nt > 1 else 1
    cap = -(-m // nb) + 1
    fbuf, ibuf, lay, pool = _workspaces(prog, cap, nb, params.dtype)
    Gt = np.empty((nb, params.shape[0]), params.dtype)
    losses = np.zeros(nb)
    total = _grad_only(params, prog, loss_kind, X, Y, order, fbuf, ibuf, lay, cap, pool, nt, nb,
                       Gt, losses, _setter_address())
    grad[...] = Gt[0]
    return float(total)


@cython.boundscheck(False)
def _grad_only(const floating[::1] params, const int64_t[:, ::1] prog, int loss_kind,
               const floating[:, ::1] X, const floating[:, ::1] Y, const int64_t[::1] order,
               floating[:, ::1] fbuf, int64_t[:, ::1] ibuf, const int64_t[::1] lay, int64_t cap,
               int64_t pool, int nt, int nb, floating[:, ::1] Gt, double[::1] losses,
               size_t setter):
    cdef int64_t L = prog.shape[0], P = params.shape[0], m = order.shape[0]
    cdef int64_t n_in = X.shape[1], n_out = Y.shape[1], i
    cdef int blk
    cdef double total = 0
    cdef const int64_t *pp = &prog[0, 0]
    with nogil:
        if nt > 1 and nb > 1:
            for blk in prange(nb, num_threads=nt, schedule="dynamic", chunksize=1):
                losses[blk] = _run_block(&params[0], pp, L, loss_kind, &X[0, 0], &Y[0, 0],
                                         &order[0], blk * m // nb, (blk + 1) * m // nb, n_in,
                                         n_out, P, &Gt[blk, 0], &fbuf[blk, 0], &ibuf[blk, 0],
                                         &lay[0], cap, pool, setter)
        else:
            losses[0] = _run_block(&params[0], pp, L, loss_kind, &X[0, 0], &Y[0, 0], &order[0],
                                   0, m, n_in, n_out, P, &Gt[0, 0], &fbuf[0, 0], &ibuf[0, 0],
                                   &lay[0], cap, pool, setter)
        for blk in range(nb):
            total += losses[blk]
        for blk in range(1, nb):
            for i in range(P):
                Gt[0, i] += Gt[blk, i]
    return total


def sequential_train_epoch(params, prog, loss_kind, X, Y, order, batch_size, optimizer, lr, mu,
                           rho, eps, penalty_kind, lam, state, t):
    """One training epoch (see :func:`fastnet.reference.conv.sequential_train_epoch`)."""
    (p, loss_kind, batch_size, optimizer, lr, mu, rho, eps, penalty_kind, lam,
     t) = cc.training("sequential_train_epoch", params, prog, loss_kind, X, Y, order, batch_size,
                      optimizer, lr, mu, rho, eps, penalty_kind, lam, state, t)
    m = order.shape[0]
    B = min(batch_size, m)
    nt = _max_threads(prog, B)
    nb = n_blocks(nt, B) if nt > 1 else 1
    cap = -(-B // nb) + 1
    fbuf, ibuf, lay, pool = _workspaces(prog, cap, nb, params.dtype)
    Gt = np.empty((nb, params.shape[0]), params.dtype)
    losses = np.zeros(nb)
    return float(_epoch(params, prog, loss_kind, X, Y, order, B, optimizer, lr, mu, rho, eps,
                        penalty_kind, lam if penalty_kind else 0.0, state, t, fbuf, ibuf, lay,
                        cap, pool, nt, nb, Gt, losses, _setter_address()))


def sequential_penalty_value(penalty_kind, lam, params, prog):
    """The weights' penalty (see :func:`fastnet.reference.conv.sequential_penalty_value`)."""
    k = "sequential_penalty_value"
    pen = kc.code(k, "penalty_kind", penalty_kind, kc.PENALTIES)
    lam = kc.real(k, "lam", lam)
    if pen == PEN_NONE or lam == 0:
        return 0.0
    cc.Program(k, params, prog)
    return _penalty(params, prog, pen, lam)


def _penalty(const floating[::1] params, const int64_t[:, ::1] prog, int pen, double lam):
    cdef double v
    with nogil:
        v = penalty_value_of(pen, lam, &params[0], &prog[0, 0], prog.shape[0])
    return float(v)


# ------------------------------------------------------- single-layer kernels
def _geometry_row(H, W, C, Ho, Wo, F, kh, kw, s, ph, pw):
    row = np.zeros(PROG_WIDTH, np.int64)
    row[PROG_IN_H], row[PROG_IN_W], row[PROG_IN_C] = H, W, C
    row[PROG_OUT_H], row[PROG_OUT_W], row[PROG_OUT_C] = Ho, Wo, F
    row[PROG_KH], row[PROG_KW], row[PROG_STRIDE] = kh, kw, s
    row[PROG_PAD_H], row[PROG_PAD_W] = ph, pw
    return row


def conv2d_forward(X, W, b, stride, pad_h, pad_w, act, out):
    """Convolution + bias + activation (see :func:`fastnet.reference.conv.conv2d_forward`)."""
    k = "conv2d_forward"
    dt = kc.float_array(k, "X", X, ndim=4).dtype
    kc.float_array(k, "W", W, ndim=4, dtype=dt)
    kc.float_array(k, "b", b, ndim=1, dtype=dt)
    kc.float_array(k, "out", out, ndim=4, dtype=dt)
    kc.writable(k, "out", out)
    s, ph, pw = cc.conv_geometry(k, X.shape, W.shape, out.shape, stride, pad_h, pad_w)
    kc.shape(k, "b", b, (W.shape[3],))
    a = kc.code(k, "act", act, kc.ACTIVATIONS)
    if a == ACT_SOFTMAX:
        raise ValueError(f"{k}: softmax is not a convolution's activation")
    m, H, Wd, C = X.shape
    kh, kw, _, F = W.shape
    Ho, Wo = out.shape[1], out.shape[2]
    Wb = np.empty((1 + kh * kw * C, F), dt)
    Wb[0] = b
    Wb[1:] = W.reshape(-1, F)
    row = _geometry_row(H, Wd, C, Ho, Wo, F, kh, kw, s, ph, pw)
    row[PROG_ACT] = a
    nb = plan.conv_block_images(Ho * Wo, kh * kw * C, dt.itemsize, m)
    cols = np.empty(nb * Ho * Wo * kh * kw * C, dt)
    _conv_fwd(X.reshape(m, -1), Wb.reshape(-1), row, out.reshape(m, -1), cols, nb,
              _setter_address())


def _conv_fwd(const floating[:, ::1] X, const floating[::1] Wb, const int64_t[::1] row,
              floating[:, ::1] out, floating[::1] cols, int64_t nb, size_t setter):
    cdef Row g = read_row(&row[0], 0)
    cdef int prev = 0
    with nogil:
        if setter:
            prev = (<set_threads_t>setter)(1)
        conv_forward(&X[0, 0], X.shape[0], &Wb[0], &g, &out[0, 0], &cols[0], nb)
        if setter:
            (<set_threads_t>setter)(prev if prev > 0 else 0)


def conv2d_backward_input(dZ, W, stride, pad_h, pad_w, dX):
    """dJ/dX of a convolution (see :func:`fastnet.reference.conv.conv2d_backward_input`)."""
    k = "conv2d_backward_input"
    dt = kc.float_array(k, "dZ", dZ, ndim=4).dtype
    kc.float_array(k, "W", W, ndim=4, dtype=dt)
    kc.float_array(k, "dX", dX, ndim=4, dtype=dt)
    kc.writable(k, "dX", dX)
    s, ph, pw = cc.conv_geometry(k, dX.shape, W.shape, dZ.shape, stride, pad_h, pad_w)
    return _conv_bwd(dX, W, dZ, s, ph, pw, None, None, k)


def conv2d_backward_weights(X, dZ, stride, pad_h, pad_w, dW, db):
    """dJ/dW and dJ/db of a convolution (see :func:`fastnet.reference.conv.conv2d_backward_weights`)."""
    k = "conv2d_backward_weights"
    dt = kc.float_array(k, "X", X, ndim=4).dtype
    kc.float_array(k, "dZ", dZ, ndim=4, dtype=dt)
    kc.float_array(k, "dW", dW, ndim=4, dtype=dt)
    kc.float_array(k, "db", db, ndim=1, dtype=dt)
    kc.writable(k, "dW", dW)
    kc.writable(k, "db", db)
    s, ph, pw = cc.conv_geometry(k, X.shape, dW.shape, dZ.shape, stride, pad_h, pad_w)
    kc.shape(k, "db", db, (dW.shape[3],))
    return _conv_bwd(X, dW, dZ, s, ph, pw, dW, db, k)


def _conv_bwd(X, W, dZ, s, ph, pw, dW, db, name):
    """The input gradient (``dW`` None: ``X`` is dX and W the kernel) or the weights' gradient."""
    dt = X.dtype
    m, H, Wd, C = X.shape
    kh, kw, _, F = W.shape
    Ho, Wo = dZ.shape[1], dZ.shape[2]
    K = kh * kw * C
    row = _geometry_row(H, Wd, C, Ho, Wo, F, kh, kw, s, ph, pw)
    nb = plan.conv_block_images(Ho * Wo, K, dt.itemsize, m)
    cols = np.empty(nb * Ho * Wo * K, dt)
    tmp = np.empty(K * F, dt)
    G = np.zeros((1 + K, F), dt)
    if dW is None:
        Wb = np.zeros((1 + K, F), dt)
        Wb[1:] = W.reshape(K, F)
        _conv_bwd_run(X.reshape(m, -1), Wb.reshape(-1), dZ.reshape(m, -1), row, G.reshape(-1),
                      X.reshape(m, -1), True, False, cols, cols, tmp, nb, _setter_address())
        return None
    _conv_bwd_run(X.reshape(m, -1), G.reshape(-1), dZ.reshape(m, -1), row, G.reshape(-1),
                  X.reshape(m, -1), False, True, cols, cols, tmp, nb, _setter_address())
    db[...] = G[0]
    dW[...] = G[1:].reshape(dW.shape)
    return None


def _conv_bwd_run(floating[:, ::1] X, const floating[::1] Wb, const floating[:, ::1] D,
                  const int64_t[::1] row, floating[::1] G, floating[:, ::1] dX, bint need_input,
                  bint need_weights, floating[::1] cols, floating[::1] dcols,
                  floating[::1] tmp, int64_t nb, size_t setter):
    cdef Row g = read_row(&row[0], 0)
    cdef int prev = 0
    with nogil:
        if setter:
            prev = (<set_threads_t>setter)(1)
        # for the input's gradient X is dX (written, never read: need_weights is False)
        conv_backward(&X[0, 0], X.shape[0], &Wb[0], &D[0, 0], &g, &G[0], &dX[0, 0],
                      need_input, &cols[0], &dcols[0], &tmp[0], nb, need_weights)
        if setter:
            (<set_threads_t>setter)(prev if prev > 0 else 0)


def pool2d_forward(kind, X, pool_h, pool_w, stride, out, argmax):
    """Max or average pooling (see :func:`fastnet.reference.conv.pool2d_forward`)."""
    k = "pool2d_forward"
    kind = cc.pool_kind(k, kind)
    dt = kc.float_array(k, "X", X, ndim=4).dtype
    kc.float_array(k, "out", out, ndim=4, dtype=dt)
    kc.writable(k, "out", out)
    ph, pw, s = cc.pool_geometry(k, X.shape, out.shape, pool_h, pool_w, stride)
    m, H, W, C = X.shape
    if kind == LAYER_MAXPOOL2D:
        kc.int_array(k, "argmax", argmax, ndim=4)
        kc.shape(k, "argmax", argmax, out.shape)
        kc.writable(k, "argmax", argmax)
        am = argmax.reshape(-1)
    else:
        am = np.zeros(1, np.int64)
    row = _geometry_row(H, W, C, out.shape[1], out.shape[2], C, ph, pw, s, 0, 0)
    _pool_fwd(kind, X.reshape(m, -1), row, out.reshape(m, -1), am)


def _pool_fwd(int kind, const floating[:, ::1] X, const int64_t[::1] row, floating[:, ::1] out,
              int64_t[::1] am):
    cdef Row g = read_row(&row[0], 0)
    with nogil:
        pool_forward(kind, &X[0, 0], X.shape[0], &g, &out[0, 0], &am[0])


def pool2d_backward(kind, dout, argmax, pool_h, pool_w, stride, dX):
    """The pooling's input gradient (see :func:`fastnet.reference.conv.pool2d_backward`)."""
    k = "pool2d_backward"
    kind = cc.pool_kind(k, kind)
    dt = kc.float_array(k, "dout", dout, ndim=4).dtype
    kc.float_array(k, "dX", dX, ndim=4, dtype=dt)
    kc.writable(k, "dX", dX)
    ph, pw, s = cc.pool_geometry(k, dX.shape, dout.shape, pool_h, pool_w, stride)
    m, H, W, C = dX.shape
    if kind == LAYER_MAXPOOL2D:
        kc.int_array(k, "argmax", argmax, ndim=4)
        kc.shape(k, "argmax", argmax, dout.shape)
        if argmax.size and (argmax.min() < 0 or argmax.max() >= H * W * C):
            raise ValueError(f"{k}: argmax holds positions outside the {H}x{W}x{C} images")
        am = argmax.reshape(-1)
    else:
        am = np.zeros(1, np.int64)
    row = _geometry_row(H, W, C, dout.shape[1], dout.shape[2], C, ph, pw, s, 0, 0)
    _pool_bwd(kind, dout.reshape(m, -1), am, row, dX.reshape(m, -1))


def _pool_bwd(int kind, const floating[:, ::1] D, const int64_t[::1] am, const int64_t[::1] row,
              floating[:, ::1] dX):
    cdef Row g = read_row(&row[0], 0)
    with nogil:
        pool_backward(kind, &D[0, 0], &am[0], D.shape[0], &g, &dX[0, 0])


def _set_direct(max_filters=32, max_k=64):
    """Which convolutions take the direct loops instead of im2col + GEMM: ``F % 8 == 0``,
    ``F <= max_filters`` and ``K = kh*kw*C <= max_k`` (0 turns them off).  Returns the
    previous ``(max_filters, max_k)``.  For tests and benchmarks; not thread-safe."""
    global DIRECT_MAX_F, DIRECT_MAX_K
    old = (DIRECT_MAX_F, DIRECT_MAX_K)  # (both 0 by default on a build without AVX2)
    DIRECT_MAX_F, DIRECT_MAX_K = int(max_filters), int(max_k)
    return old
