r"""The recurrent kernels (plain RNN and LSTM, trained by BPTT), in numpy for reading: the oracle.

Every backend registers these functions (:data:`fastnet._backend.RNN_KERNELS`)
with exactly these signatures and in-place conventions.  As for the other
kernels, the public API validates and converts the inputs first: float
arrays are C-contiguous and share one dtype ``T`` (float32 or float64),
integer arrays are C-contiguous int64, shapes are consistent.

The cells
---------
A plain (Elman) cell, :class:`~fastnet._codes.Cell` ``RNN``:
:math:`z_t = x_t W + h_{t-1} U + b`, :math:`h_t = f(z_t)` with ``act`` the
:class:`~fastnet._codes.Act` code of :math:`f` (tanh, relu, sigmoid, linear).

The LSTM (Hochreiter and Schmidhuber 1997, with the forget gate of Gers et
al.), ``LSTM``: :math:`z_t = x_t W + h_{t-1} U + b` holds four gates side by
side, in the order ``i, f, o, g``:

.. math::
    i = \sigma(z^i),\ f = \sigma(z^f),\ o = \sigma(z^o),\ g = \tanh(z^g),\quad
    c_t = f \odot c_{t-1} + i \odot g,\quad h_t = o \odot \tanh(c_t).

Layouts
-------
*Sequences are time-major*: ``X`` is ``(T, B, D)`` (step, sequence, feature).

*One layer's parameters* are a flat block of ``(1 + D + H) * G`` numbers,
``G = H`` (RNN) or ``4H`` (LSTM), read as a ``(1 + D + H, G)`` matrix ``P``
whose row 0 is the bias :math:`b`, rows ``1 .. D`` the input weights
:math:`W` and the last ``H`` rows the recurrent weights :math:`U`: the
course's "bias in row 0" layout of :mod:`fastnet._params`, with the
recurrent rows appended.

*A network* (the epoch kernels) is ``sizes = [D, H_1, ..., H_L, K]``: ``L``
recurrent layers of one cell type, then a softmax output layer of ``K``
units (block ``(H_L + 1, K)``, bias in row 0), trained with the log-loss.
``params`` holds the blocks in that order (:func:`network_offsets`).

*States*: ``HS`` is ``(T + 1, B, H)``, ``HS[0]`` the initial state
:math:`h_0` and ``HS[t + 1]`` the state after step ``t``; the same for the
LSTM's cells ``CS``.

Variable lengths
----------------
``lengths[b]`` (``1 <= lengths[b] <= T``) is the number of steps of
sequence ``b``.  From step ``lengths[b]`` on, row ``b`` stands still: its
state is copied forward (``HS[t + 1, b] = HS[t, b]``), so ``HS[T]`` is every
sequence's state after its last step; the outputs of those steps take no
gradient and the parameters get none from them.  The compiled kernels
compute the leading rows that are still running, so a batch sorted by
decreasing length (the epoch kernels sort each batch) costs less than its
padded equivalent.

Losses are float64 sums (the caller divides), accumulated from the ``T``
probabilities with logs clipped at ``LOG_CLIP``, as elsewhere.
"""
import numpy as np

from fastnet._codes import Act, Cell
from fastnet.reference.activations import ACTIVATIONS
from fastnet.reference.losses import LOG_CLIP

_ACT = {cls.code: cls for cls in ACTIVATIONS.values()}

__all__ = ["gate_width", "layer_shape", "network_offsets", "rnn_forward", "rnn_backward",
           "clip_grad_norm", "rnn_seq_epoch", "rnn_lm_epoch", "KERNELS"]


# ------------------------------------------------------------------------- layouts
def gate_width(cell, H):
    """``G``: the width of a layer's pre-activations, ``H`` (RNN) or ``4H`` (LSTM)."""
    return 4 * int(H) if int(cell) == Cell.LSTM else int(H)


def layer_shape(cell, D, H):
    """Shape ``(1 + D + H, G)`` of one recurrent layer's parameter block."""
    return (1 + int(D) + int(H), gate_width(cell, H))


def network_offsets(cell, sizes):
    """Start of each block of a network ``sizes = [D, H_1, ..., H_L, K]`` in ``params``.

    Length ``L + 2``: the ``L`` recurrent layers, the softmax layer, and the
    total number of parameters last.
    """
    sizes = [int(s) for s in sizes]
    offs = [0]
    for l in range(1, len(sizes) - 1):
        r, g = layer_shape(cell, sizes[l - 1], sizes[l])
        offs.append(offs[-1] + r * g)
    offs.append(offs[-1] + (sizes[-2] + 1) * sizes[-1])
    return np.array(offs, dtype=np.int64)


def _views(cell, params, D, H):
    P = params.reshape(layer_shape(cell, D, H))
    return P[0], P[1:1 + D], P[1 + D:]


def _sigmoid(z):
    return _ACT[Act.SIGMOID].f(z)


# ------------------------------------------------------------------------ one layer
def rnn_forward(cell, act, params, X, lengths, HS, CS, GS):
    r"""Run one recurrent layer over a batch of sequences, saving what BPTT needs.

    Parameters
    ----------
    cell : int
        :class:`~fastnet._codes.Cell` code.
    act : int
        :class:`~fastnet._codes.Act` code of the plain cell's :math:`f`
        (linear, sigmoid, relu, tanh); not used by the LSTM.
    params : (P,) array
        The layer's block, ``P = (1 + D + H) * G``.
    X : (T, B, D) array
        The inputs (time-major).
    lengths : (B,) int64
        Steps of each sequence, in ``[1, T]``.
    HS : (T + 1, B, H) array
        In: ``HS[0]`` the initial state.  Out: ``HS[t + 1]`` the state
        after step ``t`` (frozen after each sequence's end).
    CS : (T + 1, B, H) array
        The LSTM's cell states, as ``HS`` (``CS[0]`` in).  Not used by
        the plain cell (any 3-D array, e.g. ``(0, 0, 0)``).
    GS : (T, B, G) array
        Out: the plain cell's pre-activations :math:`z_t`; the LSTM's
        activated gates ``[i, f, o, g]``.  Entries of finished rows are
        unspecified.

    Notes
    -----
    The input projection :math:`XW + b` is one matrix product for the whole
    sequence; each step adds :math:`h_{t-1}U` (one product) and applies the
    nonlinearities and the cell update.
    """
    T, B, D = X.shape
    H = HS.shape[2]
    b, W, U = _views(cell, params, D, H)
    GS[...] = (X.reshape(T * B, D) @ W + b).reshape(GS.shape)
    for t in range(T):
        live = (lengths > t)[:, None]
        z = GS[t] + HS[t] @ U
        if cell == Cell.LSTM:
            ifo = _sigmoid(z[:, :3 * H])
            g = np.tanh(z[:, 3 * H:])
            i, f, o = ifo[:, :H], ifo[:, H:2 * H], ifo[:, 2 * H:]
            c = f * CS[t] + i * g
            h = o * np.tanh(c)
            GS[t, :, :3 * H] = ifo
            GS[t, :, 3 * H:] = g
            CS[t + 1] = np.where(live, c, CS[t])
        else:
            GS[t] = z
            h = _ACT[int(act)].f(z)
        HS[t + 1] = np.where(live, h, HS[t])


def rnn_backward(cell, act, params, X, lengths, HS, CS, GS, dY, dh, dc, grad, dX):
    r"""Backpropagation through time of one layer, after :func:`rnn_forward`.

    Parameters
    ----------
    cell, act, params, X, lengths, HS, CS
        As given to and left by :func:`rnn_forward`.
    GS : (T, B, G) array
        In: as left by :func:`rnn_forward`.  Out: the gradient of the loss
        with respect to the pre-activations :math:`z_t` (0 after each
        sequence's end).
    dY : (T, B, H) array, or an empty array
        The gradient with respect to the outputs :math:`y_t = h_t`
        (``HS[t + 1]``); ignored after each sequence's end.  An empty array
        (size 0) means none (a many-to-one network).
    dh : (B, H) array
        In: the gradient with respect to the final state ``HS[T]``.  Out:
        with respect to the initial state ``HS[0]``.
    dc : (B, H) array
        The same for the LSTM's cell state (``CS[T]`` in, ``CS[0]`` out);
        not used by the plain cell (any 2-D array).
    grad : (P,) array
        Out: the gradient with respect to ``params`` (overwritten).
    dX : (T, B, D) array, or an empty array
        Out: the gradient with respect to ``X`` (0 after each sequence's
        end); not computed when empty (the first layer).

    Notes
    -----
    Backwards over the steps, with :math:`\delta h` the total gradient of
    :math:`h_t` (from the output and from step :math:`t + 1`):

    * plain cell: :math:`\delta z = \delta h \odot f'(z)`;
    * LSTM: :math:`\delta c \mathrel{+}= \delta h \odot o \odot (1 - \tanh^2 c_t)`,
      :math:`\delta z^i = \delta c\, g\, i(1-i)`,
      :math:`\delta z^f = \delta c\, c_{t-1} f(1-f)`,
      :math:`\delta z^o = \delta h \tanh(c_t)\, o(1-o)`,
      :math:`\delta z^g = \delta c\, i (1-g^2)`, and :math:`\delta c \leftarrow \delta c \odot f`;
    * :math:`\delta h \leftarrow \delta z\, U^T` for step :math:`t-1`.

    The weight gradients are one matrix product over all the steps after
    the loop: :math:`\nabla U = \sum_t h_{t-1}^T \delta z_t`,
    :math:`\nabla W = X^T \delta Z`, :math:`\nabla b = \sum \delta z`.
    """
    T, B, D = X.shape
    H = HS.shape[2]
    _, W, U = _views(cell, params, D, H)
    has_dy = dY.size > 0
    for t in range(T - 1, -1, -1):
        live = (lengths > t)[:, None]
        d_h = dh + dY[t] * live if has_dy else dh.copy()
        if cell == Cell.LSTM:
            i, f, o, g = (GS[t, :, k * H:(k + 1) * H] for k in range(4))
            tc = np.tanh(CS[t + 1])
            d_c = dc + d_h * o * (1 - tc * tc)
            dz = np.concatenate([d_c * g * i * (1 - i), d_c * CS[t] * f * (1 - f),
                                 d_h * tc * o * (1 - o), d_c * i * (1 - g * g)], axis=1)
            dz = np.where(live, dz, 0)
            dc[...] = np.where(live, d_c * f, dc)
        else:
            dz = np.where(live, d_h * _ACT[int(act)].df(GS[t]), 0)
        GS[t] = dz
        dh[...] = np.where(live, dz @ U.T, d_h)
    G2 = GS.reshape(T * B, -1)
    gb, gW, gU = _views(cell, grad, D, H)
    gb[...] = G2.sum(axis=0)
    gW[...] = X.reshape(T * B, D).T @ G2
    gU[...] = HS[:T].reshape(T * B, H).T @ G2
    if dX.size:
        dX[...] = (G2 @ W.T).reshape(dX.shape)


def clip_grad_norm(grad, max_norm):
    r"""Rescale ``grad`` in place to norm ``max_norm`` when its norm is larger.

    :math:`\lVert g\rVert = \sqrt{\sum g_i^2}` (accumulated in float64); when
    :math:`\lVert g\rVert > \text{max\_norm}`, :math:`g \leftarrow g\cdot
    \text{max\_norm}/\lVert g\rVert` (the factor rounded to the dtype of
    ``grad``).  ``max_norm = inf`` never clips.  A NaN or infinite norm is
    returned without touching ``grad`` (the caller reports the divergence).

    Returns
    -------
    float
        The norm before clipping.
    """
    norm = float(np.sqrt(np.sum(grad.astype(np.float64) ** 2)))
    if np.isfinite(norm) and norm > max_norm:
        grad *= grad.dtype.type(max_norm / norm)
    return norm


# ------------------------------------------------------------------------- networks
def _blocks(cell, params, sizes):
    offs = network_offsets(cell, sizes)
    L = len(sizes) - 2
    layers = [params[offs[l]:offs[l + 1]] for l in range(L)]
    head = params[offs[L]:offs[L + 1]].reshape(int(sizes[-2]) + 1, int(sizes[-1]))
    return layers, head


def _softmax_rows(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _log_loss(P, y):
    """Summed :math:`-\\log p_{y}` (float64, clipped at LOG_CLIP) of rows ``P``."""
    p = P[np.arange(P.shape[0]), y].astype(np.float64)
    return float(-np.sum(np.log(np.maximum(p, LOG_CLIP))))


def _net_forward(cell, act, layers, sizes, X, lengths, states):
    """Forward through the recurrent layers; returns each layer's (X, HS, CS, GS)."""
    T, B = X.shape[:2]
    saved = []
    inp = X
    for l, block in enumerate(layers):
        H = int(sizes[l + 1])
        HS = np.empty((T + 1, B, H), X.dtype)
        CS = np.empty((T + 1, B, H) if cell == Cell.LSTM else (0, 0, 0), X.dtype)
        GS = np.empty((T, B, gate_width(cell, H)), X.dtype)
        h0, c0 = states[l]
        HS[0] = h0
        if cell == Cell.LSTM:
            CS[0] = c0
        rnn_forward(cell, act, block, inp, lengths, HS, CS, GS)
        saved.append((inp, HS, CS, GS))
        inp = HS[1:]
    return saved


def _net_backward(cell, act, layers, grads, saved, lengths, dY_top, dh_top):
    """BPTT through the layers, top down; fills ``grads`` (one view per layer)."""
    dY = dY_top
    for l in range(len(layers) - 1, -1, -1):
        inp, HS, CS, GS = saved[l]
        B, H = HS.shape[1], HS.shape[2]
        dh = dh_top.copy() if (l == len(layers) - 1 and dh_top is not None) \
            else np.zeros((B, H), HS.dtype)
        dc = np.zeros((B, H) if cell == Cell.LSTM else (0, 0), HS.dtype)
        dX = np.empty(inp.shape if l > 0 else (0, 0, 0), HS.dtype)
        rnn_backward(cell, act, layers[l], inp, lengths, HS, CS, GS,
                     dY if dY is not None else np.empty((0, 0, 0), HS.dtype), dh, dc,
                     grads[l], dX)
        dY = dX


def _step(optimizer, params, grad, state, lr, mu, rho, eps, clip, t):
    from fastnet.reference.kernels import optimizer_step  # (kernels.py imports this module)
    clip_grad_norm(grad, clip)
    optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps, t)


def rnn_seq_epoch(cell, act, params, sizes, X, lengths, y, order, batch_size, optimizer, lr,
                  mu, rho, eps, clip, state, t):
    r"""One epoch of a many-to-one classifier: recurrent layers, then softmax on the last state.

    Parameters
    ----------
    cell, act : int
        As for :func:`rnn_forward` (every layer has the same cell).
    params : (P,) array
        The network ``sizes`` (see the module's docstring), updated in place.
    sizes : (L + 2,) int64
        ``[D, H_1, ..., H_L, K]``.
    X : (n, T, D) array
        Samples in the user's layout (sample-major).
    lengths : (n,) int64
        Steps of each sample, in ``[1, T]``.
    y : (n,) int64
        Class of each sample, in ``[0, K)``.
    order : (m,) int64
        The samples of the epoch; ``order[0:bs], order[bs:2bs], ...`` are the batches.
    batch_size : int >= 1
    optimizer, lr, mu, rho, eps, state, t
        As for :func:`fastnet.reference.kernels.optimizer_step`; batch
        ``k`` of the epoch is step ``t + k``.
    clip : float > 0
        Gradient-norm clipping (:func:`clip_grad_norm`), ``inf`` for none.

    Notes
    -----
    Each batch is taken in order of decreasing length (stable), starts from
    zero states, and the softmax reads the top layer's state after each
    sample's last step.  The gradient is that of the mean log-loss over the
    batch, clipped, then the optimiser steps.

    Returns
    -------
    float
        The summed log-loss of the epoch's samples, each measured with the
        weights before its batch's update.
    """
    layers, head = _blocks(cell, params, sizes)
    grad = np.empty_like(params)
    glayers, ghead = _blocks(cell, grad, sizes)
    m = order.shape[0]
    total = 0.0
    for k, start in enumerate(range(0, m, batch_size)):
        idx = order[start:start + batch_size]
        idx = idx[np.argsort(-lengths[idx], kind="stable")]
        B = idx.shape[0]
        Xb = np.ascontiguousarray(X[idx].transpose(1, 0, 2))
        lb = lengths[idx]
        zeros = [(np.zeros((B, int(h)), X.dtype),) * 2 for h in sizes[1:-1]]
        saved = _net_forward(cell, act, layers, sizes, Xb, lb, zeros)
        hT = saved[-1][1][-1]
        P = _softmax_rows(hT @ head[1:] + head[0])
        total += _log_loss(P, y[idx])
        dZ = P.copy()
        dZ[np.arange(B), y[idx]] -= 1
        dZ /= X.dtype.type(B)
        ghead[0] = dZ.sum(axis=0)
        ghead[1:] = hT.T @ dZ
        _net_backward(cell, act, layers, glayers, saved, lb, None, dZ @ head[1:].T)
        _step(optimizer, params, grad, state, lr, mu, rho, eps, clip, t + k)
    return total


def rnn_lm_epoch(cell, act, params, sizes, tokens, seq_len, hs, cs, optimizer, lr, mu, rho,
                 eps, clip, state, t):
    r"""One epoch of a character-level language model by truncated BPTT (stateful).

    Parameters
    ----------
    cell, act, params, optimizer, lr, mu, rho, eps, clip, state, t
        As for :func:`rnn_seq_epoch`.
    sizes : (L + 2,) int64
        ``[V, H_1, ..., H_L, V]``: one-hot inputs over a vocabulary of
        ``V`` symbols, a softmax over the same ``V`` at every step.
    tokens : (B, N + 1) int64
        ``B`` streams of symbols in ``[0, V)``: the inputs are
        ``tokens[:, :N]``, the targets ``tokens[:, 1:]``.
    seq_len : int >= 1
        Steps per chunk: chunk ``k`` covers steps ``[k S, min(N, (k+1) S))``
        of every stream, and is step ``t + k`` of the optimiser.
    hs, cs : (B * (H_1 + ... + H_L),) arrays
        The state carried from chunk to chunk (layer ``l``'s ``(B, H_l)``
        block after the blocks of the layers below): in, the state before
        the first chunk; out, after the last one.  ``cs`` is the LSTM's cell
        state (any 1-D array for the plain cell).

    Notes
    -----
    Each chunk runs forward from the carried state, the gradient of the
    mean log-loss over its ``B * len`` predictions goes back through the
    chunk only (truncated BPTT: no gradient crosses a chunk boundary), is
    clipped, and the optimiser steps.  The input weights of the first layer
    are read as rows (:math:`x_t W` of a one-hot :math:`x_t` is row
    :math:`W_{x_t}`).

    Returns
    -------
    float
        The summed log-loss (nats) of the ``B * N`` predictions, each with the
        weights before its chunk's update.
    """
    layers, head = _blocks(cell, params, sizes)
    grad = np.empty_like(params)
    glayers, ghead = _blocks(cell, grad, sizes)
    B, N1 = tokens.shape
    N, V, L = N1 - 1, int(sizes[0]), len(layers)
    Hs = [int(h) for h in sizes[1:-1]]
    soffs = np.concatenate(([0], np.cumsum(Hs))) * B
    lstm = cell == Cell.LSTM
    total = 0.0
    eye = np.eye(V, dtype=params.dtype)
    for k, start in enumerate(range(0, N, seq_len)):
        stop = min(N, start + seq_len)
        S = stop - start
        Xb = np.ascontiguousarray(eye[tokens[:, start:stop].T])         # (S, B, V)
        targets = tokens[:, start + 1:stop + 1].T.reshape(-1)            # (S * B,)
        lb = np.full(B, S, dtype=np.int64)
        states = [(hs[soffs[l]:soffs[l + 1]].reshape(B, Hs[l]),
                   cs[soffs[l]:soffs[l + 1]].reshape(B, Hs[l]) if lstm else None)
                  for l in range(L)]
        saved = _net_forward(cell, act, layers, sizes, Xb, lb, states)
        Htop = saved[-1][1][1:].reshape(S * B, Hs[-1])
        P = _softmax_rows(Htop @ head[1:] + head[0])
        total += _log_loss(P, targets)
        dZ = P
        dZ[np.arange(S * B), targets] -= 1
        dZ /= params.dtype.type(S * B)
        ghead[0] = dZ.sum(axis=0)
        ghead[1:] = Htop.T @ dZ
        dY = (dZ @ head[1:].T).reshape(S, B, Hs[-1])
        for l in range(L):  # the carried state: each layer's state after the chunk
            _, HS, CS, _ = saved[l]
            hs[soffs[l]:soffs[l + 1]] = HS[S].reshape(-1)
            if lstm:
                cs[soffs[l]:soffs[l + 1]] = CS[S].reshape(-1)
        _net_backward(cell, act, layers, glayers, saved, lb, dY, None)
        _step(optimizer, params, grad, state, lr, mu, rho, eps, clip, t + k)
    return total


KERNELS = {name: globals()[name] for name in (
    "rnn_forward", "rnn_backward", "clip_grad_norm", "rnn_seq_epoch", "rnn_lm_epoch")}
