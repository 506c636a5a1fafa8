"""The ``numba`` backend: ``@njit`` kernels with the names and signatures of :mod:`fastnet.reference`.

Nothing here is imported by ``import fastnet``; :mod:`fastnet._numba.kernels`
gathers the kernel table the first time the backend is used.
"""
