# Included by mlp.pyx: the dense path -- whole (mini-)batches through BLAS.
#
# A batch of b samples goes through each layer as one GEMM per direction
# (scipy.linalg.cython_blas sgemm/dgemm, the BLAS numpy uses too):
#
#   forward   Z_l = A_l W_l[1:]                     then  A_{l+1} = f(Z_l + W_l[0])
#   gradient  G_l[1:] = A_l^T D_{l+1}                     G_l[0] = sum_i D_{l+1}[i]
#   below     D_l = (D_{l+1} W_l[1:]^T)              then  D_l *= f'(A_l)
#
# each GEMM followed by one fused elementwise pass (the "epilogue": bias + activation;
# output loss + error term; the derivative from the activation's value).  Row-major
# matrices are handed to the column-major BLAS with the operands swapped
# (C = A B  <=>  C^T = B^T A^T), as numpy does.  The rows of a shuffled batch are
# gathered once per batch into a buffer; a batch whose rows are a contiguous range of X
# (in any order: a sum over samples does not care) is used in place.  A batch larger
# than the work buffers is done in blocks of rows, the gradients added up (beta = 1).
# Then one fused pass over the parameters: the optimiser's step with the penalty
# (step_chunks, which also adds up the chunks' gradients).  Work buffers: reused from call
# to call (_buffer), never allocated per batch; the whole epoch runs without the GIL.

# ----------------------------------------------------------------------- BLAS
cdef inline void gemm_rm(char ta, char tb, int m, int n, int k, floating alpha,
                         const floating* A, int lda, const floating* B, int ldb,
                         floating beta, floating* C, int ldc) noexcept nogil:
    """Row-major ``C (m x n) = alpha op(A) op(B) + beta C``: the column-major BLAS call
    ``C^T = op(B)^T op(A)^T`` (``'N'``: as stored, ``'T'``: transposed)."""
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>B, &ldb, <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>B, &ldb, <double*>A, &lda, &beta, C, &ldc)


# ------------------------------------------------------------------ epilogues
cdef inline void softmax_row(floating* v, Py_ssize_t n) noexcept nogil:
    r"""``v = exp(v - max v) / sum exp(v - max v)`` in place."""
    cdef Py_ssize_t k
    cdef floating mx = v[0], s = 0
    for k in range(1, n):
        if v[k] > mx:
            mx = v[k]
    for k in range(n):
        v[k] = exp_nonpos(v[k] - mx)
    for k in range(n):
        s += v[k]
    for k in range(n):
        v[k] = v[k] / s


cdef void bias_act(int kind, floating* Z, const floating* bias, Py_ssize_t b,
                   Py_ssize_t n) noexcept nogil:
    """``Z[i, k] = f(Z[i, k] + bias[k])`` for the ``b`` rows of ``Z`` (``b x n``): the
    forward epilogue, one pass (vectorised: the activations are branch-free)."""
    cdef Py_ssize_t i, k
    cdef floating* z
    cdef floating v
    for i in range(b):
        z = Z + i * n
        if kind == ACT_SIGMOID:
            for k in range(n):
                z[k] = sigmoid(z[k] + bias[k])
        elif kind == ACT_TANH:
            for k in range(n):
                z[k] = f_tanh(z[k] + bias[k])
        elif kind == ACT_RELU:
            for k in range(n):
                v = z[k] + bias[k]
                z[k] = 0 if v < 0 else v         # NaN propagates, as with np.maximum
        else:
            for k in range(n):
                z[k] = z[k] + bias[k]
            if kind == ACT_SOFTMAX:
                softmax_row(z, n)


cdef void mul_df(int kind, floating* D, const floating* A, Py_ssize_t n) noexcept nogil:
    """``D *= f'(z)`` with the derivative taken from the activation's value ``A = f(z)``
    (:func:`act_df_from_a`); ``n`` entries."""
    cdef Py_ssize_t i
    if kind == ACT_SIGMOID:
        for i in range(n):
            D[i] = D[i] * act_df_from_a(ACT_SIGMOID, A[i])
    elif kind == ACT_TANH:
        for i in range(n):
            D[i] = D[i] * act_df_from_a(ACT_TANH, A[i])
    elif kind == ACT_RELU:
        for i in range(n):
            D[i] = D[i] * act_df_from_a(ACT_RELU, A[i])


cdef double output_delta(int kind, int lk, const floating* A, floating* D, Py_ssize_t b,
                         Py_ssize_t K, const floating* Y, const int64_t* idx,
                         Py_ssize_t lo) noexcept nogil:
    r"""The output epilogue: the summed loss (float64) of ``b`` samples and their error
    terms ``D`` (``b x K``): :math:`a - y` (sigmoid + cross-entropy, softmax + log-loss),
    else :math:`\ell'(a) f'(z)`.  Sample ``i``'s labels are row ``idx[i]`` of ``Y``
    (``idx`` NULL: row ``lo + i``)."""
    cdef Py_ssize_t i, k
    cdef const floating* a
    cdef const floating* y
    cdef floating* d
    cdef double total = 0
    cdef bint simple = fused_output(kind, lk)
    for i in range(b):
        a = A + i * K
        d = D + i * K
        y = Y + (idx[i] if idx != NULL else lo + i) * K
        for k in range(K):
            total += loss_term(lk, a[k], y[k])
        if simple:
            for k in range(K):
                d[k] = a[k] - y[k]
        else:
            for k in range(K):
                d[k] = loss_grad(lk, a[k], y[k]) * act_df_from_a(kind, a[k])
    return total


# ------------------------------------------------------------------ one block of rows
# A block's GEMMs can be cut into S parts on S threads (a small batch, see dense_train):
# every product of a layer by rows of W_l: the forward one into partial sums of Z_l (added
# up in part order, with the bias and activation: sum_bias_act), the backward one into G_l's
# rows and the columns of D_{l-1}; then the step by the same rows (step_parts, or the fused
# SGD step).  Part s runs on thread s, so each thread reads and changes the same rows of each
# W_l all through a batch, in its own core's cache, and no gradient buffers are added up.
# (Cutting the forward product by columns of W_l instead, while the backward one and the step
# went by rows, half of each thread's weights had last been written by the other core, at
# every batch.  Measured on Intel Xeon (AVX-512, 2 cores), standardised MNIST, batch 32, SGD,
# in alternating processes, epochs before -> after: 784-256-128-10 78 -> 55 ms, 784-128-10
# 36 -> 25 ms, 784-50-10 16.4 -> 12.9 ms; numba's parts kernel 88 -> 60, 42 -> 28,
# 21.6 -> 14.8 ms.  784-256-128-10 with momentum 108 -> 73 ms, Adam 100 -> 89 ms.  In a C
# loop on scipy's OpenBLAS, 32 x 784 x 256 in two parts on two threads: 105 us forward and
# 85 us weight gradient (into W) a batch cut the old way, 82 and 50 us by rows.)  The parts are fixed by S and the
# shapes (never by how they run), each part's epilogue fused to it.

cdef inline Py_ssize_t part_at(Py_ssize_t n, int s, int S) noexcept nogil:
    """Where part ``s`` of ``S`` of ``0 .. n`` starts (``s = S``: ``n``), on a multiple of 16
    (a cache line of float32) when ``n`` allows it."""
    cdef Py_ssize_t q
    if s >= S:
        return n
    q = (n * s) // S
    q = (q + 8) // 16 * 16
    return q if q < n else n


cdef inline int parts_for(int S, Py_ssize_t b, Py_ssize_t n_in, Py_ssize_t n_out,
                          Py_ssize_t n_cut) noexcept nogil:
    """The parts a layer's GEMM (``b x n_in`` by ``n_in x n_out``) is cut into, along
    ``n_cut`` of its dimensions: ``S``, unless each part would get under
    ``_split_min_gemm`` multiply-adds or 16 columns."""
    if S <= 1 or n_cut < 32 or <double>b * n_in * n_out < S * _split_min_gemm:
        return 1
    return S


cdef void forward_part(const floating* P, const int64_t[::1] sizes, const int64_t[::1] offs,
                       const int64_t[::1] kinds, Py_ssize_t l, const floating* Ain,
                       Py_ssize_t ldin, Py_ssize_t b, floating* Z, floating* Zp, int s,
                       int parts) noexcept nogil:
    """Part ``s`` of ``parts`` of layer ``l``'s forward product.  Whole (``parts == 1``):
    ``Z = f(A W_l[1:] + W_l[0])`` (softmax: the activation is left to the caller).  Cut:
    rows ``r0 .. r1`` of ``W_l[1:]`` (the rows the part's backward GEMMs read and change),
    ``Zp[s] = A[:, r0:r1] W_l[1 + r0 : 1 + r1]``, the partial sums that
    :func:`sum_bias_act` adds up."""
    cdef Py_ssize_t n_in = sizes[l], n_out = sizes[l + 1]
    cdef Py_ssize_t r0, r1
    if parts == 1:
        gemm_rm(c'N', c'N', <int>b, <int>n_out, <int>n_in, 1, Ain, <int>ldin,
                P + offs[l] + n_out, <int>n_out, 0, Z, <int>n_out)
        if kinds[l] != ACT_SOFTMAX:
            bias_act(<int>kinds[l], Z, P + offs[l], b, n_out)
        return
    r0 = part_at(n_in, s, parts)
    r1 = part_at(n_in, s + 1, parts)
    if r1 <= r0:                                 # an empty part (16-row cuts): adds nothing
        memset(Zp + s * b * n_out, 0, b * n_out * sizeof(floating))
        return
    gemm_rm(c'N', c'N', <int>b, <int>n_out, <int>(r1 - r0), 1, Ain + r0, <int>ldin,
            P + offs[l] + n_out + r0 * n_out, <int>n_out, 0, Zp + s * b * n_out, <int>n_out)


cdef void sum_bias_act(int kind, floating* Z, const floating* Zp, int parts,
                       const floating* bias, Py_ssize_t b, Py_ssize_t n) noexcept nogil:
    """``Z = f(Zp[0] + Zp[1] + ... + bias)``, the parts added in order (softmax: the bias
    and the activation are left to the caller)."""
    cdef Py_ssize_t i, m = b * n
    cdef int s
    for i in range(m):
        Z[i] = Zp[i]
    for s in range(1, parts):
        for i in range(m):
            Z[i] = Z[i] + Zp[s * m + i]
    if kind != ACT_SOFTMAX:
        bias_act(kind, Z, bias, b, n)


cdef void backward_part(const floating* P, floating* gb, const int64_t[::1] sizes,
                        const int64_t[::1] offs, const int64_t[::1] kinds, Py_ssize_t l,
                        const floating* Ain, Py_ssize_t ldin, Py_ssize_t b, const floating* D,
                        floating* Dlow, const floating* Alow, floating beta, int s,
                        int parts, floating* Wupd, floating alpha) noexcept nogil:
    """Rows ``r0 .. r1`` (part ``s`` of ``parts``) of ``W_l[1:]``: below the first layer
    (``Dlow`` not NULL), the error terms ``D_{l-1}[:, r0:r1] = (D W_l[1 + r0 : 1 + r1]^T) *
    f'(A)``; then their gradient ``G_l[1 + r0 : 1 + r1] (+)= A[:, r0:r1]^T D``, or, with
    ``Wupd`` (the weights, fused SGD step), ``W_l[1 + r0 : 1 + r1] = beta W + alpha A^T D``
    (after the error terms below have read the old weights)."""
    cdef Py_ssize_t n_in = sizes[l], n_out = sizes[l + 1], i
    cdef Py_ssize_t r0 = part_at(n_in, s, parts), r1 = part_at(n_in, s + 1, parts)
    if r1 <= r0:
        return
    if Dlow != NULL:
        gemm_rm(c'N', c'T', <int>b, <int>(r1 - r0), <int>n_out, 1, D, <int>n_out,
                P + offs[l] + n_out + r0 * n_out, <int>n_out, 0, Dlow + r0, <int>n_in)
        if parts == 1:
            mul_df(<int>kinds[l - 1], Dlow, Alow, b * n_in)
        else:
            for i in range(b):
                mul_df(<int>kinds[l - 1], Dlow + i * n_in + r0, Alow + i * n_in + r0, r1 - r0)
    if Wupd != NULL:
        gemm_rm(c'T', c'N', <int>(r1 - r0), <int>n_out, <int>b, alpha, Ain + r0, <int>ldin, D,
                <int>n_out, beta, Wupd + offs[l] + n_out + r0 * n_out, <int>n_out)
    else:
        gemm_rm(c'T', c'N', <int>(r1 - r0), <int>n_out, <int>b, 1, Ain + r0, <int>ldin, D,
                <int>n_out, beta, gb + n_out + r0 * n_out, <int>n_out)


cdef void dense_forward(const floating* P, const int64_t[::1] sizes, const int64_t[::1] offs,
                        const int64_t[::1] kinds, const floating* X0, Py_ssize_t ldx,
                        Py_ssize_t b, floating* ws, const int64_t[::1] act,
                        floating* last, int S, bint par, floating* Zp) noexcept nogil:
    """Activations of the ``b`` rows ``X0`` (row stride ``ldx``): layer ``l``'s output to
    ``ws + act[l]`` (``b x n_{l+1}``), the last layer's to ``last`` when not NULL; each GEMM
    in up to ``S`` parts (on threads with ``par``), their partial sums in ``Zp``
    (``S x b x n_{l+1}`` entries; NULL when ``S`` is 1)."""
    cdef Py_ssize_t l, L = sizes.shape[0] - 1, n_in, n_out, ldin
    cdef const floating* Ain
    cdef floating* Z
    cdef int s, parts
    for l in range(L):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        Ain = X0 if l == 0 else ws + act[l - 1]
        ldin = ldx if l == 0 else n_in
        Z = last if (l == L - 1 and last != NULL) else ws + act[l]
        parts = parts_for(S, b, n_in, n_out, n_in)
        if parts > 1 and par:
            for s in prange(parts, num_threads=parts, schedule="static", chunksize=1):
                forward_part(P, sizes, offs, kinds, l, Ain, ldin, b, Z, Zp, s, parts)
        else:
            for s in range(parts):
                forward_part(P, sizes, offs, kinds, l, Ain, ldin, b, Z, Zp, s, parts)
        if parts > 1:
            sum_bias_act(<int>kinds[l], Z, Zp, parts, P + offs[l], b, n_out)
        if kinds[l] == ACT_SOFTMAX:
            bias_act(ACT_SOFTMAX, Z, P + offs[l], b, n_out)


cdef void dense_backward(const floating* P, floating* G, const int64_t[::1] sizes,
                         const int64_t[::1] offs, const int64_t[::1] kinds,
                         const floating* X0, Py_ssize_t ldx, Py_ssize_t b, floating* ws,
                         const int64_t[::1] act, const int64_t[::1] dlt,
                         bint accumulate, int S, bint par, floating* Wupd, floating lr,
                         floating bsz, floating decay) noexcept nogil:
    """Gradients of the block (its output error terms at ``ws + dlt[L-1]``) into ``G``
    (overwritten, or added to with ``accumulate``); the error terms of the layers below
    on the way (each before its layer's gradient is used); each layer's GEMMs in up to ``S``
    parts (on threads with ``par``).

    With ``Wupd`` (the weights ``P`` themselves; the batch one block, not ``accumulate``):
    the plain SGD step fused into the weight-gradient GEMMs, ``W = decay W - (lr / bsz)
    A^T D`` (``decay = 1 - lr lam`` for L2), each layer's weights changed after the error
    terms below them were computed; the biases ``w - lr (g / bsz)`` as :func:`step1` rounds
    them.  ``G`` then holds only the bias sums."""
    cdef Py_ssize_t l, i, k, L = sizes.shape[0] - 1, n_in, n_out, ldin
    cdef const floating* Ain
    cdef floating* D
    cdef floating* gb
    cdef floating* Dlow
    cdef const floating* Alow
    cdef floating beta = 1 if accumulate else 0
    cdef floating alpha = 0
    cdef int s, parts
    if Wupd != NULL:
        beta = decay
        alpha = -lr / bsz
    for l in range(L - 1, -1, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        D = ws + dlt[l]
        Ain = X0 if l == 0 else ws + act[l - 1]
        ldin = ldx if l == 0 else n_in
        gb = G + offs[l]
        Dlow = ws + dlt[l - 1] if l > 0 else NULL
        Alow = ws + act[l - 1] if l > 0 else NULL
        if not accumulate:
            for k in range(n_out):
                gb[k] = 0
        for i in range(b):                       # the sum over samples, in order
            for k in range(n_out):
                gb[k] = gb[k] + D[i * n_out + k]
        if Wupd != NULL:                         # the biases: not read below this layer
            for k in range(n_out):
                Wupd[offs[l] + k] = step1(OPT_SGD, Wupd[offs[l] + k], gb[k] / bsz, NULL, NULL,
                                          lr, 0, 0, 0, lr)
        parts = parts_for(S, b, n_in, n_out, n_in)
        if parts > 1 and par:
            for s in prange(parts, num_threads=parts, schedule="static", chunksize=1):
                backward_part(P, gb, sizes, offs, kinds, l, Ain, ldin, b, D, Dlow, Alow, beta,
                              s, parts, Wupd, alpha)
        else:
            for s in range(parts):
                backward_part(P, gb, sizes, offs, kinds, l, Ain, ldin, b, D, Dlow, Alow, beta,
                              s, parts, Wupd, alpha)


cdef Py_ssize_t rows_in_place(const int64_t* rows, Py_ssize_t b, unsigned char* seen) noexcept nogil:
    """The first row ``lo`` when ``rows[0:b]`` are the rows ``lo .. lo+b-1`` of X (in any
    order), else -1 (``seen``: ``b`` bytes of scratch)."""
    cdef Py_ssize_t i, lo = rows[0], hi = rows[0], r
    cdef bint ordered = True
    for i in range(1, b):
        r = rows[i]
        ordered = ordered and r == rows[i - 1] + 1
        lo = r if r < lo else lo
        hi = r if r > hi else hi
    if ordered:
        return lo
    if hi - lo + 1 != b:
        return -1
    for i in range(b):
        seen[i] = 0
    for i in range(b):
        r = rows[i] - lo
        if seen[r]:
            return -1
        seen[r] = 1
    return lo


cdef void gather_rows(const floating[:, ::1] X, const int64_t* rows, Py_ssize_t b,
                      floating* out) noexcept nogil:
    cdef Py_ssize_t i, j, n = X.shape[1]
    cdef const floating* x
    for i in range(b):
        x = &X[rows[i], 0]
        for j in range(n):
            out[i * n + j] = x[j]


# ------------------------------------------------------------------ the drivers
# A batch is cut into C chunks of rows (C from its size only: the numbers depend on the
# inputs and the thread count alone); chunk c adds up its gradient in its own buffer Gb[c]
# (blocks of BR rows, each thread with its own work buffer), the buffers are added in chunk
# order by the step.  The chunks run on OpenMP threads -- for small batches only when that
# was measured faster (as the sparse path's _train does) -- and BLAS on one thread inside
# them (fastnet._cython._blas): one pool of threads, whose fork/join is a batch's only sync.

cdef double dense_block(const floating* P, floating* G, const int64_t[::1] sizes,
                        const int64_t[::1] offs, const int64_t[::1] kinds, int lk,
                        const floating[:, ::1] X, const floating[:, ::1] Y,
                        const int64_t* rows, Py_ssize_t lo, Py_ssize_t b, floating* ws,
                        const int64_t[::1] act, const int64_t[::1] dlt, Py_ssize_t xb,
                        unsigned char* seen, bint accumulate, int S, bint par, floating* Wupd,
                        floating lr, floating bsz, floating decay, Py_ssize_t zp) noexcept nogil:
    """Loss and gradient (into ``G``, or added to it) of the ``b`` samples ``rows`` (NULL:
    rows ``lo .. lo+b-1``); ``b`` is at most the work buffer's rows; the GEMMs in up to ``S``
    parts (on threads with ``par``; the forward partial sums at ``ws + zp``); with ``Wupd``,
    the SGD step fused in (:func:`dense_backward`)."""
    cdef Py_ssize_t L = sizes.shape[0] - 1, n0 = X.shape[1]
    cdef const floating* X0
    cdef const int64_t* idx = NULL
    cdef double total
    if rows != NULL:
        lo = rows_in_place(rows, b, seen)
        if lo < 0:
            gather_rows(X, rows, b, ws + xb)
            idx = rows
            lo = 0
    if idx != NULL:
        X0 = ws + xb
    else:
        X0 = &X[lo, 0]
    dense_forward(P, sizes, offs, kinds, X0, n0, b, ws, act, NULL, S, par,
                  ws + zp if zp >= 0 else NULL)
    total = output_delta(<int>kinds[L - 1], lk, ws + act[L - 1], ws + dlt[L - 1], b,
                         sizes[L], &Y[0, 0], idx, lo)
    dense_backward(P, G, sizes, offs, kinds, X0, n0, b, ws, act, dlt, accumulate, S, par, Wupd,
                   lr, bsz, decay)
    return total


cdef double dense_rows(const floating* P, floating* G, const int64_t[::1] sizes,
                       const int64_t[::1] offs, const int64_t[::1] kinds, int lk,
                       const floating[:, ::1] X, const floating[:, ::1] Y,
                       const int64_t* rows, Py_ssize_t lo, Py_ssize_t b, Py_ssize_t BR,
                       floating* ws, const int64_t[::1] act, const int64_t[::1] dlt,
                       Py_ssize_t xb, unsigned char* seen, int S=1, bint par=False,
                       floating* Wupd=NULL, floating lr=0, floating bsz=1,
                       floating decay=1, Py_ssize_t zp=-1) noexcept nogil:
    """Loss, and gradient into ``G`` (overwritten), of ``b`` samples (``rows``, or rows
    ``lo ..`` when NULL), in blocks of ``BR`` rows (their GEMMs in up to ``S`` parts, on
    threads with ``par``; ``zp``: where their forward partial sums go in ``ws``, needed when
    ``S > 1``).  With ``Wupd`` (``b`` at most ``BR``: one block), the plain SGD step is fused
    into the weight gradients instead (:func:`dense_backward`)."""
    cdef Py_ssize_t blo = 0, nb
    cdef double total = 0
    while blo < b:
        nb = min(BR, b - blo)
        total += dense_block(P, G, sizes, offs, kinds, lk, X, Y,
                             rows + blo if rows != NULL else NULL, lo + blo, nb, ws, act, dlt,
                             xb, seen, blo > 0, S, par, Wupd if nb == b else NULL, lr, bsz,
                             decay, zp)
        blo += nb
    return total


cdef double dense_chunks(const floating* P, floating[:, ::1] Gb, const int64_t[::1] sizes,
                         const int64_t[::1] offs, const int64_t[::1] kinds, int lk,
                         const floating[:, ::1] X, const floating[:, ::1] Y,
                         const int64_t* rows, Py_ssize_t lo, Py_ssize_t b, Py_ssize_t BR,
                         floating[:, ::1] ws, const int64_t[::1] act, const int64_t[::1] dlt,
                         Py_ssize_t xb, unsigned char[:, ::1] seen, double[::1] tloss, int C,
                         int T, bint parallel) noexcept nogil:
    """The ``b`` samples cut into ``C`` chunks, chunk ``c``'s gradient into ``Gb[c]``; on ``T``
    threads with ``parallel``, else all on this one (the same numbers)."""
    cdef int c, tid
    cdef Py_ssize_t c0, c1
    cdef double total = 0
    if C <= 1:
        return dense_rows(P, &Gb[0, 0], sizes, offs, kinds, lk, X, Y, rows, lo, b, BR,
                          &ws[0, 0], act, dlt, xb, &seen[0, 0])
    if parallel and T > 1:
        for c in prange(C, num_threads=T, schedule="dynamic", chunksize=1):
            tid = threadid()
            c0 = (b * c) // C
            c1 = (b * (c + 1)) // C
            tloss[c] = dense_rows(P, &Gb[c, 0], sizes, offs, kinds, lk, X, Y,
                                  rows + c0 if rows != NULL else NULL, lo + c0, c1 - c0, BR,
                                  &ws[tid, 0], act, dlt, xb, &seen[tid, 0])
    else:
        for c in range(C):
            c0 = (b * c) // C
            c1 = (b * (c + 1)) // C
            tloss[c] = dense_rows(P, &Gb[c, 0], sizes, offs, kinds, lk, X, Y,
                                  rows + c0 if rows != NULL else NULL, lo + c0, c1 - c0, BR,
                                  &ws[0, 0], act, dlt, xb, &seen[0, 0])
    for c in range(C):
        total += tloss[c]
    return total


cdef void step_parts(floating[::1] P, floating[::1] S, floating[:, ::1] Gb,
                     const int64_t[::1] sizes, const int64_t[::1] offs, Py_ssize_t b, int Sp,
                     bint par, int opt, floating lr, floating mu, floating rho, floating eps,
                     floating lr_t, int pen, floating lam) noexcept nogil:
    """The step of a batch cut in ``Sp`` parts (its gradient in ``Gb[0]``): each layer's
    biases, then its weight rows in the parts of its backward GEMMs, part ``s`` on thread
    ``s`` with ``par`` -- the rows that thread read and changed in the batch's products.
    The same numbers as :func:`step_chunks` (one weight's step depends on that weight only)."""
    cdef Py_ssize_t l, L = sizes.shape[0] - 1, n_in, n_out, wo
    cdef int s, k
    for l in range(L):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        wo = offs[l] + n_out
        _step_segment(P, S, Gb, 1, offs[l], wo, <floating>b, opt, lr, mu, rho, eps, lr_t,
                      PEN_NONE, lam, False)
        k = parts_for(Sp, b, n_in, n_out, n_in)
        if k > 1 and par:
            for s in prange(k, num_threads=k, schedule="static", chunksize=1):
                _step_segment(P, S, Gb, 1, wo + part_at(n_in, s, k) * n_out,
                              wo + part_at(n_in, s + 1, k) * n_out, <floating>b, opt, lr, mu,
                              rho, eps, lr_t, pen, lam, False)
        else:
            _step_segment(P, S, Gb, 1, wo, offs[l + 1], <floating>b, opt, lr, mu, rho, eps,
                          lr_t, pen, lam, False)


cdef double dense_train(floating[::1] P, floating[::1] S, floating[:, ::1] Gb,
                        const int64_t[::1] sizes, const int64_t[::1] offs,
                        const int64_t[::1] kinds, int lk, const floating[:, ::1] X,
                        const floating[:, ::1] Y, const int64_t[::1] order, Py_ssize_t bs,
                        Py_ssize_t BR, int opt, floating lr, floating mu, floating rho,
                        floating eps, int pen, floating lam, double lr_d, double mu_d,
                        double rho_d, Py_ssize_t step0, floating[:, ::1] ws,
                        const int64_t[::1] act, const int64_t[::1] dlt, Py_ssize_t xb,
                        unsigned char[:, ::1] seen, double[::1] tloss,
                        const int64_t[:, ::1] segs, int tmax, double work,
                        int Tstep, int Cmax) noexcept nogil:
    """One epoch of mini-batch training on the dense path; returns the summed loss.

    A batch is cut into chunks of rows (:func:`dense_chunks_for`, at most ``Cmax``: the
    gradient buffers), or, when small, its GEMMs into parts (:func:`dense_parts_for`)."""
    cdef Py_ssize_t m = order.shape[0], start = 0, b, step = step0
    cdef double total = 0, t0
    cdef floating lr_t = lr
    cdef int C, T, Sp
    cdef bint par, big, fuse
    # plain SGD (no penalty or L2) on a batch that is one block: the step fused into the
    # weight-gradient GEMMs (dense_backward), no separate pass over the parameters and no
    # gradient buffer for the weights.  Measured on Intel Xeon (AVX-512, 2 cores),
    # standardised MNIST, batch 32, in alternating processes against the separate step: on
    # one thread 784-256-128-10 1.24x, 784-128-10 1.23x, 784-50-10 1.10x faster epochs; on
    # the two threads within the noise (the step was already cut between them)
    cdef bint sgd = opt == OPT_SGD and pen != PEN_L1
    cdef floating decay = 1 - lr * lam if pen == PEN_L2 else 1
    # the forward partial sums of batches cut in parts: after the gather buffer (_dense_plan)
    cdef Py_ssize_t zp = partial_sums_at(xb, BR, X.shape[1])
    while start < m:
        b = min(bs, m - start)
        Sp = dense_parts_for(b, work, tmax)
        C = 1 if Sp > 1 else min(dense_chunks_for(b, work, tmax), Cmax)
        T = Sp if Sp > 1 else min(C, tmax)
        fuse = sgd and C == 1 and b <= BR
        big = dense_always_threads(b * work)  # then not measured
        par = T > 1 and small_batch_threads_begin(b * work)
        t0 = fastnet_wtime()
        if fuse:
            total += dense_rows(&P[0], &Gb[0, 0], sizes, offs, kinds, lk, X, Y, &order[start], 0,
                                b, BR, &ws[0, 0], act, dlt, xb, &seen[0, 0], Sp, par, &P[0], lr,
                                <floating>b, decay, zp)
        elif Sp > 1:
            total += dense_rows(&P[0], &Gb[0, 0], sizes, offs, kinds, lk, X, Y, &order[start], 0,
                                b, BR, &ws[0, 0], act, dlt, xb, &seen[0, 0], Sp, par, NULL, 0, 1,
                                1, zp)
        else:
            total += dense_chunks(&P[0], Gb, sizes, offs, kinds, lk, X, Y, &order[start], 0, b,
                                  BR, ws, act, dlt, xb, seen, tloss, C, T, par)
        if opt == OPT_ADAM:
            lr_t = <floating>adam_lr(lr_d, mu_d, rho_d, <double>step)
        if not fuse and Sp > 1:
            step_parts(P, S, Gb, sizes, offs, b, Sp, par, opt, lr, mu, rho, eps, lr_t, pen, lam)
        elif not fuse:
            step_chunks(P, S, Gb, C, segs, <floating>b, opt, lr, mu, rho, eps, lr_t, pen, lam,
                        Tstep if par else 1, False)
        if T > 1 and not big:
            small_batch_threads_end(fastnet_wtime() - t0, b * work)
        step += 1
        start += b
    return total


cdef double dense_backprop(const floating* P, floating[::1] grad, floating[:, ::1] Gb,
                           const int64_t[::1] sizes, const int64_t[::1] offs,
                           const int64_t[::1] kinds, int lk, const floating[:, ::1] X,
                           const floating[:, ::1] Y, Py_ssize_t BR, floating[:, ::1] ws,
                           const int64_t[::1] act, const int64_t[::1] dlt, Py_ssize_t xb,
                           unsigned char[:, ::1] seen, double[::1] tloss, int C, int T,
                           int Tred) noexcept nogil:
    """Summed loss, and the summed gradient into ``grad``, of all rows of X."""
    cdef Py_ssize_t m = X.shape[0], n = grad.shape[0], lo, hi, chunk
    cdef double total
    cdef int t
    if C <= 1:
        return dense_rows(P, &grad[0], sizes, offs, kinds, lk, X, Y, NULL, 0, m, BR, &ws[0, 0],
                          act, dlt, xb, &seen[0, 0])
    total = dense_chunks(P, Gb, sizes, offs, kinds, lk, X, Y, NULL, 0, m, BR, ws, act, dlt, xb,
                         seen, tloss, C, T, dense_threads_for(<double>m * n))
    if Tred <= 1:
        _sum_rows(Gb, C, grad, 0, n)
        return total
    chunk = (n + Tred - 1) // Tred
    for t in prange(Tred, num_threads=Tred, schedule="static", chunksize=1):
        lo = t * chunk
        hi = min(n, lo + chunk)
        _sum_rows(Gb, C, grad, lo, hi)
    return total


cdef void dense_forward_all(const floating* P, const int64_t[::1] sizes,
                            const int64_t[::1] offs, const int64_t[::1] kinds,
                            const floating[:, ::1] X, floating[:, ::1] out, Py_ssize_t BR,
                            floating[:, ::1] ws, const int64_t[::1] act, int C,
                            int T) noexcept nogil:
    """All outputs: ``C`` chunks of rows on ``T`` threads, blocks of ``BR`` rows each, the
    last layer written straight into ``out``."""
    cdef Py_ssize_t m = X.shape[0], lo, hi, nb
    cdef int c, tid
    if C <= 1 or T <= 1 or not dense_threads_for(<double>m * offs[sizes.shape[0] - 1] / 2):
        lo = 0
        while lo < m:
            nb = min(BR, m - lo)
            dense_forward(P, sizes, offs, kinds, &X[lo, 0], X.shape[1], nb, &ws[0, 0], act,
                          &out[lo, 0], 1, False, NULL)
            lo = lo + nb
        return
    for c in prange(C, num_threads=T, schedule="dynamic", chunksize=1):
        tid = threadid()
        lo = (m * c) // C
        hi = (m * (c + 1)) // C
        while lo < hi:
            nb = min(BR, hi - lo)
            dense_forward(P, sizes, offs, kinds, &X[lo, 0], X.shape[1], nb, &ws[tid, 0], act,
                          &out[lo, 0], 1, False, NULL)
            lo = lo + nb


# ------------------------------------------------------------- buffers, entry points
_tls = threading.local()


def _buffer(key, shape, dtype):
    """A work buffer of ``shape``, reused by the next calls in this thread (a fresh
    multi-megabyte array costs its page faults at every call)."""
    cache = _tls.__dict__.setdefault("buffers", {})
    n = 1
    for d in shape:
        n *= int(d)
    k = (key, np.dtype(dtype).char)
    buf = cache.get(k)
    if buf is None or buf.shape[0] < n:
        buf = np.empty(max(n, 16), dtype=dtype)
        cache[k] = buf
    return buf[:n].reshape(shape)


#: multiply-adds per batch below which the BLAS runs on one thread in a build without OpenMP
#: (see fastnet._cython._blas: the wake-ups of its threads cost more than they save on small
#: GEMMs, a lot more on a busy machine); with OpenMP the chunks are the threads, and the BLAS
#: always runs on one inside them
_BLAS_MIN_WORK = 1 << 26

#: work-buffer entries the dense path aims at per thread (rows per block follow from it)
_DENSE_ENTRIES = 1 << 23
#: rows per block at most (module attributes: the tests make blocks small).  A block's rows of
#: X are read by its forward product and again by its weight gradient: 512 rows of MNIST are
#: 1.6 MB, still in cache for the second read, where 4,096 (12.5 MB) came back from memory.
#: Measured on Zen 2 (AMD EPYC family 23 model 49, 2 cores), standardised MNIST full batch
#: of 8,000, in-process alternating (benchmarks/block_rows.py): 784-50-10 17.9 -> 12.9 ms an
#: epoch, 784-128-10 28.6 -> 24.3, 784-256-128-10 64.8 -> 59.6 (256 rows the same, 128 and
#: 1,024 slower)
_DENSE_ROWS = 512


cdef inline Py_ssize_t partial_sums_at(Py_ssize_t xb, Py_ssize_t BR, Py_ssize_t n0) noexcept nogil:
    """Where the forward partial sums start in a work buffer of :func:`_dense_plan` (with
    ``gather``): after the gather buffer of ``BR`` rows of ``n0`` inputs at ``xb``, on a
    multiple of 16 entries."""
    return xb + (BR * n0 + 15) // 16 * 16


def _dense_plan(lay, Py_ssize_t rows, bint gather, widths=None, int parts=1):
    """``(BR, act, dlt, xb, size)``: rows per block, the offsets of each layer's
    activations and error terms in a thread's work buffer, that of its gather buffer, and
    its size (a multiple of 16 entries: each thread's buffer starts on a cache line).
    ``widths``: each layer's row width (default its units; the online path's padded ones).
    With ``gather``, after the gather buffer: room for ``parts`` partial sums of a layer's
    forward product (``dense_train``'s batches cut in parts)."""
    widths = [int(w) for w in (lay.sizes[1:] if widths is None else widths)]
    per_row = 2 * sum(widths) + (int(lay.sizes[0]) if gather else 0)
    BR = max(1, min(rows, _DENSE_ROWS, max(64, _DENSE_ENTRIES // per_row)))
    act = np.zeros(lay.L, dtype=np.int64)
    dlt = np.zeros(lay.L, dtype=np.int64)
    pos = 0
    for l, w in enumerate(widths):
        act[l] = pos
        pos += (BR * w + 15) // 16 * 16
        dlt[l] = pos
        pos += (BR * w + 15) // 16 * 16
    xb = pos
    if gather:
        pos = partial_sums_at(xb, BR, int(lay.sizes[0]))
        if parts > 1:
            pos += parts * min(BR, max(_split_max_rows, _split_max_rows_wide)) * max(widths)
    return BR, act, dlt, xb, pos + 16


#: plans by (layout, rows, work, gather, threads, and the module settings they depend on): an
#: epoch loop asks for the same one each epoch (4 us of Python a call, 0.3 % of a digits epoch)
_plans = {}


def _plan(lay, Py_ssize_t rows, double work, bint gather):
    """Chunks, threads and the work buffers of a dense call on batches of ``rows`` samples."""
    cdef int tmax = _max_threads()
    key = (lay, rows, work, gather, tmax, _dense_min_work, _dense_min_rows, _DENSE_ROWS,
           _DENSE_ENTRIES, _split_max_rows, _split_max_rows_wide, _split_wide_work,
           _split_min_work, _split_min_gemm)
    plan = _plans.get(key)
    if plan is not None:
        return plan
    cdef int C = dense_chunks_for(rows, work, tmax)
    cdef int T = min(C, tmax)
    if gather and dense_parts_for(rows, work, tmax) > 1:   # dense_train: one block, cut in parts
        C = T = 1
    # (room for the partial sums whenever a batch may be cut: a last, smaller one too)
    BR, act, dlt, xb, size = _dense_plan(lay, -(-rows // C), gather, None,
                                         tmax if gather else 1)
    if len(_plans) >= 64:
        _plans.clear()
    plan = _plans[key] = (C, T, BR, act, dlt, xb, size)
    return plan


def _blas_one_thread(rows, lay):
    return bool(FASTNET_HAVE_OPENMP) or rows * lay.n_params < _BLAS_MIN_WORK


# The BLAS on one thread around a dense call (see fastnet._cython._blas).  The setting is
# process-wide, so the calls inside are counted and the last one out restores the BLAS's
# count.  Both functions run with the GIL held and release it nowhere: the GIL is their lock.
# (Each build variant of this module has its own count; only one is in use in a process.)
ctypedef void (*blas_set_t)(int) noexcept nogil
ctypedef int (*blas_get_t)() noexcept nogil
cdef blas_set_t _blas_set = NULL
cdef blas_get_t _blas_get = NULL
cdef bint _blas_looked = False
cdef int _blas_users = 0
cdef int _blas_saved = 1


cdef bint _blas_enter(bint on):
    """Put the BLAS on one thread when ``on`` (and it is known); True when it was entered."""
    global _blas_set, _blas_get, _blas_looked, _blas_users, _blas_saved
    cdef size_t fset, fget
    if not on:
        return False
    if not _blas_looked:
        fset, fget = _blas.addresses()
        if fset and fget:
            _blas_set, _blas_get = <blas_set_t>fset, <blas_get_t>fget
        _blas_looked = True
    if _blas_set == NULL:
        return False
    if _blas_users == 0:
        _blas_saved = _blas_get()
        if _blas_saved != 1:
            _blas_set(1)
    _blas_users += 1
    return True


cdef void _blas_exit(bint entered):
    """Undo :func:`_blas_enter` (given what it returned)."""
    global _blas_users
    if not entered:
        return
    _blas_users -= 1
    if _blas_users == 0 and _blas_saved != 1:
        _blas_set(_blas_saved)


cdef _dense_forward_typed(const floating[::1] P, const int64_t[::1] sizes,
                          const int64_t[::1] offs, const int64_t[::1] kinds,
                          const floating[:, ::1] X, floating[:, ::1] out, Py_ssize_t BR,
                          floating[:, ::1] ws, const int64_t[::1] act, int C, int T):
    with nogil:
        dense_forward_all(&P[0], sizes, offs, kinds, X, out, BR, ws, act, C, T)


def _dense_forward(lay, params, X, out):
    C, T, BR, act, dlt, xb, size = _plan(lay, X.shape[0], lay.n_params / 2, False)
    ws = _buffer("dense", (T, size), params.dtype)
    cdef bint one = _blas_enter(_blas_one_thread(X.shape[0], lay))
    try:
        if params.dtype == np.float32:
            _dense_forward_typed[cython.float](params, lay.sizes, lay.offs, lay.kinds, X, out,
                                               BR, ws, act, C, T)
        else:
            _dense_forward_typed[cython.double](params, lay.sizes, lay.offs, lay.kinds, X, out,
                                                BR, ws, act, C, T)
    finally:
        _blas_exit(one)


cdef double _dense_backprop_typed(const floating[::1] P, floating[::1] grad,
                                  floating[:, ::1] Gb, const int64_t[::1] sizes,
                                  const int64_t[::1] offs, const int64_t[::1] kinds, int lk,
                                  const floating[:, ::1] X, const floating[:, ::1] Y,
                                  Py_ssize_t BR, floating[:, ::1] ws, const int64_t[::1] act,
                                  const int64_t[::1] dlt, Py_ssize_t xb,
                                  unsigned char[:, ::1] seen, double[::1] tloss, int C, int T,
                                  int Tred):
    cdef double total
    with nogil:
        total = dense_backprop(&P[0], grad, Gb, sizes, offs, kinds, lk, X, Y, BR, ws, act, dlt,
                               xb, seen, tloss, C, T, Tred)
    return total


def _dense_backprop(lay, int loss_kind, params, X, Y, grad):
    C, T, BR, act, dlt, xb, size = _plan(lay, X.shape[0], lay.n_params, False)
    ws = _buffer("dense", (T, size), params.dtype)
    Gb = _buffer("grad", (C, lay.n_params), params.dtype)
    seen = _buffer("seen", (T, 16), np.uint8)
    tloss = np.zeros(max(C, 1))
    cdef int Tred = _threads_for(lay.n_params, C, _min_elems, _max_threads()) if C > 1 else 1
    cdef bint one = _blas_enter(_blas_one_thread(X.shape[0], lay))
    try:
        if params.dtype == np.float32:
            return _dense_backprop_typed[cython.float](params, grad, Gb, lay.sizes, lay.offs,
                                                       lay.kinds, loss_kind, X, Y, BR, ws, act,
                                                       dlt, xb, seen, tloss, C, T, Tred)
        return _dense_backprop_typed[cython.double](params, grad, Gb, lay.sizes, lay.offs,
                                                    lay.kinds, loss_kind, X, Y, BR, ws, act,
                                                    dlt, xb, seen, tloss, C, T, Tred)
    finally:
        _blas_exit(one)


cdef double _dense_train_typed(floating[::1] P, floating[::1] S, floating[:, ::1] Gb,
                               const int64_t[::1] sizes, const int64_t[::1] offs,
                               const int64_t[::1] kinds, int lk, const floating[:, ::1] X,
                               const floating[:, ::1] Y, const int64_t[::1] order,
                               Py_ssize_t bs, Py_ssize_t BR, int opt, floating lr, floating mu,
                               floating rho, floating eps, int pen, floating lam, double lr_d,
                               double mu_d, double rho_d, Py_ssize_t t0, floating[:, ::1] ws,
                               const int64_t[::1] act, const int64_t[::1] dlt, Py_ssize_t xb,
                               unsigned char[:, ::1] seen, double[::1] tloss,
                               const int64_t[:, ::1] segs, int tmax, double work, int Tstep,
                               int Cmax):
    cdef double total
    with nogil:
        total = dense_train(P, S, Gb, sizes, offs, kinds, lk, X, Y, order, bs, BR, opt, lr, mu,
                            rho, eps, pen, lam, lr_d, mu_d, rho_d, t0, ws, act, dlt, xb, seen,
                            tloss, segs, tmax, work, Tstep, Cmax)
    return total


def _dense_train(lay, int loss_kind, params, X, Y, order, Py_ssize_t bs, int opt, double lr,
                 double mu, double rho, double eps, int pen, double lam, state, Py_ssize_t t):
    cdef int tmax = _max_threads()
    rows = min(bs, order.shape[0])
    C, T, BR, act, dlt, xb, size = _plan(lay, rows, lay.n_params, True)
    ws = _buffer("dense", (T, size), params.dtype)
    Gb = _buffer("grad", (C, lay.n_params), params.dtype)
    seen = _buffer("seen", (T, BR), np.uint8)
    tloss = np.zeros(max(C, 1))
    cdef int Tstep = _threads_for(lay.n_params, 1, _min_elems, tmax)
    cdef bint one = _blas_enter(_blas_one_thread(rows, lay))
    try:
        if params.dtype == np.float32:
            return _dense_train_typed[cython.float](params, state, Gb, lay.sizes, lay.offs,
                                                    lay.kinds, loss_kind, X, Y, order, bs, BR,
                                                    opt, lr, mu, rho, eps, pen, lam, lr, mu, rho,
                                                    t, ws, act, dlt, xb, seen, tloss,
                                                    lay.segs(), tmax, float(lay.n_params), Tstep,
                                                    C)
        return _dense_train_typed[cython.double](params, state, Gb, lay.sizes, lay.offs,
                                                 lay.kinds, loss_kind, X, Y, order, bs, BR, opt,
                                                 lr, mu, rho, eps, pen, lam, lr, mu, rho, t, ws,
                                                 act, dlt, xb, seen, tloss, lay.segs(), tmax,
                                                 float(lay.n_params), Tstep, C)
    finally:
        _blas_exit(one)
