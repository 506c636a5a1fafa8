r"""The machinery of the estimators built on :class:`fastnet.Sequential` (CNNs, autoencoders).

:class:`_SequentialEstimator` checks the training hyper-parameters, builds
the network (the subclass's ``_layers``), trains it with
:class:`fastnet.sequential.ProgramTrainer` -- one ``sequential_train_epoch``
kernel call per epoch -- under a progress bar, records ``history_`` and
saves/loads the fitted network (layer configs as JSON, parameters as arrays:
:mod:`fastnet.io`, no pickle).
"""
from __future__ import annotations

import numbers
import time

import numpy as np

from fastnet._history import History
from fastnet._progress import Progress
from fastnet.estimators._base import (_Estimator, _is_sparse, _as_numeric, _nonfinite_message,
                                      _p_bool, _p_choice, _p_int, _p_random_state, _p_real,
                                      _param_error)
from fastnet.sequential import Sequential, ProgramTrainer

__all__ = ["_SequentialEstimator"]

_OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")


class _SequentialEstimator(_Estimator):
    """Training, history and saving for an estimator whose model is a ``Sequential`` (``net_``)."""

    _track_default = False

    # ---- hyper-parameters shared by every Sequential estimator
    def _train_config(self):
        c = {"optimizer": _p_choice(self, "optimizer", _OPTIMIZERS),
             "lr": _p_real(self, "lr", lo=0, lo_open=True),
             "batch_size": _p_int(self, "batch_size", lo=1),
             "momentum": _p_real(self, "momentum", lo=0, hi=1, hi_open=True),
             "eps": _p_real(self, "eps", lo=0, lo_open=True),
             "lam": _p_real(self, "lam", lo=0),
             "max_epochs": _p_int(self, "max_epochs", lo=1),
             "tol": _p_real(self, "tol", lo=0, allow_none=True),
             "shuffle": _p_bool(self, "shuffle"),
             "verbose": _p_int(self, "verbose", lo=0),
             "rng": _p_random_state(self)}
        rho = _p_real(self, "rho", lo=0, hi=1, hi_open=True, allow_none=True)
        c["rho"] = (0.999 if c["optimizer"] == "adam" else 0.9) if rho is None else rho
        pen = _p_choice(self, "penalty", ("l1", "l2", "none"), allow_none=True)
        c["penalty"] = None if pen == "none" else pen
        return c

    def _dtype(self):
        return self.net_.dtype

    # ---- data
    def _array(self, X, name="X"):
        """``X`` as a finite float array (any rank), with the estimators' error messages."""
        est = type(self).__name__
        if X is None:
            raise ValueError(f"{est} expected an array {name}, got None")
        if _is_sparse(X):
            raise TypeError(f"{est} does not accept sparse input: convert {name} to a dense "
                            f"array first ({name}.toarray())")
        try:
            arr = np.asarray(X)
        except Exception as exc:
            raise ValueError(f"{name} could not be converted to an array: {exc}") from None
        arr = _as_numeric(arr, name)
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise ValueError(f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum "
                             f"of 1 is required by {est}.")
        if arr.size == 0:
            raise ValueError(f"{name} has no features (shape {arr.shape}); {est} needs at least one")
        if arr.dtype.kind in "biu":
            arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(_nonfinite_message(arr, name))
        return arr

    # ---- training
    def _train(self, net, Xk, Y, c, *, epochs, first, labels=None, track=False):
        """Run up to ``epochs`` epochs of ``net`` on the kernel-layout data; returns the History."""
        if first or getattr(self, "_opt_state", None) is None:
            state, steps = np.zeros(2 * net.params.shape[0], net.dtype), 0
        else:
            state, steps = self._opt_state, self._opt_t
        trainer = ProgramTrainer(net.params, net.program, loss=c["loss"],
                                 optimizer=c["optimizer"], lr=c["lr"],
                                 batch_size=c["batch_size"], momentum=c["momentum"],
                                 rho=c["rho"], eps=c["eps"], penalty=c["penalty"], lam=c["lam"],
                                 shuffle=c["shuffle"], rng=c["rng"], state=state, t=steps)
        hist = History(J=[], seconds=[]) if first else self.history_
        if first and track:
            hist["train_acc"] = []
        m = Xk.shape[0]
        clock = [time.perf_counter()]
        with Progress(total=epochs, verbose=c["verbose"], desc=type(self).__name__) as bar:
            def on_epoch(epoch, J):
                hist["J"].append(J)
                acc = None
                if track:
                    out = net._forward_kernel(Xk)
                    acc = 100.0 * float(np.mean(np.argmax(out, axis=1) == labels))
                    hist["train_acc"].append(acc)
                now = time.perf_counter()
                hist["seconds"].append(now - clock[0])
                clock[0] = now
                bar.update(loss=J, acc=acc, samples=m)
                return False

            try:
                n, converged = trainer.run(Xk, Y, epochs, tol=c["tol"], callback=on_epoch,
                                           first_epoch=len(hist["J"]) + 1)
            finally:
                self._opt_state, self._opt_t = trainer.state, trainer.t
        hist["epochs"] = len(hist["J"])
        hist["converged"] = bool(converged)
        return hist, n

    def _build(self, layers, input_shape, dtype, rng, what):
        """A built Sequential; a layer that cannot take its input is reported with ``what``."""
        net = Sequential(layers, rng=rng, dtype=dtype)
        try:
            net.build(input_shape)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: {what}: {exc}") from None
        return net

    # ---- saving (fastnet.io)
    def _fitted_state(self):
        meta = {"net": self.net_.get_config(), "n_features_in": int(self.n_features_in_),
                "n_iter": int(self.n_iter_), "opt_steps": int(getattr(self, "_opt_t", 0)),
                "history": {k: v for k, v in self.history_.items()}}
        arrays = {"params": self.net_.params}
        if getattr(self, "_opt_state", None) is not None:
            arrays["opt_state"] = self._opt_state
        return meta, arrays

    def _restore_state(self, meta, arrays):
        params = np.ascontiguousarray(arrays["params"])
        net = Sequential.from_config({**meta["net"], "input_shape": None})
        net.build(tuple(meta["net"]["input_shape"]), dtype=params.dtype)
        if net.params.shape != params.shape:
            raise ValueError(f"the saved parameters have shape {params.shape}, the saved layers "
                             f"need {net.params.shape}: the file is damaged")
        net.params[...] = params
        self.net_ = net
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_iter_ = int(meta.get("n_iter", 0))
        self._opt_t = int(meta.get("opt_steps", 0))
        self._opt_state = np.ascontiguousarray(arrays["opt_state"]) if "opt_state" in arrays \
            else None
        self.history_ = History(meta.get("history", {}))
        self.loss_ = self.history_["J"][-1] if self.history_.get("J") else float("nan")


def _int_pairs(est, name):
    """``conv_layers`` as a tuple of ``(filters, kernel_size)`` pairs of positive ints."""
    value = getattr(est, name)
    expected = "a tuple of (filters, kernel_size) pairs of positive ints, e.g. ((8, 5), (16, 5))"
    try:
        pairs = [tuple(p) for p in value]
    except TypeError:
        raise _param_error(est, name, expected, value) from None
    out = []
    for i, p in enumerate(pairs):
        if len(p) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral)
                              for v in p):
            raise _param_error(est, name, expected, value)
        if p[0] < 1:
            raise _param_error(est, name, f"{expected}; {name}[{i}] has {p[0]} filters (at least "
                                           f"1 is needed)", value)
        if p[1] < 1:
            raise _param_error(est, name, f"{expected}; {name}[{i}] has kernel_size {p[1]}",
                               value)
        out.append((int(p[0]), int(p[1])))
    return tuple(out)


def _int_tuple(est, name, allow_empty=True):
    value = getattr(est, name)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    expected = "a tuple of positive ints"
    try:
        items = tuple(value)
    except TypeError:
        raise _param_error(est, name, expected, getattr(est, name)) from None
    if (not items and not allow_empty) or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in items):
        raise _param_error(est, name, expected, getattr(est, name))
    return tuple(int(v) for v in items)
