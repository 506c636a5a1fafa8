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
                           max_epochs=20, random_state=0, dtype=None), "clf"),
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


# ------------------------------------------------------------------ damaged files (issue 13)
def _rewrite(path, meta_key="__fastnet__", meta=None, **arrays):
    """Rewrite an npz: replace/add arrays, drop those given as None, edit the JSON metadata."""
    with np.load(path, allow_pickle=False) as z:
        content = {k: z[k] for k in z.files}
    if meta is not None:
        m = json.loads(str(content[meta_key][()]))
        meta(m)
        content[meta_key] = np.array(json.dumps(m))
    for k, v in arrays.items():
        if v is None:
            content.pop(k, None)
        else:
            content[k] = v
    np.savez(path, **content)


@pytest.fixture()
def fitted_files(tmp_path):
    X, y = _data()
    X4 = np.random.default_rng(3).normal(size=(60, 4))
    y4 = np.array(["a", "b", "c", "d"] * 15)
    paths = {}
    for name, est, data in [("mlp", MLPClassifier((5,), max_epochs=3, random_state=0, dtype=None),
                             (X4, y4)),
                            ("logreg", LogisticRegression(max_epochs=3), (X, y)),
                            ("perceptron", Perceptron(max_epochs=3), (X, y)),
                            ("reg", MLPRegressor((4,), max_epochs=3, random_state=0),
                             (X, X[:, 0]))]:
        est.fit(*data)
        paths[name] = str(tmp_path / f"{name}.npz")
        est.save(paths[name])
    model = [fastnet.init_weights(3, 4, rng=np.random.default_rng(0)), fastnet.Sigmoid,
             fastnet.init_weights(4, 2, rng=np.random.default_rng(1)), fastnet.Softmax]
    paths["list"] = str(tmp_path / "list.npz")
    fastnet.save(model, paths["list"])
    return paths


def _edit_sizes(sizes):
    def edit(m):
        m["layer_sizes"] = sizes
        if "state" in m:
            m["state"]["layer_sizes"] = sizes
    return edit


DAMAGE = [
    ("mlp", dict(meta=_edit_sizes([4, 3000000, 4])), r"params has \d+ entries, but layer_sizes"),
    ("mlp", {"state.classes": np.array(["a", "b"])}, "2 classes but 4 output units"),
    ("mlp", {"state.classes": np.array(["b", "a", "c", "d"])}, "not sorted and distinct"),
    ("mlp", {"state.params": None}, "params is missing"),
    ("logreg", {"state.params": np.full(12, np.nan)}, "params holds nan"),
    ("logreg", {"state.params": np.zeros(5)}, "params has 5 entries"),
    ("mlp", {"state.params": np.zeros((2, 3))}, "params is a 2-D float64"),
    ("mlp", {"state.opt_state": np.zeros(3)}, "opt_state has 3 entries"),
    ("mlp", dict(meta=lambda m: m["state"].update(activations=["relu", "swish"])),
     "activations .* must name"),
    ("mlp", dict(meta=lambda m: m["state"].update(n_features_in=7)), "n_features_in 7"),
    ("mlp", dict(meta=lambda m: m["state"].update(n_iter=-1)), "n_iter -1 is not a count"),
    ("mlp", dict(meta=lambda m: m["state"].update(loss_function="hinge")),
     "unknown loss_function 'hinge'"),
    ("mlp", dict(meta=lambda m: m["state"].update(history=[1, 2])), "training history"),
    ("mlp", dict(meta=lambda m: m.update(dtype="float32")), "dtype is 'float32'"),
    ("mlp", dict(meta=lambda m: m.pop("state")), "fitted state is missing"),
    ("perceptron", {"state.W": np.zeros((2, 4))}, r"W has shape \(2, 4\), expected \(3, 4\)"),
    ("perceptron", {"state.W": np.full((3, 4), np.inf)}, "W holds inf"),
    ("perceptron", {"state.classes": np.array(["yes"])}, "at least 2 labels"),
    ("reg", {"state.params": np.ones(3, dtype=np.float32)}, "params has 3 entries"),
    ("list", {"theta_1": np.ones((2, 7))}, "columns must be the previous layer"),
    ("list", {"theta_0": np.full((4, 4), np.nan)}, "theta_0 holds nan"),
    ("list", {"theta_1": np.ones((2, 5), dtype=np.float32)}, "theta_1 is float32"),
    ("list", {"theta_2": np.ones((2, 3))}, "do not match its 2 layers"),
    ("list", {"theta_1": None}, "do not match its 2 layers"),
    ("list", dict(meta=lambda m: m.update(activations=["softmax", "sigmoid"])),
     "Softmax is only allowed"),
    ("list", dict(meta=lambda m: m.update(activations=["sigmoid", "gelu"])),
     "unknown activation 'gelu'"),
    ("list", dict(meta=lambda m: m.update(layer_sizes=[3, 40, 2])), "layer_sizes .* differ"),
    ("list", {"theta_0": np.array([["a"] * 4] * 4)}, "theta_0 is a 2-D <U1"),
]


@pytest.mark.parametrize("which,change,match", DAMAGE)
def test_load_checks_the_file_before_anything_reaches_a_kernel(fitted_files, which, change,
                                                               match):
    """Edited shapes, classes, NaN weights, unknown names: ValueError naming the file (a model
    with layer_sizes [4, 3000000, 4] segfaulted in predict; fewer classes than outputs was an
    IndexError at predict; NaN params predicted class 0 everywhere)."""
    path = fitted_files[which]
    change = dict(change)
    _rewrite(path, meta=change.pop("meta", None), **change)
    with pytest.raises(ValueError, match=match) as info:
        fastnet.load(path)
    assert repr(path) in str(info.value)


def test_load_refuses_damaged_archives(fitted_files, tmp_path):
    data = open(fitted_files["mlp"], "rb").read()
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x40                      # inside an array: CRC mismatch
    for name, content in [("trunc.npz", data[:-200]), ("flip.npz", bytes(flipped)),
                          ("head.npz", data[:40])]:
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(ValueError, match=r"damaged|truncated|not a") as info:
            fastnet.load(p)
        assert str(p) in str(info.value)
    # a member whose header announces far more than the archive holds is refused unread
    import io as _io
    buf = _io.BytesIO()
    np.save(buf, np.zeros(3))
    big = buf.getvalue().replace(b"(3,)", b"(999999999999,)")
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as zf:
        zf.writestr("__fastnet__.npy", big)
    with pytest.raises(ValueError, match="announces .* but it holds"):
        fastnet.load(tmp_path / "bomb.npz")
    with zipfile.ZipFile(tmp_path / "obj.npz", "w") as zf:
        buf = _io.BytesIO()
        np.save(buf, np.array([{}], dtype=object), allow_pickle=True)
        zf.writestr("__fastnet__.npy", buf.getvalue())
    with pytest.raises(ValueError, match="Python objects"):
        fastnet.load(tmp_path / "obj.npz")


def test_saved_files_get_the_users_umask(tmp_path):
    """Model files, word vectors (they were 0600: mkstemp) and word2vec models alike."""
    X, y = _data()
    est = LogisticRegression(max_epochs=2).fit(X, y)
    w2v = fastnet.Word2Vec([["a", "b", "c"]] * 5, vector_size=3, min_count=1, epochs=1,
                           workers=1)
    for umask in (0o022, 0o077, 0o002):
        old = os.umask(umask)
        try:
            est.save(tmp_path / "m.npz")
            w2v.save(str(tmp_path / "w.model"))
            w2v.wv.save(str(tmp_path / "w.kv"))
            w2v.wv.save_word2vec_format(str(tmp_path / "w.bin"), binary=True,
                                        fvocab=str(tmp_path / "w.vocab"))
            w2v.wv.save_word2vec_format(str(tmp_path / "w.txt"))
        finally:
            os.umask(old)
        for name in ("m.npz", "w.model", "w.kv", "w.bin", "w.vocab", "w.txt"):
            mode = os.stat(tmp_path / name).st_mode & 0o777
            assert mode == 0o666 & ~umask, f"{name}: {oct(mode)} with umask {oct(umask)}"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
