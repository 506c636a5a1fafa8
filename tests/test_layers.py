"""The layer descriptions of fastnet.layers: shapes, parameter counts, configs, bad input."""
import numpy as np
import pytest

from fastnet import layers as L


def test_dense_shapes_init_and_config_round_trip():
    d = L.Dense(5, "relu")
    assert d.output_shape((3,)) == (5,) and d.n_params((3,)) == 20
    p = np.empty(20)
    d.init_params(p, (3,), np.random.default_rng(0))
    W = p.reshape(4, 5)
    assert not W[0].any()                      # Glorot: zero biases
    assert np.abs(W[1:]).max() <= np.sqrt(6 / 8) and np.abs(W[1:]).max() > 0
    again = L.layer_from_config({"type": "dense", **d.get_config()})
    assert again == d and again is not d


def test_course_epsilon_init_draws_the_bias_too():
    p = np.empty(L.Dense(4, epsilon=0.12).n_params((6,)))
    L.Dense(4, epsilon=0.12).init_params(p, (6,), np.random.default_rng(1))
    assert np.abs(p).max() <= 0.12 and p.reshape(7, 4)[0].any()


def test_flatten_and_activation():
    assert L.Flatten().output_shape((2, 3, 4)) == (24,) and L.Flatten().n_params((2, 3)) == 0
    assert L.Activation("TanH").output_shape((7,)) == (7,)
    assert L.Activation("logistic").activation == "sigmoid"


@pytest.mark.parametrize("bad, match", [
    (lambda: L.Dense(0), "units must be a positive integer"),
    (lambda: L.Dense(3, "swish"), "activation must be one of"),
    (lambda: L.Dense(3, epsilon=-1), "epsilon must be a positive number"),
    (lambda: L.Dense(3).output_shape((2, 2)), "put a Flatten"),
    (lambda: L.layer_from_config({"type": "nope"}), "unknown layer type"),
    (lambda: L.layer_from_config([1]), "must be a dict"),
])
def test_bad_layers_are_refused_with_the_argument_named(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()
