"""Measuring a student: its probabilities, its metrics against the teacher, its latency.

A split is measured in one pass: logits (:func:`objectives.compute.predict.predict_logits`,
kdtune's one prediction loop; teacher logits from the teacher-output cache when the run has it),
probabilities, then the metrics against the labels read once (``RunInputs``). The metrics are
:func:`objectives.measure.metrics.confidence_metrics` (on the evaluation split, and on the training
split too when ``eval.on_train``), paired bootstrap 95% intervals of accuracy, sigma and
sigma_max on the evaluation split (:func:`objectives.measure.bootstrap.paired_bootstrap`), plus the
served parameter count, the inference latency and the student's depth, width and layer
mapping.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..compute.predict import MODEL_INPUTS, predict_logits
from ..measure.bootstrap import DEFAULT_RESAMPLES, interval_key, paired_bootstrap
from ..measure.metrics import confidence_metrics, softmax
from ..student.model import Student, count_parameters
from ..teacher.forward import TeacherSignal
from .config import DistillConfig
from .prepare import RunInputs

EVAL_BATCH_SIZE = 64
"""Inputs per forward when evaluating and when timing latency."""


def logits(model: torch.nn.Module, dataset, collate, device: torch.device) -> np.ndarray:
    """Logits (n, K) of ``model`` on every row of ``dataset``, in row order, padded by
    ``collate``, :data:`EVAL_BATCH_SIZE` rows per forward."""
    return predict_logits(model, dataset, collate, device, EVAL_BATCH_SIZE)


def probabilities(model: torch.nn.Module, dataset, collate, device: torch.device) -> np.ndarray:
    """Softmax probabilities (n, K) of ``model`` on every row of ``dataset``, in row order,
    padded by ``collate``."""
    z = logits(model, dataset, collate, device)
    return softmax(z)


def student_probabilities(student: torch.nn.Module, inputs: RunInputs,
                          device: torch.device) -> np.ndarray:
    """The student's probabilities on the evaluation split, tokenised by its own tokenizer."""
    return probabilities(student, inputs.student_eval, inputs.student_collate, device)


def teacher_probabilities(signal: TeacherSignal, inputs: RunInputs, device: torch.device,
                          split: str = "eval") -> np.ndarray:
    """The teacher's probabilities on ``split`` (``eval`` or ``train``): cached or predicted."""
    cached = signal.eval if split == "eval" else signal.train
    if cached is None:
        dataset = inputs.eval if split == "eval" else inputs.train
        return probabilities(signal.model, dataset, inputs.collate, device)
    return softmax(np.asarray(cached.logits, dtype=np.float64))


def eval_accuracy(p: np.ndarray, inputs: RunInputs) -> float:
    """Share of the evaluation split's rows whose most probable class (``p``: probabilities,
    (n, K)) is the label."""
    return float((p.argmax(1) == inputs.eval_labels).mean())


def alignment_inputs(student: Student, inputs: RunInputs, signal: TeacherSignal,
                     p_teacher: np.ndarray, p_student: np.ndarray | None,
                     device: torch.device) -> tuple[np.ndarray, ...]:
    """What the alignment temperature is fitted on: ``(student logits, teacher probabilities,
    labels, p_student)`` of the held-out rows (``inputs.held_out``), else of the selection
    split.

    ``p_student``: the trained student's selection probabilities when the last epoch
    measured them (else they are measured here); on the selection split their logarithms
    serve as its logits (softmax(log p / T) = softmax(z / T): a row's constant shift does not
    matter)."""
    held = inputs.held_out
    if p_student is None:
        p_student = student_probabilities(student, inputs, device)
    if held is None:
        z = np.log(np.maximum(p_student, np.finfo(np.float64).tiny))
        return z, p_teacher, inputs.eval_labels, p_student
    p_fit = teacher_probabilities(signal, inputs, device, "train")[held]
    z = logits(student, student_rows(inputs, held), inputs.student_collate, device)
    return z, p_fit, inputs.train_labels[held], p_student


def final_metrics(cfg: DistillConfig, student: Student, inputs: RunInputs,
                  signal: TeacherSignal, p_teacher: np.ndarray, p_student: np.ndarray | None,
                  device: torch.device) -> dict:
    """Every reported metric of the trained student.

    ``p_teacher`` and ``p_student`` are the evaluation split's probabilities; ``p_student``
    may be ``None`` (no prediction epoch evaluated the final student yet), then it is
    computed here. Beside :func:`~objectives.measure.metrics.confidence_metrics`' figures:
    ``accuracy_student_ci``, ``sigma_ci`` and ``sigma_max_ci`` (``[low, high]``, paired
    bootstrap 95% percentile intervals, :func:`interval_ci`), ``n_resamples``, ``params``,
    ``latency_ms``, ``student_layers``, ``student_hidden_size`` and ``layer_mapping_layers``.
    """
    if p_student is None:
        p_student = student_probabilities(student, inputs, device)
    labels, train_labels = inputs.eval_labels, inputs.train_labels
    labelled = train_labels >= 0  # the transfer set's unlabelled rows are -1
    if cfg.eval.on_train:
        p_train = (teacher_probabilities(signal, inputs, device, "train")[labelled],
                   probabilities(student, student_rows(inputs), inputs.student_collate,
                                 device)[labelled])
    if cfg.eval.int8:  # confidences after quantisation, an objective the search may use
        from ..measure.onnx import int8_probabilities

        started = time.perf_counter()
        p_int8 = int8_probabilities(student.model, inputs.student_tokenizer,
                                    inputs.student_eval, inputs.student_collate)
        m = confidence_metrics(p_teacher, p_int8, labels, reference_class=cfg.eval.reference_class,
                               kappa=cfg.eval.kappa)
        int8 = {"accuracy_int8": m["accuracy_student"], "sigma_int8": m["sigma"],
                "agreement_int8": float(np.mean(p_int8.argmax(1) == p_student.argmax(1))),
                "int8_seconds": time.perf_counter() - started}
    metrics = confidence_metrics(p_teacher, p_student, labels,
                                 reference_class=cfg.eval.reference_class, kappa=cfg.eval.kappa)
    metrics.update(interval_ci(p_teacher, p_student, labels, cfg.eval.reference_class, cfg.seed))
    if cfg.eval.on_train:
        train = confidence_metrics(*p_train, train_labels[labelled],
                                   reference_class=cfg.eval.reference_class, kappa=cfg.eval.kappa)
        metrics.update({f"train_{k}": v for k, v in train.items()})
    if cfg.eval.int8:
        metrics.update(int8)
    metrics.update(vocabulary_figures(inputs, cfg.data.max_length))
    metrics["params"] = count_parameters(student)
    metrics["teacher_params"] = count_parameters(inputs.teacher)
    metrics["params_ratio"] = metrics["params"] / metrics["teacher_params"]
    metrics["latency_ms"] = latency_ms(student, inputs, device, cfg.eval.latency_batches)
    metrics["teacher_latency_ms"] = teacher_latency_ms(inputs, device,
                                                       cfg.eval.latency_batches)
    metrics["latency_ratio"] = metrics["latency_ms"] / metrics["teacher_latency_ms"] \
        if metrics["teacher_latency_ms"] > 0 else float("nan")
    metrics["student_layers"] = cfg.student_layers
    metrics["student_hidden_size"] = student.hidden_size
    metrics["layer_mapping_layers"] = ",".join(str(g) for g in inputs.mapping)
    return metrics


def vocabulary_figures(inputs: RunInputs, max_length: int) -> dict:
    """``vocabulary_size`` (the student's kept wordpieces) and ``eval_tokenised_differently``
    (the share of evaluation rows the student tokenises differently from the teacher)."""
    if inputs.vocab is None:
        return {"vocabulary_size": int(inputs.tokenizer.backend_tokenizer.get_vocab_size())
                if hasattr(inputs.tokenizer, "backend_tokenizer") else None,
                "eval_tokenised_differently": 0.0}
    from ..compute.memo import WORKER_MEMO
    from ..student.vocabulary import tokenised_differently

    def share() -> float:
        ds = inputs.splits.eval
        pairs = list(ds["text_pair"]) if "text_pair" in ds.column_names else None
        return tokenised_differently(inputs.tokenizer, inputs.vocab, list(ds["text"]), pairs,
                                     max_length)

    key = (inputs.train_fingerprint, inputs.eval_fingerprint)
    return {"vocabulary_size": inputs.vocab.size,
            "eval_tokenised_differently": WORKER_MEMO.get("vocabulary", ("differ", *key), share)}


def student_rows(inputs: RunInputs, rows: np.ndarray | None = None):
    """The students' training rows (all, or the positions ``rows``) with the student's token
    ids; only the rows asked for are mapped."""
    train = inputs.train if rows is None else inputs.train.select(rows.tolist())
    if inputs.vocab is None:
        return train
    table = inputs.vocab.to_student
    return train.map(lambda b: {"input_ids": [table[ids].tolist() for ids in b["input_ids"]]},
                     batched=True)


def interval_ci(p_teacher: np.ndarray, p_student: np.ndarray, labels: np.ndarray,
                reference_class: int, seed: int,
                n_resamples: int = DEFAULT_RESAMPLES) -> dict[str, list[float] | int]:
    """The stored intervals: ``{accuracy_student_ci, sigma_ci, sigma_max_ci: [low, high],
    n_resamples}``, paired bootstrap (teacher and student resampled together, the
    both-correct set recomputed in each resample) with the run's ``seed``."""
    intervals = paired_bootstrap(p_teacher, p_student, labels, reference_class=reference_class,
                                 n_resamples=n_resamples, seed=seed)
    out: dict[str, list[float] | int] = {interval_key(name): interval.as_list()
                                         for name, interval in intervals.items()}
    out["n_resamples"] = n_resamples
    return out


def latency_ms(student: Student, inputs: RunInputs, device: torch.device,
               n_batches: int) -> float:
    """Median wall time of one student forward on an evaluation batch (64 inputs), in ms.

    Times the first ``n_batches`` batches of the evaluation split in row order, with SDPA
    attention whatever kernel the student trained with (the kernel a saved student is served
    with); nan when ``n_batches`` is 0. Latency depends on the architecture, not on the
    weights: measured once per architecture, threads and data in a process and reused
    (:mod:`~kdtune.objectives.compute.memo`), which also keeps it identical across trials that share
    an architecture.
    """
    from ..compute.memo import WORKER_MEMO

    if n_batches <= 0:
        return float("nan")
    config = student.config
    key = (type(student.model).__name__, student.num_layers, student.hidden_size,
           int(config.num_attention_heads), int(config.intermediate_size),
           int(config.vocab_size), torch.get_num_threads(), str(device), n_batches,
           inputs.eval_fingerprint, len(inputs.eval))
    return WORKER_MEMO.get("latency", key, lambda: _time_forwards(student, inputs, device,
                                                                  n_batches))


def teacher_latency_ms(inputs: RunInputs, device: torch.device, n_batches: int) -> float:
    """:func:`latency_ms` of the teacher on the same rows (its own tokens), measured once
    per process, data and thread count: the denominator of ``latency_ratio``."""
    from ..compute.memo import WORKER_MEMO

    if n_batches <= 0:
        return float("nan")
    key = ("teacher", str(inputs.teacher.name_or_path), torch.get_num_threads(), str(device),
           n_batches, inputs.eval_fingerprint)
    return WORKER_MEMO.get("latency", key, lambda: _time_forwards(
        inputs.teacher, inputs, device, n_batches, teacher=True))


@torch.inference_mode()
def _time_forwards(student: Student, inputs: RunInputs, device: torch.device,
                   n_batches: int, teacher: bool = False) -> float:
    model = getattr(student, "model", student)
    trained_with = model.config._attn_implementation
    if trained_with != "sdpa":
        model.set_attn_implementation("sdpa")
    collate = inputs.collate if teacher else inputs.student_collate
    was_training = student.training
    student.eval()
    dataset = inputs.eval if teacher else inputs.student_eval
    times = []
    try:
        for start in range(0, min(len(dataset), n_batches * EVAL_BATCH_SIZE), EVAL_BATCH_SIZE):
            rows = [dataset[i] for i in range(start, min(start + EVAL_BATCH_SIZE, len(dataset)))]
            batch = {k: v.to(device) for k, v in collate(rows).items() if k in MODEL_INPUTS}
            t0 = time.perf_counter()
            student(**batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        if trained_with != "sdpa":
            model.set_attn_implementation(trained_with)
        student.train(was_training)
    return float(np.median(times)) if times else float("nan")
