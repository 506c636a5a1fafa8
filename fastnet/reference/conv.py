r"""Convolution, pooling and layer-program kernels, in numpy for reading: the oracle.

These kernels extend the contract of :mod:`fastnet.reference.kernels` to the
layers of :mod:`fastnet.layers` (names in :data:`fastnet._backend.CONV_KERNELS`).
Every backend implements them with these signatures and in-place
conventions; the public API (:class:`fastnet.Sequential`) validates first, so
kernels may assume C-contiguous arrays of one float dtype ``T``, int64 integer
arrays, consistent shapes and finite data.

Images inside the kernels are **channels-last**, ``(m, H, W, C)``; a
convolution's kernel is ``W`` of shape ``(kh, kw, C, F)`` with its bias ``b``
``(F,)`` (the two views of a Conv2D layer's parameter block, see
:mod:`fastnet.layers._conv`).  With stride :math:`s` and zero padding
:math:`p_h, p_w` before the image (the output size fixes how much goes after):

.. math:: z_{n,y,x,f} = b_f + \sum_{dy,dx,c} x_{n,\,sy+dy-p_h,\,sx+dx-p_w,\,c}\,W_{dy,dx,c,f}

Layer programs
--------------
A network of layers is an int64 array ``prog`` of shape ``(L, Prog.WIDTH)``,
one row per operation, columns named by :class:`fastnet._codes.Prog`: the
operation (:class:`fastnet._codes.LayerKind`), its activation, its input and
output shapes (channels-last, ``(1, 1, n)`` for flat data), kernel or pool
size, stride, padding, and the offset and length of its block in the flat
``params``.  Each row computes ``out = f(op(in))``.  Samples enter and leave
as rows of 2-D arrays: ``X`` is ``(m, H*W*C)`` (each image channels-last,
flattened), the output ``(m, n_out)``.  FLATTEN turns ``(H, W, C)`` into the
channels-first order ``(C, H, W)`` of the public API, so the weights of a
Dense layer after it are indexed as in PyTorch.

Backpropagation runs the rows backwards with :math:`\delta = \partial J/\partial z`
of each row: at the output as in :mod:`fastnet.reference.kernels`
(``a - y`` for sigmoid + cross-entropy and softmax + log-loss, else
:math:`\ell'(a) f'(z)`), then :math:`\delta_{l-1} = (\text{op}_l^T \delta_l)
\odot f'_{l-1}`, with the derivative taken from the row's output
(:math:`\sigma' = a(1-a)`, :math:`\tanh' = 1-a^2`, ReLU :math:`[a > 0]`).
Gradients are *sums* over samples (no averaging), accumulated into ``grad``
(so a TiedDense row and the Dense row it shares weights with add up).
"""
import numpy as np

from fastnet._codes import Act, Loss, Penalty, LayerKind, Prog
from fastnet.reference.kernels import (_ACT, loss, loss_grad_a, optimizer_step)

__all__ = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weights",
           "pool2d_forward", "pool2d_backward", "sequential_forward", "sequential_backprop",
           "sequential_train_epoch", "sequential_penalty_value", "KERNELS"]


# --------------------------------------------------------------------------- helpers
def _padded(X, pad_h, pad_w, Ho, Wo, kh, kw, stride):
    """``X`` (m, H, W, C) inside zeros: ``pad_h``/``pad_w`` before, enough after for every window."""
    m, H, W, C = X.shape
    Hp = max(pad_h + H, (Ho - 1) * stride + kh)
    Wp = max(pad_w + W, (Wo - 1) * stride + kw)
    Xp = np.zeros((m, Hp, Wp, C), dtype=X.dtype)
    Xp[:, pad_h:pad_h + H, pad_w:pad_w + W] = X
    return Xp


def _window(A, dy, dx, Ho, Wo, stride):
    """The pixels that kernel offset ``(dy, dx)`` meets, for every output pixel: (m, Ho, Wo, C)."""
    return A[:, dy:dy + stride * (Ho - 1) + 1:stride, dx:dx + stride * (Wo - 1) + 1:stride]


def dact_from_a(kind, A):
    r"""The derivative of activation ``kind`` from its output ``A`` (ReLU :math:`[a>0]`, ...)."""
    one = A.dtype.type(1)
    if kind == Act.SIGMOID:
        return A * (one - A)
    if kind == Act.TANH:
        return one - A * A
    if kind == Act.RELU:
        return (A > 0).astype(A.dtype)
    return np.ones_like(A)


def _activate(kind, Z):
    if kind == Act.LINEAR:
        return Z
    return _ACT[int(kind)].f(Z)


# ----------------------------------------------------------------------- convolution
def conv2d_forward(X, W, b, stride, pad_h, pad_w, act, out):
    r"""``out[...] = f(conv(X, W) + b)``: the convolution, bias and activation ``act`` fused.

    ``X`` (m, H, W, C), ``W`` (kh, kw, C, F), ``b`` (F,), ``out`` (m, Ho, Wo, F);
    ``act`` is an :class:`~fastnet._codes.Act` code other than softmax.
    """
    Ho, Wo = out.shape[1], out.shape[2]
    kh, kw = W.shape[0], W.shape[1]
    Xp = _padded(X, pad_h, pad_w, Ho, Wo, kh, kw, stride)
    Z = np.empty(out.shape, dtype=out.dtype)
    Z[...] = b
    for dy in range(kh):
        for dx in range(kw):
            Z += _window(Xp, dy, dx, Ho, Wo, stride) @ W[dy, dx]
    out[...] = _activate(act, Z)


def conv2d_backward_input(dZ, W, stride, pad_h, pad_w, dX):
    r"""``dX[...]`` = the gradient with respect to the convolution's input.

    ``dZ`` (m, Ho, Wo, F) is :math:`\partial J/\partial z`; ``dX`` (m, H, W, C) is
    overwritten with :math:`\partial J/\partial x_{n,i,j,c} = \sum \delta_{n,y,x,f}
    W_{dy,dx,c,f}` over the outputs whose window covers pixel ``(i, j)``.
    """
    m, H, Wd, C = dX.shape
    Ho, Wo = dZ.shape[1], dZ.shape[2]
    kh, kw = W.shape[0], W.shape[1]
    dXp = _padded(np.zeros_like(dX), pad_h, pad_w, Ho, Wo, kh, kw, stride)
    for dy in range(kh):
        for dx in range(kw):
            _window(dXp, dy, dx, Ho, Wo, stride)[...] += dZ @ W[dy, dx].T
    dX[...] = dXp[:, pad_h:pad_h + H, pad_w:pad_w + Wd]


def conv2d_backward_weights(X, dZ, stride, pad_h, pad_w, dW, db):
    r"""``dW[...]``, ``db[...]`` = the gradient of the kernel and bias, summed over samples.

    :math:`\partial J/\partial W_{dy,dx,c,f} = \sum_{n,y,x} x_{n,sy+dy-p_h,sx+dx-p_w,c}\,
    \delta_{n,y,x,f}` and :math:`\partial J/\partial b_f = \sum_{n,y,x}\delta_{n,y,x,f}`.
    """
    Ho, Wo = dZ.shape[1], dZ.shape[2]
    kh, kw = dW.shape[0], dW.shape[1]
    Xp = _padded(X, pad_h, pad_w, Ho, Wo, kh, kw, stride)
    for dy in range(kh):
        for dx in range(kw):
            dW[dy, dx] = np.tensordot(_window(Xp, dy, dx, Ho, Wo, stride), dZ,
                                      axes=([0, 1, 2], [0, 1, 2]))
    db[...] = dZ.sum(axis=(0, 1, 2))


# --------------------------------------------------------------------------- pooling
def pool2d_forward(kind, X, pool_h, pool_w, stride, out, argmax):
    """Max (``kind`` MAXPOOL2D) or average (AVGPOOL2D) pooling of ``X`` (m, H, W, C) into
    ``out`` (m, Ho, Wo, C), windows ``pool_h x pool_w`` every ``stride`` pixels, no padding.

    For max pooling ``argmax`` (int64, the shape of ``out``) receives the
    position of each maximum as a flat index into its image, ``(i*W + j)*C + c``
    (the first maximum in row-major window order); average pooling leaves
    ``argmax`` alone (it may be empty).  The average sums the window in
    row-major order, then divides by ``pool_h * pool_w``.
    """
    m, H, Wd, C = X.shape
    Ho, Wo = out.shape[1], out.shape[2]
    if kind == LayerKind.AVGPOOL2D:
        acc = np.zeros(out.shape, dtype=out.dtype)
        for py in range(pool_h):
            for px in range(pool_w):
                acc += _window(X, py, px, Ho, Wo, stride)
        out[...] = acc / out.dtype.type(pool_h * pool_w)
        return
    ys = np.arange(Ho)[:, None, None] * stride
    xs = np.arange(Wo)[None, :, None] * stride
    cs = np.arange(C)[None, None, :]
    best = np.full(out.shape, -np.inf, dtype=out.dtype)
    where = np.zeros(out.shape, dtype=np.int64)
    for py in range(pool_h):
        for px in range(pool_w):
            cand = _window(X, py, px, Ho, Wo, stride)
            flat = ((ys + py) * Wd + (xs + px)) * C + cs
            take = cand > best
            best = np.where(take, cand, best)
            where = np.where(take, flat, where)
    out[...] = best
    argmax[...] = where


def pool2d_backward(kind, dout, argmax, pool_h, pool_w, stride, dX):
    """``dX[...]`` = the gradient of the pooling's input from ``dout`` (m, Ho, Wo, C).

    Max pooling sends each gradient to its recorded ``argmax`` (summing where
    overlapping windows share a maximum); average pooling spreads
    ``dout / (pool_h * pool_w)`` over each window.
    """
    m = dX.shape[0]
    dX[...] = 0
    if kind == LayerKind.AVGPOOL2D:
        Ho, Wo = dout.shape[1], dout.shape[2]
        share = dout / dout.dtype.type(pool_h * pool_w)
        for py in range(pool_h):
            for px in range(pool_w):
                _window(dX, py, px, Ho, Wo, stride)[...] += share
        return
    flat = dX.reshape(m, -1)
    rows = np.repeat(np.arange(m), argmax[0].size)
    np.add.at(flat, (rows, argmax.reshape(-1)), dout.reshape(-1))


# ------------------------------------------------------------------ layer programs
def _block(params, row):
    return params[row[Prog.POFF]:row[Prog.POFF] + row[Prog.PLEN]]


def _shape_in(row, m):
    return (m, int(row[Prog.IN_H]), int(row[Prog.IN_W]), int(row[Prog.IN_C]))


def _shape_out(row, m):
    return (m, int(row[Prog.OUT_H]), int(row[Prog.OUT_W]), int(row[Prog.OUT_C]))


def _conv_views(params, row):
    """The ``(kh, kw, C, F)`` kernel and the ``(F,)`` bias of a CONV2D row."""
    F = int(row[Prog.OUT_C])
    Wb = _block(params, row).reshape(-1, F)
    return Wb[1:].reshape(int(row[Prog.KH]), int(row[Prog.KW]), int(row[Prog.IN_C]), F), Wb[0]


def _tied_weights(params, row):
    """The ``(n_out, n_in)`` weights (rows 1.. of the tied Dense block) of a DENSE_TIED row."""
    n_in, n_out = int(row[Prog.IN_C]), int(row[Prog.OUT_C])
    off = int(row[Prog.TIED])
    return params[off:off + (n_out + 1) * n_in].reshape(n_out + 1, n_in)[1:]


def _op_forward(params, row, A, m, record):
    """``op(A)`` of one row (before its activation); ``A`` is (m, n_in)."""
    kind = row[Prog.KIND]
    if kind == LayerKind.DENSE:
        Wb = _block(params, row).reshape(-1, int(row[Prog.OUT_C]))
        return A @ Wb[1:] + Wb[0]
    if kind == LayerKind.DENSE_TIED:
        return A @ _tied_weights(params, row).T + _block(params, row)
    if kind == LayerKind.CONV2D:
        W, b = _conv_views(params, row)
        out = np.empty(_shape_out(row, m), dtype=A.dtype)
        conv2d_forward(A.reshape(_shape_in(row, m)), W, b, int(row[Prog.STRIDE]),
                       int(row[Prog.PAD_H]), int(row[Prog.PAD_W]), Act.LINEAR, out)
        return out.reshape(m, -1)
    if kind in (LayerKind.MAXPOOL2D, LayerKind.AVGPOOL2D):
        out = np.empty(_shape_out(row, m), dtype=A.dtype)
        argmax = np.empty(out.shape, dtype=np.int64)
        pool2d_forward(kind, A.reshape(_shape_in(row, m)), int(row[Prog.KH]), int(row[Prog.KW]),
                       int(row[Prog.STRIDE]), out, argmax)
        record["argmax"] = argmax
        return out.reshape(m, -1)
    if kind == LayerKind.FLATTEN:
        return A.reshape(_shape_in(row, m)).transpose(0, 3, 1, 2).reshape(m, -1)
    return A  # ACTIVATION


def _forward_all(params, prog, X):
    """Every row's output for the batch ``X`` (and each pooling row's argmax)."""
    m = X.shape[0]
    outs, records = [], []
    A = X
    for row in prog:
        record = {}
        Z = _op_forward(params, row, A, m, record)
        A = _activate(row[Prog.ACT], Z)
        outs.append(A)
        records.append(record)
    return outs, records


def sequential_forward(params, prog, X, out):
    """``out[...]`` = the output (m, n_out) of the layer program ``prog`` for ``X`` (m, n_in)."""
    out[...] = _forward_all(params, prog, X)[0][-1]


def _output_delta(act, loss_kind, A, Y):
    if (act, loss_kind) in ((Act.SIGMOID, Loss.CROSS_ENTROPY), (Act.SOFTMAX, Loss.LOG_LOSS)):
        return A - Y
    return loss_grad_a(loss_kind, A, Y) * dact_from_a(act, A)


def _op_backward(params, row, D, A_in, m, record, grad, need_input):
    """Add the row's parameter gradients to ``grad``; return dJ/d(input) (or None)."""
    kind = row[Prog.KIND]
    if kind == LayerKind.DENSE:
        G = _block(grad, row).reshape(-1, int(row[Prog.OUT_C]))
        G[0] += D.sum(axis=0)
        G[1:] += A_in.T @ D
        if need_input:
            Wb = _block(params, row).reshape(-1, int(row[Prog.OUT_C]))
            return D @ Wb[1:].T
        return None
    if kind == LayerKind.DENSE_TIED:
        _block(grad, row)[...] += D.sum(axis=0)
        n_in, n_out = int(row[Prog.IN_C]), int(row[Prog.OUT_C])
        off = int(row[Prog.TIED])
        Gt = grad[off:off + (n_out + 1) * n_in].reshape(n_out + 1, n_in)[1:]
        Gt += D.T @ A_in
        return D @ _tied_weights(params, row) if need_input else None
    if kind == LayerKind.CONV2D:
        W, _ = _conv_views(params, row)
        GW, Gb = _conv_views(grad, row)
        dW = np.empty_like(GW)
        db = np.empty_like(Gb)
        s, ph, pw = int(row[Prog.STRIDE]), int(row[Prog.PAD_H]), int(row[Prog.PAD_W])
        dZ = D.reshape(_shape_out(row, m))
        conv2d_backward_weights(A_in.reshape(_shape_in(row, m)), dZ, s, ph, pw, dW, db)
        GW += dW
        Gb += db
        if need_input:
            dX = np.empty(_shape_in(row, m), dtype=D.dtype)
            conv2d_backward_input(dZ, W, s, ph, pw, dX)
            return dX.reshape(m, -1)
        return None
    if kind in (LayerKind.MAXPOOL2D, LayerKind.AVGPOOL2D):
        if not need_input:
            return None
        dX = np.empty(_shape_in(row, m), dtype=D.dtype)
        pool2d_backward(kind, D.reshape(_shape_out(row, m)), record["argmax"],
                        int(row[Prog.KH]), int(row[Prog.KW]), int(row[Prog.STRIDE]), dX)
        return dX.reshape(m, -1)
    if kind == LayerKind.FLATTEN:
        H, W, C = int(row[Prog.IN_H]), int(row[Prog.IN_W]), int(row[Prog.IN_C])
        return D.reshape(m, C, H, W).transpose(0, 2, 3, 1).reshape(m, -1) if need_input else None
    return D  # ACTIVATION


def sequential_backprop(params, prog, loss_kind, X, Y, grad):
    """The summed gradient of the loss over the batch ``(X, Y)``, into ``grad`` (overwritten).

    Returns the summed loss (float64); no averaging, no penalty (as
    :func:`fastnet.reference.kernels.backprop_batch`).
    """
    m = X.shape[0]
    outs, records = _forward_all(params, prog, X)
    total = loss(loss_kind, outs[-1], Y)
    grad[...] = 0
    L = prog.shape[0]
    D = _output_delta(int(prog[L - 1, Prog.ACT]), loss_kind, outs[-1], Y)
    for l in range(L - 1, -1, -1):
        A_in = X if l == 0 else outs[l - 1]
        dA = _op_backward(params, prog[l], D, A_in, m, records[l], grad, l > 0)
        if l > 0:
            D = dA * dact_from_a(int(prog[l - 1, Prog.ACT]), outs[l - 1])
    return total


def _weight_ranges(prog):
    """``(start, stop)`` in ``params`` of every row's weights (bias rows excluded)."""
    for row in prog:
        if row[Prog.KIND] in (LayerKind.DENSE, LayerKind.CONV2D):
            start = int(row[Prog.POFF])
            yield start + int(row[Prog.OUT_C]), start + int(row[Prog.PLEN])


def sequential_penalty_value(penalty_kind, lam, params, prog):
    r"""The penalty of the program's weights (Dense and Conv2D, biases excluded), float64:
    :math:`\frac{\lambda}{2}\sum w^2` (L2) or :math:`\lambda\sum|w|` (L1)."""
    if penalty_kind == Penalty.NONE or lam == 0:
        return 0.0
    total = 0.0
    for lo, hi in _weight_ranges(prog):
        w = params[lo:hi].astype(np.float64)
        total += lam / 2 * np.sum(w * w) if penalty_kind == Penalty.L2 else lam * np.sum(np.abs(w))
    return float(total)


def _penalty_grad(penalty_kind, lam, params, prog, grad):
    if penalty_kind == Penalty.NONE or lam == 0:
        return
    lam = params.dtype.type(lam)
    for lo, hi in _weight_ranges(prog):
        grad[lo:hi] += lam * params[lo:hi] if penalty_kind == Penalty.L2 \
            else lam * np.sign(params[lo:hi])


def sequential_train_epoch(params, prog, loss_kind, X, Y, order, batch_size, optimizer, lr, mu,
                           rho, eps, penalty_kind, lam, state, t):
    """One epoch of (mini-)batch training of the program, as
    :func:`fastnet.reference.kernels.train_epoch`: for each batch of ``order``, the summed
    gradient (:func:`sequential_backprop`) divided by the batch's size, plus the penalty's
    gradient, then :func:`~fastnet.reference.kernels.optimizer_step` as step ``t + b``.

    Returns the sum over samples of the data loss, each measured with the
    weights before its batch's update.
    """
    m = order.shape[0]
    grad = np.empty_like(params)
    total = 0.0
    for b, start in enumerate(range(0, m, batch_size)):
        idx = order[start:start + batch_size]
        total += sequential_backprop(params, prog, loss_kind, X[idx], Y[idx], grad)
        grad /= params.dtype.type(idx.shape[0])
        _penalty_grad(penalty_kind, lam, params, prog, grad)
        optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps, t + b)
    return total


KERNELS = {name: globals()[name] for name in (
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weights", "pool2d_forward",
    "pool2d_backward", "sequential_forward", "sequential_backprop", "sequential_train_epoch",
    "sequential_penalty_value")}
