r"""The course's perceptron, in numpy.

``weights[0]`` is the bias.  The neuron fires when
:math:`w_0 + \sum_i w_i x_i \ge 0`; the learning rule, applied sample by
sample, is :math:`w \leftarrow w + \eta\,(y - \hat y)\,[1, x]`.
"""
import numpy as np

from fastnet._validation import as_float_array, check_int, check_scalar, check_labels

__all__ = ["predict", "train"]


def _check_weights(weights, n_inputs, dtype=None):
    w = as_float_array(weights, "weights", ndim=1, dtype=dtype)
    if w.shape[0] != n_inputs + 1:
        raise ValueError(f"weights has {w.shape[0]} entries; expected {n_inputs + 1} "
                         f"(bias weights[0] + one weight per input)")
    return w


def predict(weights, inputs):
    """1.0 if the neuron fires for ``inputs``, else 0.0 (an array of them for a 2-D ``inputs``)."""
    x = as_float_array(inputs, "inputs", ndim=(1, 2))
    w = _check_weights(weights, x.shape[-1], x.dtype)
    act = x @ w[1:] + w[0]
    out = (act >= 0).astype(x.dtype)
    return float(out) if out.ndim == 0 else out


def check_train_args(weights, X, y, epochs, lr):
    X_ = as_float_array(X, "X", ndim=2)
    lab = check_labels(y, "y", n_samples=X_.shape[0], n_classes=2).astype(X_.dtype)
    w = _check_weights(weights, X_.shape[1], X_.dtype).copy()
    epochs = check_int(epochs, "epochs", lo=1)
    lr = check_scalar(lr, "lr", lo=0, lo_open=True)
    return X_, lab, w, epochs, lr


def store_weights(weights, w):
    """``w`` into ``weights`` in place when it is a writable float array (returned), else ``w``."""
    if isinstance(weights, np.ndarray) and weights.flags.writeable and weights.dtype.kind == "f":
        weights[...] = w
        return weights
    return w


def train(weights, X, y, epochs=100, lr=1.0):
    """The perceptron rule, sample by sample, for ``epochs`` passes (stops after an epoch with no error).

    Parameters
    ----------
    weights : array (n + 1,)
        Updated in place when it is a float ndarray.
    X : array (m, n)
    y : array (m,) of 0/1 labels
    epochs : int >= 1
    lr : float > 0

    Returns
    -------
    ndarray (n + 1,)
        The trained weights.
    """
    X_, lab, w, epochs, lr = check_train_args(weights, X, y, epochs, lr)
    t = w.dtype.type
    for _ in range(epochs):
        errors = 0
        for x, target in zip(X_, lab):
            update = t(lr) * (target - (t(1) if w[0] + x @ w[1:] >= 0 else t(0)))
            if update != 0:
                w[1:] += update * x
                w[0] += update
                errors += 1
        if errors == 0:
            break
    return store_weights(weights, w)
