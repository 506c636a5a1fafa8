"""The convolution, pooling and layer-program kernels on every backend, against fastnet.reference.

Tolerances: float64 1e-10 relative, float32 1e-5 (``assert_close``), on
hypothesis-generated shapes (channels, kernel sizes, strides, paddings,
batch sizes), on dense inputs and on inputs that are mostly exact zeros (as
MNIST's pixels are).  Also: the same results whichever way the compiled
backends cut a batch over threads (to float tolerance), and bit-for-bit the
same results for the same thread count.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import fastnet
from fastnet import _backend, _conv_plan
from fastnet._codes import Act, LayerKind, Loss, Optimizer, Penalty, Prog
from fastnet.layers import Conv2D, MaxPool2D, AvgPool2D, Flatten, Dense, Activation, TiedDense
from conftest import BACKENDS, COMPILED, assert_close, kernels_of

REF = kernels_of("reference")
DTYPES = [np.float64, np.float32]
compiled = pytest.mark.parametrize("name", COMPILED or [pytest.param(
    None, marks=pytest.mark.skip(reason="no compiled backend available"))])
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])


def images(rng, shape, dtype, sparse=False):
    X = rng.standard_normal(shape)
    if sparse:
        X[rng.random(shape) < 0.8] = 0
    return X.astype(dtype)


def conv_case(rng, m, H, W, C, F, kh, kw, s, padding, dtype, sparse=False):
    layer = Conv2D(F, (kh, kw), stride=s, padding=padding)
    F_, Ho, Wo = layer.output_shape((C, H, W))
    row = layer.program((C, H, W))
    X = images(rng, (m, H, W, C), dtype, sparse)
    Wt = (rng.standard_normal((kh, kw, C, F)) * 0.5).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return X, Wt, b, (m, Ho, Wo, F), s, int(row[Prog.PAD_H]), int(row[Prog.PAD_W])


def draw_conv_case(data, *, C, F, k, size, m):
    """A hypothesis-drawn :func:`conv_case`: ``C``/``F`` strategies, kernels up to ``k``, images
    up to ``size`` pixels a side, up to ``m`` of them, any stride 1-3, padding and dtype."""
    C = data.draw(C, label="C")
    F = data.draw(F, label="F")
    kh = data.draw(st.integers(1, k), label="kh")
    kw = data.draw(st.integers(1, k), label="kw")
    s = data.draw(st.integers(1, 3), label="stride")
    padding = data.draw(st.sampled_from(["same", "valid"]), label="padding")
    H = data.draw(st.integers(kh if padding == "valid" else 1, size), label="H")
    W = data.draw(st.integers(kw if padding == "valid" else 1, size), label="W")
    n = data.draw(st.integers(1, m), label="m")
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    sparse = data.draw(st.booleans(), label="sparse")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    return conv_case(rng, n, H, W, C, F, kh, kw, s, padding, dtype, sparse)


def check_conv(name, X, Wt, b, out_shape, s, ph, pw, act):
    K = kernels_of(name)
    dt = X.dtype
    want = np.empty(out_shape, dt)
    got = np.full(out_shape, np.nan, dt)
    REF.conv2d_forward(X, Wt, b, s, ph, pw, act, want)
    K.conv2d_forward(X, Wt, b, s, ph, pw, act, got)
    assert_close(got, want, err_msg=f"conv2d_forward on {name}")
    rng = np.random.default_rng(1)
    dZ = rng.standard_normal(out_shape).astype(dt)
    want_dx, got_dx = np.empty_like(X), np.full_like(X, np.nan)
    REF.conv2d_backward_input(dZ, Wt, s, ph, pw, want_dx)
    K.conv2d_backward_input(dZ, Wt, s, ph, pw, got_dx)
    assert_close(got_dx, want_dx, err_msg=f"conv2d_backward_input on {name}")
    want_dw, got_dw = np.empty_like(Wt), np.full_like(Wt, np.nan)
    want_db, got_db = np.empty_like(b), np.full_like(b, np.nan)
    REF.conv2d_backward_weights(X, dZ, s, ph, pw, want_dw, want_db)
    K.conv2d_backward_weights(X, dZ, s, ph, pw, got_dw, got_db)
    assert_close(got_dw, want_dw, err_msg=f"conv2d_backward_weights (W) on {name}")
    assert_close(got_db, want_db, err_msg=f"conv2d_backward_weights (b) on {name}")


# ----------------------------------------------------------------- single kernels
@compiled
@dtypes
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_conv_kernels_match_the_reference(name, dtype, padding, stride, sparse):
    rng = np.random.default_rng(0)
    for m, H, W, C, F, kh, kw in [(3, 9, 8, 2, 4, 3, 3), (2, 7, 10, 1, 5, 5, 2), (5, 6, 6, 3, 2, 1, 1)]:
        case = conv_case(rng, m, H, W, C, F, kh, kw, stride, padding, dtype, sparse)
        for act in (Act.LINEAR, Act.RELU, Act.SIGMOID, Act.TANH):
            check_conv(name, *case, act)


# Convolutions with F % 8 == 0 filters (at most 32) and K = kh*kw*C <= 64 run the cython
# backend's direct loops (src_cython/fastnet_conv.h) instead of im2col + GEMM: the cases below
# take them (interior blocks of 4 pixels and edge pixels, every stride and padding), and are
# checked with the direct loops on and off.
def _cython_direct_settings():
    if "cython" not in COMPILED:
        return [pytest.param(None, marks=pytest.mark.skip(reason="the cython backend is absent"))]
    return [(0, 0), (32, 64)]


@pytest.fixture(params=_cython_direct_settings(), ids=lambda p: "im2col" if p == (0, 0) else "direct")
def direct(request):
    from fastnet._cython.backend import _conv
    old = _conv._set_direct(*request.param)
    yield request.param
    _conv._set_direct(*old)


@dtypes
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("F", [8, 16, 32])
def test_direct_convolution_matches_the_reference(direct, dtype, padding, stride, F):
    rng = np.random.default_rng(F + stride)
    for m, H, W, C, kh, kw in [(3, 28, 28, 1, 5, 5), (2, 9, 13, 3, 3, 3), (2, 5, 4, 2, 3, 2),
                               (1, 3, 11, 1, 1, 7), (2, 14, 14, 2, 5, 5), (1, 2, 2, 4, 3, 3)]:
        if padding == "valid" and (H < kh or W < kw):
            continue
        case = conv_case(rng, m, H, W, C, F, kh, kw, stride, padding, dtype, sparse=False)
        for act in (Act.LINEAR, Act.RELU):
            check_conv("cython", *case, act)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hypothesis_direct_convolution_shapes(data):
    if "cython" not in COMPILED:
        pytest.skip("the cython backend is absent")
    from fastnet._cython.backend import _conv
    case = draw_conv_case(data, C=st.integers(1, 4), F=st.sampled_from([8, 16, 24, 32]), k=4,
                          size=16, m=4)
    old = _conv._set_direct(32, 64)
    try:
        check_conv("cython", *case, Act.RELU)
    finally:
        _conv._set_direct(*old)


@compiled
@dtypes
@pytest.mark.parametrize("kind", [LayerKind.MAXPOOL2D, LayerKind.AVGPOOL2D], ids=["max", "avg"])
@pytest.mark.parametrize("pool, stride", [(2, 2), (3, 3), (3, 2), (1, 1)])
def test_pool_kernels_match_the_reference(name, dtype, kind, pool, stride):
    rng = np.random.default_rng(2)
    m, H, W, C = 3, 9, 7, 4
    X = images(rng, (m, H, W, C), dtype)
    X[0, :2, :2, 0] = 1.5   # a tie: the first maximum (row-major in the window) wins
    Ho, Wo = (H - pool) // stride + 1, (W - pool) // stride + 1
    K = kernels_of(name)
    want, got = np.empty((m, Ho, Wo, C), dtype), np.full((m, Ho, Wo, C), np.nan, dtype)
    wa, ga = np.zeros(want.shape, np.int64), np.full(want.shape, -1, np.int64)
    REF.pool2d_forward(kind, X, pool, pool, stride, want, wa)
    K.pool2d_forward(kind, X, pool, pool, stride, got, ga)
    assert_close(got, want)
    if kind == LayerKind.MAXPOOL2D:
        np.testing.assert_array_equal(ga, wa)
    D = images(rng, want.shape, dtype)
    wd, gd = np.empty_like(X), np.full_like(X, np.nan)
    REF.pool2d_backward(kind, D, wa, pool, pool, stride, wd)
    K.pool2d_backward(kind, D, wa, pool, pool, stride, gd)
    assert_close(gd, wd)


def test_max_pool_records_and_routes_the_maximum():
    X = np.array([[1., 5.], [5., 2.]]).reshape(1, 2, 2, 1)
    out, am = np.empty((1, 1, 1, 1)), np.empty((1, 1, 1, 1), np.int64)
    for name in BACKENDS:
        K = kernels_of(name)
        K.pool2d_forward(LayerKind.MAXPOOL2D, X, 2, 2, 2, out, am)
        assert out[0, 0, 0, 0] == 5 and am[0, 0, 0, 0] == 1   # the first of the two fives
        dX = np.full_like(X, 7.0)
        K.pool2d_backward(LayerKind.MAXPOOL2D, np.ones((1, 1, 1, 1)), am, 2, 2, 2, dX)
        np.testing.assert_array_equal(dX.ravel(), [0, 1, 0, 0])


def test_conv_forward_by_hand():
    """A 3x3 image, a 2x2 kernel of ones, 'valid': each output is a window's sum."""
    X = np.arange(9.0).reshape(1, 3, 3, 1)
    W = np.ones((2, 2, 1, 1))
    for name in BACKENDS:
        out = np.empty((1, 2, 2, 1))
        kernels_of(name).conv2d_forward(X, W, np.array([0.5]), 1, 0, 0, Act.LINEAR, out)
        np.testing.assert_allclose(out.ravel(), [8.5, 12.5, 20.5, 24.5])


# -------------------------------------------------------------------- hypothesis
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hypothesis_conv_shapes(data):
    case = draw_conv_case(data, C=st.integers(1, 5), F=st.integers(1, 7), k=5, size=12, m=9)
    act = data.draw(st.sampled_from([Act.LINEAR, Act.RELU, Act.SIGMOID, Act.TANH]), label="act")
    for name in COMPILED:
        check_conv(name, *case, act)


def random_net(data):
    """A random stack of convolutions, pooling, activations, flatten and dense layers."""
    C = data.draw(st.integers(1, 3), label="C")
    H = data.draw(st.integers(4, 11), label="H")
    W = data.draw(st.integers(4, 11), label="W")
    layers = []
    shape = (C, H, W)
    for i in range(data.draw(st.integers(0, 3), label="n_conv")):
        kind = data.draw(st.sampled_from(["conv", "max", "avg", "act"]), label=f"layer{i}")
        if kind == "conv":
            layer = Conv2D(data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3)),
                           stride=data.draw(st.integers(1, 2)),
                           padding=data.draw(st.sampled_from(["same", "valid"])),
                           activation=data.draw(st.sampled_from(["linear", "relu", "tanh",
                                                                 "sigmoid"])))
        elif kind == "act":
            layer = Activation(data.draw(st.sampled_from(["relu", "tanh", "sigmoid"])))
        else:
            p = data.draw(st.integers(1, 2))
            layer = (MaxPool2D if kind == "max" else AvgPool2D)(p, stride=data.draw(
                st.integers(1, 2)))
        try:
            shape = layer.output_shape(shape)
        except ValueError:
            continue
        layers.append(layer)
    layers.append(Flatten())
    for j in range(data.draw(st.integers(0, 2), label="n_dense")):
        layers.append(Dense(data.draw(st.integers(1, 9)),
                            data.draw(st.sampled_from(["linear", "relu", "tanh", "sigmoid"]))))
    out = data.draw(st.sampled_from(["softmax", "sigmoid", "linear"]), label="output")
    layers.append(Dense(data.draw(st.integers(2, 5)), out))
    loss = {"softmax": Loss.LOG_LOSS, "sigmoid": Loss.CROSS_ENTROPY, "linear": Loss.QUADRATIC}[out]
    return layers, (C, H, W), loss


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hypothesis_programs(data):
    """Random layer programs: forward, backprop and a training epoch on every backend."""
    layers, shape, loss = random_net(data)
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    m = data.draw(st.integers(1, 13), label="m")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    net = fastnet.Sequential(layers, input_shape=shape, rng=rng, dtype=dtype)
    X = net._kernel_X(images(rng, (m,) + shape, dtype, data.draw(st.booleans())))
    n_out = net.output_shape[0]
    if loss == Loss.QUADRATIC:
        Y = rng.standard_normal((m, n_out)).astype(dtype)
    else:
        Y = np.zeros((m, n_out), dtype)
        Y[np.arange(m), rng.integers(0, n_out, m)] = 1
    opt = data.draw(st.sampled_from(list(Optimizer)), label="optimizer")
    pen = data.draw(st.sampled_from(list(Penalty)), label="penalty")
    bs = data.draw(st.integers(1, m), label="batch")
    check_program(net, X, Y, loss, opt, pen, bs)


def check_program(net, X, Y, loss, opt, pen, bs, names=None):
    p, prog, dt = net.params, net.program, net.params.dtype
    m, n_out = X.shape[0], Y.shape[1]
    want_out = np.empty((m, n_out), dt)
    REF.sequential_forward(p, prog, X, want_out)
    want_g = np.empty_like(p)
    want_J = REF.sequential_backprop(p, prog, int(loss), X, Y, want_g)
    order = np.random.default_rng(3).permutation(m).astype(np.int64)
    want_p, want_s = p.copy(), np.zeros(2 * p.size, dt)
    want_E = REF.sequential_train_epoch(want_p, prog, int(loss), X, Y, order, bs, int(opt), 0.01,
                                        0.9, 0.99, 1e-7, int(pen), 0.01, want_s, 3)
    want_pen = REF.sequential_penalty_value(int(pen), 0.01, p, prog)
    for name in names or COMPILED:
        K = kernels_of(name)
        out = np.full_like(want_out, np.nan)
        K.sequential_forward(p, prog, X, out)
        assert_close(out, want_out, err_msg=f"sequential_forward on {name}", dtype=dt)
        g = np.full_like(p, np.nan)
        J = K.sequential_backprop(p, prog, int(loss), X, Y, g)
        assert_close(J, want_J, dtype=dt, err_msg=f"sequential_backprop loss on {name}")
        assert_close(g, want_g, dtype=dt, err_msg=f"sequential_backprop grad on {name}")
        q, s = p.copy(), np.zeros(2 * p.size, dt)
        E = K.sequential_train_epoch(q, prog, int(loss), X, Y, order, bs, int(opt), 0.01, 0.9,
                                     0.99, 1e-7, int(pen), 0.01, s, 3)
        assert_close(E, want_E, dtype=dt, err_msg=f"sequential_train_epoch loss on {name}")
        # Adam's and RMSprop's steps divide by sqrt(s): entries whose gradient is ~0 amplify
        # rounding, so the parameters get the absolute tolerance of their scale
        assert_close(q, want_p, dtype=dt, atol_scale=10, err_msg=f"params after an epoch on {name}")
        assert_close(K.sequential_penalty_value(int(pen), 0.01, p, prog), want_pen, dtype=dt)


# ------------------------------------------------------------- programs, fixed cases
def lenet(dtype, rng=0):
    return fastnet.Sequential([Conv2D(4, 5, activation="relu"), MaxPool2D(2),
                               Conv2D(6, 3, activation="relu"), MaxPool2D(2), Flatten(),
                               Dense(16, "relu"), Dense(10, "softmax")],
                              input_shape=(1, 16, 16), rng=rng, dtype=dtype)


@compiled
@dtypes
@pytest.mark.parametrize("opt", list(Optimizer), ids=[o.name.lower() for o in Optimizer])
def test_lenet_programs_on_every_optimiser(name, dtype, opt):
    rng = np.random.default_rng(4)
    net = lenet(dtype)
    X = net._kernel_X(images(rng, (23, 1, 16, 16), dtype, sparse=True))
    Y = np.zeros((23, 10), dtype)
    Y[np.arange(23), rng.integers(0, 10, 23)] = 1
    check_program(net, X, Y, Loss.LOG_LOSS, opt, Penalty.L2, 8, names=[name])


@compiled
def test_tied_dense_programs(name):
    rng = np.random.default_rng(5)
    net = fastnet.Sequential([Dense(6, "sigmoid"), Dense(3, "tanh"), TiedDense(6, 1, "relu"),
                              TiedDense(10, 0, "sigmoid")], input_shape=(10,), rng=rng)
    net.params[...] = rng.standard_normal(net.params.shape) * 0.5
    X = rng.random((9, 10))
    check_program(net, X, X.copy(), Loss.CROSS_ENTROPY, Optimizer.MOMENTUM, Penalty.L1, 4,
                  names=[name])


@compiled
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_cut_batches_into_blocks_with_the_same_result(name, threads, monkeypatch):
    """Whatever the thread count the results agree to rounding; for one count, to the bit."""
    monkeypatch.setenv("FASTNET_NUM_THREADS", str(threads))
    monkeypatch.setattr(_conv_plan, "THREAD_MIN_FLOPS", 0)
    monkeypatch.setattr(_conv_plan, "FORWARD_CHUNK", 5)
    rng = np.random.default_rng(6)
    net = lenet(np.float64)
    X = net._kernel_X(images(rng, (37, 1, 16, 16), np.float64))
    Y = np.zeros((37, 10))
    Y[np.arange(37), rng.integers(0, 10, 37)] = 1
    check_program(net, X, Y, Loss.LOG_LOSS, Optimizer.ADAM, Penalty.NONE, 16, names=[name])
    K = kernels_of(name)
    runs = []
    for _ in range(2):
        q, s = net.params.copy(), np.zeros(2 * net.params.size)
        K.sequential_train_epoch(q, net.program, 2, X, Y, np.arange(37, dtype=np.int64), 16, 3,
                                 0.01, 0.9, 0.999, 1e-8, 0, 0.0, s, 0)
        runs.append(q)
    np.testing.assert_array_equal(runs[0], runs[1])


# ------------------------------------------------------------------- bad calls
@pytest.mark.parametrize("name", BACKENDS)
def test_kernels_refuse_inconsistent_arrays(name):
    if name == "reference":
        pytest.skip("the reference trusts its caller (the API validates)")
    K = kernels_of(name)
    net = lenet(np.float64)
    X = np.zeros((3, 256))
    out = np.empty((3, 10))
    with pytest.raises(ValueError, match="X has shape"):
        K.sequential_forward(net.params, net.program, np.zeros((3, 255)), out)
    with pytest.raises(TypeError, match="dtype"):
        K.sequential_forward(net.params, net.program, X.astype(np.float32), out)
    bad = net.program.copy()
    bad[2, Prog.PLEN] += 1   # a parameter block of the wrong length
    with pytest.raises(ValueError, match="parameter block"):
        K.sequential_forward(net.params, bad, X, out)
    bad = net.program.copy()
    bad[1, Prog.OUT_H] += 3    # a pooled shape that does not fit its input
    with pytest.raises(ValueError):
        K.sequential_forward(net.params, bad, X, out)
    with pytest.raises(ValueError, match="order"):
        K.sequential_train_epoch(net.params.copy(), net.program, 2, X, np.zeros((3, 10)),
                                 np.array([0, 1, 5]), 2, 0, 0.1, 0.9, 0.9, 1e-8, 0, 0.0,
                                 np.zeros(2 * net.params.size), 0)
    with pytest.raises(ValueError, match="argmax"):
        K.pool2d_backward(LayerKind.MAXPOOL2D, np.ones((1, 1, 1, 1)),
                          np.array([7]).reshape(1, 1, 1, 1), 2, 2, 2, np.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="do not fit"):
        K.pool2d_forward(LayerKind.MAXPOOL2D, np.zeros((1, 2, 2, 1)), 3, 3, 1,
                         np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64))
