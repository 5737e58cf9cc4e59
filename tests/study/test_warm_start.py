"""Warm start: the TinyBERT recipe and listed configurations are enqueued once at creation."""

from __future__ import annotations

import optuna
import pytest

from kdtune.errors import ConfigError
from kdtune.objectives.search.space import SearchSpace
from kdtune.objectives.search.warm_start import warm_start_params
from kdtune.study.config import validate
from kdtune.study.service import create_study, open_study


def _cfg(tmp_path, **search):
    return validate({"name": "warm", "storage": f"sqlite:///{tmp_path / 'w.db'}",
                     "distill": {"teacher": "unused"}, "search": search})


def test_the_recipe_keeps_only_what_the_space_allows():
    assert warm_start_params(SearchSpace(warm_start=["tinybert"])) == [
        {"temperature": 1.0, "alpha": 1.0, "layer_mapping": "uniform", "schedule": "two-stage"}]
    narrow = SearchSpace(warm_start=["tinybert", {"temperature": 3.0}],
                         temperature={"low": 2.0, "high": 8.0}, schedule=None)
    assert warm_start_params(narrow) == [
        {"alpha": 1.0, "layer_mapping": "uniform"}, {"temperature": 3.0}]
    assert warm_start_params(SearchSpace()) == []


def test_creation_enqueues_them_once_and_trials_take_the_values(tmp_path):
    cfg = _cfg(tmp_path, warm_start=["tinybert", {"temperature": 4.0, "alpha": 0.25}])
    create_study(cfg)
    create_study(cfg)  # again: nothing more is enqueued
    study, _ = open_study("warm", cfg.storage)
    waiting = study.get_trials(states=[optuna.trial.TrialState.WAITING])
    assert len(waiting) == 2
    first = study.ask()
    assert first.suggest_float("temperature", 1.0, 20.0, log=True) == 1.0
    assert first.suggest_categorical("schedule", ["joint", "two-stage"]) == "two-stage"
    second = study.ask()
    assert second.suggest_float("alpha", 0.0, 1.0) == 0.25


@pytest.mark.parametrize("entry, message", [
    ("tinybrt", "'tinybert' or a mapping"),
    ({"temprature": 2.0}, "'temprature' is not searched"),
])
def test_bad_entries_are_named(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(tmp_path, warm_start=[entry])


def test_an_entry_naming_no_shape_is_tried_at_each_of_the_largest_shapes(
        tmp_path, wide_dir, small_data):
    from kdtune.objectives.search.shapes import largest_shapes, study_shapes
    from kdtune.objectives.student.size import teacher_config

    recipe = {"temperature": 2.0, "alpha": 0.7}
    space = SearchSpace(warm_start=[recipe, {"temperature": 3.0, "student_shape": "1x32"}])
    assert warm_start_params(space, ("1x64", "3x32")) == [
        {**recipe, "student_shape": "1x64"}, {**recipe, "student_shape": "3x32"},
        {"temperature": 3.0, "student_shape": "1x32"}]
    cfg = validate({"name": "warm-shapes", "storage": f"sqlite:///{tmp_path / 's.db'}",
                    "distill": {"teacher": str(wide_dir), "data": small_data.model_dump()},
                    "search": {"warm_start": [recipe], "max_params_ratio": 0.9}})
    shapes = study_shapes(cfg.distill, cfg.search)
    largest = largest_shapes(shapes, teacher_config(str(wide_dir)))
    assert largest and len(largest) < len(study_shapes(cfg.distill, cfg.search, ["params"]))
    create_study(cfg)
    study, _ = open_study("warm-shapes", cfg.storage)
    waiting = study.get_trials(states=[optuna.trial.TrialState.WAITING])
    assert [t.system_attrs["fixed_params"] for t in waiting] == [
        {**recipe, "student_shape": s} for s in largest]
