r"""A character-level language model: :class:`CharLM`.

Recurrent layers (the LSTM by default) read a text one character at a time
(one-hot) and a softmax predicts the next one.  Training is truncated
backpropagation through time on ``batch_size`` parallel streams of the
text: the text is cut into ``batch_size`` equal parts, each epoch runs
through them ``seq_len`` characters at a time, the state carried from one
chunk to the next (stateful) and the gradient stopping at the chunk's start.
An epoch is one call of the active backend's ``rnn_lm_epoch`` kernel.

:meth:`CharLM.bits_per_char` measures held-out text (the cross-entropy in
bits, :math:`-\frac{1}{N}\sum \log_2 p(x_{t+1} \mid x_{\le t})`) and
:meth:`CharLM.sample` writes new text.
"""
from __future__ import annotations

import time

import numpy as np

from fastnet import _backend
from fastnet._codes import Act, Cell
from fastnet._history import EpochRunner, History
from fastnet._progress import Progress
from fastnet._validation import check_rng, check_scalar, check_int
from fastnet.estimators._base import _Estimator, _not_fitted_class, _p_choice
from fastnet.estimators._rnn import (_RecurrentConfig, head_logits, init_network, run_layers,
                                     softmax)

__all__ = ["CharLM"]

#: characters per call of the forward kernels when measuring or priming (bounds the buffers)
_EVAL_CHUNK = 8192


def _check_text(text, name="text"):
    if isinstance(text, (bytes, bytearray)):
        raise TypeError(f"{name} must be a str, got bytes: decode it first "
                        f"(text.decode('utf-8'))")
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    if not text:
        raise ValueError(f"{name} is empty: expected at least 2 characters")
    return text


class CharLM(_RecurrentConfig, _Estimator):
    r"""A character-level language model trained by truncated BPTT (stateful).

    Parameters
    ----------
    hidden_size : int, default=128
    cell : {'lstm', 'rnn'}, default='lstm'
    num_layers : int, default=1
    seq_len : int, default=100
        Characters per chunk of truncated BPTT.
    batch_size : int, default=32
        Parallel streams the text is cut into.
    optimizer : {'adam', 'sgd', 'momentum', 'nesterov', 'rmsprop'}, default='adam'
    lr : float, default=2e-3
    clip : float or None, default=5.0
        The gradient's norm is clipped to ``clip`` before each step (None: never).
    max_epochs : int, default=10
    momentum, rho, eps :
        As for :class:`fastnet.RNNClassifier` (Adam's :math:`\beta_1`, :math:`\beta_2`, :math:`\epsilon`).
    dtype : {'float32', 'float64'}, default='float32'
    random_state : int, Generator or None, default=None
        Seeds the initial weights.
    verbose : int, default=1

    Attributes
    ----------
    vocabulary_ : str
        The characters seen by ``fit``, sorted (their indices are the model's symbols).
    history_ : History
        ``'J'`` the mean log-loss (nats) of each epoch, ``'bits'`` the same in bits,
        ``'val_bits'`` with ``validation_text``, ``'seconds'``.
    params_, sizes_ : the flat parameters and ``[V, H, ..., H, V]``.
    """

    def __init__(self, hidden_size=128, *, cell="lstm", num_layers=1, seq_len=100,
                 batch_size=32, optimizer="adam", lr=2e-3, clip=5.0, max_epochs=10,
                 momentum=0.9, rho=None, eps=1e-8, dtype="float32", random_state=None,
                 verbose=1):
        self.hidden_size = hidden_size
        self.cell = cell
        self.num_layers = num_layers
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.clip = clip
        self.max_epochs = max_epochs
        self.momentum = momentum
        self.rho = rho
        self.eps = eps
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_is_fitted__(self):
        return "params_" in self.__dict__

    def _dtype(self):
        return self.params_.dtype

    # ---- the vocabulary
    def _encode(self, text, name="text"):
        """Symbols of ``text`` (int64); a character unseen at fit is an error naming it."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        idx = np.searchsorted(self._vocab_codes, codes)
        idx = np.clip(idx, 0, self._vocab_codes.shape[0] - 1)
        bad = self._vocab_codes[idx] != codes
        if bad.any():
            unseen = sorted({chr(c) for c in codes[bad]})
            shown = ", ".join(repr(ch) for ch in unseen[:10]) + (" ..." if len(unseen) > 10 else "")
            raise ValueError(f"{name} holds {len(unseen)} character(s) not seen by fit ({shown}); "
                             f"the model's vocabulary is {self.vocabulary_!r}: remove or replace "
                             f"them")
        return idx.astype(np.int64)

    @property
    def _arch(self):
        return (Cell[self.cell_.upper()], Act.TANH, np.asarray(self.sizes_, dtype=np.int64))

    # ---- training
    def fit(self, text, validation_text=None):
        """Train from scratch on ``text`` (a str).

        Parameters
        ----------
        validation_text : str, optional
            Measured after each epoch (``history_['val_bits']``); characters
            unseen in ``text`` are an error.

        Returns
        -------
        self
        """
        c = self._recurrent_config()
        S = check_int(self.seq_len, "seq_len", lo=1, owner=type(self).__name__)
        dtype = np.dtype(_p_choice(self, "dtype", ("float32", "float64")))
        text = _check_text(text)
        if len(text) < 2:
            raise ValueError("text has 1 character: a language model needs at least 2 (one to "
                             "read, one to predict)")
        if S > len(text) - 1:
            raise ValueError(f"seq_len={S} is longer than the text, which has {len(text)} "
                             f"characters ({len(text) - 1} predictions): use a shorter seq_len "
                             f"or more text")
        B = c["batch_size"]
        L = (len(text) - 1) // B
        if L < 1:
            raise ValueError(f"batch_size={B} streams need at least {B + 1} characters of text, "
                             f"got {len(text)}: use a smaller batch_size or more text")
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        vocab, tokens, counts = np.unique(codes, return_inverse=True, return_counts=True)
        if validation_text is not None:
            _check_text(validation_text, "validation_text")
        V = vocab.shape[0]
        cell, act = c["cell"], Act.TANH
        sizes = np.array([V] + [c["hidden"]] * c["layers"] + [V], dtype=np.int64)
        params = init_network(cell, sizes, c["rng"], dtype)
        state = np.zeros(2 * params.shape[0], dtype=dtype)
        streams = np.ascontiguousarray(
            np.stack([tokens[b * L:b * L + L + 1] for b in range(B)]).astype(np.int64))
        width = B * int(sizes[1:-1].sum())
        opt, lr, mu, rho, eps, clip = self._hyper(c)
        K = _backend.kernels()
        # the fitted state, set now so that validation and sampling can run during fit
        self._vocab_codes = vocab.astype(np.int64)
        self.vocabulary_ = "".join(chr(v) for v in vocab)
        self.counts_ = counts.astype(np.int64)
        self.sizes_ = [int(s) for s in sizes]
        self.cell_ = cell.name.lower()
        self.params_ = params
        val = self._encode(validation_text, "validation_text") if validation_text else None
        hist = History(J=[], bits=[], seconds=[])
        if val is not None:
            hist["val_bits"] = []
        runner = _StreamRunner(K, cell, act, params, sizes, streams, S, width, dtype,
                               (opt, lr, mu, rho, eps, clip), state,
                               lambda: float(self._bits(tokens[:_START_CHARS + 1]) * np.log(2)))
        try:
            with Progress(total=c["max_epochs"], verbose=c["verbose"],
                          desc=type(self).__name__) as bar:
                clock = [time.perf_counter()]

                def record(epoch, J):
                    hist["J"].append(J)
                    hist["bits"].append(J / np.log(2))
                    now = time.perf_counter()
                    hist["seconds"].append(now - clock[0])
                    clock[0] = now
                    if val is not None:
                        hist["val_bits"].append(self._bits(val))
                    bar.update(loss=J, samples=B * L)
                    return False

                runner.run_epochs(c["max_epochs"], callbacks=[record])
            steps = runner.t
        except BaseException:
            for key in ("params_", "vocabulary_", "_vocab_codes", "counts_", "sizes_", "cell_"):
                self.__dict__.pop(key, None)
            raise
        self.n_iter_ = c["max_epochs"]
        self._opt_state, self._opt_t = state, steps
        hist["epochs"] = len(hist["J"])
        self.history_ = hist
        self.loss_ = hist["J"][-1]
        return self

    # ---- reading text
    def _run(self, tokens, states):
        """Log-probabilities of the symbols after each of ``tokens`` (a 1-D stream), from the
        per-layer ``states``; returns ``(logp (N, V) float64, states after the last one)``."""
        cell, act, sizes = self._arch
        V = int(sizes[0])
        eye = np.eye(V, dtype=self.params_.dtype)
        X = np.ascontiguousarray(eye[tokens][:, None, :])           # (N, 1, V)
        HS, finals = run_layers(cell, act, self.params_, sizes, X,
                                np.array([len(tokens)], dtype=np.int64), states)
        Z = head_logits(self.params_, sizes, cell, HS[1:, 0].astype(np.float64))
        Z -= Z.max(axis=1, keepdims=True)
        logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
        return logp, finals

    def _bits(self, tokens):
        states, total = None, 0.0
        for lo in range(0, tokens.shape[0] - 1, _EVAL_CHUNK):
            chunk = tokens[lo:lo + _EVAL_CHUNK + 1]
            logp, states = self._run(chunk[:-1], states)
            total -= float(logp[np.arange(chunk.shape[0] - 1), chunk[1:]].sum())
        return total / (tokens.shape[0] - 1) / np.log(2)

    def bits_per_char(self, text):
        r"""The cross-entropy of ``text`` in bits per character, read from its first character.

        :math:`-\frac{1}{N-1}\sum_{t\ge1}\log_2 p(x_t \mid x_{<t})` with the state
        starting at zero.  Characters unseen by ``fit`` are an error that names them.
        """
        self._check_fitted()
        text = _check_text(text)
        if len(text) < 2:
            raise ValueError("text has 1 character: bits_per_char needs at least 2 (one to read, "
                             "one to predict)")
        return float(self._bits(self._encode(text)))

    def score(self, text):
        """Minus :meth:`bits_per_char` (higher is better, as scikit-learn's scores)."""
        return -self.bits_per_char(text)

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise _not_fitted_class()(f"This {type(self).__name__} instance is not fitted yet. "
                                      f"Call 'fit' with a text first.")

    def sample(self, n_chars, prime="", temperature=1.0, random_state=None):
        r"""Write ``n_chars`` new characters, continuing ``prime``.

        Each character is drawn from :math:`p \propto \exp(z / T)` with
        :math:`T` = ``temperature`` (lower: more conservative).  With no
        ``prime`` the first character is drawn from the training text's
        character frequencies.

        Returns
        -------
        str
            The ``n_chars`` generated characters (without ``prime``).
        """
        self._check_fitted()
        n = check_int(n_chars, "n_chars", lo=0)
        temp = check_scalar(temperature, "temperature", lo=0, lo_open=True)
        rng = check_rng(random_state, "random_state")
        if not isinstance(prime, str):
            raise TypeError(f"prime must be a str, got {type(prime).__name__}")
        if n == 0:
            return ""
        u = rng.random(n + 1)
        out = np.empty(n, dtype=np.int64)
        if prime:
            logp, states = self._run(self._encode(prime, "prime"), None)
            last = logp[-1]
            k0 = 0
        else:
            p = self.counts_ / self.counts_.sum()
            first = int(min(np.searchsorted(np.cumsum(p), u[0] * p.sum(), side="right"),
                            p.shape[0] - 1))
            out[0] = first
            logp, states = self._run(out[:1], None)
            last = logp[-1]
            k0 = 1
        for k in range(k0, n):
            z = last / temp
            p = np.exp(z - z.max())
            cdf = np.cumsum(p)
            out[k] = int(min(np.searchsorted(cdf, u[k + 1] * cdf[-1], side="right"),
                             p.shape[0] - 1))
            if k + 1 < n:
                logp, states = self._run(out[k:k + 1], states)
                last = logp[-1]
        return "".join(self.vocabulary_[i] for i in out)

    # ---- save/load support (fastnet.io)
    def _fitted_state(self):
        meta = {"sizes": self.sizes_, "cell": self.cell_, "n_iter": self.n_iter_,
                "opt_steps": int(self._opt_t), "history": dict(self.history_)}
        return meta, {"params": self.params_, "opt_state": self._opt_state,
                      "vocabulary": self._vocab_codes, "counts": self.counts_}

    def _restore_state(self, meta, arrays):
        self.params_ = np.ascontiguousarray(arrays["params"])
        self._opt_state = np.ascontiguousarray(arrays["opt_state"])
        self._opt_t = int(meta.get("opt_steps", 0))
        self._vocab_codes = np.asarray(arrays["vocabulary"], dtype=np.int64)
        self.vocabulary_ = "".join(chr(int(v)) for v in self._vocab_codes)
        self.counts_ = np.asarray(arrays["counts"], dtype=np.int64)
        self.sizes_ = [int(s) for s in meta["sizes"]]
        if self.sizes_[0] != len(self.vocabulary_):
            raise ValueError("the saved CharLM's vocabulary does not match its layer sizes; the "
                             "file is damaged")
        self.cell_ = meta["cell"]
        self.n_iter_ = int(meta["n_iter"])
        self.history_ = History(meta.get("history", {}))
        self.loss_ = self.history_["J"][-1] if self.history_.get("J") else float("nan")



#: Characters on which the cost before training (the divergence rule's J_0) is measured.
_START_CHARS = 4096


class _StreamRunner(EpochRunner):
    """Epochs of ``rnn_lm_epoch`` (truncated BPTT over ``B`` streams) under the epoch loop
    every trainer shares (:class:`fastnet._history.EpochRunner`: the divergence rule, the
    weights and optimiser state put back to the last epoch that passed it)."""

    def __init__(self, K, cell, act, params, sizes, streams, seq_len, width, dtype, hyper, state,
                 start_cost):
        self.K, self.cell, self.act = K, int(cell), int(act)
        self.params, self.sizes, self.streams, self.seq_len = params, sizes, streams, seq_len
        self.width, self.dtype, self.lstm = width, dtype, cell == Cell.LSTM
        self.opt, self.lr, self.mu, self.rho, self.eps, self.clip = hyper
        self.state = state
        self._start_cost = start_cost
        self.t = 0

    def _arrays(self):
        return (self.params, self.state)

    def _weights(self):
        return (self.params,)

    def start_cost(self):
        """Mean log-loss (nats per character) of the text's start before training."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._start_cost()

    def _epoch(self, epoch):
        B, L1 = self.streams.shape
        L = L1 - 1
        hs = np.zeros(self.width, dtype=self.dtype)        # every stream starts from zero
        cs = np.zeros(self.width if self.lstm else 0, dtype=self.dtype)
        total = self.K.rnn_lm_epoch(self.cell, self.act, self.params, self.sizes, self.streams,
                                    self.seq_len, hs, cs, self.opt, self.lr, self.mu, self.rho,
                                    self.eps, self.clip, self.state, self.t)
        self.t += -(-L // self.seq_len)   # one optimiser step per chunk
        return total / (B * L)
