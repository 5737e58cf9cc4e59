"""Fast objectives for the worker tests (``kdtune worker --objective worker_objectives:NAME``).

They isolate the worker's mechanics (budget, retries, signals, outages, studies that
cannot succeed) from training. Each logs
``start N pid`` / ``end N pid`` lines to $KDTUNE_TEST_LOG so tests can see which process
evaluated which trial.
"""

from __future__ import annotations

import os
import time


def _log(line: str) -> None:
    with open(os.environ["KDTUNE_TEST_LOG"], "a") as fh:
        fh.write(line + "\n")


def sleepy(cfg):
    """Suggests two parameters, sleeps $KDTUNE_TEST_DELAY seconds, returns two values."""
    delay = float(os.environ.get("KDTUNE_TEST_DELAY", "0.3"))

    def objective(trial):
        t = trial.suggest_float("temperature", 1.0, 20.0, log=True)
        a = trial.suggest_float("alpha", 0.0, 1.0)
        _log(f"start {trial.number} {os.getpid()}")
        time.sleep(delay)
        _log(f"end {trial.number} {os.getpid()}")
        return [a, 1.0 / t]

    return objective


def epochs3(cfg):
    """Records 3 trained epochs (kdtune.attrs.EPOCHS_TRAINED) per trial, then two values."""

    def objective(trial):
        a = trial.suggest_float("alpha", 0.0, 1.0)
        _log(f"start {trial.number} {os.getpid()}")
        trial.set_user_attr("epochs_trained", 3)
        return [a, 1.0 - a]

    return objective


def flaky(cfg):
    """Raises on the first attempt of trial 0, and a non-retryable error on trial 1."""

    class NotRetryable(RuntimeError):
        retryable = False

    def objective(trial):
        t = trial.suggest_float("temperature", 1.0, 20.0, log=True)
        _log(f"start {trial.number} {os.getpid()}")
        if trial.number == 0:
            raise RuntimeError("transient failure")
        if trial.number == 1:
            raise NotRetryable("loss became nan")
        return [0.5, 1.0 / t]

    return objective


def broken(cfg):
    """Always raises the same error (a study that can never succeed)."""

    def objective(trial):
        trial.suggest_float("temperature", 1.0, 20.0, log=True)
        _log(f"start {trial.number} {os.getpid()}")
        raise RuntimeError("the teacher's tokenizer is missing")

    return objective


def bad_data(cfg):
    """Raises a DataError (retrying cannot help) on every trial."""
    from kdtune.errors import DataError

    def objective(trial):
        trial.suggest_float("temperature", 1.0, 20.0, log=True)
        _log(f"start {trial.number} {os.getpid()}")
        raise DataError("data file train.csv has no column 'label'")

    return objective


def halving(cfg):
    """kdtune's successive-halving check (``rung_check``) on a stand-in training: three
    "epochs" of $KDTUNE_TEST_DELAY seconds whose figures grow with the suggested alpha
    (alpha 1: best on both objectives). Logs ``rung N epoch`` after each epoch it passes."""
    import optuna

    from kdtune.objectives.distillation.run import EarlyStopped
    from kdtune.objectives.search.halving import HalvingConfig
    from kdtune.objectives.search.trial import rung_check

    delay = float(os.environ.get("KDTUNE_TEST_DELAY", "0.3"))
    ladder = HalvingConfig(rungs=(1, 2), eta=2)

    def objective(trial):
        a = trial.suggest_float("alpha", 0.0, 1.0)
        check = rung_check(trial, ladder, ("accuracy_student", "sigma"),
                           ("maximize", "minimize"))
        figures = {"accuracy_student": 0.55 + 0.4 * a, "sigma": 0.3 - 0.2 * a,
                   "accuracy_majority": 0.5}
        _log(f"start {trial.number} {os.getpid()}")
        try:
            for epoch in (1, 2, 3):
                time.sleep(delay)
                check(epoch, figures)
                _log(f"rung {trial.number} {epoch}")
        except EarlyStopped as e:
            raise optuna.TrialPruned(str(e)) from e
        _log(f"end {trial.number} {os.getpid()}")
        return [figures["accuracy_student"], figures["sigma"]]

    return objective
