"""Cython-specific behaviour of the ``cython`` backend.

* without the compiled extension fastnet still imports and works, does not list
  ``cython``, and asking for it says the extension is missing and how to build it;
* float32 and float64 are both compiled (fused types): outputs keep the input dtype;
* the ``def`` wrappers refuse wrong dtypes, non-contiguous and mis-shaped arrays with a
  clear error instead of reading out of bounds;
* the threaded paths (forced on for small problems) agree with the reference, and give
  the same bits on every run (per-thread buffers summed in a fixed order).

Nothing is compiled here: the tests use what ``pip install`` / ``build_ext`` built.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnet
from fastnet import _backend
from fastnet._params import n_params
from conftest import REPO, assert_close, kernels_of

cython_built = pytest.mark.skipif(
    "cython" not in fastnet.available_backends(),
    reason="the cython extension is not built (pip install -e . or "
           "python setup.py build_ext --inplace)")

REF = kernels_of("reference")


@pytest.fixture
def mlp():
    from fastnet._cython import mlp
    return mlp


@pytest.fixture
def threaded(mlp):
    """Force the threaded code paths even on tiny problems (2 threads, no work minimum)."""
    old = mlp._set_threading(num_threads=2, min_work=0, min_elems=0, big_work=0)
    yield mlp
    mlp._set_threading(**old)


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
@pytest.mark.parametrize("optimizer", [0, 1, 2])
def test_threaded_train_epoch_matches_reference(threaded, dtype, batch_size, optimizer):
    rng = np.random.default_rng(batch_size + 10 * optimizer)
    params, sizes, kinds = make_net(rng, [37, 19, 6], [3, 1], dtype, scale=0.3)
    X, Y = make_data(rng, 150, 37, 6, dtype)
    order = rng.permutation(150).astype(np.int64)
    got_p, want_p = params.copy(), params.copy()
    got_s, want_s = np.zeros(2 * params.size, dtype), np.zeros(2 * params.size, dtype)
    args = (0, X, Y, order, batch_size, optimizer, 0.05, 0.9, 0.9, 1e-8, 1, 0.01)
    got = threaded.train_epoch(got_p, sizes, kinds, *args, got_s, 0)
    want = REF.train_epoch(want_p, sizes, kinds, *args, want_s, 0)
    # 150 sequential float32 updates (momentum, RMSprop) accumulate rounding: looser there
    rtol = 1e-8 if dtype == np.float64 else 2e-4
    assert_close(got, want, rtol=1e-10 if dtype == np.float64 else 1e-4)
    assert_close(got_p, want_p, rtol=rtol)
    assert_close(got_s, want_s, rtol=rtol)


@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_threaded_forward_and_backprop_match_reference(threaded, dtype):
    rng = np.random.default_rng(3)
    params, sizes, kinds = make_net(rng, [41, 23, 11, 4], [2, 3, 4], dtype, scale=0.3)
    X, Y = make_data(rng, 301, 41, 4, dtype)
    out, ref = np.empty((301, 4), dtype), np.empty((301, 4), dtype)
    threaded.forward_network(params, sizes, kinds, X, out)
    REF.forward_network(params, sizes, kinds, X, ref)
    assert_close(out, ref)
    g, want_g = np.empty_like(params), np.empty_like(params)
    J = threaded.backprop_samples(params, sizes, kinds, 2, X, Y, g)
    want = REF.backprop_batch(params, sizes, kinds, 2, X, Y, want_g)
    assert_close(J, want, rtol=1e-10 if dtype == np.float64 else 1e-5)
    assert_close(g, want_g, rtol=None if dtype == np.float64 else 3e-5)


@cython_built
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_are_deterministic_for_a_thread_count(mlp, threads):
    """Same inputs, same thread count: the same bits, run after run."""
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
def test_thread_counts_agree_to_rounding(mlp):
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
def test_online_sgd_in_place_matches_reference(mlp):
    """batch_size 1 + plain SGD + no penalty takes the in-place path (rows of non-zero inputs
    only); it must be the reference's step exactly in float64, to rounding."""
    rng = np.random.default_rng(13)
    params, sizes, kinds = make_net(rng, [30, 12, 12, 5], [2, 1, 4], np.float64, scale=0.3)
    X, Y = make_data(rng, 120, 30, 5, np.float64)
    order = rng.permutation(120).astype(np.int64)
    a, b = params.copy(), params.copy()
    sa, sb = np.zeros(2 * a.size), np.zeros(2 * b.size)
    ja = mlp.train_epoch(a, sizes, kinds, 2, X, Y, order, 1, 0, 0.1, 0.9, 0.9, 1e-8, 0, 0.0, sa, 0)
    jb = REF.train_epoch(b, sizes, kinds, 2, X, Y, order, 1, 0, 0.1, 0.9, 0.9, 1e-8, 0, 0.0, sb, 0)
    assert_close(ja, jb)
    assert_close(a, b)
    assert not sa.any()  # sgd leaves the state alone


@cython_built
def test_dense_wide_input_blocks(mlp):
    """Inputs wider than the zero-block size with no zeros, and all-zero rows."""
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
def test_chunks_on_one_thread_give_the_same_bits(mlp, dtype):
    """Small batches run their chunks on threads or on one thread, as measured at run time:
    both ways must give exactly the same numbers."""
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
