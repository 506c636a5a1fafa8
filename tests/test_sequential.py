"""fastnet.Sequential: compiling layer stacks, the course's model lists, training, saving, bad input."""
import numpy as np
import pytest

import fastnet
from fastnet import Sequential
from fastnet._codes import Act, LayerKind, Prog
from fastnet.layers import (Conv2D, MaxPool2D, AvgPool2D, Flatten, Dense, Activation, TiedDense)
from conftest import assert_close


def lenet(**kw):
    return Sequential([Conv2D(4, 5, activation="relu"), MaxPool2D(2), Conv2D(6, 3),
                       Activation("relu"), MaxPool2D(2), Flatten(), Dense(16, "relu"),
                       Dense(10, "softmax")], **kw)


# ------------------------------------------------------------------------ compiling
def test_program_shapes_blocks_and_fusion():
    net = lenet(input_shape=(1, 16, 16), rng=0)
    assert net.shapes == [(4, 16, 16), (4, 8, 8), (6, 8, 8), (6, 8, 8), (6, 4, 4), (96,), (16,),
                          (10,)]
    prog = net.program
    assert prog.shape == (7, Prog.WIDTH)          # the Activation is fused into its conv
    assert [LayerKind(k) for k in prog[:, Prog.KIND]] == [
        LayerKind.CONV2D, LayerKind.MAXPOOL2D, LayerKind.CONV2D, LayerKind.MAXPOOL2D,
        LayerKind.FLATTEN, LayerKind.DENSE, LayerKind.DENSE]
    assert prog[2, Prog.ACT] == Act.RELU and prog[-1, Prog.ACT] == Act.SOFTMAX
    assert tuple(prog[0, [Prog.PAD_H, Prog.PAD_W]]) == (2, 2)
    n = (1 + 25) * 4 + (1 + 9 * 4) * 6 + 97 * 16 + 17 * 10
    assert net.n_params == n and net.params.shape == (n,)
    # blocks are contiguous, in layer order, each bias row zero (Glorot/He init)
    assert net.layer_params(0).shape == (26, 4) and not net.layer_params(0)[0].any()
    assert "total parameters" in net.summary()


def test_fused_and_explicit_activations_are_the_same_network():
    a = Sequential([Conv2D(3, 3, activation="tanh"), Flatten(), Dense(2, "softmax")],
                   input_shape=(1, 5, 5), rng=1)
    b = Sequential([Conv2D(3, 3), Activation("tanh"), Flatten(), Dense(2, "softmax")],
                   input_shape=(1, 5, 5), rng=1)
    np.testing.assert_array_equal(a.program, b.program)
    X = np.random.default_rng(0).random((4, 5, 5))
    np.testing.assert_array_equal(a.forward(X), b.forward(X))


def test_flatten_is_channels_first_and_images_may_come_flat(backend):
    rng = np.random.default_rng(2)
    net = Sequential([Flatten(), Dense(3)], input_shape=(2, 3, 4), rng=3)
    X = rng.standard_normal((5, 2, 3, 4))
    W = net.layer_params(1)
    assert_close(net.forward(X), X.reshape(5, -1) @ W[1:] + W[0])
    assert_close(net.forward(X.reshape(5, -1)), net.forward(X))
    one = Sequential([Conv2D(2, 3), Flatten(), Dense(2)], input_shape=(1, 6, 6), rng=4)
    assert_close(one.forward(X[:, 0, :3, :3].repeat(2, 1).repeat(2, 2)[:, :6, :6]),
                 one.forward(X[:, :1, :3, :3].repeat(2, 2).repeat(2, 3)[:, :, :6, :6]))


def test_matches_pytorch_on_the_same_weights():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    net = Sequential([Conv2D(4, 5, activation="relu"), MaxPool2D(2), Conv2D(3, 3, stride=2),
                      AvgPool2D(2), Flatten(), Dense(5, "tanh"), Dense(3)],
                     input_shape=(2, 14, 14), rng=6)
    X = rng.standard_normal((3, 2, 14, 14))
    nn = torch.nn
    tnet = nn.Sequential(nn.Conv2d(2, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 3, 3, stride=2, padding=1), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(3 * 2 * 2, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    with torch.no_grad():
        for li, ti in ((0, 0), (2, 3)):
            k, b = Conv2D.kernel_view(net.layer_params(li).reshape(-1),
                                      (2, 14, 14) if li == 0 else net.shapes[1], net.layers[li])
            tnet[ti].weight.copy_(torch.tensor(np.ascontiguousarray(k)))
            tnet[ti].bias.copy_(torch.tensor(b))
        for li, ti in ((5, 6), (6, 8)):
            W = net.layer_params(li)
            tnet[ti].weight.copy_(torch.tensor(np.ascontiguousarray(W[1:].T)))
            tnet[ti].bias.copy_(torch.tensor(W[0]))
        want = tnet(torch.tensor(X)).numpy()
    assert_close(net.forward(X), want)


def test_course_model_lists_round_trip(backend):
    rng = np.random.default_rng(7)
    model = [fastnet.init_weights(6, 5, rng=1), fastnet.Sigmoid,
             fastnet.init_weights(5, 3, rng=2), fastnet.Softmax]
    net = Sequential.from_model(model)
    X = rng.random((8, 6))
    assert_close(net.forward(X), fastnet.feedforward(model, X))
    back = net.to_model()
    for a, b in zip(back[::2], model[::2]):
        np.testing.assert_array_equal(a, b)
    assert back[1].name == "sigmoid" and back[3].name == "softmax"
    with pytest.raises(ValueError, match="Dense layers only"):
        lenet(input_shape=(1, 16, 16)).to_model()


# ------------------------------------------------------------------------- training
def blobs(rng, n=120):
    y = rng.integers(0, 3, n)
    X = rng.standard_normal((n, 1, 8, 8)) * 0.3
    for k in range(3):
        X[y == k, 0, 2 * k:2 * k + 3, 2:5] += 1.5
    return X, y


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "rmsprop", "adam", "gd"])
def test_fit_learns_with_every_optimiser(backend, optimizer):
    rng = np.random.default_rng(8)
    X, y = blobs(rng)
    net = Sequential([Conv2D(4, 3, activation="relu"), MaxPool2D(2), Flatten(),
                      Dense(3, "softmax")], rng=9)
    lr = {"rmsprop": 0.01, "adam": 0.01, "gd": 0.5}.get(optimizer, 0.1)
    hist = net.fit(X, y, optimizer=optimizer, lr=lr, epochs=15, batch_size=16, verbose=0,
                   X_test=X, y_test=y, penalty="l2", lam=1e-4)
    assert net.input_shape == (1, 8, 8) and hist["epochs"] == 15
    assert hist["J"][-1] < 0.5 * hist["J"][0]
    assert hist["test_acc"][-1] >= 90 and len(hist["seconds"]) == 15
    assert (net.predict(X) == y).mean() >= 0.9


def test_fit_is_the_same_on_every_backend():
    rng = np.random.default_rng(10)
    X, y = blobs(rng, 60)
    results = {}
    for name in fastnet.available_backends():
        net = Sequential([Conv2D(3, 3, activation="tanh"), AvgPool2D(2), Flatten(),
                          Dense(3, "softmax")], rng=11)
        with fastnet.use_backend(name):
            hist = net.fit(X, y, optimizer="adam", lr=0.01, epochs=3, batch_size=7, rng=12,
                           verbose=0)
        results[name] = (net.params, hist["J"])
    ref_p, ref_J = results["reference"]
    for name, (p, J) in results.items():
        assert_close(p, ref_p, atol_scale=10, err_msg=name)
        assert_close(J, ref_J, err_msg=name)


def test_partial_training_continues_the_optimiser_state():
    rng = np.random.default_rng(13)
    X, y = blobs(rng, 40)
    make = lambda: Sequential([Flatten(), Dense(3, "softmax")], rng=14)   # noqa: E731
    a, b = make(), make()
    a.fit(X, y, optimizer="adam", lr=0.01, epochs=2, shuffle=False, verbose=0)
    b.fit(X, y, optimizer="adam", lr=0.01, epochs=1, shuffle=False, verbose=0)
    b.fit(X, y, optimizer="adam", lr=0.01, epochs=1, shuffle=False, verbose=0)
    assert_close(b.params, a.params)


def test_divergence_stops_with_the_last_finite_weights(backend):
    rng = np.random.default_rng(15)
    X = rng.standard_normal((50, 4)) * 100
    Y = rng.standard_normal((50, 2)) * 100
    net = Sequential([Dense(8, "relu"), Dense(2)], input_shape=(4,), rng=16)
    with pytest.raises(fastnet.DivergenceError, match="smaller learning rate"):
        net.fit(X, Y, lr=10.0, epochs=20, batch_size=50, verbose=0)
    assert np.isfinite(net.params).all()


def test_tol_stops_training():
    rng = np.random.default_rng(17)
    X, y = blobs(rng, 30)
    net = Sequential([Flatten(), Dense(3, "softmax")], rng=18)
    hist = net.fit(X, y, optimizer="gd", lr=0.01, epochs=500, tol=1e-3, verbose=0)
    assert hist["converged"] and hist["epochs"] < 500


# --------------------------------------------------------------------------- saving
def test_save_and_load(tmp_path, backend):
    rng = np.random.default_rng(19)
    net = Sequential([Conv2D(3, 3, stride=2, padding="valid", activation="relu"),
                      AvgPool2D(2), Flatten(), Dense(4, "tanh"), Dense(2, "sigmoid")],
                     input_shape=(2, 9, 9), rng=20, dtype=np.float32)
    X = rng.random((5, 2, 9, 9)).astype(np.float32)
    net.fit(X, rng.integers(0, 2, (5, 2)).astype(np.float32), epochs=2, verbose=0)
    path = tmp_path / "net.npz"
    net.save(path)
    again = fastnet.load(path)
    assert isinstance(again, Sequential) and again.dtype == np.float32
    np.testing.assert_array_equal(again.params, net.params)
    np.testing.assert_array_equal(again.forward(X), net.forward(X))
    assert again.layers == net.layers
    unbuilt = Sequential([Dense(3), Dense(1, "sigmoid")])
    unbuilt.save(tmp_path / "u.npz")
    assert not fastnet.load(tmp_path / "u.npz").built


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("make, err, match", [
    (lambda: Sequential(Dense(3)), TypeError, "layers must be a list"),
    (lambda: Sequential([Dense(3), "relu"]), TypeError, r"layers\[1\]"),
    (lambda: Sequential([], input_shape=(3,)), ValueError, "at least one layer"),
    (lambda: Sequential([Dense(3, "softmax"), Dense(2)], input_shape=(4,)), ValueError,
     "softmax is only allowed"),
    (lambda: Sequential([Conv2D(2, 3)], input_shape=(1, 5, 5)), ValueError, "must be flat"),
    (lambda: Sequential([Conv2D(2, 7, padding="valid"), Flatten()], input_shape=(1, 5, 5)),
     ValueError, "kernel_size 7 is larger"),
    (lambda: Sequential([MaxPool2D(6), Flatten()], input_shape=(1, 5, 5)), ValueError,
     "pool_size .* does not fit"),
    (lambda: Sequential([Conv2D(0, 3)]), ValueError, "filters must be a positive"),
    (lambda: Sequential([Dense(3)], input_shape=(1, 5, 5)), ValueError, "put a Flatten"),
    (lambda: Sequential([Flatten(), Conv2D(2, 3)], input_shape=(1, 5, 5)), ValueError,
     "images of shape"),
    (lambda: Sequential([Dense(3), TiedDense(4, 1)], input_shape=(4,)), ValueError,
     "earlier Dense"),
    (lambda: Sequential([Dense(3), TiedDense(5, 0)], input_shape=(4,)), ValueError,
     "must invert"),
    (lambda: Sequential([Dense(3)], input_shape=(0, 3)), ValueError, "input_shape"),
])
def test_bad_stacks_name_the_argument(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_bad_data_names_the_argument():
    net = lenet(input_shape=(1, 16, 16), rng=0)
    X = np.zeros((4, 1, 16, 16))
    with pytest.raises(ValueError, match=r"X has samples of shape \(1, 15, 16\)"):
        net.forward(np.zeros((4, 1, 15, 16)))
    with pytest.raises(ValueError, match="X has samples of shape"):
        net.forward(np.zeros((4, 3, 16, 16)))
    with pytest.raises(ValueError, match="NaN|nan"):
        net.forward(np.full((4, 16, 16), np.nan))
    with pytest.raises(ValueError, match="label 10"):
        net.fit(X, [0, 1, 2, 10], verbose=0)
    with pytest.raises(ValueError, match="log_loss"):
        net.fit(X, [0, 1, 2, 3], loss="quadratic", verbose=0)
    with pytest.raises(ValueError, match="optimizer"):
        net.fit(X, [0, 1, 2, 3], optimizer="lbfgs", verbose=0)
    with pytest.raises(ValueError, match="lr"):
        net.fit(X, [0, 1, 2, 3], lr=-1, verbose=0)
    with pytest.raises(ValueError, match="X_test and y_test"):
        net.fit(X, [0, 1, 2, 3], X_test=X, verbose=0)
    with pytest.raises(ValueError, match="not built"):
        Sequential([Dense(2)]).forward(np.zeros((1, 3)))
