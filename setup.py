"""Build script: cythonizes ``src_cython/*.pyx`` into ``fastnet._cython.*``.

Environment switches
--------------------
FASTNET_NO_OPENMP=1      compile without OpenMP (``prange`` loops then run serially).
FASTNET_BOUNDSCHECK=1    compile with boundscheck/wraparound on (memory-safety test build).
FASTNET_NO_CYTHON=1      skip the extensions entirely (the numba/reference backends still work).
"""
import os
import sys
import glob
import shutil
import subprocess
import tempfile

from setuptools import setup, Extension

HERE = os.path.dirname(os.path.abspath(__file__))


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _compiler_accepts_openmp():
    """Try to compile and link a tiny OpenMP program with the default C compiler."""
    if _flag("FASTNET_NO_OPENMP") or sys.platform == "win32":
        return False
    cc = os.environ.get("CC", "cc")
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "t.c")
        with open(src, "w") as fh:
            fh.write("#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
        res = subprocess.run([cc, "-fopenmp", src, "-o", os.path.join(tmp, "t")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return res.returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extensions():
    if _flag("FASTNET_NO_CYTHON"):
        return []
    import numpy
    from Cython.Build import cythonize

    openmp = _compiler_accepts_openmp()
    checked = _flag("FASTNET_BOUNDSCHECK")
    compile_args = ["-O3"]
    link_args = []
    if openmp:
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    exts = []
    for pyx in sorted(glob.glob(os.path.join("src_cython", "*.pyx"))):
        name = os.path.splitext(os.path.basename(pyx))[0]
        exts.append(Extension(
            "fastnet._cython." + name,
            [pyx],
            include_dirs=[numpy.get_include(), "src_cython"],
            define_macros=macros,
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        ))
    directives = {
        "language_level": 3,
        "boundscheck": checked,
        "wraparound": checked,
        "cdivision": not checked,
        "initializedcheck": checked,
        "embedsignature": True,
    }
    out = cythonize(
        exts,
        include_path=["src_cython"],
        compiler_directives=directives,
        quiet=True,
    )
    # cythonize() drops optional=True; set it on what it returns so that a
    # failing C compiler leaves a working (numba/reference) install.
    for ext in out:
        ext.optional = not _flag("FASTNET_REQUIRE_CYTHON")
    return out


setup(ext_modules=_extensions())
