"""The report's charts as PNG bytes: the Pareto front (the trial ``kdtune export`` picks by
default starred), the hypervolume history (its y axis from 0), importances, sigma by student size.
The first two also as matplotlib Figures (:func:`pareto_figure`, :func:`hypervolume_figure`).

matplotlib objects only (no pyplot, no global backend change): the Agg canvas renders
without a display. matplotlib is imported on use.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial

from kdtune.objectives.measure.bootstrap import interval_key

from ..config import StudyConfig
from ..front import complete_trials, front_trials
from .size import sigma_metric, size_label, sized_trials


def _figure(width: float = 7.0, height: float = 5.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # the Agg canvas renders PNGs without a display
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _axis_label(name: str, direction: str) -> str:
    return f"{name} ({'higher' if direction == 'maximize' else 'lower'} is better)"


PICK_LABEL = "export's pick (knee)"
"""How the Pareto chart and the front table name the trial ``kdtune export`` picks by default."""


def pareto_figure(study: optuna.Study, cfg: StudyConfig, pick: FrozenTrial | None = None):
    """The Pareto chart as a matplotlib Figure (:func:`plot_pareto`); ``pick``, the trial
    ``kdtune export`` picks by default, drawn as a star labelled :data:`PICK_LABEL`."""
    trials = complete_trials(study)
    front = front_trials(study, cfg)
    fig = _figure()
    ax = fig.add_subplot()
    if len(cfg.objectives) == 1:
        dims = [None, 0]
        ax.set_xlabel("trial")
    else:
        dims = [0, 1]
        ax.set_xlabel(_axis_label(cfg.objectives[0], cfg.directions[0]))

    def coords(ts: list[FrozenTrial]) -> tuple[list[float], list[float]]:
        xs = [t.number if dims[0] is None else t.values[dims[0]] for t in ts]
        return xs, [t.values[dims[1]] for t in ts]

    y_dim = dims[1]
    ax.set_ylabel(_axis_label(cfg.objectives[y_dim], cfg.directions[y_dim]))
    ax.scatter(*coords(trials), s=22, color="0.65", label=f"complete trials ({len(trials)})")
    fx, fy = coords(front)
    if len(cfg.objectives) >= 2 and len(front) > 1:
        order = sorted(range(len(front)), key=lambda k: fx[k])
        ax.plot([fx[k] for k in order], [fy[k] for k in order], color="tab:blue", lw=1,
                ls=":", alpha=0.7)
    ax.scatter(fx, fy, s=46, color="tab:blue", edgecolor="black", zorder=3,
               label=f"Pareto front ({len(front)})")
    if len(front) <= 20:
        for t, x, y in zip(front, fx, fy, strict=True):
            ax.annotate(f"#{t.number}", (x, y), textcoords="offset points", xytext=(4, 4),
                        fontsize=7)
    if pick is not None:
        (px,), (py,) = coords([pick])
        ax.scatter([px], [py], s=220, marker="*", color="tab:orange", edgecolor="black",
                   zorder=4, label=f"{PICK_LABEL}: #{pick.number}")
        xs = coords(trials)[0]
        right = px > (min(xs) + max(xs)) / 2  # the label goes toward the middle
        ax.annotate(PICK_LABEL, (px, py), textcoords="offset points",
                    xytext=(-8 if right else 8, -14), ha="right" if right else "left",
                    fontsize=8, fontweight="bold", color="tab:orange")
    kappa = cfg.distill.eval.kappa
    for dim, line in ((dims[0], ax.axvline), (dims[1], ax.axhline)):
        if dim is not None and cfg.objectives[dim] == "sigma":
            line(kappa, color="tab:red", ls="--", lw=1,
                 label=f"kappa = {kappa:g} (phi_cnf holds at sigma <= kappa)")
    title = f"{study.study_name}: Pareto front"
    if len(cfg.objectives) > 2:
        title += f" over {len(cfg.objectives)} objectives (first two shown)"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_pareto(study: optuna.Study, cfg: StudyConfig, pick: FrozenTrial | None = None) -> bytes:
    """All complete trials in grey, the Pareto front highlighted, kappa marked for sigma, and
    ``pick`` (the trial ``kdtune export`` picks by default) as a star.

    Two or more objectives: the first two objectives as axes (the front is the one over all
    objectives). One objective: the objective against the trial number.
    """
    return _png(pareto_figure(study, cfg, pick))


def hypervolume_ylim(values: Sequence[float]) -> tuple[float, float]:
    """The hypervolume chart's y limits: from 0 (hypervolume is never negative), so the
    height of a step is its share of the whole, up to 10% above the largest value."""
    top = max(values, default=0.0)
    return 0.0, top * 1.1 if top > 0 else 1.0


def hypervolume_figure(history: list[tuple[int, float]], ref: Sequence[float],
                       cfg: StudyConfig, study_name: str = ""):
    """The hypervolume chart as a matplotlib Figure (:func:`plot_hypervolume`)."""
    fig = _figure(7.0, 4.0)
    ax = fig.add_subplot()
    values = [h for _, h in history]
    ax.plot([n for n, _ in history], values, marker="o", ms=3, drawstyle="steps-post",
            color="tab:green")
    ax.set_ylim(*hypervolume_ylim(values))
    if values:
        first, last = values[0], values[-1]
        gain = f" ({(last - first) / first:+.1%})" if first > 0 else ""
        # bottom right: the history never falls, so its right end is near the top
        ax.text(0.98, 0.04, f"after trial {history[0][0]}: {first:.4g}; "
                f"after trial {history[-1][0]}: {last:.4g}{gain}", transform=ax.transAxes,
                ha="right", fontsize=8, bbox={"facecolor": "white", "edgecolor": "0.8"})
    ax.set_xlabel("trial")
    ax.set_ylabel("hypervolume (axis from 0)")
    shown = ", ".join(f"{m}={r:g}" for m, r in zip(cfg.objectives, ref, strict=True))
    ax.set_title(f"{study_name}: hypervolume of the Pareto front\nreference point: {shown}",
                 fontsize=10)
    ax.grid(alpha=0.3)
    return fig


def plot_hypervolume(history: list[tuple[int, float]], ref: Sequence[float], cfg: StudyConfig,
                     study_name: str = "") -> bytes:
    """The hypervolume after each complete trial, the y axis from 0
    (:func:`hypervolume_ylim`), the first and final values in a corner, the reference point
    in the title."""
    return _png(hypervolume_figure(history, ref, cfg, study_name))


def plot_importances(importances: dict[str, dict[str, float]]) -> bytes:
    """One horizontal bar chart of parameter importances per objective."""
    n = len(importances)
    fig = _figure(4.5 * n, 0.4 * max(len(v) for v in importances.values()) + 1.6)
    for k, (metric, imp) in enumerate(importances.items()):
        ax = fig.add_subplot(1, n, k + 1)
        names = list(imp)[::-1]  # most important at the top
        ax.barh(names, [imp[p] for p in names], color="tab:purple")
        ax.set_xlim(0, 1)
        ax.set_title(f"importance for {metric}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _errorbar(ax, trials: list[FrozenTrial], metric: str, **style) -> None:
    xs = [t.user_attrs["params"] / 1e6 for t in trials]
    ys = [t.user_attrs[metric] for t in trials]
    lows, highs = [], []
    for t, y in zip(trials, ys, strict=True):
        ci = t.user_attrs.get(interval_key(metric))
        ok = ci is not None and all(isinstance(v, (int, float)) and v == v for v in ci)
        lows.append(max(y - ci[0], 0.0) if ok else 0.0)
        highs.append(max(ci[1] - y, 0.0) if ok else 0.0)
    ax.errorbar(xs, ys, yerr=[lows, highs], fmt="o", capsize=3, **style)


def plot_sigma_by_size(trials: Sequence[FrozenTrial], cfg: StudyConfig,
                       study_name: str = "") -> bytes | None:
    """sigma (the study's sigma objective, :func:`~kdtune.study.report.size.sigma_metric`) against
    student parameters (millions), each trial with its 95% bootstrap interval as an error
    bar; the lowest-sigma trial of each student size in blue, labelled with the size; kappa
    as a line. None when no trial stored a parameter count."""
    metric = sigma_metric(cfg)
    sized = sized_trials(trials, metric)
    if not sized:
        return None
    best: dict[str, FrozenTrial] = {}
    for t in sized:
        label = size_label(t)
        if label not in best or t.user_attrs[metric] < best[label].user_attrs[metric]:
            best[label] = t
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    _errorbar(ax, sized, metric, color="0.7", ms=4, label=f"complete trials ({len(sized)})")
    _errorbar(ax, list(best.values()), metric, color="tab:blue", ms=6, zorder=3,
              label="lowest sigma per size")
    for label, t in best.items():
        ax.annotate(label, (t.user_attrs["params"] / 1e6, t.user_attrs[metric]),
                    textcoords="offset points", xytext=(5, 4), fontsize=7)
    kappa = cfg.distill.eval.kappa
    ax.axhline(kappa, color="tab:red", ls="--", lw=1, label=f"kappa = {kappa:g}")
    ax.set_xlabel("student parameters (millions, embeddings included)")
    ax.set_ylabel(f"{metric} (95% paired bootstrap interval)")
    ax.set_title(f"{study_name}: {metric} by student size", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


__all__ = ["PICK_LABEL", "hypervolume_figure", "hypervolume_ylim", "pareto_figure",
           "plot_hypervolume", "plot_importances", "plot_pareto", "plot_sigma_by_size"]
