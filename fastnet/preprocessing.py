r"""Feature scaling, fitted on training data and applied to test data with the same parameters.

* :class:`Rescaler` (min-max): :math:`x' = (x - \min) / (\max - \min)`
* :class:`Standardizer` (z-score): :math:`x' = (x - \mu) / \sigma`
* :class:`Normalizer` (mean normalisation): :math:`x' = (x - \mu) / (\max - \min)`

Each has ``fit``, ``transform``, ``fit_transform`` and ``inverse_transform``
(scikit-learn's names, so they also work in its pipelines).  Constant
features get a scale of 1 instead of a division by zero.  The functions
:func:`rescale`, :func:`standardize` and :func:`normalize` fit on their first
argument and transform it and, when given, a test set.

Overflow: the parameters and the scaled values are computed in float64 (also
for float32 data, whose results are rounded to float32 at the end), so float32
values near their largest (3.4e38) scale correctly; where even float64 would
overflow (float64 data near 1.8e308) the parameters are computed on the data
divided by their largest magnitude.  A result that cannot be represented (a
feature whose range exceeds float64's, a test value mapping beyond float32's
range) raises ``FloatingPointError`` naming the argument and the entry,
never silent zeros, infinities or NaN.
"""
import numpy as np

from fastnet._validation import as_float_array


__all__ = ["Rescaler", "Standardizer", "Normalizer", "rescale", "standardize", "normalize"]


class _Scaler:
    """Shared machinery: subclasses compute ``center_`` and ``scale_`` in :meth:`_params`."""

    def fit(self, X, y=None):
        """Learn the per-feature parameters (float64 ``center_``, ``scale_``) from ``X`` (m, n).

        Raises
        ------
        FloatingPointError
            A feature's parameter overflows float64 (its range exceeds 1.8e308).
        """
        return self._fit(X, "X")

    def _fit(self, X, name):
        X_ = as_float_array(X, name, ndim=2)
        X64 = X_.astype(np.float64, copy=False)
        center, scale = self._safe_params(X64, name)
        # A constant feature gets scale 1 and its value as centre (so it maps to exactly 0):
        # tested on max == min, because its computed spread may be a rounding error
        # (np.std([0.1] * 7) is 1.4e-17, which would map the feature to +-1 or worse).
        lo = X64.min(axis=0)
        constant = lo == X64.max(axis=0)
        self.center_ = np.where(constant, lo, center)
        self.scale_ = np.where(constant | (scale == 0), 1.0, scale)
        self.n_features_in_ = X_.shape[1]
        return self

    def _safe_params(self, X, name):
        """``_params`` in float64; on overflow, computed on ``X / max|X|`` and scaled back."""
        with np.errstate(over="ignore", invalid="ignore"):
            center, scale = self._params(X)
        if np.isfinite(center).all() and np.isfinite(scale).all():
            return center, scale
        big = np.abs(X).max(axis=0)
        big[big == 0] = 1.0
        c, sc = self._params(X / big)
        with np.errstate(over="ignore"):
            center, scale = c * big, sc * big
        for what, v in (("centre", center), ("scale", scale)):
            if not np.isfinite(v).all():
                j = int(np.flatnonzero(~np.isfinite(v))[0])
                raise FloatingPointError(
                    f"{name}: the {what} of feature {j} ({type(self).__name__}) overflows "
                    f"float64: its values span more than 1.8e308 (from {X[:, j].min():.3g} to "
                    f"{X[:, j].max():.3g}); divide that feature by a large constant first")
        return center, scale

    def _check(self, X, name="X"):
        if not hasattr(self, "scale_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit(X_train) "
                             f"before transform")
        X_ = as_float_array(X, name, ndim=2)
        if X_.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {X_.shape[1]} features, but {type(self).__name__} was "
                             f"fitted with {self.n_features_in_}")
        return X_

    @staticmethod
    def _result(Z, dtype, name, what):
        """``Z`` (float64) as ``dtype``, or FloatingPointError if it does not fit."""
        limit = float(np.finfo(dtype).max)
        bad = ~(np.abs(Z) <= limit)
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            raise FloatingPointError(
                f"{name}[{i}, {j}] {what} to {Z[i, j]:.3g}, which overflows {np.dtype(dtype).name}"
                f": the value is far outside the training data's range (check {name}"
                + (", or pass float64 data)" if dtype == np.float32 else ")"))
        return Z.astype(dtype, copy=False)

    def transform(self, X):
        """Scale ``X`` with the parameters learnt by :meth:`fit` (computed in float64).

        Raises
        ------
        FloatingPointError
            A scaled value overflows ``X``'s dtype.
        """
        return self._transform(X, "X")

    def _transform(self, X, name):
        X_ = self._check(X, name)
        with np.errstate(over="ignore"):
            Z = (X_.astype(np.float64, copy=False) - self.center_) / self.scale_
        return self._result(Z, X_.dtype, name, "scales")

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)

    def inverse_transform(self, X):
        """Undo :meth:`transform` (computed in float64)."""
        X_ = self._check(X)
        with np.errstate(over="ignore"):
            Z = X_.astype(np.float64, copy=False) * self.scale_ + self.center_
        return self._result(Z, X_.dtype, "X", "maps back")

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        if params:
            raise ValueError(f"{type(self).__name__} has no parameters, got {sorted(params)}")
        return self

    def __repr__(self):
        return f"{type(self).__name__}()"


class Rescaler(_Scaler):
    r"""Min-max rescaling to [0, 1]: :math:`x' = (x - \min x) / (\max x - \min x)`."""

    def _params(self, X):
        lo, hi = X.min(axis=0), X.max(axis=0)
        return lo, hi - lo


class Standardizer(_Scaler):
    r"""Standardisation: :math:`x' = (x - \mu) / \sigma` (population standard deviation)."""

    def _params(self, X):
        return X.mean(axis=0), X.std(axis=0)


class Normalizer(_Scaler):
    r"""Mean normalisation: :math:`x' = (x - \mu) / (\max x - \min x)`."""

    def _params(self, X):
        return X.mean(axis=0), X.max(axis=0) - X.min(axis=0)


def _apply(cls, X_train, X_test):
    scaler = cls()._fit(X_train, "X_train")
    out = scaler._transform(X_train, "X_train")
    if X_test is None:
        return out
    return out, scaler._transform(X_test, "X_test")


def rescale(X_train, X_test=None):
    """Min-max rescale ``X_train``, and ``X_test`` with the training parameters."""
    return _apply(Rescaler, X_train, X_test)


def standardize(X_train, X_test=None):
    """Standardise ``X_train``, and ``X_test`` with the training mean and deviation."""
    return _apply(Standardizer, X_train, X_test)


def normalize(X_train, X_test=None):
    """Mean-normalise ``X_train``, and ``X_test`` with the training parameters."""
    return _apply(Normalizer, X_train, X_test)
