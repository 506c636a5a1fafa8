r"""``fastnet.Sequential``: any stack of :mod:`fastnet.layers`, trained by one kernel call per epoch.

A :class:`Sequential` holds a list of layer descriptions.  Building it for an
input shape compiles the stack into a *layer program* (an int64 table, one
row per operation: :class:`fastnet._codes.Prog` columns) and a flat parameter
vector in which each layer owns one contiguous block (Dense: the course's
``W = Theta.T``, bias in row 0; Conv2D: the same with one row per kernel tap
and input channel).  The active backend's kernels interpret the program:
``sequential_forward`` predicts, ``sequential_backprop`` returns a batch's
gradient, and ``sequential_train_epoch`` runs a whole epoch of
mini-batches, forward, backward and update, in one compiled call.

Compiling fuses each :class:`~fastnet.layers.Activation` layer into the
operation before it (the convolution's epilogue: bias then activation on
the GEMM's output), so ``[Conv2D(8, 5), Activation('relu')]`` and
``[Conv2D(8, 5, activation='relu')]`` are the same program.

Images are channels-first in the API (``(n, C, H, W)``; ``(n, H, W)`` is one
channel; ``(n, C*H*W)`` flat rows are accepted too) and channels-last inside
the kernels: data are converted once per call.  The course's model lists
``[Theta1, Sigmoid, Theta2, Sigmoid]`` convert both ways
(:meth:`Sequential.from_model`, :meth:`Sequential.to_model`).

Example::

    from fastnet import Sequential
    from fastnet.layers import Conv2D, MaxPool2D, Flatten, Dense
    net = Sequential([Conv2D(8, 5, activation="relu"), MaxPool2D(2), Flatten(),
                      Dense(64, "relu"), Dense(10, "softmax")])
    history = net.fit(X_train, y_train, optimizer="sgd", lr=0.05, epochs=5)
    labels = net.predict_labels(X_test)
"""
from __future__ import annotations

import numbers
import time

import numpy as np

from fastnet import _backend
from fastnet._codes import Act, LayerKind, Prog, Optimizer, Penalty, NAMES, Loss
from fastnet._args import labels_from_outputs, start_rows
from fastnet._history import History, DivergenceError
from fastnet._progress import Progress
from fastnet._validation import (as_float_array, check_targets, check_distributions, check_scalar,
                                 check_int, check_choice, check_rng)
from fastnet.layers import Layer, Dense, TiedDense, Activation, layer_from_config
from fastnet.training import EpochTrainer

__all__ = ["Sequential", "ProgramTrainer", "compile_program", "OPTIMIZERS"]

#: The optimisers :meth:`Sequential.fit` accepts ('gd' is full-batch sgd).
OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "rmsprop", "adam")
_LOSSES = ("cross_entropy", "quadratic", "log_loss")


# ------------------------------------------------------------------------- compiling
def _as_shape(shape, name="input_shape"):
    try:
        shape = tuple(shape)
    except TypeError:
        shape = (shape,)
    if len(shape) not in (1, 2, 3) or any(
            isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in shape):
        raise ValueError(f"{name} must be (n,), (H, W) or (C, H, W) with positive sizes, got "
                         f"{shape!r}")
    shape = tuple(int(s) for s in shape)
    return (1,) + shape if len(shape) == 2 else shape


def compile_program(layers, input_shape):
    """The layer program of ``layers`` for samples of ``input_shape``.

    Returns
    -------
    prog : int64 ndarray (rows, Prog.WIDTH)
    shapes : list of tuple
        The output shape of each layer (channels-first).
    blocks : list of (offset, length)
        Each layer's block of the flat parameter vector (length 0: none).
    rows : list of int
        The program row each layer is computed by (an Activation fused into
        the row before it shares that row).
    """
    shape = _as_shape(input_shape)
    rows, shapes, blocks, row_of = [], [], [], []
    poff = 0
    for i, layer in enumerate(layers):
        out = layer.output_shape(shape)
        if isinstance(layer, Activation) and rows and rows[-1][Prog.ACT] == Act.LINEAR:
            rows[-1][Prog.ACT] = int(Act[layer.activation.upper()])
            blocks.append((poff, 0))
        else:
            row = layer.program(shape)
            plen = int(layer.n_params(shape))
            row[Prog.POFF], row[Prog.PLEN] = poff, plen
            if isinstance(layer, TiedDense):
                j = layer.tied_to
                if j >= i or not isinstance(layers[j], Dense):
                    raise ValueError(f"layers[{i}]: TiedDense(tied_to={j}) must name an earlier "
                                     f"Dense layer")
                jin = input_shape_of(j, shapes, input_shape)
                if tuple(jin) != (layer.units,) or tuple(shapes[j]) != tuple(shape):
                    raise ValueError(
                        f"layers[{i}]: TiedDense(units={layer.units}) on input {shape} must "
                        f"invert layers[{j}] (Dense from {tuple(jin)} to {tuple(shapes[j])})")
                row[Prog.TIED] = blocks[j][0]
            blocks.append((poff, plen))
            poff += plen
            rows.append(row)
        row_of.append(len(rows) - 1)
        shapes.append(tuple(int(s) for s in out))
        shape = shapes[-1]
    if not rows:
        raise ValueError("layers is empty: a Sequential needs at least one layer")
    for r, row in enumerate(rows[:-1]):
        if row[Prog.ACT] == Act.SOFTMAX:
            raise ValueError("softmax is only allowed as the activation of the last layer")
    if len(shape) != 1:
        raise ValueError(f"the last layer outputs samples of shape {shape}; a Sequential's "
                         f"output must be flat: end the stack with Flatten() or Dense(...)")
    prog = np.array([[row[f] for f in Prog if f != Prog.WIDTH] for row in rows], dtype=np.int64)
    return prog, shapes, blocks, row_of


def input_shape_of(i, shapes, input_shape):
    """The input shape of layer ``i`` given the output shapes of the layers before it."""
    return _as_shape(input_shape) if i == 0 else shapes[i - 1]


# ----------------------------------------------------------------------------- trainer
class ProgramTrainer(EpochTrainer):
    """:class:`fastnet.training.EpochTrainer` for a layer program: epochs of
    ``sequential_train_epoch`` (one kernel call each) with the same sample orders,
    divergence rule (``DivergenceError``, weights restored) and stopping rules (``run``)."""

    def __init__(self, params, prog, *, loss, optimizer="sgd", lr=0.01, batch_size=32,
                 momentum=0.9, rho=0.9, eps=1e-8, penalty=None, lam=0.0, shuffle=True, rng=None,
                 state=None, t=0):
        self.params = params
        self.prog = np.ascontiguousarray(prog, dtype=np.int64)
        self.loss_code = int(NAMES[Loss][loss])
        self.optimizer = optimizer
        self.opt_code = int(NAMES[Optimizer][optimizer])
        self.lr, self.momentum, self.rho, self.eps = float(lr), float(momentum), float(rho), \
            float(eps)
        self.batch_size = None if optimizer == "gd" else batch_size
        self.pen_code = int(NAMES[Penalty][penalty])
        self.lam = float(lam)
        self.shuffle = bool(shuffle)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.state = np.zeros(2 * params.shape[0], params.dtype) if state is None else state
        self.t = int(t)
        self.guard = None
        self.X = self.Y = None
        self._arange = np.empty(0, dtype=np.int64)

    # ---- the hooks of fastnet._history.EpochRunner (divergence rule, restore, stopping)
    def start_cost(self):
        rows = start_rows(self.X.shape[0])
        X, Y = self.X[rows], self.Y[rows]
        K = _backend.kernels()
        out = np.empty((X.shape[0], Y.shape[1]), dtype=self.params.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            K.sequential_forward(self.params, self.prog, X, out)
            J = K.loss(self.loss_code, out, Y) / X.shape[0]
            if self.pen_code:
                J += K.sequential_penalty_value(self.pen_code, self.lam, self.params, self.prog)
        return float(J)

    def _epoch(self, epoch):
        K = _backend.kernels()
        X, Y = self.X, self.Y
        m = X.shape[0]
        bs = m if self.batch_size is None else min(int(self.batch_size), m)
        order = self._order(m, bs)
        params = self.params
        start_penalty = (K.sequential_penalty_value(self.pen_code, self.lam, params, self.prog)
                         if self.pen_code else 0.0)
        total = K.sequential_train_epoch(params, self.prog, self.loss_code, X, Y, order, bs,
                                         self.opt_code, self.lr, self.momentum, self.rho,
                                         self.eps, self.pen_code, self.lam, self.state, self.t)
        self.t += -(-m // bs)   # one optimiser step per batch
        return total / m + start_penalty


# ------------------------------------------------------------------------- Sequential
class Sequential:
    r"""A stack of layers trained as one network.

    Parameters
    ----------
    layers : list of fastnet.layers.Layer
        The stack, input first.  The last layer must output flat samples
        (end with ``Flatten()`` or a ``Dense`` layer); a softmax may only be
        the last activation.
    input_shape : tuple, optional
        The shape of one sample: ``(n,)``, ``(H, W)`` or ``(C, H, W)``.  When
        omitted, :meth:`fit` takes it from the data.
    dtype : {'float64', 'float32'}, optional
        The dtype of the parameters (and of the computation).  Default: that
        of the data first given to :meth:`fit` (float32 stays float32).
    rng : int, Generator or None
        Seeds the initial weights (and :meth:`fit`'s shuffles unless given one).

    Attributes
    ----------
    params : ndarray
        The flat parameter vector (after :meth:`build`).
    program : int64 ndarray
        The compiled layer program (see :mod:`fastnet.reference.conv`).
    shapes : list of tuple
        Each layer's output shape.
    history_ : fastnet.History
        What the last :meth:`fit` recorded.
    """

    def __init__(self, layers, input_shape=None, *, dtype=None, rng=None):
        if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
            raise TypeError(f"layers must be a list of fastnet.layers layers, got "
                            f"{type(layers).__name__}")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a fastnet.layers layer (Dense, Conv2D, "
                                f"MaxPool2D, ...), got {type(layer).__name__}")
        self.layers = list(layers)
        self.input_shape = None
        self.params = None
        self.program = None
        self._rng = check_rng(rng)
        self._dtype = None if dtype is None else np.dtype(dtype)
        if self._dtype is not None and self._dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self._dtype}")
        self._opt_state = None
        self._opt_t = 0
        if input_shape is not None:
            self.build(input_shape)

    # ---- structure
    def build(self, input_shape, dtype=None, rng=None):
        """Compile the stack for samples of ``input_shape`` and draw initial weights.

        Raises ``ValueError`` naming the layer argument that cannot take its input
        (a kernel larger than the padded image, a pool size that does not fit, ...).
        Returns ``self``.
        """
        shape = _as_shape(input_shape)
        prog, shapes, blocks, row_of = compile_program(self.layers, shape)
        dt = np.dtype(dtype) if dtype is not None else (self._dtype or np.dtype(np.float64))
        if dt not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        rng = self._rng if rng is None else check_rng(rng)
        params = np.zeros(int(sum(n for _, n in blocks)), dtype=dt)
        for i, (layer, (off, n)) in enumerate(zip(self.layers, blocks)):
            if n:
                layer.init_params(params[off:off + n], input_shape_of(i, shapes, shape), rng)
        self.input_shape, self.program, self.shapes, self.blocks = shape, prog, shapes, blocks
        self._rows = row_of
        self.params = params
        self._dtype = dt
        self._opt_state = None
        self._opt_t = 0
        return self

    @property
    def built(self):
        return self.params is not None

    @property
    def dtype(self):
        return self._dtype

    @property
    def output_shape(self):
        self._require_built()
        return self.shapes[-1]

    @property
    def n_params(self):
        self._require_built()
        return int(self.params.shape[0])

    def _require_built(self):
        if self.params is None:
            raise ValueError("this Sequential is not built yet: call build(input_shape) or fit")

    def layer_params(self, i):
        """A view of layer ``i``'s block of :attr:`params` (Dense and Conv2D: ``(1 + n_in, n_out)``
        with the bias in row 0; TiedDense: its bias)."""
        self._require_built()
        off, n = self.blocks[i]
        layer = self.layers[i]
        block = self.params[off:off + n]
        if isinstance(layer, Dense):
            return block.reshape(-1, layer.units)
        if getattr(layer, "filters", None):
            return block.reshape(-1, layer.filters)
        return block

    def summary(self):
        """A table of the layers, their output shapes and parameter counts (a str)."""
        self._require_built()
        lines = [f"{'layer':<44} {'output shape':<16} {'params':>8}",
                 f"{'input':<44} {str(self.input_shape):<16} {0:>8}"]
        for layer, shape, (off, n) in zip(self.layers, self.shapes, self.blocks):
            lines.append(f"{repr(layer)[:44]:<44} {str(shape):<16} {n:>8}")
        lines.append(f"total parameters: {self.n_params}")
        return "\n".join(lines)

    def __repr__(self):
        inner = ", ".join(repr(l) for l in self.layers)
        shape = f", input_shape={self.input_shape}" if self.input_shape else ""
        return f"Sequential([{inner}]{shape})"

    # ---- data
    def _kernel_X(self, X, name="X"):
        """``X`` as the kernels' (m, n_in) rows: channels-last images, dtype of the parameters."""
        shape = self.input_shape
        arr = as_float_array(X, name, ndim=(2, 3, 4), dtype=self._dtype)
        m = arr.shape[0]
        C = shape[0] if len(shape) == 3 else None
        if arr.shape[1:] == shape:
            pass
        elif len(shape) == 3 and C == 1 and arr.shape[1:] == shape[1:]:
            pass
        elif arr.ndim == 2 and arr.shape[1] == int(np.prod(shape)):
            pass
        else:
            alt = f", {shape[1:]} (one channel)" if C == 1 else ""
            raise ValueError(f"{name} has samples of shape {arr.shape[1:]}; this network takes "
                             f"samples of shape {shape}{alt} or flat rows of "
                             f"{int(np.prod(shape))} values")
        if len(shape) == 3 and C > 1:
            arr = np.ascontiguousarray(arr.reshape(m, *shape).transpose(0, 2, 3, 1))
        return np.ascontiguousarray(arr.reshape(m, -1))

    def _targets(self, y, m, name="y"):
        n_out = self.shapes[-1][0]
        Y = check_targets(y, m, n_out, self._dtype, name)
        if self.program[-1, Prog.ACT] == Act.SOFTMAX:
            check_distributions(Y, name)
        return Y

    def _loss_name(self, loss):
        act = int(self.program[-1, Prog.ACT])
        if loss is None:
            return {Act.SOFTMAX: "log_loss", Act.SIGMOID: "cross_entropy"}.get(act, "quadratic")
        key = check_choice(loss, "loss", _LOSSES)
        if (act == Act.SOFTMAX) != (key == "log_loss"):
            raise ValueError(f"loss={loss!r}: 'log_loss' goes with a softmax output layer and "
                             f"only with it (this network's output is "
                             f"{Act(act).name.lower()})")
        return key

    # ---- inference
    def _forward_kernel(self, Xk):
        out = np.empty((Xk.shape[0], self.shapes[-1][0]), dtype=self._dtype)
        _backend.kernels().sequential_forward(self.params, self.program, Xk, out)
        return out

    def forward(self, X):
        """The network's outputs for ``X`` (n, ...) as an ``(n, n_out)`` array."""
        self._require_built()
        return self._forward_kernel(self._kernel_X(X))

    __call__ = forward

    def predict(self, X):
        """Class labels of ``X``: the argmax of the outputs (``>= 0.5`` for a single output)."""
        return labels_from_outputs(self.forward(X))

    def loss_and_gradient(self, X, y, *, loss=None, penalty=None, lam=0.0):
        """``(J, grad)``: the mean loss over ``(X, y)`` plus the penalty, and its gradient
        with respect to :attr:`params` (the same layout)."""
        self._require_built()
        Xk = self._kernel_X(X)
        Y = self._targets(y, Xk.shape[0])
        code = int(NAMES[Loss][self._loss_name(loss)])
        pen = int(NAMES[Penalty][check_choice(penalty, "penalty", (None, "none", "l1", "l2"))])
        lam = check_scalar(lam, "lam", lo=0)
        grad = np.empty_like(self.params)
        K = _backend.kernels()
        total = K.sequential_backprop(self.params, self.program, code, Xk, Y, grad)
        m = Xk.shape[0]
        grad /= grad.dtype.type(m)
        J = total / m + K.sequential_penalty_value(pen, lam, self.params, self.program)
        if pen and lam:
            for lo, hi in _weight_ranges(self.program):
                w = self.params[lo:hi]
                grad[lo:hi] += self._dtype.type(lam) * (w if pen == Penalty.L2 else np.sign(w))
        return float(J), grad

    # ---- training
    def fit(self, X, y, *, loss=None, optimizer="sgd", lr=0.01, epochs=10, batch_size=32,
            momentum=0.9, rho=None, eps=1e-8, penalty=None, lam=0.0, tol=None, shuffle=True,
            rng=None, X_test=None, y_test=None, verbose=1):
        r"""Train in place on ``(X, y)``; returns a :class:`fastnet.History`.

        Parameters
        ----------
        X : array (n, C, H, W), (n, H, W) or (n, features)
        y : array
            Integer labels 0..K-1 (one-hot encoded for K outputs) or targets (n, n_out).
        loss : {'cross_entropy', 'quadratic', 'log_loss'}, optional
            Default: log-loss for a softmax output, cross-entropy for a
            sigmoid output, quadratic otherwise.
        optimizer : {'gd', 'sgd', 'momentum', 'nesterov', 'rmsprop', 'adam'}
            ``'gd'`` is full-batch gradient descent.
        lr : float > 0
        epochs : int >= 1
        batch_size : int >= 1
        momentum : float in [0, 1)
            :math:`\mu` of momentum and Nesterov; Adam's :math:`\beta_1`.
        rho : float in [0, 1), optional
            RMSprop's decay (default 0.9); Adam's :math:`\beta_2` (default 0.999).
        eps : float > 0
        penalty : {None, 'l2', 'l1'}, lam : float >= 0
            Weight penalty (biases excluded).
        tol : float, optional
            Stop when the cost changes by less than ``tol`` between epochs.
        shuffle : bool
        rng : int, Generator or None
            The shuffles (default: the network's generator).
        X_test, y_test : optional
            Test data: ``train_acc`` and ``test_acc`` (percent) are recorded per epoch.
        verbose : int
            0 silent; 1 a progress bar after two seconds; 2 at once.

        Raises
        ------
        DivergenceError
            The cost became NaN or infinite (the weights of the last finite
            epoch are kept); try a smaller learning rate.
        """
        if not self.built:
            arr = np.asarray(X)
            if arr.ndim < 2:
                raise ValueError(f"X must hold samples in rows (n, ...), got shape {arr.shape}")
            self.build(arr.shape[1:], dtype=self._dtype or (
                np.float32 if arr.dtype == np.float32 else np.float64))
        Xk = self._kernel_X(X)
        m = Xk.shape[0]
        Y = self._targets(y, m)
        loss_name = self._loss_name(loss)
        opt = check_choice(optimizer, "optimizer", OPTIMIZERS)
        lr = check_scalar(lr, "lr", lo=0, lo_open=True)
        epochs = check_int(epochs, "epochs", lo=1)
        batch_size = min(check_int(batch_size, "batch_size", lo=1), m)
        momentum = check_scalar(momentum, "momentum", lo=0, hi=1, hi_open=True)
        rho = (0.999 if opt == "adam" else 0.9) if rho is None else \
            check_scalar(rho, "rho", lo=0, hi=1, hi_open=True)
        eps = check_scalar(eps, "eps", lo=0, lo_open=True)
        pen = check_choice(penalty, "penalty", (None, "none", "l1", "l2"))
        lam = check_scalar(lam, "lam", lo=0)
        tol = check_scalar(tol, "tol", lo=0, allow_none=True)
        verbose = check_int(verbose, "verbose", lo=0)
        rng = self._rng if rng is None else check_rng(rng)
        Xt = yt = None
        if (X_test is None) != (y_test is None):
            raise ValueError("X_test and y_test must be given together")
        if X_test is not None:
            Xt = self._kernel_X(X_test, "X_test")
            yt = labels_from_outputs(self._targets(y_test, Xt.shape[0], "y_test"))
        labels = labels_from_outputs(Y) if Xt is not None else None
        state = self._opt_state
        if state is None or state.shape[0] != 2 * self.params.shape[0]:
            state, self._opt_t = np.zeros(2 * self.params.shape[0], self._dtype), 0
        trainer = ProgramTrainer(self.params, self.program, loss=loss_name, optimizer=opt, lr=lr,
                                 batch_size=batch_size, momentum=momentum, rho=rho, eps=eps,
                                 penalty=pen if pen != "none" else None, lam=lam,
                                 shuffle=shuffle, rng=rng, state=state, t=self._opt_t)
        hist = History(J=[], seconds=[])
        if Xt is not None:
            hist["train_acc"], hist["test_acc"] = [], []
        clock = [time.perf_counter()]
        with Progress(total=epochs, verbose=verbose, desc="Sequential") as bar:
            def record(epoch, J):
                hist["J"].append(J)
                acc = None
                if Xt is not None:
                    hist["train_acc"].append(100.0 * float(np.mean(
                        labels_from_outputs(self._forward_kernel(Xk)) == labels)))
                    acc = 100.0 * float(np.mean(labels_from_outputs(self._forward_kernel(Xt)) == yt))
                    hist["test_acc"].append(acc)
                now = time.perf_counter()
                hist["seconds"].append(now - clock[0])
                clock[0] = now
                bar.update(loss=J, acc=acc, samples=m)
                return False

            try:
                _, converged = trainer.run(Xk, Y, epochs, tol=tol, callback=record)
            finally:
                self._opt_state, self._opt_t = trainer.state, trainer.t
        hist["epochs"] = len(hist["J"])
        hist["converged"] = converged
        self.history_ = hist
        return hist

    # ---- the course's model lists
    @classmethod
    def from_model(cls, model):
        """A Sequential of Dense layers holding the weights of a course model list
        ``[Theta1, Sigmoid, Theta2, Sigmoid, ...]`` (copied)."""
        from fastnet._validation import check_model
        from fastnet._params import pack
        thetas, acts = check_model(model)
        dtype = np.float32 if all(np.asarray(t).dtype == np.float32 for t in thetas) \
            else np.float64
        layers = [Dense(int(np.shape(t)[0]), a.name) for t, a in zip(thetas, acts)]
        net = cls(layers, input_shape=(int(np.shape(thetas[0])[1]) - 1,), dtype=dtype)
        net.params[...] = pack(thetas, dtype)
        return net

    def to_model(self):
        """The course's model list ``[Theta1, act1, ...]`` of a stack of Dense layers."""
        self._require_built()
        from fastnet.activations import ACTIVATIONS
        if not all(isinstance(l, Dense) for l in self.layers):
            raise ValueError("to_model needs a stack of Dense layers only")
        out = []
        for i, layer in enumerate(self.layers):
            out += [np.ascontiguousarray(self.layer_params(i).T), ACTIVATIONS[layer.activation]]
        return out

    # ---- saving
    def get_config(self):
        """The stack as JSON-able values: ``{'layers': [...], 'input_shape': ...}``."""
        return {"layers": [{"type": l.type_name, **l.get_config()} for l in self.layers],
                "input_shape": None if self.input_shape is None else list(self.input_shape)}

    @classmethod
    def from_config(cls, config):
        layers = [layer_from_config(c) for c in config["layers"]]
        shape = config.get("input_shape")
        return cls(layers, input_shape=None if shape is None else tuple(shape))

    def save(self, path, metadata=None):
        """Save to ``path`` (.npz with JSON metadata, no pickle); :func:`fastnet.load` reads it."""
        from fastnet.io import save
        save(self, path, metadata=metadata)

    def _save_state(self):
        meta = {"kind": "sequential", "config": self.get_config(),
                "dtype": None if self._dtype is None else self._dtype.name,
                "opt_steps": int(self._opt_t)}
        arrays = {}
        if self.built:
            arrays["params"] = self.params
            if self._opt_state is not None:
                arrays["opt_state"] = self._opt_state
        return meta, arrays

    @classmethod
    def _from_saved(cls, meta, arrays):
        net = cls.from_config({**meta["config"], "input_shape": None})
        shape = meta["config"].get("input_shape")
        if shape is not None:
            net.build(tuple(shape), dtype=meta.get("dtype") or np.float64)
            params = np.asarray(arrays["params"])
            if params.shape != net.params.shape:
                raise ValueError(f"the saved parameters have shape {params.shape}; the saved "
                                 f"layers need {net.params.shape}: the file is damaged")
            net.params[...] = params
            if "opt_state" in arrays:
                net._opt_state = np.ascontiguousarray(arrays["opt_state"], dtype=net._dtype)
                net._opt_t = int(meta.get("opt_steps", 0))
        return net


def _weight_ranges(prog):
    """``(start, stop)`` of the weights (bias rows excluded) of every Dense and Conv2D row."""
    out = []
    for row in prog:
        if row[Prog.KIND] in (LayerKind.DENSE, LayerKind.CONV2D):
            start = int(row[Prog.POFF])
            out.append((start + int(row[Prog.OUT_C]), start + int(row[Prog.PLEN])))
    return out
