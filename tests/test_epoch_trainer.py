"""The training engine (fastnet.training.EpochTrainer) under fastnet.train and the estimators."""
import numpy as np
import pytest

import fastnet
from fastnet import reference as R
from fastnet.network import NetworkSpec
from fastnet.training import EpochTrainer

from conftest import assert_close


def _data(m=48, n=5, K=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((m, n)), rng.integers(0, K, m)


def _model(n=5, h=4, K=3, dtype=np.float64):
    return [R.init_weights(n, h, rng=1, dtype=dtype), fastnet.Sigmoid,
            R.init_weights(h, K, rng=2, dtype=dtype), fastnet.Sigmoid]


@pytest.mark.parametrize("optimizer,batch_size", [("gd", None), ("sgd", 1), ("sgd", 7),
                                                  ("momentum", 8), ("rmsprop", 16)])
@pytest.mark.parametrize("penalty", [None, "l2", "l1"])
def test_train_matches_reference_loop(backend, optimizer, batch_size, penalty):
    X, y = _data()
    m1, m2 = _model(), _model()
    kw = dict(optimizer=optimizer, batch_size=batch_size, lr=0.5, epochs=6, rng=3, lam=0.01,
              penalty=penalty, X_test=X[:10], y_test=y[:10])
    h1 = fastnet.train(m1, X, y, **kw)
    h2 = R.train(m2, X, y, **kw)
    assert_close(h1["J"], h2["J"], err_msg=f"{optimizer} {penalty} on {backend}")
    assert h1["test_acc"] == h2["test_acc"]
    assert h1["epochs"] == h2["epochs"] == 6
    for a, b in zip(m1[::2], m2[::2]):
        assert_close(a, b)


def test_train_tol_stops_like_reference():
    X, y = _data()
    m1, m2 = _model(), _model()
    h1 = fastnet.train(m1, X, y, lr=0.5, epochs=500, tol=1e-4)
    h2 = R.train(m2, X, y, lr=0.5, epochs=500, tol=1e-4)
    assert h1["converged"] and h2["converged"]
    assert h1["epochs"] == h2["epochs"] < 500


def test_train_divergence_restores_last_finite_weights():
    rng = np.random.default_rng(0)
    X = rng.random((30, 3)) * 1e3
    Y = rng.random((30, 2)) * 1e3
    model = [R.init_weights(3, 2, rng=1), fastnet.Linear]
    with np.errstate(all="ignore"), pytest.raises(fastnet.DivergenceError, match="smaller learning rate"):
        fastnet.train(model, X, Y, loss="quadratic", lr=10.0, epochs=100)
    assert np.isfinite(model[0]).all()


def _trainer(params, spec, **kw):
    opts = dict(loss="cross_entropy", optimizer="sgd", lr=0.5, batch_size=8,
                rng=np.random.default_rng(0))
    opts.update(kw)
    return EpochTrainer(params, spec.sizes, spec.kinds, **opts)


def test_epoch_trainer_callback_stop_and_first_epoch():
    X, y = _data()
    Y = fastnet.one_hot(3, y)
    spec = NetworkSpec.from_model(_model(), np.float64)
    seen = []

    def cb(epoch, J):
        seen.append(epoch)
        return epoch == 7

    t = _trainer(spec.params, spec)
    n, converged = t.run(X, Y, 20, callback=cb, first_epoch=5)
    assert (n, converged) == (3, False)
    assert seen == [5, 6, 7]


def test_epoch_trainer_patience():
    X, y = _data()
    Y = fastnet.one_hot(3, y)
    spec = NetworkSpec.from_model(_model(), np.float64)
    # a huge tol: every change counts as "settled"; stops after n_iter_no_change + 1 epochs
    n, converged = _trainer(spec.params.copy(), spec).run(X, Y, 50, tol=1e9, n_iter_no_change=4)
    assert converged and n == 5


def test_epoch_trainer_state_carries_over():
    """Two runs of one epoch with a kept momentum state equal one run of two epochs."""
    X, y = _data()
    Y = fastnet.one_hot(3, y)
    spec = NetworkSpec.from_model(_model(), np.float64)
    p1, p2 = spec.params.copy(), spec.params.copy()
    t1 = _trainer(p1, spec, optimizer="momentum", shuffle=False)
    t1.run(X, Y, 2)
    t2 = _trainer(p2, spec, optimizer="momentum", shuffle=False)
    t2.run(X, Y, 1)
    t3 = _trainer(p2, spec, optimizer="momentum", shuffle=False, state=t2.state)
    t3.run(X, Y, 1)
    assert_close(p2, p1)
    assert not np.array_equal(p1, spec.params)


def test_epoch_trainer_divergence_restores_params():
    rng = np.random.default_rng(0)
    X = rng.random((20, 3)) * 1e4
    Y = rng.random((20, 1)) * 1e4
    spec = NetworkSpec.from_model([R.init_weights(3, 1, rng=1), fastnet.Linear], np.float64)
    params = spec.params
    t = EpochTrainer(params, spec.sizes, spec.kinds, loss="quadratic", optimizer="gd", lr=1.0)
    with np.errstate(all="ignore"), pytest.raises(fastnet.DivergenceError, match="epoch"):
        t.run(X, Y, 100)
    assert np.isfinite(params).all()
