"""The dashboard's study page in a real browser: headless Chromium renders it and takes a picture.

The HTTP tests (tests/export/test_dashboard.py) read the JSON API; this one checks that the page a
person opens renders the study: Chromium runs optuna-dashboard's JavaScript, and the DOM it
dumps names the study, its two objectives and kdtune's hypervolume chart. The screenshot is
written to ``$KDTUNE_SCREENSHOT`` when set (the README's picture is made that way), else into
the test's temporary directory, and must be a real, non-blank PNG.

Chromium cannot send an ``Authorization`` header from its command line, so the dashboard runs
on loopback without a token here; the token itself is tested over HTTP in test_dashboard.py.
Skipped when no Chromium is installed (``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from test_dashboard import kd_study, publish_one, running_dashboard  # noqa: F401 (fixture)

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser",
                                                        "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")


def _chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Headless Chromium; ``--virtual-time-budget`` lets the page's fetches finish first."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--hide-scrollbars", "--virtual-time-budget=15000", "--window-size=1400,1000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True,
                          timeout=timeout, check=True)


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the filtered scanlines of an 8-bit RGB(A) PNG (no decoder needed)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_study_page_renders_in_headless_chromium(kd_study, tmp_path):  # noqa: F811
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDTUNE_DASHBOARD_TOKEN")}
    publish_one(kd_study)  # the chart a writable dashboard keeps; this one is read-only
    with running_dashboard(tmp_path, env) as base:
        from kdtune.storage.optuna_adapter import study_id

        page = f"{base}/dashboard/studies/{study_id(kd_study)}"
        dom = _chromium("--dump-dom", page).stdout
        assert kd_study.study_name in dom, dom[:2000]
        for text in ("Accuracy", "Hypervolume"):
            assert text.lower() in dom.lower(), f"{text!r} not rendered"

        shot = Path(os.environ.get("KDTUNE_SCREENSHOT") or tmp_path / "study.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        _chromium(f"--screenshot={shot}", page)
        width, height, raw = _png_pixels(shot)
        assert (width, height) == (1400, 1000)
        # a rendered page has many distinct byte values; a blank or error page has a handful
        assert len(set(raw[: 200_000])) > 40
