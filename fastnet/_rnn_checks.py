"""Argument checks of the recurrent kernels' compiled wrappers (numba and cython).

The public API (the layers, :class:`fastnet.RNNClassifier`, :class:`fastnet.CharLM`)
validates and converts its inputs before calling a kernel, so these checks
should never fire in normal use; they make a direct call with a wrong array
fail with a ``TypeError``/``ValueError`` naming the kernel and the argument
instead of a read out of bounds in a compiled loop.  They run once per call,
with the primitives of :mod:`fastnet._kernel_checks`.
"""
import numpy as np

from fastnet import _kernel_checks as kc
from fastnet._codes import Act, Cell

__all__ = ["CELLS", "layer_call", "backward_call", "network", "seq_epoch_call", "lm_epoch_call",
           "clip_call"]

CELLS = {int(c): c.name.lower() for c in Cell}
#: the nonlinearities of the plain cell (softmax is an output, not a state)
CELL_ACTS = {int(c): c.name.lower() for c in Act if c != Act.SOFTMAX}


def _codes(kernel, cell, act):
    return kc.code(kernel, "cell", cell, CELLS), kc.code(kernel, "act", act, CELL_ACTS)


def _gates(cell, H):
    return 4 * H if cell == Cell.LSTM else H


def _lengths(kernel, lengths, B, T, name="lengths"):
    kc.int_array(kernel, name, lengths)
    kc.shape(kernel, name, lengths, (B,))
    if B and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(f"{kernel}: every entry of {name} must be in [1, T={T}], got values in "
                         f"[{int(lengths.min())}, {int(lengths.max())}]")


def layer_call(kernel, cell, act, params, X, lengths, HS, CS, GS):
    """Check the arguments of ``rnn_forward``; returns ``(cell, act, T, B, D, H, G)``."""
    cell, act = _codes(kernel, cell, act)
    kc.float_array(kernel, "params", params, ndim=1)
    dt = params.dtype
    kc.float_array(kernel, "X", X, ndim=3, dtype=dt)
    T, B, D = X.shape
    if T < 1 or B < 1 or D < 1:
        raise ValueError(f"{kernel}: X must have shape (T, B, D) with T, B, D >= 1, got {X.shape}")
    kc.float_array(kernel, "HS", HS, ndim=3, dtype=dt)
    H = HS.shape[2]
    if H < 1:
        raise ValueError(f"{kernel}: HS must have at least one unit, got shape {HS.shape}")
    G = _gates(cell, H)
    kc.shape(kernel, "HS", HS, (T + 1, B, H))
    kc.writable(kernel, "HS", HS)
    kc.shape(kernel, "params", params, ((1 + D + H) * G,))
    _lengths(kernel, lengths, B, T)
    kc.float_array(kernel, "CS", CS, ndim=3, dtype=dt)
    if cell == Cell.LSTM:
        kc.shape(kernel, "CS", CS, (T + 1, B, H))
        kc.writable(kernel, "CS", CS)
    kc.float_array(kernel, "GS", GS, ndim=3, dtype=dt)
    kc.shape(kernel, "GS", GS, (T, B, G))
    kc.writable(kernel, "GS", GS)
    return cell, act, T, B, D, H, G


def backward_call(kernel, cell, act, params, X, lengths, HS, CS, GS, dY, dh, dc, grad, dX):
    """Check the arguments of ``rnn_backward``; returns ``(cell, act, T, B, D, H, G, has_dy, need_dx)``."""
    cell, act, T, B, D, H, G = layer_call(kernel, cell, act, params, X, lengths, HS, CS, GS)
    dt = X.dtype
    kc.float_array(kernel, "dY", dY, ndim=3, dtype=dt)
    has_dy = dY.size > 0
    if has_dy:
        kc.shape(kernel, "dY", dY, (T, B, H))
    kc.float_array(kernel, "dh", dh, ndim=2, dtype=dt)
    kc.shape(kernel, "dh", dh, (B, H))
    kc.writable(kernel, "dh", dh)
    kc.float_array(kernel, "dc", dc, ndim=2, dtype=dt)
    if cell == Cell.LSTM:
        kc.shape(kernel, "dc", dc, (B, H))
        kc.writable(kernel, "dc", dc)
    kc.float_array(kernel, "grad", grad, ndim=1, dtype=dt)
    kc.shape(kernel, "grad", grad, params.shape)
    kc.writable(kernel, "grad", grad)
    kc.float_array(kernel, "dX", dX, ndim=3, dtype=dt)
    need_dx = dX.size > 0
    if need_dx:
        kc.shape(kernel, "dX", dX, X.shape)
        kc.writable(kernel, "dX", dX)
    return cell, act, T, B, D, H, G, has_dy, need_dx


def network(kernel, cell, params, sizes):
    """Check a network ``sizes = [D, H_1, ..., H_L, K]`` and its ``params``; returns the offsets."""
    kc.int_array(kernel, "sizes", sizes)
    if sizes.shape[0] < 3 or (sizes < 1).any():
        raise ValueError(f"{kernel}: sizes must be [D, H_1, ..., H_L, K] with at least one "
                         f"recurrent layer and every width >= 1, got {sizes.tolist()}")
    offs = [0]
    for l in range(1, sizes.shape[0] - 1):
        offs.append(offs[-1] + (1 + int(sizes[l - 1]) + int(sizes[l])) * _gates(cell, int(sizes[l])))
    offs.append(offs[-1] + (int(sizes[-2]) + 1) * int(sizes[-1]))
    kc.float_array(kernel, "params", params, ndim=1)
    kc.writable(kernel, "params", params)
    if params.shape[0] != offs[-1]:
        raise ValueError(f"{kernel}: params has {params.shape[0]} entries, expected {offs[-1]} "
                         f"for a {CELLS[cell]} network of sizes {sizes.tolist()}")
    return np.array(offs, dtype=np.int64)


def _training(kernel, params, optimizer, lr, mu, rho, eps, clip, state, t):
    optimizer = kc.code(kernel, "optimizer", optimizer, kc.OPTIMIZERS)
    vals = [kc.real(kernel, n, v) for n, v in (("lr", lr), ("mu", mu), ("rho", rho),
                                              ("eps", eps), ("clip", clip))]
    if not vals[-1] > 0:
        raise ValueError(f"{kernel}: clip must be > 0 (inf: no clipping), got {clip}")
    kc.float_array(kernel, "state", state, ndim=1, dtype=params.dtype)
    kc.shape(kernel, "state", state, (2 * params.shape[0],))
    kc.writable(kernel, "state", state)
    t = kc.integer(kernel, "t", t, 0)
    return (optimizer, *vals, t)


def seq_epoch_call(kernel, cell, act, params, sizes, X, lengths, y, order, batch_size, optimizer,
                   lr, mu, rho, eps, clip, state, t):
    """Check the arguments of ``rnn_seq_epoch``; returns the normalised scalars."""
    cell, act = _codes(kernel, cell, act)
    network(kernel, cell, params, sizes)
    kc.float_array(kernel, "X", X, ndim=3, dtype=params.dtype)
    n, T, D = X.shape
    if n < 1 or T < 1 or D != sizes[0]:
        raise ValueError(f"{kernel}: X must have shape (n, T, D={int(sizes[0])}) with n, T >= 1, "
                         f"got {X.shape}")
    _lengths(kernel, lengths, n, T)
    kc.int_array(kernel, "y", y)
    kc.shape(kernel, "y", y, (n,))
    if y.min() < 0 or y.max() >= sizes[-1]:
        raise ValueError(f"{kernel}: labels y must be in [0, {int(sizes[-1])}), got values in "
                         f"[{int(y.min())}, {int(y.max())}]")
    kc.int_array(kernel, "order", order)
    if order.shape[0] < 1 or order.min() < 0 or order.max() >= n:
        raise ValueError(f"{kernel}: order must hold at least one sample index in [0, {n})")
    batch_size = kc.integer(kernel, "batch_size", batch_size, 1)
    return (cell, act, batch_size) + _training(kernel, params, optimizer, lr, mu, rho, eps, clip,
                                               state, t)


def lm_epoch_call(kernel, cell, act, params, sizes, tokens, seq_len, hs, cs, optimizer, lr, mu,
                  rho, eps, clip, state, t):
    """Check the arguments of ``rnn_lm_epoch``; returns the normalised scalars."""
    cell, act = _codes(kernel, cell, act)
    network(kernel, cell, params, sizes)
    V = int(sizes[0])
    if sizes[-1] != V:
        raise ValueError(f"{kernel}: a language model predicts its own symbols: sizes must be "
                         f"[V, H_1, ..., V], got {sizes.tolist()}")
    kc.int_array(kernel, "tokens", tokens, ndim=2)
    B, N1 = tokens.shape
    if B < 1 or N1 < 2:
        raise ValueError(f"{kernel}: tokens must have shape (B, N + 1) with B >= 1, N >= 1, got "
                         f"{tokens.shape}")
    if tokens.min() < 0 or tokens.max() >= V:
        raise ValueError(f"{kernel}: tokens must be in [0, {V}), got values in "
                         f"[{int(tokens.min())}, {int(tokens.max())}]")
    seq_len = kc.integer(kernel, "seq_len", seq_len, 1)
    width = B * int(sizes[1:-1].sum())
    for name, arr in (("hs", hs), ("cs", cs)):
        kc.float_array(kernel, name, arr, ndim=1, dtype=params.dtype)
        if name == "hs" or cell == Cell.LSTM:
            kc.shape(kernel, name, arr, (width,))
            kc.writable(kernel, name, arr)
    return (cell, act, seq_len) + _training(kernel, params, optimizer, lr, mu, rho, eps, clip,
                                            state, t)


def clip_call(kernel, grad, max_norm):
    kc.float_array(kernel, "grad", grad, ndim=1)
    kc.writable(kernel, "grad", grad)
    max_norm = kc.real(kernel, "max_norm", max_norm)
    if not max_norm > 0:
        raise ValueError(f"{kernel}: max_norm must be > 0 (inf: no clipping), got {max_norm}")
    return max_norm
