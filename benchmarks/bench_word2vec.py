"""Word2vec benchmarks (pytest-benchmark): fastnet's backends side by side with gensim 4.

Run::

    python -m pytest benchmarks/bench_word2vec.py --benchmark-only \
        --benchmark-columns=median,min,rounds --benchmark-group-by=group

Groups
------
``word2vec-kernel-sg`` / ``word2vec-kernel-cbow``
    One job (about 2,000 words of gensim's ``head500.noblanks.cor``) through the
    ``w2v_sg_batch`` / ``w2v_cbow_batch`` kernel of every backend, the numpy
    reference included (same inputs, same random draws).
``word2vec-train-sg`` / ``word2vec-train-cbow``
    One epoch of ``train()`` on the whole ``head500.noblanks.cor`` (331k
    tokens) with the issue's settings (negative=5, window=5, vector_size=100,
    min_count=5, sample=1e-3, alpha=0.025), ``workers=2``: gensim 4
    (``corpus_file`` mode, its fastest) against fastnet's numba and cython
    backends.  ``extra_info`` holds the effective words per second.

The vocabulary is built once per participant, outside the timings; a warm-up
round loads (or compiles) the kernels.  Peers that are not installed are
skipped with a note.  The full table of ``BENCHMARKS.md`` (Gutenberg corpus,
quality, memory, workers 1 and 2) comes from ``benchmarks/word2vec_compare.py``.
"""
import os

import numpy as np
import pytest

import fastnet
from fastnet import _backend
from fastnet.reference import word2vec_kernels as R

SETTINGS = dict(vector_size=100, window=5, min_count=5, sample=1e-3, negative=5, alpha=0.025)
BACKENDS = [b for b in ("numba", "cython") if b in fastnet.available_backends()]


def _head500():
    try:
        import gensim
    except ImportError:
        pytest.skip("gensim is not installed: its bundled head500.noblanks.cor is the corpus "
                    "(pip install gensim)")
    path = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data",
                        "head500.noblanks.cor")
    if not os.path.exists(path):
        pytest.skip(f"{path} missing from the gensim installation")
    return path


@pytest.fixture(scope="module")
def corpus():
    return _head500()


@pytest.fixture(scope="module")
def kernel_job(corpus):
    """The first ~2,000 vocabulary words of head500, encoded, and fresh model arrays."""
    m = fastnet.Word2Vec(**SETTINGS)
    m.build_vocab(corpus_file=corpus)
    enc = m._encode(*m._corpus(None, corpus, {}, "bench"))
    end = int(np.searchsorted(enc.offsets, 2000))
    return m, enc, max(end, 1)


def _kernel_args(m, enc, end):
    syn0 = m.wv.vectors.copy()
    syn1 = np.zeros_like(syn0)
    return (syn0, syn1, enc.words, enc.offsets, 0, end, m.wv.expandos["sample_int"], m.cum_table,
            m._guide, m.negative, m.window, True)


@pytest.mark.parametrize("kind", ["sg", "cbow"])
@pytest.mark.parametrize("backend", ["reference"] + BACKENDS)
def test_kernel(benchmark, kernel_job, backend, kind):
    benchmark.group = f"word2vec-kernel-{kind}"
    m, enc, end = kernel_job
    k = _backend.backend_kernels(backend)
    args = _kernel_args(m, enc, end)
    if kind == "sg":
        run = lambda: k.w2v_sg_batch(*args, 0.025, 0.025, 1, False, False)  # noqa: E731
    else:
        run = lambda: k.w2v_cbow_batch(*args, 1, 0.025, 0.025, 1, False, False)  # noqa: E731
    run()  # warm-up: compile / load the kernel
    rounds = 2 if backend == "reference" else 10
    _, effective, _ = benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=0)
    benchmark.extra_info["effective_words"] = effective


@pytest.mark.parametrize("sg", [1, 0], ids=["sg", "cbow"])
@pytest.mark.parametrize("impl", ["gensim"] + BACKENDS)
def test_train_epoch(benchmark, corpus, impl, sg):
    benchmark.group = "word2vec-train-" + ("sg" if sg else "cbow")
    if impl == "gensim":
        gensim = pytest.importorskip("gensim", reason="gensim not installed: peer skipped")
        model = gensim.models.Word2Vec(**SETTINGS, sg=sg, workers=2, epochs=1, seed=1)
        model.build_vocab(corpus_file=corpus)

        def run():
            return model.train(corpus_file=corpus, total_words=model.corpus_total_words,
                               total_examples=model.corpus_count, epochs=1)
    else:
        with fastnet.use_backend(impl):
            model = fastnet.Word2Vec(**SETTINGS, sg=sg, workers=2, epochs=1, seed=1)
            model.build_vocab(corpus_file=corpus)

        def run():
            with fastnet.use_backend(impl):
                return model.train(corpus_file=corpus, epochs=1)
    effective, raw = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["effective_words"] = effective
    benchmark.extra_info["effective_words_per_s"] = effective / benchmark.stats.stats.median
