# The arithmetic of the recurrent kernels (included by rnn.pyx; private to it).
#
# * _rexp / _rsig / _rtanh: the gate nonlinearities.  In float32 they are branch-free
#   polynomials (Cody and Waite's range reduction, Cephes' degree-6 polynomial for e^r,
#   the exponent bits written directly; an odd minimax polynomial for tanh near 0), so
#   that the loops applying them vectorise; peak relative error 2e-7 (~3 ulp).  In
#   float64 they are libm's exp and tanh, as the reference computes them.
# * _mm: C[:n, :N] (+)= A[:n, :K] @ B[:K, :N] (row-major) for the per-step products of
#   the recurrences: tiles of 4 rows by one vector pair of columns (16 float32 / 8
#   float64) whose sums stay in registers over K, so each step costs two vector loads
#   of B and four broadcasts per 8 fused multiply-adds; gcc vectorises the loops.
# * _gemm: the large products (input projections, weight gradients) through BLAS
#   (scipy.linalg.cython_blas), row-major.
from libc.math cimport exp, tanh, floorf, sqrt, log
from libc.stdint cimport int32_t, uint32_t
from scipy.linalg.cython_blas cimport sgemm, dgemm

cdef extern from *:
    """
    #include <math.h>
    /* fastnet rnn: a fused multiply-add where the CPU has one (the build turns implicit
       contraction off), else a*b+c */
    #if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
    #define fastnet_rnn_fmaf(a, b, c) fmaf((a), (b), (c))
    #define fastnet_rnn_fma(a, b, c) fma((a), (b), (c))
    #else
    #define fastnet_rnn_fmaf(a, b, c) ((a) * (b) + (c))
    #define fastnet_rnn_fma(a, b, c) ((a) * (b) + (c))
    #endif
    static inline float fastnet_rnn_bits_to_f32(int32_t u) {
        union { int32_t i; float f; } v; v.i = u; return v.f; }
    """
    float fastnet_rnn_fmaf(float a, float b, float c) noexcept nogil
    double fastnet_rnn_fma(double a, double b, double c) noexcept nogil
    float fastnet_rnn_bits_to_f32(int32_t u) noexcept nogil


cdef inline floating _fma(floating a, floating b, floating c) noexcept nogil:
    if floating is float:
        return fastnet_rnn_fmaf(a, b, c)
    else:
        return fastnet_rnn_fma(a, b, c)


cdef inline float _exp32(float x) noexcept nogil:
    r""":math:`e^x` for :math:`x \le 0` in float32, branch-free."""
    cdef float z, y, zz
    cdef int32_t n, n1
    x = x if x > <float>-104.0 else <float>-104.0
    z = floorf(x * <float>1.44269504088896341 + <float>0.5)
    n = <int32_t>z
    x = x - z * <float>0.693359375
    x = x - z * <float>-2.12194440e-4
    zz = x * x
    y = ((((((<float>1.9875691500e-4 * x + <float>1.3981999507e-3) * x
             + <float>8.3334519073e-3) * x + <float>4.1665795894e-2) * x
           + <float>1.6666665459e-1) * x + <float>5.0000001201e-1) * zz + x + <float>1.0)
    n1 = n >> 1
    return y * fastnet_rnn_bits_to_f32((n1 + 127) << 23) * fastnet_rnn_bits_to_f32((n - n1 + 127) << 23)


cdef inline floating _rexp(floating x) noexcept nogil:
    r""":math:`e^x` for :math:`x \le 0`."""
    if floating is float:
        return _exp32(x)
    else:
        return exp(x)


cdef inline floating _rsig(floating z) noexcept nogil:
    r"""Overflow-free :math:`\sigma(z)`: :math:`e^{-|z|}` only, then :math:`1/(1+e)` or :math:`e/(1+e)`."""
    cdef floating one = 1
    cdef floating e = _rexp(-z if z >= 0 else z)
    return (one if z >= 0 else e) / (one + e)


cdef inline floating _rtanh(floating x) noexcept nogil:
    cdef float a, s, p, small, e, big, r
    if floating is double:
        return tanh(x)
    else:
        a = x if x >= 0 else -x
        s = a * a
        p = ((((<float>2.398995927109652e-3 * s + <float>-8.416790880577925e-3) * s
               + <float>2.1783767117828444e-2) * s + <float>-5.395979228213211e-2) * s
             + <float>1.3333294632458664e-1) * s + <float>-3.333333274183508e-1
        small = a + a * s * p
        e = _exp32(<float>-2.0 * a)
        big = (<float>1.0 - e) / (<float>1.0 + e)
        r = small if a < <float>0.55 else big
        return r if x >= 0 else -r


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
    if M <= 0 or N <= 0:
        return
    if K <= 0:  # an empty sum (BLAS would leave C untouched with beta 1 only)
        for m in range(M):
            for n in range(N):
                C[m * ldc + n] = beta * C[m * ldc + n] if beta != 0 else 0
        return
    if floating is float:
        beta32 = beta
        sgemm(&cb, &ca, &n, &m, &k, &one32, <float*>B, &lb, <float*>A, &la, &beta32, C, &lc)
    else:
        beta64 = beta
        dgemm(&cb, &ca, &n, &m, &k, &one64, <double*>B, &lb, <double*>A, &la, &beta64, C, &lc)


cdef inline void _tile(const floating* A, Py_ssize_t lda, Py_ssize_t rows, Py_ssize_t K,
                       const floating* B, Py_ssize_t ldb, floating* C, Py_ssize_t ldc,
                       bint acc) noexcept nogil:
    """``C[:rows, :NB] (+)= A[:rows, :K] @ B[:K, :NB]``, rows <= 4, NB = one vector pair."""
    cdef floating s[64]
    cdef Py_ssize_t k, j, r
    cdef Py_ssize_t NB = 16 if floating is float else 8
    cdef floating a0, a1, a2, a3
    cdef const floating* b
    for j in range(4 * NB):
        s[j] = 0
    if rows == 4:
        for k in range(K):
            a0 = A[k]
            a1 = A[lda + k]
            a2 = A[2 * lda + k]
            a3 = A[3 * lda + k]
            b = B + k * ldb
            for j in range(NB):
                s[j] = _fma(a0, b[j], s[j])
                s[NB + j] = _fma(a1, b[j], s[NB + j])
                s[2 * NB + j] = _fma(a2, b[j], s[2 * NB + j])
                s[3 * NB + j] = _fma(a3, b[j], s[3 * NB + j])
    else:
        for r in range(rows):
            for k in range(K):
                a0 = A[r * lda + k]
                b = B + k * ldb
                for j in range(NB):
                    s[r * NB + j] = _fma(a0, b[j], s[r * NB + j])
    for r in range(rows):
        if acc:
            for j in range(NB):
                C[r * ldc + j] += s[r * NB + j]
        else:
            for j in range(NB):
                C[r * ldc + j] = s[r * NB + j]


cdef void _mm(const floating* A, Py_ssize_t lda, Py_ssize_t n, Py_ssize_t K,
              const floating* B, Py_ssize_t ldb, Py_ssize_t N, floating* C, Py_ssize_t ldc,
              bint acc) noexcept nogil:
    """``C[:n, :N] += A[:n, :K] @ B[:K, :N]`` (``acc``) or ``=`` (row-major)."""
    cdef Py_ssize_t b, j, k, r, q, rows
    cdef Py_ssize_t NB = 16 if floating is float else 8
    cdef floating t
    b = 0
    while b < n:
        rows = n - b if n - b < 4 else 4
        j = 0
        while j + NB <= N:
            _tile(A + b * lda, lda, rows, K, B + j, ldb, C + b * ldc + j, ldc, acc)
            j += NB
        if j < N:  # the last columns
            for r in range(rows):
                for k in range(j, N):
                    t = 0
                    for q in range(K):
                        t = _fma(A[(b + r) * lda + q], B[q * ldb + k], t)
                    if acc:
                        C[(b + r) * ldc + k] += t
                    else:
                        C[(b + r) * ldc + k] = t
        b += rows
