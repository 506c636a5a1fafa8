"""The ``cython`` backend's kernel table (see :mod:`fastnet.reference.kernels` for the contract).

The word2vec kernels come in two builds of the same code: ``word2vec``
(baseline, any CPU) and ``word2vec_avx2`` (compiled with ``-mavx2 -mfma``,
about 1.3x faster).  The AVX2 build is used when the CPU has AVX2 and FMA
(numpy's CPU detection) and the module was built; :data:`W2V_BUILD` says
which one is in use.
"""
from fastnet._cython import activations as _act


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

KERNELS = {
    "activation": _act.activation,
    "activation_grad": _act.activation_grad,
    "w2v_sg_batch": _w2v.w2v_sg_batch,
    "w2v_cbow_batch": _w2v.w2v_cbow_batch,
}
