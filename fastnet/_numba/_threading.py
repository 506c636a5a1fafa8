"""Numba's threading layer as the numba kernels use it (``prange``).

* :func:`parallel_ok`: whether the layer is safe to launch from any thread: TBB or OpenMP.
  Numba's ``workqueue`` fallback aborts the process on concurrent launches, so with it every
  kernel runs on one thread.
* **Nesting.** When Numba's OpenMP layer starts its threads, it turns on nested parallelism in
  the process's GNU OpenMP runtime: ``omp_set_nested(1)`` in ``launch_threads`` of
  ``numba/np/ufunc/omppool.cpp``.  Any other library on that runtime then runs its inner
  parallel regions on threads of their own.  PyTorch is one: here it shares the system's
  ``libgomp``, and each BLAS call it makes inside its own parallel region spawns more threads
  than there are cores.  Measured on 2 cores (AMD EPYC Zen 4): a PyTorch LSTM epoch (H = 128,
  ``benchmarks/bench_rnn.py``'s) took 2.1 to 2.3 s in a process where Numba had run one
  ``prange``, against 1.4 to 1.6 s without it.  So :func:`parallel_ok` starts Numba's threads
  itself, on the calling thread.  It then sets the runtime's ``max-active-levels`` back to
  what it was before, which is 1 unless ``OMP_MAX_ACTIVE_LEVELS`` or ``OMP_NESTED`` said
  otherwise.  After that the PyTorch epoch took 1.4 to 1.5 s.  fastnet's kernels never nest
  a ``prange``.
"""
import ctypes
import importlib

__all__ = ["parallel_ok"]

_OK = None


def _omp_runtime():
    """The OpenMP runtime that Numba's ``omppool`` links to (``dlsym`` on the extension's
    handle also searches its libraries), or None."""
    try:
        mod = importlib.import_module("numba.np.ufunc.omppool")
        lib = ctypes.CDLL(mod.__file__)
        get, set_ = lib.omp_get_max_active_levels, lib.omp_set_max_active_levels
    except (ImportError, OSError, AttributeError):
        return None
    get.restype, get.argtypes = ctypes.c_int, []
    set_.restype, set_.argtypes = None, [ctypes.c_int]
    return get, set_


def _launch():
    """Start Numba's threads now, on this thread, and undo the OpenMP layer's nesting."""
    import numba
    omp = _omp_runtime()
    before = omp[0]() if omp else None
    numba.get_num_threads()     # launches the threading layer (once per process)
    try:
        layer = numba.threading_layer()
    except ValueError:  # pragma: no cover - not launched
        return
    if omp and layer == "omp" and omp[0]() != before:
        omp[1](before)


def parallel_ok():
    """Whether Numba's threading layer is TBB or OpenMP (safe to launch from any thread); the
    first call also starts its threads (see the module's docstring, "Nesting")."""
    global _OK
    if _OK is None:
        import numba
        wanted = str(numba.config.THREADING_LAYER).lower()
        pools = {"tbb": ["tbbpool"], "omp": ["omppool"]}.get(wanted, ["tbbpool", "omppool"])
        if wanted == "workqueue":
            pools = []
        ok = False
        for pool in pools:
            try:
                importlib.import_module("numba.np.ufunc." + pool)
            except Exception:  # noqa: BLE001 - a missing TBB or OpenMP runtime
                continue
            ok = True
            break
        if ok:
            _launch()
        _OK = ok
    return _OK
