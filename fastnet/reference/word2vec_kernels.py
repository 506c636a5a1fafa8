r"""Word2vec training kernels in numpy, written for reading: the oracle.

The course ends with word embeddings: skip-gram (maximise
:math:`p(C \mid w)`, predict the context from the centre word) and CBOW
(maximise :math:`p(w \mid C)`, predict the centre word from its context),
both trained with *negative sampling*.  Each word has an input vector
(a row of ``syn0``, the embedding ``model.wv.vectors``) and an output vector
(a row of ``syn1neg``).  For an input vector :math:`h` and an output word
:math:`o` with label :math:`y_o` (1 for the word to predict, 0 for a
"negative" word drawn from the noise distribution), the loss is the binary
cross-entropy of :math:`\sigma(h \cdot v'_o)`:

.. math::

    \ell = -\log \sigma(h\cdot v'_w) - \sum_{k=1}^{K} \log \sigma(-h\cdot v'_{n_k}),

and one step of gradient descent with learning rate :math:`\alpha` is, with
:math:`g_o = \alpha\,(y_o - \sigma(h\cdot v'_o))`,

.. math::

    v'_o \leftarrow v'_o + g_o\,h, \qquad h \leftarrow h + \sum_o g_o\, v'_o .

Kernel contract (every backend: same names, same signatures)
------------------------------------------------------------
The public :class:`fastnet.Word2Vec` validates and prepares everything; every
backend's kernels (this one included) still check their arguments once per
call (:func:`fastnet._kernel_checks.word2vec_job`: dtypes, shapes, the job's
offsets and word indices...), so that no argument makes a compiled kernel read
out of bounds.  The arguments are:

* ``syn0``, ``syn1neg``: float32, C-contiguous, shape ``(V, d)``, updated
  **in place** (several threads may update them at once, lock-free, as
  word2vec.c and gensim do);
* ``words``: int32, the corpus encoded as vocabulary indices, sentence after
  sentence; ``sent_offsets``: int64, sentence ``s`` is
  ``words[sent_offsets[s]:sent_offsets[s + 1]]``; a call trains on sentences
  ``sent_begin <= s < sent_end`` (a "job");
* ``sample_int``: uint32 ``(V,)``, a word is kept by subsampling when
  ``sample_int[w] >= rand32`` (``2**32 - 1`` keeps it always; see
  :func:`sample_ints`);
* ``cum_table``: int64 ``(V,)``, cumulative ``count**ns_exponent`` scaled so
  that ``cum_table[-1] == 2**31`` (:func:`make_cum_table`); ``guide``: int32,
  of a power-of-two length, ``guide[g]`` = the first ``i`` with
  ``cum_table[i] > g << gshift`` (:func:`make_guide`), which lets the
  compiled kernels find a draw in ``O(1)``; the reference uses
  ``searchsorted`` and gets the same word (a guide entry outside ``0..V-1``
  makes the compiled kernels scan from 0: same word, never out of bounds;
  checking every entry would cost a pass over the guide per job);
* ``negative >= 1``, ``window >= 1``; ``alpha_begin``/``alpha_end``: the
  learning rate at the first and after the last word of the job, linearly
  interpolated per sentence by the position of its first word;
* ``rng_state``: an unsigned 64-bit integer, the state of the random
  generator (see below).  Each kernel returns
  ``(rng_state, effective_words, loss)``: the updated state, the number of
  words kept by subsampling, and (if ``compute_loss``) the float64 sum of the
  losses :math:`\ell` above, else ``0.0``.

Randomness: word2vec.c's generator, identical in every backend
---------------------------------------------------------------
``state = (state * 25214903917 + 11) mod 2**64``; a draw takes
``rand32 = (state >> 16) & 0xFFFFFFFF`` *then* advances the state.  Draws,
in this order:

1. per word of a sentence, in order: one draw for subsampling (always, also
   when nothing is subsampled); the kept words form the sentence that is
   trained (so subsampling widens the window, as in word2vec.c);
2. per centre word ``i`` of the kept sentence: if ``shrink_windows``, one
   draw for the reduction ``b = (rand32 * window) >> 32`` (``0 <= b <
   window``, no modulo), the effective window being ``window - b``; the
   context is the kept words within that distance in the same sentence;
   a centre with an empty context is skipped (no further draws);
3. then ``negative`` draws of noise words: ``target = rand32 >> 1``
   (31 bits) and the word is the first ``i`` with ``cum_table[i] > target``;
   a draw equal to the centre word is dropped (not redrawn), as in word2vec.c.

Update rule: one snapshot per centre word (pWord2Vec)
-----------------------------------------------------
For each centre word the outputs are :math:`O = [w, n_1..n_K]` (the centre
word, label 1, and its noise words, label 0): **one set of negatives shared
by the whole window** (Ji et al. 2016, "Parallelizing Word2Vec in Shared and
Distributed Memory").  All gradients of one centre word are computed from the
vectors as they were before that centre word's update, so that the update is
two small matrix products:

* skip-gram: with :math:`M` the context words' input vectors (one row per
  context position), :math:`G_{co} = \alpha(y_o - \sigma(M_c\cdot v'_o))`,
  :math:`M \mathrel{+}= G\,O` and :math:`O \mathrel{+}= G^\top M` (rows of a
  word occurring twice get both contributions).
* CBOW: :math:`h = \sum_{c} M_c` (divided by the number of context words if
  ``cbow_mean``), :math:`g_o = \alpha(y_o - \sigma(h\cdot v'_o))`,
  :math:`e = \sum_o g_o v'_o` (divided by the number of context words if not
  ``cbow_mean``, as gensim does), :math:`v'_o \mathrel{+}= g_o h` and every
  context row gets :math:`+e`.

Sigmoid
-------
``exact_sigmoid=True``: :math:`\sigma(f) = 1/(1+e^{-f})` in float32 (used by
the parity tests: compiled kernels match this reference within 1e-5 after an
epoch).  ``exact_sigmoid=False`` (the default of training, faster):
word2vec.c's table, :math:`\sigma = 1` for :math:`f \ge 6`, :math:`0` for
:math:`f \le -6`, else ``SIGMOID_TABLE[int((f + 6) * (1000 / 12))]``
(float32 arithmetic; the table has 1001 entries so rounding at the top edge
stays inside).  The table is read only for :math:`-6 < f < 6`: a NaN ``f``
(training that diverged) gives a NaN :math:`\sigma`, which spreads to the
vectors, where :class:`fastnet.Word2Vec` notices it at the end of the epoch
(``DivergenceError``); it never becomes a table index.  The loss is always
computed exactly, in float64.
"""
import math

import numpy as np

from fastnet._kernel_checks import word2vec_job

__all__ = ["w2v_sg_batch", "w2v_cbow_batch", "KERNELS", "LCG_MULTIPLIER", "LCG_INCREMENT",
           "MAX_EXP", "EXP_TABLE_SIZE", "SIGMOID_TABLE", "CUM_TABLE_DOMAIN", "make_cum_table",
           "make_guide", "sample_ints", "lcg_next", "rand32", "job_seed"]

#: word2vec.c's linear congruential generator (Java's ``Random`` multiplier).
LCG_MULTIPLIER = 25214903917
LCG_INCREMENT = 11
_MASK64 = (1 << 64) - 1
_MASK32 = 0xFFFFFFFF

#: Sigmoid table: word2vec.c's range and resolution.
MAX_EXP = 6
EXP_TABLE_SIZE = 1000
_xs = (np.arange(EXP_TABLE_SIZE + 1, dtype=np.float64) / EXP_TABLE_SIZE * 2 - 1) * MAX_EXP
#: float32 ``sigma((i / 1000 * 2 - 1) * 6)`` for ``i = 0..1000``.
SIGMOID_TABLE = (1.0 / (1.0 + np.exp(-_xs))).astype(np.float32)
SIGMOID_TABLE.setflags(write=False)
del _xs
_F_MAX = np.float32(MAX_EXP)
_F_SCALE = np.float32(EXP_TABLE_SIZE / MAX_EXP / 2)

#: ``cum_table[-1]``: noise draws are 31-bit integers.
CUM_TABLE_DOMAIN = 1 << 31


# ------------------------------------------------------------------ tables (shared)
def make_cum_table(counts, ns_exponent=0.75):
    """The cumulative noise distribution ``count**ns_exponent``, scaled to ``2**31``.

    Parameters
    ----------
    counts : array_like of int, shape (V,)
        Word counts (all >= 1).
    ns_exponent : float
        Exponent of the unigram distribution (0.75 in word2vec; 0 samples
        uniformly, negative values favour rare words).

    Returns
    -------
    ndarray of int64, shape (V,)
        Non-decreasing, ``cum_table[-1] == 2**31``; word ``i`` is drawn with
        probability ``(cum_table[i] - cum_table[i-1]) / 2**31``.

    Raises
    ------
    ValueError
        ``count**ns_exponent`` is not a distribution (a negative count, all
        counts 0, or a count of 0 with ``ns_exponent < 0``).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.size == 0:
        return np.zeros(0, dtype=np.int64)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        p = counts ** float(ns_exponent)
        cum = np.cumsum(p)
    if (counts < 0).any() or not np.isfinite(cum[-1]) or cum[-1] <= 0:
        raise ValueError(f"the noise distribution count**ns_exponent (ns_exponent="
                         f"{ns_exponent:g}) is not a distribution for these word counts (min "
                         f"{counts.min():g}, max {counts.max():g}): counts must be >= 0, not all "
                         f"0, and > 0 when ns_exponent < 0")
    table = np.round(cum / cum[-1] * CUM_TABLE_DOMAIN).astype(np.int64)
    table[-1] = CUM_TABLE_DOMAIN
    return table


def make_guide(cum_table):
    """Guide table for O(1) draws from ``cum_table``.

    ``guide[g]`` is the first index ``i`` with ``cum_table[i] > g << gshift``,
    where ``len(guide) == 2**(31 - gshift)`` is a power of two of at least
    twice the vocabulary (at most ``2**24``).  A draw ``target`` (31 bits)
    starts its forward scan at ``guide[target >> gshift]``.
    """
    n = max(int(cum_table.shape[0]), 1)
    bits = min(max(int(math.ceil(math.log2(2 * n))), 1), 24)
    gshift = 31 - bits
    starts = np.arange(1 << bits, dtype=np.int64) << gshift
    guide = np.searchsorted(cum_table, starts, side="right").astype(np.int32)
    return np.minimum(guide, max(n - 1, 0)).astype(np.int32)


def sample_ints(counts, sample):
    """gensim's subsampling thresholds as uint32 (keep word w iff ``sample_int[w] >= rand32``).

    With :math:`t` = ``sample * sum(counts)`` (or, for ``sample >= 1``,
    ``sample * (3 + sqrt 5) / 2``), a word of count :math:`c` is kept with
    probability :math:`\\min(1, (\\sqrt{c/t} + 1)\\, t / c)` (word2vec.c's
    formula); ``sample == 0`` keeps every word.
    """
    counts = np.asarray(counts, dtype=np.float64)
    full = np.full(counts.shape, 2 ** 32 - 1, dtype=np.uint32)
    if not sample or counts.size == 0:
        return full
    if sample < 1.0:
        threshold = sample * counts.sum()
    else:
        threshold = float(int(sample * (3 + np.sqrt(5)) / 2))
    prob = (np.sqrt(counts / threshold) + 1) * (threshold / counts)
    prob = np.minimum(prob, 1.0)
    return (prob * (2 ** 32 - 1)).astype(np.uint32)


def lcg_next(state):
    """One step of the generator: ``(state * 25214903917 + 11) mod 2**64``."""
    return (state * LCG_MULTIPLIER + LCG_INCREMENT) & _MASK64


def rand32(state):
    """The 32 random bits a draw takes from ``state`` (bits 16..47)."""
    return (state >> 16) & _MASK32


def job_seed(seed, epoch, job):
    """The generator state of job ``job`` of epoch ``epoch`` for a model seeded with ``seed``.

    A SplitMix64 hash of the three numbers: every job gets its own stream, so
    a run is reproducible whatever thread ends up running which job (with
    ``workers=1`` the whole run is bit-for-bit reproducible).
    """
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(epoch) * 0xBF58476D1CE4E5B9
         + int(job) * 0x94D049BB133111EB + 0x2545F4914F6CDD1D) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


# ------------------------------------------------------------------ helpers
def _sigmoid(f, exact):
    """float32 sigmoid of the float32 ``f``: exact, or word2vec.c's table."""
    f = np.float32(f)
    if exact:
        with np.errstate(over="ignore"):
            return np.float32(1) / (np.float32(1) + np.exp(-f))
    if -_F_MAX < f < _F_MAX:
        return SIGMOID_TABLE[int((f + _F_MAX) * _F_SCALE)]
    if f >= _F_MAX:
        return np.float32(1)
    if f <= -_F_MAX:
        return np.float32(0)
    return f   # NaN: no table index from it; it spreads to the vectors


def _neg_log_sigmoid(x):
    """``-log(sigma(x))`` in float64, without overflow."""
    x = float(x)
    return math.log1p(math.exp(-abs(x))) + max(-x, 0.0)


def _subsample(words, begin, end, sample_int, state):
    """The words of ``words[begin:end]`` kept by subsampling, and the new state."""
    kept = []
    for p in range(begin, end):
        w = int(words[p])
        r = rand32(state)
        state = lcg_next(state)
        if int(sample_int[w]) >= r:
            kept.append(w)
    return kept, state


def _context(sentence, i, window, shrink_windows, state):
    """Indices into ``sentence`` of centre ``i``'s context, and the new state."""
    b = 0
    if shrink_windows:
        b = (rand32(state) * window) >> 32
        state = lcg_next(state)
    lo = max(0, i - window + b)
    hi = min(len(sentence), i + window + 1 - b)
    return [j for j in range(lo, hi) if j != i], state


def _draw_outputs(word, negative, cum_table, state):
    """``[word] + negatives`` and their labels, and the new state."""
    outputs, labels = [word], [np.float32(1)]
    for _ in range(negative):
        target = rand32(state) >> 1
        state = lcg_next(state)
        noise = int(np.searchsorted(cum_table, target, side="right"))
        if noise == word:
            continue
        outputs.append(noise)
        labels.append(np.float32(0))
    return outputs, labels, state


def _sentence_alphas(sent_offsets, sent_begin, sent_end, alpha_begin, alpha_end):
    start = int(sent_offsets[sent_begin])
    total = int(sent_offsets[sent_end]) - start
    for s in range(sent_begin, sent_end):
        frac = (int(sent_offsets[s]) - start) / total if total else 0.0
        yield s, np.float32(alpha_begin + (alpha_end - alpha_begin) * frac)


# ------------------------------------------------------------------ kernels
def w2v_sg_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                 cum_table, guide, negative, window, shrink_windows, alpha_begin, alpha_end,
                 rng_state, exact_sigmoid, compute_loss):
    """Skip-gram with negative sampling on sentences ``sent_begin:sent_end``, in place.

    Each context word's input vector predicts the centre word (label 1) and
    the centre word's ``negative`` noise words (label 0), word2vec.c's
    pairing; the noise words are shared by the whole window and all the
    gradients of one centre word come from one snapshot (see the module
    docstring).

    Returns
    -------
    (int, int, float)
        The new ``rng_state``, the number of words kept by subsampling and the
        summed loss (0.0 unless ``compute_loss``).
    """
    sent_begin, sent_end, negative, window = word2vec_job(
        "w2v_sg_batch", syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
        cum_table, guide, negative, window, alpha_begin, alpha_end)
    with np.errstate(over="ignore", invalid="ignore"):   # divergence: NaN/inf, noticed later
        return _sg(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                   cum_table, negative, window, shrink_windows, alpha_begin, alpha_end,
                   rng_state, exact_sigmoid, compute_loss)


def _sg(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int, cum_table,
        negative, window, shrink_windows, alpha_begin, alpha_end, rng_state, exact_sigmoid,
        compute_loss):
    state = int(rng_state) & _MASK64
    effective = 0
    loss = 0.0
    for s, alpha in _sentence_alphas(sent_offsets, sent_begin, sent_end, alpha_begin, alpha_end):
        sentence, state = _subsample(words, int(sent_offsets[s]), int(sent_offsets[s + 1]),
                                     sample_int, state)
        effective += len(sentence)
        for i, word in enumerate(sentence):
            ctx, state = _context(sentence, i, window, shrink_windows, state)
            if not ctx:
                continue
            outputs, labels, state = _draw_outputs(word, negative, cum_table, state)
            contexts = [sentence[j] for j in ctx]
            M = syn0[contexts].copy()        # (k, d) input vectors before the update
            O = syn1neg[outputs].copy()      # (n, d) output vectors before the update
            G = np.empty((len(contexts), len(outputs)), dtype=np.float32)
            for a in range(len(contexts)):           # every (context, output) pair
                for j in range(len(outputs)):
                    f = np.float32(M[a] @ O[j])
                    G[a, j] = (labels[j] - _sigmoid(f, exact_sigmoid)) * alpha
                    if compute_loss:
                        loss += _neg_log_sigmoid(f if labels[j] else -f)
            np.add.at(syn0, contexts, G @ O)         # M += G O
            np.add.at(syn1neg, outputs, G.T @ M)     # O += G^T M
    return state, effective, loss


def w2v_cbow_batch(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                   cum_table, guide, negative, window, shrink_windows, cbow_mean, alpha_begin,
                   alpha_end, rng_state, exact_sigmoid, compute_loss):
    """CBOW with negative sampling on sentences ``sent_begin:sent_end``, in place.

    The sum (``cbow_mean=0``) or mean (``cbow_mean=1``) of the context's input
    vectors predicts the centre word (label 1) and ``negative`` noise words
    (label 0); see the module docstring for the update.

    Returns
    -------
    (int, int, float)
        The new ``rng_state``, the number of words kept by subsampling and the
        summed loss (0.0 unless ``compute_loss``).
    """
    sent_begin, sent_end, negative, window = word2vec_job(
        "w2v_cbow_batch", syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
        cum_table, guide, negative, window, alpha_begin, alpha_end)
    with np.errstate(over="ignore", invalid="ignore"):   # divergence: NaN/inf, noticed later
        return _cbow(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                     cum_table, negative, window, shrink_windows, cbow_mean, alpha_begin,
                     alpha_end, rng_state, exact_sigmoid, compute_loss)


def _cbow(syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int, cum_table,
          negative, window, shrink_windows, cbow_mean, alpha_begin, alpha_end, rng_state,
          exact_sigmoid, compute_loss):
    state = int(rng_state) & _MASK64
    effective = 0
    loss = 0.0
    for s, alpha in _sentence_alphas(sent_offsets, sent_begin, sent_end, alpha_begin, alpha_end):
        sentence, state = _subsample(words, int(sent_offsets[s]), int(sent_offsets[s + 1]),
                                     sample_int, state)
        effective += len(sentence)
        for i, word in enumerate(sentence):
            ctx, state = _context(sentence, i, window, shrink_windows, state)
            if not ctx:
                continue
            outputs, labels, state = _draw_outputs(word, negative, cum_table, state)
            contexts = [sentence[j] for j in ctx]
            inv = np.float32(1) / np.float32(len(contexts))
            h = syn0[contexts].sum(axis=0, dtype=np.float32)
            if cbow_mean:
                h *= inv
            O = syn1neg[outputs].copy()
            g = np.empty(len(outputs), dtype=np.float32)
            for j in range(len(outputs)):
                f = np.float32(h @ O[j])
                g[j] = (labels[j] - _sigmoid(f, exact_sigmoid)) * alpha
                if compute_loss:
                    loss += _neg_log_sigmoid(f if labels[j] else -f)
            e = g @ O                                # error sent back to the context
            if not cbow_mean:
                e *= inv
            np.add.at(syn1neg, outputs, np.outer(g, h))
            np.add.at(syn0, contexts, np.broadcast_to(e, (len(contexts), e.shape[0])))
    return state, effective, loss


KERNELS = {"w2v_sg_batch": w2v_sg_batch, "w2v_cbow_batch": w2v_cbow_batch}
