"""Vocabulary rules shared with gensim: ``min_count``, ``trim_rule``, ``max_final_vocab``, sorting."""
from __future__ import annotations

import numpy as np

#: ``trim_rule`` return values (the same numbers as ``gensim.utils``).
RULE_DEFAULT = 0
RULE_DISCARD = 1
RULE_KEEP = 2


def keep_vocab_item(word, count, min_count, trim_rule=None):
    """Whether ``word`` seen ``count`` times stays in the vocabulary (gensim's rule)."""
    default = count >= min_count
    if trim_rule is None:
        return default
    rule = trim_rule(word, count, min_count)
    if rule == RULE_DISCARD:
        return False
    if rule == RULE_KEEP:
        return True
    return default


def effective_min_count(counts, min_count, max_final_vocab):
    """``min_count`` raised, if needed, so that at most ``max_final_vocab`` words remain."""
    if max_final_vocab is None or max_final_vocab >= counts.shape[0]:
        return min_count
    ordered = np.sort(counts)[::-1]
    return max(int(ordered[max_final_vocab]) + 1, min_count)


def select(words, counts, min_count, trim_rule=None):
    """Indices (into ``words``) of the retained words, in their given order."""
    if trim_rule is None:
        return np.flatnonzero(counts >= min_count)
    return np.asarray([i for i, (w, c) in enumerate(zip(words, counts.tolist()))
                       if keep_vocab_item(w, c, min_count, trim_rule)], dtype=np.int64)


def descending_order(counts):
    """gensim's ``sort_by_descending_frequency`` permutation: count descending, ties by
    later first appearance first."""
    idx = np.arange(counts.shape[0])
    return np.lexsort((-idx, -counts))
