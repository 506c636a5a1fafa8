"""The ``numba`` backend's kernel table (see :mod:`fastnet.reference.kernels` for the contract).

Each topic module defines its own ``KERNELS`` dict; this module gathers them
for :mod:`fastnet._backend`.  They are imported inside
:func:`fastnet._numba._cache.redirect`, so that their on-disk cache goes to a
per-user directory when the package directory is not writable.
"""
from fastnet._numba import _cache

KERNELS = {}

with _cache.redirect():
    from fastnet._numba.network import KERNELS as _NET
    from fastnet._numba.word2vec import KERNELS as _W2V
    from fastnet._numba.conv import KERNELS as _CONV
    from fastnet._numba.sequential import KERNELS as _SEQ
    from fastnet._numba.rnn import KERNELS as _RNN

for _table in (_NET, _W2V, _CONV, _SEQ, _RNN):
    KERNELS.update(_table)
del _table
