"""Fuzz suite: every public entry point and loader, on every backend, never crashes.

Hypothesis generates arrays (NaN, inf, 1e30 and 3e38, empty, wrong ndim, strings,
complex, ragged lists, non-contiguous views...), shapes, labels, hyper-parameters
and damaged files (truncated, bit-flipped, edited metadata with valid
checksums).  Each case runs on the reference and on every other available
backend and must end in one of two ways:

* a result: equal to the reference's (float64 to 1e-8, float32 to 1e-4 after
  training, labels where the outputs are not tied) for inputs of moderate size;
  finite whenever the inputs are (no silent NaN);
* a clean error: ``ValueError``/``TypeError``/``KeyError``/``FloatingPointError``
  (``DivergenceError`` is a ValueError) whose message names a damaged argument,
  the same kind of error on every backend; valid input is never refused.

Never a crash (signal, abort), a hang or another exception type.  Cases whose
input can reach a compiled kernel through a damaged file or a direct kernel
call (loaders, the command line, the kernels) run in a subprocess
(``tests/fuzz_worker.py``, one per backend, restarted after a crash) so that a
crash is reported as a failure, not as a dead test run.

Problems in code owned elsewhere are tolerated by the category names of
:data:`KNOWN` and reproduced, each, by a deterministic ``xfail(strict=True)``
test naming the owner: when it is fixed, the strict xfail fails and the
category is removed.  The counts (cases tried, clean errors, crashes, known)
are printed at the end of the run.

Runs in CI in a few minutes, derandomized (the same examples every run).
``FASTNET_FUZZ_SCALE=5`` multiplies the examples, ``FASTNET_FUZZ_RANDOM=1``
draws new ones.
"""
import gzip
import json
import math
import os
import queue
import subprocess
import sys
import threading
import warnings
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastnet
from fastnet._history import DivergenceError
from conftest import BACKENDS, REPO

pytestmark = pytest.mark.filterwarnings("ignore")

_SCALE = float(os.environ.get("FASTNET_FUZZ_SCALE", "1"))
_RANDOM = os.environ.get("FASTNET_FUZZ_RANDOM", "0") == "1"
ORDER = ["reference"] + [b for b in BACKENDS if b != "reference"]


def fuzz(n):
    """Hypothesis settings of a fuzz test with about ``n`` examples (times FASTNET_FUZZ_SCALE)."""
    return settings(max_examples=max(1, int(n * _SCALE)), deadline=None, derandomize=not _RANDOM,
                    database=None, suppress_health_check=list(HealthCheck), print_blob=True)


ALLOWED = (ValueError, TypeError, KeyError, FloatingPointError)
ALLOWED_NAMES = {"ValueError", "TypeError", "KeyError", "FloatingPointError"}
#: Problems of code owned by other parts of the project: category -> (owner, what).  A case in
#: one of these is counted as "known", not failed; each has a strict xfail test below.
KNOWN = {
    "linear-ragged-X": ("API layer (fastnet.reference.linear.check_xy)",
                        "a ragged X reaches np.asarray before as_float_array: numpy's "
                        "'setting an array element with a sequence', naming no argument"),
    "numba-network-kernel-checks": ("numba network kernels (fastnet/_numba/network.py)",
                                    "forward_network/backprop_* trust their array sizes: "
                                    "sizes [3, 3000000, 2] or short params read out of bounds"),
    "cross-val-cv": ("API layer (fastnet.model_selection.cross_val_score)",
                     "a bad cv (0, 1, more folds than samples) is reported as n_splits"),
    "accuracy-label-types": ("API layer (fastnet.network.accuracy)",
                             "labels of another type (str against int) compare unequal: "
                             "0 % instead of a TypeError"),
}
STATS = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    line = (f"fuzz: {STATS['tried']} cases tried on {len(ORDER)} backends ({STATS['runs']} runs): "
            f"{STATS['ok']} results, {STATS['clean error']} clean errors, {STATS['crash']} "
            f"crashes, {STATS['known']} known problems of other parts (of which "
            f"{STATS['known crashes']} crashes)")
    if tr is not None:
        tr.write_line(line)
    path = os.environ.get("FASTNET_FUZZ_REPORT")
    if path:
        with open(path, "w") as fh:
            json.dump(dict(STATS), fh, indent=1)


# ================================================================ judging one case
class Case:
    """What a case feeds its call: which arguments are damaged and how.

    ``budget``: how many arguments may still be damaged (half the cases get none, so that
    valid calls are compared with the reference as often as bad ones are refused)."""

    def __init__(self, budget=0):
        self.bad = {}        # argument -> damage that must be refused
        self.either = {}     # argument -> damage that may be refused (naming it) or accepted
        self.wild = False    # extreme magnitudes: divergence/overflow errors are fine
        self.budget = budget
        self.aliases = set()  # other words that name a damaged argument (scikit-learn's wording)

    def add(self, name, verdict, label):
        self.budget -= 1
        if verdict == "bad":
            self.bad[name] = label
        elif verdict == "either":
            self.either[name] = label
        elif verdict == "wild":
            self.wild = True
            self.either[name] = label

    def names(self):
        return set(self.bad) | set(self.either) | self.aliases

    def __repr__(self):
        return f"Case(bad={self.bad}, either={self.either}, wild={self.wild})"


def _is_numeric_overflow(exc):
    return isinstance(exc, (DivergenceError, FloatingPointError))


def run(fn):
    """``('ok', value)`` or ``('error', exc)`` for an allowed exception; others propagate."""
    try:
        return "ok", fn()
    except ALLOWED as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        assert message.strip(), f"{type(exc).__name__} without a message"
        return "error", exc


def _message(exc):
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def _kind(exc):
    return "divergence/overflow" if _is_numeric_overflow(exc) else type(exc).__name__


def _floats(x):
    """Every float array (or number) inside a result, flattened, for finiteness checks."""
    if isinstance(x, np.ndarray):
        return [x] if x.dtype.kind in "fc" else []
    if isinstance(x, float):
        return [np.array([x])]
    if isinstance(x, dict):
        return [a for v in x.values() for a in _floats(v)]
    if isinstance(x, (list, tuple)):
        return [a for v in x for a in _floats(v)]
    return []


def _compare(a, b, rtol, where="result"):
    """Recursive comparison of two results (arrays, numbers, lists, dicts, classes)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys differ"
        for k in a:
            if k != "seconds":
                _compare(a[k], b[k], rtol, f"{where}[{k!r}]")
        return
    if isinstance(a, (list, tuple)) and not all(isinstance(v, (int, float, np.number))
                                                 for v in a):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _compare(x, y, rtol, f"{where}[{i}]")
        return
    if isinstance(a, type) or isinstance(a, str) or a is None:
        assert a == b or getattr(a, "name", a) == getattr(b, "name", b), f"{where}: {a} != {b}"
        return
    x, y = np.asarray(a), np.asarray(b)
    assert x.shape == y.shape, f"{where}: shapes {x.shape} != {y.shape}"
    if x.dtype.kind in "iub" or x.dtype.kind in "UO":
        np.testing.assert_array_equal(x, y, err_msg=where)
        return
    scale = float(np.nanmax(np.abs(y))) if y.size and np.isfinite(y).any() else 1.0
    np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * max(scale, 1e-30), equal_nan=True,
                               err_msg=where)


def judge(call, case, *, rtol=None, compare=None, dtype=np.float64, category=None):
    """Run ``call()`` (which builds fresh arguments) on every backend and judge the outcomes.

    ``category``: a :data:`KNOWN` problem this case may hit; if it is known, a failed
    judgement is counted as "known" instead of failing the test."""
    STATS["tried"] += 1
    note(repr(case))
    outs = {}
    for b in ORDER:
        with fastnet.use_backend(b):
            outs[b] = run(call)
        STATS["runs"] += 1
    try:
        _judge(outs, case, rtol, compare, dtype, category)
    except AssertionError:
        if category in KNOWN:
            STATS["known"] += 1
            return
        raise


def _judge(outs, case, rtol, compare, dtype, category):
    rtol = rtol or (1e-8 if np.dtype(dtype) == np.float64 else 1e-4)
    ref_status, ref = outs["reference"]
    for b, (status, value) in outs.items():
        where = f"backend {b!r}, {case}"
        if status == "error":
            STATS["clean error"] += 1
            msg = _message(value)
            if case.bad or case.either:
                if not (_is_numeric_overflow(value) and (case.wild or not case.bad)):
                    assert any(n.lower() in msg.lower() for n in case.names()), \
                        f"{where}: the message does not name a damaged argument: {msg!r}"
            else:
                assert case.wild and _is_numeric_overflow(value), \
                    f"{where}: valid input refused: {type(value).__name__}: {msg}"
        else:
            STATS["ok"] += 1
            assert not case.bad, f"{where}: bad input accepted without an error"
            if not case.wild and not case.either:
                bad = [a for a in _floats(value) if not np.isfinite(a).all()]
                assert not bad, f"{where}: finite inputs gave a non-finite result"
        if b == "reference":
            continue
        if (status == "error") != (ref_status == "error"):
            either_one = value if status == "error" else ref
            assert case.wild and _is_numeric_overflow(either_one), \
                f"{where}: {status} here, {ref_status} on the reference ({ref!r} / {value!r})"
        elif status == "error":
            assert _kind(value) == _kind(ref) or (case.wild and {_kind(value), _kind(ref)} & {
                "divergence/overflow"}), f"{where}: {_kind(value)} here, {_kind(ref)} on the " \
                                         f"reference"
        elif not case.wild:
            (compare or _compare)(value, ref, rtol)


def new_case(draw):
    return Case(budget=draw(st.sampled_from([0, 0, 1, 1, 2])))


# ================================================================ strategies
TAME = st.floats(-2, 2, allow_nan=False, allow_subnormal=False, width=32)
DTYPES = st.sampled_from([np.float64, np.float32])

# damage -> verdict for an array argument: "ok" (must be accepted), "bad" (must be refused,
# naming the argument), "either" (accepted or refused naming it), "wild" (huge values)
ARRAY_DAMAGE = {"none": "ok", "list": "ok", "noncontig": "ok", "int": "ok", "nan": "bad",
                "inf": "bad", "empty": "bad", "3d": "bad", "str": "bad", "complex": "bad",
                "ragged": "bad", "None": "bad", "object": "bad", "1d": "either",
                "huge": "wild", "max": "wild"}
_ARRAY_KINDS = ["none"] * 8 + sorted(ARRAY_DAMAGE)


@st.composite
def matrix(draw, m, n, dtype, name, case, damage=True, kinds=None):
    """An (m, n) array of ``dtype`` with at most one damage, recorded in ``case``."""
    X = draw(hnp.arrays(dtype, (m, n), elements=TAME))
    kind = draw(st.sampled_from(kinds or _ARRAY_KINDS)) if damage and case.budget > 0 \
        else "none"
    verdict = ARRAY_DAMAGE[kind]
    if kind != "none":
        case.add(name, verdict, kind)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    i, j = rng.integers(m), rng.integers(n)
    if kind == "list":
        return X.tolist()
    if kind == "noncontig":
        return np.asfortranarray(X)
    if kind == "int":
        return np.rint(X).astype(np.int64)
    if kind in ("nan", "inf"):
        X[i, j] = np.nan if kind == "nan" else -np.inf
        return X
    if kind == "empty":
        return X[:0]
    if kind == "3d":
        return X[None]
    if kind == "str":
        return X.astype(str)
    if kind == "complex":
        return X.astype(np.complex128)
    if kind == "ragged":
        return [list(r) for r in X[:1]] + [[1.0] * (n + 1)]
    if kind == "None":
        return None
    if kind == "object":
        return np.array([[object()] * n] * m, dtype=object)
    if kind == "1d":
        return X[0]
    if kind == "huge":
        X[i, j] = draw(st.sampled_from([1e30, -1e30, 1e15]))
        return X
    if kind == "max":
        X[i] = np.finfo(dtype).max / draw(st.sampled_from([1, 2, 10]))
        return X
    return X


LABEL_DAMAGE = {"none": "ok", "list": "ok", "out_of_range": "bad", "negative": "bad",
                "fraction": "bad", "str": "bad", "short": "bad", "nan": "bad", "None": "bad",
                "2d": "either"}
_LABEL_KINDS = ["none"] * 8 + sorted(LABEL_DAMAGE)


@st.composite
def labels(draw, m, K, case, name="y", damage=True, values=False):
    """Integer labels 0..K-1 for m samples (every class present when m >= K).

    ``values``: ``y`` may also be target values (a single-output network), so numbers
    outside 0..K-1 may be accepted."""
    y = np.array(draw(st.permutations(list(range(m)))), dtype=np.int64) % K
    kind = draw(st.sampled_from(_LABEL_KINDS)) if damage and case.budget > 0 else "none"
    if kind != "none":
        verdict = LABEL_DAMAGE[kind]
        if values and kind in ("out_of_range", "negative", "fraction", "str"):
            verdict = "either"
        case.add(name, verdict, kind)
    if kind == "list":
        return y.tolist()
    if kind == "out_of_range":
        y[0] = K + draw(st.integers(0, 3))
    elif kind == "negative":
        y[0] = -1
    elif kind == "fraction":
        return y + 0.5
    elif kind == "str":
        return y.astype(str).astype(object)
    elif kind == "short":
        return y[:-1]
    elif kind == "nan":
        y = y.astype(float)
        y[0] = np.nan
    elif kind == "None":
        return None
    elif kind == "2d":
        return y[:, None]
    return y


def scalar(draw, name, case, good, bad=(), wild=()):
    """A hyper-parameter: one of ``good``, or a bad / wild value recorded in ``case``."""
    if case.budget <= 0:
        return draw(st.sampled_from(list(good)))
    choice = draw(st.sampled_from(list(good) * 3 + [("bad", v) for v in bad]
                                  + [("wild", v) for v in wild]))
    if isinstance(choice, tuple) and choice and choice[0] in ("bad", "wild"):
        case.add(name, choice[0], repr(choice[1]))
        return choice[1]
    return choice


ACTS = [fastnet.Sigmoid, fastnet.ReLu, fastnet.TanH, fastnet.Linear]


@st.composite
def network(draw, case, dtype, n_in=None, damage=True):
    """A course model list and its widths; damaged models recorded as ``model``."""
    n_in = draw(st.integers(1, 4)) if n_in is None else n_in
    hidden = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    out_act = draw(st.sampled_from([fastnet.Sigmoid, fastnet.Softmax, fastnet.Linear]))
    n_out = draw(st.integers(1, 3)) if out_act is not fastnet.Softmax else draw(
        st.integers(2, 3))
    sizes = [n_in] + hidden + [n_out]
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    model = []
    for l in range(len(sizes) - 1):
        model += [fastnet.init_weights(sizes[l], sizes[l + 1], rng=rng, dtype=dtype),
                  draw(st.sampled_from(ACTS)) if l < len(sizes) - 2 else out_act]
    kind = draw(st.sampled_from(["none"] * 10 + ["nan", "shape", "act", "odd", "tuple", "huge",
                                                 "softmax_hidden", "str"])) \
        if damage and case.budget > 0 else "none"
    if kind in ("nan", "huge"):
        model[0] = model[0].copy()
        model[0][0, -1] = np.nan if kind == "nan" else 1e30
    elif kind == "shape":
        model[0] = model[0][:, :-1] if model[0].shape[1] > 2 else np.ones((2, 5), dtype)
    elif kind == "act":
        model[1] = "swish"
    elif kind == "odd":
        model = model[:-1]
    elif kind == "tuple":
        model = tuple(model)
    elif kind == "softmax_hidden" and len(model) > 2:
        model[1] = fastnet.Softmax
    elif kind == "str":
        model[0] = "weights"
    else:
        kind = "none" if kind == "softmax_hidden" else kind
    if kind != "none":
        verdict = {"tuple": "either", "huge": "wild"}.get(kind, "bad")
        case.add("model" if kind not in ("shape",) else "model", verdict, kind)
    return model, sizes, out_act


def _copy(x):
    """A deep copy of arguments (arrays, lists of arrays and classes)."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, list):
        return [_copy(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_copy(v) for v in x)
    return x


def _loss_for(out_act, draw, case):
    if out_act is fastnet.Softmax:
        good = ["log_loss"]
    elif out_act is fastnet.Sigmoid:
        good = ["cross_entropy", "quadratic"]
    else:
        good = ["quadratic"]
    return scalar(draw, "loss", case, good, bad=["hinge", 3, None])


# ================================================================ the course's functions
@fuzz(60)
@given(st.data())
def test_course_network_functions(data):
    """forward, feedforward, predict, backprop, backprop_vectorized, accuracy, one_hot."""
    draw = data.draw
    case = new_case(draw)
    dtype = draw(DTYPES)
    fn = draw(st.sampled_from(["feedforward", "predict", "forward", "backprop",
                               "backprop_vectorized", "accuracy", "one_hot"]))
    model, sizes, out_act = draw(network(case, dtype, damage=fn not in ("forward", "accuracy",
                                                                         "one_hot")))
    m = draw(st.integers(1, 7))
    if fn not in ("accuracy", "one_hot"):
        X = draw(matrix(m, sizes[0], dtype, "X", case))
    if fn in ("feedforward", "predict"):
        judge(lambda: getattr(fastnet, fn)(_copy(model), _copy(X)), case, dtype=dtype,
              rtol=1e-10 if dtype == np.float64 else 1e-5,
              compare=None if fn == "feedforward" else _compare_labels(model, X))
    elif fn == "forward":
        theta = scalar(draw, "Theta", case, [model[0]], bad=["w", model[0][:, :1], np.ones(3),
                                                              model[0] * np.nan])
        active = scalar(draw, "active", case, [model[1]], bad=["swish", None, 3])
        judge(lambda: fastnet.forward(_copy(theta), _copy(X), active), case, dtype=dtype)
    elif fn == "accuracy":
        y = draw(labels(m, 3, case))
        for kind in ("fraction", "out_of_range", "negative", "nan", "2d"):   # compared as they are
            if case.bad.get("y") == kind:
                case.either["y"] = case.bad.pop("y")
        y2 = draw(labels(m, 3, Case(), damage=False))
        judge(lambda: fastnet.accuracy(_copy(y2), _copy(y)), case,
              category="accuracy-label-types" if case.bad.get("y") == "str" else None)
    elif fn == "one_hot":
        K = scalar(draw, "K", case, [1, 2, 5], bad=[0, -1, 2.5, "3"])
        pos = draw(labels(m, K if K in (1, 2, 5) else 2, case, name="pos"))
        judge(lambda: fastnet.one_hot(K, _copy(pos)), case)
    else:
        y = draw(labels(m, max(sizes[-1], 2), case, values=sizes[-1] == 1))
        loss = _loss_for(out_act, draw, case)
        lam = scalar(draw, "lam", case, [0.0, 0.1], bad=[-1.0, float("nan")])
        penalty = scalar(draw, "penalty", case, [None, "l1", "l2"], bad=["l3", 2])
        judge(lambda: getattr(fastnet, fn)(_copy(model), _copy(X), _copy(y), lam=lam,
                                           penalty=penalty, loss=loss), case, dtype=dtype,
              rtol=1e-9 if dtype == np.float64 else 1e-4, category="silent-nonfinite-cost")


def _compare_labels(model, X):
    """Labels agree wherever the reference's outputs are not (nearly) tied."""
    def compare(a, b, rtol):
        a, b = np.atleast_1d(a), np.atleast_1d(b)
        with fastnet.use_backend("reference"):
            out = np.atleast_2d(fastnet.feedforward(_copy(model), _copy(X)))
        if out.shape[1] == 1:
            margin = np.abs(out[:, 0] - 0.5)
        else:
            top = np.sort(out, axis=1)
            margin = top[:, -1] - top[:, -2]
        clear = margin > 1e-4 * max(1.0, float(np.abs(out).max()))
        np.testing.assert_array_equal(a[clear], b[clear])
    return compare


# ================================================================ training loops
LOOPS = ["train", "gradient_descent", "train_online", "train_minibatch", "train_momentum",
         "train_rmsprop"]


@fuzz(60)
@given(st.data())
def test_training_loops(data):
    """train and the course's named loops: weights and History equal the reference's."""
    draw = data.draw
    case = new_case(draw)
    dtype = draw(DTYPES)
    model, sizes, out_act = draw(network(case, dtype))
    m = draw(st.integers(1, 8))
    X = draw(matrix(m, sizes[0], dtype, "X", case))
    y = draw(labels(m, max(sizes[-1], 2), case, values=sizes[-1] == 1))
    fn = draw(st.sampled_from(LOOPS))
    kw = {"loss": _loss_for(out_act, draw, case), "rng": 0}
    kw["lr"] = scalar(draw, "lr", case, [0.01, 0.3], bad=[0.0, -0.1, float("nan"), "0.1"],
                      wild=[1e6, 1e12])
    epoch_key = "max_epochs" if fn == "gradient_descent" else "epochs"
    kw[epoch_key] = scalar(draw, epoch_key, case, [1, 2, 3], bad=[0, -1, 1.5, True])
    if fn in ("train", "train_minibatch", "train_momentum", "train_rmsprop"):
        kw["batch_size"] = scalar(draw, "batch_size", case, [1, 2, 50], bad=[0, -2, 2.5])
    if fn == "train":
        kw["optimizer"] = scalar(draw, "optimizer", case,
                                 ["gd", "sgd", "momentum", "rmsprop"],
                                 bad=["lbfgs", 1])
    if fn in ("train", "train_momentum"):
        kw["momentum"] = scalar(draw, "momentum", case, [0.0, 0.9], bad=[-0.5, 1.5,
                                                                        float("inf")])
    if draw(st.booleans()):
        kw["lam"] = scalar(draw, "lam", case, [0.0, 0.01], bad=[-1.0])
        kw["penalty"] = scalar(draw, "penalty", case, [None, "l2", "l1"], bad=["l0"])

    def call():
        mdl = _copy(model)
        hist = getattr(fastnet, fn)(mdl, _copy(X), _copy(y), **kw)
        return {"weights": [t for t in mdl[::2]] if isinstance(mdl, list) else None,
                "J": hist["J"], "epochs": hist["epochs"]}

    judge(call, case, dtype=dtype, category="silent-nonfinite-cost")


# ================================================================ estimators
EST = ["LinearRegression", "LogisticRegression", "Perceptron", "MLPClassifier", "MLPRegressor"]


@st.composite
def estimator(draw, case):
    name = draw(st.sampled_from(EST))
    p = {"max_epochs": scalar(draw, "max_epochs", case, [1, 3], bad=[0, -3, 2.5]),
         "random_state": 0}
    p["lr"] = scalar(draw, "lr", case, [0.05, 0.5], bad=[0.0, -1.0, float("nan")],
                     wild=[1e6])
    if name != "Perceptron":
        p["verbose"] = 0
        p["optimizer"] = scalar(draw, "optimizer", case, ["gd", "sgd", "momentum", "rmsprop"],
                                bad=["newton"])
        p["batch_size"] = scalar(draw, "batch_size", case, [None, 4], bad=[0, -1, 1.5])
        p["penalty"] = scalar(draw, "penalty", case, [None, "l2"], bad=["elastic"])
    if name.startswith("MLP"):
        p["hidden_layer_sizes"] = scalar(draw, "hidden_layer_sizes", case, [(3,), (2, 3)],
                                         bad=[(0,), (-2,), ("a",), (2.5,)])
        p["activation"] = scalar(draw, "activation", case, ["sigmoid", "relu", "tanh"],
                                 bad=["swish", ["relu"] * 5])
    if name == "LogisticRegression":
        p["output_activation"] = scalar(draw, "output_activation", case,
                                        ["sigmoid", "softmax"], bad=["linear"])
    return name, p


@fuzz(60)
@given(st.data())
def test_estimators(data):
    """fit, predict, predict_proba, score, partial_fit of every estimator."""
    draw = data.draw
    case = new_case(draw)
    name, params = draw(estimator(case))
    dtype = draw(DTYPES)
    m, n = draw(st.integers(2, 10)), draw(st.integers(1, 4))
    X = draw(matrix(m, n, dtype, "X", case))
    if case.bad.get("X") == "str":          # numeric strings: scikit-learn's estimators take them
        case.either["X"] = case.bad.pop("X")
    # scikit-learn's wording names the problem, not always the argument
    case.aliases = {"sample", "feature", "array", "label", "class", "target"}
    K = draw(st.integers(2, 3))
    regressor = name in ("LinearRegression", "MLPRegressor")
    if regressor:
        y = draw(hnp.arrays(np.float64, (m,), elements=TAME))
        if draw(st.integers(0, 5)) == 0:
            y[0] = np.nan
            case.add("y", "bad", "nan")
    else:
        y = draw(labels(m, K, case))
        if case.bad.get("y") in ("out_of_range", "negative", "fraction", "str"):
            case.either["y"] = case.bad.pop("y")   # any values are class labels to an estimator
        if draw(st.integers(0, 4)) == 0 and case.bad.get("y") is None:
            y = np.array(["cat", "dog", "emu"])[np.asarray(y) % K]     # string labels: valid
    method = draw(st.sampled_from(["predict", "predict_proba", "score", "partial_fit"]))
    X_new = draw(matrix(3, n, dtype, "X", case, damage=not case.bad))

    def call():
        est = getattr(fastnet, name)(**params)
        if method == "partial_fit":
            kw = {} if regressor else {"classes": np.unique(np.asarray(y, dtype=object)
                                                            .astype(str) if np.asarray(y).dtype.kind == "U" else y)}
            est.partial_fit(_copy(X), _copy(y), **kw)
            est.partial_fit(_copy(X), _copy(y))
        else:
            est.fit(_copy(X), _copy(y))
        out = {"predict": est.predict(_copy(X_new))}
        if method == "predict_proba" and hasattr(est, "predict_proba"):
            out["proba"] = est.predict_proba(_copy(X_new))
        if method == "score":
            out["score"] = est.score(_copy(X), _copy(y))
        out["weights"] = getattr(est, "params_", getattr(est, "W_", None))
        return out

    def compare(a, b, rtol):
        _compare({k: v for k, v in a.items() if k not in ("predict", "score")},
                 {k: v for k, v in b.items() if k not in ("predict", "score")}, rtol)
        if regressor:
            _compare(a["predict"], b["predict"], rtol)

    judge(call, case, dtype=dtype, compare=compare, category="silent-nonfinite-cost")


# ================================================================ linear models, perceptron
@fuzz(50)
@given(st.data())
def test_linear_models_and_perceptron(data):
    """linear/logistic regression by GD, their costs, gradients, predictions; the perceptron."""
    draw = data.draw
    case = new_case(draw)
    dtype = draw(DTYPES)
    m, n = draw(st.integers(1, 9)), draw(st.integers(1, 4))
    X = draw(matrix(m, n, dtype, "X", case))
    fn = draw(st.sampled_from(["linear_regression", "logistic_regression", "linear_cost",
                               "linear_gradient", "linear_predict", "logistic_cost",
                               "logistic_gradient", "logistic_predict", "perceptron.train",
                               "perceptron.predict"]))
    binary = fn.startswith(("logistic", "perceptron"))
    uses_y = not fn.endswith("predict")
    y = draw(labels(m, 2, case, damage=uses_y)) if binary else draw(
        matrix(1, m, np.float64, "y", case, damage=uses_y,
               kinds=["none"] * 6 + ["nan", "list", "empty"]))
    if isinstance(y, np.ndarray) and y.ndim == 2:
        y = y.reshape(-1)
    elif isinstance(y, list) and y and isinstance(y[0], list):
        y = y[0]
    theta = draw(hnp.arrays(dtype, (n + 1,), elements=TAME))
    theta = scalar(draw, "theta" if not fn.startswith("perceptron") else "weights", case,
                   [theta], bad=[theta[:-1], theta * np.nan, "w"])
    if fn in ("linear_regression", "logistic_regression"):
        lr = scalar(draw, "lr", case, [0.01, 0.1], bad=[0.0, -1.0, float("inf")], wild=[1e8])
        it = scalar(draw, "max_iter", case, [1, 5, 50], bad=[0, -1, 2.5])
        tol = scalar(draw, "tol", case, [1e-9, 0.0], bad=[-1.0, float("nan")])
        call = lambda: getattr(fastnet, fn)(_copy(X), _copy(y), lr=lr, tol=tol, max_iter=it,  # noqa: E731
                                            theta=_copy(theta))
    elif fn == "perceptron.train":
        epochs = scalar(draw, "epochs", case, [1, 3], bad=[0, 1.5])
        lr = scalar(draw, "lr", case, [1.0, 0.1], bad=[0.0, -1.0])
        call = lambda: fastnet.perceptron.train(_copy(theta), _copy(X), _copy(y),  # noqa: E731
                                                epochs=epochs, lr=lr)
    elif fn == "perceptron.predict":
        call = lambda: fastnet.perceptron.predict(_copy(theta), _copy(X))  # noqa: E731
        case.aliases.add("inputs")            # its argument's name
    elif fn.endswith("predict"):
        call = lambda: getattr(fastnet, fn)(_copy(theta), _copy(X))  # noqa: E731
    else:
        call = lambda: getattr(fastnet, fn)(_copy(theta), _copy(X), _copy(y))  # noqa: E731
    if fn.startswith("perceptron") and case.bad.get("theta"):
        case.bad["weights"] = case.bad.pop("theta")
    judge(call, case, dtype=dtype, category="linear-ragged-X" if case.bad.get("X") == "ragged"
          and not fn.startswith("perceptron") else None)


# ================================================================ preprocessing
@fuzz(40)
@given(st.data())
def test_preprocessing(data):
    """rescale, standardize, normalize and their classes, with float32 and float64 near their
    largest values: a result equal to the reference or a clear FloatingPointError."""
    draw = data.draw
    case = new_case(draw)
    dtype = draw(DTYPES)
    fn = draw(st.sampled_from(["rescale", "standardize", "normalize"]))
    use_class = draw(st.booleans())
    m, n = draw(st.integers(1, 8)), draw(st.integers(1, 4))
    X = draw(matrix(m, n, dtype, "X" if use_class else "X_train", case))
    scale = draw(st.sampled_from([1.0, 1.0, 1e30, 1e37, float(np.finfo(dtype).max) / 4]))
    if isinstance(X, np.ndarray) and X.dtype.kind == "f" and not case.wild:
        X = (X * dtype(scale)).astype(dtype)
        case.wild = scale > 1
    X_test = None
    if not use_class and draw(st.booleans()):
        X_test = draw(matrix(draw(st.integers(1, 4)), n, dtype, "X_test", case))
    cls = {"rescale": fastnet.Rescaler, "standardize": fastnet.Standardizer,
           "normalize": fastnet.Normalizer}[fn]

    def call():
        if use_class:
            sc = cls().fit(_copy(X))
            out = sc.transform(_copy(X))
            return [out, sc.inverse_transform(out)]
        return getattr(fastnet, fn)(_copy(X), _copy(X_test))

    judge(call, case, dtype=dtype, rtol=1e-12 if dtype == np.float64 else 1e-6)
    if case.wild and not case.bad and not case.either:   # extreme but valid: finite, or FPE
        status, value = run(call)
        assert status == "ok" and all(np.isfinite(a).all() for a in _floats(value)) or \
            isinstance(value, FloatingPointError), f"{case}: {value!r}"


# ================================================================ model selection
@fuzz(30)
@given(st.data())
def test_model_selection(data):
    """train_test_split, KFold and cross_val_score (with an estimator and with a function)."""
    draw = data.draw
    case = new_case(draw)
    m = draw(st.integers(2, 12))
    X = draw(matrix(m, 2, np.float64, "X", case, kinds=["none"] * 6 + ["list", "empty",
                                                                      "None", "1d"]))
    fn = draw(st.sampled_from(["split", "kfold", "cv_estimator", "cv_function"]))
    y = draw(labels(m, 2, case, values=True, damage=fn != "kfold"))
    if fn == "split" and case.bad.get("y") not in (None, "short"):
        case.either["y"] = case.bad.pop("y")  # y is optional in train_test_split, and only split
    if fn == "split":
        size = scalar(draw, "test_size", case, [0.25, 0.5, 1], bad=[0.0, 1.0, -1, m, "a",
                                                                   float("nan")])
        n_test = size if isinstance(size, int) else math.ceil(size * m) if isinstance(
            size, float) and math.isfinite(size) else 0
        if "test_size" not in case.bad and not 1 <= n_test <= m - 1:
            case.add("test_size", "either", f"{size!r} of {m} samples")
        call = lambda: fastnet.train_test_split(_copy(X), _copy(y), test_size=size, rng=0)  # noqa: E731
    elif fn == "kfold":
        k = scalar(draw, "n_splits", case, [2, 3], bad=[0, 1, -2, 2.5, "3"])
        if isinstance(k, int) and k > m:
            case.add("n_splits", "either", "more folds than samples")
        call = lambda: [tuple(f) for f in fastnet.KFold(k, shuffle=True, rng=0).split(  # noqa: E731
            _copy(X))]
    else:
        cv = scalar(draw, "cv", case, [2, 3], bad=[0, 1, -1, "x"])
        if isinstance(cv, int) and cv > m:
            case.add("cv", "either", "more folds than samples")
        if fn == "cv_function":
            model = lambda Xtr, ytr, Xte, yte: float(np.mean(Xte))  # noqa: E731
        else:
            model = fastnet.LogisticRegression(max_epochs=2, verbose=0)
            case.either.setdefault("y", "a fold may hold one class")
        call = lambda: fastnet.cross_val_score(model, _copy(X), _copy(y), cv=cv, rng=0)  # noqa: E731
    judge(call, case, category="cross-val-cv" if fn.startswith("cv") and (
        "cv" in case.bad or "cv" in case.either) else None)


# ================================================================ word2vec
@st.composite
def corpus(draw, case):
    vocab = [f"w{i}" for i in range(draw(st.integers(1, 10)))]
    sents = [[vocab[j] for j in draw(st.lists(st.integers(0, len(vocab) - 1),
                                              min_size=int(i == 0), max_size=10))]
             for i in range(draw(st.integers(1, 12)))]
    kind = draw(st.sampled_from(["none"] * 8 + ["tuples", "generator", "str", "ints", "empty",
                                                "nested", "bytes"])) if case.budget > 0 \
        else "none"
    if kind == "tuples":
        sents = tuple(tuple(x) for x in sents)
    elif kind == "str":
        sents[0] = " ".join(sents[0]) or "w0"
    elif kind == "ints":
        sents[0] = [1, 2, 3]
    elif kind == "empty":
        sents = []
    elif kind == "nested":
        sents[0] = [["w0"]]
    elif kind == "bytes":
        sents[0] = [b"w0"]
    if kind not in ("none", "tuples", "generator"):
        case.add("sentences", "bad", kind)
    elif not any(len(x) for x in sents):
        case.add("sentences", "bad", "no word")
    return sents, kind == "generator"


@fuzz(40)
@given(st.data())
def test_word2vec(data):
    """Word2Vec on random corpora and hyper-parameters (workers=1, exact sigmoid: the same
    vectors as the reference), then queries of its vectors with good and bad keys."""
    draw = data.draw
    case = new_case(draw)
    sents, as_generator = draw(corpus(case))
    p = {"workers": 1, "exact_sigmoid": True, "seed": draw(st.integers(0, 5)),
         "shuffle_jobs": draw(st.booleans())}
    for name, good, bad in [("vector_size", [2, 5], [0, -1, 2.5]), ("window", [1, 3], [0, "2"]),
                            ("negative", [1, 3], [0, -1]), ("sample", [0.0, 1e-3, 0.5], [-1.0]),
                            ("sg", [0, 1], [2]), ("cbow_mean", [0, 1], [5]),
                            ("epochs", [1, 2], [0, 1.5]), ("hs", [0], [1]),
                            ("batch_words", [3, 10000], [0]),
                            ("ns_exponent", [0.75, 0.0, -0.5], [float("nan")]),
                            ("max_final_vocab", [None, 3], [0]), ("null_word", [0, 1], [2])]:
        p[name] = scalar(draw, name, case, good, bad=bad)
    p["alpha"] = scalar(draw, "alpha", case, [0.025, 0.3], bad=[0.0, -1.0, float("nan")],
                        wild=[1e6, 1e30])
    p["min_count"] = scalar(draw, "min_count", case, [1, 1, 2], bad=[-1, "5"])
    if p["min_count"] == 2:
        case.either.setdefault("min_count", "may leave no word")
    query = draw(st.sampled_from(["similar", "vector", "doesnt_match", "similarity", "topn"]
                                 + ["unknown", "wrong_vector", "nan_vector"] * (case.budget > 0)))
    if query == "unknown":
        case.add("atlantis", "bad", "unknown word")
    elif query in ("wrong_vector", "nan_vector"):
        case.add("query vector", "bad", query)
    topn = scalar(draw, "topn", case, [1, 3, None], bad=["3", 2.5]) if query == "topn" else 2

    def call():
        corpus_arg = (s for s in _copy(sents)) if as_generator else _copy(sents)
        m = fastnet.Word2Vec(corpus_arg, **p)
        wv, first = m.wv, m.wv.index_to_key[0]
        d = wv.vector_size
        q = {"similar": lambda: wv.most_similar(first, topn=2),
             "topn": lambda: wv.most_similar(positive=[first], topn=topn),
             "vector": lambda: wv.similar_by_vector(wv[first] + 1, topn=3),
             "unknown": lambda: wv.most_similar(positive=[first, "atlantis"]),
             "doesnt_match": lambda: wv.doesnt_match(wv.index_to_key[:3]),
             "similarity": lambda: wv.similarity(first, wv.index_to_key[-1]),
             "wrong_vector": lambda: wv.most_similar(positive=[np.ones(d + 1)]),
             "nan_vector": lambda: wv.most_similar(positive=[np.full(d, np.nan)])}[query]
        return {"vectors": wv.vectors, "syn1neg": m.syn1neg, "query": q(),
                "words": list(wv.index_to_key)}

    def compare(a, b, rtol):
        _compare({k: a[k] for k in ("vectors", "syn1neg", "words")},
                 {k: b[k] for k in ("vectors", "syn1neg", "words")}, rtol)

    judge(call, case, dtype=np.float32, rtol=1e-4, compare=compare)


# ================================================================ subprocess cases
class Worker:
    """``tests/fuzz_worker.py BACKEND`` in a subprocess; restarted after a crash."""

    TIMEOUT = 180

    def __init__(self, backend):
        self.backend = backend
        self._start()

    def _start(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
            PYTHONFAULTHANDLER="1")
        self.proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "fuzz_worker.py"),
                                      self.backend], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env, cwd=str(REPO))
        self.lines = queue.Queue()
        self.stderr = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self._keep_err),
                         daemon=True).start()

    @staticmethod
    def _pump(stream, put):
        for line in stream:
            put(line)
        put(None)

    def _keep_err(self, line):
        if line is not None:
            self.stderr = (self.stderr + [line])[-40:]

    def run(self, case):
        try:
            self.proc.stdin.write(json.dumps(case) + "\n")
            self.proc.stdin.flush()
            line = self.lines.get(timeout=self.TIMEOUT)
        except queue.Empty:
            self.proc.kill()
            line = "hang"
        except (BrokenPipeError, OSError):
            line = None
        if line is None or line == "hang":
            rc = self.proc.wait()
            reply = {"status": "crash" if line is None else "hang", "returncode": rc,
                     "stderr": "".join(self.stderr)[-3000:]}
            self._start()
            return reply
        return json.loads(line)

    def __repr__(self):
        return f"<worker {self.backend}>"

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def workers():
    pool = {b: Worker(b) for b in ORDER}
    yield pool
    for w in pool.values():
        w.close()


def _decode(x):
    if isinstance(x, dict) and "__array__" in x:
        return np.asarray(x["__array__"], dtype=np.dtype(x["dtype"]))
    if isinstance(x, dict):
        return {k: _decode(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_decode(v) for v in x]
    return x


def judge_sub(workers, job, *, path=None, backends=None, rtol=1e-4, category=None,
              compare=True, must_fail=False):
    """Run ``job`` in the worker of every backend: no crash, no hang, allowed errors only
    (naming ``path`` when raised while loading it), the same outcome everywhere."""
    STATS["tried"] += 1
    note(json.dumps(job)[:500])
    replies = {}
    for b in backends or ORDER:
        replies[b] = workers[b].run(job)
        STATS["runs"] += 1
    try:
        _judge_sub(replies, job, path, rtol, compare, must_fail)
    except AssertionError as exc:
        if category in KNOWN:
            STATS["known"] += 1
            STATS["known crashes"] += isinstance(exc, _Crash)
            return replies
        STATS["crash"] += isinstance(exc, _Crash)
        raise
    return replies


class _Crash(AssertionError):
    """A worker died (a signal) or hung."""


def _judge_sub(replies, job, path, rtol, compare, must_fail):
    first = None
    for b, r in replies.items():
        where = f"backend {b!r}, {job['action']}"
        if r["status"] in ("crash", "hang"):
            raise _Crash(f"{where}: the worker {r['status']}ed (exit code "
                                 f"{r['returncode']}) on {json.dumps(job)[:400]}\n{r['stderr']}")
        if r["status"] == "error":
            STATS["clean error"] += 1
            assert ALLOWED_NAMES & set(r["mro"]), \
                f"{where}: {r['type']}: {r['message']}\n{r['traceback']}"
            assert r["message"].strip(), f"{where}: {r['type']} without a message"
            if path is not None and r["stage"] == "load":
                assert path in r["message"], f"{where}: the error does not name the file: " \
                                             f"{r['type']}: {r['message']}"
        else:
            STATS["ok"] += 1
            assert not must_fail, f"{where}: accepted: {str(r['result'])[:300]}"
            if job["action"] == "cli":
                res = r["result"]
                assert res["code"] in (0, 1, 2), f"{where}: exit code {res['code']}"
                if res["exc_type"] is not None:
                    assert (ALLOWED_NAMES | {"FileNotFoundError", "IsADirectoryError",
                                             "NotADirectoryError", "CommandError",
                                             "BackendUnavailableError", "PermissionError"}) \
                        & set(res["exc_mro"]), f"{where}: {res['exc_type']}: {res['stderr']}"
        if first is None:
            first = (b, r)
            continue
        b0, r0 = first
        assert r["status"] == r0["status"], \
            f"{where}: {r['status']} here, {r0['status']} on {b0!r}: {r.get('message')} / " \
            f"{r0.get('message')}"
        if r["status"] == "error":
            assert r["type"] == r0["type"] or {r["type"], r0["type"]} <= {
                "DivergenceError", "FloatingPointError"}, \
                f"{where}: {r['type']} here, {r0['type']} on {b0!r}"
        elif job["action"] == "cli":
            assert r["result"]["code"] == r0["result"]["code"], \
                f"{where}: exit code {r['result']['code']} here, {r0['result']['code']} on " \
                f"{b0!r}: {r['result']['stderr']} / {r0['result']['stderr']}"
        elif compare:
            a, b_ = _decode(r["result"]), _decode(r0["result"])
            if all(np.isfinite(x).all() and np.abs(x).max(initial=0) < 1e6 for x in _floats(b_)):
                _compare(a, b_, rtol)


# ---------------------------------------------------------------- the files to damage
@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Valid files of every kind fastnet reads (bytes), and what their use needs."""
    d = tmp_path_factory.mktemp("originals")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    y = np.array(["a", "b", "c"] * 4)
    files = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fastnet.use_backend("reference"):
            for name, est, target in [
                    ("mlp", fastnet.MLPClassifier((4,), max_epochs=2, random_state=0), y),
                    ("logreg", fastnet.LogisticRegression(max_epochs=2, verbose=0), y),
                    ("logreg2", fastnet.LogisticRegression(max_epochs=2, verbose=0), y != "a"),
                    ("perceptron", fastnet.Perceptron(max_epochs=2), y),
                    ("mlpreg", fastnet.MLPRegressor((3,), max_epochs=2, random_state=0),
                     X[:, 0]),
                    ("linreg", fastnet.LinearRegression(max_epochs=2, verbose=0), X[:, 1])]:
                est.fit(X, target)
                est.save(d / name)
            model = [fastnet.init_weights(3, 4, rng=rng), fastnet.Sigmoid,
                     fastnet.init_weights(4, 2, rng=rng), fastnet.Softmax]
            fastnet.save(model, d / "list")
            sents = [[f"w{j}" for j in rng.integers(0, 8, 6)] for _ in range(30)]
            w2v = fastnet.Word2Vec(sents, vector_size=4, min_count=1, epochs=1, workers=1)
            w2v.save(str(d / "w2v"))
            w2v.wv.save(str(d / "kv"))
            w2v.wv.save_word2vec_format(str(d / "vec.txt"))
            w2v.wv.save_word2vec_format(str(d / "vec.bin"), binary=True)
    for name in ("mlp", "logreg", "logreg2", "perceptron", "mlpreg", "linreg", "list", "w2v",
                 "kv", "vec.txt", "vec.bin"):
        files[name] = (d / name).read_bytes()
    import struct
    imgs = rng.integers(0, 256, (20, 4, 4)).astype(np.uint8)
    files["idx-images"] = struct.pack(">IIII", 2051, 20, 4, 4) + imgs.tobytes()
    files["idx-labels"] = struct.pack(">II", 2049, 20) + bytes(range(10)) * 2
    files["corpus"] = "\n".join(" ".join(s) for s in sents).encode() + b"\n"
    return _Quiet({"files": files, "X": X, "y": y, "sents": sents})


class _Quiet(dict):
    """A dict that hypothesis reports as ``<files>`` (not megabytes of bytes)."""

    def __repr__(self):
        return "<files>"


NPZ_KINDS = ["mlp", "logreg", "logreg2", "perceptron", "mlpreg", "linreg", "list", "w2v", "kv"]
JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                        st.sampled_from([10**12, -1, 2**31, 2**63 - 1, 1e308, -0.5, 99]),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                        st.lists(st.integers(-2, 5), max_size=4))


def _paths(obj, prefix=()):
    """Every path (tuple of keys/indices) inside a JSON object."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:6]):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    if path:
        if isinstance(obj, list) and value is _DROP:
            del obj[path[-1]]
        elif value is _DROP:
            obj.pop(path[-1], None)
        else:
            obj[path[-1]] = value


_DROP = object()


@st.composite
def damaged_npz(draw, data):
    """A damaged (or intact) fastnet npz file: truncated, bit-flipped, or re-saved with edited
    metadata or arrays (valid checksums: the damage reaches the loader's checks)."""
    import io
    how = draw(st.sampled_from(["none", "truncate", "flip", "meta", "meta", "meta", "array",
                                "array", "drop", "add"]))
    if how == "none":
        return data, how
    if how == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))], how
    if how == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            out[draw(st.integers(0, len(out) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(out), how
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        content = {k: z[k] for k in z.files}
    meta_key = "__fastnet__" if "__fastnet__" in content else "__meta__"
    names = sorted(k for k in content if k != meta_key)
    if how == "meta":
        meta = json.loads(str(content[meta_key][()]))
        path = draw(st.sampled_from(list(_paths(meta))[1:]))
        value = draw(st.one_of(JSON_VALUES, st.just(_DROP)))
        _set(meta, path, value)
        content[meta_key] = np.array(json.dumps(meta))
        how = f"meta {path} = {value if value is not _DROP else 'dropped'!r}"
    elif how == "array":
        name = draw(st.sampled_from(names))
        a = content[name]
        op = draw(st.sampled_from(["short", "long", "nan", "huge", "int", "str", "2d", "empty",
                                   "complex", "f16"]))
        flat = a.reshape(-1)
        if a.dtype.kind not in "fiub" and op in ("nan", "huge", "int", "complex", "f16"):
            op = "short"
        content[name] = {"short": lambda: a[:-1] if a.ndim else a, "long": lambda: np.concatenate(
            [flat, flat[:1]]) if a.ndim else a, "nan": lambda: np.where(
            np.arange(flat.size) == 0, np.nan, flat.astype(float)).reshape(a.shape),
            "huge": lambda: (flat.astype(float) * 1e30).reshape(a.shape),
            "int": lambda: a.astype(np.int64) if a.dtype.kind in "fiub" else a,
            "str": lambda: a.astype(str), "2d": lambda: a.reshape(1, -1),
            "empty": lambda: a.reshape(-1)[:0], "complex": lambda: a.astype(complex)
            if a.dtype.kind in "fiu" else a,
            "f16": lambda: a.astype(np.float16) if a.dtype.kind == "f" else a}[op]()
        how = f"array {name} {op}"
    elif how == "drop":
        name = draw(st.sampled_from(names + [meta_key]))
        del content[name]
        how = f"drop {name}"
    else:
        content["extra"] = np.arange(3)
    buf = io.BytesIO()
    np.savez(buf, **content)
    return buf.getvalue(), how


@fuzz(80)
@given(data=st.data())
def test_damaged_model_and_vector_files(workers, originals, tmp_path_factory, data):
    """fastnet.load, Word2Vec.load, KeyedVectors.load on damaged files, then using what they
    return (predict, partial_fit, train, most_similar) in a subprocess per backend."""
    kind = data.draw(st.sampled_from(NPZ_KINDS))
    content, how = data.draw(damaged_npz(originals["files"][kind]))
    path = str(tmp_path_factory.mktemp("damaged") / f"{kind}.npz")
    with open(path, "wb") as fh:
        fh.write(content)
    X = originals["X"][:5]
    if kind == "w2v":
        job = {"action": "w2v_file", "path": path, "corpus": originals["sents"][:10]}
    elif kind == "kv":
        job = {"action": "kv_file", "path": path}
    else:
        job = {"action": "model_file", "path": path, "X": X.tolist(), "y": ["a"] * 5}
    judge_sub(workers, job, path=path, category="silent-nonfinite-output")


@st.composite
def damaged_text(draw, data, binary):
    how = draw(st.sampled_from(["none", "truncate", "flip", "header", "number", "line"]))
    out = bytearray(data)
    if how == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))], how
    if how == "flip":
        for _ in range(draw(st.integers(1, 3))):
            out[draw(st.integers(0, len(out) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(out), how
    nl = data.index(b"\n")
    if how == "header":
        n = draw(st.sampled_from([0, 1, 3, 7, 8, 9, -1, 10**11, 2**40, "x", "1e11"]))
        d = draw(st.sampled_from([0, 1, 4, 5, -4, 10**6, 10**12, "y"]))
        return f"{n} {d}".encode() + data[nl:], f"header {n} {d}"
    if how == "number" and not binary:
        lines = data.split(b"\n")
        i = draw(st.integers(1, len(lines) - 2))
        parts = lines[i].split(b" ")
        j = draw(st.integers(1, len(parts) - 1))
        parts[j] = draw(st.sampled_from([b"nan", b"inf", b"-inf", b"1e39", b"1e400", b"abc",
                                         b"", b"0x1p3"]))
        lines[i] = b" ".join(parts)
        return b"\n".join(lines), f"number line {i}: {parts[j]!r}"
    lines = data.split(b"\n")
    if binary:
        k = draw(st.integers(nl + 1, len(data) - 1))
        return data[:k] + draw(st.binary(min_size=1, max_size=8)) + data[k:], "insert"
    i = draw(st.integers(1, len(lines) - 2))
    return b"\n".join(lines[:i] + lines[i + 1:] if draw(st.booleans()) else
                      lines[:i] + [lines[i]] * 2 + lines[i + 1:]), f"line {i}"


@fuzz(50)
@given(data=st.data())
def test_damaged_word2vec_c_format_files(workers, originals, tmp_path_factory, data):
    """load_word2vec_format (text and binary, plain or gzip) on damaged files."""
    binary = data.draw(st.booleans())
    content, how = data.draw(damaged_text(originals["files"]["vec.bin" if binary else "vec.txt"],
                                          binary))
    if data.draw(st.booleans()):
        content = gzip.compress(content)
        if data.draw(st.booleans()):
            cut = bytearray(content)
            cut[data.draw(st.integers(10, len(cut) - 1))] ^= 0xFF
            content = bytes(cut)
            how += ", gzip flipped"
    path = str(tmp_path_factory.mktemp("vec") / ("vectors.bin" if binary else "vectors.txt"))
    with open(path, "wb") as fh:
        fh.write(content)
    judge_sub(workers, {"action": "c_format", "path": path, "binary": binary}, path=path)


@fuzz(40)
@given(data=st.data())
def test_damaged_idx_and_corpus_files(workers, originals, tmp_path_factory, data):
    """load_mnist on damaged IDX files (gzip or plain) and Word2Vec(corpus_file=) on damaged
    corpora (gzip, bzip2, invalid UTF-8)."""
    import bz2
    import struct
    d = tmp_path_factory.mktemp("idx")
    files = originals["files"]
    what = data.draw(st.sampled_from(["images", "labels", "corpus"]))
    raw = files["corpus" if what == "corpus" else f"idx-{what}"]
    how = data.draw(st.sampled_from(["none", "truncate", "flip", "header", "bytes"]))
    if how == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        b = bytearray(raw)
        b[data.draw(st.integers(0, len(b) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        raw = bytes(b)
    elif how == "header" and what != "corpus":
        fields = list(struct.unpack(">IIII" if what == "images" else ">II",
                                    raw[:16 if what == "images" else 8]))
        fields[data.draw(st.integers(0, len(fields) - 1))] = data.draw(st.sampled_from(
            [0, 1, 2049, 2051, 2**32 - 1, 2**31, 60000]))
        head = struct.pack(">" + "I" * len(fields), *fields)
        raw = head + raw[len(head):]
    elif how == "bytes":
        raw = raw + data.draw(st.binary(min_size=1, max_size=6))
    pack = data.draw(st.sampled_from(["plain", "gzip", "bz2"]))
    packed = {"plain": lambda r: r, "gzip": gzip.compress, "bz2": bz2.compress}[pack](raw)
    if pack != "plain" and data.draw(st.booleans()):
        b = bytearray(packed)
        b[data.draw(st.integers(0, len(b) - 1))] ^= 0x5A
        packed = bytes(b)
    path = str(d / f"{what}.{pack}")
    with open(path, "wb") as fh:
        fh.write(packed)
    if what == "corpus":
        job = {"action": "corpus_file", "path": path}
    else:
        other = str(d / "other")
        with open(other, "wb") as fh:
            fh.write(files["idx-labels" if what == "images" else "idx-images"])
        job = {"action": "mnist", "images": path if what == "images" else other,
               "labels": path if what == "labels" else other}
    replies = judge_sub(workers, job, path=path)
    r = replies["reference"]
    if r["status"] == "error" and r["stage"] == "load" and what != "corpus":
        assert path in r["message"] or other in r["message"]


# ---------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, originals):
    """Inputs of the command line: a CSV, an npz (X, y), IDX files, a corpus, a trained model
    and vectors, and a damaged copy of each."""
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    species = np.array(["setosa", "versicolor", "virginica"])[rng.integers(0, 3, 30)]
    rows = ["a,b,c,species"] + [f"{r[0]:.3f},{r[1]:.3f},{r[2]:.3f},{s}" for r, s in
                                zip(X, species)]
    (d / "data.csv").write_text("\n".join(rows) + "\n")
    np.savez(d / "data.npz", X=X, y=rng.integers(0, 2, 30))
    (d / "t-images-idx3-ubyte").write_bytes(originals["files"]["idx-images"])
    (d / "t-labels-idx1-ubyte").write_bytes(originals["files"]["idx-labels"])
    (d / "corpus.txt").write_bytes(originals["files"]["corpus"] * 3)
    (d / "vectors.txt").write_bytes(originals["files"]["vec.txt"])
    (d / "vectors.bin").write_bytes(originals["files"]["vec.bin"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fastnet.use_backend("reference"):
            fastnet.MLPClassifier((3,), max_epochs=2, random_state=0, verbose=0).fit(
                X, species).save(d / "model.npz")
    for name in ("data.csv", "data.npz", "t-images-idx3-ubyte", "corpus.txt", "vectors.txt",
                 "vectors.bin", "model.npz"):
        raw = bytearray((d / name).read_bytes())
        raw[len(raw) // 2] ^= 0x20
        (d / ("bad-" + name)).write_bytes(bytes(raw[: max(1, int(len(raw) * 0.9))]))
    (d / "empty.csv").write_text("")
    (d / "text.csv").write_text("a,b\nx,y\nz,w\n")
    return _Quiet({"dir": d, "out": tmp_path_factory.mktemp("cli-out")})


def _opt(draw, flag, good, bad=()):
    v = draw(st.sampled_from(list(good) * 2 + list(bad)))
    return [] if v is None else [flag] + ([str(v)] if v is not True else [])


@st.composite
def cli_argv(draw, files):
    d, out = files["dir"], files["out"]
    cmd = draw(st.sampled_from(["train", "train", "evaluate", "word2vec", "similar", "analogy"]))
    bad = draw(st.sampled_from(["", "", "bad-"]))
    f = lambda name: str(d / (bad + name))  # noqa: E731
    if cmd == "train":
        data = draw(st.sampled_from([[f("data.csv")], [f("data.npz")],
                                     [f("t-images-idx3-ubyte"), str(d / "t-labels-idx1-ubyte")],
                                     [str(d / "empty.csv")], [str(d / "text.csv")],
                                     [str(d / "missing.csv")]]))
        argv = ["train"] + data + ["--quiet", "--epochs",
                                   draw(st.sampled_from(["1", "2", "0", "-1", "x"]))]
        argv += _opt(draw, "--hidden", [None, 3, 0], ["-2", "a"])
        argv += _opt(draw, "--activation", [None, "relu", "tanh"], ["swish", "relu,relu,relu"])
        argv += _opt(draw, "--output", [None, "softmax"], ["linear"])
        argv += _opt(draw, "--lr", [None, 0.1, 1e6], [0, -1, "nan", "inf"])
        argv += _opt(draw, "--batch-size", [None, 4, 1000], [0, -3])
        argv += _opt(draw, "--optimizer", [None, "gd", "momentum", "rmsprop"], ["adamw"])
        argv += _opt(draw, "--l2", [None, 0.01], [-1, "nan"])
        argv += _opt(draw, "--tol", [None, 0.0], ["nan"])
        argv += _opt(draw, "--scale", [None, "standardize", "255"], ["log"])
        argv += _opt(draw, "--test-fraction", [None, 0.3, 0], [1, -0.5, 2])
        argv += _opt(draw, "--dtype", [None, "float64"], ["float16"])
        argv += _opt(draw, "--label-column", [None, "species", "0"], ["nope", "99"])
        argv += _opt(draw, "--out", [None, str(out / "m.npz")], [str(out / "no" / "m.npz")])
    elif cmd == "evaluate":
        argv = ["evaluate", draw(st.sampled_from([f("model.npz"), str(d / "data.npz"),
                                                  str(d / "corpus.txt")])),
                draw(st.sampled_from([f("data.csv"), str(d / "data.npz"), str(d / "text.csv")]))]
    elif cmd == "word2vec":
        argv = ["word2vec", draw(st.sampled_from([f("corpus.txt"), str(d / "empty.csv"),
                                                  str(d / "missing.txt")])),
                "--out", str(out / draw(st.sampled_from(["v.bin", "v.txt"]))), "--workers", "1"]
        argv += _opt(draw, "--size", [None, 4], [0, "x"])
        argv += _opt(draw, "--min-count", [None, 1, 100], [0])
        argv += _opt(draw, "--alpha", [None, 0.05, 1000.0], [0, "nan"])
        argv += _opt(draw, "--epochs", [None, 1], [0])
        argv += _opt(draw, "--sample", [None, 0.0], [-1, "nan"])
        argv += _opt(draw, "--window", [None, 2], [0])
        argv += ["--sg"] if draw(st.booleans()) else []
    else:
        vec = draw(st.sampled_from([f("vectors.txt"), f("vectors.bin"), str(d / "corpus.txt"),
                                    str(d / "missing.bin")]))
        words = draw(st.lists(st.sampled_from(["w0", "w1", "w2", "w3", "zzz", ""]),
                              min_size=3, max_size=3))
        argv = [cmd] + (words[:1] if cmd == "similar" else words) + ["--vectors", vec]
        argv += _opt(draw, "--topn", [None, 2], [0, -1, "x"])
        argv += _opt(draw, "--text", [None, True], [])
    return argv


@fuzz(40)
@given(data=st.data())
def test_command_line(workers, cli_files, data):
    """fastnet train / evaluate / word2vec / similar / analogy with random options and damaged
    files: exit code 0, 1 or 2, a one-line error of an allowed type, the same on every backend
    (``fastnet word2vec --alpha 1000 --backend cython`` segfaulted)."""
    argv = data.draw(cli_argv(cli_files))
    replies = judge_sub(workers, {"action": "cli", "argv": argv})
    for b, r in replies.items():
        res = r["result"]
        if res["code"] != 0:
            assert res["stderr"].strip() and "Traceback" not in res["stderr"], \
                f"{b}: {argv}: {res['stderr']}"


# ---------------------------------------------------------------- the kernels, called directly
def _enc(a):
    return {"__array__": a.tolist(), "dtype": a.dtype.str} if isinstance(a, np.ndarray) else a


@st.composite
def w2v_kernel_args(draw):
    from fastnet.reference import word2vec_kernels as R
    rng = np.random.default_rng(draw(st.integers(0, 100)))
    V, d = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    counts = rng.integers(1, 20, V)
    words = rng.integers(0, V, 40).astype(np.int32)
    offsets = np.array([0, 10, 25, 40], dtype=np.int64)
    cum = R.make_cum_table(counts)
    args = {"syn0": rng.random((V, d), dtype=np.float32), "syn1neg": rng.random(
        (V, d), dtype=np.float32), "words": words, "sent_offsets": offsets, "sent_begin": 0,
        "sent_end": 3, "sample_int": R.sample_ints(counts, 0), "cum_table": cum,
        "guide": R.make_guide(cum), "negative": 2, "window": 2, "shrink_windows": True,
        "alpha_begin": 0.05, "alpha_end": 0.01, "rng_state": 7, "exact_sigmoid": True,
        "compute_loss": True}
    damage = "none"
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(args)))
        a = args[name]
        if isinstance(a, np.ndarray):
            op = draw(st.sampled_from(["short", "long", "dtype", "2d", "empty", "nan", "big"]))
            flat = a.reshape(-1)
            new = {"short": lambda: a[:-1], "long": lambda: np.concatenate([a, a[:1]]),
                   "dtype": lambda: a.astype(np.float64 if a.dtype.kind != "f" else np.int32),
                   "2d": lambda: flat.reshape(1, -1), "empty": lambda: a[:0],
                   "nan": lambda: np.full_like(a, np.nan) if a.dtype.kind == "f" else a,
                   "big": lambda: np.full_like(a, np.iinfo(a.dtype).max if a.dtype.kind in "iu"
                                               else 1e38)}[op]()
            args[name] = new
            damage = f"{name} {op}"
        else:
            args[name] = draw(st.sampled_from([-1, 0, 2**31, 2**40, 1.5, "1", None,
                                               float("nan"), 10**6]))
            damage = f"{name} = {args[name]!r}"
    kind = draw(st.sampled_from(["w2v_sg_batch", "w2v_cbow_batch"]))
    order = ["syn0", "syn1neg", "words", "sent_offsets", "sent_begin", "sent_end", "sample_int",
             "cum_table", "guide", "negative", "window", "shrink_windows"] + \
        (["cbow_mean"] if kind == "w2v_cbow_batch" else []) + \
        ["alpha_begin", "alpha_end", "rng_state", "exact_sigmoid", "compute_loss"]
    args["cbow_mean"] = 1
    return kind, [_enc(args[k]) for k in order], damage


@fuzz(60)
@given(data=st.data())
def test_word2vec_kernels_called_directly(workers, data):
    """w2v_sg_batch / w2v_cbow_batch with damaged arguments on every backend (in a subprocess):
    the same clean error everywhere (one check: fastnet._kernel_checks.word2vec_job) or the
    same training."""
    kind, args, damage = data.draw(w2v_kernel_args())
    note(damage)
    # a guide or cum_table of wrong values (not a distribution) is memory-safe, but its draws
    # are not the reference's (which binary-searches cum_table and has no guide)
    judge_sub(workers, {"action": "kernel", "kernel": kind, "args": args}, rtol=1e-4,
              compare=not damage.startswith(("guide", "cum_table")))


@st.composite
def network_kernel_args(draw):
    rng = np.random.default_rng(draw(st.integers(0, 100)))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    sizes = np.array([3, 4, 2], dtype=np.int64)
    kinds = np.array([1, 1], dtype=np.int64)
    m = 5
    P = (3 + 1) * 4 + (4 + 1) * 2
    args = {"params": rng.normal(size=P).astype(dtype), "sizes": sizes, "kinds": kinds,
            "X": rng.normal(size=(m, 3)).astype(dtype), "out": np.zeros((m, 2), dtype),
            "Y": rng.random((m, 2)).astype(dtype), "grad": np.zeros(P, dtype)}
    name = draw(st.sampled_from(["sizes", "params", "kinds", "X", "out", "Y", "grad", "none"]))
    damage = {"sizes": [np.array([3, 3000000, 2]), np.array([3, 4]), np.array([3, 0, 2]),
                        np.array([3, -4, 2]), np.array([30, 4, 2])],
              "params": [args["params"][:-3], args["params"][:1], args["params"].astype(
                  np.float16)],
              "kinds": [np.array([9, 1]), np.array([1]), np.array([-1, 1])],
              "X": [args["X"][:, :2], args["X"][:0], args["X"].astype(np.int64)],
              "out": [args["out"][:-1], args["out"][:, :1]],
              "Y": [args["Y"][:-1], args["Y"][:, :1]],
              "grad": [args["grad"][:-1]], "none": [None]}[name]
    value = draw(st.sampled_from(damage))
    if name != "none":
        args[name] = value
    kernel = draw(st.sampled_from(["forward_network", "backprop_batch", "backprop_samples"]))
    order = ["params", "sizes", "kinds", "X", "out"] if kernel == "forward_network" else \
        ["params", "sizes", "kinds", 2, "X", "Y", "grad"]
    return kernel, [_enc(args[k]) if isinstance(k, str) else k for k in order], \
        name if name in order else "none"


COMPILED = [b for b in ORDER if b != "reference"]


@pytest.mark.skipif(not COMPILED, reason="no compiled backend")
@fuzz(40)
@given(data=st.data())
def test_network_kernels_called_directly(workers, data):
    """forward_network / backprop_* of the compiled backends with inconsistent sizes, short
    params, bad codes: a clean error, never a read out of bounds (issue 13 item 2: a
    layer_sizes of [4, 3000000, 3] segfaulted on numba)."""
    kernel, args, damaged = data.draw(network_kernel_args())
    note(f"{kernel}: {damaged}")
    job = {"action": "kernel", "kernel": kernel, "args": args}
    judge_sub(workers, job, backends=COMPILED, must_fail=damaged not in ("none",),
              category="numba-network-kernel-checks")


# ================================================================ known problems elsewhere
# One deterministic case per KNOWN category, xfail(strict=True): when the owner fixes it, the
# test passes, strict xfail fails it, and the category is to be removed from KNOWN.
def test_known_categories_have_a_strict_xfail_test():
    names = {n[len("test_known_"):] for n in globals() if n.startswith("test_known_")}
    assert {c.replace("-", "_") for c in KNOWN} <= names


@pytest.mark.xfail(strict=True, reason=KNOWN["accuracy-label-types"][0] + ": "
                   + KNOWN["accuracy-label-types"][1])
def test_known_accuracy_label_types():
    with pytest.raises((TypeError, ValueError), match="y"):
        fastnet.accuracy(np.array([0, 1, 1]), np.array(["0", "1", "1"], dtype=object))


@pytest.mark.xfail(strict=True, reason=KNOWN["linear-ragged-X"][0] + ": "
                   + KNOWN["linear-ragged-X"][1])
def test_known_linear_ragged_X():
    with pytest.raises(ValueError, match=r"\bX\b"):
        fastnet.linear_cost(np.zeros(2), [[0.0], [1.0, 2.0]], [0.0, 1.0])


@pytest.mark.xfail(strict=True, reason=KNOWN["cross-val-cv"][0] + ": " + KNOWN["cross-val-cv"][1])
def test_known_cross_val_cv():
    X, y = np.random.default_rng(0).normal(size=(6, 2)), np.array([0, 1] * 3)
    for cv in (0, 1, 7):
        with pytest.raises(ValueError, match=r"\bcv\b"):
            fastnet.cross_val_score(lambda *a: 0.0, X, y, cv=cv)


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba backend not available")
@pytest.mark.xfail(strict=True, reason=KNOWN["numba-network-kernel-checks"][0] + ": "
                   + KNOWN["numba-network-kernel-checks"][1])
def test_known_numba_network_kernel_checks():
    worker = Worker("numba")
    try:
        P = (3 + 1) * 4 + (4 + 1) * 2
        for sizes, params in [([3, 3000000, 2], np.zeros(P)), ([3, 4, 2], np.zeros(3))]:
            reply = worker.run({"action": "kernel", "kernel": "forward_network", "args": [
                _enc(params), _enc(np.array(sizes)), _enc(np.array([1, 1])),
                _enc(np.ones((5, 3))), _enc(np.zeros((5, 2)))]})
            assert reply["status"] == "error" and reply["type"] in ALLOWED_NAMES, reply
    finally:
        worker.close()
