"""The Pareto front as rows: a table, JSON or CSV (``kdtune pareto``).

:func:`pareto_rows` takes the rows from :func:`kdtune.study.front.front_trials`: one per
Pareto-optimal COMPLETE trial, best first on the first objective, each objective with its stored
bootstrap interval beside it; after ``kdtune rescore``, each objective's mean over the trial's seeds
with its 95% interval; with ``test`` (``kdtune pareto --test``), the front trial's test-split
figures, ``None`` until measured (:func:`untested_trials`). :func:`print_pareto` prints them.

Why: docs/design.md, "Pareto rows: intervals, seed means and test figures".
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial

from kdtune.attrs import PHI_CNF
from kdtune.errors import UsageError
from kdtune.objectives.measure.bootstrap import interval_key

from ..config import StudyConfig
from ..front import front_trials
from ..rescore import seed_summary
from ..service import open_study
from ..verdict import fresh_verdict, stored_verdicts
from .size import sigma_metric

SIZE_COLUMNS = ("params", "params_ratio", "latency_ratio", "vocabulary_size",
                "align_temperature")
"""Trial figures every front row carries when stored: parameters (with the kept vocabulary)
and latency as fractions of the teacher's, the kept vocabulary, the alignment temperature."""

PARETO_FORMATS = ("table", "json", "csv")
"""Formats accepted by :func:`print_pareto`."""


def _row(t: FrozenTrial, cfg: StudyConfig) -> dict[str, Any]:
    row: dict[str, Any] = {"trial": t.number}
    for name, value in zip(cfg.objectives, t.values, strict=True):
        row[name] = value
        ci = t.user_attrs.get(interval_key(name))
        if ci is not None:
            row[interval_key(name)] = list(ci)
    for name, value in t.params.items():
        row[name if name not in row else f"param_{name}"] = value
    for name in SIZE_COLUMNS:  # the student's size on both axes, when the trial stored it
        if name not in row and t.user_attrs.get(name) is not None:
            row[name] = t.user_attrs[name]
    row[PHI_CNF] = t.user_attrs.get(PHI_CNF)
    return row


def test_columns(verdict: dict | None, metric: str) -> dict[str, Any]:
    """A row's test-split columns from its stored verdict (all ``None`` without one)."""
    test = (verdict or {}).get("test", {})
    out: dict[str, Any] = {}
    for name, source in (("accuracy_test", "accuracy_student"), (f"{metric}_test", metric)):
        out[name] = test.get(source)
        out[interval_key(name)] = test.get(interval_key(source))
    out["phi_cnf_test"] = test.get(PHI_CNF)
    out["reproduced"] = None if verdict is None else verdict.get("reproduced")
    return out


def seed_columns(entry: dict | None, cfg: StudyConfig) -> dict[str, Any]:
    """A row's ``kdtune rescore`` columns: ``seeds`` and each objective's ``<name>_mean``
    with its ``<name>_mean_ci`` (all ``None`` for a trial not rescored)."""
    out: dict[str, Any] = {"seeds": (entry or {}).get("seeds")}
    for name in cfg.objectives:
        out[f"{name}_mean"] = (entry or {}).get(f"{name}_mean")
        out[interval_key(f"{name}_mean")] = (entry or {}).get(f"{name}_mean_ci")
    return out


def front_rows(study: optuna.Study, cfg: StudyConfig, test: bool = False) -> list[dict[str, Any]]:
    """:func:`pareto_rows` for an open study."""
    trials = front_trials(study, cfg)
    summary = seed_summary(study, cfg)
    rows = [_row(t, cfg) for t in trials]
    if summary:
        rows = [{**row, **seed_columns(summary.get(t.number), cfg)}
                for row, t in zip(rows, trials, strict=True)]
    if not test:
        return rows
    verdicts, metric = stored_verdicts(study), sigma_metric(cfg)
    return [{**row, **test_columns(fresh_verdict(t, verdicts), metric)}
            for row, t in zip(rows, trials, strict=True)]


def untested_trials(rows: Sequence[dict[str, Any]]) -> list[int]:
    """The trials of ``test`` rows that have no test figures yet (``kdtune test``)."""
    return [r["trial"] for r in rows if "reproduced" in r and r["reproduced"] is None]


def pareto_rows(study_name: str, storage: str | None, test: bool = False) -> list[dict[str, Any]]:
    """The Pareto front of a study, one dict per Pareto-optimal COMPLETE trial.

    Keys, in order: ``trial`` (the trial number), each objective by its metric name
    (followed by ``<name>_ci``, its ``[low, high]`` 95% bootstrap interval, when the trial
    stored one), each searched parameter by name (``param_<name>`` if it clashes with an
    earlier key) and ``phi_cnf`` (None when the trial did not record it); with ``test``,
    then :func:`test_columns`. Rows are sorted best first on the first objective.

    Raises:
        StudyNotFound: no such study.
        KdtuneError: the study has no complete trials yet.
    """
    study, cfg = open_study(study_name, storage)
    return front_rows(study, cfg, test)


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The union of the rows' keys, in first-seen order (parameters can be conditional)."""
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def cell(value: Any) -> str:
    """A value as a table shows it: 4 significant digits for a float (``0.7375``,
    ``0.0001``, ``5e-05``, ``11.56``); empty for None."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def interval_text(value: Any, ci: Any) -> str:
    """A value with its interval, as tables show it: ``0.7450 [0.702, 0.786]``."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return cell(value)
    low, high = (cell(v) if not isinstance(v, float) else f"{v:.3f}" for v in ci)
    return f"{cell(value)} [{low}, {high}]"


def display_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as a table shows them: each ``<name>_ci`` joined into its ``<name>`` cell
    (:func:`interval_text`), the separate ``_ci`` column dropped."""
    out = []
    for row in rows:
        shown = {}
        for key, value in row.items():
            if key.endswith("_ci") and key.removesuffix("_ci") in row:
                continue
            ci = row.get(interval_key(key))
            shown[key] = interval_text(value, ci) if ci is not None else value
        out.append(shown)
    return out


def flat_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as CSV writes them: each ``[low, high]`` list as ``_low`` and ``_high`` columns
    (both empty for an interval that is ``None``)."""
    out = []
    for row in rows:
        flat: dict[str, Any] = {}
        for key, value in row.items():
            if key.endswith("_ci") and (value is None or (
                    isinstance(value, (list, tuple)) and len(value) == 2)):
                flat[f"{key}_low"], flat[f"{key}_high"] = value or (None, None)
            else:
                flat[key] = value
        out.append(flat)
    return out


def print_pareto(rows: Sequence[dict[str, Any]], fmt: str = "table",
                 file: TextIO | None = None, *, width: int | None = None,
                 wide: bool = False) -> None:
    """Print Pareto rows (from :func:`pareto_rows`) to ``file`` (default stdout).

    ``fmt``: ``table`` (plain text that fits ``width``, default the terminal's or
    :func:`~.terminal.output_width`; intervals in the cell of their metric, size as
    parameters and their ratio to the teacher's; ``wide``: every column), ``json`` (a
    list of objects, numbers unrounded, intervals as ``[low, high]``) or ``csv`` (a header
    line, then one line per row; intervals as ``<name>_ci_low`` and ``<name>_ci_high``; a
    parameter a trial lacks is empty).

    Raises:
        UsageError: ``fmt`` is not one of :data:`PARETO_FORMATS`.
    """
    if fmt not in PARETO_FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(PARETO_FORMATS)}")
    out = file if file is not None else sys.stdout
    if fmt == "json":
        out.write(json.dumps(list(rows), indent=2, default=str) + "\n")
    elif fmt == "csv":
        flat = flat_rows(rows)
        writer = csv.DictWriter(out, fieldnames=columns(flat), restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
    else:
        from .terminal import fit_lines, output_width, size_text

        # the objectives: the selection figures that carry an interval
        objectives = {k for row in rows for k in row
                      if f"{k}_ci" in row and not k.endswith("_test")}

        shown = []
        for row, display in zip(rows, display_rows(rows), strict=True):
            text = {k: cell(v) for k, v in display.items()
                    if k not in ("params", "params_ratio")}
            latency = row.get("latency_ratio")
            if isinstance(latency, float):  # not measured (NaN): left empty
                text["latency_ratio"] = f"{latency:.2f}x" if math.isfinite(latency) else ""
            shown.append({"trial": text.pop("trial", ""), "size": size_text(row), **text})
        if width is None:
            width = output_width(hasattr(out, "isatty") and out.isatty())
        lines = fit_lines(shown, objectives, width, wide,
                          title=f"Pareto front ({len(rows)} trials)")
        out.write("\n".join(lines) + "\n")


__all__ = ["PARETO_FORMATS", "cell", "columns", "display_rows", "flat_rows", "front_rows",
           "interval_text", "pareto_rows", "print_pareto", "test_columns", "untested_trials"]
