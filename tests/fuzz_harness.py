"""The machinery of the fuzz suite (``tests/test_fuzz.py``, ``tests/test_fuzz_files.py``).

* :func:`fuzz`: the hypothesis settings (derandomized unless ``FASTNET_FUZZ_RANDOM=1``,
  examples times ``FASTNET_FUZZ_SCALE``);
* :class:`Case` and :func:`judge`: one call on every backend, judged against the reference
  (results equal, or the same clean error naming a damaged argument);
* the strategies of damaged arrays, labels, hyper-parameters and networks;
* :class:`Worker` and :func:`judge_sub`: crash-prone cases in a subprocess per backend
  (``tests/fuzz_worker.py``), a crash reported as a failure;
* :data:`KNOWN`: problems of code owned by other parts, pinned by strict xfails in
  ``tests/test_fuzz.py``; :data:`STATS`: the counts printed at the end of a run.
"""
import json
import contextlib
import os
import queue
import subprocess
import sys
import threading
from collections import Counter

import numpy as np
from hypothesis import HealthCheck, note, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastnet
from fastnet._history import DivergenceError
from conftest import BACKENDS, REPO

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
KNOWN = {}
STATS = Counter()




def report(request):
    """Print the counts so far (and write them to ``$FASTNET_FUZZ_REPORT`` as JSON)."""
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    line = (f"fuzz: {STATS['tried']} cases tried on {len(ORDER)} backends ({STATS['runs']} runs): "
            f"{STATS['ok']} results, {STATS['clean error']} clean errors, {STATS['crash']} "
            f"crashes, {STATS['known']} known problems of other parts (of which "
            f"{STATS['known crashes']} crashes)")
    if tr is not None:
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
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


class _Quiet(dict):
    """A dict that hypothesis reports as ``<files>`` (not megabytes of bytes)."""

    def __repr__(self):
        return "<files>"


def _enc(a):
    return {"__array__": a.tolist(), "dtype": a.dtype.str} if isinstance(a, np.ndarray) else a
