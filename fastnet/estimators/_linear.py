r"""Linear and logistic regression as estimators: the course's networks without a hidden layer."""
from __future__ import annotations

from fastnet._params import layer_views
from fastnet.estimators._network import _NetworkClassifier, _NetworkRegressor, _doc


class LinearRegression(_NetworkRegressor):
    _init_zero = True
    _lr_auto = True

    def __init__(self, *, optimizer="gd", lr="auto", batch_size=None, momentum=0.9, rho=0.9,
                 eps=1e-8, penalty=None, lam=1e-4, max_epochs=1000, tol=1e-6,
                 n_iter_no_change=1, early_stopping=False, validation_fraction=0.1,
                 shuffle=True, random_state=None, verbose=1):
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.momentum = momentum
        self.rho = rho
        self.eps = eps
        self.penalty = penalty
        self.lam = lam
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose

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


_doc(LinearRegression, r"""Linear regression trained by gradient descent (the course's).

    :math:`h_\theta(x) = \theta_0 + \theta^T x`, cost
    :math:`J = \frac{1}{2m}\sum_i (h_\theta(x^{(i)}) - y^{(i)})^2` (plus the
    penalty), minimised by the chosen optimiser from zero weights.  ``y`` may
    have several columns (one linear model per output).  Gradient descent
    needs features of comparable scale: standardise them first
    (:class:`fastnet.Standardizer`); a learning rate that is too large stops
    with :class:`fastnet.DivergenceError`.
""", "", dict(optimizer="gd", lr="auto", lam=1e-4, max_epochs=1000, tol=1e-6, n_iter_no_change=1),
     r"""    coef_, intercept_ :
        The weights and bias, as scikit-learn's ``LinearRegression``.
""")


class LogisticRegression(_NetworkClassifier):
    _init_zero = True
    _lr_auto = True

    def __init__(self, *, output_activation="sigmoid", optimizer="gd", lr="auto", batch_size=None,
                 momentum=0.9, rho=0.9, eps=1e-8, penalty=None, lam=1e-4, max_epochs=1000,
                 tol=1e-6, n_iter_no_change=1, early_stopping=False, validation_fraction=0.1,
                 shuffle=True, random_state=None, verbose=1, track_accuracy=True):
        self.output_activation = output_activation
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.momentum = momentum
        self.rho = rho
        self.eps = eps
        self.penalty = penalty
        self.lam = lam
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.track_accuracy = track_accuracy

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


_doc(LogisticRegression, r"""Logistic regression trained by gradient descent (the course's).

    Two classes: :math:`h_\theta(x) = \sigma(\theta_0 + \theta^T x)` with the
    cross-entropy :math:`J = -\frac{1}{m}\sum y\log h + (1-y)\log(1-h)`.
    More classes: one sigmoid output per class trained together with the
    cross-entropy summed over outputs (the course's network without a hidden
    layer), or ``output_activation='softmax'`` with the log-loss
    (multinomial logistic regression).  Starts from zero weights.
""", r"""    output_activation : {'sigmoid', 'softmax'}, default='sigmoid'
        Output units: sigmoid with the cross-entropy, or softmax with the log-loss.
    track_accuracy : bool, default=True
        Record the training accuracy of each epoch in ``history_['train_acc']``
        (one forward pass over the training data per epoch).
""", dict(optimizer="gd", lr="auto", lam=1e-4, max_epochs=1000, tol=1e-6, n_iter_no_change=1),
     r"""    classes_ : ndarray
        The class labels, sorted.
    coef_, intercept_ :
        As scikit-learn's ``LogisticRegression``.
""")
