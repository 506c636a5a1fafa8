r"""The machinery of every estimator that is one of the course's networks.

:class:`_Network` turns hyper-parameters into a network (layer sizes,
activations, loss), trains it with :class:`fastnet.training.EpochTrainer`
(early stopping, ``partial_fit``, a progress bar) and exposes the fitted
weights in scikit-learn's and the course's layouts; :class:`_NetworkClassifier`
and :class:`_NetworkRegressor` add the targets and predictions of each
kind.  The MLPs (:mod:`._mlp`) and the linear models (:mod:`._linear`) are
thin subclasses.  Also here: the docstring template they share.
"""
from __future__ import annotations

import numbers
import time
import warnings

import numpy as np

from fastnet import _backend
from fastnet._backend import ACTIVATION_CODES, LOSS_CODES
from fastnet._params import layer_views, n_params, unpack
from fastnet._progress import Progress
from fastnet._validation import check_rng
from fastnet.training import EpochTrainer, History
from fastnet.estimators._base import (
    _ALIASES, _DEFAULT_BATCH, _HIDDEN_ACTIVATIONS, _OPTIMIZERS, InvalidParameterError,
    _ClassifierMixin, _ConvergenceWarning, _Estimator, _RegressorMixin, _as_numeric,
    _nonfinite_message, _p_bool, _p_choice, _p_int, _p_random_state, _p_real, _param_error,
    _warning_class)


def _auto_lr(X, loss, output, optimizer, batch_size, momentum, penalty, lam):
    r"""A safe learning rate :math:`1/L` for a model without a hidden layer.

    :math:`L` bounds the curvature of the cost: the largest eigenvalue of
    :math:`\tilde X^T\tilde X/m` (:math:`\tilde X = [1, X]`, by power
    iteration) for full batches, :math:`\max_i (1 + \lVert x_i\rVert^2)` for
    smaller batches, times 1 (quadratic), 1/4 (sigmoid with cross-entropy) or
    1/2 (softmax with log-loss), plus :math:`\lambda` for an L2 penalty.  With
    momentum :math:`\mu` the step is scaled by :math:`1 - \mu`; RMSprop,
    which normalises its steps, gets 0.01.
    """
    if optimizer == "rmsprop":
        return 0.01
    Xd = np.asarray(X, dtype=np.float64)
    m = Xd.shape[0]
    if batch_size is None or batch_size >= m:
        v = np.ones(Xd.shape[1] + 1) / np.sqrt(Xd.shape[1] + 1)
        L = 0.0
        for _ in range(50):
            u = Xd @ v[1:] + v[0]
            w = np.concatenate(([u.sum()], Xd.T @ u)) / m
            L_new = float(np.linalg.norm(w))
            if L_new == 0:
                break
            v = w / L_new
            if abs(L_new - L) <= 1e-3 * L_new:
                L = L_new
                break
            L = L_new
    else:
        L = float(1.0 + np.max(np.einsum("ij,ij->i", Xd, Xd)))
    if loss == "cross_entropy" and output == "sigmoid":
        L *= 0.25
    elif loss == "log_loss":
        L *= 0.5
    elif output != "linear":
        L *= 1.0  # quadratic loss through a squashing output: f' <= 1 for sigmoid and tanh
    if penalty == "l2":
        L += lam
    lr = 1.0 / max(L, 1e-12)
    if optimizer == "momentum":
        lr *= 1.0 - momentum
    return lr



# ------------------------------------------------------------------------ network estimators
class _Network(_Estimator):
    """The machinery of every estimator that is a course network (trained by EpochTrainer)."""

    _hidden_default = ()
    _output_choices = ("linear", "sigmoid", "relu", "tanh")
    _loss_choices = ("quadratic", "cross_entropy")
    _init_zero = False  # linear models start from zeros, as the course does
    _lr_auto = False    # linear models accept lr='auto'

    # ---- hyper-parameters
    def _config(self):
        c = {}
        hidden = getattr(self, "hidden_layer_sizes", self._hidden_default)
        if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
            hidden = (hidden,)
        try:
            hidden = tuple(hidden)
        except TypeError:
            raise _param_error(self, "hidden_layer_sizes",
                               "a tuple of positive ints (one per hidden layer)", hidden) from None
        if any(isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1
               for h in hidden):
            raise _param_error(self, "hidden_layer_sizes",
                               "a tuple of positive ints (one per hidden layer)", hidden)
        c["hidden"] = tuple(int(h) for h in hidden)
        acts = getattr(self, "activation", "sigmoid")
        if isinstance(acts, str):
            acts = [acts] * len(c["hidden"])
        else:
            try:
                acts = list(acts)
            except TypeError:
                acts = [acts]
            if len(acts) != len(c["hidden"]):
                raise _param_error(self, "activation",
                                   f"a str or a list of {len(c['hidden'])} strs (one per hidden "
                                   f"layer) among {set(_HIDDEN_ACTIVATIONS)}", self.activation)
        names = []
        for a in acts:
            key = _ALIASES.get(a.strip().lower(), a.strip().lower()) if isinstance(a, str) else None
            if key not in _HIDDEN_ACTIVATIONS:
                shown = "{" + ", ".join(repr(x) for x in _HIDDEN_ACTIVATIONS) + "}"
                raise _param_error(self, "activation",
                                   f"a str among {shown} (or a list of them, one per hidden "
                                   f"layer)", self.activation)
            names.append(key)
        c["activations"] = names
        c["output"] = self._output_activation()
        c["loss"] = self._loss_name(c["output"])
        c["optimizer"] = _p_choice(self, "optimizer", _OPTIMIZERS)
        if self._lr_auto and isinstance(self.lr, str) and self.lr == "auto":
            c["lr"] = "auto"
        else:
            try:
                c["lr"] = _p_real(self, "lr", lo=0, lo_open=True)
            except InvalidParameterError:
                if not self._lr_auto:
                    raise
                raise _param_error(self, "lr", "'auto' or a float in the range (0, inf)",
                                   self.lr) from None
        c["batch_size"] = _p_int(self, "batch_size", lo=1, allow_none=True)
        c["momentum"] = _p_real(self, "momentum", lo=0, hi=1, hi_open=True)
        c["rho"] = _p_real(self, "rho", lo=0, hi=1, hi_open=True)
        c["eps"] = _p_real(self, "eps", lo=0, lo_open=True)
        pen = _p_choice(self, "penalty", ("l1", "l2", "none"), allow_none=True)
        c["penalty"] = None if pen == "none" else pen
        c["lam"] = _p_real(self, "lam", lo=0)
        c["max_epochs"] = _p_int(self, "max_epochs", lo=1)
        c["tol"] = _p_real(self, "tol", lo=0)
        c["n_iter_no_change"] = _p_int(self, "n_iter_no_change", lo=1)
        c["early_stopping"] = _p_bool(self, "early_stopping")
        c["validation_fraction"] = _p_real(self, "validation_fraction", lo=0, hi=1,
                                           lo_open=True, hi_open=True)
        c["shuffle"] = _p_bool(self, "shuffle")
        c["verbose"] = _p_int(self, "verbose", lo=0)
        c["track_accuracy"] = _p_bool(self, "track_accuracy") \
            if hasattr(self, "track_accuracy") else False
        c["rng"] = _p_random_state(self)
        return c

    def _output_activation(self):
        return _p_choice(self, "output_activation", self._output_choices)

    def _loss_name(self, output):
        loss = getattr(self, "loss", None)
        if loss is None:
            return {"softmax": "log_loss", "sigmoid": "cross_entropy"}.get(output, "quadratic")
        key = _p_choice(self, "loss", self._loss_choices)
        if output == "softmax" and key != "log_loss":
            raise _param_error(self, "loss", "'log_loss' (or None) with "
                               "output_activation='softmax'", loss)
        if key == "log_loss" and output != "softmax":
            raise _param_error(self, "loss", "'cross_entropy', 'quadratic' or None with "
                               f"output_activation={output!r} ('log_loss' needs 'softmax')", loss)
        return key

    # ---- targets (overridden by the classifier / regressor halves)
    def _targets(self, y, X, *, reset, classes, output, dtype):
        raise NotImplementedError

    def _n_outputs(self, output):
        raise NotImplementedError

    # ---- fitted structure
    def _dtype(self):
        return self.params_.dtype

    def _kinds(self):
        return np.array([ACTIVATION_CODES[a] for a in self.activations_], dtype=np.int64)

    def _sizes(self):
        return np.asarray(self.layer_sizes_, dtype=np.int64)

    def _forward(self, X, params=None, logits=False):
        kinds = self._kinds()
        if logits:
            kinds = kinds.copy()
            kinds[-1] = ACTIVATION_CODES["linear"]
        sizes = self._sizes()
        out = np.empty((X.shape[0], int(sizes[-1])), dtype=X.dtype)
        _backend.kernels().forward_network(self.params_ if params is None else params, sizes,
                                           kinds, X, out)
        return out

    def _init_params(self, sizes, acts, rng, dtype):
        params = np.zeros(n_params(sizes), dtype=dtype)
        if self._init_zero:
            return params
        for W, act in zip(layer_views(params, sizes), acts):
            fan_in, fan_out = W.shape[0] - 1, W.shape[1]
            # Glorot's uniform initialisation (scikit-learn's, with its factor 2 for sigmoids)
            bound = np.sqrt((2.0 if act == "sigmoid" else 6.0) / (fan_in + fan_out))
            W[...] = (rng.random(W.shape) * 2 - 1) * bound
        return params

    # ---- public API
    def fit(self, X, y):
        """Train from scratch on ``X`` (n_samples, n_features) and ``y``.

        Trains for up to ``max_epochs`` epochs; stops earlier when the cost
        changed by less than ``tol`` for ``n_iter_no_change`` consecutive
        epochs, or (``early_stopping=True``) when the score on the held-out
        ``validation_fraction`` did not improve by more than ``tol`` for
        ``n_iter_no_change`` epochs, in which case the best weights are kept.

        Returns
        -------
        self
        """
        return self._fit(X, y, partial=False, classes=None)

    def _partial_fit(self, X, y, classes=None):
        return self._fit(X, y, partial=True, classes=classes)

    def _fit(self, X, y, *, partial, classes):
        c = self._config()
        first = not partial or not self.__sklearn_is_fitted__()
        if partial and not first and classes is not None and \
                self._estimator_type == "classifier":
            given = np.unique(np.asarray(classes))
            if not np.array_equal(given, self.classes_):
                raise ValueError(f"classes={given.tolist()} differs from classes_="
                                 f"{self.classes_.tolist()} of the first call to partial_fit")
        Xv, names = self._validate_X(X, reset=first)
        dtype = Xv.dtype
        Y, labels = self._targets(y, Xv, reset=first, classes=classes, output=c["output"],
                                  dtype=dtype)
        rng = c["rng"] if first else self._rng
        if first:
            n_out = Y.shape[1]
            sizes = np.array([Xv.shape[1], *c["hidden"], n_out], dtype=np.int64)
            acts = c["activations"] + [c["output"]]
            params = self._init_params(sizes, acts, rng, dtype)
            state = np.zeros(2 * params.shape[0], dtype=params.dtype)
            steps = 0
        else:
            sizes, acts = self._sizes(), list(self.activations_)
            if acts[:-1] != c["activations"] or acts[-1] != c["output"] or \
                    tuple(sizes[1:-1]) != c["hidden"]:
                raise ValueError("partial_fit cannot change hidden_layer_sizes or the "
                                 "activations after the first call; call fit to start over")
            params = self.params_.copy()
            fresh = self._opt_state.shape != (2 * params.shape[0],)
            state = np.zeros(2 * params.shape[0], dtype=params.dtype) if fresh \
                else self._opt_state
            steps = 0 if fresh else self._opt_t
        kinds = np.array([ACTIVATION_CODES[a] for a in acts], dtype=np.int64)
        optimizer = c["optimizer"]
        batch_size = c["batch_size"]
        if batch_size is None and optimizer != "gd":
            batch_size = _DEFAULT_BATCH

        # validation split (fit with early stopping only)
        X_tr, Y_tr, lab_tr = Xv, Y, labels
        X_val = Y_val = lab_val = None
        if c["early_stopping"] and not partial:
            tr, val = self._split(Xv.shape[0], labels, c["validation_fraction"], rng)
            X_tr, Y_tr = np.ascontiguousarray(Xv[tr]), np.ascontiguousarray(Y[tr])
            X_val, Y_val = np.ascontiguousarray(Xv[val]), np.ascontiguousarray(Y[val])
            if labels is not None:
                lab_tr, lab_val = labels[tr], labels[val]

        lr = c["lr"]
        if lr == "auto":
            lr = _auto_lr(X_tr, c["loss"], c["output"], optimizer, batch_size, c["momentum"],
                          c["penalty"], c["lam"])
        trainer = EpochTrainer(params, sizes, kinds, loss=c["loss"], optimizer=optimizer,
                               lr=lr, batch_size=batch_size, momentum=c["momentum"],
                               rho=c["rho"], eps=c["eps"], penalty=c["penalty"], lam=c["lam"],
                               shuffle=c["shuffle"], rng=rng, state=state, t=steps)
        hist = History(J=[], seconds=[]) if first else self.history_
        track = c["track_accuracy"] and labels is not None
        if first:
            if track:
                hist["train_acc"] = []
            if X_val is not None:
                hist["val_J"] = []
                if labels is not None:
                    hist["val_acc"] = []
        lcode = LOSS_CODES[c["loss"]]
        K = _backend.kernels()
        epochs = 1 if partial else c["max_epochs"]
        clock = [time.perf_counter()]
        best = {"score": -np.inf, "params": None, "epoch": 0, "calm": 0}
        m = X_tr.shape[0]

        def labels_of(out):
            return (out[:, 0] >= 0.5).astype(np.int64) if out.shape[1] == 1 \
                else np.argmax(out, axis=1)

        with Progress(total=epochs, verbose=c["verbose"], desc=type(self).__name__) as bar:
            def on_epoch(epoch, J):
                hist["J"].append(J)
                acc = None
                stop = False
                if track:
                    out = np.empty((m, int(sizes[-1])), dtype=dtype)
                    K.forward_network(params, sizes, kinds, X_tr, out)
                    acc = 100.0 * float(np.mean(labels_of(out) == lab_tr))
                    hist["train_acc"].append(acc)
                if X_val is not None:
                    out = np.empty((X_val.shape[0], int(sizes[-1])), dtype=dtype)
                    K.forward_network(params, sizes, kinds, X_val, out)
                    vJ = K.loss(lcode, out, Y_val) / X_val.shape[0]
                    hist["val_J"].append(float(vJ))
                    if lab_val is not None:
                        acc = 100.0 * float(np.mean(labels_of(out) == lab_val))
                        hist["val_acc"].append(acc)
                        score = acc / 100.0
                    else:
                        score = -float(vJ)
                    if score > best["score"] + c["tol"]:
                        best.update(score=score, params=params.copy(), epoch=epoch, calm=0)
                    else:
                        best["calm"] += 1
                        stop = best["calm"] >= c["n_iter_no_change"]
                now = time.perf_counter()
                hist["seconds"].append(now - clock[0])
                clock[0] = now
                bar.update(loss=J, acc=acc, samples=m)
                return stop

            first_epoch = len(hist["J"]) + 1
            n, converged = trainer.run(
                X_tr, Y_tr, epochs, tol=None if (X_val is not None or partial) else c["tol"],
                n_iter_no_change=c["n_iter_no_change"], callback=on_epoch,
                first_epoch=first_epoch)

        stopped_early = X_val is not None and n < epochs
        if X_val is not None and best["params"] is not None:
            params[...] = best["params"]
        if not partial and not converged and not stopped_early:
            warnings.warn(
                f"{type(self).__name__}: max_epochs={epochs} reached before the cost settled "
                f"(|dJ| < tol={c['tol']:g} for {c['n_iter_no_change']} epoch(s)); increase "
                f"max_epochs, or tol, or adjust lr",
                _warning_class("ConvergenceWarning", _ConvergenceWarning), stacklevel=3)

        # commit the fitted state only now (a failed fit leaves no half-fitted estimator)
        if first:
            self._set_input_attributes(Xv, names)
            self.layer_sizes_ = [int(s) for s in sizes]
            self.activations_ = acts
            self.loss_function_ = c["loss"]
            self.n_outputs_ = int(sizes[-1])
            self._y_2d = getattr(self, "_new_y_2d", False)
            if self._estimator_type == "classifier":
                self.classes_ = self._new_classes
            self.n_iter_ = 0
            self.t_ = 0
        self.params_ = params
        self.lr_ = float(lr)
        self._opt_state = trainer.state
        self._opt_t = trainer.t
        self._rng = rng
        self.n_iter_ += n
        self.t_ += n * m
        hist["epochs"] = len(hist["J"])
        hist["converged"] = bool(converged)
        hist["stopped_early"] = bool(stopped_early)
        if X_val is not None:
            hist["best_epoch"] = best["epoch"]
            self.best_validation_score_ = best["score"]
        self.history_ = hist
        self.loss_ = hist["J"][-1]
        self.__dict__.pop("_new_classes", None)
        self.__dict__.pop("_new_y_2d", None)
        return self

    @staticmethod
    def _split(m, labels, fraction, rng):
        """Training and validation indices; stratified by class for classifiers."""
        if labels is None:
            n_val = int(round(fraction * m))
            if n_val < 1 or n_val > m - 1:
                raise ValueError(f"validation_fraction={fraction} of {m} samples leaves "
                                 f"{n_val} for validation; expected at least one sample in the "
                                 f"validation and in the training part")
            perm = rng.permutation(m)
            return np.sort(perm[n_val:]), np.sort(perm[:n_val])
        val = []
        for k in np.unique(labels):
            idx = np.flatnonzero(labels == k)
            take = min(int(round(fraction * idx.shape[0])), idx.shape[0] - 1)
            if take > 0:
                val.append(rng.permutation(idx)[:take])
        if not val:
            raise ValueError(f"validation_fraction={fraction} of {m} samples leaves no "
                             f"validation sample; use more data or a larger validation_fraction "
                             f"(or early_stopping=False)")
        val = np.sort(np.concatenate(val))
        mask = np.ones(m, dtype=bool)
        mask[val] = False
        return np.flatnonzero(mask), val

    # ---- derived views of the fitted weights
    @property
    def coefs_(self):
        """Weight matrices ``(n_in, n_out)`` of each layer (scikit-learn's layout; views)."""
        self._require_fitted_attribute("coefs_")
        return [W[1:] for W in layer_views(self.params_, self._sizes())]

    @property
    def intercepts_(self):
        """Bias vectors ``(n_out,)`` of each layer (views)."""
        self._require_fitted_attribute("intercepts_")
        return [W[0] for W in layer_views(self.params_, self._sizes())]

    @property
    def thetas_(self):
        """The course's weight matrices ``Theta_l`` of shape ``(L_out, L_in + 1)`` (copies)."""
        self._require_fitted_attribute("thetas_")
        return unpack(self.params_, self._sizes())

    @property
    def model_(self):
        """The course's model list ``[Theta1, Sigmoid, Theta2, Sigmoid, ...]`` of the fitted
        network, for :func:`fastnet.predict`, :func:`fastnet.backprop`, :func:`fastnet.save`."""
        self._require_fitted_attribute("model_")
        from fastnet.activations import ACTIVATIONS
        out = []
        for theta, act in zip(self.thetas_, self.activations_):
            out += [theta, ACTIVATIONS[act]]
        return out

    def _require_fitted_attribute(self, name):
        if "params_" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} before fit")

    # ---- save/load support (fastnet.io)
    def _fitted_state(self):
        meta = {"layer_sizes": self.layer_sizes_, "activations": self.activations_,
                "loss_function": self.loss_function_, "n_features_in": self.n_features_in_,
                "n_outputs": self.n_outputs_, "n_iter": self.n_iter_, "t": self.t_,
                "opt_steps": int(getattr(self, "_opt_t", 0)),
                "y_2d": bool(getattr(self, "_y_2d", False)),
                "history": {k: v for k, v in self.history_.items()}}
        arrays = {"params": self.params_, "opt_state": self._opt_state}
        return meta, arrays

    def _restore_state(self, meta, arrays):
        self.params_ = np.ascontiguousarray(arrays["params"])
        self._opt_state = np.ascontiguousarray(arrays.get(
            "opt_state", np.zeros(2 * self.params_.shape[0], self.params_.dtype)))
        self._opt_t = int(meta.get("opt_steps", 0))
        self.layer_sizes_ = [int(s) for s in meta["layer_sizes"]]
        self.activations_ = list(meta["activations"])
        self.loss_function_ = meta["loss_function"]
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_outputs_ = int(meta["n_outputs"])
        self.n_iter_ = int(meta["n_iter"])
        self.t_ = int(meta.get("t", 0))
        self._y_2d = bool(meta.get("y_2d", False))
        self.history_ = History(meta.get("history", {}))
        self.loss_ = self.history_["J"][-1] if self.history_.get("J") else float("nan")
        self._rng = check_rng(None)


class _NetworkClassifier(_ClassifierMixin, _Network):
    _output_choices = ("sigmoid", "softmax")
    _loss_choices = ("cross_entropy", "log_loss", "quadratic")

    def _targets(self, y, X, *, reset, classes, output, dtype):
        codes = self._encode(y, X.shape[0], reset=reset, classes=classes)
        K = (self._new_classes if reset else self.classes_).shape[0]
        n_out = 1 if (K == 2 and output == "sigmoid") else K
        if not reset and n_out != self.n_outputs_:
            raise ValueError("partial_fit cannot change output_activation after the first call")
        if n_out == 1:
            Y = codes.astype(dtype).reshape(-1, 1)
        else:
            Y = np.zeros((codes.shape[0], n_out), dtype=dtype)
            Y[np.arange(codes.shape[0]), codes] = 1
        return Y, codes

    def partial_fit(self, X, y, classes=None):
        """One epoch on ``(X, y)``, continuing from the current weights.

        Parameters
        ----------
        classes : array-like, required on the first call
            Every label that will ever appear (as scikit-learn asks).
        """
        if not self.__sklearn_is_fitted__() and classes is None:
            raise ValueError(f"classes must be passed on the first call to "
                             f"{type(self).__name__}.partial_fit (every label that can occur)")
        return self._partial_fit(X, y, classes=classes)

    def _proba(self, X):
        self._check_fitted()
        Xv, _ = self._validate_X(X, reset=False)
        out = self._forward(Xv)
        if out.shape[1] == 1:
            p = out[:, 0]
            return np.column_stack((1 - p, p)).astype(out.dtype, copy=False)
        if self.activations_[-1] == "softmax":
            return out
        total = out.sum(axis=1, keepdims=True)
        K = out.shape[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            proba = np.where(total > 0, out / np.where(total > 0, total, 1), out.dtype.type(1 / K))
        return proba.astype(out.dtype, copy=False)

    def predict_proba(self, X):
        """Class probabilities, shape ``(n_samples, n_classes)``, columns in ``classes_`` order.

        A single sigmoid output gives ``[1 - a, a]``; several sigmoid
        outputs (the course's network) are normalised to sum to one; a
        softmax output is returned as it is.
        """
        return self._proba(X)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self._proba(X))

    def predict(self, X):
        """Predicted class labels (from ``classes_``): the most probable class."""
        self._check_fitted()
        Xv, _ = self._validate_X(X, reset=False)
        out = self._forward(Xv)
        if out.shape[1] == 1:
            idx = (out[:, 0] >= 0.5).astype(np.int64)
        else:
            idx = np.argmax(out, axis=1)
        return self.classes_[idx]

    def _fitted_state(self):
        meta, arrays = super()._fitted_state()
        arrays["classes"] = self.classes_
        return meta, arrays

    def _restore_state(self, meta, arrays):
        super()._restore_state(meta, arrays)
        self.classes_ = arrays["classes"]


class _NetworkRegressor(_RegressorMixin, _Network):
    _output_choices = ("linear", "sigmoid", "relu", "tanh")
    _loss_choices = ("quadratic", "cross_entropy")

    def _targets(self, y, X, *, reset, classes, output, dtype):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             f"is None")
        try:
            arr = np.asarray(y)
        except Exception as exc:
            raise ValueError(f"y could not be converted to an array: {exc}") from None
        arr = _as_numeric(arr, "y")
        if arr.ndim not in (1, 2):
            raise ValueError(f"y should be a 1d array (or 2-D for several outputs), got shape "
                             f"{arr.shape}")
        if arr.shape[0] != X.shape[0]:
            raise ValueError(f"y has {arr.shape[0]} targets but X has {X.shape[0]} samples; "
                             f"expected one target per row of X")
        Y = np.ascontiguousarray(arr.reshape(arr.shape[0], -1), dtype=dtype)
        if Y.shape[1] == 0:
            raise ValueError("y has no target column")
        if not np.isfinite(Y).all():
            raise ValueError(_nonfinite_message(Y, "y"))
        if reset:
            self._new_y_2d = arr.ndim == 2
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, but {type(self).__name__} was "
                             f"fitted with {self.n_outputs_}")
        return Y, None

    def partial_fit(self, X, y):
        """One epoch on ``(X, y)``, continuing from the current weights."""
        return self._partial_fit(X, y)

    def predict(self, X):
        """Predicted targets: ``(n_samples,)``, or ``(n_samples, n_outputs)`` when fitted on 2-D y."""
        self._check_fitted()
        Xv, _ = self._validate_X(X, reset=False)
        out = self._forward(Xv)
        return out if self._y_2d else out[:, 0] if out.shape[1] == 1 else out


_COMMON_DOC = r"""
    optimizer : {'gd', 'sgd', 'momentum', 'rmsprop'}, default=%(optimizer)r
        ``'gd'``: full-batch gradient descent; ``'sgd'``: (mini-)batches of
        ``batch_size`` (1 is the course's online learning); ``'momentum'``:
        :math:`v \leftarrow \mu v - \eta\nabla J,\ w \leftarrow w + v`;
        ``'rmsprop'``: :math:`s \leftarrow \rho s + (1-\rho)(\nabla J)^2,\
        w \leftarrow w - \eta\nabla J/(\sqrt{s}+\epsilon)`.
    lr : float > 0%(lr_auto)s, default=%(lr)r
        Learning rate :math:`\eta`.%(lr_auto_doc)s
    batch_size : int >= 1 or None, default=None
        Samples per update; None means the whole data for ``'gd'`` and 32
        for the other optimisers.
    momentum : float in [0, 1), default=0.9
        :math:`\mu` of ``'momentum'``.
    rho, eps : float, default=0.9, 1e-8
        RMSprop's decay and :math:`\epsilon`.
    penalty : {None, 'l2', 'l1'}, default=None
        ``'l2'`` adds :math:`\frac{\lambda}{2}\sum w^2`, ``'l1'`` adds
        :math:`\lambda\sum|w|` to the cost (biases are never penalised).
    lam : float >= 0, default=%(lam)r
        :math:`\lambda`, the penalty's strength (used when ``penalty`` is set).
    max_epochs : int >= 1, default=%(max_epochs)r
        Most passes over the data.
    tol : float >= 0, default=%(tol)r
        Training stops when the cost changes by less than ``tol`` for
        ``n_iter_no_change`` consecutive epochs (with ``early_stopping``:
        when the validation score does not improve by more than ``tol``).
    n_iter_no_change : int >= 1, default=%(n_iter_no_change)r
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for
        classifiers), monitor the validation score (accuracy for
        classifiers, minus the loss for regressors) and keep the best
        weights.
    validation_fraction : float in (0, 1), default=0.1
    shuffle : bool, default=True
        Shuffle the samples each epoch (mini-batch and online learning).
    random_state : int, numpy Generator or None, default=None
        Seeds the initial weights, the validation split and the shuffles.
    verbose : int >= 0, default=1
        1: a progress bar (epoch, loss, accuracy, samples/s) when training
        lasts more than about two seconds; 2: from the start; 0: silent.
"""

_ATTRS_DOC = r"""
    Attributes
    ----------
    params_ : ndarray
        All weights in fastnet's flat layout (see :mod:`fastnet._params`).
    coefs_, intercepts_ : lists of ndarray
        Per-layer weights ``(n_in, n_out)`` and biases (views of ``params_``).
    thetas_, model_ :
        The course's ``Theta`` matrices and model list ``[Theta1, Sigmoid, ...]``.
    layer_sizes_ : list of int
    activations_ : list of str
        Activation of each layer, output last.
    loss_function_ : str
    n_features_in_, n_outputs_, n_iter_ : int
    history_ : fastnet.History
        ``'J'`` (cost per epoch), ``'train_acc'`` (classifiers, percent),
        ``'val_J'`` and ``'val_acc'`` (with early stopping), ``'seconds'``.
    loss_ : float
        The last epoch's cost.
"""


_LR_AUTO_DOC = r"""  ``'auto'``: :math:`1/L` with :math:`L` a bound on
        the cost's curvature (the largest eigenvalue of :math:`\tilde X^T\tilde X/m`
        for full batches), which converges whatever the scale of the
        features; the value used is ``lr_``."""


def _doc(cls, summary, params_doc, defaults, extra_attrs=""):
    auto = defaults.get("lr") == "auto"
    defaults = dict(defaults, lr_auto=" or 'auto'" if auto else "",
                    lr_auto_doc=_LR_AUTO_DOC if auto else "")
    cls.__doc__ = summary + "\n    Parameters\n    ----------\n" + params_doc + \
        (_COMMON_DOC.lstrip("\n") % defaults) + _ATTRS_DOC + extra_attrs
    return cls
