"""The teacher an export names, recorded so the export travels to another machine.

:func:`teacher_record` (``kdtune export``): the teacher as the study named it, its checkpoint
digest (:func:`~kdtune.objectives.cache.fingerprint.checkpoint_digest`) and, for a teacher
``kdtune teacher fit`` made, the recipe it was fitted from. :func:`resolve_teacher`
(``kdtune distill``): the directory to distil from here (``--teacher``, the recorded path,
this home's teacher cache, or a refit from the recipe), refused in one line when its digest
is not the recorded one.
Why: docs/design.md, "An export travels".
"""

from __future__ import annotations

import sys
from pathlib import Path

from kdtune.errors import UsageError

__all__ = ["resolve_teacher", "teacher_record"]


def teacher_record(teacher: str) -> dict:
    """``{path, fingerprint, recipe}`` of the teacher a study distilled from.

    ``fingerprint`` is ``None`` for a hub id missing from the local hub cache; ``recipe`` is
    the fit config of a teacher ``kdtune teacher fit`` made (its ``kdtune_teacher.json``),
    else ``None``.
    """
    from kdtune.objectives.cache.fingerprint import checkpoint_digest

    record: dict = {"path": teacher, "fingerprint": None, "recipe": None}
    try:
        record["fingerprint"] = checkpoint_digest(teacher)
    except UsageError:
        return record
    record["recipe"] = _recipe(teacher)
    return record


def _recipe(teacher: str | Path) -> dict | None:
    from kdtune.objectives.teacher.load import TEACHER_METADATA, read_teacher_metadata

    if not (Path(str(teacher)).expanduser() / TEACHER_METADATA).is_file():
        return None
    try:
        config = read_teacher_metadata(teacher).get("config")
    except UsageError:
        return None
    return config if isinstance(config, dict) else None


def resolve_teacher(record: dict | None, configured: str, given: str | None = None,
                    refit: bool = False) -> str:
    """The teacher checkpoint ``kdtune distill`` uses on this machine.

    In order: ``given`` (``--teacher``); the ``configured`` path when it exists here (or is
    a hub id); this home's cached fit of the recorded recipe; with ``refit``, a new fit of
    that recipe. A teacher found here must have the recorded fingerprint; a refitted one is
    used with a warning when it differs (a fit is reproducible only on the same hardware).

    Args:
        record: the export's ``source.teacher`` (:func:`teacher_record`), or ``None`` for a
            hand-written config or an older export (nothing is checked then).
        configured: the config's ``teacher``.

    Raises:
        UsageError: one line: no teacher here (saying what to give), or a teacher whose
            fingerprint differs from the recorded one.
    """
    if given is not None:
        if not Path(given).expanduser().is_dir():
            raise UsageError(f"--teacher {given}: no such checkpoint directory")
        _same_teacher(given, record, "--teacher")
        return given
    if record is None:
        return configured
    if Path(configured).expanduser().exists():
        _same_teacher(configured, record, "the export's teacher")
        return configured
    if not configured.startswith(("/", ".", "~")) and record.get("recipe") is None:
        # a hub id: checked when its snapshot is in the local hub cache, else fetched
        _same_teacher(configured, record, "the export's teacher", missing_ok=True)
        return configured
    cached = _cached_fit(record, refit)
    if cached is not None:
        return cached
    hint = ("give its checkpoint directory with --teacher DIR"
            + (", or --refit-teacher to fit it again from the recipe the export recorded"
               if record.get("recipe") else ""))
    raise UsageError(f"the export's teacher {configured} is not on this machine; {hint}")


def _cached_fit(record: dict, refit: bool) -> str | None:
    """This home's teacher cache entry for the recorded recipe (fitted first with ``refit``)."""
    from kdtune.objectives.teacher.fit import TeacherFitConfig
    from kdtune.objectives.teacher.load import TEACHER_METADATA
    from kdtune.objectives.teacher.registry import cached_teacher, teacher_cache_key
    from kdtune.paths import kdtune_home

    recipe = record.get("recipe")
    if not recipe:
        return None
    try:
        cfg = TeacherFitConfig.model_validate(recipe)
    except ValueError:
        return None
    path = kdtune_home() / "teachers" / teacher_cache_key(cfg)
    if (path / TEACHER_METADATA).is_file():
        _same_teacher(str(path), record, "the cached teacher")
        return str(path)
    if not refit:
        return None
    path = cached_teacher(cfg)
    try:
        _same_teacher(str(path), record, "the refitted teacher")
    except UsageError as e:
        print(f"kdtune: warning: {e}; distilling from it anyway (--refit-teacher)",
              file=sys.stderr)
    return str(path)


def _same_teacher(teacher: str, record: dict | None, what: str,
                  missing_ok: bool = False) -> None:
    from kdtune.objectives.cache.fingerprint import checkpoint_digest

    expected = None if record is None else record.get("fingerprint")
    if expected is None:
        return
    try:
        found = checkpoint_digest(teacher)
    except UsageError as e:
        if missing_ok:
            return
        raise UsageError(f"{what} {teacher}: {e}") from e
    if found != expected:
        raise UsageError(
            f"{what} {teacher} is not the teacher the trial was distilled from (checkpoint "
            f"{found[:12]}, the export's {expected[:12]})")
