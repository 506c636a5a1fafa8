"""The Cython build: per-CPU variants, their choice at import, FASTNET_SIMD, show_config().

* every ``src_cython/*.pyx`` is built in each variant the build recorded (a new module gets
  its variants without any change to setup.py);
* the baseline build holds no AVX instruction and the AVX2 build no AVX-512 one (objdump),
  so a wheel runs on any x86-64 CPU;
* the best variant this CPU supports is chosen; ``FASTNET_SIMD`` forces one, and asking for
  one the CPU lacks, one that was not built, or an unknown name is a clear error -- also when
  the default backend is resolved (never a silent switch to another backend);
* the variants compute the reference's numbers;
* ``fastnet.show_config()`` prints (and returns as dicts) what it should.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastnet
from fastnet._cython import _variants
from conftest import REPO, assert_close, kernels_of

cython_built = pytest.mark.skipif(
    "cython" not in fastnet.available_backends(),
    reason="the cython extension is not built (pip install -e . or "
           "python setup.py build_ext --inplace)")

SOURCES = sorted(os.path.splitext(os.path.basename(p))[0]
                 for p in glob.glob(str(REPO / "src_cython" / "*.pyx")))
AVX2 = {"AVX2": True, "FMA3": True}
AVX512 = dict(AVX2, AVX512F=True, AVX512BW=True, AVX512VL=True, AVX512DQ=True)


#: the directory the fastnet under test is imported from (the repository, or site-packages)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastnet.__file__)))


def _run(code, **env):
    full = dict(os.environ, **env)
    full["PYTHONPATH"] = os.pathsep.join([ROOT, full.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True,
                         text=True, timeout=300)
    return res.returncode, res.stdout, res.stderr


# -------------------------------------------------------------------- the build
@cython_built
def test_every_source_is_built_in_every_recorded_variant():
    record = _variants.build_record()
    assert record is not None, "setup.py wrote no fastnet/_cython/_build_config.py"
    assert sorted(record["modules"]) == SOURCES
    assert "baseline" in record["variants"]
    for name in SOURCES:
        for variant in record["variants"]:
            assert _variants.built(name, variant), (name, variant)


def _instructions(path):
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True,
                         text=True, check=True).stdout
    return [line.split("\t", 1)[-1] for line in out.splitlines() if re.match(r"\s+[0-9a-f]+:", line)]


@cython_built
@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump is not installed")
@pytest.mark.skipif(_variants.requested() is not None, reason="FASTNET_SIMD is set")
@pytest.mark.parametrize("variant,forbidden", [
    ("baseline", re.compile(r"\bv[a-z0-9]+\s|%ymm|%zmm")),   # no VEX/EVEX: no AVX at all
    ("avx2", re.compile(r"%zmm|%k[0-7]\b")),                  # no AVX-512 registers
])
def test_variants_hold_only_their_instructions(variant, forbidden):
    """The baseline build runs on any x86-64 CPU: no AVX instruction in it (gcc without
    flags emits SSE2); the AVX2 build has no AVX-512 instruction."""
    record = _variants.build_record() or {}
    if record.get("march"):
        pytest.skip(f"built with -march={record['march']} (FASTNET_MARCH)")
    if variant not in record.get("variants", {}) or record.get("machine") not in ("x86_64", "AMD64"):
        pytest.skip(f"no {variant} variant built here")
    import importlib.util
    for name in SOURCES:
        path = importlib.util.find_spec(_variants.module_name(name, variant)).origin
        bad = [i for i in _instructions(path) if forbidden.search(i)]
        assert not bad, f"{os.path.basename(path)}: {len(bad)} instructions like {bad[:3]}"


# ---------------------------------------------------------------- the choice
def test_choice_follows_the_cpu(monkeypatch):
    monkeypatch.delenv("FASTNET_SIMD", raising=False)
    monkeypatch.setattr(_variants, "built", lambda name, v: True)
    monkeypatch.setattr(_variants, "build_record", lambda: {})
    assert _variants.choose("mlp", features={})[0] == "baseline"
    assert _variants.choose("mlp", features=AVX2)[0] == "avx2"
    assert _variants.choose("mlp", features=AVX512)[0] == "avx512"
    v, why = _variants.choose("mlp", features=dict(AVX2, AVX512F=True))  # no BW/VL/DQ
    assert v == "avx2" and "AVX512BW" in why


def test_choice_skips_variants_not_built(monkeypatch):
    monkeypatch.delenv("FASTNET_SIMD", raising=False)
    monkeypatch.setattr(_variants, "built", lambda name, v: v == "baseline")
    monkeypatch.setattr(_variants, "build_record", lambda: {})
    v, why = _variants.choose("mlp", features=AVX512)
    assert v == "baseline" and "avx2: not built" in why and "avx512: not built" in why


def test_fastnet_simd_forces_a_variant(monkeypatch):
    monkeypatch.setattr(_variants, "built", lambda name, v: True)
    monkeypatch.setenv("FASTNET_SIMD", "baseline")
    assert _variants.choose("mlp", features=AVX512) == ("baseline", "FASTNET_SIMD=baseline")
    monkeypatch.setenv("FASTNET_SIMD", "AVX2")
    assert _variants.choose("mlp", features=AVX512)[0] == "avx2"


def test_fastnet_simd_asking_for_the_impossible(monkeypatch):
    monkeypatch.setenv("FASTNET_SIMD", "avx512")
    monkeypatch.setattr(_variants, "built", lambda name, v: True)
    with pytest.raises(_variants.SimdVariantError,
                       match=r"FASTNET_SIMD='avx512': this CPU lacks AVX512F.*illegal instr"):
        _variants.choose("mlp", features=AVX2)
    monkeypatch.setattr(_variants, "built", lambda name, v: v != "avx2")
    monkeypatch.setenv("FASTNET_SIMD", "avx2")
    with pytest.raises(_variants.SimdVariantError, match=r"avx2 variant .* was not built"):
        _variants.choose("mlp", features=AVX2)
    monkeypatch.setenv("FASTNET_SIMD", "sse9")
    with pytest.raises(_variants.SimdVariantError, match=r"expected one of baseline, avx2, avx512"):
        _variants.choose("mlp", features=AVX2)
    assert issubclass(_variants.SimdVariantError, fastnet.BackendUnavailableError)


@cython_built
def test_fastnet_simd_baseline_in_a_fresh_process():
    code = ("import json, fastnet\n"
            "from fastnet._cython import backend\n"
            "print(json.dumps({k: v[0] for k, v in backend.VARIANTS.items()}))\n")
    rc, out, err = _run(code, FASTNET_SIMD="baseline")
    assert rc == 0, err
    assert set(json.loads(out).values()) == {"baseline"}


@cython_built
@pytest.mark.skipif(_variants.supports("avx512")[0], reason="this CPU has AVX-512")
def test_fastnet_simd_unsupported_is_an_error_not_a_fallback():
    """With FASTNET_SIMD=avx512 on a CPU without it, the cython backend (asked for or as the
    default) fails with the reason: nothing switches to another backend silently."""
    code = ("import fastnet\n"
            "for call in (lambda: fastnet.use_backend('cython'), fastnet.get_backend):\n"
            "    try:\n"
            "        call()\n"
            "    except fastnet.BackendUnavailableError as exc:\n"
            "        print('error:', exc)\n"
            "    else:\n"
            "        print('ok', fastnet.get_backend())\n")
    rc, out, err = _run(code, FASTNET_SIMD="avx512", FASTNET_BACKEND="")
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("error:") and "this CPU lacks AVX512F" in lines[0], out
    if lines[1].startswith("ok"):    # the default backend did not need the cython one
        assert fastnet._backend._DEFAULT_ORDER.index("cython") > 0
    else:
        assert "FASTNET_SIMD='avx512'" in lines[1], out


# ------------------------------------------------------------- same numbers
@cython_built
@pytest.mark.parametrize("variant", [v for v in _variants.VARIANTS
                                     if _variants.supports(v)[0]])
def test_each_variant_this_cpu_runs_matches_the_reference(variant):
    import importlib
    if not _variants.built("mlp", variant):
        pytest.skip(f"the {variant} variant is not built")
    mlp = importlib.import_module(_variants.module_name("mlp", variant))
    act = importlib.import_module(_variants.module_name("activations", variant))
    lin = importlib.import_module(_variants.module_name("linear", variant))
    ref = kernels_of("reference")
    rng = np.random.default_rng(5)
    sizes = np.array([31, 17, 5], np.int64)
    kinds = np.array([3, 1], np.int64)
    params = (rng.standard_normal(int(((sizes[:-1] + 1) * sizes[1:]).sum())) * 0.3)
    X = rng.standard_normal((50, 31))
    X[rng.random(X.shape) < 0.5] = 0
    Y = np.eye(5)[rng.integers(0, 5, 50)]
    from fastnet import _paths
    for path in ("dense", "sparse"):
        for bs in (1, 8):
            p1, p2 = params.copy(), params.copy()
            s1, s2 = np.zeros(2 * p1.size), np.zeros(2 * p2.size)
            order = rng.permutation(50).astype(np.int64)
            with _paths.use_path(path):
                j1 = mlp.train_epoch(p1, sizes, kinds, 0, X, Y, order, bs, 1, 0.1, 0.9, 0.9,
                                     1e-8, 1, 0.01, s1, 0)
            j2 = ref.train_epoch(p2, sizes, kinds, 0, X, Y, order, bs, 1, 0.1, 0.9, 0.9, 1e-8,
                                 1, 0.01, s2, 0)
            assert_close(j1, j2)
            assert_close(p1, p2)
    Z = rng.standard_normal((7, 9)) * 5
    for kind in (1, 3):
        out, want = np.empty_like(Z), np.empty_like(Z)
        act.activation(kind, Z, out)
        ref.activation(kind, Z, want)
        assert_close(out, want)
    theta, want_t = np.zeros(32), np.zeros(32)
    y = rng.random(50)
    lin.linear_gd(X, y, theta, 0.05, 0.0, 20, False, np.zeros(20))
    ref.linear_gd(X, y, want_t, 0.05, 0.0, 20, False, np.zeros(20))
    assert_close(theta, want_t)


# ---------------------------------------------------------------- show_config
def test_show_config_prints_every_section(capsys):
    assert fastnet.show_config() is None
    out = capsys.readouterr().out
    assert out.startswith(f"fastnet {fastnet.__version__}")
    for part in ("backends:", "available:", "default:", "cython extensions", "numba ",
                 "llvmlite", "cache dir:", "BLAS:", "threads:", "environment:"):
        assert part in out, part
    if "cython" in fastnet.available_backends():
        for name in ("mlp", "activations", "linear", "word2vec"):
            assert re.search(rf"^  {name}: (baseline|avx2|avx512) -- ", out, re.M), name


def test_show_config_as_dicts(monkeypatch):
    monkeypatch.setenv("FASTNET_PATH", "dense")
    cfg = fastnet.show_config(mode="dicts")
    assert cfg["fastnet"] == fastnet.__version__
    assert cfg["backends"]["default"] in cfg["backends"]["available"]
    assert cfg["numba"]["numba"] is not None and cfg["numba"]["cache_dir"]
    assert cfg["environment"]["FASTNET_PATH"] == "dense"
    assert cfg["threads"]["cpus"] >= 1
    if "cython" in fastnet.available_backends():
        mods = cfg["cython"]["modules"]
        assert mods["mlp"]["variant"] in mods["mlp"]["built"]
        assert cfg["blas"]["scipy_blas"]["threads"] is None or cfg["blas"]["scipy_blas"]["threads"] >= 1
    with pytest.raises(ValueError, match="mode must be 'stdout' or 'dicts'"):
        fastnet.show_config(mode="json")


def test_show_config_names_the_numba_cache_dir(tmp_path):
    """NUMBA_CACHE_DIR (read by numba at import: a fresh process) is the cache directory."""
    code = ("import json, fastnet\n"
            "print(json.dumps(fastnet.show_config(mode='dicts')['numba']))\n")
    rc, out, err = _run(code, NUMBA_CACHE_DIR=str(tmp_path))
    assert rc == 0, err
    nb = json.loads(out)
    assert nb["cache_dir"].startswith(str(tmp_path))
    assert nb["cache_locator"] == "UserProvidedCacheLocator"
