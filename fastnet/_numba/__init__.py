"""The ``numba`` backend: the kernel contract as ``@njit`` functions.

Importing this package imports nothing heavy (so that
:func:`fastnet.available_backends` can look for it cheaply); the kernels live
in :mod:`fastnet._numba.kernels`, which imports Numba and is loaded the first
time the backend is used.  Serial kernels are compiled on first call and
cached on disk (``cache=True``); the few ``parallel=True`` kernels are never
cached and are compiled once per process.
"""
