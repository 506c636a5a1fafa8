"""Argument checks of the convolution, pooling and layer-program kernels (every compiled backend).

The compiled loops run without bounds checking, so everything an index is
computed from is checked here, once per call: the arrays (with
:mod:`fastnet._kernel_checks`), the geometry of each convolution and pooling,
and the whole layer program (each row's input is the previous row's output,
parameter blocks inside ``params`` and of the right length, codes known, sample
indices of ``order`` inside ``X``).  A bad direct call raises ``TypeError`` or
``ValueError`` naming the kernel and the argument, never reads out of bounds.
"""
import numpy as np

from fastnet import _kernel_checks as kc
from fastnet._codes import Act, LayerKind, Prog, Loss

__all__ = ["conv_geometry", "pool_geometry", "Program", "order_array"]

_KINDS = {int(k): k.name.lower() for k in LayerKind}


def conv_geometry(kernel, X_shape, W_shape, out_shape, stride, pad_h, pad_w):
    """Check a convolution's shapes: ``X`` (m, H, W, C), ``W`` (kh, kw, C, F), ``out``
    (m, Ho, Wo, F), the stride and the padding (the kernel must fit the padded input)."""
    stride = kc.integer(kernel, "stride", stride, 1)
    pad_h = kc.integer(kernel, "pad_h", pad_h, 0)
    pad_w = kc.integer(kernel, "pad_w", pad_w, 0)
    m, H, W, C = X_shape
    kh, kw, C2, F = W_shape
    if C2 != C:
        raise ValueError(f"{kernel}: W has {C2} input channels, the images have {C}")
    if tuple(out_shape[:1]) != (m,) or out_shape[3] != F:
        raise ValueError(f"{kernel}: the output has shape {tuple(out_shape)}, expected "
                         f"({m}, Ho, Wo, {F})")
    Ho, Wo = out_shape[1], out_shape[2]
    if min(m, H, W, C, kh, kw, F, Ho, Wo) < 1:
        raise ValueError(f"{kernel}: every size must be >= 1 (images {tuple(X_shape)}, kernel "
                         f"{tuple(W_shape)}, output {tuple(out_shape)})")
    if pad_h >= kh or pad_w >= kw:
        raise ValueError(f"{kernel}: padding ({pad_h}, {pad_w}) must be smaller than the kernel "
                         f"({kh}, {kw})")
    if (Ho - 1) * stride + kh > H + 2 * pad_h + stride or \
            (Wo - 1) * stride + kw > W + 2 * pad_w + stride:
        raise ValueError(f"{kernel}: an output of {Ho}x{Wo} with stride {stride} and kernel "
                         f"{kh}x{kw} does not fit an input of {H}x{W} padded by "
                         f"({pad_h}, {pad_w})")
    return stride, pad_h, pad_w


def pool_geometry(kernel, X_shape, out_shape, pool_h, pool_w, stride):
    """Check a pooling's shapes: every window of ``out`` lies inside ``X``."""
    pool_h = kc.integer(kernel, "pool_h", pool_h, 1)
    pool_w = kc.integer(kernel, "pool_w", pool_w, 1)
    stride = kc.integer(kernel, "stride", stride, 1)
    m, H, W, C = X_shape
    if out_shape[0] != m or out_shape[3] != C:
        raise ValueError(f"{kernel}: the pooled shape {tuple(out_shape)} does not match the "
                         f"input {tuple(X_shape)}")
    Ho, Wo = out_shape[1], out_shape[2]
    if min(m, H, W, C, Ho, Wo) < 1 or (Ho - 1) * stride + pool_h > H or \
            (Wo - 1) * stride + pool_w > W:
        raise ValueError(f"{kernel}: {Ho}x{Wo} windows of {pool_h}x{pool_w} every {stride} do "
                         f"not fit an input of {H}x{W}")
    return pool_h, pool_w, stride


def pool_kind(kernel, kind):
    return kc.code(kernel, "kind", kind, {int(LayerKind.MAXPOOL2D): "maxpool2d",
                                          int(LayerKind.AVGPOOL2D): "avgpool2d"})


def order_array(kernel, order, m):
    kc.int_array(kernel, "order", order)
    if order.shape[0] == 0:
        raise ValueError(f"{kernel}: order is empty")
    if order.min() < 0 or order.max() >= m:
        raise ValueError(f"{kernel}: order must hold sample indices in [0, {m}), got values in "
                         f"[{int(order.min())}, {int(order.max())}]")
    return order


class Program:
    """A checked layer program: rows, input and output widths, the largest row."""

    __slots__ = ("prog", "L", "n_in", "n_out", "widths")

    def __init__(self, kernel, params, prog):
        kc.float_array(kernel, "params", params, ndim=1)
        prog = kc.int_array(kernel, "prog", prog, ndim=2)
        if prog.shape[0] < 1 or prog.shape[1] != Prog.WIDTH:
            raise ValueError(f"{kernel}: prog must have shape (rows >= 1, {int(Prog.WIDTH)}), got "
                             f"{prog.shape}")
        P = params.shape[0]
        widths = []
        for l, row in enumerate(prog):
            r = [int(v) for v in row]
            kind = r[Prog.KIND]
            where = f"{kernel}: prog row {l}"
            if kind not in _KINDS:
                raise ValueError(f"{where}: unknown layer kind {kind}; expected one of {_KINDS}")
            act = r[Prog.ACT]
            if act not in kc.ACTIVATIONS or (act == Act.SOFTMAX and l != prog.shape[0] - 1):
                raise ValueError(f"{where}: bad activation code {act} (softmax only last)")
            ih, iw, ic, oh, ow, oc = (r[Prog.IN_H], r[Prog.IN_W], r[Prog.IN_C], r[Prog.OUT_H],
                                      r[Prog.OUT_W], r[Prog.OUT_C])
            if min(ih, iw, ic, oh, ow, oc) < 1:
                raise ValueError(f"{where}: shapes must be positive, got {(ih, iw, ic)} -> "
                                 f"{(oh, ow, oc)}")
            if l and (ih, iw, ic) != tuple(int(v) for v in
                                          prog[l - 1, Prog.OUT_H:Prog.OUT_C + 1]):
                raise ValueError(f"{where}: its input {(ih, iw, ic)} is not the previous row's "
                                 f"output")
            poff, plen = r[Prog.POFF], r[Prog.PLEN]
            kh, kw, s = r[Prog.KH], r[Prog.KW], r[Prog.STRIDE]
            if kind == LayerKind.DENSE:
                need = (ih * iw * ic + 1) * oc
                if (ih, iw, oh, ow) != (1, 1, 1, 1):
                    raise ValueError(f"{where}: a dense row takes and gives flat samples")
            elif kind == LayerKind.DENSE_TIED:
                need = oc
                tied = r[Prog.TIED]
                if (ih, iw, oh, ow) != (1, 1, 1, 1) or tied < 0 or \
                        tied + (oc + 1) * ic > P:
                    raise ValueError(f"{where}: a tied dense row needs flat samples and its tied "
                                     f"block ({tied}, {(oc + 1) * ic} values) inside params")
            elif kind == LayerKind.CONV2D:
                need = (1 + kh * kw * ic) * oc
                conv_geometry(kernel, (1, ih, iw, ic), (kh, kw, ic, oc), (1, oh, ow, oc), s,
                              r[Prog.PAD_H], r[Prog.PAD_W])
            elif kind in (LayerKind.MAXPOOL2D, LayerKind.AVGPOOL2D):
                need = 0
                if oc != ic:
                    raise ValueError(f"{where}: pooling keeps the channels")
                pool_geometry(kernel, (1, ih, iw, ic), (1, oh, ow, oc), kh, kw, s)
            else:  # FLATTEN, ACTIVATION
                need = 0
                if ih * iw * ic != oh * ow * oc or (kind == LayerKind.ACTIVATION and (
                        ih, iw, ic) != (oh, ow, oc)):
                    raise ValueError(f"{where}: a {_KINDS[kind]} row keeps the number of values")
                if kind == LayerKind.FLATTEN and (oh, ow) != (1, 1):
                    raise ValueError(f"{where}: a flatten row gives flat samples")
            if plen != need or poff < 0 or poff + plen > P:
                raise ValueError(f"{where}: its parameter block ({poff}, {plen}) must hold "
                                 f"{need} values inside params ({P})")
            widths.append(oh * ow * oc)
        last = prog[-1]
        if (int(last[Prog.OUT_H]), int(last[Prog.OUT_W])) != (1, 1):
            raise ValueError(f"{kernel}: the program's output must be flat")
        self.prog = prog
        self.L = prog.shape[0]
        self.n_in = int(prog[0, Prog.IN_H] * prog[0, Prog.IN_W] * prog[0, Prog.IN_C])
        self.n_out = int(last[Prog.OUT_C])
        self.widths = widths

    def data(self, kernel, params, X, Y=None, out=None):
        kc.float_array(kernel, "X", X, ndim=2, dtype=params.dtype)
        if X.shape[1] != self.n_in or X.shape[0] < 1:
            raise ValueError(f"{kernel}: X has shape {X.shape}, expected (m >= 1, {self.n_in})")
        if Y is not None:
            kc.float_array(kernel, "Y", Y, ndim=2, dtype=params.dtype)
            kc.shape(kernel, "Y", Y, (X.shape[0], self.n_out))
        if out is not None:
            kc.float_array(kernel, "out", out, ndim=2, dtype=params.dtype)
            kc.writable(kernel, "out", out)
            kc.shape(kernel, "out", out, (X.shape[0], self.n_out))

    def loss(self, kernel, loss_kind):
        loss_kind = kc.code(kernel, "loss_kind", loss_kind, kc.LOSSES)
        if (int(self.prog[-1, Prog.ACT]) == Act.SOFTMAX) != (loss_kind == Loss.LOG_LOSS):
            raise ValueError(f"{kernel}: loss_kind 2 (log-loss) goes with a softmax output and "
                             f"only with it")
        return loss_kind


def training(kernel, params, prog, loss_kind, X, Y, order, batch_size, optimizer, lr, mu, rho,
             eps, penalty_kind, lam, state, t):
    """The checked scalar arguments of ``sequential_train_epoch`` (a tuple)."""
    p = Program(kernel, params, prog)
    kc.writable(kernel, "params", params)
    p.data(kernel, params, X, Y)
    order_array(kernel, order, X.shape[0])
    kc.float_array(kernel, "state", state, ndim=1, dtype=params.dtype)
    kc.writable(kernel, "state", state)
    if state.shape[0] != 2 * params.shape[0]:
        raise ValueError(f"{kernel}: state has {state.shape[0]} entries, expected "
                         f"2 * {params.shape[0]}")
    return (p, p.loss(kernel, loss_kind), kc.integer(kernel, "batch_size", batch_size, 1),
            kc.code(kernel, "optimizer", optimizer, kc.OPTIMIZERS), kc.real(kernel, "lr", lr),
            kc.real(kernel, "mu", mu), kc.real(kernel, "rho", rho), kc.real(kernel, "eps", eps),
            kc.code(kernel, "penalty_kind", penalty_kind, kc.PENALTIES),
            kc.real(kernel, "lam", lam), kc.integer(kernel, "t", t, 0))
