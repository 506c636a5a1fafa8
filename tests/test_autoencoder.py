"""fastnet.Autoencoder: training, codes, tied weights, saving, bad input, and its plots."""
import numpy as np
import pytest

import fastnet
from fastnet import Autoencoder
from fastnet.layers import TiedDense
from conftest import assert_close


def low_rank(n=300, d=20, k=3, seed=0):
    """Data in [0, 1] on a k-dimensional curved sheet: an autoencoder can compress it."""
    rng = np.random.default_rng(seed)
    Z = rng.random((n, k))
    A = rng.standard_normal((k, d))
    return 1 / (1 + np.exp(-(Z - 0.5) @ A * 3))


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_fit_compresses_and_the_halves_agree(backend, tied):
    X = low_rank()
    ae = Autoencoder((8,), tied_weights=tied, max_epochs=40, lr=0.02, random_state=0,
                     verbose=0).fit(X)
    hist = ae.history_
    assert hist["J"][-1] < 0.97 * hist["J"][0]
    assert ae.n_components_ == 8 and ae.n_features_in_ == 20
    codes = ae.transform(X)
    assert codes.shape == (300, 8) and (codes > 0).all() and (codes < 1).all()
    assert_close(ae.inverse_transform(codes), ae.reconstruct(X))
    err = ae.reconstruction_error(X)
    assert ae.score(X) == -err
    assert err < np.mean((X - X.mean(axis=0)) ** 2)   # better than predicting the mean image
    if tied:
        assert isinstance(ae.net_.layers[1], TiedDense)
        assert ae.net_.n_params == 21 * 8 + 20   # one weight matrix and two biases
        enc, dec = ae.encoder(), ae.decoder()
        np.testing.assert_array_equal(dec.layer_params(0)[1:], enc.layer_params(0)[1:].T)


def test_deeper_codes_are_the_middle_layer_and_quadratic_loss(backend):
    X = low_rank(d=12) * 2 - 1
    ae = Autoencoder((10, 3, 10), activation="tanh", output_activation="linear",
                     loss="quadratic", tied_weights=True, max_epochs=15, random_state=1,
                     verbose=0).fit(X)
    assert ae.transform(X).shape == (300, 3) and ae.n_components_ == 3
    assert sum(isinstance(l, TiedDense) for l in ae.net_.layers) == 2
    assert_close(ae.inverse_transform(ae.transform(X)), ae.reconstruct(X))


def test_untied_autoencoder_is_the_mlp_trained_on_itself():
    """An untied autoencoder is a plain network with Y = X: the same as Sequential.fit."""
    X = low_rank(n=60)
    ae = Autoencoder((5,), optimizer="sgd", lr=0.5, batch_size=10, max_epochs=3, shuffle=False,
                     random_state=3, verbose=0).fit(X)
    net = fastnet.Sequential([fastnet.layers.Dense(5, "sigmoid"),
                              fastnet.layers.Dense(20, "sigmoid")], input_shape=(20,), rng=3)
    net.fit(X, X, optimizer="sgd", lr=0.5, batch_size=10, epochs=3, shuffle=False, verbose=0)
    assert_close(ae.net_.params, net.params)


def test_partial_fit_save_load_and_params(tmp_path):
    X = low_rank(n=80).astype(np.float32)
    ae = Autoencoder((4,), tied_weights=True, max_epochs=2, random_state=2, verbose=0).fit(X)
    ae.partial_fit(X)
    assert ae.n_iter_ == 3 and len(ae.history_["J"]) == 3
    path = tmp_path / "ae.npz"
    ae.save(path)
    again = fastnet.load(path)
    assert isinstance(again, Autoencoder) and again.get_params() == ae.get_params()
    np.testing.assert_array_equal(again.transform(X), ae.transform(X))
    assert again.transform(X).dtype == np.float32
    assert "tied_weights" in ae.get_params() and ae.set_params(lr=0.1).lr == 0.1


@pytest.mark.parametrize("kw, X, match", [
    ({}, np.full((5, 3), 2.0), r"needs inputs in \[0, 1\]"),
    ({"output_activation": "linear"}, np.zeros((5, 3)), "loss"),
    ({"tied_weights": True, "hidden_layer_sizes": (4, 2)}, np.zeros((5, 3)), "both ways"),
    ({"hidden_layer_sizes": ()}, np.zeros((5, 3)), "hidden_layer_sizes"),
    ({"hidden_layer_sizes": (0,)}, np.zeros((5, 3)), "hidden_layer_sizes"),
    ({"optimizer": "lbfgs"}, np.zeros((5, 3)), "optimizer"),
    ({}, np.zeros((5, 3, 2)), "must be 2-D"),
    ({}, np.array([[0.5, np.nan]]), "NaN"),
])
def test_bad_input_names_the_argument(kw, X, match):
    with pytest.raises(ValueError, match=match):
        Autoencoder(verbose=0, max_epochs=1, **kw).fit(X)


def test_unfitted_and_wrong_width():
    with pytest.raises(ValueError, match="not fitted"):
        Autoencoder().transform(np.zeros((2, 3)))
    ae = Autoencoder((2,), max_epochs=1, verbose=0).fit(np.full((4, 3), 0.5))
    with pytest.raises(ValueError, match="expecting 3 features"):
        ae.transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"codes must have shape \(n, 2\)"):
        ae.inverse_transform(np.zeros((2, 3)))


def test_plots(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from fastnet import plot
    from test_plot import check_png
    rng = np.random.default_rng(4)
    X = np.clip(rng.random((60, 64)) * 0.3 + np.repeat(np.eye(3), 20, axis=0).repeat(22,
                axis=1)[:, :64], 0, 1)
    y = np.repeat(np.arange(3), 20)
    ae = Autoencoder((16, 2, 16), max_epochs=5, random_state=0, verbose=0).fit(X)
    plot.codes_2d(ae, X, y, path=tmp_path / "codes.png")
    check_png(tmp_path / "codes.png")
    plot.reconstructions(ae, X, n=6, path=tmp_path / "rec.png")
    check_png(tmp_path / "rec.png", min_size=(150, 300))
    with pytest.raises(ValueError, match="2-D points"):
        plot.codes_2d(Autoencoder((3,), max_epochs=1, verbose=0).fit(X), X, y)
    with pytest.raises(ValueError, match="square"):
        plot.reconstructions(ae, X[:, :63], n=2)
