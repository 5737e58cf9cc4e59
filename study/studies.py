"""The studies in a storage: one summary row each (``kdtune studies``), and deleting one.

:func:`list_studies` reads only: on a fresh home it returns no rows without creating storage.
:func:`delete_study` removes a study and its trials.
"""

from __future__ import annotations

import optuna

from kdtune.attrs import STUDY_CONFIG, STUDY_STOPPED
from kdtune.errors import StudyNotFound
from kdtune.storage import StorageSettings, database_errors, describe, make_storage

from .budget import budget_counts, study_state
from .front import pareto_front
from .service import no_storage_yet

__all__ = ["delete_study", "list_studies"]


def list_studies(storage: str | None) -> list[dict]:
    """One row per study in ``storage``, oldest first: name, state, trials finished against
    the budget, complete trials, Pareto front size, when its first trial started."""
    if no_storage_yet(storage):
        return []
    st = make_storage(storage, StorageSettings(create_schema=False))
    rows = []
    with database_errors(f"listing the studies in {describe(storage)}"):
        try:
            summaries = optuna.get_all_study_summaries(st, include_best_trial=False)
        except Exception as e:  # an empty database has no tables yet: no studies
            if "does not exist" in str(e) or "no such table" in str(e):
                return []
            raise
        for summary in summaries:
            study = optuna.load_study(study_name=summary.study_name, storage=st)
            counts = budget_counts(study.get_trials(deepcopy=False))
            budget = (summary.user_attrs.get(STUDY_CONFIG) or {}).get("n_trials")
            front = pareto_front(study) if counts["complete"] else []
            started = summary.datetime_start
            rows.append({
                "study": summary.study_name,
                "state": study_state(counts, budget, STUDY_STOPPED in summary.user_attrs),
                "trials": counts["finished"], "budget": budget,
                "complete": counts["complete"], "front": len(front),
                "started": started.isoformat(timespec="seconds") if started else None,
            })
    return sorted(rows, key=lambda r: (r["started"] or "", r["study"]))


def delete_study(name: str, storage: str | None) -> None:
    """Delete study ``name`` and its trials from ``storage``.

    Raises:
        StudyNotFound: no study of that name there.
    """
    if no_storage_yet(storage):
        raise StudyNotFound(f"no study named {name!r} (no studies yet in {describe(storage)})")
    st = make_storage(storage, StorageSettings(create_schema=False))
    with database_errors(f"deleting study {name!r} in {describe(storage)}"):
        names = [s.study_name for s in st.get_all_studies()]
        if name not in names:
            raise StudyNotFound(f"no study named {name!r} in {describe(storage)}; studies "
                                f"there: {', '.join(names[:10]) or 'none'}")
        optuna.delete_study(study_name=name, storage=st)
