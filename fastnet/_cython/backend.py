"""The ``cython`` backend's kernel table (see :mod:`fastnet.reference.kernels` for the contract)."""
from fastnet._cython import activations as _act
from fastnet._cython import word2vec as _w2v

KERNELS = {
    "activation": _act.activation,
    "activation_grad": _act.activation_grad,
    "w2v_sg_batch": _w2v.w2v_sg_batch,
    "w2v_cbow_batch": _w2v.w2v_cbow_batch,
}
