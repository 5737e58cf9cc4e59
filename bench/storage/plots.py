"""The storage benchmark's two figures: throughput by storage and worker count, and worker
latency as the study grows."""

from __future__ import annotations

import statistics
from pathlib import Path

from env import BACKENDS


def median_ms(xs) -> float:
    """Median of ``xs`` (seconds) in milliseconds; NaN for no values."""
    return statistics.median(xs) * 1e3 if xs else float("nan")


def by_level(lat: dict, key: str) -> list[float]:
    """Median (ms) of the ``key`` latencies ("ask", "tell", "obj") at each study size."""
    rec = lat["rec"]
    return [median_ms([x for lv, x in zip(rec["level"], rec[key], strict=True) if lv == level])
            for level in lat["levels"]]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_throughput(rows: list[dict], path: Path) -> None:
    """Steady-state trials/s against worker count, one line per storage (median of the
    repeats); a cross marks a run that lost or duplicated trials."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for backend, style in zip(BACKENDS, ("o-", "s-", "^-"), strict=True):
        pts = sorted((r["workers"], r["steady_tps"] or 0.0, r["lost"] or r["duplicates"])
                     for r in rows if r["backend"] == backend)
        if not pts:
            continue
        xs = sorted({p[0] for p in pts})
        ys = [statistics.median([p[1] for p in pts if p[0] == x]) for x in xs]
        line, = ax.plot(xs, ys, style, label=backend)
        bad = [(p[0], p[1]) for p in pts if p[2]]
        if bad:
            ax.plot(*zip(*bad, strict=True), "x", color=line.get_color(), ms=12, mew=2)
    workers = sorted({r["workers"] for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(workers, [str(w) for w in workers])
    ax.set_xlabel("kdtune worker processes")
    ax.set_ylabel("trials / s (steady state)")
    ax.set_ylim(bottom=0)
    ax.set_title("No-op objective throughput by storage (x: lost trials or duplicates)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_latency(lat: dict, path: Path) -> None:
    """Left: median ask and tell against study size. Right: a new worker's first ask."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    xs = lat["levels"]
    ax1.plot(xs, by_level(lat, "ask"), "o-", color="tab:blue", label="ask (next_trial)")
    ax1.plot(xs, by_level(lat, "tell"), "s--", color="tab:blue", alpha=0.6,
             label="tell (study.tell)")
    cold = lat["cold"]
    ax2.plot([c["size"] for c in cold], [c["ask"] * 1e3 for c in cold], "o-",
             color="tab:blue", label="first ask of a new worker")
    ax1.set_xlabel("trials already in the study")
    ax1.set_ylabel(f"median of {lat['per_level']} trials at that size (ms)")
    ax1.set_title("Worker ask / tell latency as the study grows (system PostgreSQL)")
    ax2.set_xlabel("trials already in the study")
    ax2.set_ylabel("latency (ms)")
    ax2.set_title("A worker joining the grown study: its first ask")
    for ax in (ax1, ax2):
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
