"""Cython-specific behaviour of the ``cython`` backend.

* without the compiled extension fastnet still imports and works, does not list
  ``cython``, and asking for it says the extension is missing and how to build it;
* float32 and float64 are both compiled (fused types): outputs keep the input dtype;
* the ``def`` wrappers refuse wrong dtypes, non-contiguous and mis-shaped arrays with a
  clear error instead of reading out of bounds;
* the threaded paths (forced on for small problems) agree with the reference, and give
  the same bits on every run (per-thread buffers summed in a fixed order);
* both paths of the network kernels (the dense GEMM path, online matrix-vector loops;
  the sparse row path), forced with ``fastnet._paths.use_path``, give the reference's
  numbers on dense and sparse inputs, for every optimiser (Adam's step count ``t``
  honoured) and penalty, in blocks of rows and with batches used in place;
* the branch-free exp/tanh/sigmoid are accurate to a few ulp and treat NaN and the
  infinities as numpy does.

Nothing is compiled here: the tests use what ``pip install`` / ``build_ext`` built.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnet
from fastnet import _backend, _paths
from fastnet._params import n_params
from conftest import REPO, assert_close, kernels_of

cython_built = pytest.mark.skipif(
    "cython" not in fastnet.available_backends(),
    reason="the cython extension is not built (pip install -e . or "
           "python setup.py build_ext --inplace)")

REF = kernels_of("reference")


@pytest.fixture
def mlp():
    """The mlp module in the variant the backend uses."""
    from fastnet._cython import _variants
    return _variants.load("mlp")


@pytest.fixture
def sparse(mlp):
    """The sparse (zero-skipping row) path forced for the test."""
    with _paths.use_path("sparse"):
        yield mlp


@pytest.fixture
def threaded(sparse):
    """The sparse path's threaded code forced on even for tiny problems (2 threads, no
    work minimum)."""
    old = sparse._set_threading(num_threads=2, min_work=0, min_elems=0, big_work=0)
    yield sparse
    sparse._set_threading(**old)


def make_net(rng, sizes, kinds, dtype, scale=0.5):
    sizes = np.asarray(sizes, dtype=np.int64)
    kinds = np.asarray(kinds, dtype=np.int64)
    return (rng.standard_normal(n_params(sizes)) * scale).astype(dtype), sizes, kinds


def make_data(rng, m, n, K, dtype):
    X = rng.random((m, n))
    X[rng.random((m, n)) < 0.6] = 0.0
    Y = np.zeros((m, K))
    Y[np.arange(m), rng.integers(0, K, m)] = 1
    return X.astype(dtype), Y.astype(dtype)


# ------------------------------------------------------------ a missing extension
class TestMissingExtension:
    def test_probe_reports_missing_module(self, monkeypatch):
        import fastnet._cython as pkg
        monkeypatch.setattr(pkg, "REQUIRED_MODULES", pkg.REQUIRED_MODULES + ("_not_built",))
        monkeypatch.setattr(_backend, "_loaded", {k: v for k, v in _backend._loaded.items()
                                                  if k != "cython"})
        assert "cython" not in fastnet.available_backends()
        assert "reference" in fastnet.available_backends()
        with pytest.raises(_backend.BackendUnavailableError,
                           match=r"fastnet\._cython\._not_built.*build_ext --inplace"):
            fastnet.use_backend("cython")

    def test_env_var_asking_for_missing_backend(self, monkeypatch):
        import fastnet._cython as pkg
        monkeypatch.setattr(pkg, "REQUIRED_MODULES", ("_not_built",))
        monkeypatch.setenv("FASTNET_BACKEND", "cython")
        with pytest.raises(_backend.BackendUnavailableError, match="not built.*build"):
            _backend._resolve_default()

    def test_package_without_compiled_modules(self, tmp_path):
        """A copy of the package without any .so: imports, works, omits cython, explains."""
        import shutil
        shutil.copytree(REPO / "fastnet", tmp_path / "fastnet",
                        ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
        script = textwrap.dedent("""
            import numpy as np, fastnet
            assert fastnet.__file__.startswith(%r), fastnet.__file__
            assert "cython" not in fastnet.available_backends(), fastnet.available_backends()
            try:
                fastnet.use_backend("cython")
            except fastnet.BackendUnavailableError as exc:
                msg = str(exc)
                assert "not built" in msg and "build_ext --inplace" in msg, msg
            else:
                raise AssertionError("use_backend('cython') did not fail")
            with fastnet.use_backend("reference"):
                T1 = fastnet.init_weights(4, 3, rng=0)
                T2 = fastnet.init_weights(3, 2, rng=1)
                X = np.random.default_rng(0).random((5, 4))
                J, grads = fastnet.backprop([T1, fastnet.Sigmoid, T2, fastnet.Sigmoid], X,
                                            np.array([0, 1, 0, 1, 1]))
            assert np.isfinite(J) and len(grads) == 2
            print("ok")
        """ % str(tmp_path))
        env = dict(os.environ, PYTHONPATH=str(tmp_path))
        env.pop("FASTNET_BACKEND", None)
        res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip().endswith("ok")


# ----------------------------------------------------------- fused float32/float64
@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_each_dtype_is_compiled_and_kept(dtype):
    K = kernels_of("cython")
    rng = np.random.default_rng(0)
    params, sizes, kinds = make_net(rng, [6, 5, 3], [1, 4], dtype)
    X, Y = make_data(rng, 9, 6, 3, dtype)
    out = np.empty((9, 3), dtype)
    K.forward_network(params, sizes, kinds, X, out)
    ref = np.empty_like(out)
    REF.forward_network(params, sizes, kinds, X, ref)
    assert_close(out, ref)
    grad = np.empty_like(params)
    J = K.backprop_samples(params, sizes, kinds, 2, X, Y, grad)
    assert isinstance(J, float) and grad.dtype == dtype
    Z = rng.standard_normal((4, 5)).astype(dtype)
    A = np.empty_like(Z)
    K.activation(1, Z, A)
    assert A.dtype == dtype
    theta = np.zeros(7, dtype)
    n = K.linear_gd(X, Y[:, 0].copy(), theta, 0.1, 0.0, 5, False, np.zeros(5))
    assert n == 5 and theta.dtype == dtype and np.all(np.isfinite(theta))


# --------------------------------------------------------------------- bad input
@cython_built
class TestCheckedWrappers:
    def setup_method(self):
        self.K = kernels_of("cython")
        rng = np.random.default_rng(1)
        self.params, self.sizes, self.kinds = make_net(rng, [6, 4, 3], [1, 1], np.float64)
        self.X, self.Y = make_data(rng, 8, 6, 3, np.float64)

    def test_wrong_dtype(self):
        out = np.empty((8, 3))
        with pytest.raises(TypeError, match="forward_network: X has dtype float32, expected "
                                            "float64"):
            self.K.forward_network(self.params, self.sizes, self.kinds,
                                   self.X.astype(np.float32), out)
        with pytest.raises(TypeError, match="X must have dtype float32 or float64, got int64"):
            self.K.forward_network(self.params, self.sizes, self.kinds,
                                   self.X.astype(np.int64), out)
        with pytest.raises(TypeError, match="sizes must have dtype int64"):
            self.K.forward_network(self.params, self.sizes.astype(np.int32), self.kinds,
                                   self.X, out)
        with pytest.raises(TypeError, match="activation: Z must be a numpy.ndarray"):
            self.K.activation(1, [1.0, 2.0], np.empty(2))

    def test_not_contiguous(self):
        Xf = np.asfortranarray(self.X)
        with pytest.raises(ValueError, match="X must be C-contiguous"):
            self.K.forward_network(self.params, self.sizes, self.kinds, Xf, np.empty((8, 3)))
        g = np.empty(2 * self.params.size)[::2]
        with pytest.raises(ValueError, match="grad must be C-contiguous"):
            self.K.backprop_samples(self.params, self.sizes, self.kinds, 0, self.X, self.Y, g)
        Z = np.ones((4, 6))[:, ::2]
        with pytest.raises(ValueError, match="Z must be C-contiguous"):
            self.K.activation(1, Z, np.empty((4, 3)))

    def test_shapes(self):
        with pytest.raises(ValueError, match="X has 5 columns, expected the input width 6"):
            self.K.forward_network(self.params, self.sizes, self.kinds, self.X[:, :5].copy(),
                                   np.empty((8, 3)))
        with pytest.raises(ValueError, match=r"out has shape \(8, 2\), expected \(8, 3\)"):
            self.K.forward_network(self.params, self.sizes, self.kinds, self.X, np.empty((8, 2)))
        with pytest.raises(ValueError, match="params has 10 entries, expected 43"):
            self.K.forward_network(self.params[:10].copy(), self.sizes, self.kinds, self.X,
                                   np.empty((8, 3)))
        with pytest.raises(ValueError, match=r"Y has shape \(7, 3\), expected \(8, 3\)"):
            self.K.backprop_batch(self.params, self.sizes, self.kinds, 0, self.X, self.Y[:7],
                                  np.empty_like(self.params))
        with pytest.raises(ValueError, match="kinds has 1 entries, expected one per layer"):
            self.K.forward_network(self.params, self.sizes, self.kinds[:1].copy(), self.X,
                                   np.empty((8, 3)))

    def test_codes_and_ranges(self):
        state = np.zeros(2 * self.params.size)
        order = np.arange(8, dtype=np.int64)
        args = (self.params, self.sizes, self.kinds, 0, self.X, self.Y)
        with pytest.raises(ValueError, match="order must hold row indices of X in"):
            self.K.train_epoch(*args, order + 1, 2, 0, 0.1, 0.9, 0.9, 1e-8, 0, 0.0, state, 0)
        with pytest.raises(ValueError, match="batch_size must be >= 1"):
            self.K.train_epoch(*args, order, 0, 0, 0.1, 0.9, 0.9, 1e-8, 0, 0.0, state, 0)
        with pytest.raises(ValueError, match="optimizer must be one of"):
            self.K.train_epoch(*args, order, 2, 7, 0.1, 0.9, 0.9, 1e-8, 0, 0.0, state, 0)
        with pytest.raises(ValueError, match="softmax .4. is allowed only as the last layer"):
            self.K.forward_network(self.params, self.sizes, np.array([4, 1]), self.X,
                                   np.empty((8, 3)))
        with pytest.raises(ValueError, match="softmax output layer needs loss_kind 2"):
            self.K.backprop_samples(self.params, self.sizes, np.array([1, 4]), 0, self.X,
                                    self.Y, np.empty_like(self.params))
        with pytest.raises(ValueError, match="activation_grad: softmax has no elementwise"):
            self.K.activation_grad(4, np.ones((2, 2)), np.empty((2, 2)))

    def test_read_only_outputs(self):
        out = np.empty((8, 3))
        out.flags.writeable = False
        with pytest.raises(ValueError, match="out is written in place but is read-only"):
            self.K.forward_network(self.params, self.sizes, self.kinds, self.X, out)

    def test_read_only_inputs_are_fine(self):
        p, X, Y = self.params.copy(), self.X.copy(), self.Y.copy()
        for a in (p, X, Y):
            a.flags.writeable = False
        g1, g2 = np.empty_like(p), np.empty_like(p)
        J1 = self.K.backprop_samples(p, self.sizes, self.kinds, 0, X, Y, g1)
        J2 = REF.backprop_samples(p, self.sizes, self.kinds, 0, X, Y, g2)
        assert_close(J1, J2)
        assert_close(g1, g2)


# -------------------------------------------------------------------- threads
@cython_built
def test_openmp_flag_is_reported(mlp):
    assert isinstance(mlp.openmp_enabled(), bool)


@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("batch_size", [1, 5, 16, 200])
@pytest.mark.parametrize("optimizer", [0, 1, 2, 3, 4])
def test_threaded_train_epoch_matches_reference(threaded, dtype, batch_size, optimizer):
    check_train_epoch(threaded, dtype, batch_size, optimizer, batch_size + 10 * optimizer, 0)


def check_train_epoch(K, dtype, batch_size, optimizer, seed, t):
    """``K.train_epoch`` on a 37-19-6 net (tanh, sigmoid; L2) against the reference's."""
    rng = np.random.default_rng(seed)
    params, sizes, kinds = make_net(rng, [37, 19, 6], [3, 1], dtype, scale=0.3)
    X, Y = make_data(rng, 150, 37, 6, dtype)
    order = rng.permutation(150).astype(np.int64)
    got_p, want_p = params.copy(), params.copy()
    got_s, want_s = np.zeros(2 * params.size, dtype), np.zeros(2 * params.size, dtype)
    args = (0, X, Y, order, batch_size, optimizer, 0.05, 0.9, 0.9, 1e-8, 1, 0.01)
    got = K.train_epoch(got_p, sizes, kinds, *args, got_s, t)
    want = REF.train_epoch(want_p, sizes, kinds, *args, want_s, t)
    # 150 sequential float32 updates (momentum, RMSprop) accumulate rounding: looser there
    rtol = 1e-8 if dtype == np.float64 else 2e-4
    assert_close(got, want, rtol=1e-10 if dtype == np.float64 else 1e-4)
    assert_close(got_p, want_p, rtol=rtol)
    assert_close(got_s, want_s, rtol=rtol)


@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_threaded_forward_and_backprop_match_reference(threaded, dtype):
    check_forward_and_backprop(threaded, dtype, threaded.backprop_samples, 3)


def check_forward_and_backprop(K, dtype, backprop, seed):
    """``K.forward_network`` and ``backprop`` (``K``'s per-sample or batch form) on a
    41-23-11-4 net against the reference's."""
    rng = np.random.default_rng(seed)
    params, sizes, kinds = make_net(rng, [41, 23, 11, 4], [2, 3, 4], dtype, scale=0.3)
    X, Y = make_data(rng, 301, 41, 4, dtype)
    out, ref = np.empty((301, 4), dtype), np.empty((301, 4), dtype)
    K.forward_network(params, sizes, kinds, X, out)
    REF.forward_network(params, sizes, kinds, X, ref)
    assert_close(out, ref)
    g, want_g = np.empty_like(params), np.empty_like(params)
    J = backprop(params, sizes, kinds, 2, X, Y, g)
    want = REF.backprop_batch(params, sizes, kinds, 2, X, Y, want_g)
    assert_close(J, want, rtol=1e-10 if dtype == np.float64 else 1e-5)
    assert_close(g, want_g, rtol=None if dtype == np.float64 else 3e-5)


@cython_built
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_are_deterministic_for_a_thread_count(sparse, threads):
    """Same inputs, same thread count: the same bits, run after run."""
    mlp = sparse
    old = mlp._set_threading(num_threads=threads, min_work=0, min_elems=0, big_work=0)
    try:
        rng = np.random.default_rng(11)
        params, sizes, kinds = make_net(rng, [50, 30, 10], [1, 1], np.float32, scale=0.3)
        X, Y = make_data(rng, 400, 50, 10, np.float32)
        order = rng.permutation(400).astype(np.int64)
        runs = []
        for _ in range(3):
            p, s = params.copy(), np.zeros(2 * params.size, params.dtype)
            J = mlp.train_epoch(p, sizes, kinds, 0, X, Y, order, 64, 1, 0.1, 0.9, 0.9, 1e-8,
                                0, 0.0, s, 0)
            g = np.empty_like(params)
            Jg = mlp.backprop_samples(params, sizes, kinds, 0, X, Y, g)
            runs.append((J, p, Jg, g))
        for J, p, Jg, g in runs[1:]:
            assert J == runs[0][0] and Jg == runs[0][2]
            np.testing.assert_array_equal(p, runs[0][1])
            np.testing.assert_array_equal(g, runs[0][3])
    finally:
        mlp._set_threading(**old)


@cython_built
def test_thread_counts_agree_to_rounding(sparse):
    mlp = sparse
    rng = np.random.default_rng(12)
    params, sizes, kinds = make_net(rng, [64, 32, 10], [1, 1], np.float64, scale=0.3)
    X, Y = make_data(rng, 500, 64, 10, np.float64)
    grads = []
    for threads in (1, 2, 4):
        old = mlp._set_threading(num_threads=threads, min_work=0, min_elems=0, big_work=0)
        try:
            g = np.empty_like(params)
            mlp.backprop_samples(params, sizes, kinds, 0, X, Y, g)
            grads.append(g)
        finally:
            mlp._set_threading(**old)
    for g in grads[1:]:
        assert_close(g, grads[0])


@cython_built
@pytest.mark.parametrize("path", ["sparse", "dense"])
def test_online_sgd_in_place_matches_reference(mlp, path):
    """batch_size 1 + plain SGD + no penalty takes the in-place path (rows of non-zero inputs
    only); it must be the reference's step exactly in float64, to rounding."""
    rng = np.random.default_rng(13)
    params, sizes, kinds = make_net(rng, [30, 12, 12, 5], [2, 1, 4], np.float64, scale=0.3)
    X, Y = make_data(rng, 120, 30, 5, np.float64)
    order = rng.permutation(120).astype(np.int64)
    a, b = params.copy(), params.copy()
    sa, sb = np.zeros(2 * a.size), np.zeros(2 * b.size)
    with _paths.use_path(path):
        ja = mlp.train_epoch(a, sizes, kinds, 2, X, Y, order, 1, 0, 0.1, 0.9, 0.9, 1e-8, 0, 0.0,
                             sa, 0)
    jb = REF.train_epoch(b, sizes, kinds, 2, X, Y, order, 1, 0, 0.1, 0.9, 0.9, 1e-8, 0, 0.0, sb, 0)
    assert_close(ja, jb)
    assert_close(a, b)
    assert not sa.any()  # sgd leaves the state alone


@cython_built
def test_dense_wide_input_blocks(sparse):
    """Inputs wider than the zero-block size with no zeros, and all-zero rows."""
    mlp = sparse
    rng = np.random.default_rng(14)
    params, sizes, kinds = make_net(rng, [70, 8, 3], [3, 1], np.float32)
    X = rng.standard_normal((20, 70)).astype(np.float32)
    X[3] = 0.0
    X[4, :33] = 0.0
    X[5, ::2] = -0.0
    out, ref = np.empty((20, 3), np.float32), np.empty((20, 3), np.float32)
    mlp.forward_network(params, sizes, kinds, X, out)
    REF.forward_network(params, sizes, kinds, X, ref)
    assert_close(out, ref)


@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_chunks_on_one_thread_give_the_same_bits(sparse, dtype):
    """Small batches run their chunks on threads or on one thread, as measured at run time:
    both ways must give exactly the same numbers."""
    mlp = sparse
    rng = np.random.default_rng(15)
    params, sizes, kinds = make_net(rng, [40, 20, 7], [1, 4], dtype, scale=0.3)
    X, Y = make_data(rng, 333, 40, 7, dtype)
    order = rng.permutation(333).astype(np.int64)
    results = []
    for small_batches in (True, False):
        old = mlp._set_threading(num_threads=3, min_work=0, min_elems=0, big_work=1e300,
                                 small_batches=small_batches)
        try:
            p, s = params.copy(), np.zeros(2 * params.size, params.dtype)
            J = mlp.train_epoch(p, sizes, kinds, 2, X, Y, order, 50, 2, 0.01, 0.9, 0.9, 1e-8,
                                1, 0.01, s, 0)
            results.append((J, p, s))
        finally:
            mlp._set_threading(**old)
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])


@pytest.mark.parametrize("t_serial, t_parallel, threads", [
    (1.0, 0.5, True),     # the threads twice as fast
    (1.0, 0.95, True),    # within the noise: the threads stay (they used to need 10 %)
    (1.0, 1.05, True),    # one thread barely faster: not enough to give up the threads
    (1.0, 1.2, False),    # one thread clearly faster (the other core taken)
    (1.0, 3.0, False),
])
def test_measurement_keeps_threads_unless_one_thread_is_clearly_faster(mlp, t_serial,
                                                                       t_parallel, threads):
    """The threads-or-not measurement of small batches picks one thread only when it
    measured at least 10 % faster per multiply-add."""
    assert mlp._probe_choice(t_serial, t_parallel) is threads


@pytest.fixture
def fresh_probe(mlp):
    """The threads-or-not measurement restarted: the next small batch begins it."""
    old = mlp._set_threading(small_batches=True)
    mlp._set_threading(small_batches=None)
    yield mlp
    mlp._set_threading(**old)


@pytest.mark.parametrize("parallel_seconds, threads", [(0.5, True), (2.0, False)])
def test_measurement_times_both_ways_then_decides(fresh_probe, parallel_seconds, threads):
    """One warm-up batch and eight timed ones on one thread, then the same on the threads;
    then the choice, from the two medians."""
    mlp = fresh_probe
    work = 1e6
    ran = [mlp._probe_batch(work, 1.0) for _ in range(9)]
    assert [r[0] for r in ran] == [False] * 9 and ran[-1][1] == 2
    ran = [mlp._probe_batch(work, parallel_seconds) for _ in range(9)]
    assert [r[0] for r in ran] == [True] * 9 and ran[-1][1] == 0
    assert mlp._dense_probe_result()[2] is threads
    assert mlp._dense_probe_result()[:2] == (1.0 / work, parallel_seconds / work)


def test_measurement_starts_again_when_the_work_changes(fresh_probe):
    """One thread timed on one workload is never compared with the threads timed on
    another: when the batches' work changes, the measurement starts again on the new one."""
    mlp = fresh_probe
    for _ in range(9):
        mlp._probe_batch(2e6, 1.0)                # one thread timed on batches of 2e6
    assert mlp._probe_batch(1e6, 0.1) == (True, 1)  # another workload: timing one thread again
    ran = [mlp._probe_batch(1e6, 0.3) for _ in range(8)]
    assert [r[0] for r in ran] == [False] * 8 and ran[-1][1] == 2
    ran = [mlp._probe_batch(1e6, 0.1) for _ in range(9)]
    assert [r[0] for r in ran] == [True] * 9 and ran[-1][1] == 0
    # one thread 0.3 s and the threads 0.1 s a batch of 1e6: no trace of the 2e6 batches
    t_serial, t_parallel, threads = mlp._dense_probe_result()
    assert threads and t_serial == pytest.approx(0.3 / 1e6) and t_parallel == pytest.approx(
        0.1 / 1e6)


# ------------------------------------------------------------------ the two paths
PATHS = ["dense", "sparse"]
OUTPUT_CASES = {"sigmoid-ce": (1, 0), "softmax-logloss": (4, 2), "linear-quad": (0, 1),
                "tanh-quad": (3, 1)}


def make_inputs(rng, m, n, K, dtype, zeros, labels=True):
    X = rng.standard_normal((m, n))
    X[rng.random((m, n)) < zeros] = 0.0
    if labels:
        Y = np.zeros((m, K))
        Y[np.arange(m), rng.integers(0, K, m)] = 1
    else:
        Y = rng.random((m, K))
    return X.astype(dtype), Y.astype(dtype)


@cython_built
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("zeros", [0.0, 0.8], ids=["dense-X", "sparse-X"])
@pytest.mark.parametrize("output", sorted(OUTPUT_CASES))
def test_paths_forward_and_backprop_match_reference(mlp, path, dtype, zeros, output):
    rng = np.random.default_rng(hash((path, zeros, output)) % 2**32)
    last, loss_kind = OUTPUT_CASES[output]
    params, sizes, kinds = make_net(rng, [23, 17, 9, 4], [3, 2, last], dtype, scale=0.3)
    X, Y = make_inputs(rng, 45, 23, 4, dtype, zeros, labels=loss_kind != 1)
    out, ref = np.empty((45, 4), dtype), np.empty((45, 4), dtype)
    want_g = np.empty_like(params)
    want = REF.backprop_batch(params, sizes, kinds, loss_kind, X, Y, want_g)
    REF.forward_network(params, sizes, kinds, X, ref)
    with _paths.use_path(path):
        mlp.forward_network(params, sizes, kinds, X, out)
        assert_close(out, ref, err_msg=f"forward_network, {path} path")
        for kern in ("backprop_samples", "backprop_batch"):
            g = np.full_like(params, np.nan)
            J = getattr(mlp, kern)(params, sizes, kinds, loss_kind, X, Y, g)
            assert_close(J, want, dtype=dtype, err_msg=f"{kern} loss, {path} path")
            assert_close(g, want_g, rtol=None if dtype == np.float64 else 3e-5,
                         err_msg=f"{kern} gradient, {path} path")


def _train_both(mlp, path, params, sizes, kinds, loss_kind, X, Y, order, bs, opt, pen, t,
                lr=0.05):
    dtype = params.dtype
    got_p, want_p = params.copy(), params.copy()
    state0 = (np.abs(np.random.default_rng(7).standard_normal(2 * params.size)) * 0.01
              ).astype(dtype)
    got_s, want_s = state0.copy(), state0.copy()
    args = (loss_kind, X, Y, order, bs, opt, lr, 0.9, 0.95, 1e-7, pen, 0.01)
    with _paths.use_path(path):
        got = mlp.train_epoch(got_p, sizes, kinds, *args, got_s, t)
    want = REF.train_epoch(want_p, sizes, kinds, *args, want_s, t)
    return (got, got_p, got_s), (want, want_p, want_s)


@cython_built
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("zeros", [0.0, 0.7], ids=["dense-X", "sparse-X"])
@pytest.mark.parametrize("optimizer", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
@pytest.mark.parametrize("penalty", [0, 1, 2])
def test_paths_train_epoch_match_reference(mlp, path, zeros, optimizer, batch_size, penalty):
    rng = np.random.default_rng(optimizer * 1000 + batch_size + 10 * penalty)
    params, sizes, kinds = make_net(rng, [21, 13, 6, 5], [1, 3, 1], np.float64, scale=0.3)
    X, Y = make_inputs(rng, 90, 21, 5, np.float64, zeros)
    order = rng.permutation(90).astype(np.int64)
    (got, gp, gs), (want, wp, ws) = _train_both(mlp, path, params, sizes, kinds, 0, X, Y, order,
                                                batch_size, optimizer, penalty, t=3)
    # RMSprop and Adam divide by square roots of running squares: rounding is amplified
    rtol = 1e-8 if optimizer in (2, 3) else None
    assert_close(got, want, rtol=rtol, err_msg="loss")
    assert_close(gp, wp, rtol=rtol, err_msg="params")
    assert_close(gs, ws, rtol=rtol, err_msg="state")


@cython_built
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("optimizer", [0, 1, 3, 4])
@pytest.mark.parametrize("batch_size", [1, 16, 200])
def test_paths_train_epoch_float32(mlp, path, optimizer, batch_size):
    rng = np.random.default_rng(optimizer + batch_size)
    params, sizes, kinds = make_net(rng, [33, 20, 7], [2, 4], np.float32, scale=0.3)
    X, Y = make_inputs(rng, 200, 33, 7, np.float32, 0.5)
    order = rng.permutation(200).astype(np.int64)
    (got, gp, gs), (want, wp, ws) = _train_both(mlp, path, params, sizes, kinds, 2, X, Y, order,
                                                batch_size, optimizer, 0, t=0, lr=0.01)
    assert_close(got, want, rtol=1e-4, dtype=np.float32)
    assert_close(gp, wp, rtol=2e-4)
    assert_close(gs, ws, rtol=2e-4)


@cython_built
@pytest.mark.parametrize("path", PATHS)
def test_adam_step_count_is_honoured(mlp, path):
    """Adam's bias correction depends on ``t``: two epochs at t=0 and t=25 differ, and each
    is the reference's."""
    rng = np.random.default_rng(21)
    params, sizes, kinds = make_net(rng, [12, 8, 3], [3, 1], np.float64, scale=0.3)
    X, Y = make_inputs(rng, 40, 12, 3, np.float64, 0.3)
    order = rng.permutation(40).astype(np.int64)
    results = []
    for t in (0, 25):
        for bs in (1, 10):
            (got, gp, _), (want, wp, _) = _train_both(mlp, path, params, sizes, kinds, 0, X, Y,
                                                      order, bs, 3, 0, t)
            assert_close(got, want)
            assert_close(gp, wp)
            results.append(gp)
    assert not np.allclose(results[0], results[2]) and not np.allclose(results[1], results[3])


@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("optimizer", [3, 4])
def test_optimizer_step_adam_nesterov(mlp, dtype, optimizer):
    rng = np.random.default_rng(optimizer)
    p = rng.standard_normal(777).astype(dtype)
    g = rng.standard_normal(777).astype(dtype)
    s = np.abs(rng.standard_normal(2 * 777)).astype(dtype)
    got, want = [p.copy(), s.copy()], [p.copy(), s.copy()]
    for t in range(4):
        mlp.optimizer_step(optimizer, got[0], g, got[1], 0.1, 0.9, 0.99, 1e-8, t)
        REF.optimizer_step(optimizer, want[0], g, want[1], 0.1, 0.9, 0.99, 1e-8, t)
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])


@cython_built
@pytest.mark.parametrize("rows", [1, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_dense_path_in_blocks_of_rows(mlp, monkeypatch, rows, dtype):
    """Batches bigger than the work buffers are done in blocks, the gradients added up."""
    monkeypatch.setattr(mlp, "_DENSE_ROWS", rows)
    rng = np.random.default_rng(rows)
    params, sizes, kinds = make_net(rng, [15, 11, 4], [3, 1], dtype, scale=0.3)
    X, Y = make_inputs(rng, 37, 15, 4, dtype, 0.2)
    out, ref = np.empty((37, 4), dtype), np.empty((37, 4), dtype)
    g, want_g = np.empty_like(params), np.empty_like(params)
    with _paths.use_path("dense"):
        mlp.forward_network(params, sizes, kinds, X, out)
        J = mlp.backprop_batch(params, sizes, kinds, 0, X, Y, g)
    REF.forward_network(params, sizes, kinds, X, ref)
    want = REF.backprop_batch(params, sizes, kinds, 0, X, Y, want_g)
    assert_close(out, ref)
    assert_close(J, want, dtype=dtype)
    assert_close(g, want_g, rtol=None if dtype == np.float64 else 3e-5)
    order = rng.permutation(37).astype(np.int64)
    (got, gp, gs), (want, wp, ws) = _train_both(mlp, "dense", params, sizes, kinds, 0, X, Y,
                                                order, 16, 1, 1, 0)
    assert_close(got, want, dtype=dtype)
    assert_close(gp, wp, rtol=None if dtype == np.float64 else 1e-4)


@cython_built
@pytest.mark.parametrize("kind", ["full", "range", "repeats"])
def test_dense_batch_rows_used_in_place(mlp, kind):
    """A batch whose rows are a contiguous range of X, in any order, is used in place (the
    sum over its samples does not depend on their order); a batch with repeated rows is
    gathered.  Either way: the reference's numbers."""
    rng = np.random.default_rng(31)
    params, sizes, kinds = make_net(rng, [19, 9, 3], [1, 1], np.float64, scale=0.3)
    X, Y = make_inputs(rng, 80, 19, 3, np.float64, 0.0)
    if kind == "full":
        order, bs = rng.permutation(80), 80
    elif kind == "range":
        order, bs = 10 + rng.permutation(50), 50
    else:
        order, bs = rng.integers(0, 80, 60), 60
    order = order.astype(np.int64)
    (got, gp, _), (want, wp, _) = _train_both(mlp, "dense", params, sizes, kinds, 0, X, Y,
                                              order, bs, 0, 0, 0)
    assert_close(got, want)
    assert_close(gp, wp)


@cython_built
def test_dense_path_leaves_the_blas_thread_count_alone(mlp):
    from fastnet._cython import _blas
    before = _blas.info()["threads"]
    rng = np.random.default_rng(2)
    params, sizes, kinds = make_net(rng, [30, 10, 3], [1, 1], np.float32)
    X, Y = make_inputs(rng, 64, 30, 3, np.float32, 0.0)
    with _paths.use_path("dense"):
        mlp.train_epoch(params, sizes, kinds, 0, X, Y, np.arange(64, dtype=np.int64), 8, 0,
                        0.1, 0.9, 0.9, 1e-8, 0, 0.0, np.zeros(2 * params.size, np.float32), 0)
    assert _blas.info()["threads"] == before


@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_hypothesis_like_shapes_on_both_paths(mlp, dtype):
    """Odd widths (1 to 70, not multiples of the vector width), depths 1 to 3."""
    rng = np.random.default_rng(99)
    for trial in range(12):
        L = 1 + trial % 3
        widths = [int(w) for w in rng.integers(1, 71, L + 1)]
        last, loss_kind = [(1, 0), (0, 1), (4, 2)][trial % 3]
        if last == 4:
            widths[-1] = max(widths[-1], 2)
        kinds = [int(k) for k in rng.integers(0, 4, L - 1)] + [last]
        params, sizes, kinds = make_net(rng, widths, kinds, dtype, scale=0.3)
        m = int(rng.integers(1, 40))
        X, Y = make_inputs(rng, m, widths[0], widths[-1], dtype, 0.5, labels=loss_kind != 1)
        want_g = np.empty_like(params)
        want = REF.backprop_batch(params, sizes, kinds, loss_kind, X, Y, want_g)
        for path in PATHS:
            with _paths.use_path(path):
                g = np.empty_like(params)
                J = mlp.backprop_batch(params, sizes, kinds, loss_kind, X, Y, g)
            assert_close(J, want, rtol=1e-9 if dtype == np.float64 else 1e-4)
            assert_close(g, want_g, rtol=None if dtype == np.float64 else 3e-5,
                         err_msg=f"{path} path, sizes {widths}, kinds {kinds}")
        order = rng.permutation(m).astype(np.int64)
        for path in PATHS:
            (got, gp, _), (wnt, wp, _) = _train_both(mlp, path, params, sizes, kinds, loss_kind,
                                                     X, Y, order, 1, 0, 0, 0, lr=0.01)
            assert_close(gp, wp, rtol=None if dtype == np.float64 else 1e-4,
                         err_msg=f"online, {path} path, sizes {widths}")


# ------------------------------------------------------------------ elementwise math
@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", [1, 3], ids=["sigmoid", "tanh"])
def test_branch_free_exp_accuracy(dtype, kind):
    """sigmoid and tanh (Cephes-style exp and tanh) to a few ulp of the float64 truth
    (float32), or to ~1e-15 relative (float64)."""
    K = kernels_of("cython")
    z = np.concatenate([np.linspace(-90, 90, 200001), np.linspace(-1, 1, 20001),
                        np.geomspace(1e-30, 1, 2001), -np.geomspace(1e-30, 1, 2001)])
    Z = z.astype(dtype)
    out = np.empty_like(Z)
    K.activation(kind, Z, out)
    z64 = Z.astype(np.float64)
    if kind == 3:
        truth = np.tanh(z64)
    else:
        truth = np.where(z64 >= 0, 1 / (1 + np.exp(-np.abs(z64))),
                         np.exp(-np.abs(z64)) / (1 + np.exp(-np.abs(z64))))
    err = np.abs(out.astype(np.float64) - truth)
    if dtype == np.float32:
        ulp = np.spacing(np.abs(truth).astype(np.float32)).astype(np.float64)
        ulp = np.maximum(ulp, np.float64(np.finfo(np.float32).smallest_subnormal))
        assert np.max(err / ulp) <= 4
    else:
        assert np.max(err / np.maximum(np.abs(truth), 1e-300)) < 1e-15


@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_activations_of_nan_and_infinities_are_numpys(dtype):
    K = kernels_of("cython")
    Z = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 88.0, -88.0, 710.0]],
                 dtype=dtype)
    for kind in (1, 2, 3, 4):
        out, ref = np.empty_like(Z), np.empty_like(Z)
        with np.errstate(all="ignore"):
            REF.activation(kind, Z, ref)
        K.activation(kind, Z, out)
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=0, equal_nan=True,
                                   err_msg=f"activation {kind}")
