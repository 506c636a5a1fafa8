r"""The kernel contract, implemented in numpy for reading: the oracle.

Every backend (``reference`` here, ``numba`` in :mod:`fastnet._numba.kernels`,
``cython`` in :mod:`fastnet._cython.backend`) registers the functions named
in :data:`fastnet._backend.KERNEL_NAMES` with exactly these signatures and
in-place conventions.  The public API validates and converts its inputs
first, so kernels may assume:

* float arrays are C-contiguous and share one dtype ``T`` (float32 or
  float64) within a call; integer arrays (``sizes``, ``kinds``, ``order``)
  are C-contiguous int64;
* shapes are consistent, data are finite, hyper-parameters are in range.

Conventions
-----------
Networks use the flat layout of :mod:`fastnet._params`: ``sizes`` =
``[n0, ..., nL]``; ``params`` holds, for each layer, ``W_l = Theta_l.T`` of
shape ``(n_l + 1, n_{l+1})`` with the bias in row 0; ``grad`` and ``state``
has the layout of ``params``; ``state`` (the optimiser's memory) is
``2 * len(params)`` long: momentum, Nesterov and RMSprop use its first half,
Adam both halves.  The integer codes are the enums of :mod:`fastnet._codes`:
``kinds[l]`` is layer ``l``'s :class:`~fastnet._codes.Act` (SOFTMAX last layer
only, with LOG_LOSS); :class:`~fastnet._codes.Loss`: cross-entropy (binary,
summed over outputs), quadratic (:math:`\tfrac12\lVert a-y\rVert^2`),
log-loss (categorical); :class:`~fastnet._codes.Penalty`: none, L2, L1;
:class:`~fastnet._codes.Optimizer`: sgd, momentum, RMSprop, Adam, Nesterov.

Losses are returned as float64 *sums* over samples (the caller divides by
``m``); they are accumulated in float64 from the ``T`` activations, logs
clipped at ``LOG_CLIP`` = 1e-15.  The output error term is ``a - y`` for
sigmoid + cross-entropy and softmax + log-loss, otherwise
:math:`\ell'(a)\odot f'(z)` with :math:`\ell'` the derivative of the clipped
loss (see :mod:`fastnet.reference.losses`).
"""
import numpy as np

from fastnet._codes import Act, Loss, Penalty, Optimizer
from fastnet._params import layer_views
from fastnet.reference.activations import ACTIVATIONS
from fastnet.reference.losses import LOG_CLIP

_ACT = {cls.code: cls for cls in ACTIVATIONS.values()}


# --------------------------------------------------------------------- elementwise
def activation(kind, Z, out):
    """``out[...] = f(Z)`` for activation code ``kind``.

    ``Z`` and ``out`` have the same shape (``out`` may be ``Z``).  For
    softmax (4), ``Z`` is 2-D and the softmax is taken over each row.
    """
    out[...] = _ACT[kind].f(Z)


def activation_grad(kind, Z, out):
    """``out[...] = f'(Z)`` elementwise, for codes 0..3 (not softmax)."""
    if kind == Act.SOFTMAX:
        raise ValueError("activation_grad: softmax has no elementwise derivative")
    out[...] = _ACT[kind].df(Z)


def _loss_terms(loss_kind, A, Y):
    A = A.astype(np.float64)
    Y = Y.astype(np.float64)
    if loss_kind == Loss.CROSS_ENTROPY:
        return -Y * np.log(np.maximum(A, LOG_CLIP)) - (1 - Y) * np.log(np.maximum(1 - A, LOG_CLIP))
    if loss_kind == Loss.QUADRATIC:
        return 0.5 * (A - Y) ** 2
    return -Y * np.log(np.maximum(A, LOG_CLIP))


def loss(loss_kind, A, Y):
    """Sum over all samples and outputs of the loss ``loss_kind`` (float64).

    ``A`` and ``Y`` are ``(m, K)``.
    """
    return float(np.sum(_loss_terms(loss_kind, A, Y)))


def loss_grad_a(loss_kind, A, Y):
    """d(per-sample loss)/da of the clipped loss, in the dtype of A (a helper, not a kernel)."""
    if loss_kind == Loss.QUADRATIC:
        return A - Y
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(A > LOG_CLIP, -Y / A, 0)
        if loss_kind == Loss.CROSS_ENTROPY:
            g = g + np.where(1 - A > LOG_CLIP, (1 - Y) / (1 - A), 0)
    return g.astype(A.dtype)


def _output_delta(kind, loss_kind, A, Z, Y):
    if (kind, loss_kind) in ((Act.SIGMOID, Loss.CROSS_ENTROPY), (Act.SOFTMAX, Loss.LOG_LOSS)):
        return A - Y
    return loss_grad_a(loss_kind, A, Y) * _ACT[kind].df(Z)


# --------------------------------------------------------------- penalty, optimiser
def penalty_value(penalty_kind, lam, params, sizes):
    r"""The penalty of all weights (bias rows excluded), float64.

    L2: :math:`\frac{\lambda}{2}\sum w^2`; L1: :math:`\lambda\sum|w|`; none: 0.
    """
    if penalty_kind == Penalty.NONE or lam == 0:
        return 0.0
    total = 0.0
    for W in layer_views(params, sizes):
        w = W[1:].astype(np.float64)
        total += lam / 2 * np.sum(w * w) if penalty_kind == Penalty.L2 else lam * np.sum(np.abs(w))
    return float(total)


def penalty_grad(penalty_kind, lam, params, sizes, grad):
    r"""``grad += d(penalty)/d(params)`` in place: :math:`\lambda w` (L2) or
    :math:`\lambda\,\mathrm{sign}(w)` (L1); bias rows get nothing."""
    if penalty_kind == Penalty.NONE or lam == 0:
        return
    lam = params.dtype.type(lam)
    for W, G in zip(layer_views(params, sizes), layer_views(grad, sizes)):
        G[1:] += lam * W[1:] if penalty_kind == Penalty.L2 else lam * np.sign(W[1:])


def optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps, t):
    r"""One update of ``params`` (and ``state``) in place from the gradient ``g = grad``.

    * SGD: :math:`w \leftarrow w - \eta g`
    * MOMENTUM: :math:`v \leftarrow \mu v - \eta g,\; w \leftarrow w + v`
    * NESTEROV (scikit-learn's form): :math:`v \leftarrow \mu v - \eta g,\;
      w \leftarrow w + \mu v - \eta g`
    * RMSPROP: :math:`s \leftarrow \rho s + (1-\rho) g^2,\;
      w \leftarrow w - \eta g / (\sqrt{s} + \epsilon)`
    * ADAM (Kingma and Ba; :math:`\beta_1 = \mu`, :math:`\beta_2 = \rho`):
      :math:`m \leftarrow \beta_1 m + (1-\beta_1) g,\;
      v \leftarrow \beta_2 v + (1-\beta_2) g^2,\;
      w \leftarrow w - \eta_t\, m / (\sqrt{v} + \epsilon)` with
      :math:`\eta_t = \eta \sqrt{1-\beta_2^{t+1}} / (1-\beta_1^{t+1})`.

    ``state`` has length ``2 * len(params)``: ``v``/``s``/``m`` in its first
    half, Adam's ``v`` in its second.  ``t`` is the number of steps taken
    before this one (only Adam uses it).  :math:`\eta_t` is computed in
    float64; every other scalar is applied in the dtype of ``params``.
    """
    T = params.dtype.type
    n = params.shape[0]
    s1, s2 = state[:n], state[n:]
    lr_, mu_, rho_, eps_ = T(lr), T(mu), T(rho), T(eps)
    if optimizer == Optimizer.SGD:
        params -= lr_ * grad
    elif optimizer in (Optimizer.MOMENTUM, Optimizer.NESTEROV):
        s1 *= mu_
        s1 -= lr_ * grad
        if optimizer == Optimizer.MOMENTUM:
            params += s1
        else:
            params += mu_ * s1 - lr_ * grad
    elif optimizer == Optimizer.RMSPROP:
        s1 *= rho_
        s1 += (T(1) - rho_) * grad * grad
        params -= lr_ * grad / (np.sqrt(s1) + eps_)
    else:
        s1 *= mu_
        s1 += (T(1) - mu_) * grad
        s2 *= rho_
        s2 += (T(1) - rho_) * grad * grad
        lr_t = T(adam_lr(lr, mu, rho, t))
        params -= lr_t * s1 / (np.sqrt(s2) + eps_)


def adam_lr(lr, beta1, beta2, t):
    r"""Adam's bias-corrected step :math:`\eta\sqrt{1-\beta_2^{t+1}}/(1-\beta_1^{t+1})` (float64)."""
    k = float(t) + 1.0
    return float(lr) * np.sqrt(1.0 - float(beta2) ** k) / (1.0 - float(beta1) ** k)


# ------------------------------------------------------------------------ networks
def _forward_all(params, sizes, kinds, X):
    """Inputs, pre-activations and activations of every layer for a batch."""
    A = X
    ins, zs = [], []
    for W, kind in zip(layer_views(params, sizes), kinds):
        Z = A @ W[1:] + W[0]
        ins.append(A)
        zs.append(Z)
        A = _ACT[int(kind)].f(Z)
    return ins, zs, A


def forward_network(params, sizes, kinds, X, out):
    """``out[...]`` = the network's output for the batch ``X`` (m, n0); ``out`` is (m, nL)."""
    out[...] = _forward_all(params, sizes, kinds, X)[2]


def backprop_samples(params, sizes, kinds, loss_kind, X, Y, grad):
    """The course's backprop: a loop over samples accumulating outer products.

    Overwrites ``grad`` with the *sum* over samples of each sample's gradient
    (no averaging, no penalty) and returns the summed loss (float64).
    """
    Ws = layer_views(params, sizes)
    Gs = layer_views(grad, sizes)
    for G in Gs:
        G[...] = 0
    L = len(Ws)
    total = 0.0
    for i in range(X.shape[0]):
        a = X[i]
        ins, zs = [], []
        for W, kind in zip(Ws, kinds):
            z = a @ W[1:] + W[0]
            ins.append(a)
            zs.append(z)
            a = _ACT[int(kind)].f(z)
        total += loss(loss_kind, a[None, :], Y[i][None, :])
        delta = _output_delta(int(kinds[-1]), loss_kind, a[None, :], zs[-1][None, :],
                              Y[i][None, :])[0]
        for l in range(L - 1, -1, -1):
            Gs[l][0] += delta
            Gs[l][1:] += np.outer(ins[l], delta)
            if l > 0:
                delta = (Ws[l][1:] @ delta) * _ACT[int(kinds[l - 1])].df(zs[l - 1])
    return total


def backprop_batch(params, sizes, kinds, loss_kind, X, Y, grad):
    """The same result as :func:`backprop_samples`, computed with matrix products."""
    Ws = layer_views(params, sizes)
    Gs = layer_views(grad, sizes)
    ins, zs, A = _forward_all(params, sizes, kinds, X)
    total = loss(loss_kind, A, Y)
    delta = _output_delta(int(kinds[-1]), loss_kind, A, zs[-1], Y)
    for l in range(len(Ws) - 1, -1, -1):
        Gs[l][0] = delta.sum(axis=0)
        Gs[l][1:] = ins[l].T @ delta
        if l > 0:
            delta = (delta @ Ws[l][1:].T) * _ACT[int(kinds[l - 1])].df(zs[l - 1])
    return total


def train_epoch(params, sizes, kinds, loss_kind, X, Y, order, batch_size, optimizer,
                lr, mu, rho, eps, penalty_kind, lam, state, t):
    """One epoch of (mini-)batch training, updating ``params`` and ``state`` in place.

    The samples ``order[0:bs], order[bs:2bs], ...`` form the batches (the
    last one may be smaller).  For each batch: the summed gradient is
    computed as by :func:`backprop_batch`, divided by the batch's size, the
    penalty's gradient is added (:func:`penalty_grad`), and
    :func:`optimizer_step` updates the weights, the ``b``-th batch of the
    epoch as step ``t + b``.  ``batch_size`` 1 is the course's online
    learning; ``batch_size >= len(order)`` is full-batch gradient descent.

    Returns
    -------
    float
        The sum over samples of the data loss, each measured with the
        weights before its batch's update (no penalty).  The caller's step
        count advances by the number of batches, ``ceil(len(order) / batch_size)``.
    """
    m = order.shape[0]
    grad = np.empty_like(params)
    total = 0.0
    for b, start in enumerate(range(0, m, batch_size)):
        idx = order[start:start + batch_size]
        total += backprop_batch(params, sizes, kinds, loss_kind, X[idx], Y[idx], grad)
        grad /= params.dtype.type(idx.shape[0])
        penalty_grad(penalty_kind, lam, params, sizes, grad)
        optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps, t + b)
    return total


# ------------------------------------------------------------------- linear models
def linear_gd(X, y, theta, lr, tol, max_iter, logistic, history):
    r"""Batch gradient descent for linear (``logistic=False``) or logistic regression.

    ``X`` is (m, n) *without* the bias column; ``theta`` (n + 1,) holds the
    bias in ``theta[0]`` (the course's :math:`x_0 = 1`) and is updated in
    place.  Each iteration ``it`` computes, at the current ``theta``,

    * linear: :math:`h = X_1\theta`, :math:`J = \frac{1}{2m}\lVert h - y\rVert^2`;
    * logistic: :math:`h = \sigma(X_1\theta)`,
      :math:`J = -\frac{1}{m}\sum y\log h + (1-y)\log(1-h)` (logs clipped);

    stores ``history[it] = J``, then steps
    :math:`\theta \leftarrow \theta - \frac{\eta}{m} X_1^T (h - y)`.  It stops
    after the step of the first iteration ``it >= 1`` with
    ``|history[it] - history[it-1]| < tol``, or after ``max_iter`` iterations;
    it returns at once, without stepping, when ``J`` is not finite.

    Returns
    -------
    int
        The number of iterations run (entries of ``history`` written).
    """
    m = X.shape[0]
    t = theta.dtype.type
    for it in range(max_iter):
        h = X @ theta[1:] + theta[0]
        if logistic:
            h = _ACT[Act.SIGMOID].f(h)
            J = loss(Loss.CROSS_ENTROPY, h[:, None], y[:, None]) / m
        else:
            r = (h - y).astype(np.float64)
            J = 0.5 * float(r @ r) / m
        history[it] = J
        if not np.isfinite(J):
            return it + 1
        r = h - y
        theta[0] -= t(lr) * (r.sum() / t(m))
        theta[1:] -= t(lr) * ((X.T @ r) / t(m))
        if it >= 1 and abs(history[it] - history[it - 1]) < tol:
            return it + 1
    return max_iter


def perceptron_train(X, y, w, epochs, lr, errors):
    r"""The perceptron rule, sample by sample, updating ``w`` in place.

    ``w`` (n + 1,) holds the bias in ``w[0]``; labels ``y`` are 0/1 (dtype of
    ``w``).  For each sample: predict :math:`\hat y = [w_0 + w_{1:}\cdot x \ge 0]`,
    then :math:`w_{1:} \mathrel{+}= \eta (y - \hat y) x`,
    :math:`w_0 \mathrel{+}= \eta (y - \hat y)`.  ``errors[e]`` counts the
    samples misclassified during epoch ``e``.  An epoch with no error
    leaves ``w`` unchanged, so training stops there.

    Returns
    -------
    int
        The number of epochs run (entries of ``errors`` written).
    """
    t = w.dtype.type
    for e in range(epochs):
        n_err = 0
        for i in range(X.shape[0]):
            pred = t(1) if w[0] + X[i] @ w[1:] >= 0 else t(0)
            upd = t(lr) * (y[i] - pred)
            if upd != 0:
                w[1:] += upd * X[i]
                w[0] += upd
                n_err += 1
        errors[e] = n_err
        if n_err == 0:
            return e + 1
    return epochs


KERNELS = {name: globals()[name] for name in (
    "activation", "activation_grad", "loss", "penalty_value", "penalty_grad", "optimizer_step",
    "forward_network", "backprop_samples", "backprop_batch", "train_epoch", "linear_gd",
    "perceptron_train")}

# Many epochs in one call (the epoch loop's shuffle, backup and rules around train_epoch).
from fastnet.reference.epochs import train_epochs  # noqa: E402

KERNELS["train_epochs"] = train_epochs

# The word2vec kernels (skip-gram / CBOW with negative sampling).
from fastnet.reference.word2vec_kernels import KERNELS as _W2V_KERNELS  # noqa: E402

KERNELS.update(_W2V_KERNELS)

# The convolution, pooling and layer-program kernels (fastnet.layers, fastnet.Sequential).
from fastnet.reference.conv import KERNELS as _CONV_KERNELS  # noqa: E402

KERNELS.update(_CONV_KERNELS)

# The recurrent kernels (RNN and LSTM, BPTT).
from fastnet.reference.rnn import KERNELS as _RNN_KERNELS  # noqa: E402

KERNELS.update(_RNN_KERNELS)
