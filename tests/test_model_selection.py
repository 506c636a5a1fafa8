"""Train/test split, k-fold cross-validation and cross_val_score."""
import numpy as np
import pytest

import fastnet
from fastnet import KFold, cross_val_score, train_test_split


def _data(m=23):
    X = np.arange(m * 2, dtype=float).reshape(m, 2)
    y = np.arange(m)
    return X, y


@pytest.mark.parametrize("test_size,n_test", [(0.25, 6), (0.5, 12), (5, 5), (1, 1), (0.01, 1)])
def test_split_sizes_and_disjointness(test_size, n_test):
    X, y = _data()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, rng=0)
    assert len(X_te) == len(y_te) == n_test
    assert len(X_tr) == len(y_tr) == 23 - n_test
    # rows stay paired with their labels, and every sample is in exactly one part
    np.testing.assert_array_equal(X_tr[:, 0], 2 * y_tr)
    np.testing.assert_array_equal(X_te[:, 0], 2 * y_te)
    assert sorted(np.r_[y_tr, y_te].tolist()) == list(range(23))


def test_split_is_reproducible_and_shuffled():
    X, y = _data(100)
    a = train_test_split(X, y, rng=1)
    b = train_test_split(X, y, rng=np.random.default_rng(1))
    c = train_test_split(X, y, rng=2)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[3], c[3])
    assert not np.array_equal(np.sort(a[3]), np.arange(75, 100))  # shuffled


def test_split_without_shuffle_keeps_the_last_samples_for_testing():
    X, y = _data(10)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=3, shuffle=False)
    np.testing.assert_array_equal(y_tr, np.arange(7))
    np.testing.assert_array_equal(y_te, [7, 8, 9])


def test_split_without_y_and_with_lists():
    X, _ = _data(8)
    out = train_test_split(X, test_size=2, rng=0)
    assert len(out) == 2 and out[1].shape == (2, 2)
    out = train_test_split(list(range(8)), list("abcdefgh"), test_size=2, rng=0)
    assert len(out[0]) == 6 and len(out[3]) == 2


@pytest.mark.parametrize("bad,match", [(0.0, "test_size"), (1.0, "test_size"), (0, "test_size"),
                                       (10, "test_size"), (-0.5, "test_size")])
def test_split_bad_test_size(bad, match):
    X, y = _data(10)
    with pytest.raises(ValueError, match=match):
        train_test_split(X, y, test_size=bad)


def test_split_bad_lengths():
    X, y = _data(10)
    with pytest.raises(ValueError, match="y has 9 entries but X has 10"):
        train_test_split(X, y[:9])
    with pytest.raises(ValueError, match="X is empty"):
        train_test_split(np.empty((0, 2)))


# --------------------------------------------------------------------------- KFold
@pytest.mark.parametrize("m,k", [(23, 5), (10, 10), (7, 2), (100, 3)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_kfold_covers_every_sample_exactly_once(m, k, shuffle):
    X, _ = _data(m)
    folds = list(KFold(k, shuffle=shuffle, rng=0).split(X))
    assert len(folds) == k
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(m))
    sizes = [len(te) for _, te in folds]
    assert max(sizes) - min(sizes) <= 1
    for tr, te in folds:
        assert len(np.intersect1d(tr, te)) == 0
        assert len(tr) + len(te) == m
    if not shuffle:
        np.testing.assert_array_equal(folds[0][1], np.arange(sizes[0]))


def test_kfold_shuffle_is_reproducible():
    X, _ = _data(30)
    a = [te for _, te in KFold(3, shuffle=True, rng=4).split(X)]
    b = [te for _, te in KFold(3, shuffle=True, random_state=4).split(X)]
    c = [te for _, te in KFold(3, shuffle=True, rng=5).split(X)]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))
    assert KFold(4).get_n_splits() == 4


def test_kfold_errors():
    with pytest.raises(ValueError, match="n_splits"):
        KFold(1)
    with pytest.raises(TypeError, match="n_splits"):
        KFold(2.5)
    with pytest.raises(ValueError, match=r"n_splits=5 is larger than the number of samples \(3\)"):
        list(KFold(5).split(np.ones((3, 1))))


# ---------------------------------------------------------------- cross_val_score
def test_cross_val_score_with_a_function():
    X, y = _data(20)
    seen = []

    def fn(X_tr, y_tr, X_te, y_te):
        seen.append(y_te)
        assert len(np.intersect1d(y_tr, y_te)) == 0
        return float(len(y_te))

    scores = cross_val_score(fn, X, y, cv=4)
    np.testing.assert_array_equal(scores, [5, 5, 5, 5])
    assert sorted(np.concatenate(seen).tolist()) == list(range(20))


class _MeanClassifier:
    """Estimator-like: predicts the majority label; score = accuracy. Counts its fits."""
    fits = 0

    def __init__(self, offset=0):
        self.offset = offset

    def get_params(self, deep=True):
        return {"offset": self.offset}

    def fit(self, X, y):
        type(self).fits += 1
        self.label_ = np.bincount(y).argmax() + self.offset
        return self

    def score(self, X, y):
        return float(np.mean(y == self.label_))


def test_cross_val_score_with_an_estimator():
    X = np.zeros((12, 1))
    y = np.array([1] * 9 + [0] * 3)
    est = _MeanClassifier(offset=0)
    _MeanClassifier.fits = 0
    scores = cross_val_score(est, X, y, cv=3, shuffle=False)
    assert _MeanClassifier.fits == 3
    assert not hasattr(est, "label_")  # each fold fits a clone
    np.testing.assert_allclose(scores, [1.0, 1.0, 0.25])
    _MeanClassifier._estimator_type = "classifier"
    try:  # a classifier: stratified folds, each with 3 ones and 1 zero
        np.testing.assert_allclose(cross_val_score(est, X, y, cv=3), [0.75] * 3)
    finally:
        del _MeanClassifier._estimator_type
    scores = cross_val_score(est, X, y, cv=KFold(3, shuffle=True, rng=0))
    assert scores.shape == (3,)


def test_cross_val_score_with_a_fastnet_model():
    """A callable that trains the course's network on each fold."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)

    def fit_score(X_tr, y_tr, X_te, y_te):
        model = [fastnet.init_weights(2, 2, rng=0), fastnet.Sigmoid]
        fastnet.reference.train(model, X_tr, y_tr, lr=2.0, epochs=200)
        return fastnet.accuracy(fastnet.reference.predict(model, X_te), y_te)

    scores = cross_val_score(fit_score, X, y, cv=3, rng=0)
    assert scores.shape == (3,) and scores.min() >= 80


def test_cross_val_score_shuffles_and_stratifies_sorted_iris_like_data():
    """Sorted labels (as in the iris file): unshuffled, unstratified folds hold whole classes."""
    X = np.repeat(np.arange(3.0), 30)[:, None] + np.tile(np.linspace(0, 0.1, 30), 3)[:, None]
    y = np.repeat(["a", "b", "c"], 30)
    seen = []

    def fn(X_tr, y_tr, X_te, y_te):
        seen.append(np.unique(y_te, return_counts=True)[1].tolist())
        return 1.0

    cross_val_score(fn, X, y, cv=5)
    assert seen == [[6, 6, 6]] * 5
    a = cross_val_score(lambda *d: float(d[3][0] == "a"), X, y, cv=5, rng=1)
    b = cross_val_score(lambda *d: float(d[3][0] == "a"), X, y, cv=5, rng=1)
    np.testing.assert_array_equal(a, b)  # seeded: reproducible


@pytest.mark.parametrize("cv", [0, 1, -3, 2.5, True, "5"])
def test_cross_val_score_bad_cv_names_cv(cv):
    X, y = _data(10)
    with pytest.raises(ValueError, match=r"cv must be the number of folds \(an integer >= 2\)"):
        cross_val_score(lambda *a: 0.0, X, y, cv=cv)


def test_stratified_kfold():
    y = np.array([0] * 10 + [1] * 5)
    folds = list(fastnet.StratifiedKFold(5, shuffle=True, rng=0).split(np.zeros((15, 1)), y))
    for tr, te in folds:
        assert sorted(y[te].tolist()) == [0, 0, 1]
        assert np.array_equal(np.sort(np.r_[tr, te]), np.arange(15))
    with pytest.raises(ValueError, match="larger than the number of samples of every class"):
        list(fastnet.StratifiedKFold(11).split(np.zeros((15, 1)), y))


def test_cross_val_score_errors():
    X, y = _data(10)
    with pytest.raises(TypeError, match="fit and score"):
        cross_val_score(object(), X, y, cv=2)
    with pytest.raises(ValueError, match="y has 9 entries"):
        cross_val_score(lambda *a: 0.0, X, y[:9])


# ------------------------------------------------------------------------- hypothesis
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=50, deadline=None)
@given(m=st.integers(2, 60), data=st.data(), shuffle=st.booleans(), seed=st.integers(0, 100))
def test_hypothesis_kfold_partitions(m, data, shuffle, seed):
    k = data.draw(st.integers(2, m))
    folds = list(KFold(k, shuffle=shuffle, rng=seed).split(np.zeros((m, 1))))
    tests = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(tests), np.arange(m))
    for tr, te in folds:
        assert np.array_equal(np.sort(np.r_[tr, te]), np.arange(m))
    assert {len(te) for _, te in folds} <= {m // k, -(-m // k)}


@settings(max_examples=50, deadline=None)
@given(m=st.integers(2, 60), frac=st.floats(0.01, 0.99), seed=st.integers(0, 100))
def test_hypothesis_split_partitions(m, frac, seed):
    X = np.arange(m)
    try:
        tr, te = train_test_split(X, test_size=frac, rng=seed)
    except ValueError as exc:
        assert "test_size" in str(exc)
        return
    assert len(te) == int(np.ceil(frac * m)) and len(tr) + len(te) == m
    assert np.array_equal(np.sort(np.r_[tr, te]), X)


def test_train_test_split_stratified():
    X = np.arange(150.0)[:, None]
    y = np.repeat(["a", "b", "c"], [50, 60, 40])
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, rng=0, stratify=y)
    assert Xte.shape == (30, 1) and Xtr.shape == (120, 1)
    assert dict(zip(*np.unique(yte, return_counts=True))) == {"a": 10, "b": 12, "c": 8}
    assert sorted(np.r_[Xtr[:, 0], Xte[:, 0]].tolist()) == list(range(150))
    with pytest.raises(ValueError, match="stratify has shape"):
        train_test_split(X, y, stratify=y[:3])
