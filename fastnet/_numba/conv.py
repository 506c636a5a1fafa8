r"""The convolution and pooling kernels, compiled with Numba (and the helpers of
:mod:`fastnet._numba.sequential`, which runs whole layer programs).

Same names, signatures and in-place conventions as :mod:`fastnet.reference.conv`
(read its docstrings for the meaning of every argument); each kernel of
:data:`KERNELS` is a Python wrapper that checks its arguments once
(:mod:`fastnet._conv_checks`) and calls one ``@njit`` function.

How a convolution is computed
-----------------------------
Images are channels-last, so the ``K = kh*kw*C`` inputs under one output
pixel's window are ``kh`` contiguous runs of ``kw*C`` values.  A block of
images is unfolded into a matrix of patches (*im2col*: one row per output
pixel, zeros where the window leaves the padded image), and

* forward: ``Z = cols @ W[1:]`` -- one BLAS GEMM (``np.dot``) whose result
  rows are the output pixels in channels-last order, straight into the
  layer's output buffer; the epilogue adds the bias and applies the
  activation in the same pass;
* backward, weights: ``dW[1:] += cols.T @ dZ``, ``dW[0] += sum(dZ)``;
* backward, input: ``dcols = dZ @ W[1:].T``, folded back onto the image
  (*col2im*, adding where windows overlap).

The blocks hold about :data:`COLS_BYTES` of patches, so that the patch
matrix is still in cache when the GEMM reads it; the gradient of the
weights is summed block after block, always in the same order.

These kernels are serial; :mod:`fastnet._numba.sequential` splits batches
over threads by images.  BLAS runs with one thread inside them
(:func:`fastnet._blas.single_threaded`).
"""
import numpy as np
from numba import njit

from fastnet import _kernel_checks as kc
from fastnet import _conv_checks as cc
from fastnet._codes import Act, LayerKind, Loss
from fastnet._blas import single_threaded
from fastnet._conv_plan import COLS_BYTES, conv_block_images
from fastnet._numba._common import LOG_CLIP, act, dact_from_a

__all__ = ["KERNELS"]


# integer codes as module constants (numba freezes them at compile time)
_LINEAR, _SIGMOID, _RELU, _TANH, _SOFTMAX = (int(Act.LINEAR), int(Act.SIGMOID), int(Act.RELU),
                                             int(Act.TANH), int(Act.SOFTMAX))
_CE, _QUAD, _LOGLOSS = int(Loss.CROSS_ENTROPY), int(Loss.QUADRATIC), int(Loss.LOG_LOSS)
_DENSE, _CONV, _MAXPOOL, _AVGPOOL, _FLATTEN, _ACTIVATION, _TIED = (
    int(LayerKind.DENSE), int(LayerKind.CONV2D), int(LayerKind.MAXPOOL2D),
    int(LayerKind.AVGPOOL2D), int(LayerKind.FLATTEN), int(LayerKind.ACTIVATION),
    int(LayerKind.DENSE_TIED))


# ============================================================== elementwise helpers
@njit(cache=True)
def _activate_rows(kind, Z):
    """``Z[...] = f(Z)`` in place for a 2-D ``Z`` (softmax: over each row)."""
    if kind == _LINEAR:
        return
    if kind == _SOFTMAX:
        for r in range(Z.shape[0]):
            z = Z[r]
            mx = z[0]
            for k in range(1, z.shape[0]):
                if z[k] > mx:
                    mx = z[k]
            s = 0.0
            for k in range(z.shape[0]):
                e = np.exp(z[k] - mx)
                z[k] = e
                s += e
            inv = z.dtype.type(s)
            for k in range(z.shape[0]):
                z[k] = z[k] / inv
        return
    flat = Z.reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = act(kind, flat[i])


@njit(cache=True)
def _bias_act(Z, b, kind):
    """The fused epilogue: ``Z[r] = f(Z[r] + b)`` for every row ``r``."""
    F = Z.shape[1]
    for r in range(Z.shape[0]):
        z = Z[r]
        if kind == _RELU:
            for f in range(F):
                v = z[f] + b[f]
                z[f] = v if v > 0 else 0
        else:
            for f in range(F):
                z[f] += b[f]
            if kind != _LINEAR and kind != _SOFTMAX:
                for f in range(F):
                    z[f] = act(kind, z[f])
    if kind == _SOFTMAX:
        _activate_rows(kind, Z)


@njit(cache=True)
def _times_dact(kind, D, A):
    """``D *= f'(z)`` computed from the outputs ``A`` (same shape, flat views)."""
    if kind == _LINEAR:
        return
    for i in range(D.shape[0]):
        D[i] *= dact_from_a(kind, A[i])


@njit(cache=True)
def _loss_delta(kind, loss_kind, a, y, d):
    """The loss of one sample (float64) and its output error term ``d`` (as the reference)."""
    total = 0.0
    n = a.shape[0]
    for k in range(n):
        ak = np.float64(a[k])
        yk = np.float64(y[k])
        if loss_kind == _QUAD:
            total += 0.5 * (ak - yk) * (ak - yk)
        elif loss_kind == _CE:
            total -= yk * np.log(max(ak, LOG_CLIP)) + (1.0 - yk) * np.log(max(1.0 - ak, LOG_CLIP))
        else:
            total -= yk * np.log(max(ak, LOG_CLIP))
    if (kind == _SIGMOID and loss_kind == _CE) or (kind == _SOFTMAX and loss_kind == _LOGLOSS):
        for k in range(n):
            d[k] = a[k] - y[k]
        return total
    for k in range(n):
        ak = a[k]
        if loss_kind == _QUAD:
            g = ak - y[k]
        else:
            g = -y[k] / ak if ak > LOG_CLIP else 0 * ak
            if loss_kind == _CE:
                one = type(ak)(1)
                g = g + ((one - y[k]) / (one - ak) if one - ak > LOG_CLIP else 0 * ak)
        d[k] = g * dact_from_a(kind, ak)
    return total


# ===================================================================== convolution
@njit(cache=True)
def _im2col(X, n0, n1, H, W, C, kh, kw, s, ph, pw, Ho, Wo, cols):
    """Unfold images ``n0 <= n < n1`` of ``X`` (rows of H*W*C values) into ``cols``
    (one row of ``kh*kw*C`` values per output pixel; zeros outside the image)."""
    run = kw * C
    r = 0
    for n in range(n0, n1):
        x = X[n]
        for oy in range(Ho):
            for ox in range(Wo):
                crow = cols[r]
                x0 = ox * s - pw
                lo = max(0, -x0)
                hi = min(kw, W - x0)
                for dy in range(kh):
                    iy = oy * s + dy - ph
                    base = dy * run
                    if iy < 0 or iy >= H or hi <= lo:
                        for q in range(run):
                            crow[base + q] = 0
                        continue
                    for q in range(lo * C):
                        crow[base + q] = 0
                    src = (iy * W + x0 + lo) * C - lo * C
                    for q in range(lo * C, hi * C):
                        crow[base + q] = x[src + q]
                    for q in range(hi * C, run):
                        crow[base + q] = 0
                r += 1


@njit(cache=True)
def _col2im(dcols, n0, n1, H, W, C, kh, kw, s, ph, pw, Ho, Wo, dX):
    """Fold ``dcols`` back onto images ``n0 <= n < n1`` of ``dX`` (zeroed first), adding."""
    run = kw * C
    for n in range(n0, n1):
        d = dX[n]
        for q in range(d.shape[0]):
            d[q] = 0
    r = 0
    for n in range(n0, n1):
        d = dX[n]
        for oy in range(Ho):
            for ox in range(Wo):
                crow = dcols[r]
                x0 = ox * s - pw
                lo = max(0, -x0)
                hi = min(kw, W - x0)
                for dy in range(kh):
                    iy = oy * s + dy - ph
                    if iy < 0 or iy >= H or hi <= lo:
                        continue
                    base = dy * run
                    dst = (iy * W + x0 + lo) * C - lo * C
                    for q in range(lo * C, hi * C):
                        d[dst + q] += crow[base + q]
                r += 1


@njit(cache=True)
def _conv_forward(X, Wb, H, W, C, kh, kw, s, ph, pw, Ho, Wo, F, kind, out, cols, nb):
    """``out`` (m, Ho*Wo*F) = f(conv(X) + b) with ``Wb`` the (1 + K, F) block."""
    m = X.shape[0]
    npix = Ho * Wo
    Wm = Wb[1:]
    K = Wm.shape[0]
    b = Wb[0]
    for n0 in range(0, m, nb):
        n1 = min(m, n0 + nb)
        rows = (n1 - n0) * npix
        c = cols[:rows * K].reshape((rows, K))
        _im2col(X, n0, n1, H, W, C, kh, kw, s, ph, pw, Ho, Wo, c)
        Z = out[n0:n1].reshape((rows, F))
        np.dot(c, Wm, Z)
        _bias_act(Z, b, kind)


@njit(cache=True)
def _conv_backward(X, Wb, D, H, W, C, kh, kw, s, ph, pw, Ho, Wo, F, G, dX, need_input, cols,
                   dcols, tmp, nb):
    """``G`` (1 + K, F) += the gradient of the block; ``dX`` = dJ/dX when ``need_input``.

    ``D`` is (m, Ho*Wo*F), dJ/dz of the convolution's outputs.
    """
    m = X.shape[0]
    npix = Ho * Wo
    Wm = Wb[1:]
    K = Wm.shape[0]
    g0 = G[0]
    Gw = G[1:]
    for n0 in range(0, m, nb):
        n1 = min(m, n0 + nb)
        rows = (n1 - n0) * npix
        c = cols[:rows * K].reshape((rows, K))
        _im2col(X, n0, n1, H, W, C, kh, kw, s, ph, pw, Ho, Wo, c)
        Dz = D[n0:n1].reshape((rows, F))
        np.dot(c.T, Dz, tmp)
        for k in range(Gw.shape[0]):
            gk = Gw[k]
            tk = tmp[k]
            for f in range(F):
                gk[f] += tk[f]
        for r in range(rows):
            dr = Dz[r]
            for f in range(F):
                g0[f] += dr[f]
        if need_input:
            dc = dcols[:rows * K].reshape((rows, K))
            np.dot(Dz, Wm.T, dc)
            _col2im(dc, n0, n1, H, W, C, kh, kw, s, ph, pw, Ho, Wo, dX)


# ========================================================================= pooling
@njit(cache=True)
def _pool_forward(kind, X, H, W, C, p_h, p_w, s, Ho, Wo, out, argmax):
    """Max (with ``argmax``) or average pooling of rows of H*W*C values into rows of Ho*Wo*C."""
    for n in range(X.shape[0]):
        x = X[n]
        o = out[n]
        for oy in range(Ho):
            for ox in range(Wo):
                ob = (oy * Wo + ox) * C
                ib = (oy * s * W + ox * s) * C
                if kind == _MAXPOOL:
                    am = argmax[n]
                    for c in range(C):
                        o[ob + c] = x[ib + c]
                        am[ob + c] = ib + c
                    for py in range(p_h):
                        for px in range(p_w):
                            if py == 0 and px == 0:
                                continue
                            jb = ((oy * s + py) * W + ox * s + px) * C
                            # branch-free, so that it vectorises over the channels
                            # (measured 3.3x faster than an if on 128 x 28 x 28 x 32)
                            for c in range(C):
                                v = x[jb + c]
                                cur = o[ob + c]
                                take = v > cur
                                o[ob + c] = v if take else cur
                                am[ob + c] = (jb + c) if take else am[ob + c]
                else:
                    for c in range(C):
                        o[ob + c] = 0
                    for py in range(p_h):
                        for px in range(p_w):
                            jb = ((oy * s + py) * W + ox * s + px) * C
                            for c in range(C):
                                o[ob + c] += x[jb + c]
                    area = o.dtype.type(p_h * p_w)
                    for c in range(C):
                        o[ob + c] = o[ob + c] / area


@njit(cache=True)
def _pool_backward(kind, D, argmax, W, C, p_h, p_w, s, Ho, Wo, dX):
    """``dX`` (zeroed first) = the gradient of the pooling's input from ``D``."""
    for n in range(D.shape[0]):
        d = D[n]
        g = dX[n]
        for q in range(g.shape[0]):
            g[q] = 0
        if kind == _MAXPOOL:
            am = argmax[n]
            for q in range(d.shape[0]):
                g[am[q]] += d[q]
        else:
            area = d.dtype.type(p_h * p_w)
            for oy in range(Ho):
                for ox in range(Wo):
                    ob = (oy * Wo + ox) * C
                    for py in range(p_h):
                        for px in range(p_w):
                            jb = ((oy * s + py) * W + ox * s + px) * C
                            for c in range(C):
                                g[jb + c] += d[ob + c] / area


# ====================================================================== wrappers
def _conv_args(kernel, X, W, out_shape, stride, pad_h, pad_w):
    dt = kc.float_array(kernel, "X", X, ndim=4).dtype
    kc.float_array(kernel, "W", W, ndim=4, dtype=dt)
    return cc.conv_geometry(kernel, X.shape, W.shape, out_shape, stride, pad_h, pad_w)


def conv2d_forward(X, W, b, stride, pad_h, pad_w, act, out):
    """Convolution + bias + activation (see :func:`fastnet.reference.conv.conv2d_forward`)."""
    with single_threaded():
        _conv2d_forward(X, W, b, stride, pad_h, pad_w, act, out)


def _conv2d_forward(X, W, b, stride, pad_h, pad_w, act, out):
    k = "conv2d_forward"
    kc.float_array(k, "out", out, ndim=4, dtype=X.dtype if isinstance(X, np.ndarray) else None)
    s, ph, pw = _conv_args(k, X, W, out.shape, stride, pad_h, pad_w)
    kc.float_array(k, "b", b, ndim=1, dtype=X.dtype)
    kc.shape(k, "b", b, (W.shape[3],))
    kc.writable(k, "out", out)
    a = kc.code(k, "act", act, kc.ACTIVATIONS)
    if a == Act.SOFTMAX:
        raise ValueError(f"{k}: softmax is not a convolution's activation")
    m, H, Wd, C = X.shape
    kh, kw, _, F = W.shape
    Wb = np.empty((1 + kh * kw * C, F), X.dtype)
    Wb[0] = b
    Wb[1:] = W.reshape(-1, F)
    Ho, Wo = out.shape[1], out.shape[2]
    nb = conv_block_images(Ho * Wo, kh * kw * C, X.itemsize, m)
    cols = np.empty(nb * Ho * Wo * kh * kw * C, X.dtype)
    _conv_forward(X.reshape(m, -1), Wb, H, Wd, C, kh, kw, s, ph, pw, Ho, Wo, F, a,
                  out.reshape(m, -1), cols, nb)


def conv2d_backward_input(dZ, W, stride, pad_h, pad_w, dX):
    """dJ/dX of a convolution (see :func:`fastnet.reference.conv.conv2d_backward_input`)."""
    with single_threaded():
        _conv2d_backward_input(dZ, W, stride, pad_h, pad_w, dX)


def _conv2d_backward_input(dZ, W, stride, pad_h, pad_w, dX):
    k = "conv2d_backward_input"
    dt = kc.float_array(k, "dZ", dZ, ndim=4).dtype
    kc.float_array(k, "dX", dX, ndim=4, dtype=dt)
    kc.writable(k, "dX", dX)
    s, ph, pw = _conv_args(k, dX, W, dZ.shape, stride, pad_h, pad_w)
    m, H, Wd, C = dX.shape
    kh, kw, _, F = W.shape
    Ho, Wo = dZ.shape[1], dZ.shape[2]
    K = kh * kw * C
    nb = conv_block_images(Ho * Wo, K, dt.itemsize, m)
    dcols = np.empty(nb * Ho * Wo * K, dt)
    Wm = W.reshape(K, F)
    D = dZ.reshape(m, -1)
    dXf = dX.reshape(m, -1)
    _backward_input_blocks(D, Wm, H, Wd, C, kh, kw, s, ph, pw, Ho, Wo, F, dXf, dcols, nb)


@njit(cache=True)
def _backward_input_blocks(D, Wm, H, W, C, kh, kw, s, ph, pw, Ho, Wo, F, dX, dcols, nb):
    m = D.shape[0]
    npix = Ho * Wo
    K = Wm.shape[0]
    for n0 in range(0, m, nb):
        n1 = min(m, n0 + nb)
        rows = (n1 - n0) * npix
        dc = dcols[:rows * K].reshape((rows, K))
        np.dot(D[n0:n1].reshape((rows, F)), Wm.T, dc)
        _col2im(dc, n0, n1, H, W, C, kh, kw, s, ph, pw, Ho, Wo, dX)


def conv2d_backward_weights(X, dZ, stride, pad_h, pad_w, dW, db):
    """dJ/dW and dJ/db of a convolution (see :func:`fastnet.reference.conv.conv2d_backward_weights`)."""
    with single_threaded():
        _conv2d_backward_weights(X, dZ, stride, pad_h, pad_w, dW, db)


def _conv2d_backward_weights(X, dZ, stride, pad_h, pad_w, dW, db):
    k = "conv2d_backward_weights"
    dt = kc.float_array(k, "X", X, ndim=4).dtype
    kc.float_array(k, "dZ", dZ, ndim=4, dtype=dt)
    kc.float_array(k, "dW", dW, ndim=4, dtype=dt)
    kc.float_array(k, "db", db, ndim=1, dtype=dt)
    kc.writable(k, "dW", dW)
    kc.writable(k, "db", db)
    s, ph, pw = cc.conv_geometry(k, X.shape, dW.shape, dZ.shape, stride, pad_h, pad_w)
    kc.shape(k, "db", db, (dW.shape[3],))
    m, H, Wd, C = X.shape
    kh, kw, _, F = dW.shape
    Ho, Wo = dZ.shape[1], dZ.shape[2]
    K = kh * kw * C
    nb = conv_block_images(Ho * Wo, K, dt.itemsize, m)
    cols = np.empty(nb * Ho * Wo * K, dt)
    G = np.zeros((1 + K, F), dt)
    _conv_backward(X.reshape(m, -1), G, dZ.reshape(m, -1), H, Wd, C, kh, kw, s, ph, pw, Ho, Wo,
                   F, G, X.reshape(m, -1)[:0], False, cols, cols[:0], np.empty((K, F), dt), nb)
    db[...] = G[0]
    dW[...] = G[1:].reshape(dW.shape)


def pool2d_forward(kind, X, pool_h, pool_w, stride, out, argmax):
    """Max or average pooling (see :func:`fastnet.reference.conv.pool2d_forward`)."""
    k = "pool2d_forward"
    kind = cc.pool_kind(k, kind)
    dt = kc.float_array(k, "X", X, ndim=4).dtype
    kc.float_array(k, "out", out, ndim=4, dtype=dt)
    kc.writable(k, "out", out)
    ph, pw, s = cc.pool_geometry(k, X.shape, out.shape, pool_h, pool_w, stride)
    m, H, W, C = X.shape
    if kind == LayerKind.MAXPOOL2D:
        kc.int_array(k, "argmax", argmax, ndim=4)
        kc.shape(k, "argmax", argmax, out.shape)
        kc.writable(k, "argmax", argmax)
        am = argmax.reshape(m, -1)
    else:
        am = np.empty((m, 0), np.int64)
    _pool_forward(kind, X.reshape(m, -1), H, W, C, ph, pw, s, out.shape[1], out.shape[2],
                  out.reshape(m, -1), am)


def pool2d_backward(kind, dout, argmax, pool_h, pool_w, stride, dX):
    """The pooling's input gradient (see :func:`fastnet.reference.conv.pool2d_backward`)."""
    k = "pool2d_backward"
    kind = cc.pool_kind(k, kind)
    dt = kc.float_array(k, "dout", dout, ndim=4).dtype
    kc.float_array(k, "dX", dX, ndim=4, dtype=dt)
    kc.writable(k, "dX", dX)
    ph, pw, s = cc.pool_geometry(k, dX.shape, dout.shape, pool_h, pool_w, stride)
    m, H, W, C = dX.shape
    if kind == LayerKind.MAXPOOL2D:
        kc.int_array(k, "argmax", argmax, ndim=4)
        kc.shape(k, "argmax", argmax, dout.shape)
        if argmax.size and (argmax.min() < 0 or argmax.max() >= H * W * C):
            raise ValueError(f"{k}: argmax holds positions outside the {H}x{W}x{C} images")
        am = argmax.reshape(m, -1)
    else:
        am = np.empty((m, 0), np.int64)
    _pool_backward(kind, dout.reshape(m, -1), am, W, C, ph, pw, s, dout.shape[1], dout.shape[2],
                   dX.reshape(m, -1))


KERNELS = {
    "conv2d_forward": conv2d_forward,
    "conv2d_backward_input": conv2d_backward_input,
    "conv2d_backward_weights": conv2d_backward_weights,
    "pool2d_forward": pool2d_forward,
    "pool2d_backward": pool2d_backward,
}
