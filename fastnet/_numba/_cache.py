"""Where Numba caches the compiled kernels: beside their sources, else a per-user directory.

Numba's on-disk cache (``cache=True``) is written next to each source file,
in ``fastnet/_numba/__pycache__``.  A user who cannot write there (fastnet
installed system-wide, site-packages read-only) would recompile every kernel
in every new process.  So when that directory is not writable, the kernels
are cached in ``$XDG_CACHE_HOME/fastnet/numba`` (``~/.cache/fastnet/numba``
by default) instead: :func:`configure` decides once, and :func:`redirect`
applies the choice while the kernel modules are imported (Numba picks a
function's cache directory when it is decorated), so other Numba code in the
process keeps its own cache location.  ``NUMBA_CACHE_DIR`` set by the user
is always respected.

:data:`CACHE_DIR` is the directory in use (for ``fastnet.show_config()``).
"""
import contextlib
import os
import tempfile

__all__ = ["CACHE_DIR", "configure", "redirect", "user_cache_dir"]

#: The directory the numba kernels are cached in (set by :func:`configure`).
CACHE_DIR = None
_redirect_to = None

_SOURCE_CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")


def _writable(path):
    """True if files can be created in ``path`` (created when missing)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
        return True
    except OSError:
        return False


def user_cache_dir():
    """``$XDG_CACHE_HOME/fastnet/numba``, else ``~/.cache/fastnet/numba``."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(
        os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastnet", "numba")


def configure():
    """Choose the cache directory (once per process); returns it."""
    global CACHE_DIR, _redirect_to
    user = os.environ.get("NUMBA_CACHE_DIR", "").strip()
    if user:
        CACHE_DIR, _redirect_to = user, None
    elif _writable(_SOURCE_CACHE):
        CACHE_DIR, _redirect_to = _SOURCE_CACHE, None
    else:
        CACHE_DIR = _redirect_to = user_cache_dir()
    return CACHE_DIR


@contextlib.contextmanager
def redirect():
    """Inside: kernels decorated with ``cache=True`` cache in :data:`CACHE_DIR`."""
    if CACHE_DIR is None:
        configure()
    if _redirect_to is None:
        yield
        return
    from numba.core import config
    old = config.CACHE_DIR
    config.CACHE_DIR = _redirect_to
    try:
        yield
    finally:
        config.CACHE_DIR = old
