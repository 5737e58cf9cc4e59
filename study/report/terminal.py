"""The Pareto front as plain text that fits the width it has (``kdtune pareto``).

:func:`fit_lines` lays rows out as a table for ``width`` columns: short headers, the most
important columns first (trial, size, the objectives and their test figures), the rest left
out with a note naming them (``--wide`` shows every column); when even the first columns do
not fit, one block of ``label  value`` lines per trial. No line is longer than ``width``
unless ``wide`` asks for every column.
"""

from __future__ import annotations

import math
import os
import shutil
import textwrap
from collections.abc import Sequence
from typing import Any

__all__ = ["LABELS", "fit_lines", "output_width", "size_text"]

LABELS = {
    "accuracy_student": "accuracy", "accuracy_test": "acc. test", "sigma_test": "sigma test",
    "sigma_max_test": "sigma_max test", "phi_cnf_test": "phi_cnf test", "size": "size",
    "latency_ratio": "latency", "learning_rate": "lr", "temperature": "T",
    "layer_mapping": "mapping", "student_shape": "shape", "student_layers": "layers",
    "hidden_size": "width", "vocabulary_size": "vocab", "reproduced": "reprod.",
}
"""Short headers; a column not named here is headed by its own name."""

_FIRST = ("trial", "size")
_NEXT = ("latency_ratio",)  # the second size axis: the first column after the essential ones
_LATER = ("phi_cnf", "phi_cnf_test", "reproduced")
_GAP = "  "


def output_width(tty: bool) -> int:
    """The terminal's width on a terminal; else ``$COLUMNS``, else 100."""
    if tty:
        return shutil.get_terminal_size((100, 24)).columns
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return 100


def size_text(row: dict[str, Any]) -> str:
    """Parameters and their ratio to the teacher's: ``5.4M (24%)``."""
    params, ratio = row.get("params"), row.get("params_ratio")
    if isinstance(ratio, float) and not math.isfinite(ratio):
        ratio = None
    if params is None and ratio is None:
        return ""
    text = f"{params / 1e6:.1f}M" if params is not None else ""
    return f"{text} ({ratio:.0%})".strip() if ratio is not None else text


def _order(cols: Sequence[str], objectives: set[str]) -> tuple[list[str], list[str]]:
    """(essential, optional) columns by importance: trial, size, the objectives, their test
    figures; then latency, the rest in their own order, a few least useful last."""
    shown = [c for c in cols if c in objectives]
    tests = [f"{c.removesuffix('_student')}_test" for c in shown]
    essential = [c for c in [*_FIRST, *shown, *tests] if c in cols]
    rest = [c for c in cols if c not in essential and c not in (*_NEXT, *_LATER)]
    return essential, ([c for c in _NEXT if c in cols] + rest
                       + [c for c in _LATER if c in cols and c not in essential])


def fit_lines(rows: Sequence[dict[str, str]], objectives: set[str], width: int,
              wide: bool = False, title: str = "") -> list[str]:
    """``rows`` (cells already text; ``size`` from :func:`size_text`) as lines of at most
    ``width`` characters (any width with ``wide``); ``objectives`` name the columns that
    come right after trial and size, each followed later by its ``_test`` column."""
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(k for k, v in row.items() if v != ""))
    essential, optional = _order(list(cols), objectives)
    order = essential + optional
    need = {c: max(len(LABELS.get(c, c)), *(len(r.get(c, "")) for r in rows)) for c in order}

    def fits(columns: list[str]) -> bool:
        return sum(need[c] for c in columns) + len(_GAP) * (len(columns) - 1) <= width

    head = [title] if title else []
    if not wide and not fits(essential):
        return head + _blocks(rows, order, width)
    kept = list(essential)
    for c in optional:
        if wide or fits([*kept, c]):
            kept.append(c)
    lines = head
    for cells in [[LABELS.get(c, c) for c in kept], *[[r.get(c, "") for c in kept] for r in rows]]:
        lines.append(_GAP.join(cell.rjust(need[c]) if c != "layer_mapping" else
                               cell.ljust(need[c]) for c, cell in zip(kept, cells, strict=True))
                     .rstrip())
    dropped = [LABELS.get(c, c) for c in order if c not in kept]
    if dropped:
        note = f"not shown: {', '.join(dropped)} (--wide shows them)"
        lines += textwrap.wrap(note, width, break_long_words=False, break_on_hyphens=False)
    return lines


def _blocks(rows: Sequence[dict[str, str]], order: Sequence[str], width: int) -> list[str]:
    """One block per trial: ``trial N``, then a ``label  value`` line per column."""
    pad = max(len(LABELS.get(c, c)) for c in order)
    lines = []
    for row in rows:
        lines.append(f"trial {row.get('trial', '?')}")
        for c in order:
            if c != "trial" and row.get(c, ""):
                lines += textwrap.wrap(f"  {LABELS.get(c, c).ljust(pad)}  {row[c]}", width,
                                       subsequent_indent=" " * (pad + 4))
    return lines
