"""The recurrent layers and fastnet.RNNClassifier: shapes, learning, lengths, save/load, bad input."""
import numpy as np
import pytest

import fastnet
from fastnet._codes import Cell
from fastnet.layers import LSTM, RNN, layer_from_config
from conftest import BACKENDS


def memory_task(n, T=12, seed=0, dtype=np.float32):
    """The label is the sign of the first step's value; the later steps are noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, 1)).astype(dtype)
    return X, np.where(X[:, 0, 0] > 0, "pos", "neg")


# ------------------------------------------------------------------------------- layers
def test_layers_describe_shapes_parameters_and_config():
    for layer, G in ((RNN(6, activation="relu"), 6), (LSTM(6, return_sequences=True), 24)):
        assert layer.n_params((10, 3)) == (1 + 3 + 6) * G
        assert layer.output_shape((10, 3)) == ((10, 6) if layer.return_sequences else (6,))
        assert layer_from_config({"type": layer.type_name, **layer.get_config()}) == layer
        out = np.empty(layer.n_params((10, 3)))
        layer.init_params(out, (10, 3), np.random.default_rng(0))
        P = out.reshape(1 + 3 + 6, G)
        assert np.all(np.abs(P[1:]) <= 1 / np.sqrt(6))
        if layer.cell == Cell.LSTM:  # forget gate bias 1, the others 0
            assert np.all(P[0, 6:12] == 1) and np.all(P[0, :6] == 0) and np.all(P[0, 12:] == 0)
    with pytest.raises(ValueError, match="units"):
        LSTM(0)
    with pytest.raises(ValueError, match=r"\(T, features\)"):
        RNN(4).output_shape((10,))
    with pytest.raises(ValueError, match="activation"):
        RNN(4, activation="softmax")


# --------------------------------------------------------------------------- the estimator
@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_classifier_learns_the_memory_task(backend_name, cell):
    X, y = memory_task(600)
    Xt, yt = memory_task(300, seed=1)
    with fastnet.use_backend(backend_name):
        m = fastnet.RNNClassifier(16, cell=cell, lr=0.01, max_epochs=12, random_state=0,
                                  verbose=0).fit(X, y)
        assert m.score(Xt, yt) > 0.9
    assert list(m.classes_) == ["neg", "pos"]
    assert m.history_["J"][-1] < m.history_["J"][0]
    assert len(m.history_["J"]) == 12 and m.params_.dtype == np.float32
    proba = m.predict_proba(Xt[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)


def test_backends_train_the_same_model():
    X, y = memory_task(200)
    models = []
    for name in BACKENDS:
        with fastnet.use_backend(name):
            models.append(fastnet.RNNClassifier(8, cell="lstm", num_layers=2, max_epochs=2,
                                                random_state=3, verbose=0).fit(X.astype(float), y))
    for m in models[1:]:
        np.testing.assert_allclose(m.params_, models[0].params_, rtol=1e-9, atol=1e-12)


def test_lengths_ignore_the_padding():
    rng = np.random.default_rng(2)
    X, y = memory_task(120, T=8)
    lengths = rng.integers(1, 9, 120)
    noisy = X.copy()
    for i, n in enumerate(lengths):
        noisy[i, n:] = np.nan if i % 2 else 1e6     # padding may hold anything
    clean = X.copy()
    for i, n in enumerate(lengths):
        clean[i, n:] = 0
    a = fastnet.RNNClassifier(8, max_epochs=2, random_state=0, verbose=0).fit(noisy, y, lengths)
    b = fastnet.RNNClassifier(8, max_epochs=2, random_state=0, verbose=0).fit(clean, y, lengths)
    np.testing.assert_array_equal(a.params_, b.params_)
    # a sequence given alone, trimmed to its length, is classified as in the padded batch
    p = a.predict_proba(noisy, lengths)
    for i in (0, 5, 17):
        n = int(lengths[i])
        np.testing.assert_allclose(a.predict_proba(X[i:i + 1, :n]), p[i:i + 1], rtol=1e-5)
    # a list of sequences of different lengths, with lengths
    seqs = [X[i, :lengths[i]] for i in range(120)]
    np.testing.assert_allclose(a.predict_proba(seqs, lengths), p, rtol=1e-6)


def test_save_and_load_predict_the_same(tmp_path):
    X, y = memory_task(100)
    m = fastnet.RNNClassifier(8, cell="lstm", max_epochs=2, random_state=0, verbose=0).fit(X, y)
    path = tmp_path / "rnn.npz"
    m.save(path)
    m2 = fastnet.load(path)
    assert isinstance(m2, fastnet.RNNClassifier) and m2.get_params() == m.get_params()
    np.testing.assert_array_equal(m2.predict_proba(X), m.predict_proba(X))
    np.testing.assert_array_equal(m2.predict(X), m.predict(X))
    assert m2.history_["J"] == m.history_["J"]


def test_scikit_learn_clone_and_params():
    sklearn = pytest.importorskip("sklearn")
    m = fastnet.RNNClassifier(12, cell="lstm", lr=0.01)
    c = sklearn.base.clone(m)
    assert c.get_params() == m.get_params() and c is not m
    assert "hidden_size=12" in repr(m)
    with pytest.raises(sklearn.exceptions.NotFittedError):
        m.predict(memory_task(3)[0])


# ---------------------------------------------------------------------------- bad input
def test_bad_sequences_are_refused_with_the_argument_named():
    m = fastnet.RNNClassifier(4, max_epochs=1, verbose=0)
    X, y = memory_task(6, T=5)
    ragged = [np.zeros((5, 1)), np.zeros((3, 1))]
    with pytest.raises(ValueError, match="different lengths.*lengths="):
        m.fit(ragged, [0, 1])
    with pytest.raises(ValueError, match=r"lengths\[2\] = 6 .*\[1, T=5\]"):
        m.fit(X, y, lengths=[5, 5, 6, 1, 2, 3])
    with pytest.raises(ValueError, match=r"lengths\[0\] = 0"):
        m.fit(X, y, lengths=[0, 5, 5, 1, 2, 3])
    with pytest.raises(ValueError, match="lengths must hold one integer per sequence"):
        m.fit(X, y, lengths=[5, 5])
    with pytest.raises(ValueError, match="lengths does not match"):
        m.fit(ragged, [0, 1], lengths=[3, 5])
    with pytest.raises(ValueError, match=r"\(n_samples, T, n_features\).*X\[\.\.\., None\]"):
        m.fit(X[:, :, 0], y)
    bad = X.copy()
    bad[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.fit(bad, y)
    with pytest.raises(ValueError, match="one class"):
        m.fit(X, ["a"] * 6)
    with pytest.raises(ValueError, match="y has 2 labels"):
        m.fit(X, y[:2])
    m.fit(X, y)
    with pytest.raises(ValueError, match="2 features per step.*expecting 1"):
        m.predict(np.zeros((2, 5, 2)))


@pytest.mark.parametrize("param,value", [("hidden_size", 0), ("cell", "gru"), ("lr", -1),
                                         ("clip", 0), ("optimizer", "adagrad"),
                                         ("num_layers", 0), ("activation", "softmax"),
                                         ("batch_size", 0)])
def test_bad_hyper_parameters_name_themselves(param, value):
    X, y = memory_task(6)
    with pytest.raises(ValueError, match=repr(param)):
        fastnet.RNNClassifier(**{param: value}, verbose=0).fit(X, y)


def test_divergence_stops_with_a_clear_error():
    X, y = memory_task(64)
    m = fastnet.RNNClassifier(8, cell="rnn", activation="relu", optimizer="sgd", lr=1e6,
                              clip=None, max_epochs=5, verbose=0)
    with pytest.raises(fastnet.DivergenceError, match="smaller learning rate"):
        m.fit(X * 100, y)
    assert not m.__sklearn_is_fitted__()
