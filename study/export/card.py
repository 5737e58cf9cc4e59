"""The model card ``kdtune distill`` writes, with its production-check section.

When the export carries the study's test verdict of its trial (``source.test_verdict``,
stored by ``kdtune test``), the section shows those test figures too, beside the trial's
selection figures and the production student's.

The check itself (:func:`kdtune.objectives.distillation.heldout.production_check`)
is a dict written to
``production_check.json`` beside the student; this module only formats it. Intervals are
shown as ``value [low, high]``: 95% paired bootstrap percentile intervals.
"""

from __future__ import annotations

import math
from typing import Any

from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.measure.catalogue import meaning

__all__ = ["card_data", "card_section", "model_card"]

_CARD_METRICS = ("accuracy_student", "accuracy_teacher", "sigma", "phi_cnf", "n_both_correct",
                 "params")
"""The metrics a model card shows, described by the catalogue's meanings."""


def model_card(cfg: DistillConfig, m: dict, check: dict | None = None) -> str:
    """A short model card: what was distilled, accuracy, sigma and the phi_cnf verdict, and
    the production check on the test split when ``check`` is given
    (:func:`card_section`)."""
    labels = {"sigma": f"sigma (class {cfg.eval.reference_class})",
              "phi_cnf": f"phi_cnf (kappa = {cfg.eval.kappa:g})"}
    rows = [f"| {labels.get(name, name)}: {meaning(name)} | {_shown(name, m.get(name))} |"
            for name in _CARD_METRICS]
    table = "\n".join(rows)
    return f"""---
{card_data(cfg, m, check).to_yaml()}
---
# Distilled student ({cfg.student_layers} layers)

Distilled with kdtune from teacher `{cfg.teacher}` on `{cfg.data.source}`.

| metric (evaluation split) | value |
|---|---|
{table}

sigma is the population standard deviation, over the inputs both teacher and student
classify correctly, of p_T(c|x) - p_S(c|x) (Vengertsev and Sherman, 2024).

Hyperparameters: temperature {cfg.temperature:g}, alpha {cfg.alpha:g} (weight of the
distillation term), beta {cfg.beta:g}, layer mapping {cfg.layer_mapping}, schedule
{cfg.schedule}, learning rate {cfg.learning_rate:g}, {cfg.epochs} epochs.

{student_lines(cfg, m)}
""" + ("" if check is None else "\n" + card_section(check, cfg.eval.reference_class))


def student_lines(cfg: DistillConfig, m: dict) -> str:
    """What the student is and learnt on: its size on both axes (parameters with the kept
    vocabulary, latency, each against the teacher's), the students' data, the vocabulary
    and the alignment temperature folded into its classifier."""
    def ratio(name: str) -> str:
        value = m.get(name)
        return f"{value:.3f} x the teacher's" if isinstance(value, float) and \
            math.isfinite(value) else "not measured"

    data = ("every labelled row outside the selection and test splits"
            if cfg.data.students == "all" else "the transfer split alone")
    extra = cfg.data.transfer
    if extra.text or extra.augment:
        data += " plus unlabelled / augmented text (soft targets only)"
    vocab = (f"task vocabulary of {m.get('vocabulary_size')} wordpieces"
             if cfg.vocabulary == "task" else "the teacher's full vocabulary")
    align = (f"temperature {m['align_temperature']:.3g} folded into the classifier "
             f"(fitted by {cfg.align_fit} on {cfg.align_on})"
             if m.get("align_temperature") is not None else "none")
    ffn = f" (feed-forward {cfg.ffn_size})" if cfg.ffn_size is not None else ""
    return (f"Student: {cfg.student_layers} layers x {m.get('student_hidden_size')} wide{ffn}, "
            f"{vocab}; parameters {ratio('params_ratio')}, latency {ratio('latency_ratio')}. "
            f"Learnt on {data}. Confidence alignment: {align}.")


def card_data(cfg: DistillConfig, m: dict, check: dict | None = None) -> Any:
    """The card's YAML metadata as huggingface_hub's ``ModelCardData``: a model-index the Hub
    renders, with accuracy and sigma on the evaluation split and, with ``check``, on the
    test split (each interval in the metric's name and in ``metric_args``), and the phi_cnf
    verdicts under ``kdtune``. ``ModelCard.load`` reads it back."""
    from huggingface_hub import EvalResult, ModelCardData

    source = str(cfg.data.source)
    sigma = f"sigma (confidence preservation, class {cfg.eval.reference_class})"

    def result(split: str, metric: str, name: str, figures: dict) -> EvalResult | None:
        value = figures.get(metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        ci = figures.get(f"{metric}_ci")
        args = None
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
            name += f", 95% interval [{ci[0]:.4f}, {ci[1]:.4f}]"
            args = {"ci95": [float(ci[0]), float(ci[1])]}
        return EvalResult(task_type="text-classification", dataset_type=source,
                          dataset_name=source, dataset_split=split, metric_type=metric,
                          metric_name=f"{name} ({split} split)", metric_value=float(value),
                          metric_args=args)

    splits = [("eval", m)] + ([] if check is None else [("test", check["test"])])
    results = [r for split, figures in splits for r in (
        result(split, "accuracy_student", "accuracy", figures),
        result(split, "sigma", sigma, figures)) if r is not None]
    verdicts = {"kappa": cfg.eval.kappa, "phi_cnf_eval": bool(m.get("phi_cnf"))}
    if check is not None:
        verdicts.update(phi_cnf_test=bool(check["phi_cnf_test"]),
                        phi_cnf_test_upper=bool(check["phi_cnf_test_upper"]))
    return ModelCardData(library_name="transformers", pipeline_tag="text-classification",
                         tags=["kdtune", "knowledge-distillation"],
                         model_name=f"kdtune student ({cfg.student_layers} layers)",
                         eval_results=results or None, kdtune=verdicts)


def _shown(name: str, value) -> str:
    if name == "phi_cnf":
        return "holds" if value else "does not hold"
    if isinstance(value, float):
        return f"{value:.4f}"
    return "?" if value is None else str(value)


_ROWS = ("accuracy_student", "sigma", "sigma_max", "accuracy_teacher", "n_both_correct",
         "n_all", "phi_cnf")
"""The metrics the card's production table compares, in order."""


def card_section(check: dict[str, Any], reference_class: int = 0) -> str:
    """The model card's "Production check" section (Markdown) for ``check``."""
    trial, test, source = check.get("trial"), check["test"], check.get("source") or {}
    kappa = check["kappa"]
    if trial is not None:
        what = f"trial {source.get('trial')} of study {source.get('study')!r}"
        pick = source.get("pick")
        if pick:
            what += f", pick {pick}" + (f", {source['rule']} rule" if source.get("rule") else "")
        trial_head = f"{what} (selection split, {check.get('selection_split', 'eval')})"
    else:
        trial_head = "trial (none: a hand-written config)"
    labels = {"sigma": f"sigma (class {reference_class})",
              "phi_cnf": f"phi_cnf (kappa = {kappa:g})"}
    tested = source.get("test_verdict") or {}
    retrained = tested.get("test")
    rows = []
    for name in _ROWS:
        if all(name not in f for f in (test, trial or {}, retrained or {})):
            continue
        left = "-" if trial is None else _cell(name, trial)
        middle = "" if retrained is None else f" {_cell(name, retrained)} |"
        rows.append(f"| {labels.get(name, name)}: {meaning(name)} | {left} |{middle} "
                    f"{_cell(name, test)} |")
    middle_head = "" if retrained is None else (
        f" the trial retrained after the search, test split (n = {retrained.get('n_all')}) |")
    sigma, upper = test.get("sigma"), check.get("sigma_test_upper")
    by_sigma = _against(sigma, kappa, check["phi_cnf_test"])
    by_upper = _against(upper, kappa, check["phi_cnf_test_upper"])
    n_resamples = test.get("n_resamples")
    return f"""## Production check (test split, never read by the search)

| metric | {trial_head} |{middle_head} this student, test split (n = {test.get("n_all")}) |
|---|---|---|{"" if retrained is None else "---|"}
{chr(10).join(rows)}
{_retrained_note(tested)}
phi_cnf on the test split:

- by sigma: {by_sigma};
- by the upper end of sigma's interval: {by_upper}.

Intervals in brackets are 95% paired bootstrap percentile intervals ({n_resamples}
resamples, seed {test.get("seed")}): teacher and student are resampled together and the
inputs both classify correctly are recomputed in each resample. Test inputs are tokenised
as in the study (max length {test.get("max_length")}).
"""


def _retrained_note(tested: dict[str, Any]) -> str:
    """A paragraph on the study's test verdict of the trial ("" without one)."""
    if not tested:
        return ""
    deltas = ", ".join(f"|difference in {k}| {v:.2g}"
                       for k, v in (tested.get("selection_delta") or {}).items())
    state = "reproduced" if tested.get("reproduced") else "did NOT reproduce"
    return (f"\n`kdtune test` retrained the trial's configuration after the search (kdtune "
            f"{tested.get('kdtune_version')}): on the selection split the retrained student "
            f"{state} the trial's figures ({deltas}).\n")


def _against(value: Any, kappa: float, holds: bool) -> str:
    """``holds (0.0312 <= kappa 0.05)`` and the like."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "cannot be judged (undefined: fewer than 2 inputs both models get right)"
    relation = "<=" if value <= kappa else ">"
    return f"{'holds' if holds else 'does not hold'} ({value:.4f} {relation} kappa {kappa:g})"


def _cell(name: str, figures: dict[str, Any]) -> str:
    value = figures.get(name)
    if value is None:
        return "n/a"
    if name == "phi_cnf":
        return "holds" if value else "does not hold"
    if isinstance(value, float):
        text = "nan" if math.isnan(value) else f"{value:.4f}"
    else:
        text = str(value)
    ci = figures.get(f"{name}_ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(
            isinstance(c, (int, float)) and math.isfinite(c) for c in ci):
        text += f" [{ci[0]:.4f}, {ci[1]:.4f}]"
    return text
