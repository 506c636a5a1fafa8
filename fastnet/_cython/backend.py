"""The ``cython`` backend's kernel table (see :mod:`fastnet.reference.kernels` for the contract).

One block per extension module; each module's kernels keep the contract's names.
"""
from fastnet._cython import activations as _act
from fastnet._cython import linear as _linear
from fastnet._cython import mlp as _mlp

KERNELS = {}

# elementwise (src_cython/activations.pyx)
KERNELS.update({
    "activation": _act.activation,
    "activation_grad": _act.activation_grad,
    "loss": _act.loss,
})

# networks, penalties, optimisers (src_cython/mlp.pyx)
KERNELS.update({
    "penalty_value": _mlp.penalty_value,
    "penalty_grad": _mlp.penalty_grad,
    "optimizer_step": _mlp.optimizer_step,
    "forward_network": _mlp.forward_network,
    "backprop_samples": _mlp.backprop_samples,
    "backprop_batch": _mlp.backprop_batch,
    "train_epoch": _mlp.train_epoch,
})

# linear models (src_cython/linear.pyx)
KERNELS.update({
    "linear_gd": _linear.linear_gd,
    "perceptron_train": _linear.perceptron_train,
})
