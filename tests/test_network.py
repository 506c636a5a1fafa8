"""The course's network functions: init_weights, one_hot, forward, feedforward, predict,
accuracy."""
import numpy as np
import pytest

import fastnet
from fastnet import reference as ref
from conftest import assert_close, need_kernels

MODS = [pytest.param(fastnet, id="top"), pytest.param(ref, id="reference")]


# ------------------------------------------------------------------ init_weights
@pytest.mark.parametrize("mod", MODS)
def test_init_weights_shape_range_and_reproducibility(mod):
    W = mod.init_weights(784, 50, rng=0)
    assert W.shape == (50, 785) and W.dtype == np.float64
    assert W.min() >= -0.12 and W.max() <= 0.12
    assert W.min() < -0.1 and W.max() > 0.1  # fills the interval
    np.testing.assert_array_equal(W, mod.init_weights(784, 50, rng=0))
    assert not np.array_equal(W, mod.init_weights(784, 50, rng=1))
    W2 = mod.init_weights(3, 2, epsilon=2.0, rng=np.random.default_rng(5), dtype=np.float32)
    assert W2.dtype == np.float32 and np.abs(W2).max() <= 2.0
    assert W2.shape == (2, 4)


def test_init_weights_generator_is_advanced():
    g = np.random.default_rng(0)
    a, b = ref.init_weights(3, 3, rng=g), ref.init_weights(3, 3, rng=g)
    assert not np.array_equal(a, b)


# ------------------------------------------------------------------------ one_hot
@pytest.mark.parametrize("mod", MODS)
def test_one_hot(mod):
    np.testing.assert_array_equal(mod.one_hot(4, 2), [0, 0, 1, 0])
    Y = mod.one_hot(3, np.array([2, 0, 1, 2]))
    np.testing.assert_array_equal(Y, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(mod.one_hot(3, [1]), [[0, 1, 0]])
    np.testing.assert_array_equal(mod.one_hot(10, np.int64(9)), np.eye(10)[9])


# ------------------------------------------------------------------------ forward
@pytest.mark.parametrize("act", ["Linear", "Sigmoid", "ReLu", "TanH", "Softmax"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_is_the_course_formula(act, dtype, backend):
    need_kernels("forward_network")
    rng = np.random.default_rng(0)
    Theta = rng.normal(size=(4, 6)).astype(dtype)
    X = rng.normal(size=(7, 5)).astype(dtype)
    f = getattr(ref, act).f
    expected = f(np.c_[np.ones(7), X.astype(np.float64)] @ Theta.astype(np.float64).T)
    for mod in (fastnet, ref):
        out = mod.forward(Theta, X, getattr(mod, act))
        assert out.shape == (7, 4) and out.dtype == dtype
        assert_close(out, expected, rtol=1e-12 if dtype == np.float64 else 1e-5,
                     err_msg=f"{mod.__name__}.forward({act}) on {backend}")
        one = mod.forward(Theta, X[3], getattr(mod, act))  # a single sample
        assert one.shape == (4,)
        assert_close(one, out[3])


def test_forward_accepts_names_and_either_class_set():
    rng = np.random.default_rng(1)
    Theta, X = rng.normal(size=(3, 3)), rng.normal(size=(4, 2))
    base = ref.forward(Theta, X, ref.TanH)
    for act in (fastnet.TanH, "tanh", "TanH"):
        assert_close(ref.forward(Theta, X, act), base)
        assert_close(fastnet.forward(Theta, X, act), base)


def test_forward_casts_integer_inputs():
    Theta = np.array([[0.5, 1.0, -1.0]])
    out = fastnet.forward(Theta, np.array([[1, 2], [3, 0]]), fastnet.Linear)
    np.testing.assert_allclose(out, [[-0.5], [3.5]])


# ------------------------------------------------------------ feedforward, predict
def _model(rng, sizes, acts, dtype=np.float64):
    thetas = [rng.normal(size=(sizes[l + 1], sizes[l] + 1)).astype(dtype)
              for l in range(len(sizes) - 1)]
    return [x for pair in zip(thetas, acts) for x in pair]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_feedforward_and_predict_match_reference(dtype, backend):
    need_kernels("forward_network")
    rng = np.random.default_rng(2)
    model = _model(rng, [6, 8, 5, 4], [fastnet.ReLu, fastnet.TanH, fastnet.Sigmoid], dtype)
    X = rng.normal(size=(30, 6)).astype(dtype)
    out = fastnet.feedforward(model, X)
    assert out.dtype == dtype
    chained = X
    for theta, act in zip(model[0::2], model[1::2]):
        chained = ref.forward(theta, chained, act)
    assert_close(out, chained, err_msg=f"feedforward on {backend}")
    assert_close(ref.feedforward(model, X), chained)
    labels = fastnet.predict(model, X)
    assert labels.dtype == np.int64 and labels.shape == (30,)
    np.testing.assert_array_equal(labels, np.argmax(chained, axis=1))
    np.testing.assert_array_equal(ref.predict(model, X), labels)
    single = fastnet.predict(model, X[4])
    assert isinstance(single, int) and single == labels[4]


def test_predict_single_output_thresholds_at_one_half(impl):
    need_kernels("forward_network")
    Theta = np.array([[0.0, 1.0]])  # sigmoid(x) >= 0.5 iff x >= 0
    X = np.array([[-2.0], [0.0], [3.0], [-1e-9]])
    np.testing.assert_array_equal(impl.predict([Theta, impl.Sigmoid], X), [0, 1, 1, 0])


def test_predict_softmax_output(impl):
    need_kernels("forward_network")
    rng = np.random.default_rng(3)
    model = _model(rng, [4, 6, 3], [impl.Sigmoid, impl.Softmax])
    X = rng.normal(size=(10, 4))
    out = impl.feedforward(model, X)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(impl.predict(model, X), out.argmax(axis=1))


def test_model_may_be_a_tuple_and_mix_class_sets():
    rng = np.random.default_rng(4)
    T1, T2 = rng.normal(size=(3, 3)), rng.normal(size=(2, 4))
    X = rng.normal(size=(5, 2))
    a = ref.feedforward([T1, ref.Sigmoid, T2, ref.Sigmoid], X)
    assert_close(fastnet.feedforward((T1, fastnet.Sigmoid, T2, "sigmoid"), X), a)


# ----------------------------------------------------------------------- accuracy
@pytest.mark.parametrize("mod", MODS)
def test_accuracy_in_percent(mod):
    assert mod.accuracy(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 75.0
    assert mod.accuracy([0], [0]) == 100.0
    assert isinstance(mod.accuracy([1, 0], [0, 0]), float)


def test_functions_do_not_modify_their_inputs():
    rng = np.random.default_rng(6)
    model = _model(rng, [3, 4, 2], [fastnet.Sigmoid, fastnet.Sigmoid])
    X, y = rng.normal(size=(5, 3)), np.array([0, 1, 1, 0, 1])
    saved = [m.copy() for m in model[0::2]] + [X.copy(), y.copy()]
    fastnet.predict(model, X)
    fastnet.backprop(model, X, y, lam=0.1, penalty="l2")
    ref.backprop(model, X, y, lam=0.1, penalty="l1")
    fastnet.backprop_vectorized(model, X, y)
    for a, b in zip(model[0::2] + [X, y], saved):
        np.testing.assert_array_equal(a, b)


def test_read_only_and_fortran_inputs(backend):
    need_kernels("forward_network", "backprop_samples")
    rng = np.random.default_rng(7)
    model = _model(rng, [3, 4, 2], [fastnet.TanH, fastnet.Sigmoid])
    X = np.asfortranarray(rng.normal(size=(6, 3)))
    X.flags.writeable = False
    for t in model[0::2]:
        t.flags.writeable = False
    y = np.array([0, 1, 0, 1, 1, 0])
    assert_close(fastnet.feedforward(model, X), ref.feedforward(model, np.ascontiguousarray(X)))
    J, g = fastnet.backprop(model, X, y)
    Jr, gr = ref.backprop(model, X, y)
    assert J == pytest.approx(Jr, rel=1e-10)
