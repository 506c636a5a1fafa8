# cython: language_level=3
# distutils: extra_compile_args = -fno-trapping-math -fno-signed-zeros -fassociative-math -fno-math-errno
"""Word2vec kernels in Cython: :mod:`fastnet.reference.word2vec_kernels`, compiled.

Same names, signatures, random draws and update rule as the reference (read
its docstring for the contract) and as the Numba kernels.  Each ``def``
checks its arguments, then trains inside ``with nogil:`` over
``cdef ... noexcept nogil`` helpers, so Python threads run jobs in parallel,
lock-free on the shared matrices (as word2vec.c and gensim do).

Speed: float32 throughout, the sigmoid table, O(1) noise draws (guide table,
no modulo), one set of noise words per centre word shared by its window
(pWord2Vec), and the two small matrix products of each centre word written as
passes over 6, 4, 2 or 1 rows at once (``_dot6``, ``_pass6``...): few, fat
loops, up to 6 multiply-adds per load and store.  This file is compiled with ``-fassociative-math
-fno-signed-zeros -fno-trapping-math -fno-math-errno`` (the C analogue of the
Numba kernels' ``reassoc, nsz`` fastmath flags; never ``-ffinite-math-only``)
so that gcc vectorises the dot products.

The code lives in ``_word2vec_impl.pxi``.  Like every extension module it is
built in per-CPU variants (``word2vec``: baseline x86-64; ``word2vec_avx2``:
``-mavx2 -mfma``, twice the vector width; ``word2vec_avx512``), and the cython
backend imports the best one the CPU supports (:mod:`fastnet._cython._variants`).
"""
include "_word2vec_impl.pxi"
