"""The CLI's conventions, checked on every command: ``--json`` where it prints data;
``--study`` (and ``--study-name``) wherever a study is named, the older positional study kept
working unseen; ``--set`` examples its command accepts; flags shown without a value type;
``--format`` beside ``--json``; ``-h``; ``kdtune config show``."""

from __future__ import annotations

import json
import uuid

import pytest
import typer
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial
from typer.testing import CliRunner

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


def _set_example(command) -> str | None:
    options = [p for p in command.params if "--set" in p.opts]
    return options[0].help.split("--set ")[1].split()[0] if options else None


def test_set_help_shows_an_example_of_the_command_s_own_keys():
    commands = dict(_commands(typer.main.get_command(app)))
    examples = {name: _set_example(c) for name, c in commands.items() if _set_example(c)}
    assert set(examples) == {"create", "run", "config show", "distill", "audit", "teacher fit"}
    assert examples["run"].startswith("search.")  # a study config
    assert examples["distill"] == "distill.epochs=5"  # as run spells it
    assert examples["audit"].startswith("distill.data.")
    assert examples["teacher fit"].startswith("data.")  # a teacher fit config's keys


def _parse_set(command: str, items: list[str], tmp_path):
    """What ``command`` makes of its ``--set`` ``items``, without running it."""
    from kdtune import frozen

    if command in ("create", "run", "config show"):
        from kdtune.study.config import validate_with_overrides

        return validate_with_overrides({"name": "x", "distill": {"teacher": "unused"}}, items)
    if command == "distill":
        from kdtune.study.export.trial import read_distill_config

        bare, exported = tmp_path / "bare.yaml", tmp_path / "exported.yaml"
        bare.write_text("teacher: unused\n")
        exported.write_text("distill:\n  teacher: unused\n")
        a, b = read_distill_config(bare, items), read_distill_config(exported, items)
        assert a == b  # a hand-written DistillConfig and an export alike
        return a
    if command == "audit":
        from kdtune.objectives.measure.audit import AuditConfig
        from kdtune.study.cli.audit import audit_overrides

        return frozen.validate_with_overrides({}, audit_overrides(items), AuditConfig)
    assert command == "teacher fit", command
    from kdtune.objectives.teacher.fit import TeacherFitConfig

    return frozen.validate_with_overrides({}, items, TeacherFitConfig)


def test_each_set_example_is_accepted_by_its_command(tmp_path):
    commands = dict(_commands(typer.main.get_command(app)))
    for name, command in commands.items():
        example = _set_example(command)
        if example is not None:
            _parse_set(name, [example], tmp_path)  # raises ConfigError when it is not


@pytest.mark.parametrize(("command", "items", "key", "value"), [
    ("distill", ["distill.epochs=7"], "epochs", 7),  # as run spells it
    ("distill", ["epochs=7"], "epochs", 7),  # relative to the distill: section
    ("distill", ["distill.data.max_length=48"], "data.max_length", 48),
    ("audit", ["distill.data.max_length=48"], "data.max_length", 48),
    ("audit", ["data.max_length=48"], "data.max_length", 48),
])
def test_distill_and_audit_take_set_keys_as_run_spells_them_or_relative(
        command, items, key, value, tmp_path):
    cfg = _parse_set(command, items, tmp_path)
    for part in key.split("."):
        cfg = getattr(cfg, part)
    assert cfg == value


def test_distill_set_teacher_is_teacher_in_either_spelling():
    from kdtune.study.export.trial import _teacher_override

    for item in ("teacher=t/", "distill.teacher=t/"):
        assert _teacher_override(None, [item, "distill.epochs=2"]) == ("t/", ["distill.epochs=2"])


STUDY_PARAMS = {"study", "old_study"}
"""The parameter names of a study name (``old_study``: the hidden positional form)."""


def test_every_command_that_names_a_study_takes_study():
    commands = dict(_commands(typer.main.get_command(app)))
    naming = {name for name, command in commands.items()
              if any(p.name in STUDY_PARAMS for p in command.params)}
    assert {"status", "pareto", "test", "rescore", "report", "export", "worker",
            "studies delete"} <= naming
    for name in naming:
        opts = {o for p in commands[name].params for o in p.opts}
        assert {"--study", "--study-name"} <= opts, name
        shown = [p.name for p in commands[name].params
                 if getattr(p, "param_type_name", "") == "argument" and not p.hidden]
        assert shown == [], f"{name}: a positional argument {shown} shown in its help"


@pytest.mark.parametrize("argv", [["test", "--study", "s1"], ["test", "--study-name", "s1"],
                                  ["test", "s1"], ["test", "s1", "--study", "s1"]])
def test_test_takes_study_and_still_the_older_positional_form(argv, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr("kdtune.study.verdict.test_front",
                        lambda name, *a, **k: seen.append(name) or [])
    assert main([*argv, "--storage", "sqlite:///unused.db"]) == 0
    assert seen == ["s1"]
    assert "see kdtune pareto --study s1 --test" in capsys.readouterr().out


def test_test_passes_jobs_and_threads_on(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr("kdtune.study.verdict.test_front",
                        lambda name, *a, **k: seen.append(k) or [])
    assert main(["test", "--study", "s1", "--jobs", "2", "--storage", "sqlite:///u.db"]) == 0
    assert main(["test", "--study", "s1", "--storage", "sqlite:///u.db", "--threads", "3"]) == 0
    assert [(k["jobs"], k["threads"]) for k in seen] == [(2, None), (1, 3)]
    assert main(["test", "--study", "s1", "--jobs", "0"]) == 2  # one line from click
    assert "--jobs" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "says"), [
    (["test"], "Missing option '--study'"),
    (["test", "s1", "--study", "s2"], "two studies named"),
    (["studies", "delete", "--yes"], "Missing option '--study'"),
])
def test_a_missing_or_doubled_study_is_one_line(argv, says, capsys):
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], lines


def test_the_older_positional_study_is_shown_nowhere(capsys):
    for argv in (["test", "-h"], ["studies", "delete", "-h"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        usage = next(line for line in out.splitlines() if "Usage:" in line)
        assert usage.split() == ["Usage:", "kdtune", *argv[:-1], "[OPTIONS]"]
        assert "STUDY" not in out and "old_study" not in out and "--study" in out


def test_studies_delete_takes_study(small_study, capsys):
    name, storage = small_study
    assert main(["studies", "delete", "--study", name, "--storage", storage, "--yes"]) == 0
    assert capsys.readouterr().out.strip() == f"deleted study {name!r}"


def test_no_flag_shows_a_value_type_in_help(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    root = typer.main.get_command(app)
    paths = [[], *[name.split() for name, _ in _commands(root)],
             *[[name] for name, c in root.commands.items() if hasattr(c, "commands")]]
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, path
        flags = [line for line in result.output.splitlines()
                 if "--json " in line or "--help " in line]
        assert flags and all("<" not in line for line in flags), (path, flags)


def test_status_format_json_is_status_json(small_study, capsys):
    name, storage = small_study
    assert main(["status", "--study", name, "--storage", storage, "--json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert main(["status", "--study", name, "--storage", storage, "--format", "json"]) == 0
    by_format = json.loads(capsys.readouterr().out)
    assert as_json["study"] == by_format["study"] == name
    assert by_format["objectives"] == ["accuracy_student", "sigma"]
    assert main(["status", "--study", name, "--storage", storage, "--format", "table"]) == 0
    assert capsys.readouterr().out.startswith(f"study      {name} (")
    for argv, says in ((["--format", "csv"], "not one of table, json"),
                       (["--format", "table", "--json"], None),
                       (["--json", "--format", "xml"], "not one of")):
        code = main(["status", "--study", name, "--storage", storage, *argv])
        captured = capsys.readouterr()
        if says is None:
            assert code == 0 and json.loads(captured.out)["study"] == name
        else:
            assert code == 2 and says in captured.err and captured.out == ""
