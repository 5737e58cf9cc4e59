"""The distillation run: teacher + data + DistillConfig in, a measured student out.

:func:`distill` calls each step once, in order, each timed into ``DistillResult.timings``:
``data`` and ``cache`` (:mod:`.prepare`: inputs, teacher outputs), ``build`` (:mod:`.build`:
the student), ``train`` (:func:`.training.train`: each stage, epoch by epoch; after each epoch
that trains the prediction loss, ``eval`` measures the student's evaluation accuracy, reports it
to ``on_epoch`` and stops the run when it is below the configured floor), ``align`` (with
``align: temperature``; :mod:`.align`) and ``eval`` (the final metrics, :mod:`.evaluation`).
Why: docs/design.md, "Steps of a distillation run".
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from kdtune.errors import TrialError

from ..compute.device import configure_threads, resolve_device
from ..measure.metrics import confidence_metrics
from .align import align_run
from .build import prepare_student
from .config import DistillConfig
from .evaluation import (
    alignment_inputs,
    eval_accuracy,
    final_metrics,
    student_probabilities,
    teacher_probabilities,
)
from .prepare import load_inputs, teacher_signal
from .training import Diverged, train

__all__ = ["DistillResult", "Diverged", "EarlyStopped", "distill"]


class EarlyStopped(TrialError):
    """Stopped after an epoch whose accuracy fell below the configured floor."""


@dataclass
class DistillResult:
    """What a run produced: the student, its tokenizer, metrics and where the time went.

    ``teacher`` and ``splits`` are the run's loaded teacher and data, for measuring the
    student further (the production check on the test split) without loading them again.
    ``tokenizer`` is the student's (its task vocabulary), ``teacher_tokenizer`` the teacher's.
    """

    student: object
    tokenizer: object
    config: DistillConfig
    metrics: dict
    timings: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    label_names: tuple = ()
    teacher: object = None
    splits: object = None
    teacher_tokenizer: object = None


def distill(
    cfg: DistillConfig,
    on_epoch: Callable[[int, float], None] | None = None,
    progress: bool = False,
    splits=None,
    *,
    threads: int | None = None,
    on_figures: Callable[[int, dict], None] | None = None,
) -> DistillResult:
    """Distil ``cfg.teacher`` into a student as ``cfg`` says, and measure it.

    Args:
        cfg: the complete run description.
        on_epoch: called after each prediction-stage epoch with (epoch, eval accuracy);
            ``epoch`` counts every epoch trained so far, intermediate-stage ones included.
        progress: show a progress bar per epoch.
        splits: already-loaded :class:`kdtune.objectives.data.dataset.Splits` (reused across calls).
        threads: torch threads when ``cfg.threads`` is unset (a worker's share of the
            machine); ``None`` for both uses every available core.
        on_figures: called after each prediction-stage epoch with (prediction epochs so
            far, :func:`~kdtune.objectives.measure.metrics.confidence_metrics` of the student on the
            evaluation split); successive halving ranks trials by them. It may raise
            :class:`EarlyStopped` to stop the run.

    Raises:
        Diverged: the loss became NaN or infinite.
        EarlyStopped: accuracy after an epoch fell below ``min_relative_accuracy`` x the
            teacher's.
        ValueError: bad teacher, data or mapping.
    """
    _seed_everything(cfg.seed)
    configure_threads(cfg.threads if cfg.threads is not None else threads)
    device = resolve_device(cfg.device)
    timings: dict[str, float] = {}
    timed = functools.partial(_timed, timings)

    with timed("data"):
        inputs = load_inputs(cfg, device, splits)
    with timed("cache"):
        signal = teacher_signal(cfg, inputs, device)
    with timed("build"):
        student = prepare_student(cfg, inputs, signal, device)
    with timed("eval"):
        p_teacher = teacher_probabilities(signal, inputs, device)
    labels = inputs.eval_labels
    teacher_accuracy = eval_accuracy(p_teacher, inputs)

    def evaluate(record: dict, predictions: int) -> np.ndarray:
        """After a prediction epoch: the student's eval probabilities, its accuracy into
        ``record`` and to ``on_epoch``, EarlyStopped below the floor, figures to
        ``on_figures``."""
        with timed("eval"):
            p = student_probabilities(student, inputs, device)
        record["eval_accuracy"] = acc = eval_accuracy(p, inputs)
        if on_epoch is not None:
            on_epoch(record["epoch"], acc)
        floor = cfg.min_relative_accuracy
        if floor is not None and acc < floor * teacher_accuracy:
            raise EarlyStopped(
                f"eval accuracy {acc:.4f} after epoch {record['epoch']} is below "
                f"{floor:g} x teacher accuracy {teacher_accuracy:.4f}")
        if on_figures is not None:
            on_figures(predictions, confidence_metrics(
                p_teacher, p, labels, kappa=cfg.eval.kappa,
                reference_class=cfg.eval.reference_class))
        return p

    history, p_student = train(student, cfg, inputs, signal, device, evaluate, timed, progress)
    aligned: dict = {}
    if cfg.align == "temperature":
        with timed("align"):
            logits, p_fit, fit_labels, p_student = alignment_inputs(
                student, inputs, signal, p_teacher, p_student, device)
            aligned = align_run(student, logits, p_fit, fit_labels, p_teacher, p_student, labels,
                                align_on=cfg.align_on, objective=cfg.align_fit,
                                reference_class=cfg.eval.reference_class, kappa=cfg.eval.kappa)
        p_student = None  # the folded classifier's probabilities are measured below
    with timed("eval"):
        metrics = final_metrics(cfg, student, inputs, signal, p_teacher, p_student, device)
    metrics.update(aligned)

    return DistillResult(student=student, tokenizer=inputs.student_tokenizer, config=cfg,
                         metrics=metrics, timings=timings, history=history,
                         label_names=tuple(inputs.splits.label_names),
                         teacher=inputs.teacher, splits=inputs.splits,
                         teacher_tokenizer=inputs.tokenizer)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Add the block's wall time to ``timings[name]``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
