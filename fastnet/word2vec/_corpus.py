"""Reading a corpus once, counting its words and encoding it as int32 word indices.

The training kernels never see a string: the corpus is read once (streamed:
the raw text is never held), each sentence becomes a run of int32 indices in
one array, and sentence boundaries are an int64 offsets array.  Holding that
encoding costs 4 bytes per in-vocabulary token (15 MB for a 3.75M-token
corpus) and is what lets all epochs be fed to the threads without Python in
the way.

A list (or tuple) of sentences can change between two calls (``buf[:] =
other``), so the encoding kept for it carries a :func:`fingerprint` of its
content, a hash of every sentence's tokens (about 20 ns a token: 80 ms for
3.75M tokens, an eighth of encoding them again), computed after the pass that
reads it and again when the list comes back.
"""
from __future__ import annotations

import os
from array import array
from collections import Counter
from functools import partial
from operator import is_not

import numpy as np

from fastnet._files import open_text_stream

#: Sentences longer than this (in vocabulary words) are split into pieces, not truncated.
MAX_SENTENCE_LENGTH = 10000


class LineSentence:
    """A corpus file streamed as lists of tokens: one sentence per line, whitespace-separated.

    Lines are decoded as UTF-8 one at a time; a line that is not UTF-8 raises
    ``ValueError`` naming the file, the line number and the byte offset (and
    so does a damaged gzip or bzip2 file: compressed files are recognised by
    their first bytes).
    Lines longer than ``max_sentence_length`` tokens are cut into several
    sentences (like gensim's ``LineSentence``).  Iterable any number of times.

    Parameters
    ----------
    source : str or os.PathLike
        Path of the text file (``.gz`` and ``.bz2`` are decompressed on the fly).
    max_sentence_length : int
        Longest sentence yielded.
    limit : int, optional
        Read only the first ``limit`` lines.
    """

    def __init__(self, source, max_sentence_length=MAX_SENTENCE_LENGTH, limit=None):
        if not isinstance(source, (str, bytes, os.PathLike)):
            raise TypeError(f"corpus_file must be a path (str or os.PathLike), got "
                            f"{type(source).__name__}")
        self.source = os.fspath(source)
        if not os.path.isfile(self.source):
            raise FileNotFoundError(f"corpus_file {self.source!r} does not exist or is not a file")
        self.max_sentence_length = int(max_sentence_length)
        self.limit = limit

    def __iter__(self):
        n = self.max_sentence_length
        with open_text_stream(self.source, "corpus_file") as fh:
            offset = 0
            for line_no, raw in enumerate(fh, start=1):
                if self.limit is not None and line_no > self.limit:
                    break
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ValueError(
                        f"corpus_file {self.source!r} is not UTF-8 text: line {line_no} (byte "
                        f"{offset + exc.start} of the file) holds the invalid byte(s) "
                        f"{raw[exc.start:exc.end]!r}; re-encode the file as UTF-8") from None
                offset += len(raw)
                tokens = line.split()
                if len(tokens) <= n:
                    yield tokens
                else:
                    for i in range(0, len(tokens), n):
                        yield tokens[i:i + n]

    def __repr__(self):
        return f"LineSentence({self.source!r})"


class _RawIds(dict):
    """word -> first-appearance id; a missing word gets the next id (C-speed lookups via map)."""

    def __missing__(self, key):
        value = self[key] = len(self)
        return value


def _check_sentence(sentence, index):
    if isinstance(sentence, (str, bytes)):
        raise TypeError(
            f"sentences must be an iterable of lists of str tokens, but item {index} is a "
            f"{type(sentence).__name__} ({sentence[:40]!r}...): split your text into tokens "
            f"(for example [line.split() for line in lines]) or pass corpus_file=")
    if not hasattr(sentence, "__iter__"):
        raise TypeError(f"sentences must be an iterable of lists of str tokens, but item {index} "
                        f"is a {type(sentence).__name__}")


def _bad_token(sentence, index):
    """The TypeError of a sentence holding an unhashable token (a list, a dict...)."""
    token = next((t for t in sentence if not _hashable(t)), None)
    return TypeError(f"sentences must hold str tokens, but sentence {index} holds {token!r} "
                     f"({type(token).__name__}); each sentence is a flat list of words")


def _hashable(x):
    try:
        hash(x)
        return True
    except TypeError:
        return False


class Scan:
    """What one pass over the corpus learnt.

    Attributes
    ----------
    words : list of str
        Distinct words in order of first appearance (the raw ids).
    counts : ndarray of int64
        Their counts.
    total_words : int
        Tokens read.
    n_sentences : int
        Sentences read.
    raw_ids, raw_lengths : ndarray or None
        The corpus encoded with the raw ids (int32) and the length of every
        sentence, when the scan kept them (not under ``max_vocab_size``
        pruning).
    fingerprint : tuple or None
        :func:`fingerprint` of the sentences read, when the caller sets it.
    """

    def __init__(self, words, counts, total_words, n_sentences, raw_ids=None, raw_lengths=None,
                 fingerprint=None):
        self.words = words
        self.counts = counts
        self.total_words = total_words
        self.n_sentences = n_sentences
        self.raw_ids = raw_ids
        self.raw_lengths = raw_lengths
        self.fingerprint = fingerprint


def fingerprint(sentences):
    """A hash of the content of a list of sentences (None if one is not a list or tuple).

    Two lists with the same sentences (the same tokens in the same order) have
    the same fingerprint; a changed token, sentence or length changes it (but
    for a 64-bit hash collision).  One pass in C over the tokens (faster than
    hashing each sentence inside the reading loop, measured).
    """
    if not all(type(x) is list or type(x) is tuple for x in sentences):
        return None
    try:
        hashes = array("q", map(hash, map(tuple, sentences)))
    except TypeError:   # an unhashable token: no fingerprint (and no reuse)
        return None
    return len(hashes), hash(hashes.tobytes())


def scan_corpus(sentences, *, max_vocab_size=None, trim_rule=None, progress_per=10000,
                logger=None, keep_encoding=True):
    """Count the words of ``sentences`` in one pass (and keep the corpus encoded as raw ids).

    Under ``max_vocab_size``, whenever more than that many distinct words are
    held, the words seen at most ``min_reduce`` times are dropped and
    ``min_reduce`` grows by one (gensim's pruning); the encoding is then not
    kept (it would need every word).
    """
    if max_vocab_size is not None or not keep_encoding:
        return _scan_counts(sentences, max_vocab_size, trim_rule, progress_per, logger)
    ids = _RawIds()
    lookup = ids.__getitem__
    encoded = array("i")
    lengths = array("q")
    total = 0
    n_sent = 0
    for n_sent, sentence in enumerate(sentences, start=1):
        if n_sent == 1 or type(sentence) is not list:
            _check_sentence(sentence, n_sent - 1)
        before = len(encoded)
        try:
            encoded.extend(map(lookup, sentence))
        except TypeError:
            raise _bad_token(sentence, n_sent - 1) from None
        length = len(encoded) - before
        lengths.append(length)
        total += length
        if logger is not None and progress_per and n_sent % progress_per == 0:
            logger.debug("PROGRESS: at sentence #%i, processed %i words, keeping %i word types",
                         n_sent, total, len(ids))
    raw_ids = np.frombuffer(encoded, dtype=np.int32) if len(encoded) else np.zeros(0, np.int32)
    raw_lengths = np.frombuffer(lengths, dtype=np.int64) if len(lengths) else np.zeros(0, np.int64)
    counts = np.bincount(raw_ids, minlength=len(ids)).astype(np.int64)
    words = list(ids)
    _check_keys(words)
    return Scan(words, counts, total, n_sent, raw_ids, raw_lengths)


def _scan_counts(sentences, max_vocab_size, trim_rule, progress_per, logger):
    from fastnet.word2vec._vocab import keep_vocab_item
    vocab = Counter()
    total = 0
    n_sent = 0
    min_reduce = 1
    for n_sent, sentence in enumerate(sentences, start=1):
        if n_sent == 1 or type(sentence) is not list:
            _check_sentence(sentence, n_sent - 1)
        try:
            vocab.update(sentence)
        except TypeError:
            raise _bad_token(sentence, n_sent - 1) from None
        total += len(sentence)
        if max_vocab_size is not None and len(vocab) > max_vocab_size:
            before = len(vocab)
            for w in [w for w, c in vocab.items() if not keep_vocab_item(w, c, min_reduce + 1,
                                                                           trim_rule)]:
                del vocab[w]
            if logger is not None:
                logger.info("pruned out %i word types with count <=%i (before %i, after %i)",
                            before - len(vocab), min_reduce, before, len(vocab))
            min_reduce += 1
        if logger is not None and progress_per and n_sent % progress_per == 0:
            logger.debug("PROGRESS: at sentence #%i, processed %i words, keeping %i word types",
                         n_sent, total, len(vocab))
    words = list(vocab)
    _check_keys(words)
    counts = np.fromiter(vocab.values(), dtype=np.int64, count=len(vocab))
    return Scan(words, counts, total, n_sent)


def _check_keys(words):
    for w in words:
        if not isinstance(w, str):
            raise TypeError(f"sentences must hold str tokens, found {w!r} "
                            f"({type(w).__name__})")


class Encoded:
    """The training corpus: int32 word indices and int64 sentence offsets (no empty sentence).

    ``words[offsets[s]:offsets[s + 1]]`` is sentence ``s``; no sentence is
    longer than :data:`MAX_SENTENCE_LENGTH` (longer ones are split).
    """

    def __init__(self, words, offsets, n_sentences_read, total_tokens, fingerprint=None):
        self.words = np.ascontiguousarray(words, dtype=np.int32)
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.n_sentences_read = n_sentences_read
        self.total_tokens = total_tokens
        self.fingerprint = fingerprint

    @property
    def n_words(self):
        return int(self.words.shape[0])

    @property
    def n_sentences(self):
        return int(self.offsets.shape[0] - 1)

    def jobs(self, batch_words):
        """Sentence ranges ``(begin, end)`` of about ``batch_words`` words each, in order."""
        S = self.n_sentences
        if S == 0:
            return np.zeros(1, dtype=np.int64)
        total = self.n_words
        targets = np.arange(batch_words, total, batch_words, dtype=np.int64)
        cuts = np.searchsorted(self.offsets, targets, side="left")
        bounds = np.unique(np.concatenate(([0], cuts, [S])))
        return bounds[(bounds >= 0) & (bounds <= S)]


def _finish(ids, lengths, n_read, total_tokens, max_len=MAX_SENTENCE_LENGTH, fp=None):
    """Drop empty sentences, split long ones, return :class:`Encoded`."""
    lengths = lengths[lengths > 0]
    if lengths.size and lengths.max() > max_len:
        pieces = []
        for L in lengths.tolist():
            while L > max_len:
                pieces.append(max_len)
                L -= max_len
            pieces.append(L)
        lengths = np.asarray(pieces, dtype=np.int64)
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Encoded(ids, offsets, n_read, total_tokens, fp)


def encode_from_scan(scan, key_to_index):
    """Re-encode a kept raw-id corpus with the final vocabulary (vectorised, no Python per token)."""
    remap = np.fromiter((key_to_index.get(w, -1) for w in scan.words), dtype=np.int64,
                        count=len(scan.words))
    final = remap[scan.raw_ids] if scan.raw_ids.size else np.zeros(0, np.int64)
    keep = final >= 0
    csum = np.zeros(final.shape[0] + 1, dtype=np.int64)
    np.cumsum(keep, out=csum[1:])
    raw_offsets = np.zeros(scan.raw_lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(scan.raw_lengths, out=raw_offsets[1:])
    lengths = np.diff(csum[raw_offsets])
    return _finish(final[keep].astype(np.int32), lengths, scan.n_sentences, scan.total_words,
                   fp=scan.fingerprint)


def encode_corpus(sentences, key_to_index, logger=None, progress_per=10000):
    """Encode ``sentences`` with ``key_to_index`` in one pass (unknown words are dropped)."""
    get = key_to_index.get
    known = partial(is_not, None)
    encoded = array("i")
    lengths = array("q")
    total = 0
    n_sent = 0
    for n_sent, sentence in enumerate(sentences, start=1):
        if n_sent == 1 or type(sentence) is not list:
            _check_sentence(sentence, n_sent - 1)
        before = len(encoded)
        try:
            encoded.extend(filter(known, map(get, sentence)))
        except TypeError:
            raise _bad_token(sentence, n_sent - 1) from None
        lengths.append(len(encoded) - before)
        total += len(sentence)
        if logger is not None and progress_per and n_sent % progress_per == 0:
            logger.debug("encoding: at sentence #%i, %i words", n_sent, total)
    ids = np.frombuffer(encoded, dtype=np.int32) if len(encoded) else np.zeros(0, np.int32)
    lens = np.frombuffer(lengths, dtype=np.int64) if len(lengths) else np.zeros(0, np.int64)
    return _finish(ids.copy(), lens.copy(), n_sent, total)
