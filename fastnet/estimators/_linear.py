r"""Linear and logistic regression as estimators: the course's networks without a hidden layer.

Trained by gradient descent from zero weights (``lr='auto'`` picks a step
that converges whatever the features' scale).  They take their scikit-learn
counterparts' main parameters (``fit_intercept``, ``max_iter``, ``tol``,
``C``, ``warm_start``) and the course's (``optimizer``, ``lr``, ``penalty``,
``lam``, ``max_epochs``).
"""
from __future__ import annotations

from fastnet._params import layer_views
from fastnet.estimators._base import store_params
from fastnet.estimators._network import _NetworkClassifier, _NetworkRegressor

__all__ = ["LinearRegression", "LogisticRegression"]

_COMMON_DOC = r"""
    fit_intercept : bool, default=True
        False keeps the bias at 0 (full-batch optimisers only).
    max_iter : int >= 1, default=1000
        Most epochs (gradient-descent steps for ``optimizer='gd'``); the
        course's name ``max_epochs`` is accepted too.
    tol : float >= 0, default=1e-6
        Stop when the cost changed by less than ``tol`` for
        ``n_iter_no_change`` epochs in a row (the course's rule).
    optimizer : {'gd', 'sgd', 'momentum', 'nesterov', 'rmsprop', 'adam'}, default='gd'
        ``'gd'``: full-batch gradient descent; the others take (mini-)batches
        of ``batch_size`` (1: online learning; None: 32).
    lr : float > 0 or 'auto', default='auto'
        Learning rate :math:`\eta`.  ``'auto'``: :math:`1/L` with :math:`L` a
        bound on the cost's curvature (the largest eigenvalue of
        :math:`\tilde X^T\tilde X/m` for full batches), which converges
        whatever the scale of the features; the value used is ``lr_``.
    batch_size, momentum, rho, eps :
        Samples per update; the momentum :math:`\mu`; RMSprop's decay; the
        :math:`\epsilon` of RMSprop and Adam.
    n_iter_no_change : int >= 1, default=1
    early_stopping, validation_fraction, shuffle, warm_start :
        As :class:`fastnet.MLPClassifier`'s.
    random_state : int, numpy Generator or RandomState, or None
        Seeds the shuffles and the validation split (fastnet's draws: the
        weights start at zero, so there is no scikit-learn start to replay).
    verbose : bool or int, default=0
        A progress bar once training has lasted two seconds.
"""

_ATTRS_DOC = r"""
    Attributes
    ----------
    coef_, intercept_ :
        As scikit-learn's.
    n_iter_, loss_, loss_curve_, n_features_in_, history_, lr_ :
        Epochs of the last ``fit`` call, the last cost, the cost of each epoch, the number of
        features, fastnet's record of the run, the learning rate used.
    params_, thetas_, model_ :
        The weights: flat, as the course's ``Theta``, as the course's model list.
"""


class LinearRegression(_NetworkRegressor):
    _init_zero = True
    _lr_auto = True
    _max_iter_default = 1000
    _stop_rule = "delta"

    def __init__(self, *, fit_intercept=True, max_iter=1000, tol=1e-6, optimizer="gd",
                 lr="auto", batch_size=None, momentum=0.9, rho=0.9, eps=1e-8, penalty=None,
                 lam=1e-4, max_epochs=None, n_iter_no_change=1, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, random_state=None, verbose=0,
                 warm_start=False):
        store_params(self, locals())

    def _output_activation(self):
        return "linear"

    def _loss_name(self, output):
        return "quadratic"

    @property
    def coef_(self):
        """Weights ``(n_features,)``, or ``(n_outputs, n_features)`` for 2-D targets."""
        self._require_fitted_attribute("coef_")
        W = layer_views(self.params_, self._sizes())[0]
        return W[1:, 0].copy() if not self._y_2d else W[1:].T.copy()

    @property
    def intercept_(self):
        """The bias (a float), or ``(n_outputs,)`` for 2-D targets."""
        self._require_fitted_attribute("intercept_")
        W = layer_views(self.params_, self._sizes())[0]
        return float(W[0, 0]) if not self._y_2d else W[0].copy()


LinearRegression.__doc__ = r"""Linear regression trained by gradient descent (the course's).

    :math:`h_\theta(x) = \theta_0 + \theta^T x`, cost
    :math:`J = \frac{1}{2m}\sum_i (h_\theta(x^{(i)}) - y^{(i)})^2` (plus the
    penalty), minimised by the chosen optimiser from zero weights.  ``y`` may
    have several columns (one linear model per output).  A learning rate that
    is too large stops with :class:`fastnet.DivergenceError`.

    Parameters
    ----------""" + _COMMON_DOC + r"""    penalty : {None, 'l2', 'l1'}, default=None
        ``'l2'`` adds :math:`\frac{\lambda}{2}\sum w^2`, ``'l1'``
        :math:`\lambda\sum|w|` (biases are never penalised).
    lam : float >= 0, default=1e-4
        :math:`\lambda` (used when ``penalty`` is set).
""" + _ATTRS_DOC


class LogisticRegression(_NetworkClassifier):
    _init_zero = True
    _lr_auto = True
    _max_iter_default = 1000
    _stop_rule = "delta"

    def __init__(self, *, C=1.0, fit_intercept=True, max_iter=1000, tol=1e-6, random_state=None,
                 verbose=0, warm_start=False, output_activation="sigmoid", optimizer="gd",
                 lr="auto", batch_size=None, momentum=0.9, rho=0.9, eps=1e-8, penalty="l2",
                 lam=None, max_epochs=None, n_iter_no_change=1, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, track_accuracy=False):
        store_params(self, locals())

    def decision_function(self, X):
        r"""The logits :math:`\theta_0 + \theta^T x`: ``(n_samples,)`` for two classes (for a
        two-unit softmax, :math:`z_1 - z_0`), else ``(n_samples, n_classes)``."""
        self._check_fitted()
        Xv, _ = self._validate_X(X, reset=False)
        z = self._forward(Xv, logits=True)
        if z.shape[1] == 1:
            return z[:, 0]
        if z.shape[1] == 2:
            return z[:, 1] - z[:, 0]
        return z

    @property
    def coef_(self):
        """Weights ``(1, n_features)`` for two classes (sigmoid), else ``(n_classes, n_features)``."""
        self._require_fitted_attribute("coef_")
        return layer_views(self.params_, self._sizes())[0][1:].T.copy()

    @property
    def intercept_(self):
        """Biases ``(1,)`` or ``(n_classes,)``."""
        self._require_fitted_attribute("intercept_")
        return layer_views(self.params_, self._sizes())[0][0].copy()


LogisticRegression.__doc__ = r"""Logistic regression trained by gradient descent (the course's).

    Two classes: :math:`h_\theta(x) = \sigma(\theta_0 + \theta^T x)` with the
    cross-entropy :math:`J = -\frac{1}{m}\sum y\log h + (1-y)\log(1-h)`.
    More classes: one sigmoid output per class trained together with the
    cross-entropy summed over outputs (the course's network without a hidden
    layer), or ``output_activation='softmax'`` with the log-loss
    (multinomial logistic regression, scikit-learn's).  Starts from zero
    weights.  Regularised as scikit-learn's: :math:`C` weighs the summed loss
    against :math:`\frac12\lVert w\rVert^2`, i.e. the course's L2 penalty with
    :math:`\lambda = 1/(C m)`.

    Parameters
    ----------
    C : float > 0, default=1.0
        Inverse regularisation strength (scikit-learn's).""" + _COMMON_DOC + r"""    penalty : {'l2', 'l1', None}, default='l2'
        None: no regularisation (``C`` is ignored).
    lam : float >= 0 or None, default=None
        The course's :math:`\lambda`; when given it replaces :math:`1/(C m)`.
    output_activation : {'sigmoid', 'softmax'}, default='sigmoid'
        Output units: sigmoid with the cross-entropy, or softmax with the log-loss.
    track_accuracy : bool, default=False
        Record the training accuracy of each epoch in ``history_['train_acc']``.
""" + _ATTRS_DOC + r"""    classes_ : ndarray
        The class labels, sorted.
"""
