"""User-defined activations in the course's style (issue 16): any object with f(z) and df(z).

The course's own `class Sigmoid(Activation)` (whose df calls Sigmoid.f) and a softplus, in model
lists, forward, backprop and the training loops, on every backend against the reference; the
numpy fallback warns once naming the class; predict(Theta1, Theta2, X).
"""
import warnings

import numpy as np
import pytest

import fastnet
from fastnet._validation import UserActivation, resolve_activation

from conftest import assert_close, need, numerical_gradient


class Activation:  # the course's base class
    pass


class Sigmoid(Activation):  # the course's slide, as written
    @staticmethod
    def f(z):
        return 1 / (1 + np.exp(-z))

    @staticmethod
    def df(z):
        return Sigmoid.f(z) * (1 - Sigmoid.f(z))


class Softplus(Activation):
    @staticmethod
    def f(z):
        return np.log1p(np.exp(z))

    @staticmethod
    def df(z):
        return 1 / (1 + np.exp(-z))


class Lookup:
    """Computes through a Python dict: Numba cannot compile it (the numpy fallback runs it)."""
    table = {"slope": 0.5}

    @staticmethod
    def f(z):
        return z * Lookup.table["slope"]

    @staticmethod
    def df(z):
        return np.ones_like(z) * Lookup.table["slope"]


def _data(m=40, n=4, K=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.random((m, n)).astype(dtype), rng.integers(0, K, m)


def _model(hidden_act, out_act=Sigmoid, dtype=np.float64):
    return [fastnet.init_weights(4, 5, rng=0, dtype=dtype), hidden_act,
            fastnet.init_weights(5, 3, rng=1, dtype=dtype), out_act]


class _quiet:
    """Silence the fallback's warning (tested on its own below)."""

    def __enter__(self):
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", UserWarning)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def test_builtins_stay_builtins_and_user_classes_are_wrapped():
    assert resolve_activation(fastnet.Sigmoid) is fastnet.reference.Sigmoid
    assert resolve_activation("logistic") is fastnet.reference.Sigmoid
    user = resolve_activation(Sigmoid)  # the course's own class of the same name
    assert isinstance(user, UserActivation) and user.code is None and user.label == "Sigmoid"
    assert isinstance(resolve_activation(Softplus()), UserActivation)  # an instance too
    with pytest.raises(TypeError, match=r"model\[1\] must be one of fastnet's activations.*f\(z\) "
                                        r"and df\(z\)"):
        fastnet.feedforward([fastnet.init_weights(4, 2), object()], np.ones((1, 4)))


@pytest.mark.parametrize("hidden", [Softplus, Sigmoid, fastnet.TanH], ids=lambda c: c.__name__)
@pytest.mark.parametrize("out", [Sigmoid, fastnet.Sigmoid], ids=["course-sigmoid", "builtin"])
def test_forward_and_backprop_match_the_reference(backend, hidden, out):
    X, y = _data()
    model = _model(hidden, out)
    with _quiet():
        A = fastnet.feedforward(model, X)
        A1 = fastnet.forward(model[0], X, hidden)
        J, grads = fastnet.backprop(model, X, y, lam=0.1, penalty="l2")
        Jv, gv = fastnet.backprop_vectorized(model, X, y)
    with fastnet.use_backend("reference"):
        A_ref = fastnet.reference.feedforward(model, X)
        A1_ref = fastnet.reference.forward(model[0], X, hidden)
        J_ref, g_ref = fastnet.reference.backprop(model, X, y, lam=0.1, penalty="l2")
        Jv_ref, gv_ref = fastnet.reference.backprop(model, X, y)
    assert_close(A, A_ref)
    assert_close(A1, A1_ref)
    assert_close(J, J_ref)
    assert_close(Jv, Jv_ref)
    for g, r in zip(grads + gv, g_ref + gv_ref):
        assert_close(g, r)
    assert np.array_equal(fastnet.predict(model, X), fastnet.reference.predict(model, X))


@pytest.mark.parametrize("optimizer,batch_size", [("sgd", 1), ("sgd", 8), ("momentum", 16),
                                                  ("gd", None), ("rmsprop", 8)])
def test_training_loops_match_the_reference(backend, optimizer, batch_size):
    X, y = _data()
    m1, m2 = _model(Softplus), _model(Softplus)
    kw = dict(optimizer=optimizer, batch_size=batch_size, lr=0.3, epochs=3, rng=2, lam=0.01,
              penalty="l2", X_test=X[:10], y_test=y[:10])
    with _quiet():
        h1 = fastnet.train(m1, X, y, **kw)
    h2 = fastnet.reference.train(m2, X, y, **kw)
    assert_close(h1["J"], h2["J"])
    assert h1["test_acc"] == h2["test_acc"]
    for a, b in zip(m1[::2], m2[::2]):
        assert_close(a, b)


def test_course_loops_and_float32(backend):
    X, y = _data(dtype=np.float32)
    with _quiet():
        for fn in (fastnet.train_online, fastnet.train_momentum):
            m1, m2 = _model(Sigmoid, dtype=np.float32), _model(Sigmoid, dtype=np.float32)
            h1 = fn(m1, X, y, epochs=2, rng=0)
            h2 = getattr(fastnet.reference, fn.__name__)(m2, X, y, epochs=2, rng=0)
            assert_close(h1["J"], h2["J"], dtype=np.float32)
            assert m1[0].dtype == np.float32


def test_gradient_of_a_user_activation_is_the_finite_difference():
    X, y = _data(10)
    model = _model(Softplus)
    J, grads = fastnet.reference.backprop(model, X, y)
    for l in (0, 2):  # model[l] is perturbed in place (and restored) by numerical_gradient
        num = numerical_gradient(lambda: fastnet.reference.backprop(model, X, y)[0], model[l])
        assert_close(grads[l // 2], num, rtol=1e-6)


def test_fallback_warns_once_naming_the_class():
    X, y = _data()
    compiled = [b for b in fastnet.available_backends() if b != "reference"]
    if not compiled:
        pytest.skip("no compiled backend: nothing falls back")
    from fastnet import _layerwise
    for b in compiled:
        act = Lookup if b == "numba" else Softplus
        _layerwise._warned.clear()  # a fresh process, as far as the warning goes
        _layerwise._cache.clear()
        with fastnet.use_backend(b), warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            fastnet.feedforward(_model(act, fastnet.Sigmoid), X)
            fastnet.backprop(_model(act, fastnet.Sigmoid), X, y)
        msgs = [str(w.message) for w in got if act.__name__ in str(w.message)]
        assert len(msgs) == 1, msgs
        assert f"the activation {act.__name__} runs in numpy" in msgs[0] and b in msgs[0]
        if b == "numba":
            assert "did not compile with numba.njit" in msgs[0]
        out = fastnet.feedforward(_model(act), X)
        assert_close(out, fastnet.reference.feedforward(_model(act), X))


def test_numba_compiles_the_course_classes():
    if "numba" not in fastnet.available_backends():
        pytest.skip("numba is not available")
    from fastnet._numba import custom
    for cls in (Sigmoid, Softplus):
        pair, why = custom.compile_activation(UserActivation(cls))
        assert pair is not None, why
    pair, why = custom.compile_activation(UserActivation(Lookup))
    assert pair is None and why
    with fastnet.use_backend("numba"), warnings.catch_warnings():
        warnings.simplefilter("error")  # compiled: no fallback warning
        fastnet.feedforward(_model(Softplus), _data()[0])


def test_a_user_activation_that_returns_the_wrong_shape_is_an_error():
    class Bad:
        @staticmethod
        def f(z):
            return z.sum(axis=-1)

        @staticmethod
        def df(z):
            return z

    X, _ = _data()
    with fastnet.use_backend("reference"), pytest.raises(ValueError,
                                                         match=r"Bad.f\(z\) returned shape"):
        fastnet.feedforward(_model(Bad), X)


def test_predict_with_the_two_matrices_of_the_mnist_slide(impl, data_dir):
    T1 = np.load(need(data_dir, "seed", "Theta1.npy"))
    T2 = np.load(need(data_dir, "seed", "Theta2.npy"))
    X = np.load(need(data_dir, "seed", "X_test.npy")) / 255.0
    y = np.load(need(data_dir, "seed", "y_test.npy"))
    p = impl.predict(T1, T2, X)
    assert np.array_equal(p, impl.predict([T1, fastnet.Sigmoid, T2, fastnet.Sigmoid], X))
    assert fastnet.accuracy(p, y) > 85
    assert impl.predict(T1, T2, X[0]) == p[0]
    with pytest.raises(TypeError, match=r"\(model, X\) or \(Theta1, Theta2, X\)"):
        impl.predict(T1, T2, X, X)


def test_a_model_with_a_user_activation_is_not_saved(tmp_path):
    with pytest.raises(TypeError, match=r"model\[1\] is a user-defined activation \(Softplus\)"):
        fastnet.save(_model(Softplus), tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
