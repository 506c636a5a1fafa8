"""Which build of each Cython extension module runs here: the per-CPU variants.

``setup.py`` compiles every module ``NAME`` in up to three variants (x86-64):
``fastnet._cython.NAME`` (baseline x86-64, any CPU), ``NAME_avx2`` (AVX2 + FMA)
and ``NAME_avx512`` (AVX-512 F/BW/VL/DQ), the same source each time.  The
first :func:`load` of a module imports the best variant that was built and that
this CPU supports (numpy's ``__cpu_features__``: the instructions *and* the
operating system's support for their registers).  ``FASTNET_SIMD=baseline|avx2|
avx512`` forces one; asking for a variant the CPU lacks, or one that was not
built, raises :class:`SimdVariantError` saying why and what to do -- nothing is
swapped in silently.  :func:`report` says, for each module, which variant is in
use and why (``fastnet.show_config()`` prints it).

Pure Python, imports nothing compiled until :func:`load` is called.
"""
import importlib
import importlib.util
import os
import threading

from fastnet._backend import BackendUnavailableError

__all__ = ["VARIANTS", "REQUIRES", "SimdVariantError", "cpu_features", "requested",
           "supports", "built", "build_record", "choose", "load", "report"]

#: The variants, from the most portable to the fastest.
VARIANTS = ("baseline", "avx2", "avx512")

#: The CPU features (numpy's names) each variant's instructions need.
REQUIRES = {
    "baseline": (),
    "avx2": ("AVX2", "FMA3"),
    "avx512": ("AVX512F", "AVX512BW", "AVX512VL", "AVX512DQ", "AVX2", "FMA3"),
}

_HOW = ("rebuild with `pip install .` (or `python setup.py build_ext --inplace`) using a C "
        "compiler that accepts the variant's flags, or unset FASTNET_SIMD to use the best "
        "variant built")


class SimdVariantError(BackendUnavailableError):
    """``FASTNET_SIMD`` asks for a variant this CPU cannot run or that was not built."""

    #: not skipped when the default backend is resolved: the setting must be fixed
    fatal = True


def cpu_features() -> dict:
    """numpy's view of the CPU: feature name -> bool (empty when numpy does not say)."""
    for path in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            return dict(importlib.import_module(path).__cpu_features__)
        except (ImportError, AttributeError):
            continue
    return {}


def requested():
    """The variant ``FASTNET_SIMD`` asks for, or None (the best one)."""
    env = os.environ.get("FASTNET_SIMD", "").strip().lower()
    if not env or env in ("auto", "best"):
        return None
    if env not in VARIANTS:
        raise SimdVariantError(f"FASTNET_SIMD={env!r}: expected one of "
                               f"{', '.join(VARIANTS)} (or unset: the best this CPU supports)")
    return env


def supports(variant, features=None):
    """``(ok, missing)``: whether this CPU runs ``variant``, and the features it lacks."""
    feats = cpu_features() if features is None else features
    missing = [f for f in REQUIRES[variant] if not feats.get(f)]
    return not missing, missing


def module_name(name, variant):
    return f"fastnet._cython.{name}" if variant == "baseline" else f"fastnet._cython.{name}_{variant}"


def built(name, variant) -> bool:
    """Whether variant ``variant`` of module ``name`` is installed (no import)."""
    try:
        return importlib.util.find_spec(module_name(name, variant)) is not None
    except (ImportError, ValueError):
        return False


def choose(name, features=None):
    """``(variant, reason)`` for module ``name``: ``FASTNET_SIMD``'s, else the best built one
    this CPU supports.  Raises :class:`SimdVariantError` for an impossible request."""
    want = requested()
    if want is not None:
        ok, missing = supports(want, features)
        if not ok:
            raise SimdVariantError(
                f"FASTNET_SIMD={want!r}: this CPU lacks {', '.join(missing)} (numpy's "
                f"__cpu_features__), so the {want} build of fastnet._cython.{name} would "
                f"crash with an illegal instruction; use FASTNET_SIMD=baseline or unset it")
        if not built(name, want):
            raise SimdVariantError(
                f"FASTNET_SIMD={want!r}: the {want} variant of fastnet._cython.{name} "
                f"({module_name(name, want)}) was not built; {_HOW}")
        return want, "FASTNET_SIMD=" + want
    notes = []
    for variant in reversed(VARIANTS):
        ok, missing = supports(variant, features)
        if not ok:
            notes.append(f"{variant}: CPU lacks {'/'.join(missing)}")
            continue
        if not built(name, variant):
            notes.append(f"{variant}: not built")
            continue
        march = (build_record() or {}).get("march")
        if march:
            return variant, (f"the only build: compiled with -march={march} (FASTNET_MARCH), "
                             f"for CPUs like the build machine's")
        feats = "/".join(REQUIRES[variant][:2]) if variant != "baseline" else "any CPU"
        why = f"the best variant built that this CPU supports ({feats})"
        return variant, why + ("; " + ", ".join(notes) if notes else "")
    raise SimdVariantError(f"no variant of fastnet._cython.{name} is installed; {_HOW}")


def build_record():
    """What ``setup.py`` recorded about the build (``fastnet/_cython/_build_config.py``),
    or None when there is no record."""
    try:
        return dict(importlib.import_module("fastnet._cython._build_config").BUILD)
    except (ImportError, AttributeError):
        return None


_lock = threading.Lock()
_loaded = {}   # name -> (module, variant, reason)


def load(name):
    """The module ``fastnet._cython.<name>`` in the variant :func:`choose` picks (imported once)."""
    with _lock:
        hit = _loaded.get(name)
        if hit is None:
            variant, why = choose(name)
            hit = (importlib.import_module(module_name(name, variant)), variant, why)
            _loaded[name] = hit
        return hit[0]


def report():
    """``{name: (variant, reason)}`` of the modules loaded so far."""
    with _lock:
        return {name: (v, why) for name, (_, v, why) in _loaded.items()}
