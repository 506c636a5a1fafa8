"""Numba's threading layer as fastnet starts it (fastnet._numba._threading)."""
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numba")

# A fresh process: Numba starts its threads once per process.  Reads the OpenMP runtime's
# max-active-levels before and after fastnet's threaded numba kernels ran (the recurrent
# kernels' blocks of rows, a dense epoch cut in parts).
_SCRIPT = textwrap.dedent("""
    import ctypes, importlib, os
    import numpy as np
    import numba
    from fastnet._numba import _threading as T
    omp = T._omp_runtime()
    before = omp[0]() if omp else -1
    import fastnet
    from fastnet import _backend
    from fastnet._codes import Act, Cell, Optimizer
    K = _backend.backend_kernels("numba")
    rng = np.random.default_rng(0)
    V, H, B = 5, 16, int(os.environ["B"])
    sizes = np.array([V, H, V], np.int64)
    from fastnet.estimators._rnn import init_network
    p = init_network(Cell.LSTM, sizes, rng, np.float64)
    toks = rng.integers(0, V, (B, 30)).astype(np.int64)
    K.rnn_lm_epoch(int(Cell.LSTM), int(Act.TANH), p, sizes, toks, 10, np.zeros(B * H),
                   np.zeros(B * H), int(Optimizer.ADAM), 1e-3, 0.9, 0.999, 1e-8, 5.0,
                   np.zeros(2 * p.size), 0)
    after = omp[0]() if omp else -1
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "none"
    print(layer, before, after)
""")


@pytest.mark.parametrize("batch", [4, 32], ids=["one-block", "two-blocks"])
def test_numba_openmp_layer_leaves_nesting_as_it_was(batch):
    """Numba's OpenMP layer turns on nested parallelism when it starts its threads (it
    slowed PyTorch 1.5x in the same process); fastnet sets it back, whether its kernels
    then run on threads (two blocks of rows) or not (a batch too small to cut: the threads
    start anyway when Numba compiles a parallel function)."""
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         env={**os.environ, "FASTNET_NUM_THREADS": "2", "B": str(batch)},
                         timeout=600)
    assert out.returncode == 0, out.stderr
    layer, before, after = out.stdout.split()[-3:]
    if layer != "omp" or before == "-1":
        pytest.skip(f"Numba's threading layer here is {layer!r}, not GNU OpenMP")
    assert after == before, f"max-active-levels {before} before, {after} after"


def test_recurrent_kernels_on_threads_from_several_python_threads():
    """Four Python threads each running a numba LSTM epoch cut in blocks of rows (``prange``
    launched from each of them at once): every one gives the bits of a run alone."""
    import threading

    import numpy as np

    from fastnet import _backend
    from fastnet._codes import Act, Cell, Optimizer
    from fastnet.estimators._rnn import init_network
    K = _backend.backend_kernels("numba")
    V, H, B = 7, 24, 32
    sizes = np.array([V, H, V], np.int64)
    p0 = init_network(Cell.LSTM, sizes, np.random.default_rng(0), np.float64)
    toks = np.random.default_rng(1).integers(0, V, (B, 61)).astype(np.int64)

    def run():
        p, st = p0.copy(), np.zeros(2 * p0.size)
        tot = K.rnn_lm_epoch(int(Cell.LSTM), int(Act.TANH), p, sizes, toks, 20, np.zeros(B * H),
                             np.zeros(B * H), int(Optimizer.ADAM), 1e-3, 0.9, 0.999, 1e-8, 5.0,
                             st, 0)
        return tot, p

    want = run()
    got = [None] * 4

    def job(i):
        got[i] = run()
    threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for tot, p in got:
        assert tot == want[0]
        np.testing.assert_array_equal(p, want[1])
