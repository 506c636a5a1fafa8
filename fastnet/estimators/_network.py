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

import time
import warnings

import numpy as np

from fastnet import _backend
from fastnet._args import check_outputs, labels_from_outputs
from fastnet._backend import ACTIVATION_CODES
from fastnet._params import layer_views, n_params, unpack
from fastnet._progress import Progress
from fastnet._validation import check_rng
from fastnet.estimators._sklearn_split import split as sklearn_split
from fastnet._history import record_epochs
from fastnet.training import (AccuracyTracker, EarlyStopping, EpochTrainer, History, InvScaling,
                              LossPlateau)
from fastnet.estimators._base import (
    _DEFAULT_BATCH, _ClassifierMixin, _Estimator, _RegressorMixin, _as_numeric, _nonfinite_message,
    _p_choice, _param_error, warning_class)
from fastnet.estimators._config import OUT_NAMES, read_config


class _Run:
    """What the steps of one ``fit`` / ``partial_fit`` pass to each other."""

    def __init__(self, c, *, partial, first):
        self.c, self.partial, self.first = c, partial, first


class _NoIntercept:
    """Callback of :class:`EpochTrainer`: keeps the biases (and their optimiser state) at zero.

    Exact for full batches (one update per epoch), the only case it is used in:
    the biases are zero whenever a gradient is taken.
    """

    def __init__(self, trainer):
        n = trainer.params.shape[0]
        self.params, self.state = trainer.params, trainer.state
        self.rows = [W[0] for W in layer_views(trainer.params, trainer.sizes)]
        self.state_rows = [S[0] for half in (trainer.state[:n], trainer.state[n:])
                           for S in layer_views(half, trainer.sizes)]

    def __call__(self, epoch, J):
        for row in self.rows + self.state_rows:
            row[...] = 0
        return False


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

    _output_choices = ("linear", "sigmoid", "relu", "tanh")
    _loss_choices = ("quadratic", "cross_entropy")
    _loss_aliases = {"squared_error": "quadratic", "log_loss": "log_loss",
                     "binary_crossentropy": "cross_entropy"}
    _init_zero = False       # linear models start from zeros, as the course does
    _lr_auto = False         # linear models accept lr='auto'
    _max_iter_default = 200  # the default of max_iter (so that max_epochs may replace it)
    _sklearn_draws = False   # the MLPs: scikit-learn's random draws (check_random_state)
    _stop_rule = "plateau"   # scikit-learn's rule; the linear models keep the course's |dJ| < tol

    # ---- hyper-parameters
    def _config(self):
        return read_config(self)

    def _output_activation(self):
        return _p_choice(self, "output_activation", self._output_choices)

    def _loss_name(self, output):
        loss = getattr(self, "loss", None)
        if loss is None:
            return {"softmax": "log_loss", "sigmoid": "cross_entropy"}.get(output, "quadratic")
        if isinstance(loss, str) and loss.strip().lower() in self._loss_aliases:
            key = self._loss_aliases[loss.strip().lower()]
            if key not in self._loss_choices:
                key = _p_choice(self, "loss", self._loss_choices)
        else:
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
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: raised just below
            _backend.kernels().forward_network(self.params_ if params is None else params,
                                               sizes, kinds, X, out)
        return check_outputs(out, f"this {type(self).__name__}")

    def _init_params(self, sizes, acts, rng, dtype):
        params = np.zeros(n_params(sizes), dtype=dtype)
        if self._init_zero:
            return params
        if isinstance(rng, np.random.RandomState):
            return self._sklearn_init(params, sizes, acts, rng)
        for W, act in zip(layer_views(params, sizes), acts):
            fan_in, fan_out = W.shape[0] - 1, W.shape[1]
            # Glorot's uniform initialisation (scikit-learn's, with its factor 2 for sigmoids)
            bound = np.sqrt((2.0 if act == "sigmoid" else 6.0) / (fan_in + fan_out))
            W[...] = (rng.random(W.shape) * 2 - 1) * bound
        return params

    def _sklearn_init(self, params, sizes, acts, rng):
        r"""scikit-learn's draws: for each layer, ``uniform(-b, b)`` of the weights ``(n_in,
        n_out)`` and then of the biases, in float64, with :math:`b = \sqrt{6/(n_{in} +
        n_{out})}`, or :math:`\sqrt{2/\ldots}` in every layer when the hidden activation
        is 'logistic' (one activation name; a list of them: before each sigmoid layer)."""
        name = getattr(self, "activation", None)
        for W, act in zip(layer_views(params, sizes), acts):
            fan_in, fan_out = W.shape[0] - 1, W.shape[1]
            sigmoid = name in ("logistic", "sigmoid") if isinstance(name, str) else \
                act == "sigmoid"
            bound = np.sqrt((2.0 if sigmoid else 6.0) / (fan_in + fan_out))
            W[1:] = rng.uniform(-bound, bound, (fan_in, fan_out))
            W[0] = rng.uniform(-bound, bound, fan_out)
        return params

    # ---- public API
    def fit(self, X, y):
        """Train on ``X`` (n_samples, n_features) and ``y``: from scratch, or from the current
        weights with ``warm_start=True``.

        Trains for up to ``max_iter`` epochs.  The MLPs stop, as scikit-learn's
        do, when the cost has not improved by more than ``tol`` for
        ``n_iter_no_change`` epochs in a row (with ``early_stopping``: the
        validation score, and the best weights are kept); the linear models
        stop when the cost changed by less than ``tol`` for
        ``n_iter_no_change`` epochs (the course's rule).

        Returns
        -------
        self
        """
        return self._fit(X, y, partial=False, classes=None)

    def _partial_fit(self, X, y, classes=None):
        return self._fit(X, y, partial=True, classes=classes)

    # ---- fit, in named steps
    def _fit(self, X, y, *, partial, classes):
        c = self._config()
        warm = partial or c["warm_start"]
        run = _Run(c, partial=partial, first=not warm or not self.__sklearn_is_fitted__())
        self._check_partial_classes(run, classes)
        self._prepare_data(run, X, y, classes)
        self._start_network(run)
        self._split_validation(run)
        self._make_trainer(run)
        self._train(run)
        self._warn_if_unconverged(run)
        self._commit(run)
        return self

    def _check_partial_classes(self, run, classes):
        if run.partial and not run.first and classes is not None and \
                self._estimator_type == "classifier":
            given = np.unique(np.asarray(classes))
            if not np.array_equal(given, self.classes_):
                raise ValueError(f"classes={given.tolist()} differs from classes_="
                                 f"{self.classes_.tolist()} of the first call to partial_fit")

    def _prepare_data(self, run, X, y, classes):
        """Checked ``X``, the targets ``Y`` (one-hot for classifiers), the integer labels, and
        the output activation and loss they call for."""
        run.X, run.names = self._validate_X(X, reset=run.first)
        run.dtype = run.X.dtype
        output = run.c["output"] if run.first else self.activations_[-1]
        run.Y, run.labels, run.output = self._targets(y, run.X, reset=run.first, classes=classes,
                                                      output=output, dtype=run.dtype)
        run.loss = self._loss_name(run.output) if run.first else self.loss_function_
        # scikit-learn's estimators draw from check_random_state(random_state) afresh on each
        # call (an int seed starts its stream again); the others carry their Generator on
        run.rng = run.c["rng"] if run.first or self._sklearn_draws else self._rng

    def _start_network(self, run):
        """Layer sizes, activations and the starting weights and optimiser state."""
        c = run.c
        if run.first:
            run.sizes = np.array([run.X.shape[1], *c["hidden"], run.Y.shape[1]], dtype=np.int64)
            run.acts = c["activations"] + [run.output]
            run.params = self._init_params(run.sizes, run.acts, run.rng, run.dtype)
            run.state = np.zeros(2 * run.params.shape[0], dtype=run.params.dtype)
            run.steps, run.guard, run.t0 = 0, None, 0
        else:
            run.sizes, run.acts = self._sizes(), list(self.activations_)
            if run.acts[:-1] != c["activations"] or tuple(run.sizes[1:-1]) != c["hidden"]:
                raise ValueError("partial_fit and warm_start cannot change hidden_layer_sizes "
                                 "or the activations of a fitted network; call fit with "
                                 "warm_start=False to start over")
            run.params = self.params_.copy()
            # scikit-learn's: a warm-started fit starts a fresh optimiser (Adam's moments,
            # the momentum) from the fitted weights; partial_fit carries the optimiser on
            fresh = not run.partial or self._opt_state.shape != (2 * run.params.shape[0],) or \
                getattr(self, "_opt_name", None) != c["optimizer"]
            run.state = np.zeros(2 * run.params.shape[0], dtype=run.params.dtype) if fresh \
                else self._opt_state.copy()
            run.steps = 0 if fresh else self._opt_t
            run.guard = getattr(self, "_guard", None)
            run.t0 = self.t_
        run.kinds = np.array([ACTIVATION_CODES[a] for a in run.acts], dtype=np.int64)

    def _split_validation(self, run):
        """The training part and (``fit`` with early stopping) the held-out validation part."""
        run.X_tr, run.Y_tr, run.lab_tr = run.X, run.Y, run.labels
        run.X_val = run.Y_val = run.lab_val = None
        if run.c["early_stopping"] and not run.partial:
            if isinstance(run.rng, np.random.RandomState):  # scikit-learn's draws
                # scikit-learn stratifies only a network with one output (two classes)
                strata = run.labels if run.labels is not None and run.Y.shape[1] == 1 \
                    else None
                tr, val = sklearn_split(run.X.shape[0], strata, run.c["validation_fraction"],
                                        run.rng)
            else:
                tr, val = self._split(run.X.shape[0], run.labels,
                                      run.c["validation_fraction"], run.rng)
            run.X_tr, run.Y_tr = np.ascontiguousarray(run.X[tr]), np.ascontiguousarray(run.Y[tr])
            run.X_val = np.ascontiguousarray(run.X[val])
            run.Y_val = np.ascontiguousarray(run.Y[val])
            if run.labels is not None:
                run.lab_tr, run.lab_val = run.labels[tr], run.labels[val]

    def _make_trainer(self, run):
        """Batch size, penalty strength and learning rate (``'auto'`` resolved); the trainer."""
        c = run.c
        m = run.X_tr.shape[0]
        bs = c["batch_size"]
        if c["optimizer"] == "gd":
            bs = m
        elif bs == "auto":
            bs = min(200, m)
        elif bs is None:
            bs = _DEFAULT_BATCH
        run.batch_size = min(int(bs), m)
        lam = c["lam"] if c["penalty"] is not None else 0.0
        if c["lam_divisor"] == "batch":
            lam /= run.batch_size
        elif c["lam_divisor"] == "samples":
            lam /= m
        run.lam = lam
        if not c["fit_intercept"] and run.batch_size < m:
            raise ValueError(f"fit_intercept=False needs full batches (optimizer='gd'), got "
                             f"batches of {run.batch_size} of {m} samples")
        run.lr = c["lr"]
        if run.lr == "auto":
            run.lr = _auto_lr(run.X_tr, run.loss, run.output, c["optimizer"], run.batch_size,
                              c["mu"], c["penalty"], lam)
        run.trainer = EpochTrainer(
            run.params, run.sizes, run.kinds, loss=run.loss, optimizer=c["optimizer"],
            lr=run.lr, batch_size=run.batch_size, momentum=c["mu"], rho=c["rho"], eps=c["eps"],
            penalty=c["penalty"], lam=lam, shuffle=c["shuffle"], rng=run.rng, state=run.state,
            t=run.steps, guard=run.guard)
        if not c["fit_intercept"]:
            _NoIntercept(run.trainer)(0, 0.0)

    def _train(self, run):
        """The epochs, with their callbacks: accuracy, schedule, stopping rule, history, progress."""
        c = run.c
        trainer = run.trainer
        hist = History(J=[], seconds=[]) if run.first else self.history_
        m = run.X_tr.shape[0]
        adaptive = c["schedule"] == "adaptive" and c["optimizer"] != "adam"
        callbacks = []
        if not c["fit_intercept"]:
            callbacks.append(_NoIntercept(trainer))
        if c["track_accuracy"] and run.labels is not None:
            callbacks.append(AccuracyTracker(trainer, run.X_tr, run.lab_tr, hist))
        if c["schedule"] == "invscaling" and c["optimizer"] != "adam":
            callbacks.append(InvScaling(trainer, run.lr, c["power_t"], m, run.t0))
        run.stopper = run.plateau = None
        tol = None
        if run.X_val is not None:
            run.stopper = EarlyStopping(trainer, run.X_val, run.Y_val, run.lab_val, tol=c["tol"],
                                        n_iter_no_change=c["n_iter_no_change"], history=hist,
                                        adaptive=adaptive)
            callbacks.append(run.stopper)
        elif not run.partial and c["stop_rule"] == "plateau":
            run.plateau = LossPlateau(trainer, c["tol"], c["n_iter_no_change"], adaptive)
        elif not run.partial:
            tol = c["tol"]
        run.epochs = 1 if run.partial else c["max_epochs"]
        acc_key = "val_acc" if run.stopper is not None and run.lab_val is not None else \
            "train_acc" if c["track_accuracy"] and run.labels is not None else None
        with Progress(total=run.epochs, verbose=c["verbose"], desc=type(self).__name__) as bar:
            record = _Record(hist, bar, acc_key, m)
            callbacks.append(record)
            if run.plateau is not None:  # last: it decides on the epoch that was just recorded
                callbacks.append(run.plateau)
            run.n, run.converged = trainer.run(
                run.X_tr, run.Y_tr, run.epochs, tol=tol, n_iter_no_change=c["n_iter_no_change"],
                callbacks=callbacks, first_epoch=len(hist["J"]) + 1)
        if run.plateau is not None:
            run.converged = run.plateau.converged
        run.history = hist
        run.stopped_early = run.stopper is not None and run.n < run.epochs
        if run.stopper is not None:
            run.stopper.restore_best()

    def _warn_if_unconverged(self, run):
        c = run.c
        if not run.partial and not run.converged and not run.stopped_early:
            warnings.warn(
                f"{type(self).__name__}: the maximum number of epochs (max_iter={run.epochs}) "
                f"was reached and the optimization hasn't converged yet (the cost did not settle "
                f"within tol={c['tol']:g} for {c['n_iter_no_change']} epoch(s)); increase "
                f"max_iter, or tol, or adjust the learning rate",
                warning_class("ConvergenceWarning"), stacklevel=4)

    def _commit(self, run):
        """Store the fitted state, only now: a failed fit leaves the estimator as it was."""
        c = run.c
        if run.first:
            self._set_input_attributes(run.X, run.names)
            self.layer_sizes_ = [int(s) for s in run.sizes]
            self.activations_ = run.acts
            self.loss_function_ = run.loss
            self.n_outputs_ = int(run.sizes[-1])
            self._y_2d = getattr(self, "_new_y_2d", False)
            if self._estimator_type == "classifier":
                self.classes_ = self._new_classes
            self.n_iter_ = 0
            self.t_ = 0
        trainer, hist = run.trainer, run.history
        self.params_ = run.params
        self.lr_ = float(run.lr)
        self._opt_state = trainer.state
        self._opt_t = trainer.t
        self._opt_name = c["optimizer"]
        self._guard = trainer.guard
        self._rng = run.rng
        self.n_iter_ = run.n  # this call's epochs, as scikit-learn's (1.3 on); t_ counts them all
        self.t_ += run.n * run.X_tr.shape[0]
        hist["epochs"] = len(hist["J"])
        hist["converged"] = bool(run.converged)
        hist["stopped_early"] = bool(run.stopped_early)
        if run.stopper is not None:
            hist["best_epoch"] = run.stopper.best_epoch
            self.best_validation_score_ = run.stopper.best_score
        else:
            self.__dict__.pop("best_validation_score_", None)
        self._early_stopping = run.stopper is not None
        self.history_ = hist
        self.loss_ = hist["J"][-1]
        self.__dict__.pop("_new_classes", None)
        self.__dict__.pop("_new_y_2d", None)

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
    def loss_curve_(self):
        """The cost of each epoch (scikit-learn's name for ``history_['J']``)."""
        self._require_fitted_attribute("loss_curve_")
        return list(self.history_["J"])

    @property
    def best_loss_(self):
        """The lowest cost of an epoch (None with early stopping, as scikit-learn)."""
        self._require_fitted_attribute("best_loss_")
        if getattr(self, "_early_stopping", False) or not self.history_["J"]:
            return None
        return float(min(self.history_["J"]))

    @property
    def validation_scores_(self):
        """The validation score of each epoch with early stopping (accuracy as a fraction for
        classifiers, :math:`R^2` for regressors), else None."""
        self._require_fitted_attribute("validation_scores_")
        scores = self.history_.get("val_score")
        return list(scores) if getattr(self, "_early_stopping", False) and scores else None

    @property
    def out_activation_(self):
        """scikit-learn's name of the output activation (``'logistic'``, ``'softmax'``, ...)."""
        self._require_fitted_attribute("out_activation_")
        return OUT_NAMES[self.activations_[-1]]

    @property
    def n_layers_(self):
        """Layers including the input and the output (scikit-learn's count)."""
        self._require_fitted_attribute("n_layers_")
        return len(self.layer_sizes_)

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
                "optimizer": getattr(self, "_opt_name", None),
                "early_stopping": bool(getattr(self, "_early_stopping", False)),
                "y_2d": bool(getattr(self, "_y_2d", False)),
                "history": {k: v for k, v in self.history_.items()}}
        arrays = {"params": self.params_, "opt_state": self._opt_state}
        return meta, arrays

    def _restore_state(self, meta, arrays):
        self.params_ = np.ascontiguousarray(arrays["params"])
        self._opt_state = np.ascontiguousarray(arrays.get(
            "opt_state", np.zeros(2 * self.params_.shape[0], self.params_.dtype)))
        self._opt_t = int(meta.get("opt_steps", 0))
        self._opt_name = meta.get("optimizer")
        self._early_stopping = bool(meta.get("early_stopping", False))
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

    def _output_activation(self):
        return _p_choice(self, "output_activation", self._output_choices, allow_none=True)

    def _targets(self, y, X, *, reset, classes, output, dtype):
        codes = self._encode(y, X.shape[0], reset=reset, classes=classes)
        K = (self._new_classes if reset else self.classes_).shape[0]
        if output is None:  # scikit-learn's choice: one logistic unit for two classes, else softmax
            output = "sigmoid" if K == 2 else "softmax"
        n_out = 1 if (K == 2 and output == "sigmoid") else K
        if not reset and n_out != self.n_outputs_:
            raise ValueError("partial_fit cannot change output_activation after the first call")
        if n_out == 1:
            Y = codes.astype(dtype).reshape(-1, 1)
        else:
            Y = np.zeros((codes.shape[0], n_out), dtype=dtype)
            Y[np.arange(codes.shape[0]), codes] = 1
        return Y, codes, output

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
        # a network trained in float32 (MLPClassifier's default) answers float64 input with
        # float64 probabilities that sum to one in float64, as scikit-learn's do
        wide = out.dtype == np.float32 and getattr(X, "dtype", None) != np.float32
        if wide:
            out = out.astype(np.float64)
        if out.shape[1] == 1:
            p = out[:, 0]
            return np.column_stack((1 - p, p)).astype(out.dtype, copy=False)
        if self.activations_[-1] == "softmax":
            return out / out.sum(axis=1, keepdims=True) if wide else out
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
        return self.classes_[labels_from_outputs(self._forward(Xv))]

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
        return Y, None, output

    def partial_fit(self, X, y):
        """One epoch on ``(X, y)``, continuing from the current weights."""
        return self._partial_fit(X, y)

    def predict(self, X):
        """Predicted targets: ``(n_samples,)``, or ``(n_samples, n_outputs)`` when fitted on 2-D y."""
        self._check_fitted()
        Xv, _ = self._validate_X(X, reset=False)
        out = self._forward(Xv)
        return out if self._y_2d else out[:, 0] if out.shape[1] == 1 else out


class _Record:
    """The estimators' per-epoch record: ``history_['J']`` and ``['seconds']``, and the
    progress bar.  With no bar to update (``verbose=0``) it is ``fused``: a compiled epoch
    loop may run the epochs and hand it their costs afterwards (:meth:`record_epochs`)."""

    def __init__(self, hist, bar, acc_key, samples):
        self.hist, self.bar, self.acc_key, self.samples = hist, bar, acc_key, samples
        self.fused = not bar.enabled
        self._clock = time.perf_counter()

    def start(self):
        self._clock = time.perf_counter()

    def __call__(self, epoch, J):
        hist = self.hist
        hist["J"].append(J)
        now = time.perf_counter()
        hist["seconds"].append(now - self._clock)
        self._clock = now
        if not self.fused:
            self.bar.update(loss=J, acc=hist[self.acc_key][-1] if self.acc_key else None,
                            samples=self.samples)
        return False

    def record_epochs(self, first_epoch, costs, seconds):
        record_epochs(self.hist, costs, seconds)
