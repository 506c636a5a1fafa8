"""Train/test split and k-fold cross-validation, as the course does them.

:func:`train_test_split` and :class:`KFold` follow scikit-learn's names and
return values; :func:`cross_val_score` accepts a scikit-learn-style
estimator (``fit`` and ``score``) or a plain function
``fn(X_train, y_train, X_test, y_test) -> score``.
"""
import numbers

import numpy as np

from fastnet._validation import check_int, check_rng, check_scalar

__all__ = ["train_test_split", "KFold", "cross_val_score"]


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


def train_test_split(X, y=None, test_size=0.25, shuffle=True, rng=None):
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


def cross_val_score(model, X, y, cv=5, rng=None):
    """Scores of ``model`` on each fold of a k-fold cross-validation.

    Parameters
    ----------
    model : estimator or callable
        An object with ``fit(X, y)`` and ``score(X, y)`` (cloned for each fold
        when it has ``get_params``), or a function
        ``fn(X_train, y_train, X_test, y_test) -> float``.
    X, y : arrays
    cv : int or KFold
    rng : seed for the shuffle of an int ``cv`` (no shuffle when None)

    Returns
    -------
    ndarray (n_splits,)
    """
    folds = cv if hasattr(cv, "split") else KFold(cv, shuffle=rng is not None, rng=rng)
    m = _n_samples(X)
    if len(y) != m:
        raise ValueError(f"y has {len(y)} entries but X has {m} rows; expected equal lengths")
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
