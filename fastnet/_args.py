"""Argument handling shared by the API layer and the reference (the oracle may use it too).

* :func:`prep_X`: one sample or a batch of inputs, as a 2-D float array;
* :func:`check_backprop_args`: the checked arguments of ``backprop``;
* :class:`TrainingArgs`: the checked arguments of the training loops;
* :func:`labels_from_outputs`: the one "labels from outputs" rule (``>= 0.5`` for a
  single output, else the argmax);
* :func:`write_back`: trained weights into the user's model list;
* :func:`make_loops`: the course's named loops as thin calls of a ``train``.
"""
import numpy as np

from fastnet._validation import (as_float_array, check_distributions, check_model,
                                 check_input_width, check_targets, check_scalar, check_int,
                                 check_choice, check_rng)
from fastnet.reference.losses import LOSSES

__all__ = ["prep_X", "check_backprop_args", "TrainingArgs", "OPTIMIZERS", "labels_from_outputs",
           "write_back", "make_loops", "cast_weights", "start_rows", "check_outputs", "predict_args"]

#: The optimisers of the training loops ('gd' is full-batch 'sgd').
OPTIMIZERS = ("gd", "sgd", "momentum", "rmsprop", "adam", "nesterov")


def cast_weights(thetas, dtype, name="model"):
    """The weight matrices in ``dtype`` (the data's); a cast that overflows is an error.

    Weights that are finite in float64 but too large for float32 would become
    ``inf`` on the cast: that is reported here, as what it is, rather than
    later as a diverging training run.
    """
    dtype = np.dtype(dtype)
    out = []
    for l, theta in enumerate(thetas):
        t = np.asarray(theta)
        if t.dtype != dtype:
            with np.errstate(over="ignore"):
                c = t.astype(dtype)
            if not np.isfinite(c).all():
                big = float(np.max(np.abs(t.astype(np.float64))))
                raise ValueError(
                    f"{name}[{2 * l}] holds values up to {big:.3g}, which overflow "
                    f"{dtype.name} (the dtype of X, the computation's dtype; its largest value "
                    f"is {np.finfo(dtype).max:.3g}): pass X as float64, or rescale the weights")
            t = c
        out.append(t)
    return out


def labels_from_outputs(out):
    """Class labels of network outputs ``out`` (..., K): ``out >= 0.5`` when K is 1, else argmax."""
    out = np.asarray(out)
    if out.shape[-1] == 1:
        return (out[..., 0] >= 0.5).astype(np.int64)
    return np.argmax(out, axis=-1).astype(np.int64)


def check_outputs(out, what="the network"):
    """Raise ``FloatingPointError`` when a forward pass gave non-finite outputs.

    Finite weights and inputs give a non-finite output only when a value on
    the way (a hidden unit, or the output before its activation) overflowed
    the dtype: that is an error, never a silent NaN.
    """
    if not np.isfinite(out).all():
        dt = np.dtype(out.dtype)
        raise FloatingPointError(
            f"the forward pass of {what} overflowed: a hidden or output value exceeded the "
            f"largest {dt.name} ({np.finfo(dt).max:.3g}) and the outputs are not finite; "
            f"scale the inputs, check the weights' size, or compute in float64")
    return out


def predict_args(model, X, more):
    """``(model, X)`` from ``predict``'s arguments: ``(model, X)`` or ``(Theta1, Theta2, X)``.

    The two-matrix form is the MNIST slide's network ``[Theta1, Sigmoid, Theta2, Sigmoid]``.
    """
    if not more:
        return model, X
    if len(more) > 1:
        raise TypeError(f"predict takes (model, X) or (Theta1, Theta2, X), got {2 + len(more)} "
                        f"arguments")
    if isinstance(model, (list, tuple)):
        raise TypeError("predict(Theta1, Theta2, X) takes two weight matrices and the inputs; "
                        "for a model list call predict(model, X)")
    from fastnet.reference.activations import Sigmoid
    return [model, Sigmoid, X, Sigmoid], more[0]


def prep_X(X, name="X"):
    """``(X2d, single)``: ``X`` as a 2-D float array, and whether it was one sample."""
    Xa = as_float_array(X, name, ndim=(1, 2))  # names X for None, ragged lists, strings...
    single = Xa.ndim == 1
    return (Xa.reshape(1, -1) if single else Xa), single


def check_backprop_args(model, X, y, lam, penalty, loss):
    """The checked arguments of ``backprop``: thetas, acts, X, Y, lam, penalty, loss class."""
    thetas, acts = check_model(model)
    X_ = as_float_array(X, "X", ndim=2)
    check_input_width(X_, thetas)
    dtype = X_.dtype
    thetas = cast_weights(thetas, dtype)
    Y = check_targets(y, X_.shape[0], thetas[-1].shape[0], dtype)
    lam = check_scalar(lam, "lam", lo=0)
    pen = check_choice(penalty, "penalty", (None, "none", "l1", "l2"))
    pen = None if pen == "none" else pen
    loss_name = check_choice(loss, "loss", tuple(LOSSES))
    if acts[-1].name == "softmax" and loss_name != "log_loss":
        raise ValueError(f"loss must be 'log_loss' with a Softmax output layer, got {loss!r}")
    if acts[-1].name == "softmax":
        check_distributions(Y)
    return thetas, acts, X_, Y, lam, pen, LOSSES[loss_name]


class TrainingArgs:
    """Validated arguments of a training loop (shared by reference and compiled loops)."""

    def __init__(self, model, X, y, optimizer, lr, epochs, batch_size, momentum, rho, eps, lam,
                 penalty, loss, tol, shuffle, rng, X_test, y_test, beta1=0.9, beta2=0.999):
        self.thetas, self.acts = check_model(model)
        if not isinstance(model, list):
            raise TypeError("model must be a list (it is updated in place), got a "
                            f"{type(model).__name__}")
        self.X = as_float_array(X, "X", ndim=2)
        check_input_width(self.X, self.thetas)
        self.dtype = self.X.dtype
        self.thetas = cast_weights(self.thetas, self.dtype)
        m = self.X.shape[0]
        K = np.shape(self.thetas[-1])[0]
        self.Y = check_targets(y, m, K, self.dtype)
        self.optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
        self.lr = check_scalar(lr, "lr", lo=0, lo_open=True)
        self.epochs = check_int(epochs, "epochs", lo=1)
        if batch_size is None:
            batch_size = 1 if self.optimizer == "sgd" else m
        self.batch_size = min(check_int(batch_size, "batch_size", lo=1), m)
        if self.optimizer == "gd":
            self.batch_size = m
        self.momentum = check_scalar(momentum, "momentum", lo=0, hi=1, hi_open=True)
        self.rho = check_scalar(rho, "rho", lo=0, hi=1, hi_open=True)
        self.eps = check_scalar(eps, "eps", lo=0, lo_open=True)
        beta1 = check_scalar(beta1, "beta1", lo=0, hi=1, hi_open=True)
        beta2 = check_scalar(beta2, "beta2", lo=0, hi=1, hi_open=True)
        # the kernels' (mu, rho): Adam's betas for 'adam', else momentum and RMSprop's decay
        self.mu, self.rho2 = (beta1, beta2) if self.optimizer == "adam" else \
            (self.momentum, self.rho)
        self.lam = check_scalar(lam, "lam", lo=0)
        pen = check_choice(penalty, "penalty", (None, "none", "l1", "l2"))
        self.penalty = None if pen == "none" else pen
        self.loss = check_choice(loss, "loss", tuple(LOSSES))
        if self.acts[-1].name == "softmax" and self.loss != "log_loss":
            raise ValueError(f"loss must be 'log_loss' with a Softmax output layer, got {loss!r}")
        if self.acts[-1].name == "softmax":
            check_distributions(self.Y)
        self.tol = check_scalar(tol, "tol", lo=0, allow_none=True)
        self.shuffle = bool(shuffle) and self.batch_size < m
        self.rng = check_rng(rng)
        self.labels = self._labels(y, self.Y)
        self.X_test = self.y_test = None
        if (X_test is None) != (y_test is None):
            raise ValueError("X_test and y_test must be given together")
        if X_test is not None:
            self.X_test = as_float_array(X_test, "X_test", ndim=2, dtype=self.dtype)
            check_input_width(self.X_test, self.thetas, "X_test")
            Yt = check_targets(y_test, self.X_test.shape[0], K, self.dtype, "y_test")
            self.y_test = self._labels(y_test, Yt)

    @staticmethod
    def _labels(y, Y):
        return labels_from_outputs(Y)

    def order(self, m):
        """The sample order of one epoch (draws from ``rng`` only when shuffling): the last
        epoch's order shuffled in place, from ``0..m-1`` (as the compiled loops)."""
        if self.shuffle:
            perm = getattr(self, "_perm", None)
            if perm is None or perm.shape[0] != m:
                perm = self._perm = np.arange(m, dtype=np.int64)
            self.rng.shuffle(perm)
            return perm.copy()
        return np.arange(m, dtype=np.int64)


def start_rows(m):
    """The samples on which the cost before training is measured (the divergence rule's J_0)."""
    from fastnet._history import START_SAMPLES
    return slice(0, min(m, START_SAMPLES))


def write_back(model, thetas):
    """Store trained weights into the model list: in place when possible, else replace the entry."""
    for l, theta in enumerate(thetas):
        cur = model[2 * l]
        if isinstance(cur, np.ndarray) and cur.flags.writeable and cur.dtype.kind == "f" \
                and cur.shape == theta.shape:
            cur[...] = theta
        else:
            model[2 * l] = theta


def make_loops(train):
    """The course's named loops, each a thin call of ``train`` (reference or compiled)."""

    def gradient_descent(model, X, y, lr=0.1, tol=1e-6, max_epochs=1000, **kw):
        """Full-batch gradient descent until :math:`|\\Delta J| < tol` or ``max_epochs``."""
        return train(model, X, y, optimizer="gd", lr=lr, tol=tol, epochs=max_epochs, **kw)

    def train_online(model, X, y, lr=0.1, epochs=10, **kw):
        """Online learning: one update per sample (shuffled each epoch)."""
        return train(model, X, y, optimizer="sgd", batch_size=1, lr=lr, epochs=epochs, **kw)

    def train_minibatch(model, X, y, batch_size=32, lr=0.1, epochs=10, **kw):
        """Mini-batch stochastic gradient descent."""
        return train(model, X, y, optimizer="sgd", batch_size=batch_size, lr=lr, epochs=epochs,
                     **kw)

    def train_momentum(model, X, y, batch_size=32, lr=0.1, momentum=0.9, epochs=10, **kw):
        """Mini-batch gradient descent with momentum."""
        return train(model, X, y, optimizer="momentum", batch_size=batch_size, lr=lr,
                     momentum=momentum, epochs=epochs, **kw)

    def train_rmsprop(model, X, y, batch_size=32, lr=0.001, rho=0.9, eps=1e-8, epochs=10, **kw):
        """Mini-batch RMSprop."""
        return train(model, X, y, optimizer="rmsprop", batch_size=batch_size, lr=lr, rho=rho,
                     eps=eps, epochs=epochs, **kw)

    return gradient_descent, train_online, train_minibatch, train_momentum, train_rmsprop
