"""The production check: a trained student measured on the test split, which no trial reads.

:func:`measure_test_split` measures the production student and its teacher on the data config's
``test`` split: :func:`~kdtune.objectives.measure.metrics.confidence_metrics` plus paired
bootstrap 95% percentile intervals. :func:`production_check` puts the trial's selection-split
figures beside those test figures and says whether phi_cnf holds on test twice:
``sigma_test <= kappa`` and, stricter, ``sigma_ci_test[1] <= kappa``.
Why: docs/design.md, "Production check on the unread test split".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..measure.bootstrap import DEFAULT_RESAMPLES, interval_key, paired_bootstrap
from ..measure.metrics import confidence_metrics, softmax
from .config import DistillConfig

__all__ = ["CHECK_FILE", "SELECTION_KEYS", "TEST_KEYS", "interval_upper", "measure_test_split",
           "production_check", "student_facts", "verdict"]

CHECK_FILE = "production_check.json"
"""The file ``kdtune distill`` writes beside the student."""

SELECTION_KEYS = ("accuracy_student", "accuracy_student_ci", "accuracy_teacher", "sigma",
                  "sigma_ci", "sigma_max", "sigma_max_ci", "sigma_per_class",
                  "n_both_correct", "n_all", "phi_cnf", "params", "n_resamples")
"""The trial figures the check copies (those the trial has)."""

TEST_KEYS = ("accuracy_student", "accuracy_student_ci", "accuracy_teacher", "sigma",
             "sigma_ci", "sigma_max", "sigma_max_ci", "sigma_per_class", "sigma_label",
             "agreement", "n_both_correct", "n_all", "phi_cnf", "ece_student", "ece_teacher")
"""The test-split figures the check keeps."""

BATCH_SIZE = 64
"""Inputs per forward on the test split."""


def measure_test_split(cfg: DistillConfig, student: Any, tokenizer: Any, *, teacher: Any = None,
                 splits: Any = None, device: Any = None,
                 n_resamples: int = DEFAULT_RESAMPLES,
                 teacher_tokenizer: Any = None) -> dict[str, Any]:
    """The student's and teacher's figures on ``cfg.data``'s test split, with intervals.

    Args:
        cfg: the run's config (data, seed, ``eval.kappa``, ``eval.reference_class``).
        student: the trained student (any sequence classifier returning ``logits``).
        tokenizer: the student's tokenizer, truncating at ``data.max_length``.
        teacher_tokenizer: the teacher's (default: ``tokenizer``); when it differs (a task
            vocabulary) ``tokenised_differently`` is the share of test rows the two
            tokenise differently.
        teacher: the loaded teacher; loaded from ``cfg.teacher`` when ``None``.
        splits: the run's :class:`~kdtune.objectives.data.dataset.Splits`; loaded when ``None``.
        device: where to run both models; ``cfg.device`` resolved when ``None``.
        n_resamples: bootstrap resamples behind each interval.

    Returns:
        The :data:`TEST_KEYS` figures of :func:`confidence_metrics`, ``accuracy_student_ci``,
        ``sigma_ci`` and ``sigma_max_ci`` (``[low, high]``), ``n_resamples``, ``split``
        (``"test"``), ``max_length`` and ``seed`` (of the resamples).
    """
    from ..compute.device import resolve_device
    from ..compute.predict import predict_logits
    from ..data.tokens import data_collator, tokenize

    device = resolve_device(cfg.device) if device is None else device
    if splits is None:
        from ..data.dataset import load_splits

        splits = load_splits(cfg.data)
    if teacher is None:
        from ..teacher.load import load_teacher

        teacher = load_teacher(cfg.teacher)[0]
    teacher_tokenizer = tokenizer if teacher_tokenizer is None else teacher_tokenizer
    encoded = tokenize(splits.test, tokenizer, cfg.data.max_length)
    t_encoded = (encoded if teacher_tokenizer is tokenizer
                 else tokenize(splits.test, teacher_tokenizer, cfg.data.max_length))
    labels = np.asarray(splits.test["label"], dtype=np.int64)
    teacher_device = next(teacher.parameters()).device
    teacher.to(device)
    try:
        p_teacher = softmax(predict_logits(teacher, t_encoded, data_collator(teacher_tokenizer),
                                           device, BATCH_SIZE))
    finally:
        teacher.to(teacher_device)
    p_student = softmax(predict_logits(student, encoded, data_collator(tokenizer), device,
                                       BATCH_SIZE))
    ref = cfg.eval.reference_class
    metrics = confidence_metrics(p_teacher, p_student, labels, reference_class=ref,
                                 kappa=cfg.eval.kappa)
    out: dict[str, Any] = {k: metrics[k] for k in TEST_KEYS if k in metrics}
    intervals = paired_bootstrap(p_teacher, p_student, labels, reference_class=ref,
                                 n_resamples=n_resamples, seed=cfg.seed)
    out.update({interval_key(name): iv.as_list() for name, iv in intervals.items()})
    out.update(n_resamples=n_resamples, split="test", max_length=cfg.data.max_length,
               seed=cfg.seed, tokenised_differently=_differ(t_encoded, encoded, tokenizer,
                                                             teacher_tokenizer))
    return {k: out[k] for k in (*TEST_KEYS, "n_resamples", "split", "max_length", "seed",
                                "tokenised_differently") if k in out}


def _differ(t_encoded: Any, encoded: Any, tokenizer: Any, teacher_tokenizer: Any) -> float:
    """The share of rows whose student pieces differ from the teacher's (0 when they share
    a tokenizer)."""
    if t_encoded is encoded:
        return 0.0
    t_pieces = [teacher_tokenizer.convert_ids_to_tokens(r) for r in t_encoded["input_ids"]]
    s_pieces = [tokenizer.convert_ids_to_tokens(r) for r in encoded["input_ids"]]
    return sum(a != b for a, b in zip(t_pieces, s_pieces, strict=True)) / max(1, len(s_pieces))


def production_check(cfg: DistillConfig, test: dict[str, Any], trial: dict[str, Any] | None,
                     source: dict[str, Any] | None = None,
                     production_selection: dict[str, Any] | None = None) -> dict[str, Any]:
    """The production check: the trial's promise, the test figures, the phi_cnf verdicts.

    Args:
        cfg: the run's config (``eval.kappa``, ``eval.reference_class``).
        test: :func:`measure_test_split`' dict.
        trial: the trial's metrics as ``kdtune export`` recorded them (selection split);
            ``None`` for a hand-written config.
        source: the export's provenance (study, trial, pick, rule), if any.
        production_selection: the production run's own figures on the selection split.

    Returns:
        ``{"kappa", "reference_class", "selection_split", "trial", "source",
        "production_selection", "test", "phi_cnf_test", "phi_cnf_test_upper",
        "sigma_test_upper", "student", "verdict"}`` (``student``: :func:`student_facts`):
        ``phi_cnf_test`` is ``sigma_test <= kappa``, ``phi_cnf_test_upper`` is
        ``sigma_ci[1] <= kappa`` on test (``False`` when the interval is undefined),
        ``verdict`` one line saying both.
    """
    kappa = cfg.eval.kappa
    sigma = _finite(test.get("sigma"))
    upper = interval_upper(test.get("sigma_ci"))
    holds = sigma is not None and sigma <= kappa
    holds_upper = upper is not None and upper <= kappa
    picked = None if trial is None else {k: trial[k] for k in SELECTION_KEYS if k in trial}
    keep = ("accuracy_student", "accuracy_student_ci", "sigma", "sigma_ci", "phi_cnf",
            "n_all", "n_eval")
    prod_sel = None if production_selection is None else {
        k: production_selection[k] for k in keep if k in production_selection}
    check = {
        "kappa": kappa,
        "reference_class": cfg.eval.reference_class,
        "selection_split": "eval",
        "trial": picked,
        "source": source,
        "production_selection": prod_sel,
        "test": test,
        "phi_cnf_test": holds,
        "phi_cnf_test_upper": holds_upper,
        "sigma_test_upper": upper,
        "student": student_facts(cfg, production_selection or {}),
    }
    check["verdict"] = verdict(check)
    return check


def student_facts(cfg: DistillConfig, m: dict[str, Any]) -> dict[str, Any]:
    """What the production student is: the data it learnt on, its vocabulary, the alignment
    temperature folded into it, and its size on both axes against the teacher's."""
    return {"students": cfg.data.students, "transfer_text": cfg.data.transfer.text,
            "augment": cfg.data.transfer.augment, "vocabulary": cfg.vocabulary,
            **{k: _json_number(m.get(k)) for k in ("vocabulary_size", "align_temperature",
                                                   "params", "params_ratio", "latency_ms",
                                                   "latency_ratio")}}


def _json_number(value: Any) -> Any:
    """A figure as JSON keeps it: a plain int or float, None for a missing or non-finite one."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return _finite(value) if not isinstance(value, np.floating) else _finite(float(value))


def verdict(check: dict[str, Any]) -> str:
    """One line: the test figures with intervals and whether phi_cnf holds on test."""
    test, kappa = check["test"], check["kappa"]
    sigma = _finite(test.get("sigma"))
    acc = f"accuracy {_with_ci(test.get('accuracy_student'), test.get('accuracy_student_ci'))}"
    if sigma is None:
        return (f"test split (n={test.get('n_all')}): {acc}; phi_cnf cannot be judged on test "
                f"(only {test.get('n_both_correct')} inputs both models get right)")
    sigma_text = _with_ci(sigma, test.get("sigma_ci"))
    head = f"test split (n={test.get('n_all')}): {acc}, sigma {sigma_text}"
    upper = check["sigma_test_upper"]
    upper_text = "no interval" if upper is None else f"upper end {upper:.4f}"
    if check["phi_cnf_test_upper"]:
        state = f"phi_cnf holds on test, interval included ({upper_text} <= kappa {kappa:g})"
    elif check["phi_cnf_test"]:
        state = (f"phi_cnf holds on test (sigma <= kappa {kappa:g}) but not with the "
                 f"interval's {upper_text}")
    else:
        state = f"phi_cnf FAILS on test (sigma {sigma:.4f} > kappa {kappa:g})"
    return f"{head}; {state}"


def _with_ci(value: Any, ci: Any) -> str:
    v = _finite(value)
    text = "nan" if v is None else f"{v:.4f}"
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_finite(c) is not None for c in ci):
        text += f" [{ci[0]:.4f}, {ci[1]:.4f}]"
    return text


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def interval_upper(ci: Any) -> float | None:
    """The upper end of a stored ``[low, high]`` interval; ``None`` when absent or not finite."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return None
    return _finite(ci[1])
