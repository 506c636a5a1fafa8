"""The divergence rule (issue 13): one rule for every model and loop, on every backend.

Non-finite costs and weights, and runaway training (a cost above twice its best and above
the start while the largest weight is ten times its start), stop with DivergenceError
naming the epoch; the user's model keeps the weights of the last epoch that passed; casts
that overflow and forward passes that overflow are reported as what they are.
"""
import warnings

import numpy as np
import pytest

import fastnet
from fastnet._history import DivergenceGuard, COST_GROWTH, WEIGHT_GROWTH


def _digits(m=300, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.random((10, 16))
    y = rng.integers(0, 10, m)
    X = np.clip(centres[y] + 0.1 * rng.standard_normal((m, 16)), 0, 1)
    return X, y


def _model(act, seed=0):
    return [fastnet.init_weights(16, 12, rng=seed), act,
            fastnet.init_weights(12, 10, rng=seed + 1), fastnet.Sigmoid]


LOOPS = [
    ("train", lambda m, X, y, lr: fastnet.train(m, X, y, optimizer="sgd", batch_size=16, lr=lr,
                                                epochs=5, rng=0)),
    ("train_online", lambda m, X, y, lr: fastnet.train_online(m, X, y, lr=lr, epochs=5, rng=0)),
    ("train_momentum", lambda m, X, y, lr: fastnet.train_momentum(m, X, y, lr=lr, epochs=5,
                                                                  rng=0)),
    ("train_rmsprop", lambda m, X, y, lr: fastnet.train_rmsprop(m, X, y, lr=lr, epochs=5, rng=0)),
    ("gradient_descent", lambda m, X, y, lr: fastnet.gradient_descent(m, X, y, lr=lr,
                                                                      max_epochs=20)),
]


@pytest.mark.parametrize("name,loop", LOOPS, ids=[n for n, _ in LOOPS])
@pytest.mark.parametrize("act", [fastnet.Sigmoid, fastnet.TanH], ids=["sigmoid", "tanh"])
def test_runaway_training_with_a_bounded_output_is_caught(backend, name, loop, act):
    X, y = _digits()
    model = _model(act)
    start = [t.copy() for t in model[::2]]
    with pytest.raises(fastnet.DivergenceError,
                       match=r"diverged at epoch \d+.*smaller learning rate than lr=1e\+06") as info:
        loop(model, X, y, 1e6)
    assert isinstance(info.value.epoch, int) and info.value.epoch >= 1
    for t in model[::2]:  # the weights of the last epoch that passed the rule: finite
        assert np.isfinite(t).all()
    if info.value.epoch == 1:  # nothing passed: the user's weights are as they were
        for t, t0 in zip(model[::2], start):
            np.testing.assert_array_equal(t, t0)


@pytest.mark.parametrize("name,loop", LOOPS, ids=[n for n, _ in LOOPS])
def test_healthy_training_is_not_flagged(backend, name, loop):
    X, y = _digits()
    model = _model(fastnet.Sigmoid)
    lr = {"train_rmsprop": 0.01, "train_momentum": 0.1}.get(name, 0.5)
    h = loop(model, X, y, lr)
    assert np.all(np.isfinite(h["J"])) and h["J"][-1] < h["J"][0]


def test_same_divergence_epoch_on_every_backend():
    X, y = _digits()
    epochs = {}
    for b in fastnet.available_backends():
        with fastnet.use_backend(b), pytest.raises(fastnet.DivergenceError) as info:
            fastnet.gradient_descent(_model(fastnet.TanH), X, y, lr=1e6, max_epochs=20)
        epochs[b] = info.value.epoch
    assert len(set(epochs.values())) == 1, epochs


@pytest.mark.parametrize("activation", ["logistic", "tanh"])
def test_mlp_classifier_runaway_is_caught_and_leaves_the_estimator_as_it_was(backend, activation):
    X, y = _digits()
    clf = fastnet.MLPClassifier((12,), activation=activation, solver="sgd", momentum=0,
                                learning_rate_init=1e6, max_iter=10, random_state=0, verbose=0)
    with pytest.raises(fastnet.DivergenceError, match=r"epoch \d+.*smaller learning rate"):
        clf.fit(X, y)
    assert not hasattr(clf, "coefs_") and not hasattr(clf, "n_iter_")
    # a fitted estimator is left as it was by a partial_fit that diverges
    good = fastnet.MLPClassifier((12,), activation=activation, solver="sgd", momentum=0,
                                 max_iter=3, random_state=0, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        good.fit(X, y)
    before = [c.copy() for c in good.coefs_], good.n_iter_, list(good.loss_curve_)
    good.set_params(learning_rate_init=1e6)
    with pytest.raises(fastnet.DivergenceError):
        good.partial_fit(X, y)
    for c, c0 in zip(good.coefs_, before[0]):
        np.testing.assert_array_equal(c, c0)
    assert good.n_iter_ == before[1] and list(good.loss_curve_) == before[2]


def test_logistic_regression_estimator_runaway_is_caught(backend):
    X, y = _digits()
    with pytest.raises(fastnet.DivergenceError, match=r"epoch \d+.*smaller learning rate"):
        fastnet.LogisticRegression(lr=1e6, max_iter=50, verbose=0).fit(X, y)


@pytest.mark.parametrize("fn", ["logistic_regression", "linear_regression"])
def test_linear_gradient_descent_runaway(impl, fn):
    X, y = _digits()
    target = (y == 3).astype(int) if fn == "logistic_regression" else y.astype(float)
    theta0 = np.zeros(X.shape[1] + 1)
    with np.errstate(all="ignore"), pytest.raises(
            fastnet.DivergenceError, match=r"diverged at iteration \d+.*smaller learning rate"):
        getattr(impl, fn)(X, target, lr=1e6, max_iter=200, theta=theta0)
    np.testing.assert_array_equal(theta0, 0)  # the user's starting point is untouched


def test_healthy_logistic_regression_is_not_flagged(impl):
    X, y = _digits()
    theta, h = impl.logistic_regression(X, (y == 3).astype(int), lr=5.0, max_iter=300)
    assert h["J"][-1] < h["J"][0]


def test_guard_rule_needs_both_cost_growth_and_weight_blow_up():
    g = DivergenceGuard(start_cost=1.0, start_weight=0.5, lr=0.1)
    g.check(1, 0.1, 50.0)                     # a good epoch with big weights
    g.check(2, 0.15, 50.0)                    # noise: above its best but far below the start
    g.check(3, COST_GROWTH * 0.1 * 3, 5.0)    # above the start, small weights
    assert g.best == pytest.approx(0.1)
    with pytest.raises(fastnet.DivergenceError, match="epoch 4"):
        g.check(4, 3.0, WEIGHT_GROWTH)        # above both, weights ten times the start (>= 1)
    with pytest.raises(fastnet.DivergenceError, match="cost became nan"):
        g.check(5, float("nan"), 1.0)
    with pytest.raises(fastnet.DivergenceError, match="weights became infinite or NaN"):
        g.check(6, 0.1, float("inf"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_arrays_finds_the_largest_weight_only_when_the_rule_needs_it(dtype):
    """check_arrays (the epoch loop's form, inside its errstate) decides as check(J, max |w|) does."""
    with np.errstate(over="ignore", invalid="ignore"):
        _check_arrays_cases(dtype)


def _check_arrays_cases(dtype):
    small = [np.array([0.5, -0.25], dtype), np.array([0.1], dtype)]
    big = [np.array([0.5, -20.0], dtype), np.array([0.1], dtype)]
    g = DivergenceGuard(start_cost=1.0, start_weight=0.5, lr=0.1)
    g.check_arrays(1, 0.1, big)               # low cost: big weights alone are fine
    assert g.best == pytest.approx(0.1)
    g.check_arrays(2, 3.0, small)             # cost grew, weights did not
    with pytest.raises(fastnet.DivergenceError, match="epoch 3: the cost grew"):
        g.check_arrays(3, 3.0, big)           # both grew: the rule's max |w| is 20
    for bad in (np.inf, -np.inf, np.nan):     # finite cost, one weight not finite
        arrays = [np.array([0.5, bad], dtype), np.array([0.1], dtype)]
        with pytest.raises(fastnet.DivergenceError, match="weights became infinite or NaN"):
            g.check_arrays(4, 0.1, arrays)
        with pytest.raises(fastnet.DivergenceError, match="weights became infinite or NaN"):
            g.check_arrays(4, 0.1, arrays[::-1])
    huge = np.finfo(dtype).max
    g.check_arrays(5, 0.1, [np.array([huge, huge], dtype)])  # the sum overflows, |w| is finite
    with pytest.raises(fastnet.DivergenceError, match="cost became inf"):
        g.check_arrays(6, np.inf, small)


def test_a_cast_that_overflows_is_reported_as_such(backend):
    X, y = _digits()
    X32 = X.astype(np.float32)
    model = _model(fastnet.Sigmoid)
    model[0][0, 1] = 1e39          # finite in float64, inf in float32
    kept = model[0].copy()
    with pytest.raises(ValueError, match=r"model\[0\] holds values up to 1e\+39, which overflow "
                                         r"float32") as info:
        fastnet.train(model, X32, y, lr=0.1, epochs=2)
    assert not isinstance(info.value, fastnet.DivergenceError)
    np.testing.assert_array_equal(model[0], kept)
    for fn in (fastnet.predict, fastnet.feedforward):
        with pytest.raises(ValueError, match="overflow float32"):
            fn(model, X32)
    with pytest.raises(ValueError, match="overflow float32"):
        fastnet.backprop(model, X32, y)


def test_forward_pass_that_overflows_raises(impl):
    X = np.ones((4, 3), dtype=np.float32)
    T1 = np.full((5, 4), 1e38, dtype=np.float32)      # hidden pre-activations overflow float32
    T2 = np.ones((2, 6), dtype=np.float32)
    T2[:, 1] = -1.0
    model = [T1, impl.ReLu if hasattr(impl, "ReLu") else fastnet.ReLu, T2, fastnet.Linear]
    with pytest.raises(FloatingPointError, match="overflowed.*float32"):
        impl.feedforward(model, X)
    with pytest.raises(FloatingPointError, match="overflowed"):
        impl.predict(model, X)


def test_estimator_predict_that_overflows_raises(backend):
    X, y = _digits()
    clf = fastnet.MLPRegressor((4,), activation="relu", optimizer="sgd", max_iter=2,
                               random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X.astype(np.float32), y.astype(np.float32))
    clf.coefs_[0][...] = 1e37
    clf.coefs_[1][...] = 1e37
    with pytest.raises(FloatingPointError, match="overflowed"):
        clf.predict(X.astype(np.float32))
