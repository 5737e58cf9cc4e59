"""Local workers: ``kdtune run`` starts ``kdtune worker`` processes on a study and watches them.

:func:`run_study` creates the study and runs the workers until its budget is done;
:func:`worker_threads` shares the CPU cores out; :func:`population_warning` flags an NSGA-II
population smaller than the number of workers.

Why: docs/design.md, "Local workers run the worker command".
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import warnings

from kdtune.errors import KdtuneError, UsageError
from kdtune.storage import warn_if_shared_sqlite

from .budget import budget_counts_db
from .config import StudyConfig
from .front import pareto_front
from .outcome import StudyStopped
from .service import create_study, open_study, study_status
from .signals import LOCAL_WORKER_ENV, Stopped, stop_children

__all__ = ["population_warning", "run_study", "status_line", "worker_threads"]

_log = logging.getLogger(__name__)



def population_warning(cfg: StudyConfig, workers: int) -> str | None:
    """The warning for an NSGA-II population smaller than the number of parallel workers.

    Rule: ``population_size >= workers`` (better 2 x workers). NSGA-II breeds generation
    g + 1 from the finished trials of generation g; with more workers than the population,
    trials are asked before their parents finish, generations overlap, and the search slides
    towards random sampling of the first generation. ``None`` when the rule holds or another
    sampler is used.
    """
    size = cfg.sampler.population_size
    if cfg.sampler.name != "nsga2" or workers <= size:
        return None
    return (f"{workers} workers and an NSGA-II population of {size}: generations will "
            f"overlap and the search degrades towards random; set sampler.population_size "
            f">= {workers} (better {2 * workers})")


def worker_threads(cfg: StudyConfig, workers: int) -> int:
    """Threads per local worker: ``distill.threads``, else the CPU cores shared out."""
    return cfg.distill.threads or max(1, (os.cpu_count() or 1) // workers)


def run_study(cfg: StudyConfig, workers: int = 2, progress: bool = True,
              objective: str | None = None) -> dict:
    """Create the study, then run ``workers`` worker processes until the budget is done.

    Each worker is a ``kdtune worker`` subprocess (``python -m kdtune.study.cli worker
    --study NAME --index I --threads N``), exactly the command other machines run: one trial
    at a time each, all pulling from the shared storage. ``--index`` reseeds each worker's
    sampler; ``--threads`` (:func:`worker_threads`) shares the CPU cores out; ``objective``
    (``module:function``, tests and benchmarks) is passed on as ``--objective``. The storage
    URL reaches them through ``$KDTUNE_STORAGE`` (never on a command line, where ``ps`` shows
    passwords).

    The workers run in their own process group, so a Ctrl-C in the terminal reaches only
    this process, which passes it on. Whatever ends this function early (Ctrl-C, SIGTERM
    raised as :class:`~kdtune.study.signals.Stopped`, an error) is passed on to every worker
    (SIGINT stays SIGINT, anything else becomes SIGTERM): each ends its trial cleanly
    (FAIL, re-queued), and this function waits for all of them before it re-raises, so no
    worker outlives it.

    Raises:
        UsageError: ``workers`` is below 1.
        StudyStopped: the study stopped itself (its reason, once: the workers stay silent).
        KdtuneError: a worker exited with an error (the study status is given).
    """
    if workers < 1:
        raise UsageError(f"--workers must be 1 or more, got {workers}")
    warn_if_shared_sqlite(cfg.storage, workers)
    create_study(cfg)
    # An existing study keeps its stored config (budget included): show what workers run.
    cfg = open_study(cfg.name, cfg.storage)[1].model_copy(update={"storage": cfg.storage})
    if (small := population_warning(cfg, workers)) is not None:
        warnings.warn(small, stacklevel=2)
    env = {**os.environ, LOCAL_WORKER_ENV: "1"}  # this process says how the study ended
    if cfg.storage:
        env["KDTUNE_STORAGE"] = cfg.storage
    threads = worker_threads(cfg, workers)
    if progress:  # one progress bar (ours): no model-loading / tokenising bars from workers
        env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        env.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    command = [sys.executable, "-m", "kdtune.study.cli", "worker",
               *(["--objective", objective] if objective else []), "--study", cfg.name]
    procs: list[subprocess.Popen] = []
    try:
        for i in range(workers):
            argv = [*command, "--index", str(i), "--threads", str(threads)]
            procs.append(subprocess.Popen(argv, env=env, process_group=0))
        _watch(cfg, procs, progress)
    except BaseException as e:
        signum = e.signum if isinstance(e, Stopped) else (
            signal.SIGINT if isinstance(e, KeyboardInterrupt) else signal.SIGTERM)
        stop_children(procs, signum)
        raise
    codes = [p.wait() for p in procs]
    status = study_status(cfg.name, cfg.storage)
    if status.get("stopped"):
        raise StudyStopped(status["stopped"])
    if any(codes):
        raise KdtuneError(f"workers exited with codes {codes}: {status_line(status)}")
    return status


def status_line(status: dict) -> str:
    """A study's status (:func:`~kdtune.study.service.study_status`) in one short line."""
    if status.get("stopped"):
        return f"study {status['study']!r} stopped itself: {status['stopped']}"
    return (f"study {status['study']!r}: {status['finished']}/{status['budget']} trials "
            f"finished ({status['complete']} complete, {status['pruned']} pruned, "
            f"{status['failed']} failed)")


def _watch(cfg: StudyConfig, procs: list[subprocess.Popen], progress: bool) -> None:
    """Show trials done / running / failed and the Pareto front size until workers exit."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    study, _ = open_study(cfg.name, cfg.storage)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn()]
    plain = progress and not sys.stderr.isatty()  # a log: a line per change, no live bar
    said = ""
    with Progress(*columns, disable=not progress or plain, transient=False) as bar:
        task = bar.add_task("trials", total=cfg.n_trials, detail="")
        front, front_at = 0, 0  # Pareto front size, and the complete count it was taken at
        while True:
            alive = any(p.poll() is None for p in procs)
            try:
                c = budget_counts_db(study)  # counted in SQL: cheap on large studies
                if c["complete"] != front_at:  # the front loads every trial: only on change
                    front, front_at = len(pareto_front(study)), c["complete"]
                detail = (f"running {c['running']}  failed {c['failed']}  "
                          f"pruned {c['pruned']}  pareto {front}")
                bar.update(task, completed=min(c["finished"], cfg.n_trials), detail=detail)
                line = f"trials {min(c['finished'], cfg.n_trials)}/{cfg.n_trials}  {detail}"
                if plain and line != said:
                    sys.stderr.write(line + "\n")
                    said = line
            except Exception as e:  # a storage hiccup must not kill the workers' parent
                _log.debug("progress poll failed: %s", e)
            if not alive:
                break
            time.sleep(1.0)
