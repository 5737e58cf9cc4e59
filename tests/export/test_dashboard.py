"""``kdtune dashboard``: optuna-dashboard on the embedded storage, with a hypervolume chart.

The end-to-end test starts the real dashboard (``python -m kdtune.study.cli dashboard``) in a
background process and reads its JSON API (optuna-dashboard 0.21 routes: ``GET
/api/studies`` and ``GET /api/studies/<id>?after=0``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from kdtune.attrs import PHI_CNF
from kdtune.errors import KdtuneError, UsageError
from kdtune.storage import make_storage
from kdtune.storage.optuna_adapter import study_id, study_storage
from kdtune.study.config import validate
from kdtune.study.dashboard.auth import (
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    DashboardGate,
    token_from_env,
)
from kdtune.study.dashboard.charts import HYPERVOLUME_GRAPH_ID, publish, publish_study
from kdtune.study.dashboard.server import dashboard_url, is_loopback, serve
from kdtune.study.service import create_study, open_study

REPO = Path(__file__).resolve().parents[2]
DISTS = {"temperature": FloatDistribution(1.0, 8.0)}
# (accuracy_student, sigma); None: a failed trial. Front: 2, 1. Against the reference point
# (accuracy 0, sigma 0.5) the final hypervolume is 0.9 * 0.4 + 0.8 * 0.05 = 0.40.
VALUES = [(0.70, 0.20), (0.80, 0.05), None, (0.90, 0.10)]
FINAL_HV = 0.9 * 0.4 + 0.8 * 0.05
TOKEN = "t0ken-for-the-dashboard-tests"


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


def publish_one(study: optuna.Study) -> str:
    """:func:`publish_study` for one kdtune study (``publish`` would visit every study)."""
    _, cfg = open_study(study.study_name, None)
    return publish_study(study_storage(study), study.study_name, cfg)


def test_publish_saves_a_chart_in_kdtune_studies_only(kd_study):
    storage = make_storage(None)
    plain = optuna.create_study(storage=storage, study_name=f"plain-{uuid.uuid4().hex[:8]}",
                                directions=["maximize", "minimize"])
    try:
        outcome = publish(storage)
        assert outcome[kd_study.study_name] == "wrote chart, note"
        assert plain.study_name not in outcome
        fig = _saved_figure(kd_study)
        assert fig["data"][0]["x"] == [0, 1, 3]  # the failed trial 2 is skipped
        assert fig["data"][0]["y"][-1] == pytest.approx(FINAL_HV)
        assert "sigma=0.5" in fig["layout"]["title"]["text"]
        assert fig["layout"]["yaxis"]["rangemode"] == "tozero"
        before = study_storage(kd_study).get_study_system_attrs(study_id(kd_study))
        assert publish_one(kd_study) == "up to date"  # nothing new: nothing written
        assert study_storage(kd_study).get_study_system_attrs(study_id(kd_study)) == before
        assert _saved_ids(kd_study) == [HYPERVOLUME_GRAPH_ID]
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


def test_serve_uses_kdtune_storage_and_refuses_off_loopback_without_a_token(monkeypatch,
                                                                           capsys):
    calls, published = [], []
    monkeypatch.setattr("kdtune.study.dashboard.server.run_wsgi",
                        lambda app, host, port: calls.append((app, host, port)))
    monkeypatch.setattr("kdtune.study.dashboard.server.publish",
                        lambda storage: published.append(storage) or {})
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)
    with pytest.raises(UsageError, match="refusing to serve on 0.0.0.0 without authentication"):
        serve(None, host="0.0.0.0", port=8123)
    assert calls == [] and capsys.readouterr().out == ""  # nothing printed, nothing served

    serve(None, port=8124)
    (app, host, port), = calls
    assert isinstance(app, DashboardGate) and app._token is None and not app.allow_writes
    assert (host, port) == ("127.0.0.1", 8124)
    out = capsys.readouterr().out
    assert "no authentication, loopback only; read-only" in out
    assert "read-only: nothing is written to the studies" in out and published == []

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    serve(None, host="0.0.0.0", port=8123, allow_writes=True)
    app, host, _ = calls[-1]
    assert app._token == TOKEN.encode() and app.allow_writes and host == "0.0.0.0"
    out = capsys.readouterr().out
    assert "http://0.0.0.0:8123/dashboard" in out and "token required" in out
    assert TOKEN not in out and len(published) == 1
    assert "knee note current in 0 of 0 kdtune studies; refreshed every 60 s" in out
    with pytest.raises(UsageError, match="--refresh must be a positive"):
        serve(None, port=8126, refresh=0)

    def busy(app, host, port):
        raise OSError(98, "Address already in use")

    monkeypatch.setattr("kdtune.study.dashboard.server.run_wsgi", busy)
    with pytest.raises(KdtuneError, match="cannot serve on 127.0.0.1:8125: Address already"):
        serve(None, port=8125)
    with pytest.raises(ValueError, match="--port"):
        serve(None, port=0)


def test_token_comes_from_the_environment_or_a_file(tmp_path):
    assert token_from_env({}) is None and token_from_env({TOKEN_ENV: ""}) is None
    assert token_from_env({TOKEN_ENV: TOKEN}) == TOKEN
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    assert token_from_env({TOKEN_FILE_ENV: str(secret)}) == TOKEN
    with pytest.raises(UsageError, match="not both"):
        token_from_env({TOKEN_ENV: TOKEN, TOKEN_FILE_ENV: str(secret)})
    with pytest.raises(UsageError, match="cannot read"):
        token_from_env({TOKEN_FILE_ENV: str(tmp_path / "missing")})
    with pytest.raises(UsageError, match="has 5 characters; use at least 16"):
        token_from_env({TOKEN_ENV: "short"})
    secret.write_text("\n")
    with pytest.raises(UsageError, match="has 0 characters"):
        token_from_env({TOKEN_FILE_ENV: str(secret)})


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_gate_accepts_the_token_as_bearer_or_basic_only():
    gate = DashboardGate(lambda environ, start: [b""], TOKEN)
    assert gate.authorised(f"Bearer {TOKEN}") and gate.authorised(f"bearer  {TOKEN} ")
    assert gate.authorised(_basic("kdtune", TOKEN))
    for header in [None, "", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", _basic("admin", TOKEN),
                   _basic("kdtune", TOKEN + "x"), _basic("kdtune", ""), "Basic !!notbase64",
                   "Basic " + base64.b64encode(TOKEN.encode()).decode(), f"Token {TOKEN}",
                   TOKEN]:
        assert not gate.authorised(header), header
    assert DashboardGate(gate.app, TOKEN, user="ops").authorised(_basic("ops", TOKEN))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _get_json(url: str, headers: dict | None = AUTH) -> dict:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as r:
        return json.loads(r.read())


def _http_error(url: str, headers: dict | None = None, method: str = "GET",
                data: bytes | None = None) -> urllib.error.HTTPError:
    request = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    return caught.value


@contextlib.contextmanager
def running_dashboard(tmp_path: Path, env: dict[str, str],
                      args: Sequence[str] = ()) -> Iterator[str]:
    """A real ``kdtune dashboard`` process (with ``args``) on a free loopback port, once it
    answers ``/healthz``; yields its base URL and stops it afterwards. Its output goes to
    ``tmp_path / "dashboard.log"``."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "dashboard.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kdtune.study.cli", "dashboard", "--port", str(port),
             *args],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"dashboard exited with {proc.returncode}:\n"
                                + log_path.read_text())
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=2).close()
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    if time.monotonic() > deadline:
                        pytest.fail("dashboard did not answer within 30 s:\n"
                                    + log_path.read_text())
                    time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_dashboard_serves_the_study_with_metric_names_and_hypervolume(kd_study, tmp_path):
    publish_one(kd_study)  # what a writable dashboard (or an earlier one) left there
    with running_dashboard(tmp_path, {**os.environ, TOKEN_ENV: TOKEN}) as base:
        summaries = _get_json(f"{base}/api/studies")["study_summaries"]
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
        assert f"{base}/dashboard" in text and "token required" in text and TOKEN not in text

        # the same API with HTTP basic (what a browser sends after its prompt): 200
        basic = {"Authorization": _basic("kdtune", TOKEN)}
        assert len(_get_json(f"{base}/api/studies", basic)["study_summaries"]) == len(summaries)
        # without credentials, or with wrong ones: 401 and a basic challenge, no data
        for headers in [None, {"Authorization": _basic("kdtune", "wrong-token-wrong-token")},
                        {"Authorization": "Bearer nope"}]:
            error = _http_error(f"{base}/api/studies", headers)
            assert error.code == 401, headers
            assert error.headers["WWW-Authenticate"].startswith('Basic realm="kdtune"')
            assert kd_study.study_name.encode() not in error.read()
        assert _http_error(f"{base}/dashboard").code == 401
        # the probe path answers without credentials
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as r:
            assert r.status == 200 and r.read() == b"ok\n"
        # read-only: a note is refused even with the token, and none is written
        sid = mine[0]["study_id"]
        note = json.dumps({"version": 0, "body": "hello"}).encode()
        error = _http_error(f"{base}/api/studies/{sid}/note", AUTH, method="PUT", data=note)
        assert error.code == 403 and "read-only" in json.loads(error.read())["reason"]
        assert _get_json(f"{base}/api/studies/{sid}?after=0")["note"]["body"] != "hello"


def test_metric_names_come_from_the_catalogue():
    from kdtune.errors import UsageError
    from kdtune.objectives.measure.catalogue import METRICS
    from kdtune.study.service import metric_names

    assert metric_names(["accuracy_student", "sigma"]) == [
        METRICS["accuracy_student"].name, METRICS["sigma"].name]
    with pytest.raises(UsageError, match="accepted: accuracy_student"):
        metric_names(["accuracy_student", "speed"])
    with pytest.raises(UsageError, match="--port must be between 1 and 65535"):
        serve(None, port=70000)
