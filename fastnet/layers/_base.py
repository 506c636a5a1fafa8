r"""The layer contract, and the layers every architecture shares (Dense, Flatten, Activation).

Every layer type subclasses :class:`Layer` and registers itself in
:data:`LAYER_TYPES` under its ``type_name`` (what :func:`fastnet.save` writes).
The contract:

* ``output_shape(input_shape)`` -- the shape of one sample after the layer
  (a tuple without the batch dimension); it raises ``ValueError`` naming the
  argument when the layer cannot take that input;
* ``n_params(input_shape)`` -- how many entries of the flat parameter vector
  the layer owns (0 for parameter-free layers);
* ``init_params(out, input_shape, rng)`` -- fill its block ``out`` (1-D,
  float32 or float64) with initial values drawn from ``rng``;
* ``get_config()`` -- its hyper-parameters as JSON-able values, so that
  ``layer_from_config(layer.get_config())`` rebuilds it;
* ``program(input_shape)`` -- the layer's row of the integer *layer program*
  that the compiled kernels interpret (:class:`fastnet._codes.Prog` fields,
  without the parameter offset, which :class:`fastnet.Sequential` assigns):
  a dict ``{Prog.KIND: LayerKind..., Prog.OUT_C: ..., ...}``.  Shapes in the
  program are channels-last ``(H, W, C)``; a flat sample of width ``n`` is
  ``(1, 1, n)``.

Dense layers keep the course's layout: the block is ``W = Theta.T`` of shape
``(n_in + 1, n_out)`` with the bias in row 0 (see :mod:`fastnet._params`).
"""
import numbers

import numpy as np

from fastnet._codes import Act, NAMES, LayerKind, Prog

__all__ = ["Layer", "Dense", "TiedDense", "Flatten", "Activation", "LAYER_TYPES",
           "layer_from_config"]

#: ``type_name`` -> layer class, for :func:`layer_from_config` (and fastnet.load).
LAYER_TYPES = {}


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _activation_name(value, name="activation"):
    """The name of a built-in activation ('linear', 'sigmoid', 'relu', 'tanh', 'softmax')."""
    key = getattr(value, "name", value)
    try:
        return Act(NAMES[Act][key.strip().lower()]).name.lower()
    except (AttributeError, KeyError):
        allowed = ", ".join(repr(m.name.lower()) for m in Act)
        raise ValueError(f"{name} must be one of {allowed} (or fastnet's activation classes), "
                         f"got {value!r}") from None


class Layer:
    """Base class of fastnet's layers (see the module's docstring for the contract)."""

    #: the name saved files use for this layer type
    type_name = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.type_name:
            LAYER_TYPES[cls.type_name] = cls

    def output_shape(self, input_shape):
        raise NotImplementedError

    def n_params(self, input_shape):
        return 0

    def init_params(self, out, input_shape, rng):
        if out.shape[0]:
            raise NotImplementedError

    def get_config(self):
        return {}

    def program(self, input_shape):
        raise NotImplementedError(f"{type(self).__name__} has no layer-program row")

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))


def hwc(shape):
    """A sample shape (channels-first ``(C, H, W)`` or flat ``(n,)``) as the program's ``(H, W, C)``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        return 1, 1, shape[0]
    if len(shape) == 3:
        return shape[1], shape[2], shape[0]
    raise ValueError(f"a sample shape must be (n,) or (C, H, W), got {shape}")


def program_row(kind, input_shape, output_shape, act=Act.LINEAR, **fields):
    """A layer-program row as a dict of :class:`Prog` fields (see :meth:`Layer.program`)."""
    row = {f: 0 for f in Prog if f != Prog.WIDTH}
    row[Prog.KIND] = int(kind)
    row[Prog.ACT] = int(act)
    row[Prog.IN_H], row[Prog.IN_W], row[Prog.IN_C] = hwc(input_shape)
    row[Prog.OUT_H], row[Prog.OUT_W], row[Prog.OUT_C] = hwc(output_shape)
    row[Prog.STRIDE] = 1
    row[Prog.TIED] = -1
    for name, value in fields.items():
        row[Prog[name.upper()]] = int(value)
    return row


def act_code(name):
    """The :class:`Act` code of an activation name."""
    return Act[name.upper()]


def _flat_width(input_shape, layer):
    if len(input_shape) != 1:
        raise ValueError(f"{layer} takes 1-D samples, got samples of shape {tuple(input_shape)}; "
                         f"put a Flatten() before it")
    return int(input_shape[0])


class Dense(Layer):
    r"""A fully connected layer: :math:`a = f(x W_{1:} + W_0)`, the course's ``forward``.

    Parameters
    ----------
    units : int >= 1
        Output width.
    activation : str or fastnet activation, default 'linear'
        Applied to the affine map (``'linear'``: none).
    epsilon : float > 0, optional
        Initial weights uniform in :math:`[-\epsilon, \epsilon]` (the course's
        ``init_weights``); default :math:`\sqrt{6/(n_{in}+n_{out})}` (Glorot).
    """
    type_name = "dense"

    def __init__(self, units, activation="linear", epsilon=None):
        self.units = _positive_int(units, "units")
        self.activation = _activation_name(activation)
        if epsilon is not None and not (isinstance(epsilon, numbers.Real) and epsilon > 0):
            raise ValueError(f"epsilon must be a positive number or None, got {epsilon!r}")
        self.epsilon = None if epsilon is None else float(epsilon)

    def output_shape(self, input_shape):
        _flat_width(input_shape, "Dense")
        return (self.units,)

    def n_params(self, input_shape):
        return (_flat_width(input_shape, "Dense") + 1) * self.units

    def init_params(self, out, input_shape, rng):
        n_in = _flat_width(input_shape, "Dense")
        eps = self.epsilon if self.epsilon is not None else np.sqrt(6.0 / (n_in + self.units))
        W = out.reshape(n_in + 1, self.units)
        W[...] = rng.uniform(-eps, eps, W.shape)
        if self.epsilon is None:
            W[0] = 0  # Glorot init: zero biases

    def get_config(self):
        return {"units": self.units, "activation": self.activation, "epsilon": self.epsilon}

    def program(self, input_shape):
        return program_row(LayerKind.DENSE, input_shape, self.output_shape(input_shape),
                           act_code(self.activation), plen=self.n_params(input_shape))


class TiedDense(Layer):
    r"""A dense layer whose weights are the transpose of an earlier :class:`Dense` layer's.

    :math:`a = f(x W_j^T{}_{1:} + b)` where :math:`W_j` is the weight block of
    layer ``tied_to`` (an index into the :class:`fastnet.Sequential` stack);
    the layer owns only its bias (``units`` values, initialised to zero).
    Training sums the two layers' gradients into the shared weights (the
    tied autoencoder's decoder).

    Parameters
    ----------
    units : int >= 1
        Output width: the input width of layer ``tied_to``.
    tied_to : int >= 0
        Index of the Dense layer whose weights are shared; its output width
        must be this layer's input width.
    activation : str, default 'linear'
    """
    type_name = "tied_dense"

    def __init__(self, units, tied_to, activation="linear"):
        self.units = _positive_int(units, "units")
        if isinstance(tied_to, bool) or not isinstance(tied_to, numbers.Integral) or tied_to < 0:
            raise ValueError(f"tied_to must be the index of an earlier Dense layer (an int >= 0), "
                             f"got {tied_to!r}")
        self.tied_to = int(tied_to)
        self.activation = _activation_name(activation)

    def output_shape(self, input_shape):
        _flat_width(input_shape, "TiedDense")
        return (self.units,)

    def n_params(self, input_shape):
        _flat_width(input_shape, "TiedDense")
        return self.units

    def init_params(self, out, input_shape, rng):
        out[...] = 0

    def get_config(self):
        return {"units": self.units, "tied_to": self.tied_to, "activation": self.activation}

    def program(self, input_shape):
        return program_row(LayerKind.DENSE_TIED, input_shape, self.output_shape(input_shape),
                           act_code(self.activation), plen=self.units)


class Flatten(Layer):
    """Reshape each sample to one dimension (``(C, H, W)`` -> ``(C*H*W,)``, channels-first
    order, as ``x.reshape(n, -1)`` of the channels-first array); no parameters."""
    type_name = "flatten"

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def program(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) not in (1, 3):
            raise ValueError(f"Flatten takes samples of shape (n,) or (C, H, W), got {shape}")
        return program_row(LayerKind.FLATTEN, shape, self.output_shape(shape))


class Activation(Layer):
    """An elementwise activation on its own (``'sigmoid'``, ``'relu'``, ``'tanh'``, ...)."""
    type_name = "activation"

    def __init__(self, activation):
        self.activation = _activation_name(activation)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {"activation": self.activation}

    def program(self, input_shape):
        return program_row(LayerKind.ACTIVATION, input_shape, input_shape,
                           act_code(self.activation))


def layer_from_config(config):
    """Rebuild a layer from ``{"type": type_name, **get_config()}``."""
    if not isinstance(config, dict) or "type" not in config:
        raise ValueError(f"a layer's config must be a dict with a 'type', got {config!r}")
    kind = config["type"]
    if kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {kind!r}; expected one of {sorted(LAYER_TYPES)}")
    args = {k: v for k, v in config.items() if k != "type"}
    return LAYER_TYPES[kind](**args)
