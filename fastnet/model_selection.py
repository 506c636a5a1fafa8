"""Train/test split and k-fold cross-validation, as the course does them.

:func:`train_test_split`, :class:`KFold` and :class:`StratifiedKFold` follow
scikit-learn's names and return values; :func:`cross_val_score` (shuffled,
seeded, stratified for classifiers) accepts a scikit-learn-style
estimator (``fit`` and ``score``) or a plain function
``fn(X_train, y_train, X_test, y_test) -> score``.
"""
import numbers

import numpy as np

from fastnet._validation import check_int, check_rng, check_scalar

__all__ = ["train_test_split", "KFold", "StratifiedKFold", "cross_val_score"]


def _n_samples(X, name="X"):
    try:
        n = len(X)
    except TypeError:
        raise TypeError(f"{name} must be an array or a sequence, got {type(X).__name__}") from None
    if n == 0:
        raise ValueError(f"{name} is empty; expected at least one sample")
    return n


def _take(a, idx):
    if isinstance(a, np.ndarray):
        return a[idx]
    if hasattr(a, "iloc"):  # pandas
        return a.iloc[idx]
    return np.asarray(a)[idx]


def _stratified_test(labels, n_test, gen):
    """Test indices with each class's share of ``n_test`` (largest remainders), shuffled."""
    classes, codes = np.unique(labels, return_inverse=True)
    counts = np.bincount(codes)
    quota = counts * n_test / labels.shape[0]
    take = np.floor(quota).astype(np.int64)
    for k in np.argsort(-(quota - take), kind="stable")[:n_test - int(take.sum())]:
        take[k] += 1
    test = [gen.permutation(np.flatnonzero(codes == k))[:take[k]] for k in range(classes.shape[0])]
    return gen.permutation(np.concatenate(test))


def train_test_split(X, y=None, test_size=0.25, shuffle=True, rng=None, stratify=None):
    """Split data into a training and a test part.

    Parameters
    ----------
    X : array (m, ...)
    y : array (m,), optional
    test_size : float in (0, 1) or int in [1, m - 1]
        Fraction or number of samples in the test part.
    shuffle : bool
        Shuffle before splitting (with ``rng``); otherwise the last samples are the test part.
    rng : None, int or numpy.random.Generator
    stratify : array (m,), optional
        Class labels whose shares the test part keeps (scikit-learn's
        ``stratify``; needs ``shuffle``).

    Returns
    -------
    X_train, X_test[, y_train, y_test]
    """
    m = _n_samples(X)
    if y is not None and len(y) != m:
        raise ValueError(f"y has {len(y)} entries but X has {m} rows; expected equal lengths")
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        n_test = check_int(test_size, "test_size", lo=1, hi=m - 1)
    else:
        frac = check_scalar(test_size, "test_size", lo=0, hi=1, lo_open=True, hi_open=True)
        n_test = int(np.ceil(frac * m))
        if not 1 <= n_test <= m - 1:
            raise ValueError(f"test_size={test_size} leaves {n_test} of {m} samples for testing; "
                             f"expected at least one sample in each part")
    if stratify is not None:
        labels = np.asarray(stratify)
        if labels.shape != (m,):
            raise ValueError(f"stratify has shape {labels.shape}; expected ({m},): one label per "
                             f"row of X")
        if not shuffle:
            raise ValueError("stratify needs shuffle=True")
        gen = check_rng(rng)
        test = _stratified_test(labels, n_test, gen)
        mask = np.ones(m, dtype=bool)
        mask[test] = False
        train = gen.permutation(np.flatnonzero(mask))
    else:
        idx = check_rng(rng).permutation(m) if shuffle else np.arange(m)
        test, train = idx[m - n_test:], idx[:m - n_test]
        if shuffle:
            test, train = idx[:n_test], idx[n_test:]
    out = [_take(X, train), _take(X, test)]
    if y is not None:
        out += [_take(y, train), _take(y, test)]
    return tuple(out)


class KFold:
    """K-fold cross-validation splitter.

    Parameters
    ----------
    n_splits : int >= 2
    shuffle : bool
    rng : None, int or numpy.random.Generator
        Used when ``shuffle`` (also accepted as ``random_state``).
    """

    def __init__(self, n_splits=5, shuffle=False, rng=None, random_state=None):
        self.n_splits = check_int(n_splits, "n_splits", lo=2)
        self.shuffle = bool(shuffle)
        self.rng = rng if rng is not None else random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        return self.n_splits

    def split(self, X, y=None, groups=None):
        """Yield ``(train_index, test_index)`` for each fold; fold sizes differ by at most one."""
        m = _n_samples(X)
        if self.n_splits > m:
            raise ValueError(f"n_splits={self.n_splits} is larger than the number of samples "
                             f"({m}); expected n_splits <= {m}")
        idx = check_rng(self.rng).permutation(m) if self.shuffle else np.arange(m)
        sizes = np.full(self.n_splits, m // self.n_splits)
        sizes[: m % self.n_splits] += 1
        start = 0
        for size in sizes:
            test = idx[start:start + size]
            train = np.concatenate((idx[:start], idx[start + size:]))
            yield train, test
            start += size

    def __repr__(self):
        return f"KFold(n_splits={self.n_splits}, shuffle={self.shuffle})"


class StratifiedKFold(KFold):
    """K-fold splitter that keeps each class's share in every fold (scikit-learn's).

    Each class's samples (shuffled with ``rng`` when ``shuffle``) are dealt to
    the folds in turn, so fold sizes differ by at most one per class.
    """

    def split(self, X, y, groups=None):
        """Yield ``(train_index, test_index)`` for each fold."""
        m = _n_samples(X)
        if y is None:
            raise ValueError("StratifiedKFold needs the labels y to stratify by")
        labels = np.asarray(y)
        if labels.shape[0] != m:
            raise ValueError(f"y has {labels.shape[0]} entries but X has {m} rows; expected equal "
                             f"lengths")
        classes, codes = np.unique(labels, return_inverse=True)
        counts = np.bincount(codes)
        if self.n_splits > counts.max():
            raise ValueError(f"n_splits={self.n_splits} is larger than the number of samples of "
                             f"every class (at most {counts.max()}); expected fewer folds")
        gen = check_rng(self.rng) if self.shuffle else None
        fold = np.empty(m, dtype=np.int64)
        start = 0
        for k in range(classes.shape[0]):
            idx = np.flatnonzero(codes == k)
            if gen is not None:
                idx = gen.permutation(idx)
            fold[idx] = (np.arange(idx.shape[0]) + start) % self.n_splits
            start += idx.shape[0]  # the next class starts where this one stopped: balanced sizes
        for f in range(self.n_splits):
            yield np.flatnonzero(fold != f), np.flatnonzero(fold == f)

    def __repr__(self):
        return f"StratifiedKFold(n_splits={self.n_splits}, shuffle={self.shuffle})"


def _stratify(model, y, n_splits):
    """Whether an int ``cv`` stratifies: for classifiers (see :func:`cross_val_score`)."""
    if getattr(model, "_estimator_type", None) == "classifier":
        return True
    if hasattr(model, "fit"):
        return False
    labels = np.asarray(y)  # a function: discrete labels, each frequent enough to stratify by
    if labels.ndim != 1 or labels.dtype.kind not in "biuUSO":
        return False
    return bool(np.unique(labels, return_counts=True)[1].min() >= n_splits)


def cross_val_score(model, X, y, cv=5, rng=0, shuffle=True, stratify=None):
    """Scores of ``model`` on each fold of a k-fold cross-validation.

    As scikit-learn's ``cross_val_score`` for classifiers, the folds are
    stratified (each keeps the classes' shares); unlike it they are also
    shuffled by default (seeded, so the scores are reproducible), so that
    sorted data (the iris file, say) do not put whole classes in one fold.

    Parameters
    ----------
    model : estimator or callable
        An object with ``fit(X, y)`` and ``score(X, y)`` (cloned for each fold
        when it has ``get_params``), or a function
        ``fn(X_train, y_train, X_test, y_test) -> float``.
    X, y : arrays
    cv : int >= 2 or splitter
        The number of folds, or an object with ``split(X, y)`` (``KFold``,
        ``StratifiedKFold``, scikit-learn's splitters).
    rng : None, int or numpy.random.Generator, default=0
        Seeds the shuffle of an int ``cv``.
    shuffle : bool, default=True
        Shuffle before splitting (an int ``cv`` only).
    stratify : bool or None, default=None
        None: stratify for classifiers (an estimator whose ``_estimator_type``
        is ``'classifier'``, or a function given integer, boolean or string
        labels of which every class has at least ``cv`` samples).

    Returns
    -------
    ndarray (n_splits,)
    """
    m = _n_samples(X)
    if y is None or len(y) != m:
        raise ValueError(f"y has {None if y is None else len(y)} entries but X has {m} rows; "
                         f"expected one label or target per row")
    if hasattr(cv, "split") and not isinstance(cv, str):
        folds = cv
    else:
        if isinstance(cv, bool) or not isinstance(cv, numbers.Integral) or cv < 2:
            raise ValueError(f"cv must be the number of folds (an integer >= 2) or a splitter "
                             f"with a split method, got {cv!r}")
        n = len(y) if hasattr(y, "__len__") else None
        if n is not None and cv > n:
            raise ValueError(f"cv={cv} asks for more folds than there are samples ({n}); "
                             f"expected 2 <= cv <= {n}")
        strat = _stratify(model, y, cv) if stratify is None else bool(stratify)
        folds = (StratifiedKFold if strat else KFold)(int(cv), shuffle=shuffle, rng=rng)
    scores = []
    for train, test in folds.split(X, y):
        Xtr, Xte, ytr, yte = _take(X, train), _take(X, test), _take(y, train), _take(y, test)
        if callable(model) and not hasattr(model, "fit"):
            scores.append(float(model(Xtr, ytr, Xte, yte)))
        elif hasattr(model, "fit") and hasattr(model, "score"):
            est = _clone(model)
            est.fit(Xtr, ytr)
            scores.append(float(est.score(Xte, yte)))
        else:
            raise TypeError("model must have fit and score methods, or be a function "
                            "fn(X_train, y_train, X_test, y_test) -> score")
    return np.array(scores)


def _clone(est):
    if hasattr(est, "get_params"):
        return type(est)(**est.get_params(deep=False))
    return est
