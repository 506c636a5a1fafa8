# Included by rnn.pyx (private to it): the work of a layer cut into blocks, one per thread --
# the recurrence's rows in blocks (_forward_blocks, _backward_blocks), the GEMMs after the
# loop (_pgemm, the packed weight gradient), and the passes over whole sequences in blocks
# of columns (biases, their gradient, the one-hot input's rows).  See rnn.pyx's docstring,
# "Threads".


cdef inline Py_ssize_t _cut(int c, int C, Py_ssize_t n, Py_ssize_t align) noexcept nogil:
    """Start of block ``c`` of ``C`` over ``range(n)``, a multiple of ``align``."""
    cdef Py_ssize_t r
    if c >= C:
        return n
    r = ((c * n) // C + align - 1) // align * align
    return r if r < n else n


cdef void _pgemm(bint ta, bint tb, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                 const floating* A, Py_ssize_t lda, const floating* B, Py_ssize_t ldb,
                 floating beta, floating* C, Py_ssize_t ldc) noexcept nogil:
    """:func:`_gemm` on fastnet's threads: the larger of ``M`` and ``N`` cut into one block
    per thread, each block one single-threaded BLAS call.

    BLAS is asked for one thread per calling thread (``openblas_set_num_threads_local``)
    throughout, because OpenBLAS's own workers keep spinning after each call, and on the
    machine's other cores they then fight the row blocks of the recurrence for the CPU
    (measured, 2 cores: the epoch of the H=128 character LSTM took 2x longer with
    OpenBLAS's threads spinning beside fastnet's).  Without that control, or with one
    thread, BLAS threads the product as it does for numpy."""
    cdef int c, nb = _num_threads, prev = 0
    cdef Py_ssize_t lo, hi
    cdef set_threads_t fn = <set_threads_t>_setter
    if nb <= 1 or _setter == 0:
        _gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc)
        return
    if <double>M * N * K < _MIN_GEMM_WORK or (M < 16 and N < 32):
        nb = 1
    if nb == 1:
        prev = fn(1)
        _gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc)
        fn(prev if prev > 0 else 0)
        return
    if M >= N:
        for c in prange(nb, num_threads=nb, schedule="static", chunksize=1):
            prev = fn(1)
            lo = _cut(c, nb, M, 8)
            hi = _cut(c + 1, nb, M, 8)
            _gemm(ta, tb, hi - lo, N, K, A + (lo if ta else lo * lda), lda, B, ldb, beta,
                  C + lo * ldc, ldc)
            fn(prev if prev > 0 else 0)
    else:
        for c in prange(nb, num_threads=nb, schedule="static", chunksize=1):
            prev = fn(1)
            lo = _cut(c, nb, N, 16)
            hi = _cut(c + 1, nb, N, 16)
            _gemm(ta, tb, M, hi - lo, K, A, lda, B + (lo * ldb if tb else lo), ldb, beta,
                  C + lo, ldc)
            fn(prev if prev > 0 else 0)


cdef inline int _row_blocks(Py_ssize_t B) noexcept nogil:
    """Blocks of rows (one per thread) for a batch of ``B`` rows: one when BLAS's threads
    cannot be held to one per caller (their spinning would fight the blocks, see
    :func:`_pgemm`)."""
    cdef Py_ssize_t C = B // _MIN_BLOCK_ROWS
    if _setter == 0:
        return 1
    if C > _num_threads:
        C = _num_threads
    return <int>C if C > 1 else 1


cdef void _forward_blocks(int cell, int act, const floating* U, floating* HS, floating* CS,
                          floating* GS, const int64_t* lengths, Py_ssize_t T, Py_ssize_t B,
                          Py_ssize_t H, Py_ssize_t G, const int64_t* tok, Py_ssize_t ld,
                          const floating* W, const floating* bias) noexcept nogil:
    """:func:`_forward_steps` of all ``B`` rows, as :func:`_row_blocks` blocks on threads."""
    cdef int c, C = _row_blocks(B)
    if C == 1:
        _forward_steps(cell, act, U, HS, CS, GS, lengths, T, B, H, G, 0, B, tok, ld, W, bias)
        return
    for c in prange(C, num_threads=C, schedule="static", chunksize=1):
        _forward_steps(cell, act, U, HS, CS, GS, lengths, T, B, H, G,
                       _cut(c, C, B, 4), _cut(c + 1, C, B, 4), tok, ld, W, bias)


cdef void _backward_blocks(int cell, int act, const floating* UT, const floating* HS,
                           const floating* CS, floating* GS, const floating* dY, bint has_dy,
                           floating* dh, floating* dc, const int64_t* lengths, Py_ssize_t T,
                           Py_ssize_t B, Py_ssize_t H, Py_ssize_t G,
                           floating* tmp, Parts* pt, floating* gbias,
                           floating* gWin) noexcept nogil:
    """:func:`_backward_steps` of all ``B`` rows, as :func:`_row_blocks` blocks on threads.

    With ``pt`` (not NULL) the bias's gradient (and, with ``pt.tok``, the one-hot input's
    weights') is summed inside the steps, each block into its own part of ``pt``'s buffers;
    the parts are then added in block order into ``gbias`` (``G``) and ``gWin``
    (``(pt.V, G)``): the same bits for a given thread count."""
    cdef int c, C = _row_blocks(B)
    cdef double* bp = NULL
    cdef floating* tp = NULL
    cdef floating* gpk = NULL
    cdef const int64_t* tok = NULL
    cdef Py_ssize_t ld = 0, V = 0, i
    cdef double s
    if pt != NULL:
        bp = pt.b
        tok = pt.tok
        ld = pt.ld
        V = pt.V
        tp = <floating*>pt.t
        gpk = <floating*>pt.gpk
    if C == 1:
        _backward_steps(cell, act, UT, HS, CS, GS, dY, has_dy, dh, dc, lengths, T, B, H, G,
                        tmp, 0, B, bp, tok, ld, tp, V, gpk)
    else:
        for c in prange(C, num_threads=C, schedule="static", chunksize=1):
            _backward_steps(cell, act, UT, HS, CS, GS, dY, has_dy, dh, dc, lengths, T, B, H, G,
                            tmp, _cut(c, C, B, 4), _cut(c + 1, C, B, 4),
                            bp + c * G if bp != NULL else NULL, tok, ld,
                            tp + c * V * G if tok != NULL else NULL, V, gpk)
    if pt == NULL:
        return
    for i in range(G):
        s = bp[i]
        for c in range(1, C):
            s += bp[c * G + i]
        gbias[i] = <floating>s
    if tok != NULL:
        for i in range(V * G):
            gWin[i] = tp[i]
        for c in range(1, C):
            for i in range(V * G):
                gWin[i] += tp[c * V * G + i]


cdef void _packed_wgrad_cols(const floating* HS, const floating* gpk, Py_ssize_t H,
                             Py_ssize_t G, Py_ssize_t KT, floating* dU, Py_ssize_t p0,
                             Py_ssize_t p1) noexcept nogil:
    """Panels ``p0 <= p < p1`` (columns ``p NB ..``) of :func:`_packed_wgrad`, blocked as a
    GEMM is: ``_WG_KC`` steps-times-rows by ``_WG_MC`` columns of the states ``HS`` at a
    time (96 kB in float32: the L2 cache), each panel's ``_WG_KC`` rows (16 kB: the L1
    cache) against all of the block's register tiles.  (Unblocked, the H=512 LSTM's
    gradient read its operand, 6.5 MB, once per panel and took its epoch from 3.8 s to
    5.4 s.)"""
    cdef Py_ssize_t NB = 16 if floating is float else 8
    cdef Py_ssize_t k0, kn, m0, mn, p, nc
    k0 = 0
    while k0 < KT:
        kn = KT - k0 if KT - k0 < _WG_KC else _WG_KC
        m0 = 0
        while m0 < H:
            mn = H - m0 if H - m0 < _WG_MC else _WG_MC
            for p in range(p0, p1):
                nc = G - p * NB if G - p * NB < NB else NB
                _mm_tn(HS + k0 * H + m0, H, mn, kn, gpk + p * NB * KT + k0 * NB, nc,
                    dU + m0 * G + p * NB, G, k0 > 0)
            m0 += mn
        k0 += kn


cdef void _packed_wgrad(const floating* HS, const floating* gpk, Py_ssize_t H, Py_ssize_t G,
                        Py_ssize_t KT, floating* dU) noexcept nogil:
    """``dU (H, G) = HS[:KT]^T @ B``, ``HS`` the states :math:`h_{t-1}` as the forward
    pass saved them ``(KT, H)`` and ``gpk`` = ``B (KT, G)`` as ``_pack``'s panels: the
    register tiles of the recurrent steps, reading ``HS`` transposed (``_mm_tn``), the
    panels cut into one block per thread."""
    cdef Py_ssize_t NB = 16 if floating is float else 8
    cdef Py_ssize_t npan = (G + NB - 1) // NB
    cdef int c, C = _num_threads if _setter != 0 else 1
    if C > npan:
        C = <int>npan
    if C <= 1 or <double>H * G * KT < _MIN_GEMM_WORK:
        _packed_wgrad_cols(HS, gpk, H, G, KT, dU, 0, npan)
        return
    for c in prange(C, num_threads=C, schedule="static", chunksize=1):
        _packed_wgrad_cols(HS, gpk, H, G, KT, dU, _cut(c, C, npan, 1), _cut(c + 1, C, npan, 1))


cdef void _bias_rows(floating* Z, Py_ssize_t rows, Py_ssize_t G, const floating* bias) noexcept nogil:
    cdef Py_ssize_t r, j
    for r in range(rows):
        for j in range(G):
            Z[r * G + j] += bias[j]


cdef void _bias_grad_cols(const floating* Z, Py_ssize_t rows, Py_ssize_t G, floating* gb,
                          double* acc, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """``gb[j0:j1] = Z[:, j0:j1].sum(axis=0)``, summed in float64."""
    cdef Py_ssize_t r, j
    for j in range(j0, j1):
        acc[j] = 0
    for r in range(rows):
        for j in range(j0, j1):
            acc[j] += Z[r * G + j]
    for j in range(j0, j1):
        gb[j] = <floating>acc[j]


cdef inline int _col_blocks(Py_ssize_t rows, Py_ssize_t G) noexcept nogil:
    """Threads for an elementwise pass over ``rows x G`` cut into blocks of columns."""
    if _num_threads <= 1 or _setter == 0 or G < 32 or <double>rows * G < 2e5:
        return 1
    return _num_threads


cdef void _bias_grad(const floating* Z, Py_ssize_t rows, Py_ssize_t G, floating* gb,
                     double* acc) noexcept nogil:
    """``gb = Z.sum(axis=0)``, summed in float64, in blocks of columns on threads (each
    column summed in the same order whatever the thread count)."""
    cdef int c, nb = _col_blocks(rows, G)
    if nb == 1:
        _bias_grad_cols(Z, rows, G, gb, acc, 0, G)
        return
    for c in prange(nb, num_threads=nb, schedule="static", chunksize=1):
        _bias_grad_cols(Z, rows, G, gb, acc, _cut(c, nb, G, 16), _cut(c + 1, nb, G, 16))


cdef void _scatter_tokens_cols(const int64_t* tok, Py_ssize_t ld, Py_ssize_t T, Py_ssize_t B,
                               const floating* gs, Py_ssize_t G, floating* Gw,
                               Py_ssize_t D, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """Columns ``j0:j1`` of the one-hot input's weight gradient: ``Gw[v] = sum of the rows
    of gs whose token is v``."""
    cdef Py_ssize_t t, b, j, v
    cdef floating* gw
    cdef const floating* g
    for v in range(D):
        for j in range(j0, j1):
            Gw[v * G + j] = 0
    for t in range(T):
        for b in range(B):
            gw = Gw + tok[b * ld + t] * G
            g = gs + (t * B + b) * G
            for j in range(j0, j1):
                gw[j] += g[j]


cdef void _scatter_tokens(const int64_t* tok, Py_ssize_t ld, Py_ssize_t T, Py_ssize_t B,
                          const floating* gs, Py_ssize_t G, floating* Gw,
                          Py_ssize_t D) noexcept nogil:
    """:func:`_scatter_tokens_cols` of all columns, in blocks of columns on threads."""
    cdef int c, nb = _col_blocks(T * B, G)
    if nb == 1:
        _scatter_tokens_cols(tok, ld, T, B, gs, G, Gw, D, 0, G)
        return
    for c in prange(nb, num_threads=nb, schedule="static", chunksize=1):
        _scatter_tokens_cols(tok, ld, T, B, gs, G, Gw, D, _cut(c, nb, G, 16),
                             _cut(c + 1, nb, G, 16))


cdef void _project_tokens_cols(const int64_t* tok, Py_ssize_t ld, Py_ssize_t T, Py_ssize_t B,
                               const floating* W, const floating* bias, floating* Z,
                               Py_ssize_t G, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """Columns ``j0:j1`` of ``Z[t B + b] = W[tok[b, t]] + bias``."""
    cdef Py_ssize_t t, b, j
    cdef const floating* w
    cdef floating* z
    for t in range(T):
        for b in range(B):
            w = W + tok[b * ld + t] * G
            z = Z + (t * B + b) * G
            for j in range(j0, j1):
                z[j] = w[j] + bias[j]


cdef void _project_tokens(const int64_t* tok, Py_ssize_t ld, Py_ssize_t T, Py_ssize_t B,
                          const floating* W, const floating* bias, floating* Z,
                          Py_ssize_t G) noexcept nogil:
    """``Z[t B + b] = W[tok[b, t]] + bias``: a one-hot input as a row gather (in blocks of
    columns on threads)."""
    cdef int c, nb = _col_blocks(T * B, G)
    if nb == 1:
        _project_tokens_cols(tok, ld, T, B, W, bias, Z, G, 0, G)
        return
    for c in prange(nb, num_threads=nb, schedule="static", chunksize=1):
        _project_tokens_cols(tok, ld, T, B, W, bias, Z, G, _cut(c, nb, G, 16),
                             _cut(c + 1, nb, G, 16))
