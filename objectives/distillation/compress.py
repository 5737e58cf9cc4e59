"""Confidence after compression: a distilled student as ONNX and INT8, re-audited on test.

:func:`convert_student` writes ``DIR/onnx`` and ``DIR/int8`` beside a ``kdtune distill``
student; :func:`measure_formats` measures the float student and each format on the test split:
``accuracy`` and ``sigma`` against the teacher with 95% paired-bootstrap intervals,
``phi_cnf`` (sigma <= kappa), ``phi_cnf_upper`` (upper end <= kappa), ``sigma_vs_float``,
``agreement``, ``size_bytes``, ``latency_ms_b1`` and ``latency_ms_b32``.
Why: docs/design.md, "Compressed formats re-audited on test".
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from kdtune.errors import UsageError
from kdtune.fileio import atomic_directory

from ..measure.bootstrap import interval_key, paired_bootstrap
from ..measure.metrics import confidence_metrics, softmax
from ..measure.onnx import ONNX_FILE, export_onnx, load_student, quantize_int8
from .config import DistillConfig

REPORT_FILE = "formats.json"
LATENCY_ROWS, LATENCY_REPEATS = 64, 5


def student_config(student_dir: Path) -> DistillConfig:
    """The DistillConfig a ``kdtune distill`` student was trained with."""
    info = Path(student_dir) / "kdtune_distill.json"
    try:
        return DistillConfig.model_validate(json.loads(info.read_text())["config"])
    except (OSError, KeyError, ValueError) as e:
        raise UsageError(f"{student_dir}: no readable kdtune_distill.json (a `kdtune distill` "
                         "output names its teacher and data there); `kdtune audit` measures "
                         "any two models") from e


def convert_student(student_dir: Path, formats: tuple[str, ...]) -> dict[str, Path]:
    """Write ``formats`` (``onnx``, ``int8``) beside the float student; their directories.
    A format written before is replaced whole (each directory appears complete or not)."""
    student_dir = Path(student_dir)
    student_config(student_dir)  # refuse a directory kdtune cannot re-audit, before writing
    model, tokenizer = load_student(student_dir)
    out: dict[str, Path] = {}
    if formats:
        with atomic_directory(student_dir / "onnx", overwrite=True) as tmp:
            export_onnx(model, tokenizer, tmp)
        out["onnx"] = student_dir / "onnx"
    if "int8" in formats:
        with atomic_directory(student_dir / "int8", overwrite=True) as tmp:
            quantize_int8(out["onnx"], tmp)
        out["int8"] = student_dir / "int8"
    return out


def _size(path: Path) -> int:
    if (path / ONNX_FILE).is_file():
        return (path / ONNX_FILE).stat().st_size
    return sum(p.stat().st_size for p in path.glob("*.safetensors")) or sum(
        p.stat().st_size for p in path.glob("*.bin"))


def _latency(model: Any, encoded: Any, collate: Any, batch: int) -> float:
    """Median milliseconds per example over LATENCY_REPEATS passes of the first rows."""
    import torch

    from ..compute.predict import MODEL_INPUTS

    rows = [encoded[i] for i in range(min(LATENCY_ROWS, len(encoded)))]
    batches = [collate(rows[i:i + batch]) for i in range(0, len(rows), batch)]
    batches = [{k: v for k, v in b.items() if k in MODEL_INPUTS} for b in batches]
    times = []
    with torch.inference_mode():
        model(**batches[0])  # warm-up
        for _ in range(LATENCY_REPEATS):
            t0 = time.perf_counter()
            for b in batches:
                model(**b)
            times.append((time.perf_counter() - t0) * 1000 / len(rows))
    return float(np.median(times))


def measure_formats(student_dir: Path, formats: tuple[str, ...], threads: int = 1,
                    progress: Any = None) -> dict[str, Any]:
    """The float student and each of ``formats`` on the test split (module docstring);
    also written to ``DIR/formats.json``."""
    import torch

    from ..compute.predict import predict_logits
    from ..data.dataset import load_splits
    from ..data.tokens import data_collator, tokenize
    from ..teacher.load import load_teacher

    student_dir = Path(student_dir)
    cfg = student_config(student_dir)
    torch.set_num_threads(threads)
    splits = load_splits(cfg.data)
    labels = np.asarray(splits.test["label"], dtype=np.int64)
    teacher, t_tok = load_teacher(cfg.teacher)
    p_teacher = softmax(predict_logits(teacher, tokenize(splits.test, t_tok, cfg.data.max_length),
                                       data_collator(t_tok)))
    ref, kappa = cfg.eval.reference_class, cfg.eval.kappa
    rows: dict[str, dict[str, Any]] = {}
    p_float = None
    for name in ("float", *formats):
        path = student_dir if name == "float" else student_dir / name
        model, tok = load_student(path, threads=threads)
        encoded, collate = tokenize(splits.test, tok, cfg.data.max_length), data_collator(tok)
        p = softmax(predict_logits(model, encoded, collate))
        p_float = p if p_float is None else p_float
        m = confidence_metrics(p_teacher, p, labels, reference_class=ref, kappa=kappa)
        ivs = paired_bootstrap(p_teacher, p, labels, reference_class=ref, seed=cfg.seed)
        upper = ivs["sigma"].as_list()[1]
        rows[name] = {
            "accuracy": m["accuracy_student"],
            interval_key("accuracy"): ivs["accuracy_student"].as_list(),
            "sigma": m["sigma"], interval_key("sigma"): ivs["sigma"].as_list(),
            "phi_cnf": bool(m["sigma"] <= kappa),
            "phi_cnf_upper": bool(upper is not None and upper <= kappa),
            "sigma_vs_float": confidence_metrics(p_float, p, labels, reference_class=ref,
                                                 kappa=kappa)["sigma"],
            "agreement": float(np.mean(p.argmax(1) == p_float.argmax(1))),
            "size_bytes": _size(path),
            "latency_ms_b1": _latency(model, encoded, collate, 1),
            "latency_ms_b32": _latency(model, encoded, collate, 32),
            "path": str(path),
        }
        if progress is not None:
            progress(name, rows[name])
    report = {"split": "test", "n": len(labels), "threads": threads, "kappa": kappa,
              "teacher": str(cfg.teacher), "formats": rows,
              "quantisation": "ONNX Runtime dynamic INT8 (QInt8 weights)"}
    (student_dir / REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report
