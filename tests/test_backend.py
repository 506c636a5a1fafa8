"""The dispatch point: choosing backends, errors for unknown/unavailable ones, lazy imports."""
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import fastnet
from fastnet import _backend
from fastnet.reference import kernels as ref_kernels
from conftest import REPO

REF_NS = _backend.backend_kernels("reference")


def _run(code, **env):
    """Run ``code`` in a fresh interpreter from the repository root.

    Returns (returncode, stdout, stderr)."""
    full_env = {k: v for k, v in os.environ.items() if k != "FASTNET_BACKEND"}
    full_env.update(env)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(autouse=True)
def restore_backend():
    """Put the active backend back as it was (tests here call use_backend without `with`
    and resolve the default under simulated installations)."""
    saved = _backend._active.get(), _backend._default
    yield
    _backend._active.set(saved[0])
    _backend._default = saved[1]


def test_available_backends():
    names = fastnet.available_backends()
    assert "reference" in names
    assert set(names) <= set(_backend.BACKENDS)
    order = ("cython", "numba", "reference")  # preference: nothing to compile first
    assert names == [n for n in order if n in names]
    assert fastnet.get_backend() in names


def test_reference_backend_implements_the_whole_contract():
    assert REF_NS.__complete__
    for name in _backend.KERNEL_NAMES:
        assert getattr(REF_NS, name) is ref_kernels.KERNELS[name]
    assert REF_NS.__backend__ == "reference"


def test_use_backend_as_a_call():
    fastnet.use_backend("reference")
    assert fastnet.get_backend() == "reference"
    assert _backend.kernels() is REF_NS
    fastnet.use_backend(" Reference ")  # names are trimmed and case-insensitive
    assert fastnet.get_backend() == "reference"


@pytest.mark.parametrize("name", fastnet.available_backends())
def test_use_backend_as_a_context_manager(name):
    before = fastnet.get_backend()
    with fastnet.use_backend(name) as ctx:
        assert fastnet.get_backend() == name
        assert ctx.name == name and repr(ctx) == f"use_backend({name!r})"
        with fastnet.use_backend("reference"):
            assert fastnet.get_backend() == "reference"
        assert fastnet.get_backend() == name
    assert fastnet.get_backend() == before
    with pytest.raises(ZeroDivisionError):
        with fastnet.use_backend(name):
            1 / 0
    assert fastnet.get_backend() == before  # restored after an exception too


def test_unknown_backend():
    before = fastnet.get_backend()
    with pytest.raises(ValueError, match=r"unknown backend 'torch'.*reference, numba, cython"):
        fastnet.use_backend("torch")
    with pytest.raises(TypeError, match="backend must be a str"):
        fastnet.use_backend(None)
    with pytest.raises(ValueError, match="unknown backend"):
        _backend.backend_kernels("jax")
    assert fastnet.get_backend() == before


@pytest.mark.parametrize("name,how", [("numba", "pip install numba"),
                                      ("cython", "build_ext --inplace")])
def test_unavailable_backend_says_how_to_get_it(monkeypatch, name, how):
    monkeypatch.setattr(_backend, "_probe",
                        lambda n: None if n == "reference" else "simulated absence")
    monkeypatch.setattr(_backend, "_loaded", {"reference": REF_NS})
    before = fastnet.get_backend()
    with pytest.raises(fastnet.BackendUnavailableError,
                       match=rf"backend '{name}' is not available: simulated absence.*{how}"):
        fastnet.use_backend(name)
    assert fastnet.get_backend() == before  # nothing changed, no silent fallback
    assert issubclass(fastnet.BackendUnavailableError, ImportError)
    assert fastnet.available_backends() == ["reference"]


def test_broken_backend_module_is_unavailable(monkeypatch):
    monkeypatch.setattr(_backend, "_probe", lambda n: None)
    monkeypatch.setattr(_backend, "_loaded", {"reference": REF_NS})
    monkeypatch.setitem(_backend._MODULES, "numba", "fastnet._no_such_module_")
    with pytest.raises(fastnet.BackendUnavailableError, match="failed to import"):
        fastnet.use_backend("numba")


def _fake_backend(monkeypatch, backend, kernels):
    mod = types.ModuleType("fake_fastnet_backend_" + backend)
    mod.KERNELS = kernels
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(_backend._MODULES, backend, mod.__name__)


def test_partial_backend_raises_not_implemented_naming_the_kernel(monkeypatch):
    monkeypatch.setattr(_backend, "_probe", lambda n: None)
    monkeypatch.setattr(_backend, "_loaded", {"reference": REF_NS})
    _fake_backend(monkeypatch, "cython", {"activation": ref_kernels.activation})
    model = [np.ones((2, 3)), fastnet.Sigmoid]
    with fastnet.use_backend("cython"):
        assert fastnet.Sigmoid.f(0.0) == 0.5  # an implemented kernel works
        with pytest.raises(NotImplementedError,
                           match=r"kernel 'backprop_samples' is not implemented by the 'cython'"):
            fastnet.backprop(model, np.ones((1, 2)), [1])
    assert not _backend.backend_kernels("cython").__complete__


def test_backend_registering_unknown_kernels_is_refused(monkeypatch):
    monkeypatch.setattr(_backend, "_probe", lambda n: None)
    monkeypatch.setattr(_backend, "_loaded", {"reference": REF_NS})
    _fake_backend(monkeypatch, "numba", {"activation": ref_kernels.activation, "bogus": len})
    with pytest.raises(RuntimeError, match="unknown kernels.*bogus"):
        fastnet.use_backend("numba")


def test_default_is_the_first_complete_backend(monkeypatch):
    monkeypatch.delenv("FASTNET_BACKEND", raising=False)
    monkeypatch.setattr(_backend, "_probe", lambda n: None)
    monkeypatch.setattr(_backend, "_loaded", {"reference": REF_NS})
    _fake_backend(monkeypatch, "cython", {"activation": ref_kernels.activation})  # incomplete
    _fake_backend(monkeypatch, "numba", dict(ref_kernels.KERNELS))  # complete
    assert _backend._resolve_default() == "numba"
    _fake_backend(monkeypatch, "cython", dict(ref_kernels.KERNELS))
    monkeypatch.setattr(_backend, "_loaded", {"reference": REF_NS})
    assert _backend._resolve_default() == "cython"


def test_public_functions_dispatch_at_call_time(monkeypatch):
    """The top level looks the kernel up in the active backend on each call."""
    calls = []
    spy_ns = types.SimpleNamespace(**vars(REF_NS))

    def spy(*args):
        calls.append("forward_network")
        return ref_kernels.forward_network(*args)

    spy_ns.forward_network = spy
    monkeypatch.setitem(_backend._loaded, "reference", spy_ns)
    model = [np.ones((2, 3)), fastnet.Sigmoid]
    with fastnet.use_backend("reference"):
        fastnet.predict(model, np.ones((4, 2)))
    assert calls == ["forward_network"]


# --------------------------------------------------------------------- subprocesses
def test_fastnet_backend_environment_variable():
    code = "import fastnet; print(fastnet.get_backend())"
    rc, out, err = _run(code, FASTNET_BACKEND="reference")
    assert rc == 0, err
    assert out.strip() == "reference"
    rc, out, err = _run(code, FASTNET_BACKEND="  REFERENCE ")
    assert rc == 0 and out.strip() == "reference", err
    for name in fastnet.available_backends():
        rc, out, err = _run(code, FASTNET_BACKEND=name)
        assert rc == 0 and out.strip() == name, err


def test_fastnet_backend_bad_value_is_a_clear_error():
    rc, out, err = _run("import fastnet\nfastnet.get_backend()", FASTNET_BACKEND="fortran")
    assert rc != 0
    assert "ValueError: FASTNET_BACKEND: unknown backend 'fortran'" in err
    assert "reference, numba, cython" in err
    # the error also surfaces from a public function's first dispatch
    rc, out, err = _run("import fastnet\nfastnet.Sigmoid.f(0.0)", FASTNET_BACKEND="fortran")
    assert rc != 0 and "FASTNET_BACKEND" in err


def test_fastnet_backend_unavailable_is_a_clear_error():
    code = ("import fastnet._backend as b\n"
            "b._probe = lambda n: None if n == 'reference' else 'simulated absence'\n"
            "import fastnet\nfastnet.get_backend()")
    rc, out, err = _run(code, FASTNET_BACKEND="numba")
    assert rc != 0
    assert "BackendUnavailableError: FASTNET_BACKEND='numba'" in err
    assert "simulated absence" in err and "pip install numba" in err


def test_default_backend_in_a_fresh_process():
    rc, out, err = _run("import fastnet, json; print(json.dumps([fastnet.get_backend(), "
                        "fastnet.available_backends()]))")
    assert rc == 0, err
    active, names = json.loads(out)
    assert active in names


def test_import_fastnet_imports_no_compiled_backend():
    code = """
import sys, json
import fastnet
after_import = sorted(m for m in sys.modules if m == 'numba' or m.startswith(('numba.',
    'fastnet._numba', 'fastnet._cython.')))
fastnet.available_backends()
after_listing = sorted(m for m in sys.modules if m == 'numba' or m.startswith(('numba.',
    'fastnet._numba.', 'fastnet._cython.')))
print(json.dumps([after_import, after_listing]))
"""
    rc, out, err = _run(code)
    assert rc == 0, err
    after_import, after_listing = json.loads(out)
    assert after_import == [], f"import fastnet imported {after_import}"
    assert after_listing == [], f"fastnet.available_backends() imported {after_listing}"


def test_reference_backend_needs_no_compiled_module():
    code = """
import sys, json
import fastnet, numpy as np
with fastnet.use_backend('reference'):
    m = [fastnet.init_weights(3, 4, rng=0), fastnet.Sigmoid, fastnet.init_weights(4, 2, rng=1),
         fastnet.Sigmoid]
    fastnet.train(m, np.random.default_rng(0).normal(size=(10, 3)), np.arange(10) % 2, epochs=2)
print(json.dumps(sorted(m for m in sys.modules if m == 'numba' or m.startswith(('fastnet._numba',
    'fastnet._cython.')))))
"""
    rc, out, err = _run(code, FASTNET_BACKEND="reference")
    assert rc == 0, err
    assert json.loads(out) == []


def test_use_backend_is_per_thread():
    """Two threads choose different backends at the same time and each sees its own."""
    import threading
    names = [n for n in fastnet.available_backends()]
    if len(names) < 2:
        pytest.skip("needs two backends")
    a, b = names[0], names[-1]
    barrier = threading.Barrier(2)
    seen = {}

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5))
    y = rng.integers(0, 3, 64)

    def fit():
        model = [fastnet.init_weights(5, 4, rng=1), fastnet.Sigmoid,
                 fastnet.init_weights(4, 3, rng=2), fastnet.Sigmoid]
        h = fastnet.train(model, X, y, optimizer="sgd", batch_size=8, lr=0.5, epochs=5, rng=3)
        return model[0], h["J"]

    expected = {}
    for name in (a, b):
        with fastnet.use_backend(name):
            expected[name] = fit()

    def worker(name):
        with fastnet.use_backend(name):
            barrier.wait()            # both threads are inside their `with` now
            seen[name] = [fastnet.get_backend(), _backend.kernels().__backend__]
            trained = fit()           # both train at the same time
            barrier.wait()
            seen[name].append(fastnet.get_backend())
        seen[name].append(fastnet.get_backend())
        seen[name].append(trained)

    before = fastnet.get_backend()
    threads = [threading.Thread(target=worker, args=(n,)) for n in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen[a][:3] == [a, a, a] and seen[b][:3] == [b, b, b]
    assert seen[a][3] == seen[b][3] == before   # each restored to the default
    for name in (a, b):   # each trained on its own backend: bit for bit as that backend alone
        np.testing.assert_array_equal(seen[name][4][0], expected[name][0])
        assert seen[name][4][1] == expected[name][1]
    assert fastnet.get_backend() == before      # the main thread never changed
