"""Finite-difference checks of the recurrent kernels, and clipping and truncation by hand.

* one step of each cell (T = 1) and whole BPTT over sequences of different
  lengths, on every backend, in float64, against central differences of a
  scalar loss of the outputs and final states;
* the epoch kernels' gradient (an SGD step of rate 1 is the gradient);
* gradient-norm clipping against hand-computed cases;
* truncated BPTT: the LM epoch equals chunk-by-chunk training written out
  with the layer kernels, the state carried and the gradient stopped.
"""
import numpy as np
import pytest

from fastnet._codes import Act, Cell, Optimizer
from fastnet.reference import rnn as R
from conftest import BACKENDS, assert_close, kernels_of, numerical_gradient

CASES = [(Cell.RNN, Act.TANH), (Cell.RNN, Act.SIGMOID), (Cell.RNN, Act.RELU),
         (Cell.RNN, Act.LINEAR), (Cell.LSTM, Act.TANH)]
ids = [f"{c.name}-{a.name}" for c, a in CASES]
backends = pytest.mark.parametrize("name", BACKENDS)


def _loss(K, cell, act, params, X, lengths, h0, c0, Wy, Wh, Wc):
    """A scalar of every output (live steps), the final state and cell, and its gradients."""
    T, B, _ = X.shape
    H = h0.shape[1]
    lstm = cell == Cell.LSTM
    HS = np.empty((T + 1, B, H))
    HS[0] = h0
    CS = np.empty((T + 1, B, H) if lstm else (0, 0, 0))
    if lstm:
        CS[0] = c0
    GS = np.empty((T, B, R.gate_width(cell, H)))
    K.rnn_forward(int(cell), int(act), params, X, lengths, HS, CS, GS)
    live = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]
    J = np.sum(Wy * HS[1:] * live) + 0.5 * np.sum(Wh * HS[T] ** 2)
    if lstm:
        J += np.sum(Wc * np.sin(CS[T]))
    dh = Wh * HS[T]
    dc = Wc * np.cos(CS[T]) if lstm else np.empty((0, 0))
    grad = np.empty_like(params)
    dX = np.empty_like(X)
    K.rnn_backward(int(cell), int(act), params, X, lengths, HS, CS, GS, Wy.copy(), dh, dc,
                   grad, dX)
    return J, grad, dX, dh, dc


@backends
@pytest.mark.parametrize("cell,act", CASES, ids=ids)
@pytest.mark.parametrize("T,lengths", [(1, [1, 1]), (5, [5, 2, 4]), (4, [1, 4, 3, 2])],
                         ids=["one-step", "bptt-a", "bptt-b"])
def test_bptt_matches_finite_differences(name, cell, act, T, lengths):
    K = kernels_of(name)
    rng = np.random.default_rng(T * 10 + len(lengths))
    B, D, H = len(lengths), 3, 4
    lengths = np.array(lengths, dtype=np.int64)
    G = R.gate_width(cell, H)
    params = rng.standard_normal((1 + D + H) * G) * 0.5
    if act == Act.RELU:  # keep pre-activations away from the kink
        params += 0.3
    X = rng.standard_normal((T, B, D))
    h0, c0 = rng.standard_normal((B, H)) * 0.5, rng.standard_normal((B, H)) * 0.5
    Wy, Wh, Wc = (rng.standard_normal(s) for s in ((T, B, H), (B, H), (B, H)))
    args = lambda: (K, cell, act, params, X, lengths, h0, c0, Wy, Wh, Wc)  # noqa: E731
    _, grad, dX, dh0, dc0 = _loss(*args())
    f = lambda: _loss(*args())[0]  # noqa: E731
    for got, arr, what in ((grad, params, "params"), (dX, X, "X"), (dh0, h0, "h0")) + \
            (((dc0, c0, "c0"),) if cell == Cell.LSTM else ()):
        assert_close(got, numerical_gradient(f, arr), rtol=1e-6, err_msg=f"{name}: d/d{what}")
    # steps past a sequence's end take no gradient from the inputs
    for b, n in enumerate(lengths):
        assert np.all(dX[n:, b] == 0)


def _epoch_gradient(K, kind, cell, params, data):
    """The gradient an epoch kernel applies: one SGD step of rate 1, without clipping."""
    p = params.copy()
    st = np.zeros(2 * p.size)
    if kind == "seq":
        sizes, X, lengths, y = data
        K.rnn_seq_epoch(int(cell), int(Act.TANH), p, sizes, X, lengths, y,
                        np.arange(X.shape[0], dtype=np.int64), X.shape[0], int(Optimizer.SGD),
                        1.0, 0.9, 0.9, 1e-8, np.inf, st, 0)
    else:
        sizes, toks, S = data
        width = toks.shape[0] * int(sizes[1:-1].sum())
        K.rnn_lm_epoch(int(cell), int(Act.TANH), p, sizes, toks, S, np.zeros(width),
                       np.zeros(width), int(Optimizer.SGD), 1.0, 0.9, 0.9, 1e-8, np.inf, st, 0)
    return params - p


def _epoch_loss(K, kind, cell, params, data):
    p = params.copy()
    st = np.zeros(2 * p.size)
    if kind == "seq":
        sizes, X, lengths, y = data
        return K.rnn_seq_epoch(int(cell), int(Act.TANH), p, sizes, X, lengths, y,
                               np.arange(X.shape[0], dtype=np.int64), X.shape[0],
                               int(Optimizer.SGD), 0.0, 0.9, 0.9, 1e-8, np.inf, st, 0) / X.shape[0]
    sizes, toks, S = data
    width = toks.shape[0] * int(sizes[1:-1].sum())
    total = K.rnn_lm_epoch(int(cell), int(Act.TANH), p, sizes, toks, S, np.zeros(width),
                           np.zeros(width), int(Optimizer.SGD), 0.0, 0.9, 0.9, 1e-8, np.inf, st, 0)
    return total / toks.shape[0] / (toks.shape[1] - 1)


@backends
@pytest.mark.parametrize("cell", [Cell.RNN, Cell.LSTM], ids=["RNN", "LSTM"])
@pytest.mark.parametrize("kind", ["seq", "lm"])
def test_epoch_gradients_match_finite_differences(name, cell, kind):
    K = kernels_of(name)
    rng = np.random.default_rng(5)
    if kind == "seq":
        sizes = np.array([2, 3, 4, 3], dtype=np.int64)
        data = (sizes, rng.standard_normal((5, 4, 2)), np.array([4, 1, 3, 4, 2]),
                rng.integers(0, 3, 5).astype(np.int64))
    else:  # one chunk: the whole sequence (seq_len = N)
        sizes = np.array([4, 3, 2, 4], dtype=np.int64)
        data = (sizes, rng.integers(0, 4, (2, 7)).astype(np.int64), 6)
    params = rng.standard_normal(int(R.network_offsets(cell, sizes)[-1])) * 0.5
    g = _epoch_gradient(K, kind, cell, params, data)
    num = numerical_gradient(lambda: _epoch_loss(K, kind, cell, params, data), params)
    assert_close(g, num, rtol=1e-6, err_msg=f"{name} {kind}")


# ------------------------------------------------------------------------------ clipping
@backends
def test_clipping_rescales_to_the_norm_by_hand(name):
    K = kernels_of(name)
    g = np.array([3.0, 4.0])                      # norm 5
    assert K.clip_grad_norm(g, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(g, [0.6, 0.8], rtol=1e-15)
    g = np.array([3.0, 4.0])
    assert K.clip_grad_norm(g, 5.0) == pytest.approx(5.0)     # at the bound: untouched
    np.testing.assert_array_equal(g, [3.0, 4.0])
    g = np.array([1.0, -2.0, 2.0], dtype=np.float32)          # norm 3
    assert K.clip_grad_norm(g, 1.5) == pytest.approx(3.0)
    np.testing.assert_allclose(g, [0.5, -1.0, 1.0], rtol=1e-7)
    g = np.array([1e30, 1e30])
    assert K.clip_grad_norm(g, np.inf) == pytest.approx(np.sqrt(2) * 1e30)
    np.testing.assert_array_equal(g, [1e30, 1e30])            # inf: never clips
    g = np.array([np.nan, 1.0])
    assert np.isnan(K.clip_grad_norm(g, 1.0))                 # NaN: left for the caller
    assert g[1] == 1.0


@backends
def test_epochs_clip_the_gradient_before_the_step(name):
    """With SGD of rate 1 the step is the clipped gradient: its norm is the clip."""
    K = kernels_of(name)
    rng = np.random.default_rng(1)
    sizes = np.array([2, 5, 3], dtype=np.int64)
    params = rng.standard_normal(int(R.network_offsets(Cell.LSTM, sizes)[-1])) * 2
    X = rng.standard_normal((6, 4, 2)) * 3
    lengths = np.full(6, 4, dtype=np.int64)
    y = rng.integers(0, 3, 6).astype(np.int64)
    full = _epoch_gradient(K, "seq", Cell.LSTM, params, (sizes, X, lengths, y))
    assert np.linalg.norm(full) > 0.01
    p = params.copy()
    K.rnn_seq_epoch(int(Cell.LSTM), int(Act.TANH), p, sizes, X, lengths, y, np.arange(6),
                    6, int(Optimizer.SGD), 1.0, 0.9, 0.9, 1e-8, 0.01, np.zeros(2 * p.size), 0)
    step = params - p
    assert np.linalg.norm(step) == pytest.approx(0.01, rel=1e-9)
    assert_close(step, full * (0.01 / np.linalg.norm(full)), rtol=1e-9)


# ---------------------------------------------------------------------------- truncation
def _chunked_by_hand(cell, params, sizes, toks, S, lr):
    """Truncated BPTT written out: each chunk from the carried state, the gradient of its
    mean log-loss through the chunk only (the layer kernels of the reference), SGD."""
    p = params.copy()
    B, N = toks.shape[0], toks.shape[1] - 1
    V, H = int(sizes[0]), int(sizes[1])
    offs = R.network_offsets(cell, sizes)
    lstm = cell == Cell.LSTM
    h, c = np.zeros((B, H)), np.zeros((B, H))
    total = 0.0
    for start in range(0, N, S):
        T = min(S, N - start)
        X = np.eye(V)[toks[:, start:start + T].T]
        layer, head = p[offs[0]:offs[1]], p[offs[1]:offs[2]].reshape(H + 1, V)
        HS = np.empty((T + 1, B, H))
        HS[0] = h
        CS = np.empty((T + 1, B, H) if lstm else (0, 0, 0))
        if lstm:
            CS[0] = c
        GS = np.empty((T, B, R.gate_width(cell, H)))
        lengths = np.full(B, T, dtype=np.int64)
        R.rnn_forward(int(cell), int(Act.TANH), layer, X, lengths, HS, CS, GS)
        Z = HS[1:].reshape(T * B, H) @ head[1:] + head[0]
        P = np.exp(Z - Z.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        tgt = toks[:, start + 1:start + T + 1].T.reshape(-1)
        total -= np.log(P[np.arange(T * B), tgt]).sum()
        P[np.arange(T * B), tgt] -= 1
        P /= T * B
        ghead = np.vstack([P.sum(0), HS[1:].reshape(T * B, H).T @ P])
        glayer = np.empty_like(layer)
        R.rnn_backward(int(cell), int(Act.TANH), layer, X, lengths, HS, CS, GS,
                       (P @ head[1:].T).reshape(T, B, H), np.zeros((B, H)),
                       np.zeros((B, H)) if lstm else np.empty((0, 0)), glayer,
                       np.empty((0, 0, 0)))
        h = HS[T].copy()                       # the state is carried ...
        if lstm:
            c = CS[T].copy()
        p[offs[0]:offs[1]] -= lr * glayer      # ... the gradient is not
        p[offs[1]:offs[2]] -= lr * ghead.reshape(-1)
    return total, p, h


@backends
@pytest.mark.parametrize("cell", [Cell.RNN, Cell.LSTM], ids=["RNN", "LSTM"])
def test_truncated_bptt_is_chunk_by_chunk_training(name, cell):
    K = kernels_of(name)
    rng = np.random.default_rng(2)
    sizes = np.array([5, 4, 5], dtype=np.int64)
    params = rng.standard_normal(int(R.network_offsets(cell, sizes)[-1])) * 0.5
    toks = rng.integers(0, 5, (3, 12)).astype(np.int64)
    for S in (1, 4, 5, 11):
        want_total, want_p, want_h = _chunked_by_hand(cell, params, sizes, toks, S, 0.3)
        p = params.copy()
        hs = np.zeros(3 * 4)
        total = K.rnn_lm_epoch(int(cell), int(Act.TANH), p, sizes, toks, S, hs, np.zeros(12),
                               int(Optimizer.SGD), 0.3, 0.9, 0.9, 1e-8, np.inf,
                               np.zeros(2 * p.size), 0)
        assert_close(total, want_total, err_msg=f"S={S}")
        assert_close(p, want_p, err_msg=f"S={S}")
        assert_close(hs.reshape(3, 4), want_h, err_msg=f"S={S}")


def test_truncation_drops_the_gradient_across_chunks():
    """Two chunks of one step against one chunk of two steps, at (nearly) the same weights:
    the state is carried, so the softmax layer's gradients agree; the gradient of the second
    prediction does not reach the first step, so the recurrent layer's bias and input weights
    get less (the state starts at zero, so the recurrent weights get nothing from step 1)."""
    rng = np.random.default_rng(4)
    sizes = np.array([3, 2, 3], dtype=np.int64)
    params = rng.standard_normal(int(R.network_offsets(Cell.RNN, sizes)[-1]))
    toks = np.array([[0, 1, 2]], dtype=np.int64)
    lr = 1e-7
    g_full = 2 * _epoch_gradient(kernels_of("reference"), "lm", Cell.RNN, params,
                                 (sizes, toks, 2))          # sum over the 2 predictions
    g_cut = (params - _chunked_by_hand(Cell.RNN, params, sizes, toks, 1, lr)[1]) / lr
    offs = R.network_offsets(Cell.RNN, sizes)
    head = slice(int(offs[1]), int(offs[2]))
    np.testing.assert_allclose(g_cut[head], g_full[head], rtol=1e-5, atol=1e-6)
    WB = slice(int(offs[0]), int(offs[0]) + (1 + 3) * 2)   # bias and input rows
    assert np.abs(g_cut[WB] - g_full[WB]).max() > 1e-3
