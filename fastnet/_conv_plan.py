"""How the compiled backends cut the work of a layer program (shared by numba and Cython).

* :func:`flops_per_sample` -- the floating-point operations of one sample's
  forward pass (convolutions and dense rows);
* :func:`threads_for` -- how many threads a batch is split over: all of
  :func:`fastnet._threads.default_threads` when its forward and backward
  passes (about 3x the forward's work) reach :data:`THREAD_MIN_FLOPS`, else 1;
* :func:`conv_block_images` -- how many images a convolution unfolds at a time
  (about :data:`COLS_BYTES` of im2col patches, so they are still in cache
  when the GEMM reads them).
"""
from fastnet._codes import LayerKind, Prog
from fastnet._threads import default_threads

__all__ = ["COLS_BYTES", "THREAD_MIN_FLOPS", "FORWARD_CHUNK", "flops_per_sample", "threads_for",
           "conv_block_images"]

#: Bytes of im2col patches per block of images.
COLS_BYTES = 1 << 20
#: A batch is split over threads when its forward and backward passes take at least this
#: many floating-point operations (threads are started once per batch, ~0.1 ms).
THREAD_MIN_FLOPS = 20e6
#: Samples per block of ``sequential_forward`` (bounds its workspace).
FORWARD_CHUNK = 256


def flops_per_sample(prog):
    """2 x the multiply-adds of one sample's forward pass through ``prog``."""
    total = 0
    for row in prog:
        kind = int(row[Prog.KIND])
        if kind == LayerKind.CONV2D:
            total += 2 * int(row[Prog.OUT_H]) * int(row[Prog.OUT_W]) * int(row[Prog.OUT_C]) * \
                int(row[Prog.KH]) * int(row[Prog.KW]) * int(row[Prog.IN_C])
        elif kind in (LayerKind.DENSE, LayerKind.DENSE_TIED):
            total += 2 * int(row[Prog.IN_C]) * int(row[Prog.OUT_C])
    return total


def threads_for(prog, batch, max_threads=None):
    """Threads to split a batch of ``batch`` samples over (1: serial)."""
    nt = default_threads() if max_threads is None else int(max_threads)
    if nt < 2 or batch < 2 or 3 * batch * flops_per_sample(prog) < THREAD_MIN_FLOPS:
        return 1
    return nt


def conv_block_images(npix, K, itemsize, m):
    """Images per im2col block: about COLS_BYTES of patches, at least one, at most ``m``."""
    return max(1, min(m, COLS_BYTES // max(1, npix * K * itemsize)))
