"""Training loops: top level vs reference, history, tol, divergence, in-place updates."""
import numpy as np
import pytest

import fastnet
from fastnet import reference as ref
from conftest import assert_close, need_kernels

TRAIN_KERNELS = ("train_epoch", "penalty_value", "forward_network")


def _data(m=37, n=5, K=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = rng.integers(0, K, size=m)
    return X, y


def _model(dtype=np.float64, n=5, hidden=6, K=3, seed=1, acts=(fastnet.TanH, fastnet.Sigmoid)):
    r = np.random.default_rng(seed)
    return [fastnet.init_weights(n, hidden, rng=r, dtype=dtype), acts[0],
            fastnet.init_weights(hidden, K, rng=r, dtype=dtype), acts[1]]


def _compare(a, b, rtol, what):
    for l, (p, q) in enumerate(zip(a[0::2], b[0::2])):
        assert p.dtype == q.dtype
        assert_close(p, q, rtol=rtol, err_msg=f"{what}: Theta{l + 1}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("penalty", [None, "l1", "l2"])
@pytest.mark.parametrize("batch_size", [1, 8, None])
@pytest.mark.parametrize("optimizer", ["gd", "sgd", "momentum", "rmsprop"])
def test_top_level_train_matches_reference(optimizer, batch_size, penalty, dtype, backend):
    need_kernels(*TRAIN_KERNELS)
    X, y = _data()
    X = X.astype(dtype)
    top, oracle = _model(dtype), _model(dtype)
    # RMSprop divides by sqrt of running squares: chaotic on near-zero gradients, so 1 epoch.
    epochs = 1 if optimizer == "rmsprop" else 2
    kw = dict(optimizer=optimizer, batch_size=batch_size, epochs=epochs, lam=0.01,
              penalty=penalty, lr=0.05, rng=3)
    h1 = fastnet.train(top, X, y, **kw)
    h2 = ref.train(oracle, X, y, **kw)
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    what = f"train({optimizer}, batch_size={batch_size}, {penalty}, {np.dtype(dtype)}) on {backend}"
    _compare(top, oracle, rtol, what)
    assert h1["epochs"] == h2["epochs"] == epochs
    np.testing.assert_allclose(h1["J"], h2["J"], rtol=1e-10 if dtype == np.float64 else 1e-6,
                               err_msg=what)


@pytest.mark.parametrize("loss,acts", [
    ("quadratic", (fastnet.ReLu, fastnet.Linear)),
    ("log_loss", (fastnet.Sigmoid, fastnet.Softmax)),
    ("cross_entropy", (fastnet.Linear, fastnet.Sigmoid)),
])
def test_top_level_train_matches_reference_other_losses(loss, acts, backend):
    need_kernels(*TRAIN_KERNELS)
    X, y = _data(m=25)
    if loss == "quadratic":
        y = np.random.default_rng(9).normal(size=(25, 3))
    top, oracle = _model(acts=acts), _model(acts=acts)
    kw = dict(optimizer="momentum", batch_size=4, epochs=2, lr=0.05, loss=loss, rng=1)
    h1, h2 = fastnet.train(top, X, y, **kw), ref.train(oracle, X, y, **kw)
    _compare(top, oracle, 1e-10, f"train(loss={loss}) on {backend}")
    np.testing.assert_allclose(h1["J"], h2["J"], rtol=1e-10)


def test_full_batch_gd_records_the_cost_before_each_step(impl):
    need_kernels(*TRAIN_KERNELS)
    X, y = _data()
    model = _model()
    start = [t.copy() for t in model[0::2]]
    J0 = ref.backprop([start[0], ref.TanH, start[1], ref.Sigmoid], X, y, lam=0.1,
                      penalty="l2")[0]
    hist = impl.train(model, X, y, optimizer="gd", lr=0.5, epochs=3, lam=0.1, penalty="l2")
    assert hist["J"][0] == pytest.approx(J0, rel=1e-12)
    # one explicit gradient step reproduces epoch 1's weights
    _, grads = ref.backprop([start[0], ref.TanH, start[1], ref.Sigmoid], X, y, lam=0.1,
                            penalty="l2")
    stepped = [t - 0.5 * g for t, g in zip(start, grads)]
    J1 = ref.backprop([stepped[0], ref.TanH, stepped[1], ref.Sigmoid], X, y, lam=0.1,
                      penalty="l2")[0]
    assert hist["J"][1] == pytest.approx(J1, rel=1e-12)
    assert hist["J"][2] < hist["J"][1] < hist["J"][0]


def test_history_contents(impl):
    need_kernels(*TRAIN_KERNELS)
    X, y = _data(m=40)
    Xt, yt = _data(m=15, seed=5)
    model = _model()
    hist = impl.train(model, X, y, optimizer="sgd", batch_size=5, epochs=4, lr=0.2, rng=0,
                     X_test=Xt, y_test=yt)
    assert isinstance(hist, fastnet.History)
    assert hist["epochs"] == 4 and hist["converged"] is False
    for key in ("J", "train_acc", "test_acc", "seconds"):
        assert len(hist[key]) == 4, key
    assert hist.J == hist["J"]
    assert all(np.isfinite(hist["J"]))
    assert all(0 <= a <= 100 for a in hist["train_acc"] + hist["test_acc"])
    assert all(s >= 0 for s in hist["seconds"])
    # the last accuracies are those of the trained model
    assert hist["train_acc"][-1] == pytest.approx(ref.accuracy(ref.predict(model, X), y))
    assert hist["test_acc"][-1] == pytest.approx(ref.accuracy(ref.predict(model, Xt), yt))
    assert "History(epochs=4" in repr(hist)
    plain = impl.train(_model(), X, y, epochs=2)
    assert "train_acc" not in plain and "test_acc" not in plain


def test_tol_stops_training(impl):
    need_kernels(*TRAIN_KERNELS)
    X, y = _data(m=30)
    hist = impl.gradient_descent(_model(), X, y, lr=1.0, tol=1e-3, max_epochs=5000)
    assert hist["converged"] is True
    assert 2 <= hist["epochs"] < 5000
    assert len(hist["J"]) == hist["epochs"]
    assert abs(hist["J"][-1] - hist["J"][-2]) < 1e-3
    assert all(abs(a - b) >= 1e-3 for a, b in zip(hist["J"][:-2], hist["J"][1:-1]))
    full = impl.train(_model(), X, y, lr=0.5, epochs=hist["epochs"] + 5)
    assert full["epochs"] == hist["epochs"] + 5 and full["converged"] is False


@pytest.mark.parametrize("optimizer,batch_size,lr", [
    ("gd", None, 1e6), ("gd", None, 1e150), ("sgd", 1, 1e6), ("sgd", 5, 1e6),
    ("momentum", 4, 1e3), ("rmsprop", 2, 1e200)])
def test_divergence_error(optimizer, batch_size, lr, backend):
    """A huge learning rate stops with DivergenceError (no overflow warning: the
    suite turns fastnet's RuntimeWarnings into errors), at the same epoch on the top
    level and in the reference, leaving the last finite weights in the model's arrays."""
    need_kernels(*TRAIN_KERNELS)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)) * 10, rng.normal(size=20)
    messages = []
    for mod in (fastnet, ref):
        model = [fastnet.init_weights(3, 4, rng=1), fastnet.Linear,
                 fastnet.init_weights(4, 1, rng=2), fastnet.Linear]
        arrays = model[0::2]
        with pytest.raises(fastnet.DivergenceError,
                           match=r"diverged at epoch \d+.*smaller learning rate") as info:
            mod.train(model, X, y, optimizer=optimizer, batch_size=batch_size, lr=lr,
                      epochs=200, loss="quadratic", rng=0)
        assert isinstance(info.value, ValueError)
        assert f"lr={lr:g}" in str(info.value)
        assert model[0] is arrays[0] and model[2] is arrays[1]
        assert all(np.all(np.isfinite(t)) for t in arrays)
        messages.append(str(info.value).split(":")[0])
    assert messages[0] == messages[1]  # the same epoch


def test_weights_that_overflow_are_divergence_even_with_a_finite_cost(backend):
    """A saturated sigmoid keeps the clipped cost finite while the weights overflow: the
    weights' overflow is a divergence all the same."""
    need_kernels(*TRAIN_KERNELS)
    rng = np.random.default_rng(0)
    X, y = np.abs(rng.normal(size=(20, 3))) * 10, rng.integers(0, 2, size=20)
    for mod in (fastnet, ref):
        model = [fastnet.init_weights(3, 2, rng=1), fastnet.Sigmoid]
        with pytest.raises(fastnet.DivergenceError, match="smaller learning rate"):
            mod.train(model, X, y, lr=1e308, epochs=20)


def test_model_is_updated_in_place(impl):
    need_kernels(*TRAIN_KERNELS)
    X, y = _data()
    model = _model()
    arrays = model[0::2]
    before = [a.copy() for a in arrays]
    impl.train(model, X, y, epochs=2)
    assert model[0] is arrays[0] and model[2] is arrays[1]
    assert not np.array_equal(arrays[0], before[0])
    # a model given as nested lists gets arrays in its entries
    lists = [t.tolist() for t in before]
    model2 = [lists[0], fastnet.TanH, lists[1], fastnet.Sigmoid]
    impl.train(model2, X, y, epochs=2)
    assert isinstance(model2[0], np.ndarray)
    assert_close(model2[0], arrays[0])
    assert_close(model2[2], arrays[1])


def test_rng_makes_shuffles_reproducible(impl):
    need_kernels(*TRAIN_KERNELS)
    X, y = _data()
    a, b, c = _model(), _model(), _model()
    impl.train(a, X, y, optimizer="sgd", epochs=2, rng=7)
    impl.train(b, X, y, optimizer="sgd", epochs=2, rng=np.random.default_rng(7))
    impl.train(c, X, y, optimizer="sgd", epochs=2, rng=8)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], c[0])


def test_named_loops_are_train_with_their_settings(impl):
    need_kernels(*TRAIN_KERNELS)
    X, y = _data()
    cases = [
        (impl.gradient_descent, dict(lr=0.3, tol=1e-9, max_epochs=3),
         dict(optimizer="gd", lr=0.3, tol=1e-9, epochs=3)),
        (impl.train_online, dict(lr=0.1, epochs=2, rng=1),
         dict(optimizer="sgd", batch_size=1, lr=0.1, epochs=2, rng=1)),
        (impl.train_minibatch, dict(batch_size=8, lr=0.1, epochs=2, rng=1),
         dict(optimizer="sgd", batch_size=8, lr=0.1, epochs=2, rng=1)),
        (impl.train_momentum, dict(batch_size=8, lr=0.1, momentum=0.8, epochs=2, rng=1),
         dict(optimizer="momentum", batch_size=8, lr=0.1, momentum=0.8, epochs=2, rng=1)),
        (impl.train_rmsprop, dict(batch_size=8, lr=0.01, rho=0.95, epochs=1, rng=1),
         dict(optimizer="rmsprop", batch_size=8, lr=0.01, rho=0.95, epochs=1, rng=1)),
    ]
    for loop, kw, train_kw in cases:
        a, b = _model(), _model()
        ha = loop(a, X, y, **kw)
        hb = impl.train(b, X, y, **train_kw)
        np.testing.assert_array_equal(a[0], b[0], err_msg=loop.__name__)
        assert ha["J"] == hb["J"]


def test_training_learns(backend):
    """Each optimiser lowers the cost on a separable problem and fits it well."""
    need_kernels(*TRAIN_KERNELS)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    for opt, lr in (("gd", 2.0), ("sgd", 0.2), ("momentum", 0.1), ("rmsprop", 0.01)):
        model = [fastnet.init_weights(2, 4, rng=1), fastnet.Sigmoid,
                 fastnet.init_weights(4, 2, rng=2), fastnet.Sigmoid]
        hist = fastnet.train(model, X, y, optimizer=opt, lr=lr, epochs=40, batch_size=None
                             if opt == "gd" else 10, rng=0, X_test=X, y_test=y)
        assert hist["J"][-1] < 0.6 * hist["J"][0], opt
        assert hist["train_acc"][-1] >= 95, opt


def test_float32_model_trained_with_float64_data_keeps_its_arrays(backend):
    need_kernels(*TRAIN_KERNELS)
    X, y = _data()
    model = _model(np.float32)
    arr = model[0]
    fastnet.train(model, X, y, epochs=2)
    assert model[0] is arr and arr.dtype == np.float32


def test_verbose_prints(capsys, backend):
    need_kernels(*TRAIN_KERNELS)
    X, y = _data()
    fastnet.train(_model(), X, y, epochs=4, verbose=2)
    out = capsys.readouterr().out
    assert "epoch 2: J =" in out and "epoch 4: J =" in out and "epoch 3" not in out


# ------------------------------------------------------------------------- hypothesis
from hypothesis import given, settings, strategies as st, HealthCheck  # noqa: E402


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(widths=st.lists(st.integers(1, 12), min_size=2, max_size=4),
       acts=st.lists(st.sampled_from(["linear", "sigmoid", "relu", "tanh"]), min_size=3,
                     max_size=3),
       m=st.integers(1, 30), batch_size=st.integers(1, 35),
       optimizer=st.sampled_from(["gd", "sgd", "momentum", "rmsprop"]),
       penalty=st.sampled_from([None, "l1", "l2"]), seed=st.integers(0, 2**31 - 1))
def test_hypothesis_train_one_epoch_matches_reference(widths, acts, m, batch_size, optimizer,
                                                      penalty, seed):
    rng = np.random.default_rng(seed)
    L = len(widths) - 1
    names = acts[:L - 1] + ["sigmoid"]
    X = rng.normal(size=(m, widths[0]))
    y = rng.integers(0, 2, size=m) if widths[-1] == 1 else rng.integers(0, widths[-1], size=m)

    def model():
        r = np.random.default_rng(seed)
        return [x for l in range(L) for x in (r.uniform(-1, 1, (widths[l + 1], widths[l] + 1)),
                                              names[l])]

    kw = dict(optimizer=optimizer, batch_size=batch_size, epochs=1, lr=0.1, lam=0.01,
              penalty=penalty, rng=seed)
    oracle = model()
    h_ref = ref.train(oracle, X, y, **kw)
    for backend in fastnet.available_backends():
        with fastnet.use_backend(backend):
            from conftest import missing_kernels
            if missing_kernels(None, *TRAIN_KERNELS):
                continue
            top = model()
            h = fastnet.train(top, X, y, **kw)
            np.testing.assert_allclose(h["J"], h_ref["J"], rtol=1e-10, err_msg=backend)
            _compare(top, oracle, 1e-10, f"{optimizer} batch {batch_size} on {backend}")
