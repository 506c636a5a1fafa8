"""The ``numba`` backend: the kernel contract as ``@njit`` functions.

Importing this package imports nothing heavy (so that
:func:`fastnet.available_backends` can look for it cheaply); the kernels live
in :mod:`fastnet._numba.kernels`, which imports Numba and is loaded the first
time the backend is used.  Every kernel is compiled on its first call with
new argument types and cached on disk (``cache=True``: beside the sources,
or in a per-user directory when they are read-only, see
:mod:`fastnet._numba._cache`); the first compilation in a process says so on
stderr (:mod:`fastnet._numba._compile_notice`).

Modules: ``network`` (the checked wrappers and the path choice), ``_dense``
(whole batches through BLAS), ``_online`` (batch-1 SGD), ``_rows`` and
``_sparse`` (row kernels and the zero-skipping path), ``_optim`` (optimiser
steps and penalties), ``_elementwise`` and ``_vmath`` (activations, losses,
a vectorisable ``exp``), ``_linear`` (linear models), ``_blas`` (BLAS
threads), ``word2vec``.
"""
