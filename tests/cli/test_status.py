"""``kdtune status``: state, trials in words, time so far and left, best values, front size;
its JSON lists the objectives."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


def _trial(state, values=None, start=0, end=None, params=None, dist=None):
    """A trial that started ``start`` and ended ``end`` minutes after T0."""
    from optuna.trial import FrozenTrial

    return FrozenTrial(
        number=0, trial_id=0, state=state, value=None, values=values,
        datetime_start=T0 + dt.timedelta(minutes=start),
        datetime_complete=None if end is None else T0 + dt.timedelta(minutes=end),
        params=params or {}, distributions=dist or {}, user_attrs={}, system_attrs={},
        intermediate_values={})


@pytest.fixture()
def study(tmp_path, tiny_teacher_dir, synthetic_csv):
    """Budget 8: three trials done in 30 minutes (two complete, one failed for good)."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    from kdtune.study.config import validate
    from kdtune.study.service import create_study, open_study

    name = f"status-{uuid.uuid4().hex[:6]}"
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    create_study(validate({"name": name, "storage": storage, "n_trials": 8,
                           "distill": {"teacher": str(tiny_teacher_dir),
                                       "data": {"source": str(synthetic_csv)}}}))
    st, _ = open_study(name, storage)
    dist = {"alpha": FloatDistribution(0.0, 1.0)}
    for i, (values, state) in enumerate([([0.70, 0.10], TrialState.COMPLETE),
                                         ([0.80, 0.20], TrialState.COMPLETE),
                                         (None, TrialState.FAIL)]):
        st.add_trial(_trial(state, values, 10 * i, 10 * (i + 1), {"alpha": 0.1 * i}, dist))
    return name, storage


def test_status_reads_in_words(study, capsys):
    from kdtune.study.cli.root import main

    name, storage = study
    assert main(["status", "--study", name, "--storage", storage]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert lines["study"].startswith(f"{name} (open), in ")
    assert lines["objectives"] == "accuracy_student (maximize), sigma (minimize)"
    assert lines["trials"] == "3 of 8 done (2 complete, 1 failed)"
    # 3 trials in 30 minutes: 5 more take about 50 minutes at that pace
    assert lines["time"] == "30m 00s so far; about 50m 00s left at this pace"
    assert lines["best"] == "accuracy_student 0.8 (trial 1); sigma 0.1 (trial 0)"
    assert lines["front"] == f"2 trials (kdtune pareto --study {name})"
    for raw in ("failed_final", "used", "finished"):
        assert raw not in out


def test_status_json_lists_the_objectives(study, capsys):
    from kdtune.study.cli.root import main

    name, storage = study
    assert main(["status", "--study", name, "--storage", storage, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["objectives"] == ["accuracy_student", "sigma"]
    assert info["directions"] == ["maximize", "minimize"]
    assert info["state"] == "open" and info["finished"] == 3 and info["budget"] == 8
    assert info["elapsed_s"] == 1800.0 and info["eta_s"] == 3000.0
    assert info["best"]["sigma"] == {"value": 0.1, "trial": 0}


def test_pace_runs_to_now_while_a_trial_runs():
    from optuna.trial import TrialState

    from kdtune.study.budget import budget_counts, pace

    trials = [_trial(TrialState.COMPLETE, [1.0], 0, 10), _trial(TrialState.RUNNING, None, 10)]
    now = T0 + dt.timedelta(minutes=20)
    assert pace(trials, budget_counts(trials), 3, now=now) == {"elapsed_s": 1200.0,
                                                               "eta_s": 2400.0}
    assert pace([], budget_counts([]), 3) == {"elapsed_s": None, "eta_s": None}
    assert pace(trials, budget_counts(trials), 1, now=now)["eta_s"] is None  # spent


def test_a_tested_front_trial_reads_in_short_lines():
    """`kdtune test` (and the demo's log): what was retrained, then its test and selection
    figures, each line short enough for a log or an 80-column terminal (once 250 long)."""
    from kdtune.study.cli.verdict import entry_line

    figures = {"accuracy_student": 0.7425, "accuracy_student_ci": [0.7, 0.785],
               "sigma": 0.12514, "sigma_ci": [0.105, 0.142]}
    entry = {"label": "trial 4", "kind": "trial", "trained": True, "seconds": 60.2,
             "selection": figures, "test": figures, "reproduced": True,
             "selection_delta": {"accuracy_student": 0.0, "sigma": 0.0}}
    lines = entry_line(entry).splitlines()
    assert lines[0] == ("trial 4 (trained in 60 s), reproduced by the retrained student "
                        "(|d accuracy_student| 0, |d sigma| 0)")
    assert lines[1].split() == ["test", "accuracy", "0.7425", "[0.700,", "0.785],", "sigma",
                                "0.1251", "[0.105,", "0.142]"]
    assert lines[2].startswith("  selection  accuracy 0.7425")
    tinybert = entry_line({**entry, "label": "TinyBERT 3x256", "kind": "tinybert"})
    assert tinybert.splitlines()[0] == "TinyBERT 3x256 (trained in 60 s)"
    assert all(len(line) <= 80 for line in tinybert.splitlines() + lines[1:])
