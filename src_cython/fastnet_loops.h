/* fastnet: the innermost loops of online (batch 1) learning on dense inputs, in plain C.
 *
 * No intrinsics: straight loops over the units k that gcc vectorises at -O3 with the
 * build variant's flags (SSE2, AVX2+FMA, AVX-512).  They live in C rather than in the
 * Cython modules for one reason: `restrict`.  Each loop reads and writes four weight
 * rows, the error terms and an accumulator row; without `restrict` gcc must check every
 * pair of them for overlap at run time, which exceeds its limit, and the loop stays
 * scalar.  The rows handed in never overlap (distinct rows of W, work buffers apart).
 *
 *   fl_fwd4/1:      z += v0 w0 + v1 w1 + v2 w2 + v3 w3        (forward: 4 rows per pass,
 *                   the sums in order, one rounding per fused multiply-add as BLAS)
 *   fl_sgd_fwd4/1:  w_r -= lr (c_r d) for each row r, then z += sum_r v_r w_r with the
 *                   updated rows (one pass over W0 for sample t's step and sample t+1's
 *                   forward: the arithmetic of the two passes, in one)
 *   fl_dot4/1:      o_r = w_r . d                              (error terms of the layer
 *                   below, 8 lanes per row summed pairwise at the end)
 *   fl_dot_sgd4/1:  the same dot products, and w_r -= lr (c_r d) in the same pass
 *
 * The SGD update is the rule of step1() in src_cython/_mlp_optim.pxi (w - lr g, with
 * g = c d the sample's gradient row), fused here; the other optimisers use step1 itself.
 * Built with -ffp-contract=off: FL_FMA is the only contraction (fmaf/fma when the variant
 * has FMA, else a*b+c), so every variant computes the formulas as written.
 */
#ifndef FASTNET_LOOPS_H
#define FASTNET_LOOPS_H
#include <math.h>
#include <stdint.h>

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define FL_FMA_f32(a, b, c) fmaf((a), (b), (c))
#define FL_FMA_f64(a, b, c) fma((a), (b), (c))
#else
#define FL_FMA_f32(a, b, c) ((a) * (b) + (c))
#define FL_FMA_f64(a, b, c) ((a) * (b) + (c))
#endif

#define FL_LANES 8

#define FL_DEFINE(T, S)                                                                      \
static inline void fl_fwd4_##S(T *restrict z, int64_t n, const T *restrict w0,               \
                               const T *restrict w1, const T *restrict w2,                   \
                               const T *restrict w3, T v0, T v1, T v2, T v3) {               \
    for (int64_t k = 0; k < n; k++)                                                         \
        z[k] = FL_FMA_##S(v3, w3[k], FL_FMA_##S(v2, w2[k], FL_FMA_##S(v1, w1[k],              \
               FL_FMA_##S(v0, w0[k], z[k]))));                                              \
}                                                                                            \
static inline void fl_fwd1_##S(T *restrict z, int64_t n, const T *restrict w0, T v0) {       \
    for (int64_t k = 0; k < n; k++)                                                         \
        z[k] = FL_FMA_##S(v0, w0[k], z[k]);                                                  \
}                                                                                            \
static inline void fl_sgd_fwd4_##S(T *restrict z, const T *restrict d, int64_t n, T lr,      \
                                   T *restrict w0, T *restrict w1, T *restrict w2,           \
                                   T *restrict w3, T c0, T c1, T c2, T c3,                   \
                                   T v0, T v1, T v2, T v3) {                                 \
    for (int64_t k = 0; k < n; k++) {                                                       \
        T dk = d[k];                                                                         \
        T a0 = w0[k] - lr * (c0 * dk), a1 = w1[k] - lr * (c1 * dk);                          \
        T a2 = w2[k] - lr * (c2 * dk), a3 = w3[k] - lr * (c3 * dk);                          \
        w0[k] = a0; w1[k] = a1; w2[k] = a2; w3[k] = a3;                                      \
        z[k] = FL_FMA_##S(v3, a3, FL_FMA_##S(v2, a2, FL_FMA_##S(v1, a1,                       \
               FL_FMA_##S(v0, a0, z[k]))));                                                 \
    }                                                                                        \
}                                                                                            \
static inline void fl_sgd_fwd1_##S(T *restrict z, const T *restrict d, int64_t n, T lr,      \
                                   T *restrict w0, T c0, T v0) {                             \
    for (int64_t k = 0; k < n; k++) {                                                       \
        T a0 = w0[k] - lr * (c0 * d[k]);                                                     \
        w0[k] = a0;                                                                          \
        z[k] = FL_FMA_##S(v0, a0, z[k]);                                                     \
    }                                                                                        \
}                                                                                            \
static inline T fl_lanesum_##S(const T *s) {                                                 \
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));                \
}                                                                                            \
static inline void fl_dot4_##S(const T *restrict d, int64_t n, const T *restrict w0,         \
                               const T *restrict w1, const T *restrict w2,                   \
                               const T *restrict w3, T *restrict out) {                      \
    T s0[FL_LANES] = {0}, s1[FL_LANES] = {0}, s2[FL_LANES] = {0}, s3[FL_LANES] = {0};        \
    int64_t k = 0;                                                                           \
    for (; k + FL_LANES <= n; k += FL_LANES)                                                 \
        for (int q = 0; q < FL_LANES; q++) {                                                 \
            T dq = d[k + q];                                                                 \
            s0[q] = FL_FMA_##S(w0[k + q], dq, s0[q]);                                        \
            s1[q] = FL_FMA_##S(w1[k + q], dq, s1[q]);                                        \
            s2[q] = FL_FMA_##S(w2[k + q], dq, s2[q]);                                        \
            s3[q] = FL_FMA_##S(w3[k + q], dq, s3[q]);                                        \
        }                                                                                    \
    for (int q = 0; k < n; k++, q++) {                                                       \
        s0[q] = FL_FMA_##S(w0[k], d[k], s0[q]); s1[q] = FL_FMA_##S(w1[k], d[k], s1[q]);      \
        s2[q] = FL_FMA_##S(w2[k], d[k], s2[q]); s3[q] = FL_FMA_##S(w3[k], d[k], s3[q]);      \
    }                                                                                        \
    out[0] = fl_lanesum_##S(s0); out[1] = fl_lanesum_##S(s1);                                \
    out[2] = fl_lanesum_##S(s2); out[3] = fl_lanesum_##S(s3);                                \
}                                                                                            \
static inline T fl_dot1_##S(const T *restrict d, int64_t n, const T *restrict w0) {          \
    T s0[FL_LANES] = {0};                                                                    \
    int64_t k = 0;                                                                           \
    for (; k + FL_LANES <= n; k += FL_LANES)                                                 \
        for (int q = 0; q < FL_LANES; q++)                                                   \
            s0[q] = FL_FMA_##S(w0[k + q], d[k + q], s0[q]);                                  \
    for (int q = 0; k < n; k++, q++)                                                         \
        s0[q] = FL_FMA_##S(w0[k], d[k], s0[q]);                                              \
    return fl_lanesum_##S(s0);                                                               \
}                                                                                            \
static inline void fl_dot_sgd4_##S(const T *restrict d, int64_t n, T lr, T *restrict w0,     \
                                   T *restrict w1, T *restrict w2, T *restrict w3,           \
                                   T c0, T c1, T c2, T c3, T *restrict out) {                \
    T s0[FL_LANES] = {0}, s1[FL_LANES] = {0}, s2[FL_LANES] = {0}, s3[FL_LANES] = {0};        \
    int64_t k = 0;                                                                           \
    for (; k + FL_LANES <= n; k += FL_LANES)                                                 \
        for (int q = 0; q < FL_LANES; q++) {                                                 \
            T dq = d[k + q], a0 = w0[k + q], a1 = w1[k + q], a2 = w2[k + q], a3 = w3[k + q]; \
            s0[q] = FL_FMA_##S(a0, dq, s0[q]); s1[q] = FL_FMA_##S(a1, dq, s1[q]);            \
            s2[q] = FL_FMA_##S(a2, dq, s2[q]); s3[q] = FL_FMA_##S(a3, dq, s3[q]);            \
            w0[k + q] = a0 - lr * (c0 * dq); w1[k + q] = a1 - lr * (c1 * dq);                \
            w2[k + q] = a2 - lr * (c2 * dq); w3[k + q] = a3 - lr * (c3 * dq);                \
        }                                                                                    \
    for (int q = 0; k < n; k++, q++) {                                                       \
        T dq = d[k], a0 = w0[k], a1 = w1[k], a2 = w2[k], a3 = w3[k];                         \
        s0[q] = FL_FMA_##S(a0, dq, s0[q]); s1[q] = FL_FMA_##S(a1, dq, s1[q]);                \
        s2[q] = FL_FMA_##S(a2, dq, s2[q]); s3[q] = FL_FMA_##S(a3, dq, s3[q]);                \
        w0[k] = a0 - lr * (c0 * dq); w1[k] = a1 - lr * (c1 * dq);                            \
        w2[k] = a2 - lr * (c2 * dq); w3[k] = a3 - lr * (c3 * dq);                            \
    }                                                                                        \
    out[0] = fl_lanesum_##S(s0); out[1] = fl_lanesum_##S(s1);                                \
    out[2] = fl_lanesum_##S(s2); out[3] = fl_lanesum_##S(s3);                                \
}                                                                                            \
static inline T fl_dot_sgd1_##S(const T *restrict d, int64_t n, T lr, T *restrict w0, T c0) {\
    T s0[FL_LANES] = {0};                                                                    \
    int64_t k = 0;                                                                           \
    for (; k + FL_LANES <= n; k += FL_LANES)                                                 \
        for (int q = 0; q < FL_LANES; q++) {                                                 \
            T dq = d[k + q], a0 = w0[k + q];                                                 \
            s0[q] = FL_FMA_##S(a0, dq, s0[q]);                                               \
            w0[k + q] = a0 - lr * (c0 * dq);                                                 \
        }                                                                                    \
    for (int q = 0; k < n; k++, q++) {                                                       \
        T dq = d[k], a0 = w0[k];                                                             \
        s0[q] = FL_FMA_##S(a0, dq, s0[q]);                                                   \
        w0[k] = a0 - lr * (c0 * dq);                                                         \
    }                                                                                        \
    return fl_lanesum_##S(s0);                                                               \
}

FL_DEFINE(float, f32)
FL_DEFINE(double, f64)

#endif
