"""The ceiling of the benchmark matrix's full-batch cells: numpy doing only the GEMMs of a
full-batch epoch (8,000 rows of MNIST; the forward products, the weight gradients and the
error terms below the first layer; no activation, loss or step), on BLAS's threads, against
numpy's 2048 x 2048 product; with ``--jax``, each net's first-layer GEMMs in numpy and in a
jitted JAX product.

Usage (one at a time, ``flock /tmp/fastnet-bench.lock``)::

    python benchmarks/full_batch_ceiling.py [--jax]
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_matrix as bm  # noqa: E402
from _helpers import load_mnist_split  # noqa: E402


def _median(f, rounds=15):
    f()
    ts = []
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main(with_jax=False):
    data = load_mnist_split()
    if data is None:
        sys.exit("MNIST not found: set FASTNET_DATA to the directory holding mnist/")
    X = np.ascontiguousarray(bm.matrix_arrays(data)["standardised"])
    m = X.shape[0]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 2048)).astype(np.float32)
    t = _median(lambda: a @ a, 7)
    print(f"numpy sgemm 2048 x 2048: {2 * 2048 ** 3 / t / 1e9:.0f} GFLOP/s")
    for net, (sizes, _) in bm.NETS.items():
        L = len(sizes) - 1
        Ws = [rng.standard_normal((sizes[l], sizes[l + 1])).astype(np.float32) for l in range(L)]
        As = [X] + [rng.standard_normal((m, s)).astype(np.float32) for s in sizes[1:]]
        Ds = [rng.standard_normal((m, s)).astype(np.float32) for s in sizes[1:]]
        Z = [np.empty((m, s), np.float32) for s in sizes[1:]]
        G = [np.empty_like(W) for W in Ws]
        low = [np.empty((m, s), np.float32) for s in sizes[:-1]]

        def epoch():
            for l in range(L):
                np.dot(As[l], Ws[l], out=Z[l])
            for l in range(L - 1, -1, -1):
                np.dot(As[l].T, Ds[l], out=G[l])
                if l > 0:
                    np.dot(Ds[l], Ws[l].T, out=low[l])
        prods = [sizes[l] * sizes[l + 1] for l in range(L)]
        flops = 2 * m * (2 * sum(prods) + sum(prods[1:]))
        t = _median(epoch)
        print(f"{net}: the GEMMs alone {t * 1e3:.1f} ms, {flops / t / 1e9:.0f} GFLOP/s")
        if with_jax:
            import jax
            n = sizes[1]
            W, D = Ws[0], Ds[0]
            fz = jax.jit(lambda x, w: x @ w)
            fg = jax.jit(lambda x, d: x.T @ d)
            Xj, Wj, Dj = jax.numpy.asarray(X), jax.numpy.asarray(W), jax.numpy.asarray(D)
            out, gout = np.empty((m, n), np.float32), np.empty_like(W)
            fl = 2 * m * X.shape[1] * n / 1e9
            print(f"  {m}x{X.shape[1]}x{n}: forward numpy "
                  f"{fl / _median(lambda: np.dot(X, W, out=out)):.0f}, JAX "
                  f"{fl / _median(lambda: fz(Xj, Wj).block_until_ready()):.0f} GFLOP/s; "
                  f"weight gradient numpy {fl / _median(lambda: np.dot(X.T, D, out=gout)):.0f}, "
                  f"JAX {fl / _median(lambda: fg(Xj, Dj).block_until_ready()):.0f}")


if __name__ == "__main__":
    main("--jax" in sys.argv[1:])
