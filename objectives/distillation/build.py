"""The build step of a distillation run: the student, on the run's device.

:func:`prepare_student` builds it from the teacher as the run's inputs plan it (layer mapping,
shape, task vocabulary). :func:`attention_implementation`: eager only with the attention loss,
else SDPA. Why: docs/design.md, "Attention kernel: eager or SDPA".
"""

from __future__ import annotations

import torch

from ..student.build import build_student
from ..student.model import Student
from ..teacher.forward import TeacherSignal
from .config import DistillConfig
from .prepare import RunInputs


def prepare_student(cfg: DistillConfig, inputs: RunInputs, signal: TeacherSignal,
                    device: torch.device) -> Student:
    """Build the student on ``device``; move the teacher to the CPU if nothing needs it here.

    Its heads and feed-forward size follow its width
    (:func:`~kdtune.objectives.student.size.student_shape`, ``inputs.student_shape``) unless
    ``ffn_size`` names the feed-forward size."""
    kernel = attention_implementation(cfg)
    width, heads, ffn = inputs.student_shape
    student = build_student(inputs.teacher, inputs.mapping, hidden_size=width,
                            init=cfg.init, checkpoint=cfg.init_checkpoint,
                            num_attention_heads=heads, intermediate_size=ffn,
                            attn_implementation=kernel, dropout=cfg.dropout)
    if inputs.vocab is not None:
        from ..student.vocabulary import shrink_embeddings

        shrink_embeddings(student, inputs.vocab)
    student.to(device)
    if not signal.live and signal.eval is not None and device.type != "cpu":
        inputs.teacher.cpu()  # every teacher output the run needs is cached
    return student


def attention_implementation(cfg: DistillConfig) -> str:
    """``"eager"`` when the run trains the attention loss (``beta`` > 0 with ``attention``
    in ``intermediate``), else ``"sdpa"`` (module docstring); the
    teacher always runs SDPA (:mod:`~kdtune.objectives.compute.memo`)."""
    return "eager" if cfg.uses_intermediate and "attention" in cfg.intermediate else "sdpa"
