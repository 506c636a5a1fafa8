"""The thread count of the BLAS that Numba's ``np.dot`` calls (scipy's OpenBLAS).

Numba's ``np.dot`` inside ``@njit`` calls the ``sgemm``/``dgemm`` of
``scipy.linalg.cython_blas``.  Left alone, OpenBLAS splits every product
over all cores and its threads then spin, waiting for the next one: on the
mini-batches of a network (products of a few tens of microseconds, a dozen
per batch) the handing over costs more than it saves, and on a machine
whose cores are busy with other work a spinning thread that loses its core
stalls every product (measured here under load: 5 to 17 times slower
epochs).  So the dense path runs BLAS on one thread (:func:`single_thread`)
and makes its own threads where the work is large enough
(:func:`fastnet._threads.run_blocks` over blocks of rows, each calling BLAS
single-threaded).

The BLAS library is found through scipy's ``cython_blas`` extension:
``dlsym`` on its handle also searches the libraries it links to, so the
OpenBLAS it was built with answers whatever its file is called.  With
another BLAS (MKL, Accelerate, a system library without these functions)
the thread count is left as it is: :data:`CONTROL` is then ``None``.
"""
import ctypes
import threading

__all__ = ["CONTROL", "get_threads", "set_threads", "single_thread"]

# (getter, setter) names of the OpenBLAS builds scipy ships (scipy-openblas32/64, older wheels)
_NAMES = [("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
          ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
          ("openblas_get_num_threads", "openblas_set_num_threads"),
          ("openblas_get_num_threads64_", "openblas_set_num_threads64_")]


def _find():
    try:
        from scipy.linalg import cython_blas
        lib = ctypes.CDLL(cython_blas.__file__)
    except (ImportError, OSError, AttributeError):  # pragma: no cover - no scipy / no dlopen
        return None
    for get, set_ in _NAMES:
        try:
            g, s = getattr(lib, get), getattr(lib, set_)
        except AttributeError:
            continue
        g.restype = ctypes.c_int
        g.argtypes = []
        s.restype = None
        s.argtypes = [ctypes.c_int]
        return g, s
    return None  # pragma: no cover - another BLAS


#: ``(get_num_threads, set_num_threads)`` of scipy's OpenBLAS, or None if not found.
CONTROL = _find()

_lock = threading.Lock()
_depth = 0
_saved = None


def get_threads():
    """BLAS threads now (None if unknown)."""
    return CONTROL[0]() if CONTROL else None


def set_threads(n):
    """Set the BLAS thread count (no-op if the BLAS cannot be controlled)."""
    if CONTROL:
        CONTROL[1](int(n))


class single_thread:
    """Context manager: scipy's BLAS on one thread inside, its previous count restored after.

    Nested and concurrent uses (kernels running on several Python threads)
    share one setting: the count is restored when the last one leaves.
    """

    def __enter__(self):
        global _depth, _saved
        if CONTROL:
            with _lock:
                if _depth == 0:
                    _saved = CONTROL[0]()
                    if _saved != 1:
                        CONTROL[1](1)
                _depth += 1
        return self

    def __exit__(self, *exc):
        global _depth
        if CONTROL:
            with _lock:
                _depth -= 1
                if _depth == 0 and _saved != 1:
                    CONTROL[1](_saved)
        return False
