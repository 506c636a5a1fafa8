"""Data: the MNIST IDX reader (gzipped and plain), generated digits, the demo's digits."""
import gzip
import struct

import numpy as np
import pytest

import fastnet
from fastnet import datasets
from conftest import need


@pytest.fixture(scope="module")
def mnist_paths(data_dir):
    return (need(data_dir, "mnist", "t10k-images-idx3-ubyte.gz"),
            need(data_dir, "mnist", "t10k-labels-idx1-ubyte.gz"))


def _write_idx(tmp_path, X, y, gz=False, name="small"):
    n, rows, cols = X.shape
    img = struct.pack(">IIII", 2051, n, rows, cols) + X.astype(np.uint8).tobytes()
    lab = struct.pack(">II", 2049, len(y)) + np.asarray(y, dtype=np.uint8).tobytes()
    opener = gzip.open if gz else open
    ext = ".gz" if gz else ""
    pi, pl = tmp_path / f"{name}-images{ext}", tmp_path / f"{name}-labels{ext}"
    with opener(pi, "wb") as fh:
        fh.write(img)
    with opener(pl, "wb") as fh:
        fh.write(lab)
    return pi, pl


def test_load_mnist_real_files(mnist_paths):
    X, y = fastnet.load_mnist(*mnist_paths)
    assert X.shape == (10000, 784) and X.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64
    assert set(np.unique(y).tolist()) == set(range(10))
    assert X.max() == 255 and X.min() == 0
    np.testing.assert_array_equal(y[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])  # the known first labels
    Xs, ys = fastnet.load_mnist(*[str(p) for p in mnist_paths], scale=True)
    assert Xs.dtype == np.float32 and Xs.max() == 1.0
    np.testing.assert_allclose(Xs, X / np.float32(255), rtol=1e-7)
    np.testing.assert_array_equal(ys, y)


def test_load_mnist_matches_the_course_subset(mnist_paths, seed_data):
    """The course's X_test.npy / y_test.npy are the first 1,000 t10k images."""
    X, y = fastnet.load_mnist(*mnist_paths)
    _, _, Xc, yc = seed_data
    np.testing.assert_array_equal(y[:1000], yc)
    np.testing.assert_allclose(X[:1000] / 255.0, Xc, rtol=1e-6)


def test_load_mnist_plain_copies(mnist_paths, tmp_path):
    paths = []
    for p in mnist_paths:
        out = tmp_path / p.name[:-3]
        with gzip.open(p, "rb") as src:
            out.write_bytes(src.read())
        paths.append(out)
    X, y = fastnet.load_mnist(*paths)
    Xg, yg = fastnet.load_mnist(*mnist_paths)
    np.testing.assert_array_equal(X, Xg)
    np.testing.assert_array_equal(y, yg)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_small_written_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(5, 3, 4))
    y = np.array([3, 1, 4, 1, 5])
    Xr, yr = fastnet.load_mnist(*_write_idx(tmp_path, X, y, gz=gz))
    np.testing.assert_array_equal(Xr, X.reshape(5, 12))
    np.testing.assert_array_equal(yr, y)


def test_load_mnist_truncated_files(tmp_path):
    X = np.zeros((4, 2, 2))
    pi, pl = _write_idx(tmp_path, X, [0, 1, 2, 3])
    data = pi.read_bytes()
    (tmp_path / "short-img").write_bytes(data[:-3])
    with pytest.raises(ValueError, match=r"images_path.*truncated"):
        fastnet.load_mnist(tmp_path / "short-img", pl)
    (tmp_path / "tiny-img").write_bytes(data[:10])
    with pytest.raises(ValueError, match=r"images_path.*too short"):
        fastnet.load_mnist(tmp_path / "tiny-img", pl)
    (tmp_path / "short-lab").write_bytes(pl.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"labels_path.*truncated"):
        fastnet.load_mnist(pi, tmp_path / "short-lab")
    (tmp_path / "tiny-lab").write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match=r"labels_path.*too short"):
        fastnet.load_mnist(pi, tmp_path / "tiny-lab")


def test_load_mnist_truncated_gzip(tmp_path, mnist_paths):
    cut = tmp_path / "cut.gz"
    cut.write_bytes(mnist_paths[0].read_bytes()[:5000])
    with pytest.raises(ValueError, match="images_path"):
        fastnet.load_mnist(cut, mnist_paths[1])


@pytest.mark.parametrize("compress", ["gzip", "bz2"])
def test_load_mnist_corrupted_compressed_files(tmp_path, compress):
    """A flipped byte in a gzip IDX file raised a raw zlib.error naming no file."""
    import bz2
    import gzip
    rng = np.random.default_rng(0)
    pi, pl = _write_idx(tmp_path, rng.integers(0, 255, (50, 8, 8)), list(range(10)) * 5)
    pack = gzip.compress if compress == "gzip" else bz2.compress
    good = pack(pi.read_bytes())
    (tmp_path / "ok").write_bytes(good)
    X, y = fastnet.load_mnist(tmp_path / "ok", pl)      # recognised by its first bytes
    assert X.shape == (50, 64)
    seen = set()
    for k in range(10, len(good) - 10, max(1, len(good) // 40)):
        bad = bytearray(good)
        bad[k] ^= 0xA5
        (tmp_path / "bad").write_bytes(bytes(bad))
        try:
            fastnet.load_mnist(tmp_path / "bad", pl)
        except ValueError as exc:
            assert "images_path" in str(exc) and str(tmp_path / "bad") in str(exc), str(exc)
            seen.add("error")
        else:
            seen.add("loaded")   # a flip the checksum does not see (bzip2 headers): data only
    assert "error" in seen


def test_load_mnist_wrong_magic_and_swapped_paths(tmp_path):
    pi, pl = _write_idx(tmp_path, np.zeros((2, 2, 2)), [0, 1])
    with pytest.raises(ValueError, match=r"images_path.*magic number 2049.*expected 2051.*swapped"):
        fastnet.load_mnist(pl, pi)
    pi, pl = _write_idx(tmp_path, np.zeros((20, 2, 2)), list(range(10)) * 2, name="big")
    with pytest.raises(ValueError, match=r"images_path.*magic number 2049.*expected 2051.*swapped"):
        fastnet.load_mnist(pl, pi)
    with pytest.raises(ValueError, match=r"labels_path.*magic number"):
        fastnet.load_mnist(pi, pi)


def test_load_mnist_count_mismatch_and_missing_files(tmp_path):
    pi, _ = _write_idx(tmp_path, np.zeros((3, 2, 2)), [0, 1, 2], name="a")
    _, pl = _write_idx(tmp_path, np.zeros((2, 2, 2)), [0, 1], name="b")
    with pytest.raises(ValueError, match="images_path has 3 images but labels_path has 2"):
        fastnet.load_mnist(pi, pl)
    with pytest.raises(FileNotFoundError, match="labels_path"):
        fastnet.load_mnist(pi, tmp_path / "nope")
    with pytest.raises(TypeError, match="images_path must be a path"):
        fastnet.load_mnist(42, pl)


# ---------------------------------------------------------------- generated digits
def test_make_digits_shapes_reproducibility():
    X, y = datasets.make_digits(300, rng=0)
    assert X.shape == (300, 64) and y.shape == (300,)
    assert X.min() >= 0 and X.max() == pytest.approx(16.0)
    assert set(np.unique(y).tolist()) == set(range(10))
    X2, y2 = datasets.make_digits(300, rng=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, datasets.make_digits(300, rng=1)[0])
    with pytest.raises(ValueError, match="n_samples"):
        datasets.make_digits(0)


def test_make_digits_is_learnable():
    X, y = datasets.make_digits(1200, rng=0)
    X = X / 16.0
    Xtr, ytr, Xte, yte = X[:1000], y[:1000], X[1000:], y[1000:]
    rng = np.random.default_rng(0)
    model = [fastnet.init_weights(64, 25, rng=rng), fastnet.Sigmoid,
             fastnet.init_weights(25, 10, rng=rng), fastnet.Sigmoid]
    fastnet.train(model, Xtr, ytr, optimizer="momentum", batch_size=20, lr=0.2, epochs=30, rng=0)
    acc = fastnet.accuracy(fastnet.predict(model, Xte), yte)
    assert acc >= 85, acc


@pytest.mark.parametrize("source", ["generated", "sklearn", "auto"])
def test_load_demo_digits_sources(source):
    if source == "sklearn":
        pytest.importorskip("sklearn")
    Xtr, ytr, Xte, yte, desc = datasets.load_demo_digits(source, rng=0)
    assert Xtr.shape[1] == Xte.shape[1] == 64
    assert len(Xtr) == len(ytr) and len(Xte) == len(yte)
    assert 0 <= Xtr.min() and Xtr.max() <= 1
    assert isinstance(desc, str) and desc
    if source == "generated":
        assert "generated" in desc and len(Xtr) == 2000 and len(Xte) == 500
    else:
        assert "scikit-learn" in desc and len(Xtr) + len(Xte) == 1797


def test_load_demo_digits_mnist(monkeypatch, data_dir, mnist_paths):
    monkeypatch.setenv("FASTNET_DATA", str(data_dir))
    Xtr, ytr, Xte, yte, desc = datasets.load_demo_digits("mnist")
    assert Xtr.shape == (8000, 784) and Xte.shape == (2000, 784)
    assert "MNIST" in desc and 0 <= Xtr.min() and Xtr.max() <= 1
    monkeypatch.setenv("FASTNET_DATA", str(data_dir / "nope"))
    with pytest.raises(FileNotFoundError, match="FASTNET_DATA"):
        datasets.load_demo_digits("mnist")


def test_load_demo_digits_auto_without_sklearn(monkeypatch, tmp_path):
    import sys
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn -> ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    monkeypatch.delenv("FASTNET_DATA", raising=False)
    *_, desc = datasets.load_demo_digits("auto")
    assert "generated" in desc
    with pytest.raises(ImportError, match="scikit-learn"):
        datasets.load_demo_digits("sklearn")
    with pytest.raises(ValueError, match="source must be one of"):
        datasets.load_demo_digits("cifar")


def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTNET_DATA", str(tmp_path))
    assert datasets.data_dir() == str(tmp_path)
    monkeypatch.setenv("FASTNET_DATA", str(tmp_path / "missing"))
    assert datasets.data_dir() is None
    monkeypatch.delenv("FASTNET_DATA")
    assert datasets.data_dir() is None
