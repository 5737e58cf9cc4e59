"""The ``kdtune`` command line.

Each command only parses its arguments and calls one plain function elsewhere in
``study``, ``objectives`` or ``storage``. Commands whose output is data take ``--json``.

Errors (:func:`main`): a :class:`~kdtune.errors.KdtuneError` prints one line per problem,
``kdtune: error: <problem>``, and exits with its ``exit_code`` (2: a bad flag, config or
input; 1: a runtime failure such as an unreachable storage); bad command lines exit 2. Any
other exception is a bug: one line says so and that ``kdtune --debug`` shows its traceback.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from kdtune.errors import ConfigError, KdtuneError, UsageError

app = typer.Typer(
    name="kdtune",
    help="Hyperparameter optimisation for knowledge distillation of BERT classifiers: "
    "student accuracy against confidence preservation, on Optuna + PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
storage_app = typer.Typer(help="Where studies live: the embedded PostgreSQL server or a URL.",
                          no_args_is_help=True)
teacher_app = typer.Typer(help="Teachers: fine-tune a BERT checkpoint into a classifier.",
                          no_args_is_help=True)
app.add_typer(storage_app, name="storage")
app.add_typer(teacher_app, name="teacher")

_state = {"debug": False}

StorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="postgresql:// or sqlite:/// URL; default $KDTUNE_STORAGE, "
                 "else the embedded PostgreSQL server"),
]
StudyOpt = Annotated[str, typer.Option("--study", help="study name")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="dotted override, e.g. --set search.temperature.high=8"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
ConfigArg = Annotated[Path, typer.Argument(help="study config (YAML)")]


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _emit(as_json: bool, data, line: str) -> None:
    """``data`` as JSON with ``--json``, else the one human-readable ``line``."""
    if as_json:
        _print_json(data)
    else:
        typer.echo(line)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show an error's traceback")] = False,
    version: Annotated[bool, typer.Option("--version", help="print the version")] = False,
) -> None:
    _state["debug"] = debug
    if version:
        from kdtune import __version__

        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


# --------------------------------------------------------------------------- storage


@storage_app.command("url")
def storage_url_cmd(storage: StorageOpt = None) -> None:
    """Print the storage URL (password masked), starting the embedded server if needed."""
    from kdtune.storage import mask_url, storage_url

    typer.echo(mask_url(storage_url(storage)))


@storage_app.command("start")
def storage_start_cmd() -> None:
    """Start the embedded PostgreSQL server (it keeps running after this exits)."""
    from kdtune.storage import embedded

    url = embedded.start()
    typer.echo(f"embedded PostgreSQL running in {embedded.data_dir()}: {url}")


@storage_app.command("stop")
def storage_stop_cmd() -> None:
    """Stop the embedded PostgreSQL server."""
    from kdtune.storage import embedded

    typer.echo("stopped" if embedded.stop() else "not running")


@storage_app.command("status")
def storage_status_cmd(as_json: JsonOpt = False) -> None:
    """Say whether the embedded PostgreSQL server is running."""
    from kdtune.storage import embedded

    st = embedded.status()
    data = {"running": st.running, "data_dir": str(st.data_dir), "pid": st.pid, "url": st.url()}
    _emit(as_json, data, f"embedded PostgreSQL: {'running' if st.running else 'stopped'} "
          f"({st.data_dir})" + (f", pid {st.pid}, {st.url()}" if st.running else ""))


# --------------------------------------------------------------------------- teacher


@teacher_app.command("fit")
def teacher_fit_cmd(
    output: Annotated[Path, typer.Option("-o", "--output", help="directory to save the teacher")],
    config: Annotated[Path | None, typer.Option("--config", help="teacher config (YAML)")] = None,
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a BERT checkpoint (default: the packaged MiniLM) on a dataset."""
    from kdtune.objectives.teacher_fit import fit_teacher
    from kdtune.study.config import load_teacher_fit

    cfg = load_teacher_fit(config, overrides or [], output)
    metrics = fit_teacher(cfg, output, progress=not as_json)
    _emit(as_json, metrics, f"teacher saved to {output}: test accuracy "
          f"{metrics['test_accuracy']:.4f} ({metrics['seconds']:.0f} s)")


# --------------------------------------------------------------------------- studies


@app.command("init")
def init_cmd(
    output: Annotated[Path, typer.Option("-o", "--output")] = Path("kdtune.yaml"),
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a commented example study config."""
    from kdtune.study.templates import write_example_config

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
    _emit(as_json, info, f"study {info['study']} ready in {info['storage']} "
          f"({info['trials']} trials so far)")


@app.command("run")
def run_cmd(
    config: ConfigArg,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1)] = 2,
    trials: Annotated[int | None, typer.Option("--trials", "-n", min=1,
                                               help="trial budget (default: n_trials)")] = None,
    overrides: SetOpt = None,
    storage: StorageOpt = None,
) -> None:
    """Create the study and run local worker processes until the budget is finished.

    Each worker is a `kdtune worker --study NAME --index I --threads N` subprocess; the CPU
    cores are shared out among them unless distill.threads is set.
    """
    from kdtune.study.service import load_study_config, run_study

    cfg = load_study_config(config, overrides or [], storage, n_trials=trials)
    run_study(cfg, workers=workers)


@app.command("worker")
def worker_cmd(
    study: StudyOpt,
    storage: StorageOpt = None,
    index: Annotated[int, typer.Option("--index", help="worker index (reseeds the sampler); "
                                       "default: from $JOB_COMPLETION_INDEX or the pid")] = -1,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, envvar="KDTUNE_THREADS",
        help="torch threads per trial whose config leaves distill.threads unset")] = None,
    objective: Annotated[str | None, typer.Option(
        "--objective", hidden=True,
        help="module:function objective factory, called with the study config "
        "(tests and benchmarks)")] = None,
) -> None:
    """Join an existing study and pull trials until its budget is reached."""
    from kdtune.study.worker import run_worker

    run_worker(study, storage, index=None if index < 0 else index, objective=objective,
               threads=threads)


@app.command("status")
def status_cmd(study: StudyOpt, storage: StorageOpt = None, as_json: JsonOpt = False) -> None:
    """Trial counts by state and the Pareto front size."""
    from kdtune.study.service import study_status

    info = study_status(study, storage)
    if as_json:
        _print_json(info)
    else:
        for k, v in info.items():
            typer.echo(f"{k:>16}: {v}")


@app.command("pareto")
def pareto_cmd(
    study: StudyOpt,
    storage: StorageOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """The Pareto front: trial number, objectives and parameters."""
    from kdtune.study.tables import pareto_rows, print_pareto

    print_pareto(pareto_rows(study, storage), fmt)


@app.command("report")
def report_cmd(
    study: StudyOpt,
    output: Annotated[Path, typer.Option("-o", "--output")] = Path("report"),
    storage: StorageOpt = None,
) -> None:
    """Pareto front, hypervolume history and parameter importances as HTML and PNG."""
    from kdtune.study.report import write_report

    paths = write_report(study, storage, output)
    typer.echo(f"report written to {paths['html']}")


@app.command("export")
def export_cmd(
    study: StudyOpt,
    pick: Annotated[str, typer.Option("--pick", help="knee, max-accuracy, min-sigma, feasible "
                                      "or trial:N")] = "knee",
    output: Annotated[Path, typer.Option("-o", "--output")] = Path("best.yaml"),
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the chosen trial as a complete distillation config for `kdtune distill`."""
    from kdtune.study.export import export_trial

    info = export_trial(study, storage, pick, output)
    _emit(as_json, info, f"trial {info['trial']} ({pick}) exported to {output}")


@app.command("distill")
def distill_cmd(
    config: Annotated[Path, typer.Argument(help="distillation config (from kdtune export)")],
    output: Annotated[Path, typer.Option("-o", "--output")],
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a production distillation from an exported config and save the student."""
    from kdtune.study.export import distill_from_file

    info = distill_from_file(config, output, overrides or [], progress=not as_json)
    _emit(as_json, info, f"student saved to {output}: accuracy {info['accuracy_student']:.4f}, "
          f"sigma {info['sigma']:.4f}, phi_cnf {'holds' if info['phi_cnf'] else 'fails'}")


@app.command("dashboard")
def dashboard_cmd(
    storage: StorageOpt = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8080,
) -> None:
    """Serve optuna-dashboard on the study storage (127.0.0.1 by default; no authentication)."""
    from kdtune.study.dashboard import serve

    serve(storage, host=host, port=port)


@app.command("audit")
def audit_cmd(
    teacher_preds: Annotated[Path | None, typer.Option("--teacher-preds")] = None,
    student_preds: Annotated[Path | None, typer.Option("--student-preds")] = None,
    teacher: Annotated[str | None, typer.Option("--teacher", help="teacher directory")] = None,
    student: Annotated[str | None, typer.Option("--student", help="student directory")] = None,
    overrides: SetOpt = None,
    split: Annotated[str, typer.Option("--split", help="train, eval or test")] = "test",
    kappa: Annotated[float, typer.Option("--kappa")] = 0.05,
    reference_class: Annotated[int, typer.Option("--reference-class")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Confidence-preservation report from prediction files or from two model directories.

    Data options for model directories are given as --set data.source=... overrides.
    """
    from kdtune.objectives.audit import audit, audit_models, print_audit

    given = [x is not None for x in (teacher_preds, student_preds, teacher, student)]
    if given not in ([True, True, False, False], [False, False, True, True]):
        raise UsageError("give --teacher-preds and --student-preds, or --teacher and "
                         "--student (one pair, both of it)")
    if teacher_preds is not None:
        report = audit(teacher_preds, student_preds, kappa=kappa,
                       reference_class=reference_class)
    else:
        report = audit_models(teacher, student, overrides or [], split=split, kappa=kappa,
                              reference_class=reference_class)
    if as_json:
        _print_json(report)
    else:
        print_audit(report)


@app.command("demo")
def demo_cmd(
    workers: Annotated[int, typer.Option("--workers", "-w", min=1)] = 2,
    trials: Annotated[int, typer.Option("--trials", "-n", min=1)] = 8,
) -> None:
    """Everything on the embedded default: data, teacher, a small study, Pareto, export."""
    from kdtune.study.demo import run_demo

    run_demo(workers=workers, trials=trials)


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (see the module docstring for errors)."""
    import warnings

    import click

    # Optuna's experimental flags (heartbeats, metric names, retry callbacks), and its warning
    # on every ask about the heartbeats kdtune workers run themselves: nothing users can act on.
    warnings.filterwarnings("ignore", message=r".*(experimental|deprecated).*")
    warnings.filterwarnings("ignore", message=r"Heartbeat of storage is supposed to be used")
    _state["debug"] = False
    command = typer.main.get_command(app)
    # typer >= 0.29 raises its own copies of click's Exit/Abort/UsageError classes.
    exits = (click.exceptions.Exit, typer.Exit)
    aborts = (click.exceptions.Abort, typer.Abort)
    try:
        command.main(args=argv, prog_name="kdtune", standalone_mode=False)
    except exits as e:
        return int(getattr(e, "exit_code", 0) or 0)
    except aborts:
        sys.stderr.write("kdtune: aborted\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("kdtune: interrupted\n")
        return 130
    except Exception as e:
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # click's usage errors
            e.show()
            return int(e.exit_code) or 2
        return _report(e)
    return 0


def _report(e: Exception) -> int:
    """Print ``e`` as ``kdtune: error:`` lines and return the exit code it calls for."""
    if _state["debug"]:
        traceback.print_exception(e)
    if isinstance(e, KdtuneError):
        problems = e.problems if isinstance(e, ConfigError) else str(e).splitlines()
        for line in problems or [type(e).__name__]:
            sys.stderr.write(f"kdtune: error: {line}\n")
        return e.exit_code
    message = (str(e).strip().splitlines() or [""])[0]
    hint = "" if _state["debug"] else " (run with kdtune --debug for the traceback)"
    sys.stderr.write(f"kdtune: error: unexpected {type(e).__name__}: {message}{hint}\n")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
