"""The course's perceptron: predict, the learning rule, logic gates, top level vs reference."""
import numpy as np
import pytest

import fastnet
from fastnet import perceptron
from fastnet.reference import perceptron as ref_perceptron
from conftest import need_kernels

X2 = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
GATES = {"AND": [0, 0, 0, 1], "OR": [0, 1, 1, 1], "NAND": [1, 1, 1, 0], "NOR": [1, 0, 0, 0]}


def test_predict_fires_at_zero_activation():
    w = np.array([-1.0, 1.0, 1.0])
    assert ref_perceptron.predict(w, [0.0, 0.0]) == 0.0
    assert ref_perceptron.predict(w, [1.0, 0.0]) == 1.0  # activation exactly 0 fires
    assert isinstance(ref_perceptron.predict(w, [1.0, 1.0]), float)
    np.testing.assert_array_equal(ref_perceptron.predict(w, X2), [0, 1, 1, 1])
    assert fastnet.perceptron.predict is ref_perceptron.predict


@pytest.mark.parametrize("gate", sorted(GATES))
def test_learns_linearly_separable_gates(impl, gate):
    mod = impl.perceptron
    need_kernels("perceptron_train")
    y = np.array(GATES[gate])
    w = mod.train(np.zeros(3), X2, y, epochs=100)
    np.testing.assert_array_equal(mod.predict(w, X2), y, err_msg=gate)


def test_learns_not(impl):
    mod = impl.perceptron
    need_kernels("perceptron_train")
    X = np.array([[0.0], [1.0]])
    w = mod.train(np.zeros(2), X, [1, 0])
    np.testing.assert_array_equal(mod.predict(w, X), [1, 0])


def test_cannot_learn_xor_alone(impl):
    mod = impl.perceptron
    need_kernels("perceptron_train")
    y = np.array([0, 1, 1, 0])
    w = mod.train(np.zeros(3), X2, y, epochs=200)
    assert not np.array_equal(mod.predict(w, X2), y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_top_level_matches_reference(dtype, backend):
    need_kernels("perceptron_train")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4)).astype(dtype)
    y = (X @ np.array([1.0, -2.0, 0.5, 1.0]) > 0.3).astype(int)
    for epochs in (1, 3, 100):
        for lr in (1.0, 0.1):
            w0 = rng.normal(size=5).astype(dtype)
            a = perceptron.train(w0.copy(), X, y, epochs=epochs, lr=lr)
            b = ref_perceptron.train(w0.copy(), X, y, epochs=epochs, lr=lr)
            assert a.dtype == b.dtype == dtype
            np.testing.assert_allclose(a, b, rtol=1e-12 if dtype == np.float64 else 1e-5,
                                       err_msg=f"epochs={epochs} lr={lr} on {backend}")


def test_weights_updated_in_place_and_rule_by_hand(impl):
    mod = impl.perceptron
    need_kernels("perceptron_train")
    w = np.zeros(3)
    out = mod.train(w, X2, [0, 0, 0, 1], epochs=1, lr=0.5)
    assert out is w
    # by hand, one epoch: sample 0 (0,0): fires (0 >= 0) but y=0 -> w = [-0.5, 0, 0];
    # samples 1, 2 don't fire, correct; sample 3 (1,1): -0.5 < 0, y=1 -> w += 0.5*[1,1,1]
    np.testing.assert_allclose(w, [0.0, 0.5, 0.5])
    # a list of weights is not modified; the trained weights are returned
    wl = [0.0, 0.0, 0.0]
    out = mod.train(wl, X2, [0, 0, 0, 1], epochs=1, lr=0.5)
    assert wl == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(out, [0.0, 0.5, 0.5])


def test_stops_after_an_epoch_without_errors(impl):
    mod = impl.perceptron
    need_kernels("perceptron_train")
    w = np.array([-1.5, 1.0, 1.0])  # already AND
    out = mod.train(w.copy(), X2, GATES["AND"], epochs=50)
    np.testing.assert_array_equal(out, w)
