"""Intervals and student size in `kdtune pareto` and `kdtune report`: each trial's paired
bootstrap intervals beside its objectives, and sigma (with its interval) by student size."""

from __future__ import annotations

import csv
import io
import json
import uuid

import optuna
import pytest
from optuna.trial import create_trial
from test_report import DISTS, _assert_png

from kdtune.attrs import PHI_CNF, TRIAL_CONFIG
from kdtune.storage.optuna_adapter import study_storage
from kdtune.study.config import validate
from kdtune.study.report.html import write_report
from kdtune.study.report.tables import pareto_rows, print_pareto
from kdtune.study.service import create_study, open_study

# (accuracy, accuracy interval, sigma, sigma interval, layers, hidden, params) by trial
SIZED = [
    (0.745, [0.702, 0.786], 0.040, [0.031, 0.049], 2, 384, 7_000_000),
    (0.800, [0.760, 0.838], 0.060, [0.050, 0.071], 4, 384, 10_000_000),
    (0.700, [0.655, 0.744], 0.030, [0.022, 0.038], 2, 384, 7_000_000),
    (0.780, [0.739, 0.820], 0.090, [0.075, 0.104], 1, 192, 3_000_000),
]


@pytest.fixture(scope="module")
def sized():
    name = f"report-ci-{uuid.uuid4().hex[:10]}"
    create_study(validate({"name": name, "distill": {"teacher": "unused"}}))
    study, _ = open_study(name, None)
    for i, (acc, acc_ci, sigma, sigma_ci, layers, hidden, params) in enumerate(SIZED):
        study.add_trial(create_trial(
            values=[acc, sigma], params={"temperature": 1.0 + i, "alpha": 0.5},
            distributions=DISTS,
            user_attrs={"accuracy_student": acc, "accuracy_student_ci": acc_ci, "sigma": sigma,
                        "sigma_ci": sigma_ci, "sigma_max": sigma, "sigma_max_ci": sigma_ci,
                        "sigma_per_class": [sigma, sigma], "n_resamples": 1000,
                        PHI_CNF: sigma <= 0.05, "params": params, "student_layers": layers,
                        "student_hidden_size": hidden, TRIAL_CONFIG: {"teacher": "unused"}}))
    yield study, name
    optuna.delete_study(study_name=name, storage=study_storage(study))


def test_pareto_rows_carry_the_intervals_beside_their_objectives(sized, capsys):
    _, name = sized
    rows = pareto_rows(name, None)
    assert [r["trial"] for r in rows] == [1, 0, 2]  # 3 is dominated by 1
    assert list(rows[0])[:5] == ["trial", "accuracy_student", "accuracy_student_ci", "sigma",
                                 "sigma_ci"]
    by_trial = {r["trial"]: r for r in rows}
    assert by_trial[0]["accuracy_student_ci"] == [0.702, 0.786]
    assert by_trial[0]["sigma_ci"] == [0.031, 0.049]

    print_pareto(rows, "json")
    back = json.loads(capsys.readouterr().out)
    assert back == rows and back[1]["sigma_ci"] == [0.031, 0.049]  # numbers, not text

    print_pareto(rows, "csv")
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert "sigma_ci" not in table[0]
    assert float(table[1]["accuracy_student_ci_low"]) == 0.702
    assert float(table[1]["sigma_ci_high"]) == 0.049

    out = io.StringIO()
    print_pareto(rows, "table", file=out)
    text = out.getvalue()
    assert "0.745 [0.702, 0.786]" in text and "0.04 [0.031, 0.049]" in text
    assert "sigma_ci" not in text


def test_size_rows_give_the_lowest_sigma_per_student_size(sized):
    from kdtune.study.front import complete_trials
    from kdtune.study.report.size import size_rows

    study, name = sized
    _, cfg = open_study(name, None)
    rows = size_rows(complete_trials(study), cfg)
    assert [r["size"] for r in rows] == ["1 x 192", "2 x 384", "4 x 384"]  # smallest first
    two = rows[1]
    assert two["trials"] == 2 and two["best_trial"] == 2 and two["sigma"] == 0.030
    assert two["sigma_ci"] == [0.022, 0.038] and two["accuracy_student_ci"] == [0.655, 0.744]
    assert two["median_sigma"] == pytest.approx(0.035) and two[PHI_CNF] is True


def test_report_shows_intervals_and_sigma_by_size(sized, tmp_path):
    _, name = sized
    paths = write_report(name, None, tmp_path / "r")
    assert "size" in paths
    _assert_png(paths["size"])
    page = paths["html"].read_text()
    assert 'src="sigma_by_size.png"' in page and "Sigma by student size" in page
    assert "0.745 [0.702, 0.786]" in page and "2 x 384" in page
    assert "1,000 resamples" in page


def test_a_sigma_max_study_reads_sigma_max_by_size():
    from kdtune.study.report.size import sigma_metric

    k3 = validate({"name": "k3", "distill": {"teacher": "unused"},
                   "objectives": ["accuracy_student", "sigma_max"]})
    assert sigma_metric(k3) == "sigma_max"
    assert sigma_metric(validate({"name": "k2", "distill": {"teacher": "unused"}})) == "sigma"
