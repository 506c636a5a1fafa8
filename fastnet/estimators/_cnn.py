r"""The convolutional network classifier: :class:`CNNClassifier`."""
from __future__ import annotations

import numbers

import numpy as np

from fastnet.estimators._base import _ClassifierMixin, _p_choice, _param_error
from fastnet.estimators._sequential import _SequentialEstimator, _int_pairs, _int_tuple
from fastnet.layers import Conv2D, MaxPool2D, AvgPool2D, Flatten, Dense

__all__ = ["CNNClassifier"]

_ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")


class CNNClassifier(_ClassifierMixin, _SequentialEstimator):
    r"""A convolutional network classifier (LeNet-style), under scikit-learn's contract.

    Each ``(filters, kernel_size)`` of ``conv_layers`` is a convolution
    (:class:`fastnet.layers.Conv2D`) followed by the activation and a pooling
    layer; then a Flatten, the dense hidden layers of ``hidden_layer_sizes``
    and a softmax output over the classes, trained on the log-loss.  The
    defaults are ``Conv2D(8, 5) - ReLU - MaxPool(2) - Conv2D(16, 5) - ReLU -
    MaxPool(2) - Dense(64) - ReLU - Dense(K, softmax)``, trained by SGD with
    momentum (:math:`v \leftarrow \mu v - \eta\nabla J,\ w \leftarrow w + v`)
    on mini-batches of 32.

    Parameters
    ----------
    conv_layers : tuple of (int, int), default=((8, 5), (16, 5))
        ``(filters, kernel_size)`` of each convolution.
    pool_size : int, default=2
        The pooling window (and stride) after each convolution.
    pooling : {'max', 'avg'}, default='max'
    padding : {'same', 'valid'}, default='same'
        ``'same'`` keeps each convolution's output the size of its input
        (PyTorch's ``padding=k//2`` for odd kernels).
    hidden_layer_sizes : tuple of int, default=(64,)
        The dense layers between the convolutions and the output.
    activation : {'relu', 'sigmoid', 'tanh', 'linear'}, default='relu'
        Of the convolutions and the hidden dense layers.
    image_shape : tuple, optional
        ``(H, W)`` or ``(C, H, W)``: how to read 2-D inputs ``X (n, C*H*W)``
        (each row an image, channels first).  ``X`` of shape ``(n, H, W)`` or
        ``(n, C, H, W)`` needs none.
    optimizer : {'sgd', 'momentum', 'nesterov', 'rmsprop', 'adam'}, default='momentum'
    lr : float > 0, default=0.05
    batch_size : int >= 1, default=32
    momentum : float in [0, 1), default=0.9
        :math:`\mu` of momentum and Nesterov, Adam's :math:`\beta_1`.
    rho : float in [0, 1) or None, default=None
        RMSprop's decay (None: 0.9) or Adam's :math:`\beta_2` (None: 0.999).
    eps : float > 0, default=1e-8
    penalty : {None, 'l2', 'l1'}, default=None
    lam : float >= 0, default=0.0
        Strength of the penalty on the weights (biases excluded).
    max_epochs : int >= 1, default=10
    tol : float >= 0 or None, default=None
        Stop when the cost changes by less than ``tol`` between two epochs.
    shuffle : bool, default=True
    random_state : int, Generator or None, default=None
        Seeds the initial weights and the shuffles.
    verbose : int >= 0, default=1
        1: a progress bar when training lasts more than two seconds; 2: at
        once; 0: silent.
    track_accuracy : bool, default=False
        Record the training accuracy of each epoch in ``history_['train_acc']``
        (one more forward pass over the data per epoch).

    Attributes
    ----------
    net_ : fastnet.Sequential
        The trained network (its ``params``, ``program``, ``summary()``).
    classes_ : ndarray
    image_shape_ : tuple
        ``(C, H, W)`` of the training images.
    n_features_in_, n_iter_ : int
    history_ : fastnet.History
        ``'J'`` (cost per epoch), ``'seconds'``, ``'train_acc'`` (when tracked).
    loss_ : float
        The last epoch's cost.
    """

    def __init__(self, conv_layers=((8, 5), (16, 5)), pool_size=2, pooling="max",
                 padding="same", hidden_layer_sizes=(64,), activation="relu", *,
                 image_shape=None, optimizer="momentum", lr=0.05, batch_size=32, momentum=0.9,
                 rho=None, eps=1e-8, penalty=None, lam=0.0, max_epochs=10, tol=None,
                 shuffle=True, random_state=None, verbose=1, track_accuracy=False):
        self.conv_layers = conv_layers
        self.pool_size = pool_size
        self.pooling = pooling
        self.padding = padding
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.image_shape = image_shape
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
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.track_accuracy = track_accuracy

    # ---- configuration
    def _config(self):
        c = self._train_config()
        c["conv"] = _int_pairs(self, "conv_layers")
        ps = self.pool_size
        if isinstance(ps, bool) or not isinstance(ps, numbers.Integral) or ps < 1:
            raise _param_error(self, "pool_size", "an int in the range [1, inf)", ps)
        c["pool"] = int(ps)
        c["pooling"] = _p_choice(self, "pooling", ("max", "avg"))
        c["padding"] = _p_choice(self, "padding", ("same", "valid"))
        c["hidden"] = _int_tuple(self, "hidden_layer_sizes")
        c["activation"] = _p_choice(self, "activation", _ACTIVATIONS)
        c["track"] = bool(self.track_accuracy)
        c["loss"] = "log_loss"
        c["image_shape"] = self._shape_param()
        return c

    def _shape_param(self):
        value = self.image_shape
        if value is None:
            return None
        expected = "None, (H, W) or (C, H, W) with positive ints"
        try:
            shape = tuple(value)
        except TypeError:
            raise _param_error(self, "image_shape", expected, value) from None
        if len(shape) not in (2, 3) or any(
                isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
                for s in shape):
            raise _param_error(self, "image_shape", expected, value)
        shape = tuple(int(s) for s in shape)
        return (1,) + shape if len(shape) == 2 else shape

    def _layers(self, c, n_classes):
        pool = MaxPool2D if c["pooling"] == "max" else AvgPool2D
        layers = []
        for filters, k in c["conv"]:
            layers += [Conv2D(filters, k, padding=c["padding"], activation=c["activation"]),
                       pool(c["pool"])]
        layers.append(Flatten())
        layers += [Dense(h, c["activation"]) for h in c["hidden"]]
        layers.append(Dense(n_classes, "softmax"))
        return layers

    # ---- data
    def _images(self, X, *, reset, image_shape=None):
        """``X`` as (n, C, H, W) float images (and its image shape), checked against the fit."""
        arr = self._array(X)
        est = type(self).__name__
        if not reset:
            image_shape = self.image_shape_
        if arr.ndim == 2:
            if image_shape is None:
                raise ValueError(f"X has shape {arr.shape}: flat rows need "
                                 f"image_shape=(H, W) or (C, H, W) to be read as images (or "
                                 f"pass X as (n, H, W) or (n, C, H, W))")
            if int(np.prod(image_shape)) != arr.shape[1]:
                raise ValueError(f"X has {arr.shape[1]} values per row, but image_shape="
                                 f"{tuple(image_shape)} needs {int(np.prod(image_shape))}")
            arr = arr.reshape((arr.shape[0],) + tuple(image_shape))
        elif arr.ndim in (3, 4):
            shape = arr.shape[1:] if arr.ndim == 4 else (1,) + arr.shape[1:]
            arr = arr.reshape((arr.shape[0],) + shape)
            if image_shape is not None and tuple(shape) != tuple(image_shape):
                if not reset and shape[0] != image_shape[0]:
                    raise ValueError(f"X has {shape[0]} channel(s), but {est} was fitted on "
                                     f"images with {image_shape[0]} channel(s)")
                what = "image_shape" if reset else f"the {est}'s images (image_shape_)"
                raise ValueError(f"X holds images of shape {tuple(shape)}, but {what} is "
                                 f"{tuple(image_shape)}")
        else:
            raise ValueError(f"X must be images of shape (n, H, W) or (n, C, H, W), or flat "
                             f"rows (n, C*H*W) with image_shape; got an array of shape "
                             f"{arr.shape}")
        dtype = (np.float32 if arr.dtype == np.float32 else np.float64) if reset \
            else self._dtype()
        return np.ascontiguousarray(arr, dtype=dtype)

    # ---- fitting
    def fit(self, X, y):
        """Train from scratch on images ``X`` and labels ``y``; returns ``self``."""
        return self._fit(X, y, partial=False, classes=None)

    def partial_fit(self, X, y, classes=None):
        """One epoch on ``(X, y)``, continuing from the current weights (``classes`` on the
        first call: every label that will ever appear)."""
        if not self.__sklearn_is_fitted__() and classes is None:
            raise ValueError(f"classes must be passed on the first call to "
                             f"{type(self).__name__}.partial_fit (every label that can occur)")
        return self._fit(X, y, partial=True, classes=classes)

    def _fit(self, X, y, *, partial, classes):
        c = self._config()
        first = not partial or not self.__sklearn_is_fitted__()
        if not first and classes is not None:
            given = np.unique(np.asarray(classes))
            if not np.array_equal(given, self.classes_):
                raise ValueError(f"classes={given.tolist()} differs from classes_="
                                 f"{self.classes_.tolist()} of the first call to partial_fit")
        images = self._images(X, reset=first, image_shape=c["image_shape"])
        codes = self._encode(y, images.shape[0], reset=first, classes=classes)
        if first:
            K = self._new_classes.shape[0]
            net = self._build(self._layers(c, K), images.shape[1:], images.dtype, c["rng"],
                              f"conv_layers={c['conv']}, pool_size={c['pool']}, "
                              f"padding={c['padding']!r} on images of shape "
                              f"{images.shape[1:]}")
        else:
            net, K = self.net_, self.classes_.shape[0]
            c["rng"] = self._rng
        Xk = net._kernel_X(images)
        Y = np.zeros((Xk.shape[0], K), dtype=net.dtype)
        Y[np.arange(Xk.shape[0]), codes] = 1
        hist, n = self._train(net, Xk, Y, c, epochs=1 if partial else c["max_epochs"],
                              first=first, labels=codes, track=c["track"])
        if first:
            self.net_ = net
            self.classes_ = self._new_classes
            self.image_shape_ = tuple(int(s) for s in images.shape[1:])
            self.n_features_in_ = int(np.prod(self.image_shape_))
            self.n_iter_ = 0
        self._rng = c["rng"]
        self.n_iter_ += n
        self.history_ = hist
        self.loss_ = hist["J"][-1]
        self.__dict__.pop("_new_classes", None)
        return self

    # ---- prediction
    def predict_proba(self, X):
        """Class probabilities (the softmax outputs), columns in ``classes_`` order."""
        self._check_fitted()
        return self.net_.forward(self._images(X, reset=False))

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels (from ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # ---- saving
    def _fitted_state(self):
        meta, arrays = super()._fitted_state()
        meta["image_shape"] = list(self.image_shape_)
        arrays["classes"] = self.classes_
        return meta, arrays

    def _restore_state(self, meta, arrays):
        super()._restore_state(meta, arrays)
        if isinstance(self.conv_layers, (list, tuple)):  # JSON gave back lists of lists
            self.conv_layers = tuple(tuple(p) if isinstance(p, list) else p
                                     for p in self.conv_layers)
        self.classes_ = arrays["classes"]
        self.image_shape_ = tuple(int(s) for s in meta["image_shape"])
        from fastnet._validation import check_rng
        self._rng = check_rng(None)

    def __sklearn_tags__(self):  # only ever called by scikit-learn
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags
