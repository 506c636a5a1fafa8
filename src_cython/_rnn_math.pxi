# The arithmetic of the recurrent kernels (included by rnn.pyx; private to it).
#
# Written as plain C (the verbatim block below) where gcc must vectorise it: Cython turns
# every conditional expression into an if/else statement, which keeps gcc from vectorising
# a loop ("control flow in loop"), and its loops over a tile's columns have a variable trip
# count; the C here uses ?: selects and constant trip counts.
#
# * fnr_exp/sig/tanh_f32: the gate nonlinearities in float32, branch-free (Cody and Waite's
#   range reduction, Cephes' degree-6 polynomial for e^r, the exponent bits written
#   directly; an odd minimax polynomial for tanh near 0), so that the loops applying them
#   vectorise; peak relative error 2e-7 (~3 ulp).  In float64 the kernels use libm's exp
#   and tanh, as the reference does.
# * fnr_tile_f32/f64: C[:rows, :NB] (+)= A[:rows, :K] @ B[:K, :NB] (rows <= FNR_TR, NB one
#   64-byte vector: 16 float32 / 8 float64; A row-major or transposed) with the sums in
#   registers over K: one vector load of B and four broadcasts per four vector fused
#   multiply-adds.  _mm (and _mm_tn, for A transposed) tiles the per-step products of the
#   recurrences and the recurrent weights' gradient with it.
# * _gemm: the large products (input projections, weight gradients) through BLAS
#   (scipy.linalg.cython_blas), row-major.
from libc.math cimport exp, tanh, sqrt, log
from scipy.linalg.cython_blas cimport sgemm, dgemm

cdef extern from *:
    """
    #include <math.h>
    #include <stddef.h>
    #include <stdint.h>
    #include <string.h>
    /* fastnet rnn: a fused multiply-add where the CPU has one (the build turns implicit
       contraction off), else a*b+c */
    #if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
    #define FNR_FMAF(a, b, c) fmaf((a), (b), (c))
    #define FNR_FMA(a, b, c) fma((a), (b), (c))
    #else
    #define FNR_FMAF(a, b, c) ((a) * (b) + (c))
    #define FNR_FMA(a, b, c) ((a) * (b) + (c))
    #endif

    static inline float fnr_bits_f32(int32_t u) {
        union { int32_t i; float f; } v; v.i = u; return v.f; }
    static inline int32_t fnr_f32_bits(float f) {
        union { int32_t i; float f; } v; v.f = f; return v.i; }
    /* the bits of a where c holds, else those of b: masks, not ?:, which gcc may leave a
       branch (it does not if-convert float comparisons under the default -ftrapping-math,
       and its if-conversion of integer ones depends on the shape of the code) */
    static inline float fnr_select(int c, float a, float b) {
        int32_t m = -(int32_t)(c != 0);
        return fnr_bits_f32((fnr_f32_bits(a) & m) | (fnr_f32_bits(b) & ~m));
    }

    /* e^x for x <= 0.  Every choice below is a fnr_select on integer comparisons of the
       bits (nor fmaxf, which gcc does not vectorise either). */
    static inline float fnr_exp_f32(float x) {
        /* max(x, -104): for negative floats the bits grow with the magnitude */
        x = fnr_select((uint32_t)fnr_f32_bits(x) > 0xC2D00000u, -104.0f, x);
        /* n = round(x / ln 2): adding 1.5 * 2^23 rounds to an integer in the low bits */
        float t = x * 1.44269504088896341f + 12582912.0f;
        int32_t n = fnr_f32_bits(t) - 0x4B400000, n1 = n >> 1;
        float z = t - 12582912.0f;
        x = x - z * 0.693359375f;                               /* ln 2 in two parts */
        x = x - z * -2.12194440e-4f;
        float zz = x * x;
        float y = ((((((1.9875691500e-4f * x + 1.3981999507e-3f) * x + 8.3334519073e-3f) * x
                      + 4.1665795894e-2f) * x + 1.6666665459e-1f) * x + 5.0000001201e-1f) * zz
                   + x + 1.0f);
        return y * fnr_bits_f32((n1 + 127) << 23) * fnr_bits_f32((n - n1 + 127) << 23);
    }

    /* overflow-free logistic: e = e^-|z| only, then 1/(1+e) for z >= 0, e/(1+e) below */
    static inline float fnr_sig_f32(float z) {
        int32_t bz = fnr_f32_bits(z);
        float e = fnr_exp_f32(fnr_bits_f32(bz | (int32_t)0x80000000));  /* -|z| */
        float r = 1.0f / (1.0f + e);
        r = fnr_select(bz < 0, e * r, r);
        return fnr_select((bz & 0x7FFFFFFF) > 0x7F800000, z, r);    /* NaN stays NaN */
    }

    static inline double fnr_sig_f64(double z) {
        double e = exp(-fabs(z));
        return (z >= 0.0 ? 1.0 : e) / (1.0 + e);
    }

    static inline float fnr_tanh_f32(float x) {
        int32_t bx = fnr_f32_bits(x), sign = bx & (int32_t)0x80000000;
        float a = fnr_bits_f32(bx & 0x7FFFFFFF), s = a * a;
        /* odd minimax polynomial of tanh on [0, 0.55] (relative error 1.6e-7) */
        float p = ((((2.398995927109652e-3f * s - 8.416790880577925e-3f) * s
                     + 2.1783767117828444e-2f) * s - 5.395979228213211e-2f) * s
                   + 1.3333294632458664e-1f) * s - 3.333333274183508e-1f;
        float small = a + a * s * p;
        float e = fnr_exp_f32(-2.0f * a);
        float big = (1.0f - e) / (1.0f + e);
        float r = fnr_select(fnr_f32_bits(a) < 0x3F0CCCCD, small, big);   /* a < 0.55f */
        r = fnr_select(fnr_f32_bits(a) > 0x7F800000, a, r);          /* NaN stays NaN */
        return fnr_bits_f32(fnr_f32_bits(r) | sign);
    }

    static inline float fnr_relu_f32(float z) {
        return fnr_select(fnr_f32_bits(z) > 0, z, 0.0f);
    }
    static inline float fnr_step_f32(float z, float d) {   /* d where z > 0, else 0 */
        return fnr_select(fnr_f32_bits(z) > 0, d, 0.0f);
    }
    static inline double fnr_relu_f64(double z) { return z > 0.0 ? z : 0.0; }
    static inline double fnr_step_f64(double z, double d) { return z > 0.0 ? d : 0.0; }

    /* One row of the LSTM's step in float32: gates [i, f, o, g] from their pre-activations
       (in place), then c and h.  The pointers are restrict: with seven of them gcc would need
       more run-time alias checks than it allows (10) and leave the loop scalar. */
    static inline void fnr_lstm_row_f32(float *restrict zi, float *restrict zf,
                                        float *restrict zo, float *restrict zg,
                                        const float *restrict c_prev, float *restrict c_out,
                                        float *restrict h_out, ptrdiff_t H) {
        for (ptrdiff_t u = 0; u < H; u++) {
            float i = fnr_sig_f32(zi[u]), f = fnr_sig_f32(zf[u]), o = fnr_sig_f32(zo[u]);
            float g = fnr_tanh_f32(zg[u]);
            float c = f * c_prev[u] + i * g;
            zi[u] = i; zf[u] = f; zo[u] = o; zg[u] = g;
            c_out[u] = c;
            h_out[u] = o * fnr_tanh_f32(c);
        }
    }

    /* One row of the LSTM's backward step in float32: the gates become the gradients of
       their pre-activations, dc that of c_{t-1} */
    static inline void fnr_lstm_back_f32(float *restrict gi, float *restrict gf,
                                         float *restrict go, float *restrict gg,
                                         const float *restrict c_prev,
                                         const float *restrict c_cur,
                                         const float *restrict dh, float *restrict dc,
                                         ptrdiff_t H) {
        for (ptrdiff_t u = 0; u < H; u++) {
            float i = gi[u], f = gf[u], o = go[u], g = gg[u];
            float tc = fnr_tanh_f32(c_cur[u]);
            float d_h = dh[u];
            float d_c = dc[u] + d_h * o * (1.0f - tc * tc);
            gi[u] = d_c * g * i * (1.0f - i);
            gf[u] = d_c * c_prev[u] * f * (1.0f - f);
            go[u] = d_h * tc * o * (1.0f - o);
            gg[u] = d_c * i * (1.0f - g * g);
            dc[u] = d_c * f;
        }
    }

    /* C[:rows, :ncols] (+)= A[:rows, :K] @ P (rows <= FNR_TR, ncols <= NB), P a packed panel
       of B: K rows of NB contiguous columns (zero past the last column), NB one 64-byte vector
       (16 float32, 8 float64).  A's element (r, k) is A[r * rs + k * ks]: rs = lda, ks = 1
       for A row-major; rs = 1, ks = ld for A given transposed (the recurrent weights'
       gradient reads the saved states h_{t-1}, (T B, H), as they are).
       The rows' sums are GCC vector-extension values, so that they stay in registers
       whatever the target (two ymm each with AVX2, one zmm with AVX-512); contraction is
       allowed here only, to make each s += a * b one fused multiply-add where the CPU has
       it, as FNR_FMAF does for a scalar: the same bits as that scalar loop.  (With arrays
       of 16 sums gcc kept some on the stack, and for the transposed operand all of them:
       0.92x on the H=128 LSTM's epoch with AVX2.  A 6-row AVX2 intrinsics version ran 1.2x
       faster in a C microbenchmark of the steps' products, but the H=128 character
       LSTM's epoch was the same with it, 30 interleaved rounds: it was removed.  These
       vector tiles, 8 rows with AVX-512 and 6 with AVX2, against the 4-row array tiles on
       that epoch: 1.14x / 1.08x with AVX-512, 1.13x / 1.10x with AVX2, minima / medians of
       12 interleaved rounds, AMD EPYC Zen 4.) */
    #if defined(__GNUC__) && !defined(__clang__)
    #pragma GCC push_options
    #pragma GCC optimize("fp-contract=fast")
    #elif defined(__clang__)
    #pragma clang fp contract(fast)
    #endif
    /* FNR_VB: the widest vector the target holds in a register (64 bytes with AVX-512,
       else 32: gcc lowers a wider vector-extension value through the stack) */
    #if defined(__AVX512F__)
    #define FNR_VB 64
    #else
    #define FNR_VB 32
    #endif
    #define FNR_NV (64 / FNR_VB)
    typedef float fnr_vf __attribute__((vector_size(FNR_VB)));
    typedef double fnr_vd __attribute__((vector_size(FNR_VB)));

    /* one tile in float32 (T = float, V = fnr_vf, W = 16 lanes per panel row) or float64 */
    /* FNR_TR: rows per tile, as many as the registers hold with the panel's vectors (a
       row's sums are 64 bytes): 8 with AVX-512 (8 of 32 zmm; the broadcasts are memory
       operands of the multiply-adds), 6 with AVX2 (12 of 16 ymm), else 4 */
    #if defined(__AVX512F__)
    #define FNR_TR 8
    #elif defined(__AVX2__)
    #define FNR_TR 6
    #else
    #define FNR_TR 4
    #endif

    /* one tile in float32 (T = float, V = fnr_vf, W = 16 lanes per panel row) or float64 */
    #define FNR_TILE(NAME, T, V, W)                                                         \
    static void NAME(const T *A, ptrdiff_t rs, ptrdiff_t ks, ptrdiff_t rows, ptrdiff_t K,  \
                     const T *P, T *C, ptrdiff_t ldc, ptrdiff_t ncols, int acc) {          \
        V s[FNR_TR][FNR_NV], b[FNR_NV];                                                     \
        const T *Ar[FNR_TR];                                                                \
        const ptrdiff_t L = W / FNR_NV;                                                     \
        _Pragma("GCC unroll 8") for (int r = 0; r < FNR_TR; r++) {                          \
            Ar[r] = A + (r < rows ? r : 0) * rs;                                            \
            _Pragma("GCC unroll 4") for (int h = 0; h < FNR_NV; h++)                        \
                s[r][h] = (V){0};                                                           \
        }                                                                                   \
        for (ptrdiff_t k = 0; k < K; k++) {                                                 \
            _Pragma("GCC unroll 4") for (int h = 0; h < FNR_NV; h++)                        \
                memcpy(&b[h], P + k * W + h * L, sizeof b[h]);                              \
            _Pragma("GCC unroll 8") for (int r = 0; r < FNR_TR; r++) {                      \
                T a = Ar[r][k * ks];                /* one broadcast live at a time */      \
                _Pragma("GCC unroll 4") for (int h = 0; h < FNR_NV; h++)                    \
                    s[r][h] += a * b[h];                                                    \
            }                                                                               \
        }                                                                                   \
        for (ptrdiff_t r = 0; r < rows; r++) {                                              \
            T *c = C + r * ldc;                                                             \
            if (ncols == W) {                                                               \
                _Pragma("GCC unroll 4") for (int h = 0; h < FNR_NV; h++) {                  \
                    V v = s[r][h];                                                          \
                    if (acc) {                                                              \
                        memcpy(&b[h], c + h * L, sizeof b[h]);                              \
                        v += b[h];                                                          \
                    }                                                                       \
                    memcpy(c + h * L, &v, sizeof v);                                        \
                }                                                                           \
            } else {                                                                        \
                for (ptrdiff_t j = 0; j < ncols; j++) {                                     \
                    T v = s[r][j / L][j % L];                                               \
                    c[j] = acc ? c[j] + v : v;                                              \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }
    FNR_TILE(fnr_tile_f32, float, fnr_vf, 16)
    FNR_TILE(fnr_tile_f64, double, fnr_vd, 8)
    #if defined(__GNUC__) && !defined(__clang__)
    #pragma GCC pop_options
    #elif defined(__clang__)
    #pragma clang fp contract(off)
    #endif
    """
    float fnr_exp_f32(float x) noexcept nogil
    float fnr_sig_f32(float z) noexcept nogil
    double fnr_sig_f64(double z) noexcept nogil
    float fnr_tanh_f32(float x) noexcept nogil
    float fnr_relu_f32(float z) noexcept nogil
    double fnr_relu_f64(double z) noexcept nogil
    float fnr_step_f32(float z, float d) noexcept nogil
    double fnr_step_f64(double z, double d) noexcept nogil
    void fnr_lstm_row_f32(float *zi, float *zf, float *zo, float *zg, const float *c_prev,
                          float *c_out, float *h_out, Py_ssize_t H) noexcept nogil
    void fnr_lstm_back_f32(float *gi, float *gf, float *go, float *gg, const float *c_prev,
                           const float *c_cur, const float *dh, float *dc,
                           Py_ssize_t H) noexcept nogil
    float FNR_FMAF(float a, float b, float c) noexcept nogil
    double FNR_FMA(double a, double b, double c) noexcept nogil
    const Py_ssize_t FNR_TR
    void fnr_tile_f32(const float *A, Py_ssize_t rs, Py_ssize_t ks, Py_ssize_t rows,
                      Py_ssize_t K, const float *P, float *C, Py_ssize_t ldc,
                      Py_ssize_t ncols, int acc) noexcept nogil
    void fnr_tile_f64(const double *A, Py_ssize_t rs, Py_ssize_t ks, Py_ssize_t rows,
                      Py_ssize_t K, const double *P, double *C, Py_ssize_t ldc,
                      Py_ssize_t ncols, int acc) noexcept nogil


cdef inline floating _fma(floating a, floating b, floating c) noexcept nogil:
    if floating is float:
        return FNR_FMAF(a, b, c)
    else:
        return FNR_FMA(a, b, c)


cdef inline floating _rexp(floating x) noexcept nogil:
    r""":math:`e^x` for :math:`x \le 0`."""
    if floating is float:
        return fnr_exp_f32(x)
    else:
        return exp(x)


cdef inline floating _rsig(floating z) noexcept nogil:
    if floating is float:
        return fnr_sig_f32(z)
    else:
        return fnr_sig_f64(z)


cdef inline floating _rtanh(floating x) noexcept nogil:
    if floating is float:
        return fnr_tanh_f32(x)
    else:
        return tanh(x)


cdef inline floating _relu(floating z) noexcept nogil:
    if floating is float:
        return fnr_relu_f32(z)
    else:
        return fnr_relu_f64(z)


cdef inline floating _step(floating z, floating d) noexcept nogil:
    """``d`` where ``z > 0``, else 0 (the ReLU's derivative times ``d``)."""
    if floating is float:
        return fnr_step_f32(z, d)
    else:
        return fnr_step_f64(z, d)


# ------------------------------------------------------------------------------- GEMM
cdef void _gemm(bint ta, bint tb, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                const floating* A, Py_ssize_t lda, const floating* B, Py_ssize_t ldb,
                floating beta, floating* C, Py_ssize_t ldc) noexcept nogil:
    """Row-major ``C (M, N) = op(A) (M, K) @ op(B) (K, N) + beta C`` by BLAS (column-major
    ``C^T = op(B)^T op(A)^T``)."""
    cdef char ca = b'T' if ta else b'N'
    cdef char cb = b'T' if tb else b'N'
    cdef int m = <int>M, n = <int>N, k = <int>K, la = <int>lda, lb = <int>ldb, lc = <int>ldc
    cdef float one32 = 1, beta32
    cdef double one64 = 1, beta64
    cdef Py_ssize_t i, j
    if M <= 0 or N <= 0:
        return
    if K <= 0:  # an empty sum
        for i in range(M):
            for j in range(N):
                C[i * ldc + j] = beta * C[i * ldc + j] if beta != 0 else 0
        return
    if floating is float:
        beta32 = beta
        sgemm(&cb, &ca, &n, &m, &k, &one32, <float*>B, &lb, <float*>A, &la, &beta32, C, &lc)
    else:
        beta64 = beta
        dgemm(&cb, &ca, &n, &m, &k, &one64, <double*>B, &lb, <double*>A, &la, &beta64, C, &lc)


def _packed_size(Py_ssize_t K, Py_ssize_t N, Py_ssize_t NB):
    """Entries of ``B (K, N)`` packed by :func:`_pack` in panels of ``NB`` columns."""
    return (N + NB - 1) // NB * NB * K


cdef void _pack(const floating* B, Py_ssize_t ldb, bint trans, Py_ssize_t K, Py_ssize_t N,
                floating* P) noexcept nogil:
    """``B[:K, :N]`` (row-major; ``trans``: ``B`` is stored transposed, ``(N, K)``) as
    panels of ``NB`` columns (one pair of AVX vectors: 16 float32, 8 float64), each ``K``
    contiguous rows of ``NB``, zeros past column ``N``: what :func:`_mm` reads."""
    cdef Py_ssize_t NB = 16 if floating is float else 8
    cdef Py_ssize_t jb = 0, k, j, c
    while jb < N:
        for k in range(K):
            for j in range(NB):
                c = jb + j
                if c >= N:
                    P[jb * K + k * NB + j] = 0
                elif trans:
                    P[jb * K + k * NB + j] = B[c * ldb + k]
                else:
                    P[jb * K + k * NB + j] = B[k * ldb + c]
        jb += NB


cdef void _mm_strided(const floating* A, Py_ssize_t rs, Py_ssize_t ks, Py_ssize_t n,
                      Py_ssize_t K, const floating* P, Py_ssize_t N, floating* C,
                      Py_ssize_t ldc, bint acc) noexcept nogil:
    """``C[:n, :N] (+)= A @ B`` with ``A``'s element ``(r, k)`` at ``A[r rs + k ks]``:
    the loop of :func:`_mm` and :func:`_mm_tn` over the register tiles."""
    cdef Py_ssize_t b, j, rows, NB = 16 if floating is float else 8
    b = 0
    while b < n:
        rows = n - b if n - b < FNR_TR else FNR_TR
        j = 0
        while j < N:
            if floating is float:
                fnr_tile_f32(A + b * rs, rs, ks, rows, K, P + j * K, C + b * ldc + j, ldc,
                             NB if j + NB <= N else N - j, acc)
            else:
                fnr_tile_f64(A + b * rs, rs, ks, rows, K, P + j * K, C + b * ldc + j, ldc,
                             NB if j + NB <= N else N - j, acc)
            j += NB
        b += rows


cdef inline void _mm(const floating* A, Py_ssize_t lda, Py_ssize_t n, Py_ssize_t K,
                     const floating* P, Py_ssize_t N, floating* C, Py_ssize_t ldc,
                     bint acc) noexcept nogil:
    """``C[:n, :N] += A[:n, :K] @ B`` (``acc``) or ``=``, ``P`` = ``B (K, N)`` packed by
    :func:`_pack` (row-major): tiles of ``FNR_TR`` rows (8, 6 or 4 by variant) by one
    panel, each block of rows sweeping all the panels.  (Panels outer for a ``P`` larger
    than the L2 cache, so that it is read once, made the H=512 LSTM's epoch slower: 0.88x
    of the minima, 8 interleaved rounds.)"""
    _mm_strided(A, lda, 1, n, K, P, N, C, ldc, acc)


cdef inline void _mm_tn(const floating* AT, Py_ssize_t ldat, Py_ssize_t n, Py_ssize_t K,
                        const floating* P, Py_ssize_t N, floating* C, Py_ssize_t ldc,
                        bint acc) noexcept nogil:
    """:func:`_mm` with ``A`` given transposed: ``C[:n, :N] (+)= AT[:K, :n]^T @ B``."""
    _mm_strided(AT, 1, ldat, n, K, P, N, C, ldc, acc)
