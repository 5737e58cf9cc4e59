"""``kdtune test``: the Pareto front retrained and measured on the test split, the TinyBERT
recipe at the same sizes, and where the results show (pareto --test, report, export, card).

One real study on SQLite: the trained tiny teacher of conftest, four trials of the real
distillation objective (one epoch, widths 16 and 32, depths 1 and 2), run in this process.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import create_trial

from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.search.recipes import (
    REPRODUCE_TOLERANCE,
    TINYBERT_FIELDS,
    config_hash,
    selection_deltas,
    tinybert_recipe,
)
from kdtune.study import verdict
from kdtune.study.cli.root import main
from kdtune.study.front import front_trials
from kdtune.study.service import open_study

N_TRIALS = 4


def _config(name: str, storage: str, teacher: Path, data: Path) -> dict:
    return {
        "name": name, "storage": storage,
        "distill": {
            "teacher": str(teacher),
            "data": {"source": str(data), "train_size": 160, "eval_size": 80,
                     "test_size": 80, "max_length": 16},
            "batch_size": 16, "epochs": 1, "learning_rate": 1e-3, "device": "cpu",
            "eval": {"latency_batches": 0},
        },
        "search": {"epochs": {"low": 1, "high": 1}, "student_layers": {"choices": [1, 2]},
                   "hidden_size": {"choices": [16, 32]}, "max_params_ratio": None,
                   "learning_rate": {"low": 5e-4, "high": 2e-3, "log": True}},
        "n_trials": N_TRIALS,
        "sampler": {"name": "random", "seed": 1},
    }


@pytest.fixture(scope="module")
def tested(tmp_path_factory, tiny_teacher_dir, synthetic_csv):
    """The study after its search and one ``test_front``: (name, storage, entries, config)."""
    from kdtune.objectives.search.trial import make_objective
    from kdtune.study.config import validate
    from kdtune.study.service import create_study

    folder = tmp_path_factory.mktemp("verdict")
    name, storage = f"verdict-{uuid.uuid4().hex[:8]}", f"sqlite:///{folder / 'study.db'}"
    raw = _config(name, storage, tiny_teacher_dir, synthetic_csv)
    cfg = validate(raw)
    create_study(cfg)
    study, _ = open_study(name, storage)
    study.optimize(make_objective(cfg.distill, cfg.search, cfg.objectives, threads=1),
                   n_trials=N_TRIALS)
    entries = verdict.test_front(name, storage, progress=False, threads=1)
    (folder / "study.yaml").write_text(yaml.safe_dump(raw))
    return name, storage, entries, folder / "study.yaml"


def test_every_front_trial_gets_test_figures_with_intervals(tested):
    name, storage, entries, _ = tested
    study, cfg = open_study(name, storage)
    front = front_trials(study, cfg)
    stored = verdict.stored_verdicts(study)
    assert sorted(stored) == sorted(t.number for t in front)
    for trial in front:
        test = stored[trial.number]["test"]
        assert test["split"] == "test" and test["n_all"] == 80
        for key in ("accuracy_student", "sigma"):
            low, high = test[f"{key}_ci"]
            assert low <= test[key] <= high
        assert stored[trial.number]["config_hash"] == config_hash(verdict.trial_config(trial))
    assert [e["kind"] for e in entries][:len(front)] == ["trial"] * len(front)
    assert all(e["trained"] for e in entries)


def test_retrained_selection_figures_match_the_trials(tested):
    """The determinism claim: the same config, retrained, gives the trial's figures."""
    name, storage, _, _ = tested
    study, cfg = open_study(name, storage)
    stored = verdict.stored_verdicts(study)
    for trial in front_trials(study, cfg):
        v = stored[trial.number]
        assert set(v["selection_delta"]) >= {"accuracy_student", "sigma"}
        assert v["selection"]["accuracy_student"] == trial.user_attrs["accuracy_student"]
        assert max(v["selection_delta"].values()) <= REPRODUCE_TOLERANCE, v["selection_delta"]
        assert v["reproduced"] is True


def test_one_tinybert_baseline_per_front_size(tested):
    name, storage, entries, _ = tested
    study, cfg = open_study(name, storage)
    tuned = {}  # the first (best on the first objective) front trial of each size
    for t in front_trials(study, cfg):
        tuned.setdefault(verdict.trial_size(t, verdict.trial_config(t))[2], t)
    baselines = verdict.stored_baselines(study)
    assert set(baselines) == set(tuned)
    for size, result in baselines.items():
        layers, hidden = (int(x) for x in size.split("x"))
        assert result["selection"]["student_layers"] == layers
        assert result["selection"]["student_hidden_size"] == hidden
        assert result["config"]["schedule"] == "two-stage" and result["config"]["alpha"] == 1.0
        # The optimiser budget is the tuned student's; only the recipe's fields differ.
        own = verdict.trial_config(tuned[size]).model_dump(mode="json")
        assert result["config"]["learning_rate"] == own["learning_rate"]
        assert result["config"]["epochs"] == own["epochs"]
        assert {"accuracy_student_ci", "sigma_ci"} <= set(result["test"])
    assert sum(e["kind"] == verdict.RECIPE for e in entries) == len(tuned)


def test_a_second_run_trains_nothing(tested, monkeypatch):
    name, storage, first, _ = tested

    def refuse(*_a, **_k):
        raise AssertionError("a stored result was trained again")

    monkeypatch.setattr(verdict, "retrain_and_test", refuse)
    again = verdict.test_front(name, storage, progress=False)
    assert [e["key"] for e in again] == [e["key"] for e in first]
    assert not any(e["trained"] for e in again)
    assert [e["test"] for e in again] == [json.loads(json.dumps(e["test"])) for e in first]


def test_runs_in_parallel_processes_store_what_one_process_stores(tested):
    """``jobs=2`` (what ``kdtune run`` passes with two workers): each run in a spawned
    process, stored as it ends; the figures are those of the runs done one at a time."""
    from kdtune.study.config import validate
    from kdtune.study.service import create_study

    name, storage, first, path = tested
    study, _ = open_study(name, storage)
    other = f"{name}-parallel"
    create_study(validate({**yaml.safe_load(path.read_text()), "name": other}))
    copy, _ = open_study(other, storage)
    for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]):
        copy.add_trial(create_trial(values=t.values, params=t.params,
                                    distributions=t.distributions, user_attrs=t.user_attrs))
    again = verdict.test_front(other, storage, progress=False, threads=1, jobs=2)
    assert len(again) == len(first) > 1 and all(e["trained"] for e in again)
    by_config = {(e["kind"], e["config_hash"]): e["test"] for e in first}
    for entry in again:
        assert entry["test"] == json.loads(json.dumps(by_config[entry["kind"],
                                                                  entry["config_hash"]]))
    stored = {**verdict.stored_verdicts(open_study(other, storage)[0])}
    assert len(stored) == sum(e["kind"] == "trial" for e in again)
    optuna.delete_study(study_name=other, storage=storage)


def test_cli_test_says_stored_and_reproduced(tested, capsys):
    name, storage, entries, _ = tested
    assert main(["test", name, "--storage", storage]) == 0
    out = capsys.readouterr().out
    assert f"0 trained, {len(entries)} already stored" in out
    assert out.count(", reproduced by the retrained student") == sum(
        e["kind"] == "trial" for e in entries)


def test_pareto_test_adds_the_test_columns(tested, capsys):
    name, storage, _, _ = tested
    assert main(["pareto", "--study", name, "--storage", storage, "--test",
                 "--format", "json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    study, _ = open_study(name, storage)
    stored = verdict.stored_verdicts(study)
    for row in rows:
        test = stored[row["trial"]]["test"]
        assert row["accuracy_test"] == test["accuracy_student"]
        assert row["accuracy_test_ci"] == test["accuracy_student_ci"]
        assert row["sigma_test_ci"] == test["sigma_ci"] and row["reproduced"] is True
    assert "no test figures" not in captured.err

    assert main(["pareto", "--study", name, "--storage", storage, "--test"]) == 0
    table = capsys.readouterr().out
    assert "acc. test" in table and "reprod." in table  # short headers (or block labels)
    assert main(["pareto", "--study", name, "--storage", storage]) == 0
    assert "acc. test" not in capsys.readouterr().out


def test_the_report_compares_tuned_and_recipe_per_size(tested, tmp_path):
    from kdtune.study.report.html import write_report
    from kdtune.study.report.recipe import RECIPE_TITLE, recipe_rows

    name, storage, _, _ = tested
    study, cfg = open_study(name, storage)
    rows = recipe_rows(study, cfg)
    assert len(rows) == len(verdict.stored_baselines(study))
    for row in rows:
        for key in ("tuned_accuracy", "tuned_accuracy_test", "tuned_sigma_test",
                    "tinybert_accuracy", "tinybert_sigma", "tinybert_accuracy_test",
                    "tinybert_sigma_test_ci"):
            assert row[key] is not None, key
    page = write_report(name, storage, tmp_path / "report")["html"].read_text()
    section = page.split(RECIPE_TITLE)[1].split("<h2>")[0]
    assert section.count("<tr>") == len(rows) + 1  # the header and one row per size
    assert "accuracy_test" in page.split("<h2>Pareto front")[1].split("<h2>")[0]


def test_export_carries_the_verdict_and_the_card_shows_it(tested, tmp_path):
    from kdtune.objectives.distillation.heldout import production_check
    from kdtune.study.export.card import card_section
    from kdtune.study.export.trial import export_source, export_trial

    name, storage, _, _ = tested
    info = export_trial(name, storage, "max-accuracy", tmp_path / "best.yaml")
    source = export_source(tmp_path / "best.yaml")
    assert source["test_verdict"] == json.loads(json.dumps(info["test_verdict"]))
    test = source["test_verdict"]["test"]
    check = production_check(DistillConfig(teacher="t"), test, source["metrics"], source)
    card = card_section(check)
    assert "the trial retrained after the search, test split (n = 80)" in card
    assert "reproduced the trial's figures" in card
    assert f"{test['accuracy_student']:.4f} [{test['accuracy_student_ci'][0]:.4f}," in card


def test_a_mismatch_is_stored_and_shown(tested, capsys):
    """A trial whose figures its configuration does not give back: the verdict says so."""
    from kdtune.study.config import validate
    from kdtune.study.service import create_study

    name, storage, _, path = tested
    study, cfg = open_study(name, storage)
    real = front_trials(study, cfg)[0]
    other = f"{name}-tampered"
    create_study(validate({**yaml.safe_load(path.read_text()), "name": other}))
    tampered, _ = open_study(other, storage)
    acc = real.user_attrs["accuracy_student"] - 0.1
    tampered.add_trial(create_trial(
        values=[acc, real.values[1]], params=real.params, distributions=real.distributions,
        user_attrs={**real.user_attrs, "accuracy_student": acc}))
    (entry,) = verdict.test_front(other, storage, baselines=False, progress=False, threads=1)
    assert entry["reproduced"] is False
    assert entry["selection_delta"]["accuracy_student"] == pytest.approx(0.1)
    assert main(["pareto", "--study", other, "--storage", storage, "--test",
                 "--format", "csv"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["reproduced"] == "False" and row["accuracy_test_ci_low"]
    optuna.delete_study(study_name=other, storage=storage)


def test_an_untested_front_says_how_to_get_test_figures(tested, tmp_path, capsys):
    from kdtune.study.config import validate
    from kdtune.study.report.html import write_report
    from kdtune.study.service import create_study

    name, storage, _, path = tested
    study, _ = open_study(name, storage)
    real = study.best_trials[0]
    other = f"{name}-untested"
    create_study(validate({**yaml.safe_load(path.read_text()), "name": other}))
    fresh, _ = open_study(other, storage)
    fresh.add_trial(create_trial(values=real.values, params=real.params,
                                 distributions=real.distributions, user_attrs=real.user_attrs))
    assert main(["pareto", "--study", other, "--storage", storage, "--test"]) == 0
    err = capsys.readouterr().err
    assert f"front trials 0 have no test figures yet: run kdtune test --study {other}" in err
    page = write_report(other, storage, tmp_path / "r")["html"].read_text()
    assert f"No test-split figures yet: run kdtune test --study {other}" in page
    optuna.delete_study(study_name=other, storage=storage)


# --------------------------------------------------------------------------- recipe, CLI


def test_the_recipe_sets_exactly_the_documented_fields():
    base = DistillConfig(teacher="t", student_layers=3, hidden_size=64, schedule="joint",
                         intermediate=("hidden",), beta=0.3, temperature=4.0, alpha=0.2,
                         layer_mapping="top", min_relative_accuracy=0.5, learning_rate=1e-3,
                         epochs=3, intermediate_epochs=2, init="random", seed=7)
    recipe = tinybert_recipe(base, 2, 32)
    a, b = base.model_dump(), recipe.model_dump()
    assert {k for k in a if a[k] != b[k]} == set(TINYBERT_FIELDS)
    assert (recipe.student_layers, recipe.hidden_size, recipe.schedule) == (2, 32, "two-stage")
    assert recipe.intermediate == ("hidden", "embedding", "attention")
    assert (recipe.beta, recipe.temperature, recipe.alpha) == (1.0, 1.0, 1.0)
    assert recipe.layer_mapping == "uniform" and recipe.min_relative_accuracy is None
    assert tinybert_recipe(base, 2, None).hidden_size is None


def test_selection_deltas_compare_what_both_have():
    assert selection_deltas({"accuracy_student": 0.8, "sigma": float("nan")},
                            {"accuracy_student": 0.75, "sigma": float("nan"),
                             "sigma_max": 0.1}) == {"accuracy_student": pytest.approx(0.05),
                                                    "sigma": 0.0}
    assert selection_deltas({"sigma": 0.1}, {"sigma": float("nan")}) == {"sigma": float("inf")}


@pytest.mark.parametrize("flags, tests", [([], True), (["--no-test"], False)])
def test_run_tests_after_the_search_unless_no_test(tested, monkeypatch, flags, tests):
    import kdtune.study.cli.search as cli
    import kdtune.study.local as local
    import kdtune.study.service as service

    _, _, _, path = tested
    calls = []
    monkeypatch.setattr(local, "run_study", lambda cfg, **kw: calls.append("run"))
    monkeypatch.setattr(cli, "test_after_run",
                        lambda name, storage, threads, jobs: calls.append(
                            ("test", name, threads, jobs)))
    assert main(["run", str(path), "--workers", "2", *flags]) == 0
    cfg = service.load_study_config(path)
    expected = ["run", ("test", cfg.name, local.worker_threads(cfg, 2), 2)] if tests else ["run"]
    assert calls == expected


def test_the_retrain_bar_stays_off_a_terminal(capsys):
    """Piped (a log, CI), ``kdtune test`` draws no live bar: each run prints its own line."""
    from kdtune.study.verdict import _bar

    with _bar(True, 3) as (bar, task):
        bar.advance(task)
        assert bar.disable
    assert "━" not in capsys.readouterr().err


def test_size_key_names_a_set_feed_forward_size(tmp_path):
    """Trials of one depth and width but different feed-forward sizes get their own
    TinyBERT baseline (same size key, same baseline)."""
    from kdtune.attrs import TRIAL_CONFIG

    def trial(ffn):
        cfg = DistillConfig(teacher=str(tmp_path), student_layers=2, hidden_size=384,
                            ffn_size=ffn)
        return create_trial(values=[0.8, 0.1],
                            user_attrs={TRIAL_CONFIG: json.loads(cfg.model_dump_json())})

    keys = [verdict.baseline_config(trial(f)) for f in (None, 1024)]
    assert [k for k, _ in keys] == ["2x384", "2x384x1024"]
    assert keys[1][1].ffn_size == 1024 and keys[1][1].schedule == "two-stage"
