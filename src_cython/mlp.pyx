# cython: language_level=3
r"""Networks: forward pass, the course's backprop, mini-batch training, penalties and optimisers.

The kernels of :mod:`fastnet.reference.kernels` (same names, signatures and
in-place conventions) on the flat parameter layout of :mod:`fastnet._params`:
layer ``l`` is ``W_l = Theta_l.T`` of shape ``(n_l + 1, n_{l+1})``, bias in row 0.

Two paths compute the same numbers (up to the order of floating-point sums);
:func:`fastnet._paths.choose` picks one per call from the input's density and
the batch size (``FASTNET_PATH`` / ``fastnet._paths.use_path`` override it):

* the **dense path** (``_mlp_dense.pxi``): a mini-batch or the full batch goes
  through each layer as one BLAS GEMM per direction (``scipy.linalg.cython_blas``)
  with fused epilogues, then one fused pass of the optimiser over the
  parameters; online learning (``batch_size`` 1) runs matrix-vector loops over
  four weight rows at a time, sample ``t``'s step and sample ``t+1``'s forward
  pass in one pass over ``W_0`` (``_mlp_online.pxi``, ``fastnet_loops.h``);
* the **sparse path** (``_mlp_sparse.pxi``): the course's per-sample algorithm
  on blocks of samples, skipping the inputs that are exactly zero (raw MNIST
  pixels are ~80 % zeros), the samples of a batch cut into chunks on OpenMP
  threads (``_mlp_threads.pxi``).

The optimisers' steps and the penalties have one definition each
(``_mlp_optim.pxi``: ``step1``), used by both paths.  Each ``def`` checks its
arguments once (:mod:`fastnet._kernel_checks`), then runs without the GIL.
"""
import threading

import numpy as np
cimport numpy as cnp
cimport cython
from cython.parallel cimport prange, threadid
from libc.math cimport sqrt, pow, fabs
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memset
from scipy.linalg.cython_blas cimport sgemm, dgemm

from _common cimport (floating, f_sqrt, f_fma, prefetch_row, sigmoid, f_tanh, exp_nonpos,
                      act_df_from_a, activate_inplace, loss_term, loss_grad, fused_output,
                      penalty_term, fastnet_omp_max_threads, FASTNET_HAVE_OPENMP,
                      fastnet_wtime, ACT_LINEAR, ACT_SIGMOID, ACT_RELU, ACT_TANH, ACT_SOFTMAX,
                      PEN_NONE, PEN_L2, PEN_L1, OPT_SGD, OPT_MOMENTUM, OPT_RMSPROP, OPT_ADAM,
                      OPT_NESTEROV, STOP_TOL, STOP_PLATEAU, STATUS_RAN, STATUS_CONVERGED,
                      STATUS_DIVERGED, RUN_START_COST, RUN_BEST, RUN_WEIGHT_LIMIT, RUN_STOP,
                      RUN_TOL, RUN_PATIENCE, RUN_STOP_BEST, RUN_STOP_COUNT, RUN_STATUS,
                      RUN_EPOCHS, RUN_W_MAX)

from fastnet import _paths
from fastnet._params import aligned_zeros, pad_into, padded_layout, unpad_into
from fastnet._cython import _blas, _checks as chk

cnp.import_array()

include "_mlp_threads.pxi"
include "_mlp_optim.pxi"
include "_mlp_sparse.pxi"
include "_mlp_dense.pxi"
include "_mlp_online.pxi"
include "_mlp_epochs.pxi"


# ------------------------------------------------------------------ the kernels
cdef Py_ssize_t _first_out_of_range(const int64_t[::1] order, int64_t m) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(order.shape[0]):
        if <uint64_t>order[i] >= <uint64_t>m:  # a negative index is >= 2**63 as uint64
            return i
    return -1


cdef _check_order(str K, order, Py_ssize_t m):
    """``chk.order_array``'s check, its loop in C (3 us -> 0.5 us a call on 1,347 samples)."""
    chk.int_array(K, "order", order)
    cdef const int64_t[::1] o = order
    cdef Py_ssize_t bad
    with nogil:
        bad = _first_out_of_range(o, m) if o.shape[0] else -1
    if bad >= 0:
        chk.order_array(K, order, m)  # raises, with the message


def forward_network(params, sizes, kinds, X, out):
    """``out[...]`` = the network's output for the batch ``X`` (m, n0); ``out`` is (m, nL)."""
    K = "forward_network"
    lay = chk.Layout(K, params, sizes, kinds)
    chk.data(K, lay, X, dtype=params.dtype)
    chk.float_array(K, "out", out, ndim=2, dtype=params.dtype)
    chk.writable(K, "out", out)
    chk.shape(K, "out", out, (X.shape[0], int(lay.sizes[lay.L])))
    if X.shape[0] == 0:
        return
    if _paths.choose(X, lay.sizes, X.shape[0], "cython") == "sparse":
        _sparse_forward(lay, params, X, out)
    else:
        _dense_forward(lay, params, X, out)


def _backprop_common(K, params, sizes, kinds, loss_kind, X, Y, grad):
    lay = chk.Layout(K, params, sizes, kinds)
    loss_kind = chk.loss_pair(K, loss_kind, lay.kinds)
    chk.data(K, lay, X, Y, dtype=params.dtype)
    chk.float_array(K, "grad", grad, ndim=1, dtype=params.dtype)
    chk.writable(K, "grad", grad)
    chk.shape(K, "grad", grad, params.shape)
    if X.shape[0] == 0:
        grad[...] = 0
        return 0.0
    if _paths.choose(X, lay.sizes, X.shape[0], "cython") == "dense":
        return _dense_backprop(lay, loss_kind, params, X, Y, grad)
    if not params.flags.writeable:  # typed as writable (shared with train_epoch); never written
        params = params.copy()
    return _sparse_backprop(lay, loss_kind, params, X, Y, grad)


def backprop_samples(params, sizes, kinds, loss_kind, X, Y, grad):
    """The course's backprop: a loop over samples accumulating outer products.

    Overwrites ``grad`` with the *sum* over samples of each sample's gradient
    (no averaging, no penalty) and returns the summed loss (float64).
    """
    return _backprop_common("backprop_samples", params, sizes, kinds, loss_kind, X, Y, grad)


def backprop_batch(params, sizes, kinds, loss_kind, X, Y, grad):
    """The same result as :func:`backprop_samples`.

    This backend computes both the same way, on the path :func:`fastnet._paths.choose`
    picks: GEMMs over the whole batch (dense) or blocks of samples skipping the zero
    inputs (sparse).
    """
    return _backprop_common("backprop_batch", params, sizes, kinds, loss_kind, X, Y, grad)


def train_epoch(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer, lr, mu,
                rho, eps, penalty_kind, lam, state, t):
    """One epoch of (mini-)batch training, updating ``params`` and ``state`` in place.

    Batches ``order[0:bs], order[bs:2bs], ...``; for each: the summed gradient
    divided by the batch's size, plus the penalty's gradient, then the
    optimiser's step (0 sgd, 1 momentum, 2 RMSprop, 3 Adam, 4 Nesterov), the
    ``b``-th batch as step ``t + b``.  Returns the summed data loss of the
    samples, each measured before its batch's update.
    """
    K = "train_epoch"
    lay = chk.Layout(K, params, sizes, kinds)
    chk.writable(K, "params", params)
    loss_kind = chk.loss_pair(K, loss_kind, lay.kinds)
    chk.data(K, lay, X, Y, dtype=params.dtype)
    _check_order(K, order, X.shape[0])
    bs = chk.integer(K, "batch_size", batch_size, 1)
    opt = chk.code(K, "optimizer", optimizer, chk.OPTIMIZERS)
    pen = chk.code(K, "penalty_kind", penalty_kind, chk.PENALTIES)
    lr, mu, rho, eps = _hyper(K, lr, mu, rho, eps)
    lam = chk.real(K, "lam", lam)
    state = _state(K, state, params)
    t = chk.integer(K, "t", t, 0)
    if lam == 0:
        pen = PEN_NONE
    if order.shape[0] == 0:
        return 0.0
    path = _paths.choose(X, lay.sizes, bs, "cython")
    args = (lay, loss_kind, params, X, Y, order)
    if path == "sparse":
        return _sparse_train(*args, bs, opt, lr, mu, rho, eps, pen, lam, state, t)
    if bs == 1:
        return _online_dense(*args, opt, lr, mu, rho, eps, pen, lam, state, t)
    return _dense_train(*args, bs, opt, lr, mu, rho, eps, pen, lam, state, t)
