r"""The course's pictures, with matplotlib (optional: ``pip install "fastnet[plot]"``).

* :func:`activations`: each activation function with its gradient;
* :func:`learning_curves`: the cost J and the train/test accuracy per epoch;
* :func:`decision_boundary`: the regions a 2-D classifier (perceptron,
  logistic regression, MLP, or a course model list) assigns to each class;
* :func:`digits`: a grid of digit images with their true and predicted labels;
* :func:`word_vectors`: word vectors projected on their first two principal
  components, with their words;
* :func:`save_demo_plots`: all of them for ``python -m fastnet demo --plots DIR``;
* :func:`codes_2d`: an autoencoder's 2-D code of the data, one colour per class;
* :func:`reconstructions`: a grid of images above their autoencoder reconstructions.

Every function returns a :class:`matplotlib.figure.Figure` and, given
``path``, writes it as a PNG (atomically: a temporary file renamed into
place).  Figures are built without :mod:`matplotlib.pyplot`, so nothing
opens a window and any backend works (``Agg`` on a server); pass ``ax=`` to
draw into an existing axes instead.  matplotlib is imported only when a
function is called.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["activations", "learning_curves", "decision_boundary", "digits", "word_vectors",
           "save_figure", "save_demo_plots", "codes_2d", "reconstructions"]


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("fastnet.plot needs matplotlib: pip install 'fastnet[plot]' "
                          "(or pip install matplotlib)") from None
    return Figure


def _new_axes(ax, nrows=1, ncols=1, figsize=(6, 4.5)):
    if ax is not None:
        return ax.figure, ax
    Figure = _matplotlib()
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes[0, 0] if nrows * ncols == 1 else axes


def save_figure(fig, path, dpi=100):
    """Write ``fig`` to ``path`` as PNG, atomically (temporary file, then rename)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: directory {directory!r} does not exist")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


# ------------------------------------------------------------------------------ activations
def activations(names=("sigmoid", "tanh", "relu", "linear"), z_range=(-5.0, 5.0), path=None):
    r"""Each activation :math:`f(z)` with its gradient :math:`f'(z)`, one panel per activation.

    Parameters
    ----------
    names : sequence of str
        Among ``'sigmoid'``, ``'tanh'``, ``'relu'``, ``'linear'``.
    z_range : (float, float)
    path : str, optional
        Write the figure there as PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from fastnet.activations import ACTIVATIONS
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ValueError("names is empty; expected at least one activation name")
    for n in names:
        if n not in ACTIVATIONS or n == "softmax":
            raise ValueError(f"unknown activation {n!r}: expected one of 'sigmoid', 'tanh', "
                             f"'relu', 'linear'")
    lo, hi = z_range
    if not lo < hi:
        raise ValueError(f"z_range must be (low, high) with low < high, got {z_range!r}")
    z = np.linspace(lo, hi, 401)
    cols = min(len(names), 4)
    rows = -(-len(names) // cols)
    fig, axes = _new_axes(None, rows, cols, figsize=(3.2 * cols, 2.8 * rows))
    axes = np.atleast_1d(axes).ravel()
    for ax, name in zip(axes, names):
        act = ACTIVATIONS[name]
        ax.plot(z, act.f(z), label="f(z)", color="C0", lw=2)
        ax.plot(z, act.df(z), label="f'(z)", color="C1", lw=1.5, ls="--")
        ax.axhline(0, color="0.7", lw=0.8)
        ax.axvline(0, color="0.7", lw=0.8)
        ax.set_title(act.__name__)
        ax.set_xlabel("z")
        ax.legend(loc="best", fontsize="small")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    return _finish(fig, path)


# -------------------------------------------------------------------------- learning curves
def learning_curves(history, path=None, title=None):
    """The cost J per epoch and, when recorded, the accuracies per epoch.

    Parameters
    ----------
    history : dict, fastnet.History, or an estimator with ``history_``
        Keys used: ``'J'`` (and ``'val_J'``), ``'train_acc'``,
        ``'test_acc'``, ``'val_acc'`` (percent), ``'errors'`` (perceptron).
    path : str, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if hasattr(history, "history_"):
        history = history.history_
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict (fastnet.History) or an estimator with "
                        f"history_, got {type(history).__name__}")
    costs = [k for k in ("J", "val_J", "errors") if history.get(k)]
    accs = [k for k in ("train_acc", "test_acc", "val_acc") if history.get(k)]
    if not costs and not accs:
        raise ValueError("history has no curve to draw: expected a non-empty 'J', 'train_acc', "
                         "'test_acc', 'val_acc' or 'errors'")
    panels = (1 if costs else 0) + (1 if accs else 0)
    fig, axes = _new_axes(None, 1, panels, figsize=(5.5 * panels, 4))
    axes = np.atleast_1d(axes).ravel()
    labels = {"J": "J (train)", "val_J": "J (validation)", "errors": "mistakes per epoch",
              "train_acc": "train", "test_acc": "test", "val_acc": "validation"}
    i = 0
    if costs:
        ax = axes[i]
        i += 1
        for k in costs:
            v = np.asarray(history[k], dtype=float)
            ax.plot(np.arange(1, v.size + 1), v, label=labels[k])
        ax.set_xlabel("epoch")
        ax.set_ylabel("cost J" if "errors" not in costs else "cost / mistakes")
        ax.set_title("cost per epoch")
        ax.legend(loc="best")
    if accs:
        ax = axes[i]
        for k in accs:
            v = np.asarray(history[k], dtype=float)
            ax.plot(np.arange(1, v.size + 1), v, label=labels[k])
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.set_title("accuracy per epoch")
        ax.legend(loc="best")
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


# ------------------------------------------------------------------------ decision boundary
def _predictor(model):
    """A function X -> labels for an estimator, a course model list or perceptron weights."""
    if hasattr(model, "predict") and not isinstance(model, (list, tuple, np.ndarray)):
        return model.predict
    if isinstance(model, (list, tuple)):
        import fastnet
        return lambda X: fastnet.predict(list(model), X)
    arr = np.asarray(model)
    if arr.ndim == 1 and arr.dtype.kind in "biuf":
        from fastnet import perceptron
        return lambda X: perceptron.predict(arr, X).astype(np.int64)
    raise TypeError("model must be an estimator with predict, a course model list "
                    "[Theta1, Sigmoid, ...] or a perceptron's weight vector [w0, w1, w2], got "
                    f"{type(model).__name__}")


def decision_boundary(model, X, y, path=None, ax=None, resolution=200, title=None,
                      margin=0.5):
    """The class regions of a classifier of two features, with the data on top.

    Parameters
    ----------
    model : estimator, model list or 1-D weights
        A fitted :class:`~fastnet.Perceptron`, :class:`~fastnet.LogisticRegression`,
        :class:`~fastnet.MLPClassifier` (anything with ``predict``), a course
        model list ``[Theta1, Sigmoid, ...]`` or the course perceptron's
        weight vector ``[w0, w1, w2]``.
    X : array (m, 2)
    y : array (m,)
        Labels (of any type) used to colour the points.
    path : str, optional
    ax : matplotlib Axes, optional
    resolution : int
        Grid points per axis.
    title : str, optional
    margin : float
        Added around the data's range.

    Returns
    -------
    matplotlib.figure.Figure
    """
    predict = _predictor(model)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (n_samples, 2) to draw a 2-D decision boundary, "
                         f"got {X.shape}")
    y = np.asarray(y)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y has {y.shape[0]} labels but X has {X.shape[0]} rows")
    if not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    (x0, y0), (x1, y1) = X.min(axis=0) - margin, X.max(axis=0) + margin
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.column_stack((gx.ravel(), gy.ravel()))
    pred = np.asarray(predict(grid))
    classes = np.unique(np.concatenate((np.unique(y).astype(object),
                                        np.unique(pred).astype(object))).astype(str))
    index = {c: i for i, c in enumerate(classes)}
    zz = np.array([index[str(v)] for v in pred]).reshape(gx.shape)
    fig, ax = _new_axes(ax)
    from matplotlib.colors import ListedColormap
    colors = [f"C{i % 10}" for i in range(len(classes))]
    cmap = ListedColormap(colors)
    ax.contourf(gx, gy, zz, levels=np.arange(len(classes) + 1) - 0.5, cmap=cmap, alpha=0.25)
    if len(classes) > 1:
        ax.contour(gx, gy, zz, levels=np.arange(len(classes)) + 0.5, colors="k",
                   linewidths=0.8)
    for c in np.unique(y.astype(str)):
        sel = y.astype(str) == c
        ax.scatter(X[sel, 0], X[sel, 1], s=18, color=colors[index[c]], edgecolor="k",
                   linewidths=0.4, label=str(c))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.legend(loc="best", fontsize="small")
    ax.set_title(title or f"decision boundary: {type(model).__name__}")
    return _finish(fig, path)


# ----------------------------------------------------------------------------------- digits
def digits(X, y_true, y_pred=None, n=25, shape=None, path=None, cols=None, title=None):
    """A grid of digit images titled with their true (and predicted) labels.

    Parameters
    ----------
    X : array (m, h*w) or (m, h, w)
        Images, one per row (pixels in any range).
    y_true : array (m,)
    y_pred : array (m,), optional
        Predictions; wrong ones are titled in red.
    n : int
        How many images (the first ``n``).
    shape : (h, w), optional
        Image shape; by default the square root of the row length (8x8, 28x28).
    path, cols, title : optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.asarray(X)
    if X.ndim == 3:
        shape = X.shape[1:]
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must hold images, one per row, got shape {X.shape}")
    if shape is None:
        side = int(round(np.sqrt(X.shape[1])))
        if side * side != X.shape[1]:
            raise ValueError(f"rows of {X.shape[1]} pixels are not square images: give shape="
                             f"(height, width)")
        shape = (side, side)
    if int(np.prod(shape)) != X.shape[1]:
        raise ValueError(f"shape {tuple(shape)} does not hold {X.shape[1]} pixels")
    y_true = np.asarray(y_true)
    if y_true.shape[0] != X.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} labels but X has {X.shape[0]} images")
    if y_pred is not None:
        y_pred = np.asarray(y_pred)
        if y_pred.shape[0] != X.shape[0]:
            raise ValueError(f"y_pred has {y_pred.shape[0]} labels but X has {X.shape[0]} images")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    n = min(int(n), X.shape[0])
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    fig, axes = _new_axes(None, rows, cols, figsize=(1.3 * cols, 1.5 * rows))
    axes = np.atleast_1d(axes).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(X[i].reshape(shape), cmap="gray_r", interpolation="nearest")
        if y_pred is None:
            ax.set_title(f"{y_true[i]}", fontsize=9)
        else:
            ok = y_pred[i] == y_true[i]
            ax.set_title(f"true {y_true[i]} / pred {y_pred[i]}", fontsize=7,
                         color="k" if ok else "red")
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


# ----------------------------------------------------------------------------- word vectors
def word_vectors(wv, words=None, n=40, path=None, ax=None, title=None):
    """Word vectors projected on their first two principal components, labelled.

    Parameters
    ----------
    wv : KeyedVectors-like
        An object with ``vectors`` (V, d) and ``index_to_key`` (gensim 4's
        and fastnet's ``KeyedVectors``; ``model.wv``).
    words : list of str, optional
        The words to show; by default the first ``n`` of the vocabulary
        (the most frequent).
    n : int
    path, ax, title : optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    KeyError
        A word of ``words`` is not in the vocabulary.
    """
    if hasattr(wv, "wv") and not hasattr(wv, "vectors"):
        wv = wv.wv
    vectors = getattr(wv, "vectors", None)
    keys = getattr(wv, "index_to_key", None)
    if vectors is None or keys is None:
        raise TypeError("wv must be KeyedVectors-like, with .vectors and .index_to_key, got "
                        f"{type(wv).__name__}")
    vectors = np.asarray(vectors, dtype=np.float64)
    if words is None:
        if not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"n must be an int >= 2, got {n!r}")
        idx = np.arange(min(int(n), len(keys)))
        words = [keys[i] for i in idx]
    else:
        words = [words] if isinstance(words, str) else list(words)
        lookup = getattr(wv, "key_to_index", None) or {k: i for i, k in enumerate(keys)}
        missing = [w for w in words if w not in lookup]
        if missing:
            raise KeyError(f"words not in the vocabulary: {missing[:10]}")
        idx = np.array([lookup[w] for w in words])
    if len(idx) < 2:
        raise ValueError("need at least two words to project on two components")
    V = vectors[idx]
    centred = V - V.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    comps = vt[:2] if vt.shape[0] >= 2 else np.vstack((vt, np.zeros_like(vt)))
    P = centred @ comps.T
    fig, ax = _new_axes(ax, figsize=(7, 6))
    ax.scatter(P[:, 0], P[:, 1], s=12, color="C0")
    for (px, py), w in zip(P, words):
        ax.annotate(str(w), (px, py), xytext=(3, 3), textcoords="offset points", fontsize=8)
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_title(title or f"{len(words)} word vectors (PCA)")
    return _finish(fig, path)


# ------------------------------------------------------------------------------- the demo's
def _two_moons(n, rng):
    """Two interleaved half circles: a data set no straight line separates."""
    t = rng.uniform(0, np.pi, n)
    half = n // 2
    upper = np.column_stack((np.cos(t[:half]), np.sin(t[:half])))
    lower = np.column_stack((1 - np.cos(t[half:]), 0.5 - np.sin(t[half:])))
    X = np.vstack((upper, lower)) + rng.normal(0, 0.12, (n, 2))
    y = np.r_[np.zeros(half, dtype=np.int64), np.ones(n - half, dtype=np.int64)]
    return X, y


def save_demo_plots(directory, *, model, history, X, y, seed=0):
    """Write the course's pictures for the demo as PNG files in ``directory``.

    ``activations.png``, ``learning_curves.png`` (from ``history``),
    ``digits.png`` (the first test digits ``X`` with their labels ``y`` and
    ``model``'s predictions), ``decision_boundary.png`` (a perceptron, a
    logistic regression and an MLP on two interleaved half moons) and, when
    :mod:`fastnet.word2vec` and the shared corpus (``FASTNET_DATA``) are
    available, ``word_vectors.png``.

    Parameters
    ----------
    directory : str or os.PathLike
        Created if needed.
    model : list
        The trained course model ``[Theta1, Sigmoid, Theta2, Sigmoid]``.
    history : dict
        Its training history (``J``, ``train_acc``, ``test_acc``).
    X, y : arrays
        Test images (one per row) and labels.
    seed : int

    Returns
    -------
    list of str
        The paths written.
    """
    import warnings

    import fastnet
    from fastnet.estimators import LogisticRegression, MLPClassifier, Perceptron
    _matplotlib()
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    written = []

    def path(name):
        p = os.path.join(directory, name)
        written.append(p)
        return p

    activations(path=path("activations.png"))
    learning_curves(history, path=path("learning_curves.png"),
                    title="the course's network on the demo digits")
    digits(X, y, fastnet.predict(model, X), n=36, path=path("digits.png"),
           title="test digits: true / predicted label")

    Xm, ym = _two_moons(300, np.random.default_rng(seed))
    Figure = _matplotlib()
    fig = Figure(figsize=(15, 4.5), layout="constrained")
    axes = fig.subplots(1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the small models
        models = [Perceptron(max_epochs=50).fit(Xm, ym),
                  LogisticRegression(max_epochs=500).fit(Xm, ym),
                  MLPClassifier((20,), activation="tanh", optimizer="momentum", lr=0.05,
                                max_epochs=300, random_state=seed, verbose=0).fit(Xm, ym)]
    for ax, est in zip(axes, models):
        decision_boundary(est, Xm, ym, ax=ax, resolution=150,
                          title=f"{type(est).__name__} (accuracy "
                                f"{100 * est.score(Xm, ym):.0f} %)")
    save_figure(fig, path("decision_boundary.png"))

    wv = _demo_word_vectors(seed)
    if wv is not None:
        model_wv, words = wv
        word_vectors(model_wv, words=words if len(words) >= 5 else None, n=40,
                     path=path("word_vectors.png"))
    return written


def _demo_word_vectors(seed):
    """Small word vectors trained on the start of the shared corpus, or None when impossible."""
    import importlib.util
    import tempfile
    if importlib.util.find_spec("fastnet.word2vec") is None:
        return None
    from fastnet.datasets import data_dir
    root = data_dir()
    corpus = root and os.path.join(root, "corpus", "gutenberg_mix.txt")
    if not corpus or not os.path.exists(corpus):
        return None
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
    return model.wv, words


# ------------------------------------------------------------------------ autoencoders
def _codes_of(model, X):
    if hasattr(model, "transform"):
        return np.asarray(model.transform(X))
    raise TypeError(f"model must have a transform method (a fitted fastnet.Autoencoder), got "
                    f"{type(model).__name__}")


def codes_2d(model, X, y, path=None, ax=None, title=None, max_points=5000):
    """The 2-D codes of ``X`` (an autoencoder with a 2-unit code), one colour per label.

    Parameters
    ----------
    model : fitted :class:`fastnet.Autoencoder` (``n_components_ == 2``), or an
        array of codes ``(m, 2)`` already computed
    X : array (m, n_features)
        The data to encode (ignored when ``model`` is an array of codes).
    y : array (m,)
        Labels (the digits), for the colours and the legend.
    path, ax, title : optional
    max_points : int
        At most this many points are drawn (the first ones).

    Returns
    -------
    matplotlib.figure.Figure
    """
    codes = np.asarray(model) if isinstance(model, np.ndarray) else _codes_of(model, X)
    if codes.ndim != 2 or codes.shape[1] != 2:
        raise ValueError(f"the codes must be 2-D points (m, 2), got shape {codes.shape}; train "
                         f"the autoencoder with a 2-unit code (e.g. hidden_layer_sizes=(64, 2, "
                         f"64))")
    y = np.asarray(y)
    if y.shape[0] != codes.shape[0]:
        raise ValueError(f"y has {y.shape[0]} labels but there are {codes.shape[0]} codes")
    n = min(codes.shape[0], int(max_points))
    codes, y = codes[:n], y[:n]
    fig, ax = _new_axes(ax, figsize=(6, 5.5))
    labels = np.unique(y)
    import matplotlib
    cmap = matplotlib.colormaps["tab10" if labels.shape[0] <= 10 else "tab20"]
    for i, label in enumerate(labels):
        pts = codes[y == label]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.7, color=cmap(i % cmap.N),
                   label=str(label))
    ax.set_xlabel("code 1")
    ax.set_ylabel("code 2")
    ax.legend(markerscale=3, fontsize=8, loc="best", title="label")
    ax.set_title(title or "2-D code of the autoencoder")
    return _finish(fig, path)


def reconstructions(model, X, n=10, shape=None, path=None, title=None):
    """A grid: ``n`` images of ``X`` (top row) above their reconstructions by ``model``.

    Parameters
    ----------
    model : fitted :class:`fastnet.Autoencoder` (or anything with ``reconstruct``)
    X : array (m, h*w)
    n : int
        How many images (the first ``n``).
    shape : (h, w), optional
        Image shape; by default the square root of the row length.
    path, title : optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must hold flat images, one per row, got shape {X.shape}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    n = min(int(n), X.shape[0])
    if shape is None:
        side = int(round(np.sqrt(X.shape[1])))
        if side * side != X.shape[1]:
            raise ValueError(f"rows of {X.shape[1]} pixels are not square images: give shape="
                             f"(height, width)")
        shape = (side, side)
    if int(np.prod(shape)) != X.shape[1]:
        raise ValueError(f"shape {tuple(shape)} does not hold {X.shape[1]} pixels")
    if not hasattr(model, "reconstruct"):
        raise TypeError(f"model must be a fitted fastnet.Autoencoder, got {type(model).__name__}")
    R = np.asarray(model.reconstruct(X[:n]))
    fig, axes = _new_axes(None, 2, n, figsize=(1.2 * n, 2.7))
    axes = np.asarray(axes).reshape(2, n)
    for i in range(n):
        for row, img in ((0, X[i]), (1, R[i])):
            ax = axes[row, i]
            ax.imshow(img.reshape(shape), cmap="gray_r", interpolation="nearest", vmin=0,
                      vmax=max(1.0, float(X[:n].max())))
            ax.set_axis_off()
    axes[0, 0].set_title("input", fontsize=8, loc="left")
    axes[1, 0].set_title("reconstruction", fontsize=8, loc="left")
    if title:
        fig.suptitle(title)
    return _finish(fig, path)
