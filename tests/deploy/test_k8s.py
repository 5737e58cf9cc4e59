"""deploy/k8s: the Kubernetes manifests, parsed as YAML and checked by construction (kinds,
pinned images, credentials only from the Secret, jobs, the study config) — no cluster runs here.
"""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from deploy_helpers import (
    K8S_DIR,
    KDTUNE_IMAGE,
    PGBOUNCER_IMAGE,
    PINNED_TAG,
    URL_CREDENTIALS,
    check_connection_arithmetic,
    check_pgbouncer_env,
    max_connections,
)

# ---------------------------------------------------------------------------------------
# deploy/k8s


def k8s_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def _pod_spec(doc: dict) -> dict | None:
    kind = doc.get("kind")
    if kind in ("Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet"):
        return doc["spec"]["template"]["spec"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind == "Pod":
        return doc["spec"]
    return None


def _containers(doc: dict) -> list[dict]:
    spec = _pod_spec(doc)
    if spec is None:
        return []
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


_K8S_VAR = re.compile(r"\$\((\w+)\)")
_SHELL_SPLIT = {";", "&&", "||", "|", "&", "(", ")", "do", "then", "until", "while", "if",
                "else", "elif", "!", "exec"}


def _shell_kdtune_commands(script: str, env: dict[str, str]) -> list[list[str]]:
    """The ``kdtune ...`` command lines in a ``sh -c`` script (simple scripts only)."""
    lex = shlex.shlex(script, posix=True, punctuation_chars=";&|()<>")
    lex.whitespace_split = True
    tokens = list(lex)
    commands: list[list[str]] = []
    current: list[str] | None = None
    at_command_start = True
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _SHELL_SPLIT:
            current, at_command_start = None, True
        elif tok in (">", ">>", "<", ">&"):
            i += 1  # skip the redirection target
        elif current is not None:
            current.append(re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), "x"), tok))
        elif at_command_start and tok == "kdtune":
            current = []
            commands.append(current)
        else:
            at_command_start = False
        i += 1
    return commands


def _container_env(container: dict) -> dict[str, str]:
    env = {}
    for e in container.get("env", []):
        env[e["name"]] = str(e["value"]) if "value" in e else f"from-{e['name'].lower()}"
    return env


def _k8s_argvs(container: dict) -> list[list[str]]:
    """kdtune argvs a container runs (after ``kdtune``), with ``$(VAR)`` expanded."""
    env = _container_env(container)
    command = [str(a) for a in container.get("command", [])]
    args = [str(a) for a in container.get("args", [])]
    expand = [_K8S_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), a) for a in args]
    if command[:1] in (["sh"], ["bash"], ["/bin/sh"], ["/bin/bash"]) and "-c" in command:
        script = (command + args)[command.index("-c") + 1]
        return _shell_kdtune_commands(script, env)
    if not KDTUNE_IMAGE.match(container.get("image", "")):
        return []
    if command:
        assert command[0] == "kdtune", f"{container['name']}: command {command}"
        return [command[1:] + expand]
    assert expand, f"{container['name']}: no args, the image would only print --help"
    return [expand]


def k8s_commands() -> list[tuple[str, list[str]]]:
    out = []
    for fname, doc in k8s_documents():
        for c in _containers(doc):
            for argv in _k8s_argvs(c):
                out.append((f"k8s:{fname}:{doc['metadata']['name']}/{c['name']}", argv))
    return out


@pytest.fixture(scope="module")
def k8s() -> list[tuple[str, dict]]:
    return k8s_documents()


def _one(k8s, kind: str, name: str) -> dict:
    found = [d for _, d in k8s if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def test_k8s_kinds(k8s):
    kinds = [d["kind"] for _, d in k8s]
    for kind in ("StatefulSet", "Service", "Secret", "ConfigMap", "Deployment"):
        assert kind in kinds, kind
    assert kinds.count("Job") >= 2
    for _, d in k8s:
        assert d.get("apiVersion") and d.get("kind"), d


def test_k8s_postgres(k8s):
    sts = _one(k8s, "StatefulSet", "kdtune-postgres")
    assert sts["spec"]["volumeClaimTemplates"]
    (pg,) = sts["spec"]["template"]["spec"]["containers"]
    assert "pg_isready" in pg["readinessProbe"]["exec"]["command"]
    env = {e["name"]: e for e in pg["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "kdtune-db", "key": "password"}
    svc = _one(k8s, "Service", sts["spec"]["serviceName"])
    assert svc["spec"]["ports"][0]["port"] == 5432


def test_k8s_images_pinned(k8s):
    for fname, doc in k8s:
        for c in _containers(doc):
            image = c["image"]
            assert PINNED_TAG.search(image), f"{fname}: {c['name']} image {image} not pinned"
            assert not image.endswith(":latest")


def _secret_mounts(doc: dict, container: dict) -> dict[str, tuple[str, dict]]:
    """mountPath -> (Secret name, volume) of a container's Secret volumes."""
    volumes = {v["name"]: v for v in (_pod_spec(doc) or {}).get("volumes", [])}
    out = {}
    for m in container.get("volumeMounts", []):
        vol = volumes.get(m["name"], {})
        if "secret" in vol:
            out[m["mountPath"].rstrip("/")] = (vol["secret"]["secretName"], vol)
    return out


def test_k8s_credentials_only_from_the_secret(k8s):
    for fname, doc in k8s:
        if doc["kind"] == "Secret":
            continue
        text = yaml.safe_dump(doc)
        assert not URL_CREDENTIALS.search(text), f"{fname}: a URL with a password"
        assert "change-me" not in text, fname
        for c in _containers(doc):
            for e in c.get("env", []):
                if not re.search(r"PASSWORD|STORAGE|SECRET|TOKEN", e["name"]):
                    continue
                if e["name"].endswith("_FILE"):
                    # a path, to a file of a kdtune-db Secret volume mounted read-only
                    mounts = _secret_mounts(doc, c)
                    folder = e["value"].rsplit("/", 1)[0]
                    assert folder in mounts, f"{fname}: {c['name']} {e['name']} not a secret"
                    assert mounts[folder][0] == "kdtune-db"
                    continue
                assert "value" not in e, f"{fname}: {c['name']} env {e['name']} literal"
                assert e["valueFrom"]["secretKeyRef"]["name"] == "kdtune-db"
            assert not any(a.startswith("--storage") for a in c.get("args", [])), fname


def test_k8s_no_secret_on_a_command_line(k8s):
    """An env var from the Secret expanded into command or args ($(VAR) by Kubernetes, $VAR
    by a shell) would show in ``ps``; so would one in a probe's command."""
    for fname, doc in k8s:
        for c in _containers(doc):
            secret_vars = [e["name"] for e in c.get("env", [])
                           if "secretKeyRef" in e.get("valueFrom", {})]
            lines = [*c.get("command", []), *c.get("args", [])]
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                lines += (c.get(probe) or {}).get("exec", {}).get("command", [])
            text = " ".join(map(str, lines))
            for var in secret_vars:
                pattern = rf"\$\(?\{{?{var}\b"
                assert not re.search(pattern, text), f"{fname}: {c['name']} expands ${var}"
            assert not URL_CREDENTIALS.search(text), f"{fname}: {c['name']}"


def test_k8s_secret_template(k8s):
    secret = _one(k8s, "Secret", "kdtune-db")
    data = secret["stringData"]
    assert set(data) == {"password", "storage-url", "pooler-url", "dashboard-token"}
    assert data["password"] == "change-me"
    for key in ("storage-url", "pooler-url"):
        assert URL_CREDENTIALS.search(data[key]).group(1) == "change-me", key
    # shorter than kdtune's 16-character minimum: a template applied by mistake fails loudly
    assert data["dashboard-token"] == "change-me"
    text = (K8S_DIR / "secret.yaml").read_text()
    assert "kubectl create secret" in text
    for key in data:
        assert f"--from-literal={key}=" in text, f"the kubectl line must create {key}"
    used = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for _, d in k8s for c in _containers(d) for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    for _, d in k8s:
        for v in (_pod_spec(d) or {}).get("volumes", []):
            if "secret" in v:
                name = v["secret"]["secretName"]
                assert v["secret"].get("items"), "mount only the keys a pod needs"
                used |= {(name, item["key"]) for item in v["secret"]["items"]}
    assert used <= {("kdtune-db", k) for k in data}, used
    assert {("kdtune-db", k) for k in data} <= used, "a key nothing reads"


def test_k8s_kustomization_applies_all_but_the_secret(k8s):
    kust = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == manifests - {"secret.yaml"}


def test_k8s_jobs(k8s):
    create = _one(k8s, "Job", "kdtune-create-study")
    (c,) = create["spec"]["template"]["spec"]["containers"]
    assert _k8s_argvs(c)[0][0] == "create"
    assert "KDTUNE_STORAGE" in _container_env(c)

    worker = _one(k8s, "Job", "kdtune-worker")
    spec = worker["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["parallelism"] > 1 and spec["completions"] >= spec["parallelism"]
    assert spec["backoffLimit"] >= 1
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    (w,) = pod["containers"]
    argv = _k8s_argvs(w)[0]
    assert argv[0] == "worker"
    # no fixed index: each pod's $JOB_COMPLETION_INDEX reseeds its sampler
    assert "--index" not in argv or "$(JOB_COMPLETION_INDEX)" in w["args"]
    assert "KDTUNE_STORAGE" in _container_env(w)
    assert pod["initContainers"], "workers must wait for the study (schema race)"


def test_k8s_dashboard_is_cluster_internal(k8s):
    deploy = _one(k8s, "Deployment", "kdtune-dashboard")
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    argv = _k8s_argvs(c)[0]
    assert argv[0] == "dashboard"
    assert "--allow-writes" not in argv, "the deployed dashboard stays read-only"
    svc = _one(k8s, "Service", "kdtune-dashboard")
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    for _, d in k8s:
        assert d["kind"] != "Ingress"
        if d["kind"] == "Service":
            assert d["spec"].get("type", "ClusterIP") == "ClusterIP", d["metadata"]["name"]
    text = (K8S_DIR / "dashboard.yaml").read_text().lower()
    assert "no authentication" not in text, "stale comment: the dashboard has a token now"
    assert "ingress" in text and "tls" in text, "say that an Ingress must terminate TLS"


def test_k8s_dashboard_token_from_a_secret_file(k8s):
    deploy = _one(k8s, "Deployment", "kdtune-dashboard")
    pod = deploy["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e for e in c.get("env", [])}
    assert "KDTUNE_DASHBOARD_TOKEN" not in env, "the token comes as a file, not a variable"
    path = env["KDTUNE_DASHBOARD_TOKEN_FILE"]["value"]
    folder, filename = path.rsplit("/", 1)
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"].rstrip("/") == folder]
    assert mount.get("readOnly") is True
    (vol,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = vol["secret"]
    assert secret["secretName"] == "kdtune-db"
    (item,) = [i for i in secret["items"] if i["path"] == filename]
    assert item["key"] == "dashboard-token"
    # The files of a Secret volume belong to root, group fsGroup: the dashboard (a non-root
    # uid) reads the token through the group bit, and no one else may read it.
    mode = item.get("mode", secret.get("defaultMode", 0o644))
    ctx = pod["securityContext"]
    assert ctx["runAsUser"] != 0 and ctx.get("runAsNonRoot") is True
    assert ctx.get("fsGroup") is not None, "without fsGroup the root-owned file is unreadable"
    assert ctx["fsGroup"] == ctx.get("runAsGroup", ctx["fsGroup"])
    assert mode & 0o040, f"mode {mode:o}: the group cannot read the token"
    assert not mode & 0o007, f"mode {mode:o}: the token is world-readable"
    assert not mode & 0o222, f"mode {mode:o}: the token is writable"


def test_k8s_dashboard_probes_use_healthz(k8s):
    deploy = _one(k8s, "Deployment", "kdtune-dashboard")
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    argv = _k8s_argvs(c)[0]
    assert ports["http"] == int(argv[argv.index("--port") + 1])
    for probe in ("readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == "/healthz", f"{probe}: / needs credentials now"
        assert get["port"] in ("http", ports["http"])


def _bouncer_env(k8s) -> dict[str, str]:
    deploy = _one(k8s, "Deployment", "kdtune-pgbouncer")
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    return {e["name"]: str(e["value"]) if "value" in e else f"from-{e['name'].lower()}"
            for e in c.get("env", [])}


def test_k8s_pgbouncer(k8s):
    deploy = _one(k8s, "Deployment", "kdtune-pgbouncer")
    pod = deploy["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert PGBOUNCER_IMAGE.match(c["image"]), c["image"]
    assert PINNED_TAG.search(c["image"]), c["image"]
    sts = _one(k8s, "StatefulSet", "kdtune-postgres")
    check_pgbouncer_env(_bouncer_env(k8s), upstream=sts["spec"]["serviceName"])
    env = {e["name"]: e for e in c["env"]}
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "kdtune-db", "key": "password"}
    assert pod["securityContext"].get("runAsNonRoot") is True
    assert c["readinessProbe"]
    svc = _one(k8s, "Service", "kdtune-pgbouncer")
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    (port,) = svc["spec"]["ports"]
    assert port["port"] == 5432
    assert port["targetPort"] in [p["name"] for p in c["ports"]] + [5432]
    text = (K8S_DIR / "pgbouncer.yaml").read_text()
    assert "transaction-scoped advisory" in text, "say why transaction pooling is safe"


def _storage_key(container: dict) -> str | None:
    for e in container.get("env", []):
        if e["name"] == "KDTUNE_STORAGE":
            return e["valueFrom"]["secretKeyRef"]["key"]
    return None


def test_k8s_storage_goes_through_the_pooler_but_schema_creation(k8s):
    """The create Job (schema creation) connects to PostgreSQL directly; every other kdtune
    container, wait-for-study included, through PgBouncer."""
    from sqlalchemy.engine import make_url

    template = _one(k8s, "Secret", "kdtune-db")["stringData"]
    postgres = _one(k8s, "StatefulSet", "kdtune-postgres")["spec"]["serviceName"]
    pooler = _one(k8s, "Service", "kdtune-pgbouncer")["metadata"]["name"]
    assert make_url(template["storage-url"]).host == postgres
    assert make_url(template["pooler-url"]).host == pooler
    for key in ("storage-url", "pooler-url"):
        url = make_url(template[key])
        assert (url.port, url.database, url.username) == (5432, "kdtune", "kdtune"), key
    seen = set()
    for _, d in k8s:
        for c in _containers(d):
            key = _storage_key(c)
            if key is None:
                continue
            name = f"{d['metadata']['name']}/{c['name']}"
            expected = "storage-url" if d["metadata"]["name"] == "kdtune-create-study" \
                else "pooler-url"
            assert key == expected, f"{name}: $KDTUNE_STORAGE from {key}, not {expected}"
            seen.add(d["metadata"]["name"])
    assert {"kdtune-create-study", "kdtune-worker", "kdtune-dashboard"} <= seen


def test_k8s_max_connections(k8s):
    sts = _one(k8s, "StatefulSet", "kdtune-postgres")
    (pg,) = sts["spec"]["template"]["spec"]["containers"]
    assert "command" not in pg, "command would bypass the image's entrypoint (initdb)"
    worker = _one(k8s, "Job", "kdtune-worker")["spec"]
    bouncer = _one(k8s, "Deployment", "kdtune-pgbouncer")["spec"]
    check_connection_arithmetic(
        (K8S_DIR / "postgres.yaml").read_text(), max_connections(pg.get("args", [])),
        check_pgbouncer_env(_bouncer_env(k8s), upstream=sts["spec"]["serviceName"]),
        pooler_replicas=bouncer.get("replicas", 1),
        direct_processes=1,  # the create Job
        pooled_processes=worker["parallelism"] + 1,  # the workers and the dashboard
    )
