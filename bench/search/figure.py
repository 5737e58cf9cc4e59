"""The figure of bench/search/quality.py: the arms' fronts on the test split."""

from __future__ import annotations

import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def fronts_figure(saved: dict, default: str, test_points, kappa: float) -> None:
    """bench/search-fronts.png: per seed, each arm's front on the test split (the default's
    drawn thick) and the TinyBERT recipe at the default's pick size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted({r["seed"] for r in saved["runs"]})
    fig, axes = plt.subplots(1, len(seeds), figsize=(5 * len(seeds), 4.5), squeeze=False,
                             sharey=True)
    arms = list(dict.fromkeys(r["arm"] for r in saved["runs"]))
    for ax, seed in zip(axes[0], seeds, strict=True):
        for k, arm in enumerate(arms):
            run = [r for r in saved["runs"] if r["seed"] == seed and r["arm"] == arm]
            pts = test_points(run[0]) if run else []
            if not pts:
                continue
            pts = sorted(pts, key=lambda p: p["sigma"])
            ax.step([p["sigma"] for p in pts], [p["accuracy_student"] for p in pts],
                    where="post", marker="o", mfc="none", color=f"C{k}",
                    lw=2.5 if arm == default else 1, label=arm)
        for p in saved.get("picks", []):
            if p["seed"] == seed and p["arm"] == default and p["tinybert"]:
                tb = p["tinybert"]["test"]
                ax.plot(tb["sigma"], tb["accuracy_student"], "k*", ms=11,
                        label=f"TinyBERT {p['tinybert']['size']}")
        ax.axvline(kappa, color="grey", ls="--", lw=1)
        ax.set_title(f"seed {seed}: test-split fronts")
        ax.set_xlabel("sigma on test (lower is better)")
    axes[0][0].set_ylabel("student accuracy on test")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"Fronts at equal compute ({saved['epoch_budget']} epochs per study), "
                 f"polarity, MiniLM teacher, {datetime.date.today().isoformat()}")
    fig.tight_layout()
    fig.savefig(REPO / "bench" / "search-fronts.png", dpi=110)
