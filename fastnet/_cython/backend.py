"""The ``cython`` backend's kernel table (see :mod:`fastnet.reference.kernels` for the contract).

One block per extension module; each module's kernels keep the contract's names.

The word2vec kernels come in two builds of the same code: ``word2vec``
(baseline, any CPU) and ``word2vec_avx2`` (compiled with ``-mavx2 -mfma``,
about 1.3x faster).  The AVX2 build is used when the CPU has AVX2 and FMA
(numpy's CPU detection) and the module was built; :data:`W2V_BUILD` says
which one is in use.
"""
from fastnet._cython import activations as _act
from fastnet._cython import linear as _linear
from fastnet._cython import mlp as _mlp
from fastnet._cython import rnn as _rnn


def _cpu_has_avx2_fma():
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # numpy 1.x
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as feats
        except ImportError:
            return False
    return bool(feats.get("AVX2")) and bool(feats.get("FMA3"))


def _word2vec_module():
    if _cpu_has_avx2_fma():
        try:
            from fastnet._cython import word2vec_avx2 as mod
            return mod, "avx2"
        except ImportError:
            pass  # not built (compiler without AVX2 flags): the baseline build below
    from fastnet._cython import word2vec as mod
    return mod, "baseline"


_w2v, W2V_BUILD = _word2vec_module()

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

# word2vec (src_cython/word2vec.pyx)
KERNELS.update({
    "w2v_sg_batch": _w2v.w2v_sg_batch,
    "w2v_cbow_batch": _w2v.w2v_cbow_batch,
})

# recurrent networks (src_cython/rnn.pyx)
KERNELS.update({name: getattr(_rnn, name) for name in (
    "rnn_forward", "rnn_backward", "clip_grad_norm", "rnn_seq_epoch", "rnn_lm_epoch")})
