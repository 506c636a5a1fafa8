r"""Convolution and pooling layers: :class:`Conv2D`, :class:`MaxPool2D`, :class:`AvgPool2D`.

Images are channels-first per sample, ``(C, H, W)``, as in the public API;
the layer program (and the kernels) hold them channels-last, ``(H, W, C)``.

A convolution is a :class:`~fastnet.layers.Dense` layer applied to every
patch of the image: its block of the flat parameter vector is
``W`` of shape ``(1 + kh*kw*C, F)``, bias in row 0 and the weights of input
channel ``c`` at kernel offset ``(dy, dx)`` in row ``1 + (dy*kw + dx)*C + c``
(the ``(kh, kw, C, F)`` kernel, channels last).  So

.. math:: z_{y,x,f} = W_{0,f} + \sum_{dy,dx,c}
          x_{sy + dy - p_h,\; sx + dx - p_w,\; c}\, W_{1 + (dy k_w + dx) C + c,\; f}

with stride :math:`s` and zero padding (:math:`p_h, p_w` at the top and
left).  ``padding='same'`` pads so that the output is :math:`\lceil H/s\rceil`
by :math:`\lceil W/s\rceil` (TensorFlow's rule: the odd pixel of an even
total pad goes at the bottom/right; for odd kernels and stride 1 this is
PyTorch's ``padding=k//2``); ``'valid'`` does not pad.
"""
import numbers

import numpy as np

from fastnet._codes import LayerKind
from fastnet.layers._base import Layer, _activation_name, act_code, program_row

__all__ = ["Conv2D", "MaxPool2D", "AvgPool2D", "conv_output_size"]


def _pair(value, name):
    """``value`` as a pair of positive ints (an int means a square window)."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        pair = tuple(value)
    else:
        pair = (value, value)
    for v in pair:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive integer or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _image_shape(input_shape, layer):
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ValueError(f"{layer} takes images of shape (C, H, W), got samples of shape {shape}"
                         f"{'; put it before the Flatten()' if len(shape) == 1 else ''}")
    return shape


def conv_output_size(size, k, stride, padding):
    """``(out, pad_before)`` along one axis: the output length and the zeros padded before.

    Raises ``ValueError`` naming ``kernel_size`` when the kernel is larger than
    the (padded) input.
    """
    if padding == "valid":
        if k > size:
            raise ValueError(f"kernel_size {k} is larger than the input ({size} pixels) with "
                             f"padding='valid'; use a smaller kernel_size or padding='same'")
        return (size - k) // stride + 1, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return out, total // 2


class Conv2D(Layer):
    r"""A 2-D convolution with ``filters`` kernels of ``kernel_size``, then an activation.

    Parameters
    ----------
    filters : int >= 1
        Output channels :math:`F`.
    kernel_size : int or (int, int)
        Kernel height and width.
    stride : int >= 1, default 1
    padding : {'same', 'valid'}, default 'same'
        See the module's docstring.
    activation : str, default 'linear'
        Applied to the convolution plus bias (fused into it by the kernels).

    Notes
    -----
    Initial weights are uniform in :math:`\pm\sqrt{6/n_{in}}` for ReLU
    (He) and :math:`\pm\sqrt{6/(n_{in}+n_{out})}` otherwise (Glorot), with
    :math:`n_{in} = C k_h k_w`, :math:`n_{out} = F k_h k_w`; biases start at 0.
    """
    type_name = "conv2d"

    def __init__(self, filters, kernel_size, stride=1, padding="same", activation="linear"):
        if isinstance(filters, bool) or not isinstance(filters, numbers.Integral) or filters < 1:
            raise ValueError(f"filters must be a positive integer (the number of kernels), got "
                             f"{filters!r}")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        if isinstance(stride, bool) or not isinstance(stride, numbers.Integral) or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        self.stride = int(stride)
        key = padding.strip().lower() if isinstance(padding, str) else padding
        if key not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
        self.padding = key
        self.activation = _activation_name(activation)
        if self.activation == "softmax":
            raise ValueError("activation='softmax' is for the output Dense layer, not Conv2D")

    def _geometry(self, input_shape):
        C, H, W = _image_shape(input_shape, "Conv2D")
        kh, kw = self.kernel_size
        Ho, ph = conv_output_size(H, kh, self.stride, self.padding)
        Wo, pw = conv_output_size(W, kw, self.stride, self.padding)
        return C, H, W, Ho, Wo, ph, pw

    def output_shape(self, input_shape):
        C, H, W, Ho, Wo, ph, pw = self._geometry(input_shape)
        return (self.filters, Ho, Wo)

    def n_params(self, input_shape):
        C = _image_shape(input_shape, "Conv2D")[0]
        kh, kw = self.kernel_size
        return (1 + kh * kw * C) * self.filters

    def init_params(self, out, input_shape, rng):
        C = _image_shape(input_shape, "Conv2D")[0]
        kh, kw = self.kernel_size
        fan_in, fan_out = C * kh * kw, self.filters * kh * kw
        bound = np.sqrt(6.0 / fan_in) if self.activation == "relu" \
            else np.sqrt(6.0 / (fan_in + fan_out))
        W = out.reshape(1 + fan_in, self.filters)
        W[0] = 0
        W[1:] = rng.uniform(-bound, bound, (fan_in, self.filters))

    def get_config(self):
        return {"filters": self.filters, "kernel_size": list(self.kernel_size),
                "stride": self.stride, "padding": self.padding, "activation": self.activation}

    def program(self, input_shape):
        C, H, W, Ho, Wo, ph, pw = self._geometry(input_shape)
        kh, kw = self.kernel_size
        return program_row(LayerKind.CONV2D, input_shape, (self.filters, Ho, Wo),
                           act_code(self.activation), kh=kh, kw=kw, stride=self.stride,
                           pad_h=ph, pad_w=pw, plen=self.n_params(input_shape))

    @staticmethod
    def kernel_view(block, input_shape, layer):
        """``(kernel, bias)`` views of a Conv2D block: ``(F, C, kh, kw)`` (PyTorch's layout, a
        transposed view) and ``(F,)``."""
        C = input_shape[0]
        kh, kw = layer.kernel_size
        W = block.reshape(1 + kh * kw * C, layer.filters)
        return W[1:].reshape(kh, kw, C, layer.filters).transpose(3, 2, 0, 1), W[0]

    def __hash__(self):
        return hash((type(self).__name__, self.filters, self.kernel_size, self.stride,
                     self.padding, self.activation))


class _Pool2D(Layer):
    _kind = None
    _name = None

    def __init__(self, pool_size=2, stride=None):
        self.pool_size = _pair(pool_size, "pool_size")
        if stride is not None and (isinstance(stride, bool) or not isinstance(
                stride, numbers.Integral) or stride < 1):
            raise ValueError(f"stride must be a positive integer or None (the pool size), got "
                             f"{stride!r}")
        self.stride = None if stride is None else int(stride)

    def _geometry(self, input_shape):
        C, H, W = _image_shape(input_shape, self._name)
        ph, pw = self.pool_size
        if ph > H or pw > W:
            raise ValueError(f"pool_size {self.pool_size} does not fit the {H}x{W} input of "
                             f"{self._name}; use a pool_size of at most ({H}, {W})")
        s = self.stride if self.stride is not None else ph if ph == pw else None
        if s is None:
            raise ValueError(f"{self._name} with a rectangular pool_size {self.pool_size} needs "
                             f"an explicit stride")
        return C, (H - ph) // s + 1, (W - pw) // s + 1, s

    def output_shape(self, input_shape):
        C, Ho, Wo, s = self._geometry(input_shape)
        return (C, Ho, Wo)

    def get_config(self):
        return {"pool_size": list(self.pool_size), "stride": self.stride}

    def program(self, input_shape):
        C, Ho, Wo, s = self._geometry(input_shape)
        ph, pw = self.pool_size
        return program_row(self._kind, input_shape, (C, Ho, Wo), kh=ph, kw=pw, stride=s)

    def __hash__(self):
        return hash((type(self).__name__, self.pool_size, self.stride))


class MaxPool2D(_Pool2D):
    """Max pooling over ``pool_size`` windows (stride ``pool_size`` unless given; no padding;
    a last partial window is dropped, as PyTorch's ``MaxPool2d``).

    The forward pass records where each maximum was (the first one in
    row-major window order on ties); the backward pass sends the gradient
    there.
    """
    type_name = "maxpool2d"
    _kind = LayerKind.MAXPOOL2D
    _name = "MaxPool2D"


class AvgPool2D(_Pool2D):
    """Average pooling over ``pool_size`` windows (stride ``pool_size`` unless given; no
    padding); the backward pass spreads each gradient evenly over its window."""
    type_name = "avgpool2d"
    _kind = LayerKind.AVGPOOL2D
    _name = "AvgPool2D"
