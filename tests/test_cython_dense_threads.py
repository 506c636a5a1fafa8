"""The Cython backend's dense path on its threads: small batches cut in parts (every product
and the step by rows of the weights, part s on thread s), plain SGD's step fused into the
weight-gradient GEMMs, larger batches in chunks of rows, and the rules that choose between
them.  Each against the reference, and the same bits on threads or not.

(Split from ``test_cython_backend.py``, whose fixtures and helpers it uses.)
"""
import numpy as np
import pytest

from fastnet import _paths
from fastnet._params import n_params
from conftest import PARTS_NETS, PARTS_NETS_DEEP, assert_close, parts_problem
from test_cython_backend import (REF, check_forward_and_backprop, check_train_epoch,
                                 cython_built, make_data, make_net)


@pytest.fixture
def mlp():
    """The mlp module in the variant the backend uses."""
    from fastnet._cython import _variants
    return _variants.load("mlp")


# ------------------------------------------------------------- the dense path's threads
@pytest.fixture
def dense_threaded(mlp):
    """The dense path with its chunks on 2 threads even for tiny batches."""
    old = mlp._set_threading(num_threads=2, dense_min_work=0, dense_min_rows=1, min_elems=0,
                             small_batches=True, split_max_rows=0, split_max_rows_wide=0)
    with _paths.use_path("dense"):
        yield mlp
    mlp._set_threading(**old)


@pytest.fixture(params=[(2, True), (3, True), (2, False)], ids=["2t", "3t", "2t-serial"])
def dense_parts(request, mlp):
    """The dense path with every training batch's GEMMs cut in parts (2 or 3), on the threads
    or run one after the other."""
    threads, small_batches = request.param
    old = mlp._set_threading(num_threads=threads, split_max_rows=1 << 30, split_min_work=0,
                             split_min_gemm=0, min_elems=0, small_batches=small_batches)
    with _paths.use_path("dense"):
        yield mlp
    mlp._set_threading(**old)


@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@PARTS_NETS
@pytest.mark.parametrize("batch_size", [7, 32, 100])
@pytest.mark.parametrize("in_order", [False, True], ids=["shuffled", "in-order"])
@pytest.mark.parametrize("opt_pen", [(1, 1), (0, 0), (0, 1), (0, 2)],
                         ids=["momentum-L2", "sgd", "sgd-L2", "sgd-L1"])
def test_dense_parts_train_epoch_matches_reference(dense_parts, dtype, net, batch_size,
                                                   in_order, opt_pen):
    """A batch's GEMMs cut by columns (forward) and by rows of the weights (backward) give
    the reference's numbers, gathered or used in place, on threads or not; plain SGD without
    L1 has its step fused into the weight-gradient GEMMs (``dense_backward``)."""
    params, sizes, kinds, loss, X, Y, order = parts_problem(net, dtype, batch_size, in_order,
                                                           zeros=0.6)
    got_p, want_p = params.copy(), params.copy()
    got_s, want_s = np.zeros(2 * params.size, dtype), np.zeros(2 * params.size, dtype)
    opt, pen = opt_pen
    args = (loss, X, Y, order, batch_size, opt, 0.05, 0.9, 0.9, 1e-8, pen, 0.01)
    got = dense_parts.train_epoch(got_p, sizes, kinds, *args, got_s, 0)
    want = REF.train_epoch(want_p, sizes, kinds, *args, want_s, 0)
    assert_close(got, want, rtol=1e-10 if dtype == np.float64 else 1e-4)
    rtol = 1e-8 if dtype == np.float64 else 2e-4
    assert_close(got_p, want_p, rtol=rtol)
    assert_close(got_s, want_s, rtol=rtol)


@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("penalty", [0, 1], ids=["none", "L2"])
@pytest.mark.parametrize("mode", ["parts", "one-thread"])
def test_fused_sgd_step_is_the_separate_step(mlp, dtype, penalty, mode):
    """Plain SGD's step fused into the weight-gradient GEMMs (W = (1 - lr lam) W - (lr/b)
    A^T D, the biases stepped as they are summed) gives, to rounding, what the separate pass
    gives: momentum with mu = 0 (v = -lr g, w + v: the same numbers as that pass's SGD)."""
    params, sizes, kinds, loss, X, Y, order = parts_problem(PARTS_NETS_DEEP, dtype, 5, False)
    out = []
    for opt in (0, 1):
        if mode == "parts":
            old = mlp._set_threading(num_threads=2, split_max_rows=1 << 30, split_min_work=0,
                                     split_min_gemm=0, small_batches=True)
        else:
            old = mlp._set_threading(num_threads=1)
        try:
            p, s = params.copy(), np.zeros(2 * params.size, dtype)
            with _paths.use_path("dense"):
                J = mlp.train_epoch(p, sizes, kinds, loss, X, Y, order, 32, opt, 0.05, 0.0,
                                    0.9, 1e-8, penalty, 0.01, s, 0)
            out.append((J, p))
        finally:
            mlp._set_threading(**old)
    (J0, p0), (J1, p1) = out
    assert not np.array_equal(p0, params)
    assert_close(J0, J1, rtol=1e-12 if dtype == np.float64 else 1e-5)
    assert_close(p0, p1, rtol=1e-10 if dtype == np.float64 else 1e-5)


@cython_built
def test_dense_parts_give_the_same_bits_on_threads_or_not(mlp):
    """The parts of a batch's GEMMs run on the threads or one after the other (measured at
    run time): exactly the same numbers either way."""
    rng = np.random.default_rng(21)
    params, sizes, kinds = make_net(rng, [60, 48, 7], [2, 1], np.float32, scale=0.3)
    X, Y = make_data(rng, 200, 60, 7, np.float32)
    order = rng.permutation(200).astype(np.int64)
    results = []
    for small_batches in (True, False):
        old = mlp._set_threading(num_threads=2, split_min_work=0, split_min_gemm=0,
                                 small_batches=small_batches)
        try:
            p, s = params.copy(), np.zeros(2 * params.size, params.dtype)
            with _paths.use_path("dense"):
                J = mlp.train_epoch(p, sizes, kinds, 0, X, Y, order, 32, 0, 0.1, 0.9, 0.9,
                                    1e-8, 0, 0.0, s, 0)
            results.append((J, p))
        finally:
            mlp._set_threading(**old)
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("batch_size", [5, 16, 200])
@pytest.mark.parametrize("optimizer", [0, 1, 3])
def test_dense_threaded_train_epoch_matches_reference(dense_threaded, dtype, batch_size,
                                                      optimizer):
    check_train_epoch(dense_threaded, dtype, batch_size, optimizer, batch_size + 7 * optimizer,
                      2)


@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_dense_threaded_forward_and_backprop_match_reference(dense_threaded, dtype):
    check_forward_and_backprop(dense_threaded, dtype, dense_threaded.backprop_batch, 4)


@cython_built
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_dense_chunks_on_one_thread_give_the_same_bits(mlp, dtype):
    """The dense path's chunks run on threads or all on one thread (measured at run time
    for small batches): exactly the same numbers either way, run after run."""
    rng = np.random.default_rng(16)
    params, sizes, kinds = make_net(rng, [40, 20, 7], [1, 4], dtype, scale=0.3)
    X, Y = make_data(rng, 333, 40, 7, dtype)
    order = rng.permutation(333).astype(np.int64)
    results = []
    for small_batches in (True, False, True):
        old = mlp._set_threading(num_threads=3, dense_min_work=0, dense_min_rows=1,
                                 min_elems=0, small_batches=small_batches)
        try:
            p, s = params.copy(), np.zeros(2 * params.size, params.dtype)
            with _paths.use_path("dense"):
                J = mlp.train_epoch(p, sizes, kinds, 2, X, Y, order, 50, 2, 0.01, 0.9, 0.9,
                                    1e-8, 1, 0.01, s, 0)
            results.append((J, p, s))
        finally:
            mlp._set_threading(**old)
    for J, p, s in results[1:]:
        assert J == results[0][0]
        np.testing.assert_array_equal(p, results[0][1])
        np.testing.assert_array_equal(s, results[0][2])


@cython_built
def test_small_dense_batches_are_cut_in_parts(mlp):
    """Training batches of up to ``split_max_rows`` rows (64 by default), or up to
    ``split_max_rows_wide`` (128) for nets of at least 1e5 multiply-adds a sample, with
    enough work run as one block whose GEMMs are cut in one part per thread; bigger ones, or
    a thread count of one, are cut into chunks of rows."""
    from fastnet._cython import _checks as chk
    rng = np.random.default_rng(2)
    params, sizes, kinds = make_net(rng, [784, 128, 10], [2, 1], np.float32)
    lay = chk.Layout("train_epoch", params, sizes, kinds)
    work = float(lay.n_params)                       # 101,770: a wide net
    narrow = float(n_params(np.array([784, 50, 10])))   # 39,760
    old = mlp._set_threading(num_threads=2)
    try:
        assert [mlp._dense_parts(b, work) for b in (4, 32, 64, 65, 128, 129)] == \
            [1, 2, 2, 2, 2, 1]
        assert [mlp._dense_parts(b, narrow) for b in (32, 64, 65, 128)] == [2, 2, 1, 1]
        assert [mlp._plan(lay, b, work, True)[0] for b in (32, 128, 129, 200)] == [1, 1, 2, 2]
        mlp._set_threading(split_max_rows=0, split_max_rows_wide=0)
        assert mlp._dense_parts(32, work) == 1
        mlp._set_threading(split_max_rows=64, split_max_rows_wide=128, num_threads=1)
        assert mlp._dense_parts(32, work) == 1
        mlp._set_threading(num_threads=3)
        assert mlp._dense_parts(32, work) == 3
    finally:
        mlp._set_threading(**old)


def test_dense_chunks_have_enough_rows(mlp):
    """A dense batch is cut into one chunk per thread only when each gets at least
    ``dense_min_rows`` rows (16 by default): on two threads a batch of 31 stays one chunk, one
    of 32 becomes two; with 64, a batch of 127 stays one and 128 becomes two."""
    from fastnet._cython import _checks as chk
    rng = np.random.default_rng(2)
    params, sizes, kinds = make_net(rng, [784, 256, 128, 10], [3, 3, 1], np.float32)
    lay = chk.Layout("train_epoch", params, sizes, kinds)
    old = mlp._set_threading(num_threads=2)
    try:
        assert [mlp._plan(lay, b, float(lay.n_params), False)[0] for b in (31, 32)] == [1, 2]
        mlp._set_threading(dense_min_rows=64)
        assert [mlp._plan(lay, b, float(lay.n_params), False)[0] for b in (32, 127, 128)] == \
            [1, 1, 2]
    finally:
        mlp._set_threading(**old)
