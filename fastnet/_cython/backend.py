"""The ``cython`` backend's kernel table (see :mod:`fastnet.reference.kernels` for the contract)."""
from fastnet._cython import activations as _act

KERNELS = {
    "activation": _act.activation,
    "activation_grad": _act.activation_grad,
}
