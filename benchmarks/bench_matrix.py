"""The benchmark matrix: fastnet's compiled backends against PyTorch and JAX on every cell.

One float32 training epoch on real MNIST (the first 8,000 t10k images; online
learning: the first 2,000 of the shuffled order), the same initial weights
and the same shuffled order for every method:

* inputs: ``raw`` pixels in [0, 1] (81 % exact zeros) and ``standardised``
  (the course's z-score per pixel, ``fastnet.standardize``: 15 % zeros, the
  pixels that never change);
* networks: 784-50-10 sigmoid, 784-128-10 ReLU, 784-256-128-10 tanh, all with
  a sigmoid output and the course's cross-entropy (summed over outputs, mean
  over the batch);
* batches: 1 (online, 2,000 samples), 32, 128 and the full batch (8,000);
* methods: each compiled fastnet backend (one ``train_epoch`` kernel call,
  the path chosen by ``fastnet._paths.choose``), the numba backend with each
  path forced (``fastnet[numba dense]``, ``fastnet[numba sparse]``: to check
  the choice), PyTorch (2 threads, ``BCEWithLogitsLoss``, ``SGD``, the batch
  gathered with ``X[idx]`` inside the timing) and JAX (a jitted step per
  batch, and one jitted ``lax.scan`` over the samples for batch 1); for the
  full batch every method gets X itself in its order (a full-batch gradient
  does not depend on the order; fastnet's training loops pass the natural
  order at full batch, which its dense path reads in place);
* ``numpy float32 matmul (2048 x 2048)``: numpy's sgemm in the same run, the
  yardstick of the full-batch GFLOP/s.

GFLOP/s are *executed*: the dense FLOPs of the forward pass, the weight
gradients and the error terms of the hidden layers (``2 n_l n_{l+1}`` per
sample and product), except on fastnet's zero-skipping path, where layer 0's
forward and gradient products count only the non-zero inputs (the measured
density of X: a lower bound, as the four-sample panels visit the union of
four samples' non-zero pixels).  ``extra_info`` records the path each
fastnet cell ran.

``benchmarks/report.py`` turns the JSON into the tables of ``BENCHMARKS.md``
(the matrix with the ratio of the default backend to the best peer in each
cell, and the targets).  To measure the AVX2 code on an AVX-512 machine, run
with ``NUMBA_CPU_NAME=haswell`` (recorded in the JSON).
"""
import os

import numpy as np
import pytest

import fastnet
from fastnet import _backend, _paths
from fastnet._params import pack
from _helpers import fastnet_backends, peer, run

M = 8000
M_ONLINE = 2000
LR = 0.01
NETS = {
    "784-50-10 sigmoid": ([784, 50, 10], "sigmoid"),
    "784-128-10 relu": ([784, 128, 10], "relu"),
    "784-256-128-10 tanh": ([784, 256, 128, 10], "tanh"),
}
INPUTS = ["raw", "standardised"]
BATCHES = [1, 32, 128, M]
_CODE = {"sigmoid": 1, "relu": 2, "tanh": 3}
ROUNDS_FAST = 9
ROUNDS_PEER = {1: 3, 32: 5, 128: 5, M: 7}


def _methods():
    compiled = [b for b in fastnet_backends("train_epoch") if b != "reference"]
    forced = ["numba:dense", "numba:sparse"] if "numba" in compiled else []
    return compiled + forced + ["torch", "jax"]


def _label(method):
    if ":" in method:
        backend, path = method.split(":")
        return f"fastnet[{backend} {path}]"
    return {"torch": "PyTorch", "jax": "JAX"}.get(method, f"fastnet[{method}]")


def _batch_name(batch):
    return "full (8000)" if batch == M else ("1 (2000 samples)" if batch == 1 else str(batch))


def matrix_arrays(mnist):
    """The matrix's inputs from the course's MNIST split: raw and standardised X, Y, order."""
    X = mnist["X64"]
    return {"raw": mnist["X32"],
            "standardised": np.ascontiguousarray(fastnet.standardize(X).astype(np.float32)),
            "Y": mnist["Y32"], "order": mnist["order"]}


@pytest.fixture(scope="session")
def matrix_data(mnist):
    return matrix_arrays(mnist)


def _weights(sizes):
    return [fastnet.init_weights(sizes[l], sizes[l + 1], rng=l + 1, dtype=np.float32)
            for l in range(len(sizes) - 1)]


def flops(sizes, samples):
    """Dense FLOPs of one epoch: forward, weight gradients, hidden error terms."""
    prods = [sizes[l] * sizes[l + 1] for l in range(len(sizes) - 1)]
    return samples * 2 * (2 * sum(prods) + sum(prods[1:]))


def executed_flops(sizes, samples, path, density):
    """FLOPs executed by fastnet's ``path``: layer 0's two products scaled by the density
    of X on the zero-skipping path."""
    full = flops(sizes, samples)
    if path != "sparse":
        return full
    return full - samples * 2 * 2 * sizes[0] * sizes[1] * (1.0 - density)


# ---------------------------------------------------------------------- methods
def _fastnet(method, X, Y, order, sizes, act, batch):
    backend, _, forced = method.partition(":")
    K = _backend.backend_kernels(backend)
    sz = np.array(sizes, dtype=np.int64)
    kinds = np.array([_CODE[act]] * (len(sizes) - 2) + [1], dtype=np.int64)
    p0 = pack(_weights(sizes), np.float32)
    params, state = p0.copy(), np.zeros(2 * p0.size, np.float32)

    def setup():
        params[...] = p0

    def fn():
        with _paths.use_path(forced or "auto"):
            return K.train_epoch(params, sz, kinds, 0, X, Y, order, batch, 0, LR, 0.0, 0.9, 1e-8,
                                 0, 0.0, state, 0)
    with _paths.use_path(forced or "auto"):
        path = _paths.choose(X, sz, batch, backend)  # as the backend's kernel chooses
    return fn, setup, ROUNDS_FAST, path


def _torch(X, Y, order, sizes, act, batch):
    torch = peer("torch")
    nn = torch.nn
    layers = []
    for l in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[l], sizes[l + 1]))
        if l < len(sizes) - 2:
            layers.append({"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}[act]())
    net = nn.Sequential(*layers)
    state0 = {}
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for lin, T in zip(linears, _weights(sizes)):
        lin.weight.data = torch.tensor(T[:, 1:])
        lin.bias.data = torch.tensor(T[:, 0])
    state0 = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.0)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    bce = nn.BCEWithLogitsLoss(reduction="sum")
    if batch == M:
        batches = [None]
    else:
        idx_all = torch.from_numpy(order)
        batches = [idx_all[s:s + batch] for s in range(0, order.shape[0], batch)]

    def setup():
        net.load_state_dict(state0)

    def fn():
        for idx in batches:
            xb, yb = (Xt, Yt) if idx is None else (Xt[idx], Yt[idx])
            opt.zero_grad(set_to_none=True)
            loss = bce(net(xb), yb) / xb.shape[0]
            loss.backward()
            opt.step()
    return fn, setup, ROUNDS_PEER[batch]


def _jax(X, Y, order, sizes, act, batch):
    jax = peer("jax")
    jnp = jax.numpy
    f = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "tanh": jnp.tanh}[act]
    p0 = tuple((jnp.asarray(T[:, 1:].T.copy()), jnp.asarray(T[:, 0].copy()))
               for T in _weights(sizes))

    def loss(params, x, y):
        h = x
        for i, (W, b) in enumerate(params):
            h = h @ W + b
            if i < len(params) - 1:
                h = f(h)
        z = h  # binary cross-entropy of sigmoid(z), summed over outputs, mean over samples
        return jnp.sum(jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z)))) / x.shape[0]

    def sgd(params, x, y):
        g = jax.grad(loss)(params, x, y)
        return jax.tree_util.tree_map(lambda w, gw: w - LR * gw, params, g)

    Xj, Yj, idx_all = jnp.asarray(X), jnp.asarray(Y), jnp.asarray(order)
    if batch == 1:
        @jax.jit
        def epoch(params, X, Y, order):
            def body(p, xy):
                x, y = xy
                return sgd(p, x[None, :], y[None, :]), None
            params, _ = jax.lax.scan(body, params, (X[order], Y[order]))
            return params

        def fn():
            return jax.block_until_ready(epoch(p0, Xj, Yj, idx_all))
        return fn, None, ROUNDS_PEER[batch] + 2
    if batch == M:
        step = jax.jit(sgd)

        def fn():
            return jax.block_until_ready(step(p0, Xj, Yj))
        return fn, None, ROUNDS_PEER[batch]
    step = jax.jit(lambda params, X, Y, idx: sgd(params, X[idx], Y[idx]))
    batches = [idx_all[s:s + batch] for s in range(0, order.shape[0], batch)]

    def fn():
        params = p0
        for idx in batches:
            params = step(params, Xj, Yj, idx)
        return jax.block_until_ready(params)
    return fn, None, ROUNDS_PEER[batch]


# ------------------------------------------------------------------------ cells
def test_numpy_sgemm(benchmark):
    """numpy's float32 GEMM (2048 x 2048) in the same run: the full-batch yardstick."""
    benchmark.group = "machine: numpy float32 matmul (2048 x 2048)"
    rng = np.random.default_rng(0)
    A = rng.random((2048, 2048), dtype=np.float32)
    B = rng.random((2048, 2048), dtype=np.float32)
    C = np.empty_like(A)
    run(benchmark, lambda: np.matmul(A, B, out=C), rounds=15, method="numpy matmul",
        flops=2 * 2048 ** 3)


@pytest.mark.parametrize("method", _methods())
@pytest.mark.parametrize("batch", BATCHES, ids=[f"b{b}" for b in BATCHES])
@pytest.mark.parametrize("net", list(NETS), ids=["s50", "r128", "t256"])
@pytest.mark.parametrize("inp", INPUTS)
def test_cell(benchmark, matrix_data, inp, net, batch, method):
    sizes, act = NETS[net]
    X, Y = matrix_data[inp], matrix_data["Y"]
    order = matrix_data["order"][:M_ONLINE] if batch == 1 else matrix_data["order"]
    samples = order.shape[0]
    benchmark.group = f"matrix | {inp} | {net} | batch {_batch_name(batch)}"
    info = dict(method=_label(method), input=inp, net=net, batch=batch,
                flops_dense=flops(sizes, samples),
                numba_cpu=os.environ.get("NUMBA_CPU_NAME", "host"))
    if method in ("torch", "jax"):
        fn, setup, rounds = (_torch if method == "torch" else _jax)(X, Y, order, sizes, act,
                                                                    batch)
        info["flops"] = info["flops_dense"]
    else:
        if batch == M:  # as the peers (and fastnet's own loops at full batch): X in its order
            order = np.arange(M, dtype=np.int64)
        fn, setup, rounds, path = _fastnet(method, X, Y, order, sizes, act, batch)
        density = _paths.sample_density(X)
        info.update(path=path, density=density,
                    flops=executed_flops(sizes, samples, path, density),
                    default=method == fastnet.get_backend())
    run(benchmark, fn, setup=setup, rounds=rounds, **info)
