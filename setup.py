"""Build script: cythonizes ``src_cython/*.pyx`` into ``fastnet._cython.*``, in per-CPU variants.

Variants
--------
On x86-64 every ``src_cython/NAME.pyx`` is compiled three times, so that a wheel
runs on any x86-64 CPU and still uses the vector instructions of the one it runs on:

=============================  ===================================================
``fastnet._cython.NAME``       baseline x86-64 (SSE2): any x86-64 CPU
``fastnet._cython.NAME_avx2``  ``-mavx2 -mfma``
``fastnet._cython.NAME_avx512`` ``-mavx512f -mavx512bw -mavx512vl -mavx512dq``
=============================  ===================================================

The last two only when the C compiler accepts their flags.  Their sources are
generated stubs (``build/cython-variants/NAME_avx2.pyx``: ``include "NAME.pyx"``),
so a new ``src_cython/*.pyx`` gets its variants without any change here.  At
import :mod:`fastnet._cython._variants` loads the best variant the CPU supports
(``FASTNET_SIMD`` forces one).  Other CPUs (aarch64...) build the baseline only.
What was built is recorded in ``fastnet/_cython/_build_config.py`` (read by
``fastnet.show_config()``).

Environment switches
--------------------
FASTNET_SIMD_BUILD=a,b   build only these variants (``baseline`` is always built).
FASTNET_MARCH=native     opt-in for local builds: each module once, with ``-march=native``
                         (or any ``-march`` value), no variants.  The result may not run on
                         another CPU: never ship it.
FASTNET_NO_OPENMP=1      compile without OpenMP (``prange`` loops then run serially).
FASTNET_BOUNDSCHECK=1    compile with boundscheck, initializedcheck and Python division on (the
                         memory-safety test build: .ci/boundscheck.sh); its C goes to
                         build/cython-checked/.
FASTNET_NO_CYTHON=1      skip the extensions entirely (the numba/reference backends still work).
FASTNET_REQUIRE_CYTHON=1 a failing extension fails the build (else it is skipped with a warning).

The C files are compiled in parallel (``build_ext --parallel``, default: one job per CPU).
"""
import os
import sys
import glob
import platform
import pprint
import shutil
import subprocess
import tempfile

from setuptools import setup, Extension
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = "src_cython"
STUBS = os.path.join("build", "cython-variants")

#: variant -> extra compiler flags (x86-64); keep in step with fastnet/_cython/_variants.py
VARIANT_FLAGS = {
    "baseline": [],
    "avx2": ["-mavx2", "-mfma"],
    "avx512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma"],
}


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _is_x86_64():
    return platform.machine().lower() in ("x86_64", "amd64", "x64")


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


def _variants(notes):
    """``{variant: flags}`` to build, and the reasons for those left out (into ``notes``)."""
    march = os.environ.get("FASTNET_MARCH", "").strip()
    if march and march.lower() not in ("none", "0", "no", "off", "portable"):
        flag = ["-march=" + march]
        if _compiler_accepts(flag):
            notes["march"] = march
            return {"baseline": flag}
        notes["march_refused"] = march
    if not _is_x86_64():
        notes["skipped"] = {v: f"not an x86-64 machine ({platform.machine()})"
                            for v in VARIANT_FLAGS if v != "baseline"}
        return {"baseline": []}
    wanted = os.environ.get("FASTNET_SIMD_BUILD", "").strip()
    wanted = {w.strip().lower() for w in wanted.split(",") if w.strip()} if wanted else None
    out, skipped = {}, {}
    for name, flags in VARIANT_FLAGS.items():
        if name != "baseline" and wanted is not None and name not in wanted:
            skipped[name] = "not asked for (FASTNET_SIMD_BUILD)"
        elif name != "baseline" and not _compiler_accepts(flags):
            skipped[name] = "the C compiler refused " + " ".join(flags)
            print(f"fastnet setup: not building the {name} variants: {skipped[name]}",
                  file=sys.stderr)
        else:
            out[name] = flags
    if skipped:
        notes["skipped"] = skipped
    return out


def _stub(name, variant):
    """The generated source of variant ``variant`` of module ``name``: the module's own
    ``# cython:`` / ``# distutils:`` header lines, then ``include "name.pyx"``."""
    with open(os.path.join(SRC, name + ".pyx")) as fh:
        header = [line for line in fh.read().splitlines()
                  if line.startswith(("# cython:", "# distutils:"))]
    text = "\n".join(
        [f"# Generated by setup.py: the {variant} variant of src_cython/{name}.pyx. Do not edit."]
        + header + [f'include "{name}.pyx"', ""])
    os.makedirs(STUBS, exist_ok=True)
    path = os.path.join(STUBS, f"{name}_{variant}.pyx")
    old = None
    if os.path.exists(path):
        with open(path) as fh:
            old = fh.read()
    if old != text:            # keep the timestamp (no rebuild) when nothing changed
        with open(path, "w") as fh:
            fh.write(text)
    return path


BUILD_NOTES = {}


def _extensions():
    if _flag("FASTNET_NO_CYTHON"):
        return []
    import numpy
    from Cython.Build import cythonize

    openmp = _compiler_accepts_openmp()
    checked = _flag("FASTNET_BOUNDSCHECK")
    variants = _variants(BUILD_NOTES)
    # -ffp-contract=off: no implicit fused multiply-adds, so elementwise formulas round as
    # numpy's do; the kernels ask for FMA explicitly (f_fma in _common.pxd) in the
    # multiply-accumulate loops, where BLAS uses it too.  -fno-math-errno (sqrt need not
    # set errno) and -fno-trapping-math (no code relies on floating-point traps) change no
    # result; without the latter gcc keeps the selects of the branch-free exp/tanh/sigmoid
    # as branches and none of the activation loops vectorises.
    base_args = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
    link_args = []
    if openmp:
        base_args.append("-fopenmp")
        link_args.append("-fopenmp")
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    # Cython tracks the .pxd/.pxi a module uses (it regenerates only the C that changed);
    # the C headers it includes are the C compiler's dependencies
    depends = sorted(glob.glob(os.path.join(SRC, "*.h")))
    exts = []
    names = sorted(os.path.splitext(os.path.basename(p))[0]
                   for p in glob.glob(os.path.join(SRC, "*.pyx")))
    for name in names:
        for variant, flags in variants.items():
            if variant == "baseline":
                mod, src = name, os.path.join(SRC, name + ".pyx")
            else:
                mod, src = f"{name}_{variant}", _stub(name, variant)
            exts.append(Extension(
                "fastnet._cython." + mod,
                [src],
                include_dirs=[numpy.get_include(), SRC],
                define_macros=macros,
                extra_compile_args=base_args + flags,
                extra_link_args=link_args,
                depends=depends,
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
        include_path=[SRC],
        compiler_directives=directives,
        quiet=True,
        nthreads=os.cpu_count() or 1,
        # the checked build's C files live apart (and are always regenerated), so that a
        # normal build never picks up checked C or the reverse
        build_dir=os.path.join("build", "cython-checked") if checked else None,
        force=checked,
    )
    # cythonize() drops optional=True; set it on what it returns so that a
    # failing C compiler leaves a working (numba/reference) install.
    for ext in out:
        ext.optional = not _flag("FASTNET_REQUIRE_CYTHON")
    BUILD_NOTES.update(variants={v: f for v, f in variants.items()}, modules=names,
                       openmp=openmp, boundscheck=checked,
                       compile_args=base_args, machine=platform.machine())
    return out


class BuildExt(build_ext):
    """``build_ext`` that compiles in parallel by default and records what it built in
    ``fastnet/_cython/_build_config.py`` (next to the compiled modules)."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None and not _flag("FASTNET_SERIAL_BUILD"):
            self.parallel = os.cpu_count() or 1

    def run(self):
        self._failed = {}
        self._remove_stale()
        super().run()
        self._write_config()

    def _remove_stale(self):
        """Delete compiled modules of fastnet._cython this build does not make (a variant no
        longer built, a removed source): left there, a stale build could be imported, or
        packed into a wheel built in the same tree."""
        if not self.extensions:
            return
        import sysconfig
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        names = {ext.name for ext in self.extensions}
        dirs = {os.path.join(self.build_lib, "fastnet", "_cython")}
        if self.inplace:
            dirs.add(os.path.join(HERE, "fastnet", "_cython"))
        for d in dirs:
            for path in glob.glob(os.path.join(d, "*" + suffix)):
                mod = "fastnet._cython." + os.path.basename(path)[:-len(suffix)]
                if mod not in names:
                    os.remove(path)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # recorded, then handled by setuptools (optional: skipped)
            self._failed[ext.name] = str(exc).strip().splitlines()[-1][:200] if str(exc) else \
                type(exc).__name__
            raise

    def _write_config(self):
        if not self.extensions:
            return
        target = os.path.dirname(self.get_ext_fullpath(self.extensions[0].name))
        try:
            import Cython
            cython_version = Cython.__version__
        except ImportError:  # pragma: no cover
            cython_version = None
        import numpy
        record = dict(BUILD_NOTES, failed=dict(self._failed), cython=cython_version,
                      numpy=numpy.__version__, python=platform.python_version(),
                      compiler=" ".join(self.compiler.compiler_so[:1]) if hasattr(
                          self.compiler, "compiler_so") else type(self.compiler).__name__)
        os.makedirs(target, exist_ok=True)
        path = os.path.join(target, "_build_config.py")
        with open(path + ".tmp", "w") as fh:
            fh.write('"""What setup.py built (generated at build time; read by '
                     'fastnet.show_config())."""\n')
            fh.write("BUILD = " + pprint.pformat(record, sort_dicts=True) + "\n")
        os.replace(path + ".tmp", path)


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
