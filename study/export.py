"""Export a chosen trial as a complete distillation config, and run it for production.

``kdtune export --pick P`` writes YAML with two sections: ``distill`` (the trial's complete
:class:`~kdtune.objectives.config.DistillConfig`) and ``source`` (study, trial number, the
pick rule, the metrics of the catalogue the trial reached, the kdtune version), under a
checksum line (:mod:`kdtune.study.export_file`). ``kdtune distill`` accepts that file, or a
bare DistillConfig, refuses an export whose checksum no longer matches (cut short or
edited), validates it completely (keys, teacher, data, cross-field rules, a free output
directory) before anything is written, and saves the student with ``save_pretrained``.

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
from pathlib import Path

import numpy as np
import yaml
from optuna.trial import FrozenTrial, TrialState
from pydantic import BaseModel, ConfigDict

from kdtune import frozen
from kdtune.attrs import TRIAL_CONFIG
from kdtune.errors import ConfigError, KdtuneError, UsageError
from kdtune.fileio import atomic_directory, atomic_write_text
from kdtune.objectives.catalogue import METRICS, meaning
from kdtune.objectives.checks import check_distill
from kdtune.objectives.config import DistillConfig

from .config import output_problems
from .export_file import check_writable, verify_export, with_checksum
from .front import pareto_front
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
            raise UsageError(f"--pick {pick!r}: N in trial:N must be an integer") from e
        found = [t for t in trials if t.number == number]
        if not found:
            raise UsageError(f"--pick {pick!r}: the study has no trial {number}")
        if found[0].state != TrialState.COMPLETE:
            raise UsageError(f"--pick {pick!r}: trial {number} is {found[0].state.name}, "
                             "not COMPLETE")
        return found[0]
    if pick not in PICKS:
        raise UsageError(f"--pick {pick!r} is not one of {', '.join(PICKS)}")
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
    """Write the picked trial's complete DistillConfig and its provenance to ``output``.

    The file appears whole or not at all, under a checksum line.

    Raises:
        UsageError: ``output`` cannot be written (checked before the study is opened), or
            ``pick`` is not a pick rule.
        KdtuneError: no trial fits the pick.
    """
    from kdtune import __version__

    output = Path(output)
    check_writable(output)
    study, cfg = open_study(study_name, storage)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = pareto_front(study) if complete else []  # repeats listed once
    trial = pick_trial(trials, best, cfg.directions, pick, cfg.distill.eval.kappa)
    raw = trial.user_attrs.get(TRIAL_CONFIG)
    if raw is None:
        raise KdtuneError(f"trial {trial.number} has no stored config (not a kdtune trial)")
    distill_cfg = DistillConfig.model_validate(raw)
    metrics = {k: trial.user_attrs[k] for k in METRICS if k in trial.user_attrs}
    exported = ExportedConfig(
        distill=distill_cfg,
        source=ExportSource(study=study_name, trial=trial.number, pick=pick,
                            kdtune_version=__version__, metrics=metrics),
    )
    header = (f"# kdtune {__version__}: trial {trial.number} of study {study_name!r} "
              f"(pick: {pick}).\n# Run it with: kdtune distill {output.name} -o student/\n")
    body = yaml.safe_dump(json.loads(exported.model_dump_json()), sort_keys=False)
    try:
        atomic_write_text(output, with_checksum(header + body))
    except OSError as e:
        raise UsageError(f"-o {output}: cannot write it ({e.strerror or e})") from e
    return {"study": study_name, "trial": trial.number, "pick": pick, "output": str(output),
            "metrics": metrics}


def read_distill_config(
    path: Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    full_data: bool = False,
    check: bool = False,
) -> DistillConfig:
    """Read an export file (``distill:`` + ``source:``) or a bare DistillConfig YAML.

    An export's checksum line must match the file
    (:func:`~kdtune.study.export_file.verify_export`); a file without one is taken as
    written (a hand-written config).
    With ``full_data`` the training-set size limit is lifted (``data.train_size: null``).
    With ``check`` the config is validated completely
    (:func:`~kdtune.objectives.checks.check_distill`, on the config as it will run): every
    problem in one :class:`~kdtune.errors.ConfigError`, keys named as in the file.
    """
    raw = _read_config(Path(path))
    exported = isinstance(raw, dict) and "distill" in raw

    def problems(cfg: ExportedConfig | DistillConfig) -> list[str]:
        run = _as_run(cfg.distill if exported else cfg, full_data)
        return check_distill(run, "distill" if exported else "")

    if exported:
        prefixed = [f"distill.{o}" for o in overrides]
        cfg = frozen.validate_with_overrides(raw, prefixed, ExportedConfig,
                                             problems if check else None).distill
    else:
        cfg = frozen.validate_with_overrides(raw, overrides, DistillConfig,
                                             problems if check else None)
    return _as_run(cfg, full_data)


def _read_config(path: Path) -> dict:
    """The plain data of a distill config file, its checksum verified first if it has one."""
    text = frozen.read_text(path)
    verify_export(text, str(path))
    return frozen.parse_yaml(text, str(path))


def _as_run(cfg: DistillConfig, full_data: bool) -> DistillConfig:
    if not full_data or cfg.data.train_size is None:
        return cfg
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"train_size": None})})


def distill_from_file(config: Path, output: Path, overrides: list[str] | tuple[str, ...] = (),
                      progress: bool = True, full_data: bool = True) -> dict:
    """Production distillation: run the config and save the student to ``output``.

    With ``full_data`` (the default) the training-set size limit a study used for speed is
    lifted (``data.train_size = null``: the whole training split). The student is saved
    with ``save_pretrained`` (model, tokenizer, label names) plus ``kdtune_distill.json``
    (metrics, config) and a model card ``README.md``, written with
    :func:`~kdtune.fileio.atomic_directory`: a failed run leaves nothing half-written.

    Raises:
        ConfigError: every problem of the config and of ``output`` (not free), found before
            anything is created.
        UsageError: ``output`` cannot be created (read-only or missing permission), found
            before anything is trained.
    """
    from kdtune.objectives.distill import distill

    output = Path(output)
    busy = output_problems(output)
    try:
        cfg = read_distill_config(config, overrides, full_data=full_data, check=True)
    except ConfigError as e:
        raise ConfigError(busy + e.problems) from e
    if busy:
        raise ConfigError(busy)
    check_writable(output, directory=True)
    result = distill(cfg, progress=progress)
    with atomic_directory(output) as tmp:
        result.student.save_pretrained(tmp, result.tokenizer)
        info = {"metrics": result.metrics, "timings": result.timings,
                "config": json.loads(cfg.model_dump_json())}
        (tmp / "kdtune_distill.json").write_text(json.dumps(info, indent=2, default=str))
        (tmp / "README.md").write_text(model_card(cfg, result.metrics))
    return {**result.metrics, "output": str(output)}


_CARD_METRICS = ("accuracy_student", "accuracy_teacher", "sigma", "phi_cnf", "n_both_correct",
                 "params")
"""The metrics a model card shows, described by the catalogue's meanings."""


def model_card(cfg: DistillConfig, m: dict) -> str:
    """A short model card: what was distilled, accuracy, sigma and the phi_cnf verdict."""
    labels = {"sigma": f"sigma (class {cfg.eval.reference_class})",
              "phi_cnf": f"phi_cnf (kappa = {cfg.eval.kappa:g})"}
    rows = [f"| {labels.get(name, name)}: {meaning(name)} | {_shown(name, m.get(name))} |"
            for name in _CARD_METRICS]
    table = "\n".join(rows)
    return f"""---
library_name: transformers
pipeline_tag: text-classification
tags: [kdtune, knowledge-distillation]
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
"""


def _shown(name: str, value) -> str:
    if name == "phi_cnf":
        return "holds" if value else "does not hold"
    if isinstance(value, float):
        return f"{value:.4f}"
    return "?" if value is None else str(value)
