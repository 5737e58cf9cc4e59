"""The Pareto front as rows: a table, JSON or CSV (``kdtune pareto``).

Rows come from :func:`kdtune.study.front.front_trials`: one per Pareto-optimal COMPLETE
trial, best first on the first objective.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial

from kdtune.attrs import PHI_CNF
from kdtune.errors import UsageError

from .config import StudyConfig
from .front import front_trials
from .service import open_study

PARETO_FORMATS = ("table", "json", "csv")
"""Formats accepted by :func:`print_pareto`."""


def _row(t: FrozenTrial, cfg: StudyConfig) -> dict[str, Any]:
    row: dict[str, Any] = {"trial": t.number}
    row.update(zip(cfg.objectives, t.values, strict=True))
    for name, value in t.params.items():
        row[name if name not in row else f"param_{name}"] = value
    row[PHI_CNF] = t.user_attrs.get(PHI_CNF)
    return row


def front_rows(study: optuna.Study, cfg: StudyConfig) -> list[dict[str, Any]]:
    """:func:`pareto_rows` for an open study."""
    return [_row(t, cfg) for t in front_trials(study, cfg)]


def pareto_rows(study_name: str, storage: str | None) -> list[dict[str, Any]]:
    """The Pareto front of a study, one dict per Pareto-optimal COMPLETE trial.

    Keys, in order: ``trial`` (the trial number), each objective by its metric name, each
    searched parameter by name (``param_<name>`` if it clashes with an earlier key) and
    ``phi_cnf`` (None when the trial did not record it). Rows are sorted best first on the
    first objective.

    Raises:
        StudyNotFound: no such study.
        KdtuneError: the study has no complete trials yet.
    """
    study, cfg = open_study(study_name, storage)
    return front_rows(study, cfg)


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The union of the rows' keys, in first-seen order (parameters can be conditional)."""
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def cell(value: Any) -> str:
    """A value as a table shows it: 4 decimals, or 4 significant digits when very large or
    small; empty for None."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e4 or 0 < abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


def print_pareto(rows: Sequence[dict[str, Any]], fmt: str = "table",
                 file: TextIO | None = None) -> None:
    """Print Pareto rows (from :func:`pareto_rows`) to ``file`` (default stdout).

    ``fmt``: ``table`` (a rich table), ``json`` (a list of objects, numbers unrounded) or
    ``csv`` (a header line, then one line per row; a parameter a trial lacks is empty).

    Raises:
        UsageError: ``fmt`` is not one of :data:`PARETO_FORMATS`.
    """
    if fmt not in PARETO_FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(PARETO_FORMATS)}")
    out = file if file is not None else sys.stdout
    cols = columns(rows)
    if fmt == "json":
        out.write(json.dumps(list(rows), indent=2, default=str) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=cols, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Pareto front ({len(rows)} trials)")
        for c in cols:
            table.add_column(c, justify="left" if c == "layer_mapping" else "right")
        for row in rows:
            table.add_row(*(cell(row.get(c)) for c in cols))
        Console(file=out).print(table)


__all__ = ["PARETO_FORMATS", "cell", "columns", "front_rows", "pareto_rows", "print_pareto"]
