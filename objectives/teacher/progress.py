"""What a teacher fit shows while it runs: its own progress bar, and the libraries' bars."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

__all__ = ["library_progress", "progress_bar"]


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


def progress_bar(enabled: bool) -> tuple[Any, Any]:
    """A rich console (stderr) and a progress bar with a ``loss`` field.

    The bar shows only when ``enabled`` and stderr is a terminal.
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

    console = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)
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
