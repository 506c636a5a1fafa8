"""What the reliability checks of word2vec training cost (pytest-benchmark).

Run::

    python -m pytest benchmarks/bench_corpus_cache.py --benchmark-only \
        --benchmark-columns=median,min,rounds --benchmark-group-by=group

Groups
------
``word2vec-corpus-pass``
    ``build_vocab``'s pass over the Gutenberg corpus held as a list of token
    lists (114,627 sentences, 3.75M tokens), with and without the content
    fingerprint that lets ``train`` reuse its encoding safely.
``word2vec-corpus-reuse``
    What ``train`` does with a list it has seen before: check the fingerprint
    and re-encode from ``build_vocab``'s pass (the cache), against encoding
    the list again from scratch (no cache).
``word2vec-epoch-snapshot``
    Copying ``wv.vectors`` and ``syn1neg`` before an epoch (what a diverging
    epoch is undone from), for the Gutenberg vocabulary at ``min_count=5``
    and ``vector_size=100``; compare with the seconds of one epoch in
    ``BENCHMARKS.md``.

The corpus comes from ``$FASTNET_DATA/corpus/gutenberg_mix.txt``; the
benchmarks skip when it is absent.
"""
import numpy as np
import pytest

from fastnet.word2vec import _corpus
from _helpers import data_root, run


@pytest.fixture(scope="module")
def sentences():
    path = data_root() / "corpus" / "gutenberg_mix.txt"
    if not path.exists():
        pytest.skip(f"corpus not found at {path} (set FASTNET_DATA to the directory holding "
                    f"corpus/)")
    with open(path, encoding="utf-8") as fh:
        return [line.split() for line in fh]


@pytest.fixture(scope="module")
def vocab(sentences):
    scan = _corpus.scan_corpus(sentences)
    scan.fingerprint = _corpus.fingerprint(sentences)
    kept = [w for w, c in zip(scan.words, scan.counts.tolist()) if c >= 5]
    return scan, {w: i for i, w in enumerate(kept)}


@pytest.mark.benchmark(group="word2vec-corpus-pass")
@pytest.mark.parametrize("method", ["scan", "scan+fingerprint"])
def test_corpus_pass(benchmark, sentences, method):
    def scan():
        s = _corpus.scan_corpus(sentences)
        if method != "scan":
            s.fingerprint = _corpus.fingerprint(sentences)
        return s

    run(benchmark, scan, rounds=5, method=method)


@pytest.mark.benchmark(group="word2vec-corpus-reuse")
@pytest.mark.parametrize("method", ["fingerprint-check+encode-from-scan", "encode-again"])
def test_corpus_reuse(benchmark, sentences, vocab, method):
    scan, key_to_index = vocab

    def reuse():
        assert _corpus.fingerprint(sentences) == scan.fingerprint
        return _corpus.encode_from_scan(scan, key_to_index)

    def again():
        return _corpus.encode_corpus(sentences, key_to_index)

    run(benchmark, reuse if method.startswith("fingerprint") else again, rounds=5,
        method=method)


@pytest.mark.benchmark(group="word2vec-epoch-snapshot")
def test_epoch_snapshot(benchmark, vocab):
    V = len(vocab[1])
    rng = np.random.default_rng(0)
    vectors = rng.random((V, 100), dtype=np.float32)
    syn1neg = rng.random((V, 100), dtype=np.float32)
    saved = (np.empty_like(vectors), np.empty_like(syn1neg))

    def snapshot():
        np.copyto(saved[0], vectors)
        np.copyto(saved[1], syn1neg)

    run(benchmark, snapshot, rounds=20, method=f"copy 2 x {V} x 100 float32")
