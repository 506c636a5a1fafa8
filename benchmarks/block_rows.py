"""Full-batch epochs against the rows per block of the dense path's work buffers.

Cython: ``_DENSE_ROWS`` of the mlp module (each thread's chunk of the batch is done in blocks
of at most that many rows, the gradients accumulated by the GEMMs).  The values alternate
epoch by epoch in one process (standardised MNIST, 8,000 samples, the matrix's nets);
prints the median of ten epochs per value.  Run one at a time
(``flock /tmp/fastnet-bench.lock``), from the repository root::

    python benchmarks/block_rows.py [rows=4096,1024,512,256,128] [input=standardised]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_matrix as bm  # noqa: E402
from _helpers import load_mnist_split, settled_epoch  # noqa: E402
from fastnet._cython import _variants  # noqa: E402


def main(rows="4096,1024,512,256,128", inp="standardised", rounds=10):
    mnist = load_mnist_split()
    if mnist is None:
        sys.exit("MNIST not found: set FASTNET_DATA to the directory holding mnist/")
    mlp = _variants.load("mlp")
    default = mlp._DENSE_ROWS
    data = bm.matrix_arrays(mnist)
    values = [int(r) for r in rows.split(",")]
    own = np.arange(bm.M, dtype=np.int64)
    print(f"{inp} MNIST, full batch of {bm.M}, medians of {rounds} epochs (ms); "
          f"default rows per block {default}")
    print("| network | " + " | ".join(f"{r} rows" for r in values) + " |")
    print("|---|" + "---|" * len(values))
    for net, (sizes, act) in bm.NETS.items():
        f_fn, f_setup, _, _ = bm._fastnet("cython", data[inp], data["Y"], own, sizes, act, bm.M)
        times = {r: [] for r in values}
        try:
            for rep in range(rounds):
                for r in (values if rep % 2 == 0 else values[::-1]):
                    mlp._DENSE_ROWS = r
                    mlp._plans.clear()
                    times[r].append(settled_epoch(f_fn, f_setup))
        finally:
            mlp._DENSE_ROWS = default
            mlp._plans.clear()
        print(f"| {net} | " + " | ".join(f"{np.median(v) * 1e3:.1f}" for v in times.values())
              + " |", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
