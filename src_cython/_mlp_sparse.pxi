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
    # int32 workspace of one thread: offsets
    Py_ssize_t iR       # SB + 1 row pointers of the CSR
    Py_ssize_t iI       # SB x n0 input index of each CSR entry


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


cdef void _layer0_activate(const floating[::1] P, const int64_t[::1] sizes,
                           const int64_t[::1] offs, const int64_t[::1] kinds, Layout lay,
                           floating[::1] ws, Py_ssize_t s) noexcept nogil:
    """Layer 0's bias and activation for block sample ``s`` (after its sums)."""
    cdef Py_ssize_t k, n = sizes[1], base = lay.wA + s * lay.SA
    for k in range(n):
        ws[base + k] += P[offs[0] + k]
    activate_inplace(<int>kinds[0], ws, base, n)


cdef void _block_upper(const floating[::1] P, const int64_t[::1] sizes,
                       const int64_t[::1] offs, const int64_t[::1] kinds,
                       const int64_t[::1] aoff, Layout lay, floating[::1] ws,
                       Py_ssize_t nb) noexcept nogil:
    """Layers 1 .. L-1 of the block's ``nb`` samples (layer 0's activations done): one GEMM
    per layer over the block's activation slots (rows ``SA`` apart), then each sample's bias
    and activation.  The layers above the first are dense (hidden activations are seldom
    exactly zero): done sample by sample they read every weight matrix once per sample;
    as one product, once per block (784-256-128-10 at batch 32 on raw MNIST, AVX2 Zen 3:
    an epoch 185 ms -> 164 ms in one run, where numba's panels took 116 ms and 157 ms)."""
    cdef Py_ssize_t l, k, s, n_in, n_out, a_out, SA = lay.SA
    for l in range(1, lay.L):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        gemm_rm(c'N', c'N', <int>nb, <int>n_out, <int>n_in, 1, &ws[lay.wA + aoff[l - 1]],
                <int>SA, &P[offs[l] + n_out], <int>n_out, 0, &ws[lay.wA + aoff[l]], <int>SA)
        for s in range(nb):
            a_out = lay.wA + s * SA + aoff[l]
            for k in range(n_out):
                ws[a_out + k] += P[offs[l] + k]
            activate_inplace(<int>kinds[l], ws, a_out, n_out)


cdef void _block_backdeltas(const floating[::1] P, const int64_t[::1] sizes,
                            const int64_t[::1] offs, const int64_t[::1] kinds,
                            const int64_t[::1] aoff, Layout lay, floating[::1] ws,
                            Py_ssize_t nb) noexcept nogil:
    """The error terms of layers L-2 .. 0 of the block's samples from those of the output
    (:func:`_deltas` with ``below=False``): :math:`\delta^{(l-1)} = (\delta^{(l)}
    W_l[1:]^T) \odot f'(a^{(l-1)})`, one GEMM per layer over the block."""
    cdef Py_ssize_t l, s, n_in, n_out, SA = lay.SA
    for l in range(lay.L - 1, 0, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        gemm_rm(c'N', c'T', <int>nb, <int>n_in, <int>n_out, 1, &ws[lay.wD + aoff[l]],
                <int>SA, &P[offs[l] + n_out], <int>n_out, 0, &ws[lay.wD + aoff[l - 1]],
                <int>SA)
        for s in range(nb):
            mul_df(<int>kinds[l - 1], &ws[lay.wD + s * SA + aoff[l - 1]],
                   &ws[lay.wA + s * SA + aoff[l - 1]], n_in)


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
    if not below:       # (the layers below are done by _block_backdeltas)
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



# ------------------------------------------------------------------ sample ranges
cdef double _accumulate(
        floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
        const int64_t[::1] kinds, const int64_t[::1] aoff, Layout lay,
        const floating[:, ::1] X, const uint32_t[:, ::1] Xw, const floating[:, ::1] Y,
        const int64_t[::1] order, Py_ssize_t lo, Py_ssize_t hi, floating[::1] ws,
        int32_t[::1] iw, floating[::1] G) noexcept nogil:
    """Add the gradients of samples ``order[lo:hi]`` into ``G``, a block of ``SB`` samples at
    a time; return their summed loss."""
    cdef Py_ssize_t r0, nb, s
    cdef double total = 0
    r0 = lo
    while r0 < hi:
        nb = min(lay.SB, hi - r0)
        iw[lay.iR] = 0
        for s in range(nb):
            if r0 + s + 1 < hi:
                prefetch_row(X, order[r0 + s + 1])
            _gather_sample(X, Xw, order[r0 + s], lay, ws, iw, s)
            _layer0_sample(P, sizes, offs, lay, ws, iw, s)
            _layer0_activate(P, sizes, offs, kinds, lay, ws, s)
        _block_upper(P, sizes, offs, kinds, aoff, lay, ws, nb)
        for s in range(nb):
            total += _deltas(P, sizes, offs, kinds, aoff, lay, Y, order[r0 + s], ws, s, False)
        _block_backdeltas(P, sizes, offs, kinds, aoff, lay, ws, nb)
        for s in range(nb):
            _grad_layer0(sizes, offs, lay, ws, iw, s, G)
        _grad_block(sizes, offs, aoff, lay, nb, ws, iw, G)
        r0 += nb
    return total


cdef double _accumulate_chunks(
        floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
        const int64_t[::1] kinds, const int64_t[::1] aoff, Layout lay,
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
        return _accumulate(P, sizes, offs, kinds, aoff, lay, X, Xw, Y, order, start,
                           start + b, ws[0], iw[0], Gb[0])
    if parallel and T > 1:
        for c in prange(C, num_threads=T, schedule="dynamic", chunksize=1):
            tid = threadid()
            tloss[c] = _accumulate(P, sizes, offs, kinds, aoff, lay, X, Xw, Y, order,
                                   start + (b * c) // C, start + (b * (c + 1)) // C,
                                   ws[tid], iw[tid], Gb[c])
    else:
        for c in range(C):
            tloss[c] = _accumulate(P, sizes, offs, kinds, aoff, lay, X, Xw, Y, order,
                                   start + (b * c) // C, start + (b * (c + 1)) // C,
                                   ws[0], iw[0], Gb[c])
    for c in range(C):
        total += tloss[c]
    return total



# --------------------------------------------------------------------- the drivers
cdef void _forward_range(
        const floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
        const int64_t[::1] kinds, const int64_t[::1] aoff, Layout lay,
        const floating[:, ::1] X, const uint32_t[:, ::1] Xw, const int64_t[::1] order,
        floating[:, ::1] out, Py_ssize_t lo, Py_ssize_t hi, floating[::1] ws,
        int32_t[::1] iw) noexcept nogil:
    """Outputs of samples ``order[lo:hi]`` into those rows of ``out``."""
    cdef Py_ssize_t r, k, s, q, K = sizes[lay.L], A = lay.wA + aoff[lay.L - 1]
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
                   const int64_t[::1] kinds, const int64_t[::1] aoff, Layout lay,
                   const floating[:, ::1] X, const uint32_t[:, ::1] Xw,
                   const int64_t[::1] order, floating[:, ::1] out, floating[:, ::1] ws,
                   int32_t[:, ::1] iw, int C, int T) noexcept nogil:
    """All outputs; ``C`` chunks of rows handed out to ``T`` threads as they come free."""
    cdef Py_ssize_t m = X.shape[0]
    cdef int c, tid
    if C <= 1 or T <= 1:
        _forward_range(P, sizes, offs, kinds, aoff, lay, X, Xw, order, out, 0, m, ws[0], iw[0])
        return
    for c in prange(C, num_threads=T, schedule="dynamic", chunksize=1):
        tid = threadid()
        _forward_range(P, sizes, offs, kinds, aoff, lay, X, Xw, order, out, (m * c) // C,
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
                      const int64_t[::1] kinds, const int64_t[::1] aoff, Layout lay,
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
        return _accumulate(P, sizes, offs, kinds, aoff, lay, X, Xw, Y, order, 0, m, ws[0],
                           iw[0], grad)
    total = _accumulate_chunks(P, sizes, offs, kinds, aoff, lay, X, Xw, Y, order, 0, m, ws,
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
                   const int64_t[::1] kinds, const int64_t[::1] aoff, Layout lay,
                   const floating[:, ::1] X, const uint32_t[:, ::1] Xw,
                   const floating[:, ::1] Y, const int64_t[::1] order, Py_ssize_t bs, int opt,
                   floating lr, floating mu, floating rho, floating eps, int pen, floating lam,
                   floating[::1] S, floating[:, ::1] ws, int32_t[:, ::1] iw,
                   floating[:, ::1] Gb, double[::1] tloss, const int64_t[:, ::1] segs,
                   int tmax, double work, int Tstep, double lr_d, double mu_d, double rho_d,
                   Py_ssize_t step0) noexcept nogil:
    cdef Py_ssize_t m = order.shape[0], start = 0, b, step = step0
    cdef floating lr_t = lr
    cdef bint direct = bs == 1 and opt == OPT_SGD and pen == PEN_NONE
    cdef double total = 0
    cdef int T
    cdef floating[::1] ws0 = ws[0]
    cdef int32_t[::1] iw0 = iw[0]
    if direct:
        # online SGD: each sample's step in place, on the rows it touches
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
    cdef bint par, big
    cdef int C
    cdef double t0
    while start < m:
        b = min(bs, m - start)
        C = _chunks_for(b, work, tmax)          # decided by the sizes only
        T = min(C, tmax)
        # The chunks run on T threads or all on this one: the same numbers either way.
        # Big batches always use the threads.  For small ones a fork/join costs a
        # scheduler time slice whenever the cores are busy with other processes, so the
        # choice is measured (small_batch_threads_begin/end: eight batches each way, their
        # medians), and re-measured every _ADAPT_PERIOD s.  (It was one batch each way.)
        big = b * work >= _big_work
        par = C > 1
        if C > 1 and not big:
            par = small_batch_threads_begin(b * work)
        t0 = fastnet_wtime()
        total += _accumulate_chunks(P, sizes, offs, kinds, aoff, lay, X, Xw, Y, order, start,
                                    b, ws, iw, Gb, tloss, C, T, par)
        if opt == OPT_ADAM:
            lr_t = <floating>adam_lr(lr_d, mu_d, rho_d, <double>step)
        step_chunks(P, S, Gb, C, segs, <floating>b, opt, lr, mu, rho, eps, lr_t, pen, lam,
                    Tstep if par else 1, True)
        step += 1
        if C > 1 and not big:
            small_batch_threads_end(fastnet_wtime() - t0, b * work)
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
        self.lay.L = lay.L
        self.lay.n0 = n0
        self.lay.SA = SA
        self.lay.SB = SB
        self.lay.loss_kind = loss_kind
        self.lay.wA = 0
        self.lay.wD = SB * SA
        self.lay.wV = 2 * SB * SA
        nf = self.lay.wV + SB * n0
        self.lay.iR = 0
        self.lay.iI = SB + 1
        ni = self.lay.iI + SB * n0
        nf += 16                             # whole-vector loads past the last slot's end
        # rows of each thread start on separate cache lines
        self.ws = np.zeros((T, (nf + 15) // 16 * 16), dtype=dtype)
        self.iw = np.zeros((T, (ni + 15) // 16 * 16), dtype=np.int32)
        self.Gb = np.zeros((max(C, 1), lay.n_params if C else 1), dtype=dtype)
        self.tloss = np.zeros(max(C, 1), dtype=np.float64)


def _bits(X):
    """The raw bits of ``X`` as uint32 words (2 per float64): zero blocks are found on them."""
    return X.view(np.uint32)



cdef _forward_entry(const floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                    const int64_t[::1] kinds, const int64_t[::1] aoff, Layout lay,
                    const floating[:, ::1] X, const uint32_t[:, ::1] Xw,
                    const int64_t[::1] order, floating[:, ::1] out, floating[:, ::1] ws,
                    int32_t[:, ::1] iw, int C, int T):
    with nogil:
        _forward(P, sizes, offs, kinds, aoff, lay, X, Xw, order, out, ws, iw, C, T)



cdef double _backprop_entry(floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                            const int64_t[::1] kinds, const int64_t[::1] aoff, Layout lay,
                            const floating[:, ::1] X, const uint32_t[:, ::1] Xw,
                            const floating[:, ::1] Y, const int64_t[::1] order,
                            floating[::1] grad, floating[:, ::1] ws, int32_t[:, ::1] iw,
                            floating[:, ::1] Gb, double[::1] tloss, int C, int T, int Tred):
    cdef double total
    with nogil:
        total = _backprop(P, sizes, offs, kinds, aoff, lay, X, Xw, Y, order, grad, ws, iw, Gb,
                          tloss, C, T, Tred)
    return total



cdef double _train_entry(floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                         const int64_t[::1] kinds, const int64_t[::1] aoff, Layout lay,
                         const floating[:, ::1] X, const uint32_t[:, ::1] Xw,
                         const floating[:, ::1] Y, const int64_t[::1] order, Py_ssize_t bs,
                         int opt, floating lr, floating mu, floating rho, floating eps, int pen,
                         floating lam, floating[::1] S, floating[:, ::1] ws, int32_t[:, ::1] iw,
                         floating[:, ::1] Gb, double[::1] tloss, const int64_t[:, ::1] segs,
                         int tmax, double work, int Tstep, double lr_d, double mu_d,
                         double rho_d, Py_ssize_t t0):
    cdef double total
    with nogil:
        total = _train(P, sizes, offs, kinds, aoff, lay, X, Xw, Y, order, bs, opt, lr, mu, rho,
                       eps, pen, lam, S, ws, iw, Gb, tloss, segs, tmax, work, Tstep, lr_d,
                       mu_d, rho_d, t0)
    return total




# -------------------------------------------------------- the sparse path's entry points
# (called by the def wrappers of mlp.pyx once the arguments are checked)
def _sparse_forward(lay, params, X, out):
    cdef int tmax = _max_threads()
    cdef int C = _chunks_for(X.shape[0], lay.n_params / 2, tmax)   # forward: half the work
    cdef int T = min(C, tmax)
    cdef _Work w = _Work(lay, 0, params.dtype, T, 0)
    order = np.arange(X.shape[0], dtype=np.int64)
    if params.dtype == np.float32:
        _forward_entry[cython.float](params, lay.sizes, lay.offs, lay.kinds, lay.aoff, w.lay,
                                     X, _bits(X), order, out, w.ws, w.iw, C, T)
    else:
        _forward_entry[cython.double](params, lay.sizes, lay.offs, lay.kinds, lay.aoff, w.lay,
                                      X, _bits(X), order, out, w.ws, w.iw, C, T)


def _sparse_backprop(lay, int loss_kind, params, X, Y, grad):
    m = X.shape[0]
    cdef int tmax = _max_threads()
    cdef int C = _chunks_for(m, lay.n_params, tmax)
    cdef int T = min(C, tmax)
    cdef int Tred = _threads_for(lay.n_params, C, _min_elems, tmax) if C > 1 else 1
    cdef _Work w = _Work(lay, loss_kind, params.dtype, T, C if C > 1 else 0)
    order = np.arange(m, dtype=np.int64)
    cdef bint one = _blas_enter(True)
    try:
        if params.dtype == np.float32:
            return _backprop_entry[cython.float](params, lay.sizes, lay.offs, lay.kinds,
                                                 lay.aoff, w.lay, X, _bits(X), Y, order, grad,
                                                 w.ws, w.iw, w.Gb, w.tloss, C, T, Tred)
        return _backprop_entry[cython.double](params, lay.sizes, lay.offs, lay.kinds, lay.aoff,
                                              w.lay, X, _bits(X), Y, order, grad, w.ws, w.iw,
                                              w.Gb, w.tloss, C, T, Tred)
    finally:
        _blas_exit(one)


def _sparse_train(lay, int loss_kind, params, X, Y, order, Py_ssize_t bs, int opt, double lr,
                  double mu, double rho, double eps, int pen, double lam, state, Py_ssize_t t):
    cdef int tmax = _max_threads()
    cdef int C = _chunks_for(min(bs, order.shape[0]), lay.n_params, tmax)
    cdef int T = min(C, tmax)
    cdef int Tstep = _threads_for(lay.n_params, 1, _min_elems, tmax)
    cdef _Work w = _Work(lay, loss_kind, params.dtype, T, C, 1 if bs == 1 else 0)
    segs = lay.segs()
    cdef bint one = _blas_enter(True)     # the upper layers' GEMMs run inside the chunks
    try:
        if params.dtype == np.float32:
            return _train_entry[cython.float](params, lay.sizes, lay.offs, lay.kinds, lay.aoff,
                                              w.lay, X, _bits(X), Y, order, bs, opt, lr, mu,
                                              rho, eps, pen, lam, state, w.ws, w.iw, w.Gb,
                                              w.tloss, segs, T, float(lay.n_params), Tstep, lr,
                                              mu, rho, t)
        return _train_entry[cython.double](params, lay.sizes, lay.offs, lay.kinds, lay.aoff,
                                           w.lay, X, _bits(X), Y, order, bs, opt, lr, mu, rho,
                                           eps, pen, lam, state, w.ws, w.iw, w.Gb, w.tloss,
                                           segs, T, float(lay.n_params), Tstep, lr, mu, rho, t)
    finally:
        _blas_exit(one)
