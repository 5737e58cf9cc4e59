"""Errors that say what is wrong (issue #11, items 6 to 9).

Table-driven, through the real CLI (``python -m kdtune.study.cli`` subprocesses): each row is
one bad input, and must exit non-zero with exactly one ``kdtune: error:`` line on stderr and
nothing else (no traceback), that line naming the real problem, no fragment of any password
anywhere in the output, and nothing half written. The inputs: an export made by ``kdtune
export`` from a study in a scratch database of the system PostgreSQL server (one trial added
by hand, no training), then cut short, edited or broken; configs that are not mappings; a
read-only output directory; an unreachable database; missing teacher directories; a Latin-1
CSV; a dashboard port in use; passwords with a raw ``@`` and ``/``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PG = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
SECRET = "s3cr3tPW"


def _kdtune(*args: str, timeout: float = 90,
            env_update: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KDTUNE_THREADS": "1", **(env_update or {})}
    env.pop("KDTUNE_STORAGE", None)
    return subprocess.run([sys.executable, "-m", "kdtune.study.cli", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=timeout)


def _closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (just freed by the OS)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_postgres(deadline_s: float = 60) -> None:
    """The system server may be restarting (another test's outage): wait for it a while."""
    end = time.monotonic() + deadline_s
    while subprocess.run(["pg_isready", *PG], capture_output=True).returncode != 0:
        if time.monotonic() > end:
            pytest.skip("the system PostgreSQL server at 127.0.0.1:5432 is not running")
        time.sleep(1)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def db() -> str:
    """A scratch database on the system server, dropped afterwards."""
    _wait_for_postgres()
    name = f"kd_msgs_{uuid.uuid4().hex[:8]}"
    subprocess.run(["createdb", *PG, name], check=True, timeout=60)
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    end = time.monotonic() + 60
    while subprocess.run(["pg_isready", *PG], capture_output=True).returncode != 0 \
            and time.monotonic() < end:
        time.sleep(1)
    subprocess.run(["dropdb", *PG, "--if-exists", "--force", name], timeout=60)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, db, tiny_bert_dir, synthetic_csv) -> dict:
    """A study with one COMPLETE trial (created with a password in its URL), its export
    through ``kdtune export``, and the broken files the rows read."""
    from optuna.trial import create_trial

    from kdtune.attrs import TRIAL_CONFIG
    from kdtune.storage import make_storage
    from kdtune.study.config import validate
    from kdtune.study.service import create_study, open_study

    root = tmp_path_factory.mktemp("messages")
    name = "msgs"
    # trust authentication: the password is accepted and ignored, so it can be looked for
    with_password = db.replace("postgres@", f"postgres:{SECRET}@")
    cfg = validate({
        "name": name, "storage": with_password,
        "distill": {"teacher": str(tiny_bert_dir),
                    "data": {"source": str(synthetic_csv), "eval_size": 80, "test_size": 80,
                             "max_length": 16},
                    "student_layers": 3, "temperature": 1.536},
    })
    create_study(cfg)
    study, cfg = open_study(name, db)
    config = json.loads(cfg.distill.model_dump_json())
    study.add_trial(create_trial(values=[0.9, 0.05],
                                 user_attrs={TRIAL_CONFIG: config, "accuracy_student": 0.9,
                                             "sigma": 0.05}))
    export = root / "best.yaml"
    made = _kdtune("export", "--study", name, "--storage", db, "--pick", "trial:0",
                   "-o", str(export))
    assert made.returncode == 0, made.stderr
    text = export.read_text()
    lines = text.splitlines(keepends=True)

    def write(file: str, content: str | bytes) -> Path:
        path = root / file
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
        return path

    latin1 = b"text,label\ncaf\xe9 was great,positive\n" + b"".join(
        f"the film {i} was {'great' if i % 2 else 'awful'},{'positive' if i % 2 else 'negative'}\n"
        .encode() for i in range(200))
    csv = write("latin1.csv", latin1)
    teacher_dir = root / "teachers"
    teacher_dir.mkdir()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    yield {
        "root": root, "db": db, "study": name, "storage": make_storage(db),
        "export": export, "text": text, "csv": synthetic_csv,
        # cut at the end of `data:`'s block: student_layers, temperature ... are lost
        "truncated": write("truncated.yaml", "".join(lines[:19])),
        "edited": write("edited.yaml", text.replace("temperature: 1.536", "temperature: 1.0")),
        "hand_written": write("hand.yaml", "".join(lines[1:])),
        "bad_yaml": write("bad.yaml", "".join(lines[1:8]) + "  teacher: [\n"),
        "a_list": write("list.yaml", "- teacher: x\n- epochs: 2\n"),
        "a_scalar": write("scalar.yaml", "just a sentence\n"),
        "latin1": write("latin1-distill.yaml", yaml.safe_dump({
            "teacher": str(tiny_bert_dir),
            "data": {"source": str(csv), "eval_size": 40, "test_size": 40}})),
        "teacher_dir": teacher_dir, "tiny_teacher": tiny_bert_dir,
        "busy_port": busy.getsockname()[1],
    }
    busy.close()


def _read_only_dir(root: Path) -> Path:
    """A directory this process cannot create files in (root ignores mode bits: /sys)."""
    ro = root / "read-only"
    ro.mkdir(exist_ok=True)
    ro.chmod(0o555)
    try:
        (ro / ".probe").touch()
    except OSError:
        return ro
    (ro / ".probe").unlink()
    sysfs = Path("/sys/kernel")
    try:
        (sysfs / ".kdtune-probe").touch()
    except OSError:
        return sysfs
    pytest.skip("no read-only directory available")


def _distill_config(teacher: str, data: Path, path: Path) -> Path:
    path.write_text(yaml.safe_dump({"teacher": teacher, "data": {"source": str(data)}}))
    return path


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    """One bad input: the command (given the fixtures), what the one line must say, and
    the paths that must not exist afterwards."""

    id: str
    argv: Callable[[dict], list[str]]
    says: Callable[[dict], list[str]]
    absent: Callable[[dict], list[Path]] = lambda f: []
    secrets: tuple[str, ...] = ()
    code: int | None = None  # None: any non-zero
    max_seconds: float = 60
    env: Callable[[dict], dict] = lambda f: {}


def _out(f: dict, name: str = "student") -> Path:
    return f["root"] / name


def _no_hub(f: dict) -> dict:
    """Online mode with a hub endpoint nothing listens on (a machine without network)."""
    return {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{f['closed_port']}"}


CHECKSUM = "export is incomplete or was edited (checksum mismatch); re-export it or remove the " \
           "checksum line to use it as a hand-written config"
ROWS = [
    # item 1 (issue item 6): an export must be complete, or refused
    Row("truncated-export", lambda f: ["distill", str(f["truncated"]), "-o", str(_out(f))],
        lambda f: [f"{f['truncated']}: {CHECKSUM}"], lambda f: [_out(f)], code=2),
    Row("edited-export", lambda f: ["distill", str(f["edited"]), "-o", str(_out(f))],
        lambda f: [f"{f['edited']}: {CHECKSUM}"], lambda f: [_out(f)], code=2),
    # item 2 (issue item 7): one line instead of a traceback
    Row("export-with-yaml-syntax-error",
        lambda f: ["distill", str(f["bad_yaml"]), "-o", str(_out(f))],
        lambda f: [f"{f['bad_yaml']} is not valid YAML: line 9, column 1"], lambda f: [_out(f)],
        code=2),
    Row("config-is-a-list-plus-set",
        lambda f: ["distill", str(f["a_list"]), "-o", str(_out(f)), "--set", "epochs=2"],
        lambda f: [f"{f['a_list']}: the config must be a mapping of keys", "got a YAML list"],
        lambda f: [_out(f)], code=2),
    Row("config-is-a-scalar-plus-set",
        lambda f: ["create", str(f["a_scalar"]), "--set", "name=x", "--storage", f["db"]],
        lambda f: [f"{f['a_scalar']}: the config must be a mapping of keys", "single value"],
        code=2),
    Row("export-into-read-only-directory",
        lambda f: ["export", "--study", f["study"], "--storage", f["db"], "--pick", "trial:0",
                   "-o", str(_read_only_dir(f["root"]) / "best.yaml")],
        lambda f: ["best.yaml: cannot write in"],
        lambda f: [_read_only_dir(f["root"]) / "best.yaml"], code=2),
    Row("distill-into-read-only-directory",
        lambda f: ["distill", str(f["export"]), "-o", str(_read_only_dir(f["root"]) / "student")],
        lambda f: ["student: cannot write in"],
        lambda f: [_read_only_dir(f["root"]) / "student"], code=2),
    # item 3 (issue item 8): messages that name the real problem
    Row("unreachable-database",
        lambda f: ["status", "--study", "x", "--storage",
                   f"postgresql://u:{SECRET}@127.0.0.1:{f['closed_port']}/db"],
        lambda f: [f"cannot connect to postgresql+psycopg2://u:***@127.0.0.1:{f['closed_port']}"
                   "/db (connection refused)"],
        secrets=(SECRET,), code=1),
    Row("missing-teacher-absolute",
        lambda f: ["distill", str(_distill_config(str(f["root"] / "no-such-teacher"),
                                                  f["csv"], f["root"] / "t1.yaml")),
                   "-o", str(_out(f))],
        lambda f: ["teacher: ", "no-such-teacher': no such checkpoint directory"],
        lambda f: [_out(f)], code=2, max_seconds=20),
    Row("missing-teacher-relative",
        lambda f: ["distill", str(_distill_config("./no-such-teacher", f["csv"],
                                                  f["root"] / "t2.yaml")), "-o", str(_out(f))],
        lambda f: ["teacher: './no-such-teacher': no such checkpoint directory"],
        lambda f: [_out(f)], code=2, max_seconds=20),
    Row("missing-teacher-not-a-hub-id",
        lambda f: ["distill", str(_distill_config("runs/2024/teacher", f["csv"],
                                                  f["root"] / "t3.yaml")), "-o", str(_out(f))],
        lambda f: ["teacher: 'runs/2024/teacher': no such checkpoint directory, nor a valid "
                   "Hugging Face hub model id"],
        lambda f: [_out(f)], code=2, max_seconds=20),
    Row("missing-teacher-under-an-existing-directory",
        lambda f: ["distill", str(_distill_config("tests/no-such-teacher", f["csv"],
                                                  f["root"] / "t4.yaml")), "-o", str(_out(f))],
        lambda f: ["teacher: 'tests/no-such-teacher': no such checkpoint directory"],
        lambda f: [_out(f)], code=2, max_seconds=20),
    Row("missing-teacher-offline-hub-id",
        lambda f: ["distill", str(_distill_config("kdtune-tests/no-such-teacher", f["csv"],
                                                  f["root"] / "t5.yaml")), "-o", str(_out(f))],
        lambda f: ["no such checkpoint directory, and no hub model of that name in the local "
                   "Hugging Face cache (HF_HUB_OFFLINE is set)"],
        lambda f: [_out(f)], code=2, max_seconds=20),
    # a bare name is a valid hub id: with the hub unreachable, one line at once (not the
    # hub client's 30 s of retries); the audit names the student as the student
    Row("missing-teacher-hub-unreachable",
        lambda f: ["distill", str(_distill_config("teacher", f["csv"], f["root"] / "t6.yaml")),
                   "-o", str(_out(f))],
        lambda f: ["teacher: 'teacher': no such checkpoint directory here, and the model hub is "
                   "unreachable"],
        lambda f: [_out(f)], code=2, max_seconds=20, env=lambda f: _no_hub(f)),
    Row("audit-missing-student-hub-unreachable",
        lambda f: ["audit", "--teacher", str(f["tiny_teacher"]), "--student", "student",
                   "--set", f"data.source={f['csv']}"],
        lambda f: ["could not load student 'student': no such checkpoint directory here, and "
                   "the model hub is unreachable"],
        code=2, max_seconds=30, env=lambda f: _no_hub(f)),
    Row("set-value-not-yaml",
        lambda f: ["distill", str(f["hand_written"]), "-o", str(_out(f)), "--set", "epochs=[1,"],
        lambda f: ["epochs=[1,': value is not valid YAML (line 1, column 4: "],
        lambda f: [_out(f)], code=2),
    # a read command on a fresh home says so, and creates no storage
    Row("read-command-on-a-fresh-home",
        lambda f: ["status", "--study", "x"],
        lambda f: ["no study named 'x' (no studies yet in embedded PostgreSQL ("],
        lambda f: [f["root"] / "fresh-home"], code=2, max_seconds=20,
        env=lambda f: {"KDTUNE_HOME": str(f["root"] / "fresh-home")}),
    Row("read-command-on-a-missing-sqlite-file",
        lambda f: ["status", "--study", "x", "--storage",
                   f"sqlite:///{f['root'] / 'no-such.db'}"],
        lambda f: ["no study named 'x' (no studies yet in sqlite:///"],
        lambda f: [f["root"] / "no-such.db"], code=2, max_seconds=20),
    Row("csv-not-utf8",
        lambda f: ["distill", str(f["latin1"]), "-o", str(_out(f))],
        lambda f: ["data.source: ", "latin1.csv is not UTF-8 text (byte 0xe9 at position 14); "
                   "re-save it as UTF-8"],
        lambda f: [_out(f)], code=2),
    Row("dashboard-port-in-use",
        lambda f: ["dashboard", "--storage", f["db"], "--port", str(f["busy_port"])],
        lambda f: [f"cannot serve on 127.0.0.1:{f['busy_port']}: port {f['busy_port']} is in use"],
        code=1),
    # item 4 (issue item 9): a raw '@' and '/' in a password: parsed, and masked whole
    Row("raw-at-and-slash-in-password-unreachable",
        lambda f: ["status", "--study", "x", "--storage",
                   f"postgresql://kd:pa@ss/w0rd@127.0.0.1:{f['closed_port']}/db"],
        lambda f: [f"cannot connect to postgresql+psycopg2://kd:***@127.0.0.1:{f['closed_port']}"
                   "/db (connection refused)"],
        secrets=("pa@", "@ss", "w0rd", "%40"), code=1),
    Row("raw-at-and-slash-in-password-reaches-the-right-host",
        lambda f: ["status", "--study", "nope", "--storage",
                   f["db"].replace("postgres@", "postgres:pa@ss/w0rd@")],
        lambda f: ["no study named 'nope' in postgresql+psycopg2://postgres:***@127.0.0.1:5432/",
                   "studies there: msgs"],
        secrets=("pa@", "@ss", "w0rd", "%40"), code=2),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_one_line_names_the_problem(row: Row, inputs):
    f = {**inputs, "closed_port": _closed_port()}
    charts_before = _graph_attrs(f) if row.id.startswith("dashboard") else None
    started = time.monotonic()
    proc = _kdtune(*row.argv(f), env_update=row.env(f))
    seconds = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and (row.code is None or proc.returncode == row.code), output
    assert "Traceback" not in output and "unexpected" not in output, output
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kdtune: error: "), output
    for needle in row.says(f):
        assert needle in lines[0], (needle, lines[0])
    for secret in row.secrets:
        assert secret not in output, (secret, output)
    for path in row.absent(f):
        assert not path.exists(), path
        assert not any(p.name.startswith(f".{path.name}.") for p in path.parent.iterdir()), \
            "a temporary file was left behind"
    assert seconds < row.max_seconds, seconds
    if charts_before is not None:  # refused before writing anything into any study
        assert proc.stdout == "" and _graph_attrs(f) == charts_before


def _graph_attrs(f: dict) -> dict:
    storage = f["storage"]
    sid = storage.get_study_id_from_name(f["study"])
    return {k: v for k, v in storage.get_study_system_attrs(sid).items() if "plotly" in k}


# --------------------------------------------------------------------------- the rules behind


def test_an_intact_export_and_a_hand_written_config_are_accepted(inputs):
    """The export reads back whole (student_layers 3, temperature 1.536); the same file
    without its checksum line is a hand-written config and is accepted as it is."""
    from kdtune.study.export.file import MARKER
    from kdtune.study.export.trial import read_distill_config

    assert inputs["text"].startswith(MARKER)
    for path in (inputs["export"], inputs["hand_written"]):
        cfg = read_distill_config(path)
        assert (cfg.student_layers, cfg.temperature) == (3, 1.536)
    crlf = inputs["root"] / "crlf.yaml"
    crlf.write_bytes(inputs["text"].replace("\n", "\r\n").encode())
    assert read_distill_config(crlf).temperature == 1.536  # line endings are not an edit


@pytest.mark.parametrize("url, host, password", [
    ("postgresql://kd:pa@ss/w0rd@db.example:5432/k", "db.example", "pa@ss/w0rd"),
    ("postgresql://kd:p@ss@db.example/k", "db.example", "p@ss"),
    ("postgresql://kd:a/b:c?d#e@db.example/k", "db.example", "a/b:c?d#e"),
    ("postgresql://kd:p%40ss@db.example/k", "db.example", "p@ss"),
])
def test_raw_at_and_slash_in_passwords_are_parsed_and_masked_whole(url, host, password):
    from sqlalchemy.engine import make_url

    from kdtune.storage import mask_url, resolve_spec

    spec = resolve_spec(url)
    parsed = make_url(spec.url)
    assert (parsed.host, parsed.password, parsed.username) == (host, password, "kd")
    for shown in (mask_url(url), spec.masked()):
        assert shown.endswith(f"kd:***@{host}" + url.split(host, 1)[1]), shown
        for fragment in ("pa@", "@ss", "w0rd", "p@", "a/b", "%40"):
            assert fragment not in shown, (fragment, shown)


def test_create_never_stores_the_storage_url(inputs):
    """What docker-compose.yml says: the study was created with a password in its URL,
    and no attribute of the study holds it (the config is stored without ``storage``)."""
    from kdtune.attrs import STUDY_CONFIG

    storage = inputs["storage"]
    sid = storage.get_study_id_from_name(inputs["study"])
    stored = json.dumps([storage.get_study_user_attrs(sid), storage.get_study_system_attrs(sid)])
    assert SECRET not in stored and "postgresql://" not in stored
    assert storage.get_study_user_attrs(sid)[STUDY_CONFIG]["storage"] is None
