"""The ``train_epochs`` kernel (many epochs in one call, with the epoch loop's rules).

* every backend against ``fastnet.reference``: the same draws (``order``, the
  generator's state), costs, weights, optimiser state and rule memory;
* the reference against the Python epoch loop (``EpochRunner.run_epochs``): an
  estimator or ``fastnet.train`` gives the same results whichever loop runs;
* the stopping rules and the divergence rule on hand-made cases;
* bad arguments, and an interruption between two epochs.
"""
import math
import warnings

import numpy as np
import pytest

import fastnet
from fastnet._codes import Run, Status, Stop
from fastnet._history import DivergenceError
from fastnet.training import EpochTrainer
from conftest import BACKENDS, COMPILED, assert_close, kernels_of
from test_kernels import make_data, make_net

REF = kernels_of("reference")
compiled = pytest.mark.parametrize("name", COMPILED or [pytest.param(
    None, marks=pytest.mark.skip(reason="no compiled backend available"))])
backends = pytest.mark.parametrize("name", BACKENDS)


def _run_array(stop=Stop.NONE, tol=0.0, patience=1, start_cost=10.0, best=10.0, limit=100.0):
    run = np.zeros(int(Run.WIDTH))
    run[Run.START_COST], run[Run.BEST], run[Run.WEIGHT_LIMIT] = start_cost, best, limit
    run[Run.STOP], run[Run.TOL], run[Run.PATIENCE] = stop, tol, patience
    run[Run.STOP_BEST] = math.nan if stop == Stop.TOL else math.inf
    return run


def _small(seed, kinds=(1, 1), labels=True):
    """An 8-5-2 float64 net (``kinds``: hidden and output activations) and 30 samples."""
    rng = np.random.default_rng(seed)
    params, sizes, kinds = make_net(rng, [8, 5, 2], list(kinds), np.float64)
    X, Y = make_data(rng, 30, 8, 2, np.float64, labels=labels)
    return params, sizes, kinds, X, Y


def _call(K, params, sizes, kinds, X, Y, *, epochs=4, batch_size=16, optimizer=3, lr=0.01,
          penalty=1, lam=0.01, seed=5, shuffle=True, run=None, t=2, loss=0):
    m = X.shape[0]
    state = np.zeros(2 * params.size, params.dtype)
    order = np.arange(m, dtype=np.int64)  # shuffled in place each epoch when shuffle
    rng = np.random.default_rng(seed) if shuffle else None
    backup = np.empty(3 * params.size, params.dtype)
    run = _run_array() if run is None else run
    costs, times = np.zeros(epochs), np.zeros((epochs, 3))
    n = K.train_epochs(params, sizes, kinds, loss, X, Y, order, batch_size, optimizer, lr, 0.9,
                       0.999, 1e-8, penalty, lam, state, t, rng, backup, run, costs, times)
    return dict(n=n, params=params, state=state, order=order, run=run, costs=costs,
                times=times, rng=rng)


@backends
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("optimizer,batch_size,penalty", [(3, 16, 1), (0, 1, 0), (1, 7, 2),
                                                          (2, 1000, 1), (4, 32, 0)])
@pytest.mark.parametrize("zeros", [0.0, 0.8], ids=["dense-X", "sparse-X"])
def test_matches_reference(name, dtype, optimizer, batch_size, penalty, zeros):
    rng = np.random.default_rng(optimizer * 10 + batch_size)
    params, sizes, kinds = make_net(rng, [20, 9, 4], [2, 1], dtype, scale=0.3)
    X, Y = make_data(rng, 67, 20, 4, dtype, zeros=zeros)
    kw = dict(optimizer=optimizer, batch_size=batch_size, penalty=penalty)
    got = _call(kernels_of(name), params.copy(), sizes, kinds, X, Y, **kw)
    want = _call(REF, params.copy(), sizes, kinds, X, Y, **kw)
    assert got["n"] == want["n"] == 4
    np.testing.assert_array_equal(got["order"], want["order"])  # the same draws...
    assert got["rng"].bit_generator.state == want["rng"].bit_generator.state  # ...and no more
    rtol = (1e-8 if dtype == np.float64 else 1e-4) if optimizer in (2, 3) else None
    assert_close(got["costs"], want["costs"], rtol=rtol, dtype=dtype)
    assert_close(got["params"], want["params"], rtol=rtol)
    assert_close(got["state"], want["state"], rtol=rtol)
    assert got["run"][Run.STATUS] == Status.RAN and got["run"][Run.EPOCHS] == 4
    assert_close(got["run"][Run.BEST], want["run"][Run.BEST], rtol=rtol, dtype=dtype)
    assert (got["times"] >= 0).all() and (got["times"][:, 0] >= got["times"][:, 1]).all()


def test_reference_is_the_python_loop_of_train_epoch():
    """Epoch by epoch, the reference's train_epochs is the Python loop: the last order
    shuffled, penalty at the start, train_epoch, J = total / m + penalty, steps advanced by
    the batches."""
    rng = np.random.default_rng(0)
    params, sizes, kinds = make_net(rng, [12, 6, 3], [3, 1], np.float64)
    X, Y = make_data(rng, 40, 12, 3, np.float64)
    got = _call(REF, params.copy(), sizes, kinds, X, Y, epochs=3, batch_size=16, t=2)
    p, s = params.copy(), np.zeros(2 * params.size)
    draw = np.random.default_rng(5)
    t = 2
    order = np.arange(40)
    for e in range(3):
        draw.shuffle(order)
        pen = REF.penalty_value(1, 0.01, p, sizes)
        total = REF.train_epoch(p, sizes, kinds, 0, X, Y, order, 16, 3, 0.01, 0.9, 0.999,
                                1e-8, 1, 0.01, s, t)
        t += 3
        assert got["costs"][e] == pytest.approx(total / 40 + pen, rel=1e-14)
    np.testing.assert_array_equal(got["params"], p)
    np.testing.assert_array_equal(got["order"], order)


@backends
def test_unshuffled_order_is_used_as_given(name):
    params, sizes, kinds, X, Y = _small(1)
    got = _call(kernels_of(name), params.copy(), sizes, kinds, X, Y, shuffle=False)
    want = _call(REF, params.copy(), sizes, kinds, X, Y, shuffle=False)
    np.testing.assert_array_equal(got["order"], np.arange(30))
    assert_close(got["params"], want["params"])


@backends
def test_course_tol_rule_stops_when_the_cost_settles(name):
    """lr = 0: every epoch has the same cost, so |J_2 - J_1| = 0 < tol on the second epoch
    (the first has no previous cost) and, with patience 2, the run stops after 3."""
    params, sizes, kinds, X, Y = _small(2)
    run = _run_array(Stop.TOL, tol=1e-9, patience=2)
    got = _call(kernels_of(name), params.copy(), sizes, kinds, X, Y, epochs=10, lr=0.0,
                penalty=0, run=run)
    assert got["n"] == 3
    assert run[Run.STATUS] == Status.CONVERGED and run[Run.EPOCHS] == 3
    assert run[Run.STOP_COUNT] == 2 and run[Run.STOP_BEST] == got["costs"][2]


@backends
def test_plateau_rule_is_scikit_learns(name):
    """scikit-learn's rule: a count of epochs with J > best - tol, stop when it passes the
    patience.  With lr = 0 the first epoch sets the best and each later one counts: patience
    3 stops after 1 + 4 epochs.  A count carried in from an earlier call goes on."""
    params, sizes, kinds, X, Y = _small(3)
    run = _run_array(Stop.PLATEAU, tol=1e-4, patience=3)
    got = _call(kernels_of(name), params.copy(), sizes, kinds, X, Y, epochs=10, lr=0.0,
                penalty=0, run=run)
    assert got["n"] == 5 and run[Run.STATUS] == Status.CONVERGED
    assert run[Run.STOP_COUNT] == 4 and run[Run.STOP_BEST] == got["costs"][0]
    run[Run.STOP_COUNT] = 2  # carried in: two more epochs without improvement stop it
    got = _call(kernels_of(name), params.copy(), sizes, kinds, X, Y, epochs=10, lr=0.0,
                penalty=0, run=run)
    assert got["n"] == 2


@backends
@pytest.mark.parametrize("case", ["overflow", "runaway"])
def test_divergence_restores_the_epoch_start(name, case):
    """A diverged epoch: the status says so, ``W_MAX`` is the diverged weights' largest,
    and params and state are those at the start of that epoch (the last that passed)."""
    params, sizes, kinds, X, Y = _small(4, kinds=[0, 0], labels=False)
    if case == "overflow":  # a huge learning rate on a linear net with the quadratic loss
        kw, run = dict(lr=1e3, optimizer=0, penalty=0, loss=1), _run_array(best=1e300)
    else:  # the cost rule: anything over 2x a (fake) best of 1e-9 with weights past 1e-9
        kw, run = dict(lr=1e-3, optimizer=0, penalty=0, loss=1), _run_array(
            start_cost=1e-9, best=1e-9, limit=1e-9)
    got = _call(kernels_of(name), params.copy(), sizes, kinds, X, Y, epochs=20, run=run, **kw)
    assert run[Run.STATUS] == Status.DIVERGED
    n = got["n"]
    assert run[Run.EPOCHS] == n and (case == "overflow" or n == 1)
    # the same epochs by the reference, stopped one short: its weights are the start of epoch n
    ref_run = run.copy()
    ref_run[:] = _run_array(best=1e300) if case == "overflow" else _run_array(
        start_cost=1e-9, best=1e-9, limit=1e-9)
    if n > 1:
        want = _call(REF, params.copy(), sizes, kinds, X, Y, epochs=n - 1, run=ref_run, **kw)
        assert_close(got["params"], want["params"])
    else:
        np.testing.assert_array_equal(got["params"], params)
    assert case == "runaway" or not np.isfinite(run[Run.W_MAX]) or run[Run.W_MAX] > 1e3


@backends
@pytest.mark.parametrize("make_rng", [np.random.default_rng, np.random.RandomState],
                         ids=["Generator", "RandomState"])
def test_each_epoch_shuffles_the_last_epochs_order_in_place(name, make_rng):
    """scikit-learn's sequence of orders (its ``sample_idx = shuffle(sample_idx)``): from the
    order given, each epoch's order is the last one shuffled by ``rng.shuffle``; with a
    RandomState the draws are scikit-learn's, on every backend."""
    params, sizes, kinds, X, Y = _small(3)
    m = X.shape[0]
    rng = make_rng(11)
    order = np.arange(m, dtype=np.int64)
    state = np.zeros(2 * params.size)
    backup = np.empty(3 * params.size)
    costs, times = np.zeros(3), np.zeros((3, 3))
    got = params.copy()
    n = kernels_of(name).train_epochs(got, sizes, kinds, 0, X, Y, order, 8, 3, 0.01, 0.9,
                                      0.999, 1e-8, 0, 0.0, state, 0, rng, backup,
                                      _run_array(), costs, times)
    assert n == 3
    want_rng, want = make_rng(11), np.arange(m, dtype=np.int64)
    for _ in range(3):
        want_rng.shuffle(want)
    np.testing.assert_array_equal(order, want)
    assert not np.array_equal(order, np.arange(m))
    # ...and the weights are those of the three orders, one epoch each, on the reference
    ref = params.copy()
    ref_state = np.zeros(2 * params.size)
    replay, perm = make_rng(11), np.arange(m, dtype=np.int64)
    for e in range(3):
        replay.shuffle(perm)
        REF.train_epoch(ref, sizes, kinds, 0, X, Y, perm.copy(), 8, 3, 0.01, 0.9, 0.999, 1e-8,
                        0, 0.0, ref_state, e * -(-m // 8))
    assert_close(got, ref)


@compiled
def test_bad_arguments_name_what_is_wrong(name):
    K = kernels_of(name)
    params, sizes, kinds, X, Y = _small(5)
    state = np.zeros(2 * params.size)

    def call(order=None, rng=np.random.default_rng(0), backup=None, run=None, costs=None,
             times=None):
        order = np.arange(30, dtype=np.int64) if order is None else order
        backup = np.empty(3 * params.size) if backup is None else backup
        run = _run_array() if run is None else run
        costs = np.zeros(3) if costs is None else costs
        times = np.zeros((3, 3)) if times is None else times
        return K.train_epochs(params.copy(), sizes, kinds, 0, X, Y, order, 8, 0, 0.1, 0.9,
                              0.9, 1e-8, 0, 0.0, state.copy(), 0, rng, backup, run, costs,
                              times)

    with pytest.raises(TypeError, match="rng"):
        call(rng=np.random.SeedSequence(0))
    with pytest.raises(ValueError, match="order"):
        call(order=np.empty(29, np.int64))
    with pytest.raises(ValueError, match="order"):  # no rng: the order must be valid as given
        call(order=np.full(30, 30, np.int64), rng=None)
    with pytest.raises(ValueError, match="order"):  # and with one: it shuffles what it is given
        call(order=np.full(30, -1, np.int64))
    with pytest.raises(ValueError, match="backup"):
        call(backup=np.empty(2 * params.size))
    with pytest.raises(TypeError, match="backup"):
        call(backup=np.empty(3 * params.size, np.float32))
    with pytest.raises(ValueError, match="run"):
        call(run=np.zeros(3))
    with pytest.raises(ValueError, match="times"):
        call(times=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="run.Run.STOP"):
        bad = _run_array()
        bad[Run.STOP] = 7
        call(run=bad)
    with pytest.raises(ValueError, match="read-only"):
        ro = np.zeros(3)
        ro.flags.writeable = False
        call(costs=ro)
    assert call() == 3


# ------------------------------------------------------------- the Python side
def _python_loop(monkeypatch):
    monkeypatch.setattr(EpochTrainer, "_fused_plan", staticmethod(lambda callbacks, tol: None))


def _fit(**kw):
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fastnet.MLPClassifier(random_state=0, **kw).fit(X[:600] / 16.0, y[:600])


@backends
@pytest.mark.parametrize("kw", [dict(max_iter=12), dict(max_iter=300, tol=1e-2,
                                                         n_iter_no_change=2),
                                dict(max_iter=6, solver="sgd", learning_rate_init=0.1,
                                     shuffle=False, batch_size=600)],
                         ids=["budget", "plateau", "full-batch"])
def test_estimator_same_fit_whichever_loop(name, kw, monkeypatch):
    pytest.importorskip("sklearn")
    calls = []
    K = kernels_of(name)
    real = K.train_epochs
    monkeypatch.setattr(K, "train_epochs", lambda *a: calls.append(1) or real(*a))
    with fastnet.use_backend(name):
        fused = _fit(**kw)
        assert calls, "the fit did not run the compiled epoch loop"
        with monkeypatch.context() as mp:
            _python_loop(mp)
            python = _fit(**kw)
    assert fused.n_iter_ == python.n_iter_
    assert fused.loss_curve_ == python.loss_curve_
    assert fused.best_loss_ == python.best_loss_
    for a, b in zip(fused.coefs_ + fused.intercepts_, python.coefs_ + python.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert len(fused.history_["seconds"]) == fused.n_iter_
    if kw.get("tol"):
        assert fused.n_iter_ < 300  # the plateau rule stopped it


@backends
def test_course_train_with_tol_same_whichever_loop(name, monkeypatch):
    rng = np.random.default_rng(6)
    X = rng.random((50, 4))
    y = (X[:, 0] > 0.5).astype(int)

    def fit():
        model = [np.random.default_rng(1).standard_normal((3, 5)) * 0.1, "sigmoid",
                 np.random.default_rng(2).standard_normal((2, 4)) * 0.1, "sigmoid"]
        with fastnet.use_backend(name):
            h = fastnet.train(model, X, y, optimizer="momentum", lr=0.5, epochs=400,
                              batch_size=10, tol=1e-4, rng=np.random.default_rng(3))
        return model, h

    m1, h1 = fit()
    _python_loop(monkeypatch)
    m2, h2 = fit()
    assert h1["J"] == h2["J"] and h1["converged"] == h2["converged"]
    assert h1["epochs"] < 400 and h1["converged"]
    np.testing.assert_array_equal(m1[0], m2[0])


@backends
def test_divergence_same_error_and_weights_whichever_loop(name, monkeypatch):
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)

    def fit():
        est = fastnet.MLPRegressor(solver="sgd", learning_rate_init=1e4, max_iter=50,
                                   random_state=0, batch_size=50)
        with fastnet.use_backend(name), pytest.raises(DivergenceError) as info:
            est.fit(X[:300], y[:300].astype(float))
        return str(info.value), info.value.epoch

    fused = fit()
    _python_loop(monkeypatch)
    assert fused == fit()
    assert "smaller learning rate" in fused[0]


@compiled
def test_interrupt_between_epochs_keeps_the_epochs_run(name):
    """Ctrl-C while the compiled loop runs (here the third epoch's shuffle raises it): the
    epochs that ran are in the history and the step count, the rest did not run."""
    class Interrupting(np.random.Generator):
        calls = 0

        def shuffle(self, x, axis=0):
            type(self).calls += 1
            if type(self).calls == 3:
                raise KeyboardInterrupt
            return super().shuffle(x, axis)

    params, sizes, kinds, X, Y = _small(7)
    from fastnet._history import HistoryRecorder
    with fastnet.use_backend(name):
        trainer = EpochTrainer(params, sizes, kinds, loss="cross_entropy", optimizer="sgd",
                               lr=0.1, batch_size=10,
                               rng=Interrupting(np.random.PCG64(0)))
        rec = HistoryRecorder()
        with pytest.raises(KeyboardInterrupt):
            trainer.run(X, Y, 10, callbacks=[rec])
    assert len(rec.history["J"]) == 2 and trainer.t == 2 * 3
