r"""The numba backend's network and linear-model kernels: checked wrappers and the path choice.

Same names, signatures and in-place conventions as
:mod:`fastnet.reference.kernels` (read its docstrings for the meaning of
every argument).  Each kernel of :data:`KERNELS` is a Python wrapper that

1. checks its arguments once per call with :mod:`fastnet._kernel_checks`
   (ndarray, dtype, C-contiguity, ``params`` against ``sizes``, the codes,
   the widths of X and Y, the range of ``order``, the length of ``state``):
   a wrong array is refused with a ``TypeError``/``ValueError`` naming it,
   never copied silently (most are written in place) and never read out of
   bounds by the compiled loops, which do not check indices;
2. for the network kernels, picks the algorithm with
   :func:`fastnet._paths.choose` (the input's measured density and the
   shapes; ``FASTNET_PATH`` / :func:`fastnet.use_path` override it):

   * ``'dense'`` -- whole batches through BLAS with fused epilogues
     (:mod:`fastnet._numba._dense`), and for online learning the
     register-blocked row passes of :mod:`fastnet._numba._online`;
   * ``'sparse'`` -- the zero-skipping row kernels
     (:mod:`fastnet._numba._sparse`, and :mod:`fastnet._numba._online` with
     ``skip_zeros``);
3. calls the compiled code once for the whole call (a whole epoch): no
   Python runs per sample or per batch, except for batches big enough to be
   split over threads (below), which are handed to the threads one by one.

Threads.  BLAS runs single-threaded inside the kernels
(:mod:`fastnet._numba._blas`: OpenBLAS's own threads spin between the small
products of a batch, and stall them on a busy machine).  Large sums of
per-sample gradients -- the course's ``backprop``, ``forward_network`` over
many rows, batches of at least :data:`THREAD_MIN_FLOPS` on the dense path or
:data:`PARALLEL_MIN_BATCH` samples on the zero-skipping path -- are cut into
blocks of rows run by :func:`fastnet._threads.run_blocks`
(``FASTNET_NUM_THREADS`` threads, default: the CPUs this process may use),
each block a ``nogil`` kernel writing its own gradient buffer; the buffers
are summed in block order, so results are deterministic for a given thread
count.  Smaller dense batches (at least :data:`BLOCKS_MIN_FLOPS` and
:data:`BLOCKS_MIN_ROWS` rows a thread: batch 128 on MNIST's networks) are
split the same way inside one compiled
epoch whose blocks run on Numba's own threads (``prange``, when its
threading layer is TBB or OpenMP: :func:`_parallel_ok`).  Linear
regression's iterations are split the same way for large X.
"""
import numpy as np

from fastnet import _kernel_checks as kc
from fastnet import _paths, _threads
from fastnet._codes import Act, Optimizer, Penalty
from fastnet._numba import _compile_notice  # noqa: F401  (says so on stderr when compiling)
from fastnet._numba import (_blas, _dense, _elementwise, _gemm, _linear, _online, _optim,
                            _sparse)
from fastnet._numba._common import offsets
from fastnet._numba._threading import parallel_ok
from fastnet._params import aligned_zeros, pad_into, padded_layout, unpad_into
from fastnet.reference.epochs import epoch_loop

__all__ = ["KERNELS", "activation", "activation_grad", "loss", "penalty_value", "penalty_grad",
           "optimizer_step", "forward_network", "backprop_samples", "backprop_batch",
           "train_epoch", "train_epochs", "linear_gd", "perceptron_train"]

#: Below this many input values (samples x input width) sums over samples run serially.
PARALLEL_MIN_WORK = 200_000
#: Zero-skipping batches of fewer samples are trained serially even when large enough in
#: values: their threads are dispatched from Python once per batch.
PARALLEL_MIN_BATCH = 2048
#: Dense batches of at least this many FLOPs (forward, weight gradients, hidden error terms)
#: are split over threads by blocks of rows (the full batch of every network here, batches
#: of 400 samples and more of 784-256-128-10).  Measured on this shared 2-core machine,
#: splitting mini-batches of 32 and 128 (32 to 130 MFLOP) over two threads, handed over from
#: Python per batch, made epochs 1.3x to 1.8x *slower*: the second core is rarely free for
#: the whole of a batch.
THREAD_MIN_FLOPS = 400e6
#: smaller dense batches with at least this many FLOPs a thread run their blocks of rows on
#: Numba's threads inside one compiled epoch (:func:`fastnet._numba._dense.train_epoch_blocks`)
BLOCKS_MIN_FLOPS = 10e6
#: ... and at least this many rows a thread (blocks of 16 rows, batch 32 on two threads, ran
#: no faster than one thread and flipped between 1x and 1.8x slower from run to run)
BLOCKS_MIN_ROWS = 64
#: Dense batches of at most this many rows, with at least PARTS_MIN_WORK multiply-adds
#: (rows x parameters), run as one block whose products are cut in one part per thread
#: (:func:`fastnet._numba._dense.train_epoch_parts`).  Measured on Zen 4 (2 cores),
#: standardised MNIST, the three nets of the benchmark matrix: 1.37x to 1.56x faster epochs
#: than one thread at batch 32; at 64, 0.98x to 1.48x; at 128, 0.94x to 1.04x against two
#: blocks of rows (as the Cython backend, which also measured 48: 1.09x to 1.16x)
PARTS_MAX_ROWS = 64
#: ... and of up to PARTS_MAX_ROWS_WIDE rows for nets of at least PARTS_WIDE_WORK
#: multiply-adds a sample.  Measured again once the parts kernel cut every product and the
#: step by rows of the weights (Intel Xeon, AVX-512, 2 cores, standardised MNIST, in-process,
#: blocks of rows / parts): batch 64 1.40, 1.49, 1.68; batch 128 0.90 (784-50-10), 1.17
#: (784-128-10), 1.29 (784-256-128-10)
PARTS_MAX_ROWS_WIDE = 128
PARTS_WIDE_WORK = 1e5
PARTS_MIN_WORK = 1e6
#: ... a layer's product cut only when each part gets at least this many multiply-adds
PARTS_MIN_GEMM = 1.5e5


#: whether Numba's threading layer is TBB or OpenMP (see :mod:`fastnet._numba._threading`)
_parallel_ok = parallel_ok


def _flops_per_sample(sizes):
    prods = [int(sizes[l]) * int(sizes[l + 1]) for l in range(len(sizes) - 1)]
    return 2 * (2 * sum(prods) + sum(prods[1:]))


def _threads_for(m, width):
    nt = _threads.default_threads()
    return nt if nt > 1 and m * width >= PARALLEL_MIN_WORK else 1


# ================================================================== elementwise
def activation(kind, Z, out):
    """``out[...] = f(Z)`` (see :func:`fastnet.reference.kernels.activation`)."""
    K = "activation"
    kind = kc.code(K, "kind", kind, kc.ACTIVATIONS)
    kc.float_array(K, "Z", Z)
    kc.writable(K, "out", kc.float_array(K, "out", out, dtype=Z.dtype))
    kc.shape(K, "out", out, Z.shape)
    if kind == Act.SOFTMAX:
        if Z.ndim == 0:
            raise ValueError(f"{K}: softmax needs at least a 1-D Z")
        if Z.size:
            _elementwise.softmax_rows(Z.reshape(-1, Z.shape[-1]), out.reshape(-1, Z.shape[-1]))
    else:
        _elementwise.activation_flat(kind, Z.reshape(-1), out.reshape(-1))


def activation_grad(kind, Z, out):
    """``out[...] = f'(Z)`` (see :func:`fastnet.reference.kernels.activation_grad`)."""
    K = "activation_grad"
    kind = kc.code(K, "kind", kind, kc.ACTIVATIONS)
    if kind == Act.SOFTMAX:
        raise ValueError(f"{K}: softmax has no elementwise derivative")
    kc.float_array(K, "Z", Z)
    kc.writable(K, "out", kc.float_array(K, "out", out, dtype=Z.dtype))
    kc.shape(K, "out", out, Z.shape)
    _elementwise.activation_grad_flat(kind, Z.reshape(-1), out.reshape(-1))


def loss(loss_kind, A, Y):
    """Summed loss, float64 (see :func:`fastnet.reference.kernels.loss`)."""
    K = "loss"
    loss_kind = kc.code(K, "loss_kind", loss_kind, kc.LOSSES)
    kc.float_array(K, "A", A, ndim=2)
    kc.float_array(K, "Y", Y, ndim=2, dtype=A.dtype)
    kc.shape(K, "Y", Y, A.shape)
    return float(_elementwise.loss_sum(loss_kind, A, Y))


# ====================================================== penalties and optimisers
def penalty_value(penalty_kind, lam, params, sizes):
    """Penalty of the weights, float64 (see :func:`fastnet.reference.kernels.penalty_value`)."""
    K = "penalty_value"
    penalty_kind = kc.code(K, "penalty_kind", penalty_kind, kc.PENALTIES)
    lam = kc.real(K, "lam", lam)
    sizes, offs = kc.network_shape(K, params, sizes)
    if penalty_kind == Penalty.NONE or lam == 0:
        return 0.0
    return float(_optim.penalty_value(penalty_kind, lam, params, sizes, offs))


def penalty_grad(penalty_kind, lam, params, sizes, grad):
    """``grad +=`` the penalty's gradient (see :func:`fastnet.reference.kernels.penalty_grad`)."""
    K = "penalty_grad"
    penalty_kind = kc.code(K, "penalty_kind", penalty_kind, kc.PENALTIES)
    lam = kc.real(K, "lam", lam)
    sizes, offs = kc.network_shape(K, params, sizes)
    kc.writable(K, "grad", kc.float_array(K, "grad", grad, ndim=1, dtype=params.dtype))
    kc.shape(K, "grad", grad, params.shape)
    if penalty_kind == Penalty.NONE or lam == 0:
        return
    _optim.penalty_grad(penalty_kind, lam, params, sizes, offs, grad)


def _hyper(K, lr, mu, rho, eps):
    return kc.real(K, "lr", lr), kc.real(K, "mu", mu), kc.real(K, "rho", rho), kc.real(K, "eps",
                                                                                        eps)


def optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps, t):
    """One optimiser update in place (see :func:`fastnet.reference.kernels.optimizer_step`)."""
    K = "optimizer_step"
    optimizer = kc.code(K, "optimizer", optimizer, kc.OPTIMIZERS)
    kc.writable(K, "params", kc.float_array(K, "params", params))
    kc.float_array(K, "grad", grad, dtype=params.dtype)
    kc.shape(K, "grad", grad, params.shape)
    kc.state_array(K, state, params.size, params.dtype)
    lr, mu, rho, eps = _hyper(K, lr, mu, rho, eps)
    t = kc.integer(K, "t", t, 0)
    _optim.optimizer_step(optimizer, params.reshape(-1), grad.reshape(-1), state, lr, mu, rho,
                          eps, t)


# ===================================================================== networks
def _network(K, params, sizes, kinds, X, Y=None):
    lay = kc.Layout(K, params, sizes, kinds)
    kc.data(K, lay, X, Y, dtype=params.dtype)
    return lay


def _sum_blocks(blocks, out):
    """``out = blocks[0] + blocks[1] + ...`` in block order (deterministic)."""
    np.copyto(out, blocks[0])
    for g in blocks[1:]:
        out += g


def _gradient_of(path, params, sizes, kinds, loss_kind, X, Y, idx, grad):
    """``grad =`` the summed gradient of the samples ``idx`` on ``path``; returns the summed loss.

    Large sums are cut into blocks of samples run on threads
    (:func:`fastnet._threads.run_blocks`), each into its own buffer, summed
    in block order.
    """
    m = idx.shape[0]
    nt = _threads_for(m, X.shape[1])
    if path == "dense":
        def job(b, lo, hi, out):
            return _dense.gradient(params, sizes, kinds, loss_kind, X, Y, idx[lo:hi], out)
    else:
        def job(b, lo, hi, out):
            return _sparse.accumulate(params, sizes, kinds, loss_kind, X, Y, idx, lo, hi, out,
                                      True)
    with _blas.single_thread():
        if nt == 1:
            return float(job(0, 0, m, grad))
        Gt = np.empty((_threads.n_blocks(nt, m), params.shape[0]), params.dtype)
        losses = _threads.run_blocks(nt, m, lambda b, lo, hi: job(b, lo, hi, Gt[b]))
    _sum_blocks(Gt, grad)
    return float(sum(losses))


def forward_network(params, sizes, kinds, X, out):
    """``out[...]`` = the network's output (:func:`fastnet.reference.kernels.forward_network`)."""
    K = "forward_network"
    lay = _network(K, params, sizes, kinds, X)
    kc.writable(K, "out", kc.float_array(K, "out", out, ndim=2, dtype=params.dtype))
    kc.shape(K, "out", out, (X.shape[0], int(lay.sizes[-1])))
    m = X.shape[0]
    if m == 0:
        return
    dense = _paths.choose(X, lay.sizes, m, "numba") == "dense"
    fwd = _dense.forward_rows if dense else _sparse.forward_rows
    with _blas.single_thread():
        _threads.run_blocks(_threads_for(m, X.shape[1]), m,
                            lambda b, lo, hi: fwd(params, lay.sizes, lay.kinds, X, out, lo, hi))


def _gradient(K, params, sizes, kinds, loss_kind, X, Y, grad):
    lay = _network(K, params, sizes, kinds, X, Y)
    loss_kind = kc.loss_pair(K, loss_kind, lay.kinds)
    kc.writable(K, "grad", kc.float_array(K, "grad", grad, ndim=1, dtype=params.dtype))
    kc.shape(K, "grad", grad, params.shape)
    m = X.shape[0]
    return _gradient_of(_paths.choose(X, lay.sizes, m, "numba"), params, lay.sizes, lay.kinds,
                        loss_kind, X, Y, np.arange(m, dtype=np.int64), grad)


def backprop_samples(params, sizes, kinds, loss_kind, X, Y, grad):
    """The course's per-sample backprop (see :func:`fastnet.reference.kernels.backprop_samples`).

    The gradient is a sum over samples, so it is computed as
    :func:`backprop_batch` is, on whichever path :func:`fastnet._paths.choose`
    picks: the same numbers up to the order of the sums.
    """
    return _gradient("backprop_samples", params, sizes, kinds, loss_kind, X, Y, grad)


def backprop_batch(params, sizes, kinds, loss_kind, X, Y, grad):
    """Backprop with matrix products (see :func:`fastnet.reference.kernels.backprop_batch`)."""
    return _gradient("backprop_batch", params, sizes, kinds, loss_kind, X, Y, grad)


def _epoch_threaded(path, params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer,
                    lr, mu, rho, eps, penalty, lam, state, t):
    """Large batches: each batch's samples split over threads, then one optimiser step."""
    offs = offsets(sizes)
    G = np.empty_like(params)
    m = order.shape[0]
    total = 0.0
    for step, start in enumerate(range(0, m, batch_size)):
        stop = min(start + batch_size, m)
        # a batch's gradient is a sum: visiting its rows in memory order changes only the
        # rounding, and lets the blocks use runs of X in place
        idx = np.sort(order[start:stop])
        total += _gradient_of(path, params, sizes, kinds, loss_kind, X, Y, idx, G)
        _optim.step_network(params, G, state, sizes, offs, stop - start, optimizer, lr, mu, rho,
                            eps, penalty, lam, t + step, False)
    return total


def _dense_epoch_threaded(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer,
                          lr, mu, rho, eps, penalty, lam, state, t, nt):
    """Dense path, batches large enough to split: each batch's rows in ``nt`` blocks on threads.

    Every block has its own work buffers and gradient (allocated once per
    call); the gradients are summed in block order and one fused step follows.
    The batches are dispatched from Python: see :data:`THREAD_MIN_FLOPS`.
    """
    offs = offsets(sizes)
    m = order.shape[0]
    B = min(batch_size, m)
    # One block per thread, the full batch included, as the Cython backend does: each block
    # is done in chunks of _dense.CHUNK rows, so its rows of X are still in cache for the
    # weight gradient.  Measured on Zen 2 (2 cores), standardised MNIST, full batch of 8,000,
    # in-process alternating, two builds each: with 4 blocks per thread (before) 784-50-10
    # 14.9-16.6 ms an epoch, 784-128-10 28.5-29.7, 784-256-128-10 68.3-69.6; with one block
    # per thread 14.4-14.8, 25.1-25.6, 60.0-61.2 (4 blocks also summed 8 gradients, not 2).
    nb = nt
    bufs = [_dense.buffers(params, sizes, X, Y, -(-B // nb)) for _ in range(nb)]
    Gs = np.empty((nb, params.shape[0]), params.dtype)
    total = 0.0
    for step, start in enumerate(range(0, m, B)):
        stop = min(start + B, m)
        # the full batch in memory order: its blocks are then runs of X, used in place
        idx = np.sort(order[start:stop]) if B == m else order[start:stop]
        losses = _threads.run_blocks(nt, stop - start, lambda b, lo, hi: _dense.batch_gradient(
            params, sizes, offs, kinds, loss_kind, X, Y, idx[lo:hi], Gs[b], *bufs[b]),
            nblocks=nb)
        total += sum(losses)
        _dense.sum_rows_into(Gs)
        _optim.step_network(params, Gs[0], state, sizes, offs, stop - start, optimizer, lr, mu,
                            rho, eps, penalty, lam, t + step, False)
    return total


def train_epoch(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer, lr, mu, rho,
                eps, penalty_kind, lam, state, t):
    """One epoch of (mini-)batch training (see :func:`fastnet.reference.kernels.train_epoch`)."""
    K = "train_epoch"
    lay = _network(K, params, sizes, kinds, X, Y)
    kc.writable(K, "params", params)
    loss_kind = kc.loss_pair(K, loss_kind, lay.kinds)
    kc.order_array(K, order, X.shape[0])
    batch_size = kc.integer(K, "batch_size", batch_size, 1)
    optimizer = kc.code(K, "optimizer", optimizer, kc.OPTIMIZERS)
    penalty = kc.code(K, "penalty_kind", penalty_kind, kc.PENALTIES)
    lr, mu, rho, eps = _hyper(K, lr, mu, rho, eps)
    lam = kc.real(K, "lam", lam)
    kc.state_array(K, state, params.shape[0], params.dtype)
    t = kc.integer(K, "t", t, 0)
    if lam == 0:
        penalty = int(Penalty.NONE)
    m = order.shape[0]
    if m == 0:
        return 0.0
    sz, kd = lay.sizes, lay.kinds
    path = _paths.choose(X, sz, batch_size, "numba")
    if batch_size == 1 and optimizer == Optimizer.SGD and penalty in (Penalty.NONE, Penalty.L2):
        decay = 1.0 - lr * lam if penalty == Penalty.L2 else 1.0
        skip = path == "sparse" and decay == 1.0
        return _online_padded(params, sz, kd, loss_kind, X, Y, order, lr, decay, skip)
    args = (params, sz, kd, loss_kind, X, Y, order, batch_size, optimizer, lr, mu, rho, eps,
            penalty, lam, state, t)
    B = min(batch_size, m)
    nt = _threads.default_threads()
    with _blas.single_thread():
        work = B * _flops_per_sample(sz)
        if path == "dense" and nt > 1 and work >= THREAD_MIN_FLOPS:
            return float(_dense_epoch_threaded(*args, nt))
        wide = params.shape[0] >= PARTS_WIDE_WORK
        if path == "dense" and nt > 1 and (B <= PARTS_MAX_ROWS or (
                B <= PARTS_MAX_ROWS_WIDE and wide)) and \
                B * params.shape[0] >= PARTS_MIN_WORK and _parallel_ok():
            return float(_dense.train_epoch_parts(*args, nt, _gemm.gemm_address(params.dtype),
                                                  PARTS_MIN_GEMM))
        if path == "dense" and nt > 1 and work >= BLOCKS_MIN_FLOPS * nt and \
                B >= BLOCKS_MIN_ROWS * nt and _parallel_ok():
            return float(_dense.train_epoch_blocks(*args, nt))
        if path == "sparse" and _threads_for(B, X.shape[1]) > 1 and (
                B >= PARALLEL_MIN_BATCH or B == m):
            return float(_epoch_threaded(path, *args))
        if path == "dense":
            return float(_dense.train_epoch(*args))
        return float(_sparse.train_epoch(*args))


#: an online epoch of at least this many samples runs on a padded copy of the weights
PAD_MIN_SAMPLES = 16


def _online_padded(params, sizes, kinds, loss_kind, X, Y, order, lr, decay, skip):
    """An online epoch (:func:`fastnet._numba._online.online_epoch`).  With
    ``PAD_MIN_SAMPLES`` samples or more it runs on a copy of the weights in the padded layout
    of :func:`fastnet._params.padded_layout` (rows padded with zeros to whole 32-byte vectors
    on 32-byte boundaries: no scalar tails, no split loads), copied back at the end.
    Measured on 2,000 MNIST samples (in-process A/B, AVX2, Zen 3): 784-50-10 1.14x faster
    standardised, 784-256-128-10 1.19x, 784-128-10 (rows already whole vectors) within the
    noise."""
    if order.shape[0] < PAD_MIN_SAMPLES:
        return float(_online.online_epoch(params, sizes, sizes[1:].copy(), kinds, loss_kind, X,
                                          Y, order, lr, decay, skip))
    widths, offs = padded_layout(sizes, params.dtype.itemsize)
    padded = aligned_zeros(offs[-1], params.dtype)
    pad_into(params, sizes, padded, widths, offs)
    total = _online.online_epoch(padded, sizes, widths, kinds, loss_kind, X, Y, order, lr, decay,
                                 skip)
    unpad_into(padded, sizes, widths, offs, params)
    return float(total)


def train_epochs(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer, lr, mu,
                 rho, eps, penalty_kind, lam, state, t, rng, backup, run, costs, times):
    """Up to ``len(costs)`` epochs of :func:`train_epoch` with the epoch loop's rules (see
    :func:`fastnet.reference.epochs.train_epochs`).  The loop between the epochs is the
    reference's Python (each epoch is one compiled call; cython's loop is compiled)."""
    kc.epochs_buffers("train_epochs", params, order, X.shape[0], rng, backup, run, costs,
                      times)
    return epoch_loop(train_epoch, penalty_value, params, sizes, kinds, loss_kind, X, Y, order,
                      batch_size, optimizer, lr, mu, rho, eps, penalty_kind, lam, state, t,
                      rng, backup, run, costs, times)


# ================================================================ linear models
#: Gradient descent on threads: each iteration's pass over X in up to this many blocks of at
#: least GD_BLOCK_ROWS rows, handed out to the threads as they come free (as the Cython
#: backend).  Measured on MNIST 8,000 x 784 float32, 100 iterations, Zen 4 (2 cores),
#: alternating with the numpy reference in one process: 16 blocks 2.13x (linear) and 1.51x
#: (logistic) the reference, against 1.15x and 1.16x with a block per thread dispatched from
#: Python each iteration, and 1.04x and 1.09x with a block per thread in one compiled call;
#: 16 blocks in Numba's default (static) schedule, 1.01x and 1.04x.
GD_MAX_BLOCKS = 16
GD_BLOCK_ROWS = 256


def linear_gd(X, y, theta, lr, tol, max_iter, logistic, history):
    """Batch gradient descent, linear or logistic (:func:`fastnet.reference.kernels.linear_gd`)."""
    K = "linear_gd"
    kc.linear_data(K, X, y, theta)
    max_iter = kc.integer(K, "max_iter", max_iter, 0)
    kc.history_array(K, "history", history, max_iter, np.float64)
    lr, tol, logistic = kc.real(K, "lr", lr), kc.real(K, "tol", tol), bool(logistic)
    m = X.shape[0]
    nt = _threads_for(m, X.shape[1])
    if nt == 1:
        return int(_linear.linear_gd(X, y, theta, lr, tol, max_iter, logistic, history))
    if _parallel_ok():
        # every iteration in one compiled call, its pass over X in up to GD_MAX_BLOCKS blocks
        # handed out to Numba's threads as they come free
        import numba
        nb = min(GD_MAX_BLOCKS, max(nt, m // GD_BLOCK_ROWS))
        old = numba.set_parallel_chunksize(1)
        try:
            return int(_linear.linear_gd_blocks(X, y, theta, lr, tol, max_iter, logistic,
                                                history, nb))
        finally:
            numba.set_parallel_chunksize(old)
    # Each iteration's pass over X on blocks of rows (one per thread, each summing into its
    # own row of G), then one step from their sum: X is read once per iteration by both
    # cores.  (The iterations are dispatched from Python: ~1 ms of work each here.)
    nb = nt
    G = np.empty((nb, X.shape[1]), theta.dtype)
    g = np.empty(X.shape[1], theta.dtype)
    for it in range(max_iter):
        parts = _threads.run_blocks(nt, m, lambda b, lo, hi: _linear.gd_pass(
            X, y, theta, G[b], logistic, lo, hi), nblocks=nb)
        _linear.sum_rows(G, g)
        rsum = theta.dtype.type(0)
        J = 0.0
        for r, c in parts:
            rsum += r
            J += c
        if _linear.gd_step(theta, g, rsum, J, m, lr, tol, logistic, history, it):
            return it + 1
    return max_iter


def perceptron_train(X, y, w, epochs, lr, errors):
    """The perceptron rule (see :func:`fastnet.reference.kernels.perceptron_train`)."""
    K = "perceptron_train"
    kc.linear_data(K, X, y, w, theta_name="w")
    epochs = kc.integer(K, "epochs", epochs, 0)
    kc.history_array(K, "errors", errors, epochs, np.int64)
    return int(_linear.perceptron_train(X, y, w, epochs, kc.real(K, "lr", lr), errors))


KERNELS = {
    "activation": activation,
    "activation_grad": activation_grad,
    "loss": loss,
    "penalty_value": penalty_value,
    "penalty_grad": penalty_grad,
    "optimizer_step": optimizer_step,
    "forward_network": forward_network,
    "backprop_samples": backprop_samples,
    "backprop_batch": backprop_batch,
    "train_epoch": train_epoch,
    "train_epochs": train_epochs,
    "linear_gd": linear_gd,
    "perceptron_train": perceptron_train,
}
