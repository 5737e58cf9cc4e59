"""Reports: the Pareto front in three formats, the hypervolume history, the HTML report.

Studies are hand-built kdtune studies on the embedded PostgreSQL server (finished trials
added with known values, no training), so every expected number is computed by hand.
"""

from __future__ import annotations

import csv
import io
import json
import random
import uuid

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from kdtune.attrs import DUPLICATE_OF, PHI_CNF, TRIAL_CONFIG
from kdtune.errors import KdtuneError, StudyNotFound, UsageError
from kdtune.storage.optuna_adapter import study_storage
from kdtune.study.config import validate
from kdtune.study.front import hypervolume, hypervolume_history, reference_point
from kdtune.study.report.html import write_report
from kdtune.study.report.tables import pareto_rows, print_pareto
from kdtune.study.service import create_study, open_study

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DISTS = {"temperature": FloatDistribution(1.0, 8.0), "alpha": FloatDistribution(0.0, 1.0)}

# (accuracy_student, sigma) by trial number; None: a failed (5) and a pruned (6) trial.
# Pareto front (accuracy max, sigma min): 7, 2, 1, 3. Trial 0 is dominated by 1, 4 by 2.
VALUES = [(0.80, 0.10), (0.85, 0.05), (0.90, 0.08), (0.70, 0.02), (0.88, 0.09),
          None, None, (0.95, 0.20)]
FRONT = [7, 2, 1, 3]
# Hypervolume against (accuracy 0, sigma 0.5) after each complete trial, by hand: the union
# of the rectangles [0, acc] x [sigma, 0.5].
HV_HISTORY = [
    (0, 0.80 * 0.40),
    (1, 0.85 * 0.45),                                  # 1 dominates 0
    (2, 0.90 * 0.42 + 0.85 * 0.03),                    # sigma band 0.05..0.08 from 1
    (3, 0.90 * 0.42 + 0.85 * 0.03 + 0.70 * 0.03),      # band 0.02..0.05 from 3
    (4, 0.90 * 0.42 + 0.85 * 0.03 + 0.70 * 0.03),      # 4 dominated: no change
    (7, 0.95 * 0.30 + 0.90 * 0.12 + 0.85 * 0.03 + 0.70 * 0.03),
]


def make_study(values, *, kappa: float = 0.05) -> tuple[optuna.Study, str]:
    """A kdtune study on the embedded server with finished trials of the given values."""
    name = f"report-{uuid.uuid4().hex[:10]}"
    cfg = validate({"name": name, "distill": {"teacher": "unused", "eval": {"kappa": kappa}}})
    create_study(cfg)
    study, _ = open_study(name, None)
    for i, v in enumerate(values):
        params = {"temperature": 1.0 + i * 0.5, "alpha": (i % 5) / 5}
        if v is None:
            state = TrialState.FAIL if i % 2 else TrialState.PRUNED
            study.add_trial(create_trial(state=state, params=params, distributions=DISTS))
            continue
        study.add_trial(create_trial(
            values=list(v), params=params, distributions=DISTS,
            user_attrs={"accuracy_student": v[0], "sigma": v[1], PHI_CNF: v[1] <= kappa,
                        "params": 1_000_000, TRIAL_CONFIG: {"teacher": "unused"}},
        ))
    return study, name


@pytest.fixture(scope="module")
def built():
    study, name = make_study(VALUES)
    yield study, name
    optuna.delete_study(study_name=name, storage=study_storage(study))


@pytest.fixture
def small():
    study, name = make_study([(0.75, 0.04), None])
    yield study, name
    optuna.delete_study(study_name=name, storage=study_storage(study))


# --------------------------------------------------------------------------- Pareto rows


def test_pareto_rows_are_the_front_best_accuracy_first(built):
    _, name = built
    rows = pareto_rows(name, None)
    assert [r["trial"] for r in rows] == FRONT
    assert list(rows[0]) == ["trial", "accuracy_student", "sigma", "temperature", "alpha",
                             "params", "phi_cnf"]  # the student's size beside its parameters
    by_trial = {r["trial"]: r for r in rows}
    assert by_trial[1] == {"trial": 1, "accuracy_student": 0.85, "sigma": 0.05,
                           "temperature": 1.5, "alpha": 0.2, "params": 1_000_000,
                           "phi_cnf": True}
    assert by_trial[7]["phi_cnf"] is False


def test_a_repeated_configuration_appears_once_on_the_front():
    study, name = make_study([(0.80, 0.10), (0.70, 0.02)])
    try:
        first = study.trials[0]
        study.add_trial(create_trial(values=first.values, params=first.params,
                                     distributions=DISTS,
                                     user_attrs={**first.user_attrs, DUPLICATE_OF: 0}))
        assert [r["trial"] for r in pareto_rows(name, None)] == [0, 1]
    finally:
        optuna.delete_study(study_name=name, storage=study_storage(study))


def test_json_and_csv_parse_back_to_the_rows(built, capsys):
    _, name = built
    rows = pareto_rows(name, None)
    print_pareto(rows, "json")
    assert json.loads(capsys.readouterr().out) == rows

    print_pareto(rows, "csv")
    back = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [{k: str(v) for k, v in r.items()} for r in rows] == back
    assert float(back[0]["accuracy_student"]) == rows[0]["accuracy_student"]


def test_table_lists_the_front(built):
    _, name = built
    out = io.StringIO()
    print_pareto(pareto_rows(name, None), "table", file=out)
    text = out.getvalue()
    assert "Pareto front (4 trials)" in text and "accuracy" in text
    assert "0.95" in text and "0.02" in text  # significant digits, not fixed decimals


def test_csv_has_the_union_of_conditional_params():
    rows = [{"trial": 0, "sigma": 0.1, "a": 1}, {"trial": 1, "sigma": 0.2, "b": "x"}]
    out = io.StringIO()
    print_pareto(rows, "csv", file=out)
    assert out.getvalue().splitlines() == ["trial,sigma,a,b", "0,0.1,1,", "1,0.2,,x"]


def test_bad_format_names_the_accepted_ones():
    with pytest.raises(ValueError, match="'xml' is not one of table, json, csv"):
        print_pareto([], "xml")


def test_no_complete_trials_and_missing_study_are_one_line_errors():
    study, name = make_study([None])
    try:
        with pytest.raises(KdtuneError, match=f"study '{name}' has no complete trials yet"):
            pareto_rows(name, None)
    finally:
        optuna.delete_study(study_name=name, storage=study_storage(study))
    with pytest.raises(StudyNotFound):
        pareto_rows(f"missing-{uuid.uuid4().hex[:8]}", None)


def test_cli_pareto_json_and_bad_format(built, capsys):
    from kdtune.study.cli.root import main

    _, name = built
    assert main(["pareto", "--study", name, "--format", "json"]) == 0
    assert [r["trial"] for r in json.loads(capsys.readouterr().out)] == FRONT
    assert main(["pareto", "--study", name, "--format", "xml"]) == 2
    assert "table, json, csv" in capsys.readouterr().err


# --------------------------------------------------------------------------- hypervolume


def test_hypervolume_by_hand():
    # staircase over (1,3), (2,2), (3,1) with reference (4,4): 3*1 + 2*1 + 1*1 = 6
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4)) == pytest.approx(6.0)
    # dominated, duplicate and outside-the-reference points add nothing
    assert hypervolume([(1, 3), (2, 2), (3, 1), (3, 3), (2, 2), (5, 0), (0, 4)],
                       (4, 4)) == pytest.approx(6.0)
    assert hypervolume([], (1, 1)) == 0.0
    # three objectives: the union of two boxes, 1*1*2 + 2*1*1 - 1*1*1 = 3
    assert hypervolume([(1, 1, 0), (0, 1, 1)], (2, 2, 2)) == pytest.approx(3.0)


def test_hypervolume_matches_optuna_wfg():
    import numpy as np
    from optuna._hypervolume import compute_hypervolume

    rng = random.Random(0)
    pts = [(rng.random(), rng.random()) for _ in range(40)]
    assert hypervolume(pts, (1.0, 1.0)) == pytest.approx(
        compute_hypervolume(np.asarray(pts), np.asarray([1.0, 1.0])))


def test_hypervolume_history_by_hand(built):
    study, name = built
    _, cfg = open_study(name, None)
    assert reference_point(cfg) == [0.0, 0.5]
    history = hypervolume_history(study, cfg)
    assert [n for n, _ in history] == [n for n, _ in HV_HISTORY]  # failed/pruned skipped
    assert [h for _, h in history] == pytest.approx([h for _, h in HV_HISTORY])


def test_reference_point_for_unbounded_metrics_comes_from_the_trials():
    cfg = validate({"name": "x", "distill": {"teacher": "unused"},
                    "objectives": ["accuracy_student", "latency_ms"]})
    trials = [create_trial(values=[0.9, 10.0]), create_trial(values=[0.8, 30.0])]
    assert reference_point(cfg, trials) == pytest.approx([0.0, 32.0])  # worst + 10% range
    one = validate({"name": "x", "distill": {"teacher": "unused"},
                    "objectives": ["accuracy_student"]})
    with pytest.raises(ValueError, match="2 or more objectives"):
        hypervolume_history(optuna.create_study(direction="maximize"), one)
    with pytest.raises(UsageError, match="3 coordinates, not 2"):
        hypervolume_history(optuna.create_study(directions=cfg.directions), cfg, [0, 1, 2])


def test_reference_point_reads_the_metric_catalogue():
    from kdtune.objectives.measure.catalogue import OBJECTIVES, worst_value

    bounded = [m for m in OBJECTIVES if worst_value(m) is not None]
    assert {"accuracy_student", "sigma", "mcc_student"} <= set(bounded)
    for m in bounded:
        cfg = validate({"name": "x", "distill": {"teacher": "unused"},
                        "objectives": [m, "latency_ms"]})
        assert reference_point(cfg)[0] == worst_value(m)


# --------------------------------------------------------------------------- HTML report


def _assert_png(path):
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_MAGIC), path


def test_write_report(built, tmp_path):
    _, name = built
    out = tmp_path / "nested" / "report"
    paths = write_report(name, None, out)
    assert set(paths) == {"pareto", "hypervolume", "importances", "html"}
    for key, path in paths.items():
        assert path.parent == out
        if key != "html":
            _assert_png(path)
    page = paths["html"].read_text()
    for key in paths:
        if key != "html":
            assert f'src="{paths[key].name}"' in page
    assert "No importances chart" not in page and "importance" in page
    assert "kappa = 0.05" in page and "teacher: unused" in page  # the config is shown
    assert page.count("<tr>") >= len(FRONT) + 1
    assert not list(tmp_path.rglob(".kdtune-report-*"))  # no staging left behind
    assert [p.name for p in out.parent.iterdir()] == ["report"]
    assert out.stat().st_mode & 0o777 == 0o755  # readable, not the staging directory's 0700


def test_report_on_a_small_study_still_draws_the_front(small, tmp_path):
    _, name = small
    (tmp_path / "keep.txt").write_text("not ours")
    (tmp_path / "importances.png").write_bytes(b"stale")
    paths = write_report(name, None, tmp_path)  # an existing directory
    _assert_png(paths["pareto"])
    assert "importances" not in paths and not (tmp_path / "importances.png").exists()
    page = paths["html"].read_text()
    assert "No importances chart" in page and "at least 4 complete trials" in page
    assert (tmp_path / "keep.txt").read_text() == "not ours"
    assert not list(tmp_path.glob(".kdtune-report-*"))


def test_cli_report_refuses_a_file_as_output(small, tmp_path, capsys):
    from kdtune.study.cli.root import main

    _, name = small
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["report", "--study", name, "-o", str(target)]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_importances_follow_each_objective():
    from kdtune.study.report.importance import param_importances

    # accuracy rises with alpha only, sigma with temperature only
    cfg = validate({"name": "x", "distill": {"teacher": "unused"}})
    study = optuna.create_study(directions=cfg.directions)
    rng = random.Random(1)
    for _ in range(30):
        p = {"temperature": rng.uniform(1, 8), "alpha": rng.uniform(0, 1)}
        study.add_trial(create_trial(values=[0.5 + 0.4 * p["alpha"], p["temperature"] / 40],
                                     params=p, distributions=DISTS))
    imp = param_importances(study, cfg)
    assert max(imp["accuracy_student"], key=imp["accuracy_student"].get) == "alpha"
    assert max(imp["sigma"], key=imp["sigma"].get) == "temperature"


@pytest.mark.parametrize("objectives", [["accuracy_student", "sigma"],
                                        ["accuracy_student", "sigma", "latency_ms"]])
def test_hypervolume_history_matches_optuna(objectives):
    import numpy as np
    from optuna.visualization._hypervolume_history import _get_hypervolume_history_info

    cfg = validate({"name": "x", "distill": {"teacher": "unused"}, "objectives": objectives})
    study = optuna.create_study(directions=cfg.directions)
    rng = random.Random(2)
    for _ in range(25):
        study.add_trial(create_trial(values=[rng.uniform(0.5, 1.0), rng.uniform(0.0, 0.6),
                                             rng.uniform(5, 50)][:len(objectives)]))
    ref = reference_point(cfg, study.trials)
    ours = hypervolume_history(study, cfg, ref)
    theirs = _get_hypervolume_history_info(study, np.asarray(ref, dtype=float))
    assert [n for n, _ in ours] == theirs.trial_numbers
    assert [h for _, h in ours] == pytest.approx(theirs.values)


def test_report_masks_the_storage_password(tmp_path):
    from kdtune.study.report.html import write_study_report

    cfg = validate({"name": "x", "distill": {"teacher": "unused"},
                    "storage": "postgresql://kd:s3cret@db:5432/kdtune"})
    study = optuna.create_study(directions=cfg.directions)
    study.add_trial(create_trial(values=[0.9, 0.03]))
    paths = write_study_report(study, cfg, tmp_path / "r")
    page = paths["html"].read_text()
    assert "s3cret" not in page and "postgresql://kd:***@db:5432/kdtune" in page


def _twelve_parameter_front() -> list[dict]:
    """Front rows as pareto_rows gives them: objectives with intervals, 12 parameters, size
    and test figures."""
    rows = []
    for t in range(3):
        row = {"trial": 10 + t, "accuracy_student": 0.7625 - t / 100,
               "accuracy_student_ci": [0.72, 0.805], "sigma": 0.1206 - t / 50,
               "sigma_ci": [0.1021, 0.1365]}
        row.update({"temperature": 4.975 + t, "alpha": 0.7007, "layer_mapping": "uniform",
                    "learning_rate": 1e-4 * (t + 1), "student_shape": "3x256", "beta": 0.25,
                    "schedule": "two-stage", "epochs": 3, "batch_size": 32,
                    "warmup_ratio": 0.1, "weight_decay": 0.01, "intermediate": "hidden"})
        row.update({"params": 5380610, "params_ratio": 0.2369, "latency_ratio": 0.2849,
                    "vocabulary_size": 10988, "phi_cnf": False, "accuracy_test": 0.735,
                    "accuracy_test_ci": [0.69, 0.7775], "sigma_test": 0.1359,
                    "sigma_test_ci": [0.1167, 0.1544], "phi_cnf_test": False,
                    "reproduced": True})
        rows.append(row)
    rows[-1]["latency_ratio"] = float("nan")  # not measured: an empty cell, not "nan"
    return rows


@pytest.mark.parametrize("width", [80, 120, None])
def test_the_front_fits_the_width_it_has(width, monkeypatch):
    """At 80 and 120 columns, and piped (no terminal: $COLUMNS, else 100): no line over the
    width, no cell cut, size and both objectives shown; a learning rate in significant
    digits; --wide shows every column."""
    monkeypatch.delenv("COLUMNS", raising=False)
    rows = _twelve_parameter_front()
    out = io.StringIO()  # not a terminal
    print_pareto(rows, "table", file=out, width=width)
    lines = out.getvalue().splitlines()
    limit = width or 100
    assert max(len(line) for line in lines) <= limit
    text = out.getvalue()
    assert "5.4M (24%)" in text  # parameters and their ratio to the teacher's
    for cell in ("0.7625 [0.720, 0.805]", "0.1206 [0.102, 0.137]",
                 "0.735 [0.690, 0.777]", "0.1359 [0.117, 0.154]"):
        assert cell in text, cell  # whole cells, never cut
    assert "…" not in text and "nan" not in text
    wide = io.StringIO()
    print_pareto(rows, "table", file=wide, width=width, wide=True)
    for value in ("0.0001", "0.0003", "two-stage", "hidden", "10988", "0.28x"):
        assert value in wide.getvalue(), value
    if width != 120:  # trial, size, objectives and test figures need 108: a block per trial
        assert "trial 10" in lines and any(line.strip().startswith("lr") for line in lines)
    else:  # a table, with what it left out named below it
        assert lines[1].split()[:4] == ["trial", "size", "accuracy", "sigma"]
        assert "(--wide shows them)" in text
