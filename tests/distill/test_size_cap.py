"""The size cap in the search (issue #12, item 1; issue 23, item 3): the default ratio, the
constraint Optuna sees, and the depth x width (x feed-forward) shapes under the caps, so no
trial is spent over them."""

from __future__ import annotations

import optuna
import pytest

from kdtune.attrs import MAX_PARAMS_CONSTRAINT, PARAMS_CAP
from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.search.space import SearchSpace
from kdtune.objectives.search.trial import make_objective
from kdtune.objectives.student.size import student_parameters, teacher_parameters


def test_default_ratio_cap_excludes_a_full_width_student(minilm_path):
    from transformers import AutoConfig

    t_cfg = AutoConfig.from_pretrained(str(minilm_path))
    default = SearchSpace()
    assert default.max_params_ratio == pytest.approx(1 / 2) and default.max_params is None
    teacher = teacher_parameters(t_cfg)
    assert 22_000_000 < teacher < 23_000_000
    assert default.params_cap(teacher) == int(teacher / 2)
    # with the full vocabulary even one full-width layer is over the default cap
    assert student_parameters(t_cfg, 1, None) > default.params_cap(teacher)
    assert student_parameters(t_cfg, 1, 256) <= default.params_cap(teacher)
    space = SearchSpace(max_params_ratio=1 / 3)  # the goal's cap, asked for explicitly
    cap = space.params_cap(teacher)
    assert cap == int(teacher / 3)
    widths = space.width_choices(384, 12)
    assert widths == (192, 256, 384)
    fits = {(d, w) for d in (1, 2, 3, 4, 5, 6) for w in (96, 128, 192, 256)
            if student_parameters(t_cfg, d, w) <= cap}  # with the teacher's full vocabulary
    assert {(d, 128) for d in range(1, 6)} <= fits and (3, 192) in fits
    assert (1, 256) not in fits
    assert SearchSpace(max_params=10**9).params_cap(teacher) == 10**9  # absolute cap wins
    assert SearchSpace(max_params_ratio=None).params_cap(teacher) is None


def test_the_constraint_reaches_the_sampler_and_infeasible_trials_are_never_on_the_front(
        wide_dir, small_data):
    """Cap between the 16- and 32-wide students at a fixed depth (depth not searched, so the
    widths are drawn alone, not as shapes): 32 is pruned untrained, 16 trains."""
    from optuna.samplers._tpe.sampler import _get_infeasible_trial_score
    from optuna.study._constrained_optimization import _get_feasible_trials
    from transformers import AutoConfig

    from kdtune.study.front import pareto_front

    base = DistillConfig(teacher=str(wide_dir), data=small_data, batch_size=16,
                         vocabulary="full", student_layers=1)
    t_cfg = AutoConfig.from_pretrained(str(wide_dir))
    small, big = student_parameters(t_cfg, 1, 16), student_parameters(t_cfg, 1, 32)
    cap = (small + big) // 2
    space = SearchSpace(temperature=None, alpha=None, layer_mapping=None, learning_rate=None,
                        epochs=None, beta=None, schedule=None, search_student_layers=False,
                        max_params=cap, hidden_size={"choices": [16, 32]})
    trained = []

    class Result:
        metrics = {"accuracy_student": 0.9, "accuracy_majority": 0.5, "sigma": 0.01}
        timings = {"train": 1.0}

    def run(cfg, **kw):
        trained.append(cfg.hidden_size)
        return Result()

    objective = make_objective(base, space, ("accuracy_student", "sigma"), run=run)
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=2)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.enqueue_trial({"hidden_size": 32})
    study.enqueue_trial({"hidden_size": 16})
    study.optimize(objective, n_trials=2)
    over, fits = study.trials
    assert trained == [16]  # the over-cap student was never trained
    assert over.state == optuna.trial.TrialState.PRUNED
    assert over.constraints == {MAX_PARAMS_CONSTRAINT: float(big - cap)}
    assert over.user_attrs["params"] == big and over.user_attrs[PARAMS_CAP] == cap
    assert fits.state == optuna.trial.TrialState.COMPLETE
    assert fits.constraints[MAX_PARAMS_CONSTRAINT] == float(small - cap) <= 0
    assert fits.user_attrs["params"] == small
    # What the samplers read: Optuna's constrained-optimisation view of the trials.
    assert [t.number for t in _get_feasible_trials(study.trials)] == [fits.number]
    assert _get_infeasible_trial_score(over) == big - cap > 0  # c-TPE ranks it by excess
    # A COMPLETE infeasible trial (e.g. one told by hand) stays off every front too.
    forced = optuna.trial.create_trial(
        params={"hidden_size": 32}, distributions=fits.distributions, values=[0.99, 0.0],
        constraints={MAX_PARAMS_CONSTRAINT: 1.0})
    study.add_trial(forced)
    forced = study.trials[-1]
    assert [t.number for t in study.best_trials] == [fits.number]
    assert [t.number for t in pareto_front(study)] == [fits.number]
    for _ in range(4):  # the sampler runs on a study holding the infeasible trials
        study.optimize(objective, n_trials=1)
    assert all(t.user_attrs["params"] <= cap for t in study.trials
               if t.state == optuna.trial.TrialState.COMPLETE and t.number != forced.number)


def test_width_search_is_checked_against_the_teacher(wide_dir, small_data):
    from kdtune.objectives.search.checks import check_distill

    base = DistillConfig(teacher=str(wide_dir), data=small_data)
    uncapped = SearchSpace(max_params_ratio=None)
    assert check_distill(base, space=uncapped) == []
    wider = check_distill(base, space=uncapped.model_copy(
        update={"hidden_size": SearchSpace(hidden_size={"choices": [32, 128]}).hidden_size}))
    assert len(wider) == 1 and wider[0].startswith("search.hidden_size: 128 is wider")
    fixed = check_distill(base.model_copy(update={"hidden_size": 96}))
    assert len(fixed) == 1 and "width up to the teacher's width 64" in fixed[0]
    assert check_distill(base.model_copy(update={"hidden_size": 96, "init": "random"})) == []
    with pytest.raises(ValueError, match="student widths must be ints >= 8"):
        SearchSpace(hidden_size={"choices": [4]})


def test_automatic_widths_that_no_depth_fits_under_the_cap_are_not_searched(minilm_path):
    from kdtune.objectives.search.shapes import feasible_widths
    from kdtune.objectives.student.size import teacher_config, teacher_parameters

    t_cfg = teacher_config(str(minilm_path))
    default = SearchSpace()  # under a half with the full vocabulary: no full-width student
    assert feasible_widths(default, t_cfg, 6,
                           default.params_cap(teacher_parameters(t_cfg))) == (192, 256)
    space = SearchSpace(max_params_ratio=1 / 3)
    cap = space.params_cap(teacher_parameters(t_cfg))
    # MiniLM under a third: 256 wide, even one layer is over the cap (its word embedding).
    assert feasible_widths(space, t_cfg, 6, cap) == (192,)  # with the full vocabulary
    assert student_parameters(t_cfg, 1, 256) > cap >= student_parameters(t_cfg, 1, 192)
    assert feasible_widths(SearchSpace(max_params_ratio=None), t_cfg, 6, None) is None
    explicit = SearchSpace(hidden_size={"choices": [128, 256]})
    assert feasible_widths(explicit, t_cfg, 6, cap) is None  # the user's choices stand


def test_feasible_shapes_offer_only_students_under_the_cap(minilm_path):
    from kdtune.objectives.search.shapes import feasible_shapes
    from kdtune.objectives.student.size import teacher_config, teacher_parameters

    t_cfg = teacher_config(str(minilm_path))
    task = 10_988  # MiniLM's wordpieces kept on polarity's 3,200 students' sentences
    default = SearchSpace()  # under a half: three full-width layers, not four
    half = feasible_shapes(default, t_cfg, 6, default.params_cap(teacher_parameters(t_cfg)),
                           task)
    assert "3x384" in half and "4x384" not in half and "5x256" in half
    space = SearchSpace(max_params_ratio=1 / 3)
    cap = space.params_cap(teacher_parameters(t_cfg))
    shapes = feasible_shapes(space, t_cfg, 6, cap, task)
    assert "1x384" in shapes and "2x384" not in shapes and "5x256" in shapes
    assert all(_shape_params(t_cfg, s, task) <= cap for s in shapes)
    missing = {f"{d}x{w}" for d in range(1, 6) for w in (192, 256, 384)} - set(shapes)
    assert all(_shape_params(t_cfg, s, task) > cap for s in missing)
    # with the teacher's full vocabulary no full-width student fits
    assert not any(s.endswith("x384") for s in feasible_shapes(space, t_cfg, 6, cap))
    # explicit choices that the cap cuts form the shapes (the pairs under it); explicit
    # choices that all fit, or no cap, are drawn separately
    chosen = feasible_shapes(SearchSpace(student_layers={"choices": [1, 2]}), t_cfg, 6, cap,
                             task)
    assert set(chosen) == {s for s in shapes if s[0] in "12"} and "2x384" not in chosen
    assert feasible_shapes(SearchSpace(student_layers={"choices": [1, 2]},
                                       hidden_size={"choices": [192]}), t_cfg, 6, cap,
                           task) is None
    assert feasible_shapes(SearchSpace(max_params_ratio=None), t_cfg, 6, None, task) is None


def test_a_capped_study_trains_every_trial(wide_dir, small_data):
    """Depth and width drawn together among the shapes under the cap: no trial is pruned
    over it, whatever the sampler draws (params an objective: every shape is drawn)."""
    from transformers import AutoConfig

    from kdtune.objectives.search.shapes import parse_shape

    base = DistillConfig(teacher=str(wide_dir), data=small_data, batch_size=16)
    t_cfg = AutoConfig.from_pretrained(str(wide_dir))
    cap = student_parameters(t_cfg, 1, 64, 2000)  # about one full-width layer
    space = SearchSpace(temperature=None, alpha=None, layer_mapping=None, learning_rate=None,
                        beta=None, schedule=None, max_params=cap, reuse_repeats=False)
    trained = []

    class Result:
        metrics = {"accuracy_student": 0.9, "accuracy_majority": 0.5, "params": 1}
        timings = {"train": 1.0}

    def run(cfg, **kw):
        trained.append((cfg.student_layers, cfg.hidden_size))
        return Result()

    objective = make_objective(base, space, ("accuracy_student", "params"), run=run)
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=12)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len(trained) == 12 and len(set(trained)) > 1
    for t in study.trials:
        assert parse_shape(t.params["student_shape"])[:2] in trained
        assert t.user_attrs["params"] <= cap


def _shape_params(t_cfg, shape: str, vocab_size: int | None) -> int:
    from kdtune.objectives.search.shapes import parse_shape

    depth, width, ffn = parse_shape(shape)
    return student_parameters(t_cfg, depth, width, vocab_size, ffn)


def test_ffn_fractions_add_narrower_feed_forward_shapes_under_the_cap(minilm_path):
    """Under a third of MiniLM: 2 x 384 only with a narrower feed-forward block."""
    from kdtune.objectives.search.shapes import feasible_shapes, parse_shape
    from kdtune.objectives.student.size import teacher_config

    t_cfg = teacher_config(str(minilm_path))
    task = 10_988
    space = SearchSpace(max_params_ratio=1 / 3, ffn_fractions=[1, 0.67, 0.33])
    cap = space.params_cap(teacher_parameters(t_cfg))
    shapes = feasible_shapes(space, t_cfg, 6, cap, task)
    assert {"1x384", "2x384x1029", "3x384x507"} <= set(shapes), shapes
    assert "2x384" not in shapes and "4x384x507" not in shapes
    assert parse_shape("2x384x1029") == (2, 384, 1029)
    assert all(_shape_params(t_cfg, s, task) <= cap for s in shapes)
    # a base feed-forward size beside the fractions: fraction 1 is the width's own size
    with_base = feasible_shapes(space, t_cfg, 6, cap, task, ffn_size=1024)
    assert with_base == shapes
    with pytest.raises(ValueError, match="ffn_fractions applies"):
        SearchSpace(ffn_fractions=[0.5], search_student_layers=False)
    # explicit choices form the shapes with the fractions: the teacher's width only
    full_width = SearchSpace(max_params_ratio=1 / 3, hidden_size={"choices": [384]},
                             ffn_fractions=[1, 0.6667, 0.3333])
    assert set(feasible_shapes(full_width, t_cfg, 6, cap, task)) == {
        "1x384", "1x384x1024", "1x384x512", "2x384x1024", "2x384x512", "3x384x512"}
    # the same shapes from the teacher-relative width_fractions, whatever the teacher
    relative = SearchSpace(max_params_ratio=1 / 3, width_fractions=[1],
                           ffn_fractions=[1, 0.6667, 0.3333])
    assert feasible_shapes(relative, t_cfg, 6, cap, task) == feasible_shapes(
        full_width, t_cfg, 6, cap, task)
    with pytest.raises(ValueError):
        SearchSpace(ffn_fractions=[1.5])
    with pytest.raises(ValueError, match="<depth>x<width>"):
        parse_shape("2x384x1x2")


def test_a_study_with_ffn_fractions_trains_the_drawn_feed_forward_size(wide_dir, small_data):
    from transformers import AutoConfig

    from kdtune.objectives.search.shapes import parse_shape

    base = DistillConfig(teacher=str(wide_dir), data=small_data, batch_size=16)
    t_cfg = AutoConfig.from_pretrained(str(wide_dir))
    space = SearchSpace(temperature=None, alpha=None, layer_mapping=None, learning_rate=None,
                        beta=None, schedule=None, max_params_ratio=None,
                        ffn_fractions=[1, 0.5], reuse_repeats=False)
    trained = []

    class Result:
        metrics = {"accuracy_student": 0.9, "accuracy_majority": 0.5, "sigma": 0.01}
        timings = {"train": 1.0}

    def run(cfg, **kw):
        trained.append((cfg.student_layers, cfg.hidden_size, cfg.ffn_size))
        return Result()

    objective = make_objective(base, space, ("accuracy_student", "sigma"), run=run)
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=16)
    ffns = {f for _, _, f in trained}  # widths 32, 48, 64: FFN 128, 192, 256 halved
    assert None in ffns and ffns - {None} and ffns <= {None, 64, 96, 128}
    for t, got in zip(study.trials, trained, strict=True):
        depth, width, ffn = parse_shape(t.params["student_shape"])
        assert got == (depth, width, ffn)
        assert t.user_attrs["params"] == student_parameters(t_cfg, depth, width, None, ffn)


def test_a_latency_cap_keeps_the_fast_shapes(minilm_path):
    from kdtune.objectives.search.shapes import feasible_shapes
    from kdtune.objectives.student.size import teacher_config

    t_cfg = teacher_config(str(minilm_path))
    space = SearchSpace(max_params_ratio=None, max_latency_ratio=0.5)
    shapes = feasible_shapes(space, t_cfg, 6, None, 10_988)
    assert "1x192" in shapes and "1x384" in shapes  # one layer of six: about a sixth
    assert "5x384" not in shapes  # five of the teacher's six layers at its width
    with pytest.raises(ValueError, match="max_latency_ratio applies when depth and width"):
        SearchSpace(max_latency_ratio=0.5, search_hidden_size=False)
    chosen = SearchSpace(max_params_ratio=None, max_latency_ratio=0.5,
                         student_layers={"choices": [1, 5]})
    assert feasible_shapes(chosen, t_cfg, 6, None, 10_988) == tuple(
        s for s in shapes if s.split("x")[0] in ("1", "5"))


def test_under_a_cap_without_a_size_objective_only_the_largest_shapes_are_drawn(
        minilm_path, wide_dir, small_data):
    """A shape another feasible one contains (no deeper, wider or larger in its feed-forward
    block) is drawn only when params or latency is an objective."""
    from transformers import AutoConfig

    from kdtune.objectives.distillation.prepare import kept_vocabulary_size, teacher_depth
    from kdtune.objectives.search.shapes import feasible_shapes, largest_shapes
    from kdtune.objectives.student.size import teacher_config

    t_cfg = teacher_config(str(minilm_path))
    space = SearchSpace(max_params_ratio=1 / 3, width_fractions=[1],
                        ffn_fractions=[1, 0.6667, 0.3333])
    shapes = feasible_shapes(space, t_cfg, 6, space.params_cap(teacher_parameters(t_cfg)),
                             10_988)
    assert largest_shapes(shapes, t_cfg) == ("1x384", "2x384x1024", "3x384x512")
    assert largest_shapes(["4x192", "1x384", "3x256", "2x256", "2x192"], t_cfg) == (
        "4x192", "1x384", "3x256")  # 2 x 256 and 2 x 192 are inside 3 x 256; 4 x 192 is not
    assert largest_shapes(["1x384", "1x384x1536"], t_cfg) == ("1x384", "1x384x1536")

    base = DistillConfig(teacher=str(wide_dir), data=small_data, batch_size=16)
    w_cfg = AutoConfig.from_pretrained(str(wide_dir))
    capped = SearchSpace(temperature=None, alpha=None, layer_mapping=None,
                         learning_rate=None, beta=None, schedule=None, reuse_repeats=False,
                         max_params_ratio=0.9, ffn_fractions=[1, 0.5])
    every = feasible_shapes(capped, w_cfg, teacher_depth(str(wide_dir)),
                            capped.params_cap(teacher_parameters(w_cfg)),
                            kept_vocabulary_size(base))
    largest = set(largest_shapes(every, w_cfg))
    assert largest < set(every)

    class Result:
        metrics = {"accuracy_student": 0.9, "accuracy_majority": 0.5, "sigma": 0.01,
                   "params": 1}
        timings = {"train": 1.0}

    for objectives, expected in ((("accuracy_student", "sigma"), largest),
                                 (("accuracy_student", "params"), set(every))):
        study = optuna.create_study(directions=["maximize", "minimize"],
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(make_objective(base, capped, objectives, run=lambda cfg, **kw: Result()),
                       n_trials=24)
        assert {t.params["student_shape"] for t in study.trials} == expected, objectives
