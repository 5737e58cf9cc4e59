"""Multi-objective successive halving: the ranking rule on hand-made fronts, rung records in
the study, and stopping through the real objective and distillation."""

from __future__ import annotations

import math
import re

import numpy as np
import optuna
import pytest
from pydantic import ValidationError

from kdtune.attrs import rung_key
from kdtune.objectives.data.dataset import DataConfig
from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.search.halving import HalvingConfig, crowding_distance, decide, rank_order
from kdtune.objectives.search.space import SearchSpace
from kdtune.objectives.search.trial import make_objective

MAX_MIN = ("maximize", "minimize")  # accuracy up, sigma down


def test_rank_order_sorts_fronts_then_crowding_then_index():
    points = [(0.8, 0.10),   # 0: front 0, between the others
              (0.7, 0.20),   # 1: dominated by 0 -> front 1
              (0.9, 0.30),   # 2: front 0, boundary (best accuracy)
              (0.6, 0.05),   # 3: front 0, boundary (best sigma)
              (0.5, 0.40)]   # 4: dominated by everything -> last
    assert rank_order(points, MAX_MIN) == [2, 3, 0, 1, 4]
    # Flip the directions: what was worst on both is now the only first front.
    assert rank_order(points, ("minimize", "maximize"))[0] == 4


def test_ties_in_crowding_go_to_the_better_first_objective_then_the_earlier_trial():
    # 0 and 2 are the front's boundary points (infinite crowding): the most accurate first
    # although it came later; then the middle point; equal points keep their order.
    points = [(0.6, 0.05), (0.7, 0.10), (0.9, 0.30)]
    assert rank_order(points, MAX_MIN) == [2, 0, 1]
    assert decide(points, 2, MAX_MIN, eta=3, min_trials=3) == (True, 1, 1)
    assert decide(points, 0, MAX_MIN, eta=3, min_trials=3) == (False, 2, 1)
    assert rank_order(points, ("minimize", "maximize")) == [0, 2, 1]  # now 0 is best first
    assert rank_order([(0.7, 0.1), (0.7, 0.1)], MAX_MIN) == [0, 1]


def test_crowding_distance_is_nsga2s():
    front = [[0.0, 1.0], [0.25, 0.5], [0.5, 0.4], [1.0, 0.0]]
    d = crowding_distance(np.asarray(front))
    assert math.isinf(d[0]) and math.isinf(d[3])
    # Point 1: neighbours 0 and 2: (0.5 - 0)/1 + (1.0 - 0.4)/1 = 1.1; point 2: 0.75 + 0.5.
    assert d[1] == pytest.approx(1.1) and d[2] == pytest.approx(1.25)
    assert rank_order(front, ("minimize", "minimize")) == [0, 3, 2, 1]


def test_decide_keeps_the_best_third_and_everyone_while_few():
    few = [(0.5, 0.1), (0.9, 0.05)]
    assert decide(few, 0, MAX_MIN, eta=3) == (True, 2, 2)  # n < eta: continue
    six = [(0.5 + 0.05 * i, 0.3 - 0.04 * i) for i in range(6)]  # a chain: 5 dominates all
    assert decide(six, 5, MAX_MIN, 3) == (True, 1, 2)
    assert decide(six, 4, MAX_MIN, 3) == (True, 2, 2)
    assert decide(six, 3, MAX_MIN, 3) == (False, 3, 2)
    # min_trials: nobody stops before the rung holds that many; then the best 1/eta again
    assert decide(six[:5], 0, MAX_MIN, 3) == (False, 5, 1)
    assert decide(six[:5], 0, MAX_MIN, 3, min_trials=6) == (True, 5, 5)
    assert decide(six, 3, MAX_MIN, 3, min_trials=6) == (False, 3, 2)
    with pytest.raises(ValidationError):
        HalvingConfig(min_trials=0)


def test_trivial_students_rank_after_every_learning_one():
    points = [(0.50, 0.08), (0.58, 0.44), (0.62, 0.30)]  # 0: at the majority class
    assert rank_order(points, MAX_MIN)[0] in (0, 2)  # non-dominated on sigma alone
    assert rank_order(points, MAX_MIN, [True, False, False]) == [2, 1, 0]
    assert decide(points, 0, MAX_MIN, 3, [True, False, False]) == (False, 3, 1)


def test_rungs_must_increase():
    assert HalvingConfig().rungs == (1, 2) and HalvingConfig().eta == 3
    for bad in ([], [2, 1], [0, 1], [1, 1]):
        with pytest.raises(ValidationError, match="rungs must be increasing"):
            HalvingConfig(rungs=bad)
    with pytest.raises(ValidationError):
        HalvingConfig(eta=1)


def _study_objective(tiny_teacher_dir, synthetic_csv, quality, halving=None):
    """make_objective over a stand-in run whose rung figures are ``quality(temperature)``."""
    base = DistillConfig(teacher=str(tiny_teacher_dir), student_layers=1,
                         data=DataConfig(source=str(synthetic_csv), eval_size=80, test_size=80))
    space = SearchSpace(temperature={"low": 1.0, "high": 10.0}, alpha=None, layer_mapping=None,
                        learning_rate=None, epochs=None, beta=None, schedule=None,
                        search_student_layers=False, search_hidden_size=False,
                        max_params_ratio=None,
                        halving=halving or {"rungs": [1, 2], "eta": 2})
    reached = []

    class Result:
        timings = {"train": 1.0}

        def __init__(self, metrics):
            self.metrics = metrics

    def run(cfg, on_epoch=None, threads=None, on_figures=None):
        figures = {}
        for epoch in (1, 2, 3):
            figures = quality(cfg.temperature, epoch)
            on_figures(epoch, figures)
            reached.append((cfg.temperature, epoch))
        return Result({**figures, "accuracy_majority": 0.5, "accuracy_student_ci": [0.6, 0.9]})

    return make_objective(base, space, ("accuracy_student", "sigma"), run=run), reached


def test_a_dominated_trial_stops_at_its_rung_and_the_ladder_is_in_the_study(
        tmp_path, tiny_teacher_dir, synthetic_csv):
    def quality(t, epoch):  # lower temperature: better on both objectives, at every rung
        return {"accuracy_student": 0.9 - 0.02 * t + 0.01 * epoch, "sigma": 0.01 * t,
                "accuracy_majority": 0.5}

    objective, reached = _study_objective(tiny_teacher_dir, synthetic_csv, quality)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'h.db'}",
                                directions=["maximize", "minimize"])
    for t in (2.0, 1.0, 9.0, 5.0):
        study.enqueue_trial({"temperature": t})
    study.optimize(objective, n_trials=4)
    states = {t.params["temperature"]: t for t in study.get_trials()}
    # 2.0 and 1.0: fewer than eta recorded, or the best; 9.0 ranks 3 of 3 after epoch 1.
    assert states[2.0].state.name == "COMPLETE" and states[1.0].state.name == "COMPLETE"
    nine = states[9.0]
    assert nine.state.name == "PRUNED" and (9.0, 1) not in reached
    assert nine.user_attrs[rung_key(1)]["values"] == pytest.approx([0.73, 0.09])
    assert rung_key(2) not in nine.user_attrs
    # 5.0 ranks 3 of 4 after epoch 1 (keep 2): stopped there too.
    assert states[5.0].state.name == "PRUNED"
    assert states[1.0].user_attrs[rung_key(2)]["values"] == pytest.approx([0.90, 0.01])


def test_min_trials_lets_the_first_trials_of_a_rung_continue(
        tmp_path, tiny_teacher_dir, synthetic_csv):
    def quality(t, epoch):  # lower temperature: better on both objectives, at every rung
        return {"accuracy_student": 0.9 - 0.02 * t + 0.01 * epoch, "sigma": 0.01 * t,
                "accuracy_majority": 0.5}

    objective, _ = _study_objective(tiny_teacher_dir, synthetic_csv, quality,
                                    {"rungs": [1, 2], "eta": 2, "min_trials": 4})
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'm.db'}",
                                directions=["maximize", "minimize"])
    for t in (2.0, 1.0, 9.0, 5.0, 8.0):
        study.enqueue_trial({"temperature": t})
    study.optimize(objective, n_trials=5)
    states = {t.params["temperature"]: t.state.name for t in study.get_trials()}
    # 9.0 ranks 3 of 3 at both rungs, yet continues: fewer than 4 recorded there. With 4
    # recorded the best 2 continue: 5.0 (3 of 4) and 8.0 (4 of 5) stop after epoch 1.
    assert states[9.0] == "COMPLETE" and states[2.0] == states[1.0] == "COMPLETE"
    assert states[5.0] == "PRUNED" and states[8.0] == "PRUNED"


def test_the_real_distillation_reports_figures_after_each_prediction_epoch(
        tiny_teacher_dir, synthetic_csv):
    from kdtune.objectives.distillation.run import EarlyStopped, distill

    cfg = DistillConfig(teacher=str(tiny_teacher_dir), student_layers=1, epochs=2,
                        batch_size=16, threads=1, data=DataConfig(
                            source=str(synthetic_csv), eval_size=80, test_size=80,
                            max_length=16), eval={"latency_batches": 0})
    seen = []

    def on_figures(epochs, figures):
        seen.append((epochs, figures["accuracy_student"], figures["sigma"]))
        if epochs == 1:
            raise EarlyStopped("stopped at the first rung")

    with pytest.raises(EarlyStopped, match="first rung"):
        distill(cfg, on_figures=on_figures)
    assert len(seen) == 1 and seen[0][0] == 1 and 0.0 <= seen[0][1] <= 1.0


def test_the_report_shows_the_ladder():
    from kdtune.study.config import validate
    from kdtune.study.report.html import _halving_html

    study = optuna.create_study(directions=["maximize", "minimize"])
    for number, rungs, reason in ((0, (1, 2), None), (1, (1,), "after 1 epoch(s) the trial "),
                                  (2, (1, 2), "after 2 epoch(s) the trial ")):
        trial = study.ask()
        for e in rungs:
            trial.set_user_attr(rung_key(e), {"values": [0.6, 0.1], "trivial": number == 1})
        if reason:
            trial.set_user_attr("prune_reason", reason)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, [0.7, 0.1])
    cfg = validate({"name": "x", "distill": {"teacher": "unused"},
                    "search": {"halving": {"rungs": [1, 2], "eta": 3}}})
    page = _halving_html(study.get_trials(), cfg)
    assert "Successive halving (eta 3)" in page
    cells = re.findall(r"<td>([^<]*)</td>", page)
    assert cells == ["1", "3", "1", "1", "2", "2", "0", "1"]
    assert _halving_html(study.get_trials(), validate({"name": "x", "distill": {
        "teacher": "unused"}})) == ""


def test_halving_makes_epochs_the_fidelity(tiny_teacher_dir, synthetic_csv):
    from kdtune.objectives.search.checks import check_distill

    base = DistillConfig(teacher=str(tiny_teacher_dir), epochs=3, data=DataConfig(
        source=str(synthetic_csv), eval_size=80, test_size=80))
    halving = {"halving": {"rungs": [1, 2]}, "max_params_ratio": None}
    searched = check_distill(base, space=SearchSpace(epochs={"low": 1, "high": 3}, **halving))
    assert [p.split(":")[0] for p in searched] == ["search.epochs"]
    assert check_distill(base, space=SearchSpace(epochs=None, **halving)) == []
    assert check_distill(base, space=SearchSpace(**halving)) == []  # epochs: not searched
    short = check_distill(base.model_copy(update={"epochs": 1}),
                          space=SearchSpace(epochs=None, **halving))
    assert len(short) == 1 and "beyond distill.epochs (1)" in short[0]
