"""Reports on a kdtune study: the Pareto front, the hypervolume history, parameter importances.

* :func:`pareto_rows` / :func:`print_pareto`: the Pareto front as a table, JSON or CSV
  (``kdtune pareto``).
* :func:`hypervolume_history`: the hypervolume of the Pareto front after each complete
  trial, against the fixed :func:`reference_point` (documented there).
* :func:`write_report`: ``pareto.png``, ``hypervolume.png``, ``importances.png`` and an
  ``index.html`` that shows them with the Pareto front and the study config
  (``kdtune report``). The HTML needs no network: inline CSS, images by relative path.

Only COMPLETE trials count everywhere; failed, pruned, running and waiting trials are
ignored. Charts use matplotlib's Agg backend (no display needed), imported on use.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from kdtune.errors import KdtuneError

from .config import StudyConfig

PARETO_FORMATS = ("table", "json", "csv")
"""Formats accepted by :func:`print_pareto`."""

MIN_TRIALS_FOR_IMPORTANCE = 4
"""Fewer complete trials than this: no importances chart, a note in the HTML instead."""

REPORT_FILES = {
    "pareto": "pareto.png",
    "hypervolume": "hypervolume.png",
    "importances": "importances.png",
    "html": "index.html",
}
"""The files :func:`write_report` may write, by the key it returns them under."""

WORST_VALUES: dict[str, float] = {
    # maximised, bounded in [0, 1]: the worst is 0
    "accuracy_student": 0.0,
    "accuracy_teacher": 0.0,
    "f1_student": 0.0,
    "agreement": 0.0,
    # maximised, bounded in [-1, 1]
    "mcc_student": -1.0,
    # minimised confidence-preservation errors. When both models classify an input
    # correctly on a binary task, both probabilities of the reference class lie on the same
    # side of 0.5, so |Δ| < 0.5 and its standard deviation (and mean |Δ|) is at most 0.5.
    "sigma": 0.5,
    "sigma_label": 0.5,
    "sigma_max": 0.5,
    "mean_abs_delta": 0.5,
    # minimised calibration errors, bounded by 1
    "ece_teacher": 1.0,
    "ece_student": 1.0,
    "ece_gap": 1.0,
}
"""Reference-point coordinate of each bounded metric: its worst useful value.

Metrics not listed (``kl_teacher_student``, ``params``, ``latency_ms``) have no natural
bound; :func:`reference_point` derives theirs from the trials.
"""

_log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------
# The Pareto front


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's COMPLETE trials with one finite value per objective, by trial number."""
    n = len(study.directions)
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.values is not None and len(t.values) == n and all(map(math.isfinite, t.values)):
            out.append(t)
    return sorted(out, key=lambda t: t.number)


def _sort_key(cfg: StudyConfig) -> Callable[[FrozenTrial], tuple]:
    """Best first on the first objective, then the next ones, then the trial number."""
    signs = [-1.0 if d == "maximize" else 1.0 for d in cfg.directions]
    return lambda t: (*(s * v for s, v in zip(signs, t.values, strict=True)), t.number)


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """``study.best_trials`` without repeats of an earlier trial's configuration.

    A repeat (user attribute ``duplicate_of``, see :mod:`objectives.trial`) has its first
    trial's values, so that trial stands for it.
    """
    return [t for t in study.best_trials if "duplicate_of" not in t.user_attrs]


def front_trials(study: optuna.Study, cfg: StudyConfig) -> list[FrozenTrial]:
    """The Pareto-optimal complete trials, best first on the first objective.

    Repeats of an earlier configuration are left out (:func:`pareto_front`).

    Raises:
        KdtuneError: the study has no complete trials yet.
    """
    if not complete_trials(study):
        raise KdtuneError(f"study {study.study_name!r} has no complete trials yet")
    return sorted(pareto_front(study), key=_sort_key(cfg))


def _row(t: FrozenTrial, cfg: StudyConfig) -> dict[str, Any]:
    row: dict[str, Any] = {"trial": t.number}
    row.update(zip(cfg.objectives, t.values, strict=True))
    for name, value in t.params.items():
        row[name if name not in row else f"param_{name}"] = value
    row["phi_cnf"] = t.user_attrs.get("phi_cnf")
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
    from .service import open_study

    study, cfg = open_study(study_name, storage)
    return front_rows(study, cfg)


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The union of the rows' keys, in first-seen order (parameters can be conditional)."""
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def _cell(value: Any) -> str:
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
        ValueError: ``fmt`` is not one of :data:`PARETO_FORMATS`.
    """
    if fmt not in PARETO_FORMATS:
        raise ValueError(f"--format {fmt!r} is not one of {', '.join(PARETO_FORMATS)}")
    out = file if file is not None else sys.stdout
    cols = _columns(rows)
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
            table.add_row(*(_cell(row.get(c)) for c in cols))
        Console(file=out).print(table)


# ---------------------------------------------------------------------------------------
# Hypervolume


def reference_point(cfg: StudyConfig, trials: Sequence[FrozenTrial] = ()) -> list[float]:
    """The hypervolume reference point, one coordinate per objective, in metric units.

    Bounded metrics use their worst useful value from :data:`WORST_VALUES`: accuracy 0,
    sigma 0.5 (the largest sigma possible on a binary task), so for the default objectives
    the reference point is ``(accuracy_student=0, sigma=0.5)`` and every complete trial of a
    binary task lies inside it. A metric without a bound (``params``, ``latency_ms``,
    ``kl_teacher_student``) uses the worst value among ``trials`` moved 10% of the observed
    range further (1.0 with no trials), so the worst trial still adds some volume.
    """
    ref = []
    for i, (name, direction) in enumerate(zip(cfg.objectives, cfg.directions, strict=True)):
        if name in WORST_VALUES:
            ref.append(WORST_VALUES[name])
            continue
        values = [t.values[i] for t in trials]
        if not values:
            ref.append(1.0)
            continue
        lo, hi = min(values), max(values)
        margin = 0.1 * (hi - lo) or 0.1 * abs(hi if direction == "minimize" else lo) or 1.0
        ref.append(hi + margin if direction == "minimize" else lo - margin)
    return ref


def hypervolume_2d(points: Sequence[Sequence[float]], ref: Sequence[float]) -> float:
    """Area dominated by ``points`` and bounded by ``ref``, both objectives minimised.

    Points not strictly better than ``ref`` in both coordinates add nothing. Sorted by the
    first coordinate, the non-dominated points form a staircase; the area is the sum of
    its steps, each ``(next x - x) * (ref y - y)``.
    """
    stairs: list[tuple[float, float]] = []
    for x, y in sorted((p[0], p[1]) for p in points if p[0] < ref[0] and p[1] < ref[1]):
        if not stairs or y < stairs[-1][1]:
            stairs.append((x, y))
    area = 0.0
    for i, (x, y) in enumerate(stairs):
        right = stairs[i + 1][0] if i + 1 < len(stairs) else ref[0]
        area += (right - x) * (ref[1] - y)
    return area


def _dominates_or_equals(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is at least as good as ``b`` everywhere (all objectives minimised)."""
    return all(x <= y for x, y in zip(a, b, strict=True))


def _hypervolume(front: list[tuple[float, ...]], ref: list[float]) -> float:
    if len(ref) == 2:
        return hypervolume_2d(front, ref)
    import numpy as np
    from optuna._hypervolume import compute_hypervolume  # exact WFG, any dimension

    return float(compute_hypervolume(np.asarray(front), np.asarray(ref), assume_pareto=True))


def hypervolume_history(
    study: optuna.Study, cfg: StudyConfig, ref: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """``(trial number, hypervolume)`` after each complete trial, in trial-number order.

    The hypervolume is the volume of objective space that the Pareto front of the trials so
    far dominates, bounded by ``ref`` (default :func:`reference_point`, in metric units).
    Maximised objectives are negated first (with their reference coordinate), so every
    objective is minimised; a trial not strictly better than the reference point in every
    objective adds nothing. Infeasible trials (Optuna constraints > 0) are skipped.

    Raises:
        ValueError: the study has fewer than 2 objectives, or ``ref`` has the wrong length.
    """
    n = len(cfg.directions)
    if n < 2:
        raise ValueError(f"hypervolume needs 2 or more objectives; study {study.study_name!r} "
                         f"has {n} ({', '.join(cfg.objectives)})")
    trials = [t for t in complete_trials(study)
              if all(c <= 0 for c in t.constraints.values())]
    ref = list(ref) if ref is not None else reference_point(cfg, trials)
    if len(ref) != n:
        raise ValueError(f"reference point {ref} has {len(ref)} coordinates, not {n}")
    signs = [-1.0 if d == "maximize" else 1.0 for d in cfg.directions]
    ref_min = [s * r for s, r in zip(signs, ref, strict=True)]
    front: list[tuple[float, ...]] = []
    hv = 0.0
    history = []
    for t in trials:
        p = tuple(s * v for s, v in zip(signs, t.values, strict=True))
        inside = all(x < r for x, r in zip(p, ref_min, strict=True))
        if inside and not any(_dominates_or_equals(q, p) for q in front):
            front = [q for q in front if not _dominates_or_equals(p, q)] + [p]
            hv = _hypervolume(front, ref_min)
        history.append((t.number, hv))
    return history


# ---------------------------------------------------------------------------------------
# Importances


def param_importances(study: optuna.Study, cfg: StudyConfig) -> dict[str, dict[str, float]]:
    """Parameter importances per objective: ``{metric: {param: importance}}``.

    Uses PED-ANOVA (:class:`optuna.importance.PedAnovaImportanceEvaluator`, Optuna's default
    since 5.0; no scikit-learn needed) on each objective in turn. PED-ANOVA measures what
    it takes to reach LOW target values, so maximised objectives are negated
    (``target=lambda t: -t.values[i]``); without that it would explain the worst trials.

    Raises:
        KdtuneError: fewer than :data:`MIN_TRIALS_FOR_IMPORTANCE` complete trials, no
            searched parameters, or Optuna could not evaluate them (the reason is given).
    """
    import warnings

    trials = complete_trials(study)
    if len(trials) < MIN_TRIALS_FOR_IMPORTANCE:
        raise KdtuneError(f"parameter importances need at least {MIN_TRIALS_FOR_IMPORTANCE} "
                          f"complete trials; the study has {len(trials)}")
    if not any(t.params for t in trials):
        raise KdtuneError("the study searches no parameters")
    out: dict[str, dict[str, float]] = {}
    for i, (name, direction) in enumerate(zip(cfg.objectives, cfg.directions, strict=True)):
        sign = -1.0 if direction == "maximize" else 1.0
        try:
            with warnings.catch_warnings():
                # "computes the importances of params to achieve low target values": handled
                # by the sign; ExperimentalWarning on Optuna 4.x
                warnings.simplefilter("ignore")
                imp = optuna.importance.get_param_importances(
                    study,
                    evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                    target=lambda t, i=i, sign=sign: sign * t.values[i],
                )
        except Exception as e:  # evaluator limits differ by version; report, do not crash
            raise KdtuneError(f"parameter importances for {name} failed: "
                              f"{type(e).__name__}: {e}".splitlines()[0]) from e
        out[name] = {k: float(v) for k, v in imp.items()}
    return out


# ---------------------------------------------------------------------------------------
# Charts (matplotlib objects only: no pyplot, no global backend change)


def _figure(width: float = 7.0, height: float = 5.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # the Agg canvas renders PNGs without a display
    fig.savefig(path, format="png")


def _axis_label(name: str, direction: str) -> str:
    return f"{name} ({'higher' if direction == 'maximize' else 'lower'} is better)"


def plot_pareto(study: optuna.Study, cfg: StudyConfig, path: Path) -> None:
    """All complete trials in grey, the Pareto front highlighted, kappa marked for sigma.

    Two or more objectives: the first two objectives as axes (the front is the one over all
    objectives). One objective: the objective against the trial number.
    """
    trials = complete_trials(study)
    front = front_trials(study, cfg)
    fig = _figure()
    ax = fig.add_subplot()
    if len(cfg.objectives) == 1:
        dims = [None, 0]
        ax.set_xlabel("trial")
    else:
        dims = [0, 1]
        ax.set_xlabel(_axis_label(cfg.objectives[0], cfg.directions[0]))

    def coords(ts: list[FrozenTrial]) -> tuple[list[float], list[float]]:
        xs = [t.number if dims[0] is None else t.values[dims[0]] for t in ts]
        return xs, [t.values[dims[1]] for t in ts]

    y_dim = dims[1]
    ax.set_ylabel(_axis_label(cfg.objectives[y_dim], cfg.directions[y_dim]))
    ax.scatter(*coords(trials), s=22, color="0.65", label=f"complete trials ({len(trials)})")
    fx, fy = coords(front)
    if len(cfg.objectives) >= 2 and len(front) > 1:
        order = sorted(range(len(front)), key=lambda k: fx[k])
        ax.plot([fx[k] for k in order], [fy[k] for k in order], color="tab:blue", lw=1,
                ls=":", alpha=0.7)
    ax.scatter(fx, fy, s=46, color="tab:blue", edgecolor="black", zorder=3,
               label=f"Pareto front ({len(front)})")
    if len(front) <= 20:
        for t, x, y in zip(front, fx, fy, strict=True):
            ax.annotate(f"#{t.number}", (x, y), textcoords="offset points", xytext=(4, 4),
                        fontsize=7)
    kappa = cfg.distill.eval.kappa
    for dim, line in ((dims[0], ax.axvline), (dims[1], ax.axhline)):
        if dim is not None and cfg.objectives[dim] == "sigma":
            line(kappa, color="tab:red", ls="--", lw=1,
                 label=f"kappa = {kappa:g} (phi_cnf holds at sigma <= kappa)")
    title = f"{study.study_name}: Pareto front"
    if len(cfg.objectives) > 2:
        title += f" over {len(cfg.objectives)} objectives (first two shown)"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_hypervolume(history: list[tuple[int, float]], ref: Sequence[float], cfg: StudyConfig,
                     path: Path, study_name: str = "") -> None:
    """The hypervolume after each complete trial, the reference point in the title."""
    fig = _figure(7.0, 4.0)
    ax = fig.add_subplot()
    ax.plot([n for n, _ in history], [h for _, h in history], marker="o", ms=3,
            drawstyle="steps-post", color="tab:green")
    ax.set_xlabel("trial")
    ax.set_ylabel("hypervolume")
    shown = ", ".join(f"{m}={r:g}" for m, r in zip(cfg.objectives, ref, strict=True))
    ax.set_title(f"{study_name}: hypervolume of the Pareto front\nreference point: {shown}",
                 fontsize=10)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_importances(importances: dict[str, dict[str, float]], path: Path) -> None:
    """One horizontal bar chart of parameter importances per objective."""
    n = len(importances)
    fig = _figure(4.5 * n, 0.4 * max(len(v) for v in importances.values()) + 1.6)
    for k, (metric, imp) in enumerate(importances.items()):
        ax = fig.add_subplot(1, n, k + 1)
        names = list(imp)[::-1]  # most important at the top
        ax.barh(names, [imp[p] for p in names], color="tab:purple")
        ax.set_xlim(0, 1)
        ax.set_title(f"importance for {metric}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


# ---------------------------------------------------------------------------------------
# The HTML report


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}
pre{background:#f7f7f7;padding:1em;overflow:auto}.note{color:#8a5a00}"""


def _html_table(rows: Sequence[dict[str, Any]]) -> str:
    cols = _columns(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(name: str, alt: str) -> str:
    return f'<p><a href="{name}"><img src="{name}" alt="{html.escape(alt)}"></a></p>'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _render(study: optuna.Study, cfg: StudyConfig, out: Path) -> dict[str, str]:
    """Write the charts and index.html into ``out``; return {key: file name}."""
    from kdtune.frozen import dump_yaml
    from kdtune.storage import mask_url

    from .service import budget_counts

    written: dict[str, str] = {}
    trials = complete_trials(study)
    rows = front_rows(study, cfg)  # raises when there are no complete trials
    counts = budget_counts(study.get_trials(deepcopy=False))

    plot_pareto(study, cfg, out / REPORT_FILES["pareto"])
    written["pareto"] = REPORT_FILES["pareto"]

    if len(cfg.objectives) >= 2:
        ref = reference_point(cfg, trials)
        history = hypervolume_history(study, cfg, ref)
        plot_hypervolume(history, ref, cfg, out / REPORT_FILES["hypervolume"],
                         study.study_name)
        written["hypervolume"] = REPORT_FILES["hypervolume"]
        shown = ", ".join(f"{m} = {r:g}" for m, r in zip(cfg.objectives, ref, strict=True))
        hv_html = (f"<p>Reference point: {html.escape(shown)} (see "
                   "<code>study.report.reference_point</code>). Final hypervolume: "
                   f"{history[-1][1]:.6g}.</p>" + _image(REPORT_FILES["hypervolume"],
                                                         "hypervolume history"))
    else:
        hv_html = _note("Hypervolume needs two or more objectives.")

    try:
        imps = param_importances(study, cfg)
    except KdtuneError as e:
        _log.info("no importances chart: %s", e)
        imp_html = _note(f"No importances chart: {e}.")
    else:
        plot_importances(imps, out / REPORT_FILES["importances"])
        written["importances"] = REPORT_FILES["importances"]
        table = [{"parameter": p, **{m: imps[m].get(p) for m in imps}}
                 for p in next(iter(imps.values()))]
        imp_html = (_image(REPORT_FILES["importances"], "parameter importances")
                    + _html_table(table))

    objectives = ", ".join(f"{m} ({d})" for m, d in zip(cfg.objectives, cfg.directions,
                                                         strict=True))
    state_line = ", ".join(f"{k} {counts[k]}" for k in
                           ("complete", "pruned", "failed", "running", "waiting"))
    name = html.escape(study.study_name)
    shown_cfg = cfg.model_copy(update={"storage": mask_url(cfg.storage)}) if cfg.storage else cfg
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kdtune report: {name}</title>
<style>{_CSS}</style></head><body>
<h1>kdtune report: {name}</h1>
<p>Objectives: {html.escape(objectives)}. Trials: {state_line} (budget {cfg.n_trials}).
kappa = {cfg.distill.eval.kappa:g}: phi_cnf holds when sigma &le; kappa.</p>
<h2>Pareto front ({len(rows)} trials)</h2>
{_html_table(rows)}
{_image(REPORT_FILES["pareto"], "Pareto front")}
<h2>Hypervolume history</h2>
{hv_html}
<h2>Parameter importances</h2>
{imp_html}
<h2>Study config</h2>
<pre>{html.escape(dump_yaml(shown_cfg))}</pre>
</body></html>
"""
    (out / REPORT_FILES["html"]).write_text(page, encoding="utf-8")
    written["html"] = REPORT_FILES["html"]
    return written


def write_study_report(study: optuna.Study, cfg: StudyConfig,
                       output_dir: str | Path) -> dict[str, Path]:
    """:func:`write_report` for an open study."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"--output {output_dir} exists and is not a directory")
    fresh = not output_dir.exists()
    staging_parent = output_dir.parent if fresh else output_dir
    staging_parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".kdtune-report-", dir=staging_parent))
    try:
        written = _render(study, cfg, tmp)
        if fresh:
            tmp.chmod(0o755)
            os.replace(tmp, output_dir)
        else:  # replace our files one by one (index.html last), leave other files alone
            for key, name in REPORT_FILES.items():
                if key in written:
                    os.replace(tmp / name, output_dir / name)
                elif (output_dir / name).is_file():  # stale chart from an earlier report
                    (output_dir / name).unlink()
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {key: output_dir / name for key, name in written.items()}


def write_report(study_name: str, storage: str | None, output_dir: str | Path) -> dict[str, Path]:
    """Write an HTML report with PNG charts on a study into ``output_dir``.

    Files: ``pareto.png`` (every complete trial in grey, the Pareto front highlighted, the
    kappa line where sigma is an axis), ``hypervolume.png`` (two or more objectives),
    ``importances.png`` (at least :data:`MIN_TRIALS_FOR_IMPORTANCE` complete trials; else
    the HTML says why it is missing) and ``index.html`` (the Pareto front table, the charts,
    the trial counts and the study config; no network needed).

    Everything is written to a temporary directory first: a new ``output_dir`` appears
    whole, and in an existing one each file is replaced atomically, ``index.html`` last.
    Other files in an existing ``output_dir`` are left alone.

    Returns:
        ``{"pareto": path, "hypervolume": path, "importances": path, "html": path}``,
        without the charts that were not written.

    Raises:
        StudyNotFound: no such study.
        KdtuneError: the study has no complete trials yet.
        ValueError: ``output_dir`` exists and is not a directory.
    """
    from .service import open_study

    study, cfg = open_study(study_name, storage)
    return write_study_report(study, cfg, output_dir)
