/* Explicit-SIMD row kernels of fastnet's Cython backend (AVX-512), with the exact
 * arithmetic of the generic Cython loops they replace.
 *
 * Why: the per-sample network kernels work on short rows (a 784-50-10 network has rows
 * of 50 and 10 floats).  GCC's auto-vectoriser handles a row of runtime length with a
 * 64-float vector body that a 50-float row never enters, an 8-wide epilogue, scalar
 * code, and alias checks on every row; and it keeps running sums in memory.  These
 * kernels hold the running sums of a whole row (up to 4 registers of 16 float32 / 8
 * float64) in registers across all the rows they add, load the end of a row with a
 * masked load, and never use a masked store (slow on AMD Zen 4): a row's end is written
 * by one more full vector ending at the row's end, overlapping the last full one, or, for
 * rows shorter than one vector, element by element.
 *
 * Same numbers as the generic loops: each output is a sequential chain of fused
 * multiply-adds over the rows in the given order (the rounding of a BLAS GEMM's inner
 * loop); a "panel" of 4 samples adds each sample's terms in row order, over the union
 * of the 4 samples' non-zero inputs (a sample's zero input adds 0*w: nothing).
 *
 * Compiled only when the target has AVX-512F (setup.py's -march=native on such a
 * machine) and FASTNET_NO_SIMD is not defined (the bounds-checked build defines it, so
 * that it checks the generic loops); otherwise FASTNET_SIMD is 0 and the Cython code
 * uses its generic loops.  Index buffers given to the compaction kernels need n + 16
 * entries (whole vectors are stored).
 */
#ifndef FASTNET_SIMD_H
#define FASTNET_SIMD_H

#include <stdint.h>

#if defined(__AVX512F__) && defined(__AVX512VL__) && !defined(FASTNET_NO_SIMD)
#define FASTNET_SIMD 1
#include <immintrin.h>

#define FN_AI static inline __attribute__((always_inline))

/* ---------------------------------------------------------------- type layers */
#define F32_V __m512
#define F32_M __mmask16
#define F32_L 16
#define F32_LOAD(p) _mm512_loadu_ps(p)
#define F32_MLOAD(m, p) _mm512_maskz_loadu_ps((m), (p))
#define F32_STORE(p, v) _mm512_storeu_ps((p), (v))
#define F32_SET1(x) _mm512_set1_ps(x)
#define F32_ZERO() _mm512_setzero_ps()
#define F32_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define F32_MUL(a, b) _mm512_mul_ps((a), (b))
#define F32_SUB(a, b) _mm512_sub_ps((a), (b))
#define F32_NZ(v) _mm512_cmp_ps_mask((v), _mm512_setzero_ps(), _CMP_NEQ_UQ)
#define F32_MASK(r) ((__mmask16)(((uint32_t)1 << (r)) - 1u))

#define F64_V __m512d
#define F64_M __mmask8
#define F64_L 8
#define F64_LOAD(p) _mm512_loadu_pd(p)
#define F64_MLOAD(m, p) _mm512_maskz_loadu_pd((m), (p))
#define F64_STORE(p, v) _mm512_storeu_pd((p), (v))
#define F64_SET1(x) _mm512_set1_pd(x)
#define F64_ZERO() _mm512_setzero_pd()
#define F64_FMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define F64_MUL(a, b) _mm512_mul_pd((a), (b))
#define F64_SUB(a, b) _mm512_sub_pd((a), (b))
#define F64_NZ(v) _mm512_cmp_pd_mask((v), _mm512_setzero_pd(), _CMP_NEQ_UQ)
#define F64_MASK(r) ((__mmask8)(((uint32_t)1 << (r)) - 1u))

/* index vectors 0..L-1 as int32 lanes (float32: 16 lanes; float64: 8 in a 256-bit vector) */
FN_AI __m512i fn_iota16(int32_t base) {
    return _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                              14, 15), _mm512_set1_epi32(base));
}
FN_AI __m256i fn_iota8(int32_t base) {
    return _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(base));
}

/* ------------------------------------------------------------ compaction: float32 */
/* Indices j < n where any of x0..x{P-1} is non-zero (NaN counts as non-zero), in order,
 * into idx (capacity n + 16); returns their number.  Compress in a register, then a
 * full store (a compress to memory is slow on Zen 4). */
#define FN_COMPACT_BODY_F32(NZEXPR)                                                     \
    int64_t c = 0, j = 0;                                                               \
    for (; j + 16 <= n; j += 16) {                                                      \
        __mmask16 m = NZEXPR;                                                           \
        if (m) {                                                                        \
            _mm512_storeu_si512((void *)(idx + c),                                      \
                                _mm512_maskz_compress_epi32(m, fn_iota16((int32_t)j))); \
            c += __builtin_popcount((unsigned)m);                                       \
        }                                                                               \
    }                                                                                   \
    if (j < n) {                                                                        \
        __mmask16 m = (NZEXPR) & F32_MASK(n - j);                                       \
        _mm512_storeu_si512((void *)(idx + c),                                          \
                            _mm512_maskz_compress_epi32(m, fn_iota16((int32_t)j)));     \
        c += __builtin_popcount((unsigned)m);                                           \
    }                                                                                   \
    return c;

static inline int64_t fn_compact1_f32(const float *x0, int64_t n, int32_t *idx) {
#define NZ1 F32_NZ(F32_MLOAD(j + 16 <= n ? 0xFFFF : F32_MASK(n - j), x0 + j))
    FN_COMPACT_BODY_F32(NZ1)
#undef NZ1
}

static inline int64_t fn_compact4_f32(const float *x0, const float *x1, const float *x2,
                                      const float *x3, int64_t n, int32_t *idx) {
#define MK (j + 16 <= n ? (__mmask16)0xFFFF : F32_MASK(n - j))
#define NZ4 (F32_NZ(F32_MLOAD(MK, x0 + j)) | F32_NZ(F32_MLOAD(MK, x1 + j)) |  \
             F32_NZ(F32_MLOAD(MK, x2 + j)) | F32_NZ(F32_MLOAD(MK, x3 + j)))
    FN_COMPACT_BODY_F32(NZ4)
#undef NZ4
#undef MK
}

/* ------------------------------------------------------------ compaction: float64 */
#define FN_COMPACT_BODY_F64(NZEXPR)                                                     \
    int64_t c = 0, j = 0;                                                               \
    for (; j + 8 <= n; j += 8) {                                                        \
        __mmask8 m = NZEXPR;                                                            \
        if (m) {                                                                        \
            _mm256_storeu_si256((__m256i *)(idx + c),                                   \
                                _mm256_maskz_compress_epi32(m, fn_iota8((int32_t)j)));  \
            c += __builtin_popcount((unsigned)m);                                       \
        }                                                                               \
    }                                                                                   \
    if (j < n) {                                                                        \
        __mmask8 m = (NZEXPR) & F64_MASK(n - j);                                        \
        _mm256_storeu_si256((__m256i *)(idx + c),                                       \
                            _mm256_maskz_compress_epi32(m, fn_iota8((int32_t)j)));      \
        c += __builtin_popcount((unsigned)m);                                           \
    }                                                                                   \
    return c;

static inline int64_t fn_compact1_f64(const double *x0, int64_t n, int32_t *idx) {
#define NZ1 F64_NZ(F64_MLOAD(j + 8 <= n ? 0xFF : F64_MASK(n - j), x0 + j))
    FN_COMPACT_BODY_F64(NZ1)
#undef NZ1
}

static inline int64_t fn_compact4_f64(const double *x0, const double *x1, const double *x2,
                                      const double *x3, int64_t n, int32_t *idx) {
#define MK (j + 8 <= n ? (__mmask8)0xFF : F64_MASK(n - j))
#define NZ4 (F64_NZ(F64_MLOAD(MK, x0 + j)) | F64_NZ(F64_MLOAD(MK, x1 + j)) |  \
             F64_NZ(F64_MLOAD(MK, x2 + j)) | F64_NZ(F64_MLOAD(MK, x3 + j)))
    FN_COMPACT_BODY_F64(NZ4)
#undef NZ4
#undef MK
}

/* ----------------------------------------------------------- the row kernels */
/* Generated for T in {f32, f64}:
 *
 * fn_affine{1,4}_T(W, n, idx, c, x0[..x3], z0[..z3]):
 *     z_s[k] = sum_{t<c} x_s[idx[t]] * W[idx[t]*n + k]   (k < n; sequential FMAs from 0)
 *   z_s needs room for n rounded up to whole vectors (full stores).
 *
 * fn_axpy{1,4}_T(G, n, idx, c, x0[..x3], d0[..d3]):
 *     G[idx[t]*n + k] += x_0[idx[t]]*d_0[k] (+ x_1 d_1 + ...: FMAs in sample order)
 *   each row read and written once; d_s readable up to n rounded up to whole vectors.
 *
 * fn_sgd1_T(W, n, idx, c, x, d, lr):  W[idx[t]*n + k] -= lr * (x[idx[t]] * d[k])
 *   (rounded as the reference's params -= lr * grad: no fused multiply-add).
 *
 */
#define FN_DEFINE_ROW_KERNELS(T, S, P_)                                                  \
                                                                                        \
FN_AI void fn_affine_blk1_##S(int nv, const T *W, int64_t n, int64_t kb,                \
                              const int32_t *idx, int64_t c, const T *x0, T *z0) {      \
    P_##_V a0 = P_##_ZERO(), a1 = P_##_ZERO(), a2 = P_##_ZERO(), a3 = P_##_ZERO();      \
    int64_t rem = n - kb - (int64_t)(nv - 1) * P_##_L;                                  \
    P_##_M mk = rem >= P_##_L ? (P_##_M)~0 : P_##_MASK(rem);                            \
    for (int64_t t = 0; t < c; t++) {                                                   \
        int64_t i = idx[t];                                                             \
        const T *r = W + i * n + kb;                                                    \
        P_##_V v = P_##_SET1(x0[i]);                                                    \
        if (nv == 1) { a0 = P_##_FMA(v, P_##_MLOAD(mk, r), a0); }                       \
        else if (nv == 2) {                                                             \
            a0 = P_##_FMA(v, P_##_LOAD(r), a0);                                         \
            a1 = P_##_FMA(v, P_##_MLOAD(mk, r + P_##_L), a1); }                         \
        else if (nv == 3) {                                                             \
            a0 = P_##_FMA(v, P_##_LOAD(r), a0);                                         \
            a1 = P_##_FMA(v, P_##_LOAD(r + P_##_L), a1);                                \
            a2 = P_##_FMA(v, P_##_MLOAD(mk, r + 2 * P_##_L), a2); }                     \
        else {                                                                          \
            a0 = P_##_FMA(v, P_##_LOAD(r), a0);                                         \
            a1 = P_##_FMA(v, P_##_LOAD(r + P_##_L), a1);                                \
            a2 = P_##_FMA(v, P_##_LOAD(r + 2 * P_##_L), a2);                            \
            a3 = P_##_FMA(v, P_##_MLOAD(mk, r + 3 * P_##_L), a3); }                     \
    }                                                                                   \
    P_##_STORE(z0 + kb, a0);                                                            \
    if (nv > 1) P_##_STORE(z0 + kb + P_##_L, a1);                                       \
    if (nv > 2) P_##_STORE(z0 + kb + 2 * P_##_L, a2);                                   \
    if (nv > 3) P_##_STORE(z0 + kb + 3 * P_##_L, a3);                                   \
}                                                                                       \
                                                                                        \
static inline void fn_affine1_##S(const T *W, int64_t n, const int32_t *idx, int64_t c,  \
                                  const T *x0, T *z0) {                                 \
    for (int64_t kb = 0; kb < n; kb += 4 * P_##_L) {                                    \
        int64_t left = n - kb;                                                          \
        int nv = left >= 4 * P_##_L ? 4 : (int)((left + P_##_L - 1) / P_##_L);          \
        switch (nv) {                                                                   \
        case 1: fn_affine_blk1_##S(1, W, n, kb, idx, c, x0, z0); break;                 \
        case 2: fn_affine_blk1_##S(2, W, n, kb, idx, c, x0, z0); break;                 \
        case 3: fn_affine_blk1_##S(3, W, n, kb, idx, c, x0, z0); break;                 \
        default: fn_affine_blk1_##S(4, W, n, kb, idx, c, x0, z0); break;                \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
FN_AI void fn_affine_blk4_##S(int nv, const T *W, int64_t n, int64_t kb,                \
                              const int32_t *idx, int64_t c, const T *x0, const T *x1,   \
                              const T *x2, const T *x3, T *z0, T *z1, T *z2, T *z3) {    \
    P_##_V a00 = P_##_ZERO(), a01 = P_##_ZERO(), a02 = P_##_ZERO(), a03 = P_##_ZERO();  \
    P_##_V a10 = P_##_ZERO(), a11 = P_##_ZERO(), a12 = P_##_ZERO(), a13 = P_##_ZERO();  \
    P_##_V a20 = P_##_ZERO(), a21 = P_##_ZERO(), a22 = P_##_ZERO(), a23 = P_##_ZERO();  \
    P_##_V a30 = P_##_ZERO(), a31 = P_##_ZERO(), a32 = P_##_ZERO(), a33 = P_##_ZERO();  \
    int64_t rem = n - kb - (int64_t)(nv - 1) * P_##_L;                                  \
    P_##_M mk = rem >= P_##_L ? (P_##_M)~0 : P_##_MASK(rem);                            \
    for (int64_t t = 0; t < c; t++) {                                                   \
        int64_t i = idx[t];                                                             \
        const T *r = W + i * n + kb;                                                    \
        P_##_V v0 = P_##_SET1(x0[i]), v1 = P_##_SET1(x1[i]);                            \
        P_##_V v2 = P_##_SET1(x2[i]), v3 = P_##_SET1(x3[i]);                            \
        P_##_V w0 = nv == 1 ? P_##_MLOAD(mk, r) : P_##_LOAD(r);                         \
        a00 = P_##_FMA(v0, w0, a00); a10 = P_##_FMA(v1, w0, a10);                       \
        a20 = P_##_FMA(v2, w0, a20); a30 = P_##_FMA(v3, w0, a30);                       \
        if (nv > 1) {                                                                   \
            P_##_V w1 = nv == 2 ? P_##_MLOAD(mk, r + P_##_L) : P_##_LOAD(r + P_##_L);   \
            a01 = P_##_FMA(v0, w1, a01); a11 = P_##_FMA(v1, w1, a11);                   \
            a21 = P_##_FMA(v2, w1, a21); a31 = P_##_FMA(v3, w1, a31); }                 \
        if (nv > 2) {                                                                   \
            P_##_V w2 = nv == 3 ? P_##_MLOAD(mk, r + 2 * P_##_L)                        \
                                : P_##_LOAD(r + 2 * P_##_L);                            \
            a02 = P_##_FMA(v0, w2, a02); a12 = P_##_FMA(v1, w2, a12);                   \
            a22 = P_##_FMA(v2, w2, a22); a32 = P_##_FMA(v3, w2, a32); }                 \
        if (nv > 3) {                                                                   \
            P_##_V w3 = P_##_MLOAD(mk, r + 3 * P_##_L);                                 \
            a03 = P_##_FMA(v0, w3, a03); a13 = P_##_FMA(v1, w3, a13);                   \
            a23 = P_##_FMA(v2, w3, a23); a33 = P_##_FMA(v3, w3, a33); }                 \
    }                                                                                   \
    P_##_STORE(z0 + kb, a00); P_##_STORE(z1 + kb, a10);                                 \
    P_##_STORE(z2 + kb, a20); P_##_STORE(z3 + kb, a30);                                 \
    if (nv > 1) {                                                                       \
        P_##_STORE(z0 + kb + P_##_L, a01); P_##_STORE(z1 + kb + P_##_L, a11);           \
        P_##_STORE(z2 + kb + P_##_L, a21); P_##_STORE(z3 + kb + P_##_L, a31); }         \
    if (nv > 2) {                                                                       \
        P_##_STORE(z0 + kb + 2 * P_##_L, a02); P_##_STORE(z1 + kb + 2 * P_##_L, a12);   \
        P_##_STORE(z2 + kb + 2 * P_##_L, a22); P_##_STORE(z3 + kb + 2 * P_##_L, a32); } \
    if (nv > 3) {                                                                       \
        P_##_STORE(z0 + kb + 3 * P_##_L, a03); P_##_STORE(z1 + kb + 3 * P_##_L, a13);   \
        P_##_STORE(z2 + kb + 3 * P_##_L, a23); P_##_STORE(z3 + kb + 3 * P_##_L, a33); } \
}                                                                                       \
                                                                                        \
static inline void fn_affine4_##S(const T *W, int64_t n, const int32_t *idx, int64_t c,  \
                                  const T *x0, const T *x1, const T *x2, const T *x3,    \
                                  T *z0, T *z1, T *z2, T *z3) {                          \
    for (int64_t kb = 0; kb < n; kb += 4 * P_##_L) {                                    \
        int64_t left = n - kb;                                                          \
        int nv = left >= 4 * P_##_L ? 4 : (int)((left + P_##_L - 1) / P_##_L);          \
        switch (nv) {                                                                   \
        case 1: fn_affine_blk4_##S(1, W, n, kb, idx, c, x0, x1, x2, x3, z0, z1, z2, z3);  \
            break;                                                                      \
        case 2: fn_affine_blk4_##S(2, W, n, kb, idx, c, x0, x1, x2, x3, z0, z1, z2, z3);  \
            break;                                                                      \
        case 3: fn_affine_blk4_##S(3, W, n, kb, idx, c, x0, x1, x2, x3, z0, z1, z2, z3);  \
            break;                                                                      \
        default: fn_affine_blk4_##S(4, W, n, kb, idx, c, x0, x1, x2, x3, z0, z1, z2, z3); \
            break;                                                                      \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* one row update: G[0:n] += sum_s xs_s * d_s[0:n] (np = 1 or 4 samples) in registers: \
 * n >= L: full vectors, plus one vector ending at the row's end computed from the      \
 * original values first (where it overlaps the last full vector, both hold the same   \
 * numbers); n < L: a masked load and element-by-element stores. */                    \
FN_AI void fn_row_update_##S(int np, T *g, int64_t n, P_##_V x0, P_##_V x1, P_##_V x2,    \
                             P_##_V x3, const T *d0, const T *d1, const T *d2,           \
                             const T *d3) {                                             \
    if (n >= P_##_L) {                                                                  \
        int64_t last = n - P_##_L, k;                                                   \
        P_##_V e = P_##_ZERO();                                                         \
        if (n % P_##_L) {                                                               \
            e = P_##_LOAD(g + last);                                                    \
            e = P_##_FMA(x0, P_##_LOAD(d0 + last), e);                                  \
            if (np > 1) {                                                               \
                e = P_##_FMA(x1, P_##_LOAD(d1 + last), e);                              \
                e = P_##_FMA(x2, P_##_LOAD(d2 + last), e);                              \
                e = P_##_FMA(x3, P_##_LOAD(d3 + last), e); }                            \
        }                                                                               \
        for (k = 0; k + P_##_L <= n; k += P_##_L) {                                     \
            P_##_V a = P_##_LOAD(g + k);                                                \
            a = P_##_FMA(x0, P_##_LOAD(d0 + k), a);                                     \
            if (np > 1) {                                                               \
                a = P_##_FMA(x1, P_##_LOAD(d1 + k), a);                                 \
                a = P_##_FMA(x2, P_##_LOAD(d2 + k), a);                                 \
                a = P_##_FMA(x3, P_##_LOAD(d3 + k), a); }                               \
            P_##_STORE(g + k, a);                                                       \
        }                                                                               \
        if (n % P_##_L) P_##_STORE(g + last, e);                                        \
    } else {                                                                            \
        T tmp[P_##_L];                                                                  \
        P_##_V a = P_##_MLOAD(P_##_MASK(n), g);                                         \
        a = P_##_FMA(x0, P_##_LOAD(d0), a);                                             \
        if (np > 1) {                                                                   \
            a = P_##_FMA(x1, P_##_LOAD(d1), a);                                         \
            a = P_##_FMA(x2, P_##_LOAD(d2), a);                                         \
            a = P_##_FMA(x3, P_##_LOAD(d3), a); }                                       \
        P_##_STORE(tmp, a);                                                             \
        for (int64_t k = 0; k < n; k++) g[k] = tmp[k];                                  \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* rows of nf (0..3) full vectors and a tail (nf = 0: a row shorter than one vector), the \
 * np (1 or 4) vectors d_s of each position loaded once and kept in registers */        \
FN_AI void fn_axpy_fix_##S(int np, int nf, int tail, T *G, int64_t n, const int32_t *idx, \
                           int64_t c, const T *x0, const T *x1, const T *x2,             \
                           const T *x3, const T *d0, const T *d1, const T *d2,           \
                           const T *d3, int sgd, T lr) {                                \
    P_##_V lrv = P_##_SET1(lr);                                                         \
    const int64_t last = nf > 0 ? n - P_##_L : 0;                                       \
    P_##_V z = P_##_ZERO();                                                             \
    P_##_V e0 = tail ? P_##_LOAD(d0 + last) : z, e1 = z, e2 = z, e3 = z;                \
    P_##_V f00 = z, f01 = z, f02 = z, f10 = z, f11 = z, f12 = z;                        \
    P_##_V f20 = z, f21 = z, f22 = z, f30 = z, f31 = z, f32 = z;                        \
    if (nf > 0) f00 = P_##_LOAD(d0);                                                    \
    if (nf > 1) f01 = P_##_LOAD(d0 + P_##_L);                                           \
    if (nf > 2) f02 = P_##_LOAD(d0 + 2 * P_##_L);                                       \
    if (np > 1) {                                                                       \
        if (tail) { e1 = P_##_LOAD(d1 + last); e2 = P_##_LOAD(d2 + last);                \
                    e3 = P_##_LOAD(d3 + last); }                                        \
        if (nf > 0) { f10 = P_##_LOAD(d1); f20 = P_##_LOAD(d2); f30 = P_##_LOAD(d3); }   \
        if (nf > 1) { f11 = P_##_LOAD(d1 + P_##_L); f21 = P_##_LOAD(d2 + P_##_L);        \
                      f31 = P_##_LOAD(d3 + P_##_L); }                                   \
        if (nf > 2) { f12 = P_##_LOAD(d1 + 2 * P_##_L); f22 = P_##_LOAD(d2 + 2 * P_##_L); \
                      f32 = P_##_LOAD(d3 + 2 * P_##_L); }                               \
    }                                                                                   \
    for (int64_t t = 0; t < c; t++) {                                                   \
        int64_t i = idx[t];                                                             \
        T *g = G + i * n;                                                               \
        P_##_V v0 = P_##_SET1(x0[i]), v1 = z, v2 = z, v3 = z, a, e = z;                 \
        if (np > 1) { v1 = P_##_SET1(x1[i]); v2 = P_##_SET1(x2[i]); v3 = P_##_SET1(x3[i]); } \
        if (nf == 0) {                                                                  \
            T tmp[P_##_L];                                                              \
            a = P_##_MLOAD(P_##_MASK(n), g);                                            \
            a = sgd ? P_##_SUB(a, P_##_MUL(lrv, P_##_MUL(v0, e0))) : P_##_FMA(v0, e0, a);  \
            if (np > 1) { a = P_##_FMA(v1, e1, a); a = P_##_FMA(v2, e2, a);              \
                          a = P_##_FMA(v3, e3, a); }                                    \
            P_##_STORE(tmp, a);                                                         \
            for (int64_t k = 0; k < n; k++) g[k] = tmp[k];                              \
            continue;                                                                   \
        }                                                                               \
        if (tail) {                                                                     \
            e = P_##_LOAD(g + last);                                                    \
            e = sgd ? P_##_SUB(e, P_##_MUL(lrv, P_##_MUL(v0, e0))) : P_##_FMA(v0, e0, e);  \
            if (np > 1) { e = P_##_FMA(v1, e1, e); e = P_##_FMA(v2, e2, e);              \
                          e = P_##_FMA(v3, e3, e); }                                    \
        }                                                                               \
        a = P_##_LOAD(g);                                                               \
        a = sgd ? P_##_SUB(a, P_##_MUL(lrv, P_##_MUL(v0, f00))) : P_##_FMA(v0, f00, a);    \
        if (np > 1) { a = P_##_FMA(v1, f10, a); a = P_##_FMA(v2, f20, a);                \
                      a = P_##_FMA(v3, f30, a); }                                       \
        P_##_STORE(g, a);                                                               \
        if (nf > 1) {                                                                   \
            a = P_##_LOAD(g + P_##_L);                                                  \
            a = sgd ? P_##_SUB(a, P_##_MUL(lrv, P_##_MUL(v0, f01))) : P_##_FMA(v0, f01, a); \
            if (np > 1) { a = P_##_FMA(v1, f11, a); a = P_##_FMA(v2, f21, a);            \
                          a = P_##_FMA(v3, f31, a); }                                   \
            P_##_STORE(g + P_##_L, a);                                                  \
        }                                                                               \
        if (nf > 2) {                                                                   \
            a = P_##_LOAD(g + 2 * P_##_L);                                              \
            a = sgd ? P_##_SUB(a, P_##_MUL(lrv, P_##_MUL(v0, f02))) : P_##_FMA(v0, f02, a); \
            if (np > 1) { a = P_##_FMA(v1, f12, a); a = P_##_FMA(v2, f22, a);            \
                          a = P_##_FMA(v3, f32, a); }                                   \
            P_##_STORE(g + 2 * P_##_L, a);                                              \
        }                                                                               \
        if (tail) P_##_STORE(g + last, e);                                              \
    }                                                                                   \
}                                                                                       \
                                                                                        \
FN_AI void fn_axpy_any_##S(int np, T *G, int64_t n, const int32_t *idx, int64_t c,       \
                           const T *x0, const T *x1, const T *x2, const T *x3,           \
                           const T *d0, const T *d1, const T *d2, const T *d3,           \
                           int sgd, T lr) {                                             \
    int64_t nf = n / P_##_L;                                                            \
    int tail = (n % P_##_L) != 0;                                                       \
    P_##_V z = P_##_ZERO();                                                             \
    if (nf > 3 && sgd) {                                                                \
        for (int64_t t = 0; t < c; t++) {                                               \
            T *g = G + (int64_t)idx[t] * n;                                             \
            T v = x0[idx[t]];                                                           \
            for (int64_t k = 0; k < n; k++) g[k] -= lr * (v * d0[k]);                   \
        }                                                                               \
        return;                                                                         \
    }                                                                                   \
    if (nf > 3) {                                                                       \
        for (int64_t t = 0; t < c; t++) {                                               \
            int64_t i = idx[t];                                                         \
            fn_row_update_##S(np, G + i * n, n, P_##_SET1(x0[i]),                        \
                              np > 1 ? P_##_SET1(x1[i]) : z,                            \
                              np > 1 ? P_##_SET1(x2[i]) : z,                            \
                              np > 1 ? P_##_SET1(x3[i]) : z, d0, d1, d2, d3);           \
        }                                                                               \
        return;                                                                         \
    }                                                                                   \
    switch ((int)nf * 2 + tail) {                                                       \
    case 1: fn_axpy_fix_##S(np, 0, 1, G, n, idx, c, x0, x1, x2, x3, d0, d1, d2, d3, \
        sgd, lr); break; \
    case 2: fn_axpy_fix_##S(np, 1, 0, G, n, idx, c, x0, x1, x2, x3, d0, d1, d2, d3, \
        sgd, lr); break; \
    case 3: fn_axpy_fix_##S(np, 1, 1, G, n, idx, c, x0, x1, x2, x3, d0, d1, d2, d3, \
        sgd, lr); break; \
    case 4: fn_axpy_fix_##S(np, 2, 0, G, n, idx, c, x0, x1, x2, x3, d0, d1, d2, d3, \
        sgd, lr); break; \
    case 5: fn_axpy_fix_##S(np, 2, 1, G, n, idx, c, x0, x1, x2, x3, d0, d1, d2, d3, \
        sgd, lr); break; \
    case 6: fn_axpy_fix_##S(np, 3, 0, G, n, idx, c, x0, x1, x2, x3, d0, d1, d2, d3, \
        sgd, lr); break; \
    case 7: fn_axpy_fix_##S(np, 3, 1, G, n, idx, c, x0, x1, x2, x3, d0, d1, d2, d3, \
        sgd, lr); break; \
    default: break;                                                                     \
    }                                                                                   \
}                                                                                       \
                                                                                        \
static inline void fn_axpy1_##S(T *G, int64_t n, const int32_t *idx, int64_t c,          \
                                const T *x0, const T *d0) {                             \
    fn_axpy_any_##S(1, G, n, idx, c, x0, x0, x0, x0, d0, d0, d0, d0, 0, 0);             \
}                                                                                       \
                                                                                        \
static inline void fn_axpy4_##S(T *G, int64_t n, const int32_t *idx, int64_t c,          \
                                const T *x0, const T *x1, const T *x2, const T *x3,      \
                                const T *d0, const T *d1, const T *d2, const T *d3) {    \
    fn_axpy_any_##S(4, G, n, idx, c, x0, x1, x2, x3, d0, d1, d2, d3, 0, 0);             \
}                                                                                       \
                                                                                        \
/* online SGD on the rows of one sample: W[idx[t]*n + k] -= lr * (x[idx[t]] * d[k]),     \
 * rounded as the reference's params -= lr * grad (no fused multiply-add) */            \
static inline void fn_sgd1_##S(T *W, int64_t n, const int32_t *idx, int64_t c,           \
                               const T *x0, const T *d0, T lr) {                        \
    fn_axpy_any_##S(1, W, n, idx, c, x0, x0, x0, x0, d0, d0, d0, d0, 1, lr);            \
}

/* the error terms sent back to the layer below, for the 4 samples of a panel:
 *   out_s[j] = sum_{k<K} WT[k*J + j] * d_s[k]    (j < J; sequential FMAs over k from 0)
 * WT = the transposed weight rows (K rows of J), so that the J outputs are vectorised;
 * out_s need room for J rounded up to whole vectors (full stores). */
#define FN_DEFINE_BACKDELTA(T, S, P_)                                                    \
FN_AI void fn_backdelta_blk_##S(int nv, const T *WT, int64_t J, int64_t K, int64_t jb,   \
                                const T *d0, const T *d1, const T *d2, const T *d3,      \
                                T *o0, T *o1, T *o2, T *o3) {                            \
    P_##_V a00 = P_##_ZERO(), a01 = a00, a02 = a00, a03 = a00;                          \
    P_##_V a10 = a00, a11 = a00, a12 = a00, a13 = a00;                                  \
    P_##_V a20 = a00, a21 = a00, a22 = a00, a23 = a00;                                  \
    P_##_V a30 = a00, a31 = a00, a32 = a00, a33 = a00;                                  \
    int64_t rem = J - jb - (int64_t)(nv - 1) * P_##_L;                                  \
    P_##_M mk = rem >= P_##_L ? (P_##_M)~0 : P_##_MASK(rem);                            \
    for (int64_t k = 0; k < K; k++) {                                                   \
        const T *r = WT + k * J + jb;                                                   \
        P_##_V v0 = P_##_SET1(d0[k]), v1 = P_##_SET1(d1[k]);                            \
        P_##_V v2 = P_##_SET1(d2[k]), v3 = P_##_SET1(d3[k]);                            \
        P_##_V w0 = nv == 1 ? P_##_MLOAD(mk, r) : P_##_LOAD(r);                         \
        a00 = P_##_FMA(w0, v0, a00); a10 = P_##_FMA(w0, v1, a10);                       \
        a20 = P_##_FMA(w0, v2, a20); a30 = P_##_FMA(w0, v3, a30);                       \
        if (nv > 1) {                                                                   \
            P_##_V w1 = nv == 2 ? P_##_MLOAD(mk, r + P_##_L) : P_##_LOAD(r + P_##_L);   \
            a01 = P_##_FMA(w1, v0, a01); a11 = P_##_FMA(w1, v1, a11);                   \
            a21 = P_##_FMA(w1, v2, a21); a31 = P_##_FMA(w1, v3, a31); }                 \
        if (nv > 2) {                                                                   \
            P_##_V w2 = nv == 3 ? P_##_MLOAD(mk, r + 2 * P_##_L)                        \
                                : P_##_LOAD(r + 2 * P_##_L);                            \
            a02 = P_##_FMA(w2, v0, a02); a12 = P_##_FMA(w2, v1, a12);                   \
            a22 = P_##_FMA(w2, v2, a22); a32 = P_##_FMA(w2, v3, a32); }                 \
        if (nv > 3) {                                                                   \
            P_##_V w3 = P_##_MLOAD(mk, r + 3 * P_##_L);                                 \
            a03 = P_##_FMA(w3, v0, a03); a13 = P_##_FMA(w3, v1, a13);                   \
            a23 = P_##_FMA(w3, v2, a23); a33 = P_##_FMA(w3, v3, a33); }                 \
    }                                                                                   \
    P_##_STORE(o0 + jb, a00); P_##_STORE(o1 + jb, a10);                                 \
    P_##_STORE(o2 + jb, a20); P_##_STORE(o3 + jb, a30);                                 \
    if (nv > 1) {                                                                       \
        P_##_STORE(o0 + jb + P_##_L, a01); P_##_STORE(o1 + jb + P_##_L, a11);           \
        P_##_STORE(o2 + jb + P_##_L, a21); P_##_STORE(o3 + jb + P_##_L, a31); }         \
    if (nv > 2) {                                                                       \
        P_##_STORE(o0 + jb + 2 * P_##_L, a02); P_##_STORE(o1 + jb + 2 * P_##_L, a12);   \
        P_##_STORE(o2 + jb + 2 * P_##_L, a22); P_##_STORE(o3 + jb + 2 * P_##_L, a32); } \
    if (nv > 3) {                                                                       \
        P_##_STORE(o0 + jb + 3 * P_##_L, a03); P_##_STORE(o1 + jb + 3 * P_##_L, a13);   \
        P_##_STORE(o2 + jb + 3 * P_##_L, a23); P_##_STORE(o3 + jb + 3 * P_##_L, a33); } \
}                                                                                       \
                                                                                        \
static inline void fn_backdelta4_##S(const T *WT, int64_t J, int64_t K, const T *d0,    \
                                     const T *d1, const T *d2, const T *d3, T *o0,       \
                                     T *o1, T *o2, T *o3) {                              \
    for (int64_t jb = 0; jb < J; jb += 4 * P_##_L) {                                    \
        int64_t left = J - jb;                                                          \
        int nv = left >= 4 * P_##_L ? 4 : (int)((left + P_##_L - 1) / P_##_L);          \
        switch (nv) {                                                                   \
        case 1: fn_backdelta_blk_##S(1, WT, J, K, jb, d0, d1, d2, d3, o0, o1, o2, o3); break; \
        case 2: fn_backdelta_blk_##S(2, WT, J, K, jb, d0, d1, d2, d3, o0, o1, o2, o3); break; \
        case 3: fn_backdelta_blk_##S(3, WT, J, K, jb, d0, d1, d2, d3, o0, o1, o2, o3); break; \
        default: fn_backdelta_blk_##S(4, WT, J, K, jb, d0, d1, d2, d3, o0, o1, o2, o3); break; \
        }                                                                               \
    }                                                                                   \
}

FN_DEFINE_BACKDELTA(float, f32, F32)
FN_DEFINE_BACKDELTA(double, f64, F64)

/* dot product x . w of n entries with four vector accumulators (a fixed order for a given n;
 * not a sequential sum: for long rows only) */
static inline float fn_dot_f32(const float *x, const float *w, int64_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t j = 0;
    for (; j + 64 <= n; j += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + j), _mm512_loadu_ps(w + j), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + j + 16), _mm512_loadu_ps(w + j + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + j + 32), _mm512_loadu_ps(w + j + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + j + 48), _mm512_loadu_ps(w + j + 48), a3);
    }
    for (; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : F32_MASK(n - j);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + j), _mm512_maskz_loadu_ps(m, w + j), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

static inline double fn_dot_f64(const double *x, const double *w, int64_t n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        a0 = _mm512_fmadd_pd(_mm512_loadu_pd(x + j), _mm512_loadu_pd(w + j), a0);
        a1 = _mm512_fmadd_pd(_mm512_loadu_pd(x + j + 8), _mm512_loadu_pd(w + j + 8), a1);
        a2 = _mm512_fmadd_pd(_mm512_loadu_pd(x + j + 16), _mm512_loadu_pd(w + j + 16), a2);
        a3 = _mm512_fmadd_pd(_mm512_loadu_pd(x + j + 24), _mm512_loadu_pd(w + j + 24), a3);
    }
    for (; j < n; j += 8) {
        __mmask8 m = n - j >= 8 ? (__mmask8)0xFF : F64_MASK(n - j);
        a0 = _mm512_fmadd_pd(_mm512_maskz_loadu_pd(m, x + j), _mm512_maskz_loadu_pd(m, w + j), a0);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
}

FN_DEFINE_ROW_KERNELS(float, f32, F32)
FN_DEFINE_ROW_KERNELS(double, f64, F64)

#else  /* no AVX-512: the Cython code runs its generic loops; these are never called */
#define FASTNET_SIMD 0
static inline int64_t fn_compact1_f32(const float *x0, int64_t n, int32_t *idx) { return 0; }
static inline int64_t fn_compact4_f32(const float *x0, const float *x1, const float *x2,
                                      const float *x3, int64_t n, int32_t *idx) { return 0; }
static inline int64_t fn_compact1_f64(const double *x0, int64_t n, int32_t *idx) { return 0; }
static inline int64_t fn_compact4_f64(const double *x0, const double *x1, const double *x2,
                                      const double *x3, int64_t n, int32_t *idx) { return 0; }
#define FN_STUBS(T, S)                                                                  \
static inline void fn_affine1_##S(const T *W, int64_t n, const int32_t *idx, int64_t c,  \
                                  const T *x0, T *z0) {}                                \
static inline void fn_affine4_##S(const T *W, int64_t n, const int32_t *idx, int64_t c,  \
                                  const T *x0, const T *x1, const T *x2, const T *x3,    \
                                  T *z0, T *z1, T *z2, T *z3) {}                         \
static inline void fn_axpy1_##S(T *G, int64_t n, const int32_t *idx, int64_t c,          \
                                const T *x0, const T *d0) {}                            \
static inline void fn_axpy4_##S(T *G, int64_t n, const int32_t *idx, int64_t c,          \
                                const T *x0, const T *x1, const T *x2, const T *x3,      \
                                const T *d0, const T *d1, const T *d2, const T *d3) {}   \
static inline void fn_sgd1_##S(T *W, int64_t n, const int32_t *idx, int64_t c,           \
                               const T *x0, const T *d0, T lr) {}
static inline void fn_backdelta4_f32(const float *WT, int64_t J, int64_t K, const float *d0,
                                     const float *d1, const float *d2, const float *d3,
                                     float *o0, float *o1, float *o2, float *o3) {}
static inline void fn_backdelta4_f64(const double *WT, int64_t J, int64_t K, const double *d0,
                                     const double *d1, const double *d2, const double *d3,
                                     double *o0, double *o1, double *o2, double *o3) {}
static inline float fn_dot_f32(const float *x, const float *w, int64_t n) { return 0; }
static inline double fn_dot_f64(const double *x, const double *w, int64_t n) { return 0; }
FN_STUBS(float, f32)
FN_STUBS(double, f64)
#endif

#endif  /* FASTNET_SIMD_H */
