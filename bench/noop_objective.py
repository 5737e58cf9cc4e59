"""A no-op objective for storage benchmarks (selected with ``--objective``).

    PYTHONPATH=bench kdtune worker --study NAME --objective noop_objective:factory

It suggests three parameters, sleeps ``$KDTUNE_NOOP_DELAY`` seconds (default 0.002) and
returns two values, so a trial costs a few milliseconds and the storage dominates. When
``$KDTUNE_NOOP_LOG`` is set, each evaluation appends ``eval <trial number> <pid> <unix
time>`` to that file (one ``write`` on an ``O_APPEND`` descriptor, so lines from parallel
workers do not interleave): a trial number that appears twice is a duplicated evaluation.
"""

from __future__ import annotations

import os
import time


def factory(cfg):
    """``cfg`` is the study's StudyConfig (unused); returns ``trial -> [v1, v2]``."""
    delay = float(os.environ.get("KDTUNE_NOOP_DELAY", "0.002"))
    log = os.environ.get("KDTUNE_NOOP_LOG")

    def objective(trial):
        t = trial.suggest_float("temperature", 1.0, 20.0, log=True)
        a = trial.suggest_float("alpha", 0.0, 1.0)
        layers = trial.suggest_int("student_layers", 1, 6)
        if log:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"eval {trial.number} {os.getpid()} {time.time():.6f}\n".encode())
            finally:
                os.close(fd)
        if delay > 0:
            time.sleep(delay)
        return [a * layers / 6.0, 1.0 / t]

    return objective
