"""Training a student: the schedule's stages and epochs (:func:`train`), one epoch, one step, and
the loss of a batch.

Loss: ``L = alpha*L_soft + (1 - alpha)*L_hard + beta*(L_hidden + L_embedding + L_attention)``.
Schedules (:func:`stages`): ``joint`` trains L for ``epochs`` epochs; ``two-stage`` (TinyBERT)
trains the intermediate losses alone for ``intermediate_epochs`` epochs, then
``alpha*L_soft + (1-alpha)*L_hard`` for ``epochs`` epochs; each stage has its own AdamW and
linear warmup-decay schedule. :class:`Optimiser` clips the word embedding's gradient row-sparsely.
Why: docs/design.md, "Training loss and schedule", "Training speed (issue 14)".
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch

from kdtune.errors import TrialError

from ..compute.attention import capture_attention_scores
from ..student.model import Student
from ..student.vocabulary import student_batch
from ..teacher.forward import TeacherSignal
from . import losses
from .config import DistillConfig
from .prepare import RunInputs


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


MAX_GRAD_NORM = 1.0
"""The gradient-norm clipping threshold (global norm over every trainable parameter)."""


@dataclass
class Optimiser:
    """AdamW over the student's trainable parameters with a linear warmup-decay schedule.

    ``embedding`` is the word-embedding matrix when it is trained (``None`` otherwise, or
    for a model without one): :meth:`step` clips its gradient row-sparsely (module docstring).
    """

    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    embedding: torch.nn.Parameter | None = None

    @classmethod
    def for_stage(cls, student: Student, cfg: DistillConfig, steps: int) -> Optimiser:
        """A fresh optimiser for a stage of ``steps`` optimisation steps."""
        from transformers import get_linear_schedule_with_warmup

        steps = max(1, steps)
        params = [p for p in student.parameters() if p.requires_grad]
        optimizer = adamw(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        scheduler = get_linear_schedule_with_warmup(optimizer, round(cfg.warmup_ratio * steps),
                                                    steps)
        return cls(params, optimizer, scheduler, word_embedding(student))

    def step(self, loss: torch.Tensor, token_ids: torch.Tensor | None = None) -> None:
        """Back-propagate ``loss``, clip the global gradient norm to :data:`MAX_GRAD_NORM`,
        step and advance the schedule.

        ``token_ids``: the batch's input ids. Given (and the word embedding trained), the
        embedding's gradient is read and rescaled in those rows only (:func:`clip_gradients`);
        without them every parameter is clipped in full, as torch's ``clip_grad_norm_`` does.
        """
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(self.params, MAX_GRAD_NORM, self.embedding, token_ids)
        self.optimizer.step()
        self.scheduler.step()


def adamw(params: list[torch.nn.Parameter], **kw: Any) -> torch.optim.Optimizer:
    """torch's fused AdamW where the parameters' device supports it, else the default one."""
    try:
        return torch.optim.AdamW(params, fused=True, **kw)
    except (RuntimeError, ValueError):  # no fused kernel for this device or dtype
        return torch.optim.AdamW(params, **kw)


def word_embedding(model: torch.nn.Module) -> torch.nn.Parameter | None:
    """The trainable word-embedding matrix of a student (or Hugging Face model), else None."""
    inner = getattr(model, "model", model)
    getter = getattr(inner, "get_input_embeddings", None)
    if getter is None:
        return None
    try:
        emb = getter()
    except NotImplementedError:
        return None
    weight = getattr(emb, "weight", None)
    return weight if isinstance(weight, torch.nn.Parameter) and weight.requires_grad else None


def clip_gradients(params: list[torch.nn.Parameter], max_norm: float,
                   embedding: torch.nn.Parameter | None = None,
                   token_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Clip the global L2 norm of ``params``' gradients to ``max_norm``; return that norm.

    The same result as ``torch.nn.utils.clip_grad_norm_(params, max_norm)``, but when
    ``embedding`` (one of ``params``) and the batch's ``token_ids`` are given, the
    embedding's gradient is only read and rescaled in the rows of those tokens: a lookup
    table's gradient is zero in every other row (its weight is not tied to an output
    layer in a sequence classifier), so the norm is the same and the other rows stay zero.
    """
    if embedding is None or token_ids is None or embedding.grad is None:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    grad = embedding.grad
    rows = torch.unique(token_ids.to(grad.device))
    touched = grad.index_select(0, rows)
    others = [p.grad for p in params if p is not embedding and p.grad is not None]
    norms = [torch.linalg.vector_norm(touched)]
    if others:
        norms += list(torch._foreach_norm(others))
    total = torch.linalg.vector_norm(torch.stack(norms))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    if others:
        torch._foreach_mul_(others, coef)
    grad.index_copy_(0, rows, touched * coef)
    return total


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


def train(student: Student, cfg: DistillConfig, inputs: RunInputs, signal: TeacherSignal,
          device: torch.device, evaluate: Callable[[dict, int], Any],
          timed: Callable[[str], AbstractContextManager], progress: bool = False,
          ) -> tuple[list[dict], Any]:
    """Every stage's epochs; returns the history and the last epoch's ``evaluate`` result.

    Training never draws ``inputs.held_out``. After each epoch that trains the prediction
    losses, ``evaluate(record, predictions)`` measures the student (``record``: the epoch's
    history entry, which it may extend; ``predictions``: the prediction epochs so far) and may
    raise to stop the run; the result is ``None`` when the schedule ended with an intermediate
    stage. ``timed("train")`` times each epoch's training.
    """
    loader = train_loader(inputs, cfg, exclude=inputs.held_out)
    history: list[dict] = []
    result = None
    for stage in stages(cfg):
        optimiser = Optimiser.for_stage(student, cfg, stage.epochs * len(loader))
        for _ in range(stage.epochs):
            epoch = len(history) + 1
            with timed("train"):
                losses = train_epoch(student, loader, signal, inputs, cfg, stage, optimiser,
                                     epoch, device, progress)
            record = {"epoch": epoch, "stage": stage.name, **losses}
            result = None
            if stage.predicts:
                result = evaluate(record, sum(r["stage"] != "intermediate" for r in history) + 1)
            history.append(record)
    return history, result


def train_loader(inputs: RunInputs, cfg: DistillConfig,
                 exclude: Any = None) -> torch.utils.data.DataLoader:
    """Training batches grouped by length (seeded by ``cfg.seed``; epoch e reshuffles with
    seed + e), padded per batch, with their row indices ``idx``; the rows in ``exclude``
    (held out for alignment) are never drawn."""
    from ..compute.length_batches import LengthGroupedBatches, token_lengths
    from ..data.tokens import data_collator

    pad = data_collator(inputs.tokenizer)

    def collate(items: list[dict]) -> dict:
        idx = torch.tensor([it.pop("idx") for it in items])
        batch = pad(items)
        batch["idx"] = idx
        return batch

    lengths = token_lengths(inputs.train)
    keep = None
    if exclude is not None and len(exclude):
        dropped = set(int(i) for i in exclude)
        keep = [i for i in range(len(lengths)) if i not in dropped]
        lengths = [lengths[i] for i in keep]
    sampler = LengthGroupedBatches(lengths, cfg.batch_size, seed=cfg.seed)
    if keep is not None:
        sampler = _RowsOf(sampler, keep)
    return torch.utils.data.DataLoader(_Indexed(inputs.train), batch_sampler=sampler,
                                       collate_fn=collate)


class _RowsOf:
    """A batch sampler over a subset of rows: its batches' positions as those rows."""

    def __init__(self, sampler, rows: list[int]) -> None:
        self.sampler, self.rows = sampler, rows

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        for batch in self.sampler:
            yield [self.rows[j] for j in batch]


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
    s_batch = student_batch(inputs.vocab, batch)  # the student's token ids (task vocabulary)
    match_layers = stage.matches_layers and cfg.uses_intermediate
    scores = None
    if match_layers and teacher.attention:
        with capture_attention_scores(student.model) as captured:
            s_out = student(**s_batch, output_intermediate=True)
        scores = captured.scores
    else:
        s_out = student(**s_batch, output_intermediate=match_layers)
    parts = loss_parts(cfg, stage, s_out, scores, t, labels, batch["attention_mask"], inputs)
    loss = parts["total"]
    if not torch.isfinite(loss):
        raise Diverged(f"loss became {loss.item()} in {where} (temperature "
                       f"{cfg.temperature:g}, learning rate {cfg.learning_rate:g})")
    optimiser.step(loss, s_batch["input_ids"])
    return {k: float(v.detach()) for k, v in parts.items()}


def loss_parts(cfg: DistillConfig, stage: Stage, s_out, s_scores, t: dict,
               labels: torch.Tensor, mask: torch.Tensor,
               inputs: RunInputs) -> dict[str, torch.Tensor]:
    """The loss terms of one batch and their ``total``, as the schedule's stage says.

    ``mask`` (B, L) is the attention mask: hidden-state and embedding MSEs average over real
    tokens only. Attention MSE compares pre-softmax scores (``s_scores``, captured by
    :func:`objectives.compute.attention.capture_attention_scores`; padded key columns are -10000,
    which the loss's TinyBERT rule sets to 0), with padding rows and columns zeroed as the
    teacher's are (cache and live path alike).
    """
    zero = s_out.logits.new_zeros(())
    parts: dict[str, torch.Tensor] = {}
    if stage.predicts:
        parts["soft"] = (losses.logit_mse(s_out.logits, t["logits"]) if cfg.soft_loss == "mse"
                         else losses.soft_cross_entropy(s_out.logits, t["logits"],
                                                        temperature=cfg.temperature,
                                                        t2_scaling=cfg.t2_scaling))
        parts["hard"] = losses.hard_cross_entropy(s_out.logits, labels)
    if stage.matches_layers and cfg.uses_intermediate:
        intermediate = losses.intermediate_losses(cfg.intermediate, s_out, s_scores, t, mask,
                                                  inputs.hidden_pairs, inputs.attention_pairs)
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


def _maybe_progress(loader, progress: bool, desc: str, interval: float | None = None):
    """A progress bar over ``loader``; off a terminal (a log, a pipe) plain lines instead,
    since a bar's carriage returns become hundreds of lines there: one as the epoch starts
    and one at least every ``interval`` seconds (default
    :data:`~kdtune.objectives.teacher.progress.PLAIN_INTERVAL_S`) with the rate and ETA."""
    if not progress:
        return loader
    import sys

    if not sys.stderr.isatty():
        return _plain_lines(loader, desc, interval)
    from tqdm.auto import tqdm

    return tqdm(loader, desc=desc, leave=False)


def _plain_lines(loader, desc: str, interval: float | None):
    """``loader``'s batches, with :class:`~kdtune.objectives.teacher.progress.FitProgress`'s
    plain lines (the epoch's end has its own line: none at the last batch)."""
    from ..teacher.progress import PLAIN_INTERVAL_S, FitProgress

    shown = FitProgress("", interval=PLAIN_INTERVAL_S if interval is None else interval)
    total = len(loader)
    shown.begin(desc, total)
    shown.note(f"{desc}: {total} batches")
    for done, batch in enumerate(loader, 1):
        yield batch
        if done < total:
            shown.step()
