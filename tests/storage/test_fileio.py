"""kdtune.fileio: whole files or nothing, directories renamed into place, one lock."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from kdtune.fileio import atomic_directory, atomic_write_text, file_lock


def test_atomic_write_replaces_whole_file_with_normal_mode(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]  # no temporary left


def test_atomic_directory_keeps_target_on_error(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(target) as tmp:
        (tmp / "whole").write_text("y")
    assert [p.name for p in target.iterdir()] == ["whole"]
    with pytest.raises(FileExistsError):
        with atomic_directory(target):
            pass
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "new").write_text("z")
    assert [p.name for p in target.iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _hold(path, started, seconds):
    with file_lock(path):
        started.set()
        time.sleep(seconds)


def test_file_lock_excludes_another_process(tmp_path):
    lock = tmp_path / "x.lock"
    started = multiprocessing.Event()
    proc = multiprocessing.Process(target=_hold, args=(lock, started, 1.0))
    proc.start()
    assert started.wait(30)
    t0 = time.monotonic()
    with file_lock(lock):
        waited = time.monotonic() - t0
    proc.join(30)
    assert waited > 0.3, "the lock was taken while another process held it"
