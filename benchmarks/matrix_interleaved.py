"""The benchmark matrix's ratios measured interleaved: fastnet's default backend against JAX.

``bench_matrix.py`` (pytest-benchmark) times each method's rounds back to back, so a burst of
load on a shared machine can fall on one method's rounds and not on the other's.  Here,
for each cell, the two alternate round by round (the order swapped every round), and the
ratio is that of the two medians: a check of the matrix's ratios, not a replacement for
its table.  (On the shared 2-core VMs here, epochs that use both cores have spells of a
second or so, often after the process was idle, in which they take up to 2.3x their time:
measured on the standardised 784-256-128-10 net at batch 32, 235 ms against 100 ms on the
threads while one thread stayed at 175 ms.  Interleaving spreads such spells over both
methods instead of letting them fall on one method's rounds.)  JAX is the best peer of almost every cell; PyTorch is left out because its
OpenMP threads keep spinning after it runs and slow whatever follows in the process (see
``conftest.py``).

Usage (from the repository root; ``--rounds`` per method and cell, ``-k`` a substring of
the cell's name, e.g. ``standardised-r128``)::

    python benchmarks/matrix_interleaved.py [--rounds 9] [-k SUBSTRING] [--against numba]

``--against numba`` (with ``FASTNET_BACKEND=cython``) checks the two compiled backends
against each other the same way.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fastnet  # noqa: E402
import bench_matrix as bm  # noqa: E402
from _helpers import load_mnist_split  # noqa: E402

IDS = {"784-50-10 sigmoid": "s50", "784-128-10 relu": "r128", "784-256-128-10 tanh": "t256"}


def _cell(data, inp, net, batch, rounds, other=None):
    sizes, act = bm.NETS[net]
    X, Y = data[inp], data["Y"]
    order = data["order"][:bm.M_ONLINE] if batch == 1 else data["order"]
    own = np.arange(bm.M, dtype=np.int64) if batch == bm.M else order
    backend = fastnet.get_backend()
    f_fn, f_setup, _, path = bm._fastnet(backend, X, Y, own, sizes, act, batch)
    if other is None:
        j_fn, j_setup, _ = bm._jax(X, Y, order, sizes, act, batch)
    else:  # the other compiled backend in JAX's place
        j_fn, j_setup, _, _ = bm._fastnet(other, X, Y, own, sizes, act, batch)
    times = {"fastnet": [], "jax": []}
    methods = [("fastnet", f_fn, f_setup), ("jax", j_fn, j_setup)]
    for _, fn, setup in methods:  # warm-up: compilation, caches
        if setup:
            setup()
        fn()
    for r in range(rounds):
        for name, fn, setup in (methods if r % 2 == 0 else methods[::-1]):
            if setup:
                setup()
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    fm, jm = np.median(times["fastnet"]), np.median(times["jax"])
    return fm, jm, path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("-k", default="")
    ap.add_argument("--against", default=None, metavar="BACKEND",
                    help="time this fastnet backend (e.g. numba) in JAX's place")
    args = ap.parse_args(argv)
    mnist = load_mnist_split()
    if mnist is None:
        sys.exit("MNIST not found: set FASTNET_DATA to the directory holding mnist/")
    data = bm.matrix_arrays(mnist)
    print(f"fastnet {fastnet.__version__}, default backend {fastnet.get_backend()}, "
          f"FASTNET_SIMD={os.environ.get('FASTNET_SIMD', '')!r}, "
          f"NUMBA_CPU_NAME={os.environ.get('NUMBA_CPU_NAME', 'host')!r}, "
          f"{args.rounds} interleaved rounds each\n")
    peer = args.against or "JAX"
    print(f"| cell | fastnet | {peer} | fastnet vs {peer} | path |")
    print("|---|---|---|---|---|")
    for inp in bm.INPUTS:
        for net in bm.NETS:
            for batch in bm.BATCHES:
                name = f"{inp}-{IDS[net]}-b{batch}"
                if args.k not in name:
                    continue
                fm, jm, path = _cell(data, inp, net, batch, args.rounds, args.against)
                print(f"| {name} | {fm * 1e3:.1f} ms | {jm * 1e3:.1f} ms | {jm / fm:.2f}x | "
                      f"{path} |", flush=True)


if __name__ == "__main__":
    main()
