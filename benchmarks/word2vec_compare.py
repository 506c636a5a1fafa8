"""fastnet.Word2Vec vs gensim 4 on the same corpus and settings, back to back: the BENCHMARKS table.

Each run is a fresh subprocess (so its peak memory is its own); for every
configuration (sg, workers) gensim and each fastnet backend run one after
the other, ``--rounds`` times (round ``r`` uses ``seed + r``; the order
alternates), and the table reports the median of each and the median of
the ratios fastnet / gensim of effective words per second *measured in the
same round* (the machine is shared: absolute numbers drift, ratios in one run
are what to quote).  Effective words per CPU-second (user + system time of
the training process) is reported too: it does not depend on how many cores
other processes leave free.

Usage::

    python benchmarks/word2vec_compare.py                       # Gutenberg + head500, full table
    python benchmarks/word2vec_compare.py --corpus head500 --rounds 1 --sg 1 --workers 2
    python benchmarks/word2vec_compare.py --markdown            # print the markdown table

Settings (the issue's): negative=5, window=5, vector_size=100, min_count=5,
sample=1e-3, epochs=5, alpha=0.025.  gensim reads ``corpus_file`` (its
fastest mode, C++ reader; ``--gensim-mode iter`` uses ``LineSentence``);
fastnet reads the same file.  Quality (Gutenberg only): analogy accuracy on
gensim's ``questions-words.txt`` (restrict_vocab=300000), Spearman on
``wordsim353.tsv`` and ``simlex999.txt``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

SETTINGS = dict(vector_size=100, window=5, min_count=5, sample=1e-3, negative=5, alpha=0.025,
                epochs=5)


def gensim_data(name):
    import gensim
    return os.path.join(os.path.dirname(gensim.__file__), "test", "test_data", name)


def corpus_path(name):
    if name == "gutenberg":
        root = os.environ.get("FASTNET_DATA") or os.path.join(os.path.dirname(REPO), "shared",
                                                              "data")
        return os.path.join(root, "corpus", "gutenberg_mix.txt")
    if name == "head500":
        return gensim_data("head500.noblanks.cor")
    return name


# ------------------------------------------------------------------ one run (in a subprocess)
def run_one(impl, corpus, sg, workers, seed, evaluate, gensim_mode):
    """Build the vocabulary, then train; "train" is the wall time of the ``train()`` call
    (fastnet's includes mapping the corpus to vocabulary ids; gensim's its reading)."""
    import resource
    kw = dict(SETTINGS, sg=sg, workers=workers, seed=seed)
    if impl == "gensim":
        from gensim.models import Word2Vec
        from gensim.models.word2vec import LineSentence
        data = dict(corpus_file=corpus) if gensim_mode == "file" else \
            dict(corpus_iterable=LineSentence(corpus))
    else:
        sys.path.insert(0, REPO)
        import fastnet
        fastnet.use_backend(impl)
        from fastnet import Word2Vec
        data = dict(corpus_file=corpus)
        warm_up()   # load (or compile) the kernels outside the timings
    t0 = time.perf_counter()
    model = Word2Vec(**kw)
    model.build_vocab(**data)
    t1 = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    c1 = ru.ru_utime + ru.ru_stime
    eff_words, raw_words = model.train(**data, total_examples=model.corpus_count,
                                       total_words=model.corpus_total_words, epochs=model.epochs)
    t2 = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out = {"impl": impl, "sg": sg, "workers": workers, "train_time": t2 - t1, "wall": t2 - t0,
           "cpu_time": ru.ru_utime + ru.ru_stime - c1,
           "raw_words": raw_words, "effective_words": eff_words, "vocab": len(model.wv),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if evaluate:
        wv = model.wv
        out["analogy"] = wv.evaluate_word_analogies(gensim_data("questions-words.txt"))[0]
        out["ws353"] = wv.evaluate_word_pairs(gensim_data("wordsim353.tsv"))[1][0]
        out["simlex"] = wv.evaluate_word_pairs(gensim_data("simlex999.txt"))[1][0]
    return out


def warm_up():
    import numpy as np
    from fastnet import _backend
    from fastnet.reference import word2vec_kernels as R
    k = _backend.kernels()
    cum = R.make_cum_table([3, 2, 1])
    args = (np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float32),
            np.array([0, 1, 2], np.int32), np.array([0, 3], np.int64), 0, 1,
            R.sample_ints([3, 2, 1], 0), cum, R.make_guide(cum), 2, 2, True)
    k.w2v_sg_batch(*args, 0.01, 0.01, 1, False, False)
    k.w2v_cbow_batch(*args, 1, 0.01, 0.01, 1, False, False)


def spawn(impl, corpus, sg, workers, seed, evaluate, gensim_mode):
    cmd = [sys.executable, os.path.abspath(__file__), "--_one", json.dumps(
        [impl, corpus, sg, workers, seed, evaluate, gensim_mode])]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if res.returncode != 0:
        raise RuntimeError(f"{impl} run failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the table
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", nargs="+", default=["gutenberg", "head500"],
                    help="gutenberg, head500 or a path")
    ap.add_argument("--sg", type=int, nargs="+", default=[1, 0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--backends", nargs="+", default=["numba", "cython"])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gensim-mode", choices=["file", "iter"], default="file")
    ap.add_argument("--no-eval", action="store_true", help="skip the quality evaluation")
    ap.add_argument("--json", help="also write all runs to this JSON file")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    ap.add_argument("--_one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._one:
        print(json.dumps(run_one(*json.loads(args._one))))
        return

    runs = []
    for cname in args.corpus:
        corpus = corpus_path(cname)
        if not os.path.exists(corpus):
            print(f"skipping {cname}: {corpus} not found", file=sys.stderr)
            continue
        evaluate = cname == "gutenberg" and not args.no_eval
        for sg in args.sg:
            for workers in args.workers:
                for rnd in range(args.rounds):
                    impls = ["gensim"] + list(args.backends)
                    if rnd % 2:
                        impls = impls[::-1]
                    for impl in impls:
                        r = spawn(impl, corpus, sg, workers, args.seed + rnd, evaluate,
                                  args.gensim_mode)
                        r.update(corpus=cname, round=rnd)
                        runs.append(r)
                        q = (f"  analogy {r['analogy']:.4f} ws353 {r['ws353']:.4f} "
                             f"simlex {r['simlex']:.4f}" if evaluate else "")
                        print(f"{cname:9s} sg={sg} workers={workers} round {rnd} {impl:7s} "
                              f"{r['effective_words'] / r['train_time']:>10,.0f} eff words/s  "
                              f"{r['effective_words'] / r['cpu_time']:>10,.0f} per CPU-s  "
                              f"train {r['train_time']:6.1f}s wall {r['wall']:6.1f}s  "
                              f"peak {r['peak_rss_mb']:6.0f} MB{q}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(runs, fh, indent=1)
    print()
    print(table(runs, args.backends, args.gensim_mode))


def table(runs, backends, gensim_mode="file"):
    lines = []
    lines.append("| corpus | sg | workers | implementation | effective words/s | raw words/s | "
                 "x gensim | eff. words / CPU-s | x gensim (CPU) | train s | wall s | peak MB | "
                 "analogy | WS353 | SimLex |")
    lines.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = sorted({(r["corpus"], r["sg"], r["workers"]) for r in runs},
                  key=lambda k: (k[0] != "gutenberg", -k[1], k[2]))
    for corpus, sg, workers in keys:
        sel = [r for r in runs if (r["corpus"], r["sg"], r["workers"]) == (corpus, sg, workers)]
        by_round = {}
        for r in sel:
            by_round.setdefault(r["round"], {})[r["impl"]] = r
        for impl in ["gensim"] + list(backends):
            rs = [r for r in sel if r["impl"] == impl]
            if not rs:
                continue
            med = lambda key: statistics.median(r[key] for r in rs)  # noqa: E731
            eff = statistics.median(r["effective_words"] / r["train_time"] for r in rs)
            raw = statistics.median(r["raw_words"] / r["train_time"] for r in rs)
            ratios = [rd[impl]["effective_words"] / rd[impl]["train_time"] /
                      (rd["gensim"]["effective_words"] / rd["gensim"]["train_time"])
                      for rd in by_round.values() if impl in rd and "gensim" in rd]
            ratio = f"{statistics.median(ratios):.2f}" if impl != "gensim" and ratios else "1"
            cpu = statistics.median(r["effective_words"] / r["cpu_time"] for r in rs)
            cratios = [rd[impl]["effective_words"] / rd[impl]["cpu_time"] /
                       (rd["gensim"]["effective_words"] / rd["gensim"]["cpu_time"])
                       for rd in by_round.values() if impl in rd and "gensim" in rd]
            cratio = f"{statistics.median(cratios):.2f}" if impl != "gensim" and cratios else "1"
            q = ["", "", ""]
            if "analogy" in rs[0]:
                q = [f"{100 * med('analogy'):.1f} %", f"{med('ws353'):.3f}",
                     f"{med('simlex'):.3f}"]
            name = f"gensim 4.4 ({gensim_mode})" if impl == "gensim" else f"fastnet {impl}"
            lines.append(f"| {corpus} | {sg} | {workers} | {name} | {eff:,.0f} | {raw:,.0f} | "
                         f"{ratio} | {cpu:,.0f} | {cratio} | {med('train_time'):.1f} | "
                         f"{med('wall'):.1f} | "
                         f"{med('peak_rss_mb'):.0f} | {q[0]} | {q[1]} | {q[2]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
