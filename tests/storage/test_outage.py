"""Database outages and studies that cannot succeed, with real servers and real workers.

* The system PostgreSQL server (127.0.0.1:5432) is stopped for 4 s and for 14 s while four
  ``kdtune worker`` processes run 2 s trials on a scratch database: the study finishes
  exactly, no finished trial is evaluated twice, every worker exits 0.
* The embedded server of a scratch ``KDTUNE_HOME`` is stopped and started again with the
  CLI (``kdtune storage stop`` / ``start``) under four workers: the same.
* A study whose objective always raises one error stops itself within
  ``stop_after_failures`` trials; every worker exits 1 with the reason on one line.

The system server is shared with other tests on this machine: it is always started again
(try/finally) within seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from kdtune.attrs import FAIL_REASON, RETRY_HISTORY, STUDY_STOPPED
from kdtune.study.config import validate
from kdtune.study.service import create_study, study_status

REPO = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1] / "study"  # worker_objectives.py
PG = ["-h", "127.0.0.1", "-U", "postgres"]
WORKERS = 4


def _cluster() -> str:
    return sorted(os.listdir("/etc/postgresql"))[0]


def _system_server(action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", action],
                   check=True, capture_output=True, timeout=60)


@pytest.fixture
def scratch_db():
    """A scratch database on the system server, dropped afterwards."""
    name = f"kd_outage_{uuid.uuid4().hex[:8]}"
    subprocess.run(["createdb", *PG, name], check=True, timeout=60)
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    subprocess.run(["dropdb", *PG, "--force", "--if-exists", name], timeout=60)


def _cfg(storage: str, n_trials: int, **extra):
    return validate({"name": f"o-{uuid.uuid4().hex[:8]}", "storage": storage,
                     "distill": {"teacher": "unused"}, "n_trials": n_trials,
                     "sampler": {"name": "random", "seed": 1}, "heartbeat_interval": 1,
                     "grace_period": 3, **extra})


def _workers(cfg, objective: str, log: Path, delay: float = 2.0, env: dict | None = None):
    environ = dict(os.environ, KDTUNE_TEST_LOG=str(log), KDTUNE_TEST_DELAY=str(delay),
                   KDTUNE_STORAGE=cfg.storage, KDTUNE_DB_WAIT="120", **(env or {}),
                   PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]))
    return [subprocess.Popen(
        [sys.executable, "-m", "kdtune.study.cli", "worker", "--study", cfg.name,
         "--index", str(i), "--threads", "1", "--objective", f"worker_objectives:{objective}"],
        env=environ, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(WORKERS)]


def _lines(log: Path, kind: str) -> list[int]:
    if not log.exists():
        return []
    return [int(n) for k, n, _ in (ln.split() for ln in log.read_text().splitlines())
            if k == kind]


def _wait_for_starts(log: Path, n: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while len(_lines(log, "start")) < n and time.time() < deadline:
        time.sleep(0.1)
    assert len(_lines(log, "start")) >= n, "workers did not start their trials"


def _finish(procs, timeout: float = 240) -> list[str]:
    return [p.communicate(timeout=timeout)[0] for p in procs]


def _assert_exact_and_nothing_rerun(cfg, procs, outs, log: Path) -> None:
    assert [p.returncode for p in procs] == [0] * WORKERS, outs
    study = optuna.load_study(study_name=cfg.name, storage=cfg.storage)
    trials = study.get_trials()
    states = Counter(t.state for t in trials)
    assert states[TrialState.COMPLETE] == cfg.n_trials, (states, outs)
    assert states[TrialState.RUNNING] == 0 and states[TrialState.WAITING] == 0
    ends = Counter(_lines(log, "end"))
    # every evaluation that finished was recorded: none was thrown away and trained again
    assert sum(ends.values()) == cfg.n_trials and max(ends.values()) == 1, (ends, outs)
    for out in outs:
        assert "Traceback" not in out and "Cannot tell" not in out, out


@pytest.mark.parametrize("seconds", [4, 14])
def test_system_server_outage_loses_nothing(seconds, scratch_db, tmp_path):
    cfg = _cfg(scratch_db, 12)
    create_study(cfg)
    log = tmp_path / "log"
    procs = _workers(cfg, "sleepy", log)
    try:
        _wait_for_starts(log, WORKERS)
        time.sleep(0.5)
        try:
            _system_server("stop")
            time.sleep(seconds)
        finally:
            _system_server("start")
        outs = _finish(procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    _assert_exact_and_nothing_rerun(cfg, procs, outs, log)
    for out in outs:  # one line when the database went, one when it came back
        assert out.count("database unavailable") == 1 and out.count("database back") == 1, out


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, KDTUNE_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "kdtune.study.cli", *args], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_embedded_server_stop_start_loses_nothing(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert _cli(home, "storage", "start").returncode == 0
    url = _cli(home, "storage", "url").stdout.strip()
    stop = ["storage", "stop"]
    if "--force" in _cli(home, "storage", "stop", "--help").stdout:
        stop.append("--force")  # `storage stop` refuses while workers are connected
    procs = []
    try:
        cfg = _cfg(url, 12)
        create_study(cfg)
        log = tmp_path / "log"
        procs = _workers(cfg, "sleepy", log, env={"KDTUNE_HOME": str(home)})
        _wait_for_starts(log, WORKERS)
        time.sleep(0.5)
        stopped = _cli(home, *stop)
        assert stopped.returncode == 0, stopped.stderr
        time.sleep(5)
        started = _cli(home, "storage", "start")
        assert started.returncode == 0, started.stderr
        outs = _finish(procs)
        _assert_exact_and_nothing_rerun(cfg, procs, outs, log)
        assert any("database unavailable" in out for out in outs), outs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        _cli(home, *stop)


@pytest.mark.parametrize("objective, retried", [("broken", True), ("bad_data", False)])
def test_a_study_that_cannot_succeed_stops_itself(objective, retried, scratch_db, tmp_path):
    cfg = _cfg(scratch_db, 30, max_retries=2)  # stop_after_failures: default 3
    create_study(cfg)
    log = tmp_path / "log"
    procs = _workers(cfg, objective, log, delay=0.0)
    outs = _finish(procs, timeout=120)
    assert all(p.returncode == 1 for p in procs), outs
    for out in outs:
        last = out.strip().splitlines()[-1]
        assert last.startswith("kdtune: error: study") and "stopped: its first 3 trials all " \
            "failed with" in last, out
    attempts = len(_lines(log, "start"))
    assert 3 <= attempts <= 3 + WORKERS - 1  # those in flight when it stopped finish
    study = optuna.load_study(study_name=cfg.name, storage=cfg.storage)
    assert "stopped" in study.user_attrs[STUDY_STOPPED]
    status = study_status(cfg.name, cfg.storage)  # what `kdtune status` shows
    assert status["stopped"] == study.user_attrs[STUDY_STOPPED]
    trials = study.get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    requeued = [t for t in trials if t.system_attrs.get(RETRY_HISTORY)]
    assert bool(requeued) == retried  # a data error is not retried: it would fail again
    assert all(t.user_attrs[FAIL_REASON] for t in trials if t.state == TrialState.FAIL)


def test_a_trial_failed_as_stale_says_so(scratch_db, tmp_path):
    """Workers killed mid-trial: their trials are failed with a fail_reason saying why."""
    import signal

    from kdtune.storage.link import DatabaseLink
    from kdtune.study.service import open_study
    from kdtune.study.stale import fail_stale_trials, may_judge

    link = DatabaseLink("test")  # settled since now
    cfg = _cfg(scratch_db, 2)
    create_study(cfg)
    log = tmp_path / "log"
    procs = _workers(cfg, "sleepy", log, delay=30.0)
    try:
        _wait_for_starts(log, 2)
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
    study, _ = open_study(cfg.name, cfg.storage)
    deadline = time.time() + 30
    while not may_judge(study, cfg, link) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(cfg.grace_period + 1)
    assert sorted(fail_stale_trials(study, cfg, link)) == sorted(set(_lines(log, "start")))
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 2
    for t in failed:
        assert t.user_attrs[FAIL_REASON].startswith("stale: no heartbeat"), t.user_attrs


def test_a_result_finished_after_its_trial_was_failed_as_stale_lands_on_its_retry(scratch_db):
    """The worker's result is not lost: its WAITING retry is claimed and completed."""
    from kdtune.storage import optuna_adapter
    from kdtune.storage.link import DatabaseLink
    from kdtune.study.budget import requeue
    from kdtune.study.outcome import tell_complete, tell_failed
    from kdtune.study.service import open_study

    cfg = _cfg(scratch_db, 4)
    create_study(cfg)
    study, _ = open_study(cfg.name, cfg.storage, heartbeat=True)
    link = DatabaseLink("test")
    cut_off, other = study.ask(), study.ask()
    for t in (cut_off, other):
        t.suggest_float("temperature", 1.0, 20.0, log=True)
        t.set_user_attr("config", {"t": t.number})
        # what another worker's stale check does
        tid = optuna_adapter.trial_id(t)
        assert optuna_adapter.fail_running_trial(study, tid, {FAIL_REASON: "stale: test"})
        requeue(study, optuna_adapter.get_trial(study, tid), cfg.max_retries)
    assert tell_complete(study, cut_off, [0.5, 0.25], link, "test") == "complete"
    trials = study.get_trials()
    retry = next(t for t in trials if t.system_attrs.get(RETRY_HISTORY) == [cut_off.number])
    assert retry.state == TrialState.COMPLETE and retry.values == [0.5, 0.25]
    assert retry.params == trials[cut_off.number].params
    assert retry.user_attrs["config"] == {"t": cut_off.number}
    assert trials[cut_off.number].state == TrialState.FAIL
    # a failure of a trial already failed as stale writes nothing more
    assert tell_failed(study, other, "RuntimeError: x", cfg, True, link, "test") == "gone"
    assert len(study.get_trials()) == len(trials)
