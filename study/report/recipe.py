"""The report's held-out sections: the front's test-split columns, and tuned students against
the TinyBERT recipe at the same size (the paper's second finding, on one study).

Both read what ``kdtune test`` stored (:mod:`kdtune.study.verdict`); without it they say how
to get it. A tuned student of a size is the best front trial of that size by the study's
first objective; its selection figures are the trial's own (what the search saw), its test
figures those of its retrained configuration. The recipe's figures come from the TinyBERT
recipe trained at that size (:func:`kdtune.objectives.search.recipes.tinybert_recipe`) and
measured on both splits the same way.
"""

from __future__ import annotations

import html
from typing import Any

import optuna

from kdtune.objectives.measure.bootstrap import interval_key
from kdtune.objectives.search.recipes import config_hash

from ..config import StudyConfig
from ..front import front_trials
from ..verdict import baseline_config, fresh_verdict, stored_baselines, stored_verdicts
from .size import sigma_metric

RECIPE_TITLE = "Tuned students against the TinyBERT recipe at the same size"


def _figures(prefix: str, figures: dict | None, metric: str, split: str) -> dict[str, Any]:
    """``<prefix>_accuracy[_test]`` and ``<prefix>_<metric>[_test]``, each with its ``_ci``."""
    figures = figures or {}
    suffix = "_test" if split == "test" else ""
    out: dict[str, Any] = {}
    for name, source in (("accuracy", "accuracy_student"), (metric, metric)):
        key = f"{prefix}_{name}{suffix}"
        out[key] = figures.get(source)
        if figures.get(interval_key(source)) is not None:
            out[interval_key(key)] = list(figures[interval_key(source)])
    return out


def recipe_rows(study: optuna.Study, cfg: StudyConfig) -> list[dict[str, Any]]:
    """One row per student size on the front, smallest first (by parameter count).

    Keys: ``size`` (``<layers> x <width>``), ``params``, ``tuned_trial``; the tuned trial's
    selection figures ``tuned_accuracy`` and ``tuned_<sigma>`` and its test figures
    ``tuned_accuracy_test`` and ``tuned_<sigma>_test``; the recipe's ``tinybert_accuracy``,
    ``tinybert_<sigma>``, ``tinybert_accuracy_test``, ``tinybert_<sigma>_test``; each with
    its ``_ci`` where stored (``None`` values where nothing is stored yet). ``<sigma>`` is
    the study's sigma objective.
    """
    metric = sigma_metric(cfg)
    verdicts, baselines = stored_verdicts(study), stored_baselines(study)
    rows: dict[str, dict[str, Any]] = {}
    for trial in front_trials(study, cfg):  # best first by the first objective
        size, recipe = baseline_config(trial)
        if size in rows:
            continue
        baseline = baselines.get(size) or {}
        if baseline.get("config_hash") != config_hash(recipe):
            baseline = {}  # none stored, or for another configuration: shown as missing
        verdict = fresh_verdict(trial, verdicts) or {}
        rows[size] = {
            "size": f"{recipe.student_layers} x {recipe.hidden_size or 'teacher width'}",
            "params": trial.user_attrs.get("params"), "tuned_trial": trial.number,
            **_figures("tuned", trial.user_attrs, metric, "selection"),
            **_figures("tuned", verdict.get("test"), metric, "test"),
            **_figures("tinybert", baseline.get("selection"), metric, "selection"),
            **_figures("tinybert", baseline.get("test"), metric, "test"),
        }
    return sorted(rows.values(), key=lambda r: (r["params"] is None, r["params"] or 0))


def has_test_figures(study: optuna.Study) -> bool:
    """Whether ``kdtune test`` stored anything for the study."""
    return bool(stored_verdicts(study) or stored_baselines(study))


def recipe_section(study: optuna.Study, cfg: StudyConfig,
                   table: Any) -> str:
    """The HTML section (heading included); ``table`` renders rows as an HTML table."""
    head = f"<h2>{html.escape(RECIPE_TITLE)}</h2>\n"
    if not has_test_figures(study):
        return head + _note("No test-split figures yet: run kdtune test --study "
                            f"{study.study_name} "
                            "(retrains each front trial and the TinyBERT recipe at each "
                            "front size; the search never reads the test split).")
    rows = recipe_rows(study, cfg)
    first = cfg.objectives[0]
    text = (f"<p>Per student size on the front: the tuned student (the best front trial of "
            f"that size by {html.escape(first)}) and TinyBERT's task distillation at the same "
            "size (two-stage: intermediate losses [hidden, embedding, attention] with beta 1 "
            "first, then the soft prediction loss alone, alpha 1, temperature 1; uniform "
            "layer mapping; learning rate, epochs, initialisation and data as the tuned "
            "student's). Columns without _test are on the selection split the search "
            "optimised; _test columns on the test split, after retraining. [low, high]: 95% "
            "paired bootstrap percentile intervals.</p>")
    missing = [r["size"] for r in rows if r.get("tinybert_accuracy") is None]
    note = _note(f"No TinyBERT figures yet for {', '.join(missing)}: run kdtune test "
                 f"--study {study.study_name}.") if missing else ""
    return head + text + table(rows) + note


def front_test_note(study: optuna.Study, rows: list[dict[str, Any]]) -> str:
    """A note on the front's test columns: trials without figures and ones not reproduced."""
    parts = []
    untested = [str(r["trial"]) for r in rows if r.get("reproduced") is None]
    if untested:
        parts.append(f"trials {', '.join(untested)} have no test figures yet (run kdtune "
                     f"test {study.study_name})")
    differ = [str(r["trial"]) for r in rows if r.get("reproduced") is False]
    if differ:
        parts.append(f"retraining trials {', '.join(differ)} did not reproduce their "
                     "selection figures (see kdtune test)")
    head = ("<p>_test columns: the trial's configuration retrained after the search and "
            "measured on the test split, which no trial reads (intervals over the test "
            "split); reproduced: whether the retrained student gave the trial's selection "
            "figures again.</p>")
    return head + ("".join(_note(p[0].upper() + p[1:] + ".") for p in parts))


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


__all__ = ["RECIPE_TITLE", "front_test_note", "has_test_figures", "recipe_rows",
           "recipe_section"]
