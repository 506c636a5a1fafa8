"""Finite-difference gradient checks of every new layer, on every backend.

Each layer (Conv2D in both paddings with strides 1 and 2, MaxPool2D,
AvgPool2D, Flatten, Activation, TiedDense) sits in a small float64 network;
the gradient of ``Sequential.loss_and_gradient`` (the backend's
``sequential_backprop``) is compared with central differences of its cost,
for every parameter and, through a linear first layer, for the input.
"""
import numpy as np
import pytest

import fastnet
from fastnet.layers import (Conv2D, MaxPool2D, AvgPool2D, Flatten, Dense, Activation,
                            TiedDense)
from conftest import numerical_gradient

SHAPE = (2, 7, 6)


def check_gradient(net, X, y, **kw):
    J, grad = net.loss_and_gradient(X, y, **kw)
    num = numerical_gradient(lambda: net.loss_and_gradient(X, y, **kw)[0], net.params)
    scale = np.abs(num).max()
    assert scale > 0
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-7 * max(scale, 1))
    return J


def data(rng, n=4, shape=SHAPE, k=3):
    return rng.standard_normal((n,) + shape), rng.integers(0, k, n)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("act", ["tanh", "sigmoid", "linear"])
def test_conv2d(backend, padding, stride, act):
    rng = np.random.default_rng(0)
    net = fastnet.Sequential([Conv2D(3, 3, stride=stride, padding=padding, activation=act),
                              Conv2D(2, (2, 3), stride=stride, padding=padding,
                                     activation="tanh"),
                              Flatten(), Dense(3, "softmax")], input_shape=(2, 11, 10), rng=1)
    X, y = data(rng, shape=(2, 11, 10))
    check_gradient(net, X, y)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv2d_even_kernels_and_l2(backend, padding):
    rng = np.random.default_rng(1)
    net = fastnet.Sequential([Conv2D(2, 4, stride=2, padding=padding, activation="sigmoid"),
                              Flatten(), Dense(2, "sigmoid")], input_shape=(1, 9, 8), rng=2)
    X = rng.standard_normal((3, 1, 9, 8))
    y = rng.integers(0, 2, (3, 2)).astype(float)
    check_gradient(net, X, y, penalty="l2", lam=0.3)


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D], ids=["max", "avg"])
@pytest.mark.parametrize("size, stride", [(2, None), (3, 2), (2, 1)])
def test_pooling(backend, pool, size, stride):
    rng = np.random.default_rng(2)
    net = fastnet.Sequential([Conv2D(3, 3, activation="tanh"), pool(size, stride=stride),
                              Flatten(), Dense(3, "softmax")], input_shape=SHAPE, rng=3)
    X, y = data(rng)
    check_gradient(net, X, y)


def test_relu_and_activation_layers(backend):
    """ReLU's kink is not hit by continuous random data; Activation layers are fused."""
    rng = np.random.default_rng(3)
    net = fastnet.Sequential([Conv2D(3, 3), Activation("relu"), MaxPool2D(2), Activation("tanh"),
                              Flatten(), Dense(4), Activation("sigmoid"), Dense(3, "softmax")],
                             input_shape=SHAPE, rng=4)
    assert net.program.shape[0] == 5   # conv+relu, pool+tanh, flatten, dense+sigmoid, dense
    X, y = data(rng)
    check_gradient(net, X, y)


def test_quadratic_loss_through_a_tanh_output(backend):
    rng = np.random.default_rng(4)
    net = fastnet.Sequential([Conv2D(2, 3, activation="sigmoid"), AvgPool2D(2), Flatten(),
                              Dense(3, "tanh")], input_shape=SHAPE, rng=5)
    X = rng.standard_normal((4,) + SHAPE)
    check_gradient(net, X, rng.standard_normal((4, 3)), loss="quadratic")


def test_tied_dense(backend):
    rng = np.random.default_rng(5)
    net = fastnet.Sequential([Dense(5, "sigmoid"), Dense(3, "tanh"), TiedDense(5, 1, "tanh"),
                              TiedDense(8, 0, "sigmoid")], input_shape=(8,), rng=6)
    net.params[...] = rng.standard_normal(net.params.shape) * 0.5
    X = rng.random((6, 8))
    check_gradient(net, X, X, penalty="l1", lam=0.01)


def test_input_gradient_of_the_first_convolution(backend):
    """The gradient reaching the input (a convolution's backward-input pass on layer 1)."""
    rng = np.random.default_rng(6)
    head = [Conv2D(3, 3, stride=2, activation="tanh"), MaxPool2D(2), Flatten(), Dense(3, "softmax")]
    net = fastnet.Sequential(head, input_shape=SHAPE, rng=7)
    # prepend a 1x1 linear convolution with identity weights: its weight gradient is
    # sum_pixels x * dJ/dx, so it checks the input gradient of the original first layer
    wide = fastnet.Sequential([Conv2D(2, 1)] + head, input_shape=SHAPE, rng=7)
    X, y = data(rng)
    check_gradient(wide, X, y)
    J1, _ = net.loss_and_gradient(X, y)
    assert np.isfinite(J1)
