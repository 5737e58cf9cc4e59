"""What a teacher fit shows while it runs (objectives.teacher.progress): off a terminal, plain
lines (one per epoch, one at least every ``interval`` seconds during long work); on one, the
live bar."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest

from kdtune.objectives.data.dataset import DataConfig
from kdtune.objectives.teacher import progress as teacher_progress
from kdtune.objectives.teacher.fit import TeacherFitConfig, fit_teacher
from kdtune.objectives.teacher.progress import PLAIN_INTERVAL_S, FitProgress, duration

BAR_CHARS = ("\r", "━", "█", "\x1b")
PREFIXES = ("teacher fit: ", "teacher epoch ", "teacher measuring ")
IN_EPOCH = re.compile(r"^teacher epoch (\d+)/3 \((probe|fine-tune)\): batch (\d+)/(\d+), "
                      r"[\d.e+-]+ batches/s \([\d.e+-]+ examples/s\), loss [\d.]+, ETA \S+$")
EPOCH = re.compile(r"^teacher epoch (\d+)/3 \((probe|fine-tune)\): train loss [\d.]+, "
                   r"eval accuracy [\d.]+, in \S+$")


def _cfg(tiny_bert_dir: Path, synthetic_csv: Path) -> TeacherFitConfig:
    data = DataConfig(source=str(synthetic_csv), eval_size=80, test_size=80, max_length=16)
    return TeacherFitConfig(base=str(tiny_bert_dir), data=data, epochs=2, learning_rate=1e-3,
                            batch_size=16, device="cpu", threads=1)


def _plain_fit(tmp_path, tiny_bert_dir, synthetic_csv, capsys, **kw) -> list[str]:
    capsys.readouterr()
    fit_teacher(_cfg(tiny_bert_dir, synthetic_csv), tmp_path / "teacher", **kw)
    err = capsys.readouterr().err
    for char in BAR_CHARS:
        assert char not in err, (char, err)
    assert err == "" or err.endswith("\n")
    return err.splitlines()


def test_off_a_terminal_a_plain_line_per_epoch_and_during_work(tmp_path, tiny_bert_dir,
                                                               synthetic_csv, capsys):
    """Stderr captured (not a terminal), a tiny interval: plain lines only, every one with a
    known prefix; one line per epoch in order; lines within each epoch with batches done of
    the total, the rate and an ETA; measurement lines too."""
    lines = _plain_fit(tmp_path, tiny_bert_dir, synthetic_csv, capsys, progress_interval=0.0)
    assert lines and all(line.startswith(PREFIXES) for line in lines), lines

    epochs = [m.groups() for m in map(EPOCH.match, lines) if m]
    assert epochs == [("1", "probe"), ("2", "fine-tune"), ("3", "fine-tune")], lines
    within = [m.groups() for m in map(IN_EPOCH.match, lines) if m]
    assert {(e, p) for e, p, _, _ in within} == {(e, p) for e, p in epochs}, lines
    batches = {int(total) for *_, total in within}
    assert len(batches) == 1 and all(1 <= int(done) <= max(batches) for *_, done, _ in within)
    assert any(int(done) == max(batches) for *_, done, _ in within)  # every batch, interval 0
    assert any(re.match(r"teacher measuring (eval|train|test) accuracy: batch \d+/\d+, .*ETA",
                        line) for line in lines), lines
    assert lines[0].startswith("teacher fit: loading")
    last_epoch = max(i for i, line in enumerate(lines) if EPOCH.match(line))
    assert "teacher fit: measuring accuracy on the train and test splits" in lines[last_epoch:]
    assert all(len(line) < 120 for line in lines), lines


def test_the_default_interval_keeps_a_short_fit_to_a_line_per_epoch(tmp_path, tiny_bert_dir,
                                                                     synthetic_csv, capsys):
    """With the 30 s interval a fit of seconds prints no in-epoch line: a line per step."""
    assert PLAIN_INTERVAL_S == 30.0
    lines = _plain_fit(tmp_path, tiny_bert_dir, synthetic_csv, capsys)
    assert sum(bool(EPOCH.match(line)) for line in lines) == 3
    assert not [line for line in lines if "batch " in line], lines
    assert len(lines) == 3 + 3, lines  # loading, the data, 3 epochs, measuring
    assert lines[-1] == "teacher fit: measuring accuracy on the train and test splits"


def test_no_progress_prints_nothing(tmp_path, tiny_bert_dir, synthetic_csv, capsys):
    """``progress=False`` (``--json``, tests): nothing on stderr, whatever the interval."""
    assert _plain_fit(tmp_path, tiny_bert_dir, synthetic_csv, capsys, progress=False,
                      progress_interval=0.0) == []


def test_a_line_comes_once_the_interval_has_passed(monkeypatch):
    """During work a line comes only when ``interval`` seconds have passed since the last
    line, with batches done, batches/s, examples/s and the ETA at the current rate."""
    now = [100.0]
    monkeypatch.setattr(teacher_progress.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    shown = FitProgress("student", interval=30.0, file=out)
    assert shown.plain and not shown.live
    shown.begin_epoch(2, 5, batches=100)
    for _ in range(10):
        now[0] += 2.0
        shown.step(examples=16, loss=0.5)
    assert out.getvalue() == ""  # 20 s: not yet
    for _ in range(5):
        now[0] += 2.0
        shown.step(examples=16, loss=0.25)
    assert out.getvalue() == ("student epoch 2/5: batch 15/100, 0.5 batches/s "
                              "(8 examples/s), loss 0.2500, ETA 2m 50s\n")
    now[0] += 10.0
    shown.epoch_done(0.3)  # no evaluation measured: no accuracy
    assert out.getvalue().splitlines()[-1] == "student epoch 2/5: train loss 0.3000, in 40s"


def test_a_measurement_counts_batches_through_the_collate(monkeypatch):
    """A prediction loop collates batch k+1 after running batch k: the count lags by one."""
    now = [0.0]
    monkeypatch.setattr(teacher_progress.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    shown = FitProgress("teacher", interval=1.0, file=out)
    shown.begin("measuring test accuracy", 3)
    collate = shown.counting(lambda rows: len(rows))
    for rows in ([1] * 8, [1] * 8, [1] * 4):
        now[0] += 1.0
        assert collate(rows) == len(rows)
    assert out.getvalue().splitlines() == [
        "teacher measuring test accuracy: batch 1/3, 0.5 batches/s (4 examples/s), ETA 4s",
        "teacher measuring test accuracy: batch 2/3, 0.667 batches/s (5.33 examples/s), ETA 2s",
    ]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_live_bar_and_no_plain_lines(monkeypatch):
    """On a terminal the rich bar is live and no in-epoch plain lines are written."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    out = _Terminal()
    shown = FitProgress("teacher", interval=0.0, file=out)
    assert shown.live and not shown.plain and not shown.bar.disable
    with shown:
        shown.start("fitting teacher", 4)
        shown.begin_epoch(1, 1, 4)
        for _ in range(4):
            shown.step(examples=2, loss=0.1)
            time.sleep(0.01)
        assert shown.bar.tasks[0].completed == 4
        shown.epoch_done(0.1, 0.9)
    assert "batch " not in out.getvalue() and "teacher epoch 1/1: train loss" in out.getvalue()


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0s"), (45, "45s"), (750, "12m 30s"),
                                               (11100, "3h 05m")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_student_epochs_off_a_terminal_print_plain_lines_with_rate_and_eta(capsys):
    """The student's training loop (kdtune distill, kdtune test) off a terminal: a line as
    the epoch starts and, past the interval, lines with batches done, rate and ETA."""
    import time

    from kdtune.objectives.distillation.training import _maybe_progress

    class Slow(list):
        def __iter__(self):
            for item in super().__iter__():
                time.sleep(0.01)
                yield item

    seen = list(_maybe_progress(Slow(range(5)), True, "train epoch 1", interval=0.0))
    assert seen == [0, 1, 2, 3, 4]
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "train epoch 1: 5 batches"
    assert [line.split(",")[0] for line in lines[1:]] == [
        f"train epoch 1: batch {i}/5" for i in range(1, 5)]
    assert all(" batches/s, ETA " in line for line in lines[1:])
    assert list(_maybe_progress([1, 2], False, "x")) == [1, 2]
    assert capsys.readouterr().err == ""
