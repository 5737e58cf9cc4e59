"""The commands that prepare and run a search: ``teacher fit``, ``init``, ``create``, ``run``,
``worker`` and ``status``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import (
    ConfigArg,
    JsonOpt,
    ObjectiveOpt,
    SetOpt,
    StorageOpt,
    StudyOpt,
    TeacherSetOpt,
    emit,
    format_option,
    output_format,
    print_json,
)
from .verdict import test_after_run

STATUS_FORMATS = ("table", "json")
StatusFormatOpt = format_option(STATUS_FORMATS)
teacher_app = typer.Typer(help="Teachers: fine-tune a BERT checkpoint into a classifier.",
                          no_args_is_help=True)


def register_search_commands(app: typer.Typer) -> None:
    """Add ``teacher fit``, ``init``, ``create``, ``run``, ``worker`` and ``status`` to ``app``."""
    app.add_typer(teacher_app, name="teacher")
    for name, command in (("init", init_cmd), ("create", create_cmd), ("run", run_cmd),
                          ("worker", worker_cmd), ("status", status_cmd)):
        app.command(name)(command)


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


def init_cmd(
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="where to write the example config")] = Path("kdtune.yaml"),
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a commented example study config."""
    from kdtune.study.cli.templates import write_example_config

    write_example_config(output, force=force)
    typer.echo(f"wrote {output}")


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
    Then, unless --no-test, `kdtune test` measures the Pareto front on the test split, as many
    runs at once as there were workers.
    """
    from kdtune.study.local import run_study, worker_threads
    from kdtune.study.service import load_study_config

    cfg = load_study_config(config, overrides or [], storage, n_trials=trials)
    run_study(cfg, workers=workers, objective=objective)
    if not no_test:
        test_after_run(cfg.name, cfg.storage, worker_threads(cfg, workers), jobs=workers)


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


def status_cmd(study: StudyOpt, storage: StorageOpt = None,
               fmt: StatusFormatOpt = "table", as_json: JsonOpt = False) -> None:
    """Where a study stands: state, trials done of the budget, time so far and left, each
    objective's best value and the Pareto front size."""
    from kdtune.study.service import study_status

    fmt = output_format(fmt, as_json, STATUS_FORMATS)
    info = study_status(study, storage)
    if fmt == "json":
        print_json(info)
    else:
        for label, text in status_lines(info):
            typer.echo(f"{label:<10} {text}")


def status_lines(info: dict) -> list[tuple[str, str]]:
    """``kdtune status`` as labelled lines, in words a user reads (no raw counter names)."""
    from kdtune.objectives.teacher.progress import duration

    lines = [("study", f"{info['study']} ({info['state']}), in {info['storage']}"),
             ("objectives", ", ".join(f"{m} ({d})" for m, d in
                                      zip(info["objectives"], info["directions"], strict=True)))]
    parts = [f"{info['complete']} complete"]
    if info["pruned"]:
        parts.append(f"{info['pruned']} pruned")
    if info["failed_final"]:
        parts.append(f"{info['failed_final']} failed")
    trials = f"{info['finished']} of {info['budget']} done ({', '.join(parts)})"
    if info["running"]:
        trials += f"; {info['running']} running"
    if info["waiting"]:
        trials += f"; {info['waiting']} waiting to be retried"
    if info["failed"] > info["failed_final"]:
        trials += f"; {info['failed'] - info['failed_final']} failed and retried"
    lines.append(("trials", trials))
    if "epoch_budget" in info:
        lines.append(("epochs", f"{info['epochs_trained']} of {info['epoch_budget']} trained"))
    if info["elapsed_s"] is not None:
        time = f"{duration(info['elapsed_s'])} so far"
        if info["eta_s"] is not None and info["state"] in ("open", "running"):
            time += f"; about {duration(info['eta_s'])} left at this pace"
        lines.append(("time", time))
    if info["best"]:
        lines.append(("best", "; ".join(f"{m} {b['value']:.4g} (trial {b['trial']})"
                                        for m, b in info["best"].items())))
    front = info["pareto_front"]
    lines.append(("front", f"{front} trial{'s' if front != 1 else ''}"
                  + (f" (kdtune pareto --study {info['study']})" if front else "")))
    if "stopped" in info:
        lines.append(("stopped", str(info["stopped"])))
    return lines
