r"""Feature scaling, fitted on training data and applied to test data with the same parameters.

* :class:`Rescaler` (min-max): :math:`x' = (x - \min) / (\max - \min)`
* :class:`Standardizer` (z-score): :math:`x' = (x - \mu) / \sigma`
* :class:`Normalizer` (mean normalisation): :math:`x' = (x - \mu) / (\max - \min)`

Each has ``fit``, ``transform``, ``fit_transform`` and ``inverse_transform``
(scikit-learn's names, so they also work in its pipelines).  Constant
features get a scale of 1 instead of a division by zero.  The functions
:func:`rescale`, :func:`standardize` and :func:`normalize` fit on their first
argument and transform it and, when given, a test set.
"""
import numpy as np

from fastnet._validation import as_float_array

__all__ = ["Rescaler", "Standardizer", "Normalizer", "rescale", "standardize", "normalize"]


class _Scaler:
    """Shared machinery: subclasses compute ``center_`` and ``scale_`` in :meth:`_params`."""

    def fit(self, X, y=None):
        """Learn the per-feature parameters from training data ``X`` (m, n)."""
        X_ = as_float_array(X, "X", ndim=2)
        center, scale = self._params(X_)
        # A constant feature gets scale 1 and its value as centre (so it maps to exactly 0):
        # tested on max == min, because its computed spread may be a rounding error
        # (np.std([0.1] * 7) is 1.4e-17, which would map the feature to +-1 or worse).
        lo = X_.min(axis=0)
        constant = lo == X_.max(axis=0)
        center = np.where(constant, lo, center)
        scale = np.where(constant | (scale == 0), 1, scale).astype(X_.dtype)
        self.center_ = center.astype(X_.dtype)
        self.scale_ = scale
        self.n_features_in_ = X_.shape[1]
        return self

    def _check(self, X, name="X"):
        if not hasattr(self, "scale_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit(X_train) "
                             f"before transform")
        X_ = as_float_array(X, name, ndim=2)
        if X_.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {X_.shape[1]} features, but {type(self).__name__} was "
                             f"fitted with {self.n_features_in_}")
        return X_

    def transform(self, X):
        """Scale ``X`` with the parameters learnt by :meth:`fit`."""
        X_ = self._check(X)
        return (X_ - self.center_.astype(X_.dtype)) / self.scale_.astype(X_.dtype)

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)

    def inverse_transform(self, X):
        """Undo :meth:`transform`."""
        X_ = self._check(X)
        return X_ * self.scale_.astype(X_.dtype) + self.center_.astype(X_.dtype)

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
    scaler = cls().fit(X_train)
    out = scaler.transform(X_train)
    if X_test is None:
        return out
    return out, scaler.transform(np.asarray(X_test))


def rescale(X_train, X_test=None):
    """Min-max rescale ``X_train``, and ``X_test`` with the training parameters."""
    return _apply(Rescaler, X_train, X_test)


def standardize(X_train, X_test=None):
    """Standardise ``X_train``, and ``X_test`` with the training mean and deviation."""
    return _apply(Standardizer, X_train, X_test)


def normalize(X_train, X_test=None):
    """Mean-normalise ``X_train``, and ``X_test`` with the training parameters."""
    return _apply(Normalizer, X_train, X_test)
