"""From a chosen trial to a production student: ``kdtune export``, ``kdtune distill`` and
``kdtune convert`` (ONNX and INT8 formats, :mod:`kdtune.study.export.formats`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..signals import Stopped, as_stopped
from .common import (
    DistillSetOpt,
    JsonOpt,
    StorageOpt,
    StudyOpt,
    emit,
)

FormatsOpt = Annotated[str | None, typer.Option(
    "--formats", help="also write and re-audit these formats: onnx, int8 (comma-separated; "
    "needs the onnx extra)")]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, help="CPU threads for the "
                                         "measurements (PyTorch and ONNX Runtime alike)")]


def register_production_commands(app: typer.Typer) -> None:
    """Add ``convert``, ``export`` and ``distill`` to ``app``."""
    app.command("convert")(convert_cmd)
    app.command("export")(export_cmd)
    app.command("distill")(distill_cmd)


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


def export_cmd(
    study: StudyOpt,
    pick: Annotated[str, typer.Option("--pick", help="knee, max-accuracy, min-sigma, feasible "
                                      "or trial:N")] = "knee",
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="the exported config")] = Path("best.yaml"),
    rule: Annotated[str, typer.Option("--rule", help="feasible: plain (sigma <= kappa) or "
                                      "interval (sigma_ci upper end <= kappa)")] = "plain",
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the chosen trial as a complete distillation config for `kdtune distill`."""
    from kdtune.study.export.trial import export_trial

    info = export_trial(study, storage, pick, output, rule)
    emit(as_json, info, f"trial {info['trial']} ({info['picked_by']}) exported to {output}")


def distill_cmd(
    config: Annotated[Path, typer.Argument(help="distillation config (from kdtune export)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="student directory to write")],
    overrides: DistillSetOpt = None,
    teacher: Annotated[str | None, typer.Option(
        "--teacher", metavar="DIR", help="the teacher's checkpoint directory on this machine "
        "(default: the export's path, else this home's teacher cache); it must be the teacher "
        "the export recorded")] = None,
    refit_teacher: Annotated[bool, typer.Option(
        "--refit-teacher", help="no teacher here: fit it again from the recipe the export "
        "recorded (minutes; figures may differ slightly from the study's)")] = False,
    formats: FormatsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a production distillation from an exported config and save the student.

    The teacher is looked up here (--teacher, the export's path, this home's teacher cache)
    and refused when it is not the one the export recorded.
    Interrupted (Ctrl-C, SIGTERM), it saves nothing: no partial student directory is left.
    --formats onnx,int8 then converts it and re-audits each format (kdtune convert).
    """
    from kdtune.objectives.measure.onnx import parse_formats

    wanted = parse_formats(formats)  # a bad name is refused before anything is trained
    try:
        from kdtune.study.export.trial import distill_from_file

        info = distill_from_file(config, output, overrides or [], progress=not as_json,
                                 teacher=teacher, refit_teacher=refit_teacher)
        if wanted:
            from kdtune.study.export.formats import convert_and_audit

            info["formats"] = convert_and_audit(output, wanted, progress=not as_json)
    except (KeyboardInterrupt, Stopped) as e:
        raise as_stopped(e, f"no student saved to {output}") from e
    emit(as_json, info, f"student saved to {output}: accuracy {info['accuracy_student']:.4f}, "
         f"sigma {info['sigma']:.4f}, phi_cnf {'holds' if info['phi_cnf'] else 'fails'} "
         f"(eval split); {info['production_check']['verdict']}")
