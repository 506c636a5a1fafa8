r"""Recurrent networks under the scikit-learn contract: :class:`RNNClassifier`.

A many-to-one classifier: ``num_layers`` recurrent layers (the plain cell
:math:`h_t = f(x_t W + h_{t-1} U + b)` or the LSTM, :mod:`fastnet.layers`),
then a softmax over the classes read from the top layer's state after each
sequence's last step, trained on the log-loss by backpropagation through
time.  An epoch is one call of the active backend's ``rnn_seq_epoch``
kernel (every batch's forward pass, BPTT, gradient-norm clipping and
optimiser step compiled together).

Also the pieces :class:`fastnet.CharLM` shares: the hyper-parameter checks
of a recurrent network, its initialisation and its forward pass for
prediction (:func:`run_layers`).
"""
from __future__ import annotations

import numbers
import time

import numpy as np

from fastnet import _backend
from fastnet._codes import Act, Cell, Optimizer
from fastnet._args import start_rows
from fastnet._history import EpochRunner, History
from fastnet._progress import Progress
from fastnet.estimators._base import (_ClassifierMixin, _Estimator, _nonfinite_message,
                                      _p_bool, _p_choice, _p_int, _p_random_state, _p_real)
from fastnet.layers._recurrent import init_recurrent
from fastnet.reference.rnn import network_offsets

__all__ = ["RNNClassifier", "run_layers", "as_sequences"]

_OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")
_CELL_ACTS = ("tanh", "relu", "sigmoid", "linear")
#: samples per call of the forward kernels when predicting (bounds the buffers)
_PREDICT_CHUNK = 4096


# ------------------------------------------------------------------------- shared pieces
class _RecurrentConfig:
    """Hyper-parameter checks shared by the recurrent estimators."""

    def _recurrent_config(self):
        c = {"hidden": _p_int(self, "hidden_size", lo=1),
             "layers": _p_int(self, "num_layers", lo=1),
             "cell": Cell[_p_choice(self, "cell", ("rnn", "lstm")).upper()]}
        c["act"] = Act[_p_choice(self, "activation", _CELL_ACTS).upper()] \
            if hasattr(self, "activation") else Act.TANH
        opt = _p_choice(self, "optimizer", _OPTIMIZERS)
        c["optimizer"] = Optimizer[opt.upper()]
        c["lr"] = _p_real(self, "lr", lo=0, lo_open=True)
        c["momentum"] = _p_real(self, "momentum", lo=0, hi=1, hi_open=True)
        rho = _p_real(self, "rho", lo=0, hi=1, hi_open=True, allow_none=True)
        c["rho"] = (0.999 if opt == "adam" else 0.9) if rho is None else rho
        c["eps"] = _p_real(self, "eps", lo=0, lo_open=True)
        clip = _p_real(self, "clip", lo=0, lo_open=True, allow_none=True)
        c["clip"] = np.inf if clip is None else clip
        c["max_epochs"] = _p_int(self, "max_epochs", lo=1)
        c["batch_size"] = _p_int(self, "batch_size", lo=1)
        c["verbose"] = _p_int(self, "verbose", lo=0)
        c["rng"] = _p_random_state(self)
        return c

    def _hyper(self, c):
        return (int(c["optimizer"]), c["lr"], c["momentum"], c["rho"], c["eps"], c["clip"])


def init_network(cell, sizes, rng, dtype):
    """Initial parameters of a network ``sizes = [D, H_1, ..., H_L, K]``.

    Recurrent layers as :func:`fastnet.layers._recurrent.init_recurrent`; the
    softmax layer Glorot-uniform with zero biases.
    """
    offs = network_offsets(cell, sizes)
    params = np.zeros(int(offs[-1]), dtype=np.float64)
    L = len(sizes) - 2
    for l in range(L):
        init_recurrent(params[offs[l]:offs[l + 1]], cell, int(sizes[l]), int(sizes[l + 1]), rng)
    H, K = int(sizes[-2]), int(sizes[-1])
    head = params[offs[L]:offs[L + 1]].reshape(H + 1, K)
    bound = np.sqrt(6.0 / (H + K))
    head[1:] = rng.uniform(-bound, bound, (H, K))
    return params.astype(dtype)


def run_layers(cell, act, params, sizes, X, lengths, states=None):
    """The recurrent layers' forward pass on the active backend, for prediction.

    Parameters
    ----------
    X : (T, B, D) array
        Time-major inputs (C-contiguous, the dtype of ``params``).
    lengths : (B,) int64
    states : list of (h, c) pairs, optional
        Each layer's initial state, ``(B, H_l)`` arrays (``c`` for the LSTM);
        zeros when None.

    Returns
    -------
    HS : (T + 1, B, H_L) array
        The top layer's states (``HS[T]``: each sequence's last one).
    finals : list of (h, c)
        Each layer's state after the last step (to carry into the next call).
    """
    K = _backend.kernels()
    T, B = X.shape[:2]
    dt = params.dtype
    offs = network_offsets(cell, sizes)
    lstm = cell == Cell.LSTM
    inp, finals = X, []
    for l in range(len(sizes) - 2):
        H = int(sizes[l + 1])
        HS = np.empty((T + 1, B, H), dt)
        CS = np.empty((T + 1, B, H) if lstm else (0, 0, 0), dt)
        GS = np.empty((T, B, 4 * H if lstm else H), dt)
        h0, c0 = (None, None) if states is None else states[l]
        HS[0] = 0 if h0 is None else h0
        if lstm:
            CS[0] = 0 if c0 is None else c0
        K.rnn_forward(int(cell), int(act), params[offs[l]:offs[l + 1]], inp, lengths, HS, CS,
                      GS)
        finals.append((HS[T].copy(), CS[T].copy() if lstm else None))
        inp = HS[1:]
    return HS, finals


def head_logits(params, sizes, cell, Hlast):
    """Logits of the softmax layer for the states ``Hlast`` (m, H_L)."""
    offs = network_offsets(cell, sizes)
    L = len(sizes) - 2
    W = params[offs[L]:offs[L + 1]].reshape(int(sizes[-2]) + 1, int(sizes[-1]))
    return Hlast @ W[1:] + W[0]


def softmax(Z):
    Z = Z - Z.max(axis=-1, keepdims=True)
    np.exp(Z, out=Z)
    Z /= Z.sum(axis=-1, keepdims=True)
    return Z


def as_sequences(X, lengths, owner, *, dtype=None, n_features=None):
    """Check ``X`` (n, T, features) and ``lengths``: returns ``(X, lengths)``.

    ``X`` may be a 3-D array, or a list of ``(T_i, features)`` sequences of
    different lengths when ``lengths`` gives them (they are zero-padded to the
    longest).  Steps past a sequence's length are ignored (and set to 0 in
    the copy the kernels read, so they may hold anything, NaN included).
    """
    if X is None:
        raise ValueError(f"{owner} expected X of shape (n_samples, T, n_features), got None")
    if isinstance(X, (list, tuple)) and X and not isinstance(X[0], numbers.Number):
        seqs = [np.asarray(s) for s in X]
        shapes = {s.shape[1:] for s in seqs if s.ndim == 2}
        if any(s.ndim != 2 for s in seqs) or len(shapes) > 1:
            raise ValueError(f"X: each sequence must be a 2-D array (T_i, n_features) with the "
                             f"same n_features, got shapes {[s.shape for s in seqs[:5]]}")
        Ts = [s.shape[0] for s in seqs]
        if len(set(Ts)) > 1:
            if lengths is None:
                raise ValueError(
                    f"X holds sequences of different lengths ({min(Ts)} to {max(Ts)} steps): "
                    f"pass lengths= (one entry per sequence) or pad X to a common length T "
                    f"and pass lengths= so that the padding is ignored")
            arr = np.zeros((len(seqs), max(Ts), seqs[0].shape[1]),
                           dtype=np.result_type(*[s.dtype for s in seqs]))
            for i, s in enumerate(seqs):
                arr[i, :s.shape[0]] = s
            lens = np.asarray(lengths)
            if lens.shape == (len(seqs),) and not np.array_equal(lens, Ts):
                raise ValueError(f"lengths does not match the sequences of X: lengths[i] must "
                                 f"be len(X[i]), got {lens[:5].tolist()} for "
                                 f"{Ts[:5]}")
            X = arr
        else:
            X = np.stack(seqs) if seqs else np.zeros((0, 0, 0))
    try:
        arr = np.asarray(X)
    except ValueError as exc:  # a ragged nested list
        raise ValueError(f"X holds sequences of different lengths (or shapes): pad them to a "
                         f"common length T and pass lengths= ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"X must hold numbers, got dtype {arr.dtype}")
    if arr.ndim != 3:
        raise ValueError(f"X must have shape (n_samples, T, n_features), got shape {arr.shape}"
                         + ("; for one feature per step use X[..., None]" if arr.ndim == 2
                            else ""))
    n, T, F = arr.shape
    if n == 0 or T == 0 or F == 0:
        raise ValueError(f"X must have at least one sample, step and feature, got shape "
                         f"{arr.shape}")
    if n_features is not None and F != n_features:
        raise ValueError(f"X has {F} features per step, but {owner} is expecting {n_features} "
                         f"features as input")
    if lengths is None:
        lens = np.full(n, T, dtype=np.int64)
    else:
        raw = np.asarray(lengths)
        if raw.shape != (n,) or raw.dtype.kind not in "biuf" or \
                (raw.dtype.kind == "f" and not np.all(raw == np.round(raw))):
            raise ValueError(f"lengths must hold one integer per sequence of X ({n}), got "
                             f"{raw.shape if raw.shape != (n,) else raw.dtype}")
        lens = raw.astype(np.int64)
        if lens.min() < 1 or lens.max() > T:
            bad = int(np.flatnonzero((lens < 1) | (lens > T))[0])
            raise ValueError(f"lengths[{bad}] = {int(lens[bad])} is out of range: every entry "
                             f"of lengths must be in [1, T={T}] (T is X.shape[1])")
    if dtype is None:
        dtype = np.float32 if arr.dtype == np.float32 else np.float64
    out = np.array(arr, dtype=dtype, order="C", copy=True)
    if lengths is not None:
        out[np.arange(T)[None, :] >= lens[:, None]] = 0   # padding: ignored, kept finite
    if not np.isfinite(out).all():
        raise ValueError(_nonfinite_message(out, "X"))
    return out, lens


# ------------------------------------------------------------------------- the classifier
class RNNClassifier(_RecurrentConfig, _ClassifierMixin, _Estimator):
    r"""A recurrent network classifying whole sequences (many-to-one), trained by BPTT.

    ``num_layers`` recurrent layers of ``hidden_size`` units, then a softmax
    over the classes on the top layer's state after each sequence's last
    step; the mean log-loss of each batch is minimised by the chosen
    optimiser after gradient-norm clipping.

    Parameters
    ----------
    hidden_size : int, default=32
        Units :math:`H` of each recurrent layer.
    cell : {'rnn', 'lstm'}, default='rnn'
        The plain cell :math:`h_t = f(x_t W + h_{t-1} U + b)` or the LSTM.
    num_layers : int, default=1
        Stacked recurrent layers (each reads the sequence of states of the one below).
    activation : {'tanh', 'relu', 'sigmoid', 'linear'}, default='tanh'
        :math:`f` of the plain cell (the LSTM's gates are fixed).
    optimizer : {'adam', 'sgd', 'momentum', 'nesterov', 'rmsprop'}, default='adam'
    lr : float, default=0.005
    batch_size : int, default=32
    max_epochs : int, default=20
    clip : float or None, default=5.0
        The gradient's norm is clipped to ``clip`` before each step (None: never).
    momentum : float, default=0.9
        Momentum, Nesterov's, and Adam's :math:`\beta_1`.
    rho : float or None, default=None
        RMSprop's decay and Adam's :math:`\beta_2` (None: 0.9 for RMSprop, 0.999 for Adam).
    eps : float, default=1e-8
    shuffle : bool, default=True
        Shuffle the samples at each epoch.
    random_state : int, Generator or None, default=None
        Seeds the initial weights and the shuffles: the same seed gives the same
        model on every backend (to float tolerance).
    verbose : int, default=1
        Progress display (see :mod:`fastnet._progress`).
    track_accuracy : bool, default=True
        Record the training accuracy of each epoch (one forward pass over the data).

    Attributes
    ----------
    classes_, n_features_in_, n_iter_, history_ (``'J'`` the mean log-loss of each
    epoch, ``'train_acc'`` (percent), ``'seconds'``), params_ (the flat parameter vector),
    sizes_ (``[n_features, H, ..., H, n_classes]``).

    Notes
    -----
    ``fit(X, y, lengths=None)`` takes ``X`` of shape ``(n_samples, T, n_features)``;
    sequences shorter than ``T`` give their ``lengths`` (the padding is ignored).
    Float32 data train in float32.
    """

    def __init__(self, hidden_size=32, *, cell="rnn", num_layers=1, activation="tanh",
                 optimizer="adam", lr=0.005, batch_size=32, max_epochs=20, clip=5.0,
                 momentum=0.9, rho=None, eps=1e-8, shuffle=True, random_state=None, verbose=1,
                 track_accuracy=True):
        self.hidden_size = hidden_size
        self.cell = cell
        self.num_layers = num_layers
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.clip = clip
        self.momentum = momentum
        self.rho = rho
        self.eps = eps
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.track_accuracy = track_accuracy

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    def _dtype(self):
        return self.params_.dtype

    def fit(self, X, y, lengths=None):
        """Train from scratch on sequences ``X`` (n_samples, T, n_features) and labels ``y``.

        Parameters
        ----------
        lengths : array of int, optional
            Steps of each sequence (in ``[1, T]``); all ``T`` when None.  Needed
            when ``X`` is a list of sequences of different lengths.

        Returns
        -------
        self
        """
        c = self._recurrent_config()
        shuffle = _p_bool(self, "shuffle")
        track = _p_bool(self, "track_accuracy")
        Xv, lens = as_sequences(X, lengths, type(self).__name__)
        codes = self._encode(y, Xv.shape[0], reset=True)
        classes = self._new_classes
        n, T, D = Xv.shape
        cell, act = c["cell"], c["act"]
        sizes = np.array([D] + [c["hidden"]] * c["layers"] + [classes.shape[0]], dtype=np.int64)
        rng = c["rng"]
        params = init_network(cell, sizes, rng, Xv.dtype)
        state = np.zeros(2 * params.shape[0], dtype=params.dtype)
        opt, lr, mu, rho, eps, clip = self._hyper(c)
        runner = _SeqRunner(_backend.kernels(), cell, act, params, sizes, Xv, lens, codes,
                            c["batch_size"], (opt, lr, mu, rho, eps, clip), state, rng, shuffle,
                            self._proba_of)
        hist = History(J=[], seconds=[])
        if track:
            hist["train_acc"] = []
        clock = [time.perf_counter()]
        with Progress(total=c["max_epochs"], verbose=c["verbose"], desc=type(self).__name__) as bar:
            def record(epoch, J):
                acc = None
                if track:
                    proba = self._proba_of(params, sizes, cell, act, Xv, lens)
                    acc = 100.0 * float(np.mean(np.argmax(proba, axis=1) == codes))
                    hist["train_acc"].append(acc)
                hist["J"].append(J)
                now = time.perf_counter()
                hist["seconds"].append(now - clock[0])
                clock[0] = now
                bar.update(loss=J, acc=acc, samples=n)
                return False

            runner.run_epochs(c["max_epochs"], callbacks=[record])
        steps = runner.t
        self.n_features_in_ = int(D)
        self.classes_ = classes
        self.sizes_ = [int(s) for s in sizes]
        self.params_ = params
        self.cell_ = cell.name.lower()
        self.activation_ = act.name.lower()
        self.n_iter_ = c["max_epochs"]
        self._opt_state, self._opt_t = state, steps
        hist["epochs"] = len(hist["J"])
        hist["converged"] = False
        self.history_ = hist
        self.loss_ = hist["J"][-1]
        self.__dict__.pop("_new_classes", None)
        return self

    @staticmethod
    def _proba_of(params, sizes, cell, act, X, lens):
        """Class probabilities of (checked) sequences, by chunks of samples sorted by length."""
        n = X.shape[0]
        out = np.empty((n, int(sizes[-1])), dtype=params.dtype)
        order = np.argsort(-lens, kind="stable")
        for lo in range(0, n, _PREDICT_CHUNK):
            idx = order[lo:lo + _PREDICT_CHUNK]
            Tb = int(lens[idx].max())
            Xb = np.ascontiguousarray(X[idx, :Tb].transpose(1, 0, 2))
            HS, _ = run_layers(cell, act, params, sizes, Xb, np.ascontiguousarray(lens[idx]))
            out[idx] = softmax(head_logits(params, sizes, cell, HS[Tb]))
        return out

    def _checked(self, X, lengths):
        self._check_fitted()
        return as_sequences(X, lengths, type(self).__name__, dtype=self._dtype(),
                            n_features=self.n_features_in_)

    def predict_proba(self, X, lengths=None):
        """Class probabilities ``(n_samples, n_classes)``, columns in ``classes_`` order."""
        Xv, lens = self._checked(X, lengths)
        return self._proba_of(self.params_, np.asarray(self.sizes_, dtype=np.int64),
                              Cell[self.cell_.upper()], Act[self.activation_.upper()], Xv, lens)

    def predict_log_proba(self, X, lengths=None):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X, lengths))

    def predict(self, X, lengths=None):
        """The most probable class of each sequence (labels from ``classes_``)."""
        proba = self.predict_proba(X, lengths)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None, lengths=None):
        """Mean accuracy of ``predict(X, lengths)`` against ``y``."""
        pred = self.predict(X, lengths)
        y = np.asarray(y)
        if y.shape[0] != pred.shape[0]:
            raise ValueError(f"y has {y.shape[0]} labels but X has {pred.shape[0]} sequences")
        hits = (pred == y).astype(np.float64)
        if sample_weight is not None:
            return float(np.average(hits, weights=np.asarray(sample_weight, dtype=np.float64)))
        return float(hits.mean())

    # ---- save/load support (fastnet.io)
    def _fitted_state(self):
        meta = {"sizes": self.sizes_, "cell": self.cell_, "activation": self.activation_,
                "n_features_in": self.n_features_in_, "n_iter": self.n_iter_,
                "opt_steps": int(self._opt_t), "history": dict(self.history_)}
        return meta, {"params": self.params_, "opt_state": self._opt_state,
                      "classes": self.classes_}

    def _restore_state(self, meta, arrays):
        self.params_ = np.ascontiguousarray(arrays["params"])
        self._opt_state = np.ascontiguousarray(arrays["opt_state"])
        self._opt_t = int(meta.get("opt_steps", 0))
        self.classes_ = arrays["classes"]
        self.sizes_ = [int(s) for s in meta["sizes"]]
        self.cell_ = meta["cell"]
        self.activation_ = meta["activation"]
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_iter_ = int(meta["n_iter"])
        self.history_ = History(meta.get("history", {}))
        self.loss_ = self.history_["J"][-1] if self.history_.get("J") else float("nan")



class _SeqRunner(EpochRunner):
    """Epochs of ``rnn_seq_epoch`` under the epoch loop every trainer shares
    (:class:`fastnet._history.EpochRunner`: the divergence rule, the weights and
    optimiser state put back to the last epoch that passed it)."""

    def __init__(self, K, cell, act, params, sizes, X, lens, codes, batch_size, hyper, state, rng,
                 shuffle, proba_of):
        self.K, self.cell, self.act = K, int(cell), int(act)
        self.params, self.sizes, self.X, self.lens, self.codes = params, sizes, X, lens, codes
        self.batch_size = int(batch_size)
        self.opt, self.lr, self.mu, self.rho, self.eps, self.clip = hyper
        self.state, self.rng, self.shuffle = state, rng, shuffle
        self._proba_of = proba_of
        self._cell_enum, self._act_enum = cell, act
        self.t = 0

    def _arrays(self):
        return (self.params, self.state)

    def _weights(self):
        return (self.params,)

    def start_cost(self):
        """The mean log-loss of the first samples before training (the rule's J_0)."""
        rows = start_rows(self.X.shape[0])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            p = self._proba_of(self.params, self.sizes, self._cell_enum, self._act_enum,
                               self.X[rows], self.lens[rows])
            return float(-np.mean(np.log(p[np.arange(p.shape[0]), self.codes[rows]])))

    def _epoch(self, epoch):
        n = self.X.shape[0]
        order = self.rng.permutation(n).astype(np.int64) if self.shuffle \
            else np.arange(n, dtype=np.int64)
        total = self.K.rnn_seq_epoch(self.cell, self.act, self.params, self.sizes, self.X,
                                     self.lens, self.codes, order, self.batch_size, self.opt,
                                     self.lr, self.mu, self.rho, self.eps, self.clip, self.state,
                                     self.t)
        self.t += -(-n // self.batch_size)   # one optimiser step per batch
        return total / n
