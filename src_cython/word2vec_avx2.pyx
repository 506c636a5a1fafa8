# cython: language_level=3
# distutils: extra_compile_args = -mavx2 -mfma -fno-trapping-math -fno-signed-zeros -fassociative-math -fno-math-errno
"""Word2vec kernels compiled for AVX2 + FMA: the code of ``word2vec.pyx`` (see its docstring).

Never import this module on a CPU without AVX2 and FMA (any instruction in it
may use them): :mod:`fastnet._cython.backend` checks the CPU first.  If the
compiler refuses the flags, the build skips this (optional) module and the
backend uses the baseline ``word2vec`` module.
"""
include "_word2vec_impl.pxi"
