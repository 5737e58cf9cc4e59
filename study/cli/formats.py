"""``kdtune convert STUDENT_DIR --formats onnx,int8`` (:mod:`kdtune.study.export.formats`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import JsonOpt, emit

FormatsOpt = Annotated[str | None, typer.Option(
    "--formats", help="also write and re-audit these formats: onnx, int8 (comma-separated; "
    "needs the onnx extra)")]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, help="CPU threads for the "
                                         "measurements (PyTorch and ONNX Runtime alike)")]


def register_format_commands(app: typer.Typer) -> None:
    """Add ``convert`` to ``app``."""
    app.command("convert")(convert_cmd)


def convert_cmd(
    student: Annotated[Path, typer.Argument(help="a `kdtune distill` student directory")],
    formats: FormatsOpt = "onnx,int8",
    threads: ThreadsOpt = 1,
    as_json: JsonOpt = False,
) -> None:
    """Write ONNX / INT8 versions of a student beside it and re-audit each on the test split.

    Accuracy, sigma against the teacher (95% interval), sigma against the float student,
    label agreement, size and latency, into STUDENT/formats.json and its model card.
    """
    from kdtune.objectives.measure.onnx import parse_formats

    from ..export.formats import convert_and_audit

    report = convert_and_audit(student, parse_formats(formats), threads, progress=not as_json)
    emit(as_json, report, "\n".join(format_lines(report)))


def format_lines(report: dict) -> list[str]:
    """One line per format: accuracy, sigma, size and latency."""
    base = report["formats"]["float"]
    return [f"{name}: accuracy {r['accuracy']:.4f}, sigma {r['sigma']:.4f} "
            f"[{r['sigma_ci'][0]:.4f}, {r['sigma_ci'][1]:.4f}], vs float {r['sigma_vs_float']:.4f}"
            f", agreement {r['agreement']:.1%}, {r['size_bytes'] / base['size_bytes']:.2f}x "
            f"size, {r['latency_ms_b1']:.2f} ms (batch 1) -> {r['path']}"
            for name, r in report["formats"].items()]
