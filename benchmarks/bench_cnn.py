"""Convolutional networks and autoencoders on real MNIST: fastnet's backends beside PyTorch.

Groups (one table each in ``BENCHMARKS.md``):

* ``cnn epoch b32`` / ``cnn epoch b128``: one epoch of plain SGD (lr 0.05)
  over the first 8,000 t10k images, float32, of the default
  :class:`fastnet.CNNClassifier` network, ``Conv2D(8, 5) - ReLU - MaxPool(2) -
  Conv2D(16, 5) - ReLU - MaxPool(2) - Dense(64) - ReLU - Dense(10, softmax)``
  with 'same' padding; fastnet: one ``sequential_train_epoch`` call (what
  ``fit`` runs per epoch); PyTorch (2 threads): ``Conv2d(padding=2)``,
  ``MaxPool2d``, ``Linear``, ``CrossEntropyLoss``, ``SGD.step`` per batch,
  starting from the same weights and visiting the samples in the same order;
* ``cnn epoch 32-64 3x3 b128``: the compute-bound net, ``Conv2D(32, 3)`` and
  ``Conv2D(64, 3)``, batch 128, likewise;
* ``conv layer ...``: each convolution of those nets alone, forward +
  backward (weights, and input after the first layer) on one batch, with
  its GFLOP/s, beside ``numpy float32 matmul`` (2048 x 2048) measured in the
  same run, and beside the same forward pass as plain loops over the
  channels-last layout (``direct loops``, a Numba kernel defined here): the
  measurement that decided the im2col + GEMM design;
* ``autoencoder``: 60 epochs of the 32-unit :class:`fastnet.Autoencoder`
  (default settings) and scikit-learn's ``PCA(32)``; the held-out
  reconstruction errors (mean squared error per pixel on the last 2,000
  images) are recorded as ``extra_info`` (target: autoencoder <= 1.1 x PCA);
* ``cnn accuracy``: ``CNNClassifier()`` with its defaults, 10 epochs, test
  accuracy on the last 2,000 images recorded (target: >= 97 %).

GFLOP/s count 2 x the multiply-adds of the convolutions and dense layers:
forward once, backward twice (weights and input; the first layer's input
gradient is not computed and not counted).

Run (one benchmark at a time on a shared machine)::

    flock /tmp/fastnet-bench.lock python -m pytest benchmarks/bench_cnn.py \
        --benchmark-json=bench_cnn.json
    python benchmarks/report.py bench_cnn.json --title "Convolutional networks"
    python benchmarks/bench_cnn.py bench_cnn.json      # the targets table
"""
import json
import sys

import numpy as np
import pytest

import fastnet
from fastnet import _backend, _blas
from fastnet._codes import Act, Loss, Optimizer, Penalty, Prog, LayerKind
from fastnet._conv_plan import flops_per_sample
from fastnet.layers import Conv2D, MaxPool2D, Flatten, Dense

try:
    from _helpers import fastnet_backends, peer, run
except ImportError:  # run as a script for the targets table
    pass

M = 8000
LR = 0.05
NETS = {"default": ((8, 5), (16, 5)), "32-64 3x3": ((32, 3), (64, 3))}


def _layers(conv):
    layers = []
    for f, k in conv:
        layers += [Conv2D(f, k, activation="relu"), MaxPool2D(2)]
    return layers + [Flatten(), Dense(64, "relu"), Dense(10, "softmax")]


def _net(conv):
    return fastnet.Sequential(_layers(conv), input_shape=(1, 28, 28), rng=0, dtype=np.float32)


def _train_flops(prog, m):
    """2 x multiply-adds of forward + backward (weights, and inputs but the first layer's)."""
    fwd = flops_per_sample(prog)
    first = prog[0]
    first_in = 2 * int(first[Prog.OUT_H] * first[Prog.OUT_W] * first[Prog.OUT_C]
                       * first[Prog.KH] * first[Prog.KW] * first[Prog.IN_C])
    return m * (3 * fwd - first_in)


def _methods():
    return [b for b in fastnet_backends("sequential_train_epoch") if b != "reference"] + ["torch"]


def _label(b):
    return f"fastnet[{b}]"


# ----------------------------------------------------------------------- epochs
def _torch_net(torch, net, conv):
    nn = torch.nn
    mods, c_in = [], 1
    for f, k in conv:
        mods += [nn.Conv2d(c_in, f, k, padding=k // 2), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = f
    mods += [nn.Flatten(), nn.Linear(c_in * 49, 64), nn.ReLU(), nn.Linear(64, 10)]
    tnet = nn.Sequential(*mods)
    convs = [m for m in tnet if isinstance(m, nn.Conv2d)]
    lins = [m for m in tnet if isinstance(m, nn.Linear)]
    with torch.no_grad():
        shape = (1, 28, 28)
        ci = li = 0
        for i, layer in enumerate(net.layers):
            if isinstance(layer, Conv2D):
                k, b = Conv2D.kernel_view(net.layer_params(i).reshape(-1), shape, layer)
                convs[ci].weight.copy_(torch.tensor(np.ascontiguousarray(k)))
                convs[ci].bias.copy_(torch.tensor(b))
                ci += 1
            elif isinstance(layer, Dense):
                W = net.layer_params(i)
                lins[li].weight.copy_(torch.tensor(np.ascontiguousarray(W[1:].T)))
                lins[li].bias.copy_(torch.tensor(W[0]))
                li += 1
            shape = net.shapes[i]
    return tnet


def _epoch_method(method, mnist, conv, batch):
    net = _net(conv)
    X = np.ascontiguousarray(mnist["X32"])
    order, y = mnist["order"], mnist["y"]
    flops = _train_flops(net.program, M)
    if method in fastnet.available_backends():
        K = _backend.backend_kernels(method)
        Y = mnist["Y32"]
        p0 = net.params.copy()
        params, state = net.params, np.zeros(2 * p0.size, np.float32)

        def setup():
            params[...] = p0
            state[...] = 0

        def fn():
            return K.sequential_train_epoch(params, net.program, int(Loss.LOG_LOSS), X, Y, order,
                                            batch, int(Optimizer.SGD), LR, 0.0, 0.9, 1e-8,
                                            int(Penalty.NONE), 0.0, state, 0)
        return fn, setup, 5, _label(method), flops
    torch = peer("torch")
    tnet = _torch_net(torch, net, conv)
    state0 = {k: v.clone() for k, v in tnet.state_dict().items()}
    opt = torch.optim.SGD(tnet.parameters(), lr=LR)
    Xt = torch.from_numpy(X.reshape(M, 1, 28, 28))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    idx_all = torch.from_numpy(order)
    batches = [idx_all[s:s + batch] for s in range(0, M, batch)]
    ce = torch.nn.functional.cross_entropy

    def setup():
        tnet.load_state_dict(state0)

    def fn():
        for idx in batches:
            opt.zero_grad(set_to_none=True)
            ce(tnet(Xt[idx]), yt[idx]).backward()
            opt.step()
    return fn, setup, 3, "PyTorch", flops


@pytest.mark.parametrize("method", _methods())
@pytest.mark.parametrize("net, batch", [("default", 32), ("default", 128), ("32-64 3x3", 128)],
                         ids=["default-b32", "default-b128", "big-b128"])
def test_cnn_epoch(benchmark, mnist, method, net, batch):
    benchmark.group = f"cnn epoch {net} b{batch} f32 (8000 MNIST images, SGD)"
    fn, setup, rounds, label, flops = _epoch_method(method, mnist, NETS[net], batch)
    run(benchmark, fn, setup=setup, rounds=rounds, method=label, flops=flops)


# -------------------------------------------------------------------- layers
def _conv_layers():
    """(name, batch, (C, H, W), filters, k) of every convolution of the nets above."""
    out = []
    for net, conv in NETS.items():
        for batch in (32, 128):
            C, H = 1, 28
            for j, (f, k) in enumerate(conv):
                out.append((f"{net} conv{j + 1} {C}->{f} {k}x{k} on {H}x{H} b{batch}", batch,
                            (C, H, H), f, k, j == 0))
                C, H = f, H // 2
    return out


LAYERS = _conv_layers()


def _direct_kernel():
    """A naive direct convolution (plain loops over channels-last, vectorised over the filters,
    accumulating in the output): the first round's experiment, kept for comparison with the
    cython backend's register-blocked direct loops (src_cython/fastnet_conv.h)."""
    from numba import njit
    from fastnet._numba._common import FASTMATH

    @njit(cache=True, fastmath=FASTMATH)
    def direct(X, Wm, b, H, W, C, kh, kw, ph, pw, F, out):
        for n in range(X.shape[0]):
            x = X[n]
            o = out[n]
            for oy in range(H):
                for ox in range(W):
                    ob = (oy * W + ox) * F
                    for f in range(F):
                        o[ob + f] = b[f]
                    x0 = ox - pw
                    lo = max(0, -x0)
                    hi = min(kw, W - x0)
                    for dy in range(kh):
                        iy = oy + dy - ph
                        if iy < 0 or iy >= H:
                            continue
                        for dx in range(lo, hi):
                            src = (iy * W + x0 + dx) * C
                            base = (dy * kw + dx) * C
                            for c in range(C):
                                v = x[src + c]
                                wr = Wm[base + c]
                                for f in range(F):
                                    o[ob + f] += v * wr[f]
                    for f in range(F):
                        if o[ob + f] < 0:
                            o[ob + f] = 0
    return direct


_COMPILED = [b for b in fastnet_backends("conv2d_forward") if b != "reference"]


@pytest.mark.parametrize("method", _COMPILED + [f"{b} forward" for b in _COMPILED]
                         + ["direct", "torch"])
@pytest.mark.parametrize("case", LAYERS, ids=[c[0].replace(" ", "_") for c in LAYERS])
def test_conv_layer(benchmark, method, case):
    """One convolution's forward (+ReLU), and backward for the weights (and the input)."""
    name, batch, (C, H, W), F, k, first = case
    benchmark.group = f"conv layer {name}"
    rng = np.random.default_rng(0)
    X = rng.random((batch, H, W, C), dtype=np.float32)
    Wt = (rng.random((k, k, C, F), dtype=np.float32) - 0.5) * 0.2
    b = np.zeros(F, np.float32)
    out = np.empty((batch, H, W, F), np.float32)
    dX, dW, db = np.empty_like(X), np.empty_like(Wt), np.empty_like(b)
    p = k // 2
    fwd = 2 * batch * H * W * F * k * k * C
    if method == "direct":
        direct = _direct_kernel()
        Wm = Wt.reshape(-1, F)
        Xf, of = X.reshape(batch, -1), out.reshape(batch, -1)

        def fn():
            with _blas.single_threaded():
                direct(Xf, Wm, b, H, W, C, k, k, p, p, F, of)
        run(benchmark, fn, rounds=10, method="naive direct loops (numba, forward only)", flops=fwd)
        return
    if method == "torch":
        torch = peer("torch")
        Xt = torch.tensor(X.transpose(0, 3, 1, 2).copy(), requires_grad=not first)
        Wtt = torch.tensor(Wt.transpose(3, 2, 0, 1).copy(), requires_grad=True)
        bt = torch.zeros(F, requires_grad=True)
        G = torch.ones((batch, F, H, W))
        F_ = torch.nn.functional

        def fn():
            y = torch.relu(F_.conv2d(Xt, Wtt, bt, padding=p))
            y.backward(G)
        run(benchmark, fn, rounds=10, method="PyTorch", flops=fwd * (2 if first else 3))
        return
    if method.endswith(" forward"):
        K = _backend.backend_kernels(method.split()[0])
        backend = method.split()[0]
        # the cython backend's rule (src_cython/_conv_ops.pxi direct_ok): direct loops for
        # F % 8 == 0, F <= 32 and K = k*k*C <= 64, else im2col + GEMM
        max_f = max_k = 0
        if backend == "cython":  # the thresholds of this build (0: off; see _set_direct)
            from fastnet._cython.backend import _conv
            max_f, max_k = _conv._set_direct()
            _conv._set_direct(max_f, max_k)
        how = "direct loops" if (F % 8 == 0 and F <= max_f and k * k * C <= max_k) \
            else "im2col + GEMM"
        run(benchmark, lambda: K.conv2d_forward(X, Wt, b, 1, p, p, int(Act.RELU), out),
            rounds=10, method=f"{how} ({backend}, forward only)", flops=fwd)
        return
    K = _backend.backend_kernels(method)
    dZ = rng.random(out.shape, dtype=np.float32)

    def fn():
        K.conv2d_forward(X, Wt, b, 1, p, p, int(Act.RELU), out)
        K.conv2d_backward_weights(X, dZ, 1, p, p, dW, db)
        if not first:
            K.conv2d_backward_input(dZ, Wt, 1, p, p, dX)
    run(benchmark, fn, rounds=10, method=_label(method), flops=fwd * (2 if first else 3))


def test_numpy_matmul_f32(benchmark):
    """The machine's float32 GEMM through numpy (the yardstick of the layers' GFLOP/s)."""
    benchmark.group = "machine: numpy float32 matmul (2048 x 2048)"
    rng = np.random.default_rng(0)
    A = rng.random((2048, 2048), dtype=np.float32)
    B = rng.random((2048, 2048), dtype=np.float32)
    run(benchmark, lambda: A @ B, rounds=10, method="numpy matmul", flops=2 * 2048 ** 3)


# ---------------------------------------------------------- quality: AE and CNN
def test_autoencoder_vs_pca(benchmark, mnist):
    benchmark.group = "autoencoder 784-32-784 (60 epochs) vs PCA(32): held-out error"
    peer("sklearn")
    from sklearn.decomposition import PCA
    X, Xt = mnist["X32"], mnist["X_test"].astype(np.float32)
    pca = PCA(32, random_state=0).fit(X)
    pca_err = float(np.mean((pca.inverse_transform(pca.transform(Xt)) - Xt) ** 2))
    holder = {}

    def fn():
        holder["ae"] = fastnet.Autoencoder(random_state=0, verbose=0).fit(X)
    run(benchmark, fn, rounds=1, warmup=0, method=f"fastnet[{fastnet.get_backend()}]")
    ae_err = holder["ae"].reconstruction_error(Xt)
    benchmark.extra_info.update(ae_mse=ae_err, pca_mse=pca_err, ratio=ae_err / pca_err)
    print(f"\nautoencoder held-out MSE {ae_err:.5f}, PCA(32) {pca_err:.5f}, ratio "
          f"{ae_err / pca_err:.3f} (target <= 1.1)")


def test_cnn_accuracy(benchmark, mnist):
    benchmark.group = "cnn accuracy: CNNClassifier() defaults, 10 epochs"
    X = mnist["X32"].reshape(-1, 28, 28)
    Xt = mnist["X_test"].astype(np.float32).reshape(-1, 28, 28)
    holder = {}

    def fn():
        holder["clf"] = fastnet.CNNClassifier(random_state=0, verbose=0).fit(X, mnist["y"])
    run(benchmark, fn, rounds=1, warmup=0, method=f"fastnet[{fastnet.get_backend()}]")
    acc = holder["clf"].score(Xt, mnist["y_test"])
    benchmark.extra_info.update(test_accuracy=acc)
    print(f"\nCNNClassifier() test accuracy after 10 epochs: {100 * acc:.2f} % (target >= 97 %)")


# -------------------------------------------------------------- targets table
def targets(path):
    """The issue's targets, checked with the ratios of one benchmark run (a Markdown table)."""
    with open(path) as fh:
        data = json.load(fh)
    by = {}
    for b in data["benchmarks"]:
        by.setdefault(b["group"], {})[b["extra_info"].get("method", b["name"])] = b
    rows = []

    def med(group, pred):
        for g, methods in by.items():
            if group in g:
                for m, b in methods.items():
                    if pred(m):
                        return b
        return None

    for group, need, label in (("default b32", 1.5, "default net, batch 32, vs PyTorch"),
                               ("default b128", 1.0, "default net, batch 128, vs PyTorch"),
                               ("32-64 3x3 b128", 1 / 1.2,
                                "32/64 filters of 3x3, batch 128, vs PyTorch")):
        torch = med(group, lambda m: m.startswith("PyTorch"))
        for backend in ("numba", "cython"):
            me = med(group, lambda m, b=backend: m == f"fastnet[{b}]")
            if me is None or torch is None:
                continue
            r = torch["stats"]["median"] / me["stats"]["median"]
            rows.append((f"{label} [{backend}]", f"{r:.2f}x", f">= {need:.2f}x",
                         "yes" if r >= need else "**no**"))
    ae = med("autoencoder", lambda m: True)
    if ae:
        e = ae["extra_info"]
        rows.append(("autoencoder held-out MSE / PCA(32)", f"{e['ratio']:.3f} ({e['ae_mse']:.5f} "
                     f"vs {e['pca_mse']:.5f})", "<= 1.1", "yes" if e["ratio"] <= 1.1 else "**no**"))
    acc = med("cnn accuracy", lambda m: True)
    if acc:
        a = acc["extra_info"]["test_accuracy"]
        rows.append(("CNNClassifier() test accuracy, 10 epochs", f"{100 * a:.2f} %", ">= 97 %",
                     "yes" if a >= 0.97 else "**no**"))
    lines = ["| target | measured | wanted | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(targets(sys.argv[1]))
