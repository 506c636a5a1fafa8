r"""The numba backend's kernels for networks with user-defined activations.

A user activation in the course's style (an object with ``f(z)`` and
``df(z)``) is compiled here with ``numba.njit`` as a function of the layer's
2-D array of pre-activations (one batch), the way the course writes it
(``1 / (1 + np.exp(-z))``).  A ``df`` that calls its own class's ``f`` (the
course's ``Sigmoid.f(z) * (1 - Sigmoid.f(z))``) compiles too: the class name
is bound, for the compiler only, to a namespace holding the compiled
functions.  Each compiled pair is checked against the Python functions on a
probe array, so a function that Numba would compute differently is never
used silently.

The kernels (:func:`kernels_for` returns them as a table with the names,
signatures and in-place conventions of :mod:`fastnet.reference.kernels`) are
generic: they take the compiled functions as arguments (first-class function
objects; Numba specialises them once per set of activations, in memory only:
these specialisations are not cached on disk), and run a whole epoch in one
compiled call.  The matrix products are BLAS calls on buffers allocated once
per call; the built-in activations, the loss, the penalty and the optimiser
step are the numba backend's own helpers (:mod:`fastnet._numba.network`).
When ``f`` or ``df`` does not compile, :func:`kernels_for` says why and
:mod:`fastnet._layerwise` runs that network in numpy instead (with a warning).
"""
import threading
import types

import numpy as np
from numba import njit

from fastnet._codes import Optimizer
from fastnet._numba._common import act, dact, offsets as _offsets
# The numba backend's own helpers: the loss, the row softmax, the optimiser step and penalty.
from fastnet._numba._elementwise import loss_sum as _loss_sum, softmax_rows as _softmax_rows
from fastnet._numba._optim import step_network
from fastnet.reference.epochs import EpochLoopKernels


@njit
def _step(params, grad, state, sizes, B, optimizer, lr, mu, rho, eps, penalty, lam, t):
    """One optimiser step from the gradient ``grad`` summed over ``B`` samples (penalised):
    the numba backend's own step (every optimiser, Adam's bias correction from ``t``)."""
    step_network(params, grad, state, sizes, _offsets(sizes), B, optimizer, lr, mu, rho, eps,
                 penalty, lam, t, False)


def _optimizer_code(optimizer):
    code = int(optimizer)
    if code not in {int(o) for o in Optimizer}:
        raise ValueError(f"optimizer code {code} is unknown (known: "
                         f"{', '.join(f'{int(o)} ({o.name.lower()})' for o in Optimizer)})")
    return code

__all__ = ["kernels_for", "compile_activation", "CustomKernels"]

_CE, _QUAD, _LOGLOSS = 0, 1, 2          # fastnet._codes.Loss
_SIGMOID, _SOFTMAX = 1, 4               # fastnet._codes.Act
_USER = -1                              # fastnet._layerwise.USER_KIND

_lock = threading.Lock()
_compiled = {}   # id(source) -> (source, (f, df) or None, reason)


# ============================================================ compiling f and df
def _raw(fn):
    """The plain Python function behind ``fn`` (a staticmethod's function, a bound method's)."""
    fn = getattr(fn, "__func__", fn)
    return fn if isinstance(fn, types.FunctionType) else None


def _rebind(fn, source, stand_in):
    """``fn`` with every global that names ``source`` (its own class) bound to ``stand_in``."""
    g = dict(fn.__globals__)
    for k, v in fn.__globals__.items():
        if v is source or (isinstance(source, type) is False and v is type(source)):
            g[k] = stand_in
    return types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)


def compile_activation(act_obj):
    """``((f, df), None)``: the user's functions compiled, or ``(None, reason)``."""
    source = act_obj.source
    with _lock:
        hit = _compiled.get(id(source))
        if hit is not None and hit[0] is source:
            return hit[1], hit[2]
    f, df = _raw(getattr(source, "f", None)), _raw(getattr(source, "df", None))
    result, reason = None, None
    if f is None or df is None:
        reason = "f and df must be plain functions (static methods)"
    else:
        stand_in = types.ModuleType(getattr(source, "__name__", "activation"))
        try:
            fj = njit(_rebind(f, source, stand_in))
            stand_in.f = fj
            dfj = njit(_rebind(df, source, stand_in))
            stand_in.df = dfj
            reason = _probe(f, df, fj, dfj)
        except Exception as exc:  # noqa: BLE001 - any failure to compile means: not compilable
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if reason is None:
            result = (fj, dfj)
    with _lock:
        _compiled[id(source)] = (source, result, reason)
    return result, reason


def _probe(f, df, fj, dfj):
    """None when the compiled functions give the Python functions' numbers, else why not."""
    for dtype in (np.float64, np.float32):
        z = np.linspace(-4, 4, 12, dtype=dtype).reshape(3, 4)
        for name, py, jit in (("f", f, fj), ("df", df, dfj)):
            want = np.asarray(py(z.copy()), dtype=dtype)
            got = jit(z.copy())
            if not isinstance(got, np.ndarray) or got.shape != z.shape:
                return f"the compiled {name} does not return an array of z's shape"
            tol = 1e-10 if dtype == np.float64 else 1e-5
            if not np.allclose(np.asarray(got, dtype=np.float64), want, rtol=tol, atol=tol):
                return f"the compiled {name} differs from numpy's"
    return None


def _dispatch(fns):
    """A compiled ``apply(j, Z)`` calling the ``j``-th of the compiled ``fns``."""
    lines = ["def apply(j, Z):"]
    for j in range(len(fns)):
        lines.append(f"    if j == {j}:\n        return fn{j}(Z)")
    lines.append("    return fn0(Z)")
    ns = {f"fn{j}": fn for j, fn in enumerate(fns)}
    exec("\n".join(lines), ns)  # noqa: S102 - generated from a fixed template
    return njit(ns["apply"])


# ==================================================================== the kernels
@njit
def _layer_views(params, sizes, l, offs):
    n_in, n_out = sizes[l], sizes[l + 1]
    W = params[offs[l]:offs[l + 1]].reshape(n_in + 1, n_out)
    return W


@njit
def _buffers(sizes, rows, dtype_like):
    """Start of each layer's (rows x n_{l+1}) block in one flat buffer, and the buffer size."""
    L = sizes.shape[0] - 1
    starts = np.empty(L + 1, np.int64)
    starts[0] = 0
    for l in range(L):
        starts[l + 1] = starts[l] + rows * sizes[l + 1]
    return starts


@njit
def _activate(kind, j, apply_f, Z, A):
    if kind == _USER:
        A[:, :] = apply_f(j, Z)
    elif kind == _SOFTMAX:
        _softmax_rows(Z, A)
    else:
        for r in range(Z.shape[0]):
            for k in range(Z.shape[1]):
                A[r, k] = act(kind, Z[r, k])


@njit
def _derivative(kind, j, apply_df, Z, D):
    if kind == _USER:
        D[:, :] = apply_df(j, Z)
    else:
        for r in range(Z.shape[0]):
            for k in range(Z.shape[1]):
                D[r, k] = dact(kind, Z[r, k])


@njit
def _forward(params, sizes, kinds, uidx, apply_f, X, Zb, Ab, starts, offs):
    """Every layer's Z and A for the batch ``X`` into the flat buffers; returns the output."""
    rows = X.shape[0]
    A = X
    for l in range(kinds.shape[0]):
        n_out = sizes[l + 1]
        W = _layer_views(params, sizes, l, offs)
        Z = Zb[starts[l]:starts[l] + rows * n_out].reshape(rows, n_out)
        np.dot(A, W[1:], Z)
        for r in range(rows):
            for k in range(n_out):
                Z[r, k] += W[0, k]
        An = Ab[starts[l]:starts[l] + rows * n_out].reshape(rows, n_out)
        _activate(kinds[l], uidx[l], apply_f, Z, An)
        A = An
    return A


@njit
def _backprop(params, sizes, kinds, uidx, apply_f, apply_df, loss_kind, X, Y, grad, Zb, Ab, Db,
              Eb, starts, offs):
    """Summed gradient of the batch into ``grad``; returns its summed loss."""
    rows = X.shape[0]
    L = kinds.shape[0]
    A = _forward(params, sizes, kinds, uidx, apply_f, X, Zb, Ab, starts, offs)
    total = _loss_sum(loss_kind, A, Y)
    nL = sizes[L]
    delta = Db[:rows * nL].reshape(rows, nL)
    out_kind = kinds[L - 1]
    if (out_kind == _SIGMOID and loss_kind == _CE) or (out_kind == _SOFTMAX and
                                                       loss_kind == _LOGLOSS):
        for r in range(rows):
            for k in range(nL):
                delta[r, k] = A[r, k] - Y[r, k]
    else:
        ZL = Zb[starts[L - 1]:starts[L - 1] + rows * nL].reshape(rows, nL)
        Eo = Eb[:rows * nL].reshape(rows, nL)
        _derivative(out_kind, uidx[L - 1], apply_df, ZL, Eo)
        clip = A.dtype.type(1e-15)
        one = A.dtype.type(1)
        zero = A.dtype.type(0)
        for r in range(rows):
            for k in range(nL):
                a, y = A[r, k], Y[r, k]
                if loss_kind == _QUAD:
                    g = a - y
                else:
                    g = -y / a if a > clip else zero
                    if loss_kind == _CE:
                        g += (one - y) / (one - a) if one - a > clip else zero
                delta[r, k] = g * Eo[r, k]
    for l in range(L - 1, -1, -1):
        n_in, n_out = sizes[l], sizes[l + 1]
        W = _layer_views(params, sizes, l, offs)
        G = _layer_views(grad, sizes, l, offs)
        for k in range(n_out):
            s = delta.dtype.type(0)
            for r in range(rows):
                s += delta[r, k]
            G[0, k] = s
        if l == 0:
            A_in = X
        else:
            A_in = Ab[starts[l - 1]:starts[l - 1] + rows * n_in].reshape(rows, n_in)
        np.dot(A_in.T, delta, G[1:])
        if l > 0:
            prev = Eb[:rows * n_in].reshape(rows, n_in)
            np.dot(delta, W[1:].T, prev)
            Zp = Zb[starts[l - 1]:starts[l - 1] + rows * n_in].reshape(rows, n_in)
            D = Db[:rows * n_in].reshape(rows, n_in)
            _derivative(kinds[l - 1], uidx[l - 1], apply_df, Zp, D)
            for r in range(rows):
                for k in range(n_in):
                    D[r, k] *= prev[r, k]
            delta = D
    return total


@njit
def _workspace(sizes, rows, dtype_like):
    starts = _buffers(sizes, rows, dtype_like)
    widest = 1
    for l in range(1, sizes.shape[0]):
        widest = max(widest, sizes[l])
    Zb = np.empty(starts[-1], dtype_like.dtype)
    Ab = np.empty(starts[-1], dtype_like.dtype)
    Db = np.empty(rows * widest, dtype_like.dtype)
    Eb = np.empty(rows * widest, dtype_like.dtype)
    return starts, Zb, Ab, Db, Eb


@njit
def _forward_network(params, sizes, kinds, uidx, apply_f, X, out):
    offs = _offsets(sizes)
    starts, Zb, Ab, Db, Eb = _workspace(sizes, X.shape[0], params)
    out[:, :] = _forward(params, sizes, kinds, uidx, apply_f, X, Zb, Ab, starts, offs)


@njit
def _backprop_batch(params, sizes, kinds, uidx, apply_f, apply_df, loss_kind, X, Y, grad):
    offs = _offsets(sizes)
    starts, Zb, Ab, Db, Eb = _workspace(sizes, X.shape[0], params)
    return _backprop(params, sizes, kinds, uidx, apply_f, apply_df, loss_kind, X, Y, grad, Zb, Ab,
                     Db, Eb, starts, offs)


@njit
def _train_epoch(params, sizes, kinds, uidx, apply_f, apply_df, loss_kind, X, Y, order,
                 batch_size, optimizer, lr, mu, rho, eps, penalty, lam, state, t):
    offs = _offsets(sizes)
    m = order.shape[0]
    B = min(batch_size, m)
    starts, Zb, Ab, Db, Eb = _workspace(sizes, B, params)
    grad = np.empty(params.shape[0], params.dtype)
    Xb = np.empty((B, X.shape[1]), X.dtype)
    Yb = np.empty((B, Y.shape[1]), Y.dtype)
    last = _buffers(sizes, m - (m - 1) // B * B, params)  # the blocks of the last batch
    total = 0.0
    for b, start in enumerate(range(0, m, B)):
        rows = min(B, m - start)
        xb = Xb[:rows]
        yb = Yb[:rows]
        for r in range(rows):
            xb[r] = X[order[start + r]]
            yb[r] = Y[order[start + r]]
        total += _backprop(params, sizes, kinds, uidx, apply_f, apply_df, loss_kind, xb, yb,
                           grad, Zb, Ab, Db, Eb, starts if rows == B else last, offs)
        _step(params, grad, state, sizes, rows, optimizer, lr, mu, rho, eps, penalty, lam, t + b)
    return total


class CustomKernels(EpochLoopKernels):
    """The network kernels of the numba backend for one set of (user) activations."""

    def __init__(self, base, acts, fs, dfs):
        self.base = base
        self.acts = list(acts)
        self.uidx = np.full(len(acts), -1, dtype=np.int64)
        j = 0
        for l, a in enumerate(acts):
            if a.code is None:
                self.uidx[l] = j
                j += 1
        self.apply_f = _dispatch(fs)
        self.apply_df = _dispatch(dfs)
        for k in ("activation", "activation_grad", "loss", "penalty_value", "penalty_grad",
                  "optimizer_step", "linear_gd", "perceptron_train"):
            setattr(self, k, getattr(base, k))

    def forward_network(self, params, sizes, kinds, X, out):
        _forward_network(params, sizes, kinds, self.uidx, self.apply_f, X, out)

    def backprop_batch(self, params, sizes, kinds, loss_kind, X, Y, grad):
        return float(_backprop_batch(params, sizes, kinds, self.uidx, self.apply_f,
                                     self.apply_df, int(loss_kind), X, Y, grad))

    backprop_samples = backprop_batch

    def train_epoch(self, params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer,
                    lr, mu, rho, eps, penalty_kind, lam, state, t):
        code = _optimizer_code(optimizer)
        penalty = int(penalty_kind) if lam else 0
        return float(_train_epoch(params, sizes, kinds, self.uidx, self.apply_f, self.apply_df,
                                  int(loss_kind), X, Y, order, int(batch_size), code, float(lr),
                                  float(mu), float(rho), float(eps), penalty, float(lam), state,
                                  int(t)))


def kernels_for(acts, base):
    """``(table, {})``: the kernels for a network with these activations, or ``(None, failed)``
    with ``failed`` mapping each user activation that did not compile to the reason."""
    fs, dfs, failed = [], [], {}
    for a in acts:
        if a.code is None:
            pair, why = compile_activation(a)
            if pair is None:
                failed[a] = why
            else:
                fs.append(pair[0])
                dfs.append(pair[1])
    if failed:
        return None, failed
    return CustomKernels(base, acts, fs, dfs), {}
