"""Word2vec kernels in Numba: :mod:`fastnet.reference.word2vec_kernels`, compiled.

Same names, signatures, random draws and update rule as the reference (read
its docstring for the contract).  What makes them fast:

* float32 throughout (every constant is ``np.float32``), the sigmoid table;
* noise words drawn in O(1) from the cumulative table through a guide table
  (no modulo, no binary search), one set per centre word shared by its whole
  window (pWord2Vec), so one centre word costs two small matrix products;
* those products are written as passes over 6, 4, 2 or 1 rows at once
  (``_dot6``, ``_axpy6``, ``_save_axpy6``...) that LLVM vectorises: at
  d ~ 100 the fixed cost of a pass (set-up, overlap checks, the remainder of d
  modulo the vector width, the horizontal sums of the dot products) is as
  large as its arithmetic, so the kernels make few, fat passes: one
  dot-product pass per context word, one update pass per context word (which
  also saves the row's old value), two update passes per output word;
* ``nogil=True``: Python threads run jobs in parallel, lock-free on the shared
  matrices (Hogwild!, as word2vec.c and gensim).

The registered wrappers check their arguments first, once per call
(:func:`fastnet._kernel_checks.word2vec_job`, the same check as the other
backends'): the compiled loops index without bounds checks.

The ``fastmath`` flags are ``nsz, arcp, contract, afn, reassoc`` (never
``nnan``/``ninf``): ``reassoc`` lets the dot products be vectorised.
"""
import numpy as np
from numba import njit

from fastnet._kernel_checks import word2vec_job
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
    if f < _F_MAX and f > -_F_MAX:
        return _TABLE[int((f + _F_MAX) * _F_SCALE)]
    if f >= _F_MAX:
        return _ONE
    if f <= -_F_MAX:
        return _ZERO
    return f   # NaN (diverged training): never a table index; it spreads to the vectors


@njit(inline="always")
def _neg_log_sigmoid(x):
    x = np.float64(x)
    return np.log1p(np.exp(-abs(x))) + max(-x, 0.0)


@njit(inline="always")
def _draw(cum_table, guide, gshift, r):
    target = np.int64(_rand32(r) >> _U1)
    i = np.int64(guide[target >> gshift])
    if i < 0 or i >= cum_table.shape[0]:   # a guide not made by make_guide: scan from 0
        i = 0
    while cum_table[i] <= target:          # stops at V - 1 at the latest: cum_table[-1] = 2**31
        i += 1
    return i


@njit(inline="always")
def _guide_shift(guide):
    bits = 0
    while (1 << bits) < guide.shape[0]:
        bits += 1
    return 31 - bits


# ----------------------------------------------------------- register blocks
# Each pass over a row of d floats has a fixed cost (loop set-up, overlap checks, the
# remainder of d modulo the vector width) comparable to its arithmetic at d ~ 100, so the
# kernels use few, fat passes: up to 6 output rows per dot-product pass and per update pass.
@njit(inline="always")
def _dot6(m, o0, o1, o2, o3, o4, o5, d):
    f0 = _ZERO
    f1 = _ZERO
    f2 = _ZERO
    f3 = _ZERO
    f4 = _ZERO
    f5 = _ZERO
    for t in range(d):
        mt = m[t]
        f0 += mt * o0[t]
        f1 += mt * o1[t]
        f2 += mt * o2[t]
        f3 += mt * o3[t]
        f4 += mt * o4[t]
        f5 += mt * o5[t]
    return f0, f1, f2, f3, f4, f5


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
def _axpy6(y, g0, x0, g1, x1, g2, x2, g3, x3, g4, x4, g5, x5, d):
    for t in range(d):
        y[t] += (g0 * x0[t] + g1 * x1[t]) + (g2 * x2[t] + g3 * x3[t]) + (g4 * x4[t] + g5 * x5[t])


@njit(inline="always")
def _axpy4(y, g0, x0, g1, x1, g2, x2, g3, x3, d):
    for t in range(d):
        y[t] += (g0 * x0[t] + g1 * x1[t]) + (g2 * x2[t] + g3 * x3[t])


@njit(inline="always")
def _axpy2(y, g0, x0, g1, x1, d):
    for t in range(d):
        y[t] += g0 * x0[t] + g1 * x1[t]


@njit(inline="always")
def _axpy1(y, g0, x0, d):
    for t in range(d):
        y[t] += g0 * x0[t]


@njit(inline="always")
def _add2(y0, y1, g0, g1, x, d):
    """``y0 += g0 x`` and ``y1 += g1 x`` in one pass (correct also when y0 is y1)."""
    for t in range(d):
        xt = x[t]
        y0[t] += g0 * xt
        y1[t] += g1 * xt


@njit(inline="always")
def _spread(rows, idx, g, n, x, d):
    """``rows[idx[j]] += g[j] x`` for ``j < n``, two rows per pass."""
    j = 0
    while j + 2 <= n:
        _add2(rows[idx[j]], rows[idx[j + 1]], g[j], g[j + 1], x, d)
        j += 2
    if j < n:
        _axpy1(rows[idx[j]], g[j], x, d)


@njit(inline="always")
def _set6(y, g0, x0, g1, x1, g2, x2, g3, x3, g4, x4, g5, x5, d):
    for t in range(d):
        y[t] = (g0 * x0[t] + g1 * x1[t]) + (g2 * x2[t] + g3 * x3[t]) + (g4 * x4[t] + g5 * x5[t])


@njit(inline="always")
def _set4(y, g0, x0, g1, x1, g2, x2, g3, x3, d):
    for t in range(d):
        y[t] = (g0 * x0[t] + g1 * x1[t]) + (g2 * x2[t] + g3 * x3[t])


@njit(inline="always")
def _set2(y, g0, x0, g1, x1, d):
    for t in range(d):
        y[t] = g0 * x0[t] + g1 * x1[t]


@njit(inline="always")
def _set1(y, g0, x0, d):
    for t in range(d):
        y[t] = g0 * x0[t]


@njit(inline="always")
def _save_axpy6(y, save, g0, x0, g1, x1, g2, x2, g3, x3, g4, x4, g5, x5, d):
    for t in range(d):
        v = y[t]
        save[t] = v
        y[t] = v + ((g0 * x0[t] + g1 * x1[t]) + (g2 * x2[t] + g3 * x3[t])
                    + (g4 * x4[t] + g5 * x5[t]))


@njit(inline="always")
def _save_axpy4(y, save, g0, x0, g1, x1, g2, x2, g3, x3, d):
    for t in range(d):
        v = y[t]
        save[t] = v
        y[t] = v + ((g0 * x0[t] + g1 * x1[t]) + (g2 * x2[t] + g3 * x3[t]))


@njit(inline="always")
def _save_axpy2(y, save, g0, x0, g1, x1, d):
    for t in range(d):
        v = y[t]
        save[t] = v
        y[t] = v + (g0 * x0[t] + g1 * x1[t])


@njit(inline="always")
def _save_axpy1(y, save, g0, x0, d):
    for t in range(d):
        v = y[t]
        save[t] = v
        y[t] = v + g0 * x0[t]


@njit(inline="always")
def _grad(f, label, alpha, exact):
    return (label - _sigmoid(f, exact)) * alpha


@njit(inline="always")
def _loss(f, label):
    return _neg_log_sigmoid(f if label > _ZERO else -f)


@njit(inline="always")
def _dots(h, syn1neg, outs, no, labels, alpha, exact, g, compute_loss, d):
    """``g[j] = alpha (label_j - sigma(h . syn1neg[outs[j]]))``; returns the loss."""
    loss = 0.0
    j = 0
    while j + 6 <= no:
        f0, f1, f2, f3, f4, f5 = _dot6(h, syn1neg[outs[j]], syn1neg[outs[j + 1]],
                                       syn1neg[outs[j + 2]], syn1neg[outs[j + 3]],
                                       syn1neg[outs[j + 4]], syn1neg[outs[j + 5]], d)
        g[j] = _grad(f0, labels[j], alpha, exact)
        g[j + 1] = _grad(f1, labels[j + 1], alpha, exact)
        g[j + 2] = _grad(f2, labels[j + 2], alpha, exact)
        g[j + 3] = _grad(f3, labels[j + 3], alpha, exact)
        g[j + 4] = _grad(f4, labels[j + 4], alpha, exact)
        g[j + 5] = _grad(f5, labels[j + 5], alpha, exact)
        if compute_loss:
            loss += (_loss(f0, labels[j]) + _loss(f1, labels[j + 1]) + _loss(f2, labels[j + 2])
                     + _loss(f3, labels[j + 3]) + _loss(f4, labels[j + 4])
                     + _loss(f5, labels[j + 5]))
        j += 6
    if j + 4 <= no:
        f0, f1, f2, f3 = _dot4(h, syn1neg[outs[j]], syn1neg[outs[j + 1]],
                               syn1neg[outs[j + 2]], syn1neg[outs[j + 3]], d)
        g[j] = _grad(f0, labels[j], alpha, exact)
        g[j + 1] = _grad(f1, labels[j + 1], alpha, exact)
        g[j + 2] = _grad(f2, labels[j + 2], alpha, exact)
        g[j + 3] = _grad(f3, labels[j + 3], alpha, exact)
        if compute_loss:
            loss += (_loss(f0, labels[j]) + _loss(f1, labels[j + 1]) + _loss(f2, labels[j + 2])
                     + _loss(f3, labels[j + 3]))
        j += 4
    if j + 2 <= no:
        f0, f1 = _dot2(h, syn1neg[outs[j]], syn1neg[outs[j + 1]], d)
        g[j] = _grad(f0, labels[j], alpha, exact)
        g[j + 1] = _grad(f1, labels[j + 1], alpha, exact)
        if compute_loss:
            loss += _loss(f0, labels[j]) + _loss(f1, labels[j + 1])
        j += 2
    if j < no:
        f0 = _dot1(h, syn1neg[outs[j]], d)
        g[j] = _grad(f0, labels[j], alpha, exact)
        if compute_loss:
            loss += _loss(f0, labels[j])
    return loss


@njit(inline="always")
def _combine(y, g, rows, idx, n, d, first):
    """``y = sum_j g[j] rows[idx[j]]`` (``first``) or ``y += ...``, for ``j < n``, in blocks."""
    j = 0
    if first:
        if n >= 6:
            _set6(y, g[0], rows[idx[0]], g[1], rows[idx[1]], g[2], rows[idx[2]],
                  g[3], rows[idx[3]], g[4], rows[idx[4]], g[5], rows[idx[5]], d)
            j = 6
        elif n >= 4:
            _set4(y, g[0], rows[idx[0]], g[1], rows[idx[1]], g[2], rows[idx[2]],
                  g[3], rows[idx[3]], d)
            j = 4
        elif n >= 2:
            _set2(y, g[0], rows[idx[0]], g[1], rows[idx[1]], d)
            j = 2
        else:
            _set1(y, g[0], rows[idx[0]], d)
            j = 1
    while j + 6 <= n:
        _axpy6(y, g[j], rows[idx[j]], g[j + 1], rows[idx[j + 1]], g[j + 2], rows[idx[j + 2]],
               g[j + 3], rows[idx[j + 3]], g[j + 4], rows[idx[j + 4]], g[j + 5],
               rows[idx[j + 5]], d)
        j += 6
    if j + 4 <= n:
        _axpy4(y, g[j], rows[idx[j]], g[j + 1], rows[idx[j + 1]],
               g[j + 2], rows[idx[j + 2]], g[j + 3], rows[idx[j + 3]], d)
        j += 4
    if j + 2 <= n:
        _axpy2(y, g[j], rows[idx[j]], g[j + 1], rows[idx[j + 1]], d)
        j += 2
    if j < n:
        _axpy1(y, g[j], rows[idx[j]], d)


@njit(inline="always")
def _save_combine(y, save, g, rows, idx, n, d):
    """``save[:] = y`` then ``y += sum_j g[j] rows[idx[j]]``, the copy fused in the first pass."""
    j = 0
    if n >= 6:
        _save_axpy6(y, save, g[0], rows[idx[0]], g[1], rows[idx[1]], g[2], rows[idx[2]],
                    g[3], rows[idx[3]], g[4], rows[idx[4]], g[5], rows[idx[5]], d)
        j = 6
    elif n >= 4:
        _save_axpy4(y, save, g[0], rows[idx[0]], g[1], rows[idx[1]], g[2], rows[idx[2]],
                    g[3], rows[idx[3]], d)
        j = 4
    elif n >= 2:
        _save_axpy2(y, save, g[0], rows[idx[0]], g[1], rows[idx[1]], d)
        j = 2
    else:
        _save_axpy1(y, save, g[0], rows[idx[0]], d)
        j = 1
    _combine(y, g[j:], rows, idx[j:], n - j, d, False)


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
    longest = _max_sentence(sent_offsets, sent_begin, sent_end)
    W = max(min(2 * window, longest), 1)     # a context has at most min(2 window, n - 1) words
    gshift = _guide_shift(guide)
    r = rng_state
    buf = np.empty(longest, dtype=np.int32)
    ctx = np.empty(W, dtype=np.int64)
    first = np.empty(W, dtype=np.int64)      # first[x]: position of ctx[x]'s first occurrence
    outs = np.empty(negative + 1, dtype=np.int64)
    labels = np.zeros(negative + 1, dtype=np.float32)
    labels[0] = _ONE
    G = np.empty((W, negative + 1), dtype=np.float32)    # G[x, j]
    Gt = np.empty((negative + 1, W), dtype=np.float32)   # its transpose
    M0 = np.empty((W, d), dtype=np.float32)              # context rows before the update
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
                    w = buf[j]
                    ctx[k] = w
                    first[k] = k
                    for x in range(k):
                        if ctx[x] == w:
                            first[k] = first[x]
                            break
                    k += 1
            if k == 0:
                continue
            no, r = _outputs(buf[i], negative, cum_table, guide, gshift, outs, r)
            # G = alpha (labels - sigma(M O^T)), one row per context position
            for x in range(k):
                loss += _dots(syn0[ctx[x]], syn1neg, outs, no, labels, alpha, exact, G[x],
                              compute_loss, d)
                for j in range(no):
                    Gt[j, x] = G[x, j]
            # M += G O (O before its update), keeping M's old rows in M0
            for x in range(k):
                if first[x] == x:
                    _save_combine(syn0[ctx[x]], M0[x], G[x], syn1neg, outs, no, d)
                else:
                    _combine(syn0[ctx[x]], G[x], syn1neg, outs, no, d, False)
            # O += G^T M (M before its update)
            for j in range(no):
                _combine(syn1neg[outs[j]], Gt[j], M0, first, k, d, False)
    return r, effective, loss


@njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _cbow_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int, cum_table,
                guide, negative, window, shrink_windows, cbow_mean, alpha_begin, alpha_end,
                rng_state, exact, compute_loss):
    d = syn0.shape[1]
    longest = _max_sentence(sent_offsets, sent_begin, sent_end)
    W = max(min(2 * window, longest), 1)     # a context has at most min(2 window, n - 1) words
    gshift = _guide_shift(guide)
    r = rng_state
    buf = np.empty(longest, dtype=np.int32)
    ctx = np.empty(W, dtype=np.int64)
    scale = np.empty(W, dtype=np.float32)
    scale2 = np.empty(W, dtype=np.float32)
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
            c = inv if cbow_mean else _ONE
            c2 = _ONE if cbow_mean else inv      # gensim: the summed input sends back e / k
            for x in range(k):
                scale[x] = c
                scale2[x] = c2
            _combine(h, scale, syn0, ctx, k, d, True)          # h = sum (or mean) of the context
            loss += _dots(h, syn1neg, outs, no, labels, alpha, exact, g, compute_loss, d)
            _combine(e, g, syn1neg, outs, no, d, True)         # e = sum g O (O before its update)
            _spread(syn1neg, outs, g, no, h, d)                # O += g h
            _spread(syn0, ctx, scale2, k, e, d)                # every context row += e
    return r, effective, loss


# ----------------------------------------------------------- the registered kernels
def w2v_sg_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int, cum_table,
                 guide, negative, window, shrink_windows, alpha_begin, alpha_end, rng_state,
                 exact_sigmoid, compute_loss):
    """Skip-gram negative-sampling job; see :func:`fastnet.reference.word2vec_kernels.w2v_sg_batch`."""
    sent_begin, sent_end, negative, window = word2vec_job(
        "w2v_sg_batch", syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
        cum_table, guide, negative, window, alpha_begin, alpha_end)
    r, effective, loss = _sg_batch(
        syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
        cum_table, guide, negative, window, bool(shrink_windows), float(alpha_begin),
        float(alpha_end), np.uint64(int(rng_state) & 0xFFFFFFFFFFFFFFFF), bool(exact_sigmoid),
        bool(compute_loss))
    return int(r), int(effective), float(loss)


def w2v_cbow_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                   cum_table, guide, negative, window, shrink_windows, cbow_mean, alpha_begin,
                   alpha_end, rng_state, exact_sigmoid, compute_loss):
    """CBOW negative-sampling job; see :func:`fastnet.reference.word2vec_kernels.w2v_cbow_batch`."""
    sent_begin, sent_end, negative, window = word2vec_job(
        "w2v_cbow_batch", syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
        cum_table, guide, negative, window, alpha_begin, alpha_end)
    r, effective, loss = _cbow_batch(
        syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
        cum_table, guide, negative, window, bool(shrink_windows), bool(cbow_mean),
        float(alpha_begin), float(alpha_end), np.uint64(int(rng_state) & 0xFFFFFFFFFFFFFFFF),
        bool(exact_sigmoid), bool(compute_loss))
    return int(r), int(effective), float(loss)


KERNELS = {"w2v_sg_batch": w2v_sg_batch, "w2v_cbow_batch": w2v_cbow_batch}
