"""The distillation run: teacher + data + DistillConfig in, a measured student out.

:func:`distill` runs these steps in order, each timed into ``DistillResult.timings``: ``data``,
``cache`` and ``build`` (:mod:`.prepare`: inputs, teacher outputs, the student),
``train`` (each stage, epoch by epoch; after each epoch that trains the prediction loss,
``eval`` measures the student's evaluation accuracy, reports it to ``on_epoch`` and stops the
run when it is below the configured floor), ``align`` (with ``align: temperature``) and
``eval`` (the final metrics). Why: docs/design.md, "Steps of a distillation run".
"""

from __future__ import annotations

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
from ..student.model import Student
from ..teacher.forward import TeacherSignal
from .config import DistillConfig
from .evaluation import (
    EVAL_BATCH_SIZE,
    accuracy,
    final_metrics,
    student_probabilities,
    teacher_probabilities,
)
from .prepare import RunInputs, load_inputs, prepare_student, teacher_signal
from .training import Diverged, Optimiser, stages, train_epoch, train_loader

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
    configure_threads(cfg.threads if cfg.threads is not None else threads)
    device = resolve_device(cfg.device)
    _seed_everything(cfg.seed)
    timings: dict[str, float] = {}

    with _timed(timings, "data"):
        inputs = load_inputs(cfg, device, splits)
    with _timed(timings, "cache"):
        signal = teacher_signal(cfg, inputs, device)
    with _timed(timings, "build"):
        student = prepare_student(cfg, inputs, signal, device)
    with _timed(timings, "eval"):
        p_teacher = teacher_probabilities(signal, inputs, device)
    labels = inputs.eval_labels
    teacher_accuracy = accuracy(p_teacher, labels)
    figures = None
    if on_figures is not None:

        def figures(n: int, p: np.ndarray) -> None:
            on_figures(n, confidence_metrics(p_teacher, p, labels, kappa=cfg.eval.kappa,
                                             reference_class=cfg.eval.reference_class))
    held = inputs.held_out
    history, p_student = _train(cfg, student, inputs, signal, teacher_accuracy, device,
                                timings, on_epoch, progress, figures, held)
    aligned: dict = {}
    if cfg.align == "temperature":
        with _timed(timings, "align"):
            aligned = align(cfg, student, inputs, signal, p_teacher, p_student, held, device)
        p_student = None  # the folded classifier's probabilities are measured below
    with _timed(timings, "eval"):
        metrics = final_metrics(cfg, student, inputs, signal, p_teacher, p_student, device)
    metrics.update(aligned)

    return DistillResult(student=student, tokenizer=inputs.student_tokenizer, config=cfg,
                         metrics=metrics, timings=timings, history=history,
                         label_names=tuple(inputs.splits.label_names),
                         teacher=inputs.teacher, splits=inputs.splits,
                         teacher_tokenizer=inputs.tokenizer)


def align(cfg: DistillConfig, student: Student, inputs: RunInputs, signal: TeacherSignal,
          p_teacher: np.ndarray, p_student: np.ndarray | None, held: np.ndarray | None,
          device: torch.device) -> dict:
    """Fit the alignment temperature on the held-out rows (or the selection split), fold it
    into the classifier, and return its figures: ``align_temperature`` and, on the
    selection split, ``sigma_unaligned`` (and ``sigma_max_unaligned``).

    ``p_student``: the trained student's selection probabilities when the last epoch
    measured them (else they are measured here); their logarithms serve as its logits
    (softmax(log p / T) = softmax(z / T): a row's constant shift does not matter)."""
    from ..compute.predict import predict_logits
    from ..data.tokens import data_collator
    from .align import align_student
    from .evaluation import student_rows

    if p_student is None:
        p_student = student_probabilities(student, inputs, device)
    labels = inputs.eval_labels
    before = confidence_metrics(p_teacher, p_student, labels,
                                kappa=cfg.eval.kappa, reference_class=cfg.eval.reference_class)
    if held is None:
        logits = np.log(np.maximum(p_student, np.finfo(np.float64).tiny))
        p_fit, fit_labels = p_teacher, labels
    else:
        logits = predict_logits(student, student_rows(inputs, held),
                                data_collator(inputs.student_tokenizer), device, EVAL_BATCH_SIZE)
        p_fit = teacher_probabilities(signal, inputs, device, "train")[held]
        fit_labels = inputs.train_labels[held]
    fitted = align_student(student, logits, p_fit, fit_labels, objective=cfg.align_fit,
                           reference_class=cfg.eval.reference_class)
    return {"align_temperature": fitted["align_temperature"],
            "align_on": cfg.align_on, "align_fit": cfg.align_fit,
            "align_rows": int(len(fit_labels)),
            "sigma_unaligned": before.get("sigma"),
            "sigma_max_unaligned": before.get("sigma_max")}


def _train(cfg: DistillConfig, student: Student, inputs: RunInputs, signal: TeacherSignal,
           teacher_accuracy: float, device: torch.device, timings: dict[str, float],
           on_epoch: Callable[[int, float], None] | None,
           progress: bool, figures: Callable[[int, np.ndarray], None] | None = None,
           held: np.ndarray | None = None) -> tuple[list[dict], np.ndarray | None]:
    """Every stage's epochs; returns the history and the final student's eval probabilities.

    The probabilities are ``None`` when no epoch evaluated the final student (the schedule
    ended with an intermediate stage).
    """
    loader = train_loader(inputs, cfg, exclude=held)
    eval_labels = inputs.eval_labels
    history: list[dict] = []
    p_student = None
    for stage in stages(cfg):
        optimiser = Optimiser.for_stage(student, cfg, stage.epochs * len(loader))
        for _ in range(stage.epochs):
            epoch = len(history) + 1
            with _timed(timings, "train"):
                losses = train_epoch(student, loader, signal, inputs, cfg, stage, optimiser,
                                     epoch, device, progress)
            record = {"epoch": epoch, "stage": stage.name, **losses}
            p_student = None
            if stage.predicts:
                with _timed(timings, "eval"):
                    p_student = student_probabilities(student, inputs, device)
                record["eval_accuracy"] = acc = accuracy(p_student, eval_labels)
                if on_epoch is not None:
                    on_epoch(epoch, acc)
                _check_floor(cfg, acc, teacher_accuracy, epoch)
                if figures is not None:
                    figures(sum(r["stage"] != "intermediate" for r in history) + 1, p_student)
            history.append(record)
    return history, p_student


def _check_floor(cfg: DistillConfig, acc: float, teacher_accuracy: float, epoch: int) -> None:
    """Raise EarlyStopped when ``acc`` is below ``min_relative_accuracy`` x the teacher's."""
    floor = cfg.min_relative_accuracy
    if floor is not None and acc < floor * teacher_accuracy:
        raise EarlyStopped(
            f"eval accuracy {acc:.4f} after epoch {epoch} is below "
            f"{floor:g} x teacher accuracy {teacher_accuracy:.4f}")


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
