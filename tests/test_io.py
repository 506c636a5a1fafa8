"""Saving and loading: estimators and model lists round-trip exactly, atomically, without pickle."""
import json
import os
import warnings
import zipfile

import numpy as np
import pytest

import fastnet
from fastnet import io as fio
from fastnet.estimators import (LinearRegression, LogisticRegression, MLPClassifier,
                                MLPRegressor, Perceptron)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _data(dtype=np.float64, n=60):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3)).astype(dtype)
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    y[X[:, 2] > 1] = "maybe"
    return X, y


CASES = [
    (lambda: LogisticRegression(max_epochs=50), "clf"),
    (lambda: LogisticRegression(output_activation="softmax", max_epochs=50), "clf"),
    (lambda: MLPClassifier((5, 4), activation=["relu", "tanh"], optimizer="sgd", lr=0.1,
                           max_epochs=20, random_state=0), "clf"),
    (lambda: Perceptron(max_epochs=20), "clf"),
    (lambda: MLPRegressor((6,), optimizer="sgd", lr=0.01, max_epochs=20, random_state=0), "reg"),
    (lambda: LinearRegression(max_epochs=50), "reg"),
]


@pytest.mark.parametrize("make,kind", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_estimator_round_trip(tmp_path, make, kind, dtype):
    X, y = _data(dtype)
    target = y if kind == "clf" else X[:, 0] * 2 - X[:, 1]
    est = make().fit(X, target)
    path = tmp_path / "model.npz"
    est.save(path)
    back = fastnet.load(path)
    assert type(back) is type(est)
    assert back.get_params() == est.get_params()
    assert back._dtype() == dtype
    assert np.array_equal(back.predict(X), est.predict(X))
    for method in ("predict_proba", "decision_function"):
        if hasattr(est, method):
            assert np.array_equal(getattr(back, method)(X), getattr(est, method)(X))
    if kind == "clf":
        assert np.array_equal(back.classes_, est.classes_)
        assert back.classes_.dtype.kind == "U"
    assert back.n_features_in_ == 3 and back.n_iter_ == est.n_iter_
    assert dict(back.history_) == dict(est.history_)  # JSON keeps floats exactly
    # the file opens with pickle disabled
    with np.load(path, allow_pickle=False) as z:
        assert "__fastnet__" in z.files


def test_loaded_estimator_keeps_training(tmp_path):
    X, y = _data()
    est = MLPClassifier((5,), optimizer="momentum", lr=0.05, max_epochs=5, shuffle=False,
                        random_state=0).fit(X, y)
    est.save(tmp_path / "m.npz")
    back = fastnet.load(tmp_path / "m.npz")
    est.partial_fit(X, y)
    back.partial_fit(X, y)  # same weights and same momentum state: same step
    assert np.array_equal(back.params_, est.params_)


def test_unfitted_estimator_round_trip(tmp_path):
    est = MLPClassifier((7, 3), activation=["relu", "tanh"], lr=0.02, random_state=5)
    fastnet.save(est, tmp_path / "u.npz")
    back = fastnet.load(tmp_path / "u.npz")
    assert not back.__sklearn_is_fitted__()
    assert back.get_params() == est.get_params()
    assert back.hidden_layer_sizes == (7, 3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_model_list_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(1)
    model = [fastnet.init_weights(4, 6, rng=rng, dtype=dtype), fastnet.ReLu,
             fastnet.init_weights(6, 5, rng=rng, dtype=dtype), fastnet.reference.TanH,
             fastnet.init_weights(5, 3, rng=rng, dtype=dtype), fastnet.Sigmoid]
    X = rng.random((20, 4)).astype(dtype)
    fastnet.save(model, tmp_path / "list.npz")
    back = fastnet.load(tmp_path / "list.npz")
    assert isinstance(back, list) and len(back) == 6
    assert back[1] is fastnet.ReLu and back[3] is fastnet.TanH and back[5] is fastnet.Sigmoid
    for a, b in zip(back[::2], model[::2]):
        assert a.dtype == dtype and np.array_equal(a, b)
    assert np.array_equal(fastnet.feedforward(back, X), fastnet.feedforward(model, X))
    meta = fio.read_metadata(tmp_path / "list.npz")
    assert meta["layer_sizes"] == [4, 6, 5, 3]
    assert meta["activations"] == ["relu", "tanh", "sigmoid"]
    assert meta["dtype"] == np.dtype(dtype).name


def test_course_weights_round_trip(tmp_path, seed_data):
    T1, T2, X, y = seed_data
    model = [T1, fastnet.Sigmoid, T2, fastnet.Sigmoid]
    fastnet.save(model, tmp_path / "course.npz")
    back = fastnet.load(tmp_path / "course.npz")
    assert fastnet.accuracy(fastnet.predict(back, X), y) == pytest.approx(88.1, abs=0.05)


def test_metadata(tmp_path):
    X, y = _data(np.float32)
    est = MLPClassifier((4,), activation="logistic", output_activation="sigmoid", optimizer="sgd",
                        lr=0.1, max_epochs=3, random_state=0).fit(X, y)
    est.save(tmp_path / "m.npz", metadata={"note": "hello", "scale": [1, 2]})
    meta = fio.read_metadata(tmp_path / "m.npz")
    assert meta["format"] == "fastnet" and meta["format_version"] == fio.FORMAT_VERSION
    assert meta["fastnet_version"] == fastnet.__version__
    assert meta["class"] == "MLPClassifier" and meta["kind"] == "estimator"
    assert meta["layer_sizes"] == [3, 4, 3] and meta["dtype"] == "float32"
    assert meta["activations"] == ["sigmoid", "sigmoid"]
    assert meta["metadata"] == {"note": "hello", "scale": [1, 2]}
    assert meta["params"]["hidden_layer_sizes"] == [4]


def test_save_is_atomic(tmp_path, monkeypatch):
    X, y = _data()
    est = LogisticRegression(max_epochs=5).fit(X, y)
    path = tmp_path / "m.npz"
    path.write_bytes(b"previous content")

    def broken(fh, **arrays):
        fh.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(fio.np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        est.save(path)
    assert path.read_bytes() == b"previous content"
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # no temporary file left behind
    monkeypatch.undo()
    est.save(path)
    assert np.array_equal(fastnet.load(path).predict(X), est.predict(X))
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_load_refuses_other_files(tmp_path):
    (tmp_path / "t.txt").write_text("hello\n")
    with pytest.raises(ValueError, match="not a fastnet model file: it is a file of another"):
        fastnet.load(tmp_path / "t.txt")
    np.save(tmp_path / "a.npy", np.ones(3))
    with pytest.raises(ValueError, match="single .npy array"):
        fastnet.load(tmp_path / "a.npy")
    np.savez(tmp_path / "b.npz", X=np.ones(3))
    with pytest.raises(ValueError, match="no '__fastnet__' entry"):
        fastnet.load(tmp_path / "b.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        fastnet.load(tmp_path / "empty.npz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        fastnet.load(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        fastnet.load(tmp_path)


def _rewrite_meta(path, **changes):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__fastnet__"][()]))
    meta.update(changes)
    arrays["__fastnet__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def test_load_refuses_newer_format_and_damage(tmp_path):
    X, y = _data()
    est = LogisticRegression(max_epochs=5).fit(X, y)
    path = str(tmp_path / "m.npz")
    est.save(path)
    _rewrite_meta(path, format_version=fio.FORMAT_VERSION + 1, fastnet_version="9.0")
    with pytest.raises(ValueError, match=r"format version 2; this fastnet .* reads format "
                                         r"versions up to 1: upgrade fastnet"):
        fastnet.load(path)
    est.save(path)
    _rewrite_meta(path, format="other")
    with pytest.raises(ValueError, match="not a fastnet model file"):
        fastnet.load(path)
    est.save(path)
    _rewrite_meta(path, **{"class": "SVC"})
    with pytest.raises(ValueError, match="unknown class 'SVC'"):
        fastnet.load(path)
    est.save(path)
    data = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="damaged|truncated"):
        fastnet.load(path)


def test_save_bad_input(tmp_path):
    with pytest.raises(TypeError, match="can save fastnet's estimators"):
        fastnet.save({"a": 1}, tmp_path / "x.npz")
    with pytest.raises(ValueError, match="alternate weight matrices"):
        fastnet.save([np.ones((2, 3))], tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fastnet.save([np.ones((2, 3)), fastnet.Sigmoid], tmp_path / "no" / "x.npz")
    with pytest.raises(TypeError, match="metadata must be a dict"):
        fastnet.save([np.ones((2, 3)), fastnet.Sigmoid], tmp_path / "x.npz", metadata=[1])
    with pytest.raises(TypeError, match="cannot save"):
        fastnet.save([np.ones((2, 3)), fastnet.Sigmoid], tmp_path / "x.npz",
                     metadata={"f": object()})
    X, y = _data()
    mixed = np.array([1, "a"] * 30, dtype=object)
    est = LogisticRegression(max_epochs=2)
    with pytest.raises((TypeError, ValueError)):
        est.fit(X, mixed)
        est.save(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(TypeError, match="path must be"):
        fastnet.save([np.ones((2, 3)), fastnet.Sigmoid], 42)
