"""Activations: the course's formulas, numerical safety, dtypes, and top level vs reference."""
import warnings

import numpy as np
import pytest

import fastnet
from fastnet import reference as ref
from conftest import assert_close, missing_kernels, numerical_gradient

NAMES = ["Linear", "Sigmoid", "ReLu", "TanH"]
FORMULAS = {
    "Linear": (lambda z: z, lambda z: np.ones_like(z)),
    "Sigmoid": (lambda z: 1 / (1 + np.exp(-z)),
                lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
    "ReLu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
    "TanH": (np.tanh, lambda z: 1 / np.cosh(z) ** 2),
}


def _z(rng, shape=(5, 7), scale=3.0):
    z = rng.normal(scale=scale, size=shape)
    z[np.abs(z) < 1e-3] = 0.5  # keep away from ReLu's kink for the derivative checks
    return z


@pytest.mark.parametrize("name", NAMES)
def test_reference_matches_course_formula(name):
    z = _z(np.random.default_rng(0))
    f, df = FORMULAS[name]
    act = getattr(ref, name)
    np.testing.assert_allclose(act.f(z), f(z), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(act.df(z), df(z), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_reference_df_is_derivative_of_f(name):
    act = getattr(ref, name)
    z = _z(np.random.default_rng(1), (13,))
    eps = 1e-6
    fd = (act.f(z + eps) - act.f(z - eps)) / (2 * eps)
    np.testing.assert_allclose(act.df(z), fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_top_level_df_is_derivative_of_f(name, backend):
    act = getattr(fastnet, name)
    z = _z(np.random.default_rng(2), (4, 6))
    fd = numerical_gradient(lambda: float(np.sum(act.f(z))), z)
    np.testing.assert_allclose(act.df(z), fd, rtol=1e-7, atol=1e-9,
                               err_msg=f"{name}.df on backend {backend}")


def _f_or_xfail_partial(act, z):
    """``act.f(z)``; a backend still under construction (not implementing the whole
    kernel contract) may not handle softmax yet: that is an expected failure."""
    try:
        return act.f(z)
    except (ValueError, NotImplementedError) as exc:
        if act.name == "softmax" and missing_kernels():
            pytest.xfail(f"partial backend {fastnet.get_backend()!r}: {exc}")
        raise


@pytest.mark.parametrize("name", NAMES + ["Softmax"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(), (1,), (17,), (6, 5), (2, 3, 4)])
def test_top_level_matches_reference(name, dtype, shape, backend):
    z = _z(np.random.default_rng(3), shape).astype(dtype)
    top, oracle = getattr(fastnet, name), getattr(ref, name)
    out = _f_or_xfail_partial(top, z)
    assert np.shape(out) == shape
    assert out.dtype == dtype, f"{name}.f turned {np.dtype(dtype)} into {out.dtype}"
    assert_close(out, oracle.f(z), err_msg=f"{name}.f on {backend}")
    if name != "Softmax":
        d = top.df(z)
        assert d.dtype == dtype
        assert_close(d, oracle.df(z), err_msg=f"{name}.df on {backend}")


@pytest.mark.parametrize("name", NAMES)
def test_top_level_empty_and_noncontiguous(name, backend):
    act = getattr(fastnet, name)
    assert act.f(np.empty((0, 3))).shape == (0, 3)
    z = _z(np.random.default_rng(4), (8, 6))[:, ::2]  # a strided view
    assert_close(act.f(z), getattr(ref, name).f(z))
    assert_close(act.df(z), getattr(ref, name).df(z))


def test_sigmoid_is_stable_at_the_extremes(impl):
    z = np.array([-1000.0, -745.0, -50.0, 0.0, 50.0, 745.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning
        s = impl.Sigmoid.f(z)
        d = impl.Sigmoid.df(z)
        s32 = impl.Sigmoid.f(z.astype(np.float32))
    assert s[0] == 0.0 and s[-1] == 1.0
    assert s[3] == 0.5
    assert np.all(np.isfinite(d)) and 0 <= d[0] < 1e-300 and 0 <= d[-1] < 1e-300
    assert s32.dtype == np.float32 and s32[0] == 0.0 and s32[-1] == 1.0
    # symmetric: s(-z) = 1 - s(z)
    np.testing.assert_allclose(s[::-1], 1 - s, atol=1e-16)


def test_integer_input_is_promoted_to_float64(impl):
    for name in NAMES:
        out = getattr(impl, name).f(np.array([-2, 0, 3]))
        assert out.dtype == np.float64
        assert_close(out, getattr(ref, name).f(np.array([-2.0, 0.0, 3.0])))


def test_python_scalars_and_lists():
    assert fastnet.Sigmoid.f(0.0) == 0.5
    assert fastnet.ReLu.f(-3) == 0.0
    assert_close(fastnet.TanH.f([0.0, 1.0]), np.tanh([0.0, 1.0]))
    assert fastnet.Linear.df(2.5) == 1.0


def test_linear_returns_a_copy():
    z = np.arange(3.0)
    out = ref.Linear.f(z)
    out[0] = 42
    assert z[0] == 0


def test_relu_derivative_at_zero_is_zero():
    assert ref.ReLu.df(np.array([0.0]))[0] == 0.0
    assert fastnet.ReLu.df(np.array([0.0]))[0] == 0.0


def test_softmax_rows_sum_to_one_and_are_shift_invariant(impl):
    z = np.random.default_rng(5).normal(size=(6, 4)) * 10
    s = _f_or_xfail_partial(impl.Softmax, z)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=1e-14)
    assert_close(impl.Softmax.f(z + 1000.0), s)  # no overflow for large inputs
    e = np.exp(z - z.max(axis=1, keepdims=True))
    assert_close(s, e / e.sum(axis=1, keepdims=True))
    with pytest.raises(TypeError, match="log_loss"):
        impl.Softmax.df(z)


def test_activation_names_and_codes_are_shared():
    for name in NAMES + ["Softmax"]:
        top, oracle = getattr(fastnet, name), getattr(ref, name)
        assert issubclass(top, oracle)
        assert top.name == oracle.name and top.code == oracle.code
        assert fastnet._backend.ACTIVATION_CODES[top.name] == top.code


def test_top_level_activation_rejects_strings():
    with pytest.raises(TypeError, match="z"):
        fastnet.Sigmoid.f(np.array(["a", "b"]))
