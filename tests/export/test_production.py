"""The production check of ``kdtune distill`` (test split, intervals, phi_cnf on test), the
interval rule of ``kdtune export --pick feasible``, and ``kdtune audit --config`` (the
study's data and tokenisation reproduce a run's sigma).

One tiny study on SQLite holds hand-made trials whose stored config is a real, tiny
distillation (the trained tiny teacher of conftest on a CSV of long sentences, truncated at
``max_length`` 8, so that the tokenisation visibly matters)."""

from __future__ import annotations

import csv
import json
import random
import uuid
from pathlib import Path

import pytest
import yaml

from kdtune.errors import KdtuneError, UsageError
from kdtune.objectives.data.dataset import DataConfig
from kdtune.objectives.distillation.config import DistillConfig

KAPPA = 0.05

# (accuracy_student, sigma, sigma_ci or None) by trial number, kappa 0.05:
# plain feasible (sigma <= kappa): 0, 1, 2 -> the most accurate is 2 (no stored interval);
# interval feasible (sigma_ci upper end <= kappa): only 1; 3 fails both rules.
TRIALS = [(0.90, 0.040, [0.030, 0.070]), (0.85, 0.030, [0.020, 0.045]),
          (0.95, 0.045, None), (0.97, 0.200, [0.150, 0.250])]

_POS = ["great", "wonderful", "superb", "lovely"]
_NEG = ["awful", "boring", "dreadful", "tedious"]
_FILL = ["the film", "this story", "a plot", "the cast"]
_TAIL = ["and", "then", "the", "music", "came", "along", "with", "some", "people", "who",
         "sat", "there", "for", "hours", "in", "a", "room"]


@pytest.fixture(scope="module")
def long_csv(tmp_path_factory) -> Path:
    """400 rows: the deciding word within the first 8 tokens, then a long neutral tail."""
    rng = random.Random(1)
    path = tmp_path_factory.mktemp("long") / "long.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i in range(400):
            pos = i % 2 == 0
            tail = " ".join(rng.choice(_TAIL) for _ in range(12))
            word = rng.choice(_POS if pos else _NEG)
            w.writerow([f"{rng.choice(_FILL)} was {word} {tail}",
                        "positive" if pos else "negative"])
    return path


@pytest.fixture(scope="module")
def run_config(tiny_teacher_dir, long_csv) -> dict:
    cfg = DistillConfig(
        teacher=str(tiny_teacher_dir),
        data=DataConfig(source=str(long_csv), train_size=160, eval_size=80, test_size=80,
                        max_length=8),
        epochs=2, batch_size=16, learning_rate=2e-3, threads=2, device="cpu",
        eval={"kappa": KAPPA, "latency_batches": 0},
    )
    return json.loads(cfg.model_dump_json())


def _make_study(tmp_path: Path, config: dict, trials, kappa: float = KAPPA) -> tuple[str, str]:
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from kdtune.attrs import PHI_CNF, TRIAL_CONFIG
    from kdtune.study.config import validate
    from kdtune.study.service import create_study, open_study

    name = f"production-{uuid.uuid4().hex[:8]}"
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    create_study(validate({"name": name, "storage": storage,
                           "distill": {**config, "eval": {**config["eval"], "kappa": kappa}}}))
    study, _ = open_study(name, storage)
    for i, (acc, sigma, ci) in enumerate(trials):
        attrs = {"accuracy_student": acc, "sigma": sigma, PHI_CNF: sigma <= kappa,
                 "n_resamples": 1000, TRIAL_CONFIG: config}
        if ci is not None:
            attrs.update(sigma_ci=ci, accuracy_student_ci=[acc - 0.04, acc + 0.03])
        study.add_trial(create_trial(values=[acc, sigma], params={"alpha": 0.1 * i},
                                     distributions={"alpha": FloatDistribution(0.0, 1.0)},
                                     user_attrs=attrs))
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == len(trials)
    return name, storage


@pytest.fixture(scope="module")
def study(tmp_path_factory, run_config) -> tuple[str, str]:
    return _make_study(tmp_path_factory.mktemp("study"), run_config, TRIALS)


# --------------------------------------------------------------------------- pick rules


def test_feasible_plain_rule_is_the_default_and_says_so(study, tmp_path):
    from kdtune.study.export.trial import export_trial

    name, storage = study
    info = export_trial(name, storage, "feasible", tmp_path / "plain.yaml")
    assert info["trial"] == 2 and info["rule"] == "plain"
    assert "plain rule: sigma <= kappa 0.05" in info["picked_by"]
    text = (tmp_path / "plain.yaml").read_text()
    assert yaml.safe_load(text)["source"]["rule"] == "plain"
    assert "plain rule" in text.splitlines()[1]  # the header comment


def test_feasible_interval_rule_needs_the_upper_end_at_most_kappa(study, tmp_path):
    from kdtune.study.export.trial import export_trial

    name, storage = study
    info = export_trial(name, storage, "feasible", tmp_path / "iv.yaml", rule="interval")
    assert info["trial"] == 1 and info["rule"] == "interval"
    assert "interval rule: sigma_ci upper end <= kappa 0.05" in info["picked_by"]
    source = yaml.safe_load((tmp_path / "iv.yaml").read_text())["source"]
    assert source["rule"] == "interval" and source["trial"] == 1
    assert source["metrics"]["sigma_ci"] == [0.020, 0.045]


def test_other_picks_record_no_rule_and_refuse_the_interval_rule(study, tmp_path):
    from kdtune.study.export.trial import export_trial

    name, storage = study
    info = export_trial(name, storage, "max-accuracy", tmp_path / "max.yaml")
    assert info["trial"] == 3 and info["rule"] is None and info["picked_by"] == "max-accuracy"
    assert "rule" not in yaml.safe_load((tmp_path / "max.yaml").read_text())["source"]
    with pytest.raises(UsageError, match="--rule interval applies to --pick feasible only"):
        export_trial(name, storage, "knee", tmp_path / "x.yaml", rule="interval")
    with pytest.raises(UsageError, match="--rule 'loose' is not one of plain, interval"):
        export_trial(name, storage, "feasible", tmp_path / "x.yaml", rule="loose")
    assert not (tmp_path / "x.yaml").exists()


def test_interval_rule_refuses_with_the_lowest_upper_end_and_the_trials_without_one(
        tmp_path, run_config):
    from kdtune.study.export.trial import export_trial

    # kappa 0.04: plain feasible -> trials 0 and 1; no upper end is <= 0.04
    name, storage = _make_study(tmp_path, run_config, TRIALS, kappa=0.04)
    assert export_trial(name, storage, "feasible", tmp_path / "p.yaml")["trial"] == 0
    with pytest.raises(KdtuneError) as e:
        export_trial(name, storage, "feasible", tmp_path / "i.yaml", rule="interval")
    message = str(e.value)
    assert "upper end <= kappa=0.04" in message and "lowest upper end: 0.0450, trial 1" in message
    assert "1 of 4 complete trials have no stored sigma interval" in message
    assert "cannot qualify under --rule interval" in message
    assert not (tmp_path / "i.yaml").exists()


def test_interval_rule_without_any_stored_interval_says_so(tmp_path, run_config):
    from kdtune.study.export.trial import export_trial

    name, storage = _make_study(tmp_path, run_config, [(0.9, 0.01, None), (0.8, 0.02, None)])
    with pytest.raises(KdtuneError, match="2 of 2 complete trials have no stored sigma "
                       r"interval \(sigma_ci\) and cannot qualify under --rule interval"):
        export_trial(name, storage, "feasible", tmp_path / "i.yaml", rule="interval")


def test_cli_export_line_names_the_rule(study, tmp_path, capsys):
    from kdtune.study.cli.root import main

    name, storage = study
    out = tmp_path / "cli.yaml"
    assert main(["export", "--study", name, "--storage", storage, "--pick", "feasible",
                 "--rule", "interval", "-o", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line == (f"trial 1 (feasible, interval rule: sigma_ci upper end <= kappa 0.05) "
                    f"exported to {out}")


# --------------------------------------------------------------------------- production


@pytest.fixture(scope="module")
def produced(study, tmp_path_factory):
    """``kdtune export --pick feasible --rule interval``, then ``kdtune distill`` (CLI)."""
    import io
    from contextlib import redirect_stdout

    from kdtune.study.cli.root import main
    from kdtune.study.export.trial import export_trial

    name, storage = study
    base = tmp_path_factory.mktemp("produced")
    best = base / "best.yaml"
    export_trial(name, storage, "feasible", best, rule="interval")
    student = base / "student"
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["distill", str(best), "-o", str(student)])
    assert code == 0
    return best, student, out.getvalue().strip()


def test_distill_of_an_export_writes_the_production_check(produced):
    best, student, line = produced
    check = json.loads((student / "production_check.json").read_text())
    distilled = json.loads((student / "kdtune_distill.json").read_text())

    # the trial's selection-split figures, as the export recorded them
    assert check["selection_split"] == "eval"
    assert check["trial"]["accuracy_student"] == 0.85 and check["trial"]["sigma"] == 0.030
    assert check["trial"]["sigma_ci"] == [0.020, 0.045]
    assert check["trial"]["accuracy_student_ci"] == pytest.approx([0.81, 0.88])
    assert check["source"]["trial"] == 1 and check["source"]["rule"] == "interval"
    assert check["source"]["full_data"] is True

    # the production test figures, with paired bootstrap intervals
    test = check["test"]
    assert test["split"] == "test" and test["n_all"] == 80 and test["max_length"] == 8
    assert test["n_resamples"] == 1000
    for key in ("accuracy_student", "sigma"):
        low, high = test[f"{key}_ci"]
        assert low <= test[key] <= high, (key, test)
    assert 0.0 <= test["sigma"] <= 0.5 and test["accuracy_teacher"] >= 0.8

    # phi_cnf on test, by sigma and by the interval's upper end
    assert check["kappa"] == KAPPA
    assert check["phi_cnf_test"] == (test["sigma"] <= KAPPA) == test["phi_cnf"]
    assert check["sigma_test_upper"] == test["sigma_ci"][1]
    assert check["phi_cnf_test_upper"] == (test["sigma_ci"][1] <= KAPPA)

    # the run's own evaluation-split metrics stay as they were
    assert distilled["metrics"]["n_all"] == 80 and "sigma_ci" in distilled["metrics"]
    assert check["production_selection"]["sigma"] == distilled["metrics"]["sigma"]
    assert "test" in distilled["timings"]

    # the CLI line and the model card say it
    assert line.startswith(f"student saved to {student}: accuracy ")
    assert f"test split (n=80): accuracy {test['accuracy_student']:.4f} [" in line
    assert ("phi_cnf holds on test" in line) == check["phi_cnf_test"]
    card = (student / "README.md").read_text()
    assert "## Production check (test split, never read by the search)" in card
    assert "trial 1 of study" in card and "interval rule" in card
    assert "0.0300 [0.0200, 0.0450]" in card  # the trial's sigma with its interval
    assert f"{test['sigma']:.4f} [{test['sigma_ci'][0]:.4f}, {test['sigma_ci'][1]:.4f}]" in card
    assert "1000\nresamples" in card or "1000 resamples" in card

    # the metadata is huggingface_hub's model-index: read back with its eval results
    from huggingface_hub import ModelCard

    data = ModelCard.load(student / "README.md").data
    results = {(r.dataset_split, r.metric_type): r for r in data.eval_results}
    assert results[("test", "sigma")].metric_value == pytest.approx(test["sigma"])
    assert results[("test", "sigma")].metric_args == {"ci95": test["sigma_ci"]}
    assert results[("eval", "accuracy_student")].metric_value == pytest.approx(
        distilled["metrics"]["accuracy_student"])
    assert data.kdtune["phi_cnf_test_upper"] == check["phi_cnf_test_upper"]
    assert data.pipeline_tag == "text-classification"


def test_audit_with_the_config_reproduces_the_runs_figures(produced, long_csv, capsys):
    from kdtune.study.cli.root import main

    best, student, _ = produced
    check = json.loads((student / "production_check.json").read_text())
    distilled = json.loads((student / "kdtune_distill.json").read_text())

    # the teacher, data and max length come from the export: test and eval split figures
    for split, expected in (("test", check["test"]), ("eval", distilled["metrics"])):
        assert main(["audit", "--config", str(best), "--student", str(student),
                     "--split", split, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["source"]["max_length"] == 8 and report["kappa"] == KAPPA
        assert report["n_all"] == expected["n_all"]
        assert report["accuracy_student"] == pytest.approx(expected["accuracy_student"])
        assert report["sigma"] == pytest.approx(expected["sigma"], abs=1e-5)

    # the same data at the default max length (128) is another measurement
    assert main(["audit", "--config", str(best), "--student", str(student), "--split", "eval",
                 "--set", "data.max_length=128", "--json"]) == 0
    longer = json.loads(capsys.readouterr().out)
    assert longer["source"]["max_length"] == 128
    assert longer["mean_abs_delta"] != pytest.approx(distilled["metrics"]["mean_abs_delta"],
                                                     abs=1e-6)


def test_audit_config_problems_name_the_file(tmp_path, capsys):
    from kdtune.study.cli.root import main

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"distill": {"teacher": "t", "data": {"max_length": 2}}}))
    assert main(["audit", "--config", str(bad), "--student", "s"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kdtune: error: --config {bad}: distill.data.max_length")


def test_a_hand_written_config_still_gets_the_test_figures(run_config, tmp_path):
    from kdtune.study.export.trial import distill_from_file

    config = tmp_path / "mine.yaml"
    config.write_text(yaml.safe_dump({**run_config, "epochs": 1}))
    info = distill_from_file(config, tmp_path / "student", progress=False)
    check = info["production_check"]
    assert check["trial"] is None and check["test"]["n_all"] == 80
    assert len(check["test"]["sigma_ci"]) == 2
    assert json.loads((tmp_path / "student" / "production_check.json").read_text()) == check
    card = (tmp_path / "student" / "README.md").read_text()
    assert "trial (none: a hand-written config)" in card and "this student, test split" in card


@pytest.mark.parametrize("sigma, ci, holds, upper, says", [
    (0.030, [0.020, 0.045], True, True, "phi_cnf holds on test, interval included "
     "(upper end 0.0450 <= kappa 0.05)"),
    (0.040, [0.030, 0.061], True, False, "phi_cnf holds on test (sigma <= kappa 0.05) but "
     "not with the interval's upper end 0.0610"),
    (0.070, [0.050, 0.090], False, False, "phi_cnf FAILS on test (sigma 0.0700 > kappa 0.05)"),
    (float("nan"), [float("nan"), float("nan")], False, False, "phi_cnf cannot be judged"),
])
def test_the_verdict_reads_sigma_and_the_upper_end(sigma, ci, holds, upper, says):
    from kdtune.objectives.distillation.heldout import production_check
    from kdtune.study.export.card import card_section

    cfg = DistillConfig(teacher="t", eval={"kappa": KAPPA})
    test = {"accuracy_student": 0.9, "accuracy_student_ci": [0.85, 0.94], "sigma": sigma,
            "sigma_ci": ci, "n_all": 400, "n_both_correct": 350, "phi_cnf": holds,
            "n_resamples": 1000, "seed": 0, "max_length": 64, "split": "test"}
    check = production_check(cfg, test, None)
    assert (check["phi_cnf_test"], check["phi_cnf_test_upper"]) == (holds, upper)
    assert check["verdict"].startswith("test split (n=400): accuracy 0.9000 [0.8500, 0.9400]")
    assert says in check["verdict"]
    card = card_section(check)
    assert "- by sigma: " + ("holds" if holds else "does not hold") in card or sigma != sigma
    assert "| - |" in card  # no trial figures for a hand-written config

