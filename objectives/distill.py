"""The distillation run: teacher + data + DistillConfig in, a measured student out.

One run, in order (each step timed into ``DistillResult.timings``):

1. ``data``: load and tokenize the splits (dynamic padding happens per batch).
2. ``cache``: teacher outputs for the training and evaluation inputs, from the on-disk
   teacher-output cache when enabled (computed once per fingerprint, shared by every trial
   and every local worker), else from a live teacher forward in each batch.
3. ``build``: the student, initialised from the teacher's embeddings and mapped layers.
4. ``train``: the losses below, by schedule.
5. ``eval``: the metrics of :func:`objectives.metrics.confidence_metrics`, the parameter
   count and the inference latency.

Loss (kdtune's alpha convention: alpha weights the distillation term)::

    L = alpha * L_soft + (1 - alpha) * L_hard + beta * (L_hidden + L_embedding + L_attention)

``L_soft`` is the prediction loss ``-softmax(z_T/t)·log_softmax(z_S/t)`` (times t² when
``t2_scaling``), ``L_hard`` the cross-entropy with the labels, the intermediate losses are
TinyBERT's MSEs over the mapped layers (see :mod:`objectives.losses`): hidden states (after
W_h when widths differ) and embeddings over real tokens, attention on pre-softmax scores.
Schedules: ``joint`` trains L for ``epochs`` epochs; ``two-stage`` (TinyBERT) trains
the intermediate losses alone for ``intermediate_epochs`` epochs, then
``alpha*L_soft + (1-alpha)*L_hard`` for ``epochs`` epochs.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import losses
from .attention import capture_attention_scores
from .config import DistillConfig
from .mapping import attention_pairs, hidden_state_pairs, layer_mapping


class Diverged(RuntimeError):
    """The training loss became NaN or infinite. Retrying the same parameters won't help."""

    retryable = False


class EarlyStopped(RuntimeError):
    """Stopped after an epoch whose accuracy fell below the configured floor."""


@dataclass
class DistillResult:
    """What a run produced: the student, its tokenizer, metrics and where the time went."""

    student: object
    tokenizer: object
    config: DistillConfig
    metrics: dict
    timings: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    label_names: tuple = ()


def teacher_depth(teacher: str) -> int:
    """Number of transformer layers N of a teacher, from its config only (no weights)."""
    from transformers import AutoConfig

    try:
        return int(AutoConfig.from_pretrained(teacher).num_hidden_layers)
    except OSError as e:
        raise ValueError(f"teacher {teacher!r} is not a checkpoint directory or reachable "
                         f"hub id: {str(e).splitlines()[0]}") from e


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def __call__(self, name: str):
        timer = self

        class _Span:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                timer.timings[name] = timer.timings.get(name, 0.0) + time.perf_counter() - self.t0

        return _Span()


def distill(
    cfg: DistillConfig,
    on_epoch: Callable[[int, float], None] | None = None,
    progress: bool = False,
    splits=None,
) -> DistillResult:
    """Distil ``cfg.teacher`` into a student as ``cfg`` says, and measure it.

    Args:
        cfg: the complete run description.
        on_epoch: called after each prediction-stage epoch with (epoch, eval accuracy).
        progress: show a progress bar per epoch.
        splits: already-loaded :class:`kdtune.objectives.data.Splits` (reused across calls).

    Raises:
        Diverged: the loss became NaN or infinite.
        EarlyStopped: accuracy after an epoch fell below ``min_relative_accuracy`` x the
            teacher's.
        ValueError: bad teacher, data or mapping.
    """
    from .data import check_labels_match, load_splits, tokenize
    from .metrics import confidence_metrics, softmax
    from .runtime import configure_threads, resolve_device
    from .student import build_student, count_parameters
    from .teacher import load_teacher

    timer = _Timer()
    # threads: the config's, else what `kdtune run` gave each worker, else cores
    configure_threads(cfg.threads or int(os.environ.get("KDTUNE_THREADS", "0")) or None)
    device = resolve_device(cfg.device)
    _seed_everything(cfg.seed)

    with timer("data"):
        teacher, tokenizer = load_teacher(cfg.teacher)
        teacher.to(device).eval()
        if splits is None:
            splits = load_splits(cfg.data)
        check_labels_match(splits, _label_names(teacher))
        train_ds = tokenize(splits.train, tokenizer, cfg.data.max_length)
        eval_ds = tokenize(splits.eval, tokenizer, cfg.data.max_length)
        n_layers = teacher.config.num_hidden_layers
        mapping = layer_mapping(_mapping_arg(cfg.layer_mapping), n_layers, cfg.student_layers)
        hidden_pairs = hidden_state_pairs(mapping)
        att_pairs = attention_pairs(mapping)

    use_inter = cfg.uses_intermediate
    want_hidden = sorted({t for _, t in hidden_pairs}) if use_inter else []
    want_att = sorted({t for _, t in att_pairs}) if use_inter and "attention" in cfg.intermediate \
        else []
    if use_inter and "hidden" not in cfg.intermediate and "embedding" not in cfg.intermediate:
        want_hidden = []
    with timer("cache"):
        train_out = eval_out = None
        if cfg.teacher_cache:
            from .cache import compute_or_load, teacher_fingerprint

            tok_name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
            fp_train = teacher_fingerprint(
                cfg.teacher, splits.fingerprint("train"), "train", tok_name,
                cfg.data.max_length, tuple(want_hidden), bool(want_att))
            train_out = compute_or_load(
                teacher, tokenizer, train_ds, fp_train, want_hidden, want_att,
                memory_budget_mb=cfg.cache_budget_mb, device=device)
            fp_eval = teacher_fingerprint(
                cfg.teacher, splits.fingerprint("eval"), "eval", tok_name,
                cfg.data.max_length, (), False)
            eval_out = compute_or_load(teacher, tokenizer, eval_ds, fp_eval, [], [],
                                       memory_budget_mb=cfg.cache_budget_mb, device=device)
        live_teacher = train_out is None or (use_inter and train_out.needs_live_teacher)

    with timer("build"):
        student = build_student(teacher, mapping, hidden_size=cfg.hidden_size, init=cfg.init,
                                checkpoint=cfg.init_checkpoint)
        student.to(device)
        if not live_teacher and eval_out is not None:
            teacher = teacher.cpu() if device.type != "cpu" else teacher

    collate = _collator(tokenizer)
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(_Indexed(train_ds), batch_size=cfg.batch_size,
                                         shuffle=True, generator=gen, collate_fn=collate)
    eval_loader = torch.utils.data.DataLoader(_Indexed(eval_ds), batch_size=64, shuffle=False,
                                              collate_fn=collate)

    # teacher eval probabilities (for metrics and the early-stopping floor)
    with timer("eval"):
        t_logits_eval = (eval_out.logits if eval_out is not None
                         else _predict(teacher, eval_loader, device))
        p_teacher_eval = softmax(np.asarray(t_logits_eval, dtype=np.float64))
        eval_labels = np.asarray(eval_ds["label"])
        teacher_acc = float((p_teacher_eval.argmax(1) == eval_labels).mean())

    stages: list[tuple[str, int]] = []
    if cfg.schedule == "two-stage" and use_inter and cfg.intermediate_epochs > 0:
        stages.append(("intermediate", cfg.intermediate_epochs))
        stages.append(("prediction", cfg.epochs))
    else:
        stages.append(("joint" if cfg.schedule == "joint" else "prediction", cfg.epochs))

    history: list[dict] = []
    params = [p for p in student.parameters() if p.requires_grad]
    epoch_no = 0
    p_s = None  # the student's eval probabilities after its latest epoch
    # training steps are timed as "train", the per-epoch evaluation as "eval"
    for stage, n_epochs in stages:
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate,
                                      weight_decay=cfg.weight_decay)
        total = max(1, n_epochs * len(loader))
        warmup = int(cfg.warmup_ratio * total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s, w=warmup, t=total: min((s + 1) / max(1, w),
                                                        max(0.0, (t - s) / max(1, t - w))))
        for _ in range(n_epochs):
            epoch_no += 1
            student.train()
            sums: dict[str, float] = {}
            steps = 0
            with timer("train"):
                for batch in _maybe_progress(loader, progress, f"{stage} epoch {epoch_no}"):
                    idx = batch.pop("idx")
                    labels = batch.pop("labels").to(device)
                    batch = {k: v.to(device) for k, v in batch.items()}
                    t = _teacher_batch(teacher, batch, idx, train_out, live_teacher,
                                       want_hidden, want_att, device)
                    need_inter = stage in ("intermediate", "joint") and use_inter
                    if need_inter and want_att:
                        with capture_attention_scores(student.model) as captured:
                            s_out = student(**batch, output_intermediate=True)
                        s_scores = captured.scores
                    else:
                        s_out = student(**batch, output_intermediate=need_inter)
                        s_scores = None
                    parts = _loss_parts(cfg, stage, s_out, s_scores, t, labels,
                                        batch["attention_mask"], hidden_pairs, att_pairs)
                    loss = parts["total"]
                    if not torch.isfinite(loss):
                        raise Diverged(
                            f"loss became {loss.item()} in {stage} epoch {epoch_no} "
                            f"step {steps + 1} (temperature {cfg.temperature:g}, "
                            f"learning rate {cfg.learning_rate:g})")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    optimizer.step()
                    scheduler.step()
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + float(v.detach())
                    steps += 1
            record = {"epoch": epoch_no, "stage": stage,
                      **{f"loss_{k}": v / max(1, steps) for k, v in sums.items()}}
            if stage != "intermediate":
                with timer("eval"):
                    p_s = softmax(_predict(student, eval_loader, device))
                acc = float((p_s.argmax(1) == eval_labels).mean())
                record["eval_accuracy"] = acc
                if on_epoch is not None:
                    on_epoch(epoch_no, acc)
                floor = cfg.min_relative_accuracy
                if floor is not None and acc < floor * teacher_acc:
                    raise EarlyStopped(
                        f"eval accuracy {acc:.4f} after epoch {epoch_no} is below "
                        f"{floor:g} x teacher accuracy {teacher_acc:.4f}")
            history.append(record)

    with timer("eval"):
        # the last epoch ended with a prediction stage, so p_s is the final student's
        p_student_eval = p_s if p_s is not None else softmax(_predict(student, eval_loader,
                                                                      device))
        metrics = confidence_metrics(p_teacher_eval, p_student_eval, eval_labels,
                                     reference_class=cfg.eval.reference_class,
                                     kappa=cfg.eval.kappa)
        if cfg.eval.on_train:
            t_logits_train = (train_out.logits if train_out is not None
                              else _predict(teacher, _plain_loader(train_ds, collate), device))
            train_m = confidence_metrics(
                softmax(np.asarray(t_logits_train, dtype=np.float64)),
                softmax(_predict(student, _plain_loader(train_ds, collate), device)),
                np.asarray(train_ds["label"]), reference_class=cfg.eval.reference_class,
                kappa=cfg.eval.kappa)
            metrics.update({f"train_{k}": v for k, v in train_m.items()})
        metrics["params"] = count_parameters(student)
        metrics["latency_ms"] = _latency_ms(student, eval_loader, device,
                                            cfg.eval.latency_batches)
        metrics["student_layers"] = cfg.student_layers
        metrics["layer_mapping_layers"] = ",".join(str(g) for g in mapping)

    return DistillResult(student=student, tokenizer=tokenizer, config=cfg, metrics=metrics,
                         timings=timer.timings, history=history,
                         label_names=tuple(splits.label_names))


# ---------------------------------------------------------------------------------------
# helpers


def _mapping_arg(v):
    return list(v) if isinstance(v, tuple) else v


def _label_names(model) -> list[str]:
    id2label = model.config.id2label or {}
    return [str(id2label[i]) for i in sorted(int(k) for k in id2label)]


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


def _collator(tokenizer):
    """Dynamic padding to the longest sequence of the batch; keeps the row indices."""
    from transformers import DataCollatorWithPadding

    pad = DataCollatorWithPadding(tokenizer)

    def collate(items: list[dict]) -> dict:
        idx = torch.tensor([it.pop("idx") for it in items])
        batch = pad(items)
        if "label" in batch:
            batch["labels"] = batch.pop("label")
        batch["idx"] = idx
        return batch

    return collate


def _plain_loader(ds, collate):
    return torch.utils.data.DataLoader(_Indexed(ds), batch_size=64, shuffle=False,
                                       collate_fn=collate)


@torch.no_grad()
def _predict(model, loader, device) -> np.ndarray:
    """Logits (n, K) for every example of ``loader``, in order."""
    model.eval()
    out = []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items() if k not in ("idx", "labels")}
        res = model(**batch)
        logits = res.logits if hasattr(res, "logits") else res["logits"]
        out.append(logits.float().cpu())
    return torch.cat(out).numpy().astype(np.float64)


@torch.no_grad()
def _latency_ms(student, loader, device, n_batches: int) -> float:
    """Median wall time of one student forward on an evaluation batch (64 inputs), in ms."""
    if n_batches <= 0:
        return float("nan")
    student.eval()
    times = []
    for i, batch in enumerate(loader):
        if i >= n_batches:
            break
        batch = {k: v.to(device) for k, v in batch.items() if k not in ("idx", "labels")}
        t0 = time.perf_counter()
        student(**batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times)) if times else float("nan")


def _teacher_batch(teacher, batch, idx, cached, live, want_hidden, want_att, device) -> dict:
    """Teacher logits (and the needed hidden states / attentions) for one batch.

    From the cache when it holds everything, else from a live forward
    (:func:`objectives.cache.forward_teacher`, which zeroes padding exactly as the cache
    does, so both paths feed the losses the same numbers).
    """
    from .cache import forward_teacher

    seq_len = batch["input_ids"].shape[1]
    if not live:
        return cached.batch(idx.tolist(), seq_len, device=device)
    with torch.no_grad():
        t = forward_teacher(teacher, batch, want_hidden, want_att)
    if cached is not None:  # cached logits keep trials identical with and without the cache
        t["logits"] = cached.batch(idx.tolist(), seq_len, device=device)["logits"]
    return t


def _loss_parts(cfg, stage, s_out, s_scores, t, labels, mask, hidden_pairs, att_pairs) -> dict:
    """The loss terms of one batch and their total, as the schedule's stage says.

    ``mask`` (B, L) is the attention mask: hidden-state and embedding MSEs average over real
    tokens only. Attention MSE compares pre-softmax scores (``s_scores``, captured by
    :func:`objectives.attention.capture_attention_scores`; padded key columns are -10000,
    which the loss's TinyBERT rule sets to 0), with padding rows and columns zeroed as the
    teacher's are (cache and live path alike).
    """
    zero = s_out.logits.new_zeros(())
    parts: dict[str, torch.Tensor] = {}
    if stage in ("prediction", "joint"):
        parts["soft"] = losses.soft_cross_entropy(s_out.logits, t["logits"],
                                                  temperature=cfg.temperature,
                                                  t2_scaling=cfg.t2_scaling)
        parts["hard"] = losses.hard_cross_entropy(s_out.logits, labels)
    if stage in ("intermediate", "joint") and cfg.uses_intermediate:
        inter = zero
        hidden = s_out.projected_hidden_states  # W_h applied already when widths differ
        if "embedding" in cfg.intermediate:
            parts["embedding"] = losses.embedding_mse(hidden[0], t["hidden"][0], mask=mask)
            inter = inter + parts["embedding"]
        if "hidden" in cfg.intermediate:
            h = [losses.hidden_mse(hidden[s], t["hidden"][ti], mask=mask)
                 for s, ti in hidden_pairs if s > 0]
            parts["hidden"] = torch.stack(h).sum()
            inter = inter + parts["hidden"]
        if "attention" in cfg.intermediate:
            m = mask.to(s_out.logits.dtype)
            square = m[:, None, :, None] * m[:, None, None, :]
            a = [losses.attention_mse(s_scores[s] * square, t["attentions"][ti])
                 for s, ti in att_pairs]
            parts["attention"] = torch.stack(a).sum()
            inter = inter + parts["attention"]
        parts["intermediate"] = inter
    if stage == "intermediate":
        parts["total"] = parts.get("intermediate", zero)
    elif stage == "prediction":
        parts["total"] = losses.combine_losses(parts["soft"], parts["hard"], zero, cfg.alpha, 0.0)
    else:
        parts["total"] = losses.combine_losses(parts["soft"], parts["hard"],
                                               parts.get("intermediate", zero), cfg.alpha,
                                               cfg.beta if cfg.uses_intermediate else 0.0)
    return parts


def _maybe_progress(loader, progress: bool, desc: str):
    if not progress:
        return loader
    from tqdm.auto import tqdm

    return tqdm(loader, desc=desc, leave=False)


def save_student(result: DistillResult, output_dir: str | Path) -> Path:
    """Save the student with ``save_pretrained`` (model, tokenizer, label names)."""
    out = Path(output_dir)
    result.student.save_pretrained(out, result.tokenizer)
    return out


def finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
