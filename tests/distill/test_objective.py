"""The distillation objective: suggest -> distil -> measure -> values, on real models."""

from __future__ import annotations

import math

import optuna
import pytest

from kdtune.objectives.data.dataset import DataConfig
from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.distillation.run import Diverged, distill
from kdtune.objectives.search.space import IntParam, SearchSpace
from kdtune.objectives.search.trial import make_objective, metric_values, suggest_config

# These tests predate width search and the size cap: depth-only, uncapped (tests/model/test_size.py
# covers both). The tiny teacher's MiniLM vocabulary makes its embeddings 95% of it, so no
# student of it fits the default cap of a third of its parameters.
DEPTH_ONLY = {"search_hidden_size": False, "max_params_ratio": None}
SPACE = SearchSpace(**DEPTH_ONLY)

PARAMS = {"temperature": 4.0, "alpha": 0.7, "layer_mapping": "top", "learning_rate": 1e-3,
          "epochs": 1, "beta": 0.5, "schedule": "joint", "student_layers": 2}


def _base(teacher, csv, **kw) -> DistillConfig:
    data = DataConfig(source=str(csv), eval_size=80, test_size=80, max_length=16)
    return DistillConfig(teacher=str(teacher), data=data, batch_size=16, threads=2,
                         **kw)


def test_suggest_config_maps_every_parameter(tiny_teacher_dir, synthetic_csv):
    base = _base(tiny_teacher_dir, synthetic_csv)
    space = SearchSpace(epochs=IntParam(low=1, high=3))
    cfg = suggest_config(optuna.trial.FixedTrial(PARAMS), base, space, teacher_layers=4)
    for key, value in PARAMS.items():
        assert getattr(cfg, key) == value, key
    assert cfg.data == base.data  # what is not searched is kept
    # by default epochs are the fidelity, not searched: every trial trains distill.epochs
    default = suggest_config(optuna.trial.FixedTrial(PARAMS), base, SearchSpace(),
                             teacher_layers=4)
    assert default.epochs == base.epochs != PARAMS["epochs"]


def test_depth_is_searched_over_one_to_n_minus_one(tiny_teacher_dir, synthetic_csv):
    base = _base(tiny_teacher_dir, synthetic_csv)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    depths = set()
    for _ in range(30):
        t = study.ask()
        depths.add(suggest_config(t, base, SearchSpace(), teacher_layers=4).student_layers)
        study.tell(t, 0.0)
    assert depths == {1, 2, 3}


def test_objective_on_fixed_trial_records_metrics(tiny_teacher_dir, synthetic_csv):
    base = _base(tiny_teacher_dir, synthetic_csv)
    objective = make_objective(base, SPACE, ("accuracy_student", "sigma", "params"))
    trial = optuna.trial.FixedTrial(PARAMS)
    values = objective(trial)
    attrs = trial.user_attrs
    assert values == [attrs["accuracy_student"], attrs["sigma"], attrs["params"]]
    assert attrs["config"]["temperature"] == 4.0 and attrs["layer_mapping_layers"] == "3,4"
    assert attrs["accuracy_teacher"] >= 0.9
    assert 0.0 <= attrs["sigma"] < 0.5 and attrs["n_both_correct"] >= 2
    assert attrs["phi_cnf"] == (attrs["sigma"] <= attrs["kappa"])
    for key in ("seconds_train", "seconds_eval", "latency_ms", "kl_teacher_student", "ece_gap"):
        assert math.isfinite(attrs[key]), key


def test_teacher_cache_gives_the_same_student(tiny_teacher_dir, synthetic_csv):
    """Same seed, cache on or off: identical training, hence identical metrics."""
    kw = {"student_layers": 2, "epochs": 1, "beta": 1.0, "learning_rate": 1e-3}
    on = distill(_base(tiny_teacher_dir, synthetic_csv, teacher_cache=True, **kw))
    off = distill(_base(tiny_teacher_dir, synthetic_csv, teacher_cache=False, **kw))
    # the cache computes teacher outputs in length-sorted batches (float32): the numbers
    # agree to rounding, so training ends in (almost) the same place
    assert abs(on.metrics["accuracy_student"] - off.metrics["accuracy_student"]) <= 1 / 80
    assert on.metrics["sigma"] == pytest.approx(off.metrics["sigma"], abs=2e-3)


def test_two_stage_schedule_runs_both_stages(tiny_teacher_dir, synthetic_csv):
    r = distill(_base(tiny_teacher_dir, synthetic_csv, schedule="two-stage", beta=1.0,
                      intermediate_epochs=1, epochs=1, student_layers=2))
    stages = [h["stage"] for h in r.history]
    assert stages == ["intermediate", "prediction"]
    assert r.history[0]["loss_attention"] > 0 and "loss_soft" not in r.history[0]
    assert r.history[0]["loss_hidden"] > 0 and r.history[0]["loss_embedding"] > 0
    assert "loss_soft" in r.history[1] and "loss_hidden" not in r.history[1]


def test_soft_loss_mse_matches_logits_and_ignores_temperature(tiny_teacher_dir, synthetic_csv):
    kw = {"student_layers": 1, "epochs": 1, "learning_rate": 1e-3}
    mse = [distill(_base(tiny_teacher_dir, synthetic_csv, soft_loss="mse", temperature=t,
                         **kw)) for t in (1.0, 4.0)]
    ce = distill(_base(tiny_teacher_dir, synthetic_csv, temperature=4.0, **kw))
    # logits are matched as they are: the temperature changes nothing under mse
    assert mse[0].history[0]["loss_soft"] == mse[1].history[0]["loss_soft"]
    assert mse[0].metrics["accuracy_student"] == mse[1].metrics["accuracy_student"]
    assert mse[1].history[0]["loss_soft"] != ce.history[0]["loss_soft"]


def test_early_stopping_prunes_a_hopeless_trial(tiny_teacher_dir, synthetic_csv):
    base = _base(tiny_teacher_dir, synthetic_csv, init="random", learning_rate=1e-7,
                 min_relative_accuracy=0.95)
    objective = make_objective(base, SearchSpace(learning_rate=None, **DEPTH_ONLY),
                               ("accuracy_student", "sigma"))
    params = {k: v for k, v in PARAMS.items() if k != "learning_rate"}
    with pytest.raises(optuna.TrialPruned, match="below 0.95 x teacher accuracy"):
        objective(optuna.trial.FixedTrial(params))


def test_divergence_fails_with_its_reason_and_is_not_retryable(tiny_teacher_dir,
                                                               synthetic_csv):
    cfg = _base(tiny_teacher_dir, synthetic_csv, learning_rate=1e6, temperature=0.01,
                alpha=1.0, student_layers=1)
    with pytest.raises(Diverged, match="loss became") as e:
        distill(cfg)
    assert e.value.retryable is False


def test_missing_objective_metric_is_an_error():
    with pytest.raises(ValueError, match="objective 'sigma' is nan"):
        metric_values({"accuracy_student": 0.8, "sigma": float("nan")}, ["accuracy_student",
                                                                         "sigma"])


@pytest.mark.slow
def test_minilm_polarity_teacher_distils_into_two_layers(polarity_teacher):
    """Real checkpoint, real text: a 2-layer student of the MiniLM polarity teacher."""
    data = DataConfig(train_size=1200, eval_size=400, test_size=400, max_length=64)
    r = distill(DistillConfig(teacher=str(polarity_teacher), data=data, student_layers=2,
                              epochs=2, learning_rate=2e-4, temperature=2.0, alpha=0.5,
                              beta=0.0, threads=2))
    m = r.metrics
    assert m["accuracy_teacher"] >= 0.7
    assert m["accuracy_student"] >= 0.62, m  # chance is 0.5 on balanced polarity
    for key, value in m.items():
        if isinstance(value, float):
            assert math.isfinite(value), key
    assert m["n_both_correct"] > 100 and m["params"] < 23_000_000


def test_reported_metrics_are_the_returned_students(tiny_teacher_dir, synthetic_csv):
    """The final metrics reuse the last epoch's evaluation: they must be the final student's."""
    import numpy as np
    import torch

    from kdtune.objectives.data.dataset import load_splits
    from kdtune.objectives.data.tokens import tokenize

    r = distill(_base(tiny_teacher_dir, synthetic_csv, student_layers=2, epochs=2,
                      learning_rate=1e-3))
    ev = tokenize(load_splits(r.config.data).eval, r.tokenizer, r.config.data.max_length)
    r.student.eval()
    with torch.no_grad():
        preds = [int(r.student(input_ids=torch.tensor([ids]),
                               attention_mask=torch.ones(1, len(ids), dtype=torch.long))
                     .logits.argmax(-1)) for ids in ev["input_ids"]]
    assert r.metrics["accuracy_student"] == pytest.approx(
        float(np.mean(np.array(preds) == np.array(ev["label"]))))
    assert r.history[-1]["eval_accuracy"] == r.metrics["accuracy_student"]
    assert set(r.timings) >= {"train", "eval"} and r.timings["eval"] > 0


def test_repeated_parameters_reuse_the_finished_trial(tiny_teacher_dir, synthetic_csv):
    """A configuration a finished trial already had is not trained again; new ones are."""
    base = _base(tiny_teacher_dir, synthetic_csv)
    calls = []

    def counting_distill(cfg, **kw):
        calls.append(cfg.temperature)
        return distill(cfg, **kw)

    objective = make_objective(base, SPACE, ("accuracy_student", "sigma"),
                               run=counting_distill)
    study = optuna.create_study(directions=["maximize", "minimize"])
    repeated = {**PARAMS, "learning_rate": 2e-4}  # inside the default search range
    other = {**repeated, "temperature": 2.0}
    for params in (repeated, repeated, other):
        study.enqueue_trial(params)
    study.optimize(objective, n_trials=3)
    first, repeat, new = study.trials
    assert calls == [4.0, 2.0]  # the repeat did not train
    assert repeat.values == first.values and repeat.user_attrs["duplicate_of"] == 0
    assert repeat.user_attrs["sigma"] == first.user_attrs["sigma"]
    assert "seconds_train" not in repeat.user_attrs  # it took no training time
    # the compute an epoch_budget counts: the repeat trained nothing
    assert "epochs_trained" not in repeat.user_attrs
    assert first.user_attrs["epochs_trained"] == first.user_attrs["config"]["epochs"]
    assert "duplicate_of" not in first.user_attrs and "duplicate_of" not in new.user_attrs

    calls.clear()  # reuse_repeats off: every trial trains
    objective = make_objective(base, SearchSpace(reuse_repeats=False, **DEPTH_ONLY),
                               ("accuracy_student", "sigma"), run=counting_distill)
    again = optuna.create_study(directions=["maximize", "minimize"])
    again.enqueue_trial(repeated)
    again.enqueue_trial(repeated)
    again.optimize(objective, n_trials=2)
    assert calls == [4.0, 4.0] and "duplicate_of" not in again.trials[1].user_attrs


def test_a_student_at_majority_class_accuracy_is_pruned(tiny_teacher_dir, synthetic_csv):
    """A student that learnt nothing is pruned with its reason (metrics kept); others are not."""
    base = _base(tiny_teacher_dir, synthetic_csv)
    forget = []

    def maybe_forgetful_distill(cfg, **kw):
        result = distill(cfg, **kw)
        if forget:  # above the majority class, but not by more than the noise
            result.metrics["accuracy_student"] = result.metrics["accuracy_majority"] + 0.05
            result.metrics["accuracy_student_ci"] = [0.45, 0.65]
        return result

    objective = make_objective(base, SPACE, ("accuracy_student", "sigma"),
                               run=maybe_forgetful_distill)
    study = optuna.create_study(directions=["maximize", "minimize"])
    params = {**PARAMS, "learning_rate": 2e-4}
    study.enqueue_trial(params)
    study.enqueue_trial({**params, "temperature": 2.0})
    learnt = study.ask()
    values = objective(learnt)
    assert values[0] > learnt.user_attrs["accuracy_majority"] == 0.5  # balanced eval split
    forget.append(True)
    trivial = study.ask()
    with pytest.raises(optuna.TrialPruned, match=r"0.5500 \(95% interval from 0.4500\) is no "
                       r"better than always predicting the most common label \(0.5000\)"):
        objective(trivial)
    assert trivial.user_attrs["accuracy_student"] == 0.55 and "sigma" in trivial.user_attrs


def test_threads_are_an_argument_not_an_environment_variable(tiny_teacher_dir, synthetic_csv,
                                                            monkeypatch):
    """make_objective passes its threads to each run; distill uses them unless cfg says."""
    import torch

    monkeypatch.setenv("KDTUNE_THREADS", "3")  # no longer read by anything
    seen = []

    class Result:
        metrics = {"accuracy_student": 0.9, "accuracy_majority": 0.5, "sigma": 0.01}
        timings = {"train": 1.0}

    def recording_run(cfg, **kw):
        seen.append(kw["threads"])
        return Result()

    base = _base(tiny_teacher_dir, synthetic_csv)
    objective = make_objective(base, SPACE, ("accuracy_student", "sigma"),
                               run=recording_run, threads=1)
    assert objective(optuna.trial.FixedTrial(PARAMS)) == [0.9, 0.01]
    assert seen == [1]

    previous = torch.get_num_threads()
    try:
        data = DataConfig(source=str(synthetic_csv), eval_size=80, test_size=80, max_length=16)
        cfg = DistillConfig(teacher=str(tiny_teacher_dir), data=data, batch_size=16, epochs=1,
                            student_layers=1, eval={"latency_batches": 0})
        assert cfg.threads is None
        distill(cfg, threads=1)
        assert torch.get_num_threads() == 1
        distill(cfg.model_copy(update={"threads": 2}), threads=1)  # the config's own wins
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_beta_is_sampled_only_where_it_weights_something(tiny_teacher_dir, synthetic_csv):
    from kdtune.objectives.distillation.training import stages

    base = _base(tiny_teacher_dir, synthetic_csv)
    joint = optuna.trial.FixedTrial({**PARAMS, "schedule": "joint", "beta": 0.25})
    assert suggest_config(joint, base, SPACE, 4).beta == 0.25 and "beta" in joint.params
    staged = optuna.trial.FixedTrial({**PARAMS, "schedule": "two-stage"})
    cfg = suggest_config(staged, base, SPACE, 4)
    assert "beta" not in staged.params and cfg.beta == 1.0  # switches the stage on
    assert [s.name for s in stages(cfg)] == ["intermediate", "prediction"]
    none = base.model_copy(update={"intermediate": ()})
    plain = optuna.trial.FixedTrial({**PARAMS, "schedule": "joint"})
    assert "beta" not in plain.params and suggest_config(plain, none, SPACE, 4).beta == 0.0


def test_automatic_depth_is_an_ordered_integer(tiny_teacher_dir, synthetic_csv):
    study = optuna.create_study()
    trial = study.ask()
    cfg = suggest_config(trial, _base(tiny_teacher_dir, synthetic_csv), SearchSpace(), 4)
    dist = study.trials[0].distributions["student_layers"]
    assert isinstance(dist, optuna.distributions.IntDistribution)
    assert (dist.low, dist.high) == (1, 3) and 1 <= cfg.student_layers <= 3
    other = optuna.create_study()  # a study keeps one distribution kind per parameter
    suggest_config(other.ask(), _base(tiny_teacher_dir, synthetic_csv),
                   SearchSpace(student_layers={"choices": [1, 3]}), 4)
    assert isinstance(other.trials[0].distributions["student_layers"],
                      optuna.distributions.CategoricalDistribution)


def _fake_run(seen: list, then=None):
    """A ``run`` for make_objective: three epochs reported, what the study holds noted after
    each, then ``then`` raised (or figures returned)."""
    from types import SimpleNamespace

    def run(cfg, on_epoch, **kw):
        study = kw.pop("_study")
        for epoch in (1, 2, 3):
            on_epoch(epoch, 0.5 + epoch / 10)
            seen.append(dict(study.trials[-1].user_attrs))
        if then is not None:
            raise then
        return SimpleNamespace(metrics={"accuracy_student": 0.8, "accuracy_majority": 0.5,
                                        "accuracy_student_ci": [0.7, 0.9], "sigma": 0.1},
                               timings={"train": 1.0})
    return run


@pytest.mark.parametrize("then", [None, "early", "error"])
def test_every_epoch_is_recorded_the_last_with_the_metrics(tiny_teacher_dir, synthetic_csv,
                                                           then):
    """Epochs before the last are stored at once (the epoch budget of other workers reads
    them); the last is stored with the metrics, one write fewer, and still when the run
    stops or fails after it."""
    from kdtune.objectives.distillation.run import EarlyStopped

    base = _base(tiny_teacher_dir, synthetic_csv, epochs=3)
    study = optuna.create_study(directions=["maximize", "minimize"])
    seen: list = []
    raised = {"early": EarlyStopped("stopped at the last epoch"),
              "error": RuntimeError("boom")}.get(then)
    fake = _fake_run(seen, raised)
    objective = make_objective(base, SearchSpace(epochs=None, schedule=None, **DEPTH_ONLY),
                               ("accuracy_student", "sigma"),
                               run=lambda cfg, **kw: fake(cfg, _study=study, **kw))
    trial = study.ask()
    if then is None:
        assert objective(trial) == [0.8, 0.1]
    else:
        with pytest.raises(optuna.TrialPruned if then == "early" else RuntimeError):
            objective(trial)
    assert seen[0]["epochs_trained"] == 1 and seen[1]["epochs_trained"] == 2
    assert seen[1]["eval_accuracy_epoch_2"] == pytest.approx(0.7)
    assert seen[2]["epochs_trained"] == 2  # the last epoch waits for the metrics write
    stored = study._storage.get_trial(trial._trial_id).user_attrs
    assert stored["epochs_trained"] == 3 and stored["eval_accuracy_epoch_3"] == pytest.approx(0.8)
    assert ("sigma" in stored) == (then is None)
