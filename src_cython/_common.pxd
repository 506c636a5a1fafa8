# Shared declarations for fastnet's Cython kernels.
#
# Every .pyx cimports from here (``from _common cimport ...``; setup.py puts
# src_cython on the include path).  Only ``cdef inline`` functions, enums and
# C declarations live here, so no extension module depends on another one at
# run time.
#
# The helpers are the scalar math of the course, written so that the compiled
# kernels compute what :mod:`fastnet.reference` computes, in the same dtype
# (float32 arithmetic in float32, float64 in float64; losses accumulated in
# float64).  The exponentials of the activations (sigmoid, tanh, softmax) are
# branch-free polynomial forms (``exp_nonpos``, ``f_tanh``: Cephes' to a few ulp)
# so that the loops applying them vectorise; ``log`` (losses) is libm's.
from libc.math cimport log, sqrt, sqrtf
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


# ------------------------------------------------------------------ scalar math
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
    r""":math:`e^x` for :math:`x \le 0` (and NaN), without a call or a branch, so that the
    loops over it vectorise (libm's ``exp`` is a scalar call).

    Cody & Waite's reduction :math:`x = n\ln 2 + r`, :math:`|r| \le \ln 2/2`, then
    Cephes' approximations of :math:`e^r` (float32: a degree-6 polynomial, float64: a
    Padé form), scaled by :math:`2^n` built from the exponent bits in two factors so that
    results down to the subnormals come out right.  Peak relative error (Cephes):
    1.7e-7 in float32 (~2 ulp), 2.1e-16 in float64 (~1 ulp).  Below the clamp
    (:math:`x < -112`, resp. :math:`-746`, so :math:`e^{-\infty}`) the result is exactly
    0; NaN stays NaN, as numpy's ``exp``.  The float64 scale is built with floating-point
    adds and a logical shift only (AVX2 has no 64-bit arithmetic shift).
    """
    cdef f32bits b32, s32
    cdef f64bits b64, s64
    cdef int32_t n, n1
    cdef float xf, zf, yf, MAGIC32 = 12582912.0, LOG2E32 = 1.44269504088896341
    cdef float C1f = 0.693359375, C2f = -2.12194440e-4, LOf = -112.0, onef = 1
    cdef double xd, zd, pd, qd, hd, MAGIC64 = 6755399441055744.0, LOG2E64 = 1.4426950408889634074
    cdef double C1d = 6.93145751953125E-1, C2d = 1.42860682030941723212E-6, LOd = -746.0
    cdef double TWO52 = 4503599627370496.0
    if floating is float:
        xf = LOf if x < LOf else x               # NaN is kept (a compare with NaN is false)
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
        xd = LOd if x < LOd else x
        zd = (xd * LOG2E64 + MAGIC64) - MAGIC64  # n = round(x / ln 2), as a double
        xd = xd - zd * C1d
        xd = xd - zd * C2d
        pd = xd * xd
        qd = (((3.00198505138664455042E-6 * pd + 2.52448340349684104192E-3) * pd
               + 2.27265548208155028766E-1) * pd + 2.00000000000000000009E0)
        pd = xd * ((1.26177193074810590878E-4 * pd + 3.02994407707441961300E-2) * pd
                   + 9.99999999999999999910E-1)
        xd = 1.0 + 2.0 * (pd / (qd - pd))
        hd = (zd * 0.5 + MAGIC64) - MAGIC64      # n = h + (n - h), both >= -540
        s64.f = (hd + 1023.0) + TWO52            # the biased exponent in the low bits ...
        s64.u = s64.u << 52                      # ... moved to the exponent field: 2^h
        b64.f = ((zd - hd) + 1023.0) + TWO52
        b64.u = b64.u << 52
        return xd * s64.f * b64.f


cdef inline floating sigmoid(floating z) noexcept nogil:
    r"""Logistic :math:`\sigma(z)` as the reference computes it: :math:`e^{-|z|}` only, so
    it never overflows, then :math:`1/(1+e)` or :math:`e/(1+e)`; in the dtype of ``z``.
    Branch-free, so the loops applying it vectorise; NaN gives NaN, :math:`\pm\infty` 1 and 0."""
    cdef floating e, one = 1   # typed 1: a bare literal would be a C double
    cdef floating az = -z if z < 0 else z
    e = exp_nonpos(-az)
    return (e if z < 0 else one) / (one + e)


cdef inline floating f_tanh(floating x) noexcept nogil:
    r""":math:`\tanh x` without a call or a branch (so that its loops vectorise), to a few
    ulp: Cephes' ``tanhf``/``tanh``.

    For :math:`|x| < 0.625` an odd polynomial (float32) or rational function (float64)
    of :math:`x^2`; above, :math:`(1-e)/(1+e)` with :math:`e = e^{-2|x|}` from
    :func:`exp_nonpos` (no cancellation there: :math:`e < 0.29`).  Both are computed
    and one is selected; the sign is put back last.  NaN gives NaN, :math:`\pm\infty`
    gives :math:`\pm 1`, as numpy's ``tanh``.
    """
    cdef floating one = 1, two = 2, ax = -x if x < 0 else x, z = x * x, p, e, big
    e = exp_nonpos(-two * ax)
    big = (one - e) / (one + e)
    if floating is float:
        p = ((((<float>-5.70498872745E-3 * z + <float>2.06390887954E-2) * z
               - <float>5.37397155531E-2) * z + <float>1.33314422036E-1) * z
             - <float>3.33332819422E-1) * z * ax + ax
    else:
        p = ax + ax * z * (((-9.64399179425052238628E-1 * z - 9.92877231001918586564E1) * z
                            - 1.61468768441708447952E3)
                           / (((z + 1.12811678491632931402E2) * z
                               + 2.23548839060100448583E3) * z + 4.84406305325125486048E3))
    p = p if ax < <floating>0.625 else big
    return -p if x < 0 else p


cdef inline floating act_f(int kind, floating z) noexcept nogil:
    """Elementwise activation ``kind`` (0..3) of ``z``."""
    if kind == ACT_SIGMOID:
        return sigmoid(z)
    elif kind == ACT_RELU:
        return 0 if z < 0 else z  # NaN propagates, as with np.maximum
    elif kind == ACT_TANH:
        return f_tanh(z)
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
        v[lo + k] = exp_nonpos(v[lo + k] - mx)
    for k in range(n):
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
            v[lo + k] = f_tanh(v[lo + k])


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
