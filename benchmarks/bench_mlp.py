"""The course's network on real MNIST, fastnet's backends side by side with the peers.

784-50-10, sigmoid hidden and output units, cross-entropy summed over the
outputs (the course's cost), first 8,000 t10k images, plain SGD (no
momentum, no penalty).  Groups (one table each in ``BENCHMARKS.md``):

* ``backprop f64``: the course's ``backprop`` -- one full-batch gradient
  with per-sample semantics, float64 -- through the public API
  (``fastnet.backprop``), against the reference (the course's per-sample
  loop in numpy) and a full-batch gradient in PyTorch and JAX (float64);
* ``online f32``, ``batch 32 f32``, ``batch 128 f32``, ``full batch f32``:
  one training epoch over the 8,000 samples in a fixed shuffled order.
  fastnet: one ``train_epoch`` kernel call (what ``fastnet.train`` runs per
  epoch); PyTorch (2 threads): a loop over batches of forward, backward and
  ``SGD.step``; JAX: a jitted train step per batch, and for online learning
  the whole epoch as one jitted ``lax.scan`` over the samples;
  scikit-learn: ``MLPClassifier(activation='logistic', solver='sgd',
  momentum=0, alpha=0).partial_fit`` (one epoch; its output layer is
  softmax + log-loss, the closest it offers); numpy: fastnet's reference;
* ``numpy float32 matmul``: the machine's float32 GEMM speed through numpy
  (2048 x 2048), the yardstick of the full-batch epoch's GFLOP/s;
* linear / logistic regression by gradient descent and the perceptron rule
  (fastnet backends and the reference).

GFLOP/s are *dense-equivalent*: the FLOPs of the dense forward and backward
passes (``2*(784*50 + 50*10)`` per sample forward, as much again for the
weight gradients plus ``2*50*10`` for the hidden error term), whatever the
kernel actually executes (fastnet's kernels skip the ~80 % zero pixels).
"""
import numpy as np
import pytest

import fastnet
from fastnet import _backend
from fastnet._params import pack, sizes_of
from _helpers import fastnet_backends, peer, run

N0, N1, N2 = 784, 50, 10
M = 8000
LR = 0.1
FLOPS_PER_SAMPLE = 2 * (N0 * N1 + N1 * N2) * 2 + 2 * N1 * N2
EPOCH_FLOPS = FLOPS_PER_SAMPLE * M

SLOW = {1: 3, 32: 3, 128: 5, M: 7}  # rounds for the slow methods (peers, reference)
FAST = 15                             # rounds for fastnet's compiled backends
#: the methods of every group, run one after the other so that their ratios come from
#: the same minutes of a shared machine: fastnet's compiled backends, then the peers
PEERS = ["reference", "torch", "jax", "sklearn"]


def _thetas(dtype):
    return [fastnet.init_weights(N0, N1, rng=1, dtype=dtype),
            fastnet.init_weights(N1, N2, rng=2, dtype=dtype)]


def _label(backend):
    return "numpy reference" if backend == "reference" else f"fastnet[{backend}]"


# ---------------------------------------------------------------------- methods
def _methods(kernel, peers=PEERS):
    """fastnet's compiled backends implementing ``kernel``, then the reference and peers."""
    return [b for b in fastnet_backends(kernel) if b != "reference"] + list(peers)


def _backprop_method(method, mnist):
    """(fn, rounds, label) computing the full-batch float64 gradient with ``method``."""
    T1, T2 = _thetas(np.float64)
    X, y = mnist["X64"], mnist["y"]
    if method in ("reference",) or method in fastnet.available_backends():
        model = [T1, fastnet.Sigmoid, T2, fastnet.Sigmoid]

        def fn():
            with fastnet.use_backend(method):
                return fastnet.backprop(model, X, y)
        return fn, 3 if method == "reference" else FAST, _label(method)
    if method == "torch":
        torch = peer("torch")
        F = torch.nn.functional
        W1 = torch.tensor(T1, requires_grad=True)
        W2 = torch.tensor(T2, requires_grad=True)
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(mnist["Y64"])

        def fn():
            W1.grad = W2.grad = None
            h = torch.sigmoid(F.linear(Xt, W1[:, 1:], W1[:, 0]))
            logits = F.linear(h, W2[:, 1:], W2[:, 0])
            loss = F.binary_cross_entropy_with_logits(logits, Yt, reduction="sum") / M
            loss.backward()
            return loss.item()
        return fn, FAST, "PyTorch"
    if method == "jax":
        jax = peer("jax")
        jnp = jax.numpy
        with jax.enable_x64(True):
            params = (jnp.asarray(T1), jnp.asarray(T2))
            Xj, Yj = jnp.asarray(X), jnp.asarray(mnist["Y64"])
            grad = jax.jit(jax.value_and_grad(_jax_loss(jax)))

        def fn():
            with jax.enable_x64(True):
                return jax.block_until_ready(grad(params, Xj, Yj)[1])
        return fn, FAST, "JAX"
    raise AssertionError(method)


def _jax_loss(jax):
    jnp = jax.numpy

    def loss(params, X, Y):
        T1, T2 = params
        h = jax.nn.sigmoid(X @ T1[:, 1:].T + T1[:, 0])
        z = h @ T2[:, 1:].T + T2[:, 0]
        # binary cross-entropy of sigmoid(z), summed over outputs, mean over samples
        per = jnp.maximum(z, 0) - z * Y + jnp.log1p(jnp.exp(-jnp.abs(z)))
        return jnp.sum(per) / X.shape[0]

    return loss


def _epoch_method(method, mnist, batch):
    """(fn, setup, rounds, label): one float32 SGD epoch of ``batch``-sized batches."""
    X32, Y32, order = mnist["X32"], mnist["Y32"], mnist["order"]
    T1, T2 = _thetas(np.float32)
    if method == "reference" or method in fastnet.available_backends():
        K = _backend.backend_kernels(method)
        sizes = np.array([N0, N1, N2], dtype=np.int64)
        kinds = np.array([1, 1], dtype=np.int64)
        p0 = pack([T1, T2], np.float32)
        params, state = p0.copy(), np.zeros(2 * p0.size, p0.dtype)

        def setup():
            params[...] = p0
            state[...] = 0

        def fn():
            return K.train_epoch(params, sizes, kinds, 0, X32, Y32, order, batch, 0, LR, 0.0, 0.9,
                                 1e-8, 0, 0.0, state, 0)
        return fn, setup, SLOW[batch] if method == "reference" else FAST, _label(method)
    if method == "torch":
        torch = peer("torch")
        net = torch.nn.Sequential(torch.nn.Linear(N0, N1), torch.nn.Sigmoid(),
                                  torch.nn.Linear(N1, N2))
        state0 = {"0.weight": torch.tensor(T1[:, 1:]), "0.bias": torch.tensor(T1[:, 0]),
                  "2.weight": torch.tensor(T2[:, 1:]), "2.bias": torch.tensor(T2[:, 0])}
        opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.0)
        X, Y = torch.from_numpy(X32), torch.from_numpy(Y32)
        idx_all = torch.from_numpy(order)
        batches = [idx_all[s:s + batch] for s in range(0, M, batch)]
        bce = torch.nn.functional.binary_cross_entropy_with_logits

        def setup():
            net.load_state_dict(state0)

        def fn():
            for idx in batches:
                xb, yb = X[idx], Y[idx]
                opt.zero_grad(set_to_none=True)
                loss = bce(net(xb), yb, reduction="sum") / idx.shape[0]
                loss.backward()
                opt.step()
        return fn, setup, SLOW[batch], "PyTorch"
    if method == "jax":
        jax = peer("jax")
        jnp = jax.numpy
        loss = _jax_loss(jax)
        p0 = (jnp.asarray(T1), jnp.asarray(T2))
        X, Y, idx_all = jnp.asarray(X32), jnp.asarray(Y32), jnp.asarray(order)

        def sgd(params, Xb, Yb):
            g = jax.grad(loss)(params, Xb, Yb)
            return jax.tree_util.tree_map(lambda w, gw: w - LR * gw, params, g)

        if batch == 1:
            @jax.jit
            def epoch(params, X, Y, order):
                def body(p, xy):
                    x, y = xy
                    return sgd(p, x[None, :], y[None, :]), None
                params, _ = jax.lax.scan(body, params, (X[order], Y[order]))
                return params

            def fn():
                return jax.block_until_ready(epoch(p0, X, Y, idx_all))
            return fn, None, SLOW[batch] + 2, "JAX (lax.scan epoch)"
        step = jax.jit(lambda params, X, Y, idx: sgd(params, X[idx], Y[idx]))
        batches = [idx_all[s:s + batch] for s in range(0, M, batch)]

        def fn():
            params = p0
            for idx in batches:
                params = step(params, X, Y, idx)
            return jax.block_until_ready(params)
        return fn, None, SLOW[batch] + 2, "JAX"
    if method == "sklearn":
        peer("sklearn")
        import warnings
        from sklearn.neural_network import MLPClassifier
        y = mnist["y"]
        clf = MLPClassifier(hidden_layer_sizes=(N1,), activation="logistic", solver="sgd",
                            momentum=0.0, nesterovs_momentum=False, alpha=0.0, batch_size=batch,
                            learning_rate_init=LR, shuffle=False, max_iter=1, random_state=0)
        clf.partial_fit(X32[:batch], y[:batch], classes=np.arange(N2))  # initialise the weights

        def fn():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.partial_fit(X32[order], y[order])
        return fn, None, SLOW[batch], "scikit-learn"
    raise AssertionError(method)


# ------------------------------------------------------------------------ groups
@pytest.mark.parametrize("method", _methods("backprop_samples", ["reference", "torch", "jax"]))
def test_backprop_f64(benchmark, mnist, method):
    benchmark.group = "mlp backprop f64 (course: per-sample semantics, full gradient)"
    fn, rounds, label = _backprop_method(method, mnist)
    run(benchmark, fn, rounds=rounds, method=label, flops=EPOCH_FLOPS)


def _epoch(benchmark, mnist, method, batch, group):
    benchmark.group = f"mlp epoch {group}"
    fn, setup, rounds, label = _epoch_method(method, mnist, batch)
    run(benchmark, fn, setup=setup, rounds=rounds, method=label, flops=EPOCH_FLOPS)


@pytest.mark.parametrize("method", _methods("train_epoch"))
def test_epoch_online(benchmark, mnist, method):
    _epoch(benchmark, mnist, method, 1, "online f32 (batch 1)")


@pytest.mark.parametrize("method", _methods("train_epoch"))
def test_epoch_batch32(benchmark, mnist, method):
    _epoch(benchmark, mnist, method, 32, "mini-batch f32 (batch 32)")


@pytest.mark.parametrize("method", _methods("train_epoch"))
def test_epoch_batch128(benchmark, mnist, method):
    _epoch(benchmark, mnist, method, 128, "mini-batch f32 (batch 128)")


def test_numpy_matmul_f32(benchmark):
    """The machine's float32 GEMM through numpy, measured right before the full-batch group."""
    benchmark.group = "machine: numpy float32 matmul (2048 x 2048)"
    rng = np.random.default_rng(0)
    A = rng.random((2048, 2048), dtype=np.float32)
    B = rng.random((2048, 2048), dtype=np.float32)
    run(benchmark, lambda: A @ B, rounds=10, method="numpy matmul", flops=2 * 2048 ** 3)


@pytest.mark.parametrize("method", _methods("train_epoch"))
def test_epoch_full(benchmark, mnist, method):
    _epoch(benchmark, mnist, method, M, "full batch f32 (8000)")


# ---------------------------------------------------------------- linear models
def _binary(mnist, dtype):
    X = mnist["X32"] if dtype == np.float32 else mnist["X64"]
    return X, (mnist["y"] == 0).astype(dtype)


@pytest.mark.parametrize("logistic", [False, True], ids=["linear", "logistic"])
@pytest.mark.parametrize("backend", fastnet_backends("linear_gd"))
def test_linear_gd(benchmark, mnist, backend, logistic):
    benchmark.group = f"{'logistic' if logistic else 'linear'} regression GD f32 (100 iterations)"
    K = _backend.backend_kernels(backend)
    X, y = _binary(mnist, np.float32)
    theta = np.zeros(N0 + 1, np.float32)
    history = np.zeros(100)

    def fn():
        theta[...] = 0
        return K.linear_gd(X, y, theta, 0.01, 0.0, 100, logistic, history)

    run(benchmark, fn, rounds=3 if backend == "reference" else 10, method=_label(backend),
        flops=100 * 4 * M * N0)


@pytest.mark.parametrize("backend", fastnet_backends("perceptron_train"))
def test_perceptron(benchmark, mnist, backend):
    benchmark.group = "perceptron f32 (10 epochs)"
    K = _backend.backend_kernels(backend)
    X, y = _binary(mnist, np.float32)
    w = np.zeros(N0 + 1, np.float32)
    errors = np.zeros(10, np.int64)

    def fn():
        w[...] = 0
        return K.perceptron_train(X, y, w, 10, 1.0, errors)

    run(benchmark, fn, rounds=3 if backend == "reference" else 10, method=_label(backend),
        flops=10 * 2 * M * N0)
