"""Finite-difference checks of backprop, and per-sample vs vectorised vs top level agreement.

Central differences at eps = 1e-6 in float64 for 1, 2 and 3 layers, every
activation in the hidden layers and at the output (loss 'quadratic'), the
course's sigmoid + cross-entropy, softmax + log-loss, with no penalty, L1 and
L2.  ReLu kinks and L1's kink at zero are kept out of reach of the
perturbation.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import fastnet
from fastnet import reference as ref
from conftest import assert_close, need_kernels, numerical_gradient

EPS = 1e-6
HIDDEN = ["linear", "sigmoid", "relu", "tanh"]
# (output activation, loss)
OUTPUTS = [("linear", "quadratic"), ("sigmoid", "quadratic"), ("relu", "quadratic"),
           ("tanh", "quadratic"), ("sigmoid", "cross_entropy"), ("softmax", "log_loss"),
           ("sigmoid", "log_loss")]
PENALTIES = [None, "l1", "l2"]
ACT = {a.name: a for a in (ref.Linear, ref.Sigmoid, ref.ReLu, ref.TanH, ref.Softmax)}


def _cases():
    cases = []
    for (out, loss), pen in itertools.product(OUTPUTS, PENALTIES):
        cases.append(((), out, loss, pen))
    for hidden, (out, loss), pen in itertools.product(HIDDEN, OUTPUTS, PENALTIES):
        cases.append(((hidden,), out, loss, pen))
    # three layers: every ordered pair of hidden activations, outputs and penalties cycled
    for i, (h1, h2) in enumerate(itertools.product(HIDDEN, HIDDEN)):
        out, loss = OUTPUTS[i % len(OUTPUTS)]
        cases.append(((h1, h2), out, loss, PENALTIES[i % 3]))
    return cases


CASES = _cases()


def _case_id(case):
    hidden, out, loss, pen = case
    return "-".join(list(hidden) + [out, loss, str(pen)])


def _pre_activations(thetas, acts, X):
    A, zs = X, []
    for theta, act in zip(thetas, acts):
        Z = np.c_[np.ones(len(A)), A] @ theta.T
        zs.append(Z)
        A = act.f(Z)
    return zs


def make_problem(hidden, out, loss, m=6, n_in=4, K=3, seed=0, widths=None):
    """A random network and data with every ReLu pre-activation and every weight at
    least 1e-3 away from zero, so central differences never cross a kink."""
    rng = np.random.default_rng(seed)
    names = list(hidden) + [out]
    widths = widths or [n_in] + [int(rng.integers(2, 5)) for _ in hidden] + [K]
    for attempt in range(200):
        thetas = [rng.uniform(-0.9, 0.9, size=(widths[l + 1], widths[l] + 1))
                  for l in range(len(names))]
        for t in thetas:
            small = np.abs(t) < 1e-3
            t[small] = 0.5
        X = rng.normal(size=(m, widths[0]))
        acts = [ACT[a] for a in names]
        zs = _pre_activations(thetas, acts, X)
        if all(np.min(np.abs(z)) > 1e-3 for z, a in zip(zs, names) if a == "relu"):
            break
    else:  # pragma: no cover
        raise RuntimeError("could not draw a ReLu network away from its kinks")
    if loss == "quadratic":
        y = rng.normal(size=(m, widths[-1]))
    else:
        y = rng.integers(0, widths[-1], size=m)
        y[:widths[-1]] = np.arange(min(m, widths[-1]))  # every class present
    model = [x for pair in zip(thetas, acts) for x in pair]
    return model, X, y


def _check_fd(backprop, model, X, y, lam, pen, loss, label):
    thetas = model[0::2]
    J, grads = backprop(model, X, y, lam=lam, penalty=pen, loss=loss)
    assert isinstance(J, float) and np.isfinite(J), label
    assert len(grads) == len(thetas)
    for l, theta in enumerate(thetas):
        assert grads[l].shape == theta.shape, label
        fd = numerical_gradient(
            lambda: backprop(model, X, y, lam=lam, penalty=pen, loss=loss)[0], theta, EPS)
        scale = max(1.0, float(np.max(np.abs(fd))))
        np.testing.assert_allclose(grads[l], fd, rtol=1e-6, atol=1e-7 * scale,
                                   err_msg=f"{label}: gradient of layer {l}")
    return J, grads


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_reference_backprop_matches_finite_differences(case):
    hidden, out, loss, pen = case
    model, X, y = make_problem(hidden, out, loss, seed=len(hidden) * 100 + CASES.index(case))
    lam = 0.3 if pen else 0.0
    J1, g1 = _check_fd(ref.backprop, model, X, y, lam, pen, loss, "reference.backprop")
    J2, g2 = _check_fd(ref.backprop_vectorized, model, X, y, lam, pen, loss,
                       "reference.backprop_vectorized")
    # per-sample and vectorised agree to rounding
    assert J2 == pytest.approx(J1, rel=1e-12)
    for a, b in zip(g1, g2):
        assert_close(b, a, rtol=1e-12)


@pytest.mark.parametrize("case", CASES[::3] + CASES[1::9], ids=_case_id)
@pytest.mark.parametrize("fn", ["backprop", "backprop_vectorized"])
def test_top_level_backprop_matches_finite_differences(case, fn, backend):
    need_kernels("backprop_samples", "backprop_batch", "penalty_value", "penalty_grad")
    hidden, out, loss, pen = case
    model, X, y = make_problem(hidden, out, loss, seed=7 + CASES.index(case))
    lam = 0.25 if pen else 0.0
    J, grads = _check_fd(getattr(fastnet, fn), model, X, y, lam, pen, loss,
                         f"fastnet.{fn} on {backend}")
    Jr, gr = ref.backprop(model, X, y, lam=lam, penalty=pen, loss=loss)
    assert J == pytest.approx(Jr, rel=1e-10)
    for a, b in zip(grads, gr):
        assert_close(a, b, err_msg=f"fastnet.{fn} on {backend} vs reference")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_top_level_matches_reference_every_case(case, backend):
    need_kernels("backprop_samples", "backprop_batch", "penalty_value", "penalty_grad")
    hidden, out, loss, pen = case
    model, X, y = make_problem(hidden, out, loss, m=9, seed=3 + CASES.index(case))
    lam = 0.1 if pen else 0.0
    Jr, gr = ref.backprop(model, X, y, lam=lam, penalty=pen, loss=loss)
    for fn in (fastnet.backprop, fastnet.backprop_vectorized):
        J, grads = fn(model, X, y, lam=lam, penalty=pen, loss=loss)
        assert J == pytest.approx(Jr, rel=1e-10), f"{fn.__name__} on {backend}"
        for a, b in zip(grads, gr):
            assert_close(a, b, err_msg=f"{fn.__name__} on {backend}")


@pytest.mark.parametrize("fn", ["backprop", "backprop_vectorized"])
def test_float32_backprop_close_to_float64(fn, backend):
    need_kernels("backprop_samples", "backprop_batch")
    model, X, y = make_problem(("sigmoid", "tanh"), "sigmoid", "cross_entropy", m=20, seed=5)
    J64, g64 = getattr(ref, fn)(model, X, y, lam=0.1, penalty="l2")
    model32 = [m.astype(np.float32) if isinstance(m, np.ndarray) else m for m in model]
    J32, g32 = getattr(fastnet, fn)(model32, X.astype(np.float32), y, lam=0.1, penalty="l2")
    assert all(g.dtype == np.float32 for g in g32)
    assert J32 == pytest.approx(J64, rel=1e-5)
    for a, b in zip(g32, g64):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.max(np.abs(b)))


def test_course_two_layer_formula():
    """The course's own two-layer backprop (sigmoid everywhere, cross-entropy, L2 on
    non-bias weights), written out, gives the same J and gradients."""
    rng = np.random.default_rng(11)
    T1, T2 = ref.init_weights(5, 4, rng=rng), ref.init_weights(4, 3, rng=rng)
    X, y = rng.normal(size=(8, 5)), rng.integers(0, 3, size=8)
    lam = 0.2
    m = X.shape[0]
    D1, D2 = np.zeros_like(T1), np.zeros_like(T2)
    J = 0.0
    for i in range(m):
        a1 = np.r_[1, X[i]]
        z2 = T1 @ a1
        a2 = np.r_[1, 1 / (1 + np.exp(-z2))]
        h = 1 / (1 + np.exp(-(T2 @ a2)))
        yv = np.eye(3)[y[i]]
        J += np.sum(-yv * np.log(h) - (1 - yv) * np.log(1 - h))
        d3 = h - yv
        d2 = (T2[:, 1:].T @ d3) * a2[1:] * (1 - a2[1:])
        D2 += np.outer(d3, a2)
        D1 += np.outer(d2, a1)
    J = J / m + lam / 2 * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2))
    G1, G2 = D1 / m, D2 / m
    G1[:, 1:] += lam * T1[:, 1:]
    G2[:, 1:] += lam * T2[:, 1:]
    for fn in (ref.backprop, ref.backprop_vectorized, fastnet.backprop):
        Jf, (g1, g2) = fn([T1, fastnet.Sigmoid, T2, ref.Sigmoid], X, y, lam=lam, penalty="l2")
        assert Jf == pytest.approx(J, rel=1e-12)
        assert_close(g1, G1)
        assert_close(g2, G2)


@pytest.mark.parametrize("pen", PENALTIES)
def test_single_output_binary_classifier(pen, backend):
    """One sigmoid output with 0/1 targets (y 1-D holds the targets themselves)."""
    model, X, _ = make_problem(("tanh",), "sigmoid", "cross_entropy", m=7, seed=9,
                               widths=[3, 4, 1])
    y = np.array([0, 1, 1, 0, 1, 0, 0], dtype=float)
    lam = 0.2 if pen else 0.0
    J, g = _check_fd(ref.backprop, model, X, y, lam, pen, "cross_entropy", "single output")
    need_kernels("backprop_samples", "backprop_batch", "penalty_value", "penalty_grad")
    Jt, gt = fastnet.backprop(model, X, y, lam=lam, penalty=pen)
    assert Jt == pytest.approx(J, rel=1e-10)
    for a, b in zip(gt, g):
        assert_close(a, b)


@pytest.mark.parametrize("fn", [ref.backprop, ref.backprop_vectorized, fastnet.backprop])
def test_softmax_with_soft_labels(fn):
    """Rows of non-negative targets summing to 1 (soft labels) are fine for softmax +
    log-loss; other targets are refused (the output error a - y would not be the
    gradient of the cost)."""
    model, X, _ = make_problem(("tanh",), "softmax", "log_loss", seed=12)
    Y = np.random.default_rng(0).uniform(0.1, 1, size=(X.shape[0], model[-2].shape[0]))
    _check_fd(fn, model, X, Y / Y.sum(axis=1, keepdims=True), 0.0, None, "log_loss",
              "soft labels")
    with pytest.raises(ValueError, match=r"y: row 0 of the targets is not a probability "
                                         r"distribution"):
        fn(model, X, Y, loss="log_loss")
    Y2 = np.eye(model[-2].shape[0])[np.arange(X.shape[0]) % model[-2].shape[0]]
    Y2[1] = [1.5, -0.5, 0.0]
    with pytest.raises(ValueError, match="row 1 of the targets"):
        fn(model, X, Y2, loss="log_loss")


def test_zero_lambda_means_no_penalty():
    model, X, y = make_problem(("tanh",), "sigmoid", "cross_entropy", seed=2)
    J0, g0 = ref.backprop(model, X, y)
    for pen in ("l1", "l2"):
        J, g = ref.backprop(model, X, y, lam=0.0, penalty=pen)
        assert J == J0
        for a, b in zip(g, g0):
            np.testing.assert_array_equal(a, b)


def test_two_dimensional_targets_equal_one_hot_labels():
    model, X, y = make_problem(("relu",), "sigmoid", "cross_entropy", seed=4)
    K = model[-2].shape[0]
    J1, g1 = ref.backprop(model, X, y)
    J2, g2 = ref.backprop(model, X, ref.one_hot(K, y))
    assert J1 == J2
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------- hypothesis
ACT_CHOICES = st.sampled_from(HIDDEN)


@st.composite
def networks(draw):
    n_layers = draw(st.integers(1, 4))
    widths = [draw(st.integers(1, 30)) for _ in range(n_layers + 1)]
    hidden = tuple(draw(ACT_CHOICES) for _ in range(n_layers - 1))
    out, loss = draw(st.sampled_from(OUTPUTS))
    if out == "softmax" and widths[-1] == 1:
        widths[-1] = 2
    m = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    pen = draw(st.sampled_from(PENALTIES))
    return hidden, out, loss, pen, widths, m, seed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_hypothesis_per_sample_vectorised_and_top_level_agree(net):
    hidden, out, loss, pen, widths, m, seed = net
    rng = np.random.default_rng(seed)
    acts = [ACT[a] for a in list(hidden) + [out]]
    thetas = [rng.uniform(-1, 1, size=(widths[l + 1], widths[l] + 1)) for l in range(len(acts))]
    model = [x for pair in zip(thetas, acts) for x in pair]
    X = rng.normal(size=(m, widths[0]))
    if loss == "quadratic":
        y = rng.normal(size=(m, widths[-1]))
    elif widths[-1] == 1:
        y = rng.integers(0, 2, size=m).astype(float)
    else:
        y = rng.integers(0, widths[-1], size=m)
    lam = 0.05 if pen else 0.0
    J1, g1 = ref.backprop(model, X, y, lam=lam, penalty=pen, loss=loss)
    J2, g2 = ref.backprop_vectorized(model, X, y, lam=lam, penalty=pen, loss=loss)
    assert J2 == pytest.approx(J1, rel=1e-12, abs=1e-300)
    for a, b in zip(g2, g1):
        assert a.shape == b.shape
        assert_close(a, b, rtol=1e-12)
    for backend in fastnet.available_backends():
        with fastnet.use_backend(backend):
            from conftest import missing_kernels
            if missing_kernels(None, "backprop_samples", "backprop_batch", "penalty_value",
                               "penalty_grad"):
                continue
            for fn in (fastnet.backprop, fastnet.backprop_vectorized):
                J, g = fn(model, X, y, lam=lam, penalty=pen, loss=loss)
                assert J == pytest.approx(J1, rel=1e-10, abs=1e-300), (backend, fn.__name__)
                for a, b in zip(g, g1):
                    assert_close(a, b, err_msg=f"{fn.__name__} on {backend}")
