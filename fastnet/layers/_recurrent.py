r"""Recurrent layers: :class:`RNN` (the plain, Elman cell) and :class:`LSTM`.

Both read sequences of shape ``(T, features)`` (one sample; a batch adds a
leading dimension) and give either the state after the last step,
``(units,)``, or the whole sequence of states, ``(T, units)``
(``return_sequences=True``, to stack another recurrent layer on top).

Their parameters are one block of the flat vector, the ``(1 + D + H, G)``
matrix of :mod:`fastnet.reference.rnn`: the bias in row 0, the input weights
:math:`W` in the next ``D`` rows, the recurrent weights :math:`U` in the last
``H``, with ``G = H`` (RNN) or ``4H`` (LSTM, gates ``i, f, o, g`` side by
side).  The numbers are computed by the backends' ``rnn_forward`` /
``rnn_backward`` kernels.
"""
import numpy as np

from fastnet._codes import Act, Cell
from fastnet.layers._base import Layer, _activation_name, _positive_int

__all__ = ["RNN", "LSTM", "init_recurrent"]


def _sequence_shape(input_shape, layer):
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 2 or shape[1] < 1:
        raise ValueError(f"{layer} takes sequences of shape (T, features), got samples of "
                         f"shape {shape}")
    return shape


def init_recurrent(out, cell, D, H, rng, scale=None, forget_bias=1.0):
    r"""Fill a recurrent layer's block ``out`` with initial values.

    :math:`W` and :math:`U` uniform in :math:`\pm 1/\sqrt{H}` (PyTorch's
    scale; ``scale`` overrides it), the biases 0, except the LSTM's forget
    gate, whose bias is ``forget_bias`` (1: the cell keeps its state at
    first, Jozefowicz et al. 2015).
    """
    G = 4 * H if cell == Cell.LSTM else H
    P = out.reshape(1 + D + H, G)
    s = 1.0 / np.sqrt(H) if scale is None else float(scale)
    P[1:] = rng.uniform(-s, s, (D + H, G))
    P[0] = 0
    if cell == Cell.LSTM:
        P[0, H:2 * H] = forget_bias


class _Recurrent(Layer):
    cell = None

    def __init__(self, units, return_sequences=False):
        self.units = _positive_int(units, "units")
        if not isinstance(return_sequences, (bool, np.bool_)):
            raise ValueError(f"return_sequences must be a bool, got {return_sequences!r}")
        self.return_sequences = bool(return_sequences)

    @property
    def gates(self):
        """Width of the pre-activations: ``units`` (RNN) or ``4 * units`` (LSTM)."""
        return 4 * self.units if self.cell == Cell.LSTM else self.units

    def output_shape(self, input_shape):
        T, _ = _sequence_shape(input_shape, type(self).__name__)
        return (T, self.units) if self.return_sequences else (self.units,)

    def n_params(self, input_shape):
        _, D = _sequence_shape(input_shape, type(self).__name__)
        return (1 + D + self.units) * self.gates

    def init_params(self, out, input_shape, rng):
        _, D = _sequence_shape(input_shape, type(self).__name__)
        init_recurrent(out, self.cell, D, self.units, rng)

    def get_config(self):
        return {"units": self.units, "return_sequences": self.return_sequences}


class RNN(_Recurrent):
    r"""A plain recurrent layer: :math:`h_t = f(x_t W + h_{t-1} U + b)`.

    Parameters
    ----------
    units : int >= 1
        Size :math:`H` of the state.
    activation : {'tanh', 'relu', 'sigmoid', 'linear'}, default 'tanh'
        :math:`f`.
    return_sequences : bool, default False
        Output every state ``(T, units)`` instead of the last one ``(units,)``.
    """
    type_name = "rnn"
    cell = Cell.RNN

    def __init__(self, units, activation="tanh", return_sequences=False):
        super().__init__(units, return_sequences)
        self.activation = _activation_name(activation)
        if self.activation == "softmax":
            raise ValueError("activation of an RNN layer must be 'tanh', 'relu', 'sigmoid' or "
                             "'linear', got 'softmax'")

    @property
    def act_code(self):
        """The :class:`~fastnet._codes.Act` code of the activation."""
        return Act[self.activation.upper()]

    def get_config(self):
        return {"units": self.units, "activation": self.activation,
                "return_sequences": self.return_sequences}


class LSTM(_Recurrent):
    r"""A long short-term memory layer (Hochreiter and Schmidhuber 1997).

    Input, forget and output gates and a candidate from
    :math:`z_t = x_t W + h_{t-1} U + b`: :math:`i, f, o = \sigma(z^{i,f,o})`,
    :math:`g = \tanh z^g`; the cell :math:`c_t = f\odot c_{t-1} + i\odot g`
    and the state :math:`h_t = o \odot \tanh c_t`.

    Parameters
    ----------
    units : int >= 1
        Size :math:`H` of the state and of the cell.
    return_sequences : bool, default False
        Output every state ``(T, units)`` instead of the last one ``(units,)``.
    """
    type_name = "lstm"
    cell = Cell.LSTM

    @property
    def act_code(self):
        return Act.TANH

