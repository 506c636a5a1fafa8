# Shared declarations for fastnet's Cython kernels.
#
# Every .pyx cimports from here (``from _common cimport ...``; setup.py puts
# src_cython on the include path).  Only ``cdef inline`` functions, enums and
# C declarations live here, so no extension module depends on another one at
# run time.
#
# The helpers are the scalar math of the course, written so that the compiled
# kernels compute what :mod:`fastnet.reference` computes, in the same dtype:
# float32 arithmetic uses the float32 libm functions (``expf``, ``tanhf``...),
# float64 the float64 ones; losses are accumulated in float64.
from libc.math cimport exp, expf, log, tanh, tanhf, fabs, fabsf, sqrt, sqrtf
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

ctypedef fused floating:
    float
    double

# The codes of activations, losses, penalties and optimisers (ACT_*, LOSS_*, PEN_*, OPT_*),
# generated from fastnet/_codes.py.
include "_codes.pxi"

cdef extern from *:
    """
    /* fastnet: OpenMP when the compiler had it (setup.py's probe), else serial. */
    #ifdef _OPENMP
    #include <omp.h>
    static inline int fastnet_omp_max_threads(void) { return omp_get_max_threads(); }
    static inline double fastnet_wtime(void) { return omp_get_wtime(); }
    #define FASTNET_HAVE_OPENMP 1
    #else
    static inline int fastnet_omp_max_threads(void) { return 1; }
    static inline double fastnet_wtime(void) { return 0.0; }
    #define FASTNET_HAVE_OPENMP 0
    #endif
    /* fastnet.reference.losses.LOG_CLIP */
    #define FASTNET_LOG_CLIP 1e-15
    /* Fused multiply-add where the CPU has one (one rounding, as BLAS kernels use), else
       a*b+c.  The build turns implicit contraction off (-ffp-contract=off), so these are
       the only FMAs: elementwise formulas round exactly as numpy's loops do. */
    #include <math.h>
    #if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
    #define fastnet_fmaf(a, b, c) fmaf((a), (b), (c))
    #define fastnet_fma(a, b, c) fma((a), (b), (c))
    #else
    #define fastnet_fmaf(a, b, c) ((a) * (b) + (c))
    #define fastnet_fma(a, b, c) ((a) * (b) + (c))
    #endif
    /* A hint to start loading a cache line (the next sample's row) early. */
    #if defined(__GNUC__) || defined(__clang__)
    #define fastnet_prefetch(p) __builtin_prefetch((const void *)(p), 0, 3)
    #else
    #define fastnet_prefetch(p) ((void)0)
    #endif
    """
    int fastnet_omp_max_threads() noexcept nogil
    double fastnet_wtime() noexcept nogil
    const int FASTNET_HAVE_OPENMP
    const double FASTNET_LOG_CLIP
    void fastnet_prefetch(const void *p) noexcept nogil
    float fastnet_fmaf(float a, float b, float c) noexcept nogil
    double fastnet_fma(double a, double b, double c) noexcept nogil


cdef extern from "fastnet_simd.h" nogil:
    # AVX-512 row kernels (see fastnet_simd.h); FASTNET_SIMD is 0 when not compiled in
    const int FASTNET_SIMD
    int64_t fn_compact1_f32(const float *x0, int64_t n, int32_t *idx)
    int64_t fn_compact4_f32(const float *x0, const float *x1, const float *x2,
                            const float *x3, int64_t n, int32_t *idx)
    int64_t fn_compact1_f64(const double *x0, int64_t n, int32_t *idx)
    int64_t fn_compact4_f64(const double *x0, const double *x1, const double *x2,
                            const double *x3, int64_t n, int32_t *idx)
    void fn_affine1_f32(const float *W, int64_t n, const int32_t *idx, int64_t c,
                        const float *x0, float *z0)
    void fn_affine4_f32(const float *W, int64_t n, const int32_t *idx, int64_t c,
                        const float *x0, const float *x1, const float *x2, const float *x3,
                        float *z0, float *z1, float *z2, float *z3)
    void fn_affine1_f64(const double *W, int64_t n, const int32_t *idx, int64_t c,
                        const double *x0, double *z0)
    void fn_affine4_f64(const double *W, int64_t n, const int32_t *idx, int64_t c,
                        const double *x0, const double *x1, const double *x2,
                        const double *x3, double *z0, double *z1, double *z2, double *z3)
    void fn_backdelta4_f32(const float *WT, int64_t J, int64_t K, const float *d0,
                           const float *d1, const float *d2, const float *d3, float *o0,
                           float *o1, float *o2, float *o3)
    void fn_backdelta4_f64(const double *WT, int64_t J, int64_t K, const double *d0,
                           const double *d1, const double *d2, const double *d3,
                           double *o0, double *o1, double *o2, double *o3)
    float fn_dot_f32(const float *x, const float *w, int64_t n)
    double fn_dot_f64(const double *x, const double *w, int64_t n)
    void fn_sgd1_f32(float *W, int64_t n, const int32_t *idx, int64_t c, const float *x0,
                     const float *d0, float lr)
    void fn_sgd1_f64(double *W, int64_t n, const int32_t *idx, int64_t c, const double *x0,
                     const double *d0, double lr)
    void fn_axpy1_f32(float *G, int64_t n, const int32_t *idx, int64_t c, const float *x0,
                      const float *d0)
    void fn_axpy4_f32(float *G, int64_t n, const int32_t *idx, int64_t c, const float *x0,
                      const float *x1, const float *x2, const float *x3, const float *d0,
                      const float *d1, const float *d2, const float *d3)
    void fn_axpy1_f64(double *G, int64_t n, const int32_t *idx, int64_t c, const double *x0,
                      const double *d0)
    void fn_axpy4_f64(double *G, int64_t n, const int32_t *idx, int64_t c, const double *x0,
                      const double *x1, const double *x2, const double *x3,
                      const double *d0, const double *d1, const double *d2,
                      const double *d3)


cdef inline int64_t simd_compact1(const floating *x0, int64_t n, int32_t *idx) noexcept nogil:
    if floating is float:
        return fn_compact1_f32(x0, n, idx)
    else:
        return fn_compact1_f64(x0, n, idx)


cdef inline int64_t simd_compact4(const floating *x0, const floating *x1, const floating *x2,
                                  const floating *x3, int64_t n, int32_t *idx) noexcept nogil:
    if floating is float:
        return fn_compact4_f32(x0, x1, x2, x3, n, idx)
    else:
        return fn_compact4_f64(x0, x1, x2, x3, n, idx)


cdef inline void simd_affine1(const floating *W, int64_t n, const int32_t *idx, int64_t c,
                              const floating *x0, floating *z0) noexcept nogil:
    if floating is float:
        fn_affine1_f32(W, n, idx, c, x0, z0)
    else:
        fn_affine1_f64(W, n, idx, c, x0, z0)


cdef inline void simd_affine4(const floating *W, int64_t n, const int32_t *idx, int64_t c,
                              const floating *x0, const floating *x1, const floating *x2,
                              const floating *x3, floating *z0, floating *z1, floating *z2,
                              floating *z3) noexcept nogil:
    if floating is float:
        fn_affine4_f32(W, n, idx, c, x0, x1, x2, x3, z0, z1, z2, z3)
    else:
        fn_affine4_f64(W, n, idx, c, x0, x1, x2, x3, z0, z1, z2, z3)


cdef inline void simd_axpy1(floating *G, int64_t n, const int32_t *idx, int64_t c,
                            const floating *x0, const floating *d0) noexcept nogil:
    if floating is float:
        fn_axpy1_f32(G, n, idx, c, x0, d0)
    else:
        fn_axpy1_f64(G, n, idx, c, x0, d0)


cdef inline void simd_backdelta4(const floating *WT, int64_t J, int64_t K,
                                 const floating *d0, const floating *d1, const floating *d2,
                                 const floating *d3, floating *o0, floating *o1, floating *o2,
                                 floating *o3) noexcept nogil:
    if floating is float:
        fn_backdelta4_f32(WT, J, K, d0, d1, d2, d3, o0, o1, o2, o3)
    else:
        fn_backdelta4_f64(WT, J, K, d0, d1, d2, d3, o0, o1, o2, o3)


cdef inline floating simd_dot(const floating *x, const floating *w, int64_t n) noexcept nogil:
    if floating is float:
        return fn_dot_f32(x, w, n)
    else:
        return fn_dot_f64(x, w, n)


cdef inline void simd_sgd1(floating *W, int64_t n, const int32_t *idx, int64_t c,
                           const floating *x0, const floating *d0, floating lr) noexcept nogil:
    if floating is float:
        fn_sgd1_f32(W, n, idx, c, x0, d0, lr)
    else:
        fn_sgd1_f64(W, n, idx, c, x0, d0, lr)


cdef inline void simd_axpy4(floating *G, int64_t n, const int32_t *idx, int64_t c,
                            const floating *x0, const floating *x1, const floating *x2,
                            const floating *x3, const floating *d0, const floating *d1,
                            const floating *d2, const floating *d3) noexcept nogil:
    if floating is float:
        fn_axpy4_f32(G, n, idx, c, x0, x1, x2, x3, d0, d1, d2, d3)
    else:
        fn_axpy4_f64(G, n, idx, c, x0, x1, x2, x3, d0, d1, d2, d3)


# ------------------------------------------------------------------ scalar math
cdef inline floating f_exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline void prefetch_row(const floating[:, ::1] X, Py_ssize_t i) noexcept nogil:
    """Ask for row ``X[i]`` to be brought into the cache (one hint per 64-byte line)."""
    cdef Py_ssize_t j = 0, n = X.shape[1], step = 64 // sizeof(floating)
    while j < n:
        fastnet_prefetch(&X[i, j])
        j += step


cdef inline floating f_fma(floating a, floating b, floating c) noexcept nogil:
    """``a * b + c``, fused (one rounding) when the CPU has FMA: the multiply-accumulate of
    the matrix products, as BLAS computes it."""
    if floating is float:
        return fastnet_fmaf(a, b, c)
    else:
        return fastnet_fma(a, b, c)


cdef inline floating f_sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef union f32bits:
    float f
    uint32_t u


cdef union f64bits:
    double f
    uint64_t u


cdef inline floating exp_nonpos(floating x) noexcept nogil:
    r""":math:`e^x` for :math:`x \le 0`, without a call or a branch, so that loops over it
    vectorise (libm's ``exp`` is a scalar call).

    Cody & Waite's reduction :math:`x = n\ln 2 + r`, :math:`|r| \le \ln 2/2`, then
    Cephes' approximations of :math:`e^r` (float32: a degree-6 polynomial, float64: a
    Padé form), scaled by :math:`2^n` built from the exponent bits in two factors so that
    results down to the subnormals come out right.  Peak relative error (Cephes):
    1.7e-7 in float32 (~2 ulp), 2.1e-16 in float64 (~1 ulp).
    """
    cdef f32bits b32, s32
    cdef f64bits b64, s64
    cdef int64_t n, n1
    cdef float xf, zf, yf, MAGIC32 = 12582912.0, LOG2E32 = 1.44269504088896341
    cdef float C1f = 0.693359375, C2f = -2.12194440e-4, LOf = -104.0, onef = 1
    cdef double xd, zd, pd, qd, MAGIC64 = 6755399441055744.0, LOG2E64 = 1.4426950408889634074
    cdef double C1d = 6.93145751953125E-1, C2d = 1.42860682030941723212E-6, LOd = -746.0
    if floating is float:
        xf = x if x > LOf else LOf
        b32.f = xf * LOG2E32 + MAGIC32           # round to nearest: n in the low bits
        n = <int32_t>(b32.u - <uint32_t>0x4B400000)   # two's complement: n <= 0
        zf = b32.f - MAGIC32                     # n as a float
        xf = xf - zf * C1f                       # C1 has 9 bits: n * C1 is exact
        xf = xf - zf * C2f
        zf = xf * xf
        yf = ((((((<float>1.9875691500E-4 * xf + <float>1.3981999507E-3) * xf
                  + <float>8.3334519073E-3) * xf + <float>4.1665795894E-2) * xf
                + <float>1.6666665459E-1) * xf + <float>5.0000001201E-1) * zf + xf + onef)
        n1 = n >> 1
        s32.u = <uint32_t>((n1 + 127) << 23)
        b32.u = <uint32_t>((n - n1 + 127) << 23)
        return yf * s32.f * b32.f
    else:
        xd = x if x > LOd else LOd
        b64.f = xd * LOG2E64 + MAGIC64
        n = <int64_t>(b64.u - <uint64_t>0x4338000000000000)
        zd = b64.f - MAGIC64
        xd = xd - zd * C1d
        xd = xd - zd * C2d
        zd = xd * xd
        pd = xd * ((1.26177193074810590878E-4 * zd + 3.02994407707441961300E-2) * zd
                   + 9.99999999999999999910E-1)
        qd = (((3.00198505138664455042E-6 * zd + 2.52448340349684104192E-3) * zd
               + 2.27265548208155028766E-1) * zd + 2.00000000000000000009E0)
        xd = 1.0 + 2.0 * (pd / (qd - pd))
        n1 = n >> 1
        s64.u = <uint64_t>((n1 + 1023) << 52)
        b64.u = <uint64_t>((n - n1 + 1023) << 52)
        return xd * s64.f * b64.f


cdef inline floating sigmoid(floating z) noexcept nogil:
    r"""Logistic :math:`\sigma(z)` as the reference computes it: :math:`e^{-|z|}` only, so
    it never overflows, then :math:`1/(1+e)` or :math:`e/(1+e)`; in the dtype of ``z``.
    Branch-free, so the loops applying it vectorise."""
    cdef floating e, one = 1   # typed 1: a bare literal would be a C double
    cdef floating az = -z if z < 0 else z
    e = exp_nonpos(-az)
    return (one if z >= 0 else e) / (one + e)


cdef inline floating act_f(int kind, floating z) noexcept nogil:
    """Elementwise activation ``kind`` (0..3) of ``z``."""
    if kind == ACT_SIGMOID:
        return sigmoid(z)
    elif kind == ACT_RELU:
        return 0 if z < 0 else z  # NaN propagates, as with np.maximum
    elif kind == ACT_TANH:
        if floating is float:
            return tanhf(z)
        else:
            return tanh(z)
    return z


cdef inline floating act_df(int kind, floating z) noexcept nogil:
    """Derivative of activation ``kind`` (0..3) at ``z``."""
    return act_df_from_a(kind, act_f(kind, z))


cdef inline floating act_df_from_a(int kind, floating a) noexcept nogil:
    r"""The derivative :math:`f'(z)` from the activation's value :math:`a = f(z)`.

    sigmoid :math:`a(1-a)`, tanh :math:`1-a^2`, relu :math:`[a>0]` (= :math:`[z>0]`),
    linear 1: the same numbers as the reference's ``df(z)``, without a second
    ``exp``/``tanh``.
    """
    cdef floating one = 1, zero = 0
    if kind == ACT_SIGMOID:
        return a * (one - a)
    elif kind == ACT_RELU:
        return one if a > 0 else zero
    elif kind == ACT_TANH:
        return one - a * a
    return one


cdef inline double loss_term(int loss_kind, floating a, floating y) noexcept nogil:
    r"""One output's loss in float64, logs clipped at ``LOG_CLIP``.

    Cross-entropy :math:`-y\log a-(1-y)\log(1-a)`, quadratic
    :math:`\tfrac12(a-y)^2`, log-loss :math:`-y\log a`.  A term whose
    coefficient (:math:`y` or :math:`1-y`) is exactly 0 is skipped: the
    reference adds :math:`0\cdot\log(\cdot)`, the same number, so one-hot
    labels need one ``log`` per output (cross-entropy) or per sample (log-loss).
    """
    cdef double ad = a, yd = y, t = 0, r
    if loss_kind == LOSS_QUADRATIC:
        r = ad - yd
        return 0.5 * r * r
    if yd != 0:
        t -= yd * log(ad if ad > FASTNET_LOG_CLIP else FASTNET_LOG_CLIP)
    if loss_kind == LOSS_CROSS_ENTROPY and 1 - yd != 0:
        r = 1 - ad
        t -= (1 - yd) * log(r if r > FASTNET_LOG_CLIP else FASTNET_LOG_CLIP)
    return t


cdef inline floating loss_grad(int loss_kind, floating a, floating y) noexcept nogil:
    r"""d(loss)/da of the clipped loss, in the dtype of ``a`` (0 where the clip is active)."""
    cdef floating g = 0, one = 1
    cdef floating clip = <floating>FASTNET_LOG_CLIP
    if loss_kind == LOSS_QUADRATIC:
        return a - y
    if a > clip:
        g = -y / a
    if loss_kind == LOSS_CROSS_ENTROPY and one - a > clip:
        g = g + (one - y) / (one - a)
    return g


cdef inline bint fused_output(int kind, int loss_kind) noexcept nogil:
    """True when the output error term is simply ``a - y`` (sigmoid + CE, softmax + log-loss)."""
    return ((kind == ACT_SIGMOID and loss_kind == LOSS_CROSS_ENTROPY)
            or (kind == ACT_SOFTMAX and loss_kind == LOSS_LOG_LOSS))


cdef inline void softmax_inplace(floating[::1] v, Py_ssize_t lo, Py_ssize_t n) noexcept nogil:
    r"""``v[lo:lo+n] = exp(v - max v) / sum exp(v - max v)``, in the dtype of ``v``."""
    cdef Py_ssize_t k
    cdef floating mx, s = 0
    if n <= 0:
        return
    mx = v[lo]
    for k in range(1, n):
        if v[lo + k] > mx:
            mx = v[lo + k]
    for k in range(n):
        v[lo + k] = f_exp(v[lo + k] - mx)
        s += v[lo + k]
    for k in range(n):
        v[lo + k] = v[lo + k] / s


cdef inline void activate_inplace(int kind, floating[::1] v, Py_ssize_t lo,
                                  Py_ssize_t n) noexcept nogil:
    """Apply activation ``kind`` (0..4) to ``v[lo:lo+n]`` in place."""
    cdef Py_ssize_t k
    if kind == ACT_SOFTMAX:
        softmax_inplace(v, lo, n)
    elif kind == ACT_SIGMOID:
        for k in range(n):
            v[lo + k] = sigmoid(v[lo + k])
    elif kind == ACT_RELU:
        for k in range(n):
            if v[lo + k] < 0:
                v[lo + k] = 0
    elif kind == ACT_TANH:
        for k in range(n):
            v[lo + k] = act_f(ACT_TANH, v[lo + k])


cdef inline floating penalty_term(int penalty, floating lam, floating w) noexcept nogil:
    r"""The penalty's gradient for one weight: :math:`\lambda w` (L2), :math:`\lambda\,\mathrm{sign}(w)` (L1), else 0."""
    if penalty == PEN_L2:
        return lam * w
    if penalty == PEN_L1:
        if w > 0:
            return lam
        if w < 0:
            return -lam
    return 0
