"""The progress display: silent for short work and with verbose=0, informative otherwise."""
import io

import pytest

from fastnet._progress import Progress


def run(n=5, **kw):
    out = io.StringIO()
    with Progress(total=n, file=out, desc="fit", **kw) as bar:
        for i in range(n):
            bar.update(loss=1.0 / (i + 1), acc=50.0 + i, samples=100)
    return out.getvalue(), bar


def test_plain_line_shows_epoch_loss_accuracy_rate():
    text, bar = run(verbose=2, style="plain")
    assert text.startswith("\rfit: epoch 1/5") and text.endswith("\n")
    last = text.rstrip("\n").split("\r")[-1]
    assert "epoch 5/5" in last and "loss 0.2" in last and "acc 54.0%" in last
    assert "samples/s" in last
    assert bar.samples == 500 and bar.n == 5


def test_tqdm_bar():
    pytest.importorskip("tqdm")
    text, _ = run(verbose=2, style="tqdm")
    assert "fit" in text and "5/5" in text and "loss=0.2" in text and "samples/s=" in text


def test_silent_when_verbose_zero_or_short():
    for style in ("plain", "auto"):
        assert run(verbose=0, style=style)[0] == ""
        assert run(verbose=1, style=style, delay=60)[0] == ""  # ends before the delay


def test_appears_after_the_delay(monkeypatch):
    import fastnet._progress as P
    clock = iter(range(0, 1000, 1))  # one second per call of perf_counter
    monkeypatch.setattr(P.time, "perf_counter", lambda: float(next(clock)))
    out = io.StringIO()
    bar = Progress(total=10, verbose=1, delay=5.0, file=out, style="plain")
    bar.update(loss=1.0)
    assert out.getvalue() == ""
    for _ in range(5):
        bar.update(loss=0.5)
    bar.close()
    assert "epoch 6/10" in out.getvalue() and out.getvalue().endswith("\n")


def test_bad_style():
    with pytest.raises(ValueError, match="style must be one of"):
        Progress(style="fancy")


def test_lines_when_the_stream_is_not_a_terminal(monkeypatch):
    """A log file gets whole lines (no carriage returns), at most one a second, and the last."""
    import fastnet._progress as P
    now = [0.0]
    monkeypatch.setattr(P.time, "perf_counter", lambda: now[0])
    out = io.StringIO()  # not a terminal
    with Progress(total=10, verbose=2, desc="fit", file=out) as bar:
        assert bar.style == "lines"
        for i in range(10):
            now[0] = 0.4 * (i + 1)  # an update every 0.4 s
            bar.update(loss=1.0 / (i + 1), samples=10)
    text = out.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert lines[0].startswith("fit: epoch 1/10") and lines[-1].startswith("fit: epoch 10/10")
    assert 3 <= len(lines) <= 6  # throttled to one a second over ~4 s, plus the last


def test_terminal_gets_the_bar(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(out, "isatty", lambda: True, raising=False)
    bar = Progress(total=3, verbose=2, file=out)
    assert bar.style in ("tqdm", "plain")
    bar.close()
