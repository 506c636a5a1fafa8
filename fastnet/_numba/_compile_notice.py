"""One line on stderr when the numba kernels are compiled (not loaded from the cache).

Numba compiles a kernel the first time it is called with new argument types
unless its on-disk cache holds it; that takes seconds, which a first-time
user would otherwise take for a hang.  A listener of Numba's ``numba:compile``
event (which fires only on a real compilation, after a cache miss) prints::

    fastnet: compiling the numba kernels (first use, cached afterwards)...

once per process, for the kernels of ``fastnet._numba``.
``FASTNET_QUIET=1`` silences it.
"""
import os
import sys
import threading

from numba.core import event

MESSAGE = "fastnet: compiling the numba kernels (first use, cached afterwards)..."

_lock = threading.Lock()
_said = False


class _Notice(event.Listener):
    def on_start(self, ev):
        global _said
        if _said:
            return
        disp = ev.data.get("dispatcher") if isinstance(ev.data, dict) else None
        module = getattr(getattr(disp, "py_func", None), "__module__", "") or ""
        if not module.startswith("fastnet._numba"):
            return
        with _lock:
            if _said:
                return
            _said = True
        if os.environ.get("FASTNET_QUIET", "").strip() not in ("1", "true", "yes"):
            print(MESSAGE, file=sys.stderr, flush=True)

    def on_end(self, ev):
        pass


event.register("numba:compile", _Notice())
