"""Files, written and read safely: the one atomic writer, compressed input, ``.npz`` archives.

* :func:`atomic_write` -- every file fastnet saves (models, word vectors, word2vec
  models) goes through a temporary file in the target's directory, created with
  the user's umask (mode ``0666 & ~umask``, like any file the user creates), and
  renamed over the target once complete: an interrupted save never leaves a
  half-written file, nor a file of another mode than the user's.
* :func:`read_bytes` / :func:`open_text_stream` -- plain, gzip or bzip2 input
  (recognised by their magic bytes); a damaged stream raises ``ValueError``
  naming the file, never a bare ``zlib.error`` / ``EOFError`` / ``OSError``.
* :func:`read_npz` -- the arrays of an ``.npz`` archive read without pickle,
  after checking each member's header: its dtype (no objects) and that the
  bytes it announces fit in the file (a damaged header cannot make the reader
  allocate more than the archive could hold); a truncated archive, a bad
  CRC or a malformed member raise ``ValueError`` naming the file.
"""
from __future__ import annotations

import bz2
import contextlib
import gzip
import os
import zipfile
import zlib

import numpy as np

__all__ = ["atomic_write", "read_bytes", "open_text_stream", "read_npz", "compression_of",
           "STREAM_ERRORS"]

#: What reading a damaged gzip/bzip2 stream raises (turned into ValueError naming the file).
STREAM_ERRORS = (OSError, EOFError, zlib.error)

_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Write ``path`` through a temporary file in the same directory, renamed on success.

    The temporary file is created with ``os.open(..., 0o666)``, so its mode is
    ``0666 & ~umask`` (the mode any file the user creates gets; ``mkstemp``
    would give ``0600``); it is flushed and ``fsync``-ed, then renamed over
    ``path`` (``os.replace``: atomic on POSIX and Windows).  An exception in
    the ``with`` block (or a crash) leaves any previous file at ``path``
    untouched and removes the temporary file.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path!r}: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path!r}: it is a directory; give a file name")
    base = os.path.basename(path)
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - a hundred name collisions
        raise FileExistsError(f"cannot create a temporary file next to {path!r}")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def compression_of(path):
    """``'gzip'``, ``'bzip2'`` or None, from the first bytes of the file."""
    with open(path, "rb") as fh:
        head = fh.read(10)
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_BZIP2) and len(head) == 10 and head[3:4].isdigit() \
            and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
        return "bzip2"
    return None


def _open_binary(path):
    kind = compression_of(path)
    if kind == "gzip":
        return gzip.open(path, "rb"), kind
    if kind == "bzip2":
        return bz2.open(path, "rb"), kind
    return open(path, "rb"), kind


def read_bytes(path, what):
    """The (decompressed) content of ``path``; ``what`` names it in error messages."""
    path = os.fspath(path)
    fh, kind = _open_binary(path)
    try:
        with fh:
            return fh.read()
    except STREAM_ERRORS as exc:
        if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise
        raise ValueError(f"{what} {path!r} is a damaged {kind} file: {exc or type(exc).__name__}"
                         f" (truncated or corrupted; download or copy it again)") from None


@contextlib.contextmanager
def open_text_stream(path, what):
    """``with open_text_stream(p, what) as fh``: a binary stream of the decompressed file; a
    damaged stream raises ``ValueError`` naming it, also in the middle of the reading."""
    path = os.fspath(path)
    fh, kind = _open_binary(path)
    try:
        with fh:
            yield fh
    except STREAM_ERRORS as exc:
        if kind is None or isinstance(exc, (FileNotFoundError, IsADirectoryError,
                                            PermissionError)):
            raise
        raise ValueError(f"{what} {path!r} is a damaged {kind} file: {exc or type(exc).__name__}"
                         f" (truncated or corrupted)") from None


# ------------------------------------------------------------------------------- npz
#: deflate cannot expand data by more than this factor (RFC 1951's longest match per bit)
_DEFLATE_MAX_RATIO = 1032


def _member_header(zf, info):
    """``(shape, fortran_order, dtype)`` of an ``.npy`` member, checked against its size."""
    fmt = np.lib.format
    with zf.open(info) as fh:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise ValueError(f"npy format version {version}")
        header = fh.tell() if fh.seekable() else 128
    if dtype.hasobject:
        raise ValueError("it holds Python objects (which need pickle)")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    available = info.file_size - header
    limit = info.compress_size * (_DEFLATE_MAX_RATIO if info.compress_type else 1)
    if nbytes > available or info.file_size > limit:
        raise ValueError(f"its header announces {shape} {dtype} ({nbytes} bytes) but it holds "
                         f"{max(available, 0)} bytes")
    return shape, fortran, dtype


def read_npz(path, what):
    """Every array of the ``.npz`` archive ``path`` (name -> ndarray), read without pickle.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        A damaged, truncated or not-npz file, naming it (``what`` says what it
        should be, e.g. ``'fastnet model file'``) and what is wrong.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a directory, not a {what}")
    archive_size = os.path.getsize(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise ValueError(f"{path!r} is not a readable {what}: a damaged, truncated or "
                         f"non-npz archive ({exc})") from None
    arrays = {}
    with zf:
        for info in zf.infolist():
            name = info.filename
            try:
                if not name.endswith(".npy"):
                    raise ValueError("it is not an .npy array")
                if info.compress_size > archive_size:
                    raise ValueError("its size exceeds the archive's")
                _member_header(zf, info)
                with zf.open(info) as fh:
                    arrays[name[:-4]] = np.lib.format.read_array(fh, allow_pickle=False)
            except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile,
                    NotImplementedError, SyntaxError, TypeError, OverflowError,
                    MemoryError) as exc:
                raise ValueError(f"{path!r} is a damaged {what}: its member {name!r} cannot be "
                                 f"read: {' '.join(str(exc).split()) or type(exc).__name__}") \
                    from None
    return arrays
