r"""The convolution, pooling and layer-program kernels, compiled with Numba.

Same names, signatures and in-place conventions as :mod:`fastnet.reference.conv`
(read its docstrings for the meaning of every argument); each kernel of
:data:`KERNELS` is a Python wrapper that checks its arguments once
(:mod:`fastnet._conv_checks`) and calls one ``@njit`` function, so a whole
epoch -- every batch's forward pass, backward pass and update -- is one
compiled call.

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

Threads: the GEMMs run on BLAS's threads (OpenBLAS splits the output
matrix, never a sum, so the result does not depend on the number of
threads); the unfolding, pooling and epilogues run in the calling thread.
No kernel here is ``parallel=True`` (those cannot be cached).
"""
import numpy as np
from numba import njit

from fastnet import _kernel_checks as kc
from fastnet import _conv_checks as cc
from fastnet._codes import Act, LayerKind, Prog, Loss, Optimizer, Penalty
from fastnet._numba._common import LOG_CLIP, act, dact_from_a

__all__ = ["KERNELS"]

#: Bytes of im2col patches per block of images (about a core's share of L2 + L3).
COLS_BYTES = 1 << 20

# integer codes as module constants (numba freezes them at compile time)
_LINEAR, _SIGMOID, _RELU, _TANH, _SOFTMAX = (int(Act.LINEAR), int(Act.SIGMOID), int(Act.RELU),
                                             int(Act.TANH), int(Act.SOFTMAX))
_CE, _QUAD, _LOGLOSS = int(Loss.CROSS_ENTROPY), int(Loss.QUADRATIC), int(Loss.LOG_LOSS)
_DENSE, _CONV, _MAXPOOL, _AVGPOOL, _FLATTEN, _ACTIVATION, _TIED = (
    int(LayerKind.DENSE), int(LayerKind.CONV2D), int(LayerKind.MAXPOOL2D),
    int(LayerKind.AVGPOOL2D), int(LayerKind.FLATTEN), int(LayerKind.ACTIVATION),
    int(LayerKind.DENSE_TIED))
_SGD, _MOMENTUM, _RMSPROP, _ADAM, _NESTEROV = (int(Optimizer.SGD), int(Optimizer.MOMENTUM),
                                               int(Optimizer.RMSPROP), int(Optimizer.ADAM),
                                               int(Optimizer.NESTEROV))
_L2, _L1 = int(Penalty.L2), int(Penalty.L1)
(P_KIND, P_ACT, P_IH, P_IW, P_IC, P_OH, P_OW, P_OC, P_KH, P_KW, P_S, P_PH, P_PW, P_POFF, P_PLEN,
 P_TIED) = [int(f) for f in Prog if f != Prog.WIDTH]


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


def _block_images(npix, K, itemsize, m):
    """Images per im2col block: about COLS_BYTES of patches, at least one image."""
    return max(1, min(m, COLS_BYTES // max(1, npix * K * itemsize)))


@njit(cache=True)
def _conv_forward(X, Wb, H, W, C, kh, kw, s, ph, pw, Ho, Wo, F, kind, out, cols, nb):
    """``out`` (m, Ho*Wo*F) = f(conv(X) + b) with ``Wb`` the (1 + K, F) block."""
    m = X.shape[0]
    npix = Ho * Wo
    Wm = Wb[1:]
    b = Wb[0]
    for n0 in range(0, m, nb):
        n1 = min(m, n0 + nb)
        rows = (n1 - n0) * npix
        c = cols[:rows]
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
    g0 = G[0]
    Gw = G[1:]
    for n0 in range(0, m, nb):
        n1 = min(m, n0 + nb)
        rows = (n1 - n0) * npix
        c = cols[:rows]
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
            dc = dcols[:rows]
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
                            for c in range(C):
                                v = x[jb + c]
                                if v > o[ob + c]:
                                    o[ob + c] = v
                                    am[ob + c] = jb + c
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


# ================================================================= layer programs
@njit(cache=True)
def _workspace(prog, m, n_in):
    """Offsets of every row's outputs in one buffer (m samples), the widest row, argmax slots."""
    L = prog.shape[0]
    aoff = np.zeros(L + 1, np.int64)
    widest = n_in
    pool = 0
    for l in range(L):
        n = prog[l, P_OH] * prog[l, P_OW] * prog[l, P_OC]
        aoff[l + 1] = aoff[l] + m * n
        widest = max(widest, n)
        if prog[l, P_KIND] == _MAXPOOL:
            pool = max(pool, n)
    return aoff, widest, pool


@njit(cache=True)
def _conv_sizes(prog, itemsize, m):
    """Rows of the im2col buffer, its width, and images per block of each conv row."""
    L = prog.shape[0]
    nbs = np.ones(L, np.int64)
    rows = 1
    width = 1
    for l in range(L):
        if prog[l, P_KIND] == _CONV:
            npix = prog[l, P_OH] * prog[l, P_OW]
            K = prog[l, P_KH] * prog[l, P_KW] * prog[l, P_IC]
            nb = max(1, min(m, (1 << 20) // max(1, npix * K * itemsize)))
            nbs[l] = nb
            rows = max(rows, nb * npix)
            width = max(width, K)
    return nbs, rows, width


@njit(cache=True)
def _row_forward(params, prog, l, Ain, Aout, argmax, cols, nbs):
    """Row ``l``'s output ``Aout`` (m, n_out) from its input ``Ain`` (m, n_in)."""
    kind = prog[l, P_KIND]
    a = prog[l, P_ACT]
    H, W, C = prog[l, P_IH], prog[l, P_IW], prog[l, P_IC]
    Ho, Wo, F = prog[l, P_OH], prog[l, P_OW], prog[l, P_OC]
    poff = prog[l, P_POFF]
    m = Ain.shape[0]
    if kind == _DENSE:
        Wb = params[poff:poff + prog[l, P_PLEN]].reshape((H * W * C + 1, F))
        np.dot(Ain, Wb[1:], Aout)
        _bias_act(Aout, Wb[0], a)
    elif kind == _TIED:
        toff = prog[l, P_TIED]
        Wt = params[toff:toff + (F + 1) * C].reshape((F + 1, C))
        np.dot(Ain, Wt[1:].T, Aout)
        _bias_act(Aout, params[poff:poff + F], a)
    elif kind == _CONV:
        Wb = params[poff:poff + prog[l, P_PLEN]].reshape((-1, F))
        _conv_forward(Ain, Wb, H, W, C, prog[l, P_KH], prog[l, P_KW], prog[l, P_S],
                      prog[l, P_PH], prog[l, P_PW], Ho, Wo, F, a, Aout, cols, nbs[l])
    elif kind == _MAXPOOL or kind == _AVGPOOL:
        _pool_forward(kind, Ain, H, W, C, prog[l, P_KH], prog[l, P_KW], prog[l, P_S], Ho, Wo,
                      Aout, argmax)
        _activate_rows(a, Aout)
    elif kind == _FLATTEN:
        for n in range(m):
            x = Ain[n]
            o = Aout[n]
            for i in range(H * W):
                for c in range(C):
                    o[c * H * W + i] = x[i * C + c]
        _activate_rows(a, Aout)
    else:
        Aout[:, :] = Ain
        _activate_rows(a, Aout)


@njit(cache=True)
def _row_backward(params, prog, l, Ain, D, Dprev, need_input, G, argmax, cols, dcols, tmp, nbs):
    """Add row ``l``'s parameter gradient to ``G``; ``Dprev`` = dJ/d(input) when ``need_input``."""
    kind = prog[l, P_KIND]
    H, W, C = prog[l, P_IH], prog[l, P_IW], prog[l, P_IC]
    Ho, Wo, F = prog[l, P_OH], prog[l, P_OW], prog[l, P_OC]
    poff = prog[l, P_POFF]
    m = Ain.shape[0]
    if kind == _DENSE:
        nin = H * W * C
        Wb = params[poff:poff + prog[l, P_PLEN]].reshape((nin + 1, F))
        Gb = G[poff:poff + prog[l, P_PLEN]].reshape((nin + 1, F))
        t = tmp[:nin * F].reshape((nin, F))
        np.dot(Ain.T, D, t)
        Gw = Gb[1:]
        for k in range(nin):
            gk = Gw[k]
            tk = t[k]
            for f in range(F):
                gk[f] += tk[f]
        g0 = Gb[0]
        for r in range(m):
            dr = D[r]
            for f in range(F):
                g0[f] += dr[f]
        if need_input:
            np.dot(D, Wb[1:].T, Dprev)
    elif kind == _TIED:
        toff = prog[l, P_TIED]
        Wt = params[toff:toff + (F + 1) * C].reshape((F + 1, C))
        Gt = G[toff:toff + (F + 1) * C].reshape((F + 1, C))[1:]
        t = tmp[:F * C].reshape((F, C))
        np.dot(D.T, Ain, t)
        for k in range(F):
            gk = Gt[k]
            tk = t[k]
            for c in range(C):
                gk[c] += tk[c]
        g0 = G[poff:poff + F]
        for r in range(m):
            dr = D[r]
            for f in range(F):
                g0[f] += dr[f]
        if need_input:
            np.dot(D, Wt[1:], Dprev)
    elif kind == _CONV:
        Wb = params[poff:poff + prog[l, P_PLEN]].reshape((-1, F))
        Gb = G[poff:poff + prog[l, P_PLEN]].reshape((-1, F))
        K = Wb.shape[0] - 1
        _conv_backward(Ain, Wb, D, H, W, C, prog[l, P_KH], prog[l, P_KW], prog[l, P_S],
                       prog[l, P_PH], prog[l, P_PW], Ho, Wo, F, Gb, Dprev, need_input, cols,
                       dcols, tmp[:K * F].reshape((K, F)), nbs[l])
    elif need_input:
        if kind == _MAXPOOL or kind == _AVGPOOL:
            _pool_backward(kind, D, argmax, W, C, prog[l, P_KH], prog[l, P_KW], prog[l, P_S],
                           Ho, Wo, Dprev)
        elif kind == _FLATTEN:
            for n in range(m):
                d = D[n]
                o = Dprev[n]
                for i in range(H * W):
                    for c in range(C):
                        o[i * C + c] = d[c * H * W + i]
        else:
            Dprev[:, :] = D


@njit(cache=True)
def _forward_batch(params, prog, Xb, A, aoff, am, cols, nbs):
    """Every row's outputs for the batch ``Xb`` into the buffer ``A`` (offsets ``aoff``)."""
    m = Xb.shape[0]
    L = prog.shape[0]
    Ain = Xb
    for l in range(L):
        n = prog[l, P_OH] * prog[l, P_OW] * prog[l, P_OC]
        Aout = A[aoff[l]:aoff[l] + m * n].reshape((m, n))
        amx = am[l, :m * n].reshape((m, n)) if prog[l, P_KIND] == _MAXPOOL else am[0, :0].reshape((0, 0))
        _row_forward(params, prog, l, Ain, Aout, amx, cols, nbs)
        Ain = Aout


@njit(cache=True)
def _backprop_batch(params, prog, loss_kind, Xb, Yb, G, A, aoff, am, cols, dcols, tmp, D0, D1,
                    nbs):
    """Forward and backward over the batch; ``G`` += the summed gradient; returns the loss."""
    m = Xb.shape[0]
    L = prog.shape[0]
    _forward_batch(params, prog, Xb, A, aoff, am, cols, nbs)
    nL = prog[L - 1, P_OC]
    out = A[aoff[L - 1]:aoff[L - 1] + m * nL].reshape((m, nL))
    D = D0[:m * nL].reshape((m, nL))
    kind = prog[L - 1, P_ACT]
    total = 0.0
    for r in range(m):
        total += _loss_delta(kind, loss_kind, out[r], Yb[r], D[r])
    cur, nxt = D0, D1
    for l in range(L - 1, -1, -1):
        n = prog[l, P_OH] * prog[l, P_OW] * prog[l, P_OC]
        nin = prog[l, P_IH] * prog[l, P_IW] * prog[l, P_IC]
        D = cur[:m * n].reshape((m, n))
        Dp = nxt[:m * nin].reshape((m, nin))
        Ain = Xb if l == 0 else A[aoff[l - 1]:aoff[l - 1] + m * nin].reshape((m, nin))
        amx = am[l, :m * n].reshape((m, n)) if prog[l, P_KIND] == _MAXPOOL else am[0, :0].reshape((0, 0))
        _row_backward(params, prog, l, Ain, D, Dp, l > 0, G, amx, cols, dcols, tmp, nbs)
        if l > 0:
            _times_dact(prog[l - 1, P_ACT], nxt[:m * nin], A[aoff[l - 1]:aoff[l - 1] + m * nin])
        cur, nxt = nxt, cur
    return total


@njit(cache=True)
def _penalty_value(penalty, lam, params, prog):
    total = 0.0
    for l in range(prog.shape[0]):
        kind = prog[l, P_KIND]
        if kind != _DENSE and kind != _CONV:
            continue
        lo = prog[l, P_POFF] + prog[l, P_OC]
        hi = prog[l, P_POFF] + prog[l, P_PLEN]
        s = 0.0
        for i in range(lo, hi):
            w = np.float64(params[i])
            s += w * w if penalty == _L2 else abs(w)
        total += lam / 2 * s if penalty == _L2 else lam * s
    return total


@njit(cache=True)
def _penalty_grad(penalty, lam, params, prog, G):
    lamt = params.dtype.type(lam)
    for l in range(prog.shape[0]):
        kind = prog[l, P_KIND]
        if kind != _DENSE and kind != _CONV:
            continue
        lo = prog[l, P_POFF] + prog[l, P_OC]
        hi = prog[l, P_POFF] + prog[l, P_PLEN]
        for i in range(lo, hi):
            w = params[i]
            if penalty == _L2:
                G[i] += lamt * w
            elif w > 0:
                G[i] += lamt
            elif w < 0:
                G[i] -= lamt


@njit(cache=True)
def _optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps, lr_t):
    """One update, as :func:`fastnet.reference.kernels.optimizer_step` (Adam's step ``lr_t``)."""
    n = params.shape[0]
    lr_ = params.dtype.type(lr)
    mu_ = params.dtype.type(mu)
    rho_ = params.dtype.type(rho)
    eps_ = params.dtype.type(eps)
    one = params.dtype.type(1)
    if optimizer == _SGD:
        for i in range(n):
            params[i] -= lr_ * grad[i]
    elif optimizer == _MOMENTUM or optimizer == _NESTEROV:
        for i in range(n):
            v = state[i] * mu_
            v = v - lr_ * grad[i]
            state[i] = v
            if optimizer == _MOMENTUM:
                params[i] += v
            else:
                params[i] += mu_ * v - lr_ * grad[i]
    elif optimizer == _RMSPROP:
        for i in range(n):
            g = grad[i]
            s = state[i] * rho_
            s = s + (one - rho_) * g * g
            state[i] = s
            params[i] -= lr_ * g / (np.sqrt(s) + eps_)
    else:
        lt = params.dtype.type(lr_t)
        for i in range(n):
            g = grad[i]
            m1 = state[i] * mu_
            m1 = m1 + (one - mu_) * g
            state[i] = m1
            v = state[n + i] * rho_
            v = v + (one - rho_) * g * g
            state[n + i] = v
            params[i] -= lt * m1 / (np.sqrt(v) + eps_)


@njit(cache=True)
def _adam_lr(lr, beta1, beta2, t):
    k = float(t) + 1.0
    return lr * np.sqrt(1.0 - beta2 ** k) / (1.0 - beta1 ** k)


@njit(cache=True)
def _alloc(prog, m, n_in, params):
    aoff, widest, pool = _workspace(prog, m, n_in)
    A = np.empty(aoff[-1], params.dtype)
    L = prog.shape[0]
    am = np.zeros((L, m * pool if pool else 0), np.int64)
    nbs, rows, width = _conv_sizes(prog, params.itemsize, m)
    cols = np.empty((rows, width), params.dtype)
    dcols = np.empty((rows, width), params.dtype)
    # the largest weight matrix of any row (the gradient products land there first)
    big = 1
    for l in range(L):
        big = max(big, prog[l, P_PLEN], (prog[l, P_OC] + 1) * prog[l, P_IC])
    tmp = np.empty(big, params.dtype)
    D0 = np.empty(m * widest, params.dtype)
    D1 = np.empty(m * widest, params.dtype)
    return aoff, A, am, cols, dcols, tmp, D0, D1, nbs


@njit(cache=True)
def _sequential_forward(params, prog, X, out, chunk):
    m = X.shape[0]
    L = prog.shape[0]
    mb = min(m, chunk)
    aoff, A, am, cols, dcols, tmp, D0, D1, nbs = _alloc(prog, mb, X.shape[1], params)
    nL = prog[L - 1, P_OC]
    for s0 in range(0, m, mb):
        s1 = min(m, s0 + mb)
        k = s1 - s0
        # offsets for a shorter last chunk: recompute (same buffer, smaller rows)
        off = np.zeros(L + 1, np.int64)
        for l in range(L):
            off[l + 1] = off[l] + k * prog[l, P_OH] * prog[l, P_OW] * prog[l, P_OC]
        _forward_batch(params, prog, X[s0:s1], A, off, am, cols, nbs)
        out[s0:s1] = A[off[L - 1]:off[L - 1] + k * nL].reshape((k, nL))


@njit(cache=True)
def _sequential_backprop(params, prog, loss_kind, X, Y, grad):
    m = X.shape[0]
    aoff, A, am, cols, dcols, tmp, D0, D1, nbs = _alloc(prog, m, X.shape[1], params)
    grad[:] = 0
    return _backprop_batch(params, prog, loss_kind, X, Y, grad, A, aoff, am, cols, dcols, tmp,
                           D0, D1, nbs)


@njit(cache=True)
def _sequential_train_epoch(params, prog, loss_kind, X, Y, order, batch_size, optimizer, lr, mu,
                            rho, eps, penalty, lam, state, t):
    m = order.shape[0]
    B = min(batch_size, m)
    L = prog.shape[0]
    aoff, A, am, cols, dcols, tmp, D0, D1, nbs = _alloc(prog, B, X.shape[1], params)
    G = np.empty_like(params)
    Xb = np.empty((B, X.shape[1]), params.dtype)
    Yb = np.empty((B, Y.shape[1]), params.dtype)
    off = np.zeros(L + 1, np.int64)
    total = 0.0
    b = 0
    for s0 in range(0, m, B):
        s1 = min(m, s0 + B)
        k = s1 - s0
        for i in range(k):
            Xb[i] = X[order[s0 + i]]
            Yb[i] = Y[order[s0 + i]]
        for l in range(L):
            off[l + 1] = off[l] + k * prog[l, P_OH] * prog[l, P_OW] * prog[l, P_OC]
        G[:] = 0
        total += _backprop_batch(params, prog, loss_kind, Xb[:k], Yb[:k], G, A, off, am, cols,
                                 dcols, tmp, D0, D1, nbs)
        inv = params.dtype.type(k)
        for i in range(G.shape[0]):
            G[i] /= inv
        if penalty != 0 and lam != 0:
            _penalty_grad(penalty, lam, params, prog, G)
        lr_t = _adam_lr(lr, mu, rho, t + b) if optimizer == _ADAM else lr
        _optimizer_step(optimizer, params, G, state, lr, mu, rho, eps, lr_t)
        b += 1
    return total


# ====================================================================== wrappers
def _conv_args(kernel, X, W, out_shape, stride, pad_h, pad_w):
    dt = kc.float_array(kernel, "X", X, ndim=4).dtype
    kc.float_array(kernel, "W", W, ndim=4, dtype=dt)
    return cc.conv_geometry(kernel, X.shape, W.shape, out_shape, stride, pad_h, pad_w)


def conv2d_forward(X, W, b, stride, pad_h, pad_w, act, out):
    """Convolution + bias + activation (see :func:`fastnet.reference.conv.conv2d_forward`)."""
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
    nb = _block_images(Ho * Wo, kh * kw * C, X.itemsize, m)
    cols = np.empty((nb * Ho * Wo, kh * kw * C), X.dtype)
    _conv_forward(X.reshape(m, -1), Wb, H, Wd, C, kh, kw, s, ph, pw, Ho, Wo, F, a,
                  out.reshape(m, -1), cols, nb)


def conv2d_backward_input(dZ, W, stride, pad_h, pad_w, dX):
    """dJ/dX of a convolution (see :func:`fastnet.reference.conv.conv2d_backward_input`)."""
    k = "conv2d_backward_input"
    dt = kc.float_array(k, "dZ", dZ, ndim=4).dtype
    kc.float_array(k, "dX", dX, ndim=4, dtype=dt)
    kc.writable(k, "dX", dX)
    s, ph, pw = _conv_args(k, dX, W, dZ.shape, stride, pad_h, pad_w)
    m, H, Wd, C = dX.shape
    kh, kw, _, F = W.shape
    Ho, Wo = dZ.shape[1], dZ.shape[2]
    K = kh * kw * C
    nb = _block_images(Ho * Wo, K, dt.itemsize, m)
    dcols = np.empty((nb * Ho * Wo, K), dt)
    Wm = W.reshape(K, F)
    D = dZ.reshape(m, -1)
    dXf = dX.reshape(m, -1)
    _backward_input_blocks(D, Wm, H, Wd, C, kh, kw, s, ph, pw, Ho, Wo, F, dXf, dcols, nb)


@njit(cache=True)
def _backward_input_blocks(D, Wm, H, W, C, kh, kw, s, ph, pw, Ho, Wo, F, dX, dcols, nb):
    m = D.shape[0]
    npix = Ho * Wo
    for n0 in range(0, m, nb):
        n1 = min(m, n0 + nb)
        rows = (n1 - n0) * npix
        dc = dcols[:rows]
        np.dot(D[n0:n1].reshape((rows, F)), Wm.T, dc)
        _col2im(dc, n0, n1, H, W, C, kh, kw, s, ph, pw, Ho, Wo, dX)


def conv2d_backward_weights(X, dZ, stride, pad_h, pad_w, dW, db):
    """dJ/dW and dJ/db of a convolution (see :func:`fastnet.reference.conv.conv2d_backward_weights`)."""
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
    nb = _block_images(Ho * Wo, K, dt.itemsize, m)
    cols = np.empty((nb * Ho * Wo, K), dt)
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


#: Samples per forward pass of ``sequential_forward`` (bounds its workspace).
FORWARD_CHUNK = 256


def sequential_forward(params, prog, X, out):
    """The program's outputs (see :func:`fastnet.reference.conv.sequential_forward`)."""
    k = "sequential_forward"
    p = cc.Program(k, params, prog)
    p.data(k, params, X, out=out)
    _sequential_forward(params, prog, X, out, FORWARD_CHUNK)


def sequential_backprop(params, prog, loss_kind, X, Y, grad):
    """Summed loss and gradient (see :func:`fastnet.reference.conv.sequential_backprop`)."""
    k = "sequential_backprop"
    p = cc.Program(k, params, prog)
    p.data(k, params, X, Y)
    kc.float_array(k, "grad", grad, ndim=1, dtype=params.dtype)
    kc.shape(k, "grad", grad, params.shape)
    kc.writable(k, "grad", grad)
    return float(_sequential_backprop(params, prog, p.loss(k, loss_kind), X, Y, grad))


def sequential_train_epoch(params, prog, loss_kind, X, Y, order, batch_size, optimizer, lr, mu,
                           rho, eps, penalty_kind, lam, state, t):
    """One training epoch (see :func:`fastnet.reference.conv.sequential_train_epoch`)."""
    (p, loss_kind, batch_size, optimizer, lr, mu, rho, eps, penalty_kind, lam,
     t) = cc.training("sequential_train_epoch", params, prog, loss_kind, X, Y, order, batch_size,
                      optimizer, lr, mu, rho, eps, penalty_kind, lam, state, t)
    return float(_sequential_train_epoch(params, prog, loss_kind, X, Y, order, batch_size,
                                         optimizer, lr, mu, rho, eps, penalty_kind, lam, state,
                                         t))


def sequential_penalty_value(penalty_kind, lam, params, prog):
    """The weights' penalty (see :func:`fastnet.reference.conv.sequential_penalty_value`)."""
    k = "sequential_penalty_value"
    pen = kc.code(k, "penalty_kind", penalty_kind, kc.PENALTIES)
    lam = kc.real(k, "lam", lam)
    if pen == Penalty.NONE or lam == 0:
        return 0.0
    cc.Program(k, params, prog)
    return float(_penalty_value(pen, lam, params, prog))


KERNELS = {
    "conv2d_forward": conv2d_forward,
    "conv2d_backward_input": conv2d_backward_input,
    "conv2d_backward_weights": conv2d_backward_weights,
    "pool2d_forward": pool2d_forward,
    "pool2d_backward": pool2d_backward,
    "sequential_forward": sequential_forward,
    "sequential_backprop": sequential_backprop,
    "sequential_train_epoch": sequential_train_epoch,
    "sequential_penalty_value": sequential_penalty_value,
}
