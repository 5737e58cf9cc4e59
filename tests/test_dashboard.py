"""``kdtune dashboard``: optuna-dashboard on the embedded storage, with a hypervolume chart.

The end-to-end test starts the real dashboard (``python -m kdtune.study.cli dashboard``) in a
background process and reads its JSON API (optuna-dashboard 0.21 routes: ``GET
/api/studies`` and ``GET /api/studies/<id>?after=0``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from kdtune.attrs import PHI_CNF
from kdtune.errors import KdtuneError
from kdtune.storage import make_storage
from kdtune.storage.optuna_adapter import study_id, study_storage
from kdtune.study.config import validate
from kdtune.study.dashboard import (
    HYPERVOLUME_GRAPH_ID,
    dashboard_url,
    is_loopback,
    publish_hypervolume,
    serve,
)
from kdtune.study.service import create_study, open_study

REPO = Path(__file__).resolve().parent.parent
DISTS = {"temperature": FloatDistribution(1.0, 8.0)}
# (accuracy_student, sigma); None: a failed trial. Front: 2, 1. Against the reference point
# (accuracy 0, sigma 0.5) the final hypervolume is 0.9 * 0.4 + 0.8 * 0.05 = 0.40.
VALUES = [(0.70, 0.20), (0.80, 0.05), None, (0.90, 0.10)]
FINAL_HV = 0.9 * 0.4 + 0.8 * 0.05


@pytest.fixture(scope="module")
def kd_study():
    name = f"dash-{uuid.uuid4().hex[:10]}"
    create_study(validate({"name": name, "distill": {"teacher": "unused"}}))
    study, _ = open_study(name, None)
    for i, v in enumerate(VALUES):
        params = {"temperature": 1.0 + i}
        if v is None:
            study.add_trial(create_trial(state=TrialState.FAIL, params=params,
                                         distributions=DISTS))
        else:
            study.add_trial(create_trial(values=list(v), params=params, distributions=DISTS,
                                         user_attrs={PHI_CNF: v[1] <= 0.05}))
    yield study
    optuna.delete_study(study_name=name, storage=study_storage(study))


def _saved_figure(study: optuna.Study) -> dict:
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    system_attrs = study_storage(study).get_study_system_attrs(study_id(study))
    return json.loads(get_plotly_graph_objects(system_attrs)[HYPERVOLUME_GRAPH_ID])


def test_publish_hypervolume_saves_a_chart_in_kdtune_studies_only(kd_study):
    storage = make_storage(None)
    plain = optuna.create_study(storage=storage, study_name=f"plain-{uuid.uuid4().hex[:8]}",
                                directions=["maximize", "minimize"])
    try:
        outcome = publish_hypervolume(storage)
        assert outcome[kd_study.study_name] == "saved"
        assert plain.study_name not in outcome
        fig = _saved_figure(kd_study)
        assert fig["data"][0]["x"] == [0, 1, 3]  # the failed trial 2 is skipped
        assert fig["data"][0]["y"][-1] == pytest.approx(FINAL_HV)
        assert "sigma=0.5" in fig["layout"]["title"]["text"]
        publish_hypervolume(storage)  # again: overwritten under the same id, not added
        ids = _saved_ids(kd_study)
        assert ids == [HYPERVOLUME_GRAPH_ID]
    finally:
        optuna.delete_study(study_name=plain.study_name, storage=storage)


def _saved_ids(study: optuna.Study) -> list[str]:
    from optuna_dashboard._custom_plot_data import list_graph_object_ids

    return list_graph_object_ids(study_storage(study).get_study_system_attrs(study_id(study)))


def test_loopback_and_url():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    assert dashboard_url("127.0.0.1", 8080) == "http://127.0.0.1:8080/dashboard"
    assert dashboard_url("::1", 9) == "http://[::1]:9/dashboard"


def test_serve_uses_kdtune_storage_and_warns_off_loopback(monkeypatch, capsys):
    import optuna_dashboard

    calls = []
    monkeypatch.setattr(optuna_dashboard, "run_server",
                        lambda storage, host, port: calls.append((storage, host, port)))
    monkeypatch.setattr("kdtune.study.dashboard.publish_hypervolume", lambda storage: {})
    serve(None, host="0.0.0.0", port=8123)
    (storage, host, port), = calls
    assert isinstance(storage, optuna.storages.RDBStorage) and (host, port) == ("0.0.0.0", 8123)
    out = capsys.readouterr()
    assert "no authentication" in out.err and "http://0.0.0.0:8123/dashboard" in out.out

    serve(None, port=8124)
    assert "no authentication" not in capsys.readouterr().err

    def busy(storage, host, port):
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(optuna_dashboard, "run_server", busy)
    with pytest.raises(KdtuneError, match="cannot serve on 127.0.0.1:8125: Address already"):
        serve(None, port=8125)
    with pytest.raises(ValueError, match="--port"):
        serve(None, port=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_dashboard_serves_the_study_with_metric_names_and_hypervolume(kd_study, tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "dashboard.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kdtune.study.cli", "dashboard", "--port", str(port)],
        cwd=REPO, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        summaries = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"dashboard exited with {proc.returncode}:\n"
                            + (tmp_path / "dashboard.log").read_text())
            try:
                summaries = _get_json(f"{base}/api/studies")["study_summaries"]
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        assert summaries is not None, "dashboard did not answer within 30 s:\n" + (
            tmp_path / "dashboard.log").read_text()
        mine = [s for s in summaries if s["study_name"] == kd_study.study_name]
        assert len(mine) == 1 and mine[0]["directions"] == ["maximize", "minimize"]

        detail = _get_json(f"{base}/api/studies/{mine[0]['study_id']}?after=0")
        assert detail["name"] == kd_study.study_name
        assert detail["objective_names"] == ["accuracy_student", "sigma"]
        assert len(detail["trials"]) == len(VALUES)
        assert sorted(t["number"] for t in detail["best_trials"]) == [1, 3]
        graphs = {g["id"]: json.loads(g["graph_object"])
                  for g in detail["plotly_graph_objects"]}
        assert graphs[HYPERVOLUME_GRAPH_ID]["data"][0]["y"][-1] == pytest.approx(FINAL_HV)
        text = (tmp_path / "dashboard.log").read_text()
        assert f"{base}/dashboard" in text and "no authentication" not in text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_metric_names_come_from_the_catalogue():
    from kdtune.errors import UsageError
    from kdtune.objectives.catalogue import METRICS
    from kdtune.study.service import metric_names

    assert metric_names(["accuracy_student", "sigma"]) == [
        METRICS["accuracy_student"].name, METRICS["sigma"].name]
    with pytest.raises(UsageError, match="accepted: accuracy_student"):
        metric_names(["accuracy_student", "speed"])
    with pytest.raises(UsageError, match="--port must be between 1 and 65535"):
        serve(None, port=70000)
