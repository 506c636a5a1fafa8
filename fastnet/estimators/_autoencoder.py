r"""The autoencoder: :class:`Autoencoder`, an MLP trained to reproduce its input."""
from __future__ import annotations

import numpy as np

from fastnet.estimators._base import _p_bool, _p_choice, _param_error
from fastnet.estimators._sequential import _SequentialEstimator, _int_tuple
from fastnet.layers import Dense, TiedDense
from fastnet.sequential import Sequential

__all__ = ["Autoencoder"]

_ACTIVATIONS = ("sigmoid", "relu", "tanh", "linear")


class Autoencoder(_SequentialEstimator):
    r"""An autoencoder: an MLP trained with the input as its target, :math:`Y = X`.

    The network is ``n_features -> hidden_layer_sizes -> n_features``; the
    middle hidden layer (or the only one) is the *code*.  With ``(32,)``,
    :math:`h = f(W_1^T x + b_1)` (the encoder) and
    :math:`\hat x = g(W_2^T h + b_2)` (the decoder), trained to minimise the
    reconstruction loss over the samples: the cross-entropy
    :math:`-\sum_j x_j\log\hat x_j + (1-x_j)\log(1-\hat x_j)` (inputs in
    [0, 1], a sigmoid output) or the quadratic loss
    :math:`\tfrac12\lVert\hat x - x\rVert^2`.

    With ``tied_weights=True`` each decoder layer uses the transpose of its
    mirror encoder layer's weights (:math:`W_2 = W_1^T`, only the biases of
    its own; :class:`fastnet.layers.TiedDense`), and the gradients of the
    two uses are summed into the shared weights.  The hidden sizes must then
    read the same both ways (``(32,)``, ``(128, 32, 128)``).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(32,)
        All hidden layers; the code is the middle one (for an even number of
        layers, the last of the first half).
    activation : {'sigmoid', 'relu', 'tanh', 'linear'}, default='sigmoid'
        Of the hidden layers.
    output_activation : {'sigmoid', 'relu', 'tanh', 'linear'}, default='sigmoid'
    loss : {'cross_entropy', 'quadratic'}, default='cross_entropy'
        Cross-entropy needs a sigmoid output and inputs in [0, 1].
    tied_weights : bool, default=False
    optimizer : {'sgd', 'momentum', 'nesterov', 'rmsprop', 'adam'}, default='adam'
    lr : float > 0, default=0.005
    batch_size : int >= 1, default=64
    momentum, rho, eps : float
        As :class:`CNNClassifier` (Adam: :math:`\beta_1`, :math:`\beta_2` (None: 0.999)).
    penalty : {None, 'l2', 'l1'}, default=None
    lam : float >= 0, default=0.0
    max_epochs : int >= 1, default=60
    tol : float >= 0 or None, default=None
    shuffle : bool, default=True
    random_state : int, Generator or None, default=None
    verbose : int >= 0, default=1

    Attributes
    ----------
    net_ : fastnet.Sequential
        The trained network, encoder then decoder.
    n_features_in_, n_components_, n_iter_ : int
        Input width, code width, epochs run.
    history_ : fastnet.History
    loss_ : float
        The last epoch's cost (mean loss per sample).
    """

    def __init__(self, hidden_layer_sizes=(32,), *, activation="sigmoid",
                 output_activation="sigmoid", loss="cross_entropy", tied_weights=False,
                 optimizer="adam", lr=0.005, batch_size=64, momentum=0.9, rho=None, eps=1e-8,
                 penalty=None, lam=0.0, max_epochs=60, tol=None, shuffle=True,
                 random_state=None, verbose=1):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.tied_weights = tied_weights
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

    def _config(self):
        c = self._train_config()
        c["hidden"] = _int_tuple(self, "hidden_layer_sizes", allow_empty=False)
        c["activation"] = _p_choice(self, "activation", _ACTIVATIONS)
        c["output"] = _p_choice(self, "output_activation", _ACTIVATIONS)
        c["loss"] = _p_choice(self, "loss", ("cross_entropy", "quadratic"))
        if c["loss"] == "cross_entropy" and c["output"] != "sigmoid":
            raise _param_error(self, "loss", "'quadratic' with output_activation="
                               f"{c['output']!r} (the cross-entropy needs a sigmoid output)",
                               self.loss)
        c["tied"] = _p_bool(self, "tied_weights")
        if c["tied"] and c["hidden"] != c["hidden"][::-1]:
            raise _param_error(self, "hidden_layer_sizes", "sizes that read the same both ways "
                               "with tied_weights=True (e.g. (32,) or (128, 32, 128))",
                               self.hidden_layer_sizes)
        return c

    @staticmethod
    def _code_index(hidden):
        return (len(hidden) - 1) // 2

    def _layers(self, c, n):
        hidden = c["hidden"]
        sizes = (n,) + hidden + (n,)
        acts = [c["activation"]] * len(hidden) + [c["output"]]
        L = len(sizes) - 1
        layers = []
        for l in range(L):
            mirror = L - 1 - l
            if c["tied"] and mirror < l:
                layers.append(TiedDense(sizes[l + 1], tied_to=mirror, activation=acts[l]))
            else:
                layers.append(Dense(sizes[l + 1], acts[l]))
        return layers

    def _data(self, X, *, reset):
        arr = self._array(X)
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {arr.shape}; "
                             f"flatten images first (X.reshape(len(X), -1))")
        if not reset and arr.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {arr.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input.")
        dtype = (np.float32 if arr.dtype == np.float32 else np.float64) if reset \
            else self._dtype()
        return np.ascontiguousarray(arr, dtype=dtype)

    def fit(self, X, y=None):
        """Train on ``X`` (n_samples, n_features) to reproduce it; ``y`` is ignored."""
        return self._fit(X, partial=False)

    def partial_fit(self, X, y=None):
        """One epoch on ``X``, continuing from the current weights."""
        return self._fit(X, partial=True)

    def _fit(self, X, *, partial):
        c = self._config()
        first = not partial or not self.__sklearn_is_fitted__()
        Xv = self._data(X, reset=first)
        if c["loss"] == "cross_entropy" and (Xv.min() < 0 or Xv.max() > 1):
            raise ValueError(f"X has values in [{Xv.min():g}, {Xv.max():g}]; "
                             f"loss='cross_entropy' needs inputs in [0, 1] (rescale X, or "
                             f"use loss='quadratic')")
        if first:
            net = self._build(self._layers(c, Xv.shape[1]), (Xv.shape[1],), Xv.dtype, c["rng"],
                              f"hidden_layer_sizes={c['hidden']}")
        else:
            net = self.net_
            c["rng"] = self._rng
        hist, n = self._train(net, Xv, Xv, c, epochs=1 if partial else c["max_epochs"],
                              first=first)
        if first:
            self.net_ = net
            self.n_features_in_ = int(Xv.shape[1])
            self.n_components_ = int(c["hidden"][self._code_index(c["hidden"])])
            self.n_iter_ = 0
        self._rng = c["rng"]
        self.n_iter_ += n
        self.history_ = hist
        self.loss_ = hist["J"][-1]
        return self

    # ---- the two halves
    def _hidden(self):
        return tuple(int(l.units) for l in self.net_.layers[:-1])

    def encoder(self):
        """The encoder (input to code) as a new :class:`fastnet.Sequential` (weights copied)."""
        self._check_fitted()
        c = self._code_index(self._hidden())
        layers = self.net_.layers[:c + 1]
        net = Sequential([Dense(l.units, l.activation) for l in layers],
                         input_shape=(self.n_features_in_,), dtype=self.net_.dtype)
        net.params[...] = self.net_.params[:net.params.shape[0]]
        return net

    def decoder(self):
        """The decoder (code to reconstruction) as a new :class:`fastnet.Sequential` (weights
        copied; tied layers get the transposed encoder weights)."""
        self._check_fitted()
        c = self._code_index(self._hidden())
        full = self.net_
        layers = [Dense(l.units, l.activation) for l in full.layers[c + 1:]]
        net = Sequential(layers, input_shape=(full.shapes[c][0],), dtype=full.dtype)
        for j, layer in enumerate(full.layers[c + 1:]):
            i = c + 1 + j
            W = net.layer_params(j)
            if isinstance(layer, TiedDense):
                W[0] = full.layer_params(i)
                W[1:] = full.layer_params(layer.tied_to)[1:].T
            else:
                W[...] = full.layer_params(i)
        return net

    def transform(self, X):
        """The codes of ``X``: the middle hidden layer's activations, ``(n, n_components_)``."""
        self._check_fitted()
        return self.encoder().forward(self._data(X, reset=False))

    def inverse_transform(self, codes):
        """The reconstructions of ``codes`` (n, n_components_)."""
        self._check_fitted()
        dec = self.decoder()
        arr = self._array(codes, "codes")
        if arr.ndim != 2 or arr.shape[1] != self.n_components_:
            raise ValueError(f"codes must have shape (n, {self.n_components_}), got {arr.shape}")
        return dec.forward(np.ascontiguousarray(arr, dtype=self._dtype()))

    def reconstruct(self, X):
        """``inverse_transform(transform(X))`` in one pass through the network."""
        self._check_fitted()
        return self.net_.forward(self._data(X, reset=False))

    def reconstruction_error(self, X):
        """The mean squared error per value, :math:`\\frac{1}{nd}\\sum (\\hat x - x)^2`."""
        self._check_fitted()
        Xv = self._data(X, reset=False)
        R = self.net_.forward(Xv)
        return float(np.mean((R.astype(np.float64) - Xv) ** 2))

    def score(self, X, y=None):
        """The negative mean reconstruction error (:meth:`reconstruction_error`): higher is better."""
        return -self.reconstruction_error(X)

    def _fitted_state(self):
        meta, arrays = super()._fitted_state()
        meta["n_components"] = self.n_components_
        return meta, arrays

    def _restore_state(self, meta, arrays):
        super()._restore_state(meta, arrays)
        self.n_components_ = int(meta["n_components"])
        from fastnet._validation import check_rng
        self._rng = check_rng(None)
