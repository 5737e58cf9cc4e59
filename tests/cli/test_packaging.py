"""The installed distribution exposes one top-level package, ``kdtune``.

The repository keeps its layers in the folders ``study/``, ``objectives/`` and ``storage/``;
``pyproject.toml`` maps them to ``kdtune.study``, ``kdtune.objectives`` and
``kdtune.storage``. These names are all taken on PyPI, so a wheel that shipped them at the
top level would break (or be broken by) the packages of the same name.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("study", "objectives", "storage")


def test_wheel_holds_only_the_kdtune_package(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("kdtune", *LAYERS):
        shutil.copytree(ROOT / folder, src / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("kdtune-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"kdtune"}
    # every layer's modules are inside the package, none is lost by the mapping
    for layer in LAYERS:
        shipped = {n.removeprefix(f"kdtune/{layer}/") for n in names
                   if n.startswith(f"kdtune/{layer}/")}
        expected = {p.relative_to(ROOT / layer).as_posix() for p in (ROOT / layer).rglob("*.py")
                    if "__pycache__" not in p.parts}
        assert shipped == expected, layer
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "kdtune = kdtune.study.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_layers_import_only_under_kdtune():
    out = subprocess.run(
        [sys.executable, "-c",
         "import importlib.util as u, kdtune.study.cli.root;"
         "print([n for n in ('study', 'objectives', 'storage') if u.find_spec(n)])"],
        capture_output=True, text=True, cwd="/", timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
