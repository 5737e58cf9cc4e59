"""Fixed distillation recipes to compare a search against, and the retrain-and-test step.

:func:`tinybert_recipe`: TinyBERT's task distillation (Jiao et al. 2020) at a given student
size. :func:`retrain_and_test` trains one complete :class:`DistillConfig` (a trial's, or a
recipe's) and measures the student on the selection and test splits; :func:`selection_deltas`
compares its selection figures with the trial's. :func:`config_hash` names a configuration by
its content, so a stored result can be matched to the configuration it measured.

Why: docs/design.md, "TinyBERT recipe is the baseline", "Retrained figures are compared".
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

from ..distillation.config import DistillConfig
from .warm_start import TINYBERT_PARAMS

__all__ = ["REPRODUCE_TOLERANCE", "SELECTION_FIGURES", "TINYBERT_FIELDS", "config_hash",
           "retrain_and_test", "selection_deltas", "tinybert_recipe"]

TINYBERT_FIELDS = ("student_layers", "hidden_size", "schedule", "intermediate", "beta",
                   "temperature", "alpha", "layer_mapping", "min_relative_accuracy")
"""The DistillConfig fields :func:`tinybert_recipe` sets; every other field is the base's."""

SELECTION_FIGURES = ("accuracy_student", "accuracy_student_ci", "accuracy_teacher", "sigma",
                     "sigma_ci", "sigma_max", "sigma_max_ci", "sigma_per_class",
                     "n_both_correct", "n_all", "phi_cnf", "params", "n_resamples",
                     "student_layers", "student_hidden_size")
"""The selection-split metrics :func:`retrain_and_test` keeps (those the run reports)."""

COMPARED = ("accuracy_student", "sigma", "sigma_max")
"""The selection figures :func:`selection_deltas` compares with a trial's."""

REPRODUCE_TOLERANCE = 1e-6
"""Largest absolute difference of a compared figure that still counts as reproduced. One
input classified differently moves accuracy by 1/n, far more than this; float noise in the
probabilities moves sigma by far less."""


def tinybert_recipe(cfg: DistillConfig, student_layers: int,
                    hidden_size: int | None) -> DistillConfig:
    """TinyBERT's task distillation at the given size, on top of ``cfg``.

    Sets exactly :data:`TINYBERT_FIELDS`:

    * ``student_layers``, ``hidden_size``: the size (``hidden_size`` None: the teacher's
      width), so the recipe's student has the tuned student's parameter count;
    * ``schedule: two-stage``: the intermediate losses alone first (for ``cfg``'s
      ``intermediate_epochs``), then the prediction loss (for ``cfg``'s ``epochs``);
    * ``intermediate: [hidden, embedding, attention]`` with ``beta: 1.0``: TinyBERT's
      hidden-state, embedding and attention MSE losses, unweighted;
    * ``temperature: 1.0`` and ``alpha: 1.0``: in kdtune's convention
      ``L = alpha*L_soft + (1 - alpha)*L_hard + beta*L_intermediate``, alpha = 1 is
      TinyBERT's soft-only prediction loss ``-softmax(z_T/t)·log_softmax(z_S/t)`` at t = 1;
    * ``layer_mapping: uniform``: TinyBERT's g(m) = m·N/M (rounded half-up when M does
      not divide N);
    * ``min_relative_accuracy: None``: the recipe trains to the end (the early-stopping
      floor is a search shortcut, not part of the recipe).

    Everything else, notably ``learning_rate``, ``epochs``, ``intermediate_epochs``,
    ``batch_size``, ``init``, ``data`` and ``seed``, is ``cfg``'s: given the tuned trial's
    config (as ``kdtune test`` does), tuned and recipe students differ only in the
    distillation recipe (temperature, alpha, beta, mapping, schedule, losses), not in the
    optimiser budget. (The study's hand-set ``distill`` defaults are no fair base: MiniLM's
    5e-5 learning rate leaves a narrow student at the majority class.)

    Raises:
        pydantic.ValidationError: the size is not a valid DistillConfig value.
    """
    data = cfg.model_dump()
    data.update(TINYBERT_PARAMS, student_layers=student_layers, hidden_size=hidden_size,
                intermediate=("hidden", "embedding", "attention"), beta=1.0,
                min_relative_accuracy=None)
    return DistillConfig.model_validate(data)


def config_hash(cfg: DistillConfig) -> str:
    """The first 16 hex digits of the sha256 of ``cfg`` as sorted JSON (equal configs,
    equal hashes)."""
    text = json.dumps(json.loads(cfg.model_dump_json()), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def retrain_and_test(cfg: DistillConfig, splits: Any = None, progress: bool = False, *,
                     threads: int | None = None) -> dict[str, Any]:
    """Distil ``cfg`` and measure the student on the selection and test splits.

    Args:
        cfg: the complete run description (a trial's config, or a recipe's).
        splits: ``cfg.data``'s loaded :class:`~kdtune.objectives.data.dataset.Splits` (reused
            across calls); loaded when ``None``.
        progress: show the training's progress bar.
        threads: torch threads when ``cfg.threads`` is unset (``None``: every core).

    Returns:
        ``{"selection": ..., "test": ..., "seconds": ...}``: the run's
        :data:`SELECTION_FIGURES` on the selection split (``eval``), the test-split figures
        of :func:`~kdtune.objectives.distillation.heldout.measure_test_split` with their ``*_ci``
        intervals, and the wall time of training and both measurements.

    Raises:
        TrialError: the run diverged or stopped early
            (:func:`~kdtune.objectives.distillation.run.distill`).
    """
    from ..distillation.heldout import measure_test_split
    from ..distillation.run import distill

    started = time.perf_counter()
    result = distill(cfg, progress=progress, splits=splits, threads=threads)
    test = measure_test_split(cfg, result.student, result.tokenizer, teacher=result.teacher,
                              teacher_tokenizer=result.teacher_tokenizer,
                              splits=result.splits)
    selection = {k: result.metrics[k] for k in SELECTION_FIGURES if k in result.metrics}
    return {"selection": selection, "test": test, "seconds": time.perf_counter() - started}


def selection_deltas(retrained: dict[str, Any], trial: dict[str, Any]) -> dict[str, float]:
    """``|retrained - trial|`` for each of :data:`COMPARED` that both have.

    Two NaNs (sigma undefined in both runs) differ by 0; a NaN against a number by inf.
    """
    out = {}
    for name in COMPARED:
        a, b = retrained.get(name), trial.get(name)
        if not _number(a) or not _number(b):
            continue
        a, b = float(a), float(b)
        if math.isnan(a) and math.isnan(b):
            out[name] = 0.0
        elif math.isnan(a) or math.isnan(b):
            out[name] = math.inf
        else:
            out[name] = abs(a - b)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
