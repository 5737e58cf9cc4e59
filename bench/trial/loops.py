"""The in-process arms of bench/trial/breakdown.py: kdtune's training loop against a bare
PyTorch loop on one student shape, and a torch.profiler table of kdtune's loop.

Both arms start from the same student weights (one build, its state reloaded before every
epoch), reseed torch before every epoch (dropout draws the same masks), and train on the
very same batches in the same order: one epoch of kdtune's ``train_loader`` materialised
once, so the collation is outside both arms. The loss is the same (kdtune's alpha
convention, soft cross-entropy at temperature t times t², hard cross-entropy skipping label
-1, teacher logits from the warm teacher-output cache); :func:`same_loss_gap` checks it on
the first batch. The bare arm is the ceiling: plain ``torch.optim.AdamW``, no clipping, no
learning-rate schedule, no loss-term bookkeeping.

Only functions present both at commit fe26720 and after issue 14 are used, so the
benchmark runs against either: ``load_inputs``, ``teacher_signal``, ``prepare_student``,
``train_loader``, ``stages``, ``Optimiser.for_stage``, ``train_epoch``, ``loss_parts``.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

DEVICE = torch.device("cpu")


@dataclass
class Setup:
    """One student shape, ready to train: config, inputs, teacher signal, initial weights
    and one epoch of batches."""

    cfg: Any
    inputs: Any
    signal: Any
    student: Any
    init: dict
    batches: list[dict]

    @property
    def examples(self) -> int:
        return sum(len(b["labels"]) for b in self.batches)

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.student.model.parameters())


def prepare(cfg, splits) -> Setup:
    """Load inputs (warming the teacher-output cache), build the student, draw the batches."""
    from kdtune.objectives.distillation.build import prepare_student
    from kdtune.objectives.distillation.prepare import load_inputs, teacher_signal
    from kdtune.objectives.distillation.training import train_loader

    inputs = load_inputs(cfg, DEVICE, splits)
    signal = teacher_signal(cfg, inputs, DEVICE)
    if signal.live:
        raise SystemExit("the loop arms need the teacher-output cache (teacher_cache true, "
                         "intermediate losses off)")
    torch.manual_seed(cfg.seed)
    student = prepare_student(cfg, inputs, signal, DEVICE)
    init = copy.deepcopy(student.state_dict())
    batches = list(train_loader(inputs, cfg))
    return Setup(cfg, inputs, signal, student, init, batches)


def _fresh(s: Setup, n: int | None) -> list[dict]:
    """Shallow copies of the first ``n`` batches (the loops pop keys), weights reset, seeded."""
    s.student.load_state_dict(s.init)
    s.student.train()
    torch.manual_seed(s.cfg.seed)
    return [dict(b) for b in s.batches[:n]]


def kdtune_epoch(s: Setup, n: int | None = None) -> tuple[float, float]:
    """kdtune's loop (``train_epoch`` with its ``Optimiser``); (seconds, mean total loss)."""
    from kdtune.objectives.distillation.training import Optimiser, stages, train_epoch

    batches = _fresh(s, n)
    stage = stages(s.cfg)[0]
    optimiser = Optimiser.for_stage(s.student, s.cfg, len(batches))
    t0 = time.perf_counter()
    losses = train_epoch(s.student, batches, s.signal, s.inputs, s.cfg, stage, optimiser, 1,
                         DEVICE)
    return time.perf_counter() - t0, float(losses["loss_total"])


def bare_loss(cfg, logits: torch.Tensor, t_logits: torch.Tensor,
              labels: torch.Tensor) -> torch.Tensor:
    """alpha * soft + (1 - alpha) * hard, in plain torch."""
    t = cfg.temperature
    soft = -(F.softmax(t_logits / t, -1) * F.log_softmax(logits / t, -1)).sum(-1).mean()
    if cfg.t2_scaling:
        soft = soft * t * t
    hard = F.cross_entropy(logits, labels, ignore_index=-1)
    return cfg.alpha * soft + (1 - cfg.alpha) * hard


def bare_epoch(s: Setup, n: int | None = None, fused: bool = False) -> tuple[float, float]:
    """The plain PyTorch loop on the same batches; (seconds, mean loss). ``fused``: torch's
    fused AdamW instead of its default (on CPU, the single-tensor implementation)."""
    batches = _fresh(s, n)
    model, cfg, table = s.student.model, s.cfg, s.signal.train.logits
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate,
                            weight_decay=cfg.weight_decay, **({"fused": True} if fused else {}))
    total = 0.0
    t0 = time.perf_counter()
    for batch in batches:
        idx, labels = batch.pop("idx"), batch.pop("labels")
        t_logits = torch.from_numpy(np.asarray(table[idx.numpy()], dtype=np.float32))
        loss = bare_loss(cfg, model(**batch).logits, t_logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach())
    return time.perf_counter() - t0, total / max(1, len(batches))


def same_loss_gap(s: Setup) -> float:
    """|kdtune's loss - the bare loss| on the first batch at the initial weights, no dropout."""
    from kdtune.objectives.distillation.training import loss_parts, stages

    batch = _fresh(s, 1)[0]
    s.student.eval()
    idx, labels = batch.pop("idx"), batch.pop("labels")
    with torch.no_grad():
        t = s.signal.for_batch(batch, idx, DEVICE)
        out = s.student(**batch)
        ours = loss_parts(s.cfg, stages(s.cfg)[0], out, None, t, labels,
                          batch["attention_mask"], s.inputs)["total"]
        bare = bare_loss(s.cfg, s.student.model(**batch).logits, t["logits"], labels)
    return abs(float(ours) - float(bare))


def load() -> list[float]:
    """The 1, 5 and 15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def interleaved(s: Setup, repeats: int, fused: bool = False) -> dict[str, list[dict]]:
    """Both arms ``repeats`` times, A B A B ..., after one untimed warm-up epoch of each
    (kernels for every batch shape); every repeat's seconds, examples per second, mean loss
    and load before and after, and the warm-up epochs' seconds."""
    def bare(s: Setup, n: int | None = None) -> tuple[float, float]:
        return bare_epoch(s, n, fused)

    arms = (("kdtune", kdtune_epoch), ("bare", bare))
    runs: dict[str, list[dict]] = {"kdtune": [], "bare": [], "warmup_s": [
        {"arm": arm, "seconds": fn(s)[0]} for arm, fn in arms]}
    for r in range(repeats):
        for arm, fn in arms:
            before = load()
            seconds, loss = fn(s)
            runs[arm].append({"repeat": r, "seconds": seconds,
                              "examples_per_s": s.examples / seconds, "mean_loss": loss,
                              "load_before": before, "load_after": load()})
            print(f"  {arm:6s} repeat {r}: {s.examples / seconds:7.1f} examples/s "
                  f"({seconds:.2f} s), load {before[0]:.2f}", flush=True)
    return runs


def profile_rows(s: Setup, top: int = 15) -> dict:
    """One epoch of a trial's training (kdtune's ``train_loader`` and loop, as ``distill``
    runs them) under torch.profiler (CPU): the ``top`` operations by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    from kdtune.objectives.distillation.training import Optimiser, stages, train_epoch, train_loader

    _fresh(s, 0)
    loader = train_loader(s.inputs, s.cfg)
    optimiser = Optimiser.for_stage(s.student, s.cfg, len(loader))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        train_epoch(s.student, loader, s.signal, s.inputs, s.cfg, stages(s.cfg)[0],
                    optimiser, 1, DEVICE)
        wall = time.perf_counter() - t0
    events = list(prof.key_averages())
    self_total = sum(e.self_cpu_time_total for e in events) / 1e6
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    rows = [{"op": e.key, "calls": e.count, "self_s": e.self_cpu_time_total / 1e6,
             "total_s": e.cpu_time_total / 1e6} for e in events[:top]]
    return {"wall_s": wall, "self_cpu_s_all_ops": self_total, "rows": rows}
