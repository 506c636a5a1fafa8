"""The measurements behind ``fastnet._paths.SPARSE_MAX_DENSITY``: each compiled backend's
``train_epoch`` on raw MNIST (float32, the first 8,000 t10k images; 2,000 samples online) on
the dense and on the sparse path, in alternation, for the matrix's three networks.

Prints the median of six epochs per path and their ratio (sparse/dense: below 1, the sparse
path is the faster).  Run one at a time (``flock /tmp/fastnet-bench.lock``)::

    python benchmarks/path_choice.py cython 1,32,128
    python benchmarks/path_choice.py numba 1,32,128
"""
import os
import sys
import time

import numpy as np

import fastnet
from fastnet import _backend, _paths

NETS = {"784-50-10 sigmoid": ([784, 50, 10], 1), "784-128-10 relu": ([784, 128, 10], 2),
        "784-256-128-10 tanh": ([784, 256, 128, 10], 3)}


def main(backend="cython", batches="1,32,128"):
    root = os.path.join(os.environ.get("FASTNET_DATA", os.path.join(
        os.path.dirname(__file__), "..", "..", "shared", "data")), "mnist")
    X, y = fastnet.load_mnist(os.path.join(root, "t10k-images-idx3-ubyte.gz"),
                              os.path.join(root, "t10k-labels-idx1-ubyte.gz"))
    X = np.ascontiguousarray(X[:8000], dtype=np.float32) / np.float32(255)
    Y = np.eye(10, dtype=np.float32)[np.asarray(y[:8000], np.int64)]
    K = _backend.backend_kernels(backend)
    rng = np.random.default_rng(0)
    print(f"density {_paths.sample_density(X):.3f}")
    for net, (sizes, act) in NETS.items():
        sizes = np.array(sizes, np.int64)
        kinds = np.array([act] * (len(sizes) - 2) + [1], np.int64)
        n = int(sum((sizes[:-1] + 1) * sizes[1:]))
        P0 = (rng.standard_normal(n) * 0.05).astype(np.float32)
        frac = _paths.work_fraction(_paths.sample_density(X), sizes)
        for bs in (int(b) for b in batches.split(",")):
            order = rng.permutation(8000)[:2000 if bs == 1 else 8000].astype(np.int64)
            times = {"dense": [], "sparse": []}
            for _ in range(7):  # the first of each is not counted
                for path in times:
                    P, S = P0.copy(), np.zeros(2 * n, np.float32)
                    with _paths.use_path(path):
                        t0 = time.perf_counter()
                        K.train_epoch(P, sizes, kinds, 0, X, Y, order, bs, 0, 0.01, 0.9, 0.9,
                                      1e-8, 0, 0.0, S, 0)
                        times[path].append(time.perf_counter() - t0)
            d, s = (np.median(times[p][1:]) * 1e3 for p in ("dense", "sparse"))
            print(f"{backend} {net:20s} work fraction {frac:.2f} batch {bs:<4d} dense {d:7.1f} ms"
                  f"  sparse {s:7.1f} ms  sparse/dense {s / d:5.2f}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
