"""Signals, stopping the embedded server, and an unusable KDTUNE_HOME, with real processes.

* SIGINT / SIGTERM to ``kdtune run``, ``kdtune worker`` and ``kdtune distill``: exit 130 /
  143 with ``kdtune: interrupted`` / ``kdtune: terminated`` as the last line, no worker
  process left alive (checked by the PIDs ``run`` started), no trial left RUNNING, no
  partial student directory.
* ``kdtune storage stop`` refuses while a worker is connected to the embedded server (its
  own server, under a temporary KDTUNE_HOME), and stops it with ``--force``.
* The embedded server on a read-only or full KDTUNE_HOME: one line naming the problem.

Workers run the sleepy objective of tests/study/worker_objectives.py (``--objective``), on a SQLite
file of the test's own (``run``, ``worker``) so that nothing here depends on, or disturbs, a
shared server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

REPO = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1] / "study"  # worker_objectives.py
STOPS = [pytest.param(signal.SIGINT, 130, "kdtune: interrupted", id="SIGINT"),
         pytest.param(signal.SIGTERM, 143, "kdtune: terminated", id="SIGTERM")]


def _env(log: Path, **extra) -> dict:
    return dict(os.environ, KDTUNE_TEST_LOG=str(log), KDTUNE_TEST_DELAY="2",
                PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]), KDTUNE_THREADS="1",
                **extra)


def _sigint_as_from_a_terminal() -> None:
    """In the child: SIGINT's default action, even when the suite runs as a background job
    of a non-interactive shell, which starts it with SIGINT ignored (an ignored signal stays
    ignored across exec, and Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kdtune(*args: str, env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kdtune.study.cli", *args], env=env,
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_sigint_as_from_a_terminal, **kw)


def _study_yaml(tmp_path: Path, teacher: Path, data: Path, storage: str | None,
                n_trials: int = 6) -> tuple[str, Path]:
    name = f"sig-{uuid.uuid4().hex[:8]}"
    cfg = {"name": name, "n_trials": n_trials, "sampler": {"name": "random", "seed": 1},
           "heartbeat_interval": 1, "grace_period": 3,
           "search": {"max_params_ratio": None},  # the tiny teacher is mostly embedding
           "distill": {"teacher": str(teacher),
                       "data": {"source": str(data), "train_size": 160, "eval_size": 80,
                                "test_size": 80, "max_length": 16}}}
    if storage:
        cfg["storage"] = storage
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return name, path


def _wait_for(predicate, what: str, proc: subprocess.Popen, timeout: float = 45) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"exited {proc.returncode} before {what}: {proc.communicate()}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"no {what} within {timeout} s: {proc.communicate()}")
        time.sleep(0.2)


def _started(log: Path) -> list[int]:
    """PIDs of the processes that started a trial (worker_objectives logs them)."""
    if not log.exists():
        return []
    return [int(line.split()[2]) for line in log.read_text().splitlines()
            if line.startswith("start ")]


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc)."""
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.add(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _trial_states(name: str, storage: str) -> list[TrialState]:
    from kdtune.study.service import open_study

    study, _ = open_study(name, storage)
    return [t.state for t in study.get_trials(deepcopy=False)]


# --------------------------------------------------------------------------- run, worker


@pytest.mark.parametrize(("signum", "code", "line"), STOPS)
def test_run_passes_a_stop_signal_on_and_leaves_no_worker(tmp_path, tiny_bert_dir,
                                                          synthetic_csv, signum, code, line):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    name, config = _study_yaml(tmp_path, tiny_bert_dir, synthetic_csv, storage)
    log = tmp_path / "log"
    run = _kdtune("run", str(config), "--workers", "2", "--objective",
                  "worker_objectives:sleepy", env=_env(log))
    _wait_for(lambda: len(_started(log)) >= 2, "two trials started", run)
    workers = _children(run.pid)
    assert len(workers) == 2 and set(_started(log)) <= workers
    run.send_signal(signum)
    _, err = run.communicate(timeout=60)
    assert run.returncode == code, err
    assert err.rstrip().splitlines()[-1] == line
    assert err.count("kdtune: interrupted") + err.count("kdtune: terminated") == 1, err
    assert "Traceback" not in err
    assert [pid for pid in workers if _alive(pid)] == []
    states = _trial_states(name, storage)
    assert TrialState.RUNNING not in states and states.count(TrialState.FAIL) == 2, states


def test_a_study_stopping_itself_is_told_once_with_one_line_per_failed_trial(
        tmp_path, tiny_bert_dir, synthetic_csv):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    name, config = _study_yaml(tmp_path, tiny_bert_dir, synthetic_csv, storage)
    run = _kdtune("run", str(config), "--workers", "2", "--objective",
                  "worker_objectives:broken", env=_env(tmp_path / "log"))
    _, err = run.communicate(timeout=120)
    assert run.returncode == 1, err
    lines = err.rstrip().splitlines()
    assert "Traceback" not in err and "{" not in err
    assert [line for line in lines if "stopped" in line] == [
        f"kdtune: error: study {name!r} stopped: its first 3 trials all failed with "
        "RuntimeError: the teacher's tokenizer is missing"]
    failed = [line for line in lines if " failed: RuntimeError" in line]
    assert failed and all(line.startswith("kdtune worker ") and line.endswith(
        "(kdtune --debug shows the traceback)") for line in failed), err
    assert all(line.startswith(("kdtune", "trials ")) for line in lines), err


@pytest.mark.parametrize(("signum", "code", "line"), STOPS)
def test_worker_stopped_by_a_signal_exits_non_zero(tmp_path, signum, code, line):
    from kdtune.study.config import validate
    from kdtune.study.service import create_study

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    cfg = validate({"name": f"sig-{uuid.uuid4().hex[:8]}", "distill": {"teacher": "unused"},
                    "n_trials": 4, "sampler": {"name": "random", "seed": 1},
                    "heartbeat_interval": 1, "grace_period": 3, "storage": storage})
    create_study(cfg)
    log = tmp_path / "log"
    worker = _kdtune("worker", "--study", cfg.name, "--storage", storage, "--index", "0",
                     "--objective", "worker_objectives:sleepy", env=_env(log))
    _wait_for(lambda: _started(log), "a trial started", worker)
    worker.send_signal(signum)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == code, err
    assert err.rstrip().splitlines()[-1] == line
    states = _trial_states(cfg.name, storage)
    assert TrialState.RUNNING not in states and TrialState.FAIL in states, states


# --------------------------------------------------------------------------- distill


@pytest.mark.parametrize(("signum", "code", "line"), STOPS)
def test_distill_stopped_saves_nothing_and_says_so(tmp_path, tiny_bert_dir, synthetic_csv,
                                                   signum, code, line):
    config = tmp_path / "distill.yaml"
    config.write_text(yaml.safe_dump({
        "teacher": str(tiny_bert_dir), "epochs": 400, "batch_size": 16, "threads": 1,
        "data": {"source": str(synthetic_csv), "eval_size": 80, "test_size": 80,
                 "max_length": 16}}))
    out = tmp_path / "students" / "student"
    stderr = tmp_path / "stderr"
    with open(stderr, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "kdtune.study.cli", "distill",
                                 str(config), "-o", str(out)], env=_env(tmp_path / "log"),
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=fh,
                                preexec_fn=_sigint_as_from_a_terminal)
        _wait_for(lambda: "epoch 1" in stderr.read_text(), "training", proc, timeout=90)
        proc.send_signal(signum)
        proc.wait(timeout=60)
    err = stderr.read_text()
    assert proc.returncode == code, err[-2000:]
    assert err.rstrip().splitlines()[-1] == f"{line}; no student saved to {out}"
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # no .partial- dir


# --------------------------------------------------------------------------- in process


@pytest.mark.parametrize(("signum", "code", "line"), STOPS)
def test_every_command_maps_its_signal_to_an_exit_code(monkeypatch, capsys, tmp_path,
                                                       signum, code, line):
    """``teacher fit`` and ``demo`` (stand-ins that signal themselves) exit 130 / 143."""
    import kdtune.study.cli.demo as demo
    import kdtune.study.config as config
    from kdtune.objectives.teacher import fit as teacher_fit
    from kdtune.study.cli.root import main

    def killed(*_a, **_k):
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the signal's handler raises before this ends
        raise AssertionError("the signal did not stop the command")

    monkeypatch.setattr(config, "load_teacher_fit", lambda *a: None)
    monkeypatch.setattr(teacher_fit, "fit_teacher", killed)
    monkeypatch.setattr(demo, "run_demo", killed)
    before = signal.getsignal(signal.SIGTERM)
    # pytest run as a background job of a non-interactive shell starts with SIGINT ignored
    sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for argv in (["teacher", "fit", "-o", str(tmp_path / "t")], ["demo"]):
            assert main(argv) == code, argv
            assert capsys.readouterr().err.splitlines() == [line]
    finally:
        signal.signal(signal.SIGINT, sigint)
    assert signal.getsignal(signal.SIGTERM) is before  # main() restores the handler


# --------------------------------------------------------------------------- storage stop


def test_storage_stop_refuses_while_a_worker_is_connected(tmp_path, tiny_bert_dir,
                                                          synthetic_csv):
    home = tmp_path / "home"
    log = tmp_path / "log"
    env = _env(log, KDTUNE_HOME=str(home))
    env.pop("KDTUNE_STORAGE", None)

    def kdtune(*args: str) -> subprocess.CompletedProcess:
        proc = _kdtune(*args, env=env)
        out, err = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    worker = None
    try:
        name, config = _study_yaml(tmp_path, tiny_bert_dir, synthetic_csv, None, n_trials=50)
        created = kdtune("create", str(config))
        assert created.returncode == 0, created.stderr
        worker = _kdtune("worker", "--study", name, "--index", "0", "--objective",
                         "worker_objectives:sleepy", env=env)
        _wait_for(lambda: _started(log), "a trial started", worker, timeout=60)

        refused = kdtune("storage", "stop")
        assert refused.returncode == 2, refused
        [msg] = refused.stderr.splitlines()
        assert msg.startswith("kdtune: error: ") and "client connection" in msg, msg
        assert "--force" in msg and int(msg.split()[2]) >= 1, msg
        assert "running" in kdtune("storage", "status").stdout

        forced = kdtune("storage", "stop", "--force")
        assert forced.returncode == 0 and forced.stdout.strip() == "stopped", forced
        [warning] = forced.stderr.splitlines()
        assert warning.startswith("kdtune: warning: stopping the embedded PostgreSQL"), warning
        assert "stopped" in kdtune("storage", "status").stdout
    finally:
        if worker is not None:
            worker.kill()
            worker.communicate()
        kdtune("storage", "stop", "--force")


# --------------------------------------------------------------------------- KDTUNE_HOME


def _mount_tmpfs(where: Path, options: str) -> bool:
    """Mount a tmpfs at ``where`` (root only); False when this machine does not allow it."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True)
    return done.returncode == 0


def _start_embedded(home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, KDTUNE_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "kdtune.study.cli", "storage", "start"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_read_only_kdtune_home_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    mounted = _mount_tmpfs(ro, "ro,size=1m")
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("root ignores permissions and this machine cannot mount a tmpfs")
        ro.chmod(0o555)
    reason = "Read-only file system" if mounted else "Permission denied"
    try:
        for home in (ro, ro / "home"):  # an existing directory, and one to be created
            done = _start_embedded(home)
            assert done.returncode == 1, done
            assert done.stderr.splitlines() == [
                f"kdtune: error: cannot start the embedded PostgreSQL server: {ro} is not "
                f"writable ({reason}) (set KDTUNE_HOME or give --storage)"]
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], check=True)
        else:
            ro.chmod(0o755)


def test_full_kdtune_home_is_one_line(tmp_path):
    full = tmp_path / "full"
    if not _mount_tmpfs(full, "size=2m"):
        pytest.skip("needs root and tmpfs mounts to make a small file system")
    try:
        done = _start_embedded(full / "home")
        assert done.returncode == 1, done
        [line] = done.stderr.splitlines()
        assert line.startswith("kdtune: error: cannot start the embedded PostgreSQL server")
        assert "No space left on device" in line and "MB free in" in line, line
        assert "(server log" not in line
    finally:
        subprocess.run(["umount", str(full)], check=True)
