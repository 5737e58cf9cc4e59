"""What a fit shows while it runs: a live bar on a terminal, plain lines off one, and the
libraries' own bars.

Off a terminal (a log file, a pipe, a CI log) a live bar's carriage returns become hundreds of
lines, so :class:`FitProgress` prints plain lines there instead: one per epoch and, during long
work (an epoch, a measurement), one at least every ``interval`` seconds
(:data:`PLAIN_INTERVAL_S`) with the batches done, the rate and an ETA.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = ["PLAIN_INTERVAL_S", "FitProgress", "duration", "library_progress", "progress_bar"]

PLAIN_INTERVAL_S = 30.0
"""Off a terminal, the longest wait (seconds) between two lines during long work."""


@contextlib.contextmanager
def library_progress(enabled: bool) -> Iterator[None]:
    """Silence transformers' and datasets' own progress bars unless ``enabled``."""
    if enabled:
        yield
        return
    import datasets
    from transformers.utils import logging as hf_logging

    hf_was, ds_was = hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_logging.disable_progress_bar()
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if hf_was:
                hf_logging.enable_progress_bar()
            if ds_was:
                datasets.enable_progress_bars()


def progress_bar(enabled: bool, file: TextIO | None = None) -> tuple[Any, Any]:
    """A rich console (on ``file``, by default stderr) and a progress bar with a ``loss`` field.

    The bar shows only when ``enabled`` and the console is a terminal.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(file=file, stderr=file is None, soft_wrap=True, highlight=False,
                      markup=False)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=True,
    )
    return console, bar


def duration(seconds: float) -> str:
    """``45s``, ``12m 30s``, ``3h 05m``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _figure(x: float) -> str:
    """A rate to 3 significant digits, whole from 100 on (``0.667``, ``12.5``, ``9200``)."""
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def _isatty(file: TextIO) -> bool:
    """Whether ``file`` is a terminal (a closed or odd stream is not)."""
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):
        return False


class FitProgress:
    """A fit's progress, as a context manager: every line starts with ``name``.

    On a terminal: a live bar over all training steps (:func:`progress_bar`) and a line per
    epoch above it. Off one: a plain line per epoch and per step of the fit (:meth:`note`),
    and, during the work begun by :meth:`begin`, a line at least every ``interval`` seconds
    (checked after each batch) giving batches done of the total, batches/s, examples/s where
    known, the running loss and the ETA. With ``enabled`` false it prints nothing.
    """

    def __init__(self, name: str, enabled: bool = True, interval: float = PLAIN_INTERVAL_S,
                 file: TextIO | None = None) -> None:
        self.name, self.enabled, self.interval = name, enabled, interval
        self.file = file if file is not None else sys.stderr
        self.live = enabled and _isatty(self.file)  # as ``kdtune``'s own plain_output()
        self.console, self.bar = progress_bar(self.live, self.file)
        self.plain = enabled and not self.live
        self._task: Any = None
        self._label, self._total, self._done, self._examples = "", 0, 0, 0
        self._started = self._said = self._epoch_started = time.monotonic()
        self._epoch = ""

    def __enter__(self) -> FitProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def start(self, description: str, steps: int) -> None:
        """The live bar: ``steps`` batches in all (every epoch's)."""
        self._task = self.bar.add_task(description, total=steps, loss=float("nan"))

    def note(self, text: str) -> None:
        """One line, ``name`` then ``text`` (a step of the fit, an epoch's result)."""
        if not self.enabled:
            return
        line = f"{self.name} {text}" if self.name else text
        if self.plain:
            self.file.write(line + "\n")
            self.file.flush()
        else:
            self.console.print(line)
        self._said = time.monotonic()

    def begin(self, label: str, batches: int) -> None:
        """Long work of ``batches`` batches begins; its lines read ``name label: ...``."""
        self._label, self._total, self._done, self._examples = label, batches, 0, 0
        self._started = time.monotonic()

    def begin_epoch(self, epoch: int, epochs: int, batches: int, detail: str = "") -> None:
        """Epoch ``epoch`` of ``epochs`` begins (``detail``: e.g. its phase)."""
        self.begin(f"epoch {epoch}/{epochs}" + (f" ({detail})" if detail else ""), batches)
        self._epoch, self._epoch_started = self._label, self._started

    def step(self, examples: int = 0, loss: float | None = None) -> None:
        """One batch of the current work done (``examples`` rows; ``loss``: the mean so far,
        which advances the live bar)."""
        self._done += 1
        self._examples += examples
        if loss is not None and self._task is not None:
            self.bar.update(self._task, advance=1, loss=loss)
        if self.plain and time.monotonic() - self._said >= self.interval:
            self.note(self.rate_line(loss))

    def epoch_done(self, loss: float, eval_accuracy: float | None = None) -> None:
        """The line of the epoch begun last: train loss, eval accuracy if measured, time."""
        measured = "" if eval_accuracy is None else f", eval accuracy {eval_accuracy:.4f}"
        self.note(f"{self._epoch}: train loss {loss:.4f}{measured}, "
                  f"in {duration(time.monotonic() - self._epoch_started)}")

    def rate_line(self, loss: float | None = None) -> str:
        """``label: batch d/t, r batches/s (e examples/s), loss l, ETA s`` for the work now."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self._done / elapsed
        parts = [f"batch {self._done}/{self._total}", f"{_figure(rate)} batches/s"]
        if self._examples:
            parts[-1] += f" ({_figure(self._examples / elapsed)} examples/s)"
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        left = max(self._total - self._done, 0)
        parts.append(f"ETA {duration(left / rate) if rate > 0 else '?'}")
        return f"{self._label}: " + ", ".join(parts)

    def counting(self, collate: Callable[[list], Any]) -> Callable[[list], Any]:
        """``collate`` that counts the previous batch done each time it is called (a
        prediction loop collates a batch, then runs it), for lines while measuring."""
        last = 0

        def counted(rows: list) -> Any:
            nonlocal last
            if last:
                self.step(examples=last)
            last = len(rows)
            return collate(rows)

        return counted
