"""Which kdtune a benchmark measures: ``--code DIR`` runs a script on another source tree.

:func:`use_code` re-executes a script on the kdtune of a source tree (e.g. a ``git archive``
snapshot or a ``git worktree`` at an older commit), its ``kdtune worker`` processes included;
the re-executed script sees :data:`CODE_ENV` set. :func:`code_provenance` records which
code a process imports: its directory, commit and modified files.

Not named ``code.py``: bench/ is first on a script's path, and that would hide the standard
library's ``code`` module (which pdb imports).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CODE_ENV = "KDTUNE_BENCH_CODE"


def use_code(src: Path, script: str) -> None:
    """Re-run ``script`` on the kdtune of source tree ``src``: a package directory linking
    its ``kdtune/``, ``objectives/``, ``study/`` and ``storage/`` goes first on PYTHONPATH,
    and PYTHONSAFEPATH keeps the working directory (a checkout has ``kdtune/``) off every
    process's path, so the ``kdtune worker`` processes import it too. It also keeps the
    script's own directory off the path: scripts put bench/ (and their folder) there
    themselves."""
    src = src.resolve()
    if not (src / "objectives" / "__init__.py").is_file():
        raise SystemExit(f"--code {src}: not a kdtune source tree (no objectives/__init__.py)")
    pkg = Path(tempfile.mkdtemp(prefix="kdtune-code-"))
    shutil.copytree(src / "kdtune", pkg / "kdtune")
    for layer in ("objectives", "study", "storage"):
        (pkg / "kdtune" / layer).symlink_to(src / layer)
    env = {**os.environ, "PYTHONPATH": str(pkg), "PYTHONSAFEPATH": "1", CODE_ENV: str(src)}
    target = str(Path(script).resolve())
    os.execve(sys.executable, [sys.executable, target, *sys.argv[1:]], env)


def code_provenance() -> dict:
    """Which kdtune code this process imports: its directory, commit and modified files."""
    import kdtune.objectives.distillation.training as training

    where = Path(training.__file__).resolve().parent.parent

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(where), *a], capture_output=True,
                                  text=True, timeout=30).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""

    from kdtune.storage import ENV_STORAGE, mask_url

    dirty = git("status", "--porcelain", "--", "objectives", "study", "storage", "kdtune")
    return {"root": str(where), "commit": git("rev-parse", "--short", "HEAD").strip(),
            "modified": [line[3:] for line in dirty.splitlines() if line.strip()],
            "storage": mask_url(os.environ[ENV_STORAGE]) if os.environ.get(ENV_STORAGE)
            else "embedded"}
