# cython: language_level=3
r"""Linear and logistic regression by gradient descent, and the perceptron rule (Cython backend).

The kernels ``linear_gd`` and ``perceptron_train`` of
:mod:`fastnet.reference.kernels`, as ``nogil`` loops.

Gradient descent on a large ``X`` makes one pass over the rows per iteration
(prediction, cost and :math:`X_1^T(h-y)` together: the cost of an iteration
is reading ``X``), the rows cut into chunks with their own gradient buffers,
on threads, added in chunk order.  On a small ``X`` (fewer than 65,536
entries) it runs the reference's own operations -- BLAS ``gemv`` through
``scipy.linalg.cython_blas`` for :math:`X\theta` and :math:`X^T(h-y)`,
numpy's pairwise sums -- so that a float32 run follows the reference's
trajectory bit for bit and stops at the same iteration.
"""
import numpy as np
cimport numpy as cnp
cimport cython
from cython.parallel cimport prange
from libc.math cimport isnan, isinf, fabs
from libc.stdint cimport int64_t
from scipy.linalg.cython_blas cimport sgemv, dgemv, sdot, ddot

from _common cimport floating, sigmoid, loss_term, f_fma, LOSS_CROSS_ENTROPY

from fastnet._cython import _checks as chk
from fastnet._cython import _variants

cnp.import_array()

include "_loops.pxi"


cdef floating _pairwise_sum(const floating[::1] a, Py_ssize_t lo, Py_ssize_t n) noexcept nogil:
    """``a[lo:lo+n].sum()`` by numpy's pairwise summation, in the same order (so the same
    rounding): 8 running sums over blocks of up to 128, halves above."""
    cdef Py_ssize_t i, j, n2
    cdef floating res = 0
    cdef floating r[8]
    if n < 8:
        for i in range(n):
            res = res + a[lo + i]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = a[lo + j]
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                r[j] = r[j] + a[lo + i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res = res + a[lo + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, lo, n2) + _pairwise_sum(a, lo + n2, n - n2)


cdef void _gemv(char trans, int rows, int cols, const floating[:, ::1] X,
                const floating[::1] x, Py_ssize_t xlo, floating[::1] y) noexcept nogil:
    """BLAS ``y = op(A) x`` with ``A`` the column-major (rows, cols) view of the row-major
    ``X`` (so ``op='T'`` gives ``X @ x`` and ``'N'`` gives ``X.T @ x``), as numpy's
    matrix-vector products call it."""
    cdef int one = 1, lda = rows
    cdef floating alpha = 1, beta = 0
    if floating is float:
        sgemv(&trans, &rows, &cols, &alpha, <float*>&X[0, 0], &lda, <float*>&x[xlo], &one,
              &beta, &y[0], &one)
    else:
        dgemv(&trans, &rows, &cols, &alpha, <double*>&X[0, 0], &lda, <double*>&x[xlo], &one,
              &beta, &y[0], &one)


cdef floating _dot(int n, const floating[:, ::1] X, Py_ssize_t row, const floating[::1] x,
                   Py_ssize_t xlo) noexcept nogil:
    cdef int one = 1
    if floating is float:
        return sdot(&n, <float*>&X[row, 0], &one, <float*>&x[xlo], &one)
    else:
        return ddot(&n, <double*>&X[row, 0], &one, <double*>&x[xlo], &one)


cdef Py_ssize_t _linear_gd(const floating[:, ::1] X, const floating[::1] y, floating[::1] theta,
                           double lr_, double tol, Py_ssize_t max_iter, bint logistic,
                           double[::1] history, floating[::1] h, floating[::1] g,
                           double[::1] terms) noexcept nogil:
    """Gradient descent: per iteration ``h = X @ theta[1:] + theta[0]`` and ``X.T @ r`` by BLAS
    matrix-vector products and ``sum(r)`` by pairwise summation, the same operations in the
    same order as the reference (float32 runs stop at the same iteration)."""
    cdef int m = <int>X.shape[0], n = <int>X.shape[1], one = 1
    cdef Py_ssize_t it, i, j
    cdef double J
    cdef floating lr = <floating>lr_, mf = <floating>m, s
    for it in range(max_iter):
        if n == 0:
            for i in range(m):
                h[i] = 0
        elif m == 1:
            h[0] = _dot(n, X, 0, theta, 1)          # numpy: (1, n) @ (n,) is a dot
        else:
            _gemv(c'T', n, m, X, theta, 1, h)
        for i in range(m):
            h[i] = h[i] + theta[0]
        if logistic:
            for i in range(m):
                h[i] = sigmoid(h[i])
                terms[i] = loss_term(LOSS_CROSS_ENTROPY, h[i], y[i])
            J = _pairwise_sum(terms, 0, m) / m
        else:
            for i in range(m):
                terms[i] = h[i] - y[i]
            J = 0.5 * ddot(&m, &terms[0], &one, &terms[0], &one) / m
        history[it] = J
        if isnan(J) or isinf(J):
            return it + 1
        for i in range(m):
            h[i] = h[i] - y[i]
        s = _pairwise_sum(h, 0, m)
        if n > 0:
            _gemv(c'N', n, m, X, h, 0, g)
        theta[0] -= lr * (s / mf)
        for j in range(n):
            theta[1 + j] -= lr * (g[j] / mf)
        if it >= 1 and fabs(history[it] - history[it - 1]) < tol:
            return it + 1
    return max_iter


cdef inline void _dot4(const floating* w, Py_ssize_t n, const floating* x,
                       floating* out) noexcept nogil:
    """``out[r] = x_r . w`` for the four rows ``x_r = x + r n`` (fastnet_loops.h)."""
    if floating is float:
        fl_dot4_f32(w, n, x, x + n, x + 2 * n, x + 3 * n, out)
    else:
        fl_dot4_f64(w, n, x, x + n, x + 2 * n, x + 3 * n, out)


cdef inline void _axpy4(floating* g, Py_ssize_t n, const floating* x,
                        const floating* r) noexcept nogil:
    """``g += r_0 x_0 + r_1 x_1 + r_2 x_2 + r_3 x_3`` (rows as in :func:`_dot4`), in row order."""
    if floating is float:
        fl_fwd4_f32(g, n, x, x + n, x + 2 * n, x + 3 * n, r[0], r[1], r[2], r[3])
    else:
        fl_fwd4_f64(g, n, x, x + n, x + 2 * n, x + 3 * n, r[0], r[1], r[2], r[3])


cdef inline floating _dot1(const floating* w, Py_ssize_t n, const floating* x) noexcept nogil:
    if floating is float:
        return fl_dot1_f32(w, n, x)
    else:
        return fl_dot1_f64(w, n, x)


cdef inline void _axpy1(floating* g, Py_ssize_t n, const floating* x, floating r) noexcept nogil:
    if floating is float:
        fl_fwd1_f32(g, n, x, r)
    else:
        fl_fwd1_f64(g, n, x, r)


cdef inline double _residual(floating h, floating yi, bint logistic, floating* r) noexcept nogil:
    """``r = h - y`` (``h`` through the sigmoid first when logistic); returns the row's cost
    term (float64: the squared residual, or the cross-entropy)."""
    cdef double rd
    if logistic:
        h = sigmoid(h)
        r[0] = h - yi
        return loss_term(LOSS_CROSS_ENTROPY, h, yi)
    r[0] = h - yi
    rd = r[0]
    return rd * rd


cdef double _gd_rows(const floating[:, ::1] X, const floating[::1] y,
                     const floating[::1] theta, bint logistic, Py_ssize_t lo, Py_ssize_t hi,
                     floating[::1] g) noexcept nogil:
    """One pass over rows ``lo:hi``: ``g[0] += sum r``, ``g[1:] += X^T r`` (``r = h - y``);
    returns the rows' cost terms (float64: squared residuals, or cross-entropy).

    Four rows at a time (``X`` has ``n >= 1`` columns here): their four dot products with
    ``theta`` in one pass (four chains of eight lanes each: one chain of adds was
    latency-bound), then their four updates of ``g`` in one pass (``g`` read and written
    once per four rows, the rows added in order).  Measured on MNIST 8,000 x 784, float32,
    100 iterations (AMD EPYC Zen 3, AVX2, 2 threads, 16 chunks), as speed-up over the numpy
    reference in the same run: 1.17x one row at a time, 1.78x (linear) and 1.71x (logistic)
    four rows at a time, where an iteration reads X at about the machine's memory bandwidth
    (19 GB/s, the reference's two passes 22 GB/s)."""
    cdef Py_ssize_t i = lo, q, n = X.shape[1]
    cdef const floating* w = &theta[1]
    cdef floating* gp = &g[1]
    cdef floating h[4]
    cdef floating r[4]
    cdef double J = 0
    while i + 4 <= hi:
        _dot4(w, n, &X[i, 0], h)
        for q in range(4):
            J += _residual(h[q] + theta[0], y[i + q], logistic, &r[q])
            g[0] += r[q]
        _axpy4(gp, n, &X[i, 0], r)
        i += 4
    while i < hi:
        J += _residual(_dot1(w, n, &X[i, 0]) + theta[0], y[i], logistic, &r[0])
        g[0] += r[0]
        _axpy1(gp, n, &X[i, 0], r[0])
        i += 1
    return J


cdef Py_ssize_t _linear_gd_fused(const floating[:, ::1] X, const floating[::1] y,
                                 floating[::1] theta, double lr_, double tol,
                                 Py_ssize_t max_iter, bint logistic, double[::1] history,
                                 floating[:, ::1] gb, double[::1] tJ, int C,
                                 int T) noexcept nogil:
    """Gradient descent with one pass over ``X`` per iteration (prediction, cost and gradient
    together), the rows cut into ``C`` chunks, each with its own gradient buffer, run by
    ``T`` threads and added in chunk order."""
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1], it, j
    cdef int c
    cdef double J
    cdef floating lr = <floating>lr_, mf = <floating>m
    for it in range(max_iter):
        for c in range(C):
            for j in range(n + 1):
                gb[c, j] = 0
        if C <= 1:
            J = _gd_rows(X, y, theta, logistic, 0, m, gb[0])
        else:
            if T > 1:
                for c in prange(C, num_threads=T, schedule="dynamic", chunksize=1):
                    tJ[c] = _gd_rows(X, y, theta, logistic, (m * c) // C, (m * (c + 1)) // C,
                                     gb[c])
            else:
                for c in range(C):
                    tJ[c] = _gd_rows(X, y, theta, logistic, (m * c) // C, (m * (c + 1)) // C,
                                     gb[c])
            J = 0
            for c in range(C):
                J += tJ[c]
                if c > 0:
                    for j in range(n + 1):
                        gb[0, j] += gb[c, j]
        J = J / m if logistic else 0.5 * J / m
        history[it] = J
        if isnan(J) or isinf(J):
            return it + 1
        theta[0] -= lr * (gb[0, 0] / mf)
        for j in range(n):
            theta[1 + j] -= lr * (gb[0, 1 + j] / mf)
        if it >= 1 and fabs(history[it] - history[it - 1]) < tol:
            return it + 1
    return max_iter


#: below this many entries of X, gradient descent uses BLAS gemv as the reference does
#: (bit-for-bit the same steps); above, one fused pass over X per iteration (BLAS would
#: read X twice: the cost of an iteration is reading X)
cdef Py_ssize_t _FUSED_MIN = 1 << 16
#: multiply-adds per thread and iteration above which the fused pass runs on threads (an
#: iteration reads X once from memory; two cores read it faster than one)
_THREAD_MIN_WORK = 1 << 20
#: on threads, the rows are cut into up to this many chunks (of at least _CHUNK_ROWS rows),
#: handed out as the threads come free, so that a core taken by another process makes its
#: thread do fewer instead of the iteration waiting for it (measured, MNIST 8,000 x 784
#: float32: one chunk per thread ran at 0.71x the numpy reference, 16 chunks at 1.17x)
_MAX_CHUNKS = 16
_CHUNK_ROWS = 256


def linear_gd(X, y, theta, lr, tol, max_iter, logistic, history):
    r"""Batch gradient descent for linear (``logistic=False``) or logistic regression.

    ``X`` (m, n) without the bias column; ``theta`` (n + 1,) with the bias in
    ``theta[0]``, updated in place.  Each iteration stores the cost
    :math:`J(\theta)` in ``history[it]`` then steps
    :math:`\theta \leftarrow \theta - \frac{\eta}{m} X_1^T (h - y)`; stops when
    :math:`|J_{it} - J_{it-1}| < tol`, after ``max_iter`` iterations, or at once
    (without stepping) when :math:`J` is not finite.  Returns the number of
    iterations run.
    """
    K = "linear_gd"
    chk.float_array(K, "X", X, ndim=2)
    chk.float_array(K, "y", y, ndim=1, dtype=X.dtype)
    chk.shape(K, "y", y, (X.shape[0],))
    chk.float_array(K, "theta", theta, ndim=1, dtype=X.dtype)
    chk.shape(K, "theta", theta, (X.shape[1] + 1,))
    chk.writable(K, "theta", theta)
    lr = chk.real(K, "lr", lr)
    tol = chk.real(K, "tol", tol)
    max_iter = chk.integer(K, "max_iter", max_iter, 0)
    if not isinstance(history, np.ndarray) or history.dtype != np.float64 or history.ndim != 1 \
            or not history.flags.c_contiguous:
        raise TypeError(f"{K}: history must be a C-contiguous 1-D float64 numpy array")
    chk.writable(K, "history", history)
    if history.shape[0] < max_iter:
        raise ValueError(f"{K}: history has {history.shape[0]} entries, fewer than "
                         f"max_iter={max_iter}")
    if X.shape[0] == 0:
        raise ValueError(f"{K}: X has no rows")
    if X.shape[0] >= 2**31 or X.shape[1] >= 2**31:
        raise ValueError(f"{K}: X of shape {X.shape} is too large for 32-bit BLAS indices")
    cdef int C, T
    if X.shape[0] * X.shape[1] >= _FUSED_MIN:
        C, T = _variants.load("mlp")._plan_chunks(X.shape[0], X.shape[1] + 1, _THREAD_MIN_WORK)
        if T > 1:
            C = min(_MAX_CHUNKS, max(T, X.shape[0] // _CHUNK_ROWS))
        gb = np.zeros((C, X.shape[1] + 1), dtype=X.dtype)
        tJ = np.zeros(C, dtype=np.float64)
        if X.dtype == np.float32:
            return _fused_entry[cython.float](X, y, theta, lr, tol, max_iter, bool(logistic),
                                              history, gb, tJ, C, T)
        return _fused_entry[cython.double](X, y, theta, lr, tol, max_iter, bool(logistic),
                                           history, gb, tJ, C, T)
    h = np.empty(X.shape[0], dtype=X.dtype)
    g = np.empty(max(1, X.shape[1]), dtype=X.dtype)
    terms = np.empty(X.shape[0], dtype=np.float64)
    if X.dtype == np.float32:
        return _gd_entry[cython.float](X, y, theta, lr, tol, max_iter, bool(logistic), history,
                                       h, g, terms)
    return _gd_entry[cython.double](X, y, theta, lr, tol, max_iter, bool(logistic), history,
                                    h, g, terms)


cdef Py_ssize_t _fused_entry(const floating[:, ::1] X, const floating[::1] y,
                             floating[::1] theta, double lr, double tol, Py_ssize_t max_iter,
                             bint logistic, double[::1] history, floating[:, ::1] gb,
                             double[::1] tJ, int C, int T):
    cdef Py_ssize_t n
    with nogil:
        n = _linear_gd_fused(X, y, theta, lr, tol, max_iter, logistic, history, gb, tJ, C, T)
    return n


cdef Py_ssize_t _gd_entry(const floating[:, ::1] X, const floating[::1] y, floating[::1] theta,
                          double lr, double tol, Py_ssize_t max_iter, bint logistic,
                          double[::1] history, floating[::1] h, floating[::1] g,
                          double[::1] terms):
    cdef Py_ssize_t n
    with nogil:
        n = _linear_gd(X, y, theta, lr, tol, max_iter, logistic, history, h, g, terms)
    return n


cdef inline floating _row_dot(const floating[:, ::1] X, Py_ssize_t i,
                              const floating[::1] w) noexcept nogil:
    """``X[i] @ w[1:]``: in order for short rows (as a BLAS dot does them); longer rows with
    vector accumulators (AVX-512) or eight running sums added pairwise at the end."""
    cdef Py_ssize_t j = 0, n = X.shape[1]
    cdef floating s = 0, s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0
    if n >= 32:
        while j + 8 <= n:
            s0 = s0 + X[i, j] * w[1 + j]
            s1 = s1 + X[i, j + 1] * w[2 + j]
            s2 = s2 + X[i, j + 2] * w[3 + j]
            s3 = s3 + X[i, j + 3] * w[4 + j]
            s4 = s4 + X[i, j + 4] * w[5 + j]
            s5 = s5 + X[i, j + 5] * w[6 + j]
            s6 = s6 + X[i, j + 6] * w[7 + j]
            s7 = s7 + X[i, j + 7] * w[8 + j]
            j += 8
        s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    while j < n:
        s = s + X[i, j] * w[1 + j]
        j += 1
    return s


cdef Py_ssize_t _perceptron(const floating[:, ::1] X, const floating[::1] y, floating[::1] w,
                            Py_ssize_t epochs, floating lr, int64_t[::1] errors) noexcept nogil:
    cdef Py_ssize_t e, i, j, m = X.shape[0], n = X.shape[1]
    cdef int64_t n_err
    cdef floating s, pred, upd
    for e in range(epochs):
        n_err = 0
        for i in range(m):
            s = _row_dot(X, i, w)
            pred = 1 if w[0] + s >= 0 else 0
            upd = lr * (y[i] - pred)
            if upd != 0:
                for j in range(n):
                    w[1 + j] += upd * X[i, j]
                w[0] += upd
                n_err += 1
        errors[e] = n_err
        if n_err == 0:
            return e + 1
    return epochs


def perceptron_train(X, y, w, epochs, lr, errors):
    r"""The perceptron rule, sample by sample, updating ``w`` in place.

    ``w`` (n + 1,) holds the bias in ``w[0]``; labels ``y`` are 0/1.  For each
    sample: :math:`\hat y = [w_0 + w_{1:}\cdot x \ge 0]`, then
    :math:`w \mathrel{+}= \eta (y - \hat y) (1, x)`.  ``errors[e]`` counts the
    misclassified samples of epoch ``e``; training stops after an epoch with
    none.  Returns the number of epochs run.
    """
    K = "perceptron_train"
    chk.float_array(K, "X", X, ndim=2)
    chk.float_array(K, "y", y, ndim=1, dtype=X.dtype)
    chk.shape(K, "y", y, (X.shape[0],))
    chk.float_array(K, "w", w, ndim=1, dtype=X.dtype)
    chk.shape(K, "w", w, (X.shape[1] + 1,))
    chk.writable(K, "w", w)
    epochs = chk.integer(K, "epochs", epochs, 0)
    lr = chk.real(K, "lr", lr)
    chk.int_array(K, "errors", errors)
    chk.writable(K, "errors", errors)
    if errors.shape[0] < epochs:
        raise ValueError(f"{K}: errors has {errors.shape[0]} entries, fewer than "
                         f"epochs={epochs}")
    if X.dtype == np.float32:
        return _perceptron_entry[cython.float](X, y, w, epochs, lr, errors)
    return _perceptron_entry[cython.double](X, y, w, epochs, lr, errors)


cdef Py_ssize_t _perceptron_entry(const floating[:, ::1] X, const floating[::1] y,
                                  floating[::1] w, Py_ssize_t epochs, floating lr,
                                  int64_t[::1] errors):
    cdef Py_ssize_t n
    with nogil:
        n = _perceptron(X, y, w, epochs, lr, errors)
    return n
