"""Fitting a teacher: fine-tune a BERT-style checkpoint into a text classifier.

:func:`fit_teacher` (``kdtune teacher fit``) fine-tunes ``AutoModelForSequenceClassification``
on a :class:`~kdtune.objectives.data.dataset.DataConfig` dataset, by default after one epoch of
training the new head alone ("LP-FT"), measures accuracy on the train, evaluation and test
splits, and saves a Hugging Face checkpoint plus ``kdtune_teacher.json``. Loading a fitted
teacher: :mod:`~kdtune.objectives.teacher.load`; fitting each configuration once:
:mod:`~kdtune.objectives.teacher.registry`. Why: docs/design.md, "Teacher fit: linear probe first".
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, field_validator

from kdtune.errors import KdtuneError, UsageError
from kdtune.fileio import atomic_directory
from kdtune.frozen import FrozenModel

from ..compute.device import check_device_name, configure_threads, resolve_device
from ..compute.length_batches import LengthGroupedBatches, token_lengths
from ..compute.predict import accuracy, predict_logits
from ..data.dataset import DataConfig, NonEmptyStr, load_splits
from ..data.tokens import data_collator, tokenize
from ..oneline import one_line
from .base import MINILM, load_base_classifier, load_base_tokenizer, resolve_base
from .load import TEACHER_METADATA
from .progress import PLAIN_INTERVAL_S, FitProgress, library_progress

__all__ = ["TeacherFitConfig", "fit_teacher"]


class TeacherFitConfig(FrozenModel):
    """How to fit a teacher (frozen; unknown keys are rejected).

    Attributes:
        base: checkpoint to fine-tune: ``"minilm"`` (the packaged all-MiniLM-L6-v2), a local
            Hugging Face checkpoint directory, or a hub model id.
        data: the dataset and its splits; ``data.max_length`` truncates the inputs. The
            teacher trains on ``train`` only: the default keeps 800 rows of the pool out of it
            as the students' transfer split (``transfer_size``), so a study with the same
            data config distils on sentences the teacher never saw (polarity's 4,000
            sentences: 400 test, 400 evaluation, 800 transfer, 2,400 teacher training).
        linear_probe_epochs: epochs that train only the classification head (the pooler and
            the classifier: the parts a sentence-embedding checkpoint never trained for
            classification) with the encoder frozen, before the fine-tuning epochs; 0 skips
            the probe.
        linear_probe_learning_rate: the head's learning rate during the probe.
        epochs, batch_size, learning_rate, weight_decay: AdamW fine-tuning settings (no
            weight decay on biases and LayerNorm weights).
        head_learning_rate: learning rate of the head while fine-tuning; ``None`` uses
            ``learning_rate``. The encoder keeps ``learning_rate``.
        warmup_ratio: share of each phase's steps over which the learning rate rises
            linearly from 0; it then decays linearly to 0.
        seed: seeds the classification head's initialisation, dropout and shuffling.
        group_by_length: batch examples of similar length together (shuffled within chunks
            of 50 batches, batch order shuffled), so dynamic padding wastes little compute.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        threads: CPU threads for torch; ``None`` uses all CPUs available.
    """

    base: NonEmptyStr = MINILM
    data: DataConfig = DataConfig(transfer_size=800)
    linear_probe_epochs: int = Field(default=1, ge=0)
    linear_probe_learning_rate: float = Field(default=1e-3, gt=0)
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    head_learning_rate: float | None = Field(default=None, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, le=1)
    seed: int = 0
    group_by_length: bool = True
    device: str = "auto"
    threads: int | None = Field(default=None, ge=1)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return check_device_name(value)


def fit_teacher(
    cfg: TeacherFitConfig, output_dir: Path, progress: bool = True, overwrite: bool = False,
    progress_interval: float = PLAIN_INTERVAL_S,
) -> dict[str, Any]:
    """Fine-tune ``cfg.base`` on ``cfg.data`` and save the teacher in ``output_dir``.

    Args:
        cfg: what to fit.
        output_dir: the checkpoint directory to create (model, tokenizer,
            ``kdtune_teacher.json``).
        progress: show progress: on a terminal a live bar and a line per epoch; off one
            (stderr is a file or a pipe) plain lines only (:class:`~.progress.FitProgress`).
        overwrite: replace an existing non-empty ``output_dir`` (only once the new teacher
            is complete).
        progress_interval: off a terminal, the longest wait (seconds) between two lines
            during an epoch or a measurement.

    Returns:
        The metrics also written to ``kdtune_teacher.json``: ``train_accuracy``,
        ``eval_accuracy``, ``test_accuracy``, ``n_train``/``n_eval``/``n_test``,
        ``seconds``, ``epochs``, ``base``, ``data``, ``label_names``, ``kdtune_version``,
        and more (config, split fingerprints, per-epoch history, device, threads).

    Raises:
        UsageError: bad data (a :class:`~kdtune.errors.DataError`) or base checkpoint, or
            ``output_dir`` exists (one line each).
        KdtuneError: the checkpoint could not be written.
    """
    output_dir = Path(output_dir).expanduser().resolve()
    if output_dir.exists() and not overwrite:
        if not output_dir.is_dir() or any(output_dir.iterdir()):
            raise UsageError(f"output directory {output_dir} already exists and is not empty")
    previous_threads = torch.get_num_threads()
    try:
        shown = FitProgress("teacher", enabled=progress, interval=progress_interval)
        return _fit(cfg, output_dir, shown, overwrite)
    finally:
        torch.set_num_threads(previous_threads)


def _fit(cfg: TeacherFitConfig, output_dir: Path, progress: FitProgress,
         overwrite: bool) -> dict:
    """The body of :func:`fit_teacher` (which restores torch's thread count afterwards)."""
    from torch.utils.data import DataLoader
    from transformers import get_linear_schedule_with_warmup

    started = time.perf_counter()
    threads = configure_threads(cfg.threads)
    device = resolve_device(cfg.device)
    base = resolve_base(cfg.base)

    progress.note(f"fit: loading {cfg.base!r} and the data")
    with library_progress(progress.live):
        tokenizer = load_base_tokenizer(base, cfg.base)
        splits = load_splits(cfg.data)
        torch.manual_seed(cfg.seed)  # the new head's initialisation
        model = load_base_classifier(base, cfg.base, splits.label_names)
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and cfg.data.max_length > limit:
            raise UsageError(
                f"data.max_length={cfg.data.max_length} exceeds the {limit} positions of "
                f"base {cfg.base!r}"
            )
        encoded = tokenize(splits, tokenizer, cfg.data.max_length)
    collate = data_collator(tokenizer)
    model.to(device)
    eval_batch = 2 * cfg.batch_size

    def split_accuracy(name: str) -> float:
        progress.begin(f"measuring {name} accuracy", -(-len(encoded[name]) // eval_batch))
        counted = progress.counting(collate)
        logits = predict_logits(model, encoded[name], counted, device, eval_batch)
        return accuracy(logits, encoded[name]["label"])

    if cfg.group_by_length:
        batches = LengthGroupedBatches(token_lengths(encoded["train"]), cfg.batch_size, cfg.seed)
        loader = DataLoader(encoded["train"], batch_sampler=batches, collate_fn=collate)
    else:
        loader = DataLoader(
            encoded["train"],
            batch_size=cfg.batch_size,
            shuffle=True,
            collate_fn=collate,
            generator=torch.Generator().manual_seed(cfg.seed),
        )
    phases = [("probe", cfg.linear_probe_epochs), ("fine-tune", cfg.epochs)]
    phases = [(name, n) for name, n in phases if n > 0]
    n_epochs = sum(n for _, n in phases)
    history: list[dict[str, Any]] = []
    progress.note(f"fit: {len(encoded['train'])} training rows, {n_epochs} epochs of "
                  f"{len(loader)} batches on {device}")
    with progress:
        progress.start("fitting teacher", n_epochs * len(loader))
        for phase, epochs in phases:
            probe = phase == "probe"
            for name, param in model.named_parameters():  # the probe freezes the encoder
                param.requires_grad = not probe or _is_head(model, name)
            optimizer = torch.optim.AdamW(_param_groups(model, cfg, probe))
            steps = epochs * len(loader)
            scheduler = get_linear_schedule_with_warmup(
                optimizer, round(cfg.warmup_ratio * steps), steps
            )
            for _ in range(epochs):
                epoch = len(history) + 1
                progress.begin_epoch(epoch, n_epochs, len(loader), phase)
                loss = _train_epoch(model, loader, optimizer, scheduler, device,
                                    lambda mean, n: progress.step(examples=n, loss=mean))
                eval_acc = split_accuracy("eval")
                history.append({"epoch": epoch, "phase": phase, "train_loss": loss,
                                "eval_accuracy": eval_acc})
                progress.epoch_done(loss, eval_acc)

    progress.note("fit: measuring accuracy on the train and test splits")
    metrics: dict[str, Any] = {
        "train_accuracy": split_accuracy("train"),
        "eval_accuracy": history[-1]["eval_accuracy"],
        "test_accuracy": split_accuracy("test"),
        **{f"n_{name}": n for name, n in splits.sizes().items()},
        "seconds": 0.0,
        "epochs": cfg.epochs,
        "linear_probe_epochs": cfg.linear_probe_epochs,
        "base": cfg.base,
        "base_path": base,
        "data": cfg.data.model_dump(mode="json"),
        "label_names": list(splits.label_names),
        "kdtune_version": _kdtune_version(),
        "config": cfg.model_dump(mode="json"),
        "fingerprints": {name: splits.fingerprint(name) for name in ("train", "eval", "test")},
        "history": history,
        "device": str(device),
        "threads": threads,
        "torch_version": torch.__version__,
        "transformers_version": _version("transformers"),
    }
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    with library_progress(progress.live):  # save_pretrained's "Writing model shards" bar
        _save(model, tokenizer, metrics, output_dir, overwrite)
    return metrics


def _train_epoch(model, loader, optimizer, scheduler, device, on_step) -> float:
    """One epoch of AdamW steps (gradient norm clipped at 1); returns the mean train loss.

    ``on_step(mean_loss_so_far, batch_rows)`` is called after every step (the progress).
    """
    model.train()
    loss_sum, seen = 0.0, 0
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        n = batch["labels"].shape[0]
        loss_sum += float(loss.detach()) * n
        seen += n
        on_step(loss_sum / seen, n)
    return loss_sum / seen


def _is_head(model, name: str) -> bool:
    """Whether parameter ``name`` belongs to the classification head (pooler or classifier)."""
    return not name.startswith(f"{model.base_model_prefix}.") or ".pooler." in name.lower()


def _param_groups(model, cfg: TeacherFitConfig, probe: bool = False) -> list[dict[str, Any]]:
    """AdamW groups: head or encoder (learning rate) x decayed or not (biases, LayerNorms).

    ``probe``: the linear-probe phase, which trains the head only (at
    ``linear_probe_learning_rate``).
    """
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        lowered = name.lower()
        is_head = _is_head(model, name)
        if probe and not is_head:
            continue
        no_decay = name.endswith("bias") or "layernorm" in lowered or "layer_norm" in lowered
        groups.setdefault((is_head, no_decay), []).append(param)
    head_lr = cfg.head_learning_rate or cfg.learning_rate
    if probe:
        head_lr = cfg.linear_probe_learning_rate
    return [
        {"params": params, "lr": head_lr if is_head else cfg.learning_rate,
         "weight_decay": 0.0 if no_decay else cfg.weight_decay}
        for (is_head, no_decay), params in sorted(groups.items())
    ]


def _save(model, tokenizer, metrics: dict, output_dir: Path, overwrite: bool) -> None:
    """Write the checkpoint and ``kdtune_teacher.json``; ``output_dir`` appears complete."""
    try:
        with atomic_directory(output_dir, overwrite=overwrite) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / TEACHER_METADATA).write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")
    except OSError as e:
        raise KdtuneError(f"could not save the teacher to {output_dir}: {one_line(e)}") from e


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def _kdtune_version() -> str:
    v = _version("kdtune")
    return "0+unknown" if v == "unknown" else v
