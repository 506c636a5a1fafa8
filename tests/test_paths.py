"""The path chooser (``fastnet._paths``): dense GEMM path or zero-skipping row path.

That both paths compute the reference's numbers is tested in
``test_kernels.py`` (every network kernel on every path, dense and sparse
inputs); here: the choice itself, its overrides, and that a training run
gives the same result whichever path it takes.
"""
import threading

import numpy as np
import pytest

import fastnet
from fastnet import _paths
from conftest import COMPILED, assert_close

SIZES = np.array([784, 50, 10], dtype=np.int64)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("FASTNET_PATH", raising=False)


def _X(density, m=500, n=784, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((m, n)).astype(np.float32) + 0.1
    X[rng.random((m, n)) >= density] = 0
    return X


def test_sample_density():
    assert _paths.sample_density(np.zeros((10, 5))) == 0.0
    assert _paths.sample_density(np.ones((3, 4))) == 1.0
    assert _paths.sample_density(np.empty((0, 4))) == 1.0
    X = _X(0.2, m=5000)
    assert abs(_paths.sample_density(X) - 0.2) < 0.02
    # only DENSITY_SAMPLE_ROWS evenly spaced rows are looked at
    X = np.zeros((10_000, 8))
    X[::2] = 1  # every other row dense
    assert 0.3 < _paths.sample_density(X) < 0.7


def test_work_fraction():
    # only layer 0's products skip zeros: the deeper layers' work counts in full
    assert _paths.work_fraction(1.0, [784, 50, 10]) == 1.0
    assert _paths.work_fraction(0.0, [10, 5]) == 0.0
    w0, w1 = 785 * 256, 257 * 128 + 129 * 10
    assert _paths.work_fraction(0.2, [784, 256, 128, 10]) == pytest.approx(
        (0.2 * w0 + w1) / (w0 + w1))
    assert _paths.work_fraction(0.19, SIZES) == pytest.approx(0.2, abs=0.005)


@pytest.mark.parametrize("backend", ["cython", "numba"])
def test_default_choice_follows_density_and_batch(backend):
    sparse, dense = _X(0.19), _X(0.85)
    frac = _paths.work_fraction(_paths.sample_density(sparse), SIZES)
    for batch, limit in _paths.SPARSE_MAX_DENSITY[backend].items():  # float32 data
        b = {"full": 500, "large": _paths.LARGE_BATCH}.get(batch, batch)
        assert _paths.choose(dense, SIZES, b, backend) == "dense"
        want = "sparse" if limit is not None and limit >= frac else "dense"
        assert _paths.choose(sparse, SIZES, b, backend) == want, batch
    assert _paths.choose(sparse, SIZES, 10_000, backend) == _paths.choose(sparse, SIZES, 500,
                                                                          backend)
    # float64: dgemm is half as fast, so the zero-skipping panels also win the full batch
    for batch, limit in _paths.SPARSE_MAX_DENSITY_F64.items():
        b = {"full": 500, "large": _paths.LARGE_BATCH}.get(batch, batch)
        want = "sparse" if limit is not None and limit >= frac else "dense"
        assert _paths.choose(sparse.astype(np.float64), SIZES, b, backend) == want, batch
        assert _paths.choose(dense.astype(np.float64), SIZES, b, backend) == "dense"


def test_choose_names_an_unknown_backend():
    with pytest.raises(ValueError, match=r"backend must be one of 'cython', 'numba', got 'jax'"):
        _paths.choose(_X(0.19), SIZES, 32, "jax")


def test_a_deep_net_weighs_its_dense_layers():
    """Input of density 0.3 with a 784-256-128-10 net: the sparse path would still do 40 % of
    the dense path's work (its deeper layers skip nothing), 31 % for 784-50-10.  Both
    backends' limit at batch 32 is 0.15 (their dense batches of 32 run on both cores): at
    raw MNIST's density (0.19: 20 % and 31 % of the work) both nets take the dense path;
    much sparser input (0.05) takes the sparse one, the deep net's dense layers weighing
    against it."""
    deep = np.array([784, 256, 128, 10])
    X = _X(0.30)
    assert _paths.work_fraction(_paths.sample_density(X), deep) == pytest.approx(0.40, abs=0.01)
    assert _paths.work_fraction(_paths.sample_density(_X(0.05)), deep) > \
        _paths.work_fraction(_paths.sample_density(_X(0.05)), SIZES)
    for backend in ("cython", "numba"):
        assert _paths.choose(X, deep, 32, backend) == "dense"
        assert _paths.choose(_X(0.19), deep, 32, backend) == "dense"
        assert _paths.choose(_X(0.19), SIZES, 32, backend) == "dense"
        assert _paths.choose(_X(0.05), SIZES, 32, backend) == "sparse"


def test_overrides_env_and_use_path(monkeypatch):
    X = _X(0.85)
    assert _paths.get_path() == "auto"
    monkeypatch.setenv("FASTNET_PATH", "sparse")
    assert _paths.get_path() == "sparse"
    assert _paths.choose(X, SIZES, 1) == "sparse"
    with fastnet.use_path("dense"):
        assert _paths.choose(_X(0.01), SIZES, 1) == "dense"
        with _paths.use_path("auto"):
            assert _paths.choose(X, SIZES, 1) == "dense"
        assert _paths.get_path() == "dense"
    assert _paths.get_path() == "sparse"
    monkeypatch.setenv("FASTNET_PATH", "fastest")
    with pytest.raises(ValueError, match=r"FASTNET_PATH: path must be one of"):
        _paths.get_path()
    with pytest.raises(ValueError, match=r"path must be one of 'auto', 'dense', 'sparse'"):
        _paths.use_path("gemm")


def test_use_path_is_per_thread():
    seen = {}
    with _paths.use_path("sparse"):
        t = threading.Thread(target=lambda: seen.setdefault("other", _paths.get_path()))
        t.start()
        t.join()
        seen["here"] = _paths.get_path()
    assert seen == {"other": "auto", "here": "sparse"}


@pytest.mark.parametrize("name", COMPILED or [pytest.param(
    None, marks=pytest.mark.skip(reason="no compiled backend available"))])
@pytest.mark.parametrize("density", [0.15, 0.9], ids=["sparse-X", "dense-X"])
@pytest.mark.parametrize("batch_size", [1, 16, 200])
def test_training_is_the_same_whichever_path(name, density, batch_size):
    """Three epochs through the public API on each path, and with the chooser: the same
    weights and losses (to float tolerance), and the same as the reference backend."""
    X = _X(density, m=200, n=30, seed=1).astype(np.float64)
    y = np.random.default_rng(2).integers(0, 3, 200)
    results = {}
    for backend, path in [("reference", "auto"), (name, "dense"), (name, "sparse"),
                          (name, "auto")]:
        model = [fastnet.init_weights(30, 8, rng=0), fastnet.TanH,
                 fastnet.init_weights(8, 3, rng=1), fastnet.Sigmoid]
        with fastnet.use_backend(backend), fastnet.use_path(path):
            h = fastnet.train(model, X, y, optimizer="momentum", batch_size=batch_size, lr=0.02,
                              epochs=3, rng=5)
        results[(backend, path)] = (model[0], model[2], np.asarray(h["J"]))
    want = results[("reference", "auto")]
    for key, got in results.items():
        for a, b in zip(got, want):
            assert_close(a, b, err_msg=f"{key}")
