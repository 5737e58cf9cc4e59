"""``kdtune rescore``: the front's configurations retrained on more seeds, as trials of the
study, and the seed means with intervals in the pareto table and the export.

One real study on SQLite: the trained tiny teacher of conftest, four trials of the real
distillation objective, then the repeats run by a real worker (:func:`run_worker`) in this
process.
"""

from __future__ import annotations

import json
import statistics
import uuid

import pytest
import yaml
from optuna.trial import TrialState
from test_verdict import N_TRIALS, _config

from kdtune.attrs import REPEAT_OF, REPEAT_SEED, STUDY_CONFIG
from kdtune.study.cli.root import main
from kdtune.study.front import front_trials
from kdtune.study.service import open_study

SEEDS = 2


@pytest.fixture(scope="module")
def rescored(tmp_path_factory, tiny_teacher_dir, synthetic_csv):
    """(name, storage, front numbers before rescoring, enqueue_repeats' answer)."""
    from kdtune.objectives.search.trial import make_objective
    from kdtune.study.config import validate
    from kdtune.study.rescore import enqueue_repeats
    from kdtune.study.service import create_study
    from kdtune.study.worker import run_worker

    folder = tmp_path_factory.mktemp("rescore")
    name, storage = f"rescore-{uuid.uuid4().hex[:8]}", f"sqlite:///{folder / 'study.db'}"
    cfg = validate(_config(name, storage, tiny_teacher_dir, synthetic_csv))
    create_study(cfg)
    study, _ = open_study(name, storage)
    study.optimize(make_objective(cfg.distill, cfg.search, cfg.objectives, threads=1),
                   n_trials=N_TRIALS)
    front = [t.number for t in front_trials(study, cfg)]
    info = enqueue_repeats(name, storage, SEEDS)
    ran = run_worker(name, storage, index=0, threads=1, poll_interval=0.2)
    assert ran["complete"] + ran["pruned"] == len(info["enqueued"]), ran
    return name, storage, front, info


def test_each_front_configuration_runs_on_more_seeds(rescored):
    name, storage, front, info = rescored
    study, cfg = open_study(name, storage)
    assert info["n_trials"] == N_TRIALS + SEEDS * len(front) == cfg.n_trials
    repeats = [t for t in study.get_trials() if REPEAT_OF in t.user_attrs]
    assert sorted(t.user_attrs[REPEAT_OF] for t in repeats) == sorted(front * SEEDS)
    base = {t.number: t for t in study.get_trials()}
    for t in repeats:
        original = base[t.user_attrs[REPEAT_OF]]
        assert t.state == TrialState.COMPLETE and t.params == original.params
        seed = t.user_attrs["config"]["seed"]
        assert seed == t.user_attrs[REPEAT_SEED] != original.user_attrs["config"]["seed"]
    # another seed is another draw: at least one repeat differs from its front trial
    assert any(t.values != base[t.user_attrs[REPEAT_OF]].values for t in repeats)


def test_repeats_stay_off_the_front_and_enqueuing_again_adds_nothing(rescored):
    from kdtune.study.rescore import enqueue_repeats

    name, storage, front, _ = rescored
    study, cfg = open_study(name, storage)
    assert all(REPEAT_OF not in t.user_attrs for t in front_trials(study, cfg))
    again = enqueue_repeats(name, storage, SEEDS)
    assert again["enqueued"] == [] and again["n_trials"] == cfg.n_trials


def test_the_pareto_table_shows_the_seed_means_with_intervals(rescored, capsys):
    name, storage, front, _ = rescored
    study, cfg = open_study(name, storage)
    assert main(["pareto", "--study", name, "--storage", storage, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    trials = {t.number: t for t in study.get_trials()}
    for row in rows:
        runs = [trials[row["trial"]]] + [t for t in trials.values()
                                        if t.user_attrs.get(REPEAT_OF) == row["trial"]]
        assert row["seeds"] == len(runs) == SEEDS + 1
        for i, metric in enumerate(cfg.objectives):
            mean = statistics.fmean(t.values[i] for t in runs)
            assert row[f"{metric}_mean"] == pytest.approx(mean)
            low, high = row[f"{metric}_mean_ci"]
            assert low <= mean <= high


def test_export_picks_on_the_means_and_records_them(rescored, tmp_path):
    from kdtune.study.rescore import seed_summary

    name, storage, front, _ = rescored
    study, cfg = open_study(name, storage)
    out = tmp_path / "best.yaml"
    assert main(["export", "--study", name, "--storage", storage, "--pick", "max-accuracy",
                 "-o", str(out)]) == 0
    source = yaml.safe_load(out.read_text().split("\n", 1)[1])["source"]
    summary = seed_summary(study, cfg)
    best = max(summary, key=lambda n: summary[n]["accuracy_student_mean"])
    assert source["trial"] == best
    assert source["seeds"]["seeds"] == SEEDS + 1
    assert source["metrics"]["accuracy_student"] == study.trials[best].values[0]


def test_cli_enqueues_without_running_when_told(rescored, capsys):
    name, storage, front, _ = rescored
    study, _ = open_study(name, storage)
    before = study.user_attrs[STUDY_CONFIG]["n_trials"]
    assert main(["rescore", "--study", name, "--storage", storage, "--seeds", str(SEEDS + 1),
                 "--workers", "0", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert len(info["enqueued"]) == len(front) and info["n_trials"] == before + len(front)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert sorted(t.user_attrs[REPEAT_OF] for t in waiting) == sorted(front)


def test_a_failed_repeat_is_requeued_as_the_same_repeat():
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from kdtune.study.budget import requeue

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(create_trial(
        state=TrialState.FAIL, params={"alpha": 0.5},
        distributions={"alpha": FloatDistribution(0.0, 1.0)},
        user_attrs={REPEAT_OF: 3, REPEAT_SEED: 7, "fail_reason": "worker died"}))
    assert requeue(study, study.trials[0], max_retries=2)
    retry = study.trials[1]
    assert retry.state == TrialState.WAITING and retry.params == {"alpha": 0.5}
    assert retry.user_attrs == {REPEAT_OF: 3, REPEAT_SEED: 7}
