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
from libc.stdint cimport int64_t

ctypedef fused floating:
    float
    double

# Activation codes: the same numbers as fastnet._backend.ACTIVATION_CODES.
cdef enum:
    ACT_LINEAR = 0
    ACT_SIGMOID = 1
    ACT_RELU = 2
    ACT_TANH = 3
    ACT_SOFTMAX = 4

# Loss codes (fastnet._backend.LOSS_CODES).
cdef enum:
    LOSS_CE = 0
    LOSS_QUAD = 1
    LOSS_LOGLOSS = 2

# Penalty codes (fastnet._backend.PENALTY_CODES).
cdef enum:
    PEN_NONE = 0
    PEN_L2 = 1
    PEN_L1 = 2

# Optimiser codes (fastnet._backend.OPTIMIZER_CODES).
cdef enum:
    OPT_SGD = 0
    OPT_MOMENTUM = 1
    OPT_RMSPROP = 2

cdef extern from *:
    """
    /* fastnet: OpenMP when the compiler had it (setup.py's probe), else serial. */
    #ifdef _OPENMP
    #include <omp.h>
    static inline int fastnet_omp_max_threads(void) { return omp_get_max_threads(); }
    #define FASTNET_HAVE_OPENMP 1
    #else
    static inline int fastnet_omp_max_threads(void) { return 1; }
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
    const int FASTNET_HAVE_OPENMP
    const double FASTNET_LOG_CLIP
    void fastnet_prefetch(const void *p) noexcept nogil
    float fastnet_fmaf(float a, float b, float c) noexcept nogil
    double fastnet_fma(double a, double b, double c) noexcept nogil


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


cdef inline floating sigmoid(floating z) noexcept nogil:
    r"""Logistic :math:`\sigma(z)` as the reference computes it: ``exp`` only of
    :math:`-|z|`, so it never overflows; in the dtype of ``z``."""
    cdef floating e, one = 1   # typed 1: a bare literal would be a C double
    if floating is float:
        e = expf(-fabsf(z))
    else:
        e = exp(-fabs(z))
    if z >= 0:
        return one / (one + e)
    return e / (one + e)


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
    if loss_kind == LOSS_QUAD:
        r = ad - yd
        return 0.5 * r * r
    if yd != 0:
        t -= yd * log(ad if ad > FASTNET_LOG_CLIP else FASTNET_LOG_CLIP)
    if loss_kind == LOSS_CE and 1 - yd != 0:
        r = 1 - ad
        t -= (1 - yd) * log(r if r > FASTNET_LOG_CLIP else FASTNET_LOG_CLIP)
    return t


cdef inline floating loss_grad(int loss_kind, floating a, floating y) noexcept nogil:
    r"""d(loss)/da of the clipped loss, in the dtype of ``a`` (0 where the clip is active)."""
    cdef floating g = 0, one = 1
    cdef floating clip = <floating>FASTNET_LOG_CLIP
    if loss_kind == LOSS_QUAD:
        return a - y
    if a > clip:
        g = -y / a
    if loss_kind == LOSS_CE and one - a > clip:
        g = g + (one - y) / (one - a)
    return g


cdef inline bint fused_output(int kind, int loss_kind) noexcept nogil:
    """True when the output error term is simply ``a - y`` (sigmoid + CE, softmax + log-loss)."""
    return ((kind == ACT_SIGMOID and loss_kind == LOSS_CE)
            or (kind == ACT_SOFTMAX and loss_kind == LOSS_LOGLOSS))


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
