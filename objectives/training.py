"""Training a student: the schedule's stages, one epoch, one step, and the loss of a batch.

Loss (kdtune's alpha convention: alpha weights the distillation term)::

    L = alpha * L_soft + (1 - alpha) * L_hard + beta * (L_hidden + L_embedding + L_attention)

``L_soft`` is the prediction loss ``-softmax(z_T/t)·log_softmax(z_S/t)`` (times t² when
``t2_scaling``), ``L_hard`` the cross-entropy with the labels, the intermediate losses are
TinyBERT's MSEs over the mapped layers (see :mod:`objectives.losses`): hidden states (after
W_h when widths differ) and embeddings over real tokens, attention on pre-softmax scores.

Schedules (:func:`stages`): ``joint`` trains L for ``epochs`` epochs; ``two-stage``
(TinyBERT) trains the intermediate losses alone for ``intermediate_epochs`` epochs, then
``alpha*L_soft + (1-alpha)*L_hard`` for ``epochs`` epochs. Each stage has its own AdamW and
transformers' linear schedule: the learning rate rises from 0 over the first
``warmup_ratio`` of the stage's steps, then falls linearly to 0 at its last step (the
teacher fit's schedule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from kdtune.errors import TrialError

from . import losses
from .attention import capture_attention_scores
from .config import DistillConfig
from .prepare import RunInputs, TeacherSignal
from .student import Student


class Diverged(TrialError):
    """The training loss became NaN or infinite. Retrying the same parameters won't help."""

    retryable = False


@dataclass(frozen=True)
class Stage:
    """A part of the schedule: ``name`` is ``joint``, ``intermediate`` or ``prediction``."""

    name: str
    epochs: int

    @property
    def predicts(self) -> bool:
        """Whether the stage trains the prediction losses (and so is evaluated each epoch)."""
        return self.name != "intermediate"

    @property
    def matches_layers(self) -> bool:
        """Whether the stage trains the intermediate (layer-matching) losses."""
        return self.name != "prediction"


def stages(cfg: DistillConfig) -> list[Stage]:
    """The schedule's stages in order (module docstring)."""
    if cfg.schedule == "two-stage" and cfg.uses_intermediate and cfg.intermediate_epochs > 0:
        return [Stage("intermediate", cfg.intermediate_epochs), Stage("prediction", cfg.epochs)]
    return [Stage("joint" if cfg.schedule == "joint" else "prediction", cfg.epochs)]


@dataclass
class Optimiser:
    """AdamW over the student's trainable parameters with a linear warmup-decay schedule."""

    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: Any

    @classmethod
    def for_stage(cls, student: Student, cfg: DistillConfig, steps: int) -> Optimiser:
        """A fresh optimiser for a stage of ``steps`` optimisation steps."""
        from transformers import get_linear_schedule_with_warmup

        steps = max(1, steps)
        params = [p for p in student.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate,
                                      weight_decay=cfg.weight_decay)
        scheduler = get_linear_schedule_with_warmup(optimizer, round(cfg.warmup_ratio * steps),
                                                    steps)
        return cls(params, optimizer, scheduler)

    def step(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss``, clip the gradient norm to 1, step and advance the schedule."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.scheduler.step()


class _Indexed(torch.utils.data.Dataset):
    """A tokenized dataset whose items carry their row index (to fetch cached outputs)."""

    def __init__(self, ds) -> None:
        self.ds = ds
        self.cols = [c for c in ("input_ids", "attention_mask", "token_type_ids", "label")
                     if c in ds.column_names]

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        row = self.ds[int(i)]
        item = {c: row[c] for c in self.cols}
        item["idx"] = int(i)
        return item


def train_loader(inputs: RunInputs, cfg: DistillConfig) -> torch.utils.data.DataLoader:
    """Shuffled (seeded) training batches, padded per batch, with their row indices ``idx``."""
    from .tokens import data_collator

    pad = data_collator(inputs.tokenizer)

    def collate(items: list[dict]) -> dict:
        idx = torch.tensor([it.pop("idx") for it in items])
        batch = pad(items)
        batch["idx"] = idx
        return batch

    return torch.utils.data.DataLoader(
        _Indexed(inputs.train), batch_size=cfg.batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(cfg.seed), collate_fn=collate)


def train_epoch(student: Student, loader, teacher: TeacherSignal, inputs: RunInputs,
                cfg: DistillConfig, stage: Stage, optimiser: Optimiser, epoch: int,
                device: torch.device, progress: bool = False) -> dict[str, float]:
    """One pass over ``loader``; returns each loss term's mean, keyed ``loss_<term>``."""
    student.train()
    sums: dict[str, float] = {}
    steps = 0
    for batch in _maybe_progress(loader, progress, f"{stage.name} epoch {epoch}"):
        steps += 1
        parts = train_step(student, batch, teacher, inputs, cfg, stage, optimiser, device,
                           where=f"{stage.name} epoch {epoch} step {steps}")
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
    return {f"loss_{k}": v / max(1, steps) for k, v in sums.items()}


def train_step(student: Student, batch: dict, teacher: TeacherSignal, inputs: RunInputs,
               cfg: DistillConfig, stage: Stage, optimiser: Optimiser, device: torch.device,
               where: str = "") -> dict[str, float]:
    """One optimisation step on ``batch``; returns the loss terms' values.

    Raises:
        Diverged: the total loss is NaN or infinite (``where`` says at which step).
    """
    idx = batch.pop("idx")
    labels = batch.pop("labels").to(device)
    batch = {k: v.to(device) for k, v in batch.items()}
    t = teacher.for_batch(batch, idx, device)
    match_layers = stage.matches_layers and cfg.uses_intermediate
    scores = None
    if match_layers and teacher.attention:
        with capture_attention_scores(student.model) as captured:
            s_out = student(**batch, output_intermediate=True)
        scores = captured.scores
    else:
        s_out = student(**batch, output_intermediate=match_layers)
    parts = loss_parts(cfg, stage, s_out, scores, t, labels, batch["attention_mask"], inputs)
    loss = parts["total"]
    if not torch.isfinite(loss):
        raise Diverged(f"loss became {loss.item()} in {where} (temperature "
                       f"{cfg.temperature:g}, learning rate {cfg.learning_rate:g})")
    optimiser.step(loss)
    return {k: float(v.detach()) for k, v in parts.items()}


def loss_parts(cfg: DistillConfig, stage: Stage, s_out, s_scores, t: dict,
               labels: torch.Tensor, mask: torch.Tensor,
               inputs: RunInputs) -> dict[str, torch.Tensor]:
    """The loss terms of one batch and their ``total``, as the schedule's stage says.

    ``mask`` (B, L) is the attention mask: hidden-state and embedding MSEs average over real
    tokens only. Attention MSE compares pre-softmax scores (``s_scores``, captured by
    :func:`objectives.attention.capture_attention_scores`; padded key columns are -10000,
    which the loss's TinyBERT rule sets to 0), with padding rows and columns zeroed as the
    teacher's are (cache and live path alike).
    """
    zero = s_out.logits.new_zeros(())
    parts: dict[str, torch.Tensor] = {}
    if stage.predicts:
        parts["soft"] = losses.soft_cross_entropy(s_out.logits, t["logits"],
                                                  temperature=cfg.temperature,
                                                  t2_scaling=cfg.t2_scaling)
        parts["hard"] = losses.hard_cross_entropy(s_out.logits, labels)
    if stage.matches_layers and cfg.uses_intermediate:
        intermediate = _intermediate_losses(cfg, s_out, s_scores, t, mask, inputs)
        parts.update(intermediate)
        parts["intermediate"] = sum(intermediate.values(), zero)
    if stage.name == "intermediate":
        parts["total"] = parts.get("intermediate", zero)
    elif stage.name == "prediction":
        parts["total"] = losses.combine_losses(parts["soft"], parts["hard"], zero, cfg.alpha, 0.0)
    else:
        parts["total"] = losses.combine_losses(parts["soft"], parts["hard"],
                                               parts.get("intermediate", zero), cfg.alpha,
                                               cfg.beta if cfg.uses_intermediate else 0.0)
    return parts


def _intermediate_losses(cfg: DistillConfig, s_out, s_scores, t: dict, mask: torch.Tensor,
                         inputs: RunInputs) -> dict[str, torch.Tensor]:
    """TinyBERT's embedding, hidden-state and attention MSEs named in ``cfg.intermediate``."""
    out: dict[str, torch.Tensor] = {}
    hidden = s_out.projected_hidden_states  # W_h applied already when widths differ
    if "embedding" in cfg.intermediate:
        out["embedding"] = losses.embedding_mse(hidden[0], t["hidden"][0], mask=mask)
    if "hidden" in cfg.intermediate:
        out["hidden"] = torch.stack([losses.hidden_mse(hidden[s], t["hidden"][ti], mask=mask)
                                     for s, ti in inputs.hidden_pairs if s > 0]).sum()
    if "attention" in cfg.intermediate:
        m = mask.to(s_out.logits.dtype)
        square = m[:, None, :, None] * m[:, None, None, :]
        out["attention"] = torch.stack([
            losses.attention_mse(s_scores[s] * square, t["attentions"][ti])
            for s, ti in inputs.attention_pairs]).sum()
    return out


def _maybe_progress(loader, progress: bool, desc: str):
    """A progress bar over ``loader``; off a terminal (a log, a pipe) one plain line per
    epoch instead, since a bar's carriage returns become hundreds of lines there."""
    if not progress:
        return loader
    import sys

    if not sys.stderr.isatty():
        sys.stderr.write(f"{desc}: {len(loader)} batches\n")
        sys.stderr.flush()
        return loader
    from tqdm.auto import tqdm

    return tqdm(loader, desc=desc, leave=False)
