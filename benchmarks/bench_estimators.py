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
  fastnet's ``extra_info`` also holds the bookkeeping of its fit as fractions of the
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
from _helpers import peer, run

EQUAL = dict(hidden_layer_sizes=(100,), activation="relu", solver="adam",
             learning_rate_init=0.001, batch_size=200, alpha=1e-4, max_iter=20, tol=0.0,
             n_iter_no_change=1000, random_state=0)
ROUNDS = {"digits": 3, "mnist": 2}


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
    if method == "fastnet":
        benchmark.extra_info["bookkeeping"] = _bookkeeping(est, data)


def _bookkeeping(est, data):
    """fastnet's own costs around the ``train_epoch`` kernel in one fit with EQUAL's 20 epochs,
    as fractions of the kernel's time: ``per_epoch`` is everything between the first epoch's
    start and the last one's end that is not the kernel (history, progress, checks, the
    divergence rule, the shuffle), ``one_off`` the rest of the fit (checking and converting
    X, the targets, the first cost).  ``per_epoch`` is split into ``shuffle_and_penalty``
    (the epoch's order and the penalty term of its cost: training work that scikit-learn
    does too) and ``bookkeeping`` (the rest: history, progress, callbacks, the divergence
    rule's snapshot and check).  The kernel calls are timed where the fit makes them."""
    from fastnet import training
    from fastnet.training import EpochTrainer
    times = {"kernel": 0.0, "first": None, "last": None, "order": 0.0, "penalty": 0.0}
    orig_epoch = EpochTrainer._epoch
    orig_order, orig_penalty = EpochTrainer._order, training.penalty_terms

    def timer(fn, key):
        def timed(*args):
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                times[key] += time.perf_counter() - t0
        return timed

    class Timed:
        def __init__(self, K):
            self._K = K

        def __getattr__(self, name):
            return getattr(self._K, name)

        def train_epoch(self, *args):
            t0 = time.perf_counter()
            try:
                return self._K.train_epoch(*args)
            finally:
                times["kernel"] += time.perf_counter() - t0

    def epoch(self, i):
        t0 = time.perf_counter()
        if times["first"] is None:
            times["first"] = t0
        if not getattr(self.kernels, "timed", False):
            inner = self.kernels

            def timed_kernels():
                return Timed(inner())
            timed_kernels.timed = True
            self.kernels = timed_kernels
        try:
            return orig_epoch(self, i)
        finally:
            times["last"] = time.perf_counter()

    EpochTrainer._epoch = epoch
    EpochTrainer._order = timer(orig_order, "order")
    training.penalty_terms = timer(orig_penalty, "penalty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            fastnet.MLPClassifier(**EQUAL).fit(data["X"], data["y"])
            fit = time.perf_counter() - t0
    finally:
        EpochTrainer._epoch = orig_epoch
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
