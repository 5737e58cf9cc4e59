"""Where kdtune keeps things on disk.

Everything kdtune writes outside the paths a user names (the embedded PostgreSQL data
directory, the downloaded polarity corpus, cached teachers, the teacher-output cache) lives
under one directory: ``$KDTUNE_HOME`` when set, otherwise the per-user data directory
(``~/.local/share/kdtune`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "KDTUNE_HOME"


def kdtune_home(create: bool = True) -> Path:
    """Return kdtune's data directory, creating it when ``create`` is true."""
    raw = os.environ.get(ENV_HOME)
    if raw:
        home = Path(raw).expanduser().resolve()
    else:
        import platformdirs

        home = Path(platformdirs.user_data_dir("kdtune", appauthor=False))
    if create:
        home.mkdir(parents=True, exist_ok=True)
    return home
