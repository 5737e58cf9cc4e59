"""Successive halving across real worker processes on the embedded PostgreSQL server: rung
records written by one worker rank the other's trials, and a worker killed mid-trial leaves
its rung records in the ladder while its trial is retried."""

from __future__ import annotations

import re

from optuna.trial import TrialState
from test_worker import _cfg, _kill_then_finish, _log_lines, _worker

from kdtune.attrs import PRUNE_REASON, RETRY_HISTORY, rung_key
from kdtune.study.service import create_study, open_study

REASON = re.compile(r"after (\d) epoch\(s\) the trial ranks (\d+) of (\d+) .*best (\d+) continue")


def _stopped(trial):
    match = REASON.search(trial.user_attrs.get(PRUNE_REASON, ""))
    return None if match is None else tuple(int(g) for g in match.groups())


def test_two_workers_share_one_ladder(tmp_path):
    cfg = _cfg(10)
    create_study(cfg)
    log = tmp_path / "log"
    procs = [_worker(cfg.name, "halving", log, i, delay=0.3) for i in range(2)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    study, _ = open_study(cfg.name, None)
    trials = study.get_trials()
    owner = {n: pid for n, pid in _log_lines(log, "start")}
    assert len(set(owner.values())) == 2
    stopped = {t.number: _stopped(t) for t in trials if t.state == TrialState.PRUNED}
    assert stopped and all(s is not None for s in stopped.values())
    for number, (epochs, place, n, kept) in stopped.items():
        trial = trials[number]
        assert rung_key(epochs) in trial.user_attrs and rung_key(epochs + 1) not in trial.user_attrs
        assert place > kept == max(1, n // 2)  # stopped only outside the best 1/eta
    # Some trial was ranked against records the other worker wrote.
    def own(number, epochs):
        return sum(1 for t in trials if owner.get(t.number) == owner[number]
                   and rung_key(epochs) in t.user_attrs)
    assert any(n > own(number, epochs) for number, (epochs, _, n, _) in stopped.items())
    # Every trial that reached the end passed both rungs.
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert rung_key(1) in t.user_attrs and rung_key(2) in t.user_attrs


def test_a_worker_killed_mid_trial_keeps_its_rung_and_the_trial_is_retried(tmp_path):
    cfg = _cfg(4)
    create_study(cfg)
    log = tmp_path / "log"
    # Killed once its first trial passed rung 1, during epoch 2.
    dead_number = _kill_then_finish(cfg.name, "halving", log, "rung", delay=3.0)
    study, _ = open_study(cfg.name, None)
    trials = study.get_trials()
    dead = trials[dead_number]
    assert dead.state == TrialState.FAIL
    assert rung_key(1) in dead.user_attrs and rung_key(2) not in dead.user_attrs
    retry = [t for t in trials if dead_number in t.system_attrs.get(RETRY_HISTORY, [])]
    assert len(retry) == 1 and retry[0].params == dead.params
    assert retry[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert rung_key(1) in retry[0].user_attrs  # the retry climbs the ladder again
