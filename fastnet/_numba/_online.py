r"""Online learning (batch 1, plain SGD, no penalty or L2): each sample's step applied at once.

Per sample, with the row kernels of :mod:`fastnet._numba._rows`:

1. layer 0: the *previous* sample's pending step and this sample's forward
   pass in one pass over :math:`W_0` (:func:`~fastnet._numba._rows.rows_fused`);
2. the layers above: forward (:func:`~fastnet._numba._rows.rows_forward`);
3. the output error term and the loss (:func:`~fastnet._numba._elementwise.loss_delta`);
4. from the top down to layer 1: the error term for the layer below from the
   old rows and this layer's step in one pass
   (:func:`~fastnet._numba._rows.rows_dot_update`); layer 0's step waits for
   the next sample's pass.

So :math:`W_0`, the largest matrix (940 KB for 784-256-128-10 in float32,
more than a core's L2 here), is read and written once per sample.  This is
exactly the arithmetic of a batch of one: each layer's error term is taken
from its weights before their step, and every forward pass sees every
earlier step.  With ``skip_zeros`` the passes visit only the rows of inputs
that are not exactly zero (the zero-skipping path; for layer 0 the union of
the previous and the current sample's non-zero pixels); an L2 penalty
(``decay`` :math:`= 1 - \eta\lambda` on every weight row, never on the bias)
touches every row, so it needs ``skip_zeros=False``.
"""
import numpy as np
from numba import njit

from fastnet._numba._common import JIT, copy_into
from fastnet._numba._elementwise import act_inplace, loss_delta
from fastnet._numba._rows import (block_forward, block_fused, compact_nonzero, compact_union2,
                                  fill_range, rows_forward, rows_update, rows_fused,
                                  rows_dot_update)


@njit(**JIT)
def online_epoch(params, sizes, widths, kinds, loss_kind, X, Y, order, lr, decay, skip_zeros,
                 blocks=True):
    """One epoch of online SGD over the samples ``order``; returns the summed loss.

    ``widths``: the row width of each layer in ``params``: ``sizes[1:]`` in the packed
    layout, or :func:`fastnet._params.padded_layout`'s (whose padding is zeros and stays
    zeros: its error terms are zero).
    """
    L = kinds.shape[0]
    wd = widths
    offs = np.zeros(L + 1, np.int64)
    T = params.dtype.type
    cu = T(-lr)
    dec = T(decay)
    widest = 1
    aoff = np.zeros(L + 1, np.int64)
    for l in range(L):
        offs[l + 1] = offs[l] + (sizes[l] + 1) * wd[l]
        aoff[l + 1] = aoff[l] + (wd[l] + 15) // 16 * 16
        widest = max(widest, wd[l], sizes[l])
    acts = np.zeros(aoff[L], params.dtype)
    idx = np.empty(widest, np.int64)
    full = np.empty(widest, np.int64)
    fill_range(full, widest)
    d = np.zeros(widest, params.dtype)
    dp = np.zeros(widest, params.dtype)
    pend = np.zeros(wd[0], params.dtype)     # layer 0's pending error term
    xprev = np.zeros(sizes[0], params.dtype)   # ... and its input
    has_prev = False
    prev = 0
    n0 = sizes[0]
    n1 = wd[0]
    total = 0.0
    for s in range(order.shape[0]):
        r = order[s]
        x = X[r]
        up = X[prev] if has_prev else xprev
        # ---- layer 0: pending step of the previous sample + this sample's forward
        z = acts[0:n1]
        for k in range(n1):
            b = params[k] + cu * pend[k]
            params[k] = b
            z[k] = b
        if skip_zeros:
            c = compact_union2(up, x, idx)
            rows_fused(params, 0, n1, idx, c, up, cu, pend, dec, x, z)
        elif blocks:  # (no pending step before the first sample: no decay either)
            block_fused(params, 0, n1, n0, up, cu, pend, dec if has_prev else T(1), x, z)
        else:
            rows_fused(params, 0, n1, full, n0, up, cu, pend, dec if has_prev else T(1), x, z)
        act_inplace(kinds[0], z[:sizes[1]])
        # ---- layers above: forward
        for l in range(1, L):
            n = wd[l]
            o = offs[l]
            v = acts[aoff[l - 1]:aoff[l - 1] + sizes[l]]
            z = acts[aoff[l]:aoff[l] + n]
            copy_into(z, params[o:o + n])
            if skip_zeros:
                c = compact_nonzero(v, idx)
                rows_forward(params, o, n, idx, c, v, z)
            elif blocks:
                block_forward(params, o, n, sizes[l], v, z)
            else:
                rows_forward(params, o, n, full, sizes[l], v, z)
            act_inplace(kinds[l], z[:sizes[l + 1]])
        # ---- output error term, then the steps from the top down to layer 1
        total += loss_delta(kinds[L - 1], loss_kind, acts[aoff[L - 1]:aoff[L - 1] + sizes[L]],
                            Y[r], d)
        for k in range(sizes[L], wd[L - 1]):  # (d and dp swap: either may hold old entries)
            d[k] = 0
        for l in range(L - 1, 0, -1):
            n = wd[l]
            o = offs[l]
            rows_dot_update(params, o, n, sizes[l], acts[aoff[l - 1]:aoff[l - 1] + sizes[l]],
                            kinds[l - 1], d, cu, dec, dp)
            for k in range(n):
                params[o + k] += cu * d[k]
            d, dp = dp, d
            for k in range(sizes[l], wd[l - 1]):  # the padding's error terms stay zero
                d[k] = 0
        copy_into(pend, d)
        prev = r
        has_prev = True
    # ---- the last sample's step of layer 0
    if has_prev:
        up = X[prev]
        for k in range(n1):
            params[k] += cu * pend[k]
        if skip_zeros:
            c = compact_nonzero(up, idx)
            rows_update(params, 0, n1, idx, c, up, cu, pend, dec)
        else:
            rows_update(params, 0, n1, full, n0, up, cu, pend, dec)
    return total
