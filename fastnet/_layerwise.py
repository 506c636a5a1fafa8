r"""Networks with user-defined activations (the course's ``class Softplus: f, df``), on any backend.

A layer whose activation is a :class:`fastnet._validation.UserActivation` has
no kernel code, so the whole-network kernels (``forward_network``,
``backprop_*``, ``train_epoch``) cannot run it.  :func:`network_kernels`
gives, for the active backend, a kernel table with the same names,
signatures and in-place conventions that can:

* ``numba``: the user's ``f`` and ``df`` are compiled with ``numba.njit`` (as
  functions of the layer's 2-D array of pre-activations) and called inside
  the generic kernels of :mod:`fastnet._numba.custom`: one compiled call per
  epoch, as for the built-in activations;
* otherwise (``cython``, or numba when ``f``/``df`` do not compile): this
  module's :class:`LayerwiseKernels` run the network layer by layer in
  numpy, the matrix products in BLAS, the built-in activations with the
  backend's ``activation`` kernels and the user's ``f``/``df`` in numpy on the
  layer's buffer, and the optimiser and penalty with the backend's
  kernels; that runs Python per batch, and fastnet warns once per class;
* ``reference``: :class:`LayerwiseKernels` on the reference kernels (numpy
  anyway: no warning).

The results equal :mod:`fastnet.reference`'s (which calls ``f``/``df`` as they
are) to rounding.  ``backprop_samples`` gives the per-sample sums of the
course's backprop computed as one batch (the same numbers in another order).
"""
import threading
import warnings

import numpy as np

from fastnet import _backend
from fastnet._codes import Act, Loss
from fastnet._params import layer_views
from fastnet.reference.epochs import EpochLoopKernels

__all__ = ["USER_KIND", "network_kernels", "LayerwiseKernels", "has_user_activation"]

#: The ``kinds`` entry of a layer with a user activation (never seen by a built-in kernel).
USER_KIND = -1

_lock = threading.Lock()
_cache = {}
_warned = set()


def has_user_activation(acts):
    """Whether a network's activations include a user-defined one."""
    return any(getattr(a, "code", None) is None for a in acts)


def _warn_once(act, backend, why):
    key = (id(act.source), backend)
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(
        f"fastnet: the activation {act.label} runs in numpy on its layer's buffer between the "
        f"{backend} backend's compiled steps ({why}), with Python per batch: slower than a "
        f"built-in activation (Sigmoid, ReLu, TanH, Linear), same results",
        UserWarning, stacklevel=4)


def network_kernels(acts):
    """The network kernels for a model with these activations on the active backend."""
    name = _backend.get_backend()
    base = _backend.kernels()
    key = (name, tuple(id(getattr(a, "source", a)) for a in acts))
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == [getattr(a, "source", a) for a in acts]:
        return hit[1]
    table = None
    if name == "numba":
        from fastnet._numba import custom
        table, failed = custom.kernels_for(acts, base)
        if table is None:
            names = ", ".join(a.label for a in failed)
            for a in acts:
                if getattr(a, "code", None) is None:
                    _warn_once(a, name, f"its f/df did not compile with numba.njit: {failed[a]}"
                               if a in failed else f"the network's {names} did not compile "
                               f"with numba.njit")
    elif name == "cython":
        for a in acts:
            if getattr(a, "code", None) is None:
                _warn_once(a, name, "the Cython kernels take only the built-in activations")
    if table is None:
        table = LayerwiseKernels(base, acts)
    with _lock:
        _cache[key] = ([getattr(a, "source", a) for a in acts], table)
    return table


class LayerwiseKernels(EpochLoopKernels):
    """The network kernels, layer by layer in numpy, for a model with user activations.

    ``base`` is the backend's kernel table (its elementwise, loss, penalty and
    optimiser kernels are used); ``acts`` the layers' activations (reference
    classes or :class:`~fastnet._validation.UserActivation`).  The other
    kernels of the table are ``base``'s.
    """

    def __init__(self, base, acts):
        self.base = base
        self.acts = list(acts)
        for k in ("activation", "activation_grad", "loss", "penalty_value", "penalty_grad",
                  "optimizer_step", "linear_gd", "perceptron_train"):
            setattr(self, k, getattr(base, k))

    # ---- one layer
    def _f(self, l, Z):
        act = self.acts[l]
        if act.code is None:
            return act.f(Z)
        out = np.empty_like(Z)
        if act.code == Act.SOFTMAX:
            self.base.activation(int(act.code), Z, out)
        else:
            self.base.activation(int(act.code), Z.reshape(-1), out.reshape(-1))
        return out

    def _df(self, l, Z):
        act = self.acts[l]
        if act.code is None:
            return act.df(Z)
        out = np.empty_like(Z)
        self.base.activation_grad(int(act.code), Z.reshape(-1), out.reshape(-1))
        return out

    def _forward(self, params, sizes, X):
        ins, zs, A = [], [], X
        for l, W in enumerate(layer_views(params, sizes)):
            Z = A @ W[1:] + W[0]
            ins.append(A)
            zs.append(Z)
            A = self._f(l, Z)
        return ins, zs, A

    def _output_delta(self, loss_kind, A, Z, Y):
        from fastnet.reference.kernels import loss_grad_a
        code = self.acts[-1].code
        if (code, loss_kind) in ((Act.SIGMOID, Loss.CROSS_ENTROPY), (Act.SOFTMAX, Loss.LOG_LOSS)):
            return A - Y
        return loss_grad_a(loss_kind, A, Y) * self._df(len(self.acts) - 1, Z)

    # ---- the kernels
    def forward_network(self, params, sizes, kinds, X, out):
        """``out[...]`` = the network's output (see :func:`fastnet.reference.kernels.forward_network`)."""
        out[...] = self._forward(params, sizes, X)[2]

    def backprop_batch(self, params, sizes, kinds, loss_kind, X, Y, grad):
        """Summed gradient into ``grad``, summed loss returned (see :mod:`fastnet.reference.kernels`)."""
        Ws = layer_views(params, sizes)
        Gs = layer_views(grad, sizes)
        ins, zs, A = self._forward(params, sizes, X)
        total = self.base.loss(int(loss_kind), np.ascontiguousarray(A), Y)
        delta = self._output_delta(int(loss_kind), A, zs[-1], Y)
        for l in range(len(Ws) - 1, -1, -1):
            Gs[l][0] = delta.sum(axis=0)
            Gs[l][1:] = ins[l].T @ delta
            if l > 0:
                delta = (delta @ Ws[l][1:].T) * self._df(l - 1, zs[l - 1])
        return float(total)

    backprop_samples = backprop_batch

    def train_epoch(self, params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer,
                    lr, mu, rho, eps, penalty_kind, lam, state, t):
        """One epoch, a batch at a time (see :func:`fastnet.reference.kernels.train_epoch`)."""
        grad = np.empty_like(params)
        m = order.shape[0]
        total = 0.0
        for b, start in enumerate(range(0, m, batch_size)):
            idx = order[start:start + batch_size]
            total += self.backprop_batch(params, sizes, kinds, loss_kind, X[idx], Y[idx], grad)
            grad /= params.dtype.type(idx.shape[0])
            if penalty_kind and lam:
                self.base.penalty_grad(penalty_kind, lam, params, sizes, grad)
            self.base.optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps, t + b)
        return total
