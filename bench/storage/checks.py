"""Storage benchmark (b), correctness: the workers' SQL budget count agrees with the count
from loaded trials.

Both are kdtune's shipped functions: ``kdtune.study.budget.budget_counts_db`` (SQL, what
a worker runs on every ask) and ``budget_counts`` (from ``study.get_trials()``, what
``kdtune status`` and reports use).
"""

from __future__ import annotations

import uuid

from env import study_config


def _agree(study) -> bool:
    from kdtune.study.budget import budget_counts, budget_counts_db

    return budget_counts(study.get_trials(deepcopy=False)) == budget_counts_db(study)


def check_counts(url: str, where: str) -> dict:
    """Both counts on a study holding COMPLETE, PRUNED, RUNNING, WAITING, re-queued FAIL and
    final FAIL trials, before and after a re-queued trial fails again and is re-queued."""
    from optuna.trial import TrialState

    from kdtune.storage import optuna_adapter
    from kdtune.study.budget import budget_counts_db, requeue
    from kdtune.study.service import create_study, open_study

    cfg = study_config(f"chk-{uuid.uuid4().hex[:6]}", url, 20)
    create_study(cfg)
    st, _ = open_study(cfg.name, url)
    trials = [st.ask() for _ in range(5)]
    for t in trials:
        t.suggest_float("x", 0, 1)
    st.tell(trials[0], [0.1, 0.2])
    st.tell(trials[1], state=TrialState.PRUNED)
    st.tell(trials[2], state=TrialState.FAIL)  # re-queued
    requeue(st, optuna_adapter.frozen_trial(st, trials[2]), max_retries=2)
    st.tell(trials[3], state=TrialState.FAIL)  # final
    # trials[4] stays RUNNING; the re-queued copy is WAITING
    results = [_agree(st)]
    retry = st.ask()  # pops the WAITING copy, fails it again and re-queues it
    st.tell(retry, state=TrialState.FAIL)
    requeue(st, optuna_adapter.frozen_trial(st, retry), max_retries=2)
    results.append(_agree(st))
    counts = budget_counts_db(st)
    optuna_adapter.rdb_engine(st).dispose()
    return {"where": where, "equal": all(results), "counts": counts}


def check_grown_study(study) -> dict:
    """Both counts on the latency benchmark's grown study."""
    from kdtune.study.budget import budget_counts_db

    return {"where": "grown study", "equal": _agree(study), "counts": budget_counts_db(study)}
