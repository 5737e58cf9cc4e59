"""Export a chosen trial as a complete distillation config, and run it for production.

``kdtune export --pick P`` writes YAML with two sections: ``distill`` (the trial's complete
:class:`~objectives.config.DistillConfig`) and ``source`` (study, trial number, the pick
rule, the metrics the trial reached, the kdtune version). ``kdtune distill`` accepts that
file, or a bare DistillConfig, and saves the student with ``save_pretrained``.

Pick rules (over COMPLETE trials):

* ``knee``: the Pareto-optimal trial closest to the ideal point after scaling each
  objective to [0, 1] over the front (the usual "knee" of a 2-D front);
* ``max-accuracy``: the highest ``accuracy_student``;
* ``min-sigma``: the lowest ``sigma``;
* ``feasible``: the most accurate trial whose sigma is at most the study's kappa (phi_cnf
  holds);
* ``trial:N``: trial number N.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import yaml
from optuna.trial import FrozenTrial, TrialState
from pydantic import BaseModel, ConfigDict

from kdtune.errors import KdtuneError
from kdtune.objectives.config import DistillConfig

from .config import validate_with_overrides
from .report import pareto_front
from .service import open_study

PICKS = ("knee", "max-accuracy", "min-sigma", "feasible", "trial:N")


class ExportSource(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    study: str
    trial: int
    pick: str
    kdtune_version: str
    metrics: dict


class ExportedConfig(BaseModel):
    """What ``kdtune export`` writes: the config to run and where it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    distill: DistillConfig
    source: ExportSource | None = None


def _metric(t: FrozenTrial, name: str) -> float:
    v = t.user_attrs.get(name)
    return float(v) if v is not None and math.isfinite(float(v)) else float("nan")


def pick_trial(trials: list[FrozenTrial], best: list[FrozenTrial], directions: list[str],
               pick: str, kappa: float) -> FrozenTrial:
    """Choose one COMPLETE trial by ``pick`` (see the module docstring)."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if pick.startswith("trial:"):
        try:
            number = int(pick.split(":", 1)[1])
        except ValueError as e:
            raise ValueError(f"--pick {pick!r}: N in trial:N must be an integer") from e
        found = [t for t in trials if t.number == number]
        if not found:
            raise KdtuneError(f"the study has no trial {number}")
        if found[0].state != TrialState.COMPLETE:
            raise KdtuneError(f"trial {number} is {found[0].state.name}, not COMPLETE")
        return found[0]
    if pick not in PICKS:
        raise ValueError(f"--pick {pick!r} is not one of {', '.join(PICKS)}")
    if not complete:
        raise KdtuneError("the study has no complete trials yet")
    if pick == "max-accuracy":
        return max(complete, key=lambda t: (_metric(t, "accuracy_student"), -t.number))
    if pick == "min-sigma":
        ok = [t for t in complete if not math.isnan(_metric(t, "sigma"))]
        if not ok:
            raise KdtuneError("no complete trial has a finite sigma")
        return min(ok, key=lambda t: (_metric(t, "sigma"), t.number))
    if pick == "feasible":
        ok = [t for t in complete if _metric(t, "sigma") <= kappa]
        if not ok:
            lowest = min((_metric(t, "sigma") for t in complete), default=float("nan"))
            raise KdtuneError(f"no trial reaches sigma <= kappa={kappa:g} "
                              f"(lowest sigma: {lowest:.4f}); try --pick min-sigma")
        return max(ok, key=lambda t: (_metric(t, "accuracy_student"), -t.number))
    return knee(best, directions)


def knee(front: list[FrozenTrial], directions: list[str]) -> FrozenTrial:
    """The front's trial nearest the ideal point, each objective scaled to [0, 1] (0 best)."""
    if len(front) == 1:
        return front[0]
    values = np.array([t.values for t in front], dtype=float)
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    v = values * signs  # all objectives minimised
    lo, hi = v.min(axis=0), v.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    dist = np.linalg.norm((v - lo) / span, axis=1)
    return front[int(np.argmin(dist))]


def export_trial(study_name: str, storage: str | None, pick: str, output: Path) -> dict:
    """Write the picked trial's complete DistillConfig and its provenance to ``output``."""
    from kdtune import __version__

    study, cfg = open_study(study_name, storage)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = pareto_front(study) if complete else []  # repeats listed once
    trial = pick_trial(trials, best, cfg.directions, pick, cfg.distill.eval.kappa)
    raw = trial.user_attrs.get("config")
    if raw is None:
        raise KdtuneError(f"trial {trial.number} has no stored config (not a kdtune trial)")
    distill_cfg = DistillConfig.model_validate(raw)
    metric_keys = ("accuracy_student", "accuracy_teacher", "sigma", "phi_cnf", "kappa",
                   "sigma_label", "agreement", "f1_student", "mcc_student", "ece_gap",
                   "params", "latency_ms")
    metrics = {k: trial.user_attrs[k] for k in metric_keys if k in trial.user_attrs}
    exported = ExportedConfig(
        distill=distill_cfg,
        source=ExportSource(study=study_name, trial=trial.number, pick=pick,
                            kdtune_version=__version__, metrics=metrics),
    )
    header = (f"# kdtune {__version__}: trial {trial.number} of study {study_name!r} "
              f"(pick: {pick}).\n# Run it with: kdtune distill {output.name} -o student/\n")
    body = yaml.safe_dump(json.loads(exported.model_dump_json()), sort_keys=False)
    _atomic_write(output, header + body)
    return {"study": study_name, "trial": trial.number, "pick": pick, "output": str(output),
            "metrics": metrics}


def _atomic_write(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def read_distill_config(path: Path, overrides: list[str] | tuple[str, ...] = ()) -> DistillConfig:
    """Read an export file (``distill:`` + ``source:``) or a bare DistillConfig YAML."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    if isinstance(raw, dict) and "distill" in raw:
        prefixed = [f"distill.{o}" for o in overrides]
        return validate_with_overrides(raw, prefixed, ExportedConfig).distill
    return validate_with_overrides(raw, overrides, DistillConfig)


def distill_from_file(config: Path, output: Path, overrides: list[str] | tuple[str, ...] = (),
                      progress: bool = True, full_data: bool = True) -> dict:
    """Production distillation: run the config and save the student to ``output``.

    With ``full_data`` (the default) the training-set size limit a study used for speed is
    lifted (``data.train_size = null``: the whole training split). The student is saved
    with ``save_pretrained`` (model, tokenizer, label names) plus ``kdtune_distill.json``
    (metrics, config) and a model card ``README.md``. Written to a temporary directory and
    moved into place, so a failed run leaves nothing half-written.
    """
    from kdtune.objectives.distill import distill

    cfg = read_distill_config(config, overrides)
    if full_data and cfg.data.train_size is not None:
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"train_size": None})})
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise FileExistsError(f"output directory {output} exists and is not empty")
    result = distill(cfg, progress=progress)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        result.student.save_pretrained(tmp, result.tokenizer)
        info = {"metrics": result.metrics, "timings": result.timings,
                "config": json.loads(cfg.model_dump_json())}
        (tmp / "kdtune_distill.json").write_text(json.dumps(info, indent=2, default=str))
        (tmp / "README.md").write_text(model_card(cfg, result.metrics))
        if output.exists():
            output.rmdir()
        tmp.rename(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**result.metrics, "output": str(output)}


def model_card(cfg: DistillConfig, m: dict) -> str:
    """A short model card: what was distilled, accuracy, sigma and the phi_cnf verdict."""
    verdict = "holds" if m.get("phi_cnf") else "does not hold"
    return f"""---
library_name: transformers
pipeline_tag: text-classification
tags: [kdtune, knowledge-distillation]
---
# Distilled student ({cfg.student_layers} layers)

Distilled with kdtune from teacher `{cfg.teacher}` on `{cfg.data.source}`.

| metric (evaluation split) | value |
|---|---|
| student accuracy | {m.get('accuracy_student', float('nan')):.4f} |
| teacher accuracy | {m.get('accuracy_teacher', float('nan')):.4f} |
| sigma (class {cfg.eval.reference_class}) | {m.get('sigma', float('nan')):.4f} |
| phi_cnf (sigma <= kappa = {cfg.eval.kappa:g}) | {verdict} |
| inputs used for sigma | {m.get('n_both_correct', '?')} |
| parameters | {m.get('params', '?')} |

sigma is the population standard deviation, over the inputs both teacher and student
classify correctly, of p_T(c|x) - p_S(c|x) (Vengertsev and Sherman, 2024).

Hyperparameters: temperature {cfg.temperature:g}, alpha {cfg.alpha:g} (weight of the
distillation term), beta {cfg.beta:g}, layer mapping {cfg.layer_mapping}, schedule
{cfg.schedule}, learning rate {cfg.learning_rate:g}, {cfg.epochs} epochs.
"""
