"""From a chosen trial to a production student: ``kdtune export`` and ``kdtune distill``."""

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
from .formats import FormatsOpt


def register_production_commands(app: typer.Typer) -> None:
    """Add ``export`` and ``distill`` to ``app``."""
    app.command("export")(export_cmd)
    app.command("distill")(distill_cmd)


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
    formats: FormatsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a production distillation from an exported config and save the student.

    Interrupted (Ctrl-C, SIGTERM), it saves nothing: no partial student directory is left.
    --formats onnx,int8 then converts it and re-audits each format (kdtune convert).
    """
    from kdtune.objectives.measure.onnx import parse_formats

    wanted = parse_formats(formats)  # a bad name is refused before anything is trained
    try:
        from kdtune.study.export.trial import distill_from_file

        info = distill_from_file(config, output, overrides or [], progress=not as_json)
        if wanted:
            from kdtune.study.export.formats import convert_and_audit

            info["formats"] = convert_and_audit(output, wanted, progress=not as_json)
    except (KeyboardInterrupt, Stopped) as e:
        raise as_stopped(e, f"no student saved to {output}") from e
    emit(as_json, info, f"student saved to {output}: accuracy {info['accuracy_student']:.4f}, "
         f"sigma {info['sigma']:.4f}, phi_cnf {'holds' if info['phi_cnf'] else 'fails'} "
         f"(eval split); {info['production_check']['verdict']}")
