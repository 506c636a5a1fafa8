/* fastnet: the direct convolution's inner loops (src_cython/_conv_ops.pxi, conv_forward_direct).
 *
 * A convolution with F = 8 or 16 filters is a GEMM with N = F: too thin for BLAS, whose
 * packing of the im2col patches costs as much as the product (the default net's first layer,
 * 1 -> 8 filters of 5x5, ran at 8 GFLOP/s through im2col + sgemm).  Here each output pixel's
 * 8 filters stay in one vector register while the window is read straight from the
 * channels-last image: a window row is kw*C contiguous values, and so is the matching run of
 * weight rows (kw*C rows of F), so the (dx, c) loop is one flat loop over t.
 *
 *   fc_block4: 4 output pixels side by side (input step `step` apart), filters f0..f0+7,
 *              window rows dy0..dy1-1, whole window rows (interior pixels);
 *   fc_px1:    one pixel, its window's rows and columns clipped to the image (edges);
 *   fc_wgrad4/1: the weight gradient of 4 taps (or 1) over a zero-padded image (float32).
 *
 * Intrinsics (AVX2 + FMA, used by the avx2 and avx512 build variants): gcc kept the 32
 * accumulators of the same loop written in plain C as scalars (it unrolled the 8-lane loop
 * and did not vectorise it), 5 GFLOP/s, against 19 to 30 here; BENCHMARKS.md, issue 14.
 * Without AVX2 (the baseline variant) the plain loops below are compiled but the direct path
 * is off by default (FC_SIMD 0: not measured to beat im2col + GEMM); CI tests them switched on.  Products are fused multiply-adds in window order
 * (dy, dx, c), as the im2col GEMM's are in k.
 */
#ifndef FASTNET_CONV_H
#define FASTNET_CONV_H
#include <math.h>
#include <stdint.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define FC_SIMD 1
#else
#define FC_SIMD 0
#endif

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define FC_FMA_f32(a, b, c) fmaf((a), (b), (c))
#define FC_FMA_f64(a, b, c) fma((a), (b), (c))
#else
#define FC_FMA_f32(a, b, c) ((a) * (b) + (c))
#define FC_FMA_f64(a, b, c) ((a) * (b) + (c))
#endif

/* The plain loops (the variants without AVX2 + FMA), one definition per float type. */
#define FC_PLAIN(T, S)                                                                       \
static inline void fc_block4_plain_##S(const T *x, int64_t rs, int64_t step, int64_t rows,   \
                                       int64_t n, const T *w, int64_t F, T *out) {           \
    for (int i = 0; i < 4; i++)                                                              \
        for (int k = 0; k < 8; k++)                                                          \
            out[i * F + k] = 0;                                                              \
    for (int64_t r = 0; r < rows; r++)                                                       \
        for (int64_t t = 0; t < n; t++)                                                      \
            for (int i = 0; i < 4; i++) {                                                    \
                T v = x[r * rs + i * step + t];                                              \
                for (int k = 0; k < 8; k++)                                                  \
                    out[i * F + k] = FC_FMA_##S(v, w[(r * n + t) * F + k], out[i * F + k]);  \
            }                                                                                \
}                                                                                            \
static inline void fc_px1_plain_##S(const T *x, int64_t rs, int64_t rows, int64_t n,         \
                                    int64_t len, const T *w, int64_t F, T *out) {            \
    for (int k = 0; k < 8; k++)                                                              \
        out[k] = 0;                                                                          \
    for (int64_t r = 0; r < rows; r++)                                                       \
        for (int64_t t = 0; t < len; t++)                                                    \
            for (int k = 0; k < 8; k++)                                                      \
                out[k] = FC_FMA_##S(x[r * rs + t], w[(r * n + t) * F + k], out[k]);          \
}
#if !FC_SIMD
FC_PLAIN(float, f32)
FC_PLAIN(double, f64)
#endif

/* x: the first pixel's window at row dy0; rs: an image row (W*C); n: kw*C; w: the weights
 * of row dy0 at filter f0 (row stride F); out: the first pixel's 8 outputs (pixel stride F) */
static inline void fc_block4_f32(const float *x, int64_t rs, int64_t step, int64_t rows,
                                 int64_t n, const float *w, int64_t F, float *out) {
#if FC_SIMD
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * rs, *wr = w + r * n * F;
        for (int64_t t = 0; t < n; t++) {
            __m256 wv = _mm256_loadu_ps(wr + t * F);
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + t), wv, a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + step + t), wv, a1);
            a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + 2 * step + t), wv, a2);
            a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + 3 * step + t), wv, a3);
        }
    }
    _mm256_storeu_ps(out, a0);
    _mm256_storeu_ps(out + F, a1);
    _mm256_storeu_ps(out + 2 * F, a2);
    _mm256_storeu_ps(out + 3 * F, a3);
#else
    fc_block4_plain_f32(x, rs, step, rows, n, w, F, out);
#endif
}

static inline void fc_block4_f64(const double *x, int64_t rs, int64_t step, int64_t rows,
                                 int64_t n, const double *w, int64_t F, double *out) {
#if FC_SIMD
    __m256d a0 = _mm256_setzero_pd(), b0 = _mm256_setzero_pd();
    __m256d a1 = _mm256_setzero_pd(), b1 = _mm256_setzero_pd();
    __m256d a2 = _mm256_setzero_pd(), b2 = _mm256_setzero_pd();
    __m256d a3 = _mm256_setzero_pd(), b3 = _mm256_setzero_pd();
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x + r * rs, *wr = w + r * n * F;
        for (int64_t t = 0; t < n; t++) {
            __m256d wl = _mm256_loadu_pd(wr + t * F), wh = _mm256_loadu_pd(wr + t * F + 4);
            __m256d v0 = _mm256_broadcast_sd(xr + t), v1 = _mm256_broadcast_sd(xr + step + t);
            __m256d v2 = _mm256_broadcast_sd(xr + 2 * step + t);
            __m256d v3 = _mm256_broadcast_sd(xr + 3 * step + t);
            a0 = _mm256_fmadd_pd(v0, wl, a0); b0 = _mm256_fmadd_pd(v0, wh, b0);
            a1 = _mm256_fmadd_pd(v1, wl, a1); b1 = _mm256_fmadd_pd(v1, wh, b1);
            a2 = _mm256_fmadd_pd(v2, wl, a2); b2 = _mm256_fmadd_pd(v2, wh, b2);
            a3 = _mm256_fmadd_pd(v3, wl, a3); b3 = _mm256_fmadd_pd(v3, wh, b3);
        }
    }
    _mm256_storeu_pd(out, a0); _mm256_storeu_pd(out + 4, b0);
    _mm256_storeu_pd(out + F, a1); _mm256_storeu_pd(out + F + 4, b1);
    _mm256_storeu_pd(out + 2 * F, a2); _mm256_storeu_pd(out + 2 * F + 4, b2);
    _mm256_storeu_pd(out + 3 * F, a3); _mm256_storeu_pd(out + 3 * F + 4, b3);
#else
    fc_block4_plain_f64(x, rs, step, rows, n, w, F, out);
#endif
}

/* one pixel: x at the first valid value of its window's row dy0, the len values of each
 * valid row from there; w at the matching weight row (n = kw*C rows per window row) */
static inline void fc_px1_f32(const float *x, int64_t rs, int64_t rows, int64_t n, int64_t len,
                              const float *w, int64_t F, float *out) {
#if FC_SIMD
    /* two chains (even and odd t), summed at the end: one chain waited on the FMA's latency */
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * rs, *wr = w + r * n * F;
        int64_t t = 0;
        for (; t + 1 < len; t += 2) {
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + t), _mm256_loadu_ps(wr + t * F), a);
            b = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + t + 1),
                                _mm256_loadu_ps(wr + (t + 1) * F), b);
        }
        if (t < len)
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + t), _mm256_loadu_ps(wr + t * F), a);
    }
    _mm256_storeu_ps(out, _mm256_add_ps(a, b));
#else
    fc_px1_plain_f32(x, rs, rows, n, len, w, F, out);
#endif
}

static inline void fc_px1_f64(const double *x, int64_t rs, int64_t rows, int64_t n,
                              int64_t len, const double *w, int64_t F, double *out) {
#if FC_SIMD
    __m256d a = _mm256_setzero_pd(), b = _mm256_setzero_pd();
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x + r * rs, *wr = w + r * n * F;
        for (int64_t t = 0; t < len; t++) {
            __m256d v = _mm256_broadcast_sd(xr + t);
            a = _mm256_fmadd_pd(v, _mm256_loadu_pd(wr + t * F), a);
            b = _mm256_fmadd_pd(v, _mm256_loadu_pd(wr + t * F + 4), b);
        }
    }
    _mm256_storeu_pd(out, a);
    _mm256_storeu_pd(out + 4, b);
#else
    fc_px1_plain_f64(x, rs, rows, n, len, w, F, out);
#endif
}

/* The weight gradient of taps t..t+3 (or the one tap t) of a window row, 8 filters:
 * g[j*F + f] += sum over the Ho x Wo output pixels of x[tap j of the pixel] * dz[pixel, f],
 * with x a zero-padded image at the window row's first tap (every tap in bounds), rs its row
 * (padded width * C), step = stride * C, and dz at filter f0 (pixel stride F).  Each tap's
 * 8 filters stay in one register over the whole image. */
static inline void fc_wgrad4_f32(const float *x, int64_t rs, int64_t srs, int64_t step,
                                 int64_t Ho, int64_t Wo, const float *dz, int64_t F, float *g) {
#if FC_SIMD
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int64_t oy = 0; oy < Ho; oy++) {
        const float *xr = x + oy * srs, *dr = dz + oy * Wo * F;
        for (int64_t ox = 0; ox < Wo; ox++) {
            __m256 d = _mm256_loadu_ps(dr + ox * F);
            const float *xp = xr + ox * step;
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(xp), d, a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(xp + 1), d, a1);
            a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(xp + 2), d, a2);
            a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(xp + 3), d, a3);
        }
    }
    _mm256_storeu_ps(g, _mm256_add_ps(_mm256_loadu_ps(g), a0));
    _mm256_storeu_ps(g + F, _mm256_add_ps(_mm256_loadu_ps(g + F), a1));
    _mm256_storeu_ps(g + 2 * F, _mm256_add_ps(_mm256_loadu_ps(g + 2 * F), a2));
    _mm256_storeu_ps(g + 3 * F, _mm256_add_ps(_mm256_loadu_ps(g + 3 * F), a3));
#else
    float a[4][8] = {{0}};
    for (int64_t oy = 0; oy < Ho; oy++)
        for (int64_t ox = 0; ox < Wo; ox++)
            for (int j = 0; j < 4; j++) {
                float v = x[oy * srs + ox * step + j];
                for (int k = 0; k < 8; k++)
                    a[j][k] = FC_FMA_f32(v, dz[(oy * Wo + ox) * F + k], a[j][k]);
            }
    for (int j = 0; j < 4; j++)
        for (int k = 0; k < 8; k++)
            g[j * F + k] += a[j][k];
#endif
    (void)rs;
}

static inline void fc_wgrad1_f32(const float *x, int64_t rs, int64_t srs, int64_t step,
                                 int64_t Ho, int64_t Wo, const float *dz, int64_t F, float *g) {
#if FC_SIMD
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    for (int64_t oy = 0; oy < Ho; oy++) {
        const float *xr = x + oy * srs, *dr = dz + oy * Wo * F;
        int64_t ox = 0;
        for (; ox + 1 < Wo; ox += 2) {
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + ox * step), _mm256_loadu_ps(dr + ox * F), a);
            b = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + (ox + 1) * step),
                                _mm256_loadu_ps(dr + (ox + 1) * F), b);
        }
        if (ox < Wo)
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + ox * step), _mm256_loadu_ps(dr + ox * F), a);
    }
    _mm256_storeu_ps(g, _mm256_add_ps(_mm256_loadu_ps(g), _mm256_add_ps(a, b)));
#else
    float a[8] = {0};
    for (int64_t oy = 0; oy < Ho; oy++)
        for (int64_t ox = 0; ox < Wo; ox++) {
            float v = x[oy * srs + ox * step];
            for (int k = 0; k < 8; k++)
                a[k] = FC_FMA_f32(v, dz[(oy * Wo + ox) * F + k], a[k]);
        }
    for (int k = 0; k < 8; k++)
        g[k] += a[k];
#endif
    (void)rs;
}

#endif
