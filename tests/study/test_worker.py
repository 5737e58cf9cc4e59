"""Workers on a shared PostgreSQL study: exact budget, retries, SIGKILL and SIGTERM.

The workers here are real ``kdtune worker`` processes on the embedded PostgreSQL server;
only the objective is a fast stand-in (tests/study/worker_objectives.py, via the hidden
``--objective module:function`` option) so the mechanics can be exercised in seconds. The
distillation objective itself is tested in test_objective.py and, end to end through
workers, in test_cli.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from kdtune.attrs import FAIL_REASON, RETRY_HISTORY
from kdtune.study.budget import budget_counts
from kdtune.study.config import validate
from kdtune.study.service import create_study, open_study

REPO = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parent


def _cfg(n_trials: int, **extra):
    return validate({"name": f"w-{uuid.uuid4().hex[:8]}", "distill": {"teacher": "unused"},
                     "n_trials": n_trials, "sampler": {"name": "random", "seed": 1},
                     "heartbeat_interval": 1, "grace_period": 3, **extra})


def _worker(name: str, objective: str, log: Path, index: int, delay: float = 0.3,
            **extra_env: str):
    env = dict(os.environ, KDTUNE_TEST_LOG=str(log), KDTUNE_TEST_DELAY=str(delay),
               PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]), **extra_env)
    return subprocess.Popen(
        [sys.executable, "-m", "kdtune.study.cli", "worker", "--study", name,
         "--index", str(index), "--threads", "1",
         "--objective", f"worker_objectives:{objective}"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _log_lines(log: Path, kind: str) -> list[tuple[int, int]]:
    out = []
    for line in log.read_text().splitlines():
        k, number, pid = line.split()
        if k == kind:
            out.append((int(number), int(pid)))
    return out


def _kill_then_finish(name: str, objective: str, log: Path, kind: str, delay: float) -> int:
    """Worker 0 (slow) runs until the log's first ``kind`` line, is SIGKILLed, and worker 1
    (fast) finishes the budget; returns the trial number of that first line."""
    victim = _worker(name, objective, log, 0, delay=delay)
    deadline = time.time() + 90
    while time.time() < deadline and not (log.exists() and _log_lines(log, kind)):
        time.sleep(0.1)
    killed = _log_lines(log, kind)[0][0]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    survivor = _worker(name, objective, log, 1, delay=0.2)
    out = survivor.communicate(timeout=180)[0]
    assert survivor.returncode == 0, out
    return killed


def test_two_workers_finish_exactly_the_budget_without_duplicates(tmp_path):
    cfg = _cfg(10)
    create_study(cfg)
    log = tmp_path / "log"
    procs = [_worker(cfg.name, "sleepy", log, i) for i in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    study, _ = open_study(cfg.name, None)
    trials = study.get_trials()
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 10
    assert len(trials) == 10
    started = _log_lines(log, "start")
    numbers = Counter(n for n, _ in started)
    assert sorted(numbers) == list(range(10)) and max(numbers.values()) == 1
    assert len({pid for _, pid in started}) == 2, "both workers should have taken trials"
    # reseeded samplers: the two workers did not suggest identical parameters
    params = {tuple(sorted(t.params.items())) for t in trials}
    assert len(params) == 10


def test_epoch_budget_stops_the_study_before_n_trials(tmp_path):
    """A compute budget of 10 epochs at 3 epochs a trial: one worker takes 4 trials (9 < 10
    after three, 12 after four) and stops although n_trials allows 20."""
    from kdtune.study.service import study_status

    cfg = _cfg(20, epoch_budget=10)
    create_study(cfg)
    proc = _worker(cfg.name, "epochs3", tmp_path / "log", 0)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    status = study_status(cfg.name, None)
    assert status["complete"] == 4 and status["epochs_trained"] == 12, status
    assert status["epoch_budget"] == 10


def test_sigkill_mid_trial_is_retried_and_budget_still_reached(tmp_path):
    cfg = _cfg(6)
    create_study(cfg)
    log = tmp_path / "log"
    killed_trial = _kill_then_finish(cfg.name, "sleepy", log, "start", delay=4.0)
    study, _ = open_study(cfg.name, None)
    trials = study.get_trials()
    counts = budget_counts(trials)
    assert counts["complete"] == 6 and counts["running"] == 0 and counts["waiting"] == 0
    dead = trials[killed_trial]
    assert dead.state == TrialState.FAIL
    retries = [t for t in trials if killed_trial in t.system_attrs.get(RETRY_HISTORY, [])]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == dead.params


def test_sigterm_fails_and_requeues_the_current_trial(tmp_path):
    cfg = _cfg(3)
    create_study(cfg)
    log = tmp_path / "log"
    proc = _worker(cfg.name, "sleepy", log, 0, delay=30.0)
    deadline = time.time() + 60
    while time.time() < deadline and not (log.exists() and _log_lines(log, "start")):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode in (0, 143), out  # 143: the CLI's exit code for SIGTERM (#11)
    study, _ = open_study(cfg.name, None)
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    assert "SIGTERM" in trials[0].user_attrs[FAIL_REASON]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].params == trials[0].params


def test_raised_trials_are_retried_but_not_retryable_ones(tmp_path):
    cfg = _cfg(4, max_retries=1)
    create_study(cfg)
    log = tmp_path / "log"
    proc = _worker(cfg.name, "flaky", log, 0)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    study, _ = open_study(cfg.name, None)
    trials = study.get_trials()
    by_state = Counter(t.state for t in trials)
    # trial 0 failed, its retry (a later number) is evaluated again; trial 1 fails for good
    assert trials[0].state == TrialState.FAIL and "transient" in trials[0].user_attrs[
        FAIL_REASON]
    assert trials[1].state == TrialState.FAIL and "nan" in trials[1].user_attrs[FAIL_REASON]
    assert not any(1 in t.system_attrs.get(RETRY_HISTORY, []) for t in trials)
    retry_of_0 = [t for t in trials if 0 in t.system_attrs.get(RETRY_HISTORY, [])]
    assert len(retry_of_0) == 1
    # budget: finished = COMPLETE + final FAILs; trial 0's retry also fails (number 0 rule
    # applies only to number 0), so the count is exact either way
    assert budget_counts(trials)["finished"] == 4
    assert by_state[TrialState.RUNNING] == 0


def test_missing_study_is_one_line_exit_2():
    out = subprocess.run([sys.executable, "-m", "kdtune.study.cli", "worker", "--study",
                          f"nope-{uuid.uuid4().hex[:6]}"], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith("kdtune: error: no study named")
    assert out.stderr.count("\n") == 1


@pytest.mark.parametrize("objective", ["sleepy"])
def test_optuna_cli_reads_the_study(objective, tmp_path):
    """Optuna's own CLI reads a kdtune study from the same PostgreSQL."""
    from kdtune.storage import storage_url

    cfg = _cfg(3)
    create_study(cfg)
    log = tmp_path / "log"
    proc = _worker(cfg.name, objective, log, 0, delay=0.0)
    assert proc.wait(timeout=120) == 0
    optuna_cli = Path(sys.executable).parent / "optuna"
    out = subprocess.run([str(optuna_cli), "best-trials", "--storage", storage_url(None),
                          "--study-name", cfg.name, "-f", "json"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import json

    best = json.loads(out.stdout)
    assert best and {"number", "values"} <= set(best[0])
    study = optuna.load_study(study_name=cfg.name, storage=storage_url(None))
    assert sorted(b["number"] for b in best) == sorted(t.number for t in study.best_trials)


def test_a_trial_orphaned_before_its_first_heartbeat_is_requeued(tmp_path):
    """A worker that died between ask() and its first heartbeat must not block the study."""
    cfg = _cfg(3)
    create_study(cfg)
    study, _ = open_study(cfg.name, None)
    orphan = study.ask()  # RUNNING, never beats: like a worker killed right after asking
    orphan.suggest_float("temperature", 1.0, 20.0, log=True)
    time.sleep(cfg.grace_period + 1)
    log = tmp_path / "log"
    proc = _worker(cfg.name, "sleepy", log, 0, delay=0.0)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    trials = study.get_trials()
    counts = budget_counts(trials)
    assert counts["complete"] == 3 and counts["running"] == 0
    assert trials[orphan.number].state == TrialState.FAIL
    assert any(orphan.number in t.system_attrs.get(RETRY_HISTORY, []) for t in trials)


def test_database_counts_match_loaded_counts(tmp_path):
    from kdtune.study.budget import budget_counts_db

    cfg = _cfg(4, max_retries=1)
    create_study(cfg)
    proc = _worker(cfg.name, "flaky", tmp_path / "log", 0)
    assert proc.wait(timeout=120) == 0
    study, _ = open_study(cfg.name, None)
    assert budget_counts_db(study) == budget_counts(study.get_trials())


# --------------------------------------------------------------------------- arguments


def test_objective_argument_forms():
    from kdtune.errors import UsageError
    from kdtune.study.worker import load_objective

    cfg = _cfg(1)

    def mine(trial):
        return [0.0, 0.0]

    assert load_objective(cfg, mine) is mine
    assert callable(load_objective(cfg, "worker_objectives:sleepy"))
    with pytest.raises(UsageError, match="not of the form module:function"):
        load_objective(cfg, "worker_objectives")
    with pytest.raises(UsageError, match="cannot be imported"):
        load_objective(cfg, "worker_objectives:nothing_here")
    with pytest.raises(UsageError, match="cannot be imported"):
        load_objective(cfg, "no_such_module_kdtune:f")


def test_default_objective_is_given_the_threads(monkeypatch):
    import kdtune.objectives.search.trial as trial_module
    from kdtune.study.worker import load_objective

    seen = {}

    def fake(base, space, objectives, **kwargs):
        seen.update(base=base, objectives=objectives, **kwargs)
        return "objective"

    monkeypatch.setattr(trial_module, "make_objective", fake)
    cfg = _cfg(1)
    assert load_objective(cfg, None, threads=3) == "objective"
    assert seen == {"base": cfg.distill, "objectives": cfg.objectives, "threads": 3}


def test_bad_threads_is_a_usage_error():
    from kdtune.errors import UsageError
    from kdtune.study.worker import run_worker

    with pytest.raises(UsageError, match="--threads must be 1 or more"):
        run_worker("any", None, index=0, threads=0)


def test_run_study_starts_workers_with_threads_not_environment(monkeypatch):
    import kdtune.study.local as local

    started = []

    class FakeProcess:
        def __init__(self, argv, env, **kwargs):
            started.append((argv, env))

        def poll(self):
            return 0

        def wait(self):
            return 0

    monkeypatch.setattr(local.subprocess, "Popen", FakeProcess)
    cfg = _cfg(2)
    monkeypatch.setattr(local, "create_study", lambda cfg: {})
    monkeypatch.setattr(local, "open_study", lambda name, storage: (None, cfg))
    monkeypatch.setattr(local, "_watch", lambda cfg, procs, progress: None)
    monkeypatch.setattr(local, "study_status", lambda name, storage: {"study": name})
    monkeypatch.delenv("KDTUNE_THREADS", raising=False)
    assert local.run_study(cfg, workers=2, progress=False) == {"study": cfg.name}
    threads = str(local.worker_threads(cfg, 2))
    for i, (argv, env) in enumerate(started):
        assert argv[-6:] == ["--study", cfg.name, "--index", str(i), "--threads", threads]
        assert "KDTUNE_THREADS" not in env and "KDTUNE_OBJECTIVE" not in env
    pinned = validate({**json_cfg(cfg), "distill": {"teacher": "unused", "threads": 3}})
    assert local.worker_threads(pinned, 2) == 3


def json_cfg(cfg) -> dict:
    import json

    return json.loads(cfg.model_dump_json())


def test_sqlite_budget_lock_is_the_shared_file_lock(tmp_path):
    import fcntl

    from kdtune.study.budget import budget_lock

    db = tmp_path / "s.db"
    cfg = _cfg(1, storage=f"sqlite:///{db}")
    create_study(cfg)
    study, _ = open_study(cfg.name, cfg.storage)
    lock = Path(f"{db}.kdtune-lock")
    with budget_lock(study):
        assert lock.exists()
        with open(lock, "a+b") as fh, pytest.raises(BlockingIOError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock, "a+b") as fh:  # released
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_sampler_seed_streams_do_not_overlap_across_studies_and_workers():
    from kdtune.study.service import build_sampler, sampler_seed

    seeds = {(s, i): sampler_seed(s, i) for s in range(4) for i in range(4)}
    assert len(set(seeds.values())) == len(seeds)  # seed 1 / worker 0 is not seed 0 / worker 1
    assert seeds[(0, 1)] == sampler_seed(0, 1)  # and stable

    def first_draws(index: int) -> list[float]:
        import optuna

        study = optuna.create_study(sampler=build_sampler(_cfg(2), index))
        return [study.ask().suggest_float("x", 0, 1) for _ in range(3)]

    assert first_draws(0) == first_draws(0) != first_draws(1)

