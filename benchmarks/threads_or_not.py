"""The Cython backend's small dense batches on the threads, on one thread, and as its
threads-or-not measurement chooses (``src_cython/_mlp_threads.pxi``, ``probe_picks_threads``).

For each of the matrix's cells at the given batch size (raw and standardised MNIST, the three
nets), epochs alternate round by round between the three modes and a JAX epoch; each mode's
epoch is preceded by an untimed one, so the measured mode has settled.  Prints the medians
(ms).  The measured mode should be as fast as the faster of the two forced ones.  Run one at
a time (``flock /tmp/fastnet-bench.lock``), from the repository root::

    python benchmarks/threads_or_not.py [batch=128] [rounds=8]
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_matrix as bm  # noqa: E402
from _helpers import load_mnist_split, settled_epoch  # noqa: E402
from fastnet._cython import _variants  # noqa: E402


def main(batch=128, rounds=8):
    mnist = load_mnist_split()
    if mnist is None:
        sys.exit("MNIST not found: set FASTNET_DATA to the directory holding mnist/")
    mlp = _variants.load("mlp")
    data = bm.matrix_arrays(mnist)
    modes = {"threads": True, "one thread": False, "measured": None}
    print(f"batch {batch}, {rounds} rounds; medians in ms")
    print("| input | network | " + " | ".join(modes) + " | JAX |")
    print("|---|---|" + "---|" * (len(modes) + 1))
    for inp in bm.INPUTS:
        for net, (sizes, act) in bm.NETS.items():
            X, Y, order = data[inp], data["Y"], data["order"]
            f_fn, f_setup, _, _ = bm._fastnet("cython", X, Y, order, sizes, act, batch)
            j_fn, j_setup, _ = bm._jax(X, Y, order, sizes, act, batch)
            times = {k: [] for k in list(modes) + ["JAX"]}
            try:
                for _ in range(rounds):
                    for name, small_batches in modes.items():
                        mlp._set_threading(small_batches=small_batches)
                        times[name].append(settled_epoch(f_fn, f_setup))
                    if j_setup:
                        j_setup()
                    t = time.perf_counter()
                    j_fn()
                    times["JAX"].append(time.perf_counter() - t)
            finally:
                mlp._set_threading(small_batches=None)
            print(f"| {inp} | {net} | " + " | ".join(
                f"{np.median(v) * 1e3:.1f}" for v in times.values()) + " |", flush=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
