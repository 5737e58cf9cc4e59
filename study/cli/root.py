"""The ``kdtune`` command line.

Each command only parses its arguments and calls one plain function elsewhere in ``study``,
``objectives`` or ``storage``. Commands whose output is data take ``--json``. :func:`main` runs a
command: a :class:`~kdtune.errors.KdtuneError` exits with its ``exit_code`` (2: a bad flag, config
or input; 1: a runtime failure), any other exception is a bug; a command stopped by SIGINT exits
130, by SIGTERM 143 (:mod:`kdtune.study.signals`).

Why: docs/design.md, "CLI errors and exit codes".
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from kdtune.errors import UsageError

from ..signals import Stopped, StopSignals, as_stopped
from .common import (
    AuditSetOpt,
    ConfigArg,
    DistillSetOpt,
    JsonOpt,
    ObjectiveOpt,
    SetOpt,
    StorageOpt,
    StudyOpt,
    TeacherSetOpt,
    emit,
    print_json,
    quiet_library_bars,
    quiet_optuna,
)
from .config import config_app
from .exits import report, stopped, usage_error
from .formats import FormatsOpt, register_format_commands
from .storage import storage_app
from .studies import studies_app
from .verdict import register_front_commands, test_after_run

app = typer.Typer(
    name="kdtune",
    help="Hyperparameter optimisation for knowledge distillation of BERT classifiers: "
    "student accuracy against confidence preservation, on Optuna + PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
teacher_app = typer.Typer(help="Teachers: fine-tune a BERT checkpoint into a classifier.",
                          no_args_is_help=True)
app.add_typer(storage_app, name="storage")
app.add_typer(config_app, name="config")
app.add_typer(teacher_app, name="teacher")
app.add_typer(studies_app, name="studies")

_state = {"debug": False}


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show an error's traceback")] = False,
    version: Annotated[bool, typer.Option("--version", help="print the version")] = False,
) -> None:
    _state["debug"] = debug
    quiet_library_bars()
    quiet_optuna()
    if version:
        from kdtune import __version__

        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


# --------------------------------------------------------------------------- teacher


@teacher_app.command("fit")
def teacher_fit_cmd(
    output: Annotated[Path, typer.Option("-o", "--output", help="directory to save the teacher")],
    config: Annotated[Path | None, typer.Option("--config", help="teacher config (YAML)")] = None,
    overrides: TeacherSetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a BERT checkpoint (default: the packaged MiniLM) on a dataset."""
    from kdtune.objectives.teacher.fit import fit_teacher
    from kdtune.study.config import load_teacher_fit

    cfg = load_teacher_fit(config, overrides or [], output)
    metrics = fit_teacher(cfg, output, progress=not as_json)
    emit(as_json, metrics, f"teacher saved to {output}: test accuracy "
         f"{metrics['test_accuracy']:.4f} ({metrics['seconds']:.0f} s)")


# --------------------------------------------------------------------------- studies


@app.command("init")
def init_cmd(
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="where to write the example config")] = Path("kdtune.yaml"),
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a commented example study config."""
    from kdtune.study.cli.templates import write_example_config

    write_example_config(output, force=force)
    typer.echo(f"wrote {output}")


@app.command("create")
def create_cmd(
    config: ConfigArg, overrides: SetOpt = None, storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create the study (once; safe to repeat) and store its config with it."""
    from kdtune.study.service import create_study, load_study_config

    cfg = load_study_config(config, overrides or [], storage)
    info = create_study(cfg)
    emit(as_json, info, f"study {info['study']} ready in {info['storage']} "
         f"({info['trials']} trials so far)")


@app.command("run")
def run_cmd(
    config: ConfigArg,
    workers: Annotated[int, typer.Option(
        "--workers", "-w", min=1, help="local worker processes")] = 2,
    trials: Annotated[int | None, typer.Option("--trials", "-n", min=1,
                                               help="trial budget (default: n_trials)")] = None,
    overrides: SetOpt = None,
    storage: StorageOpt = None,
    objective: ObjectiveOpt = None,
    no_test: Annotated[bool, typer.Option("--no-test", help="skip `kdtune test` after it")] = False,
) -> None:
    """Create the study and run local worker processes until the budget is finished.

    Each worker is a `kdtune worker --study NAME --index I --threads N` subprocess; the CPU
    cores are shared out among them unless distill.threads is set. Ctrl-C or SIGTERM is
    passed on to the workers (each ends its trial cleanly), and `run` waits for them.
    Then, unless --no-test, `kdtune test` measures the Pareto front on the test split.
    """
    from kdtune.study.local import run_study, worker_threads
    from kdtune.study.service import load_study_config

    cfg = load_study_config(config, overrides or [], storage, n_trials=trials)
    run_study(cfg, workers=workers, objective=objective)
    if not no_test:
        test_after_run(cfg.name, cfg.storage, worker_threads(cfg, workers))


@app.command("worker")
def worker_cmd(
    study: StudyOpt,
    storage: StorageOpt = None,
    index: Annotated[int, typer.Option("--index", help="worker index (reseeds the sampler); "
                                       "default: from $JOB_COMPLETION_INDEX or the pid")] = -1,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, envvar="KDTUNE_THREADS",
        help="torch threads per trial whose config leaves distill.threads unset")] = None,
    db_wait: Annotated[float, typer.Option(
        "--db-wait", min=0.001, envvar="KDTUNE_DB_WAIT",
        help="seconds to wait for an unavailable database before giving up")] = 300.0,
    objective: ObjectiveOpt = None,
) -> None:
    """Join an existing study and pull trials until its budget is reached.

    SIGINT/SIGTERM end the current trial cleanly (it is re-queued); the worker then exits
    130/143.
    """
    from kdtune.study.worker import run_worker

    run_worker(study, storage, index=None if index < 0 else index, objective=objective,
               threads=threads, db_wait=db_wait)


@app.command("status")
def status_cmd(study: StudyOpt, storage: StorageOpt = None, as_json: JsonOpt = False) -> None:
    """Trial counts by state and the Pareto front size."""
    from kdtune.study.service import study_status

    info = study_status(study, storage)
    if as_json:
        print_json(info)
    else:
        for k, v in info.items():
            typer.echo(f"{k:>16}: {v}")


register_front_commands(app)  # pareto, test, rescore (kdtune.study.cli.verdict)
register_format_commands(app)  # convert (kdtune.study.cli.formats)


@app.command("report")
def report_cmd(
    study: StudyOpt,
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="report directory")] = Path("report"),
    storage: StorageOpt = None,
) -> None:
    """Pareto front, hypervolume history and parameter importances as HTML and PNG."""
    from kdtune.study.report.html import write_report

    paths = write_report(study, storage, output)
    typer.echo(f"report written to {paths['html']}")


@app.command("export")
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


@app.command("distill")
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


@app.command("dashboard")
def dashboard_cmd(
    storage: StorageOpt = None,
    host: Annotated[str, typer.Option("--host", help="address to serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to serve on")] = 8080,
    allow_writes: Annotated[bool, typer.Option(
        "--allow-writes", help="let notes, renames and deletions through")] = False,
) -> None:
    """Serve optuna-dashboard: read-only; beyond 127.0.0.1 only with $KDTUNE_DASHBOARD_TOKEN."""
    from kdtune.study.dashboard.server import serve

    serve(storage, host=host, port=port, allow_writes=allow_writes)


@app.command("audit")
def audit_cmd(
    teacher_preds: Annotated[Path | None, typer.Option(
        "--teacher-preds", help="the teacher's predictions: a CSV of label, p0..pK-1")] = None,
    student_preds: Annotated[Path | None, typer.Option(
        "--student-preds", help="the student's predictions, the same rows")] = None,
    teacher: Annotated[str | None, typer.Option("--teacher", help="teacher directory")] = None,
    student: Annotated[str | None, typer.Option("--student", help="student directory")] = None,
    overrides: AuditSetOpt = None,
    split: Annotated[str, typer.Option("--split", help="train, eval or test")] = "test",
    kappa: Annotated[float | None, typer.Option("--kappa", help="default 0.05")] = None,
    reference_class: Annotated[int | None, typer.Option(
        "--reference-class", help="class c of sigma (default 0)")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="study or exported config: "
                                                "its teacher, data and max length")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Confidence-preservation report from prediction files or from two model directories.

    Data options for model directories come from --config (a study's or `kdtune export`'s
    file: --split eval then reproduces a trial's sigma) and --set data.source=... overrides.
    """
    from kdtune.objectives.measure.audit import audit, audit_models, print_audit
    from kdtune.study.cli.audit_options import audit_options

    opts = audit_options(config, teacher, student, kappa, reference_class)
    teacher, kappa, reference_class = opts["teacher"], opts["kappa"], opts["reference_class"]
    given = [x is not None for x in (teacher_preds, student_preds, teacher, student)]
    if given not in ([True, True, False, False], [False, False, True, True]):
        raise UsageError("give --teacher-preds and --student-preds, or --teacher and "
                         "--student (one pair, both of it)")
    if teacher_preds is not None:
        report = audit(teacher_preds, student_preds, kappa=kappa,
                       reference_class=reference_class)
    else:
        report = audit_models(teacher, student, overrides or [], split=split, kappa=kappa,
                              reference_class=reference_class, base=opts["base"])
    if as_json:
        print_json(report)
    else:
        print_audit(report)


@app.command("demo")
def demo_cmd(
    workers: Annotated[int, typer.Option(
        "--workers", "-w", min=1, help="local worker processes")] = 2,
    trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="trial budget")] = 8,
) -> None:
    """Everything on the embedded default: data, teacher, a small study, Pareto, export."""
    from kdtune.study.cli.demo import run_demo

    run_demo(workers=workers, trials=trials)


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (see the module docstring for errors and signals)."""
    import warnings

    # Optuna's experimental flags (heartbeats, metric names, retry callbacks), and its warning
    # on every ask about the heartbeats kdtune workers run themselves: nothing users can act on.
    warnings.filterwarnings("ignore", message=r".*(experimental|deprecated).*")
    warnings.filterwarnings("ignore", message=r"Heartbeat of storage is supposed to be used")
    _state["debug"] = False
    stops = StopSignals()
    try:
        with stops:
            code = _invoke(argv)
    except KeyboardInterrupt:  # a signal between the command's end and the handlers' reset
        return stopped(Stopped(signal.SIGINT))
    except Stopped as e:
        return stopped(e)
    signum = stops.last()
    if code == 0 and signum is not None:  # the command (a worker) caught the signal itself
        return stopped(Stopped(signum))
    return code


def _invoke(argv: list[str] | None) -> int:
    """Run the command line; map every way it can end to an exit code."""
    import click

    command = typer.main.get_command(app)
    # typer >= 0.29 raises its own copies of click's Exit/Abort/UsageError classes.
    exits = (click.exceptions.Exit, typer.Exit)
    aborts = (click.exceptions.Abort, typer.Abort)
    try:
        rv = command.main(args=argv, prog_name="kdtune", standalone_mode=False)
    except exits as e:
        return int(getattr(e, "exit_code", 0) or 0)
    except aborts:
        sys.stderr.write("kdtune: aborted\n")
        return 130
    except KeyboardInterrupt:
        return stopped(Stopped(signal.SIGINT))
    except Stopped as e:
        return stopped(e)
    except Exception as e:
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # click's usage errors
            return usage_error(e)
        return report(e, _state["debug"])
    if rv == 130:  # typer turns a KeyboardInterrupt into exit code 130, silently
        return stopped(Stopped(signal.SIGINT))
    return 0
