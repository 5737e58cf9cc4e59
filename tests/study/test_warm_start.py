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
