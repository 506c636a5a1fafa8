"""Layers: the building blocks of :class:`fastnet.Sequential` (and the estimators built on it).

A layer here is a *description*: its hyper-parameters, the shape it maps its
input to, how many parameters it owns and how to initialise them.  The
numbers are computed by the backends' kernels, which read a network as a flat
parameter vector (each layer owning one contiguous block, as in
:mod:`fastnet._params`) and a small table of layer codes and shapes; so a
stack of layers trains without Python per batch.

Shapes exclude the batch dimension: a dense input is ``(n,)``, an image
``(C, H, W)`` (channels first), a sequence ``(T, features)``.

Part 1 of the architecture gallery adds ``Conv2D``, ``MaxPool2D``,
``AvgPool2D`` (and ``TiedDense`` for tied autoencoders); part 2 ``RNN`` and
``LSTM``.  Each new layer type is a subclass of :class:`Layer` in its own
module, listed here.
"""
from fastnet.layers._base import (Layer, Dense, TiedDense, Flatten, Activation, LAYER_TYPES,
                                  layer_from_config)
from fastnet.layers._conv import Conv2D, MaxPool2D, AvgPool2D
from fastnet.layers._recurrent import RNN, LSTM

__all__ = ["Layer", "Dense", "TiedDense", "Flatten", "Activation", "Conv2D", "MaxPool2D",
           "AvgPool2D", "RNN", "LSTM", "LAYER_TYPES", "layer_from_config"]
