"""Losses and penalties: values, clipping, finite-difference derivatives, the loss and
penalty kernels."""
import warnings

import numpy as np
import pytest

import fastnet
from fastnet import reference as ref
from fastnet import _backend
from fastnet._params import pack, sizes_of
from fastnet.reference.losses import LOG_CLIP
from conftest import assert_close, need_kernels, numerical_gradient

LOSSES = [ref.CrossEntropy, ref.Quadratic, ref.LogLoss]


def _ay(rng, m=5, K=3):
    a = rng.uniform(0.05, 0.95, size=(m, K))
    y = rng.uniform(0, 1, size=(m, K))
    return a, y


def test_loss_values_by_hand():
    a = np.array([[0.8, 0.3], [0.1, 0.6]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    ce = (-np.log(0.8) - np.log(0.7) - np.log(0.9) - np.log(0.6)) / 2
    assert ref.CrossEntropy.f(a, y) == pytest.approx(ce, rel=1e-14)
    quad = 0.5 * (0.2 ** 2 + 0.3 ** 2 + 0.1 ** 2 + 0.4 ** 2) / 2
    assert ref.Quadratic.f(a, y) == pytest.approx(quad, rel=1e-14)
    ll = (-np.log(0.8) - np.log(0.6)) / 2
    assert ref.LogLoss.f(a, y) == pytest.approx(ll, rel=1e-14)
    # a single sample (1-D) is one sample, not K samples
    assert ref.CrossEntropy.f(a[0], y[0]) == pytest.approx(-np.log(0.8) - np.log(0.7), rel=1e-14)


def test_losses_are_exported_at_top_level():
    assert fastnet.CrossEntropy is ref.CrossEntropy
    assert fastnet.Quadratic is ref.Quadratic
    assert fastnet.L2 is ref.L2 and fastnet.L1 is ref.L1


@pytest.mark.parametrize("loss", LOSSES, ids=lambda c: c.name)
def test_loss_df_matches_finite_differences(loss):
    a, y = _ay(np.random.default_rng(0))
    fd = numerical_gradient(lambda: loss.f(a, y), a)
    np.testing.assert_allclose(loss.df(a, y), fd, rtol=1e-7, atol=1e-10)
    a1, y1 = a[0].copy(), y[0]
    fd1 = numerical_gradient(lambda: loss.f(a1, y1), a1)
    np.testing.assert_allclose(loss.df(a1, y1), fd1, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("loss", [ref.CrossEntropy, ref.LogLoss], ids=lambda c: c.name)
def test_log_losses_are_clipped_at_exact_zero_and_one(loss):
    a = np.array([[0.0, 1.0, 1.0, 0.0]])
    y = np.array([[1.0, 0.0, 1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J = loss.f(a, y)
        g = loss.df(a, y)
    assert np.isfinite(J)
    expected = 2 * -np.log(LOG_CLIP) if loss is ref.CrossEntropy else -np.log(LOG_CLIP)
    assert J == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(g))


def test_loss_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        ref.Quadratic.f(np.zeros((3, 2)), np.zeros((2, 3)))


def test_losses_are_float64_for_float32_input():
    a, y = _ay(np.random.default_rng(1))
    for loss in LOSSES:
        J32 = loss.f(a.astype(np.float32), y.astype(np.float32))
        assert isinstance(J32, float)
        assert J32 == pytest.approx(loss.f(a.astype(np.float32).astype(np.float64),
                                           y.astype(np.float32).astype(np.float64)), rel=1e-14)


# ---------------------------------------------------------------------- penalties
@pytest.mark.parametrize("pen", [ref.L2, ref.L1], ids=lambda c: c.name)
def test_penalty_df_matches_finite_differences_and_skips_bias(pen):
    rng = np.random.default_rng(2)
    theta = rng.uniform(0.1, 1.0, size=(4, 6)) * rng.choice([-1, 1], size=(4, 6))  # no zero weight
    fd = numerical_gradient(lambda: pen.f(theta, 0.7), theta)
    g = pen.df(theta, 0.7)
    np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-10)
    assert np.all(g[:, 0] == 0)
    # the bias column does not enter the penalty
    t2 = theta.copy()
    t2[:, 0] = 100.0
    assert pen.f(t2, 0.7) == pen.f(theta, 0.7)


def test_penalty_values_by_hand():
    theta = np.array([[5.0, 1.0, -2.0], [-7.0, 0.5, 0.0]])
    assert ref.L2.f(theta, 0.1) == pytest.approx(0.05 * (1 + 4 + 0.25))
    assert ref.L1.f(theta, 0.1) == pytest.approx(0.1 * 3.5)
    np.testing.assert_array_equal(ref.L1.df(theta, 1.0), [[0, 1, -1], [0, 1, 0]])
    np.testing.assert_array_equal(ref.L2.df(theta, 2.0), [[0, 2, -4], [0, 1, 0]])
    theta_copy = theta.copy()
    ref.L2.df(theta, 1.0)
    np.testing.assert_array_equal(theta, theta_copy)  # df does not touch its argument


# ------------------------------------------------------- the loss / penalty kernels
LOSS_CODES = _backend.LOSS_CODES


@pytest.mark.parametrize("loss", LOSSES, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_loss_kernel_is_the_summed_loss(loss, dtype, backend):
    need_kernels("loss")
    a, y = _ay(np.random.default_rng(3), m=7, K=4)
    a, y = a.astype(dtype), y.astype(dtype)
    total = _backend.kernels().loss(LOSS_CODES[loss.name], a, y)
    assert isinstance(total, float)
    assert_close(total, loss.f(a, y) * 7, rtol=1e-10 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("code,pen", [(1, ref.L2), (2, ref.L1)])
def test_penalty_kernels_match_the_penalty_classes(code, pen, backend):
    need_kernels("penalty_value", "penalty_grad")
    rng = np.random.default_rng(4)
    thetas = [rng.normal(size=(4, 3)), rng.normal(size=(2, 5))]
    params, sizes = pack(thetas), sizes_of(thetas)
    K = _backend.kernels()
    assert K.penalty_value(code, 0.3, params, sizes) == pytest.approx(
        sum(pen.f(t, 0.3) for t in thetas), rel=1e-12)
    assert K.penalty_value(0, 0.3, params, sizes) == 0.0
    grad = np.ones_like(params)
    K.penalty_grad(code, 0.3, params, sizes, grad)
    expected = pack([1 + pen.df(t, 0.3) for t in thetas])
    assert_close(grad, expected)
