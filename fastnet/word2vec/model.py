r"""Word2vec: skip-gram and CBOW with negative sampling, behind gensim 4's API.

``from fastnet import Word2Vec`` in place of ``from gensim.models import
Word2Vec`` is enough: same constructor parameters (names and meanings),
``build_vocab``, ``train``, ``save``, ``load``, ``model.wv``.

How a run goes
--------------
1. **One pass over the corpus** (``build_vocab``) counts the words and keeps
   the corpus encoded as int32 ids of first appearance (4 bytes per token; the
   raw text is streamed, never held).  ``min_count`` / ``max_final_vocab`` /
   ``trim_rule`` select the vocabulary, sorted by descending count exactly as
   gensim sorts it; the subsampling thresholds (word2vec's formula with
   ``sample``) and the noise distribution ``count**ns_exponent`` follow.
2. **Training** maps the kept ids to vocabulary indices in one vectorised step
   (unknown words dropped), cuts the corpus into jobs of ``batch_words``
   words, and ``workers`` Python threads run the compiled kernels of the
   active backend (``fastnet.use_backend``) on them with the GIL released,
   lock-free on the shared matrices as word2vec.c and gensim do.  The
   learning rate decays linearly from ``alpha`` to ``min_alpha`` over all
   epochs (per sentence inside a job).  Every job's random stream is seeded
   from ``(seed, epoch, job)``, so ``workers=1`` with a ``seed`` is exactly
   reproducible.

Training that diverges (a learning rate too large: the vectors become NaN or
infinite; with ``compute_loss`` a non-finite job loss stops the epoch at once)
raises :class:`fastnet.DivergenceError` naming the epoch and suggesting a
smaller ``alpha``, after restoring ``wv.vectors``, ``syn1neg`` (in place), the
loss and the counters to the end of the last finite epoch: a copy of both
matrices is taken before each epoch (twice their memory during ``train``).

A corpus is read once per :meth:`Word2Vec.train` call at most (not once per
epoch): a corpus iterable that changes between passes is trained as its first
pass.  The encoding is kept for the next call when it is sure to be the same
corpus: the same file (path, size, modification time), the same list or tuple
with the same content (a hash of its tokens, checked at each call: about 20 ns
a token, an eighth of encoding it again), the same one-shot iterator (which
cannot be read again), or, for ``Word2Vec(sentences)``, the pass of
``build_vocab`` just before; any other iterable is read again.
``max_vocab_size`` (pruning while counting) disables keeping the encoding
during ``build_vocab``; training then reads the corpus once more.

What differs from gensim
------------------------
* Negative sampling only (``hs=1`` raises ``ValueError``).
* One set of noise words per centre word, shared by its whole window, and
  the window's updates computed from one snapshot (pWord2Vec, Ji et al. 2016);
  see :mod:`fastnet.reference.word2vec_kernels`.  Quality is on par with
  gensim's (see ``BENCHMARKS.md``) and it is several times faster.
* A saturated sigmoid (:math:`|f| \ge 6`) still updates, as in word2vec.c
  (gensim skips the update).
* ``exact_sigmoid=True`` (keyword only) computes :math:`1/(1+e^{-f})` instead
  of reading word2vec.c's table (slower; the backends' parity tests use it).
* Each epoch trains its jobs (runs of ``batch_words`` words, whole sentences)
  in a random order drawn from ``seed`` (``shuffle_jobs=True``, keyword
  only): on a corpus made of whole books in a row this mixing helps (on the
  Gutenberg benchmark, WordSim353 +0.03 for skip-gram and analogies +0.9
  points for CBOW); ``shuffle_jobs=False`` trains in corpus order like gensim.
  The learning rate decays with the words trained so far, in either order.
* ``get_latest_training_loss()`` is the loss of the current (or last) epoch,
  reset at each epoch; ``epoch_losses`` keeps every epoch's.
* ``save`` writes arrays + JSON (no pickle), atomically; callbacks are not saved.
"""
from __future__ import annotations

import logging
import math
import numbers
import os
import threading
import time
from collections.abc import Iterator

import numpy as np

from fastnet._progress import Progress
from fastnet._validation import check_int, check_scalar
from fastnet.reference.word2vec_kernels import (make_cum_table, make_guide, sample_ints,
                                                job_seed)
from fastnet.word2vec import _corpus, _vocab
from fastnet.word2vec._corpus import LineSentence, MAX_SENTENCE_LENGTH
from fastnet.word2vec._io import FORMAT, FORMAT_VERSION, save_npz, load_npz
from fastnet.word2vec.keyedvectors import KeyedVectors

logger = logging.getLogger("fastnet.word2vec")

__all__ = ["Word2Vec", "MAX_WORDS_IN_BATCH"]

#: Default job size in words (gensim's constant of the same name).
MAX_WORDS_IN_BATCH = 10000

_PARAMS = ("vector_size", "alpha", "window", "min_count", "max_vocab_size", "sample", "seed",
           "workers", "min_alpha", "sg", "hs", "negative", "ns_exponent", "cbow_mean", "epochs",
           "null_word", "sorted_vocab", "batch_words", "compute_loss", "comment",
           "max_final_vocab", "shrink_windows", "exact_sigmoid", "shuffle_jobs")
_STATE = ("corpus_count", "corpus_total_words", "total_train_time", "train_count",
          "effective_min_count", "running_training_loss", "epoch_losses", "epochs_trained")


def _flag(x, name):
    if isinstance(x, (bool, np.bool_)):
        return int(bool(x))
    if isinstance(x, numbers.Integral) and int(x) in (0, 1):
        return int(x)
    raise ValueError(f"{name} must be 0 or 1, got {x!r}")


class Word2Vec:
    """Word embeddings by skip-gram or CBOW with negative sampling (gensim 4's interface).

    Parameters
    ----------
    sentences : iterable of list of str, optional
        The corpus, one list of tokens per sentence.  If given (or
        ``corpus_file``), the vocabulary is built and the model trained now.
    corpus_file : str or os.PathLike, optional
        A UTF-8 text file, one sentence per line, tokens separated by
        whitespace (streamed; ``.gz``/``.bz2`` accepted).
    vector_size : int
        Dimension of the word vectors (>= 1).
    alpha : float
        Initial learning rate (> 0).
    window : int
        Largest distance between the centre word and a context word (>= 1).
    min_count : int
        Words seen fewer times are ignored.
    max_vocab_size : int, optional
        Bound on the distinct words held while counting (gensim's pruning).
    sample : float
        Subsampling threshold of frequent words (0 disables; 1e-5..1e-3 usual).
    seed : int
        Seed of the vector initialisation and of every random draw.
    workers : int
        Training threads (the GIL is released by the compiled kernels).
    min_alpha : float
        Learning rate reached at the end of training (linear decay).
    sg : {0, 1}
        1 for skip-gram, 0 for CBOW.
    hs : {0}
        Hierarchical softmax is not supported: must be 0.
    negative : int
        Noise words per centre word (>= 1).
    ns_exponent : float
        Exponent of the unigram noise distribution (0.75).
    cbow_mean : {0, 1}
        CBOW input: 1 the mean of the context vectors, 0 their sum.
    hashfxn : callable
        Accepted for compatibility, unused (initialisation uses ``seed``).
    epochs : int
        Passes over the corpus (>= 1).
    null_word : {0, 1}
        Append gensim's ``'\\0'`` padding word.
    trim_rule : callable, optional
        ``trim_rule(word, count, min_count)`` returning ``RULE_DISCARD`` (1),
        ``RULE_KEEP`` (2) or ``RULE_DEFAULT`` (0), as in gensim.
    sorted_vocab : {0, 1}
        Sort the vocabulary by descending count.
    batch_words : int
        Words per job handed to a thread.
    compute_loss : bool
        Accumulate the training loss (``get_latest_training_loss``).
    callbacks : sequence
        Objects with ``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end``,
        ``on_train_end`` methods (gensim's ``CallbackAny2Vec`` work).
    comment : str, optional
        Free text kept with the model.
    max_final_vocab : int, optional
        Raise ``min_count`` so that at most this many words remain.
    shrink_windows : bool
        Draw each centre word's window uniformly in ``1..window`` (word2vec's
        default) instead of always ``window``.
    exact_sigmoid : bool, keyword only
        Exact :math:`\\sigma` instead of the table (slower).
    shuffle_jobs : bool, keyword only
        Train each epoch's jobs in a seeded random order (default) rather
        than in corpus order.
    progress_bar : bool, keyword only
        Show a progress bar while training (tqdm if installed).

    Attributes
    ----------
    wv : KeyedVectors
        The word vectors (``syn0``).
    syn1neg : ndarray, float32, (len(wv), vector_size)
        The output vectors.
    cum_table : ndarray of int64
        The cumulative noise distribution, scaled to ``2**31``.
    training_stats : list of dict
        Per epoch: raw and effective words, seconds, words/s, loss.
    """

    def __init__(self, sentences=None, corpus_file=None, vector_size=100, alpha=0.025, window=5,
                 min_count=5, max_vocab_size=None, sample=1e-3, seed=1, workers=3,
                 min_alpha=0.0001, sg=0, hs=0, negative=5, ns_exponent=0.75, cbow_mean=1,
                 hashfxn=hash, epochs=5, null_word=0, trim_rule=None, sorted_vocab=1,
                 batch_words=MAX_WORDS_IN_BATCH, compute_loss=False, callbacks=(), comment=None,
                 max_final_vocab=None, shrink_windows=True, *, exact_sigmoid=False,
                 shuffle_jobs=True, progress_bar=False):
        self.vector_size = check_int(vector_size, "vector_size", lo=1)
        self.alpha = check_scalar(alpha, "alpha", lo=0, lo_open=True)
        self.window = check_int(window, "window", lo=1)
        self.min_count = check_int(min_count, "min_count", lo=0)
        self.max_vocab_size = check_int(max_vocab_size, "max_vocab_size", lo=1, allow_none=True)
        self.sample = check_scalar(sample, "sample", lo=0)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        self.seed = int(seed)
        self.workers = check_int(workers, "workers", lo=1)
        self.min_alpha = check_scalar(min_alpha, "min_alpha", lo=0)
        self.sg = _flag(sg, "sg")
        if _flag(hs, "hs") == 1:
            raise ValueError("hs=1 (hierarchical softmax) is not supported: fastnet's Word2Vec "
                             "trains with negative sampling only; use hs=0 with negative >= 1")
        self.hs = 0
        if isinstance(negative, numbers.Integral) and not isinstance(negative, bool) \
                and negative == 0:
            raise ValueError("negative must be >= 1: fastnet's Word2Vec trains with negative "
                             "sampling only (hs=0), so negative=0 would train nothing")
        self.negative = check_int(negative, "negative", lo=1)
        self.ns_exponent = check_scalar(ns_exponent, "ns_exponent")
        self.cbow_mean = _flag(cbow_mean, "cbow_mean")
        self.hashfxn = hashfxn
        self.epochs = check_int(epochs, "epochs", lo=1)
        self.null_word = _flag(null_word, "null_word")
        if trim_rule is not None and not callable(trim_rule):
            raise TypeError(f"trim_rule must be callable or None, got {trim_rule!r}")
        self.sorted_vocab = _flag(sorted_vocab, "sorted_vocab")
        self.batch_words = check_int(batch_words, "batch_words", lo=1)
        self.compute_loss = bool(compute_loss)
        self.callbacks = self._check_callbacks(callbacks)
        if comment is not None and not isinstance(comment, str):
            raise TypeError(f"comment must be a str or None, got {type(comment).__name__}")
        self.comment = comment
        self.max_final_vocab = check_int(max_final_vocab, "max_final_vocab", lo=1,
                                         allow_none=True)
        self.shrink_windows = bool(shrink_windows)
        self.exact_sigmoid = bool(exact_sigmoid)
        self.shuffle_jobs = bool(shuffle_jobs)
        self.progress_bar = bool(progress_bar)
        self.layer1_size = self.vector_size

        self.wv = KeyedVectors(self.vector_size)
        self.syn1neg = np.zeros((0, self.vector_size), dtype=np.float32)
        self.cum_table = np.zeros(0, dtype=np.int64)
        self._guide = np.zeros(1, dtype=np.int32)
        self.corpus_count = 0
        self.corpus_total_words = 0
        self.total_train_time = 0.0
        self.train_count = 0
        self.epochs_trained = 0
        self.effective_min_count = self.min_count
        self.running_training_loss = 0.0
        self.epoch_losses = []
        self.training_stats = []
        self.raw_vocab = None
        self._cache = None      # (source, Scan, corpus) kept by build_vocab
        self._encoded = None    # (source, Encoded, corpus) of the last training corpus
        self._trusted = False   # the next train() follows build_vocab on the same corpus

        if sentences is not None or corpus_file is not None:
            self.build_vocab(sentences, corpus_file=corpus_file, trim_rule=trim_rule)
            self._trusted = True   # nothing can change the corpus between these two calls
            self.train(sentences, corpus_file=corpus_file, total_examples=self.corpus_count,
                       total_words=self.corpus_total_words, epochs=self.epochs,
                       start_alpha=self.alpha, end_alpha=self.min_alpha,
                       compute_loss=self.compute_loss, callbacks=self.callbacks)
        elif trim_rule is not None:
            logger.warning("trim_rule only applies while building the vocabulary: pass it to "
                           "build_vocab() too")

    # ------------------------------------------------------------- helpers
    @staticmethod
    def _check_callbacks(callbacks):
        if callbacks is None:
            return ()
        try:
            callbacks = tuple(callbacks)
        except TypeError:
            raise TypeError(f"callbacks must be a sequence of callback objects, got "
                            f"{type(callbacks).__name__}") from None
        return callbacks

    @staticmethod
    def _corpus(corpus_iterable, corpus_file, kwargs, where):
        if "sentences" in kwargs:
            if corpus_iterable is not None:
                raise TypeError(f"{where}: pass the corpus once (corpus_iterable or sentences)")
            corpus_iterable = kwargs.pop("sentences")
        if kwargs:
            raise TypeError(f"{where}() got unexpected keyword argument(s) "
                            f"{', '.join(sorted(kwargs))}")
        if corpus_iterable is not None and corpus_file is not None:
            raise ValueError(f"{where}: pass either a corpus iterable (sentences) or corpus_file, "
                             f"not both")
        if corpus_iterable is None and corpus_file is None:
            raise ValueError(f"{where}: a corpus is needed: sentences (an iterable of lists of "
                             f"str tokens) or corpus_file (a path)")
        if corpus_file is not None:
            reader = LineSentence(corpus_file)
            st = os.stat(reader.source)
            source = ("file", os.path.abspath(reader.source), st.st_size, st.st_mtime_ns)
            return reader, source, None
        if isinstance(corpus_iterable, (str, bytes)):
            raise TypeError(f"{where}: sentences must be an iterable of lists of str tokens, "
                            f"got a {type(corpus_iterable).__name__}; to read a file use "
                            f"corpus_file={corpus_iterable!r}" if isinstance(corpus_iterable, str)
                            else f"{where}: sentences must be an iterable of lists of str tokens")
        if not hasattr(corpus_iterable, "__iter__"):
            raise TypeError(f"{where}: sentences must be an iterable of lists of str tokens, "
                            f"got {type(corpus_iterable).__name__}")
        if isinstance(corpus_iterable, (list, tuple)):
            kind = "sequence"     # may change between calls: compared by content
        elif isinstance(corpus_iterable, Iterator):
            kind = "iterator"     # one pass only: what was read is all there is
        else:
            kind = "iterable"     # read again (its content may change)
        return corpus_iterable, (kind, id(corpus_iterable)), corpus_iterable

    @staticmethod
    def _same(cache, source, ref, current_fingerprint, trusted=False):
        """Whether ``cache`` (``(source, what, ref)``) holds the corpus ``source`` / ``ref``.

        A file is the same if its path, size and modification time are; a list
        or tuple if it is the same object with the same content (its
        :func:`fastnet.word2vec._corpus.fingerprint`); an iterator if it is
        the same object (it cannot be read twice); another iterable only right
        after ``build_vocab`` read it (``trusted``: the constructor's call).
        ``current_fingerprint()`` gives the list's fingerprint now.
        """
        if cache is None or cache[0] != source:
            return False
        kind = source[0]
        if kind == "file":
            return True
        if cache[2] is not ref:
            return False
        if trusted or kind == "iterator":
            return True
        if kind == "sequence":
            fp = cache[1].fingerprint
            return fp is not None and fp == current_fingerprint()
        return False

    # ------------------------------------------------------------- vocabulary
    def build_vocab(self, corpus_iterable=None, corpus_file=None, update=False,
                    progress_per=10000, keep_raw_vocab=False, trim_rule=None, **kwargs):
        """Count the corpus's words and build the vocabulary, tables and initial vectors.

        Parameters
        ----------
        corpus_iterable : iterable of list of str, optional
            (``sentences=`` is accepted too.)
        corpus_file : str, optional
        update : bool
            Add the new corpus's words (with at least ``min_count``
            occurrences in it) to an existing vocabulary; counts of known
            words grow; new vectors are initialised, old ones kept.
        keep_raw_vocab : bool
            Keep ``raw_vocab`` (word -> count of every word seen).
        trim_rule : callable, optional
            See the class docstring.

        Raises
        ------
        ValueError
            Empty corpus, or no word left after ``min_count``.
        """
        reader, source, ref = self._corpus(corpus_iterable, corpus_file, dict(kwargs),
                                           "build_vocab")
        if trim_rule is not None and not callable(trim_rule):
            raise TypeError(f"trim_rule must be callable or None, got {trim_rule!r}")
        if update and len(self.wv) == 0:
            raise ValueError("build_vocab(update=True) needs an existing vocabulary: build one "
                             "first with update=False")
        logger.info("collecting all words and their counts")
        t0 = time.perf_counter()
        scan = _corpus.scan_corpus(reader, max_vocab_size=self.max_vocab_size,
                                   trim_rule=trim_rule, progress_per=progress_per, logger=logger)
        if source[0] == "sequence":
            scan.fingerprint = _corpus.fingerprint(reader)
        logger.info("collected %i word types from a corpus of %i raw words and %i sentences "
                    "in %.1fs", len(scan.words), scan.total_words, scan.n_sentences,
                    time.perf_counter() - t0)
        if scan.total_words == 0:
            where = f"corpus_file {reader.source!r}" if corpus_file is not None else "sentences"
            raise ValueError(f"the corpus is empty: {where} held {scan.n_sentences} sentence(s) "
                             f"and no word")
        self.corpus_count = scan.n_sentences
        self.corpus_total_words = scan.total_words
        self._prepare_vocab(scan, update, trim_rule, keep_raw_vocab)
        self._prepare_weights(update)
        self._encoded = None
        self._cache = (source, scan, ref) if scan.raw_ids is not None else None

    def build_vocab_from_freq(self, word_freq, keep_raw_vocab=False, corpus_count=None,
                              trim_rule=None, update=False):
        """Build the vocabulary from a ``{word: count}`` mapping (no corpus pass)."""
        if not hasattr(word_freq, "items"):
            raise TypeError(f"word_freq must be a mapping word -> count, got "
                            f"{type(word_freq).__name__}")
        words = list(word_freq)
        for w in words:
            if not isinstance(w, str):
                raise TypeError(f"word_freq keys must be str, found {w!r}")
        counts = np.asarray([int(word_freq[w]) for w in words], dtype=np.int64)
        if counts.size == 0 or counts.sum() == 0:
            raise ValueError("word_freq is empty: no word with a positive count")
        if (counts < 0).any():
            raise ValueError("word_freq: counts must be >= 0")
        scan = _corpus.Scan(words, counts, int(counts.sum()), int(corpus_count or 0))
        self.corpus_count = int(corpus_count or 0)
        self.corpus_total_words = int(counts.sum())
        self._prepare_vocab(scan, update, trim_rule, keep_raw_vocab)
        self._prepare_weights(update)
        self._cache = None
        self._encoded = None

    def _prepare_vocab(self, scan, update, trim_rule, keep_raw_vocab):
        counts = scan.counts
        min_count = _vocab.effective_min_count(counts, self.min_count, self.max_final_vocab)
        self.effective_min_count = min_count
        keep = _vocab.select(scan.words, counts, min_count, trim_rule)
        if keep_raw_vocab:
            self.raw_vocab = dict(zip(scan.words, counts.tolist()))
        if not update:
            if keep.size == 0:
                top = int(counts.max()) if counts.size else 0
                raise ValueError(
                    f"the vocabulary is empty after min_count={min_count}: the corpus has "
                    f"{len(scan.words)} distinct words ({scan.total_words} words in "
                    f"{scan.n_sentences} sentences) and none occurs {min_count} times or more "
                    f"(the most frequent occurs {top} times); lower min_count")
            words = [scan.words[i] for i in keep.tolist()]
            kept_counts = counts[keep]
            if self.sorted_vocab:
                order = _vocab.descending_order(kept_counts)
                words = [words[i] for i in order.tolist()]
                kept_counts = kept_counts[order]
            if self.null_word:
                words.append("\0")
                kept_counts = np.concatenate([kept_counts, [1]])
            retained = int(kept_counts.sum())
            logger.info("min_count=%i retains %i unique words (%.2f%% of original %i, drops %i)",
                        min_count, len(words), 100.0 * len(words) / max(len(scan.words), 1),
                        len(scan.words), len(scan.words) - len(words))
            logger.info("min_count=%i leaves %i word corpus (%.2f%% of original %i)", min_count,
                        retained, 100.0 * retained / max(scan.total_words, 1), scan.total_words)
            self.wv.index_to_key = words
            self.wv.key_to_index = {w: i for i, w in enumerate(words)}
            self.wv.expandos = {"count": np.asarray(kept_counts, dtype=np.int64)}
        else:
            kti = self.wv.key_to_index
            old_counts = self.wv.expandos["count"].copy()
            new_words, new_counts = [], []
            keep_set = set(keep.tolist())
            n_pre = 0
            for i, (w, c) in enumerate(zip(scan.words, counts.tolist())):
                if w in kti:
                    old_counts[kti[w]] += c
                    n_pre += i in keep_set
                elif i in keep_set:
                    new_words.append(w)
                    new_counts.append(c)
            logger.info("added %i new unique words, increased the count of %i pre-existing "
                        "words", len(new_words), n_pre)
            for w in new_words:
                kti[w] = len(self.wv.index_to_key)
                self.wv.index_to_key.append(w)
            self.wv.expandos = {"count": np.concatenate(
                [old_counts, np.asarray(new_counts, dtype=np.int64)])}
        counts = self.wv.expandos["count"]
        self.wv.expandos["sample_int"] = sample_ints(counts, self.sample)
        kept = self.wv.expandos["sample_int"].astype(np.float64) / (2 ** 32 - 1) * counts
        logger.info("sample=%g downsamples %i most-common words; leaves an estimated %i word "
                    "corpus (%.1f%% of %i)", self.sample,
                    int((self.wv.expandos["sample_int"] < 2 ** 32 - 1).sum()), int(kept.sum()),
                    100.0 * kept.sum() / max(counts.sum(), 1), int(counts.sum()))
        self.cum_table = make_cum_table(counts, self.ns_exponent)
        self._guide = make_guide(self.cum_table)

    def _prepare_weights(self, update=False):
        V, d = len(self.wv.index_to_key), self.vector_size
        # gensim's initialisation: uniform in [-1/d, 1/d) from default_rng(seed), float32
        rng = np.random.default_rng(seed=self.seed)
        new = rng.random((V, d), dtype=np.float32)
        new *= np.float32(2.0)
        new -= np.float32(1.0)
        new /= np.float32(d)
        syn1 = np.zeros((V, d), dtype=np.float32)
        if update:
            n_old = self.wv.vectors.shape[0]
            new[:n_old] = self.wv.vectors
            syn1[:n_old] = self.syn1neg
        self.wv.vectors = new
        self.wv.norms = None
        self.wv.next_index = V
        self.syn1neg = syn1

    # ------------------------------------------------------------- training
    def _encode(self, reader, source, ref, trusted=False):
        memo = []

        def current_fingerprint():   # computed once per call, when needed
            if not memo:
                memo.append(_corpus.fingerprint(ref))
            return memo[0]

        if self._same(self._encoded, source, ref, current_fingerprint):
            return self._encoded[1]
        t0 = time.perf_counter()
        if self._same(self._cache, source, ref, current_fingerprint, trusted):
            enc = _corpus.encode_from_scan(self._cache[1], self.wv.key_to_index)
        else:
            logger.info("reading and encoding the corpus")
            enc = _corpus.encode_corpus(reader, self.wv.key_to_index, logger=logger)
            if source[0] == "sequence":
                enc.fingerprint = current_fingerprint()
        self._cache = None   # the final encoding replaces the raw one
        logger.info("corpus encoded: %i sentences, %i vocabulary words (%.2f MB) in %.2fs",
                    enc.n_sentences, enc.n_words, (enc.words.nbytes + enc.offsets.nbytes) / 1e6,
                    time.perf_counter() - t0)
        self._encoded = (source, enc, ref)
        return enc

    def train(self, corpus_iterable=None, corpus_file=None, total_examples=None, total_words=None,
              epochs=None, start_alpha=None, end_alpha=None, word_count=0, queue_factor=2,
              report_delay=1.0, compute_loss=False, callbacks=(), progress_bar=None, **kwargs):
        """Train the vectors on a corpus (gensim's ``train``).

        The corpus is read (or taken from ``build_vocab``'s pass) once and
        encoded; ``total_examples`` / ``total_words`` are accepted for
        compatibility but not needed (the encoding gives the exact size).

        Parameters
        ----------
        corpus_iterable, corpus_file
            The corpus (``sentences=`` accepted too).
        epochs : int, optional
            Passes (default: the model's ``epochs``).
        start_alpha, end_alpha : float, optional
            Learning rate decays linearly from ``start_alpha`` (default
            ``alpha``) to ``end_alpha`` (default ``min_alpha``).
        report_delay : float
            Seconds between progress log lines.
        compute_loss : bool
            Accumulate the loss (also on if the model was built with it).
        callbacks : sequence
            Extra callbacks for this call.
        progress_bar : bool, optional
            Show a progress bar (default: the model's ``progress_bar``).

        Returns
        -------
        (int, int)
            Effective words trained (after subsampling) and raw words processed.

        Raises
        ------
        fastnet.DivergenceError
            An epoch made the vectors NaN or infinite; the model is restored to
            the end of the last finite epoch (see the module docstring).
        """
        trusted, self._trusted = self._trusted, False
        reader, source, ref = self._corpus(corpus_iterable, corpus_file, dict(kwargs), "train")
        if len(self.wv) == 0:
            raise ValueError("train() needs a vocabulary: call build_vocab(...) first (or pass "
                             "sentences=/corpus_file= to Word2Vec)")
        epochs = self.epochs if epochs is None else check_int(epochs, "epochs", lo=1)
        start_alpha = self.alpha if start_alpha is None else \
            check_scalar(start_alpha, "start_alpha", lo=0)
        end_alpha = self.min_alpha if end_alpha is None else \
            check_scalar(end_alpha, "end_alpha", lo=0)
        report_delay = check_scalar(report_delay, "report_delay", lo=0, lo_open=True)
        compute_loss = bool(compute_loss) or self.compute_loss
        callbacks = tuple(self.callbacks) + tuple(
            c for c in self._check_callbacks(callbacks) if c not in self.callbacks)
        progress_bar = self.progress_bar if progress_bar is None else bool(progress_bar)

        enc = self._encode(reader, source, ref, trusted)
        if enc.n_sentences_read == 0:
            raise ValueError("the corpus yielded no sentence: an iterator or generator that was "
                             "already consumed (by build_vocab)? pass a corpus that can be "
                             "iterated again (a list, LineSentence, corpus_file=)")
        if enc.n_words == 0:
            raise ValueError(f"none of the corpus's {enc.total_tokens} words is in the "
                             f"vocabulary ({len(self.wv)} words): nothing to train on")
        from fastnet import _backend
        backend = _backend.get_backend()
        kernels = _backend.kernels()
        kern = kernels.w2v_sg_batch if self.sg else kernels.w2v_cbow_batch
        if backend == "reference" and enc.n_words * epochs > 200000:
            logger.warning("training word2vec on the 'reference' backend (numpy, written for "
                           "reading) is very slow; use fastnet.use_backend('numba') or "
                           "'cython'")
        jobs = enc.jobs(self.batch_words)
        self._check_arrays()
        self._call(kern, enc, 0, 0, 0.0, 0.0, 0, False)   # compile / load outside the threads

        for cb in callbacks:
            if hasattr(cb, "on_train_begin"):
                cb.on_train_begin(self)
        t_start = time.perf_counter()
        effective_total = raw_total = 0
        pbar = Progress(total=epochs * enc.n_words, verbose=2, desc="word2vec",
                        unit="word") if progress_bar else None
        # the vectors before each epoch: a diverging epoch is undone from these (allocated
        # once per call; measured: copying both for the Gutenberg corpus, 22k words x 100,
        # takes 1.5-4.5 ms against seconds for its epoch: benchmarks/bench_corpus_cache.py)
        saved = (np.empty_like(self.wv.vectors), np.empty_like(self.syn1neg))
        try:
            for epoch in range(epochs):
                for cb in callbacks:
                    if hasattr(cb, "on_epoch_begin"):
                        cb.on_epoch_begin(self)
                self._check_arrays()
                np.copyto(saved[0], self.wv.vectors)
                np.copyto(saved[1], self.syn1neg)
                eff, raw = self._train_epoch(kern, enc, jobs, epoch, epochs, start_alpha,
                                             end_alpha, compute_loss, report_delay, pbar, saved)
                effective_total += eff
                raw_total += raw
                for cb in callbacks:
                    if hasattr(cb, "on_epoch_end"):
                        cb.on_epoch_end(self)
        finally:
            if pbar is not None:
                pbar.close()
            self.wv.norms = None
            self.total_train_time += time.perf_counter() - t_start
        self.train_count += 1
        elapsed = time.perf_counter() - t_start
        logger.info("training on %i raw words (%i effective words) took %.1fs, %.0f effective "
                    "words/s", raw_total, effective_total, elapsed,
                    effective_total / max(elapsed, 1e-12))
        for cb in callbacks:
            if hasattr(cb, "on_train_end"):
                cb.on_train_end(self)
        return effective_total, raw_total

    def _check_arrays(self):
        V = len(self.wv.index_to_key)
        if self.wv.vectors.shape != (V, self.vector_size) or self.syn1neg.shape != \
                (V, self.vector_size):
            raise ValueError("the model's vectors do not match its vocabulary; rebuild it with "
                             "build_vocab()")
        if self.wv.vectors.dtype != np.float32 or not self.wv.vectors.flags.c_contiguous:
            self.wv.vectors = np.ascontiguousarray(self.wv.vectors, dtype=np.float32)
        if self.syn1neg.dtype != np.float32 or not self.syn1neg.flags.c_contiguous:
            self.syn1neg = np.ascontiguousarray(self.syn1neg, dtype=np.float32)

    def _call(self, kern, enc, b0, b1, a0, a1, state, compute_loss):
        wv = self.wv
        if self.sg:
            return kern(wv.vectors, self.syn1neg, enc.words, enc.offsets, b0, b1,
                        wv.expandos["sample_int"], self.cum_table, self._guide, self.negative,
                        self.window, self.shrink_windows, a0, a1, state, self.exact_sigmoid,
                        compute_loss)
        return kern(wv.vectors, self.syn1neg, enc.words, enc.offsets, b0, b1,
                    wv.expandos["sample_int"], self.cum_table, self._guide, self.negative,
                    self.window, self.shrink_windows, self.cbow_mean, a0, a1, state,
                    self.exact_sigmoid, compute_loss)

    def _train_epoch(self, kern, enc, jobs, epoch, epochs, start_alpha, end_alpha, compute_loss,
                     report_delay, pbar, saved):
        n = enc.n_words
        total = float(epochs * n)
        offsets = enc.offsets
        n_jobs = len(jobs) - 1
        global_epoch = self.epochs_trained
        lock = threading.Lock()
        state = {"next": 0, "raw": 0, "effective": 0, "stop": False}
        losses = [0.0] * self.workers
        errors = []
        previous_loss = self.running_training_loss
        self.running_training_loss = 0.0

        sizes = offsets[jobs[1:]] - offsets[jobs[:-1]]
        order = np.arange(n_jobs)
        if self.shuffle_jobs and n_jobs > 1:
            order = np.random.default_rng(job_seed(self.seed, global_epoch, -1)).permutation(
                n_jobs)
        done_before = np.zeros(n_jobs + 1, dtype=np.int64)   # words before, in training order
        np.cumsum(sizes[order], out=done_before[1:])

        def alpha_at(pos):
            return start_alpha - (start_alpha - end_alpha) * pos / total

        def worker(tid):
            try:
                while True:
                    with lock:
                        q = state["next"]
                        state["next"] = q + 1
                    if q >= n_jobs or state["stop"]:
                        return
                    j = int(order[q])
                    b0, b1 = int(jobs[j]), int(jobs[j + 1])
                    p0 = epoch * n + int(done_before[q])
                    p1 = epoch * n + int(done_before[q + 1])
                    _, eff, loss = self._call(kern, enc, b0, b1, alpha_at(p0), alpha_at(p1),
                                              job_seed(self.seed, global_epoch, j), compute_loss)
                    with lock:
                        state["raw"] += p1 - p0
                        state["effective"] += eff
                        losses[tid] += loss
                        self.running_training_loss = float(sum(losses))
                    if not math.isfinite(loss):   # diverged (known early with compute_loss)
                        state["stop"] = True
            except BaseException as exc:  # re-raised by the main thread
                errors.append(exc)
                state["stop"] = True

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(t,), daemon=True,
                                    name=f"fastnet-w2v-{t}") for t in range(self.workers)]
        for th in threads:
            th.start()
        tick = min(report_delay, 0.25) if pbar is not None else report_delay
        last_log = t0
        try:
            for th in threads:
                while th.is_alive():
                    th.join(tick)
                    now = time.perf_counter()
                    if pbar is not None:
                        done = epoch * n + state["raw"]
                        pbar.update(done - pbar.n, alpha=float(alpha_at(done)), **{
                            "words/s": f"{state['effective'] / max(now - t0, 1e-9):,.0f}"})
                    if now - last_log >= report_delay and th.is_alive():
                        last_log = now
                        logger.info("EPOCH %i - PROGRESS: at %.2f%% words, %.0f effective "
                                    "words/s, alpha %.6f", global_epoch + 1,
                                    100.0 * state["raw"] / n, state["effective"] / (now - t0),
                                    alpha_at(epoch * n + state["raw"]))
        except BaseException:
            state["stop"] = True
            for th in threads:
                th.join()
            raise
        if errors:
            raise errors[0]
        elapsed = time.perf_counter() - t0
        loss = float(sum(losses))
        if (compute_loss and not math.isfinite(loss)) or not np.isfinite(self.wv.vectors).all() \
                or not np.isfinite(self.syn1neg).all():
            # undo the epoch: the vectors, the loss and the counters are those of the last
            # finite epoch (nothing is left half NaN)
            np.copyto(self.wv.vectors, saved[0])
            np.copyto(self.syn1neg, saved[1])
            self.running_training_loss = previous_loss
            from fastnet._history import DivergenceError
            a0, a1 = alpha_at(epoch * n), alpha_at((epoch + 1) * n)
            restored = (f"the vectors are restored to the end of epoch {global_epoch}"
                        if global_epoch else "the vectors are restored to their initial values")
            raise DivergenceError(
                f"word2vec training diverged in epoch {global_epoch + 1}: the vectors became NaN "
                f"or infinite with the learning rate going from {a0:g} to {a1:g} (alpha="
                f"{start_alpha:g}); {restored}; use a smaller alpha (0.025 is word2vec's "
                f"default)")
        self.running_training_loss = loss
        self.epoch_losses.append(loss)
        self.epochs_trained += 1
        raw, eff = state["raw"], state["effective"]
        self.training_stats.append({
            "epoch": global_epoch + 1, "raw_words": raw, "effective_words": eff,
            "seconds": elapsed, "effective_words_per_sec": eff / max(elapsed, 1e-12),
            "raw_words_per_sec": raw / max(elapsed, 1e-12), "loss": loss if compute_loss else None,
            "alpha_end": alpha_at((epoch + 1) * n)})
        logger.info("EPOCH %i: training on %i raw words (%i effective words) took %.1fs, %.0f "
                    "effective words/s%s", global_epoch + 1, raw, eff, elapsed,
                    eff / max(elapsed, 1e-12), f", loss {loss:.1f}" if compute_loss else "")
        return eff, raw

    def get_latest_training_loss(self):
        """Loss summed over the current (or last finished) epoch (float64; needs ``compute_loss``)."""
        return self.running_training_loss

    # ------------------------------------------------------------- queries
    def predict_output_word(self, context_words_list, topn=10):
        """The centre words most probable given context words (softmax of the output layer)."""
        idx = [self.wv.key_to_index[w] for w in context_words_list if w in self.wv.key_to_index]
        if not idx:
            logger.warning("none of the context words is in the vocabulary")
            return None
        h = self.wv.vectors[idx].mean(axis=0) if self.cbow_mean or self.sg else \
            self.wv.vectors[idx].sum(axis=0)
        scores = self.syn1neg @ h
        prob = np.exp(scores - scores.max())
        prob /= prob.sum()
        top = np.argsort(-prob, kind="stable")[:topn]
        return [(self.wv.index_to_key[i], float(prob[i])) for i in top]

    # ------------------------------------------------------------- persistence
    def save(self, fname):
        """Save the model to one file (npz arrays + JSON metadata, no pickle), atomically.

        The corpus encoding and callbacks are not saved.  Load with
        :meth:`Word2Vec.load`.
        """
        if not isinstance(fname, (str, os.PathLike)):
            raise TypeError(f"fname must be a path, got {type(fname).__name__}")
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "class": "Word2Vec",
                "params": {p: getattr(self, p) for p in _PARAMS},
                "state": {s: getattr(self, s) for s in _STATE},
                "training_stats": self.training_stats,
                "vector_size": self.vector_size,
                "index_to_key": list(self.wv.index_to_key)}
        arrays = {"vectors": self.wv.vectors, "syn1neg": self.syn1neg}
        for attr, arr in self.wv.expandos.items():
            arrays["expando_" + attr] = arr
        save_npz(fname, meta, arrays)
        logger.info("saved %s to %s", self, os.fspath(fname))

    @classmethod
    def load(cls, fname, mmap=None):
        """Load a model written by :meth:`save` (``mmap`` is accepted and ignored)."""
        if not isinstance(fname, (str, os.PathLike)):
            raise TypeError(f"fname must be a path, got {type(fname).__name__}")
        meta, arrays = load_npz(fname, "Word2Vec")
        path = os.fspath(fname)
        try:
            model = cls(**{k: v for k, v in meta["params"].items() if k != "hs"})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path!r} is a damaged fastnet word2vec file: invalid parameter "
                             f"({exc})") from None
        for s, v in meta.get("state", {}).items():   # known names and types (load_npz)
            setattr(model, s, v)
        model.epoch_losses = list(model.epoch_losses)
        model.training_stats = list(meta.get("training_stats", []))
        model.wv = KeyedVectors._from_parts(meta, arrays)
        model.syn1neg = np.ascontiguousarray(arrays["syn1neg"])
        counts = model.wv.expandos["count"]
        if "sample_int" not in model.wv.expandos:
            model.wv.expandos["sample_int"] = sample_ints(counts, model.sample)
        try:
            model.cum_table = make_cum_table(counts, model.ns_exponent)
        except ValueError as exc:
            raise ValueError(f"{path!r} is a damaged fastnet word2vec file: {exc}") from None
        model._guide = make_guide(model.cum_table)
        return model

    def __str__(self):
        return (f"Word2Vec<vocab={len(self.wv)}, vector_size={self.vector_size}, "
                f"alpha={self.alpha}>")

    __repr__ = __str__

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_cache"] = None
        d["_encoded"] = None
        return d
