r"""The course's perceptron as an estimator (one versus the rest for more classes)."""
from __future__ import annotations

import numpy as np

from fastnet import _backend
from fastnet._validation import check_rng
from fastnet.training import History
from fastnet.estimators._base import (_ClassifierMixin, _Estimator, _p_bool, _p_int,
                                      _p_random_state, _p_real)


class Perceptron(_ClassifierMixin, _Estimator):
    r"""The course's perceptron: :math:`\hat y = [w_0 + w^T x \ge 0]`, trained by the perceptron rule.

    Sample by sample, :math:`w \leftarrow w + \eta\,(y - \hat y)\,[1, x]`, for
    up to ``max_epochs`` passes; training stops after a pass without a
    mistake.  Each pass over all epochs runs inside the backend's
    ``perceptron_train`` kernel.  More than two classes are handled one
    versus the rest (one perceptron per class, the class with the largest
    activation wins).

    Parameters
    ----------
    lr : float > 0, default=1.0
        Learning rate :math:`\eta`.
    max_epochs : int >= 1, default=100
    shuffle : bool, default=False
        Shuffle the samples before each epoch (the course does not).
    random_state : int, numpy Generator or None, default=None
        Seeds the shuffles.

    Attributes
    ----------
    coef_ : ndarray (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray (1,) or (n_classes,)
    weights_ : ndarray (n_features + 1,)
        The course's weight vector (bias first), two classes only.
    classes_ : ndarray
    n_iter_ : int
        Epochs run (the most over the one-versus-rest perceptrons).
    history_ : fastnet.History
        ``'errors'``: mistakes made during each epoch (summed over the
        perceptrons).
    """

    def __init__(self, *, lr=1.0, max_epochs=100, shuffle=False, random_state=None):
        self.lr = lr
        self.max_epochs = max_epochs
        self.shuffle = shuffle
        self.random_state = random_state

    def _config(self):
        return {"lr": _p_real(self, "lr", lo=0, lo_open=True),
                "max_epochs": _p_int(self, "max_epochs", lo=1),
                "shuffle": _p_bool(self, "shuffle"),
                "rng": _p_random_state(self)}

    def _dtype(self):
        return self.W_.dtype

    def fit(self, X, y):
        """Train from zero weights; returns self."""
        return self._fit(X, y, partial=False, classes=None)

    def partial_fit(self, X, y, classes=None):
        """One epoch of the perceptron rule on ``(X, y)`` (``classes`` required on the first call)."""
        if not self.__sklearn_is_fitted__() and classes is None:
            raise ValueError("classes must be passed on the first call to "
                             "Perceptron.partial_fit (every label that can occur)")
        if self.__sklearn_is_fitted__() and classes is not None:
            given = np.unique(np.asarray(classes))
            if not np.array_equal(given, self.classes_):
                raise ValueError(f"classes={given.tolist()} differs from classes_="
                                 f"{self.classes_.tolist()} of the first call to partial_fit")
        return self._fit(X, y, partial=True, classes=classes)

    def _fit(self, X, y, *, partial, classes):
        c = self._config()
        first = not partial or not self.__sklearn_is_fitted__()
        Xv, names = self._validate_X(X, reset=first)
        codes = self._encode(y, Xv.shape[0], reset=first, classes=classes)
        cls = self._new_classes if first else self.classes_
        n_units = 1 if cls.shape[0] == 2 else cls.shape[0]
        rng = c["rng"] if first else self._rng
        W = np.zeros((n_units, Xv.shape[1] + 1), dtype=Xv.dtype) if first else self.W_.copy()
        K = _backend.kernels()
        epochs = 1 if partial else c["max_epochs"]
        m = Xv.shape[0]
        errors_total = np.zeros(epochs, dtype=np.int64)
        runs = 0
        for k in range(n_units):
            target = (codes == (1 if n_units == 1 else k)).astype(Xv.dtype)
            w = np.ascontiguousarray(W[k])
            if c["shuffle"]:
                ran = 0
                one = np.zeros(1, dtype=np.int64)
                for e in range(epochs):
                    perm = rng.permutation(m)
                    K.perceptron_train(np.ascontiguousarray(Xv[perm]), target[perm], w, 1,
                                       c["lr"], one)
                    errors_total[e] += one[0]
                    ran += 1
                    if one[0] == 0:
                        break
            else:
                errs = np.zeros(epochs, dtype=np.int64)
                ran = int(K.perceptron_train(Xv, target, w, epochs, c["lr"], errs))
                errors_total[:ran] += errs[:ran]
            W[k] = w
            runs = max(runs, ran)
        if first:
            self._set_input_attributes(Xv, names)
            self.classes_ = cls
            self.n_iter_ = 0
            self.history_ = History(errors=[])
        self.W_ = W
        self._rng = rng
        self.__dict__.pop("_new_classes", None)
        self.n_iter_ += runs
        self.history_["errors"].extend(int(e) for e in errors_total[:runs])
        self.history_["epochs"] = len(self.history_["errors"])
        self.history_["converged"] = bool(runs and errors_total[runs - 1] == 0)
        return self

    @property
    def coef_(self):
        if "W_" not in self.__dict__:
            raise AttributeError("Perceptron has no attribute 'coef_' before fit")
        return self.W_[:, 1:].copy()

    @property
    def intercept_(self):
        if "W_" not in self.__dict__:
            raise AttributeError("Perceptron has no attribute 'intercept_' before fit")
        return self.W_[:, 0].copy()

    @property
    def weights_(self):
        """The course's weight vector ``[w0, w1, ..., wn]`` (two classes only)."""
        if "W_" not in self.__dict__:
            raise AttributeError("Perceptron has no attribute 'weights_' before fit")
        if self.W_.shape[0] != 1:
            raise AttributeError("weights_ exists for two classes only; use coef_ and "
                                 "intercept_ for one-versus-rest perceptrons")
        return self.W_[0].copy()

    def decision_function(self, X):
        r"""The activations :math:`w_0 + w^T x`: ``(n_samples,)`` for two classes, else per class."""
        self._check_fitted()
        Xv, _ = self._validate_X(X, reset=False)
        z = Xv @ self.W_[:, 1:].T + self.W_[:, 0]
        return z[:, 0] if z.shape[1] == 1 else z

    def predict(self, X):
        """Class labels: the neuron fires (:math:`\\ge 0`) for ``classes_[1]``; one versus the rest
        picks the largest activation."""
        z = self.decision_function(X)
        idx = (z >= 0).astype(np.int64) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]

    def _fitted_state(self):
        meta = {"n_features_in": self.n_features_in_, "n_iter": self.n_iter_,
                "history": dict(self.history_)}
        return meta, {"W": self.W_, "classes": self.classes_}

    def _restore_state(self, meta, arrays):
        self.W_ = np.ascontiguousarray(arrays["W"])
        self.classes_ = arrays["classes"]
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_iter_ = int(meta["n_iter"])
        self.history_ = History(meta.get("history", {}))
        self._rng = check_rng(None)
