"""Every kernel of the contract, on every available backend, against fastnet.reference.

Tolerances: float64 1e-10 relative, float32 1e-5 (``assert_close``).  The
reference kernels (fastnet/reference/kernels.py) are the oracle; the
compiled ones must agree with them on the same inputs, including inputs with
many exact zeros (as MNIST's pixels are), odd shapes and every activation.

The network kernels are run on both of their paths (``fastnet.use_path``:
the dense GEMM path and the zero-skipping row path, see ``fastnet._paths``)
and on the one the chooser picks, on dense and on sparse inputs: whichever
path runs, the numbers are the reference's.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import fastnet
from fastnet import _backend
from fastnet._params import n_params
from conftest import BACKENDS, COMPILED, assert_close, kernels_of

REF = kernels_of("reference")
DTYPES = [np.float64, np.float32]
HIDDEN_KINDS = [0, 1, 2, 3]  # linear, sigmoid, relu, tanh

compiled = pytest.mark.parametrize("name", COMPILED or [pytest.param(
    None, marks=pytest.mark.skip(reason="no compiled backend available"))])
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
#: the network kernels' paths: forced dense, forced zero-skipping, and the chooser's pick
PATHS = ["dense", "sparse", "auto"]
paths = pytest.mark.parametrize("path", PATHS)
#: fraction of exact zeros in X: dense data (standardised) and sparse data (raw pixels)
ZEROS = {"dense-X": 0.0, "sparse-X": 0.8}
zeros = pytest.mark.parametrize("zeros", list(ZEROS.values()), ids=list(ZEROS))
OPTIMIZERS = [0, 1, 2, 3, 4]  # sgd, momentum, rmsprop, adam, nesterov


def test_every_backend_implements_the_whole_contract():
    for name in BACKENDS:
        K = kernels_of(name)
        missing = [k for k in _backend.KERNEL_NAMES
                   if getattr(getattr(K, k), "missing", False)]
        assert not missing, f"backend {name!r} lacks kernels {missing}"


# ------------------------------------------------------------------------ helpers
def make_net(rng, sizes, kinds, dtype, scale=0.5):
    sizes = np.asarray(sizes, dtype=np.int64)
    kinds = np.asarray(kinds, dtype=np.int64)
    params = (rng.standard_normal(n_params(sizes)) * scale).astype(dtype)
    return params, sizes, kinds


def make_data(rng, m, n, K, dtype, zeros=0.5, labels=True):
    X = rng.random((m, n))
    X[rng.random((m, n)) < zeros] = 0.0  # exact zeros, like MNIST's background
    X = X.astype(dtype)
    if labels:
        Y = np.zeros((m, K), dtype=dtype)
        Y[np.arange(m), rng.integers(0, K, m)] = 1
    else:
        Y = rng.random((m, K)).astype(dtype)
    return X, Y


def output_kind_and_loss(case):
    """(last-layer activation code, loss code) of a named output case."""
    return {"sigmoid-ce": (1, 0), "softmax-logloss": (4, 2), "linear-quad": (0, 1),
            "tanh-quad": (3, 1), "relu-quad": (2, 1), "sigmoid-quad": (1, 1),
            "sigmoid-logloss": (1, 2)}[case]


OUTPUTS = ["sigmoid-ce", "softmax-logloss", "linear-quad", "tanh-quad", "relu-quad",
           "sigmoid-quad", "sigmoid-logloss"]


# ------------------------------------------------------------------- elementwise
@compiled
@dtypes
@pytest.mark.parametrize("kind", [0, 1, 2, 3])
def test_activation_and_grad(name, dtype, kind):
    rng = np.random.default_rng(kind)
    Z = (rng.standard_normal((37, 19)) * 4).astype(dtype)
    Z[0, :5] = [0, -1000, 1000, -30, 30]
    K = kernels_of(name)
    for kern in ("activation", "activation_grad"):
        out, ref = np.empty_like(Z), np.empty_like(Z)
        getattr(K, kern)(kind, Z, out)
        getattr(REF, kern)(kind, Z, ref)
        assert out.dtype == dtype
        assert_close(out, ref, err_msg=f"{kern}[{kind}] on {name}")
    # in place (out is Z)
    Zc, ref = Z.copy(), np.empty_like(Z)
    K.activation(kind, Zc, Zc)
    REF.activation(kind, Z, ref)
    assert_close(Zc, ref, err_msg=f"in-place activation[{kind}] on {name}")


@compiled
@dtypes
def test_softmax_rows(name, dtype):
    rng = np.random.default_rng(1)
    Z = (rng.standard_normal((23, 10)) * 30).astype(dtype)
    out, ref = np.empty_like(Z), np.empty_like(Z)
    kernels_of(name).activation(4, Z, out)
    REF.activation(4, Z, ref)
    assert_close(out, ref, err_msg=f"softmax on {name}")
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)


@compiled
@dtypes
@pytest.mark.parametrize("loss_kind", [0, 1, 2])
def test_loss(name, dtype, loss_kind):
    rng = np.random.default_rng(loss_kind)
    A = rng.random((41, 7)).astype(dtype)
    A[0, 0], A[1, 1] = 0, 1  # clipped logs: finite
    Y = (rng.random((41, 7)) < 0.3).astype(dtype)
    got = kernels_of(name).loss(loss_kind, A, Y)
    want = REF.loss(loss_kind, A, Y)
    assert np.isfinite(got)
    assert_close(got, want, rtol=1e-10 if dtype == np.float64 else 1e-6,
                 err_msg=f"loss[{loss_kind}] on {name}")


# --------------------------------------------------------- penalties, optimisers
@compiled
@dtypes
@pytest.mark.parametrize("penalty", [0, 1, 2])
def test_penalty_value_and_grad(name, dtype, penalty):
    rng = np.random.default_rng(penalty)
    params, sizes, _ = make_net(rng, [13, 7, 5, 3], [1, 1, 1], dtype)
    K = kernels_of(name)
    assert_close(K.penalty_value(penalty, 0.3, params, sizes),
                 REF.penalty_value(penalty, 0.3, params, sizes),
                 rtol=1e-10 if dtype == np.float64 else 1e-6, err_msg=f"penalty_value on {name}")
    g0 = rng.standard_normal(params.shape).astype(dtype)
    got, want = g0.copy(), g0.copy()
    K.penalty_grad(penalty, 0.3, params, sizes, got)
    REF.penalty_grad(penalty, 0.3, params, sizes, want)
    assert_close(got, want, err_msg=f"penalty_grad on {name}")


@compiled
@dtypes
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_optimizer_step(name, dtype, optimizer):
    rng = np.random.default_rng(optimizer)
    p = rng.standard_normal(501).astype(dtype)
    g = rng.standard_normal(501).astype(dtype)
    s = np.abs(rng.standard_normal(2 * 501)).astype(dtype)
    got = [p.copy(), s.copy()]
    want = [p.copy(), s.copy()]
    for t in (0, 1, 7):  # t: steps taken before (Adam's bias correction)
        kernels_of(name).optimizer_step(optimizer, got[0], g, got[1], 0.1, 0.9, 0.95, 1e-8, t)
        REF.optimizer_step(optimizer, want[0], g, want[1], 0.1, 0.9, 0.95, 1e-8, t)
    assert_close(got[0], want[0], err_msg=f"optimizer_step[{optimizer}] params on {name}")
    assert_close(got[1], want[1], err_msg=f"optimizer_step[{optimizer}] state on {name}")


# ----------------------------------------------------------------------- networks
@compiled
@dtypes
@paths
@pytest.mark.parametrize("hidden", HIDDEN_KINDS)
@pytest.mark.parametrize("output", OUTPUTS)
def test_forward_and_backprop(name, dtype, hidden, output, path):
    rng = np.random.default_rng(hidden * 10 + OUTPUTS.index(output))
    last, loss_kind = output_kind_and_loss(output)
    params, sizes, kinds = make_net(rng, [20, 9, 6, 4], [hidden, hidden, last], dtype)
    X, Y = make_data(rng, 33, 20, 4, dtype, labels=loss_kind != 1)
    K = kernels_of(name)
    out, ref = np.empty((33, 4), dtype), np.empty((33, 4), dtype)
    with fastnet.use_path(path):
        K.forward_network(params, sizes, kinds, X, out)
    REF.forward_network(params, sizes, kinds, X, ref)
    assert_close(out, ref, err_msg=f"forward_network on {name}")
    want_g = np.empty_like(params)
    want = REF.backprop_samples(params, sizes, kinds, loss_kind, X, Y, want_g)
    for kern in ("backprop_samples", "backprop_batch"):
        g = np.full_like(params, np.nan)  # must be overwritten, not accumulated into
        with fastnet.use_path(path):
            J = getattr(K, kern)(params, sizes, kinds, loss_kind, X, Y, g)
        assert_close(J, want, rtol=1e-10 if dtype == np.float64 else 1e-5,
                     err_msg=f"{kern} loss on {name}")
        assert_close(g, want_g, err_msg=f"{kern} gradient on {name} ({hidden}, {output})")
    # the reference's own two forms agree
    g2 = np.empty_like(params)
    assert_close(REF.backprop_batch(params, sizes, kinds, loss_kind, X, Y, g2), want, dtype=dtype)
    assert_close(g2, want_g)


@compiled
@dtypes
@paths
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("batch_size", [1, 7, 32, 1000])
@pytest.mark.parametrize("penalty", [0, 1, 2])
def test_train_epoch(name, dtype, optimizer, batch_size, penalty, path):
    rng = np.random.default_rng(optimizer * 100 + batch_size + penalty)
    params, sizes, kinds = make_net(rng, [30, 12, 5], [1, 1], dtype, scale=0.3)
    X, Y = make_data(rng, 101, 30, 5, dtype)
    order = rng.permutation(101).astype(np.int64)
    got_p, want_p = params.copy(), params.copy()
    got_s, want_s = np.zeros(2 * params.size, dtype), np.zeros(2 * params.size, dtype)
    args = (0, X, Y, order, batch_size, optimizer, 0.05, 0.9, 0.95, 1e-8, penalty, 0.01)
    with fastnet.use_path(path):
        got = kernels_of(name).train_epoch(got_p, sizes, kinds, *args, got_s, 3)
    want = REF.train_epoch(want_p, sizes, kinds, *args, want_s, 3)
    # RMSprop and Adam divide by sqrt of running squares: rounding is amplified, loosen a little
    rtol = (1e-8 if dtype == np.float64 else 1e-4) if optimizer in (2, 3) else None
    assert_close(got, want, rtol=rtol or (1e-10 if dtype == np.float64 else 1e-5),
                 err_msg=f"train_epoch loss on {name}")
    if penalty == 2 and dtype == np.float32:
        # L1's sign(w) jumps at 0: a float32 weight that rounds to the other side of 0 in
        # one step gets a step of 2 lr lam in the other direction; allow that on a few
        jump = 2 * 0.05 * 0.01 * (1 + (optimizer > 0) * 9)
        if optimizer in (2, 3):
            # RMSprop/Adam divide by sqrt(s): one flipped sign can be a full step on that
            # weight, which then moves every later gradient a little (a cascade, not a few
            # params): every param within one largest step, most of them (the median) to 1e-4
            # (RMSprop's largest step is lr / sqrt(1 - rho), reached when s is one g^2)
            diff = np.abs(got_p - want_p)
            np.testing.assert_array_less(diff, 0.05 / np.sqrt(1 - 0.95))
            assert np.median(diff) <= 1e-4 * np.max(np.abs(want_p)), np.median(diff)
        else:
            _close_but_a_few_sign_flips(got_p, want_p, jump)
    else:
        assert_close(got_p, want_p, rtol=rtol, err_msg=f"train_epoch params on {name}")
        assert_close(got_s, want_s, rtol=rtol, err_msg=f"train_epoch state on {name}")


def _close_but_a_few_sign_flips(got, want, jump):
    bad = ~np.isclose(got, want, rtol=1e-5, atol=1e-5 * np.max(np.abs(want)))
    assert bad.sum() <= max(2, 0.02 * got.size), f"{bad.sum()} of {got.size} params differ"
    np.testing.assert_array_less(np.abs(got - want)[bad], jump)


@compiled
@dtypes
@paths
@pytest.mark.parametrize("sizes", [[30, 12, 9, 5], [21, 13, 11, 6, 5], [19, 3], [16, 8, 16]],
                         ids=str)
@pytest.mark.parametrize("m", [5, 40])
@pytest.mark.parametrize("optimizer", [0, 1, 4])
def test_online_epoch_padded_layout(name, dtype, path, sizes, m, optimizer):
    """Online epochs of 16 samples or more run on a copy of the weights whose rows are
    padded to whole 32-byte vectors (the padding's error terms must stay zero, in every
    layer of a deep net, although the error-term buffers are reused between layers), fewer
    on the weights in place; either way the reference's result, on weights that are not
    aligned (a view one entry into a larger array) and with a state that is not zero."""
    rng = np.random.default_rng(len(sizes) * 100 + m + optimizer)
    L = len(sizes) - 1
    params, sz, kinds = make_net(rng, sizes, [2, 1, 3, 1][:L - 1] + [1], dtype, scale=0.3)
    X, Y = make_data(rng, m, sizes[0], sizes[-1], dtype)
    order = rng.permutation(m).astype(np.int64)
    state0 = (np.abs(rng.standard_normal(2 * params.size)) * 0.01).astype(dtype)
    big = np.zeros(params.size + 1, dtype)
    got_p = big[1:]
    got_p[...] = params
    want_p, got_s, want_s = params.copy(), state0.copy(), state0.copy()
    args = (0, X, Y, order, 1, optimizer, 0.05, 0.9, 0.95, 1e-8, 0, 0.0)
    with fastnet.use_path(path):
        got = kernels_of(name).train_epoch(got_p, sz, kinds, *args, got_s, 2)
    want = REF.train_epoch(want_p, sz, kinds, *args, want_s, 2)
    rtol = (1e-8 if dtype == np.float64 else 1e-4) if optimizer == 4 else None
    assert_close(got, want, rtol=rtol, dtype=dtype, err_msg=f"loss on {name}")
    assert_close(got_p, want_p, rtol=rtol, err_msg=f"params on {name}")
    assert_close(got_s, want_s, rtol=rtol, err_msg=f"state on {name}")
    assert big[0] == 0


@compiled
def test_train_epoch_partial_order(name):
    """``order`` may be any subset of the rows, in any order (used for validation splits)."""
    rng = np.random.default_rng(5)
    params, sizes, kinds = make_net(rng, [8, 4, 3], [3, 4], np.float64)
    X, Y = make_data(rng, 50, 8, 3, np.float64)
    order = rng.choice(50, 17, replace=False).astype(np.int64)
    a, b = params.copy(), params.copy()
    sa, sb = np.zeros(2 * a.size), np.zeros(2 * b.size)
    ja = kernels_of(name).train_epoch(a, sizes, kinds, 2, X, Y, order, 5, 1, 0.1, 0.9, 0.9, 1e-8,
                                      1, 0.001, sa, 0)
    jb = REF.train_epoch(b, sizes, kinds, 2, X, Y, order, 5, 1, 0.1, 0.9, 0.9, 1e-8, 1, 0.001, sb,
                         0)
    assert_close(ja, jb)
    assert_close(a, b)


@compiled
@dtypes
@zeros
@pytest.mark.parametrize("batch_size", [1, 5, 64, 300])
def test_every_path_gives_the_reference_numbers(name, dtype, zeros, batch_size):
    """Dense and sparse inputs, every path (forced and chosen): the reference's epoch, forward
    pass and gradient; ReLU hidden units (exact zeros in the activations too)."""
    rng = np.random.default_rng(int(zeros * 10) + batch_size)
    params, sizes, kinds = make_net(rng, [40, 16, 8, 3], [2, 3, 1], dtype, scale=0.3)
    X, Y = make_data(rng, 300, 40, 3, dtype, zeros=zeros)
    order = rng.permutation(300).astype(np.int64)
    want_p, want_s = params.copy(), np.zeros(2 * params.size, dtype)
    want = REF.train_epoch(want_p, sizes, kinds, 0, X, Y, order, batch_size, 0, 0.1, 0.0, 0.9,
                           1e-8, 0, 0.0, want_s, 0)
    ref_out = np.empty((300, 3), dtype)
    REF.forward_network(params, sizes, kinds, X, ref_out)
    ref_g = np.empty_like(params)
    ref_J = REF.backprop_batch(params, sizes, kinds, 0, X, Y, ref_g)
    K = kernels_of(name)
    for path in PATHS:
        with fastnet.use_path(path):
            p, st = params.copy(), np.zeros(2 * params.size, dtype)
            J = K.train_epoch(p, sizes, kinds, 0, X, Y, order, batch_size, 0, 0.1, 0.0, 0.9,
                              1e-8, 0, 0.0, st, 0)
            out = np.empty_like(ref_out)
            K.forward_network(params, sizes, kinds, X, out)
            g = np.empty_like(params)
            Jg = K.backprop_samples(params, sizes, kinds, 0, X, Y, g)
        msg = f"{name}, path {path}, batch {batch_size}"
        assert_close(J, want, dtype=dtype, rtol=1e-9 if dtype == np.float64 else 1e-5,
                     err_msg="epoch loss, " + msg)
        assert_close(p, want_p, rtol=None if dtype == np.float64 else 3e-5,
                     err_msg="epoch params, " + msg)
        assert_close(out, ref_out, err_msg="forward, " + msg)
        assert_close(Jg, ref_J, dtype=dtype, err_msg="backprop loss, " + msg)
        assert_close(g, ref_g, rtol=None if dtype == np.float64 else 3e-5,
                     err_msg="backprop gradient, " + msg)


@compiled
@pytest.mark.parametrize("path", ["dense", "sparse"])
def test_large_batches_in_chunks_and_blocks(name, path):
    """More rows than one work buffer (chunks summed) and than the threading threshold
    (blocks on threads), a batch that is not a run of X (gathered), one that is (in place)."""
    rng = np.random.default_rng(9)
    params, sizes, kinds = make_net(rng, [90, 7, 3], [3, 1], np.float64, scale=0.3)
    X, Y = make_data(rng, 2600, 90, 3, np.float64, zeros=0.5)
    order = rng.permutation(2600).astype(np.int64)
    for batch_size in (2600, 2100, 2048):
        runs = []
        for K in (kernels_of(name), REF):
            p, st = params.copy(), np.zeros(2 * params.size)
            with fastnet.use_path(path):
                J = K.train_epoch(p, sizes, kinds, 0, X, Y, order, batch_size, 1, 0.05, 0.9, 0.9,
                                  1e-8, 1, 0.01, st, 0)
            runs.append((J, p, st))
        (J1, p1, s1), (J2, p2, s2) = runs
        assert_close(J1, J2, err_msg=f"loss, batch {batch_size}")
        assert_close(p1, p2, err_msg=f"params, batch {batch_size}")
        assert_close(s1, s2, err_msg=f"state, batch {batch_size}")
    g1, g2 = np.empty_like(params), np.empty_like(params)
    with fastnet.use_path(path):
        J1 = kernels_of(name).backprop_samples(params, sizes, kinds, 0, X, Y, g1)
        out = np.empty((2600, 3))
        kernels_of(name).forward_network(params, sizes, kinds, X, out)
    J2 = REF.backprop_samples(params, sizes, kinds, 0, X, Y, g2)
    ref_out = np.empty((2600, 3))
    REF.forward_network(params, sizes, kinds, X, ref_out)
    assert_close(J1, J2)
    assert_close(g1, g2)
    assert_close(out, ref_out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hypothesis_shapes(data):
    """Random depths (1-4 layers), widths (1-300), batches (1-257) and activations."""
    n_layers = data.draw(st.integers(1, 4), label="layers")
    sizes = data.draw(st.lists(st.integers(1, 300), min_size=n_layers + 1, max_size=n_layers + 1),
                      label="sizes")
    m = data.draw(st.integers(1, 257), label="batch")
    hidden = data.draw(st.lists(st.sampled_from(HIDDEN_KINDS), min_size=n_layers - 1,
                                max_size=n_layers - 1), label="hidden")
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    path = data.draw(st.sampled_from(PATHS), label="path")
    zeros = data.draw(st.sampled_from([0.0, 0.5, 0.9]), label="zeros")
    out_case = data.draw(st.sampled_from(["sigmoid-ce", "linear-quad", "softmax-logloss"]))
    last, loss_kind = output_kind_and_loss(out_case)
    if last == 4 and sizes[-1] < 2:
        sizes[-1] = 2
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    params, sz, kinds = make_net(rng, sizes, hidden + [last], dtype, scale=0.3)
    # weights of std 1/sqrt(fan-in) (LeCun-like, as real nets start): with a fixed std, four wide
    # linear layers reach |z| in the hundreds, where float32's own rounding of the sums (which
    # BLAS orders differently on every CPU) moves a sigmoid output by more than 1e-5
    off = 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        blk = (n_in + 1) * n_out
        params[off:off + blk] *= dtype(1.0 / 0.3 / np.sqrt(n_in))
        off += blk
    X, Y = make_data(rng, m, sizes[0], sizes[-1], dtype, zeros=zeros, labels=loss_kind != 1)
    want_g = np.empty_like(params)
    want = REF.backprop_batch(params, sz, kinds, loss_kind, X, Y, want_g)
    ref_out = np.empty((m, sizes[-1]), dtype)
    REF.forward_network(params, sz, kinds, X, ref_out)
    truth = np.empty(ref_out.shape)
    REF.forward_network(params.astype(np.float64), sz, kinds, X.astype(np.float64), truth)
    for name in COMPILED:
        K = kernels_of(name)
        out = np.empty_like(ref_out)
        with fastnet.use_path(path):
            K.forward_network(params, sz, kinds, X, out)
        if last in (1, 4):
            # probabilities: compare absolutely (a sigmoid output of 1e-21 carries the
            # relative error of exp(z), i.e. |z| times that of z, whatever the backend)
            r = 1e-10 if dtype == np.float64 else 1e-5
            if dtype == np.float32:
                # deep nets with |z| in the hundreds: float32 rounding alone moves outputs by
                # more than 1e-5, so also accept anything no further from the float64 truth
                # than twice the float32 reference itself is
                r = max(r, 2 * float(np.max(np.abs(ref_out - truth))))
            np.testing.assert_allclose(out, ref_out, rtol=r, atol=r,
                                       err_msg=f"forward_network on {name}")
        else:
            assert_close(out, ref_out, err_msg=f"forward_network on {name}")
        for kern in ("backprop_samples", "backprop_batch"):
            g = np.empty_like(params)
            with fastnet.use_path(path):
                J = getattr(K, kern)(params, sz, kinds, loss_kind, X, Y, g)
            assert_close(J, want, rtol=1e-9 if dtype == np.float64 else 1e-4,
                         err_msg=f"{kern} loss on {name}")
            # float32 sums over up to 257 samples: allow the rounding of the reductions
            assert_close(g, want_g, rtol=None if dtype == np.float64 else 3e-5,
                         err_msg=f"{kern} gradient on {name}")


# ------------------------------------------------------------------ linear models
@compiled
@dtypes
@pytest.mark.parametrize("logistic", [False, True])
def test_linear_gd(name, dtype, logistic):
    rng = np.random.default_rng(int(logistic))
    X = rng.standard_normal((60, 4)).astype(dtype)
    w = np.array([0.5, -1, 2, 0.3])
    y = X @ w + 0.7 + 0.1 * rng.standard_normal(60)
    if logistic:
        y = (y > 0.7).astype(dtype)
    y = y.astype(dtype)
    results = []
    for K in (kernels_of(name), REF):
        theta = np.zeros(5, dtype)
        hist = np.zeros(400)
        n = K.linear_gd(X, y, theta, 0.1, 1e-12, 400, logistic, hist)
        results.append((int(n), theta, hist[:n]))
    (n1, t1, h1), (n2, t2, h2) = results
    if dtype == np.float64:
        assert n1 == n2
    else:
        # float32: the stop (|dJ| < tol) comes when the updates round to nothing, which
        # depends on the order of the float32 sums (BLAS vs a compiled loop): allow a few
        assert abs(n1 - n2) <= 5, (n1, n2)
    k = min(n1, n2)
    assert_close(t1, t2, err_msg=f"linear_gd theta on {name}")
    assert_close(h1[:k], h2[:k], rtol=1e-10 if dtype == np.float64 else 1e-5,
                 err_msg=f"linear_gd history on {name}")


@compiled
@dtypes
@pytest.mark.parametrize("logistic", [False, True])
@pytest.mark.parametrize("shape", [(1027, 70), (3001, 700)], ids=["one-chunk", "chunks"])
def test_linear_gd_large_x(name, dtype, logistic, shape):
    """X large enough for the compiled backends' one-pass-per-iteration form (at least 65,536
    entries): four rows at a time with a tail (m % 4 == 3), and (3001 x 700) enough work for
    the rows to be cut into chunks on threads.  Same iterations as the reference's."""
    rng = np.random.default_rng(11 + int(logistic))
    m, n = shape
    X = rng.random((m, n)).astype(dtype)
    X[rng.random((m, n)) < 0.5] = 0.0
    y = X @ (rng.standard_normal(n) / n) + 0.2
    y = ((y > np.median(y)) if logistic else y).astype(dtype)
    out = []
    for K in (kernels_of(name), REF):
        theta = np.zeros(n + 1, dtype)
        hist = np.zeros(20)
        # lr 1/n: below 2 / (the largest curvature, about n/4 for these X): a descent
        out.append((K.linear_gd(X, y, theta, 1.0 / n, 0.0, 20, logistic, hist), theta, hist))
    (n1, t1, h1), (n2, t2, h2) = out
    assert n1 == n2 == 20
    rtol = 1e-10 if dtype == np.float64 else 1e-4  # float32: sums over up to 3,001 rows
    assert_close(t1, t2, rtol=rtol, err_msg=f"linear_gd theta on {name}")
    assert_close(h1, h2, rtol=rtol, err_msg=f"linear_gd history on {name}")
    assert h1[-1] < h1[0]  # it descended


@compiled
@dtypes
def test_perceptron_train(name, dtype):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((80, 3)).astype(dtype)
    y = (X @ np.array([1.0, -2.0, 0.5]) > 0.2).astype(dtype)
    results = []
    for K in (kernels_of(name), REF):
        w = np.zeros(4, dtype)
        errors = np.zeros(50, np.int64)
        n = K.perceptron_train(X, y, w, 50, 0.5, errors)
        results.append((n, w, errors))
    assert results[0][0] == results[1][0]
    assert_close(results[0][1], results[1][1], err_msg=f"perceptron weights on {name}")
    np.testing.assert_array_equal(results[0][2], results[1][2])


# ----------------------------------------------------------------- real MNIST data
@compiled
def test_mnist_backprop_matches_reference(name, mnist, seed_data):
    X, y, _, _ = mnist
    T1, T2, _, _ = seed_data
    model = [T1, fastnet.Sigmoid, T2, fastnet.Sigmoid]
    Xs, ys = X[:1000], y[:1000]
    with fastnet.use_backend("reference"):
        J0, g0 = fastnet.backprop(model, Xs, ys, lam=0.5, penalty="l2")
    with fastnet.use_backend(name):
        J1, g1 = fastnet.backprop(model, Xs, ys, lam=0.5, penalty="l2")
        J2, g2 = fastnet.backprop(model, Xs.astype(np.float32), ys, lam=0.5, penalty="l2")
    assert_close(J1, J0)
    for a, b in zip(g1, g0):
        assert_close(a, b, err_msg=f"MNIST backprop gradient on {name}")
    assert abs(J2 - J0) < 1e-4 * abs(J0)
    for a, b in zip(g2, g0):
        assert a.dtype == np.float32
        assert_close(a, b.astype(np.float32), rtol=1e-4)


@compiled
def test_mnist_minibatch_training_matches_reference(name, mnist):
    """20 epochs of mini-batch SGD on the same seed: the same test accuracy (+-0.5 point)."""
    X, y, Xt, yt = mnist
    X32, Xt32 = X.astype(np.float32), Xt.astype(np.float32)
    acc = {}
    for backend in ("reference", name):
        model = [fastnet.init_weights(784, 50, rng=1, dtype=np.float32), fastnet.Sigmoid,
                 fastnet.init_weights(50, 10, rng=2, dtype=np.float32), fastnet.Sigmoid]
        with fastnet.use_backend(backend):
            h = fastnet.train(model, X32, y, optimizer="sgd", batch_size=32, lr=0.5, epochs=20,
                              rng=7, X_test=Xt32, y_test=yt)
        acc[backend] = h["test_acc"][-1]
    assert acc["reference"] > 85
    assert abs(acc[name] - acc["reference"]) <= 0.5, acc
