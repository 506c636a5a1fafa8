"""The optimiser step of the reference against hand-written formulas (and scikit-learn's)."""
import numpy as np
import pytest

from fastnet._codes import Optimizer
from fastnet.reference import kernels as REF


def _run(code, steps=4, dtype=np.float64, mu=0.9, rho=0.999, lr=0.01, eps=1e-8):
    rng = np.random.default_rng(int(code))
    p = rng.standard_normal(7).astype(dtype)
    grads = [rng.standard_normal(7).astype(dtype) for _ in range(steps)]
    state = np.zeros(14, dtype)
    out = p.copy()
    for t, g in enumerate(grads):
        REF.optimizer_step(code, out, g, state, lr, mu, rho, eps, t)
    return p, grads, out, state


def test_adam_matches_the_paper():
    p, grads, out, state = _run(Optimizer.ADAM)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    w = p.copy()
    for t, g in enumerate(grads, start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - 0.01 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(out, w, rtol=1e-12)
    np.testing.assert_allclose(state[:7], m, rtol=1e-12)
    np.testing.assert_allclose(state[7:], v, rtol=1e-12)


def test_nesterov_is_scikit_learns_form():
    p, grads, out, state = _run(Optimizer.NESTEROV, mu=0.9)
    v = np.zeros_like(p)
    w = p.copy()
    for g in grads:
        v = 0.9 * v - 0.01 * g
        w = w + 0.9 * v - 0.01 * g
    np.testing.assert_allclose(out, w, rtol=1e-12)
    assert not state[7:].any()


def test_adam_agrees_with_scikit_learn():
    opt = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    p, grads, out, _ = _run(Optimizer.ADAM, steps=5, lr=0.003)
    params = [p.copy()]
    sk = opt.AdamOptimizer(params, learning_rate_init=0.003, beta_1=0.9, beta_2=0.999,
                           epsilon=1e-8)
    for g in grads:
        sk.update_params(params, [g])
    np.testing.assert_allclose(out, params[0], rtol=1e-10)


@pytest.mark.parametrize("code", list(Optimizer))
def test_float32_state_stays_float32(code):
    _, _, out, state = _run(code, dtype=np.float32)
    assert out.dtype == np.float32 and state.dtype == np.float32
    assert np.isfinite(out).all()
