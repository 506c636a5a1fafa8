"""The estimators' race: fastnet's MLPClassifier against scikit-learn's, with the accuracy reached.

Groups (one table each in ``BENCHMARKS.md``), on scikit-learn's 8x8 digits (pixels / 16,
a stratified 75/25 split) and on MNIST (the first 8,000 t10k images to train, the last
2,000 to test, pixels / 255):

* ``defaults <data>``: ``fastnet.MLPClassifier()`` against ``sklearn.neural_network.
  MLPClassifier()``, each with its defaults (``random_state=0`` only): the whole ``fit``,
  its epochs and its test accuracy (``extra_info``);
* ``equal settings <data>``: both with the same settings -- one hidden layer of 100 ReLU
  units, Adam with lr 0.001, batches of 200, alpha 1e-4, a fixed 20 epochs (``tol=0``,
  ``n_iter_no_change`` past the budget) -- so the ratio is the speed of an epoch;
  fastnet's ``extra_info`` also holds the bookkeeping of its fits (the median of several) as fractions of the
  ``train_epoch`` kernel's time (:func:`_bookkeeping`): per epoch (history, progress,
  checks, the divergence rule) and once per fit (checking and converting X);
* ``cv n_jobs <data>`` and ``grid n_jobs <data>``: scikit-learn's ``cross_val_score``
  (4 folds) and ``GridSearchCV`` (2 values of ``alpha`` x 2 folds) of fastnet's
  ``MLPClassifier`` (20 epochs of momentum SGD) with ``n_jobs=1`` and ``n_jobs=2``.

Every method gets one untimed warm-up fit first (Numba's compilation or cache load,
scikit-learn's imports), so the timed rounds compare steady states.  Run with
``flock /tmp/fastnet-bench.lock python -m pytest benchmarks/bench_estimators.py``.
"""
import time
import warnings

import numpy as np
import pytest

import fastnet
from fastnet import _backend
from fastnet._codes import Run
from _helpers import peer, run

EQUAL = dict(hidden_layer_sizes=(100,), activation="relu", solver="adam",
             learning_rate_init=0.001, batch_size=200, alpha=1e-4, max_iter=20, tol=0.0,
             n_iter_no_change=1000, random_state=0)
ROUNDS = {"digits": 3, "mnist": 2}
#: fits whose bookkeeping fractions are measured (the median is reported)
BOOKKEEPING_FITS = {"digits": 15, "mnist": 3}


def _need_adam():
    """Skip when the default backend has no Adam yet (the defaults' optimiser)."""
    from fastnet._codes import Optimizer
    K = _backend.kernels()
    try:
        K.optimizer_step(int(Optimizer.ADAM), np.zeros(2), np.ones(2), np.zeros(4), 0.1, 0.9,
                         0.999, 1e-8, 0)
    except NotImplementedError as exc:
        pytest.skip(f"backend {_backend.get_backend()!r} has no Adam yet: {exc}")


@pytest.fixture(scope="module")
def digits():
    sk = peer("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    return {"X": Xtr, "y": ytr, "X_test": Xte, "y_test": yte, "sklearn": sk}


@pytest.fixture(scope="module")
def data(request):
    if request.param == "digits":
        return request.getfixturevalue("digits")
    mnist = request.getfixturevalue("mnist")
    return {"X": mnist["X64"], "y": mnist["y"], "X_test": mnist["X_test"],
            "y_test": mnist["y_test"]}


def _estimator(method, **params):
    if method == "sklearn":
        peer("sklearn")
        from sklearn.neural_network import MLPClassifier
        return MLPClassifier(**params)
    _need_adam()
    return fastnet.MLPClassifier(**params)


def _fit_and_score(benchmark, est_factory, data, rounds, **info):
    fitted = []

    def fn():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning of a fixed epoch budget
            fitted.append(est_factory().fit(data["X"], data["y"]))

    run(benchmark, fn, rounds=rounds, **info)
    est = fitted[-1]
    benchmark.extra_info["accuracy"] = float(est.score(data["X_test"], data["y_test"]))
    benchmark.extra_info["epochs"] = int(est.n_iter_)
    return est


def _label(method):
    return "scikit-learn" if method == "sklearn" else f"fastnet[{fastnet.get_backend()}]"


@pytest.mark.parametrize("data", ["digits", "mnist"], indirect=True)
@pytest.mark.parametrize("method", ["fastnet", "sklearn"])
def test_defaults(benchmark, data, method, request):
    name = request.node.callspec.params["data"]
    benchmark.group = f"defaults {name}"
    _fit_and_score(benchmark, lambda: _estimator(method, random_state=0), data, ROUNDS[name],
                   method=_label(method))


@pytest.mark.parametrize("data", ["digits", "mnist"], indirect=True)
@pytest.mark.parametrize("method", ["fastnet", "sklearn"])
def test_equal_settings(benchmark, data, method, request):
    name = request.node.callspec.params["data"]
    benchmark.group = f"equal settings {name}"
    est = _fit_and_score(benchmark, lambda: _estimator(method, **EQUAL), data, ROUNDS[name],
                         method=_label(method))
    if method == "fastnet":  # the median of several fits: one fit's fractions are noisy
        runs = [_bookkeeping(est, data) for _ in range(BOOKKEEPING_FITS[name])]
        benchmark.extra_info["bookkeeping"] = {
            key: float(np.median([r[key] for r in runs])) for key in runs[0]}


def _bookkeeping(est, data):
    """fastnet's own costs around the epochs' training in one fit with EQUAL's 20 epochs, as
    fractions of the training's time: ``per_epoch`` is everything between the first epoch's
    start and the last one's end that is not training (history, progress, checks, the
    divergence rule, the shuffle), ``one_off`` the rest of the fit (checking and converting
    X, the targets, the first cost).  ``per_epoch`` is split into ``shuffle_and_penalty``
    (the epoch's order and the penalty term of its cost: training work that scikit-learn
    does too) and ``bookkeeping`` (the rest: history, progress, callbacks, the divergence
    rule's backup and check).

    The fit runs its epochs either in one ``train_epochs`` call (the compiled epoch loop,
    which times each epoch's training and its order and penalty in ``times``) or, with
    callbacks that need Python between epochs, one ``train_epoch`` call each (timed here
    where the fit makes them)."""
    from fastnet import training
    from fastnet.training import EpochTrainer
    times = {"kernel": 0.0, "first": None, "last": None, "order": 0.0, "penalty": 0.0}
    K = _backend.kernels()  # the table the fit will use: its kernels are timed in place
    orig_kernel, orig_epochs = K.train_epoch, K.train_epochs
    orig_run, orig_epoch = EpochTrainer.run_epochs, EpochTrainer._epoch
    orig_order, orig_penalty = EpochTrainer._order, training.penalty_terms
    clock = time.perf_counter

    def timer(fn, key):
        def timed(*args):
            t0 = clock()
            try:
                return fn(*args)
            finally:
                times[key] += clock() - t0
        return timed

    def run_epochs(self, *args, **kwargs):
        try:
            return orig_run(self, *args, **kwargs)
        finally:
            times["last"] = clock()

    def first_epoch(self, *args):  # the loop starts at the first epoch (after the guard's cost)
        if times["first"] is None:
            times["first"] = clock()
        return orig_epoch(self, *args)

    def train_epochs(*args):
        if times["first"] is None:
            times["first"] = clock()
        try:
            return orig_epochs(*args)
        finally:
            n, per = int(args[-3][Run.EPOCHS]), args[-1]
            times["kernel"] += float(per[:n, 1].sum())
            times["order"] += float(per[:n, 2].sum())

    K.train_epoch, K.train_epochs = timer(orig_kernel, "kernel"), train_epochs
    EpochTrainer.run_epochs, EpochTrainer._epoch = run_epochs, first_epoch
    EpochTrainer._order = timer(orig_order, "order")
    training.penalty_terms = timer(orig_penalty, "penalty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = clock()
            fastnet.MLPClassifier(**EQUAL).fit(data["X"], data["y"])
            fit = clock() - t0
    finally:
        K.train_epoch, K.train_epochs = orig_kernel, orig_epochs
        EpochTrainer.run_epochs, EpochTrainer._epoch = orig_run, orig_epoch
        EpochTrainer._order, training.penalty_terms = orig_order, orig_penalty
    loop = times["last"] - times["first"]
    work = times["order"] + times["penalty"]
    return {"per_epoch": (loop - times["kernel"]) / times["kernel"],
            "shuffle_and_penalty": work / times["kernel"],
            "bookkeeping": (loop - times["kernel"] - work) / times["kernel"],
            "one_off": (fit - loop) / times["kernel"]}


def _jobs_estimator():
    # momentum SGD (every backend has it): the n_jobs rows do not wait for Adam
    return fastnet.MLPClassifier(solver="sgd", nesterovs_momentum=False, learning_rate_init=0.05,
                                 max_iter=20, tol=0.0, n_iter_no_change=1000, random_state=0)


@pytest.mark.parametrize("data", ["digits", "mnist"], indirect=True)
@pytest.mark.parametrize("kind", ["cv", "grid"])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_n_jobs(benchmark, data, kind, n_jobs, request):
    """scikit-learn's cross_val_score (4 folds) or GridSearchCV (2 alphas x 2 folds)."""
    peer("sklearn")
    from sklearn.model_selection import GridSearchCV, cross_val_score
    name = request.node.callspec.params["data"]
    benchmark.group = f"{kind} n_jobs {name}"

    def fn():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "cv":
                return cross_val_score(_jobs_estimator(), data["X"], data["y"], cv=4,
                                       n_jobs=n_jobs)
            return GridSearchCV(_jobs_estimator(), {"alpha": [1e-4, 1e-3]}, cv=2,
                                n_jobs=n_jobs).fit(data["X"], data["y"])

    run(benchmark, fn, rounds=ROUNDS[name], method=f"n_jobs={n_jobs}")
