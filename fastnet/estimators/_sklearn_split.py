"""scikit-learn's validation split for ``early_stopping``, drawn from its ``RandomState``.

scikit-learn's MLPs hold out ``validation_fraction`` with ``train_test_split(X, Y,
random_state=rs, test_size=validation_fraction, stratify=...)``, ``rs`` being the
``RandomState`` that has just drawn the initial weights.  They stratify only when the
network has one output (two classes, a logistic unit); with more classes (a softmax over
several outputs, scikit-learn's ``n_outputs_ > 1``) and for regressors the split is a plain
shuffle.
:func:`split` draws the same numbers in the same order, so that with the same weights the
training part, its order and the validation part are scikit-learn's:

* no strata: :math:`n_{val} = \\lceil f\\,m \\rceil`, one permutation of the rows; the
  first :math:`n_{val}` validate, the rest train;
* by class (two classes): the training and validation counts per class by its
  "approximate mode" (the floors of the proportional shares, the remainders handed out by
  random choice among the largest); one permutation within each class, class 0 first; then
  a permutation of each part.
"""
import math

import numpy as np

__all__ = ["split"]


def _approximate_mode(counts, n_draws, rs):
    """Per-class counts summing to ``n_draws``, proportional to ``counts`` (scikit-learn's
    ``_approximate_mode``, with its draws)."""
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need)
            inds = rs.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need -= add_now
            if need == 0:
                break
    return floored.astype(int)


def split(m, codes, fraction, rs):
    """``(train, validation)`` row indices of scikit-learn's split, in its orders.

    Parameters
    ----------
    m : int
        Rows.
    codes : int array (m,) or None
        Class codes, 0 and 1 (None: the split without strata, of regressors and of
        networks with several outputs).
    fraction : float in (0, 1)
        ``validation_fraction``.
    rs : numpy.random.RandomState

    Raises
    ------
    ValueError
        When a class has a single sample, or a part would have fewer samples than classes
        (scikit-learn's conditions), or no sample is left to train on.
    """
    n_val = math.ceil(fraction * m)
    n_train = m - n_val
    if n_train < 1:
        raise ValueError(f"validation_fraction={fraction} of {m} samples leaves no training "
                         f"sample; use a smaller validation_fraction or more data")
    if codes is None:
        perm = rs.permutation(m)
        return perm[n_val:], perm[:n_val]
    n_classes = 2
    members = [np.flatnonzero(codes == k) for k in range(n_classes)]
    counts = np.array([len(idx) for idx in members])
    if counts.min() < 2:
        raise ValueError(f"early_stopping's stratified split needs at least two samples of "
                         f"each class; the least populated class has {counts.min()}")
    if n_train < n_classes or n_val < n_classes:
        raise ValueError(f"validation_fraction={fraction} of {m} samples gives {n_val} "
                         f"validation and {n_train} training samples; each part needs at "
                         f"least one per class ({n_classes})")
    n_i = _approximate_mode(counts, n_train, rs)
    t_i = _approximate_mode(counts - n_i, n_val, rs)
    train, val = [], []
    for idx, a, b in zip(members, n_i, t_i):
        perm = idx.take(rs.permutation(len(idx)), mode="clip")
        train.extend(perm[:a])
        val.extend(perm[a:a + b])
    return rs.permutation(train), rs.permutation(val)
