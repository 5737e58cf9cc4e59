"""The storage benchmark's setting: the machine, the software versions, a throwaway database.

Used by bench/storage/scale.py and its parts (throughput, latency, ...).
"""

from __future__ import annotations

import os
import platform
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
REPO = BENCH.parent
BACKENDS = ("system-pg", "embedded-pg", "sqlite")
"""The storages compared: a fresh database on the system PostgreSQL, kdtune's embedded
PostgreSQL (storage spec None), and a SQLite file."""


def study_config(name: str, storage: str | None, n_trials: int):
    """A kdtune StudyConfig for a no-op study: random sampler, budget ``n_trials``.

    The teacher is never loaded: the no-op objective (bench/noop_objective.py) replaces the
    distillation objective.
    """
    from kdtune.study.config import validate

    return validate({"name": name, "storage": storage, "distill": {"teacher": "unused"},
                     "n_trials": n_trials, "sampler": {"name": "random"}})


def machine_info() -> dict:
    """CPU count and model, memory, Python version and the load average at the start."""
    mem = ""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"nproc": os.cpu_count(), "memory": mem, "cpu": cpu,
            "load_start": os.getloadavg(), "python": platform.python_version()}


def _psycopg2(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def software_versions(system_url: str) -> dict:
    """Optuna, SQLAlchemy and the system PostgreSQL server's version."""
    import optuna
    import sqlalchemy
    from sqlalchemy import create_engine, text

    out = {"optuna": optuna.__version__, "sqlalchemy": sqlalchemy.__version__}
    eng = create_engine(_psycopg2(system_url))
    try:
        with eng.connect() as c:
            out["system_pg"] = c.execute(text("SHOW server_version")).scalar()
    finally:
        eng.dispose()
    return out


class SystemDatabase:
    """A fresh database on the system PostgreSQL ``server`` (a URL without database name),
    created on entry and dropped (sessions forced out) on exit."""

    def __init__(self, server: str) -> None:
        self.server = server.rstrip("/")
        self.name = f"kdtune_bench_{uuid.uuid4().hex[:8]}"
        self.url = f"{self.server}/{self.name}"

    def _admin(self, sql: str) -> None:
        from sqlalchemy import create_engine, text

        eng = create_engine(f"{_psycopg2(self.server)}/postgres", isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as c:
                c.execute(text(sql))
        finally:
            eng.dispose()

    def __enter__(self) -> SystemDatabase:
        self._admin(f"CREATE DATABASE {self.name}")
        return self

    def __exit__(self, *exc) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
