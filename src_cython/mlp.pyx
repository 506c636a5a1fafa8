# cython: language_level=3
r"""Networks: forward pass, the course's backprop, mini-batch training, penalties and optimisers.

The kernels of :mod:`fastnet.reference.kernels` (same names, signatures and
in-place conventions) on the flat parameter layout of :mod:`fastnet._params`:
layer ``l`` is ``W_l = Theta_l.T`` of shape ``(n_l + 1, n_{l+1})``, bias in row 0.

How the work is done
--------------------
The course's per-sample algorithm, in ``nogil`` loops that allocate nothing
per sample (work buffers are allocated once per kernel call):

* forward: :math:`z^{(l+1)} = \sum_j a^{(l)}_j W_l[1+j]`, then :math:`+ W_l[0]`,
  one contiguous row of ``W_l`` per input unit; inputs that are exactly zero
  are skipped (MNIST pixels are ~80 % zeros; skipping them is exact);
* backward: :math:`\delta^{(l)} = (W_l[1:]\,\delta^{(l+1)}) \odot f'(a^{(l)})`
  and the outer products :math:`a^{(l)}\delta^{(l+1)T}` added row by row into
  the gradient, again only for the non-zero inputs.

Every sum is a sequential chain of fused multiply-adds in the order a BLAS
GEMM uses (inputs in increasing index for a forward sum, samples in order for
a gradient entry, bias added last), so the results are those of the
reference's matrix products to the last bit in most cases.

With AVX-512 (``fastnet_simd.h``; the normal ``-march=native`` build on such a
CPU) samples go four at a time: each layer's rows are the union of the four
samples' non-zero inputs, each weight row is loaded once for the four with
the running sums in registers, and each gradient row is read and written
once per four samples.  Without it (portable builds, the bounds-checked
build) the same arithmetic runs as generic typed-memoryview loops.

Threads (OpenMP ``prange``; serial when built without OpenMP): a batch is cut
into chunks fixed by its size (one for small batches; up to 16 for big ones,
handed out to the threads as they come free), each chunk summing its
gradients into its own buffer, the buffers added in chunk order: a result
depends on the inputs and the thread count only.  See :func:`_set_threading`.

Online learning with plain SGD and no penalty (``batch_size`` 1) takes each
sample's step in place, touching only the rows of its non-zero inputs:
:math:`W_l[1+j] \mathrel{-}= \eta\,(a_j\delta)` with every :math:`\delta`
computed from the weights before the step -- exactly the reference's step.
"""
import numpy as np
cimport numpy as cnp
cimport cython
from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t, uint32_t

from _common cimport (floating, f_sqrt, f_fma, prefetch_row, FASTNET_SIMD, simd_compact1,
                      simd_compact4, simd_affine1, simd_affine4, simd_axpy1, simd_axpy4,
                      simd_sgd1, simd_backdelta4, act_df_from_a, activate_inplace, loss_term,
                      loss_grad,
                      fused_output, penalty_term, fastnet_omp_max_threads, FASTNET_HAVE_OPENMP,
                      fastnet_wtime,
                      PEN_NONE, PEN_L2, PEN_L1, OPT_SGD, OPT_MOMENTUM, OPT_RMSPROP)

from fastnet._cython import _checks as chk

cnp.import_array()

# ------------------------------------------------------------------ threading policy
cdef int _num_threads = 0          # 0: OpenMP's default (OMP_NUM_THREADS, else the cores)
cdef double _min_work = 1e7        # multiply-adds per thread below which fewer threads are used
                                   # (fork/join and buffer sums cost more than they save
                                   # below ~0.4 ms of work per thread, measured on MNIST)
cdef double _min_elems = 32768.0   # elements per thread of the elementwise passes


# Small batches: threads or not, as measured (see _train); both give the same numbers.
cdef bint _adapt_parallel = True
cdef double _adapt_time = -1e300       # fastnet_wtime() of the last measurement
cdef double _ADAPT_PERIOD = 2.0         # seconds between measurements
cdef double _big_work = 3e7             # batch work above which threads are always used


def _set_threading(num_threads=None, min_work=None, min_elems=None, big_work=None,
                   small_batches=None):
    """Set the thread policy (tests and benchmarks); returns the previous settings as a
    dict, which ``_set_threading(**old)`` restores.

    ``num_threads``: 0 means OpenMP's default.  ``min_work``: the work (multiply-adds) a
    thread must get for a batch to be cut into chunks; ``min_elems``: the same for the
    elementwise optimiser pass.  ``big_work``: batches with more work always run their
    chunks on threads; smaller ones do when measured faster, or as ``small_batches`` says
    (True: threads, False: one thread; None: measure).  The numbers computed depend only
    on the number of chunks, never on how they were run.
    """
    global _num_threads, _min_work, _min_elems, _big_work, _adapt_parallel, _adapt_time
    old = dict(num_threads=_num_threads, min_work=_min_work, min_elems=_min_elems,
               big_work=_big_work, small_batches=None if _adapt_time < 1e300
               else bool(_adapt_parallel))
    if num_threads is not None:
        _num_threads = int(num_threads)
    if min_work is not None:
        _min_work = float(min_work)
    if min_elems is not None:
        _min_elems = float(min_elems)
    if big_work is not None:
        _big_work = float(big_work)
    if small_batches is None:
        if _adapt_time >= 1e300:      # was fixed: measure again
            _adapt_time = -1e300
    else:
        _adapt_parallel = bool(small_batches)
        _adapt_time = 1e300           # never re-measured
    return old


def _plan_chunks(n_items, work_per_item):
    """``(chunks, threads)`` the policy gives ``n_items`` items of ``work_per_item``
    multiply-adds (used by the other extension modules)."""
    cdef int tmax = _max_threads()
    cdef int C = _chunks_for(n_items, work_per_item, tmax)
    return C, min(C, tmax)


def openmp_enabled():
    """Whether this extension was compiled with OpenMP (else every loop runs serially)."""
    return bool(FASTNET_HAVE_OPENMP)


cdef int _max_threads() noexcept nogil:
    if not FASTNET_HAVE_OPENMP:
        return 1
    if _num_threads > 0:
        return _num_threads
    return max(1, fastnet_omp_max_threads())


cdef int _threads_for(Py_ssize_t n_items, double work_per_item, double min_work,
                      int tmax) noexcept nogil:
    """Threads for ``n_items`` items of ``work_per_item``: at most ``tmax`` and one per item,
    each with at least ``min_work``."""
    cdef int T = tmax
    if T > n_items:
        T = <int>n_items
    while T > 1 and n_items * work_per_item < T * min_work:
        T -= 1
    return T if T > 1 else 1


cdef int _MAX_CHUNKS = 16               # chunks of a big batch (dynamically scheduled)
cdef Py_ssize_t _CHUNK_SAMPLES = 64      # ... of at least this many samples


cdef int _chunks_for(Py_ssize_t b, double work, int tmax) noexcept nogil:
    """Chunks a batch of ``b`` samples (``work`` multiply-adds each) is cut into, each summing
    its gradients in its own buffer; the buffers are added in chunk order.

    One chunk when there is not enough work for two threads; one per thread for small
    batches; up to ``_MAX_CHUNKS`` for big ones, handed out to the threads as they come
    free (a thread slowed down by another process then does fewer).  Depends on the sizes
    and the thread count only, so results are reproducible for a given thread count.
    """
    cdef int C = _threads_for(b, work, _min_work, tmax)
    cdef Py_ssize_t by_size
    if C > 1 and b * work >= _big_work:
        by_size = b // _CHUNK_SAMPLES
        C = <int>min(<Py_ssize_t>_MAX_CHUNKS, max(<Py_ssize_t>C, by_size))
    return C


# ------------------------------------------------------------------ workspace layout
cdef struct Layout:
    # network
    Py_ssize_t L        # layers
    Py_ssize_t n0       # input width
    Py_ssize_t SA       # activations of one sample, all layers (= sum(sizes[1:]))
    Py_ssize_t SB       # samples per block
    int loss_kind
    # floating workspace of one thread: offsets
    Py_ssize_t wA       # SB x SA activations (layer l of sample s at s*SA + aoff[l])
    Py_ssize_t wD       # SB x SA error terms (deltas), same layout
    Py_ssize_t wV       # SB x n0 values of the non-zero inputs, by sample (CSR)
    Py_ssize_t wT       # SIMD path: the transposed weights W_l[1:]^T of layers L-1..1
    # int32 workspace of one thread: offsets
    Py_ssize_t iR       # SB + 1 row pointers of the CSR
    Py_ssize_t iI       # SB x n0 input index of each CSR entry
    Py_ssize_t iZ       # SIMD path: each layer's non-zero inputs (layer l at iZ + noff[l])
    Py_ssize_t iC       # SIMD path: their numbers (L entries)


# ------------------------------------------------------------- gathering the inputs
cdef Py_ssize_t _gather(const floating[:, ::1] X, const uint32_t[:, ::1] Xw, Py_ssize_t i,
                        floating[::1] ws, Py_ssize_t vlo, int32_t[::1] iw,
                        Py_ssize_t ilo) noexcept nogil:
    """The non-zero entries of row ``X[i]``: values to ``ws[vlo:]``, indices to ``iw[ilo:]``
    (``n0`` slots each); returns their number.

    Blocks of 16 entries whose bits are all 0 (+0.0) are skipped with one vectorised test
    on the raw bits ``Xw``; the others are stored without a branch (always store, advance
    when non-zero), so that the unpredictable zero/non-zero pattern costs no branch misses.
    """
    cdef Py_ssize_t n0 = X.shape[1], j = 0, b, q, nnz = 0, w = sizeof(floating) // 4
    cdef uint32_t bits
    cdef floating v
    while j + 16 <= n0:
        bits = 0
        for q in range(16 * w):
            bits |= Xw[i, j * w + q]
        if bits:
            for b in range(16):
                v = X[i, j + b]
                iw[ilo + nnz] = <int32_t>(j + b)
                ws[vlo + nnz] = v
                nnz += v != 0
        j += 16
    while j < n0:
        v = X[i, j]
        iw[ilo + nnz] = <int32_t>j
        ws[vlo + nnz] = v
        nnz += v != 0
        j += 1
    return nnz


cdef void _gather_sample(const floating[:, ::1] X, const uint32_t[:, ::1] Xw, Py_ssize_t i,
                         Layout lay, floating[::1] ws, int32_t[::1] iw,
                         Py_ssize_t s) noexcept nogil:
    """The non-zero inputs of sample ``X[i]`` into block slot ``s`` of the CSR (slot
    ``s`` starts where slot ``s - 1`` ended)."""
    cdef int32_t start = iw[lay.iR + s]
    iw[lay.iR + s + 1] = start + <int32_t>_gather(X, Xw, i, ws, lay.wV + start, iw,
                                                   lay.iI + start)


# ------------------------------------------------------------------------ forward
cdef inline void _rows4(const floating[::1] P, floating[::1] z, Py_ssize_t zlo, Py_ssize_t n,
                        Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t r2, Py_ssize_t r3,
                        floating v0, floating v1, floating v2, floating v3) noexcept nogil:
    """``z += v0*P[r0:] + v1*P[r1:] + v2*P[r2:] + v3*P[r3:]`` (``n`` entries), as four
    sequential fused multiply-adds per entry: the same rounding as adding the rows one by
    one, but the running sums stay in registers between the rows."""
    cdef Py_ssize_t k
    for k in range(n):
        z[zlo + k] = f_fma(v3, P[r3 + k], f_fma(v2, P[r2 + k], f_fma(
            v1, P[r1 + k], f_fma(v0, P[r0 + k], z[zlo + k]))))


cdef inline void _row1(const floating[::1] P, floating[::1] z, Py_ssize_t zlo, Py_ssize_t n,
                       Py_ssize_t r0, floating v0) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        z[zlo + k] = f_fma(v0, P[r0 + k], z[zlo + k])


cdef void _layer0_sample(const floating[::1] P, const int64_t[::1] sizes,
                         const int64_t[::1] offs, Layout lay, floating[::1] ws,
                         const int32_t[::1] iw, Py_ssize_t s) noexcept nogil:
    """Layer 0's sums :math:`\\sum_j x_j W_0[1+j]` of block sample ``s`` from its CSR entries
    (four rows per pass), into its activation slot."""
    cdef Py_ssize_t n1 = sizes[1], off = offs[0] + n1, z = lay.wA + s * lay.SA, k
    cdef Py_ssize_t e = iw[lay.iR + s], e1 = iw[lay.iR + s + 1], v = lay.wV
    for k in range(n1):
        ws[z + k] = 0
    while e + 4 <= e1:
        _rows4(P, ws, z, n1, off + iw[lay.iI + e] * n1, off + iw[lay.iI + e + 1] * n1,
               off + iw[lay.iI + e + 2] * n1, off + iw[lay.iI + e + 3] * n1, ws[v + e],
               ws[v + e + 1], ws[v + e + 2], ws[v + e + 3])
        e += 4
    while e < e1:
        _row1(P, ws, z, n1, off + iw[lay.iI + e] * n1, ws[v + e])
        e += 1


cdef void _upper_layers(const floating[::1] P, const int64_t[::1] sizes,
                        const int64_t[::1] offs, const int64_t[::1] kinds,
                        const int64_t[::1] aoff, Layout lay, floating[::1] ws,
                        Py_ssize_t s) noexcept nogil:
    """After layer 0's sums: its bias and activation, then every later layer (sums of the
    rows of the previous activations in order, bias, activation) for block sample ``s``."""
    cdef Py_ssize_t l, j, k, n_in, n_out, off, a_in, a_out, base = lay.wA + s * lay.SA
    n_out = sizes[1]
    for k in range(n_out):
        ws[base + k] += P[offs[0] + k]
    activate_inplace(<int>kinds[0], ws, base, n_out)
    for l in range(1, lay.L):
        n_in = n_out
        n_out = sizes[l + 1]
        a_in = base + aoff[l - 1]
        a_out = base + aoff[l]
        off = offs[l] + n_out
        for k in range(n_out):
            ws[a_out + k] = 0
        j = 0
        while j + 4 <= n_in:
            _rows4(P, ws, a_out, n_out, off + j * n_out, off + (j + 1) * n_out,
                   off + (j + 2) * n_out, off + (j + 3) * n_out, ws[a_in + j],
                   ws[a_in + j + 1], ws[a_in + j + 2], ws[a_in + j + 3])
            j += 4
        while j < n_in:
            _row1(P, ws, a_out, n_out, off + j * n_out, ws[a_in + j])
            j += 1
        for k in range(n_out):
            ws[a_out + k] += P[offs[l] + k]
        activate_inplace(<int>kinds[l], ws, a_out, n_out)


# ----------------------------------------------------------------------- backward
cdef double _deltas(const floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                    const int64_t[::1] kinds, const int64_t[::1] aoff, Layout lay,
                    const floating[:, ::1] Y, Py_ssize_t i, floating[::1] ws,
                    Py_ssize_t s, bint below=True) noexcept nogil:
    """Loss of sample ``i`` (block slot ``s``, after the forward pass) and the error terms
    :math:`\\delta^{(l)}` of every layer into its delta slot; returns the loss (float64).

    Output: :math:`a - y` (sigmoid + cross-entropy, softmax + log-loss), else
    :math:`\\ell'(a) f'(z)`; below: :math:`\\delta^{(l-1)} = (W_l[1:]\\,\\delta^{(l)})\\odot
    f'(a^{(l-1)})`, each dot product a sequential fused multiply-add over ``k`` (as BLAS),
    four at a time so that four independent chains are in flight.
    """
    cdef Py_ssize_t L = lay.L, A = lay.wA + s * lay.SA, D = lay.wD + s * lay.SA
    cdef Py_ssize_t n_in, n_out, j, k, l, row, a_in, d_in, d_out
    cdef int kind = <int>kinds[L - 1]
    cdef int lk = lay.loss_kind
    cdef bint simple = fused_output(kind, lk)
    cdef floating a, y, s0, s1, s2, s3, dk
    cdef double total = 0
    n_out = sizes[L]
    for k in range(n_out):
        a = ws[A + aoff[L - 1] + k]
        y = Y[i, k]
        total += loss_term(lk, a, y)
        if simple:
            ws[D + aoff[L - 1] + k] = a - y
        else:
            ws[D + aoff[L - 1] + k] = loss_grad(lk, a, y) * act_df_from_a(kind, a)
    if not below:       # (the layers below are done by _panel_backdeltas)
        return total
    for l in range(L - 1, 0, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        kind = <int>kinds[l - 1]
        a_in = A + aoff[l - 1]
        d_in = D + aoff[l - 1]
        d_out = D + aoff[l]
        j = 0
        while j + 4 <= n_in:
            row = offs[l] + (j + 1) * n_out
            s0 = 0
            s1 = 0
            s2 = 0
            s3 = 0
            for k in range(n_out):
                dk = ws[d_out + k]
                s0 = f_fma(P[row + k], dk, s0)
                s1 = f_fma(P[row + n_out + k], dk, s1)
                s2 = f_fma(P[row + 2 * n_out + k], dk, s2)
                s3 = f_fma(P[row + 3 * n_out + k], dk, s3)
            ws[d_in + j] = s0 * act_df_from_a(kind, ws[a_in + j])
            ws[d_in + j + 1] = s1 * act_df_from_a(kind, ws[a_in + j + 1])
            ws[d_in + j + 2] = s2 * act_df_from_a(kind, ws[a_in + j + 2])
            ws[d_in + j + 3] = s3 * act_df_from_a(kind, ws[a_in + j + 3])
            j += 4
        while j < n_in:
            row = offs[l] + (j + 1) * n_out
            s0 = 0
            for k in range(n_out):
                s0 = f_fma(P[row + k], ws[d_out + k], s0)
            ws[d_in + j] = s0 * act_df_from_a(kind, ws[a_in + j])
            j += 1
    return total


cdef inline void _acc4(floating[::1] G, Py_ssize_t row, Py_ssize_t n, const floating[::1] ws,
                       Py_ssize_t d0, Py_ssize_t d1, Py_ssize_t d2, Py_ssize_t d3,
                       floating v0, floating v1, floating v2, floating v3) noexcept nogil:
    """``G[row:row+n] += v0*ws[d0:] + ... + v3*ws[d3:]`` as four sequential fused
    multiply-adds (the order of adding the four samples one after the other)."""
    cdef Py_ssize_t k
    for k in range(n):
        G[row + k] = f_fma(v3, ws[d3 + k], f_fma(v2, ws[d2 + k], f_fma(
            v1, ws[d1 + k], f_fma(v0, ws[d0 + k], G[row + k]))))


cdef inline void _acc1(floating[::1] G, Py_ssize_t row, Py_ssize_t n, const floating[::1] ws,
                       Py_ssize_t d0, floating v0) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        G[row + k] = f_fma(v0, ws[d0 + k], G[row + k])


cdef void _grad_block(const int64_t[::1] sizes, const int64_t[::1] offs,
                      const int64_t[::1] aoff, Layout lay, Py_ssize_t nb,
                      const floating[::1] ws, const int32_t[::1] iw,
                      floating[::1] G) noexcept nogil:
    """Add the gradient of the ``nb`` samples of a block into ``G``, but for layer 0's
    weight rows (see :func:`_grad_layer0`).

    :math:`\\partial/\\partial W_l[0] = \\sum_s \\delta_s`,
    :math:`\\partial/\\partial W_l[1+j] = \\sum_s a_{sj}\\delta_s`: row by row, each row
    read and written once per block, the samples added in order four at a time (fused
    multiply-adds: the rounding of BLAS's ``X.T @ delta``).
    """
    cdef Py_ssize_t l, j, s, p, p1, n_in, n_out, off, SA = lay.SA, A, D
    cdef floating one = 1
    for l in range(lay.L):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        off = offs[l]
        D = lay.wD + aoff[l]
        # bias row
        s = 0
        while s + 4 <= nb:
            _acc4(G, off, n_out, ws, D + s * SA, D + (s + 1) * SA, D + (s + 2) * SA,
                  D + (s + 3) * SA, one, one, one, one)
            s += 4
        while s < nb:
            _acc1(G, off, n_out, ws, D + s * SA, one)
            s += 1
        if l == 0:
            continue       # layer 0's rows: per sample, from the CSR (see _grad_layer0)
        else:
            A = lay.wA + aoff[l - 1]
            for j in range(n_in):
                s = 0
                while s + 4 <= nb:
                    _acc4(G, off + (j + 1) * n_out, n_out, ws, D + s * SA, D + (s + 1) * SA,
                          D + (s + 2) * SA, D + (s + 3) * SA, ws[A + s * SA + j],
                          ws[A + (s + 1) * SA + j], ws[A + (s + 2) * SA + j],
                          ws[A + (s + 3) * SA + j])
                    s += 4
                while s < nb:
                    _acc1(G, off + (j + 1) * n_out, n_out, ws, D + s * SA, ws[A + s * SA + j])
                    s += 1


cdef void _grad_layer0(const int64_t[::1] sizes, const int64_t[::1] offs, Layout lay,
                       const floating[::1] ws, const int32_t[::1] iw, Py_ssize_t s,
                       floating[::1] G) noexcept nogil:
    """Add :math:`x_j\,\delta^{(0)}` of block sample ``s`` into the rows ``G_0[1+j]`` of its
    non-zero inputs (one pass over each row it touches)."""
    cdef Py_ssize_t n1 = sizes[1], off = offs[0] + n1, e, D = lay.wD + s * lay.SA
    for e in range(iw[lay.iR + s], iw[lay.iR + s + 1]):
        _acc1(G, off + iw[lay.iI + e] * n1, n1, ws, D, ws[lay.wV + e])


cdef void _sgd_direct(floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                      const int64_t[::1] aoff, Layout lay, const floating[::1] ws,
                      const int32_t[::1] iw, floating lr) noexcept nogil:
    """Online SGD without penalty, for the sample in block slot 0 (its deltas computed from
    the weights before the step): :math:`W \\mathrel{-}= \\eta\\,(a\\,\\delta)`, rounded as
    the reference's ``params -= lr * grad``, on the rows of the non-zero inputs only."""
    cdef Py_ssize_t l, j, k, e, n_in, n_out, off, row, D, A
    cdef floating v
    for l in range(lay.L):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        off = offs[l]
        D = lay.wD + aoff[l]
        for k in range(n_out):
            P[off + k] -= lr * ws[D + k]
        if l == 0:
            for e in range(iw[lay.iR], iw[lay.iR + 1]):
                v = ws[lay.wV + e]
                row = off + (iw[lay.iI + e] + 1) * n_out
                for k in range(n_out):
                    P[row + k] -= lr * (v * ws[D + k])
        else:
            A = lay.wA + aoff[l - 1]
            for j in range(n_in):
                v = ws[A + j]
                if v != 0:
                    row = off + (j + 1) * n_out
                    for k in range(n_out):
                        P[row + k] -= lr * (v * ws[D + k])


# ------------------------------------------------------- the explicit-SIMD path
# With AVX-512 (FASTNET_SIMD), samples go four at a time ("panels"): each layer's input
# rows are the union of the four samples' non-zero inputs, each weight row is loaded once
# for the four (fastnet_simd.h: running sums in registers), and each gradient row is read
# and written once per four samples.  Same numbers as the generic loops above.

cdef inline const floating* _input(const floating[:, ::1] X, const floating[::1] ws,
                                   Py_ssize_t i, Py_ssize_t slot, Py_ssize_t l,
                                   const int64_t[::1] aoff, Layout lay) noexcept nogil:
    """Layer ``l``'s input for the sample in ``slot`` (row ``i`` of ``X`` for layer 0)."""
    if l == 0:
        return &X[i, 0]
    return &ws[lay.wA + slot * lay.SA + aoff[l - 1]]


cdef inline void _bias_activate(const floating[::1] P, const int64_t[::1] sizes,
                                const int64_t[::1] offs, const int64_t[::1] kinds,
                                const int64_t[::1] aoff, Layout lay, floating[::1] ws,
                                Py_ssize_t slot, Py_ssize_t l) noexcept nogil:
    cdef Py_ssize_t k, n = sizes[l + 1], base = lay.wA + slot * lay.SA + aoff[l]
    for k in range(n):
        ws[base + k] += P[offs[l] + k]
    activate_inplace(<int>kinds[l], ws, base, n)


cdef void _panel_forward(const floating[::1] P, const int64_t[::1] sizes,
                         const int64_t[::1] offs, const int64_t[::1] kinds,
                         const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
                         const floating[:, ::1] X, Py_ssize_t i0, Py_ssize_t i1,
                         Py_ssize_t i2, Py_ssize_t i3, floating[::1] ws,
                         int32_t[::1] iw) noexcept nogil:
    """Activations of rows ``i0..i3`` of ``X`` into slots 0..3; each layer's union of non-zero
    inputs (and its size) kept in ``iw`` for the gradient."""
    cdef Py_ssize_t l, s, n_out, SA = lay.SA
    cdef int64_t c
    cdef int32_t *nz
    for l in range(lay.L):
        n_out = sizes[l + 1]
        nz = &iw[lay.iZ + noff[l]]
        c = simd_compact4(_input(X, ws, i0, 0, l, aoff, lay), _input(X, ws, i1, 1, l, aoff, lay),
                          _input(X, ws, i2, 2, l, aoff, lay), _input(X, ws, i3, 3, l, aoff, lay),
                          sizes[l], nz)
        iw[lay.iC + l] = <int32_t>c
        simd_affine4(&P[offs[l] + n_out], n_out, nz, c,
                     _input(X, ws, i0, 0, l, aoff, lay), _input(X, ws, i1, 1, l, aoff, lay),
                     _input(X, ws, i2, 2, l, aoff, lay), _input(X, ws, i3, 3, l, aoff, lay),
                     &ws[lay.wA + aoff[l]], &ws[lay.wA + SA + aoff[l]],
                     &ws[lay.wA + 2 * SA + aoff[l]], &ws[lay.wA + 3 * SA + aoff[l]])
        for s in range(4):
            _bias_activate(P, sizes, offs, kinds, aoff, lay, ws, s, l)


cdef void _panel_grad(const int64_t[::1] sizes, const int64_t[::1] offs,
                      const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
                      const floating[:, ::1] X, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t i2,
                      Py_ssize_t i3, floating[::1] ws, int32_t[::1] iw,
                      floating[::1] G) noexcept nogil:
    """``G +=`` the gradients of the panel (after :func:`_panel_forward` and the deltas)."""
    cdef Py_ssize_t l, k, n_out, off, SA = lay.SA, D
    for l in range(lay.L):
        n_out = sizes[l + 1]
        off = offs[l]
        D = lay.wD + aoff[l]
        for k in range(n_out):
            G[off + k] = (((G[off + k] + ws[D + k]) + ws[D + SA + k]) + ws[D + 2 * SA + k]) \
                + ws[D + 3 * SA + k]
        simd_axpy4(&G[off + n_out], n_out, &iw[lay.iZ + noff[l]], iw[lay.iC + l],
                   _input(X, ws, i0, 0, l, aoff, lay), _input(X, ws, i1, 1, l, aoff, lay),
                   _input(X, ws, i2, 2, l, aoff, lay), _input(X, ws, i3, 3, l, aoff, lay),
                   &ws[D], &ws[D + SA], &ws[D + 2 * SA], &ws[D + 3 * SA])


cdef void _single_forward(const floating[::1] P, const int64_t[::1] sizes,
                          const int64_t[::1] offs, const int64_t[::1] kinds,
                          const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
                          const floating[:, ::1] X, Py_ssize_t i, floating[::1] ws,
                          int32_t[::1] iw) noexcept nogil:
    """Activations of row ``i`` of ``X`` into slot 0 (non-zero input lists kept in ``iw``)."""
    cdef Py_ssize_t l, n_out
    cdef int64_t c
    cdef int32_t *nz
    for l in range(lay.L):
        n_out = sizes[l + 1]
        nz = &iw[lay.iZ + noff[l]]
        c = simd_compact1(_input(X, ws, i, 0, l, aoff, lay), sizes[l], nz)
        iw[lay.iC + l] = <int32_t>c
        simd_affine1(&P[offs[l] + n_out], n_out, nz, c, _input(X, ws, i, 0, l, aoff, lay),
                     &ws[lay.wA + aoff[l]])
        _bias_activate(P, sizes, offs, kinds, aoff, lay, ws, 0, l)


cdef void _single_grad(const int64_t[::1] sizes, const int64_t[::1] offs,
                       const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
                       const floating[:, ::1] X, Py_ssize_t i, floating[::1] ws,
                       int32_t[::1] iw, floating[::1] G) noexcept nogil:
    cdef Py_ssize_t l, k, n_out, off, D
    for l in range(lay.L):
        n_out = sizes[l + 1]
        off = offs[l]
        D = lay.wD + aoff[l]
        for k in range(n_out):
            G[off + k] += ws[D + k]
        simd_axpy1(&G[off + n_out], n_out, &iw[lay.iZ + noff[l]], iw[lay.iC + l],
                   _input(X, ws, i, 0, l, aoff, lay), &ws[D])


cdef void _single_sgd(floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                      const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
                      const floating[:, ::1] X, Py_ssize_t i, floating[::1] ws,
                      const int32_t[::1] iw, floating lr) noexcept nogil:
    """Online SGD step of the sample in slot 0 (see :func:`_sgd_direct`), rows of its non-zero
    inputs only."""
    cdef Py_ssize_t l, k, n_out, off, D
    for l in range(lay.L):
        n_out = sizes[l + 1]
        off = offs[l]
        D = lay.wD + aoff[l]
        for k in range(n_out):
            P[off + k] -= lr * ws[D + k]
        simd_sgd1(&P[off + n_out], n_out, &iw[lay.iZ + noff[l]], iw[lay.iC + l],
                  _input(X, ws, i, 0, l, aoff, lay), &ws[D], lr)


cdef void _panel_backdeltas(const floating[::1] P, const int64_t[::1] sizes,
                            const int64_t[::1] offs, const int64_t[::1] kinds,
                            const int64_t[::1] aoff, Layout lay,
                            floating[::1] ws) noexcept nogil:
    """The error terms below the output layer for the 4 samples of a panel, from their
    output deltas: :math:`\delta^{(l-1)} = (W_l[1:]\,\delta^{(l)})\odot f'(a^{(l-1)})`,
    vectorised over the units ``j`` with the transposed weights ``W_l[1:]^T`` (copied once
    per call of :func:`_accumulate_simd`, to ``ws[wT:]``); each sum still a sequential
    fused multiply-add over ``k``."""
    cdef Py_ssize_t l, j, s, n_in, n_out, SA = lay.SA, T = lay.wT, D, A
    cdef int kind
    for l in range(lay.L - 1, 0, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        D = lay.wD + aoff[l]
        simd_backdelta4(&ws[T], n_in, n_out, &ws[D], &ws[D + SA], &ws[D + 2 * SA],
                        &ws[D + 3 * SA], &ws[lay.wD + aoff[l - 1]],
                        &ws[lay.wD + SA + aoff[l - 1]], &ws[lay.wD + 2 * SA + aoff[l - 1]],
                        &ws[lay.wD + 3 * SA + aoff[l - 1]])
        kind = <int>kinds[l - 1]
        for s in range(4):
            D = lay.wD + s * SA + aoff[l - 1]
            A = lay.wA + s * SA + aoff[l - 1]
            for j in range(n_in):
                ws[D + j] = ws[D + j] * act_df_from_a(kind, ws[A + j])
        T += n_in * n_out


cdef void _transpose_upper(const floating[::1] P, const int64_t[::1] sizes,
                           const int64_t[::1] offs, Layout lay,
                           floating[::1] ws) noexcept nogil:
    """``ws[wT:]`` = ``W_l[1:]^T`` for l = L-1 .. 1 (in that order, each (n_out, n_in))."""
    cdef Py_ssize_t l, j, k, n_in, n_out, T = lay.wT
    for l in range(lay.L - 1, 0, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        for j in range(n_in):
            for k in range(n_out):
                ws[T + k * n_in + j] = P[offs[l] + (j + 1) * n_out + k]
        T += n_in * n_out


cdef double _accumulate_simd(
        floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
        const int64_t[::1] kinds, const int64_t[::1] aoff, const int64_t[::1] noff,
        Layout lay, const floating[:, ::1] X, const floating[:, ::1] Y,
        const int64_t[::1] order, Py_ssize_t lo, Py_ssize_t hi, floating[::1] ws,
        int32_t[::1] iw, floating[::1] G) noexcept nogil:
    cdef Py_ssize_t r = lo, s, q
    cdef double total = 0
    if lay.L > 1 and hi - lo >= 4:
        _transpose_upper(P, sizes, offs, lay, ws)
    while r + 4 <= hi:
        _panel_forward(P, sizes, offs, kinds, aoff, noff, lay, X, order[r], order[r + 1],
                       order[r + 2], order[r + 3], ws, iw)
        for s in range(4):
            total += _deltas(P, sizes, offs, kinds, aoff, lay, Y, order[r + s], ws, s, False)
        _panel_backdeltas(P, sizes, offs, kinds, aoff, lay, ws)
        _panel_grad(sizes, offs, aoff, noff, lay, X, order[r], order[r + 1], order[r + 2],
                    order[r + 3], ws, iw, G)
        r += 4
    while r < hi:
        _single_forward(P, sizes, offs, kinds, aoff, noff, lay, X, order[r], ws, iw)
        total += _deltas(P, sizes, offs, kinds, aoff, lay, Y, order[r], ws, 0)
        _single_grad(sizes, offs, aoff, noff, lay, X, order[r], ws, iw, G)
        r += 1
    return total


# ------------------------------------------------------------------ sample ranges
cdef double _accumulate(
        floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
        const int64_t[::1] kinds, const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
        const floating[:, ::1] X, const uint32_t[:, ::1] Xw, const floating[:, ::1] Y,
        const int64_t[::1] order, Py_ssize_t lo, Py_ssize_t hi, floating[::1] ws,
        int32_t[::1] iw, floating[::1] G) noexcept nogil:
    """Add the gradients of samples ``order[lo:hi]`` into ``G``, a block of ``SB`` samples at
    a time; return their summed loss."""
    cdef Py_ssize_t r0, nb, s
    cdef double total = 0
    if FASTNET_SIMD:
        return _accumulate_simd(P, sizes, offs, kinds, aoff, noff, lay, X, Y, order, lo, hi,
                                ws, iw, G)
    r0 = lo
    while r0 < hi:
        nb = min(lay.SB, hi - r0)
        iw[lay.iR] = 0
        for s in range(nb):
            if r0 + s + 1 < hi:
                prefetch_row(X, order[r0 + s + 1])
            _gather_sample(X, Xw, order[r0 + s], lay, ws, iw, s)
            _layer0_sample(P, sizes, offs, lay, ws, iw, s)
            _upper_layers(P, sizes, offs, kinds, aoff, lay, ws, s)
            total += _deltas(P, sizes, offs, kinds, aoff, lay, Y, order[r0 + s], ws, s)
            _grad_layer0(sizes, offs, lay, ws, iw, s, G)
        _grad_block(sizes, offs, aoff, lay, nb, ws, iw, G)
        r0 += nb
    return total


cdef double _accumulate_chunks(
        floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
        const int64_t[::1] kinds, const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
        const floating[:, ::1] X, const uint32_t[:, ::1] Xw, const floating[:, ::1] Y,
        const int64_t[::1] order, Py_ssize_t start, Py_ssize_t b, floating[:, ::1] ws,
        int32_t[:, ::1] iw, floating[:, ::1] Gb, double[::1] tloss, int C, int T,
        bint parallel) noexcept nogil:
    """Samples ``order[start:start+b]`` cut into ``C`` chunks; chunk ``c`` adds its gradients
    into ``Gb[c]`` and its loss into ``tloss[c]``.  With ``parallel``, ``T`` threads take the
    chunks as they come free (each thread has its own workspace); else this thread does them
    all.  The numbers are the same either way."""
    cdef int c, tid
    cdef double total = 0
    if C <= 1:
        return _accumulate(P, sizes, offs, kinds, aoff, noff, lay, X, Xw, Y, order, start,
                           start + b, ws[0], iw[0], Gb[0])
    if parallel and T > 1:
        for c in prange(C, num_threads=T, schedule="dynamic", chunksize=1):
            tid = threadid()
            tloss[c] = _accumulate(P, sizes, offs, kinds, aoff, noff, lay, X, Xw, Y, order,
                                   start + (b * c) // C, start + (b * (c + 1)) // C,
                                   ws[tid], iw[tid], Gb[c])
    else:
        for c in range(C):
            tloss[c] = _accumulate(P, sizes, offs, kinds, aoff, noff, lay, X, Xw, Y, order,
                                   start + (b * c) // C, start + (b * (c + 1)) // C,
                                   ws[0], iw[0], Gb[c])
    for c in range(C):
        total += tloss[c]
    return total


# ---------------------------------------------------------- elementwise parameter passes
cdef void _step_segment(
        floating[::1] P, floating[::1] S, floating[:, ::1] Gb, int T, Py_ssize_t lo,
        Py_ssize_t hi, floating bsz, int opt, floating lr, floating mu, floating rho,
        floating eps, int pen, floating lam) noexcept nogil:
    """``g = (sum_t Gb[t]) / bsz + penalty'(w)``, the optimiser's update of ``P``/``S`` with
    it, and ``Gb[:, lo:hi] = 0`` ready for the next batch."""
    cdef Py_ssize_t i
    cdef int t
    cdef floating g, s, omr = 1 - rho
    for t in range(1, T):
        for i in range(lo, hi):
            Gb[0, i] += Gb[t, i]
            Gb[t, i] = 0
    if opt == OPT_SGD:
        for i in range(lo, hi):
            g = Gb[0, i] / bsz + penalty_term(pen, lam, P[i])
            Gb[0, i] = 0
            P[i] -= lr * g
    elif opt == OPT_MOMENTUM:
        for i in range(lo, hi):
            g = Gb[0, i] / bsz + penalty_term(pen, lam, P[i])
            Gb[0, i] = 0
            s = S[i] * mu
            s = s - lr * g
            S[i] = s
            P[i] += s
    else:
        for i in range(lo, hi):
            g = Gb[0, i] / bsz + penalty_term(pen, lam, P[i])
            Gb[0, i] = 0
            s = S[i] * rho
            s = s + omr * g * g
            S[i] = s
            P[i] -= lr * g / (f_sqrt(s) + eps)


cdef void _step(floating[::1] P, floating[::1] S, floating[:, ::1] Gb, int T,
                const int64_t[:, ::1] segs, floating bsz, int opt, floating lr, floating mu,
                floating rho, floating eps, int pen, floating lam, int Tstep) noexcept nogil:
    cdef Py_ssize_t q, nseg = segs.shape[0]
    if Tstep > 1:
        for q in prange(nseg, num_threads=Tstep, schedule="static"):
            _step_segment(P, S, Gb, T, segs[q, 0], segs[q, 1], bsz, opt, lr, mu, rho, eps,
                          pen if segs[q, 2] else PEN_NONE, lam)
    else:
        for q in range(nseg):
            _step_segment(P, S, Gb, T, segs[q, 0], segs[q, 1], bsz, opt, lr, mu, rho, eps,
                          pen if segs[q, 2] else PEN_NONE, lam)


# --------------------------------------------------------------------- the drivers
cdef void _forward_range(
        const floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
        const int64_t[::1] kinds, const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
        const floating[:, ::1] X, const uint32_t[:, ::1] Xw, const int64_t[::1] order,
        floating[:, ::1] out, Py_ssize_t lo, Py_ssize_t hi, floating[::1] ws,
        int32_t[::1] iw) noexcept nogil:
    """Outputs of samples ``order[lo:hi]`` into those rows of ``out``."""
    cdef Py_ssize_t r, k, s, q, K = sizes[lay.L], A = lay.wA + aoff[lay.L - 1]
    if FASTNET_SIMD:
        r = lo
        while r + 4 <= hi:
            for q in range(r + 4, min(r + 8, hi)):
                prefetch_row(X, order[q])
            _panel_forward(P, sizes, offs, kinds, aoff, noff, lay, X, order[r], order[r + 1],
                           order[r + 2], order[r + 3], ws, iw)
            for s in range(4):
                for k in range(K):
                    out[order[r + s], k] = ws[A + s * lay.SA + k]
            r += 4
        while r < hi:
            _single_forward(P, sizes, offs, kinds, aoff, noff, lay, X, order[r], ws, iw)
            for k in range(K):
                out[order[r], k] = ws[A + k]
            r += 1
        return
    iw[lay.iR] = 0
    for r in range(lo, hi):
        if r + 1 < hi:
            prefetch_row(X, order[r + 1])
        _gather_sample(X, Xw, order[r], lay, ws, iw, 0)
        _layer0_sample(P, sizes, offs, lay, ws, iw, 0)
        _upper_layers(P, sizes, offs, kinds, aoff, lay, ws, 0)
        for k in range(K):
            out[order[r], k] = ws[A + k]


cdef void _forward(const floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                   const int64_t[::1] kinds, const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
                   const floating[:, ::1] X, const uint32_t[:, ::1] Xw,
                   const int64_t[::1] order, floating[:, ::1] out, floating[:, ::1] ws,
                   int32_t[:, ::1] iw, int C, int T) noexcept nogil:
    """All outputs; ``C`` chunks of rows handed out to ``T`` threads as they come free."""
    cdef Py_ssize_t m = X.shape[0]
    cdef int c, tid
    if C <= 1 or T <= 1:
        _forward_range(P, sizes, offs, kinds, aoff, noff, lay, X, Xw, order, out, 0, m, ws[0], iw[0])
        return
    for c in prange(C, num_threads=T, schedule="dynamic", chunksize=1):
        tid = threadid()
        _forward_range(P, sizes, offs, kinds, aoff, noff, lay, X, Xw, order, out, (m * c) // C,
                       (m * (c + 1)) // C, ws[tid], iw[tid])


cdef void _sum_rows(floating[:, ::1] Gb, int T, floating[::1] out, Py_ssize_t lo,
                    Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t i
    cdef int t
    for i in range(lo, hi):
        out[i] = Gb[0, i]
    for t in range(1, T):
        for i in range(lo, hi):
            out[i] += Gb[t, i]


cdef double _backprop(floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                      const int64_t[::1] kinds, const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
                      const floating[:, ::1] X, const uint32_t[:, ::1] Xw,
                      const floating[:, ::1] Y, const int64_t[::1] order, floating[::1] grad,
                      floating[:, ::1] ws, int32_t[:, ::1] iw, floating[:, ::1] Gb,
                      double[::1] tloss, int C, int T, int Tred) noexcept nogil:
    """Summed gradient of all samples into ``grad`` (overwritten); returns the summed loss."""
    cdef Py_ssize_t i, n = P.shape[0], m = X.shape[0], lo, hi, chunk
    cdef int t
    cdef double total
    if C <= 1:
        for i in range(n):
            grad[i] = 0
        return _accumulate(P, sizes, offs, kinds, aoff, noff, lay, X, Xw, Y, order, 0, m, ws[0],
                           iw[0], grad)
    total = _accumulate_chunks(P, sizes, offs, kinds, aoff, noff, lay, X, Xw, Y, order, 0, m, ws,
                               iw, Gb, tloss, C, T, True)
    # grad = Gb[0] + Gb[1] + ... in chunk order, the parameters cut into Tred ranges
    if Tred <= 1:
        _sum_rows(Gb, C, grad, 0, n)
        return total
    chunk = (n + Tred - 1) // Tred
    for t in prange(Tred, num_threads=Tred, schedule="static", chunksize=1):
        lo = t * chunk
        hi = min(n, lo + chunk)
        _sum_rows(Gb, C, grad, lo, hi)
    return total


cdef double _train(floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                   const int64_t[::1] kinds, const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
                   const floating[:, ::1] X, const uint32_t[:, ::1] Xw,
                   const floating[:, ::1] Y, const int64_t[::1] order, Py_ssize_t bs, int opt,
                   floating lr, floating mu, floating rho, floating eps, int pen, floating lam,
                   floating[::1] S, floating[:, ::1] ws, int32_t[:, ::1] iw,
                   floating[:, ::1] Gb, double[::1] tloss, const int64_t[:, ::1] segs,
                   int tmax, double work, int Tstep) noexcept nogil:
    cdef Py_ssize_t m = order.shape[0], start = 0, b
    cdef bint direct = bs == 1 and opt == OPT_SGD and pen == PEN_NONE
    cdef double total = 0
    cdef int T
    cdef floating[::1] ws0 = ws[0]
    cdef int32_t[::1] iw0 = iw[0]
    if direct:
        # online SGD: each sample's step in place, on the rows it touches
        if FASTNET_SIMD:
            for start in range(m):
                if start + 1 < m:
                    prefetch_row(X, order[start + 1])
                _single_forward(P, sizes, offs, kinds, aoff, noff, lay, X, order[start], ws0,
                                iw0)
                total += _deltas(P, sizes, offs, kinds, aoff, lay, Y, order[start], ws0, 0)
                _single_sgd(P, sizes, offs, aoff, noff, lay, X, order[start], ws0, iw0, lr)
            return total
        iw0[lay.iR] = 0
        for start in range(m):
            if start + 1 < m:
                prefetch_row(X, order[start + 1])
            _gather_sample(X, Xw, order[start], lay, ws0, iw0, 0)
            _layer0_sample(P, sizes, offs, lay, ws0, iw0, 0)
            _upper_layers(P, sizes, offs, kinds, aoff, lay, ws0, 0)
            total += _deltas(P, sizes, offs, kinds, aoff, lay, Y, order[start], ws0, 0)
            _sgd_direct(P, sizes, offs, aoff, lay, ws0, iw0, lr)
        return total
    global _adapt_parallel, _adapt_time
    cdef bint par, big
    cdef int probe = 0, C
    cdef double t0, dt, t_serial = 0
    while start < m:
        b = min(bs, m - start)
        C = _chunks_for(b, work, tmax)          # decided by the sizes only
        T = min(C, tmax)
        # The chunks run on T threads or all on this one: the same numbers either way.
        # Big batches always use the threads.  For small ones a fork/join costs a
        # scheduler time slice whenever the cores are busy with other processes, so the
        # choice is measured, one batch each way, and re-measured every _ADAPT_PERIOD s.
        big = b * work >= _big_work
        par = C > 1
        if C > 1 and not big:
            if probe == 0 and fastnet_wtime() - _adapt_time > _ADAPT_PERIOD:
                probe = 1
            par = probe == 2 or (probe == 0 and _adapt_parallel)
        t0 = fastnet_wtime()
        total += _accumulate_chunks(P, sizes, offs, kinds, aoff, noff, lay, X, Xw, Y, order, start,
                                    b, ws, iw, Gb, tloss, C, T, par)
        _step(P, S, Gb, C, segs, <floating>b, opt, lr, mu, rho, eps, pen, lam,
              Tstep if par else 1)
        if probe:
            dt = (fastnet_wtime() - t0) / b
            if probe == 1:
                t_serial = dt
                probe = 2
            else:
                _adapt_parallel = dt < 0.9 * t_serial
                _adapt_time = fastnet_wtime()
                probe = 0
        start += b
    return total


# ------------------------------------------------------------------ Python entry points
#: samples per block: the block's gathered inputs (CSR + CSC) take at most this many
#: entries per thread
cdef Py_ssize_t _BLOCK_ENTRIES = 1 << 20
cdef Py_ssize_t _BLOCK_MAX = 64


cdef class _Work:
    """Per-call buffers, allocated once per kernel call (never per sample): per thread, a
    float workspace ``ws`` and an int32 one ``iw`` (see :c:type:`Layout`); per chunk, a
    gradient buffer ``Gb`` and a loss ``tloss`` (``C`` 0: no gradient buffers)."""
    cdef public object ws, iw, Gb, tloss
    cdef Layout lay

    def __init__(self, lay, int loss_kind, dtype, int T, int C, Py_ssize_t block=0):
        cdef Py_ssize_t n0 = lay.sizes[0], SA = int(lay.aoff[lay.L]), SB, nf, ni
        if n0 >= 2**31 - 1:
            raise ValueError(f"input width {n0} is too large (int32 indices)")
        SB = block if block > 0 else max(1, min(_BLOCK_MAX, _BLOCK_ENTRIES // n0))
        if FASTNET_SIMD:
            SB = 4                           # the slots of a panel
        self.lay.L = lay.L
        self.lay.n0 = n0
        self.lay.SA = SA
        self.lay.SB = SB
        self.lay.loss_kind = loss_kind
        self.lay.wA = 0
        self.lay.wD = SB * SA
        self.lay.wV = 2 * SB * SA
        self.lay.wT = self.lay.wV + SB * n0
        nf = self.lay.wT + int((lay.sizes[1:lay.L] * lay.sizes[2:]).sum())
        self.lay.iR = 0
        self.lay.iI = SB + 1
        self.lay.iZ = self.lay.iI + SB * n0
        self.lay.iC = self.lay.iZ + int(lay.noff[lay.L])
        ni = self.lay.iC + lay.L
        nf += 16                             # whole-vector loads past the last slot's end
        # rows of each thread start on separate cache lines
        self.ws = np.zeros((T, (nf + 15) // 16 * 16), dtype=dtype)
        self.iw = np.zeros((T, (ni + 15) // 16 * 16), dtype=np.int32)
        self.Gb = np.zeros((max(C, 1), lay.n_params if C else 1), dtype=dtype)
        self.tloss = np.zeros(max(C, 1), dtype=np.float64)


def _bits(X):
    """The raw bits of ``X`` as uint32 words (2 per float64): zero blocks are found on them."""
    return X.view(np.uint32)


def forward_network(params, sizes, kinds, X, out):
    """``out[...]`` = the network's output for the batch ``X`` (m, n0); ``out`` is (m, nL)."""
    K = "forward_network"
    lay = chk.Layout(K, params, sizes, kinds)
    chk.data(K, lay, X, dtype=params.dtype)
    chk.float_array(K, "out", out, ndim=2, dtype=params.dtype)
    chk.writable(K, "out", out)
    chk.shape(K, "out", out, (X.shape[0], int(lay.sizes[lay.L])))
    cdef int tmax = _max_threads()
    cdef int C = _chunks_for(X.shape[0], lay.n_params / 2, tmax)   # forward: half the work
    cdef int T = min(C, tmax)
    cdef _Work w = _Work(lay, 0, params.dtype, T, 0)
    order = np.arange(X.shape[0], dtype=np.int64)
    if params.dtype == np.float32:
        _forward_entry[cython.float](params, lay.sizes, lay.offs, lay.kinds, lay.aoff, lay.noff, w.lay,
                                     X, _bits(X), order, out, w.ws, w.iw, C, T)
    else:
        _forward_entry[cython.double](params, lay.sizes, lay.offs, lay.kinds, lay.aoff, lay.noff, w.lay,
                                      X, _bits(X), order, out, w.ws, w.iw, C, T)


cdef _forward_entry(const floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                    const int64_t[::1] kinds, const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
                    const floating[:, ::1] X, const uint32_t[:, ::1] Xw,
                    const int64_t[::1] order, floating[:, ::1] out, floating[:, ::1] ws,
                    int32_t[:, ::1] iw, int C, int T):
    with nogil:
        _forward(P, sizes, offs, kinds, aoff, noff, lay, X, Xw, order, out, ws, iw, C, T)


def _backprop_common(K, params, sizes, kinds, loss_kind, X, Y, grad):
    lay = chk.Layout(K, params, sizes, kinds)
    loss_kind = chk.loss_pair(K, loss_kind, lay.kinds)
    chk.data(K, lay, X, Y, dtype=params.dtype)
    chk.float_array(K, "grad", grad, ndim=1, dtype=params.dtype)
    chk.writable(K, "grad", grad)
    chk.shape(K, "grad", grad, params.shape)
    if not params.flags.writeable:  # typed as writable (shared with train_epoch); never written
        params = params.copy()
    m = X.shape[0]
    cdef int tmax = _max_threads()
    cdef int C = _chunks_for(m, lay.n_params, tmax)
    cdef int T = min(C, tmax)
    cdef int Tred = _threads_for(lay.n_params, C, _min_elems, tmax) if C > 1 else 1
    cdef _Work w = _Work(lay, loss_kind, params.dtype, T, C if C > 1 else 0)
    order = np.arange(m, dtype=np.int64)
    if params.dtype == np.float32:
        return _backprop_entry[cython.float](params, lay.sizes, lay.offs, lay.kinds, lay.aoff, lay.noff,
                                             w.lay, X, _bits(X), Y, order, grad, w.ws, w.iw,
                                             w.Gb, w.tloss, C, T, Tred)
    return _backprop_entry[cython.double](params, lay.sizes, lay.offs, lay.kinds, lay.aoff, lay.noff,
                                          w.lay, X, _bits(X), Y, order, grad, w.ws, w.iw, w.Gb,
                                          w.tloss, C, T, Tred)


cdef double _backprop_entry(floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                            const int64_t[::1] kinds, const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
                            const floating[:, ::1] X, const uint32_t[:, ::1] Xw,
                            const floating[:, ::1] Y, const int64_t[::1] order,
                            floating[::1] grad, floating[:, ::1] ws, int32_t[:, ::1] iw,
                            floating[:, ::1] Gb, double[::1] tloss, int C, int T, int Tred):
    cdef double total
    with nogil:
        total = _backprop(P, sizes, offs, kinds, aoff, noff, lay, X, Xw, Y, order, grad, ws, iw, Gb,
                          tloss, C, T, Tred)
    return total


def backprop_samples(params, sizes, kinds, loss_kind, X, Y, grad):
    """The course's backprop: a loop over samples accumulating outer products.

    Overwrites ``grad`` with the *sum* over samples of each sample's gradient
    (no averaging, no penalty) and returns the summed loss (float64).
    """
    return _backprop_common("backprop_samples", params, sizes, kinds, loss_kind, X, Y, grad)


def backprop_batch(params, sizes, kinds, loss_kind, X, Y, grad):
    """The same result as :func:`backprop_samples`.

    This backend computes both the same way: blocks of samples, the gradient's rows each
    updated once per block, zero inputs skipped (on MNIST-like data that is fewer
    operations than dense matrix products, with the same rounding as BLAS's).
    """
    return _backprop_common("backprop_batch", params, sizes, kinds, loss_kind, X, Y, grad)


def _old_optimizer(K, optimizer):
    opt = chk.code(K, "optimizer", optimizer, chk.OPTIMIZERS)
    if opt > OPT_RMSPROP:
        raise NotImplementedError(f"{K}: optimizer {opt} ({chk.OPTIMIZERS[opt]}) is not "
                                  f"implemented by the cython backend yet; use "
                                  f"fastnet.use_backend('reference')")
    return opt


def _state_half(K, state, params):
    """The first half of ``state`` (``2 * len(params)`` entries, the contract's layout)."""
    chk.float_array(K, "state", state, ndim=1, dtype=params.dtype)
    chk.writable(K, "state", state)
    chk.shape(K, "state", state, (2 * params.shape[0],))
    return state[:params.shape[0]]


def train_epoch(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer, lr, mu,
                rho, eps, penalty_kind, lam, state, t):
    """One epoch of (mini-)batch training, updating ``params`` and ``state`` in place.

    Batches ``order[0:bs], order[bs:2bs], ...``; for each: the summed gradient
    divided by the batch's size, plus the penalty's gradient, then the
    optimiser's step (0 sgd, 1 momentum, 2 RMSprop).  Returns the summed data
    loss of the samples, each measured before its batch's update.
    """
    K = "train_epoch"
    lay = chk.Layout(K, params, sizes, kinds)
    chk.writable(K, "params", params)
    loss_kind = chk.loss_pair(K, loss_kind, lay.kinds)
    chk.data(K, lay, X, Y, dtype=params.dtype)
    chk.int_array(K, "order", order)
    if order.shape[0] and (order.min() < 0 or order.max() >= X.shape[0]):
        raise ValueError(f"{K}: order must hold row indices of X in [0, {X.shape[0]}), got "
                         f"values from {order.min()} to {order.max()}")
    bs = chk.integer(K, "batch_size", batch_size, 1)
    opt = _old_optimizer(K, optimizer)
    pen = chk.code(K, "penalty_kind", penalty_kind, chk.PENALTIES)
    lr, mu, rho, eps, lam = (chk.real(K, n, v) for n, v in
                             (("lr", lr), ("mu", mu), ("rho", rho), ("eps", eps), ("lam", lam)))
    state = _state_half(K, state, params)
    if lam == 0:
        pen = 0
    cdef int tmax = _max_threads()
    cdef int C = _chunks_for(min(bs, order.shape[0]), lay.n_params, tmax)
    cdef int T = min(C, tmax)
    cdef int Tstep = _threads_for(lay.n_params, 1, _min_elems, tmax)
    cdef _Work w = _Work(lay, loss_kind, params.dtype, T, C, 1 if bs == 1 else 0)
    segs = lay.segs()
    if params.dtype == np.float32:
        return _train_entry[cython.float](params, lay.sizes, lay.offs, lay.kinds, lay.aoff, lay.noff,
                                          w.lay, X, _bits(X), Y, order, bs, opt, lr, mu, rho,
                                          eps, pen, lam, state, w.ws, w.iw, w.Gb, w.tloss, segs,
                                          T, float(lay.n_params), Tstep)
    return _train_entry[cython.double](params, lay.sizes, lay.offs, lay.kinds, lay.aoff, lay.noff, w.lay,
                                       X, _bits(X), Y, order, bs, opt, lr, mu, rho, eps, pen,
                                       lam, state, w.ws, w.iw, w.Gb, w.tloss, segs, T,
                                       float(lay.n_params), Tstep)


cdef double _train_entry(floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                         const int64_t[::1] kinds, const int64_t[::1] aoff, const int64_t[::1] noff, Layout lay,
                         const floating[:, ::1] X, const uint32_t[:, ::1] Xw,
                         const floating[:, ::1] Y, const int64_t[::1] order, Py_ssize_t bs,
                         int opt, floating lr, floating mu, floating rho, floating eps, int pen,
                         floating lam, floating[::1] S, floating[:, ::1] ws, int32_t[:, ::1] iw,
                         floating[:, ::1] Gb, double[::1] tloss, const int64_t[:, ::1] segs,
                         int tmax, double work, int Tstep):
    cdef double total
    with nogil:
        total = _train(P, sizes, offs, kinds, aoff, noff, lay, X, Xw, Y, order, bs, opt, lr, mu, rho,
                       eps, pen, lam, S, ws, iw, Gb, tloss, segs, tmax, work, Tstep)
    return total


# ------------------------------------------------------------- penalties, optimisers
cdef double _penalty_value(const floating[::1] P, const int64_t[::1] sizes,
                           const int64_t[::1] offs, int pen) noexcept nogil:
    cdef Py_ssize_t l, i
    cdef double total = 0, w
    for l in range(sizes.shape[0] - 1):
        for i in range(offs[l] + sizes[l + 1], offs[l + 1]):
            w = P[i]
            if pen == PEN_L2:
                total += w * w
            else:
                total += w if w >= 0 else -w
    return total


def penalty_value(penalty_kind, lam, params, sizes):
    r"""The penalty of all weights (bias rows excluded), float64.

    L2: :math:`\frac{\lambda}{2}\sum w^2`; L1: :math:`\lambda\sum|w|`; none: 0.
    """
    K = "penalty_value"
    pen = chk.code(K, "penalty_kind", penalty_kind, chk.PENALTIES)
    lam = chk.real(K, "lam", lam)
    sz_, of_ = chk.network_shape(K, params, sizes)
    if pen == 0 or lam == 0:
        return 0.0
    cdef const float[::1] p32
    cdef const double[::1] p64
    cdef const int64_t[::1] sz = sz_, of = of_
    cdef double s
    cdef int pk = pen
    if params.dtype == np.float32:
        p32 = params
        with nogil:
            s = _penalty_value(p32, sz, of, pk)
    else:
        p64 = params
        with nogil:
            s = _penalty_value(p64, sz, of, pk)
    return lam / 2 * s if pen == 1 else lam * s


cdef void _penalty_grad(const floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                        int pen, floating lam, floating[::1] G) noexcept nogil:
    cdef Py_ssize_t l, i
    for l in range(sizes.shape[0] - 1):
        for i in range(offs[l] + sizes[l + 1], offs[l + 1]):
            G[i] += penalty_term(pen, lam, P[i])


def penalty_grad(penalty_kind, lam, params, sizes, grad):
    r"""``grad += d(penalty)/d(params)`` in place: :math:`\lambda w` (L2) or
    :math:`\lambda\,\mathrm{sign}(w)` (L1); bias rows get nothing."""
    K = "penalty_grad"
    pen = chk.code(K, "penalty_kind", penalty_kind, chk.PENALTIES)
    lam = chk.real(K, "lam", lam)
    sz_, of_ = chk.network_shape(K, params, sizes)
    chk.float_array(K, "grad", grad, ndim=1, dtype=params.dtype)
    chk.writable(K, "grad", grad)
    chk.shape(K, "grad", grad, params.shape)
    if pen == 0 or lam == 0:
        return
    cdef const float[::1] p32
    cdef const double[::1] p64
    cdef float[::1] g32
    cdef double[::1] g64
    cdef const int64_t[::1] sz = sz_, of = of_
    cdef int pk = pen
    cdef double lam_ = lam
    if params.dtype == np.float32:
        p32, g32 = params, grad
        with nogil:
            _penalty_grad(p32, sz, of, pk, <float>lam_, g32)
    else:
        p64, g64 = params, grad
        with nogil:
            _penalty_grad(p64, sz, of, pk, lam_, g64)


cdef void _opt_range(floating[::1] P, const floating[::1] G, floating[::1] S, Py_ssize_t lo,
                     Py_ssize_t hi, int opt, floating lr, floating mu, floating rho,
                     floating eps) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating s, g, omr = 1 - rho
    if opt == OPT_SGD:
        for i in range(lo, hi):
            P[i] -= lr * G[i]
    elif opt == OPT_MOMENTUM:
        for i in range(lo, hi):
            s = S[i] * mu
            s = s - lr * G[i]
            S[i] = s
            P[i] += s
    else:
        for i in range(lo, hi):
            g = G[i]
            s = S[i] * rho
            s = s + omr * g * g
            S[i] = s
            P[i] -= lr * g / (f_sqrt(s) + eps)


cdef void _opt(floating[::1] P, const floating[::1] G, floating[::1] S, int opt, floating lr,
               floating mu, floating rho, floating eps, int T) noexcept nogil:
    cdef Py_ssize_t n = P.shape[0], chunk
    cdef int t
    if T <= 1:
        _opt_range(P, G, S, 0, n, opt, lr, mu, rho, eps)
        return
    chunk = (n + T - 1) // T
    for t in prange(T, num_threads=T, schedule="static", chunksize=1):
        _opt_range(P, G, S, t * chunk, min(n, t * chunk + chunk), opt, lr, mu, rho, eps)


def optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps, t):
    r"""One update of ``params`` (and ``state``) in place from the gradient ``grad``.

    * 0 sgd: :math:`w \leftarrow w - \eta g`
    * 1 momentum: :math:`v \leftarrow \mu v - \eta g,\; w \leftarrow w + v`
    * 2 RMSprop: :math:`s \leftarrow \rho s + (1-\rho) g^2,\;
      w \leftarrow w - \eta g / (\sqrt{s} + \epsilon)`
    """
    K = "optimizer_step"
    opt = _old_optimizer(K, optimizer)
    chk.float_array(K, "params", params, ndim=1)
    chk.writable(K, "params", params)
    chk.float_array(K, "grad", grad, ndim=1, dtype=params.dtype)
    chk.shape(K, "grad", grad, params.shape)
    state = _state_half(K, state, params)
    lr, mu, rho, eps = (chk.real(K, n, v) for n, v in
                        (("lr", lr), ("mu", mu), ("rho", rho), ("eps", eps)))
    cdef int T = _threads_for(params.shape[0], 1, _min_elems, _max_threads())
    if params.dtype == np.float32:
        _opt_entry[cython.float](params, grad, state, opt, lr, mu, rho, eps, T)
    else:
        _opt_entry[cython.double](params, grad, state, opt, lr, mu, rho, eps, T)


cdef _opt_entry(floating[::1] P, const floating[::1] G, floating[::1] S, int opt, floating lr,
                floating mu, floating rho, floating eps, int T):
    with nogil:
        _opt(P, G, S, opt, lr, mu, rho, eps, T)
