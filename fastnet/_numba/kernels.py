"""The ``numba`` backend's kernel table (see :mod:`fastnet.reference.kernels` for the contract).

Each topic module defines its own ``KERNELS`` dict; this module gathers them
for :mod:`fastnet._backend`.
"""
KERNELS = {}

from fastnet._numba.network import KERNELS as _NET  # noqa: E402

KERNELS.update(_NET)

from fastnet._numba.word2vec import KERNELS as _W2V  # noqa: E402

KERNELS.update(_W2V)

from fastnet._numba.rnn import KERNELS as _RNN  # noqa: E402

KERNELS.update(_RNN)
