"""The ``cython`` backend's kernel table (see :mod:`fastnet.reference.kernels` for the contract).

One block per extension module; each module's kernels keep the contract's names.
Every module is imported in the variant :mod:`fastnet._cython._variants` picks
for this CPU (baseline x86-64, AVX2+FMA or AVX-512; ``FASTNET_SIMD`` forces
one); :data:`VARIANTS` says which one each module runs and why.
"""
from fastnet._cython import _variants

_act = _variants.load("activations")
_mlp = _variants.load("mlp")
_linear = _variants.load("linear")
_w2v = _variants.load("word2vec")
_conv = _variants.load("conv")
_rnn = _variants.load("rnn")

#: module -> (variant, reason) of the builds in use
VARIANTS = _variants.report()


def _cpu_has_avx2_fma():
    """Whether this CPU runs the AVX2 + FMA variants."""
    return _variants.supports("avx2")[0]


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
    "train_epochs": _mlp.train_epochs,
})

# linear models (src_cython/linear.pyx)
KERNELS.update({
    "linear_gd": _linear.linear_gd,
    "perceptron_train": _linear.perceptron_train,
})

# word2vec (src_cython/word2vec.pyx)
KERNELS.update({
    "w2v_sg_batch": _w2v.w2v_sg_batch,
    "w2v_cbow_batch": _w2v.w2v_cbow_batch,
})

# convolutions, pooling, layer programs (src_cython/conv.pyx)
KERNELS.update({name: getattr(_conv, name) for name in (
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weights", "pool2d_forward",
    "pool2d_backward", "sequential_forward", "sequential_backprop", "sequential_train_epoch",
    "sequential_penalty_value")})

# recurrent networks (src_cython/rnn.pyx)
KERNELS.update({name: getattr(_rnn, name) for name in (
    "rnn_forward", "rnn_backward", "clip_grad_norm", "rnn_seq_epoch", "rnn_lm_epoch")})
