"""One BLAS thread per fastnet thread: :func:`single_threaded`.

The convolution kernels split a batch over images on fastnet's own threads
(:mod:`fastnet._threads`), each calling BLAS (``np.dot`` inside ``@njit``,
``scipy.linalg.cython_blas`` in Cython: the same library) on its block.  If
BLAS then started threads of its own, the two kinds of threads would fight
for the cores: measured on a busy 2-core machine, one 6272 x 200 x 16
``sgemm`` took 60 ms with OpenBLAS's two threads against 2.5 ms with one.
So, while a kernel runs, each of its threads asks scipy's OpenBLAS for one
thread -- ``openblas_set_num_threads_local`` (OpenBLAS >= 0.3.27), which
affects the calling thread only -- and restores the previous value after.

The library is found among the shared objects mapped into the process
(Linux ``/proc/self/maps``): the OpenBLAS that scipy ships (or any LP64
OpenBLAS).  When there is none (another BLAS, another OS), or it is older
than 0.3.27, :func:`single_threaded` does nothing and :data:`CONTROL` says so.
"""
import contextlib
import ctypes
import os
import threading

__all__ = ["single_threaded", "setter_address", "CONTROL", "blas_library"]

_lock = threading.Lock()
_setter = None
_looked = False
#: How BLAS threads are controlled: 'thread-local' (OpenBLAS >= 0.3.27) or 'none'.
CONTROL = "none"


def _candidates():
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split(None, 5)[5].strip() for line in fh if "openblas" in line.lower()
                     and len(line.split(None, 5)) == 6}
    except OSError:
        return []
    # scipy's own OpenBLAS first (the one scipy.linalg.cython_blas calls), ILP64 builds last
    return sorted(paths, key=lambda p: ("scipy.libs" not in p and "scipy" not in p,
                                        "64_" in os.path.basename(p), p))


def blas_library():
    """Path of the OpenBLAS whose threads :func:`single_threaded` controls (or None)."""
    _find()
    return _setter[1] if _setter else None


def _find():
    global _setter, _looked, CONTROL
    if _looked:
        return _setter
    with _lock:
        if _looked:
            return _setter
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (maps scipy's BLAS into the process)
        except ImportError:  # pragma: no cover - scipy is a dependency
            pass
        for path in _candidates():
            try:
                lib = ctypes.CDLL(path)
                fn = lib.openblas_set_num_threads_local
            except (OSError, AttributeError):
                continue
            fn.argtypes = [ctypes.c_int]
            fn.restype = ctypes.c_int
            _setter = (fn, path)
            CONTROL = "thread-local"
            break
        _looked = True
    return _setter


@contextlib.contextmanager
def single_threaded():
    """Within the block, BLAS calls made by this thread use one thread (see the module)."""
    found = _find()
    if found is None:
        yield
        return
    fn = found[0]
    previous = fn(1)
    try:
        yield
    finally:
        fn(previous if previous > 0 else 0)


def setter_address():
    """The address of ``openblas_set_num_threads_local`` (0 when there is none), for the
    Cython kernels, whose OpenMP threads call it themselves."""
    found = _find()
    if found is None:
        return 0
    return ctypes.cast(found[0], ctypes.c_void_p).value or 0
