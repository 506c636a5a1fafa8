"""Build script: cythonizes ``src_cython/*.pyx`` into ``fastnet._cython.*``.

Environment switches
--------------------
FASTNET_NO_OPENMP=1      compile without OpenMP (``prange`` loops then run serially).
FASTNET_BOUNDSCHECK=1    compile with boundscheck, initializedcheck and Python division on (the
                         memory-safety test build: .ci/boundscheck.sh); its C goes to
                         build/cython-checked/.
FASTNET_NO_CYTHON=1      skip the extensions entirely (the numba/reference backends still work).
FASTNET_MARCH=...        target CPU for the C compiler (default ``native``: this machine's
                         vector instructions and FMA, as Numba's JIT uses; set
                         ``FASTNET_MARCH=none`` for a portable build, e.g. a wheel to ship).
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


def _compiler_accepts(flags, code="int main(void){return 0;}\n"):
    """Try to compile and link a tiny C program with ``flags`` with the default C compiler."""
    if sys.platform == "win32":
        return False
    cc = os.environ.get("CC", "cc").split()
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "t.c")
        with open(src, "w") as fh:
            fh.write(code)
        res = subprocess.run(cc + list(flags) + [src, "-o", os.path.join(tmp, "t")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return res.returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _compiler_accepts_openmp():
    """Whether the C compiler builds and links a tiny OpenMP program (and it is wanted)."""
    if _flag("FASTNET_NO_OPENMP"):
        return False
    return _compiler_accepts(
        ["-fopenmp"], "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n")


def _arch_flags():
    """``-march=<FASTNET_MARCH>`` (default native) when the compiler accepts it, else nothing."""
    march = os.environ.get("FASTNET_MARCH", "native").strip()
    if not march or march.lower() in ("none", "0", "no", "off", "portable"):
        return []
    flag = ["-march=" + march]
    return flag if _compiler_accepts(flag) else []


def _extensions():
    if _flag("FASTNET_NO_CYTHON"):
        return []
    import numpy
    from Cython.Build import cythonize

    openmp = _compiler_accepts_openmp()
    checked = _flag("FASTNET_BOUNDSCHECK")
    # -ffp-contract=off: no implicit fused multiply-adds, so elementwise formulas round as
    # numpy's do; the kernels ask for FMA explicitly (f_fma in _common.pxd) in the
    # multiply-accumulate loops, where BLAS uses it too.
    compile_args = ["-O3", "-ffp-contract=off"] + _arch_flags()
    link_args = []
    if openmp:
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    if checked:
        # the checked build runs the generic (memoryview-indexed, bounds-checked) loops,
        # not the raw-pointer AVX-512 kernels of src_cython/fastnet_simd.h
        macros.append(("FASTNET_NO_SIMD", "1"))
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
            depends=sorted(glob.glob(os.path.join("src_cython", "*.pxd"))
                           + glob.glob(os.path.join("src_cython", "*.pxi"))
                           + glob.glob(os.path.join("src_cython", "*.h"))),
        ))
    directives = {
        "language_level": 3,
        "boundscheck": checked,
        # never wrap negative indices: with boundscheck on, a negative index is an error
        "wraparound": False,
        "cdivision": not checked,
        "initializedcheck": checked,
        "embedsignature": True,
    }
    out = cythonize(
        exts,
        include_path=["src_cython"],
        compiler_directives=directives,
        quiet=True,
        # the checked build's C files live apart (and are always regenerated), so that a
        # normal build never picks up checked C or the reverse
        build_dir=os.path.join("build", "cython-checked") if checked else None,
        force=checked,
    )
    # cythonize() drops optional=True; set it on what it returns so that a
    # failing C compiler leaves a working (numba/reference) install.
    for ext in out:
        ext.optional = not _flag("FASTNET_REQUIRE_CYTHON")
    return out


setup(ext_modules=_extensions())
