"""Word embeddings: skip-gram and CBOW with negative sampling (gensim 4's API, compiled kernels).

* :class:`Word2Vec` -- the model (``fastnet.Word2Vec``);
* :class:`KeyedVectors` -- the word vectors (``model.wv``; ``fastnet.KeyedVectors``);
* :class:`LineSentence` -- a corpus file streamed as token lists.

The training kernels (``w2v_sg_batch``, ``w2v_cbow_batch``) run on the active
backend; their contract is :mod:`fastnet.reference.word2vec_kernels`.
"""
from fastnet.word2vec.keyedvectors import KeyedVectors
from fastnet.word2vec.model import Word2Vec, MAX_WORDS_IN_BATCH
from fastnet.word2vec._corpus import LineSentence, MAX_SENTENCE_LENGTH
from fastnet.word2vec._vocab import RULE_DEFAULT, RULE_DISCARD, RULE_KEEP

__all__ = ["Word2Vec", "KeyedVectors", "LineSentence", "MAX_WORDS_IN_BATCH",
           "MAX_SENTENCE_LENGTH", "RULE_DEFAULT", "RULE_DISCARD", "RULE_KEEP"]
