r"""Row kernels: one sample (or a panel of four) against the rows of a weight matrix.

With the flat layout of :mod:`fastnet._params` the outgoing weights of input
unit ``i`` of layer ``l`` are the contiguous row
``W[o + (i+1) n : o + (i+2) n]`` (``o`` the layer's offset, ``n`` its width;
row 0 is the bias), so a layer's pre-activation is a sum of rows

.. math:: z = W_0 + \sum_{i} v_i W_{i+1}

and one sample's gradient is the rank-1 update :math:`W_{i+1} \mathrel{+}= v_i\,\delta`
of the same rows.  Every kernel here takes the rows it works on as a list
of indices ``idx[:c]``: all of them (the dense online path) or only the
inputs that are not exactly zero (the zero-skipping path: MNIST's pixels
are about 80 % zeros, and the result differs only in the order of the
sums).  The loops are plain Python that LLVM vectorises along the row;
they are *register-blocked*: four rows per pass, so the output accumulators
are loaded and stored once per four rows and every weight row is read once
per pass.

Online learning applies each sample's update at once, so its passes over
the weights are what it costs.  :func:`rows_fused` updates the rows of
layer 0 with the previous sample's rank-1 step and accumulates the next
sample's forward pass over the same rows in the same pass (one pass over
``W_0`` per sample instead of two, the same arithmetic);
:func:`rows_dot_update` computes the error term sent to the layer below from
each old row and updates that row in the same pass.
"""
import numpy as np
from numba import njit

from fastnet._numba._common import JIT, JIT_FAST, dact_from_a


@njit(**JIT_FAST)
def _row(W, o, n, i):
    """Row ``i + 1`` (input unit ``i``'s weights) of the layer at offset ``o`` of width ``n``.

    The loops index rows through such views with ``range`` counters, which
    LLVM knows to be non-negative: an index it cannot prove non-negative
    (``W[o + k]``) gets Numba's negative-index wraparound, which stops the
    loop from vectorising.
    """
    s = o + (i + 1) * n
    return W[s:s + n]


# ------------------------------------------------------------------- index lists
@njit(**JIT_FAST)
def compact_nonzero(v, idx):
    """``idx[:c]`` = the indices of the entries of ``v`` that are not 0 (NaN is); returns ``c``."""
    c = 0
    for i in range(v.shape[0]):
        idx[c] = i
        c += v[i] != 0
    return c


@njit(**JIT_FAST)
def compact_union2(v0, v1, idx):
    """Indices where ``v0`` or ``v1`` is not 0."""
    c = 0
    for i in range(v0.shape[0]):
        idx[c] = i
        c += (v0[i] != 0) | (v1[i] != 0)
    return c


@njit(**JIT_FAST)
def compact_union4(v0, v1, v2, v3, idx):
    """Indices where any of the four vectors is not 0."""
    c = 0
    for i in range(v0.shape[0]):
        idx[c] = i
        c += (v0[i] != 0) | (v1[i] != 0) | (v2[i] != 0) | (v3[i] != 0)
    return c


@njit(**JIT_FAST)
def fill_range(idx, n):
    """``idx[:n] = 0..n-1`` (every row); returns ``n``."""
    for i in range(n):
        idx[i] = i
    return n


# ------------------------------------------------------------------ one sample
@njit(**JIT_FAST)
def rows_forward(W, o, n, idx, c, v, z):
    r""":math:`z \mathrel{+}= \sum_t v_{i_t} W_{i_t+1}` over the rows ``idx[:c]``."""
    t = 0
    while t + 4 <= c:
        i0, i1, i2, i3 = idx[t], idx[t + 1], idx[t + 2], idx[t + 3]
        v0, v1, v2, v3 = v[i0], v[i1], v[i2], v[i3]
        w0, w1, w2, w3 = _row(W, o, n, i0), _row(W, o, n, i1), _row(W, o, n, i2), _row(W, o, n, i3)
        for k in range(n):
            z[k] += (v0 * w0[k] + v1 * w1[k]) + (v2 * w2[k] + v3 * w3[k])
        t += 4
    while t < c:
        i0 = idx[t]
        v0 = v[i0]
        w0 = _row(W, o, n, i0)
        for k in range(n):
            z[k] += v0 * w0[k]
        t += 1


@njit(**JIT_FAST)
def rows_update(W, o, n, idx, c, u, cu, d, decay):
    r""":math:`W_{i+1} \leftarrow \mathrm{decay}\, W_{i+1} + (c_u u_i)\, d` for rows ``idx[:c]``."""
    for t in range(c):
        i0 = idx[t]
        u0 = cu * u[i0]
        w0 = _row(W, o, n, i0)
        for k in range(n):
            w0[k] = w0[k] * decay + u0 * d[k]


@njit(**JIT_FAST)
def rows_fused(W, o, n, idx, c, u, cu, d, decay, v, z):
    r"""For the rows ``idx[:c]``: :math:`W_{i+1} \leftarrow \mathrm{decay}\,W_{i+1} + (c_u u_i)\,d`,
    then :math:`z \mathrel{+}= v_i W_{i+1}` with the updated row, in one pass.

    Online learning's layer 0: the previous sample's step (input ``u``, error
    term ``d``, ``cu = -lr``) and the next sample's forward pass (input ``v``).
    """
    t = 0
    while t + 4 <= c:
        i0, i1, i2, i3 = idx[t], idx[t + 1], idx[t + 2], idx[t + 3]
        u0, u1, u2, u3 = cu * u[i0], cu * u[i1], cu * u[i2], cu * u[i3]
        v0, v1, v2, v3 = v[i0], v[i1], v[i2], v[i3]
        q0, q1, q2, q3 = _row(W, o, n, i0), _row(W, o, n, i1), _row(W, o, n, i2), _row(W, o, n, i3)
        for k in range(n):
            dk = d[k]
            w0 = q0[k] * decay + u0 * dk
            w1 = q1[k] * decay + u1 * dk
            w2 = q2[k] * decay + u2 * dk
            w3 = q3[k] * decay + u3 * dk
            q0[k] = w0
            q1[k] = w1
            q2[k] = w2
            q3[k] = w3
            z[k] += (v0 * w0 + v1 * w1) + (v2 * w2 + v3 * w3)
        t += 4
    while t < c:
        i0 = idx[t]
        u0 = cu * u[i0]
        v0 = v[i0]
        q0 = _row(W, o, n, i0)
        for k in range(n):
            w0 = q0[k] * decay + u0 * d[k]
            q0[k] = w0
            z[k] += v0 * w0
        t += 1


@njit(**JIT_FAST)
def block_fused(W, o, n, nin, u, cu, d, decay, v, z):
    """:func:`rows_fused` over every row (the dense path): four consecutive rows are one view
    indexed with unsigned offsets (no per-row views, no wraparound: less set-up per pass)."""
    nu = np.uint64(n)
    i = 0
    while i + 4 <= nin:
        s = o + (i + 1) * n
        blk = W[s:s + 4 * n]
        u0, u1, u2, u3 = cu * u[i], cu * u[i + 1], cu * u[i + 2], cu * u[i + 3]
        v0, v1, v2, v3 = v[i], v[i + 1], v[i + 2], v[i + 3]
        for k in range(nu):
            dk = d[k]
            w0 = blk[k] * decay + u0 * dk
            w1 = blk[nu + k] * decay + u1 * dk
            w2 = blk[2 * nu + k] * decay + u2 * dk
            w3 = blk[3 * nu + k] * decay + u3 * dk
            blk[k] = w0
            blk[nu + k] = w1
            blk[2 * nu + k] = w2
            blk[3 * nu + k] = w3
            z[k] += (v0 * w0 + v1 * w1) + (v2 * w2 + v3 * w3)
        i += 4
    while i < nin:
        u0 = cu * u[i]
        v0 = v[i]
        q0 = _row(W, o, n, i)
        for k in range(n):
            w0 = q0[k] * decay + u0 * d[k]
            q0[k] = w0
            z[k] += v0 * w0
        i += 1


@njit(**JIT_FAST)
def block_forward(W, o, n, nin, v, z):
    """:func:`rows_forward` over every row (the dense path), four consecutive rows a view."""
    nu = np.uint64(n)
    i = 0
    while i + 4 <= nin:
        s = o + (i + 1) * n
        blk = W[s:s + 4 * n]
        v0, v1, v2, v3 = v[i], v[i + 1], v[i + 2], v[i + 3]
        for k in range(nu):
            z[k] += (v0 * blk[k] + v1 * blk[nu + k]) + (v2 * blk[2 * nu + k] + v3 * blk[3 * nu + k])
        i += 4
    while i < nin:
        v0 = v[i]
        q0 = _row(W, o, n, i)
        for k in range(n):
            z[k] += v0 * q0[k]
        i += 1


@njit(**JIT_FAST)
def rows_dot_update(W, o, n, nin, a, kind, d, cu, decay, dp):
    r"""For every row :math:`j`: :math:`dp_j = (W_{j+1}\cdot d)\, f'(a_j)` with the old row, then
    :math:`W_{j+1} \leftarrow \mathrm{decay}\,W_{j+1} + (c_u a_j)\, d`, in one pass.

    Online learning's layers above the first: the error term for the layer
    below (``kind`` is that layer's activation, ``a`` its output) and this
    layer's step.  The bias row is left to the caller.
    """
    T = W.dtype.type
    j = 0
    while j + 4 <= nin:
        u0, u1, u2, u3 = cu * a[j], cu * a[j + 1], cu * a[j + 2], cu * a[j + 3]
        q0, q1, q2, q3 = _row(W, o, n, j), _row(W, o, n, j + 1), _row(W, o, n, j + 2), \
            _row(W, o, n, j + 3)
        s0 = T(0)
        s1 = T(0)
        s2 = T(0)
        s3 = T(0)
        for k in range(n):
            dk = d[k]
            w0 = q0[k]
            w1 = q1[k]
            w2 = q2[k]
            w3 = q3[k]
            s0 += w0 * dk
            s1 += w1 * dk
            s2 += w2 * dk
            s3 += w3 * dk
            q0[k] = w0 * decay + u0 * dk
            q1[k] = w1 * decay + u1 * dk
            q2[k] = w2 * decay + u2 * dk
            q3[k] = w3 * decay + u3 * dk
        dp[j] = s0 * dact_from_a(kind, a[j])
        dp[j + 1] = s1 * dact_from_a(kind, a[j + 1])
        dp[j + 2] = s2 * dact_from_a(kind, a[j + 2])
        dp[j + 3] = s3 * dact_from_a(kind, a[j + 3])
        j += 4
    while j < nin:
        u0 = cu * a[j]
        q0 = _row(W, o, n, j)
        s0 = T(0)
        for k in range(n):
            w0 = q0[k]
            s0 += w0 * d[k]
            q0[k] = w0 * decay + u0 * d[k]
        dp[j] = s0 * dact_from_a(kind, a[j])
        j += 1
