"""The flat parameter layout every kernel works on.

A network with layer widths ``sizes = [n0, n1, ..., nL]`` keeps all its
weights in one contiguous 1-D array ``params``.  Layer ``l`` (0-based) owns
the block ``params[off[l]:off[l+1]]``, which holds ``Theta_l.T``: an array of
shape ``(n_l + 1, n_{l+1})`` in C order whose row 0 is the bias.  So

* ``Z = X @ W[1:] + W[0]`` is one matrix product on contiguous memory (the
  bias is folded in: no column of ones is ever concatenated);
* each input unit's outgoing weights are one contiguous row, which the
  per-sample kernels exploit (zero inputs are skipped);
* optimisers and penalties are loops over one flat vector.

The online (batch 1) kernels run an epoch on a *padded* copy
(:func:`padded_layout`): each layer's rows rounded up to whole 32-byte
vectors with zeros, on 64-byte boundaries, so that their row loops have no
scalar tail and no load split across two cache lines.

The course's ``Theta`` of shape ``(L_out, L_in + 1)`` (bias in column 0) is
``W.T``; :func:`pack` and :func:`unpack` convert, once per public call.
"""
import numpy as np

__all__ = ["layer_offsets", "n_params", "pack", "unpack", "unpack_into", "layer_views",
           "sizes_of", "padded_layout", "aligned_zeros", "pad_into", "unpad_into"]


def sizes_of(thetas) -> np.ndarray:
    """Layer widths ``[n0, n1, ..., nL]`` (int64) of a list of Thetas."""
    shapes = [np.shape(t) for t in thetas]
    return np.array([shapes[0][1] - 1] + [s[0] for s in shapes], dtype=np.int64)


def layer_offsets(sizes) -> np.ndarray:
    """Start of each layer's block in ``params`` (length L + 1, last = total size)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    blocks = (sizes[:-1] + 1) * sizes[1:]
    return np.concatenate(([0], np.cumsum(blocks))).astype(np.int64)


def n_params(sizes) -> int:
    """Number of parameters (weights and biases) of a network with these widths."""
    return int(layer_offsets(sizes)[-1])


def layer_views(params, sizes):
    """Views ``W_l`` of shape ``(n_l + 1, n_{l+1})`` into ``params`` (row 0 = bias)."""
    off = layer_offsets(sizes)
    return [params[off[l]:off[l + 1]].reshape(sizes[l] + 1, sizes[l + 1])
            for l in range(len(sizes) - 1)]


def pack(thetas, dtype=np.float64) -> np.ndarray:
    """The flat parameter vector of a list of course-layout Thetas."""
    sizes = sizes_of(thetas)
    params = np.empty(n_params(sizes), dtype=dtype)
    for W, theta in zip(layer_views(params, sizes), thetas):
        W[...] = np.asarray(theta).T
    return params


def unpack(params, sizes):
    """New course-layout Thetas ``(n_{l+1}, n_l + 1)`` from the flat vector."""
    return [np.ascontiguousarray(W.T) for W in layer_views(params, sizes)]


def unpack_into(params, sizes, thetas):
    """Copy the flat vector back into existing Thetas (in place)."""
    for W, theta in zip(layer_views(params, sizes), thetas):
        theta[...] = W.T


#: the online kernels' rows are padded to a multiple of this many bytes (one AVX2 vector)
PAD_BYTES = 32


def padded_layout(sizes, itemsize):
    """``(widths, offs)`` of the padded layout: layer ``l``'s ``n_l + 1`` rows hold
    ``widths[l]`` entries (``n_{l+1}`` rounded up to whole ``PAD_BYTES`` vectors, the rest
    zeros) and start at ``offs[l]`` (length L + 1, last = total size)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    lanes = PAD_BYTES // int(itemsize)
    widths = (-(-sizes[1:] // lanes) * lanes).astype(np.int64)
    blocks = (sizes[:-1] + 1) * widths
    return widths, np.concatenate(([0], np.cumsum(blocks))).astype(np.int64)


def aligned_zeros(n, dtype, align=64):
    """``n`` zeros of ``dtype`` whose first entry is on an ``align``-byte boundary."""
    item = np.dtype(dtype).itemsize
    buf = np.zeros(int(n) + align // item, dtype=dtype)
    start = (-buf.ctypes.data % align) // item
    return buf[start:start + int(n)]


def _padded_views(buf, sizes, widths, offs):
    return [buf[offs[l]:offs[l + 1]].reshape(int(sizes[l]) + 1, int(widths[l]))
            for l in range(len(sizes) - 1)]


def pad_into(params, sizes, padded, widths, offs):
    """Copy the flat vector ``params`` into the padded layout ``padded`` (its padding is
    left as it is: zeros from :func:`aligned_zeros`)."""
    for W, Q in zip(layer_views(params, sizes), _padded_views(padded, sizes, widths, offs)):
        Q[:, :W.shape[1]] = W


def unpad_into(padded, sizes, widths, offs, params):
    """Copy the real units of the padded layout back into the flat vector ``params``."""
    for W, Q in zip(layer_views(params, sizes), _padded_views(padded, sizes, widths, offs)):
        W[...] = Q[:, :W.shape[1]]
