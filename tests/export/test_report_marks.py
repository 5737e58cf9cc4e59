"""What the HTML report marks so that it reads honestly: the hypervolume axis from 0, a warning
on importances from few trials, and the trial ``kdtune export`` picks by default.

The export pick is checked against :func:`export_trial` itself on hand-built studies of
test_report (embedded PostgreSQL server), once on the trials' own values and once after
``kdtune rescore``-style repeats move the knee onto another trial.
"""

from __future__ import annotations

import random
import re

import optuna
import pytest
from optuna.trial import create_trial
from test_report import DISTS, PNG_MAGIC, VALUES, make_study

from kdtune.attrs import REPEAT_OF, REPEAT_SEED, TRIAL_CONFIG
from kdtune.storage.optuna_adapter import study_storage
from kdtune.study.config import validate
from kdtune.study.export.trial import export_trial
from kdtune.study.report.charts import (
    PICK_LABEL,
    hypervolume_figure,
    hypervolume_ylim,
    pareto_figure,
    plot_hypervolume,
)
from kdtune.study.report.html import write_study_report
from kdtune.study.report.importance import (
    FEW_TRIALS_FOR_IMPORTANCE,
    MIN_TRIALS_FOR_IMPORTANCE,
    importance_warning,
)
from kdtune.study.service import open_study

CFG = validate({"name": "marks", "distill": {"teacher": "unused"}})


def _memory_study(n: int) -> optuna.Study:
    """An in-memory study of ``n`` complete trials with two searched parameters."""
    study = optuna.create_study(directions=CFG.directions, study_name="marks")
    rng = random.Random(n)
    for _ in range(n):
        p = {"temperature": rng.uniform(1, 8), "alpha": rng.uniform(0, 1)}
        study.add_trial(create_trial(values=[0.7 + 0.05 * p["alpha"], 0.02 * p["temperature"]],
                                     params=p, distributions=DISTS))
    return study


def test_the_hypervolume_axis_starts_at_zero():
    history = [(0, 0.2725), (3, 0.2760), (9, 0.2810)]  # a small gain, as in issue 25
    ax = hypervolume_figure(history, [0.0, 0.5], CFG, "s").axes[0]
    low, high = ax.get_ylim()
    assert low == 0.0 and 0.281 < high <= 0.281 * 1.1 + 1e-12
    assert "+3.1%" in " ".join(t.get_text() for t in ax.texts)  # the gain, stated
    assert hypervolume_ylim([]) == (0.0, 1.0) and hypervolume_ylim([0.0]) == (0.0, 1.0)
    assert plot_hypervolume(history, [0.0, 0.5], CFG, "s").startswith(PNG_MAGIC)


def test_the_importance_warning_names_the_count():
    assert MIN_TRIALS_FOR_IMPORTANCE < FEW_TRIALS_FOR_IMPORTANCE
    few = importance_warning(7)
    assert few is not None and "only 7 complete trials" in few and "unreliable" in few
    assert str(FEW_TRIALS_FOR_IMPORTANCE) in few
    assert importance_warning(FEW_TRIALS_FOR_IMPORTANCE - 1) is not None
    assert importance_warning(FEW_TRIALS_FOR_IMPORTANCE) is None


@pytest.mark.parametrize("n", [7, FEW_TRIALS_FOR_IMPORTANCE + 5])
def test_the_report_warns_on_importances_from_few_trials(n, tmp_path):
    paths = write_study_report(_memory_study(n), CFG, tmp_path / "r")
    page = paths["html"].read_text()
    section = page.split("<h2>Parameter importances</h2>")[1].split("<h2>")[0]
    assert 'src="importances.png"' in section
    if n < FEW_TRIALS_FOR_IMPORTANCE:
        assert 'class="warn"' in section and f"only {n} complete trials" in section
        assert section.index('class="warn"') < section.index('src="importances.png"')
    else:
        assert 'class="warn"' not in page and "unreliable" not in page


def _marked(page: str) -> list[int]:
    """The trial numbers of the front table's highlighted rows."""
    return [int(n) for n in re.findall(r'<tr class="pick"><td>(\d+)</td><td>\u2605 knee</td>',
                                       page)]


def _star(study: optuna.Study, pick) -> tuple[str, list[list[float]]]:
    """The Pareto chart's star: its legend label and where it is drawn."""
    ax = pareto_figure(study, CFG, pick).axes[0]
    stars = [c for c in ax.collections if c.get_label().startswith(PICK_LABEL)]
    assert len(stars) == 1
    return stars[0].get_label(), stars[0].get_offsets().tolist()


def _check_marks(name: str, tmp_path) -> int:
    """The report marks, in table and chart, the trial export_trial(..., "knee") writes."""
    exported = export_trial(name, None, "knee", tmp_path / "best.yaml")["trial"]
    study, cfg = open_study(name, None)
    page = write_study_report(study, cfg, tmp_path / "report")["html"].read_text()
    assert _marked(page) == [exported]
    assert f"marks trial {exported}, {PICK_LABEL}" in page.replace("&#x27;", "'")
    trial = study.trials[exported]
    label, offsets = _star(study, trial)
    assert label == f"{PICK_LABEL}: #{exported}" and offsets == [list(trial.values)]
    return exported


def test_the_report_marks_the_trial_export_picks(tmp_path):
    study, name = make_study(VALUES)
    try:
        # by hand: objectives scaled over the front 7, 2, 1, 3, trial 2 is nearest the ideal
        assert _check_marks(name, tmp_path) == 2
    finally:
        optuna.delete_study(study_name=name, storage=study_storage(study))


def test_after_rescoring_the_mark_follows_the_seed_means(tmp_path):
    study, name = make_study(VALUES)
    try:
        params = study.trials[2].params
        for seed in (43, 44):  # trial 2 repeated worse: its means (0.833, 0.127) move the knee
            study.add_trial(create_trial(
                values=[0.80, 0.15], params=params, distributions=DISTS,
                user_attrs={REPEAT_OF: 2, REPEAT_SEED: seed,
                            TRIAL_CONFIG: {"teacher": "unused", "seed": seed}}))
        assert _check_marks(name, tmp_path) == 1
    finally:
        optuna.delete_study(study_name=name, storage=study_storage(study))
