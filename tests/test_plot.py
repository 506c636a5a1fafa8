"""fastnet.plot renders each of the course's pictures to a real PNG (Agg backend)."""
import subprocess
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import fastnet
from fastnet.estimators import LogisticRegression, MLPClassifier, Perceptron

from conftest import REPO

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from fastnet import plot  # noqa: E402


def check_png(path, min_size=(200, 200)):
    """The file is a PNG of at least ``min_size`` pixels with more than one colour."""
    assert path.exists(), f"{path} was not written"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image as mpimg
    img = mpimg.imread(path)
    assert img.shape[0] >= min_size[0] and img.shape[1] >= min_size[1], img.shape
    assert float(img[..., :3].std()) > 0.01, "the image is blank"
    assert len(np.unique(img[..., :3].reshape(-1, 3), axis=0)) > 10
    return img


def two_blobs(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack((rng.normal(-1, 0.6, (n // 2, 2)), rng.normal(1, 0.6, (n // 2, 2))))
    return X, np.r_[np.zeros(n // 2, dtype=int), np.ones(n // 2, dtype=int)]


def test_activations(tmp_path):
    fig = plot.activations(path=tmp_path / "act.png")
    img = check_png(tmp_path / "act.png")
    assert img.shape[1] > img.shape[0]  # one panel per activation, side by side
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes] == ["Sigmoid", "TanH", "ReLu", "Linear"]
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        plot.activations(["swish"])
    with pytest.raises(ValueError, match="low < high"):
        plot.activations(z_range=(1, -1))


def test_learning_curves(tmp_path):
    X, y = two_blobs()
    model = [fastnet.init_weights(2, 4, rng=0), fastnet.Sigmoid,
             fastnet.init_weights(4, 2, rng=1), fastnet.Sigmoid]
    hist = fastnet.train(model, X, y, lr=1.0, epochs=20, X_test=X, y_test=y)
    fig = plot.learning_curves(hist, path=tmp_path / "lc.png", title="course")
    check_png(tmp_path / "lc.png")
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 1 and len(fig.axes[1].lines) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier((4,), optimizer="sgd", lr=0.1, max_epochs=10, early_stopping=True,
                            random_state=0).fit(X, y)
    fig = plot.learning_curves(est, path=tmp_path / "lc2.png")
    check_png(tmp_path / "lc2.png")
    assert len(fig.axes[0].lines) == 2  # train and validation J
    perc = Perceptron(max_epochs=5).fit(X, y)
    check_png_fig = plot.learning_curves(perc, path=tmp_path / "lc3.png")
    assert check_png_fig.axes[0].lines
    with pytest.raises(ValueError, match="no curve to draw"):
        plot.learning_curves({"J": []})
    with pytest.raises(TypeError, match="history must be"):
        plot.learning_curves([1, 2])


@pytest.mark.parametrize("kind", ["perceptron", "weights", "logistic", "mlp", "model_list"])
def test_decision_boundary(tmp_path, kind):
    X, y = two_blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "perceptron":
            model = Perceptron().fit(X, y)
        elif kind == "weights":
            model = fastnet.perceptron.train(np.zeros(3), X, y)
        elif kind == "logistic":
            model = LogisticRegression().fit(X, np.array(["neg", "pos"])[y])
            y = np.array(["neg", "pos"])[y]
        elif kind == "mlp":
            model = MLPClassifier((6,), optimizer="sgd", lr=0.1, max_epochs=50, random_state=0).fit(X, y)
        else:
            model = MLPClassifier((6,), optimizer="sgd", lr=0.1, max_epochs=50,
                                  random_state=0).fit(X, y).model_
    fig = plot.decision_boundary(model, X, y, path=tmp_path / "db.png", resolution=60)
    check_png(tmp_path / "db.png")
    ax = fig.axes[0]
    assert len(ax.collections) >= 3  # filled regions, boundary, points


def test_decision_boundary_bad_input():
    X, y = two_blobs()
    model = Perceptron().fit(X, y)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 2\)"):
        plot.decision_boundary(model, np.ones((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match="y has 3 labels"):
        plot.decision_boundary(model, X, y[:3])
    with pytest.raises(TypeError, match="must be an estimator"):
        plot.decision_boundary("model", X, y)


def test_digits(tmp_path):
    X, y, *_ = fastnet.datasets.load_demo_digits("generated")
    pred = y.copy()
    pred[::3] = (pred[::3] + 1) % 10
    fig = plot.digits(X, y, pred, n=16, path=tmp_path / "digits.png")
    check_png(tmp_path / "digits.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 16 and titles[0] == f"true {y[0]} / pred {pred[0]}"
    red = [ax for ax in fig.axes if ax.get_title() and ax.title.get_color() == "red"]
    assert len(red) == int(np.sum(pred[:16] != y[:16]))
    plot.digits(X.reshape(-1, 8, 8), y, n=4, path=tmp_path / "d2.png")
    check_png(tmp_path / "d2.png", min_size=(100, 100))
    with pytest.raises(ValueError, match="not square"):
        plot.digits(np.ones((3, 10)), [1, 2, 3])
    with pytest.raises(ValueError, match="y_pred has 2"):
        plot.digits(X[:3], y[:3], y[:2])


def test_mnist_digits(tmp_path, mnist):
    X, y, _, _ = mnist
    plot.digits(X[:9], y[:9], path=tmp_path / "mnist.png")
    check_png(tmp_path / "mnist.png", min_size=(150, 150))


def test_word_vectors(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    wv = SimpleNamespace(vectors=rng.normal(size=(30, 8)).astype(np.float32),
                         index_to_key=words, key_to_index={w: i for i, w in enumerate(words)})
    fig = plot.word_vectors(wv, path=tmp_path / "wv.png")
    check_png(tmp_path / "wv.png")
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == words
    fig = plot.word_vectors(SimpleNamespace(wv=wv), words=["w3", "w7", "w9"])
    assert [t.get_text() for t in fig.axes[0].texts] == ["w3", "w7", "w9"]
    with pytest.raises(KeyError, match="nope"):
        plot.word_vectors(wv, words=["w1", "nope"])
    with pytest.raises(TypeError, match="KeyedVectors-like"):
        plot.word_vectors(np.ones((3, 3)))


def test_word_vectors_of_gensim(tmp_path):
    gensim = pytest.importorskip("gensim")
    from gensim.models import KeyedVectors
    kv = KeyedVectors(vector_size=5)
    kv.add_vectors(["king", "queen", "man", "woman"], np.eye(4, 5, dtype=np.float32))
    plot.word_vectors(kv, path=tmp_path / "g.png")
    check_png(tmp_path / "g.png")


def test_draws_into_given_axes(tmp_path):
    from matplotlib.figure import Figure
    X, y = two_blobs()
    fig = Figure()
    a, b = fig.subplots(1, 2)
    out = plot.decision_boundary(Perceptron().fit(X, y), X, y, ax=a)
    assert out is fig and a.collections
    plot.save_figure(fig, tmp_path / "both.png")
    check_png(tmp_path / "both.png")


def test_without_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import fastnet.plot as p\n"
            "try:\n    p.activations()\nexcept ImportError as e:\n"
            "    assert 'pip install' in str(e), e\n"
            "else:\n    raise AssertionError('no ImportError')\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
