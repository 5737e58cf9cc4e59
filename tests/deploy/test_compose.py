"""The deployment files: Dockerfile, docker-compose.yml, .env.example and deploy/k8s.

No container engine runs here, so these files are checked by construction: parsed as YAML,
their security rules asserted (pinned images, loopback-only ports, no literal passwords),
and, most important, every ``kdtune`` command line in them parsed by the real CLI (the
click command built from ``kdtune.study.cli.root.app``) without running it, so a renamed or misspelt
option fails here instead of in a crash-looping container.
"""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from deploy_helpers import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    KDTUNE_IMAGE,
    PGBOUNCER_IMAGE,
    PINNED_TAG,
    REPO,
    URL_CREDENTIALS,
    check_connection_arithmetic,
    check_pgbouncer_env,
    cli_error,
    max_connections,
    parse_kdtune,
)
from test_k8s import k8s_commands

# ---------------------------------------------------------------------------------------
# docker-compose.yml


# Values for the Compose variables that have no default; the rest take their defaults.
DUMMY_ENV = {"POSTGRES_PASSWORD": "dummy-password",
             "KDTUNE_DASHBOARD_TOKEN": "dummy-dashboard-token"}
# Where each kdtune service's storage goes: schema creation directly, the rest pooled.
STORAGE_HOST = {"init": "postgres", "worker": "pgbouncer", "dashboard": "pgbouncer"}
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_]\w*))"
)


def interpolate(value, env: dict[str, str] = DUMMY_ENV):
    """Compose's variable interpolation (``${VAR}``, ``${VAR:-default}``, ``${VAR:?err}``,
    ``${VAR:+alt}``, ``$VAR``, ``$$``) applied to every string in ``value``.

    A required variable (``:?``) must be in ``env``: a new one should be added to
    DUMMY_ENV and to .env.example.
    """
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        current = env.get(name)
        unset = current is None or (current == "" and (op or "").startswith(":"))
        if op in (":-", "-"):
            return arg if unset else current
        if op in (":?", "?"):
            assert not unset, f"${{{name}}} is required ({arg}); add it to DUMMY_ENV"
            return current
        if op in (":+", "+"):
            return "" if unset else arg
        return current if current is not None else f"dummy-{name.lower()}"

    return _INTERPOLATION.sub(sub, value)


@pytest.fixture(scope="module")
def compose_raw() -> dict:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose(compose_raw) -> dict:
    return interpolate(compose_raw)


def _compose_argv(service: dict) -> list[str] | None:
    """The kdtune argv of a Compose service (after the ``kdtune`` entrypoint), or None when
    the service does not run kdtune."""
    image = service.get("image", "")
    if not (KDTUNE_IMAGE.match(image) or "build" in service):
        return None
    entrypoint = service.get("entrypoint")
    command = service.get("command")
    if isinstance(entrypoint, str):
        entrypoint = shlex.split(entrypoint)
    if isinstance(command, str):
        command = shlex.split(command)
    assert command, "a kdtune service without a command would only print --help"
    if entrypoint is not None:
        assert entrypoint[:1] == ["kdtune"], f"entrypoint {entrypoint} is not kdtune"
        return [str(a) for a in entrypoint[1:] + command]
    return [str(a) for a in command]


def compose_commands() -> list[tuple[str, list[str]]]:
    data = interpolate(yaml.safe_load(COMPOSE_FILE.read_text()))
    out = []
    for name, service in data["services"].items():
        argv = _compose_argv(service)
        if argv is not None:
            out.append((f"compose:{name}", argv))
    return out


def _ports(service: dict) -> list[str]:
    out = []
    for p in service.get("ports", []):
        if isinstance(p, dict):  # long syntax
            out.append(f"{p.get('host_ip', '')}:{p.get('published', '')}:{p.get('target')}")
        else:
            out.append(str(p))
    return out


def test_compose_has_the_services(compose):
    assert {"postgres", "pgbouncer", "init", "worker", "dashboard"} <= set(compose["services"])
    assert "version" not in compose, "the Compose spec has no version key"


def test_compose_postgres_is_pinned_healthchecked_and_local(compose_raw, compose):
    pg = compose["services"]["postgres"]
    assert PINNED_TAG.search(pg["image"]), f"postgres image not pinned: {pg['image']}"
    assert not pg["image"].endswith(":latest")
    test = pg["healthcheck"]["test"]
    test = " ".join(test) if isinstance(test, list) else test
    assert "pg_isready" in test
    ports = _ports(pg)
    assert ports and all(p.startswith("127.0.0.1:") for p in ports), ports
    raw_pw = compose_raw["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD(:?\?[^}]*)?\}", raw_pw), (
        f"POSTGRES_PASSWORD must come from .env, got {raw_pw!r}"
    )
    assert pg["environment"]["POSTGRES_USER"] == "kdtune"
    assert pg["environment"]["POSTGRES_DB"] == "kdtune"


def test_compose_has_no_literal_password():
    text = COMPOSE_FILE.read_text()
    for m in URL_CREDENTIALS.finditer(text):
        assert m.group(1).startswith("${POSTGRES_PASSWORD"), f"literal password in {m.group(0)}"
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        if re.search(r"PASSWORD\s*[:=]", code):
            assert "${POSTGRES_PASSWORD" in code, f"literal password: {line.strip()}"
        if re.search(r"TOKEN\s*[:=]", code):
            assert "${KDTUNE_DASHBOARD_TOKEN" in code, f"literal token: {line.strip()}"


def test_compose_no_secret_on_a_command_line(compose):
    """Commands, entrypoints and healthchecks show in ``ps`` and ``docker inspect``: the
    password and the dashboard token reach the containers through their environment only."""
    secrets = set(DUMMY_ENV.values())
    for name, service in compose["services"].items():
        lines = [service.get("command"), service.get("entrypoint"),
                 (service.get("healthcheck") or {}).get("test")]
        for line in lines:
            if line is None:
                continue
            text = line if isinstance(line, str) else " ".join(map(str, line))
            assert not any(secret in text for secret in secrets), f"{name}: {text}"
            assert not URL_CREDENTIALS.search(text), f"{name}: {text}"


def test_compose_creates_the_study_once_before_workers(compose):
    services = compose["services"]
    init = services["init"]
    assert init["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert str(init.get("restart", "no")) == "no"
    assert _compose_argv(init)[0] == "create"
    for name in ("worker", "dashboard"):
        cond = services[name]["depends_on"]["init"]["condition"]
        assert cond == "service_completed_successfully", name
    for name, service in services.items():
        argv = _compose_argv(service)
        if argv and name != "init":
            assert argv[0] != "create", f"{name} must not create the study (schema race)"


def test_compose_workers_scale(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert str(worker["restart"]).startswith("on-failure")
    assert "stop_grace_period" in worker
    argv = _compose_argv(worker)
    assert argv[0] == "worker"
    assert "--index" not in argv, "a fixed --index would give every replica the same seed"


def test_compose_study_name_agrees(compose):
    init, worker = (_compose_argv(compose["services"][n]) for n in ("init", "worker"))
    names = [a.split("=", 1)[1] for a in init if a.startswith("name=")]
    study = worker[worker.index("--study") + 1]
    assert names == [study], "init's --set name=... must equal the workers' --study"


def test_compose_ports_are_loopback_only(compose):
    for name, service in compose["services"].items():
        for p in _ports(service):
            assert p.startswith("127.0.0.1:"), f"{name} publishes {p} beyond loopback"
    assert _ports(compose["services"]["dashboard"]) == ["127.0.0.1:8080:8080"]


def test_compose_storage_only_from_the_environment(compose):
    """The URL (with its password) is never on a command line, where ps shows it."""
    for name, service in compose["services"].items():
        argv = _compose_argv(service)
        if argv is None:
            continue
        assert "--storage" not in argv, name
        assert not any("://" in a for a in argv), name
        url = service["environment"]["KDTUNE_STORAGE"]
        host = STORAGE_HOST.get(name, "pgbouncer")
        assert url == f"postgresql://kdtune:dummy-password@{host}:5432/kdtune", name
        assert service["environment"]["KDTUNE_HOME"] == "/data"
        assert "kdtune-home:/data" in service["volumes"]
    init = _compose_argv(compose["services"]["init"])
    assert "storage=null" in init, "create must not store a URL from kdtune.yaml"


def test_compose_services_keep_every_kdtune_variable(compose_raw, compose):
    """A service's own ``environment:`` replaces x-kdtune's: the ones that set one must
    still carry every kdtune variable (through a merged anchor), only KDTUNE_STORAGE and
    the dashboard's token may differ."""
    base = interpolate(compose_raw["x-kdtune"]["environment"])
    assert {"KDTUNE_HOME", "KDTUNE_STORAGE", "KDTUNE_THREADS", "OMP_NUM_THREADS"} <= set(base)
    for name, service in compose["services"].items():
        if _compose_argv(service) is None:
            continue
        env = service["environment"]
        assert set(base) <= set(env), f"{name} lost {set(base) - set(env)}"
        changed = {k for k in base if env[k] != base[k]}
        assert changed <= {"KDTUNE_STORAGE"}, (name, changed)
        extra = set(env) - set(base)
        assert extra <= ({"KDTUNE_DASHBOARD_TOKEN"} if name == "dashboard" else set()), extra
    for name in ("worker", "init"):
        assert "KDTUNE_DASHBOARD_TOKEN" not in compose["services"][name]["environment"]


def test_compose_pgbouncer(compose):
    services = compose["services"]
    bouncer = services["pgbouncer"]
    assert PGBOUNCER_IMAGE.match(bouncer["image"]), bouncer["image"]
    assert PINNED_TAG.search(bouncer["image"]), f"pgbouncer image not pinned: {bouncer['image']}"
    check_pgbouncer_env(bouncer["environment"], upstream="postgres")
    assert bouncer["environment"]["DB_PASSWORD"] == "dummy-password"  # ${POSTGRES_PASSWORD}
    assert bouncer["depends_on"]["postgres"]["condition"] == "service_healthy"
    test = bouncer["healthcheck"]["test"]
    assert "pg_isready" in (" ".join(test) if isinstance(test, list) else test)
    assert "ports" not in bouncer, "only the other containers need the pooler"
    for name in ("worker", "dashboard"):
        assert services[name]["depends_on"]["pgbouncer"]["condition"] == "service_healthy"
    assert "pgbouncer" not in services["init"]["depends_on"], "init connects directly"
    text = COMPOSE_FILE.read_text()
    assert "transaction-scoped advisory" in text, "say why transaction pooling is safe"


def test_compose_max_connections(compose):
    """max_connections is raised on postgres's command line, and holds the pooler's server
    connections plus init's, with the arithmetic stated in the comment."""
    services = compose["services"]
    pool = check_pgbouncer_env(services["pgbouncer"]["environment"], upstream="postgres")
    command = services["postgres"]["command"]
    command = shlex.split(command) if isinstance(command, str) else command
    assert command[0] == "postgres", "the image's entrypoint needs postgres first"
    direct = sum(1 for name in services if STORAGE_HOST.get(name) == "postgres")
    check_connection_arithmetic(
        COMPOSE_FILE.read_text(), max_connections(command), pool,
        pooler_replicas=1, direct_processes=direct,
        # docker compose up --scale worker=8, as the header says, and the dashboard
        pooled_processes=8 + 1,
    )


def test_compose_dashboard_token_and_health(compose_raw, compose):
    raw = compose_raw["services"]["dashboard"]["environment"]["KDTUNE_DASHBOARD_TOKEN"]
    assert re.fullmatch(r"\$\{KDTUNE_DASHBOARD_TOKEN:\?[^}]*\}", raw), (
        f"the token must come from .env and be required, got {raw!r}"
    )
    dash = compose["services"]["dashboard"]
    argv = _compose_argv(dash)
    assert "--allow-writes" not in argv, "the deployed dashboard stays read-only"
    test = dash["healthcheck"]["test"]
    test = " ".join(test) if isinstance(test, list) else test
    assert "/healthz" in test and "127.0.0.1:8080" in test
    assert argv[argv.index("--port") + 1] == "8080"
    text = COMPOSE_FILE.read_text().lower()
    assert "no authentication" not in text, "stale comment: the dashboard has a token now"
    assert "tls" in text
    env_text = ENV_EXAMPLE.read_text()
    assert "secrets.token_urlsafe" in env_text
    assert re.search(r"^KDTUNE_DASHBOARD_TOKEN=$", env_text, re.MULTILINE), (
        ".env.example leaves the token empty, so Compose refuses to start until it is set"
    )


def test_env_example_lists_the_variables():
    keys = {
        line.split("=", 1)[0].strip()
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    assert {"POSTGRES_PASSWORD", "KDTUNE_STUDY"} <= keys
    required = set(re.findall(r"\$\{(\w+):?\?", COMPOSE_FILE.read_text()))
    assert required <= keys, f"required by docker-compose.yml, missing from .env.example: "\
        f"{required - keys}"
    gitignore = (REPO / ".gitignore").read_text().split()
    assert ".env" in gitignore


# ---------------------------------------------------------------------------------------
# Every kdtune command line, through the real CLI


ALL_COMMANDS = compose_commands() + k8s_commands()


def test_commands_found():
    where = {label.split(":")[0] for label, _ in ALL_COMMANDS}
    assert where == {"compose", "k8s"}
    subcommands = {argv[0] for _, argv in ALL_COMMANDS}
    assert {"create", "worker", "dashboard", "status"} <= subcommands


@pytest.mark.parametrize(
    "argv", [argv for _, argv in ALL_COMMANDS], ids=[label for label, _ in ALL_COMMANDS]
)
def test_command_parses_with_the_real_cli(argv):
    ctx = parse_kdtune(argv)
    assert ctx.command.name == argv[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["worker", "--studdy", "x"],  # misspelt option
        ["worker"],  # missing --study
        ["create"],  # missing config argument
        ["create", "a.yaml", "--storage"],  # option without its value
        ["worker", "--study", "x", "extra"],  # stray argument
        ["worker", "--study", "x", "--index", "three"],  # not an int
        ["dashbord", "--port", "8080"],  # unknown command
        [],  # no command at all
    ],
    ids=lambda argv: " ".join(argv) or "(empty)",
)
def test_the_check_catches_bad_command_lines(argv):
    with pytest.raises(cli_error()):
        parse_kdtune(argv)


def test_the_check_parses_values():
    ctx = parse_kdtune(["worker", "--study", "s", "--index", "3"])
    assert ctx.params["study"] == "s" and ctx.params["index"] == 3
    ctx = parse_kdtune(["storage", "url", "--storage", "sqlite:///x.db"])
    assert ctx.params["storage"] == "sqlite:///x.db"
