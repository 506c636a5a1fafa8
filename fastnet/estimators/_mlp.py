r"""The multi-layer perceptrons: :class:`MLPClassifier` and :class:`MLPRegressor`.

They take scikit-learn's parameters, with its names, meanings and defaults
(``from fastnet import MLPClassifier`` replaces ``from sklearn.neural_network
import MLPClassifier``), and the course's names as aliases.
"""
from __future__ import annotations

import types

import numpy as np

from fastnet.estimators._base import store_params
from fastnet.estimators._network import _NetworkClassifier, _NetworkRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]

_PARAMS_DOC = r"""
    Parameters (scikit-learn's names, the primary set)
    ---------------------------------------------------
    hidden_layer_sizes : tuple of int, default=(100,)
        Units of each hidden layer (``()``: no hidden layer).
    activation : {'relu', 'logistic', 'tanh', 'identity'} or list, default='relu'
        Hidden activation (fastnet also takes ``'sigmoid'`` and ``'linear'``,
        and a list with one per hidden layer).
    solver : {'adam', 'sgd'}, default='adam'
        ``'sgd'`` is stochastic gradient descent with ``momentum``
        (Nesterov's when ``nesterovs_momentum``); there is no ``'lbfgs'``.
    alpha : float >= 0, default=1e-4
        L2 strength: a batch of :math:`B` samples adds
        :math:`\frac{\alpha}{2B}\lVert W\rVert^2` to its mean loss (as
        scikit-learn), i.e. the course's :math:`\lambda = \alpha/B`.
    batch_size : int or 'auto', default='auto'
        ``'auto'`` is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        The schedule of the non-Adam solvers: ``'invscaling'``
        :math:`\eta_t = \eta_0 / (t + 1)^{power\_t}` (:math:`t` samples seen);
        ``'adaptive'`` divides :math:`\eta` by 5 whenever the cost (or the
        validation score) stalls, until :math:`10^{-6}`.
    learning_rate_init : float > 0, default=0.001
    power_t : float >= 0, default=0.5
    max_iter : int >= 1, default=200
        Most epochs.
    shuffle : bool, default=True
    random_state : int, numpy Generator or RandomState, or None, default=None
        Seeds the initial weights, the validation split and the shuffles.  An
        int, a RandomState or None (numpy's global RandomState, which
        ``np.random.seed`` seeds) draw as scikit-learn's MLPs draw: the same
        initial weights, the same validation part with ``early_stopping``
        and the same order in every epoch, so that a float64 fit is
        scikit-learn's fit to rounding (``dtype='float64'``; in float32 the
        same start and orders, float32's rounding).  As in scikit-learn, an
        int starts its stream again on each ``fit`` and ``partial_fit`` call.
        A numpy Generator draws in fastnet's way, one stream across calls.
    tol : float >= 0, default=1e-4
    verbose : bool or int, default=False
        True/1: a progress bar (epoch, loss, accuracy, samples/s) once
        training has lasted two seconds; 2: from the start.
    warm_start : bool, default=False
        ``fit`` starts from the fitted weights, with a fresh optimiser (as
        scikit-learn's; ``partial_fit`` carries the optimiser's state on).
    momentum : float in [0, 1), default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for
        classifiers) and stop when its score (accuracy; :math:`R^2` for
        regressors) has not improved by ``tol`` for ``n_iter_no_change``
        epochs; the best weights are kept.
    validation_fraction : float in (0, 1), default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's.
    n_iter_no_change : int >= 1, default=10
        Training stops (scikit-learn's rule) once the cost has not improved
        by more than ``tol`` for more than ``n_iter_no_change`` epochs in a row.
    max_fun : int, default=15000
        Accepted for compatibility (L-BFGS only; unused).

    Parameters (fastnet's and the course's)
    ---------------------------------------
    output_activation : {None, 'sigmoid', 'softmax'%(more_out)s}, default=%(out_default)r
        %(out_doc)s
    loss : str or None, default=None
        %(loss_doc)s
    penalty : {'l2', 'l1', None}, default='l2'
        The penalty ``alpha`` (or ``lam``) weighs; None: no penalty.
    lr, lam, max_epochs, optimizer : default=None
        The course's names of ``learning_rate_init``, the penalty's
        :math:`\lambda` (used as it is, not divided by the batch size),
        ``max_iter`` and the solver.  ``optimizer`` is one of ``'gd'``
        (full batches), ``'sgd'`` (plain, no momentum), ``'momentum'``,
        ``'nesterov'``, ``'rmsprop'``, ``'adam'``.  Giving both a course name
        and its scikit-learn counterpart is an error.
    rho : float in [0, 1), default=0.9
        RMSprop's decay (``optimizer='rmsprop'``).
    eps : float or None, default=None
        The course's name of ``epsilon``.
    track_accuracy : bool, default=False
        Record the training accuracy of each epoch in ``history_['train_acc']``
        (one forward pass over the training data per epoch).
    dtype : {'float32', 'float64'} or None, default='float32' (MLPClassifier), None (MLPRegressor)
        The precision the network trains in (fastnet's parameter).  float32,
        as PyTorch, JAX and Keras train by default, runs the matrix products at
        twice float64's speed and reached the same test accuracy on MNIST and
        digits (``BENCHMARKS.md``); ``None`` follows scikit-learn's rule
        (float32 input trains in float32, anything else in float64);
        ``'float64'`` always trains in float64.  ``coefs_`` are in this dtype;
        ``predict_proba`` of float64 input is float64 (rows summing to one),
        as scikit-learn's.  The regressor keeps the input's precision by
        default: its prediction is the number itself.

    Attributes
    ----------
    loss_, loss_curve_, best_loss_, n_iter_, t_ :
        The last cost, the cost of each epoch (every call's), the lowest one
        (None with early stopping), the epochs of the last ``fit`` or
        ``partial_fit`` call (scikit-learn's rule since 1.3), the samples seen
        in all calls.  The cost of an epoch is the mean loss of its batches plus
        the L2 term of the weights at the epoch's start (scikit-learn: before
        each batch).
    coefs_, intercepts_ : lists of ndarray
        Per-layer weights ``(n_in, n_out)`` and biases (views of ``params_``).
    validation_scores_, best_validation_score_ :
        With early stopping.
    n_features_in_, feature_names_in_, n_outputs_, n_layers_, out_activation_ :
        As scikit-learn's.%(classes_doc)s
    thetas_, model_ :
        The course's ``Theta`` matrices and model list ``[Theta1, ReLu, ...]``.
    history_ : fastnet.History
        ``'J'`` (cost per epoch), ``'seconds'``, ``'train_acc'`` (with
        ``track_accuracy``), ``'val_J'``, ``'val_score'``, ``'val_acc'``
        (with early stopping).
    params_, layer_sizes_, activations_, loss_function_, lr_ :
        The flat weights, the layer widths, every layer's activation (output
        last), the loss and the learning rate used.
"""


class _MLP:
    """The constructor shared by the two MLPs (scikit-learn's parameters, then fastnet's)."""

    # scikit-learn's draws from an int, None or a RandomState: its initial weights, and its
    # epochs' orders (each epoch shuffles the last one in place)
    _sklearn_draws = True

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 output_activation=None, loss=None, penalty="l2", lr=None, lam=None,
                 max_epochs=None, optimizer=None, rho=0.9, eps=None, track_accuracy=False,
                 dtype="float32"):
        store_params(self, locals())

    def _fit_dtype(self, arr):
        dt = self.dtype
        if dt is None:
            return super()._fit_dtype(arr)
        try:
            got = np.dtype(dt)
        except TypeError:
            got = None
        if isinstance(dt, bool) or got not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32', 'float64' or None (the input's: "
                             f"float32 stays float32, else float64), got {dt!r}")
        return got


class MLPClassifier(_MLP, _NetworkClassifier):
    __init__ = _MLP.__init__


MLPClassifier.__doc__ = r"""A multi-layer perceptron classifier: scikit-learn's, on the course's network.

    Forward propagation :math:`a^{(l+1)} = f(\Theta^{(l)} [1; a^{(l)}])`,
    backpropagation of the loss, trained by the chosen optimiser, one
    kernel call per epoch.  Two classes use one logistic output with the
    cross-entropy, more classes a softmax with the log-loss (as
    scikit-learn); ``output_activation='sigmoid'`` gives the course's K
    sigmoid outputs with the cross-entropy summed over them.  Weights start
    uniform in :math:`\pm\sqrt{6/(n_{in}+n_{out})}` (:math:`\sqrt{2/\ldots}`
    before a sigmoid), as scikit-learn's.  Labels may be of any type.
""" + _PARAMS_DOC % dict(
    more_out="", out_default=None,
    out_doc="None: a logistic unit for two classes, else softmax (scikit-learn's); "
            "'sigmoid': one sigmoid per class (the course's).",
    loss_doc="None: cross-entropy for sigmoid outputs, log-loss for softmax; also "
             "'quadratic'.",
    classes_doc="\n    classes_ : ndarray\n        The class labels, sorted.")


def _with_dtype_default(init, dtype):
    """``init`` with another default for ``dtype`` (the signature scikit-learn reads)."""
    f = types.FunctionType(init.__code__, init.__globals__, init.__name__, init.__defaults__,
                           init.__closure__)
    f.__kwdefaults__ = {**init.__kwdefaults__, "dtype": dtype}
    f.__qualname__, f.__doc__ = init.__qualname__, init.__doc__
    return f


class MLPRegressor(_MLP, _NetworkRegressor):
    # scikit-learn's estimator checks ask for float64 predictions of float64 input, and a
    # regression's answer is the number itself: the regressor keeps the input's precision
    __init__ = _with_dtype_default(_MLP.__init__, None)

    def _output_activation(self):
        if getattr(self, "output_activation", None) is None:
            return "linear"
        return super()._output_activation()


MLPRegressor.__doc__ = r"""A multi-layer perceptron regressor: scikit-learn's, on the course's network.

    Hidden layers and (by default) a linear output, the quadratic cost
    :math:`\frac{1}{2m}\sum_i \lVert a^{(i)} - y^{(i)}\rVert^2` (scikit-learn's
    ``'squared_error'``); ``y`` may have several columns.  Scale the targets
    (and features) to order one.
""" + _PARAMS_DOC % dict(
    more_out=", 'linear', 'relu', 'tanh'", out_default=None,
    out_doc="None: linear (scikit-learn's identity output).",
    loss_doc="None or 'squared_error': quadratic; 'cross_entropy' needs targets in [0, 1] and "
             "a sigmoid output.",
    classes_doc="")
