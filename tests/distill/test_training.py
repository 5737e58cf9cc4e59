"""Tests for distillation.training: the schedule's stages and its learning-rate schedule."""

from __future__ import annotations

import pytest
import torch

from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.distillation.training import Optimiser, Stage, stages


def _cfg(**kw) -> DistillConfig:
    # construct without validation: these tests need no teacher on disk
    return DistillConfig.model_construct(teacher="unused", **kw)


def test_stages_follow_the_schedule() -> None:
    two = _cfg(schedule="two-stage", beta=1.0, intermediate_epochs=2, epochs=3)
    assert stages(two) == [Stage("intermediate", 2), Stage("prediction", 3)]
    # no intermediate losses (beta 0) or no intermediate epochs: the prediction stage only
    assert stages(_cfg(schedule="two-stage", beta=0.0, epochs=3)) == [Stage("prediction", 3)]
    assert stages(_cfg(schedule="two-stage", beta=1.0, intermediate_epochs=0, epochs=1)) == [
        Stage("prediction", 1)]
    assert stages(_cfg(schedule="joint", beta=1.0, epochs=2)) == [Stage("joint", 2)]
    joint, inter, pred = Stage("joint", 1), Stage("intermediate", 1), Stage("prediction", 1)
    assert joint.predicts and joint.matches_layers
    assert not inter.predicts and inter.matches_layers
    assert pred.predicts and not pred.matches_layers


def test_learning_rate_schedule_is_transformers_linear_warmup() -> None:
    """Warmup over round(warmup_ratio * steps) steps from 0, then linear decay to 0."""
    from transformers import get_linear_schedule_with_warmup

    model = torch.nn.Linear(2, 2)
    opt = Optimiser.for_stage(model, _cfg(learning_rate=1.0, warmup_ratio=0.25,
                                          weight_decay=0.0), steps=8)
    lrs = []
    for _ in range(8):
        lrs.append(opt.optimizer.param_groups[0]["lr"])
        opt.step(model(torch.ones(1, 2)).sum())
    assert lrs == pytest.approx([0.0, 0.5, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])
    assert opt.optimizer.param_groups[0]["lr"] == 0.0  # the last step ends the decay
    # the teacher fit's schedule, step for step
    ref = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    sched = get_linear_schedule_with_warmup(ref, round(0.25 * 8), 8)
    ref_lrs = []
    for _ in range(8):
        ref_lrs.append(ref.param_groups[0]["lr"])
        ref.step()
        sched.step()
    assert lrs == pytest.approx(ref_lrs)


def test_a_stage_of_no_steps_still_gets_a_schedule() -> None:
    opt = Optimiser.for_stage(torch.nn.Linear(2, 2), _cfg(learning_rate=0.1, warmup_ratio=0.0,
                                                         weight_decay=0.0), steps=0)
    assert opt.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
