r"""The course's network functions, in numpy: the oracle for every backend.

A model is the course's list ``[Theta1, Sigmoid, Theta2, Sigmoid, ...]``
where ``Theta_l`` has shape ``(L_out, L_in + 1)`` with the bias in column 0.
Forward propagation of one layer is

.. math:: a^{(l+1)} = f\left(\Theta^{(l)} \begin{bmatrix}1 \\ a^{(l)}\end{bmatrix}\right)

and backpropagation, per sample, is

.. math::
    \delta^{(L)} = a^{(L)} - y, \qquad
    \delta^{(l)} = \left(\Theta^{(l)}_{:,1:}\right)^T \delta^{(l+1)} \odot f'(z^{(l)}), \qquad
    \Delta^{(l)} \mathrel{+}= \delta^{(l+1)} \begin{bmatrix}1 \\ a^{(l)}\end{bmatrix}^T

with gradients :math:`\Delta^{(l)} / m`.  The course's own code handles two
layers; this handles any depth and any mix of activations.
"""
import numpy as np

from fastnet._validation import (check_model, check_input_width, check_theta, check_labels,
                                 check_int, check_scalar, check_rng, resolve_activation)
from fastnet._args import (predict_args, prep_X, check_backprop_args, labels_from_outputs,
                           check_outputs, cast_weights)
from fastnet.reference.losses import PENALTIES

__all__ = ["init_weights", "one_hot", "forward", "predict", "accuracy", "backprop",
           "backprop_vectorized", "feedforward"]


def init_weights(L_in, L_out, epsilon=0.12, rng=None, dtype=np.float64):
    r"""Random weights for a layer with ``L_in`` inputs and ``L_out`` outputs.

    Uniform in :math:`[-\epsilon, \epsilon]` to break symmetry, as in the course::

        W = np.random.rand(L_out, 1 + L_in) * 2 * epsilon - epsilon

    Parameters
    ----------
    L_in, L_out : int
        Number of incoming and outgoing units (>= 1).
    epsilon : float
        Half-width of the interval (> 0).
    rng : None, int or numpy.random.Generator
        Seed or generator, for reproducible weights.
    dtype : float32 or float64

    Returns
    -------
    ndarray of shape (L_out, L_in + 1)
        Bias weights in column 0.
    """
    L_in = check_int(L_in, "L_in", lo=1)
    L_out = check_int(L_out, "L_out", lo=1)
    epsilon = check_scalar(epsilon, "epsilon", lo=0, lo_open=True)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    gen = check_rng(rng)
    return (gen.random((L_out, L_in + 1)) * 2 * epsilon - epsilon).astype(dtype, copy=False)


def one_hot(K, pos):
    """One-hot encoding, as the course's ``one_hot(K, pos)``.

    Parameters
    ----------
    K : int
        Number of classes.
    pos : int or array_like of int
        A label in ``0..K-1``, or an array of them.

    Returns
    -------
    ndarray
        A vector of length ``K`` for an int, a matrix ``(n, K)`` for ``n`` labels.
    """
    K = check_int(K, "K", lo=1)
    if np.ndim(pos) == 0:
        p = check_labels(np.array([pos]), "pos", n_classes=K)[0]
        y = np.zeros(K)
        y[p] = 1
        return y
    labels = check_labels(pos, "pos", n_classes=K)
    Y = np.zeros((labels.shape[0], K))
    Y[np.arange(labels.shape[0]), labels] = 1
    return Y


def forward(Theta, X, active):
    r"""One layer of forward propagation: :math:`f([1, X]\,\Theta^T)`.

    Parameters
    ----------
    Theta : ndarray (L_out, L_in + 1)
        Weights, bias in column 0.
    X : ndarray (m, L_in) or (L_in,)
        Inputs, one sample per row (or a single sample).
    active : activation
        ``Sigmoid``, ``ReLu``, ``TanH``, ``Linear`` (or ``Softmax``), or a name.

    Returns
    -------
    ndarray (m, L_out) or (L_out,)
    """
    act = resolve_activation(active, "active")
    theta = check_theta(Theta, "Theta")
    X_, single = prep_X(X)
    check_input_width(X_, [theta], "X", "Theta")
    A = check_outputs(_layer(cast_weights([theta], X_.dtype, "Theta")[0], X_, act), "the layer")
    return A[0] if single else A


def _layer(theta, X, act):
    r""":math:`f([1, X]\,\Theta^T)`, overflow not warned about (the callers check the result)."""
    X1 = np.concatenate((np.ones((X.shape[0], 1), dtype=X.dtype), X), axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        return act.f(X1 @ theta.T)


def feedforward(model, X):
    """Output of the whole network ``model`` for inputs ``X`` (the course's chain of ``forward``)."""
    thetas, acts = check_model(model)
    X_, single = prep_X(X)
    check_input_width(X_, thetas)
    A = X_
    for theta, act in zip(cast_weights(thetas, X_.dtype), acts):
        A = _layer(theta, A, act)
    check_outputs(A)
    return A[0] if single else A


def predict(model, X, *more):
    """Class labels (argmax of the network's output) for inputs ``X``.

    ``predict(model, X)`` with the course's model list, or
    ``predict(Theta1, Theta2, X)``: the MNIST slide's two-matrix form, the
    network ``[Theta1, Sigmoid, Theta2, Sigmoid]``.

    Parameters
    ----------
    model : list
        ``[Theta1, Sigmoid, Theta2, Sigmoid, ...]``.
    X : ndarray (m, n) or (n,)

    Returns
    -------
    ndarray of int64 (m,), or an int for a single sample.  A network with a
    single output predicts ``1`` where the output is at least 0.5.
    """
    model, X = predict_args(model, X, more)
    lab = labels_from_outputs(feedforward(model, X))
    return int(lab) if np.ndim(lab) == 0 else lab



def accuracy(y_, y):
    """Percentage of predictions ``y_`` equal to the labels ``y``.

    Returns
    -------
    float in [0, 100]
    """
    a = np.asarray(y_)
    b = np.asarray(y)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"y_ and y must be 1-D arrays of labels, got shapes {a.shape} and {b.shape}")
    if a.shape != b.shape:
        raise ValueError(f"y_ has {a.shape[0]} predictions but y has {b.shape[0]} labels; "
                         f"expected equal lengths")
    if a.size == 0:
        raise ValueError("y_ and y are empty; expected at least one label")
    ka, kb = _label_kind(a), _label_kind(b)
    if ka != kb:
        raise TypeError(f"y_ holds {ka} labels but y holds {kb} labels; expected labels of one "
                        f"type (a {ka} never equals a {kb})")
    return float(100.0 * np.mean(a == b))


def _label_kind(arr):
    """'number' or 'string' (the type labels of an array compare as)."""
    if arr.dtype.kind in "biuf":
        return "number"
    if arr.dtype.kind in "US":
        return "string"
    first = arr.flat[0]
    return "string" if isinstance(first, (str, bytes)) else "number"


def output_delta(a, z, y, act, loss):
    r"""Error term of the output layer, :math:`\partial \ell / \partial z^{(L)}` for one sample or a batch.

    ``a - y`` for a sigmoid output with cross-entropy (the course) and for a
    softmax output with log-loss; otherwise :math:`\ell'(a) \odot f'(z)`.
    ``loss.df`` averages over samples, so it is called per row here.
    """
    if (act.name == "sigmoid" and loss.name == "cross_entropy") or \
            (act.name == "softmax" and loss.name == "log_loss"):
        return a - y
    m = a.shape[0] if a.ndim == 2 else 1
    return (loss.df(a, y) * m).astype(a.dtype) * act.df(z)


def _penalise(J, grads, thetas, lam, pen):
    if pen is None or lam == 0:
        return J
    P = PENALTIES[pen]
    for l, theta in enumerate(thetas):
        J += P.f(theta, lam)
        grads[l] += P.df(theta, lam).astype(grads[l].dtype)
    return J


def backprop(model, X, y, lam=0.0, penalty=None, loss="cross_entropy"):
    r"""Cost and gradients of the network, sample by sample (the course's loop).

    Parameters
    ----------
    model : list
        ``[Theta1, act1, ..., ThetaL, actL]``, any depth >= 1.
    X : ndarray (m, n)
    y : ndarray (m,) of int labels 0..K-1, or (m, K) targets
        Labels are one-hot encoded; a single-output network takes 0/1 (or real) targets.
    lam : float >= 0
        Regularisation strength.
    penalty : {None, 'l2', 'l1'}
        ``'l2'`` adds :math:`\frac{\lambda}{2}\sum w^2` to J and :math:`\lambda w` to the
        gradient, ``'l1'`` adds :math:`\lambda\sum|w|` and :math:`\lambda\,\mathrm{sign}(w)`;
        the bias column is never penalised.
    loss : {'cross_entropy', 'quadratic', 'log_loss'}
        The course's cost is the cross-entropy summed over the K outputs,
        averaged over the m samples.

    Returns
    -------
    [J, grads]
        The cost (float) and a list of gradients aligned with the Thetas
        (:math:`\Delta^{(l)}/m` plus the penalty's gradient).
    """
    thetas, acts, X_, Y, lam, pen, L = check_backprop_args(model, X, y, lam, penalty, loss)
    m = X_.shape[0]
    dtype = X_.dtype
    Deltas = [np.zeros_like(t) for t in thetas]
    J = 0.0
    for i in range(m):
        # forward, keeping every layer's input (with bias) and pre-activation
        a = X_[i]
        inputs, zs = [], []
        for theta, act in zip(thetas, acts):
            a1 = np.concatenate(([dtype.type(1)], a))
            z = theta @ a1
            inputs.append(a1)
            zs.append(z)
            a = act.f(z)
        J += L.f(a, Y[i])
        delta = output_delta(a, zs[-1], Y[i], acts[-1], L)
        for l in range(len(thetas) - 1, -1, -1):
            Deltas[l] += np.outer(delta, inputs[l])
            if l > 0:
                delta = (thetas[l][:, 1:].T @ delta) * acts[l - 1].df(zs[l - 1])
    J /= m
    grads = [D / m for D in Deltas]
    J = _penalise(J, grads, thetas, lam, pen)
    return [J, grads]


def backprop_vectorized(model, X, y, lam=0.0, penalty=None, loss="cross_entropy"):
    """The same as :func:`backprop`, with the loop over samples replaced by matrix products.

    Agrees with :func:`backprop` to rounding (1e-12 relative in float64).
    """
    thetas, acts, X_, Y, lam, pen, L = check_backprop_args(model, X, y, lam, penalty, loss)
    m = X_.shape[0]
    dtype = X_.dtype
    A = X_
    inputs, zs = [], []
    for theta, act in zip(thetas, acts):
        A1 = np.concatenate((np.ones((A.shape[0], 1), dtype=dtype), A), axis=1)
        Z = A1 @ theta.T
        inputs.append(A1)
        zs.append(Z)
        A = act.f(Z)
    J = L.f(A, Y)
    delta = output_delta(A, zs[-1], Y, acts[-1], L)
    grads = [None] * len(thetas)
    for l in range(len(thetas) - 1, -1, -1):
        grads[l] = delta.T @ inputs[l] / m
        if l > 0:
            delta = (delta @ thetas[l][:, 1:]) * acts[l - 1].df(zs[l - 1])
    J = _penalise(J, grads, thetas, lam, pen)
    return [J, grads]
