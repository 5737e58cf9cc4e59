"""The CLI's conventions: ``--json`` on every command that prints data, ``--study-name``
beside ``--study``, ``kdtune config show``, and plain progress lines off a terminal."""

from __future__ import annotations

import json
import uuid

import pytest
import typer
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from kdtune.study.cli.root import app, main

NOT_DATA = {"init", "run", "worker", "report", "dashboard", "demo", "start", "stop", "delete"}
"""Commands that write files, serve, start or stop things, or run work, and print no data
of their own."""


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), command


def test_every_command_that_prints_data_takes_json():
    root = typer.main.get_command(app)
    commands = dict(_commands(root))
    assert {"pareto", "status", "test", "rescore", "config show"} <= set(commands)
    missing = [name for name, command in commands.items()
               if name.split()[-1] not in NOT_DATA
               and not any("--json" in p.opts for p in command.params)]
    assert missing == []


@pytest.fixture()
def small_study(tmp_path):
    """A SQLite kdtune study with two complete trials (values set by hand)."""
    from kdtune.study.config import validate
    from kdtune.study.service import create_study, open_study

    name, storage = f"cli-{uuid.uuid4().hex[:8]}", f"sqlite:///{tmp_path / 'cli.db'}"
    create_study(validate({"name": name, "storage": storage,
                           "distill": {"teacher": "unused"}}))
    study, _ = open_study(name, storage)
    for t, (acc, sigma) in enumerate([(0.8, 0.2), (0.7, 0.1)]):
        study.add_trial(create_trial(
            values=[acc, sigma], params={"temperature": 1.0 + t},
            distributions={"temperature": FloatDistribution(1.0, 20.0, log=True)},
            user_attrs={"accuracy_student": acc, "sigma": sigma}))
    return name, storage


def test_pareto_json_and_study_name(small_study, capsys):
    name, storage = small_study
    assert main(["pareto", "--study-name", name, "--storage", storage, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["trial"] for r in rows] == [0, 1] and rows[1]["sigma"] == 0.1
    assert main(["pareto", "--study", name, "--storage", storage, "--json",
                 "--format", "csv"]) == 2
    assert "two formats" in capsys.readouterr().err


def test_config_show_prints_the_resolved_config_with_the_password_masked(
        tmp_path, tiny_teacher_dir, synthetic_csv, capsys):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({
        "name": "shown", "storage": "postgresql://kd:s3cret@db.example:5432/kdtune",
        "distill": {"teacher": str(tiny_teacher_dir),
                    "data": {"source": str(synthetic_csv), "eval_size": 80, "test_size": 80}},
        "search": {"max_params_ratio": None}}))
    assert main(["config", "show", str(path), "--set", "n_trials=7"]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out
    shown = yaml.safe_load(out)
    assert shown["n_trials"] == 7 and shown["objectives"] == ["accuracy_student", "sigma"]
    assert shown["distill"]["temperature"] == 1.0  # defaults filled in
    assert main(["config", "show", str(path), "--set", "distill.alpha=3", "--json"]) == 2
    err = capsys.readouterr().err
    assert "distill.alpha" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("argv", "says"), [
    (["run", "kdtune.yaml", "--workers", "0"], "'--workers'"),
    (["pareto", "--bogus"], "No such option: --bogus (see kdtune pareto --help)"),
    (["teacher", "fitt"], "No such command 'fitt'"),
    (["export"], "Missing option '--study'"),
])
def test_usage_errors_are_one_line(argv, says, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kdtune: error: "), captured.err
    assert says in lines[0]
    assert "Usage:" not in captured.out + captured.err


def test_studies_lists_and_deletes(small_study, capsys, monkeypatch):
    name, storage = small_study
    assert main(["studies", "--storage", storage]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["study", "state", "trials", "front", "started"]
    assert row.split()[:4] == [name, "open", "2/20", "2"]  # 2 of 20 trials; both on the front
    assert main(["studies", "--storage", storage, "--json"]) == 0
    (info,) = json.loads(capsys.readouterr().out)
    assert info["study"] == name and info["complete"] == 2 and info["front"] == 2
    # No terminal to confirm on: deleting needs --yes.
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["studies", "delete", name, "--storage", storage]) == 2
    assert "needs --yes" in capsys.readouterr().err
    assert main(["studies", "delete", name, "--storage", storage, "--yes"]) == 0
    assert main(["studies", "--storage", storage]) == 0
    assert capsys.readouterr().out.strip().endswith("no studies yet")
    assert main(["studies", "delete", name, "--storage", storage, "--yes"]) == 2


def test_studies_on_a_fresh_home_creates_nothing(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("KDTUNE_HOME", str(home))
    monkeypatch.delenv("KDTUNE_STORAGE", raising=False)
    assert main(["studies"]) == 0
    assert capsys.readouterr().out.strip() == "no studies yet"
    assert main(["status", "--study", "x"]) == 2
    assert "no studies yet" in capsys.readouterr().err
    assert not home.exists()


@pytest.mark.parametrize("argv", [["-h"], ["pareto", "-h"], ["teacher", "fit", "-h"],
                                  ["studies", "delete", "-h"]])
def test_dash_h_is_help(argv, capsys):
    assert main(argv) == 0
    assert "Usage: kdtune" in capsys.readouterr().out


def test_every_option_of_every_command_has_help():
    root = typer.main.get_command(app)
    bare = [f"{name} {'/'.join(p.opts)}" for name, command in _commands(root)
            for p in command.params
            if getattr(p, "param_type_name", "") == "option" and "--help" not in p.opts
            and not (p.help or "").strip()]
    assert bare == []


def test_set_help_shows_an_example_of_the_command_s_own_keys():
    root = typer.main.get_command(app)
    commands = dict(_commands(root))

    def example(name):
        (option,) = [p for p in commands[name].params if "--set" in p.opts]
        return option.help.split("--set ")[1]

    assert example("run").startswith("search.")  # a study config
    assert example("distill") == "epochs=5"  # keys of the distill: section
    assert example("audit").startswith("data.") and example("teacher fit").startswith("data.")
