"""``kdtune report``: an HTML report with PNG charts on a study.

:func:`write_report` writes ``pareto.png``, ``hypervolume.png``, ``importances.png``,
``sigma_by_size.png`` and an ``index.html`` that shows them with the Pareto front, sigma by student
size, tuned students against the TinyBERT recipe, the front's test-split figures, the trial counts
and the study config. The trial ``kdtune export`` picks by default is marked in the front table and
chart (:func:`kdtune.study.export.trial.study_pick`); importances from few trials carry a warning.
Numbers: :mod:`kdtune.study.front`, :mod:`kdtune.study.report.tables`,
:mod:`kdtune.study.report.importance`; charts: :mod:`kdtune.study.report.charts`.

Why: docs/design.md, "Self-contained report of COMPLETE trials".
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from kdtune.attrs import PROTOCOL, PRUNE_REASON, rung_key
from kdtune.errors import KdtuneError, UsageError
from kdtune.fileio import atomic_directory, atomic_write_bytes
from kdtune.frozen import dump_yaml
from kdtune.objectives.measure.catalogue import meaning
from kdtune.storage import mask_url

from ..budget import budget_counts
from ..config import StudyConfig
from ..export.pick import study_pick
from ..front import complete_trials, hypervolume_history, reference_point
from ..service import open_study
from .charts import PICK_LABEL, plot_hypervolume, plot_importances, plot_pareto, plot_sigma_by_size
from .importance import importance_warning, param_importances
from .recipe import front_test_note, has_test_figures, recipe_section
from .size import sigma_metric, size_rows
from .tables import cell, columns, display_rows, front_rows

REPORT_FILES = {
    "pareto": "pareto.png",
    "hypervolume": "hypervolume.png",
    "importances": "importances.png",
    "size": "sigma_by_size.png",
    "html": "index.html",
}
"""The files :func:`write_report` may write, by the key it returns them under."""

_log = logging.getLogger(__name__)

_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}
pre{background:#f7f7f7;padding:1em;overflow:auto}.note{color:#8a5a00}
.warn{background:#fff3cd;border:1px solid #d9a400;padding:.5em 1em;color:#5c4300}
tr.pick td{background:#fff0d9;font-weight:bold}"""

PICK_MARK = "\u2605 knee"
"""The front table's ``export`` cell of the trial ``kdtune export`` picks by default."""


def _html_table(rows: Sequence[dict[str, Any]], mark: int | None = None) -> str:
    """A table of ``rows``; the row whose ``trial`` is ``mark`` highlighted (class ``pick``)."""
    rows = display_rows(rows)
    cols = columns(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        ('<tr class="pick">' if mark is not None and r.get("trial") == mark else "<tr>")
        + "".join(f"<td>{html.escape(cell(r.get(c)))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _export_pick(study: optuna.Study, cfg: StudyConfig) -> optuna.trial.FrozenTrial | None:
    """The trial ``kdtune export`` picks by default (``--pick knee``, by export's own code:
    :func:`~kdtune.study.export.trial.study_pick`), or ``None`` when it picks none."""
    try:
        return study_pick(study, cfg, "knee")
    except KdtuneError as e:
        _log.info("no export pick to mark: %s", e)
        return None


def _front_html(rows: list[dict[str, Any]], pick: optuna.trial.FrozenTrial | None) -> str:
    """The front table with an ``export`` column marking ``pick``, and a note saying why."""
    if pick is None or not any(r["trial"] == pick.number for r in rows):
        return _html_table(rows) + _note("No trial of the front is the one kdtune export "
                                         "would pick by default.")
    marked = [{"trial": r["trial"], "export": PICK_MARK if r["trial"] == pick.number else None,
               **r} for r in rows]
    means = " on the seed means of kdtune rescore," if any("seeds" in r for r in rows) else ""
    return (_html_table(marked, pick.number)
            + f"<p>{html.escape(PICK_MARK)} marks trial {pick.number}, "
            f"{html.escape(PICK_LABEL)}: the trial <code>kdtune export</code> writes by default "
            "(<code>--pick knee</code>: the front trial nearest the ideal point,"
            f"{html.escape(means)} each objective scaled to [0, 1] over the front); the star "
            "in the chart below.</p>")


def _warning(text: str) -> str:
    return f'<p class="warn">&#9888; {html.escape(text)}</p>'


def _image(name: str, alt: str) -> str:
    return f'<p><a href="{name}"><img src="{name}" alt="{html.escape(alt)}"></a></p>'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _intervals_note(trials: Sequence[optuna.trial.FrozenTrial]) -> str:
    resamples = sorted({t.user_attrs["n_resamples"] for t in trials
                        if t.user_attrs.get("n_resamples") is not None})
    if not resamples:
        return ""
    shown = ", ".join(f"{n:,}" for n in resamples)
    return ("<p>[low, high]: 95% paired bootstrap percentile intervals over the evaluation "
            f"split, {shown} resamples (teacher and student resampled together, the "
            "both-correct set recomputed in each resample).</p>")


def _halving_html(trials: Sequence[optuna.trial.FrozenTrial], cfg: StudyConfig) -> str:
    """Successive halving's ladder: per rung, the trials that recorded it and those stopped
    there (nothing when the study does not use it)."""
    halving = cfg.search.halving
    if halving is None:
        return ""
    rows = []
    for epochs in halving.rungs:
        reached = [t for t in trials if rung_key(epochs) in t.user_attrs]
        stopped = [t for t in reached if t.state == optuna.trial.TrialState.PRUNED
                   and f"after {epochs} epoch(s)" in t.user_attrs.get(PRUNE_REASON, "")]
        trivial = sum(1 for t in reached if t.user_attrs[rung_key(epochs)].get("trivial"))
        rows.append({"rung (epochs)": epochs, "trials recorded": len(reached),
                     "no better than the majority class": trivial,
                     "stopped here": len(stopped)})
    return (f"<h2>Successive halving (eta {halving.eta})</h2>" + _html_table(rows)
            + _note("A trial continues past a rung while it is among the best n // eta of "
                    "the n trials recorded there (trivial students last, then non-dominated "
                    "rank, then crowding distance); the per-trial values are the user "
                    "attributes rung_<epochs> in the dashboard."))


def _protocol_html(protocol: dict | None) -> str:
    """The four splits recorded at creation: rows, and the overlaps (all must be 0 but
    teacher train & transfer, which is 0 only with a transfer split)."""
    if not protocol:
        return _note("No split protocol recorded (a study created before kdtune recorded it).")
    if "error" in protocol:
        return _note(f"The split protocol could not be measured: {protocol['error']}")
    splits = protocol["splits"]
    teacher = splits["teacher_train"]
    rows = [{"split": "teacher train", "rows": teacher.get("rows"),
             "role": "the teacher's training data" if teacher.get("known")
             else f"unknown: {teacher.get('reason')}"},
            {"split": f"transfer ({protocol['students_split']})",
             "rows": splits["transfer"]["rows"], "role": "what the students learn on"},
            {"split": "selection (eval)", "rows": splits["selection"]["rows"],
             "role": "what the search optimises"},
            {"split": "test", "rows": splits["test"]["rows"],
             "role": "read only by kdtune test and kdtune distill"}]
    shared = ", ".join(f"{k.replace('&', ' & ').replace('_', ' ')}: {v}"
                       for k, v in protocol["overlaps"].items())
    return (_html_table(rows) + f"<p>Seed {protocol['seed']}. Rows shared: "
            f"{html.escape(shared)}.</p>")


def _render(study: optuna.Study, cfg: StudyConfig) -> dict[str, bytes]:
    """The charts and index.html as ``{key: file contents}`` (keys of :data:`REPORT_FILES`)."""
    written: dict[str, bytes] = {}
    trials = complete_trials(study)
    tested = has_test_figures(study)
    rows = front_rows(study, cfg, tested)  # raises when there are no complete trials
    counts = budget_counts(study.get_trials(deepcopy=False))

    pick = _export_pick(study, cfg)
    written["pareto"] = plot_pareto(study, cfg, pick)

    if len(cfg.objectives) >= 2:
        ref = reference_point(cfg, trials)
        history = hypervolume_history(study, cfg, ref)
        written["hypervolume"] = plot_hypervolume(history, ref, cfg, study.study_name)
        shown = ", ".join(f"{m} = {r:g}" for m, r in zip(cfg.objectives, ref, strict=True))
        hv_html = (f"<p>Reference point: {html.escape(shown)} (see "
                   "<code>kdtune.study.front.reference_point</code>). Final hypervolume: "
                   f"{history[-1][1]:.6g}. The y axis starts at 0, so a step's height is its "
                   "share of the whole hypervolume.</p>"
                   + _image(REPORT_FILES["hypervolume"], "hypervolume history"))
    else:
        hv_html = _note("Hypervolume needs two or more objectives.")

    try:
        imps = param_importances(study, cfg)
    except KdtuneError as e:
        _log.info("no importances chart: %s", e)
        imp_html = _note(f"No importances chart: {e}.")
    else:
        written["importances"] = plot_importances(imps)
        table = [{"parameter": p, **{m: imps[m].get(p) for m in imps}}
                 for p in next(iter(imps.values()))]
        warning = importance_warning(len(trials))
        imp_html = ((_warning(warning) if warning else "")
                    + _image(REPORT_FILES["importances"], "parameter importances")
                    + _html_table(table))

    size_chart = plot_sigma_by_size(trials, cfg, study.study_name)
    if size_chart is None:
        size_html = _note("No trial stored its parameter count.")
    else:
        written["size"] = size_chart
        size_html = (f"<p>{html.escape(sigma_metric(cfg))} by student size: per size, the "
                     "trial with the lowest value and its 95% paired bootstrap interval.</p>"
                     + _image(REPORT_FILES["size"], "sigma by student size")
                     + _html_table(size_rows(trials, cfg)))

    objectives = ", ".join(f"{m} ({d}: {meaning(m)})"
                           for m, d in zip(cfg.objectives, cfg.directions, strict=True))
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
{_front_html(rows, pick)}
{front_test_note(study, rows) if tested else ""}
{_image(REPORT_FILES["pareto"], "Pareto front")}
{_intervals_note(trials)}
{recipe_section(study, cfg, _html_table)}
{_halving_html(study.get_trials(deepcopy=False), cfg)}
<h2>Splits</h2>
{_protocol_html(study.user_attrs.get(PROTOCOL))}
<h2>Sigma by student size</h2>
{size_html}
<h2>Hypervolume history</h2>
{hv_html}
<h2>Parameter importances</h2>
{imp_html}
<h2>Study config</h2>
<pre>{html.escape(dump_yaml(shown_cfg))}</pre>
</body></html>
"""
    written["html"] = page.encode("utf-8")
    return written


def write_study_report(study: optuna.Study, cfg: StudyConfig,
                       output_dir: str | Path) -> dict[str, Path]:
    """:func:`write_report` for an open study."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"--output {output_dir} exists and is not a directory")
    files = _render(study, cfg)
    if not output_dir.exists() or not any(output_dir.iterdir()):
        with atomic_directory(output_dir, overwrite=True) as tmp:
            tmp.chmod(0o755)  # a report is for reading: not the temporary directory's 0700
            for key, data in files.items():
                (tmp / REPORT_FILES[key]).write_bytes(data)
    else:  # replace our files one by one (index.html last), leave other files alone
        for key, name in REPORT_FILES.items():
            if key in files:
                atomic_write_bytes(output_dir / name, files[key])
            elif (output_dir / name).is_file():  # stale chart from an earlier report
                (output_dir / name).unlink()
    return {key: output_dir / REPORT_FILES[key] for key in files}


def write_report(study_name: str, storage: str | None, output_dir: str | Path) -> dict[str, Path]:
    """Write an HTML report with PNG charts on a study into ``output_dir``.

    Files: ``pareto.png`` (every complete trial in grey, the Pareto front highlighted, the
    kappa line where sigma is an axis, the trial ``kdtune export`` picks by default as a
    star), ``sigma_by_size.png`` (sigma with its intervals against student parameters, when
    trials stored them), ``hypervolume.png`` (two or more objectives; the y axis from 0),
    ``importances.png`` (at least
    :data:`~kdtune.study.report.importance.MIN_TRIALS_FOR_IMPORTANCE` complete trials; else the
    HTML says why it is missing; under
    :data:`~kdtune.study.report.importance.FEW_TRIALS_FOR_IMPORTANCE` the HTML warns that the
    ranking is unreliable) and ``index.html`` (the Pareto front table with export's pick
    marked, the charts, the trial counts and the study config; no network needed).

    Everything is rendered first: a new (or empty) ``output_dir`` appears whole
    (:func:`kdtune.fileio.atomic_directory`), and in an existing one each file is replaced
    atomically, ``index.html`` last. Other files in an existing ``output_dir`` are left alone.

    Returns:
        ``{"pareto": path, "hypervolume": path, "importances": path, "size": path,
        "html": path}``,
        without the charts that were not written.

    Raises:
        StudyNotFound: no such study.
        KdtuneError: the study has no complete trials yet.
        UsageError: ``output_dir`` exists and is not a directory.
    """
    study, cfg = open_study(study_name, storage)
    return write_study_report(study, cfg, output_dir)


__all__ = ["REPORT_FILES", "write_report", "write_study_report"]
