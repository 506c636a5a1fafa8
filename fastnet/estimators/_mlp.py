r"""The multi-layer perceptrons: :class:`MLPClassifier` and :class:`MLPRegressor`."""
from __future__ import annotations

from fastnet.estimators._network import _NetworkClassifier, _NetworkRegressor, _doc


class MLPClassifier(_NetworkClassifier):
    def __init__(self, hidden_layer_sizes=(100,), *, activation="sigmoid",
                 output_activation="sigmoid", loss=None, optimizer="sgd", lr=0.1,
                 batch_size=None, momentum=0.9, rho=0.9, eps=1e-8, penalty=None, lam=1e-4,
                 max_epochs=200, tol=1e-4, n_iter_no_change=10, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, random_state=None, verbose=1,
                 track_accuracy=True):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
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


_HIDDEN_DOC = r"""    hidden_layer_sizes : tuple of int, default=(100,)
        Units of each hidden layer (``()``: no hidden layer).
    activation : str or list of str, default='sigmoid'
        Hidden activation, ``'sigmoid'``, ``'relu'``, ``'tanh'`` or
        ``'linear'`` (scikit-learn's ``'logistic'`` and ``'identity'`` are
        accepted), or a list with one per hidden layer.
"""

_doc(MLPClassifier, r"""A multi-layer perceptron classifier: the course's network.

    ``[Theta1, Sigmoid, Theta2, Sigmoid]`` for ``hidden_layer_sizes=(n,)``:
    forward propagation :math:`a^{(l+1)} = f(\Theta^{(l)} [1; a^{(l)}])`,
    backpropagation of the cross-entropy summed over the outputs, trained by
    the chosen optimiser.  Two classes use one sigmoid output; K classes
    use K outputs (one-hot targets).  Weights start uniform in
    :math:`\pm\sqrt{6/(n_{in}+n_{out})}` (:math:`\sqrt{2/\ldots}` before a
    sigmoid), as scikit-learn's.
""", _HIDDEN_DOC + r"""    output_activation : {'sigmoid', 'softmax'}, default='sigmoid'
    loss : {None, 'cross_entropy', 'log_loss', 'quadratic'}, default=None
        None: cross-entropy for sigmoid outputs, log-loss for softmax.
    track_accuracy : bool, default=True
        Record the training accuracy of each epoch in ``history_['train_acc']``
        (one forward pass over the training data per epoch).
""", dict(optimizer="sgd", lr=0.1, lam=1e-4, max_epochs=200, tol=1e-4, n_iter_no_change=10),
     r"""    classes_ : ndarray
        The class labels, sorted.
""")


class MLPRegressor(_NetworkRegressor):
    def __init__(self, hidden_layer_sizes=(100,), *, activation="sigmoid",
                 output_activation="linear", loss=None, optimizer="sgd", lr=0.01,
                 batch_size=None, momentum=0.9, rho=0.9, eps=1e-8, penalty=None, lam=1e-4,
                 max_epochs=200, tol=1e-4, n_iter_no_change=10, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, random_state=None, verbose=1):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
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


_doc(MLPRegressor, r"""A multi-layer perceptron regressor: hidden layers and a linear output.

    The quadratic cost :math:`\frac{1}{2m}\sum_i \lVert a^{(i)} - y^{(i)}\rVert^2`
    by default; ``y`` may have several columns.  Scale the targets (and
    features) to order one for gradient descent.
""", _HIDDEN_DOC + r"""    output_activation : {'linear', 'sigmoid', 'relu', 'tanh'}, default='linear'
    loss : {None, 'quadratic', 'cross_entropy'}, default=None
        None: quadratic (cross-entropy needs targets in [0, 1] and a sigmoid output).
""", dict(optimizer="sgd", lr=0.01, lam=1e-4, max_epochs=200, tol=1e-4, n_iter_no_change=10))
