"""Fitted teachers kept under ``kdtune_home()/teachers/``: one per configuration, fitted once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from kdtune.fileio import file_lock
from kdtune.paths import kdtune_home

from .fit import TeacherFitConfig, fit_teacher
from .load import TEACHER_METADATA

__all__ = ["cached_teacher", "teacher_cache_key"]

_CACHE_EXCLUDE = {"device", "threads"}  # where a teacher is fitted, not what it is
_STUDENTS_ONLY = ("transfer", "students")  # data fields a teacher fit never reads


def teacher_cache_key(cfg: TeacherFitConfig) -> str:
    """The directory name :func:`cached_teacher` uses for ``cfg``.

    A hash of the configuration without ``device`` and ``threads`` (they change where a
    teacher is fitted, not what is fitted).
    """
    payload = {"kind": "kdtune-teacher", "v": 1, **cfg.model_dump(mode="json")}
    data = payload["data"]  # keys added later keep earlier teachers' names when unset
    for key in _STUDENTS_ONLY:  # what the students learn on does not change the teacher
        data.pop(key, None)
    if data.get("transfer_size") is None:
        data.pop("transfer_size")
    for key in _CACHE_EXCLUDE:
        payload.pop(key)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def cached_teacher(cfg: TeacherFitConfig, progress: bool = True) -> Path:
    """Return ``kdtune_home()/teachers/<hash of cfg>``, fitting the teacher there if missing.

    Processes that ask for the same teacher at once wait for one fit (a file lock) instead
    of each fitting it.
    """
    root = kdtune_home() / "teachers"
    path = root / teacher_cache_key(cfg)
    if (path / TEACHER_METADATA).is_file():
        return path
    with file_lock(root / f".{path.name}.lock"):
        if not (path / TEACHER_METADATA).is_file():
            fit_teacher(cfg, path, progress=progress, overwrite=True)
    return path
