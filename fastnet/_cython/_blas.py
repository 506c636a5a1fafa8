"""The BLAS behind ``scipy.linalg.cython_blas`` (the GEMMs of the dense path): which one, and
its thread count.

The dense path's mini-batch GEMMs are small (a batch of 32 through a 784-50-10
network is ~0.1 ms of work).  A threaded BLAS wakes its worker threads for each
one; on a machine whose cores are busy with other processes (or with the other
workers of a ``GridSearchCV(n_jobs=2)``) each wake-up can wait for a scheduler
time slice, and an epoch of such batches was measured 25x slower than with one
thread.  So the dense kernels run a call with the BLAS on one thread when its
batches are small (they decide), and restore the previous setting after; large
GEMMs (full batches) keep the BLAS's threads.  They call the BLAS's own
functions, whose addresses :func:`addresses` gives.

The setting is process-wide (it is the BLAS's own): concurrent callers are
counted, the BLAS goes back to its thread count when the last one is done.
OpenBLAS (scipy's wheels: ``scipy_openblas_*``; other builds ``openblas_*``),
MKL and BLIS are recognised; with another BLAS nothing is changed.
"""
import ctypes

__all__ = ["info", "addresses"]

#: (library, set threads, get threads, version string) symbol names, by BLAS
_APIS = (
    ("OpenBLAS", "scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads",
     "scipy_openblas_get_config"),
    ("OpenBLAS", "scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_",
     "scipy_openblas_get_config64_"),
    ("OpenBLAS", "openblas_set_num_threads", "openblas_get_num_threads", "openblas_get_config"),
    ("MKL", "MKL_Set_Num_Threads", "MKL_Get_Max_Threads", None),
    ("BLIS", "bli_thread_set_num_threads", "bli_thread_get_num_threads", None),
)

_api = None          # (name, set, get, config) once looked up; False: none found


def _lookup():
    global _api
    if _api is None:
        _api = False
        try:
            from scipy.linalg import cython_blas
            lib = ctypes.CDLL(cython_blas.__file__)
        except (ImportError, OSError):
            return _api
        for name, set_, get, config in _APIS:
            try:
                fset, fget = getattr(lib, set_), getattr(lib, get)
            except AttributeError:
                continue
            fset.argtypes, fset.restype, fget.restype = [ctypes.c_int], None, ctypes.c_int
            fconf = getattr(lib, config, None) if config else None
            if fconf is not None:
                fconf.restype = ctypes.c_char_p
            _api = (name, fset, fget, fconf)
            break
    return _api


def info() -> dict:
    """``{'blas': name, 'config': ..., 'threads': n}`` of scipy's BLAS (None where unknown)."""
    api = _lookup()
    if not api:
        return {"blas": None, "config": None, "threads": None}
    name, _, fget, fconf = api
    config = fconf().decode(errors="replace") if fconf is not None else None
    return {"blas": name, "config": config, "threads": int(fget())}


def addresses():
    """``(set, get)``: the addresses of the BLAS's set/get-threads functions (0, 0 when none
    is known), for the Cython kernels, which switch it to one thread around a call
    themselves (``_blas_enter``/``_blas_exit`` of ``src_cython/_mlp_dense.pxi``: a few
    nanoseconds with the GIL as their lock, against 4.5 us for a Python context manager
    that took a lock and made three ctypes calls, on each epoch)."""
    api = _lookup()
    if not api:
        return 0, 0
    return (ctypes.cast(api[1], ctypes.c_void_p).value or 0,
            ctypes.cast(api[2], ctypes.c_void_p).value or 0)
