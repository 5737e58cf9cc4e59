"""What ``kdtune dashboard`` writes into the studies: nothing when read-only; with
``--publish`` or ``--allow-writes``, metric names, a hypervolume chart and a note naming the
knee trial, kept current while it serves.

The dashboard tests run the real ``kdtune dashboard`` (tests/export/test_dashboard.py's
``running_dashboard``) on the embedded storage and read optuna-dashboard's JSON API.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState, create_trial
from test_dashboard import DISTS, TOKEN, _get_json, publish_one, running_dashboard

from kdtune.attrs import STUDY_CONFIG
from kdtune.storage import make_storage
from kdtune.storage.optuna_adapter import study_id, study_storage
from kdtune.study.config import validate
from kdtune.study.dashboard.auth import TOKEN_ENV
from kdtune.study.dashboard.charts import (
    HYPERVOLUME_GRAPH_ID,
    KNEE_HEADING,
    Refresher,
    with_section,
)
from kdtune.study.export.pick import knee, study_pick
from kdtune.study.front import pareto_front
from kdtune.study.service import create_study, metric_names, open_study

OBJECTIVES = ["accuracy_student", "sigma"]
# (accuracy_student, sigma): all three on the front. Scaled over the front, trial 1 is
# nearest the ideal point (0.27 against 1 for the ends): the knee.
KNEE_VALUES = [(0.70, 0.02), (0.85, 0.04), (0.90, 0.20)]
BETTER = (0.88, 0.03)  # trial 3: dominates trial 1 and becomes the knee
ENV = {**os.environ, TOKEN_ENV: TOKEN}


@pytest.fixture()
def fresh_study():
    """A new kdtune study with the three KNEE_VALUES trials, deleted afterwards."""
    name = f"dash-knee-{uuid.uuid4().hex[:10]}"
    create_study(validate({"name": name, "distill": {"teacher": "unused"}}))
    study, _ = open_study(name, None)
    for i, v in enumerate(KNEE_VALUES):
        _add(study, v, i)
    yield study
    optuna.delete_study(study_name=name, storage=study_storage(study))


@pytest.fixture()
def unnamed_study():
    """A kdtune study as kdtune made them before it set metric names: config, no names."""
    storage = make_storage(None)
    cfg = validate({"name": f"dash-old-{uuid.uuid4().hex[:10]}", "distill": {"teacher": "x"}})
    study = optuna.create_study(storage=storage, study_name=cfg.name,
                                directions=cfg.directions)
    study.set_user_attr(STUDY_CONFIG, json.loads(cfg.model_dump_json()))
    _add(study, (0.8, 0.1), 0)
    yield study
    optuna.delete_study(study_name=cfg.name, storage=storage)


def _add(study: optuna.Study, values: tuple[float, float], i: int) -> None:
    study.add_trial(create_trial(values=list(values), params={"temperature": 1.0 + i},
                                 distributions=DISTS))


def _attrs(study: optuna.Study) -> tuple[dict, dict]:
    storage = study_storage(study)
    sid = study_id(study)
    return storage.get_study_user_attrs(sid), storage.get_study_system_attrs(sid)


def _detail(base: str, study: optuna.Study) -> dict:
    return _get_json(f"{base}/api/studies/{study_id(study)}?after=0")


def _chart(detail: dict) -> dict | None:
    graphs = {g["id"]: g["graph_object"] for g in detail["plotly_graph_objects"]}
    raw = graphs.get(HYPERVOLUME_GRAPH_ID)
    return None if raw is None else json.loads(raw)


def test_new_studies_carry_their_metric_names(fresh_study):
    assert fresh_study.metric_names == metric_names(OBJECTIVES) == OBJECTIVES


def test_read_only_dashboard_writes_nothing(fresh_study, unnamed_study, tmp_path):
    before = [_attrs(fresh_study), _attrs(unnamed_study)]
    with running_dashboard(tmp_path, ENV) as base:
        detail = _detail(base, fresh_study)  # served, and read
        assert detail["name"] == fresh_study.study_name and len(detail["trials"]) == 3
        assert _chart(detail) is None and KNEE_HEADING not in detail["note"]["body"]
    assert [_attrs(fresh_study), _attrs(unnamed_study)] == before
    log = (tmp_path / "dashboard.log").read_text()
    assert "read-only: nothing is written to the studies" in log and "Traceback" not in log
    assert unnamed_study.metric_names is None

    # what a writable dashboard does to the same studies
    assert publish_one(unnamed_study) == "wrote metric names, chart, note"
    assert publish_one(fresh_study) == "wrote chart, note"
    assert unnamed_study.metric_names == OBJECTIVES


def _knee_number(study: optuna.Study) -> int:
    """The trial ``kdtune export --pick knee`` picks (no rescoring here), asked both ways."""
    number = knee(pareto_front(study), ["maximize", "minimize"]).number
    assert study_pick(study, open_study(study.study_name, None)[1]).number == number
    return number


@pytest.mark.parametrize("writes", ["--publish", "--allow-writes"])
def test_writable_dashboard_keeps_chart_and_knee_note_current(fresh_study, tmp_path, writes):
    """--publish: kdtune writes its chart and note, the browser stays read-only;
    --allow-writes: both write."""
    from optuna_dashboard import get_note
    from test_dashboard import AUTH, _http_error

    config_note = get_note(fresh_study)
    assert config_note.startswith(f"# kdtune study `{fresh_study.study_name}`")
    assert _knee_number(fresh_study) == 1
    args = [writes, "--refresh", "1"]
    with running_dashboard(tmp_path, ENV, args) as base:
        if writes == "--publish":  # a browser's write is still refused
            body = json.dumps({"version": 0, "body": "hello"}).encode()
            error = _http_error(f"{base}/api/studies/{study_id(fresh_study)}/note", AUTH,
                                method="PUT", data=body)
            assert error.code == 403
        detail = _detail(base, fresh_study)
        assert _chart(detail)["data"][0]["x"] == [0, 1, 2]
        note = detail["note"]["body"]
        assert note.startswith(config_note.rstrip())  # the config note is kept
        assert note.count(KNEE_HEADING) == 1 and "**Trial 1**: accuracy_student 0.85" in note

        _add(fresh_study, BETTER, 3)
        assert _knee_number(fresh_study) == 3
        deadline = time.monotonic() + 30
        while (_chart(detail)["data"][0]["x"] != [0, 1, 2, 3]
               or "as of 4 complete trials" not in detail["note"]["body"]):  # one round
            assert time.monotonic() < deadline, "the chart was not refreshed within 30 s"
            time.sleep(0.5)
            detail = _detail(base, fresh_study)
        note = detail["note"]["body"]
        assert note.count(KNEE_HEADING) == 1 and "**Trial 3**: accuracy_student 0.88" in note
        assert "as of 4 complete trials" in note and note.startswith(config_note.rstrip())
    log = (tmp_path / "dashboard.log").read_text()
    assert "refreshed every 1 s" in log and "Traceback" not in log


def test_the_knee_section_replaces_its_old_self():
    section = f"{KNEE_HEADING}\n\n**Trial 2**: x.\n"
    assert with_section("", section) == section
    once = with_section("# notes\n\nmine\n", section)
    assert once == f"# notes\n\nmine\n\n{section}"
    newer = section.replace("Trial 2", "Trial 5")
    assert with_section(once, newer) == f"# notes\n\nmine\n\n{newer}"


def test_refresher_repeats_until_stopped_and_survives_a_failed_round():
    calls: list[object] = []
    failed = threading.Event()

    def fake_publish(storage):
        calls.append(storage)
        if len(calls) == 2:
            failed.set()
            raise ConnectionError("database restarting")

    with Refresher("storage", 0.02, fake_publish) as refresher:
        deadline = time.monotonic() + 10
        while len(calls) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert refresher.running and failed.is_set()
    assert not refresher.running
    done = len(calls)
    time.sleep(0.1)
    assert len(calls) == done and set(calls) == {"storage"}
    with pytest.raises(ValueError, match="positive"):
        Refresher("storage", 0)


def test_a_failed_trial_leaves_the_note_alone(fresh_study):
    """A round with nothing new writes nothing: the study's attributes stay as they were."""
    publish_one(fresh_study)
    before = _attrs(fresh_study)
    fresh_study.add_trial(create_trial(state=TrialState.FAIL, params={"temperature": 2.0},
                                       distributions=DISTS))
    assert publish_one(fresh_study) == "up to date"
    assert _attrs(fresh_study) == before
