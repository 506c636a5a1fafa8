"""Shared fixtures: the data directory, backend parametrisation, tolerances.

* ``data_dir``: ``$FASTNET_DATA``, else ``../shared/data`` beside the repository;
  tests that need it skip with a message saying where it was looked for.
* ``backend``: every available backend in turn (activated for the test);
  ``compiled_backend``: every available backend but the reference.
* ``impl``: ``fastnet.reference`` once, then the top level ``fastnet`` on each
  available backend (for tests of the same call on both).
* ``FASTNET_TEST_BACKENDS=numba`` (a comma list): test only these backends (and
  the reference), as CI's passes over one backend's other code path do.
* ``assert_close``: float64 to 1e-10 relative, float32 to 1e-5.
* hypothesis is derandomized (profile ``fastnet``); ``HYPOTHESIS_PROFILE=random`` explores.
* ``need_kernels(*names)``: skip when the active backend (under construction)
  does not implement these kernels yet; ``numerical_gradient``: central differences.
"""
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# Hypothesis draws the same examples on every run (``derandomize``), so a CI run tests what a
# local run tested and a float tolerance cannot flake on a case nobody has seen. Set
# HYPOTHESIS_PROFILE=random to explore new examples locally.
settings.register_profile("fastnet", derandomize=True, database=None)
settings.register_profile("random")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fastnet"))

import fastnet
from fastnet import _backend

REPO = Path(__file__).resolve().parent.parent
BACKENDS = fastnet.available_backends()
if os.environ.get("FASTNET_TEST_BACKENDS"):
    # CI's second passes (one code path of one backend) test only the named backends
    _want = {b.strip() for b in os.environ["FASTNET_TEST_BACKENDS"].split(",")} | {"reference"}
    BACKENDS = [b for b in BACKENDS if b in _want]
COMPILED = [b for b in BACKENDS if b != "reference"]

RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def data_root() -> Path:
    env = os.environ.get("FASTNET_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"shared data directory not found at {root} "
                    f"(set FASTNET_DATA to the directory holding mnist/, seed/, corpus/)")
    return root


def need(data_dir: Path, *parts) -> Path:
    path = data_dir.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"data file {path} is missing from the shared data directory")
    return path


@pytest.fixture(scope="session")
def mnist(data_dir):
    """The course's MNIST split: first 8,000 t10k images to train, last 2,000 to test (float64 in [0,1])."""
    img = need(data_dir, "mnist", "t10k-images-idx3-ubyte.gz")
    lab = need(data_dir, "mnist", "t10k-labels-idx1-ubyte.gz")
    X, y = fastnet.load_mnist(img, lab)
    X = X.astype(np.float64) / 255.0
    return X[:8000], y[:8000], X[8000:], y[8000:]


@pytest.fixture(scope="session")
def seed_data(data_dir):
    """The course's trained 784-50-10 weights and its 1,000-image test subset (X scaled by 1/255)."""
    T1 = np.load(need(data_dir, "seed", "Theta1.npy"))
    T2 = np.load(need(data_dir, "seed", "Theta2.npy"))
    X = np.load(need(data_dir, "seed", "X_test.npy")).astype(np.float64) / 255.0
    y = np.load(need(data_dir, "seed", "y_test.npy")).astype(np.int64)
    return T1, T2, X, y


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each available backend, active for the duration of the test."""
    with fastnet.use_backend(request.param):
        yield request.param


@pytest.fixture(params=["reference"] + [f"top-{b}" for b in BACKENDS])
def impl(request):
    """``fastnet.reference`` (the oracle, once, with the reference backend active), then
    the top level ``fastnet`` on each available backend (active for the test)."""
    if request.param == "reference":
        with fastnet.use_backend("reference"):
            yield fastnet.reference
    else:
        with fastnet.use_backend(request.param[len("top-"):]):
            yield fastnet


@pytest.fixture(params=COMPILED or [pytest.param(None, marks=pytest.mark.skip(
        reason="no compiled backend available"))])
def compiled_backend(request):
    """Each available compiled backend (not the reference), active for the test."""
    with fastnet.use_backend(request.param):
        yield request.param


def kernels_of(name):
    return _backend.backend_kernels(name)


def missing_kernels(backend_name=None, *names):
    """The kernels among ``names`` (all of the contract when none) that backend
    ``backend_name`` (the active one when None) does not implement yet."""
    ns = _backend.backend_kernels(backend_name) if backend_name else _backend.kernels()
    names = names or _backend.KERNEL_NAMES
    return [n for n in names if getattr(getattr(ns, n), "missing", False)]


def need_kernels(*names):
    """Skip the test when the active backend does not implement these kernels yet
    (a compiled backend under construction registers only part of the contract)."""
    missing = missing_kernels(None, *names)
    if missing:
        pytest.skip(f"backend {_backend.get_backend()!r} does not implement kernel(s) "
                    f"{', '.join(missing)} yet")


def numerical_gradient(f, x, eps=1e-6):
    """Central differences of the scalar function ``f`` at the float64 array ``x``
    (perturbed in place and restored): (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)."""
    g = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


def assert_close(actual, desired, err_msg="", rtol=None, atol_scale=1.0, dtype=None):
    """Compare with the tolerance of the computation's dtype: float64 1e-10 relative, float32 1e-5.

    ``dtype`` is the dtype the values were computed in; pass it whenever that
    is not the dtype of ``actual`` (a loss is returned as a float64 number
    even when it was accumulated from float32 activations, and BLAS kernels
    sum in another order on another CPU).  The absolute tolerance is the
    relative one times the largest magnitude of ``desired`` (so entries near
    zero of a large array don't fail on rounding).
    """
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    if dtype is not None:
        dt = np.dtype(dtype)
    else:
        dt = actual.dtype if actual.dtype in RTOL else np.dtype(np.float64)
    r = RTOL[dt] if rtol is None else rtol
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=r, atol=r * max(scale, 1e-30) * atol_scale,
                               err_msg=err_msg)


def assert_close_adam_f32(actual, desired, lr, steps, rtol=1e-4, max_outliers=1 / 500):
    """Weights after float32 epochs of Adam: :func:`assert_close` but for a few.

    Adam divides each step by the running size of its gradient, so a weight whose gradient
    sits at rounding level (or on a ReLU's kink, where rounding decides whether the unit is
    on) takes a step of up to ``lr`` of a sign that float32's summation order decides.  Such
    weights (at most ``max_outliers`` of them, at least one allowed) need only be within
    ``2 * lr * steps``; every other weight within ``rtol``.  Returns the outliers' mask.
    """
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    off = np.abs(actual - desired) > rtol * (np.abs(desired) + max(scale, 1e-30))
    allowed = max(1, int(max_outliers * desired.size))
    assert int(off.sum()) <= allowed, (
        f"{int(off.sum())} of {desired.size} weights beyond rtol {rtol} (at most {allowed})")
    np.testing.assert_allclose(actual[off], desired[off], rtol=0, atol=2 * lr * steps)
    return off


# ------------------------------------------- the dense path's small batches cut in parts
#: the networks of both compiled backends' tests of the parts path, as (sizes, kinds, loss)
PARTS_NETS_DEEP = ([70, 48, 33, 5], [3, 2, 1], 0)     # tanh, relu, sigmoid + cross-entropy
PARTS_NETS = pytest.mark.parametrize("net", [
    PARTS_NETS_DEEP,
    ([50, 40, 6], [1, 4], 2),            # sigmoid, softmax + log-loss
    ([64, 17, 40, 3], [2, 3, 0], 1),     # a narrow layer left whole, linear + quadratic
], ids=["deep", "softmax", "narrow"])


def parts_problem(net, dtype, seed, in_order, m=230, zeros=0.0):
    """``(params, sizes, kinds, loss, X, Y, order)`` of a :data:`PARTS_NETS` case: weights
    N(0, 0.3^2), inputs in [0, 1) (a fraction ``zeros`` of them 0), one-hot targets, the rows
    in order or shuffled."""
    from fastnet._params import n_params
    sizes, kinds, loss = net
    rng = np.random.default_rng(seed)
    sizes = np.asarray(sizes, dtype=np.int64)
    params = (rng.standard_normal(n_params(sizes)) * 0.3).astype(dtype)
    X = rng.random((m, int(sizes[0])))
    X[rng.random(X.shape) < zeros] = 0.0
    Y = np.eye(int(sizes[-1]))[rng.integers(0, int(sizes[-1]), m)]
    order = np.arange(m) if in_order else rng.permutation(m)
    return (params, sizes, np.asarray(kinds, dtype=np.int64), loss, X.astype(dtype),
            Y.astype(dtype), order.astype(np.int64))
