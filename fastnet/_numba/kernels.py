"""The ``numba`` backend's kernel table (see :mod:`fastnet.reference.kernels` for the contract)."""
KERNELS = {}

from fastnet._numba.word2vec import KERNELS as _W2V  # noqa: E402

KERNELS.update(_W2V)
