"""An export travels: ``kdtune export`` records its teacher (path, checkpoint digest, fit
recipe) and ``kdtune distill`` on another home finds it (``--teacher``, the recorded path,
this home's teacher cache) or refuses a different one in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_production import TRIALS, _make_study, long_csv, run_config  # noqa: F401 - fixtures

from kdtune.errors import UsageError


@pytest.fixture(scope="module")
def travelled(tmp_path_factory, run_config, tiny_teacher_dir):  # noqa: F811 - the fixture
    """An export whose teacher was a copy that has since gone (the search machine's path)."""
    import shutil

    from kdtune.study.export.trial import export_trial

    base = tmp_path_factory.mktemp("travel")
    gone = base / "search-machine" / "teacher"
    shutil.copytree(tiny_teacher_dir, gone)
    name, storage = _make_study(base, {**run_config, "teacher": str(gone)}, TRIALS)
    best = base / "best.yaml"
    export_trial(name, storage, "max-accuracy", best)
    here = base / "here" / "teacher"
    shutil.copytree(gone, here)
    shutil.rmtree(gone)
    return best, here


def test_an_export_records_its_teacher(travelled, tiny_teacher_dir):
    from kdtune.objectives.cache.fingerprint import checkpoint_digest

    best, here = travelled
    text = best.read_text()
    teacher = yaml.safe_load(text)["source"]["teacher"]
    assert teacher["path"].endswith("search-machine/teacher")
    # a copy keeps the digest: it covers the files' content, not where they are
    assert teacher["fingerprint"] == checkpoint_digest(here) == checkpoint_digest(
        tiny_teacher_dir)
    assert teacher["recipe"]["base"]  # fitted by kdtune teacher fit: its recipe travels
    assert "add --teacher DIR" in text.splitlines()[2]


def _distill(args, capsys) -> tuple[int, str, str]:
    from kdtune.study.cli.root import main

    code = main(["distill", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_export_distils_elsewhere_given_its_teacher(travelled, tmp_path, monkeypatch,
                                                       capsys):
    best, here = travelled
    monkeypatch.setenv("KDTUNE_HOME", str(tmp_path / "second-home"))  # no teacher cache
    code, out, err = _distill([str(best), "-o", str(tmp_path / "none")], capsys)
    assert code != 0 and out == ""
    assert err.strip().splitlines() == [
        f"kdtune: error: the export's teacher {here.parent.parent / 'search-machine/teacher'} "
        "is not on this machine; give its checkpoint directory with --teacher DIR, or "
        "--refit-teacher to fit it again from the recipe the export recorded"]
    assert not (tmp_path / "none").exists()

    student = tmp_path / "student"
    code, out, err = _distill([str(best), "-o", str(student), "--teacher", str(here),
                               "--json"], capsys)
    assert code == 0, err
    used = json.loads((student / "kdtune_distill.json").read_text())["config"]["teacher"]
    assert Path(used) == here


def test_a_different_teacher_is_refused_in_one_line(travelled, tiny_bert_dir, tmp_path,
                                                    capsys):
    best, _ = travelled
    out_dir = tmp_path / "student"
    for args in (["--teacher", str(tiny_bert_dir)], ["--set", f"teacher={tiny_bert_dir}"]):
        code, out, err = _distill([str(best), "-o", str(out_dir), *args], capsys)
        lines = err.strip().splitlines()
        assert code != 0 and len(lines) == 1, err
        assert lines[0].startswith(f"kdtune: error: --teacher {tiny_bert_dir} is not the "
                                   "teacher the trial was distilled from (checkpoint ")
        assert not out_dir.exists()


def test_this_homes_teacher_cache_serves_an_export(travelled, tmp_path, monkeypatch):
    """The recorded recipe names the cache entry a `kdtune teacher fit` here would write."""
    import shutil

    from kdtune.objectives.teacher.fit import TeacherFitConfig
    from kdtune.objectives.teacher.registry import teacher_cache_key
    from kdtune.study.export.teacher import resolve_teacher

    best, here = travelled
    record = yaml.safe_load(best.read_text())["source"]["teacher"]
    home = tmp_path / "home"
    monkeypatch.setenv("KDTUNE_HOME", str(home))
    cached = home / "teachers" / teacher_cache_key(TeacherFitConfig(**record["recipe"]))
    shutil.copytree(here, cached)
    assert resolve_teacher(record, record["path"]) == str(cached)
    (cached / "config.json").write_text((cached / "config.json").read_text() + "\n")
    with pytest.raises(UsageError, match="the cached teacher .* is not the teacher the trial"):
        resolve_teacher(record, record["path"])
