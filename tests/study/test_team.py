"""Workers run by a team: an NSGA-II population smaller than the workers is warned about,
and stale trials are judged alike by workers in different time zones."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from optuna.trial import TrialState
from test_worker import _cfg

from kdtune.study.service import create_study, open_study


def test_a_population_smaller_than_the_workers_is_warned_about(monkeypatch):
    import kdtune.study.local as local

    small = _cfg(4, sampler={"name": "nsga2", "population_size": 2, "seed": 0})
    assert local.population_warning(small, 2) is None
    assert "population_size >= 3" in local.population_warning(small, 3)
    assert local.population_warning(_cfg(4), 64) is None  # random search: no generations

    class Done:
        def __init__(self, argv, env, **kwargs):
            pass

        def poll(self):
            return 0

        def wait(self):
            return 0

    monkeypatch.setattr(local.subprocess, "Popen", Done)
    monkeypatch.setattr(local, "create_study", lambda cfg: {})
    monkeypatch.setattr(local, "open_study", lambda name, storage: (None, small))
    monkeypatch.setattr(local, "_watch", lambda cfg, procs, progress: None)
    monkeypatch.setattr(local, "study_status", lambda name, storage: {})
    with pytest.warns(UserWarning, match="NSGA-II population of 2"):
        local.run_study(small, workers=3, progress=False)


_ASK_IN_NEW_YORK = """
import sys
from kdtune.study.service import open_study
from kdtune.study.worker import next_trial
study, cfg = open_study(sys.argv[1], None, heartbeat=True, worker_index=0)
trial = next_trial(study, cfg)
print(trial.number)
"""


def test_a_trial_asked_on_a_host_in_another_time_zone_is_not_failed_at_once(monkeypatch):
    """A worker in New York (UTC-5/-4) asks for a trial and dies before its first beat; a
    worker in Kolkata (UTC+5:30) judges it only after the grace period, not at once."""
    import datetime

    from kdtune.study.stale import fail_stale_trials, stale_trial_ids

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()

    cfg = _cfg(4, grace_period=4)
    create_study(cfg)
    asked = subprocess.run(
        [sys.executable, "-c", _ASK_IN_NEW_YORK, cfg.name], capture_output=True, text=True,
        env=dict(os.environ, TZ="America/New_York"), timeout=120, check=True)
    study, _ = open_study(cfg.name, None)
    (trial,) = study.get_trials(states=(TrialState.RUNNING,))
    assert trial.number == int(asked.stdout.split()[-1])
    try:
        assert time.tzname[0] == "IST"  # this process judges from Kolkata
        assert stale_trial_ids(study, 4) == [], "failed at once: two clocks compared"
        time.sleep(5)
        assert [tid for tid, _ in stale_trial_ids(study, 4)] == [trial._trial_id]
        assert fail_stale_trials(study, cfg) == [trial.number]
        failed = study.get_trials()[trial.number]
        # written as Optuna writes times (UTC), so it reads back as this host's local time
        assert abs((datetime.datetime.now() - failed.datetime_complete).total_seconds()) < 60
    finally:
        monkeypatch.undo()
        time.tzset()


def test_status_line_is_one_short_line():
    from kdtune.study.local import status_line

    status = {"study": "s", "storage": "x" * 200, "objectives": "accuracy_student (maximize)",
              "budget": 8, "complete": 3, "pruned": 1, "failed": 2, "failed_final": 2,
              "running": 0, "waiting": 0, "finished": 6, "used": 6, "pareto_front": 2}
    line = status_line(status)
    assert line == "study 's': 6/8 trials finished (3 complete, 1 pruned, 2 failed)"
    stopped = status_line({**status, "stopped": "the first 3 trials failed: CUDA missing"})
    assert stopped == "study 's' stopped itself: the first 3 trials failed: CUDA missing"
