# The word2vec kernels, included by word2vec.pyx (baseline x86-64 / any CPU) and
# word2vec_avx2.pyx (compiled for AVX2 + FMA, imported only on CPUs that have them).
import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint64_t, uint32_t, int64_t, int32_t
from libc.math cimport expf, exp, log1p, fabs
from libc.stdlib cimport malloc, free

from fastnet._kernel_checks import word2vec_job
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
    if f < F_MAX and f > -F_MAX:
        return SIGMOID_TABLE[<int>((f + F_MAX) * F_SCALE)]
    if f >= F_MAX:
        return one
    if f <= -F_MAX:
        return 0
    return f   # NaN (diverged training): converting it to an index would be undefined


cdef inline double _neg_log_sigmoid(double x) noexcept nogil:
    return log1p(exp(-fabs(x))) + (-x if x < 0 else 0.0)


cdef inline int64_t _draw(const int64_t *cum_table, int64_t V, const int32_t *guide,
                          int gshift, uint64_t r) noexcept nogil:
    cdef int64_t target = <int64_t>(_rand32(r) >> 1)
    cdef int64_t i = guide[target >> gshift]
    if i < 0 or i >= V:              # a guide not made by make_guide: scan from 0
        i = 0
    while cum_table[i] <= target:    # stops at V - 1 at the latest: cum_table[V - 1] = 2**31
        i += 1
    return i


# ----------------------------------------------------------------- register blocks
# A pass over a row of d floats has a fixed cost (loop set-up, overlap checks, the remainder of
# d modulo the vector width) comparable to its arithmetic at d ~ 100: few, fat passes of up to
# 6 rows each.
cdef inline void _dot6(const float *m, const float *o0, const float *o1, const float *o2,
                       const float *o3, const float *o4, const float *o5, int d,
                       float *out) noexcept nogil:
    cdef float f0 = 0, f1 = 0, f2 = 0, f3 = 0, f4 = 0, f5 = 0, mt
    cdef int t
    for t in range(d):
        mt = m[t]
        f0 += mt * o0[t]
        f1 += mt * o1[t]
        f2 += mt * o2[t]
        f3 += mt * o3[t]
        f4 += mt * o4[t]
        f5 += mt * o5[t]
    out[0] = f0
    out[1] = f1
    out[2] = f2
    out[3] = f3
    out[4] = f4
    out[5] = f5


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


# mode 0: y += sum g x;  mode 1: y = sum g x;  mode 2: save = y, then y += sum g x
cdef inline void _pass6(int mode, float *y, float *save, const float *g, const float **x,
                        int d) noexcept nogil:
    cdef float g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3], g4 = g[4], g5 = g[5], v, acc
    cdef const float *x0 = x[0]
    cdef const float *x1 = x[1]
    cdef const float *x2 = x[2]
    cdef const float *x3 = x[3]
    cdef const float *x4 = x[4]
    cdef const float *x5 = x[5]
    cdef int t
    if mode == 0:
        for t in range(d):
            y[t] += (g0 * x0[t] + g1 * x1[t]) + (g2 * x2[t] + g3 * x3[t]) + \
                    (g4 * x4[t] + g5 * x5[t])
    elif mode == 1:
        for t in range(d):
            y[t] = (g0 * x0[t] + g1 * x1[t]) + (g2 * x2[t] + g3 * x3[t]) + \
                   (g4 * x4[t] + g5 * x5[t])
    else:
        for t in range(d):
            v = y[t]
            save[t] = v
            y[t] = v + ((g0 * x0[t] + g1 * x1[t]) + (g2 * x2[t] + g3 * x3[t]) +
                        (g4 * x4[t] + g5 * x5[t]))


cdef inline void _pass4(int mode, float *y, float *save, const float *g, const float **x,
                        int d) noexcept nogil:
    cdef float g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3], v
    cdef const float *x0 = x[0]
    cdef const float *x1 = x[1]
    cdef const float *x2 = x[2]
    cdef const float *x3 = x[3]
    cdef int t
    if mode == 0:
        for t in range(d):
            y[t] += (g0 * x0[t] + g1 * x1[t]) + (g2 * x2[t] + g3 * x3[t])
    elif mode == 1:
        for t in range(d):
            y[t] = (g0 * x0[t] + g1 * x1[t]) + (g2 * x2[t] + g3 * x3[t])
    else:
        for t in range(d):
            v = y[t]
            save[t] = v
            y[t] = v + ((g0 * x0[t] + g1 * x1[t]) + (g2 * x2[t] + g3 * x3[t]))


cdef inline void _pass2(int mode, float *y, float *save, const float *g, const float **x,
                        int d) noexcept nogil:
    cdef float g0 = g[0], g1 = g[1], v
    cdef const float *x0 = x[0]
    cdef const float *x1 = x[1]
    cdef int t
    if mode == 0:
        for t in range(d):
            y[t] += g0 * x0[t] + g1 * x1[t]
    elif mode == 1:
        for t in range(d):
            y[t] = g0 * x0[t] + g1 * x1[t]
    else:
        for t in range(d):
            v = y[t]
            save[t] = v
            y[t] = v + (g0 * x0[t] + g1 * x1[t])


cdef inline void _pass1(int mode, float *y, float *save, const float *g, const float **x,
                        int d) noexcept nogil:
    cdef float g0 = g[0], v
    cdef const float *x0 = x[0]
    cdef int t
    if mode == 0:
        for t in range(d):
            y[t] += g0 * x0[t]
    elif mode == 1:
        for t in range(d):
            y[t] = g0 * x0[t]
    else:
        for t in range(d):
            v = y[t]
            save[t] = v
            y[t] = v + g0 * x0[t]


cdef inline void _add2(float *y0, float *y1, float g0, float g1, const float *x,
                       int d) noexcept nogil:
    """``y0 += g0 x`` and ``y1 += g1 x`` in one pass (correct also when y0 is y1)."""
    cdef int t
    cdef float xt
    for t in range(d):
        xt = x[t]
        y0[t] += g0 * xt
        y1[t] += g1 * xt


cdef inline void _spread(float *base, const int64_t *idx, const float *g, int n,
                         const float *x, int d) noexcept nogil:
    """``base[idx[j]] += g[j] x`` (rows of d floats) for ``j < n``, two rows per pass."""
    cdef int j = 0
    while j + 2 <= n:
        _add2(base + idx[j] * d, base + idx[j + 1] * d, g[j], g[j + 1], x, d)
        j += 2
    if j < n:
        _pass1(0, base + idx[j] * d, NULL, g + j, &x, d)


cdef inline void _combine(int mode, float *y, float *save, const float *g,
                          const float **x, int n, int d) noexcept nogil:
    """``y (+)= sum_j g[j] x[j]`` for ``j < n`` in blocks of 6/4/2/1 rows; ``mode`` as above
    applies to the first pass, the others accumulate."""
    cdef int j = 0
    if n >= 6:
        _pass6(mode, y, save, g, x, d)
        j = 6
    elif n >= 4:
        _pass4(mode, y, save, g, x, d)
        j = 4
    elif n >= 2:
        _pass2(mode, y, save, g, x, d)
        j = 2
    elif n == 1:
        _pass1(mode, y, save, g, x, d)
        j = 1
    while j + 6 <= n:
        _pass6(0, y, save, g + j, x + j, d)
        j += 6
    if j + 4 <= n:
        _pass4(0, y, save, g + j, x + j, d)
        j += 4
    if j + 2 <= n:
        _pass2(0, y, save, g + j, x + j, d)
        j += 2
    if j < n:
        _pass1(0, y, save, g + j, x + j, d)


cdef inline float _grad(float f, float label, float alpha, bint exact) noexcept nogil:
    return (label - _sigmoid(f, exact)) * alpha


cdef inline double _loss(float f, float label) noexcept nogil:
    return _neg_log_sigmoid(f if label > 0 else -f)


cdef inline double _dots(const float *h, const float **o, int no, const float *labels,
                         float alpha, bint exact, float *g, bint compute_loss,
                         int d) noexcept nogil:
    """``g[j] = alpha (label_j - sigma(h . o[j]))``; returns the loss."""
    cdef double loss = 0
    cdef float f[6]
    cdef int j = 0, q, b
    while j < no:
        if j + 6 <= no:
            _dot6(h, o[j], o[j + 1], o[j + 2], o[j + 3], o[j + 4], o[j + 5], d, f)
            b = 6
        elif j + 4 <= no:
            _dot4(h, o[j], o[j + 1], o[j + 2], o[j + 3], d, f)
            b = 4
        elif j + 2 <= no:
            _dot2(h, o[j], o[j + 1], d, f)
            b = 2
        else:
            f[0] = _dot1(h, o[j], d)
            b = 1
        for q in range(b):
            g[j + q] = _grad(f[q], labels[j + q], alpha, exact)
            if compute_loss:
                loss += _loss(f[q], labels[j + q])
        j += b
    return loss


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
    int64_t V                 # words in the vocabulary (rows of syn0, entries of cum_table)
    const int32_t *guide
    int gshift
    int negative
    int window
    int W                     # rows of the context buffers: min(2 window, longest sentence)
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
    float *M0
    float *h
    float *e
    float *scale
    float *scale2
    const float **orows
    const float **mrows
    int64_t *first


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
        noise = _draw(job.cum_table, job.V, job.guide, job.gshift, job.r)
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
    cdef int d = job.d, n, i, k, no, x, j, y
    cdef int64_t W = job.W, NO = job.negative + 1
    cdef int64_t s, w
    cdef float alpha
    for s in range(job.sent_begin, job.sent_end):
        alpha = _alpha(job, s)
        n = _subsample(job, s)
        job.effective += n
        for i in range(n):
            k = _context(job, i, n)
            if k == 0:
                continue
            no = _outputs(job, job.buf[i])
            for j in range(no):
                job.orows[j] = job.syn1neg + job.outs[j] * d
            # first occurrence of each context word (its old row is saved once)
            for x in range(k):
                job.first[x] = x
                for y in range(x):
                    if job.ctx[y] == job.ctx[x]:
                        job.first[x] = job.first[y]
                        break
                job.mrows[x] = job.M0 + job.first[x] * <int64_t>d
            # G = alpha (labels - sigma(M O^T)), one row per context position
            for x in range(k):
                job.loss += _dots(job.syn0 + job.ctx[x] * d, job.orows, no, job.labels, alpha,
                                  job.exact, job.G + x * NO, job.compute_loss, d)
                for j in range(no):
                    job.Gt[j * W + x] = job.G[x * NO + j]
            # M += G O (O before its update), keeping M's old rows in M0
            for x in range(k):
                _combine(2 if job.first[x] == x else 0, job.syn0 + job.ctx[x] * d,
                         job.M0 + x * <int64_t>d, job.G + x * NO, job.orows, no, d)
            # O += G^T M (M before its update)
            for j in range(no):
                _combine(0, job.syn1neg + job.outs[j] * d, NULL, job.Gt + j * W, job.mrows,
                         k, d)


cdef void _train_cbow(Job *job) noexcept nogil:
    cdef int d = job.d, n, i, k, no, x, j, t
    cdef int64_t s
    cdef float alpha, inv, c, c2
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
            for j in range(no):
                job.orows[j] = job.syn1neg + job.outs[j] * d
            inv = (<float>1) / (<float>k)
            c = inv if job.cbow_mean else 1
            c2 = 1 if job.cbow_mean else inv     # gensim: the summed input sends back e / k
            for x in range(k):
                job.scale[x] = c
                job.scale2[x] = c2
                job.mrows[x] = job.syn0 + job.ctx[x] * d
            _combine(1, h, NULL, job.scale, job.mrows, k, d)       # h = sum (or mean) of context
            job.loss += _dots(h, job.orows, no, job.labels, alpha, job.exact, job.G,
                              job.compute_loss, d)
            _combine(1, e, NULL, job.G, job.orows, no, d)          # e = sum g O (O before update)
            _spread(job.syn1neg, job.outs, job.G, no, h, d)        # O += g h
            _spread(job.syn0, job.ctx, job.scale2, k, e, d)        # every context row += e


# ----------------------------------------------------------------- checked wrappers
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
    cdef int64_t s, longest = 0, W
    cdef int d = syn0.shape[1], q
    cdef size_t NO = <size_t>negative + 1
    for s in range(sent_begin, sent_end):
        if sent_offsets[s + 1] - sent_offsets[s] > longest:
            longest = sent_offsets[s + 1] - sent_offsets[s]
    W = min(2 * <int64_t>window, longest)      # a context has at most min(2 window, n - 1) words
    if W < 1:
        W = 1
    job.syn0 = &syn0[0, 0]
    job.syn1neg = &syn1neg[0, 0]
    job.d = d
    job.words = &words[0] if words.shape[0] else NULL
    job.offsets = &sent_offsets[0]
    job.sent_begin = sent_begin
    job.sent_end = sent_end
    job.sample_int = &sample_int[0]
    job.cum_table = &cum_table[0]
    job.V = cum_table.shape[0]
    job.guide = &guide[0]
    job.gshift = _gshift(guide.shape[0])
    job.negative = negative
    job.window = window
    job.W = <int>W
    job.shrink = shrink_windows
    job.cbow_mean = cbow_mean
    job.alpha_begin = alpha_begin
    job.alpha_end = alpha_end
    job.r = rng_state
    job.exact = exact_sigmoid
    job.compute_loss = compute_loss
    job.effective = 0
    job.loss = 0
    # sizes in size_t: W * (negative + 1) and W * d may exceed a C int
    job.buf = <int32_t *>malloc(<size_t>max(longest, 1) * sizeof(int32_t))
    job.ctx = <int64_t *>malloc(<size_t>W * sizeof(int64_t))
    job.first = <int64_t *>malloc(<size_t>W * sizeof(int64_t))
    job.outs = <int64_t *>malloc(NO * sizeof(int64_t))
    job.labels = <float *>malloc(NO * sizeof(float))
    job.G = <float *>malloc(<size_t>W * NO * sizeof(float))
    job.Gt = <float *>malloc(<size_t>W * NO * sizeof(float))
    job.M0 = <float *>malloc(<size_t>W * <size_t>d * sizeof(float))
    job.h = <float *>malloc(<size_t>d * sizeof(float))
    job.e = <float *>malloc(<size_t>d * sizeof(float))
    job.scale = <float *>malloc(<size_t>W * sizeof(float))
    job.scale2 = <float *>malloc(<size_t>W * sizeof(float))
    job.orows = <const float **>malloc(NO * sizeof(float *))
    job.mrows = <const float **>malloc(<size_t>W * sizeof(float *))
    try:
        if (job.buf == NULL or job.ctx == NULL or job.first == NULL or job.outs == NULL
                or job.labels == NULL or job.G == NULL or job.Gt == NULL or job.M0 == NULL
                or job.h == NULL or job.e == NULL or job.scale == NULL or job.scale2 == NULL
                or job.orows == NULL
                or job.mrows == NULL):
            raise MemoryError("word2vec kernel: cannot allocate its scratch buffers")
        for q in range(negative + 1):
            job.labels[q] = 1 if q == 0 else 0
        with nogil:
            if sg:
                _train_sg(&job)
            else:
                _train_cbow(&job)
    finally:
        free(job.buf)
        free(job.ctx)
        free(job.first)
        free(job.outs)
        free(job.labels)
        free(job.G)
        free(job.Gt)
        free(job.M0)
        free(job.h)
        free(job.e)
        free(job.scale)
        free(job.scale2)
        free(<void *>job.orows)
        free(<void *>job.mrows)
    return int(job.r), int(job.effective), float(job.loss)


def w2v_sg_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                 cum_table, guide, negative, window, shrink_windows, alpha_begin, alpha_end,
                 rng_state, exact_sigmoid, compute_loss):
    """Skip-gram negative-sampling job; see :func:`fastnet.reference.word2vec_kernels.w2v_sg_batch`."""
    sent_begin, sent_end, negative, window = word2vec_job(
        "w2v_sg_batch", syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
        cum_table, guide, negative, window, alpha_begin, alpha_end)
    return _run(True, syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                cum_table, guide, negative, window, shrink_windows, False, alpha_begin,
                alpha_end, int(rng_state) & 0xFFFFFFFFFFFFFFFF, exact_sigmoid, compute_loss)


def w2v_cbow_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                   cum_table, guide, negative, window, shrink_windows, cbow_mean, alpha_begin,
                   alpha_end, rng_state, exact_sigmoid, compute_loss):
    """CBOW negative-sampling job; see :func:`fastnet.reference.word2vec_kernels.w2v_cbow_batch`."""
    sent_begin, sent_end, negative, window = word2vec_job(
        "w2v_cbow_batch", syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
        cum_table, guide, negative, window, alpha_begin, alpha_end)
    return _run(False, syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                cum_table, guide, negative, window, shrink_windows, cbow_mean, alpha_begin,
                alpha_end, int(rng_state) & 0xFFFFFFFFFFFFFFFF, exact_sigmoid, compute_loss)
