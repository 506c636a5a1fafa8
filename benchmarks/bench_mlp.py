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

EPOCHS = {  # group suffix -> batch size
    "online f32 (batch 1)": 1,
    "mini-batch f32 (batch 32)": 32,
    "mini-batch f32 (batch 128)": 128,
    "full batch f32 (8000)": M,
}
SLOW = {1: 3, 32: 3, 128: 5, M: 7}  # rounds for the slowest methods (peers, reference)


def _thetas(dtype):
    return [fastnet.init_weights(N0, N1, rng=1, dtype=dtype),
            fastnet.init_weights(N1, N2, rng=2, dtype=dtype)]


def _label(backend):
    return "numpy reference" if backend == "reference" else f"fastnet[{backend}]"


# ------------------------------------------------------------------ backprop f64
@pytest.mark.parametrize("backend", fastnet_backends("backprop_samples"))
def test_backprop_f64_fastnet(benchmark, mnist, backend):
    benchmark.group = "mlp backprop f64 (course: per-sample semantics, full gradient)"
    T1, T2 = _thetas(np.float64)
    model = [T1, fastnet.Sigmoid, T2, fastnet.Sigmoid]
    X, y = mnist["X64"], mnist["y"]

    def fn():
        with fastnet.use_backend(backend):
            return fastnet.backprop(model, X, y)

    run(benchmark, fn, rounds=3 if backend == "reference" else 10, method=_label(backend),
        flops=EPOCH_FLOPS)


def test_backprop_f64_torch(benchmark, mnist):
    torch = peer("torch")
    benchmark.group = "mlp backprop f64 (course: per-sample semantics, full gradient)"
    T1, T2 = _thetas(np.float64)
    W1 = torch.tensor(T1, requires_grad=True)
    W2 = torch.tensor(T2, requires_grad=True)
    X = torch.from_numpy(mnist["X64"])
    Y = torch.from_numpy(mnist["Y64"])
    F = torch.nn.functional

    def fn():
        W1.grad = W2.grad = None
        h = torch.sigmoid(F.linear(X, W1[:, 1:], W1[:, 0]))
        logits = F.linear(h, W2[:, 1:], W2[:, 0])
        loss = F.binary_cross_entropy_with_logits(logits, Y, reduction="sum") / M
        loss.backward()
        return loss.item()

    run(benchmark, fn, rounds=10, method="PyTorch", flops=EPOCH_FLOPS)


def test_backprop_f64_jax(benchmark, mnist):
    jax = peer("jax")
    jnp = jax.numpy
    benchmark.group = "mlp backprop f64 (course: per-sample semantics, full gradient)"
    with jax.enable_x64(True):
        T1, T2 = _thetas(np.float64)
        params = (jnp.asarray(T1), jnp.asarray(T2))
        X = jnp.asarray(mnist["X64"])
        Y = jnp.asarray(mnist["Y64"])
        grad = jax.jit(jax.value_and_grad(_jax_loss(jax)))

        def fn():
            J, g = grad(params, X, Y)
            return jax.block_until_ready(g)

        run(benchmark, fn, rounds=10, method="JAX", flops=EPOCH_FLOPS)


# ------------------------------------------------------------------ epochs f32
def _epoch_args(mnist, batch):
    sizes = np.array([N0, N1, N2], dtype=np.int64)
    kinds = np.array([1, 1], dtype=np.int64)
    p0 = pack(_thetas(np.float32), np.float32)
    return sizes, kinds, p0


@pytest.mark.parametrize("group, batch", list(EPOCHS.items()), ids=list(EPOCHS.values()))
@pytest.mark.parametrize("backend", fastnet_backends("train_epoch"))
def test_epoch_fastnet(benchmark, mnist, group, batch, backend):
    benchmark.group = f"mlp epoch {group}"
    K = _backend.backend_kernels(backend)
    sizes, kinds, p0 = _epoch_args(mnist, batch)
    params, state = p0.copy(), np.zeros_like(p0)
    X, Y, order = mnist["X32"], mnist["Y32"], mnist["order"]

    def setup():
        params[...] = p0
        state[...] = 0

    def fn():
        return K.train_epoch(params, sizes, kinds, 0, X, Y, order, batch, 0, LR, 0.0, 0.9, 1e-8,
                             0, 0.0, state)

    rounds = SLOW[batch] if backend == "reference" else 15
    run(benchmark, fn, setup=setup, rounds=rounds, method=_label(backend), flops=EPOCH_FLOPS)


@pytest.mark.parametrize("group, batch", list(EPOCHS.items()), ids=list(EPOCHS.values()))
def test_epoch_torch(benchmark, mnist, group, batch):
    torch = peer("torch")
    benchmark.group = f"mlp epoch {group}"
    T1, T2 = _thetas(np.float32)
    net = torch.nn.Sequential(torch.nn.Linear(N0, N1), torch.nn.Sigmoid(),
                              torch.nn.Linear(N1, N2))
    state0 = {"0.weight": torch.tensor(T1[:, 1:]), "0.bias": torch.tensor(T1[:, 0]),
              "2.weight": torch.tensor(T2[:, 1:]), "2.bias": torch.tensor(T2[:, 0])}
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.0)
    X = torch.from_numpy(mnist["X32"])
    Y = torch.from_numpy(mnist["Y32"])
    order = torch.from_numpy(mnist["order"])
    batches = [order[s:s + batch] for s in range(0, M, batch)]
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

    run(benchmark, fn, setup=setup, rounds=SLOW[batch], method="PyTorch", flops=EPOCH_FLOPS)


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


@pytest.mark.parametrize("group, batch", list(EPOCHS.items()), ids=list(EPOCHS.values()))
def test_epoch_jax(benchmark, mnist, group, batch):
    jax = peer("jax")
    jnp = jax.numpy
    benchmark.group = f"mlp epoch {group}"
    loss = _jax_loss(jax)
    T1, T2 = _thetas(np.float32)
    p0 = (jnp.asarray(T1), jnp.asarray(T2))
    X = jnp.asarray(mnist["X32"])
    Y = jnp.asarray(mnist["Y32"])
    order = jnp.asarray(mnist["order"])

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
            return jax.block_until_ready(epoch(p0, X, Y, order))
        method = "JAX (lax.scan epoch)"
    else:
        step = jax.jit(lambda params, X, Y, idx: sgd(params, X[idx], Y[idx]))
        batches = [order[s:s + batch] for s in range(0, M, batch)]

        def fn():
            params = p0
            for idx in batches:
                params = step(params, X, Y, idx)
            return jax.block_until_ready(params)
        method = "JAX"

    run(benchmark, fn, rounds=SLOW[batch] + 2, method=method, flops=EPOCH_FLOPS)


@pytest.mark.parametrize("group, batch", list(EPOCHS.items()), ids=list(EPOCHS.values()))
def test_epoch_sklearn(benchmark, mnist, group, batch):
    peer("sklearn")
    import warnings
    from sklearn.neural_network import MLPClassifier
    benchmark.group = f"mlp epoch {group}"
    X, y, order = mnist["X32"], mnist["y"], mnist["order"]

    def make():
        clf = MLPClassifier(hidden_layer_sizes=(N1,), activation="logistic", solver="sgd",
                            momentum=0.0, nesterovs_momentum=False, alpha=0.0, batch_size=batch,
                            learning_rate_init=LR, shuffle=False, max_iter=1, random_state=0)
        clf.partial_fit(X[:batch], y[:batch], classes=np.arange(N2))  # initialise the weights
        return clf

    clf = make()

    def fn():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(X[order], y[order])

    run(benchmark, fn, rounds=SLOW[batch], method="scikit-learn", flops=EPOCH_FLOPS)


# ------------------------------------------------------------ machine yardstick
def test_numpy_matmul_f32(benchmark):
    benchmark.group = "machine: numpy float32 matmul (2048 x 2048)"
    rng = np.random.default_rng(0)
    A = rng.random((2048, 2048), dtype=np.float32)
    B = rng.random((2048, 2048), dtype=np.float32)
    run(benchmark, lambda: A @ B, rounds=10, method="numpy matmul", flops=2 * 2048 ** 3)


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
