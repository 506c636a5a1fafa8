"""Linear and logistic regression: costs and gradients, gradient descent, top level vs reference."""
import numpy as np
import pytest

import fastnet
from fastnet import reference as ref
from conftest import assert_close, need_kernels, numerical_gradient


def _regression(m=30, n=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = 1.5 + X @ np.arange(1, n + 1) + 0.1 * rng.normal(size=m)
    return X, y


def _classification(m=40, n=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = (X @ np.ones(n) + 0.5 * rng.normal(size=m) > 0).astype(np.int64)
    return X, y


# ------------------------------------------------------------- costs and gradients
def test_linear_cost_and_gradient_by_hand():
    X = np.array([[1.0], [2.0]])
    y = np.array([2.0, 3.0])
    theta = np.array([0.5, 1.0])  # h = [1.5, 2.5], r = [-0.5, -0.5]
    assert ref.linear_cost(theta, X, y) == pytest.approx(0.25 / 2)
    np.testing.assert_allclose(ref.linear_gradient(theta, X, y), [-0.5, -0.75])
    np.testing.assert_allclose(ref.linear_predict(theta, X), [1.5, 2.5])
    np.testing.assert_allclose(ref.linear_predict(theta, [1.0, 2.0]), [1.5, 2.5])  # 1-D X


def test_logistic_cost_by_hand():
    X = np.array([[0.0], [0.0]])
    y = np.array([0, 1])
    assert ref.logistic_cost(np.zeros(2), X, y) == pytest.approx(np.log(2))
    np.testing.assert_allclose(ref.logistic_gradient(np.zeros(2), X, y), [0.0, 0.0])


@pytest.mark.parametrize("kind", ["linear", "logistic"])
def test_gradient_matches_finite_differences(kind):
    X, y = (_regression if kind == "linear" else _classification)(seed=1)
    theta = np.random.default_rng(2).normal(size=X.shape[1] + 1)
    cost = getattr(ref, f"{kind}_cost")
    grad = getattr(ref, f"{kind}_gradient")
    fd = numerical_gradient(lambda: cost(theta, X, y), theta)
    np.testing.assert_allclose(grad(theta, X, y), fd, rtol=1e-7, atol=1e-9)
    # the top-level names are the same functions
    assert getattr(fastnet, f"{kind}_cost")(theta, X, y) == cost(theta, X, y)


def test_logistic_predict_threshold():
    theta = np.array([0.0, 1.0])
    X = np.array([[-1.0], [0.0], [2.0]])
    np.testing.assert_array_equal(ref.logistic_predict(theta, X), [0, 1, 1])
    np.testing.assert_array_equal(ref.logistic_predict(theta, X, threshold=0.85), [0, 0, 1])


# -------------------------------------------------------------- gradient descent
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["linear", "logistic"])
def test_top_level_matches_reference(kind, dtype, backend):
    need_kernels("linear_gd")
    X, y = (_regression if kind == "linear" else _classification)(seed=3)
    X = X.astype(dtype)
    fit_top, fit_ref = getattr(fastnet, f"{kind}_regression"), getattr(ref, f"{kind}_regression")
    # float32 rounding differs between backends and accumulates over iterations (and moves
    # the iteration where |dJ| < tol): compare float32 on a short fixed-length run
    kw = dict(tol=1e-10, max_iter=300) if dtype == np.float64 else dict(tol=0.0, max_iter=25)
    theta1, h1 = fit_top(X, y, lr=0.1, **kw)
    theta2, h2 = fit_ref(X, y, lr=0.1, **kw)
    assert theta1.dtype == theta2.dtype == dtype
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert_close(theta1, theta2, rtol=rtol, err_msg=f"{kind}_regression on {backend}")
    assert h1["epochs"] == h2["epochs"] == len(h1["J"])
    np.testing.assert_allclose(h1["J"], h2["J"], rtol=rtol)
    assert h1["converged"] == h2["converged"]


def test_linear_regression_reaches_least_squares(impl):
    need_kernels("linear_gd")
    X, y = _regression(seed=4)
    theta, hist = impl.linear_regression(X, y, lr=0.3, tol=1e-15, max_iter=5000)
    lstsq = np.linalg.lstsq(np.c_[np.ones(len(X)), X], y, rcond=None)[0]
    np.testing.assert_allclose(theta, lstsq, rtol=1e-7, atol=1e-9)
    assert hist["converged"] and hist["epochs"] < 5000
    assert all(a >= b for a, b in zip(hist["J"], hist["J"][1:]))  # monotone descent


def test_logistic_regression_reaches_zero_gradient(impl):
    need_kernels("linear_gd")
    X, y = _classification(m=80, seed=5)
    theta, hist = impl.logistic_regression(X, y, lr=1.0, tol=1e-14, max_iter=20000)
    np.testing.assert_allclose(ref.logistic_gradient(theta, X, y), 0, atol=1e-5)
    assert ref.accuracy(ref.logistic_predict(theta, X), y) > 85
    assert hist["J"][-1] == pytest.approx(ref.logistic_cost(theta, X, y), rel=1e-3)


def test_start_theta_is_not_modified_and_max_iter_is_respected(impl):
    need_kernels("linear_gd")
    X, y = _regression(seed=6)
    start = np.array([1.0, 0.0, 0.0, 0.0])
    theta, hist = impl.linear_regression(X, y, lr=0.01, tol=0.0, max_iter=7, theta=start)
    np.testing.assert_array_equal(start, [1.0, 0.0, 0.0, 0.0])
    assert hist["epochs"] == 7 and len(hist["J"]) == 7 and hist["converged"] is False
    assert hist["J"][0] == pytest.approx(ref.linear_cost(start, X, y))
    # seven explicit steps of the course's update rule
    t = start.copy()
    for _ in range(7):
        t -= 0.01 * ref.linear_gradient(t, X, y)
    assert_close(theta, t)


def test_one_dimensional_x_is_one_feature(impl):
    need_kernels("linear_gd")
    x = np.linspace(0, 1, 20)
    theta, _ = impl.linear_regression(x, 2 + 3 * x, lr=0.5, tol=1e-16, max_iter=20000)
    np.testing.assert_allclose(theta, [2, 3], rtol=1e-6)


@pytest.mark.parametrize("kind", ["linear", "logistic"])
def test_divergence_error(impl, kind):
    need_kernels("linear_gd")
    X, y = _regression(seed=7)
    X = X * 100
    if kind == "linear":
        with pytest.raises(fastnet.DivergenceError,
                           match=r"diverged at iteration \d+.*smaller learning rate"):
            impl.linear_regression(X, y, lr=10.0, max_iter=1000)
    else:  # the clipped cross-entropy stays finite, but a huge rate runs away: caught all the same
        with pytest.raises(fastnet.DivergenceError,
                           match=r"diverged at iteration \d+: the cost grew.*smaller learning rate"):
            impl.logistic_regression(X, y > y.mean(), lr=1e6, max_iter=50)
