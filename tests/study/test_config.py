"""Study config: validation, overrides, and one-line errors from the CLI.

``load_config(..., check=False)`` checks keys and values only: these tests name a teacher
that does not exist. What ``check=True`` adds (teacher, data, cross-field rules) is
tests/study/test_bad_config.py's subject.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from kdtune.errors import ConfigError
from kdtune.study.cli.templates import EXAMPLE_CONFIG
from kdtune.study.config import (
    StudyConfig,
    load_config,
    validate,
    validate_with_overrides,
)

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, data: dict | str) -> Path:
    p = tmp_path / "study.yaml"
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


def test_example_config_validates(tmp_path):
    cfg = load_config(_write(tmp_path, EXAMPLE_CONFIG), check=False)
    assert isinstance(cfg, StudyConfig)
    assert cfg.directions == ["maximize", "minimize"]
    assert cfg.search.temperature.low == 1.0 and cfg.search.temperature.log
    with pytest.raises(ValidationError):  # frozen
        cfg.n_trials = 3


def test_dotted_overrides_parse_yaml_values():
    cfg = validate_with_overrides({"name": "x", "distill": {"teacher": "a"}},
                                  ["search.temperature.high=8", "distill.teacher=t",
                                                  "objectives=[accuracy_student, sigma, params]",
                                                  "storage=null"])
    assert cfg.search.temperature.high == 8.0 and cfg.search.temperature.low == 1.0
    assert cfg.distill.teacher == "t"
    # an override may also supply a required key the file lacks
    assert validate_with_overrides({"name": "x"}, ["distill.teacher=u"]).distill.teacher == "u"
    assert cfg.objectives == ("accuracy_student", "sigma", "params")
    assert cfg.directions == ["maximize", "minimize", "minimize"]
    assert cfg.storage is None


def test_unknown_key_names_it_and_lists_valid_keys(tmp_path):
    p = _write(tmp_path, {"name": "x", "distill": {"teacher": "t", "temprature": 2}})
    with pytest.raises(ConfigError) as e:
        load_config(p, check=False)
    msg = str(e.value)
    assert "'distill.temprature'" in msg and "temperature" in msg and "\n" not in msg


def test_wrong_type_names_key_and_value(tmp_path):
    p = _write(tmp_path, {"name": "x", "distill": {"teacher": "t"}, "n_trials": "many"})
    with pytest.raises(ConfigError, match=r"n_trials: .*integer.*'many'"):
        load_config(p, check=False)


def test_bad_choice_lists_accepted_values():
    with pytest.raises(ConfigError, match="nsga2"):
        validate({"name": "x", "distill": {"teacher": "t"}, "sampler": {"name": "cmaes"}})
    with pytest.raises(ConfigError, match="unknown objective 'acc'"):
        validate({"name": "x", "distill": {"teacher": "t"}, "objectives": ["acc"]})


def test_inverted_range_is_rejected():
    with pytest.raises(ConfigError, match="must not exceed"):
        validate({"name": "x", "distill": {"teacher": "t"},
                  "search": {"temperature": {"low": 5, "high": 1}}})


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "kdtune.study.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize(
    "content, expected, code",
    [
        ({"smapler": {}}, "unknown key 'smapler'", 2),
        ({"n_trials": -3}, "n_trials", 2),
        # an unreachable database is a runtime failure (exit 1), not a usage error
        ({"storage": "postgresql://kd:s3cret@127.0.0.1:1/kd"}, "cannot use storage", 1),
    ],
)
def test_cli_bad_input_is_one_line_and_nonzero(tmp_path, tiny_bert_dir, synthetic_csv,
                                               content, expected, code):
    valid = {"name": "x", "distill": {"teacher": str(tiny_bert_dir),
                                      "data": {"source": str(synthetic_csv)}},
             "search": {"max_params_ratio": None}}  # the tiny teacher is mostly embedding
    out = _cli("create", str(_write(tmp_path, {**valid, **content})))
    assert out.returncode == code, out.stderr
    assert out.stderr.startswith("kdtune: error: ") and out.stderr.count("\n") == 1
    assert expected in out.stderr
    assert "s3cret" not in out.stderr


def test_cli_create_prints_no_optuna_log_line(tmp_path, tiny_bert_dir, synthetic_csv):
    cfg = {"name": "quiet", "storage": f"sqlite:///{tmp_path / 'q.db'}",
           "distill": {"teacher": str(tiny_bert_dir), "data": {"source": str(synthetic_csv)}},
           "search": {"max_params_ratio": None}}
    out = _cli("create", str(_write(tmp_path, cfg)))
    assert out.returncode == 0, out.stderr
    assert "quiet" in out.stdout  # kdtune's own line names the study
    assert "A new study created" not in out.stdout + out.stderr  # Optuna's INFO line is not


def test_cli_missing_config_file(tmp_path):
    out = _cli("create", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_cli_init_writes_example_and_refuses_overwrite(tmp_path):
    target = tmp_path / "k.yaml"
    assert _cli("init", "-o", str(target)).returncode == 0
    assert load_config(target, check=False).name == "polarity-minilm"
    again = _cli("init", "-o", str(target))
    assert again.returncode == 2 and "--force" in again.stderr


def test_a_check_adds_its_problems_and_skips_keys_pydantic_rejected():
    from kdtune import frozen
    from kdtune.frozen import FrozenModel

    class Model(FrozenModel):
        size: int = 1
        path: str = "x"

    def check(cfg: Model) -> list[str]:
        return [f"path: {cfg.path!r} does not exist", f"size: {cfg.size} is too small"]

    with pytest.raises(ConfigError) as e:
        frozen.validate({"size": "many", "path": "/nope"}, Model, check)
    assert len(e.value.problems) == 2
    assert e.value.problems[0].startswith("size: ") and "'many'" in e.value.problems[0]
    assert e.value.problems[1] == "path: '/nope' does not exist"  # no second 'size' line
    assert frozen.validate({"size": 3}, Model, lambda cfg: []).size == 3
