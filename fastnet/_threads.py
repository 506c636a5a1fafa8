"""The one helper for running blocks of work on threads: :func:`run_blocks`.

Kernels that release the GIL (Numba ``nogil`` functions, Cython ``with nogil``
loops) run in parallel on Python threads.  :func:`run_blocks` cuts ``range(m)``
into contiguous blocks, lets the calling thread and a shared pool take them as
they come free, and returns the per-block results in block order.  A block's
result depends on the block only, so a caller that combines them in block
order gets a result that is deterministic for a given number of blocks,
whichever thread ran which block; a thread the OS suspends on a busy machine
holds the others up by one block, not by half the work.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["BLOCKS_PER_THREAD", "default_threads", "n_blocks", "block_bounds", "run_blocks"]

#: Blocks of work per thread (see the module's docstring).
BLOCKS_PER_THREAD = 4

_pool_lock = threading.Lock()
_pool = None


def default_threads() -> int:
    """Threads to use: ``FASTNET_NUM_THREADS``, else the CPUs this process may run on."""
    env = os.environ.get("FASTNET_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"FASTNET_NUM_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"FASTNET_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def n_blocks(nthreads: int, m: int, per_thread: int = BLOCKS_PER_THREAD) -> int:
    """Number of blocks :func:`run_blocks` cuts ``m`` items into for ``nthreads`` threads."""
    return max(1, min(m, nthreads * per_thread))


def block_bounds(m: int, nblocks: int):
    """Start of each block and the end of the last (length ``nblocks + 1``)."""
    return [b * m // nblocks for b in range(nblocks + 1)]


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            _pool = ThreadPoolExecutor(max(workers, 1), thread_name_prefix="fastnet")
        return _pool


def run_blocks(nthreads: int, m: int, job, nblocks: int = None):
    """Run ``job(b, lo, hi)`` for every block ``b`` of ``range(m)`` on ``nthreads`` threads.

    Parameters
    ----------
    nthreads : int
        Threads to use, the caller's included (1: everything runs in the caller).
    m : int
        Number of items.
    job : callable
        ``job(b, lo, hi)`` works on items ``lo <= i < hi`` of block ``b``;
        it should release the GIL (a compiled kernel) to run in parallel.
    nblocks : int, optional
        Number of blocks; default :func:`n_blocks`.

    Returns
    -------
    list
        ``job``'s results, in block order.  The first exception a job raised
        is re-raised after every block has finished.
    """
    nb = n_blocks(nthreads, m) if nblocks is None else max(1, int(nblocks))
    bounds = block_bounds(m, nb)
    results = [None] * nb
    counter = iter(range(nb))
    take = threading.Lock()
    errors = []

    def worker():
        while True:
            with take:
                b = next(counter, None)
            if b is None or errors:
                return
            try:
                results[b] = job(b, bounds[b], bounds[b + 1])
            except BaseException as exc:  # re-raised in the caller
                errors.append(exc)
                return

    helpers = min(nthreads, nb) - 1
    futures = [_get_pool(helpers).submit(worker) for _ in range(helpers)] if helpers > 0 else []
    worker()
    for f in futures:
        f.result()
    if errors:
        raise errors[0]
    return results
