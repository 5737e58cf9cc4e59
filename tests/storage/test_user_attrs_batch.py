"""A trial's metrics are written in one transaction (issue 14: storage under 1% of a trial).

``set_trial_user_attrs`` replaces one commit per key with one multi-row upsert; the tests
count the commits the storage engine makes, check that the values read back exactly (new
keys and overwritten ones), that a finished trial is refused as Optuna refuses it, and that
the trial object in the writing process sees the values.
"""

from __future__ import annotations

import os
import uuid

import optuna
import pytest
from sqlalchemy import event

from kdtune.storage import make_storage
from kdtune.storage.optuna_adapter import rdb_engine, set_trial_user_attrs

SYSTEM_PG = os.environ.get("KDTUNE_TEST_PG_URL")
METRICS = {f"metric_{i}": i / 7 for i in range(30)} | {
    "accuracy_student_ci": [0.81, 0.87], "phi_cnf": False, "note": None, "label": "é"}


@pytest.fixture(params=["embedded", "system"])
def study(request):
    if request.param == "system" and not SYSTEM_PG:
        pytest.skip("KDTUNE_TEST_PG_URL not set (the system-server run is in .ci/run)")
    storage = make_storage(SYSTEM_PG if request.param == "system" else None)
    name = f"attrs-{uuid.uuid4().hex[:10]}"
    study = optuna.create_study(study_name=name, storage=storage)
    yield study
    optuna.delete_study(study_name=name, storage=storage)


def _commits(study: optuna.Study) -> list[int]:
    counter: list[int] = []
    event.listen(rdb_engine(study), "commit", lambda conn: counter.append(1))
    return counter


def test_many_attributes_one_commit_and_they_read_back(study):
    trial = study.ask()
    trial.set_user_attr("metric_3", "old")  # overwritten below
    commits = _commits(study)
    set_trial_user_attrs(trial, METRICS)
    assert len(commits) == 1
    assert trial.user_attrs == METRICS  # this process's view
    stored = study.get_trials(deepcopy=False)[0].user_attrs  # read back from the database
    assert stored == METRICS

    commits.clear()
    for key, value in list(METRICS.items())[:5]:
        trial.set_user_attr(key, value)
    assert len(commits) == 5  # what it replaces: one commit per key

    commits.clear()
    set_trial_user_attrs(trial, {})
    assert commits == []


def test_a_finished_trial_is_refused_and_left_unchanged(study):
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError, match="COMPLETE"):
        set_trial_user_attrs(trial, {"late": 1})
    assert "late" not in study.get_trials()[0].user_attrs


def test_a_fixed_trial_takes_them_too():
    trial = optuna.trial.FixedTrial({"x": 1.0})
    set_trial_user_attrs(trial, {"a": 1, "b": [2, 3]})
    assert trial.user_attrs == {"a": 1, "b": [2, 3]}
