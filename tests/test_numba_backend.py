"""Numba-specific properties of the ``numba`` backend.

The kernels' results are checked against the reference in
``test_kernels.py``; here: what is particular to the Numba implementation
(import cost, caching and its directory, the compile notice, threads and
BLAS threads, dtypes, the vectorisable ``exp``/``tanh``, the row kernels on
every width, argument checks of the kernel wrappers, divergence through the
public API).
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fastnet
from fastnet._params import n_params
from conftest import (PARTS_NETS, PARTS_NETS_DEEP, REPO, assert_close, assert_close_adam_f32,
                      kernels_of, parts_problem)

numba = pytest.importorskip("numba")
if "numba" not in fastnet.available_backends():  # pragma: no cover
    pytest.skip("the numba backend is not available", allow_module_level=True)

from fastnet._numba import (network as N, _blas, _cache, _dense, _elementwise, _gemm,  # noqa
                            _linear, _online, _optim, _rows, _sparse, _vmath, _compile_notice)

REF = kernels_of("reference")
NB = kernels_of("numba")
MODULES = [N, _dense, _elementwise, _gemm, _linear, _online, _optim, _rows, _sparse, _vmath]


def _net(rng, sizes, kinds, dtype, scale=0.3):
    sizes = np.asarray(sizes, dtype=np.int64)
    return ((rng.standard_normal(n_params(sizes)) * scale).astype(dtype), sizes,
            np.asarray(kinds, dtype=np.int64))


def _data(rng, m, n, K, dtype, zeros=0.7):
    X = rng.random((m, n))
    X[rng.random((m, n)) < zeros] = 0.0
    Y = np.zeros((m, K))
    Y[np.arange(m), rng.integers(0, K, m)] = 1
    return X.astype(dtype), Y.astype(dtype)


def _python(code, env=None):
    env = dict({k: v for k, v in os.environ.items() if k != "FASTNET_BACKEND"}, **(env or {}))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(REPO), timeout=600)
    assert out.returncode == 0, out.stderr
    return out


# ------------------------------------------------------------------ import cost
def test_import_fastnet_neither_imports_numba_nor_compiles():
    out = _python("import sys, fastnet; fastnet.available_backends(); "
                  "print('numba' in sys.modules, 'fastnet._numba.network' in sys.modules)")
    assert out.stdout.strip() == "False False"


def test_default_backend_is_compiled_and_loads_lazily():
    out = _python("import sys, fastnet; b = fastnet.get_backend(); "
                  "print(b, 'numba' in sys.modules)").stdout.split()
    assert out[0] in ("numba", "cython")
    assert out[1] == ("True" if out[0] == "numba" else out[1])


def _dispatchers():
    for mod in MODULES:
        for name in dir(mod):
            obj = getattr(mod, name)
            if isinstance(obj, numba.core.registry.CPUDispatcher) and \
                    obj.py_func.__module__ == mod.__name__:
                yield mod.__name__ + "." + name, obj


#: the kernels that run on Numba's threads (prange): dense batches of a few milliseconds,
#: too small to hand to fastnet's threads from Python one by one (measured at batch 128 on
#: MNIST, 2 cores: 1.15x to 1.25x faster than one thread; Python-dispatched threads were
#: 1.3x to 1.6x slower than one), and batches of up to 48 rows, their products in parts
PARALLEL = {"fastnet._numba._dense.train_epoch_blocks", "fastnet._numba._dense.train_epoch_parts",
            "fastnet._numba._linear.linear_gd_blocks"}


def test_every_kernel_is_cached_and_serial():
    found = list(_dispatchers())
    assert len(found) > 40
    assert PARALLEL <= {name for name, _ in found}
    for name, obj in found:
        assert bool(obj.targetoptions.get("parallel")) == (name in PARALLEL), name
        assert obj._cache is not None and type(obj._cache).__name__ != "NullCache", \
            f"{name} is not cache=True"
        assert obj.targetoptions.get("nogil"), f"{name} holds the GIL"
        fm = obj.targetoptions.get("fastmath")
        flags = set(getattr(fm, "flags", fm) or ())
        assert not flags & {"nnan", "ninf", "fast"}, f"{name} has fastmath {flags}"


# ----------------------------------------------------- cache directory, notice
_TINY = ("import numpy as np; from fastnet import _backend; K = _backend.backend_kernels('numba');"
         "A = np.full((3, 2), 0.5); print(K.loss(1, A, A * 0))")


def test_cache_goes_to_a_user_directory_when_the_package_is_read_only(tmp_path):
    """Not writable beside the sources: the cache goes to $XDG_CACHE_HOME/fastnet/numba, and
    a second process loads every kernel from it (no compilation, no notice)."""
    code = ("import fastnet._numba._cache as c; c._writable = lambda path: False; "
            "c.configure(); " + _TINY + "; print(c.CACHE_DIR)")
    env = {"XDG_CACHE_HOME": str(tmp_path), "NUMBA_CACHE_DIR": ""}
    first = _python(code, env)
    where = tmp_path / "fastnet" / "numba"
    assert first.stdout.split()[-1] == str(where)
    assert any(p.suffix == ".nbi" for p in where.rglob("*")), "no cache index written"
    assert _compile_notice.MESSAGE in first.stderr
    second = _python(code + "; from fastnet._numba import _elementwise as E; "
                     "print(sum(E.loss_sum.stats.cache_hits.values()))", env)
    assert _compile_notice.MESSAGE not in second.stderr
    assert second.stdout.split()[0] == "0.75"
    assert int(second.stdout.split()[-1]) >= 1  # loaded from the cache


def test_cache_stays_beside_the_sources_when_writable(monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert _cache.configure() == os.path.join(os.path.dirname(_cache.__file__), "__pycache__")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/else")
    assert _cache.configure() == "/somewhere/else"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert _cache.user_cache_dir() == os.path.join("/xdg", "fastnet", "numba")
    _cache.configure()


def test_compile_notice_is_printed_once_on_a_real_compilation(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    out = _python(_TINY + "; import numpy as np; K.loss(0, np.full((2, 2), 0.5, np.float32), "
                  "np.zeros((2, 2), np.float32))", env)
    assert out.stderr.count(_compile_notice.MESSAGE) == 1
    assert _compile_notice.MESSAGE not in _python(_TINY, env).stderr        # cached now
    quiet = _python(_TINY, {"NUMBA_CACHE_DIR": str(tmp_path / "q"), "FASTNET_QUIET": "1"})
    assert _compile_notice.MESSAGE not in quiet.stderr


# ------------------------------------------------------------------------ threads
@pytest.fixture
def threaded(monkeypatch):
    """Force the threaded paths on small problems, with two threads."""
    monkeypatch.setattr(N, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(N, "PARALLEL_MIN_BATCH", 1)
    monkeypatch.setattr(N, "THREAD_MIN_FLOPS", 0)
    monkeypatch.setenv("FASTNET_NUM_THREADS", "2")


@pytest.mark.parametrize("batch_size", [1500, 1100])
def test_threaded_dense_epoch_in_chunks_matches_reference(threaded, batch_size):
    """Large dense batches on the threads: one block per thread, each done in chunks of
    ``_dense.CHUNK`` rows whose gradients are summed (the full batch of 1,500: 750 rows a
    thread, two chunks each); the reference's epoch, and the same numbers on every call."""
    from fastnet._numba import _dense
    assert 1500 // 2 > _dense.CHUNK
    rng = np.random.default_rng(4)
    params, sizes, kinds = _net(rng, [30, 9, 4], [3, 1], np.float64)
    X, Y = _data(rng, 1500, 30, 4, np.float64)
    order = rng.permutation(1500).astype(np.int64)
    runs = []
    with fastnet.use_path("dense"):
        for K in (NB, NB, REF):
            p, s = params.copy(), np.zeros(2 * params.size)
            J = K.train_epoch(p, sizes, kinds, 0, X, Y, order, batch_size, 1, 0.1, 0.9, 0.9,
                              1e-8, 1, 0.01, s, 0)
            runs.append((J, p, s))
    (J1, p1, s1), (J2, p2, s2), (Jr, pr, sr) = runs
    assert J1 == J2 and np.array_equal(p1, p2) and np.array_equal(s1, s2)
    assert_close(J1, Jr)
    assert_close(p1, pr)
    assert_close(s1, sr)


@pytest.mark.parametrize("path", ["dense", "sparse"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_threaded_kernels_deterministic_and_match_reference(threaded, dtype, path):
    rng = np.random.default_rng(0)
    params, sizes, kinds = _net(rng, [40, 16, 5], [1, 1], dtype)
    X, Y = _data(rng, 203, 40, 5, dtype)
    jtol = 1e-10 if dtype == np.float64 else 1e-5  # losses are float64 sums of T values
    with fastnet.use_path(path):
        g1, g2, gr = (np.empty_like(params) for _ in range(3))
        J1 = NB.backprop_samples(params, sizes, kinds, 0, X, Y, g1)
        J2 = NB.backprop_samples(params, sizes, kinds, 0, X, Y, g2)
        Jr = REF.backprop_samples(params, sizes, kinds, 0, X, Y, gr)
        assert J1 == J2 and np.array_equal(g1, g2)
        assert_close(J1, Jr, rtol=jtol)
        assert_close(g1, gr)
        o1, o2, orf = (np.empty((203, 5), dtype) for _ in range(3))
        NB.forward_network(params, sizes, kinds, X, o1)
        NB.forward_network(params, sizes, kinds, X, o2)
        REF.forward_network(params, sizes, kinds, X, orf)
        assert np.array_equal(o1, o2)
        assert_close(o1, orf)
        order = rng.permutation(203).astype(np.int64)
        runs = []
        for K in (NB, NB, REF):  # two large batches, momentum, L2 (then below: mini-batches)
            p, s = params.copy(), np.zeros(2 * params.size, params.dtype)
            J = K.train_epoch(p, sizes, kinds, 0, X, Y, order, 120, 1, 0.1, 0.9, 0.9, 1e-8, 1,
                              0.01, s, 0)
            runs.append((J, p, s))
        for K in (NB, NB, REF):  # mini-batches of 16, Adam
            p, s = params.copy(), np.zeros(2 * params.size, params.dtype)
            J = K.train_epoch(p, sizes, kinds, 0, X, Y, order, 16, 3, 0.01, 0.9, 0.99, 1e-8, 0,
                              0.0, s, 5)
            runs.append((J, p, s))
    for a, b, c in (runs[:3], runs[3:]):
        assert a[0] == b[0] and np.array_equal(a[1], b[1])
        assert_close(a[0], c[0], rtol=jtol)
        assert_close(a[1], c[1], rtol=None if dtype == np.float64 else 1e-4)
        assert_close(a[2], c[2], rtol=None if dtype == np.float64 else 1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("batch_size,m", [(16, 203), (64, 130), (3000, 2500), (7, 9)])
@pytest.mark.parametrize("nb", [1, 2, 3])
@pytest.mark.parametrize("optimizer,penalty", [(0, 0), (1, 1), (4, 2)])
def test_dense_epoch_blocks_match_reference(dtype, batch_size, m, nb, optimizer, penalty):
    """The dense epoch whose batches are cut into ``nb`` blocks on Numba's threads: the
    reference's epoch (the blocks' gradients summed), the same numbers on every call, the
    one-block run and the serial kernel to rounding; covers a last batch smaller than
    ``nb`` (7 of 9: a batch of 2 in 3 blocks) and blocks above the chunk size."""
    from fastnet._numba import _dense
    rng = np.random.default_rng(batch_size + nb + 10 * optimizer)
    params, sizes, kinds = _net(rng, [23, 11, 6, 4], [2, 3, 1], dtype)
    X, Y = _data(rng, m, 23, 4, dtype)
    order = rng.permutation(m).astype(np.int64)
    args = (0, X, Y, order, batch_size, optimizer, 0.02, 0.9, 0.95, 1e-8, penalty, 0.01)
    runs = []
    for run in ("blocks", "blocks", "serial", "reference"):
        p, s = params.copy(), np.full(2 * params.size, 0.01, dtype)
        if run == "blocks":
            J = _dense.train_epoch_blocks(p, sizes, kinds, *args, s, 2, nb)
        elif run == "serial":
            J = _dense.train_epoch(p, sizes, kinds, *args, s, 2)
        else:
            J = REF.train_epoch(p, sizes, kinds, *args, s, 2)
        runs.append((J, p, s))
    (a, b, c, r) = runs
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    rtol = None if dtype == np.float64 else 1e-4
    for got in (a, c):
        assert_close(got[0], r[0], rtol=1e-10 if dtype == np.float64 else 1e-5)
        assert_close(got[1], r[1], rtol=rtol)
        assert_close(got[2], r[2], rtol=rtol)


def test_dense_batches_use_the_blocks_kernel_above_its_threshold(monkeypatch):
    """``train_epoch`` hands dense batches of at least BLOCKS_MIN_FLOPS and BLOCKS_MIN_ROWS a
    thread to the blocks kernel when Numba's threading layer allows, smaller ones to the
    serial one."""
    from fastnet._numba import _dense
    calls = []
    real = _dense.train_epoch_blocks
    monkeypatch.setattr(_dense, "train_epoch_blocks",
                        lambda *a: calls.append(a[-1]) or real(*a))
    monkeypatch.setenv("FASTNET_NUM_THREADS", "2")
    rng = np.random.default_rng(3)
    params, sizes, kinds = _net(rng, [30, 12, 4], [1, 1], np.float32)
    X, Y = _data(rng, 100, 30, 4, np.float32, zeros=0.0)
    order = np.arange(100, dtype=np.int64)
    state = np.zeros(2 * params.size, np.float32)
    with fastnet.use_path("dense"):
        monkeypatch.setattr(N, "BLOCKS_MIN_FLOPS", 1e18)
        NB.train_epoch(params, sizes, kinds, 0, X, Y, order, 20, 0, 0.1, 0.9, 0.9, 1e-8, 0, 0.0,
                       state, 0)
        assert calls == []
        monkeypatch.setattr(N, "BLOCKS_MIN_FLOPS", 0)
        NB.train_epoch(params, sizes, kinds, 0, X, Y, order, 20, 0, 0.1, 0.9, 0.9, 1e-8, 0, 0.0,
                       state, 0)
        assert calls == []  # 10 rows a thread: below BLOCKS_MIN_ROWS
        monkeypatch.setattr(N, "BLOCKS_MIN_ROWS", 10)
        NB.train_epoch(params, sizes, kinds, 0, X, Y, order, 20, 0, 0.1, 0.9, 0.9, 1e-8, 0, 0.0,
                       state, 0)
    assert calls == ([2] if N._parallel_ok() else [])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_gemm_on_parts_of_matrices_matches_numpy(dtype, ta, tb):
    """``gemm_rm`` on a block of a bigger matrix (offsets, leading dimensions), every
    transposition, ``beta`` 0 and 1; the entries outside the block are left alone."""
    rng = np.random.default_rng(ta + 2 * tb)
    m, n, k = 13, 21, 17
    A = rng.standard_normal((k, 40) if ta else (m, 40)).astype(dtype)
    B = rng.standard_normal((n, 50) if tb else (k, 50)).astype(dtype)
    a0, b0, c0 = 3, 5, 7
    opA = (A[:, a0:a0 + m].T if ta else A[:, a0:a0 + k])
    opB = (B[:, b0:b0 + k].T if tb else B[:, b0:b0 + n])
    fn = _gemm.gemm_address(dtype)
    codes = (_gemm.NOTRANS, _gemm.TRANS)
    for beta in (0.0, 1.0):
        C = rng.standard_normal((m, 30)).astype(dtype)
        want = C.copy()
        want[:, c0:c0 + n] = 0.5 * opA @ opB + beta * C[:, c0:c0 + n]
        _call_gemm(fn, codes[ta], codes[tb], m, n, k, 0.5, A, a0, 40, B, b0, 50, beta, C, c0,
                   30)
        assert_close(C, want, rtol=1e-12 if dtype == np.float64 else 1e-5)


@numba.njit
def _call_gemm(*args):
    _gemm.gemm_rm(*args)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@PARTS_NETS
@pytest.mark.parametrize("batch_size", [7, 32, 100])
@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("in_order", [False, True], ids=["shuffled", "in-order"])
def test_dense_epoch_parts_match_reference(dtype, net, batch_size, parts, in_order):
    """The dense epoch whose batches' products are cut in ``parts`` parts on Numba's threads:
    the reference's epoch, and the same numbers on every call."""
    params, sizes, kinds, loss, X, Y, order = parts_problem(net, dtype, batch_size + parts,
                                                           in_order)
    fn = _gemm.gemm_address(dtype)
    runs = []
    # plain SGD without L1 (opt 0, penalty none or L2) fuses its step into the products
    for opt, pen in ((1, 1), (3, 2), (0, 0), (0, 1), (0, 2)):
        args = (loss, X, Y, order, batch_size, opt, 0.05, 0.9, 0.9, 1e-8, pen, 0.01)
        for run in ("parts", "parts", "reference"):
            p, s = params.copy(), np.full(2 * params.size, 0.01, dtype)
            if run == "parts":
                J = _dense.train_epoch_parts(p, sizes, kinds, *args, s, 2, parts, fn, 0.0)
            else:
                J = REF.train_epoch(p, sizes, kinds, *args, s, 2)
            runs.append((J, p, s))
        a, b, r = runs[-3:]
        assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
        rtol = None if dtype == np.float64 else 1e-4
        assert_close(a[0], r[0], rtol=1e-10 if dtype == np.float64 else 1e-5)
        if opt == 3 and dtype == np.float32:    # Adam: see assert_close_adam_f32
            # (seen on Zen 2: one weight of 1,948 of the narrow net at batch 7, 0.0043 in
            # the reference against -0.0070 here)
            off = assert_close_adam_f32(a[1], r[1], 0.05, -(-X.shape[0] // batch_size))
            keep = ~np.concatenate([off, off])      # Adam's two moments of the other weights
            assert_close(a[2][keep], r[2][keep], rtol=rtol)
        else:
            assert_close(a[1], r[1], rtol=rtol)
            assert_close(a[2], r[2], rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("penalty", [0, 1], ids=["none", "L2"])
@pytest.mark.parametrize("parts", [1, 2])
def test_fused_sgd_step_of_the_parts_kernel_is_the_separate_step(dtype, penalty, parts):
    """Plain SGD's step fused into the parts kernel's weight-gradient products gives, to
    rounding, what the separate step gives: momentum with mu = 0 (the same numbers as SGD)."""
    params, sizes, kinds, loss, X, Y, order = parts_problem(PARTS_NETS_DEEP, dtype, 5, False)
    fn = _gemm.gemm_address(dtype)
    out = []
    for opt in (0, 1):
        p, s = params.copy(), np.zeros(2 * params.size, dtype)
        J = _dense.train_epoch_parts(p, sizes, kinds, loss, X, Y, order, 32, opt, 0.05, 0.0,
                                     0.9, 1e-8, penalty, 0.01, s, 0, parts, fn, 0.0)
        out.append((J, p))
    (J0, p0), (J1, p1) = out
    assert not np.array_equal(p0, params)
    assert_close(J0, J1, rtol=1e-12 if dtype == np.float64 else 1e-5)
    assert_close(p0, p1, rtol=1e-10 if dtype == np.float64 else 1e-5)


def test_small_dense_batches_use_the_parts_kernel(monkeypatch):
    """``train_epoch`` hands dense batches of up to PARTS_MAX_ROWS rows (PARTS_MAX_ROWS_WIDE
    for nets of PARTS_WIDE_WORK multiply-adds a sample) and at least PARTS_MIN_WORK
    multiply-adds to the parts kernel (one part per thread) when Numba's threading layer
    allows; bigger batches and one thread do not."""
    calls = []
    real = _dense.train_epoch_parts
    monkeypatch.setattr(_dense, "train_epoch_parts",
                        lambda *a: calls.append(a[-3]) or real(*a))
    rng = np.random.default_rng(5)
    params, sizes, kinds = _net(rng, [30, 12, 4], [1, 1], np.float32)
    X, Y = _data(rng, 100, 30, 4, np.float32, zeros=0.0)
    order = np.arange(100, dtype=np.int64)
    state = np.zeros(2 * params.size, np.float32)

    def epoch(batch_size):
        NB.train_epoch(params, sizes, kinds, 0, X, Y, order, batch_size, 0, 0.1, 0.9, 0.9, 1e-8,
                       0, 0.0, state, 0)
    with fastnet.use_path("dense"):
        monkeypatch.setenv("FASTNET_NUM_THREADS", "2")
        epoch(20)
        assert calls == []               # 20 x 424 multiply-adds: under PARTS_MIN_WORK
        monkeypatch.setattr(N, "PARTS_MIN_WORK", 0)
        epoch(20)
        epoch(65)                        # over PARTS_MAX_ROWS, and not a wide net
        monkeypatch.setattr(N, "PARTS_WIDE_WORK", 400)   # 424 multiply-adds a sample: wide
        epoch(65)
        monkeypatch.setattr(N, "PARTS_MAX_ROWS_WIDE", 80)
        epoch(81)                        # over PARTS_MAX_ROWS_WIDE (X has 100 rows)
        monkeypatch.setenv("FASTNET_NUM_THREADS", "1")
        epoch(20)
    assert calls == ([2, 2] if N._parallel_ok() else [])


@pytest.mark.parametrize("logistic", [False, True])
def test_threaded_linear_gd_matches_serial_and_reference(threaded, logistic):
    rng = np.random.default_rng(10)
    X = rng.standard_normal((301, 7))
    y = X @ rng.standard_normal(7) + 0.3
    if logistic:
        y = (y > 0.3).astype(np.float64)
    runs = []
    for K in (NB, REF):
        theta, hist = np.zeros(8), np.zeros(50)
        n = K.linear_gd(X, y, theta, 0.1, 1e-12, 50, logistic, hist)
        runs.append((n, theta, hist[:n]))
    assert runs[0][0] == runs[1][0]
    assert_close(runs[0][1], runs[1][1])
    assert_close(runs[0][2], runs[1][2])


@pytest.mark.parametrize("logistic", [False, True])
@pytest.mark.parametrize("nb", [1, 3, 16])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_linear_gd_blocks_match_reference(logistic, nb, dtype):
    """Gradient descent with each pass over X in ``nb`` blocks on Numba's threads: the
    reference's iterations, costs and theta, its stop at ``tol``, the same numbers on every
    call; a cost that is not finite stops it at once, without a step."""
    rng = np.random.default_rng(nb)
    X = rng.standard_normal((301, 9)).astype(dtype)
    y = X @ rng.standard_normal(9).astype(dtype) + dtype(0.3)
    if logistic:
        y = (y > 0.3).astype(dtype)
    runs = []
    for run in ("blocks", "blocks", "reference"):
        theta, hist = np.zeros(10, dtype), np.zeros(80)
        if run == "blocks":
            n = _linear.linear_gd_blocks(X, y, theta, 0.1, 1e-4, 80, logistic, hist, nb)
        else:
            n = REF.linear_gd(X, y, theta, 0.1, 1e-4, 80, logistic, hist)
        runs.append((n, theta, hist[:n]))
    (a, b, r) = runs
    assert a[0] == b[0] == r[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert logistic or a[0] < 80            # linear regression stops at tol here
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert_close(a[1], r[1], rtol=tol)
    assert_close(a[2], r[2], rtol=tol)
    y[5] = np.inf
    theta, hist = np.zeros(10, dtype), np.zeros(80)
    assert _linear.linear_gd_blocks(X, y, theta, 0.1, 1e-6, 80, logistic, hist, nb) == 1
    assert not np.isfinite(hist[0]) and not theta.any()


def test_one_and_two_threads_agree(monkeypatch):
    monkeypatch.setattr(N, "PARALLEL_MIN_WORK", 0)
    rng = np.random.default_rng(1)
    params, sizes, kinds = _net(rng, [30, 12, 4], [3, 1], np.float64)
    X, Y = _data(rng, 101, 30, 4, np.float64)
    grads = []
    for nt in ("1", "2"):
        monkeypatch.setenv("FASTNET_NUM_THREADS", nt)
        g = np.empty_like(params)
        NB.backprop_samples(params, sizes, kinds, 0, X, Y, g)
        grads.append(g)
    assert_close(grads[0], grads[1])


@pytest.mark.skipif(_blas.CONTROL is None, reason="scipy's BLAS threads cannot be controlled")
def test_blas_runs_single_threaded_inside_and_is_restored():
    before = _blas.get_threads()
    _blas.set_threads(2)
    try:
        with _blas.single_thread():
            assert _blas.get_threads() == 1
            with _blas.single_thread():
                assert _blas.get_threads() == 1
            assert _blas.get_threads() == 1
        assert _blas.get_threads() == 2
    finally:
        _blas.set_threads(before)


# ------------------------------------------------------------------------- dtypes
def test_float32_stays_float32_through_training():
    rng = np.random.default_rng(2)
    X, _ = _data(rng, 64, 12, 3, np.float32)
    y = rng.integers(0, 3, 64)
    model = [fastnet.init_weights(12, 6, rng=0, dtype=np.float32), fastnet.Sigmoid,
             fastnet.init_weights(6, 3, rng=1, dtype=np.float32), fastnet.Sigmoid]
    with fastnet.use_backend("numba"):
        fastnet.train(model, X, y, optimizer="sgd", batch_size=8, lr=0.5, epochs=2, rng=0)
        J, grads = fastnet.backprop(model, X, y)
        out = fastnet.feedforward(model, X)
    assert model[0].dtype == model[2].dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)
    assert out.dtype == np.float32


def _f32_calls():
    rng = np.random.default_rng(3)
    params, sizes, kinds = _net(rng, [20, 9, 3], [3, 1], np.float32)
    X, Y = _data(rng, 8, 20, 3, np.float32)
    offs = np.array([0, 21 * 9, 21 * 9 + 10 * 3], np.int64)
    idx = np.arange(20, dtype=np.int64)
    v = X[0]
    z = np.zeros(9, np.float32)
    A, aoff, nz, noff, cnt, D = _sparse.workspace(sizes, params)
    state = np.zeros(2 * params.size, np.float32)
    return {
        "rows_fused": (_rows.rows_fused, (params, 0, 9, idx, 20, v, np.float32(-0.1), z,
                                          np.float32(1), v, z.copy())),
        "rows_dot_update": (_rows.rows_dot_update, (params, offs[1], 3, 9, z, 3, z[:3],
                                                    np.float32(-0.1), np.float32(1), z.copy())),
        "backward_panel": (_sparse.backward_panel, (params, sizes, offs, kinds, X[0], X[1], X[2],
                                                    X[3], A, aoff, nz, noff, cnt, D,
                                                    np.zeros_like(params))),
        "step_network": (_optim.step_network, (params, np.zeros_like(params), state, sizes, offs,
                                               4, 3, 0.1, 0.9, 0.9, 1e-8, 1, 0.01, 2, False)),
        "bias_act_rows": (_elementwise.bias_act_rows, (3, X[:, :9].copy(), z)),
        "sigmoid_rows": (_elementwise.bias_act_rows, (1, X[:, :9].copy(), z)),
    }


def _fresh(disp):
    """The kernel compiled afresh with its options (the cached IR cannot be inspected)."""
    opts = {k: v for k, v in disp.targetoptions.items() if k not in ("cache", "nopython")}
    return numba.njit(**opts)(disp.py_func)


@pytest.mark.parametrize("fn", list(_f32_calls()))
def test_float32_code_has_no_float64_arithmetic(fn):
    """A float64 constant in a float32 loop would turn its arithmetic into float64.

    The kernels are compiled afresh (not from the cache, whose IR cannot be
    inspected) for float32 and their LLVM IR must hold no double-precision
    arithmetic (losses are float64 sums by contract: not in these functions;
    Adam's bias correction is one float64 scalar per step).
    """
    disp, args = _f32_calls()[fn]
    fresh = _fresh(disp)
    fresh(*args)
    (ir,) = fresh.inspect_llvm().values()
    dbl = r"(?:double|<\d+ x double>)"
    vec = r"<\d+ x double>"
    doubles = re.findall(r"= (?:fadd|fsub|fmul|fdiv|frem)(?: \w+)* " + vec + r" [^\n]*", ir)
    if fn != "step_network":
        doubles += re.findall(r"= call (?:\w+ )*" + dbl + r" @llvm\.[^\n]*", ir)
        doubles += re.findall(r"= (?:fadd|fsub|fmul|fdiv)(?: \w+)* double [^\n]*", ir)
    assert not doubles, f"{fn} does float64 arithmetic in float32 code: {doubles[:3]}"


def test_loops_are_vectorised():
    """The hot loops compile to AVX/SSE vector arithmetic (a negative-index wraparound or a
    division check would keep them scalar)."""
    rng = np.random.default_rng(4)
    W = rng.random(21 * 64).astype(np.float32)
    idx = np.arange(20, dtype=np.int64)
    v = rng.random(20).astype(np.float32)
    z = np.zeros(64, np.float32)
    for disp, args in [(_rows.rows_forward, (W, 0, 64, idx, 20, v, z)),
                       (_rows.rows_fused, (W, 0, 64, idx, 20, v, np.float32(-0.1), z,
                                           np.float32(1), v, z.copy())),
                       (_elementwise.bias_act_rows, (3, rng.random((4, 64)).astype(np.float32),
                                                     z))]:
        fresh = _fresh(disp)
        fresh(*args)
        (ir,) = fresh.inspect_llvm().values()
        assert re.search(r"= (?:fmul|fadd|call)[^\n]*<\d+ x float>", ir), disp.py_func.__name__


# --------------------------------------------------------------- vector maths
@numba.njit
def _vexp(z, out):
    for i in range(z.shape[0]):
        out[i] = _vmath.exp(z[i])


@numba.njit
def _vexpm1(z, out):
    for i in range(z.shape[0]):
        out[i] = _vmath.expm1(z[i])


@numba.njit
def _vsig(z, out):
    for i in range(z.shape[0]):
        out[i] = _vmath.sigmoid(z[i])


@numba.njit
def _vtanh(z, out):
    for i in range(z.shape[0]):
        out[i] = _vmath.tanh(z[i])


def _ulps(got, want, dtype):
    want = np.asarray(want, np.float64)
    spacing = np.spacing(np.abs(want).astype(dtype)).astype(np.float64)
    return np.max(np.abs(got.astype(np.float64) - want) / spacing)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_vector_exp_tanh_sigmoid_accuracy(dtype):
    lo = -80 if dtype == np.float32 else -700
    z = np.concatenate([np.linspace(lo, -lo, 400_001), np.linspace(-1e-3, 1e-3, 20_001),
                        [-1e-30, 1e-30]]).astype(dtype)
    zz = z.astype(np.float64)
    out = np.empty_like(z)
    tiny = np.finfo(dtype).tiny
    _vexp(z, out)
    want = np.exp(zz)
    ok = (want > tiny) & (want < np.finfo(dtype).max)
    assert _ulps(out[ok], want[ok], dtype) <= 2
    neg = z <= 0
    _vexpm1(z[neg], out[:neg.sum()])
    want = np.expm1(zz[neg])
    assert _ulps(out[:neg.sum()][want != 0], want[want != 0], dtype) <= 2
    _vsig(z, out)
    want = 1 / (1 + np.exp(-zz))
    assert _ulps(out[want > tiny], want[want > tiny], dtype) <= 4
    _vtanh(z, out)
    want = np.tanh(zz)
    assert _ulps(out[want != 0], want[want != 0], dtype) <= 4


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_vector_maths_special_values(dtype):
    z = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e4, -1e4, 88.0, -87.0, -103.0, -200.0],
                 dtype)
    out = np.empty_like(z)
    with np.errstate(over="ignore"):
        want = np.exp(z.astype(np.float64)).astype(dtype)
    _vexp(z, out)
    np.testing.assert_allclose(out, want, rtol=3e-7, atol=1e-44)
    assert np.isnan(out[4]) and out[2] == np.inf and out[3] == 0 and out[6] == 0
    _vsig(z, out)
    assert out[0] == 0.5 and out[2] == 1 and out[3] == 0 and np.isnan(out[4]) and out[6] == 0
    _vtanh(z, out)
    assert out[0] == 0 and not np.signbit(out[0]) and np.signbit(out[1])
    assert out[2] == 1 and out[3] == -1 and np.isnan(out[4]) and out[5] == 1 and out[6] == -1
    _vexpm1(z[[0, 3, 4, 6]], out[:4])
    assert out[0] == 0 and out[1] == -1 and np.isnan(out[2]) and out[3] == -1


# ------------------------------------------------------------------ row kernels
WIDTHS = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 50, 63, 64, 65, 100, 127, 128, 129, 130, 300]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("nin", [1, 5, 33, 200])
def test_row_kernels_on_every_width(dtype, nin):
    """Every width (full vectors, rests, several rows per pass), against numpy, with
    sentinels around every output: nothing is read or written outside the rows given."""
    rng = np.random.default_rng(nin)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    T = dtype
    for n in WIDTHS:
        vs = []
        for _ in range(4):
            v = rng.random(nin).astype(dtype)
            v[rng.random(nin) < 0.7] = 0
            vs.append(v)
        nz = np.full(nin + 3, 7777, np.int64)
        c = _rows.compact_nonzero(vs[0], nz)
        assert c == np.count_nonzero(vs[0])
        np.testing.assert_array_equal(nz[:c], np.flatnonzero(vs[0]))
        c2 = _rows.compact_union2(vs[0], vs[1], nz)
        np.testing.assert_array_equal(nz[:c2], np.flatnonzero((vs[0] != 0) | (vs[1] != 0)))
        c = _rows.compact_nonzero(vs[0], nz)
        o = 3
        P = (rng.random(o + (nin + 1) * n + 5) - 0.5).astype(dtype)
        W = P[o:o + (nin + 1) * n].reshape(nin + 1, n)
        z = np.full(n + 2, 99, dtype)
        z[:n] = W[0]
        _rows.rows_forward(P, o, n, nz, c, vs[0], z)
        np.testing.assert_allclose(z[:n], W[0] + vs[0] @ W[1:], **tol)
        assert np.all(z[n:] == 99)
        d = rng.random(n + 2).astype(dtype)
        # rank-1 update, then fused update + forward of the next sample
        P2 = P.copy()
        _rows.rows_update(P2, o, n, nz, c, vs[0], T(-0.5), d, T(0.9))
        want = W.copy()
        want[1:][nz[:c]] = 0.9 * W[1:][nz[:c]] - 0.5 * np.outer(vs[0][nz[:c]], d[:n])
        np.testing.assert_allclose(P2[o:o + W.size].reshape(W.shape), want, **tol)
        assert np.array_equal(P2[:o], P[:o]) and np.array_equal(P2[o + W.size:], P[o + W.size:])
        full = np.arange(nin, dtype=np.int64)
        P3 = P.copy()
        z = np.full(n + 2, 99, dtype)
        z[:n] = 0
        _rows.rows_fused(P3, o, n, full, nin, vs[0], T(-0.5), d, T(0.9), vs[1], z)
        upd = W.copy()
        upd[1:] = 0.9 * W[1:] - 0.5 * np.outer(vs[0], d[:n])
        np.testing.assert_allclose(P3[o:o + W.size].reshape(W.shape), upd, **tol)
        np.testing.assert_allclose(z[:n], vs[1] @ upd[1:], **tol)
        assert np.all(z[n:] == 99)
        # error term from the old rows, and their update, in one pass
        P4 = P.copy()
        a = rng.random(nin + 1).astype(dtype)
        dp = np.full(nin + 1, 99, dtype)
        _rows.rows_dot_update(P4, o, n, nin, a, 1, d, T(-0.5), T(1), dp)
        np.testing.assert_allclose(dp[:nin], (W[1:] @ d[:n]) * a[:nin] * (1 - a[:nin]), **tol)
        assert dp[nin] == 99
        want = W.copy()
        want[1:] -= 0.5 * np.outer(a[:nin], d[:n])
        np.testing.assert_allclose(P4[o:o + W.size].reshape(W.shape), want, **tol)
        # four samples over the union of their non-zero inputs
        c4 = _rows.compact_union4(*vs, nz)
        union = np.flatnonzero(np.any(np.array(vs) != 0, axis=0))
        assert c4 == len(union)
        np.testing.assert_array_equal(nz[:c4], union)
        zs = [np.full(n + 2, 99, dtype) for _ in range(4)]
        for zz in zs:
            zz[:n] = W[0]
        _sparse.rows_forward4(P, o, n, nz, c4, *vs, *zs)
        for v, zz in zip(vs, zs):
            np.testing.assert_allclose(zz[:n], W[0] + v @ W[1:], **tol)
            assert np.all(zz[n:] == 99)
        ds = [rng.random(n + 1).astype(dtype) for _ in range(4)]
        P5 = P.copy()
        _sparse.rows_axpy4(P5, o, n, nz, c4, *vs, *ds)
        want = W.copy()
        for v, dd in zip(vs, ds):
            want[1:] += np.outer(v, dd[:n])
        np.testing.assert_allclose(P5[o:o + W.size].reshape(W.shape), want, **tol)
        assert np.array_equal(P5[:o], P[:o]) and np.array_equal(P5[o + W.size:], P[o + W.size:])
        outs = [np.full(nin + 1, 99, dtype) for _ in range(4)]
        _sparse.row_dots4(P, o, n, nin, *ds, *outs)
        for dd, out in zip(ds, outs):
            np.testing.assert_allclose(out[:nin], W[1:] @ dd[:n], **tol)
            assert out[nin] == 99


# ------------------------------------------------------- kernel argument checks
def test_kernels_refuse_non_contiguous_arrays():
    rng = np.random.default_rng(4)
    params, sizes, kinds = _net(rng, [10, 4, 2], [1, 1], np.float64)
    X, Y = _data(rng, 9, 10, 2, np.float64)
    g = np.empty_like(params)
    with pytest.raises(ValueError, match=r"backprop_samples: X must be C-contiguous"):
        NB.backprop_samples(params, sizes, kinds, 0, np.asfortranarray(X), Y, g)
    with pytest.raises(ValueError, match=r"forward_network: out must be C-contiguous"):
        NB.forward_network(params, sizes, kinds, X, np.empty((2, 9)).T)


def test_kernels_refuse_mixed_dtypes():
    rng = np.random.default_rng(5)
    params, sizes, kinds = _net(rng, [10, 4, 2], [1, 1], np.float64)
    X, Y = _data(rng, 9, 10, 2, np.float64)
    with pytest.raises(TypeError, match=r"X has dtype float32, expected float64"):
        NB.backprop_samples(params, sizes, kinds, 0, X.astype(np.float32), Y,
                            np.empty_like(params))
    with pytest.raises(TypeError, match=r"sizes must have dtype int64, got int32"):
        NB.forward_network(params, sizes.astype(np.int32), kinds, X, np.empty((9, 2)))
    with pytest.raises(TypeError, match=r"params must have dtype float32 or float64"):
        NB.penalty_value(1, 0.1, params.astype(np.float16), sizes)
    with pytest.raises(TypeError, match=r"grad must be a numpy.ndarray"):
        NB.optimizer_step(0, params, list(params), np.zeros(2 * params.size), 0.1, 0.9, 0.9, 1e-8,
                          0)


def _epoch_args(rng, m=6):
    params, sizes, kinds = _net(rng, [5, 3, 2], [1, 1], np.float64)
    X, Y = _data(rng, m, 5, 2, np.float64)
    return [params, sizes, kinds, 0, X, Y, np.arange(m), 2, 0, 0.1, 0.9, 0.9, 1e-8, 0, 0.0,
            np.zeros(2 * params.size), 0]


BAD_EPOCH = [  # (argument index, bad value or function of the args, exception, message)
    (0, lambda a: a[0][:-1], ValueError, r"params has 25 entries, expected 26"),
    (1, lambda a: np.array([5, 4, 2]), ValueError, r"params has 26 entries, expected 34"),
    (1, lambda a: np.array([5, 3]), ValueError, r"params has 26 entries, expected 18"),
    (2, lambda a: np.array([1]), ValueError, r"kinds has 1 entries, expected one per layer"),
    (1, lambda a: np.array([5, 0, 2]), ValueError, r"every layer width in sizes must be >= 1"),
    (2, lambda a: np.array([1, 9]), ValueError, r"kinds must be activation codes"),
    (2, lambda a: np.array([4, 1]), ValueError, r"softmax \(4\) is allowed only as the last"),
    (3, lambda a: 7, ValueError, r"loss_kind must be one of"),
    (4, lambda a: a[4][:, :4].copy(), ValueError, r"X has 4 columns, expected the input width 5"),
    (5, lambda a: a[5][:, :1].copy(), ValueError, r"Y has shape \(6, 1\), expected \(6, 2\)"),
    (5, lambda a: a[5][:5].copy(), ValueError, r"Y has shape \(5, 2\), expected \(6, 2\)"),
    (6, lambda a: np.array([0, 6]), ValueError, r"order must hold row indices of X in \[0, 6\)"),
    (6, lambda a: np.array([-1, 2]), ValueError, r"order must hold row indices"),
    (6, lambda a: np.arange(6, dtype=np.int32), TypeError, r"order must have dtype int64"),
    (7, lambda a: 0, ValueError, r"batch_size must be >= 1"),
    (8, lambda a: 5, ValueError, r"optimizer must be one of"),
    (13, lambda a: 3, ValueError, r"penalty_kind must be one of"),
    (15, lambda a: np.zeros(a[0].size), ValueError, r"state has 26 entries, expected 2 \* 26"),
    (16, lambda a: -1, ValueError, r"t must be >= 0"),
]


@pytest.mark.parametrize("i, bad, exc, match", BAD_EPOCH,
                         ids=[f"{c[0]}-{c[3][:24]}" for c in BAD_EPOCH])
def test_train_epoch_refuses_bad_arguments(i, bad, exc, match):
    """An edited model file (layer sizes, a short params array), out-of-range indices or
    codes: a ValueError/TypeError naming the argument, never a read out of bounds."""
    args = _epoch_args(np.random.default_rng(7))
    args[i] = bad(args)
    with pytest.raises(exc, match="train_epoch: " + match):
        NB.train_epoch(*args)


def test_other_kernels_refuse_inconsistent_networks():
    rng = np.random.default_rng(8)
    params, sizes, kinds = _net(rng, [5, 3, 2], [1, 1], np.float64)
    X, Y = _data(rng, 4, 5, 2, np.float64)
    short = params[:-3]
    with pytest.raises(ValueError, match=r"forward_network: params has 23 entries, expected 26"):
        NB.forward_network(short, sizes, kinds, X, np.empty((4, 2)))
    with pytest.raises(ValueError, match=r"forward_network: out has shape \(4, 3\)"):
        NB.forward_network(params, sizes, kinds, X, np.empty((4, 3)))
    with pytest.raises(ValueError, match=r"backprop_batch: grad has shape \(20,\)"):
        NB.backprop_batch(params, sizes, kinds, 0, X, Y, np.empty(20))
    with pytest.raises(ValueError, match=r"backprop_samples: a softmax output layer needs"):
        NB.backprop_samples(params, sizes, np.array([1, 4]), 0, X, Y, np.empty_like(params))
    with pytest.raises(ValueError, match=r"penalty_grad: params has 23 entries"):
        NB.penalty_grad(1, 0.1, short, sizes, np.empty(23))
    with pytest.raises(ValueError, match=r"optimizer_step: state has 23 entries, expected 2 \* 26"):
        NB.optimizer_step(3, params, params.copy(), np.zeros(23), 0.1, 0.9, 0.9, 1e-8, 0)
    with pytest.raises(ValueError, match=r"activation: kind must be one of"):
        NB.activation(9, X, X.copy())
    with pytest.raises(ValueError, match=r"linear_gd: history has 3 entries, expected at least"):
        NB.linear_gd(X, Y[:, 0].copy(), np.zeros(6), 0.1, 0.0, 5, False, np.zeros(3))
    with pytest.raises(ValueError, match=r"linear_gd: theta has shape \(5,\), expected \(6,\)"):
        NB.linear_gd(X, Y[:, 0].copy(), np.zeros(5), 0.1, 0.0, 5, False, np.zeros(5))
    with pytest.raises(ValueError, match=r"perceptron_train: errors has 2 entries"):
        NB.perceptron_train(X, Y[:, 0].copy(), np.zeros(6), 4, 1.0, np.zeros(2, np.int64))


def test_public_api_copies_non_contiguous_and_converts_integers():
    rng = np.random.default_rng(6)
    X = (rng.random((30, 8)) * 4).astype(np.int64)
    y = rng.integers(0, 3, 30)
    model = [fastnet.init_weights(8, 5, rng=0), fastnet.Sigmoid,
             fastnet.init_weights(5, 3, rng=1), fastnet.Sigmoid]
    with fastnet.use_backend("numba"):
        J1, g1 = fastnet.backprop(model, X.astype(np.float64), y)
        J2, g2 = fastnet.backprop(model, np.asfortranarray(X), y)
        J3, g3 = fastnet.backprop(model, X[:, ::1].T.copy().T, y)  # F-ordered view
    assert J1 == J2 == J3
    for a, b, c in zip(g1, g2, g3):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_divergence_stops_with_an_error_naming_the_epoch():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((40, 6))
    y = rng.standard_normal((40, 1)) * 100
    model = [fastnet.init_weights(6, 4, rng=0), fastnet.Linear,
             fastnet.init_weights(4, 1, rng=1), fastnet.Linear]
    before = [model[0].copy(), model[2].copy()]
    with fastnet.use_backend("numba"):
        with pytest.raises(fastnet.DivergenceError, match=r"epoch \d+.*smaller learning rate"):
            fastnet.train(model, X, y, optimizer="gd", lr=50.0, epochs=200, loss="quadratic")
    assert np.all(np.isfinite(model[0])) and np.all(np.isfinite(model[2]))
    assert not np.array_equal(model[0], before[0])
