"""Eight workers behind a real PgBouncer in transaction pooling finish the exact budget.

PgBouncer (Debian's ``pgbouncer`` package; ``.ci/run`` installs it when missing) is started
by the test in front of the system PostgreSQL of ``$KDTUNE_TEST_PG_URL``, with fewer server
connections (4) than the workers open: in transaction pooling consecutive transactions of one
client land on different server connections, which a session-level lock/unlock pair does not
survive (kdtune's budget lock is transaction-scoped). Skipped, with the reason, where there
is no system server or no pgbouncer.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from optuna.trial import TrialState
from test_worker import _worker

from kdtune.study.config import validate
from kdtune.study.service import create_study, open_study

PG_URL = os.environ.get("KDTUNE_TEST_PG_URL")
WORKERS, BUDGET = 8, 24

pytestmark = pytest.mark.system_pg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def bouncer():
    """A PgBouncer in transaction mode in front of the system server; its storage URL."""
    from sqlalchemy.engine import make_url

    if not PG_URL:
        pytest.skip("KDTUNE_TEST_PG_URL is not set (.ci/run sets it)")
    exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(exe):
        pytest.skip("pgbouncer is not installed (Debian package pgbouncer)")
    url = make_url(PG_URL)
    # PgBouncer refuses to run as root: as root it runs as postgres below, which must reach
    # its files (pytest's temporary folders are private to root)
    folder = Path(tempfile.mkdtemp(prefix="kdtune-pgbouncer-"))
    folder.chmod(0o777)
    port = _free_port()
    (folder / "users.txt").write_text(f'"{url.username}" ""\n')
    ini = folder / "pgbouncer.ini"
    ini.write_text(f"""[databases]
{url.database} = host={url.host or '127.0.0.1'} port={url.port or 5432} dbname={url.database}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / 'users.txt'}
pool_mode = transaction
default_pool_size = 4
max_client_conn = 500
ignore_startup_parameters = extra_float_digits,options
logfile = {folder / 'pgbouncer.log'}
pidfile = {folder / 'pgbouncer.pid'}
""")
    command = [exe, str(ini)]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"pgbouncer did not start: {proc.communicate()[0][-2000:]}")
            time.sleep(0.2)
    yield f"postgresql://{url.username}@127.0.0.1:{port}/{url.database}"
    proc.terminate()
    proc.wait(timeout=20)
    shutil.rmtree(folder, ignore_errors=True)


def test_eight_workers_behind_pgbouncer_finish_the_exact_budget(bouncer, tmp_path):
    cfg = validate({"name": f"bouncer-{uuid.uuid4().hex[:8]}", "storage": bouncer,
                    "distill": {"teacher": "unused"}, "n_trials": BUDGET,
                    "sampler": {"name": "random", "seed": 1},
                    # 8 worker processes on 2 cores: a first heartbeat can take longer than
                    # 3 x 2 s to come (a CI run saw one trial failed as stale and retried)
                    "heartbeat_interval": 5})
    create_study(cfg)
    log = tmp_path / "log"
    procs = [_worker(cfg.name, "sleepy", log, i, delay=0.2, KDTUNE_STORAGE=bouncer)
             for i in range(WORKERS)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * WORKERS, outs
    study, _ = open_study(cfg.name, bouncer)
    trials = study.get_trials()
    assert len(trials) == BUDGET
    assert all(t.state == TrialState.COMPLETE for t in trials)
    started = Counter(line.split()[1] for line in log.read_text().splitlines()
                      if line.startswith("start "))
    assert len(started) == BUDGET and max(started.values()) == 1
