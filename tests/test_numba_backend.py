"""Numba-specific properties of the ``numba`` backend.

The kernels' results are checked against the reference in
``test_kernels.py``; here: what is particular to the Numba implementation
(import cost, threads, dtypes, argument checks of the kernel wrappers, the
explicit-SIMD intrinsics on every row width, divergence through the public
API).
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fastnet
from fastnet import _backend
from fastnet._params import n_params
from conftest import REPO, assert_close, kernels_of

numba = pytest.importorskip("numba")
if "numba" not in fastnet.available_backends():  # pragma: no cover
    pytest.skip("the numba backend is not available", allow_module_level=True)

from fastnet._numba import network as N  # noqa: E402
from fastnet._numba import _simd  # noqa: E402

REF = kernels_of("reference")
NB = kernels_of("numba")


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


def _python(code):
    env = {k: v for k, v in os.environ.items() if k != "FASTNET_BACKEND"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(REPO), timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


# ------------------------------------------------------------------ import cost
def test_import_fastnet_neither_imports_numba_nor_compiles():
    out = _python("import sys, fastnet; fastnet.available_backends(); "
                  "print('numba' in sys.modules, 'fastnet._numba.network' in sys.modules)")
    assert out == "False False"


def test_default_backend_is_compiled_and_loads_lazily():
    out = _python("import sys, fastnet; b = fastnet.get_backend(); "
                  "print(b, 'numba' in sys.modules)")
    backend, imported = out.split()
    assert backend in ("numba", "cython")
    assert imported == ("True" if backend == "numba" else imported)


def test_no_kernel_is_parallel_true():
    """``parallel=True`` kernels cannot be cached: every process would recompile them."""
    for name in dir(N):
        obj = getattr(N, name)
        if isinstance(obj, numba.core.registry.CPUDispatcher):
            assert not obj.targetoptions.get("parallel"), name
            assert obj._cache is not None and type(obj._cache).__name__ != "NullCache", \
                f"{name} is not cache=True"


# ------------------------------------------------------------------------ threads
@pytest.fixture
def threaded(monkeypatch):
    """Force the threaded paths on small problems, with two threads."""
    monkeypatch.setattr(N, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(N, "PARALLEL_MIN_BATCH", 1)
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    yield numba.get_num_threads()
    numba.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_threaded_kernels_deterministic_and_match_reference(threaded, dtype):
    if threaded < 2:
        pytest.skip("numba has a single thread here")
    rng = np.random.default_rng(0)
    params, sizes, kinds = _net(rng, [40, 16, 5], [1, 1], dtype)
    X, Y = _data(rng, 203, 40, 5, dtype)
    # backprop_samples: bitwise equal on repeated calls, close to the reference
    g1, g2, gr = (np.empty_like(params) for _ in range(3))
    J1 = NB.backprop_samples(params, sizes, kinds, 0, X, Y, g1)
    J2 = NB.backprop_samples(params, sizes, kinds, 0, X, Y, g2)
    Jr = REF.backprop_samples(params, sizes, kinds, 0, X, Y, gr)
    jtol = 1e-10 if dtype == np.float64 else 1e-5  # losses are float64 sums of T values
    assert J1 == J2 and np.array_equal(g1, g2)
    assert_close(J1, Jr, rtol=jtol)
    assert_close(g1, gr)
    # forward_network
    o1, o2, orf = (np.empty((203, 5), dtype) for _ in range(3))
    NB.forward_network(params, sizes, kinds, X, o1)
    NB.forward_network(params, sizes, kinds, X, o2)
    REF.forward_network(params, sizes, kinds, X, orf)
    assert np.array_equal(o1, o2)
    assert_close(o1, orf)
    # the threaded large-batch epoch (two batches, momentum)
    order = rng.permutation(203).astype(np.int64)
    runs = []
    for K in (NB, NB, REF):
        p, s = params.copy(), np.zeros(2 * params.size, params.dtype)
        J = K.train_epoch(p, sizes, kinds, 0, X, Y, order, 120, 1, 0.1, 0.9, 0.9, 1e-8, 1, 0.01,
                          s, 0)
        runs.append((J, p, s))
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])
    assert_close(runs[0][0], runs[2][0], rtol=jtol)
    assert_close(runs[0][1], runs[2][1])
    assert_close(runs[0][2], runs[2][2])


def test_one_and_two_threads_agree(monkeypatch):
    monkeypatch.setattr(N, "PARALLEL_MIN_WORK", 0)
    rng = np.random.default_rng(1)
    params, sizes, kinds = _net(rng, [30, 12, 4], [3, 1], np.float64)
    X, Y = _data(rng, 101, 30, 4, np.float64)
    before = numba.get_num_threads()
    grads = []
    try:
        for nt in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(nt)
            g = np.empty_like(params)
            NB.backprop_samples(params, sizes, kinds, 0, X, Y, g)
            grads.append(g)
    finally:
        numba.set_num_threads(before)
    assert_close(grads[0], grads[1])


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


@pytest.mark.parametrize("fn, args", [
    ("_forward_range", "forward"),
    ("_panel_backward", "panel_backward"),
    ("_update", "update"),
])
def test_float32_code_has_no_float64_arithmetic(fn, args):
    """A float64 constant in a float32 loop would turn its arithmetic into float64.

    The kernels are compiled afresh (not from the cache, whose IR cannot be
    inspected) for float32 and their LLVM IR, callees included, must hold no
    double-precision arithmetic.  (Losses are float64 sums by contract: they
    are not in these functions.)
    """
    rng = np.random.default_rng(3)
    params, sizes, kinds = _net(rng, [20, 9, 3], [1, 1], np.float32)
    X, Y = _data(rng, 8, 20, 3, np.float32)
    offs = N._offsets(sizes)
    acts, aoffs, nz, noffs, cnt, d0, d1, d2 = N._workspace(sizes, params)
    A = np.zeros((4, acts.shape[0]), np.float32)
    D = np.zeros((2, 4, d0.shape[0]), np.float32)
    call = {
        "forward": (params, sizes, kinds, X, np.empty((8, 3), np.float32), 0, 8),
        "panel_backward": (params, sizes, offs, kinds, X[0], X[1], X[2], X[3], A, aoffs, nz,
                           noffs, cnt, D, np.zeros_like(params)),
        "update": (params, np.zeros_like(params), np.zeros_like(params), sizes, offs, 4, 2, 0.1,
                   0.9, 0.9, 1e-8, 1, 0.01),
    }[args]
    fresh = numba.njit(getattr(N, fn).py_func)
    fresh(*call)
    (ir,) = fresh.inspect_llvm().values()
    dbl = r"(?:double|<\d+ x double>)"
    doubles = re.findall(r"= (?:fadd|fsub|fmul|fdiv|frem)(?: \w+)* " + dbl + r" [^\n]*", ir)
    doubles += re.findall(r"= call (?:\w+ )*" + dbl + r" @llvm\.[^\n]*", ir)
    assert not doubles, f"{fn} does float64 arithmetic in float32 code: {doubles[:3]}"


# ------------------------------------------------------- kernel argument checks
def test_kernels_refuse_non_contiguous_arrays():
    rng = np.random.default_rng(4)
    params, sizes, kinds = _net(rng, [10, 4, 2], [1, 1], np.float64)
    X, Y = _data(rng, 9, 10, 2, np.float64)
    g = np.empty_like(params)
    with pytest.raises(ValueError, match=r"X must be C-contiguous"):
        NB.backprop_samples(params, sizes, kinds, 0, np.asfortranarray(X), Y, g)
    with pytest.raises(ValueError, match=r"out must be C-contiguous"):
        NB.forward_network(params, sizes, kinds, X, np.empty((2, 9)).T)


def test_kernels_refuse_mixed_dtypes():
    rng = np.random.default_rng(5)
    params, sizes, kinds = _net(rng, [10, 4, 2], [1, 1], np.float64)
    X, Y = _data(rng, 9, 10, 2, np.float64)
    with pytest.raises(TypeError, match=r"X has dtype float32; expected float64"):
        NB.backprop_samples(params, sizes, kinds, 0, X.astype(np.float32), Y,
                            np.empty_like(params))
    with pytest.raises(TypeError, match=r"sizes has dtype int32; expected int64"):
        NB.forward_network(params, sizes.astype(np.int32), kinds, X, np.empty((9, 2)))
    with pytest.raises(TypeError, match=r"params must be float32 or float64"):
        NB.penalty_value(1, 0.1, params.astype(np.float16), sizes)
    with pytest.raises(TypeError, match=r"grad must be a numpy array"):
        NB.optimizer_step(0, params, list(params), np.zeros(2 * params.size), 0.1, 0.9, 0.9, 1e-8,
                          0)


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


def test_train_epoch_refuses_bad_batch_size():
    rng = np.random.default_rng(7)
    params, sizes, kinds = _net(rng, [5, 3, 2], [1, 1], np.float64)
    X, Y = _data(rng, 6, 5, 2, np.float64)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        NB.train_epoch(params, sizes, kinds, 0, X, Y, np.arange(6), 0, 0, 0.1, 0.9, 0.9, 1e-8,
                       0, 0.0, np.zeros(2 * params.size), 0)


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


# ------------------------------------------------------------------ intrinsics
@numba.njit
def _call_compact(v, nz):
    return _simd.compact_nonzero(v, nz)


@numba.njit
def _call_union(a, b, c, d, nz):
    return _simd.compact_union4(a, b, c, d, nz)


@numba.njit
def _call_affine(p, o, n, v, nz, c, z):
    _simd.sparse_affine(p, o, n, v, nz, c, z)


@numba.njit
def _call_affine4(p, o, n, v0, v1, v2, v3, nz, c, z0, z1, z2, z3):
    _simd.sparse_affine4(p, o, n, v0, v1, v2, v3, nz, c, z0, z1, z2, z3)


@numba.njit
def _call_axpy(W, o, n, v, nz, c, d):
    _simd.rows_axpy(W, o, n, v, nz, c, d)


@numba.njit
def _call_axpy4(W, o, n, v0, v1, v2, v3, nz, c, d0, d1, d2, d3):
    _simd.rows_axpy4(W, o, n, v0, v1, v2, v3, nz, c, d0, d1, d2, d3)


@numba.njit
def _call_dots(W, o, n, m, d, out):
    _simd.row_dots(W, o, n, m, d, out)


@numba.njit
def _call_sigmoid(z, out):
    _simd.sigmoid_into(z, out)


WIDTHS = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 50, 63, 64, 65, 100, 127, 128, 129, 130, 300]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("nin", [1, 5, 33, 200])
def test_intrinsics_on_every_row_width(dtype, nin):
    """Every width (full vectors, rests, several register blocks), against numpy, and
    sentinels around every output: nothing is read or written outside the rows given."""
    rng = np.random.default_rng(nin)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for n in WIDTHS:
        vs = []
        for _ in range(4):
            v = rng.random(nin).astype(dtype)
            v[rng.random(nin) < 0.7] = 0
            vs.append(v)
        nz = np.full(nin + 3, 7777, np.uint32)
        c = _call_compact(vs[0], nz)
        assert c == np.count_nonzero(vs[0])
        np.testing.assert_array_equal(nz[:c], np.flatnonzero(vs[0]))
        o = 3
        P = (rng.random(o + (nin + 1) * n + 5) - 0.5).astype(dtype)
        W = P[o:o + (nin + 1) * n].reshape(nin + 1, n)
        z = np.full(n + 2, 99, dtype)
        _call_affine(P, o, n, vs[0], nz, c, z)
        np.testing.assert_allclose(z[:n], W[0] + vs[0] @ W[1:], **tol)
        assert np.all(z[n:] == 99)
        d = rng.random(n + 2).astype(dtype)
        P2 = P.copy()
        _call_axpy(P2, o, n, vs[0], nz, c, d)
        want = W.copy()
        want[1:] += np.outer(vs[0], d[:n])
        np.testing.assert_allclose(P2[o:o + W.size].reshape(W.shape), want, **tol)
        assert np.array_equal(P2[:o], P[:o]) and np.array_equal(P2[o + W.size:], P[o + W.size:])
        out = np.full(nin + 2, 99, dtype)
        _call_dots(P, o, n, nin, d, out)
        np.testing.assert_allclose(out[:nin], W[1:] @ d[:n], **tol)
        assert np.all(out[nin:] == 99)
        # four-sample panels over the union of nonzero inputs
        c4 = _call_union(*vs, nz)
        union = np.flatnonzero(np.any(np.array(vs) != 0, axis=0))
        assert c4 == len(union)
        np.testing.assert_array_equal(nz[:c4], union)
        zs = [np.full(n + 2, 99, dtype) for _ in range(4)]
        _call_affine4(P, o, n, *vs, nz, c4, *zs)
        for v, z in zip(vs, zs):
            np.testing.assert_allclose(z[:n], W[0] + v @ W[1:], **tol)
            assert np.all(z[n:] == 99)
        ds = [rng.random(n + 1).astype(dtype) for _ in range(4)]
        P4 = P.copy()
        _call_axpy4(P4, o, n, *vs, nz, c4, *ds)
        want = W.copy()
        for v, dd in zip(vs, ds):
            want[1:] += np.outer(v, dd[:n])
        np.testing.assert_allclose(P4[o:o + W.size].reshape(W.shape), want, **tol)
        assert np.array_equal(P4[:o], P[:o]) and np.array_equal(P4[o + W.size:], P[o + W.size:])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_sigmoid_intrinsic(dtype):
    from fastnet.reference.activations import Sigmoid
    z = np.concatenate([np.linspace(-60, 60, 4001), [0.0, -0.0, 1e-30, -1e-30, np.inf, -np.inf,
                                                      np.nan]]).astype(dtype)
    for n in (1, 7, 16, 17, z.size):
        out = np.full(n + 1, 5, dtype)
        _call_sigmoid(z[:n], out[:n])
        assert out[n] == 5
    out = np.empty_like(z)
    _call_sigmoid(z, out)
    want = Sigmoid.f(z)
    assert np.isnan(out[-1])
    assert out[-3] == 1
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out[:-1], want[:-1], rtol=rtol, atol=np.finfo(dtype).tiny * 1e3)
    inplace = z.copy()
    _call_sigmoid(inplace, inplace)
    assert np.array_equal(inplace[:-1], out[:-1])


@numba.njit
def _call_dots4(W, o, n, m, d0, d1, d2, d3, o0, o1, o2, o3):
    _simd.row_dots4(W, o, n, m, d0, d1, d2, d3, o0, o1, o2, o3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_row_dots4_on_every_width(dtype):
    rng = np.random.default_rng(11)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for n in WIDTHS:
        for nin in (1, 7, 50):
            P = (rng.random(2 + (nin + 1) * n) - 0.5).astype(dtype)
            W = P[2:].reshape(nin + 1, n)
            ds = [rng.random(n + 1).astype(dtype) for _ in range(4)]
            outs = [np.full(nin + 1, 99, dtype) for _ in range(4)]
            _call_dots4(P, 2, n, nin, *ds, *outs)
            for d, out in zip(ds, outs):
                np.testing.assert_allclose(out[:nin], W[1:] @ d[:n], **tol)
                assert out[nin] == 99
