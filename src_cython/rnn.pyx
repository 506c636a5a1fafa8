# cython: language_level=3
r"""The recurrent kernels (plain RNN and LSTM, trained by BPTT), Cython backend.

Same names, signatures and in-place conventions as :mod:`fastnet.reference.rnn`
(its docstrings define every argument).  Each ``def`` checks its arguments
once (:mod:`fastnet._rnn_checks`), allocates its buffers once, and runs the
whole computation -- for the epoch kernels every batch's gather, forward
pass, BPTT, clipping and optimiser step -- in ``nogil`` C loops.

How a layer runs
----------------
* The input projection :math:`XW + b` is one BLAS GEMM over the whole
  sequence and batch (``scipy.linalg.cython_blas``); for the language
  model's one-hot input it is a row gather :math:`W_{x_t} + b`, done at
  each step for that step's rows.
* Each step adds :math:`h_{t-1}U` for the rows still running (``_mm``,
  register tiles of 8, 6 or 4 rows by 64 bytes: AVX-512, AVX2, baseline) and applies
  the gate nonlinearities and the cell update in one vectorised pass over each row.
* BPTT runs backwards over the saved gates, writing :math:`\delta z` over
  them; :math:`\delta h_{t-1} = \delta z_t U^T` is one product per step
  (against :math:`U^T`, transposed once per batch).  The bias's gradient
  (and a one-hot input's weights') is summed inside the steps, per thread;
  the other weight gradients are one GEMM each over all the steps after
  the loop.

Threads: the rows of a batch are independent through the whole recurrence
(forward and BPTT), so the steps of each layer run as a few contiguous blocks
of rows, one per thread (``FASTNET_NUM_THREADS``, default the CPUs this
process may use), with no synchronisation from step to step -- one fork and
join per layer and direction, where threading each step's small product
would pay one per step.  BLAS runs on one thread inside each of fastnet's
(``openblas_set_num_threads_local``, see :func:`_pgemm`), and the large
GEMMs after the loop are cut into one block per thread; the elementwise
passes over whole sequences run in blocks of columns.  A row's numbers in the
recurrence do not depend on which block it is in; the whole epoch gives the
same bits for a given thread count.  Without thread-local control of BLAS
everything runs as one block, with BLAS threading the large GEMMs itself.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset
from libc.math cimport isfinite

from cython.parallel cimport prange
from _common cimport (fastnet_omp_max_threads, floating, CELL_RNN, CELL_LSTM, ACT_LINEAR, ACT_SIGMOID, ACT_RELU,
                      ACT_TANH, OPT_SGD, OPT_MOMENTUM, OPT_RMSPROP, OPT_ADAM, OPT_NESTEROV)

from fastnet import _rnn_checks as chk
from fastnet._threads import default_threads as _default_threads
from fastnet import _blas

ctypedef int (*set_threads_t)(int) noexcept nogil

cnp.import_array()

include "_rnn_math.pxi"

cdef double _LOG_CLIP = 1e-15   # fastnet.reference.losses.LOG_CLIP

#: threads for the row blocks of the recurrence (set at import from FASTNET_NUM_THREADS or
#: the CPUs this process may use, at most OpenMP's; 1 without OpenMP)
cdef int _num_threads = max(1, min(_default_threads(), fastnet_omp_max_threads()))
#: rows per block at least (the step product's register tiles: 4 to 8 rows by variant)
cdef Py_ssize_t _MIN_BLOCK_ROWS = 8


#: ``openblas_set_num_threads_local`` (0: none found; see :mod:`fastnet._blas`)
cdef size_t _setter = 0
cdef bint _setter_known = False
#: multiply-adds below which a GEMM is not cut into blocks (fork and join cost more)
cdef double _MIN_GEMM_WORK = 1e6
#: the recurrent weights' gradient's blocks (``_packed_wgrad_cols``): steps-times-rows and
#: rows of ``h_{t-1}^T`` at a time
cdef Py_ssize_t _WG_KC = 256
cdef Py_ssize_t _WG_MC = 96


cdef _find_setter():
    """Look up the BLAS thread setter once, at the first kernel call (not at import)."""
    global _setter, _setter_known
    if not _setter_known:
        _setter = _blas.setter_address()
        _setter_known = True


#: the one-hot input's projection gathered step by step in the forward pass, and BPTT's
#: bias and one-hot input-weight gradients summed inside the steps (``Parts``); False:
#: passes over the whole sequence before and after them (A/B switch, tests)
cdef bint _fused = True
#: largest recurrent block ``U`` (bytes) whose gradient's operands BPTT packs in its steps
#: (``Parts.gpk``), else a BLAS GEMM: in-process A/B, 8 to 30 interleaved rounds, AMD EPYC
#: Zen 3 (AVX2, no AVX-512): the H=128 LSTM's epoch (U 256 kB) 0.98x to 1.11x with this
#: round's in-step changes, the H=512 one (4 MB) 0.76x to 0.90x packed
cdef Py_ssize_t _PACKED_WG_MAX = 262144


def _set_fused(flag=None, packed_max=None):
    """Switch the in-step gradients on or off, and set ``_PACKED_WG_MAX`` (A/B
    measurements, tests); returns the previous on/off setting.  ``None`` leaves either."""
    global _fused, _PACKED_WG_MAX
    old = bool(_fused)
    if flag is not None:
        _fused = bool(flag)
    if packed_max is not None:
        _PACKED_WG_MAX = int(packed_max)
    return old


def _set_threads(n=None):
    """Set the threads of the recurrence's row blocks (tests, benchmarks); returns the
    previous number.  ``None`` leaves it."""
    global _num_threads
    old = _num_threads
    if n is not None:
        if int(n) < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        _num_threads = int(n)
    return old


# ------------------------------------------------------------------- the cells, one row
cdef inline void _lstm_row(floating* z, const floating* c_prev, floating* c_out,
                           floating* h_out, Py_ssize_t H) noexcept nogil:
    """Gates ``[i, f, o, g]`` of one row from its pre-activations (in place), then c and h."""
    cdef Py_ssize_t u
    cdef floating i, f, o, g, c
    if floating is float:  # in C, vectorised (_rnn_math.pxi)
        fnr_lstm_row_f32(z, z + H, z + 2 * H, z + 3 * H, c_prev, c_out, h_out, H)
    else:
        for u in range(H):
            i = _rsig(z[u])
            f = _rsig(z[H + u])
            o = _rsig(z[2 * H + u])
            g = _rtanh(z[3 * H + u])
            c = f * c_prev[u] + i * g
            z[u] = i
            z[H + u] = f
            z[2 * H + u] = o
            z[3 * H + u] = g
            c_out[u] = c
            h_out[u] = o * _rtanh(c)


cdef inline void _rnn_row(int act, const floating* z, floating* h_out, Py_ssize_t H) noexcept nogil:
    cdef Py_ssize_t u
    if act == ACT_TANH:
        for u in range(H):
            h_out[u] = _rtanh(z[u])
    elif act == ACT_SIGMOID:
        for u in range(H):
            h_out[u] = _rsig(z[u])
    elif act == ACT_RELU:
        for u in range(H):
            h_out[u] = _relu(z[u])
    else:
        for u in range(H):
            h_out[u] = z[u]


cdef inline void _lstm_row_back(floating* gs, const floating* c_prev, const floating* c_cur,
                                const floating* dh, floating* dc, Py_ssize_t H) noexcept nogil:
    """One row of the LSTM's backward step: the gates become the gradients of their
    pre-activations, ``dc`` that of :math:`c_{t-1}`."""
    cdef Py_ssize_t u
    cdef floating i, f, o, g, tc, d_h, d_c, one = 1
    if floating is float:  # in C, vectorised (_rnn_math.pxi)
        fnr_lstm_back_f32(gs, gs + H, gs + 2 * H, gs + 3 * H, c_prev, c_cur, dh, dc, H)
    else:
        for u in range(H):
            i = gs[u]
            f = gs[H + u]
            o = gs[2 * H + u]
            g = gs[3 * H + u]
            tc = _rtanh(c_cur[u])
            d_h = dh[u]
            d_c = dc[u] + d_h * o * (one - tc * tc)
            gs[u] = d_c * g * i * (one - i)
            gs[H + u] = d_c * c_prev[u] * f * (one - f)
            gs[2 * H + u] = d_h * tc * o * (one - o)
            gs[3 * H + u] = d_c * i * (one - g * g)
            dc[u] = d_c * f


cdef inline void _rnn_row_back(int act, floating* z, const floating* h, const floating* dh,
                               Py_ssize_t H) noexcept nogil:
    cdef Py_ssize_t u
    cdef floating one = 1
    if act == ACT_TANH:
        for u in range(H):
            z[u] = dh[u] * (one - h[u] * h[u])
    elif act == ACT_SIGMOID:
        for u in range(H):
            z[u] = dh[u] * (h[u] * (one - h[u]))
    elif act == ACT_RELU:
        for u in range(H):
            z[u] = _step(z[u], dh[u])
    else:
        for u in range(H):
            z[u] = dh[u]


cdef struct Parts:
    # per-block buffers for the gradients summed inside BPTT's steps (_backward_blocks):
    # b (G) float64 for the bias, t (V, G) of the kernel's float type for a one-hot input's
    # weights, one of each per thread; tok/ld/V: the one-hot input (tok NULL: none)
    # gpk (the kernel's float type; shared, each block writes its own rows): the steps'
    # pre-activation gradients as _pack's panels, (T B, G), an operand of the recurrent
    # weights' gradient written while it is in cache (the other, the states h_{t-1}, is
    # read where the forward pass saved them)
    double* b
    void* t
    const int64_t* tok
    Py_ssize_t ld, V
    void* gpk


# ---------------------------------------------------------------------- one layer, steps
cdef inline void _gather_row(const floating* w, const floating* bias, floating* z,
                             Py_ssize_t G) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(G):
        z[j] = w[j] + bias[j]


cdef void _forward_steps(int cell, int act, const floating* U, floating* HS, floating* CS,
                         floating* GS, const int64_t* lengths, Py_ssize_t T, Py_ssize_t B,
                         Py_ssize_t H, Py_ssize_t G, Py_ssize_t r0, Py_ssize_t r1,
                         const int64_t* tok, Py_ssize_t ld, const floating* W,
                         const floating* bias) noexcept nogil:
    """The recurrence of rows ``r0 <= b < r1`` over steps ``0..T-1``; ``GS[:T]`` holds the
    input projections and ``U`` is the ``(H, G)`` recurrent block packed by ``_pack``.  Each
    step's product covers the rows still running up to the last one.

    With ``tok`` (one-hot input, ``tok[b * ld + t]`` the symbol of row ``b`` at step ``t``)
    each step first writes its rows' projections ``W[tok] + bias`` into ``GS`` (while they
    are in cache, instead of a pass over the whole sequence before the loop)."""
    cdef Py_ssize_t t, b, n = r1
    cdef bint lstm = cell == CELL_LSTM
    for t in range(T):
        while n > r0 and lengths[n - 1] <= t:
            n -= 1
        if tok != NULL:
            for b in range(r0, n):
                _gather_row(W + tok[b * ld + t] * G, bias, GS + (t * B + b) * G, G)
        if n > r0:
            _mm(HS + (t * B + r0) * H, H, n - r0, H, U, G, GS + (t * B + r0) * G, G, True)
        for b in range(r0, r1):
            if b < n and lengths[b] > t:
                if lstm:
                    _lstm_row(GS + (t * B + b) * G, CS + (t * B + b) * H,
                              CS + ((t + 1) * B + b) * H, HS + ((t + 1) * B + b) * H, H)
                else:
                    _rnn_row(act, GS + (t * B + b) * G, HS + ((t + 1) * B + b) * H, H)
            else:
                memcpy(HS + ((t + 1) * B + b) * H, HS + (t * B + b) * H, H * sizeof(floating))
                if lstm:
                    memcpy(CS + ((t + 1) * B + b) * H, CS + (t * B + b) * H,
                           H * sizeof(floating))


cdef void _backward_steps(int cell, int act, const floating* UT, const floating* HS,
                          const floating* CS, floating* GS, const floating* dY, bint has_dy,
                          floating* dh, floating* dc, const int64_t* lengths, Py_ssize_t T,
                          Py_ssize_t B, Py_ssize_t H, Py_ssize_t G, floating* tmp,
                          Py_ssize_t r0, Py_ssize_t r1, double* gb, const int64_t* tok,
                          Py_ssize_t ld, floating* gW, Py_ssize_t V,
                          floating* gpk) noexcept nogil:
    """BPTT of rows ``r0 <= b < r1`` over steps ``T-1..0``: ``GS[:T]`` becomes the gradient
    of the pre-activations, ``dh``/``dc`` that of the initial state; ``UT`` is ``U``
    transposed ``(G, H)`` and packed by ``_pack``, ``tmp`` a ``(B, H)`` buffer.

    With ``gb`` (``G``, float64) these rows' gradient of the bias,
    :math:`\sum_t \delta z_t`, is summed here, step by step, while the step's rows are in
    cache; with ``tok`` too (one-hot input), that of the input weights, ``gW``
    (``(V, G)``): row ``tok`` gets :math:`\delta z_t`.  Both are overwritten (these rows'
    sums only).  With ``gpk`` these rows' pre-activation gradients are also written as
    ``_pack`` panels ``(T B, G)``: an operand of the recurrent weights' gradient, one
    product over all the steps after the loop (:func:`_packed_wgrad`), which then packs
    nothing itself.
    (Summing that gradient here, step by step in register tiles, was slower.)"""
    cdef Py_ssize_t t, b, n, u, j, p, k, KT = T * B
    cdef Py_ssize_t NB = 16 if floating is float else 8
    cdef bint lstm = cell == CELL_LSTM
    cdef const floating* dy
    cdef const floating* g
    cdef floating* gw
    cdef floating* d
    if gb != NULL:
        memset(gb, 0, G * sizeof(double))
        if tok != NULL:
            memset(gW, 0, V * G * sizeof(floating))
    for t in range(T - 1, -1, -1):
        n = r1
        while n > r0 and lengths[n - 1] <= t:
            n -= 1
        for b in range(r0, r1):
            if b < n and lengths[b] > t:
                d = dh + b * H
                if has_dy:
                    dy = dY + (t * B + b) * H
                    for u in range(H):
                        d[u] += dy[u]
                if lstm:
                    _lstm_row_back(GS + (t * B + b) * G, CS + (t * B + b) * H,
                                   CS + ((t + 1) * B + b) * H, d, dc + b * H, H)
                else:
                    _rnn_row_back(act, GS + (t * B + b) * G, HS + ((t + 1) * B + b) * H, d, H)
            else:
                memset(GS + (t * B + b) * G, 0, G * sizeof(floating))
        if gpk != NULL:
            for b in range(r0, r1):
                k = t * B + b
                g = GS + k * G
                p = 0
                while p + NB <= G:  # (a loop, not memcpy: a call per 64 bytes cost 4 %)
                    for j in range(NB):
                        gpk[p * KT + k * NB + j] = g[p + j]
                    p += NB
                if p < G:
                    for j in range(NB):
                        gpk[p * KT + k * NB + j] = g[p + j] if p + j < G else 0
        if n > r0:
            if gb != NULL:
                for b in range(r0, n):
                    g = GS + (t * B + b) * G
                    for j in range(G):
                        gb[j] += g[j]
                    if tok != NULL:
                        gw = gW + tok[b * ld + t] * G
                        for j in range(G):
                            gw[j] += g[j]
            _mm(GS + (t * B + r0) * G, G, n - r0, G, UT, H, tmp + r0 * H, H, False)
            for b in range(r0, n):
                if lengths[b] > t:
                    memcpy(dh + b * H, tmp + b * H, H * sizeof(floating))


include "_rnn_blocks.pxi"


# ------------------------------------------------------------------- clipping, optimiser
cdef double _clip(floating* g, Py_ssize_t n, double max_norm) noexcept nogil:
    cdef Py_ssize_t i
    cdef double s = 0, v, norm
    cdef floating f
    for i in range(n):
        v = g[i]
        s += v * v
    norm = sqrt(s)
    if isfinite(norm) and norm > max_norm:
        f = <floating>(max_norm / norm)
        for i in range(n):
            g[i] *= f
    return norm


cdef void _opt_step(int opt, floating* p, const floating* g, floating* state, Py_ssize_t n,
                    double lr, double mu, double rho, double eps, int64_t t) noexcept nogil:
    """The optimiser contract's step (``fastnet.reference.kernels.optimizer_step``)."""
    cdef Py_ssize_t i
    cdef floating lr_ = <floating>lr, mu_ = <floating>mu, rho_ = <floating>rho
    cdef floating eps_ = <floating>eps, one = 1, v, s, m1, m2, lr_t
    cdef double k
    if opt == OPT_SGD:
        for i in range(n):
            p[i] -= lr_ * g[i]
    elif opt == OPT_MOMENTUM or opt == OPT_NESTEROV:
        for i in range(n):
            v = state[i] * mu_ - lr_ * g[i]
            state[i] = v
            if opt == OPT_NESTEROV:
                p[i] += mu_ * v - lr_ * g[i]
            else:
                p[i] += v
    elif opt == OPT_RMSPROP:
        for i in range(n):
            s = state[i] * rho_ + (one - rho_) * g[i] * g[i]
            state[i] = s
            p[i] -= lr_ * g[i] / (<floating>sqrt(s) + eps_)
    else:
        k = <double>t + 1.0
        lr_t = <floating>(lr * sqrt(1.0 - rho ** k) / (1.0 - mu ** k))
        for i in range(n):
            m1 = state[i] * mu_ + (one - mu_) * g[i]
            m2 = state[n + i] * rho_ + (one - rho_) * g[i] * g[i]
            state[i] = m1
            state[n + i] = m2
            p[i] -= lr_t * m1 / (<floating>sqrt(m2) + eps_)


cdef double _softmax_loss(floating* Z, Py_ssize_t rows, Py_ssize_t K, const int64_t* y,
                          floating scale, const int64_t* live) noexcept nogil:
    """The rows of logits with ``live[r] > 0`` (all when ``live`` is NULL) become
    ``(p - e_y) * scale``, the others 0; returns their summed ``-log p_y``."""
    cdef Py_ssize_t r, j
    cdef floating mx, s, e
    cdef floating* z
    cdef double total = 0, p
    for r in range(rows):
        z = Z + r * K
        if live != NULL and live[r] <= 0:
            memset(z, 0, K * sizeof(floating))
            continue
        mx = z[0]
        for j in range(1, K):
            mx = z[j] if z[j] > mx else mx
        s = 0
        for j in range(K):
            e = _rexp(z[j] - mx)
            z[j] = e
            s += e
        for j in range(K):
            z[j] = z[j] / s
        p = z[y[r]]
        total -= log(p if p > _LOG_CLIP else _LOG_CLIP)
        z[y[r]] -= 1
        for j in range(K):
            z[j] *= scale
    return total


# ------------------------------------------------------------------------------ networks
cdef struct Layout:
    int cell, act
    Py_ssize_t L, B
    const int64_t* sizes     # [D, H_1, ..., H_L, K]
    const int64_t* offs      # start of each block in params (L + 2)
    const int64_t* o         # per layer: HS, CS, GS, DX, UT, DH, DC offsets in the workspace


cdef inline Py_ssize_t _gates(int cell, Py_ssize_t H) noexcept nogil:
    return 4 * H if cell == CELL_LSTM else H


def _parts(int cell, sizes, Py_ssize_t V, Py_ssize_t KT, dtype):
    """The buffers of ``Parts`` for a network of ``sizes`` (``V``: the one-hot input's
    symbols, 0 for a dense input; ``KT``: steps times rows at most): per thread the bias's
    and the one-hot weights' parts; the recurrent weight gradient's packed operand."""
    cdef Py_ssize_t nc = max(1, _num_threads)
    cdef Py_ssize_t NB = 16 if dtype == np.float32 else 8
    hs = [int(h) for h in sizes[1:len(sizes) - 1]]
    g = max(_gates(cell, h) for h in hs)
    gp = max((_gates(cell, h) + NB - 1) // NB * NB for h in hs)
    return (np.zeros(nc * g, dtype=np.float64),
            np.zeros(max(1, nc * V * _gates(cell, hs[0])), dtype=dtype),
            np.zeros(max(1, KT * gp), dtype=dtype))


cdef void _net_forward(Layout* ly, const floating* params, floating* ws, Py_ssize_t T,
                       const int64_t* lb, const int64_t* tok, Py_ssize_t ld_tok) noexcept nogil:
    """Forward through the layers; the first one's projection is already in its GS, or, with
    ``tok`` (a one-hot input), is gathered step by step."""
    cdef Py_ssize_t l, D, H, G, B = ly.B
    cdef const floating* P
    for l in range(ly.L):
        D = ly.sizes[l]
        H = ly.sizes[l + 1]
        G = _gates(ly.cell, H)
        P = params + ly.offs[l]
        if l > 0:
            _pgemm(False, False, T * B, G, D, ws + ly.o[7 * (l - 1)] + B * D, D, P + G, G, 0,
                  ws + ly.o[7 * l + 2], G)
            _bias_rows(ws + ly.o[7 * l + 2], T * B, G, P)
        _pack(P + (1 + D) * G, G, False, H, G, ws + ly.o[7 * l + 4])
        _forward_blocks(ly.cell, ly.act, ws + ly.o[7 * l + 4], ws + ly.o[7 * l],
                        ws + ly.o[7 * l + 1], ws + ly.o[7 * l + 2], lb, T, B, H, G,
                        tok if l == 0 else NULL, ld_tok, P + G, P)


cdef void _net_backward(Layout* ly, const floating* params, floating* grad, floating* ws,
                        Py_ssize_t T, const int64_t* lb,
                        const floating* dY_top, bint has_dy, floating* tmp, double* acc,
                        const int64_t* tok, Py_ssize_t ld_tok, const floating* X0,
                        Parts* pt) noexcept nogil:
    """BPTT through the layers, top down; the top layer's DH holds its final state's
    gradient.  The first layer's input is the one-hot ``tok`` (when not NULL) or ``X0``.
    With ``pt`` the biases' gradients (and a one-hot input's) are summed inside the steps
    (:func:`_backward_blocks`), not by passes over the whole sequence after them."""
    cdef Parts q
    cdef Py_ssize_t l, D, H, G, t, b, j, B = ly.B
    cdef const floating* P
    cdef floating* Gr
    cdef floating* gs
    cdef floating* gw
    cdef const floating* g
    cdef const floating* dy
    cdef bint hd
    for l in range(ly.L - 1, -1, -1):
        D = ly.sizes[l]
        H = ly.sizes[l + 1]
        G = _gates(ly.cell, H)
        P = params + ly.offs[l]
        Gr = grad + ly.offs[l]
        gs = ws + ly.o[7 * l + 2]
        if l < ly.L - 1:
            memset(ws + ly.o[7 * l + 5], 0, B * H * sizeof(floating))
            dy = ws + ly.o[7 * (l + 1) + 3]
            hd = True
        else:
            dy = dY_top
            hd = has_dy
        memset(ws + ly.o[7 * l + 6], 0, B * H * sizeof(floating))
        _pack(P + (1 + D) * G, G, True, G, H, ws + ly.o[7 * l + 4])
        if pt != NULL:
            q = pt[0]
            if l > 0 or tok == NULL:
                q.tok = NULL
            else:
                q.tok = tok
                q.ld = ld_tok
                q.V = D
            if H * G * <Py_ssize_t>sizeof(floating) > _PACKED_WG_MAX:
                q.gpk = NULL
        _backward_blocks(ly.cell, ly.act, ws + ly.o[7 * l + 4], ws + ly.o[7 * l],
                         ws + ly.o[7 * l + 1], gs, dy, hd, ws + ly.o[7 * l + 5],
                         ws + ly.o[7 * l + 6], lb, T, B, H, G, tmp,
                         &q if pt != NULL else NULL, Gr, Gr + G)
        if pt == NULL:
            _bias_grad(gs, T * B, G, Gr, acc)
        if pt == NULL or q.gpk == NULL:
            _pgemm(True, False, H, G, T * B, ws + ly.o[7 * l], H, gs, G, 0, Gr + (1 + D) * G,
                   G)
        else:
            _packed_wgrad(ws + ly.o[7 * l], <floating*>q.gpk, H, G, T * B, Gr + (1 + D) * G)
        if l > 0:
            _pgemm(True, False, D, G, T * B, ws + ly.o[7 * (l - 1)] + B * D, D, gs, G, 0, Gr + G, G)
            _pgemm(False, True, T * B, D, G, gs, G, P + G, G, 0, ws + ly.o[7 * l + 3], D)
        elif tok != NULL:  # one-hot input: the gradient's rows are scattered
            if pt == NULL:
                _scatter_tokens(tok, ld_tok, T, B, gs, G, Gr + G, D)
        else:
            _pgemm(True, False, D, G, T * B, X0, D, gs, G, 0, Gr + G, G)


def _layout(int cell, const int64_t[::1] sizes, Py_ssize_t T, Py_ssize_t B, Py_ssize_t NB):
    """The workspace offsets of a network's buffers (per layer HS, CS, GS, DX, UT -- ``U``
    packed for the forward steps, then ``U^T`` for the backward ones --, DH, DC) and the
    workspace's size."""
    cdef Py_ssize_t L = sizes.shape[0] - 2, l, H, G, pos = 0
    o = np.zeros(7 * L, dtype=np.int64)
    for l in range(L):
        H = sizes[l + 1]
        G = _gates(cell, H)
        for k, size in enumerate(((T + 1) * B * H, (T + 1) * B * H if cell == CELL_LSTM else 0,
                                  T * B * G, T * B * sizes[l] if l > 0 else 0,
                                  max(_packed_size(H, G, NB), _packed_size(G, H, NB)), B * H,
                                  B * H)):
            o[7 * l + k] = pos
            pos += size
    return o, pos


# -------------------------------------------------------------------------- the kernels
# Each public kernel checks its arguments (plain objects, so that a wrong one is named in
# the message), then calls a typed implementation over float32 or float64.

def rnn_forward(cell, act, params, X, lengths, HS, CS, GS):
    """See :func:`fastnet.reference.rnn.rnn_forward`."""
    _find_setter()
    c, a, T, B, D, H, G = chk.layer_call("rnn_forward", cell, act, params, X, lengths, HS, CS,
                                         GS)
    _forward(c, a, params, X, lengths, HS, CS if c == CELL_LSTM else HS, GS)


def _forward(int c, int a, floating[::1] params, floating[:, :, ::1] X,
             const int64_t[::1] lengths, floating[:, :, ::1] HS, floating[:, :, ::1] CS,
             floating[:, :, ::1] GS):
    cdef Py_ssize_t T = X.shape[0], B = X.shape[1], D = X.shape[2], H = HS.shape[2]
    cdef Py_ssize_t G = GS.shape[2]
    cdef Py_ssize_t NB = 16 if floating is float else 8
    cdef floating[::1] Upk = np.empty(_packed_size(H, G, NB), dtype=np.asarray(params).dtype)
    cdef floating* P = &params[0]
    with nogil:
        _pgemm(False, False, T * B, G, D, &X[0, 0, 0], D, P + G, G, 0, &GS[0, 0, 0], G)
        _bias_rows(&GS[0, 0, 0], T * B, G, P)
        _pack(P + (1 + D) * G, G, False, H, G, &Upk[0])
        _forward_blocks(c, a, &Upk[0], &HS[0, 0, 0], &CS[0, 0, 0], &GS[0, 0, 0],
                        &lengths[0], T, B, H, G, NULL, 0, NULL, NULL)


def rnn_backward(cell, act, params, X, lengths, HS, CS, GS, dY, dh, dc, grad, dX):
    """See :func:`fastnet.reference.rnn.rnn_backward`."""
    _find_setter()
    c, a, T, B, D, H, G, has_dy, need_dx = chk.backward_call(
        "rnn_backward", cell, act, params, X, lengths, HS, CS, GS, dY, dh, dc, grad, dX)
    lstm = c == CELL_LSTM
    _backward(c, a, params, X, lengths, HS, CS if lstm else HS, GS, dY if has_dy else HS,
              has_dy, dh, dc if lstm else dh, grad, dX if need_dx else X, need_dx)


def _backward(int c, int a, floating[::1] params, floating[:, :, ::1] X,
              const int64_t[::1] lengths, floating[:, :, ::1] HS, floating[:, :, ::1] CS,
              floating[:, :, ::1] GS, floating[:, :, ::1] dY, bint has_dy, floating[:, ::1] dh,
              floating[:, ::1] dc, floating[::1] grad, floating[:, :, ::1] dX, bint need_dx):
    cdef Py_ssize_t T = X.shape[0], B = X.shape[1], D = X.shape[2], H = HS.shape[2]
    cdef Py_ssize_t G = GS.shape[2]
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] tmp = np.empty(B * H, dtype=dtype)
    cdef floating[::1] UT = np.empty(_packed_size(G, H, 16 if floating is float else 8),
                                     dtype=dtype)
    cdef double[::1] acc = np.empty(G, dtype=np.float64)
    cdef floating* P = &params[0]
    cdef floating* Gr = &grad[0]
    cdef floating* gs = &GS[0, 0, 0]
    with nogil:
        _pack(P + (1 + D) * G, G, True, G, H, &UT[0])
        _backward_blocks(c, a, &UT[0], &HS[0, 0, 0], &CS[0, 0, 0], gs, &dY[0, 0, 0], has_dy,
                         &dh[0, 0], &dc[0, 0], &lengths[0], T, B, H, G, &tmp[0], NULL, NULL,
                         NULL)
        _bias_grad(gs, T * B, G, Gr, &acc[0])
        _pgemm(True, False, H, G, T * B, &HS[0, 0, 0], H, gs, G, 0, Gr + (1 + D) * G, G)
        _pgemm(True, False, D, G, T * B, &X[0, 0, 0], D, gs, G, 0, Gr + G, G)
        if need_dx:
            _pgemm(False, True, T * B, D, G, gs, G, P + G, G, 0, &dX[0, 0, 0], D)


def clip_grad_norm(grad, max_norm):
    """See :func:`fastnet.reference.rnn.clip_grad_norm`."""
    m = chk.clip_call("clip_grad_norm", grad, max_norm)
    return _clip_grad(grad, m)


def _clip_grad(floating[::1] grad, double m):
    cdef double norm = 0
    if grad.shape[0]:
        with nogil:
            norm = _clip(&grad[0], grad.shape[0], m)
    return norm


def rnn_seq_epoch(cell, act, params, sizes, X, lengths, y, order, batch_size, optimizer, lr, mu,
                  rho, eps, clip, state, t):
    """See :func:`fastnet.reference.rnn.rnn_seq_epoch`."""
    _find_setter()
    c, a, bs, opt, lr_, mu_, rho_, eps_, clip_, t0 = chk.seq_epoch_call(
        "rnn_seq_epoch", cell, act, params, sizes, X, lengths, y, order, batch_size, optimizer,
        lr, mu, rho, eps, clip, state, t)
    offs = chk.network("rnn_seq_epoch", c, params, sizes)
    return _seq_epoch(c, a, params, sizes, offs, X, lengths, y, order, bs, opt, lr_, mu_, rho_,
                      eps_, clip_, state, t0)


def _seq_epoch(int c, int a, floating[::1] params, const int64_t[::1] sv,
               const int64_t[::1] offs, floating[:, :, ::1] X, const int64_t[::1] lv,
               const int64_t[::1] yv, const int64_t[::1] ov, Py_ssize_t bs, int opt,
               double lr_, double mu_, double rho_, double eps_, double clip_,
               floating[::1] state, int64_t t0):
    sizes = np.asarray(sv)
    cdef Py_ssize_t n = X.shape[0], T = X.shape[1], D = X.shape[2], m = ov.shape[0]
    cdef Py_ssize_t L = sv.shape[0] - 2, K = sv[L + 1], Htop = sv[L]
    cdef Py_ssize_t B = min(bs, m)
    dtype = np.float32 if floating is float else np.float64
    o_a, wsize = _layout(c, sv, T, B, 16 if floating is float else 8)
    cdef const int64_t[::1] o = o_a
    cdef floating[::1] ws = np.zeros(wsize, dtype=dtype)
    cdef floating[::1] grad = np.zeros(params.shape[0], dtype=dtype)
    cdef floating[::1] Xb = np.zeros(T * B * D, dtype=dtype)
    cdef floating[::1] Z = np.zeros(B * K, dtype=dtype)
    cdef Py_ssize_t Hmax = int(np.max(sizes[1:L + 1]))
    cdef floating[::1] tmp = np.zeros(B * Hmax, dtype=dtype)
    cdef double[::1] acc = np.zeros(max(4 * Hmax, K), dtype=np.float64)
    cdef int64_t[::1] lb = np.zeros(B, dtype=np.int64)
    cdef int64_t[::1] idx = np.zeros(B, dtype=np.int64)
    cdef int64_t[::1] yb = np.zeros(B, dtype=np.int64)
    bp_a, tp_a, gk_a = _parts(c, sizes, 0, T * B, dtype)
    cdef double[::1] bpart = bp_a
    cdef floating[::1] gpk = gk_a
    cdef Parts pt
    pt.b, pt.t, pt.tok, pt.ld, pt.V = &bpart[0], NULL, NULL, 0, 0
    pt.gpk = &gpk[0]
    cdef Parts* ppt = &pt if _fused else NULL
    cdef Layout ly
    ly.cell, ly.act, ly.L, ly.B = c, a, L, B
    ly.sizes, ly.offs, ly.o = &sv[0], &offs[0], &o[0]
    cdef double total = 0
    cdef Py_ssize_t start, Bk, i, j, s, b, tt, Te, l, k = 0, G0 = _gates(c, sv[1]), P = params.shape[0]
    cdef floating* p = &params[0]
    cdef floating* w = &ws[0]
    cdef floating* ph
    cdef floating* gh
    cdef floating* hT
    with nogil:
        start = 0
        while start < m:
            Bk = min(bs, m - start)
            for i in range(Bk):  # the batch by decreasing length (stable)
                s = ov[start + i]
                j = i
                while j > 0 and lv[idx[j - 1]] < lv[s]:
                    idx[j] = idx[j - 1]
                    j -= 1
                idx[j] = s
            # the rows past the samples are padding of length 0
            memset(&lb[0], 0, B * sizeof(int64_t))
            memset(&yb[0], 0, B * sizeof(int64_t))
            memset(&Xb[0], 0, T * B * D * sizeof(floating))
            Te = 0
            for i in range(Bk):
                s = idx[i]
                b = i
                lb[b] = lv[s]
                yb[b] = yv[s]
                Te = max(Te, lb[b])
                for tt in range(T):
                    memcpy(&Xb[(tt * B + b) * D], &X[s, tt, 0], D * sizeof(floating))
            for l in range(L):
                memset(w + o[7 * l], 0, B * sv[l + 1] * sizeof(floating))
                if c == CELL_LSTM:
                    memset(w + o[7 * l + 1], 0, B * sv[l + 1] * sizeof(floating))
            _pgemm(False, False, Te * B, G0, D, &Xb[0], D, p + G0, G0, 0, w + o[2], G0)
            _bias_rows(w + o[2], Te * B, G0, p)
            _net_forward(&ly, p, w, Te, &lb[0], NULL, 0)
            # the softmax on each sequence's last state
            hT = w + o[7 * (L - 1)] + Te * B * Htop
            ph = p + offs[L]
            gh = &grad[0] + offs[L]
            _pgemm(False, False, B, K, Htop, hT, Htop, ph + K, K, 0, &Z[0], K)
            _bias_rows(&Z[0], B, K, ph)
            total += _softmax_loss(&Z[0], B, K, &yb[0], (<floating>1) / (<floating>Bk), &lb[0])
            _bias_grad(&Z[0], B, K, gh, &acc[0])
            _pgemm(True, False, Htop, K, B, hT, Htop, &Z[0], K, 0, gh + K, K)
            _pgemm(False, True, B, Htop, K, &Z[0], K, ph + K, K, 0, w + o[7 * (L - 1) + 5], Htop)
            _net_backward(&ly, p, &grad[0], w, Te, &lb[0], NULL, False, &tmp[0],
                          &acc[0], NULL, 0, &Xb[0], ppt)
            _clip(&grad[0], P, clip_)
            _opt_step(opt, p, &grad[0], &state[0], P, lr_, mu_, rho_, eps_, t0 + k)
            k += 1
            start += bs
    return total


def rnn_lm_epoch(cell, act, params, sizes, tokens, seq_len, hs, cs, optimizer, lr, mu, rho, eps,
                 clip, state, t):
    """See :func:`fastnet.reference.rnn.rnn_lm_epoch`."""
    _find_setter()
    c, a, S, opt, lr_, mu_, rho_, eps_, clip_, t0 = chk.lm_epoch_call(
        "rnn_lm_epoch", cell, act, params, sizes, tokens, seq_len, hs, cs, optimizer, lr, mu,
        rho, eps, clip, state, t)
    offs = chk.network("rnn_lm_epoch", c, params, sizes)
    return _lm_epoch(c, a, params, sizes, offs, tokens, S, hs, cs if c == CELL_LSTM else hs, opt,
                     lr_, mu_, rho_, eps_, clip_, state, t0)


def _lm_epoch(int c, int a, floating[::1] params, const int64_t[::1] sv,
              const int64_t[::1] offs, const int64_t[:, ::1] tk, Py_ssize_t S,
              floating[::1] hs, floating[::1] cs, int opt, double lr_, double mu_, double rho_,
              double eps_, double clip_, floating[::1] state, int64_t t0):
    sizes = np.asarray(sv)
    cdef Py_ssize_t B = tk.shape[0], N = tk.shape[1] - 1, ld = tk.shape[1]
    cdef Py_ssize_t L = sv.shape[0] - 2, V = sv[L + 1], Htop = sv[L]
    cdef Py_ssize_t T = min(S, N)
    dtype = np.float32 if floating is float else np.float64
    o_a, wsize = _layout(c, sv, T, B, 16 if floating is float else 8)
    cdef const int64_t[::1] o = o_a
    cdef floating[::1] ws = np.zeros(wsize, dtype=dtype)
    cdef floating[::1] grad = np.zeros(params.shape[0], dtype=dtype)
    cdef floating[::1] Z = np.zeros(T * B * V, dtype=dtype)
    cdef floating[::1] dY = np.zeros(T * B * Htop, dtype=dtype)
    cdef Py_ssize_t Hmax = int(np.max(sizes[1:L + 1]))
    cdef floating[::1] tmp = np.zeros(B * Hmax, dtype=dtype)
    cdef double[::1] acc = np.zeros(max(4 * Hmax, V), dtype=np.float64)
    cdef int64_t[::1] lb = np.zeros(B, dtype=np.int64)
    cdef int64_t[::1] ys = np.zeros(T * B, dtype=np.int64)
    bp_a, tp_a, gk_a = _parts(c, sizes, sv[0], T * B, dtype)
    cdef double[::1] bpart = bp_a
    cdef floating[::1] tpart = tp_a
    cdef floating[::1] gpk = gk_a
    cdef Parts pt
    pt.b, pt.t, pt.tok, pt.ld, pt.V = &bpart[0], &tpart[0], NULL, 0, 0
    pt.gpk = &gpk[0]
    cdef bint fused = _fused
    cdef Parts* ppt = &pt if fused else NULL
    cdef Layout ly
    ly.cell, ly.act, ly.L, ly.B = c, a, L, B
    ly.sizes, ly.offs, ly.o = &sv[0], &offs[0], &o[0]
    cdef double total = 0
    cdef Py_ssize_t start, Sk, b, tt, l, H, so, k = 0, G0 = _gates(c, sv[1]), P = params.shape[0]
    cdef floating* p = &params[0]
    cdef floating* w = &ws[0]
    cdef floating* ph
    cdef floating* gh
    cdef floating* Ht
    cdef bint lstm = c == CELL_LSTM
    with nogil:
        start = 0
        while start < N:
            Sk = min(S, N - start)
            so = 0
            for l in range(L):  # the carried state
                H = sv[l + 1]
                memcpy(w + o[7 * l], &hs[so], B * H * sizeof(floating))
                if lstm:
                    memcpy(w + o[7 * l + 1], &cs[so], B * H * sizeof(floating))
                so += B * H
            for b in range(B):
                lb[b] = Sk
            if fused:  # the one-hot projection gathered step by step
                _net_forward(&ly, p, w, Sk, &lb[0], &tk[0, start], ld)
            else:
                _project_tokens(&tk[0, start], ld, Sk, B, p + G0, p, w + o[2], G0)
                _net_forward(&ly, p, w, Sk, &lb[0], NULL, 0)
            # the softmax at every step
            Ht = w + o[7 * (L - 1)] + B * Htop
            ph = p + offs[L]
            gh = &grad[0] + offs[L]
            _pgemm(False, False, Sk * B, V, Htop, Ht, Htop, ph + V, V, 0, &Z[0], V)
            _bias_rows(&Z[0], Sk * B, V, ph)
            for tt in range(Sk):
                for b in range(B):
                    ys[tt * B + b] = tk[b, start + tt + 1]
            total += _softmax_loss(&Z[0], Sk * B, V, &ys[0], (<floating>1) / (<floating>(Sk * B)),
                                   NULL)
            _bias_grad(&Z[0], Sk * B, V, gh, &acc[0])
            _pgemm(True, False, Htop, V, Sk * B, Ht, Htop, &Z[0], V, 0, gh + V, V)
            _pgemm(False, True, Sk * B, Htop, V, &Z[0], V, ph + V, V, 0, &dY[0], Htop)
            so = 0
            for l in range(L):  # the state after the chunk, carried to the next one
                H = sv[l + 1]
                memcpy(&hs[so], w + o[7 * l] + Sk * B * H, B * H * sizeof(floating))
                if lstm:
                    memcpy(&cs[so], w + o[7 * l + 1] + Sk * B * H, B * H * sizeof(floating))
                so += B * H
            memset(w + o[7 * (L - 1) + 5], 0, B * Htop * sizeof(floating))
            _net_backward(&ly, p, &grad[0], w, Sk, &lb[0], &dY[0], True, &tmp[0],
                          &acc[0], &tk[0, start], ld, NULL, ppt)
            _clip(&grad[0], P, clip_)
            _opt_step(opt, p, &grad[0], &state[0], P, lr_, mu_, rho_, eps_, t0 + k)
            k += 1
            start += S
    return total
