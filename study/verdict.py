"""The held-out verdict: the Pareto front and the TinyBERT recipe measured on the test split.

:func:`test_front` retrains each Pareto-optimal trial, and the TinyBERT recipe at each front student
size, and measures them on the test split with paired bootstrap intervals; a trial's verdict also
says whether the retrain reproduced its selection figures (``selection_delta``, ``reproduced``:
within :data:`~kdtune.objectives.search.recipes.REPRODUCE_TOLERANCE`). Readers:
:func:`stored_verdicts`, :func:`stored_baselines`, :func:`fresh_verdict`.

Why: docs/design.md, "Test-split verdict", "TinyBERT baseline per size", "Verdict storage".
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from kdtune.attrs import TEST_PREFIX, TINYBERT_PREFIX, TRIAL_CONFIG
from kdtune.errors import KdtuneError, TrialError
from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.search.recipes import (
    REPRODUCE_TOLERANCE,
    config_hash,
    retrain_and_test,
    selection_deltas,
    tinybert_recipe,
)
from kdtune.storage import database_errors

from .config import StudyConfig
from .front import front_trials
from .service import open_study

RECIPE = "tinybert"
"""The recipe name a baseline records."""


def test_key(number: int) -> str:
    """The study user attribute holding trial ``number``'s test verdict."""
    return f"{TEST_PREFIX}{number}"


def tinybert_key(size: str) -> str:
    """The study user attribute holding the TinyBERT recipe's results at ``size``."""
    return f"{TINYBERT_PREFIX}{size}"


def trial_config(trial: FrozenTrial) -> DistillConfig:
    """The trial's complete DistillConfig, as ``kdtune export`` writes it.

    Raises:
        KdtuneError: the trial stored no config (not a kdtune trial).
    """
    raw = trial.user_attrs.get(TRIAL_CONFIG)
    if raw is None:
        raise KdtuneError(f"trial {trial.number} has no stored config (not a kdtune trial)")
    return DistillConfig.model_validate(raw)


def trial_size(trial: FrozenTrial, cfg: DistillConfig) -> tuple[int, int | None, str]:
    """``(student_layers, hidden_size, size key)`` of the trial's student.

    The width is the config's ``hidden_size``, else the width the trial measured
    (``student_hidden_size``), else ``None`` (the teacher's, unknown here: key ``full``).
    A set ``ffn_size`` ends the key (``2x384x1024``).
    """
    hidden = cfg.hidden_size
    if hidden is None and isinstance(trial.user_attrs.get("student_hidden_size"), int):
        hidden = trial.user_attrs["student_hidden_size"]
    ffn = f"x{cfg.ffn_size}" if cfg.ffn_size is not None else ""
    return cfg.student_layers, hidden, f"{cfg.student_layers}x{hidden or 'full'}{ffn}"


def baseline_config(trial: FrozenTrial) -> tuple[str, DistillConfig]:
    """``(size key, config)`` of the TinyBERT baseline for the size of ``trial`` (its tuned
    student): the recipe on top of the trial's config, so the two differ only in the
    recipe's fields."""
    tuned = trial_config(trial)
    layers, hidden, size = trial_size(trial, tuned)
    return size, tinybert_recipe(tuned, layers, hidden)


def stored_verdicts(study: optuna.Study) -> dict[int, dict]:
    """Every stored test verdict of the study, by trial number (stale ones included)."""
    out = {}
    for key, value in study.user_attrs.items():
        number = key.removeprefix(TEST_PREFIX)
        if key.startswith(TEST_PREFIX) and re.fullmatch(r"\d+", number):
            out[int(number)] = value
    return out


def stored_baselines(study: optuna.Study) -> dict[str, dict]:
    """Every stored TinyBERT baseline of the study, by size key (e.g. ``"2x128"``)."""
    return {key.removeprefix(TINYBERT_PREFIX): value for key, value in study.user_attrs.items()
            if key.startswith(TINYBERT_PREFIX)}


def fresh_verdict(trial: FrozenTrial, verdicts: dict[int, dict]) -> dict | None:
    """The trial's stored verdict when it measured the trial's current configuration.

    ``None`` when there is none, or when its config hash differs from the trial's config
    validated by this kdtune (a version whose config means something else runs again).
    """
    verdict = verdicts.get(trial.number)
    if verdict is None or TRIAL_CONFIG not in trial.user_attrs:
        return None
    return verdict if verdict.get("config_hash") == config_hash(trial_config(trial)) else None


def _job(kind: str, label: str, key: str, cfg: DistillConfig,
         make: Callable[[dict], dict]) -> dict:
    return {"kind": kind, "label": label, "key": key, "cfg": cfg,
            "hash": config_hash(cfg), "make": make}


def _trial_job(trial: FrozenTrial) -> dict:
    cfg = trial_config(trial)

    def make(run: dict) -> dict:
        deltas = selection_deltas(run["selection"], trial.user_attrs)
        return {"trial": trial.number, **run, "selection_delta": deltas,
                "reproduced": bool(deltas) and max(deltas.values()) <= REPRODUCE_TOLERANCE,
                "tolerance": REPRODUCE_TOLERANCE}

    return _job("trial", f"trial {trial.number}", test_key(trial.number), cfg, make)


def _baseline_jobs(front: list[FrozenTrial]) -> list[dict]:
    """One TinyBERT job per distinct student size on the front, in front order (best first
    on the first objective): the recipe on top of the size's first (tuned) trial's config,
    so the two differ only in the recipe's fields."""
    jobs, seen = [], set()
    for trial in front:
        size, cfg = baseline_config(trial)
        if size in seen:
            continue
        seen.add(size)

        def make(run: dict, size=size, cfg=cfg) -> dict:
            return {"recipe": RECIPE, "size": size, "student_layers": cfg.student_layers,
                    "hidden_size": cfg.hidden_size, **run,
                    "config": cfg.model_dump(mode="json")}

        jobs.append(_job(RECIPE, f"TinyBERT {size}", tinybert_key(size), cfg, make))
    return jobs


def plan(study: optuna.Study, cfg: StudyConfig, baselines: bool = True) -> list[dict]:
    """Every front trial's job, then (``baselines``) every size's TinyBERT job, each with
    ``stored``: the stored result whose config hash matches, or ``None`` (to run)."""
    front = front_trials(study, cfg)
    jobs = [_trial_job(t) for t in front]
    if baselines:
        jobs += _baseline_jobs(front)
    attrs = study.user_attrs
    for job in jobs:
        stored = attrs.get(job["key"])
        job["stored"] = stored if (stored or {}).get("config_hash") == job["hash"] else None
    return jobs


def test_front(study_name: str, storage: str | None, *, baselines: bool = True,
               progress: bool = True, threads: int | None = None,
               jobs: int = 1) -> list[dict]:
    """Measure the study's Pareto front, and the TinyBERT recipe at its sizes, on test.

    Each front trial (:func:`kdtune.study.front.front_trials`) without a stored verdict for
    its configuration is retrained and measured (module docstring); with ``baselines``,
    each distinct size on the front gets the TinyBERT recipe the same way. Each result is
    stored as soon as its run ends; what is stored already is skipped. Loaded data splits
    are shared by every run on the same data config.

    Args:
        study_name: the study.
        storage: its storage URL (``None``: ``$KDTUNE_STORAGE`` or the embedded server).
        baselines: also train the TinyBERT recipe at each front size.
        progress: a progress bar on stderr.
        threads: torch threads per run when a config leaves ``threads`` unset (``None``:
            the cores shared out among ``jobs``; pass the workers' share to reproduce their
            floating point exactly).
        jobs: runs at once, each in its own process (``kdtune run`` passes its worker
            count with the workers' threads, so the cores stay as busy as in the search).

    Returns:
        One dict per front trial, then per size: ``kind`` (``trial`` or ``tinybert``),
        ``label``, ``key`` (the study user attribute), ``trained`` (False: it was stored
        already) and the stored result; or ``error`` (one line) for a run that failed
        (nothing stored: the next call tries it again).

    Raises:
        StudyNotFound: no such study.
        KdtuneError: the study has no complete trials, or a front trial has no stored config.
    """
    study, cfg = open_study(study_name, storage)
    with database_errors(f"reading study {study_name!r}"):
        planned = plan(study, cfg, baselines)
    todo = [job for job in planned if job["stored"] is None]
    out: dict[str, dict] = {job["key"]: _entry(job, job["stored"], False)
                            for job in planned if job["stored"] is not None}
    with _bar(progress, len(todo)) as (bar, task):
        for job, run in _runs(todo, threads, jobs):
            out[job["key"]] = _store(study, job, run)
            bar.update(task, advance=1, description=job["label"])
    return [out[job["key"]] for job in planned]


def _runs(todo: list[dict], threads: int | None, jobs: int) -> Iterator[tuple[dict, Any]]:
    """``(job, run)`` for each job as it ends: the :func:`retrain_and_test` dict, or the
    first line of the :class:`TrialError` that stopped it. One job at a time in this process
    (loaded splits shared), or ``jobs`` at once in spawned processes."""
    if jobs <= 1 or len(todo) <= 1:
        splits: dict[str, Any] = {}
        for job in todo:
            yield job, _retrain(job["cfg"], threads, splits)
        return
    import concurrent.futures as cf
    import multiprocessing

    from kdtune.objectives.compute.device import available_cpus

    if threads is None:
        threads = max(1, available_cpus() // jobs)

    pool = cf.ProcessPoolExecutor(max_workers=min(jobs, len(todo)),
                                  mp_context=multiprocessing.get_context("spawn"))
    try:
        running = {pool.submit(_retrain, job["cfg"], threads): job for job in todo}
        for done in cf.as_completed(running):
            yield running[done], done.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _retrain(cfg: DistillConfig, threads: int | None,
             splits: dict[str, Any] | None = None) -> dict | str:
    """One job's :func:`retrain_and_test`, or its :class:`TrialError`'s first line, with the
    libraries' own progress bars off (a spawned process would draw them under this one's).
    ``splits`` caches loaded data by data config across calls in one process."""
    from kdtune.objectives.data.dataset import load_splits
    from kdtune.objectives.teacher.progress import library_progress

    splits = {} if splits is None else splits
    data_key = cfg.data.model_dump_json()
    with library_progress(False):
        if data_key not in splits:
            splits[data_key] = load_splits(cfg.data)
        try:
            return retrain_and_test(cfg, splits[data_key], threads=threads)
        except TrialError as e:
            return str(e).splitlines()[0]


def _store(study: optuna.Study, job: dict, run: dict | str) -> dict:
    """Store one job's result and return its entry; an ``error`` entry (nothing stored) when
    training failed."""
    from kdtune import __version__

    if isinstance(run, str):
        return {**_entry(job, {}, True), "error": run}
    result = job["make"](run)
    result.update(config_hash=job["hash"], kdtune_version=__version__)
    with database_errors(f"storing {job['key']!r}"):
        study.set_user_attr(job["key"], _jsonable(result))
    return _entry(job, result, True)


def _entry(job: dict, result: dict, trained: bool) -> dict:
    return {"kind": job["kind"], "label": job["label"], "key": job["key"],
            "trained": trained, **result}


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers (as trials store their metrics)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


@contextlib.contextmanager
def _bar(enabled: bool, total: int) -> Iterator[tuple[Any, Any]]:
    """A rich progress bar on stderr as ``(progress, task)`` (disabled, a no-op, off a
    terminal: each run prints its own line there), with the libraries' own bars silenced."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from kdtune.objectives.teacher.progress import library_progress

    console = Console(stderr=True)
    bar = Progress(TextColumn("[bold]retrain + test"), TextColumn("{task.description}"),
                   BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                   disable=not enabled or total == 0 or not console.is_terminal)
    with library_progress(False), bar:
        yield bar, bar.add_task("", total=total)


__all__ = ["RECIPE", "TEST_PREFIX", "TINYBERT_PREFIX", "fresh_verdict", "plan",
           "stored_baselines", "stored_verdicts", "test_front", "test_key", "tinybert_key",
           "trial_config", "trial_size"]
