"""Word2vec kernels in Numba: :mod:`fastnet.reference.word2vec_kernels`, compiled.

Same names, signatures, random draws and update rule as the reference (read
its docstring for the contract).  What makes them fast:

* float32 throughout (every constant is ``np.float32``), the sigmoid table;
* noise words drawn in O(1) from the cumulative table through a guide table
  (no modulo, no binary search), one set per centre word shared by its whole
  window (pWord2Vec), so one centre word costs two small matrix products;
* those products are written as 4-, 2- and 1-row register blocks (``_dot4``,
  ``_axpy4``...) that LLVM vectorises: each pass over a 100-float row does 4
  multiply-adds per load/store instead of one;
* ``nogil=True``: Python threads run jobs in parallel, lock-free on the shared
  matrices (Hogwild!, as word2vec.c and gensim).

The ``fastmath`` flags are ``nsz, arcp, contract, afn, reassoc`` (never
``nnan``/``ninf``): ``reassoc`` lets the dot products be vectorised.
"""
import numpy as np
from numba import njit

from fastnet.reference.word2vec_kernels import (SIGMOID_TABLE, MAX_EXP, EXP_TABLE_SIZE,
                                                LCG_MULTIPLIER, LCG_INCREMENT)

_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

_MUL = np.uint64(LCG_MULTIPLIER)
_ADD = np.uint64(LCG_INCREMENT)
_U1 = np.uint64(1)
_U16 = np.uint64(16)
_U32 = np.uint64(32)
_M32 = np.uint64(0xFFFFFFFF)
_TABLE = np.array(SIGMOID_TABLE)          # a global array: frozen into the compiled code
_F_MAX = np.float32(MAX_EXP)
_F_SCALE = np.float32(EXP_TABLE_SIZE / MAX_EXP / 2)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)


@njit(inline="always")
def _rand32(r):
    return (r >> _U16) & _M32


@njit(inline="always")
def _next(r):
    return r * _MUL + _ADD


@njit(inline="always")
def _sigmoid(f, exact):
    if exact:
        return _ONE / (_ONE + np.exp(-f))
    if f >= _F_MAX:
        return _ONE
    if f <= -_F_MAX:
        return _ZERO
    return _TABLE[int((f + _F_MAX) * _F_SCALE)]


@njit(inline="always")
def _neg_log_sigmoid(x):
    x = np.float64(x)
    return np.log1p(np.exp(-abs(x))) + max(-x, 0.0)


@njit(inline="always")
def _draw(cum_table, guide, gshift, r):
    target = np.int64(_rand32(r) >> _U1)
    i = np.int64(guide[target >> gshift])
    while cum_table[i] <= target:
        i += 1
    return i


@njit(inline="always")
def _guide_shift(guide):
    bits = 0
    while (1 << bits) < guide.shape[0]:
        bits += 1
    return 31 - bits


# ----------------------------------------------------------- register blocks
@njit(inline="always")
def _dot4(m, o0, o1, o2, o3, d):
    f0 = _ZERO
    f1 = _ZERO
    f2 = _ZERO
    f3 = _ZERO
    for t in range(d):
        mt = m[t]
        f0 += mt * o0[t]
        f1 += mt * o1[t]
        f2 += mt * o2[t]
        f3 += mt * o3[t]
    return f0, f1, f2, f3


@njit(inline="always")
def _dot2(m, o0, o1, d):
    f0 = _ZERO
    f1 = _ZERO
    for t in range(d):
        mt = m[t]
        f0 += mt * o0[t]
        f1 += mt * o1[t]
    return f0, f1


@njit(inline="always")
def _dot1(m, o0, d):
    f0 = _ZERO
    for t in range(d):
        f0 += m[t] * o0[t]
    return f0


@njit(inline="always")
def _axpy4(y, g0, x0, g1, x1, g2, x2, g3, x3, d):
    for t in range(d):
        y[t] += g0 * x0[t] + g1 * x1[t] + g2 * x2[t] + g3 * x3[t]


@njit(inline="always")
def _axpy2(y, g0, x0, g1, x1, d):
    for t in range(d):
        y[t] += g0 * x0[t] + g1 * x1[t]


@njit(inline="always")
def _axpy1(y, g0, x0, d):
    for t in range(d):
        y[t] += g0 * x0[t]


@njit(inline="always")
def _dots(h, syn1neg, outs, no, labels, alpha, exact, g, compute_loss, d):
    """``g[j] = alpha (label_j - sigma(h . syn1neg[outs[j]]))``; returns the loss."""
    loss = 0.0
    j = 0
    while j + 4 <= no:
        f0, f1, f2, f3 = _dot4(h, syn1neg[outs[j]], syn1neg[outs[j + 1]],
                               syn1neg[outs[j + 2]], syn1neg[outs[j + 3]], d)
        g[j] = (labels[j] - _sigmoid(f0, exact)) * alpha
        g[j + 1] = (labels[j + 1] - _sigmoid(f1, exact)) * alpha
        g[j + 2] = (labels[j + 2] - _sigmoid(f2, exact)) * alpha
        g[j + 3] = (labels[j + 3] - _sigmoid(f3, exact)) * alpha
        if compute_loss:
            loss += _neg_log_sigmoid(f0 if labels[j] > _ZERO else -f0)
            loss += _neg_log_sigmoid(f1 if labels[j + 1] > _ZERO else -f1)
            loss += _neg_log_sigmoid(f2 if labels[j + 2] > _ZERO else -f2)
            loss += _neg_log_sigmoid(f3 if labels[j + 3] > _ZERO else -f3)
        j += 4
    if j + 2 <= no:
        f0, f1 = _dot2(h, syn1neg[outs[j]], syn1neg[outs[j + 1]], d)
        g[j] = (labels[j] - _sigmoid(f0, exact)) * alpha
        g[j + 1] = (labels[j + 1] - _sigmoid(f1, exact)) * alpha
        if compute_loss:
            loss += _neg_log_sigmoid(f0 if labels[j] > _ZERO else -f0)
            loss += _neg_log_sigmoid(f1 if labels[j + 1] > _ZERO else -f1)
        j += 2
    if j < no:
        f0 = _dot1(h, syn1neg[outs[j]], d)
        g[j] = (labels[j] - _sigmoid(f0, exact)) * alpha
        if compute_loss:
            loss += _neg_log_sigmoid(f0 if labels[j] > _ZERO else -f0)
    return loss


@njit(inline="always")
def _combine(y, g, rows, idx, n, d):
    """``y += sum_j g[j] * rows[idx[j]]`` for ``j < n``, in blocks of 4."""
    j = 0
    while j + 4 <= n:
        _axpy4(y, g[j], rows[idx[j]], g[j + 1], rows[idx[j + 1]],
               g[j + 2], rows[idx[j + 2]], g[j + 3], rows[idx[j + 3]], d)
        j += 4
    if j + 2 <= n:
        _axpy2(y, g[j], rows[idx[j]], g[j + 1], rows[idx[j + 1]], d)
        j += 2
    if j < n:
        _axpy1(y, g[j], rows[idx[j]], d)


@njit(inline="always")
def _subsample(words, begin, end, sample_int, buf, r):
    n = 0
    for p in range(begin, end):
        w = words[p]
        keep = np.uint64(sample_int[w]) >= _rand32(r)
        r = _next(r)
        if keep:
            buf[n] = w
            n += 1
    return n, r


@njit(inline="always")
def _window(i, n, window, shrink_windows, r):
    b = 0
    if shrink_windows:
        b = np.int64((_rand32(r) * np.uint64(window)) >> _U32)
        r = _next(r)
    lo = max(0, i - window + b)
    hi = min(n, i + window + 1 - b)
    return lo, hi, r


@njit(inline="always")
def _outputs(word, negative, cum_table, guide, gshift, outs, r):
    outs[0] = word
    no = 1
    for _ in range(negative):
        noise = _draw(cum_table, guide, gshift, r)
        r = _next(r)
        if noise == word:
            continue
        outs[no] = noise
        no += 1
    return no, r


@njit(inline="always")
def _max_sentence(sent_offsets, sent_begin, sent_end):
    longest = 0
    for s in range(sent_begin, sent_end):
        longest = max(longest, sent_offsets[s + 1] - sent_offsets[s])
    return longest


# ----------------------------------------------------------- kernels
@njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _sg_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int, cum_table,
              guide, negative, window, shrink_windows, alpha_begin, alpha_end, rng_state,
              exact, compute_loss):
    d = syn0.shape[1]
    gshift = _guide_shift(guide)
    r = rng_state
    buf = np.empty(_max_sentence(sent_offsets, sent_begin, sent_end), dtype=np.int32)
    ctx = np.empty(2 * window, dtype=np.int64)
    outs = np.empty(negative + 1, dtype=np.int64)
    labels = np.zeros(negative + 1, dtype=np.float32)
    labels[0] = _ONE
    G = np.empty((2 * window, negative + 1), dtype=np.float32)   # G[x, j]
    Gt = np.empty((negative + 1, 2 * window), dtype=np.float32)  # its transpose
    dM = np.empty((2 * window, d), dtype=np.float32)
    start = sent_offsets[sent_begin]
    total = sent_offsets[sent_end] - start
    effective = 0
    loss = 0.0
    for s in range(sent_begin, sent_end):
        frac = (sent_offsets[s] - start) / total if total > 0 else 0.0
        alpha = np.float32(alpha_begin + (alpha_end - alpha_begin) * frac)
        n, r = _subsample(words, sent_offsets[s], sent_offsets[s + 1], sample_int, buf, r)
        effective += n
        for i in range(n):
            lo, hi, r = _window(i, n, window, shrink_windows, r)
            k = 0
            for j in range(lo, hi):
                if j != i:
                    ctx[k] = buf[j]
                    k += 1
            if k == 0:
                continue
            no, r = _outputs(buf[i], negative, cum_table, guide, gshift, outs, r)
            # G = alpha (labels - sigma(M O^T)), one row per context word
            for x in range(k):
                loss += _dots(syn0[ctx[x]], syn1neg, outs, no, labels, alpha, exact, G[x],
                              compute_loss, d)
                for j in range(no):
                    Gt[j, x] = G[x, j]
            # dM = G O (from the outputs before their update)
            for x in range(k):
                dm = dM[x]
                for t in range(d):
                    dm[t] = _ZERO
                _combine(dm, G[x], syn1neg, outs, no, d)
            # O += G^T M (from the inputs before their update)
            for j in range(no):
                _combine(syn1neg[outs[j]], Gt[j], syn0, ctx, k, d)
            # M += dM
            for x in range(k):
                m = syn0[ctx[x]]
                dm = dM[x]
                for t in range(d):
                    m[t] += dm[t]
    return r, effective, loss


@njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _cbow_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int, cum_table,
                guide, negative, window, shrink_windows, cbow_mean, alpha_begin, alpha_end,
                rng_state, exact, compute_loss):
    d = syn0.shape[1]
    gshift = _guide_shift(guide)
    r = rng_state
    buf = np.empty(_max_sentence(sent_offsets, sent_begin, sent_end), dtype=np.int32)
    ctx = np.empty(2 * window, dtype=np.int64)
    ones = np.ones(2 * window, dtype=np.float32)
    outs = np.empty(negative + 1, dtype=np.int64)
    labels = np.zeros(negative + 1, dtype=np.float32)
    labels[0] = _ONE
    g = np.empty(negative + 1, dtype=np.float32)
    h = np.empty(d, dtype=np.float32)
    e = np.empty(d, dtype=np.float32)
    start = sent_offsets[sent_begin]
    total = sent_offsets[sent_end] - start
    effective = 0
    loss = 0.0
    for s in range(sent_begin, sent_end):
        frac = (sent_offsets[s] - start) / total if total > 0 else 0.0
        alpha = np.float32(alpha_begin + (alpha_end - alpha_begin) * frac)
        n, r = _subsample(words, sent_offsets[s], sent_offsets[s + 1], sample_int, buf, r)
        effective += n
        for i in range(n):
            lo, hi, r = _window(i, n, window, shrink_windows, r)
            k = 0
            for j in range(lo, hi):
                if j != i:
                    ctx[k] = buf[j]
                    k += 1
            if k == 0:
                continue
            no, r = _outputs(buf[i], negative, cum_table, guide, gshift, outs, r)
            inv = _ONE / np.float32(k)
            for t in range(d):
                h[t] = _ZERO
            _combine(h, ones, syn0, ctx, k, d)
            if cbow_mean:
                for t in range(d):
                    h[t] *= inv
            loss += _dots(h, syn1neg, outs, no, labels, alpha, exact, g, compute_loss, d)
            for t in range(d):
                e[t] = _ZERO
            _combine(e, g, syn1neg, outs, no, d)      # from the outputs before their update
            for j in range(no):
                _axpy1(syn1neg[outs[j]], g[j], h, d)
            if not cbow_mean:
                for t in range(d):
                    e[t] *= inv
            for x in range(k):
                m = syn0[ctx[x]]
                for t in range(d):
                    m[t] += e[t]
    return r, effective, loss


# ----------------------------------------------------------- the registered kernels
def w2v_sg_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int, cum_table,
                 guide, negative, window, shrink_windows, alpha_begin, alpha_end, rng_state,
                 exact_sigmoid, compute_loss):
    """Skip-gram negative-sampling job; see :func:`fastnet.reference.word2vec_kernels.w2v_sg_batch`."""
    r, effective, loss = _sg_batch(
        syn0, syn1neg, words, sent_offsets, int(sent_begin), int(sent_end), sample_int,
        cum_table, guide, int(negative), int(window), bool(shrink_windows), float(alpha_begin),
        float(alpha_end), np.uint64(int(rng_state) & 0xFFFFFFFFFFFFFFFF), bool(exact_sigmoid),
        bool(compute_loss))
    return int(r), int(effective), float(loss)


def w2v_cbow_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                   cum_table, guide, negative, window, shrink_windows, cbow_mean, alpha_begin,
                   alpha_end, rng_state, exact_sigmoid, compute_loss):
    """CBOW negative-sampling job; see :func:`fastnet.reference.word2vec_kernels.w2v_cbow_batch`."""
    r, effective, loss = _cbow_batch(
        syn0, syn1neg, words, sent_offsets, int(sent_begin), int(sent_end), sample_int,
        cum_table, guide, int(negative), int(window), bool(shrink_windows), bool(cbow_mean),
        float(alpha_begin), float(alpha_end), np.uint64(int(rng_state) & 0xFFFFFFFFFFFFFFFF),
        bool(exact_sigmoid), bool(compute_loss))
    return int(r), int(effective), float(loss)


KERNELS = {"w2v_sg_batch": w2v_sg_batch, "w2v_cbow_batch": w2v_cbow_batch}
