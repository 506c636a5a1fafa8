r"""Word vectors and what the course does with them: similarity, analogies, evaluation, files.

:class:`KeyedVectors` follows gensim 4's class of the same name: ``vectors``
(float32, one row per word), ``index_to_key``, ``key_to_index``,
``wv[word]``, ``word in wv``, ``most_similar``, ``similarity``,
``doesnt_match``, ``evaluate_word_analogies``, ``evaluate_word_pairs`` and
the word2vec C text and binary formats.

Similarity is the cosine :math:`\cos(u, v) = u\cdot v / (\lVert u\rVert
\lVert v\rVert)`.  An analogy *a is to b as c is to ?* (``b - a + c``) is
answered, as in the course and in word2vec's ``compute-accuracy``, by the
word whose vector is most similar to :math:`\hat b - \hat a + \hat c`
(hats: unit vectors), excluding ``a``, ``b`` and ``c``.
"""
from __future__ import annotations

import logging
import math
import numbers
import os

import numpy as np

from fastnet._files import atomic_write, read_bytes
from fastnet.word2vec._io import FORMAT, FORMAT_VERSION, save_npz, load_npz

logger = logging.getLogger("fastnet.word2vec")

__all__ = ["KeyedVectors"]


def _unit_rows(M):
    norms = np.linalg.norm(M, axis=1)
    norms[norms == 0] = 1
    return M / norms[:, None].astype(M.dtype)


def _path(fname, what):
    if not isinstance(fname, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a path (str or os.PathLike), got {type(fname).__name__}")
    return os.fspath(fname)


class KeyedVectors:
    """Vectors looked up by word.

    Parameters
    ----------
    vector_size : int
        Dimension of the vectors.
    count : int
        Rows to preallocate (filled with :meth:`add_vector`).
    dtype : numpy dtype
        float32 by default.

    Attributes
    ----------
    vectors : ndarray, shape (len(self), vector_size)
        Row ``i`` is the vector of ``index_to_key[i]``.
    index_to_key : list of str
    key_to_index : dict of str -> int
    expandos : dict of str -> ndarray
        Per-word attributes (``'count'``, ...), as in gensim.
    """

    def __init__(self, vector_size, count=0, dtype=np.float32, mapfile_path=None):
        from fastnet._validation import check_int
        self.vector_size = check_int(vector_size, "vector_size", lo=1)
        count = check_int(count, "count", lo=0)
        self.vectors = np.zeros((count, self.vector_size), dtype=dtype)
        self.index_to_key = []
        self.key_to_index = {}
        self.expandos = {}
        self.norms = None
        self.next_index = 0

    # ------------------------------------------------------------- lookup
    def __len__(self):
        return len(self.index_to_key)

    def __contains__(self, key):
        return self.has_index_for(key)

    def has_index_for(self, key):
        """Whether ``key`` is a word of the vocabulary."""
        try:
            return key in self.key_to_index
        except TypeError:
            return False

    def get_index(self, key, default=None):
        """Row of ``key`` (a word, or an int row number); ``KeyError`` if unknown and no default."""
        try:
            val = self.key_to_index.get(key, -1)
        except TypeError:  # unhashable
            val = -1
        if val >= 0:
            return val
        if isinstance(key, numbers.Integral) and not isinstance(key, bool) \
                and 0 <= key < len(self.index_to_key):
            return int(key)
        if default is not None:
            return default
        raise KeyError(self._unknown(key))

    def _unknown(self, key):
        return (f"word {key!r} is not in the vocabulary ({len(self.index_to_key)} words"
                f"{', e.g. ' + repr(self.index_to_key[0]) if self.index_to_key else ''})")

    def get_vector(self, key, norm=False):
        """The vector of ``key`` (unit length if ``norm``); ``KeyError`` naming an unknown word."""
        index = self.get_index(key)
        if norm:
            self.fill_norms()
            return self.vectors[index] / self.norms[index]
        return self.vectors[index]

    word_vec = get_vector

    def __getitem__(self, key_or_keys):
        """``wv['word']`` -> vector; ``wv[['a', 'b']]`` -> 2-D array of their vectors."""
        if isinstance(key_or_keys, (str, numbers.Integral)) and not isinstance(key_or_keys, bool):
            return self.get_vector(key_or_keys)
        if isinstance(key_or_keys, (list, tuple, np.ndarray)):
            return np.vstack([self.get_vector(k) for k in key_or_keys]) if len(key_or_keys) \
                else np.zeros((0, self.vector_size), dtype=self.vectors.dtype)
        return self.get_vector(key_or_keys)

    def get_vecattr(self, key, attr):
        """Per-word attribute ``attr`` (e.g. ``'count'``) of ``key``."""
        if attr not in self.expandos:
            raise KeyError(f"no per-word attribute {attr!r}; known: {sorted(self.expandos)}")
        return self.expandos[attr][self.get_index(key)].item()

    def set_vecattr(self, key, attr, val):
        """Set per-word attribute ``attr`` of ``key``."""
        index = self.get_index(key)
        if attr not in self.expandos:
            self.expandos[attr] = np.zeros(len(self.vectors), dtype=type(val) if isinstance(
                val, (int, float)) else np.asarray(val).dtype)
        self.expandos[attr][index] = val

    def add_vector(self, key, vector):
        """Add one word (into the preallocated rows first); returns its index."""
        if key in self.key_to_index:
            logger.warning("word %r already present; not adding it again", key)
            return self.key_to_index[key]
        vector = np.asarray(vector, dtype=self.vectors.dtype).reshape(-1)
        if vector.shape[0] != self.vector_size:
            raise ValueError(f"vector for {key!r} has {vector.shape[0]} numbers, expected "
                             f"vector_size={self.vector_size}")
        index = len(self.index_to_key)
        if index >= self.vectors.shape[0]:
            self.vectors = np.vstack([self.vectors, vector[None, :]])
        else:
            self.vectors[index] = vector
        for attr, arr in self.expandos.items():
            if arr.shape[0] <= index:
                self.expandos[attr] = np.concatenate([arr, np.zeros(index + 1 - arr.shape[0],
                                                                    dtype=arr.dtype)])
        self.index_to_key.append(key)
        self.key_to_index[key] = index
        self.next_index = index + 1
        self.norms = None
        return index

    def add_vectors(self, keys, weights, extras=None, replace=False):
        """Append several words and their vectors (``weights``: one row per key)."""
        weights = np.asarray(weights, dtype=self.vectors.dtype)
        if weights.ndim == 1:
            weights = weights[None, :]
        keys = list(keys)
        if weights.shape != (len(keys), self.vector_size):
            raise ValueError(f"weights has shape {weights.shape}, expected "
                             f"({len(keys)}, {self.vector_size})")
        for key, w in zip(keys, weights):
            if key in self.key_to_index:
                if replace:
                    self.vectors[self.key_to_index[key]] = w
                continue
            self.add_vector(key, w)
        if extras:
            for attr, vals in extras.items():
                for key, v in zip(keys, vals):
                    self.set_vecattr(key, attr, v)

    def _trim(self):
        if self.vectors.shape[0] != len(self.index_to_key):
            self.vectors = np.ascontiguousarray(self.vectors[:len(self.index_to_key)])
            for attr in list(self.expandos):
                self.expandos[attr] = self.expandos[attr][:len(self.index_to_key)]

    # ------------------------------------------------------------- norms and similarity
    def fill_norms(self, force=False):
        """Compute (once) the L2 norm of every vector."""
        if self.norms is None or force or self.norms.shape[0] != self.vectors.shape[0]:
            self.norms = np.linalg.norm(self.vectors, axis=1)

    def get_normed_vectors(self):
        """All vectors scaled to unit length (zero vectors stay zero)."""
        self.fill_norms()
        norms = self.norms.copy()
        norms[norms == 0] = 1
        return self.vectors / norms[:, None].astype(self.vectors.dtype)

    def similarity(self, w1, w2):
        """Cosine similarity of two words."""
        u = self.get_vector(w1)
        v = self.get_vector(w2)
        nu, nv = np.linalg.norm(u), np.linalg.norm(v)
        if nu == 0 or nv == 0:
            return 0.0
        return float(np.dot(u, v) / (nu * nv))

    def n_similarity(self, ws1, ws2):
        """Cosine similarity of the mean unit vectors of two lists of words."""
        if not len(ws1) or not len(ws2):
            raise ValueError("n_similarity: both lists of words must be non-empty")
        a = self.get_mean_vector(ws1, post_normalize=True)
        b = self.get_mean_vector(ws2, post_normalize=True)
        return float(np.dot(a, b))

    def distance(self, w1, w2):
        """Cosine distance ``1 - similarity``."""
        return 1.0 - self.similarity(w1, w2)

    @staticmethod
    def cosine_similarities(vector_1, vectors_all):
        """Cosine similarity of ``vector_1`` with every row of ``vectors_all``."""
        v = np.asarray(vector_1)
        M = np.asarray(vectors_all)
        if v.ndim != 1 or M.ndim != 2 or M.shape[1] != v.shape[0]:
            raise ValueError(f"cosine_similarities: vector_1 must be 1-D (d,) and vectors_all "
                             f"2-D (n, d), got shapes {v.shape} and {M.shape}")
        if v.dtype.kind not in "biuf" or M.dtype.kind not in "biuf":
            raise TypeError(f"cosine_similarities: expected real numbers, got dtypes {v.dtype} "
                            f"and {M.dtype}")
        if not (np.isfinite(v).all() and np.isfinite(M).all()):
            raise ValueError("cosine_similarities: vector_1 and vectors_all must be finite "
                             "(no NaN or inf)")
        nv = np.linalg.norm(v)
        nm = np.linalg.norm(M, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = M @ v / (nm * nv)
        return np.nan_to_num(out)

    def get_mean_vector(self, keys, weights=None, pre_normalize=True, post_normalize=False,
                        ignore_missing=True):
        """Weighted mean of the (unit, if ``pre_normalize``) vectors of ``keys``."""
        if len(keys) == 0:
            raise ValueError("cannot compute the mean of an empty list of keys")
        weights = np.ones(len(keys)) if weights is None else np.asarray(weights, dtype=np.float64)
        mean = np.zeros(self.vector_size, dtype=np.float64)
        total = 0.0
        for key, w in zip(keys, weights):
            if isinstance(key, np.ndarray):
                mean += w * self._query_vector(key)
                total += abs(w)
                continue
            try:
                vec = self.get_vector(key, norm=pre_normalize)
            except KeyError:
                if ignore_missing:
                    continue
                raise
            mean += w * vec
            total += abs(w)
        if total > 0:
            mean /= total
        if post_normalize:
            n = np.linalg.norm(mean)
            if n > 0:
                mean /= n
        return mean.astype(self.vectors.dtype)

    def _query_vector(self, v, name="a query vector"):
        """``v`` checked as a vector of this space: real numbers, ``(vector_size,)``, finite."""
        v = np.asarray(v)
        if v.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {v.dtype}")
        if v.shape != (self.vector_size,):
            raise ValueError(f"{name} has shape {v.shape}, but these vectors have "
                             f"{self.vector_size} dimensions: expected shape "
                             f"({self.vector_size},)")
        if not np.isfinite(v).all():
            raise ValueError(f"{name} holds NaN or inf (at position "
                             f"{int(np.argwhere(~np.isfinite(v))[0][0])}); expected finite "
                             f"numbers")
        return v.astype(np.float64)

    @staticmethod
    def _as_list(x):
        if x is None:
            return []
        if isinstance(x, (str, np.ndarray)) or (isinstance(x, numbers.Integral)
                                               and not isinstance(x, bool)):
            return [x]
        if isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], numbers.Real) \
                and not isinstance(x[0], (list, tuple)):
            return [x]
        return list(x)

    def most_similar(self, positive=None, negative=None, topn=10, clip_start=0, clip_end=None,
                     restrict_vocab=None, indexer=None):
        """The ``topn`` words most similar (cosine) to the mean of ``positive`` minus ``negative``.

        Parameters
        ----------
        positive, negative : str, vector, (key, weight) or a list of them
            Words (or vectors) that count positively (weight +1) and
            negatively (weight -1); the query is the weighted mean of their
            unit vectors (the analogy ``b - a + c`` is
            ``most_similar(positive=[b, c], negative=[a])``).
        topn : int or None
            How many to return; ``None`` returns the similarity to every word.
        restrict_vocab : int, optional
            Only search the first ``restrict_vocab`` words (the most frequent).

        Returns
        -------
        list of (str, float)
            Most similar first; the input words are excluded.

        Raises
        ------
        KeyError
            An input word is not in the vocabulary (the message names it).
        """
        if topn is not None and (isinstance(topn, bool) or not isinstance(topn, numbers.Integral)):
            raise TypeError(f"topn must be an int or None, got {topn!r}")
        if isinstance(topn, numbers.Integral) and topn < 1:
            return []
        positive = self._as_list(positive)
        negative = self._as_list(negative)
        if not positive and not negative:
            raise ValueError("most_similar needs at least one positive or negative word")
        keys, weights = [], []
        for item, default in [(p, 1.0) for p in positive] + [(n, -1.0) for n in negative]:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], numbers.Real):
                keys.append(item[0])
                weights.append(float(item[1]))
            else:
                keys.append(item)
                weights.append(default)
        if not all(math.isfinite(w) for w in weights):
            raise ValueError(f"most_similar: the weights must be finite, got {weights}")
        for key in keys:
            if isinstance(key, np.ndarray):
                self._query_vector(key)
            else:
                self.get_index(key)  # raises KeyError naming an unknown word
        if len(self) == 0:
            return []
        mean = self.get_mean_vector(keys, weights, pre_normalize=True, post_normalize=True,
                                    ignore_missing=False)
        self.fill_norms()
        if restrict_vocab:
            clip_start, clip_end = 0, int(restrict_vocab)
        clip_end = clip_end or len(self.vectors)
        norms = self.norms[clip_start:clip_end].copy()
        norms[norms == 0] = 1
        dists = self.vectors[clip_start:clip_end] @ mean / norms
        if topn is None:
            return dists
        exclude = {self.get_index(k) for k in keys if not isinstance(k, np.ndarray)}
        k = min(int(topn) + len(exclude), dists.shape[0])
        best = np.argpartition(-dists, k - 1)[:k] if k < dists.shape[0] else np.arange(k)
        best = best[np.argsort(-dists[best], kind="stable")]
        result = [(self.index_to_key[i + clip_start], float(dists[i])) for i in best
                  if (i + clip_start) not in exclude]
        return result[:topn]

    def similar_by_key(self, key, topn=10, restrict_vocab=None):
        """The words most similar to ``key``."""
        return self.most_similar(positive=[key], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_word = similar_by_key

    def similar_by_vector(self, vector, topn=10, restrict_vocab=None):
        """The words most similar to ``vector``."""
        return self.most_similar(positive=[np.asarray(vector)], topn=topn,
                                 restrict_vocab=restrict_vocab)

    def doesnt_match(self, words):
        """The word of ``words`` least similar to the mean of their unit vectors.

        Unknown words are ignored with a warning (as in gensim); ``ValueError``
        if none is known.
        """
        words = list(words)
        used = [w for w in words if w in self]
        if len(used) != len(words):
            logger.warning("words %s are not in the vocabulary; ignoring them",
                           sorted(set(map(str, words)) - set(map(str, used))))
        if not used:
            raise ValueError("doesnt_match: none of the words is in the vocabulary"
                             + (f" (got {words!r})" if words else " (got an empty list)"))
        vecs = np.vstack([self.get_vector(w, norm=True) for w in used])
        mean = vecs.mean(axis=0)
        n = np.linalg.norm(mean)
        if n > 0:
            mean = mean / n
        dists = vecs @ mean
        return used[int(np.argmin(dists))]

    # ------------------------------------------------------------- evaluation
    def _ok_vocab(self, restrict_vocab, case_insensitive):
        keys = self.index_to_key[:restrict_vocab]
        if case_insensitive:
            return {k.upper(): i for i, k in reversed(list(enumerate(keys)))}
        return {k: i for i, k in enumerate(keys)}

    def evaluate_word_analogies(self, analogies, restrict_vocab=300000, case_insensitive=True,
                                dummy4unknown=False, similarity_function="most_similar"):
        """Accuracy on an analogy file in word2vec's ``questions-words.txt`` format.

        The file has ``: section`` lines and questions ``a b c d`` (*a is to b
        as c is to d*).  A question is answered by the word most similar to
        :math:`\\hat b - \\hat a + \\hat c` among the first ``restrict_vocab``
        words, excluding ``a``, ``b``, ``c``.  Questions with a word outside
        those are skipped (counted wrong with ``dummy4unknown``), as gensim
        does.  All questions are scored in a few matrix products.

        Returns
        -------
        score : float
            Overall accuracy (correct / answered).
        sections : list of dict
            ``{'section': name, 'correct': [(a, b, c, d), ...], 'incorrect': [...]}``
            per section, then the ``'Total accuracy'`` one.
        """
        if similarity_function != "most_similar":
            raise ValueError(f"similarity_function must be 'most_similar', got "
                             f"{similarity_function!r}")
        path = _path(analogies, "analogies")
        ok_vocab = self._ok_vocab(restrict_vocab, case_insensitive)
        sections, questions = [], []   # questions: (section index, a, b, c, d, ia, ib, ic, id)
        section = None
        oov = quadruplets = 0
        with open(path, encoding="utf8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if line.startswith(": "):
                    section = {"section": line.lstrip(": ").strip(), "correct": [],
                               "incorrect": []}
                    sections.append(section)
                    continue
                if not line.strip():
                    continue
                if section is None:
                    raise ValueError(f"{path}: line {line_no}: a question before the first "
                                     f"': section' line")
                parts = line.split()
                if len(parts) != 4:
                    logger.info("skipping invalid line #%i in %s", line_no, path)
                    continue
                if case_insensitive:
                    parts = [p.upper() for p in parts]
                quadruplets += 1
                idx = [ok_vocab.get(p) for p in parts]
                if None in idx:
                    oov += 1
                    if dummy4unknown:
                        section["incorrect"].append(tuple(parts))
                    continue
                questions.append((len(sections) - 1, tuple(parts), idx))
        if questions:
            n_ok = min(restrict_vocab, len(self.index_to_key))
            normed = _unit_rows(self.vectors[:n_ok].astype(np.float32))
            canon = None
            if case_insensitive:
                canon = np.asarray([ok_vocab[k.upper()] for k in self.index_to_key[:n_ok]],
                                   dtype=np.int64)
                variants = np.flatnonzero(canon != np.arange(n_ok))   # e.g. 'Paris' of 'paris'
            ia = np.array([q[2][0] for q in questions])
            ib = np.array([q[2][1] for q in questions])
            ic = np.array([q[2][2] for q in questions])
            expected = np.array([q[2][3] for q in questions])
            predicted = np.empty(len(questions), dtype=np.int64)
            chunk = 512
            for s in range(0, len(questions), chunk):
                sl = slice(s, s + chunk)
                Q = normed[ib[sl]] - normed[ia[sl]] + normed[ic[sl]]
                Q = _unit_rows(Q)
                sims = Q @ normed.T
                rows = np.arange(sims.shape[0])
                for col in (ia[sl], ib[sl], ic[sl]):
                    sims[rows, col] = -np.inf
                    if canon is not None and variants.size:   # other spellings of a, b, c
                        hit = canon[variants][None, :] == col[:, None]
                        r, v = np.nonzero(hit)
                        sims[r, variants[v]] = -np.inf
                best = np.argmax(sims, axis=1)
                predicted[sl] = canon[best] if canon is not None else best
            for (si, parts, _), p, e in zip(questions, predicted, expected):
                sections[si]["correct" if p == e else "incorrect"].append(parts)
        for s in sections:
            c, i = len(s["correct"]), len(s["incorrect"])
            if c + i:
                logger.info("%s: %.1f%% (%i/%i)", s["section"], 100.0 * c / (c + i), c, c + i)
        total = {"section": "Total accuracy",
                 "correct": [q for s in sections for q in s["correct"]],
                 "incorrect": [q for s in sections for q in s["incorrect"]]}
        if quadruplets:
            logger.info("Quadruplets with out-of-vocabulary words: %.1f%%",
                        100.0 * oov / quadruplets)
        c, i = len(total["correct"]), len(total["incorrect"])
        score = c / (c + i) if c + i else 0.0
        logger.info("Total accuracy: %.1f%% (%i/%i)", 100.0 * score, c, c + i)
        sections.append(total)
        return score, sections

    def evaluate_word_pairs(self, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                            case_insensitive=True, dummy4unknown=False):
        """Correlation with human similarity judgements (WordSim353 / SimLex-999 format).

        Each line is ``word1<delimiter>word2<delimiter>score``; lines
        starting with ``#`` are comments.  Pairs with a word outside the first
        ``restrict_vocab`` words are skipped (scored 0 with ``dummy4unknown``).

        Returns
        -------
        pearson : (float, float)
            Pearson correlation and p-value.
        spearman : (float, float)
            Spearman rank correlation and p-value.
        oov_ratio : float
            Percentage of pairs with an unknown word.
        """
        from scipy import stats
        path = _path(pairs, "pairs")
        ok_vocab = self._ok_vocab(restrict_vocab, case_insensitive)
        gold, model = [], []
        oov = 0
        with open(path, encoding=encoding) as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip() or line.startswith("#"):
                    continue
                try:
                    a, b, sim = line.rstrip("\n").split(delimiter)
                    sim = float(sim)
                except ValueError:
                    logger.info("skipping invalid line #%i in %s", line_no, path)
                    continue
                if case_insensitive:
                    a, b = a.upper(), b.upper()
                if a not in ok_vocab or b not in ok_vocab:
                    oov += 1
                    if dummy4unknown:
                        model.append(0.0)
                        gold.append(sim)
                    continue
                gold.append(sim)
                model.append(self.similarity(ok_vocab[a], ok_vocab[b]))
        if not gold:
            raise ValueError(f"no valid similarity judgement in {path!r}: wrong format, or every "
                             f"pair has a word outside the vocabulary")
        spearman = stats.spearmanr(gold, model)
        pearson = stats.pearsonr(gold, model)
        oov_ratio = 100.0 * oov / (len(gold) if dummy4unknown else len(gold) + oov)
        logger.info("Pearson %.4f, Spearman %.4f against %s (%.1f%% pairs with unknown words)",
                    pearson[0], spearman[0], path, oov_ratio)
        return ((float(pearson[0]), float(pearson[1])),
                (float(spearman[0]), float(spearman[1])), oov_ratio)

    # ------------------------------------------------------------- word2vec C formats
    def save_word2vec_format(self, fname, fvocab=None, binary=False, total_vec=None,
                             write_header=True, prefix="", append=False, sort_attr="count"):
        """Write the vectors in the word2vec C format (text or binary), atomically.

        Text: a header line ``<words> <dimension>``, then one line per word:
        the word and its numbers separated by spaces (9 significant digits:
        float32 round-trips exactly).  Binary: the same header, then per word
        the UTF-8 word, a space, ``vector_size`` little-endian float32 and a
        newline (word2vec.c's layout; gensim reads it).  Words are written in
        vocabulary order (most frequent first for a trained model).
        ``fvocab`` also writes ``word count`` lines.
        """
        path = _path(fname, "fname")
        self._trim()
        n = len(self.index_to_key)
        if total_vec is None:
            total_vec = n
        mode = "ab" if append else "wb"
        counts = self.expandos.get("count")
        if fvocab is not None:
            with atomic_write(_path(fvocab, "fvocab")) as fh:
                for i, word in enumerate(self.index_to_key):
                    c = int(counts[i]) if counts is not None else n - i
                    fh.write(f"{prefix}{word} {c}\n".encode("utf8"))
        vecs = np.ascontiguousarray(self.vectors, dtype="<f4")

        def write(fh):
            if write_header:
                fh.write(f"{total_vec} {self.vector_size}\n".encode("utf8"))
            if binary:
                for i, word in enumerate(self.index_to_key):
                    fh.write(f"{prefix}{word} ".encode("utf8") + vecs[i].tobytes() + b"\n")
            else:
                fmt = " ".join(["{:.9g}"] * self.vector_size)
                for i, word in enumerate(self.index_to_key):
                    fh.write(f"{prefix}{word} {fmt.format(*vecs[i].tolist())}\n".encode("utf8"))

        if append:
            with open(path, mode) as fh:
                write(fh)
        else:
            with atomic_write(path) as fh:
                write(fh)
        logger.info("saved %i x %i vectors to %s (%s)", n, self.vector_size, path,
                    "binary" if binary else "text")

    @classmethod
    def load_word2vec_format(cls, fname, fvocab=None, binary=False, encoding="utf8",
                             unicode_errors="strict", limit=None, datatype=np.float32,
                             no_header=False):
        """Read vectors in the word2vec C format (text or binary, gzip/bzip2-compressed too).

        Raises
        ------
        ValueError
            The file is truncated, malformed or damaged (a header announcing
            more than the file holds, a corrupted compressed stream), or a
            vector holds NaN or inf (also after the cast to ``datatype``);
            the message names the file and says where (line number for
            text, byte offset and word number for binary).
        """
        path = _path(fname, "fname")
        counts = None
        if fvocab is not None:
            counts = {}
            for line_no, line in enumerate(read_bytes(_path(fvocab, "fvocab"), "fvocab")
                                           .splitlines(), start=1):
                try:
                    parts = line.decode(encoding, errors=unicode_errors).split()
                except UnicodeDecodeError as exc:
                    raise ValueError(f"{fvocab}: line {line_no} is not valid {encoding} "
                                     f"({exc.reason})") from None
                if parts:
                    if len(parts) != 2 or not parts[1].isdigit():
                        raise ValueError(f"{fvocab}: line {line_no}: expected 'word count' (a "
                                         f"count >= 0), got {line[:60]!r}")
                    counts[parts[0]] = int(parts[1])
        data = read_bytes(path, "fname")
        if binary:
            if no_header:
                raise ValueError("no_header is only available for text files")
            kv = _read_binary(cls, data, path, limit, datatype, encoding, unicode_errors)
        else:
            kv = _read_text(cls, data, path, limit, datatype, encoding, unicode_errors, no_header)
        bad = ~np.isfinite(kv.vectors)
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(f"{path}: the vector of word {i + 1} ({kv.index_to_key[i]!r}) holds "
                             f"{kv.vectors[i, j]} (as {np.dtype(datatype).name}) at position "
                             f"{j + 1}; vectors must be finite numbers")
        n = len(kv)
        if counts is not None:
            kv.expandos["count"] = np.array([counts.get(w, 0) for w in kv.index_to_key],
                                            dtype=np.int64)
        else:  # made-up descending counts, as gensim does
            kv.expandos["count"] = np.arange(n, 0, -1, dtype=np.int64)
        logger.info("loaded %i x %i vectors from %s", n, kv.vector_size, path)
        return kv

    # ------------------------------------------------------------- native format
    def save(self, fname):
        """Save to one ``.npz``-format file (arrays + JSON metadata, no pickle), atomically."""
        self._trim()
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "class": "KeyedVectors",
                "vector_size": self.vector_size, "index_to_key": list(self.index_to_key)}
        arrays = {"vectors": self.vectors}
        for attr, arr in self.expandos.items():
            arrays["expando_" + attr] = arr
        save_npz(_path(fname, "fname"), meta, arrays)

    @classmethod
    def load(cls, fname, mmap=None):
        """Load what :meth:`save` wrote."""
        meta, arrays = load_npz(_path(fname, "fname"), "KeyedVectors")
        return cls._from_parts(meta, arrays)

    @classmethod
    def _from_parts(cls, meta, arrays, prefix=""):
        vectors = arrays[prefix + "vectors"]
        keys = meta["index_to_key"]
        if vectors.shape != (len(keys), meta["vector_size"]):
            raise ValueError("corrupt fastnet word2vec file: vectors do not match the vocabulary")
        kv = cls(meta["vector_size"], 0, dtype=vectors.dtype)
        kv.vectors = np.ascontiguousarray(vectors)
        kv.index_to_key = list(keys)
        kv.key_to_index = {k: i for i, k in enumerate(keys)}
        kv.next_index = len(keys)
        for name, arr in arrays.items():
            if name.startswith(prefix + "expando_"):
                kv.expandos[name[len(prefix) + 8:]] = arr
        return kv

    def __repr__(self):
        return f"<KeyedVectors: {len(self)} words x {self.vector_size} dimensions>"

    __str__ = __repr__


# ----------------------------------------------------------------- readers
def _header(line, path, encoding):
    try:
        text = line.decode(encoding)
        n, d = (int(x) for x in text.split())
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{path}: line 1 must be the header '<number of words> <vector size>', "
                         f"got {line[:80]!r}") from None
    if n < 0 or d < 1:
        raise ValueError(f"{path}: line 1: impossible header {n} words x {d} dimensions")
    return n, d


def _read_text(cls, data, path, limit, datatype, encoding, unicode_errors, no_header):
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if no_header:
        n, d, start = len(lines), None, 0
    else:
        if not lines:
            raise ValueError(f"{path}: empty file (expected a '<words> <vector size>' header)")
        n, d = _header(lines[0], path, encoding)
        start = 1
    if limit:
        n = min(n, int(limit))
    if n > len(lines) - start:
        raise ValueError(f"{path}: truncated: the header announces {n} words but the file "
                         f"ends after line {len(lines)} ({len(lines) - start} vectors)")
    if d is not None and n * 2 * d > len(data):
        raise ValueError(f"{path}: line 1: the header announces {n} words x {d} dimensions, "
                         f"more numbers than the file's {len(data)} bytes can hold (truncated "
                         f"file, or a damaged header?)")
    kv = None
    for k in range(n):
        line_no = start + k + 1
        if start + k >= len(lines):
            raise ValueError(f"{path}: truncated: the header announces {n} words but the file "
                             f"ends after line {start + k} ({k} vectors read)")
        raw = lines[start + k]
        try:
            text = raw.decode(encoding, errors=unicode_errors)
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: line {line_no}: the word is not valid {encoding} "
                             f"({exc.reason} at byte {exc.start})") from None
        parts = text.rstrip().split(" ")
        word, nums = parts[0], parts[1:]
        if d is None:
            d = len(nums)
            if d < 1:
                raise ValueError(f"{path}: line {line_no}: no numbers after the word {word!r}")
        if kv is None:
            kv = cls(d, n, dtype=datatype)
        if len(nums) != d:
            raise ValueError(f"{path}: line {line_no} (word {word!r}): expected {d} numbers, "
                             f"found {len(nums)}" + (" (truncated file?)" if k == n - 1 and
                                                     len(nums) < d else ""))
        try:
            with np.errstate(over="ignore"):   # a number beyond datatype: inf, refused below
                vec = np.array(nums, dtype=np.float64).astype(datatype)
        except ValueError:
            bad = next(x for x in nums if not _is_float(x))
            raise ValueError(f"{path}: line {line_no} (word {word!r}): {bad!r} is not a "
                             f"number") from None
        kv.add_vector(word, vec)
    if kv is None:
        kv = cls(d or 1, 0, dtype=datatype)
    kv._trim()
    return kv


def _is_float(x):
    try:
        float(x)
        return True
    except ValueError:
        return False


def _read_binary(cls, data, path, limit, datatype, encoding, unicode_errors):
    nl = data.find(b"\n")
    if nl < 0:
        raise ValueError(f"{path}: no header line (expected '<words> <vector size>')")
    n, d = _header(data[:nl], path, encoding)
    if limit:
        n = min(n, int(limit))
    if n * (4 * d + 1) > len(data) - nl - 1:
        raise ValueError(f"{path}: truncated: the header announces {n} words x {d} dimensions "
                         f"({n * (4 * d + 1)} bytes at least) but {len(data) - nl - 1} bytes "
                         f"follow it (truncated file, or a damaged header?)")
    kv = cls(d, n, dtype=datatype)
    pos = nl + 1
    nbytes = 4 * d
    size = len(data)
    for k in range(n):
        while pos < size and data[pos:pos + 1] in (b"\n", b"\r"):
            pos += 1
        sp = data.find(b" ", pos, pos + 100000)
        if sp < 0:
            if pos >= size:
                raise ValueError(f"{path}: truncated: the header announces {n} words but the "
                                 f"file ends at byte {size} after {k} vectors")
            raise ValueError(f"{path}: malformed at byte {pos} (word {k + 1} of {n}): no space "
                             f"after a word")
        try:
            word = data[pos:sp].decode(encoding, errors=unicode_errors)
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: word {k + 1} of {n} at byte {pos} is not valid "
                             f"{encoding} ({exc.reason})") from None
        start = sp + 1
        if start + nbytes > size:
            raise ValueError(f"{path}: truncated: vector {k + 1} of {n} (word {word!r}) needs "
                             f"{nbytes} bytes from byte {start} but the file ends at byte {size}")
        vec = np.frombuffer(data, dtype="<f4", count=d, offset=start).astype(datatype)
        kv.add_vector(word, vec)
        pos = start + nbytes
    kv._trim()
    return kv
