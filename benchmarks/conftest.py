"""Shared benchmark machinery (pytest-benchmark); the helpers live in ``_helpers.py``.

* ``bench_*.py`` files are collected (``python -m pytest benchmarks``), and
  can be run one by one (``python -m pytest benchmarks/bench_mlp.py``).
* :func:`run` times a callable with one warm-up round first, so Numba's
  compilation (or cache load), JAX's tracing and PyTorch's first-call setup
  are never counted; ``setup`` runs before every round, untimed (e.g. to
  reset the weights a training epoch updates in place).
* :func:`peer` imports a peer library (torch, jax, sklearn) or skips the
  benchmark with a note saying it is not installed; peers are
  benchmark-only extras (``pip install fastnet[bench]``), never imported by
  fastnet itself.
* ``mnist`` is the course's split of the real MNIST images: the first 8,000
  t10k images to train, the last 2,000 to test, pixels scaled to [0, 1],
  from ``$FASTNET_DATA`` or ``../shared/data``; benchmarks that need it skip
  with a message when it is absent.
* :func:`fastnet_backends` lists the available backends that implement a
  kernel, so a column appears for each one automatically.
* Within a group the methods run back to back (so their ratios come from the
  same minutes of a shared machine), except PyTorch, which runs last (see
  :func:`pytest_collection_modifyitems`).
"""
import pytest

from _helpers import PEER_NOTES, data_root, load_mnist_split


def pytest_collect_file(file_path, parent):
    """Collect ``bench_*.py`` when the directory is given (explicit files are collected anyway)."""
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(session, config, items):
    """Run the PyTorch benchmarks last.

    After its first parallel operation PyTorch's OpenMP threads keep spinning
    between operations; on a 2-core machine that halves the speed of
    whatever runs next in the process (measured: fastnet's threaded epoch and
    numpy's matmul both ~2x slower).  So every other method is measured
    first, and PyTorch (with its default settings) at the end of the run.
    """
    def is_torch(item):
        callspec = getattr(item, "callspec", None)
        return callspec is not None and callspec.params.get("method") == "torch"

    items[:] = [i for i in items if not is_torch(i)] + [i for i in items if is_torch(i)]


def pytest_terminal_summary(terminalreporter):
    for note in sorted(set(PEER_NOTES.values())):
        terminalreporter.write_line(f"benchmark peer skipped: {note}")


# ------------------------------------------------------------------------- data
@pytest.fixture(scope="session")
def mnist():
    """The course's MNIST split as float32 and float64 arrays, one-hot targets and a shuffle."""
    data = load_mnist_split()
    if data is None:
        pytest.skip(f"MNIST not found under {data_root() / 'mnist'} (set FASTNET_DATA to the "
                    f"directory holding mnist/)")
    return data
