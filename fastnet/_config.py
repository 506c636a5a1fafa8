"""``fastnet.show_config()``: what this installation of fastnet runs on.

The version; the backends and which one is the default; for each Cython
extension module the build variant in use and why (:mod:`fastnet._cython._variants`)
and what ``setup.py`` built; the Numba and llvmlite versions and where Numba
caches compiled kernels; the BLAS (threadpoolctl's view when it is installed,
else scipy's own); the thread counts; the environment variables that change
any of it.  For bug reports and for checking what a ``pip install`` produced.
"""
import importlib.metadata
import importlib.util
import os
import platform
import sys

__all__ = ["show_config", "config"]

#: environment variables fastnet reads (shown when set)
ENV_VARS = ("FASTNET_BACKEND", "FASTNET_SIMD", "FASTNET_PATH", "FASTNET_NUM_THREADS",
            "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_CACHE_DIR", "NUMBA_NUM_THREADS",
            "FASTNET_DATA")


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu():
    from fastnet._cython import _variants
    feats = _variants.cpu_features()
    shown = [f for f in ("SSE42", "AVX", "AVX2", "FMA3", "AVX512F", "AVX512BW", "AVX512VL",
                         "AVX512DQ", "ASIMD", "NEON") if feats.get(f)]
    return {"machine": platform.machine(), "processor": platform.processor() or None,
            "features": shown}


def _backends():
    from fastnet import _backend
    available = _backend.available_backends()
    out = {"available": available, "unavailable": {}}
    for name in _backend.BACKENDS:
        if name not in available:
            out["unavailable"][name] = _backend._probe(name)
    try:
        out["default"] = _backend.get_backend()
    except Exception as exc:  # e.g. FASTNET_BACKEND asks for a missing backend
        out["default"] = None
        out["default_error"] = f"{type(exc).__name__}: {exc}"
    out["why"] = ("FASTNET_BACKEND" if os.environ.get("FASTNET_BACKEND", "").strip()
                  else "the first available in the preference order "
                       + " > ".join(_backend._DEFAULT_ORDER))
    return out


def _cython():
    from fastnet._cython import _variants
    record = _variants.build_record()
    names = list((record or {}).get("modules") or ())
    if not names:
        from fastnet._cython import REQUIRED_MODULES
        names = list(REQUIRED_MODULES)
    modules = {}
    for name in names:
        built = [v for v in _variants.VARIANTS if _variants.built(name, v)]
        try:
            variant, why = _variants.choose(name)
        except Exception as exc:
            variant, why = None, f"{type(exc).__name__}: {exc}"
        modules[name] = {"variant": variant, "why": why, "built": built}
    out = {"modules": modules, "build": record}
    try:
        mlp = _variants.load("mlp")
        out["openmp"] = bool(mlp.openmp_enabled())
    except Exception:
        out["openmp"] = None
    return out


def _numba_cache_dir():
    """Where Numba caches fastnet's kernels: numba's own choice of locator (its
    ``NUMBA_CACHE_DIR``, read when numba was imported; else ``__pycache__`` beside the
    kernels' source when writable; else a per-user cache directory)."""
    try:
        from numba.core import caching
    except ImportError:
        return None, "numba is not installed"
    spec = importlib.util.find_spec("fastnet._numba")
    py_file = os.path.join(os.path.dirname(spec.origin), "network.py")

    def probe():  # a stand-in for a kernel defined in fastnet/_numba/network.py
        pass
    probe.__module__ = "fastnet._numba.network"
    probe.__qualname__ = "probe"
    # (numba < 0.59 names them with a leading underscore)
    names = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")
    for cls in (getattr(caching, n, None) or getattr(caching, "_" + n, None) for n in names):
        if cls is None:
            continue
        try:
            loc = cls.from_function(probe, py_file)
        except Exception:
            loc = None
        if loc is not None:
            return loc.get_cache_path(), cls.__name__.lstrip("_")
    return None, "unknown"


def _numba():
    out = {"numba": _version("numba"), "llvmlite": _version("llvmlite")}
    path, how = _numba_cache_dir()
    out["cache_dir"], out["cache_locator"] = path, how
    return out


def _blas():
    out = {}
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        import numpy  # noqa: F401  (load the BLAS libraries threadpoolctl inspects)
        try:
            import scipy.linalg  # noqa: F401
        except ImportError:
            pass
        out["threadpoolctl"] = [
            {k: lib.get(k) for k in ("user_api", "internal_api", "prefix", "version",
                                     "num_threads", "threading_layer", "architecture",
                                     "filepath")}
            for lib in threadpoolctl.threadpool_info()]
    from fastnet._cython import _blas as cyblas
    out["scipy_blas"] = cyblas.info()
    return out


def _threads():
    from fastnet import _threads as th
    try:
        default = th.default_threads()
    except ValueError as exc:
        default = f"error: {exc}"
    return {"fastnet": default, "cpus": os.cpu_count()}


def config() -> dict:
    """Everything :func:`show_config` prints, as a dict."""
    from fastnet import __version__
    import numpy
    return {
        "fastnet": __version__,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": _version("scipy"),
        "cpu": _cpu(),
        "backends": _backends(),
        "cython": _cython(),
        "numba": _numba(),
        "blas": _blas(),
        "threads": _threads(),
        "environment": {k: os.environ[k] for k in ENV_VARS if os.environ.get(k)},
    }


def _lines(cfg):
    b = cfg["backends"]
    yield f"fastnet {cfg['fastnet']} (Python {cfg['python']}, numpy {cfg['numpy']}, " \
          f"scipy {cfg['scipy']})"
    cpu = cfg["cpu"]
    yield f"CPU: {cpu['machine']}; features: {' '.join(cpu['features']) or 'none reported'}"
    yield ""
    yield "backends:"
    yield f"  available: {', '.join(b['available'])} (preference order)"
    for name, why in b["unavailable"].items():
        yield f"  not available: {name}: {why}"
    if b.get("default"):
        yield f"  default: {b['default']} ({b['why']})"
    else:
        yield f"  default: none: {b.get('default_error')}"
    yield ""
    cy = cfg["cython"]
    yield "cython extensions (fastnet._cython):"
    for name, m in cy["modules"].items():
        built = ", ".join(m["built"]) or "none"
        yield f"  {name}: {m['variant'] or '-'} -- {m['why']} [built: {built}]"
    rec = cy.get("build")
    if rec:
        flags = " ".join(rec.get("compile_args", []))
        yield f"  build: {rec.get('compiler')} {flags}; Cython {rec.get('cython')}, " \
              f"numpy {rec.get('numpy')}; OpenMP {'on' if rec.get('openmp') else 'off'}" \
              + ("; bounds-checked" if rec.get("boundscheck") else "") \
              + (f"; -march={rec['march']}" if rec.get("march") else "")
        for v, why in (rec.get("skipped") or {}).items():
            yield f"  not built: {v}: {why}"
        for mod, why in (rec.get("failed") or {}).items():
            yield f"  failed to build: {mod}: {why}"
    else:
        yield "  build: no record (fastnet/_cython/_build_config.py is missing)"
    yield ""
    nb = cfg["numba"]
    yield f"numba {nb['numba'] or 'not installed'}, llvmlite {nb['llvmlite'] or 'not installed'}"
    yield f"  cache dir: {nb['cache_dir']} ({nb['cache_locator']})"
    yield ""
    yield "BLAS:"
    for lib in cfg["blas"].get("threadpoolctl", []):
        yield f"  {lib['internal_api']} {lib['version']} ({lib['prefix']}, " \
              f"{lib['threading_layer']}, {lib['architecture']}): {lib['num_threads']} " \
              f"threads -- {lib['filepath']}"
    sb = cfg["blas"]["scipy_blas"]
    yield f"  scipy.linalg.cython_blas (the dense path's GEMMs): {sb['blas'] or 'unknown'}" \
          + (f", {sb['threads']} threads" if sb["threads"] is not None else "") \
          + (f" -- {sb['config']}" if sb["config"] else "")
    yield ""
    th = cfg["threads"]
    yield f"threads: {th['fastnet']} (fastnet's thread blocks), {th['cpus']} CPUs"
    env = cfg["environment"]
    yield "environment: " + (", ".join(f"{k}={v}" for k, v in env.items()) or "nothing set")


def show_config(mode="stdout"):
    """Print fastnet's configuration: version, backends (and the default), the Cython
    extensions' build variants (and why each is used), Numba and its cache directory,
    the BLAS, the threads.

    Parameters
    ----------
    mode : {'stdout', 'dicts'}
        ``'stdout'`` prints it; ``'dicts'`` returns it as a dict instead.
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"show_config: mode must be 'stdout' or 'dicts', got {mode!r}")
    cfg = config()
    if mode == "dicts":
        return cfg
    print("\n".join(_lines(cfg)))
    return None
