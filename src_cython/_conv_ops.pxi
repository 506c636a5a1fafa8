# The single-operation helpers of conv.pyx (included there): BLAS's GEMM in row-major
# terms, the elementwise epilogues and output error, a program row's geometry, im2col /
# col2im and the convolution's forward and backward passes, pooling.  ``cdef`` only, on raw
# pointers, ``nogil``; conv.pyx cimports what these need (floating, the codes, cython_blas).

ctypedef int (*set_threads_t)(int) noexcept nogil


# ------------------------------------------------------------------------- BLAS
cdef inline void gemm(bint ta, bint tb, int M, int N, int K, floating alpha,
                      const floating *A, int lda, const floating *B, int ldb, floating beta,
                      floating *C, int ldc) noexcept nogil:
    """Row-major ``C (M, N) = alpha op(A) op(B) + beta C`` through column-major BLAS
    (``C.T = op(B).T op(A).T``); ``op`` transposes when ``ta``/``tb``."""
    cdef char ca = 84 if tb else 78   # 'T' or 'N'
    cdef char cb = 84 if ta else 78
    if M <= 0 or N <= 0:
        return
    if floating is float:
        blas.sgemm(&ca, &cb, &N, &M, &K, &alpha, <float *>B, &ldb, <float *>A, &lda, &beta,
                   C, &ldc)
    else:
        blas.dgemm(&ca, &cb, &N, &M, &K, &alpha, <double *>B, &ldb, <double *>A, &lda, &beta,
                   C, &ldc)


# ------------------------------------------------------------------ elementwise
cdef inline void softmax_row(floating *z, int64_t n) noexcept nogil:
    cdef int64_t k
    cdef floating mx = z[0]
    cdef double s = 0
    for k in range(1, n):
        if z[k] > mx:
            mx = z[k]
    for k in range(n):
        if floating is float:
            z[k] = expf(z[k] - mx)
        else:
            z[k] = exp(z[k] - mx)
        s += z[k]
    cdef floating inv = <floating>s
    for k in range(n):
        z[k] = z[k] / inv


cdef void activate(int kind, floating *Z, int64_t rows, int64_t n) noexcept nogil:
    """``Z`` (rows, n) = f(Z) in place (softmax over each row)."""
    cdef int64_t i, r
    if kind == ACT_LINEAR:
        return
    if kind == ACT_SOFTMAX:
        for r in range(rows):
            softmax_row(Z + r * n, n)
        return
    if kind == ACT_RELU:
        for i in range(rows * n):
            if Z[i] < 0:
                Z[i] = 0
        return
    for i in range(rows * n):
        Z[i] = act_f(kind, Z[i])


cdef void bias_act(floating *Z, const floating *b, int64_t rows, int64_t F,
                   int kind) noexcept nogil:
    """The fused epilogue ``Z[r] = f(Z[r] + b)``."""
    cdef int64_t r, f
    cdef floating v
    cdef floating *z
    for r in range(rows):
        z = Z + r * F
        if kind == ACT_RELU:
            for f in range(F):
                v = z[f] + b[f]
                z[f] = v if v > 0 else 0
        else:
            for f in range(F):
                z[f] = z[f] + b[f]
    if kind != ACT_RELU:
        activate(kind, Z, rows, F)


cdef double loss_delta(int kind, int loss_kind, const floating *a, const floating *y,
                       floating *d, int64_t n) noexcept nogil:
    """One sample's loss (float64) and output error term ``d`` (as the reference)."""
    cdef int64_t k
    cdef double total = 0
    for k in range(n):
        total += loss_term(loss_kind, a[k], y[k])
    if fused_output(kind, loss_kind):
        for k in range(n):
            d[k] = a[k] - y[k]
    else:
        for k in range(n):
            d[k] = loss_grad(loss_kind, a[k], y[k]) * act_df_from_a(kind, a[k])
    return total


# ------------------------------------------------------------------- geometry
cdef struct Row:
    int64_t kind, act, H, W, C, Ho, Wo, F, kh, kw, s, ph, pw, poff, plen, tied, n_in, n_out


cdef inline Row read_row(const int64_t *prog, int64_t l) noexcept nogil:
    cdef const int64_t *p = prog + l * PROG_WIDTH
    cdef Row r
    r.kind = p[PROG_KIND]
    r.act = p[PROG_ACT]
    r.H = p[PROG_IN_H]
    r.W = p[PROG_IN_W]
    r.C = p[PROG_IN_C]
    r.Ho = p[PROG_OUT_H]
    r.Wo = p[PROG_OUT_W]
    r.F = p[PROG_OUT_C]
    r.kh = p[PROG_KH]
    r.kw = p[PROG_KW]
    r.s = p[PROG_STRIDE]
    r.ph = p[PROG_PAD_H]
    r.pw = p[PROG_PAD_W]
    r.poff = p[PROG_POFF]
    r.plen = p[PROG_PLEN]
    r.tied = p[PROG_TIED]
    r.n_in = r.H * r.W * r.C
    r.n_out = r.Ho * r.Wo * r.F
    return r


# ------------------------------------------------------------------ convolution
cdef void im2col(const floating *X, int64_t n0, int64_t n1, Row *g,
                 floating *cols) noexcept nogil:
    """Unfold images ``n0 <= n < n1`` of ``X`` (rows of H*W*C values) into ``cols``."""
    cdef int64_t C = g.C, W = g.W, H = g.H, kw = g.kw, kh = g.kh
    cdef int64_t run = kw * C, K = kh * run
    cdef int64_t n, oy, ox, dy, iy, x0, lo, hi, q
    cdef const floating *x
    cdef const floating *src
    cdef floating *crow = cols
    for n in range(n0, n1):
        x = X + n * g.n_in
        for oy in range(g.Ho):
            for ox in range(g.Wo):
                x0 = ox * g.s - g.pw
                lo = -x0 if x0 < 0 else 0
                hi = W - x0 if W - x0 < kw else kw
                for dy in range(kh):
                    iy = oy * g.s + dy - g.ph
                    if iy < 0 or iy >= H or hi <= lo:
                        memset(crow + dy * run, 0, run * sizeof(floating))
                        continue
                    if lo:
                        memset(crow + dy * run, 0, lo * C * sizeof(floating))
                    src = x + (iy * W + x0) * C
                    memcpy(crow + dy * run + lo * C, src + lo * C, (hi - lo) * C * sizeof(floating))
                    if hi < kw:
                        memset(crow + dy * run + hi * C, 0, (kw - hi) * C * sizeof(floating))
                crow += K


cdef void col2im(const floating *dcols, int64_t n0, int64_t n1, Row *g,
                 floating *dX) noexcept nogil:
    """Fold ``dcols`` onto images ``n0 <= n < n1`` of ``dX`` (zeroed first), adding."""
    cdef int64_t C = g.C, W = g.W, H = g.H, kw = g.kw, kh = g.kh
    cdef int64_t run = kw * C, K = kh * run
    cdef int64_t n, oy, ox, dy, iy, x0, lo, hi, q
    cdef floating *d
    cdef const floating *crow = dcols
    cdef const floating *c
    memset(dX + n0 * g.n_in, 0, (n1 - n0) * g.n_in * sizeof(floating))
    for n in range(n0, n1):
        d = dX + n * g.n_in
        for oy in range(g.Ho):
            for ox in range(g.Wo):
                x0 = ox * g.s - g.pw
                lo = -x0 if x0 < 0 else 0
                hi = W - x0 if W - x0 < kw else kw
                for dy in range(kh):
                    iy = oy * g.s + dy - g.ph
                    if iy < 0 or iy >= H or hi <= lo:
                        continue
                    c = crow + dy * run
                    for q in range(lo * C, hi * C):
                        d[(iy * W + x0) * C + q] += c[q]
                crow += K


# ------------------------------------------------------------- direct forward
#: Direct loops instead of im2col + GEMM for a convolution with F % 8 == 0 filters and at most
#: DIRECT_MAX_F of them: its GEMM's N = F is too thin for BLAS (the default net's first layer,
#: 1 -> 8 filters of 5x5, ran at 8 GFLOP/s through im2col + sgemm, half of it packing).
cdef enum:
    DP = 4       # output pixels per register block (DP x 8 accumulators)

cdef extern from "fastnet_conv.h" nogil:
    const int FC_SIMD   # 1 where the direct loops have their AVX2 + FMA form

#: the widest F (and K = kh*kw*C) that takes the direct loops (conv.pyx's _set_direct: 0 turns
#: them off, for tests and benchmarks of both ways); off by default on a build without AVX2,
#: whose plain loops were not measured to beat im2col + GEMM (CI tests them, switched on)
cdef int64_t DIRECT_MAX_F = 32 if FC_SIMD else 0
cdef int64_t DIRECT_MAX_K = 64 if FC_SIMD else 0


cdef inline bint direct_ok(Row *g) noexcept nogil:
    return g.F % 8 == 0 and g.F <= DIRECT_MAX_F and g.kh * g.kw * g.C <= DIRECT_MAX_K


cdef extern from "fastnet_conv.h" nogil:
    void fc_block4_f32(const float *x, int64_t rs, int64_t step, int64_t rows, int64_t n,
                       const float *w, int64_t F, float *out)
    void fc_block4_f64(const double *x, int64_t rs, int64_t step, int64_t rows, int64_t n,
                       const double *w, int64_t F, double *out)
    void fc_px1_f32(const float *x, int64_t rs, int64_t rows, int64_t n, int64_t len,
                    const float *w, int64_t F, float *out)
    void fc_px1_f64(const double *x, int64_t rs, int64_t rows, int64_t n, int64_t len,
                    const double *w, int64_t F, double *out)
    void fc_wgrad4_f32(const float *x, int64_t rs, int64_t srs, int64_t step, int64_t Ho,
                       int64_t Wo, const float *dz, int64_t F, float *g)
    void fc_wgrad1_f32(const float *x, int64_t rs, int64_t srs, int64_t step, int64_t Ho,
                       int64_t Wo, const float *dz, int64_t F, float *g)


cdef inline void _fc_block4(const floating *x, int64_t rs, int64_t step, int64_t rows,
                            int64_t n, const floating *w, int64_t F, floating *out) noexcept nogil:
    if floating is float:
        fc_block4_f32(x, rs, step, rows, n, w, F, out)
    else:
        fc_block4_f64(x, rs, step, rows, n, w, F, out)


cdef inline void _fc_px1(const floating *x, int64_t rs, int64_t rows, int64_t n, int64_t len,
                         const floating *w, int64_t F, floating *out) noexcept nogil:
    if floating is float:
        fc_px1_f32(x, rs, rows, n, len, w, F, out)
    else:
        fc_px1_f64(x, rs, rows, n, len, w, F, out)


cdef void conv_forward_direct(const floating *X, int64_t m, const floating *Wb, Row *g,
                              floating *out) noexcept nogil:
    """:func:`conv_forward` by direct loops over the channels-last images (``direct_ok``)."""
    cdef int64_t F = g.F, C = g.C, npix = g.Ho * g.Wo, n, oy, ox, f0, lo, hi, q
    cdef int64_t rs, n_t, iy0, dy0, dy1, ix0, dx0, dx1
    cdef const floating *x
    cdef const floating *w
    cdef floating *o
    # the output columns whose whole window is inside the image: lo <= ox < hi
    lo = (g.pw + g.s - 1) // g.s
    hi = (g.W - g.kw + g.pw) // g.s + 1 if g.W - g.kw + g.pw >= 0 else 0
    if hi > g.Wo:
        hi = g.Wo
    rs, n_t = g.W * C, g.kw * C
    for n in range(m):
        x = X + n * g.n_in
        o = out + n * g.n_out
        for oy in range(g.Ho):
            # the window rows inside the image: dy0 <= dy < dy1
            iy0 = oy * g.s - g.ph
            dy0 = -iy0 if iy0 < 0 else 0
            dy1 = g.H - iy0 if g.H - iy0 < g.kh else g.kh
            if dy1 <= dy0:
                for q in range(g.Wo * F):
                    o[oy * g.Wo * F + q] = 0
                continue
            for f0 in range(0, F, 8):
                w = Wb + F + dy0 * n_t * F + f0
                ox = 0
                while ox < g.Wo:
                    ix0 = ox * g.s - g.pw
                    if ox >= lo and ox + DP <= hi:
                        _fc_block4(x + (iy0 + dy0) * rs + ix0 * C, rs, g.s * C, dy1 - dy0, n_t,
                                   w, F, o + (oy * g.Wo + ox) * F + f0)
                        ox += DP
                        continue
                    dx0 = -ix0 if ix0 < 0 else 0
                    dx1 = g.W - ix0 if g.W - ix0 < g.kw else g.kw
                    if dx1 <= dx0:
                        for q in range(8):
                            o[(oy * g.Wo + ox) * F + f0 + q] = 0
                    else:
                        _fc_px1(x + (iy0 + dy0) * rs + (ix0 + dx0) * C, rs, dy1 - dy0, n_t,
                                (dx1 - dx0) * C, w + dx0 * C * F, F,
                                o + (oy * g.Wo + ox) * F + f0)
                    ox += 1
        bias_act(o, Wb, npix, F, <int>g.act)


cdef inline int64_t padded_size(Row *g) noexcept nogil:
    """Values in a zero-padded copy of one image that covers every tap of every output pixel."""
    return ((g.Ho - 1) * g.s + g.kh) * ((g.Wo - 1) * g.s + g.kw) * g.C


cdef void conv_wgrad_direct(const float *X, int64_t n0, int64_t n1, Row *g, const float *D,
                            float *G, float *xp) noexcept nogil:
    """``G[1:] +=`` the weight gradient of images ``n0 <= n < n1`` (``D``: their dZ rows) by
    direct loops (``direct_ok``, float32) over a zero-padded copy of each image in ``xp``
    (:func:`padded_size` values): each tap's 8 filters accumulate in a register over the
    image (fc_wgrad4/1), where im2col + GEMM ran a (K x rows) @ (rows x F) product with F = 8."""
    cdef int64_t C = g.C, F = g.F, s = g.s
    cdef int64_t Hp = (g.Ho - 1) * s + g.kh, Wp = (g.Wo - 1) * s + g.kw
    cdef int64_t rs = Wp * C, n_t = g.kw * C, n, py, iy, ixlo, ixhi, q, dy, t, f0
    cdef const float *x
    cdef const float *dz
    ixlo = 0
    ixhi = g.W if g.W < Wp - g.pw else Wp - g.pw
    for n in range(n0, n1):
        x = X + n * g.n_in
        dz = D + (n - n0) * g.n_out
        # padded (py, px) holds the image's (py - ph, px - pw), zero outside it
        for q in range(Hp * rs):
            xp[q] = 0
        for py in range(Hp):
            iy = py - g.ph
            if iy < 0 or iy >= g.H or ixhi <= ixlo:
                continue
            for q in range(ixhi * C):
                xp[py * rs + g.pw * C + q] = x[iy * g.W * C + q]
        for f0 in range(0, F, 8):
            for dy in range(g.kh):
                t = 0
                while t + 4 <= n_t:
                    fc_wgrad4_f32(xp + dy * rs + t, rs, s * rs, s * C, g.Ho, g.Wo, dz + f0, F,
                                  G + F + (dy * n_t + t) * F + f0)
                    t += 4
                while t < n_t:
                    fc_wgrad1_f32(xp + dy * rs + t, rs, s * rs, s * C, g.Ho, g.Wo, dz + f0, F,
                                  G + F + (dy * n_t + t) * F + f0)
                    t += 1


cdef void conv_forward(const floating *X, int64_t m, const floating *Wb, Row *g,
                       floating *out, floating *cols, int64_t nb) noexcept nogil:
    """``out`` (m, Ho*Wo*F) = f(conv(X) + b), ``Wb`` the (1 + K, F) block."""
    cdef int64_t K = g.kh * g.kw * g.C, npix = g.Ho * g.Wo, n0, n1, rows
    n0 = 0
    if direct_ok(g):
        conv_forward_direct(X, m, Wb, g, out)
        return
    while n0 < m:
        n1 = n0 + nb if n0 + nb < m else m
        rows = (n1 - n0) * npix
        im2col(X, n0, n1, g, cols)
        gemm(False, False, <int>rows, <int>g.F, <int>K, <floating>1, cols, <int>K, Wb + g.F,
             <int>g.F, <floating>0, out + n0 * g.n_out, <int>g.F)
        bias_act(out + n0 * g.n_out, Wb, rows, g.F, <int>g.act)
        n0 = n1


cdef void conv_backward(const floating *X, int64_t m, const floating *Wb, const floating *D,
                        Row *g, floating *G, floating *dX, bint need_input, floating *cols,
                        floating *dcols, floating *tmp, int64_t nb,
                        bint need_weights=True) noexcept nogil:
    """``G`` (1 + K, F) += the block's gradient (when ``need_weights``); ``dX`` = dJ/dX when
    ``need_input``."""
    cdef int64_t K = g.kh * g.kw * g.C, npix = g.Ho * g.Wo, F = g.F
    cdef int64_t n0, n1, rows, r, f, i
    cdef const floating *dz
    n0 = 0
    while n0 < m:
        n1 = n0 + nb if n0 + nb < m else m
        rows = (n1 - n0) * npix
        dz = D + n0 * g.n_out
        if need_weights:
            # (a window row of fewer than 4 values has only the 1-tap loop: im2col won there,
            # 1 -> 32 filters of 3x3: 8.4 ms against about 7 for its backward, batch 128)
            if (floating is float and direct_ok(g) and g.kw * g.C >= 4
                    and padded_size(g) <= nb * npix * K):
                conv_wgrad_direct(X, n0, n1, g, dz, G, cols)   # (cols: the padded image)
            else:
                im2col(X, n0, n1, g, cols)
                # G[1:] += cols.T @ dZ (BLAS accumulates: beta = 1)
                gemm(True, False, <int>K, <int>F, <int>rows, <floating>1, cols, <int>K, dz,
                     <int>F, <floating>1, G + F, <int>F)
            for r in range(rows):
                for f in range(F):
                    G[f] += dz[r * F + f]
        if need_input:
            gemm(False, True, <int>rows, <int>K, <int>F, <floating>1, dz, <int>F, Wb + F,
                 <int>F, <floating>0, dcols, <int>K)
            col2im(dcols, n0, n1, g, dX)
        n0 = n1


# ---------------------------------------------------------------------- pooling
cdef void pool_forward(int kind, const floating *X, int64_t m, Row *g, floating *out,
                       int64_t *argmax) noexcept nogil:
    cdef int64_t C = g.C, W = g.W, s = g.s, n, oy, ox, py, px, c, ob, ib, jb
    cdef const floating *x
    cdef floating *o
    cdef int64_t *am
    cdef floating v, cur, area = <floating>(g.kh * g.kw)
    cdef bint take
    for n in range(m):
        x = X + n * g.n_in
        o = out + n * g.n_out
        for oy in range(g.Ho):
            for ox in range(g.Wo):
                ob = (oy * g.Wo + ox) * C
                ib = (oy * s * W + ox * s) * C
                if kind == LAYER_MAXPOOL2D:
                    am = argmax + n * g.n_out
                    for c in range(C):
                        o[ob + c] = x[ib + c]
                        am[ob + c] = ib + c
                    for py in range(g.kh):
                        for px in range(g.kw):
                            if py == 0 and px == 0:
                                continue
                            jb = ((oy * s + py) * W + ox * s + px) * C
                            for c in range(C):
                                v = x[jb + c]
                                cur = o[ob + c]
                                take = v > cur
                                o[ob + c] = v if take else cur
                                am[ob + c] = jb + c if take else am[ob + c]
                else:
                    for c in range(C):
                        o[ob + c] = 0
                    for py in range(g.kh):
                        for px in range(g.kw):
                            jb = ((oy * s + py) * W + ox * s + px) * C
                            for c in range(C):
                                o[ob + c] = o[ob + c] + x[jb + c]
                    for c in range(C):
                        o[ob + c] = o[ob + c] / area


cdef void pool_backward(int kind, const floating *D, const int64_t *argmax, int64_t m, Row *g,
                        floating *dX) noexcept nogil:
    cdef int64_t C = g.C, W = g.W, s = g.s, n, oy, ox, py, px, c, ob, jb, q
    cdef const floating *d
    cdef floating *x
    cdef const int64_t *am
    cdef floating area = <floating>(g.kh * g.kw)
    memset(dX, 0, m * g.n_in * sizeof(floating))
    for n in range(m):
        d = D + n * g.n_out
        x = dX + n * g.n_in
        if kind == LAYER_MAXPOOL2D:
            am = argmax + n * g.n_out
            for q in range(g.n_out):
                x[am[q]] += d[q]
        else:
            for oy in range(g.Ho):
                for ox in range(g.Wo):
                    ob = (oy * g.Wo + ox) * C
                    for py in range(g.kh):
                        for px in range(g.kw):
                            jb = ((oy * s + py) * W + ox * s + px) * C
                            for c in range(C):
                                x[jb + c] += d[ob + c] / area


