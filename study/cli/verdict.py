"""The CLI commands on the Pareto front: ``kdtune pareto`` (``--test``), ``kdtune test`` and
``kdtune rescore`` (:mod:`kdtune.study.rescore`).

``kdtune test`` measures the front, and the TinyBERT recipe at its sizes, on the test split
(:func:`kdtune.study.verdict.test_front`); ``kdtune run`` calls :func:`test_after_run` when
its search ends, unless ``--no-test``. Registered on the app by :func:`register_front_commands`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kdtune.errors import KdtuneError

from .common import (
    HiddenArgsCommand,
    JsonOpt,
    MaybeStudyOpt,
    OldStudyArg,
    StorageOpt,
    StudyOpt,
    format_option,
    one_study,
    output_format,
    print_json,
    warn,
)

PARETO_FORMATS = ("table", "json", "csv")
"""kdtune.study.report.tables.PARETO_FORMATS (that module loads optuna: imported on use)."""
ParetoFormatOpt = format_option(PARETO_FORMATS)
TEST_HELP = ("measure the Pareto front and the TinyBERT recipe at the same sizes on the test "
             "split (retrains each; the search never reads it)")


def register_front_commands(app: typer.Typer) -> None:
    """Add ``pareto``, ``test`` and ``rescore`` to ``app``."""
    app.command("pareto")(pareto_cmd)
    app.command("test", help=TEST_HELP, cls=HiddenArgsCommand)(test_cmd)
    app.command("rescore")(rescore_cmd)
    app.command("report")(report_cmd)


def rescore_cmd(
    study: StudyOpt,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="more training seeds per "
                                       "front configuration")] = 2,
    workers: Annotated[int, typer.Option("--workers", "-w", min=0, help="local worker "
                                         "processes to run them (0: leave them to the "
                                         "study's workers)")] = 2,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retrain the Pareto front's configurations on more seeds, as trials of the study.

    The repeats are ordinary trials marked repeat_of / repeat_seed; the study's budget
    grows by as many. kdtune pareto, the report and kdtune export then use each front
    trial's mean over its seeds, with a 95% interval.
    """
    from ..local import run_study
    from ..rescore import enqueue_repeats
    from ..service import open_study

    info = enqueue_repeats(study, storage, seeds)
    if workers and info["enqueued"]:
        cfg = open_study(study, storage)[1].model_copy(update={"storage": storage})
        info["status"] = run_study(cfg, workers=workers, progress=not as_json)
    if as_json:
        print_json(info)
        return
    typer.echo(f"{len(info['enqueued'])} repeats enqueued for {study} "
               f"(budget now {info['n_trials']})"
               + ("" if workers or not info["enqueued"] else "; start workers to run them"))
    if "status" in info:
        typer.echo(f"see kdtune pareto --study {study}")


def pareto_cmd(
    study: StudyOpt,
    storage: StorageOpt = None,
    fmt: ParetoFormatOpt = "table",
    test: Annotated[bool, typer.Option("--test", help="add the test-split figures that "
                                       "`kdtune test` stored, beside the selection ones")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="every column, whatever the terminal's "
                                       "width")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The Pareto front: trial, size, objectives, then parameters (--json: --format json).

    The table fits the terminal (or $COLUMNS, else 100 columns off a terminal): the columns
    that do not fit are named below it, and --wide shows them."""
    from ..report.tables import pareto_rows, print_pareto, untested_trials

    fmt = output_format(fmt, as_json, PARETO_FORMATS)
    rows = pareto_rows(study, storage, test)
    print_pareto(rows, fmt, wide=wide)
    missing = untested_trials(rows)
    if missing:
        shown = ", ".join(str(n) for n in missing)
        warn(f"front trials {shown} have no test figures yet: run kdtune test --study {study}")


def test_cmd(
    ctx: typer.Context,
    study: MaybeStudyOpt = None,
    old_study: OldStudyArg = None,
    storage: StorageOpt = None,
    no_baselines: Annotated[bool, typer.Option("--no-baselines", help="skip the TinyBERT "
                                               "recipe at the front's sizes")] = False,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="torch threads per "
                                                "run (default: the cores / --jobs)")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="runs at once, each in its "
                                      "own process")] = 1,
    as_json: JsonOpt = False,
) -> None:
    from ..verdict import test_front

    study = one_study(ctx, study, old_study)  # `kdtune test NAME`, the older spelling, too
    entries = test_front(study, storage, baselines=not no_baselines, progress=not as_json,
                         threads=threads, jobs=jobs)
    if as_json:
        print_json(entries)
    else:
        for entry in entries:
            typer.echo(entry_line(entry))
        trained = sum(1 for e in entries if e["trained"] and "error" not in e)
        typer.echo(f"{trained} trained, {sum(not e['trained'] for e in entries)} already "
                   f"stored; see kdtune pareto --study {study} --test and kdtune report")
    _raise_failures(entries)


def test_after_run(name: str, storage: str | None, threads: int | None, jobs: int = 1) -> None:
    """``kdtune run``'s last step: :func:`test_cmd`'s work on the finished study, ``jobs``
    runs at once with the workers' ``threads`` each; a study without complete trials only
    gets a warning."""
    from ..verdict import test_front

    try:
        entries = test_front(name, storage, threads=threads, jobs=jobs)
    except KdtuneError as e:
        if "no complete trials" not in str(e):
            raise
        warn(f"no test-split figures: {e}")
        return
    for entry in entries:
        typer.echo(entry_line(entry))
    _raise_failures(entries)


def _raise_failures(entries: list[dict[str, Any]]) -> None:
    failed = [f"{e['label']}: {e['error']}" for e in entries if "error" in e]
    if failed:
        raise KdtuneError("\n".join(["retraining failed (nothing stored; run kdtune test "
                                     "again to retry):", *failed]))


def entry_line(entry: dict[str, Any]) -> str:
    """Three lines on a :func:`~kdtune.study.verdict.test_front` entry: what it is (and, for
    a front trial, whether the retrained student reproduced it), its test and selection
    figures."""
    from ..report.tables import interval_text

    if "error" in entry:
        return f"{entry['label']}: FAILED: {entry['error']}"
    sel, test = entry["selection"], entry["test"]
    how = f"trained in {entry['seconds']:.0f} s" if entry["trained"] else "stored"

    def shown(figures: dict, name: str) -> str:
        return interval_text(figures.get(name), figures.get(f"{name}_ci"))

    head = f"{entry['label']} ({how})"
    if entry["kind"] == "trial":
        deltas = ", ".join(f"|d {k}| {v:.2g}" for k, v in entry["selection_delta"].items())
        state = "reproduced" if entry["reproduced"] else "NOT reproduced"
        head += f", {state} by the retrained student ({deltas})"
    # one short line each (a log or an 80-column terminal keeps them whole)
    return "\n".join([
        head,
        f"  test       accuracy {shown(test, 'accuracy_student')}, sigma {shown(test, 'sigma')}",
        f"  selection  accuracy {shown(sel, 'accuracy_student')}, sigma {shown(sel, 'sigma')}"])


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
