# cython: language_level=3
# distutils: extra_compile_args = -fno-trapping-math -fno-signed-zeros -fassociative-math -fno-math-errno
"""Word2vec kernels in Cython: :mod:`fastnet.reference.word2vec_kernels`, compiled.

Same names, signatures, random draws and update rule as the reference (read
its docstring for the contract) and as the Numba kernels.  Each ``def``
checks its arguments, then trains inside ``with nogil:`` over
``cdef ... noexcept nogil`` helpers, so Python threads run jobs in parallel,
lock-free on the shared matrices (as word2vec.c and gensim do).

Speed: float32 throughout, the sigmoid table, O(1) noise draws (guide table,
no modulo), one set of noise words per centre word shared by its window
(pWord2Vec), and the two small matrix products of each centre word written as
4-, 2- and 1-row blocks (``_dot4``, ``_axpy4``...): 4 multiply-adds per load
and store.  This file is compiled with ``-fassociative-math
-fno-signed-zeros -fno-trapping-math -fno-math-errno`` (the C analogue of the
Numba kernels' ``reassoc, nsz`` fastmath flags; never ``-ffinite-math-only``)
so that gcc vectorises the dot products.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint64_t, uint32_t, int64_t, int32_t
from libc.math cimport expf, exp, log1p, fabs
from libc.stdlib cimport malloc, free

from fastnet.reference.word2vec_kernels import (SIGMOID_TABLE as _REF_TABLE, MAX_EXP as _MAX_EXP,
                                                EXP_TABLE_SIZE as _TABLE_SIZE)

cnp.import_array()

cdef enum:
    TABLE_LEN = 1001          # EXP_TABLE_SIZE + 1

cdef float SIGMOID_TABLE[TABLE_LEN]
cdef float F_MAX = <float>_MAX_EXP
cdef float F_SCALE = <float>(_TABLE_SIZE / _MAX_EXP / 2)
if _REF_TABLE.shape[0] != TABLE_LEN:
    raise ImportError("fastnet._cython.word2vec: the sigmoid table size differs from the reference's")
for _i in range(TABLE_LEN):
    SIGMOID_TABLE[_i] = _REF_TABLE[_i]

cdef uint64_t LCG_MUL = 25214903917ULL
cdef uint64_t LCG_ADD = 11ULL


# ----------------------------------------------------------------- small helpers
cdef inline uint64_t _rand32(uint64_t r) noexcept nogil:
    return (r >> 16) & 0xFFFFFFFFULL


cdef inline uint64_t _next(uint64_t r) noexcept nogil:
    return r * LCG_MUL + LCG_ADD


cdef inline float _sigmoid(float f, bint exact) noexcept nogil:
    cdef float one = 1
    if exact:
        return one / (one + expf(-f))
    if f >= F_MAX:
        return one
    if f <= -F_MAX:
        return 0
    return SIGMOID_TABLE[<int>((f + F_MAX) * F_SCALE)]


cdef inline double _neg_log_sigmoid(double x) noexcept nogil:
    return log1p(exp(-fabs(x))) + (-x if x < 0 else 0.0)


cdef inline int64_t _draw(const int64_t *cum_table, const int32_t *guide, int gshift,
                          uint64_t r) noexcept nogil:
    cdef int64_t target = <int64_t>(_rand32(r) >> 1)
    cdef int64_t i = guide[target >> gshift]
    while cum_table[i] <= target:
        i += 1
    return i


# ----------------------------------------------------------------- register blocks
cdef inline void _dot4(const float *m, const float *o0, const float *o1, const float *o2,
                       const float *o3, int d, float *out) noexcept nogil:
    cdef float f0 = 0, f1 = 0, f2 = 0, f3 = 0, mt
    cdef int t
    for t in range(d):
        mt = m[t]
        f0 += mt * o0[t]
        f1 += mt * o1[t]
        f2 += mt * o2[t]
        f3 += mt * o3[t]
    out[0] = f0
    out[1] = f1
    out[2] = f2
    out[3] = f3


cdef inline void _dot2(const float *m, const float *o0, const float *o1, int d,
                       float *out) noexcept nogil:
    cdef float f0 = 0, f1 = 0, mt
    cdef int t
    for t in range(d):
        mt = m[t]
        f0 += mt * o0[t]
        f1 += mt * o1[t]
    out[0] = f0
    out[1] = f1


cdef inline float _dot1(const float *m, const float *o0, int d) noexcept nogil:
    cdef float f0 = 0
    cdef int t
    for t in range(d):
        f0 += m[t] * o0[t]
    return f0


cdef inline void _axpy4(float *y, float g0, const float *x0, float g1, const float *x1,
                        float g2, const float *x2, float g3, const float *x3,
                        int d) noexcept nogil:
    cdef int t
    for t in range(d):
        y[t] += g0 * x0[t] + g1 * x1[t] + g2 * x2[t] + g3 * x3[t]


cdef inline void _axpy2(float *y, float g0, const float *x0, float g1, const float *x1,
                        int d) noexcept nogil:
    cdef int t
    for t in range(d):
        y[t] += g0 * x0[t] + g1 * x1[t]


cdef inline void _axpy1(float *y, float g0, const float *x0, int d) noexcept nogil:
    cdef int t
    for t in range(d):
        y[t] += g0 * x0[t]


cdef inline double _dots(const float *h, const float *syn1neg, const int64_t *outs, int no,
                         const float *labels, float alpha, bint exact, float *g,
                         bint compute_loss, int d) noexcept nogil:
    """``g[j] = alpha (label_j - sigma(h . syn1neg[outs[j]]))``; returns the loss."""
    cdef double loss = 0
    cdef float f[4]
    cdef int j = 0, q
    while j + 4 <= no:
        _dot4(h, syn1neg + outs[j] * d, syn1neg + outs[j + 1] * d, syn1neg + outs[j + 2] * d,
              syn1neg + outs[j + 3] * d, d, f)
        for q in range(4):
            g[j + q] = (labels[j + q] - _sigmoid(f[q], exact)) * alpha
            if compute_loss:
                loss += _neg_log_sigmoid(f[q] if labels[j + q] > 0 else -f[q])
        j += 4
    if j + 2 <= no:
        _dot2(h, syn1neg + outs[j] * d, syn1neg + outs[j + 1] * d, d, f)
        for q in range(2):
            g[j + q] = (labels[j + q] - _sigmoid(f[q], exact)) * alpha
            if compute_loss:
                loss += _neg_log_sigmoid(f[q] if labels[j + q] > 0 else -f[q])
        j += 2
    if j < no:
        f[0] = _dot1(h, syn1neg + outs[j] * d, d)
        g[j] = (labels[j] - _sigmoid(f[0], exact)) * alpha
        if compute_loss:
            loss += _neg_log_sigmoid(f[0] if labels[j] > 0 else -f[0])
    return loss


cdef inline void _combine(float *y, const float *g, const float *rows, const int64_t *idx,
                          int n, int d) noexcept nogil:
    """``y += sum_j g[j] * rows[idx[j]]`` for ``j < n``, in blocks of 4."""
    cdef int j = 0
    while j + 4 <= n:
        _axpy4(y, g[j], rows + idx[j] * d, g[j + 1], rows + idx[j + 1] * d,
               g[j + 2], rows + idx[j + 2] * d, g[j + 3], rows + idx[j + 3] * d, d)
        j += 4
    if j + 2 <= n:
        _axpy2(y, g[j], rows + idx[j] * d, g[j + 1], rows + idx[j + 1] * d, d)
        j += 2
    if j < n:
        _axpy1(y, g[j], rows + idx[j] * d, d)


# ----------------------------------------------------------------- shared job state
cdef struct Job:
    float *syn0
    float *syn1neg
    int d
    const int32_t *words
    const int64_t *offsets
    int64_t sent_begin
    int64_t sent_end
    const uint32_t *sample_int
    const int64_t *cum_table
    const int32_t *guide
    int gshift
    int negative
    int window
    bint shrink
    bint cbow_mean
    double alpha_begin
    double alpha_end
    uint64_t r
    bint exact
    bint compute_loss
    int64_t effective
    double loss
    # scratch
    int32_t *buf
    int64_t *ctx
    int64_t *outs
    float *labels
    float *G
    float *Gt
    float *dM
    float *h
    float *e
    float *ones


cdef inline int _subsample(Job *job, int64_t s) noexcept nogil:
    cdef int n = 0
    cdef int64_t p
    cdef int32_t w
    cdef bint keep
    for p in range(job.offsets[s], job.offsets[s + 1]):
        w = job.words[p]
        keep = <uint64_t>job.sample_int[w] >= _rand32(job.r)
        job.r = _next(job.r)
        if keep:
            job.buf[n] = w
            n += 1
    return n


cdef inline int _context(Job *job, int i, int n) noexcept nogil:
    """Fill ``job.ctx`` with centre ``i``'s context words; returns their number."""
    cdef int b = 0, lo, hi, j, k = 0
    if job.shrink:
        b = <int>((_rand32(job.r) * <uint64_t>job.window) >> 32)
        job.r = _next(job.r)
    lo = i - job.window + b
    if lo < 0:
        lo = 0
    hi = i + job.window + 1 - b
    if hi > n:
        hi = n
    for j in range(lo, hi):
        if j != i:
            job.ctx[k] = job.buf[j]
            k += 1
    return k


cdef inline int _outputs(Job *job, int64_t word) noexcept nogil:
    cdef int no = 1, q
    cdef int64_t noise
    job.outs[0] = word
    for q in range(job.negative):
        noise = _draw(job.cum_table, job.guide, job.gshift, job.r)
        job.r = _next(job.r)
        if noise == word:
            continue
        job.outs[no] = noise
        no += 1
    return no


cdef inline float _alpha(Job *job, int64_t s) noexcept nogil:
    cdef int64_t start = job.offsets[job.sent_begin]
    cdef int64_t total = job.offsets[job.sent_end] - start
    cdef double frac = 0.0
    if total > 0:
        frac = <double>(job.offsets[s] - start) / <double>total
    return <float>(job.alpha_begin + (job.alpha_end - job.alpha_begin) * frac)


cdef void _train_sg(Job *job) noexcept nogil:
    cdef int d = job.d, n, i, k, no, x, j, t, W = 2 * job.window
    cdef int64_t s
    cdef float alpha
    cdef float *m
    cdef float *dm
    for s in range(job.sent_begin, job.sent_end):
        alpha = _alpha(job, s)
        n = _subsample(job, s)
        job.effective += n
        for i in range(n):
            k = _context(job, i, n)
            if k == 0:
                continue
            no = _outputs(job, job.buf[i])
            # G = alpha (labels - sigma(M O^T)), one row per context word
            for x in range(k):
                job.loss += _dots(job.syn0 + job.ctx[x] * d, job.syn1neg, job.outs, no,
                                  job.labels, alpha, job.exact, job.G + x * (job.negative + 1),
                                  job.compute_loss, d)
                for j in range(no):
                    job.Gt[j * W + x] = job.G[x * (job.negative + 1) + j]
            # dM = G O (from the outputs before their update)
            for x in range(k):
                dm = job.dM + x * d
                for t in range(d):
                    dm[t] = 0
                _combine(dm, job.G + x * (job.negative + 1), job.syn1neg, job.outs, no, d)
            # O += G^T M (from the inputs before their update)
            for j in range(no):
                _combine(job.syn1neg + job.outs[j] * d, job.Gt + j * W, job.syn0, job.ctx, k, d)
            # M += dM
            for x in range(k):
                m = job.syn0 + job.ctx[x] * d
                dm = job.dM + x * d
                for t in range(d):
                    m[t] += dm[t]


cdef void _train_cbow(Job *job) noexcept nogil:
    cdef int d = job.d, n, i, k, no, x, j, t
    cdef int64_t s
    cdef float alpha, inv
    cdef float *m
    cdef float *h = job.h
    cdef float *e = job.e
    for s in range(job.sent_begin, job.sent_end):
        alpha = _alpha(job, s)
        n = _subsample(job, s)
        job.effective += n
        for i in range(n):
            k = _context(job, i, n)
            if k == 0:
                continue
            no = _outputs(job, job.buf[i])
            inv = (<float>1) / (<float>k)
            for t in range(d):
                h[t] = 0
            _combine(h, job.ones, job.syn0, job.ctx, k, d)
            if job.cbow_mean:
                for t in range(d):
                    h[t] *= inv
            job.loss += _dots(h, job.syn1neg, job.outs, no, job.labels, alpha, job.exact,
                              job.G, job.compute_loss, d)
            for t in range(d):
                e[t] = 0
            _combine(e, job.G, job.syn1neg, job.outs, no, d)   # outputs before their update
            for j in range(no):
                _axpy1(job.syn1neg + job.outs[j] * d, job.G[j], h, d)
            if not job.cbow_mean:
                for t in range(d):
                    e[t] *= inv
            for x in range(k):
                m = job.syn0 + job.ctx[x] * d
                for t in range(d):
                    m[t] += e[t]


# ----------------------------------------------------------------- checked wrappers
def _check(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int, cum_table,
           guide, negative, window):
    for name, arr, dt, nd in (("syn0", syn0, np.float32, 2), ("syn1neg", syn1neg, np.float32, 2),
                              ("words", words, np.int32, 1), ("sent_offsets", sent_offsets, np.int64, 1),
                              ("sample_int", sample_int, np.uint32, 1),
                              ("cum_table", cum_table, np.int64, 1), ("guide", guide, np.int32, 1)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
        if arr.dtype != dt or arr.ndim != nd or not arr.flags.c_contiguous:
            raise TypeError(f"{name} must be a C-contiguous {nd}-D {np.dtype(dt).name} array, "
                            f"got {arr.ndim}-D {arr.dtype}")
    V = syn0.shape[0]
    if syn1neg.shape != syn0.shape:
        raise ValueError(f"syn1neg has shape {syn1neg.shape}, expected syn0's {syn0.shape}")
    if sample_int.shape[0] != V or cum_table.shape[0] != V:
        raise ValueError(f"sample_int and cum_table must have {V} entries (the vocabulary)")
    if V == 0 or syn0.shape[1] == 0:
        raise ValueError("syn0 must have at least one word and one dimension")
    if cum_table[V - 1] != (1 << 31):
        raise ValueError("cum_table[-1] must be 2**31 (see make_cum_table)")
    g = guide.shape[0]
    if g == 0 or g & (g - 1) or g > (1 << 31):
        raise ValueError(f"guide must have a power-of-two length, got {g}")
    if not 0 <= sent_begin <= sent_end < sent_offsets.shape[0]:
        raise ValueError(f"sentences {sent_begin}:{sent_end} out of range for "
                         f"{sent_offsets.shape[0] - 1} sentences")
    if negative < 1 or window < 1:
        raise ValueError(f"negative and window must be >= 1, got {negative} and {window}")


cdef int _gshift(int64_t n) noexcept nogil:
    cdef int bits = 0
    while (<int64_t>1 << bits) < n:
        bits += 1
    return 31 - bits


cdef object _run(bint sg, float[:, ::1] syn0, float[:, ::1] syn1neg, const int32_t[::1] words,
                 const int64_t[::1] sent_offsets, int64_t sent_begin, int64_t sent_end,
                 const uint32_t[::1] sample_int, const int64_t[::1] cum_table,
                 const int32_t[::1] guide, int negative, int window, bint shrink_windows,
                 bint cbow_mean, double alpha_begin, double alpha_end, uint64_t rng_state,
                 bint exact_sigmoid, bint compute_loss):
    cdef Job job
    cdef int64_t s, longest = 0
    cdef int W = 2 * window, d = syn0.shape[1], q
    if words.shape[0] and sent_offsets[sent_end] > words.shape[0]:
        raise ValueError("sent_offsets point past the end of words")
    for s in range(sent_begin, sent_end):
        if sent_offsets[s + 1] - sent_offsets[s] > longest:
            longest = sent_offsets[s + 1] - sent_offsets[s]
    job.syn0 = &syn0[0, 0]
    job.syn1neg = &syn1neg[0, 0]
    job.d = d
    job.words = &words[0] if words.shape[0] else NULL
    job.offsets = &sent_offsets[0]
    job.sent_begin = sent_begin
    job.sent_end = sent_end
    job.sample_int = &sample_int[0]
    job.cum_table = &cum_table[0]
    job.guide = &guide[0]
    job.gshift = _gshift(guide.shape[0])
    job.negative = negative
    job.window = window
    job.shrink = shrink_windows
    job.cbow_mean = cbow_mean
    job.alpha_begin = alpha_begin
    job.alpha_end = alpha_end
    job.r = rng_state
    job.exact = exact_sigmoid
    job.compute_loss = compute_loss
    job.effective = 0
    job.loss = 0
    job.buf = <int32_t *>malloc(max(longest, 1) * sizeof(int32_t))
    job.ctx = <int64_t *>malloc(W * sizeof(int64_t))
    job.outs = <int64_t *>malloc((negative + 1) * sizeof(int64_t))
    job.labels = <float *>malloc((negative + 1) * sizeof(float))
    job.G = <float *>malloc(W * (negative + 1) * sizeof(float))
    job.Gt = <float *>malloc(W * (negative + 1) * sizeof(float))
    job.dM = <float *>malloc(W * d * sizeof(float))
    job.h = <float *>malloc(d * sizeof(float))
    job.e = <float *>malloc(d * sizeof(float))
    job.ones = <float *>malloc(W * sizeof(float))
    try:
        if (job.buf == NULL or job.ctx == NULL or job.outs == NULL or job.labels == NULL
                or job.G == NULL or job.Gt == NULL or job.dM == NULL or job.h == NULL
                or job.e == NULL or job.ones == NULL):
            raise MemoryError("word2vec kernel: cannot allocate its scratch buffers")
        for q in range(negative + 1):
            job.labels[q] = 1 if q == 0 else 0
        for q in range(W):
            job.ones[q] = 1
        with nogil:
            if sg:
                _train_sg(&job)
            else:
                _train_cbow(&job)
    finally:
        free(job.buf)
        free(job.ctx)
        free(job.outs)
        free(job.labels)
        free(job.G)
        free(job.Gt)
        free(job.dM)
        free(job.h)
        free(job.e)
        free(job.ones)
    return int(job.r), int(job.effective), float(job.loss)


def w2v_sg_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                 cum_table, guide, negative, window, shrink_windows, alpha_begin, alpha_end,
                 rng_state, exact_sigmoid, compute_loss):
    """Skip-gram negative-sampling job; see :func:`fastnet.reference.word2vec_kernels.w2v_sg_batch`."""
    _check(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int, cum_table,
           guide, negative, window)
    return _run(True, syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                cum_table, guide, negative, window, shrink_windows, False, alpha_begin,
                alpha_end, int(rng_state) & 0xFFFFFFFFFFFFFFFF, exact_sigmoid, compute_loss)


def w2v_cbow_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                   cum_table, guide, negative, window, shrink_windows, cbow_mean, alpha_begin,
                   alpha_end, rng_state, exact_sigmoid, compute_loss):
    """CBOW negative-sampling job; see :func:`fastnet.reference.word2vec_kernels.w2v_cbow_batch`."""
    _check(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int, cum_table,
           guide, negative, window)
    return _run(False, syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                cum_table, guide, negative, window, shrink_windows, cbow_mean, alpha_begin,
                alpha_end, int(rng_state) & 0xFFFFFFFFFFFFFFFF, exact_sigmoid, compute_loss)
