"""scikit-learn's code runs unchanged on fastnet's estimators (issue 16): names, meanings,
defaults, fitted attributes, comparable results; the course's names keep working."""
import inspect
import warnings

import numpy as np
import pytest

import fastnet
from fastnet import _backend

from conftest import assert_close
from _api_helpers import optimizer_missing

sk_nn = pytest.importorskip("sklearn.neural_network")
sk_lm = pytest.importorskip("sklearn.linear_model")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def adam_backend():
    """The default backend when it has Adam (scikit-learn's default solver), else the reference."""
    return _backend.get_backend() if optimizer_missing("adam") is None else "reference"


def digits(n=600):
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))[:n]
    X, y = X[idx] / 16.0, y[idx]
    return X[: n * 3 // 4], y[: n * 3 // 4], X[n * 3 // 4:], y[n * 3 // 4:]


@pytest.mark.parametrize("ours,theirs", [
    (fastnet.MLPClassifier, sk_nn.MLPClassifier), (fastnet.MLPRegressor, sk_nn.MLPRegressor)])
def test_mlp_takes_every_scikit_learn_parameter_with_its_default(ours, theirs):
    mine = inspect.signature(ours).parameters
    for name, p in inspect.signature(theirs).parameters.items():
        assert name in mine, name
        assert mine[name].default == p.default or name == "loss", (name, mine[name].default)


def test_main_parameters_of_the_linear_models():
    assert {"C", "max_iter", "tol", "fit_intercept", "warm_start"} <= set(
        inspect.signature(fastnet.LogisticRegression).parameters)
    assert {"fit_intercept", "max_iter", "tol"} <= set(
        inspect.signature(fastnet.LinearRegression).parameters)
    assert {"eta0", "max_iter", "tol", "fit_intercept", "n_iter_no_change", "shuffle"} <= set(
        inspect.signature(fastnet.Perceptron).parameters)


def test_unknown_parameter_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'alphas'"):
        fastnet.MLPClassifier(alphas=1e-4)


def test_the_issues_script_runs_and_gives_comparable_results():
    """MLPClassifier(hidden_layer_sizes=(50,), alpha=1e-4, learning_rate_init=0.01, max_iter=50)."""
    Xtr, ytr, Xte, yte = digits()
    kw = dict(hidden_layer_sizes=(50,), alpha=1e-4, learning_rate_init=0.01, max_iter=50,
              random_state=0)
    theirs = sk_nn.MLPClassifier(**kw).fit(Xtr, ytr)
    with fastnet.use_backend(adam_backend()):
        ours = fastnet.MLPClassifier(**kw).fit(Xtr, ytr)
    assert ours.score(Xte, yte) >= theirs.score(Xte, yte) - 0.03
    assert ours.out_activation_ == theirs.out_activation_ == "softmax"
    assert ours.n_layers_ == theirs.n_layers_ == 3
    assert [c.shape for c in ours.coefs_] == [c.shape for c in theirs.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in theirs.intercepts_]
    assert list(ours.classes_) == list(theirs.classes_)
    assert ours.n_features_in_ == theirs.n_features_in_ == 64
    assert len(ours.loss_curve_) == ours.n_iter_ and ours.loss_ == ours.loss_curve_[-1]
    assert ours.best_loss_ == pytest.approx(min(ours.loss_curve_))
    assert abs(ours.loss_ - theirs.loss_) < 0.5 * theirs.loss_ + 0.05  # same loss, same scale


def test_binary_output_is_one_logistic_unit_as_scikit_learn():
    Xtr, ytr, _, _ = digits()
    with fastnet.use_backend(adam_backend()):
        ours = fastnet.MLPClassifier((10,), max_iter=20, random_state=0).fit(Xtr, ytr == 3)
    assert ours.out_activation_ == "logistic" and ours.coefs_[-1].shape == (10, 1)


def test_alpha_is_scikit_learns_per_batch_penalty():
    """alpha over the batch size is the course's lambda."""
    Xtr, ytr, _, _ = digits(200)
    kw = dict(hidden_layer_sizes=(6,), activation="logistic", solver="sgd", momentum=0,
              learning_rate_init=0.2, batch_size=25, max_iter=3, shuffle=False, random_state=0,
              tol=0, n_iter_no_change=100)
    a = fastnet.MLPClassifier(alpha=0.5, **kw).fit(Xtr, ytr)
    b = fastnet.MLPClassifier(penalty="l2", lam=0.5 / 25, **kw).fit(Xtr, ytr)
    assert_close(a.params_, b.params_)


def test_C_is_scikit_learns_inverse_strength():
    Xtr, ytr, _, _ = digits(200)
    m = Xtr.shape[0]
    a = fastnet.LogisticRegression(C=0.5, max_iter=100).fit(Xtr, ytr)
    b = fastnet.LogisticRegression(lam=1 / (0.5 * m), max_iter=100).fit(Xtr, ytr)
    assert_close(a.params_, b.params_)
    c = fastnet.LogisticRegression(penalty=None, max_iter=100).fit(Xtr, ytr)
    assert np.abs(c.coef_).sum() > np.abs(a.coef_).sum()  # regularised weights are smaller


def test_invscaling_is_scikit_learns_schedule(backend):
    """After each epoch the rate is lr0 / (t + 1)^power_t, t the samples seen."""
    Xtr, ytr, _, _ = digits(120)
    kw = dict(hidden_layer_sizes=(5,), activation="logistic", output_activation="sigmoid",
              solver="sgd", momentum=0, batch_size=30, shuffle=False, tol=0,
              n_iter_no_change=100, random_state=0, penalty=None)
    est = fastnet.MLPClassifier(learning_rate="invscaling", learning_rate_init=0.5, power_t=0.5,
                                max_iter=3, **kw).fit(Xtr, ytr)
    model = fastnet.MLPClassifier(max_iter=1, learning_rate_init=0.5, **kw).fit(Xtr, ytr).model_
    m = Xtr.shape[0]
    for epoch in (1, 2):  # the two later epochs, by hand
        fastnet.train(model, Xtr, ytr, optimizer="sgd", batch_size=30, shuffle=False, epochs=1,
                      lr=0.5 / (epoch * m + 1) ** 0.5)
    for a, b in zip(est.thetas_, model[::2]):
        assert_close(a, b)


def test_adaptive_divides_the_rate_when_the_cost_stalls():
    Xtr, ytr, _, _ = digits(120)
    kw = dict(hidden_layer_sizes=(5,), solver="sgd", nesterovs_momentum=False,
              learning_rate_init=0.05, tol=10.0, n_iter_no_change=1, max_iter=12, random_state=0)
    constant = fastnet.MLPClassifier(**kw).fit(Xtr, ytr)
    adaptive = fastnet.MLPClassifier(learning_rate="adaptive", **kw).fit(Xtr, ytr)
    assert constant.n_iter_ == 3  # stopped at the first stall (2 epochs without improvement)
    assert adaptive.n_iter_ == 12  # divided the rate by 5 at each stall instead


def test_warm_start_continues_from_the_fitted_weights():
    Xtr, ytr, _, _ = digits(200)
    kw = dict(hidden_layer_sizes=(6,), solver="sgd", momentum=0, max_iter=2, tol=0,
              n_iter_no_change=100, shuffle=False, random_state=0)
    est = fastnet.MLPClassifier(warm_start=True, **kw).fit(Xtr, ytr)
    first = est.coefs_[0].copy()
    est.fit(Xtr, ytr)
    # n_iter_ counts this call's epochs (scikit-learn's rule since 1.3), t_ all the samples
    assert est.n_iter_ == 2 and est.t_ == 4 * len(ytr) and len(est.loss_curve_) == 4
    assert not np.array_equal(first, est.coefs_[0])
    four = fastnet.MLPClassifier(**dict(kw, max_iter=4)).fit(Xtr, ytr)
    assert_close(est.params_, four.params_)


def test_fit_intercept_false_keeps_the_bias_at_zero():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    y = X @ [2.0, -1.0] + 3.0
    est = fastnet.LinearRegression(fit_intercept=False, max_iter=2000, tol=1e-12).fit(X, y)
    assert est.intercept_ == 0.0
    exact = np.linalg.lstsq(X, y, rcond=None)[0]  # the least-squares fit through the origin
    assert_close(est.coef_, exact, rtol=1e-5)


def test_scikit_learns_warning_filters_catch_fastnets_convergence_warning():
    from sklearn.exceptions import ConvergenceWarning
    assert issubclass(fastnet.ConvergenceWarning, ConvergenceWarning)
    assert fastnet.ConvergenceWarning is fastnet.estimators.ConvergenceWarning
    Xtr, ytr, _, _ = digits(120)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)  # scikit-learn's own filter
        fastnet.MLPClassifier((4,), solver="sgd", momentum=0, max_iter=2).fit(Xtr, ytr)


def test_convergence_warning_is_scikit_learns_even_when_it_is_imported_after_fastnet():
    import subprocess
    import sys
    from conftest import REPO
    code = ("import fastnet, warnings\n"
            "cls = fastnet.ConvergenceWarning\n"
            "import sklearn.exceptions\n"
            "assert issubclass(cls, sklearn.exceptions.ConvergenceWarning)\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_score_with_labels_of_another_type_is_an_error():
    Xtr, ytr, _, _ = digits(120)
    names = np.array(list("abcdefghij"))[ytr]
    est = fastnet.MLPClassifier((4,), solver="sgd", momentum=0, max_iter=2).fit(Xtr, names)
    with pytest.raises(ValueError, match="same type.*string labels"):
        est.score(Xtr, ytr)
    assert 0 <= est.score(Xtr, names) <= 1


def test_solver_sgd_is_nesterov_momentum_as_scikit_learn(backend):
    if optimizer_missing("nesterov"):
        pytest.skip(f"optimizer 'nesterov' not on backend {backend!r} yet")
    Xtr, ytr, _, _ = digits(200)
    kw = dict(hidden_layer_sizes=(6,), solver="sgd", max_iter=3, tol=0, n_iter_no_change=100,
              shuffle=False, random_state=0)
    est = fastnet.MLPClassifier(**kw).fit(Xtr, ytr)
    with fastnet.use_backend("reference"):
        ref = fastnet.MLPClassifier(optimizer="nesterov", lr=0.001, momentum=0.9,
                                    **{k: v for k, v in kw.items() if k != "solver"}).fit(Xtr, ytr)
    assert_close(est.params_, ref.params_)


def test_adam_on_every_backend_is_the_reference(backend):
    if optimizer_missing("adam"):
        pytest.skip(f"optimizer 'adam' not on backend {backend!r} yet (the numba and cython "
                    f"kernels gain it with their helpers' work)")
    Xtr, ytr, _, _ = digits(200)
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, tol=0, n_iter_no_change=100,
              shuffle=False, random_state=0)
    est = fastnet.MLPClassifier(**kw).fit(Xtr, ytr)
    with fastnet.use_backend("reference"):
        ref = fastnet.MLPClassifier(**kw).fit(Xtr, ytr)
    assert_close(est.params_, ref.params_)


SAME_TRAJECTORY = [dict(), dict(solver="sgd"), dict(solver="sgd", nesterovs_momentum=False),
                   dict(alpha=0.5, batch_size=50), dict(activation="tanh"),
                   dict(activation="logistic", solver="sgd", learning_rate="invscaling",
                        learning_rate_init=0.1)]


@pytest.mark.parametrize("kw", SAME_TRAJECTORY, ids=lambda kw: ",".join(map(str, kw.values()))
                         or "defaults")
@pytest.mark.parametrize("task", ["softmax", "logistic", "regression"])
def test_from_scikit_learns_weights_it_trains_to_scikit_learns_weights(backend, kw, task):
    """Given scikit-learn's weights and order, a warm-started fit takes scikit-learn's steps.

    Both estimators fit one epoch; ours is given scikit-learn's weights; both then fit 4
    epochs more with ``warm_start`` (a fresh optimiser, as scikit-learn's) and no shuffle.
    The weights agree to rounding: the forward pass, the loss's gradient, the per-batch L2
    term, Adam's and Nesterov's steps, the schedules and the output layers are the same
    algorithm.  The recorded cost differs only in the penalty, which fastnet takes at the
    start of the epoch and scikit-learn before each batch.  400 rows: whole batches (a
    smaller last batch is penalised by alpha/batch_size here, alpha/its rows there).
    """
    if kw.get("solver", "adam") == "adam" and optimizer_missing("adam"):
        pytest.skip(f"optimizer 'adam' not on backend {backend!r}")
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X, y = X[:400] / 16.0, y[:400]
    target = {"softmax": y, "logistic": y % 2, "regression": X[:, 20] + X[:, 30]}[task]
    ours_cls, theirs_cls = (fastnet.MLPRegressor, sk_nn.MLPRegressor) if task == "regression" \
        else (fastnet.MLPClassifier, sk_nn.MLPClassifier)
    base = dict(hidden_layer_sizes=(7, 5), warm_start=True, shuffle=False, max_iter=1, tol=0,
                n_iter_no_change=100, random_state=0, **kw)
    theirs = theirs_cls(**base).fit(X, target)
    ours = ours_cls(dtype="float64", **base).fit(X, target)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        a[...] = b
    assert_close(ours.coefs_[0], theirs.coefs_[0])
    theirs.set_params(max_iter=4).fit(X, target)
    ours.set_params(max_iter=4).fit(X, target)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * np.abs(b).max())
    assert ours.n_iter_ == theirs.n_iter_ == 4 and ours.t_ == theirs.t_ == 5 * 400
    rtol = 1e-2 if kw.get("alpha", 0) > 0.1 else 1e-6
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=rtol)


@pytest.mark.parametrize("kw", [dict(), dict(activation="logistic"), dict(solver="sgd"),
                                dict(hidden_layer_sizes=(30, 20), activation="tanh",
                                     batch_size=50)],
                         ids=["defaults", "logistic", "sgd", "tanh-30-20-b50"])
def test_the_same_random_state_gives_scikit_learns_fit(backend, kw):
    """An int random_state draws scikit-learn's initial weights and its shuffled orders: in
    float64 the fit is scikit-learn's, to rounding, on every backend; np.random.seed does the
    same for random_state=None."""
    if kw.get("solver", "adam") == "adam" and optimizer_missing("adam"):
        pytest.skip(f"optimizer 'adam' not on backend {backend!r}")
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X, y = X[:400] / 16.0, y[:400]
    for seed in (0, 7):
        theirs = sk_nn.MLPClassifier(random_state=seed, max_iter=6, **kw).fit(X, y)
        ours = fastnet.MLPClassifier(random_state=seed, max_iter=6, dtype="float64",
                                     **kw).fit(X, y)
        for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.random.seed(3)
    theirs = sk_nn.MLPClassifier(max_iter=2, **kw).fit(X, y)
    np.random.seed(3)
    ours = fastnet.MLPClassifier(max_iter=2, dtype="float64", **kw).fit(X, y)
    np.testing.assert_allclose(ours.coefs_[0], theirs.coefs_[0], rtol=1e-9, atol=1e-12)


def test_a_generator_random_state_draws_fastnets_way():
    """A numpy Generator is fastnet's extension: reproducible, and not scikit-learn's draws."""
    Xtr, ytr, _, _ = digits(200)
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, batch_size=50)
    a = fastnet.MLPClassifier(random_state=np.random.default_rng(0), **kw).fit(Xtr, ytr)
    b = fastnet.MLPClassifier(random_state=np.random.default_rng(0), **kw).fit(Xtr, ytr)
    c = fastnet.MLPClassifier(random_state=0, **kw).fit(Xtr, ytr)
    np.testing.assert_array_equal(a.params_, b.params_)
    assert not np.allclose(a.params_, c.params_)


@pytest.mark.parametrize("task", ["softmax", "logistic", "regression"])
def test_early_stopping_holds_out_scikit_learns_rows(backend, task):
    """With an int random_state, early_stopping's validation part is scikit-learn's (a plain
    shuffle, stratified only for a single output), so the scores, the stopping epoch and
    the best weights kept are scikit-learn's, in float64.  445 rows: 400 to train."""
    if optimizer_missing("adam"):
        pytest.skip(f"optimizer 'adam' not on backend {backend!r}")
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X, y = X[:445] / 16.0, y[:445]
    target = {"softmax": y, "logistic": y % 2, "regression": X[:, 20] + X[:, 30]}[task]
    ours_cls, theirs_cls = (fastnet.MLPRegressor, sk_nn.MLPRegressor) if task == "regression" \
        else (fastnet.MLPClassifier, sk_nn.MLPClassifier)
    kw = dict(hidden_layer_sizes=(20,), early_stopping=True, n_iter_no_change=3, max_iter=80,
              learning_rate_init=0.01, random_state=4)
    theirs = theirs_cls(**kw).fit(X, target)
    ours = ours_cls(dtype="float64", **kw).fit(X, target)
    assert ours.n_iter_ == theirs.n_iter_
    assert task == "regression" or ours.n_iter_ < 80  # the classifiers stop early
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_,
                               rtol=1e-9, atol=1e-12)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_,
                                                         rel=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-11)


def test_early_stopping_split_refuses_what_it_cannot_split():
    X = np.random.default_rng(0).random((30, 3))
    lonely = np.zeros(30, int)
    lonely[0] = 1
    with pytest.raises(ValueError, match="early_stopping.*two samples of each class.*has 1"):
        fastnet.MLPClassifier(early_stopping=True, random_state=0).fit(X, lonely)
    with pytest.raises(ValueError, match="validation_fraction=0.99 of 30 samples leaves no "
                                         "training sample"):
        fastnet.MLPRegressor(early_stopping=True, validation_fraction=0.99,
                             random_state=0).fit(X, X[:, 0])
