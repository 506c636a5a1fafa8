"""The scikit-learn-style estimators: contract, options, equivalence with the course's loops, bad input."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastnet
from fastnet import estimators as E
from fastnet.estimators import (LinearRegression, LogisticRegression, MLPClassifier,
                                MLPRegressor, Perceptron)

from conftest import REPO, assert_close
from _api_helpers import need_optimizer, optimizer_missing

ALL = [LinearRegression, LogisticRegression, Perceptron, MLPClassifier, MLPRegressor]

#: The course's settings (fastnet's defaults before scikit-learn's became the primary set):
#: sigmoid units, plain mini-batch SGD, no penalty.  Tests that are not about the defaults
#: use them, so that they do not depend on Adam being in every backend's kernels.
COURSE = dict(activation="logistic", output_activation="sigmoid", optimizer="sgd", lr=0.1,
              batch_size=32, penalty=None, dtype=None)


def mlp(*args, **kw):
    return MLPClassifier(*args, **{**COURSE, **kw})


def mlp_reg(*args, **kw):
    return MLPRegressor(*args, **{**COURSE, "output_activation": "linear", "lr": 0.01, **kw})


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning of short fits
        yield


def blobs(n=150, K=3, d=2, seed=0, spread=0.6):
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(K) / K
    centers = np.zeros((K, d))
    centers[:, 0], centers[:, 1] = 3 * np.cos(angles), 3 * np.sin(angles)
    y = rng.integers(0, K, n)
    return centers[y] + rng.normal(0, spread, (n, d)), y


def small(est):
    """Settings that keep a fit fast."""
    if "hidden_layer_sizes" in est.get_params() and est._estimator_type == "classifier":
        est.set_params(hidden_layer_sizes=(8,))  # (regressors keep 100: check_regressors_train)
    if "max_iter" in est.get_params():
        est.set_params(max_iter=min(est.max_iter, 200))
    return est


def default_solver_available(cls):
    """Skip when the default backend lacks the defaults' optimiser (Adam, for the MLPs)."""
    if cls in (MLPClassifier, MLPRegressor):
        need_optimizer("adam")


# ----------------------------------------------------------------------- scikit-learn's checks
@pytest.mark.parametrize("make", ALL + [lambda: LogisticRegression(output_activation="softmax")],
                         ids=[c.__name__ for c in ALL] + ["LogisticRegression-softmax"])
def test_check_estimator(make):
    pytest.importorskip("sklearn")
    from sklearn.utils.estimator_checks import check_estimator
    est = small(make())
    default_solver_available(type(est))
    results = check_estimator(est, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:300]) for r in results
              if r["status"] == "failed"]
    assert not failed, failed
    assert sum(r["status"] == "passed" for r in results) > 40


def test_sklearn_pipeline_gridsearch_cross_val_score():
    pytest.importorskip("sklearn")
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = blobs(120)
    pipe = make_pipeline(StandardScaler(), mlp((6,), max_epochs=60, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8
    grid = GridSearchCV(LogisticRegression(max_epochs=100),
                        {"output_activation": ["sigmoid", "softmax"],
                         "optimizer": ["gd", "momentum"]}, cv=3)
    grid.fit(X, y)
    assert set(grid.best_params_) == {"output_activation", "optimizer"}
    assert grid.score(X, y) > 0.8


def test_fastnet_kfold_cross_val_score_and_scalers():
    X, y = blobs(90)
    Xs = fastnet.Standardizer().fit_transform(X)
    scores = fastnet.cross_val_score(LogisticRegression(max_epochs=200), Xs, y,
                                     cv=fastnet.KFold(3, shuffle=True, rng=0))
    assert scores.shape == (3,) and np.all(scores > 0.7)


def test_sklearn_not_imported_by_estimators():
    code = ("import sys, numpy as np, fastnet\n"
            "m = fastnet.MLPClassifier((4,), optimizer='sgd', max_iter=50, tol=10.0,\n"
            "                          n_iter_no_change=1, random_state=0)\n"  # converges: no warning
            "X = np.random.default_rng(0).random((20, 3)); y = np.arange(20) % 2\n"
            "import warnings; warnings.simplefilter('ignore')\n"
            "m.fit(X, y).predict(X); m.predict_proba(X); m.score(X, y)\n"
            "assert 'sklearn' not in sys.modules, 'sklearn was imported'\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_works_without_sklearn():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import numpy as np, fastnet, warnings\n"
            "from fastnet.estimators import NotFittedError\n"
            "warnings.simplefilter('ignore')\n"
            "m = fastnet.MLPClassifier((4,), optimizer='sgd', max_epochs=5, random_state=0)\n"
            "X = np.random.default_rng(0).random((20, 3)); y = np.array(['a', 'b'] * 10)\n"
            "try:\n    m.predict(X)\nexcept NotFittedError as e:\n"
            "    assert isinstance(e, ValueError) and type(e).__name__ == 'NotFittedError'\n"
            "else:\n    raise AssertionError('no error before fit')\n"
            "assert set(m.fit(X, y).predict(X)) <= {'a', 'b'}\n"
            "r = fastnet.LinearRegression().fit(X, X @ [1.0, 2.0, 3.0])\n"
            "assert r.score(X, X @ [1.0, 2.0, 3.0]) > 0.9\n"
            "assert fastnet.Perceptron().fit(X, y).get_params()['eta0'] == 1.0\n"
            "import warnings as w\n"
            "with w.catch_warnings(record=True) as got:\n"
            "    w.simplefilter('always')\n"
            "    fastnet.MLPClassifier((4,), optimizer='sgd', max_iter=2).fit(X, y)\n"
            "assert got and got[0].category is fastnet.ConvergenceWarning\n"
            "assert fastnet.ConvergenceWarning.__mro__[1] is UserWarning\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# ---------------------------------------------------------------------- the course's results
def test_linear_regression_is_the_course_gradient_descent(backend):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    y = X @ [1.5, -2.0, 0.5] + 0.3 + rng.normal(0, 0.1, 40)
    est = LinearRegression(lr=0.05, tol=1e-10, max_epochs=3000).fit(X, y)
    theta, hist = fastnet.linear_regression(X, y, lr=0.05, tol=1e-10, max_iter=3000)
    assert_close(est.intercept_, theta[0], rtol=1e-9)
    assert_close(est.coef_, theta[1:], rtol=1e-9)
    assert est.n_iter_ == hist["epochs"]
    assert_close(est.history_["J"], hist["J"], rtol=1e-9)
    exact = np.linalg.lstsq(np.column_stack((np.ones(40), X)), y, rcond=None)[0]
    assert_close(est.coef_, exact[1:], rtol=1e-4)


def test_logistic_regression_is_the_course_gradient_descent(backend):
    X, y = blobs(80, K=2, seed=3, spread=1.5)
    est = LogisticRegression(lr=0.1, tol=1e-9, max_epochs=500, penalty=None).fit(X, y)
    theta, hist = fastnet.logistic_regression(X, y, lr=0.1, tol=1e-9, max_iter=500)
    assert_close(est.intercept_, theta[:1], rtol=1e-9)
    assert_close(est.coef_[0], theta[1:], rtol=1e-9)
    assert_close(est.decision_function(X), X @ theta[1:] + theta[0], rtol=1e-9)
    assert np.array_equal(est.predict(X), fastnet.logistic_predict(theta, X))


def test_iris_virginica_logistic_regression(data_dir):
    from conftest import need
    import csv
    with open(need(data_dir, "seed", "iris.csv")) as fh:
        rows = list(csv.reader(fh))[1:]
    X = fastnet.standardize(np.array([[float(v) for v in r[:4]] for r in rows]))
    species = np.array([r[4] for r in rows])
    est = LogisticRegression().fit(X, species == "virginica")
    assert est.score(X, species == "virginica") > 0.95
    clf = LogisticRegression(output_activation="softmax").fit(X, species)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert clf.score(X, species) > 0.95


def test_mlp_partial_fit_is_one_epoch_of_fastnet_train(backend):
    X, y = blobs(64, K=3, seed=2)
    est = mlp((5,), batch_size=16, lr=0.3, shuffle=False, max_epochs=3, random_state=0).fit(X, y)
    model = est.model_
    est.partial_fit(X, y)
    hist = fastnet.train(model, X, y, optimizer="sgd", batch_size=16, lr=0.3, epochs=1,
                         shuffle=False)
    for a, b in zip(est.thetas_, model[::2]):
        assert_close(a, b)
    assert est.history_["J"][-1] == pytest.approx(hist["J"][0], rel=1e-10)
    assert est.n_iter_ == 1 and len(est.history_["J"]) == 4


def test_perceptron_is_the_course_rule():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    for y in ([0, 0, 0, 1], [0, 1, 1, 1]):  # AND, OR
        est = Perceptron(lr=0.5, max_epochs=50).fit(X, y)
        w = fastnet.perceptron.train(np.zeros(3), X, y, epochs=50, lr=0.5)
        assert np.array_equal(est.weights_, w)
        assert np.array_equal(est.predict(X), y)
        assert est.history_["converged"] and est.history_["errors"][-1] == 0
    xor = Perceptron(max_epochs=20).fit(X, [0, 1, 1, 0])
    assert xor.n_iter_ == 20 and not xor.history_["converged"]


def test_perceptron_one_versus_rest_and_shuffle():
    X, y = blobs(150, K=3, seed=4, spread=0.4)
    names = np.array(["a", "b", "c"])[y]
    for shuffle in (False, True):
        est = Perceptron(shuffle=shuffle, random_state=0).fit(X, names)
        assert est.coef_.shape == (3, 2) and est.intercept_.shape == (3,)
        assert est.decision_function(X).shape == (150, 3)
        assert est.score(X, names) > 0.85
    with pytest.raises(AttributeError, match="two classes"):
        est.weights_
    p = Perceptron().partial_fit(X, names, classes=["a", "b", "c"]).partial_fit(X, names)
    assert p.n_iter_ == 2 and len(p.history_["errors"]) == 2


# ------------------------------------------------------------------------------ the contract
def test_string_labels_and_probabilities():
    X, y = blobs(120, K=3)
    names = np.array(["cat", "dog", "emu"])[y]
    for est in (mlp((8,), random_state=0),
                mlp((8,), output_activation="softmax", random_state=0),
                LogisticRegression()):
        est.fit(X, names)
        assert list(est.classes_) == ["cat", "dog", "emu"]
        pred = est.predict(X)
        assert pred.dtype == names.dtype and set(pred) <= {"cat", "dog", "emu"}
        P = est.predict_proba(X)
        assert P.shape == (120, 3)
        np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-12)
        assert np.array_equal(est.classes_[P.argmax(axis=1)], pred)
        assert est.score(X, names) > 0.85


def test_binary_uses_one_sigmoid_unit():
    X, y = blobs(100, K=2, seed=5)
    est = mlp((6,), random_state=0).fit(X, y == 1)
    assert est.layer_sizes_ == [2, 6, 1] and est.n_outputs_ == 1
    assert list(est.classes_) == [False, True]
    P = est.predict_proba(X)
    assert P.shape == (100, 2) and np.allclose(P.sum(axis=1), 1)
    soft = mlp((6,), output_activation="softmax", random_state=0).fit(X, y)
    assert soft.layer_sizes_ == [2, 6, 2] and soft.loss_function_ == "log_loss"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_float32_stays_float32(cls):
    X, y = blobs(60, K=2)
    X32 = X.astype(np.float32)
    target = X[:, 0] + X[:, 1] if cls._estimator_type == "regressor" else y
    default_solver_available(cls)
    est = small(cls()).fit(X32, target)
    assert est._dtype() == np.float32
    if "dtype" in est.get_params():
        est.set_params(dtype=None)
    out = est.predict(X32)
    if cls._estimator_type == "regressor":
        assert out.dtype == np.float32
    if hasattr(est, "predict_proba"):
        assert est.predict_proba(X32).dtype == np.float32
    if hasattr(est, "decision_function"):
        assert est.decision_function(X32).dtype == np.float32
    # int data train in float64 (scikit-learn's rule: MLPClassifier's with dtype=None)
    est64 = small(cls())
    if "dtype" in est64.get_params():
        est64.set_params(dtype=None)
    est64.fit(np.round(X * 10).astype(np.int64), target)
    assert est64._dtype() == np.float64


def test_mlp_classifier_trains_in_float32_by_default():
    """MLPClassifier's default dtype: float32 training for any input, float64 probabilities
    (rows summing to one) for float64 input, float32 ones for float32 input; the regressor
    keeps the input's precision; a bad dtype is named."""
    X, y = blobs(60, K=3)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, random_state=0).fit(X, y)
    assert est._dtype() == np.float32 and est.coefs_[0].dtype == np.float32
    P = est.predict_proba(X)
    assert P.dtype == np.float64
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-12)
    assert est.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert est.score(X, y) > 0.8
    f64 = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0,
                        dtype="float64").fit(X.astype(np.float32), y)
    assert f64._dtype() == np.float64
    assert MLPRegressor().get_params()["dtype"] is None
    assert MLPClassifier().get_params()["dtype"] == "float32"
    for bad in ("float16", "int64", True, "double-ish"):
        with pytest.raises(ValueError, match="dtype must be"):
            MLPClassifier(dtype=bad, max_iter=2).fit(X, y)


def test_get_set_params_and_repr():
    est = MLPClassifier((20, 10), activation=["relu", "tanh"], lr=0.05)
    params = est.get_params()
    assert params["hidden_layer_sizes"] == (20, 10) and params["lr"] == 0.05
    assert "hidden_layer_sizes=(20, 10)" in repr(est) and "lr=0.05" in repr(est)
    assert "momentum" not in repr(est)
    assert est.set_params(lr=0.2, max_epochs=5) is est and est.lr == 0.2
    with pytest.raises(ValueError, match="Invalid parameter 'foo'"):
        est.set_params(foo=1)
    clone = type(est)(**est.get_params())
    assert clone.get_params() == est.get_params()


def test_history_and_fitted_attributes():
    X, y = blobs(90)
    est = mlp((7,), max_epochs=15, tol=0, random_state=0, track_accuracy=True).fit(X, y)
    h = est.history_
    assert h["epochs"] == est.n_iter_ == 15 == len(h["J"]) == len(h["train_acc"])
    assert len(h["seconds"]) == 15 and est.loss_ == h["J"][-1]
    assert h["J"][-1] < h["J"][0]
    assert est.n_features_in_ == 2 and est.t_ == 15 * 90
    assert [c.shape for c in est.coefs_] == [(2, 7), (7, 3)]
    assert [b.shape for b in est.intercepts_] == [(7,), (3,)]
    assert [t.shape for t in est.thetas_] == [(7, 3), (3, 8)]
    model = est.model_
    assert model[1] is fastnet.Sigmoid
    assert np.array_equal(fastnet.predict(model, X), est.predict(X))
    quiet = mlp((7,), max_epochs=3, random_state=0).fit(X, y)
    assert "train_acc" not in quiet.history_
    for name in ("coefs_", "thetas_", "model_"):
        assert not hasattr(MLPClassifier(), name)


def test_layer_activations_and_options():
    X, y = blobs(90)
    for kw in (dict(activation=["relu", "tanh"], hidden_layer_sizes=(8, 6)),
               dict(activation="logistic"), dict(activation="linear"),
               dict(optimizer="gd", lr=1.0), dict(optimizer="momentum", lr=0.05),
               dict(optimizer="rmsprop", lr=0.01), dict(optimizer="sgd", batch_size=1),
               dict(penalty="l2", lam=0.01), dict(penalty="l1", lam=0.001),
               dict(loss="quadratic")):
        opts = dict(hidden_layer_sizes=(8,), max_epochs=40, random_state=0)
        opts.update(kw)
        est = mlp(**opts).fit(X, y)
        assert est.score(X, y) > 0.6, kw
    est = mlp((8, 6), activation=["relu", "tanh"], max_epochs=2).fit(X, y)
    assert est.activations_ == ["relu", "tanh", "sigmoid"]


def test_penalty_shrinks_weights():
    X, y = blobs(90)
    plain = mlp((8,), max_epochs=60, random_state=0).fit(X, y)
    l2 = mlp((8,), max_epochs=60, random_state=0, penalty="l2", lam=0.05).fit(X, y)
    norm = lambda e: sum(float(np.sum(c ** 2)) for c in e.coefs_)
    assert norm(l2) < norm(plain)


def test_random_state_reproducible_and_different():
    X, y = blobs(60)
    a = mlp((5,), max_epochs=5, random_state=3).fit(X, y)
    b = mlp((5,), max_epochs=5, random_state=3).fit(X, y)
    c = mlp((5,), max_epochs=5, random_state=4).fit(X, y)
    assert np.array_equal(a.params_, b.params_)
    assert not np.array_equal(a.params_, c.params_)


def test_early_stopping_keeps_best_weights():
    X, y = blobs(200, K=3, seed=6, spread=1.2)
    est = mlp((10,), early_stopping=True, validation_fraction=0.2, n_iter_no_change=3,
              max_epochs=300, random_state=0).fit(X, y)
    h = est.history_
    assert h["stopped_early"] and est.n_iter_ < 300
    assert len(h["val_acc"]) == len(h["val_J"]) == est.n_iter_
    best = int(np.argmax(np.array(h["val_acc"]) > max(h["val_acc"]) - 1e-9))
    assert h["best_epoch"] == best + 1
    assert est.best_validation_score_ == pytest.approx(max(h["val_acc"]) / 100)
    assert est.validation_scores_ == pytest.approx([a / 100 for a in h["val_acc"]])
    assert est.best_loss_ is None
    reg = mlp_reg((6,), early_stopping=True, max_epochs=200, n_iter_no_change=3,
                  random_state=0).fit(X, X[:, 0] * 0.3)
    assert "val_J" in reg.history_ and "val_acc" not in reg.history_
    assert reg.best_validation_score_ == pytest.approx(max(reg.validation_scores_))
    assert -1 < reg.best_validation_score_ <= 1  # R^2, as scikit-learn


def test_partial_fit_classes_and_sequence():
    X, y = blobs(120)
    est = mlp((8,), random_state=0, lr=0.5)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X, y)
    est.partial_fit(X[:40], y[:40], classes=[0, 1, 2])
    for _ in range(30):
        est.partial_fit(X, y)
    assert est.n_iter_ == 1 and len(est.loss_curve_) == 31 and est.score(X, y) > 0.8
    with pytest.raises(ValueError, match="differs from classes_"):
        est.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="not seen in the first fit"):
        est.partial_fit(X[:3], [0, 1, 7])
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 2"):
        est.partial_fit(np.ones((4, 3)), [0, 1, 2, 0])
    # a label given in classes but absent from the first batch
    late = mlp((4,), random_state=0).partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert late.n_outputs_ == 3


def test_regressors():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (200, 1))
    y = np.sin(X[:, 0])
    est = mlp_reg((20,), activation="tanh", optimizer="momentum", lr=0.02,
                  max_epochs=300, random_state=0).fit(X, y)
    assert est.predict(X).shape == (200,) and est.score(X, y) > 0.9
    Y = np.column_stack((y, 0.5 * X[:, 0]))
    multi = mlp_reg((10,), max_epochs=50, random_state=0).fit(X, Y)
    assert multi.predict(X).shape == (200, 2) and multi.n_outputs_ == 2
    lin = LinearRegression().fit(X, Y)
    assert lin.coef_.shape == (2, 1) and lin.intercept_.shape == (2,)
    assert lin.score(X, Y) > 0.5
    col = LinearRegression().fit(X, y[:, None])
    assert col.predict(X).shape == (200, 1)


def test_lr_auto_converges_on_unscaled_data():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3)) * [1.0, 100.0, 1000.0] + [0, 500, 0]
    y = X @ [2.0, 0.01, 0.001] + 1.0
    est = LinearRegression(max_epochs=50).fit(X, y)  # a fixed lr of 0.01 would diverge
    assert np.isfinite(est.params_).all() and est.lr_ > 0
    assert all(np.diff(est.history_["J"]) <= 1e-12)
    assert LogisticRegression(max_epochs=50).fit(X, y > np.median(y)).lr_ > 0
    with pytest.raises(fastnet.DivergenceError, match="smaller learning rate"):
        with np.errstate(all="ignore"):
            LinearRegression(lr=0.01, max_epochs=50).fit(X, y)


def test_convergence_warning_and_tol():
    X, y = blobs(60)
    with pytest.warns(fastnet.ConvergenceWarning, match=r"max_iter=3\) was reached"):
        mlp((4,), max_epochs=3, random_state=0).fit(X, y)
    est = LogisticRegression(tol=1e-3, max_epochs=10000).fit(X, y)
    assert est.history_["converged"] and est.n_iter_ < 10000


def test_estimators_run_on_every_backend(backend):
    X, y = blobs(80)
    est = mlp((6,), max_epochs=20, random_state=0).fit(X, y)
    with fastnet.use_backend("reference"):
        ref = mlp((6,), max_epochs=20, random_state=0).fit(X, y)
    assert_close(est.params_, ref.params_, rtol=1e-8)
    assert np.array_equal(est.predict(X), ref.predict(X))


def test_verbose_progress_bar(capsys):
    X, y = blobs(60)
    mlp((4,), max_epochs=5, verbose=2, random_state=0).fit(X, y)
    err = capsys.readouterr().err
    assert "MLPClassifier" in err and "loss" in err and "samples/s" in err
    mlp((4,), max_epochs=5, verbose=0, random_state=0).fit(X, y)
    mlp((4,), max_epochs=5, verbose=1, random_state=0).fit(X, y)  # short: nothing shown
    mlp((4,), max_epochs=5, random_state=0).fit(X, y)  # scikit-learn's default: silent
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw,match", [
    (dict(lr=-0.1), r"'lr' parameter of MLPClassifier must be a float in the range \(0, inf\)"),
    (dict(lr="fast"), r"'lr' parameter"),
    (dict(activation="softplus"), r"'activation' parameter .* among \{'identity', 'logistic', "
                                  r"'tanh', 'relu'\}"),
    (dict(activation=["relu"], hidden_layer_sizes=(3, 3)), r"list of 2 of them"),
    (dict(hidden_layer_sizes=(0,)), r"'hidden_layer_sizes' parameter"),
    (dict(optimizer="adagrad"), r"'optimizer' parameter .* \{'gd', 'sgd', 'momentum', "
                                r"'rmsprop', 'adam', 'nesterov'\}"),
    (dict(solver="lbfgs"), r"'solver' parameter of MLPClassifier must be a str among "
                           r"\{'adam', 'sgd'\}.*no L-BFGS"),
    (dict(solver="newton"), r"'solver' parameter of MLPClassifier must be a str among "
                            r"\{'adam', 'sgd'\}. Got 'newton' instead."),
    (dict(learning_rate="cyclic"), r"'learning_rate' parameter .* \{'constant', 'invscaling', "
                                   r"'adaptive'\}"),
    (dict(alpha=-1.0), r"'alpha' parameter of MLPClassifier must be a float in the range "
                       r"\[0, inf\)"),
    (dict(learning_rate_init=0), r"'learning_rate_init' parameter .* \(0, inf\)"),
    (dict(batch_size="big"), r"'batch_size' parameter .* 'auto'"),
    (dict(beta_2=1.0), r"'beta_2' parameter"),
    (dict(n_iter_no_change=0), r"'n_iter_no_change' parameter"),
    (dict(lr=0.1, learning_rate_init=0.01), r"give lr=0.1 or learning_rate_init=0.01, not both"),
    (dict(max_epochs=5, max_iter=7), r"give max_epochs=5 or max_iter=7, not both"),
    (dict(output_activation="relu"), r"'output_activation' parameter"),
    (dict(output_activation="softmax", loss="cross_entropy"), r"'loss' parameter .*log_loss"),
    (dict(loss="log_loss", output_activation="sigmoid"), r"'log_loss' needs 'softmax'"),
    (dict(batch_size=0), r"'batch_size' parameter .* 'auto', None or an int in the range "
                         r"\[1, inf\)"),
    (dict(momentum=1.0), r"'momentum' parameter"),
    (dict(penalty="l3"), r"'penalty' parameter"),
    (dict(lam=-1), r"'lam' parameter"),
    (dict(max_epochs=0), r"'max_epochs' parameter"),
    (dict(validation_fraction=1.0), r"'validation_fraction' parameter"),
    (dict(random_state=-1), r"'random_state' parameter"),
    (dict(early_stopping="yes"), r"'early_stopping' parameter .* a bool"),
])
def test_bad_hyper_parameters(kw, match):
    X, y = blobs(30)
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**kw).fit(X, y)


def test_bad_parameters_of_other_estimators():
    X, y = blobs(30, K=2)
    with pytest.raises(ValueError, match=r"'lr' parameter of LinearRegression must be 'auto'"):
        LinearRegression(lr=-1).fit(X, y)
    with pytest.raises(ValueError, match=r"'lr' parameter of Perceptron"):
        Perceptron(lr=0).fit(X, y)
    with pytest.raises(ValueError, match=r"'eta0' parameter of Perceptron"):
        Perceptron(eta0=-1).fit(X, y)
    with pytest.raises(ValueError, match=r"'fit_intercept' parameter of Perceptron must be True"):
        Perceptron(fit_intercept=False).fit(X, y)
    with pytest.raises(ValueError, match=r"'C' parameter of LogisticRegression"):
        LogisticRegression(C=0).fit(X, y)
    with pytest.raises(ValueError, match=r"fit_intercept=False needs full batches"):
        LinearRegression(fit_intercept=False, optimizer="sgd", batch_size=4).fit(X, y)
    with pytest.raises(ValueError, match=r"'output_activation' parameter of MLPRegressor"):
        MLPRegressor(output_activation="softmax").fit(X, y)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_predict_before_fit(cls):
    with pytest.raises(ValueError, match="not fitted yet") as info:
        cls().predict(np.ones((2, 2)))
    assert type(info.value).__name__ == "NotFittedError"
    assert isinstance(info.value, E.NotFittedError)
    sk = pytest.importorskip("sklearn.exceptions")
    assert isinstance(info.value, sk.NotFittedError)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_bad_data(cls):
    X, y = blobs(30, K=2)
    default_solver_available(cls)
    est = small(cls()).fit(X, y)
    name = cls.__name__
    with pytest.raises(ValueError, match=f"X has 3 features, but {name} is expecting 2"):
        est.predict(np.ones((4, 3)))
    with pytest.raises(ValueError, match="Reshape your data"):
        est.predict(X[0])
    bad = X.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        small(cls()).fit(bad, y)
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        est.predict(bad)
    with pytest.raises(ValueError, match="0 sample"):
        small(cls()).fit(np.empty((0, 2)), [])
    with pytest.raises(ValueError, match="requires y to be passed"):
        small(cls()).fit(X, None)
    with pytest.raises(ValueError, match="y has 29"):
        small(cls()).fit(X, y[:-1])
    with pytest.raises(ValueError, match="Complex data not supported"):
        small(cls()).fit(X + 1j, y)
    with pytest.raises(TypeError, match="sparse"):
        sp = pytest.importorskip("scipy.sparse")
        small(cls()).fit(sp.csr_matrix(X), y)


def test_bad_labels():
    X, y = blobs(30)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        MLPClassifier().fit(X, X[:, 0])
    with pytest.raises(ValueError, match="only one class"):
        LogisticRegression().fit(X, np.ones(30))
    with pytest.raises(ValueError, match="Input y contains NaN"):
        MLPRegressor().fit(X, np.full(30, np.nan))
    with pytest.raises(ValueError, match="multi-label"):
        MLPClassifier().fit(X, np.ones((30, 2)))
    with pytest.raises(ValueError, match="not in classes"):
        MLPClassifier().partial_fit(X, y, classes=[0, 1])


def test_divergence_is_reported():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2)) * 100
    with np.errstate(all="ignore"), pytest.raises(fastnet.DivergenceError,
                                                  match="smaller learning rate"):
        mlp_reg((4,), activation="linear", lr=10.0, random_state=0).fit(X, X[:, 0] * 1e3)
