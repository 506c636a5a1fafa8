"""A progress bar for long training: epoch, loss, accuracy, samples per second.

:class:`Progress` shows nothing for work that ends within ``delay`` seconds
(2 s by default), so short fits stay silent; after that, on a terminal, it
draws a bar with ``tqdm`` when it is installed, otherwise a plain one-line
display rewritten in place with ``\\r``.  When its stream is not a terminal
(a log file, a pipe, CI) it writes whole lines instead, one per update and at
most one a second (and the last one at the end), so that logs hold no ``\\r``
fragments.  ``verbose=0`` silences it; ``verbose >= 2`` shows it from the
first update.  This is fastnet's one progress display.

Used by the estimators (:mod:`fastnet.estimators`) and usable by any loop::

    with Progress(total=epochs, verbose=1, desc="MLPClassifier") as bar:
        for epoch in range(epochs):
            ...
            bar.update(loss=J, acc=acc, samples=len(X))
"""
from __future__ import annotations

import sys
import time

__all__ = ["Progress", "DEFAULT_DELAY"]

#: Seconds of work before a progress display appears.
DEFAULT_DELAY = 2.0


def _is_terminal(file):
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError, OSError):  # closed or file-like without isatty
        return False


def _tqdm_class():
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional
        return None
    return tqdm


class Progress:
    """Progress of a training loop, shown only when it lasts more than ``delay`` seconds.

    Parameters
    ----------
    total : int or None
        Number of steps (epochs) expected, when known.
    verbose : int
        0: silent; 1: show after ``delay`` seconds; 2 or more: show at once.
    desc : str
        Label in front of the bar.
    unit : str
        What one step is (``'epoch'``).
    delay : float
        Seconds before anything is shown (when ``verbose == 1``).
    file : file-like, optional
        Where to write (standard error by default).
    style : {'auto', 'tqdm', 'plain', 'lines'}
        ``'auto'``: on a terminal tqdm when it is installed, else ``'plain'``
        (one line rewritten with ``\\r``); elsewhere ``'lines'`` (a new line
        per update, at most one every ``interval`` seconds).
    interval : float
        Seconds between two lines of the ``'lines'`` style.
    """

    def __init__(self, total=None, *, verbose=1, desc="training", unit="epoch",
                 delay=DEFAULT_DELAY, file=None, style="auto", interval=1.0):
        if style not in ("auto", "tqdm", "plain", "lines"):
            raise ValueError(f"style must be one of 'auto', 'tqdm', 'plain', 'lines', got "
                             f"{style!r}")
        self.total = total
        self.verbose = int(verbose or 0)
        self.desc = desc
        self.unit = unit
        self.delay = 0.0 if self.verbose >= 2 else float(delay)
        self.file = file if file is not None else sys.stderr
        self.n = 0
        self.samples = 0
        self.postfix = {}
        self.start = time.perf_counter()
        self._bar = None
        self._shown = False
        self._last_draw = 0.0
        self._width = 0
        self._closed = False
        self._tqdm = None
        self.interval = float(interval)
        self._drawn_n = -1
        asked = style
        if style == "auto":
            style = "tqdm" if _is_terminal(self.file) else "lines"
        self.style = style
        if self.enabled and style == "tqdm":
            self._tqdm = _tqdm_class()
            if self._tqdm is None:
                if asked == "tqdm":
                    raise ImportError("style='tqdm' needs tqdm: pip install tqdm")
                self.style = "plain"

    @property
    def enabled(self) -> bool:
        """False when ``verbose == 0``."""
        return self.verbose > 0

    @property
    def elapsed(self) -> float:
        """Seconds since the progress started."""
        return time.perf_counter() - self.start

    def rate(self) -> float:
        """Samples per second so far (0 before any sample)."""
        dt = self.elapsed
        return self.samples / dt if dt > 0 else 0.0

    def update(self, n=1, *, loss=None, acc=None, samples=None, **extra):
        """Record ``n`` more steps and the latest ``loss``, ``acc`` (percent) and ``samples`` seen.

        Extra keyword arguments are shown as ``name=value``.
        """
        self.n += n
        if samples:
            self.samples += int(samples)
        if not self.enabled or self._closed:
            return
        post = {}
        if loss is not None:
            post["loss"] = f"{loss:.4g}"
        if acc is not None:
            post["acc"] = f"{acc:.1f}%"
        for key, value in extra.items():
            post[key] = f"{value:.4g}" if isinstance(value, float) else str(value)
        if self.samples:
            post["samples/s"] = f"{self.rate():,.0f}"
        self.postfix = post
        now = time.perf_counter()
        if self._bar is None and now - self.start < self.delay:
            return
        if self._tqdm is not None:
            if self._bar is None:  # created only once the delay is over: short work costs nothing
                self._bar = self._tqdm(total=self.total, initial=self.n - n, desc=self.desc,
                                       unit=self.unit, file=self.file, leave=True,
                                       dynamic_ncols=True, mininterval=0.1)
            self._bar.set_postfix(post, refresh=False)
            self._bar.update(n)
            return
        if not self._shown or now - self._last_draw >= \
                (self.interval if self.style == "lines" else 0.1):
            self._draw(now)

    def line(self) -> str:
        """The plain display's text: ``desc: epoch n/total | loss ... | acc ... | samples/s ...``."""
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        parts = [f"{self.desc}: {self.unit} {count}"]
        parts += [f"{key} {value}" for key, value in self.postfix.items()]
        parts.append(f"{self.elapsed:.1f}s")
        return " | ".join(parts)

    def _draw(self, now):
        text = self.line()
        self._drawn_n = self.n
        if self.style == "lines":
            self.file.write(text + "\n")
            self.file.flush()
            self._shown = True
            self._last_draw = now
            return
        pad = " " * max(0, self._width - len(text))
        self.file.write("\r" + text + pad)
        self.file.flush()
        self._width = len(text)
        self._shown = True
        self._last_draw = now

    def close(self):
        """Finish the display (a final newline when something was shown)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self._shown and self.style == "lines":
            if self._drawn_n != self.n:  # the last state, when the interval held it back
                self._draw(time.perf_counter())
        elif self._shown:
            self._draw(time.perf_counter())
            self.file.write("\n")
            self.file.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
