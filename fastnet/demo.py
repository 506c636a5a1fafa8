"""The demo: the course's sigmoid network on real digits, with timings against the reference.

``python -m fastnet demo`` runs :func:`run`: it trains the course's network
``[Theta1, Sigmoid, Theta2, Sigmoid]`` (64-50-10 on 8x8 digits, 784-50-10 on
MNIST) by online learning (one update per sample, the course's loop) on the
active backend, prints where the data came from, the train and test
accuracy, the seconds per epoch and the speed-up over the numpy reference
(measured on the same epochs with the same seed), and with ``plots`` writes
the course's pictures as PNG files.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

__all__ = ["run"]


def _train(X, y, X_test, y_test, hidden, epochs, lr, batch_size, seed, dtype):
    import fastnet
    rng = np.random.default_rng(seed)
    n_in, K = X.shape[1], int(max(y.max(), y_test.max())) + 1
    model = [fastnet.init_weights(n_in, hidden, rng=rng, dtype=dtype), fastnet.Sigmoid,
             fastnet.init_weights(hidden, K, rng=rng, dtype=dtype), fastnet.Sigmoid]
    hist = fastnet.train(model, X, y, optimizer="sgd", batch_size=batch_size, lr=lr,
                         epochs=epochs, rng=seed + 1, X_test=X_test, y_test=y_test)
    return model, hist


def _per_epoch(hist):
    s = hist["seconds"]
    # the first epoch may include compilation (Numba's JIT): leave it out when there are others
    return float(np.median(s[1:] if len(s) > 1 else s))


def run(plots=None, *, epochs=30, hidden=50, lr=0.1, batch_size=1, source="auto", seed=0,
        dtype="float64", reference_epochs=2, out=None):
    """Train the course's network on the demo digits and report accuracy and speed.

    Parameters
    ----------
    plots : str or os.PathLike, optional
        Directory (created if needed) where the PNG pictures are written:
        ``activations.png``, ``learning_curves.png``, ``digits.png``,
        ``decision_boundary.png`` and, when :mod:`fastnet.word2vec` is
        available, ``word_vectors.png``.
    epochs : int
        Epochs of online learning on the active backend.
    hidden : int
        Hidden units (the course uses 50).
    lr : float
        Learning rate.
    batch_size : int
        1 is the course's online learning.
    source : {'auto', 'sklearn', 'mnist', 'generated'}
        See :func:`fastnet.datasets.load_demo_digits`.
    seed : int
    dtype : {'float64', 'float32'}
    reference_epochs : int
        Epochs timed on the reference backend for the speed-up (0 skips it).
    out : file-like, optional
        Where to print (standard output by default).

    Returns
    -------
    dict
        ``source``, ``backend``, ``train_acc``, ``test_acc`` (percent),
        ``seconds_per_epoch``, ``reference_seconds_per_epoch``, ``speedup``,
        ``plots`` (paths written).
    """
    import fastnet
    from fastnet._validation import check_int, check_scalar
    out = sys.stdout if out is None else out
    epochs = check_int(epochs, "epochs", lo=1)
    hidden = check_int(hidden, "hidden", lo=1)
    lr = check_scalar(lr, "lr", lo=0, lo_open=True)
    batch_size = check_int(batch_size, "batch_size", lo=1)
    reference_epochs = check_int(reference_epochs, "reference_epochs", lo=0)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype}")

    X, y, X_test, y_test, description = fastnet.datasets.load_demo_digits(source, rng=seed)
    X, X_test = X.astype(dtype), X_test.astype(dtype)
    backend = fastnet.get_backend()
    mode = "online learning (one update per sample)" if batch_size == 1 else \
        f"mini-batches of {batch_size}"
    print(f"fastnet {fastnet.__version__} demo: the course's network {X.shape[1]}-{hidden}-"
          f"{int(y.max()) + 1}, sigmoid, cross-entropy, {mode}, lr={lr:g}, {dtype.name}",
          file=out)
    print(f"data: {description}", file=out)
    print(f"backend: {backend} (available: {', '.join(fastnet.available_backends())})",
          file=out)
    out.flush()

    t0 = time.perf_counter()
    model, hist = _train(X, y, X_test, y_test, hidden, epochs, lr, batch_size, seed, dtype)
    wall = time.perf_counter() - t0
    per_epoch = _per_epoch(hist)
    result = {"source": description, "backend": backend, "train_acc": hist["train_acc"][-1],
              "test_acc": hist["test_acc"][-1], "epochs": epochs,
              "seconds_per_epoch": per_epoch, "reference_seconds_per_epoch": None,
              "speedup": None, "plots": []}
    print(f"accuracy after {epochs} epochs: train {result['train_acc']:.1f} %, test "
          f"{result['test_acc']:.1f} % ({wall:.2f} s in all)", file=out)

    if backend == "reference":
        print(f"time per epoch: {per_epoch:.4f} s on the reference backend (no compiled "
              f"backend is active, so no speed-up to report: install numba, or build the "
              f"Cython extension)", file=out)
    elif reference_epochs:
        with fastnet.use_backend("reference"):
            _, ref_hist = _train(X, y, X_test, y_test, hidden, reference_epochs, lr, batch_size,
                                 seed, dtype)
        ref = float(np.median(ref_hist["seconds"]))
        result["reference_seconds_per_epoch"] = ref
        result["speedup"] = ref / per_epoch if per_epoch > 0 else float("inf")
        print(f"time per epoch: {per_epoch:.4f} s on {backend} vs {ref:.4f} s on the numpy "
              f"reference: {result['speedup']:.1f}x faster", file=out)
    else:
        print(f"time per epoch: {per_epoch:.4f} s on {backend}", file=out)

    if plots is not None:
        result["plots"] = _write_plots(os.fspath(plots), model, hist, X_test, y_test, seed, out)
    return result


def _two_moons(n, rng):
    t = rng.uniform(0, np.pi, n)
    upper = np.column_stack((np.cos(t), np.sin(t)))
    lower = np.column_stack((1 - np.cos(t), 0.5 - np.sin(t)))
    half = n // 2
    X = np.vstack((upper[:half], lower[half:])) + rng.normal(0, 0.12, (n, 2))
    y = np.r_[np.zeros(half, dtype=np.int64), np.ones(n - half, dtype=np.int64)]
    return X, y


def _write_plots(directory, model, hist, X_test, y_test, seed, out):
    import warnings

    import fastnet
    from fastnet import plot
    from fastnet.estimators import LogisticRegression, MLPClassifier, Perceptron
    os.makedirs(directory, exist_ok=True)
    written = []

    def path(name):
        p = os.path.join(directory, name)
        written.append(p)
        return p

    plot.activations(path=path("activations.png"))
    plot.learning_curves(hist, path=path("learning_curves.png"),
                         title="the course's network on the demo digits")
    pred = fastnet.predict(model, X_test)
    plot.digits(X_test, y_test, pred, n=36, path=path("digits.png"),
                title="test digits: true / predicted label")

    rng = np.random.default_rng(seed)
    Xm, ym = _two_moons(300, rng)
    Figure = plot._matplotlib()
    fig = Figure(figsize=(15, 4.5), layout="constrained")
    axes = fig.subplots(1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the small models
        models = [Perceptron(max_epochs=50).fit(Xm, ym),
                  LogisticRegression(max_epochs=500).fit(Xm, ym),
                  MLPClassifier((20,), activation="tanh", optimizer="momentum", lr=0.05,
                                max_epochs=300, random_state=seed, verbose=0).fit(Xm, ym)]
    for ax, est in zip(axes, models):
        plot.decision_boundary(est, Xm, ym, ax=ax, resolution=150,
                               title=f"{type(est).__name__} (accuracy "
                                     f"{100 * est.score(Xm, ym):.0f} %)")
    plot.save_figure(fig, path("decision_boundary.png"))

    note = _word_vectors_plot(path, seed)
    if note:
        written.pop()
        print(f"word_vectors.png skipped: {note}", file=out)
    print(f"plots written to {directory}: " + ", ".join(os.path.basename(p) for p in written),
          file=out)
    return written


def _word_vectors_plot(path, seed):
    """Train small word vectors on the shared corpus and draw them; a reason when impossible."""
    import importlib.util
    target = path("word_vectors.png")
    if importlib.util.find_spec("fastnet.word2vec") is None:
        return "fastnet.word2vec is not available in this installation"
    from fastnet.datasets import data_dir
    root = data_dir()
    corpus = root and os.path.join(root, "corpus", "gutenberg_mix.txt")
    if not corpus or not os.path.exists(corpus):
        return "no corpus found (set FASTNET_DATA to the directory holding corpus/)"
    import tempfile

    from fastnet import plot
    from fastnet.word2vec import Word2Vec
    with tempfile.TemporaryDirectory() as tmp:
        small = os.path.join(tmp, "corpus.txt")
        with open(corpus, encoding="utf-8") as src, open(small, "w", encoding="utf-8") as dst:
            for i, line in enumerate(src):
                if i >= 20000:
                    break
                dst.write(line)
        model = Word2Vec(corpus_file=small, vector_size=50, window=5, min_count=5, epochs=3,
                         seed=seed)
    words = [w for w in ("king", "queen", "man", "woman", "father", "mother", "son",
                         "daughter", "london", "paris", "day", "night", "good", "bad", "black",
                         "white", "red", "green", "one", "two", "three", "four")
             if w in model.wv.key_to_index]
    plot.word_vectors(model.wv, words=words if len(words) >= 5 else None, n=40, path=target)
    return None
